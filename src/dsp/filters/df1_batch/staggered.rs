//! Stereo signals through a series of DF1 sections on AVX-512F, the sections staggered across
//! the lanes of one 512-bit register: the kernel of an EQ that runs alone (the master's, up to
//! [`MAX_SECTIONS`] sections), where a batch's registers would hold one signal and run its
//! sections one after the other within each frame; and the pieces the batch's `paired` kernel
//! holds its last one or two signals with.
//!
//! In a register of `G` signals (left and right of each; `2G·S` ≤ 8) section `s` holds its `2G`
//! lanes from lane `2G(S−1−s)` (the last section in the lowest lanes) and works `LAG` frames
//! behind the section feeding it: at step `t` section 0 takes frame `t` and section `s` frame
//! `t − s·LAG`, whose input is what section `s − 1` gave `LAG` steps earlier (one permute moves
//! every section's output on to the next section's lanes and the frame into section 0's).
//! Within a step the sections are then independent: a frame costs one recursion of the register
//! (a section's: the output two frames back enters the new one through three dependent fused
//! multiply-adds, about six cycles a frame), not `S` of them one after the other.
//!
//! Every lane does the operations of [`Df1Coefs::tick`] in its order on its section's frames,
//! in order, so the outputs and histories are bit for bit those of
//! [`run_series2`](super::super::df1::run_series2) with a flush of every history value at the
//! clock's flush positions. The pipeline fills at the block's start and drains at its end: a
//! lane without a frame at a step keeps its history (masked). Each section's histories are
//! flushed right after it took a frame at a flush position, so they are, frame by frame, those
//! of the section-after-section path.

use super::super::df1::{Df1Coefs, Df1State};
use super::super::{FlushClock, FLUSH_BELOW, FLUSH_PERIOD};
use std::arch::x86_64::*;

/// Most sections of one signal in the register (two lanes each).
pub(super) const MAX_SECTIONS: usize = 4;

/// Steps between a section and the next in [`series_avx512`]: a section's output reaches the
/// next section's output through a permute and two fused multiply-adds (about 11 cycles),
/// which spread over two steps stays under a section's own recursion (about six cycles a step).
const LAG: usize = 3;

const _: () = assert!(LAG == 3, "the kernel keeps the outputs of three steps");

/// The sections' coefficients in their lanes (zero in lanes without a section, which then
/// carry zeros), and where each lane's input comes from.
pub(super) struct Sections {
    pub(super) b0: __m512d,
    pub(super) b1: __m512d,
    pub(super) b2: __m512d,
    pub(super) na1: __m512d,
    pub(super) na2: __m512d,
    /// `vpermt2pd`'s index: lanes of section `s ≥ 1` take section `s − 1`'s output (the first
    /// operand, `2G` lanes up), section 0's lanes the frame (the lowest `2G` lanes of the second
    /// operand, 8 and on); lanes without a section their own (zero) output.
    feed: __m512i,
}

/// Where a staggered register keeps its lanes: `signals` stereo signals through
/// `sections` sections, `2·signals·sections` lanes of the eight.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub(super) signals: usize,
    pub(super) sections: usize,
}

impl Layout {
    /// The lane of channel `ch` of the register's signal `g` in section `s`.
    const fn lane(self, s: usize, g: usize, ch: usize) -> usize {
        2 * self.signals * (self.sections - 1 - s) + 2 * g + ch
    }

    /// The lanes of section `s`, as a mask.
    pub(super) const fn section_lanes(self, s: usize) -> __mmask8 {
        (((1u32 << (2 * self.signals)) - 1) << (2 * self.signals * (self.sections - 1 - s)))
            as __mmask8
    }

    /// The register of `f(section, signal, channel)` in the lanes (zero in lanes without a
    /// section).
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn spread(self, f: impl Fn(usize, usize, usize) -> f64) -> __m512d {
        let mut v = [0.0; 8];
        for s in 0..self.sections {
            for g in 0..self.signals {
                for ch in 0..2 {
                    v[self.lane(s, g, ch)] = f(s, g, ch);
                }
            }
        }
        // SAFETY: eight values.
        unsafe { _mm512_loadu_pd(v.as_ptr()) }
    }

