//! Which parts of a programme are measured: its loudest sections (by BS.1770 short-term
//! loudness, not RMS), or the parts at a given loudness rank (a verse against a reference's
//! quieter parts), optionally within a time range (a recipe's section).
//!
//! A selection is a mask over the 100 ms loudness hops: a short-term window (3 s) that is
//! chosen marks the 30 hops it covers.

use super::scan::{Scan, HOP_S, SHORT_TERM_HOPS};

/// Short-term loudness below this is silence, not music (BS.1770's absolute gate).
const ABSOLUTE_GATE_LUFS: f64 = -70.0;

/// Chosen 100 ms hops of a programme.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// One flag per hop.
    pub hops: Vec<bool>,
    /// Mean short-term loudness of the chosen windows, LUFS.
    pub loudness_lufs: f64,
}

impl Selection {
    /// Whether the sample at `frame` (at `rate`) lies in a chosen hop.
    pub fn contains(&self, frame: u64, rate: u32) -> bool {
        let hop = (frame as f64 / (HOP_S * f64::from(rate))) as usize;
        self.hops.get(hop).copied().unwrap_or(false)
    }

    /// The hops chosen in either, with the mean of their loudnesses weighted by their
    /// lengths.
    pub fn union(&self, other: &Selection) -> Selection {
        let (a, b) = (self.seconds(), other.seconds());
        Selection {
            hops: self
                .hops
                .iter()
                .zip(&other.hops)
                .map(|(x, y)| *x || *y)
                .collect(),
            loudness_lufs: (a * self.loudness_lufs + b * other.loudness_lufs) / (a + b).max(1e-9),
        }
    }

    /// Seconds chosen.
    pub fn seconds(&self) -> f64 {
        self.hops.iter().filter(|h| **h).count() as f64 * HOP_S
    }
}

/// The short-term windows of `scan` ending within `range_s` (seconds; the whole programme
/// when `None`) and above the absolute gate, ranked by loudness: chooses those whose rank lies
/// between the quantiles `lo_q` and `hi_q` (0 quietest, 1 loudest). `loudest` is
/// `rank(scan, None, 0.7, 1.0)`.
pub fn rank(scan: &Scan, range_s: Option<(f64, f64)>, lo_q: f64, hi_q: f64) -> Selection {
    let st = &scan.short_term;
    let (from, to) = range_s.unwrap_or((0.0, f64::INFINITY));
    // Window i covers hops i+1-30 ..= i; only full windows inside the range count.
    let first = ((from / HOP_S).round() as usize + SHORT_TERM_HOPS - 1).min(st.len());
    let last = ((to / HOP_S).round() as usize).min(st.len());
    let mut candidates: Vec<(usize, f64)> = (first..last)
        .map(|i| (i, st[i]))
        .filter(|(_, l)| l.is_finite() && *l > ABSOLUTE_GATE_LUFS)
        .collect();
    if candidates.is_empty() {
        // A range shorter than 3 s: its hops as they are.
        candidates = ((from / HOP_S) as usize..last)
            .map(|i| (i, st[i]))
            .filter(|(_, l)| l.is_finite() && *l > ABSOLUTE_GATE_LUFS)
            .collect();
    }
    let mut sorted: Vec<f64> = candidates.iter().map(|c| c.1).collect();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if sorted.is_empty() {
            f64::NAN
        } else {
            sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
        }
    };
    let (lo, hi) = (q(lo_q), q(hi_q));
    let mut hops = vec![false; st.len()];
    let mut sum = 0.0;
    let mut n = 0;
    for &(i, l) in &candidates {
        if l >= lo && l <= hi {
            let start = (i + 1)
                .saturating_sub(SHORT_TERM_HOPS)
                .max((from / HOP_S) as usize);
            for h in &mut hops[start..=i] {
                *h = true;
            }
            sum += l;
            n += 1;
        }
    }
    Selection {
        hops,
        loudness_lufs: if n > 0 { sum / n as f64 } else { f64::NAN },
    }
}

/// Whether a short-term loudness is music rather than silence (above BS.1770's absolute
/// gate).
pub fn audible(lufs: f64) -> bool {
    lufs.is_finite() && lufs > ABSOLUTE_GATE_LUFS
}

/// The `p` quantile of `v` (sorted in place), `None` when empty.
fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)])
}

/// A programme's loud level: the 90th percentile of its audible short-term loudness, LUFS
/// (`None` when it is silent).
pub fn loud_level(scan: &Scan) -> Option<f64> {
    let mut st: Vec<f64> = scan
        .short_term
        .iter()
        .copied()
        .filter(|l| audible(*l))
        .collect();
    percentile(&mut st, 0.9)
}

/// How far under the loud level (the 90th percentile of the short-term loudness) a window may
/// be and still count among the loudest sections, LU.
pub const LOUDEST_RANGE_LU: f64 = 8.0;

/// The loudest sections (within `range_s`, if given): the short-term windows within
/// [`LOUDEST_RANGE_LU`] of the loud level. A band of loudness rather than a share of the song,
/// so that a reference whose balance differs (a quieter lead part) is measured over the same
/// kind of music as the master, not over different parts of it.
pub fn loudest(scan: &Scan, range_s: Option<(f64, f64)>) -> Selection {
    let all = rank(scan, range_s, 0.0, 1.0);
    let mut st: Vec<f64> = scan
        .short_term
        .iter()
        .enumerate()
        .filter(|(i, l)| all.hops[*i] && audible(**l))
        .map(|(_, l)| *l)
        .collect();
    let Some(loud) = percentile(&mut st, 0.9) else {
        return all;
    };
    let lo =
        st.partition_point(|l| *l < loud - LOUDEST_RANGE_LU) as f64 / (st.len() - 1).max(1) as f64;
    rank(scan, range_s, lo, 1.0)
}
