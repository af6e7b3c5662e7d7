//! Sample-level statistics: sample peak, RMS, DC offset, stereo correlation and width,
//! crest factor, clipping and effective word length.

use super::db::lin_to_db;

/// Default clip threshold: 32767/32768, the largest positive 16-bit value, so that
/// full-scale samples of integer formats count whatever their sign.
pub const DEFAULT_CLIP_THRESHOLD: f64 = 1.0 - 1.0 / 32768.0;
/// Default minimum length of a run of consecutive full-scale samples counted as a clip.
pub const DEFAULT_MIN_CLIP_RUN: u64 = 3;

/// Exponent of the lowest set bit of `x` (`x = odd · 2^e`); `i32::MAX` for zero. Infinities
/// and NaN give large exponents, so they never lower the result. Branch-free.
#[inline(always)]
fn lsb_exponent(x: f64) -> i32 {
    let bits = x.to_bits() & !(1u64 << 63);
    let e = (bits >> 52) as i32;
    let m = bits & ((1u64 << 52) - 1);
    let sig = if e == 0 { m } else { m | (1u64 << 52) };
    let q = e.max(1) - 1075 + sig.trailing_zeros() as i32;
    if sig == 0 {
        i32::MAX
    } else {
        q
    }
}

/// Bit depth implied by the lowest set-bit exponent: smallest `b` in 8..=32 with every
/// sample a multiple of `2^-(b-1)`, or `None` if finer than 32 bits.
fn bits_for(min_exp: i32) -> Option<u32> {
    if min_exp == i32::MAX {
        return Some(8);
    }
    let b = (1i64 - min_exp as i64).max(8);
    (b <= 32).then_some(b as u32)
}

/// Sums are kept in four lanes, sample `i` (counted from the start of the stream) going to
/// lane `i % 4`: that breaks the add-latency chain, and the result does not depend on how the
/// stream was split into blocks. Lanes are combined as `(l0 + l1) + (l2 + l3)`.
type Lanes = [f64; 4];

fn lanes_total(l: &Lanes) -> f64 {
    (l[0] + l[1]) + (l[2] + l[3])
}

/// Round-to-integer constant: `(y + C) - C` is `y` rounded to an integer for |y| ≤ 2^51.
const ROUND_C: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
/// Samples louder than this take the exact (slow) word-length path.
const FAST_WORD_LIMIT: f64 = 1_048_576.0; // 2^20

/// Per-sample work that vectorizes: lane sums, lane peaks, and whether `x · scale` is not
/// an integer (or `x` is too large or not finite for the fast test).
#[inline(always)]
fn step(st: &mut Lanes4, j: usize, x: f64, scale: f64) {
    st.sum[j] += x;
    st.sum_sq[j] += x * x;
    let a = x.abs();
    if a > st.peak[j] {
        st.peak[j] = a;
    }
    let y = x * scale;
    let r = (y + ROUND_C) - ROUND_C;
    st.odd[j] |= (r != y) | (a > FAST_WORD_LIMIT) | a.is_nan();
}

