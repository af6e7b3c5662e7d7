//! Band powers of one or more time-aligned signals over a selection, mid and side apart, with
//! every cross term: for signals `k` and `j` and band `b`, `C[k][j][b] = Σ Re(X_k · conj X_j)`
//! over the band's bins and the chosen frames (Hann window, half overlap), divided by the
//! frames used. For one signal it is its band power; for the stems of a mix, the power of any
//! weighted sum `Σ a_k x_k` in band `b` is exactly `Σ_k Σ_j a_k a_j C[k][j][b]`, which is
//! what the per-stem fit needs.

use super::grid::Grid;
use super::select::Selection;
use super::MatchError;
use crate::io::decode::StemStream;
use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

/// Cross-band powers of `n` signals, mid and side.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossBands {
    /// Signals.
    pub n: usize,
    /// `mid[pair(k, j)][band]`.
    pub mid: Vec<Vec<f64>>,
    /// `side[pair(k, j)][band]`.
    pub side: Vec<Vec<f64>>,
    /// FFT frames averaged.
    pub frames: usize,
}

impl CrossBands {
    /// Index of the pair `(k, j)` (either order).
    pub fn pair(&self, k: usize, j: usize) -> usize {
        let (a, b) = if k <= j { (k, j) } else { (j, k) };
        a * self.n - a * (a + 1) / 2 + b
    }

    /// Power in band `b` of `Σ a_k x_k` (mid when `side` is false).
    pub fn power(&self, a: &[f64], b: usize, side: bool) -> f64 {
        let c = if side { &self.side } else { &self.mid };
        let mut p = 0.0;
        for k in 0..self.n {
            p += a[k] * a[k] * c[self.pair(k, k)][b];
            for j in k + 1..self.n {
                p += 2.0 * a[k] * a[j] * c[self.pair(k, j)][b];
            }
        }
        p
    }

    /// Band powers of the sum of all signals (every gain 1), mid or side.
    pub fn total(&self, side: bool) -> Vec<f64> {
        let ones = vec![1.0; self.n];
        let bands = self.mid.first().map_or(0, Vec::len);
        (0..bands).map(|b| self.power(&ones, b, side)).collect()
    }
}

/// The FFT size for `rate`: about 0.68 s (32768 at 48 kHz), so a sixth-octave band at 35 Hz
/// spans a few bins.
pub fn fft_size(rate: u32) -> usize {
    let n = (f64::from(rate) * 0.68).log2().round() as u32;
    1usize << n.clamp(12, 17)
}

/// Reads `streams` (stereo, time-aligned, `frames` long) together and measures their cross
/// band powers on `grid` over the frames whose centre lies in `selection`.
pub fn measure(
    streams: &mut [StemStream],
    frames: u64,
    rate: u32,
    selection: &Selection,
    grid: &Grid,
) -> Result<CrossBands, MatchError> {
    let mut out = measure_many(streams, frames, rate, &[selection], &[grid])?;
    Ok(out.swap_remove(0).swap_remove(0))
}

/// [`measure`] over several selections and grids in one read of `streams`: `[selection][grid]`.
/// A frame in several selections is transformed once.
pub fn measure_many(
    streams: &mut [StemStream],
    frames: u64,
    rate: u32,
    selections: &[&Selection],
    grids: &[&Grid],
) -> Result<Vec<Vec<CrossBands>>, MatchError> {
    let n = streams.len();
    let size = fft_size(rate);
    let bins: Vec<Vec<Option<usize>>> = grids
        .iter()
        .map(|g| g.bin_bands(size / 2 + 1, f64::from(rate) / size as f64))
        .collect();
    let pairs = n * (n + 1) / 2;
    let empty = |g: &Grid| CrossBands {
        n,
        mid: vec![vec![0.0; g.len()]; pairs],
        side: vec![vec![0.0; g.len()]; pairs],
        frames: 0,
    };
    let mut out: Vec<Vec<CrossBands>> = selections
        .iter()
        .map(|_| grids.iter().map(|g| empty(g)).collect())
        .collect();
    let inside = |centre: u64| selections.iter().map(move |s| s.contains(centre, rate));
    for_each_frame(
        streams,
        frames,
        rate,
        |centre| inside(centre).any(|x| x),
        |centre, spectra| {
            for (o, _) in out.iter_mut().zip(inside(centre)).filter(|(_, x)| *x) {
                for (c, b) in o.iter_mut().zip(&bins) {
                    accumulate(c, spectra, b);
                    c.frames += 1;
                }
            }
        },
    )?;
    for c in out.iter_mut().flatten() {
        let norm = 1.0 / c.frames.max(1) as f64;
        for v in c.mid.iter_mut().chain(c.side.iter_mut()).flatten() {
            *v *= norm;
        }
    }
    Ok(out)
}

