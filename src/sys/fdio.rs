//! Blocking reads and writes on raw descriptors (stdin, stdout, files), straight to the kernel
//! with no user-space buffer left to flush at exit (tokio's `Stdout` can lose one, tokio#7174).
//! They cope with what a shell may hand over: a signal interrupting a call (EINTR), and a
//! descriptor some other program left non-blocking (EAGAIN: wait with poll, then go on).

use std::io;
use std::os::fd::BorrowedFd;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

/// One read into `buf`, retried on EINTR, waiting when the descriptor is non-blocking.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_ready(fd, PollFlags::IN)?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes all of `bytes`, retrying on EINTR and short writes, waiting when the descriptor is
/// non-blocking.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_ready(fd, PollFlags::OUT)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Blocks until `fd` is ready for `events`, or reports an error or hang-up (which the next
/// call on it will surface).
pub fn wait_ready(fd: BorrowedFd<'_>, events: PollFlags) -> io::Result<()> {
    let mut fds = [PollFd::new(&fd, events)];
    loop {
        match poll(&mut fds, None) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
