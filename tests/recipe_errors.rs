//! Recipe mistakes come back as one message with the file and line, never a Rust backtrace.
mod common;

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
