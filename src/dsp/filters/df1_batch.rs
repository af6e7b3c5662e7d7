//! Several stereo signals, each through its own series of DF1 sections, side by side in one pass
//! over their blocks: the kernel of the strip EQs' batch (`eq::batch`).
//!
//! A DF1 series on one signal is bound by its recursion's latency (each output waits on the
//! previous two through three fused multiply-adds), not by its arithmetic. Here the signals of
//! the batch ride in the lanes of a few registers: two stereo signals per 256-bit register with
//! AVX2, four per 512-bit register with AVX-512 (batches of more than two). One pass over the
//! block runs, between two flush positions of the batch's [`FlushClock`], each register over the
//! whole run, one register after the other, in a loop of its own whose signals are constants (so
//! that the loads and stores of lanes past the batch fold away). The histories stay in the
//! registers for the whole block and are flushed ([`super::flush`]) there at the flush positions.
//! Each lane does the operations of [`Df1Coefs::tick`] in its order: every build (portable, AVX2,
//! AVX-512) gives, bit for bit, what ticking each channel sample by sample and flushing at those
//! positions gives. Lanes without a signal (an odd batch) carry zeros.
//!
//! Samples move between the planar channels and the lanes four frames at a time: two-frame
//! halves loaded into the register halves, then unpacked (and back the same way).
//!
//! A batch of one signal (an EQ that runs alone: the master's) would use two lanes of a register
//! and run its sections one after the other within each frame; with AVX-512F it runs through
//! `staggered` instead: its sections side by side in one register, each a few frames behind
//! the one feeding it.
//! A batch of five to seven signals whose remaining signals' sections fit one register (six
//! stems' strip EQs of two bells) runs with AVX-512F through `paired`: the full register and
//! those sections staggered in a second register, in one loop.

use super::df1::{run_series2, Df1Coefs, Df1State};
use super::{flush, FlushClock};

#[cfg(target_arch = "x86_64")]
mod paired;
#[cfg(target_arch = "x86_64")]
mod staggered;

/// Most signals in one batch.
pub const MAX_SIGNALS: usize = 8;

/// `K` stereo signals, each through its own series of `S` sections, side by side in one pass
/// over their channels (all of one length), the histories flushed at the flush positions of
/// `clock` (the batch's clock, advanced by the length). `hist[k]` holds signal k's section
/// histories, left then right; `chans[k]` its two channels. Every signal's output and
/// histories are bit for bit what [`run_series2`] and a flush of every history value at those
/// positions give.
pub fn run_series2_batch<const K: usize, const S: usize>(
    coefs: &[[Df1Coefs; S]; K],
    hist: &mut [[[Df1State; S]; 2]; K],
    chans: &mut [(&mut [f64], &mut [f64]); K],
    clock: &mut FlushClock,
) {
    const { assert!(K >= 1 && K <= MAX_SIGNALS && S >= 1) };
    let n = chans
        .iter()
        .map(|(l, r)| l.len().min(r.len()))
        .min()
        .unwrap_or(0);
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        let ptrs = pointers(chans);
        if K == 1 && S <= staggered::MAX_SECTIONS && crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F (checked at run time); both pointers hold `n`
            // frames.
            return unsafe {
                staggered::series_avx512::<S>(&coefs[0], &mut hist[0], ptrs[0], n, clock)
            };
        }
        if paired::fits(K, S) && crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and AVX-512VL (checked at run time); every pointer
            // holds `n` frames.
            return unsafe { paired::batch_avx512::<K, S>(coefs, hist, &ptrs, n, clock) };
        }
        if K > Ymm::SIGNALS && crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and AVX-512VL (checked at run time); every pointer
            // holds `n` frames.
            return unsafe { batch_avx512::<K, S>(coefs, hist, &ptrs, n, clock) };
        }
        // SAFETY: the CPU has AVX2 and FMA (checked at run time); every pointer holds `n` frames.
        return unsafe { batch_avx2::<K, S>(coefs, hist, &ptrs, n, clock) };
    }
    let mut at = 0;
    while at < n {
        let (len, flushes) = clock.next_run(n - at);
        for k in 0..K {
            let [hl, hr] = &mut hist[k];
            let (l, r) = &mut chans[k];
            run_series2(
                &coefs[k],
                hl,
                hr,
                &mut l[at..at + len],
                &mut r[at..at + len],
            );
        }
        if flushes {
            flush_all(hist);
        }
        at += len;
    }
}

