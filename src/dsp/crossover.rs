//! Linkwitz–Riley crossovers, their all-pass compensation, and the small state-variable filter
//! they are built from.
//!
//! A Linkwitz–Riley filter of order 2n is a Butterworth filter of order n applied twice. Its
//! low-pass and high-pass outputs are in phase at every frequency and sum to an all-pass,
//! `B(−s)/B(s)`, whose sections are the Butterworth sections' all-passes. So:
//!
//! - [`LrSplitter`] splits a signal into low and high (LR4: one Butterworth section of
//!   Q = 1/√2, applied twice; LR8: the two sections of a 4th-order Butterworth, applied twice);
//!   its first section is shared by both outputs;
//! - [`LrAllpass`] is the all-pass the two outputs of a splitter sum to;
//! - [`Crossover`] is the standard tree for 2–4 bands: a band that does not pass through a
//!   crossover point goes through that point's all-pass instead, so every band carries the same
//!   phase and the bands sum to an all-pass (flat magnitude).
//!
//! Everything works on a pair of channels at once (`[f64; 2]`, the second lane unused for mono),
//! which lets the compiler keep both channels in one SIMD register.
//!
//! The filters are Andrew Simper's trapezoidal state-variable filter (see `dsp-reference.md`),
//! with the one SVF coefficient type of the filters module ([`SvfCoefs::tuned`]): all outputs of
//! one section come from one state ([`SvfState`], a pair of channels), and the bilinear
//! transform preserves the identity `LP + HP = AP` exactly, so the digital crossover sums to an
//! all-pass too. Coefficients are f64.

use super::filters::SvfCoefs;
use std::f64::consts::PI;

/// A pair of channels processed in lockstep (lane 1 unused for mono signals).
pub type Pair = [f64; 2];

/// State below this magnitude is flushed to zero (denormal protection).
pub(crate) const FLUSH: f64 = 1e-30;

/// The state of one SVF section for a pair of channels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SvfState {
    ic1: Pair,
    ic2: Pair,
}

impl SvfState {
    /// Advances one sample; returns the band-pass (`v1`) and low-pass (`v2`) outputs. The
    /// high-pass is `v0 − k·v1 − v2`, the all-pass `v0 − 2k·v1`.
    #[inline(always)]
    pub fn tick(&mut self, c: &SvfCoefs, v0: Pair) -> (Pair, Pair) {
        let mut v1 = [0.0; 2];
        let mut v2 = [0.0; 2];
        for j in 0..2 {
            let (s1, s2) = (self.ic1[j], self.ic2[j]);
            // Simper's recursion as a 2×2 state update (`ic' = A·ic + b·v0`): a dependency chain
            // of one multiply and two adds instead of five dependent operations.
            let n1 = (c.a11 * s1 + (-c.b1) * s2) + c.b1 * v0[j];
            let n2 = (c.b1 * s1 + c.a22 * s2) + c.b2 * v0[j];
            // ic' = 2·v − ic, so v = (ic + ic')/2.
            v1[j] = 0.5 * (s1 + n1);
            v2[j] = 0.5 * (s2 + n2);
            self.ic1[j] = n1;
            self.ic2[j] = n2;
        }
        (v1, v2)
    }

    /// Low-pass output for one sample.
    #[inline(always)]
    pub fn lowpass(&mut self, c: &SvfCoefs, v0: Pair) -> Pair {
        self.tick(c, v0).1
    }

    /// High-pass output for one sample.
    #[inline(always)]
    pub fn highpass(&mut self, c: &SvfCoefs, v0: Pair) -> Pair {
        let (v1, v2) = self.tick(c, v0);
        [v0[0] - c.k * v1[0] - v2[0], v0[1] - c.k * v1[1] - v2[1]]
    }

    /// Band-pass output normalised to unity gain at the centre (`k·v1`) for one sample.
    #[inline(always)]
    pub fn bandpass_unity(&mut self, c: &SvfCoefs, v0: Pair) -> Pair {
        let (v1, _) = self.tick(c, v0);
        [c.k * v1[0], c.k * v1[1]]
    }

