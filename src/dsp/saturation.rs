//! `saturation`: soft clipping, tape-like and tube-like saturation, oversampled 8×.
//!
//! Per channel: `drive_db` gain → 8× up ([`Oversampler`], half-band cascade, ≥ 96 dB image
//! rejection) → the curve at the high rate → 8× down → (tube: DC blocker) → mix with the dry
//! signal, which is delayed by the oversampler's round-trip latency so that the two are
//! sample-aligned (at `mix_pct` = 0 the output is the input, exactly) → `output_db`.
//!
//! The curves are analytic (no kinks), so their harmonics fall off exponentially and what folds
//! back from above the 8× rate's Nyquist frequency is tiny: a 0 dBFS 15 kHz tone driven by 12 dB
//! leaves its aliases more than 60 dB down (tests/dsp_saturation.rs; at 4× the 13th harmonic
//! already folds back to 3 kHz).
//!
//! - `soft`: `tanh(u)`, a symmetric soft clip to ±1 (odd harmonics).
//! - `tape`: `v / √(1 + v²)` with `v = 2u/π`: a wider, gentler knee than tanh that starts
//!   compressing earlier (small-signal gain 2/π, −3.9 dB; its singularities lie as far from the
//!   real axis as tanh's, so it aliases no more), followed by a gentle one-pole roll-off at the
//!   high rate (−3 dB at 30 kHz: −1 dB at 15 kHz) for the softened top end of tape.
//! - `tube`: `tanh(u + 0.35) − tanh(0.35)`, asymmetric (the two half-waves clip at different
//!   levels): even and odd harmonics; the DC it creates is removed afterwards by a 5 Hz one-pole
//!   high-pass.
//!
//! `tanh` is computed by the module's own `exp` (Cody–Waite range reduction and a degree-11
//! polynomial, relative error below 1e−13), so renders do not depend on the C library.

use super::config::ProcessorConfig;
use super::kind::{BuildContext, KindInfo};
use super::limiter::gain_path::Delay;
use super::oversample::{BlockOversampler, Oversampler, OS_CHUNK};
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor, Unit};
use crate::units::db_to_gain;

/// The characters, as recipes write them.
pub const CHARACTERS: &[&str] = &["soft", "tape", "tube"];

/// Oversampling factor.
pub const FACTOR: usize = 8;

/// Index of `drive_db`.
pub const DRIVE_DB: usize = 0;
/// Index of `mix_pct`.
pub const MIX_PCT: usize = 1;
/// Index of `output_db`.
pub const OUTPUT_DB: usize = 2;

/// Bias of the tube curve.
const TUBE_BIAS: f64 = 0.35;

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "saturation",
    doc: "Saturation, oversampled 8×: `character` = \"soft\" (tanh soft clip), \"tape\" (wider \
          knee, gentle top-end softening) or \"tube\" (asymmetric, even harmonics, DC blocked). \
          `drive_db` into the curve, `mix_pct` with the latency-aligned dry signal, `output_db` \
          after. Latency compensated.",
    build,
    example: || {
        ProcessorConfig::new()
            .num("drive_db", 6.0)
            .num("mix_pct", 100.0)
            .num("output_db", 0.0)
            .text("character", "tape")
    },
};

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    let character = cx.config.take_choice("character", CHARACTERS, "soft")?;
    Ok(Box::new(Saturation::new(cx.input_channels, character)))
}

/// The parameters.
pub fn params() -> Vec<ParamInfo> {
    vec![
        ParamInfo::new("drive_db", Unit::Decibels, 0.0, 36.0, 6.0).doc("gain into the curve"),
        ParamInfo::new("mix_pct", Unit::Percent, 0.0, 100.0, 100.0)
            .doc("wet share; the dry signal is latency-aligned"),
        ParamInfo::new("output_db", Unit::Decibels, -24.0, 12.0, 0.0).doc("level after the mix"),
    ]
}

/// e^x for −700 ≤ x ≤ 0, without the C library (branch-free, so loops over it vectorise).
#[inline(always)]
fn exp_neg(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split in two for an exact reduction (Cody–Waite).
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52: adding it rounds to an integer
    const TWO52: f64 = 4_503_599_627_370_496.0; // 2^52
    let k = (x * LOG2E + MAGIC) - MAGIC;
    let r = (x - k * LN2_HI) - k * LN2_LO; // |r| ≤ ln2/2
                                           // Taylor series of e^r to degree 11 (truncation < 2e−14 relative for |r| ≤ 0.347).
    let mut p = 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^k: the low bits of k + 1023 + 2^52 are the biased exponent.
    let scale = f64::from_bits((k + (TWO52 + 1023.0)).to_bits() << 52);
    p * scale
}

