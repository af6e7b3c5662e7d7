//! The deliverables' signal paths, streamed as the master is produced. A [`Feed`] is one output
//! of the graph at one sample rate: the output converted to that rate as it comes (when the
//! rate is another, [`Resample`]) and handed to its [`Stream`]s. A stream is one sequence of
//! samples: the safety limiter and dither ([`super::stages`]), the silences, the samples
//! measured as a decoder will read them back ([`crate::analysis::analyze::StreamAnalyzer`])
//! and written to every file that holds them (a WAV and a FLAC of the same PCM share one
//! stream, and its measurement).

use super::file::{FileOut, LossyJob, Plan, Shape, TempFile};
use super::stages::{silence, Stages, Write};
use super::{DeliveredFile, RenderError};
use crate::analysis::analyze::{AnalyzeOptions, Measured, StreamAnalyzer, StreamInfo};
use crate::analysis::meters::LoudnessMeter;
use crate::dsp::dither::TpdfQuantizer;
use crate::dsp::{AudioBuffer, AudioMut, AudioRef};
use crate::io::atomic::OutputError;
use crate::io::decode::{widen_finite, NonFinite};
use crate::io::quantize::quantize_planes;
use crate::io::resample::StreamResampler;
use crate::io::wav::{read_back, WavFormat};
use crate::session::FileFormat;
use std::path::PathBuf;

/// Frames per block a resampled deliverable's stages run on.
const RESAMPLED_BLOCK: usize = 4096;

/// One output of the graph at one rate, and the streams made from it.
pub(super) struct Feed {
    pub output_index: usize,
    pub sample_rate: u32,
    resample: Option<Resample>,
    streams: Vec<Stream>,
}

/// A file finished, and, for a lossy deliverable, its PCM still to encode.
pub(super) struct Finished {
    /// The deliverable's place in the recipe.
    pub index: usize,
    pub file: DeliveredFile,
    pub lossy: Option<(LossyJob, TempFile)>,
}

impl Feed {
    /// A feed of output `output_index` (`channels` channels, at `session_rate`) at `rate`.
    pub fn new(
        output_index: usize,
        channels: usize,
        session_rate: u32,
        rate: u32,
    ) -> Result<Feed, RenderError> {
        let resample = if rate == session_rate {
            None
        } else {
            Some(Resample::new(
                session_rate,
                rate,
                channels,
                Precision::least(session_rate, rate),
            )?)
        };
        Ok(Feed {
            output_index,
            sample_rate: rate,
            resample,
            streams: Vec::new(),
        })
    }

    /// Adds deliverable `index` (planned as `plan`, its file `file`) to the stream holding its
    /// samples, or to a new one whose stages run on blocks of up to `block` frames (a resampled
    /// feed: [`RESAMPLED_BLOCK`]); `analyse`: measure the samples for the report.
    pub fn attach(
        &mut self,
        index: usize,
        plan: Plan,
        file: FileOut,
        analyse: bool,
        block: usize,
    ) -> Result<(), RenderError> {
        let analyse = (analyse && plan.lossy.is_none()) || file.needs_measurement();
        if let Some(r) = &mut self.resample {
            r.serve(&plan)?;
        }
        let shape = plan.shape();
        let found = self.streams.iter().position(|s| s.shape.shares(&shape));
        let stream = match found {
            Some(s) => &mut self.streams[s],
            None => {
                let block = if self.resample.is_some() {
                    RESAMPLED_BLOCK
                } else {
                    block
                };
                self.streams.push(Stream::new(&plan, block)?);
                self.streams.last_mut().expect("just pushed")
            }
        };
        if analyse && stream.analyzer.is_none() {
            stream.analyzer = StreamAnalyzer::new(
                plan.sample_rate,
                plan.channels,
                &AnalyzeOptions::figures_only(),
            )
            .ok();
        }
        stream.files.push(Slot { index, plan, file });
        Ok(())
    }

