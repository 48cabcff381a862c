//! The `asyncio-tool` binary: parse the command line, install the error layer, run, exit.

use std::process::ExitCode;

fn main() -> ExitCode {
    match asyncio_tool::cli::Cli::parse_args() {
        Ok(cli) => asyncio_tool::run(cli).into(),
        Err(exit) => exit.into(),
    }
}
