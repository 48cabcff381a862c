//! UDP for the echo server: a socket set up for it, and a batch of datagrams moved with one
//! recvmmsg(2) and one sendmmsg(2) each way, with the address each one arrived on.
//!
//! A server bound to a wildcard address (`0.0.0.0`, `[::]`) must answer from the address the
//! client wrote to, or a connected client (nc -u, ours) drops the reply as coming from a
//! stranger: IP_PKTINFO / IPV6_RECVPKTINFO tell each datagram's destination, and the same
//! control message on the reply makes it the source. On one of the host's own addresses no
//! control message is needed, and none is asked for: such a socket receives only datagrams
//! sent to that address. Any other address (a broadcast, multicast or directed-broadcast one,
//! which Linux lets a socket bind) asks for it too, so that what was sent to a group is seen
//! as such and dropped.
//!
//! The rules that keep an echo service from being turned into a weapon (a reflector, one end
//! of an echo↔chargen loop, CERT CA-1996-01) are here too, as [`Dropped::of`].

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::{Socket, Type};

use super::listen::Stack;

/// The largest UDP payload over IPv4: 65,535 less the IPv4 and UDP headers.
pub const MAX_V4: usize = 65_507;
/// The largest UDP payload over IPv6 (without jumbograms): 65,535 less the UDP header.
pub const MAX_V6: usize = 65_527;

/// The largest datagram to or from `addr`. An IPv4-mapped IPv6 address (`[::ffff:a.b.c.d]`)
/// is IPv4 on the wire, with its limit.
pub fn max_datagram(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => MAX_V6,
        _ => MAX_V4,
    }
}

/// Datagrams per system call: 64 amortises the call well past the point where the per-datagram
/// work dominates, as the C servers that batch this way found.
pub const BATCH: usize = 64;

/// One slot per datagram, larger than any datagram: a datagram longer than its buffer would be
/// cut, and an echo must never be.
const SLOT: usize = 65_536;

/// The receive buffer asked for: bursts from many clients wait here while a batch is echoed.
/// Linux caps it at `net.core.rmem_max` unless the process may force it (CAP_NET_ADMIN).
pub const RECV_BUFFER: usize = 4 << 20;

/// Room for an IPV6_PKTINFO and an IP_PKTINFO control message, aligned: an IPv4 datagram on a
/// dual-stack IPv6 socket comes with both.
const CONTROL: usize = 128;

/// A bound UDP socket and what the server says about it.
#[derive(Debug)]
pub struct Bound {
    /// The socket, non-blocking.
    pub socket: std::net::UdpSocket,
    /// The address it is bound to (the port filled in when 0 was asked for).
    pub local: SocketAddr,
    /// Bound to an address that is not one of the host's own (a wildcard, a broadcast or
    /// multicast one): each datagram's arrival address is asked for (IP_PKTINFO), and replies
    /// are sent from it.
    pub pktinfo: bool,
}

/// Binds a UDP socket for the server on `addr`; `stack` says whether an IPv6 address takes
/// IPv4 clients too, as for TCP. No SO_REUSEADDR: on UDP it would let a second server bind the
/// same port and take half the datagrams.
pub fn bind(addr: SocketAddr, stack: Stack) -> io::Result<Bound> {
    let (socket, addr) = super::listen::ip_socket(addr, Type::DGRAM, stack)?;
    socket.set_nonblocking(true)?;
    grow_receive_buffer(&socket, RECV_BUFFER);
    let pktinfo = !is_own_address(addr.ip());
    if pktinfo {
        want_pktinfo(&socket, addr.is_ipv6())?;
    }
    socket.bind(&addr.into())?;
    let local = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the bound socket has no IP address"))?;
    Ok(Bound {
        socket: socket.into(),
        local,
        pktinfo,
    })
}

/// Sets up a UDP socket bound elsewhere (handed over by socket activation) as [`bind`] sets up
/// its own.
pub fn adopt(socket: std::net::UdpSocket) -> io::Result<Bound> {
    let local = socket.local_addr()?;
    let socket = Socket::from(socket);
    socket.set_nonblocking(true)?;
    grow_receive_buffer(&socket, RECV_BUFFER);
    let pktinfo = !is_own_address(local.ip());
    if pktinfo {
        want_pktinfo(&socket, local.is_ipv6())?;
    }
    Ok(Bound {
        socket: socket.into(),
        local,
        pktinfo,
    })
}

