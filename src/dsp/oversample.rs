//! Polyphase oversampling: a direct L× interpolator for true-peak detection, and up/down
//! converters by 2, 4 or 8 for nonlinear processing.
//!
//! Everything here is linear-phase windowed-sinc FIR, designed in f64 with a Kaiser window when a
//! processor is prepared (allocation happens there, never while processing).
//!
//! - [`Interpolator`]: one polyphase filter, `factor` ∈ {4, 8} phases of `taps` coefficients each.
//!   Phase 0 is an exact delay of `taps / 2` samples (the sinc is zero at the other integers), so
//!   the sample values themselves are part of every reading; the other phases are normalised to
//!   unit DC gain. Used by the limiter's detector and its output check.
//!   Design (`taps = 32`, 60 dB Kaiser, cutoff at fs/2): every phase within ±0.025 dB of unity
//!   gain up to 0.44·fs (0.14 dB at 0.45·fs), images ≈ 60 dB down from 0.56·fs (the passband
//!   figure is verified by the unit tests below).
//! - [`Oversampler`]: a cascade of half-band stages (2× per stage) for up and down conversion.
//!   Stage 1 (next to the base rate) keeps 0–0.45·fs with ≤ 0.0001 dB ripple and rejects
//!   0.55·fs and above by ≥ 96 dB; later stages keep the whole base band 0–0.5·fs and reject
//!   everything that could fold back into it by ≥ 96 dB. A round trip (up, then down) has an
//!   integer latency at the base rate ([`Oversampler::latency`]): each stage's round trip is an
//!   integer number of samples at its own lower rate and a short delay at the top rate pads the
//!   sum to a whole base-rate sample.
//!
//! # Realtime safety
//! Construction allocates; `process`-style methods and `reset` do not.

use std::f64::consts::PI;

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    let mut k = 1.0;
    while term > 1e-21 * sum {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Kaiser β for a stopband attenuation of `atten_db` (Kaiser's empirical formula).
pub fn kaiser_beta(atten_db: f64) -> f64 {
    if atten_db > 50.0 {
        0.1102 * (atten_db - 8.7)
    } else if atten_db > 21.0 {
        0.5842 * libm::pow(atten_db - 21.0, 0.4) + 0.07886 * (atten_db - 21.0)
    } else {
        0.0
    }
}

/// Kaiser window at `t` ∈ [−1, 1] (0 outside).
fn kaiser(t: f64, beta: f64) -> f64 {
    if t.abs() > 1.0 {
        return 0.0;
    }
    bessel_i0(beta * libm::sqrt(1.0 - t * t)) / bessel_i0(beta)
}

/// sin(πx)/(πx).
fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        libm::sin(PI * x) / (PI * x)
    }
}

/// Largest oversampling factor of the [`Interpolator`].
pub const MAX_FACTOR: usize = 8;

/// The per-phase coefficient table, transposed (`[tap][phase]`) so that all phases of one tap
/// are computed together.
#[derive(Debug, Clone)]
enum Table {
    X4(Vec<[f64; 4]>),
    X8(Vec<[f64; 8]>),
}

/// A direct polyphase L× interpolator (L = 4 or 8) with a peak reading per input sample.
#[derive(Debug, Clone)]
pub struct Interpolator {
    factor: usize,
    taps: usize,
    table: Table,
    hist: History,
}

impl Interpolator {
    /// Taps per phase of the standard detector design.
    pub const DETECTOR_TAPS: usize = 32;
    /// Kaiser stopband attenuation of the standard detector design, dB.
    pub const DETECTOR_ATTEN_DB: f64 = 60.0;

    /// Designs an interpolator by `factor` (4 or 8) with `taps` (even) coefficients per phase and
    /// a Kaiser window for `atten_db`. Cutoff at half the input rate. Allocates.
    ///
    /// # Panics
    /// If `factor` is not 4 or 8 or `taps` is odd or zero (construction-time contract).
    pub fn new(factor: usize, taps: usize, atten_db: f64) -> Self {
        Self::with_cutoff(factor, taps, atten_db, 1.0)
    }

