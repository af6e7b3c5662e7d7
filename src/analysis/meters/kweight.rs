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

impl KWeighting {
    /// [`process_sum_sq`](Self::process_sum_sq) for four channels at once (two stereo meters
    /// pushed together): with AVX2 each channel is a lane of one vector going through the same
    /// multiplies, adds and subtractions in the same order (no fused multiply-add), so the
    /// results are bit for bit those of four single calls, for half the time of two pairs (the
    /// recursion's latency, not its arithmetic, bounds a pair). All four filters share one
    /// sample rate; the inputs have one length.
    #[inline]
    pub fn process_quad_sum_sq(f: [&mut Self; 4], x: [&[f64]; 4], acc: [f64; 4]) -> [f64; 4] {
        let n = x[0].len();
        assert!(
            x.iter().all(|c| c.len() == n),
            "channel slices differ in length"
        );
        debug_assert!(f.iter().all(|k| k.c == f[0].c));
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { quad_avx2(f, x, acc) };
        }
        let [f0, f1, f2, f3] = f;
        let (a0, a1) = Self::process_pair_sum_sq(f0, f1, x[0], x[1], acc[0], acc[1]);
        let (a2, a3) = Self::process_pair_sum_sq(f2, f3, x[2], x[3], acc[2], acc[3]);
        [a0, a1, a2, a3]
    }
}

/// [`KWeighting::process_quad_sum_sq`] in four AVX2 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quad_avx2(f: [&mut KWeighting; 4], x: [&[f64]; 4], acc: [f64; 4]) -> [f64; 4] {
    use std::arch::x86_64::*;
    let [c1, c2] = f[0].c;
    let splat = |v: f64| _mm256_set1_pd(v);
    let (b10, b11, b12, a11, a12) = (
        splat(c1.b0),
        splat(c1.b1),
        splat(c1.b2),
        splat(c1.a1),
        splat(c1.a2),
    );
    let (b20, b21, b22, a21, a22) = (
        splat(c2.b0),
        splat(c2.b1),
        splat(c2.b2),
        splat(c2.a1),
        splat(c2.a2),
    );
    let lanes =
        |k: usize, j: usize| _mm256_set_pd(f[3].s[k][j], f[2].s[k][j], f[1].s[k][j], f[0].s[k][j]);
    let (mut s10, mut s11, mut s20, mut s21) = (lanes(0, 0), lanes(0, 1), lanes(1, 0), lanes(1, 1));
    let mut sum = _mm256_set_pd(acc[3], acc[2], acc[1], acc[0]);
    let [x0, x1, x2, x3] = x;
    for i in 0..x0.len() {
        let v = _mm256_set_pd(x3[i], x2[i], x1[i], x0[i]);
        // y1 = b0·x + s10; s10 = b1·x − a1·y1 + s11; s11 = b2·x − a2·y1 (as process_sum_sq).
        let y1 = _mm256_add_pd(_mm256_mul_pd(b10, v), s10);
        s10 = _mm256_add_pd(
            _mm256_sub_pd(_mm256_mul_pd(b11, v), _mm256_mul_pd(a11, y1)),
            s11,
        );
        s11 = _mm256_sub_pd(_mm256_mul_pd(b12, v), _mm256_mul_pd(a12, y1));
        let y2 = _mm256_add_pd(_mm256_mul_pd(b20, y1), s20);
        s20 = _mm256_add_pd(
            _mm256_sub_pd(_mm256_mul_pd(b21, y1), _mm256_mul_pd(a21, y2)),
            s21,
        );
        s21 = _mm256_sub_pd(_mm256_mul_pd(b22, y1), _mm256_mul_pd(a22, y2));
        sum = _mm256_add_pd(sum, _mm256_mul_pd(y2, y2));
    }
    let out = |v: __m256d| {
        let mut a = [0.0f64; 4];
        _mm256_storeu_pd(a.as_mut_ptr(), v);
        a
    };
    let (s10, s11, s20, s21) = (out(s10), out(s11), out(s20), out(s21));
    for (l, k) in f.into_iter().enumerate() {
        k.s = [[s10[l], s11[l]], [s20[l], s21[l]]];
    }
    out(sum)
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

    /// Four channels at once give the bits of four single filters, on both paths, over
    /// lengths and states of every kind (loud, quiet, silent, a huge value).
    #[test]
    fn four_lanes_give_the_bits_of_single_filters() {
        let mut noise = crate::dsp::test_signal::noise(0x2545_f491_4f6c_dd1du64);
        let chans: Vec<Vec<f64>> = (0..4)
            .map(|c| {
                (0..5000)
                    .map(|i| match c {
                        0 => noise(),
                        1 => 1e-3 * noise() + 0.3 * (i as f64 * 0.01).sin(),
                        2 => 0.0,
                        _ => {
                            if i == 1234 {
                                1e200
                            } else {
                                0.9 * noise()
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        crate::dsp::simd::init();
        for portable in [true, false] {
            crate::dsp::simd::force_portable(portable);
            let mut single = vec![KWeighting::new(44_100.0); 4];
            let mut quad = vec![KWeighting::new(44_100.0); 4];
            let (mut want, mut got) = ([0.0; 4], [0.0; 4]);
            let mut at = 0;
            for len in [0, 1, 7, 480, 4000, 512] {
                let x: [&[f64]; 4] = std::array::from_fn(|c| &chans[c][at..at + len]);
                for c in 0..4 {
                    want[c] = single[c].process_sum_sq(x[c], want[c]);
                }
                let [q0, q1, q2, q3] = &mut quad[..] else {
                    unreachable!()
                };
                got = KWeighting::process_quad_sum_sq([q0, q1, q2, q3], x, got);
                for c in 0..4 {
                    assert_eq!(
                        got[c].to_bits(),
                        want[c].to_bits(),
                        "channel {c}, portable {portable}"
                    );
                    let bits = |k: &KWeighting| {
                        k.s.concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    };
                    assert_eq!(bits(&quad[c]), bits(&single[c]));
                }
                at += len;
            }
        }
        crate::dsp::simd::force_portable(false);
    }
}
