//! The fast path's per-frame kernels, each built portable, for AVX2 and for AVX-512 (picked at
//! run time; every build computes the same bits): the static curve's reductions of a chunk, the
//! gains applied, and the ballistics of up to eight tracks in AVX2 registers.

use crate::dsp::dynamics::core::{ballistics, fmax, Chunk, TrackCoefs, CHUNK, LEVEL_FLOOR};
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

/// The static curve's reduction for the detector value `max(|x|, |y|)`.
#[inline(always)]
pub(super) fn target(x: f64, y: f64, scale: f64, c: &TrackCoefs) -> f64 {
    let v = fmax(x.abs(), y.abs());
    c.curve
        .reduction_db(scale * fastmath::log2(fmax(v, LEVEL_FLOOR)))
}

/// The factor a sample is multiplied by for a smoothed reduction of `g` dB:
/// `(1 − mix) + mix·gain`, gain = 10^((makeup − g)/20).
#[inline(always)]
pub(super) fn factor(g: f64, makeup: f64, mix: f64) -> f64 {
    let gain = fastmath::db_to_amp(makeup - g);
    (1.0 - mix) + mix * gain
}

/// Static-curve reductions of the detector values `|a|`, `|b|` (the louder of the two; pass the
/// same slice twice for one channel; mean squares are never negative). When every value of the
/// chunk is at or under `quiet`, below the knee by a margin, every reduction is exactly 0 and
/// the logarithms are skipped. (Skipping them for quiet groups of four frames in a louder chunk
/// was tried: slower, the branch mispredicts.)
#[inline(always)]
fn peak_targets_impl(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    if all_quiet(a, b, quiet) {
        t.fill(0.0);
        return;
    }
    for ((t, &x), &y) in t.iter_mut().zip(a).zip(b) {
        *t = target(x, y, scale, c);
    }
}

/// `x ← (x·((1 − mix) + mix·gain))·post`, gain = 10^((makeup − g)/20), on two channels: `post`
/// is a gain stage after the compressor folded in (1: none; `y·1 = y`).
#[inline(always)]
fn apply2_impl(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    for ((l, r), &g) in l.iter_mut().zip(r.iter_mut()).zip(g) {
        let f = factor(g, makeup, mix);
        *l = *l * f * post;
        *r = *r * f * post;
    }
}

