//! Hot reload (control side): watching the recipe, debouncing saves, loading and compiling the
//! new graph, and handing it to the engine.
//!
//! - [`Watcher`] watches the recipe and every file it loaded **through their folders** (editors
//!   save by writing a temporary file and renaming it over the original, which replaces the
//!   file a watch on the file itself would follow), and time-stamps every event that concerns
//!   one of them.
//! - [`Debouncer`] turns a burst of events (truncate-then-write, write-then-rename, a save-all)
//!   into one reload once the files have been quiet for [`DEBOUNCE`].
//! - [`Reloader`] loads and compiles on the control thread, keeps the last good session when a
//!   recipe fails (the error keeps its file and line), plans the swap against the shape of the
//!   schedule last handed over, and submits it. At most one schedule is in flight: while the
//!   engine has not taken it, only the newest prepared schedule waits here, so a burst of saves
//!   never queues stale schedules.
//!
//! Never runs on the audio thread; Lua runs here and nowhere else.

use super::streamer::Sources;
use super::LiveError;
use crate::dsp::telemetry::GAIN_REDUCTION_DB;
use crate::dsp::Telemetry;
use crate::engine::live::LiveControl;
use crate::engine::Schedule;
use crate::graph::diff::{plan, ScheduleShape};
use crate::graph::{compile, CompileOptions, GraphSpec, NodeKind};
use crate::render::{plan_stems, StemPlan};
use crate::session::Session;
use crossbeam::channel::{Receiver, Sender};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the watched files must stay quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(60);

/// Watches files through their folders and reports when one of them changes.
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    files: Arc<Mutex<BTreeSet<PathBuf>>>,
    events: Receiver<Instant>,
}

/// The key a file is known by: its folder, resolved, and its name (the file itself may not exist
/// for a moment while an editor replaces it).
fn key(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&parent).ok()?;
    Some((dir.clone(), dir.join(name)))
}

impl Watcher {
    /// A watcher watching nothing yet.
    pub fn new() -> Result<Watcher, LiveError> {
        let files: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
        let (tx, rx): (Sender<Instant>, Receiver<Instant>) = crossbeam::channel::unbounded();
        let watched = files.clone();
        let inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            let relevant = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            };
            if !relevant {
                return;
            }
            let files = watched.lock().unwrap_or_else(|e| e.into_inner());
            if event.paths.iter().any(|p| files.contains(p)) {
                let _ = tx.send(Instant::now());
            }
        })
        .map_err(|source| LiveError::Watch {
            path: PathBuf::from("."),
            source,
        })?;
        Ok(Watcher {
            inner,
            dirs: BTreeSet::new(),
            files,
            events: rx,
        })
    }

    /// Watches exactly `files` (through their folders) from now on.
    pub fn watch(&mut self, files: &[PathBuf]) -> Result<(), LiveError> {
        let keys: Vec<(PathBuf, PathBuf)> = files.iter().filter_map(|f| key(f)).collect();
        let dirs: BTreeSet<PathBuf> = keys.iter().map(|k| k.0.clone()).collect();
        for d in dirs.difference(&self.dirs) {
            self.inner
                .watch(d, RecursiveMode::NonRecursive)
                .map_err(|source| LiveError::Watch {
                    path: d.clone(),
                    source,
                })?;
        }
        for d in self.dirs.difference(&dirs) {
            let _ = self.inner.unwatch(d);
        }
        self.dirs = dirs;
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) =
            keys.into_iter().map(|k| k.1).collect();
        Ok(())
    }

    /// The times of the changes seen since the last call.
    pub fn drain(&self) -> Vec<Instant> {
        self.events.try_iter().collect()
    }
}

/// Turns a burst of file events into one reload once they have been quiet for a while.
#[derive(Debug, Clone)]
pub struct Debouncer {
    quiet: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debouncer {
    /// A debouncer with quiet period `quiet`.
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            first: None,
            last: None,
        }
    }

    /// Notes an event at `at`.
    pub fn note(&mut self, at: Instant) {
        self.first.get_or_insert(at);
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    /// When the pending burst will be due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.last.map(|l| l + self.quiet)
    }

    /// If the burst is over at `now`, ends it and returns when it started (the save).
    pub fn take_due(&mut self, now: Instant) -> Option<Instant> {
        if self.deadline().is_some_and(|d| now >= d) {
            self.last = None;
            self.first.take()
        } else {
            None
        }
    }

    /// The time of the last event noted, if a burst is pending.
    pub fn last(&self) -> Option<Instant> {
        self.last
    }
}

