//! Render reports: what a render did and measured, written as `report.json` and `report.md`
//! beside the deliverables.
//!
//! This module owns [`RenderReport`] (its JSON form is described by `docs/report.schema.json`
//! and `docs/reports.md`), [`build_report`] (hashes of the inputs, the meters collected during
//! the render, and every deliverable analysed as its file decodes, i.e. after its own
//! sample-rate conversion, dither and quantization: measured from its samples as they were
//! written) and [`write_report`]. The collectors the render loop
//! drives are in [`collect`], the cache of stem hashes and meters in [`stem_cache`], and the
//! render's report stage in `stage`.
//!
//! Reports are made to be diffed between two versions of a recipe: keys are sorted, numbers
//! are rounded to fixed decimals, paths are relative to the recipe's folder or the output
//! folder, and there is no timestamp; the one field that changes from run to run is
//! `run.render_seconds` (with `run.realtime_factor`).

pub mod collect;
mod hash;
mod markdown;
mod sha_lanes;
mod stage;
pub mod stem_cache;

pub use collect::{
    CollectedMeters, GainReduction, MeterTap, NodeMeters, NodeTaps, ReportCollector,
};
pub use hash::{sha256_file, sha256_files};
pub(super) use stage::finish;
pub use stem_cache::{CachedStem, StemCache};

use super::deliver::DeliveredFile;
use crate::analysis::analyze::{analyze_with, AnalyzeError, AnalyzeOptions, FileAnalysis};
use crate::analysis::check::NullTest;
use crate::analysis::json;
use crate::graph::spec::NodeKind;
use crate::io::atomic::{AtomicFile, OutputError};
use crate::session::{DitherKind, Session};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the report's layout; bumped when fields change meaning or go away.
pub const REPORT_SCHEMA_VERSION: u32 = 1;
/// File name of the JSON report.
pub const REPORT_JSON: &str = "report.json";
/// File name of the Markdown report.
pub const REPORT_MD: &str = "report.md";

/// Why a report could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An input could not be read for hashing.
    #[error("cannot read {} to hash it: {source}", path.display())]
    Hash {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A deliverable could not be analysed.
    #[error(transparent)]
    Analyze(#[from] AnalyzeError),
    /// A report file could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The report could not be turned into JSON.
    #[error("cannot serialize the render report: {0}")]
    Json(#[from] serde_json::Error),
}

/// A file and its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HashedFile {
    /// Relative to the recipe's folder (inputs) or the output folder (deliverables) when
    /// inside it; as given otherwise. Always with `/` separators.
    pub path: String,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Which program made the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineInfo {
    /// `stemgraph`.
    pub name: String,
    /// The crate version.
    pub version: String,
    /// Which build of the hot loops ran: `avx2+fma`, `avx2` or `portable`
    /// ([`crate::dsp::simd`]).
    pub simd: String,
}

/// Settings the render ran with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderSettings {
    /// Session sample rate, Hz.
    pub sample_rate_hz: u32,
    /// Song length (the longest stem), seconds.
    #[serde(serialize_with = "json::ratio")]
    pub song_duration_s: f64,
    /// Latency of the graph, trimmed from the outputs, samples.
    pub latency_samples: usize,
    /// Tail rendered after the song, samples.
    pub tail_samples: usize,
    /// Integrated loudness the recipe asks for, LUFS.
    #[serde(serialize_with = "json::opt_db")]
    pub target_lufs: Option<f64>,
    /// True-peak ceiling the recipe asks for, dBTP.
    #[serde(serialize_with = "json::opt_db")]
    pub ceiling_dbtp: Option<f64>,
}

/// One stem: its file and its meters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StemReport {
    /// The stem's name (its node id).
    pub name: String,
    /// The stem file.
    pub file: HashedFile,
    /// Meters on the stem's node (after its fader); `None` if it reaches no output.
    pub meters: Option<NodeMeters>,
}

/// One output node of the graph (the master): its meters before the deliverables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputReport {
    /// The output's node id.
    pub id: String,
    /// Meters on the output (as rendered, before conversion, dither and quantization).
    pub meters: NodeMeters,
}

