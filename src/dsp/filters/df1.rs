//! Direct form I biquads with fused multiply-adds: the EQ's sections while their coefficients
//! hold still.
//!
//! A section designed as an SVF ([`super::svf`]) has the transfer function of the bilinear
//! transform of its analog prototype; [`Df1Coefs::bilinear`] computes that function's biquad
//! coefficients directly from the same design values (`g = tan(π·fc/fs)`, `k`, the output mix
//! `m`), and [`Df1Coefs::tick`] runs it as a direct form I:
//!
//! ```text
//! y = b0·x + b1·x1 + b2·x2 − a1·y1 − a2·y2
//!   = fma(−a1, y1, fma(b0, x, fma(−a2, y2, fma(b1, x1, b2·x2))))
//! ```
//!
//! one multiply and four fused multiply-adds per sample, where the state-space SVF needs eight
//! multiplies (both run on the same two multiply/FMA ports). The loop-carried chain is the last
//! FMA, and the input enters two operations before the output, so a series of sections
//! pipelines. Every build computes each sample with the same five correctly rounded operations in
//! this order: the AVX2+FMA kernels with the FMA instructions, the others with `f64::mul_add`
//! (the instruction where the CPU has it, a correctly rounded software fused multiply-add
//! otherwise), so every build gives the same bits.
//!
//! The state is signal history (`x1, x2, y1, y2`). The EQ runs a section as a DF1 while its
//! coefficients hold still and as the SVF at samples where they move (`eq::band`), converting the
//! state between the two forms where the mode changes ([`Df1Coefs::history_from_svf`],
//! [`Df1Coefs::svf_from_history`]): automation keeps the SVF's behaviour under coefficient
//! changes, constant stretches run at the DF1's cost.

use super::svf::{SvfCoefs, SvfState};

/// A biquad's coefficients, normalised (`a0 = 1`), with the feedback coefficients stored negated
/// as the FMAs take them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Df1Coefs {
    /// Input to output.
    pub b0: f64,
    /// Previous input to output.
    pub b1: f64,
    /// Input two samples back to output.
    pub b2: f64,
    /// `−a1`: previous output to output.
    pub na1: f64,
    /// `−a2`: output two samples back to output.
    pub na2: f64,
}

/// The history of one DF1 section on one channel: `[x1, x2, y1, y2]`, the last two inputs and
/// outputs.
pub type Df1State = [f64; 4];

