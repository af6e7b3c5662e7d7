//! The speculative final pass of a loudness solve.
//!
//! The solve's first drive is the target minus the pre-limiter loudness: exact when the limiter
//! does (almost) nothing at that drive, as on most masters aimed at a streaming target. Then
//! the measuring pass that would confirm it is wasted work: the final pass can run at that drive
//! straight away, its limiter fed the readings a measuring pass would record (the same bits, no
//! recording kept: nothing replays a kept final pass), and measure its own output. When it lands
//! within the solver's tolerance it *is* the final pass; when not, its measurement is the
//! solve's first point (only the deliverables' work is lost, and one detection: the solve's next
//! pass records the readings) and the solve goes on as it would have.
//!
//! Whether to speculate is judged from the spill's sample magnitudes, counted as the spill is
//! written ([`PeakHistogram`]): the share of frames that come within [`TRUE_PEAK_HEADROOM_DB`]
//! of the limiter's threshold at the first drive. Music whose inter-sample peaks exceed its
//! sample peaks by more than that is rare, and a wrong guess costs one pass's deliverables, not
//! a wrong master: the decision never changes the result, only how fast it is reached.

use crate::dsp::AudioRef;
use crate::units::db_to_gain;

/// How far over its sample peak a signal's true peak is assumed to reach, dB.
pub const TRUE_PEAK_HEADROOM_DB: f64 = 1.5;
/// The largest share of frames that may reach the limiter's threshold (less the headroom) for
/// the first pass to be run as the final one.
/// (A limiter acting on a share `s` of the frames costs roughly `15·s`…`20·s` LU on the masters
/// measured — 7e-4 of the frames: 0.01 LU; 4 %: 0.8 LU — so this aims at 0.02 LU, under the
/// solver's 0.05 LU tolerance.)
pub const MAX_SHARE_OVER: f64 = 1e-3;

/// When a render to a loudness target runs its first pass as the final one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Speculate {
    /// Never: the first drive is confirmed by a measuring pass (`render --no-speculate`).
    Never,
    /// When the spill's peaks say the limiter will barely act (the default).
    #[default]
    WhenPredicted,
    /// Whenever the limiter can take recorded readings (tests of the missed path).
    Always,
}

/// Mantissa bits of an `f32` a bin keeps (8 bins per octave, 0.75 dB).
const MANTISSA_BITS: u32 = 3;
/// Bins: every exponent, times `2^MANTISSA_BITS`.
const BINS: usize = 1 << (8 + MANTISSA_BITS);

/// Interleaved counting tables: frame `i` counts in table `i % LANES`, so that runs of frames
/// in one bin (most of music) do not wait on each other's increments.
const LANES: usize = 4;
/// Frames the `u32` tables take before they are folded into the `u64` totals.
const FOLD_EVERY: u64 = 1 << 31;

/// How many frames reach each level: the largest magnitude of a frame's channels, binned by the
/// exponent and the top mantissa bits of its `f32` value (no logarithm per frame).
#[derive(Clone)]
pub struct PeakHistogram {
    /// Counts folded from `lanes`.
    bins: Box<[u64; BINS]>,
    /// Counts since the last fold, one table per lane.
    lanes: Box<[[u32; BINS]; LANES]>,
    /// Frames counted in `lanes` since the last fold.
    unfolded: u64,
    frames: u64,
}

impl Default for PeakHistogram {
    fn default() -> Self {
        Self {
            bins: Box::new([0; BINS]),
            lanes: Box::new([[0; BINS]; LANES]),
            unfolded: 0,
            frames: 0,
        }
    }
}

