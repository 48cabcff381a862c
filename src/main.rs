//! The `asyncio-tool` binary: parse the command line, install the error layer, run, exit.

use std::process::ExitCode;

fn main() -> ExitCode {
    match asyncio_tool::cli::Cli::parse_args() {
        Ok(cli) => asyncio_tool::run(cli).into(),
        Err(exit) => exit.into(),
    }
}

/// Runs before Rust's runtime reopens closed standard descriptors on /dev/null, so the real
/// state can be recorded (see `asyncio_tool::stdio`). A constructor in `.init_array` is three
/// lines; a crate for it would be a dependency for one attribute.
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_CLOSED_STDIO: extern "C" fn() = record_closed_stdio;

extern "C" fn record_closed_stdio() {
    asyncio_tool::sys::stdio::record_closed_at_start();
}
