//! The mono maker's AVX2 and AVX-512 kernels: its six section lanes in two registers (one with
//! AVX-512F, [`run_avx512`]), run as a wavefront.
//!
//! The mono maker runs four SVF sections: the first pass of the LR8 (sections 0 and 1) on two
//! lanes each (mid all-pass, side high-pass), then the second pass of the side's high-pass
//! (sections 0 and 1, one lane each). Here the first pass is one 256-bit register (lanes: section
//! 0 mid, section 0 side, section 1 mid, section 1 side) and the second pass one 128-bit register
//! (section 0, section 1). Each section works [`D`] frames behind the one feeding it: at step
//! `t` the first section takes frame `t`, the second `t − D`, the third `t − 2D`, the last
//! `t − 3D`, so a section's input is what its feeder produced `D` steps earlier and the
//! register-wide recursion never waits on a section's output within `D` steps. Every lane does
//! the IEEE operations of `crossover::SvfState::tick` and of `MonoMaker::first_stage` /
//! `second_stage` on its own frames in order: the same bits as the frame-by-frame path
//! (`tests` in `super`).
//!
//! The pipeline runs over the whole block handed to it: it fills at the block's start and
//! drains at its end, with the lanes that have no frame at a step left as they are (masked).
//! The chunk boundaries the frame-by-frame path flushes its state at (after every frame
//! `first_flush + k·CHUNK`) fall at a different step for each section: each section's lanes
//! are flushed right after it has taken that frame, so every state is that of the frame-by-frame
//! path at every frame. (It used to fill and drain within every 64-frame chunk, so that a
//! flush of all four sections could come between two chunks: 12 of every 70 steps masked.)
//! In the AVX2 build the mid of frame `i`, ready `D` steps before its side, waits in `l[i]`,
//! whose input was read when frame `i` entered; the AVX-512 build keeps it in two spare lanes
//! and moves frames in and out eight at a time, the correlation readout's pass folded in
//! ([`run_avx512`]).

use super::{MonoMaker, Readout};
use crate::dsp::crossover::FLUSH;
use crate::dsp::dynamics::core::CHUNK;
use crate::dsp::filters::df1_batch::store_quarter;
use crate::dsp::filters::SvfCoefs;
use std::arch::x86_64::*;

/// Steps between a section and the next: the recursion through a section's output (about
/// 24 cycles) spread over `D` steps stays under the throughput of a step.
const D: usize = 2;

/// One register's section coefficients, lane by lane.
struct Lanes<V> {
    a11: V,
    a22: V,
    b1: V,
    neg_b1: V,
    b2: V,
    /// `2k` on all-pass lanes, `k` on high-pass lanes.
    k: V,
    /// All ones on high-pass lanes (their `v2` is subtracted), zero on all-pass lanes.
    hp: V,
}

