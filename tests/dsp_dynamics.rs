//! Compressor and de-esser against independent references: the static curve from the
//! Giannoulis/Massberg/Reiss formula, attack/release time constants, external side-chain,
//! parallel mix, the de-esser's band split; block-size invariance, no clicks, no allocation.
#![allow(clippy::needless_range_loop)]
use crate::common;
use crate::dsp_util;

use dsp_util::*;
use stemgraph::automation::Shape;
use stemgraph::dsp::{ConfigValue, Handover, Port, ProcessorConfig};
use stemgraph::graph::{GraphSpec, NodeKind};

/// The gain reduction (dB) of the static curve, written from the paper's equation.
fn expected_reduction(level: f64, threshold: f64, ratio: f64, knee: f64) -> f64 {
    let d = level - threshold;
    let out = if 2.0 * d < -knee {
        level
    } else if 2.0 * d.abs() <= knee && knee > 0.0 {
        level + (1.0 / ratio - 1.0) * (d + knee / 2.0).powi(2) / (2.0 * knee)
    } else {
        threshold + d / ratio
    };
    level - out
}

fn stereo(x: Vec<f64>) -> Vec<Vec<f64>> {
    vec![x.clone(), x]
}

fn compressor(threshold: f64, ratio: f64, knee: f64, attack: f64, release: f64) -> ProcessorConfig {
    ProcessorConfig::new()
        .num("threshold_db", threshold)
        .num("ratio", ratio)
        .num("knee_db", knee)
        .num("attack_ms", attack)
        .num("release_ms", release)
}

/// Static curve on steady 1 kHz tones, −60…0 dBFS: peak detector (a sine's level is its peak).
#[test]
fn static_curve_peak_detector() {
    let n = (0.4 * FS) as usize;
    let mut worst: f64 = 0.0;
    for &(threshold, ratio, knee) in &[(-30.0, 4.0, 0.0), (-30.0, 4.0, 12.0), (-20.0, 10.0, 6.0)] {
        let cfg = compressor(threshold, ratio, knee, 0.05, 3000.0);
        for step in 0..=20 {
            let level = -60.0 + 3.0 * step as f64;
            let a = amp(level);
            let x = stereo(sine(n, 1000.0, a));
            let y = process("compressor", cfg.clone(), &x, 4096);
            // The output's crest over the last 20 ms against the input's.
            let tail = &y[0][n - 960..];
            let peak = tail.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let measured = db(peak / a);
            let expected = -expected_reduction(level, threshold, ratio, knee);
            let err = (measured - expected).abs();
            worst = worst.max(err);
            assert!(
                err < 0.2,
                "T {threshold} R {ratio} W {knee} at {level} dBFS: gain {measured:.3} dB, \
                 expected {expected:.3} dB"
            );
        }
    }
    eprintln!("static curve (peak): worst error {worst:.4} dB (tolerance 0.2)");
}

/// Static curve with the RMS detector: a sine's level is its RMS (peak − 3.01 dB).
#[test]
fn static_curve_rms_detector() {
    let n = (0.6 * FS) as usize;
    let mut worst: f64 = 0.0;
    for &(threshold, ratio, knee) in &[(-30.0, 4.0, 0.0), (-30.0, 4.0, 12.0)] {
        let cfg = compressor(threshold, ratio, knee, 5.0, 50.0)
            .text("detector", "rms")
            .num("rms_window_ms", 50.0)
            .num("makeup_db", 3.0);
        for step in 0..=20 {
            let level = -60.0 + 3.0 * step as f64;
            let a = amp(level);
            let x = stereo(sine(n, 1000.0, a));
            let y = process("compressor", cfg.clone(), &x, 997);
            let win = 9600; // 200 ms, a whole number of periods
            let measured = db(rms(&y[1][n - win..]) / rms(&x[1][n - win..]));
            let rms_level = level - 10.0 * 2f64.log10();
            let expected = 3.0 - expected_reduction(rms_level, threshold, ratio, knee);
            let err = (measured - expected).abs();
            worst = worst.max(err);
            assert!(
                err < 0.2,
                "T {threshold} R {ratio} W {knee} at {level} dBFS peak: gain {measured:.3} dB, \
                 expected {expected:.3} dB"
            );
        }
    }
    eprintln!("static curve (rms): worst error {worst:.4} dB (tolerance 0.2)");
}

