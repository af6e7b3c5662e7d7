//! The render's judgements on real-ish material (the demo song's stems: drums, bass, keys, lead
//! with humanized timing and levels): tails and fades on the song's end, inputs never written
//! over, temporaries of a killed render removed by the next one, the loudness target's outcome,
//! non-finite samples reported, the null test in the report, and the true-peak ceiling held
//! against an independent 16× reference. The tail and the ceiling on real songs (the fluidsynth
//! corpus): tests/trust_real.rs.
use crate::common;

use common::audio::{decode, peak_db, true_peak_16x, write_wav};
use common::demo::{band_4stem_song, demo};
use std::path::{Path, PathBuf};
use stemgraph::demo::DemoOptions;
use stemgraph::render::{render, RenderError, RenderOptions, RenderResult};
use stemgraph::script::load_recipe;

/// Cuts every stem of `<dir>/stems` to `frames` (an abrupt end: the song stops on a beat).
fn cut_stems(dir: &Path, frames: usize) {
    for name in ["drums", "bass", "keys", "lead", "mix"] {
        let p = dir.join("stems").join(format!("{name}.wav"));
        let (rate, mut ch) = decode(&p);
        for c in &mut ch {
            c.truncate(frames);
        }
        write_wav(&p, &ch, rate, false);
    }
}

/// A recipe over the demo stems: strips into a master bus, a delay return on the lead, then
/// `master_chain` and `extra` (more session fields) and `deliver` (deliverables).
fn recipe(dir: &Path, session_extra: &str, master_chain: &str, deliver: &str) -> PathBuf {
    let text = format!(
        r#"local s = session {{
  title = "trust",
  {session_extra}
}}
local master = s:bus "master"
s:stem("drums", "stems/drums.wav"):to(master)
s:stem("bass", "stems/bass.wav"):to(master)
s:stem("keys", "stems/keys.wav"):to(master)
local lead = s:stem("lead", "stems/lead.wav")
lead:to(master)
local echo = s:bus "echo"
lead:to(echo, {{ gain_db = -6 }})
echo:chain {{
  delay {{ time_ms = 375, feedback_pct = 45, mix_pct = 100, low_cut_hz = 200, high_cut_hz = 7000 }},
}}:to(master)
master:chain {{ {master_chain} }}:to(s:output "main")
{deliver}
return s
"#
    );
    let p = dir.join("song.lua");
    std::fs::write(&p, text).unwrap();
    p
}

fn render_to(recipe: &Path, out: &Path) -> Result<RenderResult, RenderError> {
    let session = load_recipe(recipe).unwrap();
    render(&session, RenderOptions::new(out))
}

// ---------------------------------------------------------------------------------------------
// Tails and fades

