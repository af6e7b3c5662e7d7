//! What `check` learns of each stem file on its own: one pass for its levels, clipping, word
//! length, DC and non-finite samples, and the findings that need nothing else (rate, word
//! length, clipping, NaN/Inf, DC, silence, names, count).

use super::{finding, names, sized, CheckError, Finding, RecipeFader, Severity, StemFacts};
use crate::analysis::meters::LevelMeter;
use crate::dsp::config::ConfigValue;
use crate::graph::NodeKind;
use crate::io::decode::{DecodeError, Decoder, StemInfo};
use crate::session::Session;
use crate::units::gain_to_db;
use std::path::Path;

/// DC offset from which a stem is flagged, dBFS.
const DC_WARN_DBFS: f64 = -30.0;

/// The stems that could be read, and where each is loudest.
pub(super) struct Measured {
    pub facts: Vec<StemFacts>,
    /// Per fact: the start (seconds, in its own file) of its loudest second.
    pub loudest: Vec<u64>,
}

/// What one pass over a file gives.
struct Pass {
    meter: LevelMeter,
    info: StemInfo,
    loudest_second: u64,
    non_finite: u64,
    first_non_finite: Option<u64>,
}

/// Reads a whole file once through a level meter, with non-finite samples counted and muted;
/// also finds its loudest second (mono sum).
fn level_pass(path: &Path) -> Result<Pass, DecodeError> {
    let mut dec = Decoder::open(path)?;
    let info = dec.info().clone();
    let ch = info.channels;
    let mut meter = LevelMeter::new(ch);
    let block = 4096;
    let mut bufs = vec![vec![0.0; block]; ch];
    let per_second = u64::from(info.sample_rate.max(1));
    let (mut best, mut loudest_second) = (-1.0f64, 0u64);
    let (mut acc, mut frame) = (0.0f64, 0u64);
    let (mut non_finite, mut first_non_finite) = (0u64, None);
    loop {
        let mut views: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let n = dec.read(&mut views, block)?;
        if n == 0 {
            break;
        }
        for b in &mut bufs {
            for (k, x) in b[..n].iter_mut().enumerate() {
                if !x.is_finite() {
                    non_finite += 1;
                    let at = frame + k as u64;
                    first_non_finite = Some(first_non_finite.map_or(at, |f: u64| f.min(at)));
                    *x = 0.0;
                }
            }
        }
        let planar: Vec<&[f64]> = bufs.iter().map(|b| &b[..n]).collect();
        meter.push(&planar);
        for k in 0..n {
            let m: f64 = planar.iter().map(|c| c[k]).sum();
            acc += m * m;
            frame += 1;
            if frame % per_second == 0 {
                if acc > best {
                    (best, loudest_second) = (acc, frame / per_second - 1);
                }
                acc = 0.0;
            }
        }
    }
    if frame % per_second != 0 && acc > best {
        loudest_second = frame / per_second;
    }
    Ok(Pass {
        meter,
        info,
        loudest_second,
        non_finite,
        first_non_finite,
    })
}

/// The recipe's fader and timeline move of stem `decl` (the static values; automation is not
/// followed).
pub(super) fn recipe_fader(session: &Session, decl: usize) -> RecipeFader {
    let mut f = RecipeFader {
        offset_samples: session.stems[decl].offset_samples,
        ..RecipeFader::default()
    };
    for node in &session.graph.nodes {
        if let NodeKind::Source { input, config, .. } = &node.kind {
            if *input != decl {
                continue;
            }
            if let Some(ConfigValue::Number(g)) = config.entries.get("gain_db") {
                f.gain_db = *g;
            }
            match config.entries.get("invert") {
                Some(ConfigValue::Bool(b)) => f.invert = *b,
                Some(ConfigValue::Number(x)) => f.invert = *x >= 0.5,
                _ => {}
            }
        }
    }
    f
}

