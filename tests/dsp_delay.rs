//! The feedback delay through the real engine: where the repeats land and how they decay, note
//! values at a tempo, the declared tail, block-size invariance with automation, glides of the
//! time without clicks — all under the allocation guard.
use crate::common;

use stemgraph::automation::{Breakpoint, Curve, Shape};
use stemgraph::dsp::registry::build;
use stemgraph::dsp::{ConfigValue, Handover, ProcessSpec, ProcessorConfig};
use stemgraph::graph::{AutomationSpec, GraphSpec};
use stemgraph::render::in_memory::{render_in_memory, single_processor_graph, Planar};

fn delay_graph(config: ProcessorConfig, channels: usize) -> GraphSpec {
    single_processor_graph("delay", config, channels)
}

/// Renders under the allocation guard and checks it saw no allocation.
fn render(spec: &GraphSpec, input: &Planar, fs: f64, block: usize) -> Planar {
    let (out, violations) =
        common::alloc_violations(|| render_in_memory(spec, std::slice::from_ref(input), fs, block));
    assert_eq!(violations, 0, "allocation on the audio path");
    out.expect("render").remove(0)
}

fn curve(points: &[(i64, f64, Shape)]) -> Curve {
    Curve::new(
        points
            .iter()
            .map(|&(pos, value, shape)| Breakpoint { pos, value, shape })
            .collect(),
    )
    .unwrap()
}

fn automate(spec: &mut GraphSpec, param: &str, c: Curve) {
    spec.automation.push(AutomationSpec {
        param: param.into(),
        curve: c,
        origin: None,
    });
}

fn impulse(n: usize, channels: usize) -> Planar {
    let mut x = vec![vec![0.0; n]; channels];
    for ch in &mut x {
        ch[0] = 1.0;
    }
    x
}

/// The declared tail in samples of a delay built from `config`.
fn declared_tail(config: &ProcessorConfig, channels: usize, fs: f64) -> usize {
    let mut b = build("delay", config, channels).unwrap();
    b.processor.prepare(&ProcessSpec {
        sample_rate: fs,
        max_block: 512,
        input_channels: channels,
    });
    b.processor.tail()
}

fn max_jump(x: &[f64], from: usize) -> f64 {
    x[from.max(1)..]
        .iter()
        .zip(&x[from.max(1) - 1..])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

#[test]
fn an_impulse_comes_back_at_the_delay_time_decaying_by_the_feedback() {
    for (fs, time_ms) in [(48000.0f64, 250.0f64), (44100.0, 10.01), (96000.0, 3.3333)] {
        let d = (time_ms * 0.001 * fs).round() as usize;
        let config = ProcessorConfig::new()
            .num("time_ms", time_ms)
            .num("feedback_pct", 50.0)
            .num("mix_pct", 100.0);
        let y = render(&delay_graph(config, 1), &impulse(1, 1), fs, 512);
        let y = &y[0];
        assert!(y.len() > 10 * d, "the tail holds the repeats");
        for (n, &v) in y.iter().enumerate() {
            let expected = if n > 0 && n % d == 0 {
                0.5f64.powi((n / d) as i32 - 1)
            } else {
                0.0
            };
            assert_eq!(v, expected, "fs {fs}, {time_ms} ms: sample {n}");
        }
    }
}

#[test]
fn dry_wet_mix_and_stereo_channels() {
    let fs = 48000.0;
    let config = ProcessorConfig::new()
        .num("time_ms", 100.0)
        .num("feedback_pct", 25.0)
        .num("mix_pct", 40.0);
    let mut x = impulse(1, 2);
    x[1][0] = -2.0;
    let y = render(&delay_graph(config, 2), &x, fs, 333);
    let d = 4800;
    for (c, scale) in [(0, 1.0), (1, -2.0)] {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(y[c][0], 0.6 * scale));
        assert!(close(y[c][d], 0.4 * scale));
        assert!(close(y[c][2 * d], 0.4 * 0.25 * scale));
        assert_eq!(y[c][d + 1], 0.0);
    }
}

