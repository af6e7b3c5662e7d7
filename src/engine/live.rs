//! The real-time engine: runs the current schedule in a device callback, takes new schedules
//! from the control thread without a click, and sends the old ones back to be dropped there.
//!
//! The control side compiles a new schedule, plans the swap (a [`SwapPlan`], by index) and
//! hands it to [`LiveControl::submit`], which pushes it through a lock-free single-producer
//! single-consumer queue. At the next block boundary the audio side ([`LiveEngine`]) lets the new schedule take
//! over the state of the unchanged nodes; if the structure changed it runs both schedules for the
//! crossfade (equal gain), each delayed to the same output latency so the crossfade does not comb.
//! The crossfade starts once the new schedule's first frame reaches the output (after the live
//! latency), so it never fades towards the silence of a delay line that is still filling.
//! The old schedule travels back through a second queue and is dropped on the control thread.
//!
//! Every schedule handed over comes back through that second queue exactly once, so the control
//! side bounds the number in flight (handed over and not yet collected back) by the queue's
//! capacity: [`LiveControl::submit`] refuses a new one until [`LiveControl::collect_garbage`]
//! frees a place, and the audio side never finds the queue full (nothing is ever dropped there).
//!
//! A NaN or infinity from any node is caught at that node (muted, node reset) and reported; a
//! panic inside processing becomes silence and a report, and the engine waits for the next
//! schedule.
//!
//! # Realtime safety
//! [`LiveEngine::process`] never allocates, locks or does I/O: swaps copy state into buffers the
//! control side allocated, and every queue is preallocated.

use super::schedule::hand_over_state;
use super::swap::{NodeHandover, SwapPlan};
use super::Schedule;
use crate::dsp::buffer::MAX_CHANNELS;
use crate::dsp::latency_delay::LatencyDelay;
use crate::dsp::{AudioBuffer, AudioMut, AudioRef, ParamBlock, ProcessSpec, Processor};
use rtrb::{Consumer, Producer, RingBuffer};

/// Something the audio side reports to the control side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineEvent {
    /// Swap `generation` took effect; its first output frame is stream frame `position`.
    Swapped {
        /// The plan's generation.
        generation: u64,
        /// Stream frame (input side) where the new schedule started.
        position: i64,
        /// Whether it crossfades.
        crossfade: bool,
    },
    /// The non-finite guard muted a node's output (total count so far, last node index).
    NonFinite {
        /// Events so far.
        count: u64,
        /// Index of the node in the current schedule.
        node: usize,
        /// Stream frame.
        position: i64,
    },
    /// Processing panicked: output is silent until the next schedule arrives.
    Panicked {
        /// Stream frame.
        position: i64,
    },
}

/// A schedule as the live engine runs it: with its output delayed to the engine's fixed latency.
struct Running {
    schedule: Box<Schedule>,
    pad: LatencyDelay,
    out: AudioBuffer,
    poisoned: bool,
    generation: u64,
}

impl Running {
    fn new(mut schedule: Box<Schedule>, live_latency: usize, generation: u64) -> Self {
        schedule.set_guard_nonfinite(true);
        let channels = schedule.output(0, 0).channels();
        let mut pad = LatencyDelay::new(live_latency.saturating_sub(schedule.latency()), channels);
        pad.prepare(&ProcessSpec {
            sample_rate: schedule.sample_rate(),
            max_block: schedule.max_block(),
            input_channels: channels,
        });
        let out = AudioBuffer::new(MAX_CHANNELS, schedule.max_block());
        Self {
            schedule,
            pad,
            out,
            poisoned: false,
            generation,
        }
    }

    /// Runs one block over `inputs`; leaves the padded output in `self.out`.
    fn run(&mut self, inputs: &[AudioBuffer], frames: usize, events: &mut Producer<EngineEvent>) {
        let channels = self.schedule.output(0, 0).channels();
        self.out.set_channels(channels);
        if self.poisoned {
            self.out.clear(frames);
            return;
        }
        for (i, input) in inputs.iter().enumerate().take(self.schedule.input_count()) {
            let mut dst = self.schedule.input_mut(i, frames);
            for c in 0..dst.channels() {
                dst.channel_mut(c)
                    .copy_from_slice(input.channel(c.min(input.channels() - 1), frames));
            }
        }
        let before = self.schedule.nonfinite_report().count;
        let schedule = &mut self.schedule;
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| schedule.process(frames)))
                .is_ok();
        if !ok {
            self.poisoned = true;
            self.out.clear(frames);
            let _ = events.push(EngineEvent::Panicked {
                position: self.schedule.position(),
            });
            return;
        }
        let report = self.schedule.nonfinite_report();
        if report.count != before {
            let _ = events.push(EngineEvent::NonFinite {
                count: report.count,
                node: report.last_node.unwrap_or(usize::MAX),
                position: report.last_position,
            });
        }
        let src = self.schedule.output(0, frames);
        for c in 0..channels {
            self.out
                .channel_mut(c, frames)
                .copy_from_slice(src.channel(c));
        }
        self.pad
            .process(&mut self.out.view_mut(frames), None, ParamBlock::new(&[]));
    }
}

