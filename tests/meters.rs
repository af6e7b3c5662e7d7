//! Meter conformance: EBU Tech 3341 / 3342 cases synthesized as dsp-reference.md describes,
//! block-size independence, agreement with the `ebur128` crate, level statistics, and the
//! real-time contract (no allocation in `push`).
//!
//! Each measured case prints a `REPORT` line (run with `--nocapture` to see the table).

use std::f64::consts::PI;

use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
use ebur128::{EbuR128, Mode};
use stemgraph::analysis::meters::*;

const FS: f64 = 48_000.0;
const FS44: f64 = 44_100.0;

// ---------------------------------------------------------------------------------------
// Signal synthesis

/// Builds a 1 kHz tone from `(seconds, peak dBFS)` segments (`None` = silence), phase
/// continuous across segments.
fn tone_segments(fs: f64, segments: &[(f64, Option<f64>)]) -> Vec<f64> {
    let mut out = Vec::new();
    for &(secs, level) in segments {
        let n = libm::round(secs * fs) as usize;
        let amp = level.map_or(0.0, db_to_lin);
        let start = out.len();
        out.extend((start..start + n).map(|i| amp * (2.0 * PI * 1000.0 * i as f64 / fs).sin()));
    }
    out
}

fn tone(fs: f64, secs: f64, level: f64) -> Vec<f64> {
    tone_segments(fs, &[(secs, Some(level))])
}

fn repeat_segments(pattern: &[(f64, Option<f64>)], times: usize) -> Vec<(f64, Option<f64>)> {
    (0..times).flat_map(|_| pattern.iter().copied()).collect()
}

/// Deterministic xorshift64* generator.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn white_noise(n: usize, amp: f64, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n).map(|_| amp * r.uniform()).collect()
}

/// A music-like stereo mixture: bass, chords, a decaying noise "drum", changing dynamics
/// over sections (including a quiet passage and a pause), slightly different in L and R.
fn music_like(fs: f64, secs: f64, seed: u64) -> [Vec<f64>; 2] {
    let n = (secs * fs) as usize;
    let mut rng = Rng(seed);
    let mut l = vec![0.0; n];
    let mut r = vec![0.0; n];
    let beat = (0.5 * fs) as usize;
    let mut drum_env = 0.0;
    let mut lp = 0.0;
    for i in 0..n {
        let t = i as f64 / fs;
        // Section dynamics: loud, quiet, pause, build-up, loud.
        let section = match t / secs {
            x if x < 0.3 => 1.0,
            x if x < 0.45 => 0.12,
            x if x < 0.5 => 0.0,
            x if x < 0.7 => 0.2 + 0.8 * (x - 0.5) / 0.2,
            _ => 0.9,
        };
        if i % beat == 0 {
            drum_env = 1.0;
        }
        drum_env *= 0.9993;
        let noise = rng.uniform();
        lp += 0.2 * (noise - lp);
        let drum = drum_env * (0.6 * lp + 0.4 * noise);
        let bass = 0.35 * (2.0 * PI * 55.0 * t).sin() * (0.6 + 0.4 * (2.0 * PI * 2.0 * t).sin());
        let chord = 0.12
            * ((2.0 * PI * 220.0 * t).sin()
                + (2.0 * PI * 277.18 * t).sin()
                + (2.0 * PI * 329.63 * t).sin()
                + 0.3 * (2.0 * PI * 3520.0 * t).sin());
        let hat = 0.05
            * rng.uniform()
            * if (i / (beat / 4)).is_multiple_of(2) {
                1.0
            } else {
                0.2
            };
        l[i] = section * (bass + 0.8 * chord + drum * 0.5 + hat);
        r[i] = section * (bass + 1.0 * chord + drum * 0.45 - hat);
    }
    [l, r]
}

