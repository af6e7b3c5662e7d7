//! One EQ band: its structure (type, slope, mode), its design from parameter values, and its
//! runtime (second-order sections and their states).
//!
//! A band is one second-order section, or a cascade of two or four for 24 and 48 dB/oct
//! Butterworth high- and low-passes. Its coefficients are recomputed only when a parameter value
//! changes: once per block while the parameters are constant, per sample while they move.
//!
//! Each section runs in one of two forms of the same transfer function: at a sample whose
//! coefficients differ from the previous sample's, the trapezoidal SVF (its states are the
//! analog filter's, which keeps a moving filter well behaved); at a sample whose coefficients are
//! those of the previous sample, the direct form I biquad with fused multiply-adds
//! ([`crate::dsp::filters::df1`]: five operations where the SVF takes eight multiplies). The
//! state is converted where the form changes, right before the sample that needs the other form
//! (the tilt, whose SVF realisation has a pole its output cannot see, always runs the SVF). The
//! rule is per sample, so the output does not depend on the block size.
//!
//! A band with a gain (bell, shelves, tilt) at exactly 0 dB is the identity: it is skipped, and
//! its states are held at zero, so it starts from rest when its gain moves away from 0. The rule is
//! applied per sample (a constant block at 0 dB is just the fast path of it), which keeps the
//! output independent of the block size.

use crate::dsp::filters::design::{self, butterworth_qs, Section};
use crate::dsp::filters::{df1, flush, flush_state, Df1Coefs, Df1State, SvfCoefs, SvfState};
use crate::dsp::param::{ParamBlock, ParamValues};

/// Most SVF sections in one band (a 48 dB/oct Butterworth filter).
pub const MAX_SECTIONS: usize = 4;

/// The response of a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandType {
    /// Peaking filter: gain around a centre frequency.
    Bell,
    /// Gain below a corner frequency.
    LowShelf,
    /// Gain above a corner frequency.
    HighShelf,
    /// Butterworth high-pass, 12, 24 or 48 dB/oct.
    HighPass,
    /// Butterworth low-pass, 12, 24 or 48 dB/oct.
    LowPass,
    /// Band-reject.
    Notch,
    /// Band-pass with 0 dB at the centre.
    BandPass,
    /// First-order tilt: +gain/2 above the centre, −gain/2 below.
    Tilt,
}

impl BandType {
    /// Every type, in documentation order.
    pub const ALL: [BandType; 8] = [
        BandType::Bell,
        BandType::LowShelf,
        BandType::HighShelf,
        BandType::HighPass,
        BandType::LowPass,
        BandType::Notch,
        BandType::BandPass,
        BandType::Tilt,
    ];

    /// The name recipes use.
    pub fn name(self) -> &'static str {
        match self {
            BandType::Bell => "bell",
            BandType::LowShelf => "low_shelf",
            BandType::HighShelf => "high_shelf",
            BandType::HighPass => "high_pass",
            BandType::LowPass => "low_pass",
            BandType::Notch => "notch",
            BandType::BandPass => "band_pass",
            BandType::Tilt => "tilt",
        }
    }

    /// Looks a type up by name.
    pub fn parse(name: &str) -> Option<BandType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the type has a `gain_db` parameter.
    pub fn has_gain(self) -> bool {
        matches!(
            self,
            BandType::Bell | BandType::LowShelf | BandType::HighShelf | BandType::Tilt
        )
    }

    /// Whether the type has a slope option (high- and low-pass).
    pub fn has_slope(self) -> bool {
        matches!(self, BandType::HighPass | BandType::LowPass)
    }

    /// Whether the type has a `q` parameter at `slope_db` (Butterworth cascades steeper than
    /// 12 dB/oct have their quality factors fixed; the tilt has none).
    pub fn has_q(self, slope_db: u32) -> bool {
        match self {
            BandType::Tilt => false,
            BandType::HighPass | BandType::LowPass => slope_db == 12,
            _ => true,
        }
    }

    /// Default frequency in Hz.
    pub fn default_freq(self) -> f64 {
        match self {
            BandType::LowShelf => 100.0,
            BandType::HighShelf => 8000.0,
            BandType::HighPass => 30.0,
            BandType::LowPass => 18000.0,
            _ => 1000.0,
        }
    }

    /// Default quality factor.
    pub fn default_q(self) -> f64 {
        match self {
            BandType::LowShelf | BandType::HighShelf | BandType::HighPass | BandType::LowPass => {
                std::f64::consts::FRAC_1_SQRT_2
            }
            BandType::Notch => 4.0,
            _ => 1.0,
        }
    }

    /// What the frequency means for this type (for the parameter's documentation).
    pub fn freq_doc(self) -> &'static str {
        match self {
            BandType::Bell | BandType::Notch | BandType::BandPass => "centre frequency",
            BandType::Tilt => "centre of the tilt (0 dB there)",
            _ => "corner frequency",
        }
    }

    /// What the gain means for this type.
    pub fn gain_doc(self) -> &'static str {
        match self {
            BandType::Bell => "gain at the centre frequency",
            BandType::LowShelf => "gain below the corner",
            BandType::HighShelf => "gain above the corner",
            _ => "total tilt: +gain/2 far above the centre, −gain/2 far below",
        }
    }

    /// What the quality factor means for this type.
    pub fn q_doc(self) -> &'static str {
        match self {
            BandType::LowShelf | BandType::HighShelf => {
                "shelf resonance (0.707: no overshoot; higher: a bump at the corner)"
            }
            BandType::HighPass | BandType::LowPass => "resonance (0.707: Butterworth)",
            _ => "quality factor (higher: narrower)",
        }
    }
}

