//! Reading the tables a recipe built back into a [`Session`].

use super::time::parse_time;
use super::ScriptError;
use crate::automation::Shape;
use crate::dsp::{ConfigValue, Port, ProcessorConfig};
use crate::graph::{EdgeSpec, GraphSpec, NodeKind, NodeSpec, Origin};
use crate::session::{
    AutomationDecl, Deliverable, DitherKind, FileFormat, PointDecl, Session, StemDecl,
};
use mlua::{Table, Value};
use std::path::{Path, PathBuf};

pub(crate) fn recipe_err(origin: &Option<Origin>, message: impl Into<String>) -> ScriptError {
    ScriptError::Recipe {
        origin: origin.clone(),
        message: message.into(),
    }
}

pub(crate) fn origin_of(t: &Table) -> Option<Origin> {
    let o: Table = t.get("origin").ok()?;
    Some(Origin {
        file: o.get("file").ok()?,
        line: o.get("line").ok()?,
        via: o.get("via").ok()?,
    })
}

pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) | Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Table(_) => "a table",
        Value::Function(_) => "a function",
        _ => "a value of another type",
    }
}

pub(crate) fn get_string(
    t: &Table,
    key: &str,
    origin: &Option<Origin>,
) -> Result<Option<String>, ScriptError> {
    match t.get::<Value>(key).map_err(ScriptError::lua)? {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_str().map_err(ScriptError::lua)?.to_string())),
        other => Err(recipe_err(
            origin,
            format!("`{key}` must be a string, not {}", describe(&other)),
        )),
    }
}

pub(crate) fn get_number(
    t: &Table,
    key: &str,
    origin: &Option<Origin>,
) -> Result<Option<f64>, ScriptError> {
    match t.get::<Value>(key).map_err(ScriptError::lua)? {
        Value::Nil => Ok(None),
        Value::Integer(i) => Ok(Some(i as f64)),
        Value::Number(n) => Ok(Some(n)),
        other => Err(recipe_err(
            origin,
            format!("`{key}` must be a number, not {}", describe(&other)),
        )),
    }
}

fn get_channels(t: &Table, origin: &Option<Origin>) -> Result<usize, ScriptError> {
    match get_number(t, "channels", origin)? {
        None => Ok(2),
        Some(c) if c == 1.0 || c == 2.0 => Ok(c as usize),
        Some(c) => Err(recipe_err(
            origin,
            format!("`channels` must be 1 or 2, not {c}"),
        )),
    }
}

/// A Lua value as a processor option.
fn config_value(v: Value, key: &str, origin: &Option<Origin>) -> Result<ConfigValue, ScriptError> {
    Ok(match v {
        Value::Boolean(b) => ConfigValue::Bool(b),
        Value::Integer(i) => ConfigValue::Number(i as f64),
        Value::Number(n) => ConfigValue::Number(n),
        Value::String(s) => ConfigValue::Text(s.to_str().map_err(ScriptError::lua)?.to_string()),
        Value::Table(t) => {
            let len = t.raw_len();
            let pairs = t.pairs::<Value, Value>().count();
            if len > 0 && pairs == len {
                let mut list = Vec::with_capacity(len);
                for i in 1..=len {
                    let item: Value = t.raw_get(i).map_err(ScriptError::lua)?;
                    let item_origin = match &item {
                        Value::Table(it) => origin_of(it).or_else(|| origin.clone()),
                        _ => origin.clone(),
                    };
                    list.push(config_value(item, key, &item_origin)?);
                }
                ConfigValue::List(list)
            } else {
                ConfigValue::Table(config_table(&t, origin)?)
            }
        }
        other => {
            return Err(recipe_err(
                origin,
                format!("option `{key}` cannot be {}", describe(&other)),
            ))
        }
    })
}

