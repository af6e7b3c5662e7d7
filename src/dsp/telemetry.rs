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
