//! [`propose`]: the whole match, step after step, from a session and its references to a
//! [`MatchReport`].

use super::dynamics::{self, Dynamics};
use super::eq::round;
use super::fit::{self, Fit, FitInput, Limits};
use super::grid::Grid;
use super::measure::{self, Measured};
use super::proposal::{EqChange, Proposal, StemChange};
use super::reference::{self, RefSpec};
use super::report::{Check, Curves, MatchReport, RefReport};
use super::routing::{self, Routing};
use super::select;
use super::spectra::CrossBands;
use super::{scan, sections, MatchError};
use crate::session::Session;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How to match.
pub struct MatchOptions {
    /// The references and their weights.
    pub references: Vec<RefSpec>,
    /// Match only this section of the recipe (`session { sections = … }`) to the references'
    /// loudest parts.
    pub section: Option<String>,
    /// How much of the fitted change to propose, % (0–100).
    pub amount_pct: f64,
    /// Clamps.
    pub limits: Limits,
    /// Render the proposal and measure how close it gets (the report's check).
    pub check: bool,
    /// Folder for the renders (a temporary folder).
    pub work_dir: PathBuf,
    /// Set from another thread (Ctrl-C) to stop the renders.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl MatchOptions {
    /// Defaults for `references`: the whole song, 100 %, default clamps, with the check.
    pub fn new(references: Vec<RefSpec>, work_dir: impl Into<PathBuf>) -> Self {
        MatchOptions {
            references,
            section: None,
            amount_pct: 100.0,
            limits: Limits::default(),
            check: true,
            work_dir: work_dir.into(),
            interrupt: None,
        }
    }
}

/// What was measured before the fit.
pub(crate) struct Measurements {
    pub grid: Grid,
    pub thirds: Grid,
    pub rate: u32,
    pub routing: Routing,
    pub master: Measured,
    pub stem_paths: Vec<PathBuf>,
    pub stems: CrossBands,
    pub refs: Vec<(f64, Measured)>,
    pub notes: Vec<String>,
}

