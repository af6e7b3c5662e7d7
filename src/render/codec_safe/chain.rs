//! What the encoder is fed on one pass of the codec-safe solve: the deliverable's PCM, streamed
//! from its temporary file, times a whole-file gain, through an optional low-pass at the
//! encoder's own cutoff and an optional true-peak limiter (the project's `limiter`, its latency
//! removed), into the encoder or — for a probe of the loudness only — into nothing. Every pass
//! meters what it fed (integrated loudness, true peak, the limiter's gain reduction).

use super::super::RenderError;
use super::read_block;
use crate::analysis::meters::{LoudnessMeter, TruePeakMeter};
use crate::dsp::config::{ConfigValue, ProcessorConfig};
use crate::dsp::limiter::MEASURE_ONLY;
use crate::dsp::standalone::Standalone;
use crate::dsp::{AudioBuffer, AudioRef};
use crate::io::decode::Decoder;
use crate::io::lossy::LossyOutput;
use std::path::Path;

/// Frames per block of a pass.
pub const BLOCK: usize = 1024;
/// The oversampling of the fed audio's true-peak meter.
const FED_METER_FACTOR: usize = 8;
/// The pre-encode limiter's lookahead, ms (its attack).
pub const LIMITER_LOOKAHEAD_MS: f64 = 5.0;
/// The pre-encode limiter's (sustained) release, ms.
pub const LIMITER_RELEASE_MS: f64 = 100.0;
/// The slope of the pre-encode low-pass, dB per octave (a Butterworth cascade).
pub const LOWPASS_SLOPE_DB: f64 = 48.0;

/// What the encoder is fed on one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Feed {
    /// Whole-file gain before the low-pass and the limiter, dB.
    pub gain_db: f64,
    /// The pre-encode low-pass's cutoff, Hz.
    pub lowpass_hz: Option<f64>,
    /// The pre-encode limiter's ceiling, dBTP (its output peaks about 0.1 dB under it).
    pub limit_dbtp: Option<f64>,
}

/// What a pass fed, measured.
#[derive(Debug, Clone, Copy)]
pub struct Fed {
    /// Integrated loudness, LUFS.
    pub lufs: f64,
    /// True peak (8×), dBTP (NaN for a probe: not measured).
    pub true_peak_dbtp: f64,
    /// The limiter's largest gain reduction, dB (0 without one).
    pub max_reduction_db: f64,
    /// Share of the song the limiter reduced, percent.
    pub reduced_pct: f64,
}

/// The stages after the gain, built for one pass.
struct Stages {
    lowpass: Option<Standalone>,
    limiter: Option<Standalone>,
    /// Output frames still to drop (the limiter's latency).
    skip: usize,
}

impl Stages {
    /// The stages of `feed`; for a probe (`probe`), a limiter without its safety stage (it moves
    /// the loudness by far less than the solve's tolerance and is the dearer half of a limiter
    /// limiting throughout, as in the loudness solver's measuring copies).
    fn new(feed: &Feed, channels: usize, rate: f64, probe: bool) -> Result<Stages, RenderError> {
        let build = |kind: &str, config: ProcessorConfig| {
            Standalone::new(kind, &config, channels, rate, BLOCK)
                .map_err(|e| RenderError::Invalid(format!("the pre-encode {kind}: {e}")))
        };
        let lowpass = match feed.lowpass_hz {
            Some(hz) => {
                let band = ProcessorConfig::new()
                    .text("type", "low_pass")
                    .num("freq_hz", hz)
                    .num("slope_db", LOWPASS_SLOPE_DB);
                let config = ProcessorConfig::new()
                    .with("bands", ConfigValue::List(vec![ConfigValue::Table(band)]));
                Some(build("eq", config)?)
            }
            None => None,
        };
        let limiter = match feed.limit_dbtp {
            Some(c) => Some(build(
                "limiter",
                ProcessorConfig::new()
                    .num("ceiling_dbtp", c)
                    .num("lookahead_ms", LIMITER_LOOKAHEAD_MS)
                    .num("release_ms", LIMITER_RELEASE_MS)
                    .with(MEASURE_ONLY, ConfigValue::Bool(probe)),
            )?),
            None => None,
        };
        let skip = limiter.as_ref().map_or(0, Standalone::latency);
        Ok(Stages {
            lowpass,
            limiter,
            skip,
        })
    }

