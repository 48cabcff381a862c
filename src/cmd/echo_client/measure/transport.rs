//! The transport seam of the measuring modes: a [`Dialer`] opens connections, and each
//! connection does one checked round trip at a time ([`RoundTrip`]). The probe and load
//! engines know nothing else about a transport.
//!
//! A stream transport (TCP, Unix, TLS) only needs a dialer whose connection is a [`Stream`]
//! around anything tokio can read and write: [`Stream`] implements the round trip once,
//! writing the message and reading its echo in one future (a large message could otherwise
//! deadlock against a server that echoes while we still write) and treating short reads as
//! the normal course of a stream. A datagram transport implements [`RoundTrip`] itself: one
//! datagram out, one in, compared ([`Datagram`] for UDP).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use color_eyre::eyre;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UdpSocket, UnixStream};
use tokio_util::either::Either;

use super::super::connect::{self, Connected, Family};
use crate::net::addr::HostPort;
use crate::net::endpoint::Endpoint;
use crate::net::sniff::looks_like_tls_record;
use crate::net::udp;

/// What came back for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::cmd::echo_client) enum Echo {
    /// Byte for byte what was sent.
    Intact,
    /// As long as the message, but it differs first at this 0-based offset.
    Differs(usize),
}

/// Why a round trip failed; the connection is not used again.
#[derive(Debug)]
pub(in crate::cmd::echo_client) enum Failure {
    /// The server closed after echoing `got` of the message's `of` bytes.
    Closed {
        /// Bytes of the echo that came.
        got: usize,
        /// The message's length.
        of: usize,
    },
    /// Sending or receiving failed (a reset, ...).
    Io(io::Error),
    /// A plain-text client's reply is a TLS record: the server speaks TLS (`--tls` forgotten).
    Tls,
}

impl Failure {
    /// The kind counted in the load report's errors.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Failure::Closed { .. } => "closed",
            Failure::Io(err) if is_reset(err) => "reset",
            Failure::Io(_) => "io",
            Failure::Tls => "tls",
        }
    }

    /// Whether a load goes on over a new connection after it: a timeout, a reset or a close
    /// is the server's answer to one connection; another error (no server at a UDP port, a
    /// TLS answer) would meet the next connection too.
    pub(super) fn is_transient(&self) -> bool {
        matches!(self.kind(), "closed" | "reset")
    }
}

/// A reset by the peer, however it surfaced: a write after the reset fails with EPIPE.
fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Closed { got, of } => {
                write!(f, "server closed after {got} of {of} bytes")
            }
            Failure::Io(err) => f.write_str(&crate::report::io_reason(err)),
            Failure::Tls => f.write_str(crate::net::sniff::TLS_ANSWER),
        }
    }
}

/// One connection of some transport, able to send a message and check its echo.
pub(in crate::cmd::echo_client) trait RoundTrip:
    Send + 'static
{
    /// Sends `msg` and receives its echo into `reply` (of the same length), compared with
    /// `msg`. The engines bound it with `--timeout` and drop the connection after a timeout,
    /// since a late echo would then be read as the next one's.
    fn round_trip<'a>(
        &'a mut self,
        msg: &'a [u8],
        reply: &'a mut [u8],
    ) -> impl Future<Output = Result<Echo, Failure>> + Send + 'a;
}

/// Opens connections of one transport to one endpoint.
pub(in crate::cmd::echo_client) trait Dialer:
    Send + Sync + 'static
{
    /// A connection.
    type Conn: RoundTrip + Pipeline;

    /// Memory each connection may take beside its message buffers, at its peak (a handshake),
    /// for the memory check: its task, socket registration and a batch of latencies.
    const CONNECTION_MEMORY: u64 = 64 << 10;

    /// Opens one connection, retrying for `wait` if given; returns it with the server's name
    /// for messages.
    fn dial(
        &self,
        wait: Option<Duration>,
    ) -> impl Future<Output = eyre::Result<(Self::Conn, String)>> + Send;
}

/// A stream connection doing round trips.
pub(in crate::cmd::echo_client) struct Stream<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> RoundTrip for Stream<S> {
    fn round_trip<'a>(
        &'a mut self,
        msg: &'a [u8],
        reply: &'a mut [u8],
    ) -> impl Future<Output = Result<Echo, Failure>> + Send + 'a {
        let mut trip = Trip {
            stream: &mut self.0,
            msg,
            reply,
            written: 0,
            flushed: false,
            got: 0,
        };
        std::future::poll_fn(move |cx| trip.poll(cx))
    }
}

