//! `delay`: a feedback delay for a delay return (or an insert with a dry/wet mix).
//!
//! This module owns the recipe side (options, note values at a tempo, the tail estimate) and the
//! processor; [`line`] owns the ring buffers, the interpolated read and the glide of the delay
//! time.
//!
//! Signal flow per channel, with `F` the optional loop filters (12 dB/oct Butterworth high-pass
//! `low_cut_hz` and low-pass `high_cut_hz`, SVF sections):
//!
//! ```text
//! wet   = line(t − time)
//! line ← F(in + feedback·wet)          (ping-pong: left ← F((inL + inR)/2 + feedback·wetR),
//! out   = (1 − mix)·in + mix·wet                       right ← F(feedback·wetL))
//! ```
//!
//! So every repeat, the first included, passes the filters once more, and with the filters absent
//! an impulse comes back at `round(time·fs)` samples, then every `round(time·fs)` samples
//! multiplied by the feedback. Latency 0.
//!
//! # Tail
//! [`Processor::tail`] covers the repeats until the energy still to come is below −120 dB
//! (relative to the input's), for the configured (initial) `time_ms` and `feedback_pct`: `K`
//! repeats of `round(time·fs)` samples, with `K` the smallest count for which
//! `fb^(2K)/(1 − fb²) < 10⁻¹²` (21 at 50 %, 1 without feedback), plus the ring of the loop
//! filters (`1.5·(K + 14)/σ` per filter, σ = 2π·fc/√2 the decay rate of a 2nd-order Butterworth
//! section), capped at [`MAX_TAIL_S`] seconds. Automation that raises the feedback or the time
//! later is not reflected.

pub mod line;

use self::line::{Follower, Ring, MIN_DELAY};
use super::config::{ConfigValue, ProcessorConfig};
use super::filters::design::{self, prewarp};
use super::filters::{flush, flush_state, FlushClock, SvfCoefs, SvfState};
use super::kind::{BuildContext, KindInfo};
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ParamValues, ProcessSpec, Processor, Unit};
use std::f64::consts::FRAC_1_SQRT_2;

/// The longest tail the delay declares, in seconds (a 95 % feedback at 4 s would ring for
/// 18 minutes before falling below −120 dB).
pub const MAX_TAIL_S: f64 = 30.0;

/// Longest delay time in milliseconds.
pub const MAX_TIME_MS: f64 = 4000.0;

/// Level below which the repeats count as gone (−120 dB).
const TAIL_FLOOR: f64 = 1e-6;

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "delay",
    doc: "Feedback delay for a delay return: `time_ms` (1–4000, or `note` = \"1/8\", \"1/4.\" \
          dotted, \"1/8t\" triplet with `tempo_bpm`), `feedback_pct`, `mix_pct` (100: wet only, \
          for a return on a bus), optional `low_cut_hz` / `high_cut_hz` filters in the feedback \
          loop (every repeat passes them once more), optional `ping_pong = true` on a stereo \
          input (the input's mid starts on the left, repeats alternate sides). Time changes glide \
          like tape (speed within ±50 %, cubic interpolation). Latency 0; the tail covers the \
          repeats down to −120 dB (at most 30 s).",
    build,
    example,
};

fn example() -> ProcessorConfig {
    ProcessorConfig::new()
        .num("time_ms", 375.0)
        .num("feedback_pct", 35.0)
        .num("mix_pct", 100.0)
        .num("low_cut_hz", 150.0)
        .num("high_cut_hz", 6000.0)
        .with("ping_pong", ConfigValue::Bool(true))
}

/// Indexes of the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Indexes {
    time: usize,
    feedback: usize,
    mix: usize,
    low_cut: Option<usize>,
    high_cut: Option<usize>,
}

