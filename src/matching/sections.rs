//! Section-aware matching: where the recipe declares sections, each is matched on its own, to
//! the part of the references at the same loudness rank (the loudest section to the references'
//! loudest 30 %, a quieter verse to their quieter parts), with the structure of the whole-song
//! fit (its EQ frequencies and Qs); the per-section stem and EQ gains that differ are emitted
//! as step automation at the sections' starts.

use super::eq::round;
use super::fit::{self, Fit};
use super::measure::{self, Measured};
use super::proposal::{AutomationChange, Proposal};
use super::run::{fit_input, Measurements};
use super::select;
use super::MatchError;
use crate::session::Session;

/// A section's values that differ by less than this across sections are not automated, dB.
const MIN_SPREAD_DB: f64 = 0.3;

/// One section as matched.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SectionReport {
    /// Its name.
    pub name: String,
    /// Start, s.
    pub from_s: f64,
    /// End, s.
    pub to_s: f64,
    /// The master's loudness there (mean short-term), LUFS.
    pub master_lufs: f64,
    /// The references' loudness quantiles it is matched to.
    pub reference_quantiles: (f64, f64),
    /// Fitted stem changes, dB (before `--amount`).
    pub stem_db: Vec<f64>,
    /// Fitted EQ gains, dB (before `--amount`), in the order of the whole-song fit's bands.
    pub eq_db: Vec<f64>,
    /// Weighted RMS the fit leaves, dB.
    pub rms_after_db: f64,
}

/// The sections of `session` as (name, (start, end)) in seconds, the last one to `song_s`.
pub fn ranges(session: &Session, song_s: f64) -> Vec<(String, (f64, f64))> {
    let s = &session.sections;
    (0..s.len())
        .map(|i| {
            let end = s.get(i + 1).map_or(song_s, |n| n.1);
            (s[i].0.clone(), (s[i].1, end))
        })
        .filter(|(_, (a, b))| b > a)
        .collect()
}

/// Fits every section and adds the automation of what differs between them to `proposal`.
pub(crate) fn propose(
    session: &Session,
    m: &Measurements,
    global: &Fit,
    proposal: &mut Proposal,
    amount: f64,
    limits: super::fit::Limits,
    notes: &mut Vec<String>,
) -> Result<Vec<SectionReport>, MatchError> {
    let ranges = ranges(session, m.master.scan.seconds());
    let mut measured = Vec::new();
    for (name, range) in &ranges {
        let sel = select::rank(&m.master.scan, Some(*range), 0.3, 1.0);
        if sel.seconds() < 1.0 {
            notes.push(format!(
                "section `{name}` is too short or silent to be matched on its own"
            ));
            continue;
        }
        measured.push((name.clone(), *range, sel));
    }
    if measured.len() < 2 {
        return Ok(Vec::new());
    }
    // Rank of each section's loudness among the sections: 0 quietest, 1 loudest.
    let mut order: Vec<usize> = (0..measured.len()).collect();
    order.sort_by(|&a, &b| {
        measured[a]
            .2
            .loudness_lufs
            .total_cmp(&measured[b].2.loudness_lufs)
    });
    let mut reports = Vec::new();
    for (i, (name, range, sel)) in measured.iter().enumerate() {
        let p =
            order.iter().position(|&o| o == i).unwrap_or(0) as f64 / (measured.len() - 1) as f64;
        let q = (0.7 * p, 0.7 * p + 0.3);
        let master = Measured::new(m.master.scan.clone(), sel.clone(), (&m.grid, &m.thirds))?;
        let stems = measure::bands(&m.stem_paths, m.rate, m.master.scan.frames, sel, &m.grid)?;
        let refs = m
            .refs
            .iter()
            .map(|(w, r)| {
                let s = select::rank(&r.scan, None, q.0, q.1);
                Measured::new(r.scan.clone(), s, (&m.grid, &m.thirds)).map(|x| (*w, x))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let input = fit_input(m, &refs, &master, &stems, limits);
        let f = fit::refit(&input, global);
        reports.push(SectionReport {
            name: name.clone(),
            from_s: range.0,
            to_s: range.1,
            master_lufs: sel.loudness_lufs,
            reference_quantiles: q,
            stem_db: f.stem_db.clone(),
            eq_db: f.eq.iter().map(|b| b.gain_db).collect(),
            rms_after_db: f.rms_after_db,
        });
    }
    automate(m, global, &reports, proposal, amount);
    Ok(reports)
}

/// Step automation of the stem sends and EQ gains whose section values differ.
fn automate(
    m: &Measurements,
    global: &Fit,
    reports: &[SectionReport],
    p: &mut Proposal,
    amount: f64,
) {
    let spread = |v: &[f64]| {
        v.iter().copied().fold(f64::MIN, f64::max) - v.iter().copied().fold(f64::MAX, f64::min)
    };
    for (k, route) in m.routing.stems.iter().enumerate() {
        let vals: Vec<f64> = reports
            .iter()
            .map(|r| round(amount * r.stem_db[k], 2))
            .collect();
        if spread(&vals) < MIN_SPREAD_DB {
            continue;
        }
        for s in &route.sends {
            p.automation.push(AutomationChange {
                param: s.key(),
                points: reports
                    .iter()
                    .zip(&vals)
                    .map(|(r, v)| (r.from_s, round(s.gain_db + v, 2)))
                    .collect(),
                why: format!(
                    "{} per section ({}), each matched to the reference's parts of the same loudness rank",
                    route.stem,
                    reports.iter().zip(&vals).map(|(r, v)| format!("{} {v:+.1} dB", r.name)).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    let Some(eq) = &p.eq else { return };
    let node = eq.node.clone();
    // The proposal's bands are the fitted bands whose rounded gain is at least 0.1 dB.
    let mut n = 0;
    let mut autos = Vec::new();
    for (i, b) in global.eq.iter().enumerate() {
        if round(amount * b.gain_db, 2).abs() < 0.1 {
            continue;
        }
        n += 1;
        let vals: Vec<f64> = reports
            .iter()
            .map(|r| round(amount * r.eq_db[i], 2))
            .collect();
        if spread(&vals) < MIN_SPREAD_DB {
            continue;
        }
        autos.push(AutomationChange {
            param: format!("{node}.{n}.gain_db"),
            points: reports
                .iter()
                .zip(&vals)
                .map(|(r, v)| (r.from_s, *v))
                .collect(),
            why: format!(
                "{} {:.0} Hz per section ({})",
                b.kind.name(),
                b.freq_hz,
                reports
                    .iter()
                    .zip(&vals)
                    .map(|(r, v)| format!("{} {v:+.1} dB", r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    p.automation.extend(autos);
}
