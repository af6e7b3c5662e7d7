//! Non-finite samples (NaN, ±infinity) in decoded material: muted where they are read, counted,
//! and the first one's position kept, so renders and `check` can say which stem has them and
//! where.

use serde::Serialize;

/// What a stream found: how many non-finite samples it muted and where the first one was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NonFinite {
    /// Samples muted (over all channels).
    pub count: u64,
    /// Frame of the first one, at the stream's (the session's) rate.
    pub first_frame: Option<u64>,
}

impl NonFinite {
    /// Sets every non-finite sample of `planes[..][..frames]` to 0 and counts it; the first
    /// frame of `planes` is frame `at` of the stream. Allocation-free.
    pub fn mute(&mut self, planes: &mut [&mut [f64]], frames: usize, at: u64) {
        for plane in planes.iter_mut() {
            let plane = &mut plane[..frames];
            // The common case costs one pass without branches on the data.
            if all_finite(plane) {
                continue;
            }
            for (k, x) in plane.iter_mut().enumerate() {
                if !x.is_finite() {
                    *x = 0.0;
                    self.count += 1;
                    let f = at + k as u64;
                    self.first_frame = Some(self.first_frame.map_or(f, |g| g.min(f)));
                }
            }
        }
    }

    /// Whether any sample was muted.
    pub fn any(&self) -> bool {
        self.count > 0
    }
}

/// Copies `src` into `dst` (as long), each value widened to `f64`; whether every value is
/// finite, found in the same pass (as [`all_finite`] finds it: eight independent sums of
/// `x − x`), so that a caller muting non-finite samples ([`NonFinite::mute`]) need not scan the
/// copy again when they are all finite.
/// Compiled for AVX2 too, where the CPU has it (the same values and answer).
pub fn widen_finite<T: Copy + Into<f64>>(src: &[T], dst: &mut [f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { widen_finite_avx2(src, dst) };
    }
    widen_finite_body(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn widen_finite_avx2<T: Copy + Into<f64>>(src: &[T], dst: &mut [f64]) -> bool {
    widen_finite_body(src, dst)
}

/// [`widen_finite`], written once for both builds.
#[inline(always)]
#[allow(clippy::eq_op)] // `x − x` on purpose: 0 for a finite `x`, NaN otherwise.
fn widen_finite_body<T: Copy + Into<f64>>(src: &[T], dst: &mut [f64]) -> bool {
    let mut acc = [0.0f64; 8];
    let mut dst8 = dst.chunks_exact_mut(8);
    let mut src8 = src.chunks_exact(8);
    for (d, s) in (&mut dst8).zip(&mut src8) {
        for ((d, &s), a) in d.iter_mut().zip(s).zip(&mut acc) {
            let x: f64 = s.into();
            *d = x;
            *a += x - x;
        }
    }
    let mut rest_finite = true;
    for (d, &s) in dst8.into_remainder().iter_mut().zip(src8.remainder()) {
        *d = s.into();
        rest_finite &= d.is_finite();
    }
    acc.iter().all(|&a| a == 0.0) && rest_finite
}

/// Whether every sample of `plane` is finite, in one pass without branches on the data: `x − x`
/// is 0 for a finite `x` and NaN for ±infinity and NaN, and NaN stays in a sum. Eight independent
/// sums vectorize (`Iterator::all` stops at the first non-finite sample, so it stays a scalar
/// loop with a branch per sample).
#[inline]
#[allow(clippy::eq_op)] // `x − x` on purpose: 0 for a finite `x`, NaN otherwise.
fn all_finite(plane: &[f64]) -> bool {
    let mut acc = [0.0f64; 8];
    let mut chunks = plane.chunks_exact(8);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x - x;
        }
    }
    acc.iter().all(|&a| a == 0.0) && chunks.remainder().iter().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutes_and_counts() {
        let mut a = vec![0.5, f64::NAN, 0.25, f64::INFINITY];
        let mut b = vec![f64::NEG_INFINITY, 0.0, 0.0, 1.0];
        let mut n = NonFinite::default();
        n.mute(&mut [&mut a, &mut b], 4, 100);
        assert_eq!(n.count, 3);
        assert_eq!(n.first_frame, Some(100));
        assert_eq!(a, [0.5, 0.0, 0.25, 0.0]);
        assert_eq!(b, [0.0, 0.0, 0.0, 1.0]);
        n.mute(&mut [&mut a], 4, 200);
        assert_eq!(n.count, 3);
    }

    /// The copy is the values widened, and says whether any is not finite wherever it is, on
    /// both builds.
    #[test]
    fn widening_copies_and_finds_a_non_finite_value_anywhere() {
        for len in [0, 1, 7, 8, 9, 31, 64] {
            let clean: Vec<f32> = (0..len)
                .map(|i| f32::MAX * if i % 2 == 0 { 1.0 } else { -0.5 })
                .collect();
            crate::dsp::simd::init();
            for portable in [false, true] {
                crate::dsp::simd::force_portable(portable);
                let mut dst = vec![0.0; len];
                assert!(widen_finite(&clean, &mut dst), "{len}");
                assert!(dst.iter().zip(&clean).all(|(&d, &s)| d == f64::from(s)));
                for at in 0..len {
                    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                        let mut v = clean.clone();
                        v[at] = bad;
                        assert!(!widen_finite(&v, &mut dst), "{len} {at} {bad}");
                    }
                }
                crate::dsp::simd::force_portable(false);
            }
        }
    }

    #[test]
    fn finds_a_non_finite_sample_anywhere() {
        for len in [0, 1, 7, 8, 9, 31, 64] {
            let clean: Vec<f64> = (0..len)
                .map(|i| f64::MAX * if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            assert!(all_finite(&clean), "{len}");
            for at in 0..len {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut v = clean.clone();
                    v[at] = bad;
                    assert!(!all_finite(&v), "{len} {at} {bad}");
                }
            }
        }
    }
}