/// [`MonoMaker::run`] on AVX2: the width closure `w` gives frame `i`'s factor; each section's
/// state is flushed after frames `first_flush`, `first_flush + CHUNK`, ….
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn run(
    m: &mut MonoMaker,
    l: &mut [f64],
    r: &mut [f64],
    w: impl Fn(usize) -> f64,
    first_flush: usize,
) {
    let n = l.len().min(r.len());
    let (l, r) = (&mut l[..n], &mut r[..n]);
    let [c0, c1] = m.coefs;
    let all = f64::from_bits(u64::MAX);
    let f = Lanes {
        a11: _mm256_set_pd(c1.a11, c1.a11, c0.a11, c0.a11),
        a22: _mm256_set_pd(c1.a22, c1.a22, c0.a22, c0.a22),
        b1: _mm256_set_pd(c1.b1, c1.b1, c0.b1, c0.b1),
        neg_b1: _mm256_set_pd(-c1.b1, -c1.b1, -c0.b1, -c0.b1),
        b2: _mm256_set_pd(c1.b2, c1.b2, c0.b2, c0.b2),
        k: _mm256_set_pd(c1.k, 2.0 * c1.k, c0.k, 2.0 * c0.k),
        hp: _mm256_set_pd(all, 0.0, all, 0.0),
    };
    let s = Lanes {
        a11: _mm_set_pd(c1.a11, c0.a11),
        a22: _mm_set_pd(c1.a22, c0.a22),
        b1: _mm_set_pd(c1.b1, c0.b1),
        neg_b1: _mm_set_pd(-c1.b1, -c0.b1),
        b2: _mm_set_pd(c1.b2, c0.b2),
        k: _mm_set_pd(c1.k, c0.k),
        hp: _mm_set_pd(all, all),
    };
    let (f0, f1) = (m.first[0].states(), m.first[1].states());
    let (s0, s1) = (m.second[0].states(), m.second[1].states());
    let mut fs = [
        _mm256_set_pd(f1.0[1], f1.0[0], f0.0[1], f0.0[0]),
        _mm256_set_pd(f1.1[1], f1.1[0], f0.1[1], f0.1[0]),
    ];
    let mut ss = [_mm_set_pd(s1.0[0], s0.0[0]), _mm_set_pd(s1.1[0], s0.1[0])];
    // The outputs of the last D steps, newest first.
    let mut out_f = [_mm256_setzero_pd(); D];
    let mut out_s = [_mm_setzero_pd(); D];
    // (t − first_flush) mod CHUNK: section `k` flushes at step t when this is k·D (and the
    // frame it took, t − k·D, is one of the block's).
    let mut phase = (CHUNK - first_flush % CHUNK) % CHUNK;
    let live = |t: usize, lo: usize| t >= lo && t < n + lo;
    for t in 0..n + 3 * D {
        let input = if t < n {
            let (a, b) = (l[t], r[t]);
            _mm_set_pd(0.5 * (a - b), 0.5 * (a + b))
        } else {
            _mm_setzero_pd()
        };
        let (old_f, old_s) = (out_f[D - 1], out_s[D - 1]);
        let v0f =
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(input), _mm256_castpd256_pd128(old_f));
        let v0s = _mm_shuffle_pd::<0b01>(_mm256_extractf128_pd::<1>(old_f), old_s);
        let (nf, yf) = tick256(&f, fs, v0f);
        let (ns, ys) = tick128(&s, ss, v0s);
        if t >= 3 * D && t < n {
            fs = nf;
            ss = ns;
        } else {
            // Lanes with a frame at this step advance; the others keep their state.
            let mf = mask256(live(t, 0), live(t, D));
            let ms = mask128(live(t, 2 * D), live(t, 3 * D));
            fs = [
                _mm256_blendv_pd(fs[0], nf[0], mf),
                _mm256_blendv_pd(fs[1], nf[1], mf),
            ];
            ss = [
                _mm_blendv_pd(ss[0], ns[0], ms),
                _mm_blendv_pd(ss[1], ns[1], ms),
            ];
        }
        if phase <= 3 * D && phase % D == 0 {
            let k = phase / D;
            if live(t, k * D) {
                match k {
                    0 | 1 => {
                        let lanes = mask256(k == 0, k == 1);
                        fs = [flush256(fs[0], lanes), flush256(fs[1], lanes)];
                    }
                    _ => {
                        let lanes = mask128(k == 2, k == 3);
                        ss = [flush128(ss[0], lanes), flush128(ss[1], lanes)];
                    }
                }
            }
        }
        phase += 1;
        if phase == CHUNK {
            phase = 0;
        }
        if live(t, D) {
            l[t - D] = _mm_cvtsd_f64(_mm256_extractf128_pd::<1>(yf));
        }
        if t >= 3 * D {
            let i = t - 3 * D;
            let side = _mm_cvtsd_f64(_mm_unpackhi_pd(ys, ys));
            let (mid, wi) = (l[i], w(i));
            l[i] = mid + wi * side;
            r[i] = mid - wi * side;
        }
        for j in (1..D).rev() {
            out_f[j] = out_f[j - 1];
            out_s[j] = out_s[j - 1];
        }
        out_f[0] = yf;
        out_s[0] = ys;
    }
    let mut a = [[0.0f64; 4]; 2];
    let mut b = [[0.0f64; 2]; 2];
    for j in 0..2 {
        // SAFETY: four and two doubles.
        unsafe {
            _mm256_storeu_pd(a[j].as_mut_ptr(), fs[j]);
            _mm_storeu_pd(b[j].as_mut_ptr(), ss[j]);
        }
    }
    m.first[0].set_states([a[0][0], a[0][1]], [a[1][0], a[1][1]]);
    m.first[1].set_states([a[0][2], a[0][3]], [a[1][2], a[1][3]]);
    for (k, sec) in m.second.iter_mut().enumerate() {
        // Lane 1 of the second pass carries zeros in the frame-by-frame path (its state stays
        // zero, which a flush keeps): it is left as it is.
        let (ic1, ic2) = sec.states();
        sec.set_states([b[0][k], ic1[1]], [b[1][k], ic2[1]]);
    }
}