/// Flushes every history value of `hist`.
fn flush_all<const K: usize, const S: usize>(hist: &mut [[[Df1State; S]; 2]; K]) {
    for v in hist.iter_mut().flatten().flatten().flatten() {
        *v = flush(*v);
    }
}

/// The channels' first samples, `[left, right]` per signal.
#[cfg(target_arch = "x86_64")]
fn pointers<const K: usize>(chans: &mut [(&mut [f64], &mut [f64]); K]) -> [[*mut f64; 2]; K] {
    std::array::from_fn(|k| [chans[k].0.as_mut_ptr(), chans[k].1.as_mut_ptr()])
}

/// A register of lanes, `SIGNALS` stereo signals of a batch side by side (left, right of the
/// first, left, right of the second, …), with the operations the kernel needs: each the
/// instruction of the scalar operation, lane by lane.
///
/// # Safety
/// The methods use the instructions of their width: they may run only where the CPU has them
/// (inside the kernels below, which check).
#[cfg(target_arch = "x86_64")]
trait Lanes: Copy {
    /// Stereo signals per register.
    const SIGNALS: usize;
    /// The register of the first `2·SIGNALS` values of `v`.
    unsafe fn from_lanes(v: &[f64; 2 * MAX_SIGNALS]) -> Self;
    /// The lanes into the first `2·SIGNALS` values of `out`.
    unsafe fn to_lanes(self, out: &mut [f64; 2 * MAX_SIGNALS]);
    /// One value per lane: `f(signal, channel)` for the register's signals from `first`, zero
    /// for lanes past the batch's `k` signals.
    #[inline(always)]
    unsafe fn gather(first: usize, k: usize, f: impl Fn(usize, usize) -> f64) -> Self {
        let mut v = [0.0; 2 * MAX_SIGNALS];
        for (l, v) in v.iter_mut().enumerate().take(2 * Self::SIGNALS) {
            if first + l / 2 < k {
                *v = f(first + l / 2, l % 2);
            }
        }
        Self::from_lanes(&v)
    }
    /// The lanes out, `f(signal, channel, value)` for each of the register's signals from
    /// `first` that is one of the batch's `k` signals.
    #[inline(always)]
    unsafe fn scatter(self, first: usize, k: usize, mut f: impl FnMut(usize, usize, f64)) {
        let mut o = [0.0; 2 * MAX_SIGNALS];
        self.to_lanes(&mut o);
        for (l, v) in o.into_iter().enumerate().take(2 * Self::SIGNALS) {
            if first + l / 2 < k {
                f(first + l / 2, l % 2, v);
            }
        }
    }
    /// `a·b + c`, rounded once.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// `a·b`.
    unsafe fn mul(a: Self, b: Self) -> Self;
    /// [`flush`] lane by lane.
    unsafe fn flush(self) -> Self;
    /// Frames `at`, `at + 1` of the register's signals (`p`: the batch's channels), one register
    /// per frame.
    unsafe fn load2<const K: usize>(p: &[[*mut f64; 2]; K], first: usize, at: usize) -> [Self; 2];
    /// [`Lanes::load2`] backwards: the two frames' registers into the channels.
    unsafe fn store2<const K: usize>(y: [Self; 2], p: &[[*mut f64; 2]; K], first: usize, at: usize);
    /// Frames `j..j + 4`, two by two through [`Lanes::load2`].
    #[inline(always)]
    unsafe fn load4<const K: usize>(p: &[[*mut f64; 2]; K], first: usize, j: usize) -> [Self; 4] {
        let ([a, b], [c, d]) = (Self::load2(p, first, j), Self::load2(p, first, j + 2));
        [a, b, c, d]
    }
    /// [`Lanes::load4`] backwards.
    #[inline(always)]
    unsafe fn store4<const K: usize>(y: [Self; 4], p: &[[*mut f64; 2]; K], first: usize, j: usize) {
        Self::store2([y[0], y[1]], p, first, j);
        Self::store2([y[2], y[3]], p, first, j + 2);
    }
}

