//! The real-time engine driven from a simulated callback: hot swaps keep state, glide, crossfade,
//! and never allocate on the audio side.
use crate::common;

use common::live::live_block;
use common::noise;
use stemgraph::automation::{Breakpoint, Curve, Shape};
use stemgraph::dsp::ProcessorConfig;
use stemgraph::engine::live::{EngineEvent, LiveEngine, MAX_IN_FLIGHT};
use stemgraph::graph::diff::{plan, ScheduleShape};
use stemgraph::graph::{compile, AutomationSpec, CompileOptions, GraphSpec};
use stemgraph::render::in_memory::render_in_memory;

const FS: f64 = 48_000.0;
const BLOCK: usize = 64;

fn song(vocal_gain: f64, keys_pan: bool) -> GraphSpec {
    let mut g = GraphSpec::new();
    g.source("drums", 0)
        .source("vocals", 1)
        .source("keys", 2)
        .bus("master")
        .output("main");
    g.processor(
        "vocals.gain",
        "gain",
        ProcessorConfig::new().num("gain_db", vocal_gain),
    );
    g.chain(&["vocals", "vocals.gain", "master"]);
    g.connect("drums", "master");
    if keys_pan {
        g.processor("keys.pan", "pan", ProcessorConfig::new().num("pan", 0.7));
        g.chain(&["keys", "keys.pan", "master"]);
    } else {
        g.connect("keys", "master");
    }
    g.processor(
        "master.gain",
        "gain",
        ProcessorConfig::new().num("gain_db", -3.0),
    );
    g.chain(&["master", "master.gain", "main"]);
    g
}

fn stems(n: usize) -> Vec<Vec<Vec<f64>>> {
    (0..3).map(|i| noise(n, 0.2, 40 + i)).collect()
}

/// Plays `stems` through a live engine, submitting `later` (a new graph) before block `at`.
fn play(
    first: &GraphSpec,
    later: &GraphSpec,
    at_block: usize,
    stems: &[Vec<Vec<f64>>],
    crossfade: usize,
) -> (Vec<Vec<f64>>, Vec<EngineEvent>) {
    play_with_latency(first, later, at_block, stems, crossfade, 0)
}