impl Default for Df1Coefs {
    /// [`Df1Coefs::IDENTITY`].
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Df1Coefs {
    /// The section that passes its input unchanged.
    pub const IDENTITY: Df1Coefs = Df1Coefs {
        b0: 1.0,
        b1: 0.0,
        b2: 0.0,
        na1: 0.0,
        na2: 0.0,
    };

    /// The biquad of the SVF section [`SvfCoefs::new`]`(g, k, m0, m1, m2)` describes: the
    /// bilinear transform (`s = (1/g)·(1 − z⁻¹)/(1 + z⁻¹)`) of
    /// `H(s) = (m0·s² + (m0·k + m1)·s + m0 + m2) / (s² + k·s + 1)`, `s` normalised to `fc`.
    pub fn bilinear(g: f64, k: f64, m0: f64, m1: f64, m2: f64) -> Self {
        let (nb0, nb1, nb2) = (m0, m0 * k + m1, m0 + m2);
        let g2 = g * g;
        let a0 = 1.0 + k * g + g2;
        let a1 = 2.0 * (g2 - 1.0);
        let a2 = 1.0 - k * g + g2;
        let b0 = nb0 + nb1 * g + nb2 * g2;
        let b1 = 2.0 * (nb2 * g2 - nb0);
        let b2 = nb0 - nb1 * g + nb2 * g2;
        Df1Coefs {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            na1: -(a1 / a0),
            na2: -(a2 / a0),
        }
    }

    /// One sample through the section: returns the output and shifts the history.
    #[inline(always)]
    pub fn tick(&self, h: &mut Df1State, x: f64) -> f64 {
        let [x1, x2, y1, y2] = *h;
        let t = self.b1.mul_add(x1, self.b2 * x2);
        let t = self.na2.mul_add(y2, t);
        let t = self.b0.mul_add(x, t);
        let y = self.na1.mul_add(y1, t);
        *h = [x, x1, y, y1];
        y
    }

    /// The frequency response at `freq_hz` for `sample_rate`, as (re, im). Control side.
    pub fn response(&self, freq_hz: f64, sample_rate: f64) -> (f64, f64) {
        let w = 2.0 * std::f64::consts::PI * freq_hz / sample_rate;
        // z⁻¹ = e^{−jw}, z⁻² = e^{−2jw}.
        let (c1, s1) = (libm::cos(w), -libm::sin(w));
        let (c2, s2) = (libm::cos(2.0 * w), -libm::sin(2.0 * w));
        let num = (
            self.b0 + self.b1 * c1 + self.b2 * c2,
            self.b1 * s1 + self.b2 * s2,
        );
        let den = (
            1.0 - self.na1 * c1 - self.na2 * c2,
            -self.na1 * s1 - self.na2 * s2,
        );
        let dd = den.0 * den.0 + den.1 * den.1;
        (
            (num.0 * den.0 + num.1 * den.1) / dd,
            (num.1 * den.0 - num.0 * den.1) / dd,
        )
    }

    /// The part of the next two outputs the history holds, `(z1, z2)`: with inputs `x`, `x'`
    /// the section gives `y = b0·x + z1` and `y' = b0·x' + b1·x − a1·y + z2`.
    #[inline]
    fn carried(&self, h: &Df1State) -> (f64, f64) {
        let [x1, x2, y1, y2] = *h;
        let z2 = self.b2 * x1 + self.na2 * y1;
        let z1 = self.b1 * x1 + self.b2 * x2 + self.na1 * y1 + self.na2 * y2;
        (z1, z2)
    }

    /// A history that continues the SVF section `svf` (the same transfer function as `self`)
    /// from its state `s`: the DF1 then gives the outputs the SVF would have given. Of the
    /// histories that do, the one of least norm (the DF1's output depends on the history only
    /// through two numbers, [`Df1Coefs::carried`]).
    pub fn history_from_svf(&self, svf: &SvfCoefs, s: &SvfState) -> Df1State {
        let [s1, s2] = *s;
        // y = d·x + c·s, and the state-space update s' = A·s + b·x with A = [[a11, −b1],
        // [b1, a22]]: z1 = c·s, z2 = c·A·s + a1·z1.
        let z1 = svf.c1 * s1 + svf.c2 * s2;
        let ca1 = svf.c1 * svf.a11 + svf.c2 * svf.b1;
        let ca2 = svf.c2 * svf.a22 - svf.c1 * svf.b1;
        let z2 = ca1 * s1 + ca2 * s2 - self.na1 * z1;
        // z2 = b2·x1 − a2·y1 and z1 − (b1·x1 − a1·y1) = b2·x2 − a2·y2: least-norm solutions
        // along (b2, −a2).
        let n2 = self.b2 * self.b2 + self.na2 * self.na2;
        if n2 == 0.0 {
            // A first-order section: z2 is zero, z1 = b1·x1 − a1·y1.
            let n1 = self.b1 * self.b1 + self.na1 * self.na1;
            if n1 == 0.0 {
                return [0.0; 4];
            }
            return [z1 * self.b1 / n1, 0.0, z1 * self.na1 / n1, 0.0];
        }
        let (x1, y1) = (z2 * self.b2 / n2, z2 * self.na2 / n2);
        let r = z1 - (self.b1 * x1 + self.na1 * y1);
        [x1, r * self.b2 / n2, y1, r * self.na2 / n2]
    }

    /// The state of the SVF section `svf` (the same transfer function as `self`) that continues
    /// the history `h`: the SVF then gives the outputs the DF1 would have given. Zero when the
    /// history is (or when the SVF's output cannot see its states: the identity).
    pub fn svf_from_history(&self, svf: &SvfCoefs, h: &Df1State) -> SvfState {
        if h.iter().all(|&v| v == 0.0) {
            return [0.0; 2];
        }
        let (z1, z2) = self.carried(h);
        // Solve [c; c·A]·s = (z1, z2 − a1·z1).
        let w = z2 + self.na1 * z1;
        let ca1 = svf.c1 * svf.a11 + svf.c2 * svf.b1;
        let ca2 = svf.c2 * svf.a22 - svf.c1 * svf.b1;
        let det = svf.c1 * ca2 - svf.c2 * ca1;
        let s = [(z1 * ca2 - svf.c2 * w) / det, (svf.c1 * w - ca1 * z1) / det];
        if s.iter().all(|v| v.is_finite()) {
            s
        } else {
            [0.0; 2]
        }
    }
}

/// Runs sections `coefs` in series over two channels in one pass over the samples (every sample
/// goes through all of them before the next one enters: `2·len` independent recursions the
/// processor overlaps). `hl`, `hr`: the histories of the left and right channel.
pub fn run_series2(
    coefs: &[Df1Coefs],
    hl: &mut [Df1State],
    hr: &mut [Df1State],
    l: &mut [f64],
    r: &mut [f64],
) {
    let mut k = 0;
    while k < coefs.len() {
        let n = (coefs.len() - k).min(4);
        let (c, a, b) = (&coefs[k..k + n], &mut hl[k..k + n], &mut hr[k..k + n]);
        match n {
            1 => series2::<1>(c, a, b, l, r),
            2 => series2::<2>(c, a, b, l, r),
            3 => series2::<3>(c, a, b, l, r),
            _ => series2::<4>(c, a, b, l, r),
        }
        k += n;
    }
}

/// Runs sections `coefs` in series over one channel.
pub fn run_series(coefs: &[Df1Coefs], h: &mut [Df1State], x: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { series_fma(coefs, h, x) };
    }
    series_body(coefs, h, x)
}

