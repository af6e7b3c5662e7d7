//! The block kernels of every oversampling and true-peak filter, portable and AVX2: each
//! computes many consecutive outputs of one FIR at a time (the taps as the outer loop, several
//! outputs side by side in the inner one), and every output goes through the same products and
//! sums in the same order whatever the block, its alignment or the instruction set, so results
//! are bit-identical to the one-sample-at-a-time forms they replace (unit tests compare).
//!
//! - [`halfband_dots`]: the odd-tap dot products of a half-band stage (the cascades of the
//!   limiter's detector and of the saturation's oversampler, both directions).
//! - [`delay_rows_peaks`]: a direct polyphase interpolator with every phase of one output in one
//!   vector, reduced to the largest magnitude per input step (the BS.1770-meter reading of the
//!   limiter's detector).
//! - [`folded`]: a direct polyphase interpolator folded by its time symmetry, with a bound that
//!   skips outputs which cannot raise a running peak (the true-peak meter).

pub(crate) mod folded;

#[cfg(target_arch = "x86_64")]
mod avx2;

/// `out[t] = dot(a, w_t)` with `w_t[j] = ext[h + t − j]` (h = `a.len() − 1`), summed as a
/// four-lane dot product sums: four partial sums over the taps in steps of four,
/// `(s0 + s2) + (s1 + s3)`, then the remaining taps one by one. AVX2 when the CPU has it,
/// AVX-512 when it has that (sixteen outputs per pass over the taps: twice the products per
/// instruction of this throughput-bound loop).
#[inline(always)]
pub(crate) fn halfband_dots(a: &[f64], ext: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F and AVX2 (checked at run time).
        unsafe { avx2::halfband_dots_avx512(a, ext, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        unsafe { avx2::halfband_dots(a, ext, out) };
        return;
    }
    halfband_dots_portable(a, ext, out);
}

/// [`halfband_dots`] without vector intrinsics: four outputs at a time share each tap.
#[inline(always)]
pub(crate) fn halfband_dots_portable(a: &[f64], ext: &[f64], out: &mut [f64]) {
    let taps = a.len();
    let h = taps - 1;
    let whole = taps / 4 * 4;
    let n = out.len();
    let quads = n / 4 * 4;
    let mut t = 0;
    while t < quads {
        let mut s = [[0.0f64; 4]; 4];
        let mut q = 0;
        while q < whole {
            for k in 0..4 {
                let c = a[q + k];
                let x = &ext[h + t - q - k..h + t - q - k + 4];
                for l in 0..4 {
                    s[k][l] += c * x[l];
                }
            }
            q += 4;
        }
        let mut tot = [0.0f64; 4];
        for l in 0..4 {
            tot[l] = (s[0][l] + s[2][l]) + (s[1][l] + s[3][l]);
        }
        for (j, &c) in a.iter().enumerate().skip(whole) {
            let x = &ext[h + t - j..h + t - j + 4];
            for l in 0..4 {
                tot[l] += c * x[l];
            }
        }
        out[t..t + 4].copy_from_slice(&tot);
        t += 4;
    }
    for t in quads..n {
        let mut s = [0.0f64; 4];
        let mut q = 0;
        while q < whole {
            for k in 0..4 {
                s[k] += a[q + k] * ext[h + t - q - k];
            }
            q += 4;
        }
        let mut tot = (s[0] + s[2]) + (s[1] + s[3]);
        for (j, &c) in a.iter().enumerate().skip(whole) {
            tot += c * ext[h + t - j];
        }
        out[t] = tot;
    }
}

/// Rows of at most this many delays take the AVX2 path of [`delay_rows_peaks`].
pub(crate) const DELAY_ROWS_AVX2: usize = 24;

/// A direct polyphase interpolator's largest output magnitude per input step: for output `t`,
/// `acc[p] = Σ_r rows[r][p] · ext[h + t − r]` (h = `rows.len() − 1`, rows in order, every phase
/// `p` in one four-lane vector), then `max_p |acc[p]|`. AVX2 when the CPU has it.
#[inline(always)]
pub(crate) fn delay_rows_peaks(rows: &[[f64; 4]], ext: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() && rows.len() <= DELAY_ROWS_AVX2 {
        // SAFETY: the CPU has AVX2 (checked at run time).
        unsafe { avx2::delay_rows_peaks(rows, ext, out) };
        return;
    }
    delay_rows_peaks_portable(rows, ext, out);
}

/// [`delay_rows_peaks`] without vector intrinsics.
#[inline(always)]
pub(crate) fn delay_rows_peaks_portable(rows: &[[f64; 4]], ext: &[f64], out: &mut [f64]) {
    let h = rows.len() - 1;
    for (t, mo) in out.iter_mut().enumerate() {
        let mut acc = [0.0f64; 4];
        for (r, row) in rows.iter().enumerate() {
            let xv = ext[h + t - r];
            for p in 0..4 {
                acc[p] += row[p] * xv;
            }
        }
        let mut m = 0.0f64;
        for a in &acc {
            let a = a.abs();
            if a > m {
                m = a;
            }
        }
        *mo = m;
    }
}

/// A four-lane dot product of `a` and `b` (equal lengths): four partial sums over the elements
/// in steps of four, `(s0 + s2) + (s1 + s3)`, then the rest one by one: the order
/// [`halfband_dots`] sums each output in.
#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = [0.0; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            s[i] += x[i] * y[i];
        }
    }
    let mut t = (s[0] + s[2]) + (s[1] + s[3]);
    for (x, y) in ra.iter().zip(rb) {
        t += x * y;
    }
    t
}

