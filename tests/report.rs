//! Render reports: written beside the deliverables, valid against `docs/report.schema.json`,
//! measured from the written files, identical between identical renders.
use crate::common;

use common::audio::write_wav24;
use std::path::{Path, PathBuf};
use stemgraph::analysis::analyze::analyze;
use stemgraph::analysis::check::{NullTest, Severity};
use stemgraph::dsp::AudioRef;
use stemgraph::engine::Tap;
use stemgraph::render::report::{self, sha256_file, GainReduction, RenderReport};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

/// Three stems of 2 s (noise and tones) plus one stem the recipe leaves unconnected.
fn project(recipe_body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("stems")).unwrap();
    let fs = 48_000.0;
    for (i, name) in ["bass", "drums", "vocals", "spare"].iter().enumerate() {
        let mut ch = common::noise(96_000, 0.05, i as u64 + 3);
        let tone = common::sine(96_000, 110.0 * (i + 1) as f64, 0.2, fs);
        for (c, t) in ch.iter_mut().zip(&tone) {
            for (x, y) in c.iter_mut().zip(t) {
                *x += y;
            }
        }
        write_wav24(&dir.path().join(format!("stems/{name}.wav")), &ch, 48_000);
    }
    let recipe = dir.path().join("song.lua");
    std::fs::write(&recipe, recipe_body).unwrap();
    (dir, recipe)
}

const RECIPE: &str = r#"
local s = session { title = "Report" }
local master = s:bus "master"
s:stem("bass", "stems/bass.wav", { gain_db = -2 }):to(master)
s:stem("drums", "stems/drums.wav"):to(master)
s:stem("vocals", "stems/vocals.wav"):chain { gain { gain_db = 1.5 } }:to(master)
s:stem("spare", "stems/spare.wav")
master:to(s:output "main")
s:deliver { file = "{title} 24.wav", bits = 24 }
s:deliver { file = "{title} 16.wav", bits = 16 }
return s
"#;

fn schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_valid(doc: &serde_json::Value) {
    let schema = schema();
    let v = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A tap that counts frames (someone else's tap, which the report must leave alone).
struct Counter(u64);

impl Tap for Counter {
    fn observe(&mut self, audio: AudioRef<'_>) {
        self.0 += audio.frames() as u64;
    }
}

#[test]
fn a_render_writes_a_report_that_validates_against_its_schema() {
    let (dir, recipe) = project(RECIPE);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let mut opts = RenderOptions::new(&out);
    opts.taps.push(("drums".into(), Box::new(Counter(0))));
    let (result, violations) = common::alloc_violations(|| render(&session, opts).unwrap());
    assert_eq!(violations, 0, "the report's taps must not allocate");
    // Only the caller's tap comes back.
    assert_eq!(result.taps.len(), 1);
    assert_eq!(result.taps[0].0, "drums");
    let report = result.report.expect("a report by default");

    let json = read_json(&out.join("report.json"));
    assert_valid(&json);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("# Render report: Report"), "{md}");
    assert!(md.contains("Report 16.wav"), "{md}");

    // Hashes are of the real files.
    assert_eq!(
        json["recipe"]["sha256"].as_str().unwrap(),
        sha256_file(&recipe).unwrap().0
    );
    assert_eq!(json["recipe"]["path"], "song.lua");
    let stems = json["stems"].as_array().unwrap();
    assert_eq!(stems.len(), 4);
    for s in stems {
        let name = s["name"].as_str().unwrap();
        let path = dir.path().join("stems").join(format!("{name}.wav"));
        assert_eq!(
            s["file"]["sha256"].as_str().unwrap(),
            sha256_file(&path).unwrap().0
        );
        assert_eq!(s["file"]["path"], format!("stems/{name}.wav"));
        if name == "spare" {
            assert!(s["meters"].is_null(), "an unconnected stem is not metered");
        } else {
            assert!(s["meters"]["integrated_lufs"].as_f64().unwrap() < -5.0);
        }
    }
    assert_eq!(json["engine"]["version"], env!("CARGO_PKG_VERSION"));

    // Each deliverable is measured from its file: the same figures `analyze` gives.
    let dl = json["deliverables"].as_array().unwrap();
    assert_eq!(dl.len(), 2);
    for (d, bits) in dl.iter().zip([24, 16]) {
        let name = d["file"]["path"].as_str().unwrap();
        let path = out.join(name);
        assert_eq!(d["bits"], bits);
        assert_eq!(
            d["file"]["sha256"].as_str().unwrap(),
            sha256_file(&path).unwrap().0
        );
        let mut direct = analyze(&path).unwrap().figures;
        direct.path = PathBuf::from(name);
        assert_eq!(d["analysis"], serde_json::to_value(&direct).unwrap());
        assert_eq!(d["analysis"]["effective_bits"], bits);
    }
    // The master's tap saw what the 24-bit file holds (within its quantization).
    let master_i = json["outputs"][0]["meters"]["integrated_lufs"]
        .as_f64()
        .unwrap();
    let file_i = dl[0]["analysis"]["integrated_lufs"].as_f64().unwrap();
    assert!((master_i - file_i).abs() < 0.01, "{master_i} vs {file_i}");
    // The struct the render returned is what was written.
    assert_eq!(
        report::report_json(&report).unwrap(),
        std::fs::read_to_string(out.join("report.json")).unwrap()
    );
}

#[test]
fn reports_are_sorted_and_identical_between_renders_but_for_the_run() {
    let (dir, recipe) = project(RECIPE);
    let session = load_recipe(&recipe).unwrap();
    let mut texts = Vec::new();
    for (i, block) in [1024usize, 333].iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let mut opts = RenderOptions::new(&out);
        opts.block_size = *block;
        render(&session, opts).unwrap();
        let mut v = read_json(&out.join("report.json"));
        v.as_object_mut().unwrap().remove("run");
        texts.push(serde_json::to_string_pretty(&v).unwrap());
    }
    assert_eq!(texts[0], texts[1]);
    // Keys in the file are sorted.
    let out = dir.path().join("out0");
    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    let top: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    let mut sorted = top.clone();
    sorted.sort_unstable();
    assert_eq!(top, sorted);
    assert!(text.ends_with("}\n"));
}

