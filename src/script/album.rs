//! Reading an album file: the table `album { ... }` returns, with every song turned into a
//! [`Session`].
//!
//! A song is either a recipe file (`{ recipe = "two.lua" }`, loaded on its own like any recipe)
//! or options for a template (`{ title = "One", stems = "songs/one", vocals = { ... } }`): the
//! template (the song's `template`, else the album's) is called in the album's Lua state with the
//! song's options, the album's `master` merged under the song's, the album's `deliver` list unless
//! the song has its own, and `stems` given as a folder turned into `{ name = file }` (every audio
//! file in it by name; `mix.*` or `reference.*` becomes the reference). The album then imposes
//! its policy on every song (target, ceiling), expands the album placeholders of file names
//! (`{track:02}`, `{album}`) and sets each song's metadata: the album's defaults (`upc`, `genre`,
//! `date`, …) under the song's own (its recipe's, then the keys of its entry), and the album's
//! title, artist, track number and count over them (which become the ALBUM, ALBUMARTIST,
//! TRACKNUMBER, TRACKTOTAL, ISRC, BARCODE, … tags of every deliverable).

use super::convert::{self, describe, get_number, get_string, origin_of, recipe_err};
use super::{modules, sandbox, ScriptError};
use crate::album::spec::{
    expand_album_pattern, AlbumSpec, CdImage, DdpSpec, GainKey, Policy, PolicyMode, SongSpec,
};
use crate::graph::Origin;
use crate::metadata::Metadata;
use crate::session::Session;
use mlua::{Function, Lua, Table, Value};
use std::path::{Path, PathBuf};

/// Audio files a stems folder may hold.
const AUDIO_EXTENSIONS: &[&str] = &["wav", "wave", "flac", "aif", "aiff", "aifc", "mp3", "ogg"];
/// Song keys that belong to the album, not to the template.
const ALBUM_SONG_KEYS: &[&str] = &["recipe", "template", "gap_s"];

