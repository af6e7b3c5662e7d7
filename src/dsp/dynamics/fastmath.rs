//! Fast, deterministic `log2`/`exp2` for the detector and gain paths.
//!
//! A dynamics processor converts every sample's level to decibels and every sample's gain back
//! to a factor. A gain computer needs nowhere near double precision for that, so both are
//! computed in **f32** (sixteen lanes per AVX-512 instruction, eight per AVX2) while the audio
//! stays f64: the f32 gain factor, widened exactly, multiplies the f64 samples. Plain IEEE
//! arithmetic and bit manipulation (no C library, no table, no division, no data-dependent
//! branch or select), so the bits are the same on every machine and in every vector width.
//!
//! Accuracy (checked by the unit tests against `libm` in f64):
//! - [`level_log2`]: the detector value clamped to [1e−30, 1e30] and rounded to f32, mantissa
//!   reduced to [√½, √2) by integer arithmetic on the bits, `log2(1 + x)` by a degree-9
//!   polynomial without a division: **< 8e−6 dB** on a level above −80 dBFS, < 3e−5 dB down
//!   to the floor (−600 dB);
//! - [`db_to_amp`]: the exponent rounded to f32, rounded to the nearest integer power of two,
//!   2^f for |f| ≤ ½ by a degree-6 polynomial: **< 2e−6 dB** on a gain within ±60 dB;
//!   `db_to_amp(0) == 1` exactly, so a gain stage at 0 dB is bit-transparent.
//!
//! Both far inside the 0.002 dB the dynamics processors allow. [`log2`] and [`exp2`] are written
//! once over [`F32Lanes`]: on `f32` here, on sixteen lanes in the AVX-512 kernels of the
//! compressor, the same operations in the same order, so the same bits. The polynomials are
//! evaluated by fused multiply-adds (one rounding per coefficient, half the operations of a
//! multiply and an add): `f32::mul_add`, correctly rounded on every build, and the FMA
//! instructions in the vector builds, which therefore need FMA (the builds compiled without it
//! call the C library's `fmaf`: the same bits, slower).

/// 20·log10(2): decibels per doubling of an amplitude.
pub const DB_PER_OCTAVE_AMP: f64 = 6.020_599_913_279_624;
/// log2(10)/20: doublings per decibel of amplitude.
pub const OCTAVES_PER_DB_AMP: f64 = 0.166_096_404_744_368_1;

/// Detector values (amplitudes or mean squares) are raised to this before the logarithm
/// (−600 dB as an amplitude): a normal f32, far under any threshold.
pub const LEVEL_FLOOR: f64 = 1e-30;
/// Detector values are lowered to this before the logarithm (+600 dB), so that the f32 is finite.
pub const LEVEL_CEILING: f64 = 1e30;

/// A detector value clamped to [[`LEVEL_FLOOR`], [`LEVEL_CEILING`]] (a NaN to the floor) and
/// rounded to f32: the input of [`log2`].
#[inline(always)]
pub fn narrow_level(v: f64) -> f32 {
    let v = if v > LEVEL_FLOOR { v } else { LEVEL_FLOOR };
    let v = if v < LEVEL_CEILING { v } else { LEVEL_CEILING };
    v as f32
}

