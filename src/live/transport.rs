//! The transport (control side): pause and resume, seeks, loops, mute and solo, A/B.
//!
//! Owns the control side's end of the callback's command queue, the latest-value controls, and
//! the streamer handle. Events that must arrive in order (pause, resume, the flush of a seek) go
//! through the bounded lock-free queue; mute and solo masks and the A/B choice are atomics.
//! A seek is two messages: the streamer restarts at the new position in a new epoch, and the
//! callback fades out, drops the old epoch's chunks and follows the new ones.
//!
//! Positions are stream positions in frames: the song frame an input sample belongs to. What
//! is heard lags the engine's input by its fixed live latency.
//!
//! Never touches the audio thread's memory except through those queues and atomics, and never
//! waits for the callback.

use super::shared::{AudioCommand, SharedControls, SharedStatus};
use super::streamer::{Opened, Region, StreamerCommand, StreamerHandle};
use crate::script::time::parse_time;
use rtrb::Producer;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How far ←/→ seek, in seconds.
pub const SEEK_STEP_S: f64 = 5.0;

/// The transport's state and its ends of the queues.
pub struct Transport {
    commands: Producer<AudioCommand>,
    controls: Arc<SharedControls>,
    status: Arc<SharedStatus>,
    streamer: StreamerHandle,
    epoch: u64,
    paused: bool,
    rate: f64,
    latency: usize,
    song_frames: i64,
    end: i64,
    sections: Vec<(String, f64)>,
    looping: Option<(Region, String)>,
    preset: Option<(Region, String)>,
    mark_in: Option<i64>,
    mark_out: Option<i64>,
    stems: Vec<String>,
    has_reference: bool,
}

/// What a transport is made of.
pub struct TransportParts {
    /// The callback's command queue.
    pub commands: Producer<AudioCommand>,
    /// Latest values for the callback.
    pub controls: Arc<SharedControls>,
    /// What the callback reports.
    pub status: Arc<SharedStatus>,
    /// The streamer.
    pub streamer: StreamerHandle,
}

impl Transport {
    /// A transport at `rate`, for an engine of `latency` frames.
    pub fn new(parts: TransportParts, rate: f64, latency: usize) -> Self {
        Self {
            commands: parts.commands,
            controls: parts.controls,
            status: parts.status,
            streamer: parts.streamer,
            epoch: 0,
            paused: false,
            rate,
            latency,
            song_frames: 0,
            end: 0,
            sections: Vec::new(),
            looping: None,
            preset: None,
            mark_in: None,
            mark_out: None,
            stems: Vec::new(),
            has_reference: false,
        }
    }

    /// Tells the transport about the song as the last good recipe describes it.
    pub fn set_song(
        &mut self,
        stems: Vec<String>,
        sections: Vec<(String, f64)>,
        song_frames: u64,
        tail: usize,
        has_reference: bool,
    ) {
        self.stems = stems;
        self.sections = sections;
        self.song_frames = song_frames as i64;
        self.has_reference = has_reference;
        let end = self.song_frames + (tail + self.latency) as i64;
        if end != self.end {
            self.end = end;
            self.streamer.send(StreamerCommand::SetEnd(end));
        }
    }

    /// Where playback ends (song, tail and latency), in frames.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// The streamer.
    pub fn streamer(&self) -> &StreamerHandle {
        &self.streamer
    }

    /// What the callback reports.
    pub fn status(&self) -> &Arc<SharedStatus> {
        &self.status
    }

    /// The latest-value controls.
    pub fn controls(&self) -> &Arc<SharedControls> {
        &self.controls
    }

    fn push(&mut self, cmd: AudioCommand) {
        // Never blocks: the callback drains the queue every few milliseconds.
        let _ = self.commands.push(cmd);
    }

    /// Song time now heard (before the device's own latency), in frames.
    pub fn heard_position(&self) -> i64 {
        (self.status.position.load(Ordering::Relaxed) - self.latency as i64).max(0)
    }

