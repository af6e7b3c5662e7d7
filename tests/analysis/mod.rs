//! Measurement helpers for the limiter, dither and saturation tests, written independently of
//! the engine's DSP code (no use of `stemgraph::dsp`): a long windowed-sinc 32× true-peak
//! reference, an FFT, a least-squares sine fit, and rendering through the real engine.
#![allow(dead_code)]

use std::f64::consts::PI;
use stemgraph::automation::{Breakpoint, Curve, Shape};
use stemgraph::dsp::ProcessorConfig;
use stemgraph::graph::{AutomationSpec, GraphSpec};
use stemgraph::render::in_memory::{render_in_memory, single_processor_graph, Planar};

/// Modified Bessel I0 by its series.
fn i0(x: f64) -> f64 {
    let (mut s, mut t, mut k) = (1.0, 1.0, 1.0);
    while t > 1e-20 * s {
        t *= (x / 2.0) * (x / 2.0) / (k * k);
        s += t;
        k += 1.0;
    }
    s
}

/// The reference true-peak meter: 32× interpolation with a Kaiser-windowed sinc (β = 10) of
/// ±64 input samples, cutoff at half the sample rate. Intervals whose neighbourhood (±3 samples)
/// stays under `floor` are skipped (their peak cannot come near the levels tested: the
/// interpolated value exceeds the local sample maximum by at most a few dB in practice).
/// Returns the largest magnitude, linear.
pub fn true_peak_32x(x: &[f64], floor: f64) -> f64 {
    true_peak_32x_at(x, floor).0
}

/// [`true_peak_32x`] with the sample index where the peak was found.
pub fn true_peak_32x_at(x: &[f64], floor: f64) -> (f64, usize) {
    const OS: usize = 32;
    const HALF: usize = 64;
    let beta = 10.0;
    let norm = i0(beta);
    // Coefficients per phase k (1..OS): h_k[j] for input offset j − HALF + 1 … (t − n).
    let mut table = vec![[0.0f64; 2 * HALF]; OS];
    for (k, row) in table.iter_mut().enumerate().skip(1) {
        let frac = k as f64 / OS as f64;
        for (j, c) in row.iter_mut().enumerate() {
            // sample index n + (j − HALF + 1); distance from t = n + frac
            let d = (j as f64 - HALF as f64 + 1.0) - frac;
            let w = {
                let r = d / (HALF as f64 + 0.5);
                if r.abs() >= 1.0 {
                    0.0
                } else {
                    i0(beta * (1.0 - r * r).sqrt()) / norm
                }
            };
            let s = if d == 0.0 {
                1.0
            } else {
                (PI * d).sin() / (PI * d)
            };
            *c = s * w;
        }
    }
    let mut peak = (0.0f64, 0usize);
    for (i, v) in x.iter().enumerate() {
        if v.abs() > peak.0 {
            peak = (v.abs(), i);
        }
    }
    let n = x.len();
    for i in 0..n {
        let lo = i.saturating_sub(3);
        let hi = (i + 4).min(n);
        if x[lo..hi].iter().all(|v| v.abs() < floor) {
            continue;
        }
        let lo = i as isize - HALF as isize + 1;
        if lo >= 0 && lo as usize + 2 * HALF <= n {
            let w = &x[lo as usize..lo as usize + 2 * HALF];
            for row in table.iter().skip(1) {
                let mut acc = [0.0f64; 4];
                for (c, v) in row.chunks_exact(4).zip(w.chunks_exact(4)) {
                    for k in 0..4 {
                        acc[k] += c[k] * v[k];
                    }
                }
                let a = ((acc[0] + acc[1]) + (acc[2] + acc[3])).abs();
                if a > peak.0 {
                    peak = (a, i);
                }
            }
        } else {
            for row in table.iter().skip(1) {
                let mut acc = 0.0;
                for (j, c) in row.iter().enumerate() {
                    let idx = lo + j as isize;
                    if idx >= 0 && (idx as usize) < n {
                        acc += c * x[idx as usize];
                    }
                }
                if acc.abs() > peak.0 {
                    peak = (acc.abs(), i);
                }
            }
        }
    }
    peak
}

/// True peak per the `ebur128` crate (BS.1770 4× below 96 kHz), linear, max over channels.
pub fn true_peak_ebur128(x: &Planar, rate: u32) -> f64 {
    let mut m =
        ebur128::EbuR128::new(x.len() as u32, rate, ebur128::Mode::TRUE_PEAK).expect("meter");
    let chans: Vec<&[f64]> = x.iter().map(|c| c.as_slice()).collect();
    m.add_frames_planar_f64(&chans).expect("frames");
    (0..x.len())
        .map(|c| m.true_peak(c as u32).unwrap())
        .fold(0.0, f64::max)
}