/// Loads an album file and every song it names.
pub fn load_album(path: &Path) -> Result<AlbumSpec, ScriptError> {
    let source = std::fs::read(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let lua = sandbox::new_lua().map_err(ScriptError::lua)?;
    lua.set_app_data(modules::ScriptContext::new(path));
    sandbox::install_api(&lua).map_err(ScriptError::lua)?;
    modules::install(&lua).map_err(ScriptError::lua)?;
    let value: Value =
        sandbox::run(&lua, &source, &super::chunk_name(path)).map_err(ScriptError::lua)?;
    let t = album_table(value, path)?;
    // `return album { ... }` is a tail call, which leaves Lua no line of the album file to
    // report: find it in the text instead.
    let text = String::from_utf8_lossy(&source);
    let album_origin = origin_of(&t).or_else(|| {
        Some(Origin::new(
            path.to_string_lossy(),
            line_of(&text, &["album {", "album{", "album("]).unwrap_or(1),
        ))
    });
    let origin = album_origin.clone();
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    let title = get_string(&t, "title", &origin)?.unwrap_or_else(|| "untitled album".into());
    let artist = get_string(&t, "artist", &origin)?;
    let policy = policy(&t, &origin)?;
    let default_gap = get_number(&t, "gap_s", &origin)?.unwrap_or(2.0);
    if default_gap.is_nan() || default_gap < 0.0 {
        return Err(recipe_err(&origin, "`gap_s` cannot be negative"));
    }
    let cd = cd_image(&t, &origin)?;
    // The album's metadata keys (`upc`, `genre`, `date`, …): defaults for every song.
    let album_meta = super::metadata::read(&t, &origin)?;
    let default_template = get_string(&t, "template", &origin)?;
    let deliver: Option<Table> = table_field(&t, "deliver", &origin)?;
    let master: Value = t.get("master").map_err(ScriptError::lua)?;
    let songs: Table = t.get("songs").map_err(ScriptError::lua)?;
    let total = songs.raw_len();

    let mut specs = Vec::new();
    let mut from_template = Vec::new();
    for (i, song) in songs.sequence_values::<Table>().enumerate() {
        let song = song.map_err(ScriptError::lua)?;
        let track = i + 1;
        let song_title = get_string(&song, "title", &album_origin)?;
        // The song's own line when its title or recipe can be found in the text.
        let origin = song_line(&text, &song)
            .map(|line| Origin::new(path.to_string_lossy(), line))
            .or_else(|| album_origin.clone());
        let name = song_title
            .clone()
            .unwrap_or_else(|| format!("track {track}"));
        let at = |e: ScriptError| match e {
            ScriptError::Recipe { origin: o, message } => ScriptError::Recipe {
                origin: o.or_else(|| origin.clone()),
                message: format!("song {track} ({name}): {message}"),
            },
            other => other,
        };
        let song_meta = super::metadata::read(&song, &origin).map_err(at)?;
        let gap = get_number(&song, "gap_s", &origin).map_err(at)?;
        let gap_before_s = if track == 1 {
            0.0
        } else {
            gap.unwrap_or(default_gap)
        };
        if gap_before_s.is_nan() || gap_before_s < 0.0 {
            return Err(at(recipe_err(&origin, "`gap_s` cannot be negative")));
        }
        let song_deliver: Option<Table> = table_field(&song, "deliver", &origin).map_err(at)?;
        let deliver = song_deliver.or_else(|| deliver.clone());
        let cx = SongCx {
            lua: &lua,
            path,
            base: &base,
            artist: artist.as_deref(),
            default_template: default_template.as_deref(),
            master: &master,
            deliver: deliver.as_ref(),
            origin: &origin,
            name: &name,
        };
        let (mut session, inputs, templated) =
            song_session(&cx, &song, song_title.as_deref(), &at)?;
        if templated {
            from_template.push(specs.len());
        }
        if session.artist.is_none() {
            session.artist = artist.clone();
        }
        let album = AlbumMeta {
            title: &title,
            artist: artist.as_deref(),
            defaults: &album_meta,
        };
        apply_album(&mut session, &policy, track, total, &album, &song_meta);
        let isrc = session.metadata.isrc.clone();
        if session.deliverables.is_empty() {
            return Err(at(recipe_err(
                &origin,
                "it has no deliverables: give the album (or the song) `deliver = { wav { bits = 24 } }`",
            )));
        }
        specs.push(SongSpec {
            track,
            session,
            isrc,
            gap_before_s,
            inputs,
        });
    }
    // Songs from templates depend on every file the album's Lua state loaded (its templates and
    // modules), not on the album file itself: a change to one song's options changes only that
    // song's session.
    let loaded: Vec<PathBuf> = lua
        .app_data_ref::<modules::ScriptContext>()
        .map(|c| c.loaded.clone())
        .unwrap_or_default();
    for i in from_template {
        specs[i].inputs = loaded.iter().filter(|p| *p != path).cloned().collect();
        specs[i].session.loaded_files = loaded.clone();
    }
    if specs.is_empty() {
        return Err(recipe_err(&album_origin, "the album has no songs"));
    }
    Ok(AlbumSpec {
        file: path.to_path_buf(),
        title,
        artist,
        policy,
        cd,
        metadata: album_meta,
        songs: specs,
    })
}

/// The table of an `album`, or the error of an album file that returned something else.
fn album_table(value: Value, path: &Path) -> Result<Table, ScriptError> {
    match value {
        Value::Table(t)
            if t.metatable()
                .and_then(|m| m.get::<String>("__name").ok())
                .as_deref()
                == Some("album") =>
        {
            Ok(t)
        }
        other => Err(ScriptError::Recipe {
            origin: Some(Origin::new(path.to_string_lossy(), 1)),
            message: format!(
                "an album file must return its album (`return album {{ ... }}`), but it returned {}",
                describe(&other)
            ),
        }),
    }
}

/// What a song's session is made with: the album's Lua state and values, and the song's own.
struct SongCx<'a> {
    lua: &'a Lua,
    /// The album file.
    path: &'a Path,
    /// Its folder.
    base: &'a Path,
    /// The album's artist.
    artist: Option<&'a str>,
    /// The album's template.
    default_template: Option<&'a str>,
    /// The album's `master` options.
    master: &'a Value,
    /// The song's deliverables (its own, else the album's).
    deliver: Option<&'a Table>,
    /// Where the song is written.
    origin: &'a Option<Origin>,
    /// Its title, or `track N`.
    name: &'a str,
}

