//! The offline runner: a schedule run over its sources block by block, on one thread or two.
//!
//! Each block, every source fills its input of the schedule, the schedule processes, and the
//! outputs go to the sink, latency-trimmed, with the tail (the run ends early once the sink
//! raises the stop flag: it has all it needs). With two threads the first blocks
//! run on one thread while every step is timed; then the stems' strips are split into two
//! halves of about equal cost ([`super::balance`], [`super::split`]): a worker thread processes
//! its sources a few blocks ahead while this thread does the rest, the buses, the master chain
//! and the sink, and it also reads (decodes) the worker's sources, a few blocks ahead of the
//! worker. Reading is a third of a strip's work on the stems: done here, it leaves the worker
//! the strips, whole batches of them (a batch split between the threads runs slower on each),
//! with the two threads about equally busy; when this thread stays the busier (a master chain
//! and the sink beside the reading), the worker reads some of its sources itself. With a single source (a spilled master) the worker may take its
//! whole chain, and this thread the taps (meters) and the sink: a pipeline of two stages. The output is the same, bit for bit, whatever the thread count.
//!
//! The runner knows nothing of files or renders: the sources are [`BlockSource`]s, the sink
//! a closure, and errors the caller's own type (made from the sources' errors and from
//! [`Interrupted`]).

