//! The fast path's per-frame kernels, each built portable, for AVX2 and for AVX-512 (picked at
//! run time; every build computes the same bits): the static curve's reductions of a chunk, the
//! gains applied, and the ballistics of up to eight tracks in AVX2 registers. The gain stage of
//! the other dynamics processors ([`crate::dsp::dynamics::core::GainStage`], the multiband's
//! bands) runs on the same kernels.

use crate::dsp::dynamics::core::{ballistics, fmax, Chunk, TrackCoefs, CHUNK};
use crate::dsp::dynamics::fastmath;

/// Whether every detector value `max(|a|, |b|)` of a chunk is at or under `quiet` (a NaN is
/// not): tested value by value and combined, which vectorises, where a running maximum waits on
/// each comparison in turn.
#[inline(always)]
pub(super) fn all_quiet(a: &[f64], b: &[f64], quiet: f64) -> bool {
    let under = |v: f64| v <= quiet;
    a.iter()
        .zip(b)
        .fold(true, |q, (&x, &y)| q & under(fmax(x.abs(), y.abs())))
}

/// The base-2 logarithms of the detector values `max(|a|, |b|)` into `t`, as
/// [`fastmath::level_log2`] computes them, frame by frame.
#[inline(always)]
fn levels(a: &[f64], b: &[f64], t: &mut [f64]) {
    for ((t, &x), &y) in t.iter_mut().zip(a).zip(b) {
        *t = fastmath::level_log2(fmax(x.abs(), y.abs()));
    }
}

/// The gains (before the mix) of the smoothed reductions `g` into `w`: 10^((makeup − g)/20), as
/// [`fastmath::db_to_amp`] computes them, frame by frame.
#[inline(always)]
fn gains(g: &[f64], makeup: f64, w: &mut [f64]) {
    for (w, &g) in w.iter_mut().zip(g) {
        *w = fastmath::db_to_amp(makeup - g);
    }
}

/// Static-curve reductions of the detector values `|a|`, `|b|` (the louder of the two; pass the
/// same slice twice for one channel; mean squares are never negative), with `levels` (a build
/// of [`levels`]) for their logarithms. When every value of a chunk's length of frames is at
/// or under `quiet`, below the knee by a margin, every reduction there is exactly 0 and the
/// logarithms are skipped; the others run in one pass per run of such pieces. (Skipping them
/// for quiet groups of four frames in a louder chunk was tried: slower, the branch
/// mispredicts.)
#[inline(always)]
fn peak_targets_with(
    levels: impl Fn(&[f64], &[f64], &mut [f64]),
    (a, b): (&[f64], &[f64]),
    scale: f64,
    c: &TrackCoefs,
    quiet: f64,
    t: &mut [f64],
) {
    let n = t.len().min(a.len()).min(b.len());
    // (Written out, not as a closure: one not inlined would lose the kernels' target features.)
    let mut start = 0;
    while start < n {
        // A run of pieces that are not quiet, then the quiet piece that ends it (if any).
        let (mut end, mut quiet_end) = (start, None);
        while end < n {
            let next = (end + CHUNK).min(n);
            if all_quiet(&a[end..next], &b[end..next], quiet) {
                quiet_end = Some(next);
                break;
            }
            end = next;
        }
        if start < end {
            let t = &mut t[start..end];
            levels(&a[start..end], &b[start..end], t);
            for t in t.iter_mut() {
                *t = c.curve.reduction_db(scale * *t);
            }
        }
        if let Some(next) = quiet_end {
            t[end..next].fill(0.0);
            end = next;
        }
        start = end;
    }
}

/// Frames whose gains [`apply2_with`] and [`apply1_with`] compute in one pass (a pass's
/// set-up costs about a third of a chunk's work).
const GAINS_PASS: usize = 4 * CHUNK;

