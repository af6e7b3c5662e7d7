//! The references: `PATH[:WEIGHT]` arguments, read at the session rate, and checked before
//! anything is fitted to them: too short or silent is an error; another sample rate (resampled),
//! mono (no width to match) or clipped material is a note in the report.

use super::scan::{self, Scan};
use super::MatchError;
use std::path::{Path, PathBuf};

/// Shortest reference matched, seconds.
pub const MIN_SECONDS: f64 = 10.0;
/// Integrated loudness under which a reference counts as silent, LUFS.
pub const SILENT_LUFS: f64 = -60.0;
/// Runs of full-scale samples from which a reference counts as clipped.
pub const CLIP_RUNS: u64 = 10;

/// One reference as given on the command line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RefSpec {
    /// The file.
    pub path: PathBuf,
    /// Its weight (normalised so the weights add up to 1).
    pub weight: f64,
}

/// Parses `PATH[:WEIGHT]` (a weight is a number after the last colon).
pub fn parse(arg: &str) -> Result<RefSpec, MatchError> {
    if let Some((p, w)) = arg.rsplit_once(':') {
        if let Ok(weight) = w.parse::<f64>() {
            if !(weight.is_finite() && weight > 0.0) {
                return Err(MatchError::Usage(format!(
                    "--reference {arg}: the weight must be a number above 0"
                )));
            }
            return Ok(RefSpec {
                path: PathBuf::from(p),
                weight,
            });
        }
    }
    Ok(RefSpec {
        path: PathBuf::from(arg),
        weight: 1.0,
    })
}

/// The weights made to add up to 1.
pub fn normalise(refs: &mut [RefSpec]) {
    let total: f64 = refs.iter().map(|r| r.weight).sum();
    for r in refs {
        r.weight /= total;
    }
}

/// Reads and checks a reference at `rate`: the scan and the notes for the report.
pub fn load(path: &Path, rate: u32) -> Result<(Scan, Vec<String>), MatchError> {
    let bad = |reason: String| MatchError::Input {
        path: path.to_path_buf(),
        reason,
    };
    let s = scan::scan(path, rate)?;
    let mut notes = Vec::new();
    if s.seconds() < MIN_SECONDS {
        return Err(bad(format!(
            "it is {:.1} s long; a reference needs at least {MIN_SECONDS} s to measure its \
             loudest sections",
            s.seconds()
        )));
    }
    if !(s.integrated_lufs.is_finite() && s.integrated_lufs > SILENT_LUFS) {
        return Err(bad(format!(
            "it is silent (integrated loudness {:.1} LUFS): there is nothing to match",
            s.integrated_lufs
        )));
    }
    let name = path.display();
    if s.file_rate != rate {
        notes.push(format!(
            "{name} is at {} Hz and was resampled to the session's {rate} Hz",
            s.file_rate
        ));
    }
    if s.mono {
        notes.push(format!(
            "{name} is mono: its side is empty, so width and side EQ are not matched to it"
        ));
    }
    if s.clip_runs >= CLIP_RUNS {
        notes.push(format!(
            "{name} is clipped ({} runs of full-scale samples): its spectrum and dynamics are \
             matched as they are, distortion included",
            s.clip_runs
        ));
    }
    Ok((s, notes))
}
