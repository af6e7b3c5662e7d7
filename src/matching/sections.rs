//! Section-aware matching: where the recipe declares sections, each *kind* of section (the
//! verses, the choruses: [`super::kinds`]) is matched on its own to the parts of the
//! references that resemble it ([`super::pairing`]: spectral shape first, loudness rank
//! second), over the material of all its sections, with the structure of the whole-song fit
//! (its EQ frequencies and Qs) and, like it, every gain pulled toward 0 dB; the per-section
//! stem and EQ gains (each section its kind's) that differ are emitted as step automation at
//! the sections' starts.
//!
//! [`plan`] measures once (the kinds, the pairing, each kind's band powers and its references'
//! parts); [`fit_all`] fits every kind against a [`Target`], once per pass of the match, and
//! [`automate`] writes what differs into the proposal. A kind the references hold too little
//! like ([`pairing::MIN_MATERIAL_S`]) keeps the whole-song values, and so does a stem that is
//! (nearly) silent in a kind: nothing there says what its level should be.

use super::eq::round;
use super::fit::{self, Fit, FitInput, Limits};
use super::kinds;
use super::measure::{self, Measured};
use super::pairing::{self, Windows};
use super::proposal::{AutomationChange, Proposal};
use super::run::{fit_input, model_error, Measurements, Target};
use super::select::Selection;
use super::spectra::CrossBands;
use super::MatchError;
use crate::session::Session;

/// A section's values that differ by less than this across sections are not automated, dB.
const MIN_SPREAD_DB: f64 = 0.3;
/// A stem with less than this share of a section's power (weighted over the bands) keeps the
/// whole-song value there.
const MIN_STEM_SHARE: f64 = 0.03;
/// Seconds of material (paired on both sides) from which a section's fit is as sure as the
/// whole song's: 8 bars at 120 BPM. Under it, the penalties that pull every gain toward 0 dB
/// grow as `sqrt(FULL_EVIDENCE_S / seconds)` (the data's weight grows with its frames, the
/// prior's does not).
pub const FULL_EVIDENCE_S: f64 = 15.0;

/// One section as matched.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SectionReport {
    /// Its name.
    pub name: String,
    /// Its kind (see [`super::kinds`]): the sections of one kind are matched together, and
    /// the seconds, rank, distance, confidence and values below are the kind's.
    pub kind: String,
    /// Start, s.
    pub from_s: f64,
    /// End, s.
    pub to_s: f64,
    /// The master's loudness in the section (mean short-term), LUFS.
    pub master_lufs: f64,
    /// Seconds of the references paired with it (weighted mean over the references).
    pub reference_s: f64,
    /// Seconds of the section measured: its parts with a counterpart in the references (all
    /// of it when not matched).
    pub master_s: f64,
    /// How much the section's values rest on its own material, 0–1: the seconds paired on
    /// both sides over [`FULL_EVIDENCE_S`] (0 when not matched). Under 1, the fit is pulled
    /// harder toward no change.
    pub confidence: f64,
    /// Where the paired parts lie: their loudness under the references' loud level, LU
    /// (negative: quieter; weighted mean).
    pub reference_rel_lu: f64,
    /// How alike the paired parts are: their mean distance to the section (spectral shape
    /// and loudness rank), dB.
    pub distance_db: f64,
    /// Whether the section was matched on its own (false: too little match material, the
    /// whole-song values kept).
    pub matched: bool,
    /// Stems that keep the whole-song value here (too quiet in the section to judge).
    pub held_stems: Vec<String>,
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

/// One kind of section, measured and paired.
#[derive(Clone)]
pub(crate) struct Planned {
    name: String,
    master: Measured,
    stems: CrossBands,
    /// Stems too quiet here to judge.
    held: Vec<bool>,
    paired: PairedRefs,
}

/// The references' parts paired with a section.
#[derive(Clone)]
struct PairedRefs {
    /// Those with enough material, measured over their parts (weights renormalised).
    refs: Vec<(f64, Measured)>,
    /// Each reference's parts, `None` where it has too little.
    parts: Vec<Option<Selection>>,
    /// Seconds paired (weighted mean over all references).
    seconds: f64,
    rel_lu: f64,
    distance_db: f64,
}

impl Planned {
    fn matched(&self) -> bool {
        !self.paired.refs.is_empty()
    }

    /// See [`SectionReport::confidence`].
    fn confidence(&self) -> f64 {
        if !self.matched() {
            return 0.0;
        }
        let seconds = self.paired.seconds.min(self.master.selection.seconds());
        (seconds / FULL_EVIDENCE_S).clamp(0.0, 1.0)
    }

