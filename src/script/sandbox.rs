//! The Lua environment a recipe runs in.
//!
//! A recipe is often someone else's code, so the environment is built deliberately: only the
//! table, string, math, utf8 and coroutine libraries; no `dofile`, `loadfile`, `string.dump`, no
//! `io` or `os`; `load` accepts text chunks only; `math.random` is seeded so a recipe evaluates the
//! same every time; memory is limited, and an instruction budget stops runaway loops (a global
//! hook, so loops inside coroutines are caught too).

use super::modules::ScriptContext;
use crate::dsp::registry;
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Value, VmState};

/// Memory a recipe may use.
pub const MEMORY_LIMIT_BYTES: usize = 256 << 20;
/// Lua VM instructions a recipe may execute while loading.
pub const INSTRUCTION_LIMIT: u64 = 200_000_000;
const HOOK_EVERY: u32 = 10_000;

const PRELUDE: &str = include_str!("prelude.lua");

/// A fresh, sandboxed Lua state.
pub fn new_lua() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE,
        LuaOptions::default(),
    )?;
    lua.set_memory_limit(MEMORY_LIMIT_BYTES)?;
    let executed = std::sync::atomic::AtomicU64::new(0);
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_lua, _debug| {
            let n = executed.fetch_add(u64::from(HOOK_EVERY), std::sync::atomic::Ordering::Relaxed);
            if n > INSTRUCTION_LIMIT {
                Err(mlua::Error::RuntimeError(
                    "the recipe ran too long (an endless loop?) and was stopped".into(),
                ))
            } else {
                Ok(VmState::Continue)
            }
        },
    )?;
    lua.load(
        r#"
        dofile, loadfile = nil, nil
        string.dump = nil
        local raw_load = load
        function load(chunk, name, mode, env)
          if mode ~= nil and mode ~= "t" then error("only text chunks can be loaded", 2) end
          if type(chunk) == "string" and chunk:byte(1) == 27 then
            error("binary chunks cannot be loaded", 2)
          end
          if env == nil then return raw_load(chunk, name, "t") end
          return raw_load(chunk, name, "t", env)
        end
        math.randomseed(0x5eed)

        -- No hook interrupts C code, so a pattern that backtracks badly on a long subject could
        -- hang the string functions. Refuse matches whose worst case is out of reach: with q
        -- backtracking quantifiers (* + -), a subject of n characters costs up to n^(q+1) steps
        -- (n^q when anchored with ^).
        local find, match, gmatch, gsub = string.find, string.match, string.gmatch, string.gsub
        local BUDGET = 1e9
        local function guard(fname, s, p, init, plain)
          if plain or type(s) ~= "string" or type(p) ~= "string" then return end
          local q = 0
          local i, n = 1, #p
          while i <= n do
            local c = p:sub(i, i)
            if c == "%" then i = i + 1
            elseif c == "*" or c == "+" or c == "-" then q = q + 1 end
            i = i + 1
          end
          if q == 0 then return end
          local anchored = p:sub(1, 1) == "^"
          local cost = (#s + 1) ^ (anchored and q or q + 1)
          if cost > BUDGET then
            error(("string.%s: pattern %q with %d repetition(s) on a subject of %d characters could take "
              .. "too long (up to %.0e steps); use a simpler pattern or a shorter string"):format(
              fname, p, q, #s, cost), 3)
          end
        end
        function string.find(s, p, init, plain) guard("find", s, p, init, plain) return find(s, p, init, plain) end
        function string.match(s, p, init) guard("match", s, p) return match(s, p, init) end
        function string.gmatch(s, p, init) guard("gmatch", s, p) return gmatch(s, p, init) end
        function string.gsub(s, p, r, n) guard("gsub", s, p) return gsub(s, p, r, n) end
        "#,
    )
    .set_name("=sandbox")
    .exec()?;
    Ok(lua)
}

/// Installs the recipe API: the origin helper, the kind list and the prelude.
pub fn install_api(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let origin = lua.create_function(|lua, ()| Ok(caller_origin(lua)))?;
    globals.set("__stemgraph_origin", origin)?;
    let kinds = lua.create_sequence_from(registry::kinds().iter().map(|k| k.name))?;
    globals.set("__stemgraph_kinds", kinds)?;
    let parse = lua.create_function(|_, text: String| match super::time::parse_time(&text) {
        Ok(s) => Ok((Some(s), None)),
        Err(e) => Ok((None, Some(e))),
    })?;
    globals.set("__stemgraph_parse_time", parse)?;
    lua.load(PRELUDE).set_name("=stemgraph").exec()
}

/// Runs a recipe chunk and returns what it returned.
pub fn run(lua: &Lua, source: &[u8], name: &str) -> mlua::Result<Value> {
    lua.load(source)
        .set_name(format!("@{name}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .eval()
}

/// Where the caller of an API function is, as a table `{ file, line, via }`: the innermost Lua
/// frame outside the API; when that frame is in a template or module called from the recipe, the
/// recipe's line comes first and the template's line is `via`.
pub(crate) fn caller_origin(lua: &Lua) -> Option<mlua::Table> {
    let recipe = lua
        .app_data_ref::<ScriptContext>()
        .map(|c| c.recipe.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut innermost: Option<(String, usize)> = None;
    let mut in_recipe: Option<(String, usize)> = None;
    for level in 1..200 {
        let frame = lua.inspect_stack(level, |d| {
            let src = d.source();
            let source = src.source.as_deref().unwrap_or("").to_string();
            if src.what == "C" || source.starts_with('=') {
                return None;
            }
            let file = source.strip_prefix('@').unwrap_or(&source).to_string();
            Some((file, d.current_line().unwrap_or(0)))
        });
        match frame {
            None => break,
            Some(None) => continue,
            Some(Some(f)) => {
                if innermost.is_none() {
                    innermost = Some(f.clone());
                }
                if f.0 == recipe {
                    in_recipe = Some(f);
                    break;
                }
            }
        }
    }
    if in_recipe.is_none() {
        // The recipe's frame can be gone (a tail call such as `return band { ... }`): the
        // template wrapper remembered where it was called from.
        in_recipe = lua
            .app_data_ref::<ScriptContext>()
            .and_then(|c| c.call_sites.first().cloned());
    }
    let (file, line, via) = match (innermost, in_recipe) {
        (Some(inner), Some(outer)) if inner != outer => {
            (outer.0, outer.1, Some(format!("{}:{}", inner.0, inner.1)))
        }
        (Some(inner), _) => (inner.0, inner.1, None),
        (None, _) => return None,
    };
    let t = lua.create_table().ok()?;
    t.set("file", file).ok()?;
    t.set("line", line).ok()?;
    t.set("via", via).ok()?;
    Some(t)
}

/// The file and line of the Lua function at stack `level` (1 = the caller of the running
/// function), if it is a Lua function outside the API.
pub fn frame_at(lua: &Lua, level: usize) -> Option<(String, usize)> {
    lua.inspect_stack(level, |d| {
        let src = d.source();
        let source = src.source.as_deref().unwrap_or("").to_string();
        if src.what == "C" || source.starts_with('=') {
            return None;
        }
        let file = source.strip_prefix('@').unwrap_or(&source).to_string();
        Some((file, d.current_line().unwrap_or(0)))
    })
    .flatten()
}

/// The message of a Lua error as a person should read it: Lua's own `file:line: message`, without
/// tracebacks or Rust details.
pub fn message_of(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::MemoryError(_) => "the recipe used too much memory and was stopped".into(),
        mlua::Error::CallbackError { cause, .. } => message_of(cause),
        mlua::Error::WithContext { cause, .. } => message_of(cause),
        other => other.to_string(),
    }
}

/// A runtime error raised by a Rust function of the API, prefixed with the recipe location of its
/// caller as Lua's own errors are.
pub fn located_error(lua: &Lua, message: String) -> mlua::Error {
    let at = caller_origin(lua)
        .and_then(|t| {
            let file: String = t.get("file").ok()?;
            let line: u32 = t.get("line").ok()?;
            let via: Option<String> = t.get("via").ok()?;
            Some(match via {
                Some(v) => format!("{file}:{line} (via {v}): "),
                None => format!("{file}:{line}: "),
            })
        })
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{at}{message}"))
}
