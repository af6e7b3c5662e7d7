//! The null test's streaming passes: the joint least-squares fit of every stem (and of each
//! candidate missing element) against the reference, and the residual left after the fix.

use super::align::{active, Correction};
use super::{CheckError, StemFacts};
use crate::io::decode::{StemStream, StreamOptions};
use crate::session::Session;
use realfft::RealFftPlanner;
use std::path::{Path, PathBuf};

/// The song being compared: its reference, rate and length (the longest of the stems and the
/// reference).
pub(super) struct Song<'a> {
    pub reference: &'a Path,
    pub rate: u32,
    pub frames: u64,
}

/// A file or stem that may be missing from the sum.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    /// The name to report (the file name without extension, or the stem's name).
    pub name: String,
    pub path: PathBuf,
    /// The stem muted in the recipe, when it is one.
    pub muted_stem: Option<usize>,
}

/// The most files beside the stems considered as missing elements.
const MAX_CANDIDATES: usize = 8;
const AUDIO: &[&str] = &[
    "wav", "wave", "flac", "aif", "aiff", "mp3", "ogg", "m4a", "caf",
];

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The candidate missing elements: stems the recipe mutes, and audio files in the stems'
/// folders that are neither a stem nor the reference.
pub(super) fn candidates(
    session: &Session,
    facts: &[StemFacts],
    reference: &Path,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = facts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.recipe.muted() && f.sample_peak_dbfs >= -90.0)
        .map(|(i, f)| Candidate {
            name: f.name.clone(),
            path: f.path.clone(),
            muted_stem: Some(i),
        })
        .collect();
    let mut dirs: Vec<PathBuf> = session
        .stems
        .iter()
        .filter_map(|s| s.path.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let audio = p
                .extension()
                .is_some_and(|x| AUDIO.contains(&x.to_string_lossy().to_lowercase().as_str()));
            if !audio || !p.is_file() || same_file(&p, reference) {
                continue;
            }
            if session.stems.iter().any(|s| same_file(&s.path, &p)) {
                continue;
            }
            files.push(p);
        }
    }
    files.sort();
    out.extend(files.into_iter().take(MAX_CANDIDATES).map(|p| {
        Candidate {
            name: p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            path: p,
            muted_stem: None,
        }
    }));
    out
}

/// One column of the fit: a file placed on the timeline with a gain.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Column {
    pub path: PathBuf,
    pub offset: f64,
    pub gain: f64,
}

/// The sums of the least-squares fit `reference ≈ Σ g_i · column_i`.
pub(super) struct Fit {
    /// Active stems (indices into the facts), then the candidates.
    pub stems: Vec<usize>,
    /// Gram matrix of the columns (stems, then candidates).
    pub gram: Vec<Vec<f64>>,
    /// Column · reference.
    pub cross: Vec<f64>,
    /// Reference energy.
    pub mm: f64,
    /// Samples summed (frames × 2).
    pub samples: f64,
    /// Residual energy and peak of the stems exactly as the recipe places them.
    pub as_is_energy: f64,
    pub as_is_peak: f64,
}

impl Fit {
    /// Residual energy for gains `g` over the columns `cols`.
    pub fn energy(&self, cols: &[usize], g: &[f64]) -> f64 {
        let mut e = self.mm;
        for (a, &p) in cols.iter().enumerate() {
            e -= 2.0 * g[a] * self.cross[p];
            for (b, &q) in cols.iter().enumerate() {
                e += g[a] * g[b] * self.gram[p][q];
            }
        }
        e.max(0.0)
    }
    /// The least-squares gains over `cols`.
    pub fn solve(&self, cols: &[usize]) -> Vec<f64> {
        let a = cols
            .iter()
            .map(|&p| cols.iter().map(|&q| self.gram[p][q]).collect())
            .collect();
        let b = cols.iter().map(|&p| self.cross[p]).collect();
        super::align::solve(a, b)
    }
}

fn open(path: &Path, song: &Song, offset: f64) -> Result<StemStream, CheckError> {
    let (s, _) = StemStream::open(
        path,
        &StreamOptions {
            target_rate: song.rate,
            target_channels: 2,
            length_frames: Some(song.frames),
        },
    )?;
    Ok(s.with_offset(offset)?)
}

const BLOCK: usize = 4096;

