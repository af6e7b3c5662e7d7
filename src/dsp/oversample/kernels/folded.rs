//! The peak scan of a direct polyphase interpolator folded by its time symmetry (the true-peak
//! meter's kernel), with bounds that skip outputs which cannot raise the running peak, and the
//! reading of a nested factor (a divisor of the table's, whose phases are some of its own) from
//! the same outputs.

use super::super::design::PolyphaseTable;
use super::super::split_bound::{value_weights, window_maxima};

/// Output positions computed per register block (amortizes loads, hides add latency).
const GROUP: usize = 8;
/// Most new samples one [`scan`] call may take.
pub const SCAN_MAX_NEW: usize = 512;
/// Most taps per phase.
pub const SCAN_MAX_TAPS: usize = 64;
/// Groups of the staged buffer: its length in `GROUP`-sample groups.
const GROUPS: usize = (SCAN_MAX_NEW + SCAN_MAX_TAPS).div_ceil(GROUP) + 1;
/// Room past the buffer's groups for the last blocks' spans.
const SPAN_PAD: usize = SCAN_MAX_TAPS.div_ceil(GROUP) + 2;
/// Tap pairs nearest the centre that the second bound evaluates, in two steps (the rest are
/// bounded by their L1 norm): 4 of 16 first, for a quarter of the work of evaluating a block,
/// then 8 for the blocks 4 could not skip. On the loud master (L's 24-bit deliverable, by the
/// final peak) of the blocks the first bound cannot skip, 4 pairs skip 72 %, 8 then 80 % of the
/// rest, for about 10 % less work than one step of 6 pairs (which skips 88 %).
const INNER: [usize; 2] = [4, 8];

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
    /// For each step of the second bound (0: none, the taps are too few): how much the taps
    /// outside its [`INNER`] pairs nearest the centre add to any reading at most, per unit of
    /// the window's largest magnitude, with margin for the rounding of the readings and of the
    /// bound.
    outer_gain: [f64; 2],
    /// The split bound's weights over every phase but the zeroth (the samples themselves):
    /// any output is at most `split.0·X + split.1·X2` (`X`, `X2`: the largest `|x|` and
    /// `|Δ²x|` of its window; [`super::super::split_bound::value_weights`]). A chunk whose
    /// window bounds every output under the running peak is passed over in one vertical pass.
    /// Zero for a factor of 1.
    split: (f64, f64),
    /// The phases read as the nested factor ([`Self::nest`]): bit `q` for pair `q`.
    nested_pairs: u32,
    /// Whether the middle phase is one of them.
    nested_middle: bool,
    /// Which build scans.
    build: Build,
}

/// The builds of the scan, by what the CPU has (the same readings from the two vector ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Build {
    /// Baseline SSE2, separate multiplies and adds.
    Portable,
    /// AVX2 and fused multiply-add: a [`GROUP`] of outputs in two 256-bit vectors.
    Fma,
    /// [`Build::Fma`] in AVX-512 registers: a group of outputs in one, the screen's maxima
    /// sixteen samples at a time; the same operations lane by lane, so the same bits.
    Avx512,
}

