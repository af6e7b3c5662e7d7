//! One deliverable's file: what the recipe asks of it ([`Plan`]: the output it is made from,
//! its rate, word length, dither, ceiling, silences, name, tags and chunks) and the encoder
//! that writes it ([`FileOut`]: WAV or FLAC, atomically). A lossy deliverable (MP3, Ogg Opus)
//! is written as a temporary float WAV and encoded once it is complete ([`LossyJob`]).

use super::{output_of, RenderError};
use crate::analysis::analyze::FileAnalysis;
use crate::engine::Schedule;
use crate::io::atomic::OutputError;
use crate::io::flac::FlacOutput;
use crate::io::wav::{WavFormat, WavOutput, WavSummary};
use crate::render::bwf::{self, WavChunks};
use crate::session::{Deliverable, DitherKind, FileFormat, Session};
use std::path::{Path, PathBuf};

/// What one deliverable asks for, resolved against the session and the graph.
pub(super) struct Plan {
    /// The schedule output it is made from (index and id).
    pub output_index: usize,
    pub output_id: String,
    /// Its sample rate.
    pub sample_rate: u32,
    /// Bits per sample as reported (32 for a lossy deliverable's float PCM).
    pub bits: u32,
    /// The samples' format in the file (a lossy deliverable's PCM: float).
    pub format: WavFormat,
    /// The container written (a lossy deliverable's PCM: WAV).
    pub file_format: FileFormat,
    pub tags: Vec<(String, String)>,
    pub wav_chunks: WavChunks,
    pub channels: usize,
    /// The safety limiter's ceiling, if one runs.
    pub ceiling: Option<f64>,
    /// Dither to this many bits, with this seed, if dithered.
    pub dither: Option<(u32, u64)>,
    /// Frames of silence before and after the audio.
    pub lead_silence: u64,
    pub tail_silence: u64,
    /// The file written (a lossy deliverable: its temporary PCM).
    pub dest: PathBuf,
    /// A lossy deliverable: what its PCM is encoded to.
    pub lossy: Option<LossyJob>,
    /// The recipe's `file:line: ` and the file pattern, for errors.
    pub at: String,
    pub name: String,
}

impl Plan {
    /// Resolves deliverable `d` of `session` against `schedule`.
    pub fn new(
        d: &Deliverable,
        session: &Session,
        schedule: &Schedule,
        session_rate: u32,
        out_dir: &Path,
        protected: &[PathBuf],
    ) -> Result<Plan, RenderError> {
        let at = crate::graph::spec::at(&d.origin);
        let (output_index, output_id) = output_of(d, schedule, &at)?;
        let lossy_format = d.format.is_lossy();
        let sample_rate = match d.sample_rate {
            Some(r) => r,
            None if lossy_format => crate::io::lossy::default_rate(d.format, session_rate),
            None => session_rate,
        };
        if lossy_format {
            crate::io::lossy::check_rate(d.format, sample_rate)
                .map_err(|e| RenderError::Invalid(format!("{at}deliverable `{}`: {e}", d.file)))?;
        }
        // A lossy deliverable's PCM is float; the encoder quantizes.
        let bits = if lossy_format { 32 } else { d.bits };
        let format = WavFormat::from_bits(bits)
            .filter(|f| lossy_format || d.format == FileFormat::Wav || f.is_integer())
            .ok_or_else(|| {
                RenderError::Invalid(format!(
                    "{at}deliverable `{}`: {} bits is not a {} format",
                    d.file,
                    d.bits,
                    if d.format == FileFormat::Flac {
                        "FLAC"
                    } else {
                        "WAV"
                    }
                ))
            })?;
        let tags = tags_of(d, session);
        let channels = schedule.output(output_index, 0).channels();
        let wav_chunks = bwf::chunks(d, session, &tags, sample_rate, channels, format);
        let dither = match d.dither {
            DitherKind::Tpdf if format.is_integer() => Some((d.bits, d.seed)),
            DitherKind::Tpdf | DitherKind::None => None,
        };
        let ceiling = d.ceiling_dbtp.or(session.ceiling_dbtp);
        let mut dest = out_dir.join(super::expand_file_name(&d.file, session));
        let lossy = lossy_job(d, &mut dest, out_dir, ceiling, &at, &tags, protected)?;
        let file_format = if lossy.is_some() {
            FileFormat::Wav
        } else {
            d.format
        };
        let silence =
            |s: f64| crate::units::seconds_to_samples(s, f64::from(sample_rate)).max(0) as u64;
        Ok(Plan {
            output_index,
            output_id,
            sample_rate,
            bits,
            format,
            file_format,
            tags,
            wav_chunks,
            channels,
            ceiling,
            dither,
            lead_silence: silence(d.lead_silence_s),
            tail_silence: silence(d.tail_silence_s),
            dest,
            lossy,
            at,
            name: d.file.clone(),
        })
    }