/// A signal of constant magnitude (a square wave: |x| = a), so the detector's level steps
/// exactly and the gain reduction shows the ballistics alone.
fn square(n: usize, levels: &[(usize, f64)]) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let level = levels.iter().rev().find(|(at, _)| i >= *at).unwrap().1;
            let sign = if (i / 120) % 2 == 0 { 1.0 } else { -1.0 };
            sign * amp(level)
        })
        .collect()
}

/// Time (ms) from `from` until the gain reduction has covered 63 % of its change to `to_value`.
fn time_to_63(gr: &[f64], from: usize, start_value: f64, end_value: f64) -> f64 {
    let target = start_value + (1.0 - (-1.0f64).exp()) * (end_value - start_value);
    let rising = end_value > start_value;
    let i = gr[from..]
        .iter()
        .position(|&g| if rising { g >= target } else { g <= target })
        .expect("reaches 63 %");
    i as f64 * 1000.0 / FS
}

#[test]
fn attack_and_release_times() {
    for &(attack, release) in &[(1.0, 50.0), (20.0, 200.0), (100.0, 1000.0)] {
        let step_up = (1.5 * FS) as usize;
        let step_down = step_up + (10.0 * attack * FS / 1000.0) as usize + 4800;
        let n = step_down + (10.0 * release * FS / 1000.0) as usize;
        // −20 dBFS then −10 dBFS (a 10 dB step, both above threshold), then back.
        let x = square(n, &[(0, -20.0), (step_up, -10.0), (step_down, -20.0)]);
        let (threshold, ratio) = (-30.0, 4.0);
        let cfg = compressor(threshold, ratio, 0.0, attack, release);
        let y = process("compressor", cfg, &vec![x.clone()], 64);
        let gr: Vec<f64> = y[0].iter().zip(&x).map(|(y, x)| -db(y / x)).collect();
        let low = expected_reduction(-20.0, threshold, ratio, 0.0);
        let high = expected_reduction(-10.0, threshold, ratio, 0.0);
        assert!(
            (gr[step_up - 1] - low).abs() < 1e-3,
            "settled before the step"
        );
        let t_attack = time_to_63(&gr, step_up, low, high);
        let t_release = time_to_63(&gr, step_down, high, low);
        eprintln!(
            "attack {attack} ms → {t_attack:.3} ms ({:+.2} %); release {release} ms → \
             {t_release:.3} ms ({:+.2} %)",
            100.0 * (t_attack / attack - 1.0),
            100.0 * (t_release / release - 1.0)
        );
        assert!((t_attack / attack - 1.0).abs() < 0.1);
        assert!((t_release / release - 1.0).abs() < 0.1);
    }
}

/// Bass on the main input, a kick on the key input: the bass ducks when the kick hits.
fn kick(n: usize, every: usize, amp_db: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = (i % every) as f64 / FS;
            if i % every < (0.08 * FS) as usize {
                amp(amp_db) * (2.0 * std::f64::consts::PI * 70.0 * t).sin() * (-t / 0.03).exp()
            } else {
                0.0
            }
        })
        .collect()
}

fn sidechain_graph(with_key: bool, cfg: ProcessorConfig) -> GraphSpec {
    let mut g = GraphSpec::new();
    g.source("bass", 0).source("kick", 1);
    g.processor("fx", "compressor", cfg);
    g.node("out", NodeKind::Output { channels: 2 });
    g.connect("bass", "fx").connect("fx", "out");
    if with_key {
        g.connect_port("kick", "fx", Port::Key, 0.0);
    }
    g
}