impl Build {
    /// The widest build the CPU runs ([`crate::dsp::simd`]).
    fn detect() -> Build {
        if !crate::dsp::simd::avx2_fma() {
            Build::Portable
        } else if crate::dsp::simd::avx512() {
            Build::Avx512
        } else {
            Build::Fma
        }
    }
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
        let build = Build::detect();
        if f == 1 {
            return Self {
                half: 0,
                pairs: Box::new([]),
                middle: Box::new([]),
                bound_gain,
                dc_gain,
                outer_gain: [0.0; 2],
                split: (0.0, 0.0),
                nested_pairs: 0,
                nested_middle: false,
                build,
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
        let middle: Box<[f64]> = (0..half).map(|k| 0.5 * (c[k] + c[t - 1 - k])).collect();
        // |Σ_outer m_k·s_k| ≤ 2·max|x|·Σ_outer |m_k|; for a pair, (|Σ e·s| + |Σ o·d|) / 2 over
        // the outer taps is at most max|x|·Σ_outer max(|e_k|, |o_k|), as |s| + |d| = 2·max(|a|, |b|).
        let outer_gain = INNER.map(|inner| {
            let outer = half.saturating_sub(inner);
            let outer_middle = 2.0 * middle[..outer].iter().map(|m| m.abs()).sum::<f64>();
            let outer_pairs = pairs
                .chunks_exact(2 * half)
                .map(|eo| {
                    (0..outer)
                        .map(|k| eo[k].abs().max(eo[half + k].abs()))
                        .sum::<f64>()
                })
                .fold(outer_middle, f64::max);
            if half >= INNER[1] + 4 {
                outer_pairs * (1.0 + 1e-9) + 1e-9 * bound_gain
            } else {
                0.0
            }
        });
        let split = value_weights((1..f).map(|p| table.phase(p)));
        Self {
            half,
            pairs: pairs.into_boxed_slice(),
            middle,
            bound_gain,
            dc_gain,
            outer_gain,
            split,
            nested_pairs: 0,
            nested_middle: false,
            build,
        }
    }

    /// Also reads the oversampling `nested` ([`Self::scan_nested`]), a divisor of the table's
    /// factor: its phases are the table's phases `k·factor/nested`, computed as the table's (a
    /// Kaiser-windowed sinc of the same taps and window gives the same coefficients for the same
    /// fraction of a sample, and the fractions `k/nested` are exact in binary). So the nested
    /// reading is, bit for bit, that of a table by `nested` of the same taps and window (by 1:
    /// the sample peak).
    pub fn nest(&mut self, factor: usize, nested: usize) {
        assert!(
            nested >= 1 && factor % nested == 0,
            "the nested oversampling must divide the factor"
        );
        let step = factor / nested;
        self.nested_middle = nested >= 2 && factor >= 2;
        self.nested_pairs = (1..factor / 2)
            .filter(|p| p % step == 0)
            .fold(0, |m, p| m | 1 << (p - 1));
    }

    /// Runs the scan on the portable build even on a CPU with AVX2 and FMA (tests compare the
    /// builds; `false`: the widest the CPU runs).
    pub fn set_portable(&mut self, portable: bool) {
        self.build = if portable {
            Build::Portable
        } else {
            Build::detect()
        };
    }

    /// Running maximum of `|x|` over the new samples of `buf` (all but its first `taps − 1`,
    /// at most [`SCAN_MAX_NEW`]) and of every inter-sample value whose window ends at one of
    /// them, starting from `peak`.
    ///
    /// The sample peak of the new samples comes first; then the whole chunk is passed over when
    /// the split bound of its window (its largest magnitude and second difference,
    /// [`FoldedPhases::split`]) is under the peak; else groups of outputs that cannot raise
    /// the peak are skipped: a group's window gives two bounds on its outputs, the largest input
    /// magnitude times the largest L1 norm of a phase (|y| ≤ Σ|c|·max|x|), and the magnitude of
    /// the centre `c` of its range times the largest DC gain plus the L1 norm times the largest
    /// deviation from `c` (tight where a loud signal moves little within the window), each with
    /// margin for rounding. The result is identical to evaluating everything (every value
    /// skipped is at most a value already counted), only faster once a programme's peak has
    /// been seen.
    ///
    /// The AVX2 + FMA build (when the CPU has them) may differ from the portable one in the last
    /// bits (meter readings, not audio); its AVX-512 build reads the same bits as it. Within one
    /// build readings never depend on how the stream was cut into calls.
    pub fn scan(&self, buf: &[f64], peak: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        match self.build {
            // SAFETY: `build` is only `Avx512` when the CPU has AVX-512F and VL, AVX2 and FMA,
            // and `Fma` when it has AVX2 and FMA (`Build::detect`).
            Build::Avx512 => return unsafe { scan_avx512(self, buf, peak, 0.0) }.0,
            Build::Fma => return unsafe { scan_avx2(self, buf, peak, 0.0) }.0,
            Build::Portable => {}
        }
        scan_body::<false, false, false>(self, buf, peak, 0.0).0
    }

    /// [`Self::scan`], and the same running maximum for the nested factor ([`Self::nest`]; the
    /// sample peak when none was set) from `nested`: both readings from one evaluation of the
    /// outputs. A block is skipped when it cannot raise the smaller of the two.
    pub fn scan_nested(&self, buf: &[f64], peak: f64, nested: f64) -> (f64, f64) {
        #[cfg(target_arch = "x86_64")]
        match self.build {
            // SAFETY: as in `scan`.
            Build::Avx512 => return unsafe { scan_nested_avx512(self, buf, peak, nested) },
            Build::Fma => return unsafe { scan_nested_avx2(self, buf, peak, nested) },
            Build::Portable => {}
        }
        scan_body::<false, true, false>(self, buf, peak, nested)
    }
}

/// Defines `$name`, [`scan_body`] built with `$features` (`$avx512`: the screen's maxima in
/// AVX-512 registers), the nested reading too when `$nest`.
#[cfg(target_arch = "x86_64")]
macro_rules! scan_build {
    ($name:ident, $features:literal, $nest:literal, $avx512:literal) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(folded: &FoldedPhases, buf: &[f64], peak: f64, nested: f64) -> (f64, f64) {
            scan_body::<true, $nest, $avx512>(folded, buf, peak, nested)
        }
    };
}

#[cfg(target_arch = "x86_64")]
scan_build!(scan_avx2, "avx2,fma", false, false);
#[cfg(target_arch = "x86_64")]
scan_build!(scan_nested_avx2, "avx2,fma", true, false);
#[cfg(target_arch = "x86_64")]
scan_build!(scan_avx512, "avx2,fma,avx512f,avx512vl", false, true);
#[cfg(target_arch = "x86_64")]
scan_build!(scan_nested_avx512, "avx2,fma,avx512f,avx512vl", true, true);

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