/// The duration of note value `note` (`"1/8"`, `"1/4."`, `"1/8t"`, `"3/16"`, `"1"`) at `bpm`
/// quarter notes per minute, in milliseconds.
pub fn note_ms(note: &str, bpm: f64) -> Result<f64, String> {
    let bad = || {
        format!(
            "`note` = \"{note}\" is not a note value: write a fraction of a whole note such as \
             \"1/4\", \"1/8.\" (dotted) or \"1/8t\" (triplet)"
        )
    };
    let s = note.trim();
    let (body, factor) = if let Some(b) = s.strip_suffix('.') {
        (b, 1.5)
    } else if let Some(b) = s.strip_suffix('t').or_else(|| s.strip_suffix('T')) {
        (b, 2.0 / 3.0)
    } else {
        (s, 1.0)
    };
    let (num, den) = match body.split_once('/') {
        Some((n, d)) => (n.trim(), d.trim()),
        None => (body.trim(), "1"),
    };
    let num: u32 = num.parse().map_err(|_| bad())?;
    let den: u32 = den.parse().map_err(|_| bad())?;
    if num == 0 || den == 0 {
        return Err(bad());
    }
    Ok(f64::from(num) / f64::from(den) * 4.0 * 60_000.0 / bpm * factor)
}

fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    let channels = cx.input_channels;
    if !(1..=2).contains(&channels) {
        return Err(format!(
            "delay takes a mono or stereo input, not {channels} channels"
        ));
    }
    let ping_pong = cx.config.take_bool("ping_pong", false)?;
    if ping_pong && channels != 2 {
        return Err("`ping_pong` needs a stereo input (this one is mono)".into());
    }
    let note = match cx.config.take("note") {
        None => None,
        Some(ConfigValue::Text(s)) => Some(s),
        Some(other) => {
            return Err(format!(
                "`note` must be a string such as \"1/8\", not {}",
                other.type_name()
            ))
        }
    };
    let tempo = match cx.config.take("tempo_bpm") {
        None => None,
        Some(ConfigValue::Number(b)) if (20.0..=400.0).contains(&b) => Some(b),
        Some(ConfigValue::Number(b)) => {
            return Err(format!("`tempo_bpm` = {b} must be between 20 and 400"))
        }
        Some(other) => {
            return Err(format!(
                "`tempo_bpm` must be a number, not {}",
                other.type_name()
            ))
        }
    };
    let synced = match (note, tempo) {
        (Some(note), Some(bpm)) => {
            if cx.config.entries.contains_key("time_ms") {
                return Err("give either `time_ms` or `note` (with `tempo_bpm`), not both".into());
            }
            let ms = note_ms(&note, bpm)?;
            if !(1.0..=MAX_TIME_MS).contains(&ms) {
                return Err(format!(
                    "`note` = \"{note}\" at {bpm} bpm is {ms:.1} ms; the delay time must be \
                     between 1 and {MAX_TIME_MS} ms"
                ));
            }
            cx.config
                .entries
                .insert("time_ms".into(), ConfigValue::Number(ms));
            true
        }
        (Some(_), None) => return Err("`note` needs `tempo_bpm`".into()),
        (None, Some(_)) => return Err("`tempo_bpm` is only used with `note`".into()),
        (None, None) => false,
    };
    let has = |k: &str| cx.config.entries.contains_key(k);
    let layout = Layout {
        channels,
        ping_pong,
        synced,
        low_cut: has("low_cut_hz"),
        high_cut: has("high_cut_hz"),
    };
    let mut delay = Delay::new(layout);
    let c = &*cx.config;
    // For the tail estimate only: a malformed option is reported when the registry takes it.
    let peek = |key: &str, default: f64| c.peek_number(key, default).unwrap_or(default);
    delay.tail_from = TailFrom {
        time_ms: peek("time_ms", delay.params[delay.idx.time].default),
        feedback_pct: peek("feedback_pct", delay.params[delay.idx.feedback].default),
        low_cut_hz: delay
            .idx
            .low_cut
            .map(|i| peek("low_cut_hz", delay.params[i].default)),
        high_cut_hz: delay
            .idx
            .high_cut
            .map(|i| peek("high_cut_hz", delay.params[i].default)),
    };
    Ok(Box::new(delay))
}

