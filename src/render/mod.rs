//! The offline render: streamed decode → engine → deliverables, with bounded memory.
//!
//! Stems are decoded block by block, the compiled schedule runs over each block, and each
//! deliverable is written as the blocks come. The graph's latency is trimmed from the start of
//! every output so a master starts at sample 0 of the song, and the render runs on for the
//! latency plus the declared tails so nothing is cut at the end. Outputs are written atomically;
//! an error or an interruption leaves no partial file.

pub mod deliver;
pub mod edits;
pub mod target;

use crate::analysis::report::{self, CollectedMeters, RenderReport, ReportCollector, ReportError};
use crate::engine::{Schedule, Tap};
use crate::graph::{compile, CompileOptions, GraphError};
use crate::io::atomic::OutputError;
use crate::io::decode::{DecodeError, Decoder, StemStream, StreamOptions};
use crate::session::Session;
use deliver::{DeliverableSink, DeliveredFile};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The block size renders use unless told otherwise.
pub const DEFAULT_BLOCK: usize = 1024;

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A file could not be read.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A stem the recipe declares could not be read.
    #[error("{}stem `{name}`: {source}", crate::graph::spec::at(.origin))]
    Stem {
        /// The stem's name.
        name: String,
        /// Where the recipe declared it.
        origin: Option<crate::graph::Origin>,
        /// Why it could not be read.
        source: DecodeError,
    },
    /// The graph does not validate.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// An output could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),

    /// The recipe declares something the render cannot do.
    #[error("{0}")]
    Invalid(String),
    /// The render report could not be made or written (the deliverables were).
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Stopped by the user (Ctrl-C); nothing was left behind.
    #[error("render interrupted; no output was written")]
    Interrupted,
}

/// Settings of a render.
pub struct RenderOptions {
    /// Folder the deliverables go to.
    pub out_dir: PathBuf,
    /// Frames per engine block.
    pub block_size: usize,
    /// Set from another thread (Ctrl-C) to stop the render.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Meters to attach to nodes.
    pub taps: Vec<(String, Box<dyn Tap>)>,
    /// Called after each block with (frames done, frames in all).
    pub progress: Option<Box<dyn FnMut(u64, u64)>>,
    /// Write `report.json` and `report.md` beside the deliverables (default: yes).
    pub report: bool,
}

impl RenderOptions {
    /// Defaults: the default block, no interrupt flag, no taps.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            block_size: DEFAULT_BLOCK,
            interrupt: None,
            taps: Vec::new(),
            progress: None,
            report: true,
        }
    }
}

/// What a render did.
pub struct RenderResult {
    /// Session sample rate.
    pub sample_rate: u32,
    /// Song length in frames (the longest stem).
    pub song_frames: u64,
    /// Latency trimmed from the outputs.
    pub latency: usize,
    /// Tail rendered after the song.
    pub tail: usize,
    /// The files written.
    pub files: Vec<DeliveredFile>,
    /// Warnings (resampled or padded stems, unconnected nodes…).
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The taps, with the node each observed, after the last block.
    pub taps: Vec<(String, Box<dyn Tap>)>,
    /// How the loudness target was met, when the recipe set one.
    pub target: Option<target::TargetOutcome>,
    /// The render report (also written as `report.json` / `report.md`), if asked for.
    pub report: Option<RenderReport>,
}

/// What the stems say about the session: its rate and length.
pub struct StemPlan {
    /// The session rate.
    pub sample_rate: u32,
    /// The longest stem, in frames at the session rate.
    pub song_frames: u64,
}

/// Reads the stems' headers to decide the session rate (the recipe's, else the most common stem
/// rate) and the song length (the longest stem at that rate).
pub fn plan_stems(session: &Session) -> Result<StemPlan, RenderError> {
    if session.stems.is_empty() {
        return Err(RenderError::Invalid(format!(
            "{}: the recipe declares no stems",
            session.recipe.display()
        )));
    }
    let mut infos = Vec::new();
    for stem in &session.stems {
        let decoder = Decoder::open(&stem.path).map_err(|source| RenderError::Stem {
            name: stem.name.clone(),
            origin: stem.origin.clone(),
            source,
        })?;
        infos.push(decoder.info().clone());
    }
    let sample_rate = session.sample_rate.unwrap_or_else(|| {
        let mut counts: Vec<(u32, usize)> = Vec::new();
        for i in &infos {
            match counts.iter_mut().find(|c| c.0 == i.sample_rate) {
                Some(c) => c.1 += 1,
                None => counts.push((i.sample_rate, 1)),
            }
        }
        // Most common; ties go to the first stem's rate.
        counts
            .iter()
            .max_by_key(|c| {
                (
                    c.1,
                    std::cmp::Reverse(infos.iter().position(|i| i.sample_rate == c.0)),
                )
            })
            .unwrap()
            .0
    });
    let song_frames = infos
        .iter()
        .map(|i| {
            let frames = i.frames.unwrap_or(0);
            if i.sample_rate == sample_rate {
                frames
            } else {
                (frames as f64 * f64::from(sample_rate) / f64::from(i.sample_rate)).round() as u64
            }
        })
        .max()
        .unwrap_or(0);
    Ok(StemPlan {
        sample_rate,
        song_frames,
    })
}

