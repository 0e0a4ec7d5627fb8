//! The `normscope` command line: parse, call the library, print.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc instead of glibc's malloc: candle allocates a fresh buffer for
/// every op, and glibc hands large ones back to the kernel each time (page
/// faults on every decode step and optimizer update).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        // --help, --version, and the help (the command list) when no
        // arguments are given, as cargo and git show it.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            let argv: Vec<String> = std::env::args().collect();
            cli::out::eprintln(format_args!(
                "{} (see --help)",
                cli::parse_error_line(&e, &argv)
            ));
            return ExitCode::from(2);
        }
    };
    cli::init_logging(args.common.verbose);
    cli::install_reporter(args.common.progress);
    cli::install_interrupt_handler();
    if let Some(n) = args.command.threads() {
        // candle and rayon read this once, on first use.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            cli::out::eprintln(format_args!("error: {}", cli::one_line(&e)));
            ExitCode::FAILURE
        }
    }
}
