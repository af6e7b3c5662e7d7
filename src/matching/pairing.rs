//! Section pairing: which parts of each reference resemble each section of the master.
//!
//! Loudness alone cannot tell a verse from a chorus a LU or two apart, so every programme is
//! cut into 3 s windows every 0.5 s, each described by
//! - its **spectral shape**: half-octave band levels relative to the window's loudness, minus
//!   the programme's own average shape over its loudest sections (so a reference that is
//!   brighter or bassier overall still pairs part for part: that overall difference is what
//!   the whole-song fit answers);
//! - its **loudness rank**: how far under the programme's loud level it lies.
//!
//! A reference window goes to the kind of section of the master (the verses, the choruses:
//! see [`super::kinds`]) holding the windows it is nearest to (the mean distance to the
//! kind's [`NEAREST`] nearest windows, in whichever of its sections they lie): spectral shape first, a
//! trimmed mean of the band differences (the [`TRIM`] closest bands), so the few bands a mix
//! change moves (a bass 5 dB up in the chorus) do not decide, while an arrangement change
//! (another melody, instruments in or out) moves most bands and does; loudness second
//! ([`LOUDNESS_WEIGHT`] dB per LU). Each reference window marks its middle 0.5 s, so the
//! windows tile the reference and every part of it goes to one kind. A kind whose
//! reference material is shorter than [`MIN_MATERIAL_S`] is not matched on its own.

use super::grid::Grid;
use super::scan::{Scan, HOP_S, SHORT_TERM_HOPS};
use super::select::{self, Selection, LOUDEST_RANGE_LU};
use super::spectra;
use super::MatchError;

/// Candidate windows every this many hops (0.5 s).
const STEP_HOPS: usize = 5;
/// The spectral shape of a window is that of its middle this many hops (1.5 s): short
/// enough that a window next to a section's boundary still shows its own side of it.
const SHAPE_HOPS: usize = 15;
/// A section's part keeps this many hops (0.4 s) from its start and its end: half an FFT
/// frame of the band measurement (0.34–0.37 s), so no frame it measures reaches into the
/// next section, where the music, or the reference's mix, may be another.
const EDGE_HOPS: usize = 4;
/// A band this far under the window's loudness counts as empty, dB.
const FLOOR_DB: f64 = -60.0;
/// dB of spectral-shape distance one LU of loudness difference is worth.
pub const LOUDNESS_WEIGHT: f64 = 0.5;
/// The share of the bands the shape distance averages (the closest ones).
pub const TRIM: f64 = 0.75;
/// How many of a section's windows a reference window is compared with (its nearest).
pub const NEAREST: usize = 3;
/// A reference window farther than this from every section resembles none (a fade, a part
/// the master has nothing like) and is left out, dB.
pub const MAX_DISTANCE_DB: f64 = 4.0;
/// A reference window whose distances to its two nearest sections differ by less than this
/// resembles both (a transition) and is left out, dB.
pub const AMBIGUITY_DB: f64 = 0.15;
/// A section needs at least this much of a reference paired with it to be matched, s.
pub const MIN_MATERIAL_S: f64 = 4.0;

/// One programme cut into windows and described.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    /// The hop each window ends at (its short-term loudness hop).
    pub end_hop: Vec<usize>,
    /// Each window's band levels relative to its loudness, dB per band.
    pub raw: Vec<Vec<f64>>,
    /// Each window's spectral shape: `raw` minus the programme's average over its loudest
    /// sections, dB per band.
    pub shape: Vec<Vec<f64>>,
    /// Each window's loudness under the programme's loud level, LU (negative: quieter).
    pub rel_lu: Vec<f64>,
    /// Each window's short-term loudness, LUFS.
    pub lufs: Vec<f64>,
    /// Hops in the programme.
    pub hops: usize,
}

