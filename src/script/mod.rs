//! Lua recipes (control side): the sandbox, the recipe API, and the conversion of what a recipe
//! returns into a [`Session`].
//!
//! The recipe API itself is written in Lua (`prelude.lua`) on top of two values the engine
//! provides: `__stemgraph_origin()` (the recipe file and line of the caller, for error messages)
//! and `__stemgraph_kinds` (the processor kinds of the registry). A recipe builds plain tables;
//! this module reads them back, so Lua never runs after loading and never on the audio path.
//! Album files (`album { ... }`) are read the same way ([`load_album`]).

pub mod album;
mod convert;
pub mod docs;
mod metadata;
pub mod modules;
pub(crate) mod sandbox;
pub mod time;

pub use album::load_album;

use crate::graph::{GraphError, Origin};
use crate::session::Session;
use std::path::{Path, PathBuf};

/// Why a recipe could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The recipe file could not be read.
    #[error("cannot read recipe {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Lua reported an error (syntax or runtime); the message starts with file:line.
    #[error("{message}")]
    Lua {
        /// Lua's message, without a Rust backtrace.
        message: String,
    },
    /// The recipe ran but what it built is not a valid session.
    #[error("{}{message}", crate::graph::spec::at(.origin))]
    Recipe {
        /// Where the bad value was written.
        origin: Option<Origin>,
        /// What is wrong.
        message: String,
    },
    /// The graph the recipe built does not validate.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl ScriptError {
    fn lua(e: mlua::Error) -> ScriptError {
        ScriptError::Lua {
            message: sandbox::message_of(&e),
        }
    }
}

/// The name Lua uses for `path` in messages: as the user wrote it.
fn chunk_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Loads a recipe file and returns the session it describes.
pub fn load_recipe(path: &Path) -> Result<Session, ScriptError> {
    let source = std::fs::read(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let lua = sandbox::new_lua().map_err(ScriptError::lua)?;
    lua.set_app_data(modules::ScriptContext::new(path));
    sandbox::install_api(&lua).map_err(ScriptError::lua)?;
    modules::install(&lua).map_err(ScriptError::lua)?;
    let value: mlua::Value =
        sandbox::run(&lua, &source, &chunk_name(path)).map_err(ScriptError::lua)?;
    let mut session = convert::session(value, path)?;
    session.loaded_files = lua
        .app_data_ref::<modules::ScriptContext>()
        .map(|c| c.loaded.clone())
        .unwrap_or_else(|| vec![path.to_path_buf()]);
    Ok(session)
}