#[test]
fn sidechain_key_ducks_the_bass() {
    let n = 2 * FS as usize;
    let every = (0.5 * FS) as usize;
    let bass = stereo(sine(n, 55.0, amp(-20.0)));
    let kick_mono = vec![kick(n, every, -1.0)];
    let cfg = compressor(-12.0, 20.0, 0.0, 1.0, 40.0);
    for key in [kick_mono.clone(), stereo(kick_mono[0].clone())] {
        let inputs = [bass.clone(), key];
        let run = run(&sidechain_graph(true, cfg.clone()), &inputs, 997, "fx");
        let y = &run.out;
        // The gain applied to the bass over a window (samples where the bass is not near a
        // zero crossing): mean of 20·log10(|y|/|x|).
        let gain_db = |c: usize, from: usize, len: usize| {
            let (mut sum, mut count) = (0.0, 0);
            for i in from..from + len {
                if bass[c][i].abs() > 0.3 * amp(-20.0) {
                    sum += db(y[c][i].abs() / bass[c][i].abs());
                    count += 1;
                }
            }
            sum / count as f64
        };
        for beat in 1..4 {
            let hit = beat * every;
            // 5–20 ms after the hit: the kick is loud, the bass ducked.
            let during = gain_db(0, hit + 240, 720);
            // 400–420 ms after the hit (kick long gone, release 40 ms): the bass is back.
            let after = gain_db(1, hit + (0.4 * FS) as usize, 960);
            eprintln!("beat {beat}: bass {during:.2} dB during the kick, {after:.4} dB after");
            assert!(during < -6.0, "beat {beat}: ducked only {during:.2} dB");
            assert!(
                after.abs() < 0.05,
                "beat {beat}: {after:.3} dB between kicks"
            );
        }
        let gr: f64 = run.telemetry.iter().map(|(_, t)| t[0]).fold(0.0, f64::max);
        assert!(gr > 6.0, "telemetry shows the ducking: {gr}");
    }
    // No key: the bass (below threshold) passes bit for bit.
    let inputs = [bass.clone(), kick_mono];
    let y = run(&sidechain_graph(false, cfg), &inputs, 997, "fx").out;
    assert_eq!(y, bass);
}

#[test]
fn parallel_mix() {
    let n = (0.5 * FS) as usize;
    let x = common::noise(n, 0.7, 11);
    let cfg = compressor(-40.0, 10.0, 6.0, 1.0, 100.0).num("makeup_db", 6.0);
    let dry = process("compressor", cfg.clone().num("mix_pct", 0.0), &x, 64);
    assert_eq!(dry, x, "mix 0 % is the dry signal, bit for bit");
    let wet = process("compressor", cfg.clone(), &x, 64);
    let half = process("compressor", cfg.num("mix_pct", 50.0), &x, 64);
    let mut worst: f64 = 0.0;
    for c in 0..2 {
        for i in 0..n {
            let expected = 0.5 * x[c][i] + 0.5 * wet[c][i];
            worst = worst.max((half[c][i] - expected).abs());
        }
    }
    assert!(
        worst < 1e-12,
        "mix 50 % = half dry + half wet (time-aligned): {worst:e}"
    );
}

#[test]
fn stereo_link() {
    let n = (0.4 * FS) as usize;
    // Loud left, quiet right.
    let x = vec![sine(n, 1000.0, amp(-6.0)), sine(n, 1000.0, amp(-40.0))];
    let base = compressor(-30.0, 4.0, 0.0, 0.05, 3000.0);
    let gain = |y: &Vec<Vec<f64>>, x: &Vec<Vec<f64>>, c: usize| {
        db(rms(&y[c][n - 4800..]) / rms(&x[c][n - 4800..]))
    };
    let linked = process("compressor", base.clone().num("link_pct", 100.0), &x, 64);
    let free = process("compressor", base.num("link_pct", 0.0), &x, 64);
    let expected_left = -expected_reduction(-6.0, -30.0, 4.0, 0.0);
    assert!((gain(&linked, &x, 0) - expected_left).abs() < 0.2);
    assert!(
        (gain(&linked, &x, 1) - expected_left).abs() < 0.2,
        "linked: same gain"
    );
    assert!((gain(&free, &x, 0) - expected_left).abs() < 0.2);
    assert!(
        gain(&free, &x, 1).abs() < 1e-9,
        "unlinked quiet channel untouched"
    );
}

#[test]
fn sidechain_highpass_ignores_the_low_end() {
    let n = (0.5 * FS) as usize;
    let x = stereo(sine(n, 40.0, amp(-6.0)));
    let base = compressor(-20.0, 8.0, 0.0, 1.0, 100.0);
    let plain = process("compressor", base.clone(), &x, 64);
    let filtered = process("compressor", base.num("sidechain_hpf_hz", 400.0), &x, 64);
    let g = |y: &Vec<Vec<f64>>| db(rms(&y[0][n / 2..]) / rms(&x[0][n / 2..]));
    assert!(g(&plain) < -10.0);
    // 40 Hz through a 400 Hz 12 dB/octave high-pass is ~40 dB down: below threshold.
    assert!(g(&filtered).abs() < 0.01, "{}", g(&filtered));
}

