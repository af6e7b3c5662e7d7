//! The shared dynamics engine: level detection, the static curve, ballistics and stereo link.
//!
//! The design is the feed-forward, log-domain compressor of Giannoulis, Massberg and Reiss
//! (“Digital Dynamic Range Compressor Design — A Tutorial and Analysis”, JAES 2012), with the
//! smoothing placed after the gain computer (“smooth branching” on the gain reduction in dB):
//!
//! 1. **level** ([`LevelDetector`]): per detector channel, `|x|` (peak) or a one-pole mean of
//!    `x²` with a time constant (RMS); converted to dB with [`super::fastmath`];
//! 2. **link**: each channel's level moves towards the loudest channel's by `link_pct`
//!    (100 %: both channels see the maximum and get the same gain);
//! 3. **static curve** ([`StaticCurve`]): the gain reduction `c(x)` in dB for threshold T, ratio
//!    R, knee width W (quadratic knee), capped at `range_db`;
//! 4. **ballistics**: `g ← c + α·(g − c)`, α = e^(−1/(τ·fs)) with τ the attack time while the
//!    reduction grows and the release time while it shrinks: a step of the target is covered to
//!    63 % in τ;
//! 5. **gain**: `10^((makeup − g)/20)`.
//!
//! A consequence worth knowing: the peak detector is the ballistics themselves. On a steady sine
//! the reduction charges near each crest and releases in between, so with an attack short
//! compared with the period (and a release long compared with it) the sine's level is its peak;
//! a long attack reads lower.
//!
//! Everything runs in chunks of at most [`CHUNK`] frames whose boundaries the processors align
//! to their own sample count (never to block boundaries), so denormal flushing at chunk ends
//! keeps the output independent of the block size.

use super::fastmath;
use crate::dsp::ParamValues;

/// Frames per chunk; state is flushed at multiples of this many processed samples.
pub const CHUNK: usize = 64;
/// One chunk of one channel.
pub type Chunk = [f64; CHUNK];

/// Detector values (amplitudes or mean squares) are floored here before the logarithm.
const LEVEL_FLOOR: f64 = 1e-40;
/// Gain reduction (dB) below this is flushed to zero (its gain factor rounds to exactly 1).
const GR_FLUSH: f64 = 1e-20;
/// Mean squares below this are flushed to zero.
const MS_FLUSH: f64 = 1e-60;

/// What the detector measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    /// The absolute value of each sample (a steady sine reads its peak).
    Peak,
    /// The root of a one-pole mean of the squares (a steady sine reads its RMS, peak − 3.01 dB).
    Rms,
}

impl DetectorKind {
    /// Decibels per doubling of the detector value (amplitude: 6.02; mean square: 3.01).
    pub fn db_per_octave(self) -> f64 {
        match self {
            DetectorKind::Peak => fastmath::DB_PER_OCTAVE_AMP,
            DetectorKind::Rms => 0.5 * fastmath::DB_PER_OCTAVE_AMP,
        }
    }
}

/// A value computed from one parameter value, recomputed only when the value changes.
#[derive(Debug, Clone, Copy)]
pub struct Cached<T: Copy> {
    key: f64,
    value: T,
}

impl<T: Copy> Cached<T> {
    /// An empty cache (the first lookup computes).
    pub fn new(value: T) -> Self {
        Self {
            key: f64::NAN,
            value,
        }
    }
    /// The value for `key`, computed by `f` if `key` differs from the last one.
    #[inline(always)]
    pub fn get(&mut self, key: f64, f: impl FnOnce(f64) -> T) -> T {
        if key != self.key {
            self.key = key;
            self.value = f(key);
        }
        self.value
    }
    /// Forgets the cached value.
    pub fn clear(&mut self) {
        self.key = f64::NAN;
    }
}

/// The one-pole coefficient for a time constant of `ms` milliseconds.
#[inline]
pub fn pole(ms: f64, sample_rate: f64) -> f64 {
    libm::exp(-1000.0 / (ms * sample_rate))
}