/// Asks for a receive buffer of `bytes`: forced past `rmem_max` when the process may, else as
/// large as the limit allows. A smaller buffer only costs datagrams under bursts, so a refusal
/// is no error.
pub fn grow_receive_buffer(socket: &Socket, bytes: usize) {
    let fd = socket.as_raw_fd();
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` is a live c_int and the length given is its size.
    let forced = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced {
        let _ = socket.set_recv_buffer_size(bytes);
    }
}

/// Whether `ip` is assigned to one of the host's interfaces (getifaddrs(3)): a socket bound to
/// it receives only unicast datagrams sent to it. False when the list cannot be read, which
/// only costs a control message per datagram.
fn is_own_address(ip: IpAddr) -> bool {
    if ip.is_unspecified() || is_group(ip) {
        return false;
    }
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list` on success.
    if unsafe { libc::getifaddrs(&raw mut list) } != 0 {
        return false;
    }
    let mut found = false;
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs made, freed only below.
        let ifa = unsafe { &*entry };
        found |= interface_ip(ifa.ifa_addr) == Some(ip);
        entry = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The IP address of an interface's `sockaddr` from getifaddrs, if it has one.
fn interface_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: a non-null address from getifaddrs points at a sockaddr of the size its family
    // says; only that size is read, without assuming alignment.
    unsafe {
        match libc::c_int::from((*addr).sa_family) {
            libc::AF_INET => {
                let sin = std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>());
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in6>());
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// Asks for each datagram's arrival address. An IPv6 socket asks for IP_PKTINFO as well: on a
/// dual-stack one (systemd's `ListenDatagram=7` makes `[::]:7` so) an IPv4 datagram's
/// IPV6_PKTINFO has only its v4-mapped destination, and IP_PKTINFO also says whether that was
/// a broadcast (see [`Arrival::group`]).
fn want_pktinfo(socket: &Socket, v6: bool) -> io::Result<()> {
    if v6 {
        set_flag(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
        // An IPv6-only socket gets no IPv4 datagram: nothing is lost if this is refused.
        let _ = set_flag(socket, libc::IPPROTO_IP, libc::IP_PKTINFO);
        Ok(())
    } else {
        set_flag(socket, libc::IPPROTO_IP, libc::IP_PKTINFO)
    }
}

/// Sets a boolean socket option.
fn set_flag(socket: &Socket, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and the length given is its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Why a datagram is not echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// From port 0 or a port below 1024: a service's port (echo, chargen, daytime, DNS...),
    /// never a client's; answering it starts a loop between two services (OpenBSD's inetd
    /// rule).
    LowPort,
    /// From a broadcast or multicast address: no real sender has one, so it is forged.
    BroadcastSource,
    /// Sent to a broadcast or multicast address: one datagram would draw a reply from every
    /// host, an amplifier.
    BroadcastDestination,
    /// From one of the server's own ports: another echo server on this port, or this one on
    /// another of its sockets, which would answer the answer forever.
    OwnPort,
    /// Larger than the buffer (cannot happen with UDP's 16-bit length); never echoed cut.
    Truncated,
}

impl Dropped {
    /// Every reason, in the order the summary lists them.
    pub const ALL: [Dropped; 5] = [
        Dropped::LowPort,
        Dropped::BroadcastSource,
        Dropped::BroadcastDestination,
        Dropped::OwnPort,
        Dropped::Truncated,
    ];

    /// Whether a datagram from `source`, sent to a group address or not (`to_group`, see
    /// [`Datagram::to_group`]), must be dropped by a server whose sockets are on `own_ports`,
    /// and why.
    pub fn of(source: SocketAddr, to_group: bool, own_ports: &[u16]) -> Option<Dropped> {
        if source.port() < 1024 {
            return Some(Dropped::LowPort);
        }
        if is_group(source.ip()) {
            return Some(Dropped::BroadcastSource);
        }
        if to_group {
            return Some(Dropped::BroadcastDestination);
        }
        if own_ports.contains(&source.port()) {
            return Some(Dropped::OwnPort);
        }
        None
    }

    /// What the summary and the log say.
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::LowPort => "source port below 1024",
            Dropped::BroadcastSource => "broadcast or multicast source",
            Dropped::BroadcastDestination => "sent to a broadcast or multicast address",
            Dropped::OwnPort => "source port is the server's own (an echo loop)",
            Dropped::Truncated => "truncated",
        }
    }

    /// The index of this reason in [`Dropped::ALL`], for counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A broadcast or multicast address (or the unspecified one, which no sender has); an
/// IPv4-mapped one (a dual-stack socket's IPv4 peer) by its IPv4 address.
fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_group(IpAddr::V4(v4)),
            None => v6.is_multicast() || v6.is_unspecified(),
        },
    }
}

