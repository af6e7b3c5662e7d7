//! How analysis results write numbers in JSON: rounded to a fixed number of decimals, so two
//! runs that measure the same thing print the same text (reports diff cleanly), and with
//! `null` for values that are not finite (the −∞ dB of silence, an undefined ratio).
//!
//! Used through `#[serde(serialize_with = "...")]` on the result types of
//! [`analyze`](super::analyze) and the render report (`render::report`).

use serde::Serializer;

/// Decimals kept for levels and loudness (dB, LUFS, LU): 0.001 dB is far below what any
/// meter here resolves.
pub const DB_DECIMALS: i32 = 3;
/// Decimals kept for ratios (correlation, width) and seconds.
pub const RATIO_DECIMALS: i32 = 4;

/// `v` rounded to `decimals`, or `None` if it is not finite.
pub fn rounded(v: f64, decimals: i32) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    let scale = libm::pow(10.0, f64::from(decimals));
    let r = libm::round(v * scale) / scale;
    // No "-0.0" in the output.
    Some(if r == 0.0 { 0.0 } else { r })
}

/// A level in dB (or LUFS, LU): 3 decimals, `null` if not finite.
pub fn db<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match rounded(*v, DB_DECIMALS) {
        Some(r) => s.serialize_f64(r),
        None => s.serialize_none(),
    }
}

/// An optional level in dB: 3 decimals, `null` if absent or not finite.
pub fn opt_db<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    db(&v.unwrap_or(f64::NAN), s)
}

/// A ratio or a time in seconds: 4 decimals, `null` if not finite.
pub fn ratio<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match rounded(*v, RATIO_DECIMALS) {
        Some(r) => s.serialize_f64(r),
        None => s.serialize_none(),
    }
}

/// An optional ratio: 4 decimals, `null` if absent or not finite.
pub fn opt_ratio<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    ratio(&v.unwrap_or(f64::NAN), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_and_writes_null_for_infinities() {
        assert_eq!(rounded(-23.00049, 3), Some(-23.0));
        assert_eq!(rounded(-0.0001, 3), Some(0.0));
        assert_eq!(rounded(f64::NEG_INFINITY, 3), None);
        assert_eq!(rounded(f64::NAN, 3), None);
        #[derive(serde::Serialize)]
        struct T {
            #[serde(serialize_with = "db")]
            a: f64,
            #[serde(serialize_with = "db")]
            b: f64,
            #[serde(serialize_with = "opt_ratio")]
            c: Option<f64>,
        }
        let t = T {
            a: -14.123456,
            b: f64::NEG_INFINITY,
            c: Some(0.123456),
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"a":-14.123,"b":null,"c":0.1235}"#
        );
    }
}
