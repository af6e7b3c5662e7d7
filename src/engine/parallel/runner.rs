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
//! the strips, whole batches of them (a batch split between the threads runs slower on each).
//! Which of the worker's sources this thread reads and which the worker reads itself follows
//! the two threads' busy times all through the run (the work of each block changes with the
//! music): every few sets of blocks the busier thread hands one source's reading to the other,
//! the source itself going with the blocks, so that each is still read in order
//! ([`ReadAhead`]). With a single source (a spilled master) the worker may take its whole
//! chain, and this thread the taps (meters) and the sink: a pipeline of two stages. The output
//! is the same, bit for bit, whatever the thread count.
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

/// Blocks rendered on one thread first, timing every step and every source's reading, before
/// the work is split (the time they take on one thread is lost to the second): about
/// [`PROFILE_FRAMES`] frames, 2 s at 48 kHz, which times every step to a few percent, in
/// whole blocks, at least [`PROFILE_BLOCKS`]`.0` and at most `.1` of them (24 of the default
/// 4096 frames). The first blocks are not counted (cold caches): [`WARM_FRAMES`], in 2 to 8
/// blocks.
const PROFILE_FRAMES: usize = 96 * 1024;
/// See [`PROFILE_FRAMES`].
const PROFILE_BLOCKS: (usize, usize) = (24, 96);
/// See [`PROFILE_FRAMES`].
const WARM_FRAMES: usize = 8 * 1024;
/// Blocks the worker renders per hand-over.
const GROUP: usize = 8;
/// Hand-overs in flight: how far the worker may run ahead (and the reading ahead of it).
const IN_FLIGHT: usize = 3;
/// Trial stretches of the two-thread loop, and their length: about [`ADAPT_FRAMES`] frames in
/// whole blocks, at most 400 (100 of the default 4096 frames).
const ADAPT_TRIALS: usize = 3;
const ADAPT_FRAMES: usize = 400 * 1024;

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

/// The first [`PROFILE_FRAMES`] on this thread, timing every step and every source's reading
/// (in this thread's CPU time, see [`Busy`]).
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
    let mut profile = Profile::new(schedule, sources.len());
    let clock = Busy::start();
    let warm = (WARM_FRAMES / block).clamp(2, 8) as u64;
    let measured = (PROFILE_FRAMES / block).clamp(PROFILE_BLOCKS.0, PROFILE_BLOCKS.1) as u64;
    let until = ((warm + measured) * block as u64).min(cur.total);
    let mut blocks = 0u64;
    while cur.done < until && !cur.finished() {
        cur.check_interrupt()?;
        let n = block.min((cur.total - cur.done) as usize);
        if blocks == warm {
            profile.clear();
        }
        blocks += 1;
        for (k, source) in sources.iter_mut().enumerate() {
            let t = clock.now();
            source.read_into(schedule.input_mut(k, n), n)?;
            profile.reads[k] += clock.now() - t;
        }
        profile.blocks += 1;
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
/// and changes no bits). Within every stretch, the reading of the worker's sources moves
/// between the threads as their busy times say ([`ReadAhead::decide`]).
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
    // How many of the worker's sources this thread reads ahead of it (the first ones; the
    // worker reads the others itself): at first as many as the profile says even the threads
    // out, then as the last stretch left it.
    let mut ahead = None;
    let mut trials = ADAPT_TRIALS;
    loop {
        let until = if trials > 0 {
            let blocks = (ADAPT_FRAMES / block).clamp(1, 400) as u64;
            (cur.done + blocks * block as u64).min(total)
        } else {
            total
        };
        let mut halves = split(schedule, &plan.unit, &to_worker);
        let inputs = &halves.worker_inputs;
        let count = inputs.len();
        let ahead_now =
            (*ahead.get_or_insert_with(|| count - balance::first_reads(&plan, inputs))).min(count);
        // One source's reading for a set of blocks, as the profile timed it.
        let read_cost = inputs.iter().map(|&i| plan.reads[i]).sum::<f64>()
            / (count.max(1) as f64 * plan.blocks.max(1) as f64)
            * GROUP as f64;
        let busy = run_split(
            &mut halves,
            sources,
            block,
            cur,
            until,
            (ahead_now, read_cost),
        );
        join(schedule, halves);
        let busy = busy?;
        ahead = Some(busy.ahead);
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
                None => trials = 0,
            }
        }
    }
}

