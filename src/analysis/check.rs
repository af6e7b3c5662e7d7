//! `check`: the stem preparation checks a mastering engineer does by hand, and the null test.
//!
//! Everything streams (bounded memory whatever the song length): one pass per stem for its
//! levels, a short window per stem for its start offset (cross-correlation against the reference
//! mix, around the stem's loudest passage), and one pass over all stems and the reference for the
//! null test and its diagnosis.
//!
//! | check | pass | warn | fail |
//! |---|---|---|---|
//! | null test residual (sum of stems − reference) | ≤ −90 dBFS RMS | above −90 dBFS | above −60 dBFS |
//! | stem start offset against the reference | 0 samples | | any other offset |
//! | stem polarity | as in the reference | | inverted |
//! | stem level against the reference | within ±0.05 dB | off by 0.05–0.5 dB | off by more |
//! | sample rate | all the same | | a stem at another rate |
//! | length | all the same | a stem shorter or longer (padded) | |
//! | word length | ≥ 24 bits (or float) | below 24 bits | |
//! | clipping | none | samples at full scale | runs of ≥ 3 consecutive full-scale samples |
//! | DC offset | below −60 dBFS | at or above −60 dBFS | |
//! | silent stem | | peak below −90 dBFS | |
//! | stem name | says what it is | a generic name (`Audio 1`, `track3`) | |
//! | stem count | 3–8 | fewer or more | |
//! | stem file | readable | | missing or not decodable |

use crate::analysis::meters::LevelMeter;
use crate::io::decode::{Decoder, StemStream, StreamOptions};
use crate::session::Session;
use crate::units::gain_to_db;
use realfft::RealFftPlanner;
use serde::Serialize;
use std::path::PathBuf;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Checked and fine.
    Pass,
    /// Worth a look; does not fail the check.
    Warn,
    /// Must be fixed (non-zero exit status).
    Fail,
}

/// One finding, with its size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// Which check (`null_test`, `offset`, `polarity`, `gain`, `sample_rate`, `length`,
    /// `word_length`, `clipping`, `dc_offset`, `silent`, `name`, `stem_count`, `file`).
    pub check: &'static str,
    /// The stem concerned, if one.
    pub stem: Option<String>,
    /// What was found, in words.
    pub message: String,
    /// Its size.
    pub value: Option<f64>,
    /// The unit of `value`.
    pub unit: Option<&'static str>,
}

/// What was measured of one stem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StemFacts {
    /// Stem name.
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// Its rate.
    pub sample_rate_hz: u32,
    /// Its channels.
    pub channels: usize,
    /// Its length in its own frames.
    pub frames: u64,
    /// Bits per sample of the container.
    pub bits: Option<u32>,
    /// Bits actually used.
    pub effective_bits: Option<u32>,
    /// Sample peak.
    pub sample_peak_dbfs: f64,
    /// RMS over the whole stem.
    pub rms_dbfs: f64,
    /// Largest DC offset of its channels, dBFS.
    pub dc_offset_dbfs: f64,
    /// Samples at full scale.
    pub clipped_samples: u64,
    /// Runs of consecutive full-scale samples.
    pub clip_runs: u64,
    /// Start offset against the reference in samples (positive: the stem is late).
    pub offset_samples: Option<i64>,
    /// Level of the stem against its part in the reference, dB (negative: quieter).
    pub gain_db: Option<f64>,
    /// Whether its polarity is inverted against the reference.
    pub inverted: Option<bool>,
}

/// The null test: the stems summed at unity against the reference mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NullTest {
    /// Residual RMS, dBFS.
    pub residual_rms_dbfs: f64,
    /// Residual peak, dBFS.
    pub residual_peak_dbfs: f64,
    /// Level of the reference against the sum of the stems (least squares), dB.
    pub reference_gain_db: f64,
    /// The octave-band range holding most of the residual, Hz.
    pub residual_band_hz: Option<(f64, f64)>,
    /// Share of the residual's energy in the loudest tenth of the song (≈ 0.1 for a residual
    /// that does not follow the music's level).
    pub residual_in_peaks: f64,
    /// Pass, warn or fail by the table.
    pub severity: Severity,
}

