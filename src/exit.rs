//! Exit codes, decided in one place. Subcommands return an [`Exit`]; nothing calls
//! `process::exit`.

use std::process::ExitCode;

/// How the process ends. The numbers are documented in the README and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything asked for was done (a closed stdout counts as done).
    Success,
    /// 1: a runtime failure: a file that could not be read, a refused connection, ...
    Failure,
    /// 2: the command line was wrong (clap has printed why).
    Usage,
    /// 130: interrupted by Ctrl-C (128 + SIGINT, as a shell reports it).
    Interrupted,
}

impl Exit {
    /// The numeric status the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