    fn latency(&self) -> usize {
        self.limiter.as_ref().map_or(0, Standalone::latency)
    }

    /// Runs `buf`'s first `n` frames through the stages in place; the frames to keep start at
    /// the returned index.
    fn run(&mut self, buf: &mut AudioBuffer, n: usize) -> usize {
        if let Some(l) = &mut self.lowpass {
            l.process(&mut buf.view_mut(n));
        }
        if let Some(l) = &mut self.limiter {
            l.process(&mut buf.view_mut(n));
        }
        let drop = self.skip.min(n);
        self.skip -= drop;
        drop
    }

    /// The limiter's largest gain reduction (dB) and the share of frames it reduced (%).
    fn reduction(&self) -> (f64, f64) {
        let Some(t) = self
            .limiter
            .as_ref()
            .and_then(|l| l.processor().telemetry())
        else {
            return (0.0, 0.0);
        };
        let s = t.block_statistics();
        let pct = 100.0 * s.active_frames as f64 / s.frames.max(1) as f64;
        (s.max.max(0.0), pct)
    }
}

/// The meters of the fed audio (a probe only needs the loudness).
struct Meters {
    loudness: LoudnessMeter,
    true_peak: Option<TruePeakMeter>,
}

impl Meters {
    fn push(&mut self, audio: AudioRef<'_>) {
        let planes: Vec<&[f64]> = (0..audio.channels()).map(|c| audio.channel(c)).collect();
        self.loudness.push(&planes);
        if let Some(tp) = &mut self.true_peak {
            tp.push(&planes);
        }
    }
}

/// Streams the PCM file `pcm` through `feed` into `sink` (the encoder; `None` for a probe that
/// only meters the loudness), block by block.
pub fn run(
    pcm: &Path,
    feed: &Feed,
    mut sink: Option<&mut LossyOutput>,
) -> Result<Fed, RenderError> {
    let mut dec = Decoder::open(pcm)?;
    let info = dec.info().clone();
    let (channels, rate) = (info.channels, f64::from(info.sample_rate));
    let mut stages = Stages::new(feed, channels, rate, sink.is_none())?;
    let mut meters = Meters {
        loudness: LoudnessMeter::new(rate, channels),
        true_peak: sink
            .is_some()
            .then(|| TruePeakMeter::new(rate, channels, FED_METER_FACTOR)),
    };
    let gain = 10f64.powf(feed.gain_db / 20.0);
    let mut buf = AudioBuffer::new(channels, BLOCK);
    let mut out = |buf: &AudioBuffer, from: usize, n: usize| -> Result<(), RenderError> {
        if from < n {
            let v = buf.view(n).slice(from, n);
            meters.push(v);
            if let Some(s) = sink.as_deref_mut() {
                s.write(v)?;
            }
        }
        Ok(())
    };
    loop {
        let n = read_block(&mut dec, &mut buf, BLOCK)?;
        if n == 0 {
            break;
        }
        if gain != 1.0 {
            buf.view_mut(n)
                .for_each_channel(|_, ch| ch.iter_mut().for_each(|s| *s *= gain));
        }
        let from = stages.run(&mut buf, n);
        out(&buf, from, n)?;
    }
    // The limiter's delay, pushed out with silence.
    let mut left = stages.latency();
    while left > 0 {
        let n = left.min(BLOCK);
        buf.view_mut(n)
            .for_each_channel(|_, ch| ch.iter_mut().for_each(|s| *s = 0.0));
        let from = stages.run(&mut buf, n);
        out(&buf, from, n)?;
        left -= n;
    }
    let true_peak_dbtp = meters.true_peak.as_mut().map_or(f64::NAN, |tp| {
        tp.finish();
        tp.true_peak_dbtp()
    });
    let (max_reduction_db, reduced_pct) = stages.reduction();
    Ok(Fed {
        lufs: meters.loudness.integrated_lufs(),
        true_peak_dbtp,
        max_reduction_db,
        reduced_pct,
    })
}
