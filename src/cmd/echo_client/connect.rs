//! Reaching the server: over TCP, resolve the name and try every address it resolves to in
//! turn; over a Unix socket, connect to the path or abstract name. Each attempt is bounded by
//! `--connect-timeout`, and `--wait` retries for a server that is still starting (for a Unix
//! socket: while the path is missing or refuses).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use color_eyre::eyre;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream, UnixStream};
use tokio::time::Instant;

use crate::cli::SendProxy;
use crate::net::addr::HostPort;
use crate::net::endpoint::{Endpoint, UnixAddr};
use crate::net::proxy;
use crate::report::io_reason;
use crate::sys::backoff::Backoff;
use crate::ui::{self, Ui, quote};

/// The first back-off pause of `--wait`; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(20);
/// A server that comes up is noticed at most this late.
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Retries of a Unix connect whose server's accept queue is full: room is noticed this soon.
const QUEUE_FULL_START: Duration = Duration::from_millis(1);
const QUEUE_FULL_MAX: Duration = Duration::from_millis(50);

/// `--send-proxy`: the PROXY protocol header version every stream connection of this process
/// starts with. Set once at start rather than passed down: every mode (copy, -z, probe, load,
/// over TLS or not) connects through [`attempt`], and all of them must send it.
static SEND_PROXY: OnceLock<proxy::Version> = OnceLock::new();

/// Makes every connection start with a PROXY protocol header of `version` (`--send-proxy`).
pub(super) fn send_proxy(version: Option<SendProxy>) {
    let version = match version {
        Some(SendProxy::V1) => proxy::Version::V1,
        Some(SendProxy::V2) => proxy::Version::V2,
        None => return,
    };
    // Set once, by `run`, before any connection.
    let _ = SEND_PROXY.set(version);
}

/// Writes the `--send-proxy` header, if asked for, before any other byte: naming what
/// `addresses` finds, the connection's own source and destination, as a proxy names its
/// client's (none for a Unix socket, which has no address to name).
async fn say_proxy<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    addresses: fn(&S) -> io::Result<Option<proxy::Addresses>>,
) -> Result<(), Failure> {
    let Some(&version) = SEND_PROXY.get() else {
        return Ok(());
    };
    let addresses = addresses(stream).map_err(Failure::Setup)?;
    let header = proxy::encode(version, addresses);
    stream.write_all(&header).await.map_err(Failure::Setup)
}

/// Which address families may be used: `-4`, `-6`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Any,
    V4,
    V6,
    /// IPv4 only, as the source address (`-s`) is.
    FromV4,
    /// IPv6 only, as the source address (`-s`) is.
    FromV6,
}

impl Family {
    pub(super) fn admits(self, addr: SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 | Family::FromV4 => addr.is_ipv4(),
            Family::V6 | Family::FromV6 => addr.is_ipv6(),
        }
    }

    pub(super) fn flag(self) -> &'static str {
        match self {
            Family::Any => "",
            Family::V4 => "IPv4 (-4)",
            Family::V6 => "IPv6 (-6)",
            Family::FromV4 => "IPv4 (as the source, -s)",
            Family::FromV6 => "IPv6 (as the source, -s)",
        }
    }
}

/// The local end `-s`/`-p` ask for (nc's source address and port), bound before connecting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Source {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Source {
    /// The address to bind for a connection to `peer`: the wildcard of its family for a port
    /// alone; `None` when nothing was asked for (the kernel then picks both).
    pub(super) fn for_peer(self, peer: SocketAddr) -> Option<SocketAddr> {
        if self == Source::default() {
            return None;
        }
        let any: IpAddr = if peer.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        Some(SocketAddr::new(
            self.ip.unwrap_or(any),
            self.port.unwrap_or(0),
        ))
    }

    /// The family a source address confines the server's addresses to.
    pub(super) fn narrow(self, family: Family) -> Family {
        match (self.ip, family) {
            (Some(IpAddr::V4(_)), Family::Any) => Family::FromV4,
            (Some(IpAddr::V6(_)), Family::Any) => Family::FromV6,
            _ => family,
        }
    }
}

