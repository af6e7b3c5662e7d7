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
        for c in 0..self.channels {
            let ch = &mut self.state[c];
            for x in audio.channel_mut(c).iter_mut() {
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
