//! Where each stem meets the others: the mix bus (the first bus every stem reaches), each
//! stem's own part of the graph (the nodes only it reaches, its chain and its private returns
//! such as a delay bus) and its sends, the connections from its own part into shared buses.
//! A stem's gain is proposed on its sends (`<bus>.send.<node>.gain_db`): after its own chain,
//! so its compressor keeps working as set, and all its returns move together.

use super::MatchError;
use crate::dsp::Port;
use crate::graph::{GraphSpec, NodeKind};
use std::collections::{BTreeMap, BTreeSet};

/// A connection from a stem's own part into a shared bus.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Send {
    /// The bus.
    pub bus: String,
    /// The node sending.
    pub from: String,
    /// Its send gain in the recipe, dB.
    pub gain_db: f64,
}

impl Send {
    /// The `--set` key of the send's gain.
    pub fn key(&self) -> String {
        format!("{}.send.{}.gain_db", self.bus, self.from)
    }
}

/// One stem's place in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct StemRoute {
    /// The stem (its source node id).
    pub stem: String,
    /// The nodes only this stem reaches (itself included).
    pub own: BTreeSet<String>,
    /// Its sends into shared buses.
    pub sends: Vec<Send>,
}

/// The routing of a session's stems.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// The mix bus: the first bus every stem reaches.
    pub mix_bus: String,
    /// Every stem that reaches it, in the session's order.
    pub stems: Vec<StemRoute>,
}

fn reach(graph: &GraphSpec, from: &str) -> BTreeSet<String> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in graph.edges.iter().filter(|e| e.port == Port::Main) {
        out.entry(e.from.as_str()).or_default().push(e.to.as_str());
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        for &t in out.get(n).into_iter().flatten() {
            if seen.insert(t.to_string()) {
                stack.push(t);
            }
        }
    }
    seen
}

/// The routing of `graph` for the stems named `stems`.
pub fn routing(graph: &GraphSpec, stems: &[String]) -> Result<Routing, MatchError> {
    let reaches: Vec<(String, BTreeSet<String>)> = stems
        .iter()
        .map(|s| (s.clone(), reach(graph, s)))
        .filter(|(_, r)| {
            r.iter().any(|n| {
                matches!(
                    graph.find(n).map(|n| &n.kind),
                    Some(NodeKind::Output { .. })
                )
            })
        })
        .collect();
    if reaches.is_empty() {
        return Err(MatchError::Routing("no stem reaches an output".into()));
    }
    let is_bus = |n: &str| matches!(graph.find(n).map(|n| &n.kind), Some(NodeKind::Bus { .. }));
    let common: BTreeSet<String> = reaches
        .iter()
        .skip(1)
        .fold(reaches[0].1.clone(), |acc, (_, r)| &acc & r)
        .into_iter()
        .filter(|n| is_bus(n))
        .collect();
    let mix_bus = common
        .iter()
        .find(|c| {
            let r = reach(graph, c);
            common.iter().all(|o| o == *c || r.contains(o))
        })
        .cloned()
        .ok_or_else(|| {
            MatchError::Routing(
                "the stems never meet in one bus: match needs a mix bus every stem reaches".into(),
            )
        })?;
    let to_mix = |n: &str| n == mix_bus || reach(graph, n).contains(&mix_bus);
    let mut routes = Vec::new();
    for (i, (stem, r)) in reaches.iter().enumerate() {
        let others: BTreeSet<&String> = reaches
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, (s, r))| r.iter().chain(std::iter::once(s)))
            .collect();
        let own: BTreeSet<String> = r
            .iter()
            .chain(std::iter::once(stem))
            .filter(|n| !others.contains(n) && to_mix(n))
            .cloned()
            .collect();
        let mut sends = Vec::new();
        for e in graph.edges.iter().filter(|e| e.port == Port::Main) {
            if own.contains(&e.from) && !own.contains(&e.to) && to_mix(&e.to) {
                if !is_bus(&e.to) {
                    return Err(MatchError::Routing(format!(
                        "stem `{stem}` reaches the mix through `{}`, which is not a bus: its level \
                         cannot be proposed on a send",
                        e.to
                    )));
                }
                sends.push(Send {
                    bus: e.to.clone(),
                    from: e.from.clone(),
                    gain_db: e.gain_db,
                });
            }
        }
        routes.push(StemRoute {
            stem: stem.clone(),
            own,
            sends,
        });
    }
    Ok(Routing {
        mix_bus,
        stems: routes,
    })
}

/// A graph that renders each stem's contribution to the buses it sends into on an output of
/// its own (see [`contribution_ids`], in the order of `routing.stems`): its own part of the
/// graph, with its sends into a private bus.
pub fn contributions_graph(graph: &GraphSpec, routing: &Routing) -> GraphSpec {
    let mut g = GraphSpec::new();
    let owner: BTreeMap<&str, usize> = routing
        .stems
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.own.iter().map(move |n| (n.as_str(), i)))
        .collect();
    for n in &graph.nodes {
        if owner.contains_key(n.id.as_str()) {
            g.nodes.push(n.clone());
        }
    }
    for e in &graph.edges {
        match (owner.get(e.from.as_str()), owner.get(e.to.as_str())) {
            (Some(a), Some(b)) if a == b => g.edges.push(e.clone()),
            (Some(&a), _)
                if e.port == Port::Main
                    && routing.stems[a]
                        .sends
                        .iter()
                        .any(|s| s.from == e.from && s.bus == e.to) =>
            {
                let mut e = e.clone();
                e.to = contribution_ids(graph, a).0;
                g.edges.push(e);
            }
            _ => {}
        }
    }
    for i in 0..routing.stems.len() {
        let (bus, out) = contribution_ids(graph, i);
        g.bus(&bus).output(&out).connect(&bus, &out);
    }
    g
}

/// The ids of stem `i`'s private bus and output in the [`contributions_graph`] of `graph`:
/// `match.<i>` and `match.<i>.out`, or with `match_2`, `match_3`… when `graph` has ids under
/// `match.` already. Not `__` ids: those are the engine's own, never delivered.
pub fn contribution_ids(graph: &GraphSpec, i: usize) -> (String, String) {
    let taken = |p: &str| {
        let dotted = format!("{p}.");
        graph
            .nodes
            .iter()
            .any(|n| n.id == p || n.id.starts_with(&dotted))
    };
    let prefix = std::iter::once("match".to_string())
        .chain((2..).map(|k| format!("match_{k}")))
        .find(|p| !taken(p))
        .unwrap_or_default();
    (format!("{prefix}.{i}"), format!("{prefix}.{i}.out"))
}

/// Whether parameter `param` belongs to a node of `graph` (automation of other nodes is
/// dropped from a partial graph).
pub fn param_in(graph: &GraphSpec, param: &str) -> bool {
    graph.nodes.iter().any(|n| {
        param.len() > n.id.len() && param.starts_with(&n.id) && param.as_bytes()[n.id.len()] == b'.'
    })
}
