//! The `normscope` command line: parse, call the library, print.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.common.verbose);
    if let Some(n) = args.common.threads {
        // candle and rayon read this once, on first use.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
