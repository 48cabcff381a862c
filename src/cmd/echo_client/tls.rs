//! `echo-client --tls`: the handshake (the server verified by default), then the exchange
//! over TLS.
//!
//! The bytes must pass through rustls, so no splice here: stdin and stdout keep their own
//! threads (for the reasons [`pump`](super::pump) gives), each handing fixed-size chunks
//! through a short bounded queue to the runtime, which drives the TLS stream in both
//! directions at once. Memory is thus constant (a few chunks per direction), and a side that
//! stops (the server not reading, our stdout blocked) stops the other's queue, never grows it.
//! The end of input is a close_notify plus the socket's half-close; the server's close_notify
//! (or anything else ending its stream) ends the exchange at once, as for plain TCP. The same
//! idle timer, progress line and [`outcome`](super::outcome()) decide what it all means.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use super::outcome::{Ended, Replies, Sending, Stall, Unsent};
use super::pump::{Phase, Shared};
use super::verify::Window;
use super::{Bar, Idle, Quit, Stdio};
use crate::cli::EchoClientArgs;
use crate::net::addr::HostPort;
use crate::net::endpoint::Endpoint;
use crate::net::tls::{self, Gulp, Trust};
use crate::sys::fdio;
use crate::ui::hexdump::HexDump;
use crate::ui::{self, Ui};

/// Bytes per chunk each way: four full TLS records.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting per direction: enough to keep both sides busy, and the memory bound.
const QUEUE: usize = 4;

/// What the handshake needs, made before connecting: a bad `--cafile`, `--cert` or `--key`
/// is reported without touching the network.
pub(super) struct Setup {
    connector: TlsConnector,
    name: ServerName<'static>,
}

/// The TLS setup the options ask for, or `None` without `--tls`.
pub(super) fn setup(args: &EchoClientArgs, ui: &Ui) -> eyre::Result<Option<Setup>> {
    let opts = &args.tls;
    if !opts.enabled {
        return Ok(None);
    }
    let identity = match &opts.identity {
        Some((cert, key)) => Some(tls::load_identity(cert, key)?),
        None => None,
    };
    let config = tls::client_config(&opts.trust, identity)?;
    if matches!(opts.trust, Trust::Insecure) {
        ui.warn("--insecure: the server's certificate is not verified; anyone in the middle can read and change the data");
    }
    let name = match (&opts.servername, &args.target.0) {
        (Some(name), _) => return Ok(Some(Setup::new(config, name.clone()))),
        (None, Endpoint::Tcp(HostPort { host, .. })) => {
            // An IPv6 zone (`fe80::1%eth0`) is no part of the name a certificate holds.
            host.split('%').next().unwrap_or(host).to_owned()
        }
        // UDP with TLS is refused as a usage error; Unix sockets have no host name.
        (None, Endpoint::Unix(_) | Endpoint::Udp(_)) => "localhost".to_owned(),
    };
    let name = ServerName::try_from(name.clone()).map_err(|_| {
        eyre::eyre!(
            "{} is not a valid server name: give --servername",
            ui::quote::quoted(&name)
        )
    })?;
    Ok(Some(Setup::new(config, name)))
}

/// A TLS session over either stream kind.
pub(super) type Session = Either<TlsStream<Gulp<TcpStream>>, TlsStream<Gulp<UnixStream>>>;

impl Setup {
    fn new(config: Arc<rustls::ClientConfig>, name: ServerName<'static>) -> Setup {
        Setup {
            connector: TlsConnector::from(config),
            name,
        }
    }