/// What a stretch of the two-thread loop measured ([`Busy`] seconds), and how it left the
/// reading of the worker's sources.
struct Stretch {
    /// This thread's busy time.
    main: f64,
    /// The worker's.
    worker: f64,
    /// How many of the worker's sources this thread read ahead of it at the end.
    ahead: usize,
}

/// Blocks handed between the threads for [`GROUP`] blocks: a buffer per block and source
/// (read ahead for the worker), or per block and worker output (the worker's values, each in
/// a buffer of the main half's input it feeds, traded into that input: no copy).
type Set = Vec<AudioBuffer>;

/// Sets of blocks after which this thread weighs the two threads' busy times and may move one
/// source's reading to the other ([`balance::shift_reads`]): 64 blocks, 5.5 s of a song at
/// 48 kHz in blocks of 4096 frames, about 40 looks at a song of four minutes.
const SHARE_WINDOW: usize = 8;

/// A set of blocks read ahead for the worker: its first `ahead` sources' blocks (the worker
/// reads the others itself), and a source whose reading changes hands with this set.
struct ReadSet<'x, S> {
    /// [`GROUP`] blocks of every one of the worker's sources (block by block, source by
    /// source), the first `ahead` sources' read.
    buffers: Set,
    ahead: usize,
    /// The source (the worker's first own, `ahead`) whose reading this thread hands the worker
    /// from this set on.
    given: Option<&'x mut S>,
    /// Whether the worker hands its first own source (`ahead`) back after this set: this
    /// thread reads it from the next on.
    take_back: bool,
}

/// The worker's values for up to [`GROUP`] blocks, handed to this thread.
struct Handed<'x, S> {
    /// A buffer per block and value.
    set: Set,
    blocks: usize,
    /// Seconds the worker was busy with them.
    busy: f64,
    /// The source given back ([`ReadSet::take_back`]).
    returned: Option<&'x mut S>,
}