/// One pass over every stem: facts for those that read, findings for names, the count and
/// the files that do not.
pub(super) fn measure_stems(session: &Session, findings: &mut Vec<Finding>) -> Measured {
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
    let mut m = Measured {
        facts: Vec::new(),
        loudest: Vec::new(),
    };
    for (i, stem) in session.stems.iter().enumerate() {
        let file_name = stem.path.file_stem().unwrap_or_default().to_string_lossy();
        if names::is_generic(&stem.name) && names::is_generic(&file_name) {
            findings.push(finding(
                Severity::Warn,
                "name",
                Some(&stem.name),
                format!(
                    "`{}` is a generic label: name the stem for what it is (e.g. drums, bass, keys, vocals)",
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
        let p = match level_pass(&stem.path) {
            Ok(p) => p,
            Err(e) => {
                findings.push(finding(
                    Severity::Fail,
                    "file",
                    Some(&stem.name),
                    e.to_string(),
                ));
                continue;
            }
        };
        let dc = (0..p.info.channels)
            .map(|c| p.meter.dc_offset(c).abs())
            .fold(0.0, f64::max);
        let rate = f64::from(p.info.sample_rate.max(1));
        m.facts.push(StemFacts {
            name: stem.name.clone(),
            path: stem.path.clone(),
            sample_rate_hz: p.info.sample_rate,
            channels: p.info.channels,
            frames: p.info.frames.unwrap_or(p.meter.frames()),
            bits: p.info.bits_per_sample,
            effective_bits: p.meter.effective_bits(),
            sample_peak_dbfs: p.meter.sample_peak_dbfs(),
            rms_dbfs: p.meter.rms_dbfs(),
            dc_offset_dbfs: gain_to_db(dc),
            clipped_samples: p.meter.clipped_samples(),
            clip_runs: p.meter.clip_runs(),
            non_finite_samples: p.non_finite,
            first_non_finite_s: p.first_non_finite.map(|f| f as f64 / rate),
            recipe: recipe_fader(session, i),
            offset_samples: None,
            gain_db: None,
            inverted: None,
        });
        m.loudest.push(p.loudest_second);
    }
    m
}

/// The session rate: the recipe's, or else the most common stem rate.
pub(super) fn session_rate(session: &Session, facts: &[StemFacts]) -> u32 {
    session.sample_rate.unwrap_or_else(|| {
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
    })
}

/// A stem's length at the session rate.
pub(super) fn length_at(f: &StemFacts, rate: u32) -> u64 {
    f.frames * u64::from(rate) / u64::from(f.sample_rate_hz.max(1))
}

/// A file's length at `rate`.
pub(super) fn frames_at(path: &Path, rate: u32) -> Result<u64, CheckError> {
    let dec = Decoder::open(path)?;
    let info = dec.info();
    let frames = info.frames.unwrap_or(0);
    Ok(frames * u64::from(rate) / u64::from(info.sample_rate.max(1)))
}

/// "m:ss.mmm" of a time in seconds.
pub(super) fn clock(s: f64) -> String {
    let m = (s / 60.0).floor();
    format!("{}:{:06.3}", m as u64, s - m * 60.0)
}

/// The findings each stem file earns on its own; returns the longest stem at `rate`.
pub(super) fn file_findings(facts: &[StemFacts], rate: u32, findings: &mut Vec<Finding>) -> u64 {
    let longest = facts.iter().map(|f| length_at(f, rate)).max().unwrap_or(0);
    for f in facts {
        if f.sample_rate_hz != rate {
            findings.push(on_stem(
                f,
                Severity::Fail,
                "sample_rate",
                format!(
                    "{} is at {} Hz while the session is at {rate} Hz (renders resample it)",
                    f.name, f.sample_rate_hz
                ),
                f64::from(f.sample_rate_hz),
                "Hz",
            ));
        }
        word_length(f, findings);
        clipping(f, findings);
        if f.non_finite_samples > 0 {
            let first = clock(f.first_non_finite_s.unwrap_or(0.0));
            findings.push(on_stem(
                f,
                Severity::Fail,
                "non_finite",
                format!(
                    "{} has {} NaN or infinite samples, the first at {first} (they are muted when it is read)",
                    f.name, f.non_finite_samples
                ),
                f.non_finite_samples as f64,
                "samples",
            ));
        }
        // Sampled instruments carry DC of −40 dBFS and below (FluidR3's string ensemble does):
        // it costs under 0.1 dB of headroom and no engineer acts on it. From −30 dBFS it is a fault.
        if f.dc_offset_dbfs >= DC_WARN_DBFS {
            findings.push(on_stem(
                f,
                Severity::Warn,
                "dc_offset",
                format!("{} has a DC offset of {:.1} dBFS", f.name, f.dc_offset_dbfs),
                f.dc_offset_dbfs,
                "dBFS",
            ));
        }
        if f.sample_peak_dbfs < -90.0 {
            findings.push(on_stem(
                f,
                Severity::Warn,
                "silent",
                format!("{} is silent (peak {:.1} dBFS)", f.name, f.sample_peak_dbfs),
                f.sample_peak_dbfs,
                "dBFS",
            ));
        }
    }
    longest
}

/// A finding on stem `f`, with its size.
fn on_stem(
    f: &StemFacts,
    severity: Severity,
    check: &'static str,
    message: String,
    value: f64,
    unit: &'static str,
) -> Finding {
    sized(
        finding(severity, check, Some(&f.name), message),
        value,
        unit,
    )
}

fn word_length(f: &StemFacts, findings: &mut Vec<Finding>) {
    if let Some(bits) = f.bits.filter(|b| *b < 24) {
        findings.push(on_stem(
            f,
            Severity::Warn,
            "word_length",
            format!(
                "{} is {bits}-bit; stems for mastering should be 24-bit or float",
                f.name
            ),
            f64::from(bits),
            "bits",
        ));
    } else if let (Some(bits), Some(eff)) = (f.bits, f.effective_bits) {
        if eff < 24 && bits >= 24 && f.sample_peak_dbfs > -90.0 {
            findings.push(on_stem(
                f,
                Severity::Warn,
                "word_length",
                format!("{} holds {eff}-bit content in a {bits}-bit file", f.name),
                f64::from(eff),
                "bits",
            ));
        }
    }
}

fn clipping(f: &StemFacts, findings: &mut Vec<Finding>) {
    if f.clip_runs > 0 {
        findings.push(on_stem(f, Severity::Fail, "clipping", format!(
                    "{} is clipped: {} runs of consecutive full-scale samples ({} samples at full scale)",
                    f.name, f.clip_runs, f.clipped_samples
                ), f.clipped_samples as f64, "samples"));
    } else if f.clipped_samples > 0 {
        findings.push(on_stem(
            f,
            Severity::Warn,
            "clipping",
            format!("{} has {} samples at full scale", f.name, f.clipped_samples),
            f.clipped_samples as f64,
            "samples",
        ));
    }
}

/// Length findings: a stem shorter than the longest is padded with silence (a warning), or
/// truncated (a failure) when the residual left after the fix rises after its end, where the
/// reference has material the stem lacks.
pub(super) fn length_findings(
    facts: &[StemFacts],
    rate: u32,
    longest: u64,
    after: Option<&super::null::After>,
    findings: &mut Vec<Finding>,
) {
    for f in facts {
        let len = length_at(f, rate);
        if len >= longest {
            continue;
        }
        let short = longest - len;
        let secs = short as f64 / f64::from(rate);
        let truncated = after.and_then(|a| {
            let cut = (len as usize).div_ceil(a.hop);
            let (before, past) = a.envelope.split_at(cut.min(a.envelope.len()));
            let rms = |e: &[(f64, f64)]| {
                let s: f64 = e.iter().map(|x| x.1).sum();
                10.0 * libm::log10((s / (e.len().max(1) * a.hop * 2) as f64).max(1e-30))
            };
            let (b, p) = (rms(before), rms(past));
            (!past.is_empty() && p > -60.0 && p > b + 10.0).then_some(p)
        });
        let f_ = match truncated {
            Some(p) => finding(
                Severity::Fail,
                "length",
                Some(&f.name),
                format!(
                    "{} ends {secs:.2} s before the longest stem and the reference has material there (the residual after its end is {p:.1} dBFS RMS): it is truncated",
                    f.name
                ),
            ),
            None => finding(
                Severity::Warn,
                "length",
                Some(&f.name),
                format!(
                    "{} is {short} samples ({:.1} ms) shorter than the longest stem; it is padded with silence",
                    f.name,
                    secs * 1000.0
                ),
            ),
        };
        findings.push(sized(f_, -(short as f64), "samples"));
    }
}