/// One received datagram, as [`Batch::datagram`] reports it.
#[derive(Debug, Clone, Copy)]
pub struct Datagram {
    /// Its sender.
    pub source: SocketAddr,
    /// The address it was sent to, when the socket asked (see [`Bound::pktinfo`]). A datagram
    /// sent to a broadcast address has that here, not the interface's own.
    pub destination: Option<IpAddr>,
    /// Sent to a broadcast (limited or directed), multicast or other address that is not one
    /// of the host's own: the kernel's local address for it differs from the one it was sent
    /// to. Known only when the socket asked for the arrival address.
    pub to_group: bool,
    /// Its length.
    pub len: usize,
    /// The kernel cut it (MSG_TRUNC).
    pub truncated: bool,
}

/// Storage for [`BATCH`] datagrams and the headers of one recvmmsg and one sendmmsg.
///
/// The headers point into the batch's own heap buffers (never into the struct itself, which
/// may move): set once, with the lengths the kernel overwrites restored before each receive
/// and the reply headers rewritten before each send.
pub struct Batch {
    data: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<[u64; CONTROL / 8]>,
    iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    received: usize,
    /// Per reply: (slot, length), and its source-address control message.
    replies: Vec<(usize, usize)>,
    reply_controls: Vec<[u64; CONTROL / 8]>,
    reply_iovs: Vec<libc::iovec>,
    reply_headers: Vec<libc::mmsghdr>,
    /// Replies carry the arrival address as their source (wildcard bind).
    pktinfo: bool,
}

// SAFETY: the raw pointers in the headers point only into this batch's own heap buffers, which
// move with it from thread to thread and are never shared.
unsafe impl Send for Batch {}

impl Batch {
    /// Room for [`BATCH`] datagrams of any size; `pktinfo`: see [`Bound::pktinfo`].
    pub fn new(pktinfo: bool) -> Batch {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let (storage, iov, header) = unsafe {
            (
                zeroed::<libc::sockaddr_storage>(),
                zeroed::<libc::iovec>(),
                zeroed::<libc::mmsghdr>(),
            )
        };
        let mut batch = Batch {
            // Zeroed memory comes from calloc: pages are touched only as datagrams need them.
            data: vec![0; BATCH * SLOT],
            names: vec![storage; BATCH],
            controls: vec![[0; CONTROL / 8]; BATCH],
            iovs: vec![iov; BATCH],
            headers: vec![header; BATCH],
            received: BATCH,
            replies: Vec::with_capacity(BATCH),
            reply_controls: vec![[0; CONTROL / 8]; BATCH],
            reply_iovs: vec![iov; BATCH],
            reply_headers: vec![header; BATCH],
            pktinfo,
        };
        let data = batch.data.as_mut_ptr();
        for i in 0..BATCH {
            batch.iovs[i] = libc::iovec {
                // SAFETY: slot i lies inside `data` (BATCH * SLOT bytes).
                iov_base: unsafe { data.add(i * SLOT) }.cast(),
                iov_len: SLOT,
            };
            let hdr = &mut batch.headers[i].msg_hdr;
            hdr.msg_name = (&raw mut batch.names[i]).cast();
            hdr.msg_iov = &raw mut batch.iovs[i];
            hdr.msg_iovlen = 1;
            if pktinfo {
                hdr.msg_control = batch.controls[i].as_mut_ptr().cast();
            }
        }
        batch.reset();
        batch
    }

