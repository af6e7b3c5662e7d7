//! Stem offsets: a stem moved on the song's timeline by any number of samples, fractional,
//! earlier or later (`s:stem(name, path, { offset_samples = -37.25 })`).
//!
//! This module owns the arithmetic of the move; [`crate::io::decode::StemStream`] applies it to
//! what it reads. An offset `d = D + f` (`D` whole samples, `0 ≤ f < 1`) gives the output
//! `y[n] = x[n − d]`: positive offsets move the stem later, negative ones earlier.
//!
//! - The whole part is a read position: the stream starts with `D` samples of silence (later)
//!   or drops the first `−D` samples of the file (earlier).
//! - The fractional part is a windowed-sinc fractional delay ([`FRACTION_TAPS`] taps, Kaiser
//!   window, taps summed to exactly 1 so DC passes unchanged). The filter needs `L − 1` samples
//!   ahead of the output; that latency is taken off the whole part, so the stem lands exactly `d`
//!   samples from where it was and the render's alignment (and its latency compensation, which
//!   sees nothing of this) stays right.
//!
//! An offset that is a whole number of samples is an exact move: no filter runs, the samples are
//! bit-identical. Everything is allocated when the offset is made; reading allocates nothing.

/// Taps of the fractional-delay filter (`2L`).
pub const FRACTION_TAPS: usize = 64;
const HALF: usize = FRACTION_TAPS / 2;
/// Kaiser window β: ≈ −90 dB side lobes, flat to about 0.9 of Nyquist at 64 taps.
const KAISER_BETA: f64 = 9.0;
/// Frames filtered per step (the scratch buffer's length).
const CHUNK: usize = 1024;

