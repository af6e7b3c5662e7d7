//! `dither`: TPDF dither and word-length reduction, with optional noise shaping.
//!
//! The output is **already quantised** to the grid of `bits`: every sample is exactly
//! `k / 2^(bits−1)` with `k` an integer in `[−2^(bits−1), 2^(bits−1) − 1]` (rounding to nearest),
//! so a file writer of the same word length converts it exactly and dither is never applied twice.
//!
//! Per sample, in LSB units (`v` the input × 2^(bits−1)):
//!
//! ```text
//! w = v − Σ c_k·e[n−k]            (error feedback; no terms without shaping)
//! q = round(w + d),  d ~ TPDF ±1 LSB (sum of two independent uniforms in ±½ LSB)
//! e[n] = q − w                    (the total error, dither included)
//! out = q / 2^(bits−1)
//! ```
//!
//! so `out = in + (1 − H(z))·e`: flat TPDF has a total error of LSB/2 RMS (−96.3 dBFS at 16 bit),
//! independent of the signal; the shaping filters push it towards high frequencies. The filters
//! (error-feedback coefficients as used by SoX and ffmpeg's swresample) are designed for 44.1 kHz
//! (`lipshitz`, `wannamaker3`) and about 46 kHz (`fweighted9`); they are used within ±5 % of
//! 44.1 kHz or 48 kHz. At other rates the processor falls back to flat TPDF, says so on stderr
//! when it is prepared, and reports `noise_shaping_active = 0` in its telemetry. Samples that
//! clip at full scale feed back an error limited to ±1 LSB, so the shaping filter cannot run away.
//!
//! The noise comes from a xoshiro256** generator per channel, seeded from `seed` and the channel
//! index through SplitMix64: renders are reproducible to the bit, and channels are independent.

use super::config::ProcessorConfig;
use super::kind::{BuildContext, KindInfo};
use super::telemetry::Telemetry;
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor, Unit};
use std::sync::Arc;

/// The noise-shaping choices, as recipes write them.
pub const SHAPINGS: &[&str] = &["none", "lipshitz", "wannamaker3", "fweighted9"];

/// Error-feedback coefficients of each shaping filter.
fn coefficients(shaping: &str) -> &'static [f64] {
    match shaping {
        "lipshitz" => &[2.033, -2.165, 1.959, -1.590, 0.6149],
        "wannamaker3" => &[1.623, -0.982, 0.109],
        "fweighted9" => &[
            2.412, -3.370, 3.937, -4.174, 3.353, -2.205, 1.281, -0.569, 0.0847,
        ],
        _ => &[],
    }
}

/// Whether a shaping filter is valid at `sample_rate` (within ±5 % of 44.1 or 48 kHz).
pub fn shaping_valid_at(sample_rate: f64) -> bool {
    [44_100.0, 48_000.0]
        .iter()
        .any(|r| (sample_rate / r - 1.0).abs() <= 0.05)
}

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "dither",
    doc: "TPDF dither and quantisation to `bits` (8–24): the output lies exactly on the target \
          grid, so the file writer's rounding is exact. `noise_shaping` = \"none\", \"lipshitz\", \
          \"wannamaker3\" or \"fweighted9\" (valid within ±5 % of 44.1/48 kHz; flat TPDF \
          elsewhere, with a warning). `seed` makes renders reproducible.",
    build,
    example: || {
        ProcessorConfig::new()
            .num("bits", 16.0)
            .num("seed", 1.0)
            .text("noise_shaping", "lipshitz")
    },
};

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    let shaping = cx.config.take_choice("noise_shaping", SHAPINGS, "none")?;
    let bits = cx.config.peek_number("bits", 16.0)?;
    let seed = cx.config.peek_number("seed", 0.0)?;
    if bits.fract() != 0.0 {
        return Err(format!("`bits` must be a whole number, not {bits}"));
    }
    if seed.fract() != 0.0 || seed < 0.0 {
        return Err(format!(
            "`seed` must be a whole number from 0 to 4294967295, not {seed}"
        ));
    }
    Ok(Box::new(Dither::new(
        cx.input_channels,
        bits.clamp(8.0, 24.0) as u32,
        shaping,
        seed.min(4_294_967_295.0) as u64,
    )))
}