    /// The section's fit against `target`, the penalties scaled by its confidence.
    fn refit(&self, m: &Measurements, global: &Fit, limits: Limits, target: &Target) -> Fit {
        let input = self.input(m, limits, target);
        let prior = 1.0 / self.confidence().max(0.05).sqrt();
        fit::refit(&input, global, &self.held, prior)
    }

    /// The fit's input for this section.
    fn input<'a>(&'a self, m: &'a Measurements, limits: Limits, target: &Target) -> FitInput<'a> {
        fit_input(
            m,
            &self.paired.refs,
            &self.master,
            &self.stems,
            limits,
            target,
        )
    }
}

/// One declared section: its name, time range, kind (an index into [`Plan::kinds`]) and
/// loudness (mean short-term, LUFS).
struct Declared {
    name: String,
    range: (f64, f64),
    kind: usize,
    lufs: f64,
}

/// The sections' kinds measured and paired with the references, ready for [`fit_all`].
pub(crate) struct Plan {
    kinds: Vec<Planned>,
    sections: Vec<Declared>,
}

/// A kind to measure: its name, its sections' ranges, all of its windows as a selection.
type KindSpec = (String, Vec<(f64, f64)>, Selection);

/// Times the pairing is made again with the master as the section fits would change it.
const REPAIR_PASSES: usize = 2;

/// Measures the sections of `session`'s master, groups them into kinds
/// ([`kinds::group`]) and pairs each reference's parts with the kinds. The pairing is made
/// [`REPAIR_PASSES`] times more, each time with the master's kinds changed as their fits
/// (against the last pairing, with the structure of `global`) propose: a reference whose
/// verse has the bass 5 dB up resembles the master's verse with the bass 5 dB up more than
/// its chorus. `None` when fewer than two sections, or kinds, can be matched.
pub(crate) fn plan(
    session: &Session,
    m: &Measurements,
    global: &Fit,
    limits: Limits,
    notes: &mut Vec<String>,
) -> Result<Option<Plan>, MatchError> {
    let master_windows = Windows::new(&m.master.scan, &m.grid)?;
    let mut chosen = Vec::new();
    for (name, range) in ranges(session, m.master.scan.seconds()) {
        let sel = pairing::section_selection(&master_windows, range);
        if sel.seconds() < 1.0 {
            notes.push(format!(
                "section `{name}` is too short or silent to be matched on its own"
            ));
            continue;
        }
        chosen.push((name, range, sel));
    }
    if chosen.len() < 2 {
        return Ok(None);
    }
    let section_names: Vec<String> = chosen.iter().map(|c| c.0.clone()).collect();
    let section_ranges: Vec<(f64, f64)> = chosen.iter().map(|c| c.1).collect();
    let kinds = kinds::group(&section_names);
    if kinds.len() < 2 {
        notes.push(format!(
            "the sections ({}) are all one kind of music: matched as one song",
            section_names.join(", ")
        ));
        return Ok(None);
    }
    if let Some(n) = kinds_note(&kinds, &section_names) {
        notes.push(n);
    }
    let specs: Vec<KindSpec> = (0..kinds.len())
        .map(|k| {
            let members = kinds.members(k);
            let sel = members
                .iter()
                .map(|&i| chosen[i].2.clone())
                .reduce(|a, b| a.union(&b))
                .unwrap_or_else(|| chosen[0].2.clone());
            let ranges = members.iter().map(|&i| chosen[i].1).collect();
            (kinds.names[k].clone(), ranges, sel)
        })
        .collect();
    let kind_ranges: Vec<Vec<(f64, f64)>> = specs.iter().map(|s| s.1.clone()).collect();
    let ref_windows = m
        .refs
        .iter()
        .map(|(_, r)| Windows::new(&r.scan, &m.grid))
        .collect::<Result<Vec<_>, _>>()?;
    // Which kind each master window lies in.
    let member: Vec<Option<usize>> = {
        let mut v = vec![None; master_windows.end_hop.len()];
        for (s, r) in section_ranges.iter().enumerate() {
            for i in master_windows.within(*r) {
                v[i] = Some(kinds.of_section[s]);
            }
        }
        v
    };
    let mut changed = master_windows.clone();
    let mut planned = Vec::new();
    for pass in 0..=REPAIR_PASSES {
        let paired: Vec<Vec<pairing::Paired>> = ref_windows
            .iter()
            .map(|w| pairing::pair(&changed, &kind_ranges, w))
            .collect();
        planned = measure_sections(m, &specs, &paired, &planned)?;
        if pass == REPAIR_PASSES {
            break;
        }
        let changes: Vec<Option<Vec<f64>>> = planned
            .iter()
            .map(|s| {
                s.matched().then(|| {
                    let input = s.input(m, limits, &Target::WHOLE);
                    s.refit(m, global, limits, &Target::WHOLE)
                        .predicted_db(&input)
                })
            })
            .collect();
        changed = master_windows.with_change(|i| member[i].and_then(|s| changes[s].as_deref()));
    }
    for (k, s) in planned.iter().enumerate() {
        let held_names = names(m, &s.held);
        let which = kind_label(&kinds, &section_names, k);
        if !s.matched() {
            notes.push(format!(
                "{which}: the reference has too little that resembles it ({:.1} s, under \
                 {:.0} s): kept at the whole-song values",
                s.paired.seconds,
                pairing::MIN_MATERIAL_S
            ));
        } else if !held_names.is_empty() {
            notes.push(format!(
                "{which}: {} too quiet there to judge, kept at the whole-song value",
                held_names.join(", ")
            ));
        }
    }
    if !kinds.by_names && planned.iter().any(|s| !s.matched()) {
        notes.push(
            "sections that repeat (a chorus and its repeat) are matched together when their names \
             number the repeats (`chorus1`, `chorus2`): as named here, each is its own kind, and a \
             part of the reference as like two of them as each other is left out"
                .into(),
        );
    }
    let sections = chosen
        .into_iter()
        .enumerate()
        .map(|(i, (name, range, sel))| Declared {
            name,
            range,
            kind: kinds.of_section[i],
            lufs: sel.loudness_lufs,
        })
        .collect();
    Ok(Some(Plan {
        kinds: planned,
        sections,
    }))
}

