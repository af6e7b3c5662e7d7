//! Live meters: loudness and true peak of what the engine plays, on their own thread.
//!
//! The callback pushes a copy of every master block (interleaved stereo `f32`) into an rtrb ring
//! and drops the block, counting it, when the ring is full: the meters may lag, the audio never
//! waits for them. This thread drains the ring every 20 ms into an EBU R128 meter (the
//! `ebur128` crate for now; the project's own meter module may replace it) and publishes
//! momentary, short-term and integrated loudness and the true peak. The integrated value keeps
//! accumulating across reloads; each reload leaves a marker with the integrated value at that
//! moment. Per-stem levels come from the callback itself (see `SharedStatus`), and limiter gain
//! reduction from the processors' telemetry (see `Reloader::gain_reduction`).
//!
//! Never runs on the audio thread.

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use ebur128::{EbuR128, Mode};
use rtrb::{Consumer, RingBuffer};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the meters read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeterReadings {
    /// Momentary loudness (400 ms), LUFS.
    pub momentary_lufs: f64,
    /// Short-term loudness (3 s), LUFS.
    pub short_term_lufs: f64,
    /// Integrated loudness since playback started, LUFS.
    pub integrated_lufs: f64,
    /// Largest true peak since playback started, dBTP.
    pub true_peak_dbtp: f64,
    /// True peak of the last 20 ms or so, dBTP.
    pub recent_true_peak_dbtp: f64,
    /// Frames measured.
    pub frames: u64,
    /// One per reload: (label, integrated loudness until then).
    pub markers: Vec<(String, f64)>,
}

/// The meter thread and what it publishes. Dropping it stops the thread.
pub struct Meters {
    readings: Arc<Mutex<MeterReadings>>,
    markers: Option<Sender<String>>,
    thread: Option<JoinHandle<()>>,
}

/// The ring the callback writes into: about half a second of stereo `f32`.
pub fn ring(rate: u32) -> (rtrb::Producer<f32>, Consumer<f32>) {
    RingBuffer::new(rate as usize + 8192)
}

impl Meters {
    /// Starts the meter thread on the ring's consumer.
    pub fn spawn(samples: Consumer<f32>, rate: u32) -> Meters {
        let readings: Arc<Mutex<MeterReadings>> = Arc::default();
        let (tx, rx) = crossbeam::channel::unbounded();
        let r = readings.clone();
        let thread = std::thread::Builder::new()
            .name("stemgraph-meters".into())
            .spawn(move || run(samples, rate, r, rx))
            .ok();
        Meters {
            readings,
            markers: Some(tx),
            thread,
        }
    }

    /// The latest readings.
    pub fn readings(&self) -> MeterReadings {
        self.readings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Leaves a marker (a reload) with the integrated loudness so far.
    pub fn mark(&self, label: String) {
        if let Some(tx) = &self.markers {
            let _ = tx.send(label);
        }
    }
}

impl Drop for Meters {
    fn drop(&mut self) {
        self.markers.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn db(linear: f64) -> f64 {
    if linear > 0.0 {
        20.0 * linear.log10()
    } else {
        f64::NEG_INFINITY
    }
}

fn run(
    mut samples: Consumer<f32>,
    rate: u32,
    readings: Arc<Mutex<MeterReadings>>,
    markers: Receiver<String>,
) {
    let Ok(mut meter) = EbuR128::new(2, rate, Mode::M | Mode::S | Mode::I | Mode::TRUE_PEAK) else {
        return;
    };
    let mut frames = 0u64;
    let mut peak_max = 0.0f64;
    loop {
        let n = samples.slots() & !1;
        let mut recent = 0.0f64;
        if n > 0 {
            if let Ok(chunk) = samples.read_chunk(n) {
                let (a, b) = chunk.as_slices();
                for part in [a, b] {
                    if !part.is_empty() && meter.add_frames_f32(part).is_ok() {
                        for c in 0..2 {
                            recent = recent.max(meter.prev_true_peak(c).unwrap_or(0.0));
                        }
                    }
                }
                chunk.commit_all();
                frames += (n / 2) as u64;
            }
        }
        peak_max = peak_max.max(recent);
        let integrated = meter.loudness_global().unwrap_or(f64::NEG_INFINITY);
        {
            let mut r = readings.lock().unwrap_or_else(|e| e.into_inner());
            r.momentary_lufs = meter.loudness_momentary().unwrap_or(f64::NEG_INFINITY);
            r.short_term_lufs = meter.loudness_shortterm().unwrap_or(f64::NEG_INFINITY);
            r.integrated_lufs = integrated;
            r.true_peak_dbtp = db(peak_max);
            if n > 0 {
                r.recent_true_peak_dbtp = db(recent);
            }
            r.frames = frames;
        }
        match markers.recv_timeout(Duration::from_millis(20)) {
            Ok(label) => readings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .markers
                .push((label, integrated)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
