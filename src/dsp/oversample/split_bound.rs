//! The threshold-aware detector's tightest screen ([`SplitBound`]): a reading bounded through
//! the signal's split into its samples, linearly interpolated, and its second differences.
//!
//! Every value a reading looks at is `v = Σ_i k[i]·x[t − i]` for a kernel `k` (a phase of the
//! accurate interpolator or of the meter interpolator, or the difference of two neighbouring
//! phases, for the parabolic refinement). Any such kernel splits exactly as
//!
//! `k = c0·δ_m + c1·(δ_m − δ_{m+1}) + r ∗ Δ²`,  `Δ² = δ_0 − 2·δ_1 + δ_2`,
//!
//! with `c0 = Σ k` and `c1` matching its first moment (the rest has no zeroth and first moment,
//! so it is a second difference of the double running sum `r` of itself, of finite support). So
//! `v = c0·x[t − m] + c1·Δx[t − m] + Σ_i r[i]·Δ²x[t − i]`. For a phase, `m` is the whole part of
//! its centroid: `c0·x[t − m] + c1·Δx[t − m]` is then the linear interpolation
//! `w0·x[t − m] + w1·x[t − m − 1]` with `w0, w1 ≥ 0` and `w0 + w1` its DC gain (about 1), at
//! most that times the larger magnitude of the two samples. Music sits mostly in the low band,
//! where the second difference is small (its gain is `4·sin²(πf/fs)`: −24 dB at fs/20), so
//! the bound is the samples' own magnitude plus a small share of the content up high — where
//! the bound on the inputs' magnitudes through the accurate interpolator's L1 norm (its sharp
//! first stage makes that about 3) is some 8 dB over the readings.
//!
//! Per group of [`super::detector`] steps the bound is `gain·X + slope·X1 + Σ_k rough[k]·X2[g − k]`
//! with `X` the largest input magnitude near the groups' centroids, `X1` the largest `|Δx|` there
//! and `X2` the group maxima of `|Δ²x|`: see [`SplitBound::weights`] for how a reading (the
//! larger of the two interpolators', the accurate one refined) is bounded by the phases' terms.
//! The split's own rounding (the running sums in f64) is checked when it is made: its residual
//! (the kernel less what the split rebuilds) has an L1 norm under 1e-10, so it moves a value by
//! less than 1e-10 of the window's largest input, inside the detector's margin of 1e-9 of it.

/// The split bound's weights for one detector (module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct SplitBound {
    /// Group offsets `lo..=hi` (back from a group of steps) holding every sample a smooth part
    /// reads, and the weight of their largest magnitude.
    pub near: (usize, usize),
    pub gain: f64,
    /// Group offsets holding every `Δx` the refinement's smooth part reads, and its weight.
    pub slope_near: (usize, usize),
    pub slope: f64,
    /// Per group offset `k`: the weight of the largest `|Δ²x|` of the group `k` back.
    pub rough: Vec<f64>,
    /// The sum of `rough`: the weight of the window's largest `|Δ²x|` in the bound of a chunk.
    pub rough_sum: f64,
}

/// A kernel's split `c0·δ_m + c1·(δ_m − δ_{m+1}) + r ∗ Δ²` (module docs).
#[derive(Debug, Clone)]
struct Split {
    m: usize,
    c0: f64,
    c1: f64,
    r: Vec<f64>,
}

impl Split {
    /// The split of `k` about `m` (at most `k.len() − 2`). Checks the residual.
    fn about(k: &[f64], m: usize) -> Self {
        let n = k.len();
        assert!(n >= 2 && m + 2 <= n, "a kernel of two taps at least");
        let c0: f64 = k.iter().sum();
        let m1: f64 = k.iter().enumerate().map(|(i, v)| i as f64 * v).sum();
        let c1 = c0 * m as f64 - m1;
        let mut b = k.to_vec();
        b[m] -= c0 + c1;
        b[m + 1] += c1;
        let mut s1 = 0.0;
        let mut s2 = 0.0;
        let mut r = Vec::with_capacity(n - 2);
        for &v in &b[..n - 2] {
            s1 += v;
            s2 += s1;
            r.push(s2);
        }
        let split = Self { m, c0, c1, r };
        let residual: f64 = (0..n).map(|i| (k[i] - split.at(i)).abs()).sum();
        assert!(residual < 1e-10, "split residual {residual}");
        split
    }