    /// The first of the feed's deliverables in the recipe.
    pub fn first_index(&self) -> usize {
        self.streams
            .iter()
            .flat_map(|s| s.files.iter().map(|f| f.index))
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Deliverables made from the feed.
    pub fn files(&self) -> usize {
        self.streams.iter().map(|s| s.files.len()).sum()
    }

    /// The feed's work per frame of the output, roughly, in units of one stream measured
    /// (conversion, the streams' stages and measurements, their encoders: FLAC costs most,
    /// about one and a half measurements by perf on the loud master), to share the feeds
    /// between threads.
    pub fn weight(&self) -> f64 {
        let per_frame: f64 = self
            .streams
            .iter()
            .map(|s| {
                let files: f64 = s
                    .files
                    .iter()
                    .map(|f| match f.plan.file_format {
                        FileFormat::Flac => 1.5,
                        _ => 0.3,
                    })
                    .sum();
                let measured = if s.analyzer.is_some() { 1.0 } else { 0.0 };
                let limited = if s.shape.ceiling.is_some() { 2.0 } else { 0.0 };
                measured + limited + files
            })
            .sum();
        let convert = if self.resample.is_some() { 0.5 } else { 0.0 };
        (convert + per_frame) * f64::from(self.sample_rate)
    }

    /// The feed as one feed per stream when it converts nothing (its streams then share no
    /// work), so that threads can share them out; itself otherwise.
    pub fn per_stream(self) -> Vec<Feed> {
        if self.resample.is_some() || self.streams.len() < 2 {
            return vec![self];
        }
        let Feed {
            output_index,
            sample_rate,
            streams,
            ..
        } = self;
        streams
            .into_iter()
            .map(|s| Feed {
                output_index,
                sample_rate,
                resample: None,
                streams: vec![s],
            })
            .collect()
    }

    /// The loudness meter of a stream whose samples are those of the output as it comes (at the
    /// output's rate, without a safety limiter, dither or lead silence), each read back as its
    /// file holds it, lent for its first `frames` frames ([`StreamAnalyzer::lend_loudness`]),
    /// with the format they are read back as.
    pub fn lend_loudness(&mut self, frames: u64) -> Option<(LoudnessMeter, WavFormat)> {
        if self.resample.is_some() {
            return None;
        }
        self.streams.iter_mut().find_map(|s| {
            let plain = s.plain();
            let meter = s
                .analyzer
                .as_mut()
                .filter(|_| plain)?
                .lend_loudness(frames)?;
            Some((meter, s.shape.format))
        })
    }

    /// The whole analysis of a stream whose samples are those of the output as it comes (as
    /// for [`Self::lend_loudness`]), lent before anything is written, to be fed the output's
    /// blocks elsewhere, each read back as its file holds it (the format returned); the stream
    /// measures nothing meanwhile and counts the frames it writes. [`Self::return_analyzer`]
    /// gives it back.
    pub fn lend_analyzer(&mut self) -> Option<(StreamAnalyzer, WavFormat)> {
        if self.resample.is_some() {
            return None;
        }
        self.streams.iter_mut().find_map(|s| {
            if !s.plain() || s.analyzer.as_ref()?.loudness_is_lent() {
                return None;
            }
            s.lent = Some(0);
            Some((s.analyzer.take()?, s.shape.format))
        })
    }

    /// Gives `analyzer` back to the stream that lent it ([`Self::lend_analyzer`]), fed
    /// `frames` frames: `Err(analyzer)` when none of this feed's streams lent one; the reason
    /// when one did but wrote another number of frames meanwhile (the analysis would not be its
    /// samples').
    pub fn return_analyzer(
        &mut self,
        analyzer: StreamAnalyzer,
        frames: u64,
    ) -> Result<Result<(), String>, StreamAnalyzer> {
        let Some(s) = self.streams.iter_mut().find(|s| s.lent.is_some()) else {
            return Err(analyzer);
        };
        let written = s.lent.take().unwrap_or(0);
        s.analyzer = Some(analyzer);
        Ok((written == frames).then_some(()).ok_or_else(|| {
            format!("the lent analysis measured {frames} frames of the {written} written")
        }))
    }

    /// Gives `meter` back to the stream that lent it, if it is one of this feed's: `Err(meter)`
    /// when not; the reason when it is but cannot take it
    /// ([`StreamAnalyzer::return_loudness`]).
    pub fn return_loudness(
        &mut self,
        meter: LoudnessMeter,
    ) -> Result<Result<(), String>, LoudnessMeter> {
        match self
            .streams
            .iter_mut()
            .filter_map(|s| s.analyzer.as_mut())
            .find(|a| a.loudness_is_lent())
        {
            Some(a) => Ok(a.return_loudness(meter)),
            None => Err(meter),
        }
    }

    /// The analyzers of the feed's streams.
    pub fn analyzers(&mut self) -> impl Iterator<Item = &mut StreamAnalyzer> + '_ {
        self.streams.iter_mut().filter_map(|s| s.analyzer.as_mut())
    }