#[test]
fn ping_pong_alternates_sides() {
    let fs = 48000.0;
    let config = ProcessorConfig::new()
        .num("time_ms", 50.0)
        .num("feedback_pct", 60.0)
        .with("ping_pong", ConfigValue::Bool(true));
    let y = render(&delay_graph(config.clone(), 2), &impulse(1, 2), fs, 64);
    let d = 2400;
    for k in 1..8usize {
        let level = 0.6f64.powi(k as i32 - 1);
        let (hit, quiet) = if k % 2 == 1 { (0, 1) } else { (1, 0) };
        assert!((y[hit][k * d] - level).abs() < 1e-15, "repeat {k}");
        assert_eq!(y[quiet][k * d], 0.0, "repeat {k} on the wrong side");
    }
    // Mono input: refused.
    let e = build("delay", &config, 1).err().unwrap().to_string();
    assert!(e.contains("stereo"), "{e}");
}

#[test]
fn note_values_at_a_tempo_give_the_right_times() {
    let fs = 48000.0;
    for (note, bpm, ms) in [
        ("1/4", 120.0, 500.0),
        ("1/8", 120.0, 250.0),
        ("1/4.", 100.0, 900.0),
        ("1/8t", 140.0, 60000.0 / 140.0 / 2.0 * 2.0 / 3.0),
        ("1/16", 90.0, 60000.0 / 90.0 / 4.0),
        ("3/16", 128.0, 60000.0 / 128.0 * 0.75),
    ] {
        let config = ProcessorConfig::new()
            .text("note", note)
            .num("tempo_bpm", bpm)
            .num("feedback_pct", 0.0);
        let b = build("delay", &config, 1).unwrap();
        assert!(
            (b.initial[0] - ms).abs() < 1e-9,
            "{note} at {bpm}: {}",
            b.initial[0]
        );
        assert!(!b.processor.params()[0].automatable);
        let y = render(&delay_graph(config, 1), &impulse(1, 1), fs, 256);
        let d = (ms * 0.001 * fs).round() as usize;
        let hit = y[0].iter().position(|&v| v != 0.0).unwrap();
        assert_eq!(hit, d, "{note} at {bpm} bpm");
        assert_eq!(y[0][d], 1.0);
    }
    let err = |c: ProcessorConfig| build("delay", &c, 2).err().unwrap().to_string();
    assert!(err(ProcessorConfig::new().text("note", "1/8")).contains("tempo_bpm"));
    assert!(err(ProcessorConfig::new()
        .text("note", "1/8")
        .num("tempo_bpm", 120.0)
        .num("time_ms", 300.0))
    .contains("not both"));
    assert!(err(ProcessorConfig::new()
        .text("note", "2/1")
        .num("tempo_bpm", 40.0))
    .contains("between 1 and 4000"));
    assert!(err(ProcessorConfig::new()
        .text("note", "eighth")
        .num("tempo_bpm", 120.0))
    .contains("note value"));
    // A tempo-synced time cannot be automated.
    let mut spec = delay_graph(
        ProcessorConfig::new()
            .text("note", "1/8")
            .num("tempo_bpm", 120.0),
        2,
    );
    automate(
        &mut spec,
        "fx.time_ms",
        curve(&[(0, 100.0, Shape::Linear), (100, 200.0, Shape::Linear)]),
    );
    assert!(render_in_memory(&spec, &[impulse(10, 2)], fs, 64).is_err());
}

/// Energy of `y` from sample `from` on, relative to an input of energy 1, in dB.
fn energy_db(y: &[f64], from: usize) -> f64 {
    10.0 * y[from..].iter().map(|v| v * v).sum::<f64>().log10()
}