/// [`step`] over `input`, whose first sample goes to lane 0. On CPUs with AVX2 the four lanes
/// are one register each, written out with intrinsics (the compiler's build of the portable loop
/// for AVX2 measured 40 % slower than the SSE2 one: it packs the word-length flags to bytes every
/// step); the same operations on each lane, so the same sums and peaks.
fn lane_pass(l: &mut Lanes4, input: &[f64], scale: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { lane_pass_avx2(l, input, scale) };
    }
    lane_pass_body(l, input, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lane_pass_avx2(l: &mut Lanes4, input: &[f64], scale: f64) {
    use std::arch::x86_64::*;
    // SAFETY (loads and stores): each names a whole [f64; 4] or a whole chunk of 4.
    let load = |v: &Lanes| unsafe { _mm256_loadu_pd(v.as_ptr()) };
    let (mut sum, mut sum_sq, mut peak) = (load(&l.sum), load(&l.sum_sq), load(&l.peak));
    let mut odd = _mm256_setzero_pd();
    let sign = _mm256_set1_pd(-0.0);
    let vscale = _mm256_set1_pd(scale);
    let round = _mm256_set1_pd(ROUND_C);
    let limit = _mm256_set1_pd(FAST_WORD_LIMIT);
    let mut chunks = input.chunks_exact(4);
    for c in &mut chunks {
        let x = unsafe { _mm256_loadu_pd(c.as_ptr()) };
        sum = _mm256_add_pd(sum, x);
        sum_sq = _mm256_add_pd(sum_sq, _mm256_mul_pd(x, x));
        let a = _mm256_andnot_pd(sign, x);
        // `a > peak ? a : peak`, as the scalar comparison (a NaN keeps the peak).
        peak = _mm256_max_pd(a, peak);
        let y = _mm256_mul_pd(x, vscale);
        let r = _mm256_sub_pd(_mm256_add_pd(y, round), round);
        odd = _mm256_or_pd(odd, _mm256_cmp_pd::<_CMP_NEQ_UQ>(r, y));
        odd = _mm256_or_pd(odd, _mm256_cmp_pd::<_CMP_GT_OQ>(a, limit));
        odd = _mm256_or_pd(odd, _mm256_cmp_pd::<_CMP_UNORD_Q>(a, a));
    }
    let store = |v: &mut Lanes, x| unsafe { _mm256_storeu_pd(v.as_mut_ptr(), x) };
    store(&mut l.sum, sum);
    store(&mut l.sum_sq, sum_sq);
    store(&mut l.peak, peak);
    let mask = _mm256_movemask_pd(odd);
    for (j, o) in l.odd.iter_mut().enumerate() {
        *o |= mask & (1 << j) != 0;
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        step(l, j, x, scale);
    }
}

#[inline(always)]
fn lane_pass_body(l: &mut Lanes4, input: &[f64], scale: f64) {
    let mut chunks = input.chunks_exact(4);
    for c in &mut chunks {
        for (j, &x) in c.iter().enumerate() {
            step(l, j, x, scale);
        }
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        step(l, j, x, scale);
    }
}

/// [`lane_pass`] of two channels and the lanes of `Σ L·R` in one pass over the samples (the
/// first of each goes to lane 0), each lane's operations those of [`lane_pass`] and of the
/// scalar `L·R` sum: the same sums, peaks and flags. `words`: whether the word-length flags
/// are wanted (left as they are otherwise: floating-point content needs them no more).
fn stereo_pass(l: [&mut Lanes4; 2], lr: &mut Lanes, x: [&[f64]; 2], scale: [f64; 2], words: bool) {
    let n = x[0].len().min(x[1].len());
    let x = [&x[0][..n], &x[1][..n]];
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX2 and AVX-512F (checked at run time).
        return unsafe {
            if words {
                stereo_pass_avx512::<true>(l, lr, x, scale)
            } else {
                stereo_pass_avx512::<false>(l, lr, x, scale)
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe {
            if words {
                stereo_pass_avx2::<true>(l, lr, x, scale)
            } else {
                stereo_pass_avx2::<false>(l, lr, x, scale)
            }
        };
    }
    stereo_steps(l, lr, x, scale);
}

/// [`stereo_pass`] one frame at a time by [`step`] (the first frame to lane 0): the portable
/// build, and the vector builds' last frames.
#[inline(always)]
fn stereo_steps([a, b]: [&mut Lanes4; 2], lr: &mut Lanes, x: [&[f64]; 2], scale: [f64; 2]) {
    for (k, (p, q)) in x[0].iter().zip(x[1]).enumerate() {
        let j = k % 4;
        step(a, j, *p, scale[0]);
        step(b, j, *q, scale[1]);
        lr[j] += p * q;
    }
}

/// [`stereo_pass`] four frames at a time in AVX2 registers (`WORDS`: with the word-length
/// flags); the last frames by [`step`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn stereo_pass_avx2<const WORDS: bool>(
    l: [&mut Lanes4; 2],
    lr: &mut Lanes,
    x: [&[f64]; 2],
    scale: [f64; 2],
) {
    use std::arch::x86_64::*;
    // SAFETY (loads and stores): each names a whole [f64; 4] or a whole chunk of 4.
    let load = |v: &Lanes| unsafe { _mm256_loadu_pd(v.as_ptr()) };
    let store = |v: &mut Lanes, x| unsafe { _mm256_storeu_pd(v.as_mut_ptr(), x) };
    let [a, b] = l;
    let mut sum = [load(&a.sum), load(&b.sum)];
    let mut sum_sq = [load(&a.sum_sq), load(&b.sum_sq)];
    let mut peak = [load(&a.peak), load(&b.peak)];
    let mut odd = [_mm256_setzero_pd(); 2];
    let mut cross = load(lr);
    let sign = _mm256_set1_pd(-0.0);
    let vscale = [_mm256_set1_pd(scale[0]), _mm256_set1_pd(scale[1])];
    let round = _mm256_set1_pd(ROUND_C);
    let limit = _mm256_set1_pd(FAST_WORD_LIMIT);
    let (mut lc, mut rc) = (x[0].chunks_exact(4), x[1].chunks_exact(4));
    for (p, q) in (&mut lc).zip(&mut rc) {
        let v = unsafe { [_mm256_loadu_pd(p.as_ptr()), _mm256_loadu_pd(q.as_ptr())] };
        cross = _mm256_add_pd(cross, _mm256_mul_pd(v[0], v[1]));
        for c in 0..2 {
            let x = v[c];
            sum[c] = _mm256_add_pd(sum[c], x);
            sum_sq[c] = _mm256_add_pd(sum_sq[c], _mm256_mul_pd(x, x));
            let a = _mm256_andnot_pd(sign, x);
            // `a > peak ? a : peak`, as the scalar comparison (a NaN keeps the peak).
            peak[c] = _mm256_max_pd(a, peak[c]);
            if WORDS {
                // Not an integer once scaled (a NaN compares unequal to itself: flagged here
                // as `step` flags it), or too large for the rounding trick.
                let y = _mm256_mul_pd(x, vscale[c]);
                let r = _mm256_sub_pd(_mm256_add_pd(y, round), round);
                let flags = _mm256_or_pd(
                    _mm256_cmp_pd::<_CMP_NEQ_UQ>(r, y),
                    _mm256_cmp_pd::<_CMP_GT_OQ>(a, limit),
                );
                odd[c] = _mm256_or_pd(odd[c], flags);
            }
        }
    }
    store(lr, cross);
    for (c, m) in [&mut *a, &mut *b].into_iter().enumerate() {
        m.put_back(
            [sum[c], sum_sq[c], peak[c]],
            _mm256_movemask_pd(odd[c]) as u32,
        );
    }
    stereo_steps([a, b], lr, [lc.remainder(), rc.remainder()], scale);
}

/// [`stereo_pass_avx2`] with the two channels' lanes in one AVX-512 register (the left's in
/// the low four, the right's in the high four): one instruction where that build has two, the
/// same operations on each lane, so the same sums, peaks and flags (`Σ L·R` in an AVX2
/// register, as there); the last frames by [`step`]. The pass is bound by how many operations
/// the CPU issues, not by their latency: on the AMD EPYC (Zen 5) of the benchmark machine,
/// half the instructions for each four frames.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
fn stereo_pass_avx512<const WORDS: bool>(
    l: [&mut Lanes4; 2],
    lr: &mut Lanes,
    x: [&[f64]; 2],
    scale: [f64; 2],
) {
    use std::arch::x86_64::*;
    // SAFETY (loads and stores): each names a whole [f64; 4] or a whole chunk of 4.
    let load = |v: &Lanes| unsafe { _mm256_loadu_pd(v.as_ptr()) };
    let store = |v: &mut Lanes, x| unsafe { _mm256_storeu_pd(v.as_mut_ptr(), x) };
    // The left's lanes and the right's in one register, and back.
    let join = |a: __m256d, b: __m256d| _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(a), b);
    let halves = |v: __m512d| [_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd::<1>(v)];
    let [a, b] = l;
    let mut sum = join(load(&a.sum), load(&b.sum));
    let mut sum_sq = join(load(&a.sum_sq), load(&b.sum_sq));
    let mut peak = join(load(&a.peak), load(&b.peak));
    let mut odd: __mmask8 = 0;
    let mut cross = load(lr);
    let vscale = join(_mm256_set1_pd(scale[0]), _mm256_set1_pd(scale[1]));
    let round = _mm512_set1_pd(ROUND_C);
    let limit = _mm512_set1_pd(FAST_WORD_LIMIT);
    let (mut lc, mut rc) = (x[0].chunks_exact(4), x[1].chunks_exact(4));
    for (p, q) in (&mut lc).zip(&mut rc) {
        let (vl, vr) = unsafe { (_mm256_loadu_pd(p.as_ptr()), _mm256_loadu_pd(q.as_ptr())) };
        cross = _mm256_add_pd(cross, _mm256_mul_pd(vl, vr));
        let x = join(vl, vr);
        sum = _mm512_add_pd(sum, x);
        sum_sq = _mm512_add_pd(sum_sq, _mm512_mul_pd(x, x));
        let a = _mm512_abs_pd(x);
        // `a > peak ? a : peak`, as the scalar comparison (a NaN keeps the peak).
        peak = _mm512_max_pd(a, peak);
        if WORDS {
            // As in `stereo_pass_avx2`.
            let y = _mm512_mul_pd(x, vscale);
            let r = _mm512_sub_pd(_mm512_add_pd(y, round), round);
            odd |= _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(r, y)
                | _mm512_cmp_pd_mask::<_CMP_GT_OQ>(a, limit);
        }
    }
    store(lr, cross);
    let (sum, sum_sq, peak) = (halves(sum), halves(sum_sq), halves(peak));
    for (c, m) in [&mut *a, &mut *b].into_iter().enumerate() {
        m.put_back([sum[c], sum_sq[c], peak[c]], u32::from(odd) >> (4 * c));
    }
    stereo_steps([a, b], lr, [lc.remainder(), rc.remainder()], scale);
}

