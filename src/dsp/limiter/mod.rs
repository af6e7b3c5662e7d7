//! `limiter`: the true-peak lookahead limiter. Its promise: the rendered output never exceeds
//! the ceiling, measured as true peak.
//!
//! # Signal flow (per channel, everything per sample)
//!
//! ```text
//! in ─ drive ─┬─ detector (L× true peak per interval) ─ required gain ─ link ───────────┐
//!             │   ┌──────────────────────────────────────────────────────────────────────┘
//!             │   └─ sliding min (hold) ─ release (min) ─ box ∗ box (= lookahead) ─ s_A ─┐
//!             └─ delay D_A ─────────────────────────────────────────────────────── × ───┴─ y
//! y ─┬─ check (same L× interpolator) ─ required gain ─ sliding min ─ box ∗ box ─ s_B ─┐
//!    └─ delay D_B ──────────────────────────────────────────────────────────── × ────┴─ guard ─ out
//! ```
//!
//! **Detector** ([`TruePeakDetector`]). Two readings per input sample, the larger wins: an 8×
//! (or 4×) half-band cascade whose first stage is flat to 0.48·fs (inter-sample peaks of dense
//! material come mostly from content near fs/2, which a short polyphase filter under-reads), with
//! a parabolic refinement between its grid points; and the 4× (2× from 96 kHz) 48-tap
//! interpolator of common BS.1770 meters, which reads near-fs/2 content *high* — obeying it too
//! keeps the output under the ceiling as those meters see it.
//!
//! **Stage A (the limiter).** The required gain `min(1, c_A / peak)` per interval is linked
//! across channels (`link_pct`: a mix with the smaller of the two, never above the channel's own
//! requirement), held by a sliding-window minimum over `A + 2H + 1` samples (a block at a time,
//! `gain_path::WindowMin`; stage B's per-sample hold is a monotonic deque),
//! released (the release stage only ever lowers the gain: `min` with the held value), rounded
//! down to a 2⁻³² grid so the following running sums are exact (no drift; a gain of 1 stays
//! exactly 1), and smoothed by two cascaded moving averages whose combined support is the
//! lookahead `A`. The audio is delayed by `D_A = K + A − 1 + H` (K: the detector's delay,
//! H = 8). By construction every sample within H samples of a detected peak gets a gain at or
//! below what that peak requires (the box cascade only averages held values that are all ≤ it),
//! so the gain is flat at or under the requirement across the core of the interpolation kernel.
//!
//! **Stage B (the safety stage).** What stage A cannot see is the small change of the
//! inter-sample peaks caused by the gain moving within the interpolation kernel (a peak next to a
//! stronger one, or on a gain ramp). Stage B measures the true peak of stage A's *output* with
//! the same detector and, where it exceeds `c_B`, applies the same hold + box construction with
//! a short support (16 samples, ±8 flat): a gain dip, never a clip. On the torture test set it
//! never had to act (stage A alone stayed under `c_B`); its own unit test drives it alone.
//!
//! **Guard.** Last, any sample whose magnitude still exceeds the ceiling itself is set to the
//! ceiling (counted in the `guard_clips` telemetry slot). It makes the sample peak guarantee
//! unconditional; on the torture test set it never engages.
//!
//! **What guarantees what.** Stage A: the detector's reading of the output is at most `c_A`
//! wherever the gain is flat across the kernel. Stage B: the detector's reading of the output is
//! at most `c_B` (to second order in its own gain movement). Guard: `|out| ≤ ceiling` for every
//! sample, exactly. The targets sit a detection margin below the ceiling for what the detector
//! can still miss (grid and band-edge error): `c_B = ceiling − 0.1 dB` at 8×, `ceiling − 0.6 dB`
//! at 4×, and `c_A = c_B − 0.009 dB` so that stage B stays idle while stage A's gain is flat.
//! Measured on the torture set (tests/dsp_limiter.rs, docs/dsp.md): the highest true peak by a
//! 32× reference is 0.07 dB under the ceiling at 8× (0.55 dB at 4×), by `ebur128` 0.11 dB under.
//!
//! **Release.** With `auto_release = false`, the reduction (1 − gain) decays exponentially with
//! time constant `release_ms`. With `auto_release = true` (the default), two envelopes run
//! side by side and the larger reduction wins: a fast one (instant attack, release
//! `release_ms / 10`) and a sustained one that charges towards the reduction with time
//! constant `release_ms` and releases with `release_ms`. Short peaks hardly charge the sustained
//! envelope and recover at the fast rate; long stretches of limiting recover slowly, without
//! pumping.
//!
//! Latency: `D_A + D_B` samples (at 48 kHz: 200 with the default 1.5 ms lookahead, i.e. the
//! lookahead plus 2.7 ms), reported by [`Processor::latency`] and compensated by the graph.

pub(crate) mod gain_path;

use super::config::{ConfigValue, ProcessorConfig};
use super::kind::{BuildContext, KindInfo};
use super::oversample::TruePeakDetector;
use super::state::SignalState;
use super::telemetry::{Telemetry, GAIN_REDUCTION_DB};
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ParamValues, ProcessSpec, Processor, Unit};
use crate::units::{db_to_gain, gain_to_db};
use gain_path::{quantize_down, BoxCascade, Delay, Release, ReleaseCoefs, SlidingMin, WindowMin};
use std::sync::Arc;

/// Index of `ceiling_dbtp`.
pub const CEILING_DBTP: usize = 0;
/// Index of `release_ms`.
pub const RELEASE_MS: usize = 1;
/// Index of `lookahead_ms`.
pub const LOOKAHEAD_MS: usize = 2;
/// Index of `link_pct`.
pub const LINK_PCT: usize = 3;
/// Index of `input_gain_db`.
pub const INPUT_GAIN_DB: usize = 4;

/// Default lookahead, ms.
pub const DEFAULT_LOOKAHEAD_MS: f64 = 1.5;

/// Samples on each side of a detected peak over which stage A's gain is flat.
const HOLD_A: usize = 8;
/// Support of stage B's box cascade, samples.
const ATTACK_B: usize = 16;
/// Samples on each side of a residual peak over which stage B's gain is flat.
const HOLD_B: usize = 8;

/// Telemetry slots: gain reduction (block max, dB), the part of it due to stage B, and the
/// running count of samples the guard had to set to the ceiling.
pub const TELEMETRY: &[&str] = &[GAIN_REDUCTION_DB, "safety_reduction_db", "guard_clips"];

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "limiter",
    doc: "True-peak lookahead limiter: the output never exceeds `ceiling_dbtp`, measured as true \
          peak. Oversampled detector (`oversampling` = 4 or 8, default 8; 1 detects sample peaks \
          only, like most plugin limiters and ffmpeg's alimiter, and then guarantees no more than \
          the sample peak), sliding-window hold, two-box attack equal to the lookahead, \
          program-dependent release (`auto_release`, default true), channel link, and a safety \
          stage that checks the output's (true) peak. `input_gain_db` drives it. Latency: the \
          lookahead plus about 1 ms, compensated.",
    build,
    example,
};

fn example() -> ProcessorConfig {
    ProcessorConfig::new()
        .num("ceiling_dbtp", -1.0)
        .num("release_ms", 100.0)
        .num("lookahead_ms", DEFAULT_LOOKAHEAD_MS)
        .num("link_pct", 100.0)
        .num("input_gain_db", 0.0)
        .num("oversampling", 8.0)
        .with("auto_release", ConfigValue::Bool(true))
}

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    if !(1..=2).contains(&cx.input_channels) {
        return Err(format!(
            "limiter takes a mono or stereo input, not {} channels",
            cx.input_channels
        ));
    }
    let factor = cx.config.take_number("oversampling", 8.0)?;
    if factor != 1.0 && factor != 4.0 && factor != 8.0 {
        return Err(format!(
            "`oversampling` must be 4 or 8 (true peak), or 1 (sample peak), not {factor}"
        ));
    }
    let auto_release = cx.config.take_bool("auto_release", true)?;
    let measure_only = cx.config.take_bool(MEASURE_ONLY, false)?;
    let lookahead = cx
        .config
        .peek_number("lookahead_ms", DEFAULT_LOOKAHEAD_MS)?;
    let from_key = cx.config.take_bool(STAGE_A_FROM_KEY, false)?;
    let readings_only = cx.config.take_number(STAGE_A_READINGS, -1.0)?;
    let probe = cx.config.take_number(STAGE_A_PROBE, -1.0)?;
    let drive_db = cx.config.take_number(SOLVER_DRIVE_DB, 0.0)?;
    let mut limiter = Limiter::new(cx.input_channels, factor as usize, auto_release, lookahead);
    limiter.stage_b = !measure_only;
    limiter.solver_drive = db_to_gain(drive_db);
    limiter.readings = match (from_key, readings_only >= 0.0, probe >= 0.0) {
        (_, true, _) | (_, _, true) if factor == 1.0 => {
            return Err("stage-A readings need a true-peak limiter".into())
        }
        (true, true, _) | (true, _, true) | (_, true, true) => {
            return Err("a limiter either records, probes or takes its readings".into())
        }
        (true, false, false) => Readings::FromKey,
        (false, true, false) => Readings::Only(readings_only),
        (false, false, true) => Readings::Probe(probe),
        (false, false, false) => Readings::Internal,
    };
    Ok(Box::new(limiter))
}

/// Internal option, set by the loudness solver (`render::readings`): stage A's detector
/// readings arrive on the side-chain key, already computed (over the spilled master, times the
/// solver's drive), instead of being computed from the input; the limiter multiplies them by its
/// own `input_gain_db`. Everything else runs as usual.
pub const STAGE_A_FROM_KEY: &str = "__stage_a_from_key";

