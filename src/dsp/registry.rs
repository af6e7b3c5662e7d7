//! The registry of processor kinds: how a node's configuration becomes a processor.
//!
//! Every kind a recipe can name is listed here once, with its documentation. The Lua API, the
//! API reference and the annotation file are all generated from or checked against this list.
//! This is the only file that names every processor; the processors themselves import only the
//! contract they share ([`super::kind`]), never this list.

use super::config::ProcessorConfig;
use super::kind::{BuildContext, KindInfo};
use super::param::ParamInfo;
use super::Processor;
use crate::suggest::closest;

/// Why a node could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// No processor of that name.
    #[error(
        "unknown processor kind `{kind}`{}",
        crate::suggest::did_you_mean(suggestion)
    )]
    UnknownKind {
        /// What was asked for.
        kind: String,
        /// The closest known kind.
        suggestion: Option<String>,
    },
    /// An option the processor does not have.
    #[error(
        "`{kind}` has no option `{key}`{}",
        crate::suggest::did_you_mean(suggestion)
    )]
    UnknownOption {
        /// The processor kind.
        kind: String,
        /// The option given.
        key: String,
        /// The closest valid option.
        suggestion: Option<String>,
    },
    /// A parameter value outside its range.
    #[error("`{param}` = {value} is out of range: it must be between {min} and {max}{unit}")]
    OutOfRange {
        /// The parameter name within the node.
        param: String,
        /// The value given.
        value: f64,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
        /// Unit suffix for the message (" dB"…).
        unit: String,
    },
    /// Any other problem the builder found (wrong type, bad combination, wrong channel count).
    #[error("{0}")]
    Invalid(String),
}

/// A built processor with the starting value of each of its parameters.
pub struct Built {
    /// The processor.
    pub processor: Box<dyn Processor>,
    /// Starting values, in parameter order.
    pub initial: Vec<f64>,
}

/// Every processor kind, in documentation order.
pub fn kinds() -> &'static [KindInfo] {
    KINDS
}

static KINDS: &[KindInfo] = &[
    super::gain::KIND,
    super::pan::KIND,
    super::eq::KIND,
    super::delay::KIND,
    super::dynamics::compressor::KIND,
    super::dynamics::deesser::KIND,
    super::dynamics::multiband::KIND,
    super::width::KIND,
    super::limiter::KIND,
    super::dither::KIND,
    super::saturation::KIND,
    super::plugin::KIND,
];

/// Looks a kind up by name.
pub fn find(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.name == name)
}

/// The sample rate [`build`] assumes (a processor prepared at another rate adapts in `prepare`).
pub const DEFAULT_RATE: f64 = 48_000.0;
/// The largest block [`build`] assumes.
pub const DEFAULT_MAX_BLOCK: usize = 4096;

/// Builds a processor of `kind` from `config` for a signal of `input_channels` channels.
pub fn build(
    kind: &str,
    config: &ProcessorConfig,
    input_channels: usize,
) -> Result<Built, BuildError> {
    build_at(
        kind,
        config,
        input_channels,
        DEFAULT_RATE,
        DEFAULT_MAX_BLOCK,
    )
}

/// [`build`] for a processor that will be prepared at `sample_rate` with blocks of at most
/// `max_block` frames (what the graph compiler knows).
pub fn build_at(
    kind: &str,
    config: &ProcessorConfig,
    input_channels: usize,
    sample_rate: f64,
    max_block: usize,
) -> Result<Built, BuildError> {
    // Building is the control side's business: the instruction set is decided here, before
    // anything is processed.
    crate::dsp::simd::init();
    let info = find(kind).ok_or_else(|| BuildError::UnknownKind {
        kind: kind.to_string(),
        suggestion: closest(kind, KINDS.iter().map(|k| k.name)),
    })?;
    let mut config = config.clone();
    let mut cx = BuildContext {
        config: &mut config,
        input_channels,
        sample_rate,
        max_block,
    };
    let processor = (info.build)(&mut cx).map_err(BuildError::Invalid)?;
    let mut initial = Vec::with_capacity(processor.params().len());
    for p in processor.params() {
        let value = config
            .take_number(&p.name, p.default)
            .map_err(BuildError::Invalid)?;
        check_range(p, value)?;
        initial.push(value);
    }
    if let Some(key) = config.remaining_keys().next() {
        return Err(BuildError::UnknownOption {
            kind: kind.to_string(),
            key: key.to_string(),
            suggestion: closest(key, processor.params().iter().map(|p| p.name.as_str())),
        });
    }
    Ok(Built { processor, initial })
}

/// Checks a value against a parameter's range.
pub fn check_range(p: &ParamInfo, value: f64) -> Result<(), BuildError> {
    if p.accepts(value) {
        Ok(())
    } else {
        Err(BuildError::OutOfRange {
            param: p.name.clone(),
            value,
            min: p.min,
            max: p.max,
            unit: match p.unit.symbol() {
                "" => String::new(),
                ":1" => ":1".into(),
                s => format!(" {s}"),
            },
        })
    }
}