/// Lane accumulators of one channel during a block.
struct Lanes4 {
    sum: Lanes,
    sum_sq: Lanes,
    peak: Lanes,
    odd: [bool; 4],
}

impl Lanes4 {
    /// Takes back a vector build's registers (sum, sum of squares, peak: lane j in element j)
    /// and ORs its word-length flags in (lane j's in bit j of `odd`).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn put_back(&mut self, [sum, sum_sq, peak]: [std::arch::x86_64::__m256d; 3], odd: u32) {
        use std::arch::x86_64::_mm256_storeu_pd;
        // SAFETY: each store writes a whole [f64; 4]; AVX is implied by the AVX2 and AVX-512
        // builds that call this (inlined into them).
        unsafe {
            _mm256_storeu_pd(self.sum.as_mut_ptr(), sum);
            _mm256_storeu_pd(self.sum_sq.as_mut_ptr(), sum_sq);
            _mm256_storeu_pd(self.peak.as_mut_ptr(), peak);
        }
        for (j, o) in self.odd.iter_mut().enumerate() {
            *o |= odd & (1 << j) != 0;
        }
    }
}

#[derive(Clone, Debug)]
struct ChannelStats {
    peak: f64,
    sum: Lanes,
    sum_sq: Lanes,
    clipped: u64,
    run: u64,
    runs: u64,
    longest_run: u64,
    min_exp: i32,
}