/// [`play`] with the engine's output delayed to `latency` frames.
fn play_with_latency(
    first: &GraphSpec,
    later: &GraphSpec,
    at_block: usize,
    stems: &[Vec<Vec<f64>>],
    crossfade: usize,
    latency: usize,
) -> (Vec<Vec<f64>>, Vec<EngineEvent>) {
    let c0 = compile(first, CompileOptions::new(FS, BLOCK)).unwrap();
    let shape0 = ScheduleShape::of(first, &c0.schedule);
    let (mut engine, mut control) = LiveEngine::new(c0.schedule, latency);
    let n = stems[0][0].len();
    // Appended to inside the allocation guard: reserved here, so they never grow there.
    let mut out = vec![Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut events = Vec::new();
    let mut block = 0;
    let mut done = 0;
    let mut violations = 0;
    while done < n {
        if block == at_block {
            let c1 = compile(later, CompileOptions::new(FS, BLOCK)).unwrap();
            let shape1 = ScheduleShape::of(later, &c1.schedule);
            control
                .submit(plan(&shape0, &shape1, c1.schedule, crossfade, 1))
                .ok()
                .unwrap();
        }
        let frames = BLOCK.min(n - done);
        violations += live_block(&mut engine, stems, done, frames, &mut out);
        events.extend(control.events());
        control.collect_garbage();
        done += frames;
        block += 1;
    }
    assert_eq!(violations, 0, "the live engine allocated");
    (out, events)
}

#[test]
fn a_parameter_reload_equals_the_same_change_automated() {
    let stems = stems(48_000);
    let at_block = 300;
    let swap_at = (at_block * BLOCK) as i64;
    let (live, events) = play(&song(0.0, true), &song(-6.0, true), at_block, &stems, 2048);
    assert!(events.contains(&EngineEvent::Swapped {
        generation: 1,
        position: swap_at,
        crossfade: false
    }));
    // Offline: the same graph with the change automated as a step at the swap sample.
    let mut g = song(0.0, true);
    g.automation.push(AutomationSpec {
        param: "vocals.gain.gain_db".into(),
        curve: Curve::new(vec![
            Breakpoint {
                pos: 0,
                value: 0.0,
                shape: Shape::Step,
            },
            Breakpoint {
                pos: swap_at,
                value: -6.0,
                shape: Shape::Step,
            },
        ])
        .unwrap(),
        origin: None,
    });
    let offline = render_in_memory(&g, &stems, FS, BLOCK).unwrap();
    for c in 0..2 {
        let identical = live[c]
            .iter()
            .zip(&offline[0][c])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(identical, "channel {c} differs");
    }
    // And it did change: after the glide the vocal is 6 dB down.
    assert_ne!(
        live[0][swap_at as usize + 2000],
        render_in_memory(&song(0.0, true), &stems, FS, BLOCK).unwrap()[0][0]
            [swap_at as usize + 2000]
    );
}

#[test]
fn a_structural_reload_crossfades_without_a_jump() {
    let n = 48_000;
    let sine = common::sine(n, 220.0, 0.3, FS);
    let quiet = vec![vec![0.0; n], vec![0.0; n]];
    let stems = vec![sine.clone(), quiet.clone(), sine.clone()];
    let at_block = 200;
    let (live, events) = play(&song(0.0, false), &song(0.0, true), at_block, &stems, 1200);
    let swap_at = at_block * BLOCK;
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Swapped { crossfade: true, position, .. } if *position == swap_at as i64)));
    let max_jump = |x: &[f64]| {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max)
    };
    let before = render_in_memory(&song(0.0, false), &stems, FS, BLOCK).unwrap();
    let after = render_in_memory(&song(0.0, true), &stems, FS, BLOCK).unwrap();
    for c in 0..2 {
        let own = max_jump(&before[0][c]).max(max_jump(&after[0][c]));
        assert!(
            max_jump(&live[c]) <= own * 1.0001,
            "channel {c}: a click at the swap"
        );
        // Before the swap: the old graph exactly; after the crossfade: the new graph exactly.
        assert_eq!(&live[c][..swap_at], &before[0][c][..swap_at]);
        assert_eq!(&live[c][swap_at + 1200..], &after[0][c][swap_at + 1200..]);
    }
    // During it, something in between (it is not a cut): the pan only turns the left side down.
    let mid = swap_at + 600;
    let (b, a, l) = (before[0][0][mid], after[0][0][mid], live[0][mid]);
    assert!(
        (l - (a + b) / 2.0).abs() < 0.01 * b.abs().max(1e-3),
        "{b} {a} {l}"
    );
}

#[test]
fn nan_from_a_node_is_muted_and_reported() {
    let n = 4096;
    let mut bad = noise(n, 0.2, 3);
    bad[0][1000] = f64::NAN;
    let stems = vec![noise(n, 0.2, 1), bad, noise(n, 0.2, 2)];
    let (live, events) = play(&song(0.0, true), &song(0.0, true), usize::MAX, &stems, 0);
    assert!(live.iter().all(|c| c.iter().all(|x| x.is_finite())));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EngineEvent::NonFinite { .. })),
        "{events:?}"
    );
}

