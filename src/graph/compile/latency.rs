//! Compilation step 5: latency compensation. A node's signal arrives with the latency of its
//! latest input; every other input is delayed to match (the program step inserts the delays),
//! so parallel paths meet sample-aligned. The total is reported per output for renders to trim,
//! and tails add up along each path.

use super::nodes::Built;
use super::validate::Wiring;

/// Latencies and tails of every node (indexes into `spec.nodes`), in samples.
pub(super) struct Latencies {
    /// Latency of the signal arriving at the node (its latest input's).
    pub arrival: Vec<usize>,
    /// Latency of the node's output: arrival plus its own.
    pub out: Vec<usize>,
    /// How long the node's output rings on after the stems end.
    pub tail: Vec<usize>,
}

impl Latencies {
    /// The compensation delay on the edge from `from` into `to`.
    pub fn delay(&self, from: usize, to: usize) -> usize {
        self.arrival[to] - self.out[from]
    }
}

/// Works out the latencies along topological order `topo`.
pub(super) fn latencies(w: &Wiring<'_>, topo: &[usize], built: &[Built]) -> Latencies {
    let n = built.len();
    let mut l = Latencies {
        arrival: vec![0; n],
        out: vec![0; n],
        tail: vec![0; n],
    };
    for &i in topo {
        let inputs = w.main_in[i]
            .iter()
            .map(|e| e.0)
            .chain(w.key_in[i].iter().map(|e| e.0));
        let (mut a, mut t) = (0, 0);
        for from in inputs {
            a = a.max(l.out[from]);
            t = t.max(l.tail[from]);
        }
        l.arrival[i] = a;
        l.out[i] = a + built[i].latency;
        l.tail[i] = t + built[i].tail;
    }
    l
}

#[cfg(test)]
mod tests {
    use super::super::nodes::build_nodes;
    use super::super::order::order;
    use super::super::validate::validate;
    use super::*;
    use crate::dsp::{Port, ProcessorConfig};
    use crate::graph::GraphSpec;

    #[test]
    fn parallel_paths_meet_at_the_latest_and_tails_add_up() {
        // s ─ lim ─┐
        // s ───────┴ mix ─ comp ─ echo ─ out, with comp keyed from lim.
        let mut g = GraphSpec::new();
        g.source("s", 0).bus("mix").output("out");
        g.processor("lim", "limiter", ProcessorConfig::new());
        g.processor("echo", "delay", ProcessorConfig::new());
        g.processor("comp", "compressor", ProcessorConfig::new());
        g.chain(&["s", "lim", "mix", "comp", "echo", "out"]);
        g.connect("s", "mix");
        g.connect_port("lim", "comp", Port::Key, 0.0);
        let w = validate(&g).unwrap();
        let o = order(&g, &w).unwrap();
        let built = build_nodes(&g, &w, &o.topo, 48_000.0, 64, &mut Vec::new()).unwrap();
        let l = latencies(&w, &o.topo, &built);
        let ix = |id: &str| w.index[id];
        let lim = built[ix("lim")].latency;
        assert!(lim > 0);
        assert_eq!(l.out[ix("s")], 0);
        assert_eq!(l.arrival[ix("mix")], lim);
        assert_eq!(l.delay(ix("s"), ix("mix")), lim);
        assert_eq!(l.delay(ix("lim"), ix("mix")), 0);
        let comp = built[ix("comp")].latency;
        assert_eq!(l.arrival[ix("out")], lim + comp + built[ix("echo")].latency);
        let tails: usize = ["lim", "comp", "echo"]
            .iter()
            .map(|id| built[ix(id)].tail)
            .sum();
        assert_eq!(l.tail[ix("out")], tails);
        assert!(l.tail[ix("out")] > 0);
    }
}
