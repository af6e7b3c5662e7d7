//! The AVX2 builds of the block kernels ([`super`]), and the AVX-512 build of the half-band dot
//! products: the same products and sums per output in the same order as the portable ones (no
//! fused multiply-add), so the same bits.

use std::arch::x86_64::*;

/// [`super::halfband_dots`] with AVX2 intrinsics: eight outputs (two registers) per pass over
/// the taps.
#[target_feature(enable = "avx2")]
pub(super) fn halfband_dots(a: &[f64], ext: &[f64], out: &mut [f64]) {
    let taps = a.len();
    let h = taps - 1;
    let whole = taps / 4 * 4;
    let n = out.len();
    assert!(ext.len() >= h + n);
    let p = ext.as_ptr();
    let mut t = 0;
    // SAFETY: every load reads ext[h + t − j .. h + t − j + 4] (or + 8) with j ≤ h and
    // t + 8 ≤ n (t + 4 ≤ n), inside `ext` by the assertion; stores stay inside `out`.
    unsafe {
        while t + 8 <= n {
            let mut s = [_mm256_setzero_pd(); 8];
            let mut q = 0;
            while q < whole {
                for k in 0..4 {
                    let c = _mm256_broadcast_sd(&a[q + k]);
                    let x = p.add(h + t - q - k);
                    s[k] = _mm256_add_pd(s[k], _mm256_mul_pd(c, _mm256_loadu_pd(x)));
                    s[4 + k] = _mm256_add_pd(s[4 + k], _mm256_mul_pd(c, _mm256_loadu_pd(x.add(4))));
                }
                q += 4;
            }
            let mut lo = _mm256_add_pd(_mm256_add_pd(s[0], s[2]), _mm256_add_pd(s[1], s[3]));
            let mut hi = _mm256_add_pd(_mm256_add_pd(s[4], s[6]), _mm256_add_pd(s[5], s[7]));
            for (j, c) in a.iter().enumerate().skip(whole) {
                let c = _mm256_broadcast_sd(c);
                let x = p.add(h + t - j);
                lo = _mm256_add_pd(lo, _mm256_mul_pd(c, _mm256_loadu_pd(x)));
                hi = _mm256_add_pd(hi, _mm256_mul_pd(c, _mm256_loadu_pd(x.add(4))));
            }
            _mm256_storeu_pd(out.as_mut_ptr().add(t), lo);
            _mm256_storeu_pd(out.as_mut_ptr().add(t + 4), hi);
            t += 8;
        }
        while t + 4 <= n {
            let mut s = [_mm256_setzero_pd(); 4];
            let mut q = 0;
            while q < whole {
                for k in 0..4 {
                    let c = _mm256_broadcast_sd(&a[q + k]);
                    let x = p.add(h + t - q - k);
                    s[k] = _mm256_add_pd(s[k], _mm256_mul_pd(c, _mm256_loadu_pd(x)));
                }
                q += 4;
            }
            let mut tot = _mm256_add_pd(_mm256_add_pd(s[0], s[2]), _mm256_add_pd(s[1], s[3]));
            for (j, c) in a.iter().enumerate().skip(whole) {
                let c = _mm256_broadcast_sd(c);
                tot = _mm256_add_pd(tot, _mm256_mul_pd(c, _mm256_loadu_pd(p.add(h + t - j))));
            }
            _mm256_storeu_pd(out.as_mut_ptr().add(t), tot);
            t += 4;
        }
    }
    if t < n {
        super::halfband_dots_portable(a, &ext[t..h + n], &mut out[t..]);
    }
}

/// [`super::delay_rows_peaks`] with AVX2 intrinsics (at most
/// [`super::DELAY_ROWS_AVX2`] rows, kept in registers).
#[target_feature(enable = "avx2")]
pub(super) fn delay_rows_peaks(coef: &[[f64; 4]], ext: &[f64], out: &mut [f64]) {
    let h = coef.len() - 1;
    let n = out.len();
    assert!(ext.len() >= h + n);
    let sign = _mm256_set1_pd(-0.0);
    // SAFETY: rows are four doubles; `ext` reads stay below h + n by the assertion.
    unsafe {
        let rows: [__m256d; super::DELAY_ROWS_AVX2] = std::array::from_fn(|r| {
            if r < coef.len() {
                _mm256_loadu_pd(coef[r].as_ptr())
            } else {
                _mm256_setzero_pd()
            }
        });
        let nrows = coef.len().min(super::DELAY_ROWS_AVX2);
        for (t, mo) in out.iter_mut().enumerate() {
            let mut acc = _mm256_setzero_pd();
            for (r, row) in rows.iter().enumerate().take(nrows) {
                let xv = _mm256_broadcast_sd(ext.get_unchecked(h + t - r));
                acc = _mm256_add_pd(acc, _mm256_mul_pd(*row, xv));
            }
            let a = _mm256_andnot_pd(sign, acc);
            let m2 = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd::<1>(a));
            let m1 = _mm_max_sd(m2, _mm_unpackhi_pd(m2, m2));
            *mo = _mm_cvtsd_f64(m1);
        }
    }
}

/// [`super::halfband_dots`] with AVX-512F intrinsics: sixteen outputs (two registers) per pass
/// over the taps, each lane through the same products and sums in the same order as the AVX2
/// and portable builds (the same bits); the last under-sixteen outputs by the AVX2 build.
///
/// # Safety
/// The CPU must have AVX-512F and AVX2.
#[target_feature(enable = "avx2,avx512f")]
pub(super) unsafe fn halfband_dots_avx512(a: &[f64], ext: &[f64], out: &mut [f64]) {
    let taps = a.len();
    let h = taps - 1;
    let whole = taps / 4 * 4;
    let n = out.len();
    assert!(ext.len() >= h + n);
    let p = ext.as_ptr();
    let mut t = 0;
    // SAFETY: every load reads ext[h + t − j .. h + t − j + 16] with j ≤ h and t + 16 ≤ n,
    // inside `ext` by the assertion; stores stay inside `out`.
    unsafe {
        while t + 16 <= n {
            let mut s = [_mm512_setzero_pd(); 8];
            let mut q = 0;
            while q < whole {
                for k in 0..4 {
                    let c = _mm512_set1_pd(a[q + k]);
                    let x = p.add(h + t - q - k);
                    s[k] = _mm512_add_pd(s[k], _mm512_mul_pd(c, _mm512_loadu_pd(x)));
                    s[4 + k] = _mm512_add_pd(s[4 + k], _mm512_mul_pd(c, _mm512_loadu_pd(x.add(8))));
                }
                q += 4;
            }
            let mut lo = _mm512_add_pd(_mm512_add_pd(s[0], s[2]), _mm512_add_pd(s[1], s[3]));
            let mut hi = _mm512_add_pd(_mm512_add_pd(s[4], s[6]), _mm512_add_pd(s[5], s[7]));
            for (j, c) in a.iter().enumerate().skip(whole) {
                let c = _mm512_set1_pd(*c);
                let x = p.add(h + t - j);
                lo = _mm512_add_pd(lo, _mm512_mul_pd(c, _mm512_loadu_pd(x)));
                hi = _mm512_add_pd(hi, _mm512_mul_pd(c, _mm512_loadu_pd(x.add(8))));
            }
            _mm512_storeu_pd(out.as_mut_ptr().add(t), lo);
            _mm512_storeu_pd(out.as_mut_ptr().add(t + 8), hi);
            t += 16;
        }
    }
    if t < n {
        halfband_dots(a, &ext[t..h + n], &mut out[t..]);
    }
}