#[test]
fn the_master_ends_at_the_song_end_plus_the_measured_tail() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 48_000;
    demo(dir.path(), rate, 16.0);
    // The song stops abruptly at 12 s, in the verse (the lead plays from 8 s): the lead's delay
    // repeats ring on after it.
    let song = 12 * rate as usize;
    cut_stems(dir.path(), song);
    let deliver = r#"s:deliver { file = "master.wav", bits = 32 }"#;

    // The whole declared tail (the delay's repeats to −120 dB, about 9 s here), nothing trimmed:
    // a threshold no float signal falls under within it.
    let full = recipe(dir.path(), "tail = { threshold_db = -200 }", "", deliver);
    let r_full = render_to(&full, &dir.path().join("full")).unwrap();
    let (_, long) = decode(&dir.path().join("full/master.wav"));
    // Where the output really falls under −120 dBFS, found here independently.
    let threshold = 10f64.powf(-120.0 / 20.0);
    let last_loud = (0..long[0].len())
        .rev()
        .find(|&i| long.iter().any(|c| c[i].abs() > threshold))
        .unwrap();
    assert!(
        last_loud > song + rate as usize / 2,
        "the delay rings on after the song"
    );
    assert!(
        r_full.tail > last_loud + 1 - song,
        "the declared tail is longer"
    );

    // The default: the master is cut at the last sample above −120 dBFS.
    let trimmed = recipe(dir.path(), "", "", deliver);
    let r = render_to(&trimmed, &dir.path().join("trim")).unwrap();
    let (_, master) = decode(&dir.path().join("trim/master.wav"));
    assert_eq!(
        master[0].len(),
        last_loud + 1,
        "ends at the song end plus the tail"
    );
    assert_eq!(
        r.tail,
        last_loud + 1 - song,
        "the result's tail is the measured one"
    );
    for (a, b) in master.iter().zip(&long) {
        assert_eq!(a[..], b[..=last_loud], "the same samples up to the end");
    }
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("trim/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report["settings"]["tail_samples"].as_u64().unwrap(),
        (last_loud + 1 - song) as u64,
        "the report's tail matches the file"
    );
    let secs = report["deliverables"][0]["analysis"]["duration_s"]
        .as_f64()
        .unwrap();
    assert!(
        (secs - (last_loud + 1) as f64 / f64::from(rate)).abs() < 1e-3,
        "{secs}"
    );

    // `max_s` bounds it.
    let bounded = recipe(dir.path(), "tail = { max_s = 0.5 }", "", deliver);
    let r = render_to(&bounded, &dir.path().join("bounded")).unwrap();
    assert_eq!(r.tail, rate as usize / 2);
    let (_, b) = decode(&dir.path().join("bounded/master.wav"));
    assert_eq!(b[0].len(), song + rate as usize / 2);

    // A fade-out ends on the master's last sample (the song's end plus the measured tail): the
    // file has the same length, its last sample is silent, and a second before the end a
    // linear fade of 2 s has the signal at half level (edits docs: "Song edits and tails").
    let faded = recipe(
        dir.path(),
        r#"fade_out = { length = 2.0, shape = "linear" }"#,
        "",
        deliver,
    );
    render_to(&faded, &dir.path().join("fade")).unwrap();
    let (_, f) = decode(&dir.path().join("fade/master.wav"));
    assert_eq!(
        f[0].len(),
        master[0].len(),
        "the fade does not change the length"
    );
    let end = f[0].len();
    let fade = 2 * rate as usize;
    for (fc, mc) in f.iter().zip(&master) {
        assert_eq!(fc[end - 1], 0.0, "silent on the last sample");
        assert_eq!(
            fc[..end - fade],
            mc[..end - fade],
            "untouched before the fade"
        );
        for i in [end - fade / 2, end - fade / 4, end - 10] {
            let gain = (end - i - 1) as f64 / fade as f64;
            assert!(
                (fc[i] - mc[i] * gain).abs() < 1e-6,
                "linear fade at {i}: {} vs {}",
                fc[i],
                mc[i] * gain
            );
        }
    }
    assert!(
        f.iter()
            .zip(&master)
            .any(|(a, b)| a[end - fade / 2..] != b[end - fade / 2..]),
        "the fade changes the tail (it used to fade the silence after it)"
    );
}

#[test]
fn a_song_without_tail_ends_on_its_last_sample_and_fades_there() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 44_100, 3.0);
    let text = r#"local s = session { title = "dry", fade_out = { length = 1.0, shape = "linear" } }
local m = s:bus "m"
for _, n in ipairs { "drums", "bass", "keys", "lead" } do s:stem(n, "stems/" .. n .. ".wav"):to(m) end
m:to(s:output "main")
s:deliver { file = "dry.wav", bits = 32 }
return s
"#;
    std::fs::write(dir.path().join("dry.lua"), text).unwrap();
    let r = render_to(&dir.path().join("dry.lua"), &dir.path().join("out")).unwrap();
    assert_eq!(r.tail, 0);
    let (_, out) = decode(&dir.path().join("out/dry.wav"));
    let (_, mix) = decode(&dir.path().join("stems/mix.wav"));
    assert_eq!(out[0].len(), mix[0].len());
    assert_eq!(out[0][out[0].len() - 1], 0.0);
}

// ---------------------------------------------------------------------------------------------
// Inputs are sacred

/// A folder with the demo stems and a plain recipe delivering `file` into `out`.
fn sacred_project(deliver: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 48_000, 1.0);
    let text = format!(
        r#"local s = session {{ title = "sacred", reference = "stems/mix.wav" }}
local m = s:bus "m"
for _, n in ipairs {{ "drums", "bass", "keys", "lead" }} do s:stem(n, "stems/" .. n .. ".wav"):to(m) end
m:to(s:output "main")
{deliver}
return s
"#
    );
    let recipe = dir.path().join("song.lua");
    std::fs::write(&recipe, text).unwrap();
    (dir, recipe)
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Renders `recipe` into `out`, expecting a refusal that names an input; checks that no byte of
/// the project changed.
fn assert_refused(dir: &Path, recipe: &Path, out: &Path, what: &str) {
    let before = snapshot(dir);
    let err = render_to(recipe, out)
        .err()
        .unwrap_or_else(|| panic!("{what}: rendered"));
    let msg = err.to_string();
    assert!(
        msg.contains("refusing to write") && msg.contains("input"),
        "{what}: {msg}"
    );
    assert_eq!(snapshot(dir), before, "{what}: nothing may change");
}

