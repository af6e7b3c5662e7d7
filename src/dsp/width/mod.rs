//! Stereo width on mid/side, with an optional mono low end and a correlation readout.
//!
//! `width_pct` scales the side signal: 0 is mono (L = R = mid, bit for bit), 100 leaves the
//! signal untouched (bit for bit), 200 doubles the side. With `M = (L+R)/2`, `S = (L−R)/2`:
//! `L' = M + w·S`, `R' = M − w·S`.
//!
//! `mono_below_hz` (absent or 0: off; otherwise 20–500 Hz, automatable) removes the side below
//! that frequency with a Linkwitz–Riley crossover on the side signal: the side keeps only its
//! high output, and the mid goes through the matching all-pass, so above the crossover mid and
//! side keep their phase relationship (the output is the all-passed input minus the low side).
//! The slope is LR8 (48 dB/octave): LR4 would leave a side signal an octave and a bit under the
//! crossover (50 Hz under 120 Hz) only 31 dB down; LR8 takes it 61 dB down.
//!
//! Publishes `correlation` (−1…1): the correlation of the output channels,
//! `E[LR]/√(E[L²]·E[R²])` with exponential averages of time constant 300 ms, updated every 64
//! samples (0 in silence).

#[cfg(target_arch = "x86_64")]
mod pipeline;

use crate::dsp::crossover::{lr_sections, SvfState};
use crate::dsp::dynamics::core::{pole, Cached, CHUNK};
use crate::dsp::filters::SvfCoefs;
use crate::dsp::kind::{BuildContext, KindInfo};
use crate::dsp::{
    AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor, ProcessorConfig, Telemetry,
    Unit,
};
use std::sync::Arc;

/// Index of `width_pct`.
pub const WIDTH_PCT: usize = 0;
/// Index of `mono_below_hz` (when switched on).
pub const MONO_BELOW_HZ: usize = 1;

/// Time constant of the correlation readout.
pub const CORRELATION_MS: f64 = 300.0;

static TELEMETRY: [&str; 1] = ["correlation"];

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "width",
    doc: "Stereo width on mid/side: `width_pct` 0 (mono) … 100 (unchanged, bit-transparent) … \
          200; optional `mono_below_hz` makes the low end mono through a Linkwitz–Riley \
          crossover on the side (48 dB/octave, mid all-passed to stay in phase). Stereo input \
          only. Publishes `correlation` (−1…1, over ~300 ms).",
    build,
    example,
};

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    if cx.input_channels != 2 {
        return Err(format!(
            "width needs a stereo input (this one has {} channel{})",
            cx.input_channels,
            if cx.input_channels == 1 { "" } else { "s" }
        ));
    }
    let mono = crate::dsp::dynamics::optional_param(cx.config, "mono_below_hz");
    Ok(Box::new(Width::new(mono)))
}

fn example() -> ProcessorConfig {
    ProcessorConfig::new()
        .num("width_pct", 120.0)
        .num("mono_below_hz", 120.0)
}

/// The low-side remover: mid through the LR8 all-pass, side through the LR8 high-pass. The
/// first pass of the high-pass shares its sections (and SIMD lanes) with the all-pass.
#[derive(Debug, Clone)]
struct MonoMaker {
    coefs: [SvfCoefs; 2],
    /// Lane 0: mid all-pass; lane 1: side high-pass, first pass.
    first: [SvfState; 2],
    /// Lane 0: side high-pass, second pass.
    second: [SvfState; 2],
}

impl MonoMaker {
    fn new() -> Self {
        Self {
            coefs: lr_sections::<2>(120.0, 48000.0),
            first: [SvfState::default(); 2],
            second: [SvfState::default(); 2],
        }
    }

    /// First pass, section `k`: the mid's all-pass (lane 0) and the side's high-pass (lane 1).
    #[inline(always)]
    fn first_stage(&mut self, k: usize, x: [f64; 2]) -> [f64; 2] {
        let c = &self.coefs[k];
        let (v1, v2) = self.first[k].tick(c, x);
        [x[0] - 2.0 * c.k * v1[0], x[1] - c.k * v1[1] - v2[1]]
    }

    /// Second pass of the side's high-pass, section `k` (lane 0; lane 1 carries zeros).
    #[inline(always)]
    fn second_stage(&mut self, k: usize, y: [f64; 2]) -> [f64; 2] {
        self.second[k].highpass(&self.coefs[k], y)
    }

