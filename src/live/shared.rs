//! What the control side and the audio callback share: latest-value atomics both ways, and the
//! events that travel through the bounded command queue.
//!
//! Continuous values (mute and solo masks, which program is heard, the reference's matching gain)
//! are atomics the control side stores and the callback loads once per callback: the latest value
//! wins and nothing queues up. Events that must not be lost or reordered (pause, resume, a flush
//! for a seek) go through an rtrb queue ([`AudioCommand`]). The callback reports back through
//! [`SharedStatus`], atomics only.
//!
//! # Realtime safety
//! Everything the callback calls here is a relaxed or release/acquire atomic load or store on
//! memory allocated beforehand.

use super::STEM_CAPACITY;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An event for the audio side (bounded lock-free queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCommand {
    /// Fade out and stop consuming stems (the engine keeps its state).
    Pause,
    /// Fade back in where it stopped.
    Resume,
    /// Fade out, drop every chunk older than `epoch` and wait for the streamer's chunks of
    /// `epoch` (a seek or a reopen); acknowledged through [`SharedStatus::epoch_acked`].
    Flush {
        /// The epoch to play next.
        epoch: u64,
    },
}

/// Capacity of the command queue. The control side drops a command rather than block when it is
/// full (it never is in practice: the callback drains it every few milliseconds).
pub const COMMAND_QUEUE: usize = 64;

/// An `f64` in an atomic, for latest-value sharing.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    /// A new value.
    pub fn new(v: f64) -> Self {
        Self(AtomicU64::new(v.to_bits()))
    }
    /// The latest value.
    #[inline]
    pub fn load(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    /// Publishes a value.
    #[inline]
    pub fn store(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed)
    }
}

/// Control → audio, latest value wins.
#[derive(Debug)]
pub struct SharedControls {
    /// Bit `i` set: stem `i` muted.
    pub mute: AtomicU32,
    /// Bit `i` set: stem `i` soloed (when any bit is set, only soloed stems play).
    pub solo: AtomicU32,
    /// Listen to the reference mix (B) instead of the master (A).
    pub listen_reference: AtomicBool,
    /// Linear gain applied to the reference so it matches the master's loudness.
    pub reference_gain: AtomicF64,
}

impl Default for SharedControls {
    fn default() -> Self {
        Self {
            mute: AtomicU32::new(0),
            solo: AtomicU32::new(0),
            listen_reference: AtomicBool::new(false),
            reference_gain: AtomicF64::new(1.0),
        }
    }
}

impl SharedControls {
    /// Whether stem `i` should be heard under the current mute and solo masks.
    #[inline]
    pub fn audible(mute: u32, solo: u32, i: usize) -> bool {
        let bit = 1u32 << i;
        mute & bit == 0 && (solo == 0 || solo & bit != 0)
    }
}

/// Where the callback was in the stream, and when (a seqlock: one writer, the callback).
#[derive(Debug, Default)]
pub struct Clock {
    seq: AtomicU64,
    position: AtomicI64,
    nanos: AtomicU64,
    device_latency_ns: AtomicU64,
}

/// One reading of the [`Clock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// Engine (stream) position at the start of the callback.
    pub position: i64,
    /// When the callback started, as time since [`SharedStatus::base`].
    pub at: Duration,
    /// How long the device takes to play what the callback writes.
    pub device_latency: Duration,
}

impl Clock {
    /// Publishes a reading (the callback only).
    #[inline]
    pub fn publish(&self, position: i64, at: Duration, device_latency: Duration) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.position.store(position, Ordering::Relaxed);
        self.nanos.store(at.as_nanos() as u64, Ordering::Relaxed);
        self.device_latency_ns
            .store(device_latency.as_nanos() as u64, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The latest consistent reading, if the callback has run.
    pub fn read(&self) -> Option<ClockReading> {
        for _ in 0..1000 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let position = self.position.load(Ordering::Relaxed);
            let nanos = self.nanos.load(Ordering::Relaxed);
            let lat = self.device_latency_ns.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return (s1 > 0).then(|| ClockReading {
                    position,
                    at: Duration::from_nanos(nanos),
                    device_latency: Duration::from_nanos(lat),
                });
            }
        }
        None
    }
}

/// [`SharedStatus::realtime`] when real-time priority was not asked for (`--no-realtime`).
pub const RT_NOT_ASKED: i32 = i32::MIN;

