//! Filter pieces shared by the processors: the trapezoidal SVF ([`svf`]), the direct form I
//! biquads the EQ runs while its coefficients hold still ([`df1`]; several signals side by side:
//! [`df1_batch`]), the design functions
//! of every response the EQ offers ([`design`]), and the denormal policy ([`flush`],
//! [`FlushClock`]).
//!
//! Coefficients and states are `f64`. Crossovers live in `dsp::crossover`, not here.
//!
//! # Denormals
//! A filter fed silence decays towards zero and would eventually reach subnormal numbers, which
//! are slow on most CPUs. Processors flush their states to zero explicitly ([`flush`]) at sample
//! positions that are multiples of [`FLUSH_PERIOD`] counted from `reset`, never at block
//! boundaries, so the output stays independent of the block size. [`FlushClock`] splits a block
//! into the runs between those positions.

pub mod design;
pub mod df1;
pub mod df1_batch;
pub mod svf;

pub use df1::{Df1Coefs, Df1State};
pub use svf::{SvfCoefs, SvfState};

/// States smaller than this in magnitude are set to zero (about −400 dBFS: far below anything
/// audible, far above the subnormal range).
pub const FLUSH_BELOW: f64 = 1e-20;

/// Samples between two flushes. Short enough that no stable section's state can fall from above
/// [`FLUSH_BELOW`] into the subnormal range between two flushes (that would need a pole radius
/// below 10^(−288/64) ≈ 3e−5 with a flush every 64 samples).
pub const FLUSH_PERIOD: u64 = 64;

/// Zeroes `x` when it is tiny.
#[inline(always)]
pub fn flush(x: f64) -> f64 {
    if x.abs() < FLUSH_BELOW {
        0.0
    } else {
        x
    }
}

/// Flushes both states of an SVF section.
#[inline]
pub fn flush_state(s: &mut SvfState) {
    s[0] = flush(s[0]);
    s[1] = flush(s[1]);
}

/// Counts samples since `reset` and splits blocks into runs that end on flush positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushClock {
    pos: u64,
}

impl FlushClock {
    /// Back to position 0.
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Samples processed since `reset`.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The length of the next run, at most `remaining` frames long, and whether it ends on a
    /// flush position. Advances the clock by that length.
    #[inline]
    pub fn next_run(&mut self, remaining: usize) -> (usize, bool) {
        let to_flush = FLUSH_PERIOD - self.pos % FLUSH_PERIOD;
        let len = (remaining as u64).min(to_flush);
        self.pos += len;
        (len as usize, len == to_flush)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_end_on_absolute_multiples() {
        let mut a = FlushClock::default();
        let mut ends = Vec::new();
        for block in [1usize, 63, 100, 997] {
            let mut left = block;
            while left > 0 {
                let (n, at) = a.next_run(left);
                left -= n;
                if at {
                    ends.push(a.position());
                }
            }
        }
        assert!(ends.iter().all(|p| p % FLUSH_PERIOD == 0));
        assert_eq!(ends.len() as u64, (1 + 63 + 100 + 997) / FLUSH_PERIOD);
    }
}
