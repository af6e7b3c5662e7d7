//! The split layout: a schedule cut in two for a second thread.
//!
//! The stems' strips are independent until they reach a bus. [`split`] gives some of them
//! (whole *units*: the steps connected to one another before any bus; reading a stem is a unit
//! of its own) to a **worker** schedule and leaves the rest, with the buses, the master chain, the taps and
//! the outputs, to the **main** schedule. The worker's results that the main schedule reads
//! become the worker's outputs and the main schedule's extra inputs. Each node runs in exactly
//! one of the two, on the same inputs, block after block, and bus inputs are still summed in
//! their fixed order, so the output is the same, bit for bit, as the whole schedule's on one
//! thread. [`join`] puts the nodes back.
//!
//! Nothing here runs on the audio thread: splitting allocates (the two schedules' buffer pools,
//! their plans); the runner ([`super::runner`]) calls it between stretches of the loop.

use crate::dsp::buffer::MAX_CHANNELS;
use crate::dsp::AudioBuffer;
use crate::engine::schedule::{BusInput, OutputSlot, Step};
use crate::engine::{RtKind, RtNode, Schedule};

/// The two halves of a split schedule.
pub struct Split {
    /// Runs the worker's units: its inputs are the engine inputs [`Split::worker_inputs`],
    /// its outputs the values the main schedule needs.
    pub worker: Schedule,
    /// Runs everything else: its inputs are [`Split::main_inputs`] followed by the worker's
    /// outputs, in order; its outputs are the original schedule's.
    pub main: Schedule,
    /// Original engine input of each worker input.
    pub worker_inputs: Vec<usize>,
    /// Original engine input of each of the main schedule's own inputs.
    pub main_inputs: Vec<usize>,
    /// Where each original node went: (to the worker?, index there).
    node_home: Vec<Option<(bool, usize)>>,
}

/// One step as data flow: the values it reads and the value it writes.
struct Flow {
    reads: Vec<usize>,
    write: Option<usize>,
}

fn flows(schedule: &Schedule) -> (Vec<Flow>, Vec<usize>) {
    let mut current = vec![usize::MAX; schedule.pool.len()];
    let mut channels = Vec::new();
    let mut out = Vec::with_capacity(schedule.steps.len());
    for step in &schedule.steps {
        let (reads, write_buf, ch): (Vec<usize>, Option<usize>, usize) = match step {
            Step::Input { input, buf } => (vec![], Some(*buf), schedule.inputs[*input].channels()),
            Step::Process {
                src,
                dst,
                key,
                out_channels,
                ..
            } => {
                let mut r = vec![current[*src]];
                if let Some(k) = key {
                    r.push(current[*k]);
                }
                (r, Some(*dst), *out_channels)
            }
            Step::Bus {
                inputs,
                dst,
                channels,
                ..
            } => (
                inputs.iter().map(|i| current[i.buf]).collect(),
                Some(*dst),
                *channels,
            ),
            Step::Tap { buf, .. } | Step::Output { buf, .. } => (vec![current[*buf]], None, 0),
        };
        let write = write_buf.map(|b| {
            channels.push(ch);
            current[b] = channels.len() - 1;
            channels.len() - 1
        });
        out.push(Flow { reads, write });
    }
    (out, channels)
}

