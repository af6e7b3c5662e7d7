//! The verdicts of the null test: which stem is moved, inverted or at another level, which
//! element is missing, each only when correcting it explains part of the residual; and the
//! null test's own line.

use super::align::{Correction, MIN_DROP_DB};
use super::null::{After, Candidate, Column, Fit};
use super::{finding, sized, Finding, NullTest, Severity, StemFacts};
use crate::units::gain_to_db;

/// A level deviation smaller than this (dB) is no finding.
const GAIN_TOLERANCE_DB: f64 = 0.05;
/// A missing element must lower the residual by this factor (6 dB) to be named.
const MISSING_DROP: f64 = 0.25;

/// What the recipe should change for one stem.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct Change {
    /// The new `offset_samples`.
    pub offset_samples: Option<f64>,
    /// The new `invert`.
    pub invert: Option<bool>,
    /// The new `gain_db`.
    pub gain_db: Option<f64>,
}

/// The verdicts.
pub(super) struct Verdict {
    pub findings: Vec<Finding>,
    /// What the fix sums (for the residual after it).
    pub columns: Vec<super::null::Column>,
    /// Per fact, what the recipe should change.
    pub changes: Vec<Option<Change>>,
    /// Missing elements to add to the recipe (files beside the stems).
    pub added: Vec<Candidate>,
    /// Level of the reference against the sum of the stems, dB.
    pub reference_gain_db: f64,
    /// Whether the fit explained the residual by a common level of the reference.
    pub common_level: bool,
}

fn db_text(x: f64) -> String {
    format!("{x:+.2} dB")
}

/// Adds the candidate missing elements that explain the residual, best first.
fn select_missing(fit: &Fit, candidates: &[Candidate]) -> Vec<usize> {
    let ns = fit.stems.len();
    let mut cols: Vec<usize> = (0..ns).collect();
    let mut e_prev = fit.energy(&cols, &fit.solve(&cols));
    let mut chosen = Vec::new();
    loop {
        let mut best: Option<(usize, f64)> = None;
        for c in 0..candidates.len() {
            if chosen.contains(&c) {
                continue;
            }
            let mut trial = cols.clone();
            trial.push(ns + c);
            let g = fit.solve(&trial);
            let gc = g[trial.len() - 1].abs();
            let e = fit.energy(&trial, &g);
            if (0.25..=4.0).contains(&gc)
                && e < e_prev * MISSING_DROP
                && best.is_none_or(|b| e < b.1)
            {
                best = Some((c, e));
            }
        }
        let Some((c, e)) = best else { break };
        chosen.push(c);
        cols.push(ns + c);
        e_prev = e;
    }
    chosen
}

fn offset_finding(f: &StemFacts, c: Correction, rate: u32) -> Finding {
    // The stem is late by −correction.
    let late = -c.samples;
    let n = if late.fract() == 0.0 {
        format!("{}", late.abs())
    } else {
        format!("{:.2}", late.abs())
    };
    sized(
        finding(
            Severity::Fail,
            "offset",
            Some(&f.name),
            format!(
                "{} starts {n} samples ({:.2} ms) {} than in the reference mix (moving it lowers the residual by {:.1} dB)",
                f.name,
                late.abs() * 1000.0 / f64::from(rate),
                if late > 0.0 { "later" } else { "earlier" },
                c.drop_db
            ),
        ),
        late,
        "samples",
    )
}