/// The two-thread loop over a split schedule, up to frame `until`; this thread reads the first
/// `ahead` of the worker's sources ahead of it at first (the worker the others), a source's
/// reading costing about `read_cost` seconds per set; returns what the threads were busy
/// with ([`Stretch`]).
fn run_split<S, E, F>(
    halves: &mut Split,
    sources: &mut [S],
    block: usize,
    cur: &mut Cursor<'_, '_, F>,
    until: u64,
    (ahead, read_cost): (usize, f64),
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
    let worker_sources = take_sources(&mut by_input, worker_inputs);
    let mut main_sources = take_sources(&mut by_input, main_inputs);
    let count = worker_sources.len();
    // This thread holds the first `ahead` of the worker's sources, the worker the others.
    let mut held: Vec<Option<&mut S>> = worker_sources.into_iter().map(Some).collect();
    let own: Vec<Option<&mut S>> = (0..count)
        .map(|k| if k < ahead { None } else { held[k].take() })
        .collect();
    let start = cur.done;
    let (mut read_ahead, read_queues) = if count > 0 {
        let (free_tx, free_rx) = crossbeam::channel::bounded::<Set>(IN_FLIGHT);
        let (full_tx, full_rx) = crossbeam::channel::bounded(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            let set: Set = (0..GROUP)
                .flat_map(|_| (0..count).map(|k| worker.input_buffer(k)))
                .collect();
            free_tx.send(set).expect("room for every set");
        }
        (
            Some(ReadAhead {
                sources: held,
                ahead,
                asked: false,
                next: None,
                block,
                done: start,
                until,
                free: free_rx,
                full: full_tx,
                read_cost,
                reading: Busy::start(),
                read: 0,
                window: (0, 0.0, 0.0),
            }),
            Some((full_rx, free_tx)),
        )
    } else {
        (None, None)
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
                read_queues,
                own,
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
            read_ahead.as_mut(),
            cur,
            &full_rx,
            &free_tx,
        );
        // Stops the worker if this side ended early: its next send or receive fails.
        drop(full_rx);
        drop(free_tx);
        // (A source asked back comes back with the last set, or the run ended before.)
        let ahead = read_ahead.map_or(0, |r| r.ahead + usize::from(r.asked));
        let worker_busy = worker_thread.join().expect("the runner's worker thread");
        result.map(|main| Stretch {
            main,
            worker: worker_busy,
            ahead,
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

    /// Seconds busy so far, the stretch running counted.
    fn now_total(&self) -> f64 {
        self.total + self.since.map_or(0.0, |t| (self.now() - t).max(0.0))
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
/// source by source), the first `ahead` of them; the worker reads the others itself. Every
/// [`SHARE_WINDOW`] sets, [`ReadAhead::decide`] may move one source's reading to the other
/// thread: to the worker with the next set read (the source goes with it), or back from the
/// worker once it has read the next set (no set is read meanwhile: a source is read in order).
struct ReadAhead<'x, S: BlockSource> {
    /// The worker's sources, in its order: this thread holds the first `ahead`.
    sources: Vec<Option<&'x mut S>>,
    ahead: usize,
    /// A source asked back and not yet returned ([`ReadSet::take_back`]).
    asked: bool,
    /// The move decided, made with the next set read.
    next: Option<balance::ReadShift>,
    block: usize,
    done: u64,
    until: u64,
    /// Sets the worker has given back.
    free: Receiver<Set>,
    /// Sets read, to the worker.
    full: Sender<ReadSet<'x, S>>,
    /// Seconds one source's reading takes per set: measured here while this thread reads some.
    read_cost: f64,
    /// Time spent reading, and the sources' sets read in it.
    reading: Busy,
    read: usize,
    /// Since the last look: sets handed over, this thread's busy seconds when it started, the
    /// worker's busy seconds.
    window: (usize, f64, f64),
}

impl<'x, S: BlockSource> ReadAhead<'x, S> {
    /// Reads into every set the worker has given back, without waiting for one (none while a
    /// source is asked back). (The worker gives a set back before it hands over the blocks
    /// made from it, so this thread, reading after each hand-over it takes, always finds it:
    /// the worker never waits for a set while this thread waits for its blocks.)
    fn fill(&mut self) -> Result<(), S::Error> {
        while self.done < self.until && !self.asked {
            let Ok(mut buffers) = self.free.try_recv() else {
                return Ok(());
            };
            let count = self.sources.len();
            let mut given = None;
            let mut take_back = false;
            match self.next.take() {
                Some(balance::ReadShift::Give) if self.ahead > 0 => {
                    self.ahead -= 1;
                    given = self.sources[self.ahead].take();
                }
                Some(balance::ReadShift::Take) if self.ahead < count => take_back = true,
                _ => {}
            }
            self.reading.resume();
            let mut blocks = 0;
            while blocks < GROUP && self.done < self.until {
                let n = self.block.min((self.until - self.done) as usize);
                let buffers = &mut buffers[blocks * count..blocks * count + self.ahead];
                for (source, buffer) in self.sources.iter_mut().zip(buffers) {
                    source
                        .as_mut()
                        .expect("this thread holds the sources it reads")
                        .read_into(buffer.view_mut(n), n)?;
                }
                self.done += n as u64;
                blocks += 1;
            }
            self.reading.pause();
            self.read += self.ahead;
            let set = ReadSet {
                buffers,
                ahead: self.ahead,
                given,
                take_back,
            };
            self.asked = take_back;
            if self.full.send(set).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Takes back the source the worker returns ([`ReadSet::take_back`]).
    fn take_back(&mut self, source: &'x mut S) {
        self.sources[self.ahead] = Some(source);
        self.ahead += 1;
        self.asked = false;
    }

    /// Counts a set handed over (the worker busy `worker` seconds on it; this thread `main`
    /// seconds so far) and, every [`SHARE_WINDOW`] sets, decides whether one source's reading
    /// moves to the other thread ([`balance::shift_reads`]).
    fn decide(&mut self, main: f64, worker: f64) {
        let (sets, since, worker_busy) = &mut self.window;
        *sets += 1;
        *worker_busy += worker;
        if *sets < SHARE_WINDOW {
            return;
        }
        let (main_busy, worker_busy, sets) = (main - *since, *worker_busy, *sets);
        self.window = (0, main, 0.0);
        if self.read > 0 {
            self.read_cost = self.reading.total / self.read as f64;
        }
        if self.asked || self.next.is_some() {
            return;
        }
        self.next = balance::shift_reads(
            main_busy,
            worker_busy,
            self.read_cost * sets as f64,
            self.ahead,
            self.sources.len(),
        );
    }
}

/// The worker's end of the read-ahead's queues: sets read, and their buffers going back.
type Reads<'x, S> = (Receiver<ReadSet<'x, S>>, Sender<Set>);

/// The worker thread: its half of the schedule over the blocks this thread reads ahead of it
/// (`reads`; none: it has no sources) and those it reads itself (`own`: the sources it holds,
/// in its order, the others `None`), [`GROUP`] blocks per set, from frame `done` to `until`.
/// Returns the seconds it was busy; a read that fails is sent on as the set's error.
#[allow(clippy::too_many_arguments)]
fn worker_loop<'x, S: BlockSource>(
    worker: &mut Schedule,
    reads: Option<Reads<'x, S>>,
    mut own: Vec<Option<&'x mut S>>,
    block: usize,
    mut done: u64,
    until: u64,
    free: Receiver<Set>,
    full: Sender<Result<Handed<'x, S>, S::Error>>,
) -> f64 {
    let mut busy = Busy::start();
    let count = own.len();
    while done < until {
        let Ok(mut set) = free.recv() else {
            break;
        };
        let mut read = match &reads {
            None => None,
            Some((sets, _)) => match sets.recv() {
                Ok(read) => Some(read),
                Err(_) => break,
            },
        };
        let before = busy.total;
        busy.resume();
        let ahead = read.as_ref().map_or(0, |r| r.ahead);
        if let Some(given) = read.as_mut().and_then(|r| r.given.take()) {
            own[ahead] = Some(given);
        }
        let mut blocks = 0;
        let mut failed = None;
        while blocks < GROUP && done < until {
            let n = block.min((until - done) as usize);
            if let Some(read) = read.as_mut() {
                for (k, buffer) in read.buffers[blocks * count..blocks * count + ahead]
                    .iter_mut()
                    .enumerate()
                {
                    worker.trade_input(k, buffer);
                }
            }
            for (k, source) in own.iter_mut().enumerate().skip(ahead) {
                let source = source
                    .as_mut()
                    .expect("the worker holds the sources it reads");
                if let Err(e) = source.read_into(worker.input_mut(k, n), n) {
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
        let mut returned = None;
        if let (Some(read), Some((_, back))) = (read, &reads) {
            if read.take_back {
                returned = own[ahead].take();
            }
            let _ = back.send(read.buffers);
        }
        if let Some(e) = failed {
            let _ = full.send(Err(e));
            break;
        }
        let handed = Handed {
            set,
            blocks,
            busy: busy.total - before,
            returned,
        };
        if full.send(Ok(handed)).is_err() {
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
    /// the sink, reading the worker's first sources ahead of it (`read_ahead`; dropped by the
    /// caller after this returns, which stops a worker waiting for them). Returns the seconds
    /// it was busy.
    fn run<'x, S, E, F>(
        self,
        sources: &mut [&mut S],
        mut read_ahead: Option<&mut ReadAhead<'x, S>>,
        cur: &mut Cursor<'_, '_, F>,
        full: &Receiver<Result<Handed<'x, S>, S::Error>>,
        free: &Sender<Set>,
    ) -> Result<f64, E>
    where
        S: BlockSource,
        E: From<S::Error> + From<Interrupted>,
        F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), E>,
    {
        let (main, block) = (self.schedule, self.block);
        let mut busy = Busy::start();
        while cur.done < self.until && !cur.finished() {
            cur.check_interrupt()?;
            if let Some(r) = read_ahead.as_mut() {
                busy.resume();
                r.fill()?;
                busy.pause();
            }
            let handed = match full.recv() {
                Ok(Ok(got)) => got,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => panic!("the runner's worker thread stopped"),
            };
            busy.resume();
            if let Some(r) = read_ahead.as_mut() {
                if let Some(source) = handed.returned {
                    // The worker waits for the next set: read it first.
                    r.take_back(source);
                    r.fill()?;
                }
                r.decide(busy.now_total(), handed.busy);
            }
            let mut set = handed.set;
            for b in 0..handed.blocks {
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
        Ok(busy.seconds())
    }
}
