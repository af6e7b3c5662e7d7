//! Multiband compressor: 2–4 bands on Linkwitz–Riley crossovers, each compressed on its own.
//!
//! `crossovers_hz` (structural, 1–3 ascending frequencies, default `{120, 2000}`) sets the bands;
//! the split is the LR4 tree of [`crate::dsp::crossover::Crossover`], whose bands sum to an
//! all-pass, so at neutral settings (ratio 1 or below threshold, 0 dB makeup) the output has the
//! input's magnitude response exactly (its phase is the crossovers' all-pass).
//!
//! Per band `n` (from 1, low to high): `n.threshold_db`, `n.ratio`, `n.attack_ms`,
//! `n.release_ms`, `n.makeup_db`; shared: `knee_db`, `link_pct`. The per-band options may also
//! be given as a list, `bands = { {ratio = 2}, {}, {threshold_db = -30} }`. Each band has a peak
//! detector on its own signal. Publishes `gain_reduction_db` (the largest of all bands) and
//! `n.gain_reduction_db` per band (block maxima).

use super::compressor::kernels::{group_ballistics, peak_targets};
use super::core::{
    fmax, track_gains, Chunk, DetectorKind, GainParams, GainStage, LevelDetector, TrackCoefs, CHUNK,
};
use crate::dsp::crossover::{Crossover, MAX_BANDS};
use crate::dsp::kind::{BuildContext, KindInfo};
use crate::dsp::telemetry::GAIN_REDUCTION_DB;
use crate::dsp::{
    AudioMut, AudioRef, ConfigValue, ParamBlock, ParamInfo, ParamValues, ProcessSpec, Processor,
    ProcessorConfig, Telemetry, Unit,
};
use std::sync::Arc;

/// Index of `knee_db`.
pub const KNEE_DB: usize = 0;
/// Index of `link_pct`.
pub const LINK_PCT: usize = 1;
/// Parameters per band.
pub const PER_BAND: usize = 5;
/// Index of band `b`'s (from 0) first parameter; then threshold, ratio, attack, release, makeup.
pub const fn band_param(b: usize, which: usize) -> usize {
    2 + b * PER_BAND + which
}

static TELEMETRY_2: [&str; 3] = [
    GAIN_REDUCTION_DB,
    "1.gain_reduction_db",
    "2.gain_reduction_db",
];
static TELEMETRY_3: [&str; 4] = [
    GAIN_REDUCTION_DB,
    "1.gain_reduction_db",
    "2.gain_reduction_db",
    "3.gain_reduction_db",
];
static TELEMETRY_4: [&str; 5] = [
    GAIN_REDUCTION_DB,
    "1.gain_reduction_db",
    "2.gain_reduction_db",
    "3.gain_reduction_db",
    "4.gain_reduction_db",
];

/// The band names of the telemetry for `bands` bands.
fn telemetry_names(bands: usize) -> &'static [&'static str] {
    match bands {
        2 => &TELEMETRY_2,
        3 => &TELEMETRY_3,
        _ => &TELEMETRY_4,
    }
}

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "multiband",
    doc: "Multiband compressor: `crossovers_hz` (1–3 frequencies, default {120, 2000}) split the \
          signal on Linkwitz–Riley 24 dB/octave crossovers that sum flat; each band `n` has \
          `n.threshold_db`, `n.ratio`, `n.attack_ms`, `n.release_ms`, `n.makeup_db` (or a \
          `bands` list of tables); `knee_db` and `link_pct` are shared. Publishes \
          `gain_reduction_db` and `n.gain_reduction_db`.",
    build,
    example,
};

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    if !(1..=2).contains(&cx.input_channels) {
        return Err(format!(
            "multiband takes a mono or stereo input, not {} channels",
            cx.input_channels
        ));
    }
    let crossovers = match cx.config.take("crossovers_hz") {
        None => vec![120.0, 2000.0],
        Some(ConfigValue::List(items)) => items
            .iter()
            .map(|v| match v {
                ConfigValue::Number(f) => Ok(*f),
                other => Err(format!(
                    "`crossovers_hz` must be a list of frequencies, not of {}",
                    other.type_name()
                )),
            })
            .collect::<Result<Vec<f64>, String>>()?,
        Some(other) => {
            return Err(format!(
            "`crossovers_hz` must be a list of 1 to 3 frequencies such as {{120, 2000}}, not {}",
            other.type_name()
        ))
        }
    };
    if crossovers.is_empty() || crossovers.len() >= MAX_BANDS {
        return Err(format!(
            "`crossovers_hz` must have 1 to 3 frequencies (2 to 4 bands), not {}",
            crossovers.len()
        ));
    }
    for (i, f) in crossovers.iter().enumerate() {
        if !(20.0..=20000.0).contains(f) {
            return Err(format!(
                "`crossovers_hz` frequencies must be between 20 and 20000 Hz, not {f}"
            ));
        }
        if i > 0 && *f <= crossovers[i - 1] {
            return Err("`crossovers_hz` must be in ascending order".to_string());
        }
    }
    let bands = crossovers.len() + 1;
    // `bands = { {...}, {...} }` is the same as `["1.ratio"] = …` keys.
    if let Some(list) = cx.config.take("bands") {
        let ConfigValue::List(list) = list else {
            return Err(format!(
                "`bands` must be a list of {bands} tables, not {}",
                list.type_name()
            ));
        };
        if list.len() > bands {
            return Err(format!(
                "`bands` has {} entries but `crossovers_hz` makes {bands} bands",
                list.len()
            ));
        }
        for (b, entry) in list.into_iter().enumerate() {
            let ConfigValue::Table(t) = entry else {
                return Err(format!("`bands[{}]` must be a table", b + 1));
            };
            for (key, value) in t.entries {
                let flat = format!("{}.{key}", b + 1);
                if cx.config.entries.contains_key(&flat) {
                    return Err(format!("`{flat}` is given twice (in `bands` and by name)"));
                }
                cx.config.entries.insert(flat, value);
            }
        }
    }
    Ok(Box::new(Multiband::new(cx.input_channels, &crossovers)))
}