/// The structure of a delay: what cannot change without rebuilding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// 1 or 2.
    pub channels: usize,
    /// Repeats alternate between the sides (stereo only).
    pub ping_pong: bool,
    /// The time comes from a note value at a tempo (`time_ms` is then fixed).
    pub synced: bool,
    /// A low cut (high-pass) sits in the loop.
    pub low_cut: bool,
    /// A high cut (low-pass) sits in the loop.
    pub high_cut: bool,
}

/// The values the tail is estimated from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TailFrom {
    time_ms: f64,
    feedback_pct: f64,
    low_cut_hz: Option<f64>,
    high_cut_hz: Option<f64>,
}

/// A 12 dB/oct Butterworth filter in the loop, one state per channel.
#[derive(Debug, Clone, Copy)]
struct LoopFilter {
    high_pass: bool,
    cur: f64,
    coefs: SvfCoefs,
    state: [SvfState; 2],
}

impl LoopFilter {
    fn new(high_pass: bool) -> Self {
        LoopFilter {
            high_pass,
            cur: f64::NAN,
            coefs: SvfCoefs::IDENTITY,
            state: [[0.0; 2]; 2],
        }
    }
    #[inline(always)]
    fn update(&mut self, freq: f64, fs: f64) {
        if freq != self.cur {
            self.cur = freq;
            let t = prewarp(freq, fs);
            self.coefs = if self.high_pass {
                design::high_pass(t, FRAC_1_SQRT_2).svf
            } else {
                design::low_pass(t, FRAC_1_SQRT_2).svf
            };
        }
    }
}

crate::copy_state!(LoopFilter, Follower);

/// The feedback delay processor.
pub struct Delay {
    params: Vec<ParamInfo>,
    idx: Indexes,
    layout: Layout,
    tail_from: TailFrom,
    tail: usize,
    sample_rate: f64,
    rings: [Ring; 2],
    /// Write position (wraps through the rings' masks).
    w: usize,
    follower: Follower,
    low_cut: Option<LoopFilter>,
    high_cut: Option<LoopFilter>,
    clock: FlushClock,
}

impl Delay {
    /// A delay of structure `layout`, with the default values.
    pub fn new(layout: Layout) -> Self {
        let mut time = ParamInfo::new("time_ms", Unit::Milliseconds, 1.0, MAX_TIME_MS, 250.0)
            .log()
            .glide(0.0)
            .doc("delay time (changes glide like tape, speed within ±50 %)");
        if layout.synced {
            time = time
                .fixed()
                .doc("delay time, set by `note` at `tempo_bpm` (fixed)");
        }
        let mut params = vec![
            time,
            ParamInfo::new("feedback_pct", Unit::Percent, 0.0, 95.0, 30.0)
                .doc("level of each repeat relative to the one before"),
            ParamInfo::new("mix_pct", Unit::Percent, 0.0, 100.0, 100.0)
                .doc("wet share of the output: 100 = repeats only (a return), 0 = dry only"),
        ];
        let mut push = |p: ParamInfo| {
            params.push(p);
            params.len() - 1
        };
        let low_cut = layout.low_cut.then(|| {
            push(
                ParamInfo::new("low_cut_hz", Unit::Hertz, 10.0, 24000.0, 100.0)
                    .log()
                    .doc("12 dB/oct high-pass in the feedback loop"),
            )
        });
        let high_cut = layout.high_cut.then(|| {
            push(
                ParamInfo::new("high_cut_hz", Unit::Hertz, 10.0, 24000.0, 8000.0)
                    .log()
                    .doc("12 dB/oct low-pass in the feedback loop"),
            )
        });
        Delay {
            params,
            idx: Indexes {
                time: 0,
                feedback: 1,
                mix: 2,
                low_cut,
                high_cut,
            },
            layout,
            tail_from: TailFrom {
                time_ms: 250.0,
                feedback_pct: 30.0,
                low_cut_hz: low_cut.map(|_| 100.0),
                high_cut_hz: high_cut.map(|_| 8000.0),
            },
            tail: 0,
            sample_rate: 48000.0,
            rings: Default::default(),
            w: 0,
            follower: Follower::new(48000.0),
            low_cut: low_cut.map(|_| LoopFilter::new(true)),
            high_cut: high_cut.map(|_| LoopFilter::new(false)),
            clock: FlushClock::default(),
        }
    }

