//! What a render measures for its report while it runs: meter taps on the stem and output
//! nodes, and the gain-reduction statistics the processors keep in their telemetry.
//!
//! # Realtime safety
//! [`MeterTap::observe`] runs once per block inside the render loop: they never allocate, lock or do I/O (everything is sized in
//! [`ReportCollector::new`] and [`ReportCollector::watch`]).

use crate::analysis::meters::{LevelMeter, LoudnessMeter, TruePeakMeter};
use crate::dsp::buffer::MAX_CHANNELS;
use crate::dsp::telemetry::{BlockStatistics, GAIN_REDUCTION_DB};
use crate::dsp::AudioBuffer;
use crate::dsp::{AudioRef, Telemetry};
use crate::engine::{Schedule, Tap};
use crate::graph::spec::{GraphSpec, NodeKind};
use crate::io::wav::{read_back, WavFormat};
use serde::Serialize;
use std::sync::Arc;

use crate::analysis::json;

/// Taps with the id of the node each observes, as `CompileOptions::taps` takes them and
/// `Schedule::take_taps` returns them.
pub type NodeTaps = Vec<(String, Box<dyn Tap>)>;

/// Gain reduction from which a dynamics processor counts as active, dB.
pub use crate::dsp::telemetry::ACTIVE_GAIN_REDUCTION_DB;

/// Loudness, peaks and RMS of one node's signal over the whole render.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeMeters {
    /// Integrated loudness, LUFS.
    #[serde(serialize_with = "json::db")]
    pub integrated_lufs: f64,
    /// Highest short-term loudness, LUFS.
    #[serde(serialize_with = "json::db")]
    pub short_term_max_lufs: f64,
    /// Highest momentary loudness, LUFS.
    #[serde(serialize_with = "json::db")]
    pub momentary_max_lufs: f64,
    /// Loudness range, LU.
    #[serde(serialize_with = "json::db")]
    pub loudness_range_lu: f64,
    /// True peak (BS.1770-4 oversampling), dBTP.
    #[serde(serialize_with = "json::db")]
    pub true_peak_dbtp: f64,
    /// Sample peak, dBFS.
    #[serde(serialize_with = "json::db")]
    pub sample_peak_dbfs: f64,
    /// RMS over all samples, dBFS.
    #[serde(serialize_with = "json::db")]
    pub rms_dbfs: f64,
}

/// A tap that meters a node's output: loudness, true peak, sample peak and RMS.
pub struct MeterTap {
    loudness: LoudnessMeter,
    true_peak: TruePeakMeter,
    level: LevelMeter,
    /// Blocks whose channel count did not match the meters (skipped, never expected).
    mismatched: u64,
    /// The [`ReportCollector`] that made it (0: made by someone else).
    owner: u64,
    /// Frames to meter (the rest is ignored): a stem's own length, not the render's tail.
    limit: u64,
    /// Frames seen so far.
    seen: u64,
    /// A second loudness meter of the same signal over other frames ([`ReportCollector::twin`]).
    twin: Option<Twin>,
}

/// A loudness meter a [`MeterTap`] feeds beside its own: frames `from..to` of what it observes
/// (an output latency-trimmed), K-weighted in the same pass as the tap's meter
/// ([`LoudnessMeter::push_pair`]), as observed or as a file of some format reads them back.
struct Twin {
    loudness: LoudnessMeter,
    from: u64,
    to: u64,
    /// When set, the twin is fed each sample as a file of this format reads it back
    /// ([`read_back`]: a deliverable's samples), made in `back` (a block per channel).
    read_back: Option<(WavFormat, AudioBuffer)>,
}