/// The result of `check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Session rate used for the comparison.
    pub sample_rate_hz: u32,
    /// Per-stem measurements.
    pub stems: Vec<StemFacts>,
    /// Everything found, most serious first.
    pub findings: Vec<Finding>,
    /// The null test, when there is a reference.
    pub null_test: Option<NullTest>,
}

impl CheckReport {
    /// Whether any finding fails.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Fail)
    }
}

/// Why `check` could not run at all (problems with the stems are findings, not errors).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The reference could not be read.
    #[error(transparent)]
    Decode(#[from] crate::io::decode::DecodeError),
    /// No stem could be read.
    #[error("no stem of {0} could be read")]
    NoStems(String),
}

const WORDS: &[&str] = &[
    "drum",
    "drums",
    "kick",
    "kik",
    "bd",
    "snare",
    "sn",
    "hat",
    "hats",
    "hh",
    "cymbal",
    "cymbals",
    "overhead",
    "oh",
    "room",
    "perc",
    "percussion",
    "tom",
    "toms",
    "clap",
    "loop",
    "beat",
    "bass",
    "sub",
    "808",
    "keys",
    "key",
    "piano",
    "rhodes",
    "organ",
    "synth",
    "synths",
    "pad",
    "pads",
    "arp",
    "pluck",
    "lead",
    "leads",
    "guitar",
    "guitars",
    "gtr",
    "acoustic",
    "electric",
    "strings",
    "string",
    "brass",
    "horn",
    "horns",
    "wind",
    "winds",
    "orchestra",
    "music",
    "instruments",
    "inst",
    "instrumental",
    "vocal",
    "vocals",
    "vox",
    "voc",
    "bv",
    "bvs",
    "backing",
    "choir",
    "harmony",
    "harmonies",
    "adlib",
    "adlibs",
    "rap",
    "fx",
    "sfx",
    "atmos",
    "ambience",
    "ambient",
    "texture",
    "noise",
    "reverb",
    "delay",
    "chords",
    "melody",
    "mallets",
    "bells",
    "mix",
];

/// Whether a stem name says what the stem is.
fn name_is_telling(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .any(|w| WORDS.contains(&w) || WORDS.iter().any(|k| k.len() >= 4 && w.starts_with(k)))
}

fn finding(
    severity: Severity,
    check: &'static str,
    stem: Option<&str>,
    message: String,
) -> Finding {
    Finding {
        severity,
        check,
        stem: stem.map(str::to_string),
        message,
        value: None,
        unit: None,
    }
}

fn sized(mut f: Finding, value: f64, unit: &'static str) -> Finding {
    f.value = Some(value);
    f.unit = Some(unit);
    f
}

/// Reads a whole file once through a level meter; also returns RMS per second (mono sum).
fn level_pass(
    path: &std::path::Path,
) -> Result<(LevelMeter, Vec<f64>, crate::io::decode::StemInfo), crate::io::decode::DecodeError> {
    let mut dec = Decoder::open(path)?;
    let info = dec.info().clone();
    let ch = info.channels;
    let mut meter = LevelMeter::new(ch);
    let block = 4096;
    let mut bufs = vec![vec![0.0; block]; ch];
    let per_second = info.sample_rate.max(1) as usize;
    let mut second_energy = Vec::new();
    let (mut acc, mut acc_n) = (0.0, 0usize);
    loop {
        let mut views: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let n = dec.read(&mut views, block)?;
        if n == 0 {
            break;
        }
        let planar: Vec<&[f64]> = bufs.iter().map(|b| &b[..n]).collect();
        meter.push(&planar);
        for k in 0..n {
            let m: f64 = planar.iter().map(|c| c[k]).sum();
            acc += m * m;
            acc_n += 1;
            if acc_n == per_second {
                second_energy.push(acc / acc_n as f64);
                acc = 0.0;
                acc_n = 0;
            }
        }
    }
    if acc_n > 0 {
        second_energy.push(acc / acc_n as f64);
    }
    Ok((meter, second_energy, info))
}

