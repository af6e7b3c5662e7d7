//! `eq`: a parametric equaliser with any number of bands.
//!
//! This module owns the recipe side of the EQ (parsing the `bands` list, declaring the numbered
//! parameters `<n>.freq_hz`, `<n>.gain_db`, `<n>.q`) and the processor that runs the bands in
//! order; [`band`] owns one band's design and runtime. The filters themselves are the shared
//! sections of [`crate::dsp::filters`]: trapezoidal SVFs where coefficients move, direct form I
//! biquads of the same transfer functions where they hold still (see [`band`]).
//!
//! ```lua
//! eq {
//!   bands = {
//!     { type = "high_pass", freq_hz = 30, slope_db = 24 },
//!     { type = "bell", freq_hz = 2500, gain_db = -2, q = 1.4 },
//!     { type = "high_shelf", freq_hz = 10000, gain_db = 1.5, mode = "side" },
//!   },
//! }
//! ```
//!
//! Band type, slope and mode are structural options of a band; frequency, gain and quality factor
//! are parameters (automatable, gliding). Mid/side bands process `(L+R)/2` or `(L−R)/2` of a
//! stereo signal and need a stereo input. Bands at 0 dB are bit-transparent. Latency 0.

pub mod band;

use self::band::{Band, BandParams, BandSpec, BandType, Lanes, Mode};
use super::config::{ConfigValue, ProcessorConfig};
use super::filters::df1::run_series2;
use super::filters::df1_batch::{run_series2_batch, MAX_SIGNALS};
use super::filters::{Df1Coefs, Df1State, FlushClock};
use super::kind::{BuildContext, KindInfo};
use super::{batch_kind, BatchItem, MAX_BATCH};
use super::{AudioMut, AudioRef, ParamBlock, ParamInfo, ProcessSpec, Processor, Unit};
use crate::suggest::{closest, did_you_mean};

/// The registry entry.
pub const KIND: KindInfo = KindInfo {
    name: "eq",
    doc: "Parametric EQ with any number of bands, given as a list `bands = { {type = \"bell\", \
          freq_hz = 1000, gain_db = -3, q = 1.4}, … }`. Types: bell, low_shelf, high_shelf, \
          high_pass and low_pass (Butterworth, `slope_db` = 12, 24 or 48), notch, band_pass \
          (0 dB peak) and tilt (first-order, +gain/2 above the centre, −gain/2 below). Each band \
          may set `mode` = \"stereo\" (default), \"mid\" or \"side\" (stereo input only). \
          Parameters of band n: `n.freq_hz`, `n.gain_db` (types with a gain), `n.q` (not for tilt \
          nor for 24/48 dB/oct passes). Bilinear-transformed analog responses (direct-form-I \
          biquads, trapezoidal SVFs while parameters move), exact at the set frequency; bands at \
          0 dB are bit-transparent. Latency 0.",
    build,
    example,
};

/// Options a band table may hold.
const BAND_KEYS: &[&str] = &["type", "freq_hz", "gain_db", "q", "slope_db", "mode"];

/// An EQ with one band of each type (the API reference's example).
fn example() -> ProcessorConfig {
    let band = |t: &str, extra: &[(&str, ConfigValue)]| {
        let mut c = ProcessorConfig::new().text("type", t);
        for (k, v) in extra {
            c = c.with(k, v.clone());
        }
        ConfigValue::Table(c)
    };
    use ConfigValue::{Number as N, Text as T};
    ProcessorConfig::new().with(
        "bands",
        ConfigValue::List(vec![
            band("high_pass", &[("freq_hz", N(30.0)), ("slope_db", N(24.0))]),
            band(
                "low_shelf",
                &[("freq_hz", N(100.0)), ("gain_db", N(1.5)), ("q", N(0.707))],
            ),
            band(
                "bell",
                &[("freq_hz", N(2500.0)), ("gain_db", N(-2.0)), ("q", N(1.4))],
            ),
            band("notch", &[("freq_hz", N(60.0)), ("q", N(8.0))]),
            band("band_pass", &[("freq_hz", N(1000.0)), ("q", N(0.7))]),
            band("tilt", &[("freq_hz", N(1000.0)), ("gain_db", N(1.0))]),
            band(
                "high_shelf",
                &[
                    ("freq_hz", N(10000.0)),
                    ("gain_db", N(1.5)),
                    ("mode", T("side".into())),
                ],
            ),
            band(
                "low_pass",
                &[
                    ("freq_hz", N(20000.0)),
                    ("slope_db", N(12.0)),
                    ("q", N(0.707)),
                ],
            ),
        ]),
    )
}

