//! Recipe mistakes come back as one message with the file and line, never a Rust backtrace.

use stemgraph::graph::{compile, CompileOptions};
use stemgraph::script::{load_recipe, ScriptError};

fn load(
    body: &str,
) -> (
    tempfile::TempDir,
    Result<stemgraph::session::Session, ScriptError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.lua");
    std::fs::write(&path, body).unwrap();
    let r = load_recipe(&path);
    (dir, r)
}

fn compile_err(body: &str) -> String {
    let (_dir, s) = load(body);
    let s = s.unwrap();
    compile(&s.graph_at(48_000.0), CompileOptions::new(48_000.0, 64))
        .err()
        .expect("the graph must be refused")
        .to_string()
}

#[test]
fn syntax_error_has_file_and_line() {
    let (_d, r) = load("local s = session {}\n\nlocal x = = 3\nreturn s\n");
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("song.lua:3:"), "{msg}");
    assert!(!msg.contains("stack backtrace"), "{msg}");
}

#[test]
fn runtime_error_has_file_and_line() {
    let (_d, r) = load("local s = session {}\nlocal t = nil\nlocal y = t.x\nreturn s\n");
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("song.lua:3:"), "{msg}");
}

#[test]
fn api_misuse_points_at_the_callers_line() {
    let (_d, r) = load("local s = session {}\n\n\ns:stem(42, 'x.wav')\nreturn s\n");
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains("song.lua:4:") && msg.contains("stem's name"),
        "{msg}"
    );
}

#[test]
fn not_returning_a_session_is_explained() {
    let (_d, r) = load("local s = session {}\n");
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("must return its session"), "{msg}");
}

#[test]
fn graph_errors_carry_the_recipe_line() {
    let msg = compile_err(
        "local s = session {}\nlocal m = s:bus 'master'\ns:stem('drums', 'd.wav'):to(m)\n\
         m:chain { gain { gain_db = 99 } }:to(s:output())\nreturn s\n",
    );
    assert!(
        msg.contains("song.lua:4:") && msg.contains("out of range"),
        "{msg}"
    );

    let msg = compile_err(
        "local s = session {}\nlocal m = s:bus 'master'\nlocal d = s:stem('drums', 'd.wav')\n\
         d:to(m)\nd:to(m)\nm:to(s:output())\nreturn s\n",
    );
    assert!(
        msg.contains("song.lua:5:") && msg.contains("twice"),
        "{msg}"
    );

    let msg = compile_err(
        "local s = session {}\nlocal m = s:bus 'master'\ns:stem('drums', 'd.wav'):to(m)\n\
         m:to(s:output())\ns:automate('drums.gain_bd', { {0, 0}, {'0:01', -3} })\nreturn s\n",
    );
    assert!(
        msg.contains("song.lua:5:") && msg.contains("drums.gain_db"),
        "{msg}"
    );
}

#[test]
fn processor_ids_follow_their_chain() {
    let (_d, s) = load(
        "local s = session {}\nlocal v = s:stem('vocals', 'v.wav')\n\
         v:chain { gain { gain_db = 1 }, pan {}, gain { gain_db = -1 } }:to(s:output())\nreturn s\n",
    );
    let ids: Vec<String> = s
        .unwrap()
        .graph
        .nodes
        .iter()
        .map(|n| n.id.clone())
        .collect();
    assert_eq!(
        ids,
        [
            "vocals",
            "vocals.gain",
            "vocals.pan",
            "vocals.gain_2",
            "main"
        ]
    );
}

/// A template in the recipe's folder, and a song calling it with a bad value.
fn template_song(song: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("graphs")).unwrap();
    std::fs::write(
        dir.path().join("graphs/strip.lua"),
        "return function(o)\n  local s = session {}\n  local m = s:bus 'master'\n\
         s:stem('vox', 'v.wav'):chain { gain { gain_db = o.gain_db } }:to(m)\n\
         m:to(s:output())\n  return s\nend\n",
    )
    .unwrap();
    let path = dir.path().join("song.lua");
    std::fs::write(&path, song).unwrap();
    match load_recipe(&path) {
        Err(e) => e.to_string(),
        Ok(s) => compile(&s.graph_at(48_000.0), CompileOptions::new(48_000.0, 64))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no error".into()),
    }
}

#[test]
fn errors_through_a_template_point_at_the_song_and_the_template() {
    let msg =
        template_song("local strip = template 'strip'\n\nreturn strip {\n  gain_db = 99,\n}\n");
    assert!(
        msg.contains("song.lua:3") && msg.contains("graphs/strip.lua:4"),
        "{msg}"
    );
    assert!(
        msg.contains("out of range") && msg.contains("-120") && msg.contains("36"),
        "{msg}"
    );
    let msg = template_song("local strip = template 'strip'\nreturn strip { gain_db = 'loud' }\n");
    assert!(
        msg.contains("song.lua:2") && msg.contains("must be a number"),
        "{msg}"
    );
}

#[test]
fn unknown_names_wrong_types_and_cycles_have_lines() {
    let msg = compile_err(
        "local s = session {}\nlocal m = s:bus 'master'\nlocal v = s:stem('vocals', 'v.wav')\n\
         v:chain { gain { gian_db = 1 } }:to(m)\nm:to(s:output())\nreturn s\n",
    );
    assert!(
        msg.contains("song.lua:4") && msg.contains("`gain_db`"),
        "{msg}"
    );
    let msg = compile_err(
        "local s = session {}\nlocal m = s:bus 'master'\nlocal a = s:bus 'a'\n\
         m:to(a)\na:to(m)\ns:stem('v', 'v.wav'):to(m)\nm:to(s:output())\nreturn s\n",
    );
    assert!(
        msg.contains("cycle") && msg.contains("`a`") && msg.contains("`master`"),
        "{msg}"
    );
    assert!(msg.contains("song.lua:"), "{msg}");
    let msg = compile_err(
        "local s = session {}\nlocal m = s:bus 'master'\ns:stem('v', 'v.wav'):to(m)\n\
         m:chain { eq { bands = { bell { freq_hz = 'high' } } } }:to(s:output())\nreturn s\n",
    );
    assert!(
        msg.contains("song.lua:4") && msg.contains("number"),
        "{msg}"
    );
}

#[test]
fn a_missing_stem_file_names_the_recipe_line() {
    let (dir, s) = load("local s = session {}\n\nlocal m = s:bus 'master'\ns:stem('drums', 'nope/drums.wav'):to(m)\nm:to(s:output())\ns:deliver { bits = 24 }\nreturn s\n");
    let err = stemgraph::render::render(
        &s.unwrap(),
        stemgraph::render::RenderOptions::new(dir.path().join("out")),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("song.lua:4") && err.contains("drums.wav"),
        "{err}"
    );
}

/// Ids starting with `__` name the nodes a render adds itself (the loudness solve's spill,
/// drive and limiter readings): a recipe may not take them.
#[test]
fn ids_starting_with_two_underscores_are_refused_with_file_and_line() {
    let (_d, r) = load(
        "local s = session {}\nlocal m = s:bus 'master'\ns:stem('drums', 'd.wav'):to(m)\n\
         m:chain { gain { id = '__target_gain', gain_db = 1 } }:to(s:output())\nreturn s\n",
    );
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("song.lua:4:"), "{msg}");
    assert!(
        msg.contains("`__target_gain`") && msg.contains("stemgraph's own"),
        "{msg}"
    );
}
