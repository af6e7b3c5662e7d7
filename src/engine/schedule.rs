//! The compiled, flat program the audio side runs.
//!
//! A [`Schedule`] is what `graph::compile` produces: a topologically ordered list of [`Step`]s
//! over a pool of preallocated buffers, the processors with their parameter states, and the
//! engine's inputs and outputs. It owns everything it touches, holds no reference into the
//! petgraph it came from, and is `Send`, so it can be built on the control thread and moved to
//! the audio thread.
//!
//! # Realtime safety
//! [`Schedule::process`] never allocates, locks or does I/O: buffers are swapped in and out of
//! the pool with `std::mem::take` (an empty boxed slice costs nothing), and all sizes were fixed
//! at compile time.

use super::batches::{plan_batches, Exec};
use super::params::ParamState;
use super::swap::NodeHandover;
use crate::dsp::param::ParamSlot;
use crate::dsp::{
    AudioBuffer, AudioMut, AudioRef, BatchItem, Handover, ParamBlock, Processor, Telemetry,
    MAX_BATCH,
};
use std::sync::Arc;

/// Index of a buffer in the pool.
pub type BufId = usize;

/// Something that looks at a node's output every block without changing it (a meter).
/// `Any`, so whoever attached a tap can downcast it back after a render to read it.
///
/// # Realtime safety
/// `observe` runs on the audio thread: no allocation, locks or I/O.
pub trait Tap: Send + std::any::Any {
    /// Sees one block of the tapped signal.
    fn observe(&mut self, audio: AudioRef<'_>);
}

/// What a node of the schedule does.
pub enum RtKind {
    /// A processor, run in place.
    Processor(Box<dyn Processor>),
    /// A bus: its parameters are the send gains of its inputs, in input order.
    Bus,
}

/// One node as the audio side sees it.
pub struct RtNode {
    /// The stable id from the recipe (compensation delays get `<to>.<from>.align`).
    pub id: String,
    /// What it does.
    pub kind: RtKind,
    /// Parameter names (within the node), in slot order.
    pub param_names: Vec<String>,
    /// Value sources of the parameters.
    pub params: Vec<ParamState>,
    /// Per-block parameter values.
    pub slots: Vec<ParamSlot>,
    /// Latency of the signal arriving at this node: song time here = stream time − this.
    pub upstream_latency: i64,
    /// Published readings.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Whether the recipe marked it bypassed (the processor here is then a delay).
    pub bypassed: bool,
}

/// One input to a bus.
#[derive(Debug, Clone, Copy)]
pub struct BusInput {
    /// The buffer summed.
    pub buf: BufId,
    /// Channels it carries.
    pub channels: usize,
    /// The bus node's send-gain slot it is scaled by; `None`: summed as it is (a partial sum
    /// of the bus's first inputs, made on another thread at unity gain, see
    /// [`super::parallel::split`]).
    pub slot: Option<usize>,
}

/// One instruction of the program.
pub enum Step {
    /// Copies engine input `input` into `buf`.
    Input {
        /// Engine input index.
        input: usize,
        /// Destination buffer.
        buf: BufId,
    },
    /// Runs node `node` in place on `dst`, after copying `src` into it when they differ.
    Process {
        /// Node index.
        node: usize,
        /// Input buffer.
        src: BufId,
        /// Output buffer (may equal `src`).
        dst: BufId,
        /// Channels of the input.
        in_channels: usize,
        /// Channels of the output.
        out_channels: usize,
        /// Side-chain key buffer.
        key: Option<BufId>,
    },
    /// Sums the inputs of bus `node` into `dst`, each times its send gain.
    Bus {
        /// Node index (for the send-gain parameters).
        node: usize,
        /// Inputs, in summing order (sorted by source id).
        inputs: Vec<BusInput>,
        /// Output buffer.
        dst: BufId,
        /// Channels of the bus.
        channels: usize,
    },
    /// Lets tap `tap` observe `buf`.
    Tap {
        /// Tap index.
        tap: usize,
        /// The tapped buffer.
        buf: BufId,
    },
    /// Copies `buf` into engine output `output`.
    Output {
        /// Output index.
        output: usize,
        /// Source buffer.
        buf: BufId,
    },
}

/// An engine output.
pub struct OutputSlot {
    /// The output node's id.
    pub id: String,
    /// Where each block lands.
    pub buffer: AudioBuffer,
    /// Latency from song time to this output, in samples (trimmed by renders).
    pub latency: usize,
}

/// A compiled graph, ready to run. Built through [`super::ScheduleBuilder`]; its parts are
/// the engine's own (the parallel splitter, a sibling module, takes them apart and back).
pub struct Schedule {
    pub(super) sample_rate: f64,
    pub(super) max_block: usize,
    pub(super) nodes: Vec<RtNode>,
    pub(super) steps: Vec<Step>,
    pub(super) pool: Vec<AudioBuffer>,
    pub(super) inputs: Vec<AudioBuffer>,
    pub(super) outputs: Vec<OutputSlot>,
    pub(super) taps: Vec<Box<dyn Tap>>,
    pub(super) tap_nodes: Vec<String>,
    pub(super) latency: usize,
    pub(super) tail: usize,
    pub(super) position: i64,
    /// Live mode: check every processor's output for NaN or infinity.
    pub(super) guard_nonfinite: bool,
    /// Whether [`Step::Input`] moves the input's buffer into the pool (trading it for the
    /// pool's buffer, which the caller then refills) instead of copying it: see
    /// [`Schedule::set_move_inputs`].
    pub(super) move_inputs: bool,
    /// Counted non-finite outputs and the last node that produced one.
    pub(super) nonfinite: NonFiniteReport,
    /// The order the steps run in, with batches (see [`super::batches`]); empty: the steps in
    /// order, one by one.
    pub(super) plan: Vec<Exec>,
    /// Members of the plan's batches (step indexes, each with the gain step folded into it).
    pub(super) batch_members: Vec<(usize, Option<usize>)>,
}

/// What [`super::ScheduleBuilder`] hands over once it has checked and allocated everything.
pub(super) struct Parts {
    pub sample_rate: f64,
    pub max_block: usize,
    pub nodes: Vec<RtNode>,
    pub steps: Vec<Step>,
    pub pool: Vec<AudioBuffer>,
    pub inputs: Vec<AudioBuffer>,
    pub outputs: Vec<OutputSlot>,
    pub taps: Vec<Box<dyn Tap>>,
    pub tap_nodes: Vec<String>,
    pub latency: usize,
    pub tail: usize,
}

/// NaN or infinity caught at a node's output (live mode): the block was muted at that node and
/// the node reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NonFiniteReport {
    /// How many times it happened.
    pub count: u64,
    /// Index of the last node that produced one.
    pub last_node: Option<usize>,
    /// Stream position of the last event.
    pub last_position: i64,
}

