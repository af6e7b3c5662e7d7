//! The codec-safe true-peak solve of a lossy deliverable (MP3, Ogg Opus).
//!
//! A lossy encoder raises peaks: it drops and requantizes parts of the spectrum, and what it
//! gives back is not the waveform it was fed. So a master limited to −1 dBTP decodes with peaks
//! over −1 dBTP. The deliverable pipeline writes the lossy deliverable's float PCM (converted,
//! safety-limited) to a temporary file first; this stage then encodes it, decodes what was
//! encoded (symphonia for MP3, libopus for Opus, through [`crate::io::decode::Decoder`]),
//! measures the decoded true peak with the project's meter (16× oversampling, under-reading by
//! at most 0.034 dB) window by window ([`WINDOW`] frames) and the decoded integrated loudness,
//! and, while the peak is over the ceiling, changes the encoder's input and encodes again:
//!
//! - `codec_safe = "limit"` (the default): a gain envelope lowers only the windows whose decoded
//!   peak overshot, by the overshoot over the aim ([`AIM_MARGIN_DB`] under the ceiling; a window
//!   lowered again aims twice as far under, as the codec's peaks there move by more than its
//!   input), spread over the two windows either side (about ±46 ms at 44.1 kHz) and ramped
//!   linearly between window centres, accumulated over the passes. A make-up gain, set once from
//!   the plain encode, gives back what the codec itself took off the loudness (MP3 at low bit
//!   rates drops the top octave), its peaks counted in the first retry's reductions. Where the
//!   codec's peaks move by a window's reduction, the loudness barely moves (MP3 at 320 kbit/s:
//!   a few hundredths of a LU). If the envelope has not settled the peaks by the last encode, the
//!   last encode also turns the whole file down by what is left (noisy codecs at low rates:
//!   the report's `decoded_lufs` says what it cost).
//! - `codec_safe = "gain"`: the whole file is turned down by the overshoot (the loudness drops
//!   by as much).
//! - `codec_safe = "off"`: one encode, reported as measured (a diagnostic; the render warns when
//!   it is over the ceiling).
//!
//! A file is accepted when its decoded true peak is at most `ceiling −` [`ACCEPT_MARGIN_DB`]
//! (covering the meter's under-read and the difference to other meters, such as ffmpeg's). At
//! most [`MAX_ENCODES`] encodes (`max_encodes` lowers the bound); a ceiling still not met then is an error naming the figure (no
//! file over its ceiling is ever left behind). Memory stays flat in the song's length but for
//! the envelope (two numbers per window: 60 KB for ten minutes): every pass streams the PCM from
//! its file, the encoder writes as it goes, and the measurement decodes block by block.

use super::RenderError;
use crate::analysis::meters::{LoudnessMeter, TruePeakMeter};
use crate::dsp::AudioBuffer;
use crate::io::decode::Decoder;
use crate::io::lossy::{CodecSafe, EncodedFile, LossyOutput, LossySettings};
use crate::session::FileFormat;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Most encodes a deliverable gets (the first plus three retries); `max_encodes` in the recipe
/// may lower it.
pub const MAX_ENCODES: u32 = 4;
/// A decoded file is accepted when its true peak is this far under the ceiling, dB.
pub const ACCEPT_MARGIN_DB: f64 = 0.05;
/// Each retry aims this far under the ceiling, dB.
pub const AIM_MARGIN_DB: f64 = 0.15;
/// The oversampling of the decoded file's true-peak measurement.
pub const MEASURE_FACTOR: usize = 16;
/// Frames per window of the peak measurement and of the gain envelope.
pub const WINDOW: usize = 1024;
/// Windows either side a window's reduction is spread to (covers the encoder's delay, which
/// the MP3 decode does not remove, and the codec's frame overlap).
const SPREAD: usize = 2;
/// Largest make-up gain, dB.
const MAX_MAKEUP_DB: f64 = 2.0;

