//! Cargo features seen from the command line: every command is there whatever the build, and a
//! command or option whose feature the build was made without says which feature to enable
//! (these run under `cargo test --no-default-features`, which `make test` runs too).

use std::process::{Command, Output};

fn stemgraph(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stemgraph"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_command_is_listed_whatever_the_features() {
    let out = stemgraph(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in [
        "render", "demo", "graph", "check", "play", "analyze", "album", "plugins",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing from:\n{help}"
        );
    }
}

/// The command fails with one paragraph naming the feature and how to build with it.
#[allow(dead_code)]
fn assert_names_feature(out: &Output, feature: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("`{feature}` feature"))
            && err.contains(&format!("--features {feature}")),
        "{err}"
    );
}

#[test]
#[cfg(not(feature = "live"))]
fn play_without_the_live_feature_names_it() {
    assert_names_feature(&stemgraph(&["play", "recipe.lua"]), "live");
}

#[test]
#[cfg(not(feature = "demo"))]
fn demo_without_the_demo_feature_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    assert_names_feature(
        &stemgraph(&["demo", "--out", out.to_str().unwrap()]),
        "demo",
    );
    assert!(!out.exists(), "nothing is written");
}

/// Refused before any file is read: the file named does not even exist.
#[test]
#[cfg(not(feature = "plot"))]
fn analyze_plot_without_the_plot_feature_names_it() {
    assert_names_feature(
        &stemgraph(&["analyze", "missing.wav", "--plot", "missing.png"]),
        "plot",
    );
}

/// With the feature, `--plot` is accepted (the file is missing: the error is about the file).
#[test]
#[cfg(feature = "plot")]
fn analyze_plot_with_the_plot_feature_reads_the_file() {
    let out = stemgraph(&["analyze", "missing.wav", "--plot", "missing.png"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing.wav") && !err.contains("feature"),
        "{err}"
    );
}

#[test]
#[cfg(not(feature = "plugins"))]
fn plugins_without_the_plugins_feature_names_it() {
    assert_names_feature(&stemgraph(&["plugins"]), "plugins");
}