/// tanh without the C library (relative error below 1e−13). For |u| ≥ 20 it is ±1 exactly.
#[inline(always)]
pub fn tanh(u: f64) -> f64 {
    let a = u.abs().min(20.0);
    let e = exp_neg(-2.0 * a);
    ((1.0 - e) / (1.0 + e)).copysign(u)
}

/// High-rate samples of one chunk of every channel.
type HighRate = [[f64; FACTOR * OS_CHUNK]; 2];

/// The curve of `character` (0 soft, 1 tape, 2 tube) on the high-rate samples `hi[c][..len]`
/// of `channels` channels, in place (`lp`: the tape's one-pole state per channel); on CPUs with
/// AVX2 a build of the same code with wider vectors (the same operations, the same bits).
fn curve(
    character: u8,
    hi: &mut HighRate,
    (channels, len): (usize, usize),
    lp: &mut [f64; 2],
    (lp_coef, tube_offset): (f64, f64),
) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { curve_avx2(character, hi, (channels, len), lp, (lp_coef, tube_offset)) };
    }
    curve_impl(character, hi, (channels, len), lp, (lp_coef, tube_offset))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn curve_avx2(
    character: u8,
    hi: &mut HighRate,
    shape: (usize, usize),
    lp: &mut [f64; 2],
    coefs: (f64, f64),
) {
    curve_impl(character, hi, shape, lp, coefs)
}

#[inline(always)]
fn curve_impl(
    character: u8,
    hi: &mut HighRate,
    (channels, len): (usize, usize),
    lp_state: &mut [f64; 2],
    (lp_coef, tube_offset): (f64, f64),
) {
    match character {
        0 => hi
            .iter_mut()
            .take(channels)
            .for_each(|h| h[..len].iter_mut().for_each(|v| *v = tanh(*v))),
        1 => {
            for h in hi.iter_mut().take(channels) {
                for v in &mut h[..len] {
                    let w = *v * std::f64::consts::FRAC_2_PI;
                    *v = w / (1.0 + w * w).sqrt();
                }
            }
            // The tape's one-pole, both channels side by side (two independent recursions
            // overlap; a lone channel's second lane runs on whatever is there and is dropped);
            // its state is flushed after every input sample's FACTOR values.
            let [h0, h1] = hi;
            for (g0, g1) in h0[..len]
                .chunks_exact_mut(FACTOR)
                .zip(h1[..len].chunks_exact_mut(FACTOR))
            {
                let mut lp = *lp_state;
                for (v0, v1) in g0.iter_mut().zip(g1.iter_mut()) {
                    lp[0] += lp_coef * (*v0 - lp[0]);
                    lp[1] += lp_coef * (*v1 - lp[1]);
                    *v0 = lp[0];
                    *v1 = lp[1];
                }
                *lp_state = lp.map(|lp| if lp.abs() < 1e-30 { 0.0 } else { lp });
            }
        }
        _ => hi.iter_mut().take(channels).for_each(|h| {
            h[..len]
                .iter_mut()
                .for_each(|v| *v = tanh(*v + TUBE_BIAS) - tube_offset)
        }),
    }
}

/// Per-channel state.
struct Channel {
    os: BlockOversampler,
    dry: Delay,
    /// Tape's one-pole state at the high rate.
    lp: f64,
    /// DC blocker state (tube).
    dc_x: f64,
    dc_y: f64,
}

crate::signal_state!(Channel { copy: lp, dc_x, dc_y; state: os, dry; });

/// The saturation processor.
pub struct Saturation {
    params: Vec<ParamInfo>,
    channels: usize,
    character: &'static str,
    latency: usize,
    /// Tape's one-pole coefficient at the high rate.
    lp_coef: f64,
    /// DC blocker pole.
    dc_pole: f64,
    state: Vec<Channel>,
    drive: (f64, f64),
    output: (f64, f64),
}

impl Saturation {
    /// A saturation of `character` (one of [`CHARACTERS`]) for `channels` channels.
    pub fn new(channels: usize, character: &'static str) -> Self {
        Self {
            params: params(),
            channels,
            character,
            latency: Oversampler::new(FACTOR).latency(),
            lp_coef: 0.0,
            dc_pole: 0.0,
            state: Vec::new(),
            drive: (f64::NAN, 1.0),
            output: (f64::NAN, 1.0),
        }
    }
}