/// Internal option, set by the loudness solver (`render::readings`): the node outputs, per
/// channel, stage A's detector readings of its input (the true peak per interval, exact wherever
/// it can exceed the given floor, at most the floor elsewhere), rounded up to 32-bit floats, with
/// no latency: what a limiter with [`STAGE_A_FROM_KEY`] takes on its key.
pub const STAGE_A_READINGS: &str = "__stage_a_readings";

/// Internal option, set by the loudness solver (`render::readings`, a speculative final pass):
/// stage A's readings are those a [`STAGE_A_READINGS`] limiter with this floor would put on the
/// key — of the input before the solver's drive ([`SOLVER_DRIVE_DB`]), exact above the floor,
/// rounded up to 32-bit floats — computed by this limiter's own detector, then times the
/// solver's drive and `input_gain_db` as keyed readings are: the bits of that wiring, without
/// the second node, its copy of the input and the gain passes on the way to the key.
pub const STAGE_A_PROBE: &str = "__stage_a_probe";

/// Internal option, set by the loudness solver (`render::target`): its drive, dB, a constant
/// gain on the input (and on keyed readings) ahead of everything the limiter does, `input_gain_db`
/// included: every input sample `v` is taken as `v·drive` (a key's reading `r` as `r·drive`),
/// the product a gain node ahead of the limiter (and one on the key) would hand it, so the same
/// bits without those nodes' passes over the block. Default 0 dB (a factor of exactly 1).
pub const SOLVER_DRIVE_DB: &str = "__solver_drive_db";

/// Stage A's target for `ceiling_db` at `factor`× (linear): the reading above which stage A
/// reduces the gain.
pub fn stage_a_target(ceiling_db: f64, factor: usize) -> f64 {
    targets(ceiling_db, factor).a
}

#[cfg(test)]
thread_local! {
    /// Set by the tests to turn the sample-peak shortcuts off (the general path everywhere) and
    /// compare; counts the blocks that took a shortcut.
    static SHORTCUTS: std::cell::Cell<(bool, u64)> = const { std::cell::Cell::new((true, 0)) };
}

/// Whether the sample-peak shortcuts ([`Limiter::quiet_sample_peaks`], the in-place test of
/// stage B's readings) may run: always, except in a test that compares them with the general
/// path. Counts, in tests, the blocks that ask.
#[inline(always)]
fn shortcuts() -> bool {
    #[cfg(test)]
    {
        let (on, taken) = SHORTCUTS.get();
        SHORTCUTS.set((on, taken + u64::from(on)));
        on
    }
    #[cfg(not(test))]
    true
}

/// Where stage A's detector readings come from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Readings {
    /// Its own detector, on the driven input.
    Internal,
    /// The key ([`STAGE_A_FROM_KEY`]).
    FromKey,
    /// The limiter only outputs the readings of its input, exact above the floor
    /// ([`STAGE_A_READINGS`]).
    Only(f64),
    /// Its own detector on the input before the solver's drive, exact above the floor, the
    /// readings then taken as keyed ones ([`STAGE_A_PROBE`]).
    Probe(f64),
}

impl Readings {
    /// Whether stage A's readings come from elsewhere than the detector on the driven input
    /// (the key, or the probe on the undriven input).
    fn from_outside(self, key: bool) -> bool {
        match self {
            Readings::FromKey => key,
            Readings::Probe(_) => true,
            Readings::Internal | Readings::Only(_) => false,
        }
    }
}

/// Where stage A's readings come from when not from the detector on the driven input.
#[derive(Clone, Copy)]
enum Outside<'k, 'a> {
    /// The key.
    Key(&'k AudioRef<'a>),
    /// The probe's readings, in `p` ([`Readings::Probe`]).
    Probe,
}

/// `v` rounded up to the nearest 32-bit float (as f64): a reading stored as f32 never reads low.
/// For readings (`v ≥ 0` or NaN), without a branch: the next float up from a non-negative one
/// (+0 included) is the next bit pattern, and `+∞` is never below `v`, so a block of them
/// vectorizes; the same values as [`f32::next_up`] (unit test).
#[inline(always)]
fn f32_up(v: f64) -> f64 {
    debug_assert!(!(v < 0.0), "a reading is never negative: {v}");
    let r = v as f32;
    let up = u32::from(f64::from(r) < v);
    f64::from(f32::from_bits(r.to_bits() + up))
}

/// Internal option, set by the loudness solver on the copies of the limiter it only measures
/// (`render::target`): no safety stage B (the delay stays, so the timing is the same). Stage B
/// moves a master's loudness by far less than the solver's tolerance (on the torture set it never
/// acts), and its detector is the dearer half of a limiter limiting throughout.
pub const MEASURE_ONLY: &str = "__measure_only";

/// The parameters.
pub fn params() -> Vec<ParamInfo> {
    vec![
        ParamInfo::new("ceiling_dbtp", Unit::Decibels, -12.0, 0.0, -1.0)
            .doc("true-peak ceiling of the output, dBTP"),
        ParamInfo::new("release_ms", Unit::Milliseconds, 1.0, 1000.0, 100.0)
            .log()
            .doc("release time (with auto_release: the sustained release; fast = a tenth)"),
        ParamInfo::new(
            "lookahead_ms",
            Unit::Milliseconds,
            1.0,
            5.0,
            DEFAULT_LOOKAHEAD_MS,
        )
        .fixed()
        .doc("lookahead = attack time; sets the latency"),
        ParamInfo::new("link_pct", Unit::Percent, 0.0, 100.0, 100.0)
            .doc("stereo link: 100 = one gain for both channels, 0 = independent"),
        ParamInfo::new("input_gain_db", Unit::Decibels, -12.0, 24.0, 0.0)
            .doc("drive into the limiter"),
    ]
}

/// A cached derived value of one parameter: recomputed only when the parameter changes.
#[derive(Debug, Clone, Copy)]
struct Cached<T> {
    key: f64,
    val: T,
}

impl<T: Copy> Cached<T> {
    #[inline(always)]
    fn get(&mut self, key: f64, f: impl FnOnce(f64) -> T) -> T {
        if key != self.key {
            self.key = key;
            self.val = f(key);
        }
        self.val
    }
}

/// Ceiling-derived targets (linear).
#[derive(Debug, Clone, Copy, Default)]
struct Targets {
    ceiling: f64,
    a: f64,
    b: f64,
}

/// The detection margin below the ceiling for stage B's target, dB (none for sample peaks:
/// every sample is seen).
pub fn margin_db(factor: usize) -> f64 {
    if factor >= 8 {
        0.1
    } else if factor >= 4 {
        0.6
    } else {
        0.0
    }
}

/// What the limiter measures per input sample: the true peak of the interval the sample starts
/// (oversampled), or the sample's own magnitude.
#[derive(Clone)]
enum Detector {
    TruePeak(Box<TruePeakDetector>),
    Sample,
}

impl Detector {
    fn new(factor: usize, sample_rate: f64) -> Self {
        if factor == 1 {
            Detector::Sample
        } else {
            Detector::TruePeak(Box::new(TruePeakDetector::new(factor, sample_rate)))
        }
    }
    fn latency(&self) -> usize {
        match self {
            Detector::TruePeak(d) => d.latency(),
            Detector::Sample => 0,
        }
    }
    fn reset(&mut self) {
        if let Detector::TruePeak(d) = self {
            d.reset();
        }
    }
    /// [`Self::peaks`] where `wanted`; elsewhere 0
    /// ([`TruePeakDetector::peaks_above_where`]).
    #[inline]
    fn peaks_where(&mut self, input: &[f64], peaks: &mut [f64], threshold: f64, wanted: &[bool]) {
        match self {
            Detector::TruePeak(d) => d.peaks_above_where(input, peaks, threshold, wanted),
            Detector::Sample => self.peaks(input, peaks, threshold),
        }
    }

    /// Takes `input` in with no reading wanted ([`TruePeakDetector::pass_over`]); whether it
    /// did (a sample-peak detector does not: it reads every sample, wanted or not).
    #[inline]
    fn pass_over(&mut self, input: &[f64]) -> bool {
        match self {
            Detector::TruePeak(d) => d.pass_over(input),
            Detector::Sample => false,
        }
    }

    /// The reading of every sample where it can exceed `threshold`, elsewhere a value at most
    /// `threshold` ([`TruePeakDetector::peaks_above`]; a negative threshold reads every sample).
    #[inline]
    fn peaks(&mut self, input: &[f64], peaks: &mut [f64], threshold: f64) {
        match self {
            Detector::TruePeak(d) => d.peaks_above(input, peaks, threshold),
            Detector::Sample => {
                for (p, x) in peaks.iter_mut().zip(input) {
                    *p = x.abs();
                }
            }
        }
    }
}

fn targets(ceiling_db: f64, factor: usize) -> Targets {
    let b = db_to_gain(ceiling_db - margin_db(factor));
    Targets {
        ceiling: db_to_gain(ceiling_db),
        a: b * 0.999,
        b,
    }
}

/// Stage A's gain path of one channel: hold, release and the box cascade.
struct GainPathA {
    hold: WindowMin,
    release: Release,
    smooth: BoxCascade,
}

impl GainPathA {
    /// Whether the path is at rest: pushing gains of 1 gives exactly 1 (hold window all ones, no
    /// release envelope, box filters full).
    fn is_idle(&self) -> bool {
        self.hold.is_unity() && self.release.is_idle() && self.smooth.is_unity()
    }

    /// The state after pushing `n` gains of 1 into an idle path (which all come out as 1).
    fn skip_unity(&mut self, n: usize) {
        self.hold.skip_unity(n);
        self.smooth.skip_unity(n);
    }