/// Which part of a stereo signal a band processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Left and right alike (or the one channel of a mono signal).
    Stereo,
    /// The mid signal (L+R)/2 only.
    Mid,
    /// The side signal (L−R)/2 only.
    Side,
}

impl Mode {
    /// Every mode's name.
    pub const NAMES: [&'static str; 3] = ["stereo", "mid", "side"];

    /// Looks a mode up by name.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "stereo" => Some(Mode::Stereo),
            "mid" => Some(Mode::Mid),
            "side" => Some(Mode::Side),
            _ => None,
        }
    }
}

/// The structure of a band: what cannot change without rebuilding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandSpec {
    /// The response.
    pub kind: BandType,
    /// Slope in dB/oct for high- and low-passes (12, 24, 48); 12 for other types.
    pub slope_db: u32,
    /// Stereo, mid or side.
    pub mode: Mode,
}

impl BandSpec {
    /// Second-order sections this band needs.
    pub fn sections(&self) -> usize {
        if self.kind.has_slope() {
            (self.slope_db / 12) as usize
        } else {
            1
        }
    }
}

/// Where a band's parameters sit in the processor's parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandParams {
    /// `n.freq_hz`.
    pub freq: usize,
    /// `n.gain_db`, when the type has a gain.
    pub gain: Option<usize>,
    /// `n.q`, when the type has a quality factor.
    pub q: Option<usize>,
}

/// One band at run time.
#[derive(Debug, Clone)]
pub struct Band {
    pub(crate) spec: BandSpec,
    params: BandParams,
    /// Fixed quality factors of the sections (Butterworth cascades).
    qs: [f64; MAX_SECTIONS],
    sections: usize,
    /// The values the coefficients were computed from (NaN: none yet).
    cur_freq: f64,
    cur_gain: f64,
    cur_q: f64,
    /// `tan(π·fc/fs)` and `10^(gain/40)` for the current values.
    t: f64,
    a: f64,
    /// The sections' SVF form.
    coefs: [SvfCoefs; MAX_SECTIONS],
    /// The sections' direct form I form (the same transfer functions).
    df1: [Df1Coefs; MAX_SECTIONS],
    identity: bool,
    /// Whether a parameter moves in the current block.
    varying: bool,
    /// Whether the block's first sample changes the coefficients (a constant block after a
    /// change): the SVF runs it.
    svf_first: bool,
    /// Whether the live state is the DF1 histories `hist` (else the SVF states `state`).
    in_df1: bool,
    /// SVF section states, `[channel][section]`.
    state: [[SvfState; MAX_SECTIONS]; 2],
    /// DF1 section histories, `[channel][section]`.
    hist: [[Df1State; MAX_SECTIONS]; 2],
}

// A band holds no heap data: its whole run-time state (the values its coefficients were made
// from, the coefficients, the section memories) is handed over at a hot reload.
crate::signal_state!(Band {
    copy: spec, params, qs, sections, cur_freq, cur_gain, cur_q, t, a, coefs, df1, identity,
        varying, svf_first, in_df1, state, hist;
});

/// One channel (or both) of a block's run.
pub enum Lanes<'a> {
    /// A single channel: mono, or mid or side in the M/S domain.
    One(&'a mut [f64]),
    /// Left and right.
    Two(&'a mut [f64], &'a mut [f64]),
}

