//! systemd socket activation, the `sd_listen_fds(3)` protocol: a service manager that bound the
//! sockets itself starts us with them open on fds 3, 4, ... and says so in the environment
//! (`LISTEN_PID` = our pid, `LISTEN_FDS` = how many, `LISTEN_FDNAMES` = their names, colon-
//! separated). The server then serves those sockets instead of binding ADDR.
//!
//! Each descriptor is checked before it is used: systemd can hand over Unix datagram sockets, FIFOs
//! or (with `Accept=yes`) one connected socket, and an echo server that took any of them for a
//! listener would fail later with a message about `accept`, far from the unit file that is wrong.
//!
//! The variables are left in the environment rather than removed: `std::env::remove_var` is
//! `unsafe` in edition 2024 (it races with any thread reading the environment), and removing them
//! is not needed for correctness — a child has another pid, so `LISTEN_PID` tells it the sockets
//! are not its, and the descriptors are close-on-exec, so it does not get them either.

use std::ffi::OsStr;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{self, UnixListener};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::FileType;
use rustix::io::{Errno, FdFlags};
use socket2::{Domain, Protocol, SockRef, Type};

use super::listen::Listener;

/// The first descriptor the manager hands over (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The sockets are taken once per process: a second taker would own (and close) them twice.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// One inherited listener with where it came from, for messages.
#[derive(Debug)]
pub(crate) struct InheritedSocket {
    /// The descriptor number it arrived on.
    pub(crate) fd: RawFd,
    /// Its name from `LISTEN_FDNAMES` (the unit's `FileDescriptorName=`, by default the socket
    /// unit's name), if the manager gave one.
    pub(crate) name: Option<String>,
    /// The listener itself.
    pub(crate) listener: Listener,
}

/// What the environment says was handed to us.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Handed {
    /// How many descriptors, from fd 3 on.
    pub(crate) count: usize,
    /// One name per descriptor (`None`: unnamed), or none at all without `LISTEN_FDNAMES`:
    /// memory follows what the environment spells out, never the count it claims.
    pub(crate) names: Vec<Option<String>>,
}

impl Handed {
    /// The name of the `i`th descriptor (fd 3 + i), if it has one.
    pub(crate) fn name(&self, i: usize) -> Option<String> {
        self.names.get(i).cloned().flatten()
    }
}

/// The listeners systemd (or `systemd-socket-activate`) handed to this process, or `None` when
/// the process was not socket-activated (`LISTEN_PID` absent or another process's, `LISTEN_FDS`
/// absent or 0), in which case the server binds ADDR as usual.
///
/// Call it once, early in the server's start-up and before the runtime is built: it takes
/// ownership of fds 3..3+N, which is only sound while nothing else in the process has opened
/// a descriptor there (the manager's sockets occupy them from exec on, so nothing can, unless
/// `LISTEN_FDS` claims more than were passed). A descriptor of the wrong kind is an error naming
/// it and what it is; all descriptors taken so far are closed then.
pub(crate) fn inherited_listeners() -> io::Result<Option<Vec<InheritedSocket>>> {
    let var = |name| std::env::var_os(name);
    let handed = parse_env(
        std::process::id(),
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
    )?;
    let Some(handed) = handed else {
        return Ok(None);
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other(
            "socket activation: the inherited sockets were already taken",
        ));
    }
    // No capacity from the count: a bogus LISTEN_FDS stops at the first fd not open.
    let mut sockets = Vec::new();
    for i in 0..handed.count {
        // parse_env bounds the count so that the last fd is still an int.
        let fd = FIRST_FD + i as RawFd;
        let owned = take_fd(fd)?;
        let listener = into_listener(owned)?;
        let name = handed.name(i);
        sockets.push(InheritedSocket { fd, name, listener });
    }
    Ok(Some(sockets))
}

