//! Every stateful processor hands its signal state to its successor at a hot reload
//! (`Processor::take_state`): a structural reload in the middle of a signal leaves the output of
//! an unchanged node exactly as if there had been no reload, and the hand-over never allocates.
use crate::common;

use common::live::live_block;
use common::{alloc_violations, Rng};
use stemgraph::dsp::latency_delay::LatencyDelay;
use stemgraph::dsp::param::ParamSlot;
use stemgraph::dsp::registry;
use stemgraph::dsp::{
    AudioBuffer, ConfigValue, Handover, ParamBlock, ProcessSpec, Processor, ProcessorConfig,
};
use stemgraph::engine::live::{EngineEvent, LiveEngine};
use stemgraph::engine::swap::SwapPlan;
use stemgraph::graph::diff::{plan, ScheduleShape};
use stemgraph::graph::{compile, CompileOptions, GraphSpec};
use stemgraph::render::in_memory::render_in_memory;

const FS: f64 = 48_000.0;
const BLOCK: usize = 64;
/// Frames of every test signal (half a second).
const N: usize = 24_000;
/// The block before which the reload is submitted (0.29 s in).
const SWAP_BLOCK: usize = 220;
const CROSSFADE: usize = 256;

/// Kinds without signal state: they hand nothing over.
const STATELESS: &[&str] = &["gain", "pan"];
/// Hosted third-party plugins: their state cannot be copied (only the running instance moves
/// over), and their example names no installed plugin; `tests/plugins_lv2.rs` checks the move.
const HOSTED: &[&str] = &["plugin"];

/// Stereo noise at `loud` until `until`, then at `quiet` (two channels, different noise).
fn burst(loud: f64, until: f64, quiet: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut r = Rng::new(seed);
    let end = (until * FS) as usize;
    (0..2)
        .map(|_| {
            (0..N)
                .map(|i| r.next_f64() * if i < end { loud } else { quiet })
                .collect()
        })
        .collect()
}

fn config(pairs: &[(&str, f64)]) -> ProcessorConfig {
    pairs
        .iter()
        .fold(ProcessorConfig::new(), |c, (k, v)| c.num(k, *v))
}

// ---------------------------------------------------------------------------------------------
// The processors on their own: take_state, then processing, equals continuing the original.
// ---------------------------------------------------------------------------------------------

/// A built, prepared processor with its parameters at their starting values.
struct Unit {
    p: Box<dyn Processor>,
    slots: Vec<ParamSlot>,
}

impl Unit {
    fn new(kind: &str, config: &ProcessorConfig) -> Unit {
        let built = registry::build(kind, config, 2).unwrap();
        Unit::prepared(built.processor, &built.initial)
    }
    fn prepared(mut p: Box<dyn Processor>, initial: &[f64]) -> Unit {
        p.prepare(&ProcessSpec {
            sample_rate: FS,
            max_block: BLOCK,
            input_channels: 2,
        });
        let slots = initial.iter().map(|&v| ParamSlot::new(v, BLOCK)).collect();
        Unit { p, slots }
    }
    /// Processes frames `from..to` of `x` in blocks; returns the output.
    fn run(&mut self, x: &[Vec<f64>], from: usize, to: usize) -> Vec<Vec<f64>> {
        let channels = self.p.output_channels();
        let mut out = vec![Vec::new(); channels];
        let mut buf = AudioBuffer::new(2, BLOCK);
        let mut at = from;
        while at < to {
            let n = BLOCK.min(to - at);
            for (c, ch) in x.iter().enumerate() {
                buf.channel_mut(c, n).copy_from_slice(&ch[at..at + n]);
            }
            let mut view = buf.view_mut(n);
            self.p
                .process(&mut view, None, ParamBlock::new(&self.slots));
            for (c, o) in out.iter_mut().enumerate() {
                o.extend_from_slice(buf.channel(c, n));
            }
            at += n;
        }
        out
    }
}