impl ChannelStats {
    /// The lane accumulators a block starts from, the word-length test's scale and the word
    /// length so far (`None`: finer than 32 bits, the test no longer matters).
    fn lanes(&self) -> (Lanes4, f64, Option<u32>) {
        let bits = bits_for(self.min_exp);
        let scale = libm::ldexp(1.0, bits.map_or(0, |b| b as i32 - 1));
        let l = Lanes4 {
            sum: self.sum,
            sum_sq: self.sum_sq,
            peak: [0.0; 4],
            odd: [false; 4],
        };
        (l, scale, bits)
    }

    /// Takes in the lanes `l` of block `input` (measured with word length `bits` so far): the
    /// sums, the peak, the word length and the clipping (clip threshold `thr`, runs of at
    /// least `min_run` samples).
    fn close(&mut self, l: &Lanes4, input: &[f64], bits: Option<u32>, thr: f64, min_run: u64) {
        self.sum = l.sum;
        self.sum_sq = l.sum_sq;
        let block_peak = l
            .peak
            .iter()
            .fold(0.0f64, |m, &v| if v > m { v } else { m });
        if block_peak > self.peak {
            self.peak = block_peak;
        }
        // Word length: exact exponents only for blocks that need more bits than so far
        // (at most ~25 times per stream, or once for floating-point content).
        if bits.is_some() && l.odd.iter().any(|&o| o) {
            self.min_exp = input
                .iter()
                .fold(self.min_exp, |m, &x| m.min(lsb_exponent(x)));
        }
        // Clipping: a sequential scan, only when this block can clip or a run is open.
        if block_peak >= thr || self.run > 0 {
            for &x in input.iter() {
                if x.abs() >= thr {
                    self.clipped += 1;
                    self.run += 1;
                } else if self.run > 0 {
                    if self.run >= min_run {
                        self.runs += 1;
                    }
                    self.longest_run = self.longest_run.max(self.run);
                    self.run = 0;
                }
            }
        }
    }
}

