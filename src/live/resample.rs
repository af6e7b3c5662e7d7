//! Sample-rate conversion between the session and a device that cannot run at the session rate.
//!
//! Only used when the device refuses the session rate (most sound servers accept it, and then
//! nothing is resampled). Wraps the [`AudioSide`]: renders fixed chunks at the session rate,
//! converts them with rubato's sinc resampler into a FIFO at the device rate, and serves the
//! device's callbacks from the FIFO.
//!
//! # Realtime safety
//! [`Resampled::render`] runs in the device callback: every buffer is allocated in
//! [`Resampled::new`], and rubato's `process_into_buffer` works in preallocated buffers.

use super::audio::{AudioSide, MONITOR_CHANNELS};
use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Async, FixedAsync, Resampler, SincInterpolationParameters};
use std::time::Duration;

/// Frames rendered at the session rate per resampler call.
const CHUNK: usize = 256;

/// An [`AudioSide`] heard through a sample-rate converter.
pub struct Resampled {
    inner: AudioSide,
    resampler: Async<f32>,
    interleaved: Vec<f32>,
    planar_in: Vec<Vec<f32>>,
    planar_out: Vec<Vec<f32>>,
    fifo: Vec<f32>,
    fifo_len: usize,
}

impl Resampled {
    /// Converts `inner` from `from` Hz (the session) to `to` Hz (the device).
    pub fn new(inner: AudioSide, from: u32, to: u32) -> Result<Resampled, String> {
        let ratio = f64::from(to) / f64::from(from);
        let resampler = Async::<f32>::new_sinc(
            ratio,
            1.0,
            &SincInterpolationParameters::default(),
            CHUNK,
            MONITOR_CHANNELS,
            FixedAsync::Input,
        )
        .map_err(|e| e.to_string())?;
        let out_max = resampler.output_frames_max();
        Ok(Resampled {
            inner,
            interleaved: vec![0.0; CHUNK * MONITOR_CHANNELS],
            planar_in: vec![vec![0.0; CHUNK]; MONITOR_CHANNELS],
            planar_out: vec![vec![0.0; out_max]; MONITOR_CHANNELS],
            fifo: vec![0.0; (out_max + 16_384) * MONITOR_CHANNELS],
            fifo_len: 0,
            resampler,
        })
    }

    /// Fills `out` (interleaved, `channels` per frame) at the device rate.
    ///
    /// # Realtime safety
    /// Runs under `assert_no_alloc`; never blocks.
    pub fn render(&mut self, out: &mut [f32], channels: usize, device_latency: Duration) {
        assert_no_alloc::assert_no_alloc(|| self.render_inner(out, channels, device_latency))
    }

    fn render_inner(&mut self, out: &mut [f32], channels: usize, device_latency: Duration) {
        let channels = channels.max(1);
        let mut written = 0;
        let frames = out.len() / channels;
        while written < frames {
            if self.fifo_len == 0 {
                self.refill(device_latency);
                if self.fifo_len == 0 {
                    out[written * channels..].fill(0.0);
                    return;
                }
            }
            let n = (frames - written).min(self.fifo_len);
            for k in 0..n {
                let (l, r) = (
                    self.fifo[k * MONITOR_CHANNELS],
                    self.fifo[k * MONITOR_CHANNELS + 1],
                );
                let frame = &mut out[(written + k) * channels..(written + k + 1) * channels];
                if channels == 1 {
                    frame[0] = 0.5 * (l + r);
                } else {
                    frame[0] = l;
                    frame[1] = r;
                    frame[2..].fill(0.0);
                }
            }
            self.fifo
                .copy_within(n * MONITOR_CHANNELS..self.fifo_len * MONITOR_CHANNELS, 0);
            self.fifo_len -= n;
            written += n;
        }
    }

    /// Renders one chunk at the session rate and appends its conversion to the FIFO.
    fn refill(&mut self, device_latency: Duration) {
        self.inner
            .render(&mut self.interleaved, MONITOR_CHANNELS, device_latency);
        for k in 0..CHUNK {
            for c in 0..MONITOR_CHANNELS {
                self.planar_in[c][k] = self.interleaved[k * MONITOR_CHANNELS + c];
            }
        }
        let out_max = self.planar_out[0].len();
        let (Ok(input), Ok(mut output)) = (
            SequentialSliceOfVecs::new(&self.planar_in, MONITOR_CHANNELS, CHUNK),
            SequentialSliceOfVecs::new_mut(&mut self.planar_out, MONITOR_CHANNELS, out_max),
        ) else {
            return;
        };
        let Ok((_, produced)) = self
            .resampler
            .process_into_buffer(&input, &mut output, None)
        else {
            return;
        };
        let room = self.fifo.len() / MONITOR_CHANNELS - self.fifo_len;
        let produced = produced.min(room);
        for k in 0..produced {
            for c in 0..MONITOR_CHANNELS {
                self.fifo[(self.fifo_len + k) * MONITOR_CHANNELS + c] = self.planar_out[c][k];
            }
        }
        self.fifo_len += produced;
    }
}
