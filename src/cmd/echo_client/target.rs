//! The server's address as `echo-client` takes it: one word (`HOST:PORT`, `PORT`,
//! `[IPV6]:PORT`) or, as nc takes it, two (`HOST PORT`). A clap argument group of its own, so
//! a wrong combination is a usage error (exit 2) before any I/O, like any other bad value.

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, Command, FromArgMatches};

use crate::net::addr::{DEFAULT_ADDR, HostPort, parse_host_port};

/// The two positional words as typed.
#[derive(Debug, Args)]
struct Words {
    /// Server to connect to: PORT, HOST:PORT or [IPV6]:PORT (a link-local one with its
    /// interface: [fe80::1%eth0]:PORT), or HOST alone followed by PORT (as nc takes it); every
    /// address a name resolves to is tried in turn.
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: String,

    /// The port, when ADDR is a host alone: `echo-client example.com 7`.
    #[arg(value_name = "PORT")]
    port: Option<String>,
}

/// The server to connect to, from one word or two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(pub HostPort);

impl Target {
    /// Combines `ADDR [PORT]` into a host and a port, or says what is wrong.
    fn from_words(addr: &str, port: Option<&str>) -> Result<Target, String> {
        let Some(port) = port else {
            return parse_host_port(addr).map(Target);
        };
        let host = addr.trim();
        if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{host} {port}': two ports; give HOST PORT, HOST:PORT or PORT"
            ));
        }
        let joined = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            format!("[{v6}]:{port}")
        } else if host.contains(':') {
            // Without brackets, a colon is either an IPv6 address (nc takes `::1 7`) or a
            // port given twice.
            let ip = host.split('%').next().unwrap_or(host);
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!(
                    "'{host} {port}': the port is given twice; give HOST PORT or HOST:PORT"
                ));
            }
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        parse_host_port(&joined).map(Target)
    }
}

impl FromArgMatches for Target {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = Words::from_arg_matches(matches)?;
        Target::from_words(&words.addr, words.port.as_deref()).map_err(usage_error)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Target::from_arg_matches(matches)?;
        Ok(())
    }
}

/// A usage error showing `echo-client`'s usage line: clap would otherwise show the top
/// level's, as this runs after parsing, outside the subcommand.
fn usage_error(msg: String) -> clap::Error {
    let err = clap::Error::raw(ErrorKind::ValueValidation, msg);
    let mut cli = crate::cli::command();
    cli.build();
    match cli.find_subcommand_mut("echo-client") {
        Some(client) => err.format(client),
        None => err,
    }
}

impl Args for Target {
    fn augment_args(cmd: Command) -> Command {
        Words::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Words::augment_args_for_update(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combine(addr: &str, port: Option<&str>) -> Result<String, String> {
        Target::from_words(addr, port).map(|t| t.0.to_string())
    }

    #[test]
    fn one_word_or_host_and_port() {
        assert_eq!(combine("127.0.0.1:7", None), Ok("127.0.0.1:7".into()));
        assert_eq!(combine("7101", None), Ok("127.0.0.1:7101".into()));
        assert_eq!(
            combine("127.0.0.1", Some("7101")),
            Ok("127.0.0.1:7101".into())
        );
        assert_eq!(combine("localhost", Some("7")), Ok("localhost:7".into()));
        assert_eq!(combine("::1", Some("7")), Ok("[::1]:7".into()));
        assert_eq!(combine("[::1]", Some("7")), Ok("[::1]:7".into()));
    }

    #[test]
    fn wrong_combinations_say_what_is_accepted() {
        assert_eq!(
            combine("7101", Some("7102")),
            Err("'7101 7102': two ports; give HOST PORT, HOST:PORT or PORT".into())
        );
        assert_eq!(
            combine("host:7", Some("8")),
            Err("'host:7 8': the port is given twice; give HOST PORT or HOST:PORT".into())
        );
        assert!(combine("host", Some("0")).is_err());
        assert!(combine("host", Some("http")).is_err());
        assert!(combine("host", None).is_err());
    }
}