    /// The handshake over the connected `socket`, within `timeout`; `ui` (if given) hears
    /// the version, suite and server certificate.
    pub(super) async fn handshake(
        &self,
        socket: socket2::Socket,
        unix: bool,
        timeout: Duration,
        server: &str,
        ui: Option<&Ui>,
    ) -> eyre::Result<Session> {
        let failed = || format!("TLS handshake with {server} failed");
        let fd = OwnedFd::from(socket);
        let session = if unix {
            let stream = UnixStream::from_std(fd.into()).wrap_err_with(failed)?;
            Either::Right(self.shake(stream, timeout).await.wrap_err_with(failed)?)
        } else {
            let stream = TcpStream::from_std(fd.into()).wrap_err_with(failed)?;
            Either::Left(self.shake(stream, timeout).await.wrap_err_with(failed)?)
        };
        if let Some(ui) = ui {
            ui.detail(&describe(&session));
        }
        Ok(session)
    }

    async fn shake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        timeout: Duration,
    ) -> eyre::Result<TlsStream<Gulp<S>>> {
        let connect = self.connector.connect(self.name.clone(), Gulp::new(stream));
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(err)) => Err(eyre::eyre!(tls::reason(&err, tls::Party::Server))),
            Err(_) => Err(eyre::eyre!("timed out after {}", ui::duration(timeout))),
        }
    }
}

/// The session as `openssl s_client` users look for it: version, suite and key exchange, then
/// the server certificate's subject, issuer, dates, names, key and fingerprint, and the
/// subjects of the rest of the chain it sent.
fn describe(session: &Session) -> String {
    let conn = match session {
        Either::Left(s) => s.get_ref().1,
        Either::Right(s) => s.get_ref().1,
    };
    let mut text = tls::session(conn);
    if let Some(group) = conn.negotiated_key_exchange_group() {
        text.push_str(&format!(", key exchange {:?}", group.name()));
    }
    let Some((cert, chain)) = conn.peer_certificates().and_then(|c| c.split_first()) else {
        return text;
    };
    let Some(details) = tls::details(cert) else {
        text.push_str(&format!(
            "\nserver certificate (unreadable), sha256 {}",
            tls::fingerprint(cert)
        ));
        return text;
    };
    for line in certificate_lines(&details, &tls::fingerprint(cert)) {
        text.push('\n');
        text.push_str(&line);
    }
    if !chain.is_empty() {
        let subjects: Vec<String> = chain
            .iter()
            .map(|c| tls::subject(c).unwrap_or_else(|| "(unreadable)".to_owned()))
            .collect();
        text.push_str(&format!("\n  chain:      {}", subjects.join("; ")));
    }
    text
}

/// A server certificate's details, a line each, labelled as openssl labels them.
fn certificate_lines(details: &tls::Details, fingerprint: &str) -> Vec<String> {
    let mut lines = vec![format!("server certificate {}", details.subject)];
    let own = if details.self_issued {
        " (self-signed)"
    } else {
        ""
    };
    lines.push(format!("  issuer:     {}{own}", details.issuer));
    if let Some((from, to)) = &details.validity {
        lines.push(format!("  not before: {from}"));
        lines.push(format!("  not after:  {to}"));
    }
    let names = match details.names.as_slice() {
        [] => "none (no subjectAltName)".to_owned(),
        names => names.join(", "),
    };
    lines.push(format!("  names:      {names}"));
    if let Some(key) = &details.key {
        lines.push(format!("  key:        {key}"));
    }
    lines.push(format!("  sha256:     {fingerprint}"));
    lines
}

/// The measuring modes' connections over TLS: connected as the stdin mode connects, then the
/// same handshake.
pub(super) struct Dialer {
    pub(super) setup: Setup,
    pub(super) target: Endpoint<HostPort>,
    pub(super) family: super::connect::Family,
    pub(super) timeout: Duration,
}

impl super::measure::transport::Dialer for Dialer {
    type Conn = Measured;

    async fn dial(&self, wait: Option<Duration>) -> eyre::Result<(Self::Conn, String)> {
        let connected =
            super::connect::connect(&self.target, self.family, self.timeout, wait, None).await?;
        let unix = matches!(self.target, Endpoint::Unix(_));
        let server = connected.server;
        let session = self
            .setup
            .handshake(connected.socket, unix, self.timeout, &server, None)
            .await?;
        Ok((Measured(super::measure::transport::Stream(session)), server))
    }
}