#[test]
fn the_tail_covers_the_repeats() {
    let fs = 48000.0;
    let cases = [
        ProcessorConfig::new()
            .num("time_ms", 250.0)
            .num("feedback_pct", 50.0),
        ProcessorConfig::new()
            .num("time_ms", 80.0)
            .num("feedback_pct", 80.0)
            .num("low_cut_hz", 150.0)
            .num("high_cut_hz", 4000.0),
        // Short time, high feedback and a low cut that rings long.
        ProcessorConfig::new()
            .num("time_ms", 5.0)
            .num("feedback_pct", 90.0)
            .num("low_cut_hz", 20.0),
        ProcessorConfig::new()
            .num("time_ms", 30.0)
            .num("feedback_pct", 70.0)
            .num("high_cut_hz", 500.0)
            .with("ping_pong", ConfigValue::Bool(true)),
        ProcessorConfig::new()
            .num("time_ms", 400.0)
            .num("feedback_pct", 0.0),
    ];
    for config in cases {
        let tail = declared_tail(&config, 2, fs);
        // The render with its tail holds every repeat above −120 dB...
        let y = render(&delay_graph(config.clone(), 2), &impulse(1, 2), fs, 512);
        assert_eq!(y[0].len(), 1 + tail);
        // ...and a longer render shows nothing of weight after it.
        let y = render(
            &delay_graph(config.clone(), 2),
            &impulse(tail + 1, 2),
            fs,
            512,
        );
        for ch in &y {
            let total = energy_db(ch, 0);
            let after = energy_db(ch, tail + 1);
            println!(
                "{config:?}: tail {:.3} s, energy after it {after:.1} dB (total {total:.1} dB)",
                tail as f64 / fs
            );
            assert!(after < -120.0, "{config:?}: {after} dB after the tail");
        }
    }
    // The cap.
    let huge = ProcessorConfig::new()
        .num("time_ms", 4000.0)
        .num("feedback_pct", 95.0);
    assert_eq!(declared_tail(&huge, 2, fs), 30 * 48000);
}

fn automated_delay(len: i64) -> GraphSpec {
    use Shape::*;
    let mut spec = delay_graph(
        ProcessorConfig::new()
            .num("time_ms", 120.0)
            .num("feedback_pct", 60.0)
            .num("mix_pct", 70.0)
            .num("low_cut_hz", 200.0)
            .num("high_cut_hz", 5000.0)
            .with("ping_pong", ConfigValue::Bool(true)),
        2,
    );
    automate(
        &mut spec,
        "fx.time_ms",
        curve(&[
            (0, 120.0, Step),
            (len / 4, 300.0, Exponential),
            (len / 2, 90.0, Step),
            (len * 3 / 4, 200.0, Linear),
            (len, 200.0, Linear),
        ]),
    );
    automate(
        &mut spec,
        "fx.feedback_pct",
        curve(&[(len / 3, 60.0, Linear), (len / 2, 90.0, Linear)]),
    );
    automate(
        &mut spec,
        "fx.mix_pct",
        curve(&[
            (len / 5, 70.0, Step),
            (len / 3, 100.0, Linear),
            (len, 50.0, Linear),
        ]),
    );
    automate(
        &mut spec,
        "fx.low_cut_hz",
        curve(&[(0, 200.0, Exponential), (len / 2, 40.0, Linear)]),
    );
    automate(
        &mut spec,
        "fx.high_cut_hz",
        curve(&[(len / 4, 5000.0, Exponential), (len / 2, 12000.0, Linear)]),
    );
    spec
}

#[test]
fn output_is_independent_of_the_block_size_under_automation() {
    let fs = 48000.0;
    let len = 48000;
    let x = common::noise(len, 0.5, 21);
    let spec = automated_delay(len as i64);
    let reference = render(&spec, &x, fs, 4096);
    for block in [1, 64, 997] {
        let y = render(&spec, &x, fs, block);
        for c in 0..2 {
            assert_eq!(y[c].len(), reference[c].len());
            let same = y[c]
                .iter()
                .zip(&reference[c])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "block {block} differs from block 4096 (channel {c})");
        }
    }
}

