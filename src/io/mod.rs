//! Audio file input and output: streaming decode of stems (with sample-rate conversion, channel
//! mapping and padding) and the resampler it uses.

pub mod decode;
pub mod resample;
