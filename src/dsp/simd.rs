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
//!
//! A few kernels whose every frame is a long dependency chain (the compressor's logarithm and
//! exponential) have a third build, for AVX-512F ([`avx512`]): eight frames per instruction keep
//! twice as many chains in flight. The same operations lane by lane again: the same bits;
//! `STEMGRAPH_SIMD=avx2` keeps the AVX2 builds.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// 0: not decided yet; 1: portable; 2: AVX2; 3: AVX2 and fused multiply-add.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Whether the AVX-512 builds of the few kernels that have one run (decided with [`LEVEL`]).
static WIDE: AtomicBool = AtomicBool::new(false);

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

/// Whether the AVX-512 builds run: the AVX2 builds do, the CPU has AVX-512F and AVX-512VL and
/// `STEMGRAPH_SIMD` is not `avx2` (which keeps the AVX2 builds, for comparisons). They do the
/// same IEEE operations lane by lane as the others (eight lanes instead of four): the same bits.
/// A load, like [`avx2`].
#[inline]
pub fn avx512() -> bool {
    #[cfg(test)]
    if FORCED_AVX2.with(std::cell::Cell::get) {
        return false;
    }
    avx2() && WIDE.load(Ordering::Relaxed)
}

#[cold]
fn decide() {
    let simd = std::env::var_os("STEMGRAPH_SIMD");
    let portable = simd.as_ref().is_some_and(|v| v == "portable");
    #[cfg(target_arch = "x86_64")]
    WIDE.store(
        simd.as_ref().is_none_or(|v| v != "avx2")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl"),
        Ordering::Relaxed,
    );
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

/// Whether the AVX2 builds run and the CPU also has fused multiply-add. Measurements use it (a
/// fused multiply-add rounds once where the portable build rounds twice, so readings may differ
/// between the builds in the last bits), and the kernels whose portable build fuses too, by
/// `f64::mul_add` (the K-weighting, the EQ's sections, the dynamics' ballistics: the same bits).
/// Decides (see [`init`]) if nothing did yet.
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

#[cfg(test)]
thread_local! {
    /// Set by [`force_avx2`] on the test thread that asked.
    static FORCED_AVX2: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps the AVX2 builds (`true`: no AVX-512 build runs) or lets the CPU decide (`false`) on
/// the calling thread, as [`force_portable`] does: for unit tests that compare the AVX2 and the
/// AVX-512 builds.
#[cfg(test)]
pub fn force_avx2(avx2_only: bool) {
    FORCED_AVX2.with(|f| f.set(avx2_only));
}

/// Forces the portable build (`true`) or lets the CPU decide (`false`) on the calling thread:
/// for unit tests that compare the two. Only that thread sees it, so the tests running beside it
/// keep one build throughout (a process-wide switch made a meter's block-size test compare an
/// AVX2+FMA reading with a portable one now and then).
#[cfg(test)]
pub fn force_portable(portable: bool) {
    FORCED_PORTABLE.with(|f| f.set(portable));
}