    /// All-pass output for one sample.
    #[inline(always)]
    pub fn allpass(&mut self, c: &SvfCoefs, v0: Pair) -> Pair {
        let (v1, _) = self.tick(c, v0);
        [v0[0] - 2.0 * c.k * v1[0], v0[1] - 2.0 * c.k * v1[1]]
    }

    /// The integrator states `(ic1, ic2)` of both lanes, for kernels that keep them in
    /// registers.
    #[inline]
    pub(crate) fn states(&self) -> (Pair, Pair) {
        (self.ic1, self.ic2)
    }

    /// Sets what [`SvfState::states`] reads.
    #[inline]
    pub(crate) fn set_states(&mut self, ic1: Pair, ic2: Pair) {
        self.ic1 = ic1;
        self.ic2 = ic2;
    }

    /// Flushes state too small to matter to zero (call at fixed sample positions).
    #[inline]
    pub fn flush(&mut self) {
        for v in self.ic1.iter_mut().chain(self.ic2.iter_mut()) {
            if v.abs() < FLUSH {
                *v = 0.0;
            }
        }
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// The quality factors of the sections of a Butterworth filter of order `2 * N`.
fn butterworth_qs<const N: usize>() -> [f64; N] {
    let mut qs = [0.0; N];
    for (i, q) in qs.iter_mut().enumerate() {
        let angle = PI * (2 * i + 1) as f64 / (4 * N) as f64;
        *q = 1.0 / (2.0 * libm::cos(angle));
    }
    qs
}

/// The SVF sections of the Butterworth prototype (order `2 * N`) of a Linkwitz–Riley filter of
/// order `4 * N` at `freq_hz`.
pub fn lr_sections<const N: usize>(freq_hz: f64, sample_rate: f64) -> [SvfCoefs; N] {
    let qs = butterworth_qs::<N>();
    let mut c = [SvfCoefs::IDENTITY; N];
    for (c, q) in c.iter_mut().zip(qs) {
        *c = SvfCoefs::tuned(freq_hz, q, sample_rate);
    }
    c
}

/// A Linkwitz–Riley low/high split of order `4 * N` (N = 1: LR4, 24 dB/octave; N = 2: LR8).
///
/// Use an instance either as a splitter ([`LrSplitter::split`]) or as a high-pass alone
/// ([`LrSplitter::highpass`]), not both.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSplitter<const N: usize> {
    freq_hz: f64,
    coefs: [SvfCoefs; N],
    /// Low path: two passes of the N sections (`low[0][0]` is shared with the high path).
    low: [[SvfState; N]; 2],
    /// High path (`high[0][0]` is used only by [`LrSplitter::highpass`]).
    high: [[SvfState; N]; 2],
}

/// A Linkwitz–Riley 4th-order split.
pub type Lr4 = LrSplitter<1>;
/// A Linkwitz–Riley 8th-order split.
pub type Lr8 = LrSplitter<2>;

impl<const N: usize> LrSplitter<N> {
    /// A split at `freq_hz` for `sample_rate`.
    pub fn new(freq_hz: f64, sample_rate: f64) -> Self {
        Self {
            freq_hz,
            coefs: lr_sections::<N>(freq_hz, sample_rate),
            low: [[SvfState::default(); N]; 2],
            high: [[SvfState::default(); N]; 2],
        }
    }

    /// The crossover frequency.
    pub fn freq_hz(&self) -> f64 {
        self.freq_hz
    }

    /// Retunes (keeps the state: safe under per-sample changes).
    pub fn set_freq(&mut self, freq_hz: f64, sample_rate: f64) {
        self.freq_hz = freq_hz;
        self.coefs = lr_sections::<N>(freq_hz, sample_rate);
    }

    /// Splits one sample into (low, high); `low + high` is [`LrAllpass`] of the input.
    #[inline(always)]
    pub fn split(&mut self, x: Pair) -> (Pair, Pair) {
        let c0 = &self.coefs[0];
        let (v1, v2) = self.low[0][0].tick(c0, x);
        let mut lo = v2;
        let mut hi = [x[0] - c0.k * v1[0] - v2[0], x[1] - c0.k * v1[1] - v2[1]];
        for s in 1..N {
            lo = self.low[0][s].lowpass(&self.coefs[s], lo);
            hi = self.high[0][s].highpass(&self.coefs[s], hi);
        }
        for s in 0..N {
            lo = self.low[1][s].lowpass(&self.coefs[s], lo);
            hi = self.high[1][s].highpass(&self.coefs[s], hi);
        }
        (lo, hi)
    }