/// The time range of section `name`, seconds.
fn section_range(session: &Session, name: &str, song_s: f64) -> Result<(f64, f64), MatchError> {
    sections::ranges(session, song_s)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r)
        .ok_or_else(|| {
            let known: Vec<&str> = session.sections.iter().map(|(n, _)| n.as_str()).collect();
            MatchError::Usage(format!(
                "--section {name}: the recipe declares no such section (sections: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
}

fn measure_all(session: &Session, opts: &MatchOptions) -> Result<Measurements, MatchError> {
    let dir = &opts.work_dir;
    let (master_path, result) =
        measure::render_master(session, dir, "master.wav", opts.interrupt.clone())?;
    let rate = result.sample_rate;
    let names: Vec<String> = session.stems.iter().map(|s| s.name.clone()).collect();
    let routing = routing::routing(&session.graph, &names)?;
    let stem_paths = measure::render_contributions(
        session,
        &routing,
        &dir.join("stems"),
        opts.interrupt.clone(),
    )?;
    let (grid, thirds) = (Grid::fit(), Grid::third_octave());
    let master_scan = scan::scan(&master_path, rate)?;
    let range = match &opts.section {
        Some(name) => Some(section_range(session, name, master_scan.seconds())?),
        None => None,
    };
    let selection = select::loudest(&master_scan, range);
    if selection.seconds() == 0.0 {
        return Err(MatchError::Input {
            path: session.recipe.clone(),
            reason: "its master is silent where it is measured".into(),
        });
    }
    let frames = master_scan.frames;
    let master = Measured::new(master_scan, selection, (&grid, &thirds))?;
    let stems = measure::bands(&stem_paths, rate, frames, &master.selection, &grid)?;
    let mut notes = result.warnings.clone();
    let mut refs = Vec::new();
    for r in &opts.references {
        let (s, n) = reference::load(&r.path, rate)?;
        notes.extend(n);
        let sel = select::loudest(&s, None);
        refs.push((r.weight, Measured::new(s, sel, (&grid, &thirds))?));
    }
    Ok(Measurements {
        grid,
        thirds,
        rate,
        routing,
        master,
        stem_paths,
        stems,
        refs,
        notes,
    })
}

/// Reference minus master per band (loudness-matched levels, references weighted), mid and
/// side, on the fit grid or the third-octave grid, against `master`.
pub(crate) fn difference(
    refs: &[(f64, Measured)],
    master: &Measured,
    side: bool,
    thirds: bool,
) -> Vec<f64> {
    let m = master.levels(side, thirds);
    let mut d = vec![0.0; m.len()];
    for (w, r) in refs {
        for (x, l) in d.iter_mut().zip(r.levels(side, thirds)) {
            *x += w * l;
        }
    }
    d.iter().zip(&m).map(|(r, m)| r - m).collect()
}

/// Weights of the fit's bands: by the references' loudness per band (quiet bands count
/// less), zero where the master has nothing; the side's by how much side there is.
pub(crate) fn weights(refs: &[(f64, Measured)], master: &Measured) -> (Vec<f64>, Vec<f64>) {
    let mut ref_mid = vec![0.0; master.fit.mid[0].len()];
    let mut ref_side = ref_mid.clone();
    for (w, r) in refs {
        for (b, (m, s)) in r
            .levels(false, false)
            .into_iter()
            .zip(r.levels(true, false))
            .enumerate()
        {
            ref_mid[b] += w * m;
            ref_side[b] += w * s;
        }
    }
    let top = ref_mid.iter().copied().fold(f64::MIN, f64::max);
    let (mm, ms) = (master.levels(false, false), master.levels(true, false));
    let mono = refs.iter().any(|(_, r)| r.scan.mono) || master.scan.mono;
    let w_mid: Vec<f64> = ref_mid
        .iter()
        .zip(&mm)
        .map(|(l, m)| {
            if *m < top - 100.0 {
                0.0
            } else {
                ((l - top + 50.0) / 40.0).clamp(0.1, 1.0)
            }
        })
        .collect();
    let w_side = (0..w_mid.len())
        .map(|b| {
            if mono {
                return 0.0;
            }
            let smr = (ref_side[b] - ref_mid[b]).min(ms[b] - mm[b]);
            0.7 * w_mid[b] * ((smr + 25.0) / 15.0).clamp(0.0, 1.0)
        })
        .collect();
    (w_mid, w_side)
}

/// The weighted mean of `v`.
pub(crate) fn weighted_mean_pub(v: &[f64], w: &[f64]) -> f64 {
    let sw: f64 = w.iter().sum();
    if sw > 0.0 {
        v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw
    } else {
        0.0
    }
}

/// What a fit aims at: the references' difference times `scale` (the share of the way to go:
/// `--amount` in the refinement, 1 in the first pass, whose fit is scaled afterwards), less
/// the model's error as the check render measured it (mid, per band of the fit grid, its mean
/// taken out: level is the loudness target's business).
/// The sections' fits get their own corrections, each measured over its section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub scale: f64,
    pub correction: Option<Vec<f64>>,
    /// Per section of the plan, in order.
    pub sections: Vec<Option<Vec<f64>>>,
}

impl Target {
    /// The whole difference, uncorrected.
    pub const WHOLE: Target = Target {
        scale: 1.0,
        correction: None,
        sections: Vec::new(),
    };

    /// The target of section `i`.
    pub fn section(&self, i: usize) -> Target {
        Target {
            scale: self.scale,
            correction: self.sections.get(i).cloned().flatten(),
            sections: Vec::new(),
        }
    }
}

/// The model's error: what the check render `after` changed against `before` (both over the
/// same selection, mid, fit grid) less what the fit `predicted`, its weighted mean (a level,
/// the loudness target's business) taken out.
pub(crate) fn model_error(
    after: &Measured,
    before: &Measured,
    predicted: &[f64],
    w: &[f64],
) -> Vec<f64> {
    let err: Vec<f64> = after
        .levels(false, false)
        .iter()
        .zip(before.levels(false, false))
        .zip(predicted)
        .map(|((a, b), p)| a - b - p)
        .collect();
    let mean = weighted_mean_pub(&err, w);
    err.iter().map(|e| e - mean).collect()
}

/// The fit's input for `master` against `refs`, aiming at `target`.
pub(crate) fn fit_input<'a>(
    m: &'a Measurements,
    refs: &[(f64, Measured)],
    master: &Measured,
    stems: &'a CrossBands,
    limits: Limits,
    target: &Target,
) -> FitInput<'a> {
    let (w_mid, w_side) = weights(refs, master);
    let scaled = |v: Vec<f64>| v.into_iter().map(|d| target.scale * d).collect::<Vec<_>>();
    let mut diff_mid = scaled(difference(refs, master, false, false));
    if let Some(c) = &target.correction {
        for (d, e) in diff_mid.iter_mut().zip(c) {
            *d -= e;
        }
    }
    FitInput {
        centres: &m.grid.centres,
        rate: f64::from(m.rate),
        diff_mid,
        diff_side: scaled(difference(refs, master, true, false)),
        w_mid,
        w_side,
        stems: Some(stems),
        limits,
    }
}

