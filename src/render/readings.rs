//! Stage A's detector readings of the master limiter, computed once over the spilled
//! pre-limiter master and reused by the loudness solver's later passes.
//!
//! Every pass of the solver (and the final one) runs the master limiter over the same spill,
//! only with another drive ahead of it. The costly part of the limiter, its true-peak detector,
//! reads `drive × spill`: its readings are the spill's readings times the drive. So a pass
//! *records* them: a limiter in readings-only mode ([`STAGE_A_READINGS`]) reads the spill itself
//! and its output — the readings, 32-bit floats rounded up — goes both to a temporary file and
//! into the master limiter's key, which takes its stage-A readings from there
//! ([`STAGE_A_FROM_KEY`]) times the drive (the limiter takes the solver's drive itself, on its
//! input and on its key: `limiter::SOLVER_DRIVE_DB`). Later passes *replay* the file instead of
//! detecting. A speculative final pass, which keeps no recording, has the master limiter compute
//! the same readings of the undriven spill with its own detector ([`STAGE_A_PROBE`]): the bits
//! of the keyed wiring without a second limiter node.
//!
//! The detector reads exactly only where a reading can exceed its threshold (the stage-A target
//! over the drive); elsewhere it writes 0. A recording made at drive `d` is therefore exact above
//! the threshold of drive `d + MARGIN_DB` and serves every pass up to that drive; a pass beyond
//! it records again. The solver's drives mostly climb by the limiting cost after the first pass,
//! which the margin covers: a song's solve detects once.
//!
//! Stage B (the safety stage, on the limiter's output) and everything after the limiter run as
//! before, so the ceiling holds as it always did. A limiter whose ceiling or input gain is
//! automated, or that detects sample peaks, is left to detect for itself.

use super::target::{MasterTail, SpilledMaster};
use super::RenderError;
use crate::dsp::limiter::{stage_a_target, STAGE_A_FROM_KEY, STAGE_A_PROBE, STAGE_A_READINGS};
use crate::dsp::{ConfigValue, Port};
use crate::graph::{GraphSpec, NodeKind, NodeSpec};
use crate::io::decode::{StemStream, StreamOptions};
use crate::io::wav::{WavFormat, WavOutput};
use crate::units::db_to_gain;
use std::path::PathBuf;

/// How far above a recording pass's drive its readings stay exact, dB.
pub const MARGIN_DB: f64 = 1.5;

/// The node that records the readings and the output they are written from.
const PROBE: &str = "__stage_a_probe";
/// The output the recording pass writes to the readings file.
pub const READINGS_OUTPUT: &str = "__stage_a_readings";
/// The source a replaying pass reads the readings file from (engine input 1).
const READINGS_SOURCE: &str = "__stage_a_replay";

/// The master limiter's stage-A readings over one spill: where they are and up to which drive
/// they hold.
pub struct LimiterReadings {
    /// Stage A's target over the limiter's input gain, linear (the readings' threshold at a
    /// drive of 0 dB); `None` when the limiter must detect for itself.
    threshold_at_unity: Option<f64>,
    /// Oversampling of the limiter's detector.
    factor: usize,
    /// The readings file (a 32-bit float WAV of the spill's length and channels).
    path: PathBuf,
    /// The largest drive the recorded readings serve, dB (none recorded yet: `None`).
    recorded_up_to_db: Option<f64>,
    channels: usize,
    sample_rate: u32,
    /// Passes that recorded the readings (detecting).
    pub recorded: u32,
    /// Passes that replayed them.
    pub replayed: u32,
}

/// How one pass gets stage A's readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadingsMode {
    /// The limiter detects for itself (as without this module).
    Detect,
    /// The pass records the readings, exact above this threshold (linear, in spill units).
    Record(f64),
    /// The pass computes the readings as a recording pass does (the same bits reach the
    /// limiter) but keeps no recording: a speculative final pass, which nothing replays when
    /// it is kept (when it misses, the solve's next pass records).
    Probe(f64),
    /// The pass replays the recorded readings.
    Replay,
}

