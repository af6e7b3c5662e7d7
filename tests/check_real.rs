//! `check` on real material: stems of three songs rendered per instrument by fluidsynth (see
//! tests/corpus), the clean sets and each planted fault, and `check --fix` applied back.
use crate::corpus;

use corpus::{Project, Song};
use stemgraph::analysis::check::{check, CheckReport, Finding, Severity};
use stemgraph::script::load_recipe;

fn run(p: &Project) -> CheckReport {
    check(&load_recipe(&p.recipe()).unwrap()).unwrap()
}

fn song<'a>(songs: &'a [Song], name: &str) -> &'a Song {
    songs.iter().find(|s| s.name == name).unwrap()
}

fn loud(r: &CheckReport) -> Vec<&Finding> {
    r.findings
        .iter()
        .filter(|f| f.severity != Severity::Pass)
        .collect()
}

/// The fault is found (a finding of `check_name` on `stem` at least `severity`), and no other
/// stem is blamed: every other warning or failure is about the same stem or is the null test.
fn found_on<'a>(
    r: &'a CheckReport,
    check_name: &str,
    stem: &str,
    severity: Severity,
) -> &'a Finding {
    let f = r
        .findings
        .iter()
        .find(|f| f.check == check_name && f.stem.as_deref() == Some(stem))
        .unwrap_or_else(|| panic!("no {check_name} finding on {stem}: {:#?}", r.findings));
    assert!(f.severity >= severity, "{f:#?}");
    for other in loud(r) {
        assert!(
            other.stem.as_deref() == Some(stem) || other.check == "null_test",
            "{stem}'s fault blamed elsewhere: {other:#?}\nall: {:#?}",
            r.findings
        );
    }
    f
}

fn shift(planes: Vec<Vec<f64>>, by: usize) -> Vec<Vec<f64>> {
    planes
        .into_iter()
        .map(|c| {
            let n = c.len();
            std::iter::repeat_n(0.0, by)
                .chain(c.into_iter().take(n - by))
                .collect()
        })
        .collect()
}

#[test]
fn clean_sets_pass_without_a_warning() {
    let Some(songs) = corpus::songs() else { return };
    for s in &songs {
        let p = s.project();
        let r = run(&p);
        assert!(loud(&r).is_empty(), "{}: {:#?}", s.name, loud(&r));
        let nt = r.null_test.as_ref().unwrap();
        let floor = if s.mix_bits == 16 { -90.0 } else { -120.0 };
        assert!(
            nt.residual_rms_dbfs < floor,
            "{}: {}",
            s.name,
            nt.residual_rms_dbfs
        );
        assert!(r.fixes.is_empty(), "{}: {:?}", s.name, r.fixes);
        for st in &r.stems {
            assert_eq!(st.offset_samples, Some(0.0), "{}: {}", s.name, st.name);
            assert!(st.gain_db.unwrap().abs() < 0.01, "{}: {st:?}", s.name);
        }
    }
}

#[test]
fn planted_offsets_are_found_to_the_sample_and_fixed() {
    let Some(songs) = corpus::songs() else { return };
    for (name, stem, by) in [
        ("rock", "bass", 1usize),
        ("ballad", "strings", 37),
        ("electronic", "drums", 480),
    ] {
        let s = song(&songs, name);
        let p = s.project();
        let clean = run(&p).null_test.unwrap().residual_rms_dbfs;
        p.replace(stem, s.rate, 24, |x| shift(x, by));
        let r = run(&p);
        let f = found_on(&r, "offset", stem, Severity::Fail);
        assert_eq!(f.value, Some(by as f64), "{name}/{stem}: {f:?}");
        assert!(f.message.contains("later"), "{}", f.message);
        assert_fix_nulls(&p, &r, clean);
    }
}

/// Applies the report's fixes to the recipe: the stems null within 1 dB of the clean set.
fn assert_fix_nulls(p: &Project, r: &CheckReport, clean_db: f64) {
    assert!(!r.fixes.is_empty());
    let opts: Vec<(String, String)> = p
        .stems
        .iter()
        .map(|s| {
            let o = r
                .fixes
                .iter()
                .find(|f| &f.stem == s)
                .map(|f| f.lua_options())
                .unwrap_or_default();
            (s.clone(), o)
        })
        .collect();
    p.write_recipe(
        &opts
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    );
    let fixed = run(p);
    let nt = fixed.null_test.as_ref().unwrap();
    assert!(
        nt.residual_rms_dbfs <= clean_db + 1.0,
        "after the fix {} dBFS, clean {clean_db} dBFS; fixes {:?}",
        nt.residual_rms_dbfs,
        r.fixes
    );
    assert!(
        !fixed
            .findings
            .iter()
            .any(|f| matches!(f.check, "offset" | "polarity" | "gain")),
        "{:#?}",
        fixed.findings
    );
}