/// Mid and side spectra of one frame, per signal: `[signal][0 mid, 1 side][bin]`.
pub type FrameSpectra = [[Vec<Complex<f64>>; 2]];

/// Walks `streams` (stereo, time-aligned, `frames` long) in Hann-windowed frames of
/// [`fft_size`] with half overlap; for each frame whose centre (a frame index) `wanted`
/// accepts, calls `visit` with that centre and the signals' mid and side spectra.
pub fn for_each_frame(
    streams: &mut [StemStream],
    frames: u64,
    rate: u32,
    wanted: impl Fn(u64) -> bool,
    mut visit: impl FnMut(u64, &FrameSpectra),
) -> Result<(), MatchError> {
    let n = streams.len();
    let size = fft_size(rate);
    let hop = size / 2;
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(size);
    let window: Vec<f64> = (0..size)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / size as f64).cos())
        .collect();
    let bins = size / 2 + 1;
    // A sliding buffer of `size` frames per signal and channel.
    let mut buf = vec![[vec![0.0; size], vec![0.0; size]]; n];
    let mut spectra = vec![
        [
            vec![Complex::default(); bins],
            vec![Complex::default(); bins]
        ];
        n
    ];
    let mut input = fft.make_input_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut start: u64 = 0;
    let mut filled = 0usize;
    while start < frames {
        // Top up each buffer to `size` frames (zeros past the end).
        let need = size - filled;
        for (s, b) in streams.iter_mut().zip(&mut buf) {
            let [l, r] = b;
            s.read_block(&mut [&mut l[filled..], &mut r[filled..]], need)?;
        }
        let centre = start + size as u64 / 2;
        if centre < frames && wanted(centre) {
            for (b, sp) in buf.iter().zip(&mut spectra) {
                for (ch, sign) in [(0usize, 1.0f64), (1, -1.0)] {
                    for i in 0..size {
                        input[i] = 0.5 * (b[0][i] + sign * b[1][i]) * window[i];
                    }
                    fft.process_with_scratch(&mut input, &mut sp[ch], &mut scratch)
                        .map_err(|e| MatchError::Internal(e.to_string()))?;
                }
            }
            visit(centre, &spectra);
        }
        for b in &mut buf {
            for ch in b.iter_mut() {
                ch.copy_within(hop.., 0);
            }
        }
        filled = size - hop;
        start += hop as u64;
    }
    Ok(())
}

/// Adds one frame's cross powers per band.
fn accumulate(out: &mut CrossBands, spectra: &[[Vec<Complex<f64>>; 2]], bands: &[Option<usize>]) {
    let n = out.n;
    for k in 0..n {
        for j in k..n {
            let p = out.pair(k, j);
            for (side, dst) in [(0usize, &mut out.mid[p]), (1, &mut out.side[p])] {
                let (xk, xj) = (&spectra[k][side], &spectra[j][side]);
                for (i, band) in bands.iter().enumerate() {
                    if let Some(b) = band {
                        dst[*b] += xk[i].re * xj[i].re + xk[i].im * xj[i].im;
                    }
                }
            }
        }
    }
}
