//! [`StemStream`]: a [`Decoder`] followed by sample-rate conversion, mono-to-stereo mapping and
//! padding or trimming to a fixed length, read in exactly-sized blocks.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{DecodeError, Decoder, NonFinite, StemInfo};
use crate::io::offset::{Offset, MAX_OFFSET_SAMPLES};
use crate::io::resample::{ResampleError, StreamResampler};

/// How a stem is to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Sample rate of the output in Hz; a file at another rate is resampled.
    pub target_rate: u32,
    /// Output channels, 1 or 2. A mono file feeds both channels of a stereo target.
    pub target_channels: usize,
    /// Output length in frames at `target_rate`: shorter material is padded with silence, longer
    /// material stops there. `None` delivers the material as long as it is.
    pub length_frames: Option<u64>,
}

/// Something [`StemStream::open`] changed about a stem, for the user to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamWarning {
    /// The file is at another sample rate and is resampled.
    Resampled {
        /// The file.
        path: PathBuf,
        /// The file's rate.
        from_hz: u32,
        /// The rate it is converted to.
        to_hz: u32,
    },
    /// The file is shorter than the length asked for and is padded with silence.
    Padded {
        /// The file.
        path: PathBuf,
        /// Its length in frames at the target rate.
        frames: u64,
        /// The length it is padded to.
        to: u64,
    },
    /// The file is longer than the length asked for; the rest is not used.
    Trimmed {
        /// The file.
        path: PathBuf,
        /// Its length in frames at the target rate.
        frames: u64,
        /// The length it is cut to.
        to: u64,
    },
    /// The file is mono and feeds both channels.
    MonoToStereo {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for StreamWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamWarning::Resampled {
                path,
                from_hz,
                to_hz,
            } => write!(
                f,
                "{} is at {from_hz} Hz and is resampled to {to_hz} Hz",
                path.display()
            ),
            StreamWarning::Padded { path, frames, to } => write!(
                f,
                "{} is {frames} frames long and is padded with silence to {to} frames",
                path.display()
            ),
            StreamWarning::Trimmed { path, frames, to } => write!(
                f,
                "{} is {frames} frames long; only its first {to} frames are used",
                path.display()
            ),
            StreamWarning::MonoToStereo { path } => {
                write!(f, "{} is mono and feeds both channels", path.display())
            }
        }
    }
}

/// What a render reads: a decoder + sample-rate conversion + channel mapping + padding.
pub struct StemStream {
    decoder: Decoder,
    resampler: Option<StreamResampler>,
    target_rate: u32,
    target_channels: usize,
    /// Whether the (mono) decoded channel is copied into the second output channel.
    duplicate_mono: bool,
    /// Where the material is cut off (the asked-for length), if anywhere.
    limit: Option<u64>,
    /// The output length after padding, if known.
    length: Option<u64>,
    /// Material frames delivered so far.
    emitted: u64,
    /// Set once the material is exhausted (or cut off): from then on only silence.
    material_done: bool,
    /// The stem's move on the timeline (`offset_samples`), if any.
    offset: Option<Offset>,
    /// Non-finite samples found (and muted) in the material so far.
    non_finite: NonFinite,
    /// Whether decoded samples may be non-finite (not for integer PCM, whose conversion,
    /// resampling and offsets give finite values only): checked and muted as they are read.
    check_finite: bool,
}

/// A failure while pulling frames through the resampler.
enum Pull {
    Decode(DecodeError),
    Resample(ResampleError),
}

impl From<ResampleError> for Pull {
    fn from(e: ResampleError) -> Self {
        Pull::Resample(e)
    }
}

