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
