//! The averaged spectrum of a programme: Welch's method (Hann window, 50 % overlap), streamed
//! in constant memory, and fractional-octave band levels for plots and comparisons.
//!
//! Bins hold mean-square power (Parseval-normalised, one-sided), so the bins add up to the
//! signal's mean square and a band's level does not depend on the FFT size or the sample
//! rate: two files at different rates compare band by band. Levels follow the RMS convention
//! of the meters: a full-scale sine reads −3.01 dBFS in the band that holds it.

use crate::analysis::meters::power_to_db;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// The FFT size `analyze` uses unless told otherwise.
pub const DEFAULT_FFT_SIZE: usize = 8192;

/// Streams planar audio into an averaged power spectrum (Welch).
pub struct WelchAnalyzer {
    n: usize,
    hop: usize,
    sample_rate: f64,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    /// One segment buffer per channel; `fill` samples are valid.
    buffers: Vec<Vec<f64>>,
    fill: usize,
    input: Vec<f64>,
    output: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Summed one-sided power per bin over segments and channels.
    sum: Vec<f64>,
    segments: u64,
    /// `1 / (n · Σw²)`.
    norm: f64,
}

impl WelchAnalyzer {
    /// An analyzer of `channels` channels with segments of `fft_size` samples (a power of two,
    /// at least 64).
    ///
    /// # Panics
    /// If `fft_size` is not a power of two of at least 64, or `channels` is 0.
    pub fn new(sample_rate: f64, channels: usize, fft_size: usize) -> Self {
        assert!(
            fft_size >= 64 && fft_size.is_power_of_two(),
            "FFT size must be a power of two ≥ 64"
        );
        assert!(channels > 0, "WelchAnalyzer needs at least one channel");
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(fft_size);
        // Periodic Hann: overlapping by half sums to a constant.
        let window: Vec<f64> = (0..fft_size)
            .map(|i| 0.5 - 0.5 * libm::cos(2.0 * std::f64::consts::PI * i as f64 / fft_size as f64))
            .collect();
        let w2: f64 = window.iter().map(|w| w * w).sum();
        Self {
            n: fft_size,
            hop: fft_size / 2,
            sample_rate,
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            buffers: vec![vec![0.0; fft_size]; channels],
            fill: 0,
            sum: vec![0.0; fft_size / 2 + 1],
            segments: 0,
            norm: 1.0 / (fft_size as f64 * w2),
        }
    }

    /// Adds a block of planar audio (one slice per channel, equal lengths, any length).
    pub fn push(&mut self, planar: &[&[f64]]) {
        assert_eq!(planar.len(), self.buffers.len(), "wrong channel count");
        let len = planar[0].len();
        let mut off = 0;
        while off < len {
            let take = (len - off).min(self.n - self.fill);
            for (buf, x) in self.buffers.iter_mut().zip(planar) {
                buf[self.fill..self.fill + take].copy_from_slice(&x[off..off + take]);
            }
            self.fill += take;
            off += take;
            if self.fill == self.n {
                self.segment();
                for buf in &mut self.buffers {
                    buf.copy_within(self.hop.., 0);
                }
                self.fill = self.n - self.hop;
            }
        }
    }

    /// Transforms the full segment of every channel and adds its power.
    fn segment(&mut self) {
        let last = self.n / 2;
        for c in 0..self.buffers.len() {
            for ((i, &x), &w) in self
                .input
                .iter_mut()
                .zip(&self.buffers[c])
                .zip(&self.window)
            {
                *i = x * w;
            }
            self.fft
                .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
                .expect("buffers made by the planner have the right sizes");
            for (k, (s, z)) in self.sum.iter_mut().zip(&self.output).enumerate() {
                let one_sided = if k == 0 || k == last { 1.0 } else { 2.0 };
                *s += one_sided * z.norm_sqr() * self.norm;
            }
        }
        self.segments += 1;
    }

    /// The averaged spectrum. A programme shorter than one segment is zero-padded to one
    /// (its levels then read low by the padding: 10·log10(length / FFT size) dB).
    pub fn finish(mut self) -> Spectrum {
        if self.segments == 0 && self.fill > 0 {
            for buf in &mut self.buffers {
                buf[self.fill..].fill(0.0);
            }
            self.segment();
        }
        let div = (self.segments.max(1) * self.buffers.len() as u64) as f64;
        Spectrum {
            sample_rate: self.sample_rate,
            fft_size: self.n,
            segments: self.segments,
            power: self.sum.iter().map(|s| s / div).collect(),
        }
    }
}

/// An averaged power spectrum: mean-square power per FFT bin, averaged over segments and
/// channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// Sample rate of the programme, Hz.
    pub sample_rate: f64,
    /// Segment length.
    pub fft_size: usize,
    /// Segments averaged.
    pub segments: u64,
    /// Mean-square power of bins `0..=fft_size/2`.
    pub power: Vec<f64>,
}

impl Spectrum {
    /// Width of one bin, Hz.
    pub fn bin_hz(&self) -> f64 {
        self.sample_rate / self.fft_size as f64
    }

