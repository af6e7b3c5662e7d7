//! A hot swap as the audio side receives it: the new schedule, and which of its nodes continue
//! which nodes of the old one, all by index.
//!
//! The control side works the plan out (`graph::diff`): ids, kinds and parameter names are
//! compared there, so that taking over ([`super::Schedule::take_over`]) does no search, string
//! comparison or allocation on the audio thread.

use super::Schedule;

/// One node of the new schedule that continues a node of the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHandover {
    /// Index of the node in the new schedule.
    pub new: usize,
    /// Index of the node it continues in the old schedule.
    pub old: usize,
    /// Parameters that continue (and glide to a changed value): (slot in the new node, slot in
    /// the old node).
    pub params: Vec<(usize, usize)>,
}

/// A schedule on its way to the audio side, with what it needs to take over.
pub struct SwapPlan {
    /// The new schedule.
    pub schedule: Box<Schedule>,
    /// The nodes that continue old nodes (their state and parameters carry over).
    pub handovers: Vec<NodeHandover>,
    /// Crossfade length in frames (0: a seamless take-over, nothing structural changed).
    pub crossfade_frames: usize,
    /// A number identifying this swap in the engine's log.
    pub generation: u64,
}
