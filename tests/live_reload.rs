//! Hot reload through the real reload path: recipe files in a temporary folder, the controller's
//! reload (directly, or through the file watcher), the streamer, and the callback body driven by
//! a simulated device under the allocation guard.
use crate::common;

use common::alloc_violations;
use common::audio::write_wav24;
use common::live_rig::{config, diff, max_jump, swapped, Rig, Song, BLOCK, FS};
use std::time::{Duration, Instant};
use stemgraph::live::control::{start, Command, LiveEvent};
use stemgraph::script::load_recipe;

/// A recipe: the noise stem's fader, the tone's fader, and optionally a pan on the noise.
fn recipe(noise_db: f64, tone_db: f64, pan: bool) -> String {
    format!(
        "local s = session {{ title = \"t\" }}\n\
         local master = s:bus \"master\"\n\
         local n = s:stem(\"noise\", \"stems/noise.wav\", {{ gain_db = {noise_db} }})\n\
         {}\n\
         s:stem(\"tone\", \"stems/tone.wav\", {{ gain_db = {tone_db} }}):to(master)\n\
         master:chain {{ gain {{ gain_db = -1 }} }}:to(s:output \"main\")\n\
         return s\n",
        if pan {
            "n:chain { pan { pan = 0.6 } }:to(master)"
        } else {
            "n:to(master)"
        }
    )
}

