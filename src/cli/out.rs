//! Everything the CLI prints goes through here, never through `println!`:
//! a standard output whose reader has gone away (`| head`) or whose disk is
//! full (`> /dev/full`) is an error the command returns (`main` ends quietly
//! on a closed pipe and prints a one-line error otherwise), never a panic;
//! a standard error that cannot be written is given up on, since there is
//! nowhere left to say so.

use std::fmt::Display;
use std::io::Write;

/// How errors name standard output.
const STDOUT: &str = "standard output";

/// Writes `text` to standard output and flushes it.
pub fn print(text: &str) -> normscope::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| normscope::Error::io(STDOUT, e))
}

/// Writes `line` and a newline to standard output.
pub fn println(line: impl Display) -> normscope::Result<()> {
    print(&format!("{line}\n"))
}

/// Writes `line` and a newline to standard error, ignoring a closed or full one.
pub fn eprintln(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