/// Builds an EQ from its options.
fn build(cx: &mut BuildContext) -> Result<Box<dyn Processor>, String> {
    if !(1..=2).contains(&cx.input_channels) {
        return Err(format!(
            "eq takes a mono or stereo input, not {} channels",
            cx.input_channels
        ));
    }
    let list = cx.config.take_list("bands")?;
    let mut specs = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let n = i + 1;
        let mut t = match item {
            ConfigValue::Table(t) => t,
            other => {
                return Err(format!(
                    "eq band {n} must be a table such as {{type = \"bell\", freq_hz = 1000}}, \
                     not {}",
                    other.type_name()
                ))
            }
        };
        let spec = parse_band(n, &mut t, cx)?;
        specs.push(spec);
    }
    Ok(Box::new(Eq::new(&specs, cx.input_channels)))
}

/// Reads band `n`'s structure from its table and moves its parameter values into the node's
/// options as `n.freq_hz`, `n.gain_db`, `n.q` (where the registry reads parameter values).
fn parse_band(
    n: usize,
    t: &mut ProcessorConfig,
    cx: &mut BuildContext,
) -> Result<BandSpec, String> {
    let names: Vec<&'static str> = BandType::ALL.iter().map(|t| t.name()).collect();
    let kind = match t.take("type") {
        None => {
            return Err(format!(
                "eq band {n} needs a `type`: one of {}",
                quoted(&names)
            ))
        }
        Some(ConfigValue::Text(s)) => BandType::parse(&s).ok_or_else(|| {
            format!(
                "eq band {n}: unknown type \"{s}\"{}; the types are {}",
                did_you_mean(&closest(&s, names.iter().copied())),
                quoted(&names)
            )
        })?,
        Some(other) => {
            return Err(format!(
                "eq band {n}: `type` must be a string, not {}",
                other.type_name()
            ))
        }
    };
    let slope_db = if kind.has_slope() {
        let s = t
            .take_number("slope_db", 12.0)
            .map_err(|e| band_err(n, e))?;
        if ![12.0, 24.0, 48.0].contains(&s) {
            return Err(format!(
                "eq band {n}: `slope_db` must be 12, 24 or 48 (dB per octave), not {s}"
            ));
        }
        s as u32
    } else {
        12
    };
    let mode = t
        .take_choice("mode", &Mode::NAMES, "stereo")
        .map_err(|e| band_err(n, e))?;
    let mode = Mode::parse(mode).expect("a listed mode");
    if mode != Mode::Stereo && cx.input_channels != 2 {
        return Err(format!(
            "eq band {n} uses mode = \"{}\", which needs a stereo input (this one is mono)",
            Mode::NAMES[mode as usize]
        ));
    }
    let mut moved = vec!["freq_hz"];
    if kind.has_gain() {
        moved.push("gain_db");
    }
    if kind.has_q(slope_db) {
        moved.push("q");
    }
    for key in moved {
        if let Some(v) = t.take(key) {
            let id = format!("{n}.{key}");
            if cx.config.entries.contains_key(&id) {
                return Err(format!(
                    "eq band {n}: `{key}` is given twice (in the band and as `{id}`)"
                ));
            }
            cx.config.entries.insert(id, v);
        }
    }
    if let Some(key) = t.remaining_keys().next() {
        let why = if BAND_KEYS.contains(&key) {
            match key {
                "gain_db" => format!("a {} band has no gain", kind.name()),
                "q" if kind.has_slope() => format!(
                    "a {slope_db} dB/oct {} is Butterworth and has no `q` (only the 12 dB/oct \
                     one has)",
                    kind.name()
                ),
                "q" => format!("a {} band has no `q`", kind.name()),
                _ => format!("only high_pass and low_pass have a `{key}`"),
            }
        } else {
            format!(
                "unknown option `{key}`{}",
                did_you_mean(&closest(key, BAND_KEYS.iter().copied()))
            )
        };
        return Err(format!("eq band {n}: {why}"));
    }
    Ok(BandSpec {
        kind,
        slope_db,
        mode,
    })
}

