//! Which of stdin, stdout and stderr the process was started without.
//!
//! Rust's runtime reopens a closed descriptor 0, 1 or 2 on /dev/null before `main`, so
//! `cat f >&-` would "succeed" into nothing. The binary records the real state from an
//! `.init_array` constructor, which runs before that reopening; everything that reads stdin or
//! writes stdout takes its descriptor from here and so sees `EBADF`, as GNU tools do.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::io::Errno;

const STDIN: u8 = 1;
const STDOUT: u8 = 2;
const STDERR: u8 = 4;

static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

/// Records which of descriptors 0–2 are closed. Called by the binary before Rust's runtime
/// starts; elsewhere (unit tests, benches) nothing is recorded and all three count as open.
pub fn record_closed_at_start() {
    let mut closed = 0;
    for (fd, bit) in [
        (rustix::stdio::stdin(), STDIN),
        (rustix::stdio::stdout(), STDOUT),
        (rustix::stdio::stderr(), STDERR),
    ] {
        if rustix::io::fcntl_getfd(fd) == Err(Errno::BADF) {
            closed |= bit;
        }
    }
    CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

fn open(bit: u8, fd: BorrowedFd<'static>) -> io::Result<BorrowedFd<'static>> {
    if CLOSED_AT_START.load(Ordering::Relaxed) & bit != 0 {
        Err(Errno::BADF.into())
    } else {
        Ok(fd)
    }
}

/// Standard input, or `EBADF` when the process was started with it closed (`<&-`).
pub fn stdin() -> io::Result<BorrowedFd<'static>> {
    open(STDIN, rustix::stdio::stdin())
}

/// Standard output, or `EBADF` when the process was started with it closed (`>&-`).
pub fn stdout() -> io::Result<BorrowedFd<'static>> {
    open(STDOUT, rustix::stdio::stdout())
}

/// True when the process was started with stderr closed (`2>&-`): messages go nowhere.
pub fn stderr_closed() -> bool {
    CLOSED_AT_START.load(Ordering::Relaxed) & STDERR != 0
}