/// Binds `socket` to `local`, the error naming it: a reused port (nc -p, quickly again) must
/// not wait out TIME_WAIT, so SO_REUSEADDR is set when a port is fixed.
pub(super) fn bind_source(socket: &socket2::Socket, local: SocketAddr) -> io::Result<()> {
    if local.port() != 0 {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&local.into()).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot bind to {local}: {}", io_reason(&err)),
        )
    })
}

/// Why one round of connecting failed. Kept structured so the final message can name every
/// address that was tried and say how long `--wait` waited.
#[derive(Debug)]
enum Failure {
    /// The name did not resolve (or resolving took longer than the connect timeout).
    Resolve(io::Error),
    /// The name resolved to nothing (of the family asked for).
    NoAddress(Family),
    /// Every address was tried; each failed for the reason given.
    Connect(Vec<(SocketAddr, io::Error)>),
    /// The Unix socket refused, is missing, or took too long.
    Unix(io::Error),
    /// Connected, but the socket could not be set up for the pumps.
    Setup(io::Error),
}

/// A connection ready for the pumps, and how to name the server in messages.
pub(super) struct Connected {
    /// The connected socket, in blocking-free std form for the pump threads.
    pub socket: socket2::Socket,
    /// The endpoint as typed, plus the IP a name resolved to.
    pub server: String,
}

/// Connects to `target`. Without `wait`, one round: every resolved address once. With it,
/// rounds are repeated with growing pauses until one succeeds or `wait` is over; no new round
/// starts after that, so the whole takes at most `wait` plus one round. `announce`: say through
/// the `Ui` that we are waiting (a person at a terminal would otherwise see nothing happen).
pub(super) async fn connect(
    target: &Endpoint<HostPort>,
    family: Family,
    timeout: Duration,
    wait: Option<Duration>,
    announce: Option<&Ui>,
) -> eyre::Result<Connected> {
    connect_from(target, family, timeout, wait, announce, Source::default()).await
}

/// [`connect`] from the local address and port `source` asks for.
pub(super) async fn connect_from(
    target: &Endpoint<HostPort>,
    family: Family,
    timeout: Duration,
    wait: Option<Duration>,
    announce: Option<&Ui>,
    source: Source,
) -> eyre::Result<Connected> {
    let family = source.narrow(family);
    let Some(wait) = wait else {
        return attempt(target, family, timeout, source)
            .await
            .map_err(|failure| report(failure, target, None));
    };
    let deadline = Instant::now() + wait;
    let mut backoff = Backoff::new(BACKOFF_START, BACKOFF_MAX);
    let mut told = false;
    loop {
        let failure = match attempt(target, family, timeout, source).await {
            Ok(stream) => return Ok(stream),
            Err(failure) => failure,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(report(failure, target, Some(wait)));
        }
        if let (Some(ui), false) = (announce, told) {
            told = true;
            let why = report(failure, target, None);
            ui.info(&format!(
                "{}; retrying for up to {}",
                crate::report::one_line(&why),
                ui::duration(wait)
            ));
        }
        tokio::time::sleep(backoff.pause().min(deadline - now)).await;
    }
}