/// `SvfState::flush` on the lanes of `v` set in `lanes`: magnitudes under [`FLUSH`] become
/// zero.
#[target_feature(enable = "avx2")]
#[inline]
fn flush256(v: __m256d, lanes: __m256d) -> __m256d {
    let magnitude = _mm256_and_pd(v, _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX)));
    let tiny = _mm256_cmp_pd::<_CMP_LT_OQ>(magnitude, _mm256_set1_pd(FLUSH));
    _mm256_andnot_pd(_mm256_and_pd(tiny, lanes), v)
}

/// [`flush256`] on two lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn flush128(v: __m128d, lanes: __m128d) -> __m128d {
    let magnitude = _mm_and_pd(v, _mm_castsi128_pd(_mm_set1_epi64x(i64::MAX)));
    let tiny = _mm_cmp_pd::<_CMP_LT_OQ>(magnitude, _mm_set1_pd(FLUSH));
    _mm_andnot_pd(_mm_and_pd(tiny, lanes), v)
}

/// Lanes 0–1 on when `lo`, lanes 2–3 when `hi`.
#[target_feature(enable = "avx2")]
#[inline]
fn mask256(lo: bool, hi: bool) -> __m256d {
    let b = |on: bool| if on { -1i64 } else { 0 };
    _mm256_castsi256_pd(_mm256_set_epi64x(b(hi), b(hi), b(lo), b(lo)))
}

/// Lane 0 on when `lo`, lane 1 when `hi`.
#[target_feature(enable = "avx2")]
#[inline]
fn mask128(lo: bool, hi: bool) -> __m128d {
    let b = |on: bool| if on { -1i64 } else { 0 };
    _mm_castsi128_pd(_mm_set_epi64x(b(hi), b(lo)))
}

/// One step of the four first-pass lanes: the new states and each lane's output (all-pass
/// `x − 2k·v1` or high-pass `x − k·v1 − v2`), as `SvfState::tick` and `first_stage`.
#[target_feature(enable = "avx2")]
#[inline]
fn tick256(c: &Lanes<__m256d>, st: [__m256d; 2], v0: __m256d) -> ([__m256d; 2], __m256d) {
    let [s1, s2] = st;
    let half = _mm256_set1_pd(0.5);
    let n1 = _mm256_add_pd(
        _mm256_add_pd(_mm256_mul_pd(c.a11, s1), _mm256_mul_pd(c.neg_b1, s2)),
        _mm256_mul_pd(c.b1, v0),
    );
    let n2 = _mm256_add_pd(
        _mm256_add_pd(_mm256_mul_pd(c.b1, s1), _mm256_mul_pd(c.a22, s2)),
        _mm256_mul_pd(c.b2, v0),
    );
    let v1 = _mm256_mul_pd(half, _mm256_add_pd(s1, n1));
    let v2 = _mm256_mul_pd(half, _mm256_add_pd(s2, n2));
    // x − 0 is x, bit for bit: the all-pass lanes subtract a zero.
    let y = _mm256_sub_pd(
        _mm256_sub_pd(v0, _mm256_mul_pd(c.k, v1)),
        _mm256_and_pd(v2, c.hp),
    );
    ([n1, n2], y)
}