/// What the solve did, per lossy deliverable (the report's `lossy` object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossyOutcome {
    /// `mp3` or `opus`.
    pub codec: String,
    /// The encoder and its version.
    pub encoder: String,
    /// Bit rate, kbit/s.
    pub bitrate_kbps: u32,
    /// `limit`, `gain` or `off`.
    pub codec_safe: String,
    /// True peak of the decoded file as delivered, dBTP (16× oversampling).
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub codec_true_peak_dbtp: f64,
    /// True peak of the first encode's decoded file (the PCM encoded as it is), dBTP: what a
    /// plain encode gives.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub plain_codec_true_peak_dbtp: f64,
    /// Gain applied to the whole PCM before the encoder, dB (`limit`: the make-up; `gain`: the
    /// turn-down).
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub pre_encode_gain_db: f64,
    /// Largest reduction of the envelope before the encoder (`limit`), dB.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub pre_encode_max_reduction_db: f64,
    /// Share of the song the envelope lowered (`limit`), percent.
    #[serde(serialize_with = "crate::analysis::json::ratio")]
    pub pre_encode_reduced_pct: f64,
    /// Encodes made (1 when the first met the ceiling).
    pub encodes: u32,
    /// Integrated loudness of the PCM (as it was first fed to the encoder), LUFS.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub pcm_lufs: f64,
    /// Integrated loudness of the decoded file of the first encode, LUFS.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub plain_decoded_lufs: f64,
    /// Integrated loudness of the decoded file as delivered, LUFS.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub decoded_lufs: f64,
}

/// What the encoder is fed on one pass: the PCM times `gain_db`, less the envelope.
#[derive(Debug, Clone, Default)]
struct Feed {
    /// Whole-file gain, dB.
    gain_db: f64,
    /// Accumulated reduction per window, dB (≥ 0), before spreading.
    reduction: Vec<f32>,
    /// Per window: how many passes it was lowered in (its aim moves further down each time:
    /// the codec's peaks there move by more than its input did).
    strikes: Vec<u8>,
}

impl Feed {
    /// The reduction each window gets, spread over its neighbours.
    fn spread(&self) -> Vec<f32> {
        let n = self.reduction.len();
        (0..n)
            .map(|w| {
                let lo = w.saturating_sub(SPREAD);
                let hi = (w + SPREAD + 1).min(n);
                self.reduction[lo..hi].iter().copied().fold(0.0, f32::max)
            })
            .collect()
    }
}

/// What a decode measured.
struct Measured {
    true_peak_dbtp: f64,
    lufs: f64,
    /// True peak per window, dBTP.
    windows: Vec<f32>,
}

/// Reads up to one block of `dec` into `buf`; the frames read.
fn read_block(dec: &mut Decoder, buf: &mut AudioBuffer, max: usize) -> Result<usize, RenderError> {
    let mut view = buf.view_mut(max);
    Ok(if view.channels() == 2 {
        let (l, r) = view.stereo_mut();
        dec.read(&mut [l, r], max)?
    } else {
        dec.read(&mut [view.channel_mut(0)], max)?
    })
}

/// Decodes `path` and measures its true peak (16×, overall and per window) and integrated
/// loudness.
fn measure(path: &Path) -> Result<Measured, RenderError> {
    let mut dec = Decoder::open(path)?;
    let info = dec.info().clone();
    let rate = f64::from(info.sample_rate);
    let mut tp = TruePeakMeter::new(rate, info.channels, MEASURE_FACTOR);
    let mut lm = LoudnessMeter::new(rate, info.channels);
    let mut buf = AudioBuffer::new(info.channels, WINDOW);
    let mut windows = Vec::new();
    loop {
        let n = read_block(&mut dec, &mut buf, WINDOW)?;
        if n == 0 {
            break;
        }
        let v = buf.view(n);
        let planes: Vec<&[f64]> = (0..info.channels).map(|c| v.channel(c)).collect();
        tp.push(&planes);
        lm.push(&planes);
        windows.push(crate::analysis::meters::lin_to_db(tp.take_interval_peak()) as f32);
    }
    tp.finish();
    if let Some(last) = windows.last_mut() {
        *last = last.max(crate::analysis::meters::lin_to_db(tp.take_interval_peak()) as f32);
    }
    Ok(Measured {
        true_peak_dbtp: tp.true_peak_dbtp(),
        lufs: lm.integrated_lufs(),
        windows,
    })
}