/// [`dot`] for a fixed length `N` (a multiple of four), unrolled.
#[inline(always)]
pub(crate) fn dot_n<const N: usize>(a: &[f64; N], w: &[f64]) -> f64 {
    let w: &[f64; N] = w.try_into().expect("window of N");
    let mut s = [0.0; 4];
    for k in 0..N / 4 {
        for i in 0..4 {
            s[i] += a[4 * k + i] * w[4 * k + i];
        }
    }
    (s[0] + s[2]) + (s[1] + s[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut r = seed;
        (0..n)
            .map(|_| {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn halfband_dots_match_the_scalar_dot_on_every_path() {
        for taps in [8usize, 12, 13, 92] {
            let a = noise(taps, 7);
            let ext = noise(taps - 1 + 300, 9);
            for n in [1usize, 3, 4, 7, 8, 9, 16, 17, 29, 300] {
                let want: Vec<f64> = (0..n)
                    .map(|t| {
                        let w: Vec<f64> = (0..taps).map(|j| ext[taps - 1 + t - j]).collect();
                        dot(&a, &w)
                    })
                    .collect();
                for portable in [true, false] {
                    crate::dsp::simd::force_portable(portable);
                    let mut got = vec![0.0; n];
                    halfband_dots(&a, &ext[..taps - 1 + n], &mut got);
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(g, w)| g.to_bits() == w.to_bits()),
                        "{taps} taps, {n} outputs, portable {portable}"
                    );
                }
                // Each x86 build by name, whichever the dispatch picks on this CPU.
                #[cfg(target_arch = "x86_64")]
                {
                    let ext = &ext[..taps - 1 + n];
                    let mut builds: Vec<(&str, Vec<f64>)> = Vec::new();
                    if std::arch::is_x86_feature_detected!("avx2") {
                        let mut got = vec![0.0; n];
                        // SAFETY: the CPU has AVX2.
                        unsafe { avx2::halfband_dots(&a, ext, &mut got) };
                        builds.push(("AVX2", got));
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("avx512f")
                    {
                        let mut got = vec![0.0; n];
                        // SAFETY: the CPU has AVX-512F and AVX2.
                        unsafe { avx2::halfband_dots_avx512(&a, ext, &mut got) };
                        builds.push(("AVX-512", got));
                    }
                    assert!(
                        !builds.is_empty() || std::env::var_os("CI").is_none(),
                        "no SIMD build compared"
                    );
                    for (build, got) in builds {
                        assert!(
                            got.iter()
                                .zip(&want)
                                .all(|(g, w)| g.to_bits() == w.to_bits()),
                            "{taps} taps, {n} outputs, {build}"
                        );
                    }
                }
            }
        }
        crate::dsp::simd::force_portable(false);
    }

    #[test]
    fn delay_rows_peaks_agree_on_every_path() {
        let rows: Vec<[f64; 4]> = (0..12)
            .map(|r| {
                let v = noise(4, r as u64 + 1);
                [v[0], v[1], v[2], v[3]]
            })
            .collect();
        let ext = noise(11 + 100, 3);
        let mut want = vec![0.0; 100];
        delay_rows_peaks_portable(&rows, &ext, &mut want);
        // The reading of output t by hand.
        let t = 37;
        let by_hand = (0..4)
            .map(|p| {
                (0..12)
                    .fold(0.0, |s, r| s + rows[r][p] * ext[11 + t - r])
                    .abs()
            })
            .fold(0.0, f64::max);
        assert_eq!(want[t], by_hand);
        crate::dsp::simd::force_portable(false);
        let mut got = vec![0.0; 100];
        delay_rows_peaks(&rows, &ext, &mut got);
        assert!(got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits()));
    }
}
