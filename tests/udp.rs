//! UDP echo (issue 13): `echo-server udp:ADDR | -u ADDR` and `echo-client udp:ADDR | -u ADDR`
//! as real processes on real loopback sockets, against each other, raw sockets, nc -u and
//! socat. Every wait is bounded: sockets carry read timeouts, processes a time limit, and a
//! [`Server`] guard kills its child if a test fails midway.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::util::{
    EchoServer, KillOnDrop, assert_no_panic, assert_same_bytes, eventually, other,
    output_with_input, peer_available, peer_output, pty, random_bytes, read_until, std_tool, tool,
};

/// Bound on every socket read and on waiting for a server to come up or stop.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on a client run, the 100 MiB one included (a debug build).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `echo-server` on UDP; its stdout line is the endpoint (`udp:IP:PORT`).
struct Server {
    inner: EchoServer,
    line: String,
}

impl Server {
    /// Starts `echo-server ARGS` and waits for its address line.
    fn start(args: &[&str]) -> Server {
        let mut inner = EchoServer::launch(std_tool(["echo-server"].iter().chain(args)));
        let line = inner.await_line(IO_TIMEOUT).to_owned();
        Server { inner, line }
    }

    /// The address line as printed.
    fn line(&self) -> &str {
        &self.line
    }

    /// The socket address the line names.
    fn addr(&self) -> SocketAddr {
        let rest = self.line.strip_prefix("udp:").expect("udp: address line");
        rest.parse().expect("an IP:PORT after udp:")
    }

    /// SIGTERM, the exit status and everything said on stderr (no panic allowed).
    fn stop(self) -> (ExitStatus, String) {
        self.inner.stop(IO_TIMEOUT)
    }
}