/// `x ← (x·((1 − mix) + mix·gain))·post`, gain = 10^((makeup − g)/20) (from `gains`, a build of
/// [`gains`]), on two channels, [`GAINS_PASS`] frames at a time: `post` is a gain stage after the
/// compressor folded in (1: none; `y·1 = y`).
#[inline(always)]
fn apply2_with(
    gains: impl Fn(&[f64], f64, &mut [f64]),
    (l, r): (&mut [f64], &mut [f64]),
    g: &[f64],
    (makeup, mix, post): (f64, f64, f64),
) {
    let mut w = [0.0f64; GAINS_PASS];
    for ((l, r), g) in l
        .chunks_mut(GAINS_PASS)
        .zip(r.chunks_mut(GAINS_PASS))
        .zip(g.chunks(GAINS_PASS))
    {
        let w = &mut w[..g.len()];
        gains(g, makeup, w);
        for ((l, r), &w) in l.iter_mut().zip(r.iter_mut()).zip(w.iter()) {
            let f = (1.0 - mix) + mix * w;
            *l = *l * f * post;
            *r = *r * f * post;
        }
    }
}

/// [`apply2_with`] on one channel.
#[inline(always)]
fn apply1_with(
    gains: impl Fn(&[f64], f64, &mut [f64]),
    x: &mut [f64],
    g: &[f64],
    (makeup, mix, post): (f64, f64, f64),
) {
    let mut w = [0.0f64; GAINS_PASS];
    for (x, g) in x.chunks_mut(GAINS_PASS).zip(g.chunks(GAINS_PASS)) {
        let w = &mut w[..g.len()];
        gains(g, makeup, w);
        for (x, &w) in x.iter_mut().zip(w.iter()) {
            *x = *x * ((1.0 - mix) + mix * w) * post;
        }
    }
}

fn peak_targets_impl(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    peak_targets_with(levels, (a, b), scale, c, quiet, t)
}

fn apply2_impl(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply2_with(gains, (l, r), g, (makeup, mix, post))
}

fn apply1_impl(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply1_with(gains, x, g, (makeup, mix, post))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn peak_targets_avx2(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    peak_targets_with(levels, (a, b), scale, c, quiet, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn apply2_avx2(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply2_with(gains, (l, r), g, (makeup, mix, post))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn apply1_avx2(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply1_with(gains, x, g, (makeup, mix, post))
}

/// Sixteen f32 lanes of an AVX-512 register, for [`fastmath::log2`] and [`fastmath::exp2`]:
/// each method is the instruction of the scalar operation, lane by lane. Made only in the
/// AVX-512 kernels below.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Zmm(std::arch::x86_64::__m512);

// SAFETY (every method): a `Zmm` exists only inside the `*_avx512` kernels, which run when the
// CPU has AVX-512F, and the methods are inlined into them.
#[cfg(target_arch = "x86_64")]
impl fastmath::F32Lanes for Zmm {
    type Bits = std::arch::x86_64::__m512i;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_set1_ps(v) })
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // (AVX-512F has the fused multiply-adds of 512-bit registers.)
        Zmm(unsafe { std::arch::x86_64::_mm512_fmadd_ps(self.0, a.0, b.0) })
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        // vmaxps returns its first operand only when it is the greater.
        Zmm(unsafe { std::arch::x86_64::_mm512_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_min_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn to_bits(self) -> Self::Bits {
        unsafe { std::arch::x86_64::_mm512_castps_si512(self.0) }
    }
    #[inline(always)]
    fn from_bits(b: Self::Bits) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_castsi512_ps(b) })
    }
    #[inline(always)]
    fn bits_add(b: Self::Bits, c: u32) -> Self::Bits {
        use std::arch::x86_64::*;
        unsafe { _mm512_add_epi32(b, _mm512_set1_epi32(c as i32)) }
    }
    #[inline(always)]
    fn bits_and(b: Self::Bits, c: u32) -> Self::Bits {
        use std::arch::x86_64::*;
        unsafe { _mm512_and_si512(b, _mm512_set1_epi32(c as i32)) }
    }
    #[inline(always)]
    fn bits_shr23(b: Self::Bits) -> Self::Bits {
        unsafe { std::arch::x86_64::_mm512_srli_epi32::<23>(b) }
    }
    #[inline(always)]
    fn bits_shl23(b: Self::Bits) -> Self::Bits {
        unsafe { std::arch::x86_64::_mm512_slli_epi32::<23>(b) }
    }
    #[inline(always)]
    fn int_to_float(b: Self::Bits) -> Self {
        Zmm(unsafe { std::arch::x86_64::_mm512_cvtepi32_ps(b) })
    }
}

/// Sixteen frames at a time: `f` turns frames `i..i + 8` into eight f32 lanes (it is asked only
/// for i + 8 ≤ `n`), `op` runs on sixteen of them, and the results, widened, go to
/// `out[i..i + 16]`; returns how many frames it did (the rest, under sixteen, are the caller's).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn by_sixteen(
    n: usize,
    f: impl Fn(usize) -> std::arch::x86_64::__m256,
    op: impl Fn(Zmm) -> Zmm,
    out: &mut [f64],
) -> usize {
    use std::arch::x86_64::*;
    let n = n.min(out.len()) / 16 * 16;
    for i in (0..n).step_by(16) {
        let (lo, hi) = (_mm256_castps_pd(f(i)), _mm256_castps_pd(f(i + 8)));
        let x = _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castpd256_pd512(lo), hi));
        let y = _mm512_castps_pd(op(Zmm(x)).0);
        let lo = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_castpd512_pd256(y)));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(y)));
        // SAFETY: i + 16 ≤ n ≤ out.len().
        unsafe {
            _mm512_storeu_pd(out.as_mut_ptr().add(i), lo);
            _mm512_storeu_pd(out.as_mut_ptr().add(i + 8), hi);
        }
    }
    n
}

