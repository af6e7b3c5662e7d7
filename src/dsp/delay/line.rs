//! The delay line: a power-of-two ring buffer per channel, read at a delay that glides.
//!
//! The read delay `d` (in samples) follows its target `T = round(time_ms·fs/1000)` one sample at
//! a time: `d += clamp((T − d)/τ, −R, R)` with `τ` = [`FOLLOW_MS`] and the rate limit
//! `R` = [`MAX_RATE`], snapping to `T` when closer than [`SNAP`]. A jump of the time therefore
//! becomes a tape-style glide whose playback speed stays within `1 ± R` (at most ±7 semitones),
//! ending in a smooth exponential approach; the read is a 4-point cubic Hermite (Catmull-Rom)
//! interpolation while `d` is fractional. At rest `d` is the whole number `T` and the read is a
//! plain sample, so the repeats are not dulled by interpolation.

/// Time constant of the delay's approach to its target, in milliseconds.
pub const FOLLOW_MS: f64 = 30.0;
/// Largest change of the delay per sample (playback speed stays within `1 ± MAX_RATE`).
pub const MAX_RATE: f64 = 0.5;
/// Distance (in samples) below which the delay snaps onto its target.
pub const SNAP: f64 = 1e-6;
/// Smallest delay in samples (the interpolator reads one sample on each side of the delay).
pub const MIN_DELAY: f64 = 2.0;

/// One channel's ring buffer. Allocation happens in [`Ring::new`] only.
#[derive(Debug, Default)]
pub struct Ring {
    buf: Vec<f64>,
    mask: usize,
}

impl Ring {
    /// A ring that can delay by at least `max_delay` samples.
    pub fn new(max_delay: usize) -> Self {
        let len = (max_delay + 4).next_power_of_two();
        Ring {
            buf: vec![0.0; len],
            mask: len - 1,
        }
    }

    /// The largest whole delay it supports.
    pub fn max_delay(&self) -> usize {
        self.buf.len().saturating_sub(4)
    }

    /// Zeroes the contents.
    pub fn clear(&mut self) {
        self.buf.fill(0.0);
    }

    /// Stores `x` at write position `w`.
    #[inline(always)]
    pub fn write(&mut self, w: usize, x: f64) {
        self.buf[w & self.mask] = x;
    }

    /// The sample written `delay` samples before write position `w` (`delay` ≥ 1).
    #[inline(always)]
    pub fn tap(&self, w: usize, delay: usize) -> f64 {
        self.buf[w.wrapping_sub(delay) & self.mask]
    }

    /// The signal `whole + frac` samples before write position `w`, by cubic Hermite
    /// interpolation (`whole` ≥ 2, `0 ≤ frac < 1`). Exactly [`Ring::tap`] when `frac` is 0.
    #[inline(always)]
    pub fn read(&self, w: usize, whole: usize, frac: f64) -> f64 {
        let xm1 = self.tap(w, whole - 1);
        let x0 = self.tap(w, whole);
        let x1 = self.tap(w, whole + 1);
        let x2 = self.tap(w, whole + 2);
        hermite(xm1, x0, x1, x2, frac)
    }
}

crate::signal_state!(Ring { copy: mask; state: buf; });

/// 4-point, 3rd-order Hermite (Catmull-Rom) interpolation between `x0` (t = 0) and `x1` (t = 1).
#[inline(always)]
pub fn hermite(xm1: f64, x0: f64, x1: f64, x2: f64, t: f64) -> f64 {
    let c1 = 0.5 * (x1 - xm1);
    let c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2;
    let c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1);
    ((c3 * t + c2) * t + c1) * t + x0
}

/// The read delay and how it follows its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Follower {
    /// Current delay in samples (NaN before the first sample: it then starts on its target).
    pub d: f64,
    coef: f64,
}

impl Follower {
    /// A follower for sample rate `fs`, starting on its first target.
    pub fn new(fs: f64) -> Self {
        Follower {
            d: f64::NAN,
            coef: 1.0 / (FOLLOW_MS * 0.001 * fs),
        }
    }

    /// Starts on the next target again.
    pub fn reset(&mut self) {
        self.d = f64::NAN;
    }

    /// Advances one sample towards `target` and returns the delay to read at.
    #[inline(always)]
    pub fn step(&mut self, target: f64) -> f64 {
        let diff = target - self.d;
        if diff != 0.0 {
            if self.d.is_nan() {
                self.d = target;
            } else {
                self.d += (diff * self.coef).clamp(-MAX_RATE, MAX_RATE);
                if (target - self.d).abs() < SNAP {
                    self.d = target;
                }
            }
        }
        self.d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermite_hits_the_samples_and_lines() {
        assert_eq!(hermite(1.0, 2.0, 3.0, 4.0, 0.0), 2.0);
        assert!((hermite(1.0, 2.0, 3.0, 4.0, 1.0) - 3.0).abs() < 1e-15);
        assert!((hermite(1.0, 2.0, 3.0, 4.0, 0.25) - 2.25).abs() < 1e-15);
    }

    #[test]
    fn follower_glides_within_its_rate_and_lands_exactly() {
        let mut f = Follower::new(48000.0);
        assert_eq!(f.step(100.0), 100.0);
        let mut prev = 100.0;
        let mut n = 0;
        while f.d != 4000.0 {
            let d = f.step(4000.0);
            assert!((d - prev).abs() <= MAX_RATE + 1e-12);
            prev = d;
            n += 1;
            assert!(n < 48000, "did not land");
        }
    }
}
