//! The endpoint words of `echo-server` and `echo-client`, each a clap argument group of its
//! own, so a wrong combination is a usage error (exit 2) before any I/O, like any other bad
//! value: `ADDR` with `-U/--unix` or `-u/--udp` for both, and for the client also nc's
//! `HOST PORT`. A UDP endpoint with an option that only means something for connections is
//! refused here too, saying why.

use crate::ui::quote::quoted;
use std::net::{Ipv6Addr, SocketAddr};

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};

use crate::net::addr::{
    DEFAULT_ADDR, DEFAULT_PORT, HostPort, parse_host_port, parse_listen_addr, problem,
};
use crate::net::endpoint::{self, Endpoint};

/// `echo-server`'s words as typed.
#[derive(Debug, Args)]
struct ListenWords {
    /// Address to listen on: PORT, HOST:PORT or [IPV6]:PORT (a link-local one with its
    /// interface: [fe80::1%eth0]:PORT; port 0 picks a free port), unix:PATH for a socket file,
    /// unix:@NAME for a Linux abstract name; tcp: may prefix a TCP address, udp: makes it UDP;
    /// tls: before a TCP or Unix address means --tls.
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: String,

    /// ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name).
    #[arg(short = 'U', long = "unix")]
    unix: bool,

    /// Serve UDP echo on ADDR (as udp:ADDR): each datagram goes back to its sender.
    #[arg(short = 'u', long = "udp", conflicts_with = "unix")]
    udp: bool,
}

/// Where `echo-server` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The endpoint to bind.
    pub endpoint: Endpoint<SocketAddr>,
    /// ADDR was typed, not the default: under socket activation it is ignored, with a warning.
    pub typed: bool,
}

impl FromArgMatches for Listen {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = ListenWords::from_arg_matches(matches)?;
        let parsed = if words.unix && defaulted(matches) {
            Err("-U/--unix needs a socket path as ADDR".to_owned())
        } else {
            endpoint::parse(&words.addr, words.unix, |rest| {
                parse_listen_addr(rest, &words.addr)
            })
            .and_then(|e| udp_flag(e, &words.addr, words.udp))
            .and_then(|e| only_for_connections(e, matches, &SERVER_CONNECTION_OPTIONS))
        };
        parsed
            .map(|endpoint| Listen {
                endpoint,
                typed: !defaulted(matches),
            })
            .map_err(|msg| usage_error("echo-server", msg))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Listen::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for Listen {
    fn augment_args(cmd: Command) -> Command {
        ListenWords::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        ListenWords::augment_args_for_update(cmd)
    }
}

/// `echo-client`'s words as typed.
#[derive(Debug, Args)]
struct Words {
    /// Server to connect to: PORT, HOST:PORT or [IPV6]:PORT (a link-local one with its
    /// interface: [fe80::1%eth0]:PORT), or HOST alone followed by PORT (as nc takes it); over
    /// TCP every address a name resolves to is tried in turn. unix:PATH or unix:@NAME for a
    /// Unix socket; udp:HOST:PORT for UDP (to the name's first address of the family allowed).
    /// tls: before a TCP or Unix address means --tls.
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: String,

    /// The port, when ADDR is a host alone: `echo-client example.com 7`.
    #[arg(value_name = "PORT")]
    port: Option<String>,

    /// ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name).
    #[arg(short = 'U', long = "unix")]
    unix: bool,

    /// Send UDP datagrams to ADDR (as udp:ADDR), as nc -u does: one per line of input.
    #[arg(short = 'u', long = "udp", conflicts_with = "unix")]
    udp: bool,
}

/// The server to connect to, from one word or two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(pub Endpoint<HostPort>);

impl Target {
    /// Combines `ADDR [PORT]` (and `-U`) into an endpoint, or says what is wrong. `typed` is
    /// ADDR as typed, which `addr` may spell out (a bare port under -6).
    fn from_words(
        addr: &str,
        typed: &str,
        port: Option<&str>,
        unix: bool,
    ) -> Result<Target, String> {
        let Some(port) = port else {
            return endpoint::parse(addr, unix, |rest| parse_host_port(rest, typed)).map(Target);
        };
        if unix
            || addr
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("unix:"))
        {
            return Err(format!(
                "{}: a Unix socket takes no port; give unix:PATH or -U PATH",
                quoted(&format!("{addr} {port}"))
            ));
        }
        let host = addr.trim();
        if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{}: two ports; give HOST PORT, HOST:PORT or PORT",
                quoted(&format!("{host} {port}"))
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
                    "{}: the port is given twice; give HOST PORT or HOST:PORT",
                    quoted(&format!("{host} {port}"))
                ));
            }
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let typed = format!("{addr} {port}");
        if port.trim().is_empty() {
            return Err(problem(&typed, "the port is empty"));
        }
        parse_host_port(&joined, &typed).map(|hp| Target(Endpoint::Tcp(hp)))
    }
}