fn music(n: usize) -> Vec<Vec<f64>> {
    let mut x = common::noise(n, 0.3, 5);
    for c in 0..2 {
        for (i, v) in x[c].iter_mut().enumerate() {
            let t = i as f64 / FS;
            *v += 0.5
                * (2.0 * std::f64::consts::PI * (80.0 + 40.0 * c as f64) * t).sin()
                * (0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin());
        }
    }
    x
}

#[test]
fn compressor_block_size_invariance() {
    let n = 20000;
    let x = music(n);
    for cfg in [
        compressor(-20.0, 4.0, 6.0, 2.0, 50.0).num("link_pct", 60.0),
        compressor(-20.0, 4.0, 6.0, 2.0, 50.0)
            .text("detector", "rms")
            .num("sidechain_hpf_hz", 100.0)
            .num("mix_pct", 70.0),
    ] {
        let mut spec = graph("compressor", cfg, 2);
        automate(
            &mut spec,
            "threshold_db",
            &[
                (0, -10.0, Shape::Linear),
                (5000, -40.0, Shape::Smooth),
                (9000, -25.0, Shape::Linear),
            ],
        );
        automate(
            &mut spec,
            "attack_ms",
            &[
                (3000, 2.0, Shape::Exponential),
                (12000, 30.0, Shape::Linear),
            ],
        );
        automate(
            &mut spec,
            "link_pct",
            &[(0, 100.0, Shape::Linear), (15000, 0.0, Shape::Linear)],
        );
        assert_block_invariant(&spec, std::slice::from_ref(&x));
    }
    // With a key.
    let mut spec = sidechain_graph(true, compressor(-30.0, 6.0, 3.0, 1.0, 60.0));
    automate(
        &mut spec,
        "ratio",
        &[
            (0, 2.0, Shape::Exponential),
            (n as i64, 12.0, Shape::Linear),
        ],
    );
    assert_block_invariant(&spec, &[x.clone(), common::noise(n, 0.5, 9)]);
}

#[test]
fn compressor_threshold_step_does_not_click() {
    let n = FS as usize;
    let x = stereo(sine(n, 200.0, amp(-6.0)));
    for block in [64, 997] {
        let mut spec = graph("compressor", compressor(-3.0, 8.0, 0.0, 0.5, 80.0), 2);
        automate(
            &mut spec,
            "threshold_db",
            &[
                (0, -3.0, Shape::Step),
                (24_001, -40.0, Shape::Step),
                (36_001, -3.0, Shape::Step),
            ],
        );
        let y = run(&spec, std::slice::from_ref(&x), block, "fx").out;
        let limit = max_jump(&x[0]);
        assert!(max_jump(&y[0]) <= limit, "{} > {limit}", max_jump(&y[0]));
        // And it did compress.
        assert!(rms(&y[0][30_000..34_000]) < 0.5 * rms(&x[0][30_000..34_000]));
    }
}

#[test]
fn telemetry_reports_the_block_max() {
    let n = (0.3 * FS) as usize;
    let x = stereo(sine(n, 1000.0, amp(-10.0)));
    let spec = graph("compressor", compressor(-30.0, 4.0, 0.0, 0.05, 3000.0), 2);
    let run = run(&spec, &[x], 4096, "fx");
    let last = run.telemetry.last().unwrap().1[0];
    assert!((last - 15.0).abs() < 0.2, "{last}");
}

#[test]
fn compressor_options_are_checked() {
    use stemgraph::dsp::registry::build;
    let err = |cfg: ProcessorConfig| build("compressor", &cfg, 2).err().unwrap().to_string();
    assert!(err(ProcessorConfig::new().text("detector", "loud")).contains("\"peak\", \"rms\""));
    assert!(err(ProcessorConfig::new().num("sidechain_hpf_hz", 5.0)).contains("between 20"));
    assert!(err(ProcessorConfig::new().num("rms_window_ms", 5.0)).contains("rms_window_ms"));
    let off = build(
        "compressor",
        &ProcessorConfig::new().num("sidechain_hpf_hz", 0.0),
        2,
    );
    assert!(off.is_ok(), "0 switches the side-chain filter off");
    let hpf = build(
        "compressor",
        &ProcessorConfig::new().with("sidechain_hpf_hz", ConfigValue::Number(120.0)),
        1,
    )
    .unwrap();
    assert_eq!(hpf.initial.last(), Some(&120.0));
}

// ---------------------------------------------------------------- de-esser

