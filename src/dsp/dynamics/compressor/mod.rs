//! Compressor: feed-forward, log-domain, with parallel mix, side-chain high-pass and an external
//! side-chain key.
//!
//! The detector listens to the main input, or to the `key` input when one is connected (a kick
//! on the key ducks the bass on the main input). Detector options are structural:
//! `detector = "peak"` (default: a steady sine's level is its peak) or `"rms"` (a steady sine's
//! level is its RMS, 3.01 dB under its peak; `rms_window_ms` is the time constant of the mean of
//! the squares). `sidechain_hpf_hz` switches on a 2nd-order Butterworth high-pass (12 dB/octave)
//! on the detector only; absent or 0 means no filter (and no parameter), any value 20–500 Hz
//! makes it an automatable parameter.
//!
//! Stereo: `link_pct` moves each channel's level towards the louder channel's (100 %: one gain
//! for both). A mono key drives both channels alike; a stereo key on a mono input is read at the
//! louder of its channels.
//!
//! The gain is `mix·g + (1 − mix)` (parallel compression, dry and wet sample-aligned since the
//! latency is 0): `mix_pct = 0` is the dry signal bit for bit, and below threshold with 0 dB
//! makeup the output is the input bit for bit. Publishes `gain_reduction_db` (the block's max).

mod batch;
pub(super) mod kernels;
mod lockstep;

use super::core::{
    fmax, Cached, Chunk, DetectorKind, GainParams, GainStage, LevelDetector, TrackCoefs, CHUNK,
};
use super::fastmath;
use super::optional_param;
use crate::dsp::crossover::SvfState;
use crate::dsp::filters::SvfCoefs;
use crate::dsp::kind::{BuildContext, KindInfo};
use crate::dsp::telemetry::GAIN_REDUCTION_DB;
use crate::dsp::{
    AudioMut, AudioRef, ParamBlock, ParamInfo, ParamValues, ProcessSpec, Processor,
    ProcessorConfig, Telemetry, Unit,
};
use batch::batch;
use kernels::{apply1, apply2, peak_targets};
use lockstep::run_fast;
use std::sync::Arc;

/// Index of `threshold_db`.
pub const THRESHOLD_DB: usize = 0;
/// Index of `ratio`.
pub const RATIO: usize = 1;
/// Index of `knee_db`.
pub const KNEE_DB: usize = 2;
/// Index of `attack_ms`.
pub const ATTACK_MS: usize = 3;
/// Index of `release_ms`.
pub const RELEASE_MS: usize = 4;
/// Index of `makeup_db`.
pub const MAKEUP_DB: usize = 5;
/// Index of `mix_pct`.
pub const MIX_PCT: usize = 6;
/// Index of `link_pct`.
pub const LINK_PCT: usize = 7;

static TELEMETRY: [&str; 1] = [GAIN_REDUCTION_DB];

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "compressor",
    doc: "Feed-forward compressor (threshold, ratio, soft knee, attack/release on the gain in \
          dB, makeup, parallel mix, stereo link). `detector = \"peak\"` (default) or `\"rms\"` \
          (with `rms_window_ms`); optional `sidechain_hpf_hz` high-pass on the detector; an \
          external side-chain on the `key` input drives the detector instead of the input. \
          Publishes `gain_reduction_db`.",
    build,
    example,
};

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    if !(1..=2).contains(&cx.input_channels) {
        return Err(format!(
            "compressor takes a mono or stereo input, not {} channels",
            cx.input_channels
        ));
    }
    let detector = match cx
        .config
        .take_choice("detector", &["peak", "rms"], "peak")?
    {
        "rms" => DetectorKind::Rms,
        _ => DetectorKind::Peak,
    };
    let hpf = optional_param(cx.config, "sidechain_hpf_hz");
    Ok(Box::new(Compressor::new(cx.input_channels, detector, hpf)))
}

fn example() -> ProcessorConfig {
    ProcessorConfig::new()
        .text("detector", "rms")
        .num("rms_window_ms", 10.0)
        .num("sidechain_hpf_hz", 80.0)
        .num("threshold_db", -18.0)
        .num("ratio", 3.0)
}