/// `new.take_state(old, how)` under the allocation guard: whether it took the state.
fn take(new: &mut Unit, old: &mut Unit, how: Handover) -> bool {
    let (took, violations) = alloc_violations(|| {
        assert_no_alloc::assert_no_alloc(|| new.p.take_state(&mut *old.p, how))
    });
    assert_eq!(violations, 0, "{}: the hand-over allocated", new.p.kind());
    took
}

fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()))
}

/// Drives `kind` over a signal, hands the state over by copy and then by move, and checks that
/// each successor goes on exactly as the original (and that a fresh one would not).
fn check_unit(kind: &str, config: &ProcessorConfig) {
    let x = burst(0.9, 0.1, 0.05, 7);
    // Long enough for the example delay's repeats (375 ms) of what came before `a`.
    let (a, b) = (6_000, 20_000);
    let mut original = Unit::new(kind, config);
    original.run(&x, 0, a);
    // Copy: the original goes on playing beside its successor.
    let mut copy = Unit::new(kind, config);
    assert!(
        take(&mut copy, &mut original, Handover::Copy),
        "{kind}: no hand-over by copy"
    );
    let want = original.run(&x, a, b);
    assert!(
        same_bits(&copy.run(&x, a, b), &want),
        "{kind}: after a copy the output differs from the original's"
    );
    // The state matters here: a fresh processor would not give the same.
    let mut fresh = Unit::new(kind, config);
    assert!(
        !same_bits(&fresh.run(&x, a, b), &want),
        "{kind}: the test signal leaves no state to hand over"
    );
    // Move: the successor takes the state, the predecessor is left with a fresh one.
    let mut moved = Unit::new(kind, config);
    assert!(
        take(&mut moved, &mut copy, Handover::Move),
        "{kind}: no hand-over by move"
    );
    let want = original.run(&x, b, N);
    assert!(
        same_bits(&moved.run(&x, b, N), &want),
        "{kind}: after a move the output differs from the original's"
    );
}

#[test]
fn every_stateful_kind_continues_exactly_after_a_copy_and_after_a_move() {
    for kind in registry::kinds() {
        if STATELESS.contains(&kind.name) || HOSTED.contains(&kind.name) {
            continue;
        }
        check_unit(kind.name, &(kind.example)());
    }
}

#[test]
fn the_example_of_every_stateless_kind_hands_nothing_over() {
    for kind in registry::kinds() {
        if !STATELESS.contains(&kind.name) {
            continue;
        }
        let mut a = Unit::new(kind.name, &(kind.example)());
        let mut b = Unit::new(kind.name, &(kind.example)());
        assert!(!take(&mut b, &mut a, Handover::Copy), "{}", kind.name);
    }
}

#[test]
fn the_processors_states_continue_in_their_other_modes_too() {
    use ConfigValue::{Bool, Text};
    let cases: Vec<(&str, ProcessorConfig)> = vec![
        (
            "compressor",
            config(&[("threshold_db", -30.0), ("ratio", 4.0)]),
        ),
        (
            "deesser",
            config(&[("threshold_db", -40.0)]).text("mode", "high"),
        ),
        (
            "limiter",
            config(&[("ceiling_dbtp", -6.0), ("oversampling", 1.0)])
                .with("auto_release", Bool(false)),
        ),
        (
            "saturation",
            config(&[("drive_db", 12.0)]).with("character", Text("tube".into())),
        ),
        (
            "saturation",
            config(&[("drive_db", 12.0)]).text("character", "soft"),
        ),
        (
            "delay",
            config(&[("time_ms", 30.0), ("feedback_pct", 60.0)]),
        ),
        ("dither", config(&[("bits", 8.0)])),
    ];
    for (kind, config) in &cases {
        check_unit(kind, config);
    }
}

