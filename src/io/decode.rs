//! Streaming decode of stem files into planar `f64` at full scale ±1.0.
//!
//! This module owns everything between a stem file on disk and the blocks a render reads:
//!
//! - [`Decoder`]: one file, decoded packet by packet (never the whole file in memory), at its
//!   own rate and channel count. Plain PCM WAV (16/24/32-bit integer, 32-bit float) and AIFF
//!   (16/24/32-bit integer) take a fast path that converts the sample data directly, read in
//!   stretches by `read()` (a file truncated meanwhile ends early: [`DecodeError::Truncated`]);
//!   Ogg Opus goes through libopus (feature `lossy`, [`crate::io::lossy::ogg_opus`]); every
//!   other format (FLAC, MP3, Ogg Vorbis, AIFF-C, unusual WAV) goes through symphonia. Integer
//!   PCM converts as `x / 2^(bits−1)`, which is exact in `f64`, so lossless formats decode
//!   bit-exact.
//! - [`StemStream`]: what a render reads: a decoder plus sample-rate conversion
//!   ([`crate::io::resample`]), mono-to-stereo mapping and padding to a fixed length, delivered in
//!   exactly-sized blocks without allocating.
//! - [`DecodeError`]: every failure names the file and says why in plain words.

mod finite;
mod pcm;
mod pcm_header;
mod stream;
mod symph;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use finite::{widen_finite, NonFinite};
pub use stream::{StemStream, StreamOptions, StreamWarning};

/// What a stem file is, read from its header.
#[derive(Debug, Clone, PartialEq)]
pub struct StemInfo {
    /// The file.
    pub path: PathBuf,
    /// Its sample rate in Hz.
    pub sample_rate: u32,
    /// Its channel count.
    pub channels: usize,
    /// Its length in frames, if the header states it (an estimate for MP3 without a Xing/Info
    /// header).
    pub frames: Option<u64>,
    /// Bits per sample of the stored samples, for PCM and lossless codecs.
    pub bits_per_sample: Option<u32>,
    /// The codec's short name (`pcm_s24le`, `flac`, `mp3`, `vorbis`, ...).
    pub codec: String,
    /// Whether the codec is lossless (PCM, FLAC, ALAC, ...), so the decode is bit-exact.
    pub lossless: bool,
}

/// Why a stem could not be decoded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Reading the file failed part-way.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file is not audio in a format or codec this program decodes.
    #[error("{} is not an audio file this program can decode: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What was not recognised or not supported.
        reason: String,
    },
    /// The file is recognised but its data is damaged.
    #[error("{} is damaged and cannot be decoded: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder found wrong.
        reason: String,
    },
    /// The file ends before the frames its header promised.
    #[error(
        "{} is truncated: its header promises {expected} frames but the file holds only {got}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Frames the header promised.
        expected: u64,
        /// Frames the file actually held.
        got: u64,
    },
    /// The file's channels cannot be mapped onto the channels asked for.
    #[error("{} has {channels} channel(s), which cannot be used as {target}: {reason}", path.display())]
    ChannelLayout {
        /// The file.
        path: PathBuf,
        /// The file's channel count.
        channels: usize,
        /// The channel count asked for.
        target: usize,
        /// Why, and what to do about it.
        reason: String,
    },
    /// Sample-rate conversion failed.
    #[error("cannot resample {} from {from_hz} Hz to {to_hz} Hz: {reason}", path.display())]
    Resample {
        /// The file.
        path: PathBuf,
        /// The file's rate.
        from_hz: u32,
        /// The rate asked for.
        to_hz: u32,
        /// What went wrong.
        reason: String,
    },
    /// The stream options themselves are unusable.
    #[error("cannot stream {}: {reason}", path.display())]
    InvalidOptions {
        /// The file.
        path: PathBuf,
        /// What is wrong with the options.
        reason: String,
    },
}

/// A backend's failure before the file's path is attached.
#[derive(Debug)]
enum Failure {
    Io(io::Error),
    Unsupported(String),
    Corrupt(String),
}

