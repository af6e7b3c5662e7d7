//! The pitched instruments other than the voice: bass, electric-piano keys, pads and the
//! arpeggio pluck. Each takes note triggers and adds a stereo chunk to the part's buffers.

use super::dsp::{decay, midi_hz, pan, sin_cycles, soft_clip, DcBlock, Osc, PingPong, Reverb, Svf};
use super::rng::Rng;
use super::score::SIXTEENTH_SECONDS;
use super::synth::Trigger;

/// Finds a free voice, or the quietest one to take over.
fn pick<T>(pool: &mut [T], level: impl Fn(&T) -> f64) -> &mut T {
    let mut best = 0;
    for i in 1..pool.len() {
        if level(&pool[i]) < level(&pool[best]) {
            best = i;
        }
    }
    &mut pool[best]
}

/// Monophonic sub bass: a sine for the fundamental (40–60 Hz on the roots) plus a filtered saw
/// for definition, lightly saturated, legato between notes.
pub(crate) struct Bass {
    sr: f64,
    sub: Osc,
    saw: Osc,
    freq: f64,
    target: f64,
    glide: f64,
    lpf: Svf,
    fenv: f64,
    fenv_k: f64,
    amp: f64,
    vel: f64,
    gate: u32,
    attack: f64,
    release_k: f64,
    dc: DcBlock,
}

/// Bass output level (linear).
const BASS: f64 = 0.36;

impl Bass {
    pub(crate) fn new(sample_rate: f64) -> Self {
        Self {
            sr: sample_rate,
            sub: Osc::default(),
            saw: Osc::default(),
            freq: 0.0,
            target: 0.0,
            glide: 1.0 - decay(0.006, sample_rate),
            lpf: Svf::new(400.0, 0.9, sample_rate),
            fenv: 0.0,
            fenv_k: decay(0.09, sample_rate),
            amp: 0.0,
            vel: 0.0,
            gate: 0,
            attack: 1.0 - decay(0.003, sample_rate),
            release_k: decay(0.02, sample_rate),
            dc: DcBlock::new(sample_rate),
        }
    }

    pub(crate) fn trigger(&mut self, t: &Trigger) {
        self.target = midi_hz(t.pitch as f64) / self.sr;
        if self.amp < 1e-4 {
            // From silence: start cleanly at zero phase and the right pitch.
            self.freq = self.target;
            self.sub = Osc::default();
            self.saw = Osc::default();
        }
        self.vel = t.vel;
        self.gate = (t.len as f64 * 0.92) as u32;
        self.fenv = 1.0;
    }

    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        let gain = BASS * core::f64::consts::FRAC_1_SQRT_2;
        for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
            if self.gate > 0 {
                self.gate -= 1;
                self.amp += (self.vel - self.amp) * self.attack;
            } else {
                self.amp *= self.release_k;
            }
            self.freq += (self.target - self.freq) * self.glide;
            // The filter envelope settles within half a second; after that the cutoff stays put.
            if self.fenv > 1e-4 {
                let cutoff = 110.0 + 1500.0 * self.fenv * self.vel;
                self.fenv *= self.fenv_k;
                self.lpf.set(cutoff, 1.1, self.sr);
            }
            let sub = self.sub.sine(self.freq);
            let saw = self.lpf.low(self.saw.saw(self.freq));
            let out = self
                .dc
                .tick(soft_clip(1.3 * (0.85 * sub + 0.4 * saw)) * self.amp * gain);
            *ol += out;
            *or += out;
        }
    }
}

/// One electric-piano voice: two-operator FM (ratio 1) with a decaying index and a faint tine.
#[derive(Clone, Debug, Default)]
struct KeyVoice {
    car: f64,
    modu: f64,
    tine: f64,
    dt: f64,
    index: f64,
    index_k: f64,
    tine_amp: f64,
    tine_k: f64,
    amp: f64,
    attack: u32,
    age: u32,
    gate: u32,
    decay_k: f64,
    release_k: f64,
    gains: (f64, f64),
}

impl KeyVoice {
    fn level(&self) -> f64 {
        if self.amp < 1e-4 {
            0.0
        } else if self.gate > 0 {
            self.amp + 1.0
        } else {
            self.amp
        }
    }

    #[inline]
    fn tick(&mut self) -> f64 {
        let attack = if self.age < self.attack {
            self.age as f64 / self.attack as f64
        } else {
            1.0
        };
        self.age = self.age.saturating_add(1);
        if self.gate > 0 {
            self.gate -= 1;
            self.amp *= self.decay_k;
        } else {
            self.amp *= self.release_k;
        }
        let m = sin_cycles(self.modu);
        let c = sin_cycles(self.car + (0.12 + self.index) * m * (1.0 / core::f64::consts::TAU));
        let t = if self.tine_amp > 1e-3 {
            let t = sin_cycles(self.tine) * self.tine_amp;
            self.tine_amp *= self.tine_k;
            t
        } else {
            0.0
        };
        self.index *= self.index_k;
        self.car += self.dt;
        if self.car >= 1.0 {
            self.car -= 1.0;
        }
        self.modu += self.dt * 1.0007;
        if self.modu >= 1.0 {
            self.modu -= 1.0;
        }
        self.tine += self.dt * 13.93;
        if self.tine >= 1.0 {
            self.tine -= 1.0;
        }
        (c + t) * self.amp * attack
    }
}