impl Twin {
    /// Feeds the twin `planar` (as observed; read back first when it says so), K-weighted
    /// beside `beside`, which takes `planar` as observed, when given.
    fn push(&mut self, planar: &[&[f64]], mut beside: Option<&mut LoudnessMeter>) {
        let Some((format, back)) = self.read_back.as_mut() else {
            match beside {
                Some(b) => LoudnessMeter::push_pair(b, planar, &mut self.loudness, planar),
                None => self.loudness.push(planar),
            }
            return;
        };
        let ch = planar.len();
        let (n, step) = (planar.first().map_or(0, |c| c.len()), back.max_frames());
        let mut at = 0;
        while at < n {
            let m = step.min(n - at);
            let mut part: [&[f64]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
            for (c, p) in part.iter_mut().enumerate().take(ch) {
                *p = &planar[c][at..at + m];
                read_back(p, back.channel_mut(c, m), *format);
            }
            let back = back.view(m);
            back.with_planes(|read| match beside.as_deref_mut() {
                Some(b) => LoudnessMeter::push_pair(b, &part[..ch], &mut self.loudness, read),
                None => self.loudness.push(read),
            });
            at += m;
        }
    }
}

/// A fresh, non-zero collector id.
fn next_owner() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl MeterTap {
    /// A tap for a `channels`-channel node at `sample_rate`. Allocates: build it on the
    /// control side.
    pub fn new(sample_rate: f64, channels: usize) -> Self {
        let mut loudness = LoudnessMeter::new(sample_rate, channels);
        // Only the figures: no series, so nothing is buffered per hop.
        loudness.set_history_capacity(0);
        Self {
            loudness,
            true_peak: TruePeakMeter::bs1770(sample_rate, channels),
            level: LevelMeter::new(channels),
            mismatched: 0,
            owner: 0,
            limit: u64::MAX,
            seen: 0,
            twin: None,
        }
    }

    /// Meters only the first `frames` frames observed.
    pub fn with_limit(mut self, frames: u64) -> Self {
        self.limit = frames;
        self
    }

    /// The readings so far (completes the true-peak filter's tail first).
    pub fn meters(&mut self) -> NodeMeters {
        self.true_peak.finish();
        NodeMeters {
            integrated_lufs: self.loudness.integrated_lufs(),
            short_term_max_lufs: self.loudness.short_term_max_lufs(),
            momentary_max_lufs: self.loudness.momentary_max_lufs(),
            loudness_range_lu: self.loudness.loudness_range_lu(),
            true_peak_dbtp: self.true_peak.true_peak_dbtp(),
            sample_peak_dbfs: self.level.sample_peak_dbfs(),
            rms_dbfs: self.level.rms_dbfs(),
        }
    }

    /// Blocks skipped because their channel count differed from the meters'.
    pub fn mismatched_blocks(&self) -> u64 {
        self.mismatched
    }
}

impl Tap for MeterTap {
    fn observe(&mut self, audio: AudioRef<'_>) {
        let ch = audio.channels();
        if ch != self.level.channels() || ch > MAX_CHANNELS {
            self.mismatched += 1;
            return;
        }
        let frames = audio.frames();
        let n = (frames as u64).min(self.limit - self.seen.min(self.limit)) as usize;
        let at = self.seen;
        self.seen += frames as u64;
        let mut whole: [&[f64]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
        for (c, p) in whole.iter_mut().enumerate().take(ch) {
            *p = audio.channel(c);
        }
        let whole = &whole[..ch];
        // The twin's frames of this block.
        let (t0, t1) = match &self.twin {
            Some(t) => {
                let local = |f: u64| (f.max(at) - at).min(frames as u64) as usize;
                (local(t.from), local(t.to))
            }
            None => (0, 0),
        };
        if n == 0 && t0 == t1 {
            return;
        }
        let part = |a: usize, b: usize| {
            let mut p: [&[f64]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
            for (c, s) in p.iter_mut().enumerate().take(ch) {
                *s = &whole[c][a..b];
            }
            p
        };
        // Both meters over the frames both take, each alone over the rest (each meter's
        // frames stay in order).
        let (lo, hi) = (t0.min(n), t1.min(n).max(t0.min(n)));
        match self.twin.as_mut() {
            Some(t) if hi > lo => {
                self.loudness.push(&part(0, lo)[..ch]);
                t.push(&part(lo, hi)[..ch], Some(&mut self.loudness));
                self.loudness.push(&part(hi, n)[..ch]);
                t.push(&part(hi.max(t0), t1)[..ch], None);
            }
            Some(t) => {
                self.loudness.push(&part(0, n)[..ch]);
                t.push(&part(t0, t1)[..ch], None);
            }
            None => self.loudness.push(&part(0, n)[..ch]),
        }
        let planar = &part(0, n)[..ch];
        self.true_peak.push(planar);
        self.level.push(planar);
    }
}

/// Gain-reduction statistics of one dynamics processor, block by block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GainReduction {
    /// The node id.
    pub node: String,
    /// Its processor kind (`limiter`, `compressor`, …).
    pub kind: String,
    /// Largest gain reduction, dB (0 if never active).
    #[serde(serialize_with = "json::db")]
    pub max_db: f64,
    /// Mean gain reduction over the blocks where it was active, dB (0 if never).
    #[serde(serialize_with = "json::db")]
    pub mean_active_db: f64,
    /// Share of the render's frames in blocks with at least 0.1 dB of gain reduction, %.
    #[serde(serialize_with = "json::db")]
    pub active_percent: f64,
}

/// Where the statistics behind a [`GainReduction`] accumulate: the processor's telemetry, block
/// by block on the thread that runs it ([`Telemetry::set_block`]), so they are the same
/// whatever the thread count.
#[derive(Debug)]
struct GainReductionMeter {
    node: String,
    kind: String,
    telemetry: Arc<Telemetry>,
}

impl GainReductionMeter {
    /// The statistics, as a share of `frames` when given (the frames of the pass; otherwise
    /// of every frame recorded).
    fn result(&self, frames: Option<u64>) -> GainReduction {
        let BlockStatistics {
            max,
            active_sum,
            active_frames,
            frames: recorded,
        } = self.telemetry.block_statistics();
        let frames = frames.filter(|&f| f > 0).unwrap_or(recorded);
        GainReduction {
            node: self.node.clone(),
            kind: self.kind.clone(),
            max_db: max.max(0.0),
            mean_active_db: if active_frames > 0 {
                active_sum / active_frames as f64
            } else {
                0.0
            },
            active_percent: if frames > 0 {
                100.0 * active_frames.min(frames) as f64 / frames as f64
            } else {
                0.0
            },
        }
    }
}

/// The render's side of a report: says which taps to attach, finds the processors' telemetry and
/// hands back the readings at the end.
pub struct ReportCollector {
    /// Marks this collector's taps.
    owner: u64,
    /// Node ids of the stems and outputs tapped, in the order their taps were made.
    tapped: Vec<String>,
    gain_reduction: Vec<GainReductionMeter>,
    /// Processor kind of each processor node, for the gain-reduction table.
    kinds: Vec<(String, String)>,
    /// Readings known without metering (stems found in the [`super::StemCache`]).
    known: Vec<(String, NodeMeters)>,
}

/// The readings of the taps a [`ReportCollector`] made, by node id.
#[derive(Debug, Clone, Default)]
pub struct CollectedMeters {
    /// Node id → readings, for every tapped stem and output node.
    pub nodes: Vec<(String, NodeMeters)>,
    /// Gain-reduction statistics of every processor publishing `gain_reduction_db`.
    pub gain_reduction: Vec<GainReduction>,
}

impl ReportCollector {
    /// A collector for `graph` rendered at `sample_rate`, with the meter taps to attach
    /// (through `CompileOptions::taps`): one on every stem source and every output that
    /// reaches an output (a stem that reaches none is not rendered, so not metered). Stems are
    /// metered over their first `stem_frames` frames (the song, not the render's tail); those
    /// in `known` are not metered again, their readings are taken as given.
    pub fn new(
        graph: &GraphSpec,
        sample_rate: f64,
        stem_frames: u64,
        known: &[(String, NodeMeters)],
    ) -> (Self, NodeTaps) {
        let owner = next_owner();
        let live = reaches_output(graph);
        let mut taps: NodeTaps = Vec::new();
        let mut tapped = Vec::new();
        let mut kinds = Vec::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let channels = match &node.kind {
                NodeKind::Source { channels, .. } | NodeKind::Output { channels } => *channels,
                NodeKind::Processor { kind, .. } => {
                    kinds.push((node.id.clone(), kind.clone()));
                    continue;
                }
                NodeKind::Bus { .. } => continue,
            };
            if !live[i]
                || channels == 0
                || channels > MAX_CHANNELS
                || crate::graph::is_internal(&node.id)
            {
                continue;
            }
            let is_stem = matches!(node.kind, NodeKind::Source { .. });
            if is_stem && known.iter().any(|(id, _)| *id == node.id) {
                tapped.push(node.id.clone());
                continue;
            }
            let mut tap = MeterTap::new(sample_rate, channels);
            if is_stem {
                tap = tap.with_limit(stem_frames);
            }
            tap.owner = owner;
            taps.push((node.id.clone(), Box::new(tap)));
            tapped.push(node.id.clone());
        }
        (
            Self {
                owner,
                tapped,
                gain_reduction: Vec::new(),
                kinds,
                known: known.to_vec(),
            },
            taps,
        )
    }

