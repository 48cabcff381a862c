//! `echo-server --tls`: the certificate set up at start, and each connection's handshake (with
//! a deadline) and echo over TLS.
//!
//! The echo keeps the plain server's contract: every byte back in order through one buffer
//! (a write that waits stops the reading, so a client that does not read is slowed, never
//! queued for), and a client's close_notify is the end of its input: the rest goes back, then
//! our close_notify, then the close. A bare end of stream is not: anyone on the path can send
//! a FIN, so it is logged as a possible cut and answered without close_notify, so that the
//! client can tell it from a whole echo. A failed handshake ends only its own connection and is
//! logged with its reason.
//!
//! With `--max-connections`, a connection takes its permit only once its handshake is done,
//! and handshakes have a bound of their own, where stalled handshakes make room for new ones
//! ([`gate`]): connections that never speak cannot keep a real client out.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::conn::End;
use super::dump::Dumps;
use super::log::{self, Event};
use super::stats::{Count, HandshakeFailure, Stats};
use super::{gate, proxy};
use crate::cli::tls::ServerTls;
use crate::net::listen::Listener;
use crate::net::stream::{Connection, Peer};
use crate::net::tls::cert_out::CertOut;
use crate::net::tls::{self, Identity};
use crate::ui::quote::quote;
use crate::ui::{self, Level, Ui};

/// How long a client may take to finish its handshake (or `--idle-timeout`, if shorter): one
/// that connects and says nothing is closed after this (or sooner, to make room).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes at once with `--max-connections` N: N, and at least this many. Sockets that
/// never speak are worked through at this many a second (each has [`gate::GRACE`]), and a
/// real client waits behind those in the backlog: with 64, 2000 such sockets renewed at once
/// kept a client out for 30 s, past its own 10 s handshake deadline, for as long as they
/// came; with 1024 it waits about a second. A silent socket costs about 11 KiB here.
const MIN_HANDSHAKES: usize = 1024;

/// ... but never more than the descriptors the N served connections leave (less this many for
/// the listeners and the runtime): past that, accept would fail with EMFILE before any room
/// is made, and silent sockets would keep everyone out until their handshake deadline.
const SPARE_FDS: usize = 64;

/// The room when the descriptor limit leaves less: the bound before [`MIN_HANDSHAKES`] grew.
const FEWEST_HANDSHAKES: usize = 64;

/// Plaintext per read and write at first: one full TLS record.
const BUF: usize = 16 * 1024;
/// ... and once a read fills that (a bulk stream): four records, so each write fills the
/// socket in one call. Memory per connection stays bounded either way.
const BULK_BUF: usize = 64 * 1024;

/// What was loaded before binding: a bad `--cert`, `--key`, `--client-ca` or `--cert-out` is
/// an error at start, before any socket exists.
pub(super) struct Prepared {
    identity: Option<Identity>,
    client_ca: Option<tls::TrustFile>,
    cert_out: Option<CertOut>,
}

/// Loads the files the options name, if TLS is on, and opens `--cert-out`'s.
pub(super) fn prepare(opts: &ServerTls) -> eyre::Result<Option<Prepared>> {
    if !opts.enabled {
        return Ok(None);
    }
    let identity = match &opts.identity {
        Some((cert, key)) => Some(tls::load_identity(cert, key)?),
        None => None,
    };
    let client_ca = match &opts.client_ca {
        Some(path) => Some(tls::load_trust(path)?),
        None => None,
    };
    let cert_out = match &opts.cert_out {
        Some(path) => Some(CertOut::open(path)?),
        None => None,
    };
    Ok(Some(Prepared {
        identity,
        client_ca,
        cert_out,
    }))
}

/// The config for the bound `listeners`: with the loaded certificate, or a fresh self-signed
/// one whose fingerprint is printed (even under `-q`: it is what a client needs to connect
/// safely, not chatter) and which `--cert-out` saves.
pub(super) fn config<'a>(
    prepared: Prepared,
    opts: &ServerTls,
    listeners: impl IntoIterator<Item = &'a Listener>,
    ui: &Ui,
) -> eyre::Result<Arc<rustls::ServerConfig>> {
    let identity = match prepared.identity {
        Some(identity) => identity,
        None => {
            let made = tls::self_signed(&opts.names, &bound_ips(listeners))?;
            ui.essential(&format!(
                "tls: self-signed certificate, sha256 {}",
                made.fingerprint
            ));
            if let Some(out) = prepared.cert_out {
                let path = out.path().to_owned();
                out.write(&made.pem)?;
                ui.info(&format!(
                    "tls: certificate saved to {} (for clients' --cafile or -CAfile)",
                    quote(path.as_os_str())
                ));
            }
            made.identity
        }
    };
    tls::server_config(identity, prepared.client_ca)
}

