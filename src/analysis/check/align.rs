//! Stem offsets against the reference, to a fraction of a sample.
//!
//! Each stem is compared with what the reference says it is: the reference minus the other
//! stems (their levels fitted by least squares in the same window, so another stem's polarity or
//! level fault does not pull the estimate), in a window around the stem's loudest passage.
//! The cross-correlation's peak gives the whole-sample lag; the fraction is the move within a
//! sample of it that minimises the residual, measured with the same fractional-delay filter the
//! renderer uses ([`crate::io::offset`]). Then the residual decides: no move, the whole lag, or
//! the fractional lag, whichever leaves the least residual, the simpler one unless the other is
//! clearly better. A move is proposed only when it lowers the residual by at least
//! [`MIN_DROP_DB`]. Two rounds: the second with every stem placed by the first.

use super::null::Song;
use super::{CheckError, StemFacts};
use crate::io::decode::{StemStream, StreamOptions};
use crate::io::offset::Offset;
use realfft::RealFftPlanner;
use std::path::Path;

/// The least drop of the residual (dB) a move must bring to be proposed.
pub(super) const MIN_DROP_DB: f64 = 1.0;
/// Length of the compared region (frames at the session rate).
const REGION: usize = 1 << 17;

/// What the alignment found for one stem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Correction {
    /// The move (samples, positive = later) that aligns the stem as the recipe places it.
    pub samples: f64,
    /// How much the move lowers the residual in the compared region, dB.
    pub drop_db: f64,
}

/// The stems whose placement is compared: readable, audible, not muted by the recipe.
pub(super) fn active(facts: &[StemFacts]) -> Vec<usize> {
    (0..facts.len())
        .filter(|&i| facts[i].sample_peak_dbfs >= -90.0 && !facts[i].recipe.muted())
        .collect()
}

/// Mono (L + R) frames `[start, start + len)` of `path` at `rate`, moved by `offset` samples,
/// scaled by `gain`; non-finite samples muted; `start` may be negative (silence before 0).
pub(super) fn read_window(
    path: &Path,
    rate: u32,
    offset: f64,
    gain: f64,
    start: i64,
    len: usize,
) -> Result<Vec<f64>, CheckError> {
    let (s, _) = StemStream::open(
        path,
        &StreamOptions {
            target_rate: rate,
            target_channels: 2,
            length_frames: None,
        },
    )?;
    let mut s = s.with_offset(offset)?;
    let block = 4096;
    let (mut l, mut r) = (vec![0.0; block], vec![0.0; block]);
    let mut out = vec![0.0; len];
    let end = start + len as i64;
    let mut pos = 0i64;
    while pos < end {
        s.read_block(&mut [&mut l, &mut r], block)?;
        for k in 0..block {
            let t = pos + k as i64;
            if t >= start && t < end {
                let x = l[k] + r[k];
                out[(t - start) as usize] = if x.is_finite() { x * gain } else { 0.0 };
            }
        }
        pos += block as i64;
    }
    Ok(out)
}

/// Fills the lower triangle of a symmetric matrix from its upper triangle.
pub(super) fn mirror(a: &mut [Vec<f64>]) {
    for p in 0..a.len() {
        let (upper, lower) = a.split_at_mut(p);
        for (q, row) in upper.iter().enumerate() {
            lower[0][q] = row[p];
        }
    }
}

