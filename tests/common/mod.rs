//! Shared test helpers. Every test binary that includes this module runs under the allocation
//! guard: `assert_no_alloc` regions (the engine's `process`) count allocations instead of
//! aborting (its warn mode), and tests assert the count stays zero. [`audio`]: decoding and
//! writing test files, the independent 16× true-peak reference; [`tools`]: external tools
//! (ffmpeg's meter and decoder); [`live`]: the live engine driven block by block; `live_rig`: a
//! song folder and a simulated device for hot-reload tests; [`flac`]: FLAC metadata read as
//! bytes; [`demo`]: demo-synthesizer songs for render tests.
#![allow(dead_code)]

pub mod audio;
#[cfg(feature = "demo")]
pub mod demo;
pub mod flac;
pub mod live;
#[cfg(feature = "live")]
pub mod live_rig;
pub mod tools;

use assert_no_alloc::AllocDisabler;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

/// Runs `f` and returns how many allocations happened inside `assert_no_alloc` regions.
pub fn alloc_violations<T>(f: impl FnOnce() -> T) -> (T, u32) {
    assert_no_alloc::reset_violation_count();
    let r = f();
    (r, assert_no_alloc::violation_count())
}

/// A deterministic pseudo-random generator for test signals (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Uniform in [-1, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// A stereo signal of `n` frames of noise at amplitude `amp`.
pub fn noise(n: usize, amp: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut r = Rng::new(seed);
    (0..2)
        .map(|_| (0..n).map(|_| amp * r.next_f64()).collect())
        .collect()
}

/// A stereo sine of `n` frames.
pub fn sine(n: usize, freq: f64, amp: f64, fs: f64) -> Vec<Vec<f64>> {
    let ch: Vec<f64> = (0..n)
        .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / fs).sin())
        .collect();
    vec![ch.clone(), ch]
}
