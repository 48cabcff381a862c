//! One connection: echo every byte back in order, with memory that follows use.
//!
//! The loop reads, writes it all back, and reads again. While the client does not read, the
//! write waits, so the server stops reading too and TCP's flow control slows the client down:
//! at most one buffer per connection is ever held, never a growing queue.
//!
//! Small messages go through a 1 KiB buffer inside the connection's task, the same size as
//! the textbook server's, so a ping-pong message costs no allocation. A read that fills it
//! means more is waiting: the rest is gathered into a heap buffer (16 KiB, doubling while reads
//! fill it, up to [`MAX_BUF`]) and written back in one large write (a 16 KiB message goes out
//! in one write rather than sixteen small segments), and that buffer is freed as soon as the
//! socket is drained, so an idle connection holds no more than the small one.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Stats;

/// The buffer every connection keeps, inside its task.
const SMALL_BUF: usize = 1024;
/// The first heap buffer of a burst.
const MIN_BUF: usize = 16 * 1024;
/// The largest buffer: big enough for bulk throughput, small enough that thousands of busy
/// connections fit in memory.
const MAX_BUF: usize = 64 * 1024;

/// Echoed bytes are added to the shared counter in batches of this much (and at the end), so
/// a ping-pong message does not touch a cache line every worker thread writes to.
const PUBLISH_EVERY: u64 = 64 * 1024;

/// Awaits `$fut`, giving up (`None`) after the idle timeout `$idle` if one is set. A macro
/// rather than a function: the future stays inline in the connection's state machine, and
/// without an idle timeout no timer is created at all, so a ping-pong message pays nothing
/// for the feature.
macro_rules! within {
    ($idle:expr, $fut:expr) => {
        match $idle {
            None => Some($fut.await),
            Some(limit) => tokio::time::timeout(limit, $fut).await.ok(),
        }
    };
}

/// How an echo ended without an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed (or half-closed) and got everything back.
    Closed,
    /// Nothing moved for `--idle-timeout`.
    Idle,
}

/// Echoes until the client closes its side, then shuts down ours. Returns how it ended; the
/// bytes echoed are counted in `echoed`, and all but the last `PUBLISH_EVERY` of them in
/// `stats` (the caller adds the rest). An I/O error (reset, broken pipe) ends only this
/// connection.
pub async fn echo(
    stream: &mut TcpStream,
    idle: Option<Duration>,
    stats: &Stats,
    echoed: &mut u64,
    published: &mut u64,
) -> io::Result<End> {
    let mut small = [0u8; SMALL_BUF];
    let mut size = MIN_BUF;
    let mut count = |n: usize| {
        *echoed += n as u64;
        if *echoed - *published >= PUBLISH_EVERY {
            stats
                .bytes
                .fetch_add(*echoed - *published, Ordering::Relaxed);
            *published = *echoed;
        }
    };
    loop {
        // tokio's read clears readiness itself after a short read, without the extra read
        // that would fail with EAGAIN.
        let n = match within!(idle, stream.read(&mut small)) {
            None => return Ok(End::Idle),
            Some(Ok(n)) => n,
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Some(Err(e)) => return Err(e),
        };
        if n == 0 {
            return half_close(stream, idle).await;
        }
        if n < SMALL_BUF {
            match within!(idle, stream.write_all(&small[..n])) {
                None => return Ok(End::Idle),
                Some(result) => result?,
            }
            count(n);
            continue;
        }
        // The small buffer filled: gather what is waiting and send it back in large writes.
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(&small);
        loop {
            let eof = fill(stream, &mut buf)?;
            match within!(idle, stream.write_all(&buf)) {
                None => return Ok(End::Idle),
                Some(result) => result?,
            }
            count(buf.len());
            if eof {
                return half_close(stream, idle).await;
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

/// Reads without waiting until `buf` is full or the socket has nothing more. True at EOF.
fn fill(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
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

/// The client half-closed and all it sent went back: pass the EOF on.
async fn half_close(stream: &mut TcpStream, idle: Option<Duration>) -> io::Result<End> {
    match within!(idle, stream.shutdown()) {
        None => Ok(End::Idle),
        Some(result) => result.map(|()| End::Closed),
    }
}
