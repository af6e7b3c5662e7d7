//! The match report: what was measured, what is proposed and why, and how close the proposal
//! gets (the check render, loudness-matched, per third-octave band), as JSON and Markdown.

use super::dynamics::Dynamics;
use super::eq::EqBand;
use super::fit::{Fit, FitInput, Limits};
use super::measure::Measured;
use super::proposal::Proposal;
use super::reference::RefSpec;
use super::run::{difference, Measurements};
use super::sections::SectionReport;
use crate::dsp::eq::band::BandType;
use std::path::PathBuf;

/// One reference as measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RefReport {
    /// The file.
    pub path: PathBuf,
    /// Its weight (the weights add up to 1).
    pub weight: f64,
    /// Its length, s.
    pub seconds: f64,
    /// Its own sample rate, Hz.
    pub sample_rate_hz: u32,
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// Seconds measured (its loudest sections).
    pub measured_s: f64,
}

impl RefReport {
    pub(crate) fn new(spec: &RefSpec, weight: f64, m: &Measured) -> RefReport {
        RefReport {
            path: spec.path.clone(),
            weight,
            seconds: m.scan.seconds(),
            sample_rate_hz: m.scan.file_rate,
            integrated_lufs: m.scan.integrated_lufs,
            measured_s: m.selection.seconds(),
        }
    }
}

/// The curves of the report and its plot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Curves {
    /// The fit grid, Hz.
    pub fit_hz: Vec<f64>,
    /// Reference minus master (mid), dB, loudness-matched.
    pub difference_db: Vec<f64>,
    /// What the proposal predicts (mid, at `--amount`), dB.
    pub predicted_db: Vec<f64>,
    /// The proposed stereo EQ's response, dB.
    pub eq_db: Vec<f64>,
    /// The stems' part of the prediction, dB.
    pub stems_db: Vec<f64>,
}

impl Curves {
    pub(crate) fn new(m: &Measurements, input: &FitInput<'_>, fitted: &Fit) -> Curves {
        let rate = f64::from(m.rate);
        Curves {
            fit_hz: m.grid.centres.clone(),
            difference_db: input.diff_mid.clone(),
            predicted_db: fitted.predicted_db(input),
            eq_db: m
                .grid
                .centres
                .iter()
                .map(|&f| super::eq::response_db(&fitted.eq, f, rate, false))
                .collect(),
            stems_db: fitted.stems_db(input),
        }
    }
}

/// How close the proposal gets: the master rendered with it, against the references.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    /// Third-octave centres, Hz.
    pub thirds_hz: Vec<f64>,
    /// Master minus reference per third-octave band before, dB (loudness-matched, mid).
    pub before_db: Vec<f64>,
    /// After.
    pub after_db: Vec<f64>,
    /// Largest |difference| from 50 Hz to 16 kHz before, dB.
    pub before_max_db: f64,
    /// After.
    pub after_max_db: f64,
    /// RMS difference before, dB.
    pub before_rms_db: f64,
    /// After.
    pub after_rms_db: f64,
    /// The references' integrated loudness, LUFS.
    pub reference_lufs: f64,
    /// The master's before, LUFS.
    pub before_lufs: f64,
    /// After, LUFS.
    pub after_lufs: f64,
    /// The limiter's drive after, dB (when the recipe has a target).
    pub after_drive_db: Option<f64>,
    /// How far the master moved short of (or past) the share of the way `--amount` asks for,
    /// per third-octave band: after minus (master + amount × (reference − master)), dB. At
    /// 100 % this is `after_db`.
    pub target_db: Vec<f64>,
    /// Largest |`target_db`|, dB.
    pub target_max_db: f64,
    /// RMS of `target_db`, dB.
    pub target_rms_db: f64,
}

fn max_rms(v: &[f64]) -> (f64, f64) {
    let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let rms = (v.iter().map(|x| x * x).sum::<f64>() / v.len().max(1) as f64).sqrt();
    (max, rms)
}

