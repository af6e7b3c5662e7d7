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
//!
//! A deliverable's dither (flat TPDF) is [`TpdfQuantizer`]: the same noise and rounding, written
//! straight into the file's integers in the pass that quantizes them. The stereo kernels (AVX2,
//! AVX-512: both channels' generators side by side in vector lanes) are in `kernels`.

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

#[cfg(target_arch = "x86_64")]
mod kernels;

/// Flat TPDF dither of a stereo block (`l` and `r` as long), in place, both channels'
/// generators side by side in vector lanes where the CPU has AVX2 (four frames a step) or
/// AVX-512 (eight): the same noise and the same operations on it as [`Dither::process`]'s loop
/// without shaping, so the same bits. Returns the frames done (the rest, and everything without
/// AVX2, is the caller's), the generators advanced past them.
fn flat_stereo(
    l: &mut [f64],
    r: &mut [f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        // SAFETY: the CPU has AVX-512F, AVX-512VL and AVX2 (checked at run time).
        return unsafe { flat_stereo_avx512(l, r, gl, gr, scale) };
    }
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
    let frames = l.len().min(r.len());
    let inv = _mm256_set1_pd(1.0 / scale);
    kernels::noise_avx2(frames, gl, gr, |n, dl, dr| {
        for (x, d) in [(&mut l[n..n + 4], dl), (&mut r[n..n + 4], dr)] {
            // SAFETY: `x` holds four samples.
            unsafe {
                let q = kernels::flat_avx2(_mm256_loadu_pd(x.as_ptr()), d, scale);
                _mm256_storeu_pd(x.as_mut_ptr(), _mm256_mul_pd(q, inv));
            }
        }
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn flat_stereo_avx512(
    l: &mut [f64],
    r: &mut [f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
) -> usize {
    use std::arch::x86_64::*;
    let frames = l.len().min(r.len());
    let inv = _mm512_set1_pd(1.0 / scale);
    let done = kernels::noise_avx512(frames, gl, gr, |n, dl, dr| {
        for (x, d) in [(&mut l[n..n + 8], dl), (&mut r[n..n + 8], dr)] {
            // SAFETY: `x` holds eight samples.
            unsafe {
                let q = kernels::flat_avx512(_mm512_loadu_pd(x.as_ptr()), d, scale);
                _mm512_storeu_pd(x.as_mut_ptr(), _mm512_mul_pd(q, inv));
            }
        }
    });
    done + flat_stereo_avx2(&mut l[done..frames], &mut r[done..frames], gl, gr, scale)
}

/// Flat TPDF dither (no noise shaping) straight into a file's integers: what a [`Dither`] of
/// `bits` and `seed` without shaping makes of the samples (the same generators, noise and
/// rounding), then what [`crate::io::quantize::quantize_planes`] makes of its output, computed
/// at once. The dither's output lies on the grid of the word length, so quantizing it is exact
/// and clips nothing: the integer is the dither's rounded value itself and the value read back
/// from it the dither's output. A deliverable's last stage, one pass over its samples instead
/// of the dither's and then the quantizer's.
pub struct TpdfQuantizer {
    bits: u32,
    generators: Vec<Xoshiro256>,
}

impl TpdfQuantizer {
    /// For `channels` channels of `bits` bits (8 to 24, as the processor holds them), seeded as
    /// a [`Dither`] of `seed` (up to 2³² − 1, as the processor holds it).
    pub fn new(channels: usize, bits: u32, seed: u64) -> Self {
        let seed = seed.min(u64::from(u32::MAX));
        Self {
            bits: bits.clamp(8, 24),
            generators: (0..channels).map(|c| channel_generator(seed, c)).collect(),
        }
    }

    /// Advances the noise past `frames` frames, as dithering them would (frames dropped).
    pub fn skip(&mut self, frames: usize) {
        for g in &mut self.generators {
            for _ in 0..frames {
                g.next_u64();
            }
        }
    }

    /// Dithers `frames` frames of `planes` (one slice per channel) into `ints` (interleaved,
    /// at least `frames × channels` long) and, when `back` is given (one slice per channel,
    /// each at least `frames` long), the values a decoder reads back from them. Stereo eight
    /// frames a step with AVX-512, four with AVX2, where the CPU has them: the same values.
    pub fn quantize(
        &mut self,
        planes: &[&[f64]],
        frames: usize,
        ints: &mut [i32],
        mut back: Option<&mut [&mut [f64]]>,
    ) {
        let channels = planes.len();
        assert_eq!(channels, self.generators.len(), "one plane per channel");
        assert!(ints.len() >= frames * channels, "room for every sample");
        let scale = (1u64 << (self.bits - 1)) as f64;
        let done = match (&mut self.generators[..], planes, back.as_deref_mut()) {
            ([gl, gr], [l, r], None) => {
                quantize_stereo(&l[..frames], &r[..frames], gl, gr, scale, ints, None)
            }
            ([gl, gr], [l, r], Some([bl, br])) => {
                let back = Some((&mut bl[..frames], &mut br[..frames]));
                quantize_stereo(&l[..frames], &r[..frames], gl, gr, scale, ints, back)
            }
            _ => 0,
        };
        let (lo, hi, inv) = (-scale, scale - 1.0, 1.0 / scale);
        for n in done..frames {
            for (c, (plane, g)) in planes.iter().zip(&mut self.generators).enumerate() {
                let x = plane[n];
                let v = if x.is_finite() { x * scale } else { 0.0 };
                let q = round_nearest(v + g.tpdf()).clamp(lo, hi);
                ints[n * channels + c] = q as i32;
                if let Some(b) = back.as_deref_mut() {
                    b[c][n] = q * inv;
                }
            }
        }
    }
}

/// [`TpdfQuantizer::quantize`] of a stereo block's first frames, where the CPU has AVX-512 or
/// AVX2; returns the frames done (none without them).
fn quantize_stereo(
    l: &[f64],
    r: &[f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
    ints: &mut [i32],
    back: Option<(&mut [f64], &mut [f64])>,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx512() {
        // SAFETY: the CPU has AVX-512F, AVX-512VL and AVX2 (checked at run time).
        return unsafe { quantize_stereo_avx512(l, r, gl, gr, scale, ints, back) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { quantize_stereo_avx2(l, r, gl, gr, scale, ints, back) };
    }
    let _ = (l, r, gl, gr, scale, ints, back);
    0
}

/// [`quantize_stereo`] four frames a step: the dithered integers interleaved into `ints`, and
/// into `back` scaled back.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantize_stereo_avx2(
    l: &[f64],
    r: &[f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
    ints: &mut [i32],
    mut back: Option<(&mut [f64], &mut [f64])>,
) -> usize {
    use std::arch::x86_64::*;
    let frames = l.len().min(r.len()).min(ints.len() / 2);
    let inv = _mm256_set1_pd(1.0 / scale);
    kernels::noise_avx2(frames, gl, gr, |n, dl, dr| {
        let dst = &mut ints[2 * n..2 * n + 8];
        // SAFETY: four samples of `l` and `r` from `n`; the two 16-byte stores fill `dst` (8
        // integers). The values are integers within ±2²³: converting them is exact.
        let (ql, qr) = unsafe {
            let ql = kernels::flat_avx2(_mm256_loadu_pd(l.as_ptr().add(n)), dl, scale);
            let qr = kernels::flat_avx2(_mm256_loadu_pd(r.as_ptr().add(n)), dr, scale);
            let (il, ir) = (_mm256_cvttpd_epi32(ql), _mm256_cvttpd_epi32(qr));
            _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm_unpacklo_epi32(il, ir));
            _mm_storeu_si128(dst.as_mut_ptr().add(4).cast(), _mm_unpackhi_epi32(il, ir));
            (ql, qr)
        };
        if let Some((bl, br)) = back.as_mut() {
            let (bl, br) = (&mut bl[n..n + 4], &mut br[n..n + 4]);
            // SAFETY: four values each.
            unsafe {
                _mm256_storeu_pd(bl.as_mut_ptr(), _mm256_mul_pd(ql, inv));
                _mm256_storeu_pd(br.as_mut_ptr(), _mm256_mul_pd(qr, inv));
            }
        }
    })
}

/// [`quantize_stereo_avx2`] eight frames a step; the last frames (fewer than eight) by it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2")]
fn quantize_stereo_avx512(
    l: &[f64],
    r: &[f64],
    gl: &mut Xoshiro256,
    gr: &mut Xoshiro256,
    scale: f64,
    ints: &mut [i32],
    mut back: Option<(&mut [f64], &mut [f64])>,
) -> usize {
    use std::arch::x86_64::*;
    let frames = l.len().min(r.len()).min(ints.len() / 2);
    let inv = _mm512_set1_pd(1.0 / scale);
    // Integer k of the left vector and integer k of the right one, in turn.
    let zip = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let done = kernels::noise_avx512(frames, gl, gr, |n, dl, dr| {
        let dst = &mut ints[2 * n..2 * n + 16];
        // SAFETY: eight samples of `l` and `r` from `n`; the 64-byte store fills `dst` (16
        // integers). The values are integers within ±2²³: converting them is exact.
        let (ql, qr) = unsafe {
            let ql = kernels::flat_avx512(_mm512_loadu_pd(l.as_ptr().add(n)), dl, scale);
            let qr = kernels::flat_avx512(_mm512_loadu_pd(r.as_ptr().add(n)), dr, scale);
            let il = _mm512_castsi256_si512(_mm512_cvttpd_epi32(ql));
            let ir = _mm512_castsi256_si512(_mm512_cvttpd_epi32(qr));
            _mm512_storeu_si512(
                dst.as_mut_ptr().cast(),
                _mm512_permutex2var_epi32(il, zip, ir),
            );
            (ql, qr)
        };
        if let Some((bl, br)) = back.as_mut() {
            let (bl, br) = (&mut bl[n..n + 8], &mut br[n..n + 8]);
            // SAFETY: eight values each.
            unsafe {
                _mm512_storeu_pd(bl.as_mut_ptr(), _mm512_mul_pd(ql, inv));
                _mm512_storeu_pd(br.as_mut_ptr(), _mm512_mul_pd(qr, inv));
            }
        }
    });
    let back = back.map(|(bl, br)| (&mut bl[done..], &mut br[done..]));
    let (l, r) = (&l[done..frames], &r[done..frames]);
    done + quantize_stereo_avx2(l, r, gl, gr, scale, &mut ints[2 * done..], back)
}

/// The generator of channel `c` of a dither seeded `seed`.
fn channel_generator(seed: u64, c: usize) -> Xoshiro256 {
    Xoshiro256::new(seed ^ ((c as u64 + 1) << 40))
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
                rng: channel_generator(self.seed, c),
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
            ch.rng = channel_generator(seed, c);
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
pub(crate) mod tests {
    use super::*;
    use crate::dsp::standalone::Standalone;
    use crate::dsp::AudioBuffer;

    /// Music-like noise near full scale (so that some samples clip), with NaN, infinities and
    /// huge values now and then.
    fn signal(frames: usize) -> AudioBuffer {
        signal_of(2, frames)
    }

    /// [`signal`] of `channels` channels.
    pub(crate) fn signal_of(channels: usize, frames: usize) -> AudioBuffer {
        let mut noise = crate::dsp::test_signal::noise(3);
        let mut b = AudioBuffer::new(channels, frames);
        for c in 0..channels {
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

    /// The builds a test compares: portable, AVX2, and AVX-512 where the CPU has them.
    pub(crate) fn builds() -> Vec<&'static str> {
        crate::dsp::simd::init();
        let mut b = vec!["portable"];
        if crate::dsp::simd::avx2() {
            b.push("avx2");
        }
        if crate::dsp::simd::avx512() {
            b.push("avx512");
        }
        b
    }

    /// Runs `f` on the calling thread with `build` forced.
    pub(crate) fn on_build<R>(build: &str, f: impl FnOnce() -> R) -> R {
        crate::dsp::simd::force_portable(build == "portable");
        crate::dsp::simd::force_avx2(build == "avx2");
        let r = f();
        crate::dsp::simd::force_portable(false);
        crate::dsp::simd::force_avx2(false);
        r
    }

    /// Block lengths that cross every kernel's step (1, 4, 8 frames) unevenly.
    pub(crate) const BLOCKS: [usize; 8] = [1, 7, 1024, 513, 4, 999, 9, 444];

    /// The flat stereo dither gives the same bits on every build (AVX-512 and AVX2 beside the
    /// portable loop), block after block of uneven lengths.
    #[test]
    fn flat_stereo_dither_is_the_same_on_every_build() {
        let frames: usize = BLOCKS.iter().sum();
        let input = signal(frames);
        for bits in [16.0, 24.0] {
            let run = |build: &str| {
                on_build(build, || {
                    let config = ProcessorConfig::new().num("bits", bits).num("seed", 5.0);
                    let mut d = Standalone::new("dither", &config, 2, 48_000.0, 1024).unwrap();
                    let mut out = Vec::new();
                    let mut at = 0;
                    for len in BLOCKS {
                        let mut block = AudioBuffer::new(2, len);
                        for c in 0..2 {
                            block
                                .channel_mut(c, len)
                                .copy_from_slice(&input.view(frames).channel(c)[at..at + len]);
                        }
                        d.process(&mut block.view_mut(len));
                        for c in 0..2 {
                            out.extend(block.view(len).channel(c).iter().map(|x| x.to_bits()));
                        }
                        at += len;
                    }
                    out
                })
            };
            let want = run("portable");
            // The output is on the grid, and the noise is there.
            let scale = 2f64.powf(bits - 1.0);
            assert!(want
                .iter()
                .all(|&x| (f64::from_bits(x) * scale).fract() == 0.0));
            assert!(want.iter().any(|&x| f64::from_bits(x) != 0.0));
            for build in builds() {
                assert_eq!(run(build), want, "{bits} bits, {build}");
            }
        }
    }
}