/// [`levels`] with the logarithm on sixteen f32 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn levels_avx512(a: &[f64], b: &[f64], t: &mut [f64]) {
    use std::arch::x86_64::*;
    let n = t.len().min(a.len()).min(b.len());
    let (floor, ceiling) = (
        _mm512_set1_pd(fastmath::LEVEL_FLOOR),
        _mm512_set1_pd(fastmath::LEVEL_CEILING),
    );
    // `narrow_level(fmax(|x|, |y|))` of frames i..i + 8 (vmaxpd, vminpd: `fmax`, `fmin`).
    let narrow = |i: usize| {
        debug_assert!(i + 8 <= n);
        // SAFETY: `by_sixteen` asks for i + 8 ≤ n ≤ a.len(), b.len().
        let (x, y) = unsafe {
            (
                _mm512_loadu_pd(a.as_ptr().add(i)),
                _mm512_loadu_pd(b.as_ptr().add(i)),
            )
        };
        let v = _mm512_max_pd(_mm512_abs_pd(x), _mm512_abs_pd(y));
        _mm512_cvtpd_ps(_mm512_min_pd(_mm512_max_pd(v, floor), ceiling))
    };
    let done = by_sixteen(n, narrow, fastmath::log2, t);
    levels(&a[done..n], &b[done..n], &mut t[done..n]);
}