impl Processor for Saturation {
    fn kind(&self) -> &'static str {
        "saturation"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        let os = BlockOversampler::new(FACTOR);
        self.latency = os.latency();
        let high = spec.sample_rate * FACTOR as f64;
        self.lp_coef = 1.0 - libm::exp(-2.0 * std::f64::consts::PI * 30_000.0 / high);
        self.dc_pole = libm::exp(-2.0 * std::f64::consts::PI * 5.0 / spec.sample_rate);
        self.state = (0..self.channels)
            .map(|_| Channel {
                os: os.clone(),
                dry: Delay::new(self.latency, 0.0),
                lp: 0.0,
                dc_x: 0.0,
                dc_y: 0.0,
            })
            .collect();
    }
    fn reset(&mut self) {
        for ch in &mut self.state {
            ch.os.reset();
            ch.dry.reset(0.0);
            ch.lp = 0.0;
            ch.dc_x = 0.0;
            ch.dc_y = 0.0;
        }
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let drive = params.get(DRIVE_DB);
        let mix = params.get(MIX_PCT);
        let output = params.get(OUTPUT_DB);
        let lp_coef = self.lp_coef;
        let dc_pole = self.dc_pole;
        let tube_offset = tanh(TUBE_BIAS);
        let character: u8 = match self.character {
            "tape" => 1,
            "tube" => 2,
            _ => 0,
        };
        // A chunk at a time, every channel: inputs, drive, the oversampled curve, the dry path
        // and the mix, each over the whole chunk (the same operations per sample as one sample
        // at a time); the curve runs on the channels side by side.
        let mut input = [0.0f64; OS_CHUNK];
        let mut dry = [[0.0f64; OS_CHUNK]; 2];
        let mut wet = [0.0f64; OS_CHUNK];
        let mut hi: HighRate = [[0.0f64; FACTOR * OS_CHUNK]; 2];
        let frames = audio.frames();
        // Channels in pairs (a lone last channel on its own).
        for first in (0..self.channels).step_by(2) {
            let pair = first..(first + 2).min(self.channels);
            let mut start = 0;
            while start < frames {
                let n = (frames - start).min(OS_CHUNK);
                for (c, k) in pair.clone().enumerate() {
                    let ch = &mut self.state[k];
                    let x = &audio.channel(k)[start..start + n];
                    for (i, (v, d)) in x.iter().zip(input.iter_mut()).enumerate() {
                        let v = if v.is_finite() { *v } else { 0.0 };
                        let g = drive.at(start + i);
                        if g != self.drive.0 {
                            self.drive = (g, db_to_gain(g));
                        }
                        dry[c][i] = v;
                        *d = v * self.drive.1;
                    }
                    ch.dry.swap_block(&mut dry[c][..n]);
                    ch.os.up(&input[..n], &mut hi[c][..FACTOR * n]);
                }
                let mut lp = [0.0; 2];
                for (lp, ch) in lp.iter_mut().zip(&self.state[pair.clone()]) {
                    *lp = ch.lp;
                }
                curve(
                    character,
                    &mut hi,
                    (pair.len(), FACTOR * n),
                    &mut lp,
                    (lp_coef, tube_offset),
                );
                for (lp, ch) in lp.iter().zip(&mut self.state[pair.clone()]) {
                    ch.lp = *lp;
                }
                for (c, k) in pair.clone().enumerate() {
                    let ch = &mut self.state[k];
                    ch.os.down(&hi[c][..FACTOR * n], &mut wet[..n]);
                    if character == 2 {
                        for w in &mut wet[..n] {
                            let y = *w - ch.dc_x + dc_pole * ch.dc_y;
                            ch.dc_x = *w;
                            ch.dc_y = if y.abs() < 1e-30 { 0.0 } else { y };
                            *w = y;
                        }
                    }
                    let x = &mut audio.channel_mut(k)[start..start + n];
                    for (i, x) in x.iter_mut().enumerate() {
                        let o = output.at(start + i);
                        if o != self.output.0 {
                            self.output = (o, db_to_gain(o));
                        }
                        let m = mix.at(start + i) * 0.01;
                        *x = self.output.1 * (m * wet[i] + (1.0 - m) * dry[c][i]);
                    }
                }
                start += n;
            }
        }
    }
    fn latency(&self) -> usize {
        self.latency
    }
    crate::hand_over! {
        config: channels, character, latency, lp_coef, dc_pole;
        state: state, drive, output;
        own: params;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_matches_the_definition() {
        let mut worst: f64 = 0.0;
        for i in -40_000..=40_000 {
            let u = i as f64 / 1000.0;
            let want = libm::tanh(u);
            let got = tanh(u);
            worst = worst.max(((got - want) / want.abs().max(1e-300)).abs());
        }
        assert!(worst < 1e-13, "{worst}");
        assert_eq!(tanh(0.0), 0.0);
    }
}
