//! Drum and percussion voices: kick, snare, clap, hats, crash (the drums part) and shaker and
//! congas (the perc part). Every sound is synthesized: pitched sines with a pitch drop for the
//! bodies, filtered noise for everything that rattles.
//!
//! Each voice owns its noise generator, so voices can be rendered one after the other over a
//! chunk and the result still does not depend on how the song is cut into chunks.

use super::dsp::{decay, pan, soft_clip, DcBlock, Osc, Reverb, Svf};
use super::rng::Rng;
use super::score::Hit;
use super::synth::Trigger;

/// Below this level a voice falls silent (about -100 dBFS).
const SILENT: f64 = 1e-5;

/// A sine whose pitch falls from `base + sweep` to `base`: kick, snare body, congas.
#[derive(Clone, Debug, Default)]
struct Tone {
    osc: Osc,
    base: f64,
    sweep: f64,
    pitch_env: f64,
    pitch_k: f64,
    amp: f64,
    amp_k: f64,
    drive: f64,
    norm: f64,
}

impl Tone {
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        base: f64,
        sweep: f64,
        pitch_tau: f64,
        amp_tau: f64,
        drive: f64,
        level: f64,
        sr: f64,
    ) {
        *self = Tone {
            osc: Osc::default(),
            base: base / sr,
            sweep: sweep / sr,
            pitch_env: 1.0,
            pitch_k: decay(pitch_tau, sr),
            amp: level,
            amp_k: decay(amp_tau, sr),
            drive,
            norm: 1.0 / soft_clip(drive),
        };
    }

    /// Adds the voice to `out` until it falls silent.
    fn render(&mut self, out: &mut [f64]) {
        for o in out.iter_mut() {
            if self.amp < SILENT {
                break;
            }
            let s = self.osc.sine(self.base + self.sweep * self.pitch_env);
            self.pitch_env *= self.pitch_k;
            *o += soft_clip(self.drive * s) * self.norm * self.amp;
            self.amp *= self.amp_k;
        }
    }
}

/// How a noise burst's envelope is shaped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// A short linear attack, then an exponential decay.
    Decay,
    /// Three quick bursts then a tail: a hand clap.
    Clap,
}

/// Band-limited noise with an envelope: hats, snare wires, clap, crash, shaker.
#[derive(Clone, Debug)]
struct Noise {
    rng: Rng,
    hp: [Svf; 2],
    lp: [Svf; 2],
    shape: Shape,
    age: u32,
    attack: u32,
    burst: u32,
    env: f64,
    env_k: f64,
    fast_k: f64,
    level: f64,
    gains: (f64, f64),
    /// Independent noise on each side (a wide crash) instead of one noise panned.
    wide: bool,
}

impl Noise {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed, 0),
            hp: Default::default(),
            lp: Default::default(),
            shape: Shape::Decay,
            age: 0,
            attack: 0,
            burst: 1,
            env: 0.0,
            env_k: 0.0,
            fast_k: 0.0,
            level: 0.0,
            gains: (0.0, 0.0),
            wide: false,
        }
    }

    fn pool<const N: usize>(rng: &mut Rng) -> [Noise; N] {
        core::array::from_fn(|_| Noise::new(rng.next_u64()))
    }

    fn loudness(&self) -> f64 {
        self.env * self.level
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        hp_hz: f64,
        lp_hz: f64,
        attack_s: f64,
        tau: f64,
        level: f64,
        pan_pos: f64,
        wide: bool,
        sr: f64,
    ) {
        self.hp = [Svf::new(hp_hz, 0.8, sr), Svf::new(hp_hz, 0.8, sr)];
        self.lp = [Svf::new(lp_hz, 0.7, sr), Svf::new(lp_hz, 0.7, sr)];
        self.shape = Shape::Decay;
        self.age = 0;
        self.attack = (attack_s * sr) as u32;
        self.env = 1.0;
        self.env_k = decay(tau, sr);
        self.level = level;
        self.gains = pan(pan_pos);
        self.wide = wide;
    }

    fn start_clap(&mut self, level: f64, sr: f64) {
        self.start(900.0, 5200.0, 0.0, 0.11, level, 0.0, false, sr);
        self.hp[0] = Svf::new(1100.0, 1.6, sr);
        self.shape = Shape::Clap;
        self.burst = ((0.0095 * sr) as u32).max(1);
        self.fast_k = decay(0.0032, sr);
    }

    /// Stops the sound quickly (an open hat choked by a closed one).
    fn choke(&mut self, sr: f64) {
        self.env_k = self.env_k.min(decay(0.012, sr));
    }

    /// The envelope of the next sample.
    #[inline]
    fn envelope(&mut self) -> f64 {
        let mut env = self.env;
        match self.shape {
            Shape::Decay => {
                if self.age < self.attack {
                    env *= self.age as f64 / self.attack as f64;
                } else {
                    self.env *= self.env_k;
                }
            }
            Shape::Clap => {
                if self.age < 3 * self.burst {
                    if self.age.is_multiple_of(self.burst) {
                        self.env = 1.0;
                    }
                    env = self.env;
                    self.env *= self.fast_k;
                    if self.age + 1 == 3 * self.burst {
                        self.env = 0.85;
                    }
                } else {
                    self.env *= self.env_k;
                }
            }
        }
        self.age = self.age.saturating_add(1);
        env * self.level
    }

    /// Adds the voice, panned, to `l` and `r` until it falls silent.
    fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        for (ol, or) in l.iter_mut().zip(r.iter_mut()) {
            if self.loudness() < SILENT {
                break;
            }
            let a = self.envelope();
            let x = self.hp[0].high(self.rng.bipolar());
            let x = self.lp[0].low(x) * a;
            if self.wide {
                let y = self.hp[1].high(self.rng.bipolar());
                let y = self.lp[1].low(y) * a;
                *ol += x * self.gains.0;
                *or += y * self.gains.1;
            } else {
                *ol += x * self.gains.0;
                *or += x * self.gains.1;
            }
        }
    }

    /// Adds the voice's left-channel signal to a mono buffer (for centred sounds).
    fn render_mono(&mut self, out: &mut [f64]) {
        for o in out.iter_mut() {
            if self.loudness() < SILENT {
                break;
            }
            let a = self.envelope();
            let x = self.hp[0].high(self.rng.bipolar());
            *o += self.lp[0].low(x) * a * self.gains.0;
        }
    }
}