#[test]
fn the_latency_delay_hands_its_line_over() {
    let x = burst(0.9, 0.5, 0.5, 3);
    let fresh = || Unit::prepared(Box::new(LatencyDelay::new(100, 2)), &[]);
    let mut original = fresh();
    original.run(&x, 0, 1000);
    let mut copy = fresh();
    assert!(take(&mut copy, &mut original, Handover::Copy));
    let want = original.run(&x, 1000, 2000);
    assert!(same_bits(&copy.run(&x, 1000, 2000), &want));
    assert!(!same_bits(&fresh().run(&x, 1000, 2000), &want));
    let mut moved = fresh();
    assert!(take(&mut moved, &mut copy, Handover::Move));
    assert!(same_bits(
        &moved.run(&x, 2000, 3000),
        &original.run(&x, 2000, 3000)
    ));
    // Another length: nothing to take.
    let mut other = Unit::prepared(Box::new(LatencyDelay::new(50, 2)), &[]);
    assert!(!take(&mut other, &mut original, Handover::Copy));
}

#[test]
fn a_changed_structure_takes_no_state() {
    use ConfigValue::{Bool, List, Number, Table};
    let bell = |freq: f64| {
        Table(
            ProcessorConfig::new()
                .text("type", "bell")
                .num("freq_hz", freq)
                .num("gain_db", 6.0),
        )
    };
    let cases: Vec<(&str, ProcessorConfig, ProcessorConfig)> = vec![
        (
            "dither",
            config(&[("bits", 16.0)]),
            config(&[("bits", 24.0)]),
        ),
        (
            "dither",
            config(&[("bits", 16.0), ("seed", 1.0)]),
            config(&[("bits", 16.0), ("seed", 2.0)]),
        ),
        (
            "delay",
            ProcessorConfig::new(),
            ProcessorConfig::new().with("ping_pong", Bool(true)),
        ),
        (
            "eq",
            ProcessorConfig::new().with("bands", List(vec![bell(1000.0)])),
            ProcessorConfig::new().with(
                "bands",
                List(vec![Table(
                    ProcessorConfig::new()
                        .text("type", "low_shelf")
                        .num("freq_hz", 1000.0)
                        .num("gain_db", 6.0),
                )]),
            ),
        ),
        (
            "multiband",
            ProcessorConfig::new().with("crossovers_hz", List(vec![Number(200.0)])),
            ProcessorConfig::new().with("crossovers_hz", List(vec![Number(300.0)])),
        ),
        (
            "limiter",
            config(&[("oversampling", 4.0)]),
            config(&[("oversampling", 8.0)]),
        ),
        (
            "saturation",
            ProcessorConfig::new().text("character", "tape"),
            ProcessorConfig::new().text("character", "tube"),
        ),
        (
            "compressor",
            ProcessorConfig::new(),
            ProcessorConfig::new().text("detector", "rms"),
        ),
        (
            "deesser",
            ProcessorConfig::new().text("mode", "band"),
            ProcessorConfig::new().text("mode", "high"),
        ),
        (
            "eq",
            ProcessorConfig::new().with("bands", List(vec![bell(1000.0)])),
            ProcessorConfig::new(),
        ),
    ];
    let x = burst(0.9, 0.5, 0.5, 5);
    for (kind, a, b) in &cases {
        let mut old = Unit::new(kind, a);
        let before = old.run(&x, 0, 1000);
        let mut new = Unit::new(kind, b);
        assert!(
            !take(&mut new, &mut old, Handover::Copy),
            "{kind}: {a:?} → {b:?}"
        );
        assert!(
            !take(&mut new, &mut old, Handover::Move),
            "{kind}: {a:?} → {b:?}"
        );
        // A refused hand-over leaves the old processor as it was.
        let mut again = Unit::new(kind, a);
        again.run(&x, 0, 1000);
        assert!(same_bits(
            &old.run(&x, 1000, 2000),
            &again.run(&x, 1000, 2000)
        ));
        let _ = before;
    }
}