/// Solves `a x = b` (symmetric, small) by Gaussian elimination with partial pivoting; a tiny
/// ridge keeps silent or collinear columns at zero instead of blowing up.
pub(super) fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    let trace: f64 = (0..n).map(|i| a[i][i]).sum::<f64>().max(1e-300);
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-12 * trace / n as f64;
    }
    for col in 0..n {
        let p = (col..n)
            .max_by(|x, y| a[*x][col].abs().total_cmp(&a[*y][col].abs()))
            .unwrap_or(col);
        a.swap(col, p);
        b.swap(col, p);
        let d = a[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        let pivot = a[col].clone();
        for r in col + 1..n {
            let f = a[r][col] / d;
            for (x, p) in a[r][col..].iter_mut().zip(&pivot[col..]) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = if a[r][r].abs() < 1e-300 {
            0.0
        } else {
            (b[r] - s) / a[r][r]
        };
    }
    x
}

/// The whole lag `k` (within ±`max_lag`) maximising `|Σ x[t] · r[t + k]|`.
fn best_lag(x: &[f64], r: &[f64], max_lag: usize) -> f64 {
    let n = (x.len() + r.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    a[..x.len()].copy_from_slice(x);
    b[..r.len()].copy_from_slice(r);
    let (mut fa, mut fb) = (fwd.make_output_vec(), fwd.make_output_vec());
    if fwd.process(&mut a, &mut fa).is_err() || fwd.process(&mut b, &mut fb).is_err() {
        return 0.0;
    }
    let mut prod: Vec<_> = fa.iter().zip(&fb).map(|(p, q)| p.conj() * q).collect();
    // The DC and Nyquist bins of a real signal's product are real; rounding may leave a trace.
    prod[0].im = 0.0;
    if let Some(last) = prod.last_mut() {
        last.im = 0.0;
    }
    let mut c = inv.make_output_vec();
    if inv.process(&mut prod, &mut c).is_err() {
        return 0.0;
    }
    let at = |k: i64| c[k.rem_euclid(n as i64) as usize];
    let max_lag = max_lag as i64;
    let peak = (-max_lag..=max_lag)
        .max_by(|p, q| at(*p).abs().total_cmp(&at(*q).abs()))
        .unwrap_or(0);
    peak as f64
}

/// The residual energy over the region `[margin, margin + REGION)` left when `x` moved by `d`
/// samples (with its best gain) is taken from `r`.
fn residual_after_move(x: &[f64], r: &[f64], margin: usize, d: f64) -> f64 {
    let len = r.len() - 2 * margin;
    let mut y = vec![0.0; x.len()];
    if d == d.round() {
        let d = d as i64;
        for (t, v) in y.iter_mut().enumerate() {
            let src = t as i64 - d;
            if src >= 0 && (src as usize) < x.len() {
                *v = x[src as usize];
            }
        }
    } else if let Some(mut off) = Offset::new(d, 1) {
        let mut read = 0usize;
        let mut out = [&mut y[..]];
        let n = x.len();
        let _ = off.read(&mut out, n, |b: &mut [&mut [f64]], k| {
            for (j, v) in b[0][..k].iter_mut().enumerate() {
                *v = x.get(read + j).copied().unwrap_or(0.0);
            }
            read += k;
            Ok::<(), ()>(())
        });
    }
    let (mut rr, mut ry, mut yy) = (0.0, 0.0, 0.0);
    for t in margin..margin + len {
        rr += r[t] * r[t];
        ry += r[t] * y[t];
        yy += y[t] * y[t];
    }
    if yy > 0.0 {
        (rr - ry * ry / yy).max(0.0)
    } else {
        rr
    }
}

/// Refines the lag `k` to a fraction: the move within a sample of it that leaves the least
/// residual (golden-section search), on a shorter stretch of the region for speed.
fn refine(x: &[f64], r: &[f64], margin: usize, k: f64) -> f64 {
    const STRETCH: usize = 1 << 15;
    let inner = r.len() - 2 * margin;
    let (a, len) = if inner > STRETCH {
        (margin + (inner - STRETCH) / 2, STRETCH)
    } else {
        (margin, inner)
    };
    let pad = (k.abs() as usize + 80).min(a);
    let (xs, rs) = (&x[a - pad..a + len + pad], &r[a - pad..a + len + pad]);
    let e = |d: f64| residual_after_move(xs, rs, pad, d);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (k - 1.0, k + 1.0);
    let (mut p1, mut p2) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut f1, mut f2) = (e(p1), e(p2));
    for _ in 0..24 {
        if f1 < f2 {
            hi = p2;
            (p2, f2) = (p1, f1);
            p1 = hi - g * (hi - lo);
            f1 = e(p1);
        } else {
            lo = p1;
            (p1, f1) = (p2, f2);
            p2 = lo + g * (hi - lo);
            f2 = e(p2);
        }
    }
    (lo + hi) / 2.0
}

/// Chooses the move from the correlation's estimate `d`: none, the whole lag or the fraction,
/// by the residual each leaves.
fn choose(x: &[f64], r: &[f64], margin: usize, d: f64) -> Correction {
    let e0 = residual_after_move(x, r, margin, 0.0);
    let d = refine(x, r, margin, d.round());
    let whole = d.round();
    let mut best = (0.0, e0);
    if whole != 0.0 {
        let e = residual_after_move(x, r, margin, whole);
        if e < best.1 * 0.8 {
            best = (whole, e);
        }
    }
    if (d - whole).abs() >= 0.02 {
        let frac = (d * 100.0).round() / 100.0;
        let e = residual_after_move(x, r, margin, frac);
        if e < best.1 * 0.8 {
            best = (frac, e);
        }
    }
    let drop_db = 10.0 * libm::log10(e0.max(1e-300) / best.1.max(1e-300));
    if best.0 != 0.0 && drop_db < MIN_DROP_DB {
        return Correction {
            samples: 0.0,
            drop_db: 0.0,
        };
    }
    Correction {
        samples: best.0,
        drop_db,
    }
}

/// The window (start frame at the session rate) around stem `i`'s loudest second.
fn region_start(song: &Song, loudest_s: u64) -> i64 {
    let centre = (loudest_s as f64 + 0.5) * f64::from(song.rate);
    let start = centre as i64 - REGION as i64 / 2;
    start.clamp(0, (song.frames as i64 - REGION as i64).max(0))
}

/// One round: a correction for each active stem, given the moves found so far.
fn round(
    song: &Song,
    facts: &[StemFacts],
    loudest: &[u64],
    placed: &[f64],
) -> Result<Vec<Option<Correction>>, CheckError> {
    let act = active(facts);
    let margin = (song.rate as usize / 2).min(REGION / 2) + 64;
    let len = REGION + 2 * margin;
    let mut out = vec![None; facts.len()];
    for &i in &act {
        let start = region_start(song, loudest[i]) - margin as i64;
        let mut xs = Vec::with_capacity(act.len());
        for &j in &act {
            let f = &facts[j];
            let offset = f.recipe.offset_samples + placed[j];
            xs.push(read_window(
                &f.path,
                song.rate,
                offset,
                f.recipe.gain(),
                start,
                len,
            )?);
        }
        let m = read_window(song.reference, song.rate, 0.0, 1.0, start, len)?;
        // Levels of the others in this window (least squares over the region).
        let k = act.len();
        let mut a = vec![vec![0.0; k]; k];
        let mut b = vec![0.0; k];
        for t in margin..margin + REGION {
            for p in 0..k {
                b[p] += xs[p][t] * m[t];
                for q in p..k {
                    a[p][q] += xs[p][t] * xs[q][t];
                }
            }
        }
        mirror(&mut a);
        let g = solve(a, b);
        let me = act.iter().position(|&j| j == i).unwrap_or(0);
        let mut r = vec![0.0; len];
        for t in margin..margin + REGION {
            let others: f64 = (0..k).filter(|&p| p != me).map(|p| g[p] * xs[p][t]).sum();
            r[t] = m[t] - others;
        }
        let d = best_lag(&xs[me], &r, margin - 64);
        out[i] = Some(choose(&xs[me], &r, margin, d));
    }
    Ok(out)
}

/// The move each stem needs (relative to where the recipe places it), for every active stem.
pub(super) fn offsets(
    song: &Song,
    facts: &[StemFacts],
    loudest: &[u64],
) -> Result<Vec<Option<Correction>>, CheckError> {
    let mut placed = vec![0.0; facts.len()];
    let first = round(song, facts, loudest, &placed)?;
    for (p, c) in placed.iter_mut().zip(&first) {
        *p = c.map_or(0.0, |c| c.samples);
    }
    let second = round(song, facts, loudest, &placed)?;
    Ok(first
        .iter()
        .zip(&second)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => Some(Correction {
                samples: a.samples + b.samples,
                drop_db: a.drop_db.max(b.drop_db),
            }),
            _ => None,
        })
        .collect())
}