/// The batch's loop, for registers of lanes `L` (at most [`MAX_REGS`] of them).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn batch_body<L: Lanes, const K: usize, const S: usize>(
    coefs: &[[Df1Coefs; S]; K],
    hist: &mut [[[Df1State; S]; 2]; K],
    p: &[[*mut f64; 2]; K],
    n: usize,
    clock: &mut FlushClock,
) {
    let regs = K.div_ceil(L::SIGNALS);
    let zero = L::gather(0, 0, |_, _| 0.0);
    // c[r], h[r]: register r's sections (see `register_in`).
    let mut c = [[[zero; 5]; S]; MAX_REGS];
    let mut h = [[[zero; 4]; S]; MAX_REGS];
    for r in 0..regs {
        (c[r], h[r]) = register_in(coefs, hist, r * L::SIGNALS);
    }
    let mut at = 0;
    while at < n {
        let (len, flushes) = clock.next_run(n - at);
        let end = at + len;
        // Register after register over the whole run (on AMD Zen 5, spans of 16 frames of one
        // register, then of the next, took 7-10 % longer for 6 signals of two sections: the
        // processor did not overlap them).
        run_register::<L, K, S, 0>(&c, &mut h, p, at, end);
        run_register::<L, K, S, 1>(&c, &mut h, p, at, end);
        run_register::<L, K, S, 2>(&c, &mut h, p, at, end);
        run_register::<L, K, S, 3>(&c, &mut h, p, at, end);
        if flushes {
            for r in h.iter_mut().take(regs) {
                flush_sections(r);
            }
        }
        at = end;
    }
    for r in 0..regs {
        register_out(&h[r], hist, r * L::SIGNALS);
    }
}

/// The sections of the register of signals `first..` of the batch: each section's
/// coefficients (b0, b1, b2, −a1, −a2) and history (x1, x2, y1, y2) in the signals' lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn register_in<L: Lanes, const K: usize, const S: usize>(
    coefs: &[[Df1Coefs; S]; K],
    hist: &[[[Df1State; S]; 2]; K],
    first: usize,
) -> ([[L; 5]; S], [[L; 4]; S]) {
    let c = std::array::from_fn(|i| {
        std::array::from_fn(|f| {
            L::gather(first, K, |s, _| {
                let k = &coefs[s][i];
                [k.b0, k.b1, k.b2, k.na1, k.na2][f]
            })
        })
    });
    let h = std::array::from_fn(|i| {
        std::array::from_fn(|j| L::gather(first, K, |s, ch| hist[s][ch][i][j]))
    });
    (c, h)
}

/// [`register_in`]'s histories `h` back into `hist`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn register_out<L: Lanes, const K: usize, const S: usize>(
    h: &[[L; 4]; S],
    hist: &mut [[[Df1State; S]; 2]; K],
    first: usize,
) {
    for i in 0..S {
        for j in 0..4 {
            h[i][j].scatter(first, K, |s, ch, v| hist[s][ch][i][j] = v);
        }
    }
}

/// [`Lanes::flush`] of every history value of a register's sections `h`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn flush_sections<L: Lanes, const S: usize>(h: &mut [[L; 4]; S]) {
    // Indexed, not iterated: the loops unroll to constant places and `h` stays in registers
    // (through `flatten` it stayed on the stack, with a store and a load in every recursion).
    #[allow(clippy::needless_range_loop)]
    for i in 0..S {
        for j in 0..4 {
            h[i][j] = h[i][j].flush();
        }
    }
}

const _: () = assert!(MAX_REGS == 4, "batch_body runs registers 0 to 3");