/// A client socket on 127.0.0.1, connected to `server`, with bounded reads.
fn client_socket(server: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.connect(server).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Sends `data` and expects exactly it back.
fn ping(s: &UdpSocket, data: &[u8]) {
    s.send(data).unwrap();
    let mut buf = vec![0u8; 65_536];
    let n = s
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no echo of {} bytes: {e}", data.len()));
    assert_same_bytes("echo", &buf[..n], data);
}

/// A port nothing listens on (UDP): bound, then freed.
fn free_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `echo-client ARGS` with `data` on stdin (a file), bounded.
fn client(args: &[&str], data: &[u8]) -> Output {
    output_with_input(
        std_tool(["echo-client"].iter().chain(args)),
        data,
        RUN_TIMEOUT,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn address_line_is_udp_and_the_client_takes_it_unchanged() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    assert!(
        server.line().starts_with("udp:127.0.0.1:"),
        "{}",
        server.line()
    );
    let out = client(&[server.line()], b"ping\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"ping\n");
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(err.contains("echoed 1 datagram (5 B)"), "{err}");
}

#[test]
fn dash_u_makes_a_plain_addr_udp_for_both() {
    let server = Server::start(&["-u", "127.0.0.1:0"]);
    let port = server.addr().port().to_string();
    let out = client(&["-u", "127.0.0.1", &port], b"one\ntwo\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"one\ntwo\n");
    server.stop();
}

#[test]
fn random_datagrams_of_every_size_up_to_the_maximum_come_back_exact() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let s = client_socket(server.addr());
    let sizes = [
        0, 1, 2, 63, 64, 65, 512, 1024, 1472, 1473, 4096, 8192, 9000, 16_385, 32_768, 65_000,
        65_506, 65_507,
    ];
    for (seed, len) in sizes.into_iter().enumerate() {
        ping(&s, &random_bytes(len, seed as u64 + 1));
    }
    for seed in 100..300u64 {
        let len = (random_bytes(4, seed)
            .iter()
            .map(|&b| b as usize)
            .product::<usize>())
            % 65_508;
        ping(&s, &random_bytes(len, seed));
    }
    // One over the maximum cannot even be sent over IPv4.
    assert!(s.send(&vec![0u8; 65_508]).is_err());
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(
        err.contains(&format!("echoed {} datagrams", sizes.len() + 200)),
        "{err}"
    );
}

#[test]
fn ipv6_datagrams_up_to_65527_bytes() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback here; the IPv6 test is skipped");
        return;
    }
    let server = Server::start(&["udp:[::1]:0"]);
    assert!(server.line().starts_with("udp:[::1]:"), "{}", server.line());
    let s = UdpSocket::bind("[::1]:0").unwrap();
    s.connect(server.addr()).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    for (seed, len) in [1, 1452, 65_507, 65_527].into_iter().enumerate() {
        ping(&s, &random_bytes(len, seed as u64 + 9));
    }
    server.stop();
}

#[test]
fn fifty_concurrent_clients_each_get_their_own_replies() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let addr = server.addr();
    let clients: Vec<_> = (0..50u64)
        .map(|c| {
            thread::spawn(move || {
                let s = client_socket(addr);
                for i in 0..100u64 {
                    let len = 16 + ((c * 131 + i * 17) % 1500) as usize;
                    let mut msg = random_bytes(len, c * 1000 + i + 1);
                    msg[..8].copy_from_slice(&(c * 1000 + i).to_le_bytes());
                    ping(&s, &msg);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(err.contains("echoed 5000 datagrams"), "{err}");
}

/// nc -u connects its socket: a reply from any address but the one it wrote to is dropped.
#[test]
fn a_wildcard_bind_replies_from_the_address_written_to() {
    let server = Server::start(&["udp:0.0.0.0:0"]);
    let port = server.addr().port();
    let to = SocketAddr::from(([127, 0, 0, 2], port));
    // Unconnected, to see the reply's source for itself.
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.send_to(b"where from?\n", to).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"where from?\n");
    assert_eq!(
        from, to,
        "the reply comes from the address the datagram went to"
    );
    // Connected clients: ours, and nc -u.
    let target = format!("udp:127.0.0.2:{port}");
    let out = client(&[&target], b"via 127.0.0.2\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"via 127.0.0.2\n");
    if peer_available("nc.openbsd") {
        let got = nc_u("127.0.0.2", port, b"nc here\n");
        assert_eq!(got, b"nc here\n");
    }
    server.stop();
}

/// `nc -u` (OpenBSD) sending `data` to `host:port`, waiting up to 2 s for replies.
fn nc_u(host: &str, port: u16, data: &[u8]) -> Vec<u8> {
    let port = port.to_string();
    peer_output(
        "nc.openbsd",
        ["-u", "-w", "2", host, &port],
        data,
        RUN_TIMEOUT,
    )
}

/// A socket on a port below 1024 on 127.0.0.1, or `None` (with a note) when not root.
fn low_port_socket() -> Option<UdpSocket> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root, so no port below 1024 can be bound; the test is skipped");
        return None;
    }
    (900..1024).find_map(|p| UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).ok())
}

#[test]
fn datagrams_from_ports_below_1024_are_dropped_counted_and_logged() {
    let Some(low) = low_port_socket() else { return };
    let low_addr = low.local_addr().unwrap();
    let server = Server::start(&["-v", "udp:127.0.0.1:0"]);
    low.connect(server.addr()).unwrap();
    for _ in 0..3 {
        low.send(b"from a service port\n").unwrap();
    }
    // The server handles datagrams in order: once a later one is echoed, the three were seen.
    ping(&client_socket(server.addr()), b"after\n");
    low.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        low.recv(&mut buf)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a datagram from port {} was answered",
        low_addr.port()
    );
    let logged = format!("dropped a datagram from {low_addr}: source port below 1024");
    assert!(
        server.inner.logs_within(IO_TIMEOUT, &logged),
        "{}",
        server.inner.stderr()
    );
    let (status, err) = server.stop();
    assert!(status.success());
    assert_eq!(
        err.matches(&logged).count(),
        1,
        "at most once a second: {err}"
    );
    assert!(
        err.contains("echoed 1 datagram (6 B)")
            && err.contains("; dropped 3: 3 source port below 1024"),
        "{err}"
    );
}

/// Another echo server on the same port (here: a socket on 127.0.0.2 with the server's port)
/// would answer every answer: an endless loop between the two.
#[test]
fn datagrams_from_the_servers_own_port_are_dropped() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let port = server.addr().port();
    let twin = UdpSocket::bind(("127.0.0.2", port)).unwrap();
    twin.connect(server.addr()).unwrap();
    twin.send(b"loop?\n").unwrap();
    ping(&client_socket(server.addr()), b"after\n");
    twin.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        twin.recv(&mut buf)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a datagram from the server's own port was answered"
    );
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(
        err.contains("; dropped 1: 1 source port is the server's own (an echo loop)"),
        "{err}"
    );
}

/// A socket that may send to a broadcast address, on 127.0.0.1.
fn broadcasting_socket() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_broadcast(true).unwrap();
    s
}

