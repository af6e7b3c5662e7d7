//! The integration tests, gathered into one test binary: each file of `tests/` named below is a
//! module of it (one build and one link for all of them, one copy of the helpers, and the test
//! runner spreads all their tests over the cores). `cargo test --test suite dsp_eq::` runs one
//! file's tests. Beside it: `headless` (the tests the `--no-default-features` build runs too),
//! `live` (hot reload and the sound-server tests), `plugins`, and `decode` and `metadata` (each
//! needs a process of its own: a counting allocator, an environment variable).

// Helpers shared by the modules.
mod analysis;
mod common;
mod corpus;
mod dsp_util;
mod matching;

// The test files.
#[cfg(feature = "demo")]
mod album;
mod alloc_guard;
mod api_docs;
mod architecture;
mod automation;
mod check_real;
#[cfg(feature = "demo")]
mod cluster;
#[cfg(feature = "demo")]
mod ddp;
#[cfg(all(feature = "lossy", feature = "demo"))]
mod deliver_lossy;
#[cfg(feature = "demo")]
mod demo;
mod dsp_delay;
mod dsp_dither;
mod dsp_dynamics;
mod dsp_eq;
mod dsp_limiter;
mod dsp_multiband;
mod dsp_saturation;
mod dsp_width;
mod engine;
mod flacenc_patch;
mod graph_validation;
mod live_engine;
mod live_seek;
#[cfg(feature = "demo")]
mod loudness_target;
#[cfg(feature = "demo")]
mod match_inputs;
mod match_real;
#[cfg(feature = "demo")]
mod match_recovery;
#[cfg(feature = "demo")]
mod match_repeats;
#[cfg(feature = "demo")]
mod match_sections;
#[cfg(all(feature = "demo", feature = "lossy"))]
mod memory;
mod meters;
mod parallel_runner;
#[cfg(feature = "demo")]
mod recipes;
mod sandbox;
mod state_handover;
mod stem_offset;
mod trust_real;
#[cfg(feature = "demo")]
mod trust_render;
