//! The engine: transparency, block-size independence, determinism and the real-time rules.
use crate::common;

use common::{alloc_violations, noise};
use stemgraph::automation::{Breakpoint, Curve, Shape};
use stemgraph::dsp::ProcessorConfig;
use stemgraph::graph::{AutomationSpec, GraphSpec};
use stemgraph::render::in_memory::render_in_memory;

const FS: f64 = 48_000.0;

fn four_stems(n: usize) -> Vec<Vec<Vec<f64>>> {
    (0..4).map(|i| noise(n, 0.25, 17 + i as u64)).collect()
}

fn unity_graph() -> GraphSpec {
    let mut g = GraphSpec::new();
    // Declared out of id order on purpose: the sum order is by id, not by recipe order.
    g.source("vocals", 3)
        .source("bass", 1)
        .source("drums", 0)
        .source("keys", 2);
    g.bus("master").output("main");
    for s in ["vocals", "bass", "drums", "keys"] {
        g.connect(s, "master");
    }
    g.connect("master", "main");
    g
}

#[test]
fn stems_at_unity_sum_exactly_to_the_plain_sum() {
    let n = 48_000;
    let stems = four_stems(n);
    let (out, violations) =
        alloc_violations(|| render_in_memory(&unity_graph(), &stems, FS, 512).unwrap());
    assert_eq!(violations, 0, "the engine allocated while processing");
    // Plain floating-point sum in id order: bass(1), drums(0), keys(2), vocals(3).
    for c in 0..2 {
        for k in 0..n {
            let expected = 0.0 + stems[1][c][k] + stems[0][c][k] + stems[2][c][k] + stems[3][c][k];
            assert_eq!(
                out[0][c][k].to_bits(),
                expected.to_bits(),
                "channel {c} frame {k}"
            );
        }
    }
}

fn ramp(param: &str, from_s: f64, to_s: f64, a: f64, b: f64) -> AutomationSpec {
    AutomationSpec {
        param: param.into(),
        curve: Curve::new(vec![
            Breakpoint {
                pos: (from_s * FS) as i64,
                value: a,
                shape: Shape::Linear,
            },
            Breakpoint {
                pos: (to_s * FS) as i64,
                value: b,
                shape: Shape::Step,
            },
            Breakpoint {
                pos: ((to_s + 0.1) * FS) as i64,
                value: a,
                shape: Shape::Smooth,
            },
        ])
        .unwrap(),
        origin: None,
    }
}

/// Every processor built so far, with automation and parallel paths.
fn busy_graph() -> GraphSpec {
    let mut g = unity_graph();
    g.edges.retain(|e| e.from != "vocals" && e.from != "keys");
    g.processor(
        "vocals.gain",
        "gain",
        ProcessorConfig::new().num("gain_db", -2.0),
    );
    g.processor("vocals.pan", "pan", ProcessorConfig::new().num("pan", 0.3));
    g.processor("keys.pan", "pan", ProcessorConfig::new().num("pan", -0.5));
    g.chain(&["vocals", "vocals.gain", "vocals.pan"]);
    g.connect_port("vocals.pan", "master", stemgraph::dsp::Port::Main, -1.5);
    g.connect("keys", "keys.pan").connect("keys.pan", "master");
    g.automation
        .push(ramp("vocals.gain.gain_db", 0.1, 0.4, -2.0, 3.0));
    g.automation
        .push(ramp("keys.pan.pan", 0.05, 0.3, -0.5, 0.8));
    g.automation.push(ramp(
        "master.send.vocals.pan.gain_db",
        0.2,
        0.5,
        -1.5,
        -12.0,
    ));
    g.automation.push(ramp("drums.invert", 0.3, 0.35, 0.0, 1.0));
    g
}

#[test]
fn output_does_not_depend_on_the_block_size() {
    let stems = four_stems(36_000);
    let g = busy_graph();
    let reference = render_in_memory(&g, &stems, FS, 4096).unwrap();
    for block in [1, 64, 997] {
        let (out, violations) =
            alloc_violations(|| render_in_memory(&g, &stems, FS, block).unwrap());
        assert_eq!(violations, 0);
        for c in 0..2 {
            let same = out[0][c]
                .iter()
                .zip(&reference[0][c])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "block {block} differs on channel {c}");
        }
    }
}