/// The session of one song, from its recipe file or from a template called with its options;
/// with the files it depends on (a recipe's own; empty for templates, which depend on the
/// album's Lua state) and whether it came from a template. `at` places an error at the song.
fn song_session(
    cx: &SongCx,
    song: &Table,
    title: Option<&str>,
    at: &dyn Fn(ScriptError) -> ScriptError,
) -> Result<(Session, Vec<PathBuf>, bool), ScriptError> {
    let origin = cx.origin;
    if let Some(recipe) = get_string(song, "recipe", origin).map_err(at)? {
        let file = resolve(cx.base, &recipe);
        let mut s = super::load_recipe(&file)?;
        if let Some(t) = title {
            s.title = t.to_string();
        }
        if let Some(a) = get_string(song, "artist", origin)? {
            s.artist = Some(a);
        }
        if let Some(d) = cx.deliver {
            s.deliverables = convert::deliverables(d)?;
        }
        let inputs = s.loaded_files.clone();
        return Ok((s, inputs, false));
    }
    let template = get_string(song, "template", origin)?
        .or_else(|| cx.default_template.map(str::to_string))
        .ok_or_else(|| {
            at(recipe_err(
                origin,
                "say which template renders it (`template = \"band_4stem\"` on the \
                 album or the song), or give its `recipe`",
            ))
        })?;
    let options = template_options(
        cx.lua, song, cx.base, cx.name, cx.artist, cx.master, cx.deliver,
    )
    .map_err(at)?;
    let f: Function = cx
        .lua
        .globals()
        .get::<Function>("template")
        .and_then(|t| t.call::<Function>(template))
        .map_err(ScriptError::lua)?;
    let value: Value = f.call(options).map_err(ScriptError::lua)?;
    let s = convert::session(value, cx.path).map_err(at)?;
    Ok((s, Vec::new(), true))
}

/// The first line (from 1) of `text` containing one of `needles`.
fn line_of(text: &str, needles: &[&str]) -> Option<u32> {
    text.lines()
        .position(|l| needles.iter().any(|n| l.contains(n)))
        .map(|i| i as u32 + 1)
}

/// The line of a song in the album text: where its title or recipe is written, if only once.
fn song_line(text: &str, song: &Table) -> Option<u32> {
    for key in ["title", "recipe"] {
        if let Ok(Some(v)) = song.get::<Option<String>>(key) {
            let quoted = [format!("\"{v}\""), format!("'{v}'")];
            let hits: Vec<u32> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(key) && quoted.iter().any(|q| l.contains(q.as_str())))
                .map(|(i, _)| i as u32 + 1)
                .collect();
            if hits.len() == 1 {
                return Some(hits[0]);
            }
        }
    }
    None
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn table_field(
    t: &Table,
    key: &str,
    origin: &Option<Origin>,
) -> Result<Option<Table>, ScriptError> {
    match t.get::<Value>(key).map_err(ScriptError::lua)? {
        Value::Nil => Ok(None),
        Value::Table(t) => Ok(Some(t)),
        other => Err(recipe_err(
            origin,
            format!("`{key}` must be a table, not {}", describe(&other)),
        )),
    }
}

fn policy(t: &Table, origin: &Option<Origin>) -> Result<Policy, ScriptError> {
    let mut p = Policy::default();
    let Some(pt) = table_field(t, "policy", origin)? else {
        return Ok(p);
    };
    p.mode = match get_string(&pt, "mode", origin)?.as_deref() {
        None | Some("album_gain") => PolicyMode::AlbumGain,
        Some("per_track") => PolicyMode::PerTrack,
        Some(m) => {
            return Err(recipe_err(
                origin,
                format!("policy mode `{m}`: use \"album_gain\" or \"per_track\""),
            ))
        }
    };
    p.key = match get_string(&pt, "key", origin)?.as_deref() {
        None | Some("loudest") => GainKey::Loudest,
        Some("whole") => GainKey::Whole,
        Some(k) => {
            return Err(recipe_err(
                origin,
                format!("policy key `{k}`: use \"loudest\" (the loudest song on target) or \"whole\" (the album as one file)"),
            ))
        }
    };
    if let Some(v) = get_number(&pt, "target_lufs", origin)? {
        if !(-70.0..=0.0).contains(&v) {
            return Err(recipe_err(
                origin,
                format!("policy target_lufs = {v} is not a loudness target"),
            ));
        }
        p.target_lufs = v;
    }
    if let Some(v) = get_number(&pt, "ceiling_dbtp", origin)? {
        if !(-12.0..=0.0).contains(&v) {
            return Err(recipe_err(
                origin,
                format!("policy ceiling_dbtp = {v}: use -12 to 0 dBTP"),
            ));
        }
        p.ceiling_dbtp = v;
    }
    Ok(p)
}