/// One deliverable, measured from the file written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliverableReport {
    /// The file (relative to the output folder) and its hash.
    pub file: HashedFile,
    /// The output node it was made from.
    pub output: String,
    /// Bits per sample (32 = float).
    pub bits: u32,
    /// Sample rate, Hz.
    pub sample_rate_hz: u32,
    /// Dither before quantization: `none` or `tpdf`.
    pub dither: String,
    /// Ceiling of the deliverable's true-peak safety limiter, if one ran, dBTP.
    #[serde(serialize_with = "json::opt_db")]
    pub ceiling_dbtp: Option<f64>,
    /// Largest gain reduction of that safety limiter, dB (0 when it never acted).
    #[serde(serialize_with = "json::db")]
    pub safety_gain_reduction_db: f64,
    /// Samples clipped by the integer conversion.
    pub clipped_samples: u64,
    /// The analysis of the written file (its `path` relative to the output folder).
    pub analysis: FileAnalysis,
    /// A lossy deliverable (MP3, Opus): the encoder and the codec-safe solve (the decoded
    /// file's true peak, the pre-encode change, the encodes made, the decoded loudness).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lossy: Option<super::codec_safe::LossyOutcome>,
}

/// Facts of the run that change every time (kept together so a diff can skip them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// Wall time of the render (not of the report), seconds.
    #[serde(serialize_with = "json::ratio")]
    pub render_seconds: f64,
    /// Song seconds rendered per second of wall time.
    #[serde(serialize_with = "json::ratio")]
    pub realtime_factor: f64,
}

/// A third-party plugin node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginReport {
    /// The node's id.
    pub node: String,
    /// The plugin's URI (LV2) or id (CLAP).
    pub uri: String,
    /// The state file restored into it, with its hash, if the recipe names one.
    pub state: Option<HashedFile>,
}

/// The plugin nodes of `session`'s graph with their state files hashed.
fn plugin_reports(s: &Session, base: &Path) -> Result<Vec<PluginReport>, ReportError> {
    use crate::dsp::ConfigValue;
    let mut out = Vec::new();
    for node in &s.graph.nodes {
        let NodeKind::Processor { kind, config, .. } = &node.kind else {
            continue;
        };
        if kind != crate::dsp::plugin::KIND.name {
            continue;
        }
        let state = match crate::dsp::plugin::state_path(config) {
            Some(p) => Some(hashed(&p, base)?),
            None => None,
        };
        out.push(PluginReport {
            node: node.id.clone(),
            uri: match config.entries.get("lv2").or(config.entries.get("clap")) {
                Some(ConfigValue::Text(t)) => t.clone(),
                _ => String::new(),
            },
            state,
        });
    }
    Ok(out)
}

/// Everything a render reports. See `docs/reports.md`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderReport {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The program.
    pub engine: EngineInfo,
    /// Song title.
    pub title: String,
    /// Artist, if the recipe names one.
    pub artist: Option<String>,
    /// The recipe and its hash.
    pub recipe: HashedFile,
    /// Templates and modules the recipe loaded, with hashes.
    pub recipe_modules: Vec<HashedFile>,
    /// Settings of the render.
    pub settings: RenderSettings,
    /// The stems, in recipe order.
    pub stems: Vec<StemReport>,
    /// The graph's outputs, in recipe order.
    pub outputs: Vec<OutputReport>,
    /// Gain reduction of every dynamics processor that publishes it, in recipe order.
    pub gain_reduction: Vec<GainReduction>,
    /// The null test of the stems against the reference mix, when it was run.
    pub null_test: Option<NullTest>,
    /// How the loudness target was met (drive, limiting cost, passes), when the recipe set one.
    pub loudness_target: Option<super::target::TargetOutcome>,
    /// The files written, in recipe order.
    pub deliverables: Vec<DeliverableReport>,
    /// What each streaming platform's loudness normalization does to the first output (its
    /// integrated loudness and true peak as rendered): gain, loudness as played, whether its
    /// limiter engages. Empty without an output.
    pub platforms: Vec<crate::delivery::platforms::Normalization>,
    /// The third-party plugins of the graph, in recipe order (empty without any).
    pub plugins: Vec<PluginReport>,
    /// Whether a second render came out identical (`render --twice`), when one was asked for.
    pub determinism: Option<crate::render::twice::Determinism>,
    /// The render's warnings.
    pub warnings: Vec<String>,
    /// Wall-clock facts of this run.
    pub run: RunInfo,
}

/// What [`build_report`] needs from a finished render.
pub struct ReportInputs<'a> {
    /// The session rendered.
    pub session: &'a Session,
    /// Session rate, Hz.
    pub sample_rate: u32,
    /// Song length, frames.
    pub song_frames: u64,
    /// Graph latency, samples.
    pub latency: usize,
    /// Tail, samples.
    pub tail: usize,
    /// The deliverables written, in recipe order.
    pub files: &'a [DeliveredFile],
    /// Each deliverable analysed from its file and hashed ([`analyse_deliverable`]), in the
    /// same order.
    pub analyses: Vec<(FileAnalysis, HashedFile)>,
    /// The output folder.
    pub out_dir: &'a Path,
    /// What the [`ReportCollector`] collected.
    pub meters: CollectedMeters,
    /// The null test, if one was run.
    pub null_test: Option<NullTest>,
    /// How the loudness target was met, if the recipe set one.
    pub loudness_target: Option<super::target::TargetOutcome>,
    /// The render's warnings.
    pub warnings: &'a [String],
    /// Wall time of the render, seconds.
    pub render_seconds: f64,
    /// Per stem (recipe order), its SHA-256 and size when already known (from the
    /// [`StemCache`]); the others are hashed.
    pub stem_hashes: Vec<Option<(String, u64)>>,
}

