//! The audio device (cpal): listing devices, choosing a configuration, running the stream.
//!
//! The stream is opened **at the session rate explicitly** (a device's default configuration may
//! be another rate: PulseAudio reports 44.1 kHz and runs 48 kHz fine), in `f32`, with a fixed
//! buffer size. Only when the device cannot run at the session rate is the signal resampled
//! ([`super::resample`]). The data callback hands the buffer to [`AudioSide::render`] under
//! `assert_no_alloc`, with the device's latency from the callback's timestamps.
//!
//! Around each data callback it does the device's share of the underrun accounting
//! ([`super::xruns`]: the missed-deadline check, xruns from the error callback), and on the first
//! one asks for real-time priority ([`super::realtime`]). The error callback only counts and
//! queues (lock-free); [`Output::take_errors`] reads the queue on the control side.
//!
//! Owns the cpal stream; never calls into the control side from the callback.

use super::audio::AudioSide;
use super::resample::Resampled;
use super::shared::RT_NOT_ASKED;
use super::xruns::{count_device_error, CallbackWatch};
use super::LiveError;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, SampleFormat, StreamConfig, SupportedBufferSize};
use rtrb::{Consumer, RingBuffer};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Frames per callback when `--buffer-frames` is not given: 1024 frames (21.3 ms at 48 kHz; the
/// device holds two periods). On a 2-core machine with a busy loop on each core, 256 and 512
/// dropped out without real-time priority and 1024 did not in our measurement; with real-time
/// priority even 256 held (docs/PERFORMANCE.md, "Live playback under load").
pub const DEFAULT_BUFFER_FRAMES: u32 = 1024;

/// Device errors queued between two [`Output::take_errors`] (more are counted, not kept).
const ERROR_QUEUE: usize = 256;

/// What was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputInfo {
    /// The device's name.
    pub device: String,
    /// The device rate.
    pub sample_rate: u32,
    /// Device channels.
    pub channels: u16,
    /// Frames per callback asked for (`None`: the device's default).
    pub buffer_frames: Option<u32>,
    /// The session rate, when it had to be converted to the device rate.
    pub resampled_from: Option<u32>,
}

/// A running output stream. Dropping it stops playback.
pub struct Output {
    _stream: cpal::Stream,
    /// What was opened.
    pub info: OutputInfo,
    errors: Consumer<cpal::Error>,
}

impl Output {
    /// Stream errors other than xruns reported since the last call (a lost device, failing
    /// calls), repeats counted (PulseAudio's ALSA plugin reports many while its stream
    /// reconnects after an xrun). Xruns are counted as underruns instead
    /// ([`super::xruns::UnderrunCounts`]).
    pub fn take_errors(&mut self) -> Vec<String> {
        let mut out: Vec<(String, usize)> = Vec::new();
        while let Ok(e) = self.errors.pop() {
            let e = e.to_string();
            match out.last_mut() {
                Some((last, n)) if *last == e => *n += 1,
                _ => out.push((e, 1)),
            }
        }
        out.into_iter()
            .map(|(e, n)| if n > 1 { format!("{e} (×{n})") } else { e })
            .collect()
    }
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .unwrap_or_else(|_| d.to_string())
}

/// One line per output device of the default host: name, id, default configuration.
pub fn list_devices() -> Result<Vec<String>, LiveError> {
    let host = cpal::default_host();
    let default = host.default_output_device().and_then(|d| d.id().ok());
    let devices = host
        .output_devices()
        .map_err(|e| LiveError::Device(e.to_string()))?;
    let mut lines = Vec::new();
    for d in devices {
        let id = d.id().map(|i| i.to_string()).unwrap_or_default();
        let mark = if d.id().ok() == default { "* " } else { "  " };
        let config = d
            .default_output_config()
            .map(|c| {
                format!(
                    "default {} Hz, {} ch, {:?}",
                    c.sample_rate(),
                    c.channels(),
                    c.sample_format()
                )
            })
            .unwrap_or_else(|_| "no default configuration".into());
        lines.push(format!("{mark}{} [{id}] ({config})", device_name(&d)));
    }
    Ok(lines)
}

