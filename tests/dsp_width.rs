//! Stereo width: 100 % bit-transparent, 0 % mono, the mono low end (side removed below the
//! crossover, kept above it), the correlation readout; block-size invariance with automation,
//! no clicks, no allocation; mono input refused.
#![allow(clippy::needless_range_loop)]
use crate::common;
use crate::dsp_util;

use dsp_util::*;
use stemgraph::automation::Shape;
use stemgraph::dsp::ProcessorConfig;

fn width(pct: f64) -> ProcessorConfig {
    ProcessorConfig::new().num("width_pct", pct)
}

#[test]
fn full_width_is_bit_transparent() {
    let x = common::noise(30000, 0.8, 1);
    for block in [1, 997] {
        assert_eq!(process("width", width(100.0), &x, block), x);
    }
}

#[test]
fn zero_width_is_mono() {
    let x = common::noise(30000, 0.8, 2);
    let y = process("width", width(0.0), &x, 64);
    assert_eq!(y[0], y[1], "L = R bit for bit");
    for i in 0..x[0].len() {
        assert!((y[0][i] - 0.5 * (x[0][i] + x[1][i])).abs() < 1e-15);
    }
}

#[test]
fn width_scales_the_side() {
    let x = common::noise(10000, 0.5, 3);
    for pct in [50.0, 150.0, 200.0] {
        let y = process("width", width(pct), &x, 64);
        let w = pct / 100.0;
        for i in 0..x[0].len() {
            let (m, s) = (0.5 * (x[0][i] + x[1][i]), 0.5 * (x[0][i] - x[1][i]));
            assert!((y[0][i] - (m + w * s)).abs() < 1e-15);
            assert!((y[1][i] - (m - w * s)).abs() < 1e-15);
        }
    }
}

/// A pure side signal (L = s, R = −s) or a pure mid signal (L = R = s).
fn side(s: &[f64]) -> Vec<Vec<f64>> {
    vec![s.to_vec(), s.iter().map(|v| -v).collect()]
}

#[test]
fn mono_below_removes_the_low_side_only() {
    let n = FS as usize;
    let cfg = width(100.0).num("mono_below_hz", 120.0);
    let (start, len) = (n - 9600, 9600); // whole periods of 50 Hz and 1 kHz
    let side_level = |y: &Vec<Vec<f64>>, f: f64| {
        let s: Vec<f64> = y[0].iter().zip(&y[1]).map(|(l, r)| 0.5 * (l - r)).collect();
        tone_amplitude(&s, f, start, len)
    };
    let mid_level = |y: &Vec<Vec<f64>>, f: f64| {
        let m: Vec<f64> = y[0].iter().zip(&y[1]).map(|(l, r)| 0.5 * (l + r)).collect();
        tone_amplitude(&m, f, start, len)
    };
    let low = side(&sine(n, 50.0, 0.5));
    let high = side(&sine(n, 1000.0, 0.5));
    let y_low = process("width", cfg.clone(), &low, 997);
    let y_high = process("width", cfg.clone(), &high, 997);
    let low_db = db(side_level(&y_low, 50.0) / 0.5);
    let high_db = db(side_level(&y_high, 1000.0) / 0.5);
    // Reference: LR8 high-pass magnitude, |HP4|² with ω the prewarped frequency ratio.
    let warp = |f: f64| (std::f64::consts::PI * f / FS).tan();
    let hp8 = |f: f64| {
        let w8 = (warp(f) / warp(120.0)).powi(8);
        db(w8 / (1.0 + w8))
    };
    eprintln!(
        "mono below 120 Hz: 50 Hz side {low_db:.2} dB (reference {:.2}), 1 kHz side \
         {high_db:+.4} dB (reference {:+.4})",
        hp8(50.0),
        hp8(1000.0)
    );
    assert!(low_db < -40.0);
    assert!(high_db.abs() < 0.5);
    assert!((low_db - hp8(50.0)).abs() < 0.5 && (high_db - hp8(1000.0)).abs() < 0.01);
    // The mid passes (through an all-pass): its magnitude is untouched, at any frequency.
    for f in [50.0, 120.0, 1000.0] {
        let x = vec![sine(n, f, 0.5), sine(n, f, 0.5)];
        let y = process("width", cfg.clone(), &x, 64);
        let change = db(mid_level(&y, f) / 0.5);
        assert!(change.abs() < 0.01, "mid at {f} Hz changed {change} dB");
        assert!(side_level(&y, f) < 1e-12);
    }
}