use super::balance::{self, Plan, Profile};
use super::handover::{store_fence, stream_copy};
use super::split::{join, split, Crossings, Split};
use crate::dsp::{AudioBuffer, AudioMut, AudioRef};
use crate::engine::Schedule;
use crossbeam::channel::{Receiver, Sender};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Where one engine input's blocks come from (a stem being decoded, a spill file…).
pub trait BlockSource: Send {
    /// Why a block could not be read.
    type Error: Send;
    /// Writes the next `frames` frames into `input` (the schedule's input, `frames` long).
    fn read_into(&mut self, input: AudioMut<'_>, frames: usize) -> Result<(), Self::Error>;
}

/// The interrupt flag was raised: the run stopped between two blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// How to run.
pub struct RunSettings<'a, 'b> {
    /// Frames per block (at most the schedule's largest block).
    pub block: usize,
    /// Threads to run on (1 or 2 are used).
    pub threads: usize,
    /// Checked before every block; raised, the run stops with [`Interrupted`].
    pub interrupt: Option<&'a AtomicBool>,
    /// Called after every block with (frames done, frames in all).
    pub progress: Option<&'b mut dyn FnMut(u64, u64)>,
    /// Raised by the sink when it needs no more (a measured tail has ended): the run ends
    /// after that block.
    pub stop: Option<&'a Cell<bool>>,
}

/// Blocks rendered on one thread first, timing every step, before the work is split (the first
/// [`WARM_BLOCKS`] of them not counted: cold caches).
const PROFILE_BLOCKS: u64 = 96;
/// See [`PROFILE_BLOCKS`].
const WARM_BLOCKS: u64 = 8;
/// Blocks the worker renders per hand-over.
const GROUP: usize = 8;
/// Hand-overs in flight: how far the worker may run ahead (and the reading ahead of it).
const IN_FLIGHT: usize = 3;
/// Trial stretches of the two-thread loop, and their length in blocks.
const ADAPT_TRIALS: usize = 3;
const ADAPT_BLOCKS: u64 = 400;

/// Runs `schedule` over `song_frames` frames of `sources` (source `i` feeds engine input `i`;
/// past their end they must read silence, from which the tail and the latency are rendered),
/// handing every output block, latency-trimmed and with the tail, to
/// `sink(output_index, song_position, block)`.
pub fn run<S, E, F>(
    schedule: &mut Schedule,
    sources: &mut [S],
    song_frames: u64,
    settings: RunSettings<'_, '_>,
    sink: F,
) -> Result<(), E>
where
    S: BlockSource,
    E: From<S::Error> + From<Interrupted>,
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
{
    // Every input is refilled before every block when each has a source: the input steps can
    // move the blocks into the graph's buffers instead of copying them.
    let moved = sources.len() == schedule.input_count();
    let was = schedule.set_move_inputs(moved);
    let result = run_moving(schedule, sources, song_frames, settings, sink);
    schedule.set_move_inputs(was);
    result
}

/// [`run`], with the schedule's input steps set up.
fn run_moving<S, E, F>(
    schedule: &mut Schedule,
    sources: &mut [S],
    song_frames: u64,
    settings: RunSettings<'_, '_>,
    sink: F,
) -> Result<(), E>
where
    S: BlockSource,
    E: From<S::Error> + From<Interrupted>,
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
{
    let block = settings.block.min(schedule.max_block()).max(1);
    let threads = settings.threads;
    let mut cur = Cursor::new(schedule, song_frames, settings, sink);
    let total = cur.total;
    // One source is enough to split: the worker can take the chain from it (a loudness
    // solve's final pass: the spill through the limiter) while this thread meters and writes.
    if threads < 2 || sources.is_empty() {
        return one_thread(schedule, sources, block, &mut cur, total);
    }
    let profile = profiled(schedule, sources, block, &mut cur)?;
    if cur.finished() {
        return Ok(());
    }
    let plan = balance::plan(schedule, &profile);
    if plan.worker_cost() < 0.1 * plan.all {
        // Not worth a thread: finish on this one.
        return one_thread(schedule, sources, block, &mut cur, total);
    }
    two_threads(schedule, sources, block, &mut cur, plan)
}

/// Where the loop stands and what it hands on: shared by the one- and two-thread loops.
struct Cursor<'a, 'b, F> {
    done: u64,
    total: u64,
    song_frames: u64,
    tail: u64,
    latencies: Vec<u64>,
    interrupt: Option<&'a AtomicBool>,
    progress: Option<&'b mut dyn FnMut(u64, u64)>,
    stop: Option<&'a Cell<bool>>,
    sink: F,
}

impl<'a, 'b, F> Cursor<'a, 'b, F> {
    fn new(schedule: &Schedule, song_frames: u64, settings: RunSettings<'a, 'b>, sink: F) -> Self {
        let tail = schedule.tail() as u64;
        let latencies: Vec<u64> = (0..schedule.output_count())
            .map(|o| schedule.output_slot(o).latency as u64)
            .collect();
        // Sources past their end read silence, so the tail and the latency are rendered from
        // zeros.
        let total = song_frames + tail + latencies.iter().copied().max().unwrap_or(0);
        Self {
            done: 0,
            total,
            song_frames,
            tail,
            latencies,
            interrupt: settings.interrupt,
            progress: settings.progress,
            stop: settings.stop,
            sink,
        }
    }

    /// Whether the run is over: everything rendered, or the sink needs no more.
    fn finished(&self) -> bool {
        self.done >= self.total || self.stop.is_some_and(Cell::get)
    }

    fn check_interrupt(&self) -> Result<(), Interrupted> {
        if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(Interrupted);
        }
        Ok(())
    }

    /// Hands the outputs of the block just processed (`n` frames at `self.done`) to the sink.
    fn emit<E>(&mut self, schedule: &Schedule, n: usize) -> Result<(), E>
    where
        F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
    {
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

/// Reads `n` frames of every source into the schedule's inputs, in order.
fn read_all<S: BlockSource>(
    into: &mut Schedule,
    sources: &mut [S],
    n: usize,
) -> Result<(), S::Error> {
    for (k, source) in sources.iter_mut().enumerate() {
        source.read_into(into.input_mut(k, n), n)?;
    }
    Ok(())
}

/// [`read_all`] over borrowed sources (one side of a split run).
fn read<S: BlockSource>(
    into: &mut Schedule,
    sources: &mut [&mut S],
    n: usize,
) -> Result<(), S::Error> {
    for (k, source) in sources.iter_mut().enumerate() {
        source.read_into(into.input_mut(k, n), n)?;
    }
    Ok(())
}

/// Moves the sources of `inputs` (engine input indexes) out of `by_input`, in that order.
fn take_sources<'x, S>(by_input: &mut [Option<&'x mut S>], inputs: &[usize]) -> Vec<&'x mut S> {
    inputs
        .iter()
        .map(|&i| by_input[i].take().expect("one owner per source"))
        .collect()
}

