//! The true-peak interpolators one sample at a time: the limiter's accurate half-band cascade
//! ([`HalfbandInterpolator`]) and the interpolator of common BS.1770 meters
//! ([`MeterInterpolator`]). The block detector ([`super::TruePeakDetector`]) computes the same
//! values a chunk at a time; these are its reference and its designs.

use super::design::{HalfbandDesign, PolyphaseTable};
use super::halfband::{History, ShortUp2, Up2};

/// An L× interpolator (L = 4 or 8) for true-peak detection: a cascade of half-band 2× stages
/// whose first stage is long and sharp (flat to 0.48·fs), so that content close to fs/2, where
/// the largest inter-sample peaks come from, is read correctly.
#[derive(Debug, Clone)]
pub struct HalfbandInterpolator {
    factor: usize,
    pub(crate) first: Up2,
    pub(crate) second: ShortUp2,
    pub(crate) third: Option<ShortUp2>,
    delay_top: usize,
    latency: usize,
}

impl HalfbandInterpolator {
    /// Transition band of the detector's first stage, as a fraction of the input rate
    /// (centred on fs/2).
    pub const DETECTOR_TRANSITION: f64 = 0.04;
    /// Stopband attenuation of the detector's stages, dB.
    pub const DETECTOR_ATTEN_DB: f64 = 60.0;

    /// Designs an interpolator by `factor` (4 or 8): a first half-band stage with a transition
    /// band `transition` wide (fraction of the input rate, centred on fs/2) and later stages that
    /// keep everything the first one passes, all with `atten_db` of stopband attenuation.
    /// Allocates.
    ///
    /// # Panics
    /// If `factor` is not 4 or 8 (construction-time contract).
    pub fn new(factor: usize, transition: f64, atten_db: f64) -> Self {
        assert!(
            factor == 4 || factor == 8,
            "interpolator factor must be 4 or 8"
        );
        let n = factor.trailing_zeros() as usize;
        // Highest frequency the first stage lets through (input-rate units).
        let top = 0.5 + transition / 2.0;
        let mut stages = Vec::with_capacity(n);
        let mut delay_top = 0; // in top-rate samples
        for s in 1..=n {
            let scale = (1usize << s) as f64;
            // Stage s doubles 2^(s−1)·fs to 2^s·fs: content below `top`·fs passes, its images
            // above 2^(s−1)·fs − top·fs are removed.
            let width = if s == 1 {
                transition / scale
            } else {
                (scale / 2.0 - 2.0 * top) / scale
            };
            let d = HalfbandDesign::new(width, atten_db);
            delay_top += d.latency_high() * (factor >> s);
            stages.push(d);
        }
        let mut stages = stages.into_iter();
        let first = Up2::new(stages.next().expect("two stages at least"));
        let second = ShortUp2::new(stages.next().expect("two stages at least"));
        let third = stages.next().map(ShortUp2::new);
        Self {
            factor,
            first,
            second,
            third,
            delay_top,
            // Readings are attributed to whole input samples; the fraction of a sample this
            // rounds up is covered by the limiter's hold margin.
            latency: delay_top.div_ceil(factor),
        }
    }

    /// The standard detector design ([`Self::DETECTOR_TRANSITION`], [`Self::DETECTOR_ATTEN_DB`]).
    pub fn detector(factor: usize) -> Self {
        Self::new(factor, Self::DETECTOR_TRANSITION, Self::DETECTOR_ATTEN_DB)
    }

    /// The oversampling factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Delay of the output relative to the input, in input samples, rounded up: the `factor`
    /// values produced by input step `n` lie within `[n − latency, n − latency + 1)`.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// The exact delay in samples at the output rate: value `p` of input step `n` is the signal
    /// at `n + (p − delay_top) / factor`.
    pub fn delay_top(&self) -> usize {
        self.delay_top
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.first.reset();
        self.second.reset();
        if let Some(t) = &mut self.third {
            t.reset();
        }
    }

    /// Feeds one input sample and writes the `factor` interpolated values it completes.
    #[inline(always)]
    pub fn interpolate(&mut self, x: f64, out: &mut [f64]) {
        let [p, q] = self.first.up(x);
        match &mut self.third {
            None => {
                out[..2].copy_from_slice(&self.second.up(p));
                out[2..4].copy_from_slice(&self.second.up(q));
            }
            Some(c) => {
                let [p0, p1] = self.second.up(p);
                let [q0, q1] = self.second.up(q);
                out[..2].copy_from_slice(&c.up(p0));
                out[2..4].copy_from_slice(&c.up(p1));
                out[4..6].copy_from_slice(&c.up(q0));
                out[6..8].copy_from_slice(&c.up(q1));
            }
        }
    }

    /// For every sample of `input`, writes to `peaks` the largest magnitude of the `factor`
    /// interpolated values that sample completes (see [`Self::latency`]).
    pub fn peaks(&mut self, input: &[f64], peaks: &mut [f64]) {
        let mut buf = [0.0; 8];
        for (&x, p) in input.iter().zip(peaks.iter_mut()) {
            self.interpolate(x, &mut buf);
            let mut m = 0.0f64;
            for v in &buf[..self.factor] {
                let a = v.abs();
                if a > m {
                    m = a;
                }
            }
            *p = m;
        }
    }
}

/// The interpolator of common BS.1770 true-peak meters (as in libebur128 and the `ebur128`
/// crate): a 48-tap Hann-windowed sinc with its cutoff at fs/2, 4× below 96 kHz and 2× from
/// 96 kHz up (12 or 24 taps per phase, [`PolyphaseTable::hann_sinc`]). Its short transition
/// band lets images of content near fs/2 through, so such meters read inter-sample peaks of
/// that content *high*; the limiter runs this interpolator beside its accurate one and obeys
/// the larger reading, so the ceiling holds by the accurate measure and by these meters alike.
#[derive(Debug, Clone)]
pub struct MeterInterpolator {
    factor: usize,
    /// `coef[t][f]`: phase f, input t steps ago (lanes beyond `factor` are zero).
    pub(crate) coef: Vec<[f64; 4]>,
    hist: History,
}

impl MeterInterpolator {
    /// Total taps of the prototype filter.
    const TAPS: usize = 48;

    /// The interpolator such a meter uses at `sample_rate`. Allocates.
    pub fn new(sample_rate: f64) -> Self {
        let factor = if sample_rate < 96_000.0 { 4 } else { 2 };
        let coef = PolyphaseTable::hann_sinc(factor, Self::TAPS).rows_by_delay();
        Self {
            factor,
            hist: History::new(coef.len()),
            coef,
        }
    }

    /// The oversampling factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Delay in input samples: input step `n` produces the signal at `n − latency + f/factor`.
    pub fn latency(&self) -> usize {
        Self::TAPS / 2 / self.factor
    }

    /// Clears the history.
    pub fn reset(&mut self) {
        self.hist.reset();
    }

    /// Feeds one sample; returns the largest magnitude of the values it completes.
    #[inline(always)]
    pub fn peak(&mut self, x: f64) -> f64 {
        self.hist.push(x);
        let w = self.hist.window();
        let mut acc = [0.0f64; 4];
        for (c, &xv) in self.coef.iter().zip(w) {
            for p in 0..4 {
                acc[p] += c[p] * xv;
            }
        }
        let mut m = 0.0f64;
        for a in &acc {
            let a = a.abs();
            if a > m {
                m = a;
            }
        }
        m
    }
}
