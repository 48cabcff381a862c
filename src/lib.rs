//! asyncio-tool: an async file and socket utility on tokio.
//!
//! One binary with five subcommands under [`cmd`] — `cat` (GNU-exact, zero-copy where the
//! kernel allows), `echo-server`, `echo-client`, `report` (many runs' results as one) and
//! `completions` — sharing one command line
//! ([`cli`]), one runtime set-up ([`runtime`]), one error layer ([`report`]), one set of exit
//! codes ([`exit`]), one writer of human output ([`ui`]), the network endpoints ([`net`]) and
//! descriptor-level helpers ([`sys`]). The library shape lets tests and benches call the pieces
//! directly.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod cmd;
pub mod exit;
pub mod latency;
mod net;
mod report;
mod runtime;
pub mod sys;
mod ui;

use cli::{Cli, Command};
use cmd::{cat, completions, echo_client, echo_server, report as report_cmd};
use exit::Exit;
use ui::Ui;

/// Runs a parsed command line to its exit status. Errors are printed here, once; a closed
/// stdout ([`report::StdoutClosed`]) ends the run quietly with success.
pub fn run(cli: Cli) -> Exit {
    let json = matches!(&cli.command, Command::EchoServer(args)
        if args.observe.log_format == cli::server::LogFormat::Json);
    let ui = Ui::new(cli.global.color.forced(), cli.global.quiet, cli.verbosity()).with_json(json);
    if let Err(err) = report::install(ui.color) {
        // Only possible if a hook was installed before; reporting still works without ours.
        ui.warn(&format!("error hook not installed: {err}"));
    }
    let result = match cli.command {
        Command::Cat(args) => cat::run(&args, &ui),
        Command::EchoServer(args) => echo_server::run(&args, &ui),
        Command::EchoClient(args) => echo_client::run(&args, &ui),
        Command::Completions(args) => completions::run(&args),
        Command::Report(args) => report_cmd::run(&args, &ui),
    };
    match result {
        Ok(exit) => exit,
        Err(err) if report::is_stdout_closed(&err) => Exit::Success,
        Err(err) => {
            ui.error(&err);
            Exit::Failure
        }
    }
}