impl StemStream {
    /// Opens `path` for delivery as `opts` asks, with the notes the user should see.
    /// Every buffer is allocated here.
    pub fn open(
        path: &Path,
        opts: &StreamOptions,
    ) -> Result<(StemStream, Vec<StreamWarning>), DecodeError> {
        check_options(path, opts)?;
        let decoder = Decoder::open(path)?;
        let info = decoder.info().clone();
        let mut warnings = Vec::new();
        let duplicate_mono = map_channels(&info, opts.target_channels)?;
        if duplicate_mono {
            warnings.push(StreamWarning::MonoToStereo {
                path: info.path.clone(),
            });
        }
        let resampler = make_resampler(&info, opts.target_rate)?;
        if resampler.is_some() {
            warnings.push(StreamWarning::Resampled {
                path: info.path.clone(),
                from_hz: info.sample_rate,
                to_hz: opts.target_rate,
            });
        }
        let material = info
            .frames
            .map(|f| StreamResampler::output_len_for(f, info.sample_rate, opts.target_rate));
        if let (Some(frames), Some(to)) = (material, opts.length_frames) {
            let path = info.path.clone();
            if frames < to {
                warnings.push(StreamWarning::Padded { path, frames, to });
            } else if frames > to {
                warnings.push(StreamWarning::Trimmed { path, frames, to });
            }
        }
        let check_finite = !decoder.always_finite();
        let stream = StemStream {
            decoder,
            resampler,
            target_rate: opts.target_rate,
            target_channels: opts.target_channels,
            duplicate_mono,
            limit: opts.length_frames,
            length: opts.length_frames.or(material),
            emitted: 0,
            material_done: false,
            offset: None,
            non_finite: NonFinite::default(),
            check_finite,
        };
        Ok((stream, warnings))
    }

    /// Moves what the stream delivers by `samples` at the target rate (fractional, either
    /// direction: positive is later; see [`crate::io::offset`]). The asked-for length stays the
    /// same: material moved past the end is cut, material moved earlier is read from further
    /// into the file. Allocates here, never while reading.
    pub fn with_offset(mut self, samples: f64) -> Result<StemStream, DecodeError> {
        if !samples.is_finite() || samples.abs() > MAX_OFFSET_SAMPLES {
            return Err(DecodeError::InvalidOptions {
                path: self.decoder.info().path.clone(),
                reason: format!("an offset of {samples} samples is out of range"),
            });
        }
        self.offset = Offset::new(samples, self.target_channels);
        if let Some(off) = &self.offset {
            let plan = off.plan();
            self.limit = self.limit.map(|l| l + plan.skip);
            if self.limit.is_none() {
                self.length = self
                    .length
                    .map(|l| (l + plan.lead).saturating_sub(plan.skip));
            }
        }
        Ok(self)
    }

    /// Non-finite samples (NaN, infinity) found in the material so far: each was delivered
    /// as 0.
    pub fn non_finite(&self) -> NonFinite {
        self.non_finite
    }

    /// What the source file is.
    pub fn info(&self) -> &StemInfo {
        self.decoder.info()
    }

    /// The output length in frames at the target rate, after padding, if known: the asked-for
    /// length, or else the file's length converted to the target rate.
    pub fn length_frames(&self) -> Option<u64> {
        self.length
    }

    /// Moves to output frame `frame` without decoding what lies before it, when the file can
    /// seek ([`Decoder::seek`]: plain PCM, lossless formats) and is not resampled (a resampler's
    /// output depends on the input before the frame). `Ok(false)` when it cannot: the stream
    /// has not moved, and the caller reads forward (or reopens and reads forward) instead.
    pub fn seek(&mut self, frame: u64) -> Result<bool, DecodeError> {
        // A resampled stem, or one moved on the timeline (`offset_samples`, whose filter and
        // read position hold state), is read forward instead.
        if self.resampler.is_some() || self.offset.is_some() {
            return Ok(false);
        }
        let material = self.limit.map_or(frame, |l| frame.min(l));
        let past_end = self.decoder.info().frames.is_some_and(|f| material >= f);
        if !past_end && !self.decoder.seek(material)? {
            return Ok(false);
        }
        self.emitted = material;
        // Past the file's end only padding follows.
        self.material_done = past_end || self.limit.is_some_and(|l| material >= l);
        Ok(true)
    }

    /// Fills exactly `frames` frames of `out` (planar, `target_channels` slices, each at least
    /// `frames` long). Past the end of the material it writes zeros. Allocates nothing: the
    /// WAV path is allocation-free end to end; for other formats symphonia's demuxer allocates
    /// one buffer per packet internally.
    ///
    /// # Panics
    /// If `out` has the wrong number of channels or a slice shorter than `frames`.
    pub fn read_block(&mut self, out: &mut [&mut [f64]], frames: usize) -> Result<(), DecodeError> {
        match self.offset.take() {
            None => self.read_material(out, frames),
            Some(mut off) => {
                let r = off.read(out, frames, |b: &mut [&mut [f64]], n| {
                    self.read_material(b, n)
                });
                self.offset = Some(off);
                r
            }
        }
    }