/// `ddp = "DDP"`, `true` (the folder `DDP`) or `{ folder = …, master_id = …, pregap_s = … }`.
fn ddp_spec(c: &Table, origin: &Option<Origin>) -> Result<Option<DdpSpec>, ScriptError> {
    let mut d = DdpSpec {
        folder: "DDP".into(),
        master_id: String::new(),
        pregap_s: crate::album::ddp::MIN_FIRST_PREGAP_SECONDS,
    };
    match c.get::<Value>("ddp").map_err(ScriptError::lua)? {
        Value::Nil | Value::Boolean(false) => return Ok(None),
        Value::Boolean(true) => {}
        Value::String(s) => d.folder = s.to_str().map_err(ScriptError::lua)?.to_string(),
        Value::Table(t) => {
            if let Some(f) = get_string(&t, "folder", origin)? {
                d.folder = f;
            }
            if let Some(m) = get_string(&t, "master_id", origin)? {
                if m.len() > 48 || !m.is_ascii() {
                    return Err(recipe_err(
                        origin,
                        format!("ddp master_id `{m}`: up to 48 ASCII characters"),
                    ));
                }
                d.master_id = m;
            }
            if let Some(p) = get_number(&t, "pregap_s", origin)? {
                if !(p >= crate::album::ddp::MIN_FIRST_PREGAP_SECONDS && p <= 60.0) {
                    return Err(recipe_err(
                        origin,
                        format!(
                            "ddp pregap_s = {p}: the pre-gap before track 1 is at least 2 s                              (Red Book) and at most 60 s"
                        ),
                    ));
                }
                d.pregap_s = p;
            }
        }
        other => {
            return Err(recipe_err(
                origin,
                format!(
                    "`ddp` must be a folder name, true or {{ folder = ..., master_id = ...,                      pregap_s = ... }}, not {}",
                    describe(&other)
                ),
            ))
        }
    }
    Ok(Some(d))
}

fn cd_image(t: &Table, origin: &Option<Origin>) -> Result<Option<CdImage>, ScriptError> {
    let defaults = || CdImage {
        file: "{album}.wav".into(),
        cue: "{album}.cue".into(),
        ddp: None,
    };
    match t.get::<Value>("cd").map_err(ScriptError::lua)? {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::Boolean(true) => Ok(Some(defaults())),
        Value::Table(c) => {
            let d = defaults();
            Ok(Some(CdImage {
                file: get_string(&c, "file", origin)?.unwrap_or(d.file),
                cue: get_string(&c, "cue", origin)?.unwrap_or(d.cue),
                ddp: ddp_spec(&c, origin)?,
            }))
        }
        other => Err(recipe_err(
            origin,
            format!(
                "`cd` must be true or {{ file = ..., cue = ..., ddp = ... }}, not {}",
                describe(&other)
            ),
        )),
    }
}

/// The options a template is called with for one song.
#[allow(clippy::too_many_arguments)]
fn template_options(
    lua: &Lua,
    song: &Table,
    base: &Path,
    title: &str,
    artist: Option<&str>,
    master: &Value,
    deliver: Option<&Table>,
) -> Result<Table, ScriptError> {
    let options = lua.create_table().map_err(ScriptError::lua)?;
    for pair in song.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(ScriptError::lua)?;
        if let Value::String(s) = &k {
            let key = s.to_string_lossy();
            let metadata_key = crate::metadata::TEXT_KEYS.contains(&key.as_str())
                || key == "track"
                || key == "track_total";
            if ALBUM_SONG_KEYS.contains(&key.as_str()) || metadata_key {
                continue;
            }
        }
        options.raw_set(k, v).map_err(ScriptError::lua)?;
    }
    let set = |k: &str, v: Value| options.raw_set(k, v).map_err(ScriptError::lua);
    set(
        "title",
        Value::String(lua.create_string(title).map_err(ScriptError::lua)?),
    )?;
    if options
        .raw_get::<Value>("artist")
        .map_err(ScriptError::lua)?
        .is_nil()
    {
        if let Some(a) = artist {
            set(
                "artist",
                Value::String(lua.create_string(a).map_err(ScriptError::lua)?),
            )?;
        }
    }
    if let Value::String(folder) = options
        .raw_get::<Value>("stems")
        .map_err(ScriptError::lua)?
    {
        let folder = folder.to_string_lossy();
        let (stems, reference) = stems_in(base, &folder)?;
        let t = lua.create_table().map_err(ScriptError::lua)?;
        for (name, file) in stems {
            t.raw_set(name, file).map_err(ScriptError::lua)?;
        }
        set("stems", Value::Table(t))?;
        if let Some(r) = reference {
            if options
                .raw_get::<Value>("reference")
                .map_err(ScriptError::lua)?
                .is_nil()
            {
                set(
                    "reference",
                    Value::String(lua.create_string(&r).map_err(ScriptError::lua)?),
                )?;
            }
        }
    }
    let song_master: Value = options.raw_get("master").map_err(ScriptError::lua)?;
    let merge: Function = lua.globals().get("merge").map_err(ScriptError::lua)?;
    let merged: Value = match (master, &song_master) {
        (Value::Nil, _) => song_master.clone(),
        (m, Value::Nil) => merge
            .call((m.clone(), lua.create_table().map_err(ScriptError::lua)?))
            .map_err(ScriptError::lua)?,
        (m, s) => merge
            .call((m.clone(), s.clone()))
            .map_err(ScriptError::lua)?,
    };
    set("master", merged)?;
    if let Some(d) = deliver {
        set("deliver", Value::Table(d.clone()))?;
    }
    Ok(options)
}

