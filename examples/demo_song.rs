//! Writes the demo song's stems and reference mix and reports how long it took.
//!
//! `cargo run --release --example demo_song -- OUT_DIR [SECONDS] [STEMS] [SEED]`

use std::path::PathBuf;
use std::time::Instant;

use stemgraph::demo::{write_demo, DemoOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "demo-out".into()));
    let mut opts = DemoOptions::default();
    if let Some(s) = args.next() {
        opts.seconds = s.parse().expect("SECONDS must be a number");
    }
    if let Some(s) = args.next() {
        opts.stems = s.parse().expect("STEMS must be an integer");
    }
    if let Some(s) = args.next() {
        opts.seed = s.parse().expect("SEED must be an integer");
    }
    let start = Instant::now();
    match write_demo(&dir, &opts) {
        Ok(files) => {
            let secs = start.elapsed().as_secs_f64();
            for (name, path) in &files.stems {
                println!("{name:8} {}", path.display());
            }
            println!("mix      {}", files.reference.display());
            println!(
                "{} stems x {} s in {:.2} s ({:.0}x real time)",
                opts.stems,
                opts.seconds,
                secs,
                opts.seconds / secs
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
