//! The analysis of one audio file: loudness, peaks, levels, stereo image, word length, and the
//! series and spectrum behind the plots, in one streamed pass with bounded memory.
//!
//! This module owns [`analyze`] (what `stemgraph analyze` and render reports measure),
//! [`FileAnalysis`] (the figures, serialized with the JSON keys of the command-line contract)
//! and [`Difference`] (one file against a reference). Measurements come from
//! [`crate::analysis::meters`]:
//!
//! - loudness per ITU-R BS.1770-4 / EBU R128 with the default channel weights: a mono file is
//!   one channel (a −23 dBFS mono sine reads −26 LUFS, as BS.1770 and ffmpeg say), stereo is
//!   L + R;
//! - true peak per BS.1770-4 Annex 2: 4× oversampling below 96 kHz, 2× from 96 kHz, 1× from
//!   192 kHz (each at least 192 kHz after oversampling), plus an 8× reading that under-reads
//!   by at most 0.14 dB (4×: 0.55 dB) for content up to 0.45·fs;
//! - RMS with `20·log10(rms)`, so a full-scale sine reads −3.01 dBFS.

use super::json;
use super::meters::{lin_to_db, LevelMeter, LoudnessMeter, TruePeakMeter};
use super::series::{Series, SeriesBuilder, SeriesPoint, DEFAULT_MAX_POINTS};
use super::spectrum::{Spectrum, WelchAnalyzer, DEFAULT_FFT_SIZE};
use crate::io::decode::{DecodeError, Decoder};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why a file could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The file could not be decoded (the error names the file).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The file decodes but cannot be measured.
    #[error("{} cannot be measured: {reason}", path.display())]
    Unmeasurable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What to compute besides the figures.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Welch segment length of the spectrum (a power of two ≥ 64); `None`: no spectrum.
    pub fft_size: Option<usize>,
    /// Most points of the loudness / true-peak series; 0: no series.
    pub max_series_points: usize,
    /// Also measure true peak at 8× oversampling.
    pub true_peak_8x: bool,
}

impl Default for AnalyzeOptions {
    /// Everything: 8192-point spectrum, series of up to 4096 points, the 8× true peak.
    fn default() -> Self {
        Self {
            fft_size: Some(DEFAULT_FFT_SIZE),
            max_series_points: DEFAULT_MAX_POINTS,
            true_peak_8x: true,
        }
    }
}

impl AnalyzeOptions {
    /// Only the figures (no spectrum, no series): what a render report needs.
    pub fn figures_only() -> Self {
        Self {
            fft_size: None,
            max_series_points: 0,
            true_peak_8x: true,
        }
    }
}

/// The figures of one file. JSON keys are snake_case with the unit as suffix; values that are
/// not finite (the −∞ of digital silence) are `null`, and numbers are rounded to 0.001 dB
/// (ratios and seconds to 4 decimals).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileAnalysis {
    /// The file, as given.
    pub path: PathBuf,
    /// The codec's short name (`pcm_s24le`, `flac`, `mp3`, …).
    pub codec: String,
    /// Sample rate, Hz.
    pub sample_rate_hz: u32,
    /// Channel count.
    pub channels: usize,
    /// Length, seconds (frames decoded / rate).
    #[serde(serialize_with = "json::ratio")]
    pub duration_s: f64,
    /// Bits per sample of the container (PCM and lossless codecs).
    pub bits: Option<u32>,
    /// Bits the samples actually use (`None`: finer than 32 bits, i.e. floating-point
    /// content, a lossy codec, or digital silence).
    pub effective_bits: Option<u32>,
    /// Integrated (gated) loudness, LUFS.
    #[serde(serialize_with = "json::db")]
    pub integrated_lufs: f64,
    /// Highest short-term (3 s) loudness, LUFS.
    #[serde(serialize_with = "json::db")]
    pub short_term_max_lufs: f64,
    /// Highest momentary (400 ms) loudness, LUFS.
    #[serde(serialize_with = "json::db")]
    pub momentary_max_lufs: f64,
    /// Loudness range (EBU Tech 3342), LU.
    #[serde(serialize_with = "json::db")]
    pub loudness_range_lu: f64,
    /// True peak at the BS.1770-4 oversampling (see `true_peak_oversampling`), dBTP.
    #[serde(serialize_with = "json::db")]
    pub true_peak_dbtp: f64,
    /// Oversampling factor of `true_peak_dbtp` (4 below 96 kHz).
    pub true_peak_oversampling: u32,
    /// True peak at 8× oversampling, dBTP (`None` when not measured).
    #[serde(serialize_with = "json::opt_db")]
    pub true_peak_8x_dbtp: Option<f64>,
    /// Highest sample magnitude, dBFS.
    #[serde(serialize_with = "json::db")]
    pub sample_peak_dbfs: f64,
    /// RMS over all samples of all channels, dBFS (full-scale sine: −3.01).
    #[serde(serialize_with = "json::db")]
    pub rms_dbfs: f64,
    /// Peak-to-loudness ratio: true peak − integrated loudness, dB (NaN, i.e. `null`, when
    /// the integrated loudness is undefined).
    #[serde(serialize_with = "json::db")]
    pub plr_db: f64,
    /// Crest factor: sample peak − RMS, dB.
    #[serde(serialize_with = "json::db")]
    pub crest_factor_db: f64,
    /// Pearson correlation of L and R (−1..1); `None` for mono.
    #[serde(serialize_with = "json::opt_ratio")]
    pub correlation: Option<f64>,
    /// Side energy over mid energy (0 = mono, 1 = uncorrelated); `None` for mono, infinite
    /// (`null`) for a signal with no mid at all.
    #[serde(serialize_with = "json::opt_ratio")]
    pub width: Option<f64>,
    /// Largest DC offset (mean) of the channels, dBFS.
    #[serde(serialize_with = "json::db")]
    pub dc_offset_dbfs: f64,
    /// Samples at or above 32767/32768 of full scale.
    pub clipped_samples: u64,
    /// Findings for people (word length, silence, clipping, DC, overs).
    pub notes: Vec<String>,
}

