//! Tails: how long the output rings on after the song, measured, and where the song's edits end.
//!
//! This module owns [`TailSettings`] (`session { tail = { threshold_db, hold_s, max_s } }`) and
//! [`TailTrim`], the stage between the render loop and the deliverables of the pass that writes
//! them. The processors declare how long they may ring (a delay: its repeats down to −120 dB, at
//! most 30 s); the render runs on past the song's end for at most that long (and at most
//! `max_s`), measures where the outputs really fall silent — the last sample above
//! `threshold_db` (default −120 dBFS) on any output, confirmed by `hold_s` (default 1 s) below it
//! — and cuts every output there. The song's end plus that tail is the end of the master, and
//! what the report gives as `tail_samples`.
//!
//! The song edits are applied here too, because the end is only known once the tail has been
//! measured: a `fade_out` ends on the last sample of the master (the song's end plus the
//! measured tail), or on `trim.finish` when the recipe sets it. To place it, the last
//! `fade_out` seconds before the end are held back until the end is known (memory: the fade
//! plus the hold, per output).

use super::edits::SongEdits;
use crate::dsp::{AudioBuffer, AudioRef};
use crate::session::EditsDecl;
use std::collections::VecDeque;

pub use crate::session::{TailSettings, DEFAULT_HOLD_S, DEFAULT_THRESHOLD_DB};

/// One output's held-back frames.
struct Held {
    /// Per channel, the frames from song position `from` on.
    frames: Vec<VecDeque<f64>>,
    /// Song position of the first held frame.
    from: u64,
    /// Song position of the next frame to arrive.
    next: u64,
}

/// Measures the tail and applies the song edits (see the module docs).
pub struct TailTrim {
    song_frames: u64,
    threshold: f64,
    hold: u64,
    /// No frame at or after this is kept (the song plus the longest tail allowed).
    limit: u64,
    /// `trim.finish` in frames, if set.
    finish: Option<u64>,
    /// Frames held back before the end for the fade-out.
    lookback: u64,
    /// One past the last frame above the threshold (at least the song's end).
    content_end: u64,
    outputs: Vec<Held>,
    decl: EditsDecl,
    rate: f64,
    edits: SongEdits,
    stage: AudioBuffer,
    faded: AudioBuffer,
}

impl TailTrim {
    /// The trim of a pass whose outputs have `channels` channels, over a song of `song_frames`
    /// frames whose processors declare `declared_tail` frames of tail, at `rate`.
    pub fn new(
        settings: &TailSettings,
        edits: &EditsDecl,
        song_frames: u64,
        declared_tail: u64,
        rate: f64,
        channels: &[usize],
        block: usize,
    ) -> Self {
        let frames = |s: f64| crate::units::seconds_to_samples(s, rate).max(0) as u64;
        let bound = settings
            .max_s
            .map_or(declared_tail, |m| frames(m).min(declared_tail));
        let limit = song_frames + bound;
        let lookback = edits.fade_out.as_ref().map_or(0, |f| frames(f.seconds));
        let hold = frames(settings.hold_s).max(1);
        let max_ch = channels.iter().copied().max().unwrap_or(1).max(1);
        let held_capacity = (lookback + hold) as usize + 2 * block;
        Self {
            song_frames,
            threshold: crate::units::db_to_gain(settings.threshold_db),
            hold,
            limit,
            finish: edits.finish_s.map(frames),
            lookback,
            content_end: song_frames,
            outputs: channels
                .iter()
                .map(|&c| Held {
                    frames: (0..c)
                        .map(|_| VecDeque::with_capacity(held_capacity.min(1 << 24)))
                        .collect(),
                    from: 0,
                    next: 0,
                })
                .collect(),
            decl: edits.clone(),
            rate,
            edits: edits.resolve(limit, rate),
            stage: AudioBuffer::new(max_ch, block.max(1)),
            faded: AudioBuffer::new(max_ch, block.max(1)),
        }
    }

    /// Frames of the outputs (from song frame 0) the render needs at most: the song plus the
    /// longest tail allowed.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether every output has been silent long enough after the end (or passed the limit):
    /// the render can stop.
    pub fn done(&self) -> bool {
        let need = (self.content_end + self.hold).min(self.limit);
        // Nothing after `trim.finish` is kept.
        let need = self.finish.map_or(need, |f| need.min(f));
        self.outputs.iter().all(|h| h.next >= need)
    }

    /// The tail measured so far: frames after the song's end up to the last one above the
    /// threshold.
    pub fn tail(&self) -> u64 {
        self.content_end.min(self.limit) - self.song_frames.min(self.limit)
    }

    /// Frames before this song position can be handed on: the end cannot move before it.
    fn release_bound(&self) -> u64 {
        let end = self
            .finish
            .map_or(self.content_end, |f| f.min(self.content_end));
        end.saturating_sub(self.lookback)
    }

