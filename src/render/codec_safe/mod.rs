//! The codec-safe true-peak solve of a lossy deliverable (MP3, Ogg Opus).
//!
//! A lossy encoder raises peaks: it drops and requantizes parts of the spectrum, and what it
//! gives back is not the waveform it was fed. So a master limited to −1 dBTP decodes with peaks
//! over −1 dBTP. The deliverable pipeline writes the lossy deliverable's float PCM (converted,
//! safety-limited) to a temporary file first; this stage then encodes it, decodes what was
//! encoded (symphonia for MP3, libopus for Opus, through [`crate::io::decode::Decoder`]),
//! measures the decoded true peak with the project's meter (16× oversampling, under-reading by
//! at most 0.034 dB) and the decoded integrated loudness, and, while the peak is over the
//! ceiling, changes the encoder's input ([`chain`]) and encodes again:
//!
//! - `codec_safe = "limit"` (the default): a true-peak limiter (the project's `limiter`, 5 ms
//!   lookahead) runs on the encoder's input at a ceiling lowered by the codec's measured
//!   overshoot, after a low-pass at the encoder's own cutoff where it has one under 0.45 fs
//!   (LAME's, by bit rate; Opus's 20 kHz fullband edge), and a whole-file make-up gain before
//!   them is solved (by probe passes that only meter, [`MAX_PROBES`] a retry) so that the
//!   *decoded* loudness lands on the PCM's: the limiter takes only the peaks, the make-up gives
//!   back what the limiter, the low-pass and the codec took. Each retry moves the limiter's
//!   ceiling by the decoded peak's distance from the aim ([`AIM_MARGIN_DB`] under the ceiling;
//!   once two limited encodes say how the decoded peak follows the fed one, by a secant step)
//!   and the loudness target by the decoded loudness's distance from the PCM's. A file is
//!   delivered when its peak holds and its loudness is within [`LOUDNESS_TOLERANCE_LU`] of the
//!   PCM's; a file whose peak holds but whose loudness is further off is kept, in place, and
//!   replaced only by a later encode that is closer (or meets both).
//! - `codec_safe = "gain"`: the whole file is turned down by the overshoot (the loudness drops
//!   by as much).
//! - `codec_safe = "off"`: one encode, reported as measured (a diagnostic; the render warns when
//!   it is over the ceiling).
//!
//! A file is accepted when its decoded true peak is at most `ceiling −` [`ACCEPT_MARGIN_DB`]
//! (covering the meter's under-read and the difference to other meters, such as ffmpeg's). At
//! most [`MAX_ENCODES`] encodes (`max_encodes` lowers the bound); a ceiling still not met then
//! is an error naming the figure (no file over its ceiling is ever left behind). Memory stays
//! flat in the song's length: every pass streams the PCM from its file, the encoder writes as
//! it goes, and the measurement decodes block by block.

pub mod chain;