/// The loop on this thread alone, up to frame `until`.
fn one_thread<S, E, F>(
    schedule: &mut Schedule,
    sources: &mut [S],
    block: usize,
    cur: &mut Cursor<'_, '_, F>,
    until: u64,
) -> Result<(), E>
where
    S: BlockSource,
    E: From<S::Error> + From<Interrupted>,
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
{
    while cur.done < until && !cur.finished() {
        cur.check_interrupt()?;
        let n = block.min((cur.total - cur.done) as usize);
        read_all(schedule, sources, n)?;
        assert_no_alloc::assert_no_alloc(|| schedule.process(n));
        cur.emit(schedule, n)?;
    }
    Ok(())
}

/// The first [`PROFILE_BLOCKS`] on this thread, timing every step (in this thread's CPU time,
/// see [`Busy`]).
fn profiled<S, E, F>(
    schedule: &mut Schedule,
    sources: &mut [S],
    block: usize,
    cur: &mut Cursor<'_, '_, F>,
) -> Result<Profile, E>
where
    S: BlockSource,
    E: From<S::Error> + From<Interrupted>,
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
{
    let mut profile = Profile::new(schedule);
    let clock = Busy::start();
    let until = (PROFILE_BLOCKS * block as u64).min(cur.total);
    let mut blocks = 0u64;
    while cur.done < until && !cur.finished() {
        cur.check_interrupt()?;
        let n = block.min((cur.total - cur.done) as usize);
        if blocks == WARM_BLOCKS {
            profile.clear();
        }
        blocks += 1;
        read_all(schedule, sources, n)?;
        let clock = || clock.now();
        assert_no_alloc::assert_no_alloc(|| {
            schedule.process_profiled(n, &mut profile.steps, &clock)
        });
        let t = clock();
        cur.emit(schedule, n)?;
        profile.emitting += clock() - t;
    }
    Ok(profile)
}

/// The rest of the run on two threads. The first stretches run as trials: after each, the
/// busier thread gives a unit to the other if that evens them out (splitting again is cheap
/// and changes no bits).
fn two_threads<S, E, F>(
    schedule: &mut Schedule,
    sources: &mut [S],
    block: usize,
    cur: &mut Cursor<'_, '_, F>,
    plan: Plan,
) -> Result<(), E>
where
    S: BlockSource,
    E: From<S::Error> + From<Interrupted>,
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
{
    let total = cur.total;
    let mut to_worker = plan.to_worker.clone();
    // How many of its sources the worker reads itself (the last ones; this thread reads the
    // others ahead of it).
    let mut worker_reads = 0;
    // What reading one of the worker's sources cost this thread, last measured.
    let mut read_cost = 0.0;
    let mut trials = ADAPT_TRIALS;
    loop {
        let until = if trials > 0 {
            (cur.done + ADAPT_BLOCKS * block as u64).min(total)
        } else {
            total
        };
        let mut halves = split(schedule, &plan.unit, &to_worker);
        let worker_sources = halves.worker_inputs.len();
        worker_reads = worker_reads.min(worker_sources);
        let busy = run_split(&mut halves, sources, block, cur, until, worker_reads);
        join(schedule, halves);
        let busy = busy?;
        if let Some(c) = busy.read_per_source {
            read_cost = c;
        }
        if cur.finished() {
            return Ok(());
        }
        if trials > 0 {
            trials -= 1;
            let crossings = Crossings::new(schedule);
            let crossed = |t: &[bool]| crossings.count(schedule, &plan.unit, t);
            match balance::rebalance(
                &plan.unit_cost,
                &to_worker,
                busy.main,
                busy.worker,
                &plan.deps,
                plan.crossing,
                &crossed,
            ) {
                Some(better) => to_worker = better,
                None => match balance::rebalance_reads(
                    busy.main,
                    busy.worker,
                    read_cost,
                    worker_reads,
                    worker_sources,
                ) {
                    Some(reads) => worker_reads = reads,
                    None => trials = 0,
                },
            }
        }
    }
}

