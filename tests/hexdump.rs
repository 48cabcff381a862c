//! `-x/--hex-dump`: the traffic as a hex dump on stderr, per direction and connection, while
//! stdout keeps exactly the echo. Every dump is parsed back here, line by line: a line that is
//! neither a chunk header nor a `hexdump -C` line of it fails the test, and the bytes each
//! direction's lines hold must be exactly the bytes that went that way.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;

const LIMIT: Duration = Duration::from_secs(30);

/// One chunk of a dump: its header's words and the bytes its lines hold.
#[derive(Debug)]
struct Block {
    dir: char,
    peer: String,
    from: u64,
    bytes: Vec<u8>,
}

/// Every chunk in `stderr`, checked: each header's time, length, from and to; each line's
/// offset, hex and ASCII gutter (printable ASCII as itself, anything else as `.`). Lines
/// that are neither (messages) are skipped only when `messages` allows.
fn parse(stderr: &str, messages: bool) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut want_len = 0;
    for line in stderr.lines() {
        if line.starts_with("> ") || line.starts_with("< ") {
            if let Some(last) = blocks.last() {
                assert_eq!(last.bytes.len(), want_len, "short chunk before {line:?}");
            }
            let (block, len) = header(line);
            blocks.push(block);
            want_len = len;
            continue;
        }
        if messages && !is_hex_line(line) {
            continue;
        }
        let block = blocks
            .last_mut()
            .unwrap_or_else(|| panic!("a line before any header: {line:?}"));
        hex_line(line, block);
    }
    if let Some(last) = blocks.last() {
        assert_eq!(last.bytes.len(), want_len, "short last chunk");
    }
    blocks
}

