//! An endpoint as users type it, for the server and the client alike: TCP (`PORT`, `:PORT`,
//! `HOST:PORT`, `[IPV6]:PORT`, or any of those after `tcp:` or `tcp://`), a Unix socket file
//! (`unix:PATH`, `unix:///PATH`), a Linux abstract name (`unix:@NAME`) or UDP (`udp:` or
//! `udp://` and a TCP form). With `-U` a bare word is a path, as nc users type it (`-u` makes
//! it UDP: see `cli::endpoints`). What the server prints as its address parses back to the
//! same endpoint, so a script can hand the line to the client whatever the transport.

use super::addr::Proto;
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

/// Parses an endpoint: `unix:`, `tcp:` and `udp:` prefixes (also spelled as URLs begin:
/// `unix:///PATH`, `tcp://`, `udp://`, `tls://`) choose the transport, `unix_flag` (`-U`) makes
/// a bare word a socket path, and anything else is IP, parsed by `ip` with the protocol whose
/// service names its port may use: `bare` for a word without a prefix (UDP under `-u`).
/// Problems name `typed`, the whole word (or both words of `HOST PORT`) that `s` spells (`ip`
/// is told only the rest, so its own problems must name `typed` too).
pub fn parse<T>(
    s: &str,
    typed: &str,
    unix_flag: bool,
    bare: Proto,
    ip: impl FnOnce(&str, Proto) -> Result<T, String>,
) -> Result<Endpoint<T>, String> {
    // `tls:` is the transport's security, not its kind: the TLS options read it beside this.
    if let Some(rest) = strip_scheme(s, "tls:") {
        // As a URL, `tls://HOST:PORT` is TCP; `tls:` alone may also come before `unix:`.
        return match rest.strip_prefix("//") {
            Some(_) => parse(&format!("tcp:{rest}"), typed, unix_flag, bare, ip),
            None => parse(rest, typed, unix_flag, bare, ip),
        };
    }
    if let Some(rest) = strip_scheme(s, "unix:") {
        let rest = match rest.strip_prefix("//") {
            Some(path) => unix_url(path, typed)?,
            None => rest,
        };
        return parse_unix(rest, typed).map(Endpoint::Unix);
    }
    let scheme = [("tcp:", Proto::Tcp), ("udp:", Proto::Udp)]
        .into_iter()
        .find_map(|(prefix, proto)| strip_scheme(s, prefix).map(|rest| (proto, rest)));
    let Some((proto, rest)) = scheme else {
        if unix_flag {
            return parse_unix(s, typed).map(Endpoint::Unix);
        }
        return ip(s, bare).map(Endpoint::Tcp);
    };
    if unix_flag {
        return Err(format!(
            "{}: -U/--unix takes a socket path, and this is a {} address",
            quoted(typed),
            proto.to_string().to_uppercase()
        ));
    }
    let rest = match rest.strip_prefix("//") {
        Some(authority) => url_authority(authority, typed)?,
        None => rest,
    };
    let addr = ip(rest, proto)?;
    Ok(match proto {
        Proto::Tcp => Endpoint::Tcp(addr),
        Proto::Udp => Endpoint::Udp(addr),
    })
}

/// What follows `tcp://` or `udp://`: the HOST:PORT of a URL, which may end with a `/`; a
/// path after it would mean nothing here.
fn url_authority<'a>(rest: &'a str, typed: &str) -> Result<&'a str, String> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(format!(
            "{}: a URL path means nothing for an echo server; give SCHEME://HOST:PORT",
            quoted(typed)
        ));
    }
    Ok(authority)
}

/// What follows `unix://`: an absolute path (`unix:///run/echo.sock`, as Docker and gRPC
/// spell it) or `@NAME`. Anything else would read as a URL's host: a mistake, named.
fn unix_url<'a>(rest: &'a str, typed: &str) -> Result<&'a str, String> {
    if rest.is_empty() || rest.starts_with(['/', '@']) {
        return Ok(rest);
    }
    Err(format!(
        "{}: unix:// takes an absolute path, as in unix:///run/echo.sock (a relative one is \
         unix:PATH)",
        quoted(typed)
    ))
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

    fn tcp(s: &str, _: Proto) -> Result<String, String> {
        if s.is_empty() {
            Err("empty".into())
        } else {
            Ok(s.to_owned())
        }
    }

    fn parse(s: &str, unix_flag: bool) -> Result<Endpoint<String>, String> {
        super::parse(s, s, unix_flag, Proto::Tcp, tcp)
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
            let e = parse(typed, flag).unwrap();
            assert_eq!(e.to_string(), want, "{typed}");
            assert_eq!(parse(want, false).unwrap(), e, "{want} parses back");
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
            let err = parse(typed, flag).unwrap_err();
            assert!(err.contains(want), "{typed}: {err}");
        }
        let err = parse("tls:unix:", false).unwrap_err();
        assert!(err.starts_with("'tls:unix:': "), "the whole word: {err}");
        let longest = format!("unix:/{}", "x".repeat(UNIX_PATH_MAX - 1));
        assert!(parse(&longest, false).is_ok());
    }

    /// sun_path is 108 bytes: a path of 107 and its NUL, or a NUL and a 107-byte name.
    #[test]
    fn unix_length_limits_for_paths_and_abstract_names() {
        let path = |n: usize| format!("unix:/{}", "p".repeat(n - 1));
        let name = |n: usize| format!("unix:@{}", "n".repeat(n));
        assert!(parse(&path(107), false).is_ok());
        let err = parse(&path(108), false).unwrap_err();
        assert!(err.contains("108 bytes is too long"), "{err}");
        assert_eq!(
            parse(&name(107), false).unwrap(),
            Endpoint::Unix(UnixAddr::Abstract(vec![b'n'; 107]))
        );
        let err = parse(&name(108), false).unwrap_err();
        assert!(err.contains("108 bytes is too long"), "{err}");
    }

    /// The URL spellings people paste: `tcp://`, `udp://`, `tls://`, `unix:///PATH`.
    #[test]
    fn url_spellings() {
        for (typed, want) in [
            ("tcp://127.0.0.1:7", "127.0.0.1:7"),
            ("TCP://[::1]:7/", "[::1]:7"),
            ("udp://localhost:echo", "udp:localhost:echo"),
            ("tls://localhost:8443", "localhost:8443"),
            ("unix:///run/e.sock", "unix:/run/e.sock"),
            ("unix://@name", "unix:@name"),
        ] {
            assert_eq!(parse(typed, false).unwrap().to_string(), want, "{typed}");
        }
        let seen = |s: &str| {
            let mut proto = None;
            let parsed = super::parse(s, s, false, Proto::Tcp, |rest, p| {
                proto = Some(p);
                tcp(rest, p)
            });
            parsed.map(|_| proto)
        };
        assert_eq!(
            seen("udp://h:7"),
            Ok(Some(Proto::Udp)),
            "udp's service names"
        );
        assert_eq!(seen("tls://h:7"), Ok(Some(Proto::Tcp)));
        for (typed, want) in [
            ("unix://run/e.sock", "unix:// takes an absolute path"),
            ("tcp://h:80/index.html", "a URL path means nothing"),
            ("unix://", "the socket path is missing"),
        ] {
            let err = parse(typed, false).unwrap_err();
            assert!(err.starts_with(&format!("'{typed}': {want}")), "{err}");
        }
        let err = parse("tcp://h:7", true).unwrap_err();
        assert!(err.contains("-U/--unix takes a socket path"), "{err}");
    }
}