/// One lossy deliverable's encodes: the PCM file, where the result goes, how it is encoded.
struct Job<'a> {
    pcm: &'a Path,
    dest: &'a Path,
    format: FileFormat,
    settings: &'a LossySettings,
    tags: &'a [(String, String)],
    protected: &'a [PathBuf],
}

impl Job<'_> {
    /// One encode of the PCM file through `feed`; returns the encoded file (not yet in place)
    /// and, when `meter` asks for it, the PCM's integrated loudness.
    fn encode(&self, feed: &Feed, meter: bool) -> Result<(EncodedFile, Option<f64>), RenderError> {
        let mut dec = Decoder::open(self.pcm)?;
        let info = dec.info().clone();
        let channels = info.channels;
        let mut out = LossyOutput::create(
            self.format,
            self.dest,
            info.sample_rate,
            channels,
            self.settings,
            self.tags,
            self.protected,
        )?;
        let envelope = feed.spread();
        let mut loud = meter.then(|| LoudnessMeter::new(f64::from(info.sample_rate), channels));
        let mut buf = AudioBuffer::new(channels, WINDOW);
        let mut gains = vec![0.0f64; WINDOW];
        let mut w = 0usize;
        loop {
            let n = read_block(&mut dec, &mut buf, WINDOW)?;
            if n == 0 {
                break;
            }
            if let Some(l) = &mut loud {
                let v = buf.view(n);
                let planes: Vec<&[f64]> = (0..channels).map(|c| v.channel(c)).collect();
                l.push(&planes);
            }
            if feed.gain_db != 0.0 || !envelope.is_empty() {
                window_gains(&envelope, w, feed.gain_db, &mut gains[..n]);
                let mut view = buf.view_mut(n);
                view.for_each_channel(|_, ch| {
                    ch.iter_mut().zip(&gains).for_each(|(s, g)| *s *= g);
                });
            }
            out.write(buf.view(n))?;
            w += 1;
        }
        Ok((out.finish()?, loud.map(|l| l.integrated_lufs())))
    }
}

/// The linear gains of window `w`'s frames: `gain_db` less the envelope, interpolated
/// linearly between window centres.
fn window_gains(envelope: &[f32], w: usize, gain_db: f64, out: &mut [f64]) {
    let at = |i: isize| -> f64 {
        let i = i.clamp(0, envelope.len() as isize - 1);
        envelope.get(i as usize).map_or(0.0, |&r| f64::from(r))
    };
    let half = (WINDOW / 2) as f64;
    for (k, g) in out.iter_mut().enumerate() {
        // Position relative to this window's centre, in windows.
        let x = (k as f64 + 0.5 - half) / WINDOW as f64;
        let (a, b, t) = if x < 0.0 {
            (at(w as isize - 1), at(w as isize), x + 1.0)
        } else {
            (at(w as isize), at(w as isize + 1), x)
        };
        let reduction = if envelope.is_empty() {
            0.0
        } else {
            a + (b - a) * t
        };
        *g = 10f64.powf((gain_db - reduction) / 20.0);
    }
}

