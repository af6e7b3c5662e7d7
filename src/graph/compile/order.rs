//! Compilation steps 2 and 4: the order nodes run in, and which of them matter.
//!
//! The graph is put in a petgraph `DiGraph` with nodes inserted sorted by id (so everything
//! that follows is independent of recipe order), checked for cycles and sorted topologically.
//! Once the nodes are built, those that reach no output are dropped with a warning.

use super::super::error::GraphError;
use super::super::spec::{at, GraphSpec, NodeKind};
use super::validate::Wiring;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

/// The order of a graph's nodes (indexes into `spec.nodes`).
pub(super) struct Order {
    /// Sorted by id.
    pub by_id: Vec<usize>,
    /// Topological: every node after the nodes it reads.
    pub topo: Vec<usize>,
}

/// Orders the nodes of `spec`; an error names the nodes of a cycle.
pub(super) fn order(spec: &GraphSpec, w: &Wiring<'_>) -> Result<Order, GraphError> {
    let n = spec.nodes.len();
    let ids = &w.ids;
    let mut by_id: Vec<usize> = (0..n).collect();
    by_id.sort_by(|a, b| ids[*a].cmp(ids[*b]));
    let mut g: DiGraph<usize, ()> = DiGraph::with_capacity(n, spec.edges.len());
    let mut gi = vec![NodeIndex::new(0); n];
    for &i in &by_id {
        gi[i] = g.add_node(i);
    }
    let mut edge_list: Vec<(usize, usize)> = Vec::new();
    for to in 0..n {
        edge_list.extend(w.main_in[to].iter().map(|&(from, _, _)| (from, to)));
        edge_list.extend(w.key_in[to].iter().map(|&(from, _)| (from, to)));
    }
    edge_list.sort_by(|a, b| (ids[a.0], ids[a.1]).cmp(&(ids[b.0], ids[b.1])));
    for &(from, to) in &edge_list {
        g.add_edge(gi[from], gi[to], ());
    }
    if let Some(cycle) = find_cycle(&g, ids) {
        let origin = spec.nodes[w.index[cycle[0].as_str()]].origin.clone();
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
    Ok(Order { by_id, topo })
}

/// What reaches an output: the outputs (in topological order) and, per node, whether it
/// feeds one. A warning for every node left out, in id order.
pub(super) fn reachable(
    spec: &GraphSpec,
    w: &Wiring<'_>,
    order: &Order,
    warnings: &mut Vec<String>,
) -> Result<(Vec<usize>, Vec<bool>), GraphError> {
    let is_output = |i: usize| matches!(spec.nodes[i].kind, NodeKind::Output { .. });
    let outputs: Vec<usize> = order
        .topo
        .iter()
        .copied()
        .filter(|&i| is_output(i))
        .collect();
    if outputs.is_empty() {
        return Err(GraphError::NoOutput);
    }
    let mut live = vec![false; spec.nodes.len()];
    for &i in order.topo.iter().rev() {
        if is_output(i) {
            live[i] = true;
        }
        if live[i] {
            for &(from, _, _) in &w.main_in[i] {
                live[from] = true;
            }
            for &(from, _) in &w.key_in[i] {
                live[from] = true;
            }
        }
    }
    for &i in &order.by_id {
        if !live[i] {
            warnings.push(format!(
                "{}`{}` does not reach any output and is left out",
                at(&spec.nodes[i].origin),
                w.ids[i]
            ));
        }
    }
    Ok((outputs, live))
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

#[cfg(test)]
mod tests {
    use super::super::validate::validate;
    use super::*;
    use crate::dsp::ProcessorConfig;

    fn chain() -> GraphSpec {
        let mut g = GraphSpec::new();
        g.output("out").bus("mix").source("s", 0);
        g.processor("eq", "eq", ProcessorConfig::new());
        g.chain(&["s", "eq", "mix", "out"]);
        g
    }

    #[test]
    fn topological_and_by_id() {
        let g = chain();
        let w = validate(&g).unwrap();
        let o = order(&g, &w).unwrap();
        let names = |v: &[usize]| v.iter().map(|&i| w.ids[i]).collect::<Vec<_>>();
        assert_eq!(names(&o.by_id), ["eq", "mix", "out", "s"]);
        assert_eq!(names(&o.topo), ["s", "eq", "mix", "out"]);
    }

    #[test]
    fn a_cycle_is_named_from_its_smallest_id() {
        let mut g = chain();
        g.processor("fb", "gain", ProcessorConfig::new());
        g.connect("mix", "fb").connect("fb", "eq");
        let w = validate(&g).unwrap();
        match order(&g, &w) {
            Err(GraphError::Cycle { nodes, .. }) => assert_eq!(nodes, ["eq", "mix", "fb"]),
            other => panic!("expected a cycle, got {:?}", other.err()),
        }
    }

    #[test]
    fn what_reaches_no_output_is_left_out_with_a_warning() {
        let mut g = chain();
        g.source("spare", 1);
        g.processor("lost", "gain", ProcessorConfig::new());
        g.connect("spare", "lost");
        let w = validate(&g).unwrap();
        let o = order(&g, &w).unwrap();
        let mut warnings = Vec::new();
        let (outputs, live) = reachable(&g, &w, &o, &mut warnings).unwrap();
        assert_eq!(outputs, [w.index["out"]]);
        assert!(!live[w.index["spare"]] && !live[w.index["lost"]]);
        assert!(live[w.index["s"]] && live[w.index["eq"]]);
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("`lost`") && warnings[1].contains("`spare`"));
    }

    #[test]
    fn a_graph_without_output_is_refused() {
        let mut g = GraphSpec::new();
        g.source("s", 0);
        let w = validate(&g).unwrap();
        let o = order(&g, &w).unwrap();
        assert_eq!(
            reachable(&g, &w, &o, &mut Vec::new()).err(),
            Some(GraphError::NoOutput)
        );
    }
}
