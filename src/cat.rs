//! `cat` (not implemented yet: see its issue).

use color_eyre::eyre;

use crate::cli::CatArgs;
use crate::exit::Exit;
use crate::ui::Ui;

/// Runs the subcommand.
pub fn run(_args: &CatArgs, _ui: &Ui) -> eyre::Result<Exit> {
    eyre::bail!("cat: not implemented yet")
}
