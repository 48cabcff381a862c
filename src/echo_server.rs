//! `echo_server` (not implemented yet: see its issue).

use color_eyre::eyre;

use crate::cli::EchoServerArgs;
use crate::exit::Exit;
use crate::ui::Ui;

/// Runs the subcommand.
pub fn run(_args: &EchoServerArgs, _ui: &Ui) -> eyre::Result<Exit> {
    eyre::bail!("echo-server: not implemented yet")
}
