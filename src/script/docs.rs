//! The recipe API reference and the LuaLS annotation file, generated from the registry.
//!
//! `docs/lua-api.md` and `lua/stemgraph.d.lua` are committed; a test regenerates both and fails
//! when they differ from the code (`STEMGRAPH_BLESS=1 cargo test --test suite api_docs` rewrites them).

use crate::dsp::kind::KindInfo;
use crate::dsp::param::Scale;
use crate::dsp::registry;
use crate::dsp::ParamInfo;
use std::fmt::Write;

/// The parameters of a kind, as built from its documentation example (mono and stereo input).
/// A `plugin` node's parameters are its plugin's: only the host's own are documented.
pub fn kind_params(kind: &KindInfo) -> Vec<ParamInfo> {
    if kind.name == crate::dsp::plugin::KIND.name {
        return crate::dsp::plugin::own_params();
    }
    let config = (kind.example)();
    registry::build(kind.name, &config, 2)
        .or_else(|_| registry::build(kind.name, &config, 1))
        .map(|b| b.processor.params().to_vec())
        .unwrap_or_default()
}

fn range(p: &ParamInfo) -> String {
    let unit = match p.unit.symbol() {
        "" => String::new(),
        ":1" => ":1".into(),
        s => format!(" {s}"),
    };
    format!("{} … {}{unit}", p.min, p.max)
}

fn param_line(p: &ParamInfo) -> String {
    let mut flags = Vec::new();
    if !p.automatable {
        flags.push("fixed".to_string());
    } else if p.glide_ms > 0.0 {
        flags.push(format!(
            "glides {} ms{}",
            p.glide_ms,
            if p.scale == Scale::Log {
                " in octaves"
            } else {
                ""
            }
        ));
    }
    format!(
        "| `{}` | {} | {} | {} | {} |",
        p.name,
        range(p),
        p.default,
        flags.join(", "),
        p.doc
    )
}

/// The Markdown reference of the recipe API.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(include_str!("api-intro.md"));
    s.push_str("\n## Processors\n\nEvery processor is a function that takes a table of options and returns a description \
                for `node:chain { ... }`. Parameters (automatable unless marked fixed) are addressed as \
                `<node id>.<param>`; numbered parts as `<node id>.<n>.<param>`. Common options of every \
                processor: `id` (the node id, default `<stem or bus>.<kind>`) and `bypass` (true: the \
                signal passes, delayed by the processor's latency).\n");
    for kind in registry::kinds() {
        let _ = write!(s, "\n### `{}`\n\n{}\n\n", kind.name, kind.doc);
        let params = kind_params(kind);
        if params.is_empty() {
            s.push_str("No parameters.\n");
            continue;
        }
        s.push_str(
            "| parameter | range | default | smoothing | what it does |\n|---|---|---|---|---|\n",
        );
        for p in &params {
            let _ = writeln!(s, "{}", param_line(p));
        }
    }
    s.push_str("\n## Stem faders\n\nEvery stem node has these parameters (`<stem>.gain_db`, `<stem>.invert`):\n\n");
    s.push_str(
        "| parameter | range | default | smoothing | what it does |\n|---|---|---|---|---|\n",
    );
    for p in crate::dsp::gain::params() {
        let _ = writeln!(s, "{}", param_line(&p));
    }
    s.push_str(
        "\n## Bus sends\n\nEvery input of a bus has a send gain `<bus>.send.<source id>.gain_db` \
         (−120 … 24 dB, default 0 or the `gain_db` of the connection, glides 20 ms).\n",
    );
    s
}

fn lua_type(p: &ParamInfo) -> &'static str {
    let _ = p;
    "number"
}

/// The LuaLS annotation file (`---@meta`).
pub fn annotations() -> String {
    let mut s = String::new();
    s.push_str(include_str!("api-annotations.lua"));
    for kind in registry::kinds() {
        let class = format!("stemgraph.{}Options", kind.name);
        let _ = writeln!(s, "\n---@class {class}: stemgraph.ProcessorOptions");
        let mut seen = std::collections::BTreeSet::new();
        for p in kind_params(kind) {
            // Numbered parts (`1.gain_db`) are set through their list option; list the plain ones.
            if p.name.contains('.') || !seen.insert(p.name.clone()) {
                continue;
            }
            let _ = writeln!(
                s,
                "---@field {}? {} {} ({})",
                p.name,
                lua_type(&p),
                p.doc,
                range(&p)
            );
        }
        for extra in extra_options(kind.name) {
            let _ = writeln!(s, "---@field {extra}");
        }
        let _ = writeln!(s, "\n--- {}", kind.doc.replace('\n', " "));
        let _ = writeln!(
            s,
            "---@param options? {class}\n---@return stemgraph.Processor"
        );
        let _ = writeln!(s, "function {}(options) end", kind.name);
    }
    s
}

/// Structural options (not parameters) of each kind, for the annotation file.
fn extra_options(kind: &str) -> Vec<String> {
    registry::find(kind)
        .map(|k| {
            (k.example)()
                .entries
                .iter()
                .filter(|(key, _)| !kind_params(k).iter().any(|p| &p.name == *key))
                .map(|(key, v)| {
                    let ty = match v {
                        crate::dsp::ConfigValue::Number(_) => "number",
                        crate::dsp::ConfigValue::Bool(_) => "boolean",
                        crate::dsp::ConfigValue::Text(_) => "string",
                        crate::dsp::ConfigValue::List(_) => "table[]",
                        crate::dsp::ConfigValue::Table(_) => "table",
                    };
                    format!("{key}? {ty}")
                })
                .collect()
        })
        .unwrap_or_default()
}