    /// Takes one block of the output.
    pub fn write(&mut self, block: AudioRef<'_>) -> Result<(), RenderError> {
        match &mut self.resample {
            None => {
                for s in &mut self.streams {
                    s.write(block)?;
                }
                Ok(())
            }
            Some(r) => r.push(block, &mut self.streams),
        }
    }

    /// Completes every file of the feed.
    pub fn finish(mut self) -> Result<Vec<Finished>, RenderError> {
        if let Some(r) = self.resample.as_mut() {
            r.end(&mut self.streams)?;
        }
        let mut done = Vec::new();
        for s in self.streams {
            done.extend(s.finish()?);
        }
        Ok(done)
    }
}

/// The conversion of an output to another rate, block by block as the output comes, into
/// blocks of [`RESAMPLED_BLOCK`] frames. The samples are those a 32-bit float file of the
/// output read back through [`StreamResampler`] gives, as deliverables at another rate were
/// made before they were streamed (a spill file): each sample rounded to `f32` first, and
/// non-finite results muted.
struct Resample {
    src: Converter,
    block: AudioBuffer,
    fill: usize,
    /// Whether every frame gathered into `block` so far is finite (found as they are copied
    /// in: the block is then not scanned again before it is handed on).
    finite: bool,
    non_finite: NonFinite,
    /// Frames handed on so far.
    at: u64,
}

impl Resample {
    fn new(
        from: u32,
        to: u32,
        channels: usize,
        precision: Precision,
    ) -> Result<Resample, RenderError> {
        Ok(Resample {
            src: Converter::new(from, to, channels, precision)?,
            block: AudioBuffer::new(channels, RESAMPLED_BLOCK),
            fill: 0,
            finite: true,
            non_finite: NonFinite::default(),
            at: 0,
        })
    }

    /// Makes the converter precise enough for the deliverable planned as `plan` too (before
    /// the first block: a converter built again starts empty).
    fn serve(&mut self, plan: &Plan) -> Result<(), RenderError> {
        let (from, to, channels) = self.src.rates_and_channels();
        let precision = Precision::for_plan(plan, from);
        if precision > self.src.precision() {
            self.src = Converter::new(from, to, channels, precision)?;
        }
        Ok(())
    }

    /// The converter, and what gathers its output into blocks for `streams`.
    fn parts<'a>(&'a mut self, streams: &'a mut [Stream]) -> (&'a mut Converter, Gather<'a>) {
        let Resample {
            src,
            block,
            fill,
            finite,
            non_finite,
            at,
        } = self;
        (
            src,
            Gather {
                block,
                fill,
                finite,
                non_finite,
                at,
                streams,
            },
        )
    }

    /// Converts `input` and hands every completed block to `streams`.
    fn push(&mut self, input: AudioRef<'_>, streams: &mut [Stream]) -> Result<(), RenderError> {
        let (src, mut gather) = self.parts(streams);
        input.with_planes(|planes| match src {
            Converter::Double(r) => r.push(
                planes,
                input.frames(),
                |x| f64::from(x as f32),
                |out: &[&[f64]], n| gather.take(out, n),
            ),
            Converter::Single(r) => r.push(
                planes,
                input.frames(),
                |x| x as f32,
                |out: &[&[f32]], n| gather.take(out, n),
            ),
        })
    }

    /// The end of the output: the converter flushed, the last block handed on.
    fn end(&mut self, streams: &mut [Stream]) -> Result<(), RenderError> {
        let (src, mut gather) = self.parts(streams);
        match src {
            Converter::Double(r) => r.end(|out: &[&[f64]], n| gather.take(out, n))?,
            Converter::Single(r) => r.end(|out: &[&[f32]], n| gather.take(out, n))?,
        }
        gather.hand_on()
    }
}