/// Encodes the lossy deliverable `dest` from the float PCM file `pcm` (the deliverable's
/// converted, safety-limited audio), solving for a decoded true peak under `ceiling`. `at`
/// is the recipe's `file:line: ` of the deliverable, for errors. Returns the frames encoded
/// and what the solve did; the file is in place when this returns `Ok`.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    pcm: &Path,
    dest: &Path,
    format: FileFormat,
    settings: &LossySettings,
    ceiling: Option<f64>,
    tags: &[(String, String)],
    protected: &[PathBuf],
    at: &str,
) -> Result<(u64, LossyOutcome), RenderError> {
    let job = Job {
        pcm,
        dest,
        format,
        settings,
        tags,
        protected,
    };
    let mode = settings.codec_safe;
    let mut feed = Feed::default();
    let mut first: Option<(f64, f64)> = None;
    let mut pcm_lufs = f64::NEG_INFINITY;
    let max = settings.max_encodes.clamp(1, MAX_ENCODES);
    for pass in 1..=max {
        let (file, lufs) = job.encode(&feed, pass == 1)?;
        if let Some(l) = lufs {
            pcm_lufs = l;
        }
        let m = measure(file.path())?;
        let (plain_tp, plain_lufs) = *first.get_or_insert((m.true_peak_dbtp, m.lufs));
        let peak_met = ceiling.is_none_or(|c| m.true_peak_dbtp <= c - ACCEPT_MARGIN_DB);
        let last = pass == max;
        if mode == CodecSafe::Off || peak_met {
            let frames = file.frames;
            file.commit()?;
            let spread = feed.spread();
            let reduced = spread.iter().filter(|&&r| r > 0.0).count();
            return Ok((
                frames,
                LossyOutcome {
                    codec: format.name().into(),
                    encoder: crate::io::lossy::encoder_name(format),
                    bitrate_kbps: settings.bitrate_kbps,
                    codec_safe: mode.name().into(),
                    codec_true_peak_dbtp: m.true_peak_dbtp,
                    plain_codec_true_peak_dbtp: plain_tp,
                    pre_encode_gain_db: feed.gain_db,
                    pre_encode_max_reduction_db: f64::from(
                        spread.iter().copied().fold(0.0, f32::max),
                    ),
                    pre_encode_reduced_pct: 100.0 * reduced as f64 / spread.len().max(1) as f64,
                    encodes: pass,
                    pcm_lufs,
                    plain_decoded_lufs: plain_lufs,
                    decoded_lufs: m.lufs,
                },
            ));
        }
        if last {
            let c = ceiling.unwrap_or(0.0);
            return Err(RenderError::Invalid(format!(
                "{at}deliverable `{}`: the decoded {} still peaks at {:.2} dBTP, over its ceiling of \
                 {c:.2} dBTP, after {max} encode{} (the plain encode peaked at {plain_tp:.2} \
                 dBTP); raise the bit rate, or lower the master's ceiling or loudness",
                dest.display(),
                format.name(),
                m.true_peak_dbtp,
                if max == 1 { "" } else { "s" },
            )));
        }
        feed = next_feed(feed, mode, &m, ceiling, pcm_lufs, pass + 1 == max);
    }
    unreachable!("the last pass returns")
}

/// The next pass's feed after measuring `m`: lower what overshot, make up the loudness.
fn next_feed(
    mut feed: Feed,
    mode: CodecSafe,
    m: &Measured,
    ceiling: Option<f64>,
    pcm_lufs: f64,
    next_is_last: bool,
) -> Feed {
    let Some(ceiling) = ceiling else {
        return feed;
    };
    let overshoot = m.true_peak_dbtp - (ceiling - AIM_MARGIN_DB);
    match mode {
        CodecSafe::Gain => feed.gain_db -= overshoot.max(0.0),
        CodecSafe::Limit if next_is_last => {
            // The last encode: the envelope has not settled the codec's peaks (they move by
            // more than its input at low bit rates); the whole file goes down by what is left.
            feed.gain_db -= overshoot.max(0.0) + AIM_MARGIN_DB;
        }
        CodecSafe::Limit => {
            feed.reduction.resize(m.windows.len(), 0.0);
            feed.strikes.resize(m.windows.len(), 0);
            // The make-up is set once, from the plain encode: what the codec itself took
            // off (MP3 at low rates drops the top octave). It raises every window's peak
            // as much, so the first retry's reductions count it.
            let makeup = if feed.reduction.iter().all(|&r| r == 0.0)
                && m.lufs.is_finite()
                && pcm_lufs.is_finite()
            {
                (pcm_lufs - m.lufs).clamp(0.0, MAX_MAKEUP_DB)
            } else {
                0.0
            };
            for ((r, n), &peak) in feed
                .reduction
                .iter_mut()
                .zip(feed.strikes.iter_mut())
                .zip(&m.windows)
            {
                let aim = ceiling - AIM_MARGIN_DB * f64::from(1u32 << (*n).min(4));
                let over = f64::from(peak) + makeup - aim;
                if over > 0.0 {
                    *r += over as f32;
                    *n += 1;
                }
            }
            feed.gain_db += makeup;
        }
        CodecSafe::Off => {}
    }
    feed
}
