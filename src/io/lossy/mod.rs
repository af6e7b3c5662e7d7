//! Lossy deliverables: MP3 (LAME) with an ID3v2 tag and Ogg Opus (libopus) with OpusTags,
//! encoded from float PCM and written atomically, and the Ogg Opus reader the decoder uses to
//! measure what was encoded.
//!
//! This module owns the encoders' settings (bit rates, sample rates each codec takes), the
//! files' layout and their tags; the codec-safe true-peak solve that decides what the encoders
//! are fed is [`crate::render::codec_safe`]. The encoders are built with the `lossy` feature;
//! without it the settings still parse and check (recipes read the same) but creating an
//! encoder is an error.
//!
//! AAC is not offered: Debian ships no AAC encoder library (fdk-aac is non-free, ffmpeg's
//! native encoder is not a library this program links), and no crate vendors an encoder whose
//! licence fits this program's (see docs/delivery.md).

pub mod id3;
#[cfg(feature = "lossy")]
mod mp3;
#[cfg(feature = "lossy")]
pub mod ogg_opus;

use super::atomic::{AtomicFile, OutputError};
use super::format::FileFormat;
use crate::dsp::AudioRef;
use std::path::{Path, PathBuf};

/// What the codec-safe solve may do to the encoder's input when the decoded file's true peak
/// is over the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecSafe {
    /// Limit harder: the true-peak limiter before the encoder gets a lower ceiling (loudness
    /// barely moves). The default.
    #[default]
    Limit,
    /// Turn the whole file down (loudness drops by the same amount).
    Gain,
    /// No solve: encode once and report the decoded true peak (a diagnostic; the render warns
    /// when the file is over its ceiling).
    Off,
}

impl CodecSafe {
    /// The name recipes use (`codec_safe = "..."`).
    pub fn name(self) -> &'static str {
        match self {
            CodecSafe::Limit => "limit",
            CodecSafe::Gain => "gain",
            CodecSafe::Off => "off",
        }
    }
}

/// Encoder settings of a lossy deliverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossySettings {
    /// Bit rate, kbit/s (MP3: constant; Opus: the VBR target).
    pub bitrate_kbps: u32,
    /// How the decoded true peak is kept under the ceiling.
    pub codec_safe: CodecSafe,
    /// Most encodes the solve may make (1–4; default 4).
    pub max_encodes: u32,
}

/// The constant bit rates an MPEG-1 Layer III stream can have, kbit/s.
pub const MP3_BITRATES_KBPS: [u32; 14] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
/// The sample rates of MPEG-1 Layer III, Hz.
pub const MP3_RATES_HZ: [u32; 3] = [32_000, 44_100, 48_000];
/// The bit rates libopus accepts, kbit/s (6 to 510).
pub const OPUS_BITRATES_KBPS: std::ops::RangeInclusive<u32> = 6..=510;
/// The sample rate of an Ogg Opus deliverable (Opus always decodes at 48 kHz).
pub const OPUS_RATE_HZ: u32 = 48_000;

/// The default bit rate of a format, kbit/s.
pub fn default_bitrate_kbps(format: FileFormat) -> u32 {
    match format {
        FileFormat::Opus => 160,
        _ => 320,
    }
}

/// Checks that `format` can encode at `kbps`; the message says what it accepts.
pub fn check_bitrate(format: FileFormat, kbps: f64) -> Result<u32, String> {
    let whole = kbps.fract() == 0.0 && kbps > 0.0 && kbps <= 100_000.0;
    match format {
        FileFormat::Mp3 if whole && MP3_BITRATES_KBPS.contains(&(kbps as u32)) => Ok(kbps as u32),
        FileFormat::Mp3 => Err(format!(
            "`bitrate_kbps` = {kbps}: MP3 (MPEG-1 Layer III) encodes at {} kbit/s",
            list(&MP3_BITRATES_KBPS)
        )),
        FileFormat::Opus if whole && OPUS_BITRATES_KBPS.contains(&(kbps as u32)) => Ok(kbps as u32),
        FileFormat::Opus => Err(format!(
            "`bitrate_kbps` = {kbps}: Opus encodes at {} to {} kbit/s (whole numbers)",
            OPUS_BITRATES_KBPS.start(),
            OPUS_BITRATES_KBPS.end()
        )),
        _ => Err(format!(
            "`bitrate_kbps` is for lossy formats (mp3, opus), not {}",
            format.name()
        )),
    }
}

