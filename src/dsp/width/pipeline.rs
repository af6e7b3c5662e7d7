//! The mono maker's AVX2 kernel: its six section lanes in two registers, run as a wavefront.
//!
//! The mono maker runs four SVF sections: the first pass of the LR8 (sections 0 and 1) on two
//! lanes each (mid all-pass, side high-pass), then the second pass of the side's high-pass
//! (sections 0 and 1, one lane each). Here the first pass is one 256-bit register (lanes: section
//! 0 mid, section 0 side, section 1 mid, section 1 side) and the second pass one 128-bit register
//! (section 0, section 1). Each section works [`D`] frames behind the one feeding it: at step
//! `t` the first section takes frame `t`, the second `t − D`, the third `t − 2D`, the last
//! `t − 3D`, so a section's input is what its feeder produced `D` steps earlier and the
//! register-wide recursion never waits on a section's output within `D` steps. Every lane does
//! the IEEE operations of `crossover::SvfState::tick` and of `MonoMaker::first_stage` /
//! `second_stage` on its own frames in order: the same bits as the frame-by-frame path
//! (`tests` in `super`).
//!
//! The pipeline fills and drains within each stretch (at most [`STRETCH`] frames), with the
//! lanes that have no frame at a step left as they are (masked), so the states at the end of a
//! stretch are those of the frame-by-frame path.

use super::MonoMaker;
use std::arch::x86_64::*;

/// Steps between a section and the next: the recursion through a section's output (about
/// 24 cycles) spread over `D` steps stays under the throughput of a step.
const D: usize = 2;

/// Most frames per stretch (the width runs chunks of 64).
const STRETCH: usize = 64;

/// One register's section coefficients, lane by lane.
struct Lanes<V> {
    a11: V,
    a22: V,
    b1: V,
    neg_b1: V,
    b2: V,
    /// `2k` on all-pass lanes, `k` on high-pass lanes.
    k: V,
    /// All ones on high-pass lanes (their `v2` is subtracted), zero on all-pass lanes.
    hp: V,
}