#[cfg(unix)]
#[test]
fn no_output_path_may_resolve_to_an_input() {
    use std::os::unix::fs::symlink;
    // Deliverables: through `..`, a symbolic link and a hard link; at the session rate and at
    // another rate (spilled first), WAV and FLAC.
    for deliver in [
        r#"s:deliver { file = "../stems/bass.wav", bits = 24 }"#,
        r#"s:deliver { file = "../stems/../stems/./drums.wav", bits = 16, sample_rate_hz = 44100 }"#,
        r#"s:deliver(flac { file = "../stems/keys.wav", bits = 24 })"#,
        r#"s:deliver { file = "../song.lua", bits = 24 }"#,
        r#"s:deliver { file = "../stems/mix.wav", bits = 24 }"#,
    ] {
        let (dir, recipe) = sacred_project(deliver);
        assert_refused(dir.path(), &recipe, &dir.path().join("out"), deliver);
    }
    let (dir, recipe) = sacred_project(r#"s:deliver { file = "linked/lead.wav", bits = 24 }"#);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    symlink(dir.path().join("stems"), dir.path().join("out/linked")).unwrap();
    assert_refused(
        dir.path(),
        &recipe,
        &dir.path().join("out"),
        "symlinked folder",
    );
    let (dir, recipe) = sacred_project(r#"s:deliver { file = "hard.wav", bits = 24 }"#);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::hard_link(
        dir.path().join("stems/bass.wav"),
        dir.path().join("out/hard.wav"),
    )
    .unwrap();
    assert_refused(dir.path(), &recipe, &dir.path().join("out"), "hard link");
    let (dir, recipe) = sacred_project(r#"s:deliver { file = "sym.wav", bits = 24 }"#);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    symlink(
        dir.path().join("stems/bass.wav"),
        dir.path().join("out/sym.wav"),
    )
    .unwrap();
    assert_refused(
        dir.path(),
        &recipe,
        &dir.path().join("out"),
        "symlinked file",
    );

    // Reports: a recipe (an input) where the report goes, by name, through `..`, a link.
    let deliver = r#"s:deliver { file = "master.wav", bits = 24 }"#;
    let (dir, recipe) = sacred_project(deliver);
    let as_report = dir.path().join("report.json");
    std::fs::rename(&recipe, &as_report).unwrap();
    assert_refused(dir.path(), &as_report, dir.path(), "report over the recipe");
    assert_refused(
        dir.path(),
        &as_report,
        &dir.path().join("stems/.."),
        "report over the recipe through ..",
    );
    let (dir, recipe) = sacred_project(deliver);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::hard_link(&recipe, dir.path().join("out/report.md")).unwrap();
    assert_refused(
        dir.path(),
        &recipe,
        &dir.path().join("out"),
        "report hard-linked",
    );
    let (dir, recipe) = sacred_project(deliver);
    symlink(dir.path(), dir.path().join("here")).unwrap();
    let named = dir.path().join("report.md");
    std::fs::rename(&recipe, &named).unwrap();
    assert_refused(
        dir.path(),
        &named,
        &dir.path().join("here"),
        "report through a link",
    );

    // Spills (a deliverable at another rate, a loudness target): their temporaries folder may
    // not be an input either, nor lead into the inputs' folder.
    let spill_deliver = r#"s:deliver { file = "m44.wav", bits = 16, sample_rate_hz = 44100 }"#;
    let (dir, recipe) = sacred_project(spill_deliver);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::hard_link(
        dir.path().join("stems/bass.wav"),
        dir.path().join("out/.stemgraph-tmp"),
    )
    .unwrap();
    assert_refused(
        dir.path(),
        &recipe,
        &dir.path().join("out"),
        "spill folder hard-linked",
    );
    let (dir, recipe) = sacred_project(spill_deliver);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    symlink(
        dir.path().join("stems/keys.wav"),
        dir.path().join("out/.stemgraph-tmp"),
    )
    .unwrap();
    assert_refused(
        dir.path(),
        &recipe,
        &dir.path().join("out"),
        "spill folder symlinked",
    );
    let (dir, recipe) = sacred_project(spill_deliver);
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::hard_link(
        dir.path().join("stems/lead.wav"),
        dir.path().join("a/.stemgraph-tmp"),
    )
    .unwrap();
    assert_refused(
        dir.path(),
        &recipe,
        &dir.path().join("stems/../a"),
        "spill folder through ..",
    );
}

#[cfg(unix)]
#[test]
fn album_outputs_may_not_resolve_to_an_input() {
    use stemgraph::album::{render_album, AlbumOptions};
    use stemgraph::script::load_album;
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        sample_rate: 48_000,
        seconds: 1.0,
        ..DemoOptions::default()
    };
    for n in 1..=2 {
        band_4stem_song(dir.path(), n, &opts);
    }
    let album = |deliver: &str, name: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                r#"return album {{
  title = "A", artist = "B", template = "band_4stem",
  deliver = {{ {deliver} }},
  songs = {{ {{ title = "One", stems = "songs/01/stems" }}, {{ title = "Two", stems = "songs/02/stems" }} }},
}}
"#
            ),
        )
        .unwrap();
        p
    };
    let check = |file: &Path, out: &Path, what: &str| {
        let before = snapshot(dir.path());
        let spec = load_album(file).unwrap();
        let err = render_album(&spec, &AlbumOptions::new(out))
            .err()
            .unwrap_or_else(|| panic!("{what}: rendered"));
        let msg = err.to_string();
        assert!(msg.contains("refusing to write"), "{what}: {msg}");
        assert_eq!(snapshot(dir.path()), before, "{what}: nothing may change");
    };
    // Every song's deliverable over its own bass stem, through `..`.
    let a = album(
        r#"wav { file = "../songs/{track:02}/stems/bass.wav", bits = 24 }"#,
        "a.lua",
    );
    check(&a, &dir.path().join("out"), "album deliverable over a stem");
    // The album report over the album file (by name, and through a symbolic link).
    let b = album(
        r#"wav { file = "{track:02}.wav", bits = 24 }"#,
        "album.json",
    );
    check(&b, dir.path(), "album.json over the album file");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
    check(&b, &dir.path().join("link"), "album.json through a link");
    // A deliverable hard-linked to a stem.
    let c = album(r#"wav { file = "{track:02}.wav", bits = 24 }"#, "c.lua");
    std::fs::create_dir_all(dir.path().join("out3")).unwrap();
    std::fs::hard_link(
        dir.path().join("songs/02/stems/drums.wav"),
        dir.path().join("out3/01.wav"),
    )
    .unwrap();
    check(
        &c,
        &dir.path().join("out3"),
        "album deliverable hard-linked",
    );
}