/// One datagram to a directed broadcast address (127.255.255.255, lo's) would draw a reply
/// from every echo server on the network: on a wildcard bind it is dropped and counted as
/// such, never tried.
#[test]
fn a_wildcard_bind_drops_datagrams_sent_to_a_broadcast_address() {
    let server = Server::start(&["udp:0.0.0.0:0"]);
    let port = server.addr().port();
    let s = broadcasting_socket();
    s.send_to(b"to all\n", ("127.255.255.255", port)).unwrap();
    ping(
        &client_socket(SocketAddr::from(([127, 0, 0, 1], port))),
        b"after\n",
    );
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        s.recv_from(&mut buf)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a broadcast datagram was answered"
    );
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(
        err.contains("echoed 1 datagram (6 B)")
            && err.contains("; dropped 1: 1 sent to a broadcast or multicast address")
            && !err.contains("could not be sent"),
        "{err}"
    );
}

/// Linux lets a socket bind a broadcast address, which then receives every broadcast to it:
/// such a server must not answer them either.
#[test]
fn a_server_bound_to_a_broadcast_address_answers_no_broadcast() {
    let server = Server::start(&["-v", "udp:127.255.255.255:0"]);
    let s = broadcasting_socket();
    s.send_to(b"to all\n", server.addr()).unwrap();
    let logged = "to 127.255.255.255: sent to a broadcast or multicast address";
    assert!(
        server.inner.logs_within(IO_TIMEOUT, logged),
        "{}",
        server.inner.stderr()
    );
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        s.recv_from(&mut buf)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a broadcast datagram was answered"
    );
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(
        err.contains("echoed 0 datagrams") && err.contains("; dropped 1: 1 sent to a broadcast"),
        "{err}"
    );
}

/// systemd's `ListenDatagram=PORT` hands over a dual-stack `[::]` socket: IPv4 datagrams come
/// with v4-mapped addresses, and still get their reply from the address they were sent to,
/// while one sent to a broadcast address is dropped as such (not tried and refused).
#[test]
fn a_dual_stack_socket_handed_over_tells_ipv4_broadcasts() {
    let dual = match socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("note: no IPv6 socket here ({e}); the test is skipped");
            return;
        }
    };
    dual.set_only_v6(false).unwrap();
    dual.bind(&"[::]:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let port = dual.local_addr().unwrap().as_socket().unwrap().port();
    let mut server = KillOnDrop(crate::activation::activated(
        vec![std::os::fd::OwnedFd::from(dual)],
        &[],
        &[],
    ));
    let mut stderr = server.0.stderr.take().unwrap();
    let stderr = thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut all);
        all
    });
    let (ok, lines) = read_until(server.0.stdout.take().unwrap(), b"\n", IO_TIMEOUT);
    assert!(ok, "no address line: {}", text(&lines));
    let s = broadcasting_socket();
    s.send_to(b"to all\n", ("127.255.255.255", port)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let to = SocketAddr::from(([127, 0, 0, 2], port));
    s.send_to(b"after\n", to).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"after\n"[..], to),
        "only the unicast one, from its address"
    );
    crate::util::signal(&server.0, libc::SIGTERM);
    let status = crate::util::wait_timeout(&mut server.0, IO_TIMEOUT);
    let err = stderr.join().unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("echoed 1 datagram (6 B)")
            && err.contains("; dropped 1: 1 sent to a broadcast or multicast address")
            && !err.contains("could not be sent"),
        "{err}"
    );
}

/// With two sockets handed over, one socket's port is as much the server's own as the other's:
/// a datagram to one from the other's port would start a loop between the two. (The sender
/// here is a third address with that port, which gets no reply instead of looping.)
#[test]
fn datagrams_from_another_of_the_servers_own_ports_are_dropped() {
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    let second = UdpSocket::bind("127.0.0.2:0").unwrap();
    let (to, other_port) = (
        first.local_addr().unwrap(),
        second.local_addr().unwrap().port(),
    );
    let mut server = KillOnDrop(crate::activation::activated(
        vec![first.into(), second.into()],
        &[],
        &[],
    ));
    let mut stderr = server.0.stderr.take().unwrap();
    let stderr = thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut all);
        all
    });
    let (ok, lines) = read_until(server.0.stdout.take().unwrap(), b"127.0.0.2", IO_TIMEOUT);
    assert!(ok, "no address lines: {}", text(&lines));
    let twin = UdpSocket::bind(("127.0.0.3", other_port)).unwrap();
    twin.connect(to).unwrap();
    twin.send(b"loop?\n").unwrap();
    ping(&client_socket(to), b"after\n");
    twin.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        twin.recv(&mut buf)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a datagram from the server's other port was answered"
    );
    crate::util::signal(&server.0, libc::SIGTERM);
    let status = crate::util::wait_timeout(&mut server.0, IO_TIMEOUT);
    let err = stderr.join().unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("; dropped 1: 1 source port is the server's own (an echo loop)"),
        "{err}"
    );
}

