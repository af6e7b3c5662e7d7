//! `GraphSpec`: what a recipe describes, before validation.
//!
//! Plain data: nodes with stable string ids, connections, and automation curves keyed by
//! parameter id. Each item remembers where in the recipe it was written ([`Origin`]), so that
//! every error can point at a file and line.

use crate::automation::Curve;
use crate::dsp::{Port, ProcessorConfig};
use std::fmt;

/// A place in a recipe or template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The file, as the user would recognise it (relative to the recipe's folder when inside it).
    pub file: String,
    /// The line, from 1.
    pub line: u32,
    /// Where the value went on to be used when that is elsewhere (a template's line).
    pub via: Option<String>,
}

impl Origin {
    /// A plain file:line origin.
    pub fn new(file: impl Into<String>, line: u32) -> Self {
        Self {
            file: file.into(),
            line,
            via: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(via) = &self.via {
            write!(f, " (via {via})")?;
        }
        Ok(())
    }
}

/// Formats an optional origin as a message prefix: `"song.lua:12: "` or nothing.
pub fn at(origin: &Option<Origin>) -> String {
    match origin {
        Some(o) => format!("{o}: "),
        None => String::new(),
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A stem: engine input `input`, with its own fader (`gain_db`, `invert`) set by `config`.
    Source {
        /// Index of the engine input that feeds it.
        input: usize,
        /// 1 or 2.
        channels: usize,
        /// Fader settings.
        config: ProcessorConfig,
    },
    /// A processor from the registry.
    Processor {
        /// The registry name.
        kind: String,
        /// Its options and parameter values.
        config: ProcessorConfig,
        /// Bypassed: the signal passes, delayed by the processor's latency.
        bypass: bool,
    },
    /// Sums any number of inputs, each with its own send gain.
    Bus {
        /// 1 or 2.
        channels: usize,
    },
    /// A result of the render (what deliverables are made from).
    Output {
        /// 1 or 2.
        channels: usize,
    },
}

impl NodeKind {
    /// A short name for messages.
    pub fn describe(&self) -> String {
        match self {
            NodeKind::Source { .. } => "stem".into(),
            NodeKind::Processor { kind, .. } => kind.clone(),
            NodeKind::Bus { .. } => "bus".into(),
            NodeKind::Output { .. } => "output".into(),
        }
    }
}

/// One node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Stable, user-visible id (`vocals`, `vocals.eq`, `master`).
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Where the recipe created it.
    pub origin: Option<Origin>,
}

/// One connection.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSpec {
    /// Id of the node whose output is taken.
    pub from: String,
    /// Id of the node that receives it.
    pub to: String,
    /// Which input of `to`.
    pub port: Port,
    /// Send gain in dB (into a bus; must be 0 elsewhere).
    pub gain_db: f64,
    /// Where the recipe made it.
    pub origin: Option<Origin>,
}

/// A curve for one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomationSpec {
    /// The parameter id, `<node id>.<param>`.
    pub param: String,
    /// Its values over song time.
    pub curve: Curve,
    /// Where the recipe wrote it.
    pub origin: Option<Origin>,
}

/// A whole graph as described.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphSpec {
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// The connections.
    pub edges: Vec<EdgeSpec>,
    /// Automation curves.
    pub automation: Vec<AutomationSpec>,
}

impl GraphSpec {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node (builder style, for code and tests).
    pub fn node(&mut self, id: &str, kind: NodeKind) -> &mut Self {
        self.nodes.push(NodeSpec {
            id: id.to_string(),
            kind,
            origin: None,
        });
        self
    }

    /// Adds a stereo stem source fed by engine input `input`.
    pub fn source(&mut self, id: &str, input: usize) -> &mut Self {
        self.node(
            id,
            NodeKind::Source {
                input,
                channels: 2,
                config: ProcessorConfig::new(),
            },
        )
    }

    /// Adds a processor.
    pub fn processor(&mut self, id: &str, kind: &str, config: ProcessorConfig) -> &mut Self {
        self.node(
            id,
            NodeKind::Processor {
                kind: kind.to_string(),
                config,
                bypass: false,
            },
        )
    }

    /// Adds a stereo bus.
    pub fn bus(&mut self, id: &str) -> &mut Self {
        self.node(id, NodeKind::Bus { channels: 2 })
    }

    /// Adds a stereo output.
    pub fn output(&mut self, id: &str) -> &mut Self {
        self.node(id, NodeKind::Output { channels: 2 })
    }

    /// Connects `from` to the main input of `to`.
    pub fn connect(&mut self, from: &str, to: &str) -> &mut Self {
        self.connect_port(from, to, Port::Main, 0.0)
    }

    /// Connects `from` to `port` of `to` with a send gain.
    pub fn connect_port(&mut self, from: &str, to: &str, port: Port, gain_db: f64) -> &mut Self {
        self.edges.push(EdgeSpec {
            from: from.to_string(),
            to: to.to_string(),
            port,
            gain_db,
            origin: None,
        });
        self
    }

    /// Connects a chain of nodes in series.
    pub fn chain(&mut self, ids: &[&str]) -> &mut Self {
        for pair in ids.windows(2) {
            self.connect(pair[0], pair[1]);
        }
        self
    }

    /// The node with id `id`.
    pub fn find(&self, id: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }
}