impl Schedule {
    /// A schedule of `parts`, at stream position 0, without a batch plan yet.
    pub(super) fn from_parts(p: Parts) -> Self {
        Self {
            sample_rate: p.sample_rate,
            max_block: p.max_block,
            nodes: p.nodes,
            steps: p.steps,
            pool: p.pool,
            inputs: p.inputs,
            outputs: p.outputs,
            taps: p.taps,
            tap_nodes: p.tap_nodes,
            latency: p.latency,
            tail: p.tail,
            position: 0,
            guard_nonfinite: false,
            move_inputs: false,
            nonfinite: NonFiniteReport::default(),
            plan: Vec::new(),
            batch_members: Vec::new(),
        }
    }

    /// Sample rate the schedule was compiled for.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The largest block [`Schedule::process`] accepts.
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// Latency from the stems to the first output, in samples.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// How long the output rings on after the stems end (delay repeats), in samples.
    pub fn tail(&self) -> usize {
        self.tail
    }

    /// The stream position: frames processed since the start (or the last seek).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Number of engine inputs (stems).
    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// Channels of engine input `i`.
    pub fn input_channels(&self, i: usize) -> usize {
        self.inputs[i].channels()
    }

    /// Engine input `i`, to be filled with the next block before [`Schedule::process`].
    pub fn input_mut(&mut self, i: usize, frames: usize) -> AudioMut<'_> {
        self.inputs[i].view_mut(frames)
    }

    /// A buffer that can trade places with engine input `i` ([`Schedule::trade_input`]).
    /// Allocates: control side only.
    pub fn input_buffer(&self, i: usize) -> AudioBuffer {
        AudioBuffer::with_room(self.inputs[i].channels(), self.inputs[i].max_frames())
    }

    /// Fills engine input `i` by trading buffers with `filled` (a block read elsewhere, into a
    /// buffer from [`Schedule::input_buffer`], at the input's channel count): no copy. `filled`
    /// gets the input's old buffer, to be refilled.
    pub fn trade_input(&mut self, i: usize, filled: &mut AudioBuffer) {
        debug_assert!(self.inputs[i].same_shape(filled));
        debug_assert_eq!(self.inputs[i].channels(), filled.channels());
        std::mem::swap(&mut self.inputs[i], filled);
    }

    /// Number of outputs.
    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Output `i` with its id and latency.
    pub fn output_slot(&self, i: usize) -> &OutputSlot {
        &self.outputs[i]
    }

    /// The last block of output `i`.
    pub fn output(&self, i: usize, frames: usize) -> AudioRef<'_> {
        self.outputs[i].buffer.view(frames)
    }

    /// The nodes, in schedule order.
    pub fn nodes(&self) -> &[RtNode] {
        &self.nodes
    }

    /// The node with id `id`.
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The tap of index `i`, for reading its results after a render.
    pub fn tap(&mut self, i: usize) -> &mut dyn Tap {
        &mut *self.taps[i]
    }

    /// The id of the node tap `i` observes, and how many taps there are (`tap_node(i)` for `i`
    /// under [`Self::tap_count`]).
    pub fn tap_node(&self, i: usize) -> &str {
        &self.tap_nodes[i]
    }

    /// How many taps the schedule has.
    pub fn tap_count(&self) -> usize {
        self.taps.len()
    }

    /// Removes and returns the taps (with the node each observed), e.g. at the end of a render.
    pub fn take_taps(&mut self) -> Vec<(String, Box<dyn Tap>)> {
        let taps = std::mem::take(&mut self.taps);
        let names = std::mem::take(&mut self.tap_nodes);
        self.steps.retain(|s| !matches!(s, Step::Tap { .. }));
        if !self.plan.is_empty() {
            self.plan_batches();
        }
        names.into_iter().zip(taps).collect()
    }

    /// Telemetry of node `id`, if it publishes any.
    pub fn telemetry(&self, id: &str) -> Option<Arc<Telemetry>> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.telemetry.clone())
    }

    /// Moves parameter `param` of node `node` to `value` with its glide (the next block on).
    /// Real-time safe; the range is the caller's to check (see `graph::ParamHandle`).
    pub fn set_param(&mut self, node: usize, param: usize, value: f64) {
        self.nodes[node].params[param].set_target(value);
    }

    /// Live mode: catch NaN or infinity at every processor's output, mute it and reset the node.
    pub fn set_guard_nonfinite(&mut self, on: bool) {
        self.guard_nonfinite = on;
    }

    /// Lets each [`Step::Input`] trade the input's buffer for its pool buffer instead of copying
    /// the block into it (a pointer swap, no allocation: real-time safe). The samples the steps
    /// see are the same; what changes is the inputs between blocks: after
    /// [`Schedule::process`] each input holds stale samples, so the caller must fill every
    /// input completely before every block (the offline runner's sources do; live playback,
    /// which leaves silent inputs as they are, keeps the copy). Turned on only when every
    /// input feeds at most one step and every input buffer has the pool's shape; returns
    /// whether it was on before.
    pub fn set_move_inputs(&mut self, on: bool) -> bool {
        let was = self.move_inputs;
        let mut uses = vec![0usize; self.inputs.len()];
        for step in &self.steps {
            if let Step::Input { input, .. } = step {
                uses[*input] += 1;
            }
        }
        let shaped = self
            .inputs
            .iter()
            .all(|b| self.pool.first().is_none_or(|p| p.same_shape(b)));
        self.move_inputs = on && shaped && uses.iter().all(|&u| u <= 1);
        was
    }

    /// What the non-finite guard caught so far.
    pub fn nonfinite_report(&self) -> NonFiniteReport {
        self.nonfinite
    }

    /// Moves the stream position (a seek): automation is evaluated from there.
    pub fn set_position(&mut self, position: i64) {
        self.position = position;
    }

    /// Takes over the signal state of `old` (a hot reload), as the control side planned it:
    /// each handover's new node continues its old node (processor state, see
    /// [`hand_over_state`]), and each listed parameter continues from its old slot, gliding to
    /// the new value exactly as an automated step at this sample would. The stream position
    /// continues. With `keep_old`, processors copy the old state (the old schedule goes on
    /// running for a crossfade); otherwise they take it over and `old` is left to be discarded.
    ///
    /// # Realtime safety
    /// No allocation, no search, no string comparison: indexes planned on the control side,
    /// state moved or copied into buffers of the same size, parameters copy scalars.
    pub fn take_over(&mut self, old: &mut Schedule, handovers: &[NodeHandover], keep_old: bool) {
        for h in handovers {
            let (new_node, old_node) = (&mut self.nodes[h.new], &mut old.nodes[h.old]);
            if let (RtKind::Processor(a), RtKind::Processor(b)) =
                (&mut new_node.kind, &mut old_node.kind)
            {
                hand_over_state(&mut **a, &mut **b, keep_old);
            }
            for &(k, ok) in &h.params {
                new_node.params[k].continue_from(&old_node.params[ok]);
            }
        }
        self.position = old.position;
    }

    /// Number of steps of the program (what [`Schedule::process_profiled`] charges).
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The steps of the program, in program order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Clears all signal state and returns to stream position `position`.
    pub fn reset(&mut self, position: i64) {
        for node in &mut self.nodes {
            if let RtKind::Processor(p) = &mut node.kind {
                p.reset();
            }
        }
        for b in &mut self.pool {
            let n = b.max_frames();
            b.clear(n);
        }
        self.position = position;
    }

    /// Runs the program over one block of `frames` frames (at most [`Schedule::max_block`]):
    /// reads the inputs, writes the outputs, advances the position.
    ///
    /// # Realtime safety
    /// Never allocates, locks or does I/O.
    pub fn process(&mut self, frames: usize) {
        self.process_inner(frames, None);
    }

    /// [`Schedule::process`], adding each step's time (seconds, read from `clock`) to
    /// `costs[step]` (a batch's time is shared evenly by its members): what splitting the work
    /// between threads weighs.
    pub fn process_profiled(&mut self, frames: usize, costs: &mut [f64], clock: &dyn Fn() -> f64) {
        self.process_inner(frames, Some((costs, clock)));
    }

    fn process_inner(&mut self, frames: usize, costs: Option<(&mut [f64], &dyn Fn() -> f64)>) {
        debug_assert!(frames <= self.max_block);
        let Schedule {
            nodes,
            steps,
            pool,
            inputs,
            outputs,
            taps,
            position,
            guard_nonfinite,
            move_inputs,
            nonfinite,
            plan,
            batch_members,
            ..
        } = self;
        let mut cx = StepCx {
            nodes,
            pool,
            inputs,
            outputs,
            taps,
            position: *position,
            guard_nonfinite: *guard_nonfinite,
            move_inputs: *move_inputs,
            nonfinite,
            frames,
        };
        let (mut costs, clock) = costs.unzip();
        let mut last = clock.map(|c| c());
        // (A folded gain step's time goes to the step it runs in.)
        let mut charge = |members: &[(usize, Option<usize>)], costs: &mut Option<&mut [f64]>| {
            if let (Some(c), Some(t), Some(clock)) = (costs.as_deref_mut(), last.as_mut(), clock) {
                let now = clock();
                let share = (now - *t) / members.len() as f64;
                for &(m, _) in members {
                    c[m] += share;
                }
                *t = now;
            }
        };
        if plan.is_empty() {
            for (i, step) in steps.iter().enumerate() {
                cx.run(step);
                charge(&[(i, None)], &mut costs);
            }
        } else {
            for exec in plan.iter() {
                match *exec {
                    Exec::Step(i) => {
                        cx.run(&steps[i]);
                        charge(&[(i, None)], &mut costs);
                    }
                    Exec::Fold { step, gain } => {
                        cx.run_folded(&steps[step], &steps[gain]);
                        charge(&[(step, None)], &mut costs);
                    }
                    Exec::Batch { start, len } => {
                        let members = &batch_members[start..start + len];
                        cx.run_batch(steps, members);
                        charge(members, &mut costs);
                    }
                }
            }
        }
        *position += frames as i64;
    }

    /// Plans batches (see [`super::batches`]). Allocates: control side only (building and
    /// splitting a schedule do it).
    pub(super) fn plan_batches(&mut self) {
        let (plan, members) = plan_batches(&self.steps, &self.nodes);
        self.plan = plan;
        self.batch_members = members;
    }

    /// How many batches the plan has, and how many steps they hold.
    pub fn batch_stats(&self) -> (usize, usize) {
        let batches = self
            .plan
            .iter()
            .filter(|e| matches!(e, Exec::Batch { .. }))
            .count();
        (batches, self.batch_members.len())
    }
}