    /// Restores the lengths the kernel overwrote in the headers of the last receive: the
    /// others are as set, so a datagram at a time costs one header's upkeep, not 64.
    fn reset(&mut self) {
        for header in &mut self.headers[..self.received] {
            let hdr = &mut header.msg_hdr;
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_controllen = if self.pktinfo { CONTROL as _ } else { 0 };
            hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        self.received = 0;
    }

    /// Receives up to [`BATCH`] datagrams without waiting: how many, or WouldBlock. Forgets
    /// the replies queued from the previous batch.
    pub fn receive(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.reset();
        self.replies.clear();
        // SAFETY: every header points at live buffers (in this batch's heap storage, which
        // never moves) of the sizes it states.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// The `i`th datagram of the last [`Batch::receive`], or `None` for a sender address
    /// that is not IP (cannot happen on an IP socket).
    pub fn datagram(&self, i: usize) -> Option<Datagram> {
        let header = &self.headers[i];
        let source = sockaddr(&self.names[i], header.msg_hdr.msg_namelen)?;
        let arrived = if self.pktinfo {
            arrival(&header.msg_hdr)
        } else {
            None
        };
        Some(Datagram {
            source,
            destination: arrived.map(|a| a.ip),
            to_group: arrived.is_some_and(|a| a.group),
            len: header.msg_len as usize,
            truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        })
    }

    /// Queues the `i`th datagram to go back to its sender, from the address it came to.
    pub fn reply(&mut self, i: usize) {
        let len = self.headers[i].msg_len as usize;
        self.replies.push((i, len));
    }

    /// The length of the `k`th queued reply.
    pub fn reply_len(&self, k: usize) -> usize {
        self.replies[k].1
    }

    /// How many replies are queued.
    pub fn replies(&self) -> usize {
        self.replies.len()
    }

    /// Sends the queued replies from `from` on without waiting: how many went, WouldBlock when
    /// the socket buffer is full, or the error of reply `from` (the caller skips it).
    pub fn send(&mut self, fd: BorrowedFd<'_>, from: usize) -> io::Result<usize> {
        let data = self.data.as_mut_ptr();
        let count = self.replies.len() - from;
        for (j, &(i, len)) in self.replies[from..].iter().enumerate() {
            self.reply_iovs[j] = libc::iovec {
                // SAFETY: slot i lies inside `data` (BATCH * SLOT bytes).
                iov_base: unsafe { data.add(i * SLOT) }.cast(),
                iov_len: len,
            };
            let received = self.headers[i].msg_hdr;
            let hdr = &mut self.reply_headers[j].msg_hdr;
            hdr.msg_name = (&raw mut self.names[i]).cast();
            hdr.msg_namelen = received.msg_namelen;
            hdr.msg_iov = &raw mut self.reply_iovs[j];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            if self.pktinfo {
                if let Some(arrived) = arrival(&received) {
                    let control = &mut self.reply_controls[j];
                    hdr.msg_control = control.as_mut_ptr().cast();
                    hdr.msg_controllen = source_control(control, arrived) as _;
                }
            }
        }
        // SAFETY: every header points at live buffers of the sizes it states.
        let n = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.reply_headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// A socket address the kernel wrote, as a `SocketAddr`.
fn sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough and aligned enough for.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Where a datagram arrived, from its IP_PKTINFO or IPV6_PKTINFO control message.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    /// The address it was sent to.
    ip: IpAddr,
    /// The interface it came in on.
    ifindex: u32,
    /// Sent to a group, not to one of the host's addresses: multicast, or (IPv4) an address the
    /// kernel answers from another one of its own (ipi_spec_dst), which is what a broadcast,
    /// directed ones included, is.
    group: bool,
}

/// The arrival of a datagram, from the control messages recvmmsg gave with it.
/// When both an IPV6_PKTINFO and an IP_PKTINFO came (an IPv4 datagram on a dual-stack socket),
/// the IPv4 one is taken: it alone tells a broadcast, and its source works on the reply too.
fn arrival(hdr: &libc::msghdr) -> Option<Arrival> {
    let mut found = None;
    // SAFETY: the control buffer and its length are the kernel's answer to recvmmsg, and the
    // CMSG_* functions walk it within those bounds.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_PKTINFO {
                let info =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>());
                let ip = IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
                let local = info.ipi_spec_dst.s_addr == info.ipi_addr.s_addr;
                return Some(Arrival {
                    ip,
                    ifindex: info.ipi_ifindex as u32,
                    group: !local || is_group(ip),
                });
            }
            if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_PKTINFO {
                let info =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                let ip = IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                found = Some(Arrival {
                    ip,
                    ifindex: info.ipi6_ifindex,
                    group: is_group(ip),
                });
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    found
}

/// Writes into `control` the message that makes `arrived`'s address a reply's source (and, for
/// IPv6, keeps it on the arrival interface, which a link-local address needs); returns its
/// length.
fn source_control(control: &mut [u64; CONTROL / 8], arrived: Arrival) -> usize {
    let (level, kind, payload) = match arrived.ip {
        IpAddr::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            size_of::<libc::in_pktinfo>(),
        ),
        IpAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            size_of::<libc::in6_pktinfo>(),
        ),
    };
    // SAFETY: CMSG_SPACE of either payload (at most 32 bytes) fits the 64-byte buffer, which
    // is aligned for cmsghdr (u64); the message is written within it.
    unsafe {
        let space = libc::CMSG_SPACE(payload as libc::c_uint) as usize;
        let mut hdr: libc::msghdr = zeroed();
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&hdr);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as libc::c_uint) as _;
        let data = libc::CMSG_DATA(cmsg);
        match arrived.ip {
            IpAddr::V4(ip) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(ip).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(data.cast(), info);
            }
            IpAddr::V6(ip) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    ipi6_ifindex: arrived.ifindex,
                };
                std::ptr::write_unaligned(data.cast(), info);
            }
        }
        space
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn drop_rules() {
        let own = [7007, 7008];
        let ok = |s: &str| Dropped::of(addr(s), false, &own);
        assert_eq!(ok("127.0.0.1:40000"), None);
        assert_eq!(ok("127.0.0.1:1024"), None);
        assert_eq!(ok("127.0.0.1:1023"), Some(Dropped::LowPort));
        assert_eq!(ok("127.0.0.1:0"), Some(Dropped::LowPort));
        assert_eq!(ok("127.0.0.1:19"), Some(Dropped::LowPort));
        assert_eq!(ok("255.255.255.255:4000"), Some(Dropped::BroadcastSource));
        assert_eq!(ok("224.0.0.1:4000"), Some(Dropped::BroadcastSource));
        assert_eq!(ok("[ff02::1]:4000"), Some(Dropped::BroadcastSource));
        assert_eq!(
            ok("[::ffff:255.255.255.255]:4000"),
            Some(Dropped::BroadcastSource),
            "a dual-stack socket's IPv4 peer"
        );
        assert_eq!(ok("10.0.0.1:7007"), Some(Dropped::OwnPort));
        assert_eq!(
            ok("10.0.0.1:7008"),
            Some(Dropped::OwnPort),
            "every socket's port"
        );
        assert_eq!(
            Dropped::of(addr("10.0.0.1:4000"), true, &own),
            Some(Dropped::BroadcastDestination)
        );
    }

    #[test]
    fn only_an_address_of_the_hosts_own_goes_without_pktinfo() {
        assert!(
            !bind(addr("127.0.0.1:0"), Stack::Dual).unwrap().pktinfo,
            "the fast path"
        );
        assert!(bind(addr("0.0.0.0:0"), Stack::Dual).unwrap().pktinfo);
        // lo's directed broadcast, which no interface lists as its address.
        assert!(
            bind(addr("127.255.255.255:0"), Stack::Dual)
                .unwrap()
                .pktinfo
        );
    }

    #[test]
    fn a_wildcard_bind_replies_from_the_arrival_address() {
        let server = bind(addr("0.0.0.0:0"), Stack::Dual).unwrap();
        assert!(server.pktinfo);
        let port = server.local.port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .connect(SocketAddr::from(([127, 0, 0, 2], port)))
            .unwrap();
        client.send(b"hello").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&server.socket);
        let mut batch = Batch::new(true);
        let limit = rustix::event::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        let ready = rustix::event::poll(
            &mut [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )],
            Some(&limit),
        )
        .unwrap();
        assert_eq!(ready, 1, "the datagram arrives within 10 s");
        assert_eq!(batch.receive(fd).unwrap(), 1);
        let d = batch.datagram(0).unwrap();
        assert_eq!(d.destination, Some(IpAddr::from([127, 0, 0, 2])));
        assert_eq!(d.len, 5);
        batch.reply(0);
        assert_eq!(batch.send(fd, 0).unwrap(), 1);
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0; 16];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello", "a connected socket took the reply");
    }
}