/// Whether `line` has the shape of a dump's hex line: a hex offset, then two spaces.
fn is_hex_line(line: &str) -> bool {
    line.split_once("  ")
        .is_some_and(|(o, _)| o.len() >= 8 && o.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A header `> 2026-12-06T16:00:00.123456Z PEER length=N from=X to=Y`, and its length.
fn header(line: &str) -> (Block, usize) {
    let mut words = line.splitn(3, ' ');
    let dir = words.next().unwrap().chars().next().unwrap();
    let time = words.next().unwrap();
    assert!(
        time.len() == 27 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "time {time:?} in {line:?}"
    );
    let rest = words.next().unwrap();
    let (peer, place) = rest.split_once(" length=").expect(line);
    let mut fields = place.split(' ');
    let len: usize = fields.next().unwrap().parse().expect(line);
    let from: u64 = fields
        .next()
        .and_then(|f| f.strip_prefix("from="))
        .expect(line)
        .parse()
        .unwrap();
    match fields.next() {
        Some(to) => assert_eq!(to, format!("to={}", from + len as u64 - 1), "{line}"),
        None => assert_eq!(len, 0, "{line}"),
    }
    let block = Block {
        dir,
        peer: peer.to_owned(),
        from,
        bytes: Vec::new(),
    };
    (block, len)
}

/// A `hexdump -C` line of `block`, its bytes added to it.
fn hex_line(line: &str, block: &mut Block) {
    let (offset, rest) = line.split_once("  ").expect(line);
    let at = block.from + block.bytes.len() as u64;
    assert_eq!(
        u64::from_str_radix(offset, 16).expect(line),
        at,
        "offset in {line:?}"
    );
    assert!(offset.len() >= 8, "{line:?}");
    let (hex, gutter) = rest.split_once("  |").expect(line);
    assert_eq!(hex.len(), 48, "hex columns in {line:?}");
    let bytes: Vec<u8> = hex
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect(line))
        .collect();
    assert!(!bytes.is_empty() && bytes.len() <= 16, "{line:?}");
    let shown: String = bytes
        .iter()
        .map(|&b| match b {
            0x20..=0x7e => char::from(b),
            _ => '.',
        })
        .collect();
    assert_eq!(gutter, format!("{shown}|"), "ASCII gutter of {line:?}");
    block.bytes.extend_from_slice(&bytes);
}

/// The bytes that went `dir` with `peer` (any peer if `None`), checking that the chunks
/// follow each other in the stream.
fn stream(blocks: &[Block], dir: char, peer: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    for b in blocks
        .iter()
        .filter(|b| b.dir == dir && peer.is_none_or(|p| b.peer == p))
    {
        assert_eq!(b.from, out.len() as u64, "a gap or overlap before {b:?}");
        out.extend_from_slice(&b.bytes);
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `echo-client ARGS` with `data` on stdin from a file.
fn client(args: &[&str], data: &[u8]) -> Output {
    let out = output_with_input(std_tool(["echo-client"].iter().chain(args)), data, LIMIT);
    assert_no_panic(&out.stderr);
    out
}

/// Our server on `listen`, and the address it printed.
fn our_server(listen: &[&str]) -> (EchoServer, String) {
    let mut server = EchoServer::launch(std_tool(["echo-server"].iter().chain(listen)));
    let line = server.await_line(LIMIT).to_owned();
    (server, line)
}

/// Asserts `out` is a clean run: exit 0, stdout exactly `data`, and a dump on stderr holding
/// exactly `data` each way with `peer`; returns the chunks.
fn assert_dumped(out: &Output, data: &[u8], peer: &str) -> Vec<Block> {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_same_bytes("stdout", &out.stdout, data);
    let blocks = parse(&err, false);
    assert!(blocks.iter().all(|b| b.peer == peer), "{err}");
    assert_same_bytes("dump of what was sent", &stream(&blocks, '>', None), data);
    assert_same_bytes("dump of the echo", &stream(&blocks, '<', None), data);
    blocks
}

const SMALL: &[u8] = b"hello\nworld\x01\xff\x1b[2J\n";

#[test]
fn a_small_exchange_with_our_server_is_dumped_both_ways() {
    let (_server, addr) = our_server(&["127.0.0.1:0"]);
    for flag in ["-x", "--hex-dump"] {
        let out = client(&[flag, &addr], SMALL);
        let blocks = assert_dumped(&out, SMALL, &addr);
        let err = text(&out.stderr);
        // One read each way: the whole input, then its echo, in that order.
        assert_eq!(blocks.len(), 2, "{err}");
        assert_eq!((blocks[0].dir, blocks[1].dir), ('>', '<'), "{err}");
        assert!(
            err.contains("00000000  68 65 6c 6c 6f 0a 77 6f  72 6c 64 01 ff 1b 5b 32  |hello.world...[2|\n00000010  4a 0a "),
            "{err}"
        );
        assert!(
            !err.contains('\x1b'),
            "a received escape reached stderr raw"
        );
    }
}

#[test]
fn the_dump_shows_under_quiet_and_without_it_nothing_is_dumped() {
    let (_server, addr) = our_server(&["127.0.0.1:0"]);
    let out = client(&["-q", "-x", &addr], SMALL);
    assert_dumped(&out, SMALL, &addr);
    let out = client(&[&addr], SMALL);
    assert_eq!(out.stdout, SMALL);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// Stdin and stdout are pipes, where the client splices when not dumping: with -x every
/// byte of a 1 MiB transfer must still be in the dump, and stdout exact.
#[test]
fn a_mebibyte_through_pipes_is_exact_and_wholly_dumped() {
    let (_server, addr) = our_server(&["127.0.0.1:0"]);
    let data = random_bytes(1 << 20, 0x6e7);
    let mut child = std_tool(["echo-client", "-x", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = output_timeout(child, LIMIT);
    feeder.join().unwrap();
    let blocks = assert_dumped(&out, &data, &addr);
    assert!(blocks.len() >= 2 * 8, "1 MiB in {} chunks", blocks.len());
}

#[test]
fn over_a_unix_socket_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let unix = format!("unix:{}", path.display());
    let (_server, addr) = our_server(&[&unix]);
    assert_eq!(addr, unix);
    let out = client(&["-x", &addr], SMALL);
    assert_dumped(&out, SMALL, &addr);

    let (server, addr) = our_server(&["tls:127.0.0.1:0"]);
    let said = "tls: self-signed certificate, sha256 ";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    let fp = server
        .stderr()
        .lines()
        .find_map(|l| l.strip_prefix(said).map(str::to_owned))
        .unwrap();
    let bare = addr.strip_prefix("tls:").unwrap();
    let data = random_bytes(300 << 10, 7);
    let out = client(&["-x", "--pin", &fp, &addr], &data);
    // The plaintext, not the records: what was typed and what came back.
    let blocks = assert_dumped(&out, &data, bare);
    assert!(blocks.len() >= 4, "{} chunks", blocks.len());
}

#[test]
fn over_udp_a_chunk_per_datagram() {
    let (_server, addr) = our_server(&["udp:127.0.0.1:0"]);
    let data = b"one\ntwo\n\x00three\n";
    let out = client(&["-x", &addr], data);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(out.stdout, data);
    let blocks = parse(&err, false);
    assert!(
        blocks.iter().all(|b| b.peer == addr && b.from == 0),
        "{err}"
    );
    // Each datagram a chunk of its own, counted from 0.
    let each = |dir| -> Vec<&[u8]> {
        let mut all: Vec<&[u8]> = blocks
            .iter()
            .filter(|b| b.dir == dir)
            .map(|b| &b.bytes[..])
            .collect();
        all.sort();
        all
    };
    let want: Vec<&[u8]> = vec![b"\x00three\n", b"one\n", b"two\n"];
    assert_eq!(each('>'), want);
    assert_eq!(each('<'), want);
}

/// A TCP port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `program args` as an echo peer; the client waits for it to listen.
fn peer(program: &str, args: &[String]) -> KillOnDrop {
    KillOnDrop(
        other(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn against_socat_and_ncat_peers() {
    let data = random_bytes(100 << 10, 11);
    if peer_available("socat") {
        let port = free_port();
        let listen = format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr");
        let _socat = peer(
            "socat",
            &["-b".into(), "4096".into(), listen, "PIPE".into()],
        );
        let addr = format!("127.0.0.1:{port}");
        let out = client(&["-x", "--wait", "10s", &addr], &data);
        assert_dumped(&out, &data, &addr);
    }
    if peer_available("ncat") {
        let port = free_port();
        let args: Vec<String> = ["-l", "127.0.0.1", &port.to_string(), "-e", "/bin/cat"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let _ncat = peer("ncat", &args);
        let addr = format!("127.0.0.1:{port}");
        let out = held_open(&["-x", "--wait", "10s", &addr], SMALL);
        assert_dumped(&out, SMALL, &addr);
    }
}

/// `echo-client ARGS` sent `data` with stdin held open until the echo is back, then closed:
/// ncat -e may close when the client half-closes before its command has answered.
fn held_open(args: &[&str], data: &'static [u8]) -> Output {
    let mut child = std_tool(["echo-client"].iter().chain(args))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(data).unwrap();
    let (echoed, stdout) = read_until(child.stdout.take().unwrap(), data, LIMIT);
    drop(stdin);
    let mut out = output_timeout(child, LIMIT);
    assert!(echoed, "no echo: {}", text(&out.stderr));
    out.stdout = stdout;
    out
}

/// `| head -c1`: stdout goes away while the dump goes on; still exit 0, and nothing on stderr
/// but the dump (no error line).
#[test]
fn a_closed_stdout_is_still_quiet_success() {
    let (_server, addr) = our_server(&["127.0.0.1:0"]);
    let data = random_bytes(4 << 20, 5);
    let mut child = std_tool(["echo-client", "-x", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    // The dump is read all along: a full stderr pipe stalls the client, as it should.
    let mut stderr = child.stderr.take().unwrap();
    let dump = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        all
    });
    // One byte read, then stdout closed; bounded: a client that prints nothing is killed,
    // which ends the read.
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut one = [0u8; 1];
        let _ = tx.send(stdout.read_exact(&mut one).is_ok());
    });
    let printed = rx.recv_timeout(LIMIT).unwrap_or(false);
    if !printed {
        let _ = child.kill();
    }
    let status = wait_timeout(&mut child, LIMIT);
    assert!(printed, "no echo within {LIMIT:?}");
    feeder.join().unwrap();
    let err = text(&dump.join().unwrap());
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        err.lines().last().unwrap_or("")
    );
    // Every line parses as the dump: no message among them.
    let blocks = parse(&err, false);
    assert!(!blocks.is_empty());
}

#[test]
fn meaningless_combinations_and_ncat_s_file_are_usage_errors() {
    for (args, want) in [
        (&["-x", "--count", "3", "7"][..], "--count"),
        (&["-x", "--connections", "2", "7"], "--connections"),
        (&["-x", "-z", "7"], "--zero-io"),
        (&["-x", "dump.log", "127.0.0.1:7"], "-x 2>FILE"),
        (&["-x", "dump.log", "127.0.0.1", "7"], "-x 2>FILE"),
        (&["--hex-dump=dump.log", "127.0.0.1:7"], "-x 2>FILE"),
    ] {
        let out = client(args, b"");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// In a terminal the typed line and its echo are dumped as they go.
#[test]
fn interactive_lines_are_dumped_as_typed() {
    let (_server, addr) = our_server(&["127.0.0.1:0"]);
    let term = pty();
    let mut child = KillOnDrop(
        Command::new(bin())
            .args(["echo-client", "-x", &addr])
            .env("LC_ALL", "C")
            .stdin(Stdio::from(term.slave))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut master = term.master;
    // Held by the terminal until the client reads it.
    master.write_all(b"typed\n").unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let (echoed, got) = read_until(stdout, b"typed\n", LIMIT);
    assert!(echoed, "{}", text(&got));
    let stderr = child.0.stderr.take().unwrap();
    let (dumped, err) = read_until(stderr, b"|typed.|\n< 2", LIMIT);
    let err = text(&err);
    assert!(dumped, "{err}");
    assert!(err.starts_with("connected to "), "{err}");
    master.write_all(&[4]).unwrap(); // Ctrl-D
    let status = wait_timeout(&mut child.0, LIMIT);
    assert!(status.success());
}

/// The server each chunk names is the server connected to, as messages name it.
#[test]
fn the_peer_is_named_as_the_client_names_it() {
    let (_server, addr) = our_server(&["127.0.0.1:0"]);
    let port = addr.rsplit(':').next().unwrap();
    let out = client(&["-x", "localhost", port], b"x\n");
    let err = text(&out.stderr);
    let blocks = parse(&err, false);
    let want = format!("localhost:{port} (127.0.0.1:{port})");
    assert!(
        !blocks.is_empty() && blocks.iter().all(|b| b.peer == want),
        "{err}"
    );
}

/// Our server with `-x` (and `-q`, so its stderr is the dump alone, but for what -q keeps).
fn dumping_server(listen: &str) -> (EchoServer, String) {
    our_server(&["-q", "-x", listen])
}

/// Stops `server` and parses its dump.
fn server_dump(server: EchoServer) -> Vec<Block> {
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    parse(&err, true)
}

/// Two connections at once, their chunks interleaved: each chunk names its client, and each
/// client's chunks hold exactly what it sent, both ways.
fn two_interleaved<S: Stream>(connect: impl Fn() -> S) -> [(Vec<u8>, Vec<u8>); 2] {
    let mut a = connect();
    let mut b = connect();
    for s in [&mut a, &mut b] {
        s.read_timeout(Some(LIMIT)).unwrap();
    }
    let (mut sent_a, mut sent_b) = (Vec::new(), Vec::new());
    for i in 0..3u8 {
        let (ma, mb) = (vec![b'a', i, b'\n'], vec![b'b', i, b'\n']);
        round_trip(&mut a, &ma);
        round_trip(&mut b, &mb);
        sent_a.extend_from_slice(&ma);
        sent_b.extend_from_slice(&mb);
    }
    drop((a, b));
    [(sent_a.clone(), sent_a), (sent_b.clone(), sent_b)]
}

/// Asserts each client's chunks in `blocks` (by the names `peers`) hold exactly its `want`.
fn assert_per_peer(blocks: &[Block], peers: &[String], want: &[(Vec<u8>, Vec<u8>)]) {
    let names: std::collections::BTreeSet<&str> = blocks.iter().map(|b| b.peer.as_str()).collect();
    assert_eq!(names.len(), peers.len(), "{names:?}");
    for (peer, (received, sent)) in peers.iter().zip(want) {
        assert_eq!(&stream(blocks, '<', Some(peer)), received, "from {peer}");
        assert_eq!(&stream(blocks, '>', Some(peer)), sent, "to {peer}");
    }
}

#[test]
fn the_server_dumps_each_tcp_connection_under_its_client() {
    let (server, addr) = dumping_server("127.0.0.1:0");
    let (a, b) = (
        std::net::TcpStream::connect(&addr).unwrap(),
        std::net::TcpStream::connect(&addr).unwrap(),
    );
    let peers = [
        a.local_addr().unwrap().to_string(),
        b.local_addr().unwrap().to_string(),
    ];
    let conns = std::sync::Mutex::new(vec![b, a]);
    let want = two_interleaved(|| conns.lock().unwrap().pop().unwrap());
    let blocks = server_dump(server);
    assert_per_peer(&blocks, &peers, &want);
    // Received, then its echo, chunk by chunk: per connection (the other one's chunks may
    // come between them).
    for peer in &peers {
        let mine: Vec<char> = blocks
            .iter()
            .filter(|b| &b.peer == peer)
            .map(|b| b.dir)
            .collect();
        assert_eq!(mine[..2], ['<', '>'], "{peer}: {mine:?}");
    }
}

#[test]
fn the_server_numbers_unix_connections_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.sock");
    let (server, _) = dumping_server(&format!("unix:{}", path.display()));
    let want = two_interleaved(|| std::os::unix::net::UnixStream::connect(&path).unwrap());
    let blocks = server_dump(server);
    let me = format!(
        "pid {} uid {}",
        std::process::id(),
        rustix::process::getuid().as_raw()
    );
    let peers = [format!("{me} #1"), format!("{me} #2")];
    assert_per_peer(&blocks, &peers, &want);
}

#[test]
fn the_server_dumps_tls_plaintext_and_udp_datagrams() {
    let (server, addr) = dumping_server("tls:127.0.0.1:0");
    let said = "tls: self-signed certificate, sha256 ";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    let fp = server
        .stderr()
        .lines()
        .find_map(|l| l.strip_prefix(said).map(str::to_owned))
        .unwrap();
    let data = random_bytes(200 << 10, 9);
    let out = client(&["--pin", &fp, &addr], &data);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let blocks = server_dump(server);
    assert_same_bytes("dump of what came", &stream(&blocks, '<', None), &data);
    assert_same_bytes("dump of the echo", &stream(&blocks, '>', None), &data);

    let (server, addr) = dumping_server("udp:127.0.0.1:0");
    let target = addr.strip_prefix("udp:").unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let mut back = [0u8; 64];
    for datagram in [&b"one"[..], b"\x00two\xff"] {
        socket.send_to(datagram, target).unwrap();
        let n = socket.recv(&mut back).unwrap();
        assert_eq!(&back[..n], datagram);
    }
    let blocks = server_dump(server);
    let me = socket.local_addr().unwrap().to_string();
    let shown: Vec<(char, &[u8], u64)> = blocks
        .iter()
        .map(|b| (b.dir, &b.bytes[..], b.from))
        .collect();
    assert_eq!(
        shown,
        [
            ('<', &b"one"[..], 0),
            ('>', b"one", 0),
            ('<', b"\x00two\xff", 0),
            ('>', b"\x00two\xff", 0)
        ]
    );
    assert!(blocks.iter().all(|b| b.peer == me), "{blocks:?}");
}

/// inetd mode: the dump goes to a stderr of its own, never into the connection (xinetd's
/// stderr is the connection, which is pointed at /dev/null).
#[test]
fn in_inetd_mode_the_dump_never_reaches_the_client() {
    use std::os::fd::OwnedFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    for own_stderr in [true, false] {
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (served, peer) = listener.accept().unwrap();
        let stderr = match own_stderr {
            true => Stdio::piped(),
            false => Stdio::from(OwnedFd::from(served.try_clone().unwrap())),
        };
        let child = std_tool(["echo-server", "-x"])
            .stdin(Stdio::from(OwnedFd::from(served.try_clone().unwrap())))
            .stdout(Stdio::from(OwnedFd::from(served)))
            .stderr(stderr)
            .spawn()
            .unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        client.write_all(SMALL).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, SMALL, "stderr of its own: {own_stderr}");
        let out = output_timeout(child, LIMIT);
        assert!(out.status.success());
        if own_stderr {
            let blocks = parse(&text(&out.stderr), false);
            assert!(blocks.iter().all(|b| b.peer == peer.to_string()));
            assert_eq!(stream(&blocks, '<', None), SMALL);
            assert_eq!(stream(&blocks, '>', None), SMALL);
        }
    }
}

/// Under -x the server's own echo loop still honours --idle-timeout and ends each connection
/// cleanly at the client's end; ncat's -x FILE is a usage error with the tip here too.
#[test]
fn the_server_s_dumping_echo_keeps_its_rules() {
    let (server, addr) = our_server(&["-q", "-x", "--idle-timeout", "300ms", "127.0.0.1:0"]);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    round_trip(&mut conn, b"before the silence\n");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not closed when idle"
    );
    let big = random_bytes(3 << 20, 13);
    let conn = std::net::TcpStream::connect(&addr).unwrap();
    let back = echo_back(conn, &std::sync::Arc::new(big.clone()));
    assert_same_bytes("echo", &back, &big);
    let blocks = server_dump(server);
    assert_same_bytes(
        "dump of the echo",
        &stream(&blocks, '>', Some(&blocks.last().unwrap().peer)),
        &big,
    );
    for args in [
        &["echo-server", "-x", "dump.log", "8080"][..],
        &["echo-server", "-x", "dump.log", "localhost", "8080"],
        &["echo-server", "--hex-dump=dump.log"],
    ] {
        let out = std_tool(args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("ncat's -x FILE is -x 2>FILE"),
            "{args:?}: {err}"
        );
    }
    // A fault changes the echo the dump would show: not both.
    let out = std_tool(["echo-server", "-x", "--delay", "5ms", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot be used with"));
}

/// The examples' `printf 'hi\n'` keeps its backslash: an unescaped one broke the line in two
/// (`printf 'hi` / `' | asyncio-tool ...`).
#[test]
fn help_examples_show_printf_s_escape() {
    for sub in ["echo-client", "echo-server"] {
        let out = std_tool([sub, "--help"]).output().unwrap();
        let help = text(&out.stdout);
        assert!(help.contains("-x"), "{help}");
        assert!(!help.lines().any(|l| l.starts_with("' |")), "{help}");
    }
}

/// Under `--log-format json` each chunk is one JSON object (event `hex_dump`, the bytes in
/// hex): the stream stays one object a line for jq.
#[test]
fn under_json_logs_each_chunk_is_one_object() {
    let (server, addr) = our_server(&["-x", "--log-format", "json", "127.0.0.1:0"]);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    round_trip(&mut conn, SMALL);
    let peer = conn.local_addr().unwrap().to_string();
    drop(conn);
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    let mut each_way = [Vec::new(), Vec::new()];
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        if v["event"] != "hex_dump" {
            continue;
        }
        assert_eq!(v["peer"], peer.as_str(), "{line}");
        let hex = v["data"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let way = usize::from(v["direction"] == "sent");
        assert_eq!(
            v["from"].as_u64(),
            Some(each_way[way].len() as u64),
            "{line}"
        );
        each_way[way].extend_from_slice(&bytes);
    }
    assert_eq!(each_way, [SMALL.to_vec(), SMALL.to_vec()], "{err}");
}

/// Behind a PROXY protocol header the dump names the client the header names, and holds the
/// echo only (the header is the proxy's, not the client's data).
#[test]
fn behind_a_proxy_header_the_dump_names_the_client() {
    let (server, addr) = dumping_server_with(&["--proxy-protocol", "127.0.0.1:0"]);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 7\r\n")
        .unwrap();
    round_trip(&mut conn, b"hi\n");
    drop(conn);
    let blocks = server_dump(server);
    assert!(
        blocks.iter().all(|b| b.peer == "192.0.2.1:5555"),
        "{blocks:?}"
    );
    assert_eq!(stream(&blocks, '<', None), b"hi\n");
    assert_eq!(stream(&blocks, '>', None), b"hi\n");
}

/// [`dumping_server`] with more options.
fn dumping_server_with(args: &[&str]) -> (EchoServer, String) {
    our_server(&[&["-q", "-x"][..], args].concat())
}

/// A stderr nobody reads (a full pipe) holds the server's dumping echo at most a second, not
/// for ever: two clients' 2 MiB each (some 20 MiB of dump, a 64 KiB pipe) are echoed whole.
/// Once stderr takes again, a line says how many chunks were not shown, before the next one.
#[test]
fn a_stderr_nobody_reads_does_not_stall_the_server() {
    use std::sync::Arc;
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    let cmd = std_tool(["echo-server", "-q", "-x", "127.0.0.1:0"]);
    let mut server = EchoServer::launch_with_stderr(cmd, Some(Stdio::from(writer)));
    let addr = server.await_line(LIMIT).to_owned();
    let data = Arc::new(random_bytes(2 << 20, 21));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (data, addr) = (Arc::clone(&data), addr.clone());
            std::thread::spawn(move || {
                let conn = std::net::TcpStream::connect(&addr).unwrap();
                conn.set_read_timeout(Some(LIMIT)).unwrap();
                conn.set_write_timeout(Some(LIMIT)).unwrap();
                echo_back(conn, &data)
            })
        })
        .collect();
    for client in clients {
        let back = client
            .join()
            .expect("the echo stalled on the server's stderr");
        assert_same_bytes("echo", &back, &data);
    }
    // stderr drains; the next chunk is told what was skipped, then shown.
    let drained = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::fs::File::from(reader).read_to_end(&mut all);
        all
    });
    // Time for the pipe to empty, so that the next chunk finds room at once.
    std::thread::sleep(Duration::from_millis(300));
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    round_trip(&mut conn, b"after the stall\n");
    drop(conn);
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
    let err = text(&drained.join().unwrap());
    let note = err
        .lines()
        .find(|l| l.starts_with("asyncio-tool: -x: "))
        .unwrap_or_else(|| panic!("no note of skipped chunks in {} bytes", err.len()));
    assert!(
        note.contains(" of the dump (") && note.ends_with("not shown: stderr took nothing for 1s"),
        "{note}"
    );
    let after = err.rfind(note).unwrap();
    assert!(
        err[after..].contains("|after the stall.|"),
        "{}",
        &err[after..]
    );
}

/// 100 connections at once under -x: each chunk stays whole (every header's length and
/// every line's offset check out), and each client's chunks hold exactly its bytes.
#[test]
fn a_hundred_connections_never_mix_within_a_chunk() {
    use std::sync::Arc;
    let (server, addr) = dumping_server("127.0.0.1:0");
    let clients: Vec<_> = (0..100u64)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let data = Arc::new(random_bytes(20_000 + 97 * i as usize, i));
                let conn = std::net::TcpStream::connect(&addr).unwrap();
                conn.set_read_timeout(Some(LIMIT)).unwrap();
                let me = conn.local_addr().unwrap().to_string();
                let back = echo_back(conn, &data);
                assert_same_bytes("echo", &back, &data);
                (me, data)
            })
        })
        .collect();
    let sent: Vec<(String, Arc<Vec<u8>>)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let blocks = server_dump(server);
    for (peer, data) in &sent {
        assert_same_bytes("from", &stream(&blocks, '<', Some(peer)), data);
        assert_same_bytes("to", &stream(&blocks, '>', Some(peer)), data);
    }
}