    /// The high output alone, for one sample.
    #[inline(always)]
    pub fn highpass(&mut self, x: Pair) -> Pair {
        let mut hi = x;
        for pass in 0..2 {
            for s in 0..N {
                hi = self.high[pass][s].highpass(&self.coefs[s], hi);
            }
        }
        hi
    }

    /// Flushes tiny state to zero.
    pub fn flush(&mut self) {
        for s in self.low.iter_mut().chain(self.high.iter_mut()).flatten() {
            s.flush();
        }
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        for s in self.low.iter_mut().chain(self.high.iter_mut()).flatten() {
            s.reset();
        }
    }
}

/// The all-pass that the two outputs of an [`LrSplitter`] of the same order and frequency sum
/// to: a band that does not go through a crossover point goes through this instead.
#[derive(Debug, Clone, PartialEq)]
pub struct LrAllpass<const N: usize> {
    coefs: [SvfCoefs; N],
    state: [SvfState; N],
}

impl<const N: usize> LrAllpass<N> {
    /// The all-pass matching a split at `freq_hz`.
    pub fn new(freq_hz: f64, sample_rate: f64) -> Self {
        Self {
            coefs: lr_sections::<N>(freq_hz, sample_rate),
            state: [SvfState::default(); N],
        }
    }

    /// Retunes (keeps the state).
    pub fn set_freq(&mut self, freq_hz: f64, sample_rate: f64) {
        self.coefs = lr_sections::<N>(freq_hz, sample_rate);
    }

    /// One sample through the all-pass.
    #[inline(always)]
    pub fn process(&mut self, x: Pair) -> Pair {
        let mut y = x;
        for s in 0..N {
            y = self.state[s].allpass(&self.coefs[s], y);
        }
        y
    }

    /// Flushes tiny state to zero.
    pub fn flush(&mut self) {
        self.state.iter_mut().for_each(SvfState::flush);
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(SvfState::reset);
    }
}

/// Most bands a [`Crossover`] splits into.
pub const MAX_BANDS: usize = 4;

/// An LR4 band splitter for 2–4 bands with all-pass compensation: the bands sum to an all-pass.
///
/// Trees (f1 < f2 < f3):
/// - 2 bands: split at f1;
/// - 3 bands: split at f1; the high part splits at f2; the low band goes through AP(f2);
/// - 4 bands (balanced): split at f2; the low part goes through AP(f3) and splits at f1; the
///   high part goes through AP(f1) and splits at f3. Every band carries AP(f1)·AP(f2)·AP(f3).
#[derive(Debug, Clone, PartialEq)]
pub struct Crossover {
    freqs: [f64; MAX_BANDS - 1],
    points: usize,
    splits: [Lr4; MAX_BANDS - 1],
    allpasses: [LrAllpass<1>; 2],
}

impl Crossover {
    /// A crossover at `freqs_hz` (1–3 ascending frequencies) for `sample_rate`.
    ///
    /// # Panics
    /// If `freqs_hz` has no entry or more than three (builders validate first).
    pub fn new(freqs_hz: &[f64], sample_rate: f64) -> Self {
        assert!((1..MAX_BANDS).contains(&freqs_hz.len()));
        let mut freqs = [0.0; MAX_BANDS - 1];
        freqs[..freqs_hz.len()].copy_from_slice(freqs_hz);
        let points = freqs_hz.len();
        let split = |i: usize| Lr4::new(freqs[i.min(points - 1)], sample_rate);
        let ap = |f: f64| LrAllpass::<1>::new(f, sample_rate);
        let allpasses = match points {
            1 => [ap(freqs[0]), ap(freqs[0])],
            2 => [ap(freqs[1]), ap(freqs[1])],
            _ => [ap(freqs[2]), ap(freqs[0])],
        };
        Self {
            freqs,
            points,
            splits: [split(0), split(1), split(2)],
            allpasses,
        }
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.points + 1
    }

