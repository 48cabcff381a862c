//! inetd mode: the process was started for one connection that someone else accepted, and
//! serves it, then exits. Three launchers do this:
//!
//! - inetd (`nowait`), xinetd, `systemd-socket-activate --inetd`, `socat ... EXEC:`: the
//!   connection is standard input (and output, and under inetd and xinetd stderr too);
//! - systemd `Accept=yes` (`systemd-socket-activate --accept`): the connection is fd 3, with
//!   `LISTEN_FDS=1` for this process.
//!
//! Standard input is taken without `--inetd` when no ADDR was typed and it is a connected TCP
//! socket, a Unix stream socket accepted from a listener (it has that listener's address),
//! a listening stream socket or a UDP socket. An unnamed socket pair is not enough: libuv (Node's
//! `spawn`) and socat give a child its stdio that way, and a program that starts the server
//! to read its address line must get a listening server. `--inetd` takes one too.
//!
//! The connection is the process's only channel to the client, so nothing may be written to
//! it but the echo: every standard descriptor that is the same socket (stdout always under
//! inetd; stderr under inetd and xinetd unless redirected) is pointed at /dev/null before
//! anything is served. Messages then go nowhere, rather than into the client's data; a stderr
//! of its own (the journal under systemd) still gets them. The one descriptor left holding
//! the connection is the server's, so the client sees the close as soon as the echo ends.
//!
//! A listening socket or a UDP socket on stdin (inetd's `wait` services; also what
//! `systemd-socket-activate --inetd` without `--accept` hands over) is served as systemd's
//! handed-over sockets are, until a stop signal; its address line goes to stdout only if
//! stdout is not that socket.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use color_eyre::eyre::{self, WrapErr};
use rustix::fs::FileType;
use rustix::io::FdFlags;
use socket2::{Domain, SockRef, Type};
use tokio_util::sync::CancellationToken;

use super::life::Ticket;
use super::stats::Stats;
use crate::cli::EchoServerArgs;
use crate::exit::Exit;
use crate::net::activation;
use crate::net::stream::{Connection, Peer};
use crate::runtime::{self, Flavor};
use crate::ui::Ui;

/// What this process was started to serve, instead of binding ADDR.
pub(super) enum Given {
    /// One connection (inetd's `nowait`, systemd's `Accept=yes`), for [`run`].
    Connection(OneConnection),
    /// A listening stream socket or a UDP socket on stdin (inetd's `wait`), served as a socket
    /// handed over by systemd is.
    Socket(activation::InheritedSocket),
}

/// The one connection to serve, and where it came from (for messages).
pub(super) struct OneConnection {
    socket: OwnedFd,
    unix: bool,
    origin: &'static str,
}

/// What this process was started to serve, if it was started by inetd or for one
/// connection: systemd's `Accept=yes` fd 3, or standard input as [the module](self) says.
/// `Ok(None)`: serve ADDR or the handed-over listeners as usual. An error under `--inetd`
/// when stdin is none of these. The standard descriptors that are the socket now point at
/// /dev/null.
///
/// Call it first, before any descriptor is opened: fd 3 is taken as `activation` takes it.
pub(super) fn given(args: &EchoServerArgs) -> eyre::Result<Option<Given>> {
    let handed = handed();
    if handed == Some(1) {
        if let Some(socket) = accepted_by_systemd()? {
            let_go_of_stdio(socket.as_fd()).wrap_err("inetd mode: cannot let go of stdio")?;
            return Ok(Some(Given::Connection(OneConnection {
                unix: is_unix(socket.as_fd()),
                socket,
                origin: "fd 3 (Accept=yes)",
            })));
        }
    }
    if handed.is_some() {
        // The listeners handed over are served; stdin is whatever the unit says.
        if args.inetd {
            eyre::bail!("--inetd: systemd handed over sockets (LISTEN_FDS); stdin is not used");
        }
        return Ok(None);
    }
    if !args.inetd && args.listen.typed {
        return Ok(None);
    }
    let stdin = rustix::stdio::stdin();
    let kind = fd_kind(stdin);
    let unix = match kind {
        FdKind::Connection { unix, named } if named || args.inetd => unix,
        FdKind::Listening | FdKind::Datagram => false,
        // One end of a socket pair: a program's stdio, unless --inetd says otherwise.
        FdKind::Connection { .. } => return Ok(None),
        FdKind::Other(_) if !args.inetd => return Ok(None),
        FdKind::Other(what) => eyre::bail!(
            "--inetd: standard input is not a socket inetd hands over (a connection, a \
             listening socket or a UDP socket) but {what}"
        ),
    };
    // A copy of our own, close-on-exec, so fds 0-2 can all be let go of.
    let socket = rustix::io::fcntl_dupfd_cloexec(stdin, 3)
        .wrap_err("inetd mode: cannot take the socket on standard input")?;
    let_go_of_stdio(socket.as_fd()).wrap_err("inetd mode: cannot let go of stdio")?;
    if !matches!(kind, FdKind::Connection { .. }) {
        let listener = activation::into_listener(socket)
            .wrap_err("inetd mode: the socket on standard input")?;
        let fd = 0;
        let name = None;
        return Ok(Some(Given::Socket(activation::InheritedSocket {
            fd,
            name,
            listener,
        })));
    }
    Ok(Some(Given::Connection(OneConnection {
        socket,
        unix,
        origin: "standard input",
    })))
}

