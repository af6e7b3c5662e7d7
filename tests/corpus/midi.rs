//! A small Standard MIDI File writer (format 1, one track per channel group) and the notes of
//! the corpus songs.

/// Ticks per quarter note.
pub const PPQ: u32 = 480;

/// One MIDI channel's part: a program and its notes (times in beats).
pub struct Part {
    /// MIDI channel, 0-based (9 is General MIDI's drum channel).
    pub channel: u8,
    /// General MIDI program (ignored on channel 9).
    pub program: u8,
    /// Channel volume (CC 7).
    pub volume: u8,
    /// Pan (CC 10), 64 = centre.
    pub pan: u8,
    /// (start beat, length in beats, key, velocity).
    pub notes: Vec<(f64, f64, u8, u8)>,
}

impl Part {
    pub fn new(channel: u8, program: u8, volume: u8, pan: u8) -> Part {
        Part {
            channel,
            program,
            volume,
            pan,
            notes: Vec::new(),
        }
    }
    pub fn note(&mut self, beat: f64, len: f64, key: u8, vel: u8) -> &mut Self {
        self.notes.push((beat, len, key, vel));
        self
    }
    pub fn chord(&mut self, beat: f64, len: f64, keys: &[u8], vel: u8) -> &mut Self {
        for &k in keys {
            self.note(beat, len, k, vel);
        }
        self
    }
}

fn vlq(mut v: u32, out: &mut Vec<u8>) {
    let mut bytes = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        bytes.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.extend(bytes.iter().rev());
}

fn track(events: &mut [(u32, u8, Vec<u8>)], end_tick: u32) -> Vec<u8> {
    // Note-offs (order 0) before note-ons (order 1) at the same tick.
    events.sort_by_key(|e| (e.0, e.1));
    let mut data = Vec::new();
    let mut now = 0;
    for (t, _, bytes) in events.iter() {
        vlq(t - now, &mut data);
        data.extend_from_slice(bytes);
        now = *t;
    }
    vlq(end_tick.saturating_sub(now), &mut data);
    data.extend_from_slice(&[0xff, 0x2f, 0x00]);
    let mut chunk = b"MTrk".to_vec();
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend(data);
    chunk
}

/// A format-1 MIDI file of `parts` at `bpm`, every track ending at `end_beats` (so every stem
/// rendered from a subset of the parts has the same length).
pub fn smf(parts: &[&Part], bpm: f64, end_beats: f64) -> Vec<u8> {
    let tick = |b: f64| (b * f64::from(PPQ)).round() as u32;
    let end = tick(end_beats);
    let mut out = b"MThd".to_vec();
    out.extend_from_slice(&6u32.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(parts.len() as u16 + 1).to_be_bytes());
    out.extend_from_slice(&(PPQ as u16).to_be_bytes());
    let us = (60_000_000.0 / bpm).round() as u32;
    let mut tempo = vec![(
        0,
        0,
        vec![
            0xff,
            0x51,
            0x03,
            (us >> 16) as u8,
            (us >> 8) as u8,
            us as u8,
        ],
    )];
    out.extend(track(&mut tempo, end));
    for p in parts {
        let ch = p.channel & 0x0f;
        let mut ev = vec![
            (0, 0, vec![0xb0 | ch, 7, p.volume]),
            (0, 0, vec![0xb0 | ch, 10, p.pan]),
        ];
        if ch != 9 {
            ev.push((0, 0, vec![0xc0 | ch, p.program]));
        }
        for &(b, len, key, vel) in &p.notes {
            ev.push((tick(b), 1, vec![0x90 | ch, key, vel]));
            ev.push((tick(b + len), 0, vec![0x80 | ch, key, 0]));
        }
        out.extend(track(&mut ev, end));
    }
    out
}
