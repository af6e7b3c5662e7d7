//! Loudness targets: on the demo song and a quiet and a loud variant, the master lands within
//! ±0.1 LU of −9, −14 and −23 LUFS with its true peak under −1 dBTP, measured on the files by our
//! meter and by ffmpeg's `ebur128` filter; the 16-bit 44.1 kHz deliverable holds its ceiling after
//! resampling and dither. `--set` overrides reach the graph and refuse unknown keys.

use std::path::Path;
use std::process::Command;
use stemgraph::analysis::analyze::{analyze, analyze_with, AnalyzeOptions};
use stemgraph::demo::{write_demo, DemoOptions};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

/// ffmpeg's integrated loudness and true peak of a file, or None when ffmpeg is missing (which
/// fails the test under CI).
fn ffmpeg_ebur128(path: &Path) -> Option<(f64, f64)> {
    let out = match Command::new("ffmpeg")
        .args(["-nostats", "-hide_banner", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ffmpeg is needed under CI"
            );
            eprintln!("ffmpeg not installed: skipping the independent measurement");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = &text[text.rfind("Summary:")?..];
    let value = |key: &str| -> Option<f64> {
        let at = summary.find(key)? + key.len();
        summary[at..].split_whitespace().next()?.parse().ok()
    };
    Some((value("I:")?, value("Peak:")?))
}

/// The demo song (12 s) and its recipe written into `dir`; returns the recipe's path.
fn demo_recipe(dir: &Path) -> std::path::PathBuf {
    write_demo(
        dir,
        &DemoOptions {
            seconds: 12.0,
            ..DemoOptions::default()
        },
    )
    .unwrap();
    let recipe = dir.join("demo.lua");
    std::fs::write(&recipe, include_str!("../scripts/demo.lua")).unwrap();
    recipe
}

#[test]
fn targets_land_on_the_demo_and_its_quiet_and_loud_variants() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = demo_recipe(dir.path());
    for (variant, trim_db) in [("normal", 0.0), ("quiet", -12.0), ("loud", 6.0)] {
        for target in [-9.0, -14.0, -23.0] {
            let mut session = load_recipe(&recipe).unwrap();
            for stem in ["drums", "bass", "keys", "lead"] {
                let base = if stem == "bass" {
                    -0.5
                } else if stem == "lead" {
                    0.5
                } else {
                    0.0
                };
                session
                    .apply_override(&format!("{stem}.gain_db={}", base + trim_db))
                    .unwrap();
            }
            session
                .apply_override(&format!("master.target_lufs={target}"))
                .unwrap();
            let out = dir.path().join(format!("out_{variant}_{}", -target as i32));
            let result = render(&session, RenderOptions::new(&out)).unwrap();
            let t = result.target.as_ref().expect("a target was set");
            assert!(t.full_passes == 1 && t.tail_passes >= 1, "{t:?}");
            let report = result.report.as_ref().expect("a report was written");
            assert!(out.join("report.json").exists() && !report.deliverables.is_empty());
            for file in ["stemgraph demo 24bit.wav", "stemgraph demo 16bit 44k1.wav"] {
                let a = analyze(&out.join(file)).unwrap().figures;
                let lufs = a.integrated_lufs;
                let tp = a.true_peak_dbtp;
                assert!(
                    (lufs - target).abs() <= 0.1,
                    "{variant} {target}: {file} at {lufs} LUFS"
                );
                assert!(tp <= -1.0, "{variant} {target}: {file} true peak {tp} dBTP");
                if let Some((i, peak)) = ffmpeg_ebur128(&out.join(file)) {
                    assert!(
                        (i - target).abs() <= 0.15,
                        "{variant} {target}: ffmpeg reads {i} LUFS for {file}"
                    );
                    assert!(
                        peak <= -1.0 + 0.05,
                        "{variant} {target}: ffmpeg reads {peak} dBTP for {file}"
                    );
                }
            }
        }
    }
}

