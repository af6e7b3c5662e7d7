//! BS.1770-4 / EBU R128 loudness: momentary (400 ms), short-term (3 s), integrated (gated)
//! and loudness range (EBU Tech 3342), streamed in constant memory.

use super::db::energy_to_lufs;
use super::histogram::LoudnessHistogram;
use super::kweight::KWeighting;

/// Number of 100 ms hops in the momentary window (400 ms).
const MOMENTARY_HOPS: usize = 4;
/// Number of 100 ms hops in the short-term window (3 s).
const SHORT_TERM_HOPS: usize = 30;
/// Relative gate of integrated loudness (BS.1770), in LU.
const INTEGRATED_GATE_LU: f64 = -10.0;
/// Relative gate of loudness range (EBU Tech 3342), in LU.
const LRA_GATE_LU: f64 = -20.0;
/// Default capacity of the loudness-series ring (60 s at 10 Hz).
const DEFAULT_HISTORY: usize = 600;

/// BS.1770 channel weight of surround channels (≈ +1.5 dB).
pub const SURROUND_WEIGHT: f64 = 1.41;

/// Channel layouts with their BS.1770 weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelLayout {
    /// One channel, weight 1.0: BS.1770's mono (reads 3 dB below the same signal in stereo).
    Mono,
    /// One channel counted as both channels of a stereo pair (weight 2.0, as libebur128's
    /// `DUAL_MONO`): a mono file reads like its stereo playback.
    DualMono,
    /// L, R.
    Stereo,
    /// L, R, C, Ls, Rs.
    Surround50,
    /// L, R, C, LFE, Ls, Rs (SMPTE / WAV order); the LFE is not measured.
    Surround51,
}

impl ChannelLayout {
    /// Per-channel weights in channel order.
    pub fn weights(self) -> &'static [f64] {
        const S: f64 = SURROUND_WEIGHT;
        match self {
            ChannelLayout::Mono => &[1.0],
            ChannelLayout::DualMono => &[2.0],
            ChannelLayout::Stereo => &[1.0, 1.0],
            ChannelLayout::Surround50 => &[1.0, 1.0, 1.0, S, S],
            ChannelLayout::Surround51 => &[1.0, 1.0, 1.0, 0.0, S, S],
        }
    }

    /// The default layout for a channel count (1, 2, 5, 6), if there is one.
    pub fn default_for(channels: usize) -> Option<Self> {
        match channels {
            1 => Some(ChannelLayout::Mono),
            2 => Some(ChannelLayout::Stereo),
            5 => Some(ChannelLayout::Surround50),
            6 => Some(ChannelLayout::Surround51),
            _ => None,
        }
    }
}

/// Loudness meter after ITU-R BS.1770-4 and EBU R128 / Tech 3341 / Tech 3342.
///
/// Audio is K-weighted per channel and its energy summed per 100 ms hop; momentary and
/// short-term loudness are the means over the last 4 and 30 hops (zero-padded at the start),
/// updated every 100 ms. Every complete 400 ms block feeds the integrated-loudness histogram
/// and every complete 3 s block the loudness-range histogram. All readings depend only on
/// the samples, never on how they were split into blocks; `push` does not allocate.
///
/// The hop is `round(sample_rate / 10)` samples. Loudness range uses every 100 ms short-term
/// value (Tech 3342 since 2016: ≥ 10 Hz, as ffmpeg's `ebur128` filter does); libebur128 and
/// the `ebur128` crate sample short-term loudness once per second for LRA, so their LRA can
/// differ by a few tenths of an LU (more on programmes with fast changes).
#[derive(Clone, Debug)]
pub struct LoudnessMeter {
    sample_rate: f64,
    weights: Box<[f64]>,
    filters: Box<[KWeighting]>,
    /// Samples per 100 ms hop.
    hop_len: usize,
    /// Samples accumulated in the current hop.
    hop_pos: usize,
    /// Per-channel sum of squared K-weighted samples in the current hop.
    hop_acc: Box<[f64]>,
    /// Channel-weighted energy sums of the last 30 hops; `ring_pos` is the oldest.
    ring: [f64; SHORT_TERM_HOPS],
    ring_pos: usize,
    /// Completed hops since construction or reset.
    hops: u64,
    momentary: f64,
    short_term: f64,
    momentary_max: f64,
    short_term_max: f64,
    gating: LoudnessHistogram,
    short_term_blocks: LoudnessHistogram,
    history: Box<[(f64, f64, f64)]>,
    history_start: usize,
    history_len: usize,
    history_dropped: u64,
}

