//! Small deterministic building blocks for the demo's instruments: oscillators, a state-variable
//! filter, envelopes, panning, a ping-pong echo and a small reverb.
//!
//! Everything here is plain IEEE arithmetic (which is bit-exact across x86_64 and aarch64 as long
//! as nothing is fused) or the `libm` crate for the few transcendental calls made when a note
//! starts. The per-sample paths use [`sin_cycles`] (a polynomial) and never the C library.

use crate::dsp::filters::SvfCoefs;

/// A full turn in radians.
const TAU: f64 = core::f64::consts::TAU;

/// `sin(2π·x)` for |x| ≤ 0.5 by a degree-13 odd polynomial after folding (error below 1e-9).
/// A `const fn`, so the sine table below is computed by the compiler, identically everywhere.
const fn sin_poly(x: f64) -> f64 {
    let a = if x < 0.0 { -x } else { x };
    let folded = if a > 0.25 { 0.5 - a } else { a };
    let y = folded * TAU;
    let y2 = y * y;
    let p = 1.0 / 6_227_020_800.0;
    let p = p * y2 - 1.0 / 39_916_800.0;
    let p = p * y2 + 1.0 / 362_880.0;
    let p = p * y2 - 1.0 / 5_040.0;
    let p = p * y2 + 1.0 / 120.0;
    let p = p * y2 - 1.0 / 6.0;
    let s = y + y * y2 * p;
    if x < 0.0 {
        -s
    } else {
        s
    }
}

/// Size of the sine table (one period); linear interpolation error is about 1e-6 (-118 dB).
const SINE_SIZE: usize = 2048;

/// One period of a sine plus a guard point, built at compile time.
static SINE: [f64; SINE_SIZE + 1] = {
    let mut t = [0.0; SINE_SIZE + 1];
    let mut i = 0;
    while i <= SINE_SIZE {
        let x = i as f64 / SINE_SIZE as f64;
        t[i] = sin_poly(if x > 0.5 { x - 1.0 } else { x });
        i += 1;
    }
    t
};

/// `sin(2π·phase)` for any phase above -4, by table lookup with linear interpolation. The
/// offset keeps the index positive so that wrapping is a bit mask rather than a `floor`.
#[inline]
pub(crate) fn sin_cycles(phase: f64) -> f64 {
    debug_assert!(phase > -4.0);
    let x = (phase + 4.0) * SINE_SIZE as f64;
    // Through i64: x86_64 converts signed integers in one instruction, unsigned ones in many.
    let whole = x as i64;
    let frac = x - whole as f64;
    let i = whole as usize & (SINE_SIZE - 1);
    let a = SINE[i];
    a + frac * (SINE[i + 1] - a)
}

/// `tan(π·f/sr)`, the prewarped integrator gain of a TPT filter, without the C library.
#[inline]
pub(crate) fn prewarp(freq: f64, sample_rate: f64) -> f64 {
    let ratio = (freq / sample_rate).clamp(1e-6, 0.49);
    let half = ratio * 0.5; // angle π·ratio expressed in turns, at most 0.245
    sin_poly(half) / sin_poly(0.25 - half)
}

/// Frequency in Hz of a (possibly fractional) MIDI note number.
pub(crate) fn midi_hz(note: f64) -> f64 {
    440.0 * libm::exp2((note - 69.0) / 12.0)
}

/// Per-sample multiplier of an exponential decay with time constant `seconds`.
pub(crate) fn decay(seconds: f64, sample_rate: f64) -> f64 {
    libm::exp(-1.0 / (seconds * sample_rate).max(1e-9))
}

/// Constant-power pan law: `pan` from -1 (left) to +1 (right) to (left, right) gains.
pub(crate) fn pan(pan: f64) -> (f64, f64) {
    let angle = (pan.clamp(-1.0, 1.0) + 1.0) * core::f64::consts::FRAC_PI_4;
    (libm::cos(angle), libm::sin(angle))
}

