//! Design functions: from a response and its settings to second-order sections, each in the two
//! forms the filters run ([`Section`]: the SVF and the direct form I biquad of the same transfer
//! function).
//!
//! Every response is the bilinear transform of an analog prototype with its characteristic
//! frequency prewarped (`t = tan(π·fc/fs)`), so the digital filter matches the analog one exactly
//! at `fc` and follows it with a frequency warp towards Nyquist. The analog prototypes, with `s`
//! normalised to `fc`, `A = 10^(gain_db/40)` and `Q` the band's quality factor:
//!
//! | response | H(s) |
//! |---|---|
//! | low-pass (2nd order) | 1 / (s² + s/Q + 1) |
//! | high-pass (2nd order) | s² / (s² + s/Q + 1) |
//! | band-pass (0 dB peak) | (s/Q) / (s² + s/Q + 1) |
//! | notch | (s² + 1) / (s² + s/Q + 1) |
//! | bell | (s² + s·A/Q + 1) / (s² + s/(A·Q) + 1) |
//! | low shelf | A·(s² + s·√A/Q + A) / (A·s² + s·√A/Q + 1) |
//! | high shelf | A·(A·s² + s·√A/Q + 1) / (s² + s·√A/Q + A) |
//! | tilt (1st order) | (A·s + 1) / (s + A) |
//!
//! Butterworth high- and low-passes of order 2N are cascades of N such sections at the same
//! frequency with the Butterworth quality factors [`butterworth_qs`].
//!
//! The tilt is a first-order shelf pair around `fc`: `+gain_db/2` far above, `−gain_db/2` far
//! below, 0 dB at `fc`. It is realised on the SVF as a second-order section whose denominator
//! `s² + (A + 1/A)·s + 1 = (s + A)(s + 1/A)` carries the tilt's pole at `−A` and a second pole at
//! `−1/A` that the numerator cancels.
//!
//! Coefficient arithmetic is `f64`; the only transcendental calls are `tan` (per frequency) and
//! `exp` (per gain), both from `libm`.

use super::df1::Df1Coefs;
use super::svf::SvfCoefs;
use std::f64::consts::PI;

/// One designed second-order section: the SVF section `SvfCoefs::new(g, k, m0, m1, m2)` and the
/// direct form I biquad of the same transfer function (`Df1Coefs::bilinear` of the same values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Section {
    /// The SVF form.
    pub svf: SvfCoefs,
    /// The direct form I form.
    pub df1: Df1Coefs,
}

impl Section {
    /// The section for prewarped gain `g`, damping `k` and output mix `m` of (input,
    /// band-pass, low-pass) of the SVF.
    #[inline]
    pub fn new(g: f64, k: f64, m0: f64, m1: f64, m2: f64) -> Self {
        Section {
            svf: SvfCoefs::new(g, k, m0, m1, m2),
            df1: Df1Coefs::bilinear(g, k, m0, m1, m2),
        }
    }
}

/// Highest frequency a filter is tuned to, as a fraction of the sample rate (the prewarp `tan`
/// grows without bound towards 0.5).
pub const MAX_FREQ_RATIO: f64 = 0.49;

/// The prewarped gain `tan(π·fc/fs)` of the bilinear transform, with `fc` clamped to
/// `[0, 0.49·fs]`.
#[inline]
pub fn prewarp(freq_hz: f64, sample_rate: f64) -> f64 {
    let f = freq_hz.clamp(0.0, MAX_FREQ_RATIO * sample_rate);
    libm::tan(PI * f / sample_rate)
}

/// `A = 10^(gain_db/40)`, the square root of the linear gain.
#[inline]
pub fn shelf_a(gain_db: f64) -> f64 {
    libm::exp(gain_db * (std::f64::consts::LN_10 / 40.0))
}

/// Quality factors of the second-order sections of a Butterworth filter of even `order`
/// (2, 4, 6, 8…): `Q_i = 1 / (2·cos((2i − 1)·π / (2·order)))`, lowest first.
pub fn butterworth_qs(order: usize) -> Vec<f64> {
    (1..=order / 2)
        .map(|i| 1.0 / (2.0 * libm::cos((2 * i - 1) as f64 * PI / (2 * order) as f64)))
        .collect()
}

/// 2nd-order low-pass at `t = tan(π·fc/fs)`.
#[inline]
pub fn low_pass(t: f64, q: f64) -> Section {
    Section::new(t, 1.0 / q, 0.0, 0.0, 1.0)
}

/// 2nd-order high-pass.
#[inline]
pub fn high_pass(t: f64, q: f64) -> Section {
    let k = 1.0 / q;
    Section::new(t, k, 1.0, -k, -1.0)
}

/// Band-pass with 0 dB at the centre.
#[inline]
pub fn band_pass(t: f64, q: f64) -> Section {
    let k = 1.0 / q;
    Section::new(t, k, 0.0, k, 0.0)
}

/// Notch (band-reject).
#[inline]
pub fn notch(t: f64, q: f64) -> Section {
    let k = 1.0 / q;
    Section::new(t, k, 1.0, -k, 0.0)
}

/// Bell (peaking) filter with `a = 10^(gain_db/40)` ([`shelf_a`]).
#[inline]
pub fn bell(t: f64, a: f64, q: f64) -> Section {
    let k = 1.0 / (q * a);
    Section::new(t, k, 1.0, k * (a * a - 1.0), 0.0)
}

/// Low shelf: gain `a²` below `fc`, unity above.
#[inline]
pub fn low_shelf(t: f64, a: f64, q: f64) -> Section {
    let k = 1.0 / q;
    Section::new(t / a.sqrt(), k, 1.0, k * (a - 1.0), a * a - 1.0)
}

/// High shelf: unity below `fc`, gain `a²` above.
#[inline]
pub fn high_shelf(t: f64, a: f64, q: f64) -> Section {
    let k = 1.0 / q;
    Section::new(t * a.sqrt(), k, a * a, k * (1.0 - a) * a, 1.0 - a * a)
}

/// First-order tilt: `1/a` far below `fc`, `a` far above, unity at `fc`.
#[inline]
pub fn tilt(t: f64, a: f64) -> Section {
    let ia = 1.0 / a;
    Section::new(t, a + ia, a, 1.0 - a * a, ia - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn butterworth_quality_factors() {
        let q2 = butterworth_qs(2);
        assert!((q2[0] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-15);
        let q4 = butterworth_qs(4);
        assert!((q4[0] - 0.541_196_100_146_197).abs() < 1e-12);
        assert!((q4[1] - 1.306_562_964_876_376_6).abs() < 1e-12);
        let q8 = butterworth_qs(8);
        assert!((q8[3] - 2.562_915_447_741_506).abs() < 1e-12);
    }

    #[test]
    fn neutral_gain_is_identity() {
        let t = prewarp(1000.0, 48000.0);
        for c in [
            bell(t, 1.0, 2.0),
            low_shelf(t, 1.0, 0.7),
            high_shelf(t, 1.0, 0.7),
            tilt(t, 1.0),
        ] {
            assert_eq!((c.svf.c1, c.svf.c2, c.svf.d), (0.0, 0.0, 1.0));
        }
    }
}
