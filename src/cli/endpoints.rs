//! The endpoint words of `echo-server` and `echo-client`, each a clap argument group of its
//! own, so a wrong combination is a usage error (exit 2) before any I/O, like any other bad
//! value: `ADDR` or nc's `HOST PORT`, with `-U/--unix` or `-u/--udp` (which also picks the
//! table a service name is looked up in) and `-4`/`-6` (the family of the loopback and of
//! `:PORT`) for both. A UDP endpoint with an option that only means something for connections
//! is refused here too, saying why.

use crate::ui::quote::quoted;
use std::net::SocketAddr;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};

use crate::net::addr::{
    DEFAULT_ADDR, DEFAULT_PORT, HostPort, Only, Proto, parse_host_port, parse_listen_addr, problem,
};
use crate::net::endpoint::{self, Endpoint};
use crate::net::listen::Stack;

/// `echo-server`'s words as typed.
#[derive(Debug, Args)]
struct ListenWords {
    /// Address to listen on: PORT (on the loopback), :PORT (every address, IPv4 and IPv6),
    /// HOST:PORT, [IPV6]:PORT ([::] takes IPv4 too, unless -6; a link-local address with its
    /// interface: [fe80::1%eth0]:PORT), or HOST then PORT as two words. Port 0 picks a free
    /// port; a service name from /etc/services may stand for the port (echo: 7). unix:PATH
    /// for a socket file, unix:@NAME for a Linux abstract name; tcp: may prefix a TCP address,
    /// udp: makes it UDP, tls: before a TCP or Unix address means --tls (also tcp://, udp://,
    /// tls://, unix:///PATH as URLs spell them).
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: String,

    /// The port (or a service name), when ADDR is a host alone: `echo-server 0.0.0.0 7`.
    #[arg(value_name = "PORT")]
    port: Option<String>,

    /// The port, as nc -l -p takes it: `-p 8080` is `8080` (the loopback; :8080 for every
    /// address), `-p 8080 HOST` is `HOST 8080`.
    #[arg(short = 'p', value_name = "PORT", conflicts_with = "port")]
    listen_port: Option<String>,

    /// ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name).
    #[arg(short = 'U', long = "unix")]
    unix: bool,

    /// Serve UDP echo on ADDR (as udp:ADDR): each datagram goes back to its sender.
    #[arg(short = 'u', long = "udp", conflicts_with = "unix")]
    udp: bool,

    /// Listen on IPv4 only: :PORT means 0.0.0.0, and an IPv6 ADDR is refused.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,

    /// Listen on IPv6 only (IPV6_V6ONLY, as ncat -6): [::] and :PORT take no IPv4 client, PORT
    /// and localhost mean [::1], and an IPv4 ADDR is refused.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
}

/// Where `echo-server` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The endpoint to bind.
    pub endpoint: Endpoint<SocketAddr>,
    /// Whether an IPv6 address takes IPv4 clients too (not under -6).
    pub stack: Stack,
    /// ADDR was typed, not the default: under socket activation it is ignored, with a warning.
    pub typed: bool,
}