/// What running one step needs: the schedule's parts, borrowed apart.
struct StepCx<'a> {
    nodes: &'a mut [RtNode],
    pool: &'a mut [AudioBuffer],
    inputs: &'a mut [AudioBuffer],
    outputs: &'a mut [OutputSlot],
    taps: &'a mut [Box<dyn Tap>],
    position: i64,
    guard_nonfinite: bool,
    move_inputs: bool,
    nonfinite: &'a mut NonFiniteReport,
    frames: usize,
}

impl StepCx<'_> {
    /// Fills node `node`'s parameter slots for this block.
    #[inline]
    fn fill_params(&mut self, node: usize) {
        let frames = self.frames;
        let node = &mut self.nodes[node];
        let t0 = self.position - node.upstream_latency;
        for (state, slot) in node.params.iter_mut().zip(node.slots.iter_mut()) {
            state.fill(slot, t0, frames);
        }
    }

    /// Takes buffer `dst` out of the pool for a process step, with its input copied in.
    #[inline]
    fn take_output(
        &mut self,
        src: BufId,
        dst: BufId,
        in_channels: usize,
        out_channels: usize,
    ) -> AudioBuffer {
        let frames = self.frames;
        let mut out = std::mem::take(&mut self.pool[dst]);
        out.set_channels(out_channels);
        if src != dst {
            let input = &self.pool[src];
            for c in 0..in_channels {
                out.channel_mut(c, frames)
                    .copy_from_slice(input.channel(c, frames));
            }
        }
        out
    }

    /// The live-mode check after a processor ran: a non-finite output is muted and the node
    /// reset.
    #[inline]
    fn guard(&mut self, node: usize, out: &mut AudioBuffer) {
        if !self.guard_nonfinite || all_finite(out, self.frames) {
            return;
        }
        out.clear(self.frames);
        if let RtKind::Processor(p) = &mut self.nodes[node].kind {
            p.reset();
        }
        self.nonfinite.count += 1;
        self.nonfinite.last_node = Some(node);
        self.nonfinite.last_position = self.position;
    }

    /// Runs process step `step`, its output multiplied by `gain` (see
    /// [`Processor::process_gained`]).
    fn run_process(&mut self, step: &Step, gain: f64) {
        let Step::Process {
            node,
            src,
            dst,
            in_channels,
            out_channels,
            key,
        } = step
        else {
            unreachable!("a process step");
        };
        let frames = self.frames;
        self.fill_params(*node);
        let mut out = self.take_output(*src, *dst, *in_channels, *out_channels);
        let key_view = key.map(|k| self.pool[k].view(frames));
        let n = &mut self.nodes[*node];
        if let RtKind::Processor(p) = &mut n.kind {
            p.process_gained(
                &mut out.view_mut(frames),
                key_view,
                ParamBlock::new(&n.slots),
                gain,
            );
            self.guard(*node, &mut out);
        }
        self.pool[*dst] = out;
    }

    /// The factor of the gain node `gain` folded into the step before it, its parameters
    /// filled for this block: `None` when they move within the block, or when the live guard
    /// is on (it checks each node's output), and the gain then runs as a step of its own.
    fn fold_factor(&mut self, gain: usize) -> Option<f64> {
        self.fill_params(gain);
        if self.guard_nonfinite {
            return None;
        }
        crate::dsp::gain::constant_factor(&ParamBlock::new(&self.nodes[gain].slots))
    }

    /// Runs gain node `gain` (its parameters filled) on `out`, as its own step would.
    fn run_gain(&mut self, gain: usize, out: &mut AudioBuffer) {
        let frames = self.frames;
        let n = &mut self.nodes[gain];
        if let RtKind::Processor(p) = &mut n.kind {
            p.process(&mut out.view_mut(frames), None, ParamBlock::new(&n.slots));
            self.guard(gain, out);
        }
    }

    /// Runs process step `step` with the gain step `gain_step` folded into it (see
    /// [`super::batches`]): the processor multiplies its output by the gain's factor, or the
    /// gain runs after it when its factor is not constant over the block.
    fn run_folded(&mut self, step: &Step, gain_step: &Step) {
        let Step::Process { node: g, dst, .. } = gain_step else {
            unreachable!("folds are gain steps");
        };
        match self.fold_factor(*g) {
            Some(f) => self.run_process(step, f),
            None => {
                self.run_process(step, 1.0);
                let mut out = std::mem::take(&mut self.pool[*dst]);
                self.run_gain(*g, &mut out);
                self.pool[*dst] = out;
            }
        }
    }

    fn run(&mut self, step: &Step) {
        let frames = self.frames;
        match step {
            Step::Input { input, buf } => {
                let (src, dst) = (&mut self.inputs[*input], &mut self.pool[*buf]);
                if self.move_inputs && src.same_shape(dst) {
                    // The block moves into the pool; the pool's old buffer waits for the next
                    // block in its place (see `Schedule::set_move_inputs`).
                    let channels = src.channels();
                    std::mem::swap(src, dst);
                    src.set_channels(channels);
                    return;
                }
                for c in 0..src.channels() {
                    dst.channel_mut(c, frames)
                        .copy_from_slice(src.channel(c, frames));
                }
            }
            Step::Process { .. } => self.run_process(step, 1.0),
            Step::Bus {
                node,
                inputs: bus_inputs,
                dst,
                channels,
            } => {
                self.fill_params(*node);
                let node = &self.nodes[*node];
                let mut out = std::mem::take(&mut self.pool[*dst]);
                out.set_channels(*channels);
                if bus_inputs.is_empty() {
                    out.clear(frames);
                }
                for c in 0..*channels {
                    let mut sum = BusSum::new(out.channel_mut(c, frames));
                    for input in bus_inputs {
                        let x = self.pool[input.buf].channel(c.min(input.channels - 1), frames);
                        sum.add(x, input.slot.map(|s| &node.slots[s]));
                    }
                    sum.finish();
                }
                self.pool[*dst] = out;
            }
            Step::Tap { tap, buf } => self.taps[*tap].observe(self.pool[*buf].view(frames)),
            Step::Output { output, buf } => {
                let src = &self.pool[*buf];
                let dst = &mut self.outputs[*output].buffer;
                for c in 0..dst.channels() {
                    dst.channel_mut(c, frames)
                        .copy_from_slice(src.channel(c, frames));
                }
            }
        }
    }

    /// Runs the process steps `members` (independent, one kind, no key; each with the gain
    /// step folded into it) through their kind's batch kernel.
    fn run_batch(&mut self, steps: &[Step], members: &[(usize, Option<usize>)]) {
        let frames = self.frames;
        let mut bufs: [AudioBuffer; MAX_BATCH] = Default::default();
        let mut node_of = [usize::MAX; MAX_BATCH];
        let mut gains = [1.0; MAX_BATCH];
        let mut after = [None; MAX_BATCH];
        for (j, &(si, fold)) in members.iter().enumerate() {
            let Step::Process {
                node,
                src,
                dst,
                in_channels,
                out_channels,
                ..
            } = &steps[si]
            else {
                unreachable!("batches hold process steps");
            };
            if let Some(Step::Process { node: g, .. }) = fold.map(|f| &steps[f]) {
                match self.fold_factor(*g) {
                    Some(f) => gains[j] = f,
                    None => after[j] = Some(*g),
                }
            }
            self.fill_params(*node);
            bufs[j] = self.take_output(*src, *dst, *in_channels, *out_channels);
            node_of[j] = *node;
        }
        {
            let mut items: [Option<BatchItem<'_>>; MAX_BATCH] = Default::default();
            let mut buf_refs: [Option<&mut AudioBuffer>; MAX_BATCH] = Default::default();
            for (slot, b) in buf_refs.iter_mut().zip(bufs.iter_mut()) {
                *slot = Some(b);
            }
            let mut kernel = None;
            for (ni, node) in self.nodes.iter_mut().enumerate() {
                let Some(j) = node_of[..members.len()].iter().position(|&n| n == ni) else {
                    continue;
                };
                let RtNode { kind, slots, .. } = node;
                if let RtKind::Processor(p) = kind {
                    kernel = kernel.or(p.batch_kernel());
                    items[j] = Some(BatchItem {
                        processor: &mut **p,
                        audio: buf_refs[j]
                            .take()
                            .expect("one buffer each")
                            .view_mut(frames),
                        params: ParamBlock::new(slots),
                        gain: gains[j],
                    });
                }
            }
            let kernel = kernel.expect("batched kinds have a kernel");
            kernel(&mut items[..members.len()]);
        }
        for (j, &(si, _)) in members.iter().enumerate() {
            let Step::Process { node, dst, .. } = &steps[si] else {
                unreachable!("batches hold process steps");
            };
            let mut out = std::mem::take(&mut bufs[j]);
            self.guard(*node, &mut out);
            if let Some(g) = after[j] {
                self.run_gain(g, &mut out);
            }
            self.pool[*dst] = out;
        }
    }
}

