//! What each part plays: the chord voicings, the melodies, the bass lines, the beats and the
//! comping patterns, per section, written on a sixteenth-note grid.

use super::rng::Rng;
use super::score::{Consonant, Hit, Section, Vowel, What};

/// The callback a pattern calls for each note: (sixteenth in the bar, length in sixteenths,
/// what, velocity, humanizing delay in ms).
pub(super) trait Put: FnMut(u32, u32, What, f64, f64) {}
impl<F: FnMut(u32, u32, What, f64, f64)> Put for F {}

/// Bass roots (MIDI, octave 1: A1 55 Hz, F1 43.7 Hz, G1 49 Hz, E1 41.2 Hz) of Am7 – Fmaj7 – G – Em7.
const BASS_ROOTS: [u8; 4] = [33, 29, 31, 28];
/// Close keyboard voicings with smooth voice leading.
const KEYS_VOICINGS: [[u8; 4]; 4] = [
    [57, 60, 64, 67],
    [57, 60, 64, 65],
    [55, 59, 62, 67],
    [55, 59, 62, 64],
];
/// Open pad voicings, an octave of spread.
const PAD_VOICINGS: [[u8; 4]; 4] = [
    [57, 64, 67, 72],
    [53, 60, 64, 69],
    [55, 62, 67, 71],
    [52, 59, 62, 67],
];
/// Arpeggio chord tones.
const ARP_TONES: [[u8; 4]; 4] = [
    [69, 72, 76, 81],
    [65, 69, 72, 77],
    [67, 71, 74, 79],
    [64, 67, 71, 76],
];
/// Arpeggio order over one bar of sixteenths (indices into `ARP_TONES`).
const ARP_ORDER: [usize; 16] = [0, 1, 2, 3, 1, 2, 3, 2, 0, 1, 2, 3, 2, 3, 1, 2];

use Consonant::{None as N, S, T};
use Vowel::{A, E, I, O, U};

/// A melody note: (start, length) in sixteenths from the phrase start, MIDI pitch, consonant, vowel.
type Sung = (u32, u32, u8, Consonant, Vowel);

/// The verse melody: a 4-bar phrase, low (E4–D5).
const VERSE: [Sung; 22] = [
    (2, 2, 64, S, E),
    (4, 2, 69, N, A),
    (6, 2, 69, T, O),
    (8, 4, 72, N, A),
    (12, 2, 71, S, I),
    (14, 4, 69, N, A),
    (20, 2, 69, S, E),
    (22, 2, 72, N, A),
    (24, 2, 69, T, O),
    (26, 2, 67, N, E),
    (28, 4, 69, N, A),
    (34, 2, 71, S, I),
    (36, 2, 74, N, A),
    (38, 2, 71, T, O),
    (40, 4, 67, N, A),
    (44, 2, 69, N, E),
    (46, 2, 71, S, I),
    (48, 6, 67, N, O),
    (54, 8, 64, T, A),
    // Second-time ending (bar 4 of the second phrase) replaces the last two notes.
    (48, 4, 71, N, O),
    (52, 2, 69, T, E),
    (54, 8, 67, N, A),
];
/// Notes of `VERSE` sung the first time / the second time through.
const VERSE_FIRST: core::ops::Range<usize> = 0..19;
const VERSE_SECOND_END: core::ops::Range<usize> = 19..22;
const VERSE_SHARED: core::ops::Range<usize> = 0..17;

/// The chorus melody: a 4-bar phrase, high (A4–G5), with its own second ending.
const CHORUS: [Sung; 20] = [
    (0, 6, 76, S, A),
    (6, 2, 74, N, E),
    (8, 4, 72, T, O),
    (12, 4, 69, N, A),
    (16, 4, 72, S, I),
    (20, 2, 72, N, A),
    (22, 2, 74, T, E),
    (24, 6, 76, N, A),
    (30, 2, 74, N, O),
    (32, 6, 74, S, A),
    (38, 2, 71, N, E),
    (40, 4, 74, T, O),
    (44, 4, 79, N, A),
    (48, 8, 76, S, O),
    (56, 2, 74, N, E),
    (58, 6, 71, T, A),
    // Second ending.
    (48, 4, 76, S, O),
    (52, 4, 79, T, A),
    (56, 6, 76, N, A),
    (62, 2, 74, N, E),
];
const CHORUS_FIRST: core::ops::Range<usize> = 0..16;
const CHORUS_SHARED: core::ops::Range<usize> = 0..13;
const CHORUS_SECOND_END: core::ops::Range<usize> = 16..20;

