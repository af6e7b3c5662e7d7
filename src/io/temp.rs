//! Temporary files: where they live, and how a killed run's leftovers are found and removed.
//!
//! This module owns the temporaries folder. Every temporary a render makes (a deliverable's
//! partial file before its rename, a spilled pre-limiter master, a spilled output waiting for
//! its sample-rate conversion) is written to `.stemgraph-tmp/` inside the folder of the file it
//! belongs to (the same file system, so the final rename is atomic), named
//! `<pid>.<what it is>`: never beside the deliverables under a name that looks like one.
//!
//! A run that ends normally removes its temporaries. A run that is killed cannot; the next run
//! that writes into the same folder finds them and removes every file whose process is gone
//! ([`sweep`]; a process is alive when `kill(pid, 0)` says so). Files of live processes —
//! another render writing into the same folder — are left alone. Leftovers of earlier versions
//! (`.<name>.<pid>.partial` beside the deliverables) are swept the same way.

use std::path::{Path, PathBuf};

/// The temporaries folder's name.
pub const TEMP_DIR: &str = ".stemgraph-tmp";

/// The temporaries folder for files written into `dir` (`dir` itself when it is one).
pub fn dir_for(dir: &Path) -> PathBuf {
    if dir.file_name().is_some_and(|n| n == TEMP_DIR) {
        dir.to_path_buf()
    } else {
        dir.join(TEMP_DIR)
    }
}

/// A path for this process's temporary `what` among the files of `dir`
/// (`<dir>/.stemgraph-tmp/<pid>.<what>`). Creates the folder and sweeps the leftovers of
/// processes that are gone, in it and in `dir`.
pub fn path_in(dir: &Path, what: &str) -> std::io::Result<PathBuf> {
    let tmp = dir_for(dir);
    // A link would put the temporaries (and the sweep) somewhere else: the inputs' folder.
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| !m.is_dir()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} is not a folder of temporaries", tmp.display()),
        ));
    }
    std::fs::create_dir_all(&tmp)?;
    sweep(dir);
    Ok(tmp.join(format!("{}.{what}", std::process::id())))
}

/// Removes the temporaries folder of `dir` when it is empty (nothing else of this process or of
/// another one is in it).
pub fn tidy(dir: &Path) {
    let _ = std::fs::remove_dir(dir_for(dir));
}

/// Whether process `pid` is running.
#[cfg(unix)]
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether process `pid` is running (without a way to ask: assumed so, nothing is removed).
#[cfg(not(unix))]
pub fn alive(_pid: u32) -> bool {
    true
}

/// The endings of the temporaries this module's users make.
const ENDINGS: &[&str] = &[".partial", ".spill.wav"];

/// The process that left `name` in a temporaries folder (`<pid>.….partial`, `<pid>.….spill.wav`).
fn owner_in_temp_dir(name: &str) -> Option<u32> {
    if !ENDINGS.iter().any(|e| name.ends_with(e)) {
        return None;
    }
    name.split('.').next()?.parse().ok()
}

/// The process that left `name` beside the deliverables, in the layout of earlier versions
/// (`.<file>.<pid>.partial`, `.<file>.<pid>.spill.wav`).
fn owner_of_legacy(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let stem = name
        .strip_suffix(".partial")
        .or_else(|| name.strip_suffix(".spill.wav"))?;
    stem.rsplit('.').next()?.parse().ok()
}

/// Removes the temporaries of processes that are gone from `dir`'s temporaries folder (and
/// earlier versions' leftovers from `dir`); returns the files removed.
pub fn sweep(dir: &Path) -> Vec<PathBuf> {
    let me = std::process::id();
    let mut removed = Vec::new();
    let stale = |pid: Option<u32>| pid.is_some_and(|p| p != me && !alive(p));
    for (folder, owner) in [
        (dir_for(dir), owner_in_temp_dir as fn(&str) -> Option<u32>),
        (dir.to_path_buf(), owner_of_legacy),
    ] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && stale(owner(&name)) && std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn sweeps_only_the_dead() {
        let dir = tempfile::tempdir().unwrap();
        let mine = path_in(dir.path(), "a.wav.partial").unwrap();
        std::fs::write(&mine, b"x").unwrap();
        // A pid above the kernel's pid_max is never alive.
        let dead = dir_for(dir.path()).join("4194999.b.wav.partial");
        std::fs::write(&dead, b"x").unwrap();
        let legacy = dir
            .path()
            .join("..pre-limiter.4194999.spill.wav.4194999.partial");
        std::fs::write(&legacy, b"x").unwrap();
        let deliverable = dir.path().join("master.wav");
        std::fs::write(&deliverable, b"x").unwrap();
        let removed = sweep(dir.path());
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(mine.exists() && deliverable.exists());
        assert!(!dead.exists() && !legacy.exists());
        assert!(alive(std::process::id()));
        assert!(!alive(4_194_999));
    }
}