/// The units a worker may take: groups of steps connected through values, none of them a bus,
/// a tap or an output, none reading anything a bus produced. Returns, per step, its unit (or
/// `None`), and the number of units.
pub fn units(schedule: &Schedule) -> (Vec<Option<usize>>, usize) {
    let (flow, nvalues) = {
        let (f, ch) = flows(schedule);
        let n = ch.len();
        (f, n)
    };
    let n = schedule.steps.len();
    let mut producer = vec![usize::MAX; nvalues];
    for (i, f) in flow.iter().enumerate() {
        if let Some(v) = f.write {
            producer[v] = i;
        }
    }
    // Steps downstream of a bus, or that are buses, taps or outputs, stay with the main thread.
    let mut main_only = vec![false; n];
    for (i, step) in schedule.steps.iter().enumerate() {
        main_only[i] = matches!(
            step,
            Step::Bus { .. } | Step::Tap { .. } | Step::Output { .. }
        ) || flow[i]
            .reads
            .iter()
            .any(|&v| v != usize::MAX && main_only[producer[v]]);
    }
    // Union-find over the remaining steps, joined through the values they share; an input step
    // (decoding a stem) is a unit of its own, so that one thread may decode what the other
    // processes.
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for i in 0..n {
        if main_only[i] {
            continue;
        }
        for &v in &flow[i].reads {
            if v == usize::MAX || matches!(schedule.steps[producer[v]], Step::Input { .. }) {
                continue;
            }
            let (a, b) = (find(&mut parent, i), find(&mut parent, producer[v]));
            parent[a] = b;
        }
    }
    let mut id = vec![usize::MAX; n];
    let mut unit = vec![None; n];
    let mut count = 0;
    for i in 0..n {
        if main_only[i] {
            continue;
        }
        let r = find(&mut parent, i);
        if id[r] == usize::MAX {
            id[r] = count;
            count += 1;
        }
        unit[i] = Some(id[r]);
    }
    (unit, count)
}

/// For each unit, the units whose values it reads (a unit may only go to the worker with
/// all of them: the worker never waits for the main thread).
pub fn unit_deps(schedule: &Schedule, unit: &[Option<usize>], count: usize) -> Vec<Vec<usize>> {
    let (flow, channels) = flows(schedule);
    let mut producer = vec![usize::MAX; channels.len()];
    for (i, f) in flow.iter().enumerate() {
        if let Some(v) = f.write {
            producer[v] = i;
        }
    }
    let mut deps = vec![Vec::new(); count];
    for (i, f) in flow.iter().enumerate() {
        let Some(u) = unit[i] else { continue };
        for &v in &f.reads {
            if let Some(p) = unit[producer[v]] {
                if p != u && !deps[u].contains(&p) {
                    deps[u].push(p);
                }
            }
        }
    }
    deps
}

/// Counts the values that cross from the worker to the main thread for a choice of units
/// (a bus's first inputs summed by the worker count as one, see [`split`]): each costs a copy
/// on both threads per block, out of one core's cache into the other's.
pub struct Crossings {
    flow: Vec<Flow>,
    values: usize,
}

impl Crossings {
    /// For `schedule`'s data flow.
    pub fn new(schedule: &Schedule) -> Self {
        let (flow, channels) = flows(schedule);
        Self {
            flow,
            values: channels.len(),
        }
    }

    /// The values crossing when the worker takes the units `to_worker[u] == true`.
    pub fn count(&self, schedule: &Schedule, unit: &[Option<usize>], to_worker: &[bool]) -> usize {
        let on_worker: Vec<bool> = (0..self.flow.len())
            .map(|i| unit[i].is_some_and(|u| to_worker[u]))
            .collect();
        let mut produced_by_worker = vec![false; self.values];
        for (i, f) in self.flow.iter().enumerate() {
            if let Some(v) = f.write {
                produced_by_worker[v] = on_worker[i];
            }
        }
        let partials = partial_sums(schedule, &self.flow, &on_worker, &produced_by_worker);
        let mut summed = vec![0; self.flow.len()];
        for p in &partials {
            summed[p.bus] = p.count;
        }
        let mut crossing = vec![false; self.values];
        for (i, f) in self.flow.iter().enumerate() {
            if !on_worker[i] {
                for &v in &f.reads[summed[i]..] {
                    crossing[v] |= v != usize::MAX && produced_by_worker[v];
                }
            }
        }
        crossing.iter().filter(|c| **c).count() + partials.len()
    }
}

/// Whether a choice of units for the worker respects [`unit_deps`].
pub fn valid(to_worker: &[bool], deps: &[Vec<usize>]) -> bool {
    (0..to_worker.len()).all(|u| !to_worker[u] || deps[u].iter().all(|&d| to_worker[d]))
}

/// A side's program being built: steps over values, to get buffers assigned.
struct Side {
    /// (original step or a new one, values read, value written).
    steps: Vec<(SideStep, Vec<usize>, Option<usize>)>,
}

