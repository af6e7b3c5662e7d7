//! The flat TPDF dither's vector kernels on stereo blocks: both channels' generators side by
//! side in the two 64-bit lanes of 128-bit registers, their noise turned into TPDF values and
//! added four frames a step with AVX2, eight with AVX-512. Each kernel hands every step's
//! dithered values (integers, clamped to the word length, as `f64`) to its caller, which stores
//! them in place ([`super::Dither`]) or straight into a file's integers and the values read
//! back from them ([`super::TpdfQuantizer`]). The same noise and the same operations on it, lane
//! by lane, as the portable loops: the same bits.

use super::Xoshiro256;
use std::arch::x86_64::*;

/// Both channels' generators: word `k` of the state in `s[k]`, lane 0 the left channel's, lane 1
/// the right's.
type Pair = [__m128i; 4];

/// The generators in lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn load_pair(gl: &Xoshiro256, gr: &Xoshiro256) -> Pair {
    std::array::from_fn(|k| _mm_set_epi64x(gr.s[k] as i64, gl.s[k] as i64))
}

/// The generators back from their lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn store_pair(s: &Pair, gl: &mut Xoshiro256, gr: &mut Xoshiro256) {
    for (k, v) in s.iter().enumerate() {
        gl.s[k] = _mm_cvtsi128_si64(*v) as u64;
        gr.s[k] = _mm_extract_epi64::<1>(*v) as u64;
    }
}

/// One step of both generators ([`Xoshiro256::next_u64`]'s state update); gives the `s[1]` the
/// step's output is scrambled from.
#[inline]
#[target_feature(enable = "avx2")]
fn step_avx2(s: &mut Pair) -> __m128i {
    let s1 = s[1];
    let t = _mm_slli_epi64::<17>(s1);
    s[2] = _mm_xor_si128(s[2], s[0]);
    s[3] = _mm_xor_si128(s[3], s[1]);
    s[1] = _mm_xor_si128(s[1], s[2]);
    s[0] = _mm_xor_si128(s[0], s[3]);
    s[2] = _mm_xor_si128(s[2], t);
    s[3] = _mm_or_si128(_mm_slli_epi64::<45>(s[3]), _mm_srli_epi64::<19>(s[3]));
    s1
}

/// `rotl(s1 · 5, 7) · 9` (wrapping), then [`Xoshiro256::tpdf`]: the halves as exact doubles (a
/// 32-bit integer in the mantissa of 2⁵², less 2⁵²), `(a + b) · 2⁻³² − 1`.
#[inline]
#[target_feature(enable = "avx2")]
fn tpdf_avx2(s1: __m256i) -> __m256d {
    let m5 = _mm256_add_epi64(_mm256_slli_epi64::<2>(s1), s1);
    let rot = _mm256_or_si256(_mm256_slli_epi64::<7>(m5), _mm256_srli_epi64::<57>(m5));
    let x = _mm256_add_epi64(_mm256_slli_epi64::<3>(rot), rot);
    let exp = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let two52 = _mm256_set1_pd(4_503_599_627_370_496.0);
    let as_f64 = |v: __m256i| _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, exp)), two52);
    let a = as_f64(_mm256_srli_epi64::<32>(x));
    let b = as_f64(_mm256_and_si256(x, _mm256_set1_epi64x(0xFFFF_FFFF)));
    _mm256_sub_pd(
        _mm256_mul_pd(_mm256_add_pd(a, b), _mm256_set1_pd(1.0 / 4_294_967_296.0)),
        _mm256_set1_pd(1.0),
    )
}

/// Runs both generators over `frames` frames (the whole groups of four), handing each group's
/// TPDF noise to `each(n, left, right)` (frames `n .. n + 4`); returns the frames done, the
/// generators advanced past them.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn noise_avx2(
    frames: usize,
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    mut each: impl FnMut(usize, __m256d, __m256d),
) -> usize {
    let mut s = load_pair(gl, gr);
    let mut n = 0;
    while n + 4 <= frames {
        let (a0, a1) = (step_avx2(&mut s), step_avx2(&mut s));
        let (a2, a3) = (step_avx2(&mut s), step_avx2(&mut s));
        // [L0 R0 L1 R1] and [L2 R2 L3 R3], then per channel.
        let d01 = tpdf_avx2(_mm256_set_m128i(a1, a0));
        let d23 = tpdf_avx2(_mm256_set_m128i(a3, a2));
        let dl = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpacklo_pd(d01, d23));
        let dr = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpackhi_pd(d01, d23));
        each(n, dl, dr);
        n += 4;
    }
    store_pair(&s, gl, gr);
    n
}

