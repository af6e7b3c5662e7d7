//! The corpus songs: three short pieces in different styles, each a list of stems (a stem is one
//! or more MIDI parts) with the General MIDI instruments real productions use.

use super::midi::Part;

/// How the reference mix is exported from the float sum of the stems.
#[derive(Clone, Copy, Debug)]
pub enum MixExport {
    /// 24-bit with TPDF dither.
    Dithered24,
    /// 24-bit, rounded.
    Rounded24,
    /// 16-bit with TPDF dither.
    Dithered16,
}

/// One song of the corpus.
pub struct SongDef {
    pub name: &'static str,
    pub rate: u32,
    pub bpm: f64,
    /// Length in beats (the music plus room for its reverb tail).
    pub beats: f64,
    pub mix: MixExport,
    /// (stem name, its parts).
    pub stems: Vec<(&'static str, Vec<Part>)>,
}

const KICK: u8 = 36;
const SNARE: u8 = 38;
const STICK: u8 = 37;
const CLAP: u8 = 39;
const HAT: u8 = 42;
const OPEN_HAT: u8 = 46;
const CRASH: u8 = 49;
const RIDE: u8 = 51;

fn triad(root: u8, minor: bool) -> [u8; 3] {
    [root, root + if minor { 3 } else { 4 }, root + 7]
}

/// A pop-rock song at 48 kHz: drums, bass, piano, alto sax.
fn rock() -> SongDef {
    let bars: u32 = 8;
    let prog = [(48u8, false), (43, false), (45, true), (41, false)]; // C G Am F
    let mut drums = Part::new(9, 0, 110, 64);
    let mut bass = Part::new(1, 33, 105, 64);
    let mut piano = Part::new(2, 0, 90, 50);
    let mut sax = Part::new(3, 65, 100, 76);
    for bar in 0..bars {
        let b0 = f64::from(bar * 4);
        let (root, minor) = prog[bar as usize % 4];
        drums
            .note(b0, 0.5, KICK, 110)
            .note(b0 + 2.0, 0.5, KICK, 100);
        drums.note(b0 + 2.5, 0.5, KICK, 80);
        drums
            .note(b0 + 1.0, 0.5, SNARE, 105)
            .note(b0 + 3.0, 0.5, SNARE, 110);
        for e in 0..8 {
            drums.note(
                b0 + f64::from(e) * 0.5,
                0.25,
                HAT,
                if e % 2 == 0 { 85 } else { 60 },
            );
        }
        if bar % 4 == 0 {
            drums.note(b0, 1.0, CRASH, 100);
        }
        for e in 0..8 {
            let k = if e == 7 { root - 24 + 7 } else { root - 24 };
            bass.note(b0 + f64::from(e) * 0.5, 0.45, k, 95 + (e % 2) as u8 * 10);
        }
        piano.chord(b0, 1.9, &triad(root + 12, minor), 80);
        piano.chord(b0 + 2.0, 1.9, &triad(root + 12, minor), 72);
        let m = [0u8, 4, 7, 9, 7, 4, 2, 0];
        if bar >= 2 {
            for (i, d) in m.iter().enumerate().take(if bar % 2 == 0 { 8 } else { 5 }) {
                sax.note(b0 + i as f64 * 0.5, 0.45, root + 24 + d, 90);
            }
        }
    }
    SongDef {
        name: "rock",
        rate: 48_000,
        bpm: 112.0,
        beats: f64::from(bars * 4) + 4.0,
        mix: MixExport::Dithered24,
        stems: vec![
            ("drums", vec![drums]),
            ("bass", vec![bass]),
            ("piano", vec![piano]),
            ("sax", vec![sax]),
        ],
    }
}

/// A ballad at 44.1 kHz: drums, acoustic bass, strings, choir, trumpet.
fn ballad() -> SongDef {
    let bars: u32 = 6;
    let prog = [(50u8, true), (46, false), (53, false), (48, false)]; // Dm Bb F C
    let mut drums = Part::new(9, 0, 95, 64);
    let mut bass = Part::new(1, 32, 110, 64);
    let mut strings = Part::new(2, 48, 95, 40);
    let mut choir = Part::new(3, 52, 80, 88);
    let mut trumpet = Part::new(4, 56, 95, 70);
    for bar in 0..bars {
        let b0 = f64::from(bar * 4);
        let (root, minor) = prog[bar as usize % 4];
        drums.note(b0, 0.5, KICK, 90).note(b0 + 2.0, 0.5, STICK, 80);
        for q in 0..4 {
            drums.note(b0 + f64::from(q), 0.5, RIDE, 60 + (q % 2) as u8 * 15);
        }
        bass.note(b0, 1.9, root - 12, 100)
            .note(b0 + 2.0, 1.9, root - 5, 90);
        strings.chord(b0, 3.95, &triad(root, minor), 85);
        if bar >= 2 {
            choir.chord(b0, 3.95, &triad(root + 12, minor), 75);
        }
        let line = [7u8, 9, 12, 9];
        if bar % 2 == 1 {
            for (i, d) in line.iter().enumerate() {
                trumpet.note(b0 + i as f64, 0.9, root + 12 + d, 95);
            }
        }
    }
    SongDef {
        name: "ballad",
        rate: 44_100,
        bpm: 72.0,
        beats: f64::from(bars * 4) + 4.0,
        mix: MixExport::Rounded24,
        stems: vec![
            ("drums", vec![drums]),
            ("bass", vec![bass]),
            ("strings", vec![strings]),
            ("choir", vec![choir]),
            ("trumpet", vec![trumpet]),
        ],
    }
}

/// An electronic track at 48 kHz: drums, synth bass, pad, lead synth, effects; 16-bit reference.
fn electronic() -> SongDef {
    let bars: u32 = 8;
    let prog = [(45u8, true), (41, false), (48, false), (43, false)]; // Am F C G
    let mut drums = Part::new(9, 0, 110, 64);
    let mut sub = Part::new(1, 38, 100, 64);
    let mut pad = Part::new(2, 90, 85, 64);
    let mut lead = Part::new(3, 81, 80, 80);
    let mut fx = Part::new(4, 102, 90, 30);
    for bar in 0..bars {
        let b0 = f64::from(bar * 4);
        let (root, minor) = prog[bar as usize % 4];
        for q in 0..4 {
            let t = b0 + f64::from(q);
            drums.note(t, 0.5, KICK, 115);
            drums.note(t + 0.5, 0.25, OPEN_HAT, 70);
            if q % 2 == 1 {
                drums.note(t, 0.5, CLAP, 100);
            }
        }
        for s in 0..16 {
            if s % 4 != 0 {
                sub.note(b0 + f64::from(s) * 0.25, 0.2, root - 24, 90);
            }
        }
        pad.chord(b0, 3.95, &triad(root, minor), 80);
        if bar >= 4 {
            let arp = triad(root + 24, minor);
            for s in 0..8 {
                lead.note(b0 + s as f64 * 0.5, 0.4, arp[s % 3], 85);
            }
        }
        if bar % 4 == 3 {
            fx.note(b0 + 2.0, 2.0, 84, 90);
        }
    }
    SongDef {
        name: "electronic",
        rate: 48_000,
        bpm: 128.0,
        beats: f64::from(bars * 4) + 4.0,
        mix: MixExport::Dithered16,
        stems: vec![
            ("drums", vec![drums]),
            ("synth_bass", vec![sub]),
            ("pad", vec![pad]),
            ("lead_synth", vec![lead]),
            ("fx", vec![fx]),
        ],
    }
}

/// Every song of the corpus.
pub fn all() -> Vec<SongDef> {
    vec![rock(), ballad(), electronic()]
}