    #[inline(always)]
    fn process(&mut self, mid: f64, side: f64) -> (f64, f64) {
        let x = self.first_stage(0, [mid, side]);
        let x = self.first_stage(1, x);
        let y = self.second_stage(0, [x[1], 0.0]);
        let y = self.second_stage(1, y);
        (x[0], y[0])
    }

    /// [`MonoMaker::process`] and the width over a block with fixed coefficients, `w(i)` the
    /// width factor of frame `i`, every section's state flushed (as [`MonoMaker::flush`]) after
    /// frames `first_flush`, `first_flush + CHUNK`, … (the chunk boundaries); then the readout's
    /// pass ([`Readout::pass`]: each output frame summed, its chunk closed at those boundaries,
    /// the frame written back times `post`). The AVX-512 build does the readout's pass in its
    /// own, eight frames at a time as they leave the pipeline.
    ///
    /// The four sections run as a pipeline, each a frame behind the one before it: step `t`
    /// feeds frame `t` to the first section, `t − 1` to the second, `t − 2` and `t − 3` to the
    /// last two. The sections of one step do not wait on each other, so the CPU overlaps their
    /// recursions instead of running one frame's four in a chain. Every section still sees its
    /// inputs in order through the same operations, and is flushed right after the frame the
    /// frame-by-frame path flushes after: the same bits as frame by frame. The state lives in
    /// locals for the loop (kept in memory, every sample's recursion waited on store
    /// forwarding).
    #[inline(always)]
    fn run(
        &mut self,
        l: &mut [f64],
        r: &mut [f64],
        w: impl Fn(usize) -> f64,
        first_flush: usize,
        post: f64,
        readout: &mut Readout,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::avx512() {
            // SAFETY: the CPU has AVX-512F (checked at run time).
            return unsafe { pipeline::run_avx512(self, l, r, w, first_flush, post, readout) };
        }
        #[cfg(target_arch = "x86_64")]
        let wavefront = crate::dsp::simd::avx2();
        #[cfg(not(target_arch = "x86_64"))]
        let wavefront = false;
        if wavefront {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 (checked at run time).
            unsafe {
                pipeline::run(self, l, r, w, first_flush)
            };
        } else {
            self.run_portable(l, r, w, first_flush);
        }
        readout.pass(l, r, post, first_flush);
    }

    /// [`MonoMaker::run`] without AVX2.
    #[inline(always)]
    fn run_portable(
        &mut self,
        l: &mut [f64],
        r: &mut [f64],
        w: impl Fn(usize) -> f64,
        first_flush: usize,
    ) {
        let n = l.len().min(r.len());
        let due = |i: usize| i % CHUNK == first_flush % CHUNK;
        let mut m = self.clone();
        // What each section handed the next at the previous step, and the mids in flight.
        let (mut to_second, mut to_third, mut to_fourth) = ([0.0; 2], 0.0, [0.0; 2]);
        let mut mids = [0.0; 4];
        for t in 0..n + 3 {
            // Last section first: each reads what the one before produced a step ago.
            if t >= 3 {
                let i = t - 3;
                let side = m.second_stage(1, to_fourth)[0];
                if due(i) {
                    m.second[1].flush();
                }
                let (mid, wi) = (mids[i % 4], w(i));
                l[i] = mid + wi * side;
                r[i] = mid - wi * side;
            }
            if t >= 2 && t - 2 < n {
                to_fourth = m.second_stage(0, [to_third, 0.0]);
                if due(t - 2) {
                    m.second[0].flush();
                }
            }
            if t >= 1 && t - 1 < n {
                let x = m.first_stage(1, to_second);
                if due(t - 1) {
                    m.first[1].flush();
                }
                mids[(t - 1) % 4] = x[0];
                to_third = x[1];
            }
            if t < n {
                let mid = 0.5 * (l[t] + r[t]);
                let side = 0.5 * (l[t] - r[t]);
                to_second = m.first_stage(0, [mid, side]);
                if due(t) {
                    m.first[0].flush();
                }
            }
        }
        *self = m;
    }

    fn flush(&mut self) {
        self.first.iter_mut().for_each(SvfState::flush);
        self.second.iter_mut().for_each(SvfState::flush);
    }

    fn reset(&mut self) {
        self.first.iter_mut().for_each(SvfState::reset);
        self.second.iter_mut().for_each(SvfState::reset);
    }
}

crate::signal_state!(MonoMaker { copy: coefs, first, second; });