impl LimiterReadings {
    /// The readings of `tail`'s limiter over `spill`, to be kept beside it (`<spill>.readings`).
    pub fn new(spec: &GraphSpec, tail: &MasterTail, spill: &SpilledMaster) -> Self {
        let mut path = spill.path.clone().into_os_string();
        path.push(".readings");
        let (threshold_at_unity, factor) = match plan(spec, tail.limiter()) {
            Some((t, f)) => (Some(t), f),
            None => (None, 1),
        };
        Self {
            threshold_at_unity,
            factor,
            path: path.into(),
            recorded_up_to_db: None,
            channels: spill.channels,
            sample_rate: spill.sample_rate,
            recorded: 0,
            replayed: 0,
        }
    }

    /// How a measuring pass at `drive` dB gets its readings: replaying when a recording covers
    /// the drive, recording otherwise.
    pub fn for_measure(&self, drive: f64) -> ReadingsMode {
        match self.threshold_at_unity {
            None => ReadingsMode::Detect,
            Some(_) if self.covers(drive) => ReadingsMode::Replay,
            Some(t) => ReadingsMode::Record(t / db_to_gain(drive + MARGIN_DB)),
        }
    }

    /// How a speculative final pass at `drive` dB gets its readings: as a measuring pass
    /// ([`Self::for_measure`]) but without keeping a recording.
    pub fn for_speculation(&self, drive: f64) -> ReadingsMode {
        match self.for_measure(drive) {
            ReadingsMode::Record(threshold) => ReadingsMode::Probe(threshold),
            mode => mode,
        }
    }

    /// How the final pass at `drive` dB gets its readings: replaying when a recording covers the
    /// drive, detecting otherwise (nothing would read a new recording).
    pub fn for_final(&self, drive: f64) -> ReadingsMode {
        if self.threshold_at_unity.is_some() && self.covers(drive) {
            ReadingsMode::Replay
        } else {
            ReadingsMode::Detect
        }
    }

    /// Stage A's target over the limiter's input gain, linear (the readings' threshold at a
    /// drive of 0 dB); `None` when the limiter detects for itself.
    pub fn threshold_at_unity(&self) -> Option<f64> {
        self.threshold_at_unity
    }

    fn covers(&self, drive: f64) -> bool {
        self.recorded_up_to_db.is_some_and(|up_to| drive <= up_to)
    }

    /// `g`, the tail chain fed by engine input 0 (its limiter driven by the solver), changed
    /// for `mode`: the limiter takes its readings from its key, fed by the probe (recording) or
    /// by engine input 1 (replaying), or probes the undriven spill itself (a speculative pass).
    pub fn wire(&self, g: &mut GraphSpec, tail: &MasterTail, mode: ReadingsMode) {
        let set_option = |g: &mut GraphSpec, key: &str, value: ConfigValue| {
            if let Some(NodeSpec {
                kind: NodeKind::Processor { config, .. },
                ..
            }) = g.nodes.iter_mut().find(|n| n.id == tail.limiter())
            {
                *config = config.clone().with(key, value);
            }
        };
        let from = match mode {
            ReadingsMode::Detect => return,
            ReadingsMode::Probe(threshold) => {
                // The limiter reads the undriven spill itself, as the probe node would.
                return set_option(g, STAGE_A_PROBE, ConfigValue::Number(threshold));
            }
            ReadingsMode::Record(threshold) => {
                let config = crate::dsp::ProcessorConfig::new()
                    .num("oversampling", self.factor as f64)
                    .num(STAGE_A_READINGS, threshold);
                g.processor(PROBE, "limiter", config);
                g.connect("__pre_limiter", PROBE);
                g.node(
                    READINGS_OUTPUT,
                    NodeKind::Output {
                        channels: self.channels,
                    },
                );
                g.connect(PROBE, READINGS_OUTPUT);
                PROBE
            }
            ReadingsMode::Replay => {
                g.node(
                    READINGS_SOURCE,
                    NodeKind::Source {
                        input: 1,
                        channels: self.channels,
                        config: Default::default(),
                    },
                );
                READINGS_SOURCE
            }
        };
        // The limiter multiplies the readings by the solver's drive, as it does its input.
        set_option(g, STAGE_A_FROM_KEY, ConfigValue::Bool(true));
        g.connect_port(from, tail.limiter(), Port::Key, 0.0);
    }