fn deesser(freq: f64, threshold: f64) -> ProcessorConfig {
    ProcessorConfig::new()
        .text("mode", "band")
        .num("freq_hz", freq)
        .num("q", 1.5)
        .num("threshold_db", threshold)
        .num("ratio", 8.0)
        .num("range_db", 12.0)
}

/// A 500 Hz tone throughout and a 7 kHz burst from 0.3 s to 0.7 s.
fn voice(n: usize) -> Vec<f64> {
    let tone = sine(n, 500.0, amp(-12.0));
    let ess = sine(n, 7000.0, amp(-10.0));
    let (a, b) = ((0.3 * FS) as usize, (0.7 * FS) as usize);
    (0..n)
        .map(|i| tone[i] + if (a..b).contains(&i) { ess[i] } else { 0.0 })
        .collect()
}

/// The reduction a steady band at `level` dBFS gets (hard knee, capped at the range).
fn deesser_reduction(level: f64, threshold: f64, ratio: f64, range: f64) -> f64 {
    ((level - threshold) * (1.0 - 1.0 / ratio)).clamp(0.0, range)
}

/// Band mode at 7 kHz: the burst is reduced by the full (capped) reduction, the 500 Hz tone
/// next to it stays within 0.05 dB, and before the burst the output is the input bit for bit.
#[test]
fn deesser_reduces_the_band_only() {
    let n = FS as usize;
    let x = stereo(voice(n));
    let y = process("deesser", deesser(7000.0, -30.0), &x, 997);
    let (start, len) = ((0.45 * FS) as usize, 4800); // whole periods of both tones
    let reduced =
        db(tone_amplitude(&y[0], 7000.0, start, len) / tone_amplitude(&x[0], 7000.0, start, len));
    let tone =
        db(tone_amplitude(&y[0], 500.0, start, len) / tone_amplitude(&x[0], 500.0, start, len));
    let expected = -deesser_reduction(-10.0, -30.0, 8.0, 12.0);
    eprintln!("de-esser (band): 7 kHz {reduced:.3} dB (expected {expected}), 500 Hz {tone:+.4} dB");
    assert!(
        (reduced - expected).abs() < 0.5,
        "7 kHz reduced {reduced:.2} dB"
    );
    assert!(tone.abs() < 0.05, "500 Hz changed {tone:.4} dB");
    let before = (0.3 * FS) as usize;
    assert_eq!(&y[0][..before], &x[0][..before]);
    assert_eq!(&y[1][..before], &x[1][..before]);
}

/// High mode: a high shelf of depth g above `freq_hz`. Reference: |H|² = (1 + g²ω⁴)/(1 + ω⁴).
#[test]
fn deesser_high_mode_reduces_the_top() {
    let n = FS as usize;
    let x = stereo(voice(n));
    let cfg = ProcessorConfig::new()
        .text("mode", "high")
        .num("freq_hz", 3000.0)
        .num("threshold_db", -30.0)
        .num("ratio", 8.0)
        .num("range_db", 12.0);
    let y = process("deesser", cfg, &x, 64);
    let (start, len) = ((0.45 * FS) as usize, 4800);
    let reduced =
        db(tone_amplitude(&y[1], 7000.0, start, len) / tone_amplitude(&x[1], 7000.0, start, len));
    let tone =
        db(tone_amplitude(&y[1], 500.0, start, len) / tone_amplitude(&x[1], 500.0, start, len));
    // The band (high-passed 7 kHz) is above −12 dBFS: the reduction is the 12 dB range.
    let g = amp(-12.0);
    // Bilinear warping: ω is the ratio of the prewarped frequencies.
    let warp = |f: f64| (std::f64::consts::PI * f / FS).tan();
    let w4 = (warp(7000.0) / warp(3000.0)).powi(4);
    let expected = 10.0 * ((1.0 + g * g * w4) / (1.0 + w4)).log10();
    eprintln!(
        "de-esser (high): 7 kHz {reduced:.3} dB (expected {expected:.3}), 500 Hz {tone:+.4} dB"
    );
    assert!((reduced - expected).abs() < 0.3);
    assert!(tone.abs() < 0.05);
}