/// LAME's low-pass for a constant bit rate, Hz: `optimum_bandwidth` in the vendored LAME 3.100
/// (`libmp3lame/lame.c`, its `freq_map`), per bit rate in kbit/s.
const LAME_LOWPASS_HZ: [(u32, f64); 17] = [
    (8, 2000.0),
    (16, 3700.0),
    (24, 3900.0),
    (32, 5500.0),
    (40, 7000.0),
    (48, 7500.0),
    (56, 10_000.0),
    (64, 11_000.0),
    (80, 13_500.0),
    (96, 15_100.0),
    (112, 15_600.0),
    (128, 17_000.0),
    (160, 17_500.0),
    (192, 18_600.0),
    (224, 19_400.0),
    (256, 19_700.0),
    (320, 20_500.0),
];

/// Opus's audio bandwidth when it codes fullband (CELT's 20 kHz), Hz.
pub const OPUS_FULLBAND_HZ: f64 = 20_000.0;

/// The cutoff above which the encoder of `format` at `kbps` drops everything, Hz, when it lies
/// under 0.45 × `rate` (where a low-pass before the encoder changes something): LAME's table for
/// MP3, Opus's fullband edge. The codec-safe solve low-passes the encoder's input there, so its
/// limiter sees the band-limited waveform whose peaks the decoder gives back.
pub fn encoder_cutoff_hz(format: FileFormat, kbps: u32, rate: u32) -> Option<f64> {
    let hz = match format {
        FileFormat::Mp3 => LAME_LOWPASS_HZ
            .iter()
            .min_by_key(|(b, _)| b.abs_diff(kbps))
            .map(|&(_, hz)| hz)?,
        FileFormat::Opus => OPUS_FULLBAND_HZ,
        _ => return None,
    };
    (hz < 0.45 * f64::from(rate)).then_some(hz)
}

/// Checks that `format` can encode at `rate` Hz; the message says what it accepts.
pub fn check_rate(format: FileFormat, rate: u32) -> Result<(), String> {
    match format {
        FileFormat::Mp3 if MP3_RATES_HZ.contains(&rate) => Ok(()),
        FileFormat::Mp3 => Err(format!(
            "`sample_rate_hz` = {rate}: MP3 deliverables are {} Hz",
            list(&MP3_RATES_HZ)
        )),
        FileFormat::Opus if rate == OPUS_RATE_HZ => Ok(()),
        FileFormat::Opus => Err(format!(
            "`sample_rate_hz` = {rate}: Ogg Opus deliverables are {OPUS_RATE_HZ} Hz"
        )),
        _ => Ok(()),
    }
}

/// The rate a lossy deliverable is encoded at when the recipe names none: Opus 48 kHz; MP3 the
/// session's rate when MP3 has it, else 48 kHz (44.1 kHz for multiples of it).
pub fn default_rate(format: FileFormat, session_rate: u32) -> u32 {
    match format {
        FileFormat::Opus => OPUS_RATE_HZ,
        FileFormat::Mp3 if MP3_RATES_HZ.contains(&session_rate) => session_rate,
        FileFormat::Mp3 if session_rate.is_multiple_of(44_100) => 44_100,
        _ => 48_000,
    }
}

fn list(values: &[u32]) -> String {
    let s: Vec<String> = values.iter().map(u32::to_string).collect();
    s.join(", ")
}

/// Whether this build has the encoders (feature `lossy`).
pub const AVAILABLE: bool = cfg!(feature = "lossy");

/// A lossy file being encoded.
pub struct LossyOutput {
    #[cfg(feature = "lossy")]
    inner: Inner,
    frames: u64,
}

#[cfg(feature = "lossy")]
enum Inner {
    Mp3(Box<mp3::Mp3Output>),
    Opus(Box<ogg_opus::OpusOutput>),
}

/// An encoded file not yet in place: its temporary file can be decoded and measured, then
/// committed (renamed over the destination) or dropped (removed).
pub struct EncodedFile {
    atomic: AtomicFile,
    /// Frames encoded (at the encoder's input rate).
    pub frames: u64,
}

impl EncodedFile {
    /// The temporary file holding the encoded stream.
    pub fn path(&self) -> &Path {
        self.atomic.tmp()
    }