    /// [`Layout::spread`] backwards: `f(section, signal, channel, value)` for every lane with
    /// a section.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn unspread(self, v: __m512d, mut f: impl FnMut(usize, usize, usize, f64)) {
        let mut a = [0.0; 8];
        // SAFETY: eight values.
        unsafe { _mm512_storeu_pd(a.as_mut_ptr(), v) };
        for s in 0..self.sections {
            for g in 0..self.signals {
                for ch in 0..2 {
                    f(s, g, ch, a[self.lane(s, g, ch)]);
                }
            }
        }
    }

    /// The sections `coefs(section, signal)` in their lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) fn sections(self, coefs: impl Fn(usize, usize) -> Df1Coefs) -> Sections {
        let field = |f: fn(&Df1Coefs) -> f64| self.spread(|s, g, _| f(&coefs(s, g)));
        let first = self.lane(0, 0, 0);
        let mut feed = [0i64; 8];
        for (i, f) in feed.iter_mut().enumerate() {
            *f = match i {
                i if i < first => (i + 2 * self.signals) as i64,
                i if i < 2 * self.signals * self.sections => (8 + i - first) as i64,
                i => i as i64,
            };
        }
        Sections {
            b0: field(|c| c.b0),
            b1: field(|c| c.b1),
            b2: field(|c| c.b2),
            na1: field(|c| c.na1),
            na2: field(|c| c.na2),
            // SAFETY: eight values.
            feed: unsafe { _mm512_loadu_si512(feed.as_ptr().cast()) },
        }
    }
}

/// One step of every lane: the input `x` through its section, history `h` shifted, as
/// [`Df1Coefs::tick`] does (the same operations in the same order); returns the outputs.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn tick(c: &Sections, h: &mut [__m512d; 4], x: __m512d) -> __m512d {
    let [x1, x2, y1, y2] = *h;
    let t = _mm512_fmadd_pd(c.b1, x1, _mm512_mul_pd(c.b2, x2));
    let t = _mm512_fmadd_pd(c.na2, y2, t);
    let t = _mm512_fmadd_pd(c.b0, x, t);
    let y = _mm512_fmadd_pd(c.na1, y1, t);
    *h = [x, x1, y, y1];
    y
}

/// Every lane's input at a step: the outputs `older` of `LAG` steps before moved on to the
/// next section's lanes, and the frame `input` (its lowest `2G` lanes) into section 0's (a lone
/// section takes the frame as it is).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn inputs<const S: usize>(c: &Sections, older: __m512d, input: __m512d) -> __m512d {
    if S == 1 {
        input
    } else {
        _mm512_permutex2var_pd(older, c.feed, input)
    }
}

/// A step `t` of a block of `n` frames while the pipeline fills or drains ([`tick`] of the
/// inputs `x`, `phase` the step's position in the flush period, sections `lag` steps apart):
/// the lanes of a section with a frame at this step advance, the others keep their histories;
/// those of a section whose frame is a flush position are flushed. Returns the outputs.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn partial_step(
    layout: Layout,
    lag: usize,
    c: &Sections,
    h: &mut [__m512d; 4],
    x: __m512d,
    t: usize,
    n: usize,
    phase: usize,
) -> __m512d {
    let before = *h;
    let y = tick(c, h, x);
    let (mut live, mut flush): (__mmask8, __mmask8) = (0, 0);
    for s in 0..layout.sections {
        if t >= lag * s && t - lag * s < n {
            live |= layout.section_lanes(s);
            if phase == lag * s {
                flush |= layout.section_lanes(s);
            }
        }
    }
    for (v, old) in h.iter_mut().zip(before) {
        *v = _mm512_mask_blend_pd(live, old, *v);
    }
    flush_lanes(h, flush);
    y
}

/// [`flush`](super::super::flush) of every history value in the lanes `lanes`.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn flush_lanes(h: &mut [__m512d; 4], lanes: __mmask8) {
    for v in h {
        let tiny = _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(
            lanes,
            _mm512_abs_pd(*v),
            _mm512_set1_pd(FLUSH_BELOW),
        );
        *v = _mm512_maskz_mov_pd(!tiny, *v);
    }
}

/// The frame at `at` of channels `p` (left, right) in lanes 0 and 1.
///
/// # Safety
/// Both channels hold a value at `at`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn frame(p: [*mut f64; 2], at: usize) -> __m512d {
    // SAFETY: the caller vouches for both values.
    unsafe { _mm512_zextpd128_pd512(_mm_setr_pd(*p[0].add(at), *p[1].add(at))) }
}