/// Frames `from..to` of register `R` (signals `R·L::SIGNALS..` of `p`, if the batch has them)
/// through its sections `c[R]` with histories `h[R]`: per lane the operations of
/// [`Df1Coefs::tick`], four frames at a time through [`Lanes::load4`] and [`Lanes::store4`], the
/// rest one by one. `R` a constant, the register's first signal is one too.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn run_register<L: Lanes, const K: usize, const S: usize, const R: usize>(
    c: &[[[L; 5]; S]; MAX_REGS],
    h: &mut [[[L; 4]; S]; MAX_REGS],
    p: &[[*mut f64; 2]; K],
    from: usize,
    to: usize,
) {
    let first = R * L::SIGNALS;
    if first >= K {
        return;
    }
    let c = &c[R];
    let h = &mut h[R];
    let mut hist = *h;
    let mut j = from;
    while j + 4 <= to {
        let x = L::load4(p, first, j);
        let y = [
            tick::<L, S>(c, &mut hist, x[0]),
            tick::<L, S>(c, &mut hist, x[1]),
            tick::<L, S>(c, &mut hist, x[2]),
            tick::<L, S>(c, &mut hist, x[3]),
        ];
        L::store4(y, p, first, j);
        j += 4;
    }
    while j < to {
        let x = L::gather(first, K, |s, ch| *p[s][ch].add(j));
        tick::<L, S>(c, &mut hist, x).scatter(first, K, |s, ch, v| *p[s][ch].add(j) = v);
        j += 1;
    }
    *h = hist;
}

/// One frame `x` of a register through the sections `c` with histories `h`: per lane the
/// operations of [`Df1Coefs::tick`], in its order.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tick<L: Lanes, const S: usize>(c: &[[L; 5]; S], h: &mut [[L; 4]; S], mut x: L) -> L {
    for i in 0..S {
        let [b0, b1, b2, na1, na2] = c[i];
        let [x1, x2, y1, y2] = h[i];
        let t = L::fmadd(b1, x1, L::mul(b2, x2));
        let t = L::fmadd(na2, y2, t);
        let t = L::fmadd(b0, x, t);
        let y = L::fmadd(na1, y1, t);
        h[i] = [x, x1, y, y1];
        x = y;
    }
    x
}

/// Frames `(at, at + 1)` of channel `ch` of signal `s` (zeros past the batch's `K` signals).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn half<const K: usize>(
    p: &[[*mut f64; 2]; K],
    s: usize,
    ch: usize,
    at: usize,
) -> std::arch::x86_64::__m128d {
    use std::arch::x86_64::*;
    if s < K {
        _mm_loadu_pd(p[s][ch].add(at))
    } else {
        _mm_setzero_pd()
    }
}

/// Most registers a batch takes (AVX2's two signals each, [`MAX_SIGNALS`] signals).
#[cfg(target_arch = "x86_64")]
const MAX_REGS: usize = MAX_SIGNALS / 2;

/// Two stereo signals in a 256-bit register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Ymm(std::arch::x86_64::__m256d);

