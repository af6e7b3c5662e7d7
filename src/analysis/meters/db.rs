//! Decibel conversions shared by the meters (via `libm`, so results do not depend on the C library).

/// BS.1770's offset between K-weighted mean square and LUFS: `L = -0.691 + 10·log10(z)`.
pub const LUFS_OFFSET: f64 = -0.691;

/// Linear amplitude to dB (`20·log10|x|`); 0 gives `-inf`.
#[inline]
pub fn lin_to_db(lin: f64) -> f64 {
    20.0 * libm::log10(lin.abs())
}

/// dB to linear amplitude (`10^(dB/20)`).
#[inline]
pub fn db_to_lin(db: f64) -> f64 {
    libm::pow(10.0, db / 20.0)
}

/// Power (mean square) to dB (`10·log10(p)`); 0 gives `-inf`.
#[inline]
pub fn power_to_db(power: f64) -> f64 {
    10.0 * libm::log10(power)
}

/// dB to power (`10^(dB/10)`).
#[inline]
pub fn db_to_power(db: f64) -> f64 {
    libm::pow(10.0, db / 10.0)
}

/// Channel-weighted K-weighted mean square to loudness in LUFS; 0 gives `-inf`.
#[inline]
pub fn energy_to_lufs(energy: f64) -> f64 {
    LUFS_OFFSET + power_to_db(energy)
}

/// Loudness in LUFS to channel-weighted K-weighted mean square.
#[inline]
pub fn lufs_to_energy(lufs: f64) -> f64 {
    db_to_power(lufs - LUFS_OFFSET)
}