/// The parameters of a compressor.
fn params(detector: DetectorKind, hpf: bool) -> Vec<ParamInfo> {
    let mut p = vec![
        ParamInfo::new("threshold_db", Unit::Decibels, -60.0, 0.0, -18.0)
            .doc("level above which the gain is reduced"),
        ParamInfo::new("ratio", Unit::Ratio, 1.0, 20.0, 4.0)
            .log()
            .doc("input dB over threshold per output dB over threshold"),
        ParamInfo::new("knee_db", Unit::Decibels, 0.0, 24.0, 6.0)
            .doc("width of the soft knee centred on the threshold (0: hard knee)"),
        ParamInfo::new("attack_ms", Unit::Milliseconds, 0.05, 500.0, 10.0)
            .log()
            .doc("time for a growing reduction to cover 63 % of its change"),
        ParamInfo::new("release_ms", Unit::Milliseconds, 5.0, 5000.0, 150.0)
            .log()
            .doc("time for a shrinking reduction to cover 63 % of its change"),
        ParamInfo::new("makeup_db", Unit::Decibels, -12.0, 24.0, 0.0)
            .doc("gain added after the reduction (wet signal only)"),
        ParamInfo::new("mix_pct", Unit::Percent, 0.0, 100.0, 100.0)
            .doc("wet share for parallel compression (0: dry, bit-exact)"),
        ParamInfo::new("link_pct", Unit::Percent, 0.0, 100.0, 100.0)
            .doc("stereo link: 100 one gain from the louder channel, 0 independent channels"),
    ];
    if detector == DetectorKind::Rms {
        p.push(
            ParamInfo::new("rms_window_ms", Unit::Milliseconds, 1.0, 1000.0, 10.0)
                .log()
                .doc("time constant of the RMS detector's mean of squares"),
        );
    }
    if hpf {
        p.push(
            ParamInfo::new("sidechain_hpf_hz", Unit::Hertz, 20.0, 500.0, 80.0)
                .log()
                .doc("12 dB/octave high-pass on the detector only (absent or 0: off)"),
        );
    }
    p
}

/// A compressor.
pub struct Compressor {
    params: Vec<ParamInfo>,
    channels: usize,
    window_index: Option<usize>,
    hpf_index: Option<usize>,
    sample_rate: f64,
    detector: LevelDetector,
    stage: GainStage,
    hpf: SvfState,
    hpf_coefs: Cached<SvfCoefs>,
    /// Samples processed since the last reset: chunk boundaries are aligned to it.
    position: u64,
    telemetry: Arc<Telemetry>,
}

impl Compressor {
    /// A compressor for `channels` (1 or 2) channels.
    pub fn new(channels: usize, detector: DetectorKind, sidechain_hpf: bool) -> Self {
        let params = params(detector, sidechain_hpf);
        let index = |name: &str| params.iter().position(|p| p.name == name);
        Self {
            window_index: index("rms_window_ms"),
            hpf_index: index("sidechain_hpf_hz"),
            params,
            channels,
            sample_rate: 48000.0,
            detector: LevelDetector::new(detector),
            stage: GainStage::new(),
            hpf: SvfState::default(),
            hpf_coefs: Cached::new(SvfCoefs::default()),
            position: 0,
            telemetry: Arc::new(Telemetry::new(&TELEMETRY)),
        }
    }
}

/// The parameters of the gain computer, as the shared engine reads them.
fn gain_params<'a>(params: &ParamBlock<'a>) -> GainParams<'a> {
    GainParams {
        threshold_db: params.get(THRESHOLD_DB),
        ratio: params.get(RATIO),
        knee_db: params.get(KNEE_DB),
        range_db: ParamValues::Constant(f64::INFINITY),
        attack_ms: params.get(ATTACK_MS),
        release_ms: params.get(RELEASE_MS),
        makeup_db: params.get(MAKEUP_DB),
        link_pct: params.get(LINK_PCT),
    }
}

/// What the fast path needs for one block.
#[derive(Clone, Copy)]
struct Fast {
    track: TrackCoefs,
    /// `mix_pct / 100`.
    mix: f64,
    /// dB per doubling of the detector value.
    scale: f64,
    /// Detector values at or under this give no reduction, with a margin (see
    /// [`peak_targets_impl`]).
    quiet_below: f64,
}

impl Compressor {
    /// The fast path's coefficients when this block can take it: no key, no side-chain filter,
    /// every parameter constant, one gain track for every channel (see
    /// [`GainStage::single_track`]). It computes what the general path computes, bit for bit,
    /// without its per-sample parameter reads, in phases (targets, ballistics, the chunk's end,
    /// gains) so that a batch can run the serial ballistics of several compressors side by
    /// side, and the others over several chunks at a time ([`run_fast`]).
    fn fast(&mut self, key: bool, params: &ParamBlock<'_>) -> Option<Fast> {
        if key || self.hpf_index.is_some() {
            return None;
        }
        let mix = params.get(MIX_PCT);
        if !mix.is_constant()
            || self
                .window_index
                .is_some_and(|i| !params.get(i).is_constant())
        {
            return None;
        }
        let p = gain_params(params);
        let track = self.stage.single_track(&p, self.channels, self.channels)?;
        let scale = self.detector.kind().db_per_octave();
        Some(Fast {
            track,
            mix: mix.first() / 100.0,
            scale,
            quiet_below: track.curve.quiet_below(scale),
        })
    }