/// The largest offset accepted, in samples (about 3 minutes at 48 kHz): larger is a mistake.
pub const MAX_OFFSET_SAMPLES: f64 = 1.0e7;

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-17 * sum {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

/// The causal taps delaying by `L − 1 + frac` samples (`0 < frac < 1`), summing to 1.
pub fn fraction_taps(frac: f64) -> Vec<f64> {
    let i0b = bessel_i0(KAISER_BETA);
    let mut taps: Vec<f64> = (0..FRACTION_TAPS)
        .map(|j| {
            // Tap j weighs x[n − j]; its distance from the ideal delay L − 1 + frac.
            let t = j as f64 - (HALF as f64 - 1.0) - frac;
            let sinc = if t.abs() < 1e-12 {
                1.0
            } else {
                libm::sin(std::f64::consts::PI * t) / (std::f64::consts::PI * t)
            };
            let r = t / HALF as f64;
            let w = if r.abs() >= 1.0 {
                0.0
            } else {
                bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / i0b
            };
            sinc * w
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

/// How an offset splits into whole-sample moves and a filter, for a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffsetPlan {
    /// Silent frames emitted before the source's first frame.
    pub lead: u64,
    /// Frames of (filtered) source dropped at the start.
    pub skip: u64,
    /// The fractional part, when it is not zero.
    pub fraction: Option<f64>,
}

impl OffsetPlan {
    /// The plan of an offset of `samples` (finite).
    pub fn new(samples: f64) -> OffsetPlan {
        let whole = samples.floor();
        let frac = samples - whole;
        let (shift, fraction) = if frac == 0.0 {
            (whole as i64, None)
        } else {
            // The causal filter already delays by HALF − 1: take it off the whole move.
            (whole as i64 - (HALF as i64 - 1), Some(frac))
        };
        OffsetPlan {
            lead: shift.max(0) as u64,
            skip: (-shift).max(0) as u64,
            fraction,
        }
    }
}

/// The running state of an offset on a stream of `channels` channels.
pub struct Offset {
    plan: OffsetPlan,
    lead_left: u64,
    skip_left: u64,
    taps: Vec<f64>,
    /// Per channel: the last `FRACTION_TAPS` source samples, twice over (a mirrored ring, so the
    /// filter reads one contiguous slice).
    history: Vec<Vec<f64>>,
    pos: usize,
    scratch: Vec<Vec<f64>>,
}

impl Offset {
    /// An offset of `samples` for `channels` channels, or `None` for no move at all.
    pub fn new(samples: f64, channels: usize) -> Option<Offset> {
        if samples == 0.0 {
            return None;
        }
        let plan = OffsetPlan::new(samples);
        Some(Offset {
            plan,
            lead_left: plan.lead,
            skip_left: plan.skip,
            taps: plan.fraction.map(fraction_taps).unwrap_or_default(),
            history: vec![vec![0.0; 2 * FRACTION_TAPS]; channels],
            pos: 0,
            scratch: vec![vec![0.0; CHUNK]; channels],
        })
    }

    /// The plan this offset follows.
    pub fn plan(&self) -> OffsetPlan {
        self.plan
    }

    /// Fills `frames` frames of `out` from `source` (which fills exactly the frames asked for,
    /// zeros past its end), moved by the offset. Allocates nothing.
    pub fn read<E>(
        &mut self,
        out: &mut [&mut [f64]],
        frames: usize,
        mut source: impl FnMut(&mut [&mut [f64]], usize) -> Result<(), E>,
    ) -> Result<(), E> {
        while self.skip_left > 0 {
            let n = CHUNK.min(usize::try_from(self.skip_left).unwrap_or(CHUNK));
            self.pull(n, &mut source)?;
            self.skip_left -= n as u64;
        }
        let mut at = 0;
        if self.lead_left > 0 {
            let n = frames.min(usize::try_from(self.lead_left).unwrap_or(usize::MAX));
            for plane in out.iter_mut() {
                plane[..n].fill(0.0);
            }
            self.lead_left -= n as u64;
            at = n;
        }
        while at < frames {
            let n = CHUNK.min(frames - at);
            self.pull(n, &mut source)?;
            for (plane, s) in out.iter_mut().zip(&self.scratch) {
                plane[at..at + n].copy_from_slice(&s[..n]);
            }
            at += n;
        }
        Ok(())
    }

    /// Reads `n ≤ CHUNK` source frames into the scratch buffer, filtered when fractional.
    fn pull<E>(
        &mut self,
        n: usize,
        source: &mut impl FnMut(&mut [&mut [f64]], usize) -> Result<(), E>,
    ) -> Result<(), E> {
        {
            let channels = self.scratch.len();
            let mut views: [&mut [f64]; 2] = Default::default();
            for (v, s) in views.iter_mut().zip(self.scratch.iter_mut()) {
                *v = &mut s[..n];
            }
            source(&mut views[..channels], n)?;
        }
        if self.taps.is_empty() {
            return Ok(());
        }
        let start_pos = self.pos;
        for (hist, s) in self.history.iter_mut().zip(self.scratch.iter_mut()) {
            let mut pos = start_pos;
            for x in s[..n].iter_mut() {
                // Newest sample at `pos` and `pos + TAPS`; the window [pos, pos + TAPS) holds the
                // last TAPS samples, newest first when read backwards from pos + TAPS.
                pos = if pos == 0 { FRACTION_TAPS - 1 } else { pos - 1 };
                hist[pos] = *x;
                hist[pos + FRACTION_TAPS] = *x;
                let window = &hist[pos..pos + FRACTION_TAPS];
                *x = window.iter().zip(&self.taps).map(|(h, t)| h * t).sum();
            }
            self.pos = pos;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: f64, x: &[f64], frames: usize) -> Vec<f64> {
        let mut off = Offset::new(samples, 1).unwrap();
        let mut read = 0usize;
        let mut out = vec![0.0; frames];
        // Read in odd-sized blocks to exercise the chunking.
        let mut at = 0;
        while at < frames {
            let n = 333.min(frames - at);
            let mut view = [&mut out[at..at + n]];
            off.read(&mut view, n, |buf: &mut [&mut [f64]], n| {
                for (k, v) in buf[0][..n].iter_mut().enumerate() {
                    *v = x.get(read + k).copied().unwrap_or(0.0);
                }
                read += n;
                Ok::<(), ()>(())
            })
            .unwrap();
            at += n;
        }
        out
    }

    #[test]
    fn whole_offsets_move_exactly() {
        let x: Vec<f64> = (0..5000)
            .map(|k| ((k * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let later = run(37.0, &x, 5000);
        assert!(later[..37].iter().all(|v| *v == 0.0));
        assert_eq!(&later[37..], &x[..5000 - 37]);
        let earlier = run(-480.0, &x, 5000);
        assert_eq!(&earlier[..5000 - 480], &x[480..]);
        assert!(earlier[5000 - 480..].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn fractional_offsets_delay_a_sine_by_the_fraction() {
        let f = 0.05; // cycles per sample
        let x: Vec<f64> = (0..8000)
            .map(|k| (2.0 * std::f64::consts::PI * f * k as f64).sin())
            .collect();
        for d in [-37.25, 0.5, 2.75, 480.3] {
            let y = run(d, &x, 8000);
            let mut worst: f64 = 0.0;
            for (k, v) in y.iter().enumerate().skip(1000).take(5000) {
                let want = (2.0 * std::f64::consts::PI * f * (k as f64 - d)).sin();
                worst = worst.max((v - want).abs());
            }
            assert!(worst < 1e-4, "offset {d}: error {worst}");
        }
    }

    #[test]
    fn taps_pass_dc_unchanged() {
        for frac in [0.1, 0.5, 0.9] {
            let s: f64 = fraction_taps(frac).iter().sum();
            assert!((s - 1.0).abs() < 1e-15);
        }
    }
}