fn example() -> ProcessorConfig {
    ProcessorConfig::new()
        .with(
            "crossovers_hz",
            ConfigValue::List(vec![
                ConfigValue::Number(100.0),
                ConfigValue::Number(1000.0),
                ConfigValue::Number(6000.0),
            ]),
        )
        .num("1.threshold_db", -24.0)
        .num("1.ratio", 2.0)
        .num("4.threshold_db", -30.0)
        .num("4.ratio", 3.0)
}

fn params(bands: usize) -> Vec<ParamInfo> {
    let mut p = vec![
        ParamInfo::new("knee_db", Unit::Decibels, 0.0, 24.0, 6.0)
            .doc("width of the soft knee of every band"),
        ParamInfo::new("link_pct", Unit::Percent, 0.0, 100.0, 100.0)
            .doc("stereo link of every band"),
    ];
    for b in 1..=bands {
        p.extend([
            ParamInfo::new(
                format!("{b}.threshold_db"),
                Unit::Decibels,
                -60.0,
                0.0,
                -18.0,
            )
            .doc("band threshold"),
            ParamInfo::new(format!("{b}.ratio"), Unit::Ratio, 1.0, 20.0, 1.0)
                .log()
                .doc("band ratio (1: the band is left alone)"),
            ParamInfo::new(
                format!("{b}.attack_ms"),
                Unit::Milliseconds,
                0.05,
                500.0,
                10.0,
            )
            .log()
            .doc("band attack time constant"),
            ParamInfo::new(
                format!("{b}.release_ms"),
                Unit::Milliseconds,
                5.0,
                5000.0,
                150.0,
            )
            .log()
            .doc("band release time constant"),
            ParamInfo::new(format!("{b}.makeup_db"), Unit::Decibels, -12.0, 24.0, 0.0)
                .doc("band gain after its reduction"),
        ]);
    }
    p
}

// The crossover holds its filter states and coefficients in fixed-size arrays: cloning it in
// place allocates nothing.
impl crate::dsp::state::SignalState for Crossover {
    fn fits(&self, other: &Self) -> bool {
        self.bands() == other.bands()
    }
    fn copy_from(&mut self, other: &Self) {
        self.clone_from(other);
    }
}

/// A multiband compressor.
pub struct Multiband {
    params: Vec<ParamInfo>,
    channels: usize,
    crossover: Crossover,
    detector: LevelDetector,
    stages: [GainStage; MAX_BANDS],
    position: u64,
    telemetry: Arc<Telemetry>,
}

impl Multiband {
    /// A multiband compressor for `channels` channels split at `crossovers_hz` (1–3 ascending).
    pub fn new(channels: usize, crossovers_hz: &[f64]) -> Self {
        let bands = crossovers_hz.len() + 1;
        Self {
            params: params(bands),
            channels,
            crossover: Crossover::new(crossovers_hz, 48000.0),
            detector: LevelDetector::new(DetectorKind::Peak),
            stages: Default::default(),
            position: 0,
            telemetry: Arc::new(Telemetry::new(telemetry_names(bands))),
        }
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.crossover.bands()
    }
}