impl LoudnessMeter {
    /// A meter for `channels` channels with the default layout: mono, stereo, 5.0
    /// (L R C Ls Rs) or 5.1 (L R C LFE Ls Rs); any other count weighs every channel 1.0.
    ///
    /// Panics if `channels` is 0 or the sample rate is below 8 kHz or not finite.
    pub fn new(sample_rate: f64, channels: usize) -> Self {
        assert!(channels > 0, "LoudnessMeter needs at least one channel");
        match ChannelLayout::default_for(channels) {
            Some(layout) => Self::with_weights(sample_rate, layout.weights()),
            None => Self::with_weights(sample_rate, &vec![1.0; channels]),
        }
    }

    /// A meter for a channel layout.
    pub fn with_layout(sample_rate: f64, layout: ChannelLayout) -> Self {
        Self::with_weights(sample_rate, layout.weights())
    }

    /// A meter with explicit per-channel weights (one per channel; 0 skips a channel).
    pub fn with_weights(sample_rate: f64, weights: &[f64]) -> Self {
        assert!(
            sample_rate.is_finite() && sample_rate >= 8000.0,
            "unsupported sample rate {sample_rate}"
        );
        assert!(
            !weights.is_empty(),
            "LoudnessMeter needs at least one channel"
        );
        assert!(
            weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            "channel weights must be finite and non-negative"
        );
        let hop_len = libm::round(sample_rate / 10.0) as usize;
        Self {
            sample_rate,
            weights: weights.into(),
            filters: vec![KWeighting::new(sample_rate); weights.len()].into_boxed_slice(),
            hop_len,
            hop_pos: 0,
            hop_acc: vec![0.0; weights.len()].into_boxed_slice(),
            ring: [0.0; SHORT_TERM_HOPS],
            ring_pos: 0,
            hops: 0,
            momentary: 0.0,
            short_term: 0.0,
            momentary_max: 0.0,
            short_term_max: 0.0,
            gating: LoudnessHistogram::new(),
            short_term_blocks: LoudnessHistogram::new(),
            history: vec![(0.0, 0.0, 0.0); DEFAULT_HISTORY].into_boxed_slice(),
            history_start: 0,
            history_len: 0,
            history_dropped: 0,
        }
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.weights.len()
    }

    /// Channel weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Frames measured since construction or reset.
    pub fn frames(&self) -> u64 {
        self.hops * self.hop_len as u64 + self.hop_pos as u64
    }

    /// Measures a block of planar audio (one slice per channel, equal lengths, any length).
    pub fn push(&mut self, planar: &[&[f64]]) {
        assert_eq!(planar.len(), self.weights.len(), "wrong channel count");
        let n = planar[0].len();
        assert!(
            planar.iter().all(|c| c.len() == n),
            "channel slices differ in length"
        );
        let mut off = 0;
        while off < n {
            let take = (n - off).min(self.hop_len - self.hop_pos);
            let end = off + take;
            self.filter_segment(planar, off, end);
            off = end;
            self.hop_pos += take;
            if self.hop_pos == self.hop_len {
                self.finish_hop();
            }
        }
    }

