//! K-weighting (BS.1770-4 Annex 1): a high-shelf "pre-filter" followed by the RLB high-pass,
//! designed for any sample rate from the analog prototype by the bilinear transform with
//! pre-warping, as libebur128 does. At 48 kHz the coefficients equal BS.1770's table.
//!
//! Each stage is a direct-form-I biquad whose terms are summed oldest first, every product
//! fused with the sum after it (`f64::mul_add`, the FMA instruction where the CPU has it,
//! correctly rounded in software elsewhere: the same bits on every build): a filter is bound by
//! its recursion's latency, and in this order the loop-carried path is one fused multiply-add
//! per sample. It is also more accurate than the transposed direct form II it replaced (a test
//! measures both against double-double arithmetic).

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

/// One channel's K-weighting filter: two direct-form-I biquads in `f64`.
///
/// The state is the last two samples of the input, of the shelf's output (the high-pass's
/// input) and of the high-pass's output: `[x1, x2, y1, y2, z1, z2]`.
#[derive(Clone, Debug)]
pub struct KWeighting {
    c: [BiquadCoeffs; 2],
    s: [f64; 6],
}

impl KWeighting {
    /// A filter for `sample_rate` with zero state.
    pub fn new(sample_rate: f64) -> Self {
        let c = k_weighting_coefficients(sample_rate);
        // `highpass` leaves this numerator's exact products out.
        assert!(c[1].b0 == 1.0 && c[1].b1 == -2.0 && c[1].b2 == 1.0);
        Self { c, s: [0.0; 6] }
    }

    /// Clears the filter state.
    pub fn reset(&mut self) {
        self.s = [0.0; 6];
    }

    /// Flushes negligible state to exact zero (call at fixed stream positions only, so that
    /// results stay independent of block size).
    pub fn flush_tiny_state(&mut self) {
        for v in self.s.iter_mut() {
            if v.abs() < FLUSH_BELOW {
                *v = 0.0;
            }
        }
    }

    /// Filters `input`, adding each squared output to `acc` in order (a fused multiply-add:
    /// one rounding); returns the new sum.
    ///
    /// Each output is a chain of fused multiply-adds ([`shelf`], [`highpass`]): on CPUs with
    /// FMA the instruction, elsewhere `f64::mul_add` (correctly rounded in software too), so
    /// every build gives the same bits.
    #[inline]
    pub fn process_sum_sq(&mut self, input: &[f64], acc: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, and AVX-512F and VL for the second (checked at
            // run time).
            return unsafe {
                if crate::dsp::simd::avx512() {
                    single_avx512(self, input, acc)
                } else {
                    single_fma(self, input, acc)
                }
            };
        }
        single_body(self, input, acc)
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
        assert_eq!(xa.len(), xb.len(), "channel slices differ in length");
        debug_assert_eq!(a.c, b.c);
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, and AVX-512F and VL for the second (checked at
            // run time).
            return unsafe {
                if crate::dsp::simd::avx512() {
                    pair_avx512(a, b, xa, xb, acc_a, acc_b)
                } else {
                    pair_fma(a, b, xa, xb, acc_a, acc_b)
                }
            };
        }
        pair_body(a, b, xa, xb, acc_a, acc_b)
    }

    /// [`process_sum_sq`](Self::process_sum_sq) for four channels at once (two stereo meters
    /// pushed together): with AVX2 and FMA each channel is a lane of one vector going through
    /// the same operations in the same order ([`shelf`], [`highpass`]), so the results are bit
    /// for bit those of four single calls, for half the time of two pairs (the recursion's
    /// latency, not its arithmetic, bounds a pair). Each lane has its filter's coefficients:
    /// the first two filters share one sample rate, the last two one (perhaps another); the
    /// inputs have one length.
    #[inline]
    pub fn process_quad_sum_sq(f: [&mut Self; 4], x: [&[f64]; 4], acc: [f64; 4]) -> [f64; 4] {
        let n = x[0].len();
        assert!(
            x.iter().all(|c| c.len() == n),
            "channel slices differ in length"
        );
        debug_assert!(f[0].c == f[1].c && f[2].c == f[3].c);
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, and AVX-512F and VL for the second (checked at
            // run time).
            return unsafe {
                if crate::dsp::simd::avx512() {
                    quad_avx512(f, x, acc)
                } else {
                    quad_avx2(f, x, acc)
                }
            };
        }
        let [f0, f1, f2, f3] = f;
        let (a0, a1) = Self::process_pair_sum_sq(f0, f1, x[0], x[1], acc[0], acc[1]);
        let (a2, a3) = Self::process_pair_sum_sq(f2, f3, x[2], x[3], acc[2], acc[3]);
        [a0, a1, a2, a3]
    }
}

