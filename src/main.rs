//! The `stemgraph` command: parses the command line and hands over to `cli`.

mod cli;

fn main() {
    // Rust ignores SIGPIPE, which turns `stemgraph analyze --json … | head` into a panic on the
    // next print; the default action ends the process quietly, as command-line tools do.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default at start-up, before any thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Which instruction set the hot loops use, decided once before any audio runs.
    stemgraph::dsp::simd::init();
    std::process::exit(cli::main());
}
