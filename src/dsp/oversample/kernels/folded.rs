//! The peak scan of a direct polyphase interpolator folded by its time symmetry (the true-peak
//! meter's kernel), with a bound that skips outputs which cannot raise the running peak.

use super::super::design::PolyphaseTable;

/// Output positions computed per register block (amortizes loads, hides add latency).
const GROUP: usize = 8;
/// Most new samples one [`scan`] call may take.
pub const SCAN_MAX_NEW: usize = 512;
/// Most taps per phase.
pub const SCAN_MAX_TAPS: usize = 64;
/// Groups of the staged buffer: its length in `GROUP`-sample groups.
const GROUPS: usize = (SCAN_MAX_NEW + SCAN_MAX_TAPS).div_ceil(GROUP) + 1;

/// A Kaiser-windowed sinc table ([`PolyphaseTable::kaiser_sinc`]) folded by its symmetry.
///
/// Phase `factor − p` is phase `p` reversed in time (the windowed sinc is even), so with
/// `s_k = x_k + x_{t−1−k}` and `d_k = x_k − x_{t−1−k}` (k < t/2, shared by every phase):
/// `y_p + y_{F−p} = Σ e_k·s_k` and `y_p − y_{F−p} = Σ o_k·d_k` with `e_k = c_k + c_{t−1−k}`,
/// `o_k = c_k − c_{t−1−k}`, and `max(|y_p|, |y_{F−p}|) = (|Σ e·s| + |Σ o·d|) / 2`. The middle
/// phase `F/2` is symmetric: `y = Σ c_k·s_k`. Half the multiply-adds of the direct form; the
/// readings agree with it to rounding (a few units in the last place).
#[derive(Clone, Debug)]
pub struct FoldedPhases {
    half: usize,
    /// Per phase pair `(p, F − p)`, `p = 1 … F/2 − 1`: `e` then `o`, `half` values each.
    pairs: Box<[f64]>,
    /// The middle phase's first half (symmetrised).
    middle: Box<[f64]>,
    /// The table's largest L1 norm with a margin for rounding: no output exceeds this times the
    /// largest input magnitude of its window.
    bound_gain: f64,
    /// The largest DC gain of a phase (their coefficients' sum, about 1) with the same margin:
    /// an output is `G·c + Σ h·(x − c)` for any `c`, so it is at most this times `|c|` plus
    /// `bound_gain` times the window's largest deviation from `c`.
    dc_gain: f64,
    /// Whether the CPU has 256-bit vectors and fused multiply-add (AVX2, FMA).
    wide: bool,
}

impl FoldedPhases {
    /// Folds `table` (phases `1..factor`, factor 1, 2, 4, 8 or 16, at most [`SCAN_MAX_TAPS`]
    /// even taps). Allocates.
    pub fn new(table: &PolyphaseTable) -> Self {
        let t = table.taps();
        let f = table.factor();
        assert!(t <= SCAN_MAX_TAPS, "at most {SCAN_MAX_TAPS} taps per phase");
        let bound_gain = table.max_l1() * (1.0 + 1e-9);
        let dc_gain = (1..f)
            .map(|p| table.phase(p).iter().sum::<f64>().abs())
            .fold(1.0, f64::max)
            * (1.0 + 1e-9);
        let wide = crate::dsp::simd::avx2_fma();
        if f == 1 {
            return Self {
                half: 0,
                pairs: Box::new([]),
                middle: Box::new([]),
                bound_gain,
                dc_gain,
                wide,
            };
        }
        let half = t / 2;
        let mut pairs = Vec::with_capacity(f.saturating_sub(2) * t);
        for p in 1..f / 2 {
            let c = table.phase(p);
            pairs.extend((0..half).map(|k| c[k] + c[t - 1 - k]));
            pairs.extend((0..half).map(|k| c[k] - c[t - 1 - k]));
        }
        let c = table.phase(f / 2);
        let middle = (0..half).map(|k| 0.5 * (c[k] + c[t - 1 - k])).collect();
        Self {
            half,
            pairs: pairs.into_boxed_slice(),
            middle,
            bound_gain,
            dc_gain,
            wide,
        }
    }