/// A measuring connection over TLS, which says close_notify when dropped: the engines drop
/// a connection when they are done with it, and a stream that just stops is what a cut
/// looks like to the server (which logs it as one).
pub(super) struct Measured(super::measure::transport::Stream<Session>);

impl super::measure::transport::RoundTrip for Measured {
    fn round_trip<'a>(
        &'a mut self,
        msg: &'a [u8],
        reply: &'a mut [u8],
    ) -> impl std::future::Future<
        Output = Result<super::measure::transport::Echo, super::measure::transport::Failure>,
    > + Send
    + 'a {
        self.0.round_trip(msg, reply)
    }
}

impl super::measure::transport::Pipeline for Measured {
    fn io(&mut self) -> super::measure::transport::Io<'_> {
        super::measure::transport::Io::Tls(&mut self.0.0)
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        match &mut self.0.0 {
            Either::Left(tls) => close_notify_now(tls),
            Either::Right(tls) => close_notify_now(tls),
        }
    }
}

/// Queues close_notify on `tls` and writes what the socket takes now: a drop cannot wait,
/// and the few bytes fit in any socket buffer that is not full.
fn close_notify_now<S: AsyncWrite + Unpin>(tls: &mut TlsStream<S>) {
    let (io, conn) = tls.get_mut();
    conn.send_close_notify();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut out = NoWait { io, cx: &mut cx };
    while conn.wants_write() {
        match conn.write_tls(&mut out) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// A socket written without waiting: what it cannot take now is `WouldBlock`.
struct NoWait<'a, 'w, S> {
    io: &'a mut S,
    cx: &'a mut std::task::Context<'w>,
}

impl<S: AsyncWrite + Unpin> io::Write for NoWait<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::pin::Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            std::task::Poll::Ready(written) => written,
            std::task::Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the exchange over `session`, as [`exchange`](super::exchange) does over a socket,
/// with `--verify`'s verdict. `server` names the peer in `-x`'s dump.
pub(super) async fn exchange(
    args: &EchoClientArgs,
    ui: &Ui,
    stdio: &Stdio,
    session: Session,
    server: &str,
) -> eyre::Result<(Ended, Option<eyre::Result<()>>)> {
    run(args, ui, stdio, session, server).await
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    args: &EchoClientArgs,
    ui: &Ui,
    stdio: &Stdio,
    stream: S,
    server: &str,
) -> eyre::Result<(Ended, Option<eyre::Result<()>>)> {
    let shared = Shared::new();
    // Read from stdin and not yet taken by the TLS stream: what a cut leaves unsent.
    let pending = Arc::new(AtomicU64::new(0));
    let window = args.measure.verify.then(Arc::<Window>::default);
    // The dumps are made on the stdio threads, each chunk as it is read or printed: the
    // plaintext, and off the runtime, which drives both directions.
    let (dump_sent, dump_received) = super::dumps(args, ui, server);
    let input = read_stdin(
        stdio.stdin,
        Arc::clone(&pending),
        window.clone(),
        args.crlf,
        dump_sent,
    )
    .wrap_err("cannot start sending")?;
    let (output, written) = write_stdout(stdio.stdout, window.is_some(), dump_received)
        .wrap_err("cannot start receiving")?;
    let (reader, mut writer) = tokio::io::split(stream);
    let sending = send(&mut writer, input, &shared, &pending);
    let replies = receive(reader, output, written, &shared, window.as_deref());
    let bar = Bar::new(args, ui, stdio.interactive);
    let (replies, stall, sent) =
        both_ways(args, ui, &shared, window.clone(), &bar, sending, replies).await;
    if matches!(replies, Some(Replies::Closed)) && sent.is_none() {
        // The server closed first: answer its close_notify with ours, as TLS asks of each
        // side, so a strict server does not see our stream as cut short. Bounded: the server
        // may no longer read.
        let _ = tokio::time::timeout(CLOSE_GRACE, writer.shutdown()).await;
    }
    let sending = sent.unwrap_or_else(|| Sending::Stopped(unsent(&pending)));
    if let Some(window) = &window {
        // A stdin thread waiting for room is stopping too.
        window.close();
    }
    bar.finish();
    super::say_totals(ui, &shared);
    let verdict = window.as_ref().map(|w| w.verdict(shared.sent()));
    let ended = Ended {
        replies,
        sending,
        stall,
        sent: shared.sent(),
        received: shared.received(),
        verifying: verdict.is_some(),
    };
    Ok((ended, verdict))
}

/// How long our close_notify may take to go out once the server has closed.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Drives `sending` and `replies` at once until the replies end, stdin fails or the idle
/// timer fires: how the replies ended, the stall, and how the sending ended if it did.
async fn both_ways(
    args: &EchoClientArgs,
    ui: &Ui,
    shared: &Shared,
    window: Option<Arc<Window>>,
    bar: &Bar<'_>,
    sending: impl Future<Output = Sending>,
    replies: impl Future<Output = Replies>,
) -> (Option<Replies>, Option<Stall>, Option<Sending>) {
    tokio::pin!(sending, replies);
    let mut sent: Option<Sending> = None;
    let mut idle = Idle::new(args.idle_timeout, window);
    let mut quit = Quit::new(args.quit_after);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            biased;
            end = &mut replies => return (Some(end), None, sent),
            () = quit.fired() => return (None, quit.verdict(shared), sent),
            report = &mut sending, if sent.is_none() => {
                let stdin_failed = matches!(report, Sending::Stdin(_));
                if matches!(report, Sending::Finished) {
                    quit.arm();
                    ui.detail(&format!(
                        "end of input after {}: close_notify sent, waiting for the server",
                        ui::bytes(shared.sent())
                    ));
                }
                sent = Some(report);
                if stdin_failed {
                    return (None, None, sent);
                }
            }
            () = idle.fired() => {
                if let Some(stall) = idle.check(shared) {
                    return (None, Some(stall), sent);
                }
            }
            _ = tick.tick(), if bar.0.is_some() => bar.show(shared),
        }
    }
}