/// [`apply2_impl`] on one channel.
#[inline(always)]
fn apply1_impl(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    for (x, &g) in x.iter_mut().zip(g) {
        *x = *x * factor(g, makeup, mix) * post;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn peak_targets_avx2(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    peak_targets_impl(a, b, scale, c, quiet, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply2_avx2(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply2_impl(l, r, g, makeup, mix, post)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply1_avx2(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply1_impl(x, g, makeup, mix, post)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn peak_targets_avx512(
    a: &[f64],
    b: &[f64],
    scale: f64,
    c: &TrackCoefs,
    quiet: f64,
    t: &mut [f64],
) {
    peak_targets_impl(a, b, scale, c, quiet, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn apply2_avx512(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    apply2_impl(l, r, g, makeup, mix, post)
}

// The logarithm and the exponential are long dependency chains per frame: eight frames per
// instruction (AVX-512) keep twice as many of them in flight in the same scheduler as four.

/// The ballistics of a group: more than four tracks (made only when the CPU has AVX2) in
/// [`ballistics_x8`].
pub(super) fn group_ballistics<const K: usize>(
    state: &mut [f64; K],
    g: &mut [Chunk; K],
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    #[cfg(target_arch = "x86_64")]
    if K > 4 && crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { ballistics_x8::<K>(state, g, n, coefs) };
    }
    ballistics::<K>(state, g, n, coefs)
}

/// [`ballistics`] of up to eight tracks in two AVX2 registers (lanes past `K` repeat the last
/// track and are not stored): the same operations lane by lane as `core::smooth`, so the same
/// bits; two recursions of a multiply, an add and a blend per frame for all of them.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn ballistics_x8<const K: usize>(
    state: &mut [f64; K],
    g: &mut [Chunk; K],
    n: usize,
    coefs: &[TrackCoefs; K],
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
    for i in 0..n.min(CHUNK) {
        for h in 0..halves {
            let t = lanes(&|k| g[k][i], h);
            let s = st[h];
            let up = _mm256_add_pd(_mm256_mul_pd(a0[h], s), _mm256_mul_pd(a1[h], t));
            let down = _mm256_add_pd(_mm256_mul_pd(r0[h], s), _mm256_mul_pd(r1[h], t));
            let s = _mm256_blendv_pd(down, up, _mm256_cmp_pd::<_CMP_GT_OQ>(t, s));
            st[h] = s;
            // `fmax(max, s)`: vmaxpd returns its first operand only when it is the greater.
            max[h] = _mm256_max_pd(max[h], s);
            let mut out = [0.0f64; 4];
            // SAFETY: four doubles.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), s) };
            for (j, &v) in out.iter().enumerate() {
                if 4 * h + j < K {
                    g[4 * h + j][i] = v;
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

pub(super) fn peak_targets(
    a: &[f64],
    b: &[f64],
    scale: f64,
    c: &TrackCoefs,
    quiet: f64,
    t: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { peak_targets_avx512(a, b, scale, c, quiet, t) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { peak_targets_avx2(a, b, scale, c, quiet, t) };
    }
    peak_targets_impl(a, b, scale, c, quiet, t)
}

pub(super) fn apply2(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { apply2_avx512(l, r, g, makeup, mix, post) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { apply2_avx2(l, r, g, makeup, mix, post) };
    }
    apply2_impl(l, r, g, makeup, mix, post)
}

pub(super) fn apply1(x: &mut [f64], g: &[f64], makeup: f64, mix: f64, post: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { apply1_avx2(x, g, makeup, mix, post) };
    }
    apply1_impl(x, g, makeup, mix, post)
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
            for ((t, a), b) in t.chunks_mut(64).zip(a.chunks(64)).zip(b.chunks(64)) {
                f(a, b, t);
            }
            t
        };
        let apply = |f: &dyn Fn(&mut [f64], &mut [f64])| {
            let (mut l, mut r) = (a.clone(), b.clone());
            f(&mut l, &mut r);
            (l, r)
        };
        let t0 = chunks(&|a, b, t| peak_targets_impl(a, b, scale, &track, quiet, t));
        assert!(t0.iter().any(|&t| t > 10.0) && t0.iter().filter(|&&t| t == 0.0).count() > 64);
        let y0 = apply(&|l, r| apply2_impl(l, r, &g, 2.5, 0.8, 0.7));
        let mut builds = 0;
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            let t = chunks(&|a, b, t| unsafe { peak_targets_avx2(a, b, scale, &track, quiet, t) });
            assert!(t == t0, "AVX2 targets");
            let y = apply(&|l, r| unsafe { apply2_avx2(l, r, &g, 2.5, 0.8, 0.7) });
            assert!(y == y0, "AVX2 gains");
            builds += 1;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
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

    /// Groups of five to eight tracks in the AVX2 registers smooth as the generic recursion
    /// does, bit for bit: states, smoothed reductions and maxima, over whole and partial chunks.
    #[test]
    fn wide_ballistics_are_the_generic_ones() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            assert!(std::env::var_os("CI").is_none(), "CI machines have AVX2");
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
            let (mut s0, mut s1) = ([0.0; K], [0.0; K]);
            for (c, n) in [64, 17, 64, 1, 0, 64].into_iter().enumerate() {
                let mut g0: [Chunk; K] = std::array::from_fn(|k| targets(k, c));
                let mut g1 = g0;
                let m0 = ballistics::<K>(&mut s0, &mut g0, n, &coefs);
                // SAFETY: the CPU has AVX2 (checked above).
                let m1 = unsafe { ballistics_x8::<K>(&mut s1, &mut g1, n, &coefs) };
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&s0), bits(&s1), "{K} tracks, chunk {c}: states");
                assert_eq!(bits(&m0), bits(&m1), "{K} tracks, chunk {c}: maxima");
                for k in 0..K {
                    assert_eq!(
                        bits(&g0[k]),
                        bits(&g1[k]),
                        "{K} tracks, chunk {c}, track {k}"
                    );
                }
            }
            assert!(s0.iter().all(|&s| s > 0.0), "the tracks reduce");
        }
        check::<5>();
        check::<6>();
        check::<7>();
        check::<8>();
    }
}
