//! `check --fix`: the recipe changes that make the stems null against the reference — each
//! stem's new `offset_samples`, `invert` and `gain_db`, and the missing elements to add — as
//! data, as the options to write into `s:stem(…)`, and as a text for the user (printed, or
//! written to a separate file; never into the recipe).

use super::diagnose::Verdict;
use super::{CheckReport, StemFacts};
use crate::session::Session;
use serde::Serialize;

/// The changes to one stem of the recipe (or a stem to add).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StemFix {
    /// The stem's name (for an addition: the file's name without extension).
    pub stem: String,
    /// Where the recipe declares it (`song.lua:4`), when it does.
    pub declared_at: Option<String>,
    /// The stem's file, as the recipe names it (relative to the recipe when inside its folder).
    pub file: String,
    /// New `offset_samples`.
    pub offset_samples: Option<f64>,
    /// New `invert`.
    pub invert: Option<bool>,
    /// New `gain_db`.
    pub gain_db: Option<f64>,
    /// Whether the stem is missing from the recipe and is to be added.
    pub add: bool,
}

/// A number as short as it can be written without changing the null: whole numbers as such,
/// others to 6 decimals with trailing zeros dropped.
fn number(x: f64) -> String {
    if x == x.round() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl StemFix {
    /// The options to set in `s:stem(name, path, { … })`, as Lua (`offset_samples = -37,
    /// invert = 1, gain_db = 1.000231`).
    pub fn lua_options(&self) -> String {
        let mut parts = Vec::new();
        if let Some(o) = self.offset_samples {
            parts.push(format!("offset_samples = {}", number(o)));
        }
        if let Some(i) = self.invert {
            parts.push(format!("invert = {}", u8::from(i)));
        }
        if let Some(g) = self.gain_db {
            parts.push(format!("gain_db = {}", number(g)));
        }
        parts.join(", ")
    }
}

fn rel(session: &Session, path: &std::path::Path) -> String {
    let base = session.recipe.parent().unwrap_or(std::path::Path::new(""));
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The fixes of a verdict, stems in the recipe's order, then additions.
pub(super) fn fixes(session: &Session, facts: &[StemFacts], verdict: &Verdict) -> Vec<StemFix> {
    let mut out = Vec::new();
    for (f, change) in facts.iter().zip(&verdict.changes) {
        let Some(c) = change else { continue };
        let decl = session.stems.iter().find(|s| s.name == f.name);
        out.push(StemFix {
            stem: f.name.clone(),
            declared_at: decl
                .and_then(|d| d.origin.as_ref())
                .map(|o| format!("{}:{}", o.file, o.line)),
            file: rel(session, &f.path),
            offset_samples: c.offset_samples,
            invert: c.invert,
            gain_db: c.gain_db,
            add: false,
        });
    }
    for c in &verdict.added {
        out.push(StemFix {
            stem: c.name.clone(),
            declared_at: None,
            file: rel(session, &c.path),
            offset_samples: None,
            invert: None,
            gain_db: None,
            add: true,
        });
    }
    out
}

/// The fix as a Lua-commented text: what to change in each `s:stem(…)` line, and what to add.
pub fn text(report: &CheckReport, recipe: &std::path::Path) -> String {
    let mut s = format!(
        "-- stemgraph check --fix: the changes to {} that make the stems null against the reference\n",
        recipe.display()
    );
    if let Some(nt) = &report.null_test {
        s.push_str(&format!(
            "-- residual now {:.1} dBFS RMS, with these changes {:.1} dBFS RMS\n",
            nt.residual_rms_dbfs,
            nt.after_fix_rms_dbfs.unwrap_or(nt.residual_rms_dbfs)
        ));
    }
    if report.fixes.is_empty() {
        s.push_str("-- nothing to change\n");
        return s;
    }
    for f in &report.fixes {
        if f.add {
            s.push_str(&format!(
                "-- add (missing from the recipe):\ns:stem('{}', '{}'):to(...)\n",
                f.stem, f.file
            ));
        } else {
            s.push_str(&format!(
                "-- {}{}:\ns:stem('{}', '{}', {{ {} }})\n",
                f.stem,
                f.declared_at
                    .as_ref()
                    .map(|d| format!(" (declared at {d})"))
                    .unwrap_or_default(),
                f.stem,
                f.file,
                f.lua_options()
            ));
        }
    }
    s
}
