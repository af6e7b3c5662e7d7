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
    /// Its move on the timeline in samples at the session rate (fractional; positive = later),
    /// applied by the stem readers (see [`crate::io::offset`]).
    pub offset_samples: f64,
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

/// The container and codec of a deliverable (defined with the writers, [`crate::io::format`]).
pub use crate::io::format::FileFormat;

/// One file to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Deliverable {
    /// File name, relative to the output folder; may use `{title}`.
    pub file: String,
    /// Container and codec.
    pub format: FileFormat,
    /// Tags written into the file besides TITLE and ARTIST (FLAC: Vorbis comments), in order.
    pub tags: Vec<(String, String)>,
    /// The output node it is made from.
    pub output: Option<String>,
    /// Bits per sample: 16, 24, or 32 (float).
    pub bits: u32,
    /// Sample rate; the session's when `None`.
    pub sample_rate: Option<u32>,
    /// Dither applied before quantization.
    pub dither: DitherKind,
    /// True-peak ceiling of this file's safety limiter (the session's when `None`).
    pub ceiling_dbtp: Option<f64>,
    /// Seed of the dither noise (renders are reproducible).
    pub seed: u64,
    /// Seconds of silence before the song.
    pub lead_silence_s: f64,
    /// Seconds of silence after the song.
    pub tail_silence_s: f64,
    /// What a WAV file carries besides its tags (`bext`, `iXML`).
    pub bwf: BwfDecl,
    /// Encoder settings of a lossy deliverable (MP3, Opus): bit rate and the codec-safe solve.
    pub lossy: Option<crate::io::lossy::LossySettings>,
    /// Where the recipe declared it.
    pub origin: Option<Origin>,
}

/// The broadcast-WAV chunks of a WAV deliverable (`wav { bext = { … }, ixml = true }`); FLAC
/// ignores them.
#[derive(Debug, Clone, PartialEq)]
pub struct BwfDecl {
    /// Whether the file has a `bext` chunk (on by default).
    pub bext: bool,
    /// Description (default: "TITLE - ARTIST").
    pub description: Option<String>,
    /// Originator (default: the metadata's `originator`, else "stemgraph").
    pub originator: Option<String>,
    /// OriginatorReference (default: blank).
    pub originator_reference: Option<String>,
    /// Whether the file has an `iXML` chunk (off by default).
    pub ixml: bool,
}

impl Default for BwfDecl {
    fn default() -> Self {
        BwfDecl {
            bext: true,
            description: None,
            originator: None,
            originator_reference: None,
            ixml: false,
        }
    }
}

/// A song as a recipe describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Song title.
    pub title: String,
    /// Artist, if given.
    pub artist: Option<String>,
    /// Album, track, ISRC, UPC and the rest (see [`crate::metadata`]).
    pub metadata: crate::metadata::Metadata,
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
    /// Integrated loudness the master is driven to, if any.
    pub target_lufs: Option<f64>,
    /// How far from `target_lufs` the master may land and still count as reaching it, LU
    /// ([`crate::render::target::DEFAULT_TOLERANCE_LU`] when `None`).
    pub target_tolerance_lu: Option<f64>,
    /// True-peak ceiling of the master and every deliverable.
    pub ceiling_dbtp: Option<f64>,
    /// Trims and fades.
    pub edits: EditsDecl,
    /// How the end of the tail after the song is found.
    pub tail: TailSettings,
    /// Automation points not yet placed on the sample grid (times in seconds), by parameter id.
    pub automation: Vec<AutomationDecl>,
    /// Every file the recipe loaded (the recipe itself first), for watching and hashing.
    pub loaded_files: Vec<PathBuf>,
    /// Named sections of the song (`session { sections = { chorus = "1:12" } }`), as
    /// (name, start in seconds of song time), sorted by start.
    pub sections: Vec<(String, f64)>,
}

/// A fade as written: length in seconds and shape name.
#[derive(Debug, Clone, PartialEq)]
pub struct FadeDecl {
    /// Length in seconds.
    pub seconds: f64,
    /// Curve.
    pub shape: crate::automation::FadeShape,
}

/// Song edits as written (seconds of song time); the render resolves them into frames
/// (`EditsDecl::resolve`, in `render/edits.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EditsDecl {
    /// Start trim.
    pub start_s: Option<f64>,
    /// End trim (the song plus its tail when absent).
    pub finish_s: Option<f64>,
    /// Fade in.
    pub fade_in: Option<FadeDecl>,
    /// Fade out.
    pub fade_out: Option<FadeDecl>,
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