impl FromArgMatches for Listen {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = ListenWords::from_arg_matches(matches)?;
        let only = only(matches);
        let bare = if words.udp { Proto::Udp } else { Proto::Tcp };
        let parsed = if words.unix && defaulted(matches) {
            Err("-U/--unix needs a socket path as ADDR".to_owned())
        } else {
            let (addr, port) = match words.listen_port {
                Some(p) if defaulted(matches) => (p, None),
                p => (addr_word(&words.addr, matches), words.port.or(p)),
            };
            two_ports(&words.addr, matches)
                .and_then(|()| one_word(&addr, port.as_deref(), words.unix))
                .and_then(|(word, typed)| {
                    endpoint::parse(&word, &typed, words.unix, bare, |rest, proto| {
                        parse_listen_addr(rest, &typed, proto, only)
                    })
                    .and_then(|e| udp_flag(e, &typed, words.udp))
                    .and_then(|e| ip_only(e, &typed, only))
                    .and_then(|e| only_for_connections(e, matches, &SERVER_CONNECTION_OPTIONS))
                })
        };
        let stack = match only {
            Some(Only::V6) => Stack::V6Only,
            _ => Stack::Dual,
        };
        parsed
            .map(|endpoint| Listen {
                endpoint,
                stack,
                typed: !defaulted(matches),
            })
            .map_err(|msg| usage_error("echo-server", with_habit_tip(msg, matches, false)))
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
    /// Server to connect to: PORT (on the loopback), :PORT (localhost), HOST:PORT or
    /// [IPV6]:PORT (a link-local one with its interface: [fe80::1%eth0]:PORT; [::] and 0.0.0.0
    /// are this host, as a server's address line may say), or HOST then PORT as two words (as
    /// nc takes them); a service name from /etc/services may stand for the port (echo: 7).
    /// Over TCP every address a name resolves to is tried in turn. unix:PATH or unix:@NAME for
    /// a Unix socket; udp:HOST:PORT for UDP (to the name's first address of the family
    /// allowed). tls: before a TCP or Unix address means --tls (also tcp://, udp://, tls://,
    /// unix:///PATH as URLs spell them).
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR)]
    addr: String,

    /// The port (or a service name), when ADDR is a host alone: `echo-client example.com 7`.
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
    /// Combines `ADDR [PORT]` (and `-U`, `-u`, `-4`/`-6`) into an endpoint, or says what is
    /// wrong.
    fn from_words(
        addr: &str,
        port: Option<&str>,
        unix: bool,
        udp: bool,
        only: Option<Only>,
    ) -> Result<Target, String> {
        let bare = if udp { Proto::Udp } else { Proto::Tcp };
        let (word, typed) = one_word(addr, port, unix)?;
        endpoint::parse(&word, &typed, unix, bare, |rest, proto| {
            parse_host_port(rest, &typed, proto, only)
        })
        .and_then(|e| udp_flag(e, &typed, udp))
        .map(Target)
    }
}