/// How many sockets `LISTEN_PID` and `LISTEN_FDS` hand to this process, if they do (a
/// malformed pair is left to `activation` to report).
fn handed() -> Option<usize> {
    let var = |name| std::env::var_os(name);
    let handed = activation::parse_env(
        std::process::id(),
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
    );
    handed.ok().flatten().map(|h| h.count)
}

/// systemd's `Accept=yes`: one descriptor handed over, fd 3, a connected stream socket. It is
/// taken (close-on-exec); anything else is left to `activation`, which says what is wrong.
fn accepted_by_systemd() -> eyre::Result<Option<OwnedFd>> {
    const FD: RawFd = 3;
    // SAFETY: F_GETFD only reads the descriptor's flags; any int is a valid argument.
    if unsafe { libc::fcntl(FD, libc::F_GETFD) } == -1 {
        return Ok(None);
    }
    // SAFETY: fd 3 is open (F_GETFD succeeded) and only borrowed here, while nothing can
    // close it: no other part of the process has touched it yet.
    let fd = unsafe { BorrowedFd::borrow_raw(FD) };
    if !matches!(fd_kind(fd), FdKind::Connection { .. }) {
        return Ok(None);
    }
    // SAFETY: the activation protocol gives fd 3 to this process, and `activation` never
    // takes it once this has: `given` returns it and `run` serves it instead.
    let owned = unsafe { OwnedFd::from_raw_fd(FD) };
    rustix::io::fcntl_setfd(&owned, FdFlags::CLOEXEC)
        .wrap_err("socket activation: fd 3 (Accept=yes)")?;
    Ok(Some(owned))
}

/// What stdin (or fd 3) is, for inetd mode.
enum FdKind {
    /// A connected stream socket; `named`: TCP, or Unix with a local address (accepted from
    /// a listener, not one end of a socket pair).
    Connection { unix: bool, named: bool },
    /// A listening stream socket.
    Listening,
    /// A datagram socket.
    Datagram,
    /// Anything else, in words.
    Other(&'static str),
}

fn fd_kind(fd: BorrowedFd<'_>) -> FdKind {
    let Ok(stat) = rustix::fs::fstat(fd) else {
        return FdKind::Other("closed");
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Socket => {}
        FileType::Fifo => return FdKind::Other("a pipe"),
        FileType::CharacterDevice => return FdKind::Other("a terminal or device"),
        FileType::RegularFile => return FdKind::Other("a file"),
        _ => return FdKind::Other("not a socket"),
    }
    // A socket (fstat said so), as SockRef requires.
    let socket = SockRef::from(&fd);
    match socket.r#type() {
        Ok(Type::STREAM) => {}
        Ok(Type::DGRAM) => return FdKind::Datagram,
        _ => return FdKind::Other("a socket of another type"),
    }
    if socket.is_listener().unwrap_or(false) {
        return FdKind::Listening;
    }
    if socket.peer_addr().is_err() {
        return FdKind::Other("a stream socket that is not connected");
    }
    let unix = match socket.domain() {
        Ok(Domain::UNIX) => true,
        Ok(Domain::IPV4 | Domain::IPV6) => false,
        _ => return FdKind::Other("a stream socket of another family than TCP or Unix"),
    };
    let named = !unix || socket.local_addr().is_ok_and(|a| !a.is_unnamed());
    FdKind::Connection { unix, named }
}

