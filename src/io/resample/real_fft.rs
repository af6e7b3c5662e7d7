//! Real FFTs of even length for the resampler: a complex FFT of half the length (rustfft's),
//! its spectrum untangled into the real signal's (forward) or tangled back (inverse) in a pass
//! over the bins in pairs `k`, `m − k`. The arithmetic is realfft 3's (`RealToComplexEven`,
//! `ComplexToRealEven`: the same operations in the same order, the same twiddles, rustfft's
//! inner FFTs as its planner makes them), so the bits are realfft's; the pair pass is written
//! so that it vectorizes (built once more for AVX2 and used where the CPU has it; the compiler
//! contracts nothing into FMAs, so both builds give the same bits, tested).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::FftNum;
use rustfft::{Fft, FftPlanner};

/// realfft's twiddle `e^(−2πi · index / len)`, computed in `f64`.
fn twiddle<T: FftNum>(index: usize, len: usize) -> Complex<T> {
    let angle = -2f64 * std::f64::consts::PI / len as f64 * index as f64;
    Complex {
        re: T::from_f64(angle.cos()).expect("a float converts"),
        im: T::from_f64(angle.sin()).expect("a float converts"),
    }
}

/// The pairs `k`, `m − k` (`1 ≤ k ≤ (m − 1) / 2`) of a spectrum of `m + 1` bins, as a slice
/// of the lower ones and one of the upper ones (in rising order: the pair of `low[i]` is
/// `high[len − 1 − i]`).
fn pairs<T>(spectrum: &mut [Complex<T>]) -> (&mut [Complex<T>], &mut [Complex<T>]) {
    let m = spectrum.len() - 1;
    let count = (m - 1) / 2;
    let (low, high) = spectrum.split_at_mut(m - count);
    (&mut low[1..1 + count], &mut high[..count])
}

/// Whether this CPU runs the AVX2 build of the pair passes.
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A planned complex FFT of half the length and the twiddles of the pair pass.
struct Plan<T> {
    fft: Arc<dyn Fft<T>>,
    twiddles: Vec<Complex<T>>,
    avx2: bool,
}

impl<T: FftNum> Plan<T> {
    /// `fft` (of `len / 2`) with realfft's twiddles for `len` (even), each mapped by `adjust`.
    fn new(len: usize, fft: Arc<dyn Fft<T>>, adjust: impl Fn(Complex<T>) -> Complex<T>) -> Self {
        assert!(len % 2 == 0 && len > 0, "an even length");
        Plan {
            fft,
            twiddles: (1..len.div_ceil(4))
                .map(|i| adjust(twiddle::<T>(i, len)))
                .collect(),
            avx2: avx2(),
        }
    }
}

/// The forward transform: `len` real samples to `len / 2 + 1` bins.
pub(super) struct RealForward<T>(Plan<T>);

impl<T: FftNum> RealForward<T> {
    /// Plans the transform of `len` (even) samples.
    pub(super) fn new(len: usize, planner: &mut FftPlanner<T>) -> Self {
        let half = T::from_f64(0.5).expect("a float converts");
        // realfft's twiddles, halved.
        RealForward(Plan::new(len, planner.plan_fft_forward(len / 2), |t| {
            t * half
        }))
    }

    /// Scratch the transform needs (complex values).
    pub(super) fn scratch_len(&self) -> usize {
        self.0.fft.get_outofplace_scratch_len()
    }

    /// Transforms `input` (`len` samples as `len / 2` complex values, the even samples the
    /// real parts; garbage afterwards) into `spectrum` (`len / 2 + 1` bins).
    pub(super) fn process(
        &self,
        input: &mut [Complex<T>],
        spectrum: &mut [Complex<T>],
        scratch: &mut [Complex<T>],
    ) {
        let m = input.len();
        self.0
            .fft
            .process_outofplace_with_scratch(input, &mut spectrum[..m], scratch);
        let first = spectrum[0];
        spectrum[0] = Complex {
            re: first.re + first.im,
            im: T::zero(),
        };
        spectrum[m] = Complex {
            re: first.re - first.im,
            im: T::zero(),
        };
        let (low, high) = pairs(spectrum);
        run_pairs(self.0.avx2, low, high, &self.0.twiddles, Pass::Forward);
        if m % 2 == 0 {
            spectrum[m / 2].im = -spectrum[m / 2].im;
        }
    }
}