impl FromArgMatches for Target {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = Words::from_arg_matches(matches)?;
        let parsed = if words.unix && defaulted(matches) {
            Err("-U/--unix needs a socket path as ADDR".to_owned())
        } else {
            let addr = addr_word(&words.addr, matches);
            let port = words.port.as_deref();
            Target::from_words(&addr, port, words.unix, words.udp, only(matches))
        };
        let typed = match (defaulted(matches), &words.port) {
            (true, _) => None,
            (false, Some(port)) => Some(format!("{} {port}", words.addr)),
            (false, None) => Some(words.addr.clone()),
        };
        let parsed = parsed
            .and_then(|t| only_for_connections(t.0, matches, &CLIENT_CONNECTION_OPTIONS))
            .and_then(|e| only_for_ip(e, matches))
            .and_then(|e| no_lookup(e, matches, typed.as_deref()))
            .map(Target);
        parsed.map_err(|msg| usage_error("echo-client", with_habit_tip(msg, matches, true)))
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

/// What the nc or ncat spelling that made ADDR wrong means here: nc's `-q SECS` (`-q 1
/// host:7`: the seconds became ADDR) and ncat's `-x FILE` (`-x dump host:7`: the file did),
/// when the word after the flag is ADDR or PORT (`-q` only for the `client`, which has
/// --quit-after). A tip line is added to `msg`, as clap adds its own.
pub(crate) fn with_habit_tip(msg: String, matches: &ArgMatches, client: bool) -> String {
    // The positional word typed right after flag `id`, if any.
    let word_after = |id: &str| {
        let given = matches.try_contains_id(id).unwrap_or(false)
            && matches.value_source(id) == Some(ValueSource::CommandLine);
        let at: Vec<usize> = match matches.indices_of(id) {
            Some(at) if given => at.map(|i| i + 1).collect(),
            _ => return None,
        };
        ["addr", "port"].into_iter().find_map(|word| {
            let value = matches.try_get_one::<String>(word).ok().flatten()?;
            let typed = matches.value_source(word) == Some(ValueSource::CommandLine);
            (typed && matches.index_of(word).is_some_and(|i| at.contains(&i))).then_some(value)
        })
    };
    let seconds = |w: &String| crate::cli::values::parse_duration(w).is_ok();
    // A word that is no address by itself (`dump.log`), unlike `-x 7`'s.
    let no_address = |w: &String| Target::from_words(w, None, false, false, None).is_err();
    let tip = if client && word_after("quiet").is_some_and(seconds) {
        "-q is --quiet here; nc's -q SECS is --quit-after SECS"
    } else if word_after("hex_dump").is_some_and(no_address) {
        "-x/--hex-dump takes no FILE here: the dump goes to stderr (ncat's -x FILE is -x \
         2>FILE)"
    } else {
        return msg;
    };
    format!("{msg}\n\n  tip: {tip}")
}

/// `-p PORT` beside an ADDR that is a port too (`-p 7 8`): named as typed, not joined as
/// HOST PORT would be.
fn two_ports(addr: &str, matches: &ArgMatches) -> Result<(), String> {
    let p = matches.try_get_one::<String>("listen_port").ok().flatten();
    match p {
        Some(p) if !defaulted(matches) && is_port(addr) => Err(format!(
            "{} and {}: two ports; give -p PORT, PORT, or HOST PORT",
            quoted(&format!("-p {p}")),
            quoted(addr)
        )),
        _ => Ok(()),
    }
}

/// A bare port number, as ADDR may be.
fn is_port(addr: &str) -> bool {
    let t = addr.trim();
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// ADDR as typed, or for the default the bare port, whose loopback follows -4/-6 ([::1]:8080
/// under -6, which forbids 127.0.0.1).
fn addr_word(addr: &str, matches: &ArgMatches) -> String {
    if defaulted(matches) {
        DEFAULT_PORT.to_string()
    } else {
        addr.to_owned()
    }
}

/// `-4/--ipv4` or `-6/--ipv6`, which live beside the client's words in `echo-client` and among
/// the server's words; `try_get_one` keeps these words usable in a command without them.
fn only(matches: &ArgMatches) -> Option<Only> {
    let flag = |id: &str| {
        matches
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .is_some_and(|v| *v)
    };
    if flag("ipv6") {
        Some(Only::V6)
    } else if flag("ipv4") {
        Some(Only::V4)
    } else {
        None
    }
}

/// The scheme prefixes a host may carry in the two-word form (`udp:localhost 7`), longest
/// first so that `tcp://` is not read as `tcp:` and a host `//…`.
const HOST_PREFIXES: [&str; 6] = ["tls://", "tcp://", "udp://", "tls:", "tcp:", "udp:"];

/// `addr`'s scheme prefixes (`tls:udp:`, `tcp://`) and the rest.
fn split_prefixes(addr: &str) -> (&str, &str) {
    let mut len = 0;
    while let Some(p) = HOST_PREFIXES.iter().find(|p| {
        addr.get(len..len + p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    }) {
        len += p.len();
    }
    addr.split_at(len)
}

/// `ADDR [PORT]` as one address word and the words as typed (both, space-separated, when there
/// are two), which problems name: `HOST PORT` becomes `HOST:PORT` (`[IPV6]:PORT` for an IPv6
/// host, bracketed or not, as nc takes `::1 7`), after any scheme prefix of HOST's.
fn one_word(addr: &str, port: Option<&str>, unix: bool) -> Result<(String, String), String> {
    let Some(port) = port else {
        return Ok((addr.to_owned(), addr.to_owned()));
    };
    let typed = format!("{addr} {port}");
    let (prefix, host) = split_prefixes(addr);
    if unix
        || host
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("unix:"))
    {
        return Err(format!(
            "{}: a Unix socket takes no port; give unix:PATH or -U PATH",
            quoted(&typed)
        ));
    }
    let host = host.trim();
    let host = host.strip_suffix('/').unwrap_or(host);
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{}: two ports; give HOST PORT, HOST:PORT or PORT",
            quoted(&typed)
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
                quoted(&typed)
            ));
        }
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if host.is_empty() {
        // An empty variable (`"$HOST" 7`) must not quietly mean every address or localhost.
        return Err(problem(
            &typed,
            "the host is empty (for every address give :PORT)",
        ));
    }
    if port.trim().is_empty() {
        return Err(problem(&typed, "the port is empty"));
    }
    if port.contains(':') {
        // `0.5 localhost:7` (nc's -q 0.5 before an address) would otherwise become the host
        // `0.5:localhost`.
        return Err(format!(
            "{}: {} is an address, not a PORT; give HOST PORT or HOST:PORT",
            quoted(&typed),
            quoted(port)
        ));
    }
    Ok((format!("{prefix}{joined}"), typed))
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
const SERVER_CONNECTION_OPTIONS: [(&str, &str); 4] = [
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
    (
        "proxy_protocol",
        "--proxy-protocol reads a header at the start of each connection, and UDP has none",
    ),
];