    /// Song time in frames for `seconds`.
    pub fn frames(&self, seconds: f64) -> i64 {
        crate::units::seconds_to_samples(seconds, self.rate)
    }

    /// Whether playback is paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Pauses or resumes.
    pub fn toggle_pause(&mut self) -> String {
        self.paused = !self.paused;
        if self.paused {
            self.push(AudioCommand::Pause);
            "paused".into()
        } else {
            self.push(AudioCommand::Resume);
            "playing".into()
        }
    }

    /// The epoch of the last seek or reopen.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// Restarts playback at stream position `position`.
    pub fn seek_to(&mut self, position: i64) {
        let position = position.clamp(0, (self.end - 1).max(0));
        let epoch = self.next_epoch();
        self.push(AudioCommand::Flush { epoch });
        self.streamer
            .send(StreamerCommand::Seek { position, epoch });
    }

    /// Seeks `seconds` forward (or back) from what is heard now.
    pub fn seek_by(&mut self, seconds: f64) -> String {
        let target = self.heard_position() + self.frames(seconds);
        let target = target.clamp(0, self.song_frames.max(1) - 1);
        self.seek_to(target);
        format!("seek to {}", clock(target as f64 / self.rate))
    }

    /// Asks the callback to fade out and drop everything queued (before a reopen); returns the
    /// epoch whose acknowledgement ([`SharedStatus::epoch_acked`]) says it is done.
    pub fn begin_flush(&mut self) -> u64 {
        let epoch = self.next_epoch();
        self.push(AudioCommand::Flush { epoch });
        epoch
    }

    /// Has the streamer read `opened` from stream position `position` on (after the callback
    /// acknowledged [`Transport::begin_flush`]).
    pub fn restart(&mut self, opened: Opened, position: i64) {
        self.streamer.send(StreamerCommand::Reopen {
            opened: Box::new(opened),
            position,
            epoch: self.epoch,
        });
    }

    /// Mutes or unmutes stem `i`.
    pub fn toggle_mute(&mut self, i: usize) -> Option<String> {
        let name = self.stems.get(i)?.clone();
        let bit = 1u32 << i;
        let was = self.controls.mute.fetch_xor(bit, Ordering::Relaxed);
        Some(format!(
            "{} {name}",
            if was & bit == 0 { "mute" } else { "unmute" }
        ))
    }

    /// Solos or unsolos stem `i`.
    pub fn toggle_solo(&mut self, i: usize) -> Option<String> {
        let name = self.stems.get(i)?.clone();
        let bit = 1u32 << i;
        let was = self.controls.solo.fetch_xor(bit, Ordering::Relaxed);
        Some(format!(
            "{} {name}",
            if was & bit == 0 { "solo" } else { "unsolo" }
        ))
    }

    /// Switches between the master (A) and the reference mix (B).
    pub fn toggle_ab(&mut self) -> String {
        if !self.has_reference {
            return "no reference mix in the recipe (session { reference = \"mix.wav\" })".into();
        }
        let b = !self.controls.listen_reference.load(Ordering::Relaxed);
        self.controls.listen_reference.store(b, Ordering::Relaxed);
        if b {
            "B: reference mix".into()
        } else {
            "A: master".into()
        }
    }

    /// The loop given on the command line (`--loop`), if any.
    pub fn set_preset_loop(&mut self, spec: &str) -> Result<(), String> {
        let region = self.parse_region(spec)?;
        self.preset = Some(region);
        Ok(())
    }

    /// Starts the preset loop (or the section around the playhead, or the marked region, or the
    /// whole song), or stops looping.
    pub fn toggle_loop(&mut self) -> String {
        if self.looping.take().is_some() {
            self.streamer.send(StreamerCommand::SetLoop(None));
            let heard = self.heard_position();
            // The streamer may already have wrapped ahead of the playhead: resume from here.
            if self
                .streamer
                .status()
                .write_position
                .load(Ordering::Relaxed)
                < heard
            {
                self.seek_to(heard);
            }
            return "loop off".into();
        }
        let region = self
            .marked_region()
            .or_else(|| self.preset.clone())
            .or_else(|| self.section_around(self.heard_position()))
            .unwrap_or((
                Region {
                    start: 0,
                    end: self.song_frames.max(1),
                },
                "whole song".into(),
            ));
        self.start_loop(region)
    }

