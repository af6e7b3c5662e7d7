//! The processors and the contract they share.
//!
//! Every processor implements one object-safe trait, [`Processor`], and is stored as
//! `Box<dyn Processor>` in a compiled schedule. Its life has three phases:
//!
//! 1. **build** (control side): the registry ([`registry`]) turns a node's configuration from the
//!    recipe into a processor whose channel counts and parameter list are fixed from then on
//!    (each kind declares itself with the contract in [`kind`]);
//! 2. **prepare** (control side, may allocate): sample rate and largest block are known;
//! 3. **process / reset** (audio side): never allocate, lock, do I/O or panic;
//! 4. at a hot reload, a processor that continues an old one takes its signal state over
//!    ([`Processor::take_state`], [`state`]).
//!
//! # Real-time rules
//! `process()`, `reset()` and `take_state()` run on the audio thread. They must not allocate, take a lock, touch a
//! file or call into Lua. Tests run them under `assert_no_alloc`.
//!
//! Signals are planar `f64` ([`buffer`]). A processor works **in place**: the engine hands it a
//! block whose first `input_channels` channels hold the input, and it leaves its output (of
//! [`Processor::output_channels`] channels) in the same block.

pub mod buffer;
pub mod config;
pub mod crossover;
pub mod delay;
pub mod dither;
pub mod dynamics;
pub mod eq;
pub mod filters;
pub mod gain;
pub mod kind;
pub mod latency_delay;
pub mod limiter;
pub mod oversample;
pub mod pan;
pub mod param;
pub mod plugin;
pub mod registry;
pub mod saturation;
pub mod simd;
pub mod standalone;
pub mod state;
pub mod telemetry;
pub mod width;

/// Test signals shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_signal {
    /// Uniform noise in [−0.5, 0.5) from a xorshift64 generator seeded with `seed` (nonzero):
    /// the same sequence on every run and machine.
    pub(crate) fn noise(seed: u64) -> impl FnMut() -> f64 {
        let mut r = seed;
        move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }
}

use std::any::Any;
use std::sync::Arc;

pub use buffer::{AudioBuffer, AudioMut, AudioRef, Sample};
pub use config::{ConfigValue, ProcessorConfig};
pub use param::{ParamBlock, ParamInfo, ParamValues, Scale, Unit};
pub use state::Handover;
pub use telemetry::Telemetry;

/// What a processor learns in `prepare`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSpec {
    /// Sample rate in Hz.
    pub sample_rate: f64,
    /// The largest block `process` will be given.
    pub max_block: usize,
    /// Channels of the input signal.
    pub input_channels: usize,
}

/// Input ports a processor may have. Every processor has `Main`; some accept a side-chain `Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    /// The signal processed.
    Main,
    /// A side-chain signal that drives the processor's detector (never heard).
    Key,
}

impl Port {
    /// The port's name in recipes.
    pub fn name(self) -> &'static str {
        match self {
            Port::Main => "in",
            Port::Key => "key",
        }
    }
}

/// The one contract of every processor.
pub trait Processor: Send {
    /// The registry name of this kind (`gain`, `eq`, …).
    fn kind(&self) -> &'static str;

    /// The parameters, in the index order of the [`ParamBlock`] given to `process`.
    fn params(&self) -> &[ParamInfo];

    /// Channels this processor outputs (fixed at construction).
    fn output_channels(&self) -> usize;

    /// Allocates what processing needs. Called on the control side before the first block.
    fn prepare(&mut self, spec: &ProcessSpec);

    /// Clears all signal state (filter memories, envelopes, delay lines). Real-time safe.
    fn reset(&mut self);