/// Most bus inputs [`BusSum`] adds in one pass over the block.
const FUSED_INPUTS: usize = 8;

/// One bus input's channel and its constant send gain (`None`: at unity), waiting in a
/// [`BusSum`].
#[derive(Clone, Copy, Default)]
struct Term<'a> {
    x: &'a [f64],
    gain: Option<f64>,
}

/// One channel of a bus's sum, its inputs added in order: inputs at constant send gains are
/// gathered and added up to [`FUSED_INPUTS`] at a time in one pass over the block (the sum is
/// read and written once per pass instead of once per input), an input at an automated gain
/// alone ([`sum_input`]). Each frame's additions are the same, in the same order: the same bits
/// as adding the inputs one by one.
struct BusSum<'y, 'x> {
    y: &'y mut [f64],
    /// Whether `y` holds nothing yet (the first input is added to +0, not to `y`).
    first: bool,
    terms: [Term<'x>; FUSED_INPUTS],
    gathered: usize,
}

impl<'y, 'x> BusSum<'y, 'x> {
    fn new(y: &'y mut [f64]) -> Self {
        Self {
            y,
            first: true,
            terms: Default::default(),
            gathered: 0,
        }
    }

    /// Adds input channel `x` at its send gain (`slot`; `None`: at unity).
    fn add(&mut self, x: &'x [f64], slot: Option<&ParamSlot>) {
        let gain = match BusSend::of(slot) {
            BusSend::Automated(_) => {
                self.flush();
                if self.first {
                    sum_input::<true>(self.y, x, slot);
                } else {
                    sum_input::<false>(self.y, x, slot);
                }
                self.first = false;
                return;
            }
            BusSend::Constant(g) => Some(g),
            BusSend::Unity => None,
        };
        self.terms[self.gathered] = Term { x, gain };
        self.gathered += 1;
        if self.gathered == FUSED_INPUTS {
            self.flush();
        }
    }

