//! asyncio-tool: an async file and socket utility on tokio.
//!
//! One binary with four subcommands — [`cat`] (GNU-exact, zero-copy where the kernel allows),
//! [`echo_server`], [`echo_client`] and [`completions`] — sharing one runtime set-up
//! ([`runtime`]), one error layer ([`report`]), one set of exit codes ([`exit`]) and one place
//! that decides what a person sees on stderr ([`ui`]). The library shape lets tests and benches
//! call the pieces directly.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod addr;
pub mod cat;
pub mod cli;
pub mod completions;
pub mod echo_client;
pub mod echo_server;
pub mod exit;
pub mod fdio;
pub mod quote;
pub mod report;
pub mod runtime;
pub mod stdio;
pub mod ui;

use cli::{Cli, Command};
use exit::Exit;
use ui::Ui;

/// Runs a parsed command line to its exit status. Errors are printed here, once; a closed
/// stdout ([`report::StdoutClosed`]) ends the run quietly with success.
pub fn run(cli: Cli) -> Exit {
    let ui = Ui::new(&cli.global, cli.verbosity());
    if let Err(err) = report::install(ui.color) {
        // Only possible if a hook was installed before; reporting still works without ours.
        ui.warn(&format!("error hook not installed: {err}"));
    }
    let result = match cli.command {
        Command::Cat(args) => cat::run(&args, &ui),
        Command::EchoServer(args) => echo_server::run(&args, &ui),
        Command::EchoClient(args) => echo_client::run(&args, &ui),
        Command::Completions(args) => completions::run(&args),
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