#[test]
fn every_optional_part_of_a_report_validates() {
    let (dir, recipe) = project(RECIPE);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let mut r: RenderReport = render(&session, RenderOptions::new(&out))
        .unwrap()
        .report
        .unwrap();
    r.artist = Some("The Testers".into());
    r.recipe_modules.push(r.recipe.clone());
    r.settings.target_lufs = Some(-14.0);
    r.settings.ceiling_dbtp = Some(-1.0);
    r.gain_reduction.push(GainReduction {
        node: "master.limiter".into(),
        kind: "limiter".into(),
        max_db: 4.25,
        mean_active_db: 1.5,
        active_percent: 37.5,
    });
    r.null_test = Some(NullTest {
        residual_rms_dbfs: -120.5,
        residual_peak_dbfs: f64::NEG_INFINITY,
        after_fix_rms_dbfs: None,
        reference_gain_db: 0.0,
        residual_band_hz: Some((1000.0, 2000.0)),
        residual_in_peaks: 0.1,
        severity: Severity::Pass,
    });
    r.warnings.push("a warning".into());
    let v: serde_json::Value = serde_json::from_str(&report::report_json(&r).unwrap()).unwrap();
    assert_valid(&v);
    assert!(v["null_test"]["residual_peak_dbfs"].is_null());
    // And the schema does reject what it does not declare.
    let mut extra = v.clone();
    extra["stems"][0]["meters"]["surprise"] = serde_json::json!(1);
    let schema = schema();
    assert!(!jsonschema::draft202012::new(&schema)
        .unwrap()
        .is_valid(&extra));
    let md = report::report_markdown(&r);
    assert!(
        md.contains("## Gain reduction") && md.contains("master.limiter"),
        "{md}"
    );
    assert!(md.contains("## Null test"), "{md}");
}

#[test]
fn no_report_when_not_asked_for() {
    let (dir, recipe) = project(RECIPE);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let mut opts = RenderOptions::new(&out);
    opts.report = false;
    let result = render(&session, opts).unwrap();
    assert!(result.report.is_none());
    assert!(!out.join("report.json").exists() && !out.join("report.md").exists());
    assert!(out.join("Report 24.wav").exists());
}

