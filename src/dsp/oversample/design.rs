//! Filter design for every oversampling and true-peak filter: the Kaiser window (one
//! [`bessel_i0`], one [`kaiser_beta`]), the windowed sinc, the half-band stages of the cascades
//! ([`HalfbandDesign`]) and the coefficient table of the direct polyphase interpolators
//! ([`PolyphaseTable`]).
//!
//! Everything is designed in `f64` when a processor or meter is built (allocation happens here,
//! never while processing).

use std::f64::consts::PI;

/// Zeroth-order modified Bessel function of the first kind (power series, summed until a term
/// is below 10⁻²¹ of the sum).
pub fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    let mut k = 1.0;
    while term > 1e-21 * sum {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Kaiser β for a stopband attenuation of `atten_db` (Kaiser's empirical formula).
pub fn kaiser_beta(atten_db: f64) -> f64 {
    if atten_db > 50.0 {
        0.1102 * (atten_db - 8.7)
    } else if atten_db > 21.0 {
        0.5842 * libm::pow(atten_db - 21.0, 0.4) + 0.07886 * (atten_db - 21.0)
    } else {
        0.0
    }
}

/// Kaiser window at `t` ∈ [−1, 1] (0 outside).
pub fn kaiser(t: f64, beta: f64) -> f64 {
    if t.abs() > 1.0 {
        return 0.0;
    }
    bessel_i0(beta * libm::sqrt(1.0 - t * t)) / bessel_i0(beta)
}

/// sin(πx)/(πx).
pub fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        libm::sin(PI * x) / (PI * x)
    }
}

/// A half-band 2× stage design: `2·m` symmetric coefficients of the odd taps (the centre tap is
/// ½ and the other even taps are zero).
#[derive(Debug, Clone)]
pub(crate) struct HalfbandDesign {
    /// Odd-tap coefficients, scaled ×2 (the interpolation gain), newest input first.
    pub(crate) a: Vec<f64>,
    pub(crate) m: usize,
}

impl HalfbandDesign {
    /// A half-band filter whose transition band is `width` wide (cycles per sample at the high
    /// rate, centred on 0.25) with `atten_db` of stopband attenuation.
    pub(crate) fn new(width: f64, atten_db: f64) -> Self {
        let n = (atten_db - 8.0) / (2.285 * 2.0 * PI * width) + 1.0;
        let m = ((n + 1.0) / 4.0).ceil().max(1.0) as usize;
        let beta = kaiser_beta(atten_db);
        let r = (2 * m) as f64; // the window reaches zero just past the outermost tap
        let mut a = Vec::with_capacity(2 * m);
        for j in 0..2 * m {
            // Odd tap k = 2j − 2m + 1 of h[k] = sinc(k/2)/2 · w(k).
            let k = 2.0 * j as f64 - 2.0 * m as f64 + 1.0;
            a.push(sinc(k / 2.0) * kaiser(k / r, beta));
        }
        // Normalise: the odd taps of a half-band sum to exactly ½ (×2 = 1).
        let s: f64 = a.iter().sum();
        a.iter_mut().for_each(|v| *v /= s);
        Self { a, m }
    }

    /// Round-trip-free latency of one direction, in high-rate samples.
    pub(crate) fn latency_high(&self) -> usize {
        2 * self.m - 1
    }
}

/// The coefficients of a direct polyphase interpolator by `factor`: one row of `taps`
/// coefficients per phase, **oldest input first**. Phase `p` gives the signal `p/factor` of a
/// sample after the instant the filter is centred on.
///
/// A table may leave out phase 0 when its prototype is a Nyquist filter (phase 0 is then the
/// delayed input itself): [`Self::first_phase`] says which phase its first row is.
#[derive(Debug, Clone, PartialEq)]
pub struct PolyphaseTable {
    factor: usize,
    taps: usize,
    first_phase: usize,
    coefs: Box<[f64]>,
}

impl PolyphaseTable {
    /// A Kaiser-windowed sinc (window parameter `beta`) of `taps` (even) coefficients per phase,
    /// each phase normalised to unity gain at DC, delay `taps/2` input samples. Phase 0 is the
    /// delayed input and is not stored (rows are phases `1..factor`). Allocates.
    pub fn kaiser_sinc(factor: usize, taps: usize, beta: f64) -> Self {
        let half = (taps / 2) as f64;
        let i0_beta = bessel_i0(beta);
        let mut coefs = Vec::with_capacity(factor.saturating_sub(1) * taps);
        for p in 1..factor {
            let frac = p as f64 / factor as f64;
            let start = coefs.len();
            for i in 0..taps {
                // Distance from the interpolated instant to the sample at this tap, in samples.
                let k = (taps - 1 - i) as f64;
                let u = k - half + frac;
                let r = u / half;
                // |r| ≤ 1 for every tap (0 < frac < 1): the window's own range.
                let w = bessel_i0(beta * libm::sqrt((1.0 - r * r).max(0.0))) / i0_beta;
                coefs.push(sinc(u) * w);
            }
            let sum: f64 = coefs[start..].iter().sum();
            for c in &mut coefs[start..] {
                *c /= sum;
            }
        }
        Self {
            factor,
            taps,
            first_phase: 1,
            coefs: coefs.into_boxed_slice(),
        }
    }

