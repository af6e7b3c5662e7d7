//! Deliverables: one output of the graph turned into one file.
//!
//! The pipeline of every deliverable is: sample-rate conversion (when it asks for another rate)
//! → true-peak safety limiter (when a ceiling is declared; transparent below it) → dither (TPDF,
//! by default for 16-bit) → quantize → WAV or FLAC (with tags), written atomically. A lossy
//! deliverable (MP3, Ogg Opus) stops before dither: its float PCM goes to a temporary file, and
//! the codec-safe solve ([`super::codec_safe`]) encodes it, decodes and measures the result, and
//! encodes again with lowered peaks until the decoded true peak is under the ceiling. A deliverable at the session rate
//! is produced while the graph runs. One at another rate is produced after it: the output is
//! spilled to a temporary 32-bit float file during the render and then streamed through the
//! resampler, so memory stays flat either way. Resampling recreates inter-sample peaks, which is
//! why the safety limiter comes after it.
//!
//! In a render, the run stage (or, with a loudness target, the target stage) opens the
//! deliverables ([`open_all`]) and writes them as the graph runs; the deliver stage ([`finish`])
//! completes them.

use super::{RenderContext, RenderError};
use crate::analysis::analyze::FileAnalysis;
use crate::dsp::standalone::Standalone;
use crate::dsp::{AudioBuffer, AudioRef, ProcessorConfig};
use crate::engine::Schedule;
use crate::io::atomic::OutputError;
use crate::io::decode::{StemStream, StreamOptions};
use crate::io::flac::FlacOutput;
use crate::io::wav::{WavFormat, WavOutput, WavSummary};
use crate::session::{Deliverable, DitherKind, FileFormat, Session};
use std::path::{Path, PathBuf};

/// How far under the deliverable's ceiling the safety limiter aims, dB, on top of the
/// limiter's own detection margin: its 8× detector under-reads the inter-sample peaks of dense
/// material near fs/2 by up to about 0.12 dB at 44.1 kHz (by a 16× reference), more than the
/// limiter's own 0.1 dB margin covers. With this the ceiling holds against a 16× reference on
/// every deliverable (tests/trust_render.rs measures it at 44.1 and 48 kHz on the demo,
/// tests/trust_real.rs on the real corpus songs, by the 16× reference and by ffmpeg's meter).
pub const SAFETY_MARGIN_DB: f64 = 0.1;

/// A file a render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredFile {
    /// What was written (path, frames, clipped samples), WAV or FLAC.
    pub wav: WavSummary,
    /// Container and codec.
    pub format: FileFormat,
    /// Bits per sample.
    pub bits: u32,
    /// Sample rate.
    pub sample_rate: u32,
    /// The output node it came from.
    pub output: String,
    /// Whether it was dithered.
    pub dithered: bool,
    /// The safety limiter's ceiling, if one ran.
    pub ceiling_dbtp: Option<f64>,
    /// The safety limiter's largest gain reduction, dB (0 when it never acted).
    pub safety_gain_reduction_db: f64,
    /// The file's analysis when it was measured before being committed (a WAV with a `bext`
    /// chunk: see [`super::bwf`]); the report uses it instead of decoding the file again.
    pub measured: Option<Box<crate::analysis::analyze::FileAnalysis>>,
    /// A lossy deliverable (MP3, Opus): what the codec-safe solve did.
    pub lossy: Option<super::codec_safe::LossyOutcome>,
}

/// The stages after the graph: safety limiter and dither, with the limiter's delay removed.
struct Stages {
    limiter: Option<Standalone>,
    dither: Option<Standalone>,
    scratch: AudioBuffer,
    /// Output frames still to drop (the limiter's latency).
    skip: usize,
    max_gr_db: f64,
}