/// Reads the activation variables as `sd_listen_fds(3)` does. Pure, so every shape of
/// environment can be tested: `Ok(None)` when the sockets are not ours, an error when the
/// variables are ours but malformed.
pub(crate) fn parse_env(
    our_pid: u32,
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    fd_names: Option<&OsStr>,
) -> io::Result<Option<Handed>> {
    let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    let pid: u32 = number(listen_pid).ok_or_else(|| {
        invalid(format!(
            "socket activation: LISTEN_PID={} is not a process id",
            listen_pid.to_string_lossy()
        ))
    })?;
    if pid != our_pid {
        return Ok(None);
    }
    let count: u64 = number(listen_fds).ok_or_else(|| {
        invalid(format!(
            "socket activation: LISTEN_FDS={} is not a number of descriptors",
            listen_fds.to_string_lossy()
        ))
    })?;
    // Descriptors are ints: fd 3 + count - 1 must be one.
    let limit = (RawFd::MAX - FIRST_FD) as u64 + 1;
    if count > limit {
        return Err(invalid(format!(
            "socket activation: LISTEN_FDS={count} is more descriptors than a process can have"
        )));
    }
    let count = count as usize;
    if count == 0 {
        return Ok(None);
    }
    let names = match fd_names {
        None => Vec::new(),
        Some(names) => split_names(names, count)?,
    };
    Ok(Some(Handed { count, names }))
}

/// `LISTEN_FDNAMES`: one name per descriptor; an empty one means unnamed.
fn split_names(names: &OsStr, count: usize) -> io::Result<Vec<Option<String>>> {
    let names = names.to_string_lossy();
    let names: Vec<Option<String>> = names
        .split(':')
        .map(|n| (!n.is_empty()).then(|| n.to_string()))
        .collect();
    if names.len() != count {
        return Err(invalid(format!(
            "socket activation: LISTEN_FDNAMES names {} descriptors but LISTEN_FDS={count}",
            names.len()
        )));
    }
    Ok(names)
}

/// A decimal number with nothing around it, as systemd writes them.
fn number<T: std::str::FromStr>(s: &OsStr) -> Option<T> {
    let s = s.to_str()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Takes ownership of inherited descriptor `fd`, close-on-exec from now on.
fn take_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; any int is a valid argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        let err = io::Error::last_os_error();
        return Err(if err.raw_os_error() == Some(libc::EBADF) {
            invalid(format!(
                "socket activation: fd {fd} is not open, though LISTEN_FDS says it was handed over"
            ))
        } else {
            io::Error::new(err.kind(), format!("socket activation: fd {fd}: {err}"))
        });
    }
    // SAFETY: fd is open (F_GETFD succeeded), and the activation protocol gives it to this
    // process; `inherited_listeners` takes each one once (TAKEN), before anything else in the
    // process could have been given this number (see its documentation).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let flags = FdFlags::from_bits_retain(flags as u32) | FdFlags::CLOEXEC;
    rustix::io::fcntl_setfd(&owned, flags)?;
    Ok(owned)
}

/// Checks `fd` and turns it into the listener it is, non-blocking as tokio needs.
pub(crate) fn into_listener(fd: OwnedFd) -> io::Result<Listener> {
    // Non-blocking is a flag of the open file that the manager shares; systemd keeps its own
    // listening sockets non-blocking anyway.
    Ok(match classify(fd.as_fd())? {
        Kind::Tcp => {
            let listener = TcpListener::from(fd);
            listener.set_nonblocking(true)?;
            Listener::Tcp(listener)
        }
        Kind::Unix => {
            let listener = UnixListener::from(fd);
            listener.set_nonblocking(true)?;
            Listener::Unix(listener)
        }
        Kind::Udp => {
            let socket = std::net::UdpSocket::from(fd);
            socket.set_nonblocking(true)?;
            Listener::Udp(socket)
        }
    })
}

/// The kinds of inherited socket echo-server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A listening TCP (or MPTCP) socket, IPv4 or IPv6.
    Tcp,
    /// A listening Unix stream socket.
    Unix,
    /// A bound UDP socket, IPv4 or IPv6 (ListenDatagram=).
    Udp,
}