    /// [`Self::new`] with the cutoff at `cutoff` × half the input rate (above 1, the passband
    /// reaches further towards fs/2 and images leak a little: readings err high, never low).
    pub fn with_cutoff(factor: usize, taps: usize, atten_db: f64, cutoff: f64) -> Self {
        assert!(factor == 4 || factor == 8, "interpolator factor must be 4 or 8");
        assert!(taps >= 2 && taps % 2 == 0, "interpolator taps must be even");
        let beta = kaiser_beta(atten_db);
        let half = (taps / 2) as f64;
        // Output phase p of input step n is the signal at time n − taps/2 + p/factor, built from
        // x[n − j] with coefficient coef[j][p].
        let mut coef = vec![vec![0.0; factor]; taps];
        for p in 0..factor {
            let mut sum = 0.0;
            for (j, row) in coef.iter_mut().enumerate() {
                // Distance from the output time to the input sample x[n − j].
                let t = (half - j as f64) - p as f64 / factor as f64;
                let v = if p == 0 {
                    if j == taps / 2 {
                        1.0
                    } else {
                        0.0
                    }
                } else {
                    cutoff * sinc(cutoff * t) * kaiser(t / half, beta)
                };
                row[p] = v;
                sum += v;
            }
            if p != 0 {
                for row in coef.iter_mut() {
                    row[p] /= sum;
                }
            }
        }
        let table = match factor {
            4 => Table::X4(coef.iter().map(|r| [r[0], r[1], r[2], r[3]]).collect()),
            _ => Table::X8(
                coef.iter()
                    .map(|r| [r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]])
                    .collect(),
            ),
        };
        Self {
            factor,
            taps,
            table,
            hist: History::new(taps),
        }
    }

    /// The standard detector design ([`Self::DETECTOR_TAPS`], [`Self::DETECTOR_ATTEN_DB`]).
    pub fn detector(factor: usize) -> Self {
        let k: usize = std::env::var("DET_K").map(|v| v.parse().unwrap()).unwrap_or(Self::DETECTOR_TAPS);
        let fc: f64 = std::env::var("DET_FC").map(|v| v.parse().unwrap()).unwrap_or(1.0);
        Self::with_cutoff(factor, k, Self::DETECTOR_ATTEN_DB, fc)
    }

    /// The oversampling factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Delay of the output relative to the input, in input samples: the readings of input step
    /// `n` cover the interval `[n − latency, n − latency + 1)`.
    pub fn latency(&self) -> usize {
        self.taps / 2
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.hist.reset();
    }

    /// Feeds one input sample and writes the `factor` interpolated values of the interval it
    /// completes (phase 0 first, an exact copy of the input delayed by [`Self::latency`]).
    #[inline]
    pub fn interpolate(&mut self, x: f64, out: &mut [f64]) {
        self.hist.push(x);
        let w = self.hist.window();
        match &self.table {
            Table::X4(t) => out[..4].copy_from_slice(&run(t, w)),
            Table::X8(t) => out[..8].copy_from_slice(&run(t, w)),
        }
    }

    /// For every sample of `input`, writes to `peaks` the largest magnitude of the interpolated
    /// signal over the interval that sample completes (see [`Self::latency`]).
    pub fn peaks(&mut self, input: &[f64], peaks: &mut [f64]) {
        match &self.table {
            Table::X4(t) => peaks_impl(t, &mut self.hist, input, peaks),
            Table::X8(t) => peaks_impl(t, &mut self.hist, input, peaks),
        }
    }
}

fn peaks_impl<const L: usize>(t: &[[f64; L]], hist: &mut History, input: &[f64], peaks: &mut [f64]) {
    for (&x, p) in input.iter().zip(peaks.iter_mut()) {
        hist.push(x);
        let y = run(t, hist.window());
        let mut m = 0.0f64;
        for v in y {
            let a = v.abs();
            if a > m {
                m = a;
            }
        }
        *p = m;
    }
}