    /// Measures a block in each of two meters at once: `a` takes `pa`, `b` takes `pb`. Two
    /// stereo meters K-weight their four channels side by side
    /// ([`KWeighting::process_quad_sum_sq`], each lane with its meter's filter: the two may
    /// have different sample rates) over the frames both blocks have, in about the time one
    /// takes alone, and the longer block's other frames alone; any other pair is pushed one
    /// after the other. Either way every reading is, bit for bit, what [`push`](Self::push)
    /// gives (the meters' 100 ms hops need not be aligned).
    pub fn push_pair(a: &mut Self, pa: &[&[f64]], b: &mut Self, pb: &[&[f64]]) {
        let len = |p: &[&[f64]]| p.first().map_or(0, |c| c.len());
        let n = len(pa).min(len(pb));
        let stereo = |m: &Self, p: &[&[f64]]| {
            m.weights.len() == 2
                && m.weights.iter().all(|w| *w != 0.0)
                && p.len() == 2
                && p[0].len() == p[1].len()
        };
        if !(stereo(a, pa) && stereo(b, pb)) || n == 0 {
            a.push(pa);
            b.push(pb);
            return;
        }
        let mut off = 0;
        while off < n {
            let take = (n - off)
                .min(a.hop_len - a.hop_pos)
                .min(b.hop_len - b.hop_pos);
            let end = off + take;
            let ([fa0, fa1], [fb0, fb1]) = (&mut *a.filters, &mut *b.filters) else {
                unreachable!("two stereo meters")
            };
            let acc = KWeighting::process_quad_sum_sq(
                [fa0, fa1, fb0, fb1],
                [
                    &pa[0][off..end],
                    &pa[1][off..end],
                    &pb[0][off..end],
                    &pb[1][off..end],
                ],
                [a.hop_acc[0], a.hop_acc[1], b.hop_acc[0], b.hop_acc[1]],
            );
            (a.hop_acc[0], a.hop_acc[1]) = (acc[0], acc[1]);
            (b.hop_acc[0], b.hop_acc[1]) = (acc[2], acc[3]);
            off = end;
            for m in [&mut *a, &mut *b] {
                m.hop_pos += take;
                if m.hop_pos == m.hop_len {
                    m.finish_hop();
                }
            }
        }
        a.push(&[&pa[0][n..], &pa[1][n..]]);
        b.push(&[&pb[0][n..], &pb[1][n..]]);
    }

    /// K-weights `planar[..][off..end]` and adds its energy to the hop accumulators.
    fn filter_segment(&mut self, planar: &[&[f64]], off: usize, end: usize) {
        let mut ch = 0;
        while ch < self.weights.len() {
            let pair = ch + 1 < self.weights.len()
                && self.weights[ch] != 0.0
                && self.weights[ch + 1] != 0.0;
            if pair {
                let (a, b) = self.filters[ch..].split_at_mut(1);
                let (sa, sb) = KWeighting::process_pair_sum_sq(
                    &mut a[0],
                    &mut b[0],
                    &planar[ch][off..end],
                    &planar[ch + 1][off..end],
                    self.hop_acc[ch],
                    self.hop_acc[ch + 1],
                );
                self.hop_acc[ch] = sa;
                self.hop_acc[ch + 1] = sb;
                ch += 2;
            } else {
                if self.weights[ch] != 0.0 {
                    self.hop_acc[ch] =
                        self.filters[ch].process_sum_sq(&planar[ch][off..end], self.hop_acc[ch]);
                }
                ch += 1;
            }
        }
    }

    /// Closes a 100 ms hop: updates momentary / short-term values, maxima, histograms, history.
    fn finish_hop(&mut self) {
        let mut e = 0.0;
        for (acc, w) in self.hop_acc.iter_mut().zip(self.weights.iter()) {
            e += w * *acc;
            *acc = 0.0;
        }
        for f in self.filters.iter_mut() {
            f.flush_tiny_state();
        }
        self.hop_pos = 0;
        self.ring[self.ring_pos] = e;
        self.ring_pos = (self.ring_pos + 1) % SHORT_TERM_HOPS;
        self.hops += 1;

        // Sum oldest to newest, the same order every time.
        let sum_last = |k: usize| {
            (0..k)
                .map(|i| self.ring[(self.ring_pos + SHORT_TERM_HOPS - k + i) % SHORT_TERM_HOPS])
                .fold(0.0, |s, v| s + v)
        };
        let hop = self.hop_len as f64;
        self.momentary = sum_last(MOMENTARY_HOPS) / (MOMENTARY_HOPS as f64 * hop);
        self.short_term = sum_last(SHORT_TERM_HOPS) / (SHORT_TERM_HOPS as f64 * hop);
        self.momentary_max = self.momentary_max.max(self.momentary);
        self.short_term_max = self.short_term_max.max(self.short_term);
        if self.hops >= MOMENTARY_HOPS as u64 {
            self.gating.add(self.momentary);
        }
        if self.hops >= SHORT_TERM_HOPS as u64 {
            self.short_term_blocks.add(self.short_term);
        }
        self.record_history();
    }