/// One sample `x` through the shelf, a direct-form-I biquad (`s`: its last two inputs
/// `x1, x2` and outputs `y1, y2`): `y = −a1·y1 + (−a2·y2 + ((b0·x + b1·x1) + b2·x2))`, every
/// product fused with the sum after it (`f64::mul_add`, one rounding each). The terms that do
/// not depend on `y1` come first, so the loop-carried path is one fused multiply-add per
/// sample (`y2`'s term is ready a sample early): the recursion's latency, which bounds the
/// filter, is half that of the transposed direct form II (a multiply-add and an add).
#[inline(always)]
fn shelf(c: &BiquadCoeffs, s: &mut [f64; 4], x: f64) -> f64 {
    let [x1, x2, y1, y2] = *s;
    let u = c.b2.mul_add(x2, c.b1.mul_add(x1, c.b0 * x));
    let y = (-c.a1).mul_add(y1, (-c.a2).mul_add(y2, u));
    *s = [x, x1, y, y1];
    y
}

/// One sample through the RLB high-pass: [`shelf`]'s recursion with BS.1770's numerator
/// `(1, −2, 1)` ([`k_weighting_coefficients`]), whose product `1·x` is exact and left out
/// (the same bits as [`shelf`] with those coefficients).
#[inline(always)]
fn highpass(c: &BiquadCoeffs, s: &mut [f64; 4], x: f64) -> f64 {
    let [x1, x2, y1, y2] = *s;
    let u = (-2.0f64).mul_add(x1, x) + x2;
    let y = (-c.a1).mul_add(y1, (-c.a2).mul_add(y2, u));
    *s = [x, x1, y, y1];
    y
}

/// The two stages' states, `[x1, x2, y1, y2]` each, from a filter's `[x1, x2, y1, y2, z1, z2]`.
#[inline(always)]
fn stages(s: &[f64; 6]) -> ([f64; 4], [f64; 4]) {
    ([s[0], s[1], s[2], s[3]], [s[2], s[3], s[4], s[5]])
}

/// A filter's state from its two stages' (the high-pass's input is the shelf's output).
#[inline(always)]
fn joined(s1: [f64; 4], s2: [f64; 4]) -> [f64; 6] {
    [s1[0], s1[1], s1[2], s1[3], s2[2], s2[3]]
}

/// [`KWeighting::process_sum_sq`]'s loop.
#[inline(always)]
fn single_body(k: &mut KWeighting, input: &[f64], acc: f64) -> f64 {
    let [c1, c2] = k.c;
    let (mut s1, mut s2) = stages(&k.s);
    let mut sum = acc;
    for &x in input {
        let y = highpass(&c2, &mut s2, shelf(&c1, &mut s1, x));
        sum = y.mul_add(y, sum);
    }
    k.s = joined(s1, s2);
    sum
}

/// [`KWeighting::process_pair_sum_sq`]'s loop: two channels' recursions interleaved.
#[inline(always)]
fn pair_body(
    a: &mut KWeighting,
    b: &mut KWeighting,
    xa: &[f64],
    xb: &[f64],
    acc_a: f64,
    acc_b: f64,
) -> (f64, f64) {
    let [c1, c2] = a.c;
    let (mut a1, mut a2) = stages(&a.s);
    let (mut b1, mut b2) = stages(&b.s);
    let (mut sa, mut sb) = (acc_a, acc_b);
    for (&x, &y) in xa.iter().zip(xb) {
        let ya = highpass(&c2, &mut a2, shelf(&c1, &mut a1, x));
        let yb = highpass(&c2, &mut b2, shelf(&c1, &mut b1, y));
        sa = ya.mul_add(ya, sa);
        sb = yb.mul_add(yb, sb);
    }
    a.s = joined(a1, a2);
    b.s = joined(b1, b2);
    (sa, sb)
}