#[test]
fn set_overrides_reach_the_graph_and_unknown_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("song.lua");
    std::fs::write(
        &recipe,
        "local s = session {}\nlocal m = s:bus 'master'\ns:stem('vocals', 'v.wav'):chain { eq { bands = { bell { freq_hz = 1000 } } } }:to(m)\n\
         m:to(s:output())\nreturn s\n",
    )
    .unwrap();
    let mut s = load_recipe(&recipe).unwrap();
    s.apply_override("vocals.gain_db=1.5").unwrap();
    s.apply_override("vocals.eq.1.gain_db=-2").unwrap();
    s.apply_override("master.send.vocals.eq.gain_db=-3")
        .unwrap();
    s.apply_override("master.target_lufs=-12").unwrap();
    assert_eq!(s.target_lufs, Some(-12.0));
    let compiled = stemgraph::graph::compile(
        &s.graph_at(48_000.0),
        stemgraph::graph::CompileOptions::new(48_000.0, 64),
    )
    .unwrap();
    let params: Vec<(String, f64)> = compiled
        .summary
        .iter()
        .flat_map(|n| {
            n.params
                .iter()
                .map(move |(p, v)| (format!("{}.{p}", n.id), *v))
        })
        .collect();
    assert!(params.contains(&("vocals.gain_db".into(), 1.5)));
    assert!(params.contains(&("vocals.eq.1.gain_db".into(), -2.0)));
    assert!(params.contains(&("master.send.vocals.eq.gain_db".into(), -3.0)));
    let err = s
        .apply_override("vocals.gian_db=1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("vocals.gain_db"), "{err}");
    let err = s.apply_override("vocals.gain_db").unwrap_err().to_string();
    assert!(err.contains("KEY=VALUE"), "{err}");
}

/// The solve's passes do not each run the limiter's true-peak detector over the song: the first
/// records its readings and the later ones (and the final pass) replay them
/// (`render::readings`). The result is the same for any block size and thread count, and holds
/// the target and the ceiling.
#[test]
fn the_solve_detects_once_and_replays_the_readings() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = demo_recipe(dir.path());
    let mut session = load_recipe(&recipe).unwrap();
    session.apply_override("master.target_lufs=-9").unwrap();
    let mut files = Vec::new();
    for (block, threads) in [(512, 1), (64, 2), (4096, 2)] {
        let out = dir.path().join(format!("out_{block}_{threads}"));
        let mut opts = RenderOptions::new(&out);
        opts.block_size = block;
        opts.threads = threads;
        let result = render(&session, opts).unwrap();
        let t = result.target.as_ref().expect("a target was set");
        assert!(
            t.tail_passes >= 3,
            "a loud target takes several passes: {t:?}"
        );
        assert_eq!(t.detecting_passes, 1, "{t:?}");
        assert!((t.integrated_lufs + 9.0).abs() <= 0.1, "{t:?}");
        // Nothing of the readings is left beside the deliverables.
        let left: Vec<_> = walk(&out)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("readings"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        let file = out.join("stemgraph demo 24bit.wav");
        let tp = analyze(&file).unwrap().figures.true_peak_dbtp;
        assert!(tp <= -1.0, "true peak {tp} dBTP");
        files.push(std::fs::read(&file).unwrap());
    }
    assert!(
        files.windows(2).all(|w| w[0] == w[1]),
        "the master differs between block sizes or thread counts"
    );
}

/// On two threads the final pass over the spill runs on one thread with the lighter of the
/// demo's two feeds (24-bit) and hands the other (16-bit 44.1 kHz: resampled, dithered) to a
/// writer thread (`render::run::Staging::Chain`): both deliverables and the solve are the
/// same bits as on one thread, at any block size, whether the final pass is a kept first drive
/// (−23 LUFS) or follows a solve (−9 LUFS). So is the report's analysis of each deliverable,
/// the figures of its file decoded to the bit.
#[test]
fn the_final_pass_gives_the_same_files_on_one_thread_and_two() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = demo_recipe(dir.path());
    let files = ["stemgraph demo 24bit.wav", "stemgraph demo 16bit 44k1.wav"];
    same_on_one_thread_and_two(&recipe, &files, dir.path());
}

