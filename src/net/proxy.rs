//! The PROXY protocol (HAProxy's): the header a proxy or load balancer sends before the
//! client's bytes to name the client it relays, as text (v1, `PROXY TCP4 …\r\n`) or binary
//! (v2, after a 12-byte signature). The two are told apart by their signatures.
//!
//! This module frames and words; the `ppp` crate parses and builds. Framing is ours because a
//! server must read a header without reading past it (the bytes after it are the client's,
//! and over TLS the start of its ClientHello): it asks [`start`] whether the first bytes are a
//! header at all, [`V2_FIXED`] and [`v2_len`] (or, for v1, the line's end within [`V1_MAX`])
//! how many bytes the header has, and hands [`parse`] exactly those.

use std::net::{IpAddr, SocketAddr};

use ppp::{v1, v2};

/// How a v1 header starts.
pub const V1_PREFIX: &[u8] = b"PROXY ";
/// How a v2 header starts.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, its CRLF included (the specification's bound).
pub const V1_MAX: usize = 107;
/// A v2 header's fixed part: the signature, version and command, family and protocol, and the
/// length of what follows.
pub const V2_FIXED: usize = 16;

/// A connection's source (the client) and destination, as a header names them.
pub type Addresses = (SocketAddr, SocketAddr);

/// A version of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// What the first bytes of a connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The start of a header of this version.
    Header(Version),
    /// Not a header: the bytes are the client's own.
    Other,
    /// Too few bytes to tell: all of them start a signature.
    Undecided,
}

/// Whether `bytes`, the first of a connection, start a header.
pub fn start(bytes: &[u8]) -> Start {
    let starts = |signature: &[u8]| {
        let n = bytes.len().min(signature.len());
        bytes[..n] == signature[..n]
    };
    match (starts(V1_PREFIX), starts(V2_SIGNATURE)) {
        (true, _) if bytes.len() >= V1_PREFIX.len() => Start::Header(Version::V1),
        (_, true) if bytes.len() >= V2_SIGNATURE.len() => Start::Header(Version::V2),
        (false, false) => Start::Other,
        _ => Start::Undecided,
    }
}

/// The whole length of a v2 header whose fixed part is `fixed`.
pub fn v2_len(fixed: &[u8; V2_FIXED]) -> usize {
    V2_FIXED + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]))
}

/// What a header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Its version.
    pub version: Version,
    /// The client's address and the one it connected to, as the proxy saw them; `None` when
    /// the header names none the server can use (v1 `UNKNOWN`; v2 `LOCAL`, the proxy's own
    /// connection such as a health check; v2 `UNSPEC` or Unix addresses): the connection's
    /// own peer is then the client.
    pub addresses: Option<Addresses>,
}

/// Parses exactly one whole header (as framed above), or says in words what is wrong with it.
pub fn parse(bytes: &[u8]) -> Result<Header, String> {
    match start(bytes) {
        Start::Header(Version::V1) => parse_v1(bytes),
        Start::Header(Version::V2) => parse_v2(bytes),
        _ => Err(format!("not a PROXY protocol header: {}", shown(bytes))),
    }
}

fn parse_v1(bytes: &[u8]) -> Result<Header, String> {
    let header = v1::Header::try_from(bytes).map_err(|err| invalid(Version::V1, &err))?;
    if header.header.len() != bytes.len() {
        return Err(format!(
            "invalid PROXY v1 header: {} does not end in CRLF",
            shown(bytes)
        ));
    }
    let addresses = match header.addresses {
        v1::Addresses::Tcp4(a) => Some(pair(
            a.source_address,
            a.source_port,
            a.destination_address,
            a.destination_port,
        )),
        v1::Addresses::Tcp6(a) => Some(pair(
            a.source_address,
            a.source_port,
            a.destination_address,
            a.destination_port,
        )),
        v1::Addresses::Unknown => None,
    };
    Ok(Header {
        version: Version::V1,
        addresses,
    })
}

fn parse_v2(bytes: &[u8]) -> Result<Header, String> {
    let header = v2::Header::try_from(bytes).map_err(|err| invalid(Version::V2, &err))?;
    let addresses = match (header.command, header.addresses) {
        // The proxy's own connection: whatever addresses it carries are to be ignored.
        (v2::Command::Local, _) => None,
        (v2::Command::Proxy, v2::Addresses::IPv4(a)) => Some(pair(
            a.source_address,
            a.source_port,
            a.destination_address,
            a.destination_port,
        )),
        (v2::Command::Proxy, v2::Addresses::IPv6(a)) => Some(pair(
            a.source_address,
            a.source_port,
            a.destination_address,
            a.destination_port,
        )),
        (v2::Command::Proxy, v2::Addresses::Unix(_) | v2::Addresses::Unspecified) => None,
    };
    Ok(Header {
        version: Version::V2,
        addresses,
    })
}

fn pair(
    source: impl Into<IpAddr>,
    source_port: u16,
    destination: impl Into<IpAddr>,
    destination_port: u16,
) -> Addresses {
    (
        SocketAddr::new(source.into(), source_port),
        SocketAddr::new(destination.into(), destination_port),
    )
}

/// ppp's reason, worded as our other reasons are (lower case, no full stop), on one line: some
/// name the CRLF a v1 line must end in, which as is would break the log line in two.
fn invalid(version: Version, err: &dyn std::fmt::Display) -> String {
    let mut text = String::new();
    for c in err.to_string().chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    let worded = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("invalid PROXY {version} header: {worded}")
}

