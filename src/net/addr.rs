//! IP addresses as users type them: listen addresses and connect addresses, whose port may be
//! a service name (`localhost:echo`). The parsers run as clap parses, so a bad value is a
//! usage error (exit 2) before any I/O but a look-up in the local services database, and each
//! message says what is wrong and what is accepted.

use super::endpoint::FORMS;
use crate::ui::quote::quoted;
use std::ffi::CString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// The address used when none is given, for both the server and the client.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// [`DEFAULT_ADDR`]'s port, also the port of the default under `-6` ([::1]:8080).
pub const DEFAULT_PORT: u16 = 8080;

/// A host (name or IP literal) and a port, as typed for `echo-client`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// A host name or an IP literal, without brackets; an IPv6 literal may carry its zone
    /// (`fe80::1%lo`), which name resolution understands.
    pub host: String,
    /// The TCP port, never 0.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which protocol's table of service names a port name is looked up in: `echo` is 7 in both,
/// but a few names differ (`exec` is 512/tcp, `biff` 512/udp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP, and TLS over it.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// The one IP family `-4` or `-6` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// `-4/--ipv4`.
    V4,
    /// `-6/--ipv6`.
    V6,
}

/// The host part of an address as typed, before it means anything for a server or a client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// A bare `PORT`: this host's loopback.
    Loopback,
    /// `:PORT`, Go's "every address" for a server.
    Any,
    /// A name or an IP literal (an IPv6 one without its brackets).
    Named(String),
}

/// Splits `PORT`, `:PORT`, `HOST:PORT` or `[IPV6]:PORT` into host and port; the port may be a
/// service name of `proto`'s. A problem is said without the word itself: [`problem`] puts the
/// whole word as typed before it.
fn split(s: &str, proto: Proto) -> Result<(Host, u16), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("the address is empty; {FORMS}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let port = s
            .parse::<u16>()
            .map_err(|_| "not a port number (0-65535)".to_owned())?;
        return Ok((Host::Loopback, port));
    }
    if !s.starts_with('[') {
        not_host_port(s)?;
    }
    if let Some(port) = s.strip_prefix(':') {
        return Ok((Host::Any, parse_port(port, proto)?));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, port)) = rest.split_once("]:") else {
            return Err(match rest.strip_suffix(']') {
                Some(_) => "no port after ']', as in [::1]:8080".to_owned(),
                None => FORMS.to_owned(),
            });
        };
        parse_v6(v6)?;
        (v6, port)
    } else {
        s.rsplit_once(':').ok_or_else(|| FORMS.to_owned())?
    };
    Ok((Host::Named(host.to_string()), parse_port(port, proto)?))
}

/// `typed` (the whole word, prefix and all, or both words of `HOST PORT`) quoted, then what
/// is wrong with it: a usage error names what was typed, not the piece the parser choked on.
pub fn problem(typed: &str, reason: &str) -> String {
    format!("{}: {reason}", quoted(typed))
}

/// Rejects, with a message saying why, the shapes people type that are not `HOST:PORT`: a URL,
/// a `scheme:` prefix (none is known yet), an IPv6 address without brackets.
fn not_host_port(s: &str) -> Result<(), String> {
    if s.contains("://") {
        return Err(format!("a URL is not an address; {FORMS}"));
    }
    let Some((first, rest)) = s.split_once(':') else {
        return Ok(());
    };
    let unbracketed_v6 = parse_v6(s).is_ok()
        || s.rsplit_once(':')
            .is_some_and(|(host, _)| parse_v6(host).is_ok());
    if unbracketed_v6 {
        return Err(format!(
            "an IPv6 address needs brackets and a port, as in [::1]:8080; {FORMS}"
        ));
    }
    let scheme_like = first.starts_with(|c: char| c.is_ascii_alphabetic())
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'));
    if scheme_like && (rest.contains(':') || rest.starts_with('/')) {
        return Err(format!("unknown scheme '{first}:'; {FORMS}"));
    }
    Ok(())
}

/// The socket address of a host that is an IP literal (an IPv6 one may carry a zone), or
/// `None` for a name to resolve. getaddrinfo takes a zone by interface name only on a
/// link-local address, so a literal is never handed to it.
pub fn ip_literal(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let (ip, scope) = parse_v6(host).ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)))
}

/// An IPv6 literal with an optional zone (`fe80::1%lo`, `fe80::1%2`): the address and the
/// zone's interface index (0 without a zone).
fn parse_v6(s: &str) -> Result<(Ipv6Addr, u32), String> {
    let (ip, zone) = match s.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (s, None),
    };
    let ip = ip
        .parse::<Ipv6Addr>()
        .map_err(|_| format!("{} is not an IPv6 address", quoted(s)))?;
    let scope = match zone {
        Some(zone) => scope_id(zone)?,
        None => 0,
    };
    Ok((ip, scope))
}

