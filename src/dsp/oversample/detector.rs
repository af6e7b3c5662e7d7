//! The limiter's true-peak detector, a chunk at a time ([`TruePeakDetector`]), in full or
//! threshold-aware mode.
//!
//! Its only state is the recent input: every reading is computed from the input samples of its
//! window (the cascade's stages are evaluated on the range a reading needs), so a stretch that
//! was skipped costs nothing and leaves nothing to catch up.
//!
//! **Threshold-aware mode** ([`TruePeakDetector::peaks_above`]). A reading is at most
//! `Σ_j W[j]·|x[t − j]|`, with `W` the largest magnitude, over the values a reading looks at,
//! of the interpolators' combined impulse responses (plus, for the parabolic refinement, an
//! eighth of the largest difference between neighbouring values: the vertex of a parabola
//! through a local maximum `c` and neighbours `l`, `r` exceeds `c` by
//! `(c−l−(c−r))²/(8·(2c−l−r)) ≤ max(c−l, c−r)/8`). Evaluated per group of eight steps on the
//! group maxima of `|x|` (a few multiply-adds per step), that bound says where no reading can
//! exceed the threshold; the interpolators run only where one can, and give there exactly the
//! values of the full mode. Elsewhere the reading written is 0 (≤ the threshold), so anything
//! that only asks "is the reading above the threshold, and by how much" — the limiter's
//! required gain — gets the same bits as from the full detector.
//!
//! That bound on magnitudes is loose where the signal is large but moves little within a
//! reading's window (the low end of a loud master: within 2 ms a kick or a bass line is nearly
//! constant), so a second one is taken on the deviations from the centre `c` of the window's
//! range: every value a reading looks at is a weighted sum `Σ_j h[j]·x[t − j]` whose weights sum
//! to its DC gain `G`, so it equals `G·c + Σ_j h[j]·(x[t − j] − c)` and is at most
//! `D·|c| + Σ_j W[j]·|x[t − j] − c|`, `D` the largest such `|G|` (with the refinement's eighth of
//! a difference of neighbours). The readings are computed where the smaller bound exceeds the
//! threshold.
//!
//! Both are loose by the accurate interpolator's L1 norm (about 3: its first stage is sharp),
//! so a third decides first: the split bound ([`SplitBound`]), the samples' magnitudes near a
//! step through a linear interpolation plus the second differences around it, within a few
//! tenths of a dB of the readings on music. It is taken for a whole chunk first (on the
//! window's maxima, one pass), then per group where the chunk may exceed the threshold; the two
//! bounds above only where it cannot rule a group out.

use super::interpolator::{HalfbandInterpolator, MeterInterpolator};
use super::kernels::{delay_rows_peaks, halfband_dots};
use super::split_bound::{difference_maxima, window_maxima, SplitBound};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`force_full`].
static FORCE_FULL: AtomicBool = AtomicBool::new(false);

/// Makes every detector read every sample, in threshold-aware mode too (process-wide): for
/// tests and benchmarks that compare the two modes through whole processors.
pub fn force_full(full: bool) {
    FORCE_FULL.store(full, Ordering::Relaxed);
}

/// Input steps per chunk.
const TP_CHUNK: usize = 256;
/// Steps per group of the bound.
const GROUP: usize = 8;

/// A true-peak reading per input sample: the larger of the accurate [`HalfbandInterpolator`]
/// and the [`MeterInterpolator`], time-aligned, the accurate one refined between its grid points
/// (see [`vertex`]).
///
/// It computes exactly what running the two interpolators sample by sample gives (the same
/// products and sums in the same order for every value, so the same bits; a unit test compares
/// them), but a range of steps at a time: each half-band stage filters the whole range with the
/// taps as the outer loop and several consecutive outputs side by side in the inner one (AVX2
/// when the CPU has it, see [`crate::dsp::simd`]).
#[derive(Debug, Clone)]
pub struct TruePeakDetector {
    factor: usize,
    /// The accurate interpolator's half-band stages: odd-tap coefficients (newest input first,
    /// short stages zero-padded as the per-sample form multiplies them) and the centre tap.
    stages: Vec<(Vec<f64>, usize)>,
    /// The meter interpolator's rows `rows[t][p]` (phase p, input t steps back).
    meter_rows: Vec<[f64; 4]>,
    /// Steps by which the accurate (`fine_delay`) and the meter (`meter_delay`) readings are
    /// delayed so that both refer to the same interval: `out[t] = max(fine(t − fine_delay),
    /// meter(t − meter_delay))`.
    fine_delay: usize,
    meter_delay: usize,
    latency: usize,
    /// Input: `hist` samples of history, then the chunk.
    raw: Vec<f64>,
    hist: usize,
    /// The bound's weight per group offset (see the module docs): a group of steps whose input
    /// group maxima `M` give `Σ_k bound[k]·M[g − k] ≤ threshold` has no reading above it.
    bound: Vec<f64>,
    /// The largest DC gain of any value a reading looks at (with the refinement's share): the
    /// weight of the window's centre value in the bound on deviations (module docs).
    dc: f64,
    /// The largest L1 norm of the weights of any value a reading looks at.
    l1: f64,
    /// Smallest and largest input (signed) of every group of `raw`.
    glo: Vec<f64>,
    ghi: Vec<f64>,
    /// The largest input magnitude of every group of `raw`.
    gmag: Vec<f64>,
    /// The tightest bound's weights ([`SplitBound`]), the largest `|Δx|` and `|Δ²x|` of every
    /// group of `raw`, and the two inputs before `raw[0]` (its differences read them).
    split: SplitBound,
    gd1: Vec<f64>,
    gd2: Vec<f64>,
    before: [f64; 2],
    /// Steps read exactly so far (for tests and benchmarks: how much the bounds skip).
    read: u64,
    /// Stage outputs, the dot products of one stage, and the two interpolators' readings.
    work: Vec<Vec<f64>>,
    dots: Vec<f64>,
    fine: Vec<f64>,
    meter: Vec<f64>,
}

/// Which inputs each stage of the cascade takes to give the fine values of a range of steps.
#[derive(Debug, Clone, Copy, Default)]
struct StagePlan {
    /// The stage's inputs `[lo, hi)` whose outputs are computed, in positions at the stage's
    /// input rate (its outputs cover `[2·lo, 2·hi)` at its output rate).
    lo: isize,
    hi: isize,
}

impl TruePeakDetector {
    /// The detector at `factor` (4 or 8) for `sample_rate`. Allocates.
    pub fn new(factor: usize, sample_rate: f64) -> Self {
        let fine = HalfbandInterpolator::detector(factor);
        let meter = MeterInterpolator::new(sample_rate);
        let (a, b) = (fine.latency(), meter.latency());
        let mut stages = vec![
            (fine.first.d.a.clone(), fine.first.d.m - 1),
            (fine.second.a.to_vec(), fine.second.centre),
        ];
        if let Some(third) = &fine.third {
            stages.push((third.a.to_vec(), third.centre));
        }
        let (fine_delay, meter_delay) = if a < b { (b - a, 0) } else { (0, a - b) };
        let meter_rows = meter.coef.clone();
        let Weights {
            bound,
            dc,
            l1,
            split,
        } = bound_weights(factor, &meter_rows, fine_delay, meter_delay);
        let mut det = Self {
            factor,
            stages,
            meter_rows,
            fine_delay,
            meter_delay,
            latency: a.max(b),
            raw: Vec::new(),
            hist: 0,
            bound,
            dc,
            l1,
            glo: Vec::new(),
            ghi: Vec::new(),
            gmag: Vec::new(),
            split,
            gd1: Vec::new(),
            gd2: Vec::new(),
            before: [0.0; 2],
            read: 0,
            work: Vec::new(),
            dots: Vec::new(),
            fine: vec![0.0; TP_CHUNK],
            meter: vec![0.0; TP_CHUNK],
        };
        // Sizes from the plan of a whole chunk (every run's plan lies within it).
        let mut plan = [StagePlan::default(); 3];
        let raw_lo = det.plan(0, TP_CHUNK as isize, &mut plan);
        let reach = [
            (-raw_lo) as usize,
            meter_delay + meter.coef.len() - 1,
            GROUP * det.bound.len(),
        ];
        det.hist = reach
            .iter()
            .max()
            .copied()
            .unwrap_or(0)
            .next_multiple_of(GROUP);
        det.raw = vec![0.0; det.hist + TP_CHUNK];
        det.glo = vec![0.0; (det.hist + TP_CHUNK) / GROUP + 1];
        det.ghi = det.glo.clone();
        det.gmag = det.glo.clone();
        det.gd1 = det.glo.clone();
        det.gd2 = det.glo.clone();
        det.work = plan[..det.stages.len()]
            .iter()
            .map(|p| vec![0.0; 2 * (p.hi - p.lo) as usize])
            .collect();
        det.dots = vec![0.0; det.work.iter().map(Vec::len).max().unwrap_or(0) / 2];
        crate::dsp::simd::avx2();
        det
    }

    /// Delay in input samples: the reading of input step `n` covers `[n − latency, n − latency + 1)`.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Clears all history.
    pub fn reset(&mut self) {
        self.raw.fill(0.0);
        self.before = [0.0; 2];
    }