/// One round trip on a stream in progress: writing and reading go on together.
struct Trip<'a, S> {
    stream: &'a mut S,
    msg: &'a [u8],
    reply: &'a mut [u8],
    written: usize,
    flushed: bool,
    got: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Trip<'_, S> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Echo, Failure>> {
        if let Poll::Ready(Err(err)) = self.poll_send(cx) {
            return Poll::Ready(Err(Failure::Io(err)));
        }
        while self.got < self.reply.len() {
            let mut buf = ReadBuf::new(&mut self.reply[self.got..]);
            match ready!(Pin::new(&mut *self.stream).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => {
                    let (got, of) = (self.got, self.reply.len());
                    return Poll::Ready(Err(Failure::Closed { got, of }));
                }
                Ok(()) => self.got += buf.filled().len(),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(Failure::Io(err))),
            }
        }
        Poll::Ready(Ok(compare(self.msg, self.reply)))
    }

    /// Writes what the socket takes now, then flushes (a TLS stream holds records until then).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.msg.len() {
            let rest = &self.msg[self.written..];
            match ready!(Pin::new(&mut *self.stream).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        if !self.flushed {
            ready!(Pin::new(&mut *self.stream).poll_flush(cx))?;
            self.flushed = true;
        }
        Poll::Ready(Ok(()))
    }
}

/// Compares an echo with its message.
pub(super) fn compare(msg: &[u8], reply: &[u8]) -> Echo {
    // The common case at memcmp speed; the byte-wise search only for a difference.
    if msg == reply {
        return Echo::Intact;
    }
    match msg.iter().zip(reply).position(|(a, b)| a != b) {
        Some(at) => Echo::Differs(at),
        // Equal as far as both go, so the lengths differ: at the shorter one's end.
        None => Echo::Differs(msg.len().min(reply.len())),
    }
}

/// A plain (not TLS) stream connection: a [`Stream`] whose replies are also checked for a TLS
/// server's answer, so a forgotten `--tls` is said in one line instead of a run of mismatches.
pub(in crate::cmd::echo_client) struct Plain(Stream<Either<TcpStream, UnixStream>>);

impl RoundTrip for Plain {
    async fn round_trip(&mut self, msg: &[u8], reply: &mut [u8]) -> Result<Echo, Failure> {
        let result = self.0.round_trip(msg, reply).await;
        let got = match &result {
            Ok(Echo::Differs(_)) => reply.len(),
            Err(Failure::Closed { got, .. }) => *got,
            Ok(Echo::Intact) | Err(_) => return result,
        };
        // Only a reply that differs, so the intact echo costs nothing more; and not when
        // the message itself looked like a record (the server may have echoed its start).
        if looks_like_tls_record(msg) {
            return result;
        }
        let tls = match reply.get(..got) {
            Some(head) if head.len() < HEADER => header_follows(&mut self.0.0, head).await,
            Some(head) => looks_like_tls_record(head),
            None => false,
        };
        if tls { Err(Failure::Tls) } else { result }
    }
}

/// The bytes of a TLS record header.
const HEADER: usize = 5;

/// Whether `head`, a reply shorter than a record header (`--size` under 5), and what follows
/// it on `stream` within a moment make a TLS record header. Only when `head` starts as one (a
/// record type): a TLS server sends its whole alert at once, then closes.
async fn header_follows(stream: &mut dyn ByteStream, head: &[u8]) -> bool {
    use tokio::io::AsyncReadExt;
    if !head.first().is_some_and(|t| (20..=23).contains(t)) {
        return false;
    }
    let mut header = [0u8; HEADER];
    header[..head.len()].copy_from_slice(head);
    let rest = &mut header[head.len()..];
    let read = tokio::time::timeout(Duration::from_millis(200), stream.read_exact(rest));
    matches!(read.await, Ok(Ok(_))) && looks_like_tls_record(&header)
}

/// TCP and Unix-socket connections, opened as the stdin mode opens them (every resolved
/// address, `--connect-timeout`, `-4`/`-6`).
pub(in crate::cmd::echo_client) struct StreamDialer {
    pub(super) target: Endpoint<HostPort>,
    pub(super) family: Family,
    pub(super) timeout: Duration,
}