/// Opens every stem as a stream at the session rate, padded to the song length.
pub fn open_stems(
    session: &Session,
    plan: &StemPlan,
) -> Result<(Vec<StemStream>, Vec<String>), RenderError> {
    let mut streams = Vec::new();
    let mut warnings = Vec::new();
    for stem in &session.stems {
        let (stream, w) = StemStream::open(
            &stem.path,
            &StreamOptions {
                target_rate: plan.sample_rate,
                target_channels: stem.channels,
                length_frames: Some(plan.song_frames),
            },
        )
        .map_err(|source| RenderError::Stem {
            name: stem.name.clone(),
            origin: stem.origin.clone(),
            source,
        })?;
        warnings.extend(w.iter().map(|w| w.to_string()));
        streams.push(stream);
    }
    Ok((streams, warnings))
}

/// Fills the schedule's inputs with the next `frames` frames of every stem.
pub fn read_inputs(
    schedule: &mut Schedule,
    streams: &mut [StemStream],
    frames: usize,
) -> Result<(), DecodeError> {
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut input = schedule.input_mut(i, frames);
        if input.channels() == 2 {
            let (l, r) = input.stereo_mut();
            stream.read_block(&mut [l, r], frames)?;
        } else {
            stream.read_block(&mut [input.channel_mut(0)], frames)?;
        }
    }
    Ok(())
}

/// Runs the schedule over the whole song, handing every output block (latency-trimmed, with the
/// tail) to `sink(output_index, song_position, block)`.
pub fn run<F>(
    schedule: &mut Schedule,
    streams: &mut [StemStream],
    song_frames: u64,
    block: usize,
    interrupt: Option<&AtomicBool>,
    mut progress: Option<&mut dyn FnMut(u64, u64)>,
    mut sink: F,
) -> Result<(), RenderError>
where
    F: FnMut(usize, u64, crate::dsp::AudioRef<'_>) -> Result<(), RenderError>,
{
    let block = block.min(schedule.max_block()).max(1);
    let tail = schedule.tail() as u64;
    let latencies: Vec<u64> = (0..schedule.output_count())
        .map(|o| schedule.output_slot(o).latency as u64)
        .collect();
    let total = song_frames + tail + latencies.iter().copied().max().unwrap_or(0);
    // Streams past their end read silence, so the tail and the latency are rendered from zeros.
    let mut done: u64 = 0;
    while done < total {
        if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(RenderError::Interrupted);
        }
        let n = block.min((total - done) as usize);
        read_inputs(schedule, streams, n)?;
        assert_no_alloc::assert_no_alloc(|| schedule.process(n));
        for (o, &lat) in latencies.iter().enumerate() {
            let start = lat.max(done).min(done + n as u64);
            let end = (lat + song_frames + tail).min(done + n as u64).max(start);
            if end > start {
                let view = schedule
                    .output(o, n)
                    .slice((start - done) as usize, (end - done) as usize);
                sink(o, start - lat, view)?;
            }
        }
        done += n as u64;
        if let Some(p) = progress.as_mut() {
            p(done, total);
        }
    }
    Ok(())
}