/// The static gain computer with a quadratic soft knee (Giannoulis et al. 2012, eq. 4):
///
/// ```text
/// c(x) = 0                                   for x − T < −W/2
///        (1 − 1/R)·(x − T + W/2)² / (2W)     for |x − T| ≤ W/2
///        (1 − 1/R)·(x − T)                   for x − T > W/2
/// ```
///
/// capped at `range_db`; `c` is the gain reduction in dB (positive = reducing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaticCurve {
    threshold_db: f64,
    slope: f64,
    knee_db: f64,
    inv_2knee: f64,
    range_db: f64,
}

impl StaticCurve {
    /// A curve (`range_db` = ∞ for no cap).
    #[inline(always)]
    pub fn new(threshold_db: f64, ratio: f64, knee_db: f64, range_db: f64) -> Self {
        Self {
            threshold_db,
            slope: 1.0 - 1.0 / ratio,
            knee_db,
            inv_2knee: if knee_db > 0.0 { 0.5 / knee_db } else { 0.0 },
            range_db,
        }
    }

    /// The gain reduction in dB for a level of `level_db`.
    #[inline(always)]
    pub fn reduction_db(&self, level_db: f64) -> f64 {
        let over = level_db - self.threshold_db + 0.5 * self.knee_db;
        let e = over.max(0.0).min(self.knee_db);
        let c = self.slope * (e * e * self.inv_2knee + (over - self.knee_db).max(0.0));
        c.min(self.range_db)
    }
}

/// One step of the branching ballistics: attack while the reduction grows, release otherwise.
#[inline(always)]
fn smooth(g: f64, target: f64, attack: f64, release: f64) -> f64 {
    let a = if target > g { attack } else { release };
    target + a * (g - target)
}

/// The parameters of a gain stage for one block (absent ones as constants).
#[derive(Clone, Copy)]
pub struct GainParams<'a> {
    /// Threshold in dB.
    pub threshold_db: ParamValues<'a>,
    /// Ratio (≥ 1).
    pub ratio: ParamValues<'a>,
    /// Knee width in dB.
    pub knee_db: ParamValues<'a>,
    /// Largest reduction in dB (∞: none).
    pub range_db: ParamValues<'a>,
    /// Attack time constant.
    pub attack_ms: ParamValues<'a>,
    /// Release time constant.
    pub release_ms: ParamValues<'a>,
    /// Gain after the reduction.
    pub makeup_db: ParamValues<'a>,
    /// Stereo link in percent.
    pub link_pct: ParamValues<'a>,
}

impl GainParams<'_> {
    fn curve_constant(&self) -> bool {
        self.threshold_db.is_constant()
            && self.ratio.is_constant()
            && self.knee_db.is_constant()
            && self.range_db.is_constant()
    }
    #[inline(always)]
    fn curve_at(&self, n: usize) -> StaticCurve {
        StaticCurve::new(
            self.threshold_db.at(n),
            self.ratio.at(n),
            self.knee_db.at(n),
            self.range_db.at(n),
        )
    }
}

/// Level detection for up to two detector channels.
#[derive(Debug, Clone)]
pub struct LevelDetector {
    kind: DetectorKind,
    mean_square: [f64; 2],
    window: Cached<f64>,
    sample_rate: f64,
}

impl LevelDetector {
    /// A detector of `kind`.
    pub fn new(kind: DetectorKind) -> Self {
        Self {
            kind,
            mean_square: [0.0; 2],
            window: Cached::new(0.0),
            sample_rate: 48000.0,
        }
    }

    /// What it measures.
    pub fn kind(&self) -> DetectorKind {
        self.kind
    }

    /// Sets the sample rate.
    pub fn prepare(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate;
        self.window.clear();
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.mean_square = [0.0; 2];
    }

    /// Flushes tiny state to zero.
    pub fn flush(&mut self) {
        for v in &mut self.mean_square {
            if *v < MS_FLUSH {
                *v = 0.0;
            }
        }
    }