/// Picks the quietest voice of a pool for a new hit.
fn quietest<T>(pool: &mut [T], level: impl Fn(&T) -> f64) -> &mut T {
    let mut best = 0;
    for i in 1..pool.len() {
        if level(&pool[i]) < level(&pool[best]) {
            best = i;
        }
    }
    &mut pool[best]
}

/// Grows a scratch buffer to `n` (once) and zeroes its first `n` samples.
fn scratch(buf: &mut Vec<f64>, n: usize) -> &mut [f64] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    let s = &mut buf[..n];
    s.fill(0.0);
    s
}

/// The drum kit: kick, snare, clap, hats and crash, with a short room on snare, clap and hats.
pub(crate) struct Drums {
    sr: f64,
    kicks: [Tone; 2],
    clicks: [Noise; 2],
    snare_tones: [Tone; 2],
    snare_noise: [Noise; 2],
    claps: [Noise; 2],
    hats: [Noise; 3],
    open_hat: Noise,
    crash: Noise,
    room: Reverb,
    dc: DcBlock,
    kick_buf: Vec<f64>,
    snare_buf: Vec<f64>,
}

/// Kit levels (linear): the drums stem sits around -20 LUFS with peaks near -6 dBFS.
const KICK: f64 = 0.50;
const SNARE_BODY: f64 = 0.16;
const SNARE_WIRES: f64 = 0.27;
const CLAP: f64 = 0.26;
const HAT: f64 = 0.2;
const CRASH: f64 = 0.10;
/// Room sends.
const ROOM_SNARE: f64 = 0.35;
const ROOM_HATS: f64 = 0.1;

impl Drums {
    pub(crate) fn new(sample_rate: f64, mut rng: Rng) -> Self {
        Self {
            sr: sample_rate,
            kicks: Default::default(),
            clicks: Noise::pool(&mut rng),
            snare_tones: Default::default(),
            snare_noise: Noise::pool(&mut rng),
            claps: Noise::pool(&mut rng),
            hats: Noise::pool(&mut rng),
            open_hat: Noise::new(rng.next_u64()),
            crash: Noise::new(rng.next_u64()),
            room: Reverb::new(0.55, 0.6, 5000.0, sample_rate),
            dc: DcBlock::new(sample_rate),
            kick_buf: Vec::new(),
            snare_buf: Vec::new(),
        }
    }

