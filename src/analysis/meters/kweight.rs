//! K-weighting (BS.1770-4 Annex 1): a high-shelf "pre-filter" followed by the RLB high-pass,
//! designed for any sample rate from the analog prototype by the bilinear transform with
//! pre-warping, as libebur128 does. At 48 kHz the coefficients equal BS.1770's table.

use std::f64::consts::PI;

/// Coefficients of one biquad, `a0` normalised to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BiquadCoeffs {
    /// Feed-forward coefficient of x[n].
    pub b0: f64,
    /// Feed-forward coefficient of x[n−1].
    pub b1: f64,
    /// Feed-forward coefficient of x[n−2].
    pub b2: f64,
    /// Feedback coefficient of y[n−1].
    pub a1: f64,
    /// Feedback coefficient of y[n−2].
    pub a2: f64,
}

/// The two K-weighting stages for `sample_rate`: `[pre-filter (shelf), RLB high-pass]`.
///
/// Analog prototype parameters are those fitted to BS.1770's 48 kHz coefficients
/// (published with libebur128): shelf at 1681.97 Hz with +4.0 dB, high-pass at 38.135 Hz.
pub fn k_weighting_coefficients(sample_rate: f64) -> [BiquadCoeffs; 2] {
    // Stage 1: high shelf.
    let f0 = 1681.974450955533;
    let gain_db = 3.999843853973347;
    let q = 0.7071752369554196;
    let k = libm::tan(PI * f0 / sample_rate);
    let vh = libm::pow(10.0, gain_db / 20.0);
    let vb = libm::pow(vh, 0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = BiquadCoeffs {
        b0: (vh + vb * k / q + k * k) / a0,
        b1: 2.0 * (k * k - vh) / a0,
        b2: (vh - vb * k / q + k * k) / a0,
        a1: 2.0 * (k * k - 1.0) / a0,
        a2: (1.0 - k / q + k * k) / a0,
    };
    // Stage 2: RLB high-pass. BS.1770 keeps the numerator at (1, -2, 1); the -0.691 dB
    // offset in the loudness formula accounts for the resulting gain.
    let f0 = 38.13547087602444;
    let q = 0.5003270373238773;
    let k = libm::tan(PI * f0 / sample_rate);
    let a0 = 1.0 + k / q + k * k;
    let highpass = BiquadCoeffs {
        b0: 1.0,
        b1: -2.0,
        b2: 1.0,
        a1: 2.0 * (k * k - 1.0) / a0,
        a2: (1.0 - k / q + k * k) / a0,
    };
    [shelf, highpass]
}

/// Filter state below this magnitude is flushed to zero at hop boundaries so that silence
/// never decays into (slow) subnormal numbers. Its energy (< 1e-50) is far below any gate.
const FLUSH_BELOW: f64 = 1e-25;

/// One channel's K-weighting filter: two transposed-direct-form-II biquads in `f64`.
#[derive(Clone, Debug)]
pub struct KWeighting {
    c: [BiquadCoeffs; 2],
    s: [[f64; 2]; 2],
}

impl KWeighting {
    /// A filter for `sample_rate` with zero state.
    pub fn new(sample_rate: f64) -> Self {
        Self {
            c: k_weighting_coefficients(sample_rate),
            s: [[0.0; 2]; 2],
        }
    }

    /// Clears the filter state.
    pub fn reset(&mut self) {
        self.s = [[0.0; 2]; 2];
    }

    /// Flushes negligible state to exact zero (call at fixed stream positions only, so that
    /// results stay independent of block size).
    pub fn flush_tiny_state(&mut self) {
        for v in self.s.iter_mut().flatten() {
            if v.abs() < FLUSH_BELOW {
                *v = 0.0;
            }
        }
    }

    /// Filters `input`, adding each squared output to `acc` in order; returns the new sum.
    #[inline]
    pub fn process_sum_sq(&mut self, input: &[f64], acc: f64) -> f64 {
        let [c1, c2] = self.c;
        let [[s10, s11], [s20, s21]] = self.s;
        let (mut s10, mut s11, mut s20, mut s21) = (s10, s11, s20, s21);
        let mut sum = acc;
        for &x in input {
            let y1 = c1.b0 * x + s10;
            s10 = c1.b1 * x - c1.a1 * y1 + s11;
            s11 = c1.b2 * x - c1.a2 * y1;
            let y2 = c2.b0 * y1 + s20;
            s20 = c2.b1 * y1 - c2.a1 * y2 + s21;
            s21 = c2.b2 * y1 - c2.a2 * y2;
            sum += y2 * y2;
        }
        self.s = [[s10, s11], [s20, s21]];
        sum
    }

    /// Like [`process_sum_sq`](Self::process_sum_sq) for two channels at once (the two
    /// independent recursions overlap in the CPU pipeline). Bit-identical to two single calls.
    #[inline]
    pub fn process_pair_sum_sq(
        a: &mut Self,
        b: &mut Self,
        xa: &[f64],
        xb: &[f64],
        acc_a: f64,
        acc_b: f64,
    ) -> (f64, f64) {
        debug_assert_eq!(xa.len(), xb.len());
        let [c1, c2] = a.c;
        debug_assert_eq!(a.c, b.c);
        let [[a10, a11], [a20, a21]] = a.s;
        let [[b10, b11], [b20, b21]] = b.s;
        let (mut a10, mut a11, mut a20, mut a21) = (a10, a11, a20, a21);
        let (mut b10, mut b11, mut b20, mut b21) = (b10, b11, b20, b21);
        let (mut sa, mut sb) = (acc_a, acc_b);
        for (&x, &y) in xa.iter().zip(xb) {
            let ya1 = c1.b0 * x + a10;
            let yb1 = c1.b0 * y + b10;
            a10 = c1.b1 * x - c1.a1 * ya1 + a11;
            b10 = c1.b1 * y - c1.a1 * yb1 + b11;
            a11 = c1.b2 * x - c1.a2 * ya1;
            b11 = c1.b2 * y - c1.a2 * yb1;
            let ya2 = c2.b0 * ya1 + a20;
            let yb2 = c2.b0 * yb1 + b20;
            a20 = c2.b1 * ya1 - c2.a1 * ya2 + a21;
            b20 = c2.b1 * yb1 - c2.a1 * yb2 + b21;
            a21 = c2.b2 * ya1 - c2.a2 * ya2;
            b21 = c2.b2 * yb1 - c2.a2 * yb2;
            sa += ya2 * ya2;
            sb += yb2 * yb2;
        }
        a.s = [[a10, a11], [a20, a21]];
        b.s = [[b10, b11], [b20, b21]];
        (sa, sb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_bs1770_table_at_48k() {
        let [s, h] = k_weighting_coefficients(48_000.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(s.b0, 1.53512485958697), "{s:?}");
        assert!(close(s.b1, -2.69169618940638), "{s:?}");
        assert!(close(s.b2, 1.19839281085285), "{s:?}");
        assert!(close(s.a1, -1.69065929318241), "{s:?}");
        assert!(close(s.a2, 0.73248077421585), "{s:?}");
        assert!(close(h.a1, -1.99004745483398), "{h:?}");
        assert!(close(h.a2, 0.99007225036621), "{h:?}");
    }
}
