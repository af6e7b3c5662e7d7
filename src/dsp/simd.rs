//! Choosing the instruction set at run time.
//!
//! Hot loops are written once, as plain Rust marked `#[inline(always)]`, and compiled twice: for
//! the portable baseline (SSE2 on x86-64) and, inside a `#[target_feature(enable = "avx2")]`
//! wrapper, for CPUs with AVX2, where the compiler uses 4-wide vectors. The wrappers ask
//! [`avx2`] which to call.
//!
//! Both builds do the same IEEE operations in the same order (no fused multiply-add: Rust never
//! contracts `a * b + c` on its own), so they give the same bits; setting `STEMGRAPH_SIMD=portable`
//! forces the portable build (tests compare the two).

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not decided yet; 1: portable; 2: AVX2.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Whether the AVX2 builds run: the CPU has AVX2 and `STEMGRAPH_SIMD` is not `portable`.
/// Decided once (the first call reads the environment; it never allocates after that).
#[inline]
pub fn avx2() -> bool {
    match LEVEL.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => decide(),
    }
}

#[cold]
fn decide() -> bool {
    let portable = std::env::var_os("STEMGRAPH_SIMD").is_some_and(|v| v == "portable");
    #[cfg(target_arch = "x86_64")]
    let fast = !portable && std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let fast = {
        let _ = portable;
        false
    };
    LEVEL.store(if fast { 2 } else { 1 }, Ordering::Relaxed);
    fast
}

/// Whether the AVX2 builds run and the CPU also has fused multiply-add. Only measurements
/// (meter readings, never audio) use it: a fused multiply-add rounds once where the portable
/// build rounds twice, so readings may differ between the builds in the last bits.
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx2() && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Which builds run, for reports: `"avx2+fma"` (meters use fused multiply-add), `"avx2"` or
/// `"portable"`.
pub fn build_name() -> &'static str {
    if avx2_fma() {
        "avx2+fma"
    } else {
        path_name()
    }
}

/// Which build runs, for reports: `"avx2"` or `"portable"`.
pub fn path_name() -> &'static str {
    if avx2() {
        "avx2"
    } else {
        "portable"
    }
}

/// Forces the portable build (`true`) or lets the CPU decide (`false`): for tests and benches
/// that compare the two.
pub fn force_portable(portable: bool) {
    if portable {
        LEVEL.store(1, Ordering::Relaxed);
    } else {
        LEVEL.store(0, Ordering::Relaxed);
        if std::env::var_os("STEMGRAPH_SIMD").is_some_and(|v| v == "portable") {
            LEVEL.store(1, Ordering::Relaxed);
        } else {
            decide();
        }
    }
}
