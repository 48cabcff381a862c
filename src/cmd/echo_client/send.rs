//! The send pump: stdin → socket, then a half-close at the end of input, so the server sees
//! the end of our data and can finish its replies.
//!
//! It waits only in poll(2), on stdin or the socket together with a [`Stop`] descriptor, and
//! its data calls never block (the socket is non-blocking, a splice is asked not to wait, and
//! stdin is read only once poll says it is ready). So when the exchange ends first,
//! [`Sender::finish`] gets a prompt and exact account of the input left unsent, instead of
//! guessing while the pump is still in the middle of a call.

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::Shutdown;

use socket2::Socket;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd, poll};
use rustix::fs::{FileType, SeekFrom};
use rustix::io::Errno;
use rustix::pipe::SpliceFlags;
use tokio::sync::oneshot;

use super::outcome::{Sending, Unsent};
use super::pump::{CHUNK, HEAD, Phase, SPLICE_MAX, Shared, is_pipe};
use super::verify::Window;
use crate::ui::hexdump::HexDump;

/// `-C/--crlf`: line ends sent as CRLF, as nc -C and ncat --crlf send them. A `\n` not
/// already after a `\r` (also one that ended the previous chunk) becomes `\r\n`; nothing
/// else changes.
#[derive(Debug, Default)]
pub(super) struct Crlf {
    after_cr: bool,
}

impl Crlf {
    /// `data` with its line ends made CRLF (borrowed when it holds none to change).
    pub(super) fn apply<'a>(&mut self, data: &'a [u8]) -> Cow<'a, [u8]> {
        let mut prev_cr = self.after_cr;
        self.after_cr = data.last().map_or(self.after_cr, |&b| b == b'\r');
        let bare = |i: usize, prev_cr: bool| {
            if i == 0 {
                !prev_cr
            } else {
                data[i - 1] != b'\r'
            }
        };
        if !memchr::memchr_iter(b'\n', data).any(|i| bare(i, prev_cr)) {
            return Cow::Borrowed(data);
        }
        let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 1);
        for &b in data {
            if b == b'\n' && !prev_cr {
                out.push(b'\r');
            }
            out.push(b);
            prev_cr = b == b'\r';
        }
        Cow::Owned(out)
    }
}

/// Tells the pump to stop at its next wait: a flag, and an eventfd that wakes its poll.
struct Stop {
    raised: AtomicBool,
    wake: OwnedFd,
    /// `--verify`'s window, whose wait for room a stop must end too.
    window: Option<Arc<Window>>,
}

