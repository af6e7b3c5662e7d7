//! Running a schedule offline, on one thread or two.
//!
//! - [`runner`]: the offline loop over [`BlockSource`]s into a sink, latency-trimmed, with the
//!   tail; with two threads, profiled first, then split;
//! - [`split`]: the split layout, a schedule cut into a worker half and a main half that
//!   together give the same bits as the whole;
//! - [`handover`]: the copies that hand blocks between the threads;
//! - [`balance`]: which units the worker takes, chosen from measured costs and rebalanced
//!   between trial stretches.
//!
//! This is engine code: it knows schedules, not files, graphs or renders. What it reads and
//! where its output goes come in as a trait and a closure.

pub mod balance;
pub mod handover;
pub mod runner;
pub mod split;

pub use runner::{run, BlockSource, Interrupted, RunSettings};
pub use split::{join, split, unit_deps, units, valid, Crossings, Split};
