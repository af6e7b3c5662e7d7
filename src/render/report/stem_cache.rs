//! What a render learns about a stem file that the recipe does not change — its SHA-256 and its
//! meters at the session's rate and length — kept between runs, so that re-rendering after a
//! change to the recipe does not hash and meter the unchanged stems again.
//!
//! An entry is found by the file's identity as the file system reports it (canonical path,
//! device, inode, size, modification and status-change times in nanoseconds), what shapes the
//! stem's signal in the graph (session rate, song length, channels, the stem fader's settings)
//! and the engine version. Like git's index it trusts an unchanged identity to mean unchanged
//! bytes: writing a file changes its status-change time, which no program can set back. It
//! guards against the same-timestamp race the same way: an entry recorded less than
//! [`RACY_NS`] after the file's last modification is not trusted (nor written).
//!
//! Entries are one small JSON file each (readings stored as their exact bit patterns), written
//! to a temporary file and renamed, so concurrent renders (album jobs) cannot tear one; a
//! missing, unreadable or malformed entry is a miss, and a cache that cannot be written is
//! silently not written. The folder is chosen by the caller (the command line uses
//! [`StemCache::default_dir`]).

use super::collect::NodeMeters;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Entries recorded within this many nanoseconds of the file's modification are not trusted.
pub const RACY_NS: i128 = 2_000_000_000;

/// Layout version of the entries (part of every key).
const LAYOUT: u32 = 1;

/// A cache folder, or none (every lookup misses, nothing is stored).
#[derive(Debug, Clone, Default)]
pub struct StemCache {
    dir: Option<PathBuf>,
}

/// What is known about one stem file.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedStem {
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Its meters in the graph (`None` if it was not metered).
    pub meters: Option<NodeMeters>,
}

/// The stored form of a [`CachedStem`].
#[derive(Serialize, Deserialize)]
struct Entry {
    sha256: String,
    bytes: u64,
    /// The meters' readings as `f64::to_bits`, in [`NodeMeters`] field order.
    meters: Option<[u64; 7]>,
    /// When the entry was recorded, ns since the Unix epoch.
    recorded_ns: i128,
}

/// The file's identity and its modification time.
struct Identity {
    key_part: String,
    mtime_ns: i128,
}

fn meters_to_bits(m: &NodeMeters) -> [u64; 7] {
    [
        m.integrated_lufs.to_bits(),
        m.short_term_max_lufs.to_bits(),
        m.momentary_max_lufs.to_bits(),
        m.loudness_range_lu.to_bits(),
        m.true_peak_dbtp.to_bits(),
        m.sample_peak_dbfs.to_bits(),
        m.rms_dbfs.to_bits(),
    ]
}

fn meters_from_bits(b: [u64; 7]) -> NodeMeters {
    NodeMeters {
        integrated_lufs: f64::from_bits(b[0]),
        short_term_max_lufs: f64::from_bits(b[1]),
        momentary_max_lufs: f64::from_bits(b[2]),
        loudness_range_lu: f64::from_bits(b[3]),
        true_peak_dbtp: f64::from_bits(b[4]),
        sample_peak_dbfs: f64::from_bits(b[5]),
        rms_dbfs: f64::from_bits(b[6]),
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(path).ok()?;
    let md = std::fs::metadata(&canonical).ok()?;
    if !md.is_file() {
        return None;
    }
    let mtime_ns = i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec());
    let ctime_ns = i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec());
    Some(Identity {
        key_part: format!(
            "{}\0{}\0{}\0{}\0{}\0{}",
            canonical.display(),
            md.dev(),
            md.ino(),
            md.len(),
            mtime_ns,
            ctime_ns
        ),
        mtime_ns: mtime_ns.max(ctime_ns),
    })
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<Identity> {
    // Without a status-change time an edit that keeps size and modification time would go
    // unnoticed: no cache.
    None
}

