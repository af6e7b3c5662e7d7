//! Reading metadata from recipes and album files: the session's (and an album song's) metadata
//! keys (`isrc`, `upc`, `album`, `track`, `composer`, …, see [`crate::metadata`]) and a WAV
//! deliverable's `bext` / `ixml`, validated with errors at the recipe's line.

use super::convert::{describe, get_number, get_string, recipe_err};
use super::ScriptError;
use crate::graph::Origin;
use crate::metadata::{Metadata, TEXT_KEYS};
use crate::session::BwfDecl;
use mlua::{Table, Value};

/// The metadata keys of `t` (a session's `metadata` table, an album or an album song), checked
/// and normalized; errors point at `origin`.
pub(crate) fn read(t: &Table, origin: &Option<Origin>) -> Result<Metadata, ScriptError> {
    let mut m = Metadata::default();
    for key in TEXT_KEYS {
        let v = match t.get::<Value>(*key).map_err(ScriptError::lua)? {
            Value::Integer(i) => Some(i.to_string()),
            Value::Number(n) if *key == "upc" || *key == "date" => Some(format!("{n:.0}")),
            _ => get_string(t, key, origin)?,
        };
        if let Some(slot) = m.text_mut(key) {
            *slot = v;
        }
    }
    for (key, slot) in [("track", &mut m.track), ("track_total", &mut m.track_total)] {
        if let Some(n) = get_number(t, key, origin)? {
            if !(n >= 1.0 && n <= 99_999.0 && n.fract() == 0.0) {
                return Err(recipe_err(
                    origin,
                    format!("`{key}` = {n}: a track number is a whole number from 1"),
                ));
            }
            *slot = Some(n as u32);
        }
    }
    m.validate().map_err(|e| recipe_err(origin, e))?;
    Ok(m)
}

/// Checks the codes among a deliverable's own tags (ISRC, BARCODE/UPC/EAN), normalizing them.
pub(crate) fn check_tags(
    tags: &mut [(String, String)],
    origin: &Option<Origin>,
) -> Result<(), ScriptError> {
    for (k, v) in tags.iter_mut() {
        let key = k.to_ascii_uppercase();
        let checked = match key.as_str() {
            "ISRC" => crate::metadata::normalize_isrc(v),
            "BARCODE" | "UPC" | "EAN" => crate::metadata::normalize_upc(v),
            _ => continue,
        };
        *v = checked.map_err(|e| recipe_err(origin, format!("tag {k}: {e}")))?;
    }
    Ok(())
}

/// A deliverable's `bext = false | true | { description, originator, originator_reference }`
/// and `ixml = true`.
pub(crate) fn bwf(d: &Table, origin: &Option<Origin>) -> Result<BwfDecl, ScriptError> {
    let mut b = BwfDecl::default();
    match d.get::<Value>("bext").map_err(ScriptError::lua)? {
        Value::Nil => {}
        Value::Boolean(on) => b.bext = on,
        Value::Table(t) => {
            b.description = get_string(&t, "description", origin)?;
            b.originator = get_string(&t, "originator", origin)?;
            b.originator_reference = get_string(&t, "originator_reference", origin)?;
            for (key, v, width) in [
                ("description", &b.description, 256),
                ("originator", &b.originator, 32),
                ("originator_reference", &b.originator_reference, 32),
            ] {
                if v.as_ref().is_some_and(|s| s.len() > width) {
                    return Err(recipe_err(
                        origin,
                        format!("bext {key} is longer than its {width} characters"),
                    ));
                }
            }
        }
        other => {
            return Err(recipe_err(
                origin,
                format!(
                "`bext` must be true, false or {{ description = ..., originator = ... }}, not {}",
                describe(&other)
            ),
            ))
        }
    }
    match d.get::<Value>("ixml").map_err(ScriptError::lua)? {
        Value::Nil => {}
        Value::Boolean(on) => b.ixml = on,
        other => {
            return Err(recipe_err(
                origin,
                format!("`ixml` must be true or false, not {}", describe(&other)),
            ))
        }
    }
    Ok(b)
}
