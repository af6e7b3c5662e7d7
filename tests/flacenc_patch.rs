//! The patched flacenc (vendor/flacenc/PATCHED.md): for the LPC orders stemgraph uses (up to
//! 12 lags), its auto-correlation runs with the lags in AVX2 registers, which start after the
//! first 11 samples (before them some lag reaches before the signal, and the scalar loop runs).
//! Around that start and at the orders where a vector is full or just begun, the values are
//! those of the portable loop, bit for bit. (tests/flac.rs compares whole FLAC files of both
//! builds.)

/// A windowed-looking signal at `scale`: a tone and noise.
fn signal(len: usize, scale: f32, state: &mut u64) -> Vec<f32> {
    (0..len)
        .map(|i| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            let noise = (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            scale * ((i as f32 * 0.05).sin() * 0.7 + noise)
        })
        .collect()
}

#[test]
fn the_avx2_auto_correlation_is_the_portable_one_around_its_start() {
    #[cfg(target_arch = "x86_64")]
    if !std::arch::is_x86_feature_detected!("fma") || !std::arch::is_x86_feature_detected!("avx2") {
        eprintln!("note: this CPU has no AVX2 and FMA: both take the portable loop");
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in [12, 13, 14, 15, 23, 4096] {
        for scale in [1e-3f32, 1.0, 8_388_607.0] {
            let signal = signal(len, scale, &mut state);
            for order in [1, 2, 4, 5, 8, 9, 12] {
                let corr = |portable: bool| {
                    flacenc::force_portable_lpc(portable);
                    let mut dest = vec![0.0f64; order];
                    flacenc::auto_correlation_f64(order, &signal, &mut dest);
                    flacenc::force_portable_lpc(false);
                    dest.iter().map(|x| x.to_bits()).collect::<Vec<u64>>()
                };
                let want = corr(true);
                assert!(want.iter().any(|&b| b != 0), "{len} {order}: not all zero");
                assert_eq!(corr(false), want, "{len} samples at {scale}, order {order}");
            }
        }
    }
}
