//! The graph layer's errors: everything validation and compilation can refuse.

use super::spec::{at, Origin};
use crate::dsp::registry::BuildError;
use crate::suggest::did_you_mean;

/// Why a graph cannot be compiled. Every variant names the nodes involved and, where known,
/// the recipe line that made them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Two nodes share an id.
    #[error("{}two nodes are called `{id}` (the first at {first}); node ids must be unique", at(.origin))]
    DuplicateNode {
        /// The id.
        id: String,
        /// Where the first was made.
        first: String,
        /// Where the second was made.
        origin: Option<Origin>,
    },
    /// A connection or automation names a node that does not exist.
    #[error("{}unknown node `{id}` in {context}{}", at(.origin), did_you_mean(.suggestion))]
    UnknownNode {
        /// The id given.
        id: String,
        /// Where it was used ("a connection to `master`").
        context: String,
        /// The closest existing id.
        suggestion: Option<String>,
        /// Where the recipe used it.
        origin: Option<Origin>,
    },
    /// The same connection is made twice.
    #[error("{}`{from}` is connected to the {port} input of `{to}` twice", at(.origin))]
    DuplicateConnection {
        /// Source node.
        from: String,
        /// Destination node.
        to: String,
        /// Port name.
        port: &'static str,
        /// Where the second connection was made.
        origin: Option<Origin>,
    },
    /// A connection that cannot be made (into a stem, out of an output, a key into a processor
    /// without a side-chain, a send gain outside a bus).
    #[error("{}cannot connect `{from}` to `{to}`: {reason}", at(.origin))]
    BadConnection {
        /// Source node.
        from: String,
        /// Destination node.
        to: String,
        /// Why not.
        reason: String,
        /// Where the connection was made.
        origin: Option<Origin>,
    },
    /// A node that needs an input has none.
    #[error("{}`{id}` ({kind}) has nothing connected to its input", at(.origin))]
    DanglingInput {
        /// The node.
        id: String,
        /// Its kind.
        kind: String,
        /// Where it was made.
        origin: Option<Origin>,
    },
    /// A processor or output with more than one signal on one port.
    #[error("{}`{id}` has {count} connections to its {port} input; a processor takes one (sum them in a bus first)", at(.origin))]
    TooManyInputs {
        /// The node.
        id: String,
        /// Port name.
        port: &'static str,
        /// How many.
        count: usize,
        /// Where it was made.
        origin: Option<Origin>,
    },
    /// The graph has a cycle.
    #[error("{}the graph has a cycle: {}", at(.origin), cycle_text(.nodes))]
    Cycle {
        /// The nodes on the cycle, in order.
        nodes: Vec<String>,
        /// Where the first node on it was made.
        origin: Option<Origin>,
    },
    /// Channel counts do not match.
    #[error("{}`{from}` sends {found} channel(s) but `{to}` takes {expected}", at(.origin))]
    ChannelMismatch {
        /// Source node.
        from: String,
        /// Destination node.
        to: String,
        /// Channels the destination takes.
        expected: usize,
        /// Channels the source gives.
        found: usize,
        /// Where the connection was made.
        origin: Option<Origin>,
    },
    /// A processor could not be built from its options.
    #[error("{}node `{id}`: {source}", at(.origin))]
    Build {
        /// The node.
        id: String,
        /// What the registry said.
        source: BuildError,
        /// Where it was made.
        origin: Option<Origin>,
    },
    /// A parameter id that no node has.
    #[error("{}unknown parameter `{id}`{}", at(.origin), did_you_mean(.suggestion))]
    UnknownParam {
        /// The id given.
        id: String,
        /// The closest existing parameter id.
        suggestion: Option<String>,
        /// Where it was used.
        origin: Option<Origin>,
    },
    /// A parameter that may not be automated.
    #[error("{}parameter `{id}` cannot be automated ({reason})", at(.origin))]
    NotAutomatable {
        /// The parameter.
        id: String,
        /// Why.
        reason: String,
        /// Where the automation was written.
        origin: Option<Origin>,
    },
    /// A value (of automation, or set from outside) outside the parameter's range.
    #[error("{}`{id}` = {value} is out of range: it must be between {min} and {max}{unit}", at(.origin))]
    OutOfRange {
        /// Parameter id.
        id: String,
        /// The value.
        value: f64,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
        /// Unit suffix.
        unit: String,
        /// Where it was written.
        origin: Option<Origin>,
    },
    /// No output node.
    #[error("the graph has no output: add an output node and connect the master to it")]
    NoOutput,
    /// The compiler laid out a program the engine refuses (a bug in the compiler, not in the
    /// recipe).
    #[error("internal error: the compiled program is invalid: {0}")]
    Schedule(#[from] crate::engine::ScheduleError),
}

fn cycle_text(nodes: &[String]) -> String {
    let mut s = nodes
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" → ");
    if let Some(first) = nodes.first() {
        s.push_str(&format!(" → `{first}`"));
    }
    s
}

impl GraphError {
    /// Where in the recipe the problem was written, if known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            GraphError::DuplicateNode { origin, .. }
            | GraphError::UnknownNode { origin, .. }
            | GraphError::DuplicateConnection { origin, .. }
            | GraphError::BadConnection { origin, .. }
            | GraphError::DanglingInput { origin, .. }
            | GraphError::TooManyInputs { origin, .. }
            | GraphError::Cycle { origin, .. }
            | GraphError::ChannelMismatch { origin, .. }
            | GraphError::Build { origin, .. }
            | GraphError::UnknownParam { origin, .. }
            | GraphError::NotAutomatable { origin, .. }
            | GraphError::OutOfRange { origin, .. } => origin.as_ref(),
            GraphError::NoOutput | GraphError::Schedule(_) => None,
        }
    }
}
