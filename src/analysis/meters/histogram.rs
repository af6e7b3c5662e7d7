//! Fixed-size loudness histogram for gating (integrated loudness) and loudness range.
//!
//! Blocks above the absolute gate (−70 LUFS) are counted in bins of 0.01 LU from −70 to
//! +30 LUFS (louder blocks land in the top bin). Each bin also keeps the exact sum of its
//! blocks' energies, so gated means are exact except for the single bin that straddles the
//! relative gate (which is kept or dropped as a whole, by its mean): the result is within
//! a few thousandths of an LU of storing every block, in constant memory.

use super::db::{energy_to_lufs, lufs_to_energy};

/// Absolute gate of BS.1770 / EBU Tech 3342, in LUFS.
pub const ABSOLUTE_GATE_LUFS: f64 = -70.0;
/// Bin width in LU.
pub const BIN_LU: f64 = 0.01;
/// Number of bins (−70 to +30 LUFS).
pub const BINS: usize = 10_000;

/// Counts and energy sums of gating blocks by loudness.
#[derive(Clone, Debug)]
pub struct LoudnessHistogram {
    counts: Box<[u32]>,
    energies: Box<[f64]>,
    total_count: u64,
    total_energy: f64,
}

impl Default for LoudnessHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Bin index of a loudness value (clamped into the histogram).
fn bin_of(lufs: f64) -> usize {
    let i = libm::floor((lufs - ABSOLUTE_GATE_LUFS) / BIN_LU);
    if i <= 0.0 {
        0
    } else if i >= (BINS - 1) as f64 {
        BINS - 1
    } else {
        i as usize
    }
}

impl LoudnessHistogram {
    /// An empty histogram (allocates its bins once).
    pub fn new() -> Self {
        Self {
            counts: vec![0; BINS].into_boxed_slice(),
            energies: vec![0.0; BINS].into_boxed_slice(),
            total_count: 0,
            total_energy: 0.0,
        }
    }

    /// Forgets every block.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.energies.fill(0.0);
        self.total_count = 0;
        self.total_energy = 0.0;
    }

    /// Adds a block of channel-weighted mean square `energy` if it passes the absolute gate.
    pub fn add(&mut self, energy: f64) {
        let lufs = energy_to_lufs(energy);
        if lufs.is_nan() || lufs <= ABSOLUTE_GATE_LUFS {
            return;
        }
        let i = bin_of(lufs);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.energies[i] += energy;
        self.total_count += 1;
        self.total_energy += energy;
    }

    /// Number of blocks above the absolute gate.
    pub fn count(&self) -> u64 {
        self.total_count
    }

    /// Combined bin `i` of several histograms: (count, energy sum).
    fn bin(hs: &[&Self], i: usize) -> (u64, f64) {
        hs.iter().fold((0, 0.0), |(c, e), h| {
            (c + h.counts[i] as u64, e + h.energies[i])
        })
    }

    /// First bin above the relative gate `rel_lu` (negative, in LU) below the power mean of
    /// all absolutely gated blocks, or `None` if there are no blocks.
    fn relative_gate_start(hs: &[&Self], rel_lu: f64) -> Option<usize> {
        let (n, e) = hs.iter().fold((0u64, 0.0), |(c, e), h| {
            (c + h.total_count, e + h.total_energy)
        });
        if n == 0 {
            return None;
        }
        let threshold_lufs = energy_to_lufs(e / n as f64) + rel_lu;
        let threshold = lufs_to_energy(threshold_lufs);
        if threshold_lufs <= ABSOLUTE_GATE_LUFS {
            return Some(0);
        }
        let k = bin_of(threshold_lufs);
        let (c, e) = Self::bin(hs, k);
        // BS.1770 keeps blocks strictly louder than the gate; the straddling bin goes by its mean.
        Some(if c > 0 && e / c as f64 > threshold {
            k
        } else {
            k + 1
        })
    }

    /// Gated power mean in LUFS over several histograms, with relative gate `rel_lu`
    /// (−10 for BS.1770 integrated loudness); `-inf` if no block passes.
    pub fn gated_lufs(hs: &[&Self], rel_lu: f64) -> f64 {
        let Some(start) = Self::relative_gate_start(hs, rel_lu) else {
            return f64::NEG_INFINITY;
        };
        let (mut n, mut e) = (0u64, 0.0);
        for i in start..BINS {
            let (c, s) = Self::bin(hs, i);
            n += c;
            e += s;
        }
        if n == 0 {
            f64::NEG_INFINITY
        } else {
            energy_to_lufs(e / n as f64)
        }
    }

    /// Loudness range (EBU Tech 3342) over several histograms of short-term blocks:
    /// relative gate `rel_lu` (−20), then the 95th minus the 10th percentile; 0 if empty.
    pub fn loudness_range(hs: &[&Self], rel_lu: f64) -> f64 {
        let Some(start) = Self::relative_gate_start(hs, rel_lu) else {
            return 0.0;
        };
        let n: u64 = (start..BINS).map(|i| Self::bin(hs, i).0).sum();
        if n == 0 {
            return 0.0;
        }
        // Index into the ascending sorted values, rounded as Tech 3342's reference code does.
        let rank = |p: f64| libm::floor((n - 1) as f64 * p + 0.5) as u64;
        let (lo_rank, hi_rank) = (rank(0.10), rank(0.95));
        let (mut lo, mut hi) = (None, None);
        let mut seen = 0u64;
        for i in start..BINS {
            let (c, e) = Self::bin(hs, i);
            if c == 0 {
                continue;
            }
            seen += c;
            let lufs = energy_to_lufs(e / c as f64);
            if lo.is_none() && seen > lo_rank {
                lo = Some(lufs);
            }
            if seen > hi_rank {
                hi = Some(lufs);
                break;
            }
        }
        match (lo, hi) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => 0.0,
        }
    }
}
