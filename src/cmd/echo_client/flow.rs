//! What the pumps, `--verify` and the outcome share: the size of a read, the bound of the
//! verify window, and how the reply side ended. It sits below all of them, so none of the
//! three needs another's module for its vocabulary.

use std::io;

/// Bytes per system call: a pipe holds 64 KiB by default, a loopback socket buffer several
/// times that; larger buffers measured no faster.
pub(super) const CHUNK: usize = 128 * 1024;

/// Bytes sent and not yet echoed that are held for comparison: a few socket buffers' worth,
/// and at least one read chunk, which is pushed whole.
pub(super) const WINDOW: usize = 4 * CHUNK;

/// How the reply side (socket → stdout) ended.
#[derive(Debug)]
pub(super) enum Replies {
    /// The server closed the connection in order (FIN); everything it sent is on stdout.
    Closed,
    /// Reading from the server failed, e.g. it reset the connection.
    Lost(io::Error),
    /// Writing to stdout failed (a closed pipe is `BrokenPipe`).
    Stdout(io::Error),
    /// The first reply was a TLS record, not an echo: the server speaks TLS and the client
    /// plain text. Nothing of it was printed.
    Tls,
}