    /// How many steps were read exactly since the detector was made (the threshold-aware mode
    /// reads only where a bound says a reading may exceed the threshold).
    pub fn steps_read(&self) -> u64 {
        self.read
    }

    /// For every sample of `input`, writes the true-peak reading of its interval to `peaks`.
    pub fn peaks(&mut self, input: &[f64], peaks: &mut [f64]) {
        self.peaks_above(input, peaks, f64::NEG_INFINITY);
    }

    /// [`Self::peaks`] where a reading can exceed `threshold`; elsewhere 0 (see the module
    /// docs). Every reading above `threshold` has the bits the full detector gives it, every
    /// other is at most `threshold`. A negative (or NaN) `threshold` reads every sample.
    pub fn peaks_above(&mut self, input: &[f64], peaks: &mut [f64], threshold: f64) {
        self.dispatch(input, peaks, threshold, None, false)
    }

    /// [`Self::peaks_above`] of `input` with its non-finite samples taken as 0: the readings of
    /// the muted input (the same bits), muted as it is copied into the history instead of in a
    /// copy of its own.
    pub fn peaks_above_muted(&mut self, input: &[f64], peaks: &mut [f64], threshold: f64) {
        self.dispatch(input, peaks, threshold, None, true)
    }

    /// [`Self::peaks_above`] where the caller also says which readings it needs at all:
    /// `wanted[i]` false lets step `i` read 0 (a group of steps is read only when one of them is
    /// wanted and may exceed `threshold`). The wanted readings above `threshold` have the bits
    /// of the full detector. A negative (or NaN) `threshold` reads every sample, wanted or not.
    pub fn peaks_above_where(
        &mut self,
        input: &[f64],
        peaks: &mut [f64],
        threshold: f64,
        wanted: &[bool],
    ) {
        self.dispatch(input, peaks, threshold, Some(wanted), false)
    }

    /// Takes `input` in with no reading of it wanted: the history moves on as
    /// [`Self::peaks_above_where`] with `wanted` all false and a non-negative threshold moves
    /// it (whose readings are then all 0), without its copy of the input, its bound or its
    /// readings. Returns whether it did: not under [`force_full`], which reads every step.
    pub fn pass_over(&mut self, input: &[f64]) -> bool {
        if FORCE_FULL.load(Ordering::Relaxed) {
            return false;
        }
        let (n, hist) = (input.len(), self.hist);
        if n >= hist + 2 {
            // What `advance` leaves after the last chunk: the last `hist` inputs, and the two
            // before them.
            self.raw[..hist].copy_from_slice(&input[n - hist..]);
            self.before = [input[n - hist - 2], input[n - hist - 1]];
        } else {
            for c in input.chunks(TP_CHUNK) {
                self.raw[hist..hist + c.len()].copy_from_slice(c);
                self.advance(c.len());
            }
        }
        true
    }

    /// How many input samples before a step its reading depends on at most: a reading of step
    /// `n` is a function of the input samples `n − window() ..= n`.
    pub fn window(&self) -> usize {
        self.hist
    }

    /// [`force_full`]'s override, then the AVX2 or the portable build.
    fn dispatch(
        &mut self,
        input: &[f64],
        peaks: &mut [f64],
        threshold: f64,
        wanted: Option<&[bool]>,
        mute: bool,
    ) {
        let threshold = if FORCE_FULL.load(Ordering::Relaxed) {
            f64::NEG_INFINITY
        } else {
            threshold
        };
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { self.peaks_avx2(input, peaks, threshold, wanted, mute) };
        }
        self.peaks_impl(input, peaks, threshold, wanted, mute)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn peaks_avx2(
        &mut self,
        input: &[f64],
        peaks: &mut [f64],
        threshold: f64,
        wanted: Option<&[bool]>,
        mute: bool,
    ) {
        self.peaks_impl(input, peaks, threshold, wanted, mute)
    }

    #[inline(always)]
    fn peaks_impl(
        &mut self,
        input: &[f64],
        peaks: &mut [f64],
        threshold: f64,
        wanted: Option<&[bool]>,
        mute: bool,
    ) {
        let mut n = input.len().min(peaks.len());
        if let Some(w) = wanted {
            n = n.min(w.len());
        }
        let mut done = 0;
        while done < n {
            let c = (n - done).min(TP_CHUNK);
            self.chunk(
                &input[done..done + c],
                &mut peaks[done..done + c],
                threshold,
                wanted.map(|w| &w[done..done + c]),
                mute,
            );
            done += c;
        }
    }

    #[inline(always)]
    fn chunk(
        &mut self,
        x: &[f64],
        out: &mut [f64],
        threshold: f64,
        wanted: Option<&[bool]>,
        mute: bool,
    ) {
        let n = x.len();
        let hist = self.hist;
        if mute {
            for (r, &v) in self.raw[hist..hist + n].iter_mut().zip(x) {
                *r = if v.is_finite() { v } else { 0.0 };
            }
        } else {
            self.raw[hist..hist + n].copy_from_slice(x);
        }
        if !(threshold >= 0.0) {
            // Negative (or NaN): every reading.
            self.run(0, n, out, threshold);
        } else if !(self
            .split
            .chunk_bound(window_maxima(&self.raw[..hist + n], self.before))
            > threshold)
        {
            // No reading of the chunk can exceed the threshold (most of a master).
            out[..n].fill(0.0);
        } else {
            self.screen_maxima(n);
            let groups = n.div_ceil(GROUP);
            let mut hot = [false; TP_CHUNK / GROUP];
            self.hot_groups(threshold, &mut hot[..groups]);
            let read = |g: usize| {
                hot[g]
                    && wanted.is_none_or(|w| w[g * GROUP..((g + 1) * GROUP).min(n)].contains(&true))
            };
            let mut g = 0;
            while g < groups {
                let start = g;
                let reads = read(g);
                while g < groups && read(g) == reads {
                    g += 1;
                }
                let (s, e) = (start * GROUP, (g * GROUP).min(n));
                if reads {
                    self.run(s, e, out, threshold);
                } else {
                    out[s..e].fill(0.0);
                }
            }
        }
        self.advance(n);
    }

    /// Moves the last `hist` inputs to the front of `raw` after a chunk of `n`.
    #[inline(always)]
    fn advance(&mut self, n: usize) {
        // The two inputs before the next chunk's raw[0] (= raw[n]).
        self.before = match n {
            0 => self.before,
            1 => [self.before[1], self.raw[0]],
            _ => [self.raw[n - 2], self.raw[n - 1]],
        };
        self.raw.copy_within(n..n + self.hist, 0);
    }

    /// What the group-by-group screen reads for a chunk of `n` new inputs in `raw`: every
    /// group's smallest and largest input and its largest first and second differences.
    #[inline(always)]
    fn screen_maxima(&mut self, n: usize) {
        self.group_maxima(n);
        difference_maxima(
            &self.raw[..self.hist + n],
            self.before,
            GROUP,
            &mut self.gd1,
            &mut self.gd2,
        );
    }

