//! The listening socket, set up with socket2 so the options the standard library does not
//! expose (backlog, IPV6_V6ONLY) are chosen here rather than left to defaults.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel may queue for us. Clients beyond `--max-connections` and
/// bursts of thousands of connects wait here; Linux caps it at `net.core.somaxconn` (4096).
const BACKLOG: i32 = 4096;

/// Binds and listens on `addr`, returning a non-blocking std listener ready for tokio.
///
/// SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT (it does
/// not let two servers listen on one port on Linux). An IPv6 address listens on IPv6 only:
/// `[::]` meaning "IPv4 too" would depend on a sysctl, so the address says what it means.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