/// See [`FoldedPhases::scan`] and [`FoldedPhases::scan_nested`] (`NEST`: the nested reading
/// too; otherwise `nested` is passed through; `AVX512`: the AVX-512 build of the FMA one).
#[inline(always)]
fn scan_body<const FMA: bool, const NEST: bool, const AVX512: bool>(
    folded: &FoldedPhases,
    buf: &[f64],
    peak: f64,
    nested: f64,
) -> (f64, f64) {
    let t = 2 * folded.half;
    if t == 0 {
        let s = abs_max(buf);
        return (
            larger(peak, s),
            if NEST { larger(nested, s) } else { nested },
        );
    }
    let n = buf.len() + 1 - t;
    let (s, screen) = screen::<FMA, AVX512>(folded, buf, t);
    let mut peak = larger(peak, s);
    let mut nested = if NEST { larger(nested, s) } else { nested };
    if screen <= (if NEST { smaller(peak, nested) } else { peak }) {
        return (peak, nested);
    }
    let (mut bound, mut reach) = ([0.0f64; GROUPS], [0.0f64; GROUPS]);
    let blocks = n.div_ceil(GROUP);
    group_bounds(folded, buf, &mut bound[..blocks], &mut reach[..blocks]);
    for b in 0..blocks {
        let low = if NEST { smaller(peak, nested) } else { peak };
        // (A NaN in the window makes the bound NaN, and the block evaluated, or is left out of
        // it: the outputs whose windows hold it read NaN, which never raises a peak.)
        if bound[b] <= low {
            continue;
        }
        let i = b * GROUP;
        let g = (n - i).min(GROUP);
        if g == GROUP {
            let window = &buf[i..i + t - 1 + GROUP];
            if folded.outer_gain[0] > 0.0
                && (inner_bound::<FMA>(folded, window, reach[b], 0) <= low
                    || inner_bound::<FMA>(folded, window, reach[b], 1) <= low)
            {
                continue;
            }
            (peak, nested) = outputs_peak::<GROUP, FMA, NEST>(folded, window, peak, nested);
        } else {
            for j in 0..g {
                let window = &buf[i + j..i + j + t];
                (peak, nested) = outputs_peak::<1, FMA, NEST>(folded, window, peak, nested);
            }
        }
    }
    (peak, nested)
}

/// The sample peak of the new samples of the staged `buf` ([`abs_max`] of all but its first
/// `t − 1`) and [`chunk_bound`] (NaN, never under a peak, where there is no split bound or
/// `buf` is shorter than 3), the same values from one pass over the window: the magnitudes of
/// the history and of the new samples feed separate maxima, their second differences one
/// ([`maxima`]). Maxima are exact whatever the order, so this is [`abs_max`] and
/// [`chunk_bound`] bit for bit; `AVX2`: the CPU has AVX2 (the FMA build), `AVX512`: AVX-512F
/// and VL too (its AVX-512 build).
#[inline(always)]
fn screen<const AVX2: bool, const AVX512: bool>(
    folded: &FoldedPhases,
    buf: &[f64],
    t: usize,
) -> (f64, f64) {
    let new = t - 1;
    if !(folded.split.0 > 0.0 && buf.len() >= 3 && new >= 2) {
        let s = abs_max(&buf[new..]);
        let bound = if folded.split.0 > 0.0 && buf.len() >= 3 {
            chunk_bound(folded, buf)
        } else {
            f64::NAN
        };
        return (s, bound);
    }
    let (h, history_m2) = maxima::<AVX2, AVX512>(buf, 2, new);
    let h = h.max(buf[0].abs()).max(buf[1].abs());
    let (s, new_m2) = maxima::<AVX2, AVX512>(buf, new, buf.len());
    let m2 = history_m2.max(new_m2);
    let x = larger(h, s);
    if !(x < f64::INFINITY) {
        return (s, f64::INFINITY);
    }
    let (gain, rough) = folded.split;
    (s, (gain * x + rough * m2) + 1e-9 * x)
}