    /// Starts the file (a temporary file until it is committed).
    pub fn create_file(&self, protected: &[PathBuf]) -> Result<FileOut, OutputError> {
        FileOut::create(
            self.file_format,
            &self.dest,
            self.sample_rate,
            self.channels,
            self.format,
            &self.tags,
            &self.wav_chunks,
            protected,
        )
    }

    /// What decides the samples of its file.
    pub fn shape(&self) -> Shape {
        Shape {
            output_index: self.output_index,
            sample_rate: self.sample_rate,
            channels: self.channels,
            ceiling: self.ceiling,
            dither: self.dither,
            lead_silence: self.lead_silence,
            tail_silence: self.tail_silence,
            format: self.format,
            lossy: self.lossy.is_some(),
        }
    }
}

/// What decides the samples of a deliverable's file: the output it is made from, its rate,
/// stages, silences and word length.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shape {
    pub output_index: usize,
    pub sample_rate: u32,
    pub channels: usize,
    pub ceiling: Option<f64>,
    pub dither: Option<(u32, u64)>,
    pub lead_silence: u64,
    pub tail_silence: u64,
    pub format: WavFormat,
    pub lossy: bool,
}

impl Shape {
    /// Whether files of these two shapes hold the same samples, so that they are produced and
    /// measured once. A lossy deliverable's PCM is never shared.
    pub fn shares(&self, other: &Shape) -> bool {
        !self.lossy && self == other
    }
}

/// The encoder a deliverable is written with.
pub(super) enum FileOut {
    /// A WAV file, with the offset of its `bext` loudness fields when it has them.
    Wav(WavOutput, Option<u64>),
    Flac(Box<FlacOutput>),
}

impl FileOut {
    #[allow(clippy::too_many_arguments)]
    fn create(
        kind: FileFormat,
        dest: &Path,
        rate: u32,
        channels: usize,
        format: WavFormat,
        tags: &[(String, String)],
        wav_chunks: &WavChunks,
        protected: &[PathBuf],
    ) -> Result<FileOut, OutputError> {
        Ok(match kind {
            FileFormat::Wav => FileOut::Wav(
                WavOutput::create_with_chunks(
                    dest,
                    rate,
                    channels,
                    format,
                    protected,
                    &wav_chunks.bytes,
                )?,
                wav_chunks.loudness_at,
            ),
            FileFormat::Flac => FileOut::Flac(Box::new(FlacOutput::create(
                dest,
                rate,
                channels,
                format.bits(),
                tags,
                protected,
            )?)),
            FileFormat::Mp3 | FileFormat::Opus => {
                unreachable!("lossy deliverables write float WAV, then encode it")
            }
        })
    }

    /// Whether the file needs its samples measured to be completed (a WAV with `bext`
    /// loudness fields).
    pub fn needs_measurement(&self) -> bool {
        matches!(self, FileOut::Wav(_, Some(_)))
    }

    pub fn write(&mut self, audio: crate::dsp::AudioRef<'_>) -> Result<(), OutputError> {
        match self {
            FileOut::Wav(w, _) => w.write(audio),
            FileOut::Flac(f) => f.write(audio),
        }
    }

    /// Appends frames already quantized to the file's word length (interleaved; `clipped` of
    /// them clipped): [`crate::io::quantize::quantize_planes`].
    pub fn write_ints(&mut self, ints: &[i32], clipped: u64) -> Result<(), OutputError> {
        match self {
            FileOut::Wav(w, _) => w.write_ints(ints, clipped),
            FileOut::Flac(f) => f.write_ints(ints, clipped),
        }
    }

