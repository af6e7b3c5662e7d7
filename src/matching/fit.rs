//! The joint fit of the per-stem balance and the tonal balance to the reference/master
//! difference.
//!
//! On the fit grid (sixth-octave bands), `D_b` is the reference's band level minus the master's
//! (each over its loudest sections), mid and side apart. The proposal predicts the master's
//! change in band `b` as
//!
//! ```text
//! mid:  10·log10(P_b(a) / P_b(1)) + E_b + c
//! side: 10·log10(S_b(a) / S_b(1)) + E_b + E'_b + c + w
//! ```
//!
//! where `a_k = 10^(x_k/20)` are the stems' gains, `P_b(a) = Σ_k Σ_j a_k a_j C_kj(b)` the band
//! power of the stems' sum with their measured cross terms, `E_b` the stereo EQ's response
//! (tilt, shelves, bells), `E'_b` the side EQ's, `c` a level offset (the loudness target takes
//! care of level) and `w` the side's broadband change (the width). The fit minimises the
//! loudness-weighted squared difference plus penalties that pull every stem gain toward 0 dB
//! (an L1-like penalty: a change explained by one stem is not spread over all) and every EQ
//! gain toward 0 dB, all within clamps. Stem gains are power gains `a_k² > 0` by construction.
//! Bells are added one at a time where the residual is largest, and kept only when they earn
//! their place.

use super::eq::{self, EqBand, SHELF_Q, TILT_HZ};
use super::lm::{self, Problem};
use super::spectra::CrossBands;
use crate::dsp::eq::band::{BandType, Mode};

/// What the fit is given.
pub struct FitInput<'a> {
    /// Band centres, Hz.
    pub centres: &'a [f64],
    /// The session rate (for the EQ's responses).
    pub rate: f64,
    /// Reference minus master, dB, mid.
    pub diff_mid: Vec<f64>,
    /// Reference minus master, dB, side.
    pub diff_side: Vec<f64>,
    /// Weight of each band, mid (0 to 1).
    pub w_mid: Vec<f64>,
    /// Weight of each band, side (0 everywhere: the side is not fitted).
    pub w_side: Vec<f64>,
    /// The stems' cross band powers over the master's loudest sections (`None`: EQ only).
    pub stems: Option<&'a CrossBands>,
    /// Clamps and sizes.
    pub limits: Limits,
}

/// Clamps of the fit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limits {
    /// Largest stem change, dB.
    pub stem_db: f64,
    /// Largest EQ band gain, dB.
    pub eq_db: f64,
    /// Largest width change, dB of side level.
    pub width_db: f64,
    /// Bells at most.
    pub bells: usize,
    /// Lowest and highest bell Q.
    pub q: (f64, f64),
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stem_db: 6.0,
            eq_db: 6.0,
            width_db: 6.0,
            bells: 3,
            q: (0.5, 4.0),
        }
    }
}

/// What the fit found.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Gain change per stem, dB (as ordered in the stems' cross bands).
    pub stem_db: Vec<f64>,
    /// Level offset, dB (absorbed by the loudness target).
    pub offset_db: f64,
    /// Side level change, dB (the width).
    pub width_db: f64,
    /// EQ bands (stereo and side), gains possibly 0.
    pub eq: Vec<EqBand>,
    /// Weighted RMS of the difference before and after, dB (mid).
    pub rms_before_db: f64,
    /// After.
    pub rms_after_db: f64,
    /// The parameter vector and the number of bells (for a refit with the same structure).
    params: (Vec<f64>, usize),
}