enum SideStep {
    /// A copy of original step `i`, with nodes and inputs renumbered.
    Orig(usize),
    /// Engine input `k` of this side into a value.
    Input(usize),
    /// A value out to this side's output `k`.
    Output(usize),
    /// The worker's partial sum of a bus's first inputs (at unity gain, in the bus's order)
    /// into a value of `channels` channels: node `node` is a placeholder without send gains;
    /// `inputs` are the summed values' channels.
    Sum {
        node: usize,
        channels: usize,
        inputs: Vec<usize>,
    },
}

/// Assigns buffers by liveness (as the compiler does: a process step works in place when its
/// input dies there) and builds the steps. Returns the steps and the pool size.
fn lay_out(
    side: &Side,
    schedule: &Schedule,
    channels: &[usize],
    node_index: &[usize],
    input_index: &[usize],
    summed: &[usize],
) -> (Vec<Step>, usize) {
    let nv = channels.len();
    let mut last_use = vec![usize::MAX; nv];
    for (si, (_, reads, _)) in side.steps.iter().enumerate() {
        for &v in reads {
            last_use[v] = si;
        }
    }
    let mut buf_of = vec![usize::MAX; nv];
    let mut free: Vec<usize> = Vec::new();
    let mut pool = 0;
    let mut steps = Vec::with_capacity(side.steps.len());
    for (si, (what, reads, write)) in side.steps.iter().enumerate() {
        let mut alloc = |free: &mut Vec<usize>| {
            free.pop().unwrap_or_else(|| {
                pool += 1;
                pool - 1
            })
        };
        let mut in_place = None;
        let step = match what {
            SideStep::Input(k) => {
                let v = write.expect("inputs write");
                buf_of[v] = alloc(&mut free);
                Step::Input {
                    input: *k,
                    buf: buf_of[v],
                }
            }
            SideStep::Output(k) => Step::Output {
                output: *k,
                buf: buf_of[reads[0]],
            },
            SideStep::Sum {
                node,
                channels: ch,
                inputs,
            } => {
                let out = write.expect("sums write");
                buf_of[out] = alloc(&mut free);
                Step::Bus {
                    node: *node,
                    inputs: inputs
                        .iter()
                        .zip(reads)
                        .map(|(&c, &v)| BusInput {
                            buf: buf_of[v],
                            channels: c,
                            slot: None,
                        })
                        .collect(),
                    dst: buf_of[out],
                    channels: *ch,
                }
            }
            SideStep::Orig(i) => match &schedule.steps[*i] {
                Step::Input { input, .. } => {
                    let v = write.expect("inputs write");
                    buf_of[v] = alloc(&mut free);
                    Step::Input {
                        input: input_index[*input],
                        buf: buf_of[v],
                    }
                }
                Step::Process {
                    node,
                    in_channels,
                    out_channels,
                    key,
                    ..
                } => {
                    let src = reads[0];
                    let key_v = key.map(|_| reads[1]);
                    let out = write.expect("processes write");
                    if last_use[src] == si && key_v != Some(src) {
                        buf_of[out] = buf_of[src];
                        in_place = Some(src);
                    } else {
                        buf_of[out] = alloc(&mut free);
                    }
                    Step::Process {
                        node: node_index[*node],
                        src: buf_of[src],
                        dst: buf_of[out],
                        in_channels: *in_channels,
                        out_channels: *out_channels,
                        key: key_v.map(|k| buf_of[k]),
                    }
                }
                Step::Bus {
                    node,
                    inputs,
                    channels: ch,
                    ..
                } => {
                    let out = write.expect("buses write");
                    buf_of[out] = alloc(&mut free);
                    // The first `k` inputs summed by the worker arrive as one value: the
                    // first read, summed as it is.
                    let k = summed[*i];
                    let partial = (k > 0).then(|| BusInput {
                        buf: buf_of[reads[0]],
                        channels: *ch,
                        slot: None,
                    });
                    let rest = &reads[usize::from(k > 0)..];
                    Step::Bus {
                        node: node_index[*node],
                        inputs: partial
                            .into_iter()
                            .chain(inputs[k..].iter().zip(rest).map(|(i, &v)| BusInput {
                                buf: buf_of[v],
                                channels: i.channels,
                                slot: i.slot,
                            }))
                            .collect(),
                        dst: buf_of[out],
                        channels: *ch,
                    }
                }
                Step::Tap { tap, .. } => Step::Tap {
                    tap: *tap,
                    buf: buf_of[reads[0]],
                },
                Step::Output { output, .. } => Step::Output {
                    output: *output,
                    buf: buf_of[reads[0]],
                },
            },
        };
        steps.push(step);
        let mut released = reads.clone();
        released.sort_unstable();
        released.dedup();
        for v in released {
            if last_use[v] == si && Some(v) != in_place {
                free.push(buf_of[v]);
            }
        }
        if let Some(v) = write {
            if last_use[*v] == usize::MAX {
                free.push(buf_of[*v]);
            }
        }
    }
    (steps, pool)
}