/// The client's options that govern connecting, which UDP does not do.
const CLIENT_CONNECTION_OPTIONS: [(&str, &str); 4] = [
    (
        "wait",
        "--wait retries a connection until a server accepts it, and UDP makes none (a missing \
         server shows as \"Connection refused\" on the first datagram)",
    ),
    (
        "zero_io",
        "-z checks that a connection opens, and UDP makes none (nothing answers a datagram \
         sent to no server)",
    ),
    (
        "quit_after",
        "--quit-after ends a connection after the end of input, and UDP has none (it waits \
         --idle-timeout for outstanding replies)",
    ),
    (
        "send_proxy",
        "--send-proxy sends a header at the start of each connection, and UDP makes none",
    ),
];

/// The client's options that choose a local IP address and port, which a Unix socket has not.
const CLIENT_IP_OPTIONS: [(&str, &str); 2] = [
    ("source", "-s/--source is a local IP address"),
    ("source_port", "-p/--source-port is a local IP port"),
];

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

/// A local address or port for a Unix socket, or a source address of the family -4/-6
/// excludes: contradictions, which would be ignored or fail only at the bind.
fn only_for_ip<T: std::fmt::Display>(
    endpoint: Endpoint<T>,
    matches: &ArgMatches,
) -> Result<Endpoint<T>, String> {
    let source = matches
        .try_get_one::<std::net::IpAddr>("source")
        .ok()
        .flatten();
    let clash = match (source, only(matches)) {
        (Some(ip @ std::net::IpAddr::V4(_)), Some(Only::V6)) => Some((ip, "-6/--ipv6")),
        (Some(ip @ std::net::IpAddr::V6(_)), Some(Only::V4)) => Some((ip, "-4/--ipv4")),
        _ => None,
    };
    if let Some((ip, flag)) = clash {
        return Err(format!(
            "-s/--source {ip} is of the other IP family than {flag} allows"
        ));
    }
    if !matches!(endpoint, Endpoint::Unix(_)) {
        return Ok(endpoint);
    }
    let given = CLIENT_IP_OPTIONS
        .iter()
        .find(|(id, _)| matches.try_contains_id(id).unwrap_or(false));
    match given {
        Some((_, what)) => Err(format!(
            "{what}: cannot be used with {}, a Unix socket",
            crate::ui::quote::address(&endpoint.to_string())
        )),
        None => Ok(endpoint),
    }
}