// ---------------------------------------------------------------------------------------------
// Temporaries of a killed render

#[cfg(unix)]
#[test]
fn a_killed_renders_temporaries_are_removed_by_the_next_render() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 48_000, 30.0);
    // A loudness target (the pre-limiter spill) and a 44.1 kHz file (a spilled output).
    let recipe = recipe(
        dir.path(),
        "target_lufs = -14, ceiling_dbtp = -1",
        "limiter { ceiling_dbtp = -1 }",
        r#"s:deliver { file = "m.wav", bits = 24 }
s:deliver { file = "cd/m44.wav", bits = 16, sample_rate_hz = 44100 }"#,
    );
    let out = dir.path().join("out");
    let bin = env!("CARGO_BIN_EXE_stemgraph");
    let run = || {
        std::process::Command::new(bin)
            .args([
                "render",
                "--no-cache",
                "--threads",
                "1",
                "--block",
                "64",
                "--out",
            ])
            .arg(&out)
            .arg(&recipe)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let temp_files = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d.join(".stemgraph-tmp"))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut child = run();
    let started = std::time::Instant::now();
    // Wait for the spills to appear, then kill it.
    while temp_files(&out).is_empty() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = temp_files(&out);
    assert!(!left.is_empty(), "a killed render leaves its temporaries");
    // Nothing beside the deliverables looks like one.
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            name == ".stemgraph-tmp" || name == "cd",
            "left beside the deliverables: {name}"
        );
    }
    // The next render finds them and removes them.
    let status = run().wait().unwrap();
    assert!(status.success());
    for f in &left {
        assert!(!f.exists(), "{} is still there", f.display());
    }
    assert!(temp_files(&out).is_empty());
    assert!(
        !out.join(".stemgraph-tmp").exists(),
        "the folder goes when empty"
    );
    assert!(!out.join("cd/.stemgraph-tmp").exists());
    assert!(out.join("m.wav").is_file() && out.join("cd/m44.wav").is_file());
}