// SAFETY (every method): a `Ymm` is used only inside `batch_avx2`, which runs when the CPU has
// AVX2 and FMA, and the methods are inlined into it; pointers are read and written inside the
// frames the caller vouches for.
#[cfg(target_arch = "x86_64")]
impl Lanes for Ymm {
    const SIGNALS: usize = 2;
    #[inline(always)]
    unsafe fn from_lanes(v: &[f64; 2 * MAX_SIGNALS]) -> Self {
        Ymm(std::arch::x86_64::_mm256_loadu_pd(v.as_ptr()))
    }
    #[inline(always)]
    unsafe fn to_lanes(self, out: &mut [f64; 2 * MAX_SIGNALS]) {
        std::arch::x86_64::_mm256_storeu_pd(out.as_mut_ptr(), self.0)
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        Ymm(std::arch::x86_64::_mm256_fmadd_pd(a.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        Ymm(std::arch::x86_64::_mm256_mul_pd(a.0, b.0))
    }
    #[inline(always)]
    unsafe fn flush(self) -> Self {
        use std::arch::x86_64::*;
        let magnitude = _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0);
        let tiny = _mm256_cmp_pd::<_CMP_LT_OQ>(magnitude, _mm256_set1_pd(super::FLUSH_BELOW));
        Ymm(_mm256_andnot_pd(tiny, self.0))
    }
    #[inline(always)]
    unsafe fn load2<const K: usize>(p: &[[*mut f64; 2]; K], first: usize, at: usize) -> [Self; 2] {
        use std::arch::x86_64::*;
        // (l0, l1 | l0', l1'), (r0, r1 | r0', r1'): frames at, at + 1 of both signals;
        // unpacked: (l, r | l', r') per frame.
        let l = _mm256_set_m128d(half(p, first + 1, 0, at), half(p, first, 0, at));
        let r = _mm256_set_m128d(half(p, first + 1, 1, at), half(p, first, 1, at));
        [Ymm(_mm256_unpacklo_pd(l, r)), Ymm(_mm256_unpackhi_pd(l, r))]
    }
    #[inline(always)]
    unsafe fn store2<const K: usize>(
        y: [Self; 2],
        p: &[[*mut f64; 2]; K],
        first: usize,
        at: usize,
    ) {
        use std::arch::x86_64::*;
        let l = _mm256_unpacklo_pd(y[0].0, y[1].0);
        let r = _mm256_unpackhi_pd(y[0].0, y[1].0);
        _mm_storeu_pd(p[first][0].add(at), _mm256_castpd256_pd128(l));
        _mm_storeu_pd(p[first][1].add(at), _mm256_castpd256_pd128(r));
        if first + 1 < K {
            _mm_storeu_pd(p[first + 1][0].add(at), _mm256_extractf128_pd::<1>(l));
            _mm_storeu_pd(p[first + 1][1].add(at), _mm256_extractf128_pd::<1>(r));
        }
    }
}

/// Four stereo signals in a 512-bit register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Zmm(std::arch::x86_64::__m512d);

// SAFETY (every method): a `Zmm` is used only inside `batch_avx512`, which runs when the CPU has
// AVX-512F and AVX-512VL (and AVX2 and FMA), and the methods are inlined into it; pointers are
// read and written inside the frames the caller vouches for.
#[cfg(target_arch = "x86_64")]
impl Lanes for Zmm {
    const SIGNALS: usize = 4;
    #[inline(always)]
    unsafe fn from_lanes(v: &[f64; 2 * MAX_SIGNALS]) -> Self {
        Zmm(std::arch::x86_64::_mm512_loadu_pd(v.as_ptr()))
    }
    #[inline(always)]
    unsafe fn to_lanes(self, out: &mut [f64; 2 * MAX_SIGNALS]) {
        std::arch::x86_64::_mm512_storeu_pd(out.as_mut_ptr(), self.0)
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        Zmm(std::arch::x86_64::_mm512_fmadd_pd(a.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        Zmm(std::arch::x86_64::_mm512_mul_pd(a.0, b.0))
    }
    #[inline(always)]
    unsafe fn flush(self) -> Self {
        use std::arch::x86_64::*;
        let magnitude = _mm512_abs_pd(self.0);
        let tiny = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(magnitude, _mm512_set1_pd(super::FLUSH_BELOW));
        Zmm(_mm512_mask_mov_pd(self.0, tiny, _mm512_setzero_pd()))
    }
    #[inline(always)]
    unsafe fn load2<const K: usize>(p: &[[*mut f64; 2]; K], first: usize, at: usize) -> [Self; 2] {
        use std::arch::x86_64::*;
        // Channel `ch`'s frames (at, at + 1) of the four signals, one per 128-bit quarter.
        let mut lr = [_mm512_setzero_pd(); 2];
        for (ch, v) in lr.iter_mut().enumerate() {
            // Each quarter inserted straight from memory (`vinsertf32x4` with a memory
            // operand: no shuffle on the port the fused multiply-adds share, where joining
            // two 256-bit halves took one); quarters past the batch stay zero.
            *v = _mm512_zextpd128_pd512(half(p, first, ch, at));
            if first + 1 < K {
                *v = insert_quarter::<1>(*v, p[first + 1][ch].add(at));
            }
            if first + 2 < K {
                *v = insert_quarter::<2>(*v, p[first + 2][ch].add(at));
            }
            if first + 3 < K {
                *v = insert_quarter::<3>(*v, p[first + 3][ch].add(at));
            }
        }
        let [l, r] = lr;
        [Zmm(_mm512_unpacklo_pd(l, r)), Zmm(_mm512_unpackhi_pd(l, r))]
    }
    #[inline(always)]
    unsafe fn store2<const K: usize>(
        y: [Self; 2],
        p: &[[*mut f64; 2]; K],
        first: usize,
        at: usize,
    ) {
        use std::arch::x86_64::*;
        let l = _mm512_unpacklo_pd(y[0].0, y[1].0);
        let r = _mm512_unpackhi_pd(y[0].0, y[1].0);
        for (ch, v) in [(0, l), (1, r)] {
            _mm_storeu_pd(p[first][ch].add(at), _mm512_castpd512_pd128(v));
            // Quarters 1–3 stored straight out of the register (`vextractf32x4` to
            // memory: a store alone), where extracting each quarter into a register first
            // took a shuffle on the port the fused multiply-adds share (and the compiler
            // turned the unpacks above into per-quarter ones around those extracts).
            if first + 1 < K {
                store_quarter::<1>(p[first + 1][ch].add(at), v);
            }
            if first + 2 < K {
                store_quarter::<2>(p[first + 2][ch].add(at), v);
            }
            if first + 3 < K {
                store_quarter::<3>(p[first + 3][ch].add(at), v);
            }
        }
    }
}

/// `v` with lanes `2Q`, `2Q + 1` replaced by `from[0]`, `from[1]`, by `vinsertf32x4` with a
/// memory operand (128 bits moved as they are).
///
/// # Safety
/// The CPU has AVX-512F; `from` is valid for reading two values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn insert_quarter<const Q: u8>(
    mut v: std::arch::x86_64::__m512d,
    from: *const f64,
) -> std::arch::x86_64::__m512d {
    // SAFETY: the caller vouches for the CPU and for two readable values at `from`.
    unsafe {
        std::arch::asm!(
            "vinsertf32x4 {v}, {v}, xmmword ptr [{from}], {q}",
            v = inout(zmm_reg) v,
            from = in(reg) from,
            q = const Q,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// Lanes `2Q`, `2Q + 1` of `v` to `to[0]`, `to[1]`, by `vextractf32x4` with a memory operand
/// (128 bits moved as they are).
///
/// # Safety
/// The CPU has AVX-512F; `to` is valid for writing two values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn store_quarter<const Q: u8>(to: *mut f64, v: std::arch::x86_64::__m512d) {
    // SAFETY: the caller vouches for the CPU and for two writable values at `to`.
    unsafe {
        std::arch::asm!(
            "vextractf32x4 xmmword ptr [{to}], {v}, {q}",
            to = in(reg) to,
            v = in(zmm_reg) v,
            q = const Q,
            options(nostack, preserves_flags),
        );
    }
}

/// [`run_series2_batch`] with two signals per 256-bit register.
///
/// # Safety
/// The CPU has AVX2 and FMA; each of `p`'s pointers holds `n` frames.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn batch_avx2<const K: usize, const S: usize>(
    coefs: &[[Df1Coefs; S]; K],
    hist: &mut [[[Df1State; S]; 2]; K],
    p: &[[*mut f64; 2]; K],
    n: usize,
    clock: &mut FlushClock,
) {
    batch_body::<Ymm, K, S>(coefs, hist, p, n, clock)
}

/// [`run_series2_batch`] with four signals per 512-bit register.
///
/// # Safety
/// The CPU has AVX-512F, AVX-512VL, AVX2 and FMA; each of `p`'s pointers holds `n` frames.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn batch_avx512<const K: usize, const S: usize>(
    coefs: &[[Df1Coefs; S]; K],
    hist: &mut [[[Df1State; S]; 2]; K],
    p: &[[*mut f64; 2]; K],
    n: usize,
    clock: &mut FlushClock,
) {
    batch_body::<Zmm, K, S>(coefs, hist, p, n, clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which kernel runs a batch in [`run`].
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Build {
        Portable,
        Avx2,
        Avx512,
        /// [`staggered::series_avx512`], for batches of one signal.
        Staggered,
        /// [`paired::batch_avx512`], for the batches it [fits](paired::fits).
        Paired,
    }

    /// The builds this CPU can run.
    fn builds() -> Vec<Build> {
        let mut out = vec![Build::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Build::Avx2);
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    out.push(Build::Avx512);
                    out.push(Build::Staggered);
                    out.push(Build::Paired);
                }
            }
        }
        assert!(
            out.len() > 1 || std::env::var_os("CI").is_none(),
            "CI machines have AVX2"
        );
        out
    }