impl Failure {
    /// Attaches the file's path.
    fn at(self, path: &Path) -> DecodeError {
        let path = path.to_path_buf();
        match self {
            Failure::Io(source) => DecodeError::Io { path, source },
            Failure::Unsupported(reason) => DecodeError::Unsupported { path, reason },
            Failure::Corrupt(reason) => DecodeError::Corrupt { path, reason },
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// Where the samples come from.
enum Backend {
    /// Plain PCM WAV or AIFF, read and converted directly.
    Pcm(pcm::PcmReader),
    /// Everything else, through symphonia.
    Symphonia(Box<symph::SymphoniaSource>),
    /// Ogg Opus, through libopus (symphonia has no Opus decoder).
    #[cfg(feature = "lossy")]
    Opus(Box<crate::io::lossy::ogg_opus::OpusReader>),
}

#[cfg(feature = "lossy")]
impl From<crate::io::lossy::ogg_opus::ReadError> for Failure {
    fn from(e: crate::io::lossy::ogg_opus::ReadError) -> Self {
        match e {
            crate::io::lossy::ogg_opus::ReadError::Io(e) => Failure::Io(e),
            crate::io::lossy::ogg_opus::ReadError::Corrupt(r) => Failure::Corrupt(r),
        }
    }
}

/// An Ogg Opus file: its reader and what it is (`Err(file)` when it is not Opus).
#[cfg(feature = "lossy")]
fn try_opus(mut file: File, path: &Path) -> Result<Result<(Backend, StemInfo), File>, Failure> {
    use crate::io::lossy::ogg_opus;
    if !ogg_opus::sniff(&mut file)? {
        return Ok(Err(file));
    }
    let reader = ogg_opus::OpusReader::open(file)?;
    let info = StemInfo {
        path: path.to_path_buf(),
        sample_rate: crate::io::lossy::OPUS_RATE_HZ,
        channels: reader.channels(),
        frames: None,
        bits_per_sample: None,
        codec: "opus".into(),
        lossless: false,
    };
    Ok(Ok((Backend::Opus(Box::new(reader)), info)))
}

#[cfg(not(feature = "lossy"))]
fn try_opus(file: File, _path: &Path) -> Result<Result<(Backend, StemInfo), File>, Failure> {
    Ok(Err(file))
}

/// Streaming decoder of one file: never holds the whole file.
pub struct Decoder {
    info: StemInfo,
    backend: Backend,
    frames_read: u64,
}

impl Decoder {
    /// Whether every sample decodes to a finite value whatever the file holds (integer PCM):
    /// a stream of it needs no non-finite check.
    pub fn always_finite(&self) -> bool {
        matches!(&self.backend, Backend::Pcm(r) if r.integer())
    }

    /// Whether every sample read since the last call is known to be finite: always for integer
    /// PCM, as they were converted for stereo float PCM (checked in the same pass); false
    /// (unknown) otherwise. A stream that asks it after each read need not scan the samples
    /// again.
    pub fn take_finite(&mut self) -> bool {
        match &mut self.backend {
            Backend::Pcm(r) => r.take_finite(),
            _ => false,
        }
    }

    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Decoder, DecodeError> {
        let file = File::open(path).map_err(|source| DecodeError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let (backend, info) =
            match pcm::PcmReader::try_open(file, path).map_err(|e| DecodeError::Io {
                path: path.to_path_buf(),
                source: e,
            })? {
                Ok((pcm, info)) => (Backend::Pcm(pcm), info),
                Err(file) => match try_opus(file, path).map_err(|f| f.at(path))? {
                    Ok(opus) => opus,
                    Err(file) => {
                        let (source, info) =
                            symph::SymphoniaSource::open(file, path).map_err(|f| f.at(path))?;
                        (Backend::Symphonia(Box::new(source)), info)
                    }
                },
            };
        Ok(Decoder {
            info,
            backend,
            frames_read: 0,
        })
    }

    /// What the file is.
    pub fn info(&self) -> &StemInfo {
        &self.info
    }

    /// Moves to frame `frame` of the file (clamped to its end) without decoding what lies
    /// before it: plain PCM by byte offset, lossless formats through the demuxer's seek.
    /// `Ok(false)` when the file cannot seek that way (lossy formats, whose decode depends on
    /// what came before): the caller reads forward, or reopens and reads forward.
    pub fn seek(&mut self, frame: u64) -> Result<bool, DecodeError> {
        let path = &self.info.path;
        let landed = match &mut self.backend {
            Backend::Pcm(pcm) => Some(pcm.seek(frame).map_err(|f| f.at(path))?),
            Backend::Symphonia(src) => src
                .seek(frame, self.info.sample_rate)
                .map_err(|f| f.at(path))?
                .then_some(frame),
            #[cfg(feature = "lossy")]
            Backend::Opus(_) => None,
        };
        match landed {
            Some(f) => {
                self.frames_read = f;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Decodes up to `max_frames` frames into `out` (planar; `out.len() == info.channels`, each
    /// slice at least `max_frames` long) and returns the frames written, which may be fewer than
    /// asked; `Ok(0)` only at the end (or when `max_frames` is 0).
    /// A stream that ends before the frames its header promised is
    /// [`DecodeError::Truncated`] (checked for lossless files, whose headers are exact).
    ///
    /// # Panics
    /// If `out` has the wrong number of channels or a slice shorter than `max_frames`.
    pub fn read(
        &mut self,
        out: &mut [&mut [f64]],
        max_frames: usize,
    ) -> Result<usize, DecodeError> {
        assert_eq!(
            out.len(),
            self.info.channels,
            "one output slice per channel"
        );
        assert!(
            out.iter().all(|s| s.len() >= max_frames),
            "output slices shorter than max_frames"
        );
        if max_frames == 0 {
            return Ok(0);
        }
        let n = match &mut self.backend {
            Backend::Pcm(pcm) => pcm.read(out, max_frames),
            Backend::Symphonia(src) => src.read(out, max_frames),
            #[cfg(feature = "lossy")]
            Backend::Opus(src) => src.read(out, max_frames).map_err(Failure::from),
        }
        .map_err(|f| f.at(&self.info.path))?;
        self.frames_read += n as u64;
        if n == 0 {
            self.check_complete()?;
        }
        Ok(n)
    }

    /// At the end of the stream: a lossless file must have held every frame its header promised.
    fn check_complete(&self) -> Result<(), DecodeError> {
        match self.info.frames {
            Some(expected) if self.info.lossless && self.frames_read < expected => {
                Err(DecodeError::Truncated {
                    path: self.info.path.clone(),
                    expected,
                    got: self.frames_read,
                })
            }
            _ => Ok(()),
        }
    }
}
