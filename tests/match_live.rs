//! `stemgraph play --reference TRACK`: the A/B of live playback against a reference track
//! (the one a master is matched to) instead of the recipe's reference mix, loudness-matched and
//! kept across reloads. Driven by simulated device callbacks (tests/common/live_rig.rs).
use crate::common;

use common::audio::write_wav24;
use common::live_rig::{config, diff, Rig, Song, FS};
use std::time::{Duration, Instant};
use stemgraph::live::control::{Command, LiveEvent};

const RECIPE: &str = "local s = session { title = \"t\", reference = \"stems/mix.wav\" }\n\
     local master = s:bus \"master\"\n\
     s:stem(\"noise\", \"stems/noise.wav\"):to(master)\n\
     s:stem(\"tone\", \"stems/tone.wav\"):to(master)\n\
     master:chain { gain { gain_db = -1 } }:to(s:output \"main\")\n\
     return s\n";

#[test]
fn ab_plays_the_reference_track_loudness_matched_across_reloads() {
    let song = Song::new();
    let master = song.offline(RECIPE);
    let planes = |g: f64| -> Vec<Vec<f64>> {
        (0..2)
            .map(|c| {
                master
                    .iter()
                    .skip(c)
                    .step_by(2)
                    .map(|&x| g * f64::from(x))
                    .collect()
            })
            .collect()
    };
    // The recipe's reference mix: silence (it must not be what B plays). The track: the master
    // 12.04 dB down, at the session rate.
    let n = master.len() / 2;
    write_wav24(
        &song.dir.path().join("stems/mix.wav"),
        &[vec![0.0; n], vec![0.0; n]],
        FS,
    );
    let track = song.dir.path().join("track.wav");
    write_wav24(&track, &planes(0.25), FS);
    let mut cfg = config(true);
    cfg.loudness_match = true;
    cfg.reference_track = Some(track.clone());
    let mut rig = Rig::with(song, RECIPE, cfg);
    assert_eq!(
        rig.ctl.session().reference.as_deref(),
        Some(track.as_path())
    );
    let latency = rig.ctl.live_latency();
    let wait_gain = |rig: &mut Rig| {
        let t = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(5));
            rig.tick();
            let found = rig.events.iter().rev().find_map(|e| match e {
                LiveEvent::Loudness(r) => r.reference_gain_db(),
                _ => None,
            });
            if let Some(g) = found {
                break g;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", rig.events);
        }
    };
    rig.play(4);
    let gain = wait_gain(&mut rig);
    assert!((gain - 12.041).abs() < 0.05, "gain {gain}");
    rig.ctl.command(Command::ToggleAb);
    let at = rig.frames();
    rig.play(40);
    assert!(rig.ctl.snapshot().listening_reference);
    // B is the track brought up to the master's loudness: the master again.
    let d = diff(&rig.out, &master, latency as i64, at + 480, rig.frames());
    assert!(d < 1e-4, "B differs from the master by {d}");
    // A reload (the recipe saved again) keeps the track as the reference.
    rig.song
        .save(&RECIPE.replace("gain_db = -1", "gain_db = -2"));
    rig.reload();
    assert_eq!(
        rig.ctl.session().reference.as_deref(),
        Some(track.as_path())
    );
    assert_eq!(rig.violations, 0);
}