impl Default for ChannelStats {
    fn default() -> Self {
        Self {
            peak: 0.0,
            sum: [0.0; 4],
            sum_sq: [0.0; 4],
            clipped: 0,
            run: 0,
            runs: 0,
            longest_run: 0,
            min_exp: i32::MAX,
        }
    }
}

/// Whole-programme level statistics, streamed; `push` does not allocate and the results do
/// not depend on the block size. Stereo measures use channels 0 and 1 (L, R).
#[derive(Clone, Debug)]
pub struct LevelMeter {
    stats: Box<[ChannelStats]>,
    frames: u64,
    /// Σ L·R.
    sum_lr: Lanes,
    clip_threshold: f64,
    min_clip_run: u64,
}

impl LevelMeter {
    /// A meter for `channels` channels (clip threshold 32767/32768, clip runs of ≥ 3 samples).
    pub fn new(channels: usize) -> Self {
        assert!(channels > 0, "LevelMeter needs at least one channel");
        Self {
            stats: vec![ChannelStats::default(); channels].into_boxed_slice(),
            frames: 0,
            sum_lr: [0.0; 4],
            clip_threshold: DEFAULT_CLIP_THRESHOLD,
            min_clip_run: DEFAULT_MIN_CLIP_RUN,
        }
    }

    /// Sets the magnitude from which a sample counts as clipped (before measuring).
    pub fn set_clip_threshold(&mut self, threshold: f64) {
        self.clip_threshold = threshold;
    }

    /// Sets the shortest run of consecutive clipped samples counted by [`clip_runs`](Self::clip_runs).
    pub fn set_min_clip_run(&mut self, samples: u64) {
        self.min_clip_run = samples.max(1);
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.stats.len()
    }