/// Everything [`analyze`] measured: the figures and what the plots draw.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The figures.
    pub figures: FileAnalysis,
    /// Loudness and true peak over time (empty unless asked for).
    pub series: Series,
    /// The averaged spectrum (if asked for).
    pub spectrum: Option<Spectrum>,
}

/// Analyses `path` with everything on ([`AnalyzeOptions::default`]).
pub fn analyze(path: &Path) -> Result<Analysis, AnalyzeError> {
    analyze_with(path, &AnalyzeOptions::default())
}

/// Analyses `path`: decodes it once, block by block, into every meter. Memory does not grow
/// with the file's length.
pub fn analyze_with(path: &Path, opts: &AnalyzeOptions) -> Result<Analysis, AnalyzeError> {
    let mut decoder = Decoder::open(path)?;
    let info = decoder.info().clone();
    let mut analyzer =
        StreamAnalyzer::new(info.sample_rate, info.channels, opts).map_err(|reason| {
            AnalyzeError::Unmeasurable {
                path: path.to_path_buf(),
                reason,
            }
        })?;
    let mut bufs = vec![vec![0.0f64; STREAM_BLOCK]; info.channels];
    loop {
        let mut outs: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let n = decoder.read(&mut outs, STREAM_BLOCK)?;
        if n == 0 {
            break;
        }
        let block: Vec<&[f64]> = bufs.iter().map(|b| &b[..n]).collect();
        analyzer.push(&block, n, |from, to| to.copy_from_slice(from));
    }
    Ok(analyzer.finish().into_analysis(StreamInfo {
        path: path.to_path_buf(),
        codec: info.codec,
        bits: info.bits_per_sample,
        lossless: info.lossless,
    }))
}

/// Frames [`analyze_with`] decodes per read (the analysis itself runs on 100 ms hops whatever
/// the reads: see [`StreamAnalyzer`]).
const STREAM_BLOCK: usize = 4096;

/// What a [`StreamAnalyzer`] cannot see in the samples: the file's name and container.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The file.
    pub path: PathBuf,
    /// The codec's short name, as the decoder names it (`pcm_s24le`, `flac`, …).
    pub codec: String,
    /// Bits per sample of the container.
    pub bits: Option<u32>,
    /// Whether the codec is lossless.
    pub lossless: bool,
}

/// The analysis of a stream of samples, pushed block by block: what [`analyze_with`] computes
/// from a decoded file, computed from the samples as they are written instead (a render
/// analyses its deliverables this way). Whatever the blocks pushed, the meters see the same
/// 100 ms hops, so the figures are the same, bit for bit, as those of the file decoded.
pub struct StreamAnalyzer {
    rate: f64,
    channels: usize,
    /// `None` while it is lent ([`StreamAnalyzer::lend_loudness`]).
    loudness: Option<LoudnessMeter>,
    /// Frames from the stream's start whose loudness the lent meter measures (0: none lent).
    lent_frames: u64,
    /// Frames past `lent_frames` pushed while the meter was away (never expected: what
    /// [`StreamAnalyzer::return_loudness`] refuses).
    missed: u64,
    /// The BS.1770 true peak (4× under 96 kHz), or, when the 8× one is asked for too, an 8×
    /// meter reading it as its nested factor (the same bits from one scan).
    true_peak: TruePeakMeter,
    level: LevelMeter,
    welch: Option<WelchAnalyzer>,
    series: Option<SeriesBuilder>,
    history: Vec<(f64, f64, f64)>,
    /// The hop being gathered (one plane per channel, `hop` frames) and how full it is.
    hop: Vec<Vec<f64>>,
    fill: usize,
    frames: u64,
    /// Whole hops measured but for their loudness, oldest first, waiting to be K-weighted beside
    /// another analyzer's ([`StreamAnalyzer::pair_parked`]); only once [`Self::park_loudness`]
    /// asked for it.
    parked: std::collections::VecDeque<Vec<Vec<f64>>>,
    /// Hop buffers to gather into (`None`: hops are not parked).
    spare: Option<Vec<Vec<Vec<f64>>>>,
}

