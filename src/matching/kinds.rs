//! Which of the recipe's sections are the same *kind* of music: verse 1 and verse 2, the
//! three choruses. A song's sections repeat, and a reference window that sounds like "a
//! chorus" belongs with every chorus: the pairing ([`super::pairing`]) assigns reference
//! windows to kinds, not to single sections (two choruses are as alike as a reference window
//! is to either, so pairing to sections would leave every chorus window out as ambiguous),
//! and each kind is fitted once, over all its sections' material.
//!
//! The kinds come from the recipe's section **names**: when the recipe numbers its repeats
//! (`verse1`, `verse 2`, `chorus_3`: a name with its trailing number, and the separator
//! before it, taken off is its kind, case aside), the sections of one name are one kind.
//! Names are what the engineer wrote, and they are final: a verse 2 with a tambourine added
//! is still a verse; an outro that sounds like the chorus but is named `outro` is the
//! engineer's call. Where the names do not number repeats (every name its own, or every name
//! the same word numbered: `part01`, `part02`, …), every section is its own kind, as before.
//!
//! **Why not by how alike the sections sound** (where the names do not say): measured
//! (`tests/match_repeats.rs`, `the_likeness_of_sections_measured`, which prints the
//! distributions; [`likeness`] is the measure, the pairing's own distance between sections),
//! sections of one kind lie at 0.47–2.46 dB (the 240 s demo's verses and choruses 0.47–0.89,
//! its breaks among each other up to 2.42; the halves of the corpus ballad's choir part
//! 2.46) and sections of different kinds from 0.72 dB up (the corpus electronic song's build
//! and drop: 0.72–1.15, the lead synth the drop adds moves too few bands; the demo's verse
//! and chorus 1.65–1.81). The two overlap, and no threshold separates them: a grouping at
//! 1 dB merged the build and the drop, one at 1.4 dB would also have split the demo's
//! breaks. The other variants tried (every band rather than the closest 75 %, windows wholly
//! inside the sections, no loudness term) overlap as much (same kind up to 2.6–5.6 dB,
//! different kinds from 0.9–1.4 dB).

use super::pairing::{self, Windows};

/// The sections grouped into kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct Kinds {
    /// Each section's kind (an index into `names`).
    pub of_section: Vec<usize>,
    /// Each kind's name: the names' kind when the names say, else the section's name.
    pub names: Vec<String>,
    /// Whether the names said (else every section is its own kind).
    pub by_names: bool,
}

impl Kinds {
    /// The sections of kind `k`, in order.
    pub fn members(&self, k: usize) -> Vec<usize> {
        (0..self.of_section.len())
            .filter(|&s| self.of_section[s] == k)
            .collect()
    }

    /// How many kinds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The kind a section's name says: lower case, its trailing number and the separators
/// before it taken off (`Chorus 2`, `chorus_2`, `chorus2` → `chorus`); empty for a bare
/// number.
pub fn name_kind(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    lower
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches([' ', '_', '-', '.', '#'])
        .to_string()
}

/// Groups the sections named `names` into kinds: by their names when the names number
/// their repeats, else each section its own kind.
pub fn group(names: &[String]) -> Kinds {
    by_names(names).unwrap_or_else(|| Kinds {
        of_section: (0..names.len()).collect(),
        names: names.to_vec(),
        by_names: false,
    })
}

/// The kinds the names say, if they say: some name repeats a kind, and not every name is
/// one kind.
fn by_names(names: &[String]) -> Option<Kinds> {
    let kinds: Vec<String> = names.iter().map(|n| name_kind(n)).collect();
    if kinds.iter().any(String::is_empty) {
        return None;
    }
    let mut distinct: Vec<String> = Vec::new();
    let mut of_section = Vec::new();
    for k in &kinds {
        let i = distinct.iter().position(|d| d == k).unwrap_or_else(|| {
            distinct.push(k.clone());
            distinct.len() - 1
        });
        of_section.push(i);
    }
    (distinct.len() < names.len() && distinct.len() > 1).then_some(Kinds {
        of_section,
        names: distinct,
        by_names: true,
    })
}

/// The windows of `master` that describe the section at `range_s` (its
/// [`pairing::section_windows`]).
fn tiles(master: &Windows, range_s: (f64, f64)) -> Vec<usize> {
    pairing::section_windows(master, range_s)
        .iter()
        .enumerate()
        .filter(|(_, c)| **c)
        .map(|(i, _)| i)
        .collect()
}

/// How alike two sections of `master` sound, dB (0: the same music): for each window of one,
/// the mean [`pairing::distance`] to its [`pairing::NEAREST`] nearest windows of the other
/// (what the pairing asks of a reference window), the median of those over the section (a
/// fill or a transition does not decide), the larger of the two ways. Infinite when either
/// section has no window.
pub fn likeness(master: &Windows, a: (f64, f64), b: (f64, f64)) -> f64 {
    likeness_of(master, &tiles(master, a), &tiles(master, b))
}

fn likeness_of(master: &Windows, a: &[usize], b: &[usize]) -> f64 {
    let one_way = |x: &[usize], y: &[usize]| {
        let mut scratch = Vec::new();
        let mut d = Vec::with_capacity(y.len());
        let mut per: Vec<f64> = x
            .iter()
            .map(|&i| {
                d.clear();
                d.extend(
                    y.iter()
                        .map(|&j| pairing::distance(master, i, master, j, &mut scratch)),
                );
                d.sort_by(f64::total_cmp);
                let k = pairing::NEAREST.min(d.len());
                d[..k].iter().sum::<f64>() / k as f64
            })
            .collect();
        per.sort_by(f64::total_cmp);
        per[per.len() / 2]
    };
    if a.is_empty() || b.is_empty() {
        return f64::INFINITY;
    }
    one_way(a, b).max(one_way(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn numbered_names_are_one_kind() {
        assert_eq!(name_kind("Chorus 2"), "chorus");
        assert_eq!(name_kind("chorus_2"), "chorus");
        assert_eq!(name_kind("chorus2"), "chorus");
        assert_eq!(name_kind("pre-chorus"), "pre-chorus");
        assert_eq!(name_kind("12"), "");
        let k = by_names(&names(&[
            "intro", "verse1", "chorus1", "verse2", "chorus 2", "outro",
        ]))
        .unwrap();
        assert_eq!(k.names, ["intro", "verse", "chorus", "outro"]);
        assert_eq!(k.of_section, [0, 1, 2, 1, 2, 3]);
        assert_eq!(k.members(2), [2, 4]);
    }

    #[test]
    fn names_that_repeat_nothing_or_are_all_one_word_do_not_say() {
        assert!(by_names(&names(&["intro", "verse", "chorus"])).is_none());
        assert!(by_names(&names(&["part1", "part2", "part3"])).is_none());
        assert!(by_names(&names(&["a", "1", "a2"])).is_none());
    }

    #[test]
    fn without_numbered_names_every_section_is_its_own_kind() {
        let k = group(&names(&["intro", "verse", "chorus"]));
        assert_eq!(k.of_section, [0, 1, 2]);
        assert!(!k.by_names);
        let k = group(&names(&["intro", "verse", "verse2"]));
        assert_eq!(k.of_section, [0, 1, 1]);
        assert!(k.by_names);
    }
}