    /// The crossover frequencies.
    pub fn freqs(&self) -> &[f64] {
        &self.freqs[..self.points]
    }

    /// Splits one sample into `self.bands()` bands, lowest first.
    #[inline(always)]
    pub fn split(&mut self, x: Pair, bands: &mut [Pair; MAX_BANDS]) {
        match self.points {
            1 => {
                (bands[0], bands[1]) = self.splits[0].split(x);
            }
            2 => {
                let (lo, hi) = self.splits[0].split(x);
                bands[0] = self.allpasses[0].process(lo);
                (bands[1], bands[2]) = self.splits[1].split(hi);
            }
            _ => {
                let (lo, hi) = self.splits[1].split(x);
                let lo = self.allpasses[0].process(lo);
                let hi = self.allpasses[1].process(hi);
                (bands[0], bands[1]) = self.splits[0].split(lo);
                (bands[2], bands[3]) = self.splits[2].split(hi);
            }
        }
    }

    /// Splits frames `..n` of a pair of channels (`x`; a mono signal's second: zeros) into
    /// `self.bands()` bands, `out[band][channel][..n]`: [`Self::split`] frame by frame (the same
    /// bits), with the tree chosen once and the filter states in locals for the chunk (registers,
    /// not memory, on the recursions' chains). (Builds for AVX2 and AVX-512 were tried: the tree's
    /// closures are then called per frame instead of inlined, slower.)
    pub fn split_chunk<const L: usize>(
        &mut self,
        x: [&[f64]; 2],
        n: usize,
        out: &mut [[[f64; L]; 2]; MAX_BANDS],
    ) {
        split_chunk_impl(self, x, n, out)
    }