    /// Loops `region` now.
    pub fn start_loop(&mut self, (region, label): (Region, String)) -> String {
        let heard = self.heard_position();
        self.streamer.send(StreamerCommand::SetLoop(Some(region)));
        let written = self
            .streamer
            .status()
            .write_position
            .load(Ordering::Relaxed);
        if heard < region.start || heard >= region.end {
            self.seek_to(region.start);
        } else if written > region.end || written < heard {
            // Read ahead past the loop end already: restart from the playhead.
            self.seek_to(heard);
        }
        let msg = format!(
            "loop {label} ({}–{})",
            clock(region.start as f64 / self.rate),
            clock(region.end as f64 / self.rate)
        );
        self.looping = Some((region, label));
        msg
    }

    /// Marks the loop start at the playhead.
    pub fn mark_in(&mut self) -> String {
        let p = self.heard_position();
        self.mark_in = Some(p);
        format!("loop in at {}", clock(p as f64 / self.rate))
    }

    /// Marks the loop end at the playhead.
    pub fn mark_out(&mut self) -> String {
        let p = self.heard_position();
        self.mark_out = Some(p);
        format!("loop out at {}", clock(p as f64 / self.rate))
    }

    fn marked_region(&self) -> Option<(Region, String)> {
        let (a, b) = (self.mark_in?, self.mark_out?);
        (b > a).then(|| (Region { start: a, end: b }, "marked region".to_string()))
    }

    /// The current loop, if any, as (start s, end s, label).
    pub fn looping(&self) -> Option<(f64, f64, String)> {
        self.looping.as_ref().map(|(r, l)| {
            (
                r.start as f64 / self.rate,
                r.end as f64 / self.rate,
                l.clone(),
            )
        })
    }

    /// The section that contains stream position `p`.
    fn section_around(&self, p: i64) -> Option<(Region, String)> {
        let starts: Vec<(String, i64)> = self
            .sections
            .iter()
            .map(|(n, s)| (n.clone(), self.frames(*s)))
            .collect();
        let i = starts.iter().rposition(|(_, s)| *s <= p)?;
        let end = starts
            .get(i + 1)
            .map_or(self.song_frames, |(_, s)| *s)
            .max(starts[i].1 + 1);
        Some((
            Region {
                start: starts[i].1,
                end,
            },
            format!("section {}", starts[i].0),
        ))
    }

    /// The section the playhead is in, by name.
    pub fn section_name(&self) -> Option<String> {
        let p = self.heard_position();
        self.section_around(p).map(|(_, l)| l)
    }

    /// Parses a region: `START..END` (times as seconds or m:ss) or a section name.
    pub fn parse_region(&self, spec: &str) -> Result<(Region, String), String> {
        if let Some((a, b)) = spec.split_once("..") {
            let start = self.frames(parse_time(a)?);
            let end = self.frames(parse_time(b)?);
            if end <= start {
                return Err(format!("loop `{spec}`: the end must come after the start"));
            }
            return Ok((Region { start, end }, spec.to_string()));
        }
        let Some(i) = self.sections.iter().position(|(n, _)| n == spec) else {
            let names: Vec<&str> = self.sections.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "loop `{spec}`: not START..END nor a section of the recipe{}",
                if names.is_empty() {
                    " (it declares none)".to_string()
                } else {
                    format!(" ({})", names.join(", "))
                }
            ));
        };
        self.section_around(self.frames(self.sections[i].1))
            .ok_or_else(|| format!("loop `{spec}`: empty section"))
    }
}

/// `m:ss.s` for a time in seconds.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0);
    format!("{}:{:04.1}", (s / 60.0).floor() as u64, s % 60.0)
}

/// Parses `--from`: seconds or m:ss.
pub fn parse_from(text: &str) -> Result<f64, String> {
    parse_time(text)
}