/// The parameters (both fixed: they decide the output grid and the noise sequence).
pub fn params() -> Vec<ParamInfo> {
    vec![
        ParamInfo::new("bits", Unit::Plain, 8.0, 24.0, 16.0)
            .fixed()
            .doc("target word length"),
        ParamInfo::new("seed", Unit::Plain, 0.0, 4_294_967_295.0, 0.0)
            .fixed()
            .doc("noise generator seed (whole number): same seed, same bits"),
    ]
}

/// SplitMix64 step (seeds the generators).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** (Blackman & Vigna): fast, 2^256 − 1 period, good equidistribution.
#[derive(Debug, Clone)]
pub struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    /// A generator seeded from `seed` through SplitMix64.
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        Self {
            s: [
                splitmix64(&mut st),
                splitmix64(&mut st),
                splitmix64(&mut st),
                splitmix64(&mut st),
            ],
        }
    }
    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
    /// A TPDF value in (−1, 1): the sum of two independent uniforms in [−½, ½) (32-bit each).
    #[inline(always)]
    pub fn tpdf(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / 4_294_967_296.0;
        let r = self.next_u64();
        let a = (r >> 32) as f64;
        let b = (r & 0xFFFF_FFFF) as f64;
        (a + b) * SCALE - 1.0
    }
}

/// Rounds to the nearest integer (ties to even) for |v| < 2^51, exactly and without a call.
#[inline(always)]
fn round_nearest(v: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    (v + MAGIC) - MAGIC
}

/// Flat TPDF dither of a stereo block (`l` and `r` as long), both channels' generators side
/// by side in vector lanes, four frames at a time, where the CPU has AVX2: the same noise and
/// the same operations on it as [`Dither::process`]'s loop without shaping, so the same bits.
/// Returns the frames done (a multiple of four; the rest, and everything without AVX2, is the
/// caller's), the generators advanced past them.
fn flat_stereo(
    l: &mut [f64],
    r: &mut [f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { flat_stereo_avx2(l, r, gl, gr, scale) };
    }
    let _ = (l, r, gl, gr, scale);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn flat_stereo_avx2(
    l: &mut [f64],
    r: &mut [f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
) -> usize {
    use std::arch::x86_64::*;
    // Lane 0 is the left channel's generator, lane 1 the right's.
    let mut s: [__m128i; 4] =
        std::array::from_fn(|k| _mm_set_epi64x(gr.s[k] as i64, gl.s[k] as i64));
    // One step of both generators (xoshiro256**'s state update); gives the `s[1]` the step's
    // output is scrambled from.
    let step = |s: &mut [__m128i; 4]| {
        let s1 = s[1];
        let t = _mm_slli_epi64::<17>(s1);
        s[2] = _mm_xor_si128(s[2], s[0]);
        s[3] = _mm_xor_si128(s[3], s[1]);
        s[1] = _mm_xor_si128(s[1], s[2]);
        s[0] = _mm_xor_si128(s[0], s[3]);
        s[2] = _mm_xor_si128(s[2], t);
        s[3] = _mm_or_si128(_mm_slli_epi64::<45>(s[3]), _mm_srli_epi64::<19>(s[3]));
        s1
    };
    // `rotl(s1 · 5, 7) · 9` (wrapping), then `Xoshiro256::tpdf`: the halves as exact doubles
    // (a 32-bit integer in the mantissa of 2⁵², less 2⁵²), `(a + b) · 2⁻³² − 1`.
    let tpdf = |s1: __m256i| {
        let m5 = _mm256_add_epi64(_mm256_slli_epi64::<2>(s1), s1);
        let rot = _mm256_or_si256(_mm256_slli_epi64::<7>(m5), _mm256_srli_epi64::<57>(m5));
        let x = _mm256_add_epi64(_mm256_slli_epi64::<3>(rot), rot);
        let exp = _mm256_set1_epi64x(0x4330_0000_0000_0000);
        let two52 = _mm256_set1_pd(4_503_599_627_370_496.0);
        let as_f64 =
            |v: __m256i| _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, exp)), two52);
        let a = as_f64(_mm256_srli_epi64::<32>(x));
        let b = as_f64(_mm256_and_si256(x, _mm256_set1_epi64x(0xFFFF_FFFF)));
        _mm256_sub_pd(
            _mm256_mul_pd(_mm256_add_pd(a, b), _mm256_set1_pd(1.0 / 4_294_967_296.0)),
            _mm256_set1_pd(1.0),
        )
    };
    let vscale = _mm256_set1_pd(scale);
    let inv = _mm256_set1_pd(1.0 / scale);
    let (lo, hi) = (_mm256_set1_pd(-scale), _mm256_set1_pd(scale - 1.0));
    let magic = _mm256_set1_pd(6_755_399_441_055_744.0);
    let (sign, inf) = (_mm256_set1_pd(-0.0), _mm256_set1_pd(f64::INFINITY));
    // `Dither::process` without shaping on four samples and their noise.
    let dither = |x: &mut [f64], d: __m256d| {
        // SAFETY: `x` holds four samples.
        let v = unsafe { _mm256_loadu_pd(x.as_ptr()) };
        let finite = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, v), inf);
        let w = _mm256_and_pd(_mm256_mul_pd(v, vscale), finite);
        let q = _mm256_sub_pd(_mm256_add_pd(_mm256_add_pd(w, d), magic), magic);
        let q = _mm256_min_pd(_mm256_max_pd(q, lo), hi);
        // SAFETY: as above.
        unsafe { _mm256_storeu_pd(x.as_mut_ptr(), _mm256_mul_pd(q, inv)) };
    };
    let frames = l.len().min(r.len());
    let mut n = 0;
    while n + 4 <= frames {
        let (a0, a1, a2, a3) = (step(&mut s), step(&mut s), step(&mut s), step(&mut s));
        // [L0 R0 L1 R1] and [L2 R2 L3 R3], then per channel.
        let d01 = tpdf(_mm256_set_m128i(a1, a0));
        let d23 = tpdf(_mm256_set_m128i(a3, a2));
        let dl = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpacklo_pd(d01, d23));
        let dr = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_unpackhi_pd(d01, d23));
        dither(&mut l[n..n + 4], dl);
        dither(&mut r[n..n + 4], dr);
        n += 4;
    }
    for (k, v) in s.iter().enumerate() {
        gl.s[k] = _mm_cvtsi128_si64(*v) as u64;
        gr.s[k] = _mm_extract_epi64::<1>(*v) as u64;
    }
    n
}