/// What a stretch of the two-thread loop measured ([`Busy`] seconds).
struct Stretch {
    /// This thread's busy time.
    main: f64,
    /// The worker's.
    worker: f64,
    /// Seconds this thread spent reading one of the worker's sources, on average (`None`: it
    /// read none of them).
    read_per_source: Option<f64>,
}

/// Blocks handed between the threads for [`GROUP`] blocks: a buffer per block and source
/// (read ahead for the worker), or per block and worker output (the worker's values, each in
/// a buffer of the main half's input it feeds, traded into that input: no copy).
type Set = Vec<AudioBuffer>;

/// The two-thread loop over a split schedule, up to frame `until`, the worker reading its last
/// `worker_reads` sources itself; returns what the threads were busy with ([`Stretch`]).
fn run_split<S, E, F>(
    halves: &mut Split,
    sources: &mut [S],
    block: usize,
    cur: &mut Cursor<'_, '_, F>,
    until: u64,
    worker_reads: usize,
) -> Result<Stretch, E>
where
    S: BlockSource,
    E: From<S::Error> + From<Interrupted>,
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
{
    let Split {
        worker,
        main,
        worker_inputs,
        main_inputs,
        ..
    } = halves;
    let mut by_input: Vec<Option<&mut S>> = sources.iter_mut().map(Some).collect();
    let mut worker_sources = take_sources(&mut by_input, worker_inputs);
    let mut main_sources = take_sources(&mut by_input, main_inputs);
    // The worker's last `worker_reads` sources are read on the worker; the others on this
    // thread, into blocks the worker trades for its inputs.
    let own_reads = worker_sources.split_off(worker_sources.len() - worker_reads);
    let read_ahead_count = worker_sources.len();
    let reading = (!worker_sources.is_empty()).then(|| {
        let (free_tx, free_rx) = crossbeam::channel::bounded::<Set>(IN_FLIGHT);
        let (full_tx, full_rx) = crossbeam::channel::bounded(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            let set: Set = (0..GROUP)
                .flat_map(|_| (0..worker_sources.len()).map(|k| worker.input_buffer(k)))
                .collect();
            free_tx.send(set).expect("room for every set");
        }
        ((free_rx, full_tx), (full_rx, free_tx))
    });
    let start = cur.done;
    let (mut read_ahead, read_ahead_queues) = match reading {
        Some(((free, full), w)) => (
            Some(ReadAhead {
                sources: worker_sources,
                block,
                done: start,
                until,
                free,
                full,
            }),
            Some(w),
        ),
        None => (None, None),
    };
    let exports = worker.output_count();
    let own_inputs = main_inputs.len();
    let (free_tx, free_rx) = crossbeam::channel::bounded::<Set>(IN_FLIGHT);
    let (full_tx, full_rx) = crossbeam::channel::bounded(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let set: Set = (0..GROUP)
            .flat_map(|_| (0..exports).map(|e| main.input_buffer(own_inputs + e)))
            .collect();
        free_tx.send(set).expect("room for every set");
    }
    std::thread::scope(|scope| {
        let worker_thread = scope.spawn(move || {
            worker_loop(
                worker,
                read_ahead_queues,
                own_reads,
                block,
                start,
                until,
                free_rx,
                full_tx,
            )
        });
        let main = MainSide {
            schedule: main,
            own: main_inputs.len(),
            block,
            until,
        };
        let result = main.run(
            &mut main_sources,
            read_ahead.take(),
            cur,
            &full_rx,
            &free_tx,
        );
        // Stops the worker if this side ended early: its next send or receive fails.
        drop(full_rx);
        drop(free_tx);
        let worker_busy = worker_thread.join().expect("the runner's worker thread");
        result.map(|(main, reading)| Stretch {
            main,
            worker: worker_busy,
            read_per_source: (read_ahead_count > 0).then(|| reading / read_ahead_count as f64),
        })
    })
}

