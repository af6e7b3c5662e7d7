//! Validation and compilation: from a [`GraphSpec`] to a runnable [`Schedule`].
//!
//! The steps, in order:
//! 1. ids unique, connections name existing nodes and legal ports, no duplicates;
//! 2. the graph is put in a petgraph `DiGraph` (nodes inserted sorted by id, so everything that
//!    follows is independent of recipe order) and checked for cycles;
//! 3. in topological order: channel counts propagate and are checked, processors are built and
//!    prepared (which fixes their latency);
//! 4. nodes that reach no output are dropped (with a warning);
//! 5. latency compensation: every input of a node is delayed to match its latest input, so
//!    parallel paths meet sample-aligned; the total is reported per output for the render to trim;
//! 6. a flat program over symbolic values is laid out and buffers are assigned by liveness: a
//!    processor works in place on its input's buffer when nothing else still needs it, and a
//!    buffer whose value is dead is reused.
//!
//! Bus inputs are summed in the order of their source ids, never in recipe or hash order.

use super::error::GraphError;
use super::spec::{GraphSpec, NodeKind, Origin};
use crate::dsp::buffer::MAX_CHANNELS;
use crate::dsp::latency_delay::LatencyDelay;
use crate::dsp::param::{ParamInfo, ParamSlot, Scale, Unit};
use crate::dsp::registry::{self, check_range};
use crate::dsp::{AudioBuffer, Port, ProcessSpec, Processor};
use crate::engine::params::ParamState;
use crate::engine::{BusInput, RtKind, RtNode, Schedule, ScheduleBuilder, Step, Tap};
use crate::suggest::closest;
use crate::units::ms_to_samples;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, HashMap};

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

/// Whether the param list of a node allows `name`, and which index it has.
fn param_index(names: &[String], name: &str) -> Option<usize> {
    names.iter().position(|n| n == name)
}

struct Built {
    kind: RtKind,
    infos: Vec<ParamInfo>,
    initial: Vec<f64>,
    out_channels: usize,
    latency: usize,
    tail: usize,
    bypassed: bool,
}

