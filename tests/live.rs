//! The tests that need the `live` feature: hot reload on a simulated device, live matching, and
//! playback through a PulseAudio null sink (`live_pulse`: ignored in the plain run; `make test`
//! runs them alone afterwards: `cargo test --test live -- --ignored --test-threads=1`). Each file
//! is a module.

// Helpers shared by the modules.
mod common;

// The test files.
mod live_pulse;
mod live_reload;
mod match_live;