/// A bus on the main thread whose first `count` inputs the worker sums into one value, so
/// that one buffer crosses between the threads instead of `count`.
struct Partial {
    /// The bus's step.
    bus: usize,
    /// How many of its first inputs the worker sums.
    count: usize,
    /// The step after which the worker sums them (the last of their producers).
    after: usize,
    /// The bus's channels.
    channels: usize,
}

/// The buses whose first two or more inputs (in summing order) the worker produces, each read
/// by nothing else on the main thread and added at a fixed unity gain (no automation, no
/// glide: the render's send gains do not change during a run). The bus adds the worker's sum
/// of them, then the rest: the same additions in the same order, starting from zero (a sum
/// that starts from +0 is never -0, so adding it to the bus's cleared +0 gives it back
/// exactly), so the output keeps every bit.
fn partial_sums(
    schedule: &Schedule,
    flow: &[Flow],
    on_worker: &[bool],
    produced_by_worker: &[bool],
) -> Vec<Partial> {
    let mut main_reads = vec![0usize; produced_by_worker.len()];
    let mut producer = vec![usize::MAX; produced_by_worker.len()];
    for (i, f) in flow.iter().enumerate() {
        if let Some(v) = f.write {
            producer[v] = i;
        }
        if !on_worker[i] {
            for &v in &f.reads {
                main_reads[v] += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (i, step) in schedule.steps.iter().enumerate() {
        let Step::Bus {
            node,
            inputs,
            channels,
            ..
        } = step
        else {
            continue;
        };
        let params = &schedule.nodes[*node].params;
        let unity = |input: &BusInput| {
            input.slot.is_none_or(|s| {
                params
                    .get(s)
                    .is_some_and(|p| p.curve().is_none() && p.base() == 0.0 && !p.is_gliding())
            })
        };
        let count = inputs
            .iter()
            .zip(&flow[i].reads)
            .take_while(|(input, &v)| {
                v != usize::MAX && produced_by_worker[v] && main_reads[v] == 1 && unity(input)
            })
            .count();
        if count >= 2 {
            let after = flow[i].reads[..count]
                .iter()
                .map(|&v| producer[v])
                .max()
                .expect("two or more");
            out.push(Partial {
                bus: i,
                count,
                after,
                channels: *channels,
            });
        }
    }
    out
}

fn placeholder() -> RtNode {
    RtNode {
        id: String::new(),
        kind: RtKind::Bus,
        param_names: Vec::new(),
        params: Vec::new(),
        slots: Vec::new(),
        upstream_latency: 0,
        telemetry: None,
        bypassed: false,
    }
}

fn empty_schedule(of: &Schedule) -> Schedule {
    Schedule {
        sample_rate: of.sample_rate,
        max_block: of.max_block,
        nodes: Vec::new(),
        steps: Vec::new(),
        pool: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        taps: Vec::new(),
        tap_nodes: Vec::new(),
        latency: of.latency,
        tail: of.tail,
        position: of.position,
        guard_nonfinite: of.guard_nonfinite,
        move_inputs: of.move_inputs,
        nonfinite: Default::default(),
        plan: Vec::new(),
        batch_members: Vec::new(),
    }
}

/// The two sides' programs over values: the main side's imports first (the worker's values,
/// its inputs from `imports_at`), every original step on its side, the worker's partial sums
/// after the last step they read (their placeholder nodes from `sum_node`), and the worker's
/// exports last. Returns (worker, main, partial sums).
#[allow(clippy::type_complexity)]
fn sides(
    schedule: &Schedule,
    flow: &[Flow],
    on_worker: &[bool],
    exports: &[usize],
    sums_after: &[Vec<(usize, Vec<usize>, usize)>],
    channels: &[usize],
    (imports_at, sum_node): (usize, usize),
) -> (Side, Side, usize) {
    let mut worker_side = Side { steps: Vec::new() };
    let mut main_side = Side { steps: Vec::new() };
    for (k, &v) in exports.iter().enumerate() {
        main_side
            .steps
            .push((SideStep::Input(imports_at + k), vec![], Some(v)));
    }
    let mut sum_nodes = 0;
    for (i, f) in flow.iter().enumerate() {
        let side = if on_worker[i] {
            &mut worker_side
        } else {
            &mut main_side
        };
        side.steps
            .push((SideStep::Orig(i), f.reads.clone(), f.write));
        for (bus, prefix, value) in &sums_after[i] {
            let Step::Bus { inputs, .. } = &schedule.steps[*bus] else {
                unreachable!("partial sums are of buses");
            };
            worker_side.steps.push((
                SideStep::Sum {
                    node: sum_node + sum_nodes,
                    channels: channels[*value],
                    inputs: inputs[..prefix.len()].iter().map(|i| i.channels).collect(),
                },
                prefix.clone(),
                Some(*value),
            ));
            sum_nodes += 1;
        }
    }
    for (k, &v) in exports.iter().enumerate() {
        worker_side.steps.push((SideStep::Output(k), vec![v], None));
    }
    (worker_side, main_side, sum_nodes)
}

/// Splits `schedule`, giving the worker the units `to_worker[u] == true` (see [`units`]).
/// The nodes move into the halves (placeholders stay behind); [`join`] moves them back.
pub fn split(schedule: &mut Schedule, unit: &[Option<usize>], to_worker: &[bool]) -> Split {
    let (mut flow, mut channels) = flows(schedule);
    let n = schedule.steps.len();
    let on_worker: Vec<bool> = (0..n)
        .map(|i| unit[i].is_some_and(|u| to_worker[u]))
        .collect();
    let mut produced_by_worker = vec![false; channels.len()];
    for (i, f) in flow.iter().enumerate() {
        if let Some(v) = f.write {
            produced_by_worker[v] = on_worker[i];
        }
    }
    // Buses whose first inputs the worker sums: their reads become the partial sum's value
    // (a new one) and the rest.
    let partials = partial_sums(schedule, &flow, &on_worker, &produced_by_worker);
    let mut summed = vec![0; n];
    let mut sums_after: Vec<Vec<(usize, Vec<usize>, usize)>> = vec![Vec::new(); n];
    for p in &partials {
        let value = channels.len();
        channels.push(p.channels);
        produced_by_worker.push(true);
        let reads = std::mem::take(&mut flow[p.bus].reads);
        let (prefix, rest) = reads.split_at(p.count);
        flow[p.bus].reads = std::iter::once(value).chain(rest.iter().copied()).collect();
        summed[p.bus] = p.count;
        sums_after[p.after].push((p.bus, prefix.to_vec(), value));
    }
    // Values crossing from the worker to the main thread, in order of first production.
    let mut export_of = vec![usize::MAX; channels.len()];
    let mut exports = Vec::new();
    for (i, f) in flow.iter().enumerate() {
        if on_worker[i] {
            continue;
        }
        for &v in &f.reads {
            if produced_by_worker[v] && export_of[v] == usize::MAX {
                export_of[v] = exports.len();
                exports.push(v);
            }
        }
    }
    // Engine inputs and nodes of each side.
    let mut worker_inputs = Vec::new();
    let mut main_inputs = Vec::new();
    let mut input_index = vec![usize::MAX; schedule.inputs.len()];
    let mut node_home = vec![None; schedule.nodes.len()];
    let mut node_index = vec![usize::MAX; schedule.nodes.len()];
    let (mut wn, mut mn) = (0, 0);
    for (i, step) in schedule.steps.iter().enumerate() {
        match step {
            Step::Input { input, .. } => {
                let list = if on_worker[i] {
                    &mut worker_inputs
                } else {
                    &mut main_inputs
                };
                input_index[*input] = list.len();
                list.push(*input);
            }
            Step::Process { node, .. } | Step::Bus { node, .. } => {
                let idx = if on_worker[i] { &mut wn } else { &mut mn };
                node_home[*node] = Some((on_worker[i], *idx));
                node_index[*node] = *idx;
                *idx += 1;
            }
            _ => {}
        }
    }
    let (worker_side, main_side, sum_nodes) = sides(
        schedule,
        &flow,
        &on_worker,
        &exports,
        &sums_after,
        &channels,
        (main_inputs.len(), wn),
    );
    let lay = |side: &Side| {
        lay_out(
            side,
            schedule,
            &channels,
            &node_index,
            &input_index,
            &summed,
        )
    };
    let (wsteps, wpool) = lay(&worker_side);
    let (msteps, mpool) = lay(&main_side);

    let max = schedule.max_block;
    let mut worker = empty_schedule(schedule);
    let mut main = empty_schedule(schedule);
    worker.steps = wsteps;
    main.steps = msteps;
    worker.pool = (0..wpool)
        .map(|_| AudioBuffer::new(MAX_CHANNELS, max))
        .collect();
    main.pool = (0..mpool)
        .map(|_| AudioBuffer::new(MAX_CHANNELS, max))
        .collect();
    worker.inputs = worker_inputs
        .iter()
        .map(|&i| AudioBuffer::with_room(schedule.inputs[i].channels(), max))
        .collect();
    main.inputs = main_inputs
        .iter()
        .map(|&i| AudioBuffer::with_room(schedule.inputs[i].channels(), max))
        .chain(
            exports
                .iter()
                .map(|&v| AudioBuffer::with_room(channels[v], max)),
        )
        .collect();
    worker.outputs = exports
        .iter()
        .enumerate()
        .map(|(k, &v)| OutputSlot {
            id: format!("__export{k}"),
            buffer: AudioBuffer::new(channels[v], max),
            latency: 0,
        })
        .collect();
    main.outputs = std::mem::take(&mut schedule.outputs);
    main.taps = std::mem::take(&mut schedule.taps);
    main.tap_nodes = std::mem::take(&mut schedule.tap_nodes);
    // The partial sums' nodes stay placeholders (no send gains: they sum at unity).
    worker.nodes = (0..wn + sum_nodes).map(|_| placeholder()).collect();
    main.nodes = (0..mn).map(|_| placeholder()).collect();
    for (orig, home) in node_home.iter().enumerate() {
        if let Some((w, idx)) = home {
            let side = if *w { &mut worker } else { &mut main };
            std::mem::swap(&mut side.nodes[*idx], &mut schedule.nodes[orig]);
        }
    }
    worker.plan_batches();
    main.plan_batches();
    Split {
        worker,
        main,
        worker_inputs,
        main_inputs,
        node_home,
    }
}

/// Puts the nodes, outputs and taps back into `schedule`, at the halves' stream position.
pub fn join(schedule: &mut Schedule, mut split: Split) {
    for (orig, home) in split.node_home.iter().enumerate() {
        if let Some((w, idx)) = home {
            let side = if *w {
                &mut split.worker
            } else {
                &mut split.main
            };
            std::mem::swap(&mut side.nodes[*idx], &mut schedule.nodes[orig]);
        }
    }
    schedule.outputs = std::mem::take(&mut split.main.outputs);
    schedule.taps = std::mem::take(&mut split.main.taps);
    schedule.tap_nodes = std::mem::take(&mut split.main.tap_nodes);
    schedule.position = split.main.position;
}