    /// Frames of the chunk that starts `ahead` frames after the position, at most `remaining`.
    fn chunk_len(&self, ahead: usize, remaining: usize) -> usize {
        let phase = ((self.position + ahead as u64) % CHUNK as u64) as usize;
        (CHUNK - phase).min(remaining)
    }

    /// Fast path, phase 1: the static curve's reductions for frames `k..k + n` into `t` (at
    /// most a chunk with an RMS detector, whose state runs chunk by chunk; any number of
    /// frames with a peak detector).
    fn fast_targets(
        &mut self,
        audio: &AudioMut<'_>,
        params: &ParamBlock<'_>,
        k: usize,
        n: usize,
        f: &Fast,
        t: &mut [f64],
    ) {
        if self.detector.kind() == DetectorKind::Peak {
            // The detector value is |x| (the louder channel's): read it from the block.
            let l = &audio.channel(0)[k..k + n];
            let r = if self.channels == 2 {
                &audio.channel(1)[k..k + n]
            } else {
                l
            };
            peak_targets(l, r, f.scale, &f.track, f.quiet_below, &mut t[..n]);
            return;
        }
        let mut det: [Chunk; 2] = [[0.0; CHUNK]; 2];
        for (c, d) in det.iter_mut().enumerate().take(self.channels) {
            d[..n].copy_from_slice(&audio.channel(c)[k..k + n]);
        }
        let window = self
            .window_index
            .map_or(ParamValues::Constant(10.0), |i| params.get(i));
        self.detector.run(&mut det, self.channels, window, k, n);
        let (a, b) = det.split_at(1);
        let b = if self.channels == 2 { &b[0] } else { &a[0] };
        peak_targets(
            &a[0][..n],
            &b[..n],
            f.scale,
            &f.track,
            f.quiet_below,
            &mut t[..n],
        );
    }

    /// Fast path, phase 3: the track's state after a chunk of `n` frames, and the chunk's end.
    fn fast_commit(&mut self, n: usize, state: f64) {
        self.stage.set_single_state(state, self.channels);
        self.position += n as u64;
        if self.position.is_multiple_of(CHUNK as u64) {
            self.detector.flush();
            self.stage.flush();
            self.hpf.flush();
        }
    }

    /// Fast path, phase 4: the gains from the smoothed reductions `g` applied to frames
    /// `k..k + n` (and the folded gain `post`, see [`Processor::process_gained`]). Chunks whose
    /// reductions are all 0 (`released`: the compressor fully released) have one gain, that of
    /// 0 dB of reduction: computed once, and not applied at all when it is exactly 1.
    #[allow(clippy::too_many_arguments)]
    fn fast_apply(
        &self,
        audio: &mut AudioMut<'_>,
        k: usize,
        n: usize,
        f: &Fast,
        g: &[f64],
        released: bool,
        post: f64,
    ) {
        if released {
            // What `apply2_impl` computes for g = 0, for every frame.
            let gain = fastmath::db_to_amp(f.track.makeup_db - 0.0);
            let factor = (1.0 - f.mix) + f.mix * gain;
            for c in 0..self.channels {
                kernels::scale(&mut audio.channel_mut(c)[k..k + n], factor, post);
            }
        } else if self.channels == 2 {
            let (l, r) = audio.stereo_mut();
            apply2(
                &mut l[k..k + n],
                &mut r[k..k + n],
                &g[..n],
                f.track.makeup_db,
                f.mix,
                post,
            );
        } else {
            apply1(
                &mut audio.channel_mut(0)[k..k + n],
                &g[..n],
                f.track.makeup_db,
                f.mix,
                post,
            );
        }
    }
}