/// Hops an analyzer keeps for a partner at most ([`StreamAnalyzer::park_loudness`]): a
/// resampled deliverable's hops come a few hops after the session rate's (the converter's delay
/// and its 4096-frame blocks); past this, the oldest is measured alone.
const MAX_PARKED: usize = 6;

/// Runs `f` on frames `range` of each of `planes` (on the stack for up to eight channels).
fn with_planes_mut<R>(
    planes: &mut [Vec<f64>],
    range: std::ops::Range<usize>,
    f: impl FnOnce(&mut [&mut [f64]]) -> R,
) -> R {
    const ON_STACK: usize = 8;
    if planes.len() > ON_STACK {
        let mut v: Vec<&mut [f64]> = planes.iter_mut().map(|p| &mut p[range.clone()]).collect();
        return f(&mut v);
    }
    let channels = planes.len();
    let mut on_stack: [&mut [f64]; ON_STACK] = Default::default();
    for (slot, p) in on_stack.iter_mut().zip(planes.iter_mut()) {
        *slot = &mut p[range.clone()];
    }
    f(&mut on_stack[..channels])
}

impl StreamAnalyzer {
    /// An analyzer of `channels` channels at `sample_rate`; the reason when such a stream
    /// cannot be measured.
    pub fn new(sample_rate: u32, channels: usize, opts: &AnalyzeOptions) -> Result<Self, String> {
        if channels == 0 {
            return Err("it has no channels".into());
        }
        let rate = f64::from(sample_rate);
        if rate < 8000.0 {
            return Err(format!(
                "its sample rate of {sample_rate} Hz is below the 8 kHz loudness meters need"
            ));
        }
        // Hops of 100 ms, the loudness meter's: each hop's true peak is known when its
        // loudness is.
        let hop = libm::round(rate / 10.0) as usize;
        Ok(Self {
            rate,
            channels,
            loudness: Some(LoudnessMeter::new(rate, channels)),
            lent_frames: 0,
            missed: 0,
            true_peak: if opts.true_peak_8x {
                TruePeakMeter::new(rate, channels, 8)
                    .with_nested(TruePeakMeter::bs1770_factor(rate))
            } else {
                TruePeakMeter::bs1770(rate, channels)
            },
            level: LevelMeter::new(channels),
            welch: opts.fft_size.map(|n| WelchAnalyzer::new(rate, channels, n)),
            series: (opts.max_series_points > 0)
                .then(|| SeriesBuilder::new(hop as f64 / rate, opts.max_series_points)),
            history: Vec::with_capacity(8),
            hop: vec![vec![0.0; hop]; channels],
            fill: 0,
            frames: 0,
            parked: std::collections::VecDeque::new(),
            spare: None,
        })
    }

    /// From now on, keeps each whole hop's loudness to be measured beside another analyzer's
    /// hops ([`Self::pair_parked`]: two stereo meters K-weighted side by side, at their own
    /// rates, for about the time of one) rather than at once; [`Self::finish`] measures what
    /// is left alone. The readings are the same, bit for bit: each meter still takes its own
    /// samples in order. Not for an analyzer whose meter is lent, that makes a series, or that
    /// is not stereo (nothing is parked then). Allocates the hop buffers.
    pub fn park_loudness(&mut self) {
        if self.channels != 2 || self.series.is_some() || self.spare.is_some() {
            return;
        }
        let hop = self.hop[0].len();
        self.spare = Some(vec![vec![vec![0.0; hop]; 2]; MAX_PARKED]);
        self.parked.reserve(MAX_PARKED);
    }