/// How kind `k` is named in a note: ``section `verse` `` for a kind of one section, else
/// ``sections `verse1`, `verse2` (verse)``.
fn kind_label(kinds: &kinds::Kinds, names: &[String], k: usize) -> String {
    let members = kinds.members(k);
    if members.len() == 1 {
        return format!("section `{}`", names[members[0]]);
    }
    let list: Vec<String> = members.iter().map(|&i| format!("`{}`", names[i])).collect();
    format!("sections {} ({})", list.join(", "), kinds.names[k])
}

/// The note saying which sections were matched together and why, if any were.
fn kinds_note(kinds: &kinds::Kinds, names: &[String]) -> Option<String> {
    let groups: Vec<String> = (0..kinds.len())
        .filter(|&k| kinds.members(k).len() > 1)
        .map(|k| {
            let list: Vec<&str> = kinds
                .members(k)
                .iter()
                .map(|&i| names[i].as_str())
                .collect();
            format!("{} = {}", kinds.names[k], list.join(", "))
        })
        .collect();
    (!groups.is_empty()).then(|| {
        format!(
            "sections of one kind (their names number the repeats) are matched together: {}",
            groups.join("; ")
        )
    })
}

/// The names of the stems flagged in `held`.
fn names(m: &Measurements, held: &[bool]) -> Vec<String> {
    held.iter()
        .zip(&m.routing.stems)
        .filter(|(h, _)| **h)
        .map(|(_, r)| r.stem.clone())
        .collect()
}

/// What one section is measured over: each reference's parts (`None`: too little), the
/// master's (the parts of the section with a counterpart in those references, their union;
/// all of the section when none has enough), and the summary of the pairing.
struct Sides {
    parts: Vec<Option<Selection>>,
    master: Selection,
    seconds: f64,
    rel_lu: f64,
    distance_db: f64,
}

impl Sides {
    fn new(
        m: &Measurements,
        whole: &Selection,
        paired: &[Vec<pairing::Paired>],
        i: usize,
    ) -> Sides {
        let (mut secs, mut rel, mut dist, mut total) = (0.0, 0.0, 0.0, 0.0);
        let mut master: Option<Selection> = None;
        let mut parts = Vec::new();
        for ((w, _), p) in m.refs.iter().zip(paired.iter().map(|p| &p[i])) {
            secs += w * p.seconds;
            if !p.enough() {
                parts.push(None);
                continue;
            }
            rel += w * p.rel_lu;
            dist += w * p.distance_db;
            total += w;
            parts.push(Some(p.selection.clone()));
            master = Some(match master {
                Some(s) => s.union(&p.master),
                None => p.master.clone(),
            });
        }
        let mean = |x: f64| if total > 0.0 { x / total } else { f64::NAN };
        Sides {
            parts,
            master: master.unwrap_or_else(|| whole.clone()),
            seconds: secs,
            rel_lu: mean(rel),
            distance_db: mean(dist),
        }
    }

