//! Documentation rendered from the one clap model: shell completion scripts (the `completions`
//! subcommand) and man pages. `completions/` and `man/` in the repository hold their output,
//! and a test fails when those files are stale.

use std::io::Write;
use std::path::PathBuf;

use clap_complete::{Generator, Shell};
use color_eyre::eyre::{self, WrapErr};

use crate::cli::{self, CompletionsArgs};
use crate::exit::Exit;

/// The name the scripts and pages complete and document.
const BIN: &str = "asyncio-tool";

/// Every shell `completions/` holds a script for.
pub const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::Elvish,
    Shell::PowerShell,
];

/// `asyncio-tool completions SHELL`: writes the script to stdout.
pub fn run(args: &CompletionsArgs) -> eyre::Result<Exit> {
    let script = completion_script(args.shell);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(|e| crate::report::stdout_error(e, "cannot write to standard output"))?;
    Ok(Exit::Success)
}

/// The completion script for `shell`, as bytes.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), BIN, &mut out);
    out
}

/// Every generated file, as (path relative to the repository root, contents): the completion
/// scripts under clap_complete's default names, and one man page per command.
pub fn generated_files() -> eyre::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let name = shell.file_name(BIN);
        files.push((
            PathBuf::from("completions").join(name),
            completion_script(shell),
        ));
    }
    let mut command = cli::command();
    command.build();
    files.push((
        PathBuf::from("man").join(format!("{BIN}.1")),
        render_man(command.clone())?,
    ));
    for sub in command.get_subcommands() {
        let name = format!("{BIN}-{}", sub.get_name());
        // Man pages are titled after the page name; the usage line keeps the real invocation.
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("{BIN} {}", sub.get_name()));
        files.push((
            PathBuf::from("man").join(format!("{name}.1")),
            render_man(page)?,
        ));
    }
    Ok(files)
}

fn render_man(command: clap::Command) -> eyre::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .wrap_err("cannot render a man page")?;
    Ok(out)
}