/// One round over the endpoint's transport.
async fn attempt(
    target: &Endpoint<HostPort>,
    family: Family,
    timeout: Duration,
    source: Source,
) -> Result<Connected, Failure> {
    match target {
        Endpoint::Tcp(hp) => {
            let mut stream = attempt_tcp(hp, family, timeout, source).await?;
            let peer = stream.peer_addr().ok();
            // Lines typed at a terminal must go out at once, not wait for the previous
            // reply's ACK. Bulk data is written in large chunks, so this costs nothing there.
            let _ = stream.set_nodelay(true);
            say_proxy(&mut stream, |s| Ok(Some((s.local_addr()?, s.peer_addr()?)))).await?;
            let socket = stream.into_std().map_err(Failure::Setup)?;
            Ok(Connected {
                socket: socket.into(),
                server: describe(hp, peer),
            })
        }
        // UDP makes no connection: `echo_client::udp` serves it.
        Endpoint::Udp(_) => Err(Failure::Setup(io::ErrorKind::Unsupported.into())),
        Endpoint::Unix(addr) => {
            // A full accept queue makes a non-blocking Unix connect fail with EAGAIN where a
            // TCP one would wait: wait for room the same way, within the connect timeout.
            let connecting = async {
                let mut backoff = Backoff::new(QUEUE_FULL_START, QUEUE_FULL_MAX);
                loop {
                    match connect_unix(addr).await {
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                            tokio::time::sleep(backoff.pause()).await;
                        }
                        result => return result,
                    }
                }
            };
            let mut stream = tokio::time::timeout(timeout, connecting)
                .await
                .map_err(|_| Failure::Unix(timed_out(timeout)))?
                .map_err(Failure::Unix)?;
            say_proxy(&mut stream, |_| Ok(None)).await?;
            let socket = stream.into_std().map_err(Failure::Setup)?;
            Ok(Connected {
                socket: socket.into(),
                server: quote::address(&addr.to_string()).into_owned(),
            })
        }
    }
}

/// One connect to a Unix socket's path or abstract name.
async fn connect_unix(addr: &UnixAddr) -> io::Result<UnixStream> {
    match addr {
        UnixAddr::Path(path) => UnixStream::connect(path).await,
        // tokio takes a path that starts with NUL for an abstract name.
        UnixAddr::Abstract(name) => {
            use std::os::unix::ffi::OsStrExt;
            let path = [&b"\0"[..], name].concat();
            UnixStream::connect(std::ffi::OsStr::from_bytes(&path)).await
        }
    }
}

/// One TCP round: resolve, then try each address until one accepts.
async fn attempt_tcp(
    target: &HostPort,
    family: Family,
    timeout: Duration,
    source: Source,
) -> Result<TcpStream, Failure> {
    // An IP literal is parsed, not looked up; a name goes through getaddrinfo on tokio's
    // blocking pool, bounded like a connect so a dead resolver cannot hang us.
    let resolved: Vec<SocketAddr> = match crate::net::addr::ip_literal(&target.host, target.port) {
        Some(addr) => vec![addr],
        None => tokio::time::timeout(
            timeout,
            tokio::net::lookup_host((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| Failure::Resolve(timed_out(timeout)))?
        .map_err(Failure::Resolve)?
        .collect(),
    };
    let mut errors = Vec::new();
    for addr in resolved.into_iter().filter(|addr| family.admits(*addr)) {
        match tokio::time::timeout(timeout, connect_tcp(addr, source)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) => errors.push((addr, err)),
            Err(_) => errors.push((addr, timed_out(timeout))),
        }
    }
    if errors.is_empty() {
        Err(Failure::NoAddress(family))
    } else {
        Err(Failure::Connect(errors))
    }
}

/// One TCP connect to `addr`, from `source` when one is asked for.
async fn connect_tcp(addr: SocketAddr, source: Source) -> io::Result<TcpStream> {
    let Some(local) = source.for_peer(addr) else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    bind_source(&socket2::SockRef::from(&socket), local)?;
    socket.connect(addr).await
}

fn timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("timed out after {}", ui::duration(limit)),
    )
}

/// The one-line error for a failed connect: `cannot connect to 127.0.0.1:9: Connection
/// refused`, `cannot resolve nosuch.invalid: ...`, or for a name with several addresses each
/// address with its own reason.
fn report(failure: Failure, target: &Endpoint<HostPort>, waited: Option<Duration>) -> eyre::Report {
    let waited = waited
        .map(|w| format!(" (gave up after {})", ui::duration(w)))
        .unwrap_or_default();
    // A socket path may hold any byte: quoted (when it needs it) so it can forge no line.
    let named = quote::address(&target.to_string()).into_owned();
    match (failure, target) {
        (Failure::Unix(err) | Failure::Setup(err), _) => {
            eyre::Report::new(err).wrap_err(format!("cannot connect to {named}{waited}"))
        }
        (failure, Endpoint::Tcp(hp)) => report_tcp(failure, hp, &waited),
        // Only a TCP round resolves names and tries addresses.
        (failure, Endpoint::Unix(_) | Endpoint::Udp(_)) => {
            eyre::eyre!("{failure:?}").wrap_err(format!("cannot connect to {named}{waited}"))
        }
    }
}