/// The arithmetic a rate conversion runs in, by what the converted samples become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precision {
    /// 32-bit float: down to a lower rate for 16-bit files and lossy encodes. The
    /// conversion's rounding noise (under −122 dBFS RMS, tested in [`crate::io::resample`])
    /// lies some 30 dB under a 16-bit file's own (−96 dBFS RMS with TPDF dither); the FFTs run
    /// on twice the lanes.
    Single,
    /// 64-bit float: for 24-bit and float files, whose least significant bit (−138 dBFS for
    /// 24-bit) the 32-bit conversion's noise would exceed, and for every conversion up (where
    /// the 32-bit one is 12 dB noisier).
    Double,
}

impl Precision {
    /// The least a conversion from `from_hz` to `to_hz` may use, whatever it feeds.
    fn least(from_hz: u32, to_hz: u32) -> Precision {
        if to_hz < from_hz {
            Precision::Single
        } else {
            Precision::Double
        }
    }

    /// What a conversion to `plan`'s rate from `from_hz` needs for it.
    fn for_plan(plan: &Plan, from_hz: u32) -> Precision {
        let coarse = plan.lossy.is_some() || plan.format == WavFormat::Int16;
        if coarse {
            Precision::least(from_hz, plan.sample_rate)
        } else {
            Precision::Double
        }
    }
}

/// A [`StreamResampler`] in one of the [`Precision`]s.
enum Converter {
    Double(StreamResampler<f64>),
    Single(StreamResampler<f32>),
}

impl Converter {
    fn new(from: u32, to: u32, channels: usize, precision: Precision) -> Result<Self, RenderError> {
        Ok(match precision {
            Precision::Double => Converter::Double(StreamResampler::new(from, to, channels)?),
            Precision::Single => Converter::Single(StreamResampler::new(from, to, channels)?),
        })
    }

    fn precision(&self) -> Precision {
        match self {
            Converter::Double(_) => Precision::Double,
            Converter::Single(_) => Precision::Single,
        }
    }

    fn rates_and_channels(&self) -> (u32, u32, usize) {
        match self {
            Converter::Double(r) => r.rates_and_channels(),
            Converter::Single(r) => r.rates_and_channels(),
        }
    }
}

/// The converted frames gathered into blocks for the streams.
struct Gather<'a> {
    block: &'a mut AudioBuffer,
    fill: &'a mut usize,
    finite: &'a mut bool,
    non_finite: &'a mut NonFinite,
    at: &'a mut u64,
    streams: &'a mut [Stream],
}

impl Gather<'_> {
    fn take<T: Copy + Into<f64>>(&mut self, out: &[&[T]], n: usize) -> Result<(), RenderError> {
        let mut k = 0;
        while k < n {
            let m = (RESAMPLED_BLOCK - *self.fill).min(n - k);
            for (c, plane) in out.iter().enumerate() {
                let dst =
                    &mut self.block.channel_mut(c, RESAMPLED_BLOCK)[*self.fill..*self.fill + m];
                *self.finite &= widen_finite(&plane[k..k + m], dst);
            }
            *self.fill += m;
            k += m;
            if *self.fill == RESAMPLED_BLOCK {
                self.hand_on()?;
            }
        }
        Ok(())
    }

    /// Hands the gathered frames (if any) to the streams.
    fn hand_on(&mut self) -> Result<(), RenderError> {
        let n = std::mem::take(self.fill);
        if n == 0 {
            return Ok(());
        }
        if !std::mem::replace(self.finite, true) {
            let mut view = self.block.view_mut(n);
            for c in 0..view.channels() {
                self.non_finite
                    .mute(&mut [view.channel_mut(c)], n, *self.at);
            }
        }
        *self.at += n as u64;
        match &mut *self.streams {
            // Its only stream runs its stages on the block where it is.
            [only] => only.write_in_place(self.block.view_mut(n))?,
            streams => {
                for s in streams.iter_mut() {
                    s.write(self.block.view(n))?;
                }
            }
        }
        Ok(())
    }
}