/// [`single_body`] with the fused multiply-adds as instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn single_fma(k: &mut KWeighting, input: &[f64], acc: f64) -> f64 {
    single_body(k, input, acc)
}

/// [`single_fma`] with AVX-512's 32 registers (the coefficients, the states and the sum all
/// stay in registers; the same instructions otherwise).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn single_avx512(k: &mut KWeighting, input: &[f64], acc: f64) -> f64 {
    single_body(k, input, acc)
}

/// `n` vectors of lanes (two or four channels, `load(i)` the `i`-th) through [`shelf`] and
/// [`highpass`], lane by lane the same operations, by the width's intrinsics (`_mm_…` or
/// `_mm256_…`), each lane with its filter's coefficients (`coef(|c| …)` gathers one of them
/// from every lane's `[shelf, highpass]`); the states `[x1, x2, y1, y2, z1, z2]` (a vector of
/// lanes each) and the sum of squares out.
#[cfg(target_arch = "x86_64")]
macro_rules! lanes_loop {
    ($n:expr, $load:expr, $coef:expr, $s:expr, $sum:expr, $add:ident, $mul:ident,
     $fmadd:ident, $fnmadd:ident, $set1:ident) => {{
        let coef = $coef;
        let (b10, b11, b12) = (coef(|c| c[0].b0), coef(|c| c[0].b1), coef(|c| c[0].b2));
        let (a11, a12) = (coef(|c| c[0].a1), coef(|c| c[0].a2));
        let (a21, a22) = (coef(|c| c[1].a1), coef(|c| c[1].a2));
        let minus_two = $set1(-2.0);
        let [mut x1, mut x2, mut y1, mut y2, mut z1, mut z2] = $s;
        let mut sum = $sum;
        for i in 0..$n {
            let x = $load(i);
            // shelf: y = −a1·y1 + (−a2·y2 + ((b0·x + b1·x1) + b2·x2)).
            let u = $fmadd(b12, x2, $fmadd(b11, x1, $mul(b10, x)));
            let y = $fnmadd(a11, y1, $fnmadd(a12, y2, u));
            // highpass: z = −a1·z1 + (−a2·z2 + ((y − 2·y1) + y2)) (`y2·1 + …`, exact).
            let v = $add(y2, $fmadd(minus_two, y1, y));
            let z = $fnmadd(a21, z1, $fnmadd(a22, z2, v));
            (x2, x1, y2, y1, z2, z1) = (x1, x, y1, y, z1, z);
            sum = $fmadd(z, z, sum);
        }
        ([x1, x2, y1, y2, z1, z2], sum)
    }};
}

/// Defines `$name`, [`pair_body`] in the two lanes of an SSE register with fused
/// multiply-adds, built with `$features`.
#[cfg(target_arch = "x86_64")]
macro_rules! pair_kernel {
    ($name:ident, $features:literal) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(
            a: &mut KWeighting,
            b: &mut KWeighting,
            xa: &[f64],
            xb: &[f64],
            acc_a: f64,
            acc_b: f64,
        ) -> (f64, f64) {
            use std::arch::x86_64::*;
            let n = xa.len().min(xb.len());
            let state: [__m128d; 6] = std::array::from_fn(|j| _mm_set_pd(b.s[j], a.s[j]));
            let (s, sum) = lanes_loop!(
                n,
                |i: usize| _mm_set_pd(*xb.get_unchecked(i), *xa.get_unchecked(i)),
                |f: fn(&[BiquadCoeffs; 2]) -> f64| _mm_set1_pd(f(&a.c)),
                state,
                _mm_set_pd(acc_b, acc_a),
                _mm_add_pd,
                _mm_mul_pd,
                _mm_fmadd_pd,
                _mm_fnmadd_pd,
                _mm_set1_pd
            );
            let out = |v: __m128d| {
                let mut o = [0.0f64; 2];
                _mm_storeu_pd(o.as_mut_ptr(), v);
                o
            };
            let s = s.map(out);
            a.s = std::array::from_fn(|j| s[j][0]);
            b.s = std::array::from_fn(|j| s[j][1]);
            let sum = out(sum);
            (sum[0], sum[1])
        }
    };
}