/// Raised-cosine fades in and out over `fade` seconds.
fn apply_fades(x: &mut [f64], fs: f64, fade: f64) {
    let n = (fade * fs) as usize;
    let len = x.len();
    for i in 0..n {
        let g = 0.5 - 0.5 * (PI * i as f64 / n as f64).cos();
        x[i] *= g;
        x[len - 1 - i] *= g;
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Pushes `channels` through `push` in blocks of `block` frames.
fn feed(channels: &[Vec<f64>], block: usize, mut push: impl FnMut(&[&[f64]])) {
    let n = channels[0].len();
    let mut off = 0;
    while off < n {
        let end = (off + block).min(n);
        let parts: Vec<&[f64]> = channels.iter().map(|c| &c[off..end]).collect();
        push(&parts);
        off = end;
    }
}

fn loudness_of(fs: f64, channels: &[Vec<f64>]) -> LoudnessMeter {
    let mut m = LoudnessMeter::new(fs, channels.len());
    feed(channels, 4096, |b| m.push(b));
    m
}

fn stereo(x: Vec<f64>) -> Vec<Vec<f64>> {
    vec![x.clone(), x]
}

fn report(name: &str, quantity: &str, expected: f64, measured: f64) {
    println!(
        "REPORT | {name} | {quantity} | {expected:.4} | {measured:.4} | {:+.5}",
        measured - expected
    );
}

fn assert_within(name: &str, quantity: &str, expected: f64, measured: f64, tol: f64) {
    report(name, quantity, expected, measured);
    assert!(
        (measured - expected).abs() <= tol,
        "{name} {quantity}: expected {expected} ± {tol}, measured {measured}"
    );
}

// ---------------------------------------------------------------------------------------
// EBU Tech 3341

fn case_1_2(fs: f64, level: f64, name: &str) {
    let m = loudness_of(fs, &stereo(tone(fs, 20.0, level)));
    assert_within(name, "M", level, m.momentary_lufs(), 0.1);
    assert_within(name, "S", level, m.short_term_lufs(), 0.1);
    assert_within(name, "I", level, m.integrated_lufs(), 0.1);
}

#[test]
fn tech3341_case1() {
    case_1_2(FS, -23.0, "3341 case 1 @48k");
    case_1_2(FS44, -23.0, "3341 case 1 @44.1k");
}

#[test]
fn tech3341_case2() {
    case_1_2(FS, -33.0, "3341 case 2 @48k");
    case_1_2(FS44, -33.0, "3341 case 2 @44.1k");
}

fn integrated_case(fs: f64, segments: &[(f64, Option<f64>)], name: &str) {
    let m = loudness_of(fs, &stereo(tone_segments(fs, segments)));
    assert_within(name, "I", -23.0, m.integrated_lufs(), 0.1);
}

#[test]
fn tech3341_case3() {
    let seg = [
        (10.0, Some(-36.0)),
        (60.0, Some(-23.0)),
        (10.0, Some(-36.0)),
    ];
    integrated_case(FS, &seg, "3341 case 3 @48k");
    integrated_case(FS44, &seg, "3341 case 3 @44.1k");
}

#[test]
fn tech3341_case4() {
    let seg = [
        (10.0, Some(-72.0)),
        (10.0, Some(-36.0)),
        (60.0, Some(-23.0)),
        (10.0, Some(-36.0)),
        (10.0, Some(-72.0)),
    ];
    integrated_case(FS, &seg, "3341 case 4 @48k");
}

#[test]
fn tech3341_case5() {
    let seg = [
        (20.0, Some(-26.0)),
        (20.1, Some(-20.0)),
        (20.0, Some(-26.0)),
    ];
    integrated_case(FS, &seg, "3341 case 5 @48k");
    integrated_case(FS44, &seg, "3341 case 5 @44.1k");
}

#[test]
fn tech3341_case6_five_channels() {
    for (fs, name) in [(FS, "3341 case 6 @48k"), (FS44, "3341 case 6 @44.1k")] {
        let lr = tone(fs, 20.0, -28.0);
        let c = tone(fs, 20.0, -24.0);
        let s = tone(fs, 20.0, -30.0);
        let ch = vec![lr.clone(), lr, c, s.clone(), s];
        let mut m = LoudnessMeter::with_layout(fs, ChannelLayout::Surround50);
        feed(&ch, 4096, |b| m.push(b));
        assert_within(name, "I", -23.0, m.integrated_lufs(), 0.1);
        // The default layout for five channels is the same.
        assert_eq!(loudness_of(fs, &ch).integrated_lufs(), m.integrated_lufs());
    }
}

/// Runs `x` through a stereo meter, returning the (t, M, S) series at 100 ms hops.
fn series(fs: f64, x: Vec<f64>) -> (LoudnessMeter, Vec<(f64, f64, f64)>) {
    let ch = stereo(x);
    let mut m = LoudnessMeter::new(fs, 2);
    let mut hist = Vec::new();
    feed(&ch, 1000, |b| {
        m.push(b);
        m.drain_history(&mut hist);
    });
    (m, hist)
}

#[test]
fn tech3341_case9_short_term_constant() {
    for (fs, name) in [(FS, "3341 case 9 @48k"), (FS44, "3341 case 9 @44.1k")] {
        let pat = [(1.34, Some(-20.0)), (1.66, Some(-30.0))];
        let (_, hist) = series(fs, tone_segments(fs, &repeat_segments(&pat, 5)));
        let after: Vec<f64> = hist
            .iter()
            .filter(|h| h.0 >= 3.0 - 1e-9)
            .map(|h| h.2)
            .collect();
        assert!(after.len() >= 120, "{}", after.len());
        let lo = after.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = after.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_within(name, "S min (t>=3s)", -23.0, lo, 0.1);
        assert_within(name, "S max (t>=3s)", -23.0, hi, 0.1);
    }
}

#[test]
fn tech3341_case12_momentary_constant() {
    for (fs, name) in [(FS, "3341 case 12 @48k"), (FS44, "3341 case 12 @44.1k")] {
        let pat = [(0.18, Some(-20.0)), (0.22, Some(-30.0))];
        let (_, hist) = series(fs, tone_segments(fs, &repeat_segments(&pat, 25)));
        let after: Vec<f64> = hist
            .iter()
            .filter(|h| h.0 >= 1.0 - 1e-9)
            .map(|h| h.1)
            .collect();
        assert!(after.len() >= 90, "{}", after.len());
        let lo = after.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = after.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_within(name, "M min (t>=1s)", -23.0, lo, 0.1);
        assert_within(name, "M max (t>=1s)", -23.0, hi, 0.1);
    }
}

#[test]
fn tech3341_case13_max_momentary() {
    for (fs, name) in [(FS, "3341 case 13 @48k"), (FS44, "3341 case 13 @44.1k")] {
        let mut seg = Vec::new();
        for i in 0..25 {
            seg.push((i as f64 * 0.02, None));
            seg.push((0.4, Some(-23.0)));
            seg.push((1.0, None));
        }
        let m = loudness_of(fs, &stereo(tone_segments(fs, &seg)));
        assert_within(name, "max M", -23.0, m.momentary_max_lufs(), 0.1);
    }
}

// ---------------------------------------------------------------------------------------
// True peak (Tech 3341 cases 15-19)

/// (frequency as a fraction of fs, amplitude, phase in degrees, expected dBTP, sample peak dBFS)
const TP_CASES: [(usize, f64, f64, f64, f64, f64); 5] = [
    (15, 0.25, 0.50, 0.0, -6.0, -6.02),
    (16, 0.25, 0.50, 45.0, -6.0, -9.03),
    (17, 1.0 / 6.0, 0.50, 60.0, -6.0, -7.27),
    (18, 0.125, 0.50, 67.5, -6.0, -6.71),
    (19, 0.25, 1.41, 45.0, 3.0, -0.03),
];

fn tp_signal(fs: f64, f: f64, amp: f64, phase_deg: f64) -> Vec<f64> {
    let n = fs as usize; // 1 s
    let ph = phase_deg.to_radians();
    let mut x: Vec<f64> = (0..n)
        .map(|i| amp * (2.0 * PI * f * i as f64 + ph).sin())
        .collect();
    apply_fades(&mut x, fs, 0.010);
    x
}

#[test]
fn tech3341_true_peak_cases_15_to_19() {
    for fs in [FS, FS44] {
        for &(case, f, amp, ph, expected, sample_peak) in &TP_CASES {
            let ch = stereo(tp_signal(fs, f, amp, ph));
            for factor in [4, 8, 16] {
                let mut tp = TruePeakMeter::new(fs, 2, factor);
                feed(&ch, 4096, |b| tp.push(b));
                let name = format!("3341 case {case} @{}k {factor}x", fs / 1000.0);
                let got = tp.true_peak_dbtp();
                report(&name, "dBTP", expected, got);
                assert!(
                    got <= expected + 0.2 && got >= expected - 0.4,
                    "{name}: {got} dBTP, expected {expected} +0.2/-0.4"
                );
                assert_eq!(tp.channel_true_peak(0), tp.channel_true_peak(1));
            }
            let mut lv = LevelMeter::new(2);
            feed(&ch, 4096, |b| lv.push(b));
            let name = format!("3341 case {case} @{}k", fs / 1000.0);
            assert_within(
                &name,
                "sample peak dBFS",
                sample_peak,
                lv.sample_peak_dbfs(),
                0.01,
            );
        }
    }
}

/// Worst reading of a single peak of a sine at `f` (cycles per sample) through the
/// interpolator, over 100 sub-sample positions of the peak; also the best reading.
fn single_peak_readings(interp: &PolyphaseInterpolator, f: f64) -> (f64, f64) {
    let l = interp.factor();
    let d = interp.delay() as f64;
    let (mut worst, mut best) = (f64::INFINITY, 0.0f64);
    let mut out = vec![0.0; l];
    for s in 0..100 {
        let peak_at = 100.0 + s as f64 / 100.0 / l as f64;
        let mut ip = interp.clone();
        ip.reset();
        let mut m = 0.0f64;
        for n in 0..(200 + interp.taps()) {
            ip.push_sample((2.0 * PI * f * (n as f64 - peak_at)).cos(), &mut out);
            for (p, &y) in out.iter().enumerate() {
                let t = n as f64 - d + p as f64 / l as f64;
                if (t - peak_at).abs() <= 0.5 / f {
                    m = m.max(y);
                }
            }
        }
        worst = worst.min(m);
        best = best.max(m);
    }
    (worst, best)
}

#[test]
fn true_peak_under_read_per_factor() {
    // dsp-reference.md: 4x -> 0.55 dB, 8x -> 0.14 dB, 16x -> 0.03 dB at 0.45 fs. Those are the
    // geometric limit -20 log10 cos(pi * 0.45 / factor) of an ideal interpolator.
    for (factor, reference) in [(4usize, 0.55), (8, 0.14), (16, 0.03)] {
        let tp = TruePeakMeter::new(FS, 1, factor);
        let interp = tp.interpolator();
        let (worst, _) = single_peak_readings(interp, 0.45);
        let under = -lin_to_db(worst);
        let ideal = -lin_to_db((PI * 0.45 / factor as f64).cos());
        report(
            &format!("true-peak {factor}x, {} taps/phase", interp.taps()),
            "worst under-read @0.45fs dB",
            reference,
            under,
        );
        assert!(under <= ideal + 0.01, "{factor}x under-reads {under} dB");
        // Over the whole band up to 0.45 fs: no more than the geometric limit plus 0.01 dB
        // under, and no more than 0.03 dB over.
        let mut worst_excess = 0.0f64;
        let mut worst_over = 0.0f64;
        for k in 1..=45 {
            let f = k as f64 / 100.0;
            let (w, b) = single_peak_readings(interp, f);
            let geo = (PI * f / factor as f64).cos();
            worst_excess = worst_excess.max(lin_to_db(geo / w));
            worst_over = worst_over.max(lin_to_db(b));
        }
        report(
            &format!("true-peak {factor}x"),
            "excess under-read vs ideal, 0.01..0.45fs",
            0.0,
            worst_excess,
        );
        report(
            &format!("true-peak {factor}x"),
            "max over-read, 0.01..0.45fs",
            0.0,
            worst_over,
        );
        assert!(worst_excess <= 0.01 && worst_over <= 0.03);
    }
    // BS.1770's own filter length (12 taps per phase at 4x) for comparison.
    let short = PolyphaseInterpolator::new(4, 12, default_kaiser_beta(12));
    let (worst, _) = single_peak_readings(&short, 0.45);
    report(
        "true-peak 4x, 12 taps/phase",
        "worst under-read @0.45fs dB",
        0.55,
        -lin_to_db(worst),
    );
}

#[test]
fn true_peak_factor_1_is_sample_peak_and_2_is_bs1770_at_96k() {
    let ch = stereo(tp_signal(FS, 0.25, 0.5, 45.0));
    let mut tp1 = TruePeakMeter::new(FS, 2, 1);
    let mut lv = LevelMeter::new(2);
    feed(&ch, 999, |b| {
        tp1.push(b);
        lv.push(b);
    });
    assert_eq!(tp1.true_peak(), lv.sample_peak());
    assert_eq!(TruePeakMeter::bs1770_factor(48_000.0), 4);
    assert_eq!(TruePeakMeter::bs1770_factor(96_000.0), 2);
    assert_eq!(TruePeakMeter::bs1770_factor(192_000.0), 1);
    // At 96 kHz, 2x sees a 24 kHz (fs/4) tone's peak between samples.
    let ch = stereo(tp_signal(96_000.0, 0.25, 0.5, 45.0));
    let mut tp = TruePeakMeter::bs1770(96_000.0, 2);
    feed(&ch, 4096, |b| tp.push(b));
    assert_within(
        "fs/4 at 45 deg, 96k, 2x",
        "dBTP",
        -6.02,
        tp.true_peak_dbtp(),
        0.05,
    );
}

#[test]
fn true_peak_finish_evaluates_the_tail() {
    // A burst ending on a large sample: the inter-sample overshoot after it needs later samples.
    let mut x = vec![0.0; 1000];
    for (i, v) in x.iter_mut().enumerate().skip(900) {
        *v = if i % 2 == 0 { 0.9 } else { -0.9 };
    }
    x[999] = 0.9;
    let mut tp = TruePeakMeter::new(FS, 1, 4);
    tp.push(&[&x]);
    let before = tp.channel_true_peak(0);
    tp.finish();
    assert!(tp.channel_true_peak(0) >= before);
    // Equivalent to pushing the silence explicitly.
    let mut tp2 = TruePeakMeter::new(FS, 1, 4);
    tp2.push(&[&x]);
    tp2.push(&[&[0.0; 64]]);
    assert_eq!(tp.channel_true_peak(0), tp2.channel_true_peak(0));
}

// ---------------------------------------------------------------------------------------
// EBU Tech 3342 (LRA)

fn lra_case(fs: f64, levels: &[f64], expected: f64, name: &str) {
    let seg: Vec<_> = levels.iter().map(|&l| (20.0, Some(l))).collect();
    let m = loudness_of(fs, &stereo(tone_segments(fs, &seg)));
    assert_within(name, "LRA", expected, m.loudness_range_lu(), 0.1);
}

#[test]
fn tech3342_lra_cases() {
    lra_case(FS, &[-20.0, -30.0], 10.0, "3342 case 1 @48k");
    lra_case(FS, &[-20.0, -15.0], 5.0, "3342 case 2 @48k");
    lra_case(FS, &[-40.0, -20.0], 20.0, "3342 case 3 @48k");
    lra_case(
        FS,
        &[-50.0, -35.0, -20.0, -35.0, -50.0],
        15.0,
        "3342 case 4 @48k",
    );
    lra_case(FS44, &[-20.0, -30.0], 10.0, "3342 case 1 @44.1k");
    lra_case(
        FS44,
        &[-50.0, -35.0, -20.0, -35.0, -50.0],
        15.0,
        "3342 case 4 @44.1k",
    );
}

// ---------------------------------------------------------------------------------------
// Channel layouts

#[test]
fn mono_is_one_channel_and_dual_mono_reads_like_stereo() {
    let x = tone(FS, 10.0, -23.0);
    let mono = loudness_of(FS, std::slice::from_ref(&x));
    assert_within(
        "mono -23 dBFS sine",
        "I",
        -26.01,
        mono.integrated_lufs(),
        0.02,
    );
    let mut dual = LoudnessMeter::with_layout(FS, ChannelLayout::DualMono);
    dual.push(&[&x]);
    assert_within(
        "dual-mono -23 dBFS sine",
        "I",
        -23.0,
        dual.integrated_lufs(),
        0.02,
    );
    // 5.1: the LFE (channel 3) is ignored.
    let silent = vec![0.0; x.len()];
    let loud = tone(FS, 10.0, -3.0);
    let ch = vec![
        x.clone(),
        x.clone(),
        silent.clone(),
        loud,
        silent.clone(),
        silent,
    ];
    let m = loudness_of(FS, &ch);
    assert_within("5.1 with loud LFE", "I", -23.0, m.integrated_lufs(), 0.02);
}

// ---------------------------------------------------------------------------------------
// Block-size independence

type Readings = (Vec<f64>, Vec<(f64, f64, f64)>, Vec<f64>, Vec<f64>);

/// Every reading of every meter after pushing `ch` in blocks of `block` frames.
fn all_readings(ch: &[Vec<f64>], block: usize) -> Readings {
    let mut lm = LoudnessMeter::new(FS, 2);
    let mut tp = TruePeakMeter::new(FS, 2, 4);
    let mut tp8 = TruePeakMeter::new(FS, 2, 8);
    let mut lv = LevelMeter::new(2);
    let mut hist = Vec::new();
    feed(ch, block, |b| {
        lm.push(b);
        tp.push(b);
        tp8.push(b);
        lv.push(b);
        lm.drain_history(&mut hist);
    });
    let loud = vec![
        lm.momentary_lufs(),
        lm.short_term_lufs(),
        lm.momentary_max_lufs(),
        lm.short_term_max_lufs(),
        lm.integrated_lufs(),
        lm.loudness_range_lu(),
    ];
    let peaks = vec![
        tp.channel_true_peak(0),
        tp.channel_true_peak(1),
        tp8.channel_true_peak(0),
        tp8.channel_true_peak(1),
    ];
    let level = vec![
        lv.sample_peak(),
        lv.rms(),
        lv.channel_rms(0),
        lv.channel_rms(1),
        lv.dc_offset(0),
        lv.dc_offset(1),
        lv.correlation(),
        lv.width(),
        lv.crest_factor_db(),
        lv.clipped_samples() as f64,
        lv.clip_runs() as f64,
        lv.longest_clip_run() as f64,
        lv.effective_bits().map_or(0.0, f64::from),
    ];
    (loud, hist, peaks, level)
}

#[test]
fn readings_do_not_depend_on_block_size() {
    let [l, r] = music_like(FS, 20.0, 7);
    // The same driven 9 dB into hard clipping and quantized to 16 bits: exercises clip runs
    // and the word-length detector across block boundaries.
    let crush = |x: &[f64]| -> Vec<f64> {
        x.iter()
            .map(|v| libm::round((2.8 * v).clamp(-1.0, 1.0) * 32767.0) / 32768.0)
            .collect()
    };
    let crushed = vec![crush(&l), crush(&r)];
    let float = vec![l, r];
    for (name, ch) in [("float", &float), ("clipped 16-bit", &crushed)] {
        let reference = all_readings(ch, 4096);
        assert_eq!(reference.1.len(), 200);
        for block in [1, 64, 997] {
            assert_eq!(
                all_readings(ch, block),
                reference,
                "{name}, block size {block}"
            );
        }
        println!(
            "REPORT | block sizes 1, 64, 997, 4096 ({name}) | all readings | bit-identical | yes | 0"
        );
    }
    let crushed_level = all_readings(&crushed, 4096).3;
    assert!(crushed_level[9] > 1000.0 && crushed_level[10] > 10.0);
    assert_eq!(crushed_level[12], 16.0);
}

// ---------------------------------------------------------------------------------------
// Agreement with the ebur128 crate

/// EBU Tech 3342 LRA from a list of short-term loudness values (LUFS), by sorting.
fn lra_by_sorting(short_term: &[f64]) -> f64 {
    let mut e: Vec<f64> = short_term
        .iter()
        .filter(|&&l| l > -70.0)
        .map(|&l| lufs_to_energy(l))
        .collect();
    e.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = e.iter().sum::<f64>() / e.len() as f64;
    let gated: Vec<f64> = e.into_iter().filter(|&v| v > mean * 0.01).collect();
    let n = gated.len();
    let at = |p: f64| energy_to_lufs(gated[((n - 1) as f64 * p + 0.5) as usize]);
    at(0.95) - at(0.10)
}

/// Measures `ch` with our meters and the `ebur128` crate. LRA is compared with Tech 3342
/// computed by sorting the crate's own short-term values at 10 Hz (the crate's built-in LRA
/// samples short-term loudness at 1 Hz, the 2011 edition's minimum, and is only reported).
fn compare_with_ebur128(name: &str, fs: f64, ch: &[Vec<f64>], tp_tolerance_db: f64) {
    let mut ours = LoudnessMeter::new(fs, ch.len());
    let mut tp = TruePeakMeter::bs1770(fs, ch.len());
    let mut theirs = EbuR128::new(
        ch.len() as u32,
        fs as u32,
        Mode::I | Mode::LRA | Mode::TRUE_PEAK | Mode::SAMPLE_PEAK,
    )
    .unwrap();
    let hop = libm::round(fs / 10.0) as usize;
    let mut their_short_term = Vec::new();
    let mut hops = 0;
    feed(ch, hop, |b| {
        ours.push(b);
        tp.push(b);
        theirs.add_frames_planar_f64(b).unwrap();
        hops += 1;
        if hops >= 30 && b[0].len() == hop {
            their_short_term.push(theirs.loudness_shortterm().unwrap());
        }
    });
    let ti = theirs.loudness_global().unwrap();
    assert_within(name, "I vs ebur128", ti, ours.integrated_lufs(), 0.05);
    let tm = theirs.loudness_momentary().unwrap();
    assert_within(name, "M (end) vs ebur128", tm, ours.momentary_lufs(), 0.01);
    let ts = theirs.loudness_shortterm().unwrap();
    assert_within(name, "S (end) vs ebur128", ts, ours.short_term_lufs(), 0.01);
    let tl = lra_by_sorting(&their_short_term);
    assert_within(
        name,
        "LRA vs ebur128 S @10 Hz",
        tl,
        ours.loudness_range_lu(),
        0.05,
    );
    report(
        name,
        "LRA vs ebur128 built-in (S @1 Hz)",
        theirs.loudness_range().unwrap(),
        ours.loudness_range_lu(),
    );
    let ttp = (0..ch.len())
        .map(|c| theirs.true_peak(c as u32).unwrap())
        .fold(0.0, f64::max);
    assert_within(
        name,
        &format!("dBTP ({}x) vs ebur128", tp.factor()),
        lin_to_db(ttp),
        tp.true_peak_dbtp(),
        tp_tolerance_db,
    );
}

/// Second-order low-pass (RBJ cookbook), applied in place.
fn lowpass(x: &mut [f64], fs: f64, fc: f64) {
    let w = 2.0 * PI * fc / fs;
    let alpha = w.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
    let a0 = 1.0 + alpha;
    let b0 = (1.0 - w.cos()) / 2.0 / a0;
    let (b1, b2) = (2.0 * b0, b0);
    let (a1, a2) = (-2.0 * w.cos() / a0, (1.0 - alpha) / a0);
    let (mut s1, mut s2) = (0.0, 0.0);
    for v in x.iter_mut() {
        let y = b0 * *v + s1;
        s1 = b1 * *v - a1 * y + s2;
        s2 = b2 * *v - a2 * y;
        *v = y;
    }
}

#[test]
fn agrees_with_ebur128_on_noise() {
    let n = (30.0 * FS) as usize;
    let ch = vec![white_noise(n, 0.3, 1), white_noise(n, 0.25, 2)];
    // White noise reaches Nyquist, where "true peak" depends on the reconstruction filter:
    // our flat-to-0.45 fs interpolator reads about 1 dB above the crate's short Hann-windowed
    // one (a 128-tap-per-phase 16x filter reads higher still), hence the loose tolerance.
    compare_with_ebur128("white noise 48k", FS, &ch, 1.2);
    // Band-limited (two cascaded 2nd-order low-passes at 15 kHz) noise with level steps.
    let mut l = white_noise(n, 0.6, 3);
    let mut r = white_noise(n, 0.6, 4);
    for x in [&mut l, &mut r] {
        lowpass(x, FS, 15_000.0);
        lowpass(x, FS, 15_000.0);
        for (i, v) in x.iter_mut().enumerate() {
            *v *= [1.0, 0.3, 0.05, 0.6][(i / (5 * 48_000)) % 4];
        }
    }
    compare_with_ebur128("low-passed noise 48k", FS, &[l, r], 0.15);
}

#[test]
fn agrees_with_ebur128_on_music_like_mixture() {
    let [l, r] = music_like(FS44, 60.0, 3);
    compare_with_ebur128("music-like 44.1k", FS44, &[l, r], 0.15);
}

#[test]
fn agrees_with_ebur128_on_mono() {
    let [l, _] = music_like(FS, 30.0, 5);
    compare_with_ebur128("music-like mono 48k", FS, &[l], 0.15);
}

#[test]
fn agrees_with_ebur128_at_96k() {
    let [l, r] = music_like(96_000.0, 20.0, 11);
    compare_with_ebur128("music-like 96k", 96_000.0, &[l, r], 0.15);
}

#[test]
fn agrees_with_ebur128_on_5_1() {
    let [l, r] = music_like(FS, 20.0, 13);
    let n = l.len();
    let c: Vec<f64> = l.iter().zip(&r).map(|(a, b)| 0.5 * (a + b)).collect();
    let noise = |amp: f64, seed: u64| {
        let mut x = white_noise(n, amp, seed);
        lowpass(&mut x, FS, 12_000.0);
        x
    };
    let ch = vec![l, r, c, noise(0.5, 4), noise(0.1, 5), noise(0.05, 6)];
    compare_with_ebur128("5.1 mixture 48k", FS, &ch, 0.15);
}

// ---------------------------------------------------------------------------------------
// Level meter

#[test]
fn level_effective_word_length() {
    let noise = white_noise(48_000, 0.5, 9);
    // 16-bit content stored in a 24-bit container, read back as the decoder would.
    let in24: Vec<f64> = noise
        .iter()
        .map(|x| {
            let s16 = libm::round(x * 32767.0) as i32;
            (s16 << 8) as f64 / 8_388_608.0
        })
        .collect();
    let real24: Vec<f64> = noise
        .iter()
        .map(|x| libm::round(x * 8_388_607.0) / 8_388_608.0)
        .collect();
    let in8: Vec<f64> = noise
        .iter()
        .map(|x| libm::round(x * 127.0) / 128.0)
        .collect();
    let bits = |x: &[f64]| {
        let mut m = LevelMeter::new(1);
        m.push(&[x]);
        m.effective_bits()
    };
    assert_eq!(bits(&in24), Some(16));
    assert_eq!(bits(&real24), Some(24));
    assert_eq!(bits(&in8), Some(8));
    assert_eq!(bits(&noise), None);
    let mut m = LevelMeter::new(2);
    m.push(&[&in24, &real24]);
    assert_eq!(m.channel_effective_bits(0), Some(16));
    assert_eq!(m.effective_bits(), Some(24));
    println!("REPORT | word length | 16-bit in 24-bit container | 16 | 16 | 0");
}

#[test]
fn level_correlation_width_dc() {
    let n = 48_000;
    let x = white_noise(n, 0.5, 21);
    let inv: Vec<f64> = x.iter().map(|v| -v).collect();
    let y = white_noise(n, 0.5, 22);
    let run = |a: &[f64], b: &[f64]| {
        let mut m = LevelMeter::new(2);
        m.push(&[a, b]);
        m
    };
    let same = run(&x, &x);
    assert_within(
        "identical channels",
        "correlation",
        1.0,
        same.correlation(),
        1e-12,
    );
    assert_eq!(same.width(), 0.0);
    let opposite = run(&x, &inv);
    assert_within(
        "inverted channels",
        "correlation",
        -1.0,
        opposite.correlation(),
        1e-12,
    );
    assert_eq!(opposite.width(), f64::INFINITY);
    let unc = run(&x, &y);
    assert_within(
        "uncorrelated noise",
        "correlation",
        0.0,
        unc.correlation(),
        0.02,
    );
    assert_within("uncorrelated noise", "width", 1.0, unc.width(), 0.05);

    // DC: a sine (whole periods) plus offsets.
    let s = tone(FS, 1.0, -6.0);
    let a: Vec<f64> = s.iter().map(|v| v + 0.1).collect();
    let b: Vec<f64> = s.iter().map(|v| v - 0.025).collect();
    let m = run(&a, &b);
    assert_within("sine + 0.1 DC", "dc offset", 0.1, m.dc_offset(0), 1e-9);
    assert_within("sine - 0.025 DC", "dc offset", -0.025, m.dc_offset(1), 1e-9);
    // Correlation is about the varying part only: same sine, different DC -> 1.
    assert_within(
        "sine, different DC",
        "correlation",
        1.0,
        m.correlation(),
        1e-9,
    );
}

#[test]
fn level_peak_rms_crest_clipping() {
    let s = tone(FS, 1.0, 0.0);
    let mut m = LevelMeter::new(1);
    m.push(&[&s]);
    assert_within(
        "full-scale sine",
        "sample peak dBFS",
        0.0,
        m.sample_peak_dbfs(),
        1e-6,
    );
    assert_within("full-scale sine", "RMS dBFS", -3.0103, m.rms_dbfs(), 1e-4);
    assert_within(
        "full-scale sine",
        "crest dB",
        3.0103,
        m.crest_factor_db(),
        1e-4,
    );
    // A sine driven 6 dB over full scale and hard clipped.
    let clipped: Vec<f64> = s.iter().map(|v| (2.0 * v).clamp(-1.0, 1.0)).collect();
    let expected = clipped
        .iter()
        .filter(|v| v.abs() >= DEFAULT_CLIP_THRESHOLD)
        .count() as u64;
    let mut m = LevelMeter::new(2);
    let quiet = vec![0.1; clipped.len()];
    feed(&[clipped.clone(), quiet], 333, |b| m.push(b));
    assert_eq!(m.clipped_samples(), expected);
    assert_eq!(m.channel_clipped_samples(1), 0);
    // Two clipped runs per period of 48 samples, each 17 samples long (the samples at
    // 30 and 150 degrees are 1 - 1e-16 after doubling: full scale, too).
    assert_eq!(expected, 34 * 1000);
    assert_eq!(m.clip_runs(), 2 * 1000);
    assert_eq!(m.longest_clip_run(), 17);
    // 16-bit positive full scale counts as clipped.
    let mut m = LevelMeter::new(1);
    m.push(&[&[32767.0 / 32768.0, -1.0, 0.5]]);
    assert_eq!(m.clipped_samples(), 2);
    println!("REPORT | clipping | hard-clipped sine samples | {expected} | {expected} | 0");
}

// ---------------------------------------------------------------------------------------
// Real-time contract

#[test]
fn push_never_allocates_even_over_an_hour() {
    let fs = FS;
    let mut lm = LoudnessMeter::new(fs, 2);
    let mut tp = TruePeakMeter::new(fs, 2, 4);
    let mut lv = LevelMeter::new(2);
    let block = 4800; // 100 ms
    let mut rng = Rng(99);
    let mut l = vec![0.0; block];
    let mut r = vec![0.0; block];
    reset_violation_count();
    for k in 0..36_000 {
        // One hour in 100 ms blocks, level changing every 10 s.
        let amp = 0.05 + 0.3 * ((k / 100) % 7) as f64 / 7.0;
        for (a, b) in l.iter_mut().zip(r.iter_mut()) {
            *a = amp * rng.uniform();
            *b = amp * rng.uniform();
        }
        assert_no_alloc(|| {
            let planar: [&[f64]; 2] = [&l, &r];
            lm.push(&planar);
            lv.push(&planar);
            if k % 10 == 0 {
                // True peak is the costly one: measure one block per second.
                tp.push(&planar);
            }
        });
    }
    assert_eq!(violation_count(), 0, "push allocated");
    assert_eq!(lm.frames(), 36_000 * block as u64);
    assert!(lm.integrated_lufs().is_finite());
    assert!(lm.history_dropped() > 0); // the undrained series ring wrapped instead of growing
    println!("REPORT | 1 h stereo stream | allocations in push | 0 | 0 | 0");
}

#[test]
fn reset_restores_a_fresh_meter() {
    let [l, r] = music_like(FS, 8.0, 17);
    let ch = vec![l, r];
    let mut m = LoudnessMeter::new(FS, 2);
    feed(&ch, 4096, |b| m.push(b));
    let first = (
        m.integrated_lufs(),
        m.loudness_range_lu(),
        m.momentary_max_lufs(),
    );
    m.reset();
    assert_eq!(m.integrated_lufs(), f64::NEG_INFINITY);
    feed(&ch, 4096, |b| m.push(b));
    assert_eq!(
        first,
        (
            m.integrated_lufs(),
            m.loudness_range_lu(),
            m.momentary_max_lufs()
        )
    );
    let mut tp = TruePeakMeter::new(FS, 2, 4);
    feed(&ch, 4096, |b| tp.push(b));
    let p = tp.true_peak();
    tp.reset();
    assert_eq!(tp.true_peak(), 0.0);
    feed(&ch, 4096, |b| tp.push(b));
    assert_eq!(tp.true_peak(), p);
}

#[test]
fn album_integrated_combines_blocks() {
    let a = loudness_of(FS, &stereo(tone(FS, 20.0, -20.0)));
    let b = loudness_of(FS, &stereo(tone(FS, 20.0, -26.0)));
    let both = loudness_of(
        FS,
        &stereo(tone_segments(
            FS,
            &[(20.0, Some(-20.0)), (20.0, Some(-26.0))],
        )),
    );
    let album = LoudnessMeter::integrated_lufs_of(&[&a, &b]);
    assert_within(
        "album of -20 and -26",
        "I",
        both.integrated_lufs(),
        album,
        0.02,
    );
}

// ---------------------------------------------------------------------------------------
// Agreement with ffmpeg's ebur128 filter (skipped when ffmpeg is not installed)

/// The last value of each `lavfi.r128.*` key that ffmpeg's `ebur128=metadata=1` reports.
fn ffmpeg_r128(path: &std::path::Path) -> Option<std::collections::HashMap<String, f64>> {
    let meta = path.with_extension("txt");
    let filter = format!(
        "ebur128=peak=true:metadata=1,ametadata=print:file={}",
        meta.display()
    );
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-af", &filter, "-f", "null", "-"])
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(meta).ok()?;
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line
            .strip_prefix("lavfi.r128.")
            .and_then(|l| l.split_once('='))
        {
            if let Ok(v) = v.parse() {
                out.insert(k.to_string(), v);
            }
        }
    }
    Some(out)
}

#[test]
fn agrees_with_ffmpeg_if_installed() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, f64, [Vec<f64>; 2]); 2] = [
        ("music-like 44.1k", FS44, music_like(FS44, 30.0, 23)),
        ("music-like 48k", FS, music_like(FS, 30.0, 29)),
    ];
    for (name, fs, [l, r]) in cases {
        // Write 32-bit float, then measure exactly the values ffmpeg reads.
        let path = dir.path().join("x.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: fs as u32,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for (a, b) in l.iter().zip(&r) {
            w.write_sample(*a as f32).unwrap();
            w.write_sample(*b as f32).unwrap();
        }
        w.finalize().unwrap();
        let Some(ff) = ffmpeg_r128(&path) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ffmpeg is needed for this test under CI (make test installs it)"
            );
            println!("REPORT | ffmpeg | not installed | skipped | - | -");
            return;
        };
        let ch: Vec<Vec<f64>> = [l, r]
            .iter()
            .map(|c| c.iter().map(|&v| v as f32 as f64).collect())
            .collect();
        let m = loudness_of(fs, &ch);
        let mut tp = TruePeakMeter::new(fs, 2, 4);
        feed(&ch, 4096, |b| tp.push(b));
        // ffmpeg prints 3 decimals; its integrated loudness and LRA come from 0.1 LU bins.
        assert_within(name, "I vs ffmpeg", ff["I"], m.integrated_lufs(), 0.06);
        assert_within(
            name,
            "M (end) vs ffmpeg",
            ff["M"],
            m.momentary_lufs(),
            0.006,
        );
        assert_within(
            name,
            "S (end) vs ffmpeg",
            ff["S"],
            m.short_term_lufs(),
            0.006,
        );
        assert_within(
            name,
            "LRA vs ffmpeg",
            ff["LRA"],
            m.loudness_range_lu(),
            0.15,
        );
        // ffmpeg prints linear true peak with 3 decimals (~0.01 dB here).
        assert_within(
            name,
            "dBTP vs ffmpeg",
            lin_to_db(ff["true_peak"]),
            tp.true_peak_dbtp(),
            0.1,
        );
    }
}
