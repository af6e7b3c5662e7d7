//! `check`: the stem preparation checks a mastering engineer does by hand, the null test, and
//! the recipe changes that make the stems null (`check --fix`).
//!
//! Everything streams (bounded memory whatever the song length): one pass per stem for its
//! levels ([`files`]); short windows around each stem's loudest passage for its start offset
//! ([`align`]: a fraction of a sample, against what the reference says the stem is: the mix
//! minus the other stems); one pass over all stems, the reference and the candidate missing
//! elements for the joint least-squares levels, and one more for the residual left after the
//! fix ([`null`]); then the verdicts ([`diagnose`]) and the fix ([`fix`]).
//!
//! The stems are checked as the recipe places them: with their `offset_samples`, `invert` and
//! `gain_db`. A finding about the null (offset, polarity, level, missing element) is made only
//! when correcting it explains part of the residual; the levels are fitted jointly for all
//! stems, so one stem's fault does not smear into another's level.
//!
//! | check | pass | warn | fail |
//! |---|---|---|---|
//! | null test residual (stems as the recipe places them − reference) | ≤ −90 dBFS RMS | above −90 dBFS | above −60 dBFS |
//! | stem start offset against the reference | none that lowers the residual | | one that lowers it by ≥ 1 dB |
//! | stem polarity | as in the reference | | inverted |
//! | stem level against the reference | within ±0.05 dB | off by 0.05–0.5 dB | off by more |
//! | missing element | | | a file beside the stems (or a stem muted in the recipe) explains the residual |
//! | sample rate | all the same | | a stem at another rate |
//! | length | all the same | a stem shorter (padded) or longer | a stem shorter where the reference has material |
//! | word length | ≥ 24 bits (or float) | below 24 bits | |
//! | clipping | none | samples at full scale | runs of ≥ 3 consecutive full-scale samples |
//! | non-finite samples (NaN, ±Inf) | none | | any (counted, with the first one's time) |
//! | DC offset | below −30 dBFS | at or above −30 dBFS | |
//! | silent stem | | peak below −90 dBFS | |
//! | stem name | anything but a generic label | a generic label (`Audio 1`, `track3`) | |
//! | stem count | 3–8 | fewer or more | |
//! | stem file | readable | | missing or not decodable |

mod align;
mod diagnose;
mod files;
pub mod fix;
mod names;
mod null;

use crate::session::Session;
use serde::Serialize;
use std::path::PathBuf;

pub use fix::StemFix;
pub use names::is_generic as name_is_generic;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Checked and fine.
    Pass,
    /// Worth a look; does not fail the check.
    Warn,
    /// Must be fixed (non-zero exit status).
    Fail,
}

/// One finding, with its size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// Which check (`null_test`, `offset`, `polarity`, `gain`, `missing_element`,
    /// `reference_gain`, `sample_rate`, `length`, `word_length`, `clipping`, `non_finite`,
    /// `dc_offset`, `silent`, `name`, `stem_count`, `file`).
    pub check: &'static str,
    /// The stem concerned, if one (for `missing_element`: the file's name without extension).
    pub stem: Option<String>,
    /// What was found, in words.
    pub message: String,
    /// Its size.
    pub value: Option<f64>,
    /// The unit of `value`.
    pub unit: Option<&'static str>,
}

/// What was measured of one stem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StemFacts {
    /// Stem name.
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// Its rate.
    pub sample_rate_hz: u32,
    /// Its channels.
    pub channels: usize,
    /// Its length in its own frames.
    pub frames: u64,
    /// Bits per sample of the container.
    pub bits: Option<u32>,
    /// Bits actually used.
    pub effective_bits: Option<u32>,
    /// Sample peak.
    pub sample_peak_dbfs: f64,
    /// RMS over the whole stem.
    pub rms_dbfs: f64,
    /// Largest DC offset of its channels, dBFS.
    pub dc_offset_dbfs: f64,
    /// Samples at full scale.
    pub clipped_samples: u64,
    /// Runs of consecutive full-scale samples.
    pub clip_runs: u64,
    /// NaN and infinite samples (muted wherever the stem is read).
    pub non_finite_samples: u64,
    /// Time of the first non-finite sample, seconds from the file's start.
    pub first_non_finite_s: Option<f64>,
    /// The recipe's `offset_samples`, `invert` and `gain_db` for the stem.
    pub recipe: RecipeFader,
    /// Start offset of the stem, as the recipe places it, against the reference, in samples
    /// at the session rate (positive: the stem is late); fractional. `None` when not measured.
    pub offset_samples: Option<f64>,
    /// Level of the stem, as the recipe places it, against its part in the reference, dB
    /// (negative: quieter), from the joint least-squares fit.
    pub gain_db: Option<f64>,
    /// Whether its polarity, as the recipe places it, is inverted against the reference.
    pub inverted: Option<bool>,
}

