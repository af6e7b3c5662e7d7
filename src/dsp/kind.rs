//! The contract between a processor kind and the registry: what a kind declares about itself
//! ([`KindInfo`]) and what its builder is given ([`BuildContext`]).
//!
//! Every processor module exports one `KIND: KindInfo` built from these types; the list of all
//! kinds lives in [`super::registry`], which imports the processors (never the other way round).

use super::config::ProcessorConfig;
use super::Processor;

/// What a builder gets to work with.
pub struct BuildContext<'a> {
    /// The node's options; the builder takes what it understands.
    pub config: &'a mut ProcessorConfig,
    /// Channels of the input signal (1 or 2).
    pub input_channels: usize,
    /// The sample rate `prepare` will most likely be given (the session's when the graph
    /// compiler builds; kinds that must know it early, such as hosted plugins, use it).
    pub sample_rate: f64,
    /// The largest block `prepare` will most likely be given.
    pub max_block: usize,
}

/// One kind of processor.
pub struct KindInfo {
    /// The name recipes use (`gain`, `eq`, …).
    pub name: &'static str,
    /// One paragraph for the API reference.
    pub doc: &'static str,
    /// Builds a processor from its options.
    pub build: fn(&mut BuildContext) -> Result<Box<dyn Processor>, String>,
    /// A configuration that shows every kind of parameter the processor has (for documentation:
    /// for numbered parts such as EQ bands it declares one of each).
    pub example: fn() -> ProcessorConfig,
}