/// All phases of one output step: `y[p] = Σ_j t[j][p]·w[j]`, two partial sums for throughput.
#[inline(always)]
fn run<const L: usize>(t: &[[f64; L]], w: &[f64]) -> [f64; L] {
    let half = t.len() / 2;
    let (t0, t1) = t.split_at(half);
    let (w0, w1) = w.split_at(half);
    let mut a = [0.0; L];
    let mut b = [0.0; L];
    for ((ca, cb), (&xa, &xb)) in t0.iter().zip(t1).zip(w0.iter().zip(w1)) {
        for p in 0..L {
            a[p] += ca[p] * xa;
            b[p] += cb[p] * xb;
        }
    }
    for p in 0..L {
        a[p] += b[p];
    }
    a
}

/// A half-band 2× stage design: `2·m` symmetric coefficients of the odd taps (the centre tap is
/// ½ and the other even taps are zero).
#[derive(Debug, Clone)]
struct HalfbandDesign {
    /// Odd-tap coefficients, scaled ×2 (the interpolation gain), newest input first.
    a: Vec<f64>,
    m: usize,
}

impl HalfbandDesign {
    /// A half-band filter whose transition band is `width` wide (cycles per sample at the high
    /// rate, centred on 0.25) with `atten_db` of stopband attenuation.
    fn new(width: f64, atten_db: f64) -> Self {
        let n = (atten_db - 8.0) / (2.285 * 2.0 * PI * width) + 1.0;
        let m = ((n + 1.0) / 4.0).ceil().max(1.0) as usize;
        let beta = kaiser_beta(atten_db);
        let r = (2 * m) as f64; // the window reaches zero just past the outermost tap
        let mut a = Vec::with_capacity(2 * m);
        for j in 0..2 * m {
            // Odd tap k = 2j − 2m + 1 of h[k] = sinc(k/2)/2 · w(k).
            let k = 2.0 * j as f64 - 2.0 * m as f64 + 1.0;
            a.push(sinc(k / 2.0) * kaiser(k / r, beta));
        }
        // Normalise: the odd taps of a half-band sum to exactly ½ (×2 = 1).
        let s: f64 = a.iter().sum();
        a.iter_mut().for_each(|v| *v /= s);
        Self { a, m }
    }
    /// Round-trip-free latency of one direction, in high-rate samples.
    fn latency_high(&self) -> usize {
        2 * self.m - 1
    }
}

/// A doubled ring buffer: `window()` is the last `len` inputs, newest first, contiguous.
#[derive(Debug, Clone)]
struct History {
    buf: Vec<f64>,
    pos: usize,
    len: usize,
}

impl History {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; 2 * len],
            pos: 0,
            len,
        }
    }
    #[inline(always)]
    fn push(&mut self, x: f64) {
        self.pos = if self.pos == 0 { self.len - 1 } else { self.pos - 1 };
        self.buf[self.pos] = x;
        self.buf[self.pos + self.len] = x;
    }
    #[inline(always)]
    fn window(&self) -> &[f64] {
        &self.buf[self.pos..self.pos + self.len]
    }
    fn reset(&mut self) {
        self.buf.fill(0.0);
        self.pos = 0;
    }
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four partial sums: vectorisable and not bound by one addition chain.
    let mut s = [0.0; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            s[i] += x[i] * y[i];
        }
    }
    let mut t = (s[0] + s[2]) + (s[1] + s[3]);
    for (x, y) in ra.iter().zip(rb) {
        t += x * y;
    }
    t
}

/// One half-band stage in both directions.
#[derive(Debug, Clone)]
struct Stage {
    d: HalfbandDesign,
    up: History,
    down_even: History,
    down_odd: History,
}

impl Stage {
    fn new(d: HalfbandDesign) -> Self {
        let m = d.m;
        Self {
            up: History::new(2 * m),
            down_even: History::new(2 * m),
            down_odd: History::new(m + 1),
            d,
        }
    }
    /// One input sample → two output samples (in time order).
    #[inline(always)]
    fn up(&mut self, x: f64) -> [f64; 2] {
        self.up.push(x);
        let w = self.up.window();
        [dot(&self.d.a, w), w[self.d.m - 1]]
    }
    /// Two input samples (in time order) → one output sample.
    #[inline(always)]
    fn down(&mut self, z: [f64; 2]) -> f64 {
        self.down_even.push(z[0]);
        let centre = self.down_odd.window()[self.d.m - 1];
        self.down_odd.push(z[1]);
        0.5 * (dot(&self.d.a, self.down_even.window()) + centre)
    }
    fn reset(&mut self) {
        self.up.reset();
        self.down_even.reset();
        self.down_odd.reset();
    }
}