/// A Lua table of options as a processor configuration (the `origin` key, if any, is skipped).
fn config_table(t: &Table, origin: &Option<Origin>) -> Result<ProcessorConfig, ScriptError> {
    let mut config = ProcessorConfig::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(ScriptError::lua)?;
        let key = match k {
            Value::String(s) => s.to_str().map_err(ScriptError::lua)?.to_string(),
            other => {
                return Err(recipe_err(
                    origin,
                    format!(
                        "options are named (key = value); found a key that is {}",
                        describe(&other)
                    ),
                ))
            }
        };
        if key == "origin" || key == "kind" && matches!(v, Value::Nil) {
            continue;
        }
        let value = config_value(v, &key, origin)?;
        config.entries.insert(key, value);
    }
    Ok(config)
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Reads the session a recipe returned.
pub fn session(value: Value, recipe: &Path) -> Result<Session, ScriptError> {
    let t = session_table(value, recipe)?;
    let base = recipe.parent().map(PathBuf::from).unwrap_or_default();
    let s_origin = origin_of(&t);
    let title = get_string(&t, "title", &s_origin)?.unwrap_or_else(|| "untitled".into());
    let artist = get_string(&t, "artist", &s_origin)?;
    let sample_rate = match get_number(&t, "sample_rate_hz", &s_origin)? {
        None => None,
        Some(r) if r >= 8000.0 && r <= 384_000.0 && r.fract() == 0.0 => Some(r as u32),
        Some(r) => {
            return Err(recipe_err(
                &s_origin,
                format!("`sample_rate_hz` = {r} is not a sample rate"),
            ))
        }
    };
    let reference = get_string(&t, "reference", &s_origin)?.map(|p| resolve(&base, &p));
    let (mut graph, stems) = nodes(&t, &base)?;
    graph.edges = edges(&t)?;
    let automation = automation(&t)?;
    let dels: Table = t.get("deliverables").map_err(ScriptError::lua)?;
    let deliverables = deliverables(&dels)?;
    let target_lufs = get_number(&t, "target_lufs", &s_origin)?;
    let edits = edits(&t, &s_origin)?;
    let ceiling_dbtp = get_number(&t, "ceiling_dbtp", &s_origin)?;
    let target_tolerance_lu = get_number(&t, "target_tolerance_lu", &s_origin)?;
    if let Some(v) = target_tolerance_lu.filter(|v| !(v.is_finite() && *v > 0.0 && *v <= 10.0)) {
        return Err(recipe_err(
            &s_origin,
            format!("target_tolerance_lu = {v}: use a tolerance above 0 and up to 10 LU"),
        ));
    }
    let tail = tail_settings(&t, &s_origin)?;
    let sections = sections(&t, &s_origin)?;
    let mut metadata = match t.get::<Value>("metadata").map_err(ScriptError::lua)? {
        Value::Table(m) => super::metadata::read(&m, &s_origin)?,
        _ => crate::metadata::Metadata::default(),
    };
    metadata.resolve_origination();
    let mut session = Session {
        metadata,
        edits,
        tail,
        target_tolerance_lu,
        target_lufs,
        ceiling_dbtp,
        title,
        artist,
        recipe: recipe.to_path_buf(),
        sample_rate,
        stems,
        reference,
        graph,
        deliverables,
        automation,
        loaded_files: vec![recipe.to_path_buf()],
        sections,
    };
    apply_sets(&t, &mut session)?;
    Ok(session)
}

/// The session's `s:set(key, value)` overrides, applied in order as `--set` applies them.
fn apply_sets(t: &Table, session: &mut Session) -> Result<(), ScriptError> {
    let Some(sets) = t.get::<Option<Table>>("sets").map_err(ScriptError::lua)? else {
        return Ok(());
    };
    for set in sets.sequence_values::<Table>() {
        let set = set.map_err(ScriptError::lua)?;
        let origin = origin_of(&set);
        let key = get_string(&set, "key", &origin)?.unwrap_or_default();
        let value = get_number(&set, "value", &origin)?.unwrap_or(f64::NAN);
        session
            .apply_override(&format!("{key}={value}"))
            .map_err(|e| recipe_err(&origin, e.to_string()))?;
    }
    Ok(())
}

/// The table of a `session`, or the error of a recipe that returned something else.
fn session_table(value: Value, recipe: &Path) -> Result<Table, ScriptError> {
    match value {
        Value::Table(t)
            if t.metatable()
                .and_then(|m| m.get::<String>("__name").ok())
                .as_deref()
                == Some("session") =>
        {
            Ok(t)
        }
        other => Err(ScriptError::Recipe {
            origin: Some(Origin::new(recipe.to_string_lossy(), 1)),
            message: format!(
                "the recipe must return its session (end it with `return s`), but it returned {}",
                describe(&other)
            ),
        }),
    }
}