/// `-n/--nodns` (nc -n): a host name, which would be looked up, is refused, naming what was
/// `typed` (`None`: no ADDR) when the name is not in it (`:7` is localhost's port 7).
fn no_lookup(
    endpoint: Endpoint<HostPort>,
    matches: &ArgMatches,
    typed: Option<&str>,
) -> Result<Endpoint<HostPort>, String> {
    let nodns = matches
        .try_get_one::<bool>("nodns")
        .ok()
        .flatten()
        .is_some_and(|v| *v);
    let host = match &endpoint {
        Endpoint::Tcp(hp) | Endpoint::Udp(hp) if nodns => hp,
        _ => return Ok(endpoint),
    };
    match crate::net::addr::ip_literal(&host.host, host.port) {
        Some(_) => Ok(endpoint),
        None => {
            let name = quoted(&host.host);
            let why = match typed.filter(|t| !t.contains(host.host.as_str())) {
                Some(t) => format!("{} names no host, so the host is {name}, a name", quoted(t)),
                None => format!("{name} is a name"),
            };
            Err(format!(
                "-n/--nodns looks no name up, and {why}: give an IP address (e.g. \
                 127.0.0.1:{port} or [::1]:{port})",
                port = host.port
            ))
        }
    }
}

/// `-4`/`-6` with a Unix socket: a contradiction for the server, which would ignore it.
fn ip_only<T>(
    endpoint: Endpoint<T>,
    typed: &str,
    only: Option<Only>,
) -> Result<Endpoint<T>, String> {
    let flag = match only {
        Some(Only::V4) => "-4/--ipv4",
        Some(Only::V6) => "-6/--ipv6",
        None => return Ok(endpoint),
    };
    match endpoint {
        Endpoint::Unix(_) => Err(format!(
            "{}: {flag} chooses an IP family, and this is a Unix socket",
            quoted(typed)
        )),
        endpoint => Ok(endpoint),
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
        Target::from_words(addr, port, false, false, None).map(|t| t.0.to_string())
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
        assert_eq!(combine("udp:h", Some("7")), Ok("udp:h:7".into()));
        assert_eq!(combine("tcp://h/", Some("7")), Ok("h:7".into()));
        assert_eq!(combine("tls:udp:h", Some("7")), Ok("udp:h:7".into()));
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
        assert_eq!(
            combine("", Some("8")),
            Err("' 8': the host is empty (for every address give :PORT)".into())
        );
        assert!(combine("host", Some("0")).is_err());
        assert!(combine("host", Some("nosuchservice")).is_err());
        assert!(combine("host", None).is_err());
        for unix in ["unix:/tmp/s", "tls:unix:/tmp/s", "unix:///tmp/s"] {
            let err = combine(unix, Some("7")).unwrap_err();
            assert!(err.contains("a Unix socket takes no port"), "{err}");
        }
        assert!(Target::from_words("/tmp/s", Some("7"), true, false, None).is_err());
    }

    #[test]
    fn the_family_options_choose_the_loopback() {
        let with = |addr: &str, udp, only| {
            Target::from_words(addr, None, false, udp, only).map(|t| t.0.to_string())
        };
        assert_eq!(with("7320", false, Some(Only::V6)), Ok("[::1]:7320".into()));
        assert_eq!(
            with("7320", true, Some(Only::V6)),
            Ok("udp:[::1]:7320".into())
        );
        assert_eq!(
            with("udp::7320", false, Some(Only::V6)),
            Ok("udp:[::1]:7320".into())
        );
        assert_eq!(with(":7320", false, None), Ok("localhost:7320".into()));
        assert_eq!(with("host", false, Some(Only::V6)).map_err(|_| ()), Err(()));
    }

    #[test]
    fn a_udp_port_name_is_looked_up_in_the_udp_table() {
        // biff is 512/udp and no TCP service (netbase's /etc/services).
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(
                Target::from_words("h", Some("biff"), false, true, None).map(|t| t.0.to_string()),
                Ok("udp:h:512".into())
            );
            assert!(Target::from_words("h", Some("biff"), false, false, None).is_err());
        }
    }
}
