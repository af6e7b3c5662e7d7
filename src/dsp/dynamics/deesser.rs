//! De-esser: split-band compression of one band, the rest of the signal untouched.
//!
//! A 2nd-order state-variable filter (f64, fixed poles: it only retunes when `freq_hz` or `q`
//! move) separates the band; the detector is a peak detector on that band, and the gain
//! reduction g (threshold, ratio, hard knee, at most `range_db`) is applied to it only:
//!
//! - `mode = "band"` (default): the band is the unity-gain band-pass `b` at `freq_hz` with `q`,
//!   and `out = x + (g − 1)·b` (= rest + g·band with rest = x − b). The response is a dip of
//!   depth g at `freq_hz`, never above unity anywhere;
//! - `mode = "high"`: the band is everything above `freq_hz` (Butterworth high-pass `h`, no
//!   `q`), and `out = x + (g − 1)·h + (√g − 1)·b`: a 2nd-order high shelf of gain g with
//!   |H|² = (1 + g²ω⁴)/(1 + ω⁴) (ω = f/`freq_hz`), falling monotonically from 1 to g. (Plain
//!   `x + (g − 1)·h` would boost around `freq_hz`, where h is 90° out of phase with x.)
//!
//! With no reduction (g = 1) both give the input bit for bit, and far from the band the signal
//! is untouched whatever the reduction. Publishes `gain_reduction_db` (the block's max).

use super::core::{Cached, Chunk, DetectorKind, GainParams, GainStage, LevelDetector, CHUNK};
use crate::dsp::crossover::SvfState;
use crate::dsp::filters::SvfCoefs;
use crate::dsp::kind::{BuildContext, KindInfo};
use crate::dsp::telemetry::GAIN_REDUCTION_DB;
use crate::dsp::{
    AudioMut, AudioRef, ParamBlock, ParamInfo, ParamValues, ProcessSpec, Processor,
    ProcessorConfig, Telemetry, Unit,
};
use std::sync::Arc;

/// Index of `freq_hz`.
pub const FREQ_HZ: usize = 0;
/// Index of `threshold_db`.
pub const THRESHOLD_DB: usize = 1;
/// Index of `ratio`.
pub const RATIO: usize = 2;
/// Index of `range_db`.
pub const RANGE_DB: usize = 3;
/// Index of `attack_ms`.
pub const ATTACK_MS: usize = 4;
/// Index of `release_ms`.
pub const RELEASE_MS: usize = 5;
/// Index of `link_pct`.
pub const LINK_PCT: usize = 6;
/// Index of `q` (band mode only).
pub const Q: usize = 7;

static TELEMETRY: [&str; 1] = [GAIN_REDUCTION_DB];

/// How the band is taken out of the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Band-pass around `freq_hz` (unity gain at the centre).
    Band,
    /// High-pass above `freq_hz`.
    High,
}

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "deesser",
    doc: "De-esser: compresses one band (`mode = \"band\"`, band-pass at `freq_hz` with `q`, or \
          `\"high\"`, high-pass above `freq_hz`) detected on that band, at most `range_db`; the \
          rest of the signal is untouched and no reduction is bit-transparent. Publishes \
          `gain_reduction_db`.",
    build,
    example,
};

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    if !(1..=2).contains(&cx.input_channels) {
        return Err(format!(
            "deesser takes a mono or stereo input, not {} channels",
            cx.input_channels
        ));
    }
    let mode = match cx.config.take_choice("mode", &["band", "high"], "band")? {
        "high" => Mode::High,
        _ => Mode::Band,
    };
    Ok(Box::new(Deesser::new(cx.input_channels, mode)))
}

fn example() -> ProcessorConfig {
    ProcessorConfig::new()
        .text("mode", "band")
        .num("freq_hz", 6500.0)
        .num("q", 1.5)
        .num("threshold_db", -30.0)
}

fn params(mode: Mode) -> Vec<ParamInfo> {
    let mut p = vec![
        ParamInfo::new("freq_hz", Unit::Hertz, 2000.0, 16000.0, 6000.0)
            .log()
            .doc("centre (band) or corner (high) of the band treated"),
        ParamInfo::new("threshold_db", Unit::Decibels, -60.0, 0.0, -30.0)
            .doc("band level above which the band is reduced"),
        ParamInfo::new("ratio", Unit::Ratio, 1.0, 20.0, 4.0)
            .log()
            .doc("ratio of the band's compression"),
        ParamInfo::new("range_db", Unit::Decibels, 0.0, 24.0, 12.0)
            .doc("largest reduction of the band"),
        ParamInfo::new("attack_ms", Unit::Milliseconds, 0.05, 50.0, 1.0)
            .log()
            .doc("time for a growing reduction to cover 63 % of its change"),
        ParamInfo::new("release_ms", Unit::Milliseconds, 5.0, 500.0, 60.0)
            .log()
            .doc("time for a shrinking reduction to cover 63 % of its change"),
        ParamInfo::new("link_pct", Unit::Percent, 0.0, 100.0, 100.0)
            .doc("stereo link of the detector"),
    ];
    if mode == Mode::Band {
        p.push(
            ParamInfo::new("q", Unit::Q, 0.3, 6.0, 1.0)
                .log()
                .doc("quality of the band-pass (band mode)"),
        );
    }
    p
}