impl StemCache {
    /// A cache in `dir` (created when the first entry is stored), or none.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The folder the command line uses: `$STEMGRAPH_CACHE_DIR` if set (empty or `off`: no
    /// cache), else `$XDG_CACHE_HOME/stemgraph/stems`, else `~/.cache/stemgraph/stems`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(v) = std::env::var_os("STEMGRAPH_CACHE_DIR") {
            return (!v.is_empty() && v != "off").then(|| PathBuf::from(v));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("stemgraph").join("stems"))
    }

    /// The cache's folder, if it has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether lookups can hit.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    fn entry_path(&self, id: &Identity, context: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut h = Sha256::new();
        h.update(format!(
            "stemgraph {} layout {LAYOUT}\0{}\0{context}",
            env!("CARGO_PKG_VERSION"),
            id.key_part
        ));
        let name: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(dir.join(format!("{name}.json")))
    }

    /// What is known about the file at `path` in `context` (see the module docs), if an entry
    /// exists and can be trusted.
    pub fn lookup(&self, path: &Path, context: &str) -> Option<CachedStem> {
        let id = identity(path)?;
        let text = std::fs::read_to_string(self.entry_path(&id, context)?).ok()?;
        let e: Entry = serde_json::from_str(&text).ok()?;
        if e.recorded_ns - id.mtime_ns < RACY_NS || e.sha256.len() != 64 {
            return None;
        }
        Some(CachedStem {
            sha256: e.sha256,
            bytes: e.bytes,
            meters: e.meters.map(meters_from_bits),
        })
    }

    /// Records what was learnt about `path` in `context`; does nothing if the cache is off, the
    /// file changed too recently to be trusted, or the entry cannot be written.
    pub fn store(&self, path: &Path, context: &str, stem: &CachedStem) {
        let Some(id) = identity(path) else { return };
        let recorded_ns = now_ns();
        if recorded_ns - id.mtime_ns < RACY_NS {
            return;
        }
        let Some(target) = self.entry_path(&id, context) else {
            return;
        };
        // Never over the stem itself (a cache folder pointed at the stems).
        if crate::io::paths::same_file(path, &target) {
            return;
        }
        let entry = Entry {
            sha256: stem.sha256.clone(),
            bytes: stem.bytes,
            meters: stem.meters.as_ref().map(meters_to_bits),
            recorded_ns,
        };
        let Ok(text) = serde_json::to_string(&entry) else {
            return;
        };
        let Some(dir) = target.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            target
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &target).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn meters(x: f64) -> NodeMeters {
        NodeMeters {
            integrated_lufs: x,
            short_term_max_lufs: f64::NEG_INFINITY,
            momentary_max_lufs: -0.0,
            loudness_range_lu: 1.0 / 3.0,
            true_peak_dbtp: -0.1,
            sample_peak_dbfs: -0.2,
            rms_dbfs: -20.0,
        }
    }

    /// Moves every entry's recording time well past the file's last change, as if the render
    /// had happened later (instead of waiting [`RACY_NS`]).
    fn age_entries(dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let mut entry: Entry =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).expect("entry parses");
            entry.recorded_ns += 10 * RACY_NS;
            std::fs::write(&p, serde_json::to_string(&entry).unwrap()).unwrap();
        }
    }

    #[test]
    fn entries_round_trip_exactly_and_follow_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let stem = tmp.path().join("a.wav");
        std::fs::write(&stem, b"one").unwrap();
        let cache = StemCache::new(Some(tmp.path().join("cache")));
        let known = CachedStem {
            sha256: "0".repeat(64),
            bytes: 3,
            meters: Some(meters(-14.123456789)),
        };
        // Just written: racy, so not stored.
        cache.store(&stem, "48000 stereo", &known);
        assert!(!tmp.path().join("cache").exists());
        // Store with the clock check passed (an entry file made by hand the same way).
        let id = identity(&stem).unwrap();
        let path = cache.entry_path(&id, "48000 stereo").unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let entry = Entry {
            sha256: known.sha256.clone(),
            bytes: 3,
            meters: known.meters.as_ref().map(meters_to_bits),
            recorded_ns: id.mtime_ns,
        };
        std::fs::write(&path, serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(cache.lookup(&stem, "48000 stereo"), None, "racy entry");
        age_entries(path.parent().unwrap());
        let got = cache.lookup(&stem, "48000 stereo").expect("hit");
        assert_eq!(got.sha256, known.sha256);
        let (a, b) = (got.meters.unwrap(), known.meters.clone().unwrap());
        assert_eq!(meters_to_bits(&a), meters_to_bits(&b), "bit-exact readings");
        // Another context, another key.
        assert_eq!(cache.lookup(&stem, "44100 stereo"), None);
        // Rewriting the file (even with the same size) changes its identity.
        std::fs::write(&stem, b"two").unwrap();
        assert_eq!(cache.lookup(&stem, "48000 stereo"), None);
        // No cache: nothing.
        assert_eq!(StemCache::new(None).lookup(&stem, "48000 stereo"), None);
    }
}