/// The IPs the listeners are bound to; for a wildcard, the loopback addresses.
fn bound_ips<'a>(listeners: impl IntoIterator<Item = &'a Listener>) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for listener in listeners {
        let Listener::Tcp(l) = listener else { continue };
        let Ok(addr) = l.local_addr() else { continue };
        match addr.ip() {
            ip if ip.is_unspecified() => ips.extend([
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]),
            ip => ips.push(ip),
        }
    }
    ips
}

/// The TLS side of a running server: its config, the room for handshakes, and
/// `--max-connections`, taken once a handshake is done.
#[derive(Clone)]
pub(super) struct Server {
    config: Arc<rustls::ServerConfig>,
    gate: Arc<gate::Gate>,
    serving: Option<Arc<Semaphore>>,
    /// The faults to inject once the handshake is done.
    faults: Option<Arc<super::fault::Plan>>,
}

impl Server {
    /// A server with `config`, where `serving` holds the `max_connections` permits.
    pub(super) fn new(
        config: Arc<rustls::ServerConfig>,
        serving: Option<Arc<Semaphore>>,
        max_connections: Option<NonZeroUsize>,
    ) -> Server {
        let bound = max_connections.map_or(usize::MAX, handshake_room);
        Server {
            config,
            gate: Arc::new(gate::Gate::new(bound, gate::GRACE)),
            serving,
            faults: None,
        }
    }

    /// The same server, injecting `faults` into its connections' echo.
    pub(super) fn with_faults(mut self, faults: Option<Arc<super::fault::Plan>>) -> Server {
        self.faults = faults;
        self
    }

    /// Room for the handshake of a connection just accepted (waits while there is none).
    pub(super) async fn admit(&self) -> Ticket {
        Ticket {
            slot: self.gate.admit().await,
            server: self.clone(),
        }
    }

    /// At a stop: closes the connections that have not sent their ClientHello (nobody is
    /// served there, so they are not waited for) and says how many.
    pub(super) fn stop_silent(&self) -> usize {
        self.gate.stop()
    }
}

/// How long a handshake may take with `--idle-timeout` `idle`: see [`HANDSHAKE_TIMEOUT`].
pub(super) fn handshake_limit(idle: Option<Duration>) -> Duration {
    idle.map_or(HANDSHAKE_TIMEOUT, |idle| idle.min(HANDSHAKE_TIMEOUT))
}

/// How many handshakes may be in flight with `--max-connections` `n`: see [`MIN_HANDSHAKES`].
pub(super) fn handshake_room(n: NonZeroUsize) -> usize {
    let wanted = n.get().max(MIN_HANDSHAKES);
    let fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match fds.and_then(|fds| usize::try_from(fds).ok()) {
        Some(fds) => {
            let left = fds.saturating_sub(n.get().saturating_add(SPARE_FDS));
            wanted.min(left).max(FEWEST_HANDSHAKES)
        }
        None => wanted,
    }
}

/// A connection admitted to its handshake.
pub(super) struct Ticket {
    server: Server,
    slot: gate::Slot,
}

impl Ticket {
    /// Resolves when the gate closes this connection while its PROXY protocol header, which
    /// comes before the ClientHello, is awaited (to make room, or at a stop), with the reason
    /// and whether it is worth a line without `-v`: the header gives way as a silent
    /// handshake would.
    pub(super) async fn closed(&self) -> (String, bool) {
        self.slot.closed().await;
        self.slot.why_closed_awaiting(proxy::AWAITED)
    }
}

/// Handshake, then (with `--max-connections`) a permit, then echo until the client's
/// close_notify; then ours. A stream that ends without close_notify is logged as a possible cut
/// and gets no close_notify.
pub(super) async fn echo<C: Connection>(
    mut ticket: Ticket,
    stream: &mut C,
    peer: Peer,
    idle: Option<Duration>,
    (stats, echoed): (&Stats, &mut u64),
    log: &Ui,
    dumps: Option<Dumps>,
) -> io::Result<End> {
    let limit = handshake_limit(idle);
    let tls = match handshake(&mut ticket, stream, limit).await {
        Ok(tls) => tls,
        Err((reason, say, why)) => {
            stats.handshake_failed(why);
            // Said even without -v: a client that cannot connect is what someone is debugging.
            if say && log.verbose == 0 {
                let line = format!("{peer}: TLS handshake failed: {reason}");
                let event = Event::new(Level::Info, FAILED.event, line).peer(peer);
                log::said_throttled(
                    &FAILED,
                    log,
                    event.reason(&reason).field("kind", why.label()),
                );
            }
            return Err(io::Error::other(HandshakeFailed(reason)));
        }
    };
    if log.verbose > 0 {
        let session = describe(tls.get_ref().1);
        Event::new(
            Level::Detail,
            "tls_established",
            format!("{peer}: {session}"),
        )
        .peer(peer)
        .field("tls", session)
        .say(log);
    }
    // The handshake's room is held until the permit comes, so the connections waiting for
    // one stay bounded; the semaphore is never closed.
    let permit = match &ticket.server.serving {
        Some(serving) => Arc::clone(serving).acquire_owned().await.ok(),
        None => None,
    };
    let faults = ticket.server.faults.clone();
    drop(ticket);
    let end = match faults {
        None => echo_loop(tls, idle, stats, echoed, dumps.as_ref()).await,
        Some(plan) => super::fault::echo(&mut { tls }, &plan, idle, stats, echoed).await,
    };
    drop(permit);
    if let Err(err) = &end {
        // Said even without -v (which says it in the connection's last line): a client was
        // told its echo ended early, and whoever runs the server should know why.
        if log.verbose == 0 && CutShort::is(err) {
            let event = Event::new(Level::Info, CUT.event, format!("{peer}: {err}"));
            log::said_throttled(&CUT, log, event.peer(peer).reason(err));
        }
    }
    end
}

