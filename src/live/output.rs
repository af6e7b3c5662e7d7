//! The audio device (cpal): listing devices, choosing a configuration, running the stream.
//!
//! The stream is opened **at the session rate explicitly** (a device's default configuration may
//! be another rate: PulseAudio reports 44.1 kHz and runs 48 kHz fine), in `f32`, with a fixed
//! buffer size. Only when the device cannot run at the session rate is the signal resampled
//! ([`super::resample`]). The data callback hands the buffer to [`AudioSide::render`] under
//! `assert_no_alloc`, with the device's latency from the callback's timestamps.
//!
//! Owns the cpal stream; never calls into the control side from the callback.

use super::audio::AudioSide;
use super::resample::Resampled;
use super::LiveError;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, SampleFormat, StreamConfig, SupportedBufferSize};
use std::sync::{Arc, Mutex};

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
    errors: Arc<Mutex<Vec<String>>>,
}

impl Output {
    /// Stream errors reported since the last call (xruns, a lost device), repeats counted
    /// (PulseAudio's ALSA plugin reports many while its stream connects).
    pub fn take_errors(&self) -> Vec<String> {
        let errors = std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out: Vec<(String, usize)> = Vec::new();
        for e in errors {
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

/// Opens the device (`name`, or the default) at the session `rate` with `buffer_frames` per
/// callback and starts playing `audio`.
pub fn open(
    name: Option<&str>,
    rate: u32,
    buffer_frames: u32,
    audio: AudioSide,
) -> Result<Output, LiveError> {
    let device = find_device(name)?;
    let (config, device_rate) = choose(&device, rate, buffer_frames)?;
    let mut source = match device_rate {
        None => Source::Direct(Box::new(audio)),
        Some(to) => Source::Resampled(Box::new(
            Resampled::new(audio, rate, to).map_err(LiveError::Device)?,
        )),
    };
    let channels = usize::from(config.channels);
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let errs = errors.clone();
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
                let ts = cb.timestamp();
                let latency = ts.playback.duration_since(ts.callback);
                match &mut source {
                    Source::Direct(a) => a.render(data, channels, latency),
                    Source::Resampled(r) => r.render(data, channels, latency),
                }
            },
            move |e| {
                // Not the data callback: reporting may allocate.
                if let Ok(mut v) = errs.lock() {
                    v.push(e.to_string());
                }
            },
            None,
        )
        .map_err(|e| LiveError::Device(format!("{}: {e}", info.device)))?;
    stream
        .play()
        .map_err(|e| LiveError::Device(format!("{}: {e}", info.device)))?;
    Ok(Output {
        _stream: stream,
        info,
        errors,
    })
}