impl Windows {
    /// Reads `scan`'s file once and describes its windows on `grid`.
    pub fn new(scan: &Scan, grid: &Grid) -> Result<Windows, MatchError> {
        let rate = scan.sample_rate;
        let size = spectra::fft_size(rate);
        let bands = grid.bin_bands(size / 2 + 1, f64::from(rate) / size as f64);
        // Mid band powers of every frame, by the hop its centre lies in.
        let mut frames: Vec<(usize, Vec<f64>)> = Vec::new();
        let (mut stream, _) = super::scan::open(&scan.path, rate)?;
        spectra::for_each_frame(
            std::slice::from_mut(&mut stream),
            scan.frames,
            rate,
            |_| true,
            |centre, sp| {
                let mut p = vec![0.0; grid.len()];
                for (x, band) in sp[0][0].iter().zip(&bands) {
                    if let Some(b) = band {
                        p[*b] += x.norm_sqr();
                    }
                }
                let hop = (centre as f64 / (HOP_S * f64::from(rate))) as usize;
                frames.push((hop, p));
            },
        )?;
        Ok(Self::from_frames(scan, &frames, grid.len()))
    }

    /// The windows of `scan` from its frames' band powers (`(hop, powers)`, hops rising).
    fn from_frames(scan: &Scan, frames: &[(usize, Vec<f64>)], bands: usize) -> Windows {
        let st = &scan.short_term;
        let loud = select::loud_level(scan).unwrap_or(f64::NAN);
        let mut w = Windows {
            end_hop: Vec::new(),
            raw: Vec::new(),
            shape: Vec::new(),
            rel_lu: Vec::new(),
            lufs: Vec::new(),
            hops: st.len(),
        };
        let mut first = 0;
        for end in (SHORT_TERM_HOPS - 1..st.len()).step_by(STEP_HOPS) {
            let l = st[end];
            if !select::audible(l) {
                continue;
            }
            // The spectrum of the window's middle SHAPE_HOPS (its loudness is of all 3 s).
            let start = middle(end).saturating_sub(SHAPE_HOPS / 2);
            while first < frames.len() && frames[first].0 < start {
                first += 1;
            }
            let inside = frames[first..]
                .iter()
                .take_while(|f| f.0 < start + SHAPE_HOPS);
            let mut p = vec![0.0; bands];
            let mut n = 0;
            for (_, f) in inside {
                for (a, b) in p.iter_mut().zip(f) {
                    *a += b;
                }
                n += 1;
            }
            if n == 0 {
                continue;
            }
            w.raw.push(
                p.iter()
                    .map(|x| (10.0 * (x / f64::from(n)).max(1e-30).log10() - l).max(FLOOR_DB))
                    .collect(),
            );
            w.end_hop.push(end);
            w.rel_lu.push(l - loud);
            w.lufs.push(l);
        }
        w.normalise();
        w
    }

    /// `shape` from `raw`: the programme's own average over its loudest sections taken out.
    fn normalise(&mut self) {
        let bands = self.raw.first().map_or(0, Vec::len);
        let loudest: Vec<usize> = (0..self.raw.len())
            .filter(|&i| self.rel_lu[i] >= -LOUDEST_RANGE_LU)
            .collect();
        let mut mean = vec![0.0; bands];
        for &i in &loudest {
            for (m, s) in mean.iter_mut().zip(&self.raw[i]) {
                *m += s / loudest.len() as f64;
            }
        }
        self.shape = self
            .raw
            .iter()
            .map(|r| r.iter().zip(&mean).map(|(x, m)| x - m).collect())
            .collect();
    }

    /// The programme as it would be with `change(i)` (dB per band, if any) added to window
    /// `i`: a section's proposed change, so the pairing compares the reference with the
    /// master as the proposal would make it.
    pub fn with_change<'a>(&self, change: impl Fn(usize) -> Option<&'a [f64]>) -> Windows {
        let mut w = self.clone();
        for (i, r) in w.raw.iter_mut().enumerate() {
            if let Some(d) = change(i) {
                for (x, c) in r.iter_mut().zip(d) {
                    *x += c;
                }
            }
        }
        w.normalise();
        w
    }

    /// The windows lying wholly within `range_s` (seconds).
    pub fn within(&self, range_s: (f64, f64)) -> Vec<usize> {
        let from = (range_s.0 / HOP_S).round() as usize;
        let to = (range_s.1 / HOP_S).round() as usize;
        (0..self.end_hop.len())
            .filter(|&i| self.end_hop[i] + 1 >= from + SHORT_TERM_HOPS && self.end_hop[i] < to)
            .collect()
    }
}

