//! Handing blocks from one thread to another: copies whose stores do not first pull the
//! destination's cache lines back from the thread that read them last.

/// Copies `src` into `dst` (the same length) with non-temporal stores where the CPU has them:
/// the hand-over set is read next by the other thread, and its lines were last in that
/// thread's cache, so an ordinary store first takes them back from there (measured on M:
/// the worker's copy into the set cost four times the main thread's copy out of it). Bits are
/// copied exactly either way. [`store_fence`] before the set is handed over.
pub fn stream_copy(dst: &mut [f64], src: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_pd, _mm_stream_pd};
        let n = dst.len().min(src.len());
        // Non-temporal stores of two lanes need 16-byte alignment: a scalar head first.
        let head = (dst.as_ptr().align_offset(16)).min(n);
        dst[..head].copy_from_slice(&src[..head]);
        let mut i = head;
        while i + 2 <= n {
            // SAFETY: i + 2 <= n elements in both; dst + i is 16-byte aligned (after the
            // head, every step moves 16 bytes); SSE2 is part of x86_64.
            unsafe {
                _mm_stream_pd(dst.as_mut_ptr().add(i), _mm_loadu_pd(src.as_ptr().add(i)));
            }
            i += 2;
        }
        dst[i..n].copy_from_slice(&src[i..n]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Orders [`stream_copy`]'s stores before the hand-over that publishes them.
pub fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_copy_copies_every_bit_at_every_offset_and_length() {
        let src: Vec<f64> = (0..203)
            .map(|i| (i as f64 * 0.37).sin() * 1e-3 + f64::from(i))
            .collect();
        let mut src = src;
        src[5] = f64::NAN;
        src[6] = -0.0;
        for offset in 0..3 {
            for len in [0, 1, 2, 3, 7, 64, 200] {
                let mut dst = vec![1.5; 203];
                stream_copy(&mut dst[offset..offset + len], &src[..len]);
                store_fence();
                assert!(
                    dst[offset..offset + len]
                        .iter()
                        .zip(&src[..len])
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "offset {offset}, {len} values"
                );
                assert!(dst[..offset].iter().all(|&x| x == 1.5));
                assert!(dst[offset + len..].iter().all(|&x| x == 1.5));
            }
        }
    }
}