    /// Frames measured.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Measures a block of planar audio (one slice per channel, equal lengths). A stereo block
    /// is read in one pass (both channels' statistics and `Σ L·R` together, [`stereo_pass`]);
    /// other layouts channel by channel. Either way each lane adds the same values in the same
    /// order, so the readings are the same.
    pub fn push(&mut self, planar: &[&[f64]]) {
        assert_eq!(planar.len(), self.stats.len(), "wrong channel count");
        let n = planar[0].len();
        assert!(
            planar.iter().all(|c| c.len() == n),
            "channel slices differ in length"
        );
        let start = self.frames;
        // Samples before the first stream index divisible by 4 (they go to their own lanes).
        let head = (((4 - start % 4) % 4) as usize).min(n);
        if let ([l, r], [sl, sr]) = (planar, &mut *self.stats) {
            let (mut a, scale_l, bits_l) = sl.lanes();
            let (mut b, scale_r, bits_r) = sr.lanes();
            for i in 0..head {
                let j = ((start + i as u64) % 4) as usize;
                step(&mut a, j, l[i], scale_l);
                step(&mut b, j, r[i], scale_r);
                self.sum_lr[j] += l[i] * r[i];
            }
            // The word-length flags only matter to a channel still within 32 bits.
            let words = bits_l.is_some() || bits_r.is_some();
            stereo_pass(
                [&mut a, &mut b],
                &mut self.sum_lr,
                [&l[head..], &r[head..]],
                [scale_l, scale_r],
                words,
            );
            let (thr, min_run) = (self.clip_threshold, self.min_clip_run);
            sl.close(&a, l, bits_l, thr, min_run);
            sr.close(&b, r, bits_r, thr, min_run);
            self.frames += n as u64;
            return;
        }
        for (st, input) in self.stats.iter_mut().zip(planar) {
            let (mut l, scale, bits) = st.lanes();
            for (i, &x) in input[..head].iter().enumerate() {
                step(&mut l, ((start + i as u64) % 4) as usize, x, scale);
            }
            lane_pass(&mut l, &input[head..], scale);
            st.close(&l, input, bits, self.clip_threshold, self.min_clip_run);
        }
        if planar.len() >= 2 {
            let (l, r) = (planar[0], planar[1]);
            for i in 0..head {
                self.sum_lr[((start + i as u64) % 4) as usize] += l[i] * r[i];
            }
            let mut acc = self.sum_lr;
            let mut lc = l[head..].chunks_exact(4);
            let mut rc = r[head..].chunks_exact(4);
            for (a, b) in (&mut lc).zip(&mut rc) {
                for j in 0..4 {
                    acc[j] += a[j] * b[j];
                }
            }
            for (j, (a, b)) in lc.remainder().iter().zip(rc.remainder()).enumerate() {
                acc[j] += a * b;
            }
            self.sum_lr = acc;
        }
        self.frames += n as u64;
    }

    /// Highest sample magnitude of a channel, linear.
    pub fn channel_sample_peak(&self, ch: usize) -> f64 {
        self.stats[ch].peak
    }

    /// Highest sample magnitude of a channel, dBFS.
    pub fn channel_sample_peak_dbfs(&self, ch: usize) -> f64 {
        lin_to_db(self.stats[ch].peak)
    }

    /// Highest sample magnitude over all channels, linear.
    pub fn sample_peak(&self) -> f64 {
        self.stats.iter().map(|s| s.peak).fold(0.0, f64::max)
    }

    /// Highest sample magnitude over all channels, dBFS.
    pub fn sample_peak_dbfs(&self) -> f64 {
        lin_to_db(self.sample_peak())
    }