    pub(crate) fn trigger(&mut self, hit: Hit, t: &Trigger) {
        let sr = self.sr;
        let v = t.vel;
        match hit {
            Hit::Kick => {
                quietest(&mut self.kicks, |k| k.amp).start(
                    46.0,
                    150.0,
                    0.028,
                    0.24,
                    1.8,
                    KICK * v,
                    sr,
                );
                quietest(&mut self.clicks, Noise::loudness).start(
                    1200.0,
                    6000.0,
                    0.0,
                    0.003,
                    0.5 * KICK * v,
                    0.0,
                    false,
                    sr,
                );
            }
            Hit::Snare => {
                quietest(&mut self.snare_tones, |k| k.amp).start(
                    182.0,
                    60.0,
                    0.012,
                    0.085,
                    1.4,
                    SNARE_BODY * v,
                    sr,
                );
                quietest(&mut self.snare_noise, Noise::loudness).start(
                    1700.0,
                    9000.0,
                    0.0005,
                    0.14,
                    SNARE_WIRES * v * v,
                    0.0,
                    false,
                    sr,
                );
            }
            Hit::Clap => quietest(&mut self.claps, Noise::loudness).start_clap(CLAP * v, sr),
            Hit::ClosedHat => {
                self.open_hat.choke(sr);
                let tau = 0.018 + 0.02 * v;
                quietest(&mut self.hats, Noise::loudness).start(
                    7200.0,
                    14000.0,
                    0.0005,
                    tau,
                    HAT * v,
                    0.45,
                    false,
                    sr,
                );
            }
            Hit::OpenHat => {
                self.open_hat
                    .start(6800.0, 13000.0, 0.001, 0.22, HAT * 0.8 * v, 0.45, false, sr)
            }
            Hit::Crash => self
                .crash
                .start(4200.0, 14000.0, 0.002, 1.3, CRASH * v, 0.0, true, sr),
            Hit::Shaker | Hit::CongaLow | Hit::CongaHigh => {}
        }
    }

    /// Adds one chunk of the kit to `l` and `r` (which arrive zeroed).
    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        let n = l.len();
        let kick = scratch(&mut self.kick_buf, n);
        for k in &mut self.kicks {
            k.render(kick);
        }
        for c in &mut self.clicks {
            c.render_mono(kick);
        }
        let snare = scratch(&mut self.snare_buf, n);
        for t in &mut self.snare_tones {
            t.render(snare);
        }
        for x in self.snare_noise.iter_mut().chain(self.claps.iter_mut()) {
            x.render_mono(snare);
        }
        // Hats and cymbals go straight to the sides.
        for h in self
            .hats
            .iter_mut()
            .chain([&mut self.open_hat, &mut self.crash])
        {
            h.render(l, r);
        }
        for i in 0..n {
            let (hl, hr) = (l[i], r[i]);
            let s = snare[i] * ROOM_SNARE;
            let (rl, rr) = self.room.tick(s + hl * ROOM_HATS, s + hr * ROOM_HATS);
            // Centre sounds at -3 dB each side (constant-power centre).
            let centre = self.dc.tick(kick[i] + snare[i]) * core::f64::consts::FRAC_1_SQRT_2;
            l[i] = centre + hl + rl;
            r[i] = centre + hr + rr;
        }
    }
}

/// The perc part: a shaker on the left, congas on the right.
pub(crate) struct Perc {
    sr: f64,
    shakers: [Noise; 2],
    congas: [Tone; 3],
    conga_gains: (f64, f64),
    conga_buf: Vec<f64>,
}

impl Perc {
    pub(crate) fn new(sample_rate: f64, mut rng: Rng) -> Self {
        Self {
            sr: sample_rate,
            shakers: Noise::pool(&mut rng),
            congas: Default::default(),
            conga_gains: pan(0.45),
            conga_buf: Vec::new(),
        }
    }

    pub(crate) fn trigger(&mut self, hit: Hit, t: &Trigger) {
        let sr = self.sr;
        let v = t.vel;
        match hit {
            Hit::Shaker => quietest(&mut self.shakers, Noise::loudness).start(
                4500.0,
                11000.0,
                0.006,
                0.032,
                0.3 * v,
                -0.55,
                false,
                sr,
            ),
            Hit::CongaLow => quietest(&mut self.congas, |k| k.amp).start(
                196.0,
                45.0,
                0.01,
                0.16,
                1.3,
                0.2 * v,
                sr,
            ),
            Hit::CongaHigh => quietest(&mut self.congas, |k| k.amp).start(
                294.0,
                60.0,
                0.008,
                0.11,
                1.3,
                0.18 * v,
                sr,
            ),
            _ => {}
        }
    }

    /// Adds one chunk to `l` and `r` (which arrive zeroed).
    pub(crate) fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        let conga = scratch(&mut self.conga_buf, l.len());
        for c in &mut self.congas {
            c.render(conga);
        }
        for s in &mut self.shakers {
            s.render(l, r);
        }
        let (gl, gr) = self.conga_gains;
        for ((ol, or), c) in l.iter_mut().zip(r.iter_mut()).zip(conga.iter()) {
            *ol += c * gl;
            *or += c * gr;
        }
    }
}
