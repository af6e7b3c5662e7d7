//! Templates and modules: other Lua files a recipe loads by name.
//!
//! `template "band_4stem"` and `require "my_helpers"` look for `NAME.lua` in the search path, in
//! order: the recipe's folder, its `graphs/` subfolder, the project's `graphs/` (the folder given
//! by `STEMGRAPH_GRAPHS`, else the one this build was made from), each folder of
//! `STEMGRAPH_PATH` (separated by `:`), and finally the templates built into the binary. A name is
//! a relative path without `..`, so a recipe cannot reach outside the search path.
//!
//! A template file returns a function that takes options and returns a session. `template`
//! returns it wrapped, so that everything the template builds remembers the recipe line that
//! called it: errors then point at the song's line first and the template's line second.

use super::sandbox::located_error;
use mlua::{Function, Lua, Value};
use std::path::{Path, PathBuf};

/// Templates shipped with stemgraph, built into the binary so it works when installed alone.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "master_chain",
        include_str!("../../graphs/master_chain.lua"),
    ),
    ("band_4stem", include_str!("../../graphs/band_4stem.lua")),
    (
        "electronic_8stem",
        include_str!("../../graphs/electronic_8stem.lua"),
    ),
];

/// Per-recipe state shared with the Lua functions of this module.
pub struct ScriptContext {
    /// The recipe file.
    pub recipe: PathBuf,
    /// Folders searched, in order.
    pub search_path: Vec<PathBuf>,
    /// Every file loaded so far (the recipe first).
    pub loaded: Vec<PathBuf>,
    /// Modules already loaded by `require`, by name.
    pub modules: Vec<(String, mlua::RegistryKey)>,
    /// Recipe locations of the template calls under way (innermost last).
    pub call_sites: Vec<(String, usize)>,
}

impl ScriptContext {
    /// The context of `recipe`, with the standard search path.
    pub fn new(recipe: &Path) -> Self {
        let dir = recipe.parent().map(PathBuf::from).unwrap_or_default();
        let mut search_path = vec![dir.clone(), dir.join("graphs")];
        match std::env::var_os("STEMGRAPH_GRAPHS") {
            Some(g) => search_path.push(PathBuf::from(g)),
            None => search_path.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs")),
        }
        if let Some(p) = std::env::var_os("STEMGRAPH_PATH") {
            search_path.extend(std::env::split_paths(&p));
        }
        Self {
            recipe: recipe.to_path_buf(),
            search_path,
            loaded: vec![recipe.to_path_buf()],
            modules: Vec::new(),
            call_sites: Vec::new(),
        }
    }
}

/// Checks that a template or module name stays inside the search path.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a template or module name: use a plain name such as \"band_4stem\" \
             (files are found only in the search path; `..` and absolute paths are refused)"
        ))
    }
}

/// Finds `NAME.lua`: the file's path and text, or a built-in template.
fn find(lua: &Lua, name: &str) -> Result<(String, Vec<u8>, Option<PathBuf>), String> {
    let ctx = lua
        .app_data_ref::<ScriptContext>()
        .expect("script context installed");
    let file = format!("{}.lua", name.trim_end_matches(".lua"));
    for dir in &ctx.search_path {
        let path = dir.join(&file);
        if path.is_file() {
            let text =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            return Ok((path.to_string_lossy().into_owned(), text, Some(path)));
        }
    }
    if let Some((n, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
        return Ok((format!("graphs/{n}.lua"), text.as_bytes().to_vec(), None));
    }
    let searched: Vec<String> = ctx
        .search_path
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let known: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "no template or module `{name}` (looked for {file} in {}; built-in templates: {}){}",
        searched.join(", "),
        known.join(", "),
        crate::suggest::did_you_mean(&crate::suggest::closest(name, known.iter()))
    ))
}

/// Loads and runs a file from the search path, returning what it returns.
fn load_file(lua: &Lua, name: &str) -> mlua::Result<Value> {
    check_name(name).map_err(|m| located_error(lua, m))?;
    let (display, text, path) = find(lua, name).map_err(|m| located_error(lua, m))?;
    if let Some(path) = path {
        let mut ctx = lua
            .app_data_mut::<ScriptContext>()
            .expect("script context installed");
        if !ctx.loaded.contains(&path) {
            ctx.loaded.push(path);
        }
    }
    lua.load(text)
        .set_name(format!("@{display}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .eval()
}

/// Installs `template` and `require`.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let template = lua.create_function(|lua, name: String| -> mlua::Result<Function> {
        let value = load_file(lua, &name)?;
        let f: Function = match value {
            Value::Function(f) => f,
            other => {
                return Err(located_error(
                    lua,
                    format!(
                        "template `{name}` must return a function (options -> session), not a {}",
                        other.type_name()
                    ),
                ))
            }
        };
        // A Rust function around the template: unlike a Lua function it keeps its caller's
        // frame even when called as `return band { ... }` (a tail call), so the recipe line of
        // the call is known and errors inside the template can point at it.
        let wrapper = lua.create_function(move |lua, args: mlua::MultiValue| {
            let site = super::sandbox::frame_at(lua, 1);
            if let Some(site) = &site {
                lua.app_data_mut::<ScriptContext>()
                    .expect("script context installed")
                    .call_sites
                    .push(site.clone());
            }
            let result = f.call::<mlua::MultiValue>(args);
            if site.is_some() {
                lua.app_data_mut::<ScriptContext>()
                    .expect("script context installed")
                    .call_sites
                    .pop();
            }
            result
        })?;
        Ok(wrapper)
    })?;
    globals.set("template", template)?;
    let require = lua.create_function(|lua, name: String| {
        if let Some(key) = lua
            .app_data_ref::<ScriptContext>()
            .expect("script context installed")
            .modules
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| lua.registry_value::<Value>(k))
        {
            return key;
        }
        let value = load_file(lua, &name)?;
        let value = if value.is_nil() {
            Value::Boolean(true)
        } else {
            value
        };
        let key = lua.create_registry_value(value.clone())?;
        lua.app_data_mut::<ScriptContext>()
            .expect("script context installed")
            .modules
            .push((name, key));
        Ok(value)
    })?;
    globals.set("require", require)?;
    Ok(())
}