#[test]
fn the_server_stops_on_sigint_with_its_summary() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    ping(&client_socket(server.addr()), b"x");
    server.inner.signal(libc::SIGINT);
    let mut inner = server.inner;
    let status = inner.wait(IO_TIMEOUT);
    assert!(status.success());
    let err = inner.stderr();
    assert!(err.contains("echoed 1 datagram (1 B)"), "{err}");
}

#[test]
fn the_client_ends_with_exit_0_when_every_reply_came_back() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let input: Vec<u8> = (0..500)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let out = client(&[server.line()], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_bytes("output", &out.stdout, &input);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    server.stop();
}

/// A UDP server in the test that answers each datagram it receives with what `answer` returns
/// for it (nothing, the datagram, two copies, another one...), until the flag is set.
fn fake_server(
    mut answer: impl FnMut(Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
) -> (SocketAddr, Arc<AtomicBool>) {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = s.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !stopped.load(Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            for reply in answer(buf[..n].to_vec()) {
                let _ = s.send_to(&reply, from);
            }
        }
    });
    (addr, stop)
}

/// A UDP echo server in the test that drops every tenth datagram it receives.
fn lossy_server() -> (SocketAddr, Arc<AtomicBool>) {
    let mut count = 0u64;
    fake_server(move |d| {
        count += 1;
        if count % 10 == 0 { vec![] } else { vec![d] }
    })
}

#[test]
fn the_client_ends_with_exit_1_counting_lost_datagrams() {
    let (addr, stop) = lossy_server();
    let input: Vec<u8> = (0..100)
        .flat_map(|i| format!("n{i}\n").into_bytes())
        .collect();
    let target = format!("udp:{addr}");
    let out = client(&["--idle-timeout", "300ms", &target], &input);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("asyncio-tool: 10 of 100 datagrams got no reply ({target})\n")
    );
    let want: Vec<u8> = (0..100)
        .filter(|i| (i + 1) % 10 != 0)
        .flat_map(|i| format!("n{i}\n").into_bytes())
        .collect();
    assert_eq!(text(&out.stdout), text(&want));
}

/// Counting replies is not enough: three duplicates must not pass for three echoes, nor hide
/// that the client stopped before the last datagram's reply.
#[test]
fn duplicated_replies_answer_nothing_and_the_client_exits_1() {
    let mut count = 0;
    let (addr, stop) = fake_server(move |d| {
        count += 1;
        if count <= 3 {
            vec![d.clone(), d]
        } else {
            vec![d]
        }
    });
    let target = format!("udp:{addr}");
    let out = client(&[&target], b"a\nb\nc\nd\n");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "asyncio-tool: 3 replies matched no datagram sent: duplicated or altered ({target})\n"
        )
    );
    // Printed as they came: the user sees what the server sent.
    assert_eq!(text(&out.stdout), "a\na\nb\nb\nc\nc\nd\n");
}

/// A server that drops half and sends the other half twice gives back as many datagrams as
/// were sent, and two of them never came back.
#[test]
fn duplicates_do_not_stand_in_for_lost_datagrams() {
    let mut count = 0;
    let (addr, stop) = fake_server(move |d| {
        count += 1;
        if count % 2 == 0 {
            vec![d.clone(), d]
        } else {
            vec![]
        }
    });
    let target = format!("udp:{addr}");
    let out = client(&["--idle-timeout", "300ms", &target], b"a\nb\nc\nd\n");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "asyncio-tool: 2 of 4 datagrams got no reply, and 2 replies matched none sent \
             ({target})\n"
        )
    );
    assert_eq!(text(&out.stdout), "b\nb\nd\nd\n");
}

/// Replies that differ from every datagram sent answer none of them, and the client still ends
/// --idle-timeout after its last datagram, however many such replies come.
#[test]
fn altered_replies_answer_nothing() {
    let (addr, stop) = fake_server(|mut d| {
        d.insert(0, b'X');
        vec![d]
    });
    let target = format!("udp:{addr}");
    let out = client(&["--idle-timeout", "300ms", &target], b"a\nb\n");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "asyncio-tool: 2 of 2 datagrams got no reply, and 2 replies matched none sent \
             ({target})\n"
        )
    );
    assert_eq!(text(&out.stdout), "Xa\nXb\n");
}

/// UDP may reorder: every datagram came back, in another order, so the client exits 0.
#[test]
fn reordered_replies_all_count() {
    let mut held: Option<Vec<u8>> = None;
    let (addr, stop) = fake_server(move |d| match held.take() {
        Some(first) => vec![d, first],
        None => {
            held = Some(d);
            vec![]
        }
    });
    let out = client(&[&format!("udp:{addr}")], b"a\nb\nc\nd\n");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "b\na\nd\nc\n");
}

