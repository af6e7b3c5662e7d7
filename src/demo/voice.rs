//! The singer stand-in: a vocal-like lead (and a backing harmony built from the same voice).
//!
//! A saw-and-pulse source with vibrato and glide goes through three formant band passes (vowels
//! a, e, i, o, u). Notes marked with a consonant start with a burst of noise band-limited to
//! 5–10 kHz: a long "s" or a short "t". Those bursts are what a de-esser is for.

use super::dsp::{decay, midi_hz, pan, sin_cycles, Osc, PingPong, Reverb, Svf};
use super::rng::Rng;
use super::score::{Consonant, Vowel, SIXTEENTH_SECONDS};
use super::synth::Trigger;

/// Formant centre frequencies (Hz) and gains of each vowel (soprano tables, simplified).
fn formants(v: Vowel) -> ([f64; 3], [f64; 3]) {
    match v {
        Vowel::A => ([800.0, 1150.0, 2900.0], [1.0, 0.55, 0.16]),
        Vowel::E => ([400.0, 1900.0, 2750.0], [1.0, 0.4, 0.2]),
        Vowel::I => ([300.0, 2150.0, 2950.0], [1.0, 0.32, 0.2]),
        Vowel::O => ([480.0, 820.0, 2830.0], [1.0, 0.45, 0.1]),
        Vowel::U => ([340.0, 720.0, 2700.0], [1.0, 0.25, 0.06]),
    }
}

const FORMANT_Q: [f64; 3] = [4.0, 6.0, 8.0];

/// The consonant noise: band-limited to roughly 5–10 kHz with a peak near 7.5 kHz.
#[derive(Clone, Debug)]
struct Sibilance {
    hp: [Svf; 2],
    lp: [Svf; 2],
    peak: Svf,
    env: f64,
    age: u32,
    rise: u32,
    hold: u32,
    decay_k: f64,
    level: f64,
}

impl Sibilance {
    fn new(sr: f64) -> Self {
        Self {
            hp: [Svf::new(5000.0, 0.7, sr), Svf::new(5000.0, 0.7, sr)],
            lp: [Svf::new(10500.0, 0.6, sr), Svf::new(11000.0, 0.8, sr)],
            peak: Svf::new(7500.0, 2.0, sr),
            env: 0.0,
            age: u32::MAX,
            rise: 1,
            hold: 0,
            decay_k: 0.0,
            level: 0.0,
        }
    }

    fn start(&mut self, c: Consonant, level: f64, sr: f64) {
        let (rise, hold, tau, gain) = match c {
            Consonant::None => return,
            Consonant::S => (0.012, 0.065, 0.02, 1.0),
            Consonant::T => (0.0006, 0.004, 0.009, 1.2),
        };
        self.age = 0;
        self.rise = ((rise * sr) as u32).max(1);
        self.hold = (hold * sr) as u32;
        self.decay_k = decay(tau, sr);
        self.level = level * gain;
    }

    #[inline]
    fn tick(&mut self, rng: &mut Rng) -> f64 {
        if self.age == u32::MAX {
            return 0.0;
        }
        if self.age < self.rise {
            self.env = self.age as f64 / self.rise as f64;
        } else if self.age >= self.hold {
            self.env *= self.decay_k;
            if self.env < 1e-5 {
                self.age = u32::MAX;
                return 0.0;
            }
        }
        self.age += 1;
        let n = rng.bipolar();
        let x = self.hp[0].high(n);
        let x = self.hp[1].high(x);
        let x = self.lp[0].low(x);
        let x = self.lp[1].low(x);
        let x = x + 0.6 * self.peak.band(x);
        x * self.env * self.level
    }
}

/// One singing voice.
#[derive(Clone, Debug)]
struct Vocal {
    sr: f64,
    saw: Osc,
    pulse: Osc,
    freq: f64,
    target: f64,
    glide: f64,
    detune: f64,
    age: u32,
    vib: f64,
    vib_dt: f64,
    f_now: [f64; 3],
    f_target: [f64; 3],
    g_now: [f64; 3],
    g_target: [f64; 3],
    smooth: f64,
    filters: [Svf; 3],
    body: Svf,
    amp: f64,
    vel: f64,
    wait: u32,
    gate: u32,
    attack: f64,
    release_k: f64,
    sib: Sibilance,
    sib_level: f64,
}

impl Vocal {
    fn new(sr: f64, cents: f64, sib_level: f64) -> Self {
        let (f, g) = formants(Vowel::A);
        Self {
            sr,
            saw: Osc::default(),
            pulse: Osc::default(),
            freq: 0.0,
            target: 0.0,
            glide: 0.0,
            detune: libm::exp2(cents / 1200.0),
            age: 0,
            vib: 0.0,
            vib_dt: 5.4 / sr,
            f_now: f,
            f_target: f,
            g_now: g,
            g_target: g,
            smooth: 1.0 - decay(0.025, sr),
            filters: core::array::from_fn(|i| Svf::new(f[i], FORMANT_Q[i], sr)),
            body: Svf::new(2500.0, 0.7, sr),
            amp: 0.0,
            vel: 0.0,
            wait: 0,
            gate: 0,
            attack: 1.0 - decay(0.018, sr),
            release_k: decay(0.07, sr),
            sib: Sibilance::new(sr),
            sib_level,
        }
    }