fn band_err(n: usize, e: String) -> String {
    format!("eq band {n}: {e}")
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parameters of band `n` (from 1) of structure `spec`, appended to `params`.
fn band_params(n: usize, spec: &BandSpec, params: &mut Vec<ParamInfo>) -> BandParams {
    let kind = spec.kind;
    let freq = params.len();
    params.push(
        ParamInfo::new(
            format!("{n}.freq_hz"),
            Unit::Hertz,
            10.0,
            24000.0,
            kind.default_freq(),
        )
        .log()
        .doc(kind.freq_doc()),
    );
    let gain = kind.has_gain().then(|| {
        params.push(
            ParamInfo::new(format!("{n}.gain_db"), Unit::Decibels, -30.0, 30.0, 0.0)
                .doc(kind.gain_doc()),
        );
        params.len() - 1
    });
    let q = kind.has_q(spec.slope_db).then(|| {
        params.push(
            ParamInfo::new(format!("{n}.q"), Unit::Q, 0.1, 40.0, kind.default_q())
                .log()
                .doc(kind.q_doc()),
        );
        params.len() - 1
    });
    BandParams { freq, gain, q }
}

/// The parametric EQ processor.
pub struct Eq {
    params: Vec<ParamInfo>,
    bands: Vec<Band>,
    channels: usize,
    sample_rate: f64,
    clock: FlushClock,
}

impl Eq {
    /// An EQ with bands of structure `specs` (in processing order) for `channels` channels.
    ///
    /// # Panics
    /// If a mid/side band is asked for on a mono signal (the builder rejects that first).
    pub fn new(specs: &[BandSpec], channels: usize) -> Self {
        let mut params = Vec::new();
        let bands = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                assert!(channels == 2 || s.mode == Mode::Stereo);
                Band::new(*s, band_params(i + 1, s, &mut params))
            })
            .collect();
        Eq {
            params,
            bands,
            channels,
            sample_rate: 48000.0,
            clock: FlushClock::default(),
        }
    }

    /// The structure of every band, in order.
    pub fn layout(&self) -> impl Iterator<Item = BandSpec> + '_ {
        self.bands.iter().map(|b| b.spec)
    }
}

/// Most sections run as one series.
const GROUP_SECTIONS: usize = 16;

/// Constant stereo bands gathered to run as one series.
#[derive(Default)]
struct SectionGroup {
    bands: [usize; GROUP_SECTIONS],
    count: usize,
    sections: usize,
}

impl SectionGroup {
    /// Adds band `i` with `sections` sections; false when it does not fit.
    fn push(&mut self, i: usize, sections: usize) -> bool {
        if self.sections + sections > GROUP_SECTIONS {
            return false;
        }
        self.bands[self.count] = i;
        self.count += 1;
        self.sections += sections;
        true
    }

    /// Runs the gathered bands over `l`, `r` as one series of sections and empties the group.
    fn run(&mut self, bands: &mut [Band], l: &mut [f64], r: &mut [f64]) {
        if self.count == 0 {
            return;
        }
        let mut coefs = [Df1Coefs::IDENTITY; GROUP_SECTIONS];
        let mut sl = [[0.0; 4]; GROUP_SECTIONS];
        let mut sr = [[0.0; 4]; GROUP_SECTIONS];
        let mut k = 0;
        for &i in &self.bands[..self.count] {
            let (c, a, b) = bands[i]
                .constant_sections()
                .expect("gathered while constant");
            let n = c.len();
            coefs[k..k + n].copy_from_slice(c);
            sl[k..k + n].copy_from_slice(a);
            sr[k..k + n].copy_from_slice(b);
            k += n;
        }
        run_series2(&coefs[..k], &mut sl[..k], &mut sr[..k], l, r);
        let mut k = 0;
        for &i in &self.bands[..self.count] {
            let (_, a, b) = bands[i]
                .constant_sections()
                .expect("gathered while constant");
            let n = a.len();
            a.copy_from_slice(&sl[k..k + n]);
            b.copy_from_slice(&sr[k..k + n]);
            k += n;
        }
        self.count = 0;
        self.sections = 0;
    }
}

/// L/R → M/S in place: `m = (l + r)/2`, `s = (l − r)/2`.
#[inline]
fn to_mid_side(l: &mut [f64], r: &mut [f64]) {
    for (a, b) in l.iter_mut().zip(r.iter_mut()) {
        let (x, y) = (*a, *b);
        *a = 0.5 * (x + y);
        *b = 0.5 * (x - y);
    }
}

/// M/S → L/R in place: `l = m + s`, `r = m − s`.
#[inline]
fn to_left_right(m: &mut [f64], s: &mut [f64]) {
    for (a, b) in m.iter_mut().zip(s.iter_mut()) {
        let (x, y) = (*a, *b);
        *a = x + y;
        *b = x - y;
    }
}

