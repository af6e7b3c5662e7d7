//! Multiband compressor: the LR4 bands sum flat (impulse → DFT, 20 Hz–20 kHz, ±0.05 dB) for 3
//! and 4 bands; a band with gain reduction affects only its range; per-band telemetry;
//! block-size invariance with automation, no clicks, no allocation.
#![allow(clippy::needless_range_loop)]
use crate::common;
use crate::dsp_util;

use dsp_util::*;
use stemgraph::automation::Shape;
use stemgraph::dsp::{ConfigValue, ProcessorConfig};

fn crossovers(freqs: &[f64]) -> ProcessorConfig {
    ProcessorConfig::new().with(
        "crossovers_hz",
        ConfigValue::List(freqs.iter().map(|f| ConfigValue::Number(*f)).collect()),
    )
}

/// Log-spaced frequencies from 20 Hz to 20 kHz.
fn sweep_freqs(count: usize) -> Vec<f64> {
    (0..count)
        .map(|i| 20.0 * 1000f64.powf(i as f64 / (count - 1) as f64))
        .collect()
}

#[test]
fn bands_sum_flat() {
    for freqs in [
        &[120.0, 2000.0][..],
        &[100.0, 1000.0, 6000.0][..],
        &[500.0][..],
    ] {
        let n = 1 << 15;
        let mut impulse = vec![vec![0.0; n]; 2];
        impulse[0][0] = 1.0;
        impulse[1][0] = -0.5;
        // Defaults: every band at ratio 1 (neutral), even though the impulse is over threshold.
        let y = process("multiband", crossovers(freqs), &impulse, 4096);
        // The response has died out well before the end of the window.
        let tail = y[0][n - 1000..].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(tail < 1e-12, "tail {tail:e}");
        let mut worst: f64 = 0.0;
        for f in sweep_freqs(300) {
            let l = response_db(&y[0], f);
            let r = response_db(&y[1], f) - db(0.5);
            worst = worst.max(l.abs()).max(r.abs());
        }
        eprintln!(
            "{} bands: magnitude of the sum within {worst:.2e} dB of flat (tolerance 0.05)",
            freqs.len() + 1
        );
        assert!(worst < 0.05);
        // The sum is not the input (it is the crossovers' all-pass) but has its energy.
        let energy: f64 = y[0].iter().map(|v| v * v).sum();
        assert!((energy - 1.0).abs() < 1e-6, "{energy}");
    }
}

/// The share of each band of a 3-band LR4 tree at `f`, relative to the tree's all-pass: every
/// band is the all-pass times a real weight (LP4/AP = 1/(1 + ω⁴), HP4/AP = ω⁴/(1 + ω⁴), with
/// ω the ratio of the bilinear-prewarped frequencies), and the weights sum to 1.
fn band_weights(f: f64, f1: f64, f2: f64) -> [f64; 3] {
    let warp = |f: f64| (std::f64::consts::PI * f / FS).tan();
    let hp = |fc: f64| {
        let w4 = (warp(f) / warp(fc)).powi(4);
        w4 / (1.0 + w4)
    };
    let (h1, h2) = (hp(f1), hp(f2));
    [1.0 - h1, h1 * (1.0 - h2), h1 * h2]
}

#[test]
fn a_compressed_band_affects_only_its_range() {
    let n = (0.6 * FS) as usize;
    let tones = [(30.0, -12.0), (480.0, -12.0), (15000.0, -12.0)];
    let x: Vec<f64> = (0..n)
        .map(|i| {
            tones
                .iter()
                .map(|&(f, l)| amp(l) * (2.0 * std::f64::consts::PI * f * i as f64 / FS).sin())
                .sum()
        })
        .collect();
    let x = vec![x.clone(), x];
    let (f1, f2) = (120.0, 2000.0);
    let neutral = crossovers(&[f1, f2]);
    let (threshold, ratio) = (-40.0, 10.0);
    let squeezed = crossovers(&[f1, f2])
        .num("knee_db", 0.0)
        .num("2.threshold_db", threshold)
        .num("2.ratio", ratio)
        .num("2.attack_ms", 0.5)
        .num("2.release_ms", 1000.0);
    let spec = graph("multiband", squeezed, 2);
    let run = run(&spec, std::slice::from_ref(&x), 997, "fx");
    let y = &run.out;
    let reference = process("multiband", neutral, &x, 997);
    // Reference: band 2 sees the 480 Hz tone at −12 dBFS times its weight (the other tones
    // leak into it 50 dB down), and reduces it by the static curve; every tone's change is
    // w_low + g·w_mid + w_high.
    let band_level = -12.0 + db(band_weights(480.0, f1, f2)[1]);
    let reduction = (band_level - threshold) * (1.0 - 1.0 / ratio);
    let g = amp(-reduction);
    let expected = |f: f64| {
        let w = band_weights(f, f1, f2);
        db(w[0] + g * w[1] + w[2])
    };
    // 0.2 s ending at the end: whole periods of 30 Hz, 480 Hz and 15 kHz.
    let (start, len) = (n - 9600, 9600);
    let mut worst: f64 = 0.0;
    for (f, tolerance) in [(30.0, 0.05), (480.0, 0.3), (15000.0, 0.05)] {
        let change =
            db(tone_amplitude(&y[0], f, start, len) / tone_amplitude(&reference[0], f, start, len));
        let err = change - expected(f);
        eprintln!(
            "band 2 compressed: {f} Hz changed {change:+.4} dB, reference {:+.4} dB",
            expected(f)
        );
        assert!(err.abs() < tolerance, "{f} Hz: {change} vs {}", expected(f));
        if f != 480.0 {
            worst = worst.max(change.abs());
        }
    }
    assert!(worst < 0.05, "the other bands are untouched: {worst}");
    let last = &run.telemetry.last().unwrap().1;
    assert_eq!(last.len(), 4, "overall + 3 bands");
    assert!(
        (last[2] - reduction).abs() < 0.3,
        "{} vs {reduction}",
        last[2]
    );
    assert!(last[1] == 0.0 && last[3] == 0.0);
    assert_eq!(last[0], last[2]);
}

