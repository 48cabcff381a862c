//! The two data pumps, stdin → socket ([`send`](super::send)) and socket → stdout (here), each
//! on its own OS thread with one buffer; the runtime only watches them through [`Shared`].
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
//! hands pages between the pipe and the socket and the data never enters this process
//! (except under `--verify`, which must see every byte: [`verify`](super::verify)). For
//! anything else (a file, a terminal, /dev/null) it copies through one [`CHUNK`]-sized
//! buffer. Either way memory is constant, whatever the size of the stream.
//!
//! The socket is non-blocking and every wait is a poll(2) outside the data calls. A splice
//! holds the pipe's lock for its whole duration: one that slept on a socket the server does
//! not drain would block every other user of the same pipe, even one that asked for
//! O_NONBLOCK. So a splice here only ever moves what is ready, and waiting happens in poll,
//! which holds no lock.

use socket2::Socket;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::pipe::SpliceFlags;
use tokio::sync::oneshot;

pub(super) use super::flow::CHUNK;
use super::flow::Replies;
use super::verify::Window;
use crate::net::sniff::{looks_like_tls_record, may_start_tls_record};
use crate::sys::fdio::{wait_ready, write_all};
use crate::ui::hexdump::HexDump;

/// The most one splice call may move; it returns sooner with whatever is there.
pub(super) const SPLICE_MAX: usize = 1 << 20;

/// Where the send pump is waiting, for the idle timer to say which way nothing moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    /// Waiting for standard input.
    Input = 0,
    /// Holding input the socket does not take (the server is not reading).
    Socket = 1,
    /// The end of input is sent.
    Done = 2,
    /// `--verify`'s window is full: the server takes input but echoes none of it back.
    Window = 3,
}

/// What the pumps tell the runtime while they run: byte counts for the progress line and
/// what the idle timer needs.
pub(super) struct Shared {
    started: Instant,
    sent: AtomicU64,
    received: AtomicU64,
    /// When a byte last moved either way, in ms since `started`.
    last_progress_ms: AtomicU64,
    /// The reply pump is waiting for the server: only then is the server the one who is
    /// silent (waiting on a slow stdout, it is not).
    awaiting_server: AtomicBool,
    /// A [`Phase`].
    phase: AtomicU8,
    /// The first [`HEAD`] bytes sent (fewer until that many went out): their count in the top
    /// byte, the bytes in the low ones, so the reply side can tell an echo from a TLS answer.
    head: AtomicU64,
}

/// How many of the first bytes sent are kept to compare the first reply with: a TLS record
/// header's length.
pub(super) const HEAD: usize = 5;

impl Shared {
    pub(super) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            started: Instant::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_progress_ms: AtomicU64::new(0),
            awaiting_server: AtomicBool::new(false),
            phase: AtomicU8::new(Phase::Input as u8),
            head: AtomicU64::new(0),
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

    /// When a byte last moved either way (the start if none has).
    pub(super) fn last_progress(&self) -> Instant {
        self.started + Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed))
    }

    pub(super) fn awaiting_server(&self) -> bool {
        self.awaiting_server.load(Ordering::Relaxed)
    }

    pub(super) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Input,
            1 => Phase::Socket,
            3 => Phase::Window,
            _ => Phase::Done,
        }
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub(super) fn add_sent(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.progressed();
    }

    pub(super) fn add_received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        self.progressed();
    }

    /// How many of the first [`HEAD`] bytes are still to be recorded; 0 once all are.
    pub(super) fn head_missing(&self) -> usize {
        HEAD - (self.head.load(Ordering::Acquire) >> 56) as usize
    }

    /// Records the start of `data`, about to be sent, while fewer than [`HEAD`] bytes are.
    /// Only the send pump writes it, and before the bytes go out, so any echo of them finds
    /// them here.
    pub(super) fn record_head(&self, data: &[u8]) {
        let packed = self.head.load(Ordering::Acquire);
        let have = (packed >> 56) as usize;
        if have >= HEAD || data.is_empty() {
            return;
        }
        let mut bytes = packed.to_le_bytes();
        let take = data.len().min(HEAD - have);
        bytes[have..have + take].copy_from_slice(&data[..take]);
        bytes[7] = (have + take) as u8;
        self.head
            .store(u64::from_le_bytes(bytes), Ordering::Release);
    }

    /// Whether `reply`, the start of the first reply, is an echo of the first bytes sent as far
    /// as both go. Before anything was sent, no reply is an echo.
    fn echoes_head(&self, reply: &[u8]) -> bool {
        let bytes = self.head.load(Ordering::Acquire).to_le_bytes();
        let both = usize::from(bytes[7]).min(reply.len());
        both > 0 && bytes[..both] == reply[..both]
    }

    fn progressed(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether the reply side now waits for the server (the TLS pumps say so themselves).
    pub(super) fn set_awaiting(&self, on: bool) {
        self.awaiting_server.store(on, Ordering::Relaxed);
    }

    /// Waits until the server has something for us (or an error or hang-up to report).
    fn await_server(&self, socket: &Socket) -> io::Result<()> {
        self.awaiting_server.store(true, Ordering::Relaxed);
        let ready = wait_ready(socket.as_fd(), PollFlags::IN);
        self.awaiting_server.store(false, Ordering::Relaxed);
        ready
    }
}