impl Processor for Eq {
    fn kind(&self) -> &'static str {
        "eq"
    }
    fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    fn output_channels(&self) -> usize {
        self.channels
    }
    fn prepare(&mut self, spec: &ProcessSpec) {
        self.sample_rate = spec.sample_rate;
        self.bands.iter_mut().for_each(Band::invalidate);
    }
    fn reset(&mut self) {
        self.bands.iter_mut().for_each(Band::reset);
        self.clock.reset();
    }
    fn process(
        &mut self,
        audio: &mut AudioMut<'_>,
        _key: Option<AudioRef<'_>>,
        params: ParamBlock<'_>,
    ) {
        let fs = self.sample_rate;
        for band in &mut self.bands {
            band.begin_block(&params, fs);
        }
        let sections = self.plain_sections();
        if sections > 0 {
            // The whole block in one pass, as a batch of one.
            let mut eqs: [Option<&mut Eq>; MAX_BATCH] = Default::default();
            let mut chans: [Option<(&mut [f64], &mut [f64])>; MAX_BATCH] = Default::default();
            chans[0] = Some(audio.stereo_mut());
            eqs[0] = Some(self);
            match sections {
                1 => run_plain::<1, 1>(&mut eqs, &mut chans),
                2 => run_plain::<1, 2>(&mut eqs, &mut chans),
                3 => run_plain::<1, 3>(&mut eqs, &mut chans),
                _ => run_plain::<1, 4>(&mut eqs, &mut chans),
            }
            return;
        }
        let frames = audio.frames();
        let mut start = 0;
        while start < frames {
            let (len, flush) = self.clock.next_run(frames - start);
            let end = start + len;
            if self.channels == 2 {
                let (l, r) = audio.stereo_mut();
                let (l, r) = (&mut l[start..end], &mut r[start..end]);
                let mut mid_side = false;
                // Constant stereo bands in a row run as one series (see `run_series2`): their
                // indexes are gathered here and run together when the row ends.
                let mut group = SectionGroup::default();
                for i in 0..self.bands.len() {
                    let mode = self.bands[i].spec.mode;
                    if mode == Mode::Stereo && self.bands[i].is_constant_identity() {
                        continue;
                    }
                    if mode == Mode::Stereo && mid_side {
                        group.run(&mut self.bands, l, r);
                        to_left_right(l, r);
                        mid_side = false;
                    }
                    if mode == Mode::Stereo && self.bands[i].constant_sections().is_some() {
                        if !group.push(i, self.bands[i].spec.sections()) {
                            group.run(&mut self.bands, l, r);
                            group.push(i, self.bands[i].spec.sections());
                        }
                        continue;
                    }
                    group.run(&mut self.bands, l, r);
                    if (mode != Mode::Stereo) != mid_side {
                        if mid_side {
                            to_left_right(l, r);
                        } else {
                            to_mid_side(l, r);
                        }
                        mid_side = !mid_side;
                    }
                    let lanes = match mode {
                        Mode::Stereo => Lanes::Two(&mut *l, &mut *r),
                        Mode::Mid => Lanes::One(&mut *l),
                        Mode::Side => Lanes::One(&mut *r),
                    };
                    self.bands[i].process(lanes, &params, start, fs);
                }
                group.run(&mut self.bands, l, r);
                if mid_side {
                    to_left_right(l, r);
                }
            } else {
                let x = &mut audio.channel_mut(0)[start..end];
                for band in &mut self.bands {
                    band.process(Lanes::One(&mut *x), &params, start, fs);
                }
            }
            if flush {
                self.bands.iter_mut().for_each(Band::flush);
            }
            start = end;
        }
    }

    fn batch_kernel(&self) -> Option<super::BatchKernel> {
        Some(batch)
    }

    crate::hand_over! {
        config: channels, sample_rate;
        state: bands, clock;
        own: params;
        same: |a, b| a.layout().eq(b.layout());
    }
}

/// Most sections per EQ that [`run_plain`] runs (more run band by band).
const BATCH_SECTIONS: usize = 4;