/// Lanes 0 and 1 of `y` (the last section's output) to frame `at` of channels `p`.
///
/// # Safety
/// Both channels hold a value at `at`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store(y: __m512d, p: [*mut f64; 2], at: usize) {
    let q = _mm512_castpd512_pd128(y);
    // SAFETY: the caller vouches for both values.
    unsafe {
        _mm_storel_pd(p[0].add(at), q);
        _mm_storeh_pd(p[1].add(at), q);
    }
}

/// The stereo signal of channels `p` (`n` frames each) through the `S` sections `coefs`, with
/// histories `hist` (left, then right), the histories flushed at the flush positions of
/// `clock` (advanced by `n`): what [`run_series2`](super::super::df1::run_series2) and those
/// flushes give, bit for bit.
///
/// # Safety
/// The CPU has AVX-512F; both of `p`'s pointers hold `n` frames.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn series_avx512<const S: usize>(
    coefs: &[Df1Coefs; S],
    hist: &mut [[Df1State; S]; 2],
    p: [*mut f64; 2],
    n: usize,
    clock: &mut FlushClock,
) {
    const { assert!(S >= 1 && S <= MAX_SECTIONS) };
    let lag = LAG * (S - 1);
    let layout = Layout {
        signals: 1,
        sections: S,
    };
    let c = layout.sections(|s, _| coefs[s]);
    let mut h: [__m512d; 4] = std::array::from_fn(|j| layout.spread(|s, _, ch| hist[ch][s][j]));
    // The clock's position at the block's first frame; frame `i` is a flush position when
    // `(start + i + 1) % FLUSH_PERIOD == 0`.
    let start = clock.position();
    let mut left = n;
    while left > 0 {
        left -= clock.next_run(left).0;
    }
    // The outputs of the last three steps (`LAG`), the newest first.
    let (mut newer, mut middle, mut older) = (
        _mm512_setzero_pd(),
        _mm512_setzero_pd(),
        _mm512_setzero_pd(),
    );
    let mut t = 0;
    while t < n + lag {
        // Section `s` flushes at step `t` when its frame `t − s·LAG` is a flush position: when
        // this is `s·LAG`.
        let phase = ((start + t as u64 + 1) % FLUSH_PERIOD) as usize;
        if t >= lag && t < n {
            // Every section has a frame. The steps up to the next one where a section flushes
            // (or to the block's end) run as they are, then that one with its flush.
            let period = FLUSH_PERIOD as usize;
            let to_flush = (0..S)
                .map(|s| (LAG * s + period - phase) % period)
                .min()
                .unwrap_or(0);
            let end = (t + to_flush).min(n);
            for u in t..end {
                // SAFETY: frames `u` and `u − lag` are the block's.
                let x = inputs::<S>(&c, older, unsafe { frame(p, u) });
                let y = tick(&c, &mut h, x);
                unsafe { store(y, p, u - lag) };
                (older, middle, newer) = (middle, newer, y);
            }
            t = end;
            if t < n {
                let flushing = (phase + to_flush) % period / LAG;
                // SAFETY: frames `t` and `t − lag` are the block's.
                let x = inputs::<S>(&c, older, unsafe { frame(p, t) });
                let y = tick(&c, &mut h, x);
                flush_lanes(&mut h, layout.section_lanes(flushing));
                unsafe { store(y, p, t - lag) };
                (older, middle, newer) = (middle, newer, y);
                t += 1;
            }
            continue;
        }
        // Filling or draining.
        let input = if t < n {
            // SAFETY: frame `t` is the block's.
            unsafe { frame(p, t) }
        } else {
            _mm512_setzero_pd()
        };
        let x = inputs::<S>(&c, older, input);
        let y = partial_step(layout, LAG, &c, &mut h, x, t, n, phase);
        if t >= lag {
            // SAFETY: frame `t − lag` is the block's (`t < n + lag`).
            unsafe { store(y, p, t - lag) };
        }
        (older, middle, newer) = (middle, newer, y);
        t += 1;
    }
    for (j, v) in h.into_iter().enumerate() {
        layout.unspread(v, |s, _, ch, v| hist[ch][s][j] = v);
    }
}