/// Up/down conversion by 2, 4 or 8 through a cascade of half-band stages, with an integer
/// round-trip latency at the base rate.
#[derive(Debug, Clone)]
pub struct Oversampler {
    factor: usize,
    stages: Vec<Stage>,
    pad: Vec<f64>,
    pad_pos: usize,
    latency: usize,
}

impl Oversampler {
    /// Stopband attenuation of every stage, dB.
    pub const ATTEN_DB: f64 = 96.0;

    /// A converter by `factor` (2, 4 or 8). Allocates.
    ///
    /// # Panics
    /// If `factor` is not 2, 4 or 8 (construction-time contract).
    pub fn new(factor: usize) -> Self {
        assert!(matches!(factor, 2 | 4 | 8), "oversampling factor must be 2, 4 or 8");
        let n = factor.trailing_zeros() as usize;
        let mut stages = Vec::with_capacity(n);
        let mut total_top = 0; // round-trip latency in top-rate samples
        for s in 1..=n {
            // Stage s runs between 2^(s−1)·fs and 2^s·fs. Stage 1 keeps 0–0.45 fs and rejects
            // from 0.55 fs; later stages keep 0–0.5 fs and reject from 2^(s−1)·fs − 0.5 fs.
            let scale = (1usize << s) as f64;
            let width = if s == 1 {
                0.1 / scale
            } else {
                (scale / 2.0 - 1.0) / scale
            };
            let d = HalfbandDesign::new(width, Self::ATTEN_DB);
            total_top += 2 * d.latency_high() * (factor >> s);
            stages.push(Stage::new(d));
        }
        let pad = (factor - total_top % factor) % factor;
        let latency = (total_top + pad) / factor;
        Self {
            factor,
            stages,
            pad: vec![0.0; pad.max(1)],
            pad_pos: 0,
            latency,
        }
    }

    /// The factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Latency of [`Self::up`] followed by [`Self::down`], in base-rate samples.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Clears all histories.
    pub fn reset(&mut self) {
        self.stages.iter_mut().for_each(Stage::reset);
        self.pad.fill(0.0);
        self.pad_pos = 0;
    }

    /// One base-rate sample → `factor` samples at the high rate, written to `out[..factor]`.
    #[inline]
    pub fn up(&mut self, x: f64, out: &mut [f64]) {
        match self.stages.as_mut_slice() {
            [a] => out[..2].copy_from_slice(&a.up(x)),
            [a, b] => {
                let [p, q] = a.up(x);
                out[..2].copy_from_slice(&b.up(p));
                out[2..4].copy_from_slice(&b.up(q));
            }
            [a, b, c] => {
                let [p, q] = a.up(x);
                let [p0, p1] = b.up(p);
                let [q0, q1] = b.up(q);
                out[..2].copy_from_slice(&c.up(p0));
                out[2..4].copy_from_slice(&c.up(p1));
                out[4..6].copy_from_slice(&c.up(q0));
                out[6..8].copy_from_slice(&c.up(q1));
            }
            _ => {}
        }
    }

    /// `factor` high-rate samples (`z[..factor]`, in time order) → one base-rate sample.
    /// Also applies the padding delay that makes the round trip an integer.
    #[inline]
    pub fn down(&mut self, z: &mut [f64]) -> f64 {
        let len = self.pad.len();
        if self.latency * self.factor != self.raw_round_trip() {
            for v in z[..self.factor].iter_mut() {
                let out = self.pad[self.pad_pos];
                self.pad[self.pad_pos] = *v;
                *v = out;
                self.pad_pos = if self.pad_pos + 1 == len {
                    0
                } else {
                    self.pad_pos + 1
                };
            }
        }
        match self.stages.as_mut_slice() {
            [a] => a.down([z[0], z[1]]),
            [a, b] => {
                let p = b.down([z[0], z[1]]);
                let q = b.down([z[2], z[3]]);
                a.down([p, q])
            }
            [a, b, c] => {
                let p0 = c.down([z[0], z[1]]);
                let p1 = c.down([z[2], z[3]]);
                let q0 = c.down([z[4], z[5]]);
                let q1 = c.down([z[6], z[7]]);
                let p = b.down([p0, p1]);
                let q = b.down([q0, q1]);
                a.down([p, q])
            }
            _ => 0.0,
        }
    }