/// The distance between window `i` of `a` and window `j` of `b`, dB: the trimmed mean of
/// their shapes' band differences (about their median: a level offset is no difference of
/// shape) plus [`LOUDNESS_WEIGHT`] per LU of loudness rank.
pub fn distance(a: &Windows, i: usize, b: &Windows, j: usize, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(a.shape[i].iter().zip(&b.shape[j]).map(|(x, y)| x - y));
    scratch.sort_by(f64::total_cmp);
    let median = scratch.get(scratch.len() / 2).copied().unwrap_or(0.0);
    for x in scratch.iter_mut() {
        *x = (*x - median).abs();
    }
    scratch.sort_by(f64::total_cmp);
    let k = ((TRIM * scratch.len() as f64).round() as usize).clamp(1, scratch.len().max(1));
    let shape = scratch[..k.min(scratch.len())].iter().sum::<f64>() / k as f64;
    shape + LOUDNESS_WEIGHT * (a.rel_lu[i] - b.rel_lu[j]).abs()
}

/// The middle hop of the window ending at `end_hop`.
fn middle(end_hop: usize) -> usize {
    end_hop + 1 - SHORT_TERM_HOPS / 2
}

/// The hops `[from, to)` the window ending at `end_hop` marks: its middle [`STEP_HOPS`].
fn marked(end_hop: usize) -> (usize, usize) {
    let from = middle(end_hop).saturating_sub(STEP_HOPS / 2);
    (from, from + STEP_HOPS)
}

/// Marks the middle [`STEP_HOPS`] hops of the window ending at `end_hop`.
fn mark_middle(hops: &mut [bool], end_hop: usize) {
    let (from, to) = marked(end_hop);
    for h in hops.iter_mut().take(to).skip(from) {
        *h = true;
    }
}

/// The master's windows of a section: those whose middle 0.5 s (the part a window marks)
/// lies within `range_s` (seconds; the same convention as the references' parts, so that the
/// same music is compared: all of the section, its first and last bars too) with
/// [`EDGE_HOPS`] to spare, not its fade or its silences (the windows within
/// [`LOUDEST_RANGE_LU`] of its loud level). One flag per window.
pub fn section_windows(master: &Windows, range_s: (f64, f64)) -> Vec<bool> {
    let (from, to) = (
        (range_s.0 / HOP_S).round() as usize,
        (range_s.1 / HOP_S).round() as usize,
    );
    let mut inside: Vec<usize> = (0..master.end_hop.len())
        .filter(|&i| {
            let (a, b) = marked(master.end_hop[i]);
            a >= from + EDGE_HOPS && b + EDGE_HOPS <= to
        })
        .collect();
    let mut levels: Vec<f64> = inside.iter().map(|&i| master.lufs[i]).collect();
    levels.sort_by(f64::total_cmp);
    if let Some(&loud) = levels.get((0.9 * levels.len().saturating_sub(1) as f64).round() as usize)
    {
        inside.retain(|&i| master.lufs[i] >= loud - LOUDEST_RANGE_LU);
    }
    let mut chosen = vec![false; master.end_hop.len()];
    for i in inside {
        chosen[i] = true;
    }
    chosen
}

/// The master's side of a section as a selection: the middles of its
/// [`section_windows`].
pub fn section_selection(master: &Windows, range_s: (f64, f64)) -> Selection {
    middles(master, &section_windows(master, range_s))
}

/// What one reference gives one section.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// The reference's parts paired with the section.
    pub selection: Selection,
    /// The length of the reference's parts, s.
    pub seconds: f64,
    /// The section's parts that have a counterpart there (see [`pair`]).
    pub master: Selection,
    /// Their mean distance to the section, dB.
    pub distance_db: f64,
    /// Their mean loudness under the reference's loud level, LU.
    pub rel_lu: f64,
}