/// Runs the match: renders and measures the master and the stems, fits, proposes and, with
/// `opts.check`, renders the proposal and measures how close it gets.
pub fn propose(session: &Session, opts: &MatchOptions) -> Result<MatchReport, MatchError> {
    if opts.references.is_empty() {
        return Err(MatchError::Usage("give at least one --reference".into()));
    }
    if !(0.0..=100.0).contains(&opts.amount_pct) {
        return Err(MatchError::Usage(format!(
            "--amount {}: give a percentage from 0 to 100",
            opts.amount_pct
        )));
    }
    let mut refs = opts.references.clone();
    reference::normalise(&mut refs);
    let opts = MatchOptions {
        references: refs,
        section: opts.section.clone(),
        interrupt: opts.interrupt.clone(),
        work_dir: opts.work_dir.clone(),
        ..*opts
    };
    let m = measure_all(session, &opts)?;
    let amount = opts.amount_pct / 100.0;
    let dynamics = dynamics::compare(
        &m.refs.iter().map(|(w, r)| (*w, r)).collect::<Vec<_>>(),
        &m.master,
    );
    let input = fit_input(
        &m,
        &m.refs,
        &m.master,
        &m.stems,
        opts.limits,
        &Target::WHOLE,
    );
    let first = fit::fit(&input);
    let mut base_notes = m.notes.clone();
    let plan = if opts.section.is_none() && !session.sections.is_empty() {
        sections::plan(session, &m, &first, opts.limits, &mut base_notes)?
    } else {
        None
    };
    let ctx = Context {
        session,
        m: &m,
        plan: plan.as_ref(),
        opts: &opts,
        dynamics: &dynamics,
        reasons: &input,
    };
    let mut notes = base_notes.clone();
    let mut best = ctx.attempt(first, Target::WHOLE, amount, &mut notes)?;
    // The model is linear up to the mix bus; the master chain (compressor, limiter) is not.
    // With the check render in hand, the model's error is known: fit once more toward the
    // share of the difference `--amount` asks for, corrected by that error, and keep
    // whichever proposal lands closer to that share.
    if let (Some(after), true) = (&best.after, amount >= 0.01) {
        let predicted = best.fitted.scaled(amount).predicted_db(&input);
        let target = Target {
            scale: amount,
            correction: Some(model_error(after, &m.master, &predicted, &input.w_mid)),
            sections: match &plan {
                Some(p) => {
                    sections::corrections(p, &m, &best.section_fits, amount, opts.limits, after)?
                }
                None => Vec::new(),
            },
        };
        let corrected = fit_input(&m, &m.refs, &m.master, &m.stems, opts.limits, &target);
        let mut notes2 = base_notes.clone();
        let second = ctx.attempt(fit::fit(&corrected), target, 1.0, &mut notes2)?;
        let miss = |a: &Attempt| a.check.as_ref().map_or(f64::MAX, |c| c.target_rms_db);
        if miss(&second) < miss(&best) {
            best = second;
            notes = notes2;
            notes.push(
                "refined once with the check render's error (the master chain is not linear)"
                    .into(),
            );
        }
    }
    if let Some(n) = unexplained_note(&best.fitted, &best.proposal, opts.limits) {
        notes.push(n);
    }
    let Attempt {
        fitted,
        scale,
        factor,
        proposal,
        sections: section_reports,
        check,
        ..
    } = best;
    let curves = Curves::new(&m, &input, &fitted.scaled(factor));
    let full = fitted.scaled(1.0 / scale);
    Ok(MatchReport {
        recipe: session.recipe.clone(),
        references: m
            .refs
            .iter()
            .zip(&opts.references)
            .map(|((w, r), spec)| RefReport::new(spec, *w, r))
            .collect(),
        section: opts.section.clone(),
        amount_pct: opts.amount_pct,
        limits: opts.limits,
        stems: m.routing.stems.iter().map(|s| s.stem.clone()).collect(),
        fitted_stem_db: full.stem_db.clone(),
        fitted_width_db: full.width_db,
        model_rms_before_db: fitted.rms_before_db,
        model_rms_after_db: fitted.rms_after_db,
        dynamics,
        proposal,
        sections: section_reports,
        curves,
        check,
        notes,
    })
}