    /// RMS of a channel, linear (0 before any sample).
    pub fn channel_rms(&self, ch: usize) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        libm::sqrt(lanes_total(&self.stats[ch].sum_sq) / self.frames as f64)
    }

    /// RMS of a channel, dBFS (`20·log10(rms)`: a full-scale sine reads −3.01 dBFS).
    pub fn channel_rms_dbfs(&self, ch: usize) -> f64 {
        lin_to_db(self.channel_rms(ch))
    }

    /// RMS over all samples of all channels, linear.
    pub fn rms(&self) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        let total: f64 = self.stats.iter().map(|s| lanes_total(&s.sum_sq)).sum();
        libm::sqrt(total / (self.frames as f64 * self.stats.len() as f64))
    }

    /// RMS over all samples of all channels, dBFS.
    pub fn rms_dbfs(&self) -> f64 {
        lin_to_db(self.rms())
    }

    /// Mean (DC offset) of a channel, linear.
    pub fn dc_offset(&self, ch: usize) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        lanes_total(&self.stats[ch].sum) / self.frames as f64
    }

    /// Crest factor of a channel, dB (peak dBFS − RMS dBFS; a sine reads 3.01 dB).
    pub fn channel_crest_factor_db(&self, ch: usize) -> f64 {
        lin_to_db(self.stats[ch].peak / self.channel_rms(ch))
    }

    /// Crest factor over all channels, dB (overall peak over overall RMS).
    pub fn crest_factor_db(&self) -> f64 {
        lin_to_db(self.sample_peak() / self.rms())
    }

    /// Pearson correlation of L and R over everything measured, in −1..=1: 1 for identical
    /// channels, −1 for inverted ones; 1 for mono; 0 if either channel is constant.
    pub fn correlation(&self) -> f64 {
        if self.stats.len() < 2 {
            return 1.0;
        }
        if self.frames == 0 {
            return 0.0;
        }
        let n = self.frames as f64;
        let (l, r) = (&self.stats[0], &self.stats[1]);
        let (ml, mr) = (lanes_total(&l.sum) / n, lanes_total(&r.sum) / n);
        let cov = lanes_total(&self.sum_lr) / n - ml * mr;
        let vl = lanes_total(&l.sum_sq) / n - ml * ml;
        let vr = lanes_total(&r.sum_sq) / n - mr * mr;
        if vl <= 0.0 || vr <= 0.0 {
            return 0.0;
        }
        (cov / (libm::sqrt(vl) * libm::sqrt(vr))).clamp(-1.0, 1.0)
    }

    /// Stereo width: side energy over mid energy (M = (L+R)/2, S = (L−R)/2); 0 for identical
    /// channels and mono, 1 for uncorrelated channels of equal level, `inf` for inverted ones.
    pub fn width(&self) -> f64 {
        if self.stats.len() < 2 {
            return 0.0;
        }
        let (ll, rr, lr) = (
            lanes_total(&self.stats[0].sum_sq),
            lanes_total(&self.stats[1].sum_sq),
            lanes_total(&self.sum_lr),
        );
        let mid = (ll + rr + 2.0 * lr).max(0.0);
        let side = (ll + rr - 2.0 * lr).max(0.0);
        if side == 0.0 {
            0.0
        } else {
            side / mid
        }
    }

    /// Samples at or above the clip threshold in a channel.
    pub fn channel_clipped_samples(&self, ch: usize) -> u64 {
        self.stats[ch].clipped
    }

    /// Samples at or above the clip threshold over all channels.
    pub fn clipped_samples(&self) -> u64 {
        self.stats.iter().map(|s| s.clipped).sum()
    }

    /// Runs of at least `min_clip_run` consecutive clipped samples in a channel.
    pub fn channel_clip_runs(&self, ch: usize) -> u64 {
        let s = &self.stats[ch];
        s.runs + u64::from(s.run >= self.min_clip_run)
    }

    /// Runs of at least `min_clip_run` consecutive clipped samples over all channels.
    pub fn clip_runs(&self) -> u64 {
        (0..self.stats.len())
            .map(|c| self.channel_clip_runs(c))
            .sum()
    }

    /// Longest run of consecutive clipped samples in any channel.
    pub fn longest_clip_run(&self) -> u64 {
        self.stats
            .iter()
            .map(|s| s.longest_run.max(s.run))
            .max()
            .unwrap_or(0)
    }

    /// Effective word length of a channel: the smallest bit depth `b` in 8..=32 such that
    /// every sample is a multiple of `2^-(b-1)`; `None` for finer (floating-point) content.
    pub fn channel_effective_bits(&self, ch: usize) -> Option<u32> {
        bits_for(self.stats[ch].min_exp)
    }

    /// Effective word length over all channels (see
    /// [`channel_effective_bits`](Self::channel_effective_bits)).
    pub fn effective_bits(&self) -> Option<u32> {
        bits_for(
            self.stats
                .iter()
                .map(|s| s.min_exp)
                .min()
                .unwrap_or(i32::MAX),
        )
    }

    /// Forgets everything measured (keeps the clip settings).
    pub fn reset(&mut self) {
        self.stats.fill(ChannelStats::default());
        self.frames = 0;
        self.sum_lr = [0.0; 4];
    }
}