impl Multiband {
    /// The gain stages of the first `K` bands of a chunk (`split[band][channel][..n]`), each one
    /// track with constant coefficients `tracks`: the static curve's reductions band by band,
    /// the ballistics of all bands side by side, then each band's gains applied and summed into
    /// `sum`; each band's largest reduction raises `max_gr`. The bits of [`GainStage::run`] band
    /// by band.
    fn grouped<const K: usize>(
        &mut self,
        split: &[[Chunk; 2]; MAX_BANDS],
        tracks: &[TrackCoefs; MAX_BANDS],
        n: usize,
        sum: &mut [Chunk; 2],
        max_gr: &mut [f64; MAX_BANDS],
    ) {
        let channels = self.channels;
        let scale = DetectorKind::Peak.db_per_octave();
        let tracks: [TrackCoefs; K] = std::array::from_fn(|b| tracks[b]);
        let mut g = [[0.0; CHUNK]; K];
        for b in 0..K {
            // The peak detector's value is |x| of the louder channel: read from the band.
            let (l, r) = (&split[b][0][..n], &split[b][channels - 1][..n]);
            let quiet = tracks[b].curve.quiet_below(scale);
            peak_targets(l, r, scale, &tracks[b], quiet, &mut g[b][..n]);
        }
        let mut state: [f64; K] = std::array::from_fn(|b| self.stages[b].single_state());
        let max = group_ballistics::<K>(&mut state, &mut g, n, &tracks);
        let mut w = [0.0; CHUNK];
        for b in 0..K {
            self.stages[b].set_single_state(state[b], channels);
            let max = fmax(0.0, max[b]);
            max_gr[b] = max_gr[b].max(max);
            track_gains(&g[b][..n], tracks[b].makeup_db, max, &mut w[..n]);
            for c in 0..channels {
                for i in 0..n {
                    sum[c][i] += split[b][c][i] * w[i];
                }
            }
        }
    }
}