    /// Completes the file and commits it. A WAV with a `bext` chunk gets its loudness fields
    /// from `measured` (the figures of its samples as written), or, without them, from the
    /// finished temporary file decoded. Gives back the measurement.
    pub fn finish(
        self,
        measured: Option<FileAnalysis>,
    ) -> Result<(WavSummary, Option<Box<FileAnalysis>>), OutputError> {
        match (self, measured) {
            (FileOut::Wav(w, None), m) => Ok((w.finish()?, m.map(Box::new))),
            (FileOut::Wav(w, Some(at)), Some(m)) => {
                let summary = w.finish_with(|_| Ok(bwf::patch(at, &m)))?;
                Ok((summary, Some(Box::new(m))))
            }
            (FileOut::Wav(w, Some(at)), None) => {
                let mut measured = None;
                let summary = w.finish_with(|tmp| {
                    let dest = tmp.to_path_buf();
                    let (patch, analysis) = bwf::measure(tmp, &dest, at)?;
                    measured = Some(Box::new(analysis));
                    Ok(patch)
                })?;
                Ok((summary, measured))
            }
            (FileOut::Flac(f), m) => Ok((f.finish()?, m.map(Box::new))),
        }
    }
}

/// The tags of a deliverable: TITLE and ARTIST from the session, its metadata (album, track,
/// ISRC, …: [`crate::metadata::tags`]), then the deliverable's own tags over them.
fn tags_of(d: &Deliverable, session: &Session) -> Vec<(String, String)> {
    crate::metadata::tags(
        &session.title,
        session.artist.as_deref(),
        &session.metadata,
        &d.tags,
    )
}

/// What a lossy deliverable is encoded to once its PCM is complete.
pub(super) struct LossyJob {
    pub format: FileFormat,
    pub dest: PathBuf,
    pub settings: crate::io::lossy::LossySettings,
    pub ceiling: Option<f64>,
    /// The recipe's `file:line: `.
    pub at: String,
    pub tags: Vec<(String, String)>,
    pub protected: Vec<PathBuf>,
}

/// For a lossy deliverable: its encoding job (what `dest` becomes), with `dest` turned into the
/// temporary float PCM file the encoder reads; `None` for WAV and FLAC.
fn lossy_job(
    d: &Deliverable,
    dest: &mut PathBuf,
    out_dir: &Path,
    ceiling: Option<f64>,
    at: &str,
    tags: &[(String, String)],
    protected: &[PathBuf],
) -> Result<Option<LossyJob>, RenderError> {
    if !d.format.is_lossy() {
        return Ok(None);
    }
    let settings = d.lossy.unwrap_or(crate::io::lossy::LossySettings {
        bitrate_kbps: crate::io::lossy::default_bitrate_kbps(d.format),
        codec_safe: Default::default(),
        max_encodes: crate::render::codec_safe::MAX_ENCODES,
    });
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = dest.parent().unwrap_or(out_dir).to_path_buf();
    let pcm = crate::io::temp::path_in(&folder, &format!("{name}.pcm.wav")).map_err(|source| {
        OutputError::Io {
            path: crate::io::temp::dir_for(&folder),
            source,
        }
    })?;
    Ok(Some(LossyJob {
        format: d.format,
        dest: std::mem::replace(dest, pcm),
        settings,
        ceiling,
        at: at.to_string(),
        tags: tags.to_vec(),
        protected: protected.to_vec(),
    }))
}

impl LossyJob {
    /// Encodes the committed PCM file `pcm` (removed when done) through the codec-safe solve
    /// ([`crate::render::codec_safe`]) into the deliverable `file` becomes.
    pub fn encode(self, pcm: TempFile, file: &mut super::DeliveredFile) -> Result<(), RenderError> {
        let (frames, outcome) = crate::render::codec_safe::encode(
            &pcm.0,
            &self.dest,
            self.format,
            &self.settings,
            self.ceiling,
            &self.tags,
            &self.protected,
            &self.at,
        )?;
        file.wav.path = self.dest;
        file.wav.frames = frames;
        file.format = self.format;
        file.lossy = Some(outcome);
        Ok(())
    }
}

/// A committed temporary file (a lossy deliverable's PCM), removed when done with (or when
/// the render fails).
pub(super) struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent().and_then(Path::parent) {
            crate::io::temp::tidy(dir);
        }
    }
}