impl FromArgMatches for Target {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = Words::from_arg_matches(matches)?;
        // -6 lives beside these words in `echo-client`; `try_get_one` keeps this usable alone.
        let ipv6 = matches
            .try_get_one::<bool>("ipv6")
            .ok()
            .flatten()
            .is_some_and(|v| *v);
        let parsed = if words.unix && defaulted(matches) {
            Err("-U/--unix needs a socket path as ADDR".to_owned())
        } else if ipv6 && defaulted(matches) {
            Ok(Target(Endpoint::Tcp(HostPort {
                host: Ipv6Addr::LOCALHOST.to_string(),
                port: DEFAULT_PORT,
            })))
        } else {
            let addr = ipv6_port(&words.addr, words.port.is_none(), ipv6);
            Target::from_words(&addr, &words.addr, words.port.as_deref(), words.unix)
        };
        let parsed = parsed
            .and_then(|t| udp_flag(t.0, &words.addr, words.udp))
            .and_then(|e| only_for_connections(e, matches, &CLIENT_CONNECTION_OPTIONS))
            .map(Target);
        parsed.map_err(|msg| usage_error("echo-client", msg))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Target::from_arg_matches(matches)?;
        Ok(())
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

/// `-u/--udp`: a TCP form becomes UDP; `tcp:` or a Unix socket with it is a contradiction.
fn udp_flag<T>(endpoint: Endpoint<T>, typed: &str, udp: bool) -> Result<Endpoint<T>, String> {
    let tcp_prefix = typed
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("tcp:"));
    match endpoint {
        Endpoint::Tcp(_) if udp && tcp_prefix => Err(format!(
            "{}: -u/--udp takes a UDP address, and this is a TCP address",
            quoted(typed)
        )),
        Endpoint::Tcp(t) if udp => Ok(Endpoint::Udp(t)),
        Endpoint::Unix(_) if udp => Err(format!(
            "{}: -u/--udp takes an IP address and port, and this is a Unix socket",
            quoted(typed)
        )),
        endpoint => Ok(endpoint),
    }
}

/// The server's options that govern connections, which UDP does not have.
const SERVER_CONNECTION_OPTIONS: [(&str, &str); 3] = [
    (
        "max_connections",
        "--max-connections limits connections, and UDP has none (each datagram stands alone)",
    ),
    (
        "idle_timeout",
        "--idle-timeout closes idle connections, and UDP has none (each datagram stands alone)",
    ),
    (
        "shutdown_timeout",
        "--shutdown-timeout lets open connections finish, and UDP has none (a stop is immediate)",
    ),
];

/// The client's options that govern connecting, which UDP does not do.
const CLIENT_CONNECTION_OPTIONS: [(&str, &str); 1] = [(
    "wait",
    "--wait retries a connection until a server accepts it, and UDP makes none (a missing \
     server shows as \"Connection refused\" on the first datagram)",
)];

/// Refuses, for a UDP endpoint, each option of `options` (argument id, why) that was given.
fn only_for_connections<T: std::fmt::Display>(
    endpoint: Endpoint<T>,
    matches: &ArgMatches,
    options: &[(&str, &str)],
) -> Result<Endpoint<T>, String> {
    if !matches!(endpoint, Endpoint::Udp(_)) {
        return Ok(endpoint);
    }
    // `try_contains_id` keeps these words usable in a command without the option; a default
    // value was not given.
    let given = options.iter().find(|(id, _)| {
        matches.try_contains_id(id).unwrap_or(false)
            && matches.value_source(id) == Some(ValueSource::CommandLine)
    });
    match given {
        Some((_, why)) => Err(format!("{why}: cannot be used with {endpoint}")),
        None => Ok(endpoint),
    }
}

/// A bare PORT means the loopback host; under -6 that is [::1], as -6 forbids 127.0.0.1.
fn ipv6_port(addr: &str, alone: bool, ipv6: bool) -> String {
    // Not a port (99999) is left for the parser to say so about the word as typed.
    let bare_port =
        addr.trim().bytes().all(|b| b.is_ascii_digit()) && addr.trim().parse::<u16>().is_ok();
    if ipv6 && alone && bare_port {
        format!("[{}]:{}", Ipv6Addr::LOCALHOST, addr.trim())
    } else {
        addr.to_owned()
    }
}

/// True when ADDR was not typed: `-U` alone would make the default TCP address a path.
fn defaulted(matches: &ArgMatches) -> bool {
    matches.value_source("addr") == Some(ValueSource::DefaultValue)
}

/// A usage error showing `subcommand`'s usage line: clap would otherwise show the top
/// level's, as this runs after parsing, outside the subcommand.
pub(crate) fn usage_error(subcommand: &str, msg: String) -> clap::Error {
    let err = clap::Error::raw(ErrorKind::ValueValidation, msg);
    let mut cli = crate::cli::command();
    cli.build();
    match cli.find_subcommand_mut(subcommand) {
        Some(sub) => err.format(sub),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combine(addr: &str, port: Option<&str>) -> Result<String, String> {
        Target::from_words(addr, addr, port, false).map(|t| t.0.to_string())
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
        assert!(combine("unix:/tmp/s", Some("7")).is_err());
        assert!(Target::from_words("/tmp/s", "/tmp/s", Some("7"), true).is_err());
    }

    #[test]
    fn a_bare_port_under_ipv6_means_the_ipv6_loopback() {
        assert_eq!(ipv6_port("7320", true, true), "[::1]:7320");
        assert_eq!(ipv6_port("7320", true, false), "7320");
        assert_eq!(ipv6_port("host", true, true), "host");
        assert_eq!(ipv6_port("7320", false, true), "7320");
    }
}
