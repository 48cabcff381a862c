//! Listening on an endpoint: a TCP socket set up with socket2 (backlog, IPV6_V6ONLY chosen
//! here rather than left to defaults), or a Unix socket file made safely ([`socket_file`]): it
//! appears only once it listens, a stale file left by a dead server is replaced, a live
//! server's or anything that is not a socket never is, the file's mode is never wider than
//! asked, and it is removed at exit only if it is still ours.

mod socket_file;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener};
use std::path::Path;

use socket2::{Domain, Protocol, Socket, Type};

pub use socket_file::SocketFile;

use super::endpoint::{Endpoint, UnixAddr};
use crate::ui::Ui;

/// Pending connections the kernel may queue for us. Clients beyond `--max-connections` and
/// bursts of thousands of connects wait here; Linux caps it at `net.core.somaxconn` (4096).
const BACKLOG: i32 = 4096;

/// Whether an IPv6 socket takes IPv4 clients too, as IPv4-mapped addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stack {
    /// IPv4 too (IPV6_V6ONLY off): `[::]` is every address, as ncat and Go listen on it.
    #[default]
    Dual,
    /// IPv6 only (IPV6_V6ONLY on): `-6`.
    V6Only,
}

/// A listening socket, not yet registered with the runtime.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// A Unix-domain stream socket.
    Unix(UnixListener),
    /// A UDP socket handed over by socket activation; `echo-server` serves it as UDP.
    Udp(std::net::UdpSocket),
}

/// A bound listener, the endpoint a client would type to reach it, and for a socket file the
/// guard that removes it.
#[derive(Debug)]
pub struct Bound {
    /// The listening socket (non-blocking).
    pub listener: Listener,
    /// `127.0.0.1:41237`, `unix:/tmp/e.sock`, `unix:@name`.
    pub endpoint: String,
    /// Removes the socket file when dropped, if it is still the one made here.
    pub file: Option<SocketFile>,
}

/// Binds and listens on `endpoint`; `stack` says whether an IPv6 address takes IPv4 clients
/// too. `mode` sets a socket file's permissions; `ui` hears about a stale socket file that was
/// replaced (under `--verbose`).
pub fn bind(
    endpoint: &Endpoint<SocketAddr>,
    stack: Stack,
    mode: Option<u32>,
    ui: &Ui,
) -> io::Result<Bound> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            let listener = bind_tcp(*addr, stack)?;
            let endpoint = listener.local_addr()?.to_string();
            Ok(Bound {
                listener: Listener::Tcp(listener),
                endpoint,
                file: None,
            })
        }
        Endpoint::Unix(UnixAddr::Abstract(name)) => {
            let listener = UnixListener::bind_addr(&UnixSocketAddr::from_abstract_name(name)?)?;
            listener.set_nonblocking(true)?;
            Ok(Bound {
                listener: Listener::Unix(listener),
                endpoint: endpoint.to_string(),
                file: None,
            })
        }
        Endpoint::Unix(UnixAddr::Path(path)) => {
            let (listener, file) = socket_file::bind(path, mode, ui)?;
            listener.set_nonblocking(true)?;
            Ok(Bound {
                listener: Listener::Unix(listener),
                endpoint: absolute(path).unwrap_or_else(|| endpoint.to_string()),
                file: Some(file),
            })
        }
        // Datagrams have no listener: `net::udp` binds them.
        Endpoint::Udp(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a UDP endpoint has no listener",
        )),
    }
}

/// `unix:` and the absolute form of a relative socket path, so the address line works from
/// any directory; `None` when that form would be too long to connect to.
fn absolute(path: &Path) -> Option<String> {
    let full = std::path::absolute(path).ok()?;
    (full.as_os_str().len() <= super::endpoint::UNIX_PATH_MAX)
        .then(|| UnixAddr::Path(full).to_string())
}

/// Binds and listens on `addr`.
///
/// SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT (it does
/// not let two servers listen on one port on Linux).
fn bind_tcp(addr: SocketAddr, stack: Stack) -> io::Result<std::net::TcpListener> {
    let (socket, addr) = ip_socket(addr, Type::STREAM, stack)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A TCP (`Type::STREAM`) or UDP socket for `addr` and the address to bind it to. An IPv6
/// socket's IPV6_V6ONLY is set as `stack` says, never left to the `net.ipv6.bindv6only`
/// sysctl, so `[::]` means the same on every machine. On a kernel without IPv6 (booted with
/// `ipv6.disable=1`) a dual-stack `[::]` is every IPv4 address, all that "every address" can
/// mean there (the address line says `0.0.0.0`).
pub fn ip_socket(addr: SocketAddr, kind: Type, stack: Stack) -> io::Result<(Socket, SocketAddr)> {
    let protocol = if kind == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let every = stack == Stack::Dual && addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let socket = match Socket::new(Domain::for_address(addr), kind, Some(protocol)) {
        Err(err) if every && err.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            return Ok((Socket::new(Domain::IPV4, kind, Some(protocol))?, v4));
        }
        socket => socket?,
    };
    if addr.is_ipv6() {
        socket.set_only_v6(stack == Stack::V6Only)?;
    }
    Ok((socket, addr))
}