/// The handshake within `limit`, in two steps: the ClientHello (until which a stop closes
/// the connection), then the rest (which a stop leaves the gate's grace); the gate may close
/// it for room in either, and [`gate::Slot::closed`] says both. On failure, the reason and
/// whether it is worth a line without `-v`, and its kind for the metrics.
async fn handshake<'s, C: Connection>(
    ticket: &mut Ticket,
    stream: &'s mut C,
    limit: Duration,
) -> Result<TlsStream<tls::Gulp<&'s mut C>>, (String, bool, HandshakeFailure)> {
    let deadline = tokio::time::Instant::now() + limit;
    let late = || {
        let why = format!("no handshake within {}", ui::duration(limit));
        (why, true, HandshakeFailure::Timeout)
    };
    let failed = |err: io::Error| {
        let why = tls::reason(&err, tls::Party::Client);
        (why, true, failure_kind(&err))
    };
    let shed = |(why, say): (String, bool)| (why, say, HandshakeFailure::Shed);
    let hello =
        LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tls::Gulp::new(stream));
    let start = tokio::select! {
        hello = tokio::time::timeout_at(deadline, hello) => match hello {
            Ok(Ok(start)) => start,
            Ok(Err(err)) => return Err(failed(err)),
            Err(_) => return Err(late()),
        },
        () = ticket.slot.closed() => return Err(shed(ticket.slot.why_closed())),
    };
    if !ticket.slot.heard() {
        return Err(shed(ticket.slot.why_closed()));
    }
    let rest = start.into_stream(Arc::clone(&ticket.server.config));
    let tls = tokio::select! {
        rest = tokio::time::timeout_at(deadline, rest) => match rest {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => return Err(failed(err)),
            Err(_) => return Err(late()),
        },
        () = ticket.slot.closed() => return Err(shed(ticket.slot.why_closed())),
    };
    if !ticket.slot.done() {
        // Closed for room just as it finished: the room is already someone else's.
        return Err(shed(ticket.slot.why_closed()));
    }
    Ok(tls)
}

/// The metrics' name for why a handshake failed with `err`.
fn failure_kind(err: &io::Error) -> HandshakeFailure {
    use rustls::Error as E;
    match err.get_ref().and_then(|inner| inner.downcast_ref::<E>()) {
        Some(E::InvalidCertificate(_) | E::NoCertificatesPresented) => {
            HandshakeFailure::Certificate
        }
        Some(E::AlertReceived(_)) => HandshakeFailure::Alert,
        Some(E::PeerIncompatible(_)) => HandshakeFailure::Incompatible,
        Some(_) => HandshakeFailure::Protocol,
        None => match err.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => HandshakeFailure::Closed,
            io::ErrorKind::InvalidData => HandshakeFailure::Protocol,
            _ => HandshakeFailure::Other,
        },
    }
}

/// A failed handshake, as the connection's error: counted as a handshake failure, not among
/// the connection errors.
#[derive(Debug)]
struct HandshakeFailed(String);

impl std::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS handshake failed: {}", self.0)
    }
}

impl std::error::Error for HandshakeFailed {}

/// Whether a connection's error is its failed handshake (counted as such already).
pub(super) fn handshake_failed(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<HandshakeFailed>())
}

/// Failed handshakes.
static FAILED: log::Throttled = log::Throttled::new("tls_handshake_failed", "TLS handshake failed");
/// Clients whose stream ended without close_notify.
static CUT: log::Throttled = log::Throttled::new("cut", "stream ended without close_notify");

/// At a stop, once the connections are done: the lines held back, which the tasks due to say
/// them would not live to say (a stop within the second of a flood lost them).
pub(super) fn say_held_back(log: &Ui) {
    FAILED.say_held(log);
    CUT.say_held(log);
}