/// A datagram written off after a silence still counts when its reply comes late, while more
/// input is being sent; the reply that comes is matched by its bytes.
#[test]
fn a_late_reply_still_answers_a_written_off_datagram() {
    let mut held: Option<Vec<u8>> = None;
    // The first datagram's reply is held back until the second one arrives.
    let (addr, stop) = fake_server(move |d| match held.take() {
        Some(first) => vec![first, d],
        None => {
            held = Some(d);
            vec![]
        }
    });
    let mut child = KillOnDrop(
        std_tool([
            "echo-client",
            "-v",
            "--idle-timeout",
            "200ms",
            &format!("udp:{addr}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let stdout = child.0.stdout.take().unwrap();
    stdin.write_all(b"early\n").unwrap();
    let (seen, got) = read_until(stderr, b"written off", IO_TIMEOUT);
    assert!(seen, "never wrote the datagram off: {}", text(&got));
    stdin.write_all(b"later\n").unwrap();
    drop(stdin);
    let (_, printed) = read_until(stdout, b"later\n", IO_TIMEOUT);
    let status = crate::util::wait_timeout(&mut child.0, IO_TIMEOUT);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(text(&printed), "early\nlater\n");
    assert_eq!(status.code(), Some(0), "the late reply did not count");
}

#[test]
fn the_client_with_no_server_says_connection_refused() {
    let port = free_port();
    let started = std::time::Instant::now();
    let out = client(&[&format!("udp:127.0.0.1:{port}")], b"anyone?\n");
    assert_no_panic(&out.stderr);
    // Promptly: the ICMP error, not the 1 s wait for replies, ends it (a generous bound).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("asyncio-tool: cannot send to udp:127.0.0.1:{port}: Connection refused\n")
    );
    assert!(out.stdout.is_empty());
}

/// A multicast address would draw a reply from every echo server in the group, none of which
/// a connected socket takes: refused before anything is sent.
#[test]
fn the_client_refuses_a_multicast_address() {
    for (target, ip) in [
        ("udp:224.0.0.1:7", "224.0.0.1"),
        ("udp:[ff02::1]:7", "ff02::1"),
        ("udp:[::ffff:239.1.2.3]:7", "::ffff:239.1.2.3"),
    ] {
        let out = client(&[target], b"to everyone\n");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!(
                "asyncio-tool: cannot send to {target}: {ip} is a multicast address; an echo \
                 client talks to one server\n"
            )
        );
    }
}

/// Lines of random bytes and random lengths (some far longer than a datagram), `len` bytes.
fn random_lines(len: usize, seed: u64) -> Vec<u8> {
    let mut data = random_bytes(len, seed);
    let mut at = 0usize;
    let mut state = seed;
    while at < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let line = if state >> 60 == 0 {
            150_000
        } else {
            (state >> 33) as usize % 16_384
        };
        at += line + 1;
        if at < len {
            data[at] = b'\n';
        }
    }
    data
}

#[test]
fn a_100_mib_file_goes_through_our_server_intact() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let data = random_lines(100 << 20, 42);
    let out = client(&[server.line()], &data);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_bytes("output", &out.stdout, &data);
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(err.contains("(100 MiB)"), "{err}");
}

#[test]
fn binary_input_without_newlines_is_cut_at_the_maximum_datagram() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let data: Vec<u8> = random_bytes(200_000, 5)
        .into_iter()
        .map(|b| if b == b'\n' { 0 } else { b })
        .collect();
    let out = client(&[server.line()], &data);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_bytes("output", &out.stdout, &data);
    let (_, err) = server.stop();
    // 200,000 bytes in datagrams of at most 65,507: 3 full ones and the rest.
    assert!(err.contains("echoed 4 datagrams (195.31 KiB)"), "{err}");
}

/// An IPv4-mapped IPv6 address is IPv4 on the wire: a long line is cut at IPv4's maximum,
/// not IPv6's (which the kernel would refuse as too long).
#[test]
fn a_v4_mapped_address_is_cut_at_the_ipv4_maximum() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let port = server.addr().port();
    let data = vec![b'm'; 200_000];
    let out = client(&[&format!("udp:[::ffff:127.0.0.1]:{port}")], &data);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_bytes("output", &out.stdout, &data);
    server.stop();
}

#[test]
fn nc_u_and_socat_as_clients_of_our_server() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let port = server.addr().port();
    if peer_available("nc.openbsd") {
        assert_eq!(
            nc_u("127.0.0.1", port, b"hello from nc\n"),
            b"hello from nc\n"
        );
    }
    if peer_available("socat") {
        let to = format!("UDP:127.0.0.1:{port}");
        let got = peer_output(
            "socat",
            ["-t", "2", "-", &to],
            b"hello from socat\n",
            RUN_TIMEOUT,
        );
        assert_eq!(got, b"hello from socat\n");
    }
    server.stop();
}