/// [`gains`] with the exponential on sixteen f32 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gains_avx512(g: &[f64], makeup: f64, w: &mut [f64]) {
    use std::arch::x86_64::*;
    let n = w.len().min(g.len());
    let (makeup_v, per_db) = (
        _mm512_set1_pd(makeup),
        _mm512_set1_pd(fastmath::OCTAVES_PER_DB_AMP),
    );
    // `gain_octaves(makeup − g)` of frames i..i + 8.
    let narrow = |i: usize| {
        debug_assert!(i + 8 <= n);
        // SAFETY: `by_sixteen` asks for i + 8 ≤ n ≤ g.len().
        let x = unsafe { _mm512_loadu_pd(g.as_ptr().add(i)) };
        _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(makeup_v, x), per_db))
    };
    let done = by_sixteen(n, narrow, fastmath::exp2, w);
    gains(&g[done..n], makeup, &mut w[done..n]);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn peak_targets_avx512(
    a: &[f64],
    b: &[f64],
    scale: f64,
    c: &TrackCoefs,
    quiet: f64,
    t: &mut [f64],
) {
    peak_targets_with(|a, b, t| levels_avx512(a, b, t), (a, b), scale, c, quiet, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn apply2_avx512(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply2_with(
        |g, m, w| gains_avx512(g, m, w),
        (l, r),
        g,
        (makeup, mix, post),
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn apply1_avx512(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply1_with(|g, m, w| gains_avx512(g, m, w), x, g, (makeup, mix, post))
}

// The logarithm and the exponential are long dependency chains per frame: eight frames per
// instruction (AVX-512) keep twice as many of them in flight in the same scheduler as four.

/// The ballistics of a group (one track, the master's, too), in [`ballistics_x8`] when the
/// CPU has AVX2 ([`ballistics_x8_avx512`] when it has AVX-512).
pub(in crate::dsp::dynamics) fn group_ballistics<const K: usize>(
    state: &mut [f64; K],
    g: &mut [Chunk; K],
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    group_ballistics_at::<K, CHUNK>(state, g, 0, n, coefs)
}

/// [`group_ballistics`] of the chunk at frame `at` of longer buffers (`g[k][at..at + n]`, `n`
/// at most a chunk).
pub(in crate::dsp::dynamics) fn group_ballistics_at<const K: usize, const L: usize>(
    state: &mut [f64; K],
    g: &mut [[f64; L]; K],
    at: usize,
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    let n = n.min(CHUNK).min(L.saturating_sub(at));
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        if crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F, AVX-512VL and FMA (checked at run time).
            return unsafe { ballistics_x8_avx512::<K, L>(state, g, at, n, coefs) };
        }
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { ballistics_x8::<K, L>(state, g, at, n, coefs) };
    }
    ballistics::<K, L>(state, g, at, n, coefs)
}

/// [`ballistics_lanes`] choosing between attack and release with `vblendvpd`.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn ballistics_x8<const K: usize, const L: usize>(
    state: &mut [f64; K],
    g: &mut [[f64; L]; K],
    at: usize,
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    use std::arch::x86_64::*;
    let select = |t, s, up, down| _mm256_blendv_pd(down, up, _mm256_cmp_pd::<_CMP_GT_OQ>(t, s));
    // SAFETY: the CPU has AVX2 and FMA (this function's contract).
    unsafe { ballistics_lanes::<K, L>(state, g, at, n, coefs, select) }
}

/// [`ballistics_lanes`] choosing with a mask register (one cycle where `vblendvpd` takes three
/// on the recursion's chain), with 32 vector registers (none of the coefficients spill).
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512VL and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn ballistics_x8_avx512<const K: usize, const L: usize>(
    state: &mut [f64; K],
    g: &mut [[f64; L]; K],
    at: usize,
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    // (The closure has this function's target features.)
    let select = |t, s, up, down| mask_select(t, s, up, down);
    // SAFETY: the CPU has AVX2 and FMA (it has AVX-512F, AVX-512VL and FMA: this function's
    // contract).
    unsafe { ballistics_lanes::<K, L>(state, g, at, n, coefs, select) }
}

/// `up` where t > s, else `down`: `vcmppd` into a mask register, then `vblendmpd`. Written out
/// because the compiler otherwise folds the choice into the add of `up`, as a merge-masked
/// `vaddpd` whose pass-through is `down`: that puts `down`'s multiply and add before the add
/// on the recursion's chain (multiply, add, add per frame instead of multiply, add, blend).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
#[inline]
fn mask_select(
    t: std::arch::x86_64::__m256d,
    s: std::arch::x86_64::__m256d,
    up: std::arch::x86_64::__m256d,
    down: std::arch::x86_64::__m256d,
) -> std::arch::x86_64::__m256d {
    use std::arch::x86_64::*;
    let mask = _mm256_cmp_pd_mask::<_CMP_GT_OQ>(t, s);
    let chosen: __m256d;
    // SAFETY: a register-only instruction of AVX-512F and AVX-512VL (this function's target
    // features): chosen[i] = if mask[i] { up[i] } else { down[i] }.
    unsafe {
        std::arch::asm!(
            "vblendmpd {chosen}{{{mask}}}, {down}, {up}",
            mask = in(kreg) mask,
            down = in(ymm_reg) down,
            up = in(ymm_reg) up,
            chosen = lateout(ymm_reg) chosen,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    chosen
}

/// [`ballistics`] of up to eight tracks in two AVX2 registers (lanes past `K` repeat the last
/// track and are not stored): the same operations lane by lane as `core::smooth` (its fused
/// multiply-adds as `vfmadd`), so the same bits; two recursions of a fused multiply-add and a
/// choice (`select(t, s, up, down)`: `up` where t > s, else `down`) per frame for all of them. Groups of two or more tracks read and
/// write their chunks four frames at a time, transposed in the registers (4 tracks × 4
/// frames: four loads, eight shuffles, four stores), instead of gathering each frame's targets
/// one by one; a single track loads and stores one value per frame.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn ballistics_lanes<const K: usize, const L: usize>(
    state: &mut [f64; K],
    g: &mut [[f64; L]; K],
    at: usize,
    n: usize,
    coefs: &[TrackCoefs; K],
    select: impl Fn(
        std::arch::x86_64::__m256d,
        std::arch::x86_64::__m256d,
        std::arch::x86_64::__m256d,
        std::arch::x86_64::__m256d,
    ) -> std::arch::x86_64::__m256d,
) -> [f64; K] {
    use std::arch::x86_64::*;
    let track = |h: usize, j: usize| (4 * h + j).min(K - 1);
    let lanes = |f: &dyn Fn(usize) -> f64, h: usize| {
        _mm256_set_pd(
            f(track(h, 3)),
            f(track(h, 2)),
            f(track(h, 1)),
            f(track(h, 0)),
        )
    };
    let each =
        |f: fn(&TrackCoefs) -> f64| [lanes(&|k| f(&coefs[k]), 0), lanes(&|k| f(&coefs[k]), 1)];
    let (a0, a1) = (each(|c| c.attack.0), each(|c| c.attack.1));
    let (r0, r1) = (each(|c| c.release.0), each(|c| c.release.1));
    let mut st = [lanes(&|k| state[k], 0), lanes(&|k| state[k], 1)];
    let mut max = [_mm256_setzero_pd(); 2];
    let halves = K.div_ceil(4);
    // One frame of half `h`: the smoothed reductions for the targets `t`.
    let mut step = |h: usize, t: __m256d| {
        let s = st[h];
        // `a0·s + a1·t` rounded once after the product a1·t, which is off the chain.
        let up = _mm256_fmadd_pd(a0[h], s, _mm256_mul_pd(a1[h], t));
        let down = _mm256_fmadd_pd(r0[h], s, _mm256_mul_pd(r1[h], t));
        let s = select(t, s, up, down);
        st[h] = s;
        // `fmax(max, s)`: vmaxpd returns its first operand only when it is the greater.
        max[h] = _mm256_max_pd(max[h], s);
        s
    };
    // The 4 × 4 transpose of `rows` (its own inverse): row j, lane i ↔ row i, lane j.
    let transpose = |[x0, x1, x2, x3]: [__m256d; 4]| {
        let (t0, t1) = (_mm256_unpacklo_pd(x0, x1), _mm256_unpackhi_pd(x0, x1));
        let (t2, t3) = (_mm256_unpacklo_pd(x2, x3), _mm256_unpackhi_pd(x2, x3));
        [
            _mm256_permute2f128_pd::<0x20>(t0, t2),
            _mm256_permute2f128_pd::<0x20>(t1, t3),
            _mm256_permute2f128_pd::<0x31>(t0, t2),
            _mm256_permute2f128_pd::<0x31>(t1, t3),
        ]
    };
    // (The chunk's frames: `g[k][at..at + n]`.)
    let n = n.min(CHUNK).min(L.saturating_sub(at));
    let quads = if K > 1 { n / 4 } else { 0 };
    for q in 0..quads {
        let i = 4 * q;
        // frames[h][f]: the targets of half h's tracks at frame i + f.
        let mut frames = [[_mm256_setzero_pd(); 4]; 2];
        for h in 0..halves {
            // SAFETY: i + 4 ≤ n ≤ L − at: four doubles of each track's chunk.
            frames[h] = transpose(std::array::from_fn(|j| unsafe {
                _mm256_loadu_pd(g[track(h, j)][at..].as_ptr().add(i))
            }));
        }
        for f in 0..4 {
            for h in 0..halves {
                frames[h][f] = step(h, frames[h][f]);
            }
        }
        for h in 0..halves {
            for (j, row) in transpose(frames[h]).into_iter().enumerate() {
                if 4 * h + j < K {
                    // SAFETY: as the loads.
                    unsafe { _mm256_storeu_pd(g[4 * h + j][at..].as_mut_ptr().add(i), row) };
                }
            }
        }
    }
    for i in 4 * quads..n {
        for h in 0..halves {
            let s = step(h, lanes(&|k| g[k][at + i], h));
            let mut out = [0.0f64; 4];
            // SAFETY: four doubles.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), s) };
            for (j, &v) in out.iter().enumerate() {
                if 4 * h + j < K {
                    g[4 * h + j][at + i] = v;
                }
            }
        }
    }
    let mut all = [[0.0f64; 4]; 2];
    let mut top = [[0.0f64; 4]; 2];
    for h in 0..2 {
        // SAFETY: four doubles each.
        unsafe {
            _mm256_storeu_pd(all[h].as_mut_ptr(), st[h]);
            _mm256_storeu_pd(top[h].as_mut_ptr(), max[h]);
        }
    }
    *state = std::array::from_fn(|k| all[k / 4][k % 4]);
    std::array::from_fn(|k| top[k / 4][k % 4])
}

pub(in crate::dsp::dynamics) fn peak_targets(
    a: &[f64],
    b: &[f64],
    scale: f64,
    c: &TrackCoefs,
    quiet: f64,
    t: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        if crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and FMA (checked at run time).
            return unsafe { peak_targets_avx512(a, b, scale, c, quiet, t) };
        }
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { peak_targets_avx2(a, b, scale, c, quiet, t) };
    }
    peak_targets_impl(a, b, scale, c, quiet, t)
}

