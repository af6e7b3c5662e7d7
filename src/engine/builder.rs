//! Building a [`Schedule`] (control side): the one way in for whoever lays out a program
//! (`graph::compile`, tests, embedders).
//!
//! The builder collects the nodes, the engine inputs, the buffer pool's size, the steps, the
//! outputs and the taps, then [`ScheduleBuilder::build`] checks that every index a step names
//! exists and fits (a node of the right kind, a buffer of the pool, channel counts the buffers
//! hold, one parameter slot per bus input), allocates every buffer, and plans the batches.
//! Everything a schedule needs while it runs is allocated here, never on the audio thread.

use super::schedule::{BufId, OutputSlot, RtKind, RtNode, Schedule, Step, Tap};
use crate::dsp::buffer::MAX_CHANNELS;
use crate::dsp::AudioBuffer;

/// Why a set of parts does not make a schedule: a step or a node that names something that is
/// not there, or does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The largest block is zero.
    #[error("a schedule needs a block size of at least one frame")]
    NoBlock,
    /// A step names a node index past the end.
    #[error("step {step} names node {node}, but there are {count} nodes")]
    UnknownNode {
        /// Step index.
        step: usize,
        /// Node index named.
        node: usize,
        /// Number of nodes.
        count: usize,
    },
    /// A process step names a bus node, or a bus step a processor.
    #[error("step {step} runs node {node} ({id}) as a {expected}, which it is not")]
    WrongKind {
        /// Step index.
        step: usize,
        /// Node index.
        node: usize,
        /// The node's id.
        id: String,
        /// "processor" or "bus".
        expected: &'static str,
    },
    /// A step names a buffer past the end of the pool.
    #[error("step {step} names buffer {buf}, but the pool has {count}")]
    UnknownBuffer {
        /// Step index.
        step: usize,
        /// Buffer named.
        buf: BufId,
        /// Pool size.
        count: usize,
    },
    /// A step names an engine input, output or tap that was not declared.
    #[error("step {step} names {what} {index}, but there are {count}")]
    UnknownPort {
        /// Step index.
        step: usize,
        /// "input", "output" or "tap".
        what: &'static str,
        /// Index named.
        index: usize,
        /// How many there are.
        count: usize,
    },
    /// A channel count of zero or above what a buffer holds.
    #[error("{what} has {channels} channels (1 to {MAX_CHANNELS} allowed)")]
    Channels {
        /// What carries it.
        what: String,
        /// The count.
        channels: usize,
    },
    /// A node's parameter names, states and slots disagree, or a bus has not one parameter
    /// (send gain) per input, or a slot cannot hold a block.
    #[error("node {node} ({id}): {reason}")]
    Params {
        /// Node index.
        node: usize,
        /// The node's id.
        id: String,
        /// What disagrees.
        reason: String,
    },
}

/// Collects the parts of a [`Schedule`]; see the module doc.
pub struct ScheduleBuilder {
    sample_rate: f64,
    max_block: usize,
    nodes: Vec<RtNode>,
    steps: Vec<Step>,
    pool_size: usize,
    inputs: Vec<usize>,
    outputs: Vec<(String, usize, usize)>,
    taps: Vec<(String, Box<dyn Tap>)>,
    latency: usize,
    tail: usize,
}

impl ScheduleBuilder {
    /// An empty program for blocks of at most `max_block` frames at `sample_rate`.
    pub fn new(sample_rate: f64, max_block: usize) -> Self {
        Self {
            sample_rate,
            max_block,
            nodes: Vec::new(),
            steps: Vec::new(),
            pool_size: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
            taps: Vec::new(),
            latency: 0,
            tail: 0,
        }
    }

    /// Adds a node; returns its index (what steps name).
    pub fn node(&mut self, node: RtNode) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The nodes added so far, in order.
    pub fn nodes(&self) -> &[RtNode] {
        &self.nodes
    }

    /// Node `i`, to change before building (e.g. to attach an automation curve).
    pub fn node_mut(&mut self, i: usize) -> &mut RtNode {
        &mut self.nodes[i]
    }

    /// Declares an engine input (a stem) of `channels` channels; returns its index.
    pub fn input(&mut self, channels: usize) -> usize {
        self.inputs.push(channels);
        self.inputs.len() - 1
    }