/// Bass patterns: (start, length) in sixteenths, interval above the root, velocity.
const BASS_VERSE: [(u32, u32, u8, f64); 6] = [
    (0, 3, 0, 1.0),
    (3, 2, 0, 0.7),
    (6, 2, 12, 0.8),
    (8, 3, 0, 0.95),
    (11, 2, 0, 0.7),
    (14, 2, 7, 0.8),
];
const BASS_CHORUS: [(u32, u32, u8, f64); 8] = [
    (0, 2, 0, 1.0),
    (2, 2, 0, 0.75),
    (4, 2, 12, 0.85),
    (6, 2, 0, 0.75),
    (8, 2, 0, 0.95),
    (10, 2, 0, 0.75),
    (12, 2, 12, 0.85),
    (14, 2, 7, 0.8),
];

/// Keys comping: (start, length) in sixteenths, velocity.
const KEYS_VERSE: [(u32, u32, f64); 3] = [(0, 7, 0.52), (8, 5, 0.42), (14, 2, 0.36)];
const KEYS_CHORUS: [(u32, u32, f64); 5] = [
    (0, 3, 0.75),
    (3, 3, 0.58),
    (6, 4, 0.68),
    (10, 2, 0.52),
    (12, 4, 0.64),
];

/// Where in the song a bar is.
pub(super) struct Ctx {
    pub(super) bar: u64,
    pub(super) section: Section,
    /// Bar within the section.
    pub(super) in_section: u64,
    /// The last bar of its section (fills go here).
    pub(super) last_bar: bool,
    /// Index of the bar's chord in the progression.
    pub(super) chord: usize,
}

pub(super) fn drums(c: &Ctx, rng: &mut Rng, put: &mut impl Put) {
    let mut hit = |s: u32, h: Hit, vel: f64, rng: &mut Rng, jitter_ms: f64| {
        let v = vel * rng.range(0.9, 1.0);
        let d = rng.range(0.0, jitter_ms);
        put(s, 0, What::Hit(h), v, d);
    };
    let roll = |rng: &mut Rng, hit: &mut dyn FnMut(u32, Hit, f64, &mut Rng, f64)| {
        for (i, s) in (12..16).enumerate() {
            hit(s, Hit::Snare, 0.45 + 0.15 * i as f64, rng, 1.0);
        }
    };
    match c.section {
        Section::Intro => {
            if c.in_section >= 2 {
                for s in (0..16).step_by(2) {
                    let v = if s % 4 == 2 { 0.5 } else { 0.38 };
                    hit(s, Hit::ClosedHat, v, rng, 3.0);
                }
            }
            if c.last_bar {
                roll(rng, &mut hit);
                hit(14, Hit::Kick, 0.7, rng, 0.0);
            }
        }
        Section::Verse => {
            hit(0, Hit::Kick, 0.9, rng, 0.0);
            hit(8, Hit::Kick, 0.85, rng, 0.0);
            hit(10, Hit::Kick, 0.62, rng, 0.0);
            if c.in_section % 2 == 1 {
                hit(15, Hit::Kick, 0.55, rng, 0.0);
            }
            hit(4, Hit::Snare, 0.8, rng, 1.5);
            if c.last_bar {
                roll(rng, &mut hit);
            } else {
                hit(12, Hit::Snare, 0.8, rng, 1.5);
            }
            for s in (0..16).step_by(2) {
                let v = if s % 4 == 2 { 0.5 } else { 0.38 };
                hit(s, Hit::ClosedHat, v, rng, 4.0);
            }
            if rng.chance(0.4) {
                hit(15, Hit::ClosedHat, 0.3, rng, 4.0);
            }
        }
        Section::Chorus => {
            if c.in_section == 0 {
                hit(0, Hit::Crash, 0.85, rng, 0.0);
            }
            for s in [0, 4, 8, 12] {
                hit(s, Hit::Kick, if s == 0 { 1.0 } else { 0.92 }, rng, 0.0);
            }
            if c.in_section % 4 == 3 {
                hit(14, Hit::Kick, 0.6, rng, 0.0);
            }
            hit(4, Hit::Snare, 0.95, rng, 1.0);
            hit(4, Hit::Clap, 0.8, rng, 3.0);
            if c.last_bar {
                roll(rng, &mut hit);
            } else {
                hit(12, Hit::Snare, 0.95, rng, 1.0);
                hit(12, Hit::Clap, 0.8, rng, 3.0);
            }
            for s in 0..16 {
                if s == 6 || s == 14 {
                    hit(s, Hit::OpenHat, 0.55, rng, 3.0);
                } else {
                    let v = [0.62, 0.34, 0.5, 0.34][s as usize % 4];
                    hit(s, Hit::ClosedHat, v, rng, 4.0);
                }
            }
        }
        Section::Break => {
            if c.in_section >= 2 {
                for s in (0..16).step_by(2) {
                    hit(s, Hit::ClosedHat, 0.3 + 0.02 * s as f64, rng, 3.0);
                }
            }
            if c.last_bar {
                roll(rng, &mut hit);
            }
        }
    }
}