/// Input read but not sent; more may wait in stdin, so the count is a lower bound (even 0:
/// a lost connection must not claim all input went).
fn unsent(pending: &AtomicU64) -> Unsent {
    Unsent {
        bytes: pending.load(Ordering::Relaxed),
        exact: false,
    }
}

/// Starts the stdin thread: chunks into the queue, then the queue's end at EOF. The thread is
/// left blocked in its read if the exchange ends first; the process exits past it.
/// Under `--verify` each chunk goes into the window before it is queued (waiting there while
/// the server is a whole window behind); with `dump` (`-x`) it is dumped as it is queued.
fn read_stdin(
    stdin: BorrowedFd<'static>,
    pending: Arc<AtomicU64>,
    window: Option<Arc<Window>>,
    crlf: bool,
    dump: Option<HexDump>,
) -> io::Result<mpsc::Receiver<io::Result<Vec<u8>>>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut line_ends = super::send::Crlf::default();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let chunk = match fdio::read(stdin, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if crlf {
                        buf = line_ends.apply(&buf).into_owned();
                    }
                    if window.as_ref().is_some_and(|w| !w.push(&buf)) {
                        return; // the exchange is over
                    }
                    pending.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    if let Some(dump) = &dump {
                        dump.chunk(&buf);
                    }
                    Ok(buf)
                }
                Err(err) => Err(err),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    })?;
    Ok(rx)
}

/// How the stdout thread's writing went, once it has ended.
type Written = oneshot::Receiver<io::Result<()>>;