/// The time a thread spends working, between [`Busy::resume`] and [`Busy::pause`]: the
/// thread's own CPU time where the platform has a clock for it (so that other processes on a
/// loaded machine do not count, nor the moments the thread waited for a core), else the wall
/// clock's.
struct Busy {
    total: f64,
    since: Option<f64>,
    epoch: Instant,
    cpu: bool,
}

impl Busy {
    fn start() -> Self {
        Self {
            total: 0.0,
            since: None,
            epoch: Instant::now(),
            cpu: thread_cpu_seconds().is_some(),
        }
    }

    fn now(&self) -> f64 {
        match self.cpu.then(thread_cpu_seconds).flatten() {
            Some(t) => t,
            None => self.epoch.elapsed().as_secs_f64(),
        }
    }

    fn resume(&mut self) {
        self.since = Some(self.now());
    }

    fn pause(&mut self) {
        if let Some(t) = self.since.take() {
            self.total += (self.now() - t).max(0.0);
        }
    }

    /// Seconds busy so far.
    fn seconds(mut self) -> f64 {
        self.pause();
        self.total
    }
}

/// CPU seconds of the calling thread, where the platform says.
fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes a whole timespec into the pointer it is given.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0 {
            return Some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9);
        }
    }
    None
}

/// The worker's sources, read on this thread ahead of the worker: from frame `done` to
/// `until`, each block into a buffer of its own, [`GROUP`] blocks per set (block by block,
/// source by source).
struct ReadAhead<'x, S: BlockSource> {
    sources: Vec<&'x mut S>,
    block: usize,
    done: u64,
    until: u64,
    /// Sets the worker has given back.
    free: Receiver<Set>,
    /// Sets read, to the worker.
    full: Sender<Set>,
}