    /// The split of a phase about the whole part of its centroid (its linear interpolation).
    fn phase(k: &[f64]) -> Self {
        let c0: f64 = k.iter().sum();
        let m1: f64 = k.iter().enumerate().map(|(i, v)| i as f64 * v).sum();
        let centroid = m1 / c0;
        let m = if centroid.is_finite() {
            (centroid.floor().max(0.0) as usize).min(k.len() - 2)
        } else {
            0
        };
        Self::about(k, m)
    }

    /// Tap `i` of the kernel the split rebuilds.
    fn at(&self, i: usize) -> f64 {
        let r = |j: isize| {
            if j < 0 {
                0.0
            } else {
                self.r.get(j as usize).copied().unwrap_or(0.0)
            }
        };
        let j = i as isize;
        let smooth = if i == self.m {
            self.c0 + self.c1
        } else if i == self.m + 1 {
            -self.c1
        } else {
            0.0
        };
        smooth + r(j) - 2.0 * r(j - 1) + r(j - 2)
    }

    /// The weight of the larger magnitude of `x[t − m]`, `x[t − m − 1]` in the smooth part.
    fn smooth_gain(&self) -> f64 {
        (self.c0 + self.c1).abs() + self.c1.abs()
    }
}

/// Relative margin of the weights for the rounding of the bound's own sums.
const MARGIN: f64 = 1.0 + 1e-6;

