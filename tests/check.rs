//! `check` catches each planted fault and reports its size, and passes clean stems.
use crate::common;

use common::audio::write_wav24;
use stemgraph::analysis::check::{check, CheckReport, Severity};
use stemgraph::script::load_recipe;

const FS: u32 = 48_000;

/// A music-like stem: filtered noise bursts at a tempo, so offsets are findable.
fn stem(seed: u64, n: usize, lp: f64) -> Vec<Vec<f64>> {
    let mut r = common::Rng::new(seed);
    let mut y = [0.0f64; 2];
    let beat = 12_000 + (seed as usize % 5) * 1000;
    (0..2)
        .map(|c| {
            (0..n)
                .map(|k| {
                    let env = (-((k % beat) as f64) / 4000.0).exp();
                    y[c] += lp * (r.next_f64() * 0.5 - y[c]);
                    y[c] * env * 0.6
                })
                .collect()
        })
        .collect()
}

struct Project {
    dir: tempfile::TempDir,
    stems: Vec<(String, Vec<Vec<f64>>)>,
}

fn project() -> Project {
    let n = FS as usize * 8;
    let names = ["drums", "bass", "keys", "vocals"];
    let stems: Vec<(String, Vec<Vec<f64>>)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            (
                name.to_string(),
                stem(i as u64 + 11, n, [0.9, 0.05, 0.3, 0.5][i]),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("stems")).unwrap();
    // The reference is the sum of the stems as written (24-bit), quantized.
    let q = |x: f64| (x * 8_388_608.0).round().clamp(-8_388_608.0, 8_388_607.0) / 8_388_608.0;
    let mix: Vec<Vec<f64>> = (0..2)
        .map(|c| {
            (0..n)
                .map(|k| q(stems.iter().map(|(_, s)| q(s[c][k])).sum::<f64>()))
                .collect()
        })
        .collect();
    write_wav24(&dir.path().join("stems/mix.wav"), &mix, FS);
    let p = Project { dir, stems };
    for (name, s) in &p.stems {
        write_wav24(&p.dir.path().join(format!("stems/{name}.wav")), s, FS);
    }
    let recipe = "local s = session { reference = 'stems/mix.wav' }\nlocal m = s:bus 'master'\n\
        for _, n in ipairs { 'drums', 'bass', 'keys', 'vocals' } do s:stem(n, 'stems/' .. n .. '.wav'):to(m) end\n\
        m:to(s:output())\nreturn s\n";
    std::fs::write(p.dir.path().join("song.lua"), recipe).unwrap();
    p
}

impl Project {
    fn replace(&self, name: &str, f: impl Fn(&[Vec<f64>]) -> Vec<Vec<f64>>, rate: u32) {
        let s = &self.stems.iter().find(|(n, _)| n == name).unwrap().1;
        write_wav24(
            &self.dir.path().join(format!("stems/{name}.wav")),
            &f(s),
            rate,
        );
    }
    fn check(&self) -> CheckReport {
        check(&load_recipe(&self.dir.path().join("song.lua")).unwrap()).unwrap()
    }
}

fn find<'a>(
    r: &'a CheckReport,
    check_name: &str,
    stem: Option<&str>,
) -> Option<&'a stemgraph::analysis::check::Finding> {
    r.findings
        .iter()
        .find(|f| f.check == check_name && f.stem.as_deref() == stem)
}

#[test]
fn clean_stems_pass_with_a_deep_null() {
    let p = project();
    let r = p.check();
    assert!(!r.failed(), "{:#?}", r.findings);
    let nt = r.null_test.as_ref().unwrap();
    assert!(nt.residual_rms_dbfs < -90.0, "{}", nt.residual_rms_dbfs);
    assert_eq!(nt.severity, Severity::Pass);
    assert!(r.stems.iter().all(|s| s.offset_samples == Some(0.0)));
}

#[test]
fn a_shifted_stem_is_found_with_its_offset() {
    let p = project();
    p.replace(
        "keys",
        |s| {
            s.iter()
                .map(|c| {
                    std::iter::repeat_n(0.0, 480)
                        .chain(c[..c.len() - 480].iter().copied())
                        .collect()
                })
                .collect()
        },
        FS,
    );
    let r = p.check();
    let f = find(&r, "offset", Some("keys")).expect("offset found");
    assert_eq!(f.severity, Severity::Fail);
    assert!((f.value.unwrap() - 480.0).abs() <= 1.0, "{f:?}");
    assert!(
        f.message.contains("10.00 ms") && f.message.contains("later"),
        "{}",
        f.message
    );
    assert!(r.failed());
}