    /// The structure.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The target delay in whole samples for a time of `ms`.
    #[inline(always)]
    fn target(&self, ms: f64) -> f64 {
        let max = self.rings[0].max_delay() as f64;
        libm::round(ms * 0.001 * self.sample_rate).clamp(MIN_DELAY, max)
    }

    fn estimate_tail(&self) -> usize {
        let t = &self.tail_from;
        let fs = self.sample_rate;
        let period = libm::round(t.time_ms * 0.001 * fs).max(MIN_DELAY);
        let fb = t.feedback_pct * 0.01;
        // Repeat k (from 1) has amplitude fb^(k−1); after K repeats the energy still to come is
        // fb^(2K)/(1 − fb²). K is the first count that brings it below −120 dB.
        let repeats = if fb <= 0.0 {
            1.0
        } else {
            let floor = libm::log(TAIL_FLOOR * TAIL_FLOOR) + libm::log(1.0 - fb * fb);
            libm::floor(floor / (2.0 * libm::log(fb))) + 1.0
        };
        let mut samples = repeats * period + 4.0;
        for fc in [t.low_cut_hz, t.high_cut_hz].into_iter().flatten() {
            let fc = fc.min(design::MAX_FREQ_RATIO * fs);
            let sigma = 2.0 * std::f64::consts::PI * fc * FRAC_1_SQRT_2;
            samples += 1.5 * (repeats + 14.0) / sigma * fs;
        }
        libm::ceil(samples.min(MAX_TAIL_S * fs)) as usize
    }

    /// Reads the delay for one sample: the follower's step towards `ms`, then the interpolated
    /// (or, at rest, plain) read of every ring.
    #[inline(always)]
    fn read(&mut self, ms: f64) -> [f64; 2] {
        let target = self.target(ms);
        let d = self.follower.step(target);
        let whole = d as usize;
        let frac = d - whole as f64;
        let mut out = [0.0; 2];
        for (o, ring) in out.iter_mut().zip(&self.rings).take(self.layout.channels) {
            *o = if frac == 0.0 {
                ring.tap(self.w, whole)
            } else {
                ring.read(self.w, whole, frac)
            };
        }
        out
    }

    /// Passes `x` (channel `c`) through the loop filters.
    #[inline(always)]
    fn filter(&mut self, c: usize, mut x: f64) -> f64 {
        if let Some(f) = &mut self.low_cut {
            x = f.coefs.tick(&mut f.state[c], x);
        }
        if let Some(f) = &mut self.high_cut {
            x = f.coefs.tick(&mut f.state[c], x);
        }
        flush(x)
    }

    /// One frame: reads the repeats, feeds the line, mixes. Returns the output frame.
    #[inline(always)]
    fn frame(&mut self, n: usize, p: &Values<'_>, xl: f64, xr: f64) -> (f64, f64) {
        let fs = self.sample_rate;
        if let (Some(f), Some(v)) = (&mut self.low_cut, &p.low_cut) {
            f.update(v.at(n), fs);
        }
        if let (Some(f), Some(v)) = (&mut self.high_cut, &p.high_cut) {
            f.update(v.at(n), fs);
        }
        let fb = p.feedback.at(n) * 0.01;
        let wet_share = p.mix.at(n) * 0.01;
        let dry_share = 1.0 - wet_share;
        let wet = self.read(p.time.at(n));
        let w = self.w;
        self.w = w.wrapping_add(1);
        if self.layout.channels == 1 {
            let v = self.filter(0, xl + fb * wet[0]);
            self.rings[0].write(w, v);
            return (dry_share * xl + wet_share * wet[0], 0.0);
        }
        let (il, ir) = if self.layout.ping_pong {
            (0.5 * (xl + xr) + fb * wet[1], fb * wet[0])
        } else {
            (xl + fb * wet[0], xr + fb * wet[1])
        };
        let vl = self.filter(0, il);
        let vr = self.filter(1, ir);
        self.rings[0].write(w, vl);
        self.rings[1].write(w, vr);
        (
            dry_share * xl + wet_share * wet[0],
            dry_share * xr + wet_share * wet[1],
        )
    }

