//! The audio side: running a compiled [`Schedule`] block by block, swapping schedules and
//! retiring old ones.
//!
//! One engine serves offline renders, live playback, tests and benches: each of them fills the
//! schedule's inputs, calls [`Schedule::process`], and reads its outputs. Schedules are made
//! with a [`ScheduleBuilder`] (the graph compiler is its main user); the engine knows nothing of
//! graphs, recipes, renders or scripts.
//!
//! # Realtime rules
//! Nothing here allocates, locks or does I/O or runs Lua while processing.

mod batches;
pub mod builder;
pub mod live;
pub mod parallel;
pub mod params;
pub mod schedule;
pub mod swap;

pub use builder::{ScheduleBuilder, ScheduleError};
pub use schedule::{BusInput, RtKind, RtNode, Schedule, Step, Tap};
pub use swap::{NodeHandover, SwapPlan};