impl Fit {
    /// The same fit with every gain (stems, EQ bands, width, offset) times `factor`: the
    /// proposal at `--amount` (frequencies and Qs unchanged).
    pub fn scaled(&self, factor: f64) -> Fit {
        let (x, bells) = &self.params;
        let l = Layout {
            stems: self.stem_db.len(),
            bells: *bells,
        };
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| if l.structural(i) { *v } else { factor * v })
            .collect();
        let mut f = self.clone();
        f.stem_db = y[..l.stems].to_vec();
        f.offset_db = y[l.offset()];
        f.width_db = y[l.width()];
        for b in &mut f.eq {
            b.gain_db *= factor;
        }
        f.params.0 = y;
        f
    }

    /// The master's predicted change in dB on the grid (mid): stems, EQ and offset.
    pub fn predicted_db(&self, input: &FitInput<'_>) -> Vec<f64> {
        let joint = Joint::new(input, self.params.1);
        joint.predicted(&self.params.0)
    }

    /// The stems' part of the predicted change, dB per band (mid).
    pub fn stems_db(&self, input: &FitInput<'_>) -> Vec<f64> {
        let joint = Joint::new(input, self.params.1);
        let a = joint.stem_gains(&self.params.0);
        (0..input.centres.len())
            .map(|b| joint.stems_at(&a, b, false))
            .collect()
    }
}

/// Penalty weights per dB: stems, EQ gains and width, bells.
const STEM_PENALTY: f64 = 0.05;
const EQ_PENALTY: f64 = 0.1;
const BELL_PENALTY: f64 = 0.25;
/// Side EQ corner frequencies, Hz.
const SIDE_LOW_HZ: f64 = 250.0;
const SIDE_HIGH_HZ: f64 = 4000.0;

/// The parameter vector's layout.
#[derive(Clone, Copy)]
struct Layout {
    stems: usize,
    bells: usize,
}

impl Layout {
    fn offset(&self) -> usize {
        self.stems
    }
    fn width(&self) -> usize {
        self.stems + 1
    }
    /// tilt, low shelf gain, low shelf log2 Hz, high shelf gain, high shelf log2 Hz.
    fn eq(&self) -> usize {
        self.stems + 2
    }
    /// side tilt, side low shelf gain, side high shelf gain.
    fn side(&self) -> usize {
        self.stems + 7
    }
    fn bell(&self, i: usize) -> usize {
        self.stems + 10 + 3 * i
    }
    fn len(&self) -> usize {
        self.bell(self.bells)
    }
    /// Whether parameter `i` is a frequency or a Q (not a gain).
    fn structural(&self, i: usize) -> bool {
        let e = self.eq();
        i == e + 2 || i == e + 4 || (i >= self.bell(0) && !(i - self.bell(0)).is_multiple_of(3))
    }
}

struct Joint<'a> {
    input: &'a FitInput<'a>,
    layout: Layout,
    base_mid: Vec<f64>,
    base_side: Vec<f64>,
    fit_side: bool,
    /// Frequencies and Qs held at these values (a refit with a fixed structure).
    pinned: Option<Vec<f64>>,
    /// Stems held at a value.
    held: Vec<Option<f64>>,
    /// How strongly the penalties pull toward 0 dB (1: the whole-song fit; more where the
    /// evidence is thinner).
    prior: f64,
}

