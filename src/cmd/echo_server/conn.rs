//! One connection: echo every byte back in order, with memory that follows use.
//!
//! The loop reads, writes it all back, and reads again. While the client does not read, the
//! write waits, so the server stops reading too and TCP's flow control slows the client down:
//! at most one buffer per connection is ever held, never a growing queue.
//!
//! Small messages go through a 1 KiB buffer each connection keeps, the same size as the
//! textbook server's, so a ping-pong message costs no allocation. A read that fills it
//! probably means more is waiting: the rest is gathered into a heap buffer (16 KiB at first,
//! doubling while reads fill it, up to [`MAX_BUF`]; a connection's later bursts start at the
//! size its last one reached) and written back in one large write (a 16 KiB message goes out
//! in one write rather than sixteen small segments), and that buffer is freed as soon as the
//! socket is drained, so an idle connection holds no more than the small one.
//!
//! `--idle-timeout` counts from the last byte read, written, or (while a write waits) taken
//! by the peer off the send queue, so a client that reads slowly but steadily is never idle,
//! and one that stops reading is.

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::stats::{Count, Stats};
use crate::net::stream::Connection;

/// The buffer every connection keeps.
const SMALL_BUF: usize = 1024;
/// The first heap buffer of a connection's first burst.
const MIN_BUF: usize = 16 * 1024;
/// The largest buffer: big enough for bulk throughput, small enough that thousands of busy
/// connections fit in memory.
const MAX_BUF: usize = 64 * 1024;

/// How an echo ended without an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed (or half-closed) and got everything back.
    Closed,
    /// Nothing moved for `--idle-timeout`.
    Idle,
    /// `--close-after` closed it (cleanly, already).
    ClosedEarly,
    /// `--reset-probability` chose it: the caller resets it.
    Reset,
}

/// Echoes until the client closes its side, then shuts down ours. Returns how it ended. The
/// bytes echoed are added to `stats` and stored in `echoed` when it returns or is dropped, so
/// a connection closed at shutdown is counted too. An I/O error (reset, broken pipe) ends only
/// this connection.
pub async fn echo<S: Connection>(
    stream: &mut S,
    idle: Option<Duration>,
    stats: &Stats,
    echoed: &mut u64,
) -> io::Result<End> {
    // On the heap, as in the textbook server, so the connection's task stays small.
    let mut small = Box::new([0u8; SMALL_BUF]);
    let mut timer = idle.map(IdleTimer::new);
    let mut count = Count::new(stats, echoed);
    let mut size = MIN_BUF;
    loop {
        let exchange = Exchange {
            stream,
            buf: &mut small,
            len: 0,
            sent: 0,
            count: &mut count,
            timer: timer.as_mut(),
        };
        match exchange.await? {
            Pause::Idle => return Ok(End::Idle),
            Pause::Eof => return half_close(stream).await,
            Pause::Full => {}
        }
        // The small buffer filled: gather what is waiting and send it back in large writes.
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(&small[..]);
        loop {
            let before = buf.len();
            let eof = fill(stream, &mut buf)?;
            if let (Some(timer), true) = (timer.as_mut(), buf.len() > before) {
                timer.moved();
            }
            let mut sent = 0;
            while sent < buf.len() {
                let step = poll_fn(|cx| poll_write(stream, cx, &buf[sent..], timer.as_mut()));
                match step.await? {
                    Some(n) => {
                        sent += n;
                        count.add(n);
                    }
                    None => return Ok(End::Idle),
                }
            }
            if eof {
                return half_close(stream).await;
            }
            if buf.len() < buf.capacity() {
                break; // drained: the heap buffer goes, the connection waits on the small one
            }
            if size < MAX_BUF {
                size *= 2;
                buf = Vec::with_capacity(size);
            } else {
                buf.clear();
            }
        }
    }
}

/// `--idle-timeout`, armed lazily: progress only records the time, and when the timer fires
/// early (something moved since it was set) it is pushed back to one idle period after the
/// last progress. An active connection thus costs a clock read per read or write and a timer
/// wake-up per idle period, not a new timer per operation.
///
/// While a write waits, the peer reading counts as progress too, though the server's own
/// writes may then be far apart: with megabytes of send buffer, a client reading 40 KiB/s
/// wakes the writer once a minute. So a waiting write notes the send queue's length once, and
/// the timer looks at it again every quarter period: a change means the peer acknowledged
/// bytes, which it does only as its application reads. A client that stops reading is thus
/// closed after the idle period (at most a quarter period later); one that reads is not.
struct IdleTimer {
    limit: Duration,
    last: Instant,
    sleep: Pin<Box<Sleep>>,
    /// The send queue's length when last looked at, while a write waits; `None` otherwise.
    queued: Option<u32>,
}

impl IdleTimer {
    fn new(limit: Duration) -> Self {
        let last = Instant::now();
        IdleTimer {
            limit,
            last,
            sleep: Box::pin(tokio::time::sleep_until(last + limit)),
            queued: None,
        }
    }

    fn moved(&mut self) {
        self.last = Instant::now();
        self.queued = None;
    }

