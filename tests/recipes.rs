//! Every example recipe in `scripts/` renders; each template is used by at least one; a
//! template override renders identically to the same graph written out in full; automation
//! starts on the exact sample at every block size.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use stemgraph::analysis::meters::{LoudnessMeter, TruePeakMeter};
use stemgraph::demo::{write_demo, DemoOptions};
use stemgraph::render::{render, RenderOptions};
use stemgraph::script::load_recipe;

const SECONDS: f64 = 16.0;

/// A folder laid out like the repository after `make demo`: scripts/, demo/, demo8/.
fn workspace() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let opts = DemoOptions {
            seconds: SECONDS,
            ..DemoOptions::default()
        };
        write_demo(&root.join("demo"), &opts).unwrap();
        write_demo(&root.join("demo8"), &DemoOptions { stems: 8, ..opts }).unwrap();
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(repo.join("scripts")).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, root.join("scripts").join(p.file_name().unwrap())).unwrap();
        }
        std::fs::copy(repo.join("scripts/demo.lua"), root.join("demo/demo.lua")).unwrap();
        dir
    })
    .path()
}

fn read(path: &Path) -> (u32, Vec<Vec<f64>>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let ch = spec.channels as usize;
    let v: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| f64::from(s.unwrap())).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / f64::from(1u32 << (spec.bits_per_sample - 1));
            r.samples::<i32>()
                .map(|s| f64::from(s.unwrap()) * scale)
                .collect()
        }
    };
    (
        spec.sample_rate,
        (0..ch)
            .map(|c| v.iter().skip(c).step_by(ch).copied().collect())
            .collect(),
    )
}

fn loudness(rate: u32, x: &[Vec<f64>]) -> (f64, f64) {
    let planar: Vec<&[f64]> = x.iter().map(|c| c.as_slice()).collect();
    let mut l = LoudnessMeter::new(f64::from(rate), x.len());
    l.push(&planar);
    let mut t = TruePeakMeter::new(f64::from(rate), x.len(), 8);
    t.push(&planar);
    t.finish();
    (l.integrated_lufs(), t.true_peak_dbtp())
}

fn render_recipe(recipe: &Path, out: &str) -> (stemgraph::render::RenderResult, PathBuf) {
    let session = load_recipe(recipe).unwrap_or_else(|e| panic!("{e}"));
    let out = workspace().join(out);
    let result = render(&session, RenderOptions::new(&out))
        .unwrap_or_else(|e| panic!("{}: {e}", recipe.display()));
    (result, out)
}

#[test]
fn the_demo_recipe_renders_on_target() {
    let (result, out) = render_recipe(&workspace().join("demo/demo.lua"), "out_demo");
    let t = result.target.expect("the demo has a loudness target");
    assert!((t.integrated_lufs + 14.0).abs() <= 0.1, "{t:?}");
    let (rate, m) = read(&out.join("stemgraph demo 24bit.wav"));
    let (lufs, tp) = loudness(rate, &m);
    assert!((lufs + 14.0).abs() <= 0.1, "{lufs}");
    assert!(tp <= -1.0 + 0.05, "{tp}");
    let (rate, cd) = read(&out.join("stemgraph demo 16bit 44k1.wav"));
    assert_eq!(rate, 44_100);
    assert!((cd[0].len() as f64 - m[0].len() as f64 * 44_100.0 / 48_000.0).abs() <= 1.0);
    let (_, tp16) = loudness(rate, &cd);
    assert!(tp16 <= -1.0 + 0.05, "{tp16}");
}