    /// Holds, releases and smooths the required gains `r` in place (frame `start` of the block
    /// first): the hold's runs of minima in vectors ([`WindowMin`]), then one pass that takes
    /// each held gain through the release, the rounding to the sums' grid, the box cascade
    /// ([`gain_path::BoxCascadeView::push_sum`]) and the division by its norm. The release's
    /// recursion sets the pace of that pass (its latency is the gain path's floor); the stages
    /// after it hang off the recursion, so they run in its shadow instead of in passes of their
    /// own. The same bits as pushing one sample at a time through every stage, in every build
    /// (unit test). Returns the smallest smoothed gain.
    ///
    /// It has builds of its own (portable, AVX2, AVX-512, chosen as [`Limiter::process`]
    /// chooses), called, not inlined: inlined into the limiter's one large function, the pass
    /// kept its envelopes and sums on the stack (a store and a load on every recursion).
    fn run(&mut self, r: &mut [f64], release: ReleaseSource<'_, '_>, scratch: &mut Scratch) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if super::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and AVX-512VL (checked at run time).
            return unsafe { self.run_avx512(r, release, scratch) };
        }
        #[cfg(target_arch = "x86_64")]
        if super::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { self.run_avx2(r, release, scratch) };
        }
        self.run_portable(r, release, scratch)
    }

    /// [`Self::run`], portable build.
    #[inline(never)]
    fn run_portable(
        &mut self,
        r: &mut [f64],
        release: ReleaseSource<'_, '_>,
        scratch: &mut Scratch,
    ) -> f64 {
        self.run_impl(r, release, scratch)
    }

    /// [`Self::run`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn run_avx2(
        &mut self,
        r: &mut [f64],
        release: ReleaseSource<'_, '_>,
        scratch: &mut Scratch,
    ) -> f64 {
        self.run_impl(r, release, scratch)
    }

    /// [`Self::run`] compiled for AVX-512 (the hold's passes eight lanes wide).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    #[inline(never)]
    fn run_avx512(
        &mut self,
        r: &mut [f64],
        release: ReleaseSource<'_, '_>,
        scratch: &mut Scratch,
    ) -> f64 {
        self.run_impl(r, release, scratch)
    }

    /// See [`Self::run`].
    #[inline(always)]
    fn run_impl(
        &mut self,
        r: &mut [f64],
        release: ReleaseSource<'_, '_>,
        scratch: &mut Scratch,
    ) -> f64 {
        let ReleaseSource {
            cache,
            values,
            fs,
            auto,
            start,
        } = release;
        if values.is_constant() {
            let k = cache.get(values.first(), |ms| ReleaseCoefs::new(ms, fs));
            if auto {
                self.run_with(
                    r,
                    scratch,
                    #[inline(always)]
                    |rel, g| rel.auto(g, &k),
                )
            } else {
                self.run_with(
                    r,
                    scratch,
                    #[inline(always)]
                    |rel, g| rel.fixed(g, &k),
                )
            }
        } else {
            // The coefficients of frame `start + i` for the i-th held gain.
            let mut i = start;
            let mut coefs = |i: &mut usize| {
                *i += 1;
                cache.get(values.at(*i - 1), |ms| ReleaseCoefs::new(ms, fs))
            };
            if auto {
                self.run_with(
                    r,
                    scratch,
                    #[inline(always)]
                    |rel, g| rel.auto(g, &coefs(&mut i)),
                )
            } else {
                self.run_with(
                    r,
                    scratch,
                    #[inline(always)]
                    |rel, g| rel.fixed(g, &coefs(&mut i)),
                )
            }
        }
    }

    /// [`Self::run`] with `release` taking each held gain through the release envelopes.
    #[inline(always)]
    fn run_with(
        &mut self,
        r: &mut [f64],
        scratch: &mut Scratch,
        mut release: impl FnMut(&mut Release, f64) -> f64,
    ) -> f64 {
        let GainPathA {
            hold,
            release: envelopes,
            smooth,
        } = self;
        let norm = smooth.norm();
        let mut rel = *envelopes;
        let mut least = 1.0f64;
        let mut sums = smooth.view();
        hold.push_block_then(
            r,
            &mut scratch.a,
            &mut scratch.b,
            #[inline(always)]
            |held| {
                let g = sums.push_sum(quantize_down(release(&mut rel, held))) / norm;
                least = if g < least { g } else { least };
                g
            },
        );
        sums.close();
        *envelopes = rel;
        least
    }
}

/// Scratch for a block of the gain path ([`GainPathA::run`]): two buffers of the block's length
/// plus the longest history a stage lays before it.
#[derive(Default)]
struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Scratch {
    fn new(len: usize) -> Self {
        Self {
            a: vec![0.0; len],
            b: vec![0.0; len],
        }
    }
}

/// Whether every value of `x` passes `test`, eight at a time (no early exit within a group, so
/// the groups are tested in vectors; the answer is that of `Iterator::all`).
#[inline(always)]
fn all_by_eights(x: &[f64], test: impl Fn(f64) -> bool) -> bool {
    let mut groups = x.chunks_exact(8);
    for g in &mut groups {
        if !g.iter().fold(true, |all, &v| all & test(v)) {
            return false;
        }
    }
    groups.remainder().iter().all(|&v| test(v))
}

/// Where stage A's release coefficients come from: the `release_ms` values of the block and
/// their cache.
struct ReleaseSource<'c, 'v> {
    cache: &'c mut Cached<ReleaseCoefs>,
    values: ParamValues<'v>,
    fs: f64,
    /// Program-dependent release ([`Release::auto`]), else fixed.
    auto: bool,
    /// The frame of `values` that the block's first gain is at.
    start: usize,
}

/// Per-channel state.
struct Channel {
    det: Detector,
    a: GainPathA,
    delay: Delay,
    check: Detector,
    hold_b: SlidingMin,
    smooth_b: BoxCascade,
    delay_b: Delay,
    /// Stage A's gain on this channel: its latest value and for how many steps it has held it.
    flat: FlatRun,
}

/// A run of equal gains: the value and its length in steps.
#[derive(Debug, Clone, Copy)]
struct FlatRun {
    value: f64,
    len: usize,
}

impl FlatRun {
    /// No run yet: the next gain starts one.
    const NONE: FlatRun = FlatRun {
        value: f64::NAN,
        len: 0,
    };
}

crate::copy_state!([T: Copy] Cached<T>);
crate::signal_state!(GainPathA { copy: release; state: hold, smooth; });
crate::signal_state!(Channel { copy: flat; state: det, a, delay, check, hold_b, smooth_b, delay_b; });

impl SignalState for Detector {
    fn fits(&self, other: &Self) -> bool {
        match (self, other) {
            (Detector::TruePeak(a), Detector::TruePeak(b)) => a.fits(b),
            (Detector::Sample, Detector::Sample) => true,
            _ => false,
        }
    }
    fn copy_from(&mut self, other: &Self) {
        if let (Detector::TruePeak(a), Detector::TruePeak(b)) = (self, other) {
            a.copy_from(b);
        }
    }
}

/// The limiter.
pub struct Limiter {
    params: Vec<ParamInfo>,
    channels: usize,
    factor: usize,
    auto_release: bool,
    lookahead_ms: f64,
    fs: f64,
    latency: usize,
    state: Vec<Channel>,
    x: Vec<Vec<f64>>,
    p: Vec<Vec<f64>>,
    /// Per channel and step of the block: whether stage B needs the reading (stage A's gain
    /// moved within the detector's window; see [`Limiter::mark_moving_gain`]).
    wanted: Vec<Vec<bool>>,
    /// Per channel: whether any step of the block's `wanted` is (false: none is).
    any_wanted: [bool; 2],
    /// Scratch of stage A's gain path.
    scratch: Scratch,
    /// How many steps of equal stage-A gain make stage B's reading of a step unneeded: the
    /// detector's window plus the step itself.
    flat_steps: usize,
    drive: Cached<f64>,
    target: Cached<Targets>,
    release: Cached<ReleaseCoefs>,
    link: Cached<f64>,
    guard_clips: u64,
    /// Whether every channel's stage-A gain path is in the same state as channel 0's, so that
    /// with a full link (identical inputs) channel 0's path serves them all. True from reset
    /// until a block with a partial link.
    paths_equal: bool,
    telemetry: Arc<Telemetry>,
    /// Stage A on (only the safety stage's own test turns it off).
    stage_a: bool,
    /// Stage B on (off only in the loudness solver's measuring copies, see [`MEASURE_ONLY`]).
    stage_b: bool,
    /// Where stage A's readings come from.
    readings: Readings,
    /// The loudness solver's drive, linear ([`SOLVER_DRIVE_DB`]; 1 otherwise).
    solver_drive: f64,
}

impl Limiter {
    /// A limiter for `channels` channels detecting at `factor`× (4 or 8).
    pub fn new(channels: usize, factor: usize, auto_release: bool, lookahead_ms: f64) -> Self {
        Self {
            params: params(),
            channels,
            factor,
            auto_release,
            lookahead_ms: lookahead_ms.clamp(1.0, 5.0),
            fs: 48_000.0,
            latency: 0,
            state: Vec::new(),
            x: Vec::new(),
            p: Vec::new(),
            drive: Cached {
                key: f64::NAN,
                val: 1.0,
            },
            target: Cached {
                key: f64::NAN,
                val: Targets::default(),
            },
            release: Cached {
                key: f64::NAN,
                val: ReleaseCoefs {
                    slow: 0.0,
                    fast: 0.0,
                    charge: 1.0,
                },
            },
            link: Cached {
                key: f64::NAN,
                val: 1.0,
            },
            guard_clips: 0,
            paths_equal: true,
            telemetry: Arc::new(Telemetry::new(TELEMETRY)),
            stage_a: true,
            stage_b: true,
            readings: Readings::Internal,
            solver_drive: 1.0,
            wanted: Vec::new(),
            any_wanted: [true; 2],
            scratch: Scratch::default(),
            flat_steps: usize::MAX,
        }
    }
}