    /// Whether a whole hop waits for its loudness ([`Self::park_loudness`]).
    pub fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Measures the loudness of the hops both analyzers keep ([`Self::park_loudness`]), oldest
    /// first, one of each at a time, K-weighted side by side ([`LoudnessMeter::push_pair`]);
    /// the hops one of them has more stay for later.
    pub fn pair_parked(a: &mut StreamAnalyzer, b: &mut StreamAnalyzer) {
        while !a.parked.is_empty() && !b.parked.is_empty() {
            let (ha, hb) = (a.unpark(), b.unpark());
            let (pa, pb): ([&[f64]; 2], [&[f64]; 2]) = ([&ha[0], &ha[1]], [&hb[0], &hb[1]]);
            match (a.loudness.as_mut(), b.loudness.as_mut()) {
                (Some(ma), Some(mb)) => LoudnessMeter::push_pair(ma, &pa, mb, &pb),
                // (Never: only a meter at hand parks its hops.)
                (ma, mb) => {
                    ma.into_iter().for_each(|m| m.push(&pa));
                    mb.into_iter().for_each(|m| m.push(&pb));
                }
            }
            a.give_back(ha);
            b.give_back(hb);
        }
    }

    /// The oldest parked hop (there is one).
    fn unpark(&mut self) -> Vec<Vec<f64>> {
        self.parked.pop_front().expect("a parked hop")
    }

    /// A parked hop's buffers, measured, back to gather into.
    fn give_back(&mut self, planes: Vec<Vec<f64>>) {
        if let Some(spare) = self.spare.as_mut() {
            spare.push(planes);
        }
    }

    /// Measures the loudness of the oldest parked hop alone.
    fn measure_parked_alone(&mut self) {
        let h = self.unpark();
        if let Some(m) = self.loudness.as_mut() {
            m.push(&[&h[0][..], &h[1][..]]);
        }
        self.give_back(h);
    }

    /// Channels analysed.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Lends the loudness meter, before anything was pushed, to be fed the first `frames` frames
    /// of the stream elsewhere (e.g. K-weighted beside another meter of a related signal): the
    /// analyzer then leaves those frames out of it. `None` when something was pushed already,
    /// or a series (which reads the meter hop by hop) is made.
    pub fn lend_loudness(&mut self, frames: u64) -> Option<LoudnessMeter> {
        if frames == 0 || self.frames > 0 || self.fill > 0 || self.series.is_some() {
            return None;
        }
        let meter = self.loudness.take()?;
        self.lent_frames = frames;
        Some(meter)
    }

    /// Whether the loudness meter is lent ([`Self::lend_loudness`]).
    pub fn loudness_is_lent(&self) -> bool {
        self.loudness.is_none()
    }

    /// Takes back the meter [`Self::lend_loudness`] lent, which must have been fed exactly the
    /// frames lent, all of which the stream must have reached (and nothing past them measured
    /// meanwhile); the reason otherwise (the meter is dropped: its readings would not be those
    /// of the stream). A meter given back before anything was pushed (to it or here) is as if
    /// never lent.
    pub fn return_loudness(&mut self, meter: LoudnessMeter) -> Result<(), String> {
        if self.loudness.is_some() {
            return Err("no loudness meter was lent".into());
        }
        let reached = self.frames + self.fill as u64;
        if meter.frames() == 0 && reached == 0 {
            self.lent_frames = 0;
            self.loudness = Some(meter);
            return Ok(());
        }
        if meter.frames() != self.lent_frames || self.missed > 0 || reached < self.lent_frames {
            return Err(format!(
                "the lent loudness meter measured {} frames of the {} lent; the stream reached \
                 {reached} frames with {} unmeasured",
                meter.frames(),
                self.lent_frames,
                self.missed
            ));
        }
        self.loudness = Some(meter);
        Ok(())
    }

    /// Takes `frames` frames of `planes` (one slice per channel), mapped by `map(from, to)`
    /// first (`to` as long as `from`: e.g. to the values a decoder reads back after
    /// quantization, [`crate::io::wav::read_back`]; `copy_from_slice` for the samples as they
    /// are).
    pub fn push(&mut self, planes: &[&[f64]], frames: usize, map: impl Fn(&[f64], &mut [f64])) {
        assert_eq!(planes.len(), self.channels, "one plane per channel");
        let hop = self.hop[0].len();
        let mut at = 0;
        while at < frames {
            let n = (frames - at).min(hop - self.fill);
            for (dst, src) in self.hop.iter_mut().zip(planes) {
                map(&src[at..at + n], &mut dst[self.fill..self.fill + n]);
            }
            self.fill += n;
            at += n;
            if self.fill == hop {
                self.measure_hop();
            }
        }
    }

