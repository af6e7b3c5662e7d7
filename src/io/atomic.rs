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

    /// Renames the finished temporary file over the destination.
    pub fn commit(mut self) -> Result<PathBuf, OutputError> {
        fs::rename(&self.tmp, &self.dest).map_err(|source| OutputError::Io {
            path: self.dest.clone(),
            source,
        })?;
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