    /// Runs the scan on the portable build even on a CPU with AVX2 and FMA (tests compare the
    /// two builds).
    pub fn set_portable(&mut self, portable: bool) {
        self.wide = !portable && crate::dsp::simd::avx2_fma();
    }

    /// Running maximum of `|x|` over the new samples of `buf` (all but its first `taps − 1`,
    /// at most [`SCAN_MAX_NEW`]) and of every inter-sample value whose window ends at one of
    /// them, starting from `peak`.
    ///
    /// The sample peak of the new samples comes first; then groups of outputs that cannot raise
    /// the peak are skipped: a group's window gives two bounds on its outputs, the largest input
    /// magnitude times the largest L1 norm of a phase (|y| ≤ Σ|c|·max|x|), and the magnitude of
    /// the centre `c` of its range times the largest DC gain plus the L1 norm times the largest
    /// deviation from `c` (tight where a loud signal moves little within the window), each with
    /// margin for rounding. The result is identical to evaluating everything (every value
    /// skipped is at most a value already counted), only faster once a programme's peak has
    /// been seen.
    ///
    /// The AVX2 + FMA build (when the CPU has them) may differ from the portable one in the last
    /// bits (meter readings, not audio); within one build readings never depend on how the
    /// stream was cut into calls.
    pub fn scan(&self, buf: &[f64], peak: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` is only true when the CPU supports AVX2 and FMA
            // (`simd::avx2_fma`).
            return unsafe { scan_avx2(self, buf, peak) };
        }
        scan_body::<false>(self, buf, peak)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_avx2(folded: &FoldedPhases, buf: &[f64], peak: f64) -> f64 {
    scan_body::<true>(folded, buf, peak)
}

/// `a·b + c`, fused (one rounding) on the FMA path, two roundings on the portable one.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Largest of `a` and `b` (`a` when `b` is NaN); a pattern compilers turn into one vector
/// instruction.
#[inline(always)]
fn larger(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Largest magnitude in `x` (0 for an empty slice), in eight independent lanes.
#[inline(always)]
fn abs_max(x: &[f64]) -> f64 {
    let mut m = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            m[j] = larger(m[j], c[j].abs());
        }
    }
    for &v in chunks.remainder() {
        m[0] = larger(m[0], v.abs());
    }
    m.iter().fold(0.0, |a, &b| larger(a, b))
}

/// See [`FoldedPhases::scan`].
#[inline(always)]
fn scan_body<const FMA: bool>(folded: &FoldedPhases, buf: &[f64], peak: f64) -> f64 {
    let t = 2 * folded.half;
    if t == 0 {
        return larger(peak, abs_max(buf));
    }
    let n = buf.len() + 1 - t;
    let mut peak = larger(peak, abs_max(&buf[t - 1..]));
    let mut bound = [0.0f64; GROUPS];
    let blocks = n.div_ceil(GROUP);
    group_bounds(folded, buf, &mut bound[..blocks]);
    for (b, &bound) in bound.iter().enumerate().take(blocks) {
        // (A NaN in the window makes the bound NaN: such a block is evaluated.)
        if !(bound <= peak) {
            let i = b * GROUP;
            let g = (n - i).min(GROUP);
            peak = if g == GROUP {
                outputs_peak::<GROUP, FMA>(folded, &buf[i..i + t - 1 + GROUP], peak)
            } else {
                (0..g).fold(peak, |pk, j| {
                    outputs_peak::<1, FMA>(folded, &buf[i + j..i + j + t], pk)
                })
            };
        }
    }
    peak
}

/// For every block `b` of [`GROUP`] output positions (`bound.len()` of them), a bound on the
/// magnitude of its outputs ([`FoldedPhases::scan`]): from the smallest and the largest input
/// of each group of the buffer, over the groups the block's windows touch.
#[inline(always)]
fn group_bounds(folded: &FoldedPhases, buf: &[f64], bound: &mut [f64]) {
    let t = 2 * folded.half;
    let groups = buf.len().div_ceil(GROUP);
    let (mut glo, mut ghi) = ([0.0f64; GROUPS], [0.0f64; GROUPS]);
    let whole = buf.len() / GROUP;
    for (g, c) in buf.chunks_exact(GROUP).enumerate() {
        let (mut lo, mut hi) = ([0.0f64; 4], [0.0f64; 4]);
        for j in 0..4 {
            lo[j] = smaller(c[j], c[j + 4]);
            hi[j] = larger(c[j], c[j + 4]);
        }
        glo[g] = smaller(smaller(lo[0], lo[1]), smaller(lo[2], lo[3]));
        ghi[g] = larger(larger(hi[0], hi[1]), larger(hi[2], hi[3]));
    }
    if whole < groups {
        let rest = &buf[whole * GROUP..];
        glo[whole] = rest.iter().fold(rest[0], |a, &b| smaller(a, b));
        ghi[whole] = rest.iter().fold(rest[0], |a, &b| larger(a, b));
    }
    // Groups the windows of a block starting at a group boundary touch.
    let span = (t - 1 + GROUP).div_ceil(GROUP);
    let (gain, dc) = (folded.bound_gain, folded.dc_gain);
    for (b, o) in bound.iter_mut().enumerate() {
        let e = (b + span).min(groups);
        let lo = glo[b..e].iter().fold(glo[b], |a, &v| smaller(a, v));
        let hi = ghi[b..e].iter().fold(ghi[b], |a, &v| larger(a, v));
        let c = 0.5 * (lo + hi);
        let deviation = larger(hi - c, c - lo);
        let centred = (dc * c.abs() + gain * deviation) * (1.0 + 1e-9);
        let flat = gain * larger(hi, -lo);
        *o = smaller(flat, centred);
    }
}

/// Smallest of `a` and `b` (`a` when `b` is NaN); one vector instruction, as [`larger`].
#[inline(always)]
fn smaller(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// Inter-sample peak of `G` consecutive output positions (window `buf`, `taps − 1 + G` long),
/// by the folded phases: the sums and differences of each tap pair are formed once and feed
/// every phase, `G` outputs side by side in registers. Every output goes through the same
/// operations in the same order whatever `G` is, so readings do not depend on how the stream
/// was cut into blocks.
#[inline(always)]
fn outputs_peak<const G: usize, const FMA: bool>(
    folded: &FoldedPhases,
    buf: &[f64],
    peak: f64,
) -> f64 {
    match folded.pairs.len() / (2 * folded.half.max(1)) {
        0 => outputs_peak_np::<G, 0, FMA>(folded, buf, peak),
        1 => outputs_peak_np::<G, 1, FMA>(folded, buf, peak),
        3 => outputs_peak_np::<G, 3, FMA>(folded, buf, peak),
        _ => outputs_peak_np::<G, 7, FMA>(folded, buf, peak),
    }
}

/// [`outputs_peak`] for `NP` phase pairs (factor `2·NP + 2`).
#[inline(always)]
fn outputs_peak_np<const G: usize, const NP: usize, const FMA: bool>(
    folded: &FoldedPhases,
    buf: &[f64],
    peak: f64,
) -> f64 {
    let h = folded.half;
    let t = 2 * h;
    let mut mid = [0.0f64; G];
    let mut even = [[0.0f64; G]; NP];
    let mut odd = [[0.0f64; G]; NP];
    for k in 0..h {
        let a: &[f64; G] = buf[k..k + G].try_into().expect("window");
        let b: &[f64; G] = buf[t - 1 - k..t - 1 - k + G].try_into().expect("window");
        let mut s = [0.0f64; G];
        let mut d = [0.0f64; G];
        for j in 0..G {
            s[j] = a[j] + b[j];
            d[j] = a[j] - b[j];
        }
        let c = folded.middle[k];
        for j in 0..G {
            mid[j] = madd::<FMA>(c, s[j], mid[j]);
        }
        for q in 0..NP {
            let e = folded.pairs[2 * q * h + k];
            let o = folded.pairs[(2 * q + 1) * h + k];
            for j in 0..G {
                even[q][j] = madd::<FMA>(e, s[j], even[q][j]);
                odd[q][j] = madd::<FMA>(o, d[j], odd[q][j]);
            }
        }
    }
    let mut m = [0.0f64; G];
    for j in 0..G {
        m[j] = mid[j].abs();
    }
    for q in 0..NP {
        for j in 0..G {
            m[j] = larger(m[j], 0.5 * (even[q][j].abs() + odd[q][j].abs()));
        }
    }
    m.iter().fold(peak, |a, &b| larger(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::oversample::{default_kaiser_beta, PolyphaseInterpolator};

    /// Every output evaluated, none skipped: what [`scan_body`] must equal bit for bit.
    fn everything<const FMA: bool>(folded: &FoldedPhases, buf: &[f64], peak: f64) -> f64 {
        let t = 2 * folded.half;
        let peak = larger(peak, abs_max(&buf[t - 1..]));
        (0..buf.len() + 1 - t).fold(peak, |pk, i| {
            outputs_peak::<1, FMA>(folded, &buf[i..i + t], pk)
        })
    }

    /// Loud signals that move little within a window (where the bound on deviations is at its
    /// tightest), riding on offsets of both signs, and noise: the skipping scan gives exactly
    /// the bits of evaluating everything, from any running peak, in both builds.
    #[test]
    fn skipping_scan_gives_the_bits_of_evaluating_everything() {
        let mut r = 0x2545_f491_4f6c_dd1du64;
        let mut noise = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let n = 20_000;
        let mut x: Vec<f64> = Vec::with_capacity(3 * n);
        for (offset, wiggle) in [(0.8, 1e-4), (0.7, 0.02), (-0.5, 0.2), (0.0, 1.0)] {
            x.extend((0..n).map(|i| {
                let slow = (i as f64 * 0.002).sin();
                offset + 0.25 * slow + wiggle * noise()
            }));
        }
        for factor in [2, 4, 8, 16] {
            let it = PolyphaseInterpolator::new(factor, 32, default_kaiser_beta(32));
            let t = it.taps();
            for portable in [true, false] {
                let mut folded = FoldedPhases::new(it.table());
                folded.set_portable(portable);
                let mut buf = vec![0.0; t - 1 + SCAN_MAX_NEW];
                let (mut skipped, mut evaluated, mut close) = (0, 0, 0);
                for (k, chunk) in x.chunks(SCAN_MAX_NEW - 3 * (factor % 5)).enumerate() {
                    buf[t - 1..t - 1 + chunk.len()].copy_from_slice(chunk);
                    let b = &buf[..t - 1 + chunk.len()];
                    let all = |peak| {
                        if folded.wide {
                            everything::<true>(&folded, b, peak)
                        } else {
                            everything::<false>(&folded, b, peak)
                        }
                    };
                    // Running peaks from nothing to over everything, and a hair under what the
                    // chunk reads (only its loudest block can raise that).
                    let under = all(0.0) * (1.0 - 1e-6);
                    let peak = [0.0, 0.5, 0.8, 0.9, 0.95, 1.0, 2.0, under][k % 8];
                    if k % 8 == 7 && under > abs_max(&b[t - 1..]) {
                        close += 1;
                    }
                    let got = folded.scan(b, peak);
                    let want = all(peak);
                    assert_eq!(got.to_bits(), want.to_bits(), "{factor}x chunk {k}");
                    let mut bound = [0.0; GROUPS];
                    let blocks = (b.len() + 1 - t).div_ceil(GROUP);
                    group_bounds(&folded, b, &mut bound[..blocks]);
                    for &v in &bound[..blocks] {
                        if v <= peak.max(abs_max(&b[t - 1..])) {
                            skipped += 1;
                        } else {
                            evaluated += 1;
                        }
                    }
                    buf.copy_within(chunk.len()..chunk.len() + t - 1, 0);
                }
                // Both kinds of block occur, and chunks whose reading is an inter-sample value.
                assert!(skipped > 100 && evaluated > 100, "{skipped} / {evaluated}");
                assert!(close > 5, "{factor}x: {close} chunks read between samples");
            }
        }
    }
}