    /// The smallest and the largest input of every group of [`GROUP`] inputs of `raw` (history
    /// and the `n` new ones; the last group may be partial). NaN inputs are passed over (as
    /// `f64::min`/`max` do); the AVX2 build takes whole groups two registers at a time.
    #[inline(always)]
    fn group_maxima(&mut self, n: usize) {
        let len = self.hist + n;
        let groups = len.div_ceil(GROUP);
        let mut g = 0;
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            g = unsafe { self.group_maxima_avx2(len / GROUP) };
        }
        for g in g..groups {
            let end = ((g + 1) * GROUP).min(len);
            let (l, h) = self.raw[g * GROUP..end]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            self.glo[g] = l;
            self.ghi[g] = h;
        }
        for ((m, &l), &h) in self.gmag[..groups].iter_mut().zip(&self.glo).zip(&self.ghi) {
            *m = h.max(-l);
        }
    }

    /// [`Self::group_maxima`] of the first `whole` (complete) groups; returns `whole`. The
    /// same values: minima and maxima are exact whatever the order, and a NaN lane gives way to
    /// the other operand (`_mm256_min_pd(v, acc)` returns `acc` when `v` is NaN) as in
    /// `f64::min`. (Only the sign of a zero may differ, which no bound can tell.)
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn group_maxima_avx2(&mut self, whole: usize) -> usize {
        use std::arch::x86_64::*;
        const _: () = assert!(GROUP == 8, "two registers per group");
        assert!(whole * GROUP <= self.raw.len() && whole <= self.glo.len().min(self.ghi.len()));
        let p = self.raw.as_ptr();
        // SAFETY: group g reads raw[8g .. 8g + 8] with g < whole (assertion).
        unsafe {
            for g in 0..whole {
                let a = _mm256_loadu_pd(p.add(g * GROUP));
                let b = _mm256_loadu_pd(p.add(g * GROUP + 4));
                let lo = _mm256_min_pd(b, _mm256_min_pd(a, _mm256_set1_pd(f64::INFINITY)));
                let hi = _mm256_max_pd(b, _mm256_max_pd(a, _mm256_set1_pd(f64::NEG_INFINITY)));
                let lo2 = _mm_min_pd(_mm256_castpd256_pd128(lo), _mm256_extractf128_pd::<1>(lo));
                let hi2 = _mm_max_pd(_mm256_castpd256_pd128(hi), _mm256_extractf128_pd::<1>(hi));
                *self.glo.get_unchecked_mut(g) =
                    _mm_cvtsd_f64(_mm_min_sd(lo2, _mm_unpackhi_pd(lo2, lo2)));
                *self.ghi.get_unchecked_mut(g) =
                    _mm_cvtsd_f64(_mm_max_sd(hi2, _mm_unpackhi_pd(hi2, hi2)));
            }
        }
        whole
    }

    /// [`Self::hot`] of the chunk's groups `0..hot.len()` into `hot`: four groups side by side
    /// in the AVX2 build (every group's bound through the same operations in the same order as
    /// [`Self::hot`], so the same decisions), one at a time in the portable one.
    #[inline(always)]
    fn hot_groups(&self, threshold: f64, hot: &mut [bool]) {
        let mut g = 0;
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            g = unsafe { self.hot_groups_avx2(threshold, hot) };
        }
        for (i, h) in hot.iter_mut().enumerate().skip(g) {
            *h = self.hot(i, threshold);
        }
    }

    /// [`Self::hot_groups`] four groups at a time while four remain; returns how many it decided.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn hot_groups_avx2(&self, threshold: f64, hot: &mut [bool]) -> usize {
        use std::arch::x86_64::*;
        let k = self.bound.len();
        let base = self.hist / GROUP;
        assert!(base + 1 >= k && base + hot.len() <= self.glo.len().min(self.gmag.len()));
        let (glo, ghi, gmag) = (self.glo.as_ptr(), self.ghi.as_ptr(), self.gmag.as_ptr());
        let sign = _mm256_set1_pd(-0.0);
        let thr = _mm256_set1_pd(threshold);
        let mut g = 0;
        // SAFETY: lane i of a load at q − j reads group q + i − j of `glo`/`ghi`, with
        // q + 3 = base + g + 3 < base + hot.len() ≤ their length and q − j ≥ base + 1 − k ≥ 0
        // (the assertion).
        unsafe {
            while g + 4 <= hot.len() {
                let q = base + g;
                let mut largest = _mm256_setzero_pd();
                for j in 0..k {
                    largest = _mm256_max_pd(_mm256_loadu_pd(gmag.add(q - j)), largest);
                }
                let rounding = _mm256_mul_pd(_mm256_set1_pd(1e-9), largest);
                let split = self.split_avx2(q, largest, rounding);
                let over = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(split, thr));
                if over == 0 {
                    hot[g..g + 4].fill(false);
                    g += 4;
                    continue;
                }
                let mut lo_all = _mm256_set1_pd(f64::INFINITY);
                let mut hi_all = _mm256_set1_pd(f64::NEG_INFINITY);
                for j in 0..k {
                    lo_all = _mm256_min_pd(_mm256_loadu_pd(glo.add(q - j)), lo_all);
                    hi_all = _mm256_max_pd(_mm256_loadu_pd(ghi.add(q - j)), hi_all);
                }
                let c = _mm256_mul_pd(_mm256_set1_pd(0.5), _mm256_add_pd(lo_all, hi_all));
                let mut magnitude = _mm256_setzero_pd();
                let mut deviation = _mm256_setzero_pd();
                for (j, &w) in self.bound.iter().enumerate() {
                    let w = _mm256_set1_pd(w);
                    let l = _mm256_loadu_pd(glo.add(q - j));
                    let h = _mm256_loadu_pd(ghi.add(q - j));
                    let m = _mm256_max_pd(_mm256_xor_pd(l, sign), h);
                    magnitude = _mm256_add_pd(magnitude, _mm256_mul_pd(w, m));
                    let d = _mm256_max_pd(_mm256_sub_pd(c, l), _mm256_sub_pd(h, c));
                    deviation = _mm256_add_pd(deviation, _mm256_mul_pd(w, d));
                }
                let dc = _mm256_mul_pd(_mm256_set1_pd(self.dc), _mm256_andnot_pd(sign, c));
                let deviation = _mm256_add_pd(_mm256_add_pd(deviation, dc), rounding);
                let spread =
                    _mm256_mul_pd(_mm256_set1_pd(self.l1 * 0.5), _mm256_sub_pd(hi_all, lo_all));
                let flat = _mm256_add_pd(
                    _mm256_min_pd(
                        _mm256_add_pd(dc, spread),
                        _mm256_mul_pd(_mm256_set1_pd(self.l1), largest),
                    ),
                    rounding,
                );
                let bound = _mm256_min_pd(_mm256_min_pd(deviation, magnitude), flat);
                let over = over & _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(bound, thr));
                for (i, h) in hot[g..g + 4].iter_mut().enumerate() {
                    *h = over & (1 << i) != 0;
                }
                g += 4;
            }
        }
        g
    }

    /// The split bound of the four groups of steps `q .. q + 4` of `raw` (as [`Self::hot`]
    /// computes it; infinite where the window's `largest` input is).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn split_avx2(
        &self,
        q: usize,
        largest: std::arch::x86_64::__m256d,
        rounding: std::arch::x86_64::__m256d,
    ) -> std::arch::x86_64::__m256d {
        use std::arch::x86_64::*;
        let s = &self.split;
        let k = s.rough.len();
        assert!(q + 1 >= k && s.near.1 < k && s.slope_near.1 < k);
        assert!(q + 4 <= self.gmag.len().min(self.gd1.len()).min(self.gd2.len()));
        let gmag = self.gmag.as_ptr();
        let (gd1, gd2) = (self.gd1.as_ptr(), self.gd2.as_ptr());
        let inf = _mm256_set1_pd(f64::INFINITY);
        // SAFETY: lane i of a load at q − j reads group q + i − j, with j < k ≤ q + 1 and
        // q + 3 < the arrays' lengths (assertions).
        unsafe {
            let mut x = _mm256_setzero_pd();
            for j in s.near.0..=s.near.1 {
                x = _mm256_max_pd(x, _mm256_loadu_pd(gmag.add(q - j)));
            }
            let mut x1 = _mm256_setzero_pd();
            for j in s.slope_near.0..=s.slope_near.1 {
                x1 = _mm256_max_pd(x1, _mm256_loadu_pd(gd1.add(q - j)));
            }
            let mut rough = _mm256_setzero_pd();
            for (j, &w) in s.rough.iter().enumerate() {
                let d = _mm256_loadu_pd(gd2.add(q - j));
                rough = _mm256_add_pd(rough, _mm256_mul_pd(_mm256_set1_pd(w), d));
            }
            let smooth = _mm256_add_pd(
                _mm256_mul_pd(_mm256_set1_pd(s.gain), x),
                _mm256_mul_pd(_mm256_set1_pd(s.slope), x1),
            );
            let total = _mm256_add_pd(_mm256_add_pd(smooth, rough), rounding);
            _mm256_blendv_pd(inf, total, _mm256_cmp_pd::<_CMP_LT_OQ>(largest, inf))
        }
    }

    /// Whether a reading of the steps of group `g` of the chunk may exceed `threshold`: the
    /// smaller of two bounds (module docs), on the inputs' magnitudes and on their deviations
    /// from the centre `c` of the window's range.
    #[inline(always)]
    fn hot(&self, g: usize, threshold: f64) -> bool {
        let q = self.hist / GROUP + g;
        let k = self.bound.len();
        // The rounding of the readings' sums: far under 1e-9 of the window's largest input.
        let largest = self.window_largest(q);
        let rounding = 1e-9 * largest;
        // The split bound first: it is the smallest almost everywhere.
        let split = self.split_bound(q, largest, rounding);
        if !(split > threshold) {
            return false;
        }
        let (lo, hi) = (&self.glo[q + 1 - k..=q], &self.ghi[q + 1 - k..=q]);
        let lo_all = lo.iter().fold(f64::INFINITY, |a, &v| a.min(v));
        let hi_all = hi.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
        let c = 0.5 * (lo_all + hi_all);
        let (mut magnitude, mut deviation) = (0.0, 0.0);
        // bound[j] weighs the group j back from q.
        for ((w, &l), &h) in self.bound.iter().zip(lo.iter().rev()).zip(hi.iter().rev()) {
            magnitude += w * h.max(-l);
            deviation += w * (h - c).max(c - l);
        }
        let deviation = deviation + self.dc * c.abs() + rounding;
        // The same two without the weights' shape: every value's L1 norm times the window's
        // largest magnitude, or deviation (half the range).
        let flat = (self.l1 * largest).min(self.dc * c.abs() + self.l1 * 0.5 * (hi_all - lo_all))
            + rounding;
        magnitude.min(deviation).min(flat) > threshold
    }

    /// The largest input magnitude of the window of the steps of group `q` of `raw` (its
    /// groups `q + 1 − bound.len() ..= q`).
    #[inline(always)]
    fn window_largest(&self, q: usize) -> f64 {
        let k = self.bound.len();
        self.gmag[q + 1 - k..=q]
            .iter()
            .fold(0.0f64, |a, &v| a.max(v))
    }

    /// Takes the chunk `x` into `raw` with every maximum the bounds read (for tests: the bounds
    /// of its groups can then be taken; [`Self::advance`] moves on).
    #[cfg(test)]
    fn load(&mut self, x: &[f64]) {
        let (n, hist) = (x.len(), self.hist);
        self.raw[hist..hist + n].copy_from_slice(x);
        self.screen_maxima(n);
    }

    /// [`Self::split_bound`] of the chunk's group `g` as [`Self::hot`] takes it (for tests).
    #[cfg(test)]
    fn split_of(&self, g: usize) -> f64 {
        let q = self.hist / GROUP + g;
        let largest = self.window_largest(q);
        self.split_bound(q, largest, 1e-9 * largest)
    }

    /// The split bound ([`SplitBound`]) on the readings of the steps of group `q` of `raw`, for
    /// finite inputs (infinite where the window's `largest` input is).
    #[inline(always)]
    fn split_bound(&self, q: usize, largest: f64, rounding: f64) -> f64 {
        if !(largest < f64::INFINITY) {
            return f64::INFINITY;
        }
        let s = &self.split;
        let x = (q - s.near.1..=q - s.near.0).fold(0.0f64, |m, g| m.max(self.gmag[g]));
        let x1 = (q - s.slope_near.1..=q - s.slope_near.0).fold(0.0f64, |m, g| m.max(self.gd1[g]));
        let mut rough = 0.0;
        for (j, w) in s.rough.iter().enumerate() {
            rough += w * self.gd2[q - j];
        }
        s.total(x, x1, rough) + rounding
    }

    /// The stage ranges that give the fine values of steps `[s − fine_delay, e − fine_delay)`
    /// (relative to the chunk), top stage first; returns the first input step they read.
    fn plan(&self, s: isize, e: isize, plan: &mut [StagePlan; 3]) -> isize {
        let f = self.factor as isize;
        let d = self.fine_delay as isize;
        // The top-rate values of those steps and the previous step's last two.
        let (mut lo, mut hi) = (f * (s - d) - 2, f * (e - d));
        for (k, (a, _)) in self.stages.iter().enumerate().rev() {
            let (qlo, qhi) = (lo.div_euclid(2), (hi + 1).div_euclid(2));
            plan[k] = StagePlan { lo: qlo, hi: qhi };
            lo = qlo - (a.len() as isize - 1);
            hi = qhi;
        }
        lo
    }

    /// Exact readings of the chunk's steps `[s, e)` into `out[s..e]` where they can exceed
    /// `threshold` (elsewhere a value at most `threshold`: see [`fine_readings`]).
    #[inline(always)]
    fn run(&mut self, s: usize, e: usize, out: &mut [f64], threshold: f64) {
        self.read += (e - s) as u64;
        let factor = self.factor;
        let hist = self.hist as isize;
        let mut plan = [StagePlan::default(); 3];
        self.plan(s as isize, e as isize, &mut plan);
        // The cascade, bottom up: stage k reads its inputs from the raw history (k = 0) or
        // from the stage below, whose outputs start at `2·plan[k − 1].lo`.
        let stages = self.stages.len();
        for k in 0..stages {
            let (a, centre) = (&self.stages[k].0, self.stages[k].1);
            let h = a.len() - 1;
            let StagePlan { lo, hi } = plan[k];
            let m = (hi - lo) as usize;
            let (below, rest) = self.work.split_at_mut(k);
            let src: &[f64] = if k == 0 {
                &self.raw[(hist + lo) as usize - h..(hist + hi) as usize]
            } else {
                let start = 2 * plan[k - 1].lo;
                &below[k - 1][(lo - start) as usize - h..(hi - start) as usize]
            };
            halfband_dots(a, src, &mut self.dots[..m]);
            for (t, o) in rest[0][..2 * m].chunks_exact_mut(2).enumerate() {
                o[0] = self.dots[t];
                o[1] = src[h + t - centre];
            }
        }
        // Fine readings: step τ's values and the previous step's last two.
        let top = &self.work[stages - 1];
        let top_start = 2 * plan[stages - 1].lo;
        let d = self.fine_delay as isize;
        // Step τ's values start at `factor·τ − 2` (top rate), `first` for the range's first.
        let first = (factor as isize * (s as isize - d) - 2 - top_start) as usize;
        let fine = &mut self.fine[..e - s];
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            unsafe { fine_readings_avx2(&top[first..], factor, fine, threshold) };
        } else {
            fine_readings(&top[first..], factor, fine, threshold);
        }
        #[cfg(not(target_arch = "x86_64"))]
        fine_readings(&top[first..], factor, fine, threshold);
        // Meter readings.
        let rows = self.meter_rows.len();
        let first = hist + s as isize - self.meter_delay as isize;
        let ext = &self.raw[first as usize - (rows - 1)..first as usize + (e - s)];
        delay_rows_peaks(&self.meter_rows, ext, &mut self.meter[..e - s]);
        for ((o, &a), &b) in out[s..e].iter_mut().zip(&self.fine).zip(&self.meter) {
            *o = a.max(b);
        }
    }
}