fn is_unix(fd: BorrowedFd<'_>) -> bool {
    SockRef::from(&fd).domain().is_ok_and(|d| d == Domain::UNIX)
}

/// Points every standard descriptor that is the same socket as `socket` at /dev/null, so that
/// nothing but the echo reaches the client, and the connection closes with `socket`.
fn let_go_of_stdio(socket: BorrowedFd<'_>) -> io::Result<()> {
    let ours = rustix::fs::fstat(socket)?;
    let same = |fd: BorrowedFd<'_>| {
        rustix::fs::fstat(fd).is_ok_and(|s| (s.st_dev, s.st_ino) == (ours.st_dev, ours.st_ino))
    };
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    if same(rustix::stdio::stdin()) {
        rustix::stdio::dup2_stdin(&null)?;
    }
    if same(rustix::stdio::stdout()) {
        rustix::stdio::dup2_stdout(&null)?;
    }
    if same(rustix::stdio::stderr()) {
        rustix::stdio::dup2_stderr(&null)?;
    }
    Ok(())
}

/// Serves the one connection: echo until the client closes its side (`--idle-timeout`
/// applies), then close and exit. A stop signal gives it `--shutdown-timeout` (a second one
/// cuts it at once), as the server gives its connections. Exit 1 when the connection ended
/// on an error (a reset), 0 otherwise.
pub(super) fn run(given: OneConnection, args: &EchoServerArgs, ui: &Ui) -> eyre::Result<Exit> {
    if args.mode.is_some() || args.max_connections.is_some() {
        ui.warn(
            "inetd mode: --mode and --max-connections are ignored (one connection, no socket file)",
        );
    }
    if args.observe.metrics.is_some() {
        ui.warn(
            "inetd mode: --metrics is ignored (a process per connection has no figures to scrape)",
        );
    }
    let tls = match super::tls::prepare(&args.tls)? {
        Some(files) if args.tls.identity.is_some() => {
            let config = super::tls::config(files, &args.tls, std::iter::empty(), ui)?;
            let faults = super::fault::Plan::new(&args.faults).map(std::sync::Arc::new);
            Some(super::tls::Server::new(config, None, None).with_faults(faults))
        }
        Some(_) => eyre::bail!(
            "inetd mode: --tls needs --cert and --key (a self-signed certificate would be new \
             for every connection, so no client could pin it)"
        ),
        None => None,
    };
    // Plain behind a proxy, the header has a room too, as over the accept loops.
    let room = match (&tls, args.proxy_protocol) {
        (None, Some(mode)) => Some(super::proxy::Room::new(mode, None, None)),
        _ => None,
    };
    let origin = given.origin;
    runtime::block_on(Flavor::CurrentThread, async move {
        let (signal, again) = runtime::shutdown_signals()?;
        let ticket = match (&tls, &room) {
            (Some(tls), _) => Some(Ticket::Tls(tls.admit().await)),
            (None, Some(room)) => Some(Ticket::Header(room.admit().await)),
            (None, None) => None,
        };
        // Nobody is served before a whole PROXY protocol header or ClientHello: a stop closes
        // such a connection at once, as the server does, rather than after --shutdown-timeout.
        let signal = async {
            signal.await;
            if let Some(tls) = &tls {
                tls.stop_silent();
            }
            if let Some(room) = &room {
                room.stop_silent();
            }
        };
        let ended = if given.unix {
            let stream = std::os::unix::net::UnixStream::from(given.socket);
            let (stream, peer) = unix_stream(stream).wrap_err_with(|| origin.to_owned())?;
            serve(stream, peer, ticket, args, ui, signal, again).await
        } else {
            let stream = std::net::TcpStream::from(given.socket);
            stream.set_nonblocking(true).wrap_err(origin)?;
            let peer = Peer::Tcp(stream.peer_addr().wrap_err(origin)?);
            let stream = tokio::net::TcpStream::from_std(stream).wrap_err(origin)?;
            serve(stream, peer, ticket, args, ui, signal, again).await
        };
        ended
            .map(|()| Exit::Success)
            .map_err(|msg| eyre::eyre!(msg))
    })?
}