/// The session's nodes as a graph without edges, and its stems (engine input `i` = `stems[i]`);
/// stem paths are resolved against `base`.
fn nodes(t: &Table, base: &Path) -> Result<(GraphSpec, Vec<StemDecl>), ScriptError> {
    let mut graph = GraphSpec::new();
    let mut stems = Vec::new();
    let nodes: Table = t.get("nodes").map_err(ScriptError::lua)?;
    for node in nodes.sequence_values::<Table>() {
        let node = node.map_err(ScriptError::lua)?;
        let origin = origin_of(&node);
        let id = get_string(&node, "id", &origin)?.unwrap_or_default();
        if crate::graph::is_internal(&id) {
            return Err(recipe_err(
                &origin,
                format!(
                    "node id `{id}`: ids starting with `__` are stemgraph's own, choose another"
                ),
            ));
        }
        let kind = match get_string(&node, "type", &origin)?.as_deref() {
            Some("stem") => {
                let path = get_string(&node, "path", &origin)?.unwrap_or_default();
                let channels = get_channels(&node, &origin)?;
                let options: Table = node.get("options").map_err(ScriptError::lua)?;
                let offset_samples = get_number(&node, "offset_samples", &origin)?.unwrap_or(0.0);
                if !offset_samples.is_finite()
                    || offset_samples.abs() > crate::io::offset::MAX_OFFSET_SAMPLES
                {
                    return Err(recipe_err(
                        &origin,
                        format!("stem `{id}`: `offset_samples` = {offset_samples} is out of range"),
                    ));
                }
                stems.push(StemDecl {
                    name: id.clone(),
                    path: resolve(base, &path),
                    channels,
                    offset_samples,
                    origin: origin.clone(),
                });
                NodeKind::Source {
                    input: stems.len() - 1,
                    channels,
                    config: config_table(&options, &origin)?,
                }
            }
            Some("bus") => NodeKind::Bus {
                channels: get_channels(&node, &origin)?,
            },
            Some("output") => NodeKind::Output {
                channels: get_channels(&node, &origin)?,
            },
            Some("processor") => {
                let options: Table = node.get("options").map_err(ScriptError::lua)?;
                let kind = get_string(&node, "kind", &origin)?.unwrap_or_default();
                let mut config = config_table(&options, &origin)?;
                if kind == "plugin" {
                    plugin_config(&mut config, base);
                }
                NodeKind::Processor {
                    kind,
                    config,
                    bypass: node
                        .get::<Option<bool>>("bypass")
                        .map_err(ScriptError::lua)?
                        .unwrap_or(false),
                }
            }
            other => return Err(recipe_err(&origin, format!("unknown node type {other:?}"))),
        };
        graph.nodes.push(NodeSpec { id, kind, origin });
    }
    Ok((graph, stems))
}

/// A plugin node's options as the graph sees them: its `state` file and CLAP bundle `path`
/// resolved against the recipe's folder, its `params` at the top level like any processor's
/// parameters (so that a reload that changes only their values glides instead of crossfading).
fn plugin_config(config: &mut ProcessorConfig, base: &Path) {
    for key in ["state", "path"] {
        if let Some(ConfigValue::Text(p)) = config.entries.get_mut(key) {
            *p = resolve(base, p).to_string_lossy().into_owned();
        }
    }
    match config.entries.remove("params") {
        Some(ConfigValue::Table(params))
            if !params
                .entries
                .keys()
                .any(|k| config.entries.contains_key(k)) =>
        {
            config.entries.extend(params.entries);
        }
        // A clash or a wrong type: left for the plugin's builder to report.
        Some(other) => {
            config.entries.insert("params".into(), other);
        }
        None => {}
    }
}

