//! The body of the device callback: stems in, monitor signal out.
//!
//! Owns the [`LiveEngine`] and the callback's end of every queue: stem chunks from the streamer,
//! commands from the transport, the output copy for the meters. Per callback it applies the
//! transport's commands and latest values, then, in blocks of at most the engine's max block:
//! copies the stems into the engine inputs (with mute and solo ramps, measuring their levels),
//! runs the engine, sends a copy of the master to the meters, delays the reference by the
//! engine's latency and crossfades A/B, applies the declick gate, and writes `f32` frames.
//!
//! It follows the chunks' positions: a chunk that does not follow on (a seek, a loop wrap) resets
//! the engine to its position behind a short fade-out and a fade-in once the engine's latency
//! has passed. When no chunk is ready it plays silence and counts an underrun; it never waits.
//!
//! # Realtime safety
//! [`AudioSide::render`] runs under `assert_no_alloc`: it never allocates, frees, locks, does I/O
//! or runs Lua. All buffers are allocated in [`AudioSide::new`]; chunks go back to the streamer's
//! pool and old schedules back to the control side.

use super::shared::{AudioCommand, SharedControls, SharedStatus};
use super::streamer::{Chunk, ChunkReader, REFERENCE_SLOT};
use super::{AB_FADE_MS, DECLICK_MS, STEM_CAPACITY};
use crate::engine::live::LiveEngine;
use crate::units::ms_to_samples;
use rtrb::{Consumer, Producer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Channels of the monitor signal (a mono master is played on both).
pub const MONITOR_CHANNELS: usize = 2;

/// The callback's state. Built on the control side, then moved into the device callback.
pub struct AudioSide {
    engine: LiveEngine,
    chunks: ChunkReader,
    current: Option<Box<Chunk>>,
    offset: usize,
    commands: Consumer<AudioCommand>,
    controls: Arc<SharedControls>,
    status: Arc<SharedStatus>,
    meter: Producer<f32>,
    rate: f64,
    latency: usize,
    declick_step: f64,
    ab_step: f64,
    paused: bool,
    gate: f64,
    hold: usize,
    flush: Option<u64>,
    epoch: u64,
    waiting: bool,
    expected: Option<i64>,
    ended: bool,
    starving: bool,
    consumed: u64,
    dirty_inputs: usize,
    stem_gain: [f64; STEM_CAPACITY],
    ab: f64,
    ref_delay: [Box<[f64]>; 2],
    ref_pos: usize,
    reference: [Box<[f64]>; 2],
    mix: [Box<[f64]>; 2],
    level_peak: [f64; STEM_CAPACITY],
    level_sumsq: [f64; STEM_CAPACITY],
    level_frames: usize,
    level_window: usize,
}

/// The queues and shared values an [`AudioSide`] is wired to.
pub struct AudioWiring {
    /// Decoded stems from the streamer.
    pub chunks: ChunkReader,
    /// Transport events.
    pub commands: Consumer<AudioCommand>,
    /// Transport latest values.
    pub controls: Arc<SharedControls>,
    /// What the callback reports.
    pub status: Arc<SharedStatus>,
    /// Interleaved stereo copy of the master for the meters.
    pub meter: Producer<f32>,
}

impl AudioSide {
    /// The callback state around `engine` at `sample_rate`. Allocates every buffer it will use.
    pub fn new(engine: LiveEngine, sample_rate: f64, wiring: AudioWiring) -> Self {
        let max_block = engine.max_block();
        let latency = engine.live_latency();
        let buf = |n: usize| vec![0.0; n].into_boxed_slice();
        Self {
            chunks: wiring.chunks,
            current: None,
            offset: 0,
            commands: wiring.commands,
            controls: wiring.controls,
            status: wiring.status,
            meter: wiring.meter,
            rate: sample_rate,
            latency,
            declick_step: 1.0 / ms_to_samples(DECLICK_MS, sample_rate).max(1) as f64,
            ab_step: 1.0 / ms_to_samples(AB_FADE_MS, sample_rate).max(1) as f64,
            paused: false,
            gate: 0.0,
            hold: 0,
            flush: None,
            epoch: 0,
            waiting: true,
            expected: None,
            ended: false,
            starving: false,
            consumed: 0,
            dirty_inputs: engine.input_count(),
            stem_gain: [1.0; STEM_CAPACITY],
            ab: 0.0,
            ref_delay: [buf(latency), buf(latency)],
            ref_pos: 0,
            reference: [buf(max_block), buf(max_block)],
            mix: [buf(max_block), buf(max_block)],
            level_peak: [0.0; STEM_CAPACITY],
            level_sumsq: [0.0; STEM_CAPACITY],
            level_frames: 0,
            level_window: (sample_rate / 20.0) as usize,
            engine,
        }
    }

    /// What the callback reports (the device wrapper adds its own counts to it).
    pub fn status(&self) -> &Arc<SharedStatus> {
        &self.status
    }

    /// The engine's fixed output latency in frames.
    pub fn live_latency(&self) -> usize {
        self.latency
    }

    /// The largest block the engine runs.
    pub fn max_block(&self) -> usize {
        self.engine.max_block()
    }

    /// Fills `out` (interleaved, `channels` per frame) with the next frames of the monitor
    /// signal. `device_latency` is how long the device takes to play them (for the clock).
    ///
    /// # Realtime safety
    /// Runs under `assert_no_alloc`; never blocks.
    pub fn render(&mut self, out: &mut [f32], channels: usize, device_latency: Duration) {
        assert_no_alloc::assert_no_alloc(|| self.render_inner(out, channels, device_latency))
    }

    fn render_inner(&mut self, out: &mut [f32], channels: usize, device_latency: Duration) {
        let started = Instant::now();
        let channels = channels.max(1);
        self.status.clock.publish(
            self.engine.position(),
            started.saturating_duration_since(self.status.base),
            device_latency,
        );
        while let Ok(cmd) = self.commands.pop() {
            match cmd {
                AudioCommand::Pause => self.paused = true,
                AudioCommand::Resume => self.paused = false,
                AudioCommand::Flush { epoch } => self.flush = Some(epoch),
            }
        }
        let frames = out.len() / channels;
        let mut done = 0;
        while done < frames {
            if let Some(epoch) = self.flush {
                if self.gate <= 0.0 {
                    self.flush_now(epoch);
                }
            }
            if self.paused && self.gate <= 0.0 {
                break;
            }
            if !self.ensure_chunk() {
                if let Some(epoch) = self.flush {
                    self.flush_now(epoch);
                } else if !self.paused && !self.waiting && !self.ended {
                    if !self.starving {
                        // One dropout per stretch of callbacks without stems.
                        self.starving = true;
                        self.status.starved.fetch_add(1, Ordering::Relaxed);
                        self.status.underruns.fetch_add(1, Ordering::Relaxed);
                    }
                    self.status
                        .underrun_frames
                        .fetch_add((frames - done) as u64, Ordering::Relaxed);
                }
                self.gate = 0.0;
                break;
            }
            self.starving = false;
            let closing = self.paused || self.flush.is_some();
            let left_in_chunk = self.current.as_ref().map_or(0, |c| c.frames) - self.offset;
            let mut n = (frames - done)
                .min(self.engine.max_block())
                .min(left_in_chunk);
            if closing {
                let to_zero = (self.gate / self.declick_step).ceil().max(1.0) as usize;
                n = n.min(to_zero);
            }
            self.play_block(
                &mut out[done * channels..(done + n) * channels],
                n,
                channels,
            );
            done += n;
        }
        out[done * channels..].fill(0.0);
        self.status
            .running
            .store(!self.paused && self.current.is_some(), Ordering::Relaxed);
        self.status
            .position
            .store(self.engine.position(), Ordering::Relaxed);
        self.status.callbacks.fetch_add(1, Ordering::Relaxed);
        self.status
            .hearing_reference
            .store(self.ab > 0.5, Ordering::Relaxed);
        let deadline = frames as f64 / self.rate;
        if deadline > 0.0 {
            let load = (started.elapsed().as_secs_f64() / deadline * 1000.0) as u32;
            self.status.load_permille.store(load, Ordering::Relaxed);
            self.status
                .load_max_permille
                .fetch_max(load, Ordering::Relaxed);
        }
    }

    /// Drops everything of the epochs before `epoch` and waits for its first chunk.
    fn flush_now(&mut self, epoch: u64) {
        if let Some(c) = self.current.take() {
            self.chunks.give_back(c);
        }
        self.flush = None;
        self.epoch = epoch;
        self.waiting = true;
        self.ended = false;
        self.status.ended.store(false, Ordering::Relaxed);
        self.gate = 0.0;
        self.status
            .position
            .store(self.engine.position(), Ordering::Relaxed);
        self.status.epoch_acked.store(epoch, Ordering::Release);
    }

    /// Makes sure a chunk with frames left is current; false if none is ready.
    fn ensure_chunk(&mut self) -> bool {
        loop {
            if let Some(c) = &self.current {
                if self.offset < c.frames {
                    return true;
                }
                let c = self.current.take().expect("checked");
                if c.last {
                    self.ended = true;
                    self.status.ended.store(true, Ordering::Relaxed);
                }
                self.chunks.give_back(c);
            }
            let Some(c) = self.chunks.pop() else {
                return false;
            };
            if c.epoch < self.epoch {
                self.chunks.give_back(c);
                continue;
            }
            if c.epoch != self.epoch || self.waiting {
                self.consumed = 0;
            }
            self.epoch = c.epoch;
            self.status.epoch.store(c.epoch, Ordering::Relaxed);
            self.waiting = false;
            self.ended = false;
            if self.expected != Some(c.position) {
                self.jump_to(c.position);
            }
            self.current = Some(c);
            self.offset = 0;
        }
    }

    /// Restarts the engine at stream position `position` (a seek or a loop wrap): its state is
    /// cleared, and the gate opens again once the engine's latency has passed.
    fn jump_to(&mut self, position: i64) {
        self.engine.seek(position);
        for d in &mut self.ref_delay {
            d.fill(0.0);
        }
        self.ref_pos = 0;
        self.gate = 0.0;
        self.hold = self.latency;
        self.expected = Some(position);
    }

    /// Frames until the stream jumps (a loop wrap), if within the declick length.
    fn frames_to_jump(&self, chunk: &Chunk) -> Option<usize> {
        let left = chunk.frames - self.offset;
        if chunk.jump_after {
            return Some(left);
        }
        let declick = (1.0 / self.declick_step) as usize;
        if left < declick {
            if let Some(next) = self.chunks.peek() {
                if next.epoch == chunk.epoch && next.jump_after {
                    return Some(left + next.frames);
                }
            }
        }
        None
    }

    fn play_block(&mut self, out: &mut [f32], n: usize, channels: usize) {
        let chunk = self.current.take().expect("ensure_chunk made one current");
        let off = self.offset;
        let mute = self.controls.mute.load(Ordering::Relaxed);
        let solo = self.controls.solo.load(Ordering::Relaxed);

        // Stems into the engine, with mute and solo ramps; their levels.
        let stems = chunk.stems.min(self.engine.input_count());
        for i in 0..stems {
            let target = if SharedControls::audible(mute, solo, i) {
                1.0
            } else {
                0.0
            };
            let start = self.stem_gain[i];
            let mut end = start;
            let src_channels = usize::from(chunk.stem_channels[i]).max(1);
            let mut input = self.engine.input_mut(i, n);
            let mut peak = self.level_peak[i];
            let mut sumsq = self.level_sumsq[i];
            for c in 0..input.channels() {
                let src = &chunk.channel(i, c.min(src_channels - 1))[off..off + n];
                let dst = input.channel_mut(c);
                if start == target && target == 1.0 {
                    dst.copy_from_slice(src);
                } else if start == target {
                    dst.fill(0.0);
                } else {
                    let mut g = start;
                    for (y, x) in dst.iter_mut().zip(src) {
                        g = step_towards(g, target, self.declick_step);
                        *y = x * g;
                    }
                    end = g;
                }
                for &y in dst.iter() {
                    peak = peak.max(y.abs());
                    sumsq += y * y;
                }
            }
            self.stem_gain[i] = end;
            self.level_peak[i] = peak;
            self.level_sumsq[i] = sumsq;
        }
        for i in stems..self.dirty_inputs {
            let mut input = self.engine.input_mut(i, n);
            for c in 0..input.channels() {
                input.channel_mut(c).fill(0.0);
            }
        }
        self.dirty_inputs = stems;
        self.publish_levels(stems, n);

        // The engine.
        let master = self.engine.process(n);
        let m_channels = master.channels().max(1);
        for c in 0..MONITOR_CHANNELS {
            self.mix[c][..n].copy_from_slice(master.channel(c.min(m_channels - 1)));
        }

        // A copy for the meters (dropped when they lag).
        match self.meter.write_chunk_uninit(n * MONITOR_CHANNELS) {
            Ok(w) => {
                let (l, r) = (&self.mix[0][..n], &self.mix[1][..n]);
                w.fill_from_iter(l.iter().zip(r).flat_map(|(&a, &b)| [a as f32, b as f32]));
            }
            Err(_) => {
                self.status.meter_drops.fetch_add(1, Ordering::Relaxed);
            }
        }

        // The reference, delayed by the engine's latency so it lines up; the A/B crossfade.
        let listen = self.controls.listen_reference.load(Ordering::Relaxed) && chunk.has_reference;
        let ab_target = if listen { 1.0 } else { 0.0 };
        if chunk.has_reference {
            let len = self.ref_delay[0].len();
            let mut pos = self.ref_pos;
            for k in 0..n {
                for c in 0..MONITOR_CHANNELS {
                    let x = chunk.channel(REFERENCE_SLOT, c)[off + k];
                    self.reference[c][k] = if len == 0 {
                        x
                    } else {
                        std::mem::replace(&mut self.ref_delay[c][pos], x)
                    };
                }
                if len > 0 {
                    pos = (pos + 1) % len;
                }
            }
            self.ref_pos = pos;
        }
        if self.ab > 0.0 || ab_target > 0.0 {
            let g_ref = self.controls.reference_gain.load();
            let mut x = self.ab;
            for k in 0..n {
                x = step_towards(x, ab_target, self.ab_step);
                for c in 0..MONITOR_CHANNELS {
                    let r = if chunk.has_reference {
                        self.reference[c][k]
                    } else {
                        0.0
                    };
                    self.mix[c][k] = self.mix[c][k] * (1.0 - x) + r * g_ref * x;
                }
            }
            self.ab = x;
        }

        // The declick gate (pause, flush, after a reset) and the fade before a loop wrap.
        let target = if self.paused || self.flush.is_some() {
            0.0
        } else {
            1.0
        };
        let jump = self.frames_to_jump(&chunk);
        let declick = 1.0 / self.declick_step;
        for k in 0..n {
            if self.hold > 0 {
                self.hold -= 1;
            } else {
                self.gate = step_towards(self.gate, target, self.declick_step);
            }
            let mut g = self.gate;
            if let Some(j) = jump {
                g = g.min((j - k) as f64 / declick);
            }
            let frame = &mut out[k * channels..(k + 1) * channels];
            let (l, r) = (self.mix[0][k], self.mix[1][k]);
            if channels == 1 {
                frame[0] = ((l + r) * 0.5 * g) as f32;
            } else {
                frame[0] = (l * g) as f32;
                frame[1] = (r * g) as f32;
                frame[2..].fill(0.0);
            }
        }
        if target == 0.0 && self.gate < self.declick_step * 0.5 {
            self.gate = 0.0;
        }

        self.offset = off + n;
        self.expected = Some(chunk.position + self.offset as i64);
        self.consumed += n as u64;
        self.status.consumed.store(self.consumed, Ordering::Relaxed);
        self.current = Some(chunk);
    }

    /// Publishes the stems' peak and RMS every ~50 ms.
    fn publish_levels(&mut self, stems: usize, n: usize) {
        self.level_frames += n;
        if self.level_frames < self.level_window {
            return;
        }
        let count = (self.level_frames * 2) as f64;
        for i in 0..STEM_CAPACITY {
            let (peak, rms) = if i < stems {
                (self.level_peak[i], (self.level_sumsq[i] / count).sqrt())
            } else {
                (0.0, 0.0)
            };
            self.status.stem_peak[i].store(peak);
            self.status.stem_rms[i].store(rms);
            self.level_peak[i] = 0.0;
            self.level_sumsq[i] = 0.0;
        }
        self.level_frames = 0;
    }
}

/// One step of a linear ramp from `x` towards `target`.
#[inline]
fn step_towards(x: f64, target: f64, step: f64) -> f64 {
    if x < target {
        (x + step).min(target)
    } else if x > target {
        (x - step).max(target)
    } else {
        x
    }
}
