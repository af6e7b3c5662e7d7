//! The true-peak limiter against independent references: a 32× windowed-sinc true-peak meter
//! written here, and the `ebur128` crate's BS.1770 true-peak meter.
use crate::analysis;
use crate::common;

use analysis::*;
use std::f64::consts::PI;
use stemgraph::dsp::{ConfigValue, ProcessorConfig};
use stemgraph::render::in_memory::Planar;

const RATES: [f64; 3] = [44_100.0, 48_000.0, 96_000.0];

fn config(ceiling: f64, factor: f64) -> ProcessorConfig {
    ProcessorConfig::new()
        .num("ceiling_dbtp", ceiling)
        .num("oversampling", factor)
}

fn fade(x: &mut [f64], fs: f64) {
    let n = (0.010 * fs) as usize;
    let len = x.len();
    for i in 0..n.min(len) {
        let g = i as f64 / n as f64;
        x[i] *= g;
        x[len - 1 - i] *= g;
    }
}

fn stereo(l: Vec<f64>, r: Vec<f64>) -> Planar {
    vec![l, r]
}

/// The torture set at one rate: (name, stereo signal).
fn torture(fs: f64) -> Vec<(String, Planar)> {
    let n = (0.3 * fs) as usize;
    let mut set = Vec::new();
    // Sine bursts at several frequencies, +6 dBFS, with gaps.
    let mut l = vec![0.0; n];
    for (k, f) in [997.0, 5_000.0, 11_025.0, 15_000.0, 19_000.0]
        .iter()
        .enumerate()
    {
        let s = k * n / 5;
        for (i, v) in l.iter_mut().enumerate().take(s + n / 5).skip(s + n / 20) {
            *v = 2.0 * (2.0 * PI * f * i as f64 / fs + 0.3).sin();
        }
    }
    let r: Vec<f64> = l.iter().map(|v| -0.7 * v).collect();
    set.push(("sine bursts".into(), stereo(l, r)));
    // Full-scale square waves (naive, so plenty of inter-sample overshoot).
    let sq = |f: f64| -> Vec<f64> {
        (0..n)
            .map(|i| {
                if (f * i as f64 / fs).fract() < 0.5 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect()
    };
    set.push(("square waves".into(), stereo(sq(1_000.0), sq(3_100.0))));
    // EBU Tech 3341 true-peak cases 15–19 (10 ms fades), back to back, driven by 6 dB.
    for (case, div, amp, phase) in [
        (15, 4.0, 0.5, 0.0),
        (16, 4.0, 0.5, 45.0),
        (17, 6.0, 0.5, 60.0),
        (18, 8.0, 0.5, 67.5),
        (19, 4.0, 1.41, 45.0),
    ] {
        let mut x: Vec<f64> = (0..n)
            .map(|i| 2.0 * amp * (2.0 * PI * i as f64 / div + phase * PI / 180.0).sin())
            .collect();
        fade(&mut x, fs);
        set.push((format!("tech3341 case {case} +6 dB"), stereo(x.clone(), x)));
    }
    // Inter-sample-peak-heavy material: ±1 patterns near fs/4 with phase offsets.
    for (f, ph) in [
        (0.25, 0.785),
        (0.2437, 0.3),
        (0.2561, 1.1),
        (1.0 / 6.0, 0.5),
    ] {
        let l: Vec<f64> = (0..n)
            .map(|i| (2.0 * PI * f * i as f64 + ph).sin().signum())
            .collect();
        let r: Vec<f64> = (0..n)
            .map(|i| (2.0 * PI * f * i as f64 + ph + 0.9).sin().signum())
            .collect();
        set.push((format!("±1 pattern f={f:.4} phase {ph}"), stereo(l, r)));
    }
    // White noise 12 dB over the ceiling (−1 dBTP).
    let amp = 10f64.powf(11.0 / 20.0);
    let nz = common::noise(n, amp, 7);
    set.push(("white noise +12 dB".into(), nz));
    // A transient after silence.
    let mut l = vec![0.0; n];
    let start = n / 3;
    let mut rng = common::Rng::new(99);
    for (i, v) in l.iter_mut().enumerate().skip(start) {
        let t = (i - start) as f64 / fs;
        *v = 3.0 * (-t * 40.0).exp() * (rng.next_f64() * 0.5 + (2.0 * PI * 180.0 * t).sin());
    }
    l[start] = 3.0;
    let r = l.iter().map(|v| 0.5 * v).collect();
    set.push(("transient after silence".into(), stereo(l, r)));
    set
}

#[test]
fn torture_set_stays_under_the_ceiling() {
    let ceiling = -1.0;
    let mut worst_ebu = f64::NEG_INFINITY;
    let mut worst_ref = f64::NEG_INFINITY;
    let mut failures = Vec::new();
    for factor in [8.0, 4.0] {
        for fs in RATES {
            let spec = graph("limiter", config(ceiling, factor), 2, &[]);
            for (name, x) in torture(fs) {
                let (y, v) = render(&spec, &x, fs, 512);
                assert_eq!(v, 0, "allocations");
                let ebu = db(true_peak_ebur128(&y, fs as u32));
                let floor = 10f64.powf((ceiling - 9.0) / 20.0);
                let reference = db(y
                    .iter()
                    .map(|c| true_peak_32x(c, floor))
                    .fold(0.0, f64::max));
                println!(
                    "{factor}x {fs} Hz {name:34} ebur128 {ebu:+.3} dBTP  32x {reference:+.3} dBTP"
                );
                worst_ebu = worst_ebu.max(ebu - ceiling);
                worst_ref = worst_ref.max(reference - ceiling);
                if ebu > ceiling || reference > ceiling + 0.1 {
                    failures.push(format!(
                        "{factor}x {fs} {name}: ebur128 {ebu:+.3}, 32x {reference:+.3} dBTP"
                    ));
                }
            }
        }
    }
    println!("worst over ceiling: ebur128 {worst_ebu:+.4} dB, 32x {worst_ref:+.4} dB");
    assert!(
        failures.is_empty(),
        "over the ceiling:\n{}",
        failures.join("\n")
    );
}

#[test]
fn limits_a_sine_cleanly() {
    for (factor, fs) in [
        (8.0, 48_000.0),
        (8.0, 44_100.0),
        (4.0, 48_000.0),
        (8.0, 96_000.0),
    ] {
        let ceiling = -1.0;
        let amp = 10f64.powf((ceiling + 6.0) / 20.0);
        let n = fs as usize;
        let x = common::sine(n, 1_000.0, amp, fs);
        let spec = graph("limiter", config(ceiling, factor), 2, &[]);
        let (y, _) = render(&spec, &x, fs, 256);
        let settled = &y[0][n / 2..];
        let peak = db(settled.iter().fold(0.0f64, |m, v| m.max(v.abs())));
        let (res, fund) = sine_fit(settled, 1_000.0, fs);
        let thd_n = db(res / fund);
        println!("{factor}x {fs}: settled peak {peak:+.3} dBFS, THD+N {thd_n:.1} dB");
        assert!(peak <= ceiling && peak >= ceiling - 0.7, "peak {peak}");
        assert!(thd_n < -50.0, "THD+N {thd_n}");
    }
}

#[test]
fn material_under_the_ceiling_passes_unchanged() {
    for factor in [8.0, 4.0] {
        for fs in RATES {
            let n = (0.5 * fs) as usize;
            // Music-like: a few partials and some noise, scaled to a true peak of −2 dBTP.
            let nz = common::noise(n, 1.0, 3);
            let mut x: Planar = (0..2)
                .map(|c| {
                    (0..n)
                        .map(|i| {
                            let t = i as f64 / fs;
                            0.4 * (2.0 * PI * 110.0 * t).sin()
                                + 0.2 * (2.0 * PI * (440.0 + 3.0 * c as f64) * t).sin()
                                + 0.1 * (2.0 * PI * 3_520.0 * t).sin()
                                + 0.1 * nz[c][i]
                        })
                        .collect()
                })
                .collect();
            let tp = x.iter().map(|c| true_peak_32x(c, 0.0)).fold(0.0, f64::max);
            let k = 10f64.powf(-2.0 / 20.0) / tp;
            x.iter_mut()
                .for_each(|c| c.iter_mut().for_each(|v| *v *= k));
            let spec = graph("limiter", config(-1.0, factor), 2, &[]);
            let (y, _) = render(&spec, &x, fs, 333);
            let err = y
                .iter()
                .zip(&x)
                .flat_map(|(a, b)| a.iter().zip(b).map(|(p, q)| (p - q).abs()))
                .fold(0.0, f64::max);
            let err_db = if err == 0.0 {
                f64::NEG_INFINITY
            } else {
                db(err)
            };
            println!("{factor}x {fs}: residual {err_db:.1} dBFS");
            assert!(err_db < -120.0, "residual {err_db} dBFS");
        }
    }
}

#[test]
fn latency_is_reported_and_compensated() {
    for fs in RATES {
        let n = 20_000;
        let mut x = vec![vec![0.0; n]; 2];
        x[0][1_000] = 0.5;
        x[1][7_000] = -0.25;
        let spec = graph("limiter", config(-1.0, 8.0), 2, &[]);
        let (y, _) = render(&spec, &x, fs, 64);
        assert_eq!(
            y, x,
            "{fs}: the impulses come out at the same samples, unchanged"
        );
    }
    let built = stemgraph::dsp::registry::build(
        "limiter",
        &ProcessorConfig::new().num("lookahead_ms", 2.0),
        2,
    )
    .unwrap();
    let mut p = built.processor;
    p.prepare(&stemgraph::dsp::ProcessSpec {
        sample_rate: 48_000.0,
        max_block: 64,
        input_channels: 2,
    });
    // 96 samples of lookahead + detector, hold and safety-stage delays (under 3 ms in all).
    println!("latency at 48 kHz, 2 ms lookahead: {}", p.latency());
    assert!(p.latency() >= 96 && p.latency() <= 96 + 144);
}

#[test]
fn block_size_invariance_with_automation() {
    let fs = 48_000.0;
    let n = 40_000;
    let mut x = common::noise(n, 0.5, 11);
    for c in x.iter_mut() {
        for (i, v) in c.iter_mut().enumerate() {
            *v += 0.5 * (2.0 * PI * 220.0 * i as f64 / fs).sin();
        }
    }
    for auto in [true, false] {
        let cfg = config(-1.0, 8.0).with("auto_release", ConfigValue::Bool(auto));
        let spec = graph(
            "limiter",
            cfg,
            2,
            &[
                (
                    "input_gain_db",
                    linear_curve(&[(0, 0.0), (15_000, 12.0), (30_000, -3.0)]),
                ),
                (
                    "release_ms",
                    linear_curve(&[(5_000, 10.0), (25_000, 500.0)]),
                ),
                ("link_pct", linear_curve(&[(10_000, 100.0), (20_000, 0.0)])),
                (
                    "ceiling_dbtp",
                    linear_curve(&[(20_000, -1.0), (21_000, -3.0)]),
                ),
            ],
        );
        let (reference, v) = render(&spec, &x, fs, 1);
        assert_eq!(v, 0);
        for block in [64, 997, 4096] {
            let (y, v) = render(&spec, &x, fs, block);
            assert_eq!(v, 0);
            assert!(y == reference, "block {block} differs");
        }
    }
}

#[test]
fn no_click_on_a_parameter_step() {
    let fs = 48_000.0;
    let n = 48_000;
    let x = common::sine(n, 200.0, 0.7, fs);
    for (param, before, after) in [
        ("input_gain_db", 0.0, 12.0),
        ("ceiling_dbtp", -1.0, -9.0),
        ("release_ms", 500.0, 5.0),
    ] {
        let spec = graph(
            "limiter",
            config(-1.0, 8.0),
            2,
            &[(param, step_curve(24_001, before, after))],
        );
        let (y, _) = render(&spec, &x, fs, 64);
        let around = max_jump(&y[0], 23_000..27_000);
        let steady = max_jump(&y[0], 5_000..20_000).max(max_jump(&y[0], 35_000..47_000));
        println!("{param}: jump around the step {around:.5}, elsewhere {steady:.5}");
        // A limiter's gain change legitimately adds g'·x to the slope; a click would be many
        // times the signal's own largest step.
        assert!(around <= steady * 1.1, "{param}: click {around} > {steady}");
    }
}

#[test]
fn publishes_gain_reduction() {
    let mut p = stemgraph::dsp::registry::build("limiter", &config(-1.0, 8.0), 2)
        .unwrap()
        .processor;
    let fs = 48_000.0;
    p.prepare(&stemgraph::dsp::ProcessSpec {
        sample_rate: fs,
        max_block: 1024,
        input_channels: 2,
    });
    let tele = p.telemetry().expect("telemetry");
    let slots: Vec<stemgraph::dsp::param::ParamSlot> = p
        .params()
        .iter()
        .map(|i| stemgraph::dsp::param::ParamSlot::new(i.default, 1024))
        .collect();
    let mut buf = stemgraph::dsp::AudioBuffer::new(2, 1024);
    for b in 0..20 {
        for c in 0..2 {
            for (i, v) in buf.channel_mut(c, 1024).iter_mut().enumerate() {
                *v = 2.0 * (2.0 * PI * 1000.0 * (b * 1024 + i) as f64 / fs).sin();
            }
        }
        p.process(
            &mut buf.view_mut(1024),
            None,
            stemgraph::dsp::ParamBlock::new(&slots),
        );
    }
    let gr = tele.get_named("gain_reduction_db").unwrap();
    // 2.0 peak → −1 dBTP − 0.1 dB margin: about 7.1 dB.
    println!("gain reduction {gr:.3} dB");
    assert!((gr - (6.0206 + 1.1)).abs() < 0.1, "{gr}");
    assert_eq!(tele.get_named("guard_clips"), Some(0.0));
}

/// `oversampling = 1` detects sample peaks (as ffmpeg's alimiter and plugin limiters do): every
/// sample of the output stays under the ceiling, material under it passes unchanged, the
/// latency is the lookahead plus the hold, and the output does not depend on the block size.
#[test]
fn sample_peak_mode() {
    let fs = 48_000.0;
    let ceiling = -1.0;
    let c = 10f64.powf(ceiling / 20.0);
    let n = (0.5 * fs) as usize;
    for (name, x) in torture(fs) {
        let spec = graph("limiter", config(ceiling, 1.0), 2, &[]);
        let (reference, _) = render(&spec, &x, fs, 1);
        let peak = reference
            .iter()
            .flatten()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(peak <= c, "{name}: sample peak {peak} over the ceiling {c}");
        for block in [64, 997] {
            let (y, _) = render(&spec, &x, fs, block);
            assert!(y == reference, "{name}: block {block} changes the output");
        }
    }
    let quiet: Planar = (0..2)
        .map(|ch| common::sine(n, 440.0 + ch as f64, 0.5, fs).remove(0))
        .collect();
    let spec = graph("limiter", config(ceiling, 1.0), 2, &[]);
    let (y, _) = render(&spec, &quiet, fs, 333);
    assert!(y == quiet, "material under the ceiling passes bit for bit");
    let built = stemgraph::dsp::registry::build("limiter", &config(ceiling, 1.0), 2).unwrap();
    let mut p = built.processor;
    p.prepare(&stemgraph::dsp::ProcessSpec {
        sample_rate: fs,
        max_block: 64,
        input_channels: 2,
    });
    assert_eq!(
        p.latency(),
        72 - 1 + 8 + 16 - 1 + 8,
        "lookahead 1.5 ms + holds"
    );
}

#[test]
fn safety_stage_and_guard_on_the_torture_set() {
    // How much the safety stage had to do, and that the final guard never engaged.
    for factor in [8.0, 4.0] {
        for fs in RATES {
            for (name, x) in torture(fs) {
                let mut p = stemgraph::dsp::registry::build("limiter", &config(-1.0, factor), 2)
                    .unwrap()
                    .processor;
                p.prepare(&stemgraph::dsp::ProcessSpec {
                    sample_rate: fs,
                    max_block: 256,
                    input_channels: 2,
                });
                let tele = p.telemetry().unwrap();
                let slots: Vec<stemgraph::dsp::param::ParamSlot> = p
                    .params()
                    .iter()
                    .map(|i| {
                        let v = if i.name == "ceiling_dbtp" {
                            -1.0
                        } else {
                            i.default
                        };
                        stemgraph::dsp::param::ParamSlot::new(v, 256)
                    })
                    .collect();
                let mut buf = stemgraph::dsp::AudioBuffer::new(2, 256);
                let mut safety: f64 = 0.0;
                let n = x[0].len();
                let mut start = 0;
                while start < n {
                    let len = 256.min(n - start);
                    for c in 0..2 {
                        buf.channel_mut(c, len)
                            .copy_from_slice(&x[c][start..start + len]);
                    }
                    p.process(
                        &mut buf.view_mut(len),
                        None,
                        stemgraph::dsp::ParamBlock::new(&slots),
                    );
                    safety = safety.max(tele.get_named("safety_reduction_db").unwrap());
                    start += len;
                }
                let clips = tele.get_named("guard_clips").unwrap();
                println!(
                    "{factor}x {fs} {name:34} safety stage max {safety:.3} dB, guard clips {clips}"
                );
                assert_eq!(clips, 0.0, "{factor}x {fs} {name}");
            }
        }
    }
}

/// The demo song's reference mix (stereo), `seconds` long.
#[cfg(feature = "demo")]
fn demo_mix(seconds: f64) -> Planar {
    use stemgraph::demo::{write_demo, DemoOptions};
    use stemgraph::io::decode::Decoder;
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = DemoOptions {
        seconds,
        ..DemoOptions::default()
    };
    let files = write_demo(dir.path(), &opts).expect("demo");
    let mut dec = Decoder::open(&files.reference).expect("open mix");
    let channels = dec.info().channels;
    let mut out = vec![Vec::new(); channels];
    let mut bufs = vec![vec![0.0; 4096]; channels];
    loop {
        let mut views: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let n = dec.read(&mut views, 4096).expect("read mix");
        if n == 0 {
            break;
        }
        for (o, b) in out.iter_mut().zip(&bufs) {
            o.extend_from_slice(&b[..n]);
        }
    }
    out
}

/// The threshold-aware detector (the limiter's default: exact readings only where one can
/// exceed the target) gives the limiter exactly the output of the full detector: on music at
/// several drives and once more on the limited master, on the EBU true-peak cases and the
/// inter-sample-peak torture signals, at 8× and 4×, at several rates and block sizes.
#[test]
#[cfg(feature = "demo")]
fn threshold_aware_detection_gives_the_full_detectors_bits() {
    use stemgraph::dsp::oversample::force_full;
    let mix = demo_mix(8.0);
    let mut cases: Vec<(String, Planar, f64)> = Vec::new();
    for drive in [-6.0, 0.0, 6.0, 12.0] {
        let g = 10f64.powf(drive / 20.0);
        let x = mix
            .iter()
            .map(|c| c.iter().map(|v| v * g).collect())
            .collect();
        cases.push((format!("demo mix {drive:+} dB"), x, 48_000.0));
    }
    for fs in [44_100.0, 96_000.0] {
        for (name, x) in torture(fs) {
            cases.push((name, x, fs));
        }
    }
    let mut failures = Vec::new();
    for factor in [8.0, 4.0] {
        for (name, x, fs) in &cases {
            for (ceiling, block) in [(-1.0, 512), (-0.3, 100)] {
                let spec = graph("limiter", config(ceiling, factor), 2, &[]);
                force_full(true);
                let (full, _) = render(&spec, x, *fs, block);
                force_full(false);
                let (aware, v) = render(&spec, x, *fs, block);
                assert_eq!(v, 0, "allocations");
                // The limited master once more through the same limiter.
                force_full(true);
                let (full2, _) = render(&spec, &full, *fs, block);
                force_full(false);
                let (aware2, _) = render(&spec, &full, *fs, block);
                let same = |a: &Planar, b: &Planar| {
                    a.iter()
                        .zip(b)
                        .all(|(p, q)| p.iter().zip(q).all(|(u, w)| u.to_bits() == w.to_bits()))
                };
                if !same(&full, &aware) || !same(&full2, &aware2) {
                    failures.push(format!(
                        "{factor}x {fs} {name} ceiling {ceiling} block {block}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "outputs differ:\n{}",
        failures.join("\n")
    );
}

/// Stage A's readings recorded by a readings-only limiter and fed back through the key, times
/// the drive (what the loudness solver does, `render::readings`), give the limiter's own output:
/// on the demo mix at three drives, at 8× and 4×, the same within the readings' rounding up to
/// 32-bit floats (a gain lower by at most a few parts in 10⁸), and under the ceiling by the 32×
/// reference. Without the drive on the key the limiter would miss most peaks: the comparison
/// would fail by decibels.
#[test]
#[cfg(feature = "demo")]
fn recorded_readings_through_the_key_give_the_limiters_output() {
    use stemgraph::dsp::limiter::{stage_a_target, STAGE_A_FROM_KEY, STAGE_A_READINGS};
    use stemgraph::dsp::Port;
    use stemgraph::graph::{GraphSpec, NodeKind};
    use stemgraph::render::in_memory::render_in_memory;
    let fs = 48_000.0;
    let ceiling = -1.0;
    let mix = demo_mix(6.0);
    for factor in [8.0, 4.0] {
        for drive in [0.0, 6.0, 12.0] {
            let g = 10f64.powf(drive / 20.0);
            let x: Planar = mix
                .iter()
                .map(|c| c.iter().map(|v| v * g).collect())
                .collect();
            // The undriven mix's readings, exact above the threshold of a drive 1.5 dB higher.
            let floor = stage_a_target(ceiling, factor as usize) / 10f64.powf((drive + 1.5) / 20.0);
            let probe = graph(
                "limiter",
                config(ceiling, factor).num(STAGE_A_READINGS, floor),
                2,
                &[],
            );
            let (readings, v) = render(&probe, &mix, fs, 512);
            assert_eq!(v, 0, "allocations");
            let mut keyed = GraphSpec::new();
            keyed.source("in", 0).source("readings", 1);
            keyed.processor(
                "drive",
                "gain",
                ProcessorConfig::new().num("gain_db", drive),
            );
            keyed.processor(
                "fx",
                "limiter",
                config(ceiling, factor).with(STAGE_A_FROM_KEY, ConfigValue::Bool(true)),
            );
            keyed.node("out", NodeKind::Output { channels: 2 });
            keyed.connect("in", "fx").connect("fx", "out");
            keyed.connect("readings", "drive");
            keyed.connect_port("drive", "fx", Port::Key, 0.0);
            let replayed = render_in_memory(&keyed, &[x.clone(), readings], fs, 512)
                .expect("render")
                .remove(0);
            let (own, _) = render(
                &graph("limiter", config(ceiling, factor), 2, &[]),
                &x,
                fs,
                512,
            );
            let mut worst = 0.0f64;
            for (a, b) in own.iter().zip(&replayed) {
                for (u, w) in a.iter().zip(b) {
                    worst = worst.max((u - w).abs());
                }
            }
            assert!(
                worst <= 1e-6,
                "{factor}x, drive {drive:+} dB: replayed output differs by {worst:e}"
            );
            let floor = 10f64.powf((ceiling - 9.0) / 20.0);
            let tp = db(replayed
                .iter()
                .map(|c| true_peak_32x(c, floor))
                .fold(0.0, f64::max));
            assert!(
                tp <= ceiling + 0.1,
                "{factor}x, drive {drive:+} dB: {tp:+.3} dBTP"
            );
        }
    }
}