/// The weighted RMS of the difference (dB) a fit may leave unexplained before the report
/// says the reference is another song: a reference made from the same stems with a mix
/// change leaves 0.02–0.1 dB, another seed of the demo song under 1 dB; the corpus ballad
/// against the demo, 4.7 dB (it lacks 10–15 dB of the demo's lowest octave).
pub const UNEXPLAINED_DB: f64 = 1.0;

/// The note saying the reference differs more than any stem or EQ change explains, and
/// which proposed values sit at their clamps because of it, when the fit leaves more than
/// [`UNEXPLAINED_DB`]. Such values follow another song's spectrum as far as the clamps let
/// them: a direction to listen for, not a setting.
fn unexplained_note(fitted: &Fit, p: &Proposal, limits: Limits) -> Option<String> {
    if fitted.rms_after_db <= UNEXPLAINED_DB {
        return None;
    }
    let at = |v: f64, lim: f64| v.abs() >= lim - 0.05;
    let mut clamped: Vec<String> = p
        .stems
        .iter()
        .filter(|s| at(s.change_db, limits.stem_db))
        .map(|s| format!("{} {:+.1} dB", s.stem, s.change_db))
        .collect();
    for b in p.eq.iter().flat_map(|e| &e.bands) {
        if at(b.gain_db, limits.eq_db) {
            clamped.push(format!(
                "{} {:.0} Hz{} {:+.1} dB",
                b.kind.name(),
                b.freq_hz,
                if matches!(b.mode, crate::dsp::eq::band::Mode::Side) {
                    " (side)"
                } else {
                    ""
                },
                b.gain_db
            ));
        }
    }
    let which = if clamped.is_empty() {
        String::new()
    } else {
        format!(
            "; at the clamps because of it: {} (they follow its spectrum as far as the clamps \
             let them: a direction to listen for, not a setting)",
            clamped.join(", ")
        )
    };
    Some(format!(
        "the reference differs from the master more than stem and EQ changes explain \
         ({:.1} dB weighted RMS left, of {:.1} dB): another song or another arrangement{which}",
        fitted.rms_after_db, fitted.rms_before_db
    ))
}

/// One fit, its proposal and its check.
struct Attempt {
    fitted: Fit,
    /// The share of the difference the fit aimed at.
    scale: f64,
    /// What the proposal takes of the fit (`--amount` when `scale` is 1, else 1).
    factor: f64,
    proposal: Proposal,
    sections: Vec<sections::SectionReport>,
    /// The sections' fits (as fitted, before `factor`).
    section_fits: Vec<Fit>,
    check: Option<Check>,
    after: Option<Measured>,
}

/// What every pass of the match shares.
struct Context<'a> {
    session: &'a Session,
    m: &'a Measurements,
    plan: Option<&'a sections::Plan>,
    opts: &'a MatchOptions,
    dynamics: &'a Dynamics,
    /// The first pass's input: the whole difference, for the reasons shown.
    reasons: &'a FitInput<'a>,
}

impl Context<'_> {
    /// Proposes `factor` times `fitted` (a fit aiming at `target`), and checks it.
    fn attempt(
        &self,
        fitted: Fit,
        target: Target,
        factor: f64,
        notes: &mut Vec<String>,
    ) -> Result<Attempt, MatchError> {
        let (sections, section_fits) = match self.plan {
            Some(plan) => sections::fit_all(plan, self.m, &fitted, &target, self.opts.limits),
            None => (Vec::new(), Vec::new()),
        };
        let mut proposal = self.build(&fitted, target.scale, factor, &sections, notes);
        sections::automate(self.m, &fitted, &sections, &mut proposal, factor);
        let (check, after) = if self.opts.check {
            let (c, a) = check(self.session, &proposal, self.m, self.opts)?;
            (Some(c), Some(a))
        } else {
            (None, None)
        };
        Ok(Attempt {
            fitted,
            scale: target.scale,
            factor,
            proposal,
            sections,
            section_fits,
            check,
            after,
        })
    }
}