/// [`tick256`] on the two second-pass lanes (both high-pass).
#[target_feature(enable = "avx2")]
#[inline]
fn tick128(c: &Lanes<__m128d>, st: [__m128d; 2], v0: __m128d) -> ([__m128d; 2], __m128d) {
    let [s1, s2] = st;
    let half = _mm_set1_pd(0.5);
    let n1 = _mm_add_pd(
        _mm_add_pd(_mm_mul_pd(c.a11, s1), _mm_mul_pd(c.neg_b1, s2)),
        _mm_mul_pd(c.b1, v0),
    );
    let n2 = _mm_add_pd(
        _mm_add_pd(_mm_mul_pd(c.b1, s1), _mm_mul_pd(c.a22, s2)),
        _mm_mul_pd(c.b2, v0),
    );
    let v1 = _mm_mul_pd(half, _mm_add_pd(s1, n1));
    let v2 = _mm_mul_pd(half, _mm_add_pd(s2, n2));
    let y = _mm_sub_pd(_mm_sub_pd(v0, _mm_mul_pd(c.k, v1)), _mm_and_pd(v2, c.hp));
    ([n1, n2], y)
}

/// Steps between a section and the next in [`run_avx512`]: with every section in one register,
/// a section's output reaches the next section's recursion about 31 cycles after its own state
/// (the output's four dependent operations and a lane permute), so three steps apart it never
/// waits longer than a section's own recursion (a multiply and two adds, 12 cycles a step).
const D512: usize = 3;

/// Frames [`run_avx512`] moves in and out of its register at a time.
const GROUP: usize = 8;

/// The lanes of [`run_avx512`]'s register, section by section: section 0 of the first pass
/// (lane 0 the mid's all-pass, lane 1 the side's high-pass), section 1 of the first pass (lanes 2,
/// 3: the same), the side's second pass (section 0 in lane 5, section 1 in lane 6). Lanes 4 and
/// 7 hand their input on as it is (`Wide::feed`): the mid, ready in lane 2 [`D512`] steps after
/// the frame entered, waits there for its side, so at every step lanes 6 and 7 hold the side
/// and the mid of the frame that entered `3·D512` steps before.
const SECTION_LANES: [__mmask8; 4] = [0b11, 0b1100, 0b10_0000, 0b100_0000];

/// The lanes of [`run_avx512`]'s register that filter (the others pass their input on).
const FILTERS: __mmask8 = 0b110_1111;

/// The high-pass lanes of [`run_avx512`]'s register (the other filters are the mid's all-pass).
const HIGH_PASS: __mmask8 = 0b110_1010;

/// The four sections' coefficients in [`run_avx512`]'s lanes ([`SECTION_LANES`]), and the
/// lane permutes that feed them and gather their output.
struct Wide {
    a11: __m512d,
    a22: __m512d,
    b1: __m512d,
    neg_b1: __m512d,
    b2: __m512d,
    /// `2k` on all-pass lanes, `k` on high-pass lanes.
    k: __m512d,
    half: __m512d,
    /// `feed[q]`: where each lane's input comes from when a frame's mid and side are lanes `2q`,
    /// `2q + 1` of the first operand of `vpermt2pd`: lanes 0 and 1 those, the others the
    /// outputs of the lanes feeding them (the second operand, 8…15).
    feed: [__m512i; GROUP / 2],
    /// From two registers of (side, mid) pairs, eight frames' sides and eight frames' mids.
    sides: __m512i,
    mids: __m512i,
}