pub(super) fn bass(c: &Ctx, rng: &mut Rng, put: &mut impl Put) {
    let root = BASS_ROOTS[c.chord];
    let note = |pitch: u8| What::Note {
        pitch,
        consonant: N,
        vowel: A,
    };
    match c.section {
        Section::Intro => {
            // The bass joins for the second half of the intro: long sub notes.
            if c.in_section >= 2 {
                put(0, 10, note(root), 0.75, 0.0);
                put(10, 6, note(root + 12), 0.6, 0.0);
            }
        }
        Section::Verse => {
            for &(s, len, iv, v) in &BASS_VERSE {
                put(
                    s,
                    len,
                    note(root + iv),
                    0.85 * v * rng.range(0.92, 1.0),
                    0.0,
                );
            }
        }
        Section::Chorus => {
            for &(s, len, iv, v) in &BASS_CHORUS {
                put(s, len, note(root + iv), v * rng.range(0.92, 1.0), 0.0);
            }
        }
        Section::Break => put(0, 15, note(root), 0.8, 0.0),
    }
}

pub(super) fn keys(c: &Ctx, rng: &mut Rng, put: &mut impl Put) {
    let voicing = KEYS_VOICINGS[c.chord];
    // A chord: the notes slightly spread in time, lowest first, like a hand.
    let mut chord = |s: u32, len: u32, vel: f64, spread_ms: f64, rng: &mut Rng| {
        for (i, &pitch) in voicing.iter().enumerate() {
            let v = vel * rng.range(0.9, 1.0) * if i == 0 { 0.9 } else { 1.0 };
            let d = spread_ms * i as f64 + rng.range(0.0, 2.0);
            put(
                s,
                len,
                What::Note {
                    pitch,
                    consonant: N,
                    vowel: A,
                },
                v,
                d,
            );
        }
    };
    match c.section {
        Section::Intro | Section::Break => chord(0, 15, 0.8, 14.0, rng),
        Section::Verse => {
            for &(s, len, v) in &KEYS_VERSE {
                chord(s, len, v, 5.0, rng);
            }
        }
        Section::Chorus => {
            for &(s, len, v) in &KEYS_CHORUS {
                chord(s, len, v, 3.0, rng);
            }
        }
    }
}

pub(super) fn lead(c: &Ctx, rng: &mut Rng, put: &mut impl Put, backing: bool) {
    let (melody, phrase_bar): (&[Sung], u64) = match c.section {
        Section::Verse if !backing => {
            let second = c.in_section >= 4;
            let phrase_bar = c.in_section % 4;
            let notes: &[Sung] = if !second || phrase_bar < 3 {
                &VERSE[VERSE_FIRST]
            } else {
                // Last bar of the second phrase: the shared notes that fall in it plus the
                // second ending.
                emit(&VERSE[VERSE_SHARED], phrase_bar, c, rng, put, backing);
                &VERSE[VERSE_SECOND_END]
            };
            (notes, phrase_bar)
        }
        Section::Chorus => {
            let second = c.in_section >= 4;
            let phrase_bar = c.in_section % 4;
            let notes: &[Sung] = if !second || phrase_bar < 3 {
                &CHORUS[CHORUS_FIRST]
            } else {
                emit(&CHORUS[CHORUS_SHARED], phrase_bar, c, rng, put, backing);
                &CHORUS[CHORUS_SECOND_END]
            };
            (notes, phrase_bar)
        }
        _ => return,
    };
    emit(melody, phrase_bar, c, rng, put, backing);
}

