//! Up and down conversion by 2, 4 or 8 for nonlinear processing (saturation): a cascade of
//! half-band stages with an integer round-trip latency, one sample at a time ([`Oversampler`])
//! or a chunk at a time ([`BlockOversampler`]), the same values bit for bit.

use super::design::HalfbandDesign;
use super::halfband::{BlockDown2, BlockUp2, Stage};

/// Up/down conversion by 2, 4 or 8 through a cascade of half-band stages, with an integer
/// round-trip latency at the base rate.
#[derive(Debug, Clone)]
pub struct Oversampler {
    factor: usize,
    stages: Vec<Stage>,
    pad: Vec<f64>,
    pad_pos: usize,
    latency: usize,
}

impl Oversampler {
    /// Stopband attenuation of the first stage (next to the base rate), dB.
    pub const ATTEN_DB: f64 = 96.0;
    /// Stopband attenuation of the later stages, dB: what they reject lies far above the base
    /// band (images of it, or harmonics already small where they would fold back).
    pub const LATER_ATTEN_DB: f64 = 80.0;

    /// A converter by `factor` (2, 4 or 8). Allocates.
    ///
    /// # Panics
    /// If `factor` is not 2, 4 or 8 (construction-time contract).
    pub fn new(factor: usize) -> Self {
        assert!(
            matches!(factor, 2 | 4 | 8),
            "oversampling factor must be 2, 4 or 8"
        );
        let n = factor.trailing_zeros() as usize;
        let mut stages = Vec::with_capacity(n);
        let mut total_top = 0; // round-trip latency in top-rate samples
        for s in 1..=n {
            // Stage s runs between 2^(s−1)·fs and 2^s·fs. Stage 1 keeps 0–0.45 fs and rejects
            // from 0.55 fs; later stages keep 0–0.5 fs and reject from 2^(s−1)·fs − 0.5 fs.
            let scale = (1usize << s) as f64;
            let width = if s == 1 {
                0.1 / scale
            } else {
                (scale / 2.0 - 1.0) / scale
            };
            let atten = if s == 1 {
                Self::ATTEN_DB
            } else {
                Self::LATER_ATTEN_DB
            };
            let d = HalfbandDesign::new(width, atten);
            total_top += 2 * d.latency_high() * (factor >> s);
            stages.push(Stage::new(d));
        }
        let pad = (factor - total_top % factor) % factor;
        let latency = (total_top + pad) / factor;
        Self {
            factor,
            stages,
            pad: vec![0.0; pad.max(1)],
            pad_pos: 0,
            latency,
        }
    }

    /// The factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Latency of [`Self::up`] followed by [`Self::down`], in base-rate samples.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Clears all histories.
    pub fn reset(&mut self) {
        self.stages.iter_mut().for_each(Stage::reset);
        self.pad.fill(0.0);
        self.pad_pos = 0;
    }

    /// One base-rate sample → `factor` samples at the high rate, written to `out[..factor]`.
    #[inline]
    pub fn up(&mut self, x: f64, out: &mut [f64]) {
        match self.stages.as_mut_slice() {
            [a] => out[..2].copy_from_slice(&a.up(x)),
            [a, b] => {
                let [p, q] = a.up(x);
                out[..2].copy_from_slice(&b.up(p));
                out[2..4].copy_from_slice(&b.up(q));
            }
            [a, b, c] => {
                let [p, q] = a.up(x);
                let [p0, p1] = b.up(p);
                let [q0, q1] = b.up(q);
                out[..2].copy_from_slice(&c.up(p0));
                out[2..4].copy_from_slice(&c.up(p1));
                out[4..6].copy_from_slice(&c.up(q0));
                out[6..8].copy_from_slice(&c.up(q1));
            }
            _ => {}
        }
    }