/// One sequence of samples and the files that hold it.
struct Stream {
    /// What every file of the stream shares.
    shape: Shape,
    stages: Stages,
    analyzer: Option<StreamAnalyzer>,
    /// While the analyzer is lent ([`Feed::lend_analyzer`]), the frames written meanwhile.
    lent: Option<u64>,
    files: Vec<Slot>,
    started: bool,
    /// An integer stream's samples quantized once for its analysis and its files (interleaved,
    /// up to [`QUANTIZED_FRAMES`] frames at a time); empty for a float stream.
    ints: Vec<i32>,
}

/// Frames an integer stream quantizes at a time, at most.
const QUANTIZED_FRAMES: usize = 4096;

/// A file of a stream.
struct Slot {
    index: usize,
    plan: Plan,
    file: FileOut,
}

impl Stream {
    fn new(plan: &Plan, block: usize) -> Result<Stream, RenderError> {
        let stages = Stages::new(
            plan.channels,
            plan.sample_rate,
            plan.ceiling,
            plan.dither.map(|(bits, _)| bits),
            plan.dither.map_or(0, |(_, seed)| seed),
            block,
        )
        .map_err(|e| {
            RenderError::Invalid(format!("{}deliverable `{}`: {e}", plan.at, plan.name))
        })?;
        Ok(Stream {
            shape: plan.shape(),
            stages,
            analyzer: None,
            lent: None,
            files: Vec::new(),
            started: false,
            ints: if plan.format.is_integer() {
                vec![0; QUANTIZED_FRAMES * plan.channels]
            } else {
                Vec::new()
            },
        })
    }

    /// Whether its samples are the output's as they come (at the output's rate: no safety
    /// limiter, dither or lead silence), and nothing was written yet.
    fn plain(&self) -> bool {
        self.shape.ceiling.is_none()
            && self.shape.dither.is_none()
            && self.shape.lead_silence == 0
            && !self.started
    }

    fn write(&mut self, block: AudioRef<'_>) -> Result<(), OutputError> {
        self.feed(|_, stages, out| stages.run(block, out))
    }

    /// [`Self::write`] of a block the caller is done with: the stages run on it in place.
    fn write_in_place(&mut self, block: AudioMut<'_>) -> Result<(), OutputError> {
        self.feed(|_, stages, out| stages.run_in_place(block, out))
    }

    /// Runs `f` with the stages and where their output goes (the analyzer and the files), the
    /// lead silence written first if nothing was yet.
    fn feed(
        &mut self,
        f: impl FnOnce(&Shape, &mut Stages, &mut Write<'_>) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        let Stream {
            shape,
            stages,
            analyzer,
            lent,
            files,
            started,
            ints,
        } = self;
        let mut out = |b: AudioRef<'_>, dither: Option<&mut TpdfQuantizer>| {
            if let Some(written) = lent.as_mut() {
                *written += b.frames() as u64;
            }
            emit(b, dither, shape.format, analyzer, files, ints)
        };
        if !*started {
            *started = true;
            silence(shape.channels, shape.lead_silence, &mut out)?;
        }
        f(shape, stages, &mut out)
    }

    /// Pushes the stages' delay out, adds the tail silence and completes every file.
    fn finish(mut self) -> Result<Vec<Finished>, RenderError> {
        self.feed(|shape, stages, out| {
            stages.flush(out)?;
            silence(shape.channels, shape.tail_silence, out)
        })?;
        let measured = self.analyzer.take().map(StreamAnalyzer::finish);
        let mut done = Vec::with_capacity(self.files.len());
        for slot in self.files {
            done.push(slot.finish(measured.as_ref(), &self.stages, &self.shape)?);
        }
        Ok(done)
    }
}

