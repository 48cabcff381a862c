//! The two data pumps, stdin → socket and socket → stdout, each on its own OS thread with
//! one buffer and blocking system calls; the runtime only watches them.
//!
//! Why threads and not the runtime: stdin and stdout cannot be made non-blocking (the file
//! description is shared with the shell and the rest of the pipeline), and a blocking stdin
//! read parked on tokio's blocking pool holds runtime shutdown until Enter is pressed
//! (tokio#2466). A plain thread is simply abandoned when the process exits. Why each pump
//! owns its whole path instead of handing buffers to the runtime: a hand-over costs a wake-up
//! per chunk, and on a busy two-core machine every wake-up waits for a free core — measured,
//! the hand-over design fell behind single-threaded `nc` under load.
//!
//! When stdin (or stdout) is a pipe, its pump moves the data with splice(2): the kernel
//! hands pages between the pipe and the socket and the data never enters this process. For
//! anything else (a file, a terminal, /dev/null) it copies through one [`CHUNK`]-sized
//! buffer. Either way memory is constant, whatever the size of the stream. Back-pressure is
//! the kernel's: a pump blocks until the other side takes data. The two directions never
//! wait for each other, so no amount of data can deadlock.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use rustix::event::PollFlags;
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::pipe::SpliceFlags;
use tokio::sync::oneshot;

use crate::fdio::{self, wait_ready, write_all};

/// Bytes per system call: a pipe holds 64 KiB by default, a loopback socket buffer several
/// times that; larger buffers measured no faster.
pub(super) const CHUNK: usize = 128 * 1024;

/// The most one splice call may move; it returns sooner with whatever is there.
const SPLICE_MAX: usize = 1 << 20;

/// What the pumps tell the runtime while they run: byte counts for the progress line and
/// what the idle timer needs.
pub(super) struct Shared {
    started: Instant,
    sent: AtomicU64,
    received: AtomicU64,
    /// When bytes last came from the server, in ms since `started`.
    last_reply_ms: AtomicU64,
    /// Set before the half-close, so whoever sees the server's reply to it (its FIN) also
    /// sees that the input had ended: the server did not close first.
    input_ended: AtomicBool,
    /// The reply pump is blocked reading the socket: only then is the server the one who is
    /// silent (blocked on a slow stdout, it is not).
    awaiting_server: AtomicBool,
}

impl Shared {
    pub(super) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            started: Instant::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_reply_ms: AtomicU64::new(0),
            input_ended: AtomicBool::new(false),
            awaiting_server: AtomicBool::new(false),
        })
    }

    pub(super) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(super) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub(super) fn started(&self) -> Instant {
        self.started
    }

    /// When bytes last came from the server (the start if none have).
    pub(super) fn last_reply(&self) -> Instant {
        self.started + std::time::Duration::from_millis(self.last_reply_ms.load(Ordering::Relaxed))
    }

    /// The end of input was reached and the half-close is sent or being sent.
    pub(super) fn input_ended(&self) -> bool {
        self.input_ended.load(Ordering::SeqCst)
    }

    pub(super) fn awaiting_server(&self) -> bool {
        self.awaiting_server.load(Ordering::Relaxed)
    }

    fn replied(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_reply_ms.store(ms, Ordering::Relaxed);
    }
}

/// Why sending stopped before the end of input.
pub(super) enum SendError {
    /// Reading stdin failed.
    Stdin(io::Error),
    /// Writing to the socket (or the half-close) failed.
    Socket(io::Error),
}

/// How the reply pump ended.
pub(super) enum Replies {
    /// The server closed the connection in order (FIN); everything it sent is on stdout.
    Closed,
    /// Reading from the server failed, e.g. it reset the connection.
    Lost(io::Error),
    /// Writing to stdout failed (a closed pipe is `BrokenPipe`).
    Stdout(io::Error),
}

/// Starts the send pump: stdin → socket, then a half-close at the end of input, so the
/// server sees the end of our data and can finish its replies.
pub(super) fn send(
    socket: TcpStream,
    shared: Arc<Shared>,
) -> io::Result<oneshot::Receiver<Result<(), SendError>>> {
    let (tx, rx) = oneshot::channel();
    thread::Builder::new().name("send".into()).spawn(move || {
        let result = pump_stdin(&socket, &shared);
        let _ = tx.send(result);
    })?;
    Ok(rx)
}

fn pump_stdin(socket: &TcpStream, shared: &Shared) -> Result<(), SendError> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    let spliced = is_pipe(fd) && splice_stdin(fd, socket, shared)?;
    if !spliced {
        copy_stdin(fd, socket, shared)?;
    }
    shared.input_ended.store(true, Ordering::SeqCst);
    socket.shutdown(Shutdown::Write).map_err(SendError::Socket)
}