impl Wide {
    #[target_feature(enable = "avx512f")]
    fn new(c0: &SvfCoefs, c1: &SvfCoefs) -> Wide {
        let lanes = |f: &dyn Fn(&SvfCoefs) -> f64| {
            _mm512_setr_pd(f(c0), f(c0), f(c1), f(c1), 0.0, f(c0), f(c1), 0.0)
        };
        let feed = |q: i64| _mm512_setr_epi64(2 * q, 2 * q + 1, 8, 9, 8 + 2, 8 + 3, 8 + 5, 8 + 4);
        Wide {
            a11: lanes(&|c| c.a11),
            a22: lanes(&|c| c.a22),
            b1: lanes(&|c| c.b1),
            neg_b1: lanes(&|c| -c.b1),
            b2: lanes(&|c| c.b2),
            k: _mm512_setr_pd(2.0 * c0.k, c0.k, 2.0 * c1.k, c1.k, 0.0, c0.k, c1.k, 0.0),
            half: _mm512_set1_pd(0.5),
            feed: [feed(0), feed(1), feed(2), feed(3)],
            sides: _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14),
            mids: _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15),
        }
    }

    /// One step of every lane: the frame's mid and side (lanes `2q`, `2q + 1` of `frames`) and
    /// the outputs `fed` of D512 steps ago into the sections; the new states and each lane's
    /// output (all-pass `x − 2k·v1` or high-pass `x − k·v1 − v2`), as `SvfState::tick`,
    /// `first_stage` and `second_stage`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tick(
        &self,
        st: [__m512d; 2],
        frames: __m512d,
        q: usize,
        fed: __m512d,
    ) -> ([__m512d; 2], __m512d) {
        let [s1, s2] = st;
        let v0 = _mm512_permutex2var_pd(frames, self.feed[q], fed);
        let n1 = _mm512_add_pd(
            _mm512_add_pd(_mm512_mul_pd(self.a11, s1), _mm512_mul_pd(self.neg_b1, s2)),
            _mm512_mul_pd(self.b1, v0),
        );
        let n2 = _mm512_add_pd(
            _mm512_add_pd(_mm512_mul_pd(self.b1, s1), _mm512_mul_pd(self.a22, s2)),
            _mm512_mul_pd(self.b2, v0),
        );
        let v1 = _mm512_mul_pd(self.half, _mm512_add_pd(s1, n1));
        let v2 = _mm512_mul_pd(self.half, _mm512_add_pd(s2, n2));
        ([n1, n2], output(v0, _mm512_mul_pd(self.k, v1), v2))
    }
}