pub(super) fn apply2(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        if crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and FMA (checked at run time).
            return unsafe { apply2_avx512(l, r, g, makeup, mix, post) };
        }
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { apply2_avx2(l, r, g, makeup, mix, post) };
    }
    apply2_impl(l, r, g, makeup, mix, post)
}

pub(super) fn apply1(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        if crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and FMA (checked at run time).
            return unsafe { apply1_avx512(x, g, makeup, mix, post) };
        }
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { apply1_avx2(x, g, makeup, mix, post) };
    }
    apply1_impl(x, g, makeup, mix, post)
}

/// `x ← x·factor·post` (only `x·post` when `factor` is 1; nothing when both are): a fully
/// released chunk's one gain applied, as [`apply2`] would for reductions of 0.
#[inline(always)]
fn scale_with(x: &mut [f64], factor: f64, post: f64) {
    if factor != 1.0 {
        x.iter_mut().for_each(|x| *x = *x * factor * post);
    } else if post != 1.0 {
        x.iter_mut().for_each(|x| *x *= post);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn scale_avx512(x: &mut [f64], factor: f64, post: f64) {
    scale_with(x, factor, post)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scale_avx2(x: &mut [f64], factor: f64, post: f64) {
    scale_with(x, factor, post)
}

/// [`scale_with`] in the widest registers the CPU has (the same multiplies lane by lane: the
/// same bits).
pub(super) fn scale(x: &mut [f64], factor: f64, post: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { scale_avx512(x, factor, post) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { scale_avx2(x, factor, post) };
    }
    scale_with(x, factor, post)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gains_avx2(g: &[f64], makeup: f64, w: &mut [f64]) {
    gains(g, makeup, w)
}

/// The gain factors 10^((makeup − g)/20) of the smoothed reductions `g` into `w` (no mix, no
/// audio: for processors that apply them their own way), as [`fastmath::db_to_amp`] computes
/// them.
pub(in crate::dsp::dynamics) fn gain_factors(g: &[f64], makeup: f64, w: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        if crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and FMA (checked at run time).
            return unsafe { gains_avx512(g, makeup, w) };
        }
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { gains_avx2(g, makeup, w) };
    }
    gains(g, makeup, w)
}

/// The builds of the per-frame kernels (portable, AVX2, AVX-512) give the same bits.
#[cfg(all(test, target_arch = "x86_64"))]
mod simd_tests {
    use super::*;
    use crate::dsp::dynamics::core::{pair, StaticCurve};

    /// Detector values from silence to +12 dBFS and chunks all under the knee, in a length
    /// that leaves a tail under every vector width; reductions from 0 to 40 dB.
    fn inputs() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = 64 * 40 + 7;
        let a = (0..n)
            .map(|i| {
                let level = if (i / 64) % 3 == 0 { 0.01 } else { 4.0 };
                level * (i as f64 * 0.37).sin() * (i as f64 * 0.0011).cos()
            })
            .collect();
        let b = (0..n).map(|i| 0.5 * (i as f64 * 0.23).cos()).collect();
        let g = (0..n)
            .map(|i| 40.0 * ((i as f64 * 0.05).sin()).powi(2))
            .collect();
        (a, b, g)
    }

    #[test]
    fn simd_builds_agree() {
        let (a, b, g) = inputs();
        let track = TrackCoefs {
            curve: StaticCurve::new(-20.0, 3.0, 6.0, f64::INFINITY),
            attack: pair(0.9),
            release: pair(0.99),
            makeup_db: 2.5,
        };
        let scale = fastmath::DB_PER_OCTAVE_AMP;
        let quiet = track.curve.quiet_below(scale);
        type Kernel<'a> = &'a dyn Fn(&[f64], &[f64], &mut [f64]);
        let chunks = |f: Kernel<'_>| {
            let mut t = vec![0.0; a.len()];
            // 56 = 3·16 + 8: the AVX-512 kernels' sixteen-frame blocks and their scalar tail.
            for ((t, a), b) in t.chunks_mut(56).zip(a.chunks(56)).zip(b.chunks(56)) {
                f(a, b, t);
            }
            t
        };
        let apply = |f: &dyn Fn(&mut [f64], &mut [f64])| {
            let (mut l, mut r) = (a.clone(), b.clone());
            f(&mut l, &mut r);
            (l, r)
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let t0 = chunks(&|a, b, t| peak_targets_impl(a, b, scale, &track, quiet, t));
        assert!(t0.iter().any(|&t| t > 10.0) && t0.iter().filter(|&&t| t == 0.0).count() > 64);
        // The chunk kernels (the quiet shortcut, the f32 passes) compute the scalar definitions,
        // frame by frame, bit for bit: what the general path (`GainStage::run`) computes.
        let scalar: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| {
                let level = scale * fastmath::level_log2(fmax(x.abs(), y.abs()));
                track.curve.reduction_db(level)
            })
            .collect();
        assert!(bits(&t0) == bits(&scalar), "targets: the scalar definition");
        let y0 = apply(&|l, r| apply2_impl(l, r, &g, 2.5, 0.8, 0.7));
        let f = |g: f64| (1.0 - 0.8) + 0.8 * fastmath::db_to_amp(2.5 - g);
        let scalar: Vec<f64> = a.iter().zip(&g).map(|(&x, &g)| x * f(g) * 0.7).collect();
        assert!(bits(&y0.0) == bits(&scalar), "gains: the scalar definition");
        let mut mono = a.clone();
        apply1_impl(&mut mono, &g, 2.5, 0.8, 0.7);
        assert!(bits(&mono) == bits(&y0.0), "one channel as two");
        let mut builds = 0;
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA.
            let t = chunks(&|a, b, t| unsafe { peak_targets_avx2(a, b, scale, &track, quiet, t) });
            assert!(t == t0, "AVX2 targets");
            let y = apply(&|l, r| unsafe { apply2_avx2(l, r, &g, 2.5, 0.8, 0.7) });
            assert!(y == y0, "AVX2 gains");
            let mut x = a.clone();
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { apply1_avx2(&mut x, &g, 2.5, 0.8, 0.7) };
            assert!(bits(&x) == bits(&mono), "AVX2 gains, one channel");
            builds += 1;
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX-512F and FMA.
            let t =
                chunks(&|a, b, t| unsafe { peak_targets_avx512(a, b, scale, &track, quiet, t) });
            assert!(t == t0, "AVX-512 targets");
            let y = apply(&|l, r| unsafe { apply2_avx512(l, r, &g, 2.5, 0.8, 0.7) });
            assert!(y == y0, "AVX-512 gains");
            builds += 1;
        }
        assert!(
            builds > 0 || std::env::var_os("CI").is_none(),
            "no SIMD build compared"
        );
    }

    /// Groups of one to eight tracks in the AVX2 registers (blend by `vblendvpd`, and by a mask
    /// register where the CPU has AVX-512) smooth as the generic recursion does (fused
    /// multiply-adds by `f64::mul_add` there, `vfmadd` here), bit for bit: states, smoothed
    /// reductions and maxima, over whole and partial chunks (lengths that leave 0 to 3 frames
    /// after the transposed quads).
    #[test]
    fn wide_ballistics_are_the_generic_ones() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI machines have AVX2 and FMA"
            );
            return;
        }
        fn check<const K: usize>() {
            let coefs: [TrackCoefs; K] = std::array::from_fn(|k| TrackCoefs {
                curve: StaticCurve::new(-20.0, 3.0, 6.0, f64::INFINITY),
                attack: pair(0.5 + 0.05 * k as f64),
                release: pair(0.99 - 0.01 * k as f64),
                makeup_db: 0.0,
            });
            let targets = |k: usize, c: usize| -> Chunk {
                std::array::from_fn(|i| {
                    let x = ((i + 64 * c) as f64 * (0.07 + 0.01 * k as f64)).sin();
                    if x > 0.3 {
                        12.0 * x
                    } else {
                        0.0
                    }
                })
            };
            let wide = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl");
            let (mut s0, mut s1, mut s2) = ([0.0; K], [0.0; K], [0.0; K]);
            for (c, n) in [64, 17, 64, 1, 0, 64, 6, 3, 63].into_iter().enumerate() {
                let mut g0: [Chunk; K] = std::array::from_fn(|k| targets(k, c));
                let (mut g1, mut g2) = (g0, g0);
                let m0 = ballistics::<K, CHUNK>(&mut s0, &mut g0, 0, n, &coefs);
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                let m1 = unsafe { ballistics_x8::<K, CHUNK>(&mut s1, &mut g1, 0, n, &coefs) };
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let mut builds = vec![("AVX2", s1, m1, g1)];
                if wide {
                    // SAFETY: the CPU has AVX-512F, AVX-512VL and FMA (checked above).
                    let m2 =
                        unsafe { ballistics_x8_avx512::<K, CHUNK>(&mut s2, &mut g2, 0, n, &coefs) };
                    builds.push(("AVX-512", s2, m2, g2));
                }
                for (build, s, m, g) in builds {
                    assert_eq!(
                        bits(&s0),
                        bits(&s),
                        "{build}, {K} tracks, chunk {c}: states"
                    );
                    assert_eq!(
                        bits(&m0),
                        bits(&m),
                        "{build}, {K} tracks, chunk {c}: maxima"
                    );
                    for k in 0..K {
                        assert_eq!(
                            bits(&g0[k]),
                            bits(&g[k]),
                            "{build}, {K} tracks, chunk {c}, track {k}"
                        );
                    }
                }
            }
            assert!(s0.iter().all(|&s| s > 0.0), "the tracks reduce");
        }
        check::<1>();
        check::<2>();
        check::<3>();
        check::<4>();
        check::<5>();
        check::<6>();
        check::<7>();
        check::<8>();
    }
}
