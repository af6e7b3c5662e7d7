//! [`DemoSynth`]: the streaming generator. It walks the score bar by bar, hands each event to its
//! instrument at the exact frame, renders the instruments in chunks and sums them into stems.
//!
//! Memory is bounded: one bar of pending events, one chunk of scratch audio per part and the
//! instruments' own delay lines, whatever the song's length. The output does not depend on the
//! block sizes the caller asks for (everything advances per sample; chunk edges only fall where
//! the caller's blocks, bars or events do).

use super::drums::{Drums, Perc};
use super::instruments::{Arp, Bass, Keys, Pads};
use super::rng::Rng;
use super::score::{frame_of_tick, Consonant, Event, Part, Score, Vowel, What, TICKS_PER_BAR};
use super::voice::{Singer, Voice};
use super::DemoOptions;

/// What an instrument receives for one note or hit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trigger {
    pub(crate) pitch: u8,
    pub(crate) vel: f64,
    /// Held length in frames (0 for hits).
    pub(crate) len: u32,
    pub(crate) consonant: Consonant,
    pub(crate) vowel: Vowel,
}

/// An instrument of one part. (A handful exist per generator, so their sizes do not matter.)
#[allow(clippy::large_enum_variant)]
enum Instrument {
    Drums(Drums),
    Bass(Bass),
    Keys(Keys),
    Voice(Voice),
    Pads(Pads),
    Perc(Perc),
    Arp(Arp),
}

impl Instrument {
    fn new(part: Part, sr: f64, seed: u64) -> Self {
        let rng = Rng::new(seed, 0x1257_0000 + part.index() as u64);
        match part {
            Part::Drums => Instrument::Drums(Drums::new(sr, rng)),
            Part::Bass => Instrument::Bass(Bass::new(sr)),
            Part::Keys => Instrument::Keys(Keys::new(sr, rng)),
            Part::Lead => Instrument::Voice(Voice::new(Singer::Lead, sr, rng)),
            Part::Pads => Instrument::Pads(Pads::new(sr, rng)),
            Part::Perc => Instrument::Perc(Perc::new(sr, rng)),
            Part::Arp => Instrument::Arp(Arp::new(sr)),
            Part::Backing => Instrument::Voice(Voice::new(Singer::Backing, sr, rng)),
        }
    }

    fn trigger(&mut self, what: What, t: &Trigger) {
        match (self, what) {
            (Instrument::Drums(d), What::Hit(h)) => d.trigger(h, t),
            (Instrument::Perc(p), What::Hit(h)) => p.trigger(h, t),
            (Instrument::Bass(b), What::Note { .. }) => b.trigger(t),
            (Instrument::Keys(k), What::Note { .. }) => k.trigger(t),
            (Instrument::Voice(v), What::Note { .. }) => v.trigger(t),
            (Instrument::Pads(p), What::Note { .. }) => p.trigger(t),
            (Instrument::Arp(a), What::Note { .. }) => a.trigger(t),
            _ => {}
        }
    }

    fn render(&mut self, l: &mut [f64], r: &mut [f64]) {
        match self {
            Instrument::Drums(x) => x.render(l, r),
            Instrument::Bass(x) => x.render(l, r),
            Instrument::Keys(x) => x.render(l, r),
            Instrument::Voice(x) => x.render(l, r),
            Instrument::Pads(x) => x.render(l, r),
            Instrument::Perc(x) => x.render(l, r),
            Instrument::Arp(x) => x.render(l, r),
        }
    }
}

/// Master level of every stem with the four core parts: puts the reference mix near -17 LUFS
/// integrated with its true peak near -3.5 dBTP.
const MASTER: f64 = 0.78;
/// Each extra part (pads, perc, arp, backing) lowers the master level by this factor, so the
/// fuller arrangements keep about the same peak headroom.
const MASTER_PER_EXTRA_PART: f64 = 0.965;

/// Largest chunk rendered at once (bounds the scratch buffers).
const CHUNK: usize = 256;

/// An event waiting for its frame.
#[derive(Clone, Copy, Debug)]
struct Pending {
    frame: u64,
    seq: u64,
    event: Event,
}