/// A graph built from a recipe, not yet handed to the engine.
pub struct Prepared {
    /// The number its swap will carry.
    pub generation: u64,
    /// The session it came from.
    pub session: Session,
    /// What the streamer must read for it.
    pub sources: Sources,
    /// Whether the stems (files, order, channels) or the reference differ from those playing.
    pub stems_changed: bool,
    /// Compilation warnings.
    pub warnings: Vec<String>,
    /// Time spent loading the recipe (Lua) and reading the stem headers.
    pub load_time: Duration,
    /// Time spent compiling.
    pub compile_time: Duration,
    /// The schedule's tail, in frames.
    pub tail: usize,
    schedule: Box<Schedule>,
    shape: ScheduleShape,
}

/// What became of a prepared graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Handed to the engine: it swaps at its next block.
    Queued {
        /// The swap's generation.
        generation: u64,
        /// Whether it crossfades (something structural changed).
        crossfade: bool,
    },
    /// The engine has not taken the previous schedule yet: kept (replacing any older one
    /// waiting) until it has.
    Waiting,
}

/// Loads, compiles and hands over graphs; remembers the last good one.
pub struct Reloader {
    rate: u32,
    max_block: usize,
    crossfade_frames: usize,
    session: Session,
    sources: Sources,
    shape: ScheduleShape,
    generation: u64,
    bypass_master: bool,
    pending: Option<Prepared>,
    telemetry: Vec<(String, Arc<Telemetry>)>,
    submitted: u64,
    tail: usize,
    /// A reference track that replaces the recipe's reference mix at every load.
    reference_track: Option<PathBuf>,
}

impl Reloader {
    /// Plays `track` on B instead of the recipe's reference mix, at every reload too.
    pub fn keep_reference(&mut self, track: Option<PathBuf>) {
        self.reference_track = track;
    }

    /// Compiles `session` (planned as `plan`) for the first time; returns the reloader and the
    /// first schedule.
    pub fn new(
        session: Session,
        stem_plan: &StemPlan,
        max_block: usize,
        crossfade_ms: f64,
    ) -> Result<(Reloader, Schedule), LiveError> {
        let rate = stem_plan.sample_rate;
        let sources = Sources::of(&session, stem_plan)?;
        let (schedule, shape, _) = build(&session, rate, max_block, false)?;
        let telemetry = telemetry_of(&schedule);
        let tail = schedule.tail();
        Ok((
            Reloader {
                rate,
                max_block,
                crossfade_frames: crate::units::ms_to_samples(crossfade_ms, f64::from(rate)).max(1),
                session,
                sources,
                shape,
                generation: 0,
                bypass_master: false,
                pending: None,
                telemetry,
                submitted: 0,
                tail,
                reference_track: None,
            },
            schedule,
        ))
    }

    /// The last good session (the one handed to the engine last).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// What the streamer plays for it.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Its schedule's tail in frames.
    pub fn tail(&self) -> usize {
        self.tail
    }

    /// Whether the master chain is bypassed.
    pub fn bypass_master(&self) -> bool {
        self.bypass_master
    }

    /// The session rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Schedules handed to the engine so far (not counting the first).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// Whether a prepared graph waits for the engine to take the previous one.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Gain-reduction readings of the last schedule handed over, by node id.
    pub fn gain_reduction(&self) -> Vec<(String, f64)> {
        self.telemetry
            .iter()
            .map(|(id, t)| (id.clone(), t.get_named(GAIN_REDUCTION_DB).unwrap_or(0.0)))
            .collect()
    }

    /// Loads the recipe from disk and compiles it (with the master chain bypassed if it is).
    /// On error nothing changes: the last good graph keeps playing.
    pub fn load(&mut self) -> Result<Prepared, LiveError> {
        let t0 = Instant::now();
        let mut session = crate::script::load_recipe(&self.session.recipe)?;
        if let Some(track) = &self.reference_track {
            session.reference = Some(track.clone());
        }
        let stem_plan = plan_stems(&session).map_err(|e| with_stem_origin(e, &session))?;
        if stem_plan.sample_rate != self.rate {
            return Err(LiveError::Unsupported(format!(
                "{}: the session rate changed from {} Hz to {} Hz; restart `stemgraph play` to \
                 hear it at the new rate (still playing the last good graph)",
                session.recipe.display(),
                self.rate,
                stem_plan.sample_rate
            )));
        }
        let sources = Sources::of(&session, &stem_plan)?;
        self.prepare(session, sources, t0)
    }

    /// Rebuilds the last good session with the master chain bypassed or not.
    pub fn set_bypass(&mut self, bypass: bool) -> Result<Prepared, LiveError> {
        let before = self.bypass_master;
        self.bypass_master = bypass;
        let r = self.prepare(self.session.clone(), self.sources.clone(), Instant::now());
        if r.is_err() {
            self.bypass_master = before;
        }
        r
    }