impl Check {
    pub(crate) fn new(
        m: &Measurements,
        after: &Measured,
        drive: Option<f64>,
        amount: f64,
    ) -> Check {
        let neg = |v: Vec<f64>| v.into_iter().map(|x| -x).collect::<Vec<_>>();
        let before = neg(difference(&m.refs, &m.master, false, true));
        let after_d = neg(difference(&m.refs, after, false, true));
        let (bm, br) = max_rms(&before);
        let (am, ar) = max_rms(&after_d);
        // after − master − amount·(ref − master) = after_d − (1 − amount)·before.
        let target: Vec<f64> = after_d
            .iter()
            .zip(&before)
            .map(|(a, b)| a - (1.0 - amount) * b)
            .collect();
        let (tm, tr) = max_rms(&target);
        Check {
            thirds_hz: m.thirds.centres.clone(),
            before_db: before,
            after_db: after_d,
            before_max_db: bm,
            after_max_db: am,
            before_rms_db: br,
            after_rms_db: ar,
            reference_lufs: m.refs.iter().map(|(w, r)| w * r.scan.integrated_lufs).sum(),
            before_lufs: m.master.scan.integrated_lufs,
            after_lufs: after.scan.integrated_lufs,
            after_drive_db: drive,
            target_db: target,
            target_max_db: tm,
            target_rms_db: tr,
        }
    }
}

/// Everything `stemgraph match` found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MatchReport {
    /// The recipe.
    pub recipe: PathBuf,
    /// The references.
    pub references: Vec<RefReport>,
    /// The section matched (`--section`), if any.
    pub section: Option<String>,
    /// `--amount`, %.
    pub amount_pct: f64,
    /// The clamps.
    pub limits: Limits,
    /// The stems fitted, in order.
    pub stems: Vec<String>,
    /// The fitted stem changes before `--amount`, dB.
    pub fitted_stem_db: Vec<f64>,
    /// The fitted side change before `--amount`, dB.
    pub fitted_width_db: f64,
    /// Weighted RMS of the difference the model leaves, before and after, dB.
    pub model_rms_before_db: f64,
    /// After.
    pub model_rms_after_db: f64,
    /// Loudness, dynamics and width, compared.
    pub dynamics: Dynamics,
    /// What to change.
    pub proposal: Proposal,
    /// Section-aware values.
    pub sections: Vec<SectionReport>,
    /// The curves.
    pub curves: Curves,
    /// The check render.
    pub check: Option<Check>,
    /// Notes (resampled, mono, clipped references; what could not be proposed).
    pub notes: Vec<String>,
}

/// `lo–hi Hz` of the bands `b0..=b1` of the fit grid.
fn span(centres: &[f64], b0: usize, b1: usize) -> String {
    let f = |x: f64| {
        if x >= 1000.0 {
            format!("{:.1} kHz", x / 1000.0)
        } else {
            format!("{x:.0} Hz")
        }
    };
    format!("{}–{}", f(centres[b0]), f(centres[b1]))
}