/// The session's edges.
fn edges(t: &Table) -> Result<Vec<EdgeSpec>, ScriptError> {
    let mut out = Vec::new();
    let edges: Table = t.get("edges").map_err(ScriptError::lua)?;
    for edge in edges.sequence_values::<Table>() {
        let edge = edge.map_err(ScriptError::lua)?;
        let origin = origin_of(&edge);
        let port = match get_string(&edge, "port", &origin)?.as_deref() {
            None | Some("in") => Port::Main,
            Some("key") => Port::Key,
            Some(p) => {
                return Err(recipe_err(
                    &origin,
                    format!("unknown port `{p}`: use \"in\" or \"key\""),
                ))
            }
        };
        out.push(EdgeSpec {
            from: get_string(&edge, "from", &origin)?.unwrap_or_default(),
            to: get_string(&edge, "to", &origin)?.unwrap_or_default(),
            port,
            gain_db: get_number(&edge, "gain_db", &origin)?.unwrap_or(0.0),
            origin,
        });
    }
    Ok(out)
}

/// The session's automation, its points as written (seconds).
fn automation(t: &Table) -> Result<Vec<AutomationDecl>, ScriptError> {
    let mut automation = Vec::new();
    let autos: Table = t.get("automation").map_err(ScriptError::lua)?;
    for a in autos.sequence_values::<Table>() {
        let a = a.map_err(ScriptError::lua)?;
        let origin = origin_of(&a);
        let param = get_string(&a, "param", &origin)?.unwrap_or_default();
        let pts: Table = a.get("points").map_err(ScriptError::lua)?;
        let mut points = Vec::new();
        for (i, p) in pts.sequence_values::<Value>().enumerate() {
            points.push(point(p.map_err(ScriptError::lua)?, i, &origin)?);
        }
        automation.push(AutomationDecl {
            param,
            points,
            origin,
        });
    }
    Ok(automation)
}

/// Automation point `i` (0-based): `{ time, value [, shape] }`.
fn point(p: Value, i: usize, origin: &Option<Origin>) -> Result<PointDecl, ScriptError> {
    let p = match p {
        Value::Table(p) => p,
        other => {
            return Err(recipe_err(
                origin,
                format!(
                    "automation point {} must be {{ time, value }}, not {}",
                    i + 1,
                    describe(&other)
                ),
            ))
        }
    };
    let seconds = match p.get::<Value>(1).map_err(ScriptError::lua)? {
        Value::Integer(i) => i as f64,
        Value::Number(n) => n,
        Value::String(s) => parse_time(&s.to_string_lossy()).map_err(|m| recipe_err(origin, m))?,
        other => {
            return Err(recipe_err(
                origin,
                format!("a time cannot be {}", describe(&other)),
            ))
        }
    };
    let value = match p.get::<Value>(2).map_err(ScriptError::lua)? {
        Value::Integer(i) => i as f64,
        Value::Number(n) => n,
        other => {
            return Err(recipe_err(
                origin,
                format!("an automation value cannot be {}", describe(&other)),
            ))
        }
    };
    let shape = match p.get::<Option<String>>(3).map_err(ScriptError::lua)? {
        None => Shape::Linear,
        Some(name) => Shape::parse(&name).ok_or_else(|| {
            recipe_err(
                origin,
                format!(
                    "unknown shape `{name}`: use one of {}",
                    Shape::NAMES.join(", ")
                ),
            )
        })?,
    };
    Ok(PointDecl {
        seconds,
        value,
        shape,
    })
}

/// The session's trims and fades.
fn edits(t: &Table, s_origin: &Option<Origin>) -> Result<crate::session::EditsDecl, ScriptError> {
    let mut edits = crate::session::EditsDecl::default();
    if let Value::Table(trim) = t.get::<Value>("trim").map_err(ScriptError::lua)? {
        edits.start_s = get_number(&trim, "start", s_origin)?;
        edits.finish_s = get_number(&trim, "finish", s_origin)?;
    }
    for (key, slot) in [
        ("fade_in", &mut edits.fade_in),
        ("fade_out", &mut edits.fade_out),
    ] {
        if let Value::Table(f) = t.get::<Value>(key).map_err(ScriptError::lua)? {
            let shape_name = get_string(&f, "shape", s_origin)?.unwrap_or_else(|| "sine".into());
            let shape = crate::automation::FadeShape::parse(&shape_name).ok_or_else(|| {
                recipe_err(
                    s_origin,
                    format!("unknown fade shape `{shape_name}`: use linear, sine, exp or s_curve"),
                )
            })?;
            *slot = Some(crate::session::FadeDecl {
                seconds: get_number(&f, "length", s_origin)?.unwrap_or(0.0),
                shape,
            });
        }
    }
    Ok(edits)
}