/// Starts the reply pump: socket → stdout until the server closes the connection. With
/// `window` (`--verify`) every reply is compared there before it is printed; with `dump`
/// (`-x`) every reply is dumped.
pub(super) fn receive(
    socket: Socket,
    stdout: BorrowedFd<'static>,
    shared: Arc<Shared>,
    window: Option<Arc<Window>>,
    dump: Option<HexDump>,
) -> io::Result<impl Future<Output = Replies>> {
    let (tx, rx) = oneshot::channel();
    thread::Builder::new()
        .name("receive".into())
        .spawn(move || {
            let seen = Seen {
                window: window.as_deref(),
                dump: dump.as_ref(),
            };
            let end = pump_replies(&socket, stdout, &shared, seen);
            let _ = tx.send(end);
        })?;
    Ok(async {
        rx.await.unwrap_or_else(|_| {
            Replies::Lost(io::Error::other(
                "the receiving thread stopped unexpectedly",
            ))
        })
    })
}

/// Who must see every reply, so that none may be spliced past them.
#[derive(Clone, Copy)]
struct Seen<'a> {
    /// `--verify`'s comparison.
    window: Option<&'a Window>,
    /// `-x`'s dump.
    dump: Option<&'a HexDump>,
}

fn pump_replies(
    socket: &Socket,
    stdout: BorrowedFd<'_>,
    shared: &Shared,
    seen: Seen<'_>,
) -> Replies {
    if let Some(end) = sniff_first_reply(socket, shared) {
        return end;
    }
    if is_pipe(stdout) && seen.window.is_none() && seen.dump.is_none() {
        if let Some(end) = splice_replies(socket, stdout, shared) {
            return end;
        }
    }
    copy_replies(socket, stdout, shared, seen)
}

/// [`Replies::Tls`] if the server's first reply is a TLS record, not an echo: a TLS server's
/// answer to a client that forgot `--tls`. Its first bytes are peeked (MSG_PEEK leaves them
/// for the pumps, so the splice path stays as it is). A record header is not enough: binary
/// input may start like one, and its echo would too. So it counts as TLS only when it is not
/// what was sent first, as far as both go, which the send pump records before sending (a
/// pipe's first bytes are copied, not spliced, for that). A reply cut short inside what may
/// be a header (a relay may split the answer) is peeked again until the header is whole, for
/// at most [`SNIFF_PATIENCE`] or until the server hangs up. The end of the stream is left to
/// the pumps; an error ends here, as the kernel reports a reset only once.
fn sniff_first_reply(socket: &Socket, shared: &Shared) -> Option<Replies> {
    let mut head = [0u8; HEAD];
    let mut partial_since: Option<Instant> = None;
    let mut hung_up = false;
    loop {
        let n = match peek(socket, &mut head) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                match shared.await_server(socket) {
                    Ok(()) => continue,
                    Err(err) => return Some(Replies::Lost(err)),
                }
            }
            Err(err) => return Some(Replies::Lost(err)),
        };
        let reply = &head[..n];
        if n == 0 || shared.echoes_head(reply) {
            return None;
        }
        if !may_start_tls_record(reply) {
            return looks_like_tls_record(reply).then_some(Replies::Tls);
        }
        // Peeked after the hang-up, so the rest of a header sent with it would be here.
        let since = *partial_since.get_or_insert_with(Instant::now);
        if hung_up || since.elapsed() >= SNIFF_PATIENCE {
            return None;
        }
        hung_up = hung_up_within(socket, SNIFF_STEP);
    }
}

