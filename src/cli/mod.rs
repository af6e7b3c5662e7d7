//! The command line: one module per subcommand. Errors come back as one paragraph on stderr and a
//! non-zero exit status; `--json` output goes to stdout alone.

mod album;
mod analyze;
mod check;
mod demo;
mod graph;
mod r#match;
mod play;
mod plugins;
mod render;

use clap::{Parser, Subcommand};

/// stemgraph: stem mastering as code. A Lua recipe describes the graph (stems → processors →
/// buses → master chain → deliverables); stemgraph renders it, plays it, checks and measures it.
#[derive(Parser)]
#[command(name = "stemgraph", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render every deliverable a recipe declares.
    Render(render::Args),
    /// Write the built-in demo song (stems and reference mix) and render the demo recipe on it.
    Demo(demo::Args),
    /// Print the compiled graph as text or Graphviz DOT.
    Graph(graph::Args),
    /// Check the stems: rates, lengths, offsets, levels, and the null test against the reference.
    Check(check::Args),
    /// Play a recipe live, reloading it on every save, with meters.
    Play(play::Args),
    /// Loudness and level analysis of audio files (table, JSON, plot).
    Analyze(analyze::Args),
    /// Render an album: every song, one loudness policy, every deliverable, in parallel.
    Album(album::Args),
    /// Propose an editable recipe change (per stem, EQ, width, loudness) toward a reference track.
    Match(r#match::Args),
    /// List the installed LV2 and CLAP plugins (ports, parameters, latency); `plugin save-state` saves a
    /// plugin node's state beside the recipe.
    #[command(alias = "plugin")]
    Plugins(plugins::Args),
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Check(args) => check::run(args),
        Command::Play(args) => play::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Album(args) => album::run(args),
        Command::Match(args) => r#match::run(args),
        Command::Plugins(args) => plugins::run(args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// The error every subcommand returns: a message for people.
pub type CliError = Box<dyn std::error::Error>;

/// A flag set by Ctrl-C so renders stop cleanly and leave no partial files.
pub fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: give up at once.
                std::process::exit(130);
            }
        });
        flag
    })
    .clone()
}

/// The error of a command (or option) that needs a Cargo feature this build was made without.
#[cfg(any(not(feature = "live"), not(feature = "plot"), not(feature = "demo")))]
pub fn missing_feature(what: &str, feature: &str) -> CliError {
    format!(
        "{what} needs the `{feature}` feature, which this build of stemgraph was made without; \
         build it with `cargo build --features {feature}` (or with the default features)"
    )
    .into()
}
