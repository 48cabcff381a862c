//! An endpoint as users type it, for the server and the client alike: TCP (`PORT`,
//! `HOST:PORT`, `[IPV6]:PORT`, or any of those after `tcp:`), a Unix socket file
//! (`unix:PATH`), a Linux abstract name (`unix:@NAME`) or UDP (`udp:` and a TCP form). With
//! `-U` a bare word is a path, as nc users type it (`-u` makes it UDP: see `cli::endpoints`). What the server prints as its address parses back to the same endpoint,
//! so a script can hand the line to the client whatever the transport.

use crate::ui::quote::quoted;
use std::fmt;
use std::path::PathBuf;

/// Where to listen or connect: TCP (`T` is a socket address for the server, a host and port
/// for the client) or a Unix-domain socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<T> {
    /// A TCP endpoint.
    Tcp(T),
    /// A Unix-domain stream socket.
    Unix(UnixAddr),
    /// UDP datagrams (RFC 862 echo over UDP), addressed as TCP is.
    Udp(T),
}

/// A Unix-domain socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixAddr {
    /// A socket file in the filesystem.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (`unix:@NAME`): no file, gone with its socket.
    Abstract(Vec<u8>),
}

/// The longest path or abstract name `sun_path`'s 108 bytes hold: a path keeps one for its
/// terminating NUL, an abstract name one for its leading NUL (which `@` stands for).
pub const UNIX_PATH_MAX: usize = 107;

/// The forms every address message lists.
pub const FORMS: &str =
    "expected PORT, HOST:PORT, [IPV6]:PORT, unix:PATH, unix:@NAME or udp:HOST:PORT";

impl<T: fmt::Display> fmt::Display for Endpoint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(t) => t.fmt(f),
            Endpoint::Unix(u) => u.fmt(f),
            Endpoint::Udp(t) => write!(f, "udp:{t}"),
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "unix:{}", p.display()),
            UnixAddr::Abstract(name) => write!(f, "unix:@{}", String::from_utf8_lossy(name)),
        }
    }
}