/// [`MonoMaker::run`] on AVX2: the width closure `w` gives frame `i`'s factor.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn run(
    m: &mut MonoMaker,
    l: &mut [f64],
    r: &mut [f64],
    w: impl Fn(usize) -> f64,
) {
    let n = l.len().min(r.len());
    let mut start = 0;
    while start < n {
        let len = (n - start).min(STRETCH);
        stretch(
            m,
            &mut l[start..start + len],
            &mut r[start..start + len],
            |i| w(start + i),
        );
        start += len;
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn stretch(m: &mut MonoMaker, l: &mut [f64], r: &mut [f64], w: impl Fn(usize) -> f64) {
    let n = l.len();
    // Mid and side of every frame, interleaved: one load per step.
    let mut ms = [0.0f64; 2 * STRETCH];
    for t in 0..n {
        ms[2 * t] = 0.5 * (l[t] + r[t]);
        ms[2 * t + 1] = 0.5 * (l[t] - r[t]);
    }
    let [c0, c1] = m.coefs;
    let all = f64::from_bits(u64::MAX);
    let f = Lanes {
        a11: _mm256_set_pd(c1.a11, c1.a11, c0.a11, c0.a11),
        a22: _mm256_set_pd(c1.a22, c1.a22, c0.a22, c0.a22),
        b1: _mm256_set_pd(c1.b1, c1.b1, c0.b1, c0.b1),
        neg_b1: _mm256_set_pd(-c1.b1, -c1.b1, -c0.b1, -c0.b1),
        b2: _mm256_set_pd(c1.b2, c1.b2, c0.b2, c0.b2),
        k: _mm256_set_pd(c1.k, 2.0 * c1.k, c0.k, 2.0 * c0.k),
        hp: _mm256_set_pd(all, 0.0, all, 0.0),
    };
    let s = Lanes {
        a11: _mm_set_pd(c1.a11, c0.a11),
        a22: _mm_set_pd(c1.a22, c0.a22),
        b1: _mm_set_pd(c1.b1, c0.b1),
        neg_b1: _mm_set_pd(-c1.b1, -c0.b1),
        b2: _mm_set_pd(c1.b2, c0.b2),
        k: _mm_set_pd(c1.k, c0.k),
        hp: _mm_set_pd(all, all),
    };
    let (f0, f1) = (m.first[0].states(), m.first[1].states());
    let (s0, s1) = (m.second[0].states(), m.second[1].states());
    let mut fs = [
        _mm256_set_pd(f1.0[1], f1.0[0], f0.0[1], f0.0[0]),
        _mm256_set_pd(f1.1[1], f1.1[0], f0.1[1], f0.1[0]),
    ];
    let mut ss = [_mm_set_pd(s1.0[0], s0.0[0]), _mm_set_pd(s1.1[0], s0.1[0])];
    // Mid (after the all-pass) and side (after the high-pass) of every frame.
    let mut mid = [0.0f64; STRETCH];
    let mut side = [0.0f64; STRETCH];
    // The outputs of the last D steps, newest first.
    let mut out_f = [_mm256_setzero_pd(); D];
    let mut out_s = [_mm_setzero_pd(); D];
    let steps = n + 3 * D;
    for t in 0..steps {
        let steady = t >= 3 * D && t < n;
        let input = if t < n {
            // SAFETY: 2t + 1 < 2n ≤ 2·STRETCH.
            unsafe { _mm_loadu_pd(ms.as_ptr().add(2 * t)) }
        } else {
            _mm_setzero_pd()
        };
        let (old_f, old_s) = (out_f[D - 1], out_s[D - 1]);
        let v0f =
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(input), _mm256_castpd256_pd128(old_f));
        let v0s = _mm_shuffle_pd::<0b01>(_mm256_extractf128_pd::<1>(old_f), old_s);
        let (nf, yf) = tick256(&f, fs, v0f);
        let (ns, ys) = tick128(&s, ss, v0s);
        if steady {
            fs = nf;
            ss = ns;
        } else {
            // Lanes with a frame at this step advance; the others keep their state.
            let live = |lo: usize| t >= lo && t < n + lo;
            let mf = mask256(live(0), live(D));
            let ms_ = mask128(live(2 * D), live(3 * D));
            fs = [
                _mm256_blendv_pd(fs[0], nf[0], mf),
                _mm256_blendv_pd(fs[1], nf[1], mf),
            ];
            ss = [
                _mm_blendv_pd(ss[0], ns[0], ms_),
                _mm_blendv_pd(ss[1], ns[1], ms_),
            ];
        }
        if t >= D && t < n + D {
            mid[t - D] = _mm_cvtsd_f64(_mm256_extractf128_pd::<1>(yf));
        }
        if t >= 3 * D {
            side[t - 3 * D] = _mm_cvtsd_f64(_mm_unpackhi_pd(ys, ys));
        }
        for j in (1..D).rev() {
            out_f[j] = out_f[j - 1];
            out_s[j] = out_s[j - 1];
        }
        out_f[0] = yf;
        out_s[0] = ys;
    }
    for i in 0..n {
        let wi = w(i);
        l[i] = mid[i] + wi * side[i];
        r[i] = mid[i] - wi * side[i];
    }
    let mut a = [[0.0f64; 4]; 2];
    let mut b = [[0.0f64; 2]; 2];
    for j in 0..2 {
        // SAFETY: four and two doubles.
        unsafe {
            _mm256_storeu_pd(a[j].as_mut_ptr(), fs[j]);
            _mm_storeu_pd(b[j].as_mut_ptr(), ss[j]);
        }
    }
    m.first[0].set_states([a[0][0], a[0][1]], [a[1][0], a[1][1]]);
    m.first[1].set_states([a[0][2], a[0][3]], [a[1][2], a[1][3]]);
    for (k, sec) in m.second.iter_mut().enumerate() {
        // Lane 1 of the second pass carries zeros in the frame-by-frame path: its state stays.
        let (ic1, ic2) = sec.states();
        sec.set_states([b[0][k], ic1[1]], [b[1][k], ic2[1]]);
    }
}

/// Lanes 0–1 on when `lo`, lanes 2–3 when `hi`.
#[target_feature(enable = "avx2")]
#[inline]
fn mask256(lo: bool, hi: bool) -> __m256d {
    let b = |on: bool| if on { -1i64 } else { 0 };
    _mm256_castsi256_pd(_mm256_set_epi64x(b(hi), b(hi), b(lo), b(lo)))
}

/// Lane 0 on when `lo`, lane 1 when `hi`.
#[target_feature(enable = "avx2")]
#[inline]
fn mask128(lo: bool, hi: bool) -> __m128d {
    let b = |on: bool| if on { -1i64 } else { 0 };
    _mm_castsi128_pd(_mm_set_epi64x(b(hi), b(lo)))
}

/// One step of the four first-pass lanes: the new states and each lane's output (all-pass
/// `x − 2k·v1` or high-pass `x − k·v1 − v2`), as `SvfState::tick` and `first_stage`.
#[target_feature(enable = "avx2")]
#[inline]
fn tick256(c: &Lanes<__m256d>, st: [__m256d; 2], v0: __m256d) -> ([__m256d; 2], __m256d) {
    let [s1, s2] = st;
    let half = _mm256_set1_pd(0.5);
    let n1 = _mm256_add_pd(
        _mm256_add_pd(_mm256_mul_pd(c.a11, s1), _mm256_mul_pd(c.neg_b1, s2)),
        _mm256_mul_pd(c.b1, v0),
    );
    let n2 = _mm256_add_pd(
        _mm256_add_pd(_mm256_mul_pd(c.b1, s1), _mm256_mul_pd(c.a22, s2)),
        _mm256_mul_pd(c.b2, v0),
    );
    let v1 = _mm256_mul_pd(half, _mm256_add_pd(s1, n1));
    let v2 = _mm256_mul_pd(half, _mm256_add_pd(s2, n2));
    // x − 0 is x, bit for bit: the all-pass lanes subtract a zero.
    let y = _mm256_sub_pd(
        _mm256_sub_pd(v0, _mm256_mul_pd(c.k, v1)),
        _mm256_and_pd(v2, c.hp),
    );
    ([n1, n2], y)
}

/// [`tick256`] on the two second-pass lanes (both high-pass).
#[target_feature(enable = "avx2")]
#[inline]
fn tick128(c: &Lanes<__m128d>, st: [__m128d; 2], v0: __m128d) -> ([__m128d; 2], __m128d) {
    let [s1, s2] = st;
    let half = _mm_set1_pd(0.5);
    let n1 = _mm_add_pd(
        _mm_add_pd(_mm_mul_pd(c.a11, s1), _mm_mul_pd(c.neg_b1, s2)),
        _mm_mul_pd(c.b1, v0),
    );
    let n2 = _mm_add_pd(
        _mm_add_pd(_mm_mul_pd(c.b1, s1), _mm_mul_pd(c.a22, s2)),
        _mm_mul_pd(c.b2, v0),
    );
    let v1 = _mm_mul_pd(half, _mm_add_pd(s1, n1));
    let v2 = _mm_mul_pd(half, _mm_add_pd(s2, n2));
    let y = _mm_sub_pd(_mm_sub_pd(v0, _mm_mul_pd(c.k, v1)), _mm_and_pd(v2, c.hp));
    ([n1, n2], y)
}