    /// Hands `loudness` to this collector's tap on node `node` in `schedule`, to measure frames
    /// `from..to` of what the tap observes beside its own meter, K-weighted in the same pass
    /// (for the same figures as pushing those frames into `loudness`, in less time); with
    /// `read_back`, each frame as a file of that format reads it back (a deliverable's
    /// samples: [`read_back`]). Gives it back when there is no such tap, or it has one
    /// already. [`Self::take_twin`] takes it back after the pass.
    pub fn twin(
        &self,
        schedule: &mut Schedule,
        node: &str,
        loudness: LoudnessMeter,
        (from, to): (u64, u64),
        read_back: Option<WavFormat>,
    ) -> Result<(), LoudnessMeter> {
        let channels = loudness.channels();
        let back = read_back.map(|f| (f, AudioBuffer::new(channels, schedule.max_block().max(1))));
        for i in 0..schedule.tap_count() {
            if schedule.tap_node(i) != node {
                continue;
            }
            let any: &mut dyn std::any::Any = schedule.tap(i);
            if let Some(m) = any.downcast_mut::<MeterTap>() {
                if m.owner == self.owner && m.twin.is_none() {
                    m.twin = Some(Twin {
                        loudness,
                        from,
                        to,
                        read_back: back,
                    });
                    return Ok(());
                }
            }
        }
        Err(loudness)
    }

