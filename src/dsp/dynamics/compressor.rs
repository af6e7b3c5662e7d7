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

use super::core::{
    ballistics, fmax, Cached, Chunk, DetectorKind, GainParams, GainStage, LevelDetector,
    TrackCoefs, CHUNK, LEVEL_FLOOR,
};
use super::fastmath;
use super::optional_param;
use crate::dsp::crossover::SvfState;
use crate::dsp::filters::SvfCoefs;
use crate::dsp::kind::{BuildContext, KindInfo};
use crate::dsp::telemetry::GAIN_REDUCTION_DB;
use crate::dsp::{
    batch_kind, AudioMut, AudioRef, BatchItem, ParamBlock, ParamInfo, ParamValues, ProcessSpec,
    Processor, ProcessorConfig, Telemetry, Unit, MAX_BATCH,
};
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
    /// without its per-sample parameter reads, in three phases per chunk (targets, ballistics,
    /// gains) so that a batch can run the serial middle phase of several compressors side by
    /// side.
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

    /// Frames of the chunk starting at frame `k` of a `frames`-long block.
    fn chunk_len(&self, k: usize, frames: usize) -> usize {
        (CHUNK - (self.position % CHUNK as u64) as usize).min(frames - k)
    }

    /// Fast path, phase 1: the static curve's reductions for frames `k..k + n` into `t`.
    fn fast_targets(
        &mut self,
        audio: &AudioMut<'_>,
        params: &ParamBlock<'_>,
        k: usize,
        n: usize,
        f: &Fast,
        t: &mut Chunk,
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

    /// Fast path, phase 3: the gains from the smoothed reductions `g`, applied to frames
    /// `k..k + n`; the track's new state and the chunk's largest reduction; the chunk's end. A
    /// chunk whose reductions are all 0 (the compressor fully released) has one gain, that of
    /// 0 dB of reduction: computed once, and not applied at all when it is exactly 1.
    fn fast_finish(
        &mut self,
        audio: &mut AudioMut<'_>,
        k: usize,
        n: usize,
        f: &Fast,
        g: &Chunk,
        (state, largest): (f64, f64),
    ) {
        self.stage.set_single_state(state, self.channels);
        // Reductions are never negative (nor NaN: targets are finite), so the largest is 0
        // exactly when all are.
        if largest == 0.0 {
            // What `apply2_impl` computes for g = 0, for every frame.
            let gain = fastmath::db_to_amp(f.track.makeup_db - 0.0);
            let factor = (1.0 - f.mix) + f.mix * gain;
            if factor != 1.0 {
                for c in 0..self.channels {
                    audio.channel_mut(c)[k..k + n]
                        .iter_mut()
                        .for_each(|x| *x *= factor);
                }
            }
        } else if self.channels == 2 {
            let (l, r) = audio.stereo_mut();
            apply2(
                &mut l[k..k + n],
                &mut r[k..k + n],
                &g[..n],
                f.track.makeup_db,
                f.mix,
            );
        } else {
            apply1(
                &mut audio.channel_mut(0)[k..k + n],
                &g[..n],
                f.track.makeup_db,
                f.mix,
            );
        }
        self.position += n as u64;
        if self.position.is_multiple_of(CHUNK as u64) {
            self.detector.flush();
            self.stage.flush();
            self.hpf.flush();
        }
    }
}

/// Static-curve reductions of the detector values `|a|`, `|b|` (the louder of the two; pass the
/// same slice twice for one channel; mean squares are never negative). When every value of the
/// chunk is at or under `quiet`, below the knee by a margin, every reduction is exactly 0 and
/// the logarithms are skipped. (Skipping them for quiet groups of four frames in a louder chunk
/// was tried: slower, the branch mispredicts.)
#[inline(always)]
fn peak_targets_impl(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    let curve = c.curve;
    // Whether every value is at or under `quiet` (a NaN is not): tested value by value and
    // combined, which vectorises, where a running maximum waits on each comparison in turn.
    let under = |v: f64| v <= quiet;
    let all_quiet = a
        .iter()
        .zip(b)
        .fold(true, |q, (&x, &y)| q & under(fmax(x.abs(), y.abs())));
    if all_quiet {
        t.fill(0.0);
        return;
    }
    for ((t, &x), &y) in t.iter_mut().zip(a).zip(b) {
        let v = fmax(x.abs(), y.abs());
        *t = curve.reduction_db(scale * fastmath::log2(fmax(v, LEVEL_FLOOR)));
    }
}

