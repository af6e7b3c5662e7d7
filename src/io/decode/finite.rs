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

    #[test]
    fn finds_a_non_finite_sample_anywhere() {
        for len in [0, 1, 7, 8, 9, 31, 64] {
            let clean: Vec<f64> = (0..len).map(|i| f64::MAX * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
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