use super::RenderError;
use crate::analysis::meters::{LoudnessMeter, TruePeakMeter};
use crate::dsp::AudioBuffer;
use crate::io::decode::Decoder;
use crate::io::lossy::{CodecSafe, EncodedFile, LossyOutput, LossySettings};
use crate::session::FileFormat;
use chain::{Fed, Feed};
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
/// A `limit` retry's decoded loudness is accepted this close to the PCM's, LU.
pub const LOUDNESS_TOLERANCE_LU: f64 = 0.1;
/// The make-up gain is solved to this close to its loudness target, LU.
const PROBE_TOLERANCE_LU: f64 = 0.02;
/// The first step of the make-up solve assumes the limiter keeps this share of any gain (the
/// next steps use the slope measured, carried from one retry to the next).
const FIRST_GAIN_SLOPE: f64 = 0.7;
/// Most probe passes (limiter and meters, no encoder) per retry.
pub const MAX_PROBES: u32 = 4;
/// The make-up gain's bounds, dB.
const MAKEUP_RANGE_DB: (f64, f64) = (-6.0, 6.0);
/// The bounds of the secant's slope (decoded peak change per fed peak change): a step moves the
/// fed peak by half to 2.5 times the decoded peak's distance from the aim.
const MIN_PEAK_SLOPE: f64 = 0.4;
const MAX_PEAK_SLOPE: f64 = 2.0;
/// The limiter's detection margin at 8×: its output peaks this far under its ceiling, dB.
const LIMITER_MARGIN_DB: f64 = 0.1;

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
    /// Gain applied to the whole PCM before the encoder, dB (`limit`: the make-up before the
    /// limiter; `gain`: the turn-down).
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub pre_encode_gain_db: f64,
    /// The pre-encode limiter's ceiling (`limit`, once it ran), dBTP.
    #[serde(serialize_with = "crate::analysis::json::opt_db")]
    pub pre_encode_limiter_ceiling_dbtp: Option<f64>,
    /// The pre-encode low-pass's cutoff (`limit`, once it ran, where the encoder has one), Hz.
    pub pre_encode_lowpass_hz: Option<f64>,
    /// Largest gain reduction of the pre-encode limiter, dB.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub pre_encode_max_reduction_db: f64,
    /// Share of the song the pre-encode limiter reduced, percent.
    #[serde(serialize_with = "crate::analysis::json::ratio")]
    pub pre_encode_reduced_pct: f64,
    /// True peak of what the encoder was fed (8×), dBTP.
    #[serde(serialize_with = "crate::analysis::json::db")]
    pub pre_encode_true_peak_dbtp: f64,
    /// Encodes made (1 when the first met the ceiling; all of them when an earlier encode's file
    /// was delivered).
    pub encodes: u32,
    /// Probe passes made to solve the make-up gain (limiter and meters, no encoder).
    pub probes: u32,
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