#[inline(always)]
fn series_body(coefs: &[Df1Coefs], h: &mut [Df1State], x: &mut [f64]) {
    for (c, h) in coefs.iter().zip(h.iter_mut()) {
        let mut st = *h;
        for v in x.iter_mut() {
            *v = c.tick(&mut st, *v);
        }
        *h = st;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn series_fma(coefs: &[Df1Coefs], h: &mut [Df1State], x: &mut [f64]) {
    series_body(coefs, h, x)
}

#[inline(always)]
fn series2<const N: usize>(
    coefs: &[Df1Coefs],
    hl: &mut [Df1State],
    hr: &mut [Df1State],
    l: &mut [f64],
    r: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { series2_fma::<N>(coefs, hl, hr, l, r) };
    }
    series2_body::<N>(coefs, hl, hr, l, r)
}

/// [`run_series2`]'s loop for `N` sections with left and right in the two lanes of a 128-bit
/// register: per lane the operations of [`Df1Coefs::tick`], in its order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn series2_fma<const N: usize>(
    coefs: &[Df1Coefs],
    hl: &mut [Df1State],
    hr: &mut [Df1State],
    l: &mut [f64],
    r: &mut [f64],
) {
    use std::arch::x86_64::*;
    let c: [[__m128d; 5]; N] = std::array::from_fn(|i| {
        let k = &coefs[i];
        [k.b0, k.b1, k.b2, k.na1, k.na2].map(|v| _mm_set1_pd(v))
    });
    // h[i][j]: history value j (x1, x2, y1, y2) of section i, (left, right).
    let mut h: [[__m128d; 4]; N] =
        std::array::from_fn(|i| std::array::from_fn(|j| _mm_set_pd(hr[i][j], hl[i][j])));
    let n = l.len().min(r.len());
    for (xl, xr) in l[..n].iter_mut().zip(r[..n].iter_mut()) {
        let mut x = _mm_set_pd(*xr, *xl);
        for i in 0..N {
            let [b0, b1, b2, na1, na2] = c[i];
            let [x1, x2, y1, y2] = h[i];
            let t = _mm_fmadd_pd(b1, x1, _mm_mul_pd(b2, x2));
            let t = _mm_fmadd_pd(na2, y2, t);
            let t = _mm_fmadd_pd(b0, x, t);
            let y = _mm_fmadd_pd(na1, y1, t);
            h[i] = [x, x1, y, y1];
            x = y;
        }
        let mut out = [0.0f64; 2];
        // SAFETY: `out` holds two doubles.
        unsafe { _mm_storeu_pd(out.as_mut_ptr(), x) };
        *xl = out[0];
        *xr = out[1];
    }
    for i in 0..N {
        for j in 0..4 {
            let mut v = [0.0f64; 2];
            // SAFETY: `v` holds two doubles.
            unsafe { _mm_storeu_pd(v.as_mut_ptr(), h[i][j]) };
            hl[i][j] = v[0];
            hr[i][j] = v[1];
        }
    }
}