#[test]
fn every_template_is_used_by_an_example_that_renders() {
    for (recipe, file) in [
        ("scripts/band.lua", "Song One 24bit.wav"),
        ("scripts/electronic.lua", "Night Drive 24bit.wav"),
        ("scripts/stereo_master.lua", "Stereo Master 24bit.wav"),
    ] {
        let path = workspace().join(recipe);
        let session = load_recipe(&path).unwrap();
        assert!(session.loaded_files.len() >= 2, "{recipe} loads a template");
        let (_, out) = render_recipe(&path, &format!("out_{}", recipe.replace('/', "_")));
        let (rate, m) = read(&out.join(file));
        let (lufs, tp) = loudness(rate, &m);
        if let Some(target) = session.target_lufs {
            assert!(
                (lufs - target).abs() <= 0.1,
                "{recipe}: {lufs} LUFS for {target}"
            );
        }
        assert!(tp <= -1.0 + 0.05, "{recipe}: {tp} dBTP");
    }
    let mut used = std::collections::BTreeSet::new();
    for recipe in [
        "scripts/band.lua",
        "scripts/electronic.lua",
        "scripts/stereo_master.lua",
    ] {
        for f in load_recipe(&workspace().join(recipe)).unwrap().loaded_files {
            used.insert(f.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    for t in stemgraph::script::modules::BUILT_IN {
        assert!(used.contains(t.0), "template {} is used by no example", t.0);
    }
}

/// The band template with one EQ override against the same graph written out in full (the files
/// without their `bext` chunks, whose coding history names each recipe's own hash).
#[test]
fn a_template_override_equals_the_graph_written_out() {
    let dir = workspace().join("override");
    std::fs::create_dir_all(&dir).unwrap();
    let stems = "{ drums = '../demo/stems/drums.wav', bass = '../demo/stems/bass.wav', \
                 music = '../demo/stems/keys.wav', vocals = '../demo/stems/lead.wav' }";
    std::fs::write(
        dir.join("templated.lua"),
        format!(
            "return template 'band_4stem' {{ title = 'x', stems = {stems},\n\
             bass = {{ eq = {{ bell {{ freq_hz = 120, gain_db = 2, q = 1 }} }} }},\n\
             deliver = {{ wav {{ file = 'x.wav', bits = 32, bext = false }} }} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("written_out.lua"), WRITTEN_OUT).unwrap();
    let a = render_recipe(&dir.join("templated.lua"), "override/out_a").1;
    let b = render_recipe(&dir.join("written_out.lua"), "override/out_b").1;
    let fa = std::fs::read(a.join("x.wav")).unwrap();
    let fb = std::fs::read(b.join("x.wav")).unwrap();
    assert!(
        fa == fb,
        "the template with an override and the written-out graph differ"
    );
}

const WRITTEN_OUT: &str = r#"
local s = session { title = "x" }
local master = s:bus "master"
s:stem("drums", "../demo/stems/drums.wav"):chain {
  eq { bands = { high_pass { freq_hz = 30, slope_db = 12 } } },
  compressor { threshold_db = -18, ratio = 3, attack_ms = 10, release_ms = 120, knee_db = 6 },
}:to(master)
s:stem("bass", "../demo/stems/bass.wav"):chain {
  eq { bands = { bell { freq_hz = 120, gain_db = 2, q = 1 } } },
  compressor { threshold_db = -20, ratio = 4, attack_ms = 20, release_ms = 150, knee_db = 6 },
}:to(master)
s:stem("music", "../demo/stems/keys.wav"):chain {
  eq { bands = { high_pass { freq_hz = 40, slope_db = 12 } } },
}:to(master)
local v = s:stem("vocals", "../demo/stems/lead.wav"):chain {
  eq { bands = { high_pass { freq_hz = 80, slope_db = 24 }, bell { freq_hz = 3500, gain_db = 0.0, q = 1.0 } } },
  deesser { freq_hz = 6500, threshold_db = -30, ratio = 4 },
  compressor { threshold_db = -22, ratio = 3, attack_ms = 5, release_ms = 100, knee_db = 6 },
}
v:to(master)
local returns = s:bus "vocal_delay"
v:to(returns, { gain_db = -20 })
returns:chain {
  delay { note = "1/8.", tempo_bpm = 120, feedback_pct = 30, mix_pct = 100, low_cut_hz = 300, high_cut_hz = 6000 },
}:to(master)
master:chain {
  eq { id = "master.eq", bands = { high_pass { freq_hz = 25, slope_db = 24 }, low_shelf { freq_hz = 100, gain_db = 0.0, q = 0.7 },
                                   high_shelf { freq_hz = 12000, gain_db = 0.5, q = 0.7 } } },
  compressor { id = "master.glue", threshold_db = -20, ratio = 2, knee_db = 6, attack_ms = 30, release_ms = 250, makeup_db = 0 },
  width { id = "master.width", width_pct = 100, mono_below_hz = 100 },
  limiter { id = "master.limiter", ceiling_dbtp = -1.0, release_ms = 60, lookahead_ms = 1.5 },
}:to(s:output "main")
s:deliver { file = "x.wav", bits = 32, bext = false }
return s
"#;
