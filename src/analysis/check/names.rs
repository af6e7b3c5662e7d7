//! Stem names: whether a name is generic (`Audio 1`, `track3`, `Stem 02`), so that `check` can
//! ask for a name that says what the stem is.
//!
//! Any other name passes: `trumpet`, `Gesang`, `fx` or `sax 2` say what the stem is to whoever
//! made them, and a check that only knew its own list of instruments would cry wolf on them.

/// Words that only number or label a track in a DAW's default naming.
const GENERIC: &[&str] = &[
    "audio",
    "track",
    "trk",
    "tr",
    "stem",
    "stems",
    "untitled",
    "unnamed",
    "new",
    "bus",
    "ch",
    "chan",
    "channel",
    "input",
    "in",
    "out",
    "output",
    "mono",
    "stereo",
    "st",
    "copy",
    "bounce",
    "bounced",
    "export",
    "exported",
    "consolidated",
    "rec",
    "recording",
    "take",
    "comp",
    "file",
    "sound",
    "sample",
    "clip",
    "region",
    "aux",
    "group",
    "grp",
    "master",
    "final",
    "print",
    "l",
    "r",
    "wav",
    "aif",
    "aiff",
    "flac",
    "dup",
    "duplicate",
    "alt",
    "version",
    "v",
    "mix",
];

/// Numbers that name an instrument (drum machines and the bass sound named after one).
const INSTRUMENT_NUMBERS: &[&str] = &["808", "909", "303", "707", "606"];

/// Whether `name` is a generic label that does not say what the stem is: made only of generic
/// words, numbers, single letters and separators (`Audio 1`, `Track_03`, `01`, `Stem 2 (bounce)`, `x`).
pub fn is_generic(name: &str) -> bool {
    let lower = name.to_lowercase();
    let parts: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if parts.iter().any(|w| INSTRUMENT_NUMBERS.contains(w)) {
        return false;
    }
    let words: Vec<String> = parts
        .iter()
        .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()).to_string())
        .collect();
    words
        .iter()
        .all(|w| w.chars().count() <= 1 || GENERIC.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::is_generic;

    #[test]
    fn generic_names_are_found_and_instruments_are_not() {
        for g in [
            "Audio 1",
            "track3",
            "Track_03",
            "01",
            "Stem 2 (bounce)",
            "untitled",
            "Audio 1.L",
            "x",
        ] {
            assert!(is_generic(g), "{g}");
        }
        for n in [
            "trumpet",
            "sax",
            "strings",
            "choir",
            "synth",
            "fx",
            "Gesang",
            "lead_synth",
            "bass",
            "drums",
            "Kick In",
            "BV 2",
            "piano",
            "808",
            "Chor",
        ] {
            assert!(!is_generic(n), "{n}");
        }
    }
}