/// Validates `spec` and compiles it into a schedule.
pub fn compile(spec: &GraphSpec, mut opts: CompileOptions) -> Result<Compiled, GraphError> {
    crate::dsp::simd::init();
    let fs = opts.sample_rate;
    let n = spec.nodes.len();
    let ids: Vec<&str> = spec.nodes.iter().map(|n| n.id.as_str()).collect();

    // 1. Ids and connections.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, node) in spec.nodes.iter().enumerate() {
        if let Some(&first) = index.get(node.id.as_str()) {
            return Err(GraphError::DuplicateNode {
                id: node.id.clone(),
                first: spec.nodes[first]
                    .origin
                    .as_ref()
                    .map_or_else(|| "an earlier node".to_string(), Origin::to_string),
                origin: node.origin.clone(),
            });
        }
        index.insert(&node.id, i);
    }
    let lookup = |id: &str, context: String, origin: &Option<Origin>| {
        index
            .get(id)
            .copied()
            .ok_or_else(|| GraphError::UnknownNode {
                id: id.to_string(),
                context,
                suggestion: closest(id, ids.iter()),
                origin: origin.clone(),
            })
    };
    // Incoming connections per node and port: (source index, send gain, edge index).
    let mut main_in: Vec<Vec<(usize, f64, usize)>> = vec![Vec::new(); n];
    let mut key_in: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut seen = std::collections::HashSet::new();
    for (ei, e) in spec.edges.iter().enumerate() {
        let from = lookup(&e.from, format!("a connection to `{}`", e.to), &e.origin)?;
        let to = lookup(&e.to, format!("a connection from `{}`", e.from), &e.origin)?;
        let bad = |reason: &str| GraphError::BadConnection {
            from: e.from.clone(),
            to: e.to.clone(),
            reason: reason.to_string(),
            origin: e.origin.clone(),
        };
        match (&spec.nodes[to].kind, e.port) {
            (NodeKind::Source { .. }, _) => return Err(bad("a stem has no input")),
            (NodeKind::Processor { .. }, _) => {}
            (_, Port::Key) => return Err(bad("only processors have a side-chain `key` input")),
            _ => {}
        }
        if matches!(spec.nodes[from].kind, NodeKind::Output { .. }) {
            return Err(bad(
                "an output is an end point, nothing can be taken from it",
            ));
        }
        if e.gain_db != 0.0 && !matches!(spec.nodes[to].kind, NodeKind::Bus { .. }) {
            return Err(bad("a send gain can only be set on an input of a bus"));
        }
        if !seen.insert((from, to, e.port)) {
            return Err(GraphError::DuplicateConnection {
                from: e.from.clone(),
                to: e.to.clone(),
                port: e.port.name(),
                origin: e.origin.clone(),
            });
        }
        match e.port {
            Port::Main => main_in[to].push((from, e.gain_db, ei)),
            Port::Key => key_in[to].push((from, ei)),
        }
    }
    for list in &mut main_in {
        list.sort_by(|a, b| ids[a.0].cmp(ids[b.0]));
    }

    // 2. petgraph, cycles, topological order (independent of recipe order).
    let mut order_by_id: Vec<usize> = (0..n).collect();
    order_by_id.sort_by(|a, b| ids[*a].cmp(ids[*b]));
    let mut g: DiGraph<usize, ()> = DiGraph::with_capacity(n, spec.edges.len());
    let mut gi = vec![NodeIndex::new(0); n];
    for &i in &order_by_id {
        gi[i] = g.add_node(i);
    }
    let mut edge_list: Vec<(usize, usize)> = Vec::new();
    for to in 0..n {
        edge_list.extend(main_in[to].iter().map(|&(from, _, _)| (from, to)));
        edge_list.extend(key_in[to].iter().map(|&(from, _)| (from, to)));
    }
    edge_list.sort_by(|a, b| (ids[a.0], ids[a.1]).cmp(&(ids[b.0], ids[b.1])));
    for &(from, to) in &edge_list {
        g.add_edge(gi[from], gi[to], ());
    }
    if let Some(cycle) = find_cycle(&g, &ids) {
        let origin = spec.nodes[index[cycle[0].as_str()]].origin.clone();
        return Err(GraphError::Cycle {
            nodes: cycle,
            origin,
        });
    }
    let topo: Vec<usize> = toposort(&g, None)
        .expect("cycles were reported above")
        .into_iter()
        .map(|ix| g[ix])
        .collect();

    // 3. Channels, processors, latency of each node.
    let mut built: Vec<Option<Built>> = (0..n).map(|_| None).collect();
    let mut warnings = Vec::new();
    for &i in &topo {
        let node = &spec.nodes[i];
        let dangling = || GraphError::DanglingInput {
            id: node.id.clone(),
            kind: node.kind.describe(),
            origin: node.origin.clone(),
        };
        let channels_of =
            |j: usize, built: &[Option<Built>]| built[j].as_ref().map_or(0, |b| b.out_channels);
        let check_channels = |expected: usize, from: usize, built: &[Option<Built>]| {
            let found = channels_of(from, built);
            if found != expected {
                let edge = main_in[i].iter().find(|e| e.0 == from).map(|e| e.2);
                Err(GraphError::ChannelMismatch {
                    from: spec.nodes[from].id.clone(),
                    to: node.id.clone(),
                    expected,
                    found,
                    origin: edge
                        .and_then(|e| spec.edges[e].origin.clone())
                        .or(node.origin.clone()),
                })
            } else {
                Ok(())
            }
        };
        let build_err = |source| GraphError::Build {
            id: node.id.clone(),
            source,
            origin: node.origin.clone(),
        };
        let b = match &node.kind {
            NodeKind::Source {
                channels, config, ..
            } => {
                if !(1..=MAX_CHANNELS).contains(channels) {
                    return Err(build_err(registry::BuildError::Invalid(format!(
                        "a stem has 1 or 2 channels, not {channels}"
                    ))));
                }
                let mut b = registry::build("gain", config, *channels).map_err(build_err)?;
                b.processor.prepare(&ProcessSpec {
                    sample_rate: fs,
                    max_block: opts.max_block,
                    input_channels: *channels,
                });
                Built {
                    infos: b.processor.params().to_vec(),
                    initial: b.initial,
                    out_channels: *channels,
                    latency: 0,
                    tail: 0,
                    kind: RtKind::Processor(b.processor),
                    bypassed: false,
                }
            }
            NodeKind::Processor {
                kind,
                config,
                bypass,
            } => {
                let main = &main_in[i];
                if main.is_empty() {
                    return Err(dangling());
                }
                if main.len() > 1 {
                    return Err(GraphError::TooManyInputs {
                        id: node.id.clone(),
                        port: "in",
                        count: main.len(),
                        origin: node.origin.clone(),
                    });
                }
                let in_ch = channels_of(main[0].0, &built);
                let mut b = registry::build(kind, config, in_ch).map_err(build_err)?;
                b.processor.prepare(&ProcessSpec {
                    sample_rate: fs,
                    max_block: opts.max_block,
                    input_channels: in_ch,
                });
                if let Some(w) = b.processor.warning() {
                    warnings.push(format!("{}`{}`: {w}", super::spec::at(&node.origin), node.id));
                }
                let keys = &key_in[i];
                if keys.len() > 1 {
                    return Err(GraphError::TooManyInputs {
                        id: node.id.clone(),
                        port: "key",
                        count: keys.len(),
                        origin: node.origin.clone(),
                    });
                }
                if let Some(&(from, ei)) = keys.first() {
                    if !b.processor.accepts_key() {
                        return Err(GraphError::BadConnection {
                            from: spec.nodes[from].id.clone(),
                            to: node.id.clone(),
                            reason: format!("`{kind}` has no side-chain `key` input"),
                            origin: spec.edges[ei].origin.clone(),
                        });
                    }
                }
                let out_channels = b.processor.output_channels();
                let latency = b.processor.latency();
                let tail = b.processor.tail();
                let infos = b.processor.params().to_vec();
                let processor: Box<dyn Processor> = if *bypass {
                    if out_channels != in_ch {
                        return Err(build_err(registry::BuildError::Invalid(format!(
                            "`{kind}` turns {in_ch} channel(s) into {out_channels}; it cannot be bypassed"
                        ))));
                    }
                    let mut d = LatencyDelay::new(latency, in_ch);
                    d.prepare(&ProcessSpec {
                        sample_rate: fs,
                        max_block: opts.max_block,
                        input_channels: in_ch,
                    });
                    Box::new(d)
                } else {
                    b.processor
                };
                Built {
                    kind: RtKind::Processor(processor),
                    infos,
                    initial: b.initial,
                    out_channels,
                    latency,
                    tail: if *bypass { 0 } else { tail },
                    bypassed: *bypass,
                }
            }
            NodeKind::Bus { channels } => {
                if main_in[i].is_empty() {
                    return Err(dangling());
                }
                let mut infos = Vec::new();
                let mut initial = Vec::new();
                for &(from, gain_db, ei) in &main_in[i] {
                    check_channels(*channels, from, &built)?;
                    let info = ParamInfo::new(
                        format!("send.{}.gain_db", spec.nodes[from].id),
                        Unit::Decibels,
                        -120.0,
                        24.0,
                        0.0,
                    )
                    .doc("send gain of one bus input");
                    check_range(&info, gain_db).map_err(|source| GraphError::Build {
                        id: node.id.clone(),
                        source,
                        origin: spec.edges[ei].origin.clone(),
                    })?;
                    infos.push(info);
                    initial.push(gain_db);
                }
                Built {
                    kind: RtKind::Bus,
                    infos,
                    initial,
                    out_channels: *channels,
                    latency: 0,
                    tail: 0,
                    bypassed: false,
                }
            }
            NodeKind::Output { channels } => {
                match main_in[i].len() {
                    0 => return Err(dangling()),
                    1 => check_channels(*channels, main_in[i][0].0, &built)?,
                    count => {
                        return Err(GraphError::TooManyInputs {
                            id: node.id.clone(),
                            port: "in",
                            count,
                            origin: node.origin.clone(),
                        })
                    }
                }
                Built {
                    kind: RtKind::Bus,
                    infos: Vec::new(),
                    initial: Vec::new(),
                    out_channels: *channels,
                    latency: 0,
                    tail: 0,
                    bypassed: false,
                }
            }
        };
        built[i] = Some(b);
    }
    let mut built: Vec<Built> = built
        .into_iter()
        .map(|b| b.expect("every node is built"))
        .collect();

    // 4. Reachability: keep what feeds an output.
    let outputs: Vec<usize> = topo
        .iter()
        .copied()
        .filter(|&i| matches!(spec.nodes[i].kind, NodeKind::Output { .. }))
        .collect();
    if outputs.is_empty() {
        return Err(GraphError::NoOutput);
    }
    let mut live = vec![false; n];
    for &i in topo.iter().rev() {
        if matches!(spec.nodes[i].kind, NodeKind::Output { .. }) {
            live[i] = true;
        }
        if live[i] {
            for &(from, _, _) in &main_in[i] {
                live[from] = true;
            }
            for &(from, _) in &key_in[i] {
                live[from] = true;
            }
        }
    }
    for &i in &order_by_id {
        if !live[i] {
            warnings.push(format!(
                "{}`{}` does not reach any output and is left out",
                super::spec::at(&spec.nodes[i].origin),
                ids[i]
            ));
        }
    }

    // 5. Latency: arrival at each node, and each node's output.
    let mut arrival = vec![0usize; n];
    let mut out_latency = vec![0usize; n];
    let mut tail = vec![0usize; n];
    for &i in &topo {
        let inputs = main_in[i]
            .iter()
            .map(|e| e.0)
            .chain(key_in[i].iter().map(|e| e.0));
        let (mut a, mut t) = (0, 0);
        for from in inputs {
            a = a.max(out_latency[from]);
            t = t.max(tail[from]);
        }
        arrival[i] = a;
        out_latency[i] = a + built[i].latency;
        tail[i] = t + built[i].tail;
    }

    // 6. The program over symbolic values, then buffer assignment.
    let sym = lay_out(
        spec,
        &topo,
        &live,
        &main_in,
        &key_in,
        &built,
        &arrival,
        &out_latency,
        &mut opts,
    )?;
    let (steps, pool_size) = assign_buffers(&sym);

    let mut builder = ScheduleBuilder::new(fs, opts.max_block);
    let mut nodes: Vec<RtNode> = Vec::new();
    let mut node_of_spec = vec![usize::MAX; n];
    let mut summary = Vec::new();
    for item in &sym.nodes {
        match *item {
            SymNode::Spec(i) => {
                let b = &mut built[i];
                node_of_spec[i] = nodes.len();
                let kind = std::mem::replace(&mut b.kind, RtKind::Bus);
                let telemetry = match &kind {
                    RtKind::Processor(p) => p.telemetry(),
                    RtKind::Bus => None,
                };
                let params: Vec<ParamState> = b
                    .infos
                    .iter()
                    .zip(&b.initial)
                    .map(|(info, &v)| {
                        ParamState::new(v, info.scale, ms_to_samples(info.glide_ms, fs) as u32)
                    })
                    .collect();
                let slots = b
                    .initial
                    .iter()
                    .map(|&v| ParamSlot::new(v, opts.max_block))
                    .collect();
                summary.push(NodeSummary {
                    id: ids[i].to_string(),
                    kind: spec.nodes[i].kind.describe(),
                    channels: b.out_channels,
                    latency: b.latency,
                    arrival_latency: arrival[i],
                    inputs: main_in[i]
                        .iter()
                        .map(|&(f, g, _)| {
                            (
                                ids[f].to_string(),
                                Port::Main,
                                g,
                                arrival[i] - out_latency[f],
                            )
                        })
                        .chain(key_in[i].iter().map(|&(f, _)| {
                            (
                                ids[f].to_string(),
                                Port::Key,
                                0.0,
                                arrival[i] - out_latency[f],
                            )
                        }))
                        .collect(),
                    params: b
                        .infos
                        .iter()
                        .map(|p| p.name.clone())
                        .zip(b.initial.iter().copied())
                        .collect(),
                    bypassed: b.bypassed,
                });
                nodes.push(RtNode {
                    id: ids[i].to_string(),
                    kind,
                    param_names: b.infos.iter().map(|p| p.name.clone()).collect(),
                    params,
                    slots,
                    upstream_latency: arrival[i] as i64,
                    telemetry,
                    bypassed: b.bypassed,
                });
            }
            SymNode::Align {
                ref id,
                delay,
                channels,
                arrival,
            } => {
                let mut d = LatencyDelay::new(delay, channels);
                d.prepare(&ProcessSpec {
                    sample_rate: fs,
                    max_block: opts.max_block,
                    input_channels: channels,
                });
                nodes.push(RtNode {
                    id: id.clone(),
                    kind: RtKind::Processor(Box::new(d)),
                    param_names: Vec::new(),
                    params: Vec::new(),
                    slots: Vec::new(),
                    upstream_latency: arrival as i64,
                    telemetry: None,
                    bypassed: false,
                });
            }
        }
    }

    for node in nodes {
        builder.node(node);
    }
    for &c in &sym.input_channels {
        builder.input(c.max(1));
    }
    builder.buffers(pool_size);
    for step in steps {
        builder.step(step);
    }
    for &i in &outputs {
        builder.output(ids[i], built[i].out_channels, arrival[i]);
    }
    for (id, tap) in sym.taps {
        builder.tap(id, tap);
    }
    builder.latency(outputs.iter().map(|&i| arrival[i]).max().unwrap_or(0));
    builder.tail(outputs.iter().map(|&i| tail[i]).max().unwrap_or(0));

    // Automation.
    for a in &spec.automation {
        let (node, param) = resolve_param_in(builder.nodes(), &a.param).ok_or_else(|| {
            GraphError::UnknownParam {
                id: a.param.clone(),
                suggestion: closest(&a.param, param_ids(builder.nodes())),
                origin: a.origin.clone(),
            }
        })?;
        let spec_index = index[builder.nodes()[node].id.as_str()];
        let info = &built[spec_index].infos[param];
        if !info.automatable {
            return Err(GraphError::NotAutomatable {
                id: a.param.clone(),
                reason: "it changes the processor's latency or structure".into(),
                origin: a.origin.clone(),
            });
        }
        for p in a.curve.points() {
            check_range(info, p.value).map_err(|_| GraphError::OutOfRange {
                id: a.param.clone(),
                value: p.value,
                min: info.min,
                max: info.max,
                unit: format!(" {}", info.unit.symbol()),
                origin: a.origin.clone(),
            })?;
            if info.scale == Scale::Log && p.value <= 0.0 {
                unreachable!("log-scaled parameters have positive ranges");
            }
        }
        builder.node_mut(node).params[param].set_curve(Some(a.curve.clone()));
    }

    let schedule = builder.build()?;
    Ok(Compiled {
        schedule,
        warnings,
        summary,
    })
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