    /// `factor` high-rate samples (`z[..factor]`, in time order) → one base-rate sample.
    /// Also applies the padding delay that makes the round trip an integer.
    #[inline]
    pub fn down(&mut self, z: &mut [f64]) -> f64 {
        let len = self.pad.len();
        if self.latency * self.factor != self.raw_round_trip() {
            for v in z[..self.factor].iter_mut() {
                std::mem::swap(&mut self.pad[self.pad_pos], v);
                self.pad_pos = if self.pad_pos + 1 == len {
                    0
                } else {
                    self.pad_pos + 1
                };
            }
        }
        match self.stages.as_mut_slice() {
            [a] => a.down([z[0], z[1]]),
            [a, b] => {
                let p = b.down([z[0], z[1]]);
                let q = b.down([z[2], z[3]]);
                a.down([p, q])
            }
            [a, b, c] => {
                let p0 = c.down([z[0], z[1]]);
                let p1 = c.down([z[2], z[3]]);
                let q0 = c.down([z[4], z[5]]);
                let q1 = c.down([z[6], z[7]]);
                let p = b.down([p0, p1]);
                let q = b.down([q0, q1]);
                a.down([p, q])
            }
            _ => 0.0,
        }
    }

    fn raw_round_trip(&self) -> usize {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| 2 * s.d.latency_high() * (self.factor >> (i + 1)))
            .sum()
    }
}

/// Base-rate samples per chunk of [`BlockOversampler`].
pub const OS_CHUNK: usize = 256;

/// [`Oversampler`] a chunk at a time: the same values, bit for bit (a unit test compares), with
/// the stages' filters computed as vector loops over whole chunks.
#[derive(Debug, Clone)]
pub struct BlockOversampler {
    factor: usize,
    up: Vec<BlockUp2>,
    down: Vec<BlockDown2>,
    /// Top-rate pad before decimation: its last `pad` values, then the chunk's.
    pad: usize,
    padded: Vec<f64>,
    work: [Vec<f64>; 2],
    dots: Vec<f64>,
    latency: usize,
}

impl BlockOversampler {
    /// A converter by `factor` (2, 4 or 8), designed as [`Oversampler::new`]. Allocates.
    pub fn new(factor: usize) -> Self {
        let os = Oversampler::new(factor);
        let pad = os.latency * factor - os.raw_round_trip();
        crate::dsp::simd::avx2();
        Self {
            factor,
            up: os
                .stages
                .iter()
                .enumerate()
                .map(|(i, st)| BlockUp2::with(st.coefs(), st.d.m - 1, OS_CHUNK << i))
                .collect(),
            down: os
                .stages
                .iter()
                .enumerate()
                .map(|(i, st)| BlockDown2::new(st, OS_CHUNK << i))
                .collect(),
            pad,
            padded: vec![0.0; pad + factor * OS_CHUNK],
            work: [vec![0.0; factor * OS_CHUNK], vec![0.0; factor * OS_CHUNK]],
            dots: vec![0.0; factor / 2 * OS_CHUNK],
            latency: os.latency,
        }
    }

    /// The factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Latency of [`Self::up`] followed by [`Self::down`], in base-rate samples.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Clears all histories.
    pub fn reset(&mut self) {
        self.up.iter_mut().for_each(BlockUp2::reset);
        self.down.iter_mut().for_each(BlockDown2::reset);
        self.padded.fill(0.0);
    }

    /// Up to [`OS_CHUNK`] base-rate samples → `factor` times as many at the high rate, in `out`.
    pub fn up(&mut self, x: &[f64], out: &mut [f64]) {
        let n = x.len();
        assert!(n <= OS_CHUNK && out.len() >= self.factor * n);
        let [w0, w1] = &mut self.work;
        let stages = self.up.len();
        let mut len = n;
        for (i, st) in self.up.iter_mut().enumerate() {
            let last = i + 1 == stages;
            let (src, dst): (&[f64], &mut [f64]) = match (i, i % 2) {
                (0, _) => (x, &mut w0[..]),
                (_, 1) => (&w0[..len], &mut w1[..]),
                _ => (&w1[..len], &mut w0[..]),
            };
            if last {
                st.run(src, &mut out[..2 * len], &mut self.dots);
            } else {
                st.run(src, dst, &mut self.dots);
            }
            len *= 2;
        }
    }

    /// `factor · n` high-rate samples (in time order) → `n` base-rate samples in `out`.
    pub fn down(&mut self, z: &[f64], out: &mut [f64]) {
        let n = out.len();
        assert!(n <= OS_CHUNK && z.len() >= self.factor * n);
        let top = self.factor * n;
        let pad = self.pad;
        self.padded[pad..pad + top].copy_from_slice(&z[..top]);
        let [w0, w1] = &mut self.work;
        let stages = self.down.len();
        let mut len = top;
        // From the top stage down: the padded stream, then w0, w1, … alternately.
        for (k, st) in self.down.iter_mut().rev().enumerate() {
            let last = k + 1 == stages;
            let (src, dst): (&[f64], &mut [f64]) = match (k, k % 2) {
                (0, _) => (&self.padded[..len], &mut w0[..]),
                (_, 1) => (&w0[..len], &mut w1[..]),
                _ => (&w1[..len], &mut w0[..]),
            };
            if last {
                st.run(src, &mut out[..len / 2]);
            } else {
                st.run(src, &mut dst[..len / 2]);
            }
            len /= 2;
        }
        self.padded.copy_within(top..top + pad, 0);
    }
}

