//! Gain: level in dB and polarity, smoothed so changes never click.
//!
//! At 0 dB and normal polarity the signal passes untouched (bit-exact), which keeps a neutral
//! graph transparent.

use super::kind::KindInfo;
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor, Unit};
use crate::units::db_to_gain;

/// Index of `gain_db`.
pub const GAIN_DB: usize = 0;
/// Index of `invert`.
pub const INVERT: usize = 1;

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "gain",
    doc: "Level change in dB and polarity inversion. Neutral settings are bit-transparent.",
    build: |cx| Ok(Box::new(Gain::new(cx.input_channels))),
    example: super::config::ProcessorConfig::new,
};

/// A gain stage.
pub struct Gain {
    params: Vec<ParamInfo>,
    channels: usize,
}

impl Gain {
    /// A gain stage for `channels` channels.
    pub fn new(channels: usize) -> Self {
        Self {
            params: params(),
            channels,
        }
    }
}

/// The parameters of a gain stage (shared by the stem faders).
pub fn params() -> Vec<ParamInfo> {
    vec![
        ParamInfo::new("gain_db", Unit::Decibels, -120.0, 36.0, 0.0).doc("level change"),
        ParamInfo::new("invert", Unit::Plain, 0.0, 1.0, 0.0)
            .glide(10.0)
            .doc("polarity: 0 normal, 1 inverted (glides through silence)"),
    ]
}

/// The factor of a gain stage whose parameters hold still over the block (`None` when they
/// move): what [`apply`] multiplies every sample by.
pub fn constant_factor(params: &ParamBlock<'_>) -> Option<f64> {
    let gain = params.get(GAIN_DB);
    let invert = params.get(INVERT);
    (gain.is_constant() && invert.is_constant())
        .then(|| db_to_gain(gain.first()) * (1.0 - 2.0 * invert.first()))
}

/// Applies `gain_db` and `invert` from `params` to every channel of `audio`.
pub fn apply(audio: &mut AudioMut<'_>, params: &ParamBlock<'_>) {
    let gain = params.get(GAIN_DB);
    let invert = params.get(INVERT);
    if let Some(g) = constant_factor(params) {
        if g == 1.0 {
            return;
        }
        audio.for_each_channel(|_, ch| ch.iter_mut().for_each(|x| *x *= g));
    } else {
        audio.for_each_channel(|_, ch| {
            for (n, x) in ch.iter_mut().enumerate() {
                *x *= db_to_gain(gain.at(n)) * (1.0 - 2.0 * invert.at(n));
            }
        });
    }
}

impl Processor for Gain {
    fn kind(&self) -> &'static str {
        "gain"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, _spec: &ProcessSpec) {}
    fn reset(&mut self) {}
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        apply(audio, &params);
    }
    crate::no_signal_state!();
}