/// Decibels of a linear value.
pub fn db(v: f64) -> f64 {
    20.0 * v.log10()
}

/// In-place radix-2 FFT of (re, im); length a power of two.
pub fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    assert!(n.is_power_of_two());
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * c - im[b] * s;
                let ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

/// Power spectrum (|X|², bins 0..=n/2) of `x` (length a power of two) with a 4-term
/// Blackman-Harris window (sidelobes −92 dB).
pub fn power_spectrum(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut re: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let t = 2.0 * PI * i as f64 / n as f64;
            let w =
                0.35875 - 0.48829 * t.cos() + 0.14128 * (2.0 * t).cos() - 0.01168 * (3.0 * t).cos();
            v * w
        })
        .collect();
    let mut im = vec![0.0; n];
    fft(&mut re, &mut im);
    (0..=n / 2).map(|k| re[k] * re[k] + im[k] * im[k]).collect()
}

/// Least-squares fit of `a·sin + b·cos + c` at `freq` to `x`; returns (residual RMS,
/// fundamental RMS).
pub fn sine_fit(x: &[f64], freq: f64, fs: f64) -> (f64, f64) {
    // Normal equations for the 3 basis functions.
    let basis = |i: usize| {
        let w = 2.0 * PI * freq * i as f64 / fs;
        [w.sin(), w.cos(), 1.0]
    };
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for (i, &v) in x.iter().enumerate() {
        let b = basis(i);
        for r in 0..3 {
            atb[r] += b[r] * v;
            for c in 0..3 {
                ata[r][c] += b[r] * b[c];
            }
        }
    }
    // Gaussian elimination.
    let mut m = ata;
    let mut y = atb;
    for k in 0..3 {
        for r in k + 1..3 {
            let f = m[r][k] / m[k][k];
            let pivot = m[k];
            for (dst, src) in m[r].iter_mut().zip(pivot).skip(k) {
                *dst -= f * src;
            }
            y[r] -= f * y[k];
        }
    }
    let mut coef = [0.0; 3];
    for k in (0..3).rev() {
        let mut s = y[k];
        for c in k + 1..3 {
            s -= m[k][c] * coef[c];
        }
        coef[k] = s / m[k][k];
    }
    let mut res = 0.0;
    for (i, &v) in x.iter().enumerate() {
        let b = basis(i);
        let fit = coef[0] * b[0] + coef[1] * b[1] + coef[2] * b[2];
        res += (v - fit) * (v - fit);
    }
    let res_rms = (res / x.len() as f64).sqrt();
    let fund_rms = ((coef[0] * coef[0] + coef[1] * coef[1]) / 2.0).sqrt();
    (res_rms, fund_rms)
}

/// A linear automation curve through `(position, value)` points.
pub fn linear_curve(points: &[(i64, f64)]) -> Curve {
    Curve::new(
        points
            .iter()
            .map(|&(pos, value)| Breakpoint {
                pos,
                value,
                shape: Shape::Linear,
            })
            .collect(),
    )
    .unwrap()
}

/// A step automation curve: `before` until `pos`, then `after`.
pub fn step_curve(pos: i64, before: f64, after: f64) -> Curve {
    Curve::new(vec![
        Breakpoint {
            pos: 0,
            value: before,
            shape: Shape::Step,
        },
        Breakpoint {
            pos,
            value: after,
            shape: Shape::Step,
        },
    ])
    .unwrap()
}

/// A one-processor graph `in → fx (kind, config) → out` with automation `(param, curve)`.
pub fn graph(
    kind: &str,
    config: ProcessorConfig,
    channels: usize,
    auto: &[(&str, Curve)],
) -> GraphSpec {
    let mut spec = single_processor_graph(kind, config, channels);
    for (param, curve) in auto {
        spec.automation.push(AutomationSpec {
            param: format!("fx.{param}"),
            curve: curve.clone(),
            origin: None,
        });
    }
    spec
}

/// Renders `input` through `spec` with blocks of `block`, under the allocation guard; returns
/// the output and the allocation count inside the audio path.
pub fn render(spec: &GraphSpec, input: &Planar, fs: f64, block: usize) -> (Planar, u32) {
    let (out, violations) = crate::common::alloc_violations(|| {
        render_in_memory(spec, std::slice::from_ref(input), fs, block).expect("render")
    });
    let mut out = out.into_iter().next().unwrap();
    for c in out.iter_mut() {
        c.truncate(input[0].len());
    }
    (out, violations)
}

/// Largest sample-to-sample jump of `x` over `range`.
pub fn max_jump(x: &[f64], range: std::ops::Range<usize>) -> f64 {
    x[range.start.max(1)..range.end]
        .iter()
        .zip(&x[range.start.max(1) - 1..range.end - 1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}