/// What a decode measured.
struct Measured {
    true_peak_dbtp: f64,
    lufs: f64,
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

/// Decodes `path` and measures its true peak (16×) and integrated loudness.
fn measure(path: &Path) -> Result<Measured, RenderError> {
    let mut dec = Decoder::open(path)?;
    let info = dec.info().clone();
    let rate = f64::from(info.sample_rate);
    let mut tp = TruePeakMeter::new(rate, info.channels, MEASURE_FACTOR);
    let mut lm = LoudnessMeter::new(rate, info.channels);
    let mut buf = AudioBuffer::new(info.channels, chain::BLOCK);
    loop {
        let n = read_block(&mut dec, &mut buf, chain::BLOCK)?;
        if n == 0 {
            break;
        }
        let v = buf.view(n);
        let planes: Vec<&[f64]> = (0..info.channels).map(|c| v.channel(c)).collect();
        tp.push(&planes);
        lm.push(&planes);
    }
    tp.finish();
    Ok(Measured {
        true_peak_dbtp: tp.true_peak_dbtp(),
        lufs: lm.integrated_lufs(),
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
    /// One encode of the PCM file through `feed`; the encoded file (not yet in place) and what
    /// was fed.
    fn encode(&self, feed: &Feed) -> Result<(EncodedFile, Fed), RenderError> {
        let info = Decoder::open(self.pcm)?.info().clone();
        let mut out = LossyOutput::create(
            self.format,
            self.dest,
            info.sample_rate,
            info.channels,
            self.settings,
            self.tags,
            self.protected,
        )?;
        let fed = chain::run(self.pcm, feed, Some(&mut out))?;
        Ok((out.finish()?, fed))
    }

    /// The make-up gain that feeds the encoder at `target` LUFS through `feed`'s low-pass and
    /// limiter, by secant steps from `feed.gain_db` (the probes only meter); the feed and the
    /// probes made. `slope` (LU of loudness per dB of gain through the limiter) starts the
    /// steps and comes back as the last one measured.
    fn solve_gain(
        &self,
        feed: Feed,
        target: f64,
        slope: &mut f64,
    ) -> Result<(Feed, u32), RenderError> {
        let probe = |g: f64| -> Result<f64, RenderError> {
            Ok(chain::run(self.pcm, &Feed { gain_db: g, ..feed }, None)?.lufs)
        };
        let clamp = |g: f64| g.clamp(MAKEUP_RANGE_DB.0, MAKEUP_RANGE_DB.1);
        let (mut g0, mut l0) = (feed.gain_db, probe(feed.gain_db)?);
        let mut best = (g0, (l0 - target).abs());
        let mut probes = 1;
        while probes < MAX_PROBES && best.1 > PROBE_TOLERANCE_LU && l0.is_finite() {
            let g1 = clamp(g0 + (target - l0) / *slope);
            if g1 == g0 {
                break;
            }
            let l1 = probe(g1)?;
            probes += 1;
            if (l1 - target).abs() < best.1 {
                best = (g1, (l1 - target).abs());
            }
            *slope = ((l1 - l0) / (g1 - g0)).clamp(0.1, 1.5);
            (g0, l0) = (g1, l1);
        }
        Ok((
            Feed {
                gain_db: best.0,
                ..feed
            },
            probes,
        ))
    }
}

/// The state of the solve between encodes.
struct Solve {
    feed: Feed,
    probes: u32,
    /// The plain encode's decoded true peak and loudness.
    plain: (f64, f64),
    /// The PCM's integrated loudness.
    pcm_lufs: f64,
    /// The file so far under its ceiling whose loudness missed the tolerance by the least,
    /// already in place: its frames, outcome and distance from the PCM's loudness (negated).
    /// Delivered unless a later encode is closer, or meets both.
    kept: Option<(u64, LossyOutcome, f64)>,
    /// Loudness gained per dB of make-up through the limiter, as last measured.
    gain_slope: f64,
    /// The previous encode's fed and decoded true peaks, dBTP.
    last_peaks: Option<(f64, f64)>,
}

impl Solve {
    fn outcome(&self, job: &Job, pass: u32, fed: &Fed, m: &Measured) -> LossyOutcome {
        LossyOutcome {
            codec: job.format.name().into(),
            encoder: crate::io::lossy::encoder_name(job.format),
            bitrate_kbps: job.settings.bitrate_kbps,
            codec_safe: job.settings.codec_safe.name().into(),
            codec_true_peak_dbtp: m.true_peak_dbtp,
            plain_codec_true_peak_dbtp: self.plain.0,
            pre_encode_gain_db: self.feed.gain_db,
            pre_encode_limiter_ceiling_dbtp: self.feed.limit_dbtp,
            pre_encode_lowpass_hz: self.feed.lowpass_hz,
            pre_encode_max_reduction_db: fed.max_reduction_db,
            pre_encode_reduced_pct: fed.reduced_pct,
            pre_encode_true_peak_dbtp: fed.true_peak_dbtp,
            encodes: pass,
            probes: self.probes,
            pcm_lufs: self.pcm_lufs,
            plain_decoded_lufs: self.plain.1,
            decoded_lufs: m.lufs,
        }
    }

    /// The next encode's feed after `fed` decoded as `m`: `gain` turns the whole file down by
    /// the overshoot; `limit` moves the limiter's ceiling by the decoded peak's distance from
    /// the aim and solves the make-up for the decoded loudness's distance from the PCM's.
    fn next(
        &mut self,
        job: &Job,
        fed: &Fed,
        m: &Measured,
        ceiling: f64,
    ) -> Result<(), RenderError> {
        let aim = ceiling - AIM_MARGIN_DB;
        let overshoot = m.true_peak_dbtp - aim;
        match job.settings.codec_safe {
            CodecSafe::Gain => self.feed.gain_db -= overshoot.max(0.0),
            CodecSafe::Limit => {
                // The decoded peak moves by more or less than the fed one (the codec's noise
                // grows with the limiting): a secant step once two limited encodes say how
                // much (the plain encode, without the low-pass and the limiter, does not).
                let limited = self.feed.limit_dbtp.is_some();
                let slope = self
                    .last_peaks
                    .filter(|_| limited)
                    .map(|(f, d)| (m.true_peak_dbtp - d) / (fed.true_peak_dbtp - f))
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map_or(1.0, |s| s.clamp(MIN_PEAK_SLOPE, MAX_PEAK_SLOPE));
                self.last_peaks = limited.then_some((fed.true_peak_dbtp, m.true_peak_dbtp));
                let fed_peak = fed.true_peak_dbtp - overshoot / slope;
                let limit = (fed_peak + LIMITER_MARGIN_DB).min(ceiling);
                let target = fed.lufs + (self.pcm_lufs - m.lufs);
                let rate = Decoder::open(job.pcm)?.info().sample_rate;
                let feed = Feed {
                    gain_db: self.feed.gain_db,
                    lowpass_hz: crate::io::lossy::encoder_cutoff_hz(
                        job.format,
                        job.settings.bitrate_kbps,
                        rate,
                    ),
                    limit_dbtp: Some(limit),
                };
                let (feed, probes) = job.solve_gain(feed, target, &mut self.gain_slope)?;
                self.feed = feed;
                self.probes += probes;
            }
            CodecSafe::Off => {}
        }
        Ok(())
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
    let max = settings.max_encodes.clamp(1, MAX_ENCODES);
    let mut solve: Option<Solve> = None;
    for pass in 1..=max {
        let feed = solve.as_ref().map_or_else(Feed::default, |s| s.feed);
        let (file, fed) = job.encode(&feed)?;
        let m = measure(file.path())?;
        let s = solve.get_or_insert(Solve {
            feed,
            probes: 0,
            gain_slope: FIRST_GAIN_SLOPE,
            plain: (m.true_peak_dbtp, m.lufs),
            pcm_lufs: fed.lufs,
            kept: None,
            last_peaks: None,
        });
        let peak_met = ceiling.is_none_or(|c| m.true_peak_dbtp <= c - ACCEPT_MARGIN_DB);
        let retry = pass > 1 && mode == CodecSafe::Limit;
        let loud_met = !retry || (m.lufs - s.pcm_lufs).abs() <= LOUDNESS_TOLERANCE_LU;
        let last = pass == max;
        if mode == CodecSafe::Off || (peak_met && loud_met) {
            let frames = file.frames;
            file.commit()?;
            return Ok((frames, s.outcome(&job, pass, &fed, &m)));
        }
        if peak_met {
            // Under the ceiling but off in loudness: in place unless an earlier file is closer.
            let rank = -(m.lufs - s.pcm_lufs).abs();
            if s.kept.as_ref().is_none_or(|k| rank > k.2) {
                let frames = file.frames;
                file.commit()?;
                s.kept = Some((frames, s.outcome(&job, pass, &fed, &m), rank));
            }
        }
        if last {
            if let Some((frames, outcome, _)) = s.kept.take() {
                // The file of an earlier encode, after all the encodes and probes made.
                let (encodes, probes) = (pass, s.probes);
                return Ok((
                    frames,
                    LossyOutcome {
                        encodes,
                        probes,
                        ..outcome
                    },
                ));
            }
            let c = ceiling.unwrap_or(0.0);
            return Err(RenderError::Invalid(format!(
                "{at}deliverable `{}`: the decoded {} still peaks at {:.2} dBTP, over its ceiling of \
                 {c:.2} dBTP, after {max} encode{} (the plain encode peaked at {:.2} \
                 dBTP); raise the bit rate, or lower the master's ceiling or loudness",
                dest.display(),
                format.name(),
                m.true_peak_dbtp,
                if max == 1 { "" } else { "s" },
                s.plain.0,
            )));
        }
        if let Some(c) = ceiling {
            s.next(&job, &fed, &m, c)?;
        }
    }
    unreachable!("the last pass returns")
}
