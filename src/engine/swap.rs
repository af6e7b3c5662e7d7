//! Planning a hot swap (control side): which nodes of the new schedule continue which nodes of
//! the old one, and whether the change needs a crossfade.
//!
//! A node continues an old node when it has the same id, the same kind and the same parameter
//! list. When nothing but parameter values changed (same nodes, same structural options, same
//! connections), the new schedule simply takes over the old state and its parameters glide:
//! the result is bit-identical to the same change automated as a step at the swap sample. When
//! the structure changed (a node added, removed or rewired, a structural option changed), the
//! new schedule still takes over the state of every unchanged node, and the engine crossfades
//! from the old schedule to the new one.

use super::Schedule;
use crate::dsp::ConfigValue;
use crate::graph::{GraphSpec, NodeKind};
use std::collections::BTreeMap;

/// What the control side remembers of a schedule it handed to the audio side.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleShape {
    /// Per node of the schedule (in schedule order): id, kind, parameter names.
    pub nodes: Vec<(String, String, Vec<String>)>,
    /// Structure of the graph without parameter values: per node its kind and structural
    /// options, and the connections.
    pub structure: String,
    /// The schedule's latency.
    pub latency: usize,
}

/// `config` without the values of parameters (top level, or `n.param` inside list items).
fn structural(config: &crate::dsp::ProcessorConfig, params: &[String]) -> String {
    let mut out = BTreeMap::new();
    for (k, v) in &config.entries {
        if params.iter().any(|p| p == k) {
            continue;
        }
        let v = match v {
            ConfigValue::List(items) => ConfigValue::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        ConfigValue::Table(t) => {
                            let mut t = t.clone();
                            t.entries.retain(|key, _| {
                                !params.iter().any(|p| *p == format!("{}.{key}", i + 1))
                            });
                            ConfigValue::Table(t)
                        }
                        other => other.clone(),
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        out.insert(k.clone(), v);
    }
    format!("{out:?}")
}

impl ScheduleShape {
    /// The shape of `schedule`, compiled from `spec`.
    pub fn of(spec: &GraphSpec, schedule: &Schedule) -> Self {
        let nodes: Vec<(String, String, Vec<String>)> = schedule
            .nodes()
            .iter()
            .map(|n| {
                let kind = match &n.kind {
                    super::RtKind::Processor(p) => p.kind().to_string(),
                    super::RtKind::Bus => "bus".to_string(),
                };
                (n.id.clone(), kind, n.param_names.clone())
            })
            .collect();
        let mut structure = String::new();
        let mut spec_nodes: Vec<_> = spec.nodes.iter().collect();
        spec_nodes.sort_by(|a, b| a.id.cmp(&b.id));
        for node in spec_nodes {
            let params: Vec<String> = nodes
                .iter()
                .find(|n| n.0 == node.id)
                .map(|n| n.2.clone())
                .unwrap_or_default();
            let desc = match &node.kind {
                NodeKind::Source {
                    input,
                    channels,
                    config,
                } => {
                    format!("stem#{input}/{channels}/{}", structural(config, &params))
                }
                NodeKind::Processor {
                    kind,
                    config,
                    bypass,
                } => {
                    format!("{kind}/{bypass}/{}", structural(config, &params))
                }
                NodeKind::Bus { channels } => format!("bus/{channels}"),
                NodeKind::Output { channels } => format!("out/{channels}"),
            };
            structure.push_str(&format!("{}={desc};", node.id));
        }
        let mut edges: Vec<String> = spec
            .edges
            .iter()
            .map(|e| format!("{}>{}:{:?}", e.from, e.to, e.port))
            .collect();
        edges.sort();
        structure.push_str(&edges.join(","));
        Self {
            nodes,
            structure,
            latency: schedule.latency(),
        }
    }
}

/// A schedule on its way to the audio side, with what it needs to take over.
pub struct SwapPlan {
    /// The new schedule.
    pub schedule: Box<Schedule>,
    /// For each node of the new schedule, the old node whose state it continues.
    pub matches: Vec<Option<usize>>,
    /// Crossfade length in frames (0: a seamless take-over, nothing structural changed).
    pub crossfade_frames: usize,
    /// A number identifying this swap in the engine's log.
    pub generation: u64,
}

/// Plans the swap from a schedule of shape `old` to `schedule` of shape `new`.
pub fn plan(
    old: &ScheduleShape,
    new: &ScheduleShape,
    schedule: Schedule,
    crossfade_frames: usize,
    generation: u64,
) -> SwapPlan {
    let matches = new
        .nodes
        .iter()
        .map(|(id, kind, params)| {
            old.nodes
                .iter()
                .position(|(oid, okind, oparams)| oid == id && okind == kind && oparams == params)
        })
        .collect();
    let same = old.structure == new.structure && old.latency == new.latency;
    SwapPlan {
        schedule: Box::new(schedule),
        matches,
        crossfade_frames: if same { 0 } else { crossfade_frames.max(1) },
        generation,
    }
}