#[cfg(target_arch = "x86_64")]
pair_kernel!(pair_fma, "avx2,fma");
// AVX-512's 32 registers: with 16 the sum spills to the stack and its store and reload lengthen
// the loop-carried path.
#[cfg(target_arch = "x86_64")]
pair_kernel!(pair_avx512, "avx2,fma,avx512f,avx512vl");

/// Defines `$name`, [`KWeighting::process_quad_sum_sq`] in four AVX2 lanes with fused
/// multiply-adds, built with `$features`.
#[cfg(target_arch = "x86_64")]
macro_rules! quad_kernel {
    ($name:ident, $features:literal) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(f: [&mut KWeighting; 4], x: [&[f64]; 4], acc: [f64; 4]) -> [f64; 4] {
            use std::arch::x86_64::*;
            let [x0, x1, x2, x3] = x;
            let n = x0.len().min(x1.len()).min(x2.len()).min(x3.len());
            let state: [__m256d; 6] =
                std::array::from_fn(|j| _mm256_set_pd(f[3].s[j], f[2].s[j], f[1].s[j], f[0].s[j]));
            let (s, sum) = lanes_loop!(
                n,
                |i: usize| _mm256_set_pd(
                    *x3.get_unchecked(i),
                    *x2.get_unchecked(i),
                    *x1.get_unchecked(i),
                    *x0.get_unchecked(i)
                ),
                |k: fn(&[BiquadCoeffs; 2]) -> f64| _mm256_set_pd(
                    k(&f[3].c),
                    k(&f[2].c),
                    k(&f[1].c),
                    k(&f[0].c)
                ),
                state,
                _mm256_set_pd(acc[3], acc[2], acc[1], acc[0]),
                _mm256_add_pd,
                _mm256_mul_pd,
                _mm256_fmadd_pd,
                _mm256_fnmadd_pd,
                _mm256_set1_pd
            );
            let out = |v: __m256d| {
                let mut o = [0.0f64; 4];
                _mm256_storeu_pd(o.as_mut_ptr(), v);
                o
            };
            let s = s.map(out);
            for (l, k) in f.into_iter().enumerate() {
                k.s = std::array::from_fn(|j| s[j][l]);
            }
            out(sum)
        }
    };
}