/// The inverse transform: `len / 2 + 1` bins to `len` real samples (unnormalised).
pub(super) struct RealInverse<T>(Plan<T>);

impl<T: FftNum> RealInverse<T> {
    /// Plans the transform to `len` (even) samples.
    pub(super) fn new(len: usize, planner: &mut FftPlanner<T>) -> Self {
        // realfft's twiddles, conjugated.
        RealInverse(Plan::new(len, planner.plan_fft_inverse(len / 2), |t| {
            t.conj()
        }))
    }

    /// Scratch the transform needs (complex values).
    pub(super) fn scratch_len(&self) -> usize {
        self.0.fft.get_outofplace_scratch_len()
    }

    /// Transforms `spectrum` (`len / 2 + 1` bins, the first's and last's imaginary parts
    /// taken as zero; garbage afterwards) into `output` (`len` samples as `len / 2` complex
    /// values, the even samples the real parts).
    pub(super) fn process(
        &self,
        spectrum: &mut [Complex<T>],
        output: &mut [Complex<T>],
        scratch: &mut [Complex<T>],
    ) {
        let m = output.len();
        // As realfft: a nonzero imaginary part is dropped (a negative zero is kept).
        for bin in [0, m] {
            if spectrum[bin].im != T::zero() {
                spectrum[bin].im = T::zero();
            }
        }
        let (first, last) = (spectrum[0], spectrum[m]);
        let (sum, diff) = (first + last, first - last);
        spectrum[0] = Complex {
            re: sum.re - sum.im,
            im: diff.re - diff.im,
        };
        let (low, high) = pairs(spectrum);
        run_pairs(self.0.avx2, low, high, &self.0.twiddles, Pass::Inverse);
        if m % 2 == 0 {
            let centre = spectrum[m / 2];
            spectrum[m / 2] = (centre + centre).conj();
        }
        self.0
            .fft
            .process_outofplace_with_scratch(&mut spectrum[..m], output, scratch);
    }
}

/// Which pair pass to run.
#[derive(Clone, Copy)]
enum Pass {
    Forward,
    Inverse,
}

/// Runs the pair pass, in the AVX2 build where `avx2` says the CPU has it.
fn run_pairs<T: FftNum>(
    avx2: bool,
    low: &mut [Complex<T>],
    high: &mut [Complex<T>],
    twiddles: &[Complex<T>],
    pass: Pass,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is true only where the CPU reported AVX2 (`avx2()`).
        unsafe { pairs_avx2(low, high, twiddles, pass) };
        return;
    }
    let _ = avx2;
    pairs_portable(low, high, twiddles, pass);
}

/// The pair pass built for AVX2: the same operations as [`pairs_portable`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pairs_avx2<T: FftNum>(
    low: &mut [Complex<T>],
    high: &mut [Complex<T>],
    twiddles: &[Complex<T>],
    pass: Pass,
) {
    pairs_portable(low, high, twiddles, pass);
}

