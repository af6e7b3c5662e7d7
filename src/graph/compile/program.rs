//! Compilation step 6: the program over symbolic values. In topological order, each node that
//! reaches an output gets its steps (a stem: read the input, then its fader; a processor; a
//! bus sum; an output copy), compensation delays are inserted on the edges that need them, and
//! meter taps observe their node's output. Values are symbolic here; the buffer step gives
//! them buffers.

use super::super::error::GraphError;
use super::super::spec::{GraphSpec, NodeKind};
use super::latency::Latencies;
use super::nodes::Built;
use super::validate::Wiring;
use crate::engine::Tap;
use crate::suggest::closest;
use std::collections::BTreeMap;

/// A node of the symbolic program: a recipe node or an inserted alignment delay.
pub(super) enum SymNode {
    /// `spec.nodes[i]`.
    Spec(usize),
    /// A compensation delay on an edge.
    Align {
        id: String,
        delay: usize,
        channels: usize,
        arrival: usize,
    },
}

/// A step over symbolic values (value = index in [`SymProgram::value_channels`]).
pub(super) enum SymStep {
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

impl SymStep {
    /// The values this step reads.
    pub fn reads(&self) -> Vec<usize> {
        match self {
            SymStep::Input { .. } => vec![],
            SymStep::Process { src, key, .. } => std::iter::once(*src).chain(*key).collect(),
            SymStep::Bus { inputs, .. } => inputs.clone(),
            SymStep::Tap { value, .. } | SymStep::Output { value, .. } => vec![*value],
        }
    }
}

/// The program over symbolic values.
pub(super) struct SymProgram {
    /// Nodes, in the order the schedule will hold them.
    pub nodes: Vec<SymNode>,
    /// Steps, in program order.
    pub steps: Vec<SymStep>,
    /// Channels of each value.
    pub value_channels: Vec<usize>,
    /// Channels of each engine input.
    pub input_channels: Vec<usize>,
    /// The taps, with the node each observes, in tap order.
    pub taps: Vec<(String, Box<dyn Tap>)>,
}

/// What laying out needs: the earlier steps' results.
pub(super) struct Inputs<'a, 'w> {
    pub spec: &'a GraphSpec,
    pub w: &'a Wiring<'w>,
    pub topo: &'a [usize],
    pub live: &'a [bool],
    pub built: &'a [Built],
    pub lat: &'a Latencies,
}

/// Lays the program out; `taps` are (node id, tap). An error names a tap on a node that does
/// not exist or reaches no output.
pub(super) fn lay_out(
    cx: &Inputs<'_, '_>,
    taps: Vec<(String, Box<dyn Tap>)>,
) -> Result<SymProgram, GraphError> {
    let spec = cx.spec;
    let mut p = SymProgram {
        nodes: Vec::new(),
        steps: Vec::new(),
        value_channels: Vec::new(),
        input_channels: engine_inputs(spec),
        taps: Vec::new(),
    };
    let mut taps_by_node = taps_by_node(spec, taps)?;
    let mut value_of = vec![usize::MAX; spec.nodes.len()];
    let mut output_index = 0;
    for &i in cx.topo {
        if !cx.live[i] {
            continue;
        }
        value_of[i] = p.node_steps(cx, i, &value_of, &mut output_index);
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

/// Engine inputs: as many as the largest source index, channels from the sources.
fn engine_inputs(spec: &GraphSpec) -> Vec<usize> {
    let mut channels_of: Vec<usize> = Vec::new();
    for node in &spec.nodes {
        if let NodeKind::Source {
            input, channels, ..
        } = node.kind
        {
            if channels_of.len() <= input {
                channels_of.resize(input + 1, 1);
            }
            channels_of[input] = channels_of[input].max(channels);
        }
    }
    channels_of
}

/// The taps grouped by node id; an error for a tap on a node that does not exist.
fn taps_by_node(
    spec: &GraphSpec,
    taps: Vec<(String, Box<dyn Tap>)>,
) -> Result<BTreeMap<String, Vec<Box<dyn Tap>>>, GraphError> {
    let mut by_node: BTreeMap<String, Vec<Box<dyn Tap>>> = BTreeMap::new();
    for (id, tap) in taps {
        if !spec.nodes.iter().any(|n| n.id == id) {
            let suggestion = closest(&id, spec.nodes.iter().map(|n| n.id.as_str()));
            return Err(GraphError::UnknownNode {
                id,
                context: "a meter tap".into(),
                suggestion,
                origin: None,
            });
        }
        by_node.entry(id).or_default().push(tap);
    }
    Ok(by_node)
}

impl SymProgram {
    fn new_value(&mut self, channels: usize) -> usize {
        self.value_channels.push(channels);
        self.value_channels.len() - 1
    }

    /// Node `from`'s output as node `i` reads it: through a compensation delay if the edge
    /// needs one.
    fn aligned(&mut self, cx: &Inputs<'_, '_>, i: usize, from: usize, value_of: &[usize]) -> usize {
        let delay = cx.lat.delay(from, i);
        if delay == 0 {
            return value_of[from];
        }
        let channels = cx.built[from].out_channels;
        self.nodes.push(SymNode::Align {
            id: format!("{}.align.{}", cx.spec.nodes[i].id, cx.spec.nodes[from].id),
            delay,
            channels,
            arrival: cx.lat.out[from],
        });
        let out = self.new_value(channels);
        self.steps.push(SymStep::Process {
            node: self.nodes.len() - 1,
            src: value_of[from],
            out,
            key: None,
        });
        out
    }

    /// The steps of node `i`; returns the value of its output.
    fn node_steps(
        &mut self,
        cx: &Inputs<'_, '_>,
        i: usize,
        value_of: &[usize],
        output_index: &mut usize,
    ) -> usize {
        let mains: Vec<usize> = cx.w.main_in[i]
            .iter()
            .map(|e| self.aligned(cx, i, e.0, value_of))
            .collect();
        let key: Option<usize> = cx.w.key_in[i]
            .first()
            .map(|e| self.aligned(cx, i, e.0, value_of));
        let channels = cx.built[i].out_channels;
        match &cx.spec.nodes[i].kind {
            NodeKind::Source { input, .. } => {
                let raw = self.new_value(channels);
                self.steps.push(SymStep::Input {
                    input: *input,
                    out: raw,
                });
                self.nodes.push(SymNode::Spec(i));
                let out = self.new_value(channels);
                self.steps.push(SymStep::Process {
                    node: self.nodes.len() - 1,
                    src: raw,
                    out,
                    key: None,
                });
                out
            }
            NodeKind::Processor { .. } => {
                self.nodes.push(SymNode::Spec(i));
                let out = self.new_value(channels);
                self.steps.push(SymStep::Process {
                    node: self.nodes.len() - 1,
                    src: mains[0],
                    out,
                    key,
                });
                out
            }
            NodeKind::Bus { .. } => {
                self.nodes.push(SymNode::Spec(i));
                let out = self.new_value(channels);
                self.steps.push(SymStep::Bus {
                    node: self.nodes.len() - 1,
                    inputs: mains,
                    out,
                });
                out
            }
            NodeKind::Output { .. } => {
                self.steps.push(SymStep::Output {
                    output: *output_index,
                    value: mains[0],
                });
                *output_index += 1;
                mains[0]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::latency::latencies;
    use super::super::nodes::build_nodes;
    use super::super::order::{order, reachable};
    use super::super::validate::validate;
    use super::*;
    use crate::dsp::{AudioRef, ProcessorConfig};

    struct Nop;
    impl Tap for Nop {
        fn observe(&mut self, _: AudioRef<'_>) {}
    }

    fn lay(g: &GraphSpec, taps: Vec<(String, Box<dyn Tap>)>) -> Result<SymProgram, GraphError> {
        let w = validate(g)?;
        let o = order(g, &w)?;
        let built = build_nodes(g, &w, &o.topo, 48_000.0, 64, &mut Vec::new())?;
        let (_, live) = reachable(g, &w, &o, &mut Vec::new())?;
        let lat = latencies(&w, &o.topo, &built);
        let cx = Inputs {
            spec: g,
            w: &w,
            topo: &o.topo,
            live: &live,
            built: &built,
            lat: &lat,
        };
        lay_out(&cx, taps)
    }

    /// s ─ lim ─┬ mix ─ out, s ─┘ (the dry path needs the limiter's latency).
    fn parallel() -> GraphSpec {
        let mut g = GraphSpec::new();
        g.source("s", 0).bus("mix").output("out");
        g.processor("lim", "limiter", ProcessorConfig::new());
        g.chain(&["s", "lim", "mix", "out"]).connect("s", "mix");
        g
    }

    #[test]
    fn a_delay_is_inserted_where_paths_meet_late() {
        let p = lay(&parallel(), Vec::new()).unwrap();
        let names: Vec<String> = p
            .nodes
            .iter()
            .map(|n| match n {
                SymNode::Spec(i) => parallel().nodes[*i].id.clone(),
                SymNode::Align { id, delay, .. } => format!("{id}/{}", *delay > 0),
            })
            .collect();
        assert_eq!(names, ["s", "lim", "mix.align.s/true", "mix"]);
        // Input, fader, limiter, the delay, the sum, the output.
        assert_eq!(p.steps.len(), 6);
        assert!(matches!(p.steps[0], SymStep::Input { input: 0, .. }));
        assert!(matches!(p.steps[5], SymStep::Output { output: 0, .. }));
        assert_eq!(p.input_channels, [2]);
    }

    #[test]
    fn taps_observe_their_node_and_must_reach_an_output() {
        let p = lay(&parallel(), vec![("lim".into(), Box::new(Nop))]).unwrap();
        let tap = p
            .steps
            .iter()
            .position(|s| matches!(s, SymStep::Tap { .. }));
        assert_eq!(tap, Some(3), "right after the limiter's step");
        assert_eq!(p.taps[0].0, "lim");
        let mut g = parallel();
        g.source("spare", 1);
        assert!(matches!(
            lay(&g, vec![("spare".into(), Box::new(Nop))]),
            Err(GraphError::UnknownNode { .. })
        ));
        assert!(matches!(
            lay(&g, vec![("limiter".into(), Box::new(Nop))]),
            Err(GraphError::UnknownNode { id, context, .. })
                if id == "limiter" && context == "a meter tap"
        ));
    }

    #[test]
    fn engine_inputs_reach_the_largest_source_index() {
        let mut g = parallel();
        g.node(
            "far",
            NodeKind::Source {
                input: 3,
                channels: 1,
                config: ProcessorConfig::new(),
            },
        );
        assert_eq!(engine_inputs(&g), [2, 1, 1, 1]);
    }
}
