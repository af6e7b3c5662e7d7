//! The Simper/Cytomic trapezoidal state-variable filter, run as a 2×2 state-space update.
//!
//! Andrew Simper's SVF ("Solving the continuous SVF equations using trapezoidal integration",
//! Cytomic 2013) integrates the analog state-variable filter with the trapezoidal rule. Per sample,
//! with `g = tan(π·fc/fs)`, `k = 1/Q`, `a1 = 1/(1 + g(g + k))`, `a2 = g·a1`, `a3 = g·a2`:
//!
//! ```text
//! v3 = v0 − ic2
//! v1 = a1·ic1 + a2·v3            (band-pass)
//! v2 = ic2 + a2·ic1 + a3·v3      (low-pass)
//! ic1 = 2·v1 − ic1;  ic2 = 2·v2 − ic2
//! out = m0·v0 + m1·v1 + m2·v2
//! ```
//!
//! Substituting `v1`, `v2` gives the same computation as a linear state-space update over the
//! same two states `s = (ic1, ic2)`:
//!
//! ```text
//! y   = d·x + c1·s1 + c2·s2
//! s1' = a11·s1 + b1·(x − s2)           a11 = 2a1 − 1,  b1 = 2a2
//! s2' = b1·s1 + a22·s2 + b2·x          a22 = 1 − 2a3,  b2 = 2a3
//! c1 = m1·a1 + m2·a2,  c2 = m2·(1 − a3) − m1·a2,  d = m0 + m1·a2 + m2·a3
//! ```
//!
//! Every output is a short dot product (FMA-friendly) and the loop-carried dependency is two
//! operations deep. Because the states are the SVF's own integrator states, the update keeps the
//! SVF's good behaviour under per-sample coefficient changes (no energy injected by a
//! coefficient jump, unlike direct-form biquads).
//!
//! A response with `m = (1, 0, 0)` (a bell, shelf or tilt at 0 dB) gives `c1 = c2 = 0`, `d = 1`:
//! the output is the input, bit for bit.

/// The coefficients of one SVF section: the one SVF coefficient type of the code base. Computed
/// in `f64` on any thread. It holds Simper's coefficients (`k`, `a1`, `a2`, `a3`) and the
/// state-space form derived from them, so each user runs the form it was written for with the
/// same values:
///
/// - [`SvfCoefs::tick`] (EQ, delay filters): the state-space update with the output mix;
/// - `crossover::SvfState` (crossovers, side-chain filters): the state update on a pair of
///   channels, outputs taken from the states;
/// - the demo synthesizer: Simper's original recursion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvfCoefs {
    /// Damping, `1/Q`.
    pub k: f64,
    /// Simper's `a1 = 1/(1 + g(g + k))`.
    pub a1: f64,
    /// Simper's `a2 = g·a1`.
    pub a2: f64,
    /// Simper's `a3 = g·a2`.
    pub a3: f64,
    /// State matrix, (1,1).
    pub a11: f64,
    /// State matrix, (2,2).
    pub a22: f64,
    /// State matrix off-diagonals (`a21 = b1`, `a12 = −b1`) and input to state 1.
    pub b1: f64,
    /// Input to state 2.
    pub b2: f64,
    /// State 1 to output.
    pub c1: f64,
    /// State 2 to output.
    pub c2: f64,
    /// Input to output.
    pub d: f64,
}

/// The two integrator states of one SVF section on one channel.
pub type SvfState = [f64; 2];

