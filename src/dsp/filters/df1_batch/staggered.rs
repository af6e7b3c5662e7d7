//! One stereo signal through a series of up to [`MAX_SECTIONS`] DF1 sections on AVX-512F, the
//! sections staggered across the lanes of one 512-bit register: the kernel of an EQ that runs
//! alone (the master's), where a batch's registers would hold one signal and run its sections
//! one after the other within each frame.
//!
//! Section `s` holds its left and right channels in lanes `2(S−1−s)` and `2(S−1−s) + 1` (the
//! last section in lanes 0 and 1) and works [`LAG`] frames behind the section feeding it: at
//! step `t` section 0 takes frame `t` and section `s` frame `t − s·LAG`, whose input is what
//! section `s − 1` gave `LAG` steps earlier (one permute moves every section's output on to the
//! next section's lanes and the frame into section 0's). Within a step the sections are then
//! independent: a frame costs one recursion of the register (a section's: the output two
//! frames back enters the new one through three dependent fused multiply-adds, about six
//! cycles a frame), not `S` of them one after the other.
//!
//! Every lane does the operations of [`Df1Coefs::tick`] in its order on its section's frames,
//! in order, so the outputs and histories are bit for bit those of
//! [`run_series2`](super::super::df1::run_series2) with a flush of every history value at the
//! clock's flush positions. The pipeline fills at the block's start and drains at its end: a
//! lane without a frame at a step keeps its history (masked). Each section's histories are
//! flushed right after it took a frame at a flush position, so they are, frame by frame, those
//! of the section-after-section path.

use super::super::df1::{Df1Coefs, Df1State};
use super::super::{FlushClock, FLUSH_BELOW, FLUSH_PERIOD};
use std::arch::x86_64::*;

/// Most sections in the register (two lanes each).
pub(super) const MAX_SECTIONS: usize = 4;

/// Steps between a section and the next: a section's output reaches the next section's
/// output through a permute and two fused multiply-adds (about 11 cycles), which spread over
/// two steps stays under a section's own recursion (about six cycles a step).
const LAG: usize = 3;

const _: () = assert!(LAG == 3, "the kernel keeps the outputs of three steps");

/// The sections' coefficients in their lanes (zero in lanes without a section, which then
/// carry zeros), and where each lane's input comes from.
struct Sections {
    b0: __m512d,
    b1: __m512d,
    b2: __m512d,
    na1: __m512d,
    na2: __m512d,
    /// `vpermt2pd`'s index: lanes of section `s ≥ 1` take section `s − 1`'s output (the first
    /// operand, two lanes up), section 0's lanes the frame (lanes 0 and 1 of the second
    /// operand, 8 and 9); lanes without a section their own (zero) output.
    feed: __m512i,
}

/// The lane of section `s`'s channel `ch` in a series of `S`.
const fn lane<const S: usize>(s: usize, ch: usize) -> usize {
    2 * (S - 1 - s) + ch
}

/// The lanes of section `s` in a series of `S`, as a mask.
const fn section_lanes<const S: usize>(s: usize) -> __mmask8 {
    0b11 << (2 * (S - 1 - s))
}

/// One step of every lane: the input `x` through its section, history `h` shifted, as
/// [`Df1Coefs::tick`] does (the same operations in the same order); returns the outputs.
#[target_feature(enable = "avx512f")]
#[inline]
fn tick(c: &Sections, h: &mut [__m512d; 4], x: __m512d) -> __m512d {
    let [x1, x2, y1, y2] = *h;
    let t = _mm512_fmadd_pd(c.b1, x1, _mm512_mul_pd(c.b2, x2));
    let t = _mm512_fmadd_pd(c.na2, y2, t);
    let t = _mm512_fmadd_pd(c.b0, x, t);
    let y = _mm512_fmadd_pd(c.na1, y1, t);
    *h = [x, x1, y, y1];
    y
}

/// Every lane's input at a step: the outputs `older` of [`LAG`] steps before moved on to the
/// next section's lanes, and the frame `input` (lanes 0 and 1) into section 0's (a lone
/// section takes the frame as it is).
#[target_feature(enable = "avx512f")]
#[inline]
fn inputs<const S: usize>(c: &Sections, older: __m512d, input: __m512d) -> __m512d {
    if S == 1 {
        input
    } else {
        _mm512_permutex2var_pd(older, c.feed, input)
    }
}

/// [`flush`](super::super::flush) of every history value in the lanes `lanes`.
#[target_feature(enable = "avx512f")]
#[inline]
fn flush_lanes(h: &mut [__m512d; 4], lanes: __mmask8) {
    for v in h {
        let tiny = _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(
            lanes,
            _mm512_abs_pd(*v),
            _mm512_set1_pd(FLUSH_BELOW),
        );
        *v = _mm512_maskz_mov_pd(!tiny, *v);
    }
}

/// The frame at `at` of channels `p` (left, right) in lanes 0 and 1.
///
/// # Safety
/// Both channels hold a value at `at`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn frame(p: [*mut f64; 2], at: usize) -> __m512d {
    // SAFETY: the caller vouches for both values.
    unsafe { _mm512_zextpd128_pd512(_mm_setr_pd(*p[0].add(at), *p[1].add(at))) }
}

/// Lanes 0 and 1 of `y` (the last section's output) to frame `at` of channels `p`.
///
/// # Safety
/// Both channels hold a value at `at`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store(y: __m512d, p: [*mut f64; 2], at: usize) {
    let q = _mm512_castpd512_pd128(y);
    // SAFETY: the caller vouches for both values.
    unsafe {
        _mm_storel_pd(p[0].add(at), q);
        _mm_storeh_pd(p[1].add(at), q);
    }
}