/// Each lane's output from its input `v0`, `k·v1` and `v2`: `v0 − k·v1` on the filter lanes,
/// less `v2` on the high-pass lanes; `v0` on the others. Two masked subtractions (the compiler
/// made the first a subtraction and a lane permute on the shuffle port, and reloaded the second
/// one's mask every step).
#[target_feature(enable = "avx512f")]
#[inline]
fn output(v0: __m512d, k_v1: __m512d, v2: __m512d) -> __m512d {
    let mut y = v0;
    // SAFETY: AVX-512F instructions on registers (the function requires the feature).
    unsafe {
        std::arch::asm!(
            "vsubpd {y}{{{filters}}}, {y}, {k_v1}",
            "vsubpd {y}{{{high_pass}}}, {y}, {v2}",
            y = inout(zmm_reg) y,
            k_v1 = in(zmm_reg) k_v1,
            v2 = in(zmm_reg) v2,
            filters = in(kreg) FILTERS,
            high_pass = in(kreg) HIGH_PASS,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    y
}

/// `sums[k] += p[k·GROUP]` for k = 0, 1, 2, by scalar additions from memory (the compiler
/// paired the sums in registers, and fetched the products lane by lane with shuffles).
///
/// # Safety
/// The CPU has AVX-512F; `p[0]`, `p[GROUP]`, `p[2·GROUP]` are readable.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn add_products(sums: &mut [f64; 3], p: *const f64) {
    const { assert!(GROUP * 8 == 64) };
    // SAFETY: the caller vouches for the CPU and the three values.
    unsafe {
        std::arch::asm!(
            "vaddsd {lr}, {lr}, qword ptr [{p}]",
            "vaddsd {ll}, {ll}, qword ptr [{p} + 64]",
            "vaddsd {rr}, {rr}, qword ptr [{p} + 128]",
            lr = inout(xmm_reg) sums[0],
            ll = inout(xmm_reg) sums[1],
            rr = inout(xmm_reg) sums[2],
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
}

/// `SvfState::flush` on `lanes` of both states: magnitudes under [`FLUSH`] become zero.
#[target_feature(enable = "avx512f")]
#[inline]
fn flush512(st: [__m512d; 2], lanes: __mmask8) -> [__m512d; 2] {
    st.map(|v| {
        let tiny =
            _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(lanes, _mm512_abs_pd(v), _mm512_set1_pd(FLUSH));
        _mm512_maskz_mov_pd(!tiny, v)
    })
}

/// The lanes flushed at a step whose `phase` ((t − first_flush) mod CHUNK) is this: section
/// `s` after it has taken the frame of a chunk boundary, `s·D512` steps after it entered.
fn flushed_at(phase: usize) -> __mmask8 {
    if phase <= 3 * D512 && phase.is_multiple_of(D512) {
        SECTION_LANES[phase / D512]
    } else {
        0
    }
}

/// [`run`] on AVX-512F, with the readout's pass (`Readout::pass`: each output frame summed in
/// order, the chunk closed after frames `first_flush + k·CHUNK`, the frame written back times
/// `post`) folded in: the four sections in one 512-bit register, so each step is one
/// register's recursion (half the operations of the AVX2 build's two registers) with the
/// sections [`D512`] steps apart. While every section has a frame, the frames move in and out
/// [`GROUP`] at a time: their mids and sides computed in one register and permuted into lanes
/// 0 and 1 as each enters, the (side, mid) pairs of the frames leaving (lanes 6 and 7) stored
/// as they are, then eight frames' outputs, their readout products and the gain computed in
/// registers; only the readout's sums go frame by frame. Each lane does the IEEE operations
/// of `crossover::SvfState::tick`, `MonoMaker::first_stage` and `second_stage` on its own
/// frames in order, and every output, sum and average the operations of the frame-by-frame
/// path: the same bits (`tests` in `super`).
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_avx512(
    m: &mut MonoMaker,
    l: &mut [f64],
    r: &mut [f64],
    w: impl Fn(usize) -> f64,
    first_flush: usize,
    post: f64,
    readout: &mut Readout,
) {
    // In locals (registers) for the loop.
    let mut ro = *readout;
    let posts = _mm512_set1_pd(post);
    let n = l.len().min(r.len());
    let (l, r) = (&mut l[..n], &mut r[..n]);
    let c = Wide::new(&m.coefs[0], &m.coefs[1]);
    let (f0, f1) = (m.first[0].states(), m.first[1].states());
    let (s0, s1) = (m.second[0].states(), m.second[1].states());
    let mut st = [
        _mm512_setr_pd(
            f0.0[0], f0.0[1], f1.0[0], f1.0[1], 0.0, s0.0[0], s1.0[0], 0.0,
        ),
        _mm512_setr_pd(
            f0.1[0], f0.1[1], f1.1[0], f1.1[1], 0.0, s0.1[0], s1.1[0], 0.0,
        ),
    ];
    let zero = _mm512_setzero_pd();
    let mut out = Recent {
        newest: zero,
        middle: zero,
        oldest: zero,
    };
    // (t − first_flush) mod CHUNK.
    let mut phase = (CHUNK - first_flush % CHUNK) % CHUNK;
    let live = |t: usize, lo: usize| t >= lo && t < n + lo;
    let mut t = 0;
    while t < n + 3 * D512 {
        if t >= 3 * D512 && t + GROUP <= n {
            // Every section has a frame for the next GROUP steps.
            let i = t - 3 * D512;
            let widths = _mm512_setr_pd(
                w(i),
                w(i + 1),
                w(i + 2),
                w(i + 3),
                w(i + 4),
                w(i + 5),
                w(i + 6),
                w(i + 7),
            );
            // Frames t … t + GROUP − 1 in: frame t + j's mid and side are lanes 2·(j / 2),
            // 2·(j / 2) + 1 of frames[j % 2].
            let (lt, rt) = (&l[t..t + GROUP], &r[t..t + GROUP]);
            // SAFETY: GROUP (eight) doubles each.
            let (lt, rt) = unsafe { (_mm512_loadu_pd(lt.as_ptr()), _mm512_loadu_pd(rt.as_ptr())) };
            let mid = _mm512_mul_pd(c.half, _mm512_add_pd(lt, rt));
            let side = _mm512_mul_pd(c.half, _mm512_sub_pd(lt, rt));
            let frames = [_mm512_unpacklo_pd(mid, side), _mm512_unpackhi_pd(mid, side)];
            // Some of these steps flush a section (else none does).
            let flushes = phase <= 3 * D512 || phase + GROUP > CHUNK;
            // The (side, mid) pair of each frame leaving, in order.
            let mut pairs = [0.0f64; 2 * GROUP];
            macro_rules! steps {
                ($flushes:expr; $($j:literal)+) => {$(
                    let (next, y) = c.tick(st, frames[$j % 2], $j / 2, out.oldest);
                    st = next;
                    if $flushes {
                        let lanes = flushed_at((phase + $j) % CHUNK);
                        if lanes != 0 {
                            st = flush512(st, lanes);
                        }
                    }
                    // SAFETY: the CPU has AVX-512F; pairs holds GROUP pairs.
                    unsafe { store_quarter::<3>(pairs.as_mut_ptr().add(2 * $j), y) };
                    out.push(y);
                )+};
            }
            // Two copies, so that the steps of most groups test nothing.
            if flushes {
                steps!(true; 0 1 2 3 4 5 6 7);
            } else {
                steps!(false; 0 1 2 3 4 5 6 7);
            }
            // Frames t − 3·D512 … out.
            // SAFETY: 2·GROUP doubles.
            let (a, b) = unsafe {
                let p = pairs.as_ptr();
                (_mm512_loadu_pd(p), _mm512_loadu_pd(p.add(GROUP)))
            };
            let sides = _mm512_permutex2var_pd(a, c.sides, b);
            let mids = _mm512_permutex2var_pd(a, c.mids, b);
            let scaled = _mm512_mul_pd(widths, sides);
            let (lo, rt) = (_mm512_add_pd(mids, scaled), _mm512_sub_pd(mids, scaled));
            // The readout's sums, frame by frame in order, the chunk closed after the frame of
            // a chunk boundary (the one leaving as the last section flushes).
            let mut products = [[0.0f64; GROUP]; 3];
            // SAFETY: GROUP doubles each.
            unsafe {
                _mm512_storeu_pd(products[0].as_mut_ptr(), _mm512_mul_pd(lo, rt));
                _mm512_storeu_pd(products[1].as_mut_ptr(), _mm512_mul_pd(lo, lo));
                _mm512_storeu_pd(products[2].as_mut_ptr(), _mm512_mul_pd(rt, rt));
            }
            let close = (CHUNK + 3 * D512 - phase) % CHUNK;
            for j in 0..GROUP {
                // SAFETY: the CPU has AVX-512F; frame j's products are in the rows.
                unsafe { add_products(&mut ro.sums, products.as_ptr().cast::<f64>().add(j)) };
                if j == close {
                    ro.close_chunk();
                }
            }
            let (li, ri) = (&mut l[i..i + GROUP], &mut r[i..i + GROUP]);
            // SAFETY: GROUP doubles each.
            unsafe {
                _mm512_storeu_pd(li.as_mut_ptr(), _mm512_mul_pd(lo, posts));
                _mm512_storeu_pd(ri.as_mut_ptr(), _mm512_mul_pd(rt, posts));
            }
            phase = (phase + GROUP) % CHUNK;
            t += GROUP;
            continue;
        }
        // The pipeline filling or draining (or a block's last frames): a step at a time, the
        // lanes without a frame masked.
        let input = if t < n {
            _mm512_zextpd128_pd512(_mm_set_pd(0.5 * (l[t] - r[t]), 0.5 * (l[t] + r[t])))
        } else {
            zero
        };
        let (next, y) = c.tick(st, input, 0, out.oldest);
        // Lanes with a frame at this step advance; the others keep their state.
        let mut advance: __mmask8 = 0;
        for (s, &lanes) in SECTION_LANES.iter().enumerate() {
            if live(t, s * D512) {
                advance |= lanes;
            }
        }
        st = [
            _mm512_mask_blend_pd(advance, st[0], next[0]),
            _mm512_mask_blend_pd(advance, st[1], next[1]),
        ];
        let flushed = flushed_at(phase) & advance;
        if flushed != 0 {
            st = flush512(st, flushed);
        }
        if t >= 3 * D512 {
            let i = t - 3 * D512;
            let pair = quarter::<3>(y);
            let (side, mid) = (
                _mm_cvtsd_f64(pair),
                _mm_cvtsd_f64(_mm_unpackhi_pd(pair, pair)),
            );
            let wi = w(i);
            let (a, b) = (mid + wi * side, mid - wi * side);
            ro.add(a, b);
            l[i] = a * post;
            r[i] = b * post;
            if phase == 3 * D512 {
                ro.close_chunk();
            }
        }
        phase = (phase + 1) % CHUNK;
        out.push(y);
        t += 1;
    }
    let mut a = [0.0f64; 8];
    let mut b = [0.0f64; 8];
    // SAFETY: eight doubles each.
    unsafe {
        _mm512_storeu_pd(a.as_mut_ptr(), st[0]);
        _mm512_storeu_pd(b.as_mut_ptr(), st[1]);
    }
    m.first[0].set_states([a[0], a[1]], [b[0], b[1]]);
    m.first[1].set_states([a[2], a[3]], [b[2], b[3]]);
    for (s, sec) in m.second.iter_mut().enumerate() {
        // Lane 1 of the second pass carries zeros in the frame-by-frame path (its state stays
        // zero, which a flush keeps): it is left as it is.
        let (ic1, ic2) = sec.states();
        sec.set_states([a[5 + s], ic1[1]], [b[5 + s], ic2[1]]);
    }
    *readout = ro;
}

const _: () = assert!(GROUP == 8, "run_avx512 runs eight steps a group");

/// The outputs of the last [`D512`] steps, in three registers (an array of them stayed in
/// memory, its store-to-load forwarding on the path from one section to the next).
#[derive(Clone, Copy)]
struct Recent {
    newest: __m512d,
    middle: __m512d,
    oldest: __m512d,
}

const _: () = assert!(D512 == 3, "Recent keeps three steps");

impl Recent {
    /// `y` in as the newest, the oldest out.
    #[inline(always)]
    fn push(&mut self, y: __m512d) {
        self.oldest = self.middle;
        self.middle = self.newest;
        self.newest = y;
    }
}

/// Lanes `2Q` and `2Q + 1` of `v` (AVX-512F has no 64-bit lane extract of its own).
#[target_feature(enable = "avx512f")]
#[inline]
fn quarter<const Q: i32>(v: __m512d) -> __m128d {
    _mm_castps_pd(_mm512_extractf32x4_ps::<Q>(_mm512_castpd_ps(v)))
}