/// The verdicts for every stem, and the columns of the fix.
pub(super) fn verdicts(
    facts: &mut [StemFacts],
    corrections: &[Option<Correction>],
    fit: &Fit,
    candidates: &[Candidate],
    rate: u32,
) -> Verdict {
    let ns = fit.stems.len();
    let missing = select_missing(fit, candidates);
    let cols: Vec<usize> = (0..ns).chain(missing.iter().map(|c| ns + c)).collect();
    let g = fit.solve(&cols);
    let stem_cols: Vec<usize> = (0..ns).collect();
    let sum_cross: f64 = stem_cols.iter().map(|&p| fit.cross[p]).sum();
    let sum_energy: f64 = stem_cols
        .iter()
        .flat_map(|&p| stem_cols.iter().map(move |&q| (p, q)))
        .map(|(p, q)| fit.gram[p][q])
        .sum();
    let reference_gain_db = if sum_energy > 0.0 && sum_cross > 0.0 {
        gain_to_db(sum_cross / sum_energy)
    } else {
        0.0
    };
    // The stem's level against its part in the reference: the reference holds it × g.
    let gains_db: Vec<f64> = g[..ns]
        .iter()
        .map(|x| -gain_to_db(x.abs().max(1e-12)))
        .collect();
    let mean = gains_db.iter().sum::<f64>() / ns.max(1) as f64;
    let common_level = ns >= 2
        && mean.abs() >= GAIN_TOLERANCE_DB
        && g[..ns].iter().all(|x| *x > 0.0)
        && gains_db
            .iter()
            .all(|d| (d - mean).abs() < GAIN_TOLERANCE_DB);
    let mut v = Verdict {
        findings: Vec::new(),
        columns: Vec::new(),
        changes: vec![None; facts.len()],
        added: Vec::new(),
        reference_gain_db,
        common_level,
    };
    // A stem's level or polarity is a finding when leaving that stem as placed (every other
    // column at its fitted level) leaves clearly more residual than the full fit.
    let e_fit = fit.energy(&cols, &g);
    for (a, &i) in fit.stems.iter().enumerate() {
        let f = &mut facts[i];
        let corr = corrections[i].filter(|c| c.samples != 0.0);
        f.offset_samples = corrections[i].map(|c| -c.samples);
        f.gain_db = Some(gains_db[a]);
        f.inverted = Some(g[a] < 0.0);
        let mut change = Change::default();
        if let Some(c) = corr {
            v.findings.push(offset_finding(f, c, rate));
            change.offset_samples = Some(f.recipe.offset_samples + c.samples);
        }
        let mut trial = g.clone();
        trial[a] = 1.0;
        let drop = 10.0 * libm::log10(fit.energy(&cols, &trial).max(1e-300) / e_fit.max(1e-300));
        let mut level = 1.0;
        if drop >= MIN_DROP_DB && !common_level {
            if g[a] < 0.0 {
                v.findings.push(finding(
                    Severity::Fail,
                    "polarity",
                    Some(&f.name),
                    format!("{} is polarity-inverted against the reference mix", f.name),
                ));
                change.invert = Some(!f.recipe.invert);
                level = -1.0;
            }
            if gains_db[a].abs() >= GAIN_TOLERANCE_DB {
                let gd = gains_db[a];
                v.findings.push(sized(
                    finding(
                        if gd.abs() >= 0.5 {
                            Severity::Fail
                        } else {
                            Severity::Warn
                        },
                        "gain",
                        Some(&f.name),
                        format!(
                            "{} is {} against its level in the reference mix",
                            f.name,
                            db_text(gd)
                        ),
                    ),
                    gd,
                    "dB",
                ));
                change.gain_db = Some(f.recipe.gain_db - gd);
                level = g[a];
            }
        }
        if change != Change::default() {
            v.changes[i] = Some(change);
        }
        v.columns.push(Column {
            path: f.path.clone(),
            offset: change.offset_samples.unwrap_or(f.recipe.offset_samples),
            gain: f.recipe.gain() * level,
        });
    }
    for &c in &missing {
        let cand = &candidates[c];
        let (name, path) = (cand.name.clone(), cand.path.display().to_string());
        let (message, offset, gain) = match cand.muted_stem {
            Some(i) => {
                v.changes[i] = Some(Change {
                    gain_db: Some(0.0),
                    ..Change::default()
                });
                (
                    format!("{name} is muted in the recipe (gain_db = {}) and the residual is that stem: it is missing from the sum", facts[i].recipe.gain_db),
                    facts[i].recipe.offset_samples,
                    if facts[i].recipe.invert { -1.0 } else { 1.0 },
                )
            }
            None => {
                v.added.push(cand.clone());
                (
                    format!("{path} is beside the stems but not in the recipe, and the residual is that file: it is missing from the stems"),
                    0.0,
                    1.0,
                )
            }
        };
        v.findings.push(finding(
            Severity::Fail,
            "missing_element",
            Some(&name),
            message,
        ));
        v.columns.push(Column {
            path: cand.path.clone(),
            offset,
            gain,
        });
    }
    v
}

/// Octave bands for the residual's spectrum.
const BANDS: &[(f64, f64)] = &[
    (20.0, 62.5),
    (62.5, 125.0),
    (125.0, 250.0),
    (250.0, 500.0),
    (500.0, 1000.0),
    (1000.0, 2000.0),
    (2000.0, 4000.0),
    (4000.0, 8000.0),
    (8000.0, 16000.0),
    (16000.0, 24000.0),
];

fn band_text((lo, hi): (f64, f64)) -> String {
    let f = |x: f64| {
        if x >= 1000.0 {
            format!("{} kHz", x / 1000.0)
        } else {
            format!("{x} Hz")
        }
    };
    format!("{}–{}", f(lo), f(hi))
}