/// The nodes of one cycle, in order along it, starting from the smallest id; `None` if acyclic.
fn find_cycle(g: &DiGraph<usize, ()>, ids: &[&str]) -> Option<Vec<String>> {
    let mut sccs: Vec<Vec<NodeIndex>> = tarjan_scc(g)
        .into_iter()
        .filter(|c| c.len() > 1 || g.contains_edge(c[0], c[0]))
        .collect();
    if sccs.is_empty() {
        return None;
    }
    for c in &mut sccs {
        c.sort_by(|a, b| ids[g[*a]].cmp(ids[g[*b]]));
    }
    sccs.sort_by(|a, b| ids[g[a[0]]].cmp(ids[g[b[0]]]));
    let scc = &sccs[0];
    let start = scc[0];
    // Walk the cycle: from start, follow successors inside the component (smallest id first)
    // until back at start, using a DFS path.
    let inside = |x: NodeIndex| scc.contains(&x);
    let mut path = vec![start];
    let mut visited = vec![start];
    fn dfs(
        g: &DiGraph<usize, ()>,
        ids: &[&str],
        at: NodeIndex,
        start: NodeIndex,
        inside: &dyn Fn(NodeIndex) -> bool,
        path: &mut Vec<NodeIndex>,
        visited: &mut Vec<NodeIndex>,
    ) -> bool {
        let mut next: Vec<NodeIndex> = g.neighbors(at).filter(|x| inside(*x)).collect();
        next.sort_by(|a, b| ids[g[*a]].cmp(ids[g[*b]]));
        for x in next {
            if x == start {
                return true;
            }
            if !visited.contains(&x) {
                visited.push(x);
                path.push(x);
                if dfs(g, ids, x, start, inside, path, visited) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    dfs(g, ids, start, start, &inside, &mut path, &mut visited);
    Some(path.into_iter().map(|x| ids[g[x]].to_string()).collect())
}

/// A node of the symbolic program: a recipe node or an inserted alignment delay.
enum SymNode {
    Spec(usize),
    Align {
        id: String,
        delay: usize,
        channels: usize,
        arrival: usize,
    },
}

/// A step over symbolic values (value = index in `SymProgram::value_channels`).
enum SymStep {
    Input {
        input: usize,
        out: usize,
    },
    Process {
        node: usize,
        src: usize,
        out: usize,
        key: Option<usize>,
    },
    Bus {
        node: usize,
        inputs: Vec<usize>,
        out: usize,
    },
    Tap {
        tap: usize,
        value: usize,
    },
    Output {
        output: usize,
        value: usize,
    },
}

struct SymProgram {
    nodes: Vec<SymNode>,
    steps: Vec<SymStep>,
    value_channels: Vec<usize>,
    input_channels: Vec<usize>,
    taps: Vec<(String, Box<dyn Tap>)>,
}

#[allow(clippy::too_many_arguments)]
fn lay_out(
    spec: &GraphSpec,
    topo: &[usize],
    live: &[bool],
    main_in: &[Vec<(usize, f64, usize)>],
    key_in: &[Vec<(usize, usize)>],
    built: &[Built],
    arrival: &[usize],
    out_latency: &[usize],
    opts: &mut CompileOptions,
) -> Result<SymProgram, GraphError> {
    let n = spec.nodes.len();
    let mut p = SymProgram {
        nodes: Vec::new(),
        steps: Vec::new(),
        value_channels: Vec::new(),
        input_channels: Vec::new(),
        taps: Vec::new(),
    };
    // Engine inputs: as many as the largest source index, channels from the sources.
    for node in &spec.nodes {
        if let NodeKind::Source {
            input, channels, ..
        } = node.kind
        {
            if p.input_channels.len() <= input {
                p.input_channels.resize(input + 1, 1);
            }
            p.input_channels[input] = p.input_channels[input].max(channels);
        }
    }
    let mut taps_by_node: BTreeMap<String, Vec<Box<dyn Tap>>> = BTreeMap::new();
    for (id, tap) in opts.taps.drain(..) {
        if !spec.nodes.iter().any(|n| n.id == id) {
            let suggestion = closest(&id, spec.nodes.iter().map(|n| n.id.as_str()));
            return Err(GraphError::UnknownNode {
                id,
                context: "a meter tap".into(),
                suggestion,
                origin: None,
            });
        }
        taps_by_node.entry(id).or_default().push(tap);
    }
    let mut value_of = vec![usize::MAX; n];
    let mut output_index = 0;
    let new_value = |p: &mut SymProgram, channels: usize| {
        p.value_channels.push(channels);
        p.value_channels.len() - 1
    };
    for &i in topo {
        if !live[i] {
            continue;
        }
        // Aligned input values of this node.
        let aligned = |p: &mut SymProgram, from: usize| -> usize {
            let delay = arrival[i] - out_latency[from];
            if delay == 0 {
                return value_of[from];
            }
            let channels = built[from].out_channels;
            p.nodes.push(SymNode::Align {
                id: format!("{}.align.{}", spec.nodes[i].id, spec.nodes[from].id),
                delay,
                channels,
                arrival: out_latency[from],
            });
            let out = new_value(p, channels);
            p.steps.push(SymStep::Process {
                node: p.nodes.len() - 1,
                src: value_of[from],
                out,
                key: None,
            });
            out
        };
        let mains: Vec<usize> = main_in[i].iter().map(|e| aligned(&mut p, e.0)).collect();
        let key: Option<usize> = key_in[i].first().map(|e| aligned(&mut p, e.0));
        let channels = built[i].out_channels;
        match &spec.nodes[i].kind {
            NodeKind::Source { input, .. } => {
                let raw = new_value(&mut p, channels);
                p.steps.push(SymStep::Input {
                    input: *input,
                    out: raw,
                });
                p.nodes.push(SymNode::Spec(i));
                let out = new_value(&mut p, channels);
                p.steps.push(SymStep::Process {
                    node: p.nodes.len() - 1,
                    src: raw,
                    out,
                    key: None,
                });
                value_of[i] = out;
            }
            NodeKind::Processor { .. } => {
                p.nodes.push(SymNode::Spec(i));
                let out = new_value(&mut p, channels);
                p.steps.push(SymStep::Process {
                    node: p.nodes.len() - 1,
                    src: mains[0],
                    out,
                    key,
                });
                value_of[i] = out;
            }
            NodeKind::Bus { .. } => {
                p.nodes.push(SymNode::Spec(i));
                let out = new_value(&mut p, channels);
                p.steps.push(SymStep::Bus {
                    node: p.nodes.len() - 1,
                    inputs: mains,
                    out,
                });
                value_of[i] = out;
            }
            NodeKind::Output { .. } => {
                p.steps.push(SymStep::Output {
                    output: output_index,
                    value: mains[0],
                });
                output_index += 1;
                value_of[i] = mains[0];
            }
        }
        if let Some(taps) = taps_by_node.remove(&spec.nodes[i].id) {
            for tap in taps {
                p.steps.push(SymStep::Tap {
                    tap: p.taps.len(),
                    value: value_of[i],
                });
                p.taps.push((spec.nodes[i].id.clone(), tap));
            }
        }
    }
    if let Some((id, _)) = taps_by_node.into_iter().next() {
        return Err(GraphError::UnknownNode {
            context: "a meter tap (the node reaches no output)".into(),
            suggestion: None,
            origin: spec
                .nodes
                .iter()
                .find(|n| n.id == id)
                .and_then(|n| n.origin.clone()),
            id,
        });
    }
    Ok(p)
}

/// Assigns pool buffers to symbolic values by liveness. Returns the steps and the pool size.
fn assign_buffers(p: &SymProgram) -> (Vec<Step>, usize) {
    let nv = p.value_channels.len();
    let mut last_use = vec![usize::MAX; nv];
    let reads = |s: &SymStep| -> Vec<usize> {
        match s {
            SymStep::Input { .. } => vec![],
            SymStep::Process { src, key, .. } => std::iter::once(*src).chain(*key).collect(),
            SymStep::Bus { inputs, .. } => inputs.clone(),
            SymStep::Tap { value, .. } | SymStep::Output { value, .. } => vec![*value],
        }
    };
    for (si, s) in p.steps.iter().enumerate() {
        for v in reads(s) {
            last_use[v] = si;
        }
    }
    let mut buf_of = vec![usize::MAX; nv];
    let mut free: Vec<usize> = Vec::new();
    let mut pool_size = 0;
    let mut alloc = |free: &mut Vec<usize>| {
        free.pop().unwrap_or_else(|| {
            pool_size += 1;
            pool_size - 1
        })
    };
    let mut steps = Vec::with_capacity(p.steps.len());
    for (si, s) in p.steps.iter().enumerate() {
        let mut in_place = None;
        let step = match s {
            SymStep::Input { input, out } => {
                buf_of[*out] = alloc(&mut free);
                Step::Input {
                    input: *input,
                    buf: buf_of[*out],
                }
            }
            SymStep::Process {
                node,
                src,
                out,
                key,
            } => {
                if last_use[*src] == si && *key != Some(*src) {
                    buf_of[*out] = buf_of[*src];
                    in_place = Some(*src);
                } else {
                    buf_of[*out] = alloc(&mut free);
                }
                Step::Process {
                    node: *node,
                    src: buf_of[*src],
                    dst: buf_of[*out],
                    in_channels: p.value_channels[*src],
                    out_channels: p.value_channels[*out],
                    key: key.map(|k| buf_of[k]),
                }
            }
            SymStep::Bus { node, inputs, out } => {
                buf_of[*out] = alloc(&mut free);
                Step::Bus {
                    node: *node,
                    inputs: inputs
                        .iter()
                        .map(|&v| BusInput {
                            buf: buf_of[v],
                            channels: p.value_channels[v],
                        })
                        .collect(),
                    dst: buf_of[*out],
                    channels: p.value_channels[*out],
                }
            }
            SymStep::Tap { tap, value } => Step::Tap {
                tap: *tap,
                buf: buf_of[*value],
            },
            SymStep::Output { output, value } => Step::Output {
                output: *output,
                buf: buf_of[*value],
            },
        };
        steps.push(step);
        // Release values whose last reader was this step.
        let mut released: Vec<usize> = reads(s);
        released.sort_unstable();
        released.dedup();
        for v in released {
            if last_use[v] == si && Some(v) != in_place {
                free.push(buf_of[v]);
            }
        }
        // A value nobody reads dies at once.
        if let SymStep::Input { out, .. }
        | SymStep::Process { out, .. }
        | SymStep::Bus { out, .. } = s
        {
            if last_use[*out] == usize::MAX {
                free.push(buf_of[*out]);
            }
        }
    }
    (steps, pool_size)
}