/// `x *= (1 − mix) + mix·gain`, gain = 10^((makeup − g)/20), on two channels.
#[inline(always)]
fn apply2_impl(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    for ((l, r), &g) in l.iter_mut().zip(r.iter_mut()).zip(g) {
        let gain = fastmath::db_to_amp(makeup - g);
        *l *= (1.0 - mix) + mix * gain;
        *r *= (1.0 - mix) + mix * gain;
    }
}

/// [`apply2_impl`] on one channel.
#[inline(always)]
fn apply1_impl(x: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    for (x, &g) in x.iter_mut().zip(g) {
        let gain = fastmath::db_to_amp(makeup - g);
        *x *= (1.0 - mix) + mix * gain;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn peak_targets_avx2(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    peak_targets_impl(a, b, scale, c, quiet, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply2_avx2(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    apply2_impl(l, r, g, makeup, mix)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn apply1_avx2(x: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    apply1_impl(x, g, makeup, mix)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn peak_targets_avx512(
    a: &[f64],
    b: &[f64],
    scale: f64,
    c: &TrackCoefs,
    quiet: f64,
    t: &mut [f64],
) {
    peak_targets_impl(a, b, scale, c, quiet, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn apply2_avx512(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    apply2_impl(l, r, g, makeup, mix)
}

// The logarithm and the exponential are long dependency chains per frame: eight frames per
// instruction (AVX-512) keep twice as many of them in flight in the same scheduler as four.

/// The ballistics of a group: more than four tracks (made only when the CPU has AVX2) in
/// [`ballistics_x8`].
fn group_ballistics<const K: usize>(
    state: &mut [f64; K],
    g: &mut [Chunk; K],
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    #[cfg(target_arch = "x86_64")]
    if K > 4 && crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { ballistics_x8::<K>(state, g, n, coefs) };
    }
    ballistics::<K>(state, g, n, coefs)
}

/// [`ballistics`] of up to eight tracks in two AVX2 registers (lanes past `K` repeat the last
/// track and are not stored): the same operations lane by lane as `core::smooth`, so the same
/// bits; two recursions of a multiply, an add and a blend per frame for all of them.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ballistics_x8<const K: usize>(
    state: &mut [f64; K],
    g: &mut [Chunk; K],
    n: usize,
    coefs: &[TrackCoefs; K],
) -> [f64; K] {
    use std::arch::x86_64::*;
    let track = |h: usize, j: usize| (4 * h + j).min(K - 1);
    let lanes = |f: &dyn Fn(usize) -> f64, h: usize| {
        _mm256_set_pd(
            f(track(h, 3)),
            f(track(h, 2)),
            f(track(h, 1)),
            f(track(h, 0)),
        )
    };
    let each =
        |f: fn(&TrackCoefs) -> f64| [lanes(&|k| f(&coefs[k]), 0), lanes(&|k| f(&coefs[k]), 1)];
    let (a0, a1) = (each(|c| c.attack.0), each(|c| c.attack.1));
    let (r0, r1) = (each(|c| c.release.0), each(|c| c.release.1));
    let mut st = [lanes(&|k| state[k], 0), lanes(&|k| state[k], 1)];
    let mut max = [_mm256_setzero_pd(); 2];
    let halves = K.div_ceil(4);
    for i in 0..n.min(CHUNK) {
        for h in 0..halves {
            let t = lanes(&|k| g[k][i], h);
            let s = st[h];
            let up = _mm256_add_pd(_mm256_mul_pd(a0[h], s), _mm256_mul_pd(a1[h], t));
            let down = _mm256_add_pd(_mm256_mul_pd(r0[h], s), _mm256_mul_pd(r1[h], t));
            let s = _mm256_blendv_pd(down, up, _mm256_cmp_pd::<_CMP_GT_OQ>(t, s));
            st[h] = s;
            // `fmax(max, s)`: vmaxpd returns its first operand only when it is the greater.
            max[h] = _mm256_max_pd(max[h], s);
            let mut out = [0.0f64; 4];
            // SAFETY: four doubles.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), s) };
            for (j, &v) in out.iter().enumerate() {
                if 4 * h + j < K {
                    g[4 * h + j][i] = v;
                }
            }
        }
    }
    let mut all = [[0.0f64; 4]; 2];
    let mut top = [[0.0f64; 4]; 2];
    for h in 0..2 {
        // SAFETY: four doubles each.
        unsafe {
            _mm256_storeu_pd(all[h].as_mut_ptr(), st[h]);
            _mm256_storeu_pd(top[h].as_mut_ptr(), max[h]);
        }
    }
    *state = std::array::from_fn(|k| all[k / 4][k % 4]);
    std::array::from_fn(|k| top[k / 4][k % 4])
}

fn peak_targets(a: &[f64], b: &[f64], scale: f64, c: &TrackCoefs, quiet: f64, t: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { peak_targets_avx512(a, b, scale, c, quiet, t) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { peak_targets_avx2(a, b, scale, c, quiet, t) };
    }
    peak_targets_impl(a, b, scale, c, quiet, t)
}

fn apply2(l: &mut [f64], r: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx512() {
        // SAFETY: the CPU has AVX-512F (checked at run time).
        return unsafe { apply2_avx512(l, r, g, makeup, mix) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { apply2_avx2(l, r, g, makeup, mix) };
    }
    apply2_impl(l, r, g, makeup, mix)
}

fn apply1(x: &mut [f64], g: &[f64], makeup: f64, mix: f64) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { apply1_avx2(x, g, makeup, mix) };
    }
    apply1_impl(x, g, makeup, mix)
}

/// The compressor's [`crate::dsp::BatchKernel`]: compressors on the fast path at the same chunk
/// phase run in lockstep, chunk by chunk, their ballistics (the serial
/// part) side by side; the others run alone. Same bits as `process`.
fn batch(items: &mut [Option<BatchItem<'_>>]) {
    let mut fast: [Option<Fast>; MAX_BATCH] = [None; MAX_BATCH];
    let mut phase = [0u64; MAX_BATCH];
    for (j, item) in items.iter_mut().enumerate() {
        let item = item.as_mut().expect("a full batch");
        let params = item.params;
        if let Some(c) = item.processor.as_any_mut().downcast_mut::<Compressor>() {
            fast[j] = c.fast(false, &params);
            phase[j] = c.position % CHUNK as u64;
        }
    }
    let mut done = [false; MAX_BATCH];
    for j in 0..items.len() {
        if done[j] || fast[j].is_none() {
            continue;
        }
        let mut group = [0usize; MAX_BATCH];
        let mut k = 0;
        for i in j..items.len() {
            if !done[i] && fast[i].is_some() && phase[i] == phase[j] {
                group[k] = i;
                k += 1;
            }
        }
        if k < 2 {
            continue;
        }
        // Four recursions side by side keep the floating-point units busy; more spill out of
        // the registers, unless the AVX2 kernel takes them (up to eight: two registers).
        let k = k.min(if crate::dsp::simd::avx2() { 8 } else { 4 });
        let mut members: [Option<&mut BatchItem<'_>>; MAX_BATCH] = Default::default();
        let mut fasts = [fast[j].expect("fast"); MAX_BATCH];
        let mut slot = 0;
        for (i, item) in items.iter_mut().enumerate() {
            if group[..k].contains(&i) {
                members[slot] = item.as_mut();
                fasts[slot] = fast[i].expect("fast");
                slot += 1;
                done[i] = true;
            }
        }
        match k {
            2 => run_group::<2>(&mut members, &fasts),
            3 => run_group::<3>(&mut members, &fasts),
            4 => run_group::<4>(&mut members, &fasts),
            5 => run_group::<5>(&mut members, &fasts),
            6 => run_group::<6>(&mut members, &fasts),
            7 => run_group::<7>(&mut members, &fasts),
            _ => run_group::<8>(&mut members, &fasts),
        }
    }
    for (j, item) in items.iter_mut().enumerate() {
        if !done[j] {
            let item = item.as_mut().expect("a full batch");
            item.processor.process(&mut item.audio, None, item.params);
        }
    }
}

/// `K` compressors on the fast path, chunk by chunk in lockstep (their chunk phases agree).
fn run_group<const K: usize>(
    members: &mut [Option<&mut BatchItem<'_>>; MAX_BATCH],
    fasts: &[Fast; MAX_BATCH],
) {
    let frames = members[0].as_ref().map_or(0, |m| m.audio.frames());
    let coefs: [TrackCoefs; K] = std::array::from_fn(|k| fasts[k].track);
    let mut max_gr = [0.0f64; K];
    let mut g = [[0.0; CHUNK]; K];
    let mut k0 = 0;
    while k0 < frames {
        let mut n = 0;
        let mut state = [0.0; K];
        for k in 0..K {
            let m = members[k].as_mut().expect("a full group");
            let params = m.params;
            let c = batch_kind::<Compressor>(&mut *m.processor);
            n = c.chunk_len(k0, frames);
            c.fast_targets(&m.audio, &params, k0, n, &fasts[k], &mut g[k]);
            state[k] = c.stage.single_state();
        }
        let max = group_ballistics::<K>(&mut state, &mut g, n, &coefs);
        for k in 0..K {
            let m = members[k].as_mut().expect("a full group");
            let c = batch_kind::<Compressor>(&mut *m.processor);
            max_gr[k] = max_gr[k].max(fmax(0.0, max[k]));
            c.fast_finish(&mut m.audio, k0, n, &fasts[k], &g[k], (state[k], max[k]));
        }
        k0 += n;
    }
    for k in 0..K {
        let m = members[k].as_mut().expect("a full group");
        let c = batch_kind::<Compressor>(&mut *m.processor);
        c.telemetry.set_block(0, max_gr[k], frames);
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
        let frames = audio.frames();
        if let Some(fast) = self.fast(key.is_some(), &params) {
            let mut max_gr: f64 = 0.0;
            let mut g = [[0.0; CHUNK]; 1];
            let mut k = 0;
            while k < frames {
                let n = self.chunk_len(k, frames);
                self.fast_targets(audio, &params, k, n, &fast, &mut g[0]);
                let mut state = [self.stage.single_state()];
                let max = ballistics::<1>(&mut state, &mut g, n, &[fast.track]);
                max_gr = max_gr.max(fmax(0.0, max[0]));
                self.fast_finish(audio, k, n, &fast, &g[0], (state[0], max[0]));
                k += n;
            }
            self.telemetry.set_block(0, max_gr, frames);
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
mod tests {
    use super::*;
    use crate::dsp::buffer::AudioBuffer;
    use crate::dsp::param::ParamSlot;

    /// Loud bursts (reducing), stretches under the knee long enough for the reduction to release
    /// to exactly 0, chunks crossing the knee, silence; a little noise so no two chunks match.
    fn signal(n: usize) -> [Vec<f64>; 2] {
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
    fn render(
        x: &[Vec<f64>; 2],
        makeup: f64,
        mix: f64,
        block: usize,
        varying_mix: bool,
    ) -> Vec<Vec<f64>> {
        let mut c = Compressor::new(2, DetectorKind::Peak, false);
        c.prepare(&ProcessSpec {
            sample_rate: 48000.0,
            max_block: block,
            input_channels: 2,
        });
        let mut slots: Vec<ParamSlot> = c
            .params()
            .iter()
            .map(|p| ParamSlot::new(p.default, block))
            .collect();
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
        let mut buf = AudioBuffer::new(2, block);
        let mut out = vec![Vec::new(), Vec::new()];
        for start in (0..x[0].len()).step_by(block) {
            let n = block.min(x[0].len() - start);
            for ch in 0..2 {
                buf.channel_mut(ch, n)
                    .copy_from_slice(&x[ch][start..start + n]);
            }
            c.process(&mut buf.view_mut(n), None, ParamBlock::new(&slots));
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

/// The builds of the per-frame kernels (portable, AVX2, AVX-512) give the same bits.
#[cfg(all(test, target_arch = "x86_64"))]
mod simd_tests {
    use super::*;
    use crate::dsp::dynamics::core::{pair, StaticCurve};

    /// Detector values from silence to +12 dBFS and chunks all under the knee, in a length
    /// that leaves a tail under every vector width; reductions from 0 to 40 dB.
    fn inputs() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = 64 * 40 + 7;
        let a = (0..n)
            .map(|i| {
                let level = if (i / 64) % 3 == 0 { 0.01 } else { 4.0 };
                level * (i as f64 * 0.37).sin() * (i as f64 * 0.0011).cos()
            })
            .collect();
        let b = (0..n).map(|i| 0.5 * (i as f64 * 0.23).cos()).collect();
        let g = (0..n)
            .map(|i| 40.0 * ((i as f64 * 0.05).sin()).powi(2))
            .collect();
        (a, b, g)
    }

    #[test]
    fn simd_builds_agree() {
        let (a, b, g) = inputs();
        let track = TrackCoefs {
            curve: StaticCurve::new(-20.0, 3.0, 6.0, f64::INFINITY),
            attack: pair(0.9),
            release: pair(0.99),
            makeup_db: 2.5,
        };
        let scale = fastmath::DB_PER_OCTAVE_AMP;
        let quiet = track.curve.quiet_below(scale);
        type Kernel<'a> = &'a dyn Fn(&[f64], &[f64], &mut [f64]);
        let chunks = |f: Kernel<'_>| {
            let mut t = vec![0.0; a.len()];
            for ((t, a), b) in t.chunks_mut(64).zip(a.chunks(64)).zip(b.chunks(64)) {
                f(a, b, t);
            }
            t
        };
        let apply = |f: &dyn Fn(&mut [f64], &mut [f64])| {
            let (mut l, mut r) = (a.clone(), b.clone());
            f(&mut l, &mut r);
            (l, r)
        };
        let t0 = chunks(&|a, b, t| peak_targets_impl(a, b, scale, &track, quiet, t));
        assert!(t0.iter().any(|&t| t > 10.0) && t0.iter().filter(|&&t| t == 0.0).count() > 64);
        let y0 = apply(&|l, r| apply2_impl(l, r, &g, 2.5, 0.8));
        let mut builds = 0;
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            let t = chunks(&|a, b, t| unsafe { peak_targets_avx2(a, b, scale, &track, quiet, t) });
            assert!(t == t0, "AVX2 targets");
            let y = apply(&|l, r| unsafe { apply2_avx2(l, r, &g, 2.5, 0.8) });
            assert!(y == y0, "AVX2 gains");
            builds += 1;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            let t =
                chunks(&|a, b, t| unsafe { peak_targets_avx512(a, b, scale, &track, quiet, t) });
            assert!(t == t0, "AVX-512 targets");
            let y = apply(&|l, r| unsafe { apply2_avx512(l, r, &g, 2.5, 0.8) });
            assert!(y == y0, "AVX-512 gains");
            builds += 1;
        }
        assert!(
            builds > 0 || std::env::var_os("CI").is_none(),
            "no SIMD build compared"
        );
    }

    /// Groups of five to eight tracks in the AVX2 registers smooth as the generic recursion
    /// does, bit for bit: states, smoothed reductions and maxima, over whole and partial chunks.
    #[test]
    fn wide_ballistics_are_the_generic_ones() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            assert!(std::env::var_os("CI").is_none(), "CI machines have AVX2");
            return;
        }
        fn check<const K: usize>() {
            let coefs: [TrackCoefs; K] = std::array::from_fn(|k| TrackCoefs {
                curve: StaticCurve::new(-20.0, 3.0, 6.0, f64::INFINITY),
                attack: pair(0.5 + 0.05 * k as f64),
                release: pair(0.99 - 0.01 * k as f64),
                makeup_db: 0.0,
            });
            let targets = |k: usize, c: usize| -> Chunk {
                std::array::from_fn(|i| {
                    let x = ((i + 64 * c) as f64 * (0.07 + 0.01 * k as f64)).sin();
                    if x > 0.3 {
                        12.0 * x
                    } else {
                        0.0
                    }
                })
            };
            let (mut s0, mut s1) = ([0.0; K], [0.0; K]);
            for (c, n) in [64, 17, 64, 1, 0, 64].into_iter().enumerate() {
                let mut g0: [Chunk; K] = std::array::from_fn(|k| targets(k, c));
                let mut g1 = g0;
                let m0 = ballistics::<K>(&mut s0, &mut g0, n, &coefs);
                // SAFETY: the CPU has AVX2 (checked above).
                let m1 = unsafe { ballistics_x8::<K>(&mut s1, &mut g1, n, &coefs) };
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&s0), bits(&s1), "{K} tracks, chunk {c}: states");
                assert_eq!(bits(&m0), bits(&m1), "{K} tracks, chunk {c}: maxima");
                for k in 0..K {
                    assert_eq!(
                        bits(&g0[k]),
                        bits(&g1[k]),
                        "{K} tracks, chunk {c}, track {k}"
                    );
                }
            }
            assert!(s0.iter().all(|&s| s > 0.0), "the tracks reduce");
        }
        check::<5>();
        check::<6>();
        check::<7>();
        check::<8>();
    }
}