#[test]
fn polarity_and_level_faults_are_found_and_fixed() {
    let Some(songs) = corpus::songs() else { return };
    let s = song(&songs, "rock");
    let p = s.project();
    let clean = run(&p).null_test.unwrap().residual_rms_dbfs;
    p.replace("piano", s.rate, 24, |x| {
        x.into_iter()
            .map(|c| c.into_iter().map(|v| -v).collect())
            .collect()
    });
    let r = run(&p);
    found_on(&r, "polarity", "piano", Severity::Fail);
    assert_fix_nulls(&p, &r, clean);

    let s = song(&songs, "ballad");
    let p = s.project();
    let clean = run(&p).null_test.unwrap().residual_rms_dbfs;
    let g = 10f64.powf(-1.0 / 20.0);
    p.replace("trumpet", s.rate, 24, |x| {
        x.into_iter()
            .map(|c| c.into_iter().map(|v| v * g).collect())
            .collect()
    });
    let r = run(&p);
    let f = found_on(&r, "gain", "trumpet", Severity::Fail);
    assert!((f.value.unwrap() + 1.0).abs() < 0.05, "{f:?}");
    assert_fix_nulls(&p, &r, clean);
}

#[test]
fn several_faults_at_once_are_each_found_and_fixed() {
    let Some(songs) = corpus::songs() else { return };
    let s = song(&songs, "electronic");
    let p = s.project();
    let clean = run(&p).null_test.unwrap().residual_rms_dbfs;
    p.replace("drums", s.rate, 24, |x| shift(x, 37));
    p.replace("pad", s.rate, 24, |x| {
        x.into_iter()
            .map(|c| c.into_iter().map(|v| -v).collect())
            .collect()
    });
    let g = 10f64.powf(1.5 / 20.0);
    p.replace("lead_synth", s.rate, 24, |x| {
        x.into_iter()
            .map(|c| c.into_iter().map(|v| v * g).collect())
            .collect()
    });
    let r = run(&p);
    let blamed: Vec<(&str, &str)> = loud(&r)
        .iter()
        .filter(|f| f.check != "null_test")
        .map(|f| (f.check, f.stem.as_deref().unwrap_or("")))
        .collect();
    let mut want = vec![
        ("offset", "drums"),
        ("polarity", "pad"),
        ("gain", "lead_synth"),
    ];
    let mut got = blamed.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{:#?}", r.findings);
    assert_fix_nulls(&p, &r, clean);
}

#[test]
fn a_fractional_offset_is_measured_to_a_fraction_and_fixed() {
    let Some(songs) = corpus::songs() else { return };
    let s = song(&songs, "ballad");
    let p = s.project();
    let clean = run(&p).null_test.unwrap().residual_rms_dbfs;
    // The bass moved 17.25 samples later by the renderer's own fractional delay, kept in float.
    let path = p.path("stems/bass.wav");
    let (mut st, _) = stemgraph::io::decode::StemStream::open(
        &path,
        &stemgraph::io::decode::StreamOptions {
            target_rate: s.rate,
            target_channels: 2,
            length_frames: Some(s.frames as u64),
        },
    )
    .unwrap();
    st = st.with_offset(17.25).unwrap();
    let (mut l, mut r) = (vec![0.0; s.frames], vec![0.0; s.frames]);
    st.read_block(&mut [&mut l, &mut r], s.frames).unwrap();
    corpus::write_wav(&path, &[l, r], s.rate, 32, None);
    let rep = run(&p);
    let f = found_on(&rep, "offset", "bass", Severity::Fail);
    assert!((f.value.unwrap() - 17.25).abs() <= 0.02, "{f:?}");
    let fix = rep.fixes.iter().find(|f| f.stem == "bass").unwrap();
    assert!(
        (fix.offset_samples.unwrap() + 17.25).abs() <= 0.02,
        "{fix:?}"
    );
    // A fractional move back is not bit-exact: the null comes within 1 dB of the clean one
    // only to the filter's precision, so it is held to −90 dBFS (a pass).
    p.write_recipe(
        &p.stems
            .iter()
            .map(|n| {
                (
                    n.as_str(),
                    if n == "bass" {
                        "offset_samples = -17.25"
                    } else {
                        ""
                    },
                )
            })
            .collect::<Vec<_>>(),
    );
    let fixed = run(&p);
    assert!(
        fixed.null_test.as_ref().unwrap().residual_rms_dbfs < -90.0,
        "{:#?} clean {clean}",
        fixed.null_test
    );
}

#[test]
fn a_stem_missing_from_the_recipe_is_named() {
    let Some(songs) = corpus::songs() else { return };
    let s = song(&songs, "electronic");
    let p = s.project();
    let kept: Vec<(&str, &str)> = p
        .stems
        .iter()
        .filter(|n| *n != "pad")
        .map(|n| (n.as_str(), ""))
        .collect();
    p.write_recipe(&kept);
    let r = run(&p);
    let f = found_on(&r, "missing_element", "pad", Severity::Fail);
    assert!(f.message.contains("pad.wav"), "{}", f.message);
    assert!(
        r.fixes.iter().any(|f| f.add && f.stem == "pad"),
        "{:?}",
        r.fixes
    );
    // Muted in the recipe instead: named as well.
    let muted: Vec<(&str, &str)> = p
        .stems
        .iter()
        .map(|n| (n.as_str(), if n == "pad" { "gain_db = -120" } else { "" }))
        .collect();
    p.write_recipe(&muted);
    let r = run(&p);
    found_on(&r, "missing_element", "pad", Severity::Fail);
}

#[test]
fn file_faults_are_found_on_their_stem_only() {
    let Some(songs) = corpus::songs() else { return };
    // Another sample rate (the stem exported at 44.1 kHz in a 48 kHz song).
    let s = song(&songs, "rock");
    let p = s.project();
    let path = p.path("stems/sax.wav");
    let (mut st, _) = stemgraph::io::decode::StemStream::open(
        &path,
        &stemgraph::io::decode::StreamOptions {
            target_rate: 44_100,
            target_channels: 2,
            length_frames: None,
        },
    )
    .unwrap();
    let n = st.length_frames().unwrap() as usize;
    let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
    st.read_block(&mut [&mut l, &mut r], n).unwrap();
    corpus::write_wav(&path, &[l, r], 44_100, 24, None);
    let rep = run(&p);
    assert_eq!(
        found_on(&rep, "sample_rate", "sax", Severity::Fail).value,
        Some(44_100.0)
    );

    // A 16-bit word length.
    let p = s.project();
    p.replace("drums", s.rate, 16, |x| x);
    let rep = run(&p);
    assert_eq!(
        found_on(&rep, "word_length", "drums", Severity::Warn).value,
        Some(16.0)
    );

    // Truncation: the choir cut 5 s before the end.
    let s = song(&songs, "ballad");
    let p = s.project();
    let cut = s.frames - 5 * s.rate as usize;
    p.replace("choir", s.rate, 24, |x| {
        x.into_iter().map(|c| c[..cut].to_vec()).collect()
    });
    let rep = run(&p);
    found_on(&rep, "length", "choir", Severity::Fail);

    // NaN and Inf in a float stem: counted, timed, no panic.
    let p = s.project();
    let (mut planes, _) = p.read("bass");
    for k in 0..10 {
        planes[0][s.rate as usize * 3 + k * 1000] = f64::NAN;
    }
    planes[1][s.rate as usize * 5] = f64::INFINITY;
    corpus::write_wav(&p.path("stems/bass.wav"), &planes, s.rate, 32, None);
    let rep = run(&p);
    let f = found_on(&rep, "non_finite", "bass", Severity::Fail);
    assert_eq!(f.value, Some(11.0));
    assert!(f.message.contains("0:03.000"), "{}", f.message);

    // Clipping: the synth bass exported 12 dB too hot through a fixed-point bus.
    let s = song(&songs, "electronic");
    let p = s.project();
    p.replace("synth_bass", s.rate, 24, |x| {
        let peak = x.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
        x.into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|v| (v * 2.0 / peak).clamp(-1.0, 1.0))
                    .collect()
            })
            .collect()
    });
    let rep = run(&p);
    found_on(&rep, "clipping", "synth_bass", Severity::Fail);
}

#[test]
fn check_fix_prints_and_writes_the_changes_never_into_the_recipe() {
    let Some(songs) = corpus::songs() else { return };
    let s = song(&songs, "rock");
    let p = s.project();
    p.replace("bass", s.rate, 24, |x| shift(x, 37));
    let recipe_before = std::fs::read(p.recipe()).unwrap();
    let bin = env!("CARGO_BIN_EXE_stemgraph");
    let out = std::process::Command::new(bin)
        .args(["check", "--fix", "--write"])
        .arg(p.path("fix.lua"))
        .arg(p.recipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("s:stem('bass', 'stems/bass.wav', { offset_samples = -37 })"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(p.path("fix.lua")).unwrap();
    assert!(written.contains("offset_samples = -37"), "{written}");
    let refused = std::process::Command::new(bin)
        .args(["check", "--write"])
        .arg(p.recipe())
        .arg(p.recipe())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert_eq!(std::fs::read(p.recipe()).unwrap(), recipe_before);
}