impl<'a> Joint<'a> {
    fn new(input: &'a FitInput<'a>, bells: usize) -> Joint<'a> {
        let stems = input.stems.map_or(0, |c| c.n);
        let (base_mid, base_side) = match input.stems {
            Some(c) => (c.total(false), c.total(true)),
            None => (
                vec![0.0; input.centres.len()],
                vec![0.0; input.centres.len()],
            ),
        };
        Joint {
            input,
            layout: Layout { stems, bells },
            base_mid,
            base_side,
            fit_side: input.w_side.iter().any(|w| *w > 0.0),
            pinned: None,
            held: vec![None; stems],
            prior: 1.0,
        }
    }

    /// The stems' part of the change in band `b`, dB.
    fn stems_at(&self, a: &[f64], b: usize, side: bool) -> f64 {
        let base = if side {
            self.base_side[b]
        } else {
            self.base_mid[b]
        };
        match self.input.stems {
            Some(c) if base > 0.0 => 10.0 * (c.power(a, b, side).max(1e-300) / base).log10(),
            _ => 0.0,
        }
    }

    /// The predicted mid change per band, dB.
    fn predicted(&self, x: &[f64]) -> Vec<f64> {
        let bands = self.bands(x);
        let a = self.stem_gains(x);
        let inp = self.input;
        inp.centres
            .iter()
            .enumerate()
            .map(|(b, &f)| {
                self.stems_at(&a, b, false)
                    + eq::response_db(&bands, f, inp.rate, false)
                    + x[self.layout.offset()]
            })
            .collect()
    }

    fn bands(&self, x: &[f64]) -> Vec<EqBand> {
        let l = self.layout;
        let e = l.eq();
        let mut b = vec![
            band(BandType::Tilt, TILT_HZ, x[e], SHELF_Q, Mode::Stereo),
            band(
                BandType::LowShelf,
                2f64.powf(x[e + 2]),
                x[e + 1],
                SHELF_Q,
                Mode::Stereo,
            ),
            band(
                BandType::HighShelf,
                2f64.powf(x[e + 4]),
                x[e + 3],
                SHELF_Q,
                Mode::Stereo,
            ),
        ];
        for i in 0..l.bells {
            let p = l.bell(i);
            b.push(band(
                BandType::Bell,
                2f64.powf(x[p + 1]),
                x[p],
                2f64.powf(x[p + 2]),
                Mode::Stereo,
            ));
        }
        let s = l.side();
        b.push(band(BandType::Tilt, TILT_HZ, x[s], SHELF_Q, Mode::Side));
        b.push(band(
            BandType::LowShelf,
            SIDE_LOW_HZ,
            x[s + 1],
            SHELF_Q,
            Mode::Side,
        ));
        b.push(band(
            BandType::HighShelf,
            SIDE_HIGH_HZ,
            x[s + 2],
            SHELF_Q,
            Mode::Side,
        ));
        b
    }

    fn stem_gains(&self, x: &[f64]) -> Vec<f64> {
        x[..self.layout.stems]
            .iter()
            .map(|d| 10f64.powf(d / 20.0))
            .collect()
    }
}

fn band(kind: BandType, freq_hz: f64, gain_db: f64, q: f64, mode: Mode) -> EqBand {
    EqBand {
        kind,
        freq_hz,
        gain_db,
        q,
        mode,
    }
}

impl Problem for Joint<'_> {
    fn residuals(&self, x: &[f64], r: &mut Vec<f64>) {
        r.clear();
        let inp = self.input;
        let l = self.layout;
        let bands = self.bands(x);
        let a = self.stem_gains(x);
        for (b, &f) in inp.centres.iter().enumerate() {
            let e_mid = eq::response_db(&bands, f, inp.rate, false);
            let mid = self.stems_at(&a, b, false) + e_mid + x[l.offset()];
            r.push(inp.w_mid[b] * (mid - inp.diff_mid[b]));
            if self.fit_side {
                let side = self.stems_at(&a, b, true)
                    + eq::response_db(&bands, f, inp.rate, true)
                    + x[l.offset()]
                    + x[l.width()];
                r.push(inp.w_side[b] * (side - inp.diff_side[b]));
            }
        }
        let p = self.prior;
        for &v in &x[..l.stems] {
            r.push(p * STEM_PENALTY * v);
        }
        let e = l.eq();
        for i in [e, e + 1, e + 3] {
            r.push(p * EQ_PENALTY * x[i]);
        }
        if self.fit_side {
            let s = l.side();
            for i in [l.width(), s, s + 1, s + 2] {
                r.push(p * EQ_PENALTY * x[i]);
            }
        }
        for i in 0..l.bells {
            r.push(p * BELL_PENALTY * x[l.bell(i)]);
        }
    }

    fn bounds(&self, i: usize) -> (f64, f64) {
        let l = self.layout;
        let lim = &self.input.limits;
        let e = l.eq();
        let s = l.side();
        let side_ok = self.fit_side;
        let pin = (0.0, 0.0);
        if let (true, Some(p)) = (l.structural(i), &self.pinned) {
            return (p[i], p[i]);
        }
        match i {
            _ if i < l.stems && self.held[i].is_some() => {
                let v = self.held[i].unwrap_or(0.0);
                (v, v)
            }
            _ if i < l.stems => (-lim.stem_db, lim.stem_db),
            _ if i == l.offset() => (-60.0, 60.0),
            _ if i == l.width() => {
                if side_ok {
                    (-lim.width_db, lim.width_db)
                } else {
                    pin
                }
            }
            _ if i == e || i == e + 1 || i == e + 3 => (-lim.eq_db, lim.eq_db),
            _ if i == e + 2 => (40f64.log2(), 400f64.log2()),
            _ if i == e + 4 => (2000f64.log2(), 14000f64.log2()),
            _ if (s..s + 3).contains(&i) => {
                if side_ok {
                    (-lim.eq_db, lim.eq_db)
                } else {
                    pin
                }
            }
            _ => match (i - l.bell(0)) % 3 {
                0 => (-lim.eq_db, lim.eq_db),
                1 => (40f64.log2(), 16000f64.log2()),
                _ => (lim.q.0.log2(), lim.q.1.log2()),
            },
        }
    }
}