#[test]
fn deesser_without_reduction_is_transparent() {
    let n = FS as usize;
    let x = stereo(voice(n));
    let y = process("deesser", deesser(7000.0, 0.0), &x, 997);
    let residual: f64 = y[0]
        .iter()
        .zip(&x[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        residual == 0.0 || db(residual) < -140.0,
        "residual {residual:e}"
    );
    assert_eq!(y, x);
}

#[test]
fn deesser_telemetry_and_invariance() {
    let n = 20000;
    let mut x = music(n);
    let ess = sine(n, 6500.0, 0.4);
    for c in 0..2 {
        for i in 8000..14000 {
            x[c][i] += ess[i];
        }
    }
    let mut spec = graph("deesser", deesser(6000.0, -35.0), 2);
    automate(
        &mut spec,
        "threshold_db",
        &[(0, -20.0, Shape::Linear), (10000, -45.0, Shape::Linear)],
    );
    automate(
        &mut spec,
        "freq_hz",
        &[
            (0, 5000.0, Shape::Exponential),
            (n as i64, 9000.0, Shape::Linear),
        ],
    );
    assert_block_invariant(&spec, std::slice::from_ref(&x));
    let run = run(&spec, &[x], 997, "fx");
    let gr: f64 = run.telemetry.iter().map(|(_, t)| t[0]).fold(0.0, f64::max);
    assert!(gr > 3.0, "{gr}");
}

#[test]
fn deesser_threshold_step_does_not_click() {
    let n = FS as usize;
    let x = stereo(voice(n));
    let mut spec = graph("deesser", deesser(7000.0, 0.0), 2);
    automate(
        &mut spec,
        "threshold_db",
        &[(0, 0.0, Shape::Step), (24_011, -50.0, Shape::Step)],
    );
    let y = run(&spec, std::slice::from_ref(&x), 997, "fx").out;
    assert!(max_jump(&y[0]) <= max_jump(&x[0]));
}

/// Every kind's documentation example builds and shows its optional parameters.
#[test]
fn registry_examples_build() {
    use stemgraph::dsp::registry::{build, find};
    for (kind, expected) in [
        (
            "compressor",
            &["rms_window_ms", "sidechain_hpf_hz", "mix_pct"][..],
        ),
        ("deesser", &["q", "range_db"][..]),
        ("multiband", &["4.makeup_db", "knee_db"][..]),
        ("width", &["mono_below_hz"][..]),
    ] {
        let info = find(kind).expect("registered");
        let built = build(kind, &(info.example)(), 2).expect("example builds");
        let names: Vec<&str> = built
            .processor
            .params()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        for name in expected {
            assert!(names.contains(name), "{kind} example lacks {name}");
        }
        assert!(built.processor.telemetry().is_some());
    }
}

/// Hot reload: the new processor takes the old one's state but keeps publishing into its own
/// telemetry (the one the new schedule reads).
#[test]
fn adopted_state_keeps_the_new_telemetry() {
    use stemgraph::dsp::param::ParamSlot;
    use stemgraph::dsp::registry::build;
    use stemgraph::dsp::{AudioBuffer, ParamBlock, ProcessSpec};
    let cfg = compressor(-30.0, 4.0, 0.0, 1.0, 100.0);
    let spec = ProcessSpec {
        sample_rate: FS,
        max_block: 256,
        input_channels: 2,
    };
    let mut old = build("compressor", &cfg, 2).unwrap();
    let mut new = build("compressor", &cfg, 2).unwrap();
    old.processor.prepare(&spec);
    new.processor.prepare(&spec);
    let slots: Vec<ParamSlot> = old
        .initial
        .iter()
        .map(|&v| ParamSlot::new(v, 256))
        .collect();
    let mut buf = AudioBuffer::new(2, 256);
    let loud = sine(256, 1000.0, 0.9);
    let mut run_block = |p: &mut dyn stemgraph::dsp::Processor| {
        for c in 0..2 {
            buf.channel_mut(c, 256).copy_from_slice(&loud);
        }
        p.process(&mut buf.view_mut(256), None, ParamBlock::new(&slots));
        buf.channel(0, 256)[255]
    };
    for _ in 0..20 {
        run_block(old.processor.as_mut());
    }
    let new_telemetry = new.processor.telemetry().unwrap();
    assert!(new
        .processor
        .take_state(old.processor.as_mut(), Handover::Move));
    let continued = run_block(new.processor.as_mut());
    let fresh = {
        let mut f = build("compressor", &cfg, 2).unwrap();
        f.processor.prepare(&spec);
        run_block(f.processor.as_mut())
    };
    assert_ne!(continued, fresh, "the envelope was carried over");
    assert!(new_telemetry.get(0) > 10.0, "{}", new_telemetry.get(0));
}