impl Stages {
    fn new(
        channels: usize,
        rate: u32,
        ceiling: Option<f64>,
        dither_bits: Option<u32>,
        seed: u64,
        block: usize,
    ) -> Result<Self, String> {
        let limiter = match ceiling {
            Some(c) => Some(
                Standalone::new(
                    "limiter",
                    &ProcessorConfig::new().num("ceiling_dbtp", c - SAFETY_MARGIN_DB),
                    channels,
                    f64::from(rate),
                    block,
                )
                .map_err(|e| format!("safety limiter: {e}"))?,
            ),
            None => None,
        };
        let dither = match dither_bits {
            Some(bits) => Some(
                Standalone::new(
                    "dither",
                    &ProcessorConfig::new()
                        .num("bits", f64::from(bits))
                        .num("seed", seed as f64),
                    channels,
                    f64::from(rate),
                    block,
                )
                .map_err(|e| format!("dither: {e}"))?,
            ),
            None => None,
        };
        let skip = limiter.as_ref().map_or(0, |l| l.latency());
        Ok(Self {
            limiter,
            dither,
            scratch: AudioBuffer::new(channels, block),
            skip,
            max_gr_db: 0.0,
        })
    }

    fn latency(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.latency())
    }

    /// Runs `block` through the stages and hands what comes out to `write`.
    fn run(
        &mut self,
        block: AudioRef<'_>,
        write: &mut dyn FnMut(AudioRef<'_>) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        if self.limiter.is_none() && self.dither.is_none() {
            return write(block);
        }
        let max = self.scratch.max_frames();
        let mut start = 0;
        while start < block.frames() {
            let n = (block.frames() - start).min(max);
            let part = block.slice(start, start + n);
            for c in 0..part.channels() {
                self.scratch
                    .channel_mut(c, n)
                    .copy_from_slice(part.channel(c));
            }
            if let Some(l) = &mut self.limiter {
                l.process(&mut self.scratch.view_mut(n));
                if let Some(gr) = l
                    .processor()
                    .telemetry()
                    .and_then(|t| t.get_named(crate::dsp::telemetry::GAIN_REDUCTION_DB))
                {
                    self.max_gr_db = self.max_gr_db.max(gr);
                }
            }
            if let Some(d) = &mut self.dither {
                d.process(&mut self.scratch.view_mut(n));
            }
            let drop = self.skip.min(n);
            self.skip -= drop;
            if drop < n {
                write(self.scratch.view(n).slice(drop, n))?;
            }
            start += n;
        }
        Ok(())
    }

    /// Pushes the limiter's delay out with silence.
    fn flush(
        &mut self,
        write: &mut dyn FnMut(AudioRef<'_>) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        let mut left = self.latency();
        let zeros = AudioBuffer::new(self.scratch.channels(), self.scratch.max_frames());
        while left > 0 {
            let n = left.min(zeros.max_frames());
            self.run(zeros.view(n), write)?;
            left -= n;
        }
        Ok(())
    }
}

/// The encoder a deliverable is written with.
enum FileOut {
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
        wav_chunks: &super::bwf::WavChunks,
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

    fn write(&mut self, audio: AudioRef<'_>) -> Result<(), OutputError> {
        match self {
            FileOut::Wav(w, _) => w.write(audio),
            FileOut::Flac(f) => f.write(audio),
        }
    }