impl Context<'_> {
    /// The proposal from `fitted` (a fit of `scale` times the difference) taken `factor`
    /// times: values rounded as the file writes them, and the reasons. EQ bands only a section
    /// of `section_reports` moves are written at 0 dB for the song (the automation sets them).
    fn build(
        &self,
        fitted: &Fit,
        scale: f64,
        factor: f64,
        section_reports: &[sections::SectionReport],
        notes: &mut Vec<String>,
    ) -> Proposal {
        let (session, m, input, d) = (self.session, self.m, self.reasons, self.dynamics);
        let amount = self.opts.amount_pct / 100.0;
        let mut p = Proposal {
            amount_pct: self.opts.amount_pct,
            ..Proposal::default()
        };
        for (k, route) in m.routing.stems.iter().enumerate() {
            let change = round(factor * fitted.stem_db[k], 2);
            if change.abs() < 0.1 {
                continue;
            }
            p.stems.push(StemChange {
                stem: route.stem.clone(),
                change_db: change,
                sends: route
                    .sends
                    .iter()
                    .map(|s| (s.key(), s.gain_db, round(s.gain_db + change, 2)))
                    .collect(),
                why: super::report::stem_reason(m, input, k),
            });
        }
        let used = sections::eq_bands_used(fitted, section_reports, factor);
        let bands: Vec<_> = fitted
            .eq
            .iter()
            .zip(used)
            .filter(|(_, u)| *u)
            .map(|(b, _)| {
                let gain = round(factor * b.gain_db, 2);
                super::eq::EqBand {
                    freq_hz: round(b.freq_hz, 0),
                    gain_db: if gain.abs() < 0.1 { 0.0 } else { gain },
                    q: round(b.q, 3),
                    ..*b
                }
            })
            .collect();
        if !bands.is_empty() {
            // The reasons speak of the whole difference and the whole fit.
            let full = fitted.scaled(1.0 / scale);
            let stems_db = full.stems_db(input);
            p.eq = Some(EqChange {
                node: unique_id(session, &format!("{}.match_eq", m.routing.mix_bus)),
                after: m.routing.mix_bus.clone(),
                why: bands
                    .iter()
                    .map(|b| {
                        if b.gain_db == 0.0 {
                            "0 dB for the song: a section moves it (see the automation)".into()
                        } else {
                            super::report::eq_reason(input, &stems_db, full.offset_db, b)
                        }
                    })
                    .collect(),
                bands,
            });
        }
        let width_id = unique_id(session, &format!("{}.match_width", m.routing.mix_bus));
        p.width = dynamics::width(
            session,
            &m.routing.mix_bus,
            &width_id,
            factor * fitted.width_db,
            d,
        );
        if p.eq.is_none() && p.width.as_ref().is_some_and(|w| !w.exists) {
            p.width = None;
            notes.push("the width change is too small to add a width node for".into());
        }
        match dynamics::loudness(session, &m.routing.mix_bus, d, amount) {
            Ok(l) => p.loudness = Some(l),
            Err(n) => notes.push(n),
        }
        p
    }
}

/// `base`, or `base_2`, `base_3`… if the session already has that id.
fn unique_id(session: &Session, base: &str) -> String {
    if session.graph.find(base).is_none() {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}_{i}"))
        .find(|id| session.graph.find(id).is_none())
        .unwrap_or_default()
}

/// Renders the session with the proposal and measures it against the references.
fn check(
    session: &Session,
    proposal: &Proposal,
    m: &Measurements,
    opts: &MatchOptions,
) -> Result<(Check, Measured), MatchError> {
    let mut s = session.clone();
    proposal.apply(&mut s)?;
    let (path, result) =
        measure::render_master(&s, &opts.work_dir, "after.wav", opts.interrupt.clone())?;
    let after_scan = scan::scan(&path, m.rate)?;
    let range = match &opts.section {
        Some(name) => Some(section_range(session, name, after_scan.seconds())?),
        None => None,
    };
    let sel = select::loudest(&after_scan, range);
    let after = Measured::new(after_scan, sel, (&m.grid, &m.thirds))?;
    Ok((
        Check::new(
            m,
            &after,
            result.target.as_ref().map(|t| t.drive_db),
            opts.amount_pct / 100.0,
        ),
        after,
    ))
}
