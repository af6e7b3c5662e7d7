//! The audio side: running a compiled [`Schedule`] block by block.
//!
//! One engine serves offline renders, live playback, tests and benches: each of them fills the
//! schedule's inputs, calls [`Schedule::process`], and reads its outputs.
//!
//! # Realtime rules
//! Nothing here allocates, locks, does I/O or runs Lua while processing.

pub mod live;
pub mod offline;
pub mod parallel;
pub mod params;
pub mod schedule;
pub mod swap;

pub use schedule::{RtKind, RtNode, Schedule, Tap};