/// [`fine_reading`] of consecutive steps: step `i`'s values are `top[factor·i..][..factor + 2]`.
///
/// A step whose values all lie within `threshold / `[`VERTEX_REACH`] in magnitude cannot read
/// above `threshold` (a refinement adds at most an eighth of the difference of the two
/// neighbours of its local maximum, so at most a quarter of the largest magnitude): it reads
/// its largest magnitude, unrefined, and the parabolas are skipped. A negative `threshold`
/// refines every step.
#[inline(always)]
fn fine_readings(top: &[f64], factor: usize, fine: &mut [f64], threshold: f64) {
    for (i, fo) in fine.iter_mut().enumerate() {
        let v = &top[factor * i..factor * i + factor + 2];
        let largest = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        *fo = if largest * VERTEX_REACH <= threshold {
            v[2..].iter().fold(0.0f64, |m, x| m.max(x.abs()))
        } else {
            fine_reading(v, factor)
        };
    }
}

/// How far above the largest magnitude of a step's values its refined reading can reach, with
/// a margin for the rounding of the parabola's arithmetic: the vertex of `(l, c, r)` at a local
/// maximum `c` is `c + d²/(8·curv)` with `d = r − l` and `curv = (c − l) + (c − r) ≥ |d|`, so at
/// most `c + |d|/8 ≤ 1.25·max(|l|, |c|, |r|)`.
const VERTEX_REACH: f64 = 1.25 * (1.0 + 1e-9);

/// [`fine_readings`] with AVX2 intrinsics, the same bits: a step's values in one or two
/// registers, the largest magnitude and the position of the first largest among all but the
/// last (the refinement's local maximum) by vector compares, and both parabolas' vertices side
/// by side without branches ([`vertices`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fine_readings_avx2(top: &[f64], factor: usize, fine: &mut [f64], threshold: f64) {
    use std::arch::x86_64::*;
    assert!(
        (factor == 4 || factor == 8) && top.len() >= factor * fine.len() + 2,
        "the values of every step"
    );
    let sign = _mm256_set1_pd(-0.0);
    let p = top.as_ptr();
    // Lanes of the last register that take part in the search for the local maximum: all but
    // the step's last value.
    let keep = _mm256_castsi256_pd(_mm256_set_epi64x(0, -1, -1, -1));
    // SAFETY: step i reads top[factor·i .. factor·i + factor + 2], inside `top` (assertion).
    unsafe {
        for (i, fo) in fine.iter_mut().enumerate() {
            let v = p.add(factor * i);
            let buf = v.add(2);
            let lo = _mm256_andnot_pd(sign, _mm256_loadu_pd(buf));
            let (all, search) = if factor == 8 {
                let hi = _mm256_andnot_pd(sign, _mm256_loadu_pd(buf.add(4)));
                (_mm256_max_pd(lo, hi), [lo, _mm256_and_pd(hi, keep)])
            } else {
                (lo, [_mm256_and_pd(lo, keep), _mm256_setzero_pd()])
            };
            let a = hmax(all);
            if a.max((*v).abs()).max((*v.add(1)).abs()) * VERTEX_REACH <= threshold {
                *fo = a;
                continue;
            }
            // The first position of the largest of all but the last value (masked to 0, which
            // no magnitude is below).
            let best = _mm256_set1_pd(hmax(_mm256_max_pd(search[0], search[1])));
            let eq = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(search[0], best))
                | (_mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(search[1], best)) << 4);
            let k = eq.trailing_zeros() as usize;
            let [x, y] = vertices(
                [*v, *v.add(k + 1)],
                [*v.add(1), *buf.add(k)],
                [*buf, *buf.add(k + 1)],
            );
            *fo = a.max(x).max(y);
        }
    }
}

/// The largest of four lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn hmax(v: std::arch::x86_64::__m256d) -> f64 {
    use std::arch::x86_64::*;
    let m2 = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    _mm_cvtsd_f64(_mm_max_sd(m2, _mm_unpackhi_pd(m2, m2)))
}