/// The arithmetic [`log2`] and [`exp2`] are written in: `f32` itself, or a vector of f32 lanes
/// (the AVX-512 kernels' sixteen). Every build runs the same operations in the same order on
/// each lane, so every build gives the same bits.
pub trait F32Lanes: Copy {
    /// The lanes' bits, as `u32`.
    type Bits: Copy;
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self − o`.
    fn sub(self, o: Self) -> Self;
    /// `self · o`.
    fn mul(self, o: Self) -> Self;
    /// `self · a + b`, rounded once (a fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `if self > o { self } else { o }` (`maxps`: a NaN gives `o`).
    fn max(self, o: Self) -> Self;
    /// `if self < o { self } else { o }` (`minps`).
    fn min(self, o: Self) -> Self;
    /// The bits of each lane.
    fn to_bits(self) -> Self::Bits;
    /// Lanes from their bits.
    fn from_bits(b: Self::Bits) -> Self;
    /// `b.wrapping_add(c)`.
    fn bits_add(b: Self::Bits, c: u32) -> Self::Bits;
    /// `b & c`.
    fn bits_and(b: Self::Bits, c: u32) -> Self::Bits;
    /// `b >> 23` (logical).
    fn bits_shr23(b: Self::Bits) -> Self::Bits;
    /// `b << 23`.
    fn bits_shl23(b: Self::Bits) -> Self::Bits;
    /// The bits read as an `i32`, converted to f32 (exact: callers keep them small).
    fn int_to_float(b: Self::Bits) -> Self;
}

impl F32Lanes for f32 {
    type Bits = u32;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        if self > o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        if self < o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
    #[inline(always)]
    fn from_bits(b: u32) -> Self {
        f32::from_bits(b)
    }
    #[inline(always)]
    fn bits_add(b: u32, c: u32) -> u32 {
        b.wrapping_add(c)
    }
    #[inline(always)]
    fn bits_and(b: u32, c: u32) -> u32 {
        b & c
    }
    #[inline(always)]
    fn bits_shr23(b: u32) -> u32 {
        b >> 23
    }
    #[inline(always)]
    fn bits_shl23(b: u32) -> u32 {
        b << 23
    }
    #[inline(always)]
    fn int_to_float(b: u32) -> Self {
        b as i32 as f32
    }
}

/// `c[0] + x·(c[1] + x·(… + x·c[N−1]))`, a fused multiply-add per coefficient.
#[inline(always)]
fn horner<V: F32Lanes, const N: usize>(x: V, c: &[f32; N]) -> V {
    let mut p = V::splat(c[N - 1]);
    for &c in c[..N - 1].iter().rev() {
        p = x.mul_add(p, V::splat(c));
    }
    p
}

/// Base-2 logarithm of positive, normal lanes (see [`narrow_level`]).
#[inline(always)]
pub fn log2<V: F32Lanes>(x: V) -> V {
    // Shift the bits so the exponent field counts from √½ (musl's trick): the mantissa lands in
    // [√½, √2) without a comparison, which keeps the function branch- and select-free.
    const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
    const ONE_BITS: u32 = 0x3f80_0000;
    let ix = V::bits_add(x.to_bits(), ONE_BITS - SQRT_HALF_BITS);
    let e = V::int_to_float(V::bits_add(V::bits_shr23(ix), 127u32.wrapping_neg()));
    let m = V::from_bits(V::bits_add(V::bits_and(ix, 0x007f_ffff), SQRT_HALF_BITS));
    // x in [√½ − 1, √2 − 1), exact (Sterbenz); log2(1 + x) = x·P(x), P fitted for the least
    // relative error on that interval (2.6e−8).
    let x = m.sub(V::splat(1.0));
    // Fitted coefficients: the first is close to log2(e) but is the fit's, not the constant.
    #[allow(clippy::approx_constant)]
    const P: [f32; 9] = [
        1.442_695_0,
        -0.721_347_33,
        0.480_910_63,
        -0.360_703_65,
        0.287_916_18,
        -0.238_945_3,
        0.215_716_63,
        -0.207_266_82,
        0.125_830_64,
    ];
    x.mul_add(horner(x, &P), e)
}

/// 2^y, for y in [−126, 126] (clamped; a NaN to −126).
#[inline(always)]
pub fn exp2<V: F32Lanes>(y: V) -> V {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let y = y.max(V::splat(-126.0)).min(V::splat(126.0));
    let t = y.add(V::splat(MAGIC));
    let f = y.sub(t.sub(V::splat(MAGIC)));
    // 2^f = 1 + f·Q(f), Q fitted for the least relative error of 2^f on [−½, ½] (1.1e−8).
    #[allow(clippy::approx_constant)]
    const Q: [f32; 6] = [
        0.693_147_2,
        0.240_226_49,
        0.055_503_573,
        0.009_618_238,
        0.001_339_073_6,
        0.000_154_034_95,
    ];
    let p = f.mul_add(horner(f, &Q), V::splat(1.0));
    // 2^n from n = t's bits − MAGIC's: the biased exponent n + 127 in the exponent field.
    let two_n = V::bits_shl23(V::bits_add(
        t.to_bits(),
        127u32.wrapping_sub(MAGIC.to_bits()),
    ));
    V::from_bits(two_n).mul(p)
}

/// The base-2 logarithm of a detector value: [`log2`] of [`narrow_level`], widened.
#[inline(always)]
pub fn level_log2(v: f64) -> f64 {
    log2(narrow_level(v)) as f64
}

/// The doublings of a gain of `db` decibels, rounded to f32: the input of [`exp2`].
#[inline(always)]
pub fn gain_octaves(db: f64) -> f32 {
    (db * OCTAVES_PER_DB_AMP) as f32
}

/// Decibels to an amplitude factor: [`exp2`] of [`gain_octaves`], widened.
#[inline(always)]
pub fn db_to_amp(db: f64) -> f64 {
    exp2(gain_octaves(db)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level in dB of detector values from the floor to +120 dBFS, against f64 `libm`:
    /// within 8e−6 dB above −80 dBFS, 3e−5 dB below; exact powers of two exactly.
    #[test]
    fn levels_match_libm() {
        let (mut loud, mut quiet): (f64, f64) = (0.0, 0.0);
        let mut v = LEVEL_FLOOR;
        while v < 1e6 {
            let err = DB_PER_OCTAVE_AMP * (level_log2(v) - libm::log2(v)).abs();
            if v >= 1e-4 {
                loud = loud.max(err);
            } else {
                quiet = quiet.max(err);
            }
            v *= 1.000_37;
        }
        assert!(loud < 8e-6, "above -80 dBFS: {loud} dB");
        assert!(quiet < 3e-5, "below -80 dBFS: {quiet} dB");
        assert!(loud > 0.0 && quiet > loud, "the f32 error is visible");
        assert_eq!(level_log2(1.0), 0.0);
        assert_eq!(level_log2(2.0), 1.0);
        assert_eq!(level_log2(0.25), -2.0);
        // Out of range and NaN: clamped, finite.
        assert_eq!(level_log2(0.0), level_log2(LEVEL_FLOOR));
        assert_eq!(level_log2(f64::NAN), level_log2(LEVEL_FLOOR));
        assert_eq!(level_log2(1e300), level_log2(LEVEL_CEILING));
        assert!((level_log2(LEVEL_CEILING) - libm::log2(1e30)).abs() < 1e-5);
    }

    /// Gains from −60 to +60 dB against f64 `libm`: within 4e−6 dB; 0 dB exactly 1.
    #[test]
    fn gains_match_libm() {
        let mut worst: f64 = 0.0;
        let mut db = -60.0;
        while db < 60.0 {
            let r = db_to_amp(db) / libm::exp10(db / 20.0);
            worst = worst.max((20.0 * libm::log10(r)).abs());
            db += 0.000_731;
        }
        assert!(worst < 4e-6 && worst > 0.0, "worst {worst} dB");
        assert_eq!(db_to_amp(0.0), 1.0);
        assert_eq!(db_to_amp(-0.0), 1.0);
        assert_eq!(exp2(3.0f32), 8.0);
        assert_eq!(exp2(-2.0f32), 0.25);
        assert_eq!(exp2(1000.0f32), exp2(126.0f32));
        assert_eq!(exp2(f32::NAN), exp2(-126.0f32));
        assert!(db_to_amp(-1000.0) > 0.0, "clamped: a normal f32");
    }
}
