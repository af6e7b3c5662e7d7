//! The README's cluster recipes for `stemgraph album --plan/--job/--finish`, run for real: the
//! GNU parallel commands with `parallel` as packaged, and the Slurm commands on a single-node
//! cluster that `.ci/slurm-start` brings up (munged, slurmctld and slurmd on localhost). The
//! commands are taken from README.md ("Beyond one machine") and run literally with bash (only
//! their first line, `A=… O=… N=…`, is replaced by this test's album, output folder and song
//! count), so the documentation and the test cannot drift apart. The album they produce must be
//! byte-identical to `stemgraph album` run once on one machine.
//!
//! parallel, Slurm and munge are optional on a workstation (the test is then skipped, loudly);
//! under `CI=true` (`make test` installs them) their absence is a failure. Slurm needs root.

use crate::common;

use common::demo::band_4stem_song;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use stemgraph::demo::DemoOptions;

const SONGS: usize = 2;

/// Whether `tool` is installed (in PATH or /usr/sbin); under `CI=true` its absence fails.
fn have_all(tools: &[&str], what: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t} || test -x /usr/sbin/{t}")])
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{what}: {} missing; install with `.ci/install-deps test`",
        missing.join(", ")
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (required under CI=true)"
    );
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    false
}

/// The indented command block that follows the README paragraph starting with `lead`.
fn readme_block(lead: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(lead))
        .unwrap_or_else(|| panic!("README.md has no paragraph starting with {lead:?}"));
    let block: Vec<String> = lines[at + 1..]
        .iter()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with("    "))
        .map(|l| l[4..].to_string())
        .collect();
    assert!(!block.is_empty(), "no command block after {lead:?}");
    block
}

/// The block as a bash script on this test's album: its first line must set A, O and N, and is
/// replaced by the test's values.
fn script(block: &[String], album: &Path, out: &Path) -> String {
    let first = &block[0];
    assert!(
        first.starts_with("A=") && first.contains(" O=") && first.contains(" N="),
        "the README block starts with `A=… O=… N=…`, not {first:?}"
    );
    let mut s = String::from("set -euo pipefail\n");
    s += &format!("A='{}' O='{}' N={SONGS}\n", album.display(), out.display());
    for l in &block[1..] {
        s += l;
        s.push('\n');
    }
    s
}

/// Two demo songs (4 s) and an album file with WAV, FLAC and a CD image.
fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for n in 1..=SONGS {
        let opts = DemoOptions {
            seconds: 4.0,
            seed: 500 + n as u64,
            ..DemoOptions::default()
        };
        band_4stem_song(dir.path(), n, &opts);
    }
    let album = dir.path().join("album.lua");
    std::fs::write(
        &album,
        r#"return album {
  title = "Cluster Album", artist = "The Examples", upc = "4006381333931",
  template = "band_4stem",
  policy = { mode = "album_gain", key = "whole", target_lufs = -14, ceiling_dbtp = -1 },
  deliver = {
    wav { file = "{track:02} {title}.wav", bits = 24 },
    flac { file = "flac/{track:02} {title}.flac", bits = 16, sample_rate_hz = 44100 },
  },
  cd = true,
  songs = {
    { title = "One", stems = "songs/01/stems", isrc = "GB-AYE-24-00001" },
    { title = "Two", stems = "songs/02/stems", vocals = { gain_db = 1 } },
  },
}
"#,
    )
    .unwrap();
    (dir, album)
}