    /// Turns `n` frames of detector input in `x` (channels `0..channels`) into detector values in
    /// place: amplitudes (peak) or mean squares (RMS, time constant `window_ms` from frame `k0`
    /// of the block on).
    pub fn run(
        &mut self,
        x: &mut [Chunk; 2],
        channels: usize,
        window_ms: ParamValues<'_>,
        k0: usize,
        n: usize,
    ) {
        match self.kind {
            DetectorKind::Peak => {
                for ch in x.iter_mut().take(channels) {
                    for v in &mut ch[..n] {
                        *v = v.abs();
                    }
                }
            }
            DetectorKind::Rms => {
                let fs = self.sample_rate;
                for (c, ch) in x.iter_mut().enumerate().take(channels) {
                    let mut ms = self.mean_square[c];
                    if window_ms.is_constant() {
                        let b = self.window.get(window_ms.first(), |w| pole(w, fs));
                        for v in &mut ch[..n] {
                            let sq = *v * *v;
                            ms = sq + b * (ms - sq);
                            *v = ms;
                        }
                    } else {
                        for (i, v) in ch[..n].iter_mut().enumerate() {
                            let b = self.window.get(window_ms.at(k0 + i), |w| pole(w, fs));
                            let sq = *v * *v;
                            ms = sq + b * (ms - sq);
                            *v = ms;
                        }
                    }
                    self.mean_square[c] = ms;
                }
            }
        }
    }
}

/// Static curve, ballistics, link and gain for up to two channels.
#[derive(Debug, Clone)]
pub struct GainStage {
    gr: [f64; 2],
    attack: Cached<f64>,
    release: Cached<f64>,
    sample_rate: f64,
}

impl Default for GainStage {
    fn default() -> Self {
        Self::new()
    }
}

impl GainStage {
    /// A stage at rest.
    pub fn new() -> Self {
        Self {
            gr: [0.0; 2],
            attack: Cached::new(0.0),
            release: Cached::new(0.0),
            sample_rate: 48000.0,
        }
    }

    /// Sets the sample rate.
    pub fn prepare(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate;
        self.attack.clear();
        self.release.clear();
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.gr = [0.0; 2];
    }

    /// Flushes tiny state to zero.
    pub fn flush(&mut self) {
        for g in &mut self.gr {
            if *g < GR_FLUSH {
                *g = 0.0;
            }
        }
    }

    /// The current gain reduction of each channel in dB.
    pub fn gain_reduction_db(&self) -> [f64; 2] {
        self.gr
    }