/// A new schedule in transit, prepared on the control side; it travels back as garbage (with
/// the old schedule inside) so that nothing is freed on the audio thread.
struct Transit {
    running: Option<Running>,
    handovers: Vec<NodeHandover>,
    crossfade_frames: usize,
    generation: u64,
}

/// The audio side of live playback.
pub struct LiveEngine {
    current: Running,
    fading: Option<Box<Transit>>,
    fade_pos: usize,
    fade_len: usize,
    live_latency: usize,
    inputs: Vec<AudioBuffer>,
    out: AudioBuffer,
    incoming: Consumer<Box<Transit>>,
    retired: Producer<Box<Transit>>,
    events: Producer<EngineEvent>,
    max_block: usize,
    retire_overflows: u64,
}

/// The control side of live playback: hands schedules over, collects the old ones and the events.
pub struct LiveControl {
    outgoing: Producer<Box<Transit>>,
    retired: Consumer<Box<Transit>>,
    events: Consumer<EngineEvent>,
    live_latency: usize,
    /// Plans handed over and not yet collected back from the retire queue.
    outstanding: usize,
}

/// How many plans may wait at once (a burst of saves keeps only what fits; the control side
/// waits for room).
const QUEUE: usize = 8;

/// Capacity of the retire queue, and so the most plans in flight at once (handed over and not
/// yet collected back): each comes back exactly once, so the audio side always has room.
pub const MAX_IN_FLIGHT: usize = QUEUE * 2;

impl LiveEngine {
    /// A live engine running `schedule`, with every output delayed to `live_latency` frames (at
    /// least the schedule's latency: later schedules with more latency shift the output).
    pub fn new(schedule: Schedule, live_latency: usize) -> (LiveEngine, LiveControl) {
        let max_block = schedule.max_block();
        let inputs = (0..schedule.input_count())
            .map(|i| AudioBuffer::new(schedule.input_channels(i).max(1), max_block))
            .collect();
        Self::with_inputs(schedule, live_latency, inputs)
    }

    /// Like [`LiveEngine::new`], with room for `inputs` stereo inputs whatever the first
    /// schedule has, so that later schedules may add stems or turn a mono stem stereo (live
    /// playback with hot reload). Inputs a schedule does not read are ignored.
    pub fn with_input_capacity(
        schedule: Schedule,
        live_latency: usize,
        inputs: usize,
    ) -> (LiveEngine, LiveControl) {
        let max_block = schedule.max_block();
        let inputs = (0..inputs.max(schedule.input_count()))
            .map(|_| AudioBuffer::new(MAX_CHANNELS, max_block))
            .collect();
        Self::with_inputs(schedule, live_latency, inputs)
    }

    fn with_inputs(
        schedule: Schedule,
        live_latency: usize,
        inputs: Vec<AudioBuffer>,
    ) -> (LiveEngine, LiveControl) {
        let (outgoing, incoming) = RingBuffer::new(QUEUE);
        let (retired_tx, retired_rx) = RingBuffer::new(MAX_IN_FLIGHT);
        let (events_tx, events_rx) = RingBuffer::new(1024);
        let live_latency = live_latency.max(schedule.latency());
        let max_block = schedule.max_block();
        let engine = LiveEngine {
            current: Running::new(Box::new(schedule), live_latency, 0),
            fading: None,
            fade_pos: 0,
            fade_len: 0,
            live_latency,
            inputs,
            out: AudioBuffer::new(MAX_CHANNELS, max_block),
            incoming,
            retired: retired_tx,
            events: events_tx,
            max_block,
            retire_overflows: 0,
        };
        (
            engine,
            LiveControl {
                outgoing,
                retired: retired_rx,
                events: events_rx,
                live_latency,
                outstanding: 0,
            },
        )
    }

    /// The largest block [`LiveEngine::process`] takes.
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// The fixed output latency in frames.
    pub fn live_latency(&self) -> usize {
        self.live_latency
    }

    /// Stream position of the input side (frames of stems consumed).
    pub fn position(&self) -> i64 {
        self.current.schedule.position()
    }

    /// The generation of the schedule playing.
    pub fn generation(&self) -> u64 {
        self.current.generation
    }