/// How long a first reply that stopped inside what may be a TLS record header is given to
/// complete it before it is taken as data: a TLS alert is sent whole, so only a relay that
/// splits it is waited for. A reply that looks like that is rare outside TLS, and is only
/// delayed, never lost.
const SNIFF_PATIENCE: Duration = Duration::from_secs(1);

/// Between two peeks at a partial first reply.
const SNIFF_STEP: Duration = Duration::from_millis(10);

/// Peeks at the first bytes waiting on `socket` without taking them.
fn peek(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the whole call.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Waits up to `limit`, or less if the server hangs up (its end of the stream or an error
/// is then what will follow the bytes already there, never more bytes).
fn hung_up_within(socket: &Socket, limit: Duration) -> bool {
    let fd = socket.as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
    let timeout = Timespec::try_from(limit).unwrap_or_default();
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(ready) => ready > 0,
        // A signal only cut this wait short; the next one goes on.
        Err(Errno::INTR) => false,
        // Taken as a hang-up: the pumps then meet whatever it was.
        Err(_) => true,
    }
}

/// socket → stdout pipe by splice, until the server closes. `None` if the kernel cannot
/// splice these two; the caller copies instead.
fn splice_replies(socket: &Socket, stdout: BorrowedFd<'_>, shared: &Shared) -> Option<Replies> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        match rustix::pipe::splice(socket, None, stdout, None, SPLICE_MAX, flags) {
            Ok(0) => return Some(Replies::Closed),
            Ok(n) => shared.add_received(n),
            Err(Errno::INTR) => {}
            // The socket is empty or the pipe full: wait for room in the pipe (at once when
            // there is some), then for the server.
            Err(Errno::AGAIN) => {
                if let Err(err) = wait_ready(stdout, PollFlags::OUT) {
                    return Some(Replies::Stdout(err));
                }
                if let Err(err) = shared.await_server(socket) {
                    return Some(Replies::Lost(err));
                }
            }
            Err(Errno::INVAL) => return None,
            // Only the pipe says EPIPE (its reader is gone); the rest is the connection's.
            Err(Errno::PIPE) => return Some(Replies::Stdout(Errno::PIPE.into())),
            Err(err) => return Some(Replies::Lost(err.into())),
        }
    }
}

/// socket → stdout through a buffer, until the server closes. Under `--verify` a closed stdout
/// (`| head -c 10`) does not end the check: the rest is compared and dropped, and the verdict
/// decides the exit status, as it would have with stdout open.
fn copy_replies(
    mut socket: &Socket,
    stdout: BorrowedFd<'_>,
    shared: &Shared,
    seen: Seen<'_>,
) -> Replies {
    let window = seen.window;
    let mut buf = vec![0u8; CHUNK];
    let mut stdout_closed = false;
    loop {
        let n = match socket.read(&mut buf) {
            Ok(0) => return Replies::Closed,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if let Err(err) = shared.await_server(socket) {
                    return Replies::Lost(err);
                }
                continue;
            }
            Err(err) => return Replies::Lost(err),
        };
        shared.add_received(n);
        if let Some(dump) = seen.dump {
            dump.chunk(&buf[..n]);
        }
        if let Some(window) = window {
            window.check(&buf[..n]);
        }
        if stdout_closed {
            continue;
        }
        match write_all(stdout, &buf[..n]) {
            Err(err) if window.is_some() && err.kind() == io::ErrorKind::BrokenPipe => {
                stdout_closed = true;
            }
            Err(err) => return Replies::Stdout(err),
            Ok(()) => {}
        }
    }
}

/// True for a pipe (or FIFO): what splice can move data to or from.
pub(super) fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo)
}