    /// [`StreamAnalyzer::push`] with the samples written by `fill(range, planes)`: frames
    /// `range` of the `frames` pushed into `planes` (one slice per channel, `range.len()` long),
    /// for a producer that makes them for every channel at once (e.g. with the integers a file
    /// is written from: [`crate::io::quantize::quantize_planes`]).
    pub fn push_with(
        &mut self,
        frames: usize,
        mut fill: impl FnMut(std::ops::Range<usize>, &mut [&mut [f64]]),
    ) {
        let hop = self.hop[0].len();
        let mut at = 0;
        while at < frames {
            let n = (frames - at).min(hop - self.fill);
            let start = self.fill;
            with_planes_mut(&mut self.hop, start..start + n, |planes| {
                fill(at..at + n, planes)
            });
            self.fill += n;
            at += n;
            if self.fill == hop {
                self.measure_hop();
            }
        }
    }

    /// Runs the gathered samples through every meter; a full hop also adds its points to the
    /// series.
    fn measure_hop(&mut self) {
        let fill = std::mem::take(&mut self.fill);
        if fill == 0 {
            return;
        }
        let start = self.frames;
        self.frames += fill as u64;
        // Frames a lent meter measures elsewhere are skipped.
        let own = (self.lent_frames.max(start) - start).min(fill as u64) as usize;
        // A whole hop of a meter not lent is parked for a partner (its buffers swapped for
        // spare ones below, once the other meters have read it).
        let park = self.spare.is_some()
            && fill == self.hop[0].len()
            && own == 0
            && self.lent_frames == 0
            && self.loudness.is_some();
        if !park {
            // Parked hops come first: each meter takes its samples in order.
            while self.has_parked() {
                self.measure_parked_alone();
            }
        }
        let block: Vec<&[f64]> = self.hop.iter().map(|b| &b[..fill]).collect();
        if own < fill && !park {
            match self.loudness.as_mut() {
                Some(l) if own == 0 => l.push(&block),
                Some(l) => {
                    let rest: Vec<&[f64]> = block.iter().map(|b| &b[own..]).collect();
                    l.push(&rest);
                }
                None => self.missed += (fill - own) as u64,
            }
        }
        self.true_peak.push(&block);
        self.level.push(&block);
        if let Some(w) = self.welch.as_mut() {
            w.push(&block);
        }
        drop(block);
        if park {
            if self.spare.as_ref().is_some_and(Vec::is_empty) {
                // All kept already: the oldest is measured alone, its buffers freed.
                self.measure_parked_alone();
            }
            let spare = self.spare.as_mut().expect("checked above");
            let fresh = spare.pop().expect("one free at least");
            self.parked
                .push_back(std::mem::replace(&mut self.hop, fresh));
        }
        if fill < self.hop[0].len() {
            return;
        }
        // Only the series needs each hop's peak: without it the meter's interval runs the
        // whole file, so its scan skips every window that cannot raise the peak seen so far.
        if let Some(s) = self.series.as_mut() {
            let hop_peak = lin_to_db(match self.true_peak.nested_factor() {
                Some(_) => self.true_peak.take_nested_interval_peak(),
                None => self.true_peak.take_interval_peak(),
            });
            self.history.clear();
            if let Some(l) = self.loudness.as_mut() {
                l.drain_history(&mut self.history);
            }
            for &(t_s, momentary_lufs, short_term_lufs) in &self.history {
                s.push(SeriesPoint {
                    t_s,
                    momentary_lufs,
                    short_term_lufs,
                    true_peak_dbtp: hop_peak,
                });
            }
        }
    }