    /// Ready when nothing moved for the whole limit; otherwise registers for the next check.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            let deadline = self.last + self.limit;
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
    }

    /// [`IdleTimer::poll_expired`] for a write waiting on `stream`'s peer, which counts the
    /// peer taking bytes off the send queue as progress.
    fn poll_write_expired(&mut self, cx: &mut Context<'_>, stream: &impl AsRawFd) -> Poll<()> {
        if self.queued.is_none() {
            // The write starts to wait: the one queue look-up on the way, none per message.
            self.queued = unacknowledged(stream);
            if self.queued.is_none() {
                return self.poll_expired(cx);
            }
            let next = self.next_check(Instant::now());
            self.sleep.as_mut().reset(next);
        }
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            let now = Instant::now();
            if let (Some(before), Some(queued)) = (self.queued, unacknowledged(stream)) {
                if queued != before {
                    // The peer took bytes at some time since the last look; counting from now
                    // errs late (by at most the quarter period between looks), never early.
                    self.last = now;
                    self.queued = Some(queued);
                }
            }
            if now >= self.last + self.limit {
                return Poll::Ready(());
            }
            let next = self.next_check(now);
            self.sleep.as_mut().reset(next);
        }
    }

    /// When to look next while a write waits: a quarter period on, or the deadline if sooner.
    fn next_check(&self, now: Instant) -> Instant {
        (now + self.limit / 4).min(self.last + self.limit)
    }
}

/// Bytes written to `stream` that its peer has not acknowledged yet (SIOCOUTQ), or `None`
/// where the kernel does not say.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn unacknowledged(stream: &impl AsRawFd) -> Option<u32> {
    let mut queued: libc::c_int = 0;
    // SIOCOUTQ has TIOCOUTQ's number (linux/sockios.h); libc names only the latter.
    // SAFETY: the descriptor is open while `stream` is borrowed, and this ioctl writes one
    // c_int through the pointer, which points to one.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    (rc == 0).then_some(queued as u32)
}

/// Without SIOCOUTQ, only the server's own reads and writes count as progress.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn unacknowledged(_stream: &impl AsRawFd) -> Option<u32> {
    None
}

/// Why [`Exchange`] handed the connection back.
enum Pause {
    /// The client closed its side, and everything before it went back.
    Eof,
    /// A read filled the small buffer: a burst, for the large-buffer path (`buf` holds it,
    /// none of it sent yet).
    Full,
    /// Nothing moved for the idle timeout.
    Idle,
}

/// The small-message loop: read into the small buffer, write it all back, again, until a
/// [`Pause`]. Written by hand so that every read and write records progress for the lazy
/// idle timer and the byte count, with no future or timer per operation; the reads and writes
/// themselves are tokio's, so readiness and the cooperative budget work as for any task.
struct Exchange<'a, 'c, S> {
    stream: &'a mut S,
    buf: &'a mut [u8; SMALL_BUF],
    /// Bytes in `buf` to send back; `sent` of them already went.
    len: usize,
    sent: usize,
    count: &'a mut Count<'c>,
    timer: Option<&'a mut IdleTimer>,
}

impl<S: Connection> Future for Exchange<'_, '_, S> {
    type Output = io::Result<Pause>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            if this.sent < this.len {
                let data = &this.buf[this.sent..this.len];
                match ready!(poll_write(this.stream, cx, data, this.timer.as_deref_mut()))? {
                    Some(n) => {
                        this.sent += n;
                        this.count.add(n);
                    }
                    None => return Poll::Ready(Ok(Pause::Idle)),
                }
                continue;
            }
            // tokio's read clears readiness itself after a short read, without the extra read
            // that would fail with EAGAIN.
            let mut read = ReadBuf::new(&mut this.buf[..]);
            match Pin::new(&mut *this.stream).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    if let Some(timer) = this.timer.as_mut() {
                        timer.moved();
                    }
                    match n {
                        0 => return Poll::Ready(Ok(Pause::Eof)),
                        SMALL_BUF => return Poll::Ready(Ok(Pause::Full)),
                        _ => (this.len, this.sent) = (n, 0),
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    return match this.timer.as_mut() {
                        Some(timer) => timer.poll_expired(cx).map(|()| Ok(Pause::Idle)),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

/// One write of (part of) `data`: how much went, or `None` once the idle timeout has passed
/// with nothing moving.
fn poll_write<S: Connection>(
    stream: &mut S,
    cx: &mut Context<'_>,
    data: &[u8],
    timer: Option<&mut IdleTimer>,
) -> Poll<io::Result<Option<usize>>> {
    loop {
        match Pin::new(&mut *stream).poll_write(cx, data) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                if let Some(timer) = timer {
                    timer.moved();
                }
                return Poll::Ready(Ok(Some(n)));
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                return match timer {
                    Some(timer) => timer.poll_write_expired(cx, stream).map(|()| Ok(None)),
                    None => Poll::Pending,
                };
            }
        }
    }
}

/// Reads without waiting until `buf` is full or the socket has nothing more. True at EOF.
fn fill(stream: &impl Connection, buf: &mut Vec<u8>) -> io::Result<bool> {
    while buf.len() < buf.capacity() {
        match stream.try_read_buf(buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The client half-closed and all it sent went back: pass the EOF on. (A TCP shutdown does
/// not wait for anything, so no idle timeout applies.)
async fn half_close(stream: &mut impl Connection) -> io::Result<End> {
    stream.shutdown().await.map(|()| End::Closed)
}