// Hot reload: the whole contents are handed over in place (see `dsp::state`).
crate::signal_state!(BlockOversampler {
    copy: factor, pad, latency;
    state: up, down, padded, work, dots;
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn block_oversampler_matches_the_per_sample_one() {
        for factor in [2, 4, 8] {
            for portable in [true, false] {
                crate::dsp::simd::force_portable(portable);
                let mut block = BlockOversampler::new(factor);
                let mut reference = Oversampler::new(factor);
                assert_eq!(block.latency(), reference.latency());
                let mut pos = 0usize;
                for len in [1usize, 7, 256, 100, 255, 3] {
                    let x: Vec<f64> = (0..len)
                        .map(|i| (((pos + i) as f64) * 0.123).sin() * 1.7)
                        .collect();
                    pos += len;
                    let mut hi = vec![0.0; factor * len];
                    block.up(&x, &mut hi);
                    let mut want_hi = vec![0.0; factor * len];
                    let mut want = vec![0.0; len];
                    for (i, &v) in x.iter().enumerate() {
                        let mut buf = [0.0; 8];
                        reference.up(v, &mut buf);
                        want_hi[factor * i..factor * (i + 1)].copy_from_slice(&buf[..factor]);
                        // A nonlinearity between, as saturation has.
                        for b in &mut buf[..factor] {
                            *b = (*b * 0.9).sin();
                        }
                        want[i] = reference.down(&mut buf);
                    }
                    assert!(hi
                        .iter()
                        .zip(&want_hi)
                        .all(|(a, b)| a.to_bits() == b.to_bits()));
                    for h in &mut hi {
                        *h = (*h * 0.9).sin();
                    }
                    let mut got = vec![0.0; len];
                    block.down(&hi, &mut got);
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{factor}x portable {portable}: chunk of {len} differs"
                    );
                }
            }
        }
        crate::dsp::simd::force_portable(false);
    }

    #[test]
    fn oversampler_round_trip_is_an_integer_delay() {
        for factor in [2, 4, 8] {
            let mut os = Oversampler::new(factor);
            let lat = os.latency();
            let n = 4000;
            let f = 0.1;
            let x: Vec<f64> = (0..n).map(|i| (2.0 * PI * f * i as f64).sin()).collect();
            let mut buf = [0.0; 8];
            let mut y = Vec::new();
            for &v in &x {
                os.up(v, &mut buf);
                y.push(os.down(&mut buf));
            }
            let err = (1000..n)
                .map(|i| (y[i] - x[i - lat]).abs())
                .fold(0.0, f64::max);
            assert!(err < 5e-4, "factor {factor}: latency {lat} error {err}");
        }
    }

    #[test]
    fn oversampler_rejects_images() {
        // A tone at 0.3 fs upsampled ×8: the image at 0.7 fs (and others) must be ≥ 90 dB down.
        let mut os = Oversampler::new(8);
        let n = 1 << 14;
        let f = 0.3;
        let mut hi = Vec::new();
        let mut buf = [0.0; 8];
        for i in 0..n + 200 {
            os.up((2.0 * PI * f * i as f64).sin(), &mut buf);
            hi.extend_from_slice(&buf);
        }
        let hi = &hi[1600..1600 + 8 * n];
        // DFT at the tone and at the first image (bins at the high rate: f/8 and (1−f)/8).
        let amp = |fh: f64| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, v) in hi.iter().enumerate() {
                let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / hi.len() as f64).cos();
                re += w * v * (2.0 * PI * fh * i as f64).cos();
                im += w * v * (2.0 * PI * fh * i as f64).sin();
            }
            (re * re + im * im).sqrt()
        };
        let tone = amp(f / 8.0);
        let image = amp((1.0 - f) / 8.0);
        assert!(20.0 * (image / tone).log10() < -90.0);
    }
}
