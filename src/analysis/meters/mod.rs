//! Loudness and level meters: the measurements stemgraph reports and its limiter targets.
//!
//! This module owns stemgraph's own implementation of ITU-R BS.1770-4 / EBU R128 loudness
//! ([`LoudnessMeter`]: K-weighting, momentary, short-term, gated integrated loudness and
//! EBU Tech 3342 loudness range), oversampled true peak ([`TruePeakMeter`], built on the
//! polyphase [`PolyphaseInterpolator`]) and sample-level statistics ([`LevelMeter`]: sample peak, RMS,
//! DC, correlation, width, crest factor, clipping, effective word length), plus dB helpers.
//!
//! All meters take planar `f64` audio (one slice per channel, full scale ±1.0) in blocks of
//! any length, give the same readings whatever the block size, keep bounded memory however
//! long the programme, and never allocate in `push`, so they can run on a real-time thread.

mod db;
mod histogram;
mod kweight;
mod level;
mod loudness;
mod true_peak;

pub use crate::dsp::oversample::{default_kaiser_beta, default_taps, PolyphaseInterpolator};
pub use db::{
    db_to_lin, db_to_power, energy_to_lufs, lin_to_db, lufs_to_energy, power_to_db, LUFS_OFFSET,
};
pub use histogram::ABSOLUTE_GATE_LUFS;
pub use kweight::{k_weighting_coefficients, BiquadCoeffs, KWeighting};
pub use level::{LevelMeter, DEFAULT_CLIP_THRESHOLD, DEFAULT_MIN_CLIP_RUN};
pub use loudness::{ChannelLayout, LoudnessMeter, SURROUND_WEIGHT};
pub use true_peak::TruePeakMeter;