impl Stop {
    fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        if let Some(window) = &self.window {
            window.close();
        }
        // Cannot fail short of a counter overflow, which one write cannot cause.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Waits until `fd` is ready for `events`; false when stopped instead.
    fn wait(&self, fd: BorrowedFd<'_>, events: PollFlags) -> io::Result<bool> {
        let mut fds = [
            PollFd::new(&fd, events),
            PollFd::new(&self.wake, PollFlags::IN),
        ];
        loop {
            if self.raised() {
                return Ok(false);
            }
            match poll(&mut fds, None) {
                Ok(_) => return Ok(!self.raised()),
                Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// The running send pump.
pub(super) struct Sender {
    stop: Arc<Stop>,
    report: oneshot::Receiver<Sending>,
}

impl Sender {
    /// The pump's report once it ends by itself (cancel-safe: for `select!`).
    pub(super) async fn ended(&mut self) -> Sending {
        (&mut self.report).await.unwrap_or_else(|_| {
            Sending::Stdin(io::Error::other("the sending thread stopped unexpectedly"))
        })
    }

    /// Stops the pump (if it still runs) and returns its report. Prompt: the pump waits only
    /// where the stop wakes it.
    pub(super) async fn finish(mut self) -> Sending {
        self.stop.raise();
        self.ended().await
    }
}

/// What the send pump does to the input besides sending it; any of it means every byte passes
/// through the pump, so nothing is spliced.
pub(super) struct With {
    /// `--verify`: every chunk is held in the window before it is sent.
    pub(super) window: Option<Arc<Window>>,
    /// `-C`: line ends go out as CRLF.
    pub(super) crlf: bool,
    /// `-x`: every chunk is dumped as it goes out.
    pub(super) dump: Option<HexDump>,
}

/// Starts the send pump on its own thread.
pub(super) fn send(
    stdin: BorrowedFd<'static>,
    socket: Socket,
    shared: Arc<Shared>,
    with: With,
) -> io::Result<Sender> {
    let stop = Arc::new(Stop {
        raised: AtomicBool::new(false),
        wake: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
        window: with.window,
    });
    let (tx, rx) = oneshot::channel();
    let pump_stop = Arc::clone(&stop);
    let (crlf, dump) = (with.crlf, with.dump);
    thread::Builder::new().name("send".into()).spawn(move || {
        let pump = Pump {
            stdin,
            socket: &socket,
            shared: &shared,
            stop: &pump_stop,
            crlf,
            dump: dump.as_ref(),
        };
        let _ = tx.send(pump.run());
    })?;
    Ok(Sender { stop, report: rx })
}

/// One send pump's view: where from, where to, whom to tell, what stops it. Its loops end
/// with `Ok` at the end of input and `Err` with the report otherwise.
struct Pump<'a> {
    stdin: BorrowedFd<'a>,
    socket: &'a Socket,
    shared: &'a Shared,
    stop: &'a Stop,
    /// `-C`: line ends go out as CRLF.
    crlf: bool,
    /// `-x`'s dump of what is sent.
    dump: Option<&'a HexDump>,
}

impl Pump<'_> {
    /// All of stdin to the socket, then the half-close.
    fn run(&self) -> Sending {
        // A splice moves the bytes unseen: -C and -x must see them.
        let seen = self.stop.window.is_some() || self.crlf || self.dump.is_some();
        let copied = match is_pipe(self.stdin) && !seen {
            true => self.splice_after_head(),
            false => self.copy(),
        };
        if let Err(end) = copied {
            return end;
        }
        self.shared.set_phase(Phase::Done);
        match self.socket.shutdown(Shutdown::Write) {
            Ok(()) => Sending::Finished,
            Err(err) => Sending::Socket(err, Unsent::NONE),
        }
    }

    /// stdin pipe → socket by splice. `Ok(false)` if the kernel cannot splice these two
    /// (nothing is lost: a failed call moves nothing), so the caller copies instead. What a
    /// splice does not move stays in the pipe, where [`Pump::unsent`] counts it.
    fn splice(&self) -> Result<bool, Sending> {
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        loop {
            if self.stop.raised() {
                return Err(Sending::Stopped(self.unsent(0)));
            }
            match rustix::pipe::splice(self.stdin, None, self.socket, None, SPLICE_MAX, flags) {
                Ok(0) => return Ok(true),
                Ok(n) => self.shared.add_sent(n),
                Err(Errno::INTR) => {}
                // The pipe is empty or the socket full: wait until neither is (each wait
                // returns at once when its side is ready).
                Err(Errno::AGAIN) => {
                    self.wait_input()?;
                    self.wait_socket(0)?;
                }
                Err(Errno::INVAL) => return Ok(false),
                // Reading a pipe cannot fail; the socket can (EPIPE, ECONNRESET).
                Err(err) => return Err(Sending::Socket(err.into(), self.unsent(0))),
            }
        }
    }

    /// stdin pipe → socket: the first [`HEAD`] bytes copied, for the reply side to know them
    /// ([`Shared::record_head`]), then the rest spliced (copied if the kernel cannot splice).
    fn splice_after_head(&self) -> Result<(), Sending> {
        let mut buf = [0u8; HEAD];
        loop {
            let missing = self.shared.head_missing();
            if missing == 0 {
                break;
            }
            let Some(n) = self.read_input(&mut buf[..missing])? else {
                return Ok(());
            };
            self.shared.record_head(&buf[..n]);
            self.send_all(&buf[..n])?;
        }
        match self.splice()? {
            true => Ok(()),
            false => self.copy(),
        }
    }

    /// stdin → socket through a buffer.
    fn copy(&self) -> Result<(), Sending> {
        let mut buf = vec![0u8; CHUNK];
        let mut crlf = Crlf::default();
        while let Some(n) = self.read_input(&mut buf)? {
            let data = match self.crlf {
                true => crlf.apply(&buf[..n]),
                false => Cow::Borrowed(&buf[..n]),
            };
            self.hold(&data)?;
            self.shared.record_head(&data);
            if let Some(dump) = self.dump {
                dump.chunk(&data);
            }
            self.send_all(&data)?;
        }
        Ok(())
    }

    /// Waits for input and reads some into `buf`; `None` at the end of input.
    fn read_input(&self, buf: &mut [u8]) -> Result<Option<usize>, Sending> {
        loop {
            self.wait_input()?;
            match rustix::io::read(self.stdin, &mut *buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(n)),
                // Someone else took the data first, or left stdin non-blocking: wait again.
                Err(Errno::INTR | Errno::AGAIN) => {}
                Err(err) => return Err(Sending::Stdin(err.into())),
            }
        }
    }

    fn send_all(&self, mut data: &[u8]) -> Result<(), Sending> {
        while !data.is_empty() {
            if self.stop.raised() {
                return Err(Sending::Stopped(self.unsent(data.len())));
            }
            let mut socket = self.socket;
            match socket.write(data) {
                Ok(0) => {
                    let err = io::ErrorKind::WriteZero.into();
                    return Err(Sending::Socket(err, self.unsent(data.len())));
                }
                Ok(n) => {
                    data = &data[n..];
                    self.shared.add_sent(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_socket(data.len())?;
                }
                Err(err) => return Err(Sending::Socket(err, self.unsent(data.len()))),
            }
        }
        Ok(())
    }

    /// Under `--verify`, holds `data` for the comparison before it goes out, waiting while
    /// the server is a whole window behind; `Err` when stopped meanwhile.
    fn hold(&self, data: &[u8]) -> Result<(), Sending> {
        let Some(window) = &self.stop.window else {
            return Ok(());
        };
        self.shared.set_phase(Phase::Window);
        match window.push(data) {
            true => Ok(()),
            false => Err(Sending::Stopped(self.unsent(data.len()))),
        }
    }

    /// Waits for input; `Err` when stopped meanwhile.
    fn wait_input(&self) -> Result<(), Sending> {
        self.shared.set_phase(Phase::Input);
        match self.stop.wait(self.stdin, PollFlags::IN) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Sending::Stopped(self.unsent(0))),
            Err(err) => Err(Sending::Stdin(err)),
        }
    }