    /// The interpolator of common BS.1770 true-peak meters (libebur128, the `ebur128` crate): a
    /// prototype of `total` taps, Hann-windowed sinc with its cutoff at the input's fs/2, split
    /// into `factor` phases of `total / factor` taps (all phases stored, none normalised; delay
    /// `total / 2 / factor` input samples). Allocates.
    pub fn hann_sinc(factor: usize, total: usize) -> Self {
        let taps = total / factor;
        let n = total as f64;
        let flat: Vec<f64> = (0..total)
            .map(|j| {
                let j = j as f64;
                let w = 0.5 * (1.0 - libm::cos(2.0 * PI * j / n));
                let m = j - n / 2.0;
                w * sinc(m / factor as f64)
            })
            .collect();
        // Prototype tap `t·factor + p` weighs the input `t` steps back in phase `p`.
        let mut coefs = Vec::with_capacity(total);
        for p in 0..factor {
            coefs.extend((0..taps).map(|i| flat[(taps - 1 - i) * factor + p]));
        }
        Self {
            factor,
            taps,
            first_phase: 0,
            coefs: coefs.into_boxed_slice(),
        }
    }

    /// The interpolation factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Coefficients per phase.
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// The phase of the first row (1 when phase 0, the delayed input, is left out).
    pub fn first_phase(&self) -> usize {
        self.first_phase
    }

    /// Coefficients of phase `p` (`first_phase..factor`), oldest input first.
    pub fn phase(&self, p: usize) -> &[f64] {
        let r = p - self.first_phase;
        &self.coefs[r * self.taps..(r + 1) * self.taps]
    }

    /// Sum of the absolute coefficients of phase `p`: no output of that phase exceeds this
    /// times the largest input magnitude in its window.
    pub fn l1(&self, p: usize) -> f64 {
        self.phase(p).iter().map(|c| c.abs()).sum()
    }

    /// The largest [`Self::l1`] over the stored phases, and 1 (a left-out phase 0 is the input).
    pub fn max_l1(&self) -> f64 {
        (self.first_phase..self.factor)
            .map(|p| self.l1(p))
            .fold(1.0, f64::max)
    }

    /// The table as rows by delay, all phases side by side: `rows[t][p]` weighs the input `t`
    /// steps back in phase `p` (lanes from `factor` on are zero). For the kernels that compute
    /// every phase of one output in one vector (at most four phases).
    pub(crate) fn rows_by_delay(&self) -> Vec<[f64; 4]> {
        assert!(
            self.first_phase == 0 && self.factor <= 4,
            "rows by delay need every phase, at most four"
        );
        (0..self.taps)
            .map(|t| {
                let mut row = [0.0; 4];
                for (p, r) in row.iter_mut().enumerate().take(self.factor) {
                    *r = self.phase(p)[self.taps - 1 - t];
                }
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiser_window_is_one_in_the_middle_and_zero_outside() {
        assert_eq!(kaiser(0.0, 5.0), 1.0);
        assert_eq!(kaiser(1.5, 5.0), 0.0);
        assert!(kaiser(0.9, 5.0) < kaiser(0.5, 5.0));
    }

    #[test]
    fn bessel_i0_matches_known_values() {
        // I0(1) and I0(5) to 15 digits.
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-15);
        assert!((bessel_i0(5.0) - 27.239_871_823_604_442).abs() < 1e-12);
    }

    #[test]
    fn kaiser_phases_have_unity_dc_gain_and_symmetry() {
        let t = PolyphaseTable::kaiser_sinc(8, 32, 4.98);
        for p in 1..8 {
            let s: f64 = t.phase(p).iter().sum();
            assert!((s - 1.0).abs() < 1e-14);
            // Phase F − p is phase p reversed in time.
            let (a, b) = (t.phase(p), t.phase(8 - p));
            for i in 0..32 {
                assert!((a[i] - b[31 - i]).abs() < 1e-14);
            }
        }
        assert!(t.max_l1() > 1.0);
    }

    #[test]
    fn hann_rows_by_delay_transpose_the_phases() {
        let t = PolyphaseTable::hann_sinc(4, 48);
        let rows = t.rows_by_delay();
        assert_eq!(rows.len(), 12);
        // Phase 0 is (nearly) the input 6 steps back.
        assert!((rows[6][0] - 1.0).abs() < 1e-12);
        for (d, row) in rows.iter().enumerate() {
            for p in 0..4 {
                assert_eq!(row[p], t.phase(p)[11 - d]);
            }
        }
    }
}