/// Fits stems, EQ and width to `input`.
pub fn fit(input: &FitInput<'_>) -> Fit {
    let mut joint = Joint::new(input, 0);
    let mut x = vec![0.0; joint.layout.len()];
    let e = joint.layout.eq();
    x[e + 2] = 120f64.log2();
    x[e + 4] = 6000f64.log2();
    x[joint.layout.offset()] = weighted_mean(&input.diff_mid, &input.w_mid);
    let rms_before = weighted_rms(&joint, &vec![0.0; x.len()], input);
    let mut cost = lm::solve(&joint, &mut x, 200);
    for _ in 0..input.limits.bells {
        let Some((next, next_cost)) = add_bell(&joint, &x, cost) else {
            break;
        };
        joint.layout.bells += 1;
        x = next;
        cost = next_cost;
    }
    let x = sparse_stems(&mut joint, x);
    finish(&joint, x, rms_before, &[])
}

/// The smallest change that explains the difference: stems whose change is small are held at
/// 0 dB, one at a time from the smallest, when the fit without them is as good (its weighted
/// RMS worse by at most `SPARSE_TOLERANCE_DB`). The level common to all stems is the offset's.
fn sparse_stems(joint: &mut Joint<'_>, x: Vec<f64>) -> Vec<f64> {
    let n = joint.layout.stems;
    let mut x = x;
    let relative = |x: &[f64]| {
        let mut v = x[..n].to_vec();
        v.sort_by(f64::total_cmp);
        let m = v.get(n / 2).copied().unwrap_or(0.0);
        x[..n].iter().map(|d| d - m).collect::<Vec<_>>()
    };
    let base = weighted_rms(joint, &x, joint.input);
    let mut order: Vec<usize> = (0..n).collect();
    let rel = relative(&x);
    order.sort_by(|&a, &b| rel[a].abs().total_cmp(&rel[b].abs()));
    for k in order {
        let rel = relative(&x);
        if rel[k].abs() > SPARSE_MAX_DB || joint.held[k].is_some() {
            continue;
        }
        joint.held[k] = Some(0.0);
        let mut y = x.clone();
        // Hold it at the others' median level (the level is the offset's).
        let shift = rel[k] - y[k];
        for v in &mut y[..n] {
            *v += shift;
        }
        y[k] = 0.0;
        y[joint.layout.offset()] -= shift;
        lm::solve(joint, &mut y, 200);
        if weighted_rms(joint, &y, joint.input) <= base + SPARSE_TOLERANCE_DB {
            x = y;
        } else {
            joint.held[k] = None;
        }
    }
    x
}

/// Stem changes up to this size may be dropped, dB.
const SPARSE_MAX_DB: f64 = 1.5;
/// How much worse (weighted RMS, dB) the fit may get when a stem is held at 0 dB.
const SPARSE_TOLERANCE_DB: f64 = 0.03;

/// Fits `input` again with the structure of `global` (its frequencies, Qs and bells), from
/// its values, every gain pulled toward 0 dB as in the whole-song fit (the smallest change:
/// material like the master's gets none) with the penalties times `prior` (more where the
/// section's evidence is thin), and the stems flagged in `held` kept at its values: the
/// per-section fits.
pub fn refit(input: &FitInput<'_>, global: &Fit, held: &[bool], prior: f64) -> Fit {
    let mut joint = Joint::new(input, global.params.1);
    joint.pinned = Some(global.params.0.clone());
    joint.prior = prior;
    for (k, h) in joint.held.iter_mut().enumerate() {
        if held.get(k).copied().unwrap_or(false) {
            *h = Some(global.params.0[k]);
        }
    }
    let mut x = global.params.0.clone();
    let rms_before = weighted_rms(&joint, &vec![0.0; x.len()], input);
    lm::solve(&joint, &mut x, 200);
    finish(&joint, x, rms_before, held)
}