    /// The meter [`Self::twin`] handed to one of this collector's taps in `taps` (what
    /// `Schedule::take_taps` returned), taken back.
    pub fn take_twin(&self, taps: &mut NodeTaps) -> Option<LoudnessMeter> {
        taps.iter_mut().find_map(|(_, tap)| {
            let any: &mut dyn std::any::Any = &mut **tap;
            any.downcast_mut::<MeterTap>()
                .filter(|m| m.owner == self.owner)
                .and_then(|m| m.twin.take())
                .map(|t| t.loudness)
        })
    }

    /// Finds the processors of the compiled `schedule` that publish `gain_reduction_db`.
    pub fn watch(&mut self, schedule: &Schedule) {
        for (id, kind) in &self.kinds {
            let Some(t) = schedule.telemetry(id) else {
                continue;
            };
            let Some(slot) = t.names().iter().position(|n| *n == GAIN_REDUCTION_DB) else {
                continue;
            };
            if slot != 0 {
                continue; // set_block statistics are kept for the first slot
            }
            self.gain_reduction.push(GainReductionMeter {
                node: id.clone(),
                kind: kind.clone(),
                telemetry: t,
            });
        }
    }

    /// Takes this collector's taps out of `taps` (what `Schedule::take_taps` returned) and
    /// returns their readings with the gain-reduction statistics over the `frames` the pass
    /// rendered (a second thread may have run a few blocks further; their frames do not
    /// count); other taps stay in `taps`.
    pub fn finish(self, taps: &mut NodeTaps, frames: u64) -> CollectedMeters {
        let mut nodes = Vec::new();
        let mut kept = Vec::with_capacity(taps.len());
        for (id, mut tap) in taps.drain(..) {
            let any: &mut dyn std::any::Any = &mut *tap;
            match any.downcast_mut::<MeterTap>() {
                Some(m) if m.owner == self.owner => nodes.push((id, m.meters())),
                _ => kept.push((id, tap)),
            }
        }
        *taps = kept;
        nodes.extend(
            self.known
                .iter()
                .filter(|(id, _)| self.tapped.contains(id))
                .cloned(),
        );
        // In graph order (the order the taps were made).
        nodes.sort_by_key(|(id, _)| self.tapped.iter().position(|t| t == id));
        CollectedMeters {
            nodes,
            gain_reduction: self
                .gain_reduction
                .iter()
                .map(|g| g.result(Some(frames)))
                .collect(),
        }
    }
}

/// Whether each node's signal reaches an output (through main or key inputs).
fn reaches_output(graph: &GraphSpec) -> Vec<bool> {
    let mut live: Vec<bool> = graph
        .nodes
        .iter()
        .map(|n| matches!(n.kind, NodeKind::Output { .. }))
        .collect();
    let index = |id: &str| graph.nodes.iter().position(|n| n.id == id);
    loop {
        let mut changed = false;
        for e in &graph.edges {
            if let (Some(from), Some(to)) = (index(&e.from), index(&e.to)) {
                if live[to] && !live[from] {
                    live[from] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return live;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(t: &Arc<Telemetry>) -> GainReductionMeter {
        GainReductionMeter {
            node: "lim".into(),
            kind: "limiter".into(),
            telemetry: t.clone(),
        }
    }

    #[test]
    fn gain_reduction_statistics() {
        let t = Arc::new(Telemetry::new(&[GAIN_REDUCTION_DB]));
        let m = meter(&t);
        // 3 blocks of 100 frames: idle, 2 dB, 4 dB; then 100 frames at 0.05 dB (inactive).
        for gr in [0.0, 2.0, 4.0, 0.05] {
            t.set_block(0, gr, 100);
        }
        let r = m.result(None);
        assert_eq!(r.max_db, 4.0);
        assert_eq!(r.mean_active_db, 3.0);
        assert_eq!(r.active_percent, 50.0);
        // Frame-weighted: a long block counts more.
        t.set_block(0, 1.0, 200);
        let r = m.result(None);
        assert!((r.mean_active_db - (200.0 + 400.0 + 200.0) / 400.0).abs() < 1e-12);
        assert!((r.active_percent - 100.0 * 400.0 / 600.0).abs() < 1e-12);
        // A plain `set` (a live display's reading) does not count.
        t.set(0, 9.0);
        assert_eq!(m.result(None).max_db, 4.0);
    }

    #[test]
    fn never_active_reads_zero() {
        let t = Arc::new(Telemetry::new(&[GAIN_REDUCTION_DB]));
        let m = meter(&t);
        t.set_block(0, 0.0, 512);
        let r = m.result(None);
        assert_eq!(
            (r.max_db, r.mean_active_db, r.active_percent),
            (0.0, 0.0, 0.0)
        );
    }

    /// A twin fed read back as a file holds the samples (a deliverable's loudness meter on the
    /// output's tap) reads what a meter pushed those read-back frames reads, to the bit, and the
    /// tap's own meter what it reads alone: stereo (K-weighted side by side) and mono, 16- and
    /// 24-bit, over blocks that start and end the twin's frames mid-block.
    #[test]
    fn a_read_back_twin_reads_the_frames_as_read_back() {
        let mut noise = crate::dsp::test_signal::noise(0x0dd_b1a5_e5ca_1ab1);
        let x: Vec<f64> = (0..48_000 * 3)
            .map(|i| 0.6 * noise() + 0.3 * (i as f64 * 0.01).sin())
            .collect();
        let (from, to) = (333u64, 48_000 * 3 - 1000);
        for (channels, format) in [
            (2, WavFormat::Int24),
            (2, WavFormat::Int16),
            (1, WavFormat::Int24),
        ] {
            let mut tap = MeterTap::new(48_000.0, channels);
            let mut alone = MeterTap::new(48_000.0, channels);
            let back = AudioBuffer::new(channels, 700);
            tap.twin = Some(Twin {
                loudness: LoudnessMeter::new(48_000.0, channels),
                from,
                to,
                read_back: Some((format, back)),
            });
            let mut want = LoudnessMeter::new(48_000.0, channels);
            let mut buf = crate::dsp::AudioBuffer::new(channels, 1024);
            let mut at = 0usize;
            for chunk in x.chunks(1000) {
                for c in 0..channels {
                    buf.channel_mut(c, chunk.len()).copy_from_slice(chunk);
                }
                tap.observe(buf.view(chunk.len()));
                alone.observe(buf.view(chunk.len()));
                let (a, b) = (at.max(from as usize), (at + chunk.len()).min(to as usize));
                if a < b {
                    let mut read = vec![0.0; b - a];
                    read_back(&x[a..b], &mut read, format);
                    let planes: Vec<&[f64]> = (0..channels).map(|_| &read[..]).collect();
                    want.push(&planes);
                }
                at += chunk.len();
            }
            let twin = tap.twin.take().unwrap().loudness;
            assert_eq!(twin.frames(), to - from);
            let figures = |m: &LoudnessMeter| {
                format!(
                    "{:?}",
                    [
                        m.integrated_lufs(),
                        m.loudness_range_lu(),
                        m.momentary_max_lufs(),
                        m.short_term_max_lufs()
                    ]
                    .map(f64::to_bits)
                )
            };
            assert_eq!(
                figures(&twin),
                figures(&want),
                "{channels} channels, {format:?}"
            );
            assert_eq!(
                format!("{:?}", tap.meters()),
                format!("{:?}", alone.meters()),
                "the tap's own figures"
            );
        }
    }

    #[test]
    fn meter_tap_reads_a_stereo_tone() {
        let mut tap = MeterTap::new(48_000.0, 2);
        let amp = 10f64.powf(-23.0 / 20.0);
        let x: Vec<f64> = (0..48_000 * 5)
            .map(|i| amp * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin())
            .collect();
        let mut buf = crate::dsp::AudioBuffer::new(2, 1024);
        for chunk in x.chunks(1024) {
            {
                let mut v = buf.view_mut(chunk.len());
                let (l, r) = v.stereo_mut();
                l.copy_from_slice(chunk);
                r.copy_from_slice(chunk);
            }
            tap.observe(buf.view(chunk.len()));
        }
        let m = tap.meters();
        assert!(
            (m.integrated_lufs - -23.0).abs() < 0.1,
            "{}",
            m.integrated_lufs
        );
        assert!((m.sample_peak_dbfs - -23.0).abs() < 0.01);
        assert_eq!(tap.mismatched_blocks(), 0);
        // A mono block on a stereo tap is skipped, not a panic.
        let mono = crate::dsp::AudioBuffer::new(1, 16);
        tap.observe(mono.view(16));
        assert_eq!(tap.mismatched_blocks(), 1);
    }
}