/// [`run_series2`]'s loop for `N` sections, compiled into the FMA build and the portable one.
#[inline(always)]
fn series2_body<const N: usize>(
    coefs: &[Df1Coefs],
    hl: &mut [Df1State],
    hr: &mut [Df1State],
    l: &mut [f64],
    r: &mut [f64],
) {
    let c: [Df1Coefs; N] = std::array::from_fn(|i| coefs[i]);
    let mut a: [Df1State; N] = std::array::from_fn(|i| hl[i]);
    let mut b: [Df1State; N] = std::array::from_fn(|i| hr[i]);
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
    hl[..N].copy_from_slice(&a);
    hr[..N].copy_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filters::design::{self, prewarp, shelf_a, Section};

    /// Complex numbers, enough for the analog prototypes.
    #[derive(Clone, Copy)]
    struct C(f64, f64);
    impl C {
        fn add(self, o: C) -> C {
            C(self.0 + o.0, self.1 + o.1)
        }
        fn mul(self, o: C) -> C {
            C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
        }
        fn div(self, o: C) -> C {
            let d = o.0 * o.0 + o.1 * o.1;
            C(
                (self.0 * o.0 + self.1 * o.1) / d,
                (self.1 * o.0 - self.0 * o.1) / d,
            )
        }
        fn abs(self) -> f64 {
            self.0.hypot(self.1)
        }
    }

    /// `p0·s² + p1·s + p2`.
    fn quad(s: C, p: [f64; 3]) -> C {
        s.mul(s)
            .mul(C(p[0], 0.0))
            .add(s.mul(C(p[1], 0.0)))
            .add(C(p[2], 0.0))
    }

    /// A response type with its settings, its design and its analog prototype (docs/dsp.md's
    /// table, written out here from the formulas, not from the design code).
    struct Case {
        what: String,
        f0: f64,
        fs: f64,
        section: Section,
        /// Numerator and denominator of H(s), `s` normalised to `f0`.
        analog: ([f64; 3], [f64; 3]),
    }

    fn cases() -> Vec<Case> {
        let mut out = Vec::new();
        for fs in [44100.0, 48000.0, 96000.0] {
            let mut add = |what: &str, f0: f64, section: Section, analog| {
                out.push(Case {
                    what: format!("{what} at {f0} Hz, {fs} Hz"),
                    f0,
                    fs,
                    section,
                    analog,
                })
            };
            for (f0, gain_db, q) in [
                (20.0, 6.0, 1.0),
                (25.0, -12.0, 4.0),
                (30.0, 30.0, 10.0),
                (40.0, -30.0, 0.3),
                (100.0, 2.0, 1.0),
                (1000.0, -6.0, 0.7),
                (5000.0, 1.5, 1.5),
                (16000.0, 6.0, 1.0),
            ] {
                let (t, a) = (prewarp(f0, fs), shelf_a(gain_db));
                add(
                    &format!("bell {gain_db} dB q {q}"),
                    f0,
                    design::bell(t, a, q),
                    ([1.0, a / q, 1.0], [1.0, 1.0 / (a * q), 1.0]),
                );
            }
            for (f0, q) in [(20.0, 0.707), (25.0, 0.541), (30.0, 1.307), (40.0, 2.563)] {
                let t = prewarp(f0, fs);
                add(
                    &format!("high-pass q {q}"),
                    f0,
                    design::high_pass(t, q),
                    ([1.0, 0.0, 0.0], [1.0, 1.0 / q, 1.0]),
                );
                add(
                    &format!("low-pass q {q}"),
                    f0,
                    design::low_pass(t, q),
                    ([0.0, 0.0, 1.0], [1.0, 1.0 / q, 1.0]),
                );
            }
            for (f0, gain_db, q) in [(20.0, 12.0, 0.707), (120.0, -6.0, 1.0), (9000.0, 3.0, 0.9)] {
                let (t, a) = (prewarp(f0, fs), shelf_a(gain_db));
                let r = a.sqrt();
                add(
                    &format!("low shelf {gain_db} dB"),
                    f0,
                    design::low_shelf(t, a, q),
                    ([a, a * r / q, a * a], [a, r / q, 1.0]),
                );
                add(
                    &format!("high shelf {gain_db} dB"),
                    f0,
                    design::high_shelf(t, a, q),
                    ([a * a, a * r / q, a], [1.0, r / q, a]),
                );
            }
            for (f0, q) in [(30.0, 8.0), (1000.0, 0.7), (12000.0, 40.0)] {
                let t = prewarp(f0, fs);
                add(
                    &format!("notch q {q}"),
                    f0,
                    design::notch(t, q),
                    ([1.0, 0.0, 1.0], [1.0, 1.0 / q, 1.0]),
                );
                add(
                    &format!("band-pass q {q}"),
                    f0,
                    design::band_pass(t, q),
                    ([0.0, 1.0 / q, 0.0], [1.0, 1.0 / q, 1.0]),
                );
            }
        }
        out
    }

    /// 200 frequencies, logarithmically from 10 Hz to 0.45·fs, and the centre frequency.
    fn grid(case: &Case) -> Vec<f64> {
        let (lo, hi) = (10.0f64, 0.45 * case.fs);
        let mut f: Vec<f64> = (0..200)
            .map(|i| lo * (hi / lo).powf(i as f64 / 199.0))
            .collect();
        f.push(case.f0);
        f
    }

    #[test]
    fn responses_match_the_bilinear_transform_of_the_analog_prototypes() {
        // Magnitude within 1e-7 dB and phase within 1e-7 rad of the analog prototype through the
        // bilinear map s = j·tan(ω/2)/tan(ω0/2), at every frequency of the grid (within 1e-9 of
        // a notch's zero, where neither is defined). Measured: at most 1.7e-8 dB and 9e-10 rad.
        let mut worst = (0.0f64, 0.0f64);
        for case in cases() {
            let t0 = libm::tan(std::f64::consts::PI * case.f0 / case.fs);
            for f in grid(&case) {
                let w = 2.0 * std::f64::consts::PI * f / case.fs;
                let s = C(0.0, libm::tan(w / 2.0) / t0);
                let want = quad(s, case.analog.0).div(quad(s, case.analog.1));
                let (re, im) = case.section.df1.response(f, case.fs);
                let got = C(re, im);
                if want.abs() < 1e-6 {
                    // A notch's zero: magnitude and phase are not defined; the difference is.
                    let d = C(got.0 - want.0, got.1 - want.1).abs();
                    assert!(d < 1e-9, "{} at {f} Hz: {d:e} off its zero", case.what);
                    continue;
                }
                let db = 20.0 * (got.abs() / want.abs()).log10();
                let phase = got.div(want);
                let phase = phase.1.atan2(phase.0);
                worst = (worst.0.max(db.abs()), worst.1.max(phase.abs()));
                assert!(
                    db.abs() < 1e-7 && phase.abs() < 1e-7,
                    "{} at {f} Hz: {db:e} dB, {phase:e} rad",
                    case.what
                );
            }
        }
        println!("largest deviation {:e} dB, {:e} rad", worst.0, worst.1);
    }

    /// Simper's per-sample SVF, written out from the paper (`g`, `k`, output mix `m`): the slow
    /// reference the impulse responses are held to.
    fn simper_impulse(g: f64, k: f64, m: [f64; 3], n: usize) -> Vec<f64> {
        let a1 = 1.0 / (1.0 + g * (g + k));
        let (a2, mut ic) = (g * a1, [0.0f64; 2]);
        let a3 = g * a2;
        (0..n)
            .map(|i| {
                let v0 = if i == 0 { 1.0 } else { 0.0 };
                let v3 = v0 - ic[1];
                let v1 = a1 * ic[0] + a2 * v3;
                let v2 = ic[1] + a2 * ic[0] + a3 * v3;
                ic = [2.0 * v1 - ic[0], 2.0 * v2 - ic[1]];
                m[0] * v0 + m[1] * v1 + m[2] * v2
            })
            .collect()
    }

    #[test]
    fn impulse_responses_match_the_textbook_svf() {
        // Within 1e-9 of the response's peak over 2 s, at 48 and 96 kHz, low and narrow bands
        // among them (long, slowly decaying responses).
        for fs in [48000.0, 96000.0] {
            // (f0, k, m): responses of every kind, low and narrow among them.
            for (f0, k, m) in [
                (20.0, 1.414, [1.0, -1.414, -1.0]),        // high-pass
                (25.0, 0.765, [0.0, 0.0, 1.0]),            // low-pass
                (30.0, 0.0178, [1.0, 0.0178 * 30.6, 0.0]), // narrow +30 dB bell
                (40.0, 3.0, [1.0, 3.0 * -0.9, 0.0]),       // wide −20 dB bell
                (3000.0, 0.5, [1.0, -0.5, 0.0]),           // notch
                (8000.0, 1.0, [0.0, 1.0, 0.0]),            // band-pass
            ] {
                let g = prewarp(f0, fs);
                let c = Df1Coefs::bilinear(g, k, m[0], m[1], m[2]);
                let n = (2.0 * fs) as usize;
                let want = simper_impulse(g, k, m, n);
                let mut h = [0.0; 4];
                let peak = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let mut err = 0.0f64;
                for (i, w) in want.iter().enumerate() {
                    let y = c.tick(&mut h, if i == 0 { 1.0 } else { 0.0 });
                    err = err.max((y - w).abs() / peak);
                    assert!(
                        (y - w).abs() <= 1e-9 * peak,
                        "{f0} Hz k {k} at {fs} Hz, sample {i}: {y} vs {w}"
                    );
                }
                println!("{f0} Hz k {k} at {fs} Hz: {err:e} of the peak");
            }
        }
    }

    #[test]
    fn one_channel_series_gives_the_bits_of_the_definition() {
        let coefs = [
            Df1Coefs::bilinear(0.01, 1.4, 1.0, -1.4, -1.0),
            Df1Coefs::bilinear(0.2, 0.5, 1.0, 0.8, 0.0),
        ];
        let mut next = crate::dsp::test_signal::noise(99);
        let x: Vec<f64> = (0..301).map(|_| next()).collect();
        let mut want = x.clone();
        let mut h = [[0.0; 4]; 2];
        for v in want.iter_mut() {
            let y = coefs[0].tick(&mut h[0], *v);
            *v = coefs[1].tick(&mut h[1], y);
        }
        for portable in [false, true] {
            crate::dsp::simd::force_portable(portable);
            let mut y = x.clone();
            let mut h = [[0.0; 4]; 2];
            run_series(&coefs, &mut h, &mut y[..150]);
            run_series(&coefs, &mut h, &mut y[150..]);
            crate::dsp::simd::force_portable(false);
            assert!(y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// Every second-order design but the tilt, at low and high frequencies.
    fn sections() -> Vec<(&'static str, Section)> {
        let mut out = Vec::new();
        for fs in [48000.0, 96000.0] {
            for f0 in [20.0, 300.0, 9000.0] {
                let t = prewarp(f0, fs);
                out.push(("bell", design::bell(t, shelf_a(9.0), 2.0)));
                out.push(("bell", design::bell(t, shelf_a(-0.1), 0.5)));
                out.push(("low shelf", design::low_shelf(t, shelf_a(-6.0), 0.7)));
                out.push(("high shelf", design::high_shelf(t, shelf_a(4.0), 1.2)));
                out.push(("high-pass", design::high_pass(t, 0.54)));
                out.push(("low-pass", design::low_pass(t, 2.56)));
                out.push(("notch", design::notch(t, 8.0)));
                out.push(("band-pass", design::band_pass(t, 0.7)));
            }
        }
        out
    }

    #[test]
    fn the_state_carries_over_between_the_two_forms() {
        // Noise through one form for 700 samples, then the state converted and 300 more through
        // the other: within 1e-12 of staying in the first form throughout (noise at ±0.5).
        let mut next = crate::dsp::test_signal::noise(7);
        let x: Vec<f64> = (0..1000).map(|_| next()).collect();
        for (what, sec) in sections() {
            let (svf, df1) = (sec.svf, sec.df1);
            // SVF, then DF1.
            let mut s = [0.0; 2];
            let mut h = [0.0; 4];
            for (i, &v) in x.iter().enumerate() {
                let y = svf.tick(&mut s, v);
                if i == 699 {
                    h = df1.history_from_svf(&svf, &s);
                }
                if i >= 700 {
                    let z = df1.tick(&mut h, v);
                    assert!(
                        (z - y).abs() < 1e-12,
                        "{what}: SVF → DF1, sample {i}: {z} vs {y}"
                    );
                }
            }
            // DF1, then SVF.
            let mut s = [0.0; 2];
            let mut h = [0.0; 4];
            for (i, &v) in x.iter().enumerate() {
                let y = df1.tick(&mut h, v);
                if i == 699 {
                    s = df1.svf_from_history(&svf, &h);
                }
                if i >= 700 {
                    let z = svf.tick(&mut s, v);
                    assert!(
                        (z - y).abs() < 1e-12,
                        "{what}: DF1 → SVF, sample {i}: {z} vs {y}"
                    );
                }
            }
        }
    }
}