/// What `fd` is, if echo-server can serve it; otherwise an error naming the fd, what it is
/// instead, and the unit setting that would fix it.
pub(crate) fn classify(fd: BorrowedFd<'_>) -> io::Result<Kind> {
    let raw = fd.as_raw_fd();
    let stat = rustix::fs::fstat(fd).map_err(|e| match e {
        Errno::BADF => invalid(format!("socket activation: fd {raw} is not open")),
        e => io::Error::new(
            io::Error::from(e).kind(),
            format!("socket activation: fd {raw}: {e}"),
        ),
    })?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if file_type != FileType::Socket {
        return Err(invalid(format!(
            "socket activation: fd {raw} is not a socket but {}; echo-server serves stream \
             sockets (ListenStream= in the .socket unit)",
            file_kind(file_type)
        )));
    }
    // A socket now (fstat said so), as SockRef requires.
    let socket = SockRef::from(&fd);
    let what = |e: io::Error| io::Error::new(e.kind(), format!("socket activation: fd {raw}: {e}"));
    let ty = socket.r#type().map_err(what)?;
    let ip = matches!(socket.domain().map_err(what)?, Domain::IPV4 | Domain::IPV6);
    if ty == Type::DGRAM && ip {
        return match socket.protocol().map_err(what)? {
            None | Some(Protocol::UDP) => Ok(Kind::Udp),
            Some(other) => Err(invalid(format!(
                "socket activation: fd {raw} is an IP datagram socket of protocol {}, not UDP",
                i32::from(other)
            ))),
        };
    }
    if ty != Type::STREAM {
        return Err(invalid(format!(
            "socket activation: fd {raw} is a {} socket; echo-server serves stream sockets \
             (ListenStream= in the .socket unit) and UDP ones (ListenDatagram=)",
            type_name(ty)
        )));
    }
    let kind = stream_kind(&socket, raw)?;
    if !socket.is_listener().map_err(what)? {
        let transport = if kind == Kind::Tcp { "TCP" } else { "Unix" };
        return Err(invalid(format!(
            "socket activation: fd {raw} is a {transport} socket that is not listening; \
             echo-server needs the listening socket (Accept=no in the .socket unit)"
        )));
    }
    Ok(kind)
}

/// Which stream sockets are served: TCP (or MPTCP) over IPv4 or IPv6, and Unix.
fn stream_kind(socket: &SockRef<'_>, raw: RawFd) -> io::Result<Kind> {
    let what = |e: io::Error| io::Error::new(e.kind(), format!("socket activation: fd {raw}: {e}"));
    let domain = socket.domain().map_err(what)?;
    if domain == Domain::UNIX {
        return Ok(Kind::Unix);
    }
    if domain != Domain::IPV4 && domain != Domain::IPV6 {
        return Err(invalid(format!(
            "socket activation: fd {raw} is a stream socket of address family {}; echo-server \
             serves TCP and Unix stream sockets",
            i32::from(domain)
        )));
    }
    let protocol = socket.protocol().map_err(what)?;
    if !matches!(protocol, None | Some(Protocol::TCP) | Some(Protocol::MPTCP)) {
        return Err(invalid(format!(
            "socket activation: fd {raw} is an IP stream socket of protocol {}, not TCP",
            protocol.map_or(0, i32::from)
        )));
    }
    Ok(Kind::Tcp)
}

fn type_name(ty: Type) -> String {
    match ty {
        Type::DGRAM => "datagram".to_string(),
        Type::SEQPACKET => "seqpacket".to_string(),
        Type::RAW => "raw".to_string(),
        ty => format!("type {}", i32::from(ty)),
    }
}

fn file_kind(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a pipe",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        _ => "an unknown kind of file",
    }
}

impl Listener {
    /// The listening address as a client types it: `127.0.0.1:8080`, `[::1]:8080`,
    /// `unix:/run/echo.sock`, `unix:@echo`.
    pub(crate) fn address(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(listener) => Ok(listener.local_addr()?.to_string()),
            Listener::Unix(listener) => {
                let addr = listener.local_addr()?;
                exact(&addr)?;
                one_line(unix_address(&addr))
            }
            Listener::Udp(socket) => Ok(format!("udp:{}", socket.local_addr()?)),
        }
    }
}

/// Refuses a name that is not UTF-8: shown lossily, the address line would name another
/// path (one anybody could make), and a typed ADDR could not hold it either.
fn exact(addr: &net::SocketAddr) -> io::Result<()> {
    let bytes = match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => path.as_os_str().as_bytes(),
        (None, Some(name)) => name,
        (None, None) => return Ok(()),
    };
    if std::str::from_utf8(bytes).is_err() {
        return Err(invalid(format!(
            "the socket {} has a name that is not UTF-8: the address line cannot name it",
            crate::ui::quote::address(&unix_address(addr))
        )));
    }
    Ok(())
}