/// A de-esser.
pub struct Deesser {
    params: Vec<ParamInfo>,
    channels: usize,
    mode: Mode,
    sample_rate: f64,
    filter: SvfState,
    coefs: Cached<SvfCoefs>,
    /// The `q` the cached coefficients were made with.
    coefs_q: f64,
    detector: LevelDetector,
    stage: GainStage,
    position: u64,
    telemetry: Arc<Telemetry>,
}

impl Deesser {
    /// A de-esser for `channels` (1 or 2) channels.
    pub fn new(channels: usize, mode: Mode) -> Self {
        Self {
            params: params(mode),
            channels,
            mode,
            sample_rate: 48000.0,
            filter: SvfState::default(),
            coefs: Cached::new(SvfCoefs::default()),
            coefs_q: f64::NAN,
            detector: LevelDetector::new(DetectorKind::Peak),
            stage: GainStage::new(),
            position: 0,
            telemetry: Arc::new(Telemetry::new(&TELEMETRY)),
        }
    }

    /// The filter coefficients for `freq` and `q` (cached on both).
    #[inline(always)]
    fn coefs(&mut self, freq: f64, q: f64) -> SvfCoefs {
        if q != self.coefs_q {
            self.coefs_q = q;
            self.coefs.clear();
        }
        let fs = self.sample_rate;
        self.coefs.get(freq, |f| SvfCoefs::tuned(f, q, fs))
    }
}

impl Processor for Deesser {
    fn kind(&self) -> &'static str {
        "deesser"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        self.sample_rate = spec.sample_rate;
        self.coefs.clear();
        self.coefs_q = f64::NAN;
        self.detector.prepare(spec.sample_rate);
        self.stage.prepare(spec.sample_rate);
        self.reset();
    }
    fn reset(&mut self) {
        self.filter.reset();
        self.detector.reset();
        self.stage.reset();
        self.position = 0;
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let frames = audio.frames();
        let p = GainParams {
            threshold_db: params.get(THRESHOLD_DB),
            ratio: params.get(RATIO),
            knee_db: ParamValues::Constant(0.0),
            range_db: params.get(RANGE_DB),
            attack_ms: params.get(ATTACK_MS),
            release_ms: params.get(RELEASE_MS),
            makeup_db: ParamValues::Constant(0.0),
            link_pct: params.get(LINK_PCT),
        };
        let freq = params.get(FREQ_HZ);
        let q = match self.mode {
            Mode::Band => params.get(Q),
            Mode::High => ParamValues::Constant(std::f64::consts::FRAC_1_SQRT_2),
        };
        let scale = DetectorKind::Peak.db_per_octave();
        let mut max_gr: f64 = 0.0;
        let mut k = 0;
        while k < frames {
            let n = (CHUNK - (self.position % CHUNK as u64) as usize).min(frames - k);
            // Unity band-pass and high-pass outputs of the filter.
            let mut bp: [Chunk; 2] = [[0.0; CHUNK]; 2];
            let mut hp: [Chunk; 2] = [[0.0; CHUNK]; 2];
            let moving = !(freq.is_constant() && q.is_constant());
            let mut coefs = self.coefs(freq.at(k), q.at(k));
            // The filter's state in a local for the chunk (in registers on its recursion).
            let mut filter = self.filter;
            for i in 0..n {
                let mut x = [0.0; 2];
                for (c, x) in x.iter_mut().enumerate().take(self.channels) {
                    *x = audio.channel(c)[k + i];
                }
                if moving {
                    coefs = self.coefs(freq.at(k + i), q.at(k + i));
                }
                let (v1, v2) = filter.tick(&coefs, x);
                for c in 0..2 {
                    bp[c][i] = coefs.k * v1[c];
                    hp[c][i] = x[c] - coefs.k * v1[c] - v2[c];
                }
            }
            self.filter = filter;
            let mut det = match self.mode {
                Mode::Band => bp,
                Mode::High => hp,
            };
            self.detector
                .run(&mut det, self.channels, ParamValues::Constant(0.0), k, n);
            let mut gains: [Chunk; 2] = [[0.0; CHUNK]; 2];
            let gr = self.stage.run(
                &det,
                self.channels,
                scale,
                self.channels,
                &p,
                k,
                n,
                &mut gains,
            );
            max_gr = max_gr.max(gr);
            for c in 0..self.channels {
                let x = &mut audio.channel_mut(c)[k..k + n];
                match self.mode {
                    Mode::Band => {
                        for i in 0..n {
                            x[i] += (gains[c][i] - 1.0) * bp[c][i];
                        }
                    }
                    Mode::High => {
                        for i in 0..n {
                            let g = gains[c][i];
                            x[i] += (g - 1.0) * hp[c][i] + (g.sqrt() - 1.0) * bp[c][i];
                        }
                    }
                }
            }
            self.position += n as u64;
            if self.position.is_multiple_of(CHUNK as u64) {
                self.filter.flush();
                self.stage.flush();
            }
            k += n;
        }
        self.telemetry.set_block(0, max_gr, frames);
    }
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        Some(self.telemetry.clone())
    }
    crate::hand_over! {
        config: channels, mode, sample_rate;
        state: filter, coefs, coefs_q, detector, stage, position;
        own: params, telemetry;
    }
}