/// Electric-piano keys: 12 voices, slight detune per note, notes spread across the stereo field,
/// a gentle auto-pan and a room.
pub(crate) struct Keys {
    sr: f64,
    rng: Rng,
    voices: [KeyVoice; 12],
    lfo: f64,
    lfo_dt: f64,
    /// FM at a 1:1 ratio puts a sideband at 0 Hz: these high passes take the DC out.
    dc_block: [Svf; 2],
    room: Reverb,
}

/// Keys output level (linear).
const KEYS: f64 = 0.12;

impl Keys {
    pub(crate) fn new(sample_rate: f64, rng: Rng) -> Self {
        Self {
            sr: sample_rate,
            rng,
            voices: Default::default(),
            lfo: 0.0,
            lfo_dt: 1.0 / (8.0 * SIXTEENTH_SECONDS) / sample_rate,
            dc_block: [
                Svf::new(60.0, 0.7, sample_rate),
                Svf::new(60.0, 0.7, sample_rate),
            ],
            room: Reverb::new(1.0, 1.4, 4500.0, sample_rate),
        }
    }

    pub(crate) fn trigger(&mut self, t: &Trigger) {
        let sr = self.sr;
        let cents = self.rng.range(-4.0, 4.0);
        let hz = midi_hz(t.pitch as f64 + cents / 100.0);
        // Spread by pitch: low notes a little left, high notes a little right.
        let p = ((t.pitch as f64 - 61.0) / 7.0).clamp(-0.8, 0.8);
        let v = t.vel;
        let voice = pick(&mut self.voices, KeyVoice::level);
        *voice = KeyVoice {
            car: 0.0,
            modu: 0.0,
            tine: 0.0,
            dt: hz / sr,
            index: 2.6 * v,
            index_k: decay(0.35, sr),
            tine_amp: 0.22 * v,
            tine_k: decay(0.03, sr),
            amp: KEYS * v,
            attack: (0.0015 * sr) as u32,
            age: 0,
            gate: t.len,
            decay_k: decay(2.2 - (t.pitch as f64 - 55.0) * 0.05, sr),
            release_k: decay(0.05, sr),
            gains: pan(p),
        };
    }

    /// Adds a chunk to `l` and `r`, which arrive zeroed. Voices are rendered one after the other
    /// over the whole chunk (independent samples pipeline well); each stops at the same sample
    /// whatever the chunk size.
    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        for v in &mut self.voices {
            for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
                if v.amp < 1e-4 {
                    break;
                }
                let s = v.tick();
                *ol += s * v.gains.0;
                *or += s * v.gains.1;
            }
        }
        for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
            let wobble = 0.25 * sin_cycles(self.lfo);
            self.lfo += self.lfo_dt;
            if self.lfo >= 1.0 {
                self.lfo -= 1.0;
            }
            let a = self.dc_block[0].high(*ol) * (1.0 + wobble);
            let b = self.dc_block[1].high(*or) * (1.0 - wobble);
            let (rl, rr) = self.room.tick(a, b);
            *ol = a + 0.35 * rl;
            *or = b + 0.35 * rr;
        }
    }
}

/// One pad note: two saws detuned against each other, one leaning left and one right, with a
/// slow swell.
#[derive(Clone, Debug, Default)]
struct PadVoice {
    osc: [Osc; 2],
    dt: [f64; 2],
    amp: f64,
    peak: f64,
    rise: f64,
    gate: u32,
    release_k: f64,
}

/// Pads: detuned saw chords through a slowly moving low pass, wide, with a long room.
pub(crate) struct Pads {
    sr: f64,
    rng: Rng,
    voices: [PadVoice; 10],
    filters: [Svf; 2],
    highpass: [Svf; 2],
    lfo: f64,
    lfo_dt: f64,
    /// Samples rendered so far (paces the filter updates identically whatever the chunking).
    clock: u64,
    room: Reverb,
}

/// Pads output level (linear).
const PADS: f64 = 0.065;

impl Pads {
    pub(crate) fn new(sample_rate: f64, rng: Rng) -> Self {
        Self {
            sr: sample_rate,
            rng,
            voices: Default::default(),
            filters: [
                Svf::new(1000.0, 0.8, sample_rate),
                Svf::new(1000.0, 0.8, sample_rate),
            ],
            highpass: [
                Svf::new(160.0, 0.7, sample_rate),
                Svf::new(160.0, 0.7, sample_rate),
            ],
            lfo: 0.0,
            lfo_dt: 1.0 / (64.0 * SIXTEENTH_SECONDS) / sample_rate,
            clock: 0,
            room: Reverb::new(1.6, 2.5, 3500.0, sample_rate),
        }
    }