// ---------------------------------------------------------------------------------------------
// The loudness target's outcome

#[test]
fn the_loudness_target_outcome_is_one_line_and_a_field() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 48_000, 6.0);
    let bin = env!("CARGO_BIN_EXE_stemgraph");
    let go = |target: &str, strict: bool, out: &str| {
        let recipe = recipe(
            dir.path(),
            &format!("target_lufs = {target}, ceiling_dbtp = -1"),
            "limiter { ceiling_dbtp = -1 }",
            r#"s:deliver { file = "m.wav", bits = 24 }"#,
        );
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["render", "--no-cache", "--out"])
            .arg(dir.path().join(out))
            .arg(&recipe);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let report = |out: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(out).join("report.json")).unwrap(),
        )
        .unwrap()
    };

    let ok = go("-16", false, "ok");
    assert!(ok.status.success());
    let text = String::from_utf8_lossy(&ok.stdout);
    let line: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("loudness target"))
        .collect();
    assert_eq!(line.len(), 1, "{text}");
    assert!(line[0].contains("-16 LUFS: reached"), "{}", line[0]);
    let t = &report("ok")["loudness_target"];
    assert_eq!(t["reached"], true);
    assert!(t["missed_by_lu"].as_f64().unwrap().abs() <= 0.1);

    // −1 LUFS under a −1 dBTP ceiling: no limiter gets there.
    let miss = go("-1", false, "miss");
    assert!(miss.status.success(), "a miss is a warning by default");
    let text = String::from_utf8_lossy(&miss.stdout);
    let line: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("loudness target"))
        .collect();
    assert_eq!(line.len(), 1, "{text}");
    assert!(
        line[0].contains("-1 LUFS: not reached (by ") && line[0].contains("because"),
        "{}",
        line[0]
    );
    let t = &report("miss")["loudness_target"];
    assert_eq!(t["reached"], false);
    let by = t["missed_by_lu"].as_f64().unwrap();
    assert!(by > 0.1, "{by}");
    let measured = t["integrated_lufs"].as_f64().unwrap();
    assert!((measured - (-1.0 - by)).abs() < 0.01);
    assert!(t["reason"].as_str().unwrap().contains("limiter"));

    // --strict: an error, and nothing written.
    let strict = go("-1", true, "strict");
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(
        err.contains("not reached") && err.contains("--strict"),
        "{err}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path().join("strict"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
    // --strict with a reachable target renders as usual.
    assert!(go("-16", true, "strict_ok").status.success());
}

// ---------------------------------------------------------------------------------------------
// Non-finite samples and the null test

#[test]
fn non_finite_samples_are_muted_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 48_000, 3.0);
    let keys = dir.path().join("stems/keys.wav");
    let (rate, mut ch) = decode(&keys);
    for k in 0..10 {
        ch[0][48_000 + 100 * k] = f64::NAN;
    }
    ch[1][96_000] = f64::INFINITY;
    write_wav(&keys, &ch, rate, true);
    let recipe = recipe(
        dir.path(),
        r#"reference = "stems/mix.wav""#,
        "eq { bands = { high_pass { freq_hz = 30 } } }",
        r#"s:deliver { file = "m.wav", bits = 32 }"#,
    );
    let bin = env!("CARGO_BIN_EXE_stemgraph");
    let out = std::process::Command::new(bin)
        .args(["render", "--no-cache", "--out"])
        .arg(dir.path().join("out"))
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stem `keys`: 11 non-finite samples") && err.contains("0:01.000"),
        "{err}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("stem `keys`: 11 non-finite"),
        "{warnings}"
    );
    let (_, m) = decode(&dir.path().join("out/m.wav"));
    assert!(m.iter().flatten().all(|x| x.is_finite()));
    // Muted where they were, not from there on: the filter after them still passes music.
    assert!(peak_db(&m[0][100_000..140_000]) > -40.0);
}