impl Paired {
    /// Whether both sides hold enough to match the section on ([`MIN_MATERIAL_S`]).
    pub fn enough(&self) -> bool {
        self.seconds >= MIN_MATERIAL_S && self.master.seconds() >= MIN_MATERIAL_S
    }
}

/// The middles of `windows` of `w` (flags per window) as a selection, with their mean
/// loudness.
fn middles(w: &Windows, chosen: &[bool]) -> Selection {
    let mut hops = vec![false; w.hops];
    let (mut sum, mut n) = (0.0, 0usize);
    for (i, _) in chosen.iter().enumerate().filter(|c| *c.1) {
        mark_middle(&mut hops, w.end_hop[i]);
        sum += w.lufs[i];
        n += 1;
    }
    Selection {
        hops,
        loudness_lufs: if n > 0 { sum / n as f64 } else { f64::NAN },
    }
}

/// Every master window's distance to every reference window, `[i * reference + j]`.
struct Distances {
    d: Vec<f64>,
    refs: usize,
}

impl Distances {
    fn new(master: &Windows, reference: &Windows) -> Distances {
        let refs = reference.end_hop.len();
        let mut scratch = Vec::new();
        let mut d = Vec::with_capacity(master.end_hop.len() * refs);
        for i in 0..master.end_hop.len() {
            d.extend((0..refs).map(|j| distance(master, i, reference, j, &mut scratch)));
        }
        Distances { d, refs }
    }

    fn get(&self, i: usize, j: usize) -> f64 {
        self.d[i * self.refs + j]
    }
}

/// The master's windows of a kind (its sections at `ranges`, seconds): the
/// [`section_windows`] of each, together. One flag per window.
pub fn kind_windows(master: &Windows, ranges: &[(f64, f64)]) -> Vec<bool> {
    let mut chosen = vec![false; master.end_hop.len()];
    for r in ranges {
        for (c, s) in chosen.iter_mut().zip(section_windows(master, *r)) {
            *c |= s;
        }
    }
    chosen
}

/// Pairs the windows of `reference` with the kinds of sections of `master` (each kind its
/// sections' time ranges, seconds; see [`super::kinds`]): one [`Paired`] per kind, in order.
/// A reference window goes to the kind holding its nearest windows, whichever of its
/// sections they lie in (a window like "a chorus" goes to the choruses: two choruses are as
/// near to it as each other). A reference window farther than [`MAX_DISTANCE_DB`] from
/// every kind, or within [`AMBIGUITY_DB`] of two, is left out.
///
/// The master's side is paired the other way round: a window of the kind is kept when
/// the reference windows paired with it hold one as near to it as the nearest
/// reference window of all (within [`AMBIGUITY_DB`]). The difference is then measured over
/// the same kind of music on both sides: a part of the section the reference has nothing
/// like there (a fill the reference gives to another section, a transition it leaves out)
/// is no difference of balance. Without this, a short section made of two kinds of music
/// (an intro whose second half brings the bass in) compares the whole of it with the part
/// of the reference that paired, and the narrow bands where they differ draw large EQ gains.
pub fn pair(master: &Windows, kinds: &[Vec<(f64, f64)>], reference: &Windows) -> Vec<Paired> {
    let dist_m = Distances::new(master, reference);
    let own: Vec<Vec<usize>> = kinds
        .iter()
        .map(|ranges| {
            let mut w: Vec<usize> = ranges.iter().flat_map(|r| master.within(*r)).collect();
            w.sort_unstable();
            w.dedup();
            w
        })
        .collect();
    let tiles: Vec<Vec<bool>> = kinds.iter().map(|r| kind_windows(master, r)).collect();
    let mut ref_chosen = vec![vec![false; reference.end_hop.len()]; kinds.len()];
    let mut sums = vec![(0usize, 0.0f64, 0.0f64); kinds.len()];
    let mut d: Vec<f64> = Vec::new();
    for (j, _) in reference.end_hop.iter().enumerate() {
        // (kind, distance); the second-best distance.
        let mut best: Option<(usize, f64)> = None;
        let mut second = f64::INFINITY;
        for (s, windows) in own.iter().enumerate() {
            if windows.is_empty() {
                continue;
            }
            d.clear();
            d.extend(windows.iter().map(|&i| dist_m.get(i, j)));
            d.sort_by(f64::total_cmp);
            let k = NEAREST.min(d.len());
            let dist = d[..k].iter().sum::<f64>() / k as f64;
            match best {
                Some(b) if dist >= b.1 => second = second.min(dist),
                _ => {
                    second = best.map_or(second, |b| b.1);
                    best = Some((s, dist));
                }
            }
        }
        let Some((s, dist)) = best else {
            continue;
        };
        let dist_of = |i: usize| dist_m.get(i, j);
        if dist > MAX_DISTANCE_DB
            || second - dist < AMBIGUITY_DB
            || !has_counterpart((0..tiles[s].len()).map(|i| (dist_of(i), tiles[s][i])))
        {
            continue;
        }
        ref_chosen[s][j] = true;
        let e = &mut sums[s];
        e.0 += 1;
        e.1 += dist;
        e.2 += reference.rel_lu[j];
    }
    (0..kinds.len())
        .map(|s| {
            let (n, d_sum, rel) = sums[s];
            let selection = middles(reference, &ref_chosen[s]);
            let mean = |x: f64| if n > 0 { x / n as f64 } else { f64::NAN };
            let master_side = counterparts(tiles[s].clone(), &dist_m, &ref_chosen[s]);
            Paired {
                seconds: selection.seconds(),
                selection,
                master: middles(master, &master_side),
                distance_db: mean(d_sum),
                rel_lu: mean(rel),
            }
        })
        .collect()
}