    fn trigger(&mut self, t: &Trigger) {
        let sr = self.sr;
        self.target = midi_hz(t.pitch as f64) * self.detune / sr;
        let legato = self.amp > 0.05 * self.vel;
        if legato {
            self.glide = 1.0 - decay(0.012, sr);
        } else {
            self.glide = 1.0;
            self.freq = self.target;
            self.age = 0;
        }
        let (f, g) = formants(t.vowel);
        self.f_target = f;
        self.g_target = g;
        self.vel = t.vel;
        self.wait = match t.consonant {
            Consonant::S => (0.04 * sr) as u32,
            Consonant::T => (0.008 * sr) as u32,
            Consonant::None => 0,
        };
        self.gate = ((t.len as f64 * 0.9) as u32).saturating_sub(self.wait);
        self.sib.start(t.consonant, self.sib_level * t.vel, sr);
    }

    /// One sample: (voiced sound, consonant noise).
    #[inline]
    fn tick(&mut self, rng: &mut Rng) -> (f64, f64) {
        let sib = self.sib.tick(rng);
        if self.wait > 0 {
            self.wait -= 1;
            self.amp *= self.release_k;
        } else if self.gate > 0 {
            self.gate -= 1;
            self.amp += (self.vel - self.amp) * self.attack;
        } else {
            self.amp *= self.release_k;
        }
        if self.amp < 1e-6 {
            return (0.0, sib);
        }
        // Vibrato fades in after 150 ms, up to ±0.3 semitone.
        let secs = self.age as f64 / self.sr;
        self.age = self.age.saturating_add(1);
        let depth = ((secs - 0.15) / 0.3).clamp(0.0, 1.0) * 0.3;
        let vib = sin_cycles(self.vib) * depth;
        self.vib += self.vib_dt;
        if self.vib >= 1.0 {
            self.vib -= 1.0;
        }
        self.freq += (self.target - self.freq) * self.glide;
        let dt = self.freq * (1.0 + vib * (core::f64::consts::LN_2 / 12.0));
        let src = self.saw.saw(dt) + 0.35 * self.pulse.square(dt) + 0.04 * rng.bipolar();
        let mut out = 0.22 * self.body.low(src);
        #[allow(clippy::needless_range_loop)] // five parallel arrays
        for i in 0..3 {
            // Glide the formants to the new vowel; once there, the coefficients stay put.
            if self.f_now[i] != self.f_target[i] {
                let step = (self.f_target[i] - self.f_now[i]) * self.smooth;
                if step.abs() < 1e-3 {
                    self.f_now[i] = self.f_target[i];
                    self.g_now[i] = self.g_target[i];
                } else {
                    self.f_now[i] += step;
                    self.g_now[i] += (self.g_target[i] - self.g_now[i]) * self.smooth;
                }
                self.filters[i].set(self.f_now[i], FORMANT_Q[i], self.sr);
            }
            out += self.g_now[i] * self.filters[i].band(src);
        }
        // A little loudness movement with the vibrato, as a voice has.
        (out * self.amp * (1.0 + 0.25 * vib), sib)
    }
}

/// Which of the two sung parts an instance plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Singer {
    /// The lead: one voice in the centre, bright sibilance, echo and room.
    Lead,
    /// The backing harmony: two detuned voices spread wide, softer consonants, more room.
    Backing,
}

/// A sung part with its effects.
pub(crate) struct Voice {
    rng: Rng,
    voices: Vec<(Vocal, (f64, f64))>,
    level: f64,
    echo: PingPong,
    echo_send: f64,
    room: Reverb,
    room_send: f64,
}

/// Lead and backing output levels (linear).
const LEAD: f64 = 0.63;
const BACKING: f64 = 0.15;

impl Voice {
    pub(crate) fn new(singer: Singer, sample_rate: f64, rng: Rng) -> Self {
        let sr = sample_rate;
        let (voices, level, echo_send, room_send) = match singer {
            Singer::Lead => (
                vec![(Vocal::new(sr, 0.0, 0.75), pan(0.0))],
                LEAD,
                0.22,
                0.16,
            ),
            Singer::Backing => (
                vec![
                    (Vocal::new(sr, -7.0, 0.3), pan(-0.65)),
                    (Vocal::new(sr, 7.0, 0.3), pan(0.65)),
                ],
                BACKING,
                0.1,
                0.3,
            ),
        };
        Self {
            rng,
            voices,
            level,
            echo: PingPong::new(3.0 * SIXTEENTH_SECONDS, 0.3, 3500.0, sr),
            echo_send,
            room: Reverb::new(1.3, 1.8, 4000.0, sr),
            room_send,
        }
    }

    pub(crate) fn trigger(&mut self, t: &Trigger) {
        for (v, _) in &mut self.voices {
            v.trigger(t);
        }
    }

    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
            let (mut a, mut b) = (0.0, 0.0);
            let (mut sa, mut sb) = (0.0, 0.0);
            for (v, g) in &mut self.voices {
                let (voiced, sib) = v.tick(&mut self.rng);
                a += voiced * g.0;
                b += voiced * g.1;
                sa += sib * g.0;
                sb += sib * g.1;
            }
            a *= self.level;
            b *= self.level;
            sa *= self.level;
            sb *= self.level;
            // The effects get the consonants much reduced, as if their sends were de-essed.
            let (ea, eb) = (a + 0.15 * sa, b + 0.15 * sb);
            let (el, er) = self.echo.tick((ea + eb) * self.echo_send);
            let (rl, rr) = self.room.tick(ea * self.room_send, eb * self.room_send);
            *ol += a + sa + el + rl;
            *or += b + sb + er + rr;
        }
    }
}
