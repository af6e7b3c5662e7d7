//! `Session`: everything a recipe declares about one song, as plain data.
//!
//! The script layer produces it; the render, check and play commands consume it.

use crate::graph::{GraphSpec, Origin};
use std::path::PathBuf;

/// One stem file.
#[derive(Debug, Clone, PartialEq)]
pub struct StemDecl {
    /// Its name (the id of its source node).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Channels it is played on (1 or 2).
    pub channels: usize,
    /// Where the recipe declared it.
    pub origin: Option<Origin>,
}

/// Word-length reduction noise for a deliverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DitherKind {
    /// No dither (rounding only).
    None,
    /// Triangular-PDF dither, ±1 LSB.
    Tpdf,
}

/// One file to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Deliverable {
    /// File name, relative to the output folder; may use `{title}`.
    pub file: String,
    /// The output node it is made from.
    pub output: Option<String>,
    /// Bits per sample: 16, 24, or 32 (float).
    pub bits: u32,
    /// Sample rate; the session's when `None`.
    pub sample_rate: Option<u32>,
    /// Dither applied before quantization.
    pub dither: DitherKind,
    /// Where the recipe declared it.
    pub origin: Option<Origin>,
}

/// A song as a recipe describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Song title.
    pub title: String,
    /// Artist, if given.
    pub artist: Option<String>,
    /// The recipe file.
    pub recipe: PathBuf,
    /// Sample rate fixed by the recipe; otherwise the most common stem rate.
    pub sample_rate: Option<u32>,
    /// The stems, in declaration order (engine input `i` is `stems[i]`).
    pub stems: Vec<StemDecl>,
    /// The reference mix, if given.
    pub reference: Option<PathBuf>,
    /// The processing graph.
    pub graph: GraphSpec,
    /// Files to produce.
    pub deliverables: Vec<Deliverable>,
    /// Automation points not yet placed on the sample grid (times in seconds), by parameter id.
    pub automation: Vec<AutomationDecl>,
    /// Every file the recipe loaded (the recipe itself first), for watching and hashing.
    pub loaded_files: Vec<PathBuf>,
}

/// One breakpoint as written: time in seconds, value, shape name.
#[derive(Debug, Clone, PartialEq)]
pub struct PointDecl {
    /// Time in seconds of song time.
    pub seconds: f64,
    /// Value.
    pub value: f64,
    /// Shape of the segment that follows.
    pub shape: crate::automation::Shape,
}

/// An automation curve as written, before the sample rate is known.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomationDecl {
    /// Parameter id.
    pub param: String,
    /// Breakpoints.
    pub points: Vec<PointDecl>,
    /// Where it was written.
    pub origin: Option<Origin>,
}

impl Session {
    /// The graph with its automation placed on the sample grid of `sample_rate`.
    pub fn graph_at(&self, sample_rate: f64) -> GraphSpec {
        let mut g = self.graph.clone();
        for a in &self.automation {
            let points = a
                .points
                .iter()
                .map(|p| crate::automation::Breakpoint {
                    pos: crate::units::seconds_to_samples(p.seconds, sample_rate),
                    value: p.value,
                    shape: p.shape,
                })
                .collect();
            if let Some(curve) = crate::automation::Curve::new(points) {
                g.automation.push(crate::graph::AutomationSpec {
                    param: a.param.clone(),
                    curve,
                    origin: a.origin.clone(),
                });
            }
        }
        g
    }

    /// The folder the recipe is in (relative paths in it are resolved from there).
    pub fn base_dir(&self) -> PathBuf {
        self.recipe.parent().map(PathBuf::from).unwrap_or_default()
    }
}
