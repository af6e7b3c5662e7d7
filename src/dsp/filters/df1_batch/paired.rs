//! A batch of five to seven signals on AVX-512F (the strip EQs of six stems: six signals of two
//! bells): a full register of four signals and, beside it in the same loop, the rest held the
//! way [`staggered`] holds a series, their sections side by side in one register, each [`LAG`]
//! frames behind the one feeding it.
//!
//! Run one after the other, the full register and a register of the rest (two signals in half
//! its lanes) cost two recursions a frame, about twelve cycles for two sections on AMD Zen 5
//! (each section's output waits on the one two frames back through three fused multiply-adds
//! of four cycles). Staggered, the rest fills its register (two signals of two sections: eight
//! lanes), so a frame takes three registers' sections, 15 multiplies and fused multiply-adds
//! instead of 20, and in one loop the two registers' recursions overlap: the frame is bound by
//! the two multiply pipes (7.5 cycles), not by the chains. Measured on Zen 5 (the `eq batch`
//! bench of `benches/dsp_filters.rs`, six signals of two sections, alternating runs): about 9 %
//! less time than one register after the other, some 10.5 cycles a frame, short of that bound;
//! the frame's loads, stores and feed also take some 13 shuffles (the likely limit, not
//! measured: perf counts only time here).
//!
//! The loop takes groups of four frames (two at a time through [`Lanes::load2`] and
//! [`Lanes::store2`]: fewer registers in flight) from a frame whose clock position is a multiple
//! of four; with the sections four steps apart, a group's outputs
//! are the next group's inputs, and every flush falls on a group's last step. The steps while
//! the staggered pipeline fills or drains and the few before and after the groups run one at a
//! time. Every lane does the operations of [`Df1Coefs::tick`] in its order on its frames, in
//! order: the bits of the other builds.

use super::super::df1::{Df1Coefs, Df1State};
use super::super::{FlushClock, FLUSH_PERIOD};
use super::staggered::{self, Layout};
use super::{flush_sections, register_in, register_out, tick, Lanes, Zmm};
use std::arch::x86_64::*;

/// Steps between a staggered section and the next: the frames of one group.
const LAG: usize = 4;

const _: () = assert!(
    FLUSH_PERIOD % LAG as u64 == 0,
    "flushes fall on a group's last step"
);

/// Has the compiler read `v` again from memory after this point (the asm may have written it):
/// used once a step, each coefficient then comes as a memory operand of its multiply, and the
/// registers stay free for the histories (the two registers' coefficients, histories and four
/// frames in flight are more than the 32 registers hold: spilled histories put a store and a
/// load into the recursions).
#[inline(always)]
fn from_memory<T>(v: &T) {
    // SAFETY: an empty asm block.
    unsafe {
        std::arch::asm!("/* {0} */", in(reg) v as *const T, options(nostack, preserves_flags))
    };
}

/// Whether a batch of `k` signals through `s` sections runs here: more than a full register,
/// and the rest's sections fit one register.
pub(super) const fn fits(k: usize, s: usize) -> bool {
    k > Zmm::SIGNALS && 2 * (k - Zmm::SIGNALS) * s <= 8
}

/// [`run_series2_batch`](super::run_series2_batch) for a batch that [`fits`].
///
/// # Safety
/// The CPU has AVX-512F, AVX-512VL, AVX2 and FMA; each of `p`'s pointers holds `n` frames.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn batch_avx512<const K: usize, const S: usize>(
    coefs: &[[Df1Coefs; S]; K],
    hist: &mut [[[Df1State; S]; 2]; K],
    p: &[[*mut f64; 2]; K],
    n: usize,
    clock: &mut FlushClock,
) {
    debug_assert!(fits(K, S));
    const FULL: usize = Zmm::SIGNALS;
    let (full_c, mut full_h) = register_in::<Zmm, K, S>(coefs, hist, 0);
    let rest = Layout {
        signals: K - FULL,
        sections: S,
    };
    let c = rest.sections(|s, g| coefs[FULL + g][s]);
    let mut h: [__m512d; 4] =
        std::array::from_fn(|j| rest.spread(|s, g, ch| hist[FULL + g][ch][s][j]));
    // The staggered register's last section gives at step `t` the output of frame `t − lag`.
    let lag = LAG * (S - 1);
    // The clock's position at the block's first frame; frame `i` is a flush position when
    // `(start + i + 1) % FLUSH_PERIOD == 0`.
    let start = clock.position();
    let mut left = n;
    while left > 0 {
        left -= clock.next_run(left).0;
    }
    let phase = |t: usize| ((start + t as u64 + 1) % FLUSH_PERIOD) as usize;
    // The staggered register's outputs of the last `LAG` steps, the oldest first.
    let mut older = [_mm512_setzero_pd(); LAG];
    let mut t = 0;
    while t < n + lag {
        if t >= lag && t + 4 <= n && (start + t as u64) % 4 == 0 {
            // Groups while they fit: every section has its frames, and only a group's last step
            // may flush. The histories in copies of their own, which stay in registers.
            let (mut full_hg, mut hg, mut older_g) = (full_h, h, older);
            while t + 4 <= n {
                // Two frames at a time in and out: fewer registers in flight.
                let mut yr = older_g;
                for pair in [0, 2] {
                    let x = Zmm::load2(p, 0, t + pair);
                    let xr = Zmm::load2(p, FULL, t + pair);
                    let mut y = x;
                    for u in 0..2 {
                        from_memory(&full_c);
                        y[u] = tick::<Zmm, S>(&full_c, &mut full_hg, x[u]);
                        let xs = staggered::inputs::<S>(&c, older_g[pair + u], xr[u].0);
                        yr[pair + u] = staggered::tick(&c, &mut hg, xs);
                    }
                    Zmm::store2(y, p, 0, t + pair);
                    Zmm::store2([yr[pair], yr[pair + 1]].map(Zmm), p, FULL, t + pair - lag);
                }
                older_g = yr;
                let last = phase(t + 3);
                if last == 0 {
                    flush_sections(&mut full_hg);
                }
                let mut flush: __mmask8 = 0;
                for s in 0..S {
                    if last == LAG * s {
                        flush |= rest.section_lanes(s);
                    }
                }
                if flush != 0 {
                    staggered::flush_lanes(&mut hg, flush);
                }
                t += 4;
            }
            (full_h, h, older) = (full_hg, hg, older_g);
            continue;
        }
        // One step.
        if t < n {
            let x = Zmm::gather(0, K, |s, ch| *p[s][ch].add(t));
            tick::<Zmm, S>(&full_c, &mut full_h, x).scatter(0, K, |s, ch, v| *p[s][ch].add(t) = v);
            if phase(t) == 0 {
                flush_sections(&mut full_h);
            }
        }
        let input = if t < n {
            Zmm::gather(FULL, K, |s, ch| *p[s][ch].add(t)).0
        } else {
            _mm512_setzero_pd()
        };
        let x = staggered::inputs::<S>(&c, older[0], input);
        let y = staggered::partial_step(rest, LAG, &c, &mut h, x, t, n, phase(t));
        if t >= lag {
            Zmm(y).scatter(FULL, K, |s, ch, v| *p[s][ch].add(t - lag) = v);
        }
        older = std::array::from_fn(|i| if i + 1 < LAG { older[i + 1] } else { y });
        t += 1;
    }
    register_out(&full_h, hist, 0);
    for (j, v) in h.into_iter().enumerate() {
        rest.unspread(v, |s, g, ch, v| hist[FULL + g][ch][s][j] = v);
    }
}
