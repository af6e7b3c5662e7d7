//! The song itself: tempo, key, chord progression, melodies, drum and bass patterns and the
//! arrangement, turned bar by bar into note events for the instruments.
//!
//! 120 BPM in 4/4, A minor, the progression Am7 – Fmaj7 – G – Em7 (one chord a bar). Sections:
//! a 4-bar intro, then verse (8 bars), chorus (8 bars) and break (4 bars) repeating for as long as
//! the song runs. Time is counted in ticks of 1/24 beat (a sixteenth note is 6 ticks).
//!
//! What each part plays in each section lives in `patterns`; this module owns time, the
//! arrangement and the event types.

use super::patterns::{arp, bass, drums, keys, lead, pads, perc, Ctx};
use super::rng::Rng;

/// Tempo in beats per minute.
pub(crate) const BPM: u64 = 120;
/// Ticks per beat (quarter note).
pub(crate) const TICKS_PER_BEAT: u64 = 24;
/// Ticks per 4/4 bar.
pub(crate) const TICKS_PER_BAR: u64 = 4 * TICKS_PER_BEAT;
/// Ticks per sixteenth note, the grid every pattern is written on.
const SIXTEENTH: u32 = 6;

/// The frame at which a tick starts (exact integer arithmetic, so every rate lines up the same way).
pub(crate) fn frame_of_tick(tick: u64, sample_rate: u64) -> u64 {
    // u128: no overflow for any length or rate.
    ((tick as u128 * sample_rate as u128 * 60) / (BPM as u128 * TICKS_PER_BEAT as u128)) as u64
}

/// Seconds per sixteenth note.
pub(crate) const SIXTEENTH_SECONDS: f64 = 60.0 / BPM as f64 / 4.0;

/// One of the song's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// Keys alone, then hats and pads come in.
    Intro,
    /// Beat, bass, keys and a low melody.
    Verse,
    /// Everything, with a higher melody: the loud part.
    Chorus,
    /// Drums and lead drop out: keys, pads, arpeggio and a sustained sub.
    Break,
}

/// Where `bar` falls: the section, the bar within it and the section's length in bars.
pub(crate) fn section_of_bar(bar: u64) -> (Section, u64, u64) {
    const INTRO: u64 = 4;
    if bar < INTRO {
        return (Section::Intro, bar, INTRO);
    }
    let b = (bar - INTRO) % 20;
    match b {
        0..=7 => (Section::Verse, b, 8),
        8..=15 => (Section::Chorus, b - 8, 8),
        _ => (Section::Break, b - 16, 4),
    }
}

/// The instruments, in stem order. The first four always play; the rest are the extra stems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Drums,
    Bass,
    Keys,
    Lead,
    Pads,
    Perc,
    Arp,
    Backing,
}

impl Part {
    /// All parts in stem order.
    pub(crate) const ALL: [Part; 8] = [
        Part::Drums,
        Part::Bass,
        Part::Keys,
        Part::Lead,
        Part::Pads,
        Part::Perc,
        Part::Arp,
        Part::Backing,
    ];

    /// The stem name of the part.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Part::Drums => "drums",
            Part::Bass => "bass",
            Part::Keys => "keys",
            Part::Lead => "lead",
            Part::Pads => "pads",
            Part::Perc => "perc",
            Part::Arp => "arp",
            Part::Backing => "backing",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Unpitched hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    Kick,
    Snare,
    Clap,
    ClosedHat,
    OpenHat,
    Crash,
    Shaker,
    CongaLow,
    CongaHigh,
}

/// The consonant a sung note starts with: what gives a de-esser work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Consonant {
    None,
    /// A sustained "s": 60–100 ms of hiss at 5–10 kHz.
    S,
    /// A short "t": a 10–20 ms click of hiss.
    T,
}

/// Vowels the lead can sing (formant sets in the vocal voice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vowel {
    A,
    E,
    I,
    O,
    U,
}

/// What an event plays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum What {
    Hit(Hit),
    Note {
        pitch: u8,
        consonant: Consonant,
        vowel: Vowel,
    },
}

/// One note or hit, as the score produces it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Event {
    /// Absolute tick of the onset on the grid.
    pub(crate) tick: u64,
    /// Humanizing delay after the grid position, in milliseconds (never early).
    pub(crate) delay_ms: f64,
    /// Length in ticks (0 for hits, which decay on their own).
    pub(crate) len_ticks: u32,
    pub(crate) part: Part,
    pub(crate) what: What,
    /// Velocity, 0..1.
    pub(crate) vel: f64,
}

/// Turns the arrangement into events, one bar at a time. Each part draws its humanization from
/// its own random stream, so leaving a part out never changes the others.
#[derive(Clone, Debug)]
pub(crate) struct Score {
    rngs: [Rng; 8],
}

impl Score {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rngs: core::array::from_fn(|i| Rng::new(seed, 0x5C0E_0000 + i as u64)),
        }
    }

    /// Appends the events of `bar` for the parts marked in `active` to `out`.
    pub(crate) fn bar(&mut self, bar: u64, active: &[bool; 8], out: &mut Vec<Event>) {
        let (section, in_section, section_len) = section_of_bar(bar);
        let chord = (bar % 4) as usize;
        let last_bar = in_section + 1 == section_len;
        let ctx = Ctx {
            bar,
            section,
            in_section,
            last_bar,
            chord,
        };
        for part in Part::ALL {
            if !active[part.index()] {
                continue;
            }
            let rng = &mut self.rngs[part.index()];
            let mut put = |sixteenth: u32, len: u32, what: What, vel: f64, delay_ms: f64| {
                out.push(Event {
                    tick: bar * TICKS_PER_BAR + (sixteenth * SIXTEENTH) as u64,
                    delay_ms,
                    len_ticks: len * SIXTEENTH,
                    part,
                    what,
                    vel: vel.clamp(0.0, 1.0),
                });
            };
            match part {
                Part::Drums => drums(&ctx, rng, &mut put),
                Part::Bass => bass(&ctx, rng, &mut put),
                Part::Keys => keys(&ctx, rng, &mut put),
                Part::Lead => lead(&ctx, rng, &mut put, false),
                Part::Pads => pads(&ctx, &mut put),
                Part::Perc => perc(&ctx, rng, &mut put),
                Part::Arp => arp(&ctx, rng, &mut put),
                Part::Backing => lead(&ctx, rng, &mut put, true),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_land_on_frames() {
        assert_eq!(frame_of_tick(TICKS_PER_BAR, 48_000), 96_000);
        assert_eq!(frame_of_tick(6, 44_100), 5_512);
    }

    #[test]
    fn arrangement_cycles() {
        assert_eq!(section_of_bar(0).0, Section::Intro);
        assert_eq!(section_of_bar(4).0, Section::Verse);
        assert_eq!(section_of_bar(12).0, Section::Chorus);
        assert_eq!(section_of_bar(20).0, Section::Break);
        assert_eq!(section_of_bar(24).0, Section::Verse);
    }

    #[test]
    fn every_bar_is_musical_and_in_order() {
        let mut score = Score::new(1);
        let mut out = Vec::new();
        for bar in 0..44 {
            out.clear();
            score.bar(bar, &[true; 8], &mut out);
            for e in &out {
                assert!(e.tick >= bar * TICKS_PER_BAR && e.tick < (bar + 1) * TICKS_PER_BAR);
                assert!((0.0..=1.0).contains(&e.vel));
            }
        }
    }
}