impl SplitBound {
    /// The weights for a detector whose accurate values of a step are the kernels `fine` (the
    /// step's values and the previous step's last two, in order, over input offsets back from
    /// the reading's step) and whose meter values are the kernels `meter`, for groups of
    /// `group` steps and `groups` group offsets.
    ///
    /// A reading is at most `max(V + D/8, M)` with `V` the largest fine value's magnitude, `D`
    /// the largest difference of neighbouring fine values (the refinement's reach) and `M` the
    /// largest meter value's magnitude. Each value splits (module docs) into a smooth part
    /// bounded by `gain`-weighted magnitudes near the centroid (`Δx` for `D`'s) and a rough
    /// part, `Σ_i |r[i]|·|Δ²x[t − i]|`; the largest of each over the phases bounds the maximum,
    /// and `max(a + b, c + d) ≤ max(a, c) + max(b, d)` the larger of the two interpolators.
    pub fn weights(fine: &[Vec<f64>], meter: &[Vec<f64>], group: usize, groups: usize) -> Self {
        let span = fine.iter().chain(meter).map(Vec::len).max().unwrap_or(0);
        let values: Vec<Split> = fine.iter().map(|k| Split::phase(k)).collect();
        let steps: Vec<Split> = fine
            .windows(2)
            .zip(&values[1..])
            .map(|(w, v)| {
                let n = w[0].len().max(w[1].len());
                let d: Vec<f64> = (0..n)
                    .map(|i| w[1].get(i).unwrap_or(&0.0) - w[0].get(i).unwrap_or(&0.0))
                    .collect();
                Split::about(&d, v.m)
            })
            .collect();
        // (A meter phase that is all zeros — the unused lanes from 96 kHz — reads nothing.)
        let meters: Vec<Split> = meter
            .iter()
            .filter(|k| k.iter().any(|&v| v != 0.0))
            .map(|k| Split::phase(k))
            .collect();
        let largest = |s: &[Split], f: &dyn Fn(&Split) -> f64| s.iter().map(f).fold(0.0, f64::max);
        let gain = (largest(&values, &|s| s.smooth_gain())
            + largest(&steps, &|s| s.c0.abs()) / 8.0)
            .max(largest(&meters, &|s| s.smooth_gain()));
        let slope = largest(&steps, &|s| s.c1.abs()) / 8.0;
        let rough_at = |s: &[Split], i: usize| {
            s.iter()
                .map(|s| s.r.get(i).map_or(0.0, |v| v.abs()))
                .fold(0.0, f64::max)
        };
        let per_input: Vec<f64> = (0..span)
            .map(|i| {
                let fine = rough_at(&values, i) + rough_at(&steps, i) / 8.0;
                fine.max(rough_at(&meters, i)) * MARGIN
            })
            .collect();
        // Input offsets the smooth parts read: m and m + 1 of every phase (m of a step's Δx).
        let offsets = values.iter().chain(&meters).flat_map(|s| [s.m, s.m + 1]);
        let near = group_offsets(offsets, group);
        let slope_near = group_offsets(steps.iter().map(|s| s.m), group);
        // A group of steps reading input offset i: its steps u = 0..group read inputs u − i
        // from the group's start, i.e. group offset k with u − i in [−k·group, −k·group + group).
        let wi = |j: isize| {
            if j < 0 {
                0.0
            } else {
                per_input.get(j as usize).copied().unwrap_or(0.0)
            }
        };
        let g = group as isize;
        let rough: Vec<f64> = (0..groups as isize)
            .map(|k| {
                (0..g)
                    .map(|u| (0..g).map(|v| wi(g * k + u - v)).sum::<f64>())
                    .fold(0.0, f64::max)
            })
            .collect();
        assert!(
            (span + 2 * group).div_ceil(group) <= groups && near.1 < groups,
            "the split bound reaches past the detector's window"
        );
        Self {
            near,
            gain: gain * MARGIN,
            slope_near,
            slope: slope * MARGIN,
            rough_sum: rough.iter().sum::<f64>() * MARGIN,
            rough,
        }
    }

    /// A bound on every reading of a chunk whose window (the chunk and its history) has the
    /// largest `|x|`, `|Δx|` and `|Δ²x|` of `m`: each group's bound takes its three maxima
    /// over parts of that window, and its rounding margin (1e-9 of the window's largest input)
    /// is added here too. Infinite where an input is.
    #[inline(always)]
    pub fn chunk_bound(&self, m: [f64; 3]) -> f64 {
        if !(m[0] < f64::INFINITY) {
            return f64::INFINITY;
        }
        self.total(m[0], m[1], self.rough_sum * m[2]) + 1e-9 * m[0]
    }

    /// The bound for a group of steps from the largest magnitude near it (`x`), the largest
    /// `|Δx|` near it (`x1`) and the sum of the rough part (`rough`): the order every build
    /// computes it in.
    #[inline(always)]
    pub fn total(&self, x: f64, x1: f64, rough: f64) -> f64 {
        (self.gain * x + self.slope * x1) + rough
    }
}

/// The weights of the split bound of any one value `v = Σ_i k[i]·x[t − i]` through a kernel `k`
/// of `kernels` (module docs): `|v| ≤ gain·X + rough·X2` with `X` the largest `|x|` and `X2` the
/// largest `|Δ²x|` of the values' window, `gain` the largest smooth gain and `rough` the largest
/// `Σ|r|`, each with a margin for the rounding of the bound's own sums. A true-peak meter's
/// screen of a whole chunk ([`super::kernels::FoldedPhases`]): add 1e-9·X for the rounding of
/// the readings and of the split itself. Kernels of all zeros read nothing and are passed over.
pub(super) fn value_weights<'a>(kernels: impl Iterator<Item = &'a [f64]>) -> (f64, f64) {
    let (mut gain, mut rough) = (0.0f64, 0.0f64);
    for k in kernels.filter(|k| k.len() >= 2 && k.iter().any(|&v| v != 0.0)) {
        let split = Split::phase(k);
        gain = gain.max(split.smooth_gain());
        rough = rough.max(split.r.iter().map(|v| v.abs()).sum::<f64>());
    }
    (gain * MARGIN, rough * MARGIN)
}

