//! The test LV2 bundle (`tests/fixtures/lv2`: a mono and a stereo gain, a plugin that fails to
//! instantiate, one that crashes), compiled with the C compiler into a folder for `LV2_PATH`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lv2");

/// Builds the test bundle into `dir/lv2/stemgraph-test.lv2`; returns `dir/lv2` (for `LV2_PATH`).
pub fn bundle(dir: &Path) -> PathBuf {
    let lv2 = dir.join("lv2");
    let b = lv2.join("stemgraph-test.lv2");
    std::fs::create_dir_all(&b).unwrap();
    for f in ["manifest.ttl", "stemgraph-test.ttl"] {
        std::fs::copy(Path::new(FIXTURES).join(f), b.join(f)).unwrap();
    }
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(b.join("stemgraph-test.so"))
        .arg(Path::new(FIXTURES).join("stemgraph-test.c"))
        .status()
        .expect("a C compiler (`cc`) builds the test plugins");
    assert!(status.success(), "the test plugins did not compile");
    lv2
}

/// For tests that host plugins in their own process: builds the bundle once and puts it on
/// `LV2_PATH` (before the system folder) before any test loads the LV2 world. Every test of the
/// binary must call it first.
pub fn in_process() {
    use std::sync::OnceLock;
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let lv2 = bundle(dir.path());
        let system =
            std::env::var("LV2_PATH").unwrap_or_else(|_| "/usr/lib/lv2:/usr/local/lib/lv2".into());
        // SAFETY (edition 2021: safe): set once, under the OnceLock, before the world is loaded.
        std::env::set_var("LV2_PATH", format!("{}:{system}", lv2.display()));
        dir
    });
}

/// The CLAP test bundle (`plugins/clap-testgain`), built once per test binary with cargo into
/// `<target>/clap-testgain` (a target folder of its own: the outer `cargo test` may hold its own)
/// and copied into a temporary folder as `stemgraph-testgain.clap`. A build failure fails the
/// test (the crate is part of the repository: nothing to skip).
pub fn clap_bundle() -> PathBuf {
    use std::sync::OnceLock;
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile>/deps/<test binary>
        let target = exe.ancestors().nth(3).unwrap().join("clap-testgain");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = env!("CARGO_MANIFEST_DIR");
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "clap-testgain", "--manifest-path"])
            .arg(Path::new(root).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the CLAP test plugin did not build");
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("stemgraph-testgain.clap");
        std::fs::copy(target.join("debug/libclap_testgain.so"), &bundle).unwrap();
        (dir, bundle)
    })
    .1
    .clone()
}
