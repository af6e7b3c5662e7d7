//! Validation and compilation: from a [`GraphSpec`] to a runnable [`Schedule`].
//!
//! The steps, in order, a module each:
//! 1. [`validate`]: ids unique, connections name existing nodes and legal ports, no duplicates;
//! 2. [`order`]: the graph is put in a petgraph `DiGraph` (nodes inserted sorted by id, so
//!    everything that follows is independent of recipe order), checked for cycles and sorted;
//! 3. [`nodes`]: in topological order, channel counts propagate and are checked, processors are
//!    built and prepared (which fixes their latency);
//! 4. [`order`] again: nodes that reach no output are dropped (with a warning);
//! 5. [`latency`]: every input of a node is delayed to match its latest input, so parallel
//!    paths meet sample-aligned; the total is reported per output for the render to trim;
//! 6. [`program`]: a flat program over symbolic values, with the compensation delays and taps;
//! 7. [`buffers`]: buffers assigned by liveness: a processor works in place on its input's
//!    buffer when nothing else still needs it, and a buffer whose value is dead is reused;
//! 8. [`build`]: the engine's nodes, the automation, and the schedule through the engine's
//!    [`ScheduleBuilder`](crate::engine::ScheduleBuilder), which also plans the batches
//!    (independent processors of one kind run side by side; see `engine::batches`).
//!
//! Bus inputs are summed in the order of their source ids, never in recipe or hash order.

mod buffers;
mod build;
mod latency;
mod nodes;
mod order;
mod program;
mod validate;

use super::error::GraphError;
use super::spec::GraphSpec;
use crate::dsp::Port;
use crate::engine::{RtNode, Schedule, Tap};

/// Settings of a compilation.
pub struct CompileOptions {
    /// Sample rate of the session.
    pub sample_rate: f64,
    /// The largest block the schedule will be asked to process.
    pub max_block: usize,
    /// Meters to attach, by node id (they observe the node's output).
    pub taps: Vec<(String, Box<dyn Tap>)>,
}

impl CompileOptions {
    /// Options with no taps.
    pub fn new(sample_rate: f64, max_block: usize) -> Self {
        Self {
            sample_rate,
            max_block,
            taps: Vec::new(),
        }
    }
}

/// A node of the compiled graph, described for people (`stemgraph graph`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSummary {
    /// Node id.
    pub id: String,
    /// Kind name.
    pub kind: String,
    /// Output channels.
    pub channels: usize,
    /// Latency the node itself adds.
    pub latency: usize,
    /// Latency of the signal when it arrives at this node.
    pub arrival_latency: usize,
    /// Inputs: (source id, port, send gain dB, compensation delay in samples).
    pub inputs: Vec<(String, Port, f64, usize)>,
    /// Parameters with their starting values.
    pub params: Vec<(String, f64)>,
    /// Whether it is bypassed.
    pub bypassed: bool,
}

/// The result of a compilation.
pub struct Compiled {
    /// The program, ready to run.
    pub schedule: Schedule,
    /// Things worth telling the user that do not stop the render.
    pub warnings: Vec<String>,
    /// The compiled graph in schedule order, for display.
    pub summary: Vec<NodeSummary>,
}

/// Validates `spec` and compiles it into a schedule.
pub fn compile(spec: &GraphSpec, mut opts: CompileOptions) -> Result<Compiled, GraphError> {
    crate::dsp::simd::init();
    let fs = opts.sample_rate;
    let w = validate::validate(spec)?;
    let order = order::order(spec, &w)?;
    let mut warnings = Vec::new();
    let built = nodes::build_nodes(spec, &w, &order.topo, fs, opts.max_block, &mut warnings)?;
    let (outputs, live) = order::reachable(spec, &w, &order, &mut warnings)?;
    let lat = latency::latencies(&w, &order.topo, &built);
    let cx = program::Inputs {
        spec,
        w: &w,
        topo: &order.topo,
        live: &live,
        built: &built,
        lat: &lat,
    };
    let program = program::lay_out(&cx, std::mem::take(&mut opts.taps))?;
    let (steps, pool_size) = buffers::assign_buffers(&program);
    let parts = build::Parts {
        spec,
        w: &w,
        built,
        lat: &lat,
        outputs: &outputs,
        program,
        steps,
        pool_size,
    };
    let (schedule, summary) = build::schedule(parts, fs, opts.max_block)?;
    Ok(Compiled {
        schedule,
        warnings,
        summary,
    })
}

/// Whether the param list of a node allows `name`, and which index it has.
fn param_index(names: &[String], name: &str) -> Option<usize> {
    names.iter().position(|n| n == name)
}

/// Finds the (node, parameter) indexes of a parameter id `<node id>.<param>`: the longest node id
/// that prefixes it wins.
pub fn resolve_param(schedule: &Schedule, id: &str) -> Option<(usize, usize)> {
    resolve_param_in(schedule.nodes(), id)
}

/// [`resolve_param`] over a list of nodes.
fn resolve_param_in(nodes: &[RtNode], id: &str) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None;
    for (ni, node) in nodes.iter().enumerate() {
        if let Some(rest) = id
            .strip_prefix(node.id.as_str())
            .and_then(|r| r.strip_prefix('.'))
        {
            if let Some(pi) = param_index(&node.param_names, rest) {
                if best.is_none_or(|b| node.id.len() > b.2) {
                    best = Some((ni, pi, node.id.len()));
                }
            }
        }
    }
    best.map(|(n, p, _)| (n, p))
}

/// Every parameter id of a schedule (for suggestions and listings).
pub fn all_param_ids(schedule: &Schedule) -> Vec<String> {
    param_ids(schedule.nodes())
}

/// [`all_param_ids`] over a list of nodes.
fn param_ids(nodes: &[RtNode]) -> Vec<String> {
    nodes
        .iter()
        .flat_map(|n| n.param_names.iter().map(move |p| format!("{}.{}", n.id, p)))
        .collect()
}