impl<S: BlockSource> ReadAhead<'_, S> {
    /// Reads into every set the worker has given back, without waiting for one. (The worker
    /// gives a set back before it hands over the blocks made from it, so this thread, reading
    /// after each hand-over it takes, always finds it: the worker never waits for a set while
    /// this thread waits for its blocks.)
    fn fill(&mut self) -> Result<(), S::Error> {
        while self.done < self.until {
            let Ok(mut set) = self.free.try_recv() else {
                return Ok(());
            };
            let mut blocks = 0;
            while blocks < GROUP && self.done < self.until {
                let n = self.block.min((self.until - self.done) as usize);
                let count = self.sources.len();
                let buffers = &mut set[blocks * count..(blocks + 1) * count];
                for (source, buffer) in self.sources.iter_mut().zip(buffers) {
                    source.read_into(buffer.view_mut(n), n)?;
                }
                self.done += n as u64;
                blocks += 1;
            }
            if self.full.send(set).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The worker's end of the read-ahead's queues: blocks read, and the sets going back.
type Reads = (Receiver<Set>, Sender<Set>);

/// The worker thread: its half of the schedule over the blocks this thread reads from its
/// first sources (`reads`; none: it has none) and those it reads itself from `own` (its last
/// inputs), [`GROUP`] blocks per set, from frame `done` to `until`. Returns the seconds it was
/// busy; a read that fails is sent on as the set's error.
#[allow(clippy::too_many_arguments)]
fn worker_loop<S: BlockSource>(
    worker: &mut Schedule,
    reads: Option<Reads>,
    mut own: Vec<&mut S>,
    block: usize,
    mut done: u64,
    until: u64,
    free: Receiver<Set>,
    full: Sender<Result<(Set, usize), S::Error>>,
) -> f64 {
    let mut busy = Busy::start();
    let read_ahead = worker.input_count() - own.len();
    while done < until {
        let Ok(mut set) = free.recv() else {
            break;
        };
        let mut read = match &reads {
            None => None,
            Some((blocks, _)) => match blocks.recv() {
                Ok(read) => Some(read),
                Err(_) => break,
            },
        };
        busy.resume();
        let mut blocks = 0;
        let mut failed = None;
        while blocks < GROUP && done < until {
            let n = block.min((until - done) as usize);
            if let Some(read) = read.as_mut() {
                for (k, buffer) in read[blocks * read_ahead..(blocks + 1) * read_ahead]
                    .iter_mut()
                    .enumerate()
                {
                    worker.trade_input(k, buffer);
                }
            }
            for (k, source) in own.iter_mut().enumerate() {
                if let Err(e) = source.read_into(worker.input_mut(read_ahead + k, n), n) {
                    failed = Some(e);
                }
            }
            if failed.is_some() {
                break;
            }
            assert_no_alloc::assert_no_alloc(|| worker.process(n));
            let exports = worker.output_count();
            for (e, buf) in set[blocks * exports..(blocks + 1) * exports]
                .iter_mut()
                .enumerate()
            {
                let src = worker.output(e, n);
                for c in 0..src.channels() {
                    stream_copy(buf.channel_mut(c, n), src.channel(c));
                }
            }
            done += n as u64;
            blocks += 1;
        }
        store_fence();
        busy.pause();
        if let (Some(read), Some((_, back))) = (read, &reads) {
            let _ = back.send(read);
        }
        if let Some(e) = failed {
            let _ = full.send(Err(e));
            break;
        }
        if full.send(Ok((set, blocks))).is_err() {
            break;
        }
    }
    busy.seconds()
}

/// This thread's half of a split run.
struct MainSide<'s> {
    schedule: &'s mut Schedule,
    /// Inputs read from this side's own sources (the worker's values follow them).
    own: usize,
    block: usize,
    until: u64,
}

impl MainSide<'_> {
    /// Takes the worker's sets as they come, runs this half over them and hands the outputs to
    /// the sink, reading the worker's sources ahead of it (`read_ahead`; dropped on return, which
    /// stops a worker waiting for them). Returns the seconds it was busy, and those of them it
    /// spent reading the worker's sources.
    fn run<S, E, F>(
        self,
        sources: &mut [&mut S],
        mut read_ahead: Option<ReadAhead<'_, S>>,
        cur: &mut Cursor<'_, '_, F>,
        full: &Receiver<Result<(Set, usize), S::Error>>,
        free: &Sender<Set>,
    ) -> Result<(f64, f64), E>
    where
        S: BlockSource,
        E: From<S::Error> + From<Interrupted>,
        F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
    {
        let (main, block) = (self.schedule, self.block);
        let mut busy = Busy::start();
        let mut reading = Busy::start();
        while cur.done < self.until && !cur.finished() {
            cur.check_interrupt()?;
            if let Some(r) = read_ahead.as_mut() {
                busy.resume();
                reading.resume();
                r.fill()?;
                reading.pause();
                busy.pause();
            }
            let (mut set, blocks) = match full.recv() {
                Ok(Ok(got)) => got,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => panic!("the runner's worker thread stopped"),
            };
            busy.resume();
            for b in 0..blocks {
                if cur.finished() {
                    break;
                }
                let n = block.min((self.until - cur.done) as usize);
                read(main, sources, n)?;
                let exports = set.len() / GROUP;
                for (e, buf) in set[b * exports..(b + 1) * exports].iter_mut().enumerate() {
                    main.trade_input(self.own + e, buf);
                }
                assert_no_alloc::assert_no_alloc(|| main.process(n));
                cur.emit(main, n)?;
            }
            busy.pause();
            let _ = free.send(set);
        }
        Ok((busy.seconds(), reading.seconds()))
    }
}
