//! The graph layer (control side): what a recipe describes, its validation, its compilation
//! into a [`Schedule`](crate::engine::Schedule) (`compile/`, a file per step), and the reload
//! diff that tells the engine, by index, what a new schedule takes over from the old (`diff`).
//!
//! Never runs on the audio thread. petgraph lives here and nowhere else.

pub mod compile;
pub mod describe;
pub mod diff;
pub mod error;
pub mod spec;

pub use compile::{compile, CompileOptions, Compiled, NodeSummary};
pub use error::GraphError;
pub use spec::{AutomationSpec, EdgeSpec, GraphSpec, NodeKind, NodeSpec, Origin};

/// Whether `id` names one of the engine's own nodes, which a render adds to a recipe's graph
/// (the loudness solve's spill source, drive and limiter readings): ids starting with `__`,
/// which recipes may not use. They are not metered for the report nor delivered.
pub fn is_internal(id: &str) -> bool {
    id.starts_with("__")
}
