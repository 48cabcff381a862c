//! The `asyncio-tool` binary: parse the command line, install the error layer, run, exit.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = asyncio_tool::cli::Cli::parse_args();
    asyncio_tool::run(cli).into()
}
