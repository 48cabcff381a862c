//! Standard input and output, each on a dedicated OS thread, exchanging a fixed set of
//! buffers with the runtime.
//!
//! Why threads: a blocking stdin read cannot be cancelled, and on tokio's blocking pool it
//! holds runtime shutdown until Enter is pressed (tokio#2466); a plain thread is simply
//! abandoned when the process exits. stdout gets its own thread so that a slow reader delays
//! only the replies, never Ctrl-C or the idle timer, and so that everything written is
//! written before we exit — tokio's `Stdout` can lose its last buffer at shutdown
//! (tokio#7174). Neither fd is made non-blocking: the file description is shared with the
//! shell and the other programs of the pipeline.
//!
//! Why a fixed set of buffers: each direction owns [`CHUNKS`] buffers of [`CHUNK`] bytes that
//! travel full one way and empty the other way. Nothing else is ever allocated, so memory is
//! constant whatever the size of the stream, and a side that cannot keep up simply runs out
//! of empty buffers — that is the back-pressure.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc as std_mpsc;
use std::thread;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use tokio::sync::{mpsc, oneshot};

/// Bytes per buffer: large enough that one system call moves a lot (a pipe holds 64 KiB by
/// default, a loopback socket several times that), small enough to keep memory low.
pub(super) const CHUNK: usize = 128 * 1024;
/// Buffers per direction: two in flight on each side of the hand-over keeps both busy.
pub(super) const CHUNKS: usize = 4;

/// A buffer and how many of its bytes are data.
pub(super) struct Chunk {
    buf: Box<[u8]>,
    len: usize,
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            buf: vec![0; CHUNK].into_boxed_slice(),
            len: 0,
        }
    }

    /// The data.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The whole buffer, to read into; follow with [`Chunk::set_len`].
    pub(super) fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Records how many bytes a read put in.
    pub(super) fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len());
    }
}

/// The stdin side, as the runtime sees it.
pub(super) struct Input {
    full: mpsc::Receiver<io::Result<Chunk>>,
    empty: std_mpsc::Sender<Chunk>,
}

impl Input {
    /// Starts the thread that reads stdin.
    pub(super) fn spawn() -> io::Result<Input> {
        let (full_tx, full_rx) = mpsc::channel(CHUNKS);
        let (empty_tx, empty_rx) = std_mpsc::channel();
        for _ in 0..CHUNKS {
            // The receiver is alive right here.
            let _ = empty_tx.send(Chunk::new());
        }
        thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_stdin(&empty_rx, &full_tx))?;
        Ok(Input {
            full: full_rx,
            empty: empty_tx,
        })
    }

    /// The next chunk of stdin; `None` at its end.
    pub(super) async fn next(&mut self) -> Option<io::Result<Chunk>> {
        self.full.recv().await
    }

    /// Gives a sent chunk back to the reader.
    pub(super) fn recycle(&self, chunk: Chunk) {
        // Fails only when the reader has stopped, and then the buffer is not needed.
        let _ = self.empty.send(chunk);
    }
}

/// The reader thread: fill an empty buffer, hand it over, until the end of input, an error,
/// or the session no longer listening.
fn read_stdin(empty: &std_mpsc::Receiver<Chunk>, full: &mpsc::Sender<io::Result<Chunk>>) {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    while let Ok(mut chunk) = empty.recv() {
        match read(fd, chunk.space()) {
            // The end of input is the channel closing as this thread returns.
            Ok(0) => return,
            Ok(n) => {
                chunk.set_len(n);
                if full.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(err) => {
                let _ = full.blocking_send(Err(err));
                return;
            }
        }
    }
}

/// The stdout side, as the runtime sees it.
pub(super) struct Output {
    /// Where full buffers go; dropping it tells the writer to finish.
    pub(super) full: OutputSender,
    /// Empty buffers coming back from the writer.
    pub(super) empty: mpsc::Receiver<Chunk>,
    /// The writer's result, once it has written everything or failed.
    pub(super) done: oneshot::Receiver<io::Result<()>>,
}

/// The sending end of the stdout hand-over.
pub(super) struct OutputSender(std_mpsc::Sender<Chunk>);

impl OutputSender {
    /// Queues a chunk for stdout. Never blocks: at most [`CHUNKS`] buffers exist. False when
    /// the writer has stopped (stdout failed; its error is in [`Output::done`]).
    pub(super) fn send(&self, chunk: Chunk) -> bool {
        self.0.send(chunk).is_ok()
    }
}

impl Output {
    /// Starts the thread that writes stdout.
    pub(super) fn spawn() -> io::Result<Output> {
        let (full_tx, full_rx) = std_mpsc::channel::<Chunk>();
        let (empty_tx, empty_rx) = mpsc::channel(CHUNKS);
        let (done_tx, done_rx) = oneshot::channel();
        for _ in 0..CHUNKS {
            // Capacity is CHUNKS, so these fit.
            let _ = empty_tx.try_send(Chunk::new());
        }
        thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let result = write_stdout(&full_rx, &empty_tx);
                // Dropping the empty side first wakes a session waiting for a buffer.
                drop(empty_tx);
                let _ = done_tx.send(result);
            })?;
        Ok(Output {
            full: OutputSender(full_tx),
            empty: empty_rx,
            done: done_rx,
        })
    }
}

/// The writer thread: write each full buffer completely, give it back, until the session
/// drops its sender (then everything has been written) or a write fails.
fn write_stdout(full: &std_mpsc::Receiver<Chunk>, empty: &mpsc::Sender<Chunk>) -> io::Result<()> {
    let stdout = io::stdout();
    let fd = stdout.as_fd();
    for chunk in full {
        write_all(fd, chunk.data())?;
        // Never full: there are only CHUNKS buffers. Fails only when the session is gone.
        let _ = empty.try_send(chunk);
    }
    Ok(())
}

/// One read, retried on EINTR; waits (poll) if the fd was left non-blocking by someone else.
/// A closed fd 0 reads as empty, as std's stdin does.
fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_ready(fd, PollFlags::IN)?,
            Err(Errno::BADF) => return Ok(0),
            Err(err) => return Err(err.into()),
        }
    }
}

/// Writes all of `data`, retrying on EINTR and short writes.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_ready(fd, PollFlags::OUT)?,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

fn wait_ready(fd: BorrowedFd<'_>, flags: PollFlags) -> io::Result<()> {
    let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
    match rustix::event::poll(&mut fds, None) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
