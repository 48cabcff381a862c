//! The `asyncio-tool` binary: parse the command line, install the error layer, run, exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = asyncio_tool::cli::Cli::parse();
    asyncio_tool::run(cli).into()
}