    /// Sets the number of pool buffers the steps share (each holds up to two channels).
    pub fn buffers(&mut self, count: usize) {
        self.pool_size = count;
    }

    /// Appends a step to the program.
    pub fn step(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Declares an output `id` of `channels` channels, `latency` samples behind song time;
    /// returns its index.
    pub fn output(&mut self, id: impl Into<String>, channels: usize, latency: usize) -> usize {
        self.outputs.push((id.into(), channels, latency));
        self.outputs.len() - 1
    }

    /// Adds a tap that observes node `node_id`'s output; returns its index (for
    /// [`Step::Tap`]).
    pub fn tap(&mut self, node_id: impl Into<String>, tap: Box<dyn Tap>) -> usize {
        self.taps.push((node_id.into(), tap));
        self.taps.len() - 1
    }

    /// Sets the latency from the stems to the first output.
    pub fn latency(&mut self, latency: usize) {
        self.latency = latency;
    }

    /// Sets how long the output rings on after the stems end.
    pub fn tail(&mut self, tail: usize) {
        self.tail = tail;
    }

    /// Checks the parts, allocates the buffers and plans the batches.
    pub fn build(self) -> Result<Schedule, ScheduleError> {
        if self.max_block == 0 {
            return Err(ScheduleError::NoBlock);
        }
        self.check_channels()?;
        for (i, node) in self.nodes.iter().enumerate() {
            self.check_node(i, node)?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            self.check_step(i, step)?;
        }
        let max_block = self.max_block;
        let (tap_nodes, taps) = self.taps.into_iter().unzip();
        let mut schedule = Schedule::from_parts(super::schedule::Parts {
            sample_rate: self.sample_rate,
            max_block,
            nodes: self.nodes,
            steps: self.steps,
            pool: (0..self.pool_size)
                .map(|_| AudioBuffer::new(MAX_CHANNELS, max_block))
                .collect(),
            inputs: self
                .inputs
                .iter()
                .map(|&c| AudioBuffer::with_room(c, max_block))
                .collect(),
            outputs: self
                .outputs
                .into_iter()
                .map(|(id, channels, latency)| OutputSlot {
                    id,
                    buffer: AudioBuffer::new(channels, max_block),
                    latency,
                })
                .collect(),
            taps,
            tap_nodes,
            latency: self.latency,
            tail: self.tail,
        });
        schedule.plan_batches();
        Ok(schedule)
    }

    fn check_channels(&self) -> Result<(), ScheduleError> {
        let bad = |c: usize| c == 0 || c > MAX_CHANNELS;
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("input {i}"), c));
        let outputs = self
            .outputs
            .iter()
            .map(|(id, c, _)| (format!("output `{id}`"), *c));
        for (what, channels) in inputs.chain(outputs) {
            if bad(channels) {
                return Err(ScheduleError::Channels { what, channels });
            }
        }
        Ok(())
    }

    fn check_node(&self, i: usize, node: &RtNode) -> Result<(), ScheduleError> {
        let err = |reason: String| ScheduleError::Params {
            node: i,
            id: node.id.clone(),
            reason,
        };
        let (names, states, slots) = (node.param_names.len(), node.params.len(), node.slots.len());
        if names != states || states != slots {
            return Err(err(format!(
                "{names} parameter names, {states} states and {slots} slots"
            )));
        }
        if let Some(slot) = node.slots.iter().find(|s| s.values.len() < self.max_block) {
            return Err(err(format!(
                "a parameter slot holds {} values, the block is {}",
                slot.values.len(),
                self.max_block
            )));
        }
        Ok(())
    }

    fn check_step(&self, step: usize, s: &Step) -> Result<(), ScheduleError> {
        let buf = |b: BufId| {
            if b < self.pool_size {
                Ok(())
            } else {
                Err(ScheduleError::UnknownBuffer {
                    step,
                    buf: b,
                    count: self.pool_size,
                })
            }
        };
        let port = |what: &'static str, index: usize, count: usize| {
            if index < count {
                Ok(())
            } else {
                Err(ScheduleError::UnknownPort {
                    step,
                    what,
                    index,
                    count,
                })
            }
        };
        let channels = |c: usize| {
            if c == 0 || c > MAX_CHANNELS {
                Err(ScheduleError::Channels {
                    what: format!("step {step}"),
                    channels: c,
                })
            } else {
                Ok(())
            }
        };
        match s {
            Step::Input { input, buf: b } => {
                port("input", *input, self.inputs.len())?;
                buf(*b)
            }
            Step::Process {
                node,
                src,
                dst,
                in_channels,
                out_channels,
                key,
            } => {
                self.check_kind(step, *node, true)?;
                buf(*src)?;
                buf(*dst)?;
                key.map_or(Ok(()), buf)?;
                channels(*in_channels)?;
                channels(*out_channels)
            }
            Step::Bus {
                node,
                inputs,
                dst,
                channels: c,
            } => {
                self.check_kind(step, *node, false)?;
                let n = &self.nodes[*node];
                if n.params.len() != inputs.len() {
                    return Err(ScheduleError::Params {
                        node: *node,
                        id: n.id.clone(),
                        reason: format!(
                            "a bus of {} inputs has {} send gains",
                            inputs.len(),
                            n.params.len()
                        ),
                    });
                }
                for (i, input) in inputs.iter().enumerate() {
                    buf(input.buf)?;
                    channels(input.channels)?;
                    if input.slot != Some(i) {
                        return Err(ScheduleError::Params {
                            node: *node,
                            id: n.id.clone(),
                            reason: format!("bus input {i} is not scaled by send gain {i}"),
                        });
                    }
                }
                buf(*dst)?;
                channels(*c)
            }
            Step::Tap { tap, buf: b } => {
                port("tap", *tap, self.taps.len())?;
                buf(*b)
            }
            Step::Output { output, buf: b } => {
                port("output", *output, self.outputs.len())?;
                buf(*b)
            }
        }
    }

    fn check_kind(&self, step: usize, node: usize, processor: bool) -> Result<(), ScheduleError> {
        let n = self.nodes.get(node).ok_or(ScheduleError::UnknownNode {
            step,
            node,
            count: self.nodes.len(),
        })?;
        if matches!(n.kind, RtKind::Processor(_)) == processor {
            Ok(())
        } else {
            Err(ScheduleError::WrongKind {
                step,
                node,
                id: n.id.clone(),
                expected: if processor { "processor" } else { "bus" },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::param::{ParamSlot, Scale};
    use crate::dsp::registry;
    use crate::dsp::{ProcessSpec, ProcessorConfig};
    use crate::engine::params::ParamState;
    use crate::engine::schedule::BusInput;

    const BLOCK: usize = 16;

    fn gain_node(id: &str, gain_db: f64) -> RtNode {
        let config = ProcessorConfig::new().num("gain_db", gain_db);
        let mut b = registry::build("gain", &config, 1).expect("gain builds");
        b.processor.prepare(&ProcessSpec {
            sample_rate: 48_000.0,
            max_block: BLOCK,
            input_channels: 1,
        });
        let names = b
            .processor
            .params()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        RtNode {
            id: id.into(),
            kind: RtKind::Processor(b.processor),
            param_names: names,
            params: b
                .initial
                .iter()
                .map(|&v| ParamState::new(v, Scale::Linear, 0))
                .collect(),
            slots: b
                .initial
                .iter()
                .map(|&v| ParamSlot::new(v, BLOCK))
                .collect(),
            upstream_latency: 0,
            telemetry: None,
            bypassed: false,
        }
    }

    fn bus_node(id: &str, inputs: usize) -> RtNode {
        RtNode {
            id: id.into(),
            kind: RtKind::Bus,
            param_names: (0..inputs).map(|i| format!("send.{i}.gain_db")).collect(),
            params: (0..inputs)
                .map(|_| ParamState::new(0.0, Scale::Linear, 0))
                .collect(),
            slots: (0..inputs).map(|_| ParamSlot::new(0.0, BLOCK)).collect(),
            upstream_latency: 0,
            telemetry: None,
            bypassed: false,
        }
    }

    /// in(0) → gain a (+6 dB) ┐
    /// in(1) → gain b (−6 dB) ┴→ bus → out
    fn two_strips() -> ScheduleBuilder {
        let mut b = ScheduleBuilder::new(48_000.0, BLOCK);
        let (i0, i1) = (b.input(1), b.input(1));
        let a = b.node(gain_node("a", 6.0));
        let g = b.node(gain_node("b", -6.0));
        let bus = b.node(bus_node("mix", 2));
        b.buffers(3);
        b.step(Step::Input { input: i0, buf: 0 });
        b.step(Step::Input { input: i1, buf: 1 });
        for (node, buf) in [(a, 0), (g, 1)] {
            b.step(Step::Process {
                node,
                src: buf,
                dst: buf,
                in_channels: 1,
                out_channels: 1,
                key: None,
            });
        }
        b.step(Step::Bus {
            node: bus,
            inputs: vec![
                BusInput {
                    buf: 0,
                    channels: 1,
                    slot: Some(0),
                },
                BusInput {
                    buf: 1,
                    channels: 1,
                    slot: Some(1),
                },
            ],
            dst: 2,
            channels: 1,
        });
        let out = b.output("out", 1, 0);
        b.step(Step::Output {
            output: out,
            buf: 2,
        });
        b
    }

    /// A processor node of `kind` (one channel), its parameters gliding over `glide` samples.
    fn node(kind: &str, config: &ProcessorConfig, id: &str, glide: u32) -> RtNode {
        let mut b = registry::build(kind, config, 1).expect("builds");
        b.processor.prepare(&ProcessSpec {
            sample_rate: 48_000.0,
            max_block: BLOCK,
            input_channels: 1,
        });
        RtNode {
            id: id.into(),
            param_names: b
                .processor
                .params()
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            kind: RtKind::Processor(b.processor),
            params: b
                .initial
                .iter()
                .map(|&v| ParamState::new(v, Scale::Linear, glide))
                .collect(),
            slots: b
                .initial
                .iter()
                .map(|&v| ParamSlot::new(v, BLOCK))
                .collect(),
            upstream_latency: 0,
            telemetry: None,
            bypassed: false,
        }
    }

    /// A gain step right after a compressor runs folded into it (the plan says so), and the
    /// output is that of the two steps run apart (a tap between them keeps them apart), bit
    /// for bit: at a constant gain (multiplied in the compressor's last pass) and while the
    /// gain glides (its own pass after the compressor).
    #[test]
    fn a_gain_after_a_compressor_folds_into_it() {
        struct Nothing;
        impl Tap for Nothing {
            fn observe(&mut self, _: crate::dsp::AudioRef<'_>) {}
        }
        let chain = |tap_between: bool| {
            let mut b = ScheduleBuilder::new(48_000.0, BLOCK);
            let i = b.input(1);
            let comp = ProcessorConfig::new()
                .num("threshold_db", -20.0)
                .num("attack_ms", 1.0)
                .num("release_ms", 5.0);
            let c = b.node(node("compressor", &comp, "c", 0));
            let gain = ProcessorConfig::new().num("gain_db", -3.0);
            let g = b.node(node("gain", &gain, "g", 40));
            b.buffers(1);
            b.step(Step::Input { input: i, buf: 0 });
            for (k, node) in [c, g].into_iter().enumerate() {
                if k == 1 && tap_between {
                    let t = b.tap("c", Box::new(Nothing));
                    b.step(Step::Tap { tap: t, buf: 0 });
                }
                b.step(Step::Process {
                    node,
                    src: 0,
                    dst: 0,
                    in_channels: 1,
                    out_channels: 1,
                    key: None,
                });
            }
            let out = b.output("out", 1, 0);
            b.step(Step::Output {
                output: out,
                buf: 0,
            });
            (b.build().expect("valid"), g)
        };
        let folds = |s: &Schedule| {
            s.plan
                .iter()
                .any(|e| matches!(e, crate::engine::batches::Exec::Fold { .. }))
        };
        let ((mut folded, g), (mut apart, _)) = (chain(false), chain(true));
        assert!(folds(&folded) && !folds(&apart));
        let mut noise = crate::dsp::test_signal::noise(0x51ed_270b_2787_4e4b);
        let mut outs = [Vec::new(), Vec::new()];
        let mut input = Vec::new();
        for block in 0..400 {
            let level = if (block / 100) % 2 == 0 { 0.9 } else { 0.02 };
            let x: Vec<f64> = (0..BLOCK).map(|_| level * noise()).collect();
            for (s, out) in [&mut folded, &mut apart].into_iter().zip(&mut outs) {
                if block == 250 {
                    s.set_param(g, crate::dsp::gain::GAIN_DB, 2.0);
                }
                s.input_mut(0, BLOCK).channel_mut(0).copy_from_slice(&x);
                s.process(BLOCK);
                out.extend_from_slice(s.output(0, BLOCK).channel(0));
            }
            input.extend(x);
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&outs[0]) == bits(&outs[1]), "folded = apart");
        // Both the compressor and the gain did something.
        let ratio = |i: usize| outs[0][i] / input[i];
        assert!((0..BLOCK * 20).any(|i| ratio(i) < 0.5), "compresses");
        let last = input.len() - 1;
        assert!(
            (ratio(last) / crate::units::db_to_gain(2.0) - 1.0).abs() < 1e-2,
            "+2 dB at the end"
        );
    }

    #[test]
    fn built_program_runs_its_steps() {
        let mut s = two_strips().build().expect("valid");
        assert_eq!(
            (s.input_count(), s.output_count(), s.nodes().len()),
            (2, 1, 3)
        );
        s.input_mut(0, 4)
            .channel_mut(0)
            .copy_from_slice(&[1.0, 0.5, 0.0, -1.0]);
        s.input_mut(1, 4)
            .channel_mut(0)
            .copy_from_slice(&[1.0, 1.0, 1.0, 1.0]);
        s.process(4);
        let (ga, gb) = (
            crate::units::db_to_gain(6.0),
            crate::units::db_to_gain(-6.0),
        );
        let expected = [ga + gb, 0.5 * ga + gb, gb, -ga + gb];
        assert_eq!(s.output(0, 4).channel(0), &expected);
        assert_eq!(s.position(), 4);
    }

    /// Runs `s` over `blocks` of two mono inputs (a different signal in every block, blocks of
    /// varying length) and returns the output.
    fn run_blocks(s: &mut Schedule, blocks: usize) -> Vec<f64> {
        let mut out = Vec::new();
        for k in 0..blocks {
            let n = BLOCK - 3 * k;
            for i in 0..2 {
                let mut input = s.input_mut(i, n);
                for (j, x) in input.channel_mut(0).iter_mut().enumerate() {
                    *x = ((k * 31 + j * 7 + i * 13) % 97) as f64 / 97.0 - 0.5;
                }
            }
            s.process(n);
            out.extend_from_slice(s.output(0, n).channel(0));
        }
        out
    }

    #[test]
    fn moved_inputs_give_the_copied_blocks() {
        let mut copied = two_strips().build().expect("valid");
        let mut moved = two_strips().build().expect("valid");
        assert!(!moved.set_move_inputs(true));
        assert!(
            moved.set_move_inputs(true),
            "on: every input feeds one step"
        );
        let want = run_blocks(&mut copied, 6);
        let got = run_blocks(&mut moved, 6);
        assert_eq!(got.len(), want.len());
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "moving the inputs changed the output"
        );
        // What the inputs hold between blocks is stale (the pool's old buffers), but their
        // channel counts are the inputs' own.
        assert_eq!((moved.input_channels(0), moved.input_channels(1)), (1, 1));
    }

    #[test]
    fn an_input_read_twice_is_copied_not_moved() {
        // in(0) feeds both strips: moving it into the first would leave the second stale.
        let mut b = ScheduleBuilder::new(48_000.0, BLOCK);
        let (i0, _i1) = (b.input(1), b.input(1));
        let a = b.node(gain_node("a", 6.0));
        b.buffers(2);
        b.step(Step::Input { input: i0, buf: 0 });
        b.step(Step::Input { input: i0, buf: 1 });
        b.step(Step::Process {
            node: a,
            src: 0,
            dst: 0,
            in_channels: 1,
            out_channels: 1,
            key: None,
        });
        let out = b.output("out", 1, 0);
        b.step(Step::Output {
            output: out,
            buf: 1,
        });
        let mut s = b.build().expect("valid");
        s.set_move_inputs(true);
        assert!(!s.set_move_inputs(true), "refused: input 0 feeds two steps");
        for k in 0..3 {
            let x = k as f64 + 0.25;
            s.input_mut(0, 8).channel_mut(0).fill(x);
            s.process(8);
            assert_eq!(s.output(0, 8).channel(0), &[x; 8]);
        }
    }

    #[test]
    fn latency_tail_and_taps_carry_over() {
        struct Count(usize);
        impl Tap for Count {
            fn observe(&mut self, audio: crate::dsp::AudioRef<'_>) {
                self.0 += audio.frames();
            }
        }
        let mut b = two_strips();
        b.latency(7);
        b.tail(11);
        let t = b.tap("mix", Box::new(Count(0)));
        b.step(Step::Tap { tap: t, buf: 2 });
        let mut s = b.build().expect("valid");
        assert_eq!((s.latency(), s.tail()), (7, 11));
        s.process(5);
        let taps = s.take_taps();
        assert_eq!(taps.len(), 1);
        assert_eq!(taps[0].0, "mix");
        let any: &dyn std::any::Any = &*taps[0].1;
        assert_eq!(any.downcast_ref::<Count>().map(|c| c.0), Some(5));
    }

    #[test]
    fn refuses_a_step_naming_a_missing_buffer() {
        let mut b = two_strips();
        b.step(Step::Output { output: 0, buf: 3 });
        assert_eq!(
            b.build().err(),
            Some(ScheduleError::UnknownBuffer {
                step: 6,
                buf: 3,
                count: 3
            })
        );
    }

    #[test]
    fn refuses_missing_nodes_inputs_outputs_and_taps() {
        let mut b = two_strips();
        b.step(Step::Process {
            node: 9,
            src: 0,
            dst: 0,
            in_channels: 1,
            out_channels: 1,
            key: None,
        });
        assert!(matches!(
            b.build(),
            Err(ScheduleError::UnknownNode { node: 9, .. })
        ));
        for step in [
            Step::Input { input: 2, buf: 0 },
            Step::Output { output: 1, buf: 0 },
            Step::Tap { tap: 0, buf: 0 },
        ] {
            let mut b = two_strips();
            b.step(step);
            assert!(matches!(b.build(), Err(ScheduleError::UnknownPort { .. })));
        }
    }

    #[test]
    fn refuses_a_bus_run_as_a_processor_and_the_reverse() {
        let mut b = two_strips();
        b.step(Step::Process {
            node: 2,
            src: 2,
            dst: 2,
            in_channels: 1,
            out_channels: 1,
            key: None,
        });
        assert!(matches!(
            b.build(),
            Err(ScheduleError::WrongKind {
                expected: "processor",
                ..
            })
        ));
        let mut b = two_strips();
        b.step(Step::Bus {
            node: 0,
            inputs: Vec::new(),
            dst: 2,
            channels: 1,
        });
        assert!(matches!(
            b.build(),
            Err(ScheduleError::WrongKind {
                expected: "bus",
                ..
            })
        ));
    }

    #[test]
    fn refuses_a_bus_without_one_send_gain_per_input() {
        let mut b = ScheduleBuilder::new(48_000.0, BLOCK);
        b.input(1);
        let bus = b.node(bus_node("mix", 1));
        b.buffers(2);
        b.step(Step::Input { input: 0, buf: 0 });
        let one = BusInput {
            buf: 0,
            channels: 1,
            slot: Some(0),
        };
        b.step(Step::Bus {
            node: bus,
            inputs: vec![one, one],
            dst: 1,
            channels: 1,
        });
        assert!(matches!(b.build(), Err(ScheduleError::Params { .. })));
    }

    #[test]
    fn refuses_bad_channel_counts_and_short_slots() {
        let mut b = two_strips();
        b.output("wide", 3, 0);
        assert!(matches!(
            b.build(),
            Err(ScheduleError::Channels { channels: 3, .. })
        ));
        let mut b = two_strips();
        b.node_mut(0).slots[0] = ParamSlot::new(0.0, BLOCK - 1);
        assert!(matches!(b.build(), Err(ScheduleError::Params { .. })));
        assert_eq!(
            ScheduleBuilder::new(48_000.0, 0).build().err(),
            Some(ScheduleError::NoBlock)
        );
    }

    #[test]
    fn independent_processors_of_one_kind_are_batched() {
        // Both gains are ready together after the inputs: one batch of two, if gain has a
        // batch kernel; otherwise no plan at all.
        let s = two_strips().build().expect("valid");
        let has_kernel = match &s.nodes()[0].kind {
            RtKind::Processor(p) => p.batch_kernel().is_some(),
            RtKind::Bus => unreachable!(),
        };
        let expected = if has_kernel { (1, 2) } else { (0, 0) };
        assert_eq!(s.batch_stats(), expected);
    }
}
