//! The offline render: streamed decode → engine → deliverables, with bounded memory.
//!
//! Stems are decoded block by block, the compiled schedule runs over each block, and each
//! deliverable is written as the blocks come. The graph's latency is trimmed from the start of
//! every output so a master starts at sample 0 of the song, and the render runs on after the
//! song for the tail the processors ring on, measured and cut where it falls silent ([`tail`]).
//! Before anything is rendered, every output path is checked against every input
//! ([`preflight`]). Outputs are written atomically; an error or an interruption leaves no
//! partial file.
//!
//! [`render`] runs the stages in order, a module each, carrying one context (`RenderContext`):
//! [`inputs`] (the preflight, plan and open the stems) → [`run`](mod@run) (the full graph, on the engine's
//! offline runner) → [`target`] (the loudness solve) → [`deliver`] (the files completed) →
//! [`report`] (`report.json`, `report.md`, the stem cache). [`edits`] are the song's trims and
//! fades, applied to the outputs on their way to the deliverables.

pub mod bwf;
pub mod codec_safe;
pub mod deliver;
pub mod edits;
pub mod in_memory;
pub mod inputs;
pub mod null;
pub mod preflight;
pub mod readings;
pub mod report;
pub mod run;
mod sink_thread;
pub mod speculate;
pub mod tail;
pub mod target;
pub mod timings;
pub mod twice;

pub use inputs::{open_stems, plan_stems, StemPlan};
pub use run::run;

