//! The subcommands, one module each: they take their parsed options and the [`Ui`](crate::ui::Ui)
//! and return an [`Exit`](crate::exit::Exit).

pub(crate) mod cat;
pub mod completions;
pub(crate) mod echo_client;
pub(crate) mod echo_server;
pub(crate) mod report;