/// The narrowest run of adjacent octave bands holding 60 % of the residual's energy.
fn residual_band(after: &After) -> Option<(f64, f64)> {
    let band_energy: Vec<f64> = BANDS
        .iter()
        .map(|(lo, hi)| {
            after
                .spectrum
                .iter()
                .enumerate()
                .filter(|(b, _)| {
                    (*b as f64 * after.bin_hz) >= *lo && (*b as f64 * after.bin_hz) < *hi
                })
                .map(|(_, p)| p)
                .sum()
        })
        .collect();
    let all: f64 = band_energy.iter().sum();
    (all > 0.0).then(|| {
        let mut best = (0, BANDS.len() - 1);
        for a in 0..BANDS.len() {
            let mut acc = 0.0;
            for (b, e) in band_energy.iter().enumerate().skip(a) {
                acc += e;
                if acc >= 0.6 * all {
                    if b - a < best.1 - best.0 {
                        best = (a, b);
                    }
                    break;
                }
            }
        }
        (BANDS[best.0].0, BANDS[best.1].1)
    })
}

/// Share of the residual in the loudest tenth of the song.
fn residual_in_peaks(after: &After) -> f64 {
    let mut sorted: Vec<&(f64, f64)> = after.envelope.iter().collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = (sorted.len() / 10).max(1);
    let total: f64 = after.envelope.iter().map(|e| e.1).sum();
    if total > 0.0 {
        sorted.iter().take(top).map(|e| e.1).sum::<f64>() / total
    } else {
        0.0
    }
}

fn severity_of(rms_dbfs: f64) -> Severity {
    if rms_dbfs <= -90.0 {
        Severity::Pass
    } else if rms_dbfs <= -60.0 {
        Severity::Warn
    } else {
        Severity::Fail
    }
}

/// The null test's result and its line among the findings.
pub(super) fn null_finding(
    fit: &Fit,
    after: &After,
    verdict: &Verdict,
    facts: &[StemFacts],
    findings: &mut Vec<Finding>,
) -> NullTest {
    let db = |e: f64, n: f64| 10.0 * libm::log10((e / n.max(1.0)).max(1e-30));
    let residual_rms_dbfs = db(fit.as_is_energy, fit.samples);
    let after_fix_rms_dbfs = db(after.energy, after.samples);
    let severity = severity_of(residual_rms_dbfs);
    let band = residual_band(after);
    let in_peaks = residual_in_peaks(after);
    let mut message = format!(
        "null test: the stems as the recipe places them leave a residual of {:.1} dBFS RMS ({:.1} dBFS peak) against the reference",
        residual_rms_dbfs,
        gain_to_db(fit.as_is_peak.max(1e-15))
    );
    let explained = verdict
        .findings
        .iter()
        .any(|f| f.severity != Severity::Pass);
    if explained {
        message.push_str(&format!(
            "; with the changes of `check --fix` it is {after_fix_rms_dbfs:.1} dBFS RMS"
        ));
    }
    let nan: Vec<&str> = facts
        .iter()
        .filter(|f| f.non_finite_samples > 0)
        .map(|f| f.name.as_str())
        .collect();
    if !nan.is_empty() {
        message.push_str(&format!(
            " (the muted non-finite samples of {} are part of it)",
            nan.join(", ")
        ));
    }
    if severity_of(after_fix_rms_dbfs) != Severity::Pass {
        if verdict.common_level {
            message.push_str(&format!(
                "; the reference is {} against the sum of the stems",
                db_text(verdict.reference_gain_db)
            ));
            findings.push(sized(
                finding(
                    Severity::Warn,
                    "reference_gain",
                    None,
                    format!(
                        "the reference mix is {} against the sum of the stems (every stem alike)",
                        db_text(verdict.reference_gain_db)
                    ),
                ),
                verdict.reference_gain_db,
                "dB",
            ));
        } else if in_peaks > 0.5 {
            message.push_str(&format!(
                "; what is left follows the mix's peaks ({:.0} % of it in the loudest tenth of the song): the reference has master-bus processing (limiting or compression) that the stems do not",
                in_peaks * 100.0
            ));
        } else if let Some(band) = band.filter(|_| !explained) {
            let hint = match band {
                (_, hi) if hi <= 250.0 => "a bass or kick element may be missing from the stems",
                (lo, _) if lo >= 8000.0 => {
                    "cymbals, air or a high-frequency effect may be missing from the stems"
                }
                (lo, _) if lo >= 1000.0 => "a reverb or vocal return may be missing from the stems",
                _ => "an instrument or vocal may be missing from the stems",
            };
            message.push_str(&format!(", mostly {}: {hint}", band_text(band)));
        }
    }
    findings.push(sized(
        finding(severity, "null_test", None, message),
        residual_rms_dbfs,
        "dBFS",
    ));
    NullTest {
        residual_rms_dbfs,
        residual_peak_dbfs: gain_to_db(fit.as_is_peak.max(1e-15)),
        after_fix_rms_dbfs: Some(after_fix_rms_dbfs),
        reference_gain_db: verdict.reference_gain_db,
        residual_band_hz: band,
        residual_in_peaks: in_peaks,
        severity,
    }
}