    fn record_history(&mut self) {
        let cap = self.history.len();
        if cap == 0 {
            return;
        }
        let t = (self.hops * self.hop_len as u64) as f64 / self.sample_rate;
        let entry = (t, self.momentary_lufs(), self.short_term_lufs());
        if self.history_len == cap {
            self.history[self.history_start] = entry;
            self.history_start = (self.history_start + 1) % cap;
            self.history_dropped += 1;
        } else {
            self.history[(self.history_start + self.history_len) % cap] = entry;
            self.history_len += 1;
        }
    }

    /// Momentary loudness (400 ms) at the last 100 ms hop, LUFS; `-inf` before the first hop.
    pub fn momentary_lufs(&self) -> f64 {
        energy_to_lufs(self.momentary)
    }

    /// Short-term loudness (3 s) at the last 100 ms hop, LUFS; `-inf` before the first hop.
    pub fn short_term_lufs(&self) -> f64 {
        energy_to_lufs(self.short_term)
    }

    /// Highest momentary loudness so far, LUFS.
    pub fn momentary_max_lufs(&self) -> f64 {
        energy_to_lufs(self.momentary_max)
    }

    /// Highest short-term loudness so far, LUFS.
    pub fn short_term_max_lufs(&self) -> f64 {
        energy_to_lufs(self.short_term_max)
    }

    /// Integrated (gated) loudness, LUFS; `-inf` if no 400 ms block passes the gates.
    /// Scans the 10 000-bin histogram (a few µs): fine for a display, not per sample.
    pub fn integrated_lufs(&self) -> f64 {
        LoudnessHistogram::gated_lufs(&[&self.gating], INTEGRATED_GATE_LU)
    }

    /// Loudness range (EBU Tech 3342), LU; 0 if no 3 s block passes the gates.
    pub fn loudness_range_lu(&self) -> f64 {
        LoudnessHistogram::loudness_range(&[&self.short_term_blocks], LRA_GATE_LU)
    }

    /// Number of 400 ms blocks above the absolute gate so far.
    pub fn gating_block_count(&self) -> u64 {
        self.gating.count()
    }

    /// Integrated loudness of several programmes measured as one (e.g. an album), LUFS.
    /// Allocates a small list: call it off the audio thread.
    pub fn integrated_lufs_of(meters: &[&LoudnessMeter]) -> f64 {
        let hs: Vec<_> = meters.iter().map(|m| &m.gating).collect();
        LoudnessHistogram::gated_lufs(&hs, INTEGRATED_GATE_LU)
    }

    /// Loudness range of several programmes measured as one (e.g. an album), LU.
    /// Allocates a small list: call it off the audio thread.
    pub fn loudness_range_lu_of(meters: &[&LoudnessMeter]) -> f64 {
        let hs: Vec<_> = meters.iter().map(|m| &m.short_term_blocks).collect();
        LoudnessHistogram::loudness_range(&hs, LRA_GATE_LU)
    }

    /// Moves the loudness series recorded since the last call into `out` as
    /// `(t_s, momentary_lufs, short_term_lufs)` per 100 ms hop, `t_s` being the hop's end.
    /// Only `out` may allocate. Returns the number of entries appended.
    pub fn drain_history(&mut self, out: &mut Vec<(f64, f64, f64)>) -> usize {
        let cap = self.history.len();
        let n = self.history_len;
        out.extend((0..n).map(|i| self.history[(self.history_start + i) % cap]));
        self.history_start = 0;
        self.history_len = 0;
        n
    }

    /// Entries of the loudness series lost because the ring was full (not drained in time).
    pub fn history_dropped(&self) -> u64 {
        self.history_dropped
    }

    /// Sets how many hops of series the meter buffers between drains (default 600 = 60 s;
    /// 0 disables the series). Allocates and clears the buffered series.
    pub fn set_history_capacity(&mut self, hops: usize) {
        self.history = vec![(0.0, 0.0, 0.0); hops].into_boxed_slice();
        self.history_start = 0;
        self.history_len = 0;
    }