/// Hands a block of the stream's final samples to its analyzer (as the file's decoder will
/// read them: quantized to the word length) and to each of its files, dithered by `dither` as
/// they are quantized when it is given. An integer stream with a dither, an analysis or several
/// files quantizes once for all of them (into `ints`).
fn emit(
    b: AudioRef<'_>,
    dither: Option<&mut TpdfQuantizer>,
    format: WavFormat,
    analyzer: &mut Option<StreamAnalyzer>,
    files: &mut [Slot],
    ints: &mut [i32],
) -> Result<(), OutputError> {
    if format.is_integer() && (dither.is_some() || analyzer.is_some() || files.len() > 1) {
        return emit_ints(b, format.bits(), dither, analyzer, files, ints);
    }
    debug_assert!(dither.is_none(), "only an integer stream is dithered");
    if let Some(a) = analyzer.as_mut() {
        b.with_planes(|planes| a.push(planes, b.frames(), |from, to| read_back(from, to, format)));
    }
    for s in files.iter_mut() {
        s.file.write(b)?;
    }
    Ok(())
}

/// [`emit`] of an integer stream: each part of `b` that `ints` holds quantized once (dithered
/// by `dither` when it is given; the analysis gets the values read back from the integers),
/// the integers written to every file.
fn emit_ints(
    b: AudioRef<'_>,
    bits: u32,
    mut dither: Option<&mut TpdfQuantizer>,
    analyzer: &mut Option<StreamAnalyzer>,
    files: &mut [Slot],
    ints: &mut [i32],
) -> Result<(), OutputError> {
    let channels = b.channels();
    let step = ints.len() / channels;
    // Quantizes `planes` into `ints` (and `back`); the samples clipped (none once dithered:
    // the dither's output lies within the word length).
    let mut quantize = |planes: &[&[f64]], ints: &mut [i32], back: Option<&mut [&mut [f64]]>| {
        let n = ints.len() / channels;
        match dither.as_deref_mut() {
            Some(d) => {
                d.quantize(planes, n, ints, back);
                0
            }
            None => quantize_planes(planes, n, bits, ints, back),
        }
    };
    let mut at = 0;
    while at < b.frames() {
        let n = step.min(b.frames() - at);
        let part = b.slice(at, at + n);
        let ints = &mut ints[..n * channels];
        let clipped = match analyzer.as_mut() {
            Some(a) => {
                let mut clipped = 0;
                a.push_with(n, |range, back| {
                    let dst = &mut ints[range.start * channels..range.end * channels];
                    part.slice(range.start, range.end).with_planes(|planes| {
                        clipped += quantize(planes, dst, Some(back));
                    });
                });
                clipped
            }
            None => part.with_planes(|planes| quantize(planes, ints, None)),
        };
        for s in files.iter_mut() {
            s.file.write_ints(ints, clipped)?;
        }
        at += n;
    }
    Ok(())
}

impl Slot {
    /// Completes the file (its `bext` loudness from `measured`) and describes it.
    fn finish(
        self,
        measured: Option<&Measured>,
        stages: &Stages,
        shape: &Shape,
    ) -> Result<Finished, RenderError> {
        let plan = self.plan;
        let figures = match (&plan.lossy, measured) {
            (None, Some(m)) => Some(m.figures(stream_info(&plan))),
            _ => None,
        };
        let (wav, measured) = self.file.finish(figures)?;
        // A lossy deliverable's PCM is committed: removed once encoded (or on failure).
        let lossy = plan.lossy.map(|job| (job, TempFile(wav.path.clone())));
        Ok(Finished {
            index: self.index,
            file: DeliveredFile {
                wav,
                measured,
                format: plan.file_format,
                bits: plan.bits,
                sample_rate: plan.sample_rate,
                output: plan.output_id,
                dithered: shape.dither.is_some(),
                ceiling_dbtp: shape.ceiling,
                safety_gain_reduction_db: stages.max_gr_db,
                lossy: None,
            },
            lossy,
        })
    }
}

/// What a decoder says of the file `plan` writes (its codec's name as [`crate::io::decode`]
/// reports it).
fn stream_info(plan: &Plan) -> StreamInfo {
    let codec = match (plan.file_format, plan.format) {
        (FileFormat::Flac, _) => "flac",
        (_, WavFormat::Int16) => "pcm_s16le",
        (_, WavFormat::Int24) => "pcm_s24le",
        (_, WavFormat::Float32) => "pcm_f32le",
    };
    StreamInfo {
        path: PathBuf::from(&plan.dest),
        codec: codec.into(),
        bits: Some(plan.format.bits()),
        lossless: true,
    }
}