impl Dialer for StreamDialer {
    type Conn = Plain;

    async fn dial(&self, wait: Option<Duration>) -> eyre::Result<(Self::Conn, String)> {
        let Connected { socket, server } =
            connect::connect(&self.target, self.family, self.timeout, wait, None).await?;
        let conn = match &self.target {
            Endpoint::Unix(_) => Either::Right(UnixStream::from_std(socket.into())?),
            // `measure::run` hands UDP to its own dialer: only TCP is left here.
            Endpoint::Tcp(_) | Endpoint::Udp(_) => {
                Either::Left(TcpStream::from_std(socket.into())?)
            }
        };
        Ok((Plain(Stream(conn)), server))
    }
}

/// A connected UDP socket: each message is one datagram out and one back.
pub(in crate::cmd::echo_client) struct Datagram {
    socket: UdpSocket,
    /// One byte more than the message, so a longer reply shows as longer instead of cut.
    scratch: Vec<u8>,
    /// Messages sent on this socket: the engines stamp consecutive numbers into them, so a
    /// reply stamped with one of the `sent - 1` before the latest is a duplicate.
    sent: u64,
    /// The last 256 one-byte messages sent on this socket, the latest at `sent % 256`: their
    /// stamps are not a plain counter (see [`super::stamp`]), so a duplicate is found by
    /// looking back.
    bytes: [u8; 256],
}

impl RoundTrip for Datagram {
    async fn round_trip(&mut self, msg: &[u8], _reply: &mut [u8]) -> Result<Echo, Failure> {
        self.scratch.resize(msg.len() + 1, 0);
        self.socket.send(msg).await.map_err(Failure::Io)?;
        self.sent += 1;
        if let [only] = msg {
            self.bytes[(self.sent % 256) as usize] = *only;
        }
        // The socket is connected, so only the server's datagrams arrive; each is a whole
        // reply (a stale one from a timed-out message went to an older socket). A reply to
        // an earlier message on this socket was answered already: a duplicate, skipped (the
        // probe, which keeps several messages in flight, tells them apart with a [`Pipe`]),
        // and the wait for this message's reply goes on.
        loop {
            let n = self
                .socket
                .recv(&mut self.scratch)
                .await
                .map_err(Failure::Io)?;
            let echo = compare(msg, &self.scratch[..n]);
            if echo == Echo::Intact {
                return Ok(echo);
            }
            let reply = &self.scratch[..n];
            let back = match reply {
                [byte] if msg.len() == 1 => duplicate_byte(&self.bytes, *byte, self.sent),
                _ => duplicate_of(msg, reply, self.sent),
            };
            if back.is_none() {
                return Ok(echo);
            }
        }
    }
}

/// How many messages before `msg` the message `reply` echoes, when it echoes one of the
/// `sent - 1` sent before `msg` on this socket: the same bytes but the stamp (the message
/// number, little-endian, in the first bytes: [`super::stamp`]). A stamp of 2 to 7 bytes
/// (`--size` under 8) wraps, so there a reply with a changed stamp byte cannot be told from
/// an earlier message's echo: it is taken for a duplicate. (1-byte messages are
/// [`duplicate_byte`]'s.)
fn duplicate_of(msg: &[u8], reply: &[u8], sent: u64) -> Option<u64> {
    let width = msg.len().min(8);
    if reply.len() != msg.len() || msg[width..] != reply[width..] {
        return None;
    }
    let number = |b: &[u8]| {
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(&b[..width]);
        u64::from_le_bytes(le)
    };
    let mask = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let back = number(msg).wrapping_sub(number(reply)) & mask;
    (back > 0 && back < sent).then_some(back)
}

/// How many messages back the 1-byte reply `byte` echoes the latest message sent on this socket
/// with that byte, among the `sent - 1` before the latest and the last 256 (`bytes`, see
/// [`Datagram`]); as for longer stamps that wrap, a changed byte is taken for a duplicate.
fn duplicate_byte(bytes: &[u8; 256], byte: u8, sent: u64) -> Option<u64> {
    (1..sent.min(256)).find(|&back| bytes[((sent - back) % 256) as usize] == byte)
}

