//! The reload diff (control side): which nodes of the new schedule continue which nodes of the
//! old one, which of their parameters continue from which slot, and whether the change needs a
//! crossfade. Everything the audio side needs for the swap is worked out here, by index, so
//! that the swap itself ([`Schedule::take_over`]) neither searches nor compares strings.
//!
//! A node continues an old node when it has the same id, the same kind and the same parameter
//! list. When nothing but parameter values changed (same nodes, same structural options, same
//! connections), the new schedule simply takes over the old state and its parameters glide:
//! the result is bit-identical to the same change automated as a step at the swap sample. When
//! the structure changed (a node added, removed or rewired, a structural option changed), the
//! new schedule still takes over the state of every unchanged node, and the engine crossfades
//! from the old schedule to the new one.

use super::{GraphSpec, NodeKind};
use crate::dsp::ConfigValue;
use crate::engine::{NodeHandover, RtKind, Schedule, SwapPlan};
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
                    RtKind::Processor(p) => p.kind().to_string(),
                    RtKind::Bus => "bus".to_string(),
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

/// Plans the swap from a schedule of shape `old` to `schedule` of shape `new`.
pub fn plan(
    old: &ScheduleShape,
    new: &ScheduleShape,
    schedule: Schedule,
    crossfade_frames: usize,
    generation: u64,
) -> SwapPlan {
    let same = old.structure == new.structure && old.latency == new.latency;
    SwapPlan {
        schedule: Box::new(schedule),
        handovers: handovers(old, new),
        crossfade_frames: if same { 0 } else { crossfade_frames.max(1) },
        generation,
    }
}

/// The nodes of `new` that continue a node of `old`: same id, same kind, same parameter list;
/// each parameter continues from the old slot of the same name.
pub fn handovers(old: &ScheduleShape, new: &ScheduleShape) -> Vec<NodeHandover> {
    new.nodes
        .iter()
        .enumerate()
        .filter_map(|(i, (id, kind, params))| {
            let j = old.nodes.iter().position(|(oid, okind, oparams)| {
                oid == id && okind == kind && oparams == params
            })?;
            let old_params = &old.nodes[j].2;
            let params = params
                .iter()
                .enumerate()
                .filter_map(|(k, name)| Some((k, old_params.iter().position(|n| n == name)?)))
                .collect();
            Some(NodeHandover {
                new: i,
                old: j,
                params,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(nodes: &[(&str, &str, &[&str])], structure: &str, latency: usize) -> ScheduleShape {
        ScheduleShape {
            nodes: nodes
                .iter()
                .map(|(id, kind, params)| {
                    (
                        id.to_string(),
                        kind.to_string(),
                        params.iter().map(|p| p.to_string()).collect(),
                    )
                })
                .collect(),
            structure: structure.into(),
            latency,
        }
    }

    #[test]
    fn unchanged_nodes_are_handed_over_by_index_wherever_they_moved() {
        let old = shape(
            &[
                ("in", "gain", &["gain_db"]),
                ("eq", "eq", &["1.freq", "1.gain_db"]),
                ("out", "bus", &[]),
            ],
            "a",
            0,
        );
        let new = shape(
            &[
                ("in", "gain", &["gain_db"]),
                ("comp", "compressor", &["threshold_db"]),
                ("eq", "eq", &["1.freq", "1.gain_db"]),
                ("out", "bus", &[]),
            ],
            "b",
            0,
        );
        let h = handovers(&old, &new);
        assert_eq!(
            h,
            vec![
                NodeHandover {
                    new: 0,
                    old: 0,
                    params: vec![(0, 0)]
                },
                NodeHandover {
                    new: 2,
                    old: 1,
                    params: vec![(0, 0), (1, 1)]
                },
                NodeHandover {
                    new: 3,
                    old: 2,
                    params: vec![]
                },
            ]
        );
    }

    #[test]
    fn a_node_of_another_kind_or_parameter_list_starts_afresh() {
        let old = shape(
            &[("x", "eq", &["1.freq"]), ("y", "gain", &["gain_db"])],
            "a",
            0,
        );
        let new = shape(
            &[
                ("x", "eq", &["1.freq", "2.freq"]),
                ("y", "delay", &["gain_db"]),
            ],
            "b",
            0,
        );
        assert!(handovers(&old, &new).is_empty());
    }

    #[test]
    fn crossfade_only_when_structure_or_latency_changes() {
        let a = shape(&[("x", "gain", &["gain_db"])], "s", 0);
        let b_same = shape(&[("x", "gain", &["gain_db"])], "s", 0);
        let b_later = shape(&[("x", "gain", &["gain_db"])], "s", 64);
        let b_other = shape(&[("x", "gain", &["gain_db"])], "t", 0);
        let empty = || {
            crate::engine::ScheduleBuilder::new(48_000.0, 16)
                .build()
                .unwrap()
        };
        assert_eq!(plan(&a, &b_same, empty(), 480, 1).crossfade_frames, 0);
        assert_eq!(plan(&a, &b_later, empty(), 480, 2).crossfade_frames, 480);
        assert_eq!(plan(&a, &b_other, empty(), 0, 3).crossfade_frames, 1);
    }
}