/// Renders every deliverable of `session`; with a loudness target, solves for the master
/// limiter's drive first (see [`target`]).
pub fn render(session: &Session, mut opts: RenderOptions) -> Result<RenderResult, RenderError> {
    let started = Instant::now();
    if session.deliverables.is_empty() {
        return Err(RenderError::Invalid(format!(
            "{}: the recipe declares no deliverables (add e.g. s:deliver {{ bits = 24 }})",
            session.recipe.display()
        )));
    }
    let plan = plan_stems(session)?;
    let (streams, warnings) = open_stems(session, &plan)?;
    let spec = session.graph_at(f64::from(plan.sample_rate));
    let (mut result, meters) = match session.target_lufs {
        None => render_graph(
            session,
            &spec,
            streams,
            plan.song_frames,
            plan.sample_rate,
            &mut opts,
            0,
        )?,
        Some(target) => {
            target::render_to_target(session, &spec, streams, &plan, target, &mut opts)?
        }
    };
    result.warnings.splice(0..0, warnings);
    result.seconds = started.elapsed().as_secs_f64();
    if let Some(meters) = meters {
        let report = report::build_report(report::ReportInputs {
            session,
            sample_rate: plan.sample_rate,
            song_frames: plan.song_frames,
            latency: result.latency,
            tail: result.tail,
            files: &result.files,
            out_dir: &opts.out_dir,
            meters,
            null_test: None,
            loudness_target: result.target.clone(),
            warnings: &result.warnings,
            render_seconds: result.seconds,
        })?;
        report::write_report(&opts.out_dir, &report, &protected_inputs(session))?;
        result.report = Some(report);
    }
    Ok(result)
}

/// The files a render must never write over: the stems, the reference and the recipe.
fn protected_inputs(session: &Session) -> Vec<PathBuf> {
    let mut protected: Vec<PathBuf> = session.stems.iter().map(|s| s.path.clone()).collect();
    protected.extend(session.reference.clone());
    protected.push(session.recipe.clone());
    protected
}

/// Compiles `spec`, runs it over `streams` and writes the session's deliverables from its
/// outputs. `song_frames` counts from the first frame of the streams. Returns the report's
/// meters too when `opts.report` asks for them.
pub(crate) fn render_graph(
    session: &Session,
    spec: &crate::graph::GraphSpec,
    mut streams: Vec<StemStream>,
    song_frames: u64,
    sample_rate: u32,
    opts: &mut RenderOptions,
    extra_tail: usize,
) -> Result<(RenderResult, Option<CollectedMeters>), RenderError> {
    let mut copts = CompileOptions::new(f64::from(sample_rate), opts.block_size);
    copts.taps = std::mem::take(&mut opts.taps);
    // The report's meters: taps on stems and outputs, gain reduction sampled per block.
    let mut collector = opts.report.then(|| {
        let (c, taps) = ReportCollector::new(spec, f64::from(sample_rate));
        copts.taps.extend(taps);
        c
    });
    let compiled = compile(spec, copts)?;
    let warnings = compiled.warnings;
    let mut schedule = compiled.schedule;
    if let Some(c) = collector.as_mut() {
        c.watch(&schedule);
    }
    let protected = protected_inputs(session);
    let rate = f64::from(sample_rate);
    let edits = session
        .edits
        .resolve(song_frames + (schedule.tail() + extra_tail) as u64, rate);
    let mut scratch =
        crate::dsp::AudioBuffer::new(crate::dsp::buffer::MAX_CHANNELS, opts.block_size);
    let mut sinks = Vec::new();
    for d in &session.deliverables {
        sinks.push(DeliverableSink::create(
            d,
            session,
            &schedule,
            sample_rate,
            &opts.out_dir,
            &protected,
        )?);
    }
    // After each block: the report's telemetry sampling, then the caller's progress.
    let mut user_progress = opts.progress.take();
    let mut last_done = 0u64;
    let mut after_block = |done: u64, total: u64| {
        if let Some(c) = collector.as_mut() {
            c.observe_block(done - last_done);
        }
        last_done = done;
        if let Some(p) = user_progress.as_mut() {
            p(done, total);
        }
    };
    run(
        &mut schedule,
        &mut streams,
        song_frames,
        opts.block_size,
        opts.interrupt.as_deref(),
        Some(&mut after_block),
        |o, pos, block| {
            let Some(block) = edits.apply(pos, block, &mut scratch) else {
                return Ok(());
            };
            for s in sinks.iter_mut().filter(|s| s.output_index() == o) {
                s.write(block)?;
            }
            Ok(())
        },
    )?;
    let mut files = Vec::new();
    for s in sinks {
        files.push(s.finish()?);
    }
    opts.progress = user_progress;
    let mut taps = schedule.take_taps();
    let meters = collector.map(|c| c.finish(&mut taps));
    Ok((
        RenderResult {
            sample_rate,
            song_frames,
            latency: schedule.latency(),
            tail: schedule.tail(),
            files,
            warnings,
            seconds: 0.0,
            taps,
            target: None,
            report: None,
        },
        meters,
    ))
}
