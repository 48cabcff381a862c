//! `echo-server`'s options for watching it run: `--metrics` and `--log-format`, in a section
//! of their own (flattened into [`EchoServerArgs`](super::EchoServerArgs)).

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

use crate::net::addr::{Proto, parse_listen_addr};
use crate::net::endpoint::{self, Endpoint};
use crate::ui::quote::quoted;

/// How the server's messages on stderr are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people (the default).
    #[default]
    Text,
    /// One JSON object a line, for journald, Loki or jq.
    Json,
}

/// How `echo-server` can be watched.
#[derive(Debug, Args, Clone, Default)]
pub struct Observe {
    /// Serve Prometheus metrics over HTTP on this address (GET /metrics, text format 0.0.4):
    /// connections open and served, bytes echoed, errors by kind, TLS handshake failures by
    /// reason, UDP datagrams echoed and dropped by reason, faults injected and clients refused
    /// by kind, the start time. At most 8 scrapers are held at once, a new one closing the
    /// oldest (so silent connections cannot keep a scrape out). ADDR as the server
    /// takes its own: PORT (the loopback), :PORT (every address), HOST:PORT, [IPV6]:PORT,
    /// unix:PATH (curl --unix-socket). The address is said on stderr
    /// ("metrics on http://127.0.0.1:9100/metrics").
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics_addr)]
    pub metrics: Option<Endpoint<SocketAddr>>,

    /// How messages on stderr are written: text for people, or json, one object a line with
    /// "time" (RFC 3339, UTC), "level", "event" (listening, fault_injection, accepted, closed,
    /// tls_handshake_failed, refused, statistics, summary, message...), "message" (the text line), and
    /// where they apply "peer", "bytes_in", "bytes_out", "duration_s", "reason".
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Parses `--metrics ADDR`: any TCP or Unix address the server could listen on; UDP and TLS
/// are refused, saying why (Prometheus scrapes plain HTTP over a stream).
pub fn parse_metrics_addr(s: &str) -> Result<Endpoint<SocketAddr>, String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("tls:") {
        return Err(format!(
            "{}: metrics are served over plain HTTP; give the address without tls:",
            quoted(s)
        ));
    }
    let parsed = endpoint::parse(s, s, false, Proto::Tcp, |rest, proto| {
        parse_listen_addr(rest, s, proto, None)
    })?;
    if let Endpoint::Udp(_) = parsed {
        return Err(format!(
            "{}: metrics are served over HTTP, a stream: give a TCP or unix: address",
            quoted(s)
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_addresses() {
        assert_eq!(
            parse_metrics_addr("9100").unwrap().to_string(),
            "127.0.0.1:9100"
        );
        assert!(parse_metrics_addr(":9100").is_ok());
        assert!(parse_metrics_addr("unix:/tmp/m.sock").is_ok());
        assert!(
            parse_metrics_addr("udp:1.2.3.4:5")
                .unwrap_err()
                .contains("stream")
        );
        assert!(
            parse_metrics_addr("tls::9100")
                .unwrap_err()
                .contains("plain HTTP")
        );
        assert!(parse_metrics_addr("nonsense:x:y").is_err());
    }
}
