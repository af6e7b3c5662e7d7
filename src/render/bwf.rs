//! The metadata chunks of a WAV deliverable, and the loudness its `bext` chunk reports.
//!
//! A WAV deliverable carries `bext` (unless `bext = false`), a `LIST`/`INFO` chunk of its tags,
//! and `iXML` when asked ([`crate::io::bext`] lays them out). The `bext` loudness fields
//! (EBU R 128: integrated, range, true peak, momentary and short-term maxima) are measured on
//! the samples as they are written — the values a listener's decoder reads back — and patched
//! in before the file is renamed into place ([`patch`]; [`measure`] decodes the finished
//! temporary file instead, for a file not measured as it was written); the measurement is the
//! deliverable's analysis in the report, so the file is not decoded at all.
//!
//! Everything written is a function of the recipe: the origination date and time come from the
//! recipe's `origination` (or `SOURCE_DATE_EPOCH`, see [`crate::metadata::origination`]), the
//! coding history names the engine version and the recipe file's SHA-256.

use crate::analysis::analyze::{analyze_with, AnalyzeOptions, FileAnalysis};
use crate::io::atomic::OutputError;
use crate::io::bext::{self, Bext, Loudness};
use crate::io::wav::{WavFormat, WavOutput};
use crate::metadata::tag;
use crate::session::{Deliverable, FileFormat, Session};
use std::path::Path;

/// The extra chunks of a WAV deliverable and where its loudness fields are.
#[derive(Debug, Clone, Default)]
pub struct WavChunks {
    /// Whole chunks, between `fmt ` and `data`.
    pub bytes: Vec<u8>,
    /// File offset of the `bext` loudness fields, when there is a `bext` chunk.
    pub loudness_at: Option<u64>,
}

/// The coding history line of a deliverable (EBU R 98 layout).
fn coding_history(session: &Session, rate: u32, bits: u32, channels: usize) -> String {
    let mode = match channels {
        1 => "mono",
        2 => "stereo",
        _ => "multichannel",
    };
    let recipe = session
        .recipe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = crate::render::report::sha256_file(&session.recipe)
        .map(|(h, _)| format!(" sha256 {h}"))
        .unwrap_or_default();
    format!(
        "A=PCM,F={rate},W={bits},M={mode},T=stemgraph {}; recipe {recipe}{hash}\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The chunks of WAV deliverable `d` with tags `tags` (none for FLAC).
pub fn chunks(
    d: &Deliverable,
    session: &Session,
    tags: &[(String, String)],
    rate: u32,
    channels: usize,
    format: WavFormat,
) -> WavChunks {
    if d.format != FileFormat::Wav {
        return WavChunks::default();
    }
    let mut out = WavChunks::default();
    let start = WavOutput::chunks_offset(format, channels);
    let title = tag(tags, "TITLE").unwrap_or(&session.title);
    let description = d
        .bwf
        .description
        .clone()
        .unwrap_or_else(|| match tag(tags, "ARTIST") {
            Some(a) => format!("{title} - {a}"),
            None => title.to_string(),
        });
    if d.bwf.bext {
        let b = Bext {
            description: description.clone(),
            originator: d
                .bwf
                .originator
                .clone()
                .or_else(|| session.metadata.originator.clone())
                .unwrap_or_else(|| "stemgraph".into()),
            originator_reference: d.bwf.originator_reference.clone().unwrap_or_default(),
            origination: crate::metadata::origination(&session.metadata),
            time_reference: 0,
            coding_history: coding_history(session, rate, format.bits(), channels),
        };
        out.loudness_at = Some(start + 8 + bext::LOUDNESS_OFFSET as u64);
        out.bytes.extend(bext::bext_chunk(&b));
    }
    out.bytes.extend(bext::info_chunk(tags));
    if d.bwf.ixml {
        let project = tag(tags, "ALBUM").unwrap_or(title);
        let track = tag(tags, "TRACKNUMBER").and_then(|t| t.parse().ok());
        out.bytes.extend(bext::ixml_chunk(
            project,
            track,
            &description,
            rate,
            format.bits(),
            tags,
        ));
    }
    out
}

/// Byte writes over a file: (offset, bytes).
pub type Patch = Vec<(u64, Vec<u8>)>;

/// Measures the finished temporary file `tmp` and returns the patch of its loudness fields (at
/// `loudness_at`) with the measurement (for a file whose samples were not measured as they
/// were written).
pub fn measure(
    tmp: &Path,
    dest: &Path,
    loudness_at: u64,
) -> Result<(Patch, FileAnalysis), OutputError> {
    let a = analyze_with(tmp, &AnalyzeOptions::figures_only())
        .map_err(|e| OutputError::Encode {
            path: dest.to_path_buf(),
            message: format!("measuring the loudness for its bext chunk: {e}"),
        })?
        .figures;
    Ok((patch(loudness_at, &a), a))
}

/// The patch of the loudness fields (at `loudness_at`) of a file measured as `a`.
pub fn patch(loudness_at: u64, a: &FileAnalysis) -> Patch {
    let l = Loudness {
        integrated_lufs: a.integrated_lufs,
        range_lu: a.loudness_range_lu,
        true_peak_dbtp: a.true_peak_dbtp,
        momentary_max_lufs: a.momentary_max_lufs,
        short_term_max_lufs: a.short_term_max_lufs,
    };
    vec![(loudness_at, l.to_bytes().to_vec())]
}