/// [`report`] for a TCP round's failures.
fn report_tcp(failure: Failure, target: &HostPort, waited: &str) -> eyre::Report {
    match failure {
        Failure::Resolve(err) => {
            eyre::Report::new(err).wrap_err(format!("cannot resolve {}{waited}", target.host))
        }
        Failure::NoAddress(Family::Any) => eyre::eyre!("the name has no address")
            .wrap_err(format!("cannot resolve {}{waited}", target.host)),
        Failure::NoAddress(family) if is_ip(target) => {
            eyre::eyre!("{} is not an {} address", target.host, family.flag())
                .wrap_err(format!("cannot connect to {target}"))
        }
        Failure::NoAddress(family) => eyre::eyre!("the name has no {} address", family.flag())
            .wrap_err(format!("cannot resolve {}{waited}", target.host)),
        Failure::Connect(mut errors) => {
            if errors.len() == 1 {
                let (addr, err) = errors.remove(0);
                // Name the address as typed, and the IP too when a name was resolved.
                let name = if is_literal(target, addr) {
                    addr.to_string()
                } else {
                    format!("{target} ({addr})")
                };
                eyre::Report::new(err).wrap_err(format!("cannot connect to {name}{waited}"))
            } else {
                let each = errors
                    .iter()
                    .map(|(addr, err)| format!("{addr}: {}", io_reason(err)))
                    .collect::<Vec<_>>()
                    .join("; ");
                eyre::eyre!(each).wrap_err(format!("cannot connect to {target}{waited}"))
            }
        }
        Failure::Unix(err) | Failure::Setup(err) => {
            eyre::Report::new(err).wrap_err(format!("cannot connect to {target}{waited}"))
        }
    }
}

/// True when `target` is an IP literal (nothing is looked up).
fn is_ip(target: &HostPort) -> bool {
    target.host.parse::<std::net::IpAddr>().is_ok()
}

/// True when `target` already is the IP address `addr` (nothing was looked up).
fn is_literal(target: &HostPort, addr: SocketAddr) -> bool {
    target
        .host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip == addr.ip())
}

/// How to name the server in messages: the address as typed, plus the IP it resolved to when
/// that differs.
pub(super) fn describe(target: &HostPort, peer: Option<SocketAddr>) -> String {
    match peer {
        Some(addr) if !is_literal(target, addr) => format!("{target} ({addr})"),
        _ => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn one_address_is_named_with_its_reason() {
        let failure = Failure::Connect(vec![(
            "127.0.0.1:9".parse().unwrap(),
            io::Error::from_raw_os_error(libc::ECONNREFUSED),
        )]);
        let msg =
            crate::report::one_line(&report(failure, &Endpoint::Tcp(hp("127.0.0.1", 9)), None));
        assert_eq!(msg, "cannot connect to 127.0.0.1:9: Connection refused");
    }

    #[test]
    fn a_name_shows_what_it_resolved_to() {
        let failure = Failure::Connect(vec![
            (
                "[::1]:9".parse().unwrap(),
                io::Error::from_raw_os_error(libc::ECONNREFUSED),
            ),
            (
                "127.0.0.1:9".parse().unwrap(),
                timed_out(Duration::from_secs(1)),
            ),
        ]);
        let msg = crate::report::one_line(&report(
            failure,
            &Endpoint::Tcp(hp("localhost", 9)),
            Some(Duration::from_secs(2)),
        ));
        assert_eq!(
            msg,
            "cannot connect to localhost:9 (gave up after 2s): [::1]:9: Connection refused; \
             127.0.0.1:9: timed out after 1s"
        );
        assert_eq!(
            describe(&hp("localhost", 9), Some("127.0.0.1:9".parse().unwrap())),
            "localhost:9 (127.0.0.1:9)"
        );
        assert_eq!(
            describe(&hp("127.0.0.1", 9), Some("127.0.0.1:9".parse().unwrap())),
            "127.0.0.1:9"
        );
    }
}