/// The correlation readout's arithmetic: exponential averages of L·R, L², R² of the output,
/// moved once per chunk, and their sums over the chunk under way (sample by sample, so a chunk
/// split across blocks sums in the same order). The sums are of the width's output, before a
/// folded gain.
#[derive(Debug, Clone, Copy)]
struct Readout {
    /// Sums of L·R, L², R² over the chunk under way.
    sums: [f64; 3],
    /// The averages of L·R, L², R².
    corr: [f64; 3],
    /// The averages' pole per chunk.
    pole: f64,
}

impl Readout {
    /// Output frame `(a, b)` into the sums.
    #[inline(always)]
    fn add(&mut self, a: f64, b: f64) {
        let [lr, ll, rr] = &mut self.sums;
        *lr += a * b;
        *ll += a * a;
        *rr += b * b;
    }

    /// Every frame of `l`, `r` into the sums, in order, each written back times `post`.
    #[inline(always)]
    fn add_all(&mut self, l: &mut [f64], r: &mut [f64], post: f64) {
        let [mut lr, mut ll, mut rr] = self.sums;
        if post == 1.0 {
            for (&a, &b) in l.iter().zip(r.iter()) {
                lr += a * b;
                ll += a * a;
                rr += b * b;
            }
        } else {
            for (a, b) in l.iter_mut().zip(r.iter_mut()) {
                lr += *a * *b;
                ll += *a * *a;
                rr += *b * *b;
                *a *= post;
                *b *= post;
            }
        }
        self.sums = [lr, ll, rr];
    }

    /// The chunk's sums into the averages (at a chunk boundary), the sums cleared.
    #[inline(always)]
    fn close_chunk(&mut self) {
        let g = self.pole;
        let scale = (1.0 - g) / CHUNK as f64;
        for (avg, sum) in self.corr.iter_mut().zip(&mut self.sums) {
            *avg = g * *avg + scale * *sum;
            *sum = 0.0;
            if avg.abs() < 1e-60 {
                *avg = 0.0;
            }
        }
    }

    /// The readout's pass over a block: its frames into the sums ([`Readout::add_all`]), the
    /// chunk closed after frames `first_close`, `first_close + CHUNK`, ….
    #[inline(always)]
    fn pass(&mut self, l: &mut [f64], r: &mut [f64], post: f64, first_close: usize) {
        let n = l.len().min(r.len());
        let (mut at, mut end) = (0, first_close % CHUNK + 1);
        while at < n {
            let to = end.min(n);
            self.add_all(&mut l[at..to], &mut r[at..to], post);
            if to == end {
                self.close_chunk();
            }
            (at, end) = (to, end + CHUNK);
        }
    }
}

/// A stereo width control.
pub struct Width {
    params: Vec<ParamInfo>,
    mono: Option<MonoMaker>,
    mono_coefs: Cached<[SvfCoefs; 2]>,
    sample_rate: f64,
    /// Exponential averages of L·R, L², R² of the output, updated once per chunk.
    corr: [f64; 3],
    /// Sums of L·R, L², R² over the chunk under way.
    sums: [f64; 3],
    /// The averages' pole per chunk.
    corr_pole: f64,
    position: u64,
    telemetry: Arc<Telemetry>,
}

impl Width {
    /// A width control, with the mono low end switched on or not.
    pub fn new(mono_below: bool) -> Self {
        let mut params = vec![
            ParamInfo::new("width_pct", Unit::Percent, 0.0, 200.0, 100.0)
                .doc("side level: 0 mono, 100 unchanged, 200 twice as wide"),
        ];
        if mono_below {
            params.push(
                ParamInfo::new("mono_below_hz", Unit::Hertz, 20.0, 500.0, 120.0)
                    .log()
                    .doc("the side is removed below this frequency (absent or 0: off)"),
            );
        }
        Self {
            params,
            mono: mono_below.then(MonoMaker::new),
            mono_coefs: Cached::new(lr_sections::<2>(120.0, 48000.0)),
            sample_rate: 48000.0,
            corr: [0.0; 3],
            sums: [0.0; 3],
            corr_pole: 0.0,
            position: 0,
            telemetry: Arc::new(Telemetry::new(&TELEMETRY)),
        }
    }

