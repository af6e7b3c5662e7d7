//! Inputs are sacred: which output paths would land on an input file.
//!
//! This module owns [`Inputs`], the set of files a render (or an album) reads — stems, reference,
//! recipe, modules, templates — and the one question asked of every path it is about to write
//! (deliverable, report, spill, cache entry, album file): does it resolve to one of them? Two
//! paths name the same file when their canonical paths are equal (which sees through `..`, `.`
//! and symbolic links, also for a destination that does not exist yet: its deepest existing
//! folder is resolved) or, on Unix, when they are the same inode on the same device (hard links).
//!
//! Renders check every planned output against their inputs before anything is rendered, and
//! [`crate::io::atomic::AtomicFile`] asks again when it creates each file.

use std::path::{Component, Path, PathBuf};

/// One input file, resolved once.
#[derive(Debug, Clone)]
struct Input {
    /// The path as the recipe gave it (for messages).
    given: PathBuf,
    /// Its canonical path, when it exists.
    canonical: Option<PathBuf>,
    /// (device, inode) on Unix, when it exists.
    id: Option<(u64, u64)>,
}

/// The files a render reads, to be kept from being written over.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    inputs: Vec<Input>,
}

/// An output path that resolves to an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The output path as planned.
    pub output: PathBuf,
    /// The input it would overwrite, as the recipe gave it.
    pub input: PathBuf,
}

/// (device, inode) of an existing file.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// `path` made absolute and resolved as far as the file system allows: the deepest existing
/// ancestor is canonicalized (symbolic links, `..`), the rest is normalized lexically (it does
/// not exist yet, so it holds no link).
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    // Walk up to the deepest ancestor that exists.
    let comps: Vec<Component<'_>> = abs.components().collect();
    for cut in (0..comps.len()).rev() {
        let head: PathBuf = comps[..cut].iter().collect();
        if head.as_os_str().is_empty() {
            continue;
        }
        if let Ok(base) = std::fs::canonicalize(&head) {
            let mut out = base;
            for c in &comps[cut..] {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
    }
    abs
}

impl Inputs {
    /// The inputs at `paths` (missing files are kept by their resolved path).
    pub fn new<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut inputs = Inputs::default();
        for p in paths {
            inputs.add(p.as_ref());
        }
        inputs
    }

    /// Adds one input.
    pub fn add(&mut self, path: &Path) {
        self.inputs.push(Input {
            given: path.to_path_buf(),
            canonical: Some(resolve(path)),
            id: file_id(path),
        });
    }

    /// The inputs as given.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.inputs.iter().map(|i| i.given.clone()).collect()
    }

    /// The input that `output` resolves to, if any.
    pub fn collision(&self, output: &Path) -> Option<Collision> {
        let canonical = resolve(output);
        let id = file_id(output);
        self.inputs
            .iter()
            .find(|i| {
                i.canonical.as_deref() == Some(canonical.as_path()) || (id.is_some() && i.id == id)
            })
            .map(|i| Collision {
                output: output.to_path_buf(),
                input: i.given.clone(),
            })
    }

    /// Every output in `outputs` that resolves to an input.
    pub fn collisions<'a>(&self, outputs: impl IntoIterator<Item = &'a Path>) -> Vec<Collision> {
        outputs
            .into_iter()
            .filter_map(|o| self.collision(o))
            .collect()
    }
}

/// Whether writing `dest` would write over `input` (same canonical path or same inode).
pub fn same_file(input: &Path, dest: &Path) -> bool {
    Inputs::new([input]).collision(dest).is_some()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn sees_through_dotdot_symlinks_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let stems = dir.path().join("stems");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&stems).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let bass = stems.join("bass.wav");
        std::fs::write(&bass, b"RIFF").unwrap();
        let inputs = Inputs::new([&bass]);
        assert!(inputs.collision(&out.join("../stems/bass.wav")).is_some());
        assert!(inputs
            .collision(&out.join("new/../../stems/./bass.wav"))
            .is_some());
        std::os::unix::fs::symlink(&stems, out.join("link")).unwrap();
        assert!(inputs.collision(&out.join("link/bass.wav")).is_some());
        std::fs::hard_link(&bass, out.join("hard.wav")).unwrap();
        assert!(inputs.collision(&out.join("hard.wav")).is_some());
        assert!(inputs.collision(&out.join("master.wav")).is_none());
        assert!(inputs.collision(&stems.join("bass2.wav")).is_none());
    }
}