    /// Whether `p` was measured over these very parts.
    fn same_as(&self, p: &Planned) -> bool {
        p.master.selection == self.master && p.paired.parts == self.parts
    }
}

/// The kinds of `chosen` (name, ranges, all of it) measured against their pairings
/// (`paired[reference][kind]`): the references with enough material over their parts
/// (weights renormalised), the master and its stems over the parts of the kind with a
/// counterpart there. Every file is read once for all the kinds; a kind whose parts
/// are those of `previous` (the last pass) keeps its measurement.
fn measure_sections(
    m: &Measurements,
    chosen: &[KindSpec],
    paired: &[Vec<pairing::Paired>],
    previous: &[Planned],
) -> Result<Vec<Planned>, MatchError> {
    let sides: Vec<Sides> = (0..chosen.len())
        .map(|i| Sides::new(m, &chosen[i].2, paired, i))
        .collect();
    let todo: Vec<usize> = (0..chosen.len())
        .filter(|&i| previous.get(i).is_none_or(|p| !sides[i].same_as(p)))
        .collect();
    let grids = (&m.grid, &m.thirds);
    let master_sels: Vec<Selection> = todo.iter().map(|&i| sides[i].master.clone()).collect();
    let mut masters = Measured::many(&m.master.scan, master_sels, grids)?.into_iter();
    let stem_sels: Vec<&Selection> = todo.iter().map(|&i| &sides[i].master).collect();
    let mut stems = measure::bands_many(
        &m.stem_paths,
        m.rate,
        m.master.scan.frames,
        &stem_sels,
        &m.grid,
    )?
    .into_iter();
    // Per reference, its parts of the sections to measure: [reference] → [(section, measured)].
    let mut refs: Vec<Vec<(usize, Measured)>> = Vec::new();
    for (r, (_, measured)) in m.refs.iter().enumerate() {
        let wanted: Vec<usize> = todo
            .iter()
            .copied()
            .filter(|&i| sides[i].parts[r].is_some())
            .collect();
        let sels = wanted
            .iter()
            .filter_map(|&i| sides[i].parts[r].clone())
            .collect();
        let got = Measured::many(&measured.scan, sels, grids)?;
        refs.push(wanted.into_iter().zip(got).collect());
    }
    let mut out = Vec::with_capacity(chosen.len());
    for (i, ((name, _, _), side)) in chosen.iter().zip(sides).enumerate() {
        if !todo.contains(&i) {
            out.push(previous[i].clone());
            continue;
        }
        let (Some(master), Some(stems)) = (masters.next(), stems.next()) else {
            return Err(MatchError::Internal("a section left unmeasured".into()));
        };
        let mut section_refs = Vec::new();
        for (r, (w, _)) in m.refs.iter().enumerate() {
            if let Some(k) = refs[r].iter().position(|(s, _)| *s == i) {
                section_refs.push((*w, refs[r].swap_remove(k).1));
            }
        }
        let total: f64 = section_refs.iter().map(|r| r.0).sum();
        for r in &mut section_refs {
            r.0 /= total;
        }
        out.push(Planned {
            name: name.clone(),
            master,
            held: quiet_stems(&stems),
            stems,
            paired: PairedRefs {
                refs: section_refs,
                parts: side.parts,
                seconds: side.seconds,
                rel_lu: side.rel_lu,
                distance_db: side.distance_db,
            },
        });
    }
    Ok(out)
}

/// The stems with less than [`MIN_STEM_SHARE`] of the power in the bands where there is any.
fn quiet_stems(c: &CrossBands) -> Vec<bool> {
    let total = c.total(false);
    let bands: Vec<usize> = (0..total.len()).filter(|&b| total[b] > 0.0).collect();
    (0..c.n)
        .map(|k| {
            let own: f64 = bands
                .iter()
                .map(|&b| (c.mid[c.pair(k, k)][b] / total[b]).min(1.0))
                .sum();
            own < MIN_STEM_SHARE * bands.len() as f64
        })
        .collect()
}