/// stdin pipe → socket by splice, to the end of input. False if the kernel cannot splice
/// these two (nothing is lost: a failed call moves nothing), so the caller copies instead.
fn splice_stdin(
    stdin: BorrowedFd<'_>,
    socket: &TcpStream,
    shared: &Shared,
) -> Result<bool, SendError> {
    loop {
        match rustix::pipe::splice(stdin, None, socket, None, SPLICE_MAX, SpliceFlags::MOVE) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                shared.sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(Errno::INTR) => {}
            // The socket blocks, so only a pipe left non-blocking by someone else says this.
            Err(Errno::AGAIN) => wait_ready(stdin, PollFlags::IN).map_err(SendError::Stdin)?,
            Err(Errno::INVAL) => return Ok(false),
            // Reading a pipe cannot fail; the socket can (EPIPE, ECONNRESET).
            Err(err) => return Err(SendError::Socket(err.into())),
        }
    }
}

/// stdin → socket through a buffer, to the end of input.
fn copy_stdin(
    stdin: BorrowedFd<'_>,
    mut socket: &TcpStream,
    shared: &Shared,
) -> Result<(), SendError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = read(stdin, &mut buf).map_err(SendError::Stdin)?;
        if n == 0 {
            return Ok(());
        }
        socket.write_all(&buf[..n]).map_err(SendError::Socket)?;
        shared.sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Starts the reply pump: socket → stdout until the server closes the connection.
pub(super) fn receive(
    socket: TcpStream,
    shared: Arc<Shared>,
) -> io::Result<oneshot::Receiver<Replies>> {
    let (tx, rx) = oneshot::channel();
    thread::Builder::new()
        .name("receive".into())
        .spawn(move || {
            let end = pump_replies(&socket, &shared);
            let _ = tx.send(end);
        })?;
    Ok(rx)
}

fn pump_replies(socket: &TcpStream, shared: &Shared) -> Replies {
    let stdout = io::stdout();
    let fd = stdout.as_fd();
    if is_pipe(fd) {
        if let Some(end) = splice_replies(socket, fd, shared) {
            return end;
        }
    }
    copy_replies(socket, fd, shared)
}

/// socket → stdout pipe by splice, until the server closes. `None` if the kernel cannot
/// splice these two; the caller copies instead.
fn splice_replies(socket: &TcpStream, stdout: BorrowedFd<'_>, shared: &Shared) -> Option<Replies> {
    loop {
        // Wait for the server first, apart from the splice: a splice blocked on a full stdout
        // is not the server being silent.
        shared.awaiting_server.store(true, Ordering::Relaxed);
        let ready = wait_ready(socket.as_fd(), PollFlags::IN);
        shared.awaiting_server.store(false, Ordering::Relaxed);
        if let Err(err) = ready {
            return Some(Replies::Lost(err));
        }
        match rustix::pipe::splice(socket, None, stdout, None, SPLICE_MAX, SpliceFlags::MOVE) {
            Ok(0) => return Some(Replies::Closed),
            Ok(n) => shared.replied(n),
            Err(Errno::INTR) => {}
            // The socket blocks, so only a pipe left non-blocking by someone else says this.
            Err(Errno::AGAIN) => {
                if let Err(err) = wait_ready(stdout, PollFlags::OUT) {
                    return Some(Replies::Stdout(err));
                }
            }
            Err(Errno::INVAL) => return None,
            // Only the pipe says EPIPE (its reader is gone); the rest is the connection's.
            Err(Errno::PIPE) => return Some(Replies::Stdout(Errno::PIPE.into())),
            Err(err) => return Some(Replies::Lost(err.into())),
        }
    }
}

/// socket → stdout through a buffer, until the server closes.
fn copy_replies(mut socket: &TcpStream, fd: BorrowedFd<'_>, shared: &Shared) -> Replies {
    let mut buf = vec![0u8; CHUNK];
    loop {
        shared.awaiting_server.store(true, Ordering::Relaxed);
        let got = socket.read(&mut buf);
        shared.awaiting_server.store(false, Ordering::Relaxed);
        let n = match got {
            Ok(0) => return Replies::Closed,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Replies::Lost(err),
        };
        shared.replied(n);
        if let Err(err) = write_all(fd, &buf[..n]) {
            return Replies::Stdout(err);
        }
    }
}

/// True for a pipe (or FIFO): what splice can move data to or from.
fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo)
}

/// One read (see [`fdio::read`]); a closed fd 0 reads as empty, as std's stdin does.
fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    match fdio::read(fd, buf) {
        Err(err) if err.raw_os_error() == Some(Errno::BADF.raw_os_error()) => Ok(0),
        result => result,
    }
}