impl Band {
    /// A band of structure `spec` reading its parameters at `params`.
    pub fn new(spec: BandSpec, params: BandParams) -> Self {
        let sections = spec.sections();
        let mut qs = [spec.kind.default_q(); MAX_SECTIONS];
        if spec.kind.has_slope() {
            for (q, b) in qs.iter_mut().zip(butterworth_qs(2 * sections)) {
                *q = b;
            }
        }
        Band {
            spec,
            params,
            qs,
            sections,
            cur_freq: f64::NAN,
            cur_gain: f64::NAN,
            cur_q: f64::NAN,
            t: 0.0,
            a: 1.0,
            coefs: [SvfCoefs::IDENTITY; MAX_SECTIONS],
            df1: [Df1Coefs::IDENTITY; MAX_SECTIONS],
            identity: false,
            varying: false,
            svf_first: false,
            in_df1: false,
            state: [[[0.0; 2]; MAX_SECTIONS]; 2],
            hist: [[[0.0; 4]; MAX_SECTIONS]; 2],
        }
    }

    /// Whether the band's sections run as DF1 biquads while their coefficients hold still (every
    /// type but the tilt).
    fn uses_df1(&self) -> bool {
        self.spec.kind != BandType::Tilt
    }

    /// Moves the live state into the DF1 histories (before a sample the DF1 runs).
    #[inline]
    fn enter_df1(&mut self) {
        if self.in_df1 {
            return;
        }
        for ch in 0..2 {
            for i in 0..self.sections {
                self.hist[ch][i] = self.df1[i].history_from_svf(&self.coefs[i], &self.state[ch][i]);
            }
        }
        self.in_df1 = true;
    }

    /// Moves the live state into the SVF states (before the coefficients change).
    #[inline]
    fn leave_df1(&mut self) {
        if !self.in_df1 {
            return;
        }
        for ch in 0..2 {
            for i in 0..self.sections {
                self.state[ch][i] = self.df1[i].svf_from_history(&self.coefs[i], &self.hist[ch][i]);
            }
        }
        self.in_df1 = false;
    }

    /// Brings the coefficients to the values (`freq`, `gain_db`, `q`), the state into the SVF
    /// form first when they change; returns whether they changed.
    #[inline]
    fn set(&mut self, sample_rate: f64, freq: f64, gain_db: f64, q: f64) -> bool {
        if freq == self.cur_freq && gain_db == self.cur_gain && q == self.cur_q {
            return false;
        }
        self.leave_df1();
        self.update(sample_rate, freq, gain_db, q);
        true
    }

    /// Forgets the coefficients (the sample rate changed).
    pub fn invalidate(&mut self) {
        self.cur_freq = f64::NAN;
        self.cur_gain = f64::NAN;
        self.cur_q = f64::NAN;
    }

    /// Clears the states.
    pub fn reset(&mut self) {
        self.state = [[[0.0; 2]; MAX_SECTIONS]; 2];
        self.hist = [[[0.0; 4]; MAX_SECTIONS]; 2];
        self.in_df1 = false;
    }

    /// Flushes tiny states to zero.
    pub fn flush(&mut self) {
        for ch in &mut self.state {
            for s in ch.iter_mut().take(self.sections) {
                flush_state(s);
            }
        }
        for ch in &mut self.hist {
            for h in ch.iter_mut().take(self.sections) {
                h.iter_mut().for_each(|v| *v = flush(*v));
            }
        }
    }

    /// The values of this band's (frequency, gain, q) at frame `n`.
    #[inline(always)]
    fn values_at(
        f: &ParamValues<'_>,
        g: &Option<ParamValues<'_>>,
        q: &Option<ParamValues<'_>>,
        n: usize,
    ) -> (f64, f64, f64) {
        (
            f.at(n),
            g.as_ref().map_or(0.0, |g| g.at(n)),
            q.as_ref().map_or(0.0, |q| q.at(n)),
        )
    }

