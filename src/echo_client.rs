//! `echo_client` (not implemented yet: see its issue).

use color_eyre::eyre;

use crate::cli::EchoClientArgs;
use crate::exit::Exit;
use crate::ui::Ui;

/// Runs the subcommand.
pub fn run(_args: &EchoClientArgs, _ui: &Ui) -> eyre::Result<Exit> {
    eyre::bail!("echo-client: not implemented yet")
}