/// A master whose deliverables hold the output as it comes (no session ceiling, edit or tail,
/// as workload M of benches/compare): on two threads, where the final pass is a kept first
/// drive (−23 LUFS), the pass keeps the 24-bit deliverable and lends its analysis to the
/// writer thread of the 16-bit 44.1 kHz one, where the two loudness meters are K-weighted side
/// by side (`render::deliver::Deliveries::lend_across`). The files, the solve and the report's figures
/// of each deliverable (its file's, decoded, to the bit) are those of one thread.
#[test]
fn an_analysis_lent_to_the_writer_thread_measures_as_on_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    demo_recipe(dir.path());
    let recipe = dir.path().join("plain.lua");
    std::fs::write(
        &recipe,
        r#"
local s = session { title = "plain", target_lufs = -14 }
local master = s:bus "master"
for _, name in ipairs { "drums", "bass", "keys", "lead" } do
  s:stem(name, "stems/" .. name .. ".wav"):chain {
    eq { bands = { bell { freq_hz = 300, gain_db = -1.0, q = 1.0 } } },
    compressor { threshold_db = -20, ratio = 3, attack_ms = 10, release_ms = 120, knee_db = 6 },
  }:to(master)
end
master:chain {
  eq { bands = { high_pass { freq_hz = 25, slope_db = 24 } } },
  compressor { threshold_db = -20, ratio = 2, attack_ms = 30, release_ms = 250, knee_db = 6 },
  width { width_pct = 110, mono_below_hz = 120 },
  limiter { ceiling_dbtp = -1.0, lookahead_ms = 1.5, oversampling = 8 },
}:to(s:output "main")
s:deliver { file = "{title} 24bit.wav", bits = 24 }
s:deliver { file = "{title} 16bit 44k1.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }
return s
"#,
    )
    .unwrap();
    let files = ["plain 24bit.wav", "plain 16bit 44k1.wav"];
    same_on_one_thread_and_two(&recipe, &files, dir.path());
}

/// Renders `recipe` (two deliverables, `files`) into `dir` to −23 and −9 LUFS on one thread
/// and two, at several block sizes, and checks that the files, the solve and the report's
/// figures of each deliverable are the same, and those of its file decoded.
fn same_on_one_thread_and_two(recipe: &Path, files: &[&str; 2], dir: &Path) {
    let mut session = load_recipe(recipe).unwrap();
    for target in ["-23", "-9"] {
        session
            .apply_override(&format!("master.target_lufs={target}"))
            .unwrap();
        let mut rendered = Vec::new();
        for (block, threads) in [(1024, 1), (1024, 2), (64, 2), (4096, 2)] {
            let out = dir.join(format!("{target}_{block}_{threads}"));
            let mut opts = RenderOptions::new(&out);
            opts.block_size = block;
            opts.threads = threads;
            let result = render(&session, opts).unwrap();
            let t = result.target.clone().expect("a target was set");
            let report = result.report.expect("a report by default");
            let analyses: Vec<String> = report
                .deliverables
                .iter()
                .map(|d| format!("{:?}", d.analysis))
                .collect();
            for (d, f) in report.deliverables.iter().zip(*files) {
                let mut decoded = analyze_with(&out.join(f), &AnalyzeOptions::figures_only())
                    .unwrap()
                    .figures;
                decoded.path = d.analysis.path.clone();
                assert_eq!(
                    format!("{:?}", d.analysis),
                    format!("{decoded:?}"),
                    "target {target}, {:?}: {f} is not measured as it decodes",
                    (block, threads)
                );
            }
            rendered.push((
                (block, threads),
                t.drive_db.to_bits(),
                t.integrated_lufs.to_bits(),
                files.map(|f| std::fs::read(out.join(f)).unwrap()),
                analyses,
            ));
        }
        for r in &rendered[1..] {
            assert!(
                (r.1, r.2) == (rendered[0].1, rendered[0].2) && r.3 == rendered[0].3,
                "target {target}: {:?} differs from one thread",
                r.0
            );
            assert_eq!(
                r.4, rendered[0].4,
                "target {target}: {:?} reports other figures than one thread",
                r.0
            );
        }
    }
}