    /// The figures of everything pushed, for any file holding these samples
    /// ([`Measured::figures`]).
    pub fn finish(mut self) -> Measured {
        // The parked hops first, in order, then the last, partial hop (a stream ends once: its
        // series points are not taken).
        while self.has_parked() {
            self.measure_parked_alone();
        }
        self.spare = None;
        self.measure_hop();
        let StreamAnalyzer {
            rate,
            channels,
            loudness,
            mut true_peak,
            level,
            welch,
            series,
            frames,
            ..
        } = self;
        let loudness = loudness.expect("a lent loudness meter is given back before finishing");
        true_peak.finish();
        let integrated = loudness.integrated_lufs();
        // The BS.1770 reading, and the 8× one when asked for.
        let (tp, tp_8x, factor) = match true_peak.nested_factor() {
            Some(f) => (
                true_peak.nested_true_peak_dbtp(),
                Some(true_peak.true_peak_dbtp()),
                f,
            ),
            None => (true_peak.true_peak_dbtp(), None, true_peak.factor()),
        };
        let stereo = channels >= 2;
        let dc = (0..channels)
            .map(|c| level.dc_offset(c).abs())
            .fold(0.0, f64::max);
        let figures = FileAnalysis {
            path: PathBuf::new(),
            codec: String::new(),
            sample_rate_hz: rate as u32,
            channels,
            duration_s: frames as f64 / rate,
            bits: None,
            // All-zero samples fit any word length: say nothing rather than "8 bits".
            effective_bits: level.effective_bits().filter(|_| level.sample_peak() > 0.0),
            integrated_lufs: integrated,
            short_term_max_lufs: loudness.short_term_max_lufs(),
            momentary_max_lufs: loudness.momentary_max_lufs(),
            loudness_range_lu: loudness.loudness_range_lu(),
            true_peak_dbtp: tp,
            true_peak_oversampling: factor as u32,
            true_peak_8x_dbtp: tp_8x,
            sample_peak_dbfs: level.sample_peak_dbfs(),
            rms_dbfs: level.rms_dbfs(),
            // Undefined when nothing passes the gate.
            plr_db: if integrated.is_finite() {
                tp - integrated
            } else {
                f64::NAN
            },
            crest_factor_db: level.crest_factor_db(),
            correlation: stereo.then(|| level.correlation()),
            width: stereo.then(|| level.width()),
            dc_offset_dbfs: lin_to_db(dc),
            clipped_samples: level.clipped_samples(),
            notes: Vec::new(),
        };
        Measured {
            figures,
            clip_runs: level.clip_runs(),
            series: series.map(SeriesBuilder::finish).unwrap_or_default(),
            spectrum: welch.map(WelchAnalyzer::finish),
        }
    }
}

/// What a [`StreamAnalyzer`] measured: the same for every file holding the samples (a WAV and
/// a FLAC of the same PCM), told apart by [`Measured::figures`].
#[derive(Debug, Clone)]
pub struct Measured {
    /// The figures, without the file's name and container.
    figures: FileAnalysis,
    /// Runs of 3 or more clipped samples (for the notes).
    clip_runs: u64,
    series: Series,
    spectrum: Option<Spectrum>,
}

impl Measured {
    /// The figures of the file `info` describes, with its notes.
    pub fn figures(&self, info: StreamInfo) -> FileAnalysis {
        let mut f = self.figures.clone();
        f.path = info.path;
        f.codec = info.codec;
        f.bits = info.bits;
        f.notes = notes(&f, info.lossless, self.clip_runs);
        f
    }

    /// Everything measured, as the file `info` describes it.
    pub fn into_analysis(self, info: StreamInfo) -> Analysis {
        Analysis {
            figures: self.figures(info),
            series: self.series,
            spectrum: self.spectrum,
        }
    }
}

/// DC offsets above this are worth a note, dBFS.
const DC_NOTE_DBFS: f64 = -50.0;
/// True peaks above this are worth a note (the usual streaming ceiling), dBTP.
const TRUE_PEAK_NOTE_DBTP: f64 = -1.0;

/// Findings for people, in a fixed order.
fn notes(f: &FileAnalysis, lossless: bool, clip_runs: u64) -> Vec<String> {
    let mut out = Vec::new();
    if f.sample_peak_dbfs == f64::NEG_INFINITY {
        out.push("digital silence: every sample is zero".to_string());
    } else if f.integrated_lufs == f64::NEG_INFINITY {
        out.push("nothing above the −70 LUFS gate: integrated loudness is undefined".into());
    }
    if let (Some(bits), Some(eff)) = (f.bits, f.effective_bits) {
        if lossless && eff < bits && f.sample_peak_dbfs > f64::NEG_INFINITY {
            let float = f.codec.starts_with("pcm_f");
            out.push(format!(
                "{eff}-bit content in a {bits}-bit{} file",
                if float { " float" } else { "" }
            ));
        }
    }
    if clip_runs > 0 {
        out.push(format!(
            "clipping: {} samples at full scale, {clip_runs} run(s) of 3 or more",
            f.clipped_samples
        ));
    }
    if f.dc_offset_dbfs > DC_NOTE_DBFS {
        out.push(format!("DC offset of {:.1} dBFS", f.dc_offset_dbfs));
    }
    if f.true_peak_dbtp > TRUE_PEAK_NOTE_DBTP {
        out.push(format!(
            "true peak {:.2} dBTP is above {TRUE_PEAK_NOTE_DBTP} dBTP",
            f.true_peak_dbtp
        ));
    }
    out
}