    /// Upper edge of the spectrum (Nyquist), Hz.
    pub fn nyquist_hz(&self) -> f64 {
        self.sample_rate / 2.0
    }

    /// Mean-square power between `lo_hz` and `hi_hz`, each bin spreading its power evenly
    /// over its width (bin `k` covers `(k ± 0.5) · bin_hz`).
    pub fn band_power(&self, lo_hz: f64, hi_hz: f64) -> f64 {
        let df = self.bin_hz();
        let (lo, hi) = (lo_hz.max(0.0) / df, hi_hz.min(self.nyquist_hz()) / df);
        if hi <= lo {
            return 0.0;
        }
        let first = libm::floor(lo + 0.5).max(0.0) as usize;
        let last = (libm::floor(hi + 0.5) as usize).min(self.power.len() - 1);
        (first..=last)
            .map(|k| {
                let (a, b) = (k as f64 - 0.5, k as f64 + 0.5);
                let overlap = (b.min(hi) - a.max(lo)).max(0.0);
                self.power[k] * overlap
            })
            .sum()
    }

    /// Level of the band `bandwidth_oct` octaves wide centred (geometrically) on `f_hz`, dBFS
    /// (RMS convention; `-inf` for silence).
    pub fn band_level_db(&self, f_hz: f64, bandwidth_oct: f64) -> f64 {
        let half = libm::exp2(bandwidth_oct / 2.0);
        power_to_db(self.band_power(f_hz / half, f_hz * half))
    }

    /// Band levels on a logarithmic grid from `lo_hz` to `hi_hz` (capped at Nyquist),
    /// `points_per_octave` points an octave, each band `bandwidth_oct` octaves wide:
    /// `(frequency_hz, level_db)` pairs for a plot.
    pub fn smoothed(
        &self,
        lo_hz: f64,
        hi_hz: f64,
        points_per_octave: usize,
        bandwidth_oct: f64,
    ) -> Vec<(f64, f64)> {
        log_grid(lo_hz, hi_hz.min(self.nyquist_hz()), points_per_octave)
            .into_iter()
            .map(|f| (f, self.band_level_db(f, bandwidth_oct)))
            .collect()
    }
}

/// Frequencies from `lo_hz` to at most `hi_hz`, `points_per_octave` an octave.
pub fn log_grid(lo_hz: f64, hi_hz: f64, points_per_octave: usize) -> Vec<f64> {
    let step = 1.0 / points_per_octave.max(1) as f64;
    let mut out = Vec::new();
    let mut i = 0.0;
    loop {
        let f = lo_hz * libm::exp2(i * step);
        if f > hi_hz * (1.0 + 1e-9) {
            break;
        }
        out.push(f);
        i += 1.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(fs: f64, f: f64, amp: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| amp * (2.0 * std::f64::consts::PI * f * i as f64 / fs).sin())
            .collect()
    }

    #[test]
    fn bins_add_up_to_the_mean_square() {
        let x = sine(48_000.0, 997.0, 0.5, 48_000 * 2);
        let mut w = WelchAnalyzer::new(48_000.0, 1, 4096);
        for block in x.chunks(1000) {
            w.push(&[block]);
        }
        let s = w.finish();
        let total: f64 = s.power.iter().sum();
        assert!((total - 0.125).abs() < 1e-3, "{total}");
        // The band around the tone holds it all: −9.03 dBFS (RMS of a −6.02 dBFS sine).
        let l = s.band_level_db(997.0, 1.0 / 3.0);
        assert!((l - (-9.031)).abs() < 0.02, "{l}");
        assert!(s.band_level_db(4000.0, 1.0 / 3.0) < -100.0);
    }

    #[test]
    fn band_levels_do_not_depend_on_fft_size_or_rate() {
        // White noise at the same level, two rates and two sizes: same band levels.
        let mut levels = Vec::new();
        for (fs, n) in [(44_100.0, 8192), (96_000.0, 2048)] {
            let mut r = 0x1234_5678_9abc_def0u64;
            let x: Vec<f64> = (0..(fs as usize * 4))
                .map(|_| {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
                .collect();
            let mut w = WelchAnalyzer::new(fs, 1, n);
            w.push(&[&x]);
            let s = w.finish();
            // Same noise density per Hz: scale the 96 kHz level to 44.1 kHz's bandwidth.
            let dens = 10.0 * (fs / 44_100.0_f64).log10();
            levels.push(s.band_level_db(1000.0, 1.0) + dens);
        }
        assert!((levels[0] - levels[1]).abs() < 0.3, "{levels:?}");
    }

    #[test]
    fn short_programmes_are_padded() {
        let x = sine(48_000.0, 1000.0, 1.0, 1000);
        let mut w = WelchAnalyzer::new(48_000.0, 1, 8192);
        w.push(&[&x]);
        let s = w.finish();
        assert_eq!(s.segments, 1);
        assert!(s.power.iter().sum::<f64>() > 0.0);
    }
}