#[test]
fn two_renders_are_identical() {
    let stems = four_stems(20_000);
    let g = busy_graph();
    let a = render_in_memory(&g, &stems, FS, 333).unwrap();
    let b = render_in_memory(&g, &stems, FS, 333).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_gain_step_glides_without_a_click() {
    // A step in gain_db from 0 to +12 dB at 0.1 s on a sine: the largest sample-to-sample change
    // must stay within the sine's own largest change at the louder level.
    let n = 12_000;
    let sine = common::sine(n, 440.0, 0.2, FS);
    let mut g = GraphSpec::new();
    g.source("s", 0)
        .processor("g", "gain", ProcessorConfig::new())
        .output("o");
    g.chain(&["s", "g", "o"]);
    g.automation.push(AutomationSpec {
        param: "g.gain_db".into(),
        curve: Curve::new(vec![
            Breakpoint {
                pos: 0,
                value: 0.0,
                shape: Shape::Step,
            },
            Breakpoint {
                pos: 4800,
                value: 12.0,
                shape: Shape::Step,
            },
        ])
        .unwrap(),
        origin: None,
    });
    let out = render_in_memory(&g, &[sine.clone()], FS, 256).unwrap();
    let max_jump = |x: &[f64]| {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f64::max)
    };
    let loud: Vec<f64> = sine[0]
        .iter()
        .map(|x| x * stemgraph::units::db_to_gain(12.0))
        .collect();
    assert!(max_jump(&out[0][0]) <= max_jump(&loud) * 1.0001);
    // And it does arrive at +12 dB.
    let tail_peak = out[0][0][9000..].iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!((stemgraph::units::gain_to_db(tail_peak / 0.2) - 12.0).abs() < 0.01);
}

#[test]
fn gain_ramp_starts_on_the_exact_sample() {
    let n = 4000;
    let ones = vec![vec![1.0; n], vec![1.0; n]];
    let mut g = GraphSpec::new();
    g.source("s", 0)
        .processor("g", "gain", ProcessorConfig::new())
        .output("o");
    g.chain(&["s", "g", "o"]);
    g.automation.push(AutomationSpec {
        param: "g.gain_db".into(),
        curve: Curve::new(vec![
            Breakpoint {
                pos: 1234,
                value: 0.0,
                shape: Shape::Linear,
            },
            Breakpoint {
                pos: 2234,
                value: -6.0,
                shape: Shape::Linear,
            },
        ])
        .unwrap(),
        origin: None,
    });
    for block in [1, 64, 997, 4096] {
        let out = render_in_memory(&g, &[ones.clone()], FS, block).unwrap();
        assert_eq!(out[0][0][1234], 1.0, "block {block}");
        assert!(out[0][0][1235] < 1.0, "block {block}");
    }
}

fn cfg(pairs: &[(&str, f64)]) -> ProcessorConfig {
    pairs
        .iter()
        .fold(ProcessorConfig::new(), |c, (k, v)| c.num(k, *v))
}

fn table(pairs: &[(&str, stemgraph::dsp::ConfigValue)]) -> stemgraph::dsp::ConfigValue {
    let mut t = ProcessorConfig::new();
    for (k, v) in pairs {
        t.entries.insert(k.to_string(), v.clone());
    }
    stemgraph::dsp::ConfigValue::Table(t)
}

