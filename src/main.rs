//! `brainseg`: the command line. It owns arguments, progress and exit codes; the pipeline lives in the
//! `brainseg-*` library crates, one per stage.
use clap::Parser;

mod cli;

fn main() {
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        // One line: the context chain joined by ": ", naming the file and the problem.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