#[test]
fn an_inverted_stem_is_found() {
    let p = project();
    p.replace(
        "bass",
        |s| s.iter().map(|c| c.iter().map(|x| -x).collect()).collect(),
        FS,
    );
    let r = p.check();
    assert!(
        find(&r, "polarity", Some("bass")).is_some(),
        "{:#?}",
        r.findings
    );
    assert!(r.failed());
}

#[test]
fn a_stem_one_db_down_is_found_as_minus_one_db() {
    let p = project();
    let g = 10f64.powf(-1.0 / 20.0);
    p.replace(
        "vocals",
        |s| {
            s.iter()
                .map(|c| c.iter().map(|x| x * g).collect())
                .collect()
        },
        FS,
    );
    let r = p.check();
    let f = find(&r, "gain", Some("vocals")).expect("gain found");
    assert!((f.value.unwrap() + 1.0).abs() <= 0.05, "{f:?}");
}

#[test]
fn a_missing_stem_fails() {
    let p = project();
    std::fs::remove_file(p.dir.path().join("stems/keys.wav")).unwrap();
    let r = p.check();
    assert_eq!(
        find(&r, "file", Some("keys")).unwrap().severity,
        Severity::Fail
    );
}

#[test]
fn a_missing_element_is_diagnosed_with_its_band() {
    let p = project();
    // The recipe forgets the drums (bright noise): the residual is the drums.
    let recipe = std::fs::read_to_string(p.dir.path().join("song.lua"))
        .unwrap()
        .replace("'drums', ", "");
    std::fs::write(p.dir.path().join("song.lua"), recipe).unwrap();
    // Its file is still beside the stems: it is named.
    let r = p.check();
    let f = find(&r, "missing_element", Some("drums")).expect("drums named");
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        r.fixes.iter().any(|f| f.add && f.stem == "drums"),
        "{:?}",
        r.fixes
    );
    // Gone from the folder too: the residual's band says what kind of element is missing.
    std::fs::remove_file(p.dir.path().join("stems/drums.wav")).unwrap();
    let r = p.check();
    let f = find(&r, "null_test", None).unwrap();
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.contains("mostly") && f.message.contains("kHz"),
        "{}",
        f.message
    );
}

#[test]
fn a_stem_at_another_rate_fails() {
    let p = project();
    p.replace(
        "bass",
        |s| {
            s.iter()
                .map(|c| c.iter().step_by(2).copied().collect())
                .collect()
        },
        24_000,
    );
    let r = p.check();
    let f = find(&r, "sample_rate", Some("bass")).expect("rate finding");
    assert_eq!(f.value, Some(24_000.0));
    assert_eq!(f.severity, Severity::Fail);
}

#[test]
fn a_stem_at_44k1_among_48k_fails() {
    let p = project();
    p.replace(
        "keys",
        |s| {
            s.iter()
                .map(|c| c[..c.len() * 441 / 480].to_vec())
                .collect()
        },
        44_100,
    );
    let r = p.check();
    assert_eq!(
        find(&r, "sample_rate", Some("keys")).unwrap().value,
        Some(44_100.0)
    );
}

#[test]
fn a_clipped_stem_is_found_and_counted() {
    let p = project();
    p.replace(
        "drums",
        |s| {
            s.iter()
                .map(|c| c.iter().map(|x| (x * 8.0).clamp(-1.0, 1.0)).collect())
                .collect()
        },
        FS,
    );
    let r = p.check();
    let f = find(&r, "clipping", Some("drums")).expect("clipping found");
    assert_eq!(f.severity, Severity::Fail);
    assert!(f.value.unwrap() > 10.0);
}

#[test]
fn generic_names_and_counts_warn() {
    let p = project();
    let recipe = std::fs::read_to_string(p.dir.path().join("song.lua"))
        .unwrap()
        .replace("s:stem(n, 'stems/' .. n .. '.wav')", "s:stem(n == 'keys' and 'Audio 1' or n, 'stems/' .. (n == 'keys' and 'x' or n) .. '.wav')");
    std::fs::write(p.dir.path().join("song.lua"), recipe).unwrap();
    std::fs::copy(
        p.dir.path().join("stems/keys.wav"),
        p.dir.path().join("stems/x.wav"),
    )
    .unwrap();
    let r = p.check();
    assert_eq!(
        find(&r, "name", Some("Audio 1")).unwrap().severity,
        Severity::Warn
    );
}