/// `path` relative to `base` when inside it, with `/` separators.
fn relative(path: &Path, base: &Path) -> String {
    let p = path.strip_prefix(base).unwrap_or(path);
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The error of `path` not hashed, for `map_err`.
fn cannot_hash(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Hash {
        path: path.to_path_buf(),
        source,
    }
}

fn hashed(path: &Path, base: &Path) -> Result<HashedFile, ReportError> {
    Ok(hashed_file(
        path,
        base,
        sha256_file(path).map_err(cannot_hash(path))?,
    ))
}

/// The report's entry of the file at `path` (relative to `base`) with its `(sha256, bytes)`.
fn hashed_file(path: &Path, base: &Path, (sha256, bytes): (String, u64)) -> HashedFile {
    HashedFile {
        path: relative(path, base),
        sha256,
        bytes,
    }
}

/// One deliverable analysed (as a listener's decoder reads it) and hashed: what the report says
/// of it. The analysis is the one the render made of its samples as they were written
/// ([`DeliveredFile::measured`], the same figures as decoding the file gives); a file without
/// one (a lossy deliverable) is decoded. Deliverables are independent: the deliver stage runs
/// this for each as soon as its file is complete, on its own thread when the render has two.
pub fn analyse_deliverable(
    f: &DeliveredFile,
    out_dir: &Path,
) -> Result<(FileAnalysis, HashedFile), ReportError> {
    Ok((analysis_of(f, out_dir)?, hashed(&f.wav.path, out_dir)?))
}

/// [`analyse_deliverable`] of every file of `files` on this thread, the files hashed together
/// at the end, two side by side where the CPU hashes two as fast as about 1.2 of one
/// ([`sha256_files`]): for a render on one thread, which completes them one after the other.
pub fn analyse_deliverables(
    files: &[DeliveredFile],
    out_dir: &Path,
) -> Result<Vec<(FileAnalysis, HashedFile)>, ReportError> {
    let paths: Vec<&Path> = files.iter().map(|f| f.wav.path.as_path()).collect();
    files
        .iter()
        .zip(sha256_files(&paths))
        .map(|(f, hash)| {
            let file = hashed_file(
                &f.wav.path,
                out_dir,
                hash.map_err(cannot_hash(&f.wav.path))?,
            );
            Ok((analysis_of(f, out_dir)?, file))
        })
        .collect()
}

/// The analysis of deliverable `f` ([`analyse_deliverable`]), its path relative to `out_dir`.
fn analysis_of(f: &DeliveredFile, out_dir: &Path) -> Result<FileAnalysis, ReportError> {
    let mut analysis = match &f.measured {
        Some(m) => (**m).clone(),
        None => analyze_with(&f.wav.path, &AnalyzeOptions::figures_only())?.figures,
    };
    analysis.path = PathBuf::from(relative(&f.wav.path, out_dir));
    Ok(analysis)
}

/// Builds the report: hashes the recipe, its modules and the stems, and gathers the meters and
/// the deliverables' analyses.
pub fn build_report(inputs: ReportInputs<'_>) -> Result<RenderReport, ReportError> {
    let s = inputs.session;
    let base = s.base_dir();
    let recipe = hashed(&s.recipe, &base)?;
    let mut recipe_modules = Vec::new();
    for f in s.loaded_files.iter().filter(|f| **f != s.recipe) {
        recipe_modules.push(hashed(f, &base)?);
    }
    let meters_of = |id: &str| {
        inputs
            .meters
            .nodes
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, m)| m.clone())
    };
    // The stems not known from the cache, hashed together (two side by side: sha256_files).
    let known = |i: usize| inputs.stem_hashes.get(i).cloned().flatten();
    let unknown: Vec<&Path> = (s.stems.iter().enumerate())
        .filter(|(i, _)| known(*i).is_none())
        .map(|(_, stem)| stem.path.as_path())
        .collect();
    let mut fresh = sha256_files(&unknown).into_iter().zip(unknown);
    let mut stems = Vec::new();
    for (i, stem) in s.stems.iter().enumerate() {
        let hash = match known(i) {
            Some(hash) => hash,
            None => {
                let (hash, path) = fresh.next().expect("one digest per stem not known");
                hash.map_err(cannot_hash(path))?
            }
        };
        let file = hashed_file(&stem.path, &base, hash);
        stems.push(StemReport {
            name: stem.name.clone(),
            file,
            meters: meters_of(&stem.name),
        });
    }
    let outputs: Vec<OutputReport> = s
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Output { .. }))
        .filter_map(|n| {
            meters_of(&n.id).map(|meters| OutputReport {
                id: n.id.clone(),
                meters,
            })
        })
        .collect();
    let mut deliverables = Vec::new();
    for (i, (f, (analysis, file))) in inputs.files.iter().zip(inputs.analyses).enumerate() {
        let dither = match s.deliverables.get(i).map(|d| d.dither) {
            Some(DitherKind::Tpdf) if f.dithered => "tpdf",
            _ => "none",
        };
        deliverables.push(DeliverableReport {
            file,
            output: f.output.clone(),
            bits: f.bits,
            sample_rate_hz: f.sample_rate,
            dither: dither.into(),
            ceiling_dbtp: f.ceiling_dbtp,
            safety_gain_reduction_db: f.safety_gain_reduction_db,
            clipped_samples: f.wav.clipped,
            analysis,
            lossy: f.lossy.clone(),
        });
    }
    let platforms = outputs
        .first()
        .map(|o| {
            crate::delivery::platforms::table(o.meters.integrated_lufs, o.meters.true_peak_dbtp)
        })
        .unwrap_or_default();
    let song_s = inputs.song_frames as f64 / f64::from(inputs.sample_rate.max(1));
    Ok(RenderReport {
        schema_version: REPORT_SCHEMA_VERSION,
        engine: EngineInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            simd: crate::dsp::simd::build_name().into(),
        },
        title: s.title.clone(),
        artist: s.artist.clone(),
        recipe,
        recipe_modules,
        settings: RenderSettings {
            sample_rate_hz: inputs.sample_rate,
            song_duration_s: song_s,
            latency_samples: inputs.latency,
            tail_samples: inputs.tail,
            target_lufs: s.target_lufs,
            ceiling_dbtp: s.ceiling_dbtp,
        },
        stems,
        outputs,
        gain_reduction: inputs.meters.gain_reduction,
        null_test: inputs.null_test,
        loudness_target: inputs.loudness_target,
        platforms,
        deliverables,
        plugins: plugin_reports(s, &base)?,
        determinism: None,
        warnings: inputs.warnings.to_vec(),
        run: RunInfo {
            render_seconds: inputs.render_seconds,
            realtime_factor: song_s / inputs.render_seconds.max(1e-9),
        },
    })
}