    /// Completes the file; a WAV with a `bext` chunk is measured and its loudness fields
    /// patched before it is committed (the measurement is returned).
    fn finish(self) -> Result<(WavSummary, Option<Box<FileAnalysis>>), OutputError> {
        match self {
            FileOut::Wav(w, None) => Ok((w.finish()?, None)),
            FileOut::Wav(w, Some(at)) => {
                let mut measured = None;
                let summary = w.finish_with(|tmp| {
                    let dest = tmp.to_path_buf();
                    let (patch, analysis) = super::bwf::measure(tmp, &dest, at)?;
                    measured = Some(Box::new(analysis));
                    Ok(patch)
                })?;
                Ok((summary, measured))
            }
            FileOut::Flac(f) => Ok((f.finish()?, None)),
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

enum Mode {
    /// At the session rate: processed as the graph runs.
    Direct,
    /// At another rate: spilled now, converted at the end.
    Spill {
        spill: WavOutput,
        spill_path: PathBuf,
        to_rate: u32,
    },
}

/// For a lossy deliverable: its encoding job (what `dest` becomes), with `dest` turned into the
/// temporary float PCM file the encoder reads; `None` for WAV and FLAC.
fn lossy_job(
    d: &Deliverable,
    dest: &mut PathBuf,
    out_dir: &Path,
    ceiling: Option<f64>,
    at: &str,
) -> Result<Option<LossyJob>, RenderError> {
    if !d.format.is_lossy() {
        return Ok(None);
    }
    let settings = d.lossy.unwrap_or(crate::io::lossy::LossySettings {
        bitrate_kbps: crate::io::lossy::default_bitrate_kbps(d.format),
        codec_safe: Default::default(),
        max_encodes: super::codec_safe::MAX_ENCODES,
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
    }))
}

/// A deliverable being written.
pub struct DeliverableSink {
    output_index: usize,
    output_id: String,
    wav: Option<FileOut>,
    dest: PathBuf,
    format: WavFormat,
    file_format: FileFormat,
    tags: Vec<(String, String)>,
    wav_chunks: super::bwf::WavChunks,
    channels: usize,
    protected: Vec<PathBuf>,
    stages: Option<Stages>,
    stage_config: (Option<f64>, Option<u32>, u64),
    mode: Mode,
    bits: u32,
    sample_rate: u32,
    lead_silence: u64,
    tail_silence: u64,
    started: bool,
    /// A lossy deliverable: the float PCM is written to a temporary file (`dest`), then encoded.
    lossy: Option<LossyJob>,
}

/// What a lossy deliverable is encoded to once its PCM is complete.
struct LossyJob {
    format: FileFormat,
    dest: PathBuf,
    settings: crate::io::lossy::LossySettings,
    ceiling: Option<f64>,
    /// The recipe's `file:line: `.
    at: String,
}

/// The schedule output deliverable `d` is made from (its index and id): the one it names, or the
/// graph's only one.
fn output_of(
    d: &Deliverable,
    schedule: &Schedule,
    at: &str,
) -> Result<(usize, String), RenderError> {
    // The engine's own outputs (a loudness solve's readings) have ids starting with `__`.
    let (indices, outputs): (Vec<usize>, Vec<&str>) = (0..schedule.output_count())
        .map(|o| (o, schedule.output_slot(o).id.as_str()))
        .filter(|(_, id)| !crate::graph::is_internal(id))
        .unzip();
    let at_index = match &d.output {
        Some(id) => outputs.iter().position(|o| o == id).ok_or_else(|| {
            RenderError::Invalid(format!(
                "{at}deliverable `{}` names output `{id}`, but the graph's outputs are: {}",
                d.file,
                outputs.join(", ")
            ))
        })?,
        None if outputs.len() == 1 => 0,
        None => {
            return Err(RenderError::Invalid(format!(
            "{at}the graph has several outputs ({}): say which one deliverable `{}` is made from",
            outputs.join(", "),
            d.file
        )))
        }
    };
    Ok((indices[at_index], outputs[at_index].to_string()))
}

/// Expands `{title}` (made safe for file names) in a file pattern.
pub fn expand_file_name(pattern: &str, session: &Session) -> String {
    let title: String = session
        .title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    pattern.replace("{title}", title.trim())
}

/// Writes `frames` frames of silence through `write`.
fn silence(
    channels: usize,
    frames: u64,
    write: &mut dyn FnMut(AudioRef<'_>) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    let zeros = AudioBuffer::new(channels, 4096);
    let mut left = frames;
    while left > 0 {
        let n = left.min(4096) as usize;
        write(zeros.view(n))?;
        left -= n as u64;
    }
    Ok(())
}

impl DeliverableSink {
    /// Prepares the file for deliverable `d`.
    pub fn create(
        d: &Deliverable,
        session: &Session,
        schedule: &Schedule,
        session_rate: u32,
        out_dir: &Path,
        protected: &[PathBuf],
    ) -> Result<DeliverableSink, RenderError> {
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
        let wav_chunks = super::bwf::chunks(d, session, &tags, sample_rate, channels, format);
        let dither_bits = match d.dither {
            DitherKind::Tpdf if format.is_integer() => Some(d.bits),
            DitherKind::Tpdf => None,
            DitherKind::None => None,
        };
        let ceiling = d.ceiling_dbtp.or(session.ceiling_dbtp);
        let mut dest = out_dir.join(expand_file_name(&d.file, session));
        let lossy = lossy_job(d, &mut dest, out_dir, ceiling, &at)?;
        let pcm_kind = if lossy.is_some() {
            FileFormat::Wav
        } else {
            d.format
        };
        let seed = d.seed;
        let block = schedule.max_block().max(1024);
        let mode = if sample_rate == session_rate {
            Mode::Direct
        } else {
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // In the temporaries folder of the file it becomes: unique per deliverable (two
            // deliverables may share a file name in different folders), found and removed by
            // the next run if this one is killed (see crate::io::temp).
            let folder = dest.parent().unwrap_or(out_dir);
            let spill_path = crate::io::temp::path_in(folder, &format!("{name}.spill.wav"))
                .map_err(|source| OutputError::Io {
                    path: crate::io::temp::dir_for(folder),
                    source,
                })?;
            let spill = WavOutput::create(
                &spill_path,
                session_rate,
                channels,
                WavFormat::Float32,
                protected,
            )?;
            Mode::Spill {
                spill,
                spill_path,
                to_rate: sample_rate,
            }
        };
        let (wav, stages) = match mode {
            Mode::Direct => (
                Some(FileOut::create(
                    pcm_kind,
                    &dest,
                    sample_rate,
                    channels,
                    format,
                    &tags,
                    &wav_chunks,
                    protected,
                )?),
                Some(
                    Stages::new(channels, sample_rate, ceiling, dither_bits, seed, block).map_err(
                        |e| RenderError::Invalid(format!("{at}deliverable `{}`: {e}", d.file)),
                    )?,
                ),
            ),
            Mode::Spill { .. } => (None, None),
        };
        Ok(DeliverableSink {
            output_index,
            output_id,
            wav,
            dest,
            format,
            file_format: pcm_kind,
            tags,
            wav_chunks,
            channels,
            protected: protected.to_vec(),
            stages,
            stage_config: (ceiling, dither_bits, seed),
            mode,
            bits,
            sample_rate,
            lead_silence: crate::units::seconds_to_samples(d.lead_silence_s, f64::from(sample_rate))
                .max(0) as u64,
            tail_silence: crate::units::seconds_to_samples(d.tail_silence_s, f64::from(sample_rate))
                .max(0) as u64,
            started: false,
            lossy,
        })
    }

    /// The schedule output this deliverable is made from.
    pub fn output_index(&self) -> usize {
        self.output_index
    }

    /// Takes one block of the output (at the session rate).
    pub fn write(&mut self, block: AudioRef<'_>) -> Result<(), OutputError> {
        match &mut self.mode {
            Mode::Spill { spill, .. } => spill.write(block),
            Mode::Direct => {
                let wav = self
                    .wav
                    .as_mut()
                    .expect("direct deliverables write as they go");
                if !self.started {
                    self.started = true;
                    silence(self.channels, self.lead_silence, &mut |b| wav.write(b))?;
                }
                let stages = self
                    .stages
                    .as_mut()
                    .expect("direct deliverables have their stages");
                stages.run(block, &mut |b| wav.write(b))
            }
        }
    }

    /// Completes the file (for another rate: converts the spilled output first; a lossy one:
    /// encodes its PCM through the codec-safe solve, [`super::codec_safe`]).
    pub fn finish(mut self) -> Result<DeliveredFile, RenderError> {
        let Some(job) = self.lossy.take() else {
            return self.finish_pcm();
        };
        let tags = std::mem::take(&mut self.tags);
        let protected = self.protected.clone();
        let mut f = self.finish_pcm()?;
        let pcm = SpillFile(f.wav.path.clone());
        let (frames, outcome) = super::codec_safe::encode(
            &pcm.0,
            &job.dest,
            job.format,
            &job.settings,
            job.ceiling,
            &tags,
            &protected,
            &job.at,
        )?;
        f.wav.path = job.dest;
        f.wav.frames = frames;
        f.format = job.format;
        f.lossy = Some(outcome);
        Ok(f)
    }

    /// Completes the PCM file.
    fn finish_pcm(mut self) -> Result<DeliveredFile, RenderError> {
        if let Mode::Spill {
            spill,
            spill_path,
            to_rate,
        } = std::mem::replace(&mut self.mode, Mode::Direct)
        {
            let guard = SpillFile(spill_path.clone());
            spill.finish()?;
            let mut wav = FileOut::create(
                self.file_format,
                &self.dest,
                to_rate,
                self.channels,
                self.format,
                &self.tags,
                &self.wav_chunks,
                &self.protected,
            )?;
            let (ceiling, dither_bits, seed) = self.stage_config;
            let block = 4096;
            let mut stages = Stages::new(self.channels, to_rate, ceiling, dither_bits, seed, block)
                .map_err(RenderError::Invalid)?;
            let (mut stream, _) = StemStream::open(
                &guard.0,
                &StreamOptions {
                    target_rate: to_rate,
                    target_channels: self.channels,
                    length_frames: None,
                },
            )?;
            let total = stream.length_frames().unwrap_or(0);
            silence(self.channels, self.lead_silence, &mut |b| wav.write(b))?;
            let mut buf = AudioBuffer::new(self.channels, block);
            let mut done = 0u64;
            while done < total {
                let n = block.min((total - done) as usize);
                {
                    let mut view = buf.view_mut(n);
                    if self.channels == 2 {
                        let (l, r) = view.stereo_mut();
                        stream.read_block(&mut [l, r], n)?;
                    } else {
                        stream.read_block(&mut [view.channel_mut(0)], n)?;
                    }
                }
                stages.run(buf.view(n), &mut |b| wav.write(b))?;
                done += n as u64;
            }
            stages.flush(&mut |b| wav.write(b))?;
            silence(self.channels, self.tail_silence, &mut |b| wav.write(b))?;
            let (summary, measured) = wav.finish()?;
            return Ok(DeliveredFile {
                wav: summary,
                measured,
                format: self.file_format,
                bits: self.bits,
                sample_rate: self.sample_rate,
                output: self.output_id,
                dithered: dither_bits.is_some(),
                ceiling_dbtp: ceiling,
                safety_gain_reduction_db: stages.max_gr_db,
                lossy: None,
            });
        }
        let mut wav = self
            .wav
            .take()
            .expect("direct deliverables have their file");
        let mut stages = self
            .stages
            .take()
            .expect("direct deliverables have their stages");
        if !self.started {
            silence(self.channels, self.lead_silence, &mut |b| wav.write(b))?;
        }
        stages.flush(&mut |b| wav.write(b))?;
        silence(self.channels, self.tail_silence, &mut |b| wav.write(b))?;
        let (summary, measured) = wav.finish()?;
        Ok(DeliveredFile {
            wav: summary,
            measured,
            format: self.file_format,
            bits: self.bits,
            sample_rate: self.sample_rate,
            output: self.output_id,
            dithered: self.stage_config.1.is_some(),
            ceiling_dbtp: self.stage_config.0,
            safety_gain_reduction_db: stages.max_gr_db,
            lossy: None,
        })
    }
}

/// Removes the spilled output when done (or when the render fails).
struct SpillFile(PathBuf);

impl Drop for SpillFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent().and_then(Path::parent) {
            crate::io::temp::tidy(dir);
        }
    }
}

/// The files a render must never write over: the stems, the reference, the recipe and its
/// modules and templates.
pub(crate) fn protected_inputs(session: &Session) -> Vec<PathBuf> {
    super::preflight::inputs_of(session)
}

/// Prepares every deliverable of `session` (recipe order) from the outputs of `schedule`.
pub(crate) fn open_all(
    session: &Session,
    schedule: &Schedule,
    sample_rate: u32,
    out_dir: &Path,
) -> Result<Vec<DeliverableSink>, RenderError> {
    let protected = protected_inputs(session);
    session
        .deliverables
        .iter()
        .map(|d| DeliverableSink::create(d, session, schedule, sample_rate, out_dir, &protected))
        .collect()
}

/// Completes every deliverable, in order.
pub(crate) fn finish_all(sinks: Vec<DeliverableSink>) -> Result<Vec<DeliveredFile>, RenderError> {
    sinks.into_iter().map(DeliverableSink::finish).collect()
}

/// Completes every deliverable and runs `then` on it as soon as its file is committed, each
/// deliverable a job on up to `threads` threads ([`crate::pool`]): a file that only needs
/// committing is analysed while another is still being resampled. Results in recipe order; the
/// first error (in recipe order) wins, and deliverables not yet started are dropped, which
/// removes their temporary files.
pub(crate) fn finish_each<T: Send>(
    sinks: Vec<DeliverableSink>,
    threads: usize,
    then: impl Fn(&DeliveredFile) -> Result<T, RenderError> + Sync,
) -> Result<Vec<(DeliveredFile, T)>, RenderError> {
    let jobs: Vec<std::sync::Mutex<Option<DeliverableSink>>> = sinks
        .into_iter()
        .map(|s| std::sync::Mutex::new(Some(s)))
        .collect();
    crate::pool::try_run(threads.max(1), jobs.len(), |i| {
        let sink = jobs[i]
            .lock()
            .map_err(|_| RenderError::Invalid("a deliverable's worker panicked".into()))?
            .take()
            .expect("each job runs once");
        let file = sink.finish()?;
        let t = then(&file)?;
        Ok((file, t))
    })
}

/// A lossy file left over its ceiling (only with `codec_safe = "off"`: the solve never leaves
/// one), said as a warning.
fn codec_warning(f: &DeliveredFile) -> Option<String> {
    let (lossy, ceiling) = (f.lossy.as_ref()?, f.ceiling_dbtp?);
    (lossy.codec_true_peak_dbtp > ceiling).then(|| {
        format!(
            "{}: the decoded {} peaks at {:.2} dBTP, over its ceiling of {ceiling:.2} dBTP \
             (codec_safe = \"{}\")",
            f.wav.path.display(),
            lossy.codec,
            lossy.codec_true_peak_dbtp,
            lossy.codec_safe
        )
    })
}

/// The deliver stage: every deliverable the run (or target) stage wrote is completed (one at
/// another rate converted from its spill, limited and dithered) and committed to its file;
/// with a report, each is analysed from its file right after (see
/// [`super::report::analyse_deliverable`]), beside the others on the render's threads.
pub(super) fn finish(ctx: &mut RenderContext<'_>) -> Result<(), RenderError> {
    let analyse = ctx.meters.is_some();
    let out_dir = ctx.opts.out_dir.clone();
    let done = finish_each(std::mem::take(&mut ctx.sinks), ctx.opts.threads, |f| {
        Ok(if analyse {
            Some(super::report::analyse_deliverable(f, &out_dir)?)
        } else {
            None
        })
    })?;
    let (files, analyses): (Vec<_>, Vec<_>) = done.into_iter().unzip();
    ctx.result
        .warnings
        .extend(files.iter().filter_map(codec_warning));
    ctx.result.files = files;
    ctx.analyses = analyses.into_iter().flatten().collect();
    Ok(())
}