impl Processor for Multiband {
    fn kind(&self) -> &'static str {
        "multiband"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        let mut freqs = [0.0; MAX_BANDS - 1];
        let points = self.crossover.freqs().len();
        freqs[..points].copy_from_slice(self.crossover.freqs());
        self.crossover = Crossover::new(&freqs[..points], spec.sample_rate);
        self.detector.prepare(spec.sample_rate);
        for s in &mut self.stages {
            s.prepare(spec.sample_rate);
        }
        self.reset();
    }
    fn reset(&mut self) {
        self.crossover.reset();
        self.detector.reset();
        for s in &mut self.stages {
            s.reset();
        }
        self.position = 0;
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let frames = audio.frames();
        let bands = self.bands();
        let channels = self.channels;
        let knee = params.get(KNEE_DB);
        let link = params.get(LINK_PCT);
        let scale = DetectorKind::Peak.db_per_octave();
        let band_params = |b: usize| GainParams {
            threshold_db: params.get(band_param(b, 0)),
            ratio: params.get(band_param(b, 1)),
            knee_db: knee,
            range_db: ParamValues::Constant(f64::INFINITY),
            attack_ms: params.get(band_param(b, 2)),
            release_ms: params.get(band_param(b, 3)),
            makeup_db: params.get(band_param(b, 4)),
            link_pct: link,
        };
        // Every band one track with constant parameters (the usual case): the bands' gain
        // stages run side by side, their ballistics in one register.
        let mut coefs = [None; MAX_BANDS];
        for (b, t) in coefs.iter_mut().enumerate().take(bands) {
            *t = self.stages[b].track(&band_params(b), channels, channels);
        }
        let tracks: Option<[TrackCoefs; MAX_BANDS]> = coefs[0].and_then(|first| {
            let mut t = [first; MAX_BANDS];
            for b in 1..bands {
                t[b] = coefs[b]?;
            }
            Some(t)
        });
        let mut max_gr = [0.0f64; MAX_BANDS];
        let mut k = 0;
        while k < frames {
            let n = (CHUNK - (self.position % CHUNK as u64) as usize).min(frames - k);
            // Split: split[b][c][i].
            let mut split: [[Chunk; 2]; MAX_BANDS] = [[[0.0; CHUNK]; 2]; MAX_BANDS];
            let zeros = [0.0; CHUNK];
            let x = [
                &audio.channel(0)[k..k + n],
                if channels == 2 {
                    &audio.channel(1)[k..k + n]
                } else {
                    &zeros[..n]
                },
            ];
            self.crossover.split_chunk(x, n, &mut split);
            let mut sum: [Chunk; 2] = [[0.0; CHUNK]; 2];
            if let Some(tracks) = &tracks {
                match bands {
                    2 => self.grouped::<2>(&split, tracks, n, &mut sum, &mut max_gr),
                    3 => self.grouped::<3>(&split, tracks, n, &mut sum, &mut max_gr),
                    _ => self.grouped::<4>(&split, tracks, n, &mut sum, &mut max_gr),
                }
            }
            for b in 0..if tracks.is_some() { 0 } else { bands } {
                let p = band_params(b);
                let mut det = split[b];
                self.detector
                    .run(&mut det, channels, ParamValues::Constant(0.0), k, n);
                let mut gains: [Chunk; 2] = [[0.0; CHUNK]; 2];
                let gr = self.stages[b].run(&det, channels, scale, channels, &p, k, n, &mut gains);
                max_gr[b] = max_gr[b].max(gr);
                for c in 0..channels {
                    for i in 0..n {
                        sum[c][i] += split[b][c][i] * gains[c][i];
                    }
                }
            }
            for c in 0..channels {
                audio.channel_mut(c)[k..k + n].copy_from_slice(&sum[c][..n]);
            }
            self.position += n as u64;
            if self.position.is_multiple_of(CHUNK as u64) {
                self.crossover.flush();
                for s in &mut self.stages {
                    s.flush();
                }
            }
            k += n;
        }
        let overall = max_gr.iter().copied().fold(0.0, f64::max);
        self.telemetry.set_block(0, overall, frames);
        for (b, gr) in max_gr.iter().enumerate().take(bands) {
            self.telemetry.set(b + 1, *gr);
        }
    }
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        Some(self.telemetry.clone())
    }
    crate::hand_over! {
        config: channels;
        state: crossover, detector, stages, position;
        own: params, telemetry;
        same: |a, b| a.crossover.freqs() == b.crossover.freqs();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::dynamics::compressor::tests::{in_blocks, signal};
    use crate::dsp::param::ParamSlot;

    /// Renders `x` (its first `channels` channels) through a multiband split at `freqs` in blocks
    /// of `block`; `varying` hands every band parameter over as per-frame values (all the same),
    /// which takes the general path band by band instead of the grouped one. Band 2 has ratio 1
    /// (with 2 dB makeup when `makeup`), the others compress.
    fn render(
        x: &[Vec<f64>; 2],
        channels: usize,
        freqs: &[f64],
        block: usize,
        varying: bool,
        makeup: bool,
    ) -> Vec<Vec<f64>> {
        let mut m = Multiband::new(channels, freqs);
        m.prepare(&ProcessSpec {
            sample_rate: 48000.0,
            max_block: block,
            input_channels: channels,
        });
        let mut slots: Vec<ParamSlot> = m
            .params()
            .iter()
            .map(|p| ParamSlot::new(p.default, block))
            .collect();
        for b in 0..m.bands() {
            let ratio = if b == 1 { 1.0 } else { 2.0 + b as f64 };
            let values = [-30.0 + 3.0 * b as f64, ratio, 1.0 + b as f64, 60.0, 0.0];
            for (which, v) in values.into_iter().enumerate() {
                let v = if which == 4 && b == 1 && makeup {
                    2.0
                } else {
                    v
                };
                let slot = &mut slots[band_param(b, which)];
                slot.value = v;
                if varying {
                    slot.values.fill(v);
                    slot.constant = false;
                }
            }
        }
        in_blocks(&mut m, &x[..channels], block, &slots)
    }

    /// The grouped bands (their ballistics side by side, the chunk kernels) give the general
    /// path's samples bit for bit: 2, 3 and 4 bands, mono and stereo, a ratio-1 band with and
    /// without makeup, blocks that split chunks, every SIMD build.
    #[test]
    fn grouped_bands_are_the_general_path() {
        crate::dsp::simd::init();
        let x = signal(48_000);
        let bits = |v: &[Vec<f64>]| {
            v.iter()
                .flat_map(|c| c.iter().map(|s| s.to_bits()))
                .collect::<Vec<_>>()
        };
        for freqs in [&[300.0][..], &[250.0, 3000.0], &[120.0, 1000.0, 6000.0]] {
            for channels in [1, 2] {
                for (block, makeup) in [(64, false), (100, true), (1024, false)] {
                    let general = render(&x, channels, freqs, block, true, makeup);
                    for portable in [true, false] {
                        crate::dsp::simd::force_portable(portable);
                        let grouped = render(&x, channels, freqs, block, false, makeup);
                        assert!(
                            bits(&grouped) == bits(&general),
                            "{freqs:?} Hz, {channels} channel(s), blocks of {block}, \
                             makeup {makeup}, portable {portable}"
                        );
                    }
                    crate::dsp::simd::force_portable(false);
                }
            }
        }
        // The bands do reduce: the output differs from a split with no compression.
        let y = render(&x, 2, &[250.0, 3000.0], 64, false, false);
        let peak = |v: &[f64]| v.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        assert!(peak(&y[0][..9600]) < 0.8 * peak(&x[0][..9600]), "reduces");
    }
}