#[test]
fn time_changes_glide_without_clicks() {
    let fs = 48000.0;
    let n = 96000;
    for sine in [220.0, 2000.0] {
        let x = common::sine(n, sine, 0.5, fs);
        let input_jump = max_jump(&x[0], 1);
        for (from, to) in [
            (300.0, 120.0),
            (120.0, 300.0),
            (40.0, 1500.0),
            (1500.0, 5.0),
        ] {
            let config = ProcessorConfig::new()
                .num("time_ms", from)
                .num("feedback_pct", 0.0)
                .num("mix_pct", 100.0);
            let mut spec = delay_graph(config, 2);
            automate(
                &mut spec,
                "fx.time_ms",
                curve(&[(0, from, Shape::Step), (n as i64 / 4, to, Shape::Step)]),
            );
            let y = render(&spec, &x, fs, 500);
            // From when the first repeat has arrived.
            let start = (from * 0.001 * fs) as usize + 2;
            let jump = max_jump(&y[0][..n], start);
            // Playback speed stays within 1 ± 0.5, so the wet signal's slope stays within 1.5×
            // the input's; the no-click bound is the held-still output's slope plus the input's.
            println!("{sine} Hz, {from} → {to} ms: largest jump {jump:.4} (input {input_jump:.4})");
            assert!(
                jump <= 2.0 * input_jump,
                "{from} → {to} ms on {sine} Hz clicks: {jump} > 2 × {input_jump}"
            );
        }
    }
    // With feedback, fast automation: bounded and finite.
    let x = common::noise(n, 0.5, 2);
    let mut spec = delay_graph(
        ProcessorConfig::new()
            .num("time_ms", 50.0)
            .num("feedback_pct", 95.0)
            .num("high_cut_hz", 8000.0),
        2,
    );
    let pts: Vec<(i64, f64, Shape)> = (0..40)
        .map(|i| {
            (
                i * 2400,
                if i % 2 == 0 { 1.0 } else { 4000.0 },
                Shape::Exponential,
            )
        })
        .collect();
    automate(&mut spec, "fx.time_ms", curve(&pts));
    let y = render(&spec, &x, fs, 4096);
    assert!(y.iter().flatten().all(|v| v.is_finite() && v.abs() < 100.0));
}

#[test]
fn configuration_is_checked() {
    let err = |c: ProcessorConfig, ch| build("delay", &c, ch).err().unwrap().to_string();
    assert!(err(ProcessorConfig::new().num("feedback_pct", 99.0), 2).contains("95"));
    assert!(err(ProcessorConfig::new().num("time_ms", 5000.0), 2).contains("4000"));
    assert!(err(ProcessorConfig::new().num("tempo_bpm", 120.0), 2).contains("note"));
    // Filters exist only when configured.
    let b = build("delay", &ProcessorConfig::new(), 2).unwrap();
    let names: Vec<&str> = b
        .processor
        .params()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["time_ms", "feedback_pct", "mix_pct"]);
    let kind = stemgraph::dsp::registry::find("delay").unwrap();
    let b = build("delay", &(kind.example)(), 2).unwrap();
    assert_eq!(b.processor.params().len(), 5);
    assert_eq!(b.processor.latency(), 0);
}

#[test]
fn hot_reload_keeps_the_repeats_of_the_same_shape() {
    let fs = 48000.0;
    let spec = ProcessSpec {
        sample_rate: fs,
        max_block: 512,
        input_channels: 2,
    };
    let mut old = build("delay", &ProcessorConfig::new().num("time_ms", 100.0), 2).unwrap();
    old.processor.prepare(&spec);
    let mut new = build("delay", &ProcessorConfig::new().num("time_ms", 200.0), 2).unwrap();
    new.processor.prepare(&spec);
    assert!(new
        .processor
        .take_state(&mut *old.processor, Handover::Move));
    let mut pp = build(
        "delay",
        &ProcessorConfig::new().with("ping_pong", ConfigValue::Bool(true)),
        2,
    )
    .unwrap();
    pp.processor.prepare(&spec);
    assert!(
        !pp.processor.take_state(&mut *new.processor, Handover::Move),
        "ping-pong is another shape"
    );
}
