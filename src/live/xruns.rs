//! Underrun accounting: every way the listener can get silence where the song should be, counted
//! once per dropout.
//!
//! Three sources, all reported through [`SharedStatus`] atomics:
//! - **The device** says so: cpal's error callback reports an xrun (ALSA's `EPIPE`, a sound
//!   server's underflow). [`count_device_error`] counts it and leaves a flag for the next
//!   callback.
//! - **The missed-deadline check** ([`DeadlineWatch`]): at the start of each device callback,
//!   on the monotonic clock, was the audio written by the previous callback already played out?
//!   The previous callback knew how long the device still had to play (its latency) and how much
//!   it added; a callback that comes later than that, by more than a small tolerance, found the
//!   device dry. This catches what the device does not report (PulseAudio's ALSA plugin reports
//!   only some of its underflows).
//! - **The stems** were not decoded in time: the callback plays silence (counted in
//!   [`super::audio`]).
//!
//! A device xrun and a late callback are usually the same dropout seen twice: [`CallbackWatch`]
//! counts one underrun per callback that has either. And a device that ran dry starts again only
//! once it holds its start threshold (two periods) again: a callback that misses while the device
//! is still refilling prolongs the same dropout rather than starting a new one. Nor does one that
//! misses within [`DROPOUT_MERGE`] of sound after that: a stalled machine or a sound server that
//! stumbles back (its ALSA plugin failing a few calls after a stop) leaves silences a few
//! milliseconds apart, which a listener hears as one stutter.
//! [`UnderrunCounts`] reads the totals for the status line and the swap log.
//!
//! # Realtime safety
//! [`CallbackWatch::begin`] runs in the device callback: a monotonic clock read (vDSO), a few
//! atomics, no allocation, no lock. [`count_device_error`] runs on the device's thread too (the
//! ALSA host calls its error callback between data callbacks) and only touches atomics.

use super::shared::SharedStatus;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How much later than the device's reckoning a callback may come before it counts as missed:
/// the clock reads and the device's latency report are not exact.
pub const DEADLINE_TOLERANCE: Duration = Duration::from_micros(1500);

/// How much sound must play after a dropout before the next miss counts as a new dropout:
/// silences closer than this are heard as one.
pub const DROPOUT_MERGE: Duration = Duration::from_millis(50);

/// The missed-deadline check: did the device run dry between two callbacks?
#[derive(Debug, Clone)]
pub struct DeadlineWatch {
    rate: f64,
    tolerance: Duration,
    /// When what the device had been given by the previous callback is played out.
    played_out_at: Option<Instant>,
}

impl DeadlineWatch {
    /// A watch for a device at `rate` frames per second.
    pub fn new(rate: f64, tolerance: Duration) -> Self {
        Self {
            rate,
            tolerance,
            played_out_at: None,
        }
    }

    /// Called at the start of a device callback at `now`: `latency` is how long until the
    /// first frame written now is heard (what the device still holds), `frames` how many this
    /// callback writes. Returns how long the device had been dry, if it ran dry since the
    /// previous callback.
    #[inline]
    pub fn check(&mut self, now: Instant, latency: Duration, frames: usize) -> Option<Duration> {
        let missed = self
            .played_out_at
            .and_then(|end| now.checked_duration_since(end))
            .filter(|late| *late > self.tolerance);
        let written = Duration::from_secs_f64(frames as f64 / self.rate.max(1.0));
        self.played_out_at = Some(now + latency + written);
        missed
    }

    /// Forgets the previous callback (after a pause the device may drain on purpose).
    pub fn reset(&mut self) {
        self.played_out_at = None;
    }
}

/// Counts a device error reported by cpal's error callback; true if it is an xrun.
#[inline]
pub fn count_device_error(status: &SharedStatus, xrun: bool) -> bool {
    if xrun {
        status.device_xruns.fetch_add(1, Ordering::Relaxed);
        status.xrun_pending.store(true, Ordering::Release);
    } else {
        status.device_errors.fetch_add(1, Ordering::Relaxed);
    }
    xrun
}