// ---------------------------------------------------------------------------------------------
// Through the live engine: a structural reload elsewhere in the graph.
// ---------------------------------------------------------------------------------------------

/// Stem 0 through node `x` (`kind` with `config`) into the master; stem 1 (silent) into the
/// master directly, or through a gain node `b.gain` when `extra` (the structural change).
fn graph(kind: &str, config: &ProcessorConfig, extra: bool) -> GraphSpec {
    let mut g = GraphSpec::new();
    g.source("a", 0).source("b", 1).bus("master").output("main");
    g.processor("x", kind, config.clone());
    g.chain(&["a", "x", "master"]);
    if extra {
        g.processor("b.gain", "gain", ProcessorConfig::new().num("gain_db", 0.0));
        g.chain(&["b", "b.gain", "master"]);
    } else {
        g.connect("b", "master");
    }
    g.chain(&["master", "main"]);
    g
}

/// The plan of a swap from `first` to `later` (the engine's reload diff).
fn swap_plan(first: &GraphSpec, later: &GraphSpec, hand_over: bool) -> SwapPlan {
    let s0 = compile(first, CompileOptions::new(FS, BLOCK))
        .unwrap()
        .schedule;
    let c1 = compile(later, CompileOptions::new(FS, BLOCK)).unwrap();
    let (shape0, shape1) = (
        ScheduleShape::of(first, &s0),
        ScheduleShape::of(later, &c1.schedule),
    );
    let mut plan = plan(&shape0, &shape1, c1.schedule, CROSSFADE, 1);
    if !hand_over {
        // Every node starts fresh (the parameters are constant: nothing to glide either).
        plan.handovers.clear();
    }
    plan
}

/// Plays `stems` live through `first`, reloading to `later` before [`SWAP_BLOCK`]; returns the
/// output and the schedule's latency. Fails if the engine allocates.
fn play(
    first: &GraphSpec,
    later: &GraphSpec,
    stems: &[Vec<Vec<f64>>],
    hand_over: bool,
) -> (Vec<Vec<f64>>, usize) {
    let s0 = compile(first, CompileOptions::new(FS, BLOCK))
        .unwrap()
        .schedule;
    let latency = s0.latency();
    let (mut engine, mut control) = LiveEngine::new(s0, 0);
    // Pushed to inside the allocation guard: reserved here, so they never grow there.
    let mut out = vec![Vec::with_capacity(N), Vec::with_capacity(N)];
    let mut swapped = false;
    let mut violations = 0;
    for (block, done) in (0..N).step_by(BLOCK).enumerate() {
        if block == SWAP_BLOCK {
            control
                .submit(swap_plan(first, later, hand_over))
                .ok()
                .unwrap();
        }
        let frames = BLOCK.min(N - done);
        violations += live_block(&mut engine, stems, done, frames, &mut out);
        for e in control.events() {
            swapped |= matches!(
                e,
                EngineEvent::Swapped {
                    crossfade: true,
                    ..
                }
            );
        }
        control.collect_garbage();
    }
    assert_eq!(violations, 0, "the live engine allocated");
    assert!(swapped, "no structural swap happened");
    (out, latency)
}