/// The fit from the solved `x`; the stems flagged in `fixed` (held at the whole-song value in
/// a section) keep their values.
fn finish(joint: &Joint<'_>, mut x: Vec<f64>, rms_before: f64, fixed: &[bool]) -> Fit {
    let l = joint.layout;
    // A change common to every stem is a level change (the offset's): move the median of the
    // stems the fit moved there, so that stems the reference does not move stay at 0 dB. The
    // prediction is the same to the last bit of the model when every stem moves
    // (P(a·t) = t²·P(a)); a stem held in a section is too quiet there to matter.
    let free: Vec<usize> = (0..l.stems)
        .filter(|&k| !fixed.get(k).copied().unwrap_or(false))
        .collect();
    if !free.is_empty() {
        let mut sorted: Vec<f64> = free.iter().map(|&k| x[k]).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
        };
        for &k in &free {
            x[k] -= median;
        }
        x[l.offset()] += median;
    }
    Fit {
        stem_db: x[..l.stems].to_vec(),
        offset_db: x[l.offset()],
        width_db: x[l.width()],
        eq: joint.bands(&x),
        rms_before_db: rms_before,
        rms_after_db: weighted_rms(joint, &x, joint.input),
        params: (x, l.bells),
    }
}

/// Tries one more bell where the weighted mid residual is largest; the refitted parameters
/// and cost when the bell earns its place (at least 0.5 dB, and a tenth less cost).
fn add_bell(joint: &Joint<'_>, x: &[f64], cost: f64) -> Option<(Vec<f64>, f64)> {
    let inp = joint.input;
    let mut r = Vec::new();
    joint.residuals(x, &mut r);
    let step = if joint.fit_side { 2 } else { 1 };
    let n = inp.centres.len();
    // Residuals over three neighbouring bands, mid only.
    let (best, _) = (1..n.saturating_sub(1))
        .map(|b| {
            (
                b,
                (r[(b - 1) * step] + r[b * step] + r[(b + 1) * step]).abs(),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let trial = Joint::new(inp, joint.layout.bells + 1);
    let mut y = x.to_vec();
    let resid = r[best * step] / inp.w_mid[best].max(1e-3);
    y.extend([
        (-resid).clamp(-inp.limits.eq_db, inp.limits.eq_db),
        inp.centres[best].log2(),
        1.4f64.log2(),
    ]);
    let c = lm::solve(&trial, &mut y, 200);
    let gain = y[trial.layout.bell(joint.layout.bells)];
    (gain.abs() >= 0.5 && c < 0.9 * cost).then_some((y, c))
}

fn weighted_mean(v: &[f64], w: &[f64]) -> f64 {
    let sw: f64 = w.iter().sum();
    if sw > 0.0 {
        v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw
    } else {
        0.0
    }
}

/// Weighted RMS of the mid difference left by `x`, dB (the offset fitted out).
fn weighted_rms(joint: &Joint<'_>, x: &[f64], input: &FitInput<'_>) -> f64 {
    let mut r = Vec::new();
    let mut y = x.to_vec();
    y[joint.layout.offset()] = 0.0;
    joint.residuals(&y, &mut r);
    let step = if joint.fit_side { 2 } else { 1 };
    let n = input.centres.len();
    let d: Vec<f64> = (0..n)
        .map(|b| r[b * step] / input.w_mid[b].max(1e-9))
        .collect();
    let w = &input.w_mid;
    let m = weighted_mean(&d, w);
    let sw: f64 = w.iter().sum::<f64>().max(1e-12);
    (d.iter()
        .zip(w)
        .map(|(v, w)| w * (v - m) * (v - m))
        .sum::<f64>()
        / sw)
        .sqrt()
}
