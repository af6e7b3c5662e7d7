//! The compiled graph for people: a text listing and Graphviz DOT.

use super::compile::NodeSummary;
use crate::dsp::Port;
use std::fmt::Write;

/// One line per node in schedule order, with its inputs, latency and parameters.
pub fn text(summary: &[NodeSummary], sample_rate: f64) -> String {
    let mut s = String::new();
    for n in summary {
        let _ = write!(s, "{} ({}, {} ch", n.id, n.kind, n.channels);
        if n.latency > 0 {
            let _ = write!(
                s,
                ", latency {} samples = {:.2} ms",
                n.latency,
                n.latency as f64 * 1000.0 / sample_rate
            );
        }
        if n.bypassed {
            s.push_str(", bypassed");
        }
        s.push_str(")\n");
        for (from, port, gain, delay) in &n.inputs {
            let _ = write!(s, "  <- {from}");
            if *port == Port::Key {
                s.push_str(" [key]");
            }
            if *gain != 0.0 {
                let _ = write!(s, " {gain:+.2} dB");
            }
            if *delay > 0 {
                let _ = write!(s, " (aligned +{delay} samples)");
            }
            s.push('\n');
        }
        for (name, value) in &n.params {
            let _ = writeln!(s, "  {}.{name} = {value}", n.id);
        }
    }
    s
}

/// The graph in Graphviz DOT.
pub fn dot(summary: &[NodeSummary]) -> String {
    let mut s = String::from(
        "digraph stemgraph {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for n in summary {
        let shape = match n.kind.as_str() {
            "stem" => "cds",
            "bus" => "ellipse",
            "output" => "doubleoctagon",
            _ => "box",
        };
        let _ = writeln!(
            s,
            "  \"{}\" [label=\"{}\\n{}\", shape={shape}];",
            n.id, n.id, n.kind
        );
    }
    for n in summary {
        for (from, port, gain, _) in &n.inputs {
            let mut attrs = Vec::new();
            if *port == Port::Key {
                attrs.push("style=dashed, label=\"key\"".to_string());
            } else if *gain != 0.0 {
                attrs.push(format!("label=\"{gain:+.1} dB\""));
            }
            let _ = writeln!(s, "  \"{from}\" -> \"{}\" [{}];", n.id, attrs.join(", "));
        }
    }
    s.push_str("}\n");
    s
}