/// Decimals every JSON number of a report is rounded to (the fields themselves round dB to
/// 3; this catches the rest, such as the null test's).
const REPORT_DECIMALS: i32 = 4;

/// Rounds every non-integer number in `v` to [`REPORT_DECIMALS`].
fn round_numbers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            if let Some(r) = n
                .as_f64()
                .and_then(|f| json::rounded(f, REPORT_DECIMALS))
                .and_then(serde_json::Number::from_f64)
            {
                *n = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(round_numbers),
        Value::Object(o) => o.values_mut().for_each(round_numbers),
        _ => {}
    }
}

/// The report as JSON: keys sorted, numbers rounded, two-space indentation, final newline.
pub fn report_json(report: &RenderReport) -> Result<String, ReportError> {
    // Through `Value`, whose maps are sorted by key.
    let mut v = serde_json::to_value(report)?;
    round_numbers(&mut v);
    let mut s = serde_json::to_string_pretty(&v)?;
    s.push('\n');
    Ok(s)
}

/// The report as Markdown, for people.
pub fn report_markdown(report: &RenderReport) -> String {
    markdown::render(report)
}

/// The two report files written.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    /// `report.json`.
    pub json: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
}

/// Writes `report.json` and `report.md` into `dir`, each atomically (temporary file, then
/// rename), refusing to overwrite any path in `protected` (the render's inputs).
pub fn write_report(
    dir: &Path,
    report: &RenderReport,
    protected: &[PathBuf],
) -> Result<ReportFiles, ReportError> {
    let json = report_json(report)?;
    let md = report_markdown(report);
    let write = |name: &str, text: &str| -> Result<PathBuf, ReportError> {
        let dest = dir.join(name);
        let (atomic, mut w) = AtomicFile::create(&dest, protected)?;
        let io = |source| OutputError::Io {
            path: dest.clone(),
            source,
        };
        w.write_all(text.as_bytes()).map_err(io)?;
        w.flush().map_err(io)?;
        drop(w);
        Ok(atomic.commit()?)
    };
    Ok(ReportFiles {
        json: write(REPORT_JSON, &json)?,
        markdown: write(REPORT_MD, &md)?,
    })
}
