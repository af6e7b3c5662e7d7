//! Output files that appear whole or not at all.
//!
//! Every output is written to a temporary file in the destination folder's temporaries folder
//! ([`crate::io::temp`]) and renamed over the destination only when complete, so a failed or
//! interrupted render leaves no half file (and a killed one leaves its partial file where the
//! next run removes it). An output path that resolves to one of the inputs is refused
//! ([`crate::io::paths`]): inputs are never overwritten.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The destination is one of the render's inputs.
    #[error(
        "refusing to write {}: it is {}, an input of this render (a stem, the reference, the recipe \
         or one of its modules); inputs are never overwritten: choose another file name or output folder",
        path.display(), input.display()
    )]
    WouldOverwriteInput {
        /// The destination.
        path: PathBuf,
        /// The input it resolves to.
        input: PathBuf,
    },
    /// A file-system error.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The encoder failed.
    #[error("cannot encode {path}: {message}")]
    Encode {
        /// The file concerned.
        path: PathBuf,
        /// What the encoder said.
        message: String,
    },
}

/// A file being written under a temporary name, renamed into place by [`AtomicFile::commit`] and
/// removed if dropped before.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file for `dest` (creating its folder), refusing any path in
    /// `protected` (the render's inputs).
    pub fn create(
        dest: &Path,
        protected: &[PathBuf],
    ) -> Result<(AtomicFile, BufWriter<File>), OutputError> {
        if let Some(c) = crate::io::paths::Inputs::new(protected).collision(dest) {
            return Err(OutputError::WouldOverwriteInput {
                path: dest.to_path_buf(),
                input: c.input,
            });
        }
        let io_err = |source| OutputError::Io {
            path: dest.to_path_buf(),
            source,
        };
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = crate::io::temp::path_in(dir, &format!("{name}.partial")).map_err(io_err)?;
        let file = create_in_temp_dir(&tmp).map_err(io_err)?;
        Ok((
            AtomicFile {
                dest: dest.to_path_buf(),
                tmp,
                committed: false,
            },
            BufWriter::with_capacity(1 << 16, file),
        ))
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path being written.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Puts the finished temporary file in the destination's place, in one step: the
    /// destination holds the last render's file or this one, never neither nor a part.
    ///
    /// Over an existing regular file the two are exchanged ([`exchange`]) and the old one,
    /// now under the temporary name, removed; otherwise the temporary file is renamed. A rename
    /// over an existing file makes ext4 (`auto_da_alloc`) allocate and start writing the new
    /// file's blocks within the rename, a wait of 0.07–0.09 s per file on workload M's two; an
    /// exchange does not, and the file is written back as a new file is (the same guarantee
    /// as when the destination did not exist: without `fsync`, none across a power loss).
    pub fn commit(mut self) -> Result<PathBuf, OutputError> {
        let io_err = |source| OutputError::Io {
            path: self.dest.clone(),
            source,
        };
        let replaces_file = fs::symlink_metadata(&self.dest).is_ok_and(|m| m.file_type().is_file());
        if replaces_file && exchange(&self.tmp, &self.dest).is_ok() {
            // The old file, under the temporary name: a failure to remove it leaves it for the
            // next run's tidying (crate::io::temp).
            let _ = fs::remove_file(&self.tmp);
        } else {
            fs::rename(&self.tmp, &self.dest).map_err(io_err)?;
        }
        self.committed = true;
        if let Some(dir) = self.tmp.parent().and_then(Path::parent) {
            crate::io::temp::tidy(dir);
        }
        Ok(self.dest.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
            if let Some(dir) = self.tmp.parent().and_then(Path::parent) {
                crate::io::temp::tidy(dir);
            }
        }
    }
}

/// Exchanges the directory entries `a` and `b` atomically (`renameat2` with `RENAME_EXCHANGE`;
/// Linux 3.15, on ext4, XFS, Btrfs, tmpfs…); an error where the system or the file system cannot
/// (the caller then renames).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths that outlive the call, relative to the current folder.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere there is no exchange: the caller renames.
#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Creates `tmp` in its temporaries folder. Another render of this process (an album's songs
/// share output folders) may remove the folder while it is empty ([`crate::io::temp::tidy`])
/// between `path_in` making it and this call: make it again and retry. Once the file exists the
/// folder is not empty and stays.
fn create_in_temp_dir(tmp: &Path) -> std::io::Result<File> {
    let mut attempts = 0;
    loop {
        match File::create(tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 8 => {
                attempts += 1;
                if let Some(dir) = tmp.parent() {
                    fs::create_dir_all(dir)?;
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes `bytes` to `dest` through an [`AtomicFile`] and commits it.
    fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        let (file, mut w) = AtomicFile::create(dest, &[])?;
        w.write_all(bytes).unwrap();
        w.flush().unwrap();
        drop(w);
        file.commit()
    }

    #[test]
    fn a_commit_creates_or_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("master.wav");
        write_atomically(&dest, b"first render").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"first render");
        // Over the last render's file (exchanged, the old one removed).
        write_atomically(&dest, b"second").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("master.wav")]);
    }

    #[test]
    fn a_commit_never_swaps_a_folder_out() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("taken");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("inside"), b"kept").unwrap();
        assert!(write_atomically(&dest, b"file").is_err());
        assert_eq!(fs::read(dest.join("inside")).unwrap(), b"kept");
        assert!(!crate::io::temp::dir_for(dir.path()).exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_commit_replaces_a_link_not_what_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.wav");
        fs::write(&other, b"someone else's").unwrap();
        let dest = dir.path().join("master.wav");
        std::os::unix::fs::symlink(&other, &dest).unwrap();
        write_atomically(&dest, b"render").unwrap();
        assert!(fs::symlink_metadata(&dest).unwrap().file_type().is_file());
        assert_eq!(fs::read(&dest).unwrap(), b"render");
        assert_eq!(fs::read(&other).unwrap(), b"someone else's");
    }
}