/// Streaming generator of the demo song: fills one block of every stem at a time.
///
/// Create it with [`DemoSynth::new`], then call [`DemoSynth::render_block`] until it returns 0.
/// The stems it produces sum, at unity, to the demo's reference mix.
pub struct DemoSynth {
    sample_rate: u32,
    total_frames: u64,
    fade_frames: u64,
    master: f64,
    stems: usize,
    /// Stem index of each instrument.
    route: Vec<usize>,
    instruments: Vec<(Part, Instrument)>,
    active: [bool; 8],
    score: Score,
    pending: Vec<Pending>,
    bar_events: Vec<Event>,
    seq: u64,
    next_bar: u64,
    frame: u64,
    scratch: [Vec<f64>; 2],
}

impl DemoSynth {
    /// A generator for `opts`. Out-of-range options are clamped rather than rejected (stems to
    /// 2..=8, the sample rate to 8 kHz..=384 kHz, a negative or non-finite length to 0); use
    /// [`DemoOptions::validate`] first to reject them instead.
    pub fn new(opts: &DemoOptions) -> Self {
        let sample_rate = opts.sample_rate.clamp(8_000, 384_000);
        let stems = opts.stems.clamp(2, 8);
        let total_frames = super::total_frames(opts.seconds, sample_rate);
        let sr = sample_rate as f64;
        let parts = stems.max(4);
        let mut active = [false; 8];
        let mut instruments = Vec::with_capacity(parts);
        let mut route = Vec::with_capacity(parts);
        for &part in &Part::ALL[..parts] {
            active[part.index()] = true;
            instruments.push((part, Instrument::new(part, sr, opts.seed)));
            route.push(match (stems, part) {
                (2, Part::Drums) => 0,
                (2, _) => 1,
                (3, Part::Drums) => 0,
                (3, Part::Bass) => 1,
                (3, _) => 2,
                (_, p) => p.index(),
            });
        }
        Self {
            sample_rate,
            total_frames,
            fade_frames: (total_frames / 4).min((2.5 * sr) as u64),
            master: MASTER * libm::pow(MASTER_PER_EXTRA_PART, (parts - 4) as f64),
            stems,
            route,
            instruments,
            active,
            score: Score::new(opts.seed),
            pending: Vec::with_capacity(256),
            bar_events: Vec::with_capacity(256),
            seq: 0,
            next_bar: 0,
            frame: 0,
            scratch: [vec![0.0; CHUNK], vec![0.0; CHUNK]],
        }
    }

