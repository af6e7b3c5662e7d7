//! WAV masters: 16- and 24-bit integer and 32-bit float, written atomically.
//!
//! Float to integer rounds to nearest and clips at full scale; clipped samples are counted and
//! reported. No dither is added here: word-length reduction with dither is the deliverable
//! pipeline's job, before this quantizer.

use super::atomic::{AtomicFile, OutputError};
use crate::dsp::AudioRef;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Sample format of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// 16-bit integer PCM.
    Int16,
    /// 24-bit integer PCM.
    Int24,
    /// 32-bit IEEE float.
    Float32,
}

impl WavFormat {
    /// The format for a bit depth as recipes write it (16, 24, 32 = float).
    pub fn from_bits(bits: u32) -> Option<WavFormat> {
        match bits {
            16 => Some(WavFormat::Int16),
            24 => Some(WavFormat::Int24),
            32 => Some(WavFormat::Float32),
            _ => None,
        }
    }
    /// Bits per sample.
    pub fn bits(self) -> u32 {
        match self {
            WavFormat::Int16 => 16,
            WavFormat::Int24 => 24,
            WavFormat::Float32 => 32,
        }
    }
    /// Whether samples are integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, WavFormat::Float32)
    }
}

/// What a finished WAV file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct WavSummary {
    /// Where it is.
    pub path: PathBuf,
    /// Frames written.
    pub frames: u64,
    /// Samples clipped at full scale by the integer conversion (float files: samples over ±1).
    pub clipped: u64,
}

/// A WAV file being written.
pub struct WavOutput {
    atomic: Option<AtomicFile>,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    format: WavFormat,
    channels: usize,
    frames: u64,
    clipped: u64,
}

/// Rounds `x` (full scale ±1) to a `bits`-bit integer, clipping; returns the value and whether it
/// clipped.
#[inline]
pub fn quantize(x: f64, bits: u32) -> (i32, bool) {
    let scale = (1u64 << (bits - 1)) as f64;
    let v = libm::round(x * scale);
    let max = scale - 1.0;
    if v > max {
        (max as i32, true)
    } else if v < -scale {
        (-scale as i32, true)
    } else {
        (v as i32, false)
    }
}

impl WavOutput {
    /// Starts writing `dest` (through a temporary file), refusing any path in `protected`.
    pub fn create(
        dest: &Path,
        sample_rate: u32,
        channels: usize,
        format: WavFormat,
        protected: &[PathBuf],
    ) -> Result<WavOutput, OutputError> {
        let (atomic, file) = AtomicFile::create(dest, protected)?;
        let spec = hound::WavSpec {
            channels: channels as u16,
            sample_rate,
            bits_per_sample: format.bits() as u16,
            sample_format: if format.is_integer() {
                hound::SampleFormat::Int
            } else {
                hound::SampleFormat::Float
            },
        };
        let writer = hound::WavWriter::new(file, spec).map_err(|e| OutputError::Encode {
            path: dest.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(WavOutput {
            atomic: Some(atomic),
            writer: Some(writer),
            format,
            channels,
            frames: 0,
            clipped: 0,
        })
    }

    fn encode_error(&self, e: hound::Error) -> OutputError {
        OutputError::Encode {
            path: self
                .atomic
                .as_ref()
                .map(|a| a.dest().to_path_buf())
                .unwrap_or_default(),
            message: e.to_string(),
        }
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Appends one block (its channel count must be the file's).
    pub fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        debug_assert_eq!(audio.channels(), self.channels);
        let writer = self.writer.as_mut().expect("written after finish");
        let frames = audio.frames();
        let mut clipped = 0;
        let result: Result<(), hound::Error> = (|| {
            match self.format {
                WavFormat::Float32 => {
                    for n in 0..frames {
                        for c in 0..self.channels {
                            let x = audio.channel(c)[n];
                            clipped += u64::from(x.abs() > 1.0);
                            writer.write_sample(x as f32)?;
                        }
                    }
                }
                WavFormat::Int16 | WavFormat::Int24 => {
                    let bits = self.format.bits();
                    for n in 0..frames {
                        for c in 0..self.channels {
                            let (v, clip) = quantize(audio.channel(c)[n], bits);
                            clipped += u64::from(clip);
                            writer.write_sample(v)?;
                        }
                    }
                }
            }
            Ok(())
        })();
        self.clipped += clipped;
        self.frames += frames as u64;
        result.map_err(|e| self.encode_error(e))
    }

    /// Completes the file and renames it into place.
    pub fn finish(mut self) -> Result<WavSummary, OutputError> {
        let writer = self.writer.take().expect("finished once");
        writer.finalize().map_err(|e| self.encode_error(e))?;
        let frames = self.frames;
        let clipped = self.clipped;
        let path = self.atomic.take().expect("committed once").commit()?;
        Ok(WavSummary {
            path,
            frames,
            clipped,
        })
    }
}

impl Drop for WavOutput {
    fn drop(&mut self) {
        // Close the file before the AtomicFile removes it.
        self.writer.take();
    }
}