const MASTERED: &str = r#"
local s = session { title = "Mastered", target_lufs = -7, ceiling_dbtp = -1.0 }
local master = s:bus "master"
s:stem("bass", "stems/bass.wav"):chain {
  compressor { threshold_db = -30, ratio = 4, attack_ms = 10, release_ms = 100 },
}:to(master)
s:stem("drums", "stems/drums.wav"):to(master)
s:stem("vocals", "stems/vocals.wav"):to(master)
master:chain {
  limiter { ceiling_dbtp = -1.0, lookahead_ms = 1.5 },
}:to(s:output "main")
s:deliver { file = "{title} 24.wav", bits = 24 }
s:deliver { file = "{title} 16 44k1.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }
return s
"#;

#[test]
fn a_mastered_render_reports_the_limiter_the_target_and_each_deliverable_as_written() {
    let (dir, recipe) = project(MASTERED);
    let session = load_recipe(&recipe).unwrap();
    let out = dir.path().join("out");
    let result = render(&session, RenderOptions::new(&out)).unwrap();
    let json = read_json(&out.join("report.json"));
    assert_valid(&json);
    assert!(result.taps.is_empty());
    // The limiter worked and says so.
    let gr = json["gain_reduction"].as_array().unwrap();
    let lim = gr
        .iter()
        .find(|g| g["kind"] == "limiter")
        .unwrap_or_else(|| panic!("{gr:#?}"));
    assert!(lim["max_db"].as_f64().unwrap() > 0.5, "{lim}");
    assert!(lim["active_percent"].as_f64().unwrap() > 0.0, "{lim}");
    // The target outcome is there, and the delivered master is on target.
    let target = &json["loudness_target"];
    assert_eq!(target["target_lufs"], -7.0);
    let dl = json["deliverables"].as_array().unwrap();
    let i24 = dl[0]["analysis"]["integrated_lufs"].as_f64().unwrap();
    assert!((i24 - -7.0).abs() < 0.15, "{i24} {target}");
    // The CD master is measured after its own conversion and dither.
    let cd = &dl[1];
    assert_eq!(cd["sample_rate_hz"], 44_100);
    assert_eq!(cd["analysis"]["sample_rate_hz"], 44_100);
    assert_eq!(cd["analysis"]["bits"], 16);
    assert_eq!(cd["dither"], "tpdf");
    for d in dl {
        assert!(
            d["analysis"]["true_peak_dbtp"].as_f64().unwrap() <= -0.9,
            "{d}"
        );
    }
    // Stems are metered in the first pass; the master in the last.
    assert!(json["stems"][0]["meters"]["integrated_lufs"].is_number());
    let mi = json["outputs"][0]["meters"]["integrated_lufs"]
        .as_f64()
        .unwrap();
    assert!((mi - i24).abs() < 0.05, "{mi} vs {i24}");
}

/// The stem cache: a second render takes the stems' hashes and meters from it (same report),
/// a stem written again is hashed and metered again, and a render without the cache agrees.
#[test]
fn the_stem_cache_gives_the_same_report_and_follows_changed_stems() {
    use stemgraph::render::report::{StemCache, REPORT_JSON};
    let (dir, recipe) = project(RECIPE);
    // Entries are only trusted (and written) two seconds after a file last changed.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let session = load_recipe(&recipe).unwrap();
    let cache_dir = dir.path().join("cache");
    let stems_of = |out: &Path| {
        let v = read_json(&out.join(REPORT_JSON));
        v["stems"].clone()
    };
    let run = |name: &str, cached: bool| {
        let out = dir.path().join(name);
        let mut opts = RenderOptions::new(&out);
        if cached {
            opts.stem_cache = StemCache::new(Some(cache_dir.clone()));
        }
        render(&session, opts).unwrap();
        out
    };
    let plain = stems_of(&run("plain", false));
    assert!(!cache_dir.exists(), "no cache unless asked for");
    let first = stems_of(&run("first", true));
    // One entry per connected stem (the unconnected one is not metered, but hashed: stored).
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 4, "{entries:?}");
    let second = stems_of(&run("second", true));
    assert_eq!(first, plain);
    assert_eq!(second, plain);
    // The second render read the cache: an entry altered by hand shows up in its report.
    for e in &entries {
        let text = std::fs::read_to_string(e).unwrap();
        let sha = read_json(e)["sha256"].as_str().unwrap().to_string();
        std::fs::write(e, text.replace(&sha, &"f".repeat(64))).unwrap();
    }
    let altered = stems_of(&run("altered", true));
    assert!(altered
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["file"]["sha256"] == "f".repeat(64)));
    // A stem written again (same bytes) is hashed afresh.
    let bass = dir.path().join("stems/bass.wav");
    let bytes = std::fs::read(&bass).unwrap();
    std::fs::write(&bass, &bytes).unwrap();
    let after = stems_of(&run("after", true));
    let bass_sha = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "bass")
            .unwrap()["file"]["sha256"]
            .clone()
    };
    assert_eq!(bass_sha(&after), bass_sha(&plain));
    assert_eq!(
        bass_sha(&after).as_str().unwrap(),
        sha256_file(&bass).unwrap().0
    );
}

