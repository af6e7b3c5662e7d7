//! Telemetry: values a processor publishes from the audio thread without locks.
//!
//! A processor that has something to report (gain reduction, a correlation readout) owns an
//! `Arc<Telemetry>` with a fixed set of named slots, created on the control side. `process()`
//! stores into the slots with relaxed atomics; meters, reports and the live display read them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed set of named `f64` readings shared between the audio side and the control side.
#[derive(Debug)]
pub struct Telemetry {
    names: &'static [&'static str],
    values: Box<[AtomicU64]>,
    blocks: BlockSums,
}

/// The running sums behind [`BlockStatistics`] (one writer: the thread running the processor).
#[derive(Debug, Default)]
struct BlockSums {
    max: AtomicU64,
    active_sum: AtomicU64,
    active_frames: AtomicU64,
    frames: AtomicU64,
}

/// A reading of at least this many dB counts as active in [`BlockStatistics`] (gain reduction).
pub const ACTIVE_GAIN_REDUCTION_DB: f64 = 0.1;

/// Statistics of the readings published with [`Telemetry::set_block`], block by block, as the
/// processor ran them: they do not depend on when (or from which thread) anyone looks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BlockStatistics {
    /// The largest reading (0 if none was positive).
    pub max: f64,
    /// Frame-weighted sum of the readings of blocks at or above [`ACTIVE_GAIN_REDUCTION_DB`].
    pub active_sum: f64,
    /// Frames of those blocks.
    pub active_frames: u64,
    /// Frames of every block published.
    pub frames: u64,
}

impl Telemetry {
    /// Creates the slots, all at 0.
    pub fn new(names: &'static [&'static str]) -> Self {
        Self {
            names,
            values: names
                .iter()
                .map(|_| AtomicU64::new(0f64.to_bits()))
                .collect(),
            blocks: BlockSums::default(),
        }
    }

    /// Publishes the reading of slot `index` for a block of `frames` frames and adds it to the
    /// block statistics ([`Self::block_statistics`]). A processor uses it for one slot, its gain
    /// reduction. Real-time safe; one thread at a time (the one running the processor).
    #[inline]
    pub fn set_block(&self, index: usize, value: f64, frames: usize) {
        self.set(index, value);
        if !value.is_finite() {
            return;
        }
        let b = &self.blocks;
        let add_f64 = |a: &AtomicU64, v: f64| {
            a.store(
                (f64::from_bits(a.load(Ordering::Relaxed)) + v).to_bits(),
                Ordering::Relaxed,
            )
        };
        let frames = frames as u64;
        b.frames.fetch_add(frames, Ordering::Relaxed);
        if value > f64::from_bits(b.max.load(Ordering::Relaxed)) {
            b.max.store(value.to_bits(), Ordering::Relaxed);
        }
        if value >= ACTIVE_GAIN_REDUCTION_DB {
            b.active_frames.fetch_add(frames, Ordering::Relaxed);
            add_f64(&b.active_sum, value * frames as f64);
        }
    }

    /// The statistics of every block published with [`Self::set_block`] so far.
    pub fn block_statistics(&self) -> BlockStatistics {
        let b = &self.blocks;
        BlockStatistics {
            max: f64::from_bits(b.max.load(Ordering::Relaxed)),
            active_sum: f64::from_bits(b.active_sum.load(Ordering::Relaxed)),
            active_frames: b.active_frames.load(Ordering::Relaxed),
            frames: b.frames.load(Ordering::Relaxed),
        }
    }

    /// The slot names, in index order.
    pub fn names(&self) -> &'static [&'static str] {
        self.names
    }

    /// Publishes a reading. Real-time safe.
    #[inline]
    pub fn set(&self, index: usize, value: f64) {
        self.values[index].store(value.to_bits(), Ordering::Relaxed);
    }

    /// The latest reading of slot `index`.
    pub fn get(&self, index: usize) -> f64 {
        f64::from_bits(self.values[index].load(Ordering::Relaxed))
    }

    /// The latest reading of the slot called `name`, if there is one.
    pub fn get_named(&self, name: &str) -> Option<f64> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| self.get(i))
    }
}

/// The conventional slot of a dynamics processor: gain reduction in dB (positive = reducing),
/// the largest over the last block.
pub const GAIN_REDUCTION_DB: &str = "gain_reduction_db";