/// One file against a reference: this file's figure minus the reference's. JSON keys name
/// the unit of the difference (`integrated_lu`: a difference of LUFS is in LU).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The file.
    pub path: PathBuf,
    /// The reference.
    pub reference: PathBuf,
    /// Δ integrated loudness, LU.
    #[serde(serialize_with = "json::db")]
    pub integrated_lu: f64,
    /// Δ short-term maximum, LU.
    #[serde(serialize_with = "json::db")]
    pub short_term_max_lu: f64,
    /// Δ momentary maximum, LU.
    #[serde(serialize_with = "json::db")]
    pub momentary_max_lu: f64,
    /// Δ loudness range, LU.
    #[serde(serialize_with = "json::db")]
    pub loudness_range_lu: f64,
    /// Δ true peak, dB.
    #[serde(serialize_with = "json::db")]
    pub true_peak_db: f64,
    /// Δ true peak at 8×, dB (`None` if either was not measured).
    #[serde(serialize_with = "json::opt_db")]
    pub true_peak_8x_db: Option<f64>,
    /// Δ sample peak, dB.
    #[serde(serialize_with = "json::db")]
    pub sample_peak_db: f64,
    /// Δ RMS, dB.
    #[serde(serialize_with = "json::db")]
    pub rms_db: f64,
    /// Δ PLR, dB.
    #[serde(serialize_with = "json::db")]
    pub plr_db: f64,
    /// Δ crest factor, dB.
    #[serde(serialize_with = "json::db")]
    pub crest_factor_db: f64,
    /// Δ correlation (`None` if either is mono).
    #[serde(serialize_with = "json::opt_ratio")]
    pub correlation: Option<f64>,
    /// Δ width (`None` if either is mono).
    #[serde(serialize_with = "json::opt_ratio")]
    pub width: Option<f64>,
    /// Δ duration, seconds.
    #[serde(serialize_with = "json::ratio")]
    pub duration_s: f64,
}