use crate::engine::parallel::Interrupted;
use crate::engine::Tap;
use crate::graph::{CompileOptions, GraphError, GraphSpec};
use crate::io::atomic::OutputError;
use crate::io::decode::{DecodeError, NonFinite, StemStream};
use crate::session::Session;
use deliver::{DeliveredFile, Deliveries};
use report::{CollectedMeters, NodeMeters, RenderReport, ReportCollector, ReportError, StemCache};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// The block size renders use unless told otherwise: 4096 frames. Offline, a block's size is
/// free (the bits do not depend on it), and larger blocks pay the per-block costs (the
/// schedule's dispatch, parameter fills, the batches' set-up) less often: measured side by side
/// on a quiet machine, R, M and M on two threads took 4–8 % less than with 1024 frames, L and O
/// the same. Live playback keeps its own small buffers.
pub const DEFAULT_BLOCK: usize = 4096;

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
    /// A deliverable's sample-rate conversion failed.
    #[error(transparent)]
    Resample(#[from] crate::io::resample::ResampleError),

    /// The recipe declares something the render cannot do.
    #[error("{0}")]
    Invalid(String),
    /// The render report could not be made or written (the deliverables were).
    #[error(transparent)]
    Report(#[from] ReportError),
    /// `--strict`: the loudness target cannot be reached (the outcome line); nothing was written.
    #[error("{0} (--strict: no file was written)")]
    TargetMissed(String),
    /// Stopped by the user (Ctrl-C); nothing was left behind.
    #[error("render interrupted; no output was written")]
    Interrupted,
}

impl From<Interrupted> for RenderError {
    fn from(_: Interrupted) -> Self {
        RenderError::Interrupted
    }
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
    /// Threads to render on (1 or 2 are used; the output does not depend on it).
    pub threads: usize,
    /// Write `report.json` and `report.md` beside the deliverables (default: yes).
    pub report: bool,
    /// Where the stems' hashes and meters are remembered between renders (default: nowhere;
    /// the command line uses [`StemCache::default_dir`]).
    pub stem_cache: StemCache,
    /// A loudness target that cannot be reached is an error, and nothing is written
    /// (`render --strict`); by default it is a warning.
    pub strict: bool,
    /// Render the song a second time (into a temporary folder) and say in the report whether
    /// every deliverable came out identical (`render --twice`; plugins may not be deterministic).
    pub twice: bool,
    /// Run the loudness solve's first pass as the final one when the limiter will barely act
    /// at its drive (default: yes; see [`speculate`]). The master is the same either way.
    pub speculate: speculate::Speculate,
    /// The second render's deliverables (name, SHA-256), for the report's comparison.
    second: Option<Vec<(String, String)>>,
    /// Stem meters already known (from the cache), for the report's collector.
    known_stems: Vec<(String, NodeMeters)>,
}

impl RenderOptions {
    /// The report's collector for a render of `spec` when a report is asked for, its meter
    /// taps added to `copts` (stems already known from the cache are not tapped).
    pub(crate) fn report_collector(
        &self,
        spec: &GraphSpec,
        sample_rate: f64,
        song_frames: u64,
        copts: &mut CompileOptions,
    ) -> Option<ReportCollector> {
        self.report.then(|| {
            let (c, taps) = ReportCollector::new(spec, sample_rate, song_frames, &self.known_stems);
            copts.taps.extend(taps);
            c
        })
    }

    /// Defaults: the default block, no interrupt flag, no taps.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            block_size: DEFAULT_BLOCK,
            interrupt: None,
            taps: Vec::new(),
            progress: None,
            threads: 1,
            report: true,
            stem_cache: StemCache::default(),
            strict: false,
            twice: false,
            speculate: speculate::Speculate::WhenPredicted,
            second: None,
            known_stems: Vec::new(),
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
    /// Stems with non-finite samples (muted), with how many and the first one's frame.
    pub non_finite: Vec<(String, NonFinite)>,
    /// Where the time went, stage by stage (`render --timings`).
    pub timings: Vec<timings::StageTime>,
}

/// What the stages of one render hand on to each other: made by the inputs stage, filled in
/// by the run, target and deliver stages, read by the report stage.
pub(crate) struct RenderContext<'s> {
    /// The session rendered.
    session: &'s Session,
    /// The render's settings (each pass borrows the taps and the progress).
    opts: RenderOptions,
    /// When the render started.
    started: Instant,
    /// The session rate and the song's length.
    plan: StemPlan,
    /// The graph at the session rate.
    spec: GraphSpec,
    /// The stems, opened (the run stage takes them).
    streams: Vec<StemStream>,
    /// What the stem cache knew of the stems.
    stems: inputs::KnownStems,
    /// With a loudness target: the pre-limiter master spilled by the run stage.
    pre_limiter: Option<target::Spilled>,
    /// The deliverables written, to be finished by the deliver stage.
    sinks: Deliveries,
    /// The report's meters, when a report is asked for.
    meters: Option<CollectedMeters>,
    /// With a report: each deliverable analysed from its file and hashed, by the deliver stage.
    analyses: Vec<(crate::analysis::analyze::FileAnalysis, report::HashedFile)>,
    /// The result so far.
    result: RenderResult,
}

/// Renders every deliverable of `session`, stage after stage: [`inputs`] (plan and open the
/// stems), [`run`](mod@run) (the full graph), [`target`] (with a loudness target: the limiter's drive
/// solved, and the master limiter's chain run again with it), [`deliver`] (the files
/// completed), [`report`].
pub fn render(session: &Session, mut opts: RenderOptions) -> Result<RenderResult, RenderError> {
    if opts.twice && opts.report {
        opts.second = Some(twice::second_render(session, &opts)?);
    }
    let clock = timings::Stopwatch::start();
    let mut ctx = inputs::open(session, opts)?;
    ctx.result
        .timings
        .push(clock.stop("inputs (stems opened, hashed)"));
    let clock = timings::Stopwatch::start();
    run::full_graph(&mut ctx)?;
    ctx.result
        .timings
        .push(clock.stop(if session.target_lufs.is_some() {
            "full graph (pre-limiter master spilled)"
        } else {
            "full graph (deliverables written)"
        }));
    target::meet(&mut ctx)?;
    let clock = timings::Stopwatch::start();
    deliver::finish(&mut ctx)?;
    ctx.result
        .timings
        .push(clock.stop("deliverables finished (analysed, encoded, renamed)"));
    let clock = timings::Stopwatch::start();
    report::finish(&mut ctx)?;
    ctx.result.timings.push(clock.stop("report"));
    Ok(ctx.result)
}