    fn publish(&self) {
        let [lr, ll, rr] = self.corr;
        let energy = ll * rr;
        let c = if energy > 1e-24 {
            (lr / libm::sqrt(energy)).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        self.telemetry.set(0, c);
    }
}

impl Processor for Width {
    fn kind(&self) -> &'static str {
        "width"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        2
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        self.sample_rate = spec.sample_rate;
        self.corr_pole = pole(CORRELATION_MS, spec.sample_rate / CHUNK as f64);
        self.mono_coefs.clear();
        self.reset();
    }
    fn reset(&mut self) {
        if let Some(m) = &mut self.mono {
            m.reset();
        }
        self.corr = [0.0; 3];
        self.sums = [0.0; 3];
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
    /// The gain is folded into the correlation's pass, the last over the block: each output
    /// sample, once summed, is written back times the gain.
    fn folds_gain(&self) -> bool {
        true
    }
    fn process_gained(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
        post: f64,
    ) {
        let width = params.get(WIDTH_PCT);
        let mono_freq = self.mono.as_ref().map(|_| params.get(MONO_BELOW_HZ));
        let fs = self.sample_rate;
        let (left, right) = audio.stereo_mut();
        let frames = left.len();
        let mut readout = Readout {
            sums: self.sums,
            corr: self.corr,
            pole: self.corr_pole,
        };
        match (&mut self.mono, mono_freq) {
            // With fixed coefficients the mono maker runs over the whole block at once, each of
            // its sections flushed (and the readout's chunk closed) at the chunk boundaries as
            // it passes them.
            (Some(mm), Some(freq)) if freq.is_constant() => {
                mm.coefs = self
                    .mono_coefs
                    .get(freq.first(), |f| lr_sections::<2>(f, fs));
                let first_flush = CHUNK - 1 - (self.position % CHUNK as u64) as usize;
                if width.is_constant() {
                    let w = width.first() / 100.0;
                    mm.run(left, right, |_| w, first_flush, post, &mut readout);
                } else {
                    let w = |i| width.at(i) / 100.0;
                    mm.run(left, right, w, first_flush, post, &mut readout);
                }
                self.position += frames as u64;
            }
            _ => {
                let mut k = 0;
                while k < frames {
                    let n = (CHUNK - (self.position % CHUNK as u64) as usize).min(frames - k);
                    let (l, r) = (&mut left[k..k + n], &mut right[k..k + n]);
                    match (&mut self.mono, mono_freq) {
                        (Some(mm), Some(freq)) => {
                            for i in 0..n {
                                mm.coefs = self
                                    .mono_coefs
                                    .get(freq.at(k + i), |f| lr_sections::<2>(f, fs));
                                let w = width.at(k + i) / 100.0;
                                let mid = 0.5 * (l[i] + r[i]);
                                let side = 0.5 * (l[i] - r[i]);
                                let (mid, side) = mm.process(mid, side);
                                l[i] = mid + w * side;
                                r[i] = mid - w * side;
                            }
                        }
                        _ => {
                            if !(width.is_constant() && width.first() == 100.0) {
                                for i in 0..n {
                                    let w = width.at(k + i) / 100.0;
                                    if w != 1.0 {
                                        let mid = 0.5 * (l[i] + r[i]);
                                        let side = 0.5 * (l[i] - r[i]);
                                        l[i] = mid + w * side;
                                        r[i] = mid - w * side;
                                    }
                                }
                            }
                        }
                    }
                    readout.add_all(l, r, post);
                    self.position += n as u64;
                    if self.position.is_multiple_of(CHUNK as u64) {
                        readout.close_chunk();
                        if let Some(m) = &mut self.mono {
                            m.flush();
                        }
                    }
                    k += n;
                }
            }
        }
        (self.sums, self.corr) = (readout.sums, readout.corr);
        self.publish();
    }
    fn telemetry(&self) -> Option<Arc<Telemetry>> {
        Some(self.telemetry.clone())
    }
    crate::hand_over! {
        config: sample_rate, corr_pole;
        state: mono, mono_coefs, corr, sums, position;
        own: params, telemetry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `path` and the frame-by-frame path side by side over blocks of every length
    /// (shorter than the pipeline, across several chunks), with the chunk boundaries' flushes
    /// at every phase, the crossover moved and the state flushed between some of them, on
    /// noise and on tiny values decaying through the flush threshold: the same samples and the
    /// same state after every call.
    fn same_as_frame_by_frame(
        mut path: impl FnMut(&mut MonoMaker, &mut [f64], &mut [f64], &dyn Fn(usize) -> f64, usize),
    ) {
        let mut seed = 0x853c_49e6_748f_ea9bu64;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut piped = MonoMaker::new();
        piped.coefs = lr_sections::<2>(150.0, 44_100.0);
        let mut framed = piped.clone();
        let lens = [
            0, 1, 2, 3, 4, 5, 6, 7, 17, 64, 0, 3, 65, 128, 1000, 130, 63, 200, 300, 2000,
        ];
        for (call, len) in lens.into_iter().enumerate() {
            // Every fifth call: from a cleared state, tiny noise, then silence its state decays
            // in, through the flush threshold.
            let tiny = call % 5 == 4;
            if tiny {
                piped.reset();
                framed.reset();
            }
            let scale = |i: usize| match (tiny, i < len / 4) {
                (false, _) => 1.0,
                (true, true) => 1e-29,
                (true, false) => 0.0,
            };
            let l: Vec<f64> = (0..len).map(|i| scale(i) * noise()).collect();
            let r: Vec<f64> = (0..len).map(|i| 0.3 * scale(i) * noise()).collect();
            let w = |i: usize| 0.9 + 0.001 * i as f64;
            let first_flush = (call * 23) % CHUNK;
            let (mut pl, mut pr) = (l.clone(), r.clone());
            path(&mut piped, &mut pl, &mut pr, &w, first_flush);
            let (mut fl, mut fr) = (l.clone(), r.clone());
            for i in 0..len {
                let (mid, side) = framed.process(0.5 * (l[i] + r[i]), 0.5 * (l[i] - r[i]));
                fl[i] = mid + w(i) * side;
                fr[i] = mid - w(i) * side;
                if i % CHUNK == first_flush {
                    framed.flush();
                }
            }
            assert_eq!((&pl, &pr), (&fl, &fr), "call {call}: {len} frames");
            assert_eq!(
                format!("{piped:?}"),
                format!("{framed:?}"),
                "state after call {call} ({len} frames)"
            );
            if call % 3 == 2 {
                piped.flush();
                framed.flush();
            }
            if call == 9 {
                let c = lr_sections::<2>(90.0 + call as f64, 48_000.0);
                piped.coefs = c;
                framed.coefs = c;
            }
        }
    }

    /// A width (mono maker on or off, `width_pct` 110) at 48 kHz over the stereo signal `x` in
    /// blocks of the lengths `blocks` in turn, each block's parameters set by `moving(slots,
    /// at, n)` and processed by `process`: the output's bits, the readout's after every block,
    /// and the width.
    fn render(
        mono: bool,
        x: &[Vec<f64>; 2],
        blocks: &[usize],
        moving: impl Fn(&mut [crate::dsp::param::ParamSlot], usize, usize),
        process: impl Fn(&mut Width, &mut AudioMut<'_>, ParamBlock<'_>),
    ) -> (Vec<u64>, Vec<u64>, Width) {
        use crate::dsp::param::ParamSlot;
        let most = blocks.iter().copied().max().unwrap_or(1);
        let mut w = Width::new(mono);
        w.prepare(&ProcessSpec {
            sample_rate: 48_000.0,
            max_block: most,
            input_channels: 2,
        });
        let mut slots: Vec<ParamSlot> = w
            .params()
            .iter()
            .map(|p| ParamSlot::new(p.default, most))
            .collect();
        slots[WIDTH_PCT] = ParamSlot::new(110.0, most);
        let mut buf = crate::dsp::AudioBuffer::new(2, most);
        let (mut out, mut readout) = (Vec::new(), Vec::new());
        let (len, mut at) = (x[0].len(), 0);
        for &n in blocks.iter().cycle() {
            if at == len {
                break;
            }
            let n = n.min(len - at);
            for (c, x) in x.iter().enumerate() {
                buf.channel_mut(c, n).copy_from_slice(&x[at..at + n]);
            }
            moving(&mut slots, at, n);
            process(&mut w, &mut buf.view_mut(n), ParamBlock::new(&slots));
            for c in 0..2 {
                out.extend(buf.channel(c, n).iter().map(|v| v.to_bits()));
            }
            readout.push(w.telemetry.get(0).to_bits());
            at += n;
        }
        (out, readout, w)
    }

    /// Moves parameter `p` of a block (frames `at…at + n`) along a ramp of 60…160 repeating.
    fn ramp(slots: &mut [crate::dsp::param::ParamSlot], p: usize, at: usize, n: usize) {
        let slot = &mut slots[p];
        slot.constant = false;
        for (i, v) in slot.values[..n].iter_mut().enumerate() {
            *v = 60.0 + ((at + i) % 997) as f64 / 10.0;
        }
    }

    /// Two channels of noise, `len` frames.
    fn stereo_noise(seed: u64, len: usize) -> [Vec<f64>; 2] {
        let mut noise = crate::dsp::test_signal::noise(seed);
        [(); 2].map(|_| (0..len).map(|_| noise()).collect())
    }

    /// The width with a gain folded in gives the bits of the width and then the gain, and the
    /// same correlation readout: mono maker on and off, constant and moving width, gains of 1,
    /// +7 dB and a polarity flip, blocks of several lengths.
    #[test]
    fn a_folded_gain_gives_the_bits_of_a_gain_after() {
        let x = stereo_noise(0x2545_f491_4f6c_dd1d, 5000);
        for mono in [false, true] {
            for moving in [false, true] {
                for post in [1.0, 2.238_721_138_568_339_5, -0.5] {
                    let run = |folded: bool| {
                        let moving = |slots: &mut [_], at, n| {
                            if moving {
                                ramp(slots, WIDTH_PCT, at, n);
                            }
                        };
                        let (out, readout, _) =
                            render(mono, &x, &[1024, 7, 300, 64], moving, |w, audio, params| {
                                if folded {
                                    w.process_gained(audio, None, params, post);
                                } else {
                                    w.process(audio, None, params);
                                    let (l, r) = audio.stereo_mut();
                                    l.iter_mut().chain(r.iter_mut()).for_each(|v| *v *= post);
                                }
                            });
                        (out, readout)
                    };
                    let case = format!("mono {mono}, moving {moving}, gain {post}");
                    assert!(run(true) == run(false), "{case}");
                }
            }
        }
    }

    #[test]
    fn the_pipeline_is_the_frame_by_frame_path() {
        same_as_frame_by_frame(|m, l, r, w, first| m.run_portable(l, r, w, first));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_wavefront_is_the_frame_by_frame_path() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            assert!(std::env::var_os("CI").is_none(), "CI machines have AVX2");
            return;
        }
        // SAFETY: the CPU has AVX2 (checked above).
        same_as_frame_by_frame(|m, l, r, w, first| unsafe { pipeline::run(m, l, r, w, first) });
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_wavefront_is_the_frame_by_frame_path() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        // The readout's pass the kernel does as well is checked against the other builds'
        // by `every_build_gives_the_same_bits`.
        let mut readout = Readout {
            sums: [0.0; 3],
            corr: [0.0; 3],
            pole: 0.5,
        };
        // SAFETY: the CPU has AVX-512F (checked above).
        same_as_frame_by_frame(|m, l, r, w, first| unsafe {
            pipeline::run_avx512(m, l, r, w, first, 1.0, &mut readout)
        });
    }

    /// The width runs the portable, the AVX2 and the AVX-512 builds (the last with the
    /// readout's pass folded in) to the same bits: output, correlation readout, state. Mono
    /// maker on (crossover fixed and moving) and off, constant and moving width, a folded gain
    /// of 1 and +7 dB, blocks of several lengths over many chunks.
    #[test]
    fn every_build_gives_the_same_bits() {
        crate::dsp::simd::init();
        let x = stereo_noise(0x9e37_79b9_7f4a_7c15, 20_000);
        for (mono, moving_freq) in [(false, false), (true, false), (true, true)] {
            for moving_width in [false, true] {
                for post in [1.0, 2.238_721_138_568_339_5] {
                    let run = |build: &str| {
                        crate::dsp::simd::force_portable(build == "portable");
                        crate::dsp::simd::force_avx2(build == "avx2");
                        let moving = |slots: &mut [_], at, n| {
                            if moving_width {
                                ramp(slots, WIDTH_PCT, at, n);
                            }
                            if moving_freq {
                                ramp(slots, MONO_BELOW_HZ, at, n);
                            }
                        };
                        let blocks = [4096, 7, 300, 64, 1000, 1];
                        let (out, readout, w) =
                            render(mono, &x, &blocks, moving, |w, audio, params| {
                                w.process_gained(audio, None, params, post)
                            });
                        crate::dsp::simd::force_portable(false);
                        crate::dsp::simd::force_avx2(false);
                        (out, readout, format!("{:?}", w.mono), w.sums, w.corr)
                    };
                    let case = format!(
                        "mono {mono} (moving {moving_freq}), moving width {moving_width}, gain {post}"
                    );
                    let portable = run("portable");
                    assert!(portable == run("avx2"), "AVX2: {case}");
                    assert!(portable == run("avx512"), "AVX-512: {case}");
                }
            }
        }
    }
}