/// The interface index an IPv6 zone names: a number, or an interface name such as `lo`.
fn scope_id(zone: &str) -> Result<u32, String> {
    if !zone.is_empty() && zone.bytes().all(|b| b.is_ascii_digit()) {
        return zone
            .parse()
            .map_err(|_| format!("{} is not an interface number", quoted(&format!("%{zone}"))));
    }
    let unknown = || {
        format!(
            "no such network interface {} (see `ip link`)",
            quoted(&format!("%{zone}"))
        )
    };
    let name = CString::new(zone).map_err(|_| unknown())?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(unknown())
    } else {
        Ok(index)
    }
}

/// The port after `HOST:`: a number, or a service name from the services database (nc's
/// habit: `localhost echo`).
fn parse_port(port: &str, proto: Proto) -> Result<u16, String> {
    if port.is_empty() {
        return Err("no port after ':'".into());
    }
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse::<u16>()
            .map_err(|_| format!("{} is not a port number (0-65535)", quoted(port)));
    }
    // Only what looks like a name is looked up: glibc would read `-1` as a number (65535).
    let name_like = port.starts_with(|c: char| c.is_ascii_alphabetic())
        && port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    let known = if name_like {
        service_port(port, proto)
    } else {
        None
    };
    known.ok_or_else(|| {
        format!(
            "{} is not a port number (0-65535) or a {proto} service name (see /etc/services)",
            quoted(port)
        )
    })
}

/// The port of service `name` for `proto`, from the services database through getaddrinfo(3)
/// (thread-safe, unlike getservbyname, and it reads what NSS says, as nc does). No host is
/// given, so nothing is resolved over the network.
fn service_port(name: &str, proto: Proto) -> Option<u16> {
    let service = CString::new(name).ok()?;
    // SAFETY: an all-zero addrinfo is a valid "no preference" hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_flags = libc::AI_PASSIVE;
    (hints.ai_socktype, hints.ai_protocol) = match proto {
        Proto::Tcp => (libc::SOCK_STREAM, libc::IPPROTO_TCP),
        Proto::Udp => (libc::SOCK_DGRAM, libc::IPPROTO_UDP),
    };
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `service` and `hints` outlive the call, which writes a list head into `list`.
    let rc = unsafe {
        libc::getaddrinfo(
            std::ptr::null(),
            service.as_ptr(),
            &raw const hints,
            &raw mut list,
        )
    };
    if rc != 0 || list.is_null() {
        return None;
    }
    // SAFETY: on success `list` is a valid node whose ai_addr, asked as AF_INET, is a
    // sockaddr_in; it is read without assuming alignment and the list is freed once.
    unsafe {
        let ai = &*list;
        let port = (ai.ai_family == libc::AF_INET && !ai.ai_addr.is_null()).then(|| {
            u16::from_be(std::ptr::read_unaligned(ai.ai_addr.cast::<libc::sockaddr_in>()).sin_port)
        });
        libc::freeaddrinfo(list);
        port
    }
}

/// Parses a listen address: `PORT` (the loopback), `:PORT` (every address: `[::]`, IPv4 too
/// unless the socket is made IPv6-only), `IP:PORT`, `[IPV6]:PORT` (with an optional zone,
/// `[fe80::1%eth0]:PORT`) or `localhost:PORT`; a port may be a service name of `proto`'s.
/// `only` (-4/-6) picks the loopback's and every address's family and refuses the other.
/// Port 0 asks the kernel for a free port. `s` is what follows any `tcp:`, `udp:` or `tls:`
/// prefix of `typed`, the word as typed, which a problem names.
pub fn parse_listen_addr(
    s: &str,
    typed: &str,
    proto: Proto,
    only: Option<Only>,
) -> Result<SocketAddr, String> {
    listen_addr(s, proto, only).map_err(|reason| problem(typed, &reason))
}

fn listen_addr(s: &str, proto: Proto, only: Option<Only>) -> Result<SocketAddr, String> {
    let (host, port) = split(s, proto)?;
    let loopback = match only {
        Some(Only::V6) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let ip = match host {
        Host::Loopback => return Ok(SocketAddr::new(loopback, port)),
        Host::Any if only == Some(Only::V4) => {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
        }
        Host::Any => return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)),
        Host::Named(host) if host.eq_ignore_ascii_case("localhost") => {
            return Ok(SocketAddr::new(loopback, port));
        }
        Host::Named(host) => host,
    };
    let addr = match ip.parse::<IpAddr>() {
        Ok(parsed) => SocketAddr::new(parsed, port),
        Err(_) if ip.contains(':') => {
            let (v6, scope) = parse_v6(&ip)?;
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
        }
        Err(_) => {
            return Err(format!(
                "{} is not an IP address (a server listens on an IP, e.g. 127.0.0.1 or [::1])",
                quoted(&ip)
            ));
        }
    };
    match only {
        Some(Only::V4) if addr.is_ipv6() => Err(format!(
            "-4/--ipv4 listens on IPv4 only, and {} is an IPv6 address",
            quoted(&ip)
        )),
        Some(Only::V6) if addr.is_ipv4() => Err(format!(
            "-6/--ipv6 listens on IPv6 only, and {} is an IPv4 address",
            quoted(&ip)
        )),
        _ => Ok(addr),
    }
}

