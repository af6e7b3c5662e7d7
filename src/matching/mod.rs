//! Reference matching on stems (`stemgraph match`): measures a reference track and the
//! recipe's master over their loudest sections and proposes an editable recipe change, per
//! stem and on the master, as a Lua override file with a reason on every line.
//!
//! The steps, a module each:
//! [`scan`] (loudness over time, peaks, clipping) → [`select`] (the loudest sections, or a
//! section's) → [`measure`] (renders of the master and of each stem's contribution, band powers
//! with the stems' cross terms, [`spectra`] on a [`grid`]) → [`fit`] (stem gains, [`eq`] bands
//! and width fitted together by [`lm`]) → [`dynamics`] (loudness target, limiter, width) →
//! [`proposal`] (what to change and why; applied to a session for the check render) →
//! [`sections`] (per-section values as automation, each section paired by [`pairing`] with
//! the parts of the references that resemble it) → [`writer`] (the override file) and
//! [`report`] (JSON, Markdown; a PNG with feature `plot`). [`reference`] reads and checks the
//! references, [`routing`] finds each stem's sends into the mix.
//!
//! Everything here is control side: it renders with [`crate::render`] and never touches the
//! recipe file (`--write` writes a separate file, atomically).

pub mod dynamics;
pub mod eq;
pub mod fit;
pub mod grid;
pub mod kinds;
pub mod lm;
pub mod measure;
pub mod pairing;
#[cfg(feature = "plot")]
pub mod plot;
pub mod proposal;
pub mod reference;
pub mod report;
pub mod routing;
pub mod run;
pub mod scan;
pub mod sections;
pub mod select;
pub mod spectra;
pub mod writer;

pub use run::{propose, MatchOptions};

use std::path::PathBuf;

/// Why a match could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// A file could not be read.
    #[error(transparent)]
    Decode(Box<crate::io::decode::DecodeError>),
    /// A render (the master, the stems' contributions, the check) failed.
    #[error(transparent)]
    Render(Box<crate::render::RenderError>),
    /// An output could not be written.
    #[error(transparent)]
    Output(Box<crate::io::atomic::OutputError>),
    /// A reference (or the master) cannot be matched.
    #[error("cannot match {}: {reason}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The recipe's graph does not allow a per-stem proposal.
    #[error("{0}")]
    Routing(String),
    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The proposal could not be applied to the session.
    #[error("applying the proposal: {0}")]
    Apply(String),
    /// Something that should not happen (an FFT of the wrong size).
    #[error("internal error: {0}")]
    Internal(String),
}

// The errors of the layers below, boxed: they are large, and every result of this module
// carries the enum.
impl From<crate::io::decode::DecodeError> for MatchError {
    fn from(e: crate::io::decode::DecodeError) -> Self {
        MatchError::Decode(Box::new(e))
    }
}

impl From<crate::render::RenderError> for MatchError {
    fn from(e: crate::render::RenderError) -> Self {
        MatchError::Render(Box::new(e))
    }
}

impl From<crate::io::atomic::OutputError> for MatchError {
    fn from(e: crate::io::atomic::OutputError) -> Self {
        MatchError::Output(Box::new(e))
    }
}