/// The per-callback part of the accounting, owned by the device callback.
#[derive(Debug, Clone)]
pub struct CallbackWatch {
    deadline: DeadlineWatch,
    /// Frames still to write after a dropout before a miss counts as a new dropout: the
    /// device's start threshold, then [`DROPOUT_MERGE`] of sound.
    refilling: usize,
    /// [`DROPOUT_MERGE`] in frames.
    merge_frames: usize,
}

impl CallbackWatch {
    /// A watch for a device at `rate`.
    pub fn new(rate: f64) -> Self {
        Self {
            deadline: DeadlineWatch::new(rate, DEADLINE_TOLERANCE),
            refilling: 0,
            merge_frames: (DROPOUT_MERGE.as_secs_f64() * rate).ceil() as usize,
        }
    }

    /// At the start of a device callback: counts a dropout if the device reported an xrun since
    /// the previous callback or this callback missed its deadline (once for both). `playing`:
    /// the callback was producing sound before (a paused or not yet started stream may drain).
    #[inline]
    pub fn begin(
        &mut self,
        status: &SharedStatus,
        now: Instant,
        latency: Duration,
        frames: usize,
        playing: bool,
    ) {
        let xrun = status.xrun_pending.swap(false, Ordering::Acquire);
        let late = self.deadline.check(now, latency, frames);
        if !playing {
            return;
        }
        if let Some(d) = late {
            status.late_callbacks.fetch_add(1, Ordering::Relaxed);
            status
                .late_micros
                .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        }
        if (xrun || late.is_some()) && self.refilling == 0 {
            status.underruns.fetch_add(1, Ordering::Relaxed);
        }
        if xrun || late.is_some() {
            // The device starts again once it holds two periods (cpal's start threshold), and
            // a miss within DROPOUT_MERGE of sound after that is heard as the same stutter.
            self.refilling = 2 * frames + self.merge_frames;
        }
        self.refilling = self.refilling.saturating_sub(frames);
    }
}

/// The underrun counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnderrunCounts {
    /// Dropouts heard, from every source (each counted once).
    pub total: u64,
    /// Xruns the device reported.
    pub device_xruns: u64,
    /// Callbacks that missed their deadline.
    pub late_callbacks: u64,
    /// Times the stems were not decoded in time.
    pub starved: u64,
    /// Other device errors.
    pub device_errors: u64,
}

impl UnderrunCounts {
    /// Reads the counters.
    pub fn read(status: &SharedStatus) -> Self {
        let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Self {
            total: r(&status.underruns),
            device_xruns: r(&status.device_xruns),
            late_callbacks: r(&status.late_callbacks),
            starved: r(&status.starved),
            device_errors: r(&status.device_errors),
        }
    }
}