/// The pair pass: realfft's untangling (forward) or tangling (inverse) of the bins `k` (in
/// `low`) and `m − k` (in `high`, reversed) with twiddle `k − 1`.
#[inline(always)]
fn pairs_portable<T: FftNum>(
    low: &mut [Complex<T>],
    high: &mut [Complex<T>],
    twiddles: &[Complex<T>],
    pass: Pass,
) {
    let n = low.len();
    let high = &mut high[..n];
    let twiddles = &twiddles[..n];
    let half = T::from_f64(0.5).expect("a float converts");
    match pass {
        Pass::Forward => {
            for i in 0..n {
                let (a, b, t) = (low[i], high[n - 1 - i], twiddles[i]);
                let sum = a + b;
                let diff = a - b;
                let half_sum_re = half * sum.re;
                let half_diff_im = half * diff.im;
                let twiddled_re = sum.im * t.re + diff.re * t.im;
                let twiddled_im = sum.im * t.im - diff.re * t.re;
                low[i] = Complex {
                    re: half_sum_re + twiddled_re,
                    im: half_diff_im + twiddled_im,
                };
                high[n - 1 - i] = Complex {
                    re: half_sum_re - twiddled_re,
                    im: twiddled_im - half_diff_im,
                };
            }
        }
        Pass::Inverse => {
            for i in 0..n {
                let (a, b, t) = (low[i], high[n - 1 - i], twiddles[i]);
                let sum = a + b;
                let diff = a - b;
                let twiddled_re = sum.im * t.re + diff.re * t.im;
                let twiddled_im = sum.im * t.im - diff.re * t.re;
                low[i] = Complex {
                    re: sum.re - twiddled_re,
                    im: diff.im - twiddled_im,
                };
                high[n - 1 - i] = Complex {
                    re: sum.re + twiddled_re,
                    im: -twiddled_im - diff.im,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realfft::num_traits::Zero;
    use realfft::RealFftPlanner;

    /// Deterministic samples in [−0.5, 0.5).
    fn noise<T: FftNum>(n: usize, mut seed: u64) -> Vec<T> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                T::from_f64((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5).unwrap()
            })
            .collect()
    }

    /// `samples` as complex values (a copy).
    fn pairs_of<T: FftNum>(samples: &[T]) -> Vec<Complex<T>> {
        samples
            .chunks(2)
            .map(|p| Complex { re: p[0], im: p[1] })
            .collect()
    }

    fn same_as_realfft<T: FftNum>() {
        let mut ours = FftPlanner::<T>::new();
        let mut theirs = RealFftPlanner::<T>::new();
        // The resampler's lengths (48 <-> 44.1 and 44.1 -> 96 kHz), and rubato's layout's
        // (96 -> 44.1 kHz: 2058, half of it odd).
        for len in [10240, 9408, 20480, 4480, 4116, 2058] {
            let signal = noise::<T>(len, len as u64);
            let forward = theirs.plan_fft_forward(len);
            let mut want = forward.make_output_vec();
            forward.process(&mut signal.clone(), &mut want).unwrap();
            let ours_forward = RealForward::new(len, &mut ours);
            let mut got = vec![Complex::zero(); len / 2 + 1];
            let mut scratch = vec![Complex::zero(); ours_forward.scratch_len()];
            ours_forward.process(&mut pairs_of(&signal), &mut got, &mut scratch);
            assert!(got == want, "forward, {len}");

            let mut spectrum = pairs_of(&noise::<T>(len + 2, 7 * len as u64));
            spectrum[0].im = T::zero();
            spectrum[len / 2].im = T::zero();
            let inverse = theirs.plan_fft_inverse(len);
            let mut want = inverse.make_output_vec();
            inverse.process(&mut spectrum.clone(), &mut want).unwrap();
            let ours_inverse = RealInverse::new(len, &mut ours);
            let mut got = vec![Complex::zero(); len / 2];
            let mut scratch = vec![Complex::zero(); ours_inverse.scratch_len()];
            ours_inverse.process(&mut spectrum, &mut got, &mut scratch);
            let got: Vec<T> = got.iter().flat_map(|c| [c.re, c.im]).collect();
            assert!(got == want, "inverse, {len}");
        }
    }

    #[test]
    fn gives_realffts_bits() {
        same_as_realfft::<f32>();
        same_as_realfft::<f64>();
    }

    fn builds_agree<T: FftNum>() {
        for pass in [Pass::Forward, Pass::Inverse] {
            // Counts around the vector widths.
            for n in [0, 1, 3, 4, 7, 8, 9, 31, 1000, 2351] {
                let low = pairs_of(&noise::<T>(2 * n, 1 + n as u64));
                let high = pairs_of(&noise::<T>(2 * n, 2 + n as u64));
                let twiddles = pairs_of(&noise::<T>(2 * n, 3 + n as u64));
                let (mut low_a, mut high_a) = (low.clone(), high.clone());
                pairs_portable(&mut low_a, &mut high_a, &twiddles, pass);
                let (mut low_b, mut high_b) = (low.clone(), high.clone());
                run_pairs(avx2(), &mut low_b, &mut high_b, &twiddles, pass);
                assert!(low_a == low_b && high_a == high_b, "{n} pairs");
                if n > 0 {
                    assert!(low_a != low, "the pass changes the bins");
                }
            }
        }
    }

    /// The AVX2 build of the pair pass gives the portable build's bits (on a CPU without
    /// AVX2 both runs are the portable build).
    #[test]
    fn avx2_build_gives_the_portable_bits() {
        #[cfg(target_arch = "x86_64")]
        eprintln!("AVX2: {}", avx2());
        builds_agree::<f32>();
        builds_agree::<f64>();
    }
}