    /// Stem names in output order: `drums, music` for 2 stems, `drums, bass, music` for 3,
    /// then `drums, bass, keys, lead` plus `pads, perc, arp, backing` as stems are added.
    pub fn stem_names(&self) -> Vec<&'static str> {
        match self.stems {
            2 => vec!["drums", "music"],
            3 => vec!["drums", "bass", "music"],
            n => Part::ALL[..n].iter().map(|p| p.name()).collect(),
        }
    }

    /// Number of stems.
    pub fn stem_count(&self) -> usize {
        self.stems
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Length of the song in frames.
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// Frames rendered so far.
    pub fn position(&self) -> u64 {
        self.frame
    }

    /// Renders the next `frames` frames (fewer at the end of the song) of every stem into
    /// `out[stem][channel][..n]` (planar, 0 = left, 1 = right), overwriting what was there, and
    /// returns `n`: 0 once the song is complete (or when `frames` is 0). A channel buffer shorter
    /// than `frames` is grown.
    ///
    /// # Panics
    ///
    /// If `out` has fewer entries than [`DemoSynth::stem_count`].
    pub fn render_block(&mut self, out: &mut [[Vec<f64>; 2]], frames: usize) -> usize {
        assert!(
            out.len() >= self.stems,
            "render_block needs {} stem buffers, got {}",
            self.stems,
            out.len()
        );
        let n = (frames as u64).min(self.total_frames - self.frame) as usize;
        for stem in out[..self.stems].iter_mut() {
            for ch in stem.iter_mut() {
                if ch.len() < frames {
                    ch.resize(frames, 0.0);
                }
                ch[..n].fill(0.0);
            }
        }
        let sr = self.sample_rate as u64;
        let mut done = 0;
        while done < n {
            // New bar: queue its events.
            let bar_frame = frame_of_tick(self.next_bar * TICKS_PER_BAR, sr);
            if self.frame == bar_frame {
                self.queue_bar();
            }
            let next_bar_frame = frame_of_tick(self.next_bar * TICKS_PER_BAR, sr);
            self.dispatch_due();
            let next_event = self.pending.first().map_or(u64::MAX, |p| p.frame);
            let limit = next_bar_frame.min(next_event) - self.frame;
            let chunk = (n - done).min(CHUNK).min(limit as usize);
            let [sl, sr_] = &mut self.scratch;
            for (i, (_, inst)) in self.instruments.iter_mut().enumerate() {
                let (l, r) = (&mut sl[..chunk], &mut sr_[..chunk]);
                l.fill(0.0);
                r.fill(0.0);
                inst.render(l, r);
                let stem = &mut out[self.route[i]];
                for (o, x) in stem[0][done..done + chunk].iter_mut().zip(l.iter()) {
                    *o += *x;
                }
                for (o, x) in stem[1][done..done + chunk].iter_mut().zip(r.iter()) {
                    *o += *x;
                }
            }
            self.apply_master(out, done, chunk);
            done += chunk;
            self.frame += chunk as u64;
        }
        n
    }

    /// Generates the events of the next bar and sorts them into the pending queue.
    fn queue_bar(&mut self) {
        let sr = self.sample_rate as u64;
        self.bar_events.clear();
        self.score
            .bar(self.next_bar, &self.active, &mut self.bar_events);
        for &event in &self.bar_events {
            let delay = libm::round(event.delay_ms * 0.001 * self.sample_rate as f64) as u64;
            self.pending.push(Pending {
                frame: frame_of_tick(event.tick, sr) + delay,
                seq: self.seq,
                event,
            });
            self.seq += 1;
        }
        // (frame, seq) is unique, so the unstable sort is deterministic.
        self.pending.sort_unstable_by_key(|p| (p.frame, p.seq));
        self.next_bar += 1;
    }

    /// Triggers every pending event whose frame has come.
    fn dispatch_due(&mut self) {
        let sr = self.sample_rate as u64;
        let due = self
            .pending
            .iter()
            .take_while(|p| p.frame <= self.frame)
            .count();
        for p in self.pending.drain(..due) {
            let e = p.event;
            let len = if e.len_ticks == 0 {
                0
            } else {
                (frame_of_tick(e.tick + e.len_ticks as u64, sr) - frame_of_tick(e.tick, sr)) as u32
            };
            let (pitch, consonant, vowel) = match e.what {
                What::Note {
                    pitch,
                    consonant,
                    vowel,
                } => (pitch, consonant, vowel),
                What::Hit(_) => (0, Consonant::None, Vowel::A),
            };
            let t = Trigger {
                pitch,
                vel: e.vel,
                len,
                consonant,
                vowel,
            };
            if let Some((_, inst)) = self
                .instruments
                .iter_mut()
                .find(|(part, _)| *part == e.part)
            {
                inst.trigger(e.what, &t);
            }
        }
    }

    /// The master level and the song's end: every stem is scaled by `master` and, over the
    /// last `fade_frames` frames, by a raised-cosine fade.
    fn apply_master(&self, out: &mut [[Vec<f64>; 2]], at: usize, len: usize) {
        let fade_start = self.total_frames - self.fade_frames;
        for i in 0..len {
            let f = self.frame + i as u64;
            let g = if f < fade_start {
                self.master
            } else {
                let x = (self.total_frames - f) as i64 as f64 / self.fade_frames as i64 as f64; // 1 → 0
                self.master * (0.5 - 0.5 * super::dsp::sin_cycles(x * 0.5 + 0.25))
            };
            for stem in out[..self.stems].iter_mut() {
                stem[0][at + i] *= g;
                stem[1][at + i] *= g;
            }
        }
    }
}