#[cfg(test)]
mod simd_tests {
    use super::*;

    /// Music-like samples with the cases the word-length test and the peaks care about: 16- and
    /// 24-bit values, full scale, huge values, infinities, NaN.
    fn signal(n: usize, special: bool) -> Vec<f64> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let u = (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                match (special, i % 97) {
                    (true, 5) => f64::NAN,
                    (true, 17) => f64::INFINITY,
                    (true, 29) => -3.0e6,
                    (true, 41) => 1.0,
                    _ if i < n / 3 => libm::round(u * 32767.0) / 32768.0,
                    _ if i < 2 * n / 3 => libm::round(u * 8_388_607.0) / 8_388_608.0,
                    _ => u * 0.9,
                }
            })
            .collect()
    }

    /// A stereo block is read in one pass over both channels ([`stereo_pass`]); the channels of
    /// any other layout one by one, then `Σ L·R`. The two give the same state, bit for bit:
    /// a stereo meter's against the first two channels of a three-channel meter's (the third
    /// silent), on both builds, for blocks of every size (16- and 24-bit stretches, floating
    /// point, NaN, infinities, clipping).
    #[test]
    fn the_stereo_pass_reads_as_channel_by_channel() {
        crate::dsp::simd::init();
        for special in [false, true] {
            let l = signal(10_007, special);
            let r: Vec<f64> = l.iter().rev().map(|v| -0.5 * v).collect();
            let silent = vec![0.0; l.len()];
            for portable in [false, true] {
                crate::dsp::simd::force_portable(portable);
                for block in [1, 3, 64, 511, 4096] {
                    let mut stereo = LevelMeter::new(2);
                    let mut three = LevelMeter::new(3);
                    for ((a, b), c) in l
                        .chunks(block)
                        .zip(r.chunks(block))
                        .zip(silent.chunks(block))
                    {
                        stereo.push(&[a, b]);
                        three.push(&[a, b, c]);
                    }
                    let at = format!("block {block}, special {special}, portable {portable}");
                    assert_eq!(
                        format!("{:?}", &stereo.stats[..]),
                        format!("{:?}", &three.stats[..2]),
                        "{at}"
                    );
                    assert_eq!(
                        stereo.sum_lr.map(f64::to_bits),
                        three.sum_lr.map(f64::to_bits)
                    );
                    assert_eq!(stereo.frames(), three.frames());
                    if special {
                        assert!(stereo.clipped_samples() > 0, "{at}: the signal clips");
                    }
                }
                crate::dsp::simd::force_portable(false);
            }
        }
    }

    /// The AVX2 and the AVX-512 passes (where the CPU has them) leave the state of the
    /// portable one, bit for bit.
    #[test]
    fn the_vector_passes_read_as_the_portable_one() {
        crate::dsp::simd::init();
        for special in [false, true] {
            let l = signal(10_007, special);
            let r: Vec<f64> = l.iter().rev().map(|v| 0.75 * v).collect();
            let run = |portable: bool, avx2_only: bool, block: usize| {
                crate::dsp::simd::force_portable(portable);
                crate::dsp::simd::force_avx2(avx2_only);
                let mut m = LevelMeter::new(2);
                for (a, b) in l.chunks(block).zip(r.chunks(block)) {
                    m.push(&[a, b]);
                }
                crate::dsp::simd::force_portable(false);
                crate::dsp::simd::force_avx2(false);
                format!("{m:?}")
            };
            // The whole state (the word-length exponent stops moving past 32 bits at a point
            // that depends on the blocks, so each block size against its own portable run).
            for block in [1, 3, 64, 511, 4096] {
                let want = run(true, false, block);
                for avx2_only in [true, false] {
                    assert_eq!(
                        run(false, avx2_only, block),
                        want,
                        "block {block}, special {special}, AVX2 only {avx2_only}"
                    );
                }
            }
        }
    }
}