/// The flat dither of four samples `x` with their noise `d`, at `scale` (2^(bits−1)): the
/// integer each becomes, clamped to the word length, as `f64` (what [`super::Dither`]'s loop
/// without shaping computes before its last scaling): non-finite samples count as 0.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn flat_avx2(x: __m256d, d: __m256d, scale: f64) -> __m256d {
    let (sign, inf) = (_mm256_set1_pd(-0.0), _mm256_set1_pd(f64::INFINITY));
    let magic = _mm256_set1_pd(6_755_399_441_055_744.0);
    let finite = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, x), inf);
    let w = _mm256_and_pd(_mm256_mul_pd(x, _mm256_set1_pd(scale)), finite);
    let q = _mm256_sub_pd(_mm256_add_pd(_mm256_add_pd(w, d), magic), magic);
    _mm256_min_pd(
        _mm256_max_pd(q, _mm256_set1_pd(-scale)),
        _mm256_set1_pd(scale - 1.0),
    )
}

/// One step of both generators as [`step_avx2`], in fewer instructions: three-way exclusive
/// ors and a rotation (AVX-512VL); the same state.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn step_avx512(s: &mut Pair) -> __m128i {
    const XOR3: i32 = 0x96;
    let [s0, s1, s2, s3] = *s;
    let t = _mm_slli_epi64::<17>(s1);
    let x3 = _mm_xor_si128(s3, s1);
    s[0] = _mm_ternarylogic_epi64::<XOR3>(s0, s3, s1);
    s[1] = _mm_ternarylogic_epi64::<XOR3>(s1, s2, s0);
    s[2] = _mm_ternarylogic_epi64::<XOR3>(s2, s0, t);
    s[3] = _mm_rol_epi64::<45>(x3);
    s1
}

/// [`tpdf_avx2`] on eight outputs: the scramble with a rotation instruction, the halves as exact
/// doubles (a 32-bit integer in the mantissa of 2⁵²) and `(a + b − 2³²) · 2⁻³²` computed exactly
/// (the sum an integer under 2³³), which is `(a + b) · 2⁻³² − 1` exactly, as the portable path
/// rounds nothing either: the same values.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn tpdf_avx512(s1: __m512i) -> __m512d {
    const AND_OR: i32 = 0xEA; // (a & b) | c
    let m5 = _mm512_add_epi64(_mm512_slli_epi64::<2>(s1), s1);
    let rot = _mm512_rol_epi64::<7>(m5);
    let x = _mm512_add_epi64(_mm512_slli_epi64::<3>(rot), rot);
    let exp = _mm512_set1_epi64(0x4330_0000_0000_0000);
    // 2⁵² + a and 2⁵² + b.
    let a = _mm512_castsi512_pd(_mm512_or_si512(_mm512_srli_epi64::<32>(x), exp));
    let b = _mm512_castsi512_pd(_mm512_ternarylogic_epi64::<AND_OR>(
        x,
        _mm512_set1_epi64(0xFFFF_FFFF),
        exp,
    ));
    // (2⁵² + b) − (2⁵³ + 2³²) = b − 2⁵² − 2³², exact; plus 2⁵² + a: a + b − 2³², exact.
    let c = _mm512_set1_pd(9_007_203_549_708_288.0);
    let sum = _mm512_add_pd(a, _mm512_sub_pd(b, c));
    _mm512_mul_pd(sum, _mm512_set1_pd(1.0 / 4_294_967_296.0))
}

/// [`noise_avx2`] eight frames a step (frames `n .. n + 8` to `each`).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
pub(super) fn noise_avx512(
    frames: usize,
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    mut each: impl FnMut(usize, __m512d, __m512d),
) -> usize {
    let mut s = load_pair(gl, gr);
    // The left lanes (even) and the right lanes (odd) of two vectors of four frames each.
    let evens = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    let odds = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    let four = |s: &mut Pair| {
        let (a0, a1) = (step_avx512(s), step_avx512(s));
        let (a2, a3) = (step_avx512(s), step_avx512(s));
        let lo = _mm256_set_m128i(a1, a0);
        let hi = _mm256_set_m128i(a3, a2);
        // [L0 R0 L1 R1 L2 R2 L3 R3].
        tpdf_avx512(_mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi))
    };
    let mut n = 0;
    while n + 8 <= frames {
        let d0 = four(&mut s);
        let d1 = four(&mut s);
        let dl = _mm512_permutex2var_pd(d0, evens, d1);
        let dr = _mm512_permutex2var_pd(d0, odds, d1);
        each(n, dl, dr);
        n += 8;
    }
    store_pair(&s, gl, gr);
    n
}

/// [`flat_avx2`] on eight samples.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
pub(super) fn flat_avx512(x: __m512d, d: __m512d, scale: f64) -> __m512d {
    let magic = _mm512_set1_pd(6_755_399_441_055_744.0);
    let finite = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(x), _mm512_set1_pd(f64::INFINITY));
    let w = _mm512_maskz_mul_pd(finite, x, _mm512_set1_pd(scale));
    let q = _mm512_sub_pd(_mm512_add_pd(_mm512_add_pd(w, d), magic), magic);
    _mm512_min_pd(
        _mm512_max_pd(q, _mm512_set1_pd(-scale)),
        _mm512_set1_pd(scale - 1.0),
    )
}