    /// Waits until the socket takes data, holding `pending` bytes; `Err` when stopped.
    fn wait_socket(&self, pending: usize) -> Result<(), Sending> {
        self.shared.set_phase(Phase::Socket);
        match self.stop.wait(self.socket.as_fd(), PollFlags::OUT) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Sending::Stopped(self.unsent(pending))),
            Err(err) => Err(Sending::Socket(err, self.unsent(pending))),
        }
    }

    /// `pending` bytes already read, plus what stdin holds ready now.
    fn unsent(&self, pending: usize) -> Unsent {
        let (ready, exact) = waiting(self.stdin);
        Unsent {
            bytes: pending as u64 + ready,
            exact,
        }
    }
}

/// How many bytes stdin holds ready: what is in a pipe, terminal or socket, the rest of a
/// regular file; and whether that is all there is (only for the file: more may come down a
/// pipe). 0 when it cannot be known (another device): only what is known is claimed.
fn waiting(stdin: BorrowedFd<'_>) -> (u64, bool) {
    let Ok(stat) = rustix::fs::fstat(stdin) else {
        return (0, false);
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {
            let size = u64::try_from(stat.st_size).unwrap_or(0);
            let at = rustix::fs::seek(stdin, SeekFrom::Current(0)).unwrap_or(size);
            (size.saturating_sub(at), true)
        }
        FileType::Fifo | FileType::CharacterDevice | FileType::Socket => {
            (rustix::io::ioctl_fionread(stdin).unwrap_or(0), false)
        }
        _ => (0, false),
    }
}

#[cfg(test)]
mod crlf_tests {
    use super::Crlf;

    #[test]
    fn line_ends_become_crlf_once() {
        let mut c = Crlf::default();
        assert_eq!(&*c.apply(b"a\nb\r\nc"), b"a\r\nb\r\nc");
        assert_eq!(&*c.apply(b"\n\n"), b"\r\n\r\n");
        assert_eq!(&*c.apply(b"x\r"), b"x\r");
        assert_eq!(
            &*c.apply(b"\ny"),
            b"\ny",
            "a CR that ended the last chunk counts"
        );
        assert!(matches!(c.apply(b"plain"), std::borrow::Cow::Borrowed(_)));
    }
}