    fn prepare(
        &mut self,
        session: Session,
        sources: Sources,
        t0: Instant,
    ) -> Result<Prepared, LiveError> {
        let t1 = Instant::now();
        let (schedule, shape, warnings) =
            build(&session, self.rate, self.max_block, self.bypass_master)?;
        let t2 = Instant::now();
        self.generation += 1;
        Ok(Prepared {
            generation: self.generation,
            stems_changed: sources != self.sources,
            session,
            sources,
            warnings,
            load_time: t1 - t0,
            compile_time: t2 - t1,
            tail: schedule.tail(),
            schedule: Box::new(schedule),
            shape,
        })
    }

    /// Hands `prepared` to the engine, or keeps it (dropping any older one waiting) while the
    /// engine has not taken the previous one yet: at most one schedule is ever in flight, so a
    /// burst of saves never queues stale schedules, and the newest waits here.
    pub fn submit(&mut self, prepared: Prepared, control: &mut LiveControl) -> Submitted {
        if control.in_flight() > 0 {
            self.pending = Some(prepared);
            return Submitted::Waiting;
        }
        let Prepared {
            generation,
            session,
            sources,
            stems_changed,
            warnings,
            load_time,
            compile_time,
            tail,
            schedule,
            shape,
        } = prepared;
        let telemetry = telemetry_of(&schedule);
        let swap = plan(
            &self.shape,
            &shape,
            *schedule,
            self.crossfade_frames,
            generation,
        );
        let crossfade = swap.crossfade_frames > 0;
        match control.submit(swap) {
            Ok(()) => {
                self.shape = shape;
                self.session = session;
                self.sources = sources;
                self.telemetry = telemetry;
                self.tail = tail;
                self.pending = None;
                self.submitted += 1;
                Submitted::Queued {
                    generation,
                    crossfade,
                }
            }
            Err(schedule) => {
                self.pending = Some(Prepared {
                    generation,
                    session,
                    sources,
                    stems_changed,
                    warnings,
                    load_time,
                    compile_time,
                    tail,
                    schedule,
                    shape,
                });
                Submitted::Waiting
            }
        }
    }

    /// Tries again to hand over the graph waiting for the engine, if any.
    pub fn retry(&mut self, control: &mut LiveControl) -> Option<Submitted> {
        if control.in_flight() > 0 {
            return None;
        }
        let p = self.pending.take()?;
        Some(self.submit(p, control))
    }

    /// Forgets the graph waiting for room (a newer one supersedes it).
    pub fn drop_pending(&mut self) {
        self.pending = None;
    }
}

/// Compiles `session` at `rate`, optionally with its master chain bypassed.
fn build(
    session: &Session,
    rate: u32,
    max_block: usize,
    bypass_master: bool,
) -> Result<(Schedule, ScheduleShape, Vec<String>), LiveError> {
    let mut spec = session.graph_at(f64::from(rate));
    if bypass_master {
        bypass_master_chain(&mut spec);
    }
    let compiled = compile(&spec, CompileOptions::new(f64::from(rate), max_block))?;
    let shape = ScheduleShape::of(&spec, &compiled.schedule);
    Ok((compiled.schedule, shape, compiled.warnings))
}

/// Bypasses the master chain: the processors between the last bus before each output and the
/// output. A bypassed processor keeps its latency, so timing does not move.
pub fn bypass_master_chain(spec: &mut GraphSpec) {
    let outputs: Vec<String> = spec
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Output { .. }))
        .map(|n| n.id.clone())
        .collect();
    for out in outputs {
        let mut at = out;
        for _ in 0..spec.nodes.len() {
            let Some(edge) = spec
                .edges
                .iter()
                .find(|e| e.to == at && e.port == crate::dsp::Port::Main)
            else {
                break;
            };
            let from = edge.from.clone();
            let Some(node) = spec.nodes.iter_mut().find(|n| n.id == from) else {
                break;
            };
            match &mut node.kind {
                NodeKind::Processor { bypass, .. } => *bypass = true,
                _ => break,
            }
            at = from;
        }
    }
}

fn telemetry_of(schedule: &Schedule) -> Vec<(String, Arc<Telemetry>)> {
    schedule
        .nodes()
        .iter()
        .filter_map(|n| {
            let t = n.telemetry.clone()?;
            t.names()
                .contains(&GAIN_REDUCTION_DB)
                .then(|| (n.id.clone(), t))
        })
        .collect()
}

/// A stem that cannot be read, with the recipe line that declared it.
fn with_stem_origin(e: crate::render::RenderError, session: &Session) -> LiveError {
    match e {
        crate::render::RenderError::Decode(source) => {
            let text = source.to_string();
            let origin = session
                .stems
                .iter()
                .find(|s| text.contains(&s.path.display().to_string()))
                .and_then(|s| s.origin.clone());
            LiveError::Decode { origin, source }
        }
        other => other.into(),
    }
}