/// PATH with the stemgraph under test first.
fn path_with_stemgraph() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_stemgraph"));
    format!(
        "{}:{}:/usr/sbin",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Every file under `out` but the album's work records, relative to `out`, sorted.
fn files(out: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.strip_prefix(out).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// The album rendered by one `stemgraph album` run.
fn single_machine(album: &Path, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .arg("album")
        .arg(album)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Every audio file, CUE sheet and DDP file of `a` is in `b` with the same bytes. (The report
/// differs by its run facts: wall time.)
fn assert_same_album(a: &Path, b: &Path) {
    let fa = files(a);
    assert_eq!(fa, files(b), "the two albums hold different files");
    let compared: Vec<&PathBuf> = fa
        .iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            !(name.ends_with(".json") || name.ends_with(".md"))
        })
        .collect();
    assert!(compared.len() >= 2 * SONGS + 2, "{compared:?}");
    for p in compared {
        assert!(
            std::fs::read(a.join(p)).unwrap() == std::fs::read(b.join(p)).unwrap(),
            "{} differs from the single-machine render",
            p.display()
        );
    }
}

#[test]
fn readme_gnu_parallel_recipe_gives_the_single_machine_album() {
    if !have_all(&["parallel"], "cluster (GNU parallel)") {
        return;
    }
    let (dir, album) = project();
    let one = dir.path().join("one");
    single_machine(&album, &one);
    let out = dir.path().join("parallel");
    let s = script(&readme_block("With GNU parallel"), &album, &out);
    let o = Command::new("bash")
        .args(["-c", &s])
        .current_dir(dir.path())
        .env("PATH", path_with_stemgraph())
        // parallel's citation notice would wait for an answer.
        .env("HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the README's GNU parallel commands failed:\n{s}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(dir.path().join("plan.json").is_file());
    assert_same_album(&one, &out);
}

/// The single-node cluster of `.ci/slurm-start`, stopped when dropped if this test started it.
struct Slurm {
    conf: String,
}

impl Slurm {
    fn start() -> Option<Slurm> {
        let tools = [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scancel",
        ];
        if !have_all(&tools, "cluster (Slurm)") {
            return None;
        }
        let root = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the Slurm test runs its cluster as root (CI does)"
            );
            eprintln!("\n!!!!!!!! SKIPPED: cluster (Slurm) needs root !!!!!!!!\n");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/slurm-start");
        let o = Command::new(&script)
            .arg("/tmp/stemgraph-slurm")
            .output()
            .expect("run .ci/slurm-start");
        assert!(
            o.status.success(),
            "slurm-start: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let conf = String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF=").map(str::to_string))
            .expect("slurm-start prints SLURM_CONF=");
        Some(Slurm { conf })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf)
            .env("PATH", path_with_stemgraph());
        c
    }

    /// Cancels every job of the cluster (it is this test's own: a run that failed may have left
    /// jobs waiting for a dependency that will never be met).
    fn clear(&self) {
        let _ = self.command("scancel").args(["--user", "root"]).output();
        self.wait(Duration::from_secs(60));
    }

    /// Waits until no job is queued; fails on a dependency that can never be met (a job before
    /// it failed) or after `limit`.
    fn wait(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let o = self
                .command("squeue")
                .args(["-h", "-o", "%i %T %r"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            if text.trim().is_empty() {
                return;
            }
            assert!(
                !text.contains("DependencyNeverSatisfied"),
                "a Slurm job failed, the rest wait forever:\n{text}"
            );
            assert!(start.elapsed() < limit, "Slurm jobs still queued:\n{text}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn readme_slurm_recipe_gives_the_single_machine_album() {
    let Some(slurm) = Slurm::start() else {
        return;
    };
    let (dir, album) = project();
    let one = dir.path().join("one");
    single_machine(&album, &one);
    let out = dir.path().join("slurm");
    slurm.clear();
    let s = script(&readme_block("With Slurm"), &album, &out);
    let o = slurm
        .command("bash")
        .args(["-c", &s])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "the README's Slurm commands failed:\n{s}\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("Submitted batch job "),
        "the last sbatch says which job it submitted: {stdout}"
    );
    slurm.wait(Duration::from_secs(600));
    // Each job's output file says nothing went wrong.
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("slurm-") && name.ends_with(".out") {
            let log = std::fs::read_to_string(e.path()).unwrap();
            assert!(!log.contains("error"), "{name}: {log}");
        }
    }
    assert_same_album(&one, &out);
}