/// A structural reload elsewhere in the graph in the middle of `signal` leaves the output of
/// the unchanged node `kind` exactly as without a reload (but for the crossfade, where the two
/// schedules play the same signal); without the hand-over it would differ.
fn check_reload(kind: &str, config: ProcessorConfig, signal: Vec<Vec<f64>>) {
    let stems = vec![signal, vec![vec![0.0; N]; 2]];
    let (first, later) = (graph(kind, &config, false), graph(kind, &config, true));
    let reference = render_in_memory(&first, &stems, FS, BLOCK)
        .unwrap()
        .remove(0);
    let (live, latency) = play(&first, &later, &stems, true);
    // The engine starts the crossfade once the new schedule's output is heard: after the live
    // latency (here the graph's own).
    let fade_at = SWAP_BLOCK * BLOCK + latency;
    let fade = fade_at..fade_at + CROSSFADE;
    for c in 0..2 {
        for j in latency..N {
            let (got, want) = (live[c][j], reference[c][j - latency]);
            if fade.contains(&j) {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{kind}: channel {c} frame {j} in the crossfade: {got} vs {want}"
                );
            } else {
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{kind}: channel {c} frame {j}: {got} vs {want}"
                );
            }
        }
    }
    // The control: the same reload with the hand-over switched off is heard after the fade.
    let (fresh, _) = play(&first, &later, &stems, false);
    let after = fade.end..N;
    assert!(
        (0..2).any(|c| fresh[c][after.clone()]
            .iter()
            .zip(&reference[c][after.start - latency..N - latency])
            .any(|(a, b)| a.to_bits() != b.to_bits())),
        "{kind}: a fresh node gives the same output: the test shows nothing"
    );
}

#[test]
fn a_compressor_mid_release_goes_on_releasing() {
    let c = config(&[
        ("threshold_db", -30.0),
        ("ratio", 4.0),
        ("attack_ms", 5.0),
        ("release_ms", 400.0),
    ]);
    check_reload("compressor", c, burst(0.8, 0.25, 0.02, 11));
}

#[test]
fn a_limiter_mid_gain_reduction_keeps_reducing() {
    let c = config(&[("ceiling_dbtp", -6.0), ("release_ms", 200.0)]);
    check_reload("limiter", c, burst(0.9, 0.35, 0.05, 12));
}

#[test]
fn a_delay_tail_rings_on() {
    let c = config(&[
        ("time_ms", 50.0),
        ("feedback_pct", 70.0),
        ("mix_pct", 100.0),
    ])
    .num("low_cut_hz", 100.0)
    .num("high_cut_hz", 8000.0);
    check_reload("delay", c, burst(0.5, 0.1, 0.0, 13));
}

#[test]
fn saturation_keeps_its_filter_states() {
    // Tube: its DC blocker remembers for long after the crossfade (the oversampler's filters
    // and tape's low-pass forget within it; the unit tests above cover those right after the
    // hand-over).
    let c = config(&[("drive_db", 18.0)]).text("character", "tube");
    check_reload("saturation", c, common::sine(N, 220.0, 0.5, FS));
}

#[test]
fn an_eq_goes_on_ringing() {
    let band = ProcessorConfig::new()
        .text("type", "bell")
        .num("freq_hz", 100.0)
        .num("gain_db", 12.0)
        .num("q", 10.0);
    let c = ProcessorConfig::new().with("bands", ConfigValue::List(vec![ConfigValue::Table(band)]));
    check_reload("eq", c, burst(0.5, 0.28, 0.0, 14));
}

#[test]
fn dither_continues_its_noise_and_its_shaper() {
    let c = config(&[("bits", 8.0), ("seed", 3.0)]).text("noise_shaping", "lipshitz");
    check_reload("dither", c, common::sine(N, 440.0, 0.1, FS));
}

#[test]
fn a_deesser_mid_reduction_goes_on() {
    let c = config(&[("threshold_db", -40.0), ("freq_hz", 6000.0)]).text("mode", "band");
    check_reload("deesser", c, burst(0.8, 0.25, 0.05, 15));
}

#[test]
fn a_multiband_compressor_mid_release_goes_on() {
    let c = (registry::find("multiband").unwrap().example)();
    check_reload("multiband", c, burst(0.8, 0.25, 0.02, 16));
}

#[test]
fn width_keeps_its_mono_maker_and_correlation() {
    let c = config(&[("width_pct", 150.0), ("mono_below_hz", 150.0)]);
    check_reload("width", c, burst(0.5, 0.5, 0.5, 17));
}