    /// Adds the gathered inputs.
    fn flush(&mut self) {
        if self.gathered > 0 {
            sum_terms(self.y, &self.terms[..self.gathered], self.first);
            self.first = false;
            self.gathered = 0;
        }
    }

    /// Adds what is still gathered: the sum is complete.
    fn finish(mut self) {
        self.flush();
    }
}

/// Adds `terms` (each `x · gain`, in order) to `y`, or to +0 when `first`, eight frames at a
/// time in registers; the AVX-512 and AVX2 builds do the same IEEE operations lane by lane as
/// the portable one.
fn sum_terms(y: &mut [f64], terms: &[Term<'_>], first: bool) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn sum_terms_avx512(y: &mut [f64], terms: &[Term<'_>], first: bool) {
        sum_terms_impl(y, terms, first)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn sum_terms_avx2(y: &mut [f64], terms: &[Term<'_>], first: bool) {
        sum_terms_impl(y, terms, first)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { sum_terms_avx512(y, terms, first) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { sum_terms_avx2(y, terms, first) };
    }
    sum_terms_impl(y, terms, first)
}

/// [`sum_terms`] for one build.
#[inline(always)]
fn sum_terms_impl(y: &mut [f64], terms: &[Term<'_>], first: bool) {
    const W: usize = 8;
    let n = y.len();
    assert!(
        terms.iter().all(|t| t.x.len() >= n),
        "inputs as long as the sum"
    );
    let add = |acc: &mut [f64], at: usize| {
        for t in terms {
            let x = &t.x[at..at + acc.len()];
            match t.gain {
                None => acc.iter_mut().zip(x).for_each(|(a, x)| *a += *x),
                Some(g) => acc.iter_mut().zip(x).for_each(|(a, x)| *a += *x * g),
            }
        }
    };
    let mut at = 0;
    for chunk in y.chunks_exact_mut(W) {
        let mut acc = [0.0; W];
        if !first {
            acc.copy_from_slice(chunk);
        }
        add(&mut acc, at);
        chunk.copy_from_slice(&acc);
        at += W;
    }
    let rest = &mut y[at..];
    let mut acc = [0.0; W];
    if !first {
        acc[..rest.len()].copy_from_slice(rest);
    }
    add(&mut acc[..rest.len()], at);
    let len = rest.len();
    rest.copy_from_slice(&acc[..len]);
}

/// Adds one bus input's channel `x`, times its send gain (`slot`; `None`: at unity), to the
/// sum `y`. `FIRST`: `y` is not read but taken as +0, so the first input needs no cleared
/// buffer: `0.0 + x·g` is what adding it to a cleared one gives, bit for bit (−0 included).
#[inline(always)]
fn sum_input<const FIRST: bool>(y: &mut [f64], x: &[f64], slot: Option<&ParamSlot>) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn sum_input_avx2<const FIRST: bool>(y: &mut [f64], x: &[f64], slot: Option<&ParamSlot>) {
        sum_input_impl::<FIRST>(y, x, slot)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { sum_input_avx2::<FIRST>(y, x, slot) };
    }
    sum_input_impl::<FIRST>(y, x, slot)
}

/// [`sum_input`], built for the portable baseline and, in 256-bit registers, for AVX2: the
/// same IEEE operations lane by lane, so the same bits.
#[inline(always)]
fn sum_input_impl<const FIRST: bool>(y: &mut [f64], x: &[f64], slot: Option<&ParamSlot>) {
    let add = |y: &mut f64, v: f64| *y = if FIRST { 0.0 + v } else { *y + v };
    match BusSend::of(slot) {
        BusSend::Constant(g) => {
            for (y, x) in y.iter_mut().zip(x) {
                add(y, *x * g);
            }
        }
        BusSend::Automated(slot) => {
            for (n, (y, x)) in y.iter_mut().zip(x).enumerate() {
                add(y, *x * crate::units::db_to_gain(slot.values[n]));
            }
        }
        BusSend::Unity => {
            for (y, x) in y.iter_mut().zip(x) {
                add(y, *x);
            }
        }
    }
}

/// How an input reaches a bus: the one place that reads a send's slot for [`sum_input`] and
/// [`BusSum`].
enum BusSend<'a> {
    /// No send gain, or a constant 0 dB: added as it is.
    Unity,
    /// A constant send gain, as a factor.
    Constant(f64),
    /// A gain per frame (`values`, in dB).
    Automated(&'a ParamSlot),
}

impl<'a> BusSend<'a> {
    fn of(slot: Option<&'a ParamSlot>) -> Self {
        match slot {
            Some(s) if !s.constant => BusSend::Automated(s),
            Some(s) if s.value != 0.0 => BusSend::Constant(crate::units::db_to_gain(s.value)),
            _ => BusSend::Unity,
        }
    }
}

/// Hands processor state from `old` to `new` (same node, a hot reload): moved when the old
/// schedule is discarded, copied when it goes on playing for a crossfade
/// ([`Processor::take_state`]). The one place the engine hands state over. Real-time safe.
pub fn hand_over_state(new: &mut dyn Processor, old: &mut dyn Processor, keep_old: bool) {
    new.take_state(
        old,
        if keep_old {
            Handover::Copy
        } else {
            Handover::Move
        },
    );
}

/// Whether every sample of the first `frames` frames is finite.
fn all_finite(buf: &AudioBuffer, frames: usize) -> bool {
    (0..buf.channels()).all(|c| buf.channel(c, frames).iter().all(|x| x.is_finite()))
}

// A schedule crosses to the audio thread: keep it `Send`.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Schedule>();
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A bus's sums are the same bits in the AVX2 build as in the portable one: first and later
    /// inputs, at unity, at a constant send gain and at a gain automated sample by sample, over
    /// lengths that leave a tail under the vector width.
    #[test]
    fn bus_sums_agree_between_builds() {
        let n = 1027;
        let x: Vec<f64> = (0..n)
            .map(|i| {
                if i == 5 {
                    -0.0
                } else {
                    (i as f64 * 0.61).sin() * 1.7
                }
            })
            .collect();
        let y0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.13).cos()).collect();
        let constant = ParamSlot::new(-4.5, n);
        let mut automated = ParamSlot::new(0.0, n);
        automated.constant = false;
        for (k, v) in automated.values.iter_mut().enumerate() {
            *v = -12.0 + 0.01 * k as f64;
        }
        let slots = [None, Some(&constant), Some(&automated)];
        let sums = |portable: bool| {
            crate::dsp::simd::force_portable(portable);
            let mut out = Vec::new();
            for slot in slots {
                for len in [n, n - 3, 1] {
                    let (mut first, mut later) = (vec![f64::NAN; len], y0[..len].to_vec());
                    sum_input::<true>(&mut first, &x[..len], slot);
                    sum_input::<false>(&mut later, &x[..len], slot);
                    out.push(
                        first
                            .iter()
                            .chain(&later)
                            .map(|v| v.to_bits())
                            .collect::<Vec<_>>(),
                    );
                }
            }
            crate::dsp::simd::force_portable(false);
            out
        };
        crate::dsp::simd::init();
        let portable = sums(true);
        assert_eq!(
            portable[0][5], 0,
            "−0 on a first input: +0, as in a cleared sum"
        );
        assert_eq!(portable, sums(false));
        assert!(
            crate::dsp::simd::avx2() || std::env::var_os("CI").is_none(),
            "CI machines have AVX2: the builds were compared"
        );
    }