/// The group offsets `lo..=hi` (back from a group of steps) that hold input offset `i` for some
/// step of the group, over all `offsets`.
fn group_offsets(offsets: impl Iterator<Item = usize>, group: usize) -> (usize, usize) {
    let g = group as isize;
    let (mut lo, mut hi) = (isize::MAX, isize::MIN);
    for i in offsets {
        for u in 0..g {
            // Step u of the group reads the input u − i from the group's start.
            let k = -(u - i as isize).div_euclid(g);
            lo = lo.min(k);
            hi = hi.max(k);
        }
    }
    assert!(lo >= 0, "a smooth part reads ahead of its step");
    (lo as usize, hi as usize)
}

/// The largest `|x|`, `|Δx|` and `|Δ²x|` of all of `raw` (preceded by the two samples `prev`).
/// NaN values are passed over (as `f64::max` does); the AVX2 build takes four at a time from
/// the third sample on, the same maxima (exact whatever the order).
#[inline(always)]
pub(super) fn window_maxima(raw: &[f64], prev: [f64; 2]) -> [f64; 3] {
    let len = raw.len();
    let at = |i: isize| {
        if i >= 0 {
            raw[i as usize]
        } else {
            prev[(i + 2) as usize]
        }
    };
    let scalar = |m: &mut [f64; 3], i: usize| {
        let i = i as isize;
        let (a, b, c) = (at(i), at(i - 1), at(i - 2));
        m[0] = m[0].max(a.abs());
        m[1] = m[1].max((a - b).abs());
        m[2] = m[2].max(((a - 2.0 * b) + c).abs());
    };
    let mut m = [0.0f64; 3];
    let head = len.min(2);
    for i in 0..head {
        scalar(&mut m, i);
    }
    let mut i = head;
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() && len >= 6 {
        // SAFETY: the CPU has AVX2 (checked at run time).
        let (v, done) = unsafe { window_maxima_avx2(raw) };
        for k in 0..3 {
            m[k] = m[k].max(v[k]);
        }
        i = done;
    }
    for i in i..len {
        scalar(&mut m, i);
    }
    m
}

/// [`window_maxima`] of `raw[2 .. 2 + 4·((len − 2)/4)]`; returns the maxima and where it stopped.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn window_maxima_avx2(raw: &[f64]) -> ([f64; 3], usize) {
    use std::arch::x86_64::*;
    let len = raw.len();
    assert!(len >= 6);
    let p = raw.as_ptr();
    let sign = _mm256_set1_pd(-0.0);
    let two = _mm256_set1_pd(2.0);
    let (mut m0, mut m1, mut m2) = (
        _mm256_setzero_pd(),
        _mm256_setzero_pd(),
        _mm256_setzero_pd(),
    );
    let mut i = 2;
    // SAFETY: every load reads raw[i − 2 .. i + 4] with i + 4 ≤ len.
    unsafe {
        while i + 4 <= len {
            let a = _mm256_loadu_pd(p.add(i));
            let b = _mm256_loadu_pd(p.add(i - 1));
            let c = _mm256_loadu_pd(p.add(i - 2));
            m0 = _mm256_max_pd(_mm256_andnot_pd(sign, a), m0);
            m1 = _mm256_max_pd(_mm256_andnot_pd(sign, _mm256_sub_pd(a, b)), m1);
            let d2 = _mm256_add_pd(_mm256_sub_pd(a, _mm256_mul_pd(two, b)), c);
            m2 = _mm256_max_pd(_mm256_andnot_pd(sign, d2), m2);
            i += 4;
        }
        ([hmax(m0), hmax(m1), hmax(m2)], i)
    }
}