impl Processor for Limiter {
    fn kind(&self) -> &'static str {
        "limiter"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }

    fn prepare(&mut self, spec: &ProcessSpec) {
        self.fs = spec.sample_rate;
        let attack = crate::units::ms_to_samples(self.lookahead_ms, spec.sample_rate).max(1);
        let det = Detector::new(self.factor, spec.sample_rate);
        let k2 = det.latency();
        let delay_a = k2 + attack - 1 + HOLD_A;
        let delay_b = k2 + ATTACK_B - 1 + HOLD_B;
        self.latency = delay_a + delay_b;
        self.state = (0..self.channels)
            .map(|_| Channel {
                det: det.clone(),
                a: GainPathA {
                    hold: WindowMin::new(attack + 2 * HOLD_A + 1),
                    release: Release::default(),
                    smooth: BoxCascade::new(attack),
                },
                delay: Delay::new(delay_a, 0.0),
                check: det.clone(),
                hold_b: SlidingMin::new(ATTACK_B + 2 * HOLD_B + 1),
                smooth_b: BoxCascade::new(ATTACK_B),
                delay_b: Delay::new(delay_b, 0.0),
                flat: FlatRun::NONE,
            })
            .collect();
        let block = spec.max_block.max(1);
        self.x = vec![vec![0.0; block]; self.channels];
        self.p = vec![vec![0.0; block]; self.channels];
        self.wanted = vec![vec![true; block]; self.channels];
        self.scratch = Scratch::new(
            self.state
                .first()
                .map_or(block, |c| c.a.hold.scratch_len(block)),
        );
        self.flat_steps = match &det {
            Detector::TruePeak(d) => d.window() + 1,
            Detector::Sample => 1,
        };
        self.release.key = f64::NAN;
        self.reset();
    }

    fn reset(&mut self) {
        for ch in &mut self.state {
            ch.det.reset();
            ch.a.hold.reset();
            ch.a.release.reset();
            ch.a.smooth.reset();
            ch.delay.reset(0.0);
            ch.check.reset();
            ch.hold_b.reset();
            ch.smooth_b.reset();
            ch.delay_b.reset(0.0);
            ch.flat = FlatRun::NONE;
        }
        self.guard_clips = 0;
        self.paths_equal = true;
    }

    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if super::simd::avx512() {
            // SAFETY: the CPU has AVX-512F and AVX-512VL (checked at run time).
            return unsafe { self.process_avx512(audio, key, params) };
        }
        #[cfg(target_arch = "x86_64")]
        if super::simd::avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { self.process_avx2(audio, key, params) };
        }
        self.process_impl(audio, key, params)
    }

    fn latency(&self) -> usize {
        match self.readings {
            Readings::Only(_) => 0,
            _ => self.latency,
        }
    }
    fn accepts_key(&self) -> bool {
        self.readings == Readings::FromKey
    }
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        Some(self.telemetry.clone())
    }
    crate::hand_over! {
        config: channels, factor, auto_release, lookahead_ms, fs, latency, stage_a, stage_b, readings, solver_drive, flat_steps;
        state: state, drive, target, release, link, guard_clips, paths_equal;
        own: params, x, p, wanted, any_wanted, scratch, telemetry;
    }
}