/// The device called `name` (its name, its id, or a unique part of its name), or the default.
fn find_device(name: Option<&str>) -> Result<cpal::Device, LiveError> {
    let host = cpal::default_host();
    let Some(name) = name else {
        return host
            .default_output_device()
            .ok_or_else(|| LiveError::Device("no default output device".into()));
    };
    let devices: Vec<cpal::Device> = host
        .output_devices()
        .map_err(|e| LiveError::Device(e.to_string()))?
        .collect();
    let exact = devices.iter().find(|d| {
        device_name(d) == name || d.id().map(|i| i.to_string()).ok().as_deref() == Some(name)
    });
    if let Some(d) = exact {
        return Ok(d.clone());
    }
    let lower = name.to_lowercase();
    let partial: Vec<&cpal::Device> = devices
        .iter()
        .filter(|d| device_name(d).to_lowercase().contains(&lower))
        .collect();
    match partial.as_slice() {
        [d] => Ok((*d).clone()),
        [] => Err(LiveError::Device(format!(
            "no output device `{name}` (see `stemgraph play --list-devices`)"
        ))),
        many => Err(LiveError::Device(format!(
            "`{name}` matches several devices: {}",
            many.iter()
                .map(|d| device_name(d))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Picks `f32` at `rate` with 2 channels if the device can (else any channel count at `rate`,
/// else its default rate, to be resampled), and the buffer size.
fn choose(
    device: &cpal::Device,
    rate: u32,
    buffer_frames: u32,
) -> Result<(StreamConfig, Option<u32>), LiveError> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = device
        .supported_output_configs()
        .map_err(|e| LiveError::Device(e.to_string()))?
        .filter(|r| r.sample_format() == SampleFormat::F32)
        .collect();
    if ranges.is_empty() {
        return Err(LiveError::Device(format!(
            "{} offers no 32-bit float output",
            device_name(device)
        )));
    }
    let at_rate = |r: &&cpal::SupportedStreamConfigRange| {
        r.min_sample_rate() <= rate && rate <= r.max_sample_rate()
    };
    let pick = ranges
        .iter()
        .filter(at_rate)
        .min_by_key(|r| (r.channels() != 2, r.channels()));
    let (range, device_rate) = match pick {
        Some(r) => (r, rate),
        None => {
            let default = device
                .default_output_config()
                .map(|c| c.sample_rate())
                .unwrap_or(48_000);
            let r = ranges
                .iter()
                .filter(|r| r.min_sample_rate() <= default && default <= r.max_sample_rate())
                .min_by_key(|r| (r.channels() != 2, r.channels()))
                .unwrap_or(&ranges[0]);
            (r, default.clamp(r.min_sample_rate(), r.max_sample_rate()))
        }
    };
    let buffer_size = match range.buffer_size() {
        SupportedBufferSize::Range { min, max } => {
            BufferSize::Fixed(buffer_frames.clamp(*min, (*max).max(*min)))
        }
        SupportedBufferSize::Unknown => BufferSize::Fixed(buffer_frames),
    };
    Ok((
        StreamConfig {
            channels: range.channels(),
            sample_rate: device_rate,
            buffer_size,
        },
        (device_rate != rate).then_some(device_rate),
    ))
}

enum Source {
    Direct(Box<AudioSide>),
    Resampled(Box<Resampled>),
}

/// What device to open, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRequest<'a> {
    /// The device (name, id, or a unique part of the name); the default if `None`.
    pub name: Option<&'a str>,
    /// The session rate.
    pub rate: u32,
    /// Frames per callback.
    pub buffer_frames: u32,
    /// Ask for real-time priority for the audio thread.
    pub realtime: bool,
}

/// Opens the device and starts playing `audio`.
pub fn open(request: &DeviceRequest<'_>, audio: AudioSide) -> Result<Output, LiveError> {
    let rate = request.rate;
    let device = find_device(request.name)?;
    let (config, device_rate) = choose(&device, rate, request.buffer_frames)?;
    let status = audio.status().clone();
    let mut source = match device_rate {
        None => Source::Direct(Box::new(audio)),
        Some(to) => Source::Resampled(Box::new(
            Resampled::new(audio, rate, to).map_err(LiveError::Device)?,
        )),
    };
    let channels = usize::from(config.channels);
    let (mut errors_tx, errors) = RingBuffer::<cpal::Error>::new(ERROR_QUEUE);
    let err_status = status.clone();
    let mut watch = CallbackWatch::new(f64::from(config.sample_rate));
    let mut asked = false;
    let realtime = request.realtime;
    let info = OutputInfo {
        device: device_name(&device),
        sample_rate: config.sample_rate,
        channels: config.channels,
        buffer_frames: match config.buffer_size {
            BufferSize::Fixed(n) => Some(n),
            BufferSize::Default => None,
        },
        resampled_from: device_rate.map(|_| rate),
    };
    let stream = device
        .build_output_stream(
            config,
            move |data: &mut [f32], cb: &cpal::OutputCallbackInfo| {
                let now = Instant::now();
                if !asked {
                    asked = true;
                    let rt = if realtime {
                        super::realtime::promote_current_thread().unwrap_or_else(|e| -e.max(1))
                    } else {
                        RT_NOT_ASKED
                    };
                    status.realtime.store(rt, Ordering::Relaxed);
                }
                let ts = cb.timestamp();
                let latency = ts.playback.duration_since(ts.callback);
                let playing = status.running.load(Ordering::Relaxed);
                watch.begin(&status, now, latency, data.len() / channels.max(1), playing);
                match &mut source {
                    Source::Direct(a) => a.render(data, channels, latency),
                    Source::Resampled(r) => r.render(data, channels, latency),
                }
            },
            move |e: cpal::Error| {
                // On the device's thread (between data callbacks): count, queue, never block.
                if !count_device_error(&err_status, e.kind() == cpal::ErrorKind::Xrun) {
                    let _ = errors_tx.push(e);
                }
            },
            None,
        )
        .map_err(|e| LiveError::Device(format!("{}: {e}", info.device)))?;
    stream
        .play()
        .map_err(|e| LiveError::Device(format!("{}: {e}", info.device)))?;
    if request.realtime {
        super::realtime::promote_client_threads();
    }
    Ok(Output {
        _stream: stream,
        info,
        errors,
    })
}