/// `s` without `prefix`, matched without regard to case (`TCP:` and `tcp:` alike).
fn strip_scheme<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Parses an endpoint: `unix:`, `tcp:` and `udp:` prefixes choose the transport, `unix_flag`
/// (`-U`) makes a bare word a socket path, and anything else is TCP, parsed by `tcp` (as is
/// what follows `udp:`). Problems name the whole word `s`, prefixes and all (`tcp` is told
/// only the rest, so its own problems must name `s` too).
pub fn parse<T>(
    s: &str,
    unix_flag: bool,
    tcp: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Endpoint<T>, String> {
    parse_within(s, s, unix_flag, tcp)
}

/// [`parse`] of `s`, which is `typed` or its rest after `tls:`.
fn parse_within<T>(
    s: &str,
    typed: &str,
    unix_flag: bool,
    tcp: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Endpoint<T>, String> {
    // `tls:` is the transport's security, not its kind: the TLS options read it beside this.
    if let Some(rest) = strip_scheme(s, "tls:") {
        return parse_within(rest, typed, unix_flag, tcp);
    }
    if let Some(rest) = strip_scheme(s, "unix:") {
        return parse_unix(rest, typed).map(Endpoint::Unix);
    }
    if let Some(rest) = strip_scheme(s, "tcp:") {
        if unix_flag {
            return Err(format!(
                "{}: -U/--unix takes a socket path, and this is a TCP address",
                quoted(typed)
            ));
        }
        return tcp(rest).map(Endpoint::Tcp);
    }
    if let Some(rest) = strip_scheme(s, "udp:") {
        if unix_flag {
            return Err(format!(
                "{}: -U/--unix takes a socket path, and this is a UDP address",
                quoted(typed)
            ));
        }
        return tcp(rest).map(Endpoint::Udp);
    }
    if unix_flag {
        return parse_unix(s, typed).map(Endpoint::Unix);
    }
    tcp(s).map(Endpoint::Tcp)
}

/// A Unix address from what follows `unix:` (`typed` is the whole word, for messages).
fn parse_unix(rest: &str, typed: &str) -> Result<UnixAddr, String> {
    if rest.is_empty() {
        return Err(format!(
            "{}: the socket path is missing; {FORMS}",
            quoted(typed)
        ));
    }
    // The `@` is not stored: it stands for the NUL that starts an abstract name.
    let stored = rest.strip_prefix('@').unwrap_or(rest);
    if stored.len() > UNIX_PATH_MAX {
        return Err(format!(
            "{}: {} bytes is too long for a Unix socket (at most {UNIX_PATH_MAX})",
            quoted(typed),
            stored.len()
        ));
    }
    if rest.contains('\0') {
        return Err(format!(
            "{}: a socket path cannot hold a NUL byte",
            quoted(typed)
        ));
    }
    // The server prints the endpoint as one line for scripts to read back.
    if rest.chars().any(char::is_control) {
        return Err(format!(
            "{}: a socket path or name cannot hold a control character (the address line \
             must stay one line)",
            quoted(typed)
        ));
    }
    match rest.strip_prefix('@') {
        Some("") => Err(format!("{}: the abstract name is missing", quoted(typed))),
        Some(name) => Ok(UnixAddr::Abstract(name.as_bytes().to_vec())),
        None => Ok(UnixAddr::Path(PathBuf::from(rest))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> Result<String, String> {
        if s.is_empty() {
            Err("empty".into())
        } else {
            Ok(s.to_owned())
        }
    }

    #[test]
    fn forms_and_their_round_trip() {
        for (typed, flag, want) in [
            ("127.0.0.1:7", false, "127.0.0.1:7"),
            ("tcp:127.0.0.1:7", false, "127.0.0.1:7"),
            ("TCP:127.0.0.1:7", false, "127.0.0.1:7"),
            ("unix:/tmp/e.sock", false, "unix:/tmp/e.sock"),
            ("unix:rel.sock", false, "unix:rel.sock"),
            ("unix:@name", false, "unix:@name"),
            ("/tmp/e.sock", true, "unix:/tmp/e.sock"),
            ("unix:/tmp/e.sock", true, "unix:/tmp/e.sock"),
            ("tls:127.0.0.1:7", false, "127.0.0.1:7"),
            ("tls:unix:@name", false, "unix:@name"),
            ("udp:127.0.0.1:7", false, "udp:127.0.0.1:7"),
            ("UDP:[::1]:7", false, "udp:[::1]:7"),
        ] {
            let e = parse(typed, flag, tcp).unwrap();
            assert_eq!(e.to_string(), want, "{typed}");
            assert_eq!(parse(want, false, tcp).unwrap(), e, "{want} parses back");
        }
    }

    #[test]
    fn forms_that_make_no_sense_say_why() {
        let long = format!("unix:/{}", "x".repeat(UNIX_PATH_MAX));
        for (typed, flag, want) in [
            ("unix:", false, "the socket path is missing"),
            ("unix:@", false, "the abstract name is missing"),
            (
                long.as_str(),
                false,
                "too long for a Unix socket (at most 107)",
            ),
            ("tcp:127.0.0.1:7", true, "-U/--unix takes a socket path"),
            ("udp:127.0.0.1:7", true, "this is a UDP address"),
            ("udp:", false, "empty"),
        ] {
            let err = parse(typed, flag, tcp).unwrap_err();
            assert!(err.contains(want), "{typed}: {err}");
        }
        let err = parse("tls:unix:", false, tcp).unwrap_err();
        assert!(err.starts_with("'tls:unix:': "), "the whole word: {err}");
        let longest = format!("unix:/{}", "x".repeat(UNIX_PATH_MAX - 1));
        assert!(parse(&longest, false, tcp).is_ok());
    }

    /// sun_path is 108 bytes: a path of 107 and its NUL, or a NUL and a 107-byte name.
    #[test]
    fn unix_length_limits_for_paths_and_abstract_names() {
        let path = |n: usize| format!("unix:/{}", "p".repeat(n - 1));
        let name = |n: usize| format!("unix:@{}", "n".repeat(n));
        assert!(parse(&path(107), false, tcp).is_ok());
        let err = parse(&path(108), false, tcp).unwrap_err();
        assert!(err.contains("108 bytes is too long"), "{err}");
        assert_eq!(
            parse(&name(107), false, tcp).unwrap(),
            Endpoint::Unix(UnixAddr::Abstract(vec![b'n'; 107]))
        );
        let err = parse(&name(108), false, tcp).unwrap_err();
        assert!(err.contains("108 bytes is too long"), "{err}");
    }
}
