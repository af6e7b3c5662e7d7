//! The `stemgraph` command: parses the command line and hands over to `cli`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