/// [`vertex`] of two triples at once, without branches: the same operations, so the same bits.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn vertices(l: [f64; 2], c: [f64; 2], r: [f64; 2]) -> [f64; 2] {
    use std::arch::x86_64::*;
    let (l, c, r) = (
        _mm_loadu_pd(l.as_ptr()),
        _mm_loadu_pd(c.as_ptr()),
        _mm_loadu_pd(r.as_ptr()),
    );
    // Negated where c < 0 (not for −0, as `vertex`).
    let flip = _mm_and_pd(_mm_cmplt_pd(c, _mm_setzero_pd()), _mm_set1_pd(-0.0));
    let (l, c, r) = (
        _mm_xor_pd(l, flip),
        _mm_xor_pd(c, flip),
        _mm_xor_pd(r, flip),
    );
    let curv = _mm_sub_pd(_mm_sub_pd(_mm_mul_pd(_mm_set1_pd(2.0), c), l), r);
    let d = _mm_sub_pd(r, l);
    let top = _mm_add_pd(
        c,
        _mm_div_pd(_mm_mul_pd(d, d), _mm_mul_pd(_mm_set1_pd(8.0), curv)),
    );
    let peak = _mm_and_pd(
        _mm_and_pd(_mm_cmpge_pd(c, l), _mm_cmpge_pd(c, r)),
        _mm_cmpgt_pd(curv, _mm_setzero_pd()),
    );
    let mut out = [0.0; 2];
    _mm_storeu_pd(out.as_mut_ptr(), _mm_and_pd(peak, top));
    out
}

/// The accurate interpolator's reading of one step from its values `v` (the previous step's
/// last two, then the step's `factor`): the largest magnitude, refined by the parabola through
/// the largest and its neighbours, and through the previous step's last value.
#[inline(always)]
fn fine_reading(v: &[f64], factor: usize) -> f64 {
    let buf = &v[2..];
    let mut a = buf.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a = a.max(vertex(v[0], v[1], buf[0]));
    let mut k = 0;
    for (i, x) in buf[..factor - 1].iter().enumerate() {
        if x.abs() > buf[k].abs() {
            k = i;
        }
    }
    a.max(vertex(v[k + 1], buf[k], buf[k + 1]))
}

/// The magnitude at the vertex of the parabola through `(−1, l)`, `(0, c)`, `(1, r)` when `c` is
/// a local maximum of the magnitude (0 otherwise). For a sinusoid sampled 16 times per period
/// (fs/2 at 8×) it recovers the peak within 0.01 dB, where the grid alone may miss 0.17 dB.
#[inline(always)]
fn vertex(l: f64, c: f64, r: f64) -> f64 {
    let (l, c, r) = if c < 0.0 { (-l, -c, -r) } else { (l, c, r) };
    let curv = 2.0 * c - l - r;
    if c >= l && c >= r && curv > 0.0 {
        let d = r - l;
        c + d * d / (8.0 * curv)
    } else {
        0.0
    }
}

