//! TPDF dither and noise shaping against the theory (dsp-reference.md, "Dither"): error level,
//! no harmonic spurs, no noise modulation, reproducible noise, exact output grid, shaped spectra.
use crate::analysis;
use crate::common;

use analysis::*;
use std::f64::consts::PI;
use stemgraph::dsp::ProcessorConfig;
use stemgraph::render::in_memory::Planar;

const FS: f64 = 44_100.0;
const LSB16: f64 = 1.0 / 32_768.0;

fn dither(shaping: &str, seed: f64) -> ProcessorConfig {
    ProcessorConfig::new()
        .num("bits", 16.0)
        .num("seed", seed)
        .text("noise_shaping", shaping)
}

fn run(cfg: ProcessorConfig, x: &Planar, fs: f64, block: usize) -> Planar {
    let spec = graph("dither", cfg, x.len(), &[]);
    let (y, v) = render(&spec, x, fs, block);
    assert_eq!(v, 0, "allocations in the audio path");
    y
}

/// A varied stereo signal: a sweep, a chord and noise, around −20 dBFS.
fn varied(n: usize) -> Planar {
    let nz = common::noise(n, 0.05, 5);
    (0..2)
        .map(|c| {
            (0..n)
                .map(|i| {
                    let t = i as f64 / FS;
                    0.1 * (2.0 * PI * (50.0 + 2_000.0 * t) * t).sin()
                        + 0.05 * (2.0 * PI * (261.6 + c as f64) * t).sin()
                        + nz[c][i]
                })
                .collect()
        })
        .collect()
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

/// Welch-averaged power spectrum over `seg`-point segments (Blackman-Harris window).
fn welch(x: &[f64], seg: usize) -> Vec<f64> {
    let mut acc = vec![0.0; seg / 2 + 1];
    let mut count = 0.0;
    let mut start = 0;
    while start + seg <= x.len() {
        for (a, p) in acc.iter_mut().zip(power_spectrum(&x[start..start + seg])) {
            *a += p;
        }
        count += 1.0;
        start += seg / 2;
    }
    acc.iter().map(|a| a / count).collect()
}

fn band(spec: &[f64], seg: usize, lo: f64, hi: f64) -> f64 {
    let bin = |f: f64| (f / FS * seg as f64) as usize;
    spec[bin(lo)..bin(hi)].iter().sum()
}

#[test]
fn tpdf_total_error_is_minus_96_3_dbfs() {
    let n = 2 * FS as usize;
    let x = varied(n);
    let y = run(dither("none", 1.0), &x, FS, 512);
    for c in 0..2 {
        let err: Vec<f64> = y[c].iter().zip(&x[c]).map(|(a, b)| a - b).collect();
        let level = db(rms(&err));
        let mean = err.iter().sum::<f64>() / n as f64;
        println!(
            "channel {c}: total error {level:.3} dBFS RMS, mean {:.2e} LSB",
            mean / LSB16
        );
        assert!((level + 96.3).abs() <= 0.3, "{level}");
        assert!(mean.abs() < 0.01 * LSB16);
    }
}

#[test]
fn output_lies_on_the_16_bit_grid() {
    let mut x = varied(20_000);
    x[0][100] = 1.5; // clips to the largest code
    x[1][200] = -1.5;
    for shaping in ["none", "lipshitz"] {
        let y = run(dither(shaping, 3.0), &x, FS, 256);
        for ch in &y {
            for &v in ch {
                let k = v * 32_768.0;
                assert_eq!(k.fract(), 0.0, "{v} is off the grid");
                assert!((-32_768.0..=32_767.0).contains(&k));
            }
        }
        assert_eq!(y[0][100], 32_767.0 / 32_768.0);
        assert_eq!(y[1][200], -1.0);
    }
}

#[test]
fn removes_harmonic_spurs_of_a_minus_90_dbfs_sine() {
    let n = 1 << 19;
    let seg = 1 << 14;
    let f = 1_000.0;
    let amp = 10f64.powf(-90.0 / 20.0);
    let ch: Vec<f64> = (0..n)
        .map(|i| amp * (2.0 * PI * f * i as f64 / FS).sin())
        .collect();
    let x: Planar = vec![ch.clone()];
    // Without dither: plain rounding to the 16-bit grid (computed here).
    let plain: Vec<f64> = ch
        .iter()
        .map(|v| (v * 32_768.0).round() / 32_768.0)
        .collect();
    let dithered = run(dither("none", 9.0), &x, FS, 1024);
    let harmonic_excess = |y: &[f64]| -> Vec<f64> {
        let spec = welch(y, seg);
        let mut sorted = spec[10..].to_vec();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = sorted[sorted.len() / 2];
        [3, 5, 7, 9]
            .iter()
            .map(|h| {
                let centre = (h * f as usize) as f64 / FS * seg as f64;
                let c = centre.round() as usize;
                let p = spec[c - 4..=c + 4].iter().cloned().fold(0.0, f64::max);
                10.0 * (p / median).log10()
            })
            .collect()
    };
    let without = harmonic_excess(&plain);
    let with = harmonic_excess(&dithered[0]);
    println!("harmonics 3,5,7,9 over the median noise floor: without dither {without:.1?} dB, with TPDF {with:.1?} dB");
    assert!(
        without.iter().any(|&d| d > 20.0),
        "undithered spurs expected"
    );
    // Averaged over 63 segments the noise estimate varies by about ±1 dB; the largest of 9 bins
    // of pure noise lies a few dB over the median, a real spur many dB more.
    for d in with {
        assert!(d < 8.0, "spur {d} dB over the noise floor");
    }
}

#[test]
fn no_noise_modulation() {
    // A slow ramp across ±8 LSB, repeated: the error variance in each input-amplitude bin.
    let n = 800_000;
    let ch: Vec<f64> = (0..n)
        .map(|i| 8.0 * LSB16 * (2.0 * PI * i as f64 / 40_000.0).sin())
        .collect();
    let x: Planar = vec![ch.clone()];
    let y = run(dither("none", 4.0), &x, FS, 4096);
    let bins = 16;
    let mut sum = vec![0.0; bins];
    let mut sq = vec![0.0; bins];
    let mut count = vec![0.0; bins];
    for (a, b) in y[0].iter().zip(&ch) {
        let e = (a - b) / LSB16;
        let k = (((b / LSB16) + 8.0) / 16.0 * bins as f64)
            .floor()
            .clamp(0.0, bins as f64 - 1.0) as usize;
        sum[k] += e;
        sq[k] += e * e;
        count[k] += 1.0;
    }
    let vars: Vec<f64> = (0..bins)
        .map(|k| sq[k] / count[k] - (sum[k] / count[k]).powi(2))
        .collect();
    println!("error variance per input bin (LSB², theory 0.25): {vars:.4?}");
    for v in &vars {
        assert!((v / 0.25 - 1.0).abs() < 0.05, "variance {v}");
    }
}

#[test]
fn same_seed_same_bits() {
    let x = varied(30_000);
    let a = run(dither("lipshitz", 42.0), &x, FS, 512);
    let b = run(dither("lipshitz", 42.0), &x, FS, 100);
    let c = run(dither("lipshitz", 43.0), &x, FS, 512);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Channels have independent noise even for identical inputs.
    let mono = vec![x[0].clone(), x[0].clone()];
    let d = run(dither("none", 42.0), &mono, FS, 512);
    assert_ne!(d[0], d[1]);
}

#[test]
fn block_size_invariance() {
    let x = varied(50_000);
    for shaping in ["none", "lipshitz", "wannamaker3", "fweighted9"] {
        let reference = run(dither(shaping, 7.0), &x, FS, 1);
        for block in [64, 997, 4096] {
            assert!(
                run(dither(shaping, 7.0), &x, FS, block) == reference,
                "{shaping} {block}"
            );
        }
    }
}

#[test]
fn noise_shaping_moves_the_noise_up() {
    let n = 1 << 18;
    let seg = 1 << 12;
    let x: Planar = vec![common::noise(n, 0.1, 21)[0].clone()];
    let error_spectrum = |shaping: &str| {
        let y = run(dither(shaping, 5.0), &x, FS, 1024);
        let e: Vec<f64> = y[0].iter().zip(&x[0]).map(|(a, b)| a - b).collect();
        welch(&e, seg)
    };
    let flat = error_spectrum("none");
    let (flat_mid, flat_high) = (
        band(&flat, seg, 1_000.0, 5_000.0),
        band(&flat, seg, 15_000.0, 22_000.0),
    );
    for shaping in ["lipshitz", "wannamaker3", "fweighted9"] {
        let s = error_spectrum(shaping);
        let mid = 10.0 * (band(&s, seg, 1_000.0, 5_000.0) / flat_mid).log10();
        let high = 10.0 * (band(&s, seg, 15_000.0, 22_000.0) / flat_high).log10();
        println!("{shaping}: 1–5 kHz {mid:+.1} dB, 15–22 kHz {high:+.1} dB relative to flat TPDF");
        assert!(mid < -3.0 && high > 3.0, "{shaping}");
    }
}

#[test]
fn falls_back_to_flat_tpdf_away_from_44_1_and_48_khz() {
    let x = vec![common::noise(10_000, 0.1, 2)[0].clone()];
    let shaped = run(dither("lipshitz", 1.0), &x, 96_000.0, 512);
    let flat = run(dither("none", 1.0), &x, 96_000.0, 512);
    assert_eq!(shaped, flat);
    let mut p = stemgraph::dsp::registry::build("dither", &dither("lipshitz", 1.0), 1)
        .unwrap()
        .processor;
    p.prepare(&stemgraph::dsp::ProcessSpec {
        sample_rate: 96_000.0,
        max_block: 64,
        input_channels: 1,
    });
    assert_eq!(
        p.telemetry().unwrap().get_named("noise_shaping_active"),
        Some(0.0)
    );
    p.prepare(&stemgraph::dsp::ProcessSpec {
        sample_rate: 48_000.0,
        max_block: 64,
        input_channels: 1,
    });
    assert_eq!(
        p.telemetry().unwrap().get_named("noise_shaping_active"),
        Some(1.0)
    );
}

#[test]
fn rejects_bad_options() {
    let bad = [
        ProcessorConfig::new().num("bits", 12.5),
        ProcessorConfig::new().num("bits", 32.0),
        ProcessorConfig::new().num("seed", -1.0),
        ProcessorConfig::new().text("noise_shaping", "sharp"),
    ];
    for cfg in bad {
        assert!(
            stemgraph::dsp::registry::build("dither", &cfg, 2).is_err(),
            "{cfg:?}"
        );
    }
}