    /// Processes one block in place. `key` is the side-chain signal when one is connected.
    ///
    /// # Realtime safety
    /// Must not allocate, lock, do I/O or panic.
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    );

    /// Whether [`Processor::process_gained`] (and the batch kernel, see [`BatchItem::gain`])
    /// folds the gain into the processor's own last pass over the block. The engine then runs
    /// a constant gain stage right after this processor (on its output, read by nothing
    /// else in between) as part of it: one pass over the block fewer.
    fn folds_gain(&self) -> bool {
        false
    }

    /// [`Processor::process`], then every output sample multiplied by `gain`: the bits of the
    /// two passes, each output `y` becoming `y·gain` (so `gain` = 1 changes nothing). The
    /// default makes the two passes; a processor that [`folds_gain`](Processor::folds_gain)
    /// multiplies where it writes its output.
    ///
    /// # Realtime safety
    /// As `process`.
    fn process_gained(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
        gain: f64,
    ) {
        self.process(audio, key, params);
        if gain != 1.0 {
            audio.for_each_channel(|_, ch| ch.iter_mut().for_each(|x| *x *= gain));
        }
    }

    /// Delay this processor adds to the signal, in samples (fixed after `prepare`).
    fn latency(&self) -> usize {
        0
    }

    /// How long the output may ring on after the input stops, in samples (delay repeats).
    fn tail(&self) -> usize {
        0
    }

    /// Whether a side-chain `key` input may be connected.
    fn accepts_key(&self) -> bool {
        false
    }

    /// Readings this processor publishes (gain reduction…), if any.
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        None
    }

    /// Something `prepare` found worth telling the user (a setting not valid at this sample
    /// rate, and what it did instead). The graph compiler reports it as a warning; processors
    /// never print.
    fn warning(&self) -> Option<&str> {
        None
    }

    /// Takes over the signal state of `old`, the processor this one replaces at a hot reload
    /// (same kind, channels, parameter list, latency and structural options): by
    /// [`Handover::Move`] when `old` is discarded after (only parameter values changed), by
    /// [`Handover::Copy`] when `old` goes on playing in a crossfade (the graph's structure
    /// changed). Afterwards this processor goes on exactly as `old` would have. Returns whether it
    /// did; the default (a processor without signal state) keeps nothing. Stateful processors
    /// implement it with [`hand_over!`](crate::hand_over) (see [`state`]).
    ///
    /// # Realtime safety
    /// Runs on the audio thread at a swap: must not allocate or free (a move swaps, a copy goes
    /// into buffers of the same sizes, which [`state::SignalState::fits`] checks first).
    fn take_state(&mut self, old: &mut dyn Processor, how: Handover) -> bool {
        let _ = (old, how);
        false
    }

    /// A kernel that runs several processors of this kind side by side (see [`BatchKernel`]),
    /// for the engine to use on independent nodes of the same kind (the strips of the stems).
    /// The default has none: such nodes run one after the other.
    fn batch_kernel(&self) -> Option<BatchKernel> {
        None
    }

    /// Access for downcasting.
    fn as_any(&self) -> &dyn Any;

    /// Access for downcasting (in [`Processor::take_state`] and the batch kernels).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// The most processors the engine hands a [`BatchKernel`] at once.
pub const MAX_BATCH: usize = 8;

/// One processor of a batch with its block (in place, no key) and its parameters.
pub struct BatchItem<'a> {
    /// The processor (of the kernel's kind).
    pub processor: &'a mut dyn Processor,
    /// Its block, processed in place.
    pub audio: AudioMut<'a>,
    /// Its parameters for this block.
    pub params: ParamBlock<'a>,
    /// A gain its output is multiplied by (1: none), as [`Processor::process_gained`] does; the
    /// engine hands a gain other than 1 only to kinds that [`Processor::folds_gain`].
    pub gain: f64,
}

/// A batched processor as its concrete kind (the kernel's own type).
///
/// # Panics
/// If the processor is not a `T` (the engine batches processors of one kind only).
pub fn batch_kind<T: 'static>(processor: &mut dyn Processor) -> &mut T {
    processor
        .as_any_mut()
        .downcast_mut::<T>()
        .expect("a batch holds processors of its kernel's kind")
}

/// Processes a batch of independent processors of one kind (every slot `Some`, at most
/// [`MAX_BATCH`]) side by side: several signals in one pass, so that their recursions overlap
/// in the processor instead of each waiting on its own. It must leave every processor and every
/// block exactly as calling [`Processor::process`] on each (without a key) would, bit for bit;
/// items it cannot take together it processes one by one.
///
/// # Realtime safety
/// As `process`: no allocation, lock, I/O or panic.
pub type BatchKernel = fn(items: &mut [Option<BatchItem<'_>>]);

/// Implements [`Processor::as_any`] and [`Processor::as_any_mut`] for a processor without signal
/// state (it keeps the default [`Processor::take_state`], which hands nothing over).
#[macro_export]
macro_rules! no_signal_state {
    () => {
        fn as_any(&self) -> &dyn ::std::any::Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn ::std::any::Any {
            self
        }
    };
}

/// Whether two processors have the same kind, channels, parameter list and latency.
pub fn same_shape(a: &dyn Processor, b: &dyn Processor) -> bool {
    a.kind() == b.kind()
        && a.output_channels() == b.output_channels()
        && a.params() == b.params()
        && a.latency() == b.latency()
}