    /// Renames the file into place.
    pub fn commit(self) -> Result<PathBuf, OutputError> {
        self.atomic.commit()
    }
}

impl LossyOutput {
    /// Starts encoding `dest` (through a temporary file), refusing any path in `protected`.
    /// `tags` are Vorbis-comment style (`TITLE`, `ARTIST`, `ALBUM`, `TRACKNUMBER`, `ISRC`, ...).
    #[allow(unused_variables)]
    pub fn create(
        format: FileFormat,
        dest: &Path,
        rate: u32,
        channels: usize,
        settings: &LossySettings,
        tags: &[(String, String)],
        protected: &[PathBuf],
    ) -> Result<LossyOutput, OutputError> {
        let encode = |message: String| OutputError::Encode {
            path: dest.to_path_buf(),
            message,
        };
        check_rate(format, rate).map_err(encode)?;
        check_bitrate(format, f64::from(settings.bitrate_kbps)).map_err(encode)?;
        if channels == 0 || channels > 2 {
            return Err(encode(format!(
                "{} deliverables are mono or stereo, not {channels} channels",
                format.name()
            )));
        }
        #[cfg(feature = "lossy")]
        {
            let inner = match format {
                FileFormat::Mp3 => Inner::Mp3(Box::new(mp3::Mp3Output::create(
                    dest,
                    rate,
                    channels,
                    settings.bitrate_kbps,
                    tags,
                    protected,
                )?)),
                FileFormat::Opus => Inner::Opus(Box::new(ogg_opus::OpusOutput::create(
                    dest,
                    channels,
                    settings.bitrate_kbps,
                    tags,
                    protected,
                )?)),
                other => {
                    return Err(encode(format!("{} is not a lossy format", other.name())));
                }
            };
            Ok(LossyOutput { inner, frames: 0 })
        }
        #[cfg(not(feature = "lossy"))]
        Err(encode(
            "this build has no lossy encoders (build with the `lossy` feature)".into(),
        ))
    }

    /// Encodes one block (its channel count must be the file's).
    pub fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        self.frames += audio.frames() as u64;
        #[cfg(feature = "lossy")]
        match &mut self.inner {
            Inner::Mp3(m) => m.write(audio),
            Inner::Opus(o) => o.write(audio),
        }
        #[cfg(not(feature = "lossy"))]
        Ok(())
    }

    /// Flushes the encoder and completes the file's headers; the file stays temporary.
    pub fn finish(self) -> Result<EncodedFile, OutputError> {
        #[cfg(feature = "lossy")]
        {
            let atomic = match self.inner {
                Inner::Mp3(m) => m.finish()?,
                Inner::Opus(o) => o.finish()?,
            };
            Ok(EncodedFile {
                atomic,
                frames: self.frames,
            })
        }
        #[cfg(not(feature = "lossy"))]
        unreachable!("no lossy output exists without the `lossy` feature")
    }
}

/// The encoder's name and version, for reports.
pub fn encoder_name(format: FileFormat) -> String {
    #[cfg(feature = "lossy")]
    match format {
        FileFormat::Mp3 => format!("LAME {}", mp3::version()),
        FileFormat::Opus => opus::version().to_string(),
        _ => String::new(),
    }
    #[cfg(not(feature = "lossy"))]
    {
        let _ = format;
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_cutoff_is_lames_table_or_opus_fullband_when_under_the_band_edge() {
        assert_eq!(
            encoder_cutoff_hz(FileFormat::Mp3, 128, 44_100),
            Some(17_000.0)
        );
        assert_eq!(
            encoder_cutoff_hz(FileFormat::Mp3, 192, 48_000),
            Some(18_600.0)
        );
        // 20.5 kHz lies over 0.45 × 44.1 kHz (19.8 kHz): nothing to low-pass.
        assert_eq!(encoder_cutoff_hz(FileFormat::Mp3, 320, 44_100), None);
        assert_eq!(
            encoder_cutoff_hz(FileFormat::Mp3, 320, 48_000),
            Some(20_500.0)
        );
        assert_eq!(
            encoder_cutoff_hz(FileFormat::Opus, 160, 48_000),
            Some(20_000.0)
        );
        assert_eq!(encoder_cutoff_hz(FileFormat::Wav, 320, 48_000), None);
    }
}