/// `address` if it can be the server's one-line address: a manager may hand over a socket
/// whose path holds a newline, which a typed ADDR could never hold.
fn one_line(address: String) -> io::Result<String> {
    if address.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the socket {} holds a control character: the address line must stay one line",
            crate::ui::quote::address(&address)
        )));
    }
    Ok(address)
}

/// A Unix socket address in the `unix:` form. std exposes both names (path and, on Linux,
/// abstract), so no raw getsockname is needed. Bytes that are not UTF-8 are shown lossily.
pub(crate) fn unix_address(addr: &net::SocketAddr) -> String {
    if let Some(path) = addr.as_pathname() {
        format!("unix:{}", path.display())
    } else if let Some(name) = addr.as_abstract_name() {
        format!("unix:@{}", String::from_utf8_lossy(name))
    } else {
        // Linux refuses listen() on an unbound Unix socket, so a listener always has a name.
        "unix: (unnamed)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::net::{TcpStream, UdpSocket};
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};

    const PID: u32 = 4242;

    fn parse(
        pid: Option<&str>,
        fds: Option<&str>,
        names: Option<&str>,
    ) -> io::Result<Option<Handed>> {
        let os = |s: Option<&str>| s.map(OsString::from);
        let (pid, fds, names) = (os(pid), os(fds), os(names));
        parse_env(PID, pid.as_deref(), fds.as_deref(), names.as_deref())
    }

    fn err(pid: Option<&str>, fds: Option<&str>, names: Option<&str>) -> String {
        parse(pid, fds, names).unwrap_err().to_string()
    }

    #[test]
    fn env_ours() {
        let handed = parse(Some("4242"), Some("2"), None).unwrap().unwrap();
        assert_eq!(
            (handed.count, handed.name(0), handed.name(1)),
            (2, None, None)
        );
        let handed = parse(Some("4242"), Some("3"), Some("web:echo.socket:"))
            .unwrap()
            .unwrap();
        let names = vec![
            Some("web".to_string()),
            Some("echo.socket".to_string()),
            None,
        ];
        assert_eq!(handed, Handed { count: 3, names });
        assert_eq!(handed.name(1).as_deref(), Some("echo.socket"));
        assert_eq!(handed.name(2), None);
    }

    #[test]
    fn env_not_ours_is_none() {
        // Another process's sockets (a parent's variables inherited), or no activation at all.
        assert_eq!(parse(Some("4243"), Some("1"), None).unwrap(), None);
        assert_eq!(parse(None, None, None).unwrap(), None);
        assert_eq!(parse(None, Some("1"), None).unwrap(), None);
        assert_eq!(parse(Some("4242"), None, None).unwrap(), None);
        // A wrong pid wins over a malformed count: the count was never meant for us.
        assert_eq!(parse(Some("1"), Some("x"), None).unwrap(), None);
        // Zero descriptors is "not activated", as sd_listen_fds(3) returns 0: ADDR is bound.
        assert_eq!(parse(Some("4242"), Some("0"), None).unwrap(), None);
    }

    #[test]
    fn env_malformed_is_an_error_naming_the_variable() {
        for pid in ["", "abc", "-4242", " 4242", "4242 ", "+4242", "99999999999"] {
            let msg = err(Some(pid), Some("1"), None);
            assert!(
                msg.contains(&format!("LISTEN_PID={pid} is not a process id")),
                "{msg}"
            );
        }
        for fds in ["", "one", "-1", "1 ", "0x2"] {
            let msg = err(Some("4242"), Some(fds), None);
            assert!(
                msg.contains(&format!("LISTEN_FDS={fds} is not a number")),
                "{msg}"
            );
        }
    }

    #[test]
    fn env_too_many_descriptors() {
        let most = (RawFd::MAX - FIRST_FD + 1).to_string();
        assert_eq!(
            parse(Some("4242"), Some(&most), None)
                .unwrap()
                .map(|h| h.count),
            Some(most.parse().unwrap())
        );
        for fds in [
            (RawFd::MAX - FIRST_FD + 2).to_string(),
            u64::MAX.to_string(),
        ] {
            let msg = err(Some("4242"), Some(&fds), None);
            assert!(
                msg.contains("more descriptors than a process can have"),
                "{msg}"
            );
        }
        let msg = err(Some("4242"), Some("18446744073709551616"), None);
        assert!(msg.contains("is not a number"), "{msg}");
    }

    #[test]
    fn env_names_must_match_the_count() {
        let msg = err(Some("4242"), Some("2"), Some("a:b:c"));
        assert!(
            msg.contains("LISTEN_FDNAMES names 3 descriptors but LISTEN_FDS=2"),
            "{msg}"
        );
        let msg = err(Some("4242"), Some("2"), Some("a"));
        assert!(msg.contains("names 1 descriptors"), "{msg}");
    }

    fn refused(fd: BorrowedFd<'_>) -> String {
        let msg = classify(fd).unwrap_err().to_string();
        let raw = fd.as_raw_fd();
        assert!(
            msg.starts_with(&format!("socket activation: fd {raw} ")),
            "{msg}"
        );
        msg
    }

    #[test]
    fn classify_accepts_listening_stream_sockets() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(tcp.as_fd()).unwrap(), Kind::Tcp);
        if let Ok(tcp6) = TcpListener::bind("[::1]:0") {
            assert_eq!(classify(tcp6.as_fd()).unwrap(), Kind::Tcp);
        }
        let dir = tempfile::tempdir().unwrap();
        let unix = UnixListener::bind(dir.path().join("s.sock")).unwrap();
        assert_eq!(classify(unix.as_fd()).unwrap(), Kind::Unix);
        let name = format!("asyncio-tool-test-classify-{}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_unix = UnixListener::bind_addr(&addr).unwrap();
        assert_eq!(classify(abstract_unix.as_fd()).unwrap(), Kind::Unix);
    }

    #[test]
    fn classify_takes_udp_and_refuses_other_datagram_sockets() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(classify(udp.as_fd()).unwrap(), Kind::Udp);
        let (unix_dgram, _peer) = UnixDatagram::pair().unwrap();
        let msg = refused(unix_dgram.as_fd());
        assert!(msg.contains("is a datagram socket; echo-server serves stream sockets (ListenStream= in the .socket unit) and UDP ones (ListenDatagram=)"), "{msg}");
    }

    #[test]
    fn classify_refuses_sockets_that_do_not_listen() {
        let unbound = socket2::Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let msg = refused(unbound.as_fd());
        assert!(
            msg.contains("is a TCP socket that is not listening"),
            "{msg}"
        );
        assert!(msg.contains("Accept=no"), "{msg}");
        // What Accept=yes hands over: one connected socket.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let connected = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(refused(connected.as_fd()).contains("TCP socket that is not listening"));
        let (unix, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(refused(unix.as_fd()).contains("Unix socket that is not listening"));
    }

    #[test]
    fn classify_refuses_what_is_not_a_socket() {
        let (read, _write) = rustix::pipe::pipe().unwrap();
        let msg = refused(read.as_fd());
        assert!(
            msg.contains("is not a socket but a pipe; echo-server serves stream sockets"),
            "{msg}"
        );
        let file = tempfile::tempfile().unwrap();
        assert!(refused(file.as_fd()).contains("is not a socket but a regular file"));
    }

    #[test]
    fn classify_refuses_other_types_and_families() {
        let seq = socket2::Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        assert!(refused(seq.as_fd()).contains("is a seqpacket socket"));
        // ListenStream=vsock:... gives a stream socket of another family. Creating one needs
        // the vsock module, which not every kernel has loaded: checked only where it is.
        if let Ok(vsock) = socket2::Socket::new(Domain::VSOCK, Type::STREAM, None) {
            let msg = refused(vsock.as_fd());
            assert!(msg.contains("stream socket of address family 40"), "{msg}");
        }
    }

    #[test]
    fn addresses_as_a_client_types_them() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        assert_eq!(
            Listener::Tcp(tcp).address().unwrap(),
            format!("127.0.0.1:{port}")
        );
        if let Ok(tcp6) = TcpListener::bind("[::1]:0") {
            let port = tcp6.local_addr().unwrap().port();
            assert_eq!(
                Listener::Tcp(tcp6).address().unwrap(),
                format!("[::1]:{port}")
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sock");
        let unix = UnixListener::bind(&path).unwrap();
        let expected = format!("unix:{}", path.display());
        assert_eq!(Listener::Unix(unix).address().unwrap(), expected);
        let name = format!("asyncio-tool-test-address-{}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_unix = UnixListener::bind_addr(&addr).unwrap();
        assert_eq!(
            Listener::Unix(abstract_unix).address().unwrap(),
            format!("unix:@{name}")
        );
    }
}
