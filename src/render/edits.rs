//! Song edits: start and end trims and fades, applied to an output before its deliverables.
//!
//! Positions are in song frames (sample 0 = the first sample of the stems). Frames outside
//! `start..end` are dropped; gains of the fades are applied in place on a scratch copy.

use crate::dsp::{AudioBuffer, AudioRef};

pub use crate::automation::FadeShape;
use crate::session::{EditsDecl, FadeDecl};

/// A fade of `frames` frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fade {
    /// Length in frames.
    pub frames: u64,
    /// Curve.
    pub shape: FadeShape,
}

/// Trims and fades of one song, in frames.
#[derive(Debug, Clone, PartialEq)]
pub struct SongEdits {
    /// First song frame kept.
    pub start: u64,
    /// First song frame no longer kept.
    pub end: u64,
    /// Fade in from `start`.
    pub fade_in: Option<Fade>,
    /// Fade out ending at `end`.
    pub fade_out: Option<Fade>,
}

impl SongEdits {
    /// No edit: the frames `0..end` as they are.
    pub fn none(end: u64) -> Self {
        Self {
            start: 0,
            end,
            fade_in: None,
            fade_out: None,
        }
    }

    /// Frames kept.
    pub fn length(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// The gain at song frame `pos` (0 outside the kept range).
    pub fn gain_at(&self, pos: u64) -> f64 {
        if pos < self.start || pos >= self.end {
            return 0.0;
        }
        let mut g = 1.0;
        if let Some(f) = self.fade_in.filter(|f| f.frames > 0) {
            let k = pos - self.start;
            if k < f.frames {
                g *= f.shape.gain(k as f64 / f.frames as f64);
            }
        }
        if let Some(f) = self.fade_out.filter(|f| f.frames > 0) {
            let left = self.end - pos; // 1 on the last frame
            if left <= f.frames {
                g *= f.shape.gain((left - 1) as f64 / f.frames as f64);
            }
        }
        g
    }

    fn fading(&self, from: u64, to: u64) -> bool {
        let fin = self.fade_in.map_or(0, |f| f.frames);
        let fout = self.fade_out.map_or(0, |f| f.frames);
        from < self.start + fin || to > self.end.saturating_sub(fout)
    }

    /// Applies the edits to `block`, whose first frame is song frame `pos`: returns the part
    /// kept, faded where needed (in `scratch`, which must hold a block).
    pub fn apply<'a>(
        &self,
        pos: u64,
        block: AudioRef<'a>,
        scratch: &'a mut AudioBuffer,
    ) -> Option<AudioRef<'a>> {
        let n = block.frames() as u64;
        let from = pos.max(self.start);
        let to = (pos + n).min(self.end);
        if to <= from {
            return None;
        }
        let (a, b) = ((from - pos) as usize, (to - pos) as usize);
        let kept = block.slice(a, b);
        if !self.fading(from, to) {
            return Some(kept);
        }
        scratch.set_channels(kept.channels());
        for c in 0..kept.channels() {
            let dst = scratch.channel_mut(c, b - a);
            for (k, (d, s)) in dst.iter_mut().zip(kept.channel(c)).enumerate() {
                *d = s * self.gain_at(from + k as u64);
            }
        }
        Some(scratch.view(b - a))
    }
}

/// The render resolves the edits a recipe declares (seconds) into frames; the declaration stays
/// plain data in [`crate::session`].
impl EditsDecl {
    /// The edits in frames for a song of `length` frames (including its tail) at `rate`.
    pub fn resolve(&self, length: u64, rate: f64) -> SongEdits {
        let frames = |s: f64| crate::units::seconds_to_samples(s, rate).max(0) as u64;
        let start = self.start_s.map_or(0, frames).min(length);
        let end = self.finish_s.map_or(length, frames).clamp(start, length);
        let fade = |f: &Option<FadeDecl>| {
            f.as_ref().map(|f| Fade {
                frames: frames(f.seconds),
                shape: f.shape,
            })
        };
        SongEdits {
            start,
            end,
            fade_in: fade(&self.fade_in),
            fade_out: fade(&self.fade_out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fades_start_silent_and_end_silent() {
        let e = SongEdits {
            start: 100,
            end: 1100,
            fade_in: Some(Fade {
                frames: 100,
                shape: FadeShape::Sine,
            }),
            fade_out: Some(Fade {
                frames: 200,
                shape: FadeShape::Linear,
            }),
        };
        assert_eq!(e.gain_at(99), 0.0);
        assert_eq!(e.gain_at(100), 0.0);
        assert_eq!(e.gain_at(200), 1.0);
        assert_eq!(e.gain_at(1099), 0.0);
        assert!((e.gain_at(999) - 0.5).abs() < 1e-12);
        assert_eq!(e.gain_at(1100), 0.0);
        for s in [
            FadeShape::Linear,
            FadeShape::Sine,
            FadeShape::Exponential,
            FadeShape::SCurve,
        ] {
            assert_eq!(s.gain(0.0), 0.0);
            assert!((s.gain(1.0) - 1.0).abs() < 1e-12);
        }
    }
}