    /// Readies a pass over `g` (the tail chain) for `mode`: wires it ([`Self::wire`]),
    /// adds the readings stream to `streams` when replaying (engine input 1), and returns the
    /// writer of a recording pass (its output [`READINGS_OUTPUT`] goes there; then
    /// [`Self::finish_recording`]).
    pub fn attach(
        &mut self,
        g: &mut GraphSpec,
        tail: &MasterTail,
        mode: ReadingsMode,
        streams: &mut Vec<StemStream>,
    ) -> Result<Option<WavOutput>, RenderError> {
        self.wire(g, tail, mode);
        match mode {
            ReadingsMode::Detect | ReadingsMode::Probe(_) => Ok(None),
            ReadingsMode::Replay => {
                streams.push(self.replay_stream()?);
                Ok(None)
            }
            ReadingsMode::Record(_) => Ok(Some(self.start_recording()?)),
        }
    }

    /// The stream a replaying pass reads (engine input 1).
    pub fn replay_stream(&mut self) -> Result<StemStream, RenderError> {
        self.replayed += 1;
        Ok(StemStream::open(
            &self.path,
            &StreamOptions {
                target_rate: self.sample_rate,
                target_channels: self.channels,
                length_frames: None,
            },
        )?
        .0)
    }

    /// A writer for a recording pass at `drive`; [`Self::finish_recording`] makes it the
    /// recording.
    pub fn start_recording(&self) -> Result<WavOutput, RenderError> {
        Ok(WavOutput::create(
            &self.path,
            self.sample_rate,
            self.channels,
            WavFormat::Float32,
            &[],
        )?)
    }

    /// The recording pass at `drive` is done: its readings serve drives up to
    /// `drive + MARGIN_DB` from now on.
    pub fn finish_recording(&mut self, writer: WavOutput, drive: f64) -> Result<(), RenderError> {
        writer.finish()?;
        self.recorded_up_to_db = Some(drive + MARGIN_DB);
        self.recorded += 1;
        Ok(())
    }
}

impl Drop for LimiterReadings {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Stage A's target over the limiter's input gain and its oversampling, when the limiter can
/// take its readings from a recording: a true-peak detector, and neither its ceiling nor its
/// input gain automated.
fn plan(spec: &GraphSpec, limiter: &str) -> Option<(f64, usize)> {
    let automated = |param: &str| {
        spec.automation
            .iter()
            .any(|a| a.param == format!("{limiter}.{param}"))
    };
    if automated("ceiling_dbtp") || automated("input_gain_db") {
        return None;
    }
    let NodeKind::Processor { config, .. } = &spec.find(limiter)?.kind else {
        return None;
    };
    let number = |key: &str, default: f64| match config.clone().take(key) {
        Some(ConfigValue::Number(v)) => Some(v),
        None => Some(default),
        Some(_) => None,
    };
    let factor = number("oversampling", 8.0)?;
    if factor != 4.0 && factor != 8.0 {
        return None;
    }
    let factor = factor as usize;
    let ceiling = number("ceiling_dbtp", -1.0)?;
    let input_gain = number("input_gain_db", 0.0)?;
    Some((
        stage_a_target(ceiling, factor) / db_to_gain(input_gain),
        factor,
    ))
}
