//! Oversampling and true-peak interpolation: one filter design, one set of block kernels, and
//! everything built on them — the limiter's true-peak detector (also each deliverable's safety
//! limiter), the true-peak meter's interpolator (`analysis::meters` measures with it), and the
//! up/down converters of nonlinear processing.
//!
//! Everything here is linear-phase windowed-sinc FIR, designed in f64 when a processor or meter
//! is built (allocation happens there, never while processing).
//!
//! | file | owns |
//! |---|---|
//! | [`design`] | `bessel_i0`, the Kaiser window and β, the sinc, half-band stage designs, the polyphase coefficient table ([`PolyphaseTable`]) |
//! | [`kernels`] | the block kernels, portable and AVX2 (the half-band dots also AVX-512), bit-identical to each other |
//! | `halfband` | half-band 2× stages, per sample and per chunk |
//! | [`interpolator`] | the detector's interpolators one sample at a time (its reference) |
//! | [`detector`] | [`TruePeakDetector`], the limiter's detector a chunk at a time |
//! | `split_bound` | the detector's tightest screen: a reading bounded by the samples' magnitudes near it and the second differences around it |
//! | [`polyphase`] | the meter's direct polyphase interpolator ([`PolyphaseInterpolator`]) and its folded scan |
//! | [`oversampler`] | [`Oversampler`], [`BlockOversampler`]: up/down conversion by 2, 4, 8 |
//!
//! The filters:
//!
//! - [`HalfbandInterpolator`]: 4× or 8× interpolation for true-peak detection, as a cascade of
//!   half-band stages whose first stage is long and sharp: 60 dB Kaiser, transition
//!   0.48–0.52·fs, so the interpolated values are within 5·10⁻³ of the ideal (bandlimited)
//!   signal for content up to 0.47·fs (unit test). Inter-sample peaks of dense material (noise,
//!   hard transients) come mostly from content close to fs/2: a 32-tap polyphase design flat
//!   only to 0.44·fs under-read them by up to 0.9 dB, this one by under 0.1 dB.
//! - [`MeterInterpolator`]: a direct polyphase interpolator that reproduces the one of common
//!   BS.1770 meters (libebur128, the `ebur128` crate), which reads near-fs/2 content high; and
//!   [`TruePeakDetector`], the larger of the two readings, time-aligned.
//! - [`PolyphaseInterpolator`]: the true-peak meter's direct polyphase Kaiser-windowed sinc
//!   (32 taps per phase, flat to 0.45·fs; accuracy in `analysis::meters`), with a folded block
//!   scan that skips what cannot raise the running peak.
//! - [`Oversampler`]: a cascade of half-band stages (2× per stage) for up and down conversion.
//!   Stage 1 (next to the base rate) keeps 0–0.45·fs with ≤ 0.0001 dB ripple and rejects
//!   0.55·fs and above by ≥ 96 dB; later stages keep the whole base band 0–0.5·fs and reject
//!   everything that could fold back into it by ≥ 80 dB (their ripple, 1e−4 each, makes a
//!   round trip by 8 flat within 0.005 dB, unit test). A round trip (up, then down) has an
//!   integer latency at the base rate ([`Oversampler::latency`]): each stage's round trip is an
//!   integer number of samples at its own lower rate and a short delay at the top rate pads the
//!   sum to a whole base-rate sample.
//!
//! # Realtime safety
//! Construction allocates; `process`-style methods and `reset` do not.

pub mod design;
pub mod detector;
mod halfband;
pub mod interpolator;
pub mod kernels;
pub mod oversampler;
pub mod polyphase;
mod split_bound;

pub use design::{kaiser_beta, PolyphaseTable};
pub use detector::{force_full, TruePeakDetector};
pub use interpolator::{HalfbandInterpolator, MeterInterpolator};
pub use oversampler::{BlockOversampler, Oversampler, OS_CHUNK};
pub use polyphase::{
    default_kaiser_beta, default_taps, FoldedPhases, PolyphaseInterpolator, SCAN_MAX_NEW,
    SCAN_MAX_TAPS,
};