/// Most error-feedback taps of any shaping filter.
const MAX_TAPS: usize = 9;

/// Per-channel state.
#[derive(Debug, Clone)]
struct Channel {
    rng: Xoshiro256,
    /// Past errors, newest first.
    err: [f64; MAX_TAPS],
}

crate::signal_state!(Xoshiro256 { copy: s; });
crate::signal_state!(Channel { copy: err; state: rng; });

/// The dither processor.
pub struct Dither {
    params: Vec<ParamInfo>,
    channels: usize,
    bits: u32,
    shaping: &'static str,
    seed: u64,
    /// The shaping coefficients in use (empty: flat TPDF).
    coefs: &'static [f64],
    state: Vec<Channel>,
    telemetry: Arc<Telemetry>,
    /// Why the shaping asked for is not used (found by `prepare`).
    warning: Option<String>,
}

impl Dither {
    /// Dither to `bits` with `shaping` (one of [`SHAPINGS`]) for `channels` channels.
    pub fn new(channels: usize, bits: u32, shaping: &'static str, seed: u64) -> Self {
        let mut d = Self {
            params: params(),
            channels,
            bits,
            shaping,
            seed,
            coefs: coefficients(shaping),
            state: Vec::new(),
            telemetry: Arc::new(Telemetry::new(&["noise_shaping_active"])),
            warning: None,
        };
        d.reset_state();
        d
    }

    fn reset_state(&mut self) {
        self.state = (0..self.channels)
            .map(|c| Channel {
                rng: Xoshiro256::new(self.seed ^ ((c as u64 + 1) << 40)),
                err: [0.0; MAX_TAPS],
            })
            .collect();
    }
}

