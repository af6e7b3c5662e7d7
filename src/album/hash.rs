//! Content hashes of a song's inputs, for incremental album renders.
//!
//! A song is measured again when its **measure key** changes and rendered again when its
//! **render key** changes:
//!
//! - the measure key covers what decides the pre-limiter master and its loudness: the engine
//!   version, the song's graph, stems, automation and sample rate as resolved (source locations
//!   left out, so moving a line changes nothing), the content of every stem and of every file
//!   the song was loaded from besides the album file (its recipe, templates, modules) and of
//!   every plugin state file its plugin nodes restore, and the loudness policy;
//! - the render key adds what decides the files: the limiter drive the album gain gave the song,
//!   its deliverables (names, formats, tags), edits, title and artist.
//!
//! File contents are SHA-256 digests. A [`DigestCache`] remembers each file's digest with its
//! length and modification time, so an unchanged multi-gigabyte stem is not read again.

use crate::session::Session;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The engine version every key includes: a new build may render differently.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A digest with the file facts it was computed for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    len: u64,
    modified_ns: u128,
    sha256: String,
}

/// File digests remembered by length and modification time (shared between worker threads).
#[derive(Debug, Default)]
pub struct DigestCache {
    entries: Mutex<BTreeMap<PathBuf, Entry>>,
}

impl DigestCache {
    /// A cache read from `path` (empty if it does not exist or cannot be read).
    pub fn load(path: &Path) -> DigestCache {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        DigestCache {
            entries: Mutex::new(entries),
        }
    }

    /// Writes the cache to `path` (atomically; failures are not errors: it is only a cache).
    pub fn save(&self, path: &Path) {
        let entries = self.entries.lock().expect("digest cache");
        if let Ok(json) = serde_json::to_vec_pretty(&*entries) {
            let _ = super::work::write_atomic(path, &json);
        }
    }

    /// The SHA-256 of `path`'s content, hex.
    pub fn digest(&self, path: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(e) = self.entries.lock().expect("digest cache").get(&key) {
            if e.len == meta.len() && e.modified_ns == modified_ns {
                return Ok(e.sha256.clone());
            }
        }
        let sha256 = file_sha256(path)?;
        self.entries.lock().expect("digest cache").insert(
            key,
            Entry {
                len: meta.len(),
                modified_ns,
                sha256: sha256.clone(),
            },
        );
        Ok(sha256)
    }
}

/// SHA-256 of a file's content, read in 1 MiB pieces.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds a key from labelled parts.
pub struct KeyBuilder(Sha256);

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    /// A builder seeded with the engine version.
    pub fn new() -> Self {
        let mut h = Sha256::new();
        h.update(b"stemgraph-album-key-v1\0");
        h.update(ENGINE_VERSION.as_bytes());
        KeyBuilder(h)
    }

    /// Adds a labelled part.
    pub fn part(&mut self, label: &str, value: &str) -> &mut Self {
        self.0.update((label.len() as u64).to_le_bytes());
        self.0.update(label.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    /// The key, hex.
    pub fn finish(&self) -> String {
        hex(&self.0.clone().finalize())
    }
}

/// The session with every source location removed: what it renders, not where it was written.
fn without_origins(session: &Session) -> Session {
    let mut s = session.clone();
    for n in &mut s.graph.nodes {
        n.origin = None;
    }
    for e in &mut s.graph.edges {
        e.origin = None;
    }
    for a in &mut s.graph.automation {
        a.origin = None;
    }
    for a in &mut s.automation {
        a.origin = None;
    }
    for d in &mut s.deliverables {
        d.origin = None;
    }
    for st in &mut s.stems {
        st.origin = None;
    }
    s
}

/// The measure key of a song (see the module documentation). `policy` describes the policy as
/// far as it changes the measurement.
pub fn measure_key(
    session: &Session,
    inputs: &[PathBuf],
    policy: &str,
    digests: &DigestCache,
) -> std::io::Result<String> {
    let s = without_origins(session);
    let mut k = KeyBuilder::new();
    k.part("graph", &format!("{:?}", s.graph))
        .part("automation", &format!("{:?}", s.automation))
        .part("sample_rate", &format!("{:?}", s.sample_rate))
        .part("policy", policy)
        .part(
            "outputs",
            &format!(
                "{:?}",
                s.deliverables.iter().map(|d| &d.output).collect::<Vec<_>>()
            ),
        );
    for st in &s.stems {
        k.part(
            "stem",
            &format!("{}:{}:{}", st.name, st.channels, st.path.display()),
        );
        k.part("stem_sha256", &digests.digest(&st.path)?);
    }
    for node in &s.graph.nodes {
        if let crate::graph::NodeKind::Processor { kind, config, .. } = &node.kind {
            let state = crate::dsp::plugin::state_path(config);
            if let (true, Some(path)) = (kind == crate::dsp::plugin::KIND.name, state) {
                k.part("plugin_state", &format!("{}:{}", node.id, path.display()));
                k.part("plugin_state_sha256", &digests.digest(&path)?);
            }
        }
    }
    for f in inputs {
        k.part("input", &f.display().to_string());
        k.part("input_sha256", &digests.digest(f)?);
    }
    Ok(k.finish())
}

/// The render key of a song: its measure key, its drive (exact bits), and what shapes its files.
pub fn render_key(measure_key: &str, drive_db: f64, session: &Session, extra: &str) -> String {
    let s = without_origins(session);
    let mut k = KeyBuilder::new();
    k.part("measure", measure_key)
        .part("drive_bits", &format!("{:016x}", drive_db.to_bits()))
        .part("deliverables", &format!("{:?}", s.deliverables))
        .part("edits", &format!("{:?}", s.edits))
        .part("tail", &format!("{:?}", s.tail))
        .part("title", &s.title)
        .part("artist", &format!("{:?}", s.artist))
        .part("ceiling", &format!("{:?}", s.ceiling_dbtp))
        .part("extra", extra);
    k.finish()
}
