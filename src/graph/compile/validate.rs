//! Compilation step 1: ids unique, connections name existing nodes and legal ports, no
//! connection twice. What comes out is the graph's wiring by node index.

use super::super::error::GraphError;
use super::super::spec::{EdgeSpec, GraphSpec, NodeKind, Origin};
use crate::dsp::Port;
use crate::suggest::closest;
use std::collections::{HashMap, HashSet};

/// An input to a node's main port: (source index, send gain dB, edge index).
pub(super) type MainIn = (usize, f64, usize);

/// The graph's nodes and connections by index (index = position in `spec.nodes`).
pub(super) struct Wiring<'a> {
    /// Node ids.
    pub ids: Vec<&'a str>,
    /// Node index by id.
    pub index: HashMap<&'a str, usize>,
    /// Inputs to each node's main port, sorted by source id (the order buses sum them in).
    pub main_in: Vec<Vec<MainIn>>,
    /// Inputs to each node's side-chain key: (source index, edge index).
    pub key_in: Vec<Vec<(usize, usize)>>,
}

/// Checks the ids and the connections of `spec`.
pub(super) fn validate(spec: &GraphSpec) -> Result<Wiring<'_>, GraphError> {
    let n = spec.nodes.len();
    let ids: Vec<&str> = spec.nodes.iter().map(|n| n.id.as_str()).collect();
    let index = unique_ids(spec)?;
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
    let mut main_in: Vec<Vec<MainIn>> = vec![Vec::new(); n];
    let mut key_in: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut seen = HashSet::new();
    for (ei, e) in spec.edges.iter().enumerate() {
        let from = lookup(&e.from, format!("a connection to `{}`", e.to), &e.origin)?;
        let to = lookup(&e.to, format!("a connection from `{}`", e.from), &e.origin)?;
        check_edge(spec, e, from, to)?;
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
    Ok(Wiring {
        ids,
        index,
        main_in,
        key_in,
    })
}

/// Node index by id; an error at the second node of an id.
fn unique_ids(spec: &GraphSpec) -> Result<HashMap<&str, usize>, GraphError> {
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
    Ok(index)
}

/// Whether connection `e` (from node `from` to node `to`) is legal for the kinds it joins.
fn check_edge(spec: &GraphSpec, e: &EdgeSpec, from: usize, to: usize) -> Result<(), GraphError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::ProcessorConfig;

    fn mix() -> GraphSpec {
        let mut g = GraphSpec::new();
        g.source("b", 1).source("a", 0).bus("mix").output("out");
        g.processor("comp", "compressor", ProcessorConfig::new());
        g.connect("b", "mix").connect("a", "mix");
        g.connect_port("a", "comp", Port::Key, 0.0);
        g.chain(&["mix", "comp", "out"]);
        g
    }

    #[test]
    fn wiring_by_index_with_bus_inputs_sorted_by_source_id() {
        let g = mix();
        let w = validate(&g).expect("valid");
        assert_eq!(w.ids, ["b", "a", "mix", "out", "comp"]);
        assert_eq!(w.index["comp"], 4);
        // "a" (index 1) sums before "b" (index 0), whatever the recipe order.
        let mix_inputs: Vec<usize> = w.main_in[2].iter().map(|e| e.0).collect();
        assert_eq!(mix_inputs, [1, 0]);
        assert_eq!(w.key_in[4], [(1, 2)]);
        assert_eq!(w.main_in[3].iter().map(|e| e.0).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn refuses_a_second_node_of_an_id() {
        let mut g = mix();
        g.bus("mix");
        assert!(matches!(
            validate(&g),
            Err(GraphError::DuplicateNode { id, .. }) if id == "mix"
        ));
    }

    #[test]
    fn refuses_unknown_ends_illegal_ports_and_repeats() {
        let mut g = mix();
        g.connect("mx", "out");
        assert!(matches!(
            validate(&g),
            Err(GraphError::UnknownNode { suggestion: Some(s), .. }) if s == "mix"
        ));
        let mut g = mix();
        g.connect("mix", "a");
        assert!(matches!(
            validate(&g),
            Err(GraphError::BadConnection { .. })
        ));
        let mut g = mix();
        g.connect_port("a", "mix", Port::Key, 0.0);
        assert!(matches!(
            validate(&g),
            Err(GraphError::BadConnection { .. })
        ));
        let mut g = mix();
        g.connect_port("a", "comp", Port::Main, -3.0);
        assert!(matches!(
            validate(&g),
            Err(GraphError::BadConnection { .. })
        ));
        let mut g = mix();
        g.connect("out", "mix");
        assert!(matches!(
            validate(&g),
            Err(GraphError::BadConnection { .. })
        ));
        let mut g = mix();
        g.connect("a", "mix");
        assert!(matches!(
            validate(&g),
            Err(GraphError::DuplicateConnection { .. })
        ));
    }
}
