//! The offline render: streamed decode → engine → deliverables, with bounded memory.
//!
//! Stems are decoded block by block, the compiled schedule runs over each block, and each
//! deliverable is written as the blocks come. The graph's latency is trimmed from the start of
//! every output so a master starts at sample 0 of the song, and the render runs on after the
//! song for the tail the processors ring on, measured and cut where it falls silent ([`tail`]).
//! Before anything is rendered, every output path is checked against every input
//! ([`preflight`]). Outputs are written atomically; an error or an interruption leaves no
//! partial file.

pub mod deliver;
pub mod edits;
pub mod in_memory;
pub mod null;
pub mod preflight;
pub mod report;
pub mod tail;
pub mod target;

use crate::dsp::AudioBuffer;
use crate::engine::{parallel, Schedule, Tap};
use crate::graph::{compile, CompileOptions, GraphError};
use crate::io::atomic::OutputError;
use crate::io::decode::{DecodeError, Decoder, NonFinite, StemStream, StreamOptions};
use crate::session::Session;
use deliver::{DeliverableSink, DeliveredFile};
use report::{
    CachedStem, CollectedMeters, NodeMeters, RenderReport, ReportCollector, ReportError, StemCache,
};
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
    /// `--strict`: the loudness target cannot be reached (the outcome line); nothing was written.
    #[error("{0} (--strict: no file was written)")]
    TargetMissed(String),
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
    /// Stem meters already known (from the cache), for the report's collector.
    known_stems: Vec<(String, NodeMeters)>,
}

impl RenderOptions {
    /// The report's collector for a render of `spec` when a report is asked for, its meter
    /// taps added to `copts` (stems already known from the cache are not tapped).
    pub(crate) fn report_collector(
        &self,
        spec: &crate::graph::GraphSpec,
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
        .and_then(|(s, w)| Ok((s.with_offset(stem.offset_samples)?, w)))
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
        fill_input(schedule, i, stream, frames)?;
    }
    Ok(())
}

/// Decodes the next `frames` frames of `stream` into the schedule's input `k`.
fn fill_input(
    schedule: &mut Schedule,
    k: usize,
    stream: &mut StemStream,
    frames: usize,
) -> Result<(), DecodeError> {
    let mut input = schedule.input_mut(k, frames);
    if input.channels() == 2 {
        let (l, r) = input.stereo_mut();
        stream.read_block(&mut [l, r], frames)
    } else {
        stream.read_block(&mut [input.channel_mut(0)], frames)
    }
}

