//! Units and conversions used across the engine.
//!
//! Conversions on the signal path use `libm`, not the C library, so renders are bit-identical on
//! every machine.

/// Decibels to a linear amplitude factor.
#[inline]
pub fn db_to_gain(db: f64) -> f64 {
    libm::exp(db * (std::f64::consts::LN_10 / 20.0))
}

/// A linear amplitude factor to decibels (−inf for 0).
#[inline]
pub fn gain_to_db(gain: f64) -> f64 {
    if gain <= 0.0 {
        f64::NEG_INFINITY
    } else {
        20.0 * libm::log10(gain)
    }
}

/// Seconds to a whole number of samples at `sample_rate` (rounded to nearest).
#[inline]
pub fn seconds_to_samples(seconds: f64, sample_rate: f64) -> i64 {
    libm::round(seconds * sample_rate) as i64
}

/// Milliseconds to a whole number of samples (rounded to nearest).
#[inline]
pub fn ms_to_samples(ms: f64, sample_rate: f64) -> usize {
    libm::round(ms * 0.001 * sample_rate).max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decibel_round_trip() {
        for db in [-120.0, -6.0206, 0.0, 3.0, 24.0] {
            assert!((gain_to_db(db_to_gain(db)) - db).abs() < 1e-12);
        }
        assert_eq!(db_to_gain(0.0), 1.0);
        assert!((db_to_gain(-6.0) - 0.501187).abs() < 1e-6);
    }
}
