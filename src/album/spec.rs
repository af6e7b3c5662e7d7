//! What an album file declares, as plain data: the songs (each a [`Session`]), the loudness
//! policy, and the album-level deliverables (a CD image with its CUE sheet).
//!
//! The script layer ([`crate::script::load_album`]) produces it; the album renderer consumes it.

use crate::session::Session;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the songs' loudness is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Every song is driven to the target on its own.
    PerTrack,
    /// One gain for every song (a shared limiter drive), so their relative loudness is kept.
    AlbumGain,
}

/// What the album gain is keyed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GainKey {
    /// The loudest song lands on the target; the others keep their distance below it.
    Loudest,
    /// The album measured as if it were one long file lands on the target.
    Whole,
}

/// The album's loudness policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Per track or album gain.
    pub mode: PolicyMode,
    /// What the album gain is keyed to (album gain only).
    pub key: GainKey,
    /// Integrated loudness target, LUFS.
    pub target_lufs: f64,
    /// True-peak ceiling of every song and every deliverable, dBTP.
    pub ceiling_dbtp: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: PolicyMode::AlbumGain,
            key: GainKey::Loudest,
            target_lufs: -14.0,
            ceiling_dbtp: -1.0,
        }
    }
}

impl Policy {
    /// The policy in words, for reports: "album gain, loudest song at -14 LUFS, ceiling -1 dBTP".
    pub fn describe(&self) -> String {
        let how = match (self.mode, self.key) {
            (PolicyMode::PerTrack, _) => {
                format!("per track: every song at {} LUFS", self.target_lufs)
            }
            (PolicyMode::AlbumGain, GainKey::Loudest) => format!(
                "album gain: one gain for every song, the loudest at {} LUFS",
                self.target_lufs
            ),
            (PolicyMode::AlbumGain, GainKey::Whole) => format!(
                "album gain: one gain for every song, the whole album at {} LUFS",
                self.target_lufs
            ),
        };
        format!("{how}; true-peak ceiling {} dBTP", self.ceiling_dbtp)
    }
}

/// A CD running order: every song in one 16-bit 44.1 kHz WAV image, with a CUE sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct CdImage {
    /// The image's file name (relative to the output folder; `{album}` and `{artist}` expanded).
    pub file: String,
    /// The CUE sheet's file name.
    pub cue: String,
    /// A DDP 2.00 fileset of the image for replication, if asked for.
    pub ddp: Option<DdpSpec>,
}

/// A DDP fileset (`cd = { ddp = "DDP" }` or `ddp = { folder = …, master_id = …, pregap_s = … }`).
#[derive(Debug, Clone, PartialEq)]
pub struct DdpSpec {
    /// The folder (relative to the output folder; `{album}` and `{artist}` expanded).
    pub folder: String,
    /// The master id (catalogue number) of `DDPID`, up to 48 characters.
    pub master_id: String,
    /// Seconds of silence before track 1 (index 00 to 01), at least 2.
    pub pregap_s: f64,
}

/// One song of the album.
#[derive(Debug, Clone, PartialEq)]
pub struct SongSpec {
    /// Track number, from 1.
    pub track: usize,
    /// The song as a session (title, artist, stems, graph, deliverables with their file names
    /// and tags expanded for this track).
    pub session: Session,
    /// ISRC, normalized to 12 characters without hyphens.
    pub isrc: Option<String>,
    /// Seconds of silence before this song in the CD image (0 for the first).
    pub gap_before_s: f64,
    /// Files besides the stems whose content the song depends on: its recipe (a recipe song) and
    /// the templates and modules loaded for it.
    pub inputs: Vec<PathBuf>,
}

/// An album as its file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlbumSpec {
    /// The album file.
    pub file: PathBuf,
    /// Album title.
    pub title: String,
    /// Album artist, if given.
    pub artist: Option<String>,
    /// The loudness policy.
    pub policy: Policy,
    /// The CD image, if asked for.
    pub cd: Option<CdImage>,
    /// The album file's metadata keys (`upc`, `genre`, …): every song's defaults.
    pub metadata: crate::metadata::Metadata,
    /// The songs in running order.
    pub songs: Vec<SongSpec>,
}

impl AlbumSpec {
    /// The song `selector` names: a track number (`3`) or a title (case-insensitive).
    pub fn find_song(&self, selector: &str) -> Option<usize> {
        if let Ok(n) = selector.trim().parse::<usize>() {
            return self.songs.iter().position(|s| s.track == n);
        }
        self.songs
            .iter()
            .position(|s| s.session.title.eq_ignore_ascii_case(selector.trim()))
    }
}

pub use crate::metadata::normalize_isrc;

/// Expands the album placeholders of a file-name pattern: `{track}`, `{track:02}` (any width),
/// `{album}`, `{artist}`, `{isrc}`. `{title}` is left for the deliverable pipeline. Values are made
/// safe for file names as titles are.
pub fn expand_album_pattern(
    pattern: &str,
    track: Option<usize>,
    album: &str,
    artist: Option<&str>,
    isrc: Option<&str>,
) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let key = &rest[open + 1..open + close];
        let (name, width) = match key.split_once(':') {
            Some((n, w)) => (n, w.parse::<usize>().ok()),
            None => (key, None),
        };
        let value = match (name, track) {
            ("track", Some(t)) => Some(match width {
                Some(w) => format!("{t:0w$}"),
                None => t.to_string(),
            }),
            ("album", _) => Some(safe_name(album)),
            ("artist", _) => Some(safe_name(artist.unwrap_or(""))),
            ("isrc", _) => Some(isrc.unwrap_or("").to_string()),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// A name made safe for a file name: letters, digits, space, `-` and `_` kept, the rest `_`.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            expand_album_pattern("{track:02} {title}.wav", Some(3), "A", None, None),
            "03 {title}.wav"
        );
        assert_eq!(
            expand_album_pattern(
                "{album}/{track} {title}.flac",
                Some(12),
                "Night: Shapes",
                None,
                None
            ),
            "Night_ Shapes/12 {title}.flac"
        );
        assert_eq!(
            expand_album_pattern("{nope}.wav", Some(1), "A", None, None),
            "{nope}.wav"
        );
    }

    #[test]
    fn isrc() {
        assert_eq!(normalize_isrc("gb-aye-24-00001").unwrap(), "GBAYE2400001");
        assert!(normalize_isrc("GBAYE24000").is_err());
    }
}