/// Why `--allow`/`--deny` keep the client at `peer` out, if they do (with an address rule, a
/// Unix client is kept out: it has no address to match, and a rule must not look as if it
/// held). `--max-per-ip` has nothing to count here: one connection per process.
fn refused(args: &EchoServerArgs, peer: Peer) -> Option<String> {
    let networks = super::admit::Networks::new(&args.admission)?;
    match peer {
        Peer::Tcp(addr) => networks
            .refuses(addr.ip())
            .map(|why| format!("refused {peer}: {}", why.reason())),
        Peer::Unix { .. } => Some(
            "--allow and --deny match IP addresses, and a Unix socket's clients have none"
                .to_owned(),
        ),
    }
}

/// The Unix connection for the runtime, and its peer's credentials.
fn unix_stream(stream: UnixStream) -> io::Result<(tokio::net::UnixStream, Peer)> {
    stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(stream)?;
    let cred = stream.peer_cred().ok();
    let peer = Peer::Unix {
        pid: cred.and_then(|c| c.pid()),
        uid: cred.map(|c| c.uid()),
    };
    Ok((stream, peer))
}

/// One connection's life as the server lives it (see [`super::life`]), with the stop signals of
/// a server. An error (the peer and the reason) if it ended on an I/O error.
async fn serve<C: Connection>(
    stream: C,
    peer: Peer,
    ticket: Option<Ticket>,
    args: &EchoServerArgs,
    ui: &Ui,
    signal: impl std::future::Future<Output = ()>,
    again: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    // Behind a proxy the client is known only from its header: checked then, by the gate.
    let gate = match args.proxy_protocol {
        Some(_) => super::admit::Gate::new(&args.admission),
        None => None,
    };
    if args.proxy_protocol.is_none() {
        if let Some(refused) = refused(args, peer) {
            stream.cut_on_close();
            return Err(refused);
        }
    }
    let stats = Arc::new(Stats::new(false));
    // SIGUSR1 tells this connection's figures, as a server's, instead of ending it.
    let figures = Arc::clone(&stats);
    let _watching = super::metrics::Watch::new(None, ui)
        .ok()
        .map(|watch| watch.start(Arc::new(move || figures.families()), ui));
    let faults = super::fault::Plan::new(&args.faults);
    let force_close = CancellationToken::new();
    stats.active.fetch_add(1, Ordering::Relaxed);
    stats.served.fetch_add(1, Ordering::Relaxed);
    let conn = super::life::Conn {
        peer,
        idle: args.idle_timeout,
        stats: &stats,
        log: ui,
        force_close: &force_close,
        proxy: args.proxy_protocol,
        dump_as: args.hex_dump.then_some(1),
        faults: faults.as_ref(),
        admission: gate.as_ref(),
    };
    let conn = super::life::connection(stream, &conn, None, ticket);
    tokio::pin!(conn);
    let failed = 'ended: {
        tokio::select! {
            biased;
            failed = &mut conn => break 'ended failed,
            () = signal => {}
        }
        tokio::select! {
            biased;
            failed = &mut conn => break 'ended failed,
            _ = tokio::time::sleep(args.shutdown_timeout) => {}
            () = again => {}
        }
        stats.closing.store(true, Ordering::Relaxed);
        force_close.cancel();
        conn.await
    };
    match failed {
        Some(reason) => Err(format!("connection from {peer}: {reason}")),
        None => Ok(()),
    }
}
