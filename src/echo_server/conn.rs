//! One connection: echo every byte back in order, with memory that follows use.
//!
//! The loop reads a chunk, writes it all back, and reads again. While the client does not
//! read, the write waits, so the server stops reading too and TCP's flow control slows the
//! client down: at most one buffer per connection is ever held, never a growing queue.
//!
//! The buffer exists only while data is flowing: it is taken when the socket becomes readable
//! and given back as soon as a read finds nothing more, so an idle connection costs its socket
//! and a task, not 64 KiB. Small buffers come from a short per-thread pool, so a ping-pong
//! message reuses a buffer that is still in cache instead of a fresh allocation. The size
//! starts small (a 64-byte ping touches one page) and doubles each time a read fills it, up to
//! [`MAX_BUF`], so bulk streams get large reads and large writes (few syscalls; a 16 KiB
//! message goes back in one write rather than sixteen small segments).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::Stats;

/// The first buffer of a connection, and the smallest.
const MIN_BUF: usize = 4 * 1024;
/// The largest buffer: big enough for bulk throughput, small enough that thousands of busy
/// connections fit in memory.
const MAX_BUF: usize = 64 * 1024;

/// Small buffers kept per worker thread for the next message; bounded, so the pool never holds
/// more than a few pages however many connections there are.
const POOL_SIZE: usize = 8;

/// Echoed bytes are added to the shared counter in batches of this much (and at the end), so
/// a ping-pong message does not touch a cache line every worker thread writes to.
const PUBLISH_EVERY: u64 = 64 * 1024;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of at least `size` bytes of capacity, empty: from the pool when one fits.
fn take_buffer(size: usize) -> Vec<u8> {
    if size == MIN_BUF {
        if let Some(buf) = POOL.with(|p| p.borrow_mut().pop()) {
            return buf;
        }
    }
    Vec::with_capacity(size)
}

/// Gives a buffer back: small ones to the pool while it has room, the rest to the allocator.
fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == MIN_BUF {
        buf.clear();
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(buf);
            }
        });
    }
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
    let mut size = MIN_BUF;
    loop {
        // Wait with no buffer held. poll_read_ready keeps one waker slot per socket, where
        // `readable()` would lock the socket's waiter list on every wait.
        match within(idle, std::future::poll_fn(|cx| stream.poll_read_ready(cx))).await {
            None => return Ok(End::Idle),
            Some(ready) => ready?,
        }
        let mut buf = take_buffer(size);
        let result = echo_burst(stream, idle, &mut buf, &mut size, stats, echoed, published).await;
        give_back(buf);
        match result {
            Ok(None) => {}
            Ok(Some(end)) => return Ok(end),
            Err(e) => return Err(e),
        }
    }
}

/// Echoes what the socket has now. `None` when it is drained and the caller should wait.
async fn echo_burst(
    stream: &mut TcpStream,
    idle: Option<Duration>,
    buf: &mut Vec<u8>,
    size: &mut usize,
    stats: &Stats,
    echoed: &mut u64,
    published: &mut u64,
) -> io::Result<Option<End>> {
    loop {
        let (n, drained) = match read(stream, buf) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if drained {
                return Ok(None); // nothing there after all: wait again, bufferless
            }
            // Half-close: all that was read has been written back; pass the EOF on.
            if within(idle, stream.shutdown()).await.is_none() {
                return Ok(Some(End::Idle));
            }
            return Ok(Some(End::Closed));
        }
        match within(idle, stream.write_all(buf)).await {
            None => return Ok(Some(End::Idle)),
            Some(result) => result?,
        }
        *echoed += n as u64;
        if *echoed - *published >= PUBLISH_EVERY {
            stats
                .bytes
                .fetch_add(*echoed - *published, Ordering::Relaxed);
            *published = *echoed;
        }
        if drained {
            return Ok(None);
        }
        if *size < MAX_BUF {
            // The read filled the buffer: more is probably waiting.
            *size *= 2;
            give_back(std::mem::replace(buf, Vec::with_capacity(*size)));
        } else {
            buf.clear();
        }
    }
}

/// One read into `buf`'s spare capacity (no zeroing). Returns the byte count and whether the
/// socket is drained for now: a short read means the kernel had no more, so readiness is
/// cleared right away instead of by one more read that fails with EAGAIN. That saves a
/// syscall per message on ping-pong loads; tokio's own `AsyncRead` for `TcpStream` does the
/// same. Doing it inside `try_io` keeps tokio's readiness tick check, so an event that arrives
/// after the read is not lost.
fn read(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    let mut got = 0;
    let spare = buf.capacity() - buf.len();
    let result = stream.try_io(Interest::READABLE, || {
        let n = SockRef::from(stream).recv(buf.spare_capacity_mut())?;
        got = n;
        if n > 0 && n < spare {
            // Report "would block" so tokio clears readiness; the data is kept in `got`.
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    match result {
        Ok(n) => {
            // SAFETY: recv initialised the first n bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            Ok((n, false))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            // SAFETY: as above, for the short read (got is 0 when nothing was read).
            unsafe { buf.set_len(buf.len() + got) };
            Ok((got, true))
        }
        Err(e) => Err(e),
    }
}

/// Runs `fut`, giving up (None) after `idle` if one is set. Without an idle timeout no timer
/// is created at all, so the common case pays nothing for the feature.
async fn within<F: Future>(idle: Option<Duration>, fut: F) -> Option<F::Output> {
    match idle {
        None => Some(fut.await),
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
    }
}