/// A stems folder's stems (name, file) and its reference mix.
type StemsFolder = (Vec<(String, String)>, Option<String>);

/// The audio files of a stems folder by name (file name without extension), as paths relative
/// to the album (as written, joined), and the reference mix if the folder has one.
fn stems_in(base: &Path, folder: &str) -> Result<StemsFolder, ScriptError> {
    let dir = resolve(base, folder);
    let entries = std::fs::read_dir(&dir).map_err(|e| ScriptError::Recipe {
        origin: None,
        message: format!("cannot list the stems folder {}: {e}", dir.display()),
    })?;
    let mut stems = Vec::new();
    let mut reference = None;
    for entry in entries.flatten() {
        let p = entry.path();
        let (Some(stem), Some(ext)) = (p.file_stem(), p.extension()) else {
            continue;
        };
        let (stem, ext) = (
            stem.to_string_lossy(),
            ext.to_string_lossy().to_ascii_lowercase(),
        );
        if stem.starts_with('.') || !AUDIO_EXTENSIONS.contains(&ext.as_str()) || !p.is_file() {
            continue;
        }
        let file = format!(
            "{}/{}",
            folder.trim_end_matches('/'),
            p.file_name().unwrap_or_default().to_string_lossy()
        );
        if stem == "mix" || stem == "reference" {
            reference = Some(file);
        } else {
            stems.push((stem.into_owned(), file));
        }
    }
    if stems.is_empty() {
        return Err(ScriptError::Recipe {
            origin: None,
            message: format!("the stems folder {} holds no audio files", dir.display()),
        });
    }
    stems.sort();
    Ok((stems, reference))
}

/// What the album imposes on each song's metadata.
struct AlbumMeta<'a> {
    title: &'a str,
    artist: Option<&'a str>,
    /// The album file's metadata keys.
    defaults: &'a Metadata,
}

/// Imposes the album on a song: its loudness policy, file names and metadata (the album's
/// defaults under the song's recipe, the song entry's keys over it, then the album's title,
/// artist, UPC, track number and count).
fn apply_album(
    session: &mut Session,
    policy: &Policy,
    track: usize,
    total: usize,
    album: &AlbumMeta,
    song: &Metadata,
) {
    session.target_lufs = Some(policy.target_lufs);
    session.ceiling_dbtp = Some(policy.ceiling_dbtp);
    let mut meta = album.defaults.clone();
    meta.overlay(&session.metadata);
    meta.overlay(song);
    meta.album = Some(album.title.to_string());
    if let Some(a) = album.artist {
        meta.album_artist = Some(a.to_string());
    }
    meta.upc = album.defaults.upc.clone().or(meta.upc);
    meta.track = Some(track as u32);
    meta.track_total = Some(total as u32);
    session.metadata = meta;
    let artist = session.artist.clone();
    let isrc = session.metadata.isrc.clone();
    for d in &mut session.deliverables {
        d.file = expand_album_pattern(
            &d.file,
            Some(track),
            album.title,
            artist.as_deref(),
            isrc.as_deref(),
        );
    }
}