/// Why stem `k` changes: the difference where it dominates the mix.
pub(crate) fn stem_reason(m: &Measurements, input: &FitInput<'_>, k: usize) -> String {
    let c = &m.stems;
    let total = c.total(false);
    let share: Vec<f64> = (0..total.len())
        .map(|b| {
            let own: f64 = (0..c.n).map(|j| c.mid[c.pair(k, j)][b]).sum();
            if total[b] > 0.0 {
                (own / total[b]).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    let (peak, top) = share.iter().enumerate().fold((0, 0.0), |a, (b, &s)| {
        if s * input.w_mid[b] > a.1 {
            (b, s * input.w_mid[b])
        } else {
            a
        }
    });
    let keep = |b: usize| share[b] * input.w_mid[b] >= 0.6 * top;
    let mut b0 = peak;
    while b0 > 0 && keep(b0 - 1) {
        b0 -= 1;
    }
    let mut b1 = peak;
    while b1 + 1 < share.len() && keep(b1 + 1) {
        b1 += 1;
    }
    let mean = |v: &[f64]| v[b0..=b1].iter().sum::<f64>() / (b1 - b0 + 1) as f64;
    let offset = super::run::weighted_mean_pub(&input.diff_mid, &input.w_mid);
    format!(
        "reference has {:+.1} dB at {} against the rest of the spectrum, where {} is {:.0} % of the mix",
        mean(&input.diff_mid) - offset,
        span(input.centres, b0, b1),
        m.routing.stems[k].stem,
        100.0 * mean(&share)
    )
}

/// Why an EQ band: the difference left after the stems where the band acts.
pub(crate) fn eq_reason(input: &FitInput<'_>, stems_db: &[f64], offset: f64, b: &EqBand) -> String {
    let c = input.centres;
    let side_band = b.mode == crate::dsp::eq::band::Mode::Side;
    // A side band answers the side's difference beyond the mid's.
    let left: Vec<f64> = (0..c.len())
        .map(|i| {
            if side_band {
                input.diff_side[i] - input.diff_mid[i]
            } else {
                input.diff_mid[i] - stems_db[i] - offset
            }
        })
        .collect();
    let mean_where = |pred: &dyn Fn(f64) -> bool| {
        let v: Vec<f64> = (0..c.len())
            .filter(|&i| pred(c[i]))
            .map(|i| left[i])
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let side = if side_band {
        " in the side, beyond the mid's difference"
    } else {
        ""
    };
    match b.kind {
        BandType::Tilt => {
            format!(
            "reference is {} overall{side}: {:+.1} dB above 4 kHz against {:+.1} dB below 250 Hz{}",
            if b.gain_db > 0.0 { "brighter" } else { "darker" },
            mean_where(&|f| f > 4000.0),
            mean_where(&|f| f < 250.0),
            if side_band { "" } else { ", after the stem changes" }
        )
        }
        BandType::HighShelf => format!(
            "reference has {:+.1} dB above {:.0} Hz{side}{}",
            mean_where(&|f| f > b.freq_hz),
            b.freq_hz,
            if side_band {
                ""
            } else {
                " after the stem changes"
            }
        ),
        BandType::LowShelf => format!(
            "reference has {:+.1} dB below {:.0} Hz{side}{}",
            mean_where(&|f| f < b.freq_hz),
            b.freq_hz,
            if side_band {
                ""
            } else {
                " after the stem changes"
            }
        ),
        _ => {
            let w = 2f64.powf(0.5 / b.q);
            format!(
                "reference has {:+.1} dB around {:.0} Hz (Q {:.1}) that no stem explains",
                mean_where(&|f| f > b.freq_hz / w && f < b.freq_hz * w),
                b.freq_hz,
                b.q
            )
        }
    }
}

impl MatchReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let p = &self.proposal;
        o += &format!("# Match: {}\n\n", self.recipe.display());
        for r in &self.references {
            o += &format!(
                "- reference `{}` (weight {:.2}): {:.1} s at {} Hz, {:.1} LUFS, {:.1} s of loudest sections measured\n",
                r.path.display(), r.weight, r.seconds, r.sample_rate_hz, r.integrated_lufs, r.measured_s
            );
        }
        if let Some(s) = &self.section {
            o += &format!("- section matched: `{s}`\n");
        }
        o += &format!(
            "- amount: {:.0} %\n\n## Proposal\n\n| change | why |\n|---|---|\n",
            self.amount_pct
        );
        for s in &p.stems {
            o += &format!(
                "| `{}` {:+.2} dB (its sends) | {} |\n",
                s.stem, s.change_db, s.why
            );
        }
        if let Some(e) = &p.eq {
            for (b, why) in e.bands.iter().zip(&e.why) {
                o += &format!(
                    "| `{}` {} {:.0} Hz {:+.2} dB | {} |\n",
                    e.node,
                    b.kind.name(),
                    b.freq_hz,
                    b.gain_db,
                    why
                );
            }
        }
        if let Some(w) = &p.width {
            o += &format!(
                "| `{}` width {:.0} → {:.1} % | {} |\n",
                w.node, w.from_pct, w.to_pct, w.why
            );
        }
        if let Some(l) = &p.loudness {
            o += &format!("| target {:.2} LUFS | {} |\n", l.to_lufs, l.why);
        }
        for a in &p.automation {
            o += &format!("| `{}` per section | {} |\n", a.param, a.why);
        }
        let d = &self.dynamics;
        o += &format!(
            "\n## Dynamics and width\n\n| | reference | master |\n|---|---|---|\n\
             | integrated | {:.1} LUFS | {:.1} LUFS |\n| PLR | {:.1} dB | {:.1} dB |\n\
             | LRA | {:.1} LU | {:.1} LU |\n| side to mid | {:.1} dB | {:.1} dB |\n",
            d.reference_lufs,
            d.master_lufs,
            d.reference_plr_db,
            d.master_plr_db,
            d.reference_lra_lu,
            d.master_lra_lu,
            d.reference_side_to_mid_db,
            d.master_side_to_mid_db
        );
        o += &format!(
            "\nThe fit leaves {:.2} dB RMS of the {:.2} dB RMS difference (weighted, sixth-octave bands).\n",
            self.model_rms_after_db, self.model_rms_before_db
        );
        if let Some(c) = &self.check {
            o += &format!(
                "\n## How close it gets\n\nThe master rendered with the proposal, loudness-matched against the \
                 reference, third-octave bands 50 Hz–16 kHz: largest difference {:.2} dB (before {:.2}), RMS {:.2} dB \
                 (before {:.2}); loudness {:.2} LUFS against the reference's {:.2} (before {:.2}).\n",
                c.after_max_db, c.before_max_db, c.after_rms_db, c.before_rms_db, c.after_lufs, c.reference_lufs, c.before_lufs
            );
            if self.amount_pct < 100.0 {
                o += &format!(
                    "\nAgainst {:.0} % of the way to the reference (what `--amount` asks for): largest \
                     difference {:.2} dB, RMS {:.2} dB.\n",
                    self.amount_pct, c.target_max_db, c.target_rms_db
                );
            }
        }
        if !self.sections.is_empty() {
            let matched = self.sections.iter().filter(|s| s.matched).count();
            o += &format!(
                "\n## Sections\n\nMatched on their own: {matched} of {} sections (the others keep the \
                 whole-song values). The sections of one kind (the verses, the choruses) are matched \
                 together: each kind to the parts of the reference that resemble it (spectral shape \
                 first, loudness rank second), over the parts of its sections that have a counterpart \
                 there; the figures after the loudness are the kind's. Confidence: the seconds paired on \
                 both sides over 15 s; under 1 the kind's values are pulled harder toward no change.\n\n\
                 | section | kind | from | to | master loudness | measured | reference paired | its loudness rank | distance | confidence | fit RMS |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|\n",
                self.sections.len()
            );
            for s in &self.sections {
                let paired = if s.matched {
                    format!(
                        "{:.1} s | {:.1} s | {:+.1} LU | {:.1} dB | {:.2} | {:.2} dB",
                        s.master_s,
                        s.reference_s,
                        s.reference_rel_lu,
                        s.distance_db,
                        s.confidence,
                        s.rms_after_db
                    )
                } else {
                    format!(
                        "{:.1} s | {:.1} s: too little, whole-song values kept | | | 0 |",
                        s.master_s, s.reference_s
                    )
                };
                o += &format!(
                    "| {} | {} | {:.1} s | {:.1} s | {:.1} LUFS | {paired} |\n",
                    s.name, s.kind, s.from_s, s.to_s, s.master_lufs,
                );
            }
        }
        if !self.notes.is_empty() {
            o += "\n## Notes\n\n";
            for n in &self.notes {
                o += &format!("- {n}\n");
            }
        }
        o
    }
}