impl Processor for Compressor {
    fn kind(&self) -> &'static str {
        "compressor"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        crate::dsp::simd::avx2();
        self.sample_rate = spec.sample_rate;
        self.detector.prepare(spec.sample_rate);
        self.stage.prepare(spec.sample_rate);
        self.hpf_coefs.clear();
        self.reset();
    }
    fn reset(&mut self) {
        self.detector.reset();
        self.stage.reset();
        self.hpf.reset();
        self.position = 0;
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        self.process_gained(audio, key, params, 1.0);
    }
    fn folds_gain(&self) -> bool {
        true
    }
    fn process_gained(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
        post: f64,
    ) {
        let frames = audio.frames();
        if let Some(fast) = self.fast(key.is_some(), &params) {
            run_fast::<1>(&mut [(self, audio, params, post)], &[fast]);
            return;
        }
        let p = gain_params(&params);
        let mix = params.get(MIX_PCT);
        let window = self
            .window_index
            .map_or(ParamValues::Constant(10.0), |i| params.get(i));
        let hpf = self.hpf_index.map(|i| params.get(i));
        let scale = self.detector.kind().db_per_octave();
        let fs = self.sample_rate;
        let mut max_gr: f64 = 0.0;
        let mut k = 0;
        while k < frames {
            let n = (CHUNK - (self.position % CHUNK as u64) as usize).min(frames - k);
            // Detector input: the key when connected, else the input.
            let mut det: [Chunk; 2] = [[0.0; CHUNK]; 2];
            let det_channels = match &key {
                Some(key) => {
                    let kc = key.channels().min(2);
                    for (c, d) in det.iter_mut().enumerate().take(kc) {
                        d[..n].copy_from_slice(&key.channel(c)[k..k + n]);
                    }
                    kc
                }
                None => {
                    for (c, d) in det.iter_mut().enumerate().take(self.channels) {
                        d[..n].copy_from_slice(&audio.channel(c)[k..k + n]);
                    }
                    self.channels
                }
            };
            if let Some(freq) = hpf {
                let q = std::f64::consts::FRAC_1_SQRT_2;
                let mut c = self
                    .hpf_coefs
                    .get(freq.at(k), |f| SvfCoefs::tuned(f, q, fs));
                for i in 0..n {
                    if !freq.is_constant() {
                        c = self
                            .hpf_coefs
                            .get(freq.at(k + i), |f| SvfCoefs::tuned(f, q, fs));
                    }
                    let y = self.hpf.highpass(&c, [det[0][i], det[1][i]]);
                    det[0][i] = y[0];
                    det[1][i] = y[1];
                }
            }
            self.detector.run(&mut det, det_channels, window, k, n);
            let level_channels = if self.channels == 1 && det_channels == 2 {
                for i in 0..n {
                    det[0][i] = fmax(det[0][i], det[1][i]);
                }
                1
            } else {
                det_channels.min(self.channels)
            };
            let mut gains: [Chunk; 2] = [[0.0; CHUNK]; 2];
            let gr = self.stage.run(
                &det,
                level_channels,
                scale,
                self.channels,
                &p,
                k,
                n,
                &mut gains,
            );
            max_gr = max_gr.max(gr);
            for (c, g) in gains.iter().enumerate().take(self.channels) {
                let x = &mut audio.channel_mut(c)[k..k + n];
                if mix.is_constant() {
                    let m = mix.first() / 100.0;
                    for (x, g) in x.iter_mut().zip(g) {
                        *x *= (1.0 - m) + m * g;
                    }
                } else {
                    for (i, (x, g)) in x.iter_mut().zip(g).enumerate() {
                        let m = mix.at(k + i) / 100.0;
                        *x *= (1.0 - m) + m * g;
                    }
                }
            }
            self.position += n as u64;
            if self.position.is_multiple_of(CHUNK as u64) {
                self.detector.flush();
                self.stage.flush();
                self.hpf.flush();
            }
            k += n;
        }
        // The folded gain after the block (nothing when it is 1), by the released chunks' kernel.
        audio.for_each_channel(|_, ch| kernels::scale(ch, 1.0, post));
        self.telemetry.set_block(0, max_gr, frames);
    }
    fn accepts_key(&self) -> bool {
        true
    }
    fn batch_kernel(&self) -> Option<crate::dsp::BatchKernel> {
        Some(batch)
    }
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        Some(self.telemetry.clone())
    }
    crate::hand_over! {
        config: channels, window_index, hpf_index, sample_rate;
        state: detector, stage, hpf, hpf_coefs, position;
        own: params, telemetry;
        same: |a, b| a.detector.kind() == b.detector.kind();
    }
}

#[cfg(test)]
pub(in crate::dsp::dynamics) mod tests {
    use super::*;
    use crate::dsp::buffer::AudioBuffer;
    use crate::dsp::param::ParamSlot;