impl std::fmt::Debug for PeakHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeakHistogram")
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl PeakHistogram {
    /// Counts the frames of `block`.
    pub fn push(&mut self, block: AudioRef<'_>) {
        let n = block.frames();
        if self.unfolded + n as u64 >= FOLD_EVERY {
            self.fold();
        }
        let lanes = &mut *self.lanes;
        match block.channels() {
            2 => {
                let (l, r) = (&block.channel(0)[..n], &block.channel(1)[..n]);
                #[cfg(target_arch = "x86_64")]
                if crate::dsp::simd::avx2() {
                    // SAFETY: the CPU has AVX2 (asked above).
                    unsafe { count_stereo_avx2(lanes, l, r) };
                } else {
                    count_stereo(lanes, l, r);
                }
                #[cfg(not(target_arch = "x86_64"))]
                count_stereo(lanes, l, r);
            }
            channels => {
                for i in 0..n {
                    let peak = (0..channels).fold(0.0f64, |m, c| m.max(block.channel(c)[i].abs()));
                    lanes[i % LANES][bin_of(peak as f32)] += 1;
                }
            }
        }
        self.unfolded += n as u64;
        self.frames += n as u64;
    }

    /// Adds the lanes' counts into the totals and clears them.
    fn fold(&mut self) {
        for lane in self.lanes.iter_mut() {
            for (total, count) in self.bins.iter_mut().zip(lane.iter_mut()) {
                *total += u64::from(std::mem::take(count));
            }
        }
        self.unfolded = 0;
    }

    /// Frames counted.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames whose peak may be at or above `level` (linear): every frame of the bin holding
    /// `level` counts, so this never under-counts.
    pub fn frames_reaching(&self, level: f64) -> u64 {
        let from = bin_of(level as f32);
        let folded: u64 = self.bins[from..].iter().sum();
        let unfolded: u64 = self
            .lanes
            .iter()
            .map(|lane| lane[from..].iter().map(|&c| u64::from(c)).sum::<u64>())
            .sum();
        folded + unfolded
    }

    /// Whether a limiter whose stage-A threshold is `threshold` (linear, in the spill's units at
    /// a drive of 0 dB) driven by `drive_db` is expected to act on so few frames that the
    /// loudness does not move: at most [`MAX_SHARE_OVER`] of the frames reach the threshold
    /// less [`TRUE_PEAK_HEADROOM_DB`].
    pub fn limiting_is_negligible(&self, threshold: f64, drive_db: f64) -> bool {
        if self.frames == 0 {
            return false;
        }
        let level = threshold / db_to_gain(drive_db + TRUE_PEAK_HEADROOM_DB);
        (self.frames_reaching(level) as f64) <= MAX_SHARE_OVER * self.frames as f64
    }
}

/// Counts the stereo frames `l`, `r` of one block: frame `i` in table `i % LANES`, in the bin
/// of its larger magnitude.
fn count_stereo(lanes: &mut [[u32; BINS]; LANES], l: &[f64], r: &[f64]) {
    let bin = |a: f64, b: f64| bin_of(a.abs().max(b.abs()) as f32);
    let (lq, rq) = (l.chunks_exact(LANES), r.chunks_exact(LANES));
    let (l_rest, r_rest) = (lq.remainder(), rq.remainder());
    for (a, b) in lq.zip(rq) {
        for (k, lane) in lanes.iter_mut().enumerate() {
            lane[bin(a[k], b[k])] += 1;
        }
    }
    for (&a, &b) in l_rest.iter().zip(r_rest) {
        lanes[0][bin(a, b)] += 1;
    }
}

/// [`count_stereo`] with the bins of four frames at a time computed in AVX2 registers (the
/// magnitudes, their larger, the rounding to `f32` and the bin's bits: the same operations
/// lane by lane, so the same bins for finite samples; a NaN, which no spill holds, may bin
/// otherwise), then counted one by one as before.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn count_stereo_avx2(lanes: &mut [[u32; BINS]; LANES], l: &[f64], r: &[f64]) {
    use std::arch::x86_64::*;
    const { assert!(LANES == 4) };
    let n = l.len().min(r.len());
    let magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let mask = _mm_set1_epi32((BINS - 1) as i32);
    // The bins of frames i .. i + 4.
    let bins_of = |i: usize| {
        // SAFETY: frames i .. i + 4 are in `l` and `r` (the caller's loop bound).
        unsafe {
            let a = _mm256_and_pd(_mm256_loadu_pd(l.as_ptr().add(i)), magnitude);
            let b = _mm256_and_pd(_mm256_loadu_pd(r.as_ptr().add(i)), magnitude);
            // `b` second: where `a` is the smaller (or they are equal) the max is `b`, as
            // `f64::max` gives for numbers.
            let m = _mm256_cvtpd_ps(_mm256_max_pd(a, b));
            _mm_and_si128(
                _mm_srli_epi32::<{ 23 - MANTISSA_BITS as i32 }>(_mm_castps_si128(m)),
                mask,
            )
        }
    };
    let mut bins = [0u32; LANES];
    let mut i = 0;
    while i + LANES <= n {
        // SAFETY: `bins` holds 16 bytes.
        unsafe { _mm_storeu_si128(bins.as_mut_ptr().cast(), bins_of(i)) };
        for (lane, &bin) in lanes.iter_mut().zip(&bins) {
            lane[bin as usize] += 1;
        }
        i += LANES;
    }
    count_stereo(lanes, &l[i..n], &r[i..n]);
}