/// The header a proxy sends for a connection from `source` to `destination`; `None` (a Unix
/// socket's connection, which has no address to name) says the addresses are unknown.
pub fn encode(version: Version, addresses: Option<Addresses>) -> Vec<u8> {
    let addresses = addresses.map(|(s, d)| same_family(s, d));
    match version {
        Version::V1 => match addresses {
            Some(pair) => v1::Addresses::from(pair),
            None => v1::Addresses::Unknown,
        }
        .to_string()
        .into_bytes(),
        Version::V2 => {
            let addresses = addresses.map_or(v2::Addresses::Unspecified, v2::Addresses::from);
            let command = v2::Version::Two | v2::Command::Proxy;
            // An in-memory write with no TLVs: it cannot fail, but the fallback is a valid
            // header too (a LOCAL one, which a server takes as the proxy's own connection).
            v2::Builder::with_addresses(command, v2::Protocol::Stream, addresses)
                .build()
                .unwrap_or_else(|_| local_v2())
        }
    }
}

/// A v2 `LOCAL` header with no addresses.
fn local_v2() -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend([0x20, 0x00, 0, 0]);
    header
}

/// Both addresses in one family, as a header names them: IPv4 when both are (an IPv4 client
/// of a dual-stack socket shows as `::ffff:a.b.c.d`), IPv6 otherwise.
fn same_family(source: SocketAddr, destination: SocketAddr) -> Addresses {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (s, d) = (canonical(source), canonical(destination));
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(s), v6(d))
}

/// The first bytes of a connection for a log line: printable ASCII as is, the rest escaped,
/// at most 32 of them.
pub fn shown(bytes: &[u8]) -> String {
    const MOST: usize = 32;
    let mut text: String = bytes[..bytes.len().min(MOST)]
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if bytes.len() > MOST {
        text.push('…');
    }
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn signatures_tell_the_versions_apart() {
        assert_eq!(start(b"PROXY TCP4"), Start::Header(Version::V1));
        assert_eq!(start(b"PROX"), Start::Undecided);
        assert_eq!(start(b""), Start::Undecided);
        assert_eq!(start(b"\r\n\r\n\0"), Start::Undecided);
        assert_eq!(start(V2_SIGNATURE), Start::Header(Version::V2));
        assert_eq!(start(b"GET / HTTP/1.1"), Start::Other);
        assert_eq!(start(b"\x16\x03\x01"), Start::Other);
        assert_eq!(start(b"PROXIES"), Start::Other);
        assert_eq!(start(b"\r\n\r\nhello"), Start::Other);
    }

    #[test]
    fn both_versions_round_trip() {
        for (s, d) in [
            ("192.0.2.7:51234", "127.0.0.1:7"),
            ("[2001:db8::7]:51234", "[::1]:7"),
        ] {
            let addresses = Some((addr(s), addr(d)));
            for version in [Version::V1, Version::V2] {
                let bytes = encode(version, addresses);
                let header = parse(&bytes).unwrap();
                assert_eq!(header, Header { version, addresses }, "{version} {s}");
            }
        }
    }

    #[test]
    fn mixed_families_become_one() {
        let bytes = encode(
            Version::V1,
            Some((addr("[::ffff:192.0.2.7]:1"), addr("127.0.0.1:2"))),
        );
        assert_eq!(bytes, b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\r\n");
        let bytes = encode(Version::V1, Some((addr("192.0.2.7:1"), addr("[::1]:2"))));
        assert_eq!(bytes, b"PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n");
    }

    #[test]
    fn unknown_and_local_name_no_client() {
        let unknown = encode(Version::V1, None);
        assert_eq!(unknown, b"PROXY UNKNOWN\r\n");
        assert_eq!(parse(&unknown).unwrap().addresses, None);
        assert_eq!(parse(&encode(Version::V2, None)).unwrap().addresses, None);
        let mut local = local_v2();
        assert_eq!(parse(&local).unwrap().addresses, None);
        // A LOCAL header's addresses are ignored, as the specification says.
        local[13] = 0x11;
        local[15] = 12;
        local.extend([192, 0, 2, 7, 127, 0, 0, 1, 0, 1, 0, 2]);
        assert_eq!(v2_len(local[..16].try_into().unwrap()), local.len());
        assert_eq!(parse(&local).unwrap().addresses, None);
    }

    proptest::proptest! {
        /// Whatever follows a signature, parsing says why it is wrong or names addresses; it
        /// never panics.
        #[test]
        fn any_bytes_after_a_signature_parse_or_say_why(
            v2: bool,
            command: u8,
            family: u8,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut bytes = if v2 {
                let mut b = V2_SIGNATURE.to_vec();
                let len = u16::try_from(body.len()).unwrap().to_be_bytes();
                b.extend([command, family, len[0], len[1]]);
                b
            } else {
                V1_PREFIX.to_vec()
            };
            bytes.extend(&body);
            if let Err(why) = parse(&bytes) {
                proptest::prop_assert!(why.starts_with("invalid PROXY v"), "{why}");
            }
        }
    }

    #[test]
    fn bad_headers_say_why() {
        let err = parse(b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n").unwrap_err();
        assert!(err.starts_with("invalid PROXY v1 header: "), "{err}");
        assert!(!err.ends_with('.'), "{err}");
        let err = parse(b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\n").unwrap_err();
        assert!(err.starts_with("invalid PROXY v1 header"), "{err}");
        let err = parse(b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\rX\n").unwrap_err();
        assert!(!err.contains(['\r', '\n']), "{err:?}");
        let mut v3 = V2_SIGNATURE.to_vec();
        v3.extend([0x31, 0x00, 0, 0]);
        let err = parse(&v3).unwrap_err();
        assert!(err.starts_with("invalid PROXY v2 header: "), "{err}");
        assert_eq!(
            parse(b"GET /").unwrap_err(),
            "not a PROXY protocol header: \"GET /\""
        );
        assert_eq!(shown(b"\x16\x03\x01"), "\"\\x16\\x03\\x01\"");
    }
}