impl Eq {
    /// When every band of this stereo EQ, in L/R mode, either passes the signal untouched or
    /// runs its DF1 sections as they are this block (after `begin_block`): how many sections
    /// run (1 to [`BATCH_SECTIONS`]); otherwise 0.
    fn plain_sections(&mut self) -> usize {
        if self.channels != 2 || self.bands.iter().any(|b| b.spec.mode != Mode::Stereo) {
            return 0;
        }
        let mut n = 0;
        for b in &mut self.bands {
            if b.is_constant_identity() {
                continue;
            }
            match b.constant_sections() {
                Some((c, _, _)) => n += c.len(),
                None => return 0,
            }
        }
        if n <= BATCH_SECTIONS {
            n
        } else {
            0
        }
    }
}

/// The [`super::BatchKernel`] of the EQ: stereo EQs whose bands are all constant, in L/R mode and
/// running their DF1 sections (the usual strip EQ) run side by side, grouped by their number of
/// active sections, up to [`MAX_SIGNALS`] in one pass; the others run alone. Same bits as
/// `process`, see [`run_series2_batch`].
fn batch(items: &mut [Option<BatchItem<'_>>]) {
    // Which items qualify, and their number of active sections.
    let mut sections = [0usize; MAX_BATCH];
    for (j, item) in items.iter_mut().enumerate() {
        let item = item.as_mut().expect("a full batch");
        let params = item.params;
        let Some(eq) = item.processor.as_any_mut().downcast_mut::<Eq>() else {
            continue;
        };
        let fs = eq.sample_rate;
        for band in &mut eq.bands {
            band.begin_block(&params, fs);
        }
        sections[j] = eq.plain_sections();
    }
    // Groups of equal section count and flush clock.
    let mut done = [false; MAX_BATCH];
    for j in 0..items.len() {
        if done[j] || sections[j] == 0 {
            continue;
        }
        let clock = eq_of(&mut items[j]).clock;
        let mut in_group = [false; MAX_BATCH];
        let mut k = 0;
        for (i, item) in items.iter_mut().enumerate().skip(j) {
            if k < MAX_SIGNALS
                && !done[i]
                && sections[i] == sections[j]
                && eq_of(item).clock == clock
            {
                in_group[i] = true;
                k += 1;
                done[i] = true;
            }
        }
        let mut eqs: [Option<&mut Eq>; MAX_BATCH] = Default::default();
        let mut chans: [Option<(&mut [f64], &mut [f64])>; MAX_BATCH] = Default::default();
        let mut slot = 0;
        for (i, item) in items.iter_mut().enumerate() {
            if in_group[i] {
                let item = item.as_mut().expect("a full batch");
                eqs[slot] = Some(batch_kind::<Eq>(&mut *item.processor));
                chans[slot] = Some(item.audio.stereo_mut());
                slot += 1;
            }
        }
        macro_rules! dispatch {
            ($($k:literal),*) => {
                match (k, sections[j]) {
                    $(
                        ($k, 1) => run_plain::<$k, 1>(&mut eqs, &mut chans),
                        ($k, 2) => run_plain::<$k, 2>(&mut eqs, &mut chans),
                        ($k, 3) => run_plain::<$k, 3>(&mut eqs, &mut chans),
                        ($k, _) => run_plain::<$k, 4>(&mut eqs, &mut chans),
                    )*
                    _ => unreachable!("groups of 1 to {MAX_SIGNALS}"),
                }
            };
        }
        dispatch!(1, 2, 3, 4, 5, 6, 7, 8);
    }
    for (j, item) in items.iter_mut().enumerate() {
        if !done[j] {
            let item = item.as_mut().expect("a full batch");
            item.processor.process(&mut item.audio, None, item.params);
        }
    }
}

fn eq_of<'a>(item: &'a mut Option<BatchItem<'_>>) -> &'a mut Eq {
    batch_kind::<Eq>(&mut *item.as_mut().expect("a full group").processor)
}

/// Runs the first `K` of `eqs` (EQs of `S` [plain](Eq::plain_sections) sections each, whose
/// flush clocks agree) over their blocks `chans` side by side in one pass, as `process` would
/// each: their histories in, [`run_series2_batch`] over the whole blocks (flushing where the
/// clocks say), their histories and clocks out.
fn run_plain<const K: usize, const S: usize>(
    eqs: &mut [Option<&mut Eq>; MAX_BATCH],
    chans: &mut [Option<(&mut [f64], &mut [f64])>; MAX_BATCH],
) {
    let mut coefs = [[Df1Coefs::IDENTITY; S]; K];
    let mut hist: [[[Df1State; S]; 2]; K] = [[[[0.0; 4]; S]; 2]; K];
    for (k, eq) in eqs.iter_mut().take(K).enumerate() {
        let eq = eq.as_mut().expect("a full group");
        let mut i = 0;
        for band in &mut eq.bands {
            if let Some((c, a, b)) = band.constant_sections() {
                for s in 0..c.len() {
                    coefs[k][i] = c[s];
                    hist[k][0][i] = a[s];
                    hist[k][1][i] = b[s];
                    i += 1;
                }
            }
        }
    }
    let mut clock = eqs[0].as_ref().expect("a full group").clock;
    {
        let mut it = chans.iter_mut();
        let mut blocks: [(&mut [f64], &mut [f64]); K] = std::array::from_fn(|_| {
            let (l, r) = it.next().and_then(|c| c.as_mut()).expect("a full group");
            (&mut **l, &mut **r)
        });
        run_series2_batch::<K, S>(&coefs, &mut hist, &mut blocks, &mut clock);
    }
    for (k, eq) in eqs.iter_mut().take(K).enumerate() {
        let eq = eq.as_mut().expect("a full group");
        eq.clock = clock;
        let mut i = 0;
        for band in &mut eq.bands {
            if let Some((c, a, b)) = band.constant_sections() {
                for s in 0..c.len() {
                    a[s] = hist[k][0][i];
                    b[s] = hist[k][1][i];
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::param::ParamSlot;
    use crate::dsp::AudioBuffer;

    /// A lone stereo EQ of one to four constant sections (a master's EQ, which AVX-512 runs
    /// through the staggered kernel of `df1_batch`) gives in every build the bits of the
    /// portable one (its sections one after the other, sample by sample), in blocks of odd
    /// lengths (shorter and longer than the kernel's pipeline) across the flush positions, on
    /// noise that turns quiet (1e-22) so that the flushes change what follows them.
    #[test]
    fn a_lone_eq_gives_the_bits_of_the_portable_build_in_every_build() {
        let bell = BandSpec {
            kind: BandType::Bell,
            slope_db: 12,
            mode: Mode::Stereo,
        };
        let high_pass = |slope_db| BandSpec {
            kind: BandType::HighPass,
            slope_db,
            mode: Mode::Stereo,
        };
        let len = 3000;
        let mut noise = crate::dsp::test_signal::noise(0x5eed_e0);
        let x: Vec<Vec<f64>> = (0..2)
            .map(|_| {
                (0..len)
                    .map(|i| noise() * if i < 1700 { 1.0 } else { 1e-22 })
                    .collect()
            })
            .collect();
        for (sections, specs) in [
            (1, vec![bell]),
            (2, vec![high_pass(12), bell]),
            (3, vec![high_pass(24), bell]),
            (4, vec![high_pass(24), bell, bell]),
        ] {
            // `portable`, `avx2_only`: which build runs.
            let run = |portable: bool, avx2_only: bool| {
                crate::dsp::simd::force_portable(portable);
                crate::dsp::simd::force_avx2(avx2_only);
                let mut eq = Eq::new(&specs, 2);
                eq.prepare(&ProcessSpec {
                    sample_rate: 48_000.0,
                    max_block: 1024,
                    input_channels: 2,
                });
                let slots: Vec<ParamSlot> = eq
                    .params()
                    .iter()
                    .map(|p| {
                        let v = if p.name.ends_with("gain_db") {
                            2.5
                        } else {
                            p.default
                        };
                        ParamSlot::new(v, 1024)
                    })
                    .collect();
                let mut buf = AudioBuffer::new(2, 1024);
                let mut out = vec![Vec::new(), Vec::new()];
                let (mut at, mut k) = (0, 0);
                while at < len {
                    let n = [1, 2, 5, 63, 64, 65, 331, 1024][k % 8].min(len - at);
                    for c in 0..2 {
                        buf.channel_mut(c, n).copy_from_slice(&x[c][at..at + n]);
                    }
                    eq.process(&mut buf.view_mut(n), None, ParamBlock::new(&slots));
                    for c in 0..2 {
                        out[c].extend(buf.channel(c, n).iter().map(|v| v.to_bits()));
                    }
                    at += n;
                    k += 1;
                }
                assert_eq!(eq.plain_sections(), sections, "{specs:?}: the plain path");
                crate::dsp::simd::force_portable(false);
                crate::dsp::simd::force_avx2(false);
                out
            };
            let want = run(true, false);
            assert!(run(false, true) == want, "{specs:?}: AVX2");
            assert!(run(false, false) == want, "{specs:?}: AVX-512");
        }
    }
}
