//! The Simper/Cytomic trapezoidal state-variable filter, run as a 2×2 state-space update.
//!
//! Andrew Simper's SVF ("Solving the continuous SVF equations using trapezoidal integration",
//! Cytomic 2013) integrates the analog state-variable filter with the trapezoidal rule. Per sample,
//! with `g = tan(π·fc/fs)`, `k = 1/Q`, `a1 = 1/(1 + g(g + k))`, `a2 = g·a1`, `a3 = g·a2`:
//!
//! ```text
//! v3 = v0 − ic2
//! v1 = a1·ic1 + a2·v3            (band-pass)
//! v2 = ic2 + a2·ic1 + a3·v3      (low-pass)
//! ic1 = 2·v1 − ic1;  ic2 = 2·v2 − ic2
//! out = m0·v0 + m1·v1 + m2·v2
//! ```
//!
//! Substituting `v1`, `v2` gives the same computation as a linear state-space update over the
//! same two states `s = (ic1, ic2)`:
//!
//! ```text
//! y   = d·x + c1·s1 + c2·s2
//! s1' = a11·s1 + b1·(x − s2)           a11 = 2a1 − 1,  b1 = 2a2
//! s2' = b1·s1 + a22·s2 + b2·x          a22 = 1 − 2a3,  b2 = 2a3
//! c1 = m1·a1 + m2·a2,  c2 = m2·(1 − a3) − m1·a2,  d = m0 + m1·a2 + m2·a3
//! ```
//!
//! Every output is a short dot product (FMA-friendly) and the loop-carried dependency is two
//! operations deep. Because the states are the SVF's own integrator states, the update keeps the
//! SVF's good behaviour under per-sample coefficient changes (no energy injected by a
//! coefficient jump, unlike direct-form biquads).
//!
//! A response with `m = (1, 0, 0)` (a bell, shelf or tilt at 0 dB) gives `c1 = c2 = 0`, `d = 1`:
//! the output is the input, bit for bit.

/// The coefficients of one SVF section in state-space form. Computed in `f64` on any thread;
/// [`SvfCoefs::tick`] is the per-sample update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvfCoefs {
    /// State matrix, (1,1).
    pub a11: f64,
    /// State matrix, (2,2).
    pub a22: f64,
    /// State matrix off-diagonals (`a21 = b1`, `a12 = −b1`) and input to state 1.
    pub b1: f64,
    /// Input to state 2.
    pub b2: f64,
    /// State 1 to output.
    pub c1: f64,
    /// State 2 to output.
    pub c2: f64,
    /// Input to output.
    pub d: f64,
}

/// The two integrator states of one SVF section on one channel.
pub type SvfState = [f64; 2];

impl SvfCoefs {
    /// The section that passes its input unchanged (and keeps its state at rest).
    pub const IDENTITY: SvfCoefs = SvfCoefs {
        a11: 1.0,
        a22: 1.0,
        b1: 0.0,
        b2: 0.0,
        c1: 0.0,
        c2: 0.0,
        d: 1.0,
    };

    /// The section for prewarped gain `g = tan(π·fc/fs)`, damping `k = 1/Q` and output mix
    /// `m = (m0, m1, m2)` of (input, band-pass, low-pass).
    #[inline]
    pub fn new(g: f64, k: f64, m0: f64, m1: f64, m2: f64) -> Self {
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        SvfCoefs {
            a11: 2.0 * a1 - 1.0,
            a22: 1.0 - 2.0 * a3,
            b1: 2.0 * a2,
            b2: 2.0 * a3,
            c1: m1 * a1 + m2 * a2,
            c2: m2 * (1.0 - a3) - m1 * a2,
            d: m0 + m1 * a2 + m2 * a3,
        }
    }

    /// One sample through the section: returns the output and advances `s`.
    #[inline(always)]
    pub fn tick(&self, s: &mut SvfState, x: f64) -> f64 {
        let [s1, s2] = *s;
        let y = self.d * x + self.c1 * s1 + self.c2 * s2;
        s[0] = self.a11 * s1 + self.b1 * (x - s2);
        s[1] = self.b1 * s1 + self.a22 * s2 + self.b2 * x;
        y
    }

    /// Runs the section over `x` in place.
    #[inline]
    pub fn run(&self, s: &mut SvfState, x: &mut [f64]) {
        let mut st = *s;
        for v in x.iter_mut() {
            *v = self.tick(&mut st, *v);
        }
        *s = st;
    }

    /// Runs the section over two channels in place at once (two independent dependency chains
    /// interleaved, which keeps the pipeline busy).
    #[inline]
    pub fn run2(&self, sl: &mut SvfState, sr: &mut SvfState, l: &mut [f64], r: &mut [f64]) {
        let (mut a, mut b) = (*sl, *sr);
        let n = l.len().min(r.len());
        for (xl, xr) in l[..n].iter_mut().zip(r[..n].iter_mut()) {
            *xl = self.tick(&mut a, *xl);
            *xr = self.tick(&mut b, *xr);
        }
        *sl = a;
        *sr = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook per-sample form, for comparison.
    fn simper(g: f64, k: f64, m: [f64; 3], ic: &mut [f64; 2], v0: f64) -> f64 {
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        let v3 = v0 - ic[1];
        let v1 = a1 * ic[0] + a2 * v3;
        let v2 = ic[1] + a2 * ic[0] + a3 * v3;
        ic[0] = 2.0 * v1 - ic[0];
        ic[1] = 2.0 * v2 - ic[1];
        m[0] * v0 + m[1] * v1 + m[2] * v2
    }

    #[test]
    fn state_space_equals_textbook_form() {
        let (g, k, m) = (0.3, 0.7, [0.4, -1.3, 2.2]);
        let c = SvfCoefs::new(g, k, m[0], m[1], m[2]);
        let (mut s, mut ic) = ([0.0; 2], [0.0; 2]);
        let mut x = 1.0;
        for n in 0..200 {
            let a = c.tick(&mut s, x);
            let b = simper(g, k, m, &mut ic, x);
            assert!((a - b).abs() < 1e-12, "sample {n}: {a} vs {b}");
            x = if n % 7 == 0 { -0.5 } else { 0.25 * x };
        }
    }

    #[test]
    fn unity_mix_is_bit_exact() {
        let c = SvfCoefs::new(0.01, 1.0, 1.0, 0.0, 0.0);
        let mut s = [0.0; 2];
        for i in 0..100 {
            let x = (i as f64 * 0.37).sin();
            assert_eq!(c.tick(&mut s, x), x);
        }
    }
}
