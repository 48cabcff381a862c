//! Descriptor-level helpers shared by the subcommands: blocking I/O on raw descriptors that
//! copes with EINTR and EAGAIN, what the process was started with on fds 0–2, and the one
//! retry back-off.

pub(crate) mod backoff;
pub(crate) mod fdio;
pub(crate) mod notify;
pub mod stdio;