/// Audio → control: what the callback reports, atomics only.
#[derive(Debug)]
pub struct SharedStatus {
    /// The time origin of [`Clock`] readings.
    pub base: Instant,
    /// Engine (stream) position: frames of stems consumed.
    pub position: AtomicI64,
    /// The callback is consuming stems (not paused, not waiting for a seek).
    pub running: AtomicBool,
    /// The song (and its tail) has been played to the end.
    pub ended: AtomicBool,
    /// The last epoch whose flush the callback has carried out.
    pub epoch_acked: AtomicU64,
    /// The epoch the callback plays.
    pub epoch: AtomicU64,
    /// Frames of that epoch's chunks the callback has consumed.
    pub consumed: AtomicU64,
    /// Callbacks so far.
    pub callbacks: AtomicU64,
    /// Dropouts heard, from every source: one per stretch of silence the listener gets where
    /// the song should be (a device xrun, a missed callback deadline, or stems not decoded in
    /// time; a cause reported twice for the same dropout counts once). See [`super::xruns`].
    pub underruns: AtomicU64,
    /// Of those: times the stems were not decoded in time (the callback played silence).
    pub starved: AtomicU64,
    /// Frames of silence the callback played because the stems were not there.
    pub underrun_frames: AtomicU64,
    /// Xruns the device reported (cpal's error callback: ALSA's EPIPE, a server's underflow).
    pub device_xruns: AtomicU64,
    /// Other errors the device reported (counted; their text goes to the event log).
    pub device_errors: AtomicU64,
    /// Callbacks that came after the device had played out everything written before them
    /// (the missed-deadline check, [`super::xruns::DeadlineWatch`]).
    pub late_callbacks: AtomicU64,
    /// Total time the device ran dry by the missed-deadline check, microseconds.
    pub late_micros: AtomicU64,
    /// A device xrun was reported and the next callback has not accounted for it yet.
    pub xrun_pending: AtomicBool,
    /// The audio thread's scheduling, once the first callback asked: 0 not yet, > 0 real-time
    /// at that priority, < 0 refused with that `-errno`, [`RT_NOT_ASKED`] not asked for.
    pub realtime: AtomicI32,
    /// Output blocks the meters missed because their ring was full.
    pub meter_drops: AtomicU64,
    /// Time spent in the last callback relative to its deadline, per mille.
    pub load_permille: AtomicU32,
    /// The largest load so far, per mille.
    pub load_max_permille: AtomicU32,
    /// The reference (B) is what is heard now (after the crossfade started).
    pub hearing_reference: AtomicBool,
    /// Per stem: peak of the last ~50 ms window after mute and solo (linear, `f64` bits).
    pub stem_peak: [AtomicF64; STEM_CAPACITY],
    /// Per stem: RMS of the last ~50 ms window (linear).
    pub stem_rms: [AtomicF64; STEM_CAPACITY],
    /// Where the callback was, and when.
    pub clock: Clock,
}

impl Default for SharedStatus {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            position: AtomicI64::new(0),
            running: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            epoch_acked: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            callbacks: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            starved: AtomicU64::new(0),
            underrun_frames: AtomicU64::new(0),
            device_xruns: AtomicU64::new(0),
            device_errors: AtomicU64::new(0),
            late_callbacks: AtomicU64::new(0),
            late_micros: AtomicU64::new(0),
            xrun_pending: AtomicBool::new(false),
            realtime: AtomicI32::new(0),
            meter_drops: AtomicU64::new(0),
            load_permille: AtomicU32::new(0),
            load_max_permille: AtomicU32::new(0),
            hearing_reference: AtomicBool::new(false),
            stem_peak: std::array::from_fn(|_| AtomicF64::new(0.0)),
            stem_rms: std::array::from_fn(|_| AtomicF64::new(0.0)),
            clock: Clock::default(),
        }
    }
}

impl SharedStatus {
    /// The instant stream position `position` reaches the listener, estimated from the last
    /// callback: its start time, how far `position` is from where it started, the engine's fixed
    /// latency and the device's latency. Assumes playback runs on without a pause in between.
    pub fn audible_at(&self, position: i64, live_latency: usize, rate: f64) -> Option<Instant> {
        let c = self.clock.read()?;
        let frames = (position - c.position) as f64 + live_latency as f64;
        let offset = c.at.as_secs_f64() + frames / rate + c.device_latency.as_secs_f64();
        (offset >= 0.0).then(|| self.base + Duration::from_secs_f64(offset))
    }
}