/// Of the master's windows `keep` (a kind's), those whose nearest reference window is
/// (within [`AMBIGUITY_DB`]) one of those `paired` with it.
fn counterparts(mut keep: Vec<bool>, dist: &Distances, paired: &[bool]) -> Vec<bool> {
    for (i, k) in keep.iter_mut().enumerate().filter(|(_, k)| **k) {
        *k = has_counterpart((0..paired.len()).map(|j| (dist.get(i, j), paired[j])));
    }
    keep
}

/// Whether, of the windows on the other side (`(distance, in the section)`), one in the
/// section is as near as the nearest of all (within [`AMBIGUITY_DB`]).
fn has_counterpart(others: impl Iterator<Item = (f64, bool)>) -> bool {
    let (mut all, mut own) = (f64::INFINITY, f64::INFINITY);
    for (d, inside) in others {
        all = all.min(d);
        if inside {
            own = own.min(d);
        }
    }
    own <= all + AMBIGUITY_DB
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(short_term: Vec<f64>) -> Scan {
        Scan {
            path: "x.wav".into(),
            sample_rate: 48_000,
            file_rate: 48_000,
            file_channels: 2,
            frames: short_term.len() as u64 * 4800,
            short_term,
            integrated_lufs: -14.0,
            lra_lu: 3.0,
            true_peak_dbtp: -1.0,
            clip_runs: 0,
            mono: false,
        }
    }

    /// A programme of two parts: `a` hops with band powers `pa`, then `b` hops with `pb`, at
    /// loudness `la` and `lb`; a frame every 3 hops.
    fn programme(parts: &[(usize, &[f64], f64)]) -> Windows {
        let mut st = Vec::new();
        let mut frames = Vec::new();
        for (n, p, l) in parts {
            for _ in 0..*n {
                if st.len() % 3 == 0 {
                    frames.push((st.len(), p.to_vec()));
                }
                st.push(*l);
            }
        }
        Windows::from_frames(&scan(st), &frames, parts[0].1.len())
    }

    #[test]
    fn sections_pair_by_shape_despite_a_change_in_a_few_bands() {
        // Verse: strong lows, quiet highs; chorus: the highs come in. Equally loud.
        let verse = [1.0, 1.0, 0.5, 0.1, 0.01, 0.01, 0.01, 0.01];
        let chorus = [1.0, 1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.1];
        let master = programme(&[(200, &verse, -16.0), (200, &chorus, -15.0)]);
        // The reference: the chorus with its lowest band 5 dB up, then the verse.
        let loud_chorus: Vec<f64> = chorus
            .iter()
            .enumerate()
            .map(|(i, p)| if i == 0 { p * 3.16 } else { *p })
            .collect();
        let reference = programme(&[(200, &loud_chorus, -15.0), (200, &verse, -16.0)]);
        let p = pair(
            &master,
            &[vec![(0.0, 20.0)], vec![(20.0, 40.0)]],
            &reference,
        );
        // Verse: the reference's second half; chorus: its first.
        let first_half = |s: &Selection| s.hops[..200].iter().filter(|h| **h).count();
        let second_half = |s: &Selection| s.hops[200..].iter().filter(|h| **h).count();
        assert!(
            second_half(&p[0].selection) > 100 && first_half(&p[0].selection) < 20,
            "{p:?}"
        );
        assert!(
            first_half(&p[1].selection) > 100 && second_half(&p[1].selection) < 20,
            "{p:?}"
        );
        assert!(p[0].seconds >= MIN_MATERIAL_S && p[1].seconds >= MIN_MATERIAL_S);
    }

    #[test]
    fn a_part_of_a_section_the_reference_has_nothing_like_is_left_out_of_the_master_side() {
        // Section 1: keys (A), then a fill (C) that sounds like the chorus (B); section 2:
        // the chorus. The reference has A and B only: the fill has no counterpart paired with
        // section 1, so the master's side of section 1 is A alone.
        let a = [1.0, 0.5, 0.2, 0.05, 0.01, 0.01, 0.01, 0.01];
        let b = [1.0, 1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.1];
        let c = [1.0, 1.0, 0.5, 0.3, 0.1, 0.1, 0.1, 0.1];
        let master = programme(&[(150, &a, -16.0), (50, &c, -15.0), (200, &b, -15.0)]);
        let reference = programme(&[(200, &a, -16.0), (200, &b, -15.0)]);
        let p = pair(
            &master,
            &[vec![(0.0, 20.0)], vec![(20.0, 40.0)]],
            &reference,
        );
        let hops =
            |s: &Selection, r: std::ops::Range<usize>| s.hops[r].iter().filter(|h| **h).count();
        let runs = |s: &Selection| {
            (0..40)
                .map(|i| match hops(s, i * 10..i * 10 + 10) {
                    0 => '.',
                    10 => '#',
                    _ => '+',
                })
                .collect::<String>()
        };
        let show = p
            .iter()
            .map(|p| {
                format!(
                    "master {} reference {}",
                    runs(&p.master),
                    runs(&p.selection)
                )
            })
            .collect::<Vec<_>>();
        assert!(hops(&p[0].master, 20..140) >= 100, "{show:?}");
        assert_eq!(hops(&p[0].master, 155..200), 0, "{show:?}");
        // The reference's side of section 1 is its A part, and both sides hold enough.
        assert!(
            hops(&p[0].selection, 200..400) == 0 && p[0].enough(),
            "{show:?}"
        );
        assert!(
            hops(&p[1].master, 210..390) >= 150 && p[1].enough(),
            "{show:?}"
        );
    }

    #[test]
    fn the_distance_is_symmetric_and_zero_on_itself() {
        let a = programme(&[
            (100, &[1.0, 0.5, 0.2], -14.0),
            (100, &[0.2, 0.5, 1.0], -20.0),
        ]);
        let mut s = Vec::new();
        assert_eq!(distance(&a, 3, &a, 3, &mut s), 0.0);
        let (x, y) = (1, a.end_hop.len() - 1);
        assert!((distance(&a, x, &a, y, &mut s) - distance(&a, y, &a, x, &mut s)).abs() < 1e-12);
        assert!(distance(&a, x, &a, y, &mut s) > 3.0);
    }
}