#[test]
fn with_latency_headroom_a_structural_crossfade_starts_when_the_new_graph_is_heard() {
    // Live playback reserves output latency beyond the graph's own: the new schedule's output
    // only carries what it processed after that delay, so the crossfade must start there (not
    // fade towards the silence of a delay line still filling).
    let n = 48_000;
    let latency = 480;
    let sine = common::sine(n, 220.0, 0.3, FS);
    let quiet = vec![vec![0.0; n], vec![0.0; n]];
    let stems = vec![sine.clone(), quiet, sine];
    let at_block = 200;
    let (live, events) = play_with_latency(
        &song(0.0, false),
        &song(0.0, true),
        at_block,
        &stems,
        1200,
        latency,
    );
    let swap_at = at_block * BLOCK;
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Swapped { crossfade: true, position, .. } if *position == swap_at as i64)));
    let before = render_in_memory(&song(0.0, false), &stems, FS, BLOCK).unwrap();
    let after = render_in_memory(&song(0.0, true), &stems, FS, BLOCK).unwrap();
    let max_jump = |x: &[f64]| {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max)
    };
    for c in 0..2 {
        assert!(live[c][..latency].iter().all(|&x| x == 0.0));
        // The old graph until the swap is heard, the new one after the crossfade: exactly.
        assert_eq!(
            &live[c][latency..swap_at + latency],
            &before[0][c][..swap_at]
        );
        assert_eq!(
            &live[c][swap_at + latency + 1200..],
            &after[0][c][swap_at + 1200..n - latency]
        );
        let own = max_jump(&before[0][c]).max(max_jump(&after[0][c]));
        assert!(max_jump(&live[c]) <= own * 1.0001, "channel {c}: a click");
    }
    // Half-way through the crossfade: between the two, no dip.
    let mid = swap_at + latency + 600;
    let (b, a, l) = (
        before[0][0][mid - latency],
        after[0][0][mid - latency],
        live[0][mid],
    );
    assert!(
        (l - (a + b) / 2.0).abs() < 0.01 * b.abs().max(1e-3),
        "{b} {a} {l}"
    );
}

#[test]
fn a_burst_of_swaps_never_frees_a_schedule_on_the_audio_thread() {
    // One swap per block, three times as many as the retire queue holds, and nothing collected
    // meanwhile: the control side must refuse once `MAX_IN_FLIGHT` are out, the audio side must
    // never find the retire queue full (it would free the schedule there), and every schedule
    // handed over must come back to be dropped on this thread.
    let first = song(0.0, true);
    let c0 = compile(&first, CompileOptions::new(FS, BLOCK)).unwrap();
    let mut shape = ScheduleShape::of(&first, &c0.schedule);
    let (mut engine, mut control) = LiveEngine::new(c0.schedule, 0);
    let stems = stems(BLOCK);
    let (mut accepted, mut refused, mut violations) = (0, 0, 0);
    let run_block = |engine: &mut LiveEngine| live_block(engine, &stems, 0, BLOCK, &mut []);
    for round in 0..3 * MAX_IN_FLIGHT {
        // Parameter changes (seamless swaps) and structural ones (crossfades), alternating.
        let spec = song(-((round % 5) as f64), round % 3 != 0);
        let c = compile(&spec, CompileOptions::new(FS, BLOCK)).unwrap();
        let next = ScheduleShape::of(&spec, &c.schedule);
        match control.submit(plan(&shape, &next, c.schedule, 4 * BLOCK, round as u64 + 1)) {
            Ok(()) => {
                accepted += 1;
                shape = next;
            }
            Err(_) => refused += 1,
        }
        assert!(control.outstanding() <= MAX_IN_FLIGHT);
        violations += run_block(&mut engine);
    }
    assert_eq!(violations, 0, "the audio side allocated or freed");
    assert_eq!(engine.retire_overflows(), 0);
    assert_eq!(
        accepted, MAX_IN_FLIGHT,
        "the bound lets exactly the queue's worth through"
    );
    assert_eq!(refused, 2 * MAX_IN_FLIGHT);
    // Let the last crossfade finish, then everything handed over comes back here.
    for _ in 0..16 {
        violations += run_block(&mut engine);
    }
    assert_eq!(violations, 0);
    assert_eq!(control.collect_garbage(), accepted);
    assert_eq!(control.outstanding(), 0);
    assert!(control.has_room());
    assert_eq!(engine.generation(), accepted as u64);
    let swaps = control
        .events()
        .into_iter()
        .filter(|e| matches!(e, EngineEvent::Swapped { .. }))
        .count();
    assert_eq!(swaps, accepted);
}
