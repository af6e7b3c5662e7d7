//! Delivery to platforms: the streaming platforms' loudness normalization (what each will do to
//! a master: gain, whether its limiter engages) and the deliverable presets
//! (`s:deliver { preset = "spotify" }`). The encoders are [`crate::io::lossy`]; the codec-safe
//! solve is [`crate::render::codec_safe`].

pub mod platforms;