    /// Turns `n` frames of detector values into gain factors for `channels` (1 or 2) channels.
    ///
    /// `values` holds `level_channels` detector channels: 1 (one level for every channel, e.g.
    /// a mono key) or `channels`. `db_per_octave` converts them to dB (see [`DetectorKind`]).
    /// Parameters are read from frame `k0` of the block on. Fills `gains[..channels]` and
    /// returns the largest gain reduction of the chunk in dB.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        values: &[Chunk; 2],
        level_channels: usize,
        db_per_octave: f64,
        channels: usize,
        p: &GainParams<'_>,
        k0: usize,
        n: usize,
        gains: &mut [Chunk; 2],
    ) -> f64 {
        let mut levels = [[0.0; CHUNK]; 2];
        let full_link = p.link_pct.is_constant() && p.link_pct.first() / 100.0 == 1.0;
        // One gain track serves both channels when they would compute the same thing anyway
        // (bit for bit: the per-channel path below gives the same values in that case).
        let single =
            channels == 1 || (self.gr[0] == self.gr[1] && (level_channels == 1 || full_link));
        if single {
            if level_channels == 2 {
                for i in 0..n {
                    let v = values[0][i].max(values[1][i]);
                    levels[0][i] = db_per_octave * fastmath::log2(v.max(LEVEL_FLOOR));
                }
            } else {
                for i in 0..n {
                    levels[0][i] = db_per_octave * fastmath::log2(values[0][i].max(LEVEL_FLOOR));
                }
            }
            let max = self.track(0, &levels[0], p, k0, n, &mut gains[0]);
            if channels == 2 {
                self.gr[1] = self.gr[0];
                gains[1] = gains[0];
            }
            max
        } else {
            if level_channels == 2 {
                for i in 0..n {
                    let (v0, v1) = (values[0][i], values[1][i]);
                    let d0 = db_per_octave * fastmath::log2(v0.max(LEVEL_FLOOR));
                    let d1 = db_per_octave * fastmath::log2(v1.max(LEVEL_FLOOR));
                    let loudest = if v0 >= v1 { d0 } else { d1 };
                    let link = p.link_pct.at(k0 + i) / 100.0;
                    levels[0][i] = link * loudest + (1.0 - link) * d0;
                    levels[1][i] = link * loudest + (1.0 - link) * d1;
                }
            } else {
                for i in 0..n {
                    levels[0][i] = db_per_octave * fastmath::log2(values[0][i].max(LEVEL_FLOOR));
                }
                levels[1] = levels[0];
            }
            let (g0, g1) = gains.split_at_mut(1);
            let m0 = self.track(0, &levels[0], p, k0, n, &mut g0[0]);
            let m1 = self.track(1, &levels[1], p, k0, n, &mut g1[0]);
            m0.max(m1)
        }
    }

    /// Static curve, ballistics and gain of one channel's track.
    #[inline(always)]
    fn track(
        &mut self,
        t: usize,
        levels: &Chunk,
        p: &GainParams<'_>,
        k0: usize,
        n: usize,
        gains: &mut Chunk,
    ) -> f64 {
        let fs = self.sample_rate;
        let mut g = [0.0; CHUNK];
        if p.curve_constant() {
            let curve = p.curve_at(0);
            for i in 0..n {
                g[i] = curve.reduction_db(levels[i]);
            }
        } else {
            for i in 0..n {
                g[i] = p.curve_at(k0 + i).reduction_db(levels[i]);
            }
        }
        let mut state = self.gr[t];
        let mut max: f64 = 0.0;
        if p.attack_ms.is_constant() && p.release_ms.is_constant() {
            let a = self.attack.get(p.attack_ms.first(), |ms| pole(ms, fs));
            let r = self.release.get(p.release_ms.first(), |ms| pole(ms, fs));
            for v in &mut g[..n] {
                state = smooth(state, *v, a, r);
                *v = state;
                max = max.max(state);
            }
        } else {
            for (i, v) in g[..n].iter_mut().enumerate() {
                let a = self.attack.get(p.attack_ms.at(k0 + i), |ms| pole(ms, fs));
                let r = self.release.get(p.release_ms.at(k0 + i), |ms| pole(ms, fs));
                state = smooth(state, *v, a, r);
                *v = state;
                max = max.max(state);
            }
        }
        self.gr[t] = state;
        if p.makeup_db.is_constant() {
            let m = p.makeup_db.first();
            for i in 0..n {
                gains[i] = fastmath::db_to_amp(m - g[i]);
            }
        } else {
            for i in 0..n {
                gains[i] = fastmath::db_to_amp(p.makeup_db.at(k0 + i) - g[i]);
            }
        }
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_matches_the_formula() {
        let hard = StaticCurve::new(-20.0, 4.0, 0.0, f64::INFINITY);
        assert_eq!(hard.reduction_db(-30.0), 0.0);
        assert_eq!(hard.reduction_db(-20.0), 0.0);
        assert!((hard.reduction_db(-8.0) - 9.0).abs() < 1e-12);
        let soft = StaticCurve::new(-20.0, 4.0, 10.0, f64::INFINITY);
        assert_eq!(soft.reduction_db(-25.0), 0.0);
        assert!((soft.reduction_db(-20.0) - 0.75 * 25.0 / 20.0).abs() < 1e-12);
        assert!((soft.reduction_db(-15.0) - 0.75 * 5.0).abs() < 1e-12);
        assert!((soft.reduction_db(-5.0) - 0.75 * 15.0).abs() < 1e-12);
        let capped = StaticCurve::new(-20.0, 4.0, 0.0, 6.0);
        assert_eq!(capped.reduction_db(0.0), 6.0);
        let unity = StaticCurve::new(-60.0, 1.0, 12.0, f64::INFINITY);
        assert_eq!(unity.reduction_db(0.0), 0.0);
    }
}