#[test]
fn render_runs_the_null_test_when_the_recipe_has_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 48_000, 3.0);
    let recipe = recipe(
        dir.path(),
        r#"reference = "stems/mix.wav""#,
        "",
        r#"s:deliver { file = "m.wav", bits = 24 }"#,
    );
    render_to(&recipe, &dir.path().join("out")).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let nt = &report["null_test"];
    assert!(nt.is_object(), "{nt}");
    // The stems sum to the reference to the 24-bit floor.
    assert!(nt["residual_rms_dbfs"].as_f64().unwrap() < -120.0, "{nt}");
    // A stem left out shows (the keys: the intro's instrument).
    let bad = dir.path().join("bad.lua");
    let text = std::fs::read_to_string(&recipe).unwrap();
    let without = text.replace(r#"s:stem("keys", "stems/keys.wav"):to(master)"#, "");
    assert_ne!(text, without);
    std::fs::write(&bad, without).unwrap();
    render_to(&bad, &dir.path().join("bad")).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bad/report.json")).unwrap())
            .unwrap();
    assert!(report["null_test"]["residual_rms_dbfs"].as_f64().unwrap() > -60.0);
}

// ---------------------------------------------------------------------------------------------
// The ceiling against a 16× reference

#[test]
fn the_16x_reference_agrees_with_known_peaks() {
    // A full-scale sine at fs/4 sampled at ±45°: the samples read −3.01 dB, the true peak 0 dB.
    // Faded in and out over 2000 samples (a file that starts on a full-scale sample is a step).
    let n = 48_000;
    let x: Vec<f64> = (0..n)
        .map(|i| {
            let edge = (i.min(n - 1 - i) as f64 / 2000.0).min(1.0);
            let taper = 0.5 - 0.5 * (std::f64::consts::PI * edge).cos();
            taper * (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin()
        })
        .collect();
    assert!((peak_db(&x[4000..8000]) + 3.0103).abs() < 1e-3);
    assert!(true_peak_16x(&x).abs() < 0.005, "{}", true_peak_16x(&x));
}

#[test]
fn the_ceiling_holds_against_a_16x_reference() {
    for rate in [44_100, 48_000] {
        let dir = tempfile::tempdir().unwrap();
        demo(dir.path(), rate, 12.0);
        // Targets driving the master limiter, and (target 0) no master limiter at all: the
        // safety limiter alone holds a master pushed 10 dB into the ceiling.
        for (target, ceiling) in [(-9.0, -1.0), (-6.0, -1.0), (-9.0, -0.3), (0.0, -1.0)] {
            let (session, chain) = if target == 0.0 {
                (
                    format!("ceiling_dbtp = {ceiling}"),
                    "gain { gain_db = 10 }".to_string(),
                )
            } else {
                (
                    format!("target_lufs = {target}, ceiling_dbtp = {ceiling}"),
                    format!("limiter {{ ceiling_dbtp = {ceiling} }}"),
                )
            };
            let recipe = recipe(
                dir.path(),
                &session,
                &format!(
                    "eq {{ bands = {{ high_shelf {{ freq_hz = 8000, gain_db = 4 }} }} }}, {chain}"
                ),
                r#"s:deliver { file = "m24.wav", bits = 24 }
s:deliver { file = "m16.wav", bits = 16, sample_rate_hz = 44100 }
s:deliver { file = "m32.wav", bits = 32 }"#,
            );
            let out = dir.path().join(format!("out{target}{ceiling}"));
            render_to(&recipe, &out).unwrap();
            for f in ["m24.wav", "m16.wav", "m32.wav"] {
                let (_, ch) = decode(&out.join(f));
                let tp = ch.iter().map(|c| true_peak_16x(c)).fold(f64::MIN, f64::max);
                eprintln!("{rate} Hz, target {target}, ceiling {ceiling}: {f} {tp:.4} dBTP (16x)");
                assert!(
                    tp <= ceiling,
                    "{rate} Hz, target {target}, ceiling {ceiling}: {f} peaks at {tp:.4} dBTP by 16x"
                );
                // And not needlessly low: the safety margin costs little.
                assert!(tp > ceiling - 0.5, "{f}: {tp:.3}");
            }
        }
    }
}
