//! A processor driven directly, outside a graph, with fixed parameter values.
//!
//! For stages that are not part of a recipe's graph — a deliverable's safety limiter and dither —
//! and for benchmarks of a single processor.

use super::param::ParamSlot;
use super::registry::{self, BuildError};
use super::{AudioMut, ParamBlock, ProcessSpec, Processor, ProcessorConfig};

/// A built, prepared processor with constant parameters.
pub struct Standalone {
    processor: Box<dyn Processor>,
    slots: Vec<ParamSlot>,
}

impl Standalone {
    /// Builds `kind` from `config` for `channels` channels and prepares it.
    pub fn new(
        kind: &str,
        config: &ProcessorConfig,
        channels: usize,
        sample_rate: f64,
        max_block: usize,
    ) -> Result<Self, BuildError> {
        let built = registry::build(kind, config, channels)?;
        let mut processor = built.processor;
        processor.prepare(&ProcessSpec {
            sample_rate,
            max_block,
            input_channels: channels,
        });
        let slots = built
            .initial
            .iter()
            .map(|&v| ParamSlot::new(v, 1))
            .collect();
        Ok(Self { processor, slots })
    }

    /// The processor.
    pub fn processor(&self) -> &dyn Processor {
        &*self.processor
    }

    /// Processes one block in place (at most the `max_block` given to [`Standalone::new`]).
    pub fn process(&mut self, audio: &mut AudioMut<'_>) {
        self.processor
            .process(audio, None, ParamBlock::new(&self.slots));
    }

    /// Latency in samples.
    pub fn latency(&self) -> usize {
        self.processor.latency()
    }
}