/// Why a `--set KEY=VALUE` override was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    /// Not `KEY=VALUE` with a number.
    #[error("`{0}` is not KEY=VALUE with a numeric value (e.g. --set vocals.gain_db=1.5)")]
    Syntax(String),
    /// No session field or parameter of that name.
    #[error("--set {key}: no session field or parameter `{key}`{}", crate::suggest::did_you_mean(.suggestion))]
    UnknownKey {
        /// The key.
        key: String,
        /// The closest valid key.
        suggestion: Option<String>,
    },
}

/// Session fields `--set` can change.
pub const SETTABLE_FIELDS: &[&str] = &[
    "sample_rate_hz",
    "master.target_lufs",
    "master.ceiling_dbtp",
];

impl Session {
    /// Applies one `--set KEY=VALUE`: a session field (`master.target_lufs`) or a parameter of the
    /// graph (`vocals.gain_db`, `master.eq.1.gain_db`, `master.send.vocals.gain_db`). The value is
    /// range-checked when the graph compiles.
    pub fn apply_override(&mut self, assignment: &str) -> Result<(), OverrideError> {
        let (key, value) = assignment
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| OverrideError::Syntax(assignment.to_string()))?;
        let value: f64 = value
            .parse()
            .map_err(|_| OverrideError::Syntax(assignment.to_string()))?;
        match key {
            "sample_rate_hz" => {
                self.sample_rate = Some(value as u32);
                return Ok(());
            }
            "master.target_lufs" | "target_lufs" => {
                self.target_lufs = Some(value);
                return Ok(());
            }
            "master.ceiling_dbtp" | "ceiling_dbtp" => {
                self.ceiling_dbtp = Some(value);
                return Ok(());
            }
            _ => {}
        }
        // The longest node id that prefixes the key owns it.
        let node = self
            .graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                key.len() > n.id.len()
                    && key.starts_with(&n.id)
                    && key.as_bytes()[n.id.len()] == b'.'
            })
            .max_by_key(|(_, n)| n.id.len())
            .map(|(i, _)| i);
        let unknown = |this: &Session| OverrideError::UnknownKey {
            key: key.to_string(),
            suggestion: crate::suggest::closest(key, this.known_keys()),
        };
        let Some(index) = node else {
            return Err(unknown(self));
        };
        let node_id = self.graph.nodes[index].id.clone();
        let param = key[node_id.len() + 1..].to_string();
        use crate::graph::NodeKind;
        match &self.graph.nodes[index].kind {
            NodeKind::Source { .. } | NodeKind::Processor { .. } => {
                if !self.known_keys().iter().any(|k| k == key) {
                    return Err(unknown(self));
                }
                if let NodeKind::Source { config, .. } | NodeKind::Processor { config, .. } =
                    &mut self.graph.nodes[index].kind
                {
                    config
                        .entries
                        .insert(param, crate::dsp::ConfigValue::Number(value));
                }
                Ok(())
            }
            NodeKind::Bus { .. } => {
                let from = param
                    .strip_prefix("send.")
                    .and_then(|p| p.strip_suffix(".gain_db"));
                match from.and_then(|f| {
                    self.graph.edges.iter_mut().find(|e| {
                        e.to == node_id && e.from == f && e.port == crate::dsp::Port::Main
                    })
                }) {
                    Some(edge) => {
                        edge.gain_db = value;
                        Ok(())
                    }
                    None => Err(unknown(self)),
                }
            }
            NodeKind::Output { .. } => Err(unknown(self)),
        }
    }

    /// Every key `--set` accepts: session fields and the parameter ids of the graph.
    pub fn known_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = SETTABLE_FIELDS.iter().map(|s| s.to_string()).collect();
        if let Ok(c) =
            crate::graph::compile(&self.graph, crate::graph::CompileOptions::new(48_000.0, 16))
        {
            keys.extend(crate::graph::compile::all_param_ids(&c.schedule));
        }
        keys
    }
}

/// How the end of the tail is found (`session { tail = { ... } }`; `render::tail` uses it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailSettings {
    /// Level under which the output counts as silent, dBFS.
    pub threshold_db: f64,
    /// How long the output must stay under it, seconds.
    pub hold_s: f64,
    /// The longest tail rendered, seconds (the processors' declared tails when `None`).
    pub max_s: Option<f64>,
}

impl Default for TailSettings {
    fn default() -> Self {
        Self {
            threshold_db: DEFAULT_THRESHOLD_DB,
            hold_s: DEFAULT_HOLD_S,
            max_s: None,
        }
    }
}

/// The default silence threshold, dBFS.
pub const DEFAULT_THRESHOLD_DB: f64 = -120.0;
/// The default time the output must stay under it, seconds.
pub const DEFAULT_HOLD_S: f64 = 1.0;