/// Reads the next `n` frames of `s` into `buf` (two planes), scaled, non-finite muted.
fn read(
    s: &mut StemStream,
    buf: &mut [Vec<f64>; 2],
    n: usize,
    gain: f64,
) -> Result<(), CheckError> {
    let [l, r] = buf;
    s.read_block(&mut [&mut l[..], &mut r[..]], n)?;
    for x in l[..n].iter_mut().chain(r[..n].iter_mut()) {
        *x = if x.is_finite() { *x * gain } else { 0.0 };
    }
    Ok(())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The fit's pass: every active stem with its correction, every candidate, the reference, and
/// the stems exactly as the recipe places them for the as-is residual.
pub(super) fn fit(
    song: &Song,
    facts: &[StemFacts],
    corrections: &[Option<Correction>],
    candidates: &[Candidate],
) -> Result<Fit, CheckError> {
    let stems = active(facts);
    let mut cols = Vec::new();
    for &i in &stems {
        let f = &facts[i];
        let c = corrections[i].map_or(0.0, |c| c.samples);
        cols.push((
            open(&f.path, song, f.recipe.offset_samples + c)?,
            f.recipe.gain(),
        ));
    }
    for c in candidates {
        let (offset, gain) = match c.muted_stem {
            Some(i) => (
                facts[i].recipe.offset_samples,
                if facts[i].recipe.invert { -1.0 } else { 1.0 },
            ),
            None => (0.0, 1.0),
        };
        cols.push((open(&c.path, song, offset)?, gain));
    }
    // The as-is sum: stems without the corrections found.
    let mut as_is = Vec::new();
    for &i in &stems {
        let f = &facts[i];
        if corrections[i].is_some_and(|c| c.samples != 0.0) {
            as_is.push((
                Some(open(&f.path, song, f.recipe.offset_samples)?),
                f.recipe.gain(),
            ));
        } else {
            as_is.push((None, 0.0));
        }
    }
    let mut mix = open(song.reference, song, 0.0)?;
    let k = cols.len();
    let mut bufs = vec![[vec![0.0; BLOCK], vec![0.0; BLOCK]]; k];
    let mut extra = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    let mut m = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    let mut fit = Fit {
        stems,
        gram: vec![vec![0.0; k]; k],
        cross: vec![0.0; k],
        mm: 0.0,
        samples: (song.frames * 2) as f64,
        as_is_energy: 0.0,
        as_is_peak: 0.0,
    };
    let mut done = 0u64;
    while done < song.frames {
        let n = BLOCK.min((song.frames - done) as usize);
        for ((s, g), b) in cols.iter_mut().zip(bufs.iter_mut()) {
            read(s, b, n, *g)?;
        }
        read(&mut mix, &mut m, n, 1.0)?;
        for c in 0..2 {
            fit.mm += dot(&m[c][..n], &m[c][..n]);
            for p in 0..k {
                fit.cross[p] += dot(&bufs[p][c][..n], &m[c][..n]);
                for q in p..k {
                    fit.gram[p][q] += dot(&bufs[p][c][..n], &bufs[q][c][..n]);
                }
            }
        }
        // The as-is residual.
        let mut res = [m[0][..n].to_vec(), m[1][..n].to_vec()];
        for (a, (s, g)) in as_is.iter_mut().enumerate() {
            let src = match s {
                Some(s) => {
                    read(s, &mut extra, n, *g)?;
                    &extra
                }
                None => &bufs[a],
            };
            for c in 0..2 {
                for t in 0..n {
                    res[c][t] -= src[c][t];
                }
            }
        }
        for x in res.iter().flatten() {
            fit.as_is_energy += x * x;
            fit.as_is_peak = fit.as_is_peak.max(x.abs());
        }
        done += n as u64;
    }
    super::align::mirror(&mut fit.gram);
    Ok(fit)
}

/// The residual left after the fix, described.
pub(super) struct After {
    /// Residual energy.
    pub energy: f64,
    /// Samples summed (frames × 2).
    pub samples: f64,
    /// Energy per octave band (Welch, 4096-point Hann), and the band edges' bin width.
    pub spectrum: Vec<f64>,
    pub bin_hz: f64,
    /// Per 100 ms: (reference peak, residual energy).
    pub envelope: Vec<(f64, f64)>,
    /// Frames per envelope step.
    pub hop: usize,
}

/// Streams the columns of the fix against the reference: the residual's energy, spectrum and
/// envelope.
pub(super) fn after_fix(song: &Song, columns: &[Column]) -> Result<After, CheckError> {
    let mut streams = Vec::new();
    for c in columns {
        streams.push((open(&c.path, song, c.offset)?, c.gain));
    }
    let mut mix = open(song.reference, song, 0.0)?;
    let mut buf = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    let mut m = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(BLOCK);
    let hann: Vec<f64> = (0..BLOCK)
        .map(|k| 0.5 - 0.5 * libm::cos(2.0 * std::f64::consts::PI * k as f64 / BLOCK as f64))
        .collect();
    let mut frame = vec![0.0; BLOCK];
    let mut peaks = vec![0.0; BLOCK];
    let mut bins = fft.make_output_vec();
    let hop = (song.rate / 10).max(1) as usize;
    let mut after = After {
        energy: 0.0,
        samples: (song.frames * 2) as f64,
        spectrum: vec![0.0; BLOCK / 2 + 1],
        bin_hz: f64::from(song.rate) / BLOCK as f64,
        envelope: Vec::new(),
        hop,
    };
    let (mut env_peak, mut env_res, mut env_n) = (0.0f64, 0.0f64, 0usize);
    let mut done = 0u64;
    while done < song.frames {
        let n = BLOCK.min((song.frames - done) as usize);
        read(&mut mix, &mut m, n, 1.0)?;
        for (t, p) in peaks[..n].iter_mut().enumerate() {
            *p = m[0][t].abs().max(m[1][t].abs());
        }
        for (s, g) in streams.iter_mut() {
            read(s, &mut buf, n, *g)?;
            for c in 0..2 {
                for t in 0..n {
                    m[c][t] -= buf[c][t];
                }
            }
        }
        // `m` now holds the residual.
        for t in 0..n {
            let (a, b) = (m[0][t], m[1][t]);
            let e = a * a + b * b;
            after.energy += e;
            env_res += e;
            env_peak = env_peak.max(peaks[t]);
            frame[t] = (a + b) * 0.5 * hann[t];
            env_n += 1;
            if env_n == hop {
                after.envelope.push((env_peak, env_res));
                (env_peak, env_res, env_n) = (0.0, 0.0, 0);
            }
        }
        if n == BLOCK && fft.process(&mut frame, &mut bins).is_ok() {
            for (p, b) in after.spectrum.iter_mut().zip(&bins) {
                *p += b.norm_sqr();
            }
        }
        done += n as u64;
    }
    if env_n > 0 {
        after.envelope.push((env_peak, env_res));
    }
    Ok(after)
}
