//! One EQ band: its structure (type, slope, mode), its design from parameter values, and its
//! runtime (SVF sections and their states).
//!
//! A band is one SVF section, or a cascade of two or four for 24 and 48 dB/oct Butterworth
//! high- and low-passes. Its coefficients are recomputed only when a parameter value changes:
//! once per block while the parameters are constant, per sample while they move.
//!
//! A band with a gain (bell, shelves, tilt) at exactly 0 dB is the identity: it is skipped, and
//! its states are held at zero, so it starts from rest when its gain moves away from 0. The rule is
//! applied per sample (a constant block at 0 dB is just the fast path of it), which keeps the
//! output independent of the block size.

use crate::dsp::filters::design::{self, butterworth_qs};
use crate::dsp::filters::{flush_state, SvfCoefs, SvfState};
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
    /// SVF sections this band needs.
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
    coefs: [SvfCoefs; MAX_SECTIONS],
    identity: bool,
    /// Whether a parameter moves in the current block.
    varying: bool,
    /// Section states, `[channel][section]`.
    state: [[SvfState; MAX_SECTIONS]; 2],
}

// A band holds no heap data: its whole run-time state (the values its coefficients were made
// from, the coefficients, the section memories) is handed over at a hot reload.
crate::signal_state!(Band {
    copy: spec, params, qs, sections, cur_freq, cur_gain, cur_q, t, a, coefs, identity, varying,
        state;
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
            identity: false,
            varying: false,
            state: [[[0.0; 2]; MAX_SECTIONS]; 2],
        }
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
    }

    /// Flushes tiny states to zero.
    pub fn flush(&mut self) {
        for ch in &mut self.state {
            for s in ch.iter_mut().take(self.sections) {
                flush_state(s);
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
        if !self.varying {
            let (f, g, q) = Self::values_at(&f, &g, &q, 0);
            self.update(sample_rate, f, g, q);
            if self.identity {
                self.reset();
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
            BandType::Bell => self.coefs[0] = design::bell(t, a, q),
            BandType::LowShelf => self.coefs[0] = design::low_shelf(t, a, q),
            BandType::HighShelf => self.coefs[0] = design::high_shelf(t, a, q),
            BandType::Notch => self.coefs[0] = design::notch(t, q),
            BandType::BandPass => self.coefs[0] = design::band_pass(t, q),
            BandType::Tilt => self.coefs[0] = design::tilt(t, a),
            BandType::HighPass | BandType::LowPass => {
                let hp = self.spec.kind == BandType::HighPass;
                for i in 0..self.sections {
                    let qi = if self.params.q.is_some() {
                        q
                    } else {
                        self.qs[i]
                    };
                    self.coefs[i] = if hp {
                        design::high_pass(t, qi)
                    } else {
                        design::low_pass(t, qi)
                    };
                }
            }
        }
        self.identity = self.spec.kind.has_gain() && gain_db == 0.0;
    }

    /// The band's magnitude response in dB at `at_hz`, set to (`freq`, `gain_db`, `q`) at
    /// `sample_rate`: the very sections [`Band::process`] runs (same design, same SVF), so a fit
    /// or a plot of an EQ is of stemgraph's real bands. Control side; `q` is ignored by types
    /// without one.
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
        band.coefs[..band.sections]
            .iter()
            .map(|c| {
                let (re, im) = c.response(at_hz, sample_rate);
                10.0 * libm::log10(re * re + im * im)
            })
            .sum()
    }

    /// The sections to run this block when the band is constant and not the identity (then its
    /// run is the plain series of these sections, see [`crate::dsp::filters::svf::run_series2`]):
    /// coefficients and the states of both channels.
    #[allow(clippy::type_complexity)]
    pub(crate) fn constant_sections(
        &mut self,
    ) -> Option<(&[SvfCoefs], &mut [SvfState], &mut [SvfState])> {
        if self.varying || self.identity {
            return None;
        }
        let [s0, s1] = &mut self.state;
        Some((
            &self.coefs[..self.sections],
            &mut s0[..self.sections],
            &mut s1[..self.sections],
        ))
    }

    /// Whether a parameter moves in the current block (set by `begin_block`).
    pub(crate) fn is_varying(&self) -> bool {
        self.varying
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
            if self.identity {
                return;
            }
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
        let (f, g, q) = self.param_values(params);
        match lanes {
            Lanes::One(x) => {
                for (j, v) in x.iter_mut().enumerate() {
                    let (fv, gv, qv) = Self::values_at(&f, &g, &q, offset + j);
                    self.update(sample_rate, fv, gv, qv);
                    if self.identity {
                        self.state[0] = [[0.0; 2]; MAX_SECTIONS];
                        continue;
                    }
                    let mut y = *v;
                    for (c, s) in self.coefs[..self.sections]
                        .iter()
                        .zip(self.state[0].iter_mut())
                    {
                        y = c.tick(s, y);
                    }
                    *v = y;
                }
            }
            Lanes::Two(l, r) => {
                for (j, (vl, vr)) in l.iter_mut().zip(r.iter_mut()).enumerate() {
                    let (fv, gv, qv) = Self::values_at(&f, &g, &q, offset + j);
                    self.update(sample_rate, fv, gv, qv);
                    if self.identity {
                        self.reset();
                        continue;
                    }
                    let (mut yl, mut yr) = (*vl, *vr);
                    let [s0, s1] = &mut self.state;
                    for ((c, a), b) in self.coefs[..self.sections]
                        .iter()
                        .zip(s0.iter_mut())
                        .zip(s1.iter_mut())
                    {
                        yl = c.tick(a, yl);
                        yr = c.tick(b, yr);
                    }
                    *vl = yl;
                    *vr = yr;
                }
            }
        }
    }
}