    /// Loud bursts (reducing), stretches under the knee long enough for the reduction to release
    /// to exactly 0, chunks crossing the knee, silence; a little noise so no two chunks match.
    pub(in crate::dsp::dynamics) fn signal(n: usize) -> [Vec<f64>; 2] {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        std::array::from_fn(|c| {
            (0..n)
                .map(|i| {
                    let level = match (i / 4800) % 10 {
                        0 | 1 => 0.8,
                        2 => 0.1,
                        5 => 0.0,
                        _ => 0.02,
                    };
                    let phase = i as f64 * (0.01 + 0.003 * c as f64);
                    level * (phase.sin() + 0.2 * noise())
                })
                .collect()
        })
    }

    /// Renders `x` in blocks of `block` frames; `varying_mix` hands the mix over as per-frame
    /// values (all the same), which takes the general path instead of the fast one.
    /// A stereo compressor with `kind`'s detector prepared at 48 kHz for blocks of `block`, and
    /// a parameter slot per parameter at its default (the batch tests' too).
    pub(super) fn prepared(kind: DetectorKind, block: usize) -> (Compressor, Vec<ParamSlot>) {
        let mut c = Compressor::new(2, kind, false);
        c.prepare(&ProcessSpec {
            sample_rate: 48000.0,
            max_block: block,
            input_channels: 2,
        });
        let slots = c
            .params()
            .iter()
            .map(|p| ParamSlot::new(p.default, block))
            .collect();
        (c, slots)
    }

    fn render(
        x: &[Vec<f64>; 2],
        makeup: f64,
        mix: f64,
        block: usize,
        varying_mix: bool,
    ) -> Vec<Vec<f64>> {
        let (mut c, mut slots) = prepared(DetectorKind::Peak, block);
        for (i, v) in [
            (THRESHOLD_DB, -20.0),
            (RATIO, 3.0),
            (ATTACK_MS, 2.0),
            (RELEASE_MS, 5.0),
        ] {
            slots[i].value = v;
        }
        slots[MAKEUP_DB].value = makeup;
        slots[MIX_PCT].value = mix;
        if varying_mix {
            slots[MIX_PCT].values.fill(mix);
            slots[MIX_PCT].constant = false;
        }
        in_blocks(&mut c, &x[..], block, &slots)
    }

    /// `x` through `p` in blocks of `block` frames with the parameters `slots`: the output,
    /// channel by channel.
    pub(in crate::dsp::dynamics) fn in_blocks(
        p: &mut dyn Processor,
        x: &[Vec<f64>],
        block: usize,
        slots: &[ParamSlot],
    ) -> Vec<Vec<f64>> {
        let channels = x.len();
        let mut buf = AudioBuffer::new(channels, block);
        let mut out = vec![Vec::new(); channels];
        for start in (0..x[0].len()).step_by(block) {
            let n = block.min(x[0].len() - start);
            for ch in 0..channels {
                buf.channel_mut(ch, n)
                    .copy_from_slice(&x[ch][start..start + n]);
            }
            p.process(&mut buf.view_mut(n), None, ParamBlock::new(slots));
            for (ch, o) in out.iter_mut().enumerate() {
                o.extend_from_slice(buf.channel(ch, n));
            }
        }
        out
    }

    /// The fast path (the chunk-wide quiet test, the released chunks' single gain) gives the
    /// general path's samples, bit for bit, with and without makeup and mix, at block sizes that
    /// split chunks.
    #[test]
    fn fast_path_is_the_general_path() {
        crate::dsp::simd::init();
        let x = signal(96_000);
        for (makeup, mix) in [(0.0, 100.0), (3.0, 70.0), (0.0, 40.0)] {
            for block in [64, 100, 1024] {
                let fast = render(&x, makeup, mix, block, false);
                let general = render(&x, makeup, mix, block, true);
                assert!(
                    fast == general,
                    "makeup {makeup}, mix {mix}, blocks of {block}"
                );
            }
        }
        // The signal does reach every case the fast path distinguishes.
        let gains: Vec<f64> = render(&x, 0.0, 100.0, 64, false)[0]
            .iter()
            .zip(&x[0])
            .map(|(y, x)| y / x) // NaN where x = 0: silence does not count as released
            .collect();
        assert!(gains.iter().any(|&g| g < 0.5), "reduces");
        assert!(
            gains.chunks(64).any(|c| c.iter().all(|&g| g == 1.0)),
            "releases fully"
        );
    }
}
