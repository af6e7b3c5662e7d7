//! The override file: a Lua recipe that loads the recipe unchanged (`require`) and makes the
//! proposed changes with `s:set` (the same keys as `--set`) and `s:insert` (the EQ and width
//! nodes after the mix bus), a comment on every line saying why. Written atomically, never over
//! the recipe or anything it loads.

use super::proposal::Proposal;
use super::report::MatchReport;
use super::MatchError;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The module name that loads `recipe` from an override file at `file`: the recipe's name
/// without `.lua`, when both are in the same folder.
pub fn module_name(recipe: &Path, file: &Path) -> Result<String, MatchError> {
    let dir = |p: &Path| {
        let d = p.parent().map(Path::to_path_buf).unwrap_or_default();
        let d = if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d
        };
        d.canonicalize().unwrap_or(d)
    };
    if dir(recipe) != dir(file) {
        return Err(MatchError::Usage(format!(
            "--write {}: write the override file beside the recipe ({}), which it loads with `require`",
            file.display(),
            recipe.parent().map_or(".".into(), |p| p.display().to_string())
        )));
    }
    let name = recipe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::script::modules::check_name(&name).map_err(|m| {
        MatchError::Usage(format!(
            "the recipe's file name cannot be loaded as a module: {m}"
        ))
    })?;
    Ok(name)
}

fn lua_str(s: &str) -> String {
    format!("{s:?}")
}

/// The override file's text.
pub fn override_lua(report: &MatchReport, module: &str) -> String {
    let p: &Proposal = &report.proposal;
    let mut o = String::new();
    let refs: Vec<String> = report
        .references
        .iter()
        .map(|r| format!("{} (weight {:.2})", r.path.display(), r.weight))
        .collect();
    let _ = writeln!(
        o,
        "-- Proposed by `stemgraph match` for {} against {}, amount {:.0} %.",
        report.recipe.display(),
        refs.join(", "),
        p.amount_pct
    );
    let _ = writeln!(o, "-- The recipe itself is unchanged: render this file instead (`stemgraph render THIS_FILE`),");
    let _ = writeln!(
        o,
        "-- edit any line, or copy the values you keep into the recipe."
    );
    let _ = writeln!(o, "local s = require {}\n", lua_str(module));
    if !p.stems.is_empty() {
        let _ = writeln!(
            o,
            "-- Per-stem balance, on each stem's sends (after its own chain)."
        );
        for st in &p.stems {
            for (key, from, to) in &st.sends {
                let _ = writeln!(
                    o,
                    "s:set({}, {to})  -- {} {:+.2} dB (from {from} dB): {}",
                    lua_str(key),
                    st.stem,
                    st.change_db,
                    st.why
                );
            }
        }
        o.push('\n');
    }
    let eq = p.eq.as_ref();
    let width_new = p.width.as_ref().filter(|w| !w.exists);
    if let Some(e) = eq {
        let _ = writeln!(
            o,
            "-- Tonal balance: stemgraph's own EQ bands after `{}` (mode \"side\": the side only).",
            e.after
        );
        let _ = writeln!(o, "s:insert({}, {{", lua_str(&e.after));
        let _ = writeln!(o, "  eq {{ id = {}, bands = {{", lua_str(&e.node));
        for (b, why) in e.bands.iter().zip(&e.why) {
            let q = if b.kind == crate::dsp::eq::band::BandType::Tilt {
                String::new()
            } else {
                format!(", q = {}", b.q)
            };
            let mode = if b.mode == crate::dsp::eq::band::Mode::Side {
                ", mode = \"side\""
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "    {} {{ freq_hz = {}, gain_db = {}{q}{mode} }},  -- {why}",
                b.kind.name(),
                b.freq_hz,
                b.gain_db
            );
        }
        let _ = writeln!(o, "  }} }},");
        if let Some(w) = width_new {
            let _ = writeln!(
                o,
                "  width {{ id = {}, width_pct = {} }},  -- {}",
                lua_str(&w.node),
                w.to_pct,
                w.why
            );
        }
        let _ = writeln!(o, "}})\n");
    }
    if let Some(w) = p.width.as_ref().filter(|w| w.exists) {
        let _ = writeln!(
            o,
            "s:set({}, {})  -- width from {} %: {}\n",
            lua_str(&format!("{}.width_pct", w.node)),
            w.to_pct,
            w.from_pct,
            w.why
        );
    }
    if let Some(l) = &p.loudness {
        let from = l
            .from_lufs
            .map_or("none".to_string(), |f| format!("{f} LUFS"));
        let _ = writeln!(
            o,
            "s:set(\"target_lufs\", {})  -- from {from}: {}\n",
            l.to_lufs, l.why
        );
    }
    for a in &p.automation {
        let pts: Vec<String> = a
            .points
            .iter()
            .map(|(t, v)| format!("{{ {t}, {v}, \"step\" }}"))
            .collect();
        let _ = writeln!(
            o,
            "s:automate({}, {{ {} }})  -- {}",
            lua_str(&a.param),
            pts.join(", "),
            a.why
        );
    }
    if !p.automation.is_empty() {
        o.push('\n');
    }
    o += "return s\n";
    o
}

/// Writes `text` to `path` atomically, refusing any file the recipe loaded.
pub fn write(path: &Path, text: &str, protected: &[PathBuf]) -> Result<PathBuf, MatchError> {
    let (file, mut w) = crate::io::atomic::AtomicFile::create(path, protected)?;
    let io = |source| crate::io::atomic::OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    w.write_all(text.as_bytes()).map_err(io)?;
    w.flush().map_err(io)?;
    drop(w);
    Ok(file.commit()?)
}
