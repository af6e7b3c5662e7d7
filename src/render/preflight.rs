//! Before anything is rendered: every path the render will write, checked against every file it
//! reads ([`crate::io::paths`]). A deliverable, report, spill or cache entry that resolves to an
//! input (a stem, the reference, the recipe, a module or template) — by its path, through `..`,
//! a symbolic link or a hard link — stops the render with an error naming both, and nothing is
//! written.

use super::{deliver::expand_file_name, RenderError, RenderOptions};
use crate::io::atomic::OutputError;
use crate::io::paths::Inputs;
use crate::session::Session;
use std::path::{Path, PathBuf};

/// The files `session` reads: its stems, reference, recipe and every module and template the
/// recipe loaded.
pub fn inputs_of(session: &Session) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = session.stems.iter().map(|s| s.path.clone()).collect();
    files.extend(session.reference.clone());
    files.push(session.recipe.clone());
    files.extend(session.loaded_files.iter().cloned());
    files
}

/// The files a render of `session` with `opts` writes: its deliverables, its report, its
/// temporaries folders and its stem-cache entries.
pub fn outputs_of(session: &Session, opts: &RenderOptions) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in &session.deliverables {
        let dest = opts.out_dir.join(expand_file_name(&d.file, session));
        if let Some(dir) = dest.parent() {
            out.push(crate::io::temp::dir_for(dir));
        }
        out.push(dest);
    }
    out.push(crate::io::temp::dir_for(&opts.out_dir));
    if opts.report {
        out.push(opts.out_dir.join(super::report::REPORT_JSON));
        out.push(opts.out_dir.join(super::report::REPORT_MD));
        out.extend(opts.stem_cache.dir().map(Path::to_path_buf));
    }
    out
}

/// Refuses the render when an output of it resolves to one of its inputs.
pub fn check(session: &Session, opts: &RenderOptions) -> Result<(), RenderError> {
    check_paths(&inputs_of(session), &outputs_of(session, opts)).map_err(RenderError::from)
}

/// The first of `outputs` that resolves to one of `inputs`, as an error.
pub fn check_paths(inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<(), OutputError> {
    let inputs = Inputs::new(inputs);
    match inputs
        .collisions(outputs.iter().map(PathBuf::as_path))
        .first()
    {
        Some(c) => Err(OutputError::WouldOverwriteInput {
            path: c.output.clone(),
            input: c.input.clone(),
        }),
        None => Ok(()),
    }
}
