//! Live playback with hot reload: what `stemgraph play` runs.
//!
//! ```text
//!  recipe.lua ─(notify)─► reload ──load+compile+plan──► LiveControl ═══► LiveEngine ─┐
//!                                   (control thread)        (rtrb)                     │
//!  stems ─► streamer thread ══ chunks (rtrb) ══════════════════════════► AudioSide ◄──┘
//!                                                                   (device callback)
//!  keys ─► transport ══ commands (rtrb) + latest-value atomics ══════════►   │
//!  display ◄── meters thread ◄══ output copy (rtrb) ═════════════════════════┘
//!          ◄── loudness thread (offline measurement for the A/B match)
//! ```
//!
//! Who owns what:
//! - [`audio::AudioSide`] is the body of the device callback: it pops stem chunks, runs the
//!   [`LiveEngine`](crate::engine::live::LiveEngine), mutes and solos, switches A/B, declicks
//!   pauses and seeks, and copies the output to the meters. **It never allocates, locks, does
//!   I/O or runs Lua**: everything it touches was allocated before the stream started or is
//!   handed over through lock-free queues, and everything it gives up goes back through them.
//! - [`streamer`] decodes the stems ahead into preallocated chunks on its own thread.
//! - [`control::Controller`] is the control side: hot reload ([`reload`]), the transport
//!   ([`transport`]), garbage collection of old schedules, engine events and the reload log.
//! - [`meters`] and [`loudness`] measure on their own threads, never on the audio thread.
//! - [`output`] opens the device (cpal), asks for real-time priority ([`realtime`]) and counts
//!   the device's dropouts; [`xruns`] accounts for every underrun, once. [`player`] runs the interactive loop and the display
//!   ([`tui`], or [`status`] lines with `--no-tui`), which show [`snapshot`]s and log
//!   [`events`].
//!
//! Threads other than the callback may allocate and block; the callback waits for nobody.

pub mod audio;
pub mod control;
pub mod events;
pub mod loudness;
pub mod meters;
pub mod output;
pub mod player;
pub mod realtime;
pub mod resample;
pub mod shared;
pub mod snapshot;
pub mod status;
pub mod streamer;
pub mod transport;
pub mod tui;
pub mod xruns;

pub mod reload;

use std::path::PathBuf;

/// Most stems a live session can have (engine inputs and chunk slots are allocated for this many
/// so that a reload can add stems without reallocating on the audio side).
pub const STEM_CAPACITY: usize = 16;

/// Length of the declick ramps (pause, seek, loop wrap, mute, solo), in milliseconds.
pub const DECLICK_MS: f64 = 5.0;

/// Length of the A/B crossfade between the master and the reference, in milliseconds.
pub const AB_FADE_MS: f64 = 10.0;

/// Output latency the live engine reserves beyond the first graph's own (milliseconds), so that
/// a reload adding a lookahead processor (a limiter) does not shift the output in time.
pub const LATENCY_HEADROOM_MS: f64 = 10.0;

/// Why live playback could not start, or why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The recipe did not load (its message carries the file and line).
    #[error(transparent)]
    Script(Box<crate::script::ScriptError>),
    /// The graph does not validate (its message carries the file and line).
    #[error(transparent)]
    Graph(Box<crate::graph::GraphError>),
    /// A stem or the reference could not be read.
    #[error("{}{source}", crate::graph::spec::at(.origin))]
    Decode {
        /// Where the recipe declared the file.
        origin: Option<crate::graph::Origin>,
        /// The cause.
        source: crate::io::decode::DecodeError,
    },
    /// The recipe asks for something live playback cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// No output device, or it refused every configuration.
    #[error("audio output: {0}")]
    Device(String),
    /// The file watcher could not start.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: notify::Error,
    },
    /// The terminal could not be set up.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

impl From<crate::script::ScriptError> for LiveError {
    fn from(e: crate::script::ScriptError) -> Self {
        LiveError::Script(Box::new(e))
    }
}

impl From<crate::graph::GraphError> for LiveError {
    fn from(e: crate::graph::GraphError) -> Self {
        LiveError::Graph(Box::new(e))
    }
}

impl From<crate::render::RenderError> for LiveError {
    fn from(e: crate::render::RenderError) -> Self {
        use crate::render::RenderError;
        match e {
            RenderError::Decode(source) => LiveError::Decode {
                origin: None,
                source,
            },
            RenderError::Graph(g) => g.into(),
            other => LiveError::Unsupported(other.to_string()),
        }
    }
}