impl Default for SvfCoefs {
    /// [`SvfCoefs::IDENTITY`].
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl SvfCoefs {
    /// The section that passes its input unchanged (and keeps its state at rest).
    pub const IDENTITY: SvfCoefs = SvfCoefs {
        k: 0.0,
        a1: 1.0,
        a2: 0.0,
        a3: 0.0,
        a11: 1.0,
        a22: 1.0,
        b1: 0.0,
        b2: 0.0,
        c1: 0.0,
        c2: 0.0,
        d: 1.0,
    };

    /// The section for prewarped gain `g = tan(π·fc/fs)`, damping `k = 1/Q` and output mix
    /// `m = (m0, m1, m2)` of (input, band-pass, low-pass).
    #[inline]
    pub fn new(g: f64, k: f64, m0: f64, m1: f64, m2: f64) -> Self {
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        SvfCoefs {
            k,
            a1,
            a2,
            a3,
            a11: 2.0 * a1 - 1.0,
            a22: 1.0 - 2.0 * a3,
            b1: 2.0 * a2,
            b2: 2.0 * a3,
            c1: m1 * a1 + m2 * a2,
            c2: m2 * (1.0 - a3) - m1 * a2,
            d: m0 + m1 * a2 + m2 * a3,
        }
    }

    /// A section tuned to `freq_hz` (held within 1 mHz … 0.49·fs) with quality `q` at
    /// `sample_rate`, its state-space output the low-pass: the sections of the crossovers and of
    /// the side-chain filters, which take their outputs from the states.
    pub fn tuned(freq_hz: f64, q: f64, sample_rate: f64) -> Self {
        let f = freq_hz.min(0.49 * sample_rate).max(1e-3);
        let g = libm::tan(std::f64::consts::PI * f / sample_rate);
        Self::new(g, 1.0 / q, 0.0, 0.0, 1.0)
    }

    /// The section's frequency response at `freq_hz` for `sample_rate`, as (re, im): the
    /// state-space form run by [`SvfCoefs::tick`], `H(z) = d + c·(zI − A)⁻¹·b` on the unit
    /// circle. Control side (fits and plots of the EQ's real response); not used on the audio path.
    pub fn response(&self, freq_hz: f64, sample_rate: f64) -> (f64, f64) {
        let w = 2.0 * std::f64::consts::PI * freq_hz / sample_rate;
        let (zr, zi) = (libm::cos(w), libm::sin(w));
        // zI − A = [[z − a11, b1], [−b1, z − a22]]; its inverse is adj / det.
        let (p_r, p_i) = (zr - self.a11, zi);
        let (q_r, q_i) = (zr - self.a22, zi);
        let mul = |a: (f64, f64), b: (f64, f64)| (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0);
        let pq = mul((p_r, p_i), (q_r, q_i));
        let det = (pq.0 + self.b1 * self.b1, pq.1);
        // adj·b = [(z − a22)·b1 − b1·b2, b1·b1 + (z − a11)·b2]
        let v1 = (q_r * self.b1 - self.b1 * self.b2, q_i * self.b1);
        let v2 = (self.b1 * self.b1 + p_r * self.b2, p_i * self.b2);
        let num = (
            self.c1 * v1.0 + self.c2 * v2.0,
            self.c1 * v1.1 + self.c2 * v2.1,
        );
        let dd = det.0 * det.0 + det.1 * det.1;
        let frac = (
            (num.0 * det.0 + num.1 * det.1) / dd,
            (num.1 * det.0 - num.0 * det.1) / dd,
        );
        (self.d + frac.0, frac.1)
    }

    /// One sample through the section: returns the output and advances `s`.
    #[inline(always)]
    pub fn tick(&self, s: &mut SvfState, x: f64) -> f64 {
        let [s1, s2] = *s;
        let y = self.d * x + self.c1 * s1 + self.c2 * s2;
        s[0] = self.a11 * s1 + self.b1 * (x - s2);
        s[1] = self.b1 * s1 + self.a22 * s2 + self.b2 * x;
        y
    }

    /// Runs the section over `x` in place.
    #[inline]
    pub fn run(&self, s: &mut SvfState, x: &mut [f64]) {
        let mut st = *s;
        for v in x.iter_mut() {
            *v = self.tick(&mut st, *v);
        }
        *s = st;
    }

    /// Runs the section over two channels in place at once (two independent dependency chains
    /// interleaved, which keeps the pipeline busy).
    #[inline]
    pub fn run2(&self, sl: &mut SvfState, sr: &mut SvfState, l: &mut [f64], r: &mut [f64]) {
        let (mut a, mut b) = (*sl, *sr);
        let n = l.len().min(r.len());
        for (xl, xr) in l[..n].iter_mut().zip(r[..n].iter_mut()) {
            *xl = self.tick(&mut a, *xl);
            *xr = self.tick(&mut b, *xr);
        }
        *sl = a;
        *sr = b;
    }
}

/// Runs sections `coefs` in series over two channels in one pass over the samples: every sample
/// goes through all of them before the next one enters. The output is the same, bit for bit, as
/// running each section over the whole run in turn, but the `2·len` recursions are independent
/// dependency chains that the processor overlaps, instead of two at a time.
pub fn run_series2(
    coefs: &[SvfCoefs],
    sl: &mut [SvfState],
    sr: &mut [SvfState],
    l: &mut [f64],
    r: &mut [f64],
) {
    let mut k = 0;
    while k < coefs.len() {
        let n = (coefs.len() - k).min(4);
        let (c, a, b) = (&coefs[k..k + n], &mut sl[k..k + n], &mut sr[k..k + n]);
        match n {
            1 => series2::<1>(c, a, b, l, r),
            2 => series2::<2>(c, a, b, l, r),
            3 => series2::<3>(c, a, b, l, r),
            _ => series2::<4>(c, a, b, l, r),
        }
        k += n;
    }
}

#[inline(always)]
fn series2<const N: usize>(
    coefs: &[SvfCoefs],
    sl: &mut [SvfState],
    sr: &mut [SvfState],
    l: &mut [f64],
    r: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of x86-64: left and right share one register, lane by lane the same
        // IEEE operations as `SvfCoefs::tick`.
        series2_sse2::<N>(coefs, sl, sr, l, r)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let c: [SvfCoefs; N] = std::array::from_fn(|i| coefs[i]);
        let mut a: [SvfState; N] = std::array::from_fn(|i| sl[i]);
        let mut b: [SvfState; N] = std::array::from_fn(|i| sr[i]);
        let n = l.len().min(r.len());
        for (xl, xr) in l[..n].iter_mut().zip(r[..n].iter_mut()) {
            let (mut yl, mut yr) = (*xl, *xr);
            for i in 0..N {
                yl = c[i].tick(&mut a[i], yl);
                yr = c[i].tick(&mut b[i], yr);
            }
            *xl = yl;
            *xr = yr;
        }
        sl[..N].copy_from_slice(&a);
        sr[..N].copy_from_slice(&b);
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn series2_sse2<const N: usize>(
    coefs: &[SvfCoefs],
    sl: &mut [SvfState],
    sr: &mut [SvfState],
    l: &mut [f64],
    r: &mut [f64],
) {
    use std::arch::x86_64::*;
    /// One section's coefficients, each in both lanes.
    #[derive(Clone, Copy)]
    struct C2 {
        a11: __m128d,
        a22: __m128d,
        b1: __m128d,
        b2: __m128d,
        c1: __m128d,
        c2: __m128d,
        d: __m128d,
    }
    // SAFETY (all intrinsics below): SSE2 is always available on x86-64; loads and stores go
    // through `[f64; 2]` values, never raw pointers into the slices.
    unsafe {
        let c: [C2; N] = std::array::from_fn(|i| {
            let k = &coefs[i];
            C2 {
                a11: _mm_set1_pd(k.a11),
                a22: _mm_set1_pd(k.a22),
                b1: _mm_set1_pd(k.b1),
                b2: _mm_set1_pd(k.b2),
                c1: _mm_set1_pd(k.c1),
                c2: _mm_set1_pd(k.c2),
                d: _mm_set1_pd(k.d),
            }
        });
        // s1[i] = (state 1 of left, state 1 of right), s2 likewise.
        let mut s1: [__m128d; N] = std::array::from_fn(|i| _mm_set_pd(sr[i][0], sl[i][0]));
        let mut s2: [__m128d; N] = std::array::from_fn(|i| _mm_set_pd(sr[i][1], sl[i][1]));
        let n = l.len().min(r.len());
        for (xl, xr) in l[..n].iter_mut().zip(r[..n].iter_mut()) {
            let mut x = _mm_set_pd(*xr, *xl);
            for i in 0..N {
                let k = &c[i];
                // y = d·x + c1·s1 + c2·s2
                let y = _mm_add_pd(
                    _mm_add_pd(_mm_mul_pd(k.d, x), _mm_mul_pd(k.c1, s1[i])),
                    _mm_mul_pd(k.c2, s2[i]),
                );
                // s1' = a11·s1 + b1·(x − s2);  s2' = b1·s1 + a22·s2 + b2·x
                let n1 = _mm_add_pd(
                    _mm_mul_pd(k.a11, s1[i]),
                    _mm_mul_pd(k.b1, _mm_sub_pd(x, s2[i])),
                );
                let n2 = _mm_add_pd(
                    _mm_add_pd(_mm_mul_pd(k.b1, s1[i]), _mm_mul_pd(k.a22, s2[i])),
                    _mm_mul_pd(k.b2, x),
                );
                s1[i] = n1;
                s2[i] = n2;
                x = y;
            }
            let mut out = [0.0f64; 2];
            _mm_storeu_pd(out.as_mut_ptr(), x);
            *xl = out[0];
            *xr = out[1];
        }
        for i in 0..N {
            let (mut a, mut b) = ([0.0f64; 2], [0.0f64; 2]);
            _mm_storeu_pd(a.as_mut_ptr(), s1[i]);
            _mm_storeu_pd(b.as_mut_ptr(), s2[i]);
            sl[i] = [a[0], b[0]];
            sr[i] = [a[1], b[1]];
        }
    }
}

/// `K` stereo signals, each through its own series of `S` sections, side by side in one pass:
/// `K·S·2` independent recursions per sample, which keeps the floating-point units busy where
/// one signal alone waits on its own dependency chain. Each signal's output is bit for bit what
/// [`run_series2`] gives. `state[k]` holds signal k's section states, left then right; `chans[k]`
/// its two channels (all of one length).
pub fn run_series2_batch<const K: usize, const S: usize>(
    coefs: &[[SvfCoefs; S]; K],
    state: &mut [[[SvfState; S]; 2]; K],
    chans: &mut [(&mut [f64], &mut [f64]); K],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if K >= 2 && crate::dsp::simd::avx2() {
            // Two signals per 256-bit register (left and right of each), the odd one out in
            // its own 128-bit register.
            let pairs = K / 2;
            for p in 0..pairs {
                let (a, b) = chans.split_at_mut(2 * p + 1);
                let (sa, sb) = state.split_at_mut(2 * p + 1);
                // SAFETY: the CPU has AVX2 (checked at run time).
                unsafe {
                    pair_avx2::<S>(
                        [&coefs[2 * p], &coefs[2 * p + 1]],
                        [&mut sa[2 * p], &mut sb[0]],
                        [&mut a[2 * p], &mut b[0]],
                    )
                };
            }
            if K % 2 == 1 {
                let k = K - 1;
                let one = [coefs[k]];
                let mut st = [state[k]];
                let (l, r) = &mut chans[k];
                batch_sse2::<1, S>(&one, &mut st, &mut [(&mut **l, &mut **r)]);
                state[k] = st[0];
            }
            return;
        }
        batch_sse2::<K, S>(coefs, state, chans)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        for k in 0..K {
            let [a, b] = &mut state[k];
            let (l, r) = &mut chans[k];
            series2::<S>(&coefs[k], a, b, l, r);
        }
    }
}

/// Two stereo signals side by side in 256-bit registers, lanes (left a, right a, left b,
/// right b): the same IEEE operations per lane as [`SvfCoefs::tick`]. Samples are moved in and
/// out four at a time through 4×4 transposes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pair_avx2<const S: usize>(
    coefs: [&[SvfCoefs; S]; 2],
    state: [&mut [[SvfState; S]; 2]; 2],
    chans: [&mut (&mut [f64], &mut [f64]); 2],
) {
    use std::arch::x86_64::*;
    let [ca, cb] = coefs;
    let [sa, sb] = state;
    let [(la, ra), (lb, rb)] = chans;
    let n = la.len().min(ra.len()).min(lb.len()).min(rb.len());
    let (la, ra, lb, rb) = (&mut la[..n], &mut ra[..n], &mut lb[..n], &mut rb[..n]);
    let lanes = |f: fn(&SvfCoefs) -> f64, i: usize| {
        _mm256_set_pd(f(&cb[i]), f(&cb[i]), f(&ca[i]), f(&ca[i]))
    };
    let c: [[__m256d; 7]; S] = std::array::from_fn(|i| {
        [
            lanes(|k| k.a11, i),
            lanes(|k| k.a22, i),
            lanes(|k| k.b1, i),
            lanes(|k| k.b2, i),
            lanes(|k| k.c1, i),
            lanes(|k| k.c2, i),
            lanes(|k| k.d, i),
        ]
    });
    let mut s1: [__m256d; S] =
        std::array::from_fn(|i| _mm256_set_pd(sb[1][i][0], sb[0][i][0], sa[1][i][0], sa[0][i][0]));
    let mut s2: [__m256d; S] =
        std::array::from_fn(|i| _mm256_set_pd(sb[1][i][1], sb[0][i][1], sa[1][i][1], sa[0][i][1]));
    #[target_feature(enable = "avx2")]
    #[inline]
    fn step<const S: usize>(
        c: &[[__m256d; 7]; S],
        s1: &mut [__m256d; S],
        s2: &mut [__m256d; S],
        mut x: __m256d,
    ) -> __m256d {
        for i in 0..S {
            let [a11, a22, b1, b2, c1, c2, d] = c[i];
            let y = _mm256_add_pd(
                _mm256_add_pd(_mm256_mul_pd(d, x), _mm256_mul_pd(c1, s1[i])),
                _mm256_mul_pd(c2, s2[i]),
            );
            let n1 = _mm256_add_pd(
                _mm256_mul_pd(a11, s1[i]),
                _mm256_mul_pd(b1, _mm256_sub_pd(x, s2[i])),
            );
            let n2 = _mm256_add_pd(
                _mm256_add_pd(_mm256_mul_pd(b1, s1[i]), _mm256_mul_pd(a22, s2[i])),
                _mm256_mul_pd(b2, x),
            );
            s1[i] = n1;
            s2[i] = n2;
            x = y;
        }
        x
    }
    /// 4×4 transpose: rows (a, b, c, d) ↔ columns.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(a: __m256d, b: __m256d, c: __m256d, d: __m256d) -> [__m256d; 4] {
        let t0 = _mm256_unpacklo_pd(a, b);
        let t1 = _mm256_unpackhi_pd(a, b);
        let t2 = _mm256_unpacklo_pd(c, d);
        let t3 = _mm256_unpackhi_pd(c, d);
        [
            _mm256_permute2f128_pd::<0x20>(t0, t2),
            _mm256_permute2f128_pd::<0x20>(t1, t3),
            _mm256_permute2f128_pd::<0x31>(t0, t2),
            _mm256_permute2f128_pd::<0x31>(t1, t3),
        ]
    }
    let quads = n / 4 * 4;
    let mut j = 0;
    while j < quads {
        // SAFETY: j + 4 ≤ n for all four slices, so the unaligned loads and stores stay inside.
        unsafe {
            let x = transpose(
                _mm256_loadu_pd(la.as_ptr().add(j)),
                _mm256_loadu_pd(ra.as_ptr().add(j)),
                _mm256_loadu_pd(lb.as_ptr().add(j)),
                _mm256_loadu_pd(rb.as_ptr().add(j)),
            );
            let y0 = step::<S>(&c, &mut s1, &mut s2, x[0]);
            let y1 = step::<S>(&c, &mut s1, &mut s2, x[1]);
            let y2 = step::<S>(&c, &mut s1, &mut s2, x[2]);
            let y3 = step::<S>(&c, &mut s1, &mut s2, x[3]);
            let out = transpose(y0, y1, y2, y3);
            _mm256_storeu_pd(la.as_mut_ptr().add(j), out[0]);
            _mm256_storeu_pd(ra.as_mut_ptr().add(j), out[1]);
            _mm256_storeu_pd(lb.as_mut_ptr().add(j), out[2]);
            _mm256_storeu_pd(rb.as_mut_ptr().add(j), out[3]);
        }
        j += 4;
    }
    for j in quads..n {
        let y = step::<S>(
            &c,
            &mut s1,
            &mut s2,
            _mm256_set_pd(rb[j], lb[j], ra[j], la[j]),
        );
        let mut out = [0.0f64; 4];
        // SAFETY: `out` holds four doubles.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), y) };
        la[j] = out[0];
        ra[j] = out[1];
        lb[j] = out[2];
        rb[j] = out[3];
    }
    for i in 0..S {
        let (mut a, mut b) = ([0.0f64; 4], [0.0f64; 4]);
        // SAFETY: four doubles each.
        unsafe {
            _mm256_storeu_pd(a.as_mut_ptr(), s1[i]);
            _mm256_storeu_pd(b.as_mut_ptr(), s2[i]);
        }
        sa[0][i] = [a[0], b[0]];
        sa[1][i] = [a[1], b[1]];
        sb[0][i] = [a[2], b[2]];
        sb[1][i] = [a[3], b[3]];
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn batch_sse2<const K: usize, const S: usize>(
    coefs: &[[SvfCoefs; S]; K],
    state: &mut [[[SvfState; S]; 2]; K],
    chans: &mut [(&mut [f64], &mut [f64]); K],
) {
    use std::arch::x86_64::*;
    let n = chans
        .iter()
        .map(|(l, r)| l.len().min(r.len()))
        .min()
        .unwrap_or(0);
    // SAFETY (all intrinsics below): SSE2 is always available on x86-64; memory goes through
    // `[f64; 2]` values and bounds-checked slices.
    unsafe {
        let load = |k: &SvfCoefs| {
            [
                _mm_set1_pd(k.a11),
                _mm_set1_pd(k.a22),
                _mm_set1_pd(k.b1),
                _mm_set1_pd(k.b2),
                _mm_set1_pd(k.c1),
                _mm_set1_pd(k.c2),
                _mm_set1_pd(k.d),
            ]
        };
        let c: [[[__m128d; 7]; S]; K] =
            std::array::from_fn(|k| std::array::from_fn(|i| load(&coefs[k][i])));
        let mut s1: [[__m128d; S]; K] = std::array::from_fn(|k| {
            std::array::from_fn(|i| _mm_set_pd(state[k][1][i][0], state[k][0][i][0]))
        });
        let mut s2: [[__m128d; S]; K] = std::array::from_fn(|k| {
            std::array::from_fn(|i| _mm_set_pd(state[k][1][i][1], state[k][0][i][1]))
        });
        for j in 0..n {
            for k in 0..K {
                let (l, r) = &mut chans[k];
                let mut x = _mm_set_pd(r[j], l[j]);
                for i in 0..S {
                    let [a11, a22, b1, b2, c1, c2, d] = c[k][i];
                    let y = _mm_add_pd(
                        _mm_add_pd(_mm_mul_pd(d, x), _mm_mul_pd(c1, s1[k][i])),
                        _mm_mul_pd(c2, s2[k][i]),
                    );
                    let n1 = _mm_add_pd(
                        _mm_mul_pd(a11, s1[k][i]),
                        _mm_mul_pd(b1, _mm_sub_pd(x, s2[k][i])),
                    );
                    let n2 = _mm_add_pd(
                        _mm_add_pd(_mm_mul_pd(b1, s1[k][i]), _mm_mul_pd(a22, s2[k][i])),
                        _mm_mul_pd(b2, x),
                    );
                    s1[k][i] = n1;
                    s2[k][i] = n2;
                    x = y;
                }
                let mut out = [0.0f64; 2];
                _mm_storeu_pd(out.as_mut_ptr(), x);
                l[j] = out[0];
                r[j] = out[1];
            }
        }
        for k in 0..K {
            for i in 0..S {
                let (mut a, mut b) = ([0.0f64; 2], [0.0f64; 2]);
                _mm_storeu_pd(a.as_mut_ptr(), s1[k][i]);
                _mm_storeu_pd(b.as_mut_ptr(), s2[k][i]);
                state[k][0][i] = [a[0], b[0]];
                state[k][1][i] = [a[1], b[1]];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook per-sample form, for comparison.
    fn simper(g: f64, k: f64, m: [f64; 3], ic: &mut [f64; 2], v0: f64) -> f64 {
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        let v3 = v0 - ic[1];
        let v1 = a1 * ic[0] + a2 * v3;
        let v2 = ic[1] + a2 * ic[0] + a3 * v3;
        ic[0] = 2.0 * v1 - ic[0];
        ic[1] = 2.0 * v2 - ic[1];
        m[0] * v0 + m[1] * v1 + m[2] * v2
    }

    #[test]
    fn state_space_equals_textbook_form() {
        let (g, k, m) = (0.3, 0.7, [0.4, -1.3, 2.2]);
        let c = SvfCoefs::new(g, k, m[0], m[1], m[2]);
        let (mut s, mut ic) = ([0.0; 2], [0.0; 2]);
        let mut x = 1.0;
        for n in 0..200 {
            let a = c.tick(&mut s, x);
            let b = simper(g, k, m, &mut ic, x);
            assert!((a - b).abs() < 1e-12, "sample {n}: {a} vs {b}");
            x = if n % 7 == 0 { -0.5 } else { 0.25 * x };
        }
    }

    /// `K` stereo signals of noise through `S` sections each (different coefficients per
    /// signal and section), batched and one by one: the same bits, over two runs (state carried).
    fn batch_matches_series<const K: usize, const S: usize>() {
        let coefs: [[SvfCoefs; S]; K] = std::array::from_fn(|k| {
            std::array::from_fn(|i| {
                let g = 0.01 + 0.07 * (k * S + i) as f64;
                SvfCoefs::new(g, 0.5 + 0.3 * i as f64, 1.0, -0.4 + 0.1 * k as f64, 0.8)
            })
        });
        let mut next = crate::dsp::test_signal::noise(1234);
        let mut noise = |n: usize| -> Vec<f64> { (0..n).map(|_| next()).collect() };
        let mut batched: Vec<[Vec<f64>; 2]> = (0..K).map(|_| [noise(203), noise(203)]).collect();
        let mut single = batched.clone();
        let mut state = [[[[0.0; 2]; S]; 2]; K];
        let mut one = [[[[0.0; 2]; S]; 2]; K];
        for (from, to) in [(0, 97), (97, 203)] {
            let mut it = batched.iter_mut();
            let mut chans: [(&mut [f64], &mut [f64]); K] = std::array::from_fn(|_| {
                let [l, r] = it.next().unwrap();
                (&mut l[from..to], &mut r[from..to])
            });
            run_series2_batch::<K, S>(&coefs, &mut state, &mut chans);
            for k in 0..K {
                let [l, r] = &mut single[k];
                let [sl, sr] = &mut one[k];
                run_series2(&coefs[k], sl, sr, &mut l[from..to], &mut r[from..to]);
            }
        }
        for k in 0..K {
            for c in 0..2 {
                for (a, b) in batched[k][c].iter().zip(&single[k][c]) {
                    assert_eq!(a.to_bits(), b.to_bits(), "signal {k} channel {c}");
                }
            }
        }
        assert_eq!(state, one);
    }

    #[test]
    fn batches_of_every_size_give_the_bits_of_one_signal_at_a_time() {
        batch_matches_series::<2, 2>();
        batch_matches_series::<3, 1>();
        batch_matches_series::<4, 2>();
        batch_matches_series::<5, 3>();
        batch_matches_series::<6, 2>();
        batch_matches_series::<7, 4>();
        batch_matches_series::<8, 2>();
    }

    #[test]
    fn unity_mix_is_bit_exact() {
        let c = SvfCoefs::new(0.01, 1.0, 1.0, 0.0, 0.0);
        let mut s = [0.0; 2];
        for i in 0..100 {
            let x = (i as f64 * 0.37).sin();
            assert_eq!(c.tick(&mut s, x), x);
        }
    }
}
