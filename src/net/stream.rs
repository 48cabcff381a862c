//! One connection type per transport behind one trait, so the echo loop is written once and
//! compiled for each (no dispatch on the hot path), and one accept call per listener kind.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// An accepted connection, whatever its transport.
pub trait Connection: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + 'static {
    /// Reads what is ready into `buf`'s spare capacity without waiting (EAGAIN when nothing).
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize>;

    /// Sets the socket up for echoing: replies go out as soon as they are written (TCP: no
    /// Nagle delay waiting for the client's delayed ACK). Failing costs only speed.
    fn prepare(&self);

    /// Makes the coming close tell the peer it was cut rather than finished: a reset for TCP
    /// (SO_LINGER 0 drops what is unsent). A Unix socket has no such signal: its peer sees
    /// the end of the stream.
    fn cut_on_close(&self);

    /// Waits until the socket may have bytes to read (or an end or error to report).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Copies what is ready into `buf` without taking it off the socket and without waiting,
    /// once more than the `seen` bytes already looked at are there (or the stream ended: 0).
    /// Else EAGAIN, clearing the readiness [`readable`](Connection::readable) saw, so that it
    /// waits for new bytes instead of waking at once for the same ones. To look at a PROXY
    /// protocol header before deciding how much of it to read.
    fn try_peek(&self, buf: &mut [u8], seen: usize) -> io::Result<usize>;
}

/// One `recv(MSG_PEEK)`, EAGAIN when it finds no more than `seen` bytes and more may come. Run
/// inside `try_io`, whose EAGAIN clears only the readiness seen before it: bytes that come
/// after this look still wake the next wait.
fn peek(fd: impl AsFd, buf: &mut [u8], seen: usize) -> io::Result<usize> {
    let (n, _) = rustix::net::recv(&fd, buf, rustix::net::RecvFlags::PEEK)?;
    if n > 0 && n <= seen && !read_closed(fd.as_fd()) {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(n)
}

/// Whether the peer has closed its side: no new bytes will come, and the readiness that says
/// so is never cleared (an EAGAIN then would have the caller's wait spin).
fn read_closed(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&now)) {
        Ok(0) => false,
        // Ready, or a poll that failed: the caller is told what is there and decides.
        _ => true,
    }
}

impl Connection for TcpStream {
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }

    fn prepare(&self) {
        let _ = self.set_nodelay(true);
    }

    fn cut_on_close(&self) {
        let _ = socket2::SockRef::from(self).set_linger(Some(Duration::ZERO));
    }

    async fn readable(&self) -> io::Result<()> {
        TcpStream::readable(self).await
    }

    fn try_peek(&self, buf: &mut [u8], seen: usize) -> io::Result<usize> {
        self.try_io(Interest::READABLE, || peek(self, buf, seen))
    }
}

impl Connection for UnixStream {
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        UnixStream::try_read_buf(self, buf)
    }

    fn prepare(&self) {}

    fn cut_on_close(&self) {}

    async fn readable(&self) -> io::Result<()> {
        UnixStream::readable(self).await
    }

    fn try_peek(&self, buf: &mut [u8], seen: usize) -> io::Result<usize> {
        self.try_io(Interest::READABLE, || peek(self, buf, seen))
    }
}

/// Who is at the other end: a TCP address, or for a Unix socket (which has no address) the
/// peer's process and user, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer's address.
    Tcp(SocketAddr),
    /// A Unix peer's process id (when the kernel knows it) and user id.
    Unix {
        /// The peer's process id.
        pid: Option<i32>,
        /// The peer's user id.
        uid: Option<u32>,
    },
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d: shown as the
            // client knows itself.
            Peer::Tcp(addr) => SocketAddr::new(addr.ip().to_canonical(), addr.port()).fmt(f),
            Peer::Unix { pid, uid } => {
                let pid = pid.map_or("?".to_owned(), |p| p.to_string());
                let uid = uid.map_or("?".to_owned(), |u| u.to_string());
                write!(f, "pid {pid} uid {uid}")
            }
        }
    }
}

/// A listener of one transport.
pub trait Accept: Send + Sync + 'static {
    /// What it accepts.
    type Conn: Connection;

    /// The next connection and who made it.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Conn, Peer)>> + Send;
}

impl Accept for TcpListener {
    type Conn = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = TcpListener::accept(self).await?;
        Ok((stream, Peer::Tcp(addr)))
    }
}

impl Accept for UnixListener {
    type Conn = UnixStream;

    async fn accept(&self) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = UnixListener::accept(self).await?;
        let cred = stream.peer_cred().ok();
        let peer = Peer::Unix {
            pid: cred.and_then(|c| c.pid()),
            uid: cred.map(|c| c.uid()),
        };
        Ok((stream, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn an_ipv4_client_of_a_dual_stack_listener_shows_as_ipv4() {
        let mapped = Peer::Tcp("[::ffff:127.0.0.1]:4000".parse().unwrap());
        assert_eq!(mapped.to_string(), "127.0.0.1:4000");
        let v6 = Peer::Tcp("[::1]:4000".parse().unwrap());
        assert_eq!(v6.to_string(), "[::1]:4000");
    }
}