impl Limiter {
    /// [`Processor::process`] compiled for AVX2: the block passes (drive, links, delays, marks,
    /// the guard, the readings' rounding) in 256-bit vectors; the same operations on every
    /// sample (no reassociation, no fused multiply-add), so the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn process_avx2(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        self.process_impl(audio, key, params)
    }

    /// [`Processor::process`] compiled for AVX-512: the same block passes in 512-bit vectors
    /// (eight samples per load and store), the same operations on every sample, so the same
    /// bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    fn process_avx512(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        self.process_impl(audio, key, params)
    }

    /// See [`Processor::process`].
    #[inline(always)]
    fn process_impl(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let frames = audio.frames();
        let chunk = self.x.first().map_or(0, |v| v.len());
        if chunk == 0 {
            return;
        }
        if let Readings::Only(floor) = self.readings {
            return self.readings_only(audio, floor, chunk);
        }
        let key = key.filter(|_| self.readings == Readings::FromKey);
        let mut min_a = 1.0f64;
        let mut min_b = 1.0f64;
        let mut start = 0;
        while start < frames {
            let n = chunk.min(frames - start);
            let (a, b) = self.run(audio, key.as_ref(), &params, start, n);
            min_a = min_a.min(a);
            min_b = min_b.min(b);
            start += n;
        }
        let gr = -gain_to_db(min_a * min_b);
        self.telemetry
            .set_block(0, if gr > 0.0 { gr } else { 0.0 }, frames);
        let grb = -gain_to_db(min_b);
        self.telemetry.set(1, if grb > 0.0 { grb } else { 0.0 });
        self.telemetry.set(2, self.guard_clips as f64);
    }

    /// Processes frames `start..start + n` of `audio` (n ≤ the scratch length). Returns the
    /// smallest gains of stage A and stage B.
    #[inline(always)]
    fn run(
        &mut self,
        audio: &mut AudioMut<'_>,
        key: Option<&AudioRef<'_>>,
        params: &ParamBlock<'_>,
        start: usize,
        n: usize,
    ) -> (f64, f64) {
        let ceiling = params.get(CEILING_DBTP);
        let link = params.get(LINK_PCT);
        let drive = params.get(INPUT_GAIN_DB);
        let (thr_a, thr_b) = self.thresholds(ceiling);
        let shared = self.shared_path(link);
        let (unity, min_a) = if self.readings.from_outside(key.is_some()) {
            // The readings first: the probe reads the undriven input through `x`, which the
            // drive then fills.
            if let Readings::Probe(floor) = self.readings {
                self.probe(audio, floor, start, n);
            }
            let ones = match key {
                Some(key) => self.required_gains_from_readings(
                    Outside::Key(key),
                    ceiling,
                    link,
                    drive,
                    shared,
                    start,
                    n,
                ),
                None => self.required_gains_from_readings(
                    Outside::Probe,
                    ceiling,
                    link,
                    drive,
                    shared,
                    start,
                    n,
                ),
            };
            self.drive_in::<false>(audio, drive, start, n, thr_a);
            self.gain_path_a(shared, params.get(RELEASE_MS), start, n, ones)
        } else {
            let quiet = self.drive_in::<true>(audio, drive, start, n, thr_a);
            if self.quiet_sample_peaks(quiet, shared, n) {
                ([true, false], 1.0)
            } else {
                for c in 0..self.channels {
                    self.state[c]
                        .det
                        .peaks(&self.x[c][..n], &mut self.p[c][..n], thr_a);
                }
                self.required_gains(ceiling, link, shared, start, n);
                self.gain_path_a(shared, params.get(RELEASE_MS), start, n, None)
            }
        };
        self.delay_and_apply_a(shared, unity, n);
        // The marks are for stage B's detector, which a measuring copy runs only under a moving
        // ceiling (see `safety_stage`).
        if self.stage_b || !ceiling.is_constant() {
            self.mark_moving_gain(shared, unity, n);
        }
        let min_b = self.safety_stage(audio, ceiling, thr_b, start, n);
        (min_a, min_b)
    }

    /// Steps 2–4's gains in one test, for a sample-peak detector: when every driven sample is
    /// at or under stage A's target (`quiet`, from [`Self::drive_in`]) every reading is, so
    /// every required gain is exactly 1, and a path at rest gives 1 throughout: the path is
    /// skipped as [`Self::gain_path_a`] skips it, without the readings and the required gains
    /// (two passes over the block). Only one path (a full link, or one channel) and a constant
    /// ceiling and link, where `required_gains` gives 1 for a reading at or under the target.
    /// Returns whether it did.
    #[inline(always)]
    fn quiet_sample_peaks(&mut self, quiet: bool, shared: bool, n: usize) -> bool {
        let one_path = shared || self.channels == 1;
        let ch = &mut self.state[0];
        if !(quiet && one_path && matches!(ch.det, Detector::Sample) && ch.a.is_idle()) {
            return false;
        }
        if !shortcuts() {
            return false;
        }
        ch.a.skip_unity(n);
        if ch.flat.value != 1.0 {
            // The marks compare the gains with the run before the block: give them the ones.
            self.p[0][..n].fill(1.0);
        }
        true
    }

    /// Step 1, drive: the input times the solver's drive and the drive gain into the scratch
    /// `x` (non-finite input becomes silence so it cannot poison the filters). With `TEST`,
    /// returns whether every driven sample's magnitude is at or under `quiet` (a NaN is not),
    /// tested as it is written (without, `true`: only the sample-peak shortcut asks).
    #[inline(always)]
    fn drive_in<const TEST: bool>(
        &mut self,
        audio: &AudioMut<'_>,
        drive: ParamValues<'_>,
        start: usize,
        n: usize,
        quiet: f64,
    ) -> bool {
        let mut under = true;
        let d = self.solver_drive;
        if drive.is_constant() {
            let g = self.drive.get(drive.first(), db_to_gain);
            for c in 0..self.channels {
                let src = &audio.channel(c)[start..start + n];
                for (x, &v) in self.x[c][..n].iter_mut().zip(src) {
                    let v = v * d;
                    *x = if v.is_finite() { v * g } else { 0.0 };
                    if TEST {
                        under &= x.abs() <= quiet;
                    }
                }
            }
        } else {
            for i in 0..n {
                let g = self.drive.get(drive.at(start + i), db_to_gain);
                for c in 0..self.channels {
                    let v = audio.channel(c)[start + i] * d;
                    self.x[c][i] = if v.is_finite() { v * g } else { 0.0 };
                    if TEST {
                        under &= self.x[c][i].abs() <= quiet;
                    }
                }
            }
        }
        under
    }

    /// Step 2 with [`Readings::Probe`]: the readings of the undriven input (non-finite samples
    /// as silence), exact above `floor`, into `p` (as a [`Readings::Only`] limiter reads them,
    /// before its rounding up), the input muted as the detector takes it in.
    #[inline(always)]
    fn probe(&mut self, audio: &AudioMut<'_>, floor: f64, start: usize, n: usize) {
        for c in 0..self.channels {
            let src = &audio.channel(c)[start..start + n];
            match &mut self.state[c].det {
                Detector::TruePeak(d) => d.peaks_above_muted(src, &mut self.p[c][..n], floor),
                // (`build` gives a probe a true-peak detector; as `Detector::peaks` would.)
                Detector::Sample => {
                    for (p, &v) in self.p[c][..n].iter_mut().zip(src) {
                        *p = if v.is_finite() { v.abs() } else { 0.0 };
                    }
                }
            }
        }
    }

    /// Steps 2 and 3 with stage A's readings from outside: each reading `r` — the key's, or
    /// the probe's in `p` rounded up to a 32-bit float as a recording is — times the solver's
    /// drive and the drive gain, `(r·drive)·gain`, the product the keyed wiring forms (a gain
    /// node on the key, then [`Self::readings_from_key`]); then the required gains as
    /// [`Self::required_gains`] makes them. With one path, a constant ceiling, link and
    /// drive, in one pass that also tells whether every required gain is exactly 1 (for
    /// [`Self::gain_path_a`]); otherwise the readings pass, then `required_gains` (`None`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn required_gains_from_readings(
        &mut self,
        from: Outside<'_, '_>,
        ceiling: ParamValues<'_>,
        link: ParamValues<'_>,
        drive: ParamValues<'_>,
        shared: bool,
        start: usize,
        n: usize,
    ) -> Option<bool> {
        let probe = matches!(from, Outside::Probe);
        let one_pass = shared && ceiling.is_constant() && link.is_constant() && drive.is_constant();
        if !one_pass {
            match from {
                Outside::Key(key) => self.readings_from_key(key, drive, start, n),
                Outside::Probe => self.scale_probe(drive, start, n),
            }
            self.required_gains(ceiling, link, shared, start, n);
            return None;
        }
        let factor = self.factor;
        let stage_a = self.stage_a;
        let t = self.target.get(ceiling.first(), |db| targets(db, factor));
        let g = self.drive.get(drive.first(), db_to_gain);
        let d = self.solver_drive;
        // As `required_gains` with one path: the requirement of the larger reading.
        let need = |a: f64, b: f64| {
            let p = a.max(b);
            if p > t.a && stage_a {
                t.a / p
            } else {
                1.0
            }
        };
        let mut ones = true;
        let (p0, p1) = self.p.split_at_mut(1);
        let out = &mut p0[0][..n];
        if probe {
            let scaled = |r: f64| (f32_up(r) * d) * g;
            for (a, &b) in out.iter_mut().zip(&p1[0][..n]) {
                *a = need(scaled(*a), scaled(b));
                ones &= *a == 1.0;
            }
        } else if let Outside::Key(key) = from {
            let scaled = |r: f64| (r * d) * g;
            let last = key.channels() - 1;
            let (k0, k1) = (
                &key.channel(0)[start..start + n],
                &key.channel(1.min(last))[start..start + n],
            );
            for (a, (&r0, &r1)) in out.iter_mut().zip(k0.iter().zip(k1)) {
                *a = need(scaled(r0), scaled(r1));
                ones &= *a == 1.0;
            }
        }
        Some(ones)
    }

    /// Step 2 with [`Readings::FromKey`]: stage A's readings are the key's (the readings of the
    /// input before the solver's drive and `input_gain_db`) times the solver's drive, then
    /// times the drive gain.
    #[inline(always)]
    fn readings_from_key(
        &mut self,
        key: &AudioRef<'_>,
        drive: ParamValues<'_>,
        start: usize,
        n: usize,
    ) {
        let d = self.solver_drive;
        for c in 0..self.channels {
            let k = &key.channel(c.min(key.channels() - 1))[start..start + n];
            if drive.is_constant() {
                let g = self.drive.get(drive.first(), db_to_gain);
                for (p, &r) in self.p[c][..n].iter_mut().zip(k) {
                    *p = (r * d) * g;
                }
            } else {
                for (i, (p, &r)) in self.p[c][..n].iter_mut().zip(k).enumerate() {
                    *p = (r * d) * self.drive.get(drive.at(start + i), db_to_gain);
                }
            }
        }
    }

    /// Step 2 with [`Readings::Probe`]: the probe's readings in `p` rounded up to 32-bit
    /// floats, times the solver's drive, times the drive gain (as keyed readings are, see
    /// [`Self::readings_from_key`]).
    #[inline(always)]
    fn scale_probe(&mut self, drive: ParamValues<'_>, start: usize, n: usize) {
        let d = self.solver_drive;
        for c in 0..self.channels {
            for (i, p) in self.p[c][..n].iter_mut().enumerate() {
                let g = self.drive.get(drive.at(start + i), db_to_gain);
                *p = (f32_up(*p) * d) * g;
            }
        }
    }

    /// [`Readings::Only`]: every channel of `audio` replaced by stage A's detector readings of
    /// it, exact above `floor`, rounded up to 32-bit floats.
    #[inline(always)]
    fn readings_only(&mut self, audio: &mut AudioMut<'_>, floor: f64, chunk: usize) {
        let frames = audio.frames();
        for c in 0..self.channels {
            let mut start = 0;
            while start < frames {
                let n = chunk.min(frames - start);
                let io = &mut audio.channel_mut(c)[start..start + n];
                for (x, &v) in self.x[c][..n].iter_mut().zip(io.iter()) {
                    *x = if v.is_finite() { v } else { 0.0 };
                }
                let p = &mut self.p[c][..n];
                self.state[c].det.peaks(&self.x[c][..n], p, floor);
                for (o, &r) in io.iter_mut().zip(p.iter()) {
                    *o = f32_up(r);
                }
                start += n;
            }
        }
    }

    /// Step 2's thresholds for stage A's and stage B's detectors. Only readings above stage A's
    /// target change the gain ([`Self::required_gains`]), so with a constant ceiling the
    /// detectors read exactly only where one can exceed their target; with a moving ceiling
    /// they read every sample.
    fn thresholds(&mut self, ceiling: ParamValues<'_>) -> (f64, f64) {
        if ceiling.is_constant() {
            let factor = self.factor;
            let t = self.target.get(ceiling.first(), |db| targets(db, factor));
            (if self.stage_a { t.a } else { f64::INFINITY }, t.b)
        } else {
            (f64::NEG_INFINITY, f64::NEG_INFINITY)
        }
    }

    /// Step 3: the detector readings in `p` become the required gains, linked across channels.
    #[inline(always)]
    fn required_gains(
        &mut self,
        ceiling: ParamValues<'_>,
        link: ParamValues<'_>,
        shared: bool,
        start: usize,
        n: usize,
    ) {
        let factor = self.factor;
        let stage_a = self.stage_a;
        if !(ceiling.is_constant() && link.is_constant()) {
            return self.required_gains_varying(ceiling, link, start, n);
        }
        let t = self.target.get(ceiling.first(), |db| targets(db, factor));
        let need = |p: f64| if p > t.a && stage_a { t.a / p } else { 1.0 };
        if shared {
            // Only path 0 is run. With a full link its gain is `(0·g₀ + m).min(g₀) = m`, the
            // smaller requirement: that of the larger reading (`need` falls as the reading
            // rises, and `max` passes over a NaN as `min` passed over its gain of 1), one
            // division instead of two.
            let (p0, p1) = self.p.split_at_mut(1);
            for (a, &b) in p0[0][..n].iter_mut().zip(&p1[0][..n]) {
                *a = need(a.max(b));
            }
        } else if self.channels == 2 {
            let l = self.link.get(link.first(), |pct| pct * 0.01);
            let (p0, p1) = self.p.split_at_mut(1);
            for (a, b) in p0[0][..n].iter_mut().zip(p1[0][..n].iter_mut()) {
                let g = [need(*a), need(*b)];
                let m = g[0].min(g[1]);
                *a = ((1.0 - l) * g[0] + l * m).min(g[0]);
                *b = ((1.0 - l) * g[1] + l * m).min(g[1]);
            }
        } else {
            for p in &mut self.p[0][..n] {
                *p = need(*p);
            }
        }
    }

    /// [`Self::required_gains`] with the ceiling or the link moving within the block: targets
    /// and link per sample.
    fn required_gains_varying(
        &mut self,
        ceiling: ParamValues<'_>,
        link: ParamValues<'_>,
        start: usize,
        n: usize,
    ) {
        let factor = self.factor;
        for i in 0..n {
            let t = self
                .target
                .get(ceiling.at(start + i), |db| targets(db, factor));
            let mut g = [1.0f64; 2];
            for (c, gc) in g.iter_mut().enumerate().take(self.channels) {
                let p = self.p[c][i];
                if p > t.a && self.stage_a {
                    *gc = t.a / p;
                }
            }
            if self.channels == 2 {
                let l = self.link.get(link.at(start + i), |pct| pct * 0.01);
                let m = g[0].min(g[1]);
                for (c, gc) in g.iter().enumerate() {
                    self.p[c][i] = ((1.0 - l) * gc + l * m).min(*gc);
                }
            } else {
                self.p[0][i] = g[0];
            }
        }
    }

    /// Step 4, gain path A: the required gains in `p` are held, released and smoothed in place
    /// (path 0's alone when `shared`, see [`Self::shared_path`]). Returns which paths gave
    /// exactly 1 throughout (and were skipped), and the smallest gain. `ones`: whether path 0's
    /// required gains are all exactly 1, when already known.
    #[inline(always)]
    fn gain_path_a(
        &mut self,
        shared: bool,
        release: ParamValues<'_>,
        start: usize,
        n: usize,
        ones: Option<bool>,
    ) -> ([bool; 2], f64) {
        let channels = self.channels;
        let mut min_a = 1.0f64;
        let paths = if shared { 1 } else { channels };
        let mut unity = [false; 2];
        for c in 0..paths {
            let a = &mut self.state[c].a;
            let r = &mut self.p[c][..n];
            // At rest and asked for no reduction, the path gives exactly 1 throughout: skip it.
            let all_ones = match ones {
                Some(ones) if c == 0 => ones,
                _ => all_by_eights(r, |g| g == 1.0),
            };
            if a.is_idle() && all_ones {
                a.skip_unity(n);
                unity[c] = true;
                continue;
            }
            let coefs = ReleaseSource {
                cache: &mut self.release,
                values: release,
                fs: self.fs,
                auto: self.auto_release,
                start,
            };
            min_a = min_a.min(a.run(r, coefs, &mut self.scratch));
        }
        (unity, min_a)
    }

    /// Whether one gain path serves both channels in this block: with a full link every
    /// channel's required gain is the same (`(0·g + m).min(g) = m`), so while the paths are in
    /// step path 0 serves all. A block with a partial link puts them out of step for good:
    /// path 1 takes path 0's state and runs on its own from then on.
    fn shared_path(&mut self, link: ParamValues<'_>) -> bool {
        let full_link = self.channels == 2 && link.is_constant() && link.first() * 0.01 == 1.0;
        if self.channels == 2 && !full_link && self.paths_equal {
            let (first, rest) = self.state.split_at_mut(1);
            rest[0].a.copy_from(&first[0].a);
            self.paths_equal = false;
        }
        full_link && self.paths_equal
    }

    /// Step 4's audio side: the drive's output through delay `D_A`, times stage A's gain (path 0's
    /// when `shared`; none where the path gave 1 throughout).
    #[inline(always)]
    fn delay_and_apply_a(&mut self, shared: bool, unity: [bool; 2], n: usize) {
        for c in 0..self.channels {
            let p = if shared { 0 } else { c };
            let x = &mut self.x[c][..n];
            let delay = &mut self.state[c].delay;
            if unity[p] {
                delay.delay_block(x, &mut self.scratch.a);
            } else {
                delay.delay_scaled(x, &self.p[p][..n], &mut self.scratch.a);
            }
        }
    }

    /// Step 4's note for stage B: which of its readings are needed. Where stage A's gain is the
    /// same over a reading's whole window, stage B's detector sees the input times a constant,
    /// whose reading stage A already holds at or under its target `c_A` (0.009 dB under stage
    /// B's `c_B`): such a reading cannot exceed `c_B`, so it is not computed (it reads 0, under
    /// the target, as it would have by far). Only readings over a moving gain are computed: in a
    /// master that is seldom limited, a few; in one limited throughout, most. The output is the
    /// same, bit for bit (tests/dsp_limiter.rs compares it with every reading computed).
    #[inline(always)]
    fn mark_moving_gain(&mut self, shared: bool, unity: [bool; 2], n: usize) {
        let flat_steps = self.flat_steps;
        // When one path serves both channels, so do its marks (both channels' runs have
        // followed the same gains since the last reset: the paths share only from there on).
        let marked = if shared { 1 } else { self.channels };
        for c in 0..marked {
            let FlatRun { value, len } = self.state[c].flat;
            let wanted = &mut self.wanted[c][..n];
            if unity[c] && value == 1.0 {
                // A path that gave exactly 1 throughout continues a run of ones: step i's run is
                // `len + 1 + i` long, wanted while that is under `flat_steps`.
                let still = flat_steps.saturating_sub(len.saturating_add(1)).min(n);
                wanted[..still].fill(true);
                wanted[still..].fill(false);
                self.any_wanted[c] = still > 0;
                self.state[c].flat.len = len.saturating_add(n);
                continue;
            }
            self.state[c].flat =
                mark_runs(&self.p[c][..n], wanted, FlatRun { value, len }, flat_steps);
            self.any_wanted[c] = true;
        }
        if marked < self.channels {
            let (first, rest) = self.wanted.split_at_mut(1);
            rest[0][..n].copy_from_slice(&first[0][..n]);
            self.state[1].flat = self.state[0].flat;
            self.any_wanted[1] = self.any_wanted[0];
        }
    }

    /// Step 5: safety stage B on stage A's output in `x`, then the guard, into `audio`.
    /// Returns stage B's smallest gain.
    #[inline(always)]
    fn safety_stage(
        &mut self,
        audio: &mut AudioMut<'_>,
        ceiling: ParamValues<'_>,
        thr_b: f64,
        start: usize,
        n: usize,
    ) -> f64 {
        let factor = self.factor;
        let mut min_b = 1.0f64;
        if !self.stage_b && ceiling.is_constant() {
            // Measuring only: the stage's delay and the guard.
            for c in 0..self.channels {
                let t = self.target.get(ceiling.first(), |db| targets(db, factor));
                let out = &mut audio.channel_mut(c)[start..start + n];
                let delay = &mut self.state[c].delay_b;
                self.guard_clips += guard_delayed(delay, &self.x[c][..n], out, t.ceiling);
            }
            return min_b;
        }
        for c in 0..self.channels {
            let ch = &mut self.state[c];
            let x = &mut self.x[c][..n];
            let q = &mut self.p[c][..n];
            let out = &mut audio.channel_mut(c)[start..start + n];
            let at_rest = ch.hold_b.is_unity() && ch.smooth_b.is_unity();
            if at_rest && ceiling.is_constant() && matches!(ch.check, Detector::Sample) {
                // A sample-peak check reads |x|: tested in place, without the readings' pass.
                let t = self.target.get(ceiling.first(), |db| targets(db, factor));
                if all_by_eights(x, |v| v.abs() <= t.b) && shortcuts() {
                    ch.hold_b.skip_unity(n);
                    ch.smooth_b.skip_unity(n);
                    self.guard_clips += guard_delayed(&mut ch.delay_b, x, out, t.ceiling);
                    continue;
                }
            }
            if self.stage_a {
                // At rest with no reading wanted (stage A's gain flat over every reading's
                // window), every reading would be 0, under the target: the stage is a delay.
                if at_rest && ceiling.is_constant() && !self.any_wanted[c] && ch.check.pass_over(x)
                {
                    let t = self.target.get(ceiling.first(), |db| targets(db, factor));
                    ch.hold_b.skip_unity(n);
                    ch.smooth_b.skip_unity(n);
                    self.guard_clips += guard_delayed(&mut ch.delay_b, x, out, t.ceiling);
                    continue;
                }
                ch.check.peaks_where(x, q, thr_b, &self.wanted[c][..n]);
            } else {
                ch.check.peaks(x, q, thr_b);
            }
            if ceiling.is_constant() {
                let t = self.target.get(ceiling.first(), |db| targets(db, factor));
                // At rest with every reading under the target, the stage is a delay.
                if at_rest && all_by_eights(q, |q| q <= t.b) {
                    ch.hold_b.skip_unity(n);
                    ch.smooth_b.skip_unity(n);
                    self.guard_clips += guard_delayed(&mut ch.delay_b, x, out, t.ceiling);
                    continue;
                }
            }
            for i in 0..n {
                let t = self
                    .target
                    .get(ceiling.at(start + i), |db| targets(db, factor));
                let r = if q[i] > t.b { t.b / q[i] } else { 1.0 };
                let held = ch.hold_b.push(r);
                let s = ch.smooth_b.push(quantize_down(held));
                min_b = min_b.min(s);
                let mut z = s * ch.delay_b.swap(x[i]);
                if z.abs() > t.ceiling {
                    z = t.ceiling.copysign(z);
                    self.guard_clips += 1;
                }
                out[i] = z;
            }
        }
        min_b
    }
}