    /// Flushes tiny state to zero.
    pub fn flush(&mut self) {
        self.splits.iter_mut().for_each(Lr4::flush);
        self.allpasses.iter_mut().for_each(LrAllpass::flush);
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.splits.iter_mut().for_each(Lr4::reset);
        self.allpasses.iter_mut().for_each(LrAllpass::reset);
    }
}

/// [`Crossover::split_chunk`].
#[inline(always)]
fn split_chunk_impl<const L: usize>(
    xo: &mut Crossover,
    x: [&[f64]; 2],
    n: usize,
    out: &mut [[[f64; L]; 2]; MAX_BANDS],
) {
    /// `tree` on frames `..n`, its bands written out.
    #[inline(always)]
    fn run<const L: usize>(
        x: [&[f64]; 2],
        n: usize,
        out: &mut [[[f64; L]; 2]; MAX_BANDS],
        bands: usize,
        mut tree: impl FnMut(Pair, &mut [Pair; MAX_BANDS]),
    ) {
        let n = n.min(L).min(x[0].len()).min(x[1].len());
        let mut split = [[0.0; 2]; MAX_BANDS];
        for i in 0..n {
            tree([x[0][i], x[1][i]], &mut split);
            for (o, b) in out.iter_mut().zip(&split).take(bands) {
                o[0][i] = b[0];
                o[1][i] = b[1];
            }
        }
    }
    let mut local = xo.clone();
    let bands = local.bands();
    let t = &mut local;
    match t.points {
        1 => run(x, n, out, bands, |x, b| (b[0], b[1]) = t.splits[0].split(x)),
        2 => run(x, n, out, bands, |x, b| {
            let (lo, hi) = t.splits[0].split(x);
            b[0] = t.allpasses[0].process(lo);
            (b[1], b[2]) = t.splits[1].split(hi);
        }),
        _ => run(x, n, out, bands, |x, b| {
            let (lo, hi) = t.splits[1].split(x);
            let lo = t.allpasses[0].process(lo);
            let hi = t.allpasses[1].process(hi);
            (b[0], b[1]) = t.splits[0].split(lo);
            (b[2], b[3]) = t.splits[2].split(hi);
        }),
    }
    *xo = local;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |H(f)| of an impulse response by direct DFT.
    fn magnitude(h: &[f64], f: f64, fs: f64) -> f64 {
        let w = 2.0 * PI * f / fs;
        let (mut re, mut im) = (0.0, 0.0);
        for (n, x) in h.iter().enumerate() {
            re += x * (w * n as f64).cos();
            im -= x * (w * n as f64).sin();
        }
        (re * re + im * im).sqrt()
    }

    /// A chunk at a time gives the frame-by-frame split's bits, for 2, 3 and 4 bands, over
    /// chunks of every length and flushes between them.
    #[test]
    fn split_chunk_is_split_frame_by_frame() {
        let fs = 48000.0;
        for freqs in [&[300.0][..], &[250.0, 3000.0], &[120.0, 1000.0, 6000.0]] {
            let (mut a, mut b) = (Crossover::new(freqs, fs), Crossover::new(freqs, fs));
            let mut t = 0usize;
            for n in [64, 1, 17, 64, 63, 0, 64, 5] {
                let x: [Vec<f64>; 2] = std::array::from_fn(|c| {
                    (t..t + n)
                        .map(|i| (i as f64 * (0.03 + 0.05 * c as f64)).sin() * 0.7)
                        .collect()
                });
                t += n;
                let mut out = [[[0.0; 64]; 2]; MAX_BANDS];
                a.split_chunk([&x[0], &x[1]], n, &mut out);
                let mut bands = [[0.0; 2]; MAX_BANDS];
                for i in 0..n {
                    b.split([x[0][i], x[1][i]], &mut bands);
                    for (band, o) in bands.iter().zip(&out).take(b.bands()) {
                        for c in 0..2 {
                            assert_eq!(band[c].to_bits(), o[c][i].to_bits(), "{freqs:?}");
                        }
                    }
                }
                assert_eq!(a, b, "{freqs:?}: states");
                a.flush();
                b.flush();
            }
        }
    }

    #[test]
    fn butterworth_quality_factors() {
        let q1 = butterworth_qs::<1>();
        assert!((q1[0] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-15);
        let q2 = butterworth_qs::<2>();
        assert!((q2[0] - 0.541_196_100_146_197).abs() < 1e-12);
        assert!((q2[1] - 1.306_562_964_876_376_6).abs() < 1e-12);
    }

    #[test]
    fn lr_outputs_sum_to_the_allpass() {
        let fs = 48000.0;
        let mut s = Lr8::new(300.0, fs);
        let mut ap = LrAllpass::<2>::new(300.0, fs);
        let mut s4 = Lr4::new(300.0, fs);
        let mut ap4 = LrAllpass::<1>::new(300.0, fs);
        for n in 0..4000 {
            let x = if n == 0 { 1.0 } else { 0.0 };
            let (lo, hi) = s.split([x, -x]);
            let a = ap.process([x, -x]);
            assert!((lo[0] + hi[0] - a[0]).abs() < 1e-14);
            assert!((lo[1] + hi[1] - a[1]).abs() < 1e-14);
            let (lo, hi) = s4.split([x, 0.0]);
            assert!((lo[0] + hi[0] - ap4.process([x, 0.0])[0]).abs() < 1e-14);
        }
    }

    #[test]
    fn lr4_is_minus_6_db_at_the_crossover() {
        let fs = 48000.0;
        let mut s = Lr4::new(1000.0, fs);
        let (mut lo, mut hi) = (vec![], vec![]);
        for n in 0..8192 {
            let (l, h) = s.split([if n == 0 { 1.0 } else { 0.0 }, 0.0]);
            lo.push(l[0]);
            hi.push(h[0]);
        }
        let db = |v: f64| 20.0 * v.log10();
        assert!((db(magnitude(&lo, 1000.0, fs)) + 6.0206).abs() < 0.01);
        assert!((db(magnitude(&hi, 1000.0, fs)) + 6.0206).abs() < 0.01);
        // 24 dB/octave: two octaves away, about −48 dB.
        assert!(db(magnitude(&lo, 4000.0, fs)) < -45.0);
        assert!(db(magnitude(&hi, 250.0, fs)) < -45.0);
    }
}