    /// One block of the batch through `build`'s kernel.
    fn run<const K: usize, const S: usize>(
        build: Build,
        coefs: &[[Df1Coefs; S]; K],
        hist: &mut [[[Df1State; S]; 2]; K],
        chans: &mut [(&mut [f64], &mut [f64]); K],
        clock: &mut FlushClock,
    ) {
        let n = chans.iter().map(|(l, _)| l.len()).min().unwrap_or(0);
        match build {
            Build::Portable => {
                crate::dsp::simd::force_portable(true);
                run_series2_batch::<K, S>(coefs, hist, chans, clock);
                crate::dsp::simd::force_portable(false);
            }
            #[cfg(target_arch = "x86_64")]
            Build::Avx2 => {
                let p = pointers(chans);
                // SAFETY: the CPU has AVX2 and FMA (see `builds`); every channel holds n frames.
                unsafe { batch_avx2::<K, S>(coefs, hist, &p, n, clock) }
            }
            #[cfg(target_arch = "x86_64")]
            Build::Avx512 => {
                let p = pointers(chans);
                // SAFETY: the CPU has AVX-512F and AVX-512VL (see `builds`); every channel holds
                // n frames.
                unsafe { batch_avx512::<K, S>(coefs, hist, &p, n, clock) }
            }
            #[cfg(target_arch = "x86_64")]
            Build::Staggered => {
                let p = pointers(chans);
                // SAFETY: the CPU has AVX-512F (see `builds`); both channels hold n frames.
                unsafe { staggered::series_avx512::<S>(&coefs[0], &mut hist[0], p[0], n, clock) }
            }
            #[cfg(target_arch = "x86_64")]
            Build::Paired => {
                let p = pointers(chans);
                // SAFETY: the CPU has AVX-512F and AVX-512VL (see `builds`); every channel holds
                // n frames.
                unsafe { paired::batch_avx512::<K, S>(coefs, hist, &p, n, clock) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!(),
        }
    }

    /// `K` stereo signals through `S` sections each (different sections per signal), in blocks
    /// of odd lengths from a clock that starts between flush positions: every build's batch gives
    /// the bits of [`Df1Coefs::tick`] sample by sample with every history value flushed at the
    /// flush positions, outputs and histories. The right channels are quiet (1e-22) throughout and
    /// the left ones end quiet, so that the flushes change what follows them, and they do.
    fn every_build_gives_the_bits_of_the_definition<const K: usize, const S: usize>() {
        let coefs: [[Df1Coefs; S]; K] = std::array::from_fn(|k| {
            std::array::from_fn(|i| {
                let g = 0.003 + 0.09 * (k * S + i) as f64;
                Df1Coefs::bilinear(g, 0.4 + 0.3 * i as f64, 1.0, -0.3 + 0.2 * k as f64, 0.1)
            })
        });
        let (len, quiet_from) = (421, 260);
        let mut next = crate::dsp::test_signal::noise(4321 + K as u64);
        let input: Vec<[Vec<f64>; 2]> = (0..K)
            .map(|_| {
                [0, 1].map(|ch| {
                    (0..len)
                        .map(|i| {
                            next()
                                * if ch == 0 && i < quiet_from {
                                    1.0
                                } else {
                                    1e-22
                                }
                        })
                        .collect()
                })
            })
            .collect();
        let start = 37u64; // the clock's position at the first frame
        let is_flush = |i: usize| (start + i as u64 + 1) % crate::dsp::filters::FLUSH_PERIOD == 0;
        // Sample by sample, the definition; and without the flushes, to see that they matter.
        let definition = |with_flush: bool| {
            let mut out = input.clone();
            let mut hist = [[[[0.0; 4]; S]; 2]; K];
            for (k, sig) in out.iter_mut().enumerate() {
                for (ch, x) in sig.iter_mut().enumerate() {
                    let h = &mut hist[k][ch];
                    for (i, v) in x.iter_mut().enumerate() {
                        for s in 0..S {
                            *v = coefs[k][s].tick(&mut h[s], *v);
                        }
                        if with_flush && is_flush(i) {
                            h.iter_mut().flatten().for_each(|v| *v = flush(*v));
                        }
                    }
                }
            }
            (out, hist)
        };
        let (want, want_hist) = definition(true);
        let (unflushed, _) = definition(false);
        assert!(want != unflushed, "{K}×{S}: the flushes change the output");
        for build in builds() {
            if build == Build::Staggered && K > 1 || build == Build::Paired && !paired::fits(K, S) {
                continue;
            }
            let mut got = input.clone();
            let mut hist = [[[[0.0; 4]; S]; 2]; K];
            let mut clock = FlushClock::default();
            clock.next_run(start as usize);
            // Frames 26, 90, 154, … are flush positions: a block ends on one (the staggered
            // kernel's later sections flush while it drains), blocks of one, two and three
            // frames (shorter than its pipeline), one ends just before a flush position.
            for (from, to) in [
                (0, 91),
                (91, 92),
                (92, 94),
                (94, 97),
                (97, 154),
                (154, 301),
                (301, len),
            ] {
                let mut it = got.iter_mut();
                let mut chans: [(&mut [f64], &mut [f64]); K] = std::array::from_fn(|_| {
                    let [l, r] = it.next().unwrap();
                    (&mut l[from..to], &mut r[from..to])
                });
                run::<K, S>(build, &coefs, &mut hist, &mut chans, &mut clock);
            }
            assert_eq!(clock.position(), start + len as u64);
            for k in 0..K {
                for c in 0..2 {
                    for (j, w) in want[k][c].iter().enumerate() {
                        assert!(
                            got[k][c][j].to_bits() == w.to_bits(),
                            "{build:?}, {K}×{S}, signal {k} channel {c} sample {j}"
                        );
                    }
                }
            }
            let bits = |h: &[[[Df1State; S]; 2]; K]| {
                h.iter()
                    .flatten()
                    .flatten()
                    .flatten()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                bits(&hist),
                bits(&want_hist),
                "{build:?}, {K}×{S}: histories"
            );
        }
    }

    #[test]
    fn every_build_and_batch_size_gives_the_bits_of_the_definition() {
        every_build_gives_the_bits_of_the_definition::<1, 1>();
        every_build_gives_the_bits_of_the_definition::<1, 2>();
        every_build_gives_the_bits_of_the_definition::<1, 3>();
        every_build_gives_the_bits_of_the_definition::<1, 4>();
        every_build_gives_the_bits_of_the_definition::<2, 2>();
        every_build_gives_the_bits_of_the_definition::<3, 1>();
        every_build_gives_the_bits_of_the_definition::<4, 2>();
        every_build_gives_the_bits_of_the_definition::<5, 1>();
        every_build_gives_the_bits_of_the_definition::<5, 3>();
        every_build_gives_the_bits_of_the_definition::<5, 4>();
        every_build_gives_the_bits_of_the_definition::<6, 1>();
        every_build_gives_the_bits_of_the_definition::<6, 2>();
        every_build_gives_the_bits_of_the_definition::<6, 3>();
        every_build_gives_the_bits_of_the_definition::<7, 1>();
        every_build_gives_the_bits_of_the_definition::<7, 4>();
        every_build_gives_the_bits_of_the_definition::<8, 2>();
    }
}