    pub(crate) fn trigger(&mut self, t: &Trigger) {
        let sr = self.sr;
        let base = t.pitch as f64;
        let phases = [self.rng.unit(), self.rng.unit()];
        let voice = pick(&mut self.voices, |v| {
            if v.gate > 0 {
                v.amp + 1.0
            } else if v.amp < 3e-5 {
                0.0
            } else {
                v.amp
            }
        });
        *voice = PadVoice {
            osc: phases.map(Osc::with_phase),
            dt: [-0.08, 0.08].map(|d| midi_hz(base + d) / sr),
            amp: 0.0,
            peak: PADS * t.vel,
            rise: 1.0 / (0.45 * sr),
            gate: t.len,
            release_k: decay(0.2, sr),
        };
    }

    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        const SIDE: (f64, f64) = (0.89, 0.45); // pan about ±0.6
        for v in &mut self.voices {
            for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
                if v.gate > 0 {
                    v.gate -= 1;
                    v.amp = (v.amp + v.peak * v.rise).min(v.peak);
                } else {
                    if v.amp < 3e-5 {
                        break;
                    }
                    v.amp *= v.release_k;
                }
                let s0 = v.osc[0].saw(v.dt[0]);
                let s1 = v.osc[1].saw(v.dt[1]);
                *ol += v.amp * (s0 * SIDE.0 + s1 * SIDE.1);
                *or += v.amp * (s0 * SIDE.1 + s1 * SIDE.0);
            }
        }
        for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
            // The sweep is slow: new coefficients every 32 samples are plenty.
            if self.clock.is_multiple_of(32) {
                let cutoff = 1100.0 + 500.0 * sin_cycles(self.lfo);
                self.filters[0].set(cutoff, 0.8, self.sr);
                self.filters[1].set(cutoff * 1.05, 0.8, self.sr);
            }
            self.clock += 1;
            self.lfo += self.lfo_dt;
            if self.lfo >= 1.0 {
                self.lfo -= 1.0;
            }
            let a = self.highpass[0].high(self.filters[0].low(*ol));
            let b = self.highpass[1].high(self.filters[1].low(*or));
            let (rl, rr) = self.room.tick(a, b);
            *ol = a + 0.4 * rl;
            *or = b + 0.4 * rr;
        }
    }
}

/// One pluck of the arpeggio: saw plus square through an enveloped low pass.
#[derive(Clone, Debug, Default)]
struct PluckVoice {
    saw: Osc,
    sq: Osc,
    dt: f64,
    lpf: Svf,
    fenv: f64,
    amp: f64,
    gate: u32,
    age: u32,
}

/// The arpeggio: sixteenth-note plucks with a dotted-eighth ping-pong echo.
pub(crate) struct Arp {
    sr: f64,
    voices: [PluckVoice; 4],
    fenv_k: f64,
    decay_k: f64,
    release_k: f64,
    echo: PingPong,
    dry: (f64, f64),
}

/// Arp output level (linear).
const ARP: f64 = 0.1;

impl Arp {
    pub(crate) fn new(sample_rate: f64) -> Self {
        Self {
            sr: sample_rate,
            voices: Default::default(),
            fenv_k: decay(0.07, sample_rate),
            decay_k: decay(0.2, sample_rate),
            release_k: decay(0.03, sample_rate),
            echo: PingPong::new(3.0 * SIXTEENTH_SECONDS, 0.42, 3000.0, sample_rate),
            dry: pan(-0.15),
        }
    }

    pub(crate) fn trigger(&mut self, t: &Trigger) {
        let voice = pick(&mut self.voices, |v| v.amp);
        *voice = PluckVoice {
            saw: Osc::default(),
            sq: Osc::with_phase(0.25),
            dt: midi_hz(t.pitch as f64) / self.sr,
            lpf: Svf::new(2000.0, 1.3, self.sr),
            fenv: t.vel,
            amp: ARP * t.vel,
            gate: (t.len as f64 * 0.7) as u32,
            age: 0,
        };
    }

    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        // Voices sum (mono) into `l`, then `l` feeds the dry pan and the echo.
        for v in &mut self.voices {
            for ol in l.iter_mut() {
                if v.amp < 1e-6 {
                    break;
                }
                if v.gate > 0 {
                    v.gate -= 1;
                    v.amp *= self.decay_k;
                } else {
                    v.amp *= self.release_k;
                }
                // The filter envelope is updated every 4 samples (counted per voice).
                if v.age.is_multiple_of(4) {
                    v.lpf.set(350.0 + 5200.0 * v.fenv, 1.3, self.sr);
                }
                v.age = v.age.wrapping_add(1);
                v.fenv *= self.fenv_k;
                let x = v.saw.saw(v.dt) + 0.5 * v.sq.square(v.dt);
                *ol += v.lpf.low(x) * v.amp;
            }
        }
        for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
            let s = *ol;
            let (el, er) = self.echo.tick(s);
            *ol = s * self.dry.0 + 0.5 * el;
            *or = s * self.dry.1 + 0.5 * er;
        }
    }
}