impl Processor for Dither {
    fn kind(&self) -> &'static str {
        "dither"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        self.coefs = coefficients(self.shaping);
        self.warning = None;
        if !self.coefs.is_empty() && !shaping_valid_at(spec.sample_rate) {
            self.warning = Some(format!(
                "dither: noise shaping \"{}\" is designed for 44.1/48 kHz and is not valid at \
                 {} Hz; using flat TPDF dither instead",
                self.shaping, spec.sample_rate
            ));
            self.coefs = &[];
        }
        self.telemetry
            .set(0, if self.coefs.is_empty() { 0.0 } else { 1.0 });
        self.reset_state();
    }
    fn reset(&mut self) {
        let seed = self.seed;
        for (c, ch) in self.state.iter_mut().enumerate() {
            ch.rng = Xoshiro256::new(seed ^ ((c as u64 + 1) << 40));
            ch.err = [0.0; MAX_TAPS];
        }
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        _params: ParamBlock<'_>,
    ) {
        let scale = (1u64 << (self.bits - 1)) as f64;
        let inv = 1.0 / scale; // exact: a power of two
        let (lo, hi) = (-scale, scale - 1.0);
        let coefs = self.coefs;
        let taps = coefs.len();
        // Flat stereo: both channels' noise at once, the same values (`flat_stereo`).
        let done = if taps == 0 && self.channels == 2 {
            let (l, r) = audio.stereo_mut();
            let (gl, gr) = self.state.split_at_mut(1);
            flat_stereo(l, r, &mut gl[0].rng, &mut gr[0].rng, scale)
        } else {
            0
        };
        for c in 0..self.channels {
            let ch = &mut self.state[c];
            for x in audio.channel_mut(c).iter_mut().skip(done) {
                let v = if x.is_finite() { *x * scale } else { 0.0 };
                let mut w = v;
                for (c, e) in coefs.iter().zip(&ch.err) {
                    w -= c * e;
                }
                let q = round_nearest(w + ch.rng.tpdf()).clamp(lo, hi);
                if taps > 0 {
                    ch.err.copy_within(0..taps - 1, 1);
                    // |q − w| ≤ 1.5 LSB unless the sample clipped; then the fed-back error is
                    // limited so the shaping filter cannot run away.
                    let e = q - w;
                    ch.err[0] = if q > lo && q < hi {
                        e
                    } else {
                        e.clamp(-1.0, 1.0)
                    };
                }
                *x = q * inv;
            }
        }
    }
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        Some(self.telemetry.clone())
    }
    crate::hand_over! {
        config: channels, bits, shaping, seed;
        state: state;
        own: params, coefs, telemetry, warning;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::standalone::Standalone;
    use crate::dsp::AudioBuffer;

    /// Music-like noise near full scale (so that some samples clip), with NaN, infinities and
    /// huge values now and then.
    fn signal(frames: usize) -> AudioBuffer {
        let mut noise = crate::dsp::test_signal::noise(3);
        let mut b = AudioBuffer::new(2, frames);
        for c in 0..2 {
            for (n, x) in b.channel_mut(c, frames).iter_mut().enumerate() {
                *x = match (n + 5 * c) % 53 {
                    7 => f64::NAN,
                    11 => f64::INFINITY,
                    13 => f64::NEG_INFINITY,
                    17 => 1e308,
                    19 => 1.2,
                    _ => noise() * 2.2,
                };
            }
        }
        b
    }

    /// The flat stereo dither's AVX2 path gives the portable path's bits, block after block
    /// of uneven lengths (the generators carry on across blocks and the frames left over), at
    /// 16 and 24 bits.
    #[test]
    fn flat_stereo_dither_in_lanes_is_the_portable_dither() {
        crate::dsp::simd::init();
        let frames = 3001;
        let input = signal(frames);
        for bits in [16.0, 24.0] {
            let run = |portable: bool| {
                crate::dsp::simd::force_portable(portable);
                let config = ProcessorConfig::new().num("bits", bits).num("seed", 9.0);
                let mut d = Standalone::new("dither", &config, 2, 44_100.0, 1024).unwrap();
                let mut out = AudioBuffer::new(2, frames);
                for c in 0..2 {
                    out.channel_mut(c, frames)
                        .copy_from_slice(input.view(frames).channel(c));
                }
                let mut at = 0;
                for len in [1, 7, 1024, 513, 4, 999, 453] {
                    let mut block = AudioBuffer::new(2, len);
                    for c in 0..2 {
                        block
                            .channel_mut(c, len)
                            .copy_from_slice(&out.view(frames).channel(c)[at..at + len]);
                    }
                    d.process(&mut block.view_mut(len));
                    for c in 0..2 {
                        out.channel_mut(c, frames)[at..at + len]
                            .copy_from_slice(block.view(len).channel(c));
                    }
                    at += len;
                }
                assert_eq!(at, frames);
                crate::dsp::simd::force_portable(false);
                out
            };
            let want = run(true);
            let got = run(false);
            let scale = 2f64.powf(bits - 1.0);
            for c in 0..2 {
                let (w, g) = (want.view(frames), got.view(frames));
                for (n, (a, b)) in w.channel(c).iter().zip(g.channel(c)).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{bits} bits, ch {c}, frame {n}");
                }
                // The output is on the grid and the noise is there.
                assert!(w.channel(c).iter().all(|x| (x * scale).fract() == 0.0));
            }
        }
    }
}