/// Marks `wanted[i]` where the run of equal gains ending at `gains[i]` (continuing `run`, the
/// run before the block) is shorter than `flat_steps`, and returns the run at the block's end,
/// its length capped at `flat_steps` (longer runs mark nothing more). The run's start is the
/// one value carried from step to step (a conditional move): the comparisons and the marks
/// need no carried state.
#[inline(always)]
fn mark_runs(gains: &[f64], wanted: &mut [bool], run: FlatRun, flat_steps: usize) -> FlatRun {
    let n = gains.len();
    let Some(&last) = gains.last() else {
        return run;
    };
    // Indices offset by `flat_steps` so that the run before the block starts at or after 0.
    let mut begin = flat_steps - run.len.min(flat_steps);
    let mut value = run.value;
    for (i, (w, &g)) in wanted.iter_mut().zip(gains).enumerate() {
        let at = i + flat_steps;
        begin = if g == value { begin } else { at };
        value = g;
        // The run ending here is `at − begin + 1` long.
        *w = at + 1 - begin < flat_steps;
    }
    FlatRun {
        value: last,
        len: (n + flat_steps - begin).min(flat_steps),
    }
}

/// The guard over a block of `x` delayed by `delay` (one pass): into `out`, every sample above
/// `ceiling` in magnitude set to it. Returns how many were.
#[inline(always)]
fn guard_delayed(delay: &mut Delay, x: &[f64], out: &mut [f64], ceiling: f64) -> u64 {
    let mut clips = 0;
    delay.delay_into(x, out, |z| {
        if z.abs() > ceiling {
            clips += 1;
            ceiling.copysign(z)
        } else {
            z
        }
    });
    clips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::oversample::TruePeakDetector;

    /// The branchless rounding up gives what rounding to nearest and stepping up with
    /// `f32::next_up` gives, on readings across the whole range and at its edges.
    #[test]
    fn f32_up_is_next_up_where_rounding_fell_short() {
        let reference = |v: f64| {
            let r = v as f32;
            if f64::from(r) < v {
                f64::from(r.next_up())
            } else {
                f64::from(r)
            }
        };
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = vec![
            0.0,
            1.0,
            f64::from(f32::MAX),
            f64::from(f32::MAX) * (1.0 + 1e-9),
            f64::from(f32::MIN_POSITIVE),
            1e-50,
            f64::INFINITY,
            f64::MAX,
        ];
        for _ in 0..100_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            // Magnitudes from 1e-40 to 1e40.
            let u = (r >> 11) as f64 / (1u64 << 53) as f64;
            values.push(10f64.powf(80.0 * u - 40.0));
        }
        let mut stepped = 0;
        for v in values {
            assert_eq!(f32_up(v).to_bits(), reference(v).to_bits(), "{v:e}");
            stepped += usize::from(f32_up(v) != f64::from(v as f32));
        }
        assert!(stepped > 10_000);
        assert!(f32_up(f64::NAN).is_nan());
    }
    use crate::dsp::param::ParamSlot;
    use crate::dsp::AudioBuffer;

    /// A xorshift generator for the tests below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Stage A's gain path a block at a time gives the bits of the stages it is made of pushed
    /// one sample at a time (the deque's hold, the release, the rounding, the cascade), in every
    /// build this CPU runs (portable, AVX2, AVX-512), for both releases, constant and moving
    /// release times, and blocks of many lengths.
    #[test]
    fn gain_path_blocks_give_the_per_sample_bits() {
        crate::dsp::simd::init();
        let mut builds = vec![(true, true)];
        if crate::dsp::simd::avx2() {
            builds.push((false, true));
        }
        if crate::dsp::simd::avx512() {
            builds.push((false, false));
        }
        for (portable, avx2_only) in builds {
            crate::dsp::simd::force_portable(portable);
            crate::dsp::simd::force_avx2(avx2_only);
            gain_path_gives_the_per_sample_bits();
        }
        crate::dsp::simd::force_portable(false);
        crate::dsp::simd::force_avx2(false);
    }

    /// [`gain_path_blocks_give_the_per_sample_bits`] in the build the SIMD switches choose.
    fn gain_path_gives_the_per_sample_bits() {
        let fs = 44_100.0;
        let attack = crate::units::ms_to_samples(1.5, fs).max(1);
        let window = attack + 2 * HOLD_A + 1;
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let build = if crate::dsp::simd::avx512() {
            "AVX-512"
        } else if crate::dsp::simd::avx2() {
            "AVX2"
        } else {
            "portable"
        };
        for auto in [true, false] {
            let mut path = GainPathA {
                hold: WindowMin::new(window),
                release: Release::default(),
                smooth: BoxCascade::new(attack),
            };
            let mut scratch = Scratch::new(path.hold.scratch_len(1024));
            let mut hold = SlidingMin::new(window);
            let mut release = Release::default();
            let mut smooth = BoxCascade::new(attack);
            let mut cache = Cached {
                key: f64::NAN,
                val: ReleaseCoefs::new(100.0, fs),
            };
            let mut moving = vec![0.0; 1024];
            let mut limited = 0;
            for block in 0..400 {
                let n = 1 + rng.below(if block % 2 == 0 { 1024 } else { 40 });
                // Required gains: runs of no reduction, and reductions from slight to deep.
                let mut gains = Vec::with_capacity(n);
                while gains.len() < n {
                    let run = 1 + rng.below(300);
                    let deep = rng.unit();
                    for _ in 0..run {
                        let g = if deep < 0.3 {
                            1.0
                        } else {
                            1.0 - deep * deep * rng.unit()
                        };
                        gains.push(g);
                    }
                }
                gains.truncate(n);
                let values = if block % 3 == 0 {
                    let from = 20.0 + 400.0 * rng.unit();
                    for (i, v) in moving[..n].iter_mut().enumerate() {
                        *v = from + i as f64 * 0.25;
                    }
                    ParamValues::Varying(&moving[..n])
                } else {
                    ParamValues::Constant(60.0)
                };
                let want: Vec<f64> = gains
                    .iter()
                    .enumerate()
                    .map(|(i, &g)| {
                        let k = ReleaseCoefs::new(values.at(i), fs);
                        let held = hold.push(g);
                        let released = if auto {
                            release.auto(held, &k)
                        } else {
                            release.fixed(held, &k)
                        };
                        smooth.push(quantize_down(released))
                    })
                    .collect();
                let mut got = gains;
                let source = ReleaseSource {
                    cache: &mut cache,
                    values,
                    fs,
                    auto,
                    start: 0,
                };
                let min = path.run(&mut got, source, &mut scratch);
                for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                    let case = format!("{build}, auto {auto}, block {block}, {i}");
                    assert_eq!(w.to_bits(), g.to_bits(), "{case}");
                }
                let want_min = want.iter().fold(1.0f64, |m, &v| m.min(v));
                assert_eq!(min.to_bits(), want_min.to_bits());
                limited += want.iter().filter(|&&g| g < 1.0).count();
            }
            assert!(limited > 50_000, "{limited}");
        }
    }

    /// The marks of `mark_runs` are those of counting the run one step at a time (the count
    /// capped past `flat_steps`), over runs around `flat_steps` long and blocks across them.
    #[test]
    fn run_marks_match_counting_one_step_at_a_time() {
        let flat_steps = 13;
        let mut rng = Rng(77);
        let mut counted = FlatRun::NONE;
        let mut run = FlatRun::NONE;
        let (mut marked, mut unmarked) = (0, 0);
        let mut gains = Vec::new();
        for _ in 0..2000 {
            let n = 1 + rng.below(60);
            gains.clear();
            while gains.len() < n {
                let g = if rng.below(4) == 0 { 1.0 } else { rng.unit() };
                let len = 1 + rng.below(2 * flat_steps as u64);
                gains.extend(std::iter::repeat_n(g, len));
            }
            gains.truncate(n);
            let mut want = vec![false; n];
            let FlatRun { mut value, mut len } = counted;
            for (w, &s) in want.iter_mut().zip(&gains) {
                len = 1 + usize::from(s == value) * len.min(flat_steps);
                value = s;
                *w = len < flat_steps;
            }
            counted = FlatRun { value, len };
            let mut got = vec![false; n];
            run = mark_runs(&gains, &mut got, run, flat_steps);
            assert_eq!(want, got);
            assert_eq!(run.value.to_bits(), counted.value.to_bits());
            marked += got.iter().filter(|&&w| w).count();
            unmarked += got.iter().filter(|&&w| !w).count();
        }
        assert!(marked > 5_000 && unmarked > 5_000, "{marked} {unmarked}");
    }

    /// One limiter's output over `x` (per channel) in blocks of the lengths `blocks` in turn,
    /// through `process`, or through the build `run` gives, as bits ([`limit_keyed`] without a
    /// key, at the limiter's link).
    fn limit(
        lim: &mut Limiter,
        x: &[Vec<f64>],
        blocks: &[usize],
        run: &dyn Fn(&mut Limiter, &mut AudioMut<'_>, ParamBlock<'_>),
    ) -> Vec<u64> {
        let link = lim.params[LINK_PCT].default;
        limit_keyed(lim, x, None, link, blocks, &|lim, audio, _, params| {
            run(lim, audio, params)
        })
        .iter()
        .flatten()
        .map(|v| v.to_bits())
        .collect()
    }

    /// Noise at levels that change every few thousand samples: silence, well under stage A's
    /// target, just under and just over it, and far over (limited for a while).
    fn passages(channels: usize, len: usize) -> Vec<Vec<f64>> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let a = targets(-1.0, 1).a;
        let levels = [
            0.0,
            0.3 * a,
            0.999 * a,
            a,
            1.0005 * a,
            0.5 * a,
            2.0 * a,
            0.9 * a,
        ];
        (0..channels)
            .map(|c| {
                (0..len)
                    .map(|i| {
                        let level = levels[(i / (2500 + 700 * c)) % levels.len()];
                        level * (2.0 * rng.unit() - 1.0)
                    })
                    .collect()
            })
            .collect()
    }

    /// A sample-peak limiter's shortcuts (the quiet block's readings and required gains
    /// skipped, stage B's readings tested in place) give the general path's output, bit for
    /// bit: mono and stereo, full and partial link, blocks of several lengths; they are taken
    /// on some blocks and not on others.
    #[test]
    fn sample_peak_shortcuts_give_the_general_bits() {
        crate::dsp::simd::init();
        let process: &dyn Fn(&mut Limiter, &mut AudioMut<'_>, ParamBlock<'_>) =
            &|lim, audio, params| lim.process(audio, None, params);
        for channels in [1, 2] {
            let x = passages(channels, 60_000);
            for link in [100.0, 40.0] {
                for blocks in [&[512][..], &[64, 1000, 7, 300]] {
                    let mut lim = Limiter::new(channels, 1, true, 1.5);
                    lim.params[LINK_PCT].default = link;
                    SHORTCUTS.set((true, 0));
                    let fast = limit(&mut lim, &x, blocks, process);
                    let taken = SHORTCUTS.get().1;
                    SHORTCUTS.set((false, 0));
                    let general = limit(&mut lim, &x, blocks, process);
                    SHORTCUTS.set((true, 0));
                    let case = format!("{channels} channel(s), link {link}, blocks {blocks:?}");
                    assert!(fast == general, "{case}");
                    assert!(taken > 10, "{case}: the shortcuts ran ({taken} blocks)");
                    assert!(lim.guard_clips == 0, "{case}");
                    let limited = fast
                        .iter()
                        .zip(x.iter().flatten())
                        .filter(|(&y, &x)| f64::from_bits(y) != x)
                        .count();
                    assert!(limited > 1000, "{case}: the limiter acts");
                }
            }
        }
    }

    /// One build of [`Limiter::process`] (portable, AVX2, AVX-512), with a key.
    type Build<'a> =
        dyn Fn(&mut Limiter, &mut AudioMut<'_>, Option<AudioRef<'_>>, ParamBlock<'_>) + 'a;

    /// The builds this CPU runs, the portable one first.
    fn every_build() -> Vec<(&'static str, &'static Build<'static>)> {
        let mut builds: Vec<(&'static str, &'static Build<'static>)> =
            vec![("portable", &|lim, audio, key, params| {
                lim.process_impl(audio, key, params)
            })];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked here).
                builds.push(("AVX2", &|lim, audio, key, params| unsafe {
                    lim.process_avx2(audio, key, params)
                }));
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU has AVX-512F and AVX-512VL (checked here).
                builds.push(("AVX-512", &|lim, audio, key, params| unsafe {
                    lim.process_avx512(audio, key, params)
                }));
            }
        }
        builds
    }

    /// `lim`'s output over `x` (per channel), its key `key` when given, at `link_pct` = `link`,
    /// in blocks of the lengths `blocks` in turn, through `build`.
    fn limit_keyed(
        lim: &mut Limiter,
        x: &[Vec<f64>],
        key: Option<&[Vec<f64>]>,
        link: f64,
        blocks: &[usize],
        build: &Build<'_>,
    ) -> Vec<Vec<f64>> {
        let channels = x.len();
        let max = *blocks.iter().max().expect("blocks");
        lim.params[LINK_PCT].default = link;
        lim.prepare(&ProcessSpec {
            sample_rate: 48_000.0,
            max_block: max,
            input_channels: channels,
        });
        let slots: Vec<ParamSlot> = lim
            .params()
            .iter()
            .map(|p| ParamSlot::new(p.default, max))
            .collect();
        let mut buf = AudioBuffer::new(channels, max);
        let mut keys = AudioBuffer::new(channels, max);
        let mut out = vec![Vec::new(); channels];
        let (mut start, mut b) = (0, 0);
        while start < x[0].len() {
            let n = blocks[b % blocks.len()].min(x[0].len() - start);
            for c in 0..channels {
                buf.channel_mut(c, n)
                    .copy_from_slice(&x[c][start..start + n]);
                if let Some(k) = key {
                    keys.channel_mut(c, n)
                        .copy_from_slice(&k[c][start..start + n]);
                }
            }
            let key = key.map(|_| keys.view(n));
            build(lim, &mut buf.view_mut(n), key, ParamBlock::new(&slots));
            for (c, out) in out.iter_mut().enumerate() {
                out.extend_from_slice(buf.channel(c, n));
            }
            start += n;
            b += 1;
        }
        out
    }

    /// A limiter probing its undriven input ([`STAGE_A_PROBE`]) under the solver's drive
    /// ([`SOLVER_DRIVE_DB`]), and one under that drive taking the recorded readings on its key,
    /// give the bits of the wiring they replace: a readings-only limiter whose output, times the
    /// drive (a gain node), is the key of a limiter whose input a gain node drives. In every
    /// build (the same bits in all), at 4× and 8×, mono and stereo, full and partial link (the
    /// one-pass and the two-pass required gains), at 0 and +4.3 dB, over passages the limiter
    /// leaves alone and passages it limits.
    #[test]
    fn probe_and_solver_drive_give_the_bits_of_the_keyed_wiring() {
        crate::dsp::simd::init();
        let blocks = [700, 64, 1000, 33];
        let bits =
            |v: &[Vec<f64>]| -> Vec<u64> { v.iter().flatten().map(|x| x.to_bits()).collect() };
        for factor in [4, 8] {
            for channels in [1, 2] {
                let x = passages(channels, 20_000);
                for link in [100.0, 40.0] {
                    for drive_db in [0.0, 4.3] {
                        let d = db_to_gain(drive_db);
                        // What a gain node of `drive_db` hands on.
                        let gain_node = |v: &[Vec<f64>]| -> Vec<Vec<f64>> {
                            v.iter()
                                .map(|c| {
                                    c.iter()
                                        .map(|&s| if d != 1.0 { s * d } else { s })
                                        .collect()
                                })
                                .collect()
                        };
                        let floor = stage_a_target(-1.0, factor) / db_to_gain(drive_db + 1.5);
                        let case = format!(
                            "{factor}x, {channels} channel(s), link {link}, {drive_db:+} dB"
                        );
                        let mut want: Option<Vec<u64>> = None;
                        for (name, build) in every_build() {
                            let fresh = |readings: Readings, drive: f64| {
                                let mut lim = Limiter::new(channels, factor, true, 1.5);
                                lim.readings = readings;
                                lim.solver_drive = drive;
                                lim
                            };
                            let readings = limit_keyed(
                                &mut fresh(Readings::Only(floor), 1.0),
                                &x,
                                None,
                                link,
                                &blocks,
                                build,
                            );
                            let wired = limit_keyed(
                                &mut fresh(Readings::FromKey, 1.0),
                                &gain_node(&x),
                                Some(&gain_node(&readings)),
                                link,
                                &blocks,
                                build,
                            );
                            let probed = limit_keyed(
                                &mut fresh(Readings::Probe(floor), d),
                                &x,
                                None,
                                link,
                                &blocks,
                                build,
                            );
                            let keyed = limit_keyed(
                                &mut fresh(Readings::FromKey, d),
                                &x,
                                Some(&readings),
                                link,
                                &blocks,
                                build,
                            );
                            let wired = bits(&wired);
                            assert!(bits(&probed) == wired, "{case}, {name}: probed");
                            assert!(bits(&keyed) == wired, "{case}, {name}: keyed");
                            // The limiter acts: the driven input's peaks (beyond the ceiling)
                            // do not come out.
                            let peak = |v: &mut dyn Iterator<Item = f64>| {
                                v.fold(0.0f64, |m, s| m.max(s.abs()))
                            };
                            let (peak_in, peak_out) = (
                                peak(&mut gain_node(&x).into_iter().flatten()),
                                peak(&mut wired.iter().map(|&b| f64::from_bits(b))),
                            );
                            assert!(
                                peak_in > 1.5 && peak_out <= db_to_gain(-1.0),
                                "{case}: peaks {peak_in} in, {peak_out} out"
                            );
                            match &want {
                                None => want = Some(wired),
                                Some(w) => assert!(*w == wired, "{case}, {name}: builds differ"),
                            }
                        }
                    }
                }
            }
        }
    }

    /// The builds of the limiter (portable, AVX2, AVX-512) give the same bits, at 1×, 4× and
    /// 8× detection, mono and stereo.
    #[test]
    fn simd_builds_agree() {
        crate::dsp::simd::init();
        let builds = every_build();
        assert!(
            builds.len() > 1 || std::env::var_os("CI").is_none(),
            "CI machines have AVX2"
        );
        for factor in [1, 4, 8] {
            for channels in [1, 2] {
                let x = passages(channels, 30_000);
                let blocks = [256, 1000, 33];
                let run = |build: &Build<'_>| {
                    let mut lim = Limiter::new(channels, factor, true, 1.5);
                    let link = lim.params[LINK_PCT].default;
                    limit_keyed(&mut lim, &x, None, link, &blocks, build)
                };
                let (_, portable) = builds[0];
                let want = run(portable);
                for (name, build) in &builds[1..] {
                    assert!(
                        run(*build) == want,
                        "{name}, {factor}x, {channels} channel(s)"
                    );
                }
            }
        }
    }

    /// The safety stage on its own (stage A off) brings a signal 6 dB over the ceiling under its
    /// target, as read by the same detector, and the guard never has to act.
    #[test]
    fn safety_stage_alone_holds_the_target() {
        let fs = 48_000.0;
        let mut lim = Limiter::new(1, 8, true, 1.5);
        lim.stage_a = false;
        lim.prepare(&ProcessSpec {
            sample_rate: fs,
            max_block: 512,
            input_channels: 1,
        });
        let slots: Vec<ParamSlot> = lim
            .params()
            .iter()
            .map(|p| ParamSlot::new(p.default, 512))
            .collect();
        let mut buf = AudioBuffer::new(1, 512);
        let mut out = Vec::new();
        let mut safety: f64 = 0.0;
        for b in 0..40 {
            for (i, v) in buf.channel_mut(0, 512).iter_mut().enumerate() {
                let t = (b * 512 + i) as f64 / fs;
                *v = 1.78 * libm::sin(2.0 * std::f64::consts::PI * 1_000.0 * t + 0.3);
            }
            lim.process(&mut buf.view_mut(512), None, ParamBlock::new(&slots));
            out.extend_from_slice(buf.channel(0, 512));
            safety = safety.max(lim.telemetry.get(1));
        }
        let mut det = TruePeakDetector::new(8, fs);
        let mut peaks = vec![0.0; out.len()];
        det.peaks(&out, &mut peaks);
        let worst = peaks.iter().cloned().fold(0.0, f64::max);
        let target = targets(-1.0, 8).b;
        assert!(
            safety > 5.0,
            "the safety stage did the limiting: {safety} dB"
        );
        assert!(
            worst <= target * (1.0 + 1e-3),
            "{} dB over",
            gain_to_db(worst / target)
        );
        assert_eq!(lim.guard_clips, 0);
    }
}