#[test]
fn correlation_readout() {
    let n = FS as usize;
    let s = sine(n, 440.0, 0.5);
    let noise = common::noise(n, 0.5, 8);
    let cases: [(&str, Vec<Vec<f64>>, f64); 3] = [
        ("identical", vec![s.clone(), s.clone()], 1.0),
        ("inverted", side(&s), -1.0),
        ("independent noise", noise.clone(), 0.0),
    ];
    for (name, x, expected) in cases {
        let spec = graph("width", width(100.0), 2);
        let run = run(&spec, std::slice::from_ref(&x), 997, "fx");
        let reading = run.telemetry.last().unwrap().1[0];
        // Reference: the plain correlation of the last 300 ms.
        let w = (0.3 * FS) as usize;
        let (l, r) = (&x[0][n - w..], &x[1][n - w..]);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let reference = dot(l, r) / (dot(l, l) * dot(r, r)).sqrt();
        eprintln!("correlation, {name}: {reading:.4} (reference {reference:.4})");
        assert!((reading - reference).abs() < 0.05);
        assert!((reading - expected).abs() < 0.05);
    }
}

#[test]
fn mono_input_is_refused() {
    let err = stemgraph::dsp::registry::build("width", &width(100.0), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("width needs a stereo input"), "{err}");
}

#[test]
fn width_block_size_invariance() {
    let n = 20000;
    let x = common::noise(n, 0.6, 31);
    for mono in [false, true] {
        let cfg = if mono {
            width(100.0).num("mono_below_hz", 150.0)
        } else {
            width(100.0)
        };
        let mut spec = graph("width", cfg, 2);
        automate(
            &mut spec,
            "width_pct",
            &[
                (0, 100.0, Shape::Linear),
                (6000, 0.0, Shape::Smooth),
                (12000, 200.0, Shape::Linear),
                (16000, 100.0, Shape::Linear),
            ],
        );
        if mono {
            automate(
                &mut spec,
                "mono_below_hz",
                &[
                    (2000, 40.0, Shape::Exponential),
                    (18000, 400.0, Shape::Linear),
                ],
            );
        }
        assert_block_invariant(&spec, std::slice::from_ref(&x));
    }
}

#[test]
fn width_step_does_not_click() {
    let n = FS as usize;
    let x = vec![sine(n, 300.0, 0.5), sine(n, 450.0, 0.5)];
    for mono in [false, true] {
        let cfg = if mono {
            width(100.0).num("mono_below_hz", 100.0)
        } else {
            width(100.0)
        };
        let mut spec = graph("width", cfg.clone(), 2);
        automate(
            &mut spec,
            "width_pct",
            &[
                (0, 100.0, Shape::Step),
                (24_013, 0.0, Shape::Step),
                (36_013, 200.0, Shape::Step),
            ],
        );
        let y = run(&spec, std::slice::from_ref(&x), 997, "fx").out;
        let own = process("width", cfg.clone(), &x, 997);
        for c in 0..2 {
            // The signal's own largest jump at the widest setting reached.
            let wide = process("width", cfg.clone().num("width_pct", 200.0), &x, 997);
            let limit = max_jump(&own[c]).max(max_jump(&wide[c]));
            assert!(max_jump(&y[c]) <= limit, "{} > {limit}", max_jump(&y[c]));
        }
    }
}