/// A mono window `[start, start + len)` of a file at `rate` (resampled if needed).
fn read_window(
    path: &std::path::Path,
    rate: u32,
    start: u64,
    len: usize,
) -> Result<Vec<f64>, crate::io::decode::DecodeError> {
    let (mut s, _) = StemStream::open(
        path,
        &StreamOptions {
            target_rate: rate,
            target_channels: 2,
            length_frames: None,
        },
    )?;
    let block = 4096;
    let mut l = vec![0.0; block];
    let mut r = vec![0.0; block];
    let mut pos = 0u64;
    let mut out = Vec::with_capacity(len);
    while (out.len()) < len {
        s.read_block(&mut [&mut l, &mut r], block)?;
        for k in 0..block {
            let t = pos + k as u64;
            if t >= start && out.len() < len {
                out.push(l[k] + r[k]);
            }
        }
        pos += block as u64;
    }
    Ok(out)
}

/// The lag (in samples, positive when `stem` is late against `mix`) that best aligns them,
/// searched within ±`max_lag`.
pub fn best_lag(stem: &[f64], mix: &[f64], max_lag: usize) -> i64 {
    let n = (stem.len() + mix.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut a = vec![0.0; n];
    let mut b = vec![0.0; n];
    a[..stem.len()].copy_from_slice(stem);
    b[..mix.len()].copy_from_slice(mix);
    let mut fa = fwd.make_output_vec();
    let mut fb = fwd.make_output_vec();
    fwd.process(&mut a, &mut fa).expect("sizes match");
    fwd.process(&mut b, &mut fb).expect("sizes match");
    // Cross-correlation c[k] = Σ stem[i] · mix[i + k]  (k < 0 wraps around).
    let mut prod: Vec<_> = fa.iter().zip(&fb).map(|(x, y)| x.conj() * y).collect();
    let mut c = inv.make_output_vec();
    inv.process(&mut prod, &mut c).expect("sizes match");
    let mut best = (0i64, f64::MIN);
    for k in -(max_lag as i64)..=(max_lag as i64) {
        let idx = if k >= 0 {
            k as usize
        } else {
            n - (-k) as usize
        };
        // The strongest peak of either sign: an inverted stem correlates negatively.
        if c[idx].abs() > best.1 {
            best = (k, c[idx].abs());
        }
    }
    // `mix[i + k] ≈ stem[i]`: the material sits k samples later in the mix, so the stem is early by k.
    -best.0
}

/// Runs every check on the stems and reference of `session`.
pub fn check(session: &Session) -> Result<CheckReport, CheckError> {
    let mut findings = Vec::new();
    let mut facts: Vec<StemFacts> = Vec::new();
    let mut energies: Vec<Vec<f64>> = Vec::new();
    let count = session.stems.len();
    if !(3..=8).contains(&count) {
        findings.push(sized(
            finding(
                Severity::Warn,
                "stem_count",
                None,
                format!("{count} stems: stem mastering usually works with 3 to 8 grouped stems"),
            ),
            count as f64,
            "stems",
        ));
    }
    for stem in &session.stems {
        if !name_is_telling(&stem.name)
            && !name_is_telling(&stem.path.file_stem().unwrap_or_default().to_string_lossy())
        {
            findings.push(finding(
                Severity::Warn,
                "name",
                Some(&stem.name),
                format!(
                    "`{}` does not say what the stem is (e.g. drums, bass, keys, vocals)",
                    stem.name
                ),
            ));
        }
        if !stem.path.exists() {
            findings.push(finding(
                Severity::Fail,
                "file",
                Some(&stem.name),
                format!("stem file {} is missing", stem.path.display()),
            ));
            continue;
        }
        match level_pass(&stem.path) {
            Err(e) => findings.push(finding(
                Severity::Fail,
                "file",
                Some(&stem.name),
                e.to_string(),
            )),
            Ok((meter, second_energy, info)) => {
                let dc = (0..info.channels)
                    .map(|c| meter.dc_offset(c).abs())
                    .fold(0.0, f64::max);
                facts.push(StemFacts {
                    name: stem.name.clone(),
                    path: stem.path.clone(),
                    sample_rate_hz: info.sample_rate,
                    channels: info.channels,
                    frames: info.frames.unwrap_or(meter.frames()),
                    bits: info.bits_per_sample,
                    effective_bits: meter.effective_bits(),
                    sample_peak_dbfs: meter.sample_peak_dbfs(),
                    rms_dbfs: meter.rms_dbfs(),
                    dc_offset_dbfs: gain_to_db(dc),
                    clipped_samples: meter.clipped_samples(),
                    clip_runs: meter.clip_runs(),
                    offset_samples: None,
                    gain_db: None,
                    inverted: None,
                });
                energies.push(second_energy);
            }
        }
    }
    if facts.is_empty() {
        return Err(CheckError::NoStems(session.recipe.display().to_string()));
    }

    // Rate and length.
    let rate = session.sample_rate.unwrap_or_else(|| {
        let mut rates: Vec<u32> = facts.iter().map(|f| f.sample_rate_hz).collect();
        rates.sort_unstable();
        let mut best = (rates[0], 0);
        for r in &rates {
            let n = rates.iter().filter(|x| *x == r).count();
            if n > best.1 {
                best = (*r, n);
            }
        }
        best.0
    });
    let longest = facts
        .iter()
        .map(|f| f.frames * u64::from(rate) / u64::from(f.sample_rate_hz))
        .max()
        .unwrap_or(0);
    for f in &facts {
        if f.sample_rate_hz != rate {
            findings.push(sized(
                finding(
                    Severity::Fail,
                    "sample_rate",
                    Some(&f.name),
                    format!(
                        "{} is at {} Hz while the session is at {rate} Hz (renders resample it)",
                        f.name, f.sample_rate_hz
                    ),
                ),
                f64::from(f.sample_rate_hz),
                "Hz",
            ));
        }
        let len = f.frames * u64::from(rate) / u64::from(f.sample_rate_hz);
        if len != longest {
            let short = longest - len;
            findings.push(sized(
                finding(
                    Severity::Warn,
                    "length",
                    Some(&f.name),
                    format!(
                        "{} is {short} samples ({:.1} ms) shorter than the longest stem; it is padded with silence",
                        f.name,
                        short as f64 * 1000.0 / f64::from(rate)
                    ),
                ),
                -(short as f64),
                "samples",
            ));
        }
        if let Some(bits) = f.bits.filter(|b| *b < 24) {
            findings.push(sized(
                finding(
                    Severity::Warn,
                    "word_length",
                    Some(&f.name),
                    format!(
                        "{} is {bits}-bit; stems for mastering should be 24-bit or float",
                        f.name
                    ),
                ),
                f64::from(bits),
                "bits",
            ));
        } else if let (Some(bits), Some(eff)) = (f.bits, f.effective_bits) {
            if eff < 24 && bits >= 24 && f.sample_peak_dbfs > -90.0 {
                findings.push(sized(
                    finding(
                        Severity::Warn,
                        "word_length",
                        Some(&f.name),
                        format!("{} holds {eff}-bit content in a {bits}-bit file", f.name),
                    ),
                    f64::from(eff),
                    "bits",
                ));
            }
        }
        if f.clip_runs > 0 {
            findings.push(sized(
                finding(
                    Severity::Fail,
                    "clipping",
                    Some(&f.name),
                    format!("{} is clipped: {} runs of consecutive full-scale samples ({} samples at full scale)", f.name, f.clip_runs, f.clipped_samples),
                ),
                f.clipped_samples as f64,
                "samples",
            ));
        } else if f.clipped_samples > 0 {
            findings.push(sized(
                finding(
                    Severity::Warn,
                    "clipping",
                    Some(&f.name),
                    format!("{} has {} samples at full scale", f.name, f.clipped_samples),
                ),
                f.clipped_samples as f64,
                "samples",
            ));
        }
        if f.dc_offset_dbfs >= -60.0 {
            findings.push(sized(
                finding(
                    Severity::Warn,
                    "dc_offset",
                    Some(&f.name),
                    format!("{} has a DC offset of {:.1} dBFS", f.name, f.dc_offset_dbfs),
                ),
                f.dc_offset_dbfs,
                "dBFS",
            ));
        }
        if f.sample_peak_dbfs < -90.0 {
            findings.push(sized(
                finding(
                    Severity::Warn,
                    "silent",
                    Some(&f.name),
                    format!("{} is silent (peak {:.1} dBFS)", f.name, f.sample_peak_dbfs),
                ),
                f.sample_peak_dbfs,
                "dBFS",
            ));
        }
    }

    let mut null_test = None;
    if let Some(reference) = &session.reference {
        if !reference.exists() {
            findings.push(finding(
                Severity::Fail,
                "file",
                None,
                format!("reference mix {} is missing", reference.display()),
            ));
        } else {
            // Offsets: around each stem's loudest passage.
            let window = (rate as usize * 6).next_power_of_two().min(1 << 19);
            let max_lag = rate as usize / 2;
            for (f, e) in facts.iter_mut().zip(&energies) {
                if f.sample_peak_dbfs < -90.0 {
                    continue;
                }
                let loudest = e
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                let start = (loudest as u64 * u64::from(rate)).saturating_sub(window as u64 / 2);
                let start = start.min(longest.saturating_sub(window as u64));
                let s = read_window(&f.path, rate, start, window)?;
                let m = read_window(reference, rate, start, window)?;
                let lag = best_lag(&s, &m, max_lag);
                f.offset_samples = Some(lag);
                if lag != 0 {
                    findings.push(sized(
                        finding(
                            Severity::Fail,
                            "offset",
                            Some(&f.name),
                            format!(
                                "{} starts {} samples ({:.2} ms) {} than in the reference mix",
                                f.name,
                                lag.abs(),
                                lag.abs() as f64 * 1000.0 / f64::from(rate),
                                if lag > 0 { "later" } else { "earlier" }
                            ),
                        ),
                        lag as f64,
                        "samples",
                    ));
                }
            }
            let nt = null_pass(&mut facts, reference, rate, longest)?;
            diagnose(&nt, &facts, &mut findings, rate);
            null_test = Some(nt.result);
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity));
    Ok(CheckReport {
        sample_rate_hz: rate,
        stems: facts,
        findings,
        null_test,
    })
}

struct NullPass {
    result: NullTest,
}

/// Octave bands for the residual's spectrum.
const BANDS: &[(f64, f64)] = &[
    (20.0, 62.5),
    (62.5, 125.0),
    (125.0, 250.0),
    (250.0, 500.0),
    (500.0, 1000.0),
    (1000.0, 2000.0),
    (2000.0, 4000.0),
    (4000.0, 8000.0),
    (8000.0, 16000.0),
    (16000.0, 24000.0),
];

fn null_pass(
    facts: &mut [StemFacts],
    reference: &std::path::Path,
    rate: u32,
    longest: u64,
) -> Result<NullPass, CheckError> {
    let opts = StreamOptions {
        target_rate: rate,
        target_channels: 2,
        length_frames: Some(longest),
    };
    // Sum in the render's order: by stem name.
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.sort_by(|a, b| facts[*a].name.cmp(&facts[*b].name));
    let mut streams = Vec::new();
    for &i in &order {
        streams.push(StemStream::open(&facts[i].path, &opts)?.0);
    }
    let (mut mix_stream, _) = StemStream::open(reference, &opts)?;
    let block = 4096usize;
    let mut stem_bufs = vec![[vec![0.0; block], vec![0.0; block]]; streams.len()];
    let mut mix = [vec![0.0; block], vec![0.0; block]];
    let (mut rr, mut peak, mut sm, mut ss) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut stem_r = vec![0.0f64; streams.len()];
    let mut stem_e = vec![0.0f64; streams.len()];
    // Residual spectrum (Welch, 4096-point Hann) and a level envelope per 100 ms.
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(block);
    let hann: Vec<f64> = (0..block)
        .map(|k| 0.5 - 0.5 * libm::cos(2.0 * std::f64::consts::PI * k as f64 / block as f64))
        .collect();
    let mut spectrum = vec![0.0f64; block / 2 + 1];
    let mut frame = vec![0.0; block];
    let mut bins = fft.make_output_vec();
    let hop = (rate / 10) as usize;
    let mut envelope: Vec<(f64, f64)> = Vec::new(); // (mix peak, residual energy) per 100 ms
    let (mut env_peak, mut env_res, mut env_n) = (0.0f64, 0.0f64, 0usize);
    let mut done = 0u64;
    while done < longest {
        let n = block.min((longest - done) as usize);
        for (s, b) in streams.iter_mut().zip(stem_bufs.iter_mut()) {
            let [l, r] = b;
            s.read_block(&mut [&mut l[..], &mut r[..]], n)?;
        }
        {
            let [l, r] = &mut mix;
            mix_stream.read_block(&mut [&mut l[..], &mut r[..]], n)?;
        }
        for k in 0..n {
            let mut mono_res = 0.0;
            for c in 0..2 {
                let mut sum = 0.0;
                for b in &stem_bufs {
                    sum += b[c][k];
                }
                let m = mix[c][k];
                let r = m - sum;
                rr += r * r;
                peak = peak.max(r.abs());
                sm += sum * m;
                ss += sum * sum;
                for (i, b) in stem_bufs.iter().enumerate() {
                    stem_r[i] += b[c][k] * r;
                    stem_e[i] += b[c][k] * b[c][k];
                }
                mono_res += r;
                env_peak = env_peak.max(m.abs());
                env_res += r * r;
            }
            frame[k] = mono_res * 0.5 * hann[k];
            env_n += 1;
            if env_n == hop {
                envelope.push((env_peak, env_res));
                env_peak = 0.0;
                env_res = 0.0;
                env_n = 0;
            }
        }
        if n == block {
            fft.process(&mut frame, &mut bins).expect("sizes match");
            for (p, b) in spectrum.iter_mut().zip(&bins) {
                *p += b.norm_sqr();
            }
        }
        done += n as u64;
    }
    let total = (longest * 2).max(1) as f64;
    let residual_rms_dbfs = 10.0 * libm::log10((rr / total).max(1e-30));
    let residual_peak_dbfs = gain_to_db(peak.max(1e-15));
    let reference_gain_db = if ss > 0.0 && sm > 0.0 {
        gain_to_db(sm / ss)
    } else {
        0.0
    };
    for (k, &i) in order.iter().enumerate() {
        if stem_e[k] > 0.0 && facts[i].offset_samples.unwrap_or(0) == 0 {
            let c = stem_r[k] / stem_e[k];
            let g = 1.0 / (1.0 + c);
            facts[i].inverted = Some(g < 0.0);
            facts[i].gain_db = Some(gain_to_db(g.abs()));
        }
    }
    // The octave bands holding most of the residual.
    let bin_hz = f64::from(rate) / block as f64;
    let band_energy: Vec<f64> = BANDS
        .iter()
        .map(|(lo, hi)| {
            spectrum
                .iter()
                .enumerate()
                .filter(|(b, _)| (*b as f64 * bin_hz) >= *lo && (*b as f64 * bin_hz) < *hi)
                .map(|(_, p)| p)
                .sum()
        })
        .collect();
    let all: f64 = band_energy.iter().sum();
    let residual_band_hz = (all > 0.0).then(|| {
        // The narrowest run of adjacent bands with at least 60 % of the energy.
        let mut best = (0, BANDS.len() - 1);
        for a in 0..BANDS.len() {
            let mut acc = 0.0;
            for b in a..BANDS.len() {
                acc += band_energy[b];
                if acc >= 0.6 * all {
                    if b - a < best.1 - best.0 {
                        best = (a, b);
                    }
                    break;
                }
            }
        }
        (BANDS[best.0].0, BANDS[best.1].1)
    });
    // How much of the residual sits in the loudest tenth of the song.
    let mut sorted: Vec<&(f64, f64)> = envelope.iter().collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = (sorted.len() / 10).max(1);
    let res_total: f64 = envelope.iter().map(|e| e.1).sum();
    let residual_in_peaks = if res_total > 0.0 {
        sorted.iter().take(top).map(|e| e.1).sum::<f64>() / res_total
    } else {
        0.0
    };
    let severity = if residual_rms_dbfs <= -90.0 {
        Severity::Pass
    } else if residual_rms_dbfs <= -60.0 {
        Severity::Warn
    } else {
        Severity::Fail
    };
    Ok(NullPass {
        result: NullTest {
            residual_rms_dbfs,
            residual_peak_dbfs,
            reference_gain_db,
            residual_band_hz,
            residual_in_peaks,
            severity,
        },
    })
}

fn band_text((lo, hi): (f64, f64)) -> String {
    let f = |x: f64| {
        if x >= 1000.0 {
            format!("{} kHz", x / 1000.0)
        } else {
            format!("{x} Hz")
        }
    };
    format!("{}–{}", f(lo), f(hi))
}

fn diagnose(nt: &NullPass, facts: &[StemFacts], findings: &mut Vec<Finding>, rate: u32) {
    let n = &nt.result;
    let _ = rate;
    let mut explained = false;
    for f in facts {
        if f.offset_samples.unwrap_or(0) != 0 {
            explained = true;
            continue;
        }
        if f.inverted == Some(true) {
            explained = true;
            findings.push(finding(
                Severity::Fail,
                "polarity",
                Some(&f.name),
                format!("{} is polarity-inverted against the reference mix", f.name),
            ));
        } else if let Some(g) = f.gain_db.filter(|g| g.abs() >= 0.05) {
            explained = true;
            findings.push(sized(
                finding(
                    if g.abs() >= 0.5 {
                        Severity::Fail
                    } else {
                        Severity::Warn
                    },
                    "gain",
                    Some(&f.name),
                    format!(
                        "{} is {g:+.2} dB against its level in the reference mix",
                        f.name
                    ),
                ),
                g,
                "dB",
            ));
        }
    }
    let mut message = format!(
        "null test: the stems summed at unity leave a residual of {:.1} dBFS RMS ({:.1} dBFS peak) against the reference",
        n.residual_rms_dbfs, n.residual_peak_dbfs
    );
    if n.severity != Severity::Pass && !explained {
        if n.reference_gain_db.abs() >= 0.05
            && facts.iter().all(|f| {
                f.gain_db
                    .is_some_and(|g| (g + n.reference_gain_db).abs() < 0.05)
            })
        {
            message.push_str(&format!(
                "; the reference is {:+.2} dB against the sum of the stems",
                n.reference_gain_db
            ));
        } else if n.residual_in_peaks > 0.5 {
            message.push_str(&format!(
                "; it follows the mix's peaks ({:.0} % of it in the loudest tenth of the song): the reference has master-bus processing (limiting or compression) that the stems do not",
                n.residual_in_peaks * 100.0
            ));
        } else if let Some(band) = n.residual_band_hz {
            let hint = match band {
                (_, hi) if hi <= 250.0 => "a bass or kick element may be missing from the stems",
                (lo, _) if lo >= 8000.0 => {
                    "cymbals, air or a high-frequency effect may be missing from the stems"
                }
                (lo, _) if lo >= 1000.0 => "a reverb or vocal return may be missing from the stems",
                _ => "an instrument or vocal may be missing from the stems",
            };
            message.push_str(&format!(", mostly {}: {hint}", band_text(band)));
        }
    }
    findings.push(sized(
        finding(n.severity, "null_test", None, message),
        n.residual_rms_dbfs,
        "dBFS",
    ));
}