/// How the recipe places a stem: the stem fader and the timeline move.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct RecipeFader {
    /// `offset_samples`.
    pub offset_samples: f64,
    /// `invert`.
    pub invert: bool,
    /// `gain_db`.
    pub gain_db: f64,
}

impl RecipeFader {
    /// The linear gain with its sign.
    pub fn gain(&self) -> f64 {
        crate::units::db_to_gain(self.gain_db) * if self.invert { -1.0 } else { 1.0 }
    }
    /// Whether the recipe mutes the stem (a fader at −90 dB or below).
    pub fn muted(&self) -> bool {
        self.gain_db <= -90.0
    }
}

/// The null test: the stems as the recipe places them, summed, against the reference mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NullTest {
    /// Residual RMS, dBFS.
    pub residual_rms_dbfs: f64,
    /// Residual peak, dBFS.
    pub residual_peak_dbfs: f64,
    /// Residual RMS with the `--fix` changes applied (and missing elements added), dBFS
    /// (`check` only; a render's null test does not diagnose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_fix_rms_dbfs: Option<f64>,
    /// Level of the reference against the sum of the stems (least squares), dB.
    pub reference_gain_db: f64,
    /// The octave-band range holding most of the residual left after the fix, Hz.
    pub residual_band_hz: Option<(f64, f64)>,
    /// Share of the residual's energy (after the fix) in the loudest tenth of the song (≈ 0.1
    /// for a residual that does not follow the music's level).
    pub residual_in_peaks: f64,
    /// Pass, warn or fail by the table.
    pub severity: Severity,
}

/// The result of `check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Session rate used for the comparison.
    pub sample_rate_hz: u32,
    /// Per-stem measurements.
    pub stems: Vec<StemFacts>,
    /// Everything found, most serious first.
    pub findings: Vec<Finding>,
    /// The null test, when there is a reference.
    pub null_test: Option<NullTest>,
    /// The recipe changes that make the stems null (empty when nothing needs changing).
    pub fixes: Vec<StemFix>,
}

impl CheckReport {
    /// Whether any finding fails.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Fail)
    }
}

/// Why `check` could not run at all (problems with the stems are findings, not errors).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The reference could not be read.
    #[error(transparent)]
    Decode(#[from] crate::io::decode::DecodeError),
    /// No stem could be read.
    #[error("no stem of {0} could be read")]
    NoStems(String),
}

pub(crate) fn finding(
    severity: Severity,
    check: &'static str,
    stem: Option<&str>,
    message: String,
) -> Finding {
    Finding {
        severity,
        check,
        stem: stem.map(str::to_string),
        message,
        value: None,
        unit: None,
    }
}

pub(crate) fn sized(mut f: Finding, value: f64, unit: &'static str) -> Finding {
    f.value = Some(value);
    f.unit = Some(unit);
    f
}

/// Runs every check on the stems and reference of `session`.
pub fn check(session: &Session) -> Result<CheckReport, CheckError> {
    let mut findings = Vec::new();
    let measured = files::measure_stems(session, &mut findings);
    let mut facts = measured.facts;
    if facts.is_empty() {
        return Err(CheckError::NoStems(session.recipe.display().to_string()));
    }
    let rate = files::session_rate(session, &facts);
    let longest = files::file_findings(&facts, rate, &mut findings);
    let mut null_test = None;
    let mut fixes = Vec::new();
    match &session.reference {
        Some(reference) if !reference.exists() => findings.push(finding(
            Severity::Fail,
            "file",
            None,
            format!("reference mix {} is missing", reference.display()),
        )),
        Some(reference) => {
            let song = null::Song {
                reference,
                rate,
                frames: longest.max(files::frames_at(reference, rate)?),
            };
            let corrections = align::offsets(&song, &facts, &measured.loudest)?;
            let candidates = null::candidates(session, &facts, reference);
            let fit = null::fit(&song, &facts, &corrections, &candidates)?;
            let verdict = diagnose::verdicts(&mut facts, &corrections, &fit, &candidates, rate);
            let after = null::after_fix(&song, &verdict.columns)?;
            files::length_findings(&facts, rate, longest, Some(&after), &mut findings);
            let nt = diagnose::null_finding(&fit, &after, &verdict, &facts, &mut findings);
            findings.extend(verdict.findings.iter().cloned());
            fixes = fix::fixes(session, &facts, &verdict);
            null_test = Some(nt);
        }
        None => files::length_findings(&facts, rate, longest, None, &mut findings),
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(CheckReport {
        sample_rate_hz: rate,
        stems: facts,
        findings,
        null_test,
        fixes,
    })
}