/// Every processor kind in one graph, with latency (limiter, saturation), a side-chain key, a
/// send into a delay return, and automation.
fn everything_graph() -> GraphSpec {
    use stemgraph::dsp::ConfigValue::{List, Number as N, Text as T};
    let mut g = GraphSpec::new();
    g.source("drums", 0)
        .source("bass", 1)
        .source("keys", 2)
        .source("vocals", 3);
    g.bus("master").bus("echo").output("main");
    let eq = ProcessorConfig::new().with(
        "bands",
        List(vec![
            table(&[
                ("type", T("high_pass".into())),
                ("freq_hz", N(30.0)),
                ("slope_db", N(24.0)),
            ]),
            table(&[
                ("type", T("bell".into())),
                ("freq_hz", N(2500.0)),
                ("gain_db", N(2.0)),
                ("q", N(1.2)),
            ]),
            table(&[
                ("type", T("tilt".into())),
                ("freq_hz", N(1000.0)),
                ("gain_db", N(-1.0)),
                ("mode", T("side".into())),
            ]),
        ]),
    );
    g.processor("drums.eq", "eq", eq.clone());
    g.processor(
        "drums.sat",
        "saturation",
        cfg(&[("drive_db", 6.0), ("mix_pct", 50.0)]),
    );
    g.chain(&["drums", "drums.eq", "drums.sat", "master"]);
    g.processor(
        "bass.comp",
        "compressor",
        cfg(&[("threshold_db", -30.0), ("ratio", 4.0), ("attack_ms", 5.0)]),
    );
    g.chain(&["bass", "bass.comp", "master"]);
    g.connect_port("drums", "bass.comp", stemgraph::dsp::Port::Key, 0.0);
    g.processor(
        "keys.mb",
        "multiband",
        ProcessorConfig::new()
            .with("crossovers_hz", List(vec![N(150.0), N(3000.0)]))
            .num("1.ratio", 3.0)
            .num("1.threshold_db", -30.0),
    );
    g.processor("keys.pan", "pan", cfg(&[("pan", -0.3)]));
    g.chain(&["keys", "keys.mb", "keys.pan", "master"]);
    g.processor(
        "vocals.deess",
        "deesser",
        cfg(&[("freq_hz", 6500.0), ("threshold_db", -40.0)]),
    );
    g.processor("vocals.gain", "gain", cfg(&[("gain_db", 1.0)]));
    g.chain(&["vocals", "vocals.deess", "vocals.gain", "master"]);
    g.connect_port("vocals.gain", "echo", stemgraph::dsp::Port::Main, -12.0);
    g.processor(
        "echo.delay",
        "delay",
        cfg(&[
            ("time_ms", 125.0),
            ("feedback_pct", 40.0),
            ("high_cut_hz", 5000.0),
        ]),
    );
    g.chain(&["echo", "echo.delay", "master"]);
    g.processor("master.eq", "eq", eq);
    g.processor(
        "master.width",
        "width",
        cfg(&[("width_pct", 120.0), ("mono_below_hz", 120.0)]),
    );
    g.processor(
        "master.limiter",
        "limiter",
        cfg(&[("ceiling_dbtp", -1.0), ("input_gain_db", 6.0)]),
    );
    g.processor(
        "master.dither",
        "dither",
        cfg(&[("bits", 16.0), ("seed", 7.0)]),
    );
    g.chain(&[
        "master",
        "master.eq",
        "master.width",
        "master.limiter",
        "master.dither",
        "main",
    ]);
    g.automation
        .push(ramp("vocals.gain.gain_db", 0.1, 0.3, 1.0, -4.0));
    g.automation
        .push(ramp("master.eq.2.freq_hz", 0.05, 0.4, 2500.0, 600.0));
    g.automation
        .push(ramp("bass.comp.threshold_db", 0.2, 0.35, -30.0, -10.0));
    g.automation
        .push(ramp("echo.delay.feedback_pct", 0.1, 0.2, 40.0, 10.0));
    g.automation
        .push(ramp("master.limiter.input_gain_db", 0.15, 0.45, 6.0, 9.0));
    g
}

#[test]
fn every_processor_together_does_not_depend_on_the_block_size() {
    let stems = four_stems(30_000);
    let g = everything_graph();
    let compiled =
        stemgraph::graph::compile(&g, stemgraph::graph::CompileOptions::new(FS, 64)).unwrap();
    assert!(
        compiled.schedule.latency() > 0,
        "the graph has latency to compensate"
    );
    let reference = render_in_memory(&g, &stems, FS, 4096).unwrap();
    for block in [1, 64, 997] {
        let (out, violations) =
            alloc_violations(|| render_in_memory(&g, &stems, FS, block).unwrap());
        assert_eq!(violations, 0, "allocation while processing");
        for c in 0..2 {
            assert!(
                out[0][c]
                    .iter()
                    .zip(&reference[0][c])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "block {block} differs on channel {c}"
            );
        }
    }
}

#[test]
fn latency_compensation_keeps_parallel_paths_aligned() {
    // An impulse on two stems; one goes through a limiter (lookahead latency) and a saturation
    // (oversampling latency), the other straight to the bus: both arrive on the same sample.
    let n = 4800;
    let mut imp = vec![vec![0.0; n], vec![0.0; n]];
    imp[0][1000] = 0.25;
    imp[1][1000] = 0.25;
    let mut g = GraphSpec::new();
    g.source("a", 0).source("b", 1).bus("master").output("main");
    g.processor(
        "a.sat",
        "saturation",
        cfg(&[("drive_db", 0.0), ("mix_pct", 0.0)]),
    );
    g.processor("a.lim", "limiter", cfg(&[("ceiling_dbtp", -1.0)]));
    g.chain(&["a", "a.sat", "a.lim", "master"]);
    g.connect("b", "master").connect("master", "main");
    let compiled =
        stemgraph::graph::compile(&g, stemgraph::graph::CompileOptions::new(FS, 64)).unwrap();
    assert!(compiled.schedule.latency() > 0);
    let out = render_in_memory(&g, &[imp.clone(), imp], FS, 64).unwrap();
    let peak = out[0][0].iter().enumerate().fold((0, 0.0f64), |b, (i, x)| {
        if x.abs() > b.1 {
            (i, x.abs())
        } else {
            b
        }
    });
    assert_eq!(peak.0, 1000, "the paths met at different samples");
    assert!(
        (peak.1 - 0.5).abs() < 1e-3,
        "both impulses add up: {}",
        peak.1
    );
}