/// Deliverables of every kind: WAV and FLAC at 16 and 24 bits (each pair holding the same
/// samples), float, converted to 44.1 and 96 kHz, with silences, safety limiters and a master
/// that clips.
const MANY: &str = r#"
local s = session { title = "Many" }
local master = s:bus "master"
s:stem("bass", "stems/bass.wav", { gain_db = 12 }):to(master)
s:stem("drums", "stems/drums.wav"):to(master)
master:to(s:output "main")
s:deliver { file = "a24.wav", bits = 24 }
s:deliver { file = "a24.flac", format = "flac", bits = 24 }
s:deliver { file = "b16.wav", bits = 16 }
s:deliver { file = "b16.flac", format = "flac", bits = 16 }
s:deliver { file = "c32.wav", bits = 32, bext = false }
s:deliver { file = "d44.wav", bits = 16, sample_rate_hz = 44100, silence = { lead = 0.5, tail = 0.25 } }
s:deliver { file = "d44.flac", format = "flac", bits = 24, sample_rate_hz = 44100, ceiling_dbtp = -1 }
s:deliver { file = "e96.wav", bits = 24, sample_rate_hz = 96000, ceiling_dbtp = -3 }
s:deliver { file = "f44.wav", bits = 24, sample_rate_hz = 44100, ceiling_dbtp = -1 }
return s
"#;

/// Each deliverable is measured from its samples as they are written: the report's analysis is
/// what decoding the file gives, to the bit, for every format, rate and stage (deliverables
/// with the same samples share one measurement); the files hold what a WAV and a FLAC of the
/// same deliverable should (the same samples), and two threads write the same bytes and report.
#[test]
fn every_deliverable_is_measured_as_its_file_decodes() {
    use stemgraph::analysis::analyze::{analyze_with, AnalyzeOptions};
    let (dir, recipe) = project(MANY);
    let session = load_recipe(&recipe).unwrap();
    let mut runs = Vec::new();
    for threads in [1, 2] {
        let out = dir.path().join(format!("out{threads}"));
        let mut opts = RenderOptions::new(&out);
        opts.threads = threads;
        let result = render(&session, opts).unwrap();
        let report = result.report.expect("a report by default");
        assert_eq!(report.deliverables.len(), 9);
        for d in &report.deliverables {
            let path = out.join(&d.file.path);
            let mut decoded = analyze_with(&path, &AnalyzeOptions::figures_only())
                .unwrap()
                .figures;
            decoded.path = PathBuf::from(&d.file.path);
            assert_eq!(
                serde_json::to_value(&d.analysis).unwrap(),
                serde_json::to_value(&decoded).unwrap(),
                "{}",
                d.file.path
            );
            assert_eq!(
                format!("{:?}", d.analysis),
                format!("{decoded:?}"),
                "{}: the same figures to the bit",
                d.file.path
            );
        }
        let a = &report.deliverables;
        // The master clips where nothing limits it, and the notes say so.
        assert!(a[0].analysis.clipped_samples > 0, "{:?}", a[0].analysis);
        assert!(a[0]
            .analysis
            .notes
            .iter()
            .any(|n| n.starts_with("clipping")));
        assert_eq!(a[6].analysis.clipped_samples, 0);
        assert!(a[7].safety_gain_reduction_db > 0.0);
        // Silences are in the file (and in its measurement).
        assert!((a[5].analysis.duration_s - (2.0 + 0.75)).abs() < 0.01);
        // A WAV and a FLAC of the same deliverable hold the same samples.
        for (wav, flac) in [
            ("a24.wav", "a24.flac"),
            ("b16.wav", "b16.flac"),
            ("f44.wav", "d44.flac"),
        ] {
            let (rate_w, w) = common::audio::decode(&out.join(wav));
            let (rate_f, f) = common::audio::decode(&out.join(flac));
            assert_eq!(rate_w, rate_f);
            assert!(w == f, "{wav} and {flac} hold the same samples");
        }
        // Nothing but the deliverables and the report is left in the folder.
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 11, "{names:?}");
        let files: Vec<Vec<u8>> = a
            .iter()
            .map(|d| std::fs::read(out.join(&d.file.path)).unwrap())
            .collect();
        runs.push((files, format!("{:?}", report.deliverables)));
    }
    assert!(
        runs[0].0 == runs[1].0,
        "the same bytes on one thread and two"
    );
    assert_eq!(
        runs[0].1, runs[1].1,
        "the same report on one thread and two"
    );
}
