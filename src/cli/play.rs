//! `stemgraph play RECIPE`: live playback with hot reload and meters (feature `live`; without
//! it the command says which feature it needs).

use super::CliError;
use std::path::PathBuf;

/// Frames per callback when `--buffer-frames` is not given. The `live` module owns the figure;
/// this copy lets the argument list exist in a build without it (the assertion keeps them equal).
const DEFAULT_BUFFER_FRAMES: u32 = 1024;
#[cfg(feature = "live")]
const _: () = assert!(DEFAULT_BUFFER_FRAMES == stemgraph::live::output::DEFAULT_BUFFER_FRAMES);

/// Arguments of `play`.
#[derive(clap::Args)]
#[cfg_attr(not(feature = "live"), allow(dead_code))]
pub struct Args {
    /// The recipe (a Lua file).
    #[arg(required_unless_present = "list_devices")]
    recipe: Option<PathBuf>,
    /// Where to start: seconds or m:ss.
    #[arg(long, value_name = "TIME", default_value = "0")]
    from: String,
    /// Output device: its name, id, or a unique part of its name (see --list-devices).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// List the output devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Frames per audio callback (the device holds two callbacks' worth).
    #[arg(long, value_name = "N",
          default_value_t = DEFAULT_BUFFER_FRAMES,
          value_parser = clap::value_parser!(u32).range(16..=8192))]
    buffer_frames: u32,
    /// Do not ask for real-time priority for the audio thread.
    #[arg(long)]
    no_realtime: bool,
    /// Do not reload the recipe when it is saved.
    #[arg(long)]
    no_watch: bool,
    /// Print a status line per second and one per reload instead of the terminal UI.
    #[arg(long)]
    no_tui: bool,
    /// Crossfade of structural reloads, in milliseconds (20-50).
    #[arg(long, value_name = "MS", default_value_t = 30.0,
          value_parser = crossfade_ms)]
    crossfade_ms: f64,
    /// Stop after this many seconds (for tests and scripts).
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
    /// Loop a region from the start: START..END (seconds or m:ss) or a section name.
    #[arg(long = "loop", value_name = "REGION")]
    loop_region: Option<String>,
    /// A reference track to A/B against (`a` key), loudness-matched, instead of the recipe's
    /// reference mix: the track a master is matched to (`stemgraph match`).
    #[arg(long, value_name = "FILE")]
    reference: Option<std::path::PathBuf>,
}

fn crossfade_ms(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (20.0..=50.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} ms is outside 20-50 ms"))
    }
}

/// Runs `play`.
#[cfg(not(feature = "live"))]
pub fn run(_args: Args) -> Result<(), CliError> {
    Err(super::missing_feature("`stemgraph play`", "live"))
}

/// Runs `play`.
#[cfg(feature = "live")]
pub fn run(args: Args) -> Result<(), CliError> {
    use stemgraph::live::player::{play, PlayOptions};
    use stemgraph::live::transport::parse_from;
    if args.list_devices {
        for line in stemgraph::live::output::list_devices()? {
            println!("{line}");
        }
        return Ok(());
    }
    let recipe = args.recipe.expect("clap requires it");
    // Loading the installed LV2 plugins' descriptions takes seconds: done now, in the
    // background at a low priority, a plugin first added to the recipe while playing compiles in
    // milliseconds.
    #[cfg(feature = "plugins")]
    std::thread::spawn(|| {
        stemgraph::live::loudness::lower_thread_priority();
        drop(stemgraph::dsp::plugin::installed());
    });
    let opts = PlayOptions {
        recipe,
        from_seconds: parse_from(&args.from).map_err(|e| format!("--from: {e}"))?,
        device: args.device,
        buffer_frames: args.buffer_frames,
        realtime: !args.no_realtime,
        watch: !args.no_watch,
        tui: !args.no_tui,
        crossfade_ms: args.crossfade_ms,
        seconds: args.seconds,
        loop_region: args.loop_region,
        interrupt: Some(super::interrupt_flag()),
        reference: args.reference,
    };
    play(&opts)?;
    Ok(())
}