/// The stereo signal of channels `p` (`n` frames each) through the `S` sections `coefs`, with
/// histories `hist` (left, then right), the histories flushed at the flush positions of
/// `clock` (advanced by `n`): what [`run_series2`](super::super::df1::run_series2) and those
/// flushes give, bit for bit.
///
/// # Safety
/// The CPU has AVX-512F; both of `p`'s pointers hold `n` frames.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn series_avx512<const S: usize>(
    coefs: &[Df1Coefs; S],
    hist: &mut [[Df1State; S]; 2],
    p: [*mut f64; 2],
    n: usize,
    clock: &mut FlushClock,
) {
    const { assert!(S >= 1 && S <= MAX_SECTIONS) };
    let lag = LAG * (S - 1);
    let lanes = |f: &dyn Fn(&Df1Coefs) -> f64| {
        let mut v = [0.0; 8];
        for (s, c) in coefs.iter().enumerate() {
            v[lane::<S>(s, 0)] = f(c);
            v[lane::<S>(s, 1)] = f(c);
        }
        // SAFETY: eight values.
        unsafe { _mm512_loadu_pd(v.as_ptr()) }
    };
    let mut feed = [0i64; 8];
    for (i, f) in feed.iter_mut().enumerate() {
        *f = match i {
            i if i < lane::<S>(0, 0) => i as i64 + 2,
            i if i < 2 * S => 8 + (i - lane::<S>(0, 0)) as i64,
            i => i as i64,
        };
    }
    let c = Sections {
        b0: lanes(&|c| c.b0),
        b1: lanes(&|c| c.b1),
        b2: lanes(&|c| c.b2),
        na1: lanes(&|c| c.na1),
        na2: lanes(&|c| c.na2),
        // SAFETY: eight values.
        feed: unsafe { _mm512_loadu_si512(feed.as_ptr().cast()) },
    };
    let mut h = [_mm512_setzero_pd(); 4];
    for (j, v) in h.iter_mut().enumerate() {
        let mut a = [0.0; 8];
        for s in 0..S {
            for ch in 0..2 {
                a[lane::<S>(s, ch)] = hist[ch][s][j];
            }
        }
        // SAFETY: eight values.
        *v = unsafe { _mm512_loadu_pd(a.as_ptr()) };
    }
    // The clock's position at the block's first frame; frame `i` is a flush position when
    // `(start + i + 1) % FLUSH_PERIOD == 0`.
    let start = clock.position();
    let mut left = n;
    while left > 0 {
        left -= clock.next_run(left).0;
    }
    // The outputs of the last three steps (`LAG`), the newest first.
    let (mut newer, mut middle, mut older) = (
        _mm512_setzero_pd(),
        _mm512_setzero_pd(),
        _mm512_setzero_pd(),
    );
    let mut t = 0;
    while t < n + lag {
        // Section `s` flushes at step `t` when its frame `t − s·LAG` is a flush position: when
        // this is `s·LAG`.
        let phase = ((start + t as u64 + 1) % FLUSH_PERIOD) as usize;
        if t >= lag && t < n {
            // Every section has a frame. The steps up to the next one where a section flushes
            // (or to the block's end) run as they are, then that one with its flush.
            let period = FLUSH_PERIOD as usize;
            let to_flush = (0..S)
                .map(|s| (LAG * s + period - phase) % period)
                .min()
                .unwrap_or(0);
            let end = (t + to_flush).min(n);
            for u in t..end {
                // SAFETY: frames `u` and `u − lag` are the block's.
                let x = inputs::<S>(&c, older, unsafe { frame(p, u) });
                let y = tick(&c, &mut h, x);
                unsafe { store(y, p, u - lag) };
                (older, middle, newer) = (middle, newer, y);
            }
            t = end;
            if t < n {
                let flushing = (phase + to_flush) % period / LAG;
                // SAFETY: frames `t` and `t − lag` are the block's.
                let x = inputs::<S>(&c, older, unsafe { frame(p, t) });
                let y = tick(&c, &mut h, x);
                flush_lanes(&mut h, section_lanes::<S>(flushing));
                unsafe { store(y, p, t - lag) };
                (older, middle, newer) = (middle, newer, y);
                t += 1;
            }
            continue;
        }
        // Filling or draining: the lanes of a section with a frame at this step advance, the
        // others keep their histories; those of a section whose frame is a flush position are
        // flushed.
        let input = if t < n {
            // SAFETY: frame `t` is the block's.
            unsafe { frame(p, t) }
        } else {
            _mm512_setzero_pd()
        };
        let x = inputs::<S>(&c, older, input);
        let before = h;
        let y = tick(&c, &mut h, x);
        let (mut live, mut flush): (__mmask8, __mmask8) = (0, 0);
        for s in 0..S {
            if t >= LAG * s && t - LAG * s < n {
                live |= section_lanes::<S>(s);
                if phase == LAG * s {
                    flush |= section_lanes::<S>(s);
                }
            }
        }
        for (v, old) in h.iter_mut().zip(before) {
            *v = _mm512_mask_blend_pd(live, old, *v);
        }
        flush_lanes(&mut h, flush);
        if t >= lag {
            // SAFETY: frame `t − lag` is the block's (`t < n + lag`).
            unsafe { store(y, p, t - lag) };
        }
        (older, middle, newer) = (middle, newer, y);
        t += 1;
    }
    for (j, v) in h.into_iter().enumerate() {
        let mut a = [0.0; 8];
        // SAFETY: eight values.
        unsafe { _mm512_storeu_pd(a.as_mut_ptr(), v) };
        for s in 0..S {
            for ch in 0..2 {
                hist[ch][s][j] = a[lane::<S>(s, ch)];
            }
        }
    }
}