#[test]
fn bands_list_is_the_same_as_numbered_keys() {
    let n = 8000;
    let x = common::noise(n, 0.5, 3);
    let numbered = crossovers(&[200.0, 3000.0])
        .num("1.ratio", 3.0)
        .num("3.threshold_db", -30.0)
        .num("3.ratio", 4.0);
    let table = |entries: &[(&str, f64)]| {
        let mut t = ProcessorConfig::new();
        for (k, v) in entries {
            t = t.num(k, *v);
        }
        ConfigValue::Table(t)
    };
    let listed = crossovers(&[200.0, 3000.0]).with(
        "bands",
        ConfigValue::List(vec![
            table(&[("ratio", 3.0)]),
            table(&[]),
            table(&[("threshold_db", -30.0), ("ratio", 4.0)]),
        ]),
    );
    assert_eq!(
        process("multiband", numbered, &x, 64),
        process("multiband", listed, &x, 64)
    );
}

#[test]
fn crossover_options_are_checked() {
    use stemgraph::dsp::registry::build;
    let err = |cfg: ProcessorConfig| build("multiband", &cfg, 2).err().unwrap().to_string();
    assert!(err(crossovers(&[2000.0, 120.0])).contains("ascending"));
    assert!(err(crossovers(&[100.0, 200.0, 400.0, 800.0])).contains("1 to 3"));
    assert!(err(crossovers(&[5.0])).contains("between 20 and 20000"));
    assert!(err(crossovers(&[120.0, 2000.0]).num("4.ratio", 2.0)).contains("4.ratio"));
    let four = build("multiband", &crossovers(&[100.0, 1000.0, 6000.0]), 2).unwrap();
    assert_eq!(four.processor.params().len(), 2 + 4 * 5);
    assert!(four
        .processor
        .params()
        .iter()
        .any(|p| p.name == "4.release_ms"));
}

#[test]
fn multiband_block_size_invariance() {
    let n = 20000;
    let x = common::noise(n, 0.6, 21);
    for (freqs, mono) in [
        (&[120.0, 2000.0][..], false),
        (&[100.0, 1000.0, 6000.0][..], true),
    ] {
        let cfg = crossovers(freqs)
            .num("link_pct", 50.0)
            .num("1.ratio", 4.0)
            .num("2.ratio", 3.0)
            .num("2.threshold_db", -30.0)
            .num("3.ratio", 2.0)
            .num("3.makeup_db", 2.0);
        let input = if mono { vec![x[0].clone()] } else { x.clone() };
        let mut spec = graph("multiband", cfg, input.len());
        automate(
            &mut spec,
            "1.threshold_db",
            &[(0, -10.0, Shape::Linear), (12000, -40.0, Shape::Linear)],
        );
        automate(
            &mut spec,
            "2.release_ms",
            &[(0, 20.0, Shape::Exponential), (15000, 400.0, Shape::Linear)],
        );
        automate(
            &mut spec,
            "knee_db",
            &[(5000, 0.0, Shape::Linear), (9000, 12.0, Shape::Linear)],
        );
        assert_block_invariant(&spec, &[input]);
    }
}

#[test]
fn multiband_threshold_step_does_not_click() {
    let n = FS as usize;
    let x: Vec<f64> = sine(n, 80.0, amp(-8.0))
        .iter()
        .zip(sine(n, 3000.0, amp(-10.0)))
        .map(|(a, b)| a + b)
        .collect();
    let x = vec![x.clone(), x];
    let cfg = crossovers(&[300.0, 6000.0])
        .num("1.ratio", 6.0)
        .num("1.threshold_db", 0.0)
        .num("1.attack_ms", 2.0)
        .num("2.ratio", 6.0)
        .num("2.threshold_db", 0.0);
    let mut spec = graph("multiband", cfg.clone(), 2);
    for band in ["1", "2"] {
        automate(
            &mut spec,
            &format!("{band}.threshold_db"),
            &[(0, 0.0, Shape::Step), (24_007, -40.0, Shape::Step)],
        );
    }
    let y = run(&spec, std::slice::from_ref(&x), 997, "fx").out;
    // The signal's own largest jump, after the crossovers' all-pass (which moves the two
    // tones' relative phase): the same graph without the step.
    let neutral = process("multiband", cfg, &x, 997);
    eprintln!(
        "largest jump: {:.5} with the step, {:.5} without, {:.5} input",
        max_jump(&y[0]),
        max_jump(&neutral[0]),
        max_jump(&x[0])
    );
    assert!(max_jump(&y[0]) <= max_jump(&neutral[0]));
    assert!(rms(&y[0][40_000..]) < 0.5 * rms(&x[0][40_000..]));
}
