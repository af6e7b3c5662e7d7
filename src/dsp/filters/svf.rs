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

/// The coefficients of one SVF section: the one SVF coefficient type of the code base. Computed
/// in `f64` on any thread. It holds Simper's coefficients (`k`, `a1`, `a2`, `a3`) and the
/// state-space form derived from them, so each user runs the form it was written for with the
/// same values:
///
/// - [`SvfCoefs::tick`] (EQ, delay filters): the state-space update with the output mix;
/// - `crossover::SvfState` (crossovers, side-chain filters): the state update on a pair of
///   channels, outputs taken from the states;
/// - the demo synthesizer: Simper's original recursion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvfCoefs {
    /// Damping, `1/Q`.
    pub k: f64,
    /// Simper's `a1 = 1/(1 + g(g + k))`.
    pub a1: f64,
    /// Simper's `a2 = g·a1`.
    pub a2: f64,
    /// Simper's `a3 = g·a2`.
    pub a3: f64,
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

impl Default for SvfCoefs {
    /// [`SvfCoefs::IDENTITY`].
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl SvfCoefs {
    /// The section that passes its input unchanged (and keeps its state at rest).
    pub const IDENTITY: SvfCoefs = SvfCoefs {
        k: 0.0,
        a1: 1.0,
        a2: 0.0,
        a3: 0.0,
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
            k,
            a1,
            a2,
            a3,
            a11: 2.0 * a1 - 1.0,
            a22: 1.0 - 2.0 * a3,
            b1: 2.0 * a2,
            b2: 2.0 * a3,
            c1: m1 * a1 + m2 * a2,
            c2: m2 * (1.0 - a3) - m1 * a2,
            d: m0 + m1 * a2 + m2 * a3,
        }
    }

    /// A section tuned to `freq_hz` (held within 1 mHz … 0.49·fs) with quality `q` at
    /// `sample_rate`, its state-space output the low-pass: the sections of the crossovers and of
    /// the side-chain filters, which take their outputs from the states.
    pub fn tuned(freq_hz: f64, q: f64, sample_rate: f64) -> Self {
        let f = freq_hz.min(0.49 * sample_rate).max(1e-3);
        let g = libm::tan(std::f64::consts::PI * f / sample_rate);
        Self::new(g, 1.0 / q, 0.0, 0.0, 1.0)
    }

    /// The section's frequency response at `freq_hz` for `sample_rate`, as (re, im): the
    /// state-space form run by [`SvfCoefs::tick`], `H(z) = d + c·(zI − A)⁻¹·b` on the unit
    /// circle. Control side (fits and plots of the EQ's real response); not used on the audio path.
    pub fn response(&self, freq_hz: f64, sample_rate: f64) -> (f64, f64) {
        let w = 2.0 * std::f64::consts::PI * freq_hz / sample_rate;
        let (zr, zi) = (libm::cos(w), libm::sin(w));
        // zI − A = [[z − a11, b1], [−b1, z − a22]]; its inverse is adj / det.
        let (p_r, p_i) = (zr - self.a11, zi);
        let (q_r, q_i) = (zr - self.a22, zi);
        let mul = |a: (f64, f64), b: (f64, f64)| (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0);
        let pq = mul((p_r, p_i), (q_r, q_i));
        let det = (pq.0 + self.b1 * self.b1, pq.1);
        // adj·b = [(z − a22)·b1 − b1·b2, b1·b1 + (z − a11)·b2]
        let v1 = (q_r * self.b1 - self.b1 * self.b2, q_i * self.b1);
        let v2 = (self.b1 * self.b1 + p_r * self.b2, p_i * self.b2);
        let num = (
            self.c1 * v1.0 + self.c2 * v2.0,
            self.c1 * v1.1 + self.c2 * v2.1,
        );
        let dd = det.0 * det.0 + det.1 * det.1;
        let frac = (
            (num.0 * det.0 + num.1 * det.1) / dd,
            (num.1 * det.0 - num.0 * det.1) / dd,
        );
        (self.d + frac.0, frac.1)
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