/// The largest `|Δx|` and `|Δ²x|` of every group of `group` samples of `raw` (preceded by the
/// two samples `prev`), into `d1` and `d2`; the last group may be partial. NaN differences are
/// passed over (as `f64::max` does); the AVX2 build takes whole groups from the second on.
#[inline(always)]
pub(super) fn difference_maxima(
    raw: &[f64],
    prev: [f64; 2],
    group: usize,
    d1: &mut [f64],
    d2: &mut [f64],
) {
    let len = raw.len();
    let groups = len.div_ceil(group);
    let at = |i: isize| {
        if i >= 0 {
            raw[i as usize]
        } else {
            prev[(i + 2) as usize]
        }
    };
    let scalar = |g: usize, d1: &mut [f64], d2: &mut [f64]| {
        let (mut m1, mut m2) = (0.0f64, 0.0f64);
        for i in g * group..((g + 1) * group).min(len) {
            let i = i as isize;
            let (a, b, c) = (at(i), at(i - 1), at(i - 2));
            m1 = m1.max((a - b).abs());
            m2 = m2.max(((a - 2.0 * b) + c).abs());
        }
        d1[g] = m1;
        d2[g] = m2;
    };
    scalar(0, d1, d2);
    let mut g = 1;
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() && group == 8 {
        // SAFETY: the CPU has AVX2 (checked at run time).
        g = unsafe { difference_maxima_avx2(raw, len / group, d1, d2) };
    }
    for g in g..groups {
        scalar(g, d1, d2);
    }
}

/// [`difference_maxima`] of the whole groups `1..whole` of eight; returns `whole.max(1)`. The
/// same values: the differences through the same operations, their magnitudes' maxima exact
/// whatever the order, and a NaN lane gives way to the other operand as in `f64::max`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn difference_maxima_avx2(raw: &[f64], whole: usize, d1: &mut [f64], d2: &mut [f64]) -> usize {
    use std::arch::x86_64::*;
    assert!(whole * 8 <= raw.len() && whole <= d1.len().min(d2.len()));
    let p = raw.as_ptr();
    let sign = _mm256_set1_pd(-0.0);
    let two = _mm256_set1_pd(2.0);
    // SAFETY: group g ≥ 1 reads raw[8g − 2 .. 8g + 8] with g < whole (assertion).
    unsafe {
        for g in 1..whole {
            let mut m1 = _mm256_setzero_pd();
            let mut m2 = _mm256_setzero_pd();
            for h in [0, 4] {
                let a = _mm256_loadu_pd(p.add(8 * g + h));
                let b = _mm256_loadu_pd(p.add(8 * g + h - 1));
                let c = _mm256_loadu_pd(p.add(8 * g + h - 2));
                let e1 = _mm256_andnot_pd(sign, _mm256_sub_pd(a, b));
                let e2 = _mm256_andnot_pd(
                    sign,
                    _mm256_add_pd(_mm256_sub_pd(a, _mm256_mul_pd(two, b)), c),
                );
                m1 = _mm256_max_pd(e1, m1);
                m2 = _mm256_max_pd(e2, m2);
            }
            *d1.get_unchecked_mut(g) = hmax(m1);
            *d2.get_unchecked_mut(g) = hmax(m2);
        }
    }
    whole.max(1)
}

// Hot reload: fixed by the design (handed over as the rest of the detector).
crate::signal_state!(SplitBound {
    copy: near, gain, slope_near, slope, rough_sum;
    state: rough;
});

/// The largest of four lanes (none NaN).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn hmax(v: std::arch::x86_64::__m256d) -> f64 {
    use std::arch::x86_64::*;
    let m2 = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    _mm_cvtsd_f64(_mm_max_sd(m2, _mm_unpackhi_pd(m2, m2)))
}