impl Difference {
    /// `file` minus `reference`. A difference involving −∞ (silence) is not finite and
    /// serializes as `null`.
    pub fn between(file: &FileAnalysis, reference: &FileAnalysis) -> Self {
        // Equal readings (two silences included) differ by 0.
        let d = |a: f64, b: f64| if a == b { 0.0 } else { a - b };
        let od = |a: Option<f64>, b: Option<f64>| Some(d(a?, b?));
        Self {
            path: file.path.clone(),
            reference: reference.path.clone(),
            integrated_lu: d(file.integrated_lufs, reference.integrated_lufs),
            short_term_max_lu: d(file.short_term_max_lufs, reference.short_term_max_lufs),
            momentary_max_lu: d(file.momentary_max_lufs, reference.momentary_max_lufs),
            loudness_range_lu: d(file.loudness_range_lu, reference.loudness_range_lu),
            true_peak_db: d(file.true_peak_dbtp, reference.true_peak_dbtp),
            true_peak_8x_db: od(file.true_peak_8x_dbtp, reference.true_peak_8x_dbtp),
            sample_peak_db: d(file.sample_peak_dbfs, reference.sample_peak_dbfs),
            rms_db: d(file.rms_dbfs, reference.rms_dbfs),
            plr_db: d(file.plr_db, reference.plr_db),
            crest_factor_db: d(file.crest_factor_db, reference.crest_factor_db),
            correlation: od(file.correlation, reference.correlation),
            width: od(file.width, reference.width),
            duration_s: file.duration_s - reference.duration_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stereo programme with loud and quiet stretches, `n` frames.
    fn programme(n: usize) -> [Vec<f64>; 2] {
        let mut noise = crate::dsp::test_signal::noise(0x51ed_270b_2a4f_8c3d);
        let l: Vec<f64> = (0..n)
            .map(|i| {
                let level = if (i / 20_000) % 2 == 0 { 0.5 } else { 0.05 };
                level * noise()
            })
            .collect();
        let r = l.iter().map(|x| 0.7 * x + 0.01).collect();
        [l, r]
    }

    fn push_all(a: &mut StreamAnalyzer, p: &[Vec<f64>; 2], range: std::ops::Range<usize>) {
        for at in range.clone().step_by(1000) {
            let end = (at + 1000).min(range.end);
            a.push(&[&p[0][at..end], &p[1][at..end]], end - at, |f, t| {
                t.copy_from_slice(f)
            });
        }
    }

    /// Two analyzers that park their hops' loudness ([`StreamAnalyzer::park_loudness`]) and
    /// K-weight them side by side ([`StreamAnalyzer::pair_parked`]) read, bit for bit, what
    /// each reads alone: at 48 and 44.1 kHz, pushed in blocks of other lengths, the second
    /// lagging by a few hops and, for a while, by more than it may keep (some measured alone).
    #[test]
    fn parked_hops_paired_give_the_same_figures() {
        let opts = AnalyzeOptions::figures_only();
        let (a, b) = (programme(300_000), programme(280_000));
        let b: [Vec<f64>; 2] = [b[1].clone(), b[0].iter().map(|x| -0.5 * x).collect()];
        let alone = |rate: u32, p: &[Vec<f64>; 2]| {
            let mut m = StreamAnalyzer::new(rate, 2, &opts).unwrap();
            push_all(&mut m, p, 0..p[0].len());
            format!("{:?}", m.finish().figures)
        };
        let (want_a, want_b) = (alone(48_000, &a), alone(44_100, &b));
        let mut pa = StreamAnalyzer::new(48_000, 2, &opts).unwrap();
        let mut pb = StreamAnalyzer::new(44_100, 2, &opts).unwrap();
        pa.park_loudness();
        pb.park_loudness();
        let (mut at_a, mut at_b, mut paired) = (0, 0, 0);
        while at_a < a[0].len() || at_b < b[0].len() {
            let end = (at_a + 1000).min(a[0].len());
            pa.push(&[&a[0][at_a..end], &a[1][at_a..end]], end - at_a, |f, t| {
                t.copy_from_slice(f)
            });
            at_a = end;
            // `b` starts 20 000 frames late and stalls between 100 000 and 140 000.
            if at_a > 20_000 && !(100_000..140_000).contains(&at_a) {
                let end = (at_b + 1300).min(b[0].len());
                pb.push(&[&b[0][at_b..end], &b[1][at_b..end]], end - at_b, |f, t| {
                    t.copy_from_slice(f)
                });
                at_b = end;
            }
            paired += usize::from(pa.has_parked() && pb.has_parked());
            StreamAnalyzer::pair_parked(&mut pa, &mut pb);
            assert!(!(pa.has_parked() && pb.has_parked()));
        }
        assert!(paired > 40, "{paired} times paired");
        assert_eq!(format!("{:?}", pa.finish().figures), want_a);
        assert_eq!(format!("{:?}", pb.finish().figures), want_b);
    }

    /// A loudness meter lent for the first frames and fed them elsewhere gives, once back, the
    /// figures of the analyzer that kept it, to the bit; one fed other frames, or given back
    /// before the stream reached them, is refused.
    #[test]
    fn a_lent_loudness_meter_gives_the_same_figures() {
        let (rate, n, lent) = (48_000u32, 100_000usize, 70_000usize);
        let p = programme(n);
        let opts = AnalyzeOptions::figures_only();
        let mut kept = StreamAnalyzer::new(rate, 2, &opts).unwrap();
        push_all(&mut kept, &p, 0..n);
        let want = format!("{:?}", kept.finish().figures);

        let mut lender = StreamAnalyzer::new(rate, 2, &opts).unwrap();
        let mut meter = lender
            .lend_loudness(lent as u64)
            .expect("nothing pushed yet");
        assert!(lender.loudness_is_lent());
        assert!(lender.lend_loudness(lent as u64).is_none(), "lent once");
        meter.push(&[&p[0][..lent], &p[1][..lent]]);
        push_all(&mut lender, &p, 0..lent);
        lender.return_loudness(meter).unwrap();
        push_all(&mut lender, &p, lent..n);
        assert_eq!(format!("{:?}", lender.finish().figures), want);

        // Fed a frame too few; given back before the stream reached the frames lent.
        let mut short = StreamAnalyzer::new(rate, 2, &opts).unwrap();
        let mut meter = short.lend_loudness(lent as u64).unwrap();
        meter.push(&[&p[0][..lent - 1], &p[1][..lent - 1]]);
        push_all(&mut short, &p, 0..lent);
        assert!(short.return_loudness(meter).is_err());
        let mut early = StreamAnalyzer::new(rate, 2, &opts).unwrap();
        let mut meter = early.lend_loudness(lent as u64).unwrap();
        meter.push(&[&p[0][..lent], &p[1][..lent]]);
        push_all(&mut early, &p, 0..lent - 1);
        assert!(early.return_loudness(meter).is_err());
        // Frames past those lent measured while it was away.
        let mut over = StreamAnalyzer::new(rate, 2, &opts).unwrap();
        let mut meter = over.lend_loudness(lent as u64).unwrap();
        meter.push(&[&p[0][..lent], &p[1][..lent]]);
        push_all(&mut over, &p, 0..n);
        assert!(over.return_loudness(meter).is_err());

        // Given back unused, it is as if never lent; nothing is lent once something was pushed.
        let mut unused = StreamAnalyzer::new(rate, 2, &opts).unwrap();
        let meter = unused.lend_loudness(lent as u64).unwrap();
        unused.return_loudness(meter).unwrap();
        push_all(&mut unused, &p, 0..n);
        assert!(unused.lend_loudness(1).is_none());
        assert_eq!(format!("{:?}", unused.finish().figures), want);
    }
}