#[test]
fn a_rewritten_recipe_changes_the_output_from_the_swap_on_without_a_click() {
    for (before, after, what) in [
        (
            recipe(0.0, 0.0, false),
            recipe(0.0, -6.0, false),
            "parameter",
        ),
        (recipe(0.0, 0.0, false), recipe(0.0, 0.0, true), "structure"),
    ] {
        let mut rig = Rig::new(&before, false);
        let latency = rig.ctl.live_latency();
        rig.play(100);
        rig.song.save(&after);
        let ev = rig.reload();
        assert!(
            ev.iter().any(|e| matches!(e, LiveEvent::Reloaded { .. })),
            "{what}: {ev:?}"
        );
        rig.play(200);
        let swaps = swapped(&rig.events);
        assert_eq!(swaps.len(), 1, "{what}: {:?}", rig.events);
        let p = swaps[0].position as usize;
        assert_eq!(swaps[0].crossfade, what == "structure");
        assert_eq!(swaps[0].output_position as usize, p + latency);
        assert!(
            (100 * BLOCK..=101 * BLOCK).contains(&p),
            "{what}: swap at the next block boundary, got {p}"
        );

        let a = rig.song.offline(&before);
        let b = rig.song.offline(&after);
        // After the start's fade-in and until the swap is heard: the old graph, exactly.
        let fade_in = latency + 240;
        assert_eq!(
            diff(&rig.out, &a, latency as i64, fade_in, p + latency),
            0.0,
            "{what}"
        );
        // From the swap on it differs...
        assert!(
            diff(
                &rig.out,
                &a,
                latency as i64,
                p + latency,
                p + latency + 2000
            ) > 0.01,
            "{what}: no change after the swap"
        );
        // ...and after the glide (20 ms) or the crossfade (30 ms) it is the new graph, exactly.
        let settled = p + latency + 1440;
        assert_eq!(
            diff(&rig.out, &b, latency as i64, settled, rig.frames()),
            0.0,
            "{what}"
        );
        // No sample-to-sample jump larger than the material's own.
        let own = max_jump(&a).max(max_jump(&b));
        let live = max_jump(&rig.out[2 * fade_in..]);
        assert!(
            live <= own * 1.001,
            "{what}: a click: jump {live} > material's {own}"
        );
        assert_eq!(rig.violations, 0, "{what}: the callback allocated");
        assert_eq!(
            rig.ctl
                .status()
                .underruns
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}

#[test]
fn a_broken_recipe_keeps_the_old_graph_reports_file_and_line_and_the_next_save_recovers() {
    let good = recipe(0.0, 0.0, false);
    let mut rig = Rig::new(&good, false);
    let latency = rig.ctl.live_latency();
    rig.play(20);
    let broken = [
        (
            "syntax",
            good.replace("local master", "local master = = "),
            "song.lua:2:",
        ),
        (
            "runtime",
            good.replace("return s", "local t = nil\nlocal x = t.field\nreturn s"),
            "song.lua:8:",
        ),
        (
            "validation",
            good.replace("gain_db = -1", "gain_db = 99"),
            "song.lua:6:",
        ),
        (
            "unknown node",
            good.replace(
                "n:to(master)",
                "n:to(master)\ns:automate(\"nosuch.gain_db\", { { 0, 1 } })",
            ),
            "song.lua:5:",
        ),
    ];
    for (what, text, at) in &broken {
        rig.song.save(text);
        let ev = rig.reload();
        match ev.as_slice() {
            [LiveEvent::ReloadFailed { error, .. }] => {
                assert!(error.contains(at), "{what}: {error}");
                assert!(!error.contains("stack backtrace"), "{what}: {error}");
            }
            other => panic!("{what}: {other:?}"),
        }
        rig.play(20);
    }
    assert!(swapped(&rig.events).is_empty());
    // All along, the old graph.
    let a = rig.song.offline(&good);
    let fade_in = latency + 240;
    assert_eq!(
        diff(&rig.out, &a, latency as i64, fade_in, rig.frames()),
        0.0
    );

    // The next good save recovers.
    let fixed = recipe(-3.0, 0.0, false);
    rig.song.save(&fixed);
    let ev = rig.reload();
    assert!(
        ev.iter().any(|e| matches!(e, LiveEvent::Reloaded { .. })),
        "{ev:?}"
    );
    rig.play(100);
    let swaps = swapped(&rig.events);
    assert_eq!(swaps.len(), 1);
    let settled = swaps[0].position as usize + latency + 1440;
    let b = rig.song.offline(&fixed);
    assert_eq!(
        diff(&rig.out, &b, latency as i64, settled, rig.frames()),
        0.0
    );
    assert_eq!(rig.violations, 0);
}

#[test]
fn a_burst_of_100_saves_in_a_second_ends_on_the_last_one_without_error_or_leak() {
    let mut rig = Rig::new(&recipe(0.0, 0.0, false), true);
    let latency = rig.ctl.live_latency();
    let value = |k: usize| -0.05 * k as f64;
    let song = rig.song.recipe();
    let dir = rig.song.dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        let t0 = Instant::now();
        for k in 1..=100 {
            let text = recipe(value(k), 0.0, k % 10 == 0);
            if k % 2 == 0 {
                let tmp = dir.join(".song.lua.swp");
                std::fs::write(&tmp, &text).unwrap();
                std::fs::rename(&tmp, &song).unwrap();
            } else {
                // Truncate, then write in two steps (the watcher sees several events).
                let mut f = std::fs::File::create(&song).unwrap();
                use std::io::Write;
                let (a, b) = text.split_at(text.len() / 2);
                f.write_all(a.as_bytes()).unwrap();
                f.flush().unwrap();
                f.write_all(b.as_bytes()).unwrap();
            }
            let next = t0 + Duration::from_millis(10 * k as u64);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    // Play in real time while the saves come in, and a while after.
    let t0 = Instant::now();
    let mut played = 0usize;
    while t0.elapsed() < Duration::from_millis(1600) {
        let due = (t0.elapsed().as_secs_f64() * f64::from(FS)) as usize + 4 * BLOCK;
        while played < due {
            rig.play(1);
            played += BLOCK;
        }
        std::thread::sleep(Duration::from_millis(2));
        rig.tick();
    }
    writer.join().unwrap();
    rig.play(40);

    let failed: Vec<&LiveEvent> = rig
        .events
        .iter()
        .filter(|e| matches!(e, LiveEvent::ReloadFailed { .. } | LiveEvent::Problem(_)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let reloads = rig
        .events
        .iter()
        .filter(|e| matches!(e, LiveEvent::Reloaded { .. }))
        .count();
    assert!(
        (1..=10).contains(&reloads),
        "a burst is debounced into few reloads, got {reloads}"
    );
    // It ended on the last save: the session and the sound are the 100th.
    let last = recipe(value(100), 0.0, true);
    let config = rig
        .ctl
        .session()
        .graph
        .find("noise")
        .map(|n| format!("{:?}", n.kind))
        .unwrap();
    assert!(config.contains("-5.0"), "{config}");
    let swaps = swapped(&rig.events);
    let final_swap = swaps.last().expect("swapped");
    let settled = final_swap.position as usize + latency + 1440;
    assert_eq!(
        diff(
            &rig.out,
            &rig.song.offline(&last),
            latency as i64,
            settled,
            rig.frames()
        ),
        0.0
    );
    // No leak: every schedule handed over retired one old schedule, dropped on this side.
    let t = Instant::now();
    while rig.ctl.retired() < rig.ctl.submitted() && t.elapsed() < Duration::from_secs(2) {
        rig.play(1);
    }
    assert_eq!(rig.ctl.retired(), rig.ctl.submitted());
    assert_eq!(rig.ctl.submitted() as usize, reloads);
    assert_eq!(rig.violations, 0, "the callback allocated");
}

#[test]
fn changing_a_stem_file_reopens_the_streamer_where_it_was() {
    let before = recipe(0.0, 0.0, false);
    let mut rig = Rig::new(&before, false);
    let latency = rig.ctl.live_latency();
    rig.play(60);
    let after = before.replace("stems/tone.wav", "stems/other.wav");
    rig.song.save(&after);
    let ev = rig.reload();
    assert!(
        ev.iter()
            .any(|e| matches!(e, LiveEvent::Info(s) if s.contains("reopening"))),
        "{ev:?}"
    );
    rig.play(200);
    assert!(
        rig.events.iter().any(|e| matches!(
            e,
            LiveEvent::Reloaded {
                stems_changed: true,
                ..
            }
        )),
        "{:?}",
        rig.events
    );
    let swaps = swapped(&rig.events);
    {
        use std::sync::atomic::Ordering::Relaxed;
        let st = rig.ctl.status();
        let ss = rig.ctl.transport().streamer().status();
        assert_eq!(
            swaps.len(),
            1,
            "{:?} pos {} acked {} epoch {} consumed {} | streamer epoch {} written {} wpos {} | transport epoch {}",
            rig.events,
            st.position.load(Relaxed),
            st.epoch_acked.load(Relaxed),
            st.epoch.load(Relaxed),
            st.consumed.load(Relaxed),
            ss.epoch.load(Relaxed),
            ss.written.load(Relaxed),
            ss.write_position.load(Relaxed),
            rig.ctl.transport().epoch()
        );
    }
    let p = swaps[0].position as usize;
    // The stream carried on where it was (no seek back to the start).
    assert!((60 * BLOCK..=62 * BLOCK).contains(&p), "{p}");
    // Output frames are continuous in song time except for the silent gap of the reopen:
    // find where the new material starts and compare it with the new recipe.
    let b = rig.song.offline(&after);
    let total = rig.frames();
    let gap = rig.out.len() / 2
        - (rig
            .ctl
            .status()
            .position
            .load(std::sync::atomic::Ordering::Relaxed) as usize);
    let shift = gap; // output frames of silence inserted while reopening
    let from = p + latency + shift + 1440 + 240;
    let d = (from..total)
        .flat_map(|n| (0..2).map(move |c| (n, c)))
        .map(|(n, c)| (rig.out[2 * n + c] - b[2 * (n - latency - shift) + c]).abs())
        .fold(0f32, f32::max);
    assert_eq!(d, 0.0);
    assert_eq!(rig.violations, 0);
}

/// A recipe with only one of the two stems connected.
fn only(stem: &str) -> String {
    format!(
        "local s = session {{ title = \"t\" }}\n\
         local master = s:bus \"master\"\n\
         s:stem(\"noise\", \"stems/noise.wav\"){}\n\
         s:stem(\"tone\", \"stems/tone.wav\"){}\n\
         master:chain {{ gain {{ gain_db = -1 }} }}:to(s:output \"main\")\n\
         return s\n",
        if stem == "noise" { ":to(master)" } else { "" },
        if stem == "tone" { ":to(master)" } else { "" },
    )
}

/// The output frame where `expected[song..song + 1000]` appears exactly in `out`, searching
/// from output frame `from`.
fn locate(out: &[f32], expected: &[f32], song: usize, from: usize) -> Option<usize> {
    let frames = out.len() / 2;
    (from..frames.saturating_sub(1000)).find(|&o| {
        (0..1000).all(|k| {
            out[2 * (o + k)] == expected[2 * (song + k)]
                && out[2 * (o + k) + 1] == expected[2 * (song + k) + 1]
        })
    })
}

#[test]
fn transport_seek_mute_solo_and_pause_under_the_guard() {
    use std::sync::atomic::Ordering::Relaxed;
    let text = recipe(0.0, 0.0, false);
    let mut rig = Rig::new(&text, false);
    let a = rig.song.offline(&text);
    rig.play(20);

    // Seek 2 s ahead: after the fade-out, the engine's latency and the fade-in, the song from
    // exactly there.
    let target = rig.ctl.transport().heard_position() as usize + FS as usize;
    let at = rig.frames();
    rig.ctl.command(Command::SeekBy(1.0));
    rig.play(60);
    let o = locate(&rig.out, &a, target + 240, at).expect("the song from the seek target on");
    // From here on, output frame = song frame + delta.
    let delta = o as i64 - (target + 240) as i64;
    let end = rig.frames();
    assert_eq!(diff(&rig.out, &a, delta, o, end), 0.0);

    // Mute the noise: after the ramp, the tone alone.
    let pos = rig.ctl.status().position.load(Relaxed) as usize; // input frame of the next block
    rig.ctl.command(Command::ToggleMute(0));
    rig.play(40);
    let tone = rig.song.offline(&only("tone"));
    let end = rig.frames();
    let from = (pos as i64 + 240 + delta) as usize;
    assert_eq!(diff(&rig.out, &tone, delta, from, end), 0.0);

    // Solo the noise instead: the noise alone.
    let pos = rig.ctl.status().position.load(Relaxed) as usize;
    rig.ctl.command(Command::ToggleMute(0));
    rig.ctl.command(Command::ToggleSolo(0));
    rig.play(40);
    let noise = rig.song.offline(&only("noise"));
    let end = rig.frames();
    let from = (pos as i64 + 240 + delta) as usize;
    assert_eq!(diff(&rig.out, &noise, delta, from, end), 0.0);

    // Pause: silence after the fade-out, and the position stands still.
    rig.ctl.command(Command::TogglePause);
    rig.play(2);
    let pos = rig.ctl.status().position.load(Relaxed);
    let p0 = rig.frames();
    rig.play(10);
    assert!(rig.out[2 * p0..].iter().all(|&x| x == 0.0));
    assert_eq!(rig.ctl.status().position.load(Relaxed), pos);
    // Resume: it carries on from the same sample.
    rig.ctl.command(Command::TogglePause);
    rig.play(20);
    assert!(rig.ctl.status().position.load(Relaxed) > pos);

    assert!(max_jump(&rig.out[2 * (rig.ctl.live_latency() + 240)..]) <= max_jump(&a) * 1.001);
    assert_eq!(rig.violations, 0);
    assert_eq!(rig.ctl.status().underruns.load(Relaxed), 0);
}

#[test]
fn ab_plays_the_reference_loudness_matched_and_time_aligned() {
    let song = Song::new();
    let text = recipe(0.0, 0.0, false);
    // The reference: the master itself, 6.02 dB down.
    let master = song.offline(&text);
    let half = |c: usize| -> Vec<f64> {
        master
            .iter()
            .skip(c)
            .step_by(2)
            .map(|&x| 0.5 * f64::from(x))
            .collect()
    };
    write_wav24(
        &song.dir.path().join("stems/mix.wav"),
        &[half(0), half(1)],
        FS,
    );
    let with_ref = text.replace(
        "session { title = \"t\" }",
        "session { title = \"t\", reference = \"stems/mix.wav\" }",
    );
    let mut cfg = config(false);
    cfg.loudness_match = true;
    let mut rig = Rig::with(song, &with_ref, cfg);
    let latency = rig.ctl.live_latency();
    // The background measurement: the reference must come up 6.02 dB.
    let t = Instant::now();
    rig.play(4);
    let gain = loop {
        std::thread::sleep(Duration::from_millis(5));
        rig.tick();
        let found = rig.events.iter().find_map(|e| match e {
            LiveEvent::Loudness(r) => r.reference_gain_db(),
            _ => None,
        });
        if let Some(g) = found {
            break g;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", rig.events);
    };
    assert!((gain - 6.0206).abs() < 0.05, "gain {gain}");
    let at = rig.frames();
    let ev = rig.ctl.command(Command::ToggleAb);
    assert!(
        matches!(&ev[..], [LiveEvent::Info(s)] if s.starts_with("B")),
        "{ev:?}"
    );
    rig.play(40);
    assert!(rig.ctl.snapshot().listening_reference);
    // B: the reference, matched and lined up with the master (which it copies), so the output
    // goes on as if nothing had changed (24-bit rounding and the matching gain aside).
    let d = diff(&rig.out, &master, latency as i64, at, rig.frames());
    assert!(d < 2e-5, "B differs from A by {d}");
    // Back to A: exactly the master again after the 10 ms fade.
    rig.ctl.command(Command::ToggleAb);
    let at = rig.frames();
    rig.play(20);
    assert_eq!(
        diff(&rig.out, &master, latency as i64, at + 480, rig.frames()),
        0.0
    );
    assert_eq!(rig.violations, 0);
}

#[test]
fn a_section_loops_without_a_click() {
    let song = Song::new();
    let text = recipe(0.0, 0.0, false).replace(
        "session { title = \"t\" }",
        "session { title = \"t\", sections = { intro = 0, verse = 0.5, chorus = \"0:01\" } }",
    );
    let mut cfg = config(false);
    cfg.loop_region = Some("verse".into());
    let mut rig = Rig::with(song, &text, cfg);
    assert_eq!(
        rig.ctl.session().sections,
        vec![
            ("intro".to_string(), 0.0),
            ("verse".to_string(), 0.5),
            ("chorus".to_string(), 1.0)
        ]
    );
    let latency = rig.ctl.live_latency();
    rig.play(300); // 1.6 s: three times round the half-second verse
    let a = rig.song.offline(&text);
    let (start, end) = (24_000, 48_000);
    let o1 = locate(&rig.out, &a, start + 240, 0).expect("the verse");
    let o2 = locate(&rig.out, &a, start + 240, o1 + 1000).expect("the verse again");
    let o3 = locate(&rig.out, &a, start + 240, o2 + 1000).expect("and again");
    assert_eq!(o2 - o1, end - start);
    assert_eq!(o3 - o2, end - start);
    // Each time round: the verse exactly, up to the fade before the wrap (the engine's latency
    // worth of its end is cut by the reset).
    for o in [o1, o2] {
        let offset = o as i64 - (start + 240) as i64;
        let last = (end - latency - 240) as i64 + offset;
        assert_eq!(diff(&rig.out, &a, offset, o, last as usize), 0.0);
    }
    assert!(
        max_jump(&rig.out) <= max_jump(&a) * 1.001,
        "a click at the wrap"
    );
    assert_eq!(rig.violations, 0);
    assert_eq!(
        rig.ctl
            .status()
            .underruns
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn while_the_engine_cannot_take_schedules_only_the_newest_waits() {
    let mut rig = Rig::new(&recipe(0.0, 0.0, false), false);
    let latency = rig.ctl.live_latency();
    rig.play(20);
    rig.ctl.command(Command::TogglePause);
    rig.play(4);
    let mut waiting = 0;
    for k in 1..=6 {
        rig.song.save(&recipe(-(k as f64), 0.0, k % 2 == 0));
        for e in rig.reload() {
            match e {
                LiveEvent::Waiting { .. } => waiting += 1,
                LiveEvent::Reloaded { .. } => assert_eq!(k, 1, "only the first is handed over"),
                other => panic!("{other:?}"),
            }
        }
        rig.play(2);
    }
    assert_eq!(waiting, 5);
    assert!(
        swapped(&rig.events).is_empty(),
        "paused: nothing swapped yet"
    );
    rig.ctl.command(Command::TogglePause);
    rig.play(100);
    let swaps = swapped(&rig.events);
    assert_eq!(
        swaps.iter().map(|s| s.generation).collect::<Vec<_>>(),
        vec![1, 6],
        "the first one, then the newest: never the stale ones in between"
    );
    let last = recipe(-6.0, 0.0, true);
    let settled = swaps[1].position as usize + latency + 1440;
    let paused = rig.frames()
        - rig
            .ctl
            .status()
            .position
            .load(std::sync::atomic::Ordering::Relaxed) as usize;
    let offset = (latency + paused) as i64;
    assert_eq!(
        diff(
            &rig.out,
            &rig.song.offline(&last),
            offset,
            settled + paused,
            rig.frames()
        ),
        0.0
    );
    rig.play(10);
    assert_eq!(rig.ctl.retired(), rig.ctl.submitted());
    assert_eq!(rig.ctl.submitted(), 2);
    assert_eq!(rig.violations, 0);
}

#[test]
fn resampling_to_another_device_rate_does_not_allocate() {
    use stemgraph::live::resample::Resampled;
    let song = Song::new();
    let text = recipe(0.0, 0.0, false);
    song.save(&text);
    let session = load_recipe(&song.recipe()).unwrap();
    let (ctl, audio) = start(session, &config(false)).unwrap();
    assert!(ctl.wait_ready(Duration::from_secs(5)));
    let mut device = Resampled::new(audio, 48_000, 44_100).unwrap();
    let mut buf = vec![0f32; 2 * 441];
    let mut out = Vec::new();
    let mut violations = 0;
    for _ in 0..100 {
        let t = Instant::now();
        while ctl.decoded_ahead() < 4096 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let (_, v) = alloc_violations(|| device.render(&mut buf, 2, Duration::ZERO));
        violations += v;
        out.extend_from_slice(&buf);
    }
    assert_eq!(violations, 0);
    // One second at 44.1 kHz: the song's level, resampled.
    let rms =
        |x: &[f32]| (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let a = song.offline(&text);
    let (live, offline) = (rms(&out[2 * 8000..]), rms(&a[2 * 8000..2 * 48_000]));
    assert!(
        (20.0 * (live / offline).log10()).abs() < 0.2,
        "level {live} vs {offline}"
    );
}

#[test]
fn bypassing_the_master_chain_crossfades_to_the_bus_and_back() {
    let text = recipe(0.0, 0.0, false);
    let mut rig = Rig::new(&text, false);
    let latency = rig.ctl.live_latency();
    rig.play(20);
    rig.ctl.command(Command::ToggleBypass);
    rig.play(60);
    assert!(rig.ctl.snapshot().bypass_master);
    let swaps = swapped(&rig.events);
    assert_eq!(swaps.len(), 1, "{:?}", rig.events);
    assert!(swaps[0].crossfade);
    // The master chain (gain -1 dB) bypassed: the plain bus sum.
    let bypassed = rig
        .song
        .offline(&text.replace("gain_db = -1", "gain_db = 0"));
    let settled = swaps[0].position as usize + latency + 1440;
    assert_eq!(
        diff(&rig.out, &bypassed, latency as i64, settled, rig.frames()),
        0.0
    );
    rig.ctl.command(Command::ToggleBypass);
    rig.play(60);
    let swaps = swapped(&rig.events);
    assert_eq!(swaps.len(), 2);
    let settled = swaps[1].position as usize + latency + 1440;
    assert_eq!(
        diff(
            &rig.out,
            &rig.song.offline(&text),
            latency as i64,
            settled,
            rig.frames()
        ),
        0.0
    );
    assert_eq!(rig.violations, 0);
}

#[test]
fn adding_a_stem_reopens_the_streamer_and_plays_it() {
    use std::sync::atomic::Ordering::Relaxed;
    let before = recipe(0.0, 0.0, false);
    let mut rig = Rig::new(&before, false);
    let latency = rig.ctl.live_latency();
    rig.play(40);
    let after = before.replace(
        "master:chain",
        "s:stem(\"other\", \"stems/other.wav\", { gain_db = 3 }):to(master)\nmaster:chain",
    );
    rig.song.save(&after);
    rig.reload();
    rig.play(200);
    assert_eq!(swapped(&rig.events).len(), 1, "{:?}", rig.events);
    assert_eq!(rig.ctl.session().stems.len(), 3);
    let gap = rig.frames() - rig.ctl.status().position.load(Relaxed) as usize;
    // A structural change: the crossfade starts when the new graph is heard.
    let from = swapped(&rig.events)[0].position as usize + gap + latency + 1440;
    let b = rig.song.offline(&after);
    assert_eq!(
        diff(&rig.out, &b, (latency + gap) as i64, from, rig.frames()),
        0.0
    );
    assert_eq!(rig.violations, 0);
}

#[test]
fn an_empty_recipe_is_a_save_under_way_until_it_stays_empty() {
    use stemgraph::live::control::EMPTY_GRACE;
    let mut rig = Rig::new(&recipe(0.0, 0.0, false), false);
    let failed = |rig: &Rig| {
        rig.events
            .iter()
            .filter(|e| matches!(e, LiveEvent::ReloadFailed { .. }))
            .count()
    };
    // An editor truncated the file and has not written yet: no failure, the graph plays on,
    // and the reload is tried again when the grace is over.
    std::fs::write(rig.song.recipe(), "").unwrap();
    let t0 = Instant::now();
    rig.reload();
    assert_eq!(failed(&rig), 0, "{:?}", rig.events);
    // The write lands within the grace: the next look loads it without an error.
    rig.song.save(&recipe(-1.0, 0.0, false));
    while t0.elapsed() < EMPTY_GRACE + Duration::from_millis(150) {
        rig.play(1);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(failed(&rig), 0, "{:?}", rig.events);
    assert!(
        rig.events
            .iter()
            .any(|e| matches!(e, LiveEvent::Reloaded { .. })),
        "{:?}",
        rig.events
    );
    // A file that stays empty past the grace is reported (and the last good graph kept).
    std::fs::write(rig.song.recipe(), "").unwrap();
    rig.reload();
    assert_eq!(failed(&rig), 0);
    let t1 = Instant::now();
    while t1.elapsed() < EMPTY_GRACE + Duration::from_millis(150) {
        rig.play(1);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(failed(&rig), 1, "{:?}", rig.events);
}