    /// Processes frames `from..to` of the block.
    fn run(&mut self, audio: &mut AudioMut<'_>, p: &Values<'_>, from: usize, to: usize) {
        if self.layout.channels == 1 {
            let x = &mut audio.channel_mut(0)[from..to];
            for (j, v) in x.iter_mut().enumerate() {
                *v = self.frame(from + j, p, *v, 0.0).0;
            }
        } else {
            let (l, r) = audio.stereo_mut();
            let (l, r) = (&mut l[from..to], &mut r[from..to]);
            for (j, (a, b)) in l.iter_mut().zip(r.iter_mut()).enumerate() {
                (*a, *b) = self.frame(from + j, p, *a, *b);
            }
        }
    }
}

/// The parameter values of one block.
struct Values<'a> {
    time: ParamValues<'a>,
    feedback: ParamValues<'a>,
    mix: ParamValues<'a>,
    low_cut: Option<ParamValues<'a>>,
    high_cut: Option<ParamValues<'a>>,
}

impl Processor for Delay {
    fn kind(&self) -> &'static str {
        "delay"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.layout.channels
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        self.sample_rate = spec.sample_rate;
        let max = libm::ceil(MAX_TIME_MS * 0.001 * spec.sample_rate) as usize + 1;
        self.rings = [
            Ring::new(max),
            Ring::new(if self.layout.channels == 2 { max } else { 0 }),
        ];
        self.follower = Follower::new(spec.sample_rate);
        for f in [&mut self.low_cut, &mut self.high_cut]
            .into_iter()
            .flatten()
        {
            f.cur = f64::NAN;
        }
        self.tail = self.estimate_tail();
        self.reset();
    }
    fn reset(&mut self) {
        self.rings.iter_mut().for_each(Ring::clear);
        self.w = 0;
        self.follower.reset();
        for f in [&mut self.low_cut, &mut self.high_cut]
            .into_iter()
            .flatten()
        {
            f.state = [[0.0; 2]; 2];
        }
        self.clock.reset();
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let values = Values {
            time: params.get(self.idx.time),
            feedback: params.get(self.idx.feedback),
            mix: params.get(self.idx.mix),
            low_cut: self.idx.low_cut.map(|i| params.get(i)),
            high_cut: self.idx.high_cut.map(|i| params.get(i)),
        };
        let frames = audio.frames();
        let mut start = 0;
        while start < frames {
            let (len, at_flush) = self.clock.next_run(frames - start);
            self.run(audio, &values, start, start + len);
            if at_flush {
                for f in [&mut self.low_cut, &mut self.high_cut]
                    .into_iter()
                    .flatten()
                {
                    f.state.iter_mut().for_each(flush_state);
                }
            }
            start += len;
        }
    }
    fn tail(&self) -> usize {
        self.tail
    }

    crate::hand_over! {
        config: idx, layout, sample_rate;
        state: rings, w, follower, low_cut, high_cut, clock;
        own: params, tail_from, tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_values() {
        assert_eq!(note_ms("1/4", 120.0).unwrap(), 500.0);
        assert_eq!(note_ms("1/8", 120.0).unwrap(), 250.0);
        assert_eq!(note_ms("1/4.", 120.0).unwrap(), 750.0);
        assert!((note_ms("1/8t", 120.0).unwrap() - 500.0 / 3.0).abs() < 1e-9);
        assert_eq!(note_ms("1", 60.0).unwrap(), 4000.0);
        assert!(note_ms("eighth", 120.0).is_err());
        assert!(note_ms("1/0", 120.0).is_err());
    }
}