/// Puts the notes of `melody` that start in bar `phrase_bar` of the phrase.
fn emit(
    melody: &[Sung],
    phrase_bar: u64,
    c: &Ctx,
    rng: &mut Rng,
    put: &mut impl Put,
    backing: bool,
) {
    let lo = phrase_bar as u32 * 16;
    let base_vel = if c.section == Section::Chorus {
        0.95
    } else {
        0.72
    };
    for &(start, len, pitch, consonant, vowel) in melody {
        if start < lo || start >= lo + 16 {
            continue;
        }
        let accent = if len >= 4 { 1.0 } else { 0.9 };
        let vel = base_vel * accent * rng.range(0.92, 1.0);
        let delay = rng.range(0.0, 6.0);
        let (pitch, vowel) = if backing {
            (third_below(pitch), if len >= 4 { O } else { U })
        } else {
            (pitch, vowel)
        };
        put(
            start - lo,
            len,
            What::Note {
                pitch,
                consonant,
                vowel,
            },
            vel,
            delay,
        );
    }
}

/// The diatonic third below `pitch` in A minor (a harmony line).
fn third_below(pitch: u8) -> u8 {
    // Semitones above A of the A natural minor scale.
    const SCALE: [u8; 7] = [0, 2, 3, 5, 7, 8, 10];
    let rel = (pitch as i32 - 57).rem_euclid(12) as u8;
    let octave = (pitch as i32 - 57).div_euclid(12);
    let degree = SCALE.iter().position(|&s| s == rel).unwrap_or(0) as i32;
    let target = degree - 2;
    let (deg, oct) = (target.rem_euclid(7), octave + target.div_euclid(7));
    (57 + oct * 12 + SCALE[deg as usize] as i32) as u8
}

pub(super) fn pads(c: &Ctx, put: &mut impl Put) {
    let vel = match c.section {
        Section::Intro if c.in_section >= 2 => 0.6,
        Section::Verse if c.in_section >= 4 => 0.5,
        Section::Chorus => 0.8,
        Section::Break => 0.75,
        _ => return,
    };
    for &pitch in &PAD_VOICINGS[c.chord] {
        put(
            0,
            16,
            What::Note {
                pitch,
                consonant: N,
                vowel: A,
            },
            vel,
            0.0,
        );
    }
}

pub(super) fn perc(c: &Ctx, rng: &mut Rng, put: &mut impl Put) {
    let mut hit = |s: u32, h: Hit, vel: f64, rng: &mut Rng| {
        let v = vel * rng.range(0.85, 1.0);
        put(s, 0, What::Hit(h), v, rng.range(0.0, 5.0));
    };
    match c.section {
        Section::Intro => {}
        Section::Verse => {
            if c.in_section >= 4 {
                for s in 0..16 {
                    hit(s, Hit::Shaker, [0.55, 0.3, 0.42, 0.3][s as usize % 4], rng);
                }
            }
        }
        Section::Chorus => {
            for s in 0..16 {
                hit(s, Hit::Shaker, [0.6, 0.32, 0.45, 0.32][s as usize % 4], rng);
            }
            for s in [3, 10] {
                hit(s, Hit::CongaLow, 0.7, rng);
            }
            for s in [6, 7, 14] {
                hit(s, Hit::CongaHigh, 0.6, rng);
            }
            if c.bar % 2 == 1 {
                hit(15, Hit::CongaHigh, 0.45, rng);
            }
        }
        Section::Break => {
            for s in (0..16).step_by(2) {
                hit(s, Hit::Shaker, 0.35, rng);
            }
        }
    }
}

pub(super) fn arp(c: &Ctx, rng: &mut Rng, put: &mut impl Put) {
    let vel = match c.section {
        Section::Chorus => 0.7,
        Section::Break => 0.8,
        Section::Verse if c.in_section >= 6 => 0.45,
        _ => return,
    };
    let tones = ARP_TONES[c.chord];
    for (s, &i) in ARP_ORDER.iter().enumerate() {
        let accent = [1.0, 0.6, 0.78, 0.6][s % 4];
        let v = vel * accent * rng.range(0.9, 1.0);
        put(
            s as u32,
            1,
            What::Note {
                pitch: tones[i],
                consonant: N,
                vowel: A,
            },
            v,
            0.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmony_is_a_diatonic_third_below() {
        assert_eq!(third_below(76), 72); // E5 -> C5
        assert_eq!(third_below(72), 69); // C5 -> A4
        assert_eq!(third_below(79), 76); // G5 -> E5
        assert_eq!(third_below(71), 67); // B4 -> G4
        assert_eq!(third_below(69), 65); // A4 -> F4
    }
}
