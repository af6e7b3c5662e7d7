//! Dynamics processors and the pieces they share.
//!
//! - [`core`]: level detection (peak, RMS), the static gain computer with a soft knee,
//!   attack/release ballistics on the gain reduction in dB, stereo link;
//! - [`fastmath`]: the deterministic `log2`/`exp2` of the detector and gain paths;
//! - [`compressor`]: feed-forward compressor with parallel mix, side-chain high-pass and an
//!   external side-chain key;
//! - [`deesser`]: split-band compression of one band (the rest of the signal is untouched);
//! - [`multiband`]: 2–4 band compressor on Linkwitz–Riley crossovers that sum flat.
//!
//! Every processor here publishes its gain reduction ([`crate::dsp::telemetry`]).

// Sample loops index several chunk arrays in lockstep.
#![allow(clippy::needless_range_loop)]

pub mod compressor;
pub mod core;
pub mod deesser;
pub mod fastmath;
pub mod multiband;

use crate::dsp::{Processor, Telemetry};
use std::sync::Arc;

/// Carries the whole state of `old` over into `this` (hot reload) when both have the same kind,
/// channels, parameters, latency and `same_structure`, but keeps `this`'s telemetry: the new
/// schedule reads the slots of the new processor.
pub(crate) fn adopt_keeping_telemetry<T: Processor + 'static>(
    this: &mut T,
    old: &mut dyn Processor,
    same_structure: fn(&T, &T) -> bool,
    telemetry: fn(&mut T) -> &mut Arc<Telemetry>,
) -> bool {
    if old.kind() != this.kind()
        || old.output_channels() != this.output_channels()
        || old.params() != this.params()
        || old.latency() != this.latency()
    {
        return false;
    }
    let Some(old) = old.as_any_mut().downcast_mut::<T>() else {
        return false;
    };
    if !same_structure(this, old) {
        return false;
    }
    std::mem::swap(this, old);
    std::mem::swap(telemetry(this), telemetry(old));
    true
}

/// Whether an optional parameter is switched on: absent or 0 means off (and a 0 is removed so
/// the registry does not look for it); any other value, even a wrong one, switches it on and is
/// then validated by the registry like every parameter.
pub(crate) fn optional_param(config: &mut crate::dsp::ProcessorConfig, key: &str) -> bool {
    match config.entries.get(key) {
        None => false,
        Some(crate::dsp::ConfigValue::Number(v)) if *v == 0.0 => {
            config.take(key);
            false
        }
        Some(_) => true,
    }
}