/// The largest `|x|` and `|Δ²x|` (as `window_maxima` forms it) over `buf[from..to]`
/// (`from` ≥ 2; 0 for an empty range, NaNs passed over), by [`maxima_avx2`] or
/// [`maxima_avx512`] in the builds that have them, the rest one sample at a time.
#[inline(always)]
fn maxima<const AVX2: bool, const AVX512: bool>(buf: &[f64], from: usize, to: usize) -> (f64, f64) {
    let d2 = |j: usize| ((buf[j] - 2.0 * buf[j - 1]) + buf[j - 2]).abs();
    let (mut m, mut m2, mut j) = (0.0f64, 0.0f64, from);
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2` is only set in the AVX2 and FMA builds of the scan and `AVX512` in
        // their AVX-512 builds, which run only where the CPU has them (`FoldedPhases::build`).
        (m, m2, j) = unsafe {
            if AVX512 {
                maxima_avx512(&buf[..to], from)
            } else {
                maxima_avx2(&buf[..to], from)
            }
        };
    }
    for j in j..to {
        m = larger(m, buf[j].abs());
        m2 = m2.max(d2(j));
    }
    (m, m2)
}

/// Defines `$name`: the largest `|x|` and `|Δ²x|` of `buf[from..]` (`from` ≥ 2) in vectors of
/// `$lanes` (`$v`), two vectors at a time in two sets of registers (a maximum's latency would
/// bound one), then one; and where it stopped (the rest is the caller's). Built with
/// `$features`; `$abs` the magnitudes of a vector.
#[cfg(target_arch = "x86_64")]
macro_rules! maxima_kernel {
    ($name:ident, $features:literal, $lanes:literal, $v:ty, $abs:expr, $zero:ident,
     $set1:ident, $loadu:ident, $storeu:ident, $max:ident, $mul:ident, $sub:ident,
     $add:ident) => {
        #[target_feature(enable = $features)]
        fn $name(buf: &[f64], from: usize) -> (f64, f64, usize) {
            use std::arch::x86_64::*;
            assert!(from >= 2);
            let (len, p) = (buf.len(), buf.as_ptr());
            let abs = $abs;
            let two = $set1(2.0);
            let mut m: [$v; 4] = [$zero(); 4];
            let mut i = from;
            // The maxima of the vector at `i`, into set `k`. SAFETY (of each call): it reads
            // buf[i − 2 .. i + $lanes] with i + $lanes ≤ len.
            let step = |m: &mut [$v; 4], i: usize, k: usize| unsafe {
                let a = $loadu(p.add(i));
                let b = $loadu(p.add(i - 1));
                let c = $loadu(p.add(i - 2));
                // `max(new, old)`: a NaN is passed over, as by `larger` and `f64::max`.
                m[k] = $max(abs(a), m[k]);
                let d2 = $add($sub(a, $mul(two, b)), c);
                m[2 + k] = $max(abs(d2), m[2 + k]);
            };
            while i + 2 * $lanes <= len {
                step(&mut m, i, 0);
                step(&mut m, i + $lanes, 1);
                i += 2 * $lanes;
            }
            if i + $lanes <= len {
                step(&mut m, i, 0);
                i += $lanes;
            }
            let lanes = |v: $v| {
                let mut o = [0.0f64; $lanes];
                // SAFETY: `o` holds a vector's values.
                unsafe { $storeu(o.as_mut_ptr(), v) };
                o
            };
            let fold = |a: $v, b: $v| {
                lanes(a)
                    .into_iter()
                    .chain(lanes(b))
                    .fold(0.0f64, |m, v| larger(m, v))
            };
            (fold(m[0], m[1]), fold(m[2], m[3]), i)
        }
    };
}

#[cfg(target_arch = "x86_64")]
maxima_kernel!(
    maxima_avx2,
    "avx2",
    4,
    __m256d,
    |v: __m256d| _mm256_andnot_pd(_mm256_set1_pd(-0.0), v),
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_max_pd,
    _mm256_mul_pd,
    _mm256_sub_pd,
    _mm256_add_pd
);
#[cfg(target_arch = "x86_64")]
maxima_kernel!(
    maxima_avx512,
    "avx2,avx512f",
    8,
    __m512d,
    |v: __m512d| _mm512_abs_pd(v),
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_max_pd,
    _mm512_mul_pd,
    _mm512_sub_pd,
    _mm512_add_pd
);

/// A bound on every output of the staged `buf` (at least `taps` long, at least 3): the split
/// bound over the whole window ([`FoldedPhases::split`]) plus 1e-9 of its largest magnitude
/// for the rounding of the readings (a few units in the last place of `Σ|c|·X`) and of the
/// split (its residual is under 1e-10 of `X`); infinite where an input is. A NaN input is
/// passed over by the maxima, as the readings of the outputs whose windows hold it never raise
/// a peak. A chunk whose bound is under the running peak is passed over whole.
#[inline(always)]
fn chunk_bound(folded: &FoldedPhases, buf: &[f64]) -> f64 {
    let (gain, rough) = folded.split;
    let m = window_maxima(&buf[2..], [buf[0], buf[1]]);
    let x = larger(m[0], larger(buf[0].abs(), buf[1].abs()));
    if !(x < f64::INFINITY) {
        return f64::INFINITY;
    }
    (gain * x + rough * m[2]) + 1e-9 * x
}

/// For every block `b` of [`GROUP`] output positions (`bound.len()` of them), a bound on the
/// magnitude of its outputs ([`FoldedPhases::scan`]): from the smallest and the largest input
/// of each group of the buffer, over the groups the block's windows touch; and in `reach` the
/// largest magnitude of those groups.
#[inline(always)]
fn group_bounds(folded: &FoldedPhases, buf: &[f64], bound: &mut [f64], reach: &mut [f64]) {
    let t = 2 * folded.half;
    let groups = buf.len().div_ceil(GROUP);
    let (mut glo, mut ghi) = ([0.0f64; GROUPS + SPAN_PAD], [0.0f64; GROUPS + SPAN_PAD]);
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
    // Groups the windows of a block starting at a group boundary touch; past the buffer, the
    // last group again (no change to a smallest or largest value).
    let span = (t - 1 + GROUP).div_ceil(GROUP);
    let blocks = bound.len();
    let (last_lo, last_hi) = (glo[groups - 1], ghi[groups - 1]);
    glo[groups..blocks + span].fill(last_lo);
    ghi[groups..blocks + span].fill(last_hi);
    // The smallest and largest over each block's groups, a group at a time over every block
    // (a loop of vector instructions).
    let (mut lo, mut hi) = ([0.0f64; GROUPS], [0.0f64; GROUPS]);
    lo[..blocks].copy_from_slice(&glo[..blocks]);
    hi[..blocks].copy_from_slice(&ghi[..blocks]);
    for j in 1..span {
        for b in 0..blocks {
            lo[b] = smaller(lo[b], glo[b + j]);
            hi[b] = larger(hi[b], ghi[b + j]);
        }
    }
    let (gain, dc) = (folded.bound_gain, folded.dc_gain);
    for b in 0..blocks {
        let (lo, hi) = (lo[b], hi[b]);
        let c = 0.5 * (lo + hi);
        let deviation = larger(hi - c, c - lo);
        let centred = (dc * c.abs() + gain * deviation) * (1.0 + 1e-9);
        reach[b] = larger(hi, -lo);
        bound[b] = smaller(gain * reach[b], centred);
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

/// A bound on every reading of the [`GROUP`] outputs of `window` (`taps − 1 + GROUP` long)
/// whose largest input magnitude is at most `reach`: step `step`'s [`INNER`] tap pairs nearest the centre
/// evaluated (as [`outputs_peak`] does, in another order: its rounding is in the margin), the
/// others bounded by their L1 norm ([`FoldedPhases::outer_gain`]). Skips the blocks of a loud
/// signal whose windows reach the peak's level but whose outputs stay under it, which the group
/// bounds cannot tell apart, for a third of an evaluation.
#[inline(always)]
fn inner_bound<const FMA: bool>(
    folded: &FoldedPhases,
    window: &[f64],
    reach: f64,
    step: usize,
) -> f64 {
    let pairs = INNER[step];
    let inner = match folded.pairs.len() / (2 * folded.half) {
        0 => inner_readings::<0, FMA>(folded, window, pairs),
        1 => inner_readings::<1, FMA>(folded, window, pairs),
        3 => inner_readings::<3, FMA>(folded, window, pairs),
        _ => inner_readings::<7, FMA>(folded, window, pairs),
    };
    inner + folded.outer_gain[step] * reach
}

/// The folded sums of `G` consecutive outputs of `window` over the tap pairs `ks` (in that
/// order): the middle phase's, and per phase pair the even (`Σ e·s`) and odd (`Σ o·d`) ones.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn tap_sums<const G: usize, const NP: usize, const FMA: bool>(
    folded: &FoldedPhases,
    window: &[f64],
    ks: std::ops::Range<usize>,
) -> ([f64; G], [[f64; G]; NP], [[f64; G]; NP]) {
    let h = folded.half;
    let t = 2 * h;
    let mut mid = [0.0f64; G];
    let mut even = [[0.0f64; G]; NP];
    let mut odd = [[0.0f64; G]; NP];
    for k in ks {
        let (s, d) = sums_differences::<G>(window, t, k);
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
    (mid, even, odd)
}

/// The largest reading of [`GROUP`] outputs over the `pairs` tap pairs nearest the centre.
#[inline(always)]
fn inner_readings<const NP: usize, const FMA: bool>(
    folded: &FoldedPhases,
    window: &[f64],
    pairs: usize,
) -> f64 {
    let h = folded.half;
    let (mid, even, odd) = tap_sums::<GROUP, NP, FMA>(folded, window, h - pairs..h);
    let mut m = [0.0f64; GROUP];
    for j in 0..GROUP {
        m[j] = mid[j].abs();
        for q in 0..NP {
            m[j] = larger(m[j], 0.5 * (even[q][j].abs() + odd[q][j].abs()));
        }
    }
    // An output whose inner taps hold a NaN reads NaN whole, which never raises a peak: it
    // may be left out (an infinity reads infinite here, or `reach` is).
    m.iter().fold(0.0, |a, &b| larger(a, b))
}

/// The sums and differences of tap pair `k` (taps `k` and `t − 1 − k`) over `G` outputs.
#[inline(always)]
fn sums_differences<const G: usize>(window: &[f64], t: usize, k: usize) -> ([f64; G], [f64; G]) {
    let a: &[f64; G] = window[k..k + G].try_into().expect("window");
    let b: &[f64; G] = window[t - 1 - k..t - 1 - k + G].try_into().expect("window");
    let mut s = [0.0f64; G];
    let mut d = [0.0f64; G];
    for j in 0..G {
        s[j] = a[j] + b[j];
        d[j] = a[j] - b[j];
    }
    (s, d)
}

/// Inter-sample peak of `G` consecutive output positions (window `buf`, `taps − 1 + G` long),
/// by the folded phases: the sums and differences of each tap pair are formed once and feed
/// every phase, `G` outputs side by side in registers. Every output goes through the same
/// operations in the same order whatever `G` is, so readings do not depend on how the stream
/// was cut into blocks. With `NEST`, the nested factor's phases give the second reading.
#[inline(always)]
fn outputs_peak<const G: usize, const FMA: bool, const NEST: bool>(
    folded: &FoldedPhases,
    buf: &[f64],
    peak: f64,
    nested: f64,
) -> (f64, f64) {
    match folded.pairs.len() / (2 * folded.half.max(1)) {
        0 => outputs_peak_np::<G, 0, FMA, NEST>(folded, buf, peak, nested),
        1 => outputs_peak_np::<G, 1, FMA, NEST>(folded, buf, peak, nested),
        3 => outputs_peak_np::<G, 3, FMA, NEST>(folded, buf, peak, nested),
        _ => outputs_peak_np::<G, 7, FMA, NEST>(folded, buf, peak, nested),
    }
}

/// [`outputs_peak`] for `NP` phase pairs (factor `2·NP + 2`).
#[inline(always)]
fn outputs_peak_np<const G: usize, const NP: usize, const FMA: bool, const NEST: bool>(
    folded: &FoldedPhases,
    buf: &[f64],
    peak: f64,
    nested: f64,
) -> (f64, f64) {
    let h = folded.half;
    let (mid, even, odd) = tap_sums::<G, NP, FMA>(folded, buf, 0..h);
    let mut m = [0.0f64; G];
    for j in 0..G {
        m[j] = mid[j].abs();
    }
    let mut mn = [0.0f64; G];
    if NEST && folded.nested_middle {
        mn = m;
    }
    for q in 0..NP {
        let nest = NEST && folded.nested_pairs & (1 << q) != 0;
        for j in 0..G {
            let v = 0.5 * (even[q][j].abs() + odd[q][j].abs());
            m[j] = larger(m[j], v);
            if nest {
                mn[j] = larger(mn[j], v);
            }
        }
    }
    let nested = if NEST {
        mn.iter().fold(nested, |a, &b| larger(a, b))
    } else {
        nested
    };
    (m.iter().fold(peak, |a, &b| larger(a, b)), nested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::oversample::{default_kaiser_beta, PolyphaseInterpolator};

    /// Every output evaluated, none skipped: what [`scan_body`] must equal bit for bit.
    fn everything_with<const FMA: bool>(folded: &FoldedPhases, buf: &[f64], peak: f64) -> f64 {
        let t = 2 * folded.half;
        let peak = larger(peak, abs_max(&buf[t - 1..]));
        (0..buf.len() + 1 - t).fold(peak, |pk, i| {
            outputs_peak::<1, FMA, false>(folded, &buf[i..i + t], pk, 0.0).0
        })
    }

    /// [`everything_with`] in the build `folded` scans with (FMA or portable).
    fn everything(folded: &FoldedPhases, buf: &[f64], peak: f64) -> f64 {
        if folded.build != Build::Portable {
            everything_with::<true>(folded, buf, peak)
        } else {
            everything_with::<false>(folded, buf, peak)
        }
    }

    /// The builds this CPU runs: the portable one, the FMA one where it has AVX2 and FMA, and
    /// its AVX-512 build where it has AVX-512F and VL too.
    fn builds() -> Vec<Build> {
        let mut out = vec![Build::Portable];
        if crate::dsp::simd::avx2_fma() {
            out.push(Build::Fma);
        }
        if Build::detect() == Build::Avx512 {
            out.push(Build::Avx512);
        }
        out
    }

    /// Each table the tests scan with: factors 2 to 16, 32 taps, in every build the CPU runs
    /// ([`builds`]); with its factor and taps per phase.
    fn tables() -> Vec<(usize, usize, FoldedPhases)> {
        let mut out = Vec::new();
        for factor in [2, 4, 8, 16] {
            let it = PolyphaseInterpolator::new(factor, 32, default_kaiser_beta(32));
            for build in builds() {
                let mut folded = FoldedPhases::new(it.table());
                folded.build = build;
                out.push((factor, it.taps(), folded));
            }
        }
        out
    }

    /// Loud signals that move little within a window (where the bound on deviations is at its
    /// tightest), riding on offsets of both signs, and noise: the skipping scan gives exactly
    /// the bits of evaluating everything, from any running peak, in every build.
    #[test]
    fn skipping_scan_gives_the_bits_of_evaluating_everything() {
        let mut noise = crate::dsp::test_signal::noise(0x2545_f491_4f6c_dd1du64);
        let n = 20_000;
        let mut x: Vec<f64> = Vec::with_capacity(3 * n);
        for (offset, wiggle) in [(0.8, 1e-4), (0.7, 0.02), (-0.5, 0.2), (0.0, 1.0)] {
            x.extend((0..n).map(|i| {
                let slow = (i as f64 * 0.002).sin();
                offset + 0.25 * slow + wiggle * noise()
            }));
        }
        for (factor, t, folded) in tables() {
            let mut buf = vec![0.0; t - 1 + SCAN_MAX_NEW];
            let (mut skipped, mut evaluated, mut close, mut inner) = (0, 0, 0, 0);
            for (k, chunk) in x.chunks(SCAN_MAX_NEW - 3 * (factor % 5)).enumerate() {
                buf[t - 1..t - 1 + chunk.len()].copy_from_slice(chunk);
                let b = &buf[..t - 1 + chunk.len()];
                let all = |peak| everything(&folded, b, peak);
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
                let (mut bound, mut reach) = ([0.0; GROUPS], [0.0; GROUPS]);
                let blocks = (b.len() + 1 - t).div_ceil(GROUP);
                group_bounds(&folded, b, &mut bound[..blocks], &mut reach[..blocks]);
                let start = peak.max(abs_max(&b[t - 1..]));
                for (j, &v) in bound[..blocks].iter().enumerate() {
                    let i = j * GROUP;
                    if v <= start {
                        skipped += 1;
                    } else if i + t - 1 + GROUP <= b.len()
                        && (0..2).any(|step| {
                            let w = &b[i..i + t - 1 + GROUP];
                            inner_bound::<false>(&folded, w, reach[j], step) <= start
                        })
                    {
                        inner += 1;
                    } else {
                        evaluated += 1;
                    }
                }
                buf.copy_within(chunk.len()..chunk.len() + t - 1, 0);
            }
            // Both kinds of block occur, and chunks whose reading is an inter-sample value.
            assert!(
                skipped > 100 && evaluated > 100 && inner > 100,
                "{skipped} / {inner} / {evaluated}"
            );
            assert!(close > 5, "{factor}x: {close} chunks read between samples");
        }
    }

    /// The one-pass screen gives the sample peak of the new samples and the chunk bound of
    /// [`abs_max`] and [`chunk_bound`] bit for bit, in every build, on noise, loud and quiet
    /// stretches, and windows holding an infinity or a NaN (in the history or among the new
    /// samples), over every staged length.
    #[test]
    fn screen_is_the_sample_peak_and_the_chunk_bound() {
        let mut noise = crate::dsp::test_signal::noise(0x0bad_5eed_1234_5678u64);
        let builds = builds();
        for (factor, t, folded) in tables() {
            for case in 0..8 {
                let len = t - 1 + [SCAN_MAX_NEW, 1, 2, 7, 8, 333, 40, 21][case];
                let level = [1.0, 1e-3, 0.0, 0.9, 2.0, 0.5, 0.7, 0.3][case];
                let mut buf: Vec<f64> = (0..len).map(|_| level * noise()).collect();
                match case {
                    3 => buf[len / 2] = f64::INFINITY,
                    4 => buf[len - 1] = f64::NAN,
                    5 => buf[1] = f64::NEG_INFINITY,
                    6 => buf[t / 2] = f64::NAN,
                    7 => buf[t / 3] = 3.0,
                    _ => {}
                }
                let want = (
                    abs_max(&buf[t - 1..]),
                    if buf.len() >= 3 {
                        chunk_bound(&folded, &buf)
                    } else {
                        f64::NAN
                    },
                );
                let got = builds.iter().map(|build| match build {
                    Build::Portable => screen::<false, false>(&folded, &buf, t),
                    Build::Fma => screen::<true, false>(&folded, &buf, t),
                    Build::Avx512 => screen::<true, true>(&folded, &buf, t),
                });
                for got in got {
                    assert_eq!(got.0.to_bits(), want.0.to_bits(), "{factor}x case {case}");
                    assert_eq!(got.1.to_bits(), want.1.to_bits(), "{factor}x case {case}");
                }
            }
        }
    }

    /// Signals that drive the taps outside the inner pairs hardest: alternating full-scale
    /// samples (every tap at its largest magnitude, the sign pattern of the sinc's lobes), loud
    /// tones near Nyquist, and noise. The second bound is at least every reading of its block,
    /// in every build.
    #[test]
    fn inner_bound_holds_every_reading() {
        let mut noise = crate::dsp::test_signal::noise(0x9e37_79b9_7f4a_7c15u64);
        let mut signals: Vec<Vec<f64>> = Vec::new();
        signals.push(
            (0..2000)
                .map(|i| if (i / 3) % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
        );
        signals.push(
            (0..2000)
                .map(|i| if i % 2 == 0 { 0.9 } else { -0.9 })
                .collect(),
        );
        for f in [0.37, 0.45, 0.49] {
            signals.push(
                (0..2000)
                    .map(|i| (std::f64::consts::PI * f * 2.0 * i as f64).sin())
                    .collect(),
            );
        }
        signals.push((0..2000).map(|_| 2.0 * noise()).collect());
        signals.push(
            (0..2000)
                .map(|_| if noise() > 0.0 { 1.0 } else { -1.0 })
                .collect(),
        );
        for (factor, t, folded) in tables() {
            assert!(folded.outer_gain.iter().all(|&g| g > 0.0));
            for step in 0..2 {
                let mut tight = 0.0f64;
                for x in &signals {
                    for i in (0..x.len() - (t - 1 + GROUP)).step_by(5) {
                        let w = &x[i..i + t - 1 + GROUP];
                        let reach = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                        let fma = folded.build != Build::Portable;
                        let bound = if fma {
                            inner_bound::<true>(&folded, w, reach, step)
                        } else {
                            inner_bound::<false>(&folded, w, reach, step)
                        };
                        let readings = (0..GROUP).fold(0.0, |m, j| {
                            let o = &w[j..j + t];
                            if fma {
                                outputs_peak::<1, true, false>(&folded, o, m, 0.0).0
                            } else {
                                outputs_peak::<1, false, false>(&folded, o, m, 0.0).0
                            }
                        });
                        assert!(readings <= bound, "{factor}x at {i}: {readings} > {bound}");
                        tight = tight.max(readings / bound);
                    }
                }
                // Not a vacuous bound: some block comes close to it.
                assert!(
                    tight > 0.8,
                    "{factor}x step {step}: at most {tight} of the bound"
                );
            }
        }
    }

    /// The chunk screen's split bound is at least every reading of the window, in every build,
    /// on the signals that drive a kernel's rough part hardest (alternating full-scale samples,
    /// tones near Nyquist, noise, a square wave) and on loud low tones (where it is tight); and
    /// after a loud burst it passes over most chunks of a quieter passage.
    #[test]
    fn chunk_screen_holds_every_reading() {
        let mut noise = crate::dsp::test_signal::noise(0x1234_5678_9abc_def1u64);
        let n = 3000;
        let mut signals: Vec<Vec<f64>> = vec![
            (0..n)
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
            (0..n)
                .map(|i| if (i / 3) % 2 == 0 { 0.9 } else { -0.9 })
                .collect(),
            (0..n).map(|_| 2.0 * noise()).collect(),
            (0..n).map(|i| 0.99 * (i as f64 * 0.003).sin()).collect(),
        ];
        // Tones whose peaks fall between samples (at fs/4, 45° off, the samples read 3 dB
        // under; last in the list): only the rough part of the bound covers the inter-sample peaks.
        for (f, phase) in [
            (0.37, 0.0),
            (0.45, 0.0),
            (0.49, 0.0),
            (0.125, 0.5),
            (0.45, 0.5),
            (0.25, 0.5),
        ] {
            let w = std::f64::consts::PI * 2.0 * f;
            signals.push((0..n).map(|i| (w * (i as f64 + phase)).sin()).collect());
        }
        for (factor, t, folded) in tables() {
            assert!(folded.split.0 >= 1.0 && folded.split.1 > 0.0);
            // Where the samples under-read the peak, the bound still holds it, not by far.
            let isp = &signals[signals.len() - 1];
            let b = &isp[100..100 + t + 64];
            let reading = everything(&folded, b, 0.0);
            assert!(reading > 1.2 * abs_max(b), "{factor}x: {reading}");
            assert!(
                reading > 0.6 * chunk_bound(&folded, b),
                "{factor}x: {reading}"
            );
            let mut tight = 0.0f64;
            for x in &signals {
                for (k, len) in [t, t + 1, t + 7, t + 100, t - 1 + SCAN_MAX_NEW]
                    .into_iter()
                    .enumerate()
                {
                    for i in (0..x.len() - len).step_by(97 + k) {
                        let b = &x[i..i + len];
                        let readings = everything(&folded, b, 0.0);
                        let bound = chunk_bound(&folded, b);
                        assert!(
                            readings <= bound,
                            "{factor}x at {i}+{len}: {readings} > {bound}"
                        );
                        tight = tight.max(readings / bound);
                    }
                }
            }
            assert!(tight > 0.98, "{factor}x: at most {tight} of the bound");
            // A loud burst, then a passage 6 dB down: the screen passes it over.
            let song: Vec<f64> = (0..40 * SCAN_MAX_NEW)
                .map(|i| {
                    let level = if i < 4 * SCAN_MAX_NEW { 0.9 } else { 0.45 };
                    level * (0.7 * (i as f64 * 0.01).sin() + 0.3 * noise())
                })
                .collect();
            let mut buf = vec![0.0; t - 1 + SCAN_MAX_NEW];
            let (mut peak, mut passed) = (0.0, 0);
            for chunk in song.chunks(SCAN_MAX_NEW) {
                buf[t - 1..].copy_from_slice(chunk);
                passed += usize::from(screen::<false, false>(&folded, &buf, t).1 <= peak);
                let want = everything(&folded, &buf, peak);
                peak = folded.scan(&buf, peak);
                assert_eq!(peak.to_bits(), want.to_bits());
                buf.copy_within(SCAN_MAX_NEW..SCAN_MAX_NEW + t - 1, 0);
            }
            assert!(passed > 30, "{factor}x: {passed} of 40 chunks passed over");
        }
    }

    /// The nested reading of one scan is, bit for bit, the reading of a table by the nested
    /// factor (the sample peak for 1), and the main reading that of [`FoldedPhases::scan`],
    /// from any running peaks, in every build.
    #[test]
    fn nested_scan_reads_the_smaller_factor_exactly() {
        let mut noise = crate::dsp::test_signal::noise(0x2545_f491_4f6c_dd1du64);
        let x: Vec<f64> = (0..30_000)
            .map(|i| {
                let level = if i % 7000 < 400 { 1.8 } else { 0.6 };
                level * noise() + 0.4 * (i as f64 * 0.9).sin()
            })
            .collect();
        let beta = default_kaiser_beta(32);
        for (factor, nested) in [(8, 4), (8, 2), (8, 1), (16, 8), (16, 4), (4, 2), (2, 1)] {
            let big = PolyphaseInterpolator::new(factor, 32, beta);
            let t = big.taps();
            for build in builds() {
                let mut both = FoldedPhases::new(big.table());
                both.nest(factor, nested);
                both.build = build;
                let mut alone = FoldedPhases::new(big.table());
                alone.build = build;
                let mut small = (nested > 1).then(|| {
                    FoldedPhases::new(PolyphaseInterpolator::new(nested, 32, beta).table())
                });
                if let Some(s) = small.as_mut() {
                    s.build = build;
                }
                let mut buf = vec![0.0; t - 1 + SCAN_MAX_NEW];
                let (mut pb, mut pn, mut pa, mut ps) = (0.0, 0.0, 0.0, 0.0);
                for (k, chunk) in x.chunks(SCAN_MAX_NEW - 7).enumerate() {
                    buf[t - 1..t - 1 + chunk.len()].copy_from_slice(chunk);
                    let b = &buf[..t - 1 + chunk.len()];
                    if k % 5 == 4 {
                        // A new interval on one side only.
                        pn = 0.0;
                        ps = 0.0;
                    }
                    (pb, pn) = both.scan_nested(b, pb, pn);
                    pa = alone.scan(b, pa);
                    ps = match &small {
                        Some(s) => s.scan(b, ps),
                        None => ps.max(abs_max(&b[t - 1..])),
                    };
                    assert_eq!(pb.to_bits(), pa.to_bits(), "{factor}x chunk {k}");
                    assert_eq!(pn.to_bits(), ps.to_bits(), "{factor}x/{nested}x chunk {k}");
                    assert!(pn <= pb, "a nested reading over the full one");
                    buf.copy_within(chunk.len()..chunk.len() + t - 1, 0);
                }
            }
        }
    }
}