/// UDP "connections": a fresh connected socket each, so a reply that comes after its
/// message timed out lands on a closed port instead of being taken for the next one's.
pub(in crate::cmd::echo_client) struct UdpDialer {
    pub(super) target: HostPort,
    pub(super) family: Family,
    pub(super) timeout: Duration,
    /// Bytes per message, checked against the largest datagram once the address is known.
    pub(super) size: usize,
}

/// A `--size` larger than one datagram to the server holds: a usage error, though only known
/// once the name is resolved.
#[derive(Debug)]
pub(in crate::cmd::echo_client) struct Oversized(pub String);

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Oversized {}

impl Dialer for UdpDialer {
    type Conn = Datagram;

    async fn dial(&self, _wait: Option<Duration>) -> eyre::Result<(Self::Conn, String)> {
        let server = super::super::udp::resolve(&self.target, self.family, self.timeout).await?;
        let named = Endpoint::Udp(server).to_string();
        let max = udp::max_datagram(&server);
        if self.size > max {
            return Err(Oversized(format!(
                "--size {}: more than one datagram to {named} holds (at most {max} bytes)",
                self.size
            ))
            .into());
        }
        super::super::udp::refuse_group(server, &named)?;
        let socket = super::super::udp::open(server)
            .and_then(UdpSocket::from_std)
            .map_err(|err| eyre::eyre!("{}", crate::report::io_reason(&err)))
            .map_err(|err| err.wrap_err(format!("cannot send to {named}")))?;
        let mut scratch = Vec::new();
        super::reserve(&mut scratch, self.size + 1, 1)?;
        let conn = Datagram {
            socket,
            scratch,
            sent: 0,
            bytes: [0; 256],
        };
        Ok((conn, named))
    }
}

/// A connection as probe mode drives it, several messages in flight at once: its socket, for
/// a [`Pipe`] to write messages to and read replies from.
pub(in crate::cmd::echo_client) trait Pipeline {
    /// The socket underneath.
    fn io(&mut self) -> Io<'_>;
}