/// `session { tail = { threshold_db, hold_s, max_s } }`, checked.
fn tail_settings(
    t: &Table,
    origin: &Option<Origin>,
) -> Result<crate::render::tail::TailSettings, ScriptError> {
    let mut settings = crate::render::tail::TailSettings::default();
    let Value::Table(tail) = t.get::<Value>("tail").map_err(ScriptError::lua)? else {
        return Ok(settings);
    };
    if let Some(v) = get_number(&tail, "threshold_db", origin)? {
        if !(-200.0..=-20.0).contains(&v) {
            return Err(recipe_err(
                origin,
                format!("tail threshold_db = {v}: use -200 to -20 dBFS"),
            ));
        }
        settings.threshold_db = v;
    }
    if let Some(v) = get_number(&tail, "hold_s", origin)? {
        if !(0.01..=60.0).contains(&v) {
            return Err(recipe_err(
                origin,
                format!("tail hold_s = {v}: use 0.01 to 60 s"),
            ));
        }
        settings.hold_s = v;
    }
    if let Some(v) = get_number(&tail, "max_s", origin)? {
        if !(v.is_finite() && v >= 0.0) {
            return Err(recipe_err(
                origin,
                format!("tail max_s = {v}: use 0 s or more"),
            ));
        }
        settings.max_s = Some(v);
    }
    Ok(settings)
}

/// The session's named sections, each resolved to seconds by the session's own `seconds` method
/// (so a section may be given as seconds, `m:ss`, another section or a bar), sorted by start.
fn sections(t: &Table, origin: &Option<Origin>) -> Result<Vec<(String, f64)>, ScriptError> {
    let Value::Table(list) = t.get::<Value>("sections").map_err(ScriptError::lua)? else {
        return Ok(Vec::new());
    };
    let seconds: mlua::Function = t.get("seconds").map_err(ScriptError::lua)?;
    let mut out = Vec::new();
    for pair in list.pairs::<Value, Value>() {
        let (name, time) = pair.map_err(ScriptError::lua)?;
        let Value::String(name) = name else {
            return Err(recipe_err(origin, "section names must be strings"));
        };
        let name = name.to_str().map_err(ScriptError::lua)?.to_string();
        let secs: f64 = seconds.call((t.clone(), time)).map_err(|e| {
            recipe_err(
                origin,
                format!("section `{name}`: {}", super::sandbox::message_of(&e)),
            )
        })?;
        out.push((name, secs));
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// A deliverable's `tags = { KEY = "value", ... }`, in key order (values may be numbers).
fn deliverable_tags(
    d: &Table,
    origin: &Option<Origin>,
) -> Result<Vec<(String, String)>, ScriptError> {
    let t = match d.get::<Value>("tags").map_err(ScriptError::lua)? {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(t) => t,
        other => {
            return Err(recipe_err(
                origin,
                format!(
                    "`tags` must be a table {{ KEY = \"value\" }}, not {}",
                    describe(&other)
                ),
            ))
        }
    };
    let mut tags = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(ScriptError::lua)?;
        let key = match k {
            Value::String(s) => s.to_str().map_err(ScriptError::lua)?.to_string(),
            other => {
                return Err(recipe_err(
                    origin,
                    format!("tag names are strings, not {}", describe(&other)),
                ))
            }
        };
        let value = match v {
            Value::String(s) => s.to_str().map_err(ScriptError::lua)?.to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(recipe_err(
                    origin,
                    format!("tag `{key}` must be a string, not {}", describe(&other)),
                ))
            }
        };
        tags.push((key, value));
    }
    tags.sort();
    Ok(tags)
}

/// A deliverable's preset (`preset = "spotify"`), if it names one.
fn preset_of(
    d: &Table,
    origin: &Option<Origin>,
) -> Result<Option<crate::delivery::platforms::Preset>, ScriptError> {
    use crate::delivery::platforms;
    match get_string(d, "preset", origin)? {
        None => Ok(None),
        Some(name) => platforms::platform(&name)
            .map(|p| Some(p.preset))
            .ok_or_else(|| {
                recipe_err(
                    origin,
                    format!(
                        "unknown deliverable preset `{name}`: use one of {}",
                        platforms::names()
                    ),
                )
            }),
    }
}