    /// A bus's sum gathered in passes of up to eight inputs ([`BusSum`]) is the sum of its
    /// inputs added one by one, bit for bit, in every build: inputs at unity, at 0 dB, at
    /// constant gains and at automated gains (added alone, in their place), more inputs than a
    /// pass takes, −0 on a first input, lengths with a tail under the vector width.
    #[test]
    fn a_bus_sum_in_passes_is_the_inputs_added_one_by_one() {
        let n = 1027;
        let inputs: Vec<Vec<f64>> = (0..11)
            .map(|k| {
                (0..n)
                    .map(|i| {
                        if i % 97 == 3 {
                            -0.0
                        } else {
                            ((i * (k + 2)) as f64 * 0.37).sin() * (1.0 + k as f64 * 0.3)
                        }
                    })
                    .collect()
            })
            .collect();
        let slot = |db: f64| ParamSlot::new(db, n);
        let mut automated = ParamSlot::new(0.0, n);
        automated.constant = false;
        for (k, v) in automated.values.iter_mut().enumerate() {
            *v = -9.0 + 0.013 * k as f64;
        }
        let (zero, minus, plus) = (slot(0.0), slot(-4.5), slot(3.25));
        // Sends per input, as a bus's inputs may have them.
        let layouts: Vec<Vec<Option<&ParamSlot>>> = vec![
            vec![None],
            vec![Some(&minus)],
            vec![Some(&automated)],
            (0..11)
                .map(|k| [None, Some(&zero), Some(&minus), Some(&plus)][k % 4])
                .collect(),
            (0..11)
                .map(|k| {
                    if k == 4 {
                        Some(&automated)
                    } else {
                        Some(&plus)
                    }
                })
                .collect(),
            vec![Some(&automated), None, Some(&minus)],
        ];
        let sums = |portable: bool| {
            crate::dsp::simd::force_portable(portable);
            let mut out = Vec::new();
            for (layout, sends) in layouts.iter().enumerate() {
                for len in [n, n - 3, 5] {
                    let (mut one_by_one, mut fused) = (vec![f64::NAN; len], vec![f64::NAN; len]);
                    for (i, send) in sends.iter().enumerate() {
                        if i == 0 {
                            sum_input::<true>(&mut one_by_one, &inputs[i][..len], *send);
                        } else {
                            sum_input::<false>(&mut one_by_one, &inputs[i][..len], *send);
                        }
                    }
                    let mut sum = BusSum::new(&mut fused);
                    for (i, send) in sends.iter().enumerate() {
                        sum.add(&inputs[i][..len], *send);
                    }
                    sum.finish();
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&fused),
                        bits(&one_by_one),
                        "layout {layout}, {len} frames"
                    );
                    out.push(bits(&fused));
                }
            }
            crate::dsp::simd::force_portable(false);
            out
        };
        crate::dsp::simd::init();
        let portable = sums(true);
        assert_eq!(portable[0][3], 0, "−0 on a first input: +0");
        assert_eq!(portable, sums(false));
    }
}