/// The bound's weights per group offset (module docs): `W[j]` bounds how much input `t − j`
/// can contribute to the reading of step `t`, and `bound[k] = max_u Σ_v W[8k + u − v]` how much
/// a group of inputs `k` groups back can contribute to a reading of a group of steps.
fn bound_weights(
    factor: usize,
    meter_rows: &[[f64; 4]],
    fine_delay: usize,
    meter_delay: usize,
) -> Weights {
    // The accurate interpolator's impulse response at the top rate.
    let mut it = HalfbandInterpolator::detector(factor);
    let steps = 512;
    let mut h = vec![0.0; factor * steps];
    for (t, out) in h.chunks_exact_mut(factor).enumerate() {
        it.interpolate(if t == 0 { 1.0 } else { 0.0 }, out);
    }
    let len = h.iter().rposition(|&v| v != 0.0).map_or(0, |i| i + 1);
    assert!(
        len + 4 * factor < h.len(),
        "impulse response longer than expected"
    );
    let at = |z: isize| if z < 0 { 0.0 } else { h[z as usize] };
    let f = factor as isize;
    // Per input j steps back: the largest |value| over the step's values and the previous
    // step's last two, plus an eighth of the largest neighbour difference (the refinement).
    let fine_len = len.div_ceil(factor) + 2;
    let fine: Vec<f64> = (0..fine_len as isize)
        .map(|j| {
            let m = (-2..f).map(|p| at(f * j + p).abs()).fold(0.0, f64::max);
            let d = (-1..f)
                .map(|p| (at(f * j + p) - at(f * j + p - 1)).abs())
                .fold(0.0, f64::max);
            m + d / 8.0
        })
        .collect();
    let meter: Vec<f64> = meter_rows
        .iter()
        .map(|r| r.iter().fold(0.0f64, |m, c| m.max(c.abs())))
        .collect();
    let span = (fine_len + fine_delay).max(meter.len() + meter_delay);
    // Margins: relative for the rounding of the bound's own sums, absolute for the rounding of
    // the readings (a few units in the last place of the window's largest input).
    let w: Vec<f64> = (0..span)
        .map(|j| {
            let a = j
                .checked_sub(fine_delay)
                .and_then(|i| fine.get(i))
                .copied()
                .unwrap_or(0.0);
            let b = j
                .checked_sub(meter_delay)
                .and_then(|i| meter.get(i))
                .copied()
                .unwrap_or(0.0);
            a.max(b) * (1.0 + 1e-6) + 1e-12
        })
        .collect();
    let wj = |j: isize| {
        if j < 0 || j as usize >= w.len() {
            0.0
        } else {
            w[j as usize]
        }
    };
    // Every value a reading looks at as a kernel over input offsets back from the reading's step:
    // the accurate values of the step (and the previous step's last two), the meter's phases.
    let fine_kernels: Vec<Vec<f64>> = (-2..f)
        .map(|p| {
            (0..span as isize)
                .map(|i| {
                    let j = i - fine_delay as isize;
                    if j < 0 {
                        0.0
                    } else {
                        at(f * j + p)
                    }
                })
                .collect()
        })
        .collect();
    let meter_kernels: Vec<Vec<f64>> = (0..4)
        .map(|q| {
            (0..span)
                .map(|i| {
                    i.checked_sub(meter_delay)
                        .and_then(|r| meter_rows.get(r))
                        .map_or(0.0, |row| row[q])
                })
                .collect()
        })
        .collect();
    let g = GROUP as isize;
    let bound: Vec<f64> = (0..(span + 2 * GROUP).div_ceil(GROUP) as isize)
        .map(|k| {
            (0..g)
                .map(|u| (0..g).map(|v| wj(g * k + u - v)).sum::<f64>())
                .fold(0.0, f64::max)
        })
        .collect();
    // The DC gains: of each fine phase (and of the difference of neighbouring phases, for the
    // refinement's eighth), and of each meter phase.
    let phase_dc: Vec<f64> = (0..f)
        .map(|p| (0..steps as isize).map(|j| at(f * j + p)).sum())
        .collect();
    let step = (0..factor)
        .map(|p| (phase_dc[p] - phase_dc[(p + factor - 1) % factor]).abs())
        .fold(0.0, f64::max);
    let fine_dc = phase_dc.iter().fold(0.0f64, |m, g| m.max(g.abs())) + step / 8.0;
    let meter_dc = (0..4)
        .map(|q| meter_rows.iter().map(|r| r[q]).sum::<f64>().abs())
        .fold(0.0, f64::max);
    // The L1 norms: of each fine phase (plus an eighth of that of a neighbour difference), of
    // each meter phase.
    let fine_l1 = (0..f)
        .map(|p| {
            (0..steps as isize)
                .map(|j| at(f * j + p).abs())
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
        + (0..f)
            .map(|p| {
                (0..steps as isize)
                    .map(|j| (at(f * j + p) - at(f * j + p - 1)).abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
            / 8.0;
    let meter_l1 = (0..4)
        .map(|q| meter_rows.iter().map(|r| r[q].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let margin = 1.0 + 1e-6;
    let split = SplitBound::weights(&fine_kernels, &meter_kernels, GROUP, bound.len());
    Weights {
        bound,
        dc: fine_dc.max(meter_dc) * margin,
        l1: fine_l1.max(meter_l1) * margin,
        split,
    }
}

/// The bound's weights ([`bound_weights`]).
struct Weights {
    /// Per group offset.
    bound: Vec<f64>,
    /// The largest DC gain of a value a reading looks at.
    dc: f64,
    /// The largest L1 norm of the weights of a value a reading looks at.
    l1: f64,
    /// The split bound's.
    split: SplitBound,
}

// Hot reload: the whole contents are handed over in place (see `dsp::state`); the signal state
// proper is `raw`, the input history every reading is computed from.
crate::signal_state!(TruePeakDetector {
    copy: factor, fine_delay, meter_delay, latency, hist, dc, l1, before, read;
    state: stages, meter_rows, raw, bound, glo, ghi, gmag, split, gd1, gd2, work, dots, fine, meter;
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// The detector one sample at a time, the reference the chunked [`TruePeakDetector`] must
    /// match bit for bit: the larger of the accurate [`HalfbandInterpolator`] and the
    /// [`MeterInterpolator`], time-aligned.
    #[derive(Debug, Clone)]
    struct PerSample {
        fine: HalfbandInterpolator,
        meter: MeterInterpolator,
        /// Delays the earlier of the two readings so both refer to the same interval.
        align: Vec<f64>,
        align_pos: usize,
        fine_first: bool,
        latency: usize,
        /// The last two fine values of the previous step.
        prev: [f64; 2],
    }

    impl PerSample {
        /// The detector at `factor` (4 or 8) for `sample_rate`. Allocates.
        fn new(factor: usize, sample_rate: f64) -> Self {
            let fine = HalfbandInterpolator::detector(factor);
            let meter = MeterInterpolator::new(sample_rate);
            let (a, b) = (fine.latency(), meter.latency());
            Self {
                align: vec![0.0; a.abs_diff(b).max(1)],
                align_pos: 0,
                fine_first: a < b,
                latency: a.max(b),
                fine,
                meter,
                prev: [0.0; 2],
            }
        }

        /// Delay in input samples: the reading of input step `n` covers `[n − latency, n − latency + 1)`.
        fn latency(&self) -> usize {
            self.latency
        }

        /// Clears all history.
        fn reset(&mut self) {
            self.fine.reset();
            self.meter.reset();
            self.align.fill(0.0);
            self.align_pos = 0;
            self.prev = [0.0; 2];
        }

        /// For every sample of `input`, writes the true-peak reading of its interval to `peaks`.
        fn peaks(&mut self, input: &[f64], peaks: &mut [f64]) {
            // Values beyond the factor stay zero, so the maximum can always run over 8.
            let mut buf = [0.0f64; 8];
            let factor = self.fine.factor();
            let len = self.align.len();
            let same = self.fine.latency() == self.meter.latency();
            for (&x, out) in input.iter().zip(peaks.iter_mut()) {
                self.fine.interpolate(x, &mut buf);
                let mut m = [0.0f64; 4];
                for k in 0..4 {
                    m[k] = buf[k].abs().max(buf[k + 4].abs());
                }
                let mut a = m[0].max(m[1]).max(m[2].max(m[3]));
                // Between grid points: the vertex of the parabola through a local maximum and its
                // neighbours (for the previous step's last point, whose right neighbour is here).
                a = a.max(vertex(self.prev[0], self.prev[1], buf[0]));
                let mut k = 0;
                for (i, v) in buf[..factor - 1].iter().enumerate() {
                    if v.abs() > buf[k].abs() {
                        k = i;
                    }
                }
                let left = if k == 0 { self.prev[1] } else { buf[k - 1] };
                a = a.max(vertex(left, buf[k], buf[k + 1]));
                self.prev = [buf[factor - 2], buf[factor - 1]];
                let mut b = self.meter.peak(x);
                if !same {
                    let early = if self.fine_first { &mut a } else { &mut b };
                    *early = std::mem::replace(&mut self.align[self.align_pos], *early);
                    self.align_pos = if self.align_pos + 1 == len {
                        0
                    } else {
                        self.align_pos + 1
                    };
                }
                *out = a.max(b);
            }
        }
    }

    #[test]
    fn block_detector_matches_the_per_sample_one() {
        for (factor, fs) in [(4, 48_000.0), (8, 48_000.0), (8, 96_000.0), (4, 192_000.0)] {
            for portable in [true, false] {
                crate::dsp::simd::force_portable(portable);
                let mut block = TruePeakDetector::new(factor, fs);
                let mut reference = PerSample::new(factor, fs);
                assert_eq!(block.latency(), reference.latency());
                let mut r = 0x1234_5678u64;
                let mut pos = 0usize;
                for len in [1usize, 3, 255, 256, 257, 1000, 4, 7, 513] {
                    let x: Vec<f64> = (0..len)
                        .map(|i| {
                            r = r.wrapping_mul(6364136223846793005).wrapping_add(1);
                            let noise = (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                            ((pos + i) as f64 * 0.37).sin() * 0.8 + noise
                        })
                        .collect();
                    pos += len;
                    let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
                    block.peaks(&x, &mut a);
                    reference.peaks(&x, &mut b);
                    assert!(
                        a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{factor}x {fs} (portable {portable}): block of {len} differs"
                    );
                }
                // After a reset both start again from silence.
                block.reset();
                reference.reset();
                let x: Vec<f64> = (0..700).map(|i| (i as f64 * 1.3).sin()).collect();
                let (mut a, mut b) = (vec![0.0; 700], vec![0.0; 700]);
                block.peaks(&x, &mut a);
                reference.peaks(&x, &mut b);
                assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
            }
        }
        crate::dsp::simd::force_portable(false);
    }

    /// Reading with the input muted gives the bits of reading the muted input, in both builds,
    /// with NaN and infinities among loud samples, at and under the threshold.
    #[test]
    fn reading_muted_is_reading_the_muted_input() {
        let mut r = 0x5151_7e57_0000_0001u64;
        let mut noise = move || {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1.8
        };
        let x: Vec<f64> = (0..3000)
            .map(|i| match i % 397 {
                5 => f64::NAN,
                77 => f64::INFINITY,
                200 => f64::NEG_INFINITY,
                _ => noise(),
            })
            .collect();
        let muted: Vec<f64> = x
            .iter()
            .map(|&v| if v.is_finite() { v } else { 0.0 })
            .collect();
        for portable in [true, false] {
            crate::dsp::simd::force_portable(portable);
            for (factor, threshold) in [(8, 0.6), (4, -1.0)] {
                let mut a = TruePeakDetector::new(factor, 48_000.0);
                let mut b = a.clone();
                for (lo, hi) in [(0, 100), (100, 1700), (1700, 3000)] {
                    let (mut p, mut q) = (vec![0.0; hi - lo], vec![0.0; hi - lo]);
                    a.peaks_above_muted(&x[lo..hi], &mut p, threshold);
                    b.peaks_above(&muted[lo..hi], &mut q, threshold);
                    assert!(
                        p.iter().zip(&q).all(|(u, v)| u.to_bits() == v.to_bits()),
                        "{factor}x, portable {portable}: frames {lo}..{hi}"
                    );
                    assert!(p.iter().any(|&v| v > 0.6), "{factor}x: some readings over");
                }
            }
        }
        crate::dsp::simd::force_portable(false);
    }

    /// Passing over blocks with no reading wanted leaves the history that reading them with
    /// none wanted leaves (whose readings are all 0): the readings of the blocks after are the
    /// same bits, for blocks shorter and longer than the history, across chunk boundaries.
    #[test]
    fn passing_over_leaves_the_history_of_reading_nothing() {
        let mut r = 0x0bad_cafe_1234_5678u64;
        let mut noise = move || {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1.8
        };
        for factor in [4, 8] {
            let mut read = TruePeakDetector::new(factor, 48_000.0);
            let mut passed = read.clone();
            let threshold = 0.5;
            let mut nonzero = 0;
            for len in [1usize, 2, 700, 3, 40, 255, 257, 1000, 5, 77, 600, 2, 9, 513] {
                let x: Vec<f64> = (0..len).map(|_| noise()).collect();
                let mut a = vec![1.0; len];
                read.peaks_above_where(&x, &mut a, threshold, &vec![false; len]);
                assert!(a.iter().all(|&v| v == 0.0), "{factor}x: {len} frames read");
                assert!(passed.pass_over(&x));
                let y: Vec<f64> = (0..300).map(|_| noise()).collect();
                let (mut a, mut b2) = (vec![0.0; 300], vec![0.0; 300]);
                read.peaks(&y, &mut a);
                passed.peaks(&y, &mut b2);
                assert!(
                    a.iter().zip(&b2).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{factor}x: readings after passing over {len} frames differ"
                );
                nonzero += a.iter().filter(|&&v| v > threshold).count();
            }
            assert!(
                nonzero > 100,
                "{factor}x: {nonzero} readings over the threshold"
            );
        }
    }

    /// Largest error of the interpolated values against the analytic sine, relative to its
    /// amplitude, for a tone at `f` (cycles per input sample).
    fn interp_error(factor: usize, f: f64) -> f64 {
        let mut it = HalfbandInterpolator::detector(factor);
        let lat = it.delay_top() as f64 / factor as f64;
        let mut out = [0.0; 8];
        let mut worst: f64 = 0.0;
        for n in 0..3000 {
            let x = (2.0 * PI * f * n as f64 + 0.4).sin();
            it.interpolate(x, &mut out);
            if n < 1000 {
                continue;
            }
            for (p, v) in out[..factor].iter().enumerate() {
                let t = n as f64 - lat + p as f64 / factor as f64;
                let want = (2.0 * PI * f * t + 0.4).sin();
                worst = worst.max((v - want).abs());
            }
        }
        worst
    }

    #[test]
    fn interpolator_is_accurate_up_to_its_band_edge() {
        for factor in [4, 8] {
            for k in 0..=47 {
                let f = k as f64 / 100.0 + 0.001;
                let err = interp_error(factor, f);
                // 60 dB design: ripple and image leakage about 1e-3 per stage.
                assert!(err < 5e-3, "factor {factor} f {f}: error {err}");
            }
        }
    }

    /// A music-like test signal: a bass line, chords of detuned partials with envelopes,
    /// noise bursts (drums) and a few hard transients, peaking near 1.
    pub(super) fn music(n: usize, fs: f64) -> Vec<f64> {
        let mut noise = crate::dsp::test_signal::noise(0x9e37_79b9_7f4a_7c15u64);
        let beat = (fs * 0.5) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                let bar = i / (4 * beat);
                let root = [55.0, 73.4, 61.7, 82.4][bar % 4];
                let since = (i % beat) as f64 / fs;
                let bass = 0.35 * (2.0 * PI * root * t).sin() * (-since * 3.0).exp();
                let chord: f64 = [1.0, 1.26, 1.5, 2.0, 3.01, 4.02]
                    .iter()
                    .map(|m| (2.0 * PI * root * 4.0 * m * t + m).sin())
                    .sum::<f64>()
                    * 0.06;
                let hat = if i % (beat / 2) < 2_000 {
                    0.3 * noise() * (-since * 60.0).exp()
                } else {
                    0.0
                };
                let kick = if i % beat < 4_000 {
                    0.6 * (2.0 * PI * 50.0 * since * (1.0 + 2.0 * (-since * 30.0).exp())).sin()
                        * (-since * 12.0).exp()
                } else {
                    0.0
                };
                let click = if i % (3 * beat + 17) == 0 { 0.8 } else { 0.0 };
                bass + chord + hat + kick + click
            })
            .collect()
    }

    /// Tech 3341 true-peak cases 15–19 (as tests/meters.rs makes them), back to back.
    pub(super) fn ebu_true_peak(fs: f64) -> Vec<f64> {
        let n = (fs * 0.1) as usize;
        let mut x = Vec::new();
        for (div, amp, phase) in [
            (4.0, 0.5, 0.0),
            (4.0, 0.5, 45.0),
            (6.0, 0.5, 60.0),
            (8.0, 0.5, 67.5),
            (4.0, 1.41, 45.0),
        ] {
            x.extend((0..n).map(|i| amp * (2.0 * PI * i as f64 / div + phase * PI / 180.0).sin()));
            x.extend(std::iter::repeat_n(0.0, 500));
        }
        x
    }

    /// Inter-sample-peak torture: the worst cases of both interpolators (±1 in the sign pattern
    /// of an 8× phase's impulse response, time-reversed, which meets the bound's L1 part with
    /// equality), ±1 patterns near fs/4 with phase offsets, sinc bursts at fs/2 − ε, a lone
    /// full-scale sample pair of opposite signs, white noise.
    pub(super) fn torture(fs: f64) -> Vec<f64> {
        let mut x = Vec::new();
        let mut it = HalfbandInterpolator::detector(8);
        let mut h = vec![0.0; 8 * 256];
        for (t, out) in h.chunks_exact_mut(8).enumerate() {
            it.interpolate(if t == 0 { 1.0 } else { 0.0 }, out);
        }
        for p in [1, 3, 4] {
            let c: Vec<f64> = (0..256).map(|j| h[8 * j + p]).collect();
            x.extend(c.iter().rev().map(|v| if *v < 0.0 { -1.0 } else { 1.0 }));
            x.extend(std::iter::repeat_n(0.0, 200));
        }
        let meter = MeterInterpolator::new(fs);
        for p in 1..meter.factor() {
            x.extend(
                meter
                    .coef
                    .iter()
                    .rev()
                    .map(|r| if r[p] < 0.0 { -1.0 } else { 1.0 }),
            );
            x.extend(std::iter::repeat_n(0.0, 200));
        }
        for (f, ph) in [(0.25, 0.785), (0.25, 0.0), (0.2437, 0.3), (0.2561, 1.1)] {
            x.extend((0..3000).map(|i| (2.0 * PI * f * i as f64 + ph).sin().signum()));
        }
        for k in 0..6 {
            let c = 0.49 - 0.01 * k as f64;
            x.extend((0..600).map(|i| {
                let u = (i as f64 - 300.0 + 0.37 * k as f64) * c * 2.0;
                if u == 0.0 {
                    1.0
                } else {
                    (PI * u).sin() / (PI * u)
                }
            }));
        }
        x.extend(std::iter::repeat_n(0.0, 300));
        x.extend([1.0, -1.0, 1.0, -1.0]);
        x.extend(std::iter::repeat_n(0.0, 300));
        let mut r = 5u64;
        x.extend((0..5000).map(|_| {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            2.0 * ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        }));
        x
    }

    /// Where the split bound's rough part decides: a slow loud tone under near-Nyquist content
    /// (a chirp from 0.35 to 0.49·fs, then bursts at fs/2 − ε whose inter-sample peaks lie
    /// between the samples), so that the readings over the samples come from the high band.
    pub(super) fn high_band(fs: f64) -> Vec<f64> {
        let n = 20_000;
        let mut x: Vec<f64> = (0..n)
            .map(|i| {
                // Instantaneous frequency 0.35 + 0.14·t cycles per sample.
                let t = i as f64 / n as f64;
                let low = 0.5 * (2.0 * PI * 60.0 * i as f64 / fs).sin();
                low + 0.3 * (2.0 * PI * (0.35 + 0.07 * t) * i as f64).sin()
            })
            .collect();
        for k in 0..8 {
            let f = 0.5 - 0.002 * (k + 1) as f64;
            let low = 0.2 * k as f64 - 0.7;
            x.extend((0..400).map(|i| {
                let env = (PI * i as f64 / 400.0).sin();
                low + 0.25 * env * (2.0 * PI * f * i as f64 + 0.5 * k as f64).sin()
            }));
        }
        x
    }

    /// Every reading above `threshold` has the full detector's bits, every other is at most
    /// `threshold`; and the limiter's required gain `min(1, thr/p)` is the same bits. Returns
    /// the share of steps read exactly.
    fn check_against_full(x: &[f64], fs: f64, threshold: f64, block: usize) -> f64 {
        check_factor_against_full(4, x, fs, threshold, block);
        check_factor_against_full(8, x, fs, threshold, block)
    }

    /// [`check_against_full`] at one factor; returns the share of steps read.
    fn check_factor_against_full(
        factor: usize,
        x: &[f64],
        fs: f64,
        threshold: f64,
        block: usize,
    ) -> f64 {
        let mut full = TruePeakDetector::new(factor, fs);
        let mut aware = full.clone();
        let (mut p, mut q) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        for (i, c) in x.chunks(block).enumerate() {
            let s = i * block;
            full.peaks(c, &mut p[s..s + c.len()]);
            aware.peaks_above(c, &mut q[s..s + c.len()], threshold);
        }
        let need = |p: f64| if p > threshold { threshold / p } else { 1.0 };
        let mut exact = 0;
        for (i, (&a, &b)) in p.iter().zip(&q).enumerate() {
            if a > threshold {
                assert_eq!(a.to_bits(), b.to_bits(), "step {i}: {a} read as {b}");
            } else {
                assert!(b <= threshold, "step {i}: {b} over {threshold}");
            }
            assert_eq!(need(a).to_bits(), need(b).to_bits());
            if a.to_bits() == b.to_bits() {
                exact += 1;
            }
        }
        exact as f64 / x.len() as f64
    }

    pub(super) fn peak(x: &[f64], fs: f64) -> f64 {
        let mut det = TruePeakDetector::new(8, fs);
        let mut p = vec![0.0; x.len()];
        det.peaks(x, &mut p);
        p.iter().fold(0.0, |m: f64, &v| m.max(v))
    }

    #[test]
    fn threshold_aware_readings_are_the_full_ones_above_the_threshold() {
        for portable in [true, false] {
            crate::dsp::simd::force_portable(portable);
            for fs in [44_100.0, 96_000.0] {
                // The bound on deviations is at its tightest where the signal sits far from 0
                // and moves little: the torture patterns riding on a large offset (of either
                // sign) and on a slow sine test it where it could be wrong.
                let riding = |offset: f64| -> Vec<f64> {
                    torture(fs)
                        .iter()
                        .enumerate()
                        .map(|(i, v)| offset * (1.0 + 0.2 * (i as f64 / fs * 7.0).sin()) + 0.25 * v)
                        .collect()
                };
                for (name, x) in [
                    ("music", music(60_000, fs)),
                    ("ebu 15-19", ebu_true_peak(fs)),
                    ("torture", torture(fs)),
                    ("torture on +0.6", riding(0.6)),
                    ("torture on -0.6", riding(-0.6)),
                    ("high band", high_band(fs)),
                ] {
                    let tp = peak(&x, fs);
                    // Thresholds from well over the peak (nothing to read) to well under it
                    // (almost everything), and block sizes that cut groups and chunks.
                    for db in [3.0, 0.001, 0.0, -0.001, -0.01, -1.0, -3.0, -6.0, -20.0] {
                        let thr = tp * 10f64.powf(db / 20.0);
                        for block in [1000, 7, 256, 4096] {
                            check_against_full(&x, fs, thr, block);
                        }
                        let _ = name;
                    }
                }
            }
        }
        crate::dsp::simd::force_portable(false);
    }

    /// The AVX2 build's decisions of which groups to read are the portable one's, group by
    /// group, on signals where the bounds sit close to the thresholds.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn hot_groups_decide_alike_on_every_path() {
        crate::dsp::simd::init();
        if !crate::dsp::simd::avx2() {
            return;
        }
        let fs = 48_000.0;
        let mut x = music(20_000, fs);
        x.extend(torture(fs).iter().map(|v| 0.6 + 0.25 * v));
        x.extend(torture(fs).iter().map(|v| -0.3 + 0.5 * v));
        for factor in [4, 8] {
            let mut det = TruePeakDetector::new(factor, fs);
            let tp = peak(&x, fs);
            let (mut decided, mut hot_seen) = (0, 0);
            let mut p = vec![0.0; TP_CHUNK];
            for (i, c) in x.chunks(TP_CHUNK).enumerate() {
                // Thresholds sweeping from the peak to 23 dB under it.
                let thr = tp * 10f64.powf(-((i % 24) as f64) / 20.0);
                det.peaks_above(c, &mut p[..c.len()], thr);
                let groups = c.len().div_ceil(GROUP);
                let mut wide = [false; TP_CHUNK / GROUP];
                let done = unsafe { det.hot_groups_avx2(thr, &mut wide[..groups]) };
                assert_eq!(done, groups / 4 * 4);
                for (g, &w) in wide.iter().enumerate().take(done) {
                    assert_eq!(w, det.hot(g, thr), "{factor}x chunk {i} group {g}");
                    hot_seen += usize::from(w);
                }
                decided += done;
            }
            assert!(
                hot_seen > decided / 10 && hot_seen < decided * 9 / 10,
                "{hot_seen} of {decided}"
            );
        }
    }

    #[test]
    fn group_maxima_agree_on_every_path() {
        crate::dsp::simd::init();
        if !crate::dsp::simd::avx2() {
            return;
        }
        let fs = 48_000.0;
        let mut det = TruePeakDetector::new(8, fs);
        let mut x = music(3 * TP_CHUNK, fs);
        // NaN passed over (also a whole group of it), infinities kept, a partial last group.
        x[5] = f64::NAN;
        x[300..308].fill(f64::NAN);
        x[400] = f64::INFINITY;
        x[401] = f64::NEG_INFINITY;
        for n in [TP_CHUNK, TP_CHUNK - 3, 13] {
            let hist = det.hist;
            det.raw[hist..hist + n].copy_from_slice(&x[..n]);
            let len = hist + n;
            let whole = len / GROUP;
            // SAFETY: the CPU has AVX2 (checked above).
            assert_eq!(unsafe { det.group_maxima_avx2(whole) }, whole);
            let (lo, hi) = (det.glo.clone(), det.ghi.clone());
            crate::dsp::simd::force_portable(true);
            det.group_maxima(n);
            crate::dsp::simd::force_portable(false);
            for g in 0..whole {
                assert_eq!(lo[g], det.glo[g], "low of group {g} of {n}");
                assert_eq!(hi[g], det.ghi[g], "high of group {g} of {n}");
            }
            // The differences' maxima likewise (from the two inputs before raw[0]).
            let before = [x[7], -x[9]];
            let mut d = [det.gd1.clone(), det.gd2.clone()];
            let [d1, d2] = &mut d;
            difference_maxima(&det.raw[..len], before, GROUP, d1, d2);
            crate::dsp::simd::force_portable(true);
            difference_maxima(&det.raw[..len], before, GROUP, &mut det.gd1, &mut det.gd2);
            crate::dsp::simd::force_portable(false);
            for g in 0..len.div_ceil(GROUP) {
                assert_eq!(
                    d[0][g].to_bits(),
                    det.gd1[g].to_bits(),
                    "Δ of group {g} of {n}"
                );
                assert_eq!(
                    d[1][g].to_bits(),
                    det.gd2[g].to_bits(),
                    "Δ² of group {g} of {n}"
                );
            }
            // And the window's maxima: those of the groups, on both paths.
            let wide = window_maxima(&det.raw[..len], before);
            crate::dsp::simd::force_portable(true);
            let narrow = window_maxima(&det.raw[..len], before);
            crate::dsp::simd::force_portable(false);
            let of = |v: &[f64]| {
                v[..len.div_ceil(GROUP)]
                    .iter()
                    .fold(0.0f64, |m, &x| m.max(x))
            };
            let mag: Vec<f64> = det
                .glo
                .iter()
                .zip(&det.ghi)
                .map(|(l, h)| h.max(-l))
                .collect();
            assert_eq!(
                wide.map(f64::to_bits),
                narrow.map(f64::to_bits),
                "window of {n}"
            );
            assert_eq!(
                wide,
                [of(&mag), of(&det.gd1), of(&det.gd2)],
                "window of {n}"
            );
            x.rotate_left(97);
        }
    }

    #[test]
    fn threshold_aware_mode_skips_what_stays_well_under_the_threshold() {
        let fs = 48_000.0;
        let x = music(96_000, fs);
        let tp = peak(&x, fs);
        let read = |db: f64| check_against_full(&x, fs, tp * 10f64.powf(db / 20.0), 512);
        let (six, one, none) = (read(6.0), read(1.0), read(-40.0));
        // 6 dB under its threshold most of the signal is skipped, 1 dB under less of it, and a
        // threshold far under the signal reads (nearly) everything.
        assert!(six < 0.25, "6 dB under: {six} read");
        assert!(one >= six && one < 0.9, "1 dB under: {one} read");
        assert!(none > 0.99, "far over: {none} read");
    }
}

#[cfg(test)]
mod split_tests {
    use super::tests::{ebu_true_peak, high_band, music, peak, torture};
    use super::*;

    /// The detector with a split bound so large it never decides: the screen before it.
    fn without_split(mut det: TruePeakDetector) -> TruePeakDetector {
        det.split.gain = 1e300;
        det.split.slope = 1e300;
        det.split.rough.fill(1e300);
        det.split.rough_sum = 1e300;
        det
    }

    /// The share of the steps of `x` that `det` reads exactly against `thr`.
    fn share_read(det: &mut TruePeakDetector, x: &[f64], thr: f64) -> f64 {
        let before = det.steps_read();
        let mut p = vec![0.0; 1024];
        for c in x.chunks(1024) {
            det.peaks_above(c, &mut p[..c.len()], thr);
        }
        (det.steps_read() - before) as f64 / x.len() as f64
    }

    /// The split bound of every group of steps is at least each of their full readings, on
    /// music, the EBU signals, the torture set (also riding on offsets) and near-Nyquist
    /// content, at both factors and at the rates where the meter runs 4× and 2×; and it is not
    /// vacuous: on music some group reads within 10 % of it.
    #[test]
    fn split_bound_holds_every_reading() {
        for (factor, fs) in [
            (8, 48_000.0),
            (4, 48_000.0),
            (8, 44_100.0),
            (8, 96_000.0),
            (4, 192_000.0),
        ] {
            let signals = [
                music(40_000, fs),
                ebu_true_peak(fs),
                torture(fs),
                torture(fs).iter().map(|v| 0.6 + 0.25 * v).collect(),
                torture(fs).iter().map(|v| -0.5 + 0.4 * v).collect(),
                high_band(fs),
            ];
            for (k, x) in signals.iter().enumerate() {
                let mut full = TruePeakDetector::new(factor, fs);
                let mut det = full.clone();
                let mut p = vec![0.0; TP_CHUNK];
                let mut tight = 0.0f64;
                for (c, chunk) in x.chunks(TP_CHUNK).enumerate() {
                    let n = chunk.len();
                    full.peaks(chunk, &mut p[..n]);
                    det.load(chunk);
                    let whole = det
                        .split
                        .chunk_bound(window_maxima(&det.raw[..det.hist + n], det.before));
                    for g in 0..n.div_ceil(GROUP) {
                        let bound = det.split_of(g);
                        assert!(bound <= whole, "{factor}x group {g}: {bound} over {whole}");
                        for (u, &r) in p[g * GROUP..((g + 1) * GROUP).min(n)].iter().enumerate() {
                            assert!(
                                r <= bound,
                                "{factor}x {fs} signal {k} chunk {c} step {}: {r} over {bound}",
                                g * GROUP + u
                            );
                            if bound > 0.0 {
                                tight = tight.max(r / bound);
                            }
                        }
                    }
                    det.advance(n);
                }
                if k == 0 {
                    assert!(
                        tight > 0.9,
                        "{factor}x {fs}: music reads {tight} of its bound at most"
                    );
                }
            }
        }
    }

    /// On music the split bound leaves far less to read than the screen before it: printed per
    /// threshold (under its true peak by 6, 3, 1, 0.5 and 0 dB), and a quarter at most of what
    /// the old screen reads from 1 dB under on.
    #[test]
    fn split_bound_reads_a_fraction_of_the_old_screen() {
        let fs = 48_000.0;
        let x = music(200_000, fs);
        let tp = peak(&x, fs);
        for factor in [4, 8] {
            let det = TruePeakDetector::new(factor, fs);
            let s = &det.split;
            eprintln!(
                "{factor}x: window {} inputs; split gain {:.4}, slope {:.4}, rough sum {:.3}",
                det.hist, s.gain, s.slope, s.rough_sum
            );
            for db in [6.0, 3.0, 1.0, 0.5, 0.0] {
                let thr = tp * 10f64.powf(db / 20.0);
                let mut new = TruePeakDetector::new(factor, fs);
                let mut old = without_split(new.clone());
                let (a, b) = (share_read(&mut new, &x, thr), share_read(&mut old, &x, thr));
                eprintln!("{factor}x, threshold {db} dB over the peak: {:.3} % of the steps read, {:.3} % before the split bound", 100.0 * a, 100.0 * b);
                if db <= 1.0 {
                    assert!(a * 4.0 < b, "{factor}x {db} dB: {a} read, {b} before");
                }
            }
        }
    }
}
