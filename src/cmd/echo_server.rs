//! `echo-server`: an echo server meant to be left running, over TCP, Unix-domain sockets
//! (both plain or under TLS) or UDP.
//!
//! This module only chooses: a connection handed over by inetd or systemd (`inetd`), UDP
//! sockets (`udp`), or stream listeners (`stream`, whose connections the shared `accept` loops
//! hand to `life`, which echoes them plainly with `conn` or over `tls`); then it says the
//! summary. The pieces the transports share: `start` (the address line, the service
//! manager), `stats` and `log` (figures, events, status line, rate-limited lines), `metrics`
//! (`--metrics` and SIGUSR1), `fault` (fault injection) and `admit` (who may connect).

mod accept;
mod admit;
mod conn;
mod dump;
mod fault;
mod gate;
mod inetd;
mod life;
mod log;
mod metrics;
mod proxy;
mod start;
mod stats;
mod stream;
mod tls;
mod udp;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre;

use crate::cli::{EchoServerArgs, ProxyProtocol};
use crate::exit::Exit;
use crate::net::activation;
use crate::net::endpoint::Endpoint;
use crate::net::listen::Listener;
use crate::sys::notify::Notifier;
use crate::ui::{self, Level, Ui};
use log::Event;

/// How the server behaves; everything but the address and where messages go comes from the
/// options.
pub struct Config {
    /// Serve at most this many connections at once.
    pub max_connections: Option<NonZeroUsize>,
    /// Close a connection after this long without any byte moving.
    pub idle_timeout: Option<Duration>,
    /// After the shutdown future resolves, how long open connections may go on.
    pub shutdown_timeout: Duration,
    /// Where messages go.
    pub ui: Ui,
    /// Draw the live status line (when `ui` allows one: stderr a terminal, not `-q`).
    pub status: bool,
    /// The service manager to tell the status figures (a no-op outside systemd).
    pub notifier: Notifier,
    /// Serve TLS with this config (`--tls`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Read a PROXY protocol header first (`--proxy-protocol`).
    pub proxy: Option<ProxyProtocol>,
    /// Dump every connection's traffic on stderr (`-x`).
    pub hex_dump: bool,
    /// `--metrics` and SIGUSR1.
    watch: metrics::Watch,
    /// The faults to inject, if any (`--delay`, ...).
    pub faults: Option<Arc<fault::Plan>>,
    /// Who may connect, if anyone is kept out (`--allow`, `--deny`, `--max-per-ip`).
    pub admission: Option<Arc<admit::Gate>>,
}

#[cfg(test)]
impl Config {
    /// No limits, a 5 s drain, no messages: a server for unit tests.
    pub fn quiet() -> Self {
        Config {
            max_connections: None,
            idle_timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            ui: Ui::silent(),
            status: false,
            notifier: Notifier::default(),
            tls: None,
            proxy: None,
            hex_dump: false,
            watch: metrics::Watch::default(),
            faults: None,
            admission: None,
        }
    }
}

/// What a server did over its life, returned by [`accept::serve`] when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub connections: u64,
    /// Bytes echoed back, over all connections.
    pub bytes: u64,
    /// Connections still open at the shutdown deadline (or at a second stop request), reset
    /// by the server.
    pub closed_at_shutdown: u64,
    /// Whether a second stop request cut the wait for open connections short.
    pub cut_short: bool,
    /// From the start of [`accept::serve`] until it returned.
    pub uptime: Duration,
    /// Faults injected.
    pub injected: fault::Tally,
    /// Clients refused.
    pub refused: admit::Tally,
}

/// Runs the subcommand: bind, print the address on stdout, serve until SIGINT, SIGTERM or
/// SIGHUP, print the summary on stderr. Exit 0 after a signal; a bind failure is an error
/// (exit 1).
pub fn run(args: &EchoServerArgs, ui: &Ui) -> eyre::Result<Exit> {
    // Before the runtime opens descriptors of its own: the handed-over sockets start at fd 3.
    let inherited = match inetd::given(args)? {
        Some(inetd::Given::Connection(one)) => return inetd::run(one, args, ui),
        Some(inetd::Given::Socket(socket)) => Some(vec![socket]),
        None => activation::inherited_listeners()?,
    };
    // Before anything is bound: a bad --cert or --key names its file and binds nothing.
    let tls_files = tls::prepare(&args.tls)?;
    let udp_handed = inherited
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| matches!(s.listener, Listener::Udp(_))));
    if udp_handed || inherited.is_none() && matches!(args.listen.endpoint, Endpoint::Udp(_)) {
        let s = udp::run(inherited, args, ui)?;
        Event::new(Level::Info, "summary", udp::summary_line(&s))
            .field("datagrams", s.datagrams)
            .field("bytes_echoed", s.bytes)
            .field("dropped", s.dropped.iter().sum::<u64>())
            .field("unsent", s.unsent)
            .duration(s.uptime)
            .say(ui);
        return Ok(Exit::Success);
    }
    let s = stream::run(inherited, tls_files, args, ui)?;
    Event::new(Level::Info, "summary", summary_line(&s))
        .field("connections", s.connections)
        .field("bytes_echoed", s.bytes)
        .field("closed_at_shutdown", s.closed_at_shutdown)
        .duration(s.uptime)
        .say(ui);
    Ok(Exit::Success)
}

fn summary_line(s: &Summary) -> String {
    let connections = match s.connections {
        1 => "1 connection".to_string(),
        n => format!("{n} connections"),
    };
    let mut line = format!(
        "served {connections}, echoed {} in {}",
        ui::bytes(s.bytes),
        ui::duration(s.uptime),
    );
    if let Some(injected) = s.injected.describe() {
        line.push_str(&format!("; {injected}"));
    }
    if let Some(refused) = s.refused.describe() {
        line.push_str(&format!("; {refused}"));
    }
    if s.closed_at_shutdown > 0 {
        line.push_str(&format!(
            "; closed {} still open at {}",
            s.closed_at_shutdown,
            if s.cut_short {
                "the second stop signal"
            } else {
                "the shutdown deadline"
            }
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_wording() {
        let s = Summary {
            connections: 1,
            bytes: 1536,
            closed_at_shutdown: 0,
            cut_short: false,
            uptime: Duration::from_millis(2500),
            injected: fault::Tally::default(),
            refused: admit::Tally::default(),
        };
        assert_eq!(
            summary_line(&s),
            "served 1 connection, echoed 1.50 KiB in 2s 500ms"
        );
        let s = Summary {
            connections: 3,
            closed_at_shutdown: 2,
            ..s
        };
        assert!(summary_line(&s).ends_with("; closed 2 still open at the shutdown deadline"));
        let s = Summary {
            cut_short: true,
            ..s
        };
        assert!(summary_line(&s).ends_with("; closed 2 still open at the second stop signal"));
    }
}