    /// Engine input `i` (a stem), to be filled before [`LiveEngine::process`].
    pub fn input_mut(&mut self, i: usize, frames: usize) -> AudioMut<'_> {
        self.inputs[i].view_mut(frames)
    }

    /// Number of engine inputs.
    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// How many times the retire queue was found full (the control side's bound makes it
    /// impossible; the spent plan would then be leaked, never freed here). Zero.
    pub fn retire_overflows(&self) -> u64 {
        self.retire_overflows
    }

    /// Sends a spent plan back to the control side. The bound on plans in flight guarantees
    /// room; should it ever be missing, the plan is leaked rather than freed on this thread.
    fn retire(&mut self, transit: Box<Transit>) {
        if let Err(rtrb::PushError::Full(t)) = self.retired.push(transit) {
            std::mem::forget(t);
            self.retire_overflows += 1;
        }
    }

    /// Moves the stream position (seek). Signal state is cleared so nothing of the old place
    /// rings on.
    pub fn seek(&mut self, position: i64) {
        self.current.schedule.reset(position);
        self.current.pad.reset();
        if let Some(old) = self.fading.take() {
            self.retire(old);
        }
    }

    /// Takes a waiting schedule, if any, at this block boundary.
    fn take_new_schedule(&mut self) {
        while let Ok(mut transit) = self.incoming.pop() {
            let Some(mut next) = transit.running.take() else {
                self.retire(transit);
                continue;
            };
            let seamless = transit.crossfade_frames == 0;
            next.schedule
                .take_over(&mut self.current.schedule, &transit.handovers, !seamless);
            if seamless {
                // Same latency and structure: the output pad continues too.
                hand_over_state(&mut next.pad, &mut self.current.pad, false);
            }
            let position = next.schedule.position();
            let old = std::mem::replace(&mut self.current, next);
            if let Some(older) = self.fading.take() {
                self.retire(older);
            }
            transit.running = Some(old);
            let (generation, crossfade) = (transit.generation, transit.crossfade_frames);
            if seamless {
                self.retire(transit);
            } else {
                self.fading = Some(transit);
                self.fade_pos = 0;
                self.fade_len = crossfade;
            }
            let _ = self.events.push(EngineEvent::Swapped {
                generation,
                position,
                crossfade: !seamless,
            });
        }
    }

    /// Renders one block of `frames` frames (at most [`LiveEngine::max_block`]) from the inputs.
    ///
    /// # Realtime safety
    /// Never allocates, locks or does I/O.
    pub fn process(&mut self, frames: usize) -> AudioRef<'_> {
        self.take_new_schedule();
        self.current.run(&self.inputs, frames, &mut self.events);
        let channels = self.current.out.channels();
        self.out.set_channels(channels);
        for c in 0..channels {
            self.out
                .channel_mut(c, frames)
                .copy_from_slice(self.current.out.channel(c, frames));
        }
        if let Some(old) = self.fading.as_mut().and_then(|t| t.running.as_mut()) {
            old.run(&self.inputs, frames, &mut self.events);
            let len = self.fade_len as f64;
            // The new schedule's output (padded to the live latency) only carries what it
            // processed after `live_latency` frames: until then the old one plays alone.
            let delay = self.live_latency;
            for k in 0..frames {
                let x = ((self.fade_pos + k).saturating_sub(delay) as f64 / len).min(1.0);
                for c in 0..channels {
                    let o = old.out.channel(c.min(old.out.channels() - 1), frames)[k];
                    let y = &mut self.out.channel_mut(c, frames)[k];
                    *y = *y * x + o * (1.0 - x);
                }
            }
            self.fade_pos += frames;
            if self.fade_pos >= self.fade_len + delay {
                if let Some(old) = self.fading.take() {
                    self.retire(old);
                }
            }
        }
        self.out.view(frames)
    }
}

impl LiveControl {
    /// Prepares `plan` for the audio side (allocating here, on the control thread) and hands it
    /// over. Gives the plan's schedule back if the queue is full, or if [`MAX_IN_FLIGHT`] plans
    /// are in flight already (call [`LiveControl::collect_garbage`], then submit again).
    pub fn submit(&mut self, plan: SwapPlan) -> Result<(), Box<Schedule>> {
        if self.outstanding >= MAX_IN_FLIGHT {
            return Err(plan.schedule);
        }
        let transit = Box::new(Transit {
            running: Some(Running::new(
                plan.schedule,
                self.live_latency,
                plan.generation,
            )),
            handovers: plan.handovers,
            crossfade_frames: plan.crossfade_frames,
            generation: plan.generation,
        });
        self.outgoing
            .push(transit)
            .map_err(|rtrb::PushError::Full(mut t)| {
                t.running.take().map(|r| r.schedule).expect("just built")
            })?;
        self.outstanding += 1;
        Ok(())
    }

    /// Whether the audio side has room for another plan.
    pub fn has_room(&self) -> bool {
        self.outgoing.slots() > 0 && self.outstanding < MAX_IN_FLIGHT
    }

    /// Plans handed over and not collected back yet (at most [`MAX_IN_FLIGHT`]).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Plans handed over that the audio side has not taken yet.
    pub fn in_flight(&self) -> usize {
        self.outgoing.buffer().capacity() - self.outgoing.slots()
    }

    /// Drops what the audio side retired (old schedules, spent plans) here, on the control
    /// thread. Returns how many old schedules were dropped.
    pub fn collect_garbage(&mut self) -> usize {
        let mut n = 0;
        while let Ok(t) = self.retired.pop() {
            self.outstanding -= 1;
            n += usize::from(t.running.is_some());
            drop(t);
        }
        n
    }

    /// The events reported since the last call.
    pub fn events(&mut self) -> Vec<EngineEvent> {
        let mut v = Vec::new();
        while let Ok(e) = self.events.pop() {
            v.push(e);
        }
        v
    }
}