/// A deliverable's format: its `format`, else its preset's, else WAV.
fn format_of(
    d: &Table,
    origin: &Option<Origin>,
    preset: Option<&crate::delivery::platforms::Preset>,
) -> Result<FileFormat, ScriptError> {
    let format = match get_string(d, "format", origin)?.as_deref() {
        None => preset.map_or(FileFormat::Wav, |p| p.format),
        Some("wav") => FileFormat::Wav,
        Some("flac") => FileFormat::Flac,
        Some("mp3") => FileFormat::Mp3,
        Some("opus") => FileFormat::Opus,
        Some(other) => {
            return Err(recipe_err(
                origin,
                format!(
                "unknown deliverable format `{other}`: use \"wav\", \"flac\", \"mp3\" or \"opus\" \
                     (AAC is not offered: see docs/delivery.md)"
            ),
            ))
        }
    };
    if format.is_lossy() && !crate::io::lossy::AVAILABLE {
        return Err(recipe_err(
            origin,
            format!(
                "`{}` deliverables need the lossy encoders: this build was made without the \
                 `lossy` feature",
                format.name()
            ),
        ));
    }
    Ok(format)
}

/// The encoder settings of a lossy deliverable (`bitrate_kbps`, `codec_safe`); an error when
/// a PCM deliverable sets them.
fn lossy_of(
    d: &Table,
    origin: &Option<Origin>,
    format: FileFormat,
    preset: Option<&crate::delivery::platforms::Preset>,
) -> Result<Option<crate::io::lossy::LossySettings>, ScriptError> {
    use crate::io::lossy::{self, CodecSafe};
    let kbps = get_number(d, "bitrate_kbps", origin)?;
    let safe = match d.get::<Value>("codec_safe").map_err(ScriptError::lua)? {
        Value::Nil => None,
        Value::Boolean(true) => Some(CodecSafe::Limit),
        Value::Boolean(false) => Some(CodecSafe::Off),
        Value::String(s) => Some(match s.to_str().map_err(ScriptError::lua)?.as_ref() {
            "limit" => CodecSafe::Limit,
            "gain" => CodecSafe::Gain,
            "off" => CodecSafe::Off,
            other => {
                return Err(recipe_err(
                    origin,
                    format!("unknown codec_safe `{other}`: use \"limit\", \"gain\" or \"off\""),
                ))
            }
        }),
        other => {
            return Err(recipe_err(
                origin,
                format!(
                    "`codec_safe` must be \"limit\", \"gain\", \"off\" or a boolean, not {}",
                    describe(&other)
                ),
            ))
        }
    };
    let max_encodes = get_number(d, "max_encodes", origin)?;
    if !format.is_lossy() {
        if kbps.is_some() || safe.is_some() || max_encodes.is_some() {
            return Err(recipe_err(
                origin,
                format!(
                    "`bitrate_kbps`, `codec_safe` and `max_encodes` are for lossy deliverables (mp3, opus), not {}",
                    format.name()
                ),
            ));
        }
        return Ok(None);
    }
    let kbps = match kbps.or(preset
        .filter(|p| p.format == format)
        .and_then(|p| p.bitrate_kbps.map(f64::from)))
    {
        Some(k) => lossy::check_bitrate(format, k).map_err(|e| recipe_err(origin, e))?,
        None => lossy::default_bitrate_kbps(format),
    };
    let max = crate::render::codec_safe::MAX_ENCODES;
    let max_encodes = match max_encodes {
        None => max,
        Some(n) if n.fract() == 0.0 && (1.0..=f64::from(max)).contains(&n) => n as u32,
        Some(n) => {
            return Err(recipe_err(
                origin,
                format!("`max_encodes` = {n}: the codec-safe solve makes 1 to {max} encodes"),
            ))
        }
    };
    Ok(Some(lossy::LossySettings {
        bitrate_kbps: kbps,
        codec_safe: safe.unwrap_or_default(),
        max_encodes,
    }))
}