/// When the limiter barely acts at the first drive, the first pass is the final one
/// (`render::speculate`): one pass of the limiter instead of two, and not a bit of any
/// deliverable changes. Forced on a loud target, where it misses, its measurement starts the
/// solve, its files are dropped without a trace, and the target and the ceiling still hold.
#[test]
fn a_first_drive_that_lands_is_kept_as_the_final_pass() {
    use stemgraph::render::speculate::Speculate;
    let dir = tempfile::tempdir().unwrap();
    let recipe = demo_recipe(dir.path());
    let files = ["stemgraph demo 24bit.wav", "stemgraph demo 16bit 44k1.wav"];
    let mut session = load_recipe(&recipe).unwrap();
    session.apply_override("master.target_lufs=-23").unwrap();
    let mut rendered = Vec::new();
    for speculate in [Speculate::WhenPredicted, Speculate::Never] {
        let out = dir.path().join(format!("quiet_{speculate:?}"));
        let mut opts = RenderOptions::new(&out);
        opts.speculate = speculate;
        let result = render(&session, opts).unwrap();
        let t = result.target.clone().expect("a target was set");
        assert!((t.integrated_lufs + 23.0).abs() <= 0.1, "{t:?}");
        let stages: Vec<&str> = result.timings.iter().map(|s| s.stage.as_str()).collect();
        rendered.push((
            t,
            stages.join(" | "),
            files.map(|f| std::fs::read(out.join(f)).unwrap()),
        ));
    }
    let (kept, never) = (&rendered[0], &rendered[1]);
    assert_eq!(kept.0.tail_passes, 1, "{:?} ({})", kept.0, kept.1);
    assert!(
        kept.1.contains("final pass (first drive, kept)"),
        "{}",
        kept.1
    );
    assert_eq!(never.0.tail_passes, 2, "{:?} ({})", never.0, never.1);
    assert_eq!(
        (kept.0.drive_db, kept.0.integrated_lufs),
        (never.0.drive_db, never.0.integrated_lufs)
    );
    assert!(
        kept.2 == never.2,
        "the deliverables differ with and without speculation"
    );

    session.apply_override("master.target_lufs=-9").unwrap();
    let out = dir.path().join("loud_always");
    let mut opts = RenderOptions::new(&out);
    opts.speculate = Speculate::Always;
    let result = render(&session, opts).unwrap();
    let t = result.target.as_ref().expect("a target was set");
    let stages: Vec<&str> = result.timings.iter().map(|s| s.stage.as_str()).collect();
    assert!(
        stages
            .iter()
            .any(|s| s.starts_with("speculative pass (missed")),
        "{stages:?}"
    );
    // The speculative pass keeps no recording (a kept final pass is never replayed): after a
    // miss the solve's next pass detects once more and records, the rest replay.
    assert!(t.tail_passes >= 3 && t.detecting_passes == 2, "{t:?}");
    assert!((t.integrated_lufs + 9.0).abs() <= 0.1, "{t:?}");
    for f in files {
        let tp = analyze(&out.join(f)).unwrap().figures.true_peak_dbtp;
        assert!(tp <= -1.0, "{f}: true peak {tp} dBTP");
    }
    let mut left: Vec<String> = walk(&out)
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    expected.extend(["report.json".to_string(), "report.md".to_string()]);
    expected.sort();
    assert_eq!(
        left, expected,
        "only the deliverables and the report are left"
    );
}

/// The speculative pass measures its output on the report's tap of the output (K-weighted beside
/// the report's own meter) or, without a report, from the output's blocks: the same loudness to
/// the bit, so the same solve and the same deliverables, kept or missed.
#[test]
fn the_speculative_measurement_is_the_same_with_or_without_a_report() {
    use stemgraph::render::speculate::Speculate;
    let dir = tempfile::tempdir().unwrap();
    let recipe = demo_recipe(dir.path());
    let files = ["stemgraph demo 24bit.wav", "stemgraph demo 16bit 44k1.wav"];
    let mut session = load_recipe(&recipe).unwrap();
    for target in ["-23", "-9"] {
        session
            .apply_override(&format!("master.target_lufs={target}"))
            .unwrap();
        let mut rendered = Vec::new();
        for report in [true, false] {
            let out = dir.path().join(format!("{target}_{report}"));
            let mut opts = RenderOptions::new(&out);
            opts.speculate = Speculate::Always;
            opts.report = report;
            let result = render(&session, opts).unwrap();
            let t = result.target.clone().expect("a target was set");
            rendered.push((
                t.drive_db.to_bits(),
                t.integrated_lufs.to_bits(),
                t.tail_passes,
                files.map(|f| std::fs::read(out.join(f)).unwrap()),
            ));
        }
        assert!(
            rendered[0] == rendered[1],
            "target {target}: the renders differ"
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