/// A smooth saturator: a rational approximation of tanh, exact at 0 and bounded by ±1.
#[inline]
pub(crate) fn soft_clip(x: f64) -> f64 {
    if x > 3.0 {
        1.0
    } else if x < -3.0 {
        -1.0
    } else {
        let x2 = x * x;
        x * (27.0 + x2) / (27.0 + 9.0 * x2)
    }
}

/// The PolyBLEP residual that removes most aliasing from a unit step at phase 0.
#[inline]
fn blep(t: f64, dt: f64) -> f64 {
    if t < dt {
        let x = t / dt;
        x + x - x * x - 1.0
    } else if t > 1.0 - dt {
        let x = (t - 1.0) / dt;
        x * x + x + x + 1.0
    } else {
        0.0
    }
}

/// A band-limited (PolyBLEP) sawtooth and pulse oscillator with a phase in turns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Osc {
    pub(crate) phase: f64,
}

impl Osc {
    pub(crate) fn with_phase(phase: f64) -> Self {
        Self { phase }
    }

    /// Advances by `dt` turns and returns the sawtooth in [-1, 1].
    #[inline]
    pub(crate) fn saw(&mut self, dt: f64) -> f64 {
        let t = self.phase;
        let out = 2.0 * t - 1.0 - blep(t, dt);
        self.advance(dt);
        out
    }

    /// Advances by `dt` turns and returns a square wave in [-1, 1].
    #[inline]
    pub(crate) fn square(&mut self, dt: f64) -> f64 {
        let t = self.phase;
        let mut t2 = t + 0.5;
        if t2 >= 1.0 {
            t2 -= 1.0;
        }
        let out = (if t < 0.5 { 1.0 } else { -1.0 }) + blep(t, dt) - blep(t2, dt);
        self.advance(dt);
        out
    }

    /// Advances by `dt` turns and returns a sine.
    #[inline]
    pub(crate) fn sine(&mut self, dt: f64) -> f64 {
        let out = sin_cycles(self.phase);
        self.advance(dt);
        out
    }

    #[inline]
    pub(crate) fn advance(&mut self, dt: f64) {
        self.phase += dt;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
    }
}

/// Outputs of one [`Svf`] step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SvfOut {
    pub(crate) low: f64,
    pub(crate) band: f64,
    pub(crate) high: f64,
}

/// Topology-preserving state-variable filter (Simper / Zavalishin): low, band and high pass at once,
/// stable under per-sample modulation. Simper's original recursion on the engine's SVF
/// coefficients ([`SvfCoefs`], with the demo's own fast prewarp).
#[derive(Clone, Debug)]
pub(crate) struct Svf {
    c: SvfCoefs,
    ic1: f64,
    ic2: f64,
}

impl Default for Svf {
    /// A filter not yet tuned (every coefficient zero: the high output is the input, the others
    /// silent) until [`Svf::set`].
    fn default() -> Self {
        Self {
            c: SvfCoefs {
                k: 0.0,
                a1: 0.0,
                a2: 0.0,
                a3: 0.0,
                a11: 0.0,
                a22: 0.0,
                b1: 0.0,
                b2: 0.0,
                c1: 0.0,
                c2: 0.0,
                d: 0.0,
            },
            ic1: 0.0,
            ic2: 0.0,
        }
    }
}

impl Svf {
    pub(crate) fn new(freq: f64, q: f64, sample_rate: f64) -> Self {
        let mut f = Self::default();
        f.set(freq, q, sample_rate);
        f
    }

    #[inline]
    pub(crate) fn set(&mut self, freq: f64, q: f64, sample_rate: f64) {
        self.c = SvfCoefs::new(prewarp(freq, sample_rate), 1.0 / q, 0.0, 0.0, 1.0);
    }

