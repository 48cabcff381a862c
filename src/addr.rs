//! Parsers for the values a user types: listen addresses, connect addresses and durations.
//! They are clap value parsers, so a bad value is a usage error (exit 2) before any I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The address used when none is given, for both the server and the client.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// A host (name or IP literal) and a port, as typed for `echo-client`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// A host name or an IP literal, without brackets.
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

/// Splits `PORT`, `HOST:PORT` or `[IPV6]:PORT` into host and port; a bare port means 127.0.0.1.
fn split(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address: expected PORT, HOST:PORT or [IPV6]:PORT".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((Ipv4Addr::LOCALHOST.to_string(), parse_port(s)?));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("'{s}': expected [IPV6]:PORT"))?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("'{v6}' is not an IPv6 address"))?;
        (v6, port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("'{s}': expected PORT, HOST:PORT or [IPV6]:PORT"))?;
        if host.contains(':') {
            return Err(format!(
                "'{s}': an IPv6 address needs brackets, as in [::1]:8080"
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("'{s}': the host is missing"));
    }
    Ok((host.to_string(), parse_port(port)?))
}

fn parse_port(port: &str) -> Result<u16, String> {
    port.parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number (0-65535)"))
}

/// Parses a listen address: `PORT`, `IP:PORT`, `[IPV6]:PORT` or `localhost:PORT`.
/// Port 0 asks the kernel for a free port.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let (host, port) = split(s)?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().map_err(|_| {
            format!(
                "'{host}' is not an IP address (a server listens on an IP, e.g. 127.0.0.1 or [::1])"
            )
        })?
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses a connect address: `PORT`, `HOST:PORT` or `[IPV6]:PORT`; host names are resolved
/// when connecting, so every address they resolve to can be tried.
pub fn parse_host_port(s: &str) -> Result<HostPort, String> {
    let (host, port) = split(s)?;
    if port == 0 {
        return Err("port 0 cannot be connected to".into());
    }
    let valid_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'%'));
    if !valid_name {
        return Err(format!("'{host}' is not a valid host name"));
    }
    Ok(HostPort { host, port })
}

/// The longest duration accepted: far beyond any use, and far enough below what the clock's
/// arithmetic can hold that a deadline computed from it never overflows.
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600); // humantime's year: 365.25 days

/// Parses a duration such as `500ms`, `30s`, `2m` or `1h 30m`, up to 100 years.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration like 500ms, 30s or 2m: {e}"))?;
    if d > MAX_DURATION {
        return Err(format!("'{s}' is too long: at most 100 years"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen_addr("8080"),
            Ok("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_listen_addr("0.0.0.0:0"),
            Ok("0.0.0.0:0".parse().unwrap())
        );
        assert_eq!(parse_listen_addr("[::1]:9"), Ok("[::1]:9".parse().unwrap()));
        assert_eq!(
            parse_listen_addr("localhost:7"),
            Ok("127.0.0.1:7".parse().unwrap())
        );
        for bad in [
            "",
            "x",
            "1.2.3.4",
            "1.2.3.4:99999",
            "::1:80",
            "[::1]",
            "[zz]:1",
            "example.com:80",
            ":80",
        ] {
            assert!(
                parse_listen_addr(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn connect_forms() {
        let hp = parse_host_port("localhost:8080").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("localhost", 8080));
        assert_eq!(parse_host_port("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(parse_host_port("9").unwrap().to_string(), "127.0.0.1:9");
        for bad in ["", "host", "host:0", "ho st:1", "::1:80", "h:-1"] {
            assert!(parse_host_port(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_duration("100y"), Ok(MAX_DURATION));
        assert!(parse_duration("101y").is_err());
        assert!(parse_duration("300000000000y").is_err());
    }
}