/// Starts the stdout thread: writes each chunk from the queue (dumped first with `dump`, `-x`),
/// and reports how that went once the queue ends (or at the first failure).
fn write_stdout(
    stdout: BorrowedFd<'static>,
    verify: bool,
    dump: Option<HexDump>,
) -> io::Result<(mpsc::Sender<Vec<u8>>, Written)> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (done, written) = oneshot::channel();
    thread::Builder::new()
        .name("stdout".into())
        .spawn(move || {
            let mut result = Ok(());
            let mut closed = false;
            while let Some(chunk) = rx.blocking_recv() {
                if let Some(dump) = &dump {
                    dump.chunk(&chunk);
                }
                if closed {
                    continue;
                }
                match fdio::write_all(stdout, &chunk) {
                    // Under --verify a closed stdout ends the printing, not the check.
                    Err(err) if verify && err.kind() == io::ErrorKind::BrokenPipe => closed = true,
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                    Ok(()) => {}
                }
            }
            let _ = done.send(result);
        })?;
    Ok((tx, written))
}

/// stdin's chunks → TLS, then close_notify and the half-close.
async fn send<W: AsyncWrite + Unpin>(
    tls: &mut W,
    mut input: mpsc::Receiver<io::Result<Vec<u8>>>,
    shared: &Shared,
    pending: &AtomicU64,
) -> Sending {
    loop {
        shared.set_phase(Phase::Input);
        let chunk = match input.recv().await {
            None => break,
            Some(Err(err)) => return Sending::Stdin(err),
            Some(Ok(chunk)) => chunk,
        };
        shared.set_phase(Phase::Socket);
        let mut at = 0;
        while at < chunk.len() {
            match tls.write(&chunk[at..]).await {
                Ok(0) => return Sending::Socket(io::ErrorKind::WriteZero.into(), unsent(pending)),
                Ok(n) => {
                    at += n;
                    pending.fetch_sub(n as u64, Ordering::Relaxed);
                    shared.add_sent(n);
                }
                Err(err) => return Sending::Socket(plain(err), unsent(pending)),
            }
        }
        // Typed lines must go out now, not when the next chunk comes.
        if let Err(err) = tls.flush().await {
            return Sending::Socket(plain(err), unsent(pending));
        }
    }
    shared.set_phase(Phase::Done);
    match tls.shutdown().await {
        Ok(()) => Sending::Finished,
        Err(err) => Sending::Socket(plain(err), Unsent::NONE),
    }
}

/// TLS → the stdout queue, until the server's stream ends; then waits for stdout to take it
/// all.
async fn receive<R: AsyncRead + Unpin>(
    mut tls: R,
    output: mpsc::Sender<Vec<u8>>,
    written: Written,
    shared: &Shared,
    window: Option<&Window>,
) -> Replies {
    let lost = loop {
        let mut buf = vec![0u8; CHUNK];
        shared.set_awaiting(true);
        let read = tls.read(&mut buf).await;
        shared.set_awaiting(false);
        match read {
            Ok(0) => break None,
            Ok(n) => {
                shared.add_received(n);
                buf.truncate(n);
                if let Some(window) = window {
                    window.check(&buf);
                }
                // Refused only when the stdout thread stopped on an error, reported below.
                if output.send(buf).await.is_err() {
                    break None;
                }
            }
            Err(err) => break Some(plain(err)),
        }
    };
    drop(output);
    let stdout = written
        .await
        .unwrap_or_else(|_| Err(io::Error::other("the stdout thread stopped unexpectedly")));
    match (stdout, lost) {
        (Err(err), _) => Replies::Stdout(err),
        (Ok(()), Some(err)) => Replies::Lost(err),
        (Ok(()), None) => Replies::Closed,
    }
}

/// A TLS error's reason in words, keeping the I/O error's kind (a reset stays a reset).
fn plain(err: io::Error) -> io::Error {
    if err.raw_os_error().is_some() {
        return err;
    }
    let from_rustls = err
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>());
    if err.kind() == io::ErrorKind::UnexpectedEof && !from_rustls {
        // After the handshake, a bare end of stream is a close without close_notify: what a
        // truncation attack looks like, so never a clean end.
        return io::Error::new(
            err.kind(),
            "the server closed without close_notify, so the data may be cut short",
        );
    }
    io::Error::new(err.kind(), tls::reason(&err, tls::Party::Server))
}