#[cfg(target_arch = "x86_64")]
quad_kernel!(quad_avx2, "avx2,fma");
#[cfg(target_arch = "x86_64")]
quad_kernel!(quad_avx512, "avx2,fma,avx512f,avx512vl");

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

    /// Which kernels a test runs ([`Build::run`]).
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Build {
        /// `f64::mul_add` in software.
        Portable,
        /// AVX2 and FMA, 16 registers.
        Avx2,
        /// The same with AVX-512's 32 registers.
        Avx512,
    }

    impl Build {
        /// The builds this CPU can run.
        fn all() -> Vec<Build> {
            crate::dsp::simd::init();
            let mut v = vec![Build::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                let fma = std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma");
                if fma {
                    v.push(Build::Avx2);
                }
                if fma
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    v.push(Build::Avx512);
                }
            }
            v
        }

        fn single(self, k: &mut KWeighting, x: &[f64], acc: f64) -> f64 {
            match self {
                Build::Portable => single_body(k, x, acc),
                // SAFETY: `all` lists a build only where the CPU has its features.
                #[cfg(target_arch = "x86_64")]
                Build::Avx2 => unsafe { single_fma(k, x, acc) },
                #[cfg(target_arch = "x86_64")]
                Build::Avx512 => unsafe { single_avx512(k, x, acc) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!(),
            }
        }

        fn pair(self, [a, b]: [&mut KWeighting; 2], x: [&[f64]; 2], acc: [f64; 2]) -> [f64; 2] {
            let (p, q) = match self {
                Build::Portable => pair_body(a, b, x[0], x[1], acc[0], acc[1]),
                // SAFETY: as in `single`.
                #[cfg(target_arch = "x86_64")]
                Build::Avx2 => unsafe { pair_fma(a, b, x[0], x[1], acc[0], acc[1]) },
                #[cfg(target_arch = "x86_64")]
                Build::Avx512 => unsafe { pair_avx512(a, b, x[0], x[1], acc[0], acc[1]) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!(),
            };
            [p, q]
        }

        fn quad(self, f: [&mut KWeighting; 4], x: [&[f64]; 4], acc: [f64; 4]) -> [f64; 4] {
            match self {
                Build::Portable => {
                    let [f0, f1, f2, f3] = f;
                    let [a0, a1] = self.pair([f0, f1], [x[0], x[1]], [acc[0], acc[1]]);
                    let [a2, a3] = self.pair([f2, f3], [x[2], x[3]], [acc[2], acc[3]]);
                    [a0, a1, a2, a3]
                }
                // SAFETY: as in `single`.
                #[cfg(target_arch = "x86_64")]
                Build::Avx2 => unsafe { quad_avx2(f, x, acc) },
                #[cfg(target_arch = "x86_64")]
                Build::Avx512 => unsafe { quad_avx512(f, x, acc) },
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!(),
            }
        }
    }

    /// Four channels at once, and two, give the bits of four single filters, over lengths and
    /// states of every kind (loud, quiet, silent, a huge value), two lanes at one rate and two
    /// at another; and every build (portable `f64::mul_add`, AVX2 and FMA, AVX-512) gives the
    /// same bits; what the filters dispatch to too.
    #[test]
    fn four_lanes_give_the_bits_of_single_filters_on_every_build() {
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
        let bits = |k: &KWeighting| k.s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // The first two lanes at 44.1 kHz, the last two at 48 kHz (each its coefficients).
        let filters = || -> Vec<KWeighting> {
            [44_100.0, 44_100.0, 48_000.0, 48_000.0]
                .map(KWeighting::new)
                .to_vec()
        };
        let lengths = [0, 1, 7, 480, 4000, 512];
        let mut runs = Vec::new();
        for build in Build::all() {
            let mut seen = Vec::new();
            let (mut single, mut quad, mut pairs) = (filters(), filters(), filters());
            let (mut want, mut got, mut paired) = ([0.0; 4], [0.0; 4], [0.0; 4]);
            let mut at = 0;
            for len in lengths {
                let x: [&[f64]; 4] = std::array::from_fn(|c| &chans[c][at..at + len]);
                for c in 0..4 {
                    want[c] = build.single(&mut single[c], x[c], want[c]);
                }
                let [q0, q1, q2, q3] = &mut quad[..] else {
                    unreachable!()
                };
                got = build.quad([q0, q1, q2, q3], x, got);
                for (c, p) in pairs.chunks_exact_mut(2).enumerate() {
                    let [p0, p1] = p else { unreachable!() };
                    let (c0, c1) = (2 * c, 2 * c + 1);
                    [paired[c0], paired[c1]] =
                        build.pair([p0, p1], [x[c0], x[c1]], [paired[c0], paired[c1]]);
                }
                for c in 0..4 {
                    assert_eq!(
                        got[c].to_bits(),
                        want[c].to_bits(),
                        "{build:?}, channel {c}"
                    );
                    assert_eq!(bits(&quad[c]), bits(&single[c]));
                    assert_eq!(paired[c].to_bits(), want[c].to_bits(), "pair, channel {c}");
                    assert_eq!(bits(&pairs[c]), bits(&single[c]));
                    seen.push(got[c].to_bits());
                    seen.extend(bits(&quad[c]));
                }
                at += len;
            }
            runs.push((build, seen));
        }
        // What the public calls dispatch to, portable and not.
        for portable in [true, false] {
            crate::dsp::simd::force_portable(portable);
            let mut seen = Vec::new();
            let mut quad = filters();
            let mut got = [0.0; 4];
            let mut at = 0;
            for len in lengths {
                let x: [&[f64]; 4] = std::array::from_fn(|c| &chans[c][at..at + len]);
                let [q0, q1, q2, q3] = &mut quad[..] else {
                    unreachable!()
                };
                got = KWeighting::process_quad_sum_sq([q0, q1, q2, q3], x, got);
                for c in 0..4 {
                    seen.push(got[c].to_bits());
                    seen.extend(bits(&quad[c]));
                }
                at += len;
            }
            assert_eq!(seen, runs[0].1, "dispatched, portable {portable}");
        }
        crate::dsp::simd::force_portable(false);
        for (build, seen) in &runs[1..] {
            assert_eq!(*seen, runs[0].1, "{build:?} and portable builds");
        }
    }

    /// A double-double number (`hi + lo`, |lo| ≤ ulp(hi)/2): the reference arithmetic.
    #[derive(Clone, Copy)]
    struct Dd(f64, f64);

    impl Dd {
        fn add(self, o: Dd) -> Dd {
            let s = self.0 + o.0;
            let bb = s - self.0;
            let e = (self.0 - (s - bb)) + (o.0 - bb) + self.1 + o.1;
            let hi = s + e;
            Dd(hi, e - (hi - s))
        }
        fn mul(self, o: Dd) -> Dd {
            let p = self.0 * o.0;
            let e = self.0.mul_add(o.0, -p) + self.0 * o.1 + self.1 * o.0;
            let hi = p + e;
            Dd(hi, e - (hi - p))
        }
        fn f(v: f64) -> Dd {
            Dd(v, 0.0)
        }
    }

    /// The K-weighting of `x` in double-double arithmetic (the coefficients as exact), squared
    /// and summed per `hop` samples: what both f64 recursions approximate.
    fn reference(rate: f64, x: &[f64], hop: usize) -> Vec<f64> {
        let c = k_weighting_coefficients(rate);
        let mut s = [[Dd::f(0.0); 2]; 2];
        let mut out = Vec::new();
        let mut acc = Dd::f(0.0);
        for (i, &v) in x.iter().enumerate() {
            let mut u = Dd::f(v);
            for (c, s) in c.iter().zip(s.iter_mut()) {
                let y = Dd::f(c.b0).mul(u).add(s[0]);
                let ny = |a: f64| Dd::f(-a).mul(y);
                s[0] = Dd::f(c.b1).mul(u).add(s[1]).add(ny(c.a1));
                s[1] = Dd::f(c.b2).mul(u).add(ny(c.a2));
                u = y;
            }
            acc = acc.add(u.mul(u));
            if (i + 1) % hop == 0 {
                out.push(acc.0 + acc.1);
                acc = Dd::f(0.0);
            }
        }
        out
    }

    /// The transposed-direct-form-II recursion the direct form I replaced (each state update's
    /// product fused with its subtraction), per hop as [`reference`].
    fn transposed(rate: f64, x: &[f64], hop: usize) -> Vec<f64> {
        let c = k_weighting_coefficients(rate);
        let mut s = [[0.0f64; 2]; 2];
        let mut out = Vec::new();
        let mut acc = 0.0;
        for (i, &v) in x.iter().enumerate() {
            let mut u = v;
            for (c, s) in c.iter().zip(s.iter_mut()) {
                let y = c.b0 * u + s[0];
                s[0] = (-c.a1).mul_add(y, c.b1 * u + s[1]);
                s[1] = (-c.a2).mul_add(y, c.b2 * u);
                u = y;
            }
            acc += u * u;
            if (i + 1) % hop == 0 {
                out.push(acc);
                acc = 0.0;
            }
        }
        out
    }

    /// The direct form I is accurate to a stated tolerance, and at least as accurate as the
    /// transposed direct form II it replaced: against a double-double reference, the hop
    /// energies' mean and largest relative errors, on noise, a low tone near the high-pass
    /// (where the poles sit closest to the unit circle), a loud square and a quiet programme,
    /// at 44.1 and 48 kHz.
    #[test]
    fn direct_form_is_accurate_and_at_least_as_accurate_as_the_transposed_one() {
        let n = 96_000;
        let mut noise = crate::dsp::test_signal::noise(0x9e37_79b9_7f4a_7c15);
        let signals: Vec<Vec<f64>> = vec![
            (0..n).map(|_| 0.9 * noise()).collect(),
            (0..n).map(|i| 0.7 * (i as f64 * 0.004).sin()).collect(),
            (0..n)
                .map(|i| if (i / 300) % 2 == 0 { 0.99 } else { -0.99 })
                .collect(),
            (0..n)
                .map(|i| 1e-4 * noise() + 0.01 * (i as f64 * 0.07).sin())
                .collect(),
        ];
        let (mut direct_err, mut transposed_err) = ((0.0, 0.0f64), (0.0, 0.0f64));
        let mut hops = 0;
        for rate in [44_100.0, 48_000.0] {
            let hop = (rate / 10.0) as usize;
            for x in &signals {
                let want = reference(rate, x, hop);
                let old = transposed(rate, x, hop);
                let mut k = KWeighting::new(rate);
                let new: Vec<f64> = x
                    .chunks_exact(hop)
                    .map(|c| k.process_sum_sq(c, 0.0))
                    .collect();
                for ((w, o), f) in want.iter().zip(&old).zip(&new) {
                    let rel = |v: f64| ((v - w) / w).abs();
                    direct_err = (direct_err.0 + rel(*f), direct_err.1.max(rel(*f)));
                    transposed_err = (transposed_err.0 + rel(*o), transposed_err.1.max(rel(*o)));
                    hops += 1;
                }
            }
        }
        let mean = |e: (f64, f64)| e.0 / hops as f64;
        eprintln!(
            "hop energy relative error over {hops} hops: direct form I mean {:.3e} max {:.3e}, \
             transposed direct form II mean {:.3e} max {:.3e}",
            mean(direct_err),
            direct_err.1,
            mean(transposed_err),
            transposed_err.1
        );
        // Measured: 1.2e-14 on average, 1.2e-13 at worst (the transposed form: 3.6e-14 and
        // 4.9e-13); 1e-12 of an energy is 4e-12 dB.
        assert!(mean(direct_err) < 1e-13 && direct_err.1 < 1e-12);
        assert!(mean(direct_err) <= mean(transposed_err));
        assert!(direct_err.1 <= transposed_err.1);
    }

    /// The filter's gain on steady sines is the magnitude response of its coefficients,
    /// `|H(e^{jω})|² = Π |b0 + b1·z⁻¹ + b2·z⁻²|² / |1 + a1·z⁻¹ + a2·z⁻²|²`, from 18 Hz to 16 kHz
    /// at 44.1 and 48 kHz, to 1e-9 of the power: the mean square of a sine of a whole number of
    /// samples per period over whole periods, after the filter has settled.
    #[test]
    fn gain_on_sines_is_the_coefficients_response() {
        for rate in [44_100.0, 48_000.0] {
            let c = k_weighting_coefficients(rate);
            for period in [2400usize, 1200, 480, 48, 32, 12, 5, 3] {
                let w = 2.0 * std::f64::consts::PI / period as f64;
                let power = c
                    .iter()
                    .map(|c| {
                        let mag2 = |k: [f64; 3]| {
                            let re = k[0] + k[1] * w.cos() + k[2] * (2.0 * w).cos();
                            let im = -k[1] * w.sin() - k[2] * (2.0 * w).sin();
                            re * re + im * im
                        };
                        mag2([c.b0, c.b1, c.b2]) / mag2([1.0, c.a1, c.a2])
                    })
                    .product::<f64>();
                let settle = 2 * rate as usize;
                let whole = period * (48_000 / period);
                let x: Vec<f64> = (0..settle + whole)
                    .map(|i| 0.5 * (w * (i % period) as f64).sin())
                    .collect();
                let mut k = KWeighting::new(rate);
                k.process_sum_sq(&x[..settle], 0.0);
                let measured = k.process_sum_sq(&x[settle..], 0.0) / whole as f64;
                let want = 0.125 * power;
                assert!(
                    ((measured - want) / want).abs() < 1e-9,
                    "period {period} at {rate}: {measured} vs {want}"
                );
            }
        }
    }
}