/// Runs the schedule over the whole song, handing every output block (latency-trimmed, with the
/// tail) to `sink(output_index, song_position, block)`.
pub fn run<F>(
    schedule: &mut Schedule,
    streams: &mut [StemStream],
    song_frames: u64,
    block: usize,
    interrupt: Option<&AtomicBool>,
    progress: Option<&mut dyn FnMut(u64, u64)>,
    sink: F,
) -> Result<(), RenderError>
where
    F: FnMut(usize, u64, crate::dsp::AudioRef<'_>) -> Result<(), RenderError>,
{
    run_threads(
        schedule,
        streams,
        song_frames,
        block,
        interrupt,
        progress,
        sink,
        1,
    )
}

/// Blocks rendered on one thread first, timing every step, before the work is split (the first
/// [`WARM_BLOCKS`] of them not counted: cold caches).
const PROFILE_BLOCKS: u64 = 96;
/// See [`PROFILE_BLOCKS`].
const WARM_BLOCKS: u64 = 8;
/// Blocks the worker renders per hand-over.
const GROUP: usize = 8;
/// Hand-overs in flight: how far the worker may run ahead.
const IN_FLIGHT: usize = 3;

/// Where the loop stands and what it hands on: shared by the one- and two-thread loops.
struct Cursor<'a, 'b, F> {
    done: u64,
    total: u64,
    song_frames: u64,
    tail: u64,
    latencies: Vec<u64>,
    interrupt: Option<&'a AtomicBool>,
    progress: Option<&'b mut dyn FnMut(u64, u64)>,
    sink: F,
    /// Set by the sink when it needs no more (the tail has ended).
    stop: Option<&'a std::cell::Cell<bool>>,
}

impl<F> Cursor<'_, '_, F>
where
    F: FnMut(usize, u64, crate::dsp::AudioRef<'_>) -> Result<(), RenderError>,
{
    /// Whether the loop is over: everything rendered, or the sink needs no more.
    fn finished(&self) -> bool {
        self.done >= self.total || self.stop.is_some_and(std::cell::Cell::get)
    }

    fn check_interrupt(&self) -> Result<(), RenderError> {
        if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(RenderError::Interrupted);
        }
        Ok(())
    }

    /// Hands the outputs of the block just processed (`n` frames at `self.done`) to the sink.
    fn emit(&mut self, schedule: &Schedule, n: usize) -> Result<(), RenderError> {
        let done = self.done;
        for (o, &lat) in self.latencies.iter().enumerate() {
            let start = lat.max(done).min(done + n as u64);
            let end = (lat + self.song_frames + self.tail)
                .min(done + n as u64)
                .max(start);
            if end > start {
                let view = schedule
                    .output(o, n)
                    .slice((start - done) as usize, (end - done) as usize);
                (self.sink)(o, start - lat, view)?;
            }
        }
        self.done += n as u64;
        if let Some(p) = self.progress.as_mut() {
            p(self.done, self.total);
        }
        Ok(())
    }
}

/// Copies `n` frames of every stem in `which` (engine input indexes, in the order of `into`'s
/// first inputs) into `into`.
fn read_some(
    into: &mut Schedule,
    streams: &mut [&mut StemStream],
    n: usize,
) -> Result<(), DecodeError> {
    for (k, stream) in streams.iter_mut().enumerate() {
        fill_input(into, k, stream, n)?;
    }
    Ok(())
}

/// [`run`] on up to `threads` threads (1 or 2; more are not used). With 2, the first blocks
/// run on one thread while every step is timed; then the stems' strips are split into two
/// halves of about equal cost (see [`crate::engine::parallel`]): a worker thread decodes and
/// processes its stems a few blocks ahead while this thread does the rest, the buses, the
/// master chain and the sink. The output is the same, bit for bit, whatever the thread count.
#[allow(clippy::too_many_arguments)]
pub fn run_threads<F>(
    schedule: &mut Schedule,
    streams: &mut [StemStream],
    song_frames: u64,
    block: usize,
    interrupt: Option<&AtomicBool>,
    progress: Option<&mut dyn FnMut(u64, u64)>,
    sink: F,
    threads: usize,
) -> Result<(), RenderError>
where
    F: FnMut(usize, u64, crate::dsp::AudioRef<'_>) -> Result<(), RenderError>,
{
    run_threads_until(
        schedule,
        streams,
        song_frames,
        block,
        interrupt,
        progress,
        sink,
        threads,
        None,
    )
}

/// [`run_threads`], ending early once `stop` is set (by the sink: the tail has ended).
#[allow(clippy::too_many_arguments)]
pub fn run_threads_until<F>(
    schedule: &mut Schedule,
    streams: &mut [StemStream],
    song_frames: u64,
    block: usize,
    interrupt: Option<&AtomicBool>,
    progress: Option<&mut dyn FnMut(u64, u64)>,
    sink: F,
    threads: usize,
    stop: Option<&std::cell::Cell<bool>>,
) -> Result<(), RenderError>
where
    F: FnMut(usize, u64, crate::dsp::AudioRef<'_>) -> Result<(), RenderError>,
{
    let block = block.min(schedule.max_block()).max(1);
    let tail = schedule.tail() as u64;
    let latencies: Vec<u64> = (0..schedule.output_count())
        .map(|o| schedule.output_slot(o).latency as u64)
        .collect();
    // Streams past their end read silence, so the tail and the latency are rendered from zeros.
    let total = song_frames + tail + latencies.iter().copied().max().unwrap_or(0);
    let mut cur = Cursor {
        done: 0,
        total,
        song_frames,
        tail,
        latencies,
        interrupt,
        progress,
        sink,
        stop,
    };
    let parallel = threads >= 2 && streams.len() >= 2;
    let mut costs = vec![0.0; if parallel { schedule.step_count() } else { 0 }];
    let mut decode = vec![0.0; if parallel { streams.len() } else { 0 }];
    let mut emitting = 0.0;
    let mut blocks = 0u64;
    let profile_until = if parallel {
        (PROFILE_BLOCKS * block as u64).min(total)
    } else {
        total
    };
    while cur.done < profile_until && !cur.finished() {
        cur.check_interrupt()?;
        let n = block.min((total - cur.done) as usize);
        if parallel {
            if blocks == WARM_BLOCKS {
                costs.fill(0.0);
                decode.fill(0.0);
                emitting = 0.0;
            }
            blocks += 1;
            for (i, stream) in streams.iter_mut().enumerate() {
                let t = Instant::now();
                fill_input(schedule, i, stream, n)?;
                decode[i] += t.elapsed().as_secs_f64();
            }
            assert_no_alloc::assert_no_alloc(|| schedule.process_profiled(n, &mut costs));
            let t = Instant::now();
            cur.emit(schedule, n)?;
            emitting += t.elapsed().as_secs_f64();
        } else {
            read_inputs(schedule, streams, n)?;
            assert_no_alloc::assert_no_alloc(|| schedule.process(n));
            cur.emit(schedule, n)?;
        }
    }
    if cur.finished() {
        return Ok(());
    }
    // Choose the worker's units: the most even split of the measured cost.
    let (unit, count) = parallel::units(schedule);
    let mut unit_cost = vec![0.0; count];
    // What stays on this thread whatever the split: the sink (encoding, writing) and the steps
    // after the buses.
    let mut rest = emitting;
    for (i, c) in costs.iter().enumerate() {
        match unit[i] {
            Some(u) => unit_cost[u] += c,
            None => rest += c,
        }
    }
    for (i, step) in schedule.steps().iter().enumerate() {
        if let (crate::engine::schedule::Step::Input { input, .. }, Some(u)) = (step, unit[i]) {
            unit_cost[u] += decode[*input];
        }
    }
    let all: f64 = unit_cost.iter().sum::<f64>() + rest;
    let deps = parallel::unit_deps(schedule, &unit, count);
    let to_worker = best_split(&unit_cost, all, &deps);
    let worker_cost: f64 = unit_cost
        .iter()
        .zip(&to_worker)
        .filter(|(_, w)| **w)
        .map(|(c, _)| c)
        .sum();
    if worker_cost < 0.1 * all {
        // Not worth a thread: finish on this one.
        while !cur.finished() {
            cur.check_interrupt()?;
            let n = block.min((total - cur.done) as usize);
            read_inputs(schedule, streams, n)?;
            assert_no_alloc::assert_no_alloc(|| schedule.process(n));
            cur.emit(schedule, n)?;
        }
        return Ok(());
    }
    // The estimate misses how the halves' batches and caches behave apart, so the first
    // stretches run as trials: after each, the busier thread gives a unit to the other if that
    // evens them out (splitting again is cheap and changes no bits).
    let mut to_worker = to_worker;
    let mut trials = ADAPT_TRIALS;
    loop {
        let until = if trials > 0 {
            (cur.done + ADAPT_BLOCKS * block as u64).min(total)
        } else {
            total
        };
        let mut halves = parallel::split(schedule, &unit, &to_worker);
        let busy = run_split(&mut halves, streams, block, &mut cur, until);
        parallel::join(schedule, halves);
        let (main_busy, worker_busy) = busy?;
        if cur.finished() {
            return Ok(());
        }
        if trials > 0 {
            trials -= 1;
            match rebalance(&unit_cost, &to_worker, main_busy, worker_busy, &deps) {
                Some(better) => to_worker = better,
                None => trials = 0,
            }
        }
    }
}

/// Trial stretches of the two-thread loop, and their length in blocks.
const ADAPT_TRIALS: usize = 3;
const ADAPT_BLOCKS: u64 = 400;

/// One unit moved to the other side, if the measured busy times (scaled by unit estimates)
/// say the larger of the two gets smaller by more than a few percent.
fn rebalance(
    unit_cost: &[f64],
    to_worker: &[bool],
    main: f64,
    worker: f64,
    deps: &[Vec<usize>],
) -> Option<Vec<bool>> {
    let est = |w: bool| -> f64 {
        unit_cost
            .iter()
            .zip(to_worker)
            .filter(|(_, &t)| t == w)
            .map(|(c, _)| c)
            .sum()
    };
    // Seconds of this trial per estimated second, on each side (the main side also carries
    // what no unit holds: its estimate is what the measure says).
    let k_worker = worker / est(true).max(1e-12);
    let before = main.max(worker);
    let mut best: Option<(f64, usize)> = None;
    for (u, &c) in unit_cost.iter().enumerate() {
        let (m, w) = if to_worker[u] {
            (main + c * k_worker, worker - c * k_worker)
        } else {
            (main - c * k_worker, worker + c * k_worker)
        };
        let after = m.max(w);
        let mut t = to_worker.to_vec();
        t[u] = !t[u];
        if !parallel::valid(&t, deps) {
            continue;
        }
        if after < 0.97 * before && best.is_none_or(|(b, _)| after < b) {
            best = Some((after, u));
        }
    }
    best.map(|(_, u)| {
        let mut t = to_worker.to_vec();
        t[u] = !t[u];
        t
    })
}

/// The units (by cost) to give the worker so that the larger half is as small as possible.
fn best_split(unit_cost: &[f64], all: f64, deps: &[Vec<usize>]) -> Vec<bool> {
    let n = unit_cost.len();
    let mut best = (f64::INFINITY, vec![false; n]);
    if n <= 20 {
        for mask in 1u32..(1 << n) {
            let choice: Vec<bool> = (0..n).map(|u| mask & (1 << u) != 0).collect();
            if !parallel::valid(&choice, deps) {
                continue;
            }
            let w: f64 = (0..n)
                .filter(|u| mask & (1 << u) != 0)
                .map(|u| unit_cost[u])
                .sum();
            let larger = w.max(all - w);
            if larger < best.0 {
                best = (larger, choice);
            }
        }
    } else {
        // Greedy: units with their dependencies, costliest first, while the worker stays
        // under half.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| unit_cost[*b].total_cmp(&unit_cost[*a]));
        let mut w = 0.0;
        for u in order {
            let mut with = best.1.clone();
            with[u] = true;
            for &d in &deps[u] {
                with[d] = true;
            }
            let add: f64 = (0..n)
                .filter(|&v| with[v] && !best.1[v])
                .map(|v| unit_cost[v])
                .sum();
            if parallel::valid(&with, deps) && w + add <= all / 2.0 {
                w += add;
                best.1 = with;
            }
        }
    }
    best.1
}

/// The two-thread loop over a split schedule, up to frame `until`; returns the seconds each
/// thread was busy (main, worker).
fn run_split<F>(
    halves: &mut parallel::Split,
    streams: &mut [StemStream],
    block: usize,
    cur: &mut Cursor<'_, '_, F>,
    until: u64,
) -> Result<(f64, f64), RenderError>
where
    F: FnMut(usize, u64, crate::dsp::AudioRef<'_>) -> Result<(), RenderError>,
{
    let parallel::Split {
        worker,
        main,
        worker_inputs,
        main_inputs,
        ..
    } = halves;
    let mut by_input: Vec<Option<&mut StemStream>> = streams.iter_mut().map(Some).collect();
    let mut worker_streams: Vec<&mut StemStream> = worker_inputs
        .iter()
        .map(|&i| by_input[i].take().expect("one owner per stem"))
        .collect();
    let mut main_streams: Vec<&mut StemStream> = main_inputs
        .iter()
        .map(|&i| by_input[i].take().expect("one owner per stem"))
        .collect();
    let own = main_inputs.len();
    let exports: Vec<usize> = (0..worker.output_count())
        .map(|e| worker.output(e, 0).channels())
        .collect();
    let total = until;
    let start = cur.done;
    type Set = Vec<AudioBuffer>;
    let (free_tx, free_rx) = crossbeam::channel::bounded::<Set>(IN_FLIGHT);
    let (full_tx, full_rx) =
        crossbeam::channel::bounded::<Result<(Set, usize), DecodeError>>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let set: Set = exports
            .iter()
            .map(|&c| AudioBuffer::new(c, GROUP * block))
            .collect();
        free_tx.send(set).expect("room for every set");
    }
    std::thread::scope(|scope| {
        let worker_thread = scope.spawn(move || {
            let mut done = start;
            let mut busy = 0.0;
            while done < total {
                let Ok(mut set) = free_rx.recv() else {
                    break;
                };
                let t = Instant::now();
                let mut blocks = 0;
                while blocks < GROUP && done < total {
                    let n = block.min((total - done) as usize);
                    if let Err(e) = read_some(worker, &mut worker_streams, n) {
                        let _ = full_tx.send(Err(e));
                        return busy;
                    }
                    assert_no_alloc::assert_no_alloc(|| worker.process(n));
                    for (e, buf) in set.iter_mut().enumerate() {
                        let src = worker.output(e, n);
                        for c in 0..src.channels() {
                            buf.channel_mut(c, GROUP * block)[blocks * block..blocks * block + n]
                                .copy_from_slice(src.channel(c));
                        }
                    }
                    done += n as u64;
                    blocks += 1;
                }
                busy += t.elapsed().as_secs_f64();
                if full_tx.send(Ok((set, blocks))).is_err() {
                    break;
                }
            }
            busy
        });
        let mut busy = 0.0;
        let result = (|| -> Result<(), RenderError> {
            while cur.done < total && !cur.finished() {
                cur.check_interrupt()?;
                let (set, blocks) = match full_rx.recv() {
                    Ok(Ok(got)) => got,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => panic!("the render's worker thread stopped"),
                };
                let t = Instant::now();
                for b in 0..blocks {
                    if cur.finished() {
                        break;
                    }
                    let n = block.min((total - cur.done) as usize);
                    read_some(main, &mut main_streams, n)?;
                    for (e, buf) in set.iter().enumerate() {
                        let mut input = main.input_mut(own + e, n);
                        for c in 0..buf.channels() {
                            input.channel_mut(c).copy_from_slice(
                                &buf.channel(c, GROUP * block)[b * block..b * block + n],
                            );
                        }
                    }
                    assert_no_alloc::assert_no_alloc(|| main.process(n));
                    cur.emit(main, n)?;
                }
                busy += t.elapsed().as_secs_f64();
                let _ = free_tx.send(set);
            }
            Ok(())
        })();
        // Stops the worker if this side ended early: its next send or receive fails.
        drop(full_rx);
        drop(free_tx);
        let worker_busy = worker_thread.join().expect("the render's worker thread");
        result.map(|()| (busy, worker_busy))
    })
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
    // Inputs are sacred: no output may land on one.
    preflight::check(session, &opts)?;
    let plan = plan_stems(session)?;
    let (streams, warnings) = open_stems(session, &plan)?;
    let spec = session.graph_at(f64::from(plan.sample_rate));
    // What the cache knows of the stems: their meters are not measured again, nor their
    // hashes computed.
    let contexts: Vec<String> = session
        .stems
        .iter()
        .map(|stem| stem_context(&spec, &plan, &stem.name, stem.channels))
        .collect();
    let cached: Vec<Option<CachedStem>> = if opts.report {
        session
            .stems
            .iter()
            .zip(&contexts)
            .map(|(stem, ctx)| opts.stem_cache.lookup(&stem.path, ctx))
            .collect()
    } else {
        vec![None; session.stems.len()]
    };
    opts.known_stems = session
        .stems
        .iter()
        .zip(&cached)
        .filter_map(|(stem, c)| Some((stem.name.clone(), c.as_ref()?.meters.clone()?)))
        .collect();
    let (mut result, meters) = match session.target_lufs {
        None => render_graph(
            session,
            &spec,
            streams,
            plan.song_frames,
            plan.sample_rate,
            &mut opts,
            plan.song_frames,
        )?,
        Some(target) => {
            target::render_to_target(session, &spec, streams, &plan, target, &mut opts)?
        }
    };
    result.warnings.splice(0..0, warnings);
    result.seconds = started.elapsed().as_secs_f64();
    if let Some(meters) = meters {
        let null_test = null::null_test(session, &plan)?;
        if let Some(nt) = null_test.as_ref().filter(|nt| nt.residual_rms_dbfs > null::PASS_DBFS) {
            result.warnings.push(format!(
                "null test: the stems summed at unity differ from the reference mix by {:.1} dBFS RMS \
                 (run `stemgraph check` for where)",
                nt.residual_rms_dbfs
            ));
        }
        let report = report::build_report(report::ReportInputs {
            session,
            sample_rate: plan.sample_rate,
            song_frames: plan.song_frames,
            latency: result.latency,
            tail: result.tail,
            files: &result.files,
            out_dir: &opts.out_dir,
            meters,
            null_test,
            loudness_target: result.target.clone(),
            warnings: &result.warnings,
            render_seconds: result.seconds,
            stem_hashes: cached
                .iter()
                .map(|c| c.as_ref().map(|c| (c.sha256.clone(), c.bytes)))
                .collect(),
        })?;
        report::write_report(&opts.out_dir, &report, &protected_inputs(session))?;
        // Remember what was learnt about stems the cache did not know (or knew unmetered).
        for ((stem, ctx), (was, rep)) in session
            .stems
            .iter()
            .zip(&contexts)
            .zip(cached.iter().zip(&report.stems))
        {
            let now = CachedStem {
                sha256: rep.file.sha256.clone(),
                bytes: rep.file.bytes,
                meters: rep.meters.clone(),
            };
            if was.as_ref() != Some(&now) {
                opts.stem_cache.store(&stem.path, ctx, &now);
            }
        }
        result.report = Some(report);
    }
    Ok(result)
}

/// What runs after each block of a render: the report's telemetry sampling, then the caller's
/// progress.
pub(crate) fn after_each_block<'a>(
    collector: &'a mut Option<ReportCollector>,
    progress: &'a mut Option<Box<dyn FnMut(u64, u64)>>,
) -> impl FnMut(u64, u64) + 'a {
    let mut last_done = 0u64;
    move |done, total| {
        if let Some(c) = collector.as_mut() {
            c.observe_block(done - last_done);
        }
        last_done = done;
        if let Some(p) = progress.as_mut() {
            p(done, total);
        }
    }
}

/// What shapes a stem's signal in the graph besides its file, for the [`StemCache`] key: the
/// session rate, the song's length, the channel count and the stem fader's settings.
fn stem_context(
    spec: &crate::graph::GraphSpec,
    plan: &StemPlan,
    name: &str,
    channels: usize,
) -> String {
    let fader = spec
        .nodes
        .iter()
        .find(|n| n.id == name)
        .map(|n| format!("{:?}", n.kind))
        .unwrap_or_default();
    format!(
        "rate {} frames {} channels {channels} node {fader}",
        plan.sample_rate, plan.song_frames
    )
}

/// The files a render must never write over: the stems, the reference, the recipe and its
/// modules and templates.
fn protected_inputs(session: &Session) -> Vec<PathBuf> {
    preflight::inputs_of(session)
}

/// Compiles `spec`, runs it over `streams` and writes the session's deliverables from its
/// outputs. `input_frames` counts from the first frame of the streams (the song, or a spill
/// holding the song and a tail); `song_end` is the song's own end, where the measured tail
/// starts ([`tail`]). Returns the report's meters too when `opts.report` asks for them.
pub(crate) fn render_graph(
    session: &Session,
    spec: &crate::graph::GraphSpec,
    mut streams: Vec<StemStream>,
    input_frames: u64,
    sample_rate: u32,
    opts: &mut RenderOptions,
    song_end: u64,
) -> Result<(RenderResult, Option<CollectedMeters>), RenderError> {
    let mut copts = CompileOptions::new(f64::from(sample_rate), opts.block_size);
    copts.taps = std::mem::take(&mut opts.taps);
    // The report's meters: taps on stems and outputs, gain reduction sampled per block.
    let mut collector =
        opts.report_collector(spec, f64::from(sample_rate), input_frames, &mut copts);
    let compiled = compile(spec, copts)?;
    let mut warnings = compiled.warnings;
    let mut schedule = compiled.schedule;
    if let Some(c) = collector.as_mut() {
        c.watch(&schedule);
    }
    let protected = protected_inputs(session);
    let rate = f64::from(sample_rate);
    let channels: Vec<usize> = (0..schedule.output_count())
        .map(|o| schedule.output(o, 0).channels())
        .collect();
    let declared_tail = (input_frames + schedule.tail() as u64).saturating_sub(song_end);
    let mut trim = tail::TailTrim::new(
        &session.tail,
        &session.edits,
        song_end,
        declared_tail,
        rate,
        &channels,
        opts.block_size,
    );
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
    let mut write = |o: usize, block: crate::dsp::AudioRef<'_>| -> Result<(), RenderError> {
        for s in sinks.iter_mut().filter(|s| s.output_index() == o) {
            s.write(block)?;
        }
        Ok(())
    };
    let mut user_progress = opts.progress.take();
    let mut after_block = after_each_block(&mut collector, &mut user_progress);
    let stop = std::cell::Cell::new(false);
    run_threads_until(
        &mut schedule,
        &mut streams,
        input_frames,
        opts.block_size,
        opts.interrupt.as_deref(),
        Some(&mut after_block),
        |o, pos, block| {
            trim.push(o, pos, block, &mut write)?;
            if trim.done() {
                stop.set(true);
            }
            Ok(())
        },
        opts.threads,
        Some(&stop),
    )?;
    let tail = trim.finish(&mut write)?;
    let mut files = Vec::new();
    for s in sinks {
        files.push(s.finish()?);
    }
    drop(after_block);
    opts.progress = user_progress;
    let mut taps = schedule.take_taps();
    let meters = collector.map(|c| c.finish(&mut taps));
    let non_finite = stems_non_finite(session, &streams);
    warnings.extend(non_finite_warnings(&non_finite, rate));
    Ok((
        RenderResult {
            sample_rate,
            song_frames: song_end,
            latency: schedule.latency(),
            tail: tail as usize,
            files,
            warnings,
            seconds: 0.0,
            taps,
            target: None,
            report: None,
            non_finite,
        },
        meters,
    ))
}

/// The stems whose streams muted non-finite samples, with what they found (nothing when the
/// streams are not the session's stems).
pub(crate) fn stems_non_finite(
    session: &Session,
    streams: &[StemStream],
) -> Vec<(String, NonFinite)> {
    if streams.len() != session.stems.len() {
        return Vec::new();
    }
    session
        .stems
        .iter()
        .zip(streams)
        .filter(|(stem, s)| s.non_finite().any() && s.info().path == stem.path)
        .map(|(stem, s)| (stem.name.clone(), s.non_finite()))
        .collect()
}

/// One warning per stem with non-finite samples.
pub(crate) fn non_finite_warnings(found: &[(String, NonFinite)], rate: f64) -> Vec<String> {
    found
        .iter()
        .map(|(name, n)| {
            let at = n.first_frame.unwrap_or(0) as f64 / rate;
            format!(
                "stem `{name}`: {} non-finite sample{} (NaN or infinity), the first at {}:{:06.3} \
                 ({at:.3} s); muted",
                n.count,
                if n.count == 1 { "" } else { "s" },
                (at / 60.0).floor() as u64,
                at % 60.0
            )
        })
        .collect()
}