    /// Takes the block of output `o` whose first frame is song frame `pos`, hands on (edited)
    /// what is certain to be kept: `sink(output, block)`.
    pub fn push<E>(
        &mut self,
        o: usize,
        pos: u64,
        block: AudioRef<'_>,
        sink: &mut dyn FnMut(usize, AudioRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let n = block.frames() as u64;
        let keep = self.limit.saturating_sub(pos).min(n) as usize;
        let block = block.slice(0, keep);
        // The tail grows with every loud frame after the song's end.
        if pos + keep as u64 > self.song_frames {
            let from = self.song_frames.saturating_sub(pos) as usize;
            let mut last = None;
            for c in 0..block.channels() {
                if let Some(k) = block.channel(c)[from..]
                    .iter()
                    .rposition(|x| x.abs() > self.threshold)
                {
                    last = Some(last.map_or(k, |l: usize| l.max(k)));
                }
            }
            if let Some(k) = last {
                self.content_end = self.content_end.max(pos + (from + k) as u64 + 1);
            }
        }
        let bound = self.release_bound();
        let held = &mut self.outputs[o];
        held.next = pos + n;
        let empty = held.frames.first().is_none_or(|f| f.is_empty());
        // The straight path: nothing held, and the whole block certain.
        let direct = if empty {
            (bound.saturating_sub(pos) as usize).min(block.frames())
        } else {
            0
        };
        if direct > 0 {
            Self::emit(
                &self.edits,
                &mut self.faded,
                o,
                pos,
                block.slice(0, direct),
                sink,
            )?;
        }
        let rest = block.slice(direct, block.frames());
        let held = &mut self.outputs[o];
        if rest.frames() > 0 {
            if held.frames[0].is_empty() {
                held.from = pos + direct as u64;
            }
            for (c, q) in held.frames.iter_mut().enumerate() {
                q.extend(rest.channel(c).iter().copied());
            }
        }
        self.release(o, bound, sink)
    }

    /// Hands on the held frames of output `o` before song position `bound`.
    fn release<E>(
        &mut self,
        o: usize,
        bound: u64,
        sink: &mut dyn FnMut(usize, AudioRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            let held = &mut self.outputs[o];
            let have = held.frames.first().map_or(0, VecDeque::len) as u64;
            let n = bound
                .saturating_sub(held.from)
                .min(have)
                .min(self.stage.max_frames() as u64) as usize;
            if n == 0 {
                return Ok(());
            }
            let channels = held.frames.len();
            self.stage.set_channels(channels);
            for (c, q) in held.frames.iter_mut().enumerate() {
                for (d, s) in self.stage.channel_mut(c, n).iter_mut().zip(q.drain(..n)) {
                    *d = s;
                }
            }
            let from = held.from;
            held.from += n as u64;
            Self::emit(
                &self.edits,
                &mut self.faded,
                o,
                from,
                self.stage.view(n),
                sink,
            )?;
        }
    }

    fn emit<E>(
        edits: &SongEdits,
        scratch: &mut AudioBuffer,
        o: usize,
        pos: u64,
        block: AudioRef<'_>,
        sink: &mut dyn FnMut(usize, AudioRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match edits.apply(pos, block, scratch) {
            Some(b) => sink(o, b),
            None => Ok(()),
        }
    }

    /// The end is known: places the edits on it and hands on what is left before it. Returns
    /// the tail, in frames after the song's end.
    pub fn finish<E>(
        mut self,
        sink: &mut dyn FnMut(usize, AudioRef<'_>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let end = self.content_end.min(self.limit);
        self.edits = self.decl.resolve(end, self.rate);
        let bound = self.edits.end;
        for o in 0..self.outputs.len() {
            self.release(o, bound, sink)?;
        }
        Ok(self.tail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::edits::FadeShape;
    use crate::session::FadeDecl;

    /// Feeds `signal` (one channel) through a trim in blocks of `block`; returns what came out.
    fn run(
        signal: &[f64],
        song: u64,
        declared: u64,
        edits: &EditsDecl,
        block: usize,
    ) -> (Vec<f64>, u64) {
        let settings = TailSettings {
            threshold_db: -60.0,
            hold_s: 10.0,
            max_s: None,
        };
        let mut t = TailTrim::new(&settings, edits, song, declared, 1.0, &[1], block);
        let mut out = Vec::new();
        let mut input = AudioBuffer::new(1, block);
        let mut pos = 0;
        let mut sink = |_: usize, b: AudioRef<'_>| -> Result<(), ()> {
            out.extend_from_slice(b.channel(0));
            Ok(())
        };
        while pos < signal.len() && !t.done() {
            let n = block.min(signal.len() - pos);
            input
                .channel_mut(0, n)
                .copy_from_slice(&signal[pos..pos + n]);
            t.push(0, pos as u64, input.view(n), &mut sink).unwrap();
            pos += n;
        }
        let tail = t.finish(&mut sink).unwrap();
        (out, tail)
    }

    #[test]
    fn cuts_at_the_last_loud_frame_and_fades_onto_it() {
        // A song of 100 frames, a tail ringing to frame 130, then silence; 200 declared.
        let mut s = vec![0.5; 100];
        s.extend((0..30).map(|k| 0.1 * 0.9f64.powi(k)));
        s.extend(vec![0.0; 300]);
        let none = EditsDecl::default();
        for block in [1, 7, 64, 1000] {
            let (out, tail) = run(&s, 100, 200, &none, block);
            assert_eq!(tail, 30, "block {block}");
            assert_eq!(out, s[..130], "block {block}");
        }
        let fade = EditsDecl {
            fade_out: Some(FadeDecl {
                seconds: 50.0,
                shape: FadeShape::Linear,
            }),
            ..Default::default()
        };
        for block in [1, 7, 64, 1000] {
            let (out, tail) = run(&s, 100, 200, &fade, block);
            assert_eq!((out.len(), tail), (130, 30), "block {block}");
            assert_eq!(out[..80], s[..80]);
            assert_eq!(out[129], 0.0, "the fade ends on the last frame");
            assert!((out[104] - s[104] * 25.0 / 50.0).abs() < 1e-12);
        }
        // The declared tail bounds it.
        let (out, tail) = run(&s, 100, 10, &none, 16);
        assert_eq!((out.len(), tail), (110, 10));
    }
}