    fn param_values<'a>(
        &self,
        params: &ParamBlock<'a>,
    ) -> (
        ParamValues<'a>,
        Option<ParamValues<'a>>,
        Option<ParamValues<'a>>,
    ) {
        (
            params.get(self.params.freq),
            self.params.gain.map(|i| params.get(i)),
            self.params.q.map(|i| params.get(i)),
        )
    }

    /// Reads the block's parameters: when they are constant, brings the coefficients up to date
    /// once for the whole block.
    pub fn begin_block(&mut self, params: &ParamBlock<'_>, sample_rate: f64) {
        let (f, g, q) = self.param_values(params);
        self.varying = !(f.is_constant()
            && g.as_ref().is_none_or(|g| g.is_constant())
            && q.as_ref().is_none_or(|q| q.is_constant()));
        self.svf_first = false;
        if !self.varying {
            let (f, g, q) = Self::values_at(&f, &g, &q, 0);
            self.svf_first = self.set(sample_rate, f, g, q);
            if self.identity {
                self.reset();
                self.svf_first = false;
            }
        }
    }

    /// Brings the coefficients to the values (`freq`, `gain_db`, `q`).
    #[inline]
    fn update(&mut self, sample_rate: f64, freq: f64, gain_db: f64, q: f64) {
        if freq == self.cur_freq && gain_db == self.cur_gain && q == self.cur_q {
            return;
        }
        if freq != self.cur_freq {
            self.t = design::prewarp(freq, sample_rate);
            self.cur_freq = freq;
        }
        if gain_db != self.cur_gain {
            self.a = design::shelf_a(gain_db);
            self.cur_gain = gain_db;
        }
        self.cur_q = q;
        let (t, a) = (self.t, self.a);
        match self.spec.kind {
            BandType::Bell => self.put(0, design::bell(t, a, q)),
            BandType::LowShelf => self.put(0, design::low_shelf(t, a, q)),
            BandType::HighShelf => self.put(0, design::high_shelf(t, a, q)),
            BandType::Notch => self.put(0, design::notch(t, q)),
            BandType::BandPass => self.put(0, design::band_pass(t, q)),
            BandType::Tilt => self.put(0, design::tilt(t, a)),
            BandType::HighPass | BandType::LowPass => {
                let hp = self.spec.kind == BandType::HighPass;
                for i in 0..self.sections {
                    let qi = if self.params.q.is_some() {
                        q
                    } else {
                        self.qs[i]
                    };
                    self.put(
                        i,
                        if hp {
                            design::high_pass(t, qi)
                        } else {
                            design::low_pass(t, qi)
                        },
                    );
                }
            }
        }
        self.identity = self.spec.kind.has_gain() && gain_db == 0.0;
    }

    /// Sets section `i` to `s`.
    #[inline]
    fn put(&mut self, i: usize, s: Section) {
        self.coefs[i] = s.svf;
        self.df1[i] = s.df1;
    }

    /// The band's magnitude response in dB at `at_hz`, set to (`freq`, `gain_db`, `q`) at
    /// `sample_rate`: the very sections [`Band::process`] runs while the values hold still (same
    /// design, the same DF1 biquads; the SVF for the tilt), so a fit or a plot of an EQ is of
    /// stemgraph's real bands. Control side; `q` is ignored by types without one.
    pub fn response_db(
        spec: BandSpec,
        (freq, gain_db, q): (f64, f64, f64),
        at_hz: f64,
        sample_rate: f64,
    ) -> f64 {
        let has_q = spec.kind.has_q(spec.slope_db);
        let params = BandParams {
            freq: 0,
            gain: spec.kind.has_gain().then_some(1),
            q: has_q.then_some(2),
        };
        let mut band = Band::new(spec, params);
        let q = if has_q { q } else { spec.kind.default_q() };
        band.update(sample_rate, freq, gain_db, q);
        (0..band.sections)
            .map(|i| {
                let (re, im) = if band.uses_df1() {
                    band.df1[i].response(at_hz, sample_rate)
                } else {
                    band.coefs[i].response(at_hz, sample_rate)
                };
                10.0 * libm::log10(re * re + im * im)
            })
            .sum()
    }

    /// The DF1 sections to run this block when the band is constant, not the identity, runs
    /// DF1 biquads and its block does not start with a coefficient change (then its run is the
    /// plain series of these sections, see [`df1::run_series2`]): coefficients and the
    /// histories of both channels, the state moved into them if it was not yet.
    #[allow(clippy::type_complexity)]
    pub(crate) fn constant_sections(
        &mut self,
    ) -> Option<(&[Df1Coefs], &mut [Df1State], &mut [Df1State])> {
        if self.varying || self.identity || self.svf_first || !self.uses_df1() {
            return None;
        }
        self.enter_df1();
        let [h0, h1] = &mut self.hist;
        Some((
            &self.df1[..self.sections],
            &mut h0[..self.sections],
            &mut h1[..self.sections],
        ))
    }

    /// One sample `x` of channel `ch` through every section's SVF form.
    #[inline(always)]
    fn tick_svf(&mut self, ch: usize, x: f64) -> f64 {
        let mut y = x;
        for (c, s) in self.coefs[..self.sections]
            .iter()
            .zip(self.state[ch].iter_mut())
        {
            y = c.tick(s, y);
        }
        y
    }

    /// One sample `x` of channel `ch` through every section's DF1 form.
    #[inline(always)]
    fn tick_df1(&mut self, ch: usize, x: f64) -> f64 {
        let mut y = x;
        for (c, h) in self.df1[..self.sections]
            .iter()
            .zip(self.hist[ch].iter_mut())
        {
            y = c.tick(h, y);
        }
        y
    }

    /// Whether the band passes the signal untouched this block (a constant 0 dB gain).
    pub(crate) fn is_constant_identity(&self) -> bool {
        !self.varying && self.identity
    }

    /// Processes frames `offset..offset + len` of the block, held in `lanes` (already in the
    /// band's domain: L/R, or M/S for mid and side bands).
    pub fn process(
        &mut self,
        lanes: Lanes<'_>,
        params: &ParamBlock<'_>,
        offset: usize,
        sample_rate: f64,
    ) {
        if !self.varying {
            self.process_constant(lanes);
            return;
        }
        let (f, g, q) = self.param_values(params);
        let df1 = self.uses_df1();
        match lanes {
            Lanes::One(x) => {
                for (j, v) in x.iter_mut().enumerate() {
                    let (fv, gv, qv) = Self::values_at(&f, &g, &q, offset + j);
                    let changed = self.set(sample_rate, fv, gv, qv);
                    if self.identity {
                        self.reset();
                        continue;
                    }
                    *v = if df1 && !changed {
                        self.enter_df1();
                        self.tick_df1(0, *v)
                    } else {
                        self.tick_svf(0, *v)
                    };
                }
            }
            Lanes::Two(l, r) => {
                for (j, (vl, vr)) in l.iter_mut().zip(r.iter_mut()).enumerate() {
                    let (fv, gv, qv) = Self::values_at(&f, &g, &q, offset + j);
                    let changed = self.set(sample_rate, fv, gv, qv);
                    if self.identity {
                        self.reset();
                        continue;
                    }
                    if df1 && !changed {
                        self.enter_df1();
                        *vl = self.tick_df1(0, *vl);
                        *vr = self.tick_df1(1, *vr);
                    } else {
                        *vl = self.tick_svf(0, *vl);
                        *vr = self.tick_svf(1, *vr);
                    }
                }
            }
        }
    }

    /// [`Band::process`] for a block whose parameters hold still.
    fn process_constant(&mut self, lanes: Lanes<'_>) {
        if self.identity {
            return;
        }
        if !self.uses_df1() {
            let [s0, s1] = &mut self.state;
            match lanes {
                Lanes::One(x) => {
                    for (c, s) in self.coefs[..self.sections].iter().zip(s0.iter_mut()) {
                        c.run(s, x);
                    }
                }
                Lanes::Two(l, r) => {
                    for ((c, a), b) in self.coefs[..self.sections]
                        .iter()
                        .zip(s0.iter_mut())
                        .zip(s1.iter_mut())
                    {
                        c.run2(a, b, l, r);
                    }
                }
            }
            return;
        }
        // The block's first sample changes the coefficients: the SVF runs it.
        let first = std::mem::take(&mut self.svf_first);
        let n = self.sections;
        match lanes {
            Lanes::One(x) => {
                let x = match (first, x) {
                    (true, [v, rest @ ..]) => {
                        *v = self.tick_svf(0, *v);
                        rest
                    }
                    (_, x) => x,
                };
                if x.is_empty() {
                    return;
                }
                self.enter_df1();
                df1::run_series(&self.df1[..n], &mut self.hist[0][..n], x);
            }
            Lanes::Two(l, r) => {
                let (l, r) = match (first, l, r) {
                    (true, [vl, l @ ..], [vr, r @ ..]) => {
                        *vl = self.tick_svf(0, *vl);
                        *vr = self.tick_svf(1, *vr);
                        (l, r)
                    }
                    (_, l, r) => (l, r),
                };
                if l.is_empty() {
                    return;
                }
                self.enter_df1();
                let [h0, h1] = &mut self.hist;
                df1::run_series2(&self.df1[..n], &mut h0[..n], &mut h1[..n], l, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::param::ParamSlot;

    /// Per-sample values of (frequency, gain, q) over `n` samples: held, gliding, held, a jump,
    /// held.
    fn trajectory(n: usize) -> Vec<(f64, f64, f64)> {
        (0..n)
            .map(|i| {
                let u = ((i as f64 - 1000.0) / 500.0).clamp(0.0, 1.0);
                let freq = 60.0 * (4.0f64).powf(u);
                let gain = if i < 2500 { 2.0 + 6.0 * u } else { -3.0 };
                (freq, gain, 1.2)
            })
            .collect()
    }

    /// Renders stereo `x` through a band of `spec` following `values`, in blocks of `block`
    /// frames (a block is constant when its values are, as the engine marks them).
    fn render(spec: BandSpec, values: &[(f64, f64, f64)], x: &[f64], block: usize) -> Vec<f64> {
        let params = BandParams {
            freq: 0,
            gain: spec.kind.has_gain().then_some(1),
            q: spec.kind.has_q(spec.slope_db).then_some(2),
        };
        let mut band = Band::new(spec, params);
        let fs = 48000.0;
        let (mut l, mut r) = (x.to_vec(), x.iter().map(|v| -0.5 * v).collect::<Vec<_>>());
        let mut start = 0;
        while start < x.len() {
            let end = (start + block).min(x.len());
            let v = &values[start..end];
            let slots: Vec<ParamSlot> = (0..3)
                .map(|p| {
                    let at = |t: &(f64, f64, f64)| [t.0, t.1, t.2][p];
                    let mut s = ParamSlot::new(at(&v[0]), block);
                    s.constant = v.iter().all(|t| at(t) == at(&v[0]));
                    for (j, t) in v.iter().enumerate() {
                        s.values[j] = at(t);
                    }
                    s
                })
                .collect();
            let pb = ParamBlock::new(&slots);
            band.begin_block(&pb, fs);
            band.process(
                Lanes::Two(&mut l[start..end], &mut r[start..end]),
                &pb,
                0,
                fs,
            );
            start = end;
        }
        l.extend(r);
        l
    }

    /// The SVF alone, sample by sample, coefficients recomputed where the values change.
    fn svf_reference(spec: BandSpec, values: &[(f64, f64, f64)], x: &[f64]) -> Vec<f64> {
        let fs = 48000.0;
        let mut out = Vec::new();
        for sign in [1.0, -0.5] {
            let mut s = [[0.0; 2]; MAX_SECTIONS];
            let mut band = Band::new(
                spec,
                BandParams {
                    freq: 0,
                    gain: None,
                    q: None,
                },
            );
            for (&v, &(f, g, q)) in x.iter().zip(values) {
                band.update(
                    fs,
                    f,
                    g,
                    if spec.kind.has_q(spec.slope_db) {
                        q
                    } else {
                        0.0
                    },
                );
                let mut y = sign * v;
                for i in 0..band.sections {
                    y = band.coefs[i].tick(&mut s[i], y);
                }
                out.push(y);
            }
        }
        out
    }

    #[test]
    fn moving_and_still_parameters_follow_the_svf_at_every_block_size() {
        // The mixed forms within 1e-12 of the SVF run alone (noise at ±0.5), and the same bits
        // for every block size.
        let n = 4000;
        let mut next = crate::dsp::test_signal::noise(3);
        let x: Vec<f64> = (0..n).map(|_| next()).collect();
        let values = trajectory(n);
        for spec in [
            BandSpec {
                kind: BandType::Bell,
                slope_db: 12,
                mode: Mode::Stereo,
            },
            BandSpec {
                kind: BandType::HighPass,
                slope_db: 48,
                mode: Mode::Stereo,
            },
            BandSpec {
                kind: BandType::LowShelf,
                slope_db: 12,
                mode: Mode::Stereo,
            },
        ] {
            let want = svf_reference(spec, &values, &x);
            let first = render(spec, &values, &x, n);
            let err = first
                .iter()
                .zip(&want)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-12, "{spec:?}: {err:e} from the SVF");
            for block in [1, 7, 64, 333] {
                let y = render(spec, &values, &x, block);
                assert!(
                    y.iter()
                        .zip(&first)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{spec:?}: block {block} differs"
                );
            }
        }
    }
}