    #[inline]
    pub(crate) fn tick(&mut self, x: f64) -> SvfOut {
        let c = &self.c;
        let v3 = x - self.ic2;
        let v1 = c.a1 * self.ic1 + c.a2 * v3;
        let v2 = self.ic2 + c.a2 * self.ic1 + c.a3 * v3;
        self.ic1 = 2.0 * v1 - self.ic1;
        self.ic2 = 2.0 * v2 - self.ic2;
        SvfOut {
            low: v2,
            band: v1,
            high: x - c.k * v1 - v2,
        }
    }

    #[inline]
    pub(crate) fn low(&mut self, x: f64) -> f64 {
        self.tick(x).low
    }

    #[inline]
    pub(crate) fn high(&mut self, x: f64) -> f64 {
        self.tick(x).high
    }

    /// Band pass normalized to unity gain at the centre frequency.
    #[inline]
    pub(crate) fn band(&mut self, x: f64) -> f64 {
        self.c.k * self.tick(x).band
    }
}

/// A one-pole low pass, used for smoothing and gentle tone shaping.
#[derive(Clone, Debug, Default)]
pub(crate) struct OnePole {
    a: f64,
    pub(crate) y: f64,
}

impl OnePole {
    pub(crate) fn new(freq: f64, sample_rate: f64) -> Self {
        Self {
            a: 1.0 - libm::exp(-TAU * freq / sample_rate),
            y: 0.0,
        }
    }

    #[inline]
    pub(crate) fn tick(&mut self, x: f64) -> f64 {
        self.y += self.a * (x - self.y);
        self.y
    }
}

/// A one-pole DC blocker (high pass near 10 Hz): saturating asymmetric waveforms leaves a
/// small offset that a mastering input should not have.
#[derive(Clone, Debug)]
pub(crate) struct DcBlock {
    r: f64,
    x1: f64,
    y1: f64,
}

impl DcBlock {
    pub(crate) fn new(sample_rate: f64) -> Self {
        Self {
            r: 1.0 - TAU * 10.0 / sample_rate,
            x1: 0.0,
            y1: 0.0,
        }
    }

    #[inline]
    pub(crate) fn tick(&mut self, x: f64) -> f64 {
        let y = x - self.x1 + self.r * self.y1;
        self.x1 = x;
        self.y1 = y;
        y
    }
}

/// A fixed delay line (circular buffer, allocated once).
#[derive(Clone, Debug)]
pub(crate) struct Delay {
    buf: Vec<f64>,
    pos: usize,
}

impl Delay {
    pub(crate) fn new(frames: usize) -> Self {
        Self {
            buf: vec![0.0; frames.max(1)],
            pos: 0,
        }
    }

    /// Writes `x` and returns the sample written `len` frames ago.
    #[inline]
    pub(crate) fn tick(&mut self, x: f64) -> f64 {
        let out = self.buf[self.pos];
        self.buf[self.pos] = x;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        out
    }
}

/// A stereo ping-pong echo with darkened repeats; returns only the wet signal.
#[derive(Clone, Debug)]
pub(crate) struct PingPong {
    left: Delay,
    right: Delay,
    tone_in: OnePole,
    tone_fb: OnePole,
    feedback: f64,
}

impl PingPong {
    pub(crate) fn new(seconds: f64, feedback: f64, tone_hz: f64, sample_rate: f64) -> Self {
        let frames = libm::round(seconds * sample_rate) as usize;
        Self {
            left: Delay::new(frames),
            right: Delay::new(frames),
            tone_in: OnePole::new(tone_hz, sample_rate),
            tone_fb: OnePole::new(tone_hz * 1.5, sample_rate),
            feedback,
        }
    }

    /// Feeds a mono signal; returns the (left, right) echoes.
    #[inline]
    pub(crate) fn tick(&mut self, x: f64) -> (f64, f64) {
        let input = self.tone_in.tick(x);
        let r_prev = self.right.peek();
        let l = self
            .left
            .tick(input + self.feedback * self.tone_fb.tick(r_prev));
        let r = self.right.tick(l);
        (l, r)
    }
}