/// Parses a connect address: `PORT` (the loopback), `:PORT` (`localhost`, as Go takes it),
/// `HOST:PORT` or `[IPV6]:PORT` (with an optional zone); a port may be a service name of
/// `proto`'s. Under `only` (-4/-6) the loopback, and `:PORT`, are that family's. Host names
/// are resolved when connecting, so every address they resolve to can be tried. `s` is what
/// follows any prefix of `typed` (or `HOST:PORT` joined from the two words `typed`), which a
/// problem names.
pub fn parse_host_port(
    s: &str,
    typed: &str,
    proto: Proto,
    only: Option<Only>,
) -> Result<HostPort, String> {
    host_port(s, proto, only).map_err(|reason| problem(typed, &reason))
}

fn host_port(s: &str, proto: Proto, only: Option<Only>) -> Result<HostPort, String> {
    let (host, port) = split(s, proto)?;
    if port == 0 {
        return Err("port 0 cannot be connected to".into());
    }
    let host = match (host, only) {
        (Host::Loopback | Host::Any, Some(Only::V6)) => Ipv6Addr::LOCALHOST.to_string(),
        (Host::Loopback | Host::Any, Some(Only::V4)) | (Host::Loopback, None) => {
            Ipv4Addr::LOCALHOST.to_string()
        }
        (Host::Any, None) => "localhost".to_owned(),
        (Host::Named(host), _) => host,
    };
    let valid_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'%'));
    if !valid_name {
        return Err(format!("{} is not a valid host name", quoted(&host)));
    }
    Ok(HostPort { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> Result<SocketAddr, String> {
        parse_listen_addr(s, s, Proto::Tcp, None)
    }

    fn connect(s: &str) -> Result<HostPort, String> {
        parse_host_port(s, s, Proto::Tcp, None)
    }

    #[test]
    fn listen_forms() {
        assert_eq!(listen("8080"), Ok("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(listen("0.0.0.0:0"), Ok("0.0.0.0:0".parse().unwrap()));
        assert_eq!(listen("[::1]:9"), Ok("[::1]:9".parse().unwrap()));
        assert_eq!(listen("localhost:7"), Ok("127.0.0.1:7".parse().unwrap()));
        for bad in [
            "",
            "x",
            "1.2.3.4",
            "1.2.3.4:99999",
            "::1:80",
            "[::1]",
            "[zz]:1",
            "example.com:80",
            ":",
        ] {
            assert!(listen(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn scoped_ipv6_by_name_or_number() {
        let lo = scope_id("lo").expect("every Linux machine has lo");
        assert!(lo > 0);
        let want = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 0, lo));
        assert_eq!(listen("[fe80::1%lo]:7"), Ok(want));
        assert_eq!(listen(&format!("[fe80::1%{lo}]:7")), Ok(want));
        let hp = connect("[fe80::1%lo]:7").unwrap();
        assert_eq!(hp.host, "fe80::1%lo", "the zone is kept for resolution");
        assert_eq!(hp.to_string(), "[fe80::1%lo]:7");
        let err = listen("[fe80::1%nosuchif0]:7").unwrap_err();
        assert!(err.contains("no such network interface"), "{err}");
        assert!(connect("[fe80::1%nosuchif0]:7").is_err());
        assert!(listen("[fe80::1%]:7").is_err());
    }

    #[test]
    fn connect_forms() {
        let hp = connect("localhost:8080").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("localhost", 8080));
        assert_eq!(connect("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(connect("9").unwrap().to_string(), "127.0.0.1:9");
        for bad in ["", "host", "host:0", "ho st:1", "::1:80", "h:-1"] {
            assert!(connect(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn wrong_shapes_say_what_is_wrong_and_what_is_accepted() {
        let cases = [
            ("http://example.com:80", "a URL is not an address"),
            ("http://x", "a URL is not an address"),
            ("TCP:127.0.0.1:7101", "unknown scheme 'TCP:'"),
            ("unix:/tmp/sock", "unknown scheme 'unix:'"),
            ("::1:80", "an IPv6 address needs brackets"),
            ("fe80::1", "an IPv6 address needs brackets"),
            ("host", "expected PORT"),
        ];
        for (input, want) in cases {
            for err in [connect(input).unwrap_err(), listen(input).unwrap_err()] {
                assert!(err.contains(want), "{input}: {err}");
                assert!(err.contains("HOST:PORT"), "{input}: names the forms: {err}");
            }
        }
    }

    /// Item 23 of issue 18: the whole word as typed is named, never the piece (`''`).
    #[test]
    fn a_problem_names_the_whole_word() {
        for (word, want) in [
            ("1.2.3.4:", "'1.2.3.4:': no port after ':'"),
            ("[::1]:", "'[::1]:': no port after ':'"),
            ("[::1]", "'[::1]': no port after ']', as in [::1]:8080"),
            (
                "1.2.3.4:x",
                "'1.2.3.4:x': 'x' is not a port number (0-65535) or a tcp service name \
                 (see /etc/services)",
            ),
            ("99999", "'99999': not a port number (0-65535)"),
            ("[zz]:1", "'[zz]:1': 'zz' is not an IPv6 address"),
        ] {
            assert_eq!(connect(word).unwrap_err(), want, "{word}");
            assert_eq!(listen(word).unwrap_err(), want, "{word}");
        }
        assert_eq!(
            parse_host_port("1.2.3.4:", "udp:1.2.3.4:", Proto::Udp, None).unwrap_err(),
            "'udp:1.2.3.4:': no port after ':'"
        );
        assert_eq!(
            connect("h:0").unwrap_err(),
            "'h:0': port 0 cannot be connected to"
        );
    }

    /// `:PORT` is every address for a server and localhost for a client; -4/-6 pick the
    /// family of both it and a bare port, and a server refuses an address of the other.
    #[test]
    fn every_address_and_the_family_options() {
        let v4 = Some(Only::V4);
        let v6 = Some(Only::V6);
        let listen_as = |s: &str, only| parse_listen_addr(s, s, Proto::Tcp, only);
        assert_eq!(listen(":0"), Ok("[::]:0".parse().unwrap()));
        assert_eq!(listen_as(":7", v6), Ok("[::]:7".parse().unwrap()));
        assert_eq!(listen_as(":7", v4), Ok("0.0.0.0:7".parse().unwrap()));
        assert_eq!(listen_as("7", v6), Ok("[::1]:7".parse().unwrap()));
        assert_eq!(listen_as("localhost:7", v6), Ok("[::1]:7".parse().unwrap()));
        assert_eq!(listen_as("[::]:7", None), Ok("[::]:7".parse().unwrap()));
        assert_eq!(
            listen_as("127.0.0.1:7", v6).unwrap_err(),
            "'127.0.0.1:7': -6/--ipv6 listens on IPv6 only, and '127.0.0.1' is an IPv4 address"
        );
        assert!(listen_as("[::]:7", v4).unwrap_err().contains("-4/--ipv4"));
        let connect_as =
            |s: &str, only| parse_host_port(s, s, Proto::Tcp, only).map(|h| h.to_string());
        assert_eq!(connect(":7").unwrap().to_string(), "localhost:7");
        assert_eq!(connect_as(":7", v6).unwrap(), "[::1]:7");
        assert_eq!(connect_as(":7", v4).unwrap(), "127.0.0.1:7");
        assert_eq!(connect_as("7", v6).unwrap(), "[::1]:7");
        assert_eq!(
            connect(":0").unwrap_err(),
            "':0': port 0 cannot be connected to"
        );
    }

    /// nc takes a service name where a port goes; the protocol's own table is read.
    #[test]
    fn service_names_from_the_services_database() {
        // Without netbase there is no database to read; the integration test
        // `addresses::service_names_where_a_port_goes` fails then under CI=1.
        if !std::path::Path::new("/etc/services").exists() {
            return;
        }
        for proto in [Proto::Tcp, Proto::Udp] {
            assert_eq!(service_port("echo", proto), Some(7), "{proto}");
            let hp = parse_host_port("localhost:echo", "w", proto, None).unwrap();
            assert_eq!(hp.port, 7);
            assert_eq!(
                parse_listen_addr(":echo", "w", proto, None).unwrap().port(),
                7
            );
        }
        // The tables differ: exec is 512/tcp only, biff 512/udp only.
        assert_eq!(service_port("exec", Proto::Tcp), Some(512));
        assert_eq!(service_port("exec", Proto::Udp), None);
        assert_eq!(service_port("biff", Proto::Udp), Some(512));
        assert_eq!(service_port("biff", Proto::Tcp), None);
        assert_eq!(
            parse_host_port("h:nosuchservice", "h nosuchservice", Proto::Udp, None).unwrap_err(),
            "'h nosuchservice': 'nosuchservice' is not a port number (0-65535) or a udp service \
             name (see /etc/services)"
        );
        for not_a_name in ["-1", "+7", "7x", "e cho", ""] {
            assert!(
                parse_port(not_a_name, Proto::Tcp).is_err(),
                "{not_a_name:?}"
            );
        }
    }
}