/// Fits every kind of `plan` against `target`: the reports, one per section (each with
/// its kind's values), and the fits, one per kind (see [`automate`] for what the proposal
/// makes of them).
pub(crate) fn fit_all(
    plan: &Plan,
    m: &Measurements,
    global: &Fit,
    target: &Target,
    limits: Limits,
) -> (Vec<SectionReport>, Vec<Fit>) {
    let fits: Vec<Fit> = plan
        .kinds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.matched() {
                s.refit(m, global, limits, &target.section(i))
            } else {
                global.clone()
            }
        })
        .collect();
    let reports: Vec<SectionReport> = plan
        .sections
        .iter()
        .map(|d| {
            let (s, f) = (&plan.kinds[d.kind], &fits[d.kind]);
            SectionReport {
                name: d.name.clone(),
                kind: s.name.clone(),
                from_s: d.range.0,
                to_s: d.range.1,
                master_lufs: d.lufs,
                reference_s: s.paired.seconds,
                master_s: s.master.selection.seconds(),
                confidence: s.confidence(),
                reference_rel_lu: s.paired.rel_lu,
                distance_db: s.paired.distance_db,
                matched: s.matched(),
                held_stems: if s.matched() {
                    names(m, &s.held)
                } else {
                    Vec::new()
                },
                stem_db: f.stem_db.clone(),
                eq_db: f.eq.iter().map(|b| b.gain_db).collect(),
                rms_after_db: f.rms_after_db,
            }
        })
        .collect();
    (reports, fits)
}

/// Each matched kind's model error (see [`super::run::model_error`]): the check render
/// `after` of the proposal (`fits` times `factor`, one per kind) against the master, over
/// the kind's sections.
pub(crate) fn corrections(
    plan: &Plan,
    m: &Measurements,
    fits: &[Fit],
    factor: f64,
    limits: Limits,
    after: &Measured,
) -> Result<Vec<Option<Vec<f64>>>, MatchError> {
    plan.kinds
        .iter()
        .zip(fits)
        .map(|(s, f)| {
            if !s.matched() {
                return Ok(None);
            }
            let input = s.input(m, limits, &Target::WHOLE);
            let predicted = f.scaled(factor).predicted_db(&input);
            let sel = s.master.selection.clone();
            let a = Measured::new(after.scan.clone(), sel, (&m.grid, &m.thirds))?;
            Ok(Some(model_error(&a, &s.master, &predicted, &input.w_mid)))
        })
        .collect()
}

/// Which of `global`'s EQ bands the proposal holds (values times `factor`): those the whole
/// song or a section moves by 0.1 dB or more.
pub(crate) fn eq_bands_used(global: &Fit, reports: &[SectionReport], factor: f64) -> Vec<bool> {
    let used = |v: f64| round(factor * v, 2).abs() >= 0.1;
    (0..global.eq.len())
        .map(|i| used(global.eq[i].gain_db) || reports.iter().any(|r| used(r.eq_db[i])))
        .collect()
}

/// The proposal's value of a whole-song gain `v` (times `factor`): 0 when too small to write.
fn static_value(v: f64, factor: f64) -> f64 {
    let v = round(factor * v, 2);
    if v.abs() < 0.1 {
        0.0
    } else {
        v
    }
}

/// Whether per-section values `vals` need automation against the whole-song value
/// `fixed`: they differ among themselves, or all from it, by [`MIN_SPREAD_DB`] or more.
fn needs_automation(vals: &[f64], fixed: f64) -> bool {
    let hi = vals.iter().copied().fold(fixed, f64::max);
    let lo = vals.iter().copied().fold(fixed, f64::min);
    hi - lo >= MIN_SPREAD_DB
}

/// Step automation at the sections' starts of the stem sends and EQ gains whose section
/// values (times `factor`) differ from each other or from the whole-song value the proposal
/// sets.
pub(crate) fn automate(
    m: &Measurements,
    global: &Fit,
    reports: &[SectionReport],
    p: &mut Proposal,
    factor: f64,
) {
    if reports.is_empty() {
        return;
    }
    let per_section = |vals: &[f64]| {
        reports
            .iter()
            .zip(vals)
            .map(|(r, v)| format!("{} {v:+.1} dB", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (k, route) in m.routing.stems.iter().enumerate() {
        let vals: Vec<f64> = reports
            .iter()
            .map(|r| round(factor * r.stem_db[k], 2))
            .collect();
        if !needs_automation(&vals, static_value(global.stem_db[k], factor)) {
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
                    "{} per section ({}), each matched to the reference's parts that resemble it",
                    route.stem,
                    per_section(&vals)
                ),
            });
        }
    }
    let Some(eq) = &p.eq else { return };
    let node = eq.node.clone();
    let used = eq_bands_used(global, reports, factor);
    let mut n = 0;
    let mut autos = Vec::new();
    for (i, b) in global.eq.iter().enumerate() {
        if !used[i] {
            continue;
        }
        n += 1;
        let vals: Vec<f64> = reports
            .iter()
            .map(|r| round(factor * r.eq_db[i], 2))
            .collect();
        if !needs_automation(&vals, static_value(b.gain_db, factor)) {
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
                per_section(&vals)
            ),
        });
    }
    p.automation.extend(autos);
}