/// Reads a list of deliverable tables (`wav { ... }`, `flac { ... }` or plain tables).
pub(crate) fn deliverables(dels: &Table) -> Result<Vec<Deliverable>, ScriptError> {
    let mut deliverables = Vec::new();
    for d in dels.sequence_values::<Table>() {
        let d = d.map_err(ScriptError::lua)?;
        let origin = origin_of(&d);
        let preset = preset_of(&d, &origin)?;
        let format = format_of(&d, &origin, preset.as_ref())?;
        let lossy = lossy_of(&d, &origin, format, preset.as_ref())?;
        let preset_ceiling = preset.map(|p| p.ceiling_dbtp);
        // A preset's format fields apply when its format is the deliverable's (its ceiling always).
        let preset = preset.filter(|p| p.format == format);
        let bits = match get_number(&d, "bits", &origin)? {
            None if format.is_lossy() => 32,
            None => preset.map_or(24, |p| p.bits),
            Some(b) if format.is_lossy() => {
                return Err(recipe_err(
                    &origin,
                    format!(
                        "`bits` = {b}: {} deliverables are encoded from float at `bitrate_kbps`",
                        format.name()
                    ),
                ))
            }
            Some(b) if format == FileFormat::Flac && (b == 16.0 || b == 24.0) => b as u32,
            Some(b) if format == FileFormat::Flac => {
                return Err(recipe_err(
                    &origin,
                    format!("`bits` = {b}: FLAC deliverables are 16 or 24 bits"),
                ))
            }
            Some(b) if b == 16.0 || b == 24.0 || b == 32.0 => b as u32,
            Some(b) => {
                return Err(recipe_err(
                    &origin,
                    format!("`bits` = {b}: use 16, 24 or 32 (float)"),
                ))
            }
        };
        let mut tags = deliverable_tags(&d, &origin)?;
        super::metadata::check_tags(&mut tags, &origin)?;
        let bwf = super::metadata::bwf(&d, &origin)?;
        let dither = match get_string(&d, "dither", &origin)?.as_deref() {
            Some(_) if format.is_lossy() => {
                return Err(recipe_err(
                    &origin,
                    format!(
                        "`dither` is for PCM deliverables: {} encoders take float",
                        format.name()
                    ),
                ))
            }
            None if format.is_lossy() => DitherKind::None,
            None if bits == 16 => DitherKind::Tpdf,
            None | Some("none") => DitherKind::None,
            Some("tpdf") => DitherKind::Tpdf,
            Some(other) => {
                return Err(recipe_err(
                    &origin,
                    format!("unknown dither `{other}`: use \"none\" or \"tpdf\""),
                ))
            }
        };
        let sample_rate = get_number(&d, "sample_rate_hz", &origin)?
            .map(|r| r as u32)
            .or(preset.and_then(|p| p.sample_rate));
        if let Some(rate) = sample_rate {
            crate::io::lossy::check_rate(format, rate).map_err(|e| recipe_err(&origin, e))?;
        }
        let (lead_silence_s, tail_silence_s) =
            match d.get::<Value>("silence").map_err(ScriptError::lua)? {
                Value::Nil => (0.0, 0.0),
                Value::Table(t) => (
                    get_number(&t, "lead", &origin)?.unwrap_or(0.0),
                    get_number(&t, "tail", &origin)?.unwrap_or(0.0),
                ),
                other => {
                    return Err(recipe_err(
                        &origin,
                        format!(
                            "`silence` must be {{ lead = seconds, tail = seconds }}, not {}",
                            describe(&other)
                        ),
                    ))
                }
            };
        if lead_silence_s < 0.0 || tail_silence_s < 0.0 {
            return Err(recipe_err(&origin, "silence cannot be negative"));
        }
        let file = get_string(&d, "file", &origin)?.unwrap_or_else(|| match &lossy {
            Some(l) => format!("{{title}}_{}k.{}", l.bitrate_kbps, format.name()),
            None => format!(
                "{{title}}_{bits}bit{}.{}",
                sample_rate.map(|r| format!("_{r}")).unwrap_or_default(),
                format.name()
            ),
        });
        deliverables.push(Deliverable {
            file,
            format,
            tags,
            output: get_string(&d, "output", &origin)?,
            bits,
            sample_rate,
            dither,
            ceiling_dbtp: get_number(&d, "ceiling_dbtp", &origin)?.or(preset_ceiling),
            seed: get_number(&d, "seed", &origin)?.map_or(0x5eed, |v| v as u64),
            lead_silence_s,
            tail_silence_s,
            bwf,
            lossy,
            origin,
        });
    }
    Ok(deliverables)
}