impl Delay {
    /// The sample that the next [`Delay::tick`] will return.
    #[inline]
    fn peek(&self) -> f64 {
        self.buf[self.pos]
    }
}

/// A small stereo feedback-delay-network reverb (8 lines, Hadamard mixing, damped); returns only
/// the wet signal.
#[derive(Clone, Debug)]
pub(crate) struct Reverb {
    lines: [Delay; 8],
    gains: [f64; 8],
    damp: [OnePole; 8],
    pre: Delay,
}

impl Reverb {
    /// `size` scales the line lengths (1.0 is a medium room), `rt60` is the decay time in seconds.
    pub(crate) fn new(size: f64, rt60: f64, damping_hz: f64, sample_rate: f64) -> Self {
        const MS: [f64; 8] = [23.3, 27.9, 31.7, 35.3, 39.1, 43.7, 47.9, 53.3];
        let frames = MS.map(|ms| libm::round(ms * 0.001 * size * sample_rate) as usize);
        let gains = frames.map(|n| libm::pow(10.0, -3.0 * n as f64 / (rt60 * sample_rate)));
        Self {
            lines: frames.map(Delay::new),
            gains,
            damp: [(); 8].map(|_| OnePole::new(damping_hz, sample_rate)),
            pre: Delay::new(libm::round(0.012 * sample_rate) as usize),
        }
    }

    /// Feeds a stereo input; returns the (left, right) reverb.
    #[inline]
    pub(crate) fn tick(&mut self, l: f64, r: f64) -> (f64, f64) {
        let input = self.pre.tick(0.5 * (l + r));
        let mut v = [0.0; 8];
        for ((x, (line, gain)), damp) in v
            .iter_mut()
            .zip(self.lines.iter().zip(&self.gains))
            .zip(&mut self.damp)
        {
            *x = damp.tick(line.peek() * gain);
        }
        let out_l = v[0] - v[2] + v[4] - v[6];
        let out_r = v[1] - v[3] + v[5] - v[7];
        // Fast Walsh-Hadamard transform, scaled to stay orthonormal.
        let mut h = 1;
        while h < 8 {
            let mut i = 0;
            while i < 8 {
                for j in i..i + h {
                    let (a, b) = (v[j], v[j + h]);
                    v[j] = a + b;
                    v[j + h] = a - b;
                }
                i += 2 * h;
            }
            h *= 2;
        }
        const SIGNS: [f64; 8] = [1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0];
        for ((line, x), sign) in self.lines.iter_mut().zip(v).zip(SIGNS) {
            line.tick(x * FRAC_1_SQRT_8 + input * sign);
        }
        (out_l * 0.5, out_r * 0.5)
    }
}

/// 1/√8: keeps the 8-point Hadamard transform orthonormal.
const FRAC_1_SQRT_8: f64 = 0.353_553_390_593_273_8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_matches_libm() {
        let mut worst: f64 = 0.0;
        for i in -2000..2000 {
            let p = i as f64 / 997.0;
            worst = worst.max((sin_cycles(p) - libm::sin(TAU * p)).abs());
        }
        assert!(worst < 2e-6, "worst {worst}");
        for i in -500..500 {
            let x = i as f64 / 1000.0;
            assert!((sin_poly(x) - libm::sin(TAU * x)).abs() < 1e-9);
        }
    }

    #[test]
    fn prewarp_matches_tan() {
        for f in [20.0, 440.0, 5000.0, 15000.0, 22000.0] {
            let want = libm::tan(core::f64::consts::PI * f / 48000.0);
            assert!((prewarp(f, 48000.0) - want).abs() < 1e-8 * want.max(1.0));
        }
    }

    #[test]
    fn saw_stays_bounded() {
        let mut o = Osc::default();
        for _ in 0..48000 {
            assert!(o.saw(1000.0 / 48000.0).abs() <= 1.1);
        }
    }
}