    /// [`StemStream::read_block`] before the offset.
    fn read_material(&mut self, out: &mut [&mut [f64]], frames: usize) -> Result<(), DecodeError> {
        assert_eq!(
            out.len(),
            self.target_channels,
            "one output slice per channel"
        );
        assert!(
            out.iter().all(|s| s.len() >= frames),
            "output slices shorter than frames"
        );
        let mut filled = 0;
        let first = self.emitted;
        while filled < frames && !self.material_done {
            let mut want = frames - filled;
            if let Some(limit) = self.limit {
                let left = limit.saturating_sub(self.emitted);
                want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            let got = if want == 0 {
                0
            } else {
                self.pull(out, filled, want)?
            };
            if got == 0 {
                self.material_done = true;
            }
            filled += got;
            self.emitted += got as u64;
        }
        let decoded = if self.duplicate_mono { 1 } else { out.len() };
        // Without a resampler the samples are the decoder's: when it checked them as it
        // converted them (stereo float PCM), they are not scanned again.
        let checked = self.resampler.is_none() && self.decoder.take_finite();
        if self.check_finite && !checked {
            self.non_finite.mute(&mut out[..decoded], filled, first);
        }
        if self.duplicate_mono {
            let (first, rest) = out.split_at_mut(1);
            rest[0][..filled].copy_from_slice(&first[0][..filled]);
        }
        for plane in out.iter_mut() {
            plane[filled..frames].fill(0.0);
        }
        Ok(())
    }

    /// Decodes (and resamples) up to `want` material frames into `out[..][at..at + want]`,
    /// writing only the decoded channels; 0 at the end of the material.
    fn pull(
        &mut self,
        out: &mut [&mut [f64]],
        at: usize,
        want: usize,
    ) -> Result<usize, DecodeError> {
        let channels = self.decoder.info().channels;
        let mut slices: [&mut [f64]; 2] = Default::default();
        for (slot, plane) in slices.iter_mut().zip(out.iter_mut()).take(channels) {
            *slot = &mut plane[at..at + want];
        }
        let bufs = &mut slices[..channels];
        let Some(resampler) = &mut self.resampler else {
            return self.decoder.read(bufs, want);
        };
        let decoder = &mut self.decoder;
        resampler
            .read(bufs, want, |b: &mut [&mut [f64]], n| {
                decoder.read(b, n).map_err(Pull::Decode)
            })
            .map_err(|e| match e {
                Pull::Decode(e) => e,
                Pull::Resample(e) => DecodeError::Resample {
                    path: self.decoder.info().path.clone(),
                    from_hz: self.decoder.info().sample_rate,
                    to_hz: self.target_rate,
                    reason: e.to_string(),
                },
            })
    }
}

/// Rejects options no stream can satisfy.
fn check_options(path: &Path, opts: &StreamOptions) -> Result<(), DecodeError> {
    let reason = if opts.target_rate == 0 {
        "the target sample rate is 0 Hz"
    } else if !(1..=2).contains(&opts.target_channels) {
        "the target must have 1 or 2 channels"
    } else {
        return Ok(());
    };
    Err(DecodeError::InvalidOptions {
        path: path.to_path_buf(),
        reason: reason.into(),
    })
}

/// Decides how the file's channels feed the target: `Ok(true)` when a mono file is duplicated
/// onto both channels, `Ok(false)` when the counts match.
fn map_channels(info: &StemInfo, target: usize) -> Result<bool, DecodeError> {
    let reason = match (info.channels, target) {
        (1, 1) | (2, 2) => return Ok(false),
        (1, 2) => return Ok(true),
        (2, 1) => {
            "a stereo stem cannot feed a mono input; declare the input stereo or downmix \
                   the file first"
        }
        _ => "only mono and stereo stems are supported; split the file into mono or stereo stems",
    };
    Err(DecodeError::ChannelLayout {
        path: info.path.clone(),
        channels: info.channels,
        target,
        reason: reason.into(),
    })
}

/// A resampler when the file's rate differs from the target rate.
fn make_resampler(info: &StemInfo, to_hz: u32) -> Result<Option<StreamResampler>, DecodeError> {
    if info.sample_rate == to_hz {
        return Ok(None);
    }
    StreamResampler::new(info.sample_rate, to_hz, info.channels)
        .map(Some)
        .map_err(|e| DecodeError::Resample {
            path: info.path.clone(),
            from_hz: info.sample_rate,
            to_hz,
            reason: e.to_string(),
        })
}
