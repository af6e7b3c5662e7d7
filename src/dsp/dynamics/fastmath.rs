//! Fast, deterministic `log2`/`exp2` for the detector and gain paths.
//!
//! A dynamics processor converts every sample's level to decibels and every sample's gain back
//! to a factor. These two functions do it with plain IEEE arithmetic and bit manipulation (no C
//! library, no table, no data-dependent branch or select), so they are bit-identical
//! on every machine and vectorise well.
//!
//! Accuracy (checked by the unit tests against `libm` over the whole useful range):
//! - [`log2`]: mantissa reduced to [√½, √2) by integer arithmetic on the bits, `ln m = 2·atanh t` with `t = (m−1)/(m+1)`,
//!   |t| ≤ 0.1716, series to t⁹: error < 2e−9 in log2, i.e. **< 1.2e−8 dB** on a level;
//! - [`exp2`]: rounded to the nearest integer exponent, 2^f for |f| ≤ ½ by its Taylor series to
//!   degree 7: relative error < 6e−9, i.e. **< 6e−8 dB** on a gain; `exp2(0) == 1` exactly,
//!   so a gain stage at 0 dB is bit-transparent.
//!
//! Both far inside the 0.002 dB the dynamics processors allow.

/// 20·log10(2): decibels per doubling of an amplitude.
pub const DB_PER_OCTAVE_AMP: f64 = 6.020_599_913_279_624;
/// log2(10)/20: doublings per decibel of amplitude.
pub const OCTAVES_PER_DB_AMP: f64 = 0.166_096_404_744_368_1;

const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
/// 2^52 as bits: or-ing a small integer into the mantissa gives 2^52 + that integer.
const TWO52_BITS: u64 = 0x4330_0000_0000_0000;
const TWO52_PLUS_BIAS: f64 = 4_503_599_627_370_496.0 + 1023.0;

/// Base-2 logarithm of a positive, normal `x` (callers floor their input, e.g. at 1e−40).
#[inline(always)]
pub fn log2(x: f64) -> f64 {
    // Shift the bits so the exponent field counts from √½ (musl's trick): the mantissa lands in
    // [√½, √2) without a comparison, which keeps the function branch- and select-free.
    const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
    let ix = x.to_bits().wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let e = f64::from_bits(TWO52_BITS | (ix >> 52)) - TWO52_PLUS_BIAS;
    let m = f64::from_bits((ix & MANTISSA).wrapping_add(SQRT_HALF_BITS));
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // 2/ln2 · (t + t³/3 + t⁵/5 + t⁷/7 + t⁹/9)
    const C1: f64 = 2.0 / std::f64::consts::LN_2;
    const C3: f64 = C1 / 3.0;
    const C5: f64 = C1 / 5.0;
    const C7: f64 = C1 / 7.0;
    const C9: f64 = C1 / 9.0;
    e + t * (C1 + t2 * (C3 + t2 * (C5 + t2 * (C7 + t2 * C9))))
}

/// 2^y, for y in [−1020, 1020] (clamped).
#[inline(always)]
pub fn exp2(y: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52: adding it rounds to an integer
    let y = y.clamp(-1020.0, 1020.0);
    let t = y + MAGIC;
    let n = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i64;
    let f = y - (t - MAGIC);
    // e^(f·ln2), Taylor to degree 7.
    const L1: f64 = std::f64::consts::LN_2;
    const L2: f64 = L1 * L1 / 2.0;
    const L3: f64 = L2 * L1 / 3.0;
    const L4: f64 = L3 * L1 / 4.0;
    const L5: f64 = L4 * L1 / 5.0;
    const L6: f64 = L5 * L1 / 6.0;
    const L7: f64 = L6 * L1 / 7.0;
    let p = 1.0 + f * (L1 + f * (L2 + f * (L3 + f * (L4 + f * (L5 + f * (L6 + f * L7))))));
    f64::from_bits(((n + 1023) as u64) << 52) * p
}

/// An amplitude (floored at 1e−20, −400 dB) in decibels.
#[inline(always)]
pub fn amp_to_db(x: f64) -> f64 {
    DB_PER_OCTAVE_AMP * log2(if x > 1e-20 { x } else { 1e-20 })
}

/// Decibels to an amplitude factor.
#[inline(always)]
pub fn db_to_amp(db: f64) -> f64 {
    exp2(db * OCTAVES_PER_DB_AMP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_matches_libm() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-20;
        while x < 1e6 {
            let err = (log2(x) - libm::log2(x)).abs();
            worst = worst.max(err);
            x *= 1.000_37;
        }
        assert!(worst * DB_PER_OCTAVE_AMP < 2e-8, "worst {worst}");
        assert_eq!(log2(1.0), 0.0);
        assert_eq!(log2(2.0), 1.0);
        assert_eq!(log2(0.25), -2.0);
    }

    #[test]
    fn exp2_matches_libm() {
        let mut worst: f64 = 0.0;
        let mut y = -60.0;
        while y < 60.0 {
            let r = exp2(y) / libm::exp2(y) - 1.0;
            worst = worst.max(r.abs());
            y += 0.000_731;
        }
        assert!(worst < 1e-8, "worst {worst}");
        assert_eq!(exp2(0.0), 1.0);
        assert_eq!(exp2(-0.0), 1.0);
        assert_eq!(exp2(3.0), 8.0);
        assert_eq!(exp2(-2.0), 0.25);
        assert_eq!(db_to_amp(0.0), 1.0);
    }
}