/// A client's stream that ended without close_notify: its input may have been cut short.
#[derive(Debug)]
struct CutShort;

impl CutShort {
    fn error() -> io::Error {
        io::Error::new(io::ErrorKind::UnexpectedEof, CutShort)
    }

    fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|inner| inner.is::<CutShort>())
    }
}

impl std::fmt::Display for CutShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the stream ended without close_notify, so the input may have been cut short (by \
             someone on the path, or a client that ends TLS without it); closed without ours, \
             so the client can tell",
        )
    }
}

impl std::error::Error for CutShort {}

/// The session in a log line: version, cipher suite, and the client certificate's subject.
fn describe(conn: &rustls::ServerConnection) -> String {
    let session = tls::session(conn);
    match conn.peer_certificates().and_then(|certs| certs.first()) {
        Some(cert) => format!(
            "{session}, client certificate {}",
            tls::subject(cert).unwrap_or_else(|| "(unreadable subject)".to_owned())
        ),
        None => session,
    }
}

/// The echo proper, with `--idle-timeout` between any two steps that move bytes.
async fn echo_loop<S: AsyncRead + AsyncWrite + Unpin>(
    mut tls: S,
    idle: Option<Duration>,
    stats: &Stats,
    echoed: &mut u64,
    dumps: Option<&Dumps>,
) -> io::Result<End> {
    let mut count = Count::new(stats, echoed);
    let mut buf = vec![0u8; BUF];
    let end = echo_until(&mut tls, idle, &mut count, &mut buf, dumps).await?;
    if end == End::Idle {
        // An ordered close, as over TCP: a client that was only waiting ends cleanly instead
        // of seeing its stream cut without close_notify. A peer that reads nothing cannot
        // hold it up past the grace period.
        let _ = tokio::time::timeout(IDLE_CLOSE_GRACE, tls.shutdown()).await;
    }
    Ok(end)
}

/// How long the close_notify of an idle connection may take to go out.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// [`echo_loop`]'s loop: until the client's end of input (answered), the idle timeout, or a
/// stream that ends without close_notify ([`CutShort`], not answered). With `dumps` (`-x`),
/// each chunk's plaintext is dumped as it comes and as it goes back.
async fn echo_until<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut S,
    idle: Option<Duration>,
    count: &mut Count<'_>,
    buf: &mut Vec<u8>,
    dumps: Option<&Dumps>,
) -> io::Result<End> {
    loop {
        let n = match bounded(idle, tls.read(&mut buf[..])).await {
            None => return Ok(End::Idle),
            Some(Ok(n)) => n,
            // A bare FIN, which anyone on the path can send, is not the end of the input:
            // answering it with our close_notify would make a cut look like a whole echo.
            Some(Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(CutShort::error());
            }
            Some(Err(err)) => return Err(err),
        };
        if n == 0 {
            // close_notify, then the socket's own shutdown (tokio-rustls does both).
            return match bounded(idle, tls.shutdown()).await {
                None => Ok(End::Idle),
                Some(done) => done.map(|()| End::Closed),
            };
        }
        if let Some(dumps) = dumps {
            dumps.received(&buf[..n]);
        }
        let mut sent = 0;
        while sent < n {
            match bounded(idle, tls.write(&buf[sent..n])).await {
                None => return Ok(End::Idle),
                Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Some(Ok(k)) => {
                    if let Some(dumps) = dumps {
                        dumps.sent(&buf[sent..sent + k]);
                    }
                    sent += k;
                    count.add(k);
                }
                Some(Err(err)) => return Err(err),
            }
        }
        if bounded(idle, tls.flush()).await.transpose()?.is_none() {
            return Ok(End::Idle);
        }
        if n == buf.len() && n < BULK_BUF {
            buf.resize(BULK_BUF, 0);
        }
    }
}

/// `step`, or `None` when `idle` passes first.
pub(super) async fn bounded<T>(idle: Option<Duration>, step: impl Future<Output = T>) -> Option<T> {
    match idle {
        Some(limit) => tokio::time::timeout(limit, step).await.ok(),
        None => Some(step.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_have_a_bounded_kind() {
        let tls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        assert_eq!(failure_kind(&tls(alert)), HandshakeFailure::Alert);
        let none = rustls::Error::NoCertificatesPresented;
        assert_eq!(failure_kind(&tls(none)), HandshakeFailure::Certificate);
        let bad = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(failure_kind(&tls(bad)), HandshakeFailure::Protocol);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(failure_kind(&eof), HandshakeFailure::Closed);
        let failed = io::Error::other(HandshakeFailed("x".into()));
        assert!(handshake_failed(&failed) && !handshake_failed(&eof));
        assert_eq!(failed.to_string(), "TLS handshake failed: x");
    }
}