/// A byte stream a [`Pipe`] can drive.
pub(in crate::cmd::echo_client) trait ByteStream:
    AsyncRead + AsyncWrite + Unpin + Send
{
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for S {}

/// The socket of a [`Pipeline`] connection.
pub(in crate::cmd::echo_client) enum Io<'a> {
    /// TCP or a Unix socket without TLS: a reply that differs is checked for a TLS answer.
    Plain(&'a mut dyn ByteStream),
    /// A TLS session.
    Tls(&'a mut dyn ByteStream),
    /// A connected UDP socket: a datagram per message, a datagram per reply.
    Datagram(&'a UdpSocket),
}

impl Pipeline for Plain {
    fn io(&mut self) -> Io<'_> {
        Io::Plain(&mut self.0.0)
    }
}

impl Pipeline for Datagram {
    fn io(&mut self) -> Io<'_> {
        Io::Datagram(&self.socket)
    }
}

/// Messages in flight on one connection and the reply being read (probe mode). Over a stream
/// the messages are queued and written while a reply is awaited, and the replies come back
/// in order, `size` bytes each; over UDP each goes out at once and each reply is a datagram,
/// for the caller to tell which message it answers.
pub(in crate::cmd::echo_client) struct Pipe {
    /// Bytes queued and not yet written (stream), from `written` on.
    out: Vec<u8>,
    written: usize,
    /// What was queued has been flushed (a TLS stream holds records until then).
    flushed: bool,
    /// The reply: `size` bytes on a stream, a datagram of up to `size + 1` bytes (one more, so
    /// a longer one shows as longer instead of cut).
    reply: Vec<u8>,
    /// Bytes of the reply in so far; `done` once it is whole, until the next `recv`.
    got: usize,
    done: bool,
}

impl Pipe {
    /// A pipe for messages of `size` bytes.
    pub(super) fn new(size: usize) -> eyre::Result<Pipe> {
        let mut reply = Vec::new();
        super::reserve(&mut reply, size + 1, 1)?;
        reply.resize(size + 1, 0);
        Ok(Pipe {
            out: Vec::new(),
            written: 0,
            flushed: true,
            reply,
            got: 0,
            done: false,
        })
    }

    /// Forgets what a connection left: the next one starts with nothing queued or read.
    pub(super) fn reset(&mut self) {
        self.out.clear();
        self.written = 0;
        self.flushed = true;
        self.got = 0;
        self.done = false;
    }

    /// Sends `msg` after those before it: over a stream it is queued, and written while
    /// [`Pipe::recv`] is awaited; a datagram goes now.
    pub(super) async fn send(&mut self, io: Io<'_>, msg: &[u8]) -> Result<(), Failure> {
        match io {
            Io::Datagram(socket) => socket.send(msg).await.map(drop).map_err(Failure::Io),
            Io::Plain(_) | Io::Tls(_) => {
                // What was written goes, once it is half the buffer: a server that reads
                // slowly would otherwise grow it for ever.
                if self.written > 0 && self.written * 2 >= self.out.len() {
                    self.out.drain(..self.written);
                    self.written = 0;
                }
                self.out
                    .try_reserve(msg.len())
                    .map_err(|_| Failure::Io(io::ErrorKind::OutOfMemory.into()))?;
                self.out.extend_from_slice(msg);
                self.flushed = false;
                Ok(())
            }
        }
    }

    /// Awaits the next reply, then in [`Pipe::reply`]: over a stream the next `size` bytes,
    /// while the queued messages are written; over UDP the next datagram. Cancel-safe: what
    /// was read of a reply is kept for the next call.
    pub(super) async fn recv(&mut self, io: Io<'_>) -> Result<(), Failure> {
        if self.done {
            self.got = 0;
            self.done = false;
        }
        let size = self.reply.len() - 1;
        match io {
            Io::Datagram(socket) => {
                self.got = socket.recv(&mut self.reply).await.map_err(Failure::Io)?;
            }
            Io::Plain(stream) | Io::Tls(stream) => {
                std::future::poll_fn(|cx| self.poll_stream(cx, &mut *stream, size)).await?;
            }
        }
        self.done = true;
        Ok(())
    }

    /// Writes what the stream takes, and reads until the reply is whole.
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut dyn ByteStream,
        size: usize,
    ) -> Poll<Result<(), Failure>> {
        if let Poll::Ready(Err(err)) = self.poll_write(cx, stream) {
            return Poll::Ready(Err(Failure::Io(err)));
        }
        while self.got < size {
            let mut buf = ReadBuf::new(&mut self.reply[self.got..size]);
            match ready!(Pin::new(&mut *stream).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => {
                    let (got, of) = (self.got, size);
                    return Poll::Ready(Err(Failure::Closed { got, of }));
                }
                Ok(()) => self.got += buf.filled().len(),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(Failure::Io(err))),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut dyn ByteStream,
    ) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let rest = &self.out[self.written..];
            match ready!(Pin::new(&mut *stream).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        if !self.flushed {
            ready!(Pin::new(&mut *stream).poll_flush(cx))?;
            self.flushed = true;
        }
        Poll::Ready(Ok(()))
    }

    /// The reply [`Pipe::recv`] returned, or what came of it before a failure.
    pub(super) fn reply(&self) -> &[u8] {
        &self.reply[..self.got]
    }

    /// Whether the reply, which differs from `msg`, is a plain stream's TLS server's answer
    /// (`--tls` forgotten): as [`Plain`]'s round trip tells it, reading what follows a reply
    /// shorter than a record header.
    pub(super) async fn tls_answer(&mut self, io: Io<'_>, msg: &[u8]) -> bool {
        let Io::Plain(stream) = io else {
            return false;
        };
        if looks_like_tls_record(msg) {
            return false;
        }
        let head = &self.reply[..self.got];
        if head.len() < HEADER {
            header_follows(stream, head).await
        } else {
            looks_like_tls_record(head)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_round_trip_checks_the_echo() {
        let (a, mut b) = tokio::io::duplex(64);
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 100];
            tokio::io::AsyncReadExt::read_exact(&mut b, &mut buf)
                .await
                .unwrap();
            buf[50] ^= 1;
            tokio::io::AsyncWriteExt::write_all(&mut b, &buf)
                .await
                .unwrap();
            b
        });
        let mut s = Stream(a);
        let msg = [7u8; 100];
        let mut reply = [0u8; 100];
        // Bigger than the duplex buffer both ways: writing and reading must overlap.
        assert_eq!(
            s.round_trip(&msg, &mut reply).await.unwrap(),
            Echo::Differs(50)
        );
        drop(server.await.unwrap());
        let err = s.round_trip(&msg, &mut reply).await.unwrap_err();
        assert!(matches!(
            err,
            Failure::Closed { got: 0, of: 100 } | Failure::Io(_)
        ));
    }

    /// A pipe keeps several messages in flight on a stream: queued at once, written while a
    /// reply is awaited, the replies read back `size` bytes each, in order, however the server
    /// cuts them; a reply cut by a close says how much came.
    #[tokio::test]
    async fn a_pipe_keeps_messages_in_flight_on_a_stream() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut a, mut b) = tokio::io::duplex(16);
        let server = tokio::spawn(async move {
            let mut all = [0u8; 300];
            b.read_exact(&mut all).await.unwrap();
            for chunk in all.chunks(7) {
                b.write_all(chunk).await.unwrap();
            }
            b.write_all(&[9; 40]).await.unwrap();
        });
        let mut pipe = Pipe::new(100).unwrap();
        for n in 0..3u8 {
            pipe.send(Io::Tls(&mut a), &[n; 100]).await.unwrap();
        }
        for n in 0..3u8 {
            pipe.recv(Io::Tls(&mut a)).await.unwrap();
            assert_eq!(pipe.reply(), &[n; 100][..]);
        }
        let err = pipe.recv(Io::Tls(&mut a)).await.unwrap_err();
        server.await.unwrap();
        assert!(
            matches!(err, Failure::Closed { got: 40, of: 100 }),
            "{err:?}"
        );
        assert_eq!(pipe.reply(), &[9; 40][..]);
    }

    /// A reply stamped with one of the messages sent before on the socket is a duplicate
    /// of it; anything else (a later stamp, other bytes, another length) is not.
    #[test]
    fn a_duplicate_is_an_earlier_message_of_this_socket() {
        let msg = |n: u64, len: usize| {
            let mut m = vec![9u8; len];
            super::super::stamp(&mut m, n);
            m
        };
        let now = msg(10, 64);
        assert_eq!(duplicate_of(&now, &msg(9, 64), 5), Some(1));
        assert_eq!(duplicate_of(&now, &msg(6, 64), 5), Some(4));
        assert_eq!(
            duplicate_of(&now, &msg(5, 64), 5),
            None,
            "not sent on this socket"
        );
        assert_eq!(duplicate_of(&now, &msg(11, 64), 5), None, "not sent yet");
        assert_eq!(
            duplicate_of(&now, &msg(10, 64), 5),
            None,
            "the reply itself"
        );
        let mut other = msg(9, 64);
        other[40] ^= 1;
        assert_eq!(duplicate_of(&now, &other, 5), None, "other bytes");
        assert_eq!(duplicate_of(&now, &msg(9, 63), 5), None, "another length");
    }

    /// A UDP echo server's loop guard (ours) never takes a connection's stamped messages for
    /// a packet loop's, at any size, past the point where the shorter stamps wrap.
    #[test]
    fn stamped_messages_never_look_like_a_loop() {
        let source = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
        let now = std::time::Instant::now();
        for size in 1..=9 {
            let mut guard = crate::net::udp::LoopGuard::new();
            let mut msg = vec![7u8; size];
            for n in 0..70_000u64 {
                super::super::stamp(&mut msg, n);
                let seen = guard.see(source, &msg);
                assert!(!guard.looped(seen, now), "size {size}, message {n}");
            }
        }
    }

    /// A 1-byte reply is a duplicate of the latest of the last 255 messages with that byte,
    /// whatever the stamp did with it.
    #[test]
    fn a_one_byte_duplicate_is_found_by_looking_back() {
        let mut bytes = [0u8; 256];
        let mut stamped = 0u8;
        // Messages 1 to 300 on this socket, stamped 1000 to 1299 by the engine.
        for sent in 1..=300u64 {
            super::super::stamp(std::slice::from_mut(&mut stamped), 999 + sent);
            bytes[(sent % 256) as usize] = stamped;
        }
        let of = |sent: u64| bytes[(sent % 256) as usize];
        assert_eq!(duplicate_byte(&bytes, of(298), 300), Some(2));
        assert_eq!(duplicate_byte(&bytes, of(46), 300), Some(254));
        assert_eq!(
            duplicate_byte(&bytes, of(300), 300),
            None,
            "the reply itself"
        );
        assert_eq!(
            duplicate_byte(&bytes, of(298), 2),
            None,
            "not sent on this socket"
        );
    }
}
