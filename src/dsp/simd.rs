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

/// 0: not decided yet; 1: portable; 2: AVX2; 3: AVX2 and fused multiply-add.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Decides which builds run (reads `STEMGRAPH_SIMD`, asks the CPU), once. Control side only:
/// the graph compiler, the processor registry and the command line call it before anything is
/// processed; after the first call it is a load.
pub fn init() {
    if LEVEL.load(Ordering::Relaxed) == 0 {
        decide();
    }
}

/// Whether the AVX2 builds run: the CPU has AVX2 and `STEMGRAPH_SIMD` is not `portable`.
/// A load of what [`init`] decided, nothing more (safe in `process`); before [`init`], the
/// portable build (the same bits, only slower).
#[inline]
pub fn avx2() -> bool {
    #[cfg(test)]
    if FORCED_PORTABLE.with(std::cell::Cell::get) {
        return false;
    }
    LEVEL.load(Ordering::Relaxed) >= 2
}

#[cold]
fn decide() {
    let portable = std::env::var_os("STEMGRAPH_SIMD").is_some_and(|v| v == "portable");
    #[cfg(target_arch = "x86_64")]
    let level = if portable || !std::arch::is_x86_feature_detected!("avx2") {
        1
    } else if std::arch::is_x86_feature_detected!("fma") {
        3
    } else {
        2
    };
    #[cfg(not(target_arch = "x86_64"))]
    let level = {
        let _ = portable;
        1
    };
    LEVEL.store(level, Ordering::Relaxed);
}

/// Whether the AVX2 builds run and the CPU also has fused multiply-add. Only measurements
/// (meter readings, never audio) use it: a fused multiply-add rounds once where the portable
/// build rounds twice, so readings may differ between the builds in the last bits. Asked when a
/// meter is made (control side), so it decides (see [`init`]) if nothing did yet.
#[inline]
pub fn avx2_fma() -> bool {
    init();
    #[cfg(test)]
    if FORCED_PORTABLE.with(std::cell::Cell::get) {
        return false;
    }
    LEVEL.load(Ordering::Relaxed) == 3
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
    init();
    if avx2() {
        "avx2"
    } else {
        "portable"
    }
}

#[cfg(test)]
thread_local! {
    /// Set by [`force_portable`] on the test thread that asked.
    static FORCED_PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Forces the portable build (`true`) or lets the CPU decide (`false`) on the calling thread:
/// for unit tests that compare the two. Only that thread sees it, so the tests running beside it
/// keep one build throughout (a process-wide switch made a meter's block-size test compare an
/// AVX2+FMA reading with a portable one now and then).
#[cfg(test)]
pub fn force_portable(portable: bool) {
    FORCED_PORTABLE.with(|f| f.set(portable));
}