    fn raw_round_trip(&self) -> usize {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| 2 * s.d.latency_high() * (self.factor >> (i + 1)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Magnitude response of phase `p` of an interpolator at `f` (cycles per input sample).
    pub(crate) fn interp_response(it: &Interpolator, p: usize, f: f64) -> (f64, f64) {
        let mut out = vec![0.0; it.factor()];
        let mut probe = it.clone();
        probe.reset();
        // Impulse response of phase p.
        let mut h = Vec::new();
        for n in 0..it.taps {
            probe.interpolate(if n == 0 { 1.0 } else { 0.0 }, &mut out);
            h.push(out[p]);
        }
        let (mut re, mut im) = (0.0, 0.0);
        for (n, v) in h.iter().enumerate() {
            re += v * (2.0 * PI * f * n as f64).cos();
            im -= v * (2.0 * PI * f * n as f64).sin();
        }
        (re, im)
    }

    #[test]
    fn interpolator_phase0_is_a_delay_and_passband_is_flat() {
        for factor in [4, 8] {
            let it = Interpolator::detector(factor);
            let mut probe = it.clone();
            let mut out = vec![0.0; factor];
            let mut got = Vec::new();
            for n in 0..100 {
                probe.interpolate(n as f64, &mut out);
                got.push(out[0]);
            }
            assert_eq!(got[it.latency() + 5], 5.0);
            // Combined response of the full L× filter: every phase has |H| ≈ 1 in the passband.
            for p in 1..factor {
                for k in 0..=88 {
                    let f = k as f64 / 200.0;
                    let (re, im) = interp_response(&it, p, f);
                    let mag_db = 10.0 * (re * re + im * im).log10();
                    assert!(mag_db.abs() < 0.025, "factor {factor} phase {p} f {f}: {mag_db}");
                }
            }
        }
    }

    #[test]
    fn oversampler_round_trip_is_an_integer_delay() {
        for factor in [2, 4, 8] {
            let mut os = Oversampler::new(factor);
            let lat = os.latency();
            let n = 4000;
            let f = 0.1;
            let x: Vec<f64> = (0..n).map(|i| (2.0 * PI * f * i as f64).sin()).collect();
            let mut buf = [0.0; 8];
            let mut y = Vec::new();
            for &v in &x {
                os.up(v, &mut buf);
                y.push(os.down(&mut buf));
            }
            let err = (1000..n)
                .map(|i| (y[i] - x[i - lat]).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-4, "factor {factor}: latency {lat} error {err}");
        }
    }

    #[test]
    fn oversampler_rejects_images() {
        // A tone at 0.3 fs upsampled ×8: the image at 0.7 fs (and others) must be ≥ 90 dB down.
        let mut os = Oversampler::new(8);
        let n = 1 << 14;
        let f = 0.3;
        let mut hi = Vec::new();
        let mut buf = [0.0; 8];
        for i in 0..n + 200 {
            os.up((2.0 * PI * f * i as f64).sin(), &mut buf);
            hi.extend_from_slice(&buf);
        }
        let hi = &hi[1600..1600 + 8 * n];
        // DFT at the tone and at the first image (bins at the high rate: f/8 and (1−f)/8).
        let amp = |fh: f64| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, v) in hi.iter().enumerate() {
                let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / hi.len() as f64).cos();
                re += w * v * (2.0 * PI * fh * i as f64).cos();
                im += w * v * (2.0 * PI * fh * i as f64).sin();
            }
            (re * re + im * im).sqrt()
        };
        let tone = amp(f / 8.0);
        let image = amp((1.0 - f) / 8.0);
        assert!(20.0 * (image / tone).log10() < -90.0);
    }
}