impl fmt::Display for UnderrunCounts {
    /// `3` when there were none of any kind, else `3 (device 2, late 3, stems 0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.total)?;
        if self.device_xruns + self.late_callbacks + self.starved > 0 {
            write!(
                f,
                " (device {}, late {}, stems {})",
                self.device_xruns, self.late_callbacks, self.starved
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 48_000.0;

    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    #[test]
    fn callbacks_on_time_miss_nothing_and_a_late_one_is_measured() {
        // 256-frame periods (5.33 ms), the device holding one period when each callback starts.
        let mut w = DeadlineWatch::new(RATE, DEADLINE_TOLERANCE);
        let t0 = Instant::now();
        let period = 256.0 / RATE * 1000.0;
        let mut t = t0;
        for _ in 0..100 {
            assert_eq!(w.check(t, ms(period), 256), None);
            t += ms(period);
        }
        // The next callback comes 20 ms after it was due (t). The previous one, at t - period,
        // left the device two periods: played out at t + period, so it was dry for 20 - period.
        let late = t + ms(20.0);
        let dry = w.check(late, ms(period), 256).expect("a missed deadline");
        let expected = 20.0 - period;
        assert!(
            (dry.as_secs_f64() * 1000.0 - expected).abs() < 0.01,
            "{dry:?} vs {expected} ms"
        );
    }

    #[test]
    fn jitter_within_the_buffer_is_no_miss() {
        let mut w = DeadlineWatch::new(RATE, DEADLINE_TOLERANCE);
        let mut t = Instant::now();
        // The device holds 20 ms; callbacks come every 5.33 ms, one of them 12 ms late.
        assert_eq!(w.check(t, ms(20.0), 256), None);
        t += ms(5.33 + 12.0);
        assert_eq!(w.check(t, ms(20.0 - 12.0), 256), None);
        // A gap longer than what was queued (8 + 5.33 ms) plus the tolerance is a miss.
        t += ms(8.0 + 5.33 + 2.0);
        assert!(w.check(t, ms(0.0), 256).is_some());
        w.reset();
        t += ms(500.0);
        assert_eq!(w.check(t, ms(10.0), 256), None, "after a reset");
    }

    #[test]
    fn an_xrun_and_a_late_callback_for_the_same_dropout_count_once() {
        let status = SharedStatus::default();
        let mut cb = CallbackWatch::new(RATE);
        let mut t = Instant::now();
        cb.begin(&status, t, ms(10.0), 256, true);
        assert!(count_device_error(&status, true));
        t += ms(40.0);
        cb.begin(&status, t, ms(0.0), 256, true);
        let c = UnderrunCounts::read(&status);
        assert_eq!(
            (c.total, c.device_xruns, c.late_callbacks),
            (1, 1, 1),
            "{c}"
        );
        // Playing again (two periods to refill, then DROPOUT_MERGE of sound)...
        for _ in 0..12 {
            t += ms(5.0);
            cb.begin(&status, t, ms(5.0), 256, true);
        }
        // ...an xrun the clock did not see still counts; an error that is no xrun does not.
        assert!(count_device_error(&status, true));
        assert!(!count_device_error(&status, false));
        t += ms(5.0);
        cb.begin(&status, t, ms(10.0), 256, true);
        let c = UnderrunCounts::read(&status);
        assert_eq!((c.total, c.device_xruns, c.device_errors), (2, 2, 1), "{c}");
        assert_eq!(c.to_string(), "2 (device 2, late 1, stems 0)");
        // A miss while the device refills after a dropout is the same dropout; once it has
        // played again, the next miss is a new one.
        for _ in 0..12 {
            t += ms(5.0);
            cb.begin(&status, t, ms(5.0), 256, true);
        }
        t += ms(100.0);
        cb.begin(&status, t, ms(0.0), 256, true); // dry: a new dropout, refilling
        t += ms(30.0);
        cb.begin(&status, t, ms(0.0), 256, true); // dry again before two periods went in
        let c = UnderrunCounts::read(&status);
        assert_eq!((c.total, c.late_callbacks), (3, 3), "{c}");
        // Refilled, then 6 periods (32 ms) of sound: a miss now is heard with the last one.
        for _ in 0..8 {
            t += ms(5.33);
            cb.begin(&status, t, ms(5.0), 256, true);
        }
        t += ms(30.0);
        cb.begin(&status, t, ms(0.0), 256, true);
        let c = UnderrunCounts::read(&status);
        assert_eq!((c.total, c.late_callbacks), (3, 4), "{c}");
        // Refilled and 64 ms of sound: the next miss is a new dropout.
        for _ in 0..14 {
            t += ms(5.33);
            cb.begin(&status, t, ms(5.0), 256, true);
        }
        t += ms(100.0);
        cb.begin(&status, t, ms(0.0), 256, true);
        assert_eq!(UnderrunCounts::read(&status).total, 4);
        // While not playing (paused, not started), nothing counts.
        t += ms(400.0);
        cb.begin(&status, t, ms(10.0), 256, false);
        assert_eq!(UnderrunCounts::read(&status).total, 4);
    }
}