#[test]
fn our_client_against_socat_udp_recvfrom_fork() {
    if !peer_available("socat") {
        return;
    }
    let port = free_port();
    let listen = format!("UDP-RECVFROM:{port},bind=127.0.0.1,fork");
    let socat = KillOnDrop(
        other("socat")
            .args([&listen, "PIPE"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let hex = format!(":{port:04X} ");
    assert!(
        eventually(IO_TIMEOUT, || std::fs::read_to_string("/proc/net/udp")
            .is_ok_and(|t| t.contains(&hex))),
        "socat never bound port {port}"
    );
    let input = b"alpha\nbeta\ngamma\n";
    let out = client(&[&format!("udp:127.0.0.1:{port}")], input);
    drop(socat);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A process per datagram: the replies may come back in any order.
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["alpha", "beta", "gamma"]);
}

#[test]
fn interactive_each_typed_line_is_answered_and_ctrl_d_ends() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let term = pty();
    let mut master = term.master.try_clone().unwrap();
    let mut child = std_tool(["echo-client", server.line()])
        .stdin(term.slave.try_clone().unwrap())
        .stdout(Stdio::piped())
        .stderr(term.slave)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    master.write_all(b"first\n").unwrap();
    let (seen, got) = read_until(stdout, b"first\n", IO_TIMEOUT);
    assert!(seen, "no reply to a typed line: {}", text(&got));
    master.write_all(&[4]).unwrap(); // Ctrl-D
    let status = crate::util::wait_timeout(&mut child.0, IO_TIMEOUT);
    assert!(status.success());
    server.stop();
}

#[test]
fn option_conflicts_are_usage_errors_naming_the_conflict() {
    let cases: [(&[&str], &str); 10] = [
        (
            &["echo-server", "-u", "--shutdown-timeout", "1s", "0"],
            "--shutdown-timeout lets open connections finish, and UDP has none",
        ),
        (
            &["echo-server", "-u", "--max-connections", "5", "0"],
            "--max-connections limits connections, and UDP has none",
        ),
        (
            &["echo-server", "udp:127.0.0.1:0", "--idle-timeout", "5s"],
            "--idle-timeout closes idle connections, and UDP has none",
        ),
        (
            &["echo-server", "-u", "-U", "/tmp/x.sock"],
            "cannot be used with",
        ),
        (
            &["echo-server", "-u", "unix:/tmp/x.sock"],
            "-u/--udp takes an IP address and port, and this is a Unix socket",
        ),
        (
            &["echo-client", "-u", "-U", "/tmp/x.sock"],
            "cannot be used with",
        ),
        (
            &["echo-client", "-U", "udp:127.0.0.1:7"],
            "-U/--unix takes a socket path, and this is a UDP address",
        ),
        (
            &["echo-client", "-u", "tcp:127.0.0.1:7"],
            "-u/--udp takes a UDP address, and this is a TCP address",
        ),
        (
            &["echo-client", "--wait", "1s", "udp:127.0.0.1:7"],
            "--wait retries a connection",
        ),
        (
            &["echo-client", "udp:127.0.0.1:0"],
            "port 0 cannot be connected to",
        ),
    ];
    for (args, want) in cases {
        let out = tool(args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
}

#[test]
fn progress_forced_shows_datagrams_and_leaves_stdout_alone() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let input: Vec<u8> = (0..2000)
        .flat_map(|i| format!("p{i}\n").into_bytes())
        .collect();
    let out = client(&["--progress", server.line()], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_bytes("output", &out.stdout, &input);
    assert!(
        text(&out.stderr).contains(" in flight · "),
        "{}",
        text(&out.stderr)
    );
    server.stop();
}

/// Sends one UDP datagram that claims to come from `from` (a raw socket: root only), or says
/// why it cannot.
fn spoof(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Result<(), String> {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        return Err("IPv4 only".into());
    };
    // SAFETY: plain socket(2); the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // IPPROTO_RAW implies IP_HDRINCL; the kernel fills in the checksum, total length and id.
    let udp_len = 8 + payload.len();
    let mut packet = vec![
        0x45,
        0,
        0,
        0,
        0,
        0,
        0x40,
        0,
        64,
        libc::IPPROTO_UDP as u8,
        0,
        0,
    ];
    packet.extend_from_slice(&from.ip().octets());
    packet.extend_from_slice(&to.ip().octets());
    packet.extend_from_slice(&from.port().to_be_bytes());
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&(udp_len as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    packet.extend_from_slice(payload);
    packet[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(*to.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: the buffer and the address are live and of the sizes given.
    let sent = unsafe {
        libc::sendto(
            fd,
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let result = if sent < 0 {
        Err(std::io::Error::last_os_error().to_string())
    } else {
        Ok(())
    };
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    result
}

/// The number N in a summary's "echoed N datagram(s)".
fn echoed(summary: &str) -> u64 {
    let rest = summary
        .split("echoed ")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary: {summary}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

/// One forged datagram from one of our servers to another (both on high ports) would have them
/// answer each other for ever, tens of thousands of datagrams a second: each must see its own
/// replies come back and stop answering them.
#[test]
fn two_servers_set_against_each_other_stop_the_loop() {
    let a = Server::start(&["-v", "udp:127.0.0.1:0"]);
    let b = Server::start(&["-v", "udp:127.0.0.1:0"]);
    if let Err(why) = spoof(a.addr(), b.addr(), b"loop me\n") {
        eprintln!("note: cannot forge a datagram here ({why}); the test is skipped");
        return;
    }
    let logged = "source keeps sending back what it was sent (a packet loop)";
    assert!(
        b.inner.logs_within(IO_TIMEOUT, logged) || a.inner.logs_within(IO_TIMEOUT, logged),
        "{}",
        b.inner.stderr()
    );
    // Long enough for the loop to have gone on: it answers in microseconds.
    thread::sleep(Duration::from_millis(1500));
    // Both still serve real clients, the same bytes again and again included.
    ping(&client_socket(a.addr()), b"loop me\n");
    ping(&client_socket(b.addr()), b"loop me\n");
    let (_, a_err) = a.stop();
    let (_, b_err) = b.stop();
    for err in [&a_err, &b_err] {
        assert!(echoed(err) < 100, "the loop went on: {err}");
    }
    assert!(
        a_err.contains("1 source keeps sending back") || b_err.contains("1 source keeps"),
        "{a_err}\n{b_err}"
    );
}

/// A loop of many forged datagrams, identical or not, dies too: the guard takes them out one at
/// a time, each after at most 66 echoes.
#[test]
fn a_loop_of_fifty_forged_datagrams_dies_one_at_a_time() {
    for same in [false, true] {
        let a = Server::start(&["udp:127.0.0.1:0"]);
        let b = Server::start(&["udp:127.0.0.1:0"]);
        for i in 0..50 {
            let payload = if same {
                "loop me\n".to_owned()
            } else {
                format!("loop {i}\n")
            };
            if let Err(why) = spoof(a.addr(), b.addr(), payload.as_bytes()) {
                eprintln!("note: cannot forge a datagram here ({why}); the test is skipped");
                return;
            }
        }
        // Long enough for a loop that was not stopped to echo hundreds of thousands.
        thread::sleep(Duration::from_millis(2000));
        ping(&client_socket(a.addr()), b"loop me\n");
        let (_, a_err) = a.stop();
        let (_, b_err) = b.stop();
        for err in [&a_err, &b_err] {
            assert!(
                echoed(err) <= 50 * 67,
                "same: {same}: the loop went on: {err}"
            );
        }
        let dropped = |err: &str| err.contains("source keeps sending back");
        assert!(dropped(&a_err) || dropped(&b_err), "{a_err}\n{b_err}");
    }
}

/// A client that repeats itself (a file sent twice, a run of blank lines) loses nothing to the
/// loop guard: a copy of what was new is no strike, and 64 strikes make one drop.
#[test]
fn a_client_repeating_itself_loses_nothing_to_the_loop_guard() {
    let server = Server::start(&["udp:127.0.0.1:0"]);
    let file: Vec<u8> = (0..1000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let twice = [file.as_slice(), &file].concat();
    // 64 blank lines in a row (beyond the first two, the guard's count of strikes).
    let blank = vec![b'\n'; 66];
    for input in [&twice, &blank] {
        let out = client(&[server.line()], input);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_same_bytes("output", &out.stdout, input);
    }
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(!err.contains("dropped"), "{err}");
}

/// A directed broadcast address (lo's 127.255.255.255) as a source is as forged as the
/// limited one: dropped as such, never tried (the kernel would refuse the reply).
#[test]
fn datagrams_from_a_directed_broadcast_address_are_dropped_as_such() {
    let server = Server::start(&["-v", "udp:127.0.0.1:0"]);
    let from: SocketAddr = "127.255.255.255:4000".parse().unwrap();
    if let Err(why) = spoof(from, server.addr(), b"from all\n") {
        eprintln!("note: cannot forge a datagram here ({why}); the test is skipped");
        return;
    }
    ping(&client_socket(server.addr()), b"after\n");
    let (status, err) = server.stop();
    assert!(status.success());
    assert!(
        err.contains("echoed 1 datagram (6 B)")
            && err.contains("; dropped 1: 1 broadcast or multicast source")
            && !err.contains("could not be sent"),
        "{err}"
    );
}

/// A broadcast address, the limited one or a directed one (lo's 127.255.255.255), would draw
/// a reply from every echo server on the network: refused before anything is sent, as a
/// multicast address is, not a bare "Permission denied".
#[test]
fn the_client_refuses_a_broadcast_address() {
    for (target, ip) in [
        ("udp:127.255.255.255:7", "127.255.255.255"),
        ("udp:255.255.255.255:7", "255.255.255.255"),
        ("udp:[::ffff:127.255.255.255]:7", "::ffff:127.255.255.255"),
    ] {
        let out = client(&[target], b"to everyone\n");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!(
                "asyncio-tool: cannot send to {target}: {ip} is a broadcast address; an echo \
                 client talks to one server\n"
            )
        );
    }
}

/// A server that takes every datagram and answers none is noticed within --idle-timeout:
/// the client stops sending and says how many went unanswered, instead of writing off a
/// window per timeout for hours (200,000 lines would take 15 minutes at 64 per 300 ms).
#[test]
fn a_silent_server_is_noticed_within_the_idle_timeout() {
    let (addr, stop) = fake_server(|_| vec![]);
    let target = format!("udp:{addr}");
    let input = short_lines(200_000);
    let started = std::time::Instant::now();
    let out = output_with_input(
        std_tool(["echo-client", "--idle-timeout", "300ms", &target]),
        &input,
        Duration::from_secs(30),
    );
    stop.store(true, Ordering::Relaxed);
    assert_no_panic(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let sent: u64 = err
        .strip_prefix("asyncio-tool: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((1..=64).contains(&sent), "{err}");
    assert_eq!(
        err,
        format!(
            "asyncio-tool: {sent} of {sent} datagrams got no reply ({target}): nothing came \
             back for 300ms, so the rest of standard input was not sent\n"
        )
    );
    assert!(out.stdout.is_empty());
}

/// A server that stops answering halfway is noticed too (one write-off after its last reply,
/// then a window with no reply at all), while a lossy one that keeps answering is not cut off.
#[test]
fn a_server_that_falls_silent_midway_is_noticed() {
    let mut count = 0u64;
    let (addr, stop) = fake_server(move |d| {
        count += 1;
        if count <= 1000 { vec![d] } else { vec![] }
    });
    let target = format!("udp:{addr}");
    let input = short_lines(200_000);
    let started = std::time::Instant::now();
    let out = output_with_input(
        std_tool(["echo-client", "--idle-timeout", "300ms", &target]),
        &input,
        Duration::from_secs(30),
    );
    stop.store(true, Ordering::Relaxed);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("datagrams got no reply")
            && err.ends_with("so the rest of standard input was not sent\n"),
        "{err}"
    );
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, 1000, "every reply printed");
}

/// A server that drops one datagram in fifty but answers the rest is served to the end: its
/// clogged windows are written off and sending goes on, as before.
#[test]
fn a_lossy_server_that_keeps_answering_gets_all_the_input() {
    let mut count = 0u64;
    let (addr, stop) = fake_server(move |d| {
        count += 1;
        if count % 50 == 0 { vec![] } else { vec![d] }
    });
    let target = format!("udp:{addr}");
    let input = short_lines(5000);
    let out = client(&["--idle-timeout", "200ms", &target], &input);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("asyncio-tool: 100 of 5000 datagrams got no reply ({target})\n")
    );
}

/// `line 0`, `line 1`... each with its newline.
fn short_lines(count: u64) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect()
}

/// A server that answers every datagram with something else answers none of them: noticed as
/// a silent one is, rather than after the whole input a window per timeout.
#[test]
fn a_server_that_only_alters_is_noticed_within_the_idle_timeout() {
    let (addr, stop) = fake_server(|mut d| {
        d.insert(0, b'X');
        vec![d]
    });
    let target = format!("udp:{addr}");
    let started = std::time::Instant::now();
    let out = output_with_input(
        std_tool(["echo-client", "--idle-timeout", "300ms", &target]),
        &short_lines(200_000),
        Duration::from_secs(30),
    );
    stop.store(true, Ordering::Relaxed);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("datagrams got no reply, and ")
            && err.ends_with(
                "no reply matched a datagram sent for 300ms, so the rest of standard input was \
                 not sent\n"
            ),
        "{err}"
    );
}
