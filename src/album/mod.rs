//! Albums: every song of an album from one template (or its own recipe), an album loudness
//! policy, every deliverable in one run, rendered in parallel and incrementally, with one report.
//!
//! An album renders in three phases, each song's work being an independent job:
//!
//! 1. **measure** ([`song::measure`]): each song's full graph runs once; the signal entering its
//!    master limiter is spilled to a work file and measured, and the song's own drive to the
//!    target is solved on the spill when the policy needs it;
//! 2. **gain** ([`gain::solve`]): the policy gives every song its limiter drive: its own (per
//!    track) or one shared drive (album gain, keyed to the loudest song or the whole album);
//! 3. **render** ([`song::render`]): each song's limiter chain runs over its spill with its drive
//!    and writes its deliverables through the ordinary deliverable pipeline (WAV, FLAC with tags,
//!    resampled and dithered CD masters), which are then measured.
//!
//! The **report** ([`report`]) and the **CD image** ([`cd`]) are made at the end.
//!
//! Jobs run on a pool of worker threads ([`pool`]) in one process ([`render_album`]), or as
//! separate processes on many machines ([`plan`]: `--plan`, `--job K`, `--finish`), with the
//! same code and the same bits. Every job leaves a record carrying the hash of its inputs
//! ([`hash`], [`work`]); a job whose record is current is skipped, which makes renders
//! incremental.
//!
//! What the album file declares is plain data ([`spec`]), read by [`crate::script::load_album`].

pub mod cd;
pub mod ddp;
pub mod gain;
pub mod hash;
pub mod plan;
pub use crate::pool;
pub mod report;
mod run;
pub mod song;
pub mod spec;
pub mod work;

pub use plan::{finish, run_job, write_plan, FinishOutcome, JobOutcome, Plan};
pub use run::{render_album, AlbumOutcome};
pub use spec::{AlbumSpec, GainKey, Policy, PolicyMode, SongSpec};

use crate::io::atomic::OutputError;
use crate::io::decode::DecodeError;
use crate::render::RenderError;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Why an album could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum AlbumError {
    /// A song failed to measure or render.
    #[error("track {track} ({title}): {source}")]
    Song {
        /// Its track number.
        track: usize,
        /// Its title.
        title: String,
        /// Why.
        source: Box<RenderError>,
    },
    /// A delivered file could not be read back.
    #[error(transparent)]
    Decode(Box<DecodeError>),
    /// An album-level file could not be written.
    #[error(transparent)]
    Output(Box<OutputError>),
    /// A file-system error in the work folder.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("cannot write {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A job was run out of order (e.g. a render job before the gain step).
    #[error("{0}")]
    Plan(String),
    /// The album asks for something impossible (two songs writing one file, an unknown song).
    #[error("{0}")]
    Invalid(String),
}

/// Receives lines of progress (from worker threads).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Settings of an album render.
#[derive(Clone)]
pub struct AlbumOptions {
    /// Folder the deliverables, the report and the work folder go to.
    pub out_dir: PathBuf,
    /// Songs rendered at once (worker threads).
    pub jobs: usize,
    /// Render only this song (an index into the album's songs), even if unchanged.
    pub only: Option<usize>,
    /// Frames per processing block.
    pub block_size: usize,
    /// Set from another thread (Ctrl-C) to stop.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Called with a line of progress (from worker threads).
    pub progress: Option<Progress>,
}

impl AlbumOptions {
    /// Defaults: as many jobs as cores, every song, the default block.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        AlbumOptions {
            out_dir: out_dir.into(),
            jobs: pool::default_workers(),
            only: None,
            block_size: crate::render::DEFAULT_BLOCK,
            interrupt: None,
            progress: None,
        }
    }
}

/// Inputs are sacred: refuses an album whose outputs (every song's deliverables, the album's
/// report, the CD image and its CUE sheet, the work folder) resolve to any input of any song
/// (stems, references, recipes, modules, templates) or to the album file.
fn check_inputs(spec: &AlbumSpec, out: &std::path::Path) -> Result<(), AlbumError> {
    let mut inputs = vec![spec.file.clone()];
    let mut outputs = vec![
        out.join("album.json"),
        out.join("album.md"),
        out.join(work::WORK_DIR),
    ];
    for s in &spec.songs {
        inputs.extend(crate::render::preflight::inputs_of(&s.session));
        inputs.extend(s.inputs.iter().cloned());
        for d in &s.session.deliverables {
            outputs.push(out.join(crate::render::deliver::expand_file_name(
                &d.file, &s.session,
            )));
        }
    }
    if let Some(cd) = &spec.cd {
        for p in [&cd.file, &cd.cue] {
            let rel =
                spec::expand_album_pattern(p, None, &spec.title, spec.artist.as_deref(), None);
            outputs.push(out.join(rel));
        }
    }
    Ok(crate::render::preflight::check_paths(&inputs, &outputs)?)
}

/// What every job of an album shares.
pub struct AlbumContext<'a> {
    /// The album.
    pub spec: &'a AlbumSpec,
    /// The output folder.
    pub out_dir: PathBuf,
    /// The work folder.
    pub work: work::WorkDir,
    /// Frames per block.
    pub block_size: usize,
    /// Worker threads.
    pub jobs: usize,
    /// Ctrl-C.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Digests of the inputs.
    pub digests: hash::DigestCache,
    progress: Option<Progress>,
}

impl<'a> AlbumContext<'a> {
    /// The context of `spec` rendered with `opts`; checks that no two songs write one file.
    pub fn new(spec: &'a AlbumSpec, opts: &AlbumOptions) -> Result<Self, AlbumError> {
        let work = work::WorkDir::new(&opts.out_dir);
        let mut seen: Vec<(String, usize)> = Vec::new();
        for s in &spec.songs {
            for d in &s.session.deliverables {
                let name = crate::render::deliver::expand_file_name(&d.file, &s.session);
                if let Some((_, t)) = seen.iter().find(|(n, _)| *n == name) {
                    return Err(AlbumError::Invalid(format!(
                        "tracks {t} and {} would both write {name}: put `{{track:02}}` or `{{title}}` in the file name",
                        s.track
                    )));
                }
                seen.push((name, s.track));
            }
        }
        check_inputs(spec, &opts.out_dir)?;
        Ok(AlbumContext {
            spec,
            out_dir: opts.out_dir.clone(),
            digests: hash::DigestCache::load(&work.digests()),
            work,
            block_size: opts.block_size.max(1),
            jobs: opts.jobs.max(1),
            interrupt: opts.interrupt.clone(),
            progress: opts.progress.clone(),
        })
    }

    /// Reports a line of progress.
    pub fn say(&self, line: &str) {
        if let Some(p) = &self.progress {
            p(line);
        }
    }

    /// Saves the digest cache.
    pub fn save_digests(&self) {
        self.digests.save(&self.work.digests());
    }
}

impl From<DecodeError> for AlbumError {
    fn from(e: DecodeError) -> Self {
        AlbumError::Decode(Box::new(e))
    }
}

impl From<OutputError> for AlbumError {
    fn from(e: OutputError) -> Self {
        AlbumError::Output(Box::new(e))
    }
}