/// The bin of magnitude `m` (monotonic in `m`; NaN and infinity in the top bins).
fn bin_of(m: f32) -> usize {
    (m.abs().to_bits() >> (23 - MANTISSA_BITS)) as usize & (BINS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::AudioBuffer;

    fn histogram_of(samples: &[f64]) -> PeakHistogram {
        let mut b = AudioBuffer::new(2, samples.len());
        let n = samples.len();
        b.channel_mut(0, n).copy_from_slice(samples);
        for (y, &x) in b.channel_mut(1, n).iter_mut().zip(samples) {
            *y = -0.5 * x;
        }
        let mut h = PeakHistogram::default();
        h.push(b.view(n));
        h
    }

    /// Blocks of any length (whole groups of lanes or not), one or two channels, and folds of
    /// the lanes between blocks: every frame is counted once, in its own bin, by the portable
    /// build and by the AVX2 build (where the CPU has it).
    #[test]
    fn lanes_and_folds_count_every_frame_once() {
        crate::dsp::simd::init();
        for portable in [true, false] {
            crate::dsp::simd::force_portable(portable);
            count_every_frame_once();
        }
        crate::dsp::simd::force_portable(false);
    }

    fn count_every_frame_once() {
        let mut noise = crate::dsp::test_signal::noise(0x5eed_1234_abcd_0042u64);
        let samples: Vec<f64> = (0..10_000)
            .map(|i| noise() * (i % 97) as f64 / 50.0)
            .collect();
        for channels in [1, 2] {
            let mut want = vec![0u64; BINS];
            for (i, &x) in samples.iter().enumerate() {
                let peak = (0..channels).fold(0.0f64, |m, c| {
                    m.max((x * (1.0 - 0.3 * c as f64) + 1e-3 * (i % 7) as f64 * c as f64).abs())
                });
                want[bin_of(peak as f32)] += 1;
            }
            let mut h = PeakHistogram::default();
            let mut at = 0;
            for (k, len) in [1usize, 3, 4, 5, 64, 1000, 4099].iter().cycle().enumerate() {
                if at == samples.len() {
                    break;
                }
                let n = (*len).min(samples.len() - at);
                let mut b = AudioBuffer::new(channels, n);
                for c in 0..channels {
                    for (j, y) in b.channel_mut(c, n).iter_mut().enumerate() {
                        let i = at + j;
                        *y = samples[i] * (1.0 - 0.3 * c as f64) + 1e-3 * (i % 7) as f64 * c as f64;
                    }
                }
                h.push(b.view(n));
                if k % 3 == 2 {
                    h.fold();
                }
                at += n;
            }
            assert_eq!(h.frames(), samples.len() as u64);
            for bin in 0..BINS {
                let level = f32::from_bits((bin as u32) << (23 - MANTISSA_BITS)) as f64;
                let expected: u64 = want[bin_of(level as f32)..].iter().sum();
                assert_eq!(
                    h.frames_reaching(level),
                    expected,
                    "{channels} channels, bin {bin}"
                );
            }
        }
    }

    #[test]
    fn counts_never_miss_a_frame_at_or_above_the_level() {
        let samples: Vec<f64> = (0..4000)
            .map(|i| (i as f64 * 0.37).sin() * (i as f64 / 4000.0))
            .collect();
        let h = histogram_of(&samples);
        assert_eq!(h.frames(), 4000);
        for level in [0.01, 0.1, 0.25, 0.5, 0.77, 0.9, 0.999] {
            let exact = samples.iter().filter(|x| x.abs() >= level).count() as u64;
            let counted = h.frames_reaching(level);
            assert!(counted >= exact, "level {level}: {counted} < {exact}");
            // A bin is 1/8 octave wide: nothing under the level by more than that is counted.
            let loose = samples
                .iter()
                .filter(|x| x.abs() >= level / 2f64.powf(1.0 / 8.0))
                .count() as u64;
            assert!(counted <= loose, "level {level}: {counted} > {loose}");
        }
    }

    #[test]
    fn judges_by_the_share_of_frames_near_the_threshold() {
        // 100 000 frames at 0.1 and a few peaks at 0.9.
        let mut samples = vec![0.1; 100_000];
        for i in 0..10 {
            samples[i * 9000] = 0.9;
        }
        let h = histogram_of(&samples);
        // Threshold 0.5: at 0 dB nothing but the 10 peaks (1e-4 of the frames) comes near.
        assert!(h.limiting_is_negligible(0.5, 0.0));
        // Driven 14 dB the body of the song (0.5) is within the headroom of the threshold.
        assert!(!h.limiting_is_negligible(0.5, 14.0));
        assert!(h.limiting_is_negligible(0.5, 12.0));
        // 110 peaks: 1.1e-3 of the frames is too many.
        for i in 0..100 {
            samples[i * 900 + 1] = 0.9;
        }
        assert!(!histogram_of(&samples).limiting_is_negligible(0.5, 0.0));
        assert!(!PeakHistogram::default().limiting_is_negligible(0.5, 0.0));
    }
}