    /// Forgets everything measured (keeps sample rate, weights and history capacity).
    pub fn reset(&mut self) {
        for f in self.filters.iter_mut() {
            f.reset();
        }
        self.hop_pos = 0;
        self.hop_acc.fill(0.0);
        self.ring = [0.0; SHORT_TERM_HOPS];
        self.ring_pos = 0;
        self.hops = 0;
        self.momentary = 0.0;
        self.short_term = 0.0;
        self.momentary_max = 0.0;
        self.short_term_max = 0.0;
        self.gating.clear();
        self.short_term_blocks.clear();
        self.history_start = 0;
        self.history_len = 0;
        self.history_dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programme(n: usize, seed: u64) -> [Vec<f64>; 2] {
        let mut noise = crate::dsp::test_signal::noise(seed);
        let mut l = Vec::with_capacity(n);
        let mut rr = Vec::with_capacity(n);
        for i in 0..n {
            // Loud and quiet stretches, a silence: every gate and the flush of tiny state.
            let level = match (i / 30_000) % 4 {
                0 => 0.5,
                1 => 0.02,
                2 => 0.0,
                _ => 0.9,
            };
            let tone = (i as f64 * 0.05).sin();
            l.push(level * (0.6 * noise() + 0.4 * tone));
            rr.push(level * (0.3 * noise() - 0.5 * tone));
        }
        [l, rr]
    }

    fn readings(m: &mut LoudnessMeter) -> Vec<u64> {
        let mut h = Vec::new();
        m.drain_history(&mut h);
        let mut v = vec![
            m.integrated_lufs(),
            m.loudness_range_lu(),
            m.momentary_max_lufs(),
            m.short_term_max_lufs(),
            m.momentary_lufs(),
            m.short_term_lufs(),
            m.frames() as f64,
        ];
        v.extend(h.iter().flat_map(|&(t, a, b)| [t, a, b]));
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Two meters pushed together read, bit for bit, what each reads pushed alone, their hops
    /// aligned or not, whatever the block, on both builds: at one rate, at two rates (`b`'s
    /// blocks then shorter, 441 frames for `a`'s 480), and a pair that cannot go side by side
    /// (a mono meter).
    #[test]
    fn pushing_two_meters_together_gives_the_bits_of_pushing_each() {
        crate::dsp::simd::init();
        let a = programme(200_000, 0x2545_f491_4f6c_dd1d);
        let b = programme(200_000, 0x9e37_79b9_7f4a_7c15);
        for portable in [true, false] {
            crate::dsp::simd::force_portable(portable);
            for (rate_b, lead, block, mono) in [
                (48_000.0, 0, 4096, false),
                (48_000.0, 1234, 333, false),
                (48_000.0, 4800, 1, false),
                (44_100.0, 17, 1000, false),
                (48_000.0, 99, 512, true),
            ] {
                let make_b = || {
                    if mono {
                        LoudnessMeter::new(rate_b, 1)
                    } else {
                        LoudnessMeter::new(rate_b, 2)
                    }
                };
                let (mut sa, mut sb) = (LoudnessMeter::new(48_000.0, 2), make_b());
                let (mut pa, mut pb) = (LoudnessMeter::new(48_000.0, 2), make_b());
                // `b` starts `lead` frames into its own stream: hops not aligned.
                let bb: Vec<&[f64]> = if mono {
                    vec![&b[0][..]]
                } else {
                    vec![&b[0][..], &b[1][..]]
                };
                let lead_in: Vec<&[f64]> = bb.iter().map(|c| &c[..lead]).collect();
                sb.push(&lead_in);
                pb.push(&lead_in);
                let n = 150_000;
                let (mut at, mut at_b) = (0, 0);
                while at < n {
                    let k = block.min(n - at);
                    let kb = if rate_b == 48_000.0 { k } else { k * 441 / 480 };
                    let xa = [&a[0][at..at + k], &a[1][at..at + k]];
                    let xb: Vec<&[f64]> = bb
                        .iter()
                        .map(|c| &c[lead + at_b..lead + at_b + kb])
                        .collect();
                    sa.push(&xa);
                    sb.push(&xb);
                    LoudnessMeter::push_pair(&mut pa, &xa, &mut pb, &xb);
                    at += k;
                    at_b += kb;
                }
                assert_eq!(
                    readings(&mut pa),
                    readings(&mut sa),
                    "a: {rate_b} {lead} {block}"
                );
                assert_eq!(
                    readings(&mut pb),
                    readings(&mut sb),
                    "b: {rate_b} {lead} {block}"
                );
                assert!(sa.integrated_lufs().is_finite() && sb.integrated_lufs().is_finite());
            }
        }
        crate::dsp::simd::force_portable(false);
    }
}
