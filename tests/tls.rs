//! TLS (issue 11): `echo-server --tls` and `echo-client --tls` against each other and against
//! real peers (openssl s_client and s_server, socat's OPENSSL addresses). Certificates are
//! made here, at test time, with rcgen into a temporary directory: no key is committed.
//! Every wait is bounded; servers are killed if a test fails midway.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::util::{
    EchoServer, KillOnDrop, assert_no_panic, assert_same_bytes, other, output_with_input,
    peer_available, peer_output, random_bytes, std_tool, tool, wait_timeout,
};

/// Bound on every wait: a server coming up, a client finishing.
const LIMIT: Duration = Duration::from_secs(30);

/// A certificate authority made for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: PathBuf,
}

/// A directory of certificates made for one test.
struct Pki {
    dir: tempfile::TempDir,
}

/// What a leaf certificate is for, and whether it is already expired.
#[derive(Clone, Copy, PartialEq)]
enum Leaf {
    Server,
    Client,
    ExpiredServer,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = self.path(&format!("{name}-ca.pem"));
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    /// A certificate for `localhost` and 127.0.0.1 signed by `ca`: (cert file, key file).
    fn leaf(&self, ca: &Ca, name: &str, kind: Leaf) -> (PathBuf, PathBuf) {
        let sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![match kind {
            Leaf::Client => ExtendedKeyUsagePurpose::ClientAuth,
            _ => ExtendedKeyUsagePurpose::ServerAuth,
        }];
        if kind == Leaf::ExpiredServer {
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(10);
            params.not_after = now - time::Duration::days(1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        let (cert_path, key_path) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `echo-server ARGS` once it listens; its address line, and the address without `tls:`.
fn server(args: &[&str]) -> (EchoServer, String) {
    launched(std_tool(["echo-server"].iter().chain(args)))
}

/// [`server`] for a command already made.
fn launched(cmd: Command) -> (EchoServer, String) {
    let mut server = EchoServer::launch(cmd);
    let line = server.await_line(LIMIT).to_owned();
    let bare = line.strip_prefix("tls:").unwrap_or(&line).to_owned();
    (server, bare)
}

/// A self-signed TLS server on a free port, and the fingerprint it printed.
fn self_signed_server(extra: &[&str]) -> (EchoServer, String, String) {
    self_signed_server_on("tls:127.0.0.1:0", extra)
}

/// [`self_signed_server`] on `listen`.
fn self_signed_server_on(listen: &str, extra: &[&str]) -> (EchoServer, String, String) {
    let mut args = vec![listen];
    args.extend_from_slice(extra);
    fingerprinted(server(&args))
}

/// [`self_signed_server`] under a soft open-file limit of `fds` (which bounds its room for
/// handshakes).
fn self_signed_server_with_fds(fds: u32, extra: &[&str]) -> (EchoServer, String, String) {
    let mut cmd = other("sh");
    cmd.args(["-c", &format!("ulimit -S -n {fds} && exec \"$0\" \"$@\"")])
        .arg(crate::util::bin())
        .args(["echo-server", "tls:127.0.0.1:0"])
        .args(extra);
    fingerprinted(launched(cmd))
}

/// A self-signed `server` and the fingerprint it printed.
fn fingerprinted((server, addr): (EchoServer, String)) -> (EchoServer, String, String) {
    let said = "tls: self-signed certificate, sha256 ";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    let err = server.stderr();
    let fp = err
        .lines()
        .find_map(|l| l.strip_prefix(said))
        .unwrap_or_else(|| panic!("no fingerprint line: {err}"))
        .to_owned();
    (server, addr, fp)
}

/// A server with a certificate from `ca` (and `extra` options).
fn ca_server(pki: &Pki, ca: &Ca, kind: Leaf, extra: &[&str]) -> (EchoServer, String) {
    let (cert, key) = pki.leaf(ca, "server", kind);
    let mut args = vec!["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server(&args)
}

/// `echo-client ARGS` with `data` on stdin.
fn client(args: &[&str], data: &[u8]) -> Output {
    let out = output_with_input(std_tool(["echo-client"].iter().chain(args)), data, LIMIT);
    assert_no_panic(&out.stderr);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the client failed (exit 1) with one line holding `want`, naming `addr`.
fn assert_refused(out: &Output, addr: &str, want: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(want), "wanted {want:?}: {err}");
    assert!(err.contains(addr), "the endpoint is not named: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
}

#[test]
fn self_signed_server_and_pinned_client_round_trip_random_data() {
    let (server, addr, fp) = self_signed_server(&[]);
    let line = format!("tls:{addr}");
    let data = random_bytes(3 << 20, 11);
    let out = client(&["--pin", &format!("sha256:{fp}"), &line], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_bytes("echo", &out.stdout, &data);
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(err.contains("served 1 connection"), "{err}");
}

/// The fingerprint printed is the certificate's (openssl computes the same one), and the
/// certificate is ECDSA P-256, for localhost, the bound IP and the host name typed, valid for
/// at least a day.
#[test]
fn the_self_signed_certificate_as_openssl_sees_it() {
    if !peer_available("openssl") {
        return;
    }
    let (server, addr, fp) = self_signed_server_on("tls:LocalHost:0", &[]);
    let out = Command::new("sh")
        .args([
            "-c",
            "openssl s_client -connect \"$1\" </dev/null 2>/dev/null | openssl x509 -noout \
             -fingerprint -sha256 -ext subjectAltName -checkend 86400 -text",
            "sh",
            &addr,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "expires within a day? {text}");
    assert!(text.contains(&fp), "openssl says {text}, we said {fp}");
    assert!(
        text.contains("DNS:localhost, IP Address:127.0.0.1"),
        "names: {text}"
    );
    assert!(text.contains("prime256v1"), "not P-256: {text}");
    drop(server);
}

#[test]
fn openssl_s_client_gets_every_byte_back() {
    s_client_echo(&[], "TLSv1.3 TLS13_");
}

#[test]
fn openssl_s_client_over_tls_1_2() {
    s_client_echo(&["-tls1_2"], "TLSv1.2 TLS_ECDHE_ECDSA_WITH_");
}

/// Random bytes through `openssl s_client ARGS`, all back; the server's -v log shows `proto`.
fn s_client_echo(args: &[&str], proto: &str) {
    if !peer_available("openssl") {
        return;
    }
    let (server, addr, _) = self_signed_server(&["-v"]);
    let data = random_bytes(512 * 1024, 12);
    let mut child = KillOnDrop(
        other("openssl")
            .args(["s_client", "-quiet", "-no_ign_eof", "-connect", &addr])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let mut stdout = child.0.stdout.take().unwrap();
    let want = data.len();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut back = vec![0u8; want];
        let _ = tx.send(stdout.read_exact(&mut back).map(|()| back));
    });
    let writer = thread::spawn(move || {
        stdin.write_all(&data).unwrap();
        (stdin, data)
    });
    let back = rx.recv_timeout(LIMIT).expect("echo incomplete").unwrap();
    let (stdin, data) = writer.join().unwrap();
    assert_same_bytes("echo", &back, &data);
    // The end of s_client's input sends close_notify: the server finishes the connection.
    drop(stdin);
    wait_timeout(&mut child.0, LIMIT);
    assert!(
        server.logs_within(LIMIT, "closed after"),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains(proto), "{}", server.stderr());
}

/// socat sends close_notify at the end of its input and reads on: the half-close.
#[test]
fn socat_openssl_client_half_closes_and_gets_every_byte_back() {
    if !peer_available("socat") {
        return;
    }
    let (_server, addr, _) = self_signed_server(&[]);
    let data = random_bytes(4 << 20, 13);
    let target = format!("OPENSSL:{addr},verify=0");
    let back = peer_output(
        "socat",
        ["-b", "65536", "-t", "20", "-", &target],
        &data,
        LIMIT,
    );
    assert_same_bytes("echo", &back, &data);
}

/// socat's OPENSSL-LISTEN with PIPE as the server; our client verifies it with --cafile.
#[test]
fn our_client_against_socat_openssl_listen() {
    if !peer_available("socat") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca("test");
    let (cert, key) = pki.leaf(&ca, "socat", Leaf::Server);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
        s(&cert),
        s(&key)
    );
    let _socat = KillOnDrop(
        other("socat")
            .args(["-b", "4096", &listen, "PIPE"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let data = random_bytes(2 << 20, 14);
    let addr = format!("localhost:{port}");
    let out = client(
        &["--tls", "--cafile", s(&ca.pem), "--wait", "20s", &addr],
        &data,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_bytes("echo", &out.stdout, &data);
}

/// openssl s_server -rev sends each line back reversed: bytes both ways, checked exactly.
#[test]
fn our_client_against_openssl_s_server() {
    if !peer_available("openssl") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca("test");
    let (cert, key) = pki.leaf(&ca, "s_server", Leaf::Server);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let accept = format!("127.0.0.1:{port}");
    let mut s_server = KillOnDrop(
        other("openssl")
            .args(["s_server", "-quiet", "-rev", "-naccept", "1", "-accept"])
            .args([&accept, "-cert", s(&cert), "-key", s(&key)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines: Vec<String> = random_bytes(64 * 1024, 15)
        .chunks(32)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let want: String = lines
        .iter()
        .map(|l| format!("{}\n", l.chars().rev().collect::<String>()))
        .collect();
    let target = format!("tls:127.0.0.1:{port}");
    let out = client(
        &["--cafile", s(&ca.pem), "--wait", "20s", &target],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_bytes("reply", &out.stdout, want.as_bytes());
    wait_timeout(&mut s_server.0, LIMIT);
}

#[test]
fn mutual_tls_accepts_the_right_client_certificate_only() {
    let pki = Pki::new();
    let ca = pki.ca("test");
    let stranger = pki.ca("stranger");
    let (good_cert, good_key) = pki.leaf(&ca, "good client", Leaf::Client);
    let (bad_cert, bad_key) = pki.leaf(&stranger, "bad client", Leaf::Client);
    let (server, addr) = ca_server(&pki, &ca, Leaf::Server, &["-v", "--client-ca", s(&ca.pem)]);
    let target = format!("tls:{addr}");
    let base = ["--cafile", s(&ca.pem), &target];

    let mut args = vec!["--cert", s(&good_cert), "--key", s(&good_key)];
    args.extend(base);
    let out = client(&args, b"mutual\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"mutual\n");
    assert!(
        server.logs_within(LIMIT, "client certificate CN=good client"),
        "{}",
        server.stderr()
    );

    let out = client(&base, b"no cert\n");
    assert_refused(&out, &addr, "certificate required");
    assert!(out.stdout.is_empty());
    assert!(
        server.logs_within(
            LIMIT,
            "TLS handshake failed: no client certificate was presented"
        ),
        "{}",
        server.stderr()
    );

    let mut args = vec!["--cert", s(&bad_cert), "--key", s(&bad_key)];
    args.extend(base);
    let out = client(&args, b"wrong cert\n");
    assert_refused(&out, &addr, "the server refused our client certificate");
    assert!(out.stdout.is_empty());
    assert!(
        server.logs_within(LIMIT, "TLS handshake failed: unknown issuer"),
        "{}",
        server.stderr()
    );
}

/// socat as a mutual-TLS client: presents its certificate, gets the echo.
#[test]
fn mutual_tls_with_socat_as_the_client() {
    if !peer_available("socat") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca("test");
    let (cert, key) = pki.leaf(&ca, "socat client", Leaf::Client);
    let (_server, addr) = ca_server(&pki, &ca, Leaf::Server, &["--client-ca", s(&ca.pem)]);
    let target = format!(
        "OPENSSL:{addr},cafile={},cert={},key={}",
        s(&ca.pem),
        s(&cert),
        s(&key)
    );
    let back = peer_output("socat", ["-t", "20", "-", &target], b"socat mtls\n", LIMIT);
    assert_eq!(back, b"socat mtls\n");
}

#[test]
fn verification_failures_name_the_endpoint_and_the_reason() {
    let pki = Pki::new();
    let ca = pki.ca("test");
    let stranger = pki.ca("stranger");
    let (_server, addr) = ca_server(&pki, &ca, Leaf::Server, &[]);
    let target = format!("tls:{addr}");

    let out = client(&["--cafile", s(&ca.pem), &target], b"ok\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"ok\n");

    let out = client(
        &[
            "--cafile",
            s(&ca.pem),
            "--servername",
            "example.test",
            &target,
        ],
        b"x",
    );
    assert_refused(&out, &addr, "certificate is not valid for \"example.test\"");

    let out = client(&["--cafile", s(&stranger.pem), &target], b"x");
    assert_refused(&out, &addr, "unknown issuer");
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::new();
    let ca = pki.ca("test");
    let (_server, addr) = ca_server(&pki, &ca, Leaf::ExpiredServer, &[]);
    let out = client(&["--cafile", s(&ca.pem), &format!("tls:{addr}")], b"x");
    assert_refused(&out, &addr, "certificate expired");
}

#[test]
fn pin_match_mismatch_and_insecure() {
    let (_server, addr, fp) = self_signed_server(&[]);
    let target = format!("tls:{addr}");

    // Verified by default: a self-signed certificate has no issuer anyone trusts.
    let out = client(&[&target], b"x");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&addr), "{}", stderr(&out));

    let lower = fp.to_lowercase().replace(':', "");
    let out = client(&["--pin", &format!("sha256:{lower}"), &target], b"pinned\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"pinned\n");

    let wrong = format!("sha256:{}", "00".repeat(32));
    let out = client(&["--pin", &wrong, &target], b"x");
    assert_refused(
        &out,
        &addr,
        &format!("fingerprint mismatch: got sha256 {fp}"),
    );

    let out = client(&["--insecure", &target], b"insecure\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"insecure\n");
    let err = stderr(&out);
    assert_eq!(err.matches("--insecure").count(), 1, "{err}");
    assert!(err.contains("not verified"), "{err}");
}

#[test]
fn tls_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.sock");
    let (_server, addr) = server(&[&format!("tls:unix:{}", path.display())]);
    assert!(addr.starts_with("unix:"), "{addr}");
    let data = random_bytes(1 << 20, 16);
    let out = client(&["--insecure", &format!("tls:{addr}")], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_bytes("echo", &out.stdout, &data);
}

/// A bad --cert or --key: exit 1 at start, naming the file, and nothing bound (the socket
/// file is never made, no address line is printed).
#[test]
fn bad_certificate_or_key_files_fail_before_binding() {
    let pki = Pki::new();
    let ca = pki.ca("test");
    let (cert, key) = pki.leaf(&ca, "server", Leaf::Server);
    let (_, other_key) = pki.leaf(&ca, "other", Leaf::Server);
    let missing = pki.path("missing.pem");
    let not_pem = pki.path("not.pem");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let sock = pki.path("never.sock");
    let listen = format!("unix:{}", sock.display());
    for (cert, key, named, why) in [
        (&missing, &key, &missing, "No such file or directory"),
        (&cert, &missing, &missing, "No such file or directory"),
        (&not_pem, &key, &not_pem, "no PEM certificate found"),
        (&cert, &not_pem, &not_pem, "no PEM"),
        (
            &cert,
            &other_key,
            &other_key,
            "the key does not match the certificate",
        ),
    ] {
        let out = tool([
            "echo-server",
            "--tls",
            "--cert",
            s(cert),
            "--key",
            s(key),
            &listen,
        ])
        .output()
        .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(s(named)) && err.contains(why), "{err}");
        assert!(out.stdout.is_empty(), "bound anyway");
        assert!(!sock.exists(), "the socket was made");
    }
}

/// A client that connects and never speaks gives its slot back at the handshake deadline
/// (here --idle-timeout, being shorter), so the next client is served.
#[test]
fn a_silent_client_does_not_hold_a_slot() {
    let (server, addr, _) = self_signed_server(&["--max-connections", "1", "--idle-timeout", "1s"]);
    let silent = TcpStream::connect(&addr).unwrap();
    let out = client(&["--insecure", &format!("tls:{addr}")], b"next\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"next\n");
    assert!(
        server.logs_within(LIMIT, "TLS handshake failed: no handshake within 1s"),
        "{}",
        server.stderr()
    );
    drop(silent);
}

#[test]
fn meaningless_combinations_are_usage_errors() {
    for args in [
        &["echo-server", "--cert", "c.pem", "--tls"][..],
        &["echo-server", "--client-ca", "ca.pem"],
        &["echo-server", "--cert", "c.pem", "--key", "k.pem"],
        &["echo-client", "--cafile", "ca.pem"],
        &["echo-client", "--tls", "--key", "k.pem"],
        &["echo-client", "--tls", "--insecure", "--cafile", "ca.pem"],
        &[
            "echo-client",
            "--insecure",
            "--pin",
            &format!("sha256:{}", "ab".repeat(32)),
        ],
        &["echo-client", "--tls", "--pin", "sha256:abc"],
    ] {
        let out = tool(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

/// The server closing first (here: idle) ends the client at once, stdin still open, and
/// cleanly: the server says close_notify, and no input was left unsent.
#[test]
fn the_client_ends_at_once_when_the_server_closes() {
    let (_server, addr, fp) = self_signed_server(&["--idle-timeout", "1s"]);
    let mut child = KillOnDrop(
        std_tool([
            "echo-client",
            "--pin",
            &format!("sha256:{fp}"),
            &format!("tls:{addr}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(b"hi\n").unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let (seen, got) = crate::util::read_until(stdout, b"hi\n", LIMIT);
    assert!(seen, "no echo: {got:?}");
    let status = wait_timeout(&mut child.0, LIMIT);
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    drop(stdin);
}

/// Interactive: each typed line comes back at once; Ctrl-D ends it.
#[test]
fn interactive_over_tls() {
    let (_server, addr, fp) = self_signed_server(&[]);
    let term = crate::util::pty();
    let mut child = KillOnDrop(
        std_tool([
            "echo-client",
            "--pin",
            &format!("sha256:{fp}"),
            &format!("tls:{addr}"),
        ])
        .stdin(Stdio::from(term.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut master = term.master;
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut stdout = stdout;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    for line in [&b"hello\n"[..], b"again\n"] {
        master.write_all(line).unwrap();
        while !got.ends_with(line) {
            got.extend(rx.recv_timeout(LIMIT).expect("no echo of a typed line"));
        }
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "exited before Ctrl-D"
    );
    master.write_all(&[4]).unwrap();
    let status = wait_timeout(&mut child.0, LIMIT);
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains(&format!("connected to {addr} — Ctrl-D to finish")),
        "{err}"
    );
}

/// --progress draws the progress line over TLS too (stdin is a file here: the line with its
/// size, percentage and time left).
#[test]
fn progress_line_over_tls() {
    let (_server, addr, fp) = self_signed_server(&[]);
    let data = random_bytes(8 << 20, 17);
    let out = client(
        &[
            "--progress",
            "--pin",
            &format!("sha256:{fp}"),
            &format!("tls:{addr}"),
        ],
        &data,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_bytes("echo", &out.stdout, &data);
    let err = stderr(&out);
    assert!(
        err.contains(" of 8 MiB echoed · ") && err.contains(" · sent "),
        "{err}"
    );
}

/// Graceful shutdown: an open TLS connection gets --shutdown-timeout, then is cut, and the
/// summary counts it.
#[test]
fn graceful_shutdown_cuts_an_open_tls_connection_at_the_deadline() {
    let (server, addr, fp) = self_signed_server(&["--shutdown-timeout", "500ms"]);
    let mut child = KillOnDrop(
        std_tool([
            "echo-client",
            "--pin",
            &format!("sha256:{fp}"),
            &format!("tls:{addr}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(b"open\n").unwrap();
    let (seen, _) = crate::util::read_until(child.0.stdout.take().unwrap(), b"open\n", LIMIT);
    assert!(seen);
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(
        err.contains("closed 1 still open at the shutdown deadline"),
        "{err}"
    );
    let client_status = wait_timeout(&mut child.0, LIMIT);
    assert_eq!(
        client_status.code(),
        Some(1),
        "a cut connection is not a clean end"
    );
    drop(stdin);
}

/// The measuring modes and --verify work over TLS as over TCP.
#[test]
fn probe_load_and_verify_over_tls() {
    let (_server, addr, fp) = self_signed_server(&[]);
    let pin = format!("sha256:{fp}");
    let target = format!("tls:{addr}");

    let out = client(
        &["--pin", &pin, "--count", "3", "--interval", "10ms", &target],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 sent, 3 received, 0 lost, 0 mismatched"),
        "{text}"
    );

    let out = client(
        &[
            "--pin",
            &pin,
            "--connections",
            "4",
            "--duration",
            "300ms",
            &target,
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 lost, 0 mismatched"), "{text}");

    let data = random_bytes(2 << 20, 18);
    let out = client(&["--verify", "--pin", &pin, &target], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_bytes("echo", &out.stdout, &data);
}

#[test]
fn tls_over_udp_is_a_usage_error() {
    for args in [
        &["echo-server", "tls:udp:127.0.0.1:0"][..],
        &["echo-server", "--tls", "-u", "127.0.0.1:0"],
        &["echo-client", "--tls", "udp:127.0.0.1:7"],
        &["echo-client", "--tls", "-u", "127.0.0.1:7"],
    ] {
        let out = tool(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

/// Failed handshakes by the hundred (a scanner, a flood of plain-text clients) must not flood
/// stderr: at most one line a second names a client, and the rest are counted in a line that
/// follows, so no failure goes unreported.
#[test]
fn failed_handshakes_are_logged_at_most_once_a_second() {
    let (server, addr, _) = self_signed_server(&[]);
    const CLIENTS: usize = 200;
    for _ in 0..CLIENTS {
        let mut plain = TcpStream::connect(&addr).unwrap();
        // Not TLS: the handshake fails at the first record.
        let _ = plain.write_all(b"GET / HTTP/1.0\r\n\r\n");
    }
    let reported = || {
        let err = server.stderr();
        let named = err.matches("TLS handshake failed: ").count();
        let counted: usize = err
            .lines()
            .filter_map(|l| l.strip_prefix("TLS handshake failed for "))
            .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .sum();
        (named, counted)
    };
    assert!(
        crate::util::eventually(LIMIT, || {
            let (named, counted) = reported();
            named + counted == CLIENTS
        }),
        "{:?} of {CLIENTS} reported: {}",
        reported(),
        server.stderr()
    );
    let (named, _) = reported();
    assert!(named <= 5, "{named} lines for {CLIENTS} failures");
}

/// A TLS server on a thread that sends `data` and then ends the TCP stream with no
/// close_notify, as a truncation attack (or a crash) does. Its address.
fn truncating_server(cert: PathBuf, key: PathBuf, data: &'static [u8]) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(LIMIT)).unwrap();
        let mut conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        if tls.write_all(data).and_then(|()| tls.flush()).is_err() {
            return;
        }
        let _ = sock.shutdown(std::net::Shutdown::Write);
        // Read what the client still sends, so our close is a FIN and not a reset.
        let _ = std::io::copy(&mut sock, &mut std::io::sink());
    });
    addr
}

/// The server's stream ending without close_notify means the data may have been cut short by
/// someone in the middle: the client says so and exits 1, never 0 as if all had come.
#[test]
fn a_server_closing_without_close_notify_is_not_a_clean_end() {
    let pki = Pki::new();
    let ca = pki.ca("truncating");
    let (cert, key) = pki.leaf(&ca, "server", Leaf::Server);
    let addr = truncating_server(cert, key, b"partial\n");
    let port = addr.rsplit(':').next().unwrap();
    let out = client(
        &["--cafile", s(&ca.pem), &format!("tls:localhost:{port}")],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(out.stdout, b"partial\n");
    assert!(err.contains("without close_notify"), "{err}");
    assert!(!err.contains("handshake"), "{err}");
}

/// What people most often point at a TLS port by mistake gets a reason they can act on:
/// plain text (HTTP) at our server, a TLS 1.0 client, and our client at a plain echo server
/// (which echoes its ClientHello back).
#[test]
fn common_mistakes_get_reasons_in_words() {
    // -v: a line per connection, none held back.
    let (server, addr, _) = self_signed_server(&["-v"]);
    let mut http = TcpStream::connect(&addr).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let said = "TLS handshake failed: not TLS (plain text such as HTTP?)";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    drop(http);
    if peer_available("openssl") {
        let out = other("openssl")
            .args(["s_client", "-tls1", "-connect", &addr])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let said = "TLS handshake failed: the client offers only TLS 1.1 or older";
        assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    }
    let (_plain, plain_addr) = server_plain();
    let out = client(&["--insecure", &format!("tls:{plain_addr}")], b"hi\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("our own ClientHello came back: a plain echo server, not TLS?"),
        "{}",
        stderr(&out)
    );
}

/// A plain echo server.
fn server_plain() -> (EchoServer, String) {
    server(&["127.0.0.1:0"])
}

/// A certificate's subject is the peer's to choose (unverified under --insecure): in a log
/// line its control characters are escaped, so it cannot drive the terminal that shows it.
#[test]
fn a_subject_cannot_send_terminal_escapes() {
    let pki = Pki::new();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        "evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}",
    );
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (pki.path("evil.pem"), pki.path("evil.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let (_server, addr) = server(&[
        "--tls",
        "--cert",
        s(&cert_path),
        "--key",
        s(&key_path),
        "127.0.0.1:0",
    ]);
    let out = client(&["-v", "--insecure", &format!("tls:{addr}")], b"hi\n");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("server certificate CN=evil"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(!err.contains('\u{7}'), "{err:?}");
    assert!(!err.contains('\u{202e}'), "{err:?}");
}

/// A --pin in another form and a --servername that is no name are usage errors (exit 2)
/// saying what to write; an IPv6 --servername may keep its brackets.
#[test]
fn pin_and_servername_mistakes_say_what_to_write() {
    let fp = "AB:".repeat(31) + "AB";
    let cases = [
        (format!("sha1:{fp}"), "only SHA-256 fingerprints"),
        (format!("md5:{fp}"), "only SHA-256 fingerprints"),
        (format!("SHA512:{fp}"), "only SHA-256 fingerprints"),
        // A bare SHA-1 fingerprint (openssl's default) is named as one.
        ("AB:".repeat(19) + "AB", "40 hex digits (a SHA-1"),
    ];
    for (pin, want) in cases {
        let out = tool(["echo-client", "--tls", "--pin", &pin, "127.0.0.1:9"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{pin}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{pin}: {}", stderr(&out));
    }
    for name in ["", "a b", "exa mple.test"] {
        let out = tool(["echo-client", "--tls", "--servername", name, "127.0.0.1:9"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--servername"), "{}", stderr(&out));
    }
    let (_server, addr, fp) = self_signed_server(&[]);
    let pin = format!("sha256:{fp}");
    let out = client(
        &[
            "--pin",
            &pin,
            "--servername",
            "[::1]",
            &format!("tls:{addr}"),
        ],
        b"hi\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A TLS server on a thread that sends `data`, then its close_notify, then reads on: it
/// reports (through the receiver) whether the client answered with close_notify (`Ok`) or
/// ended its stream without one. Its address.
fn closing_server(
    cert: PathBuf,
    key: PathBuf,
    data: &'static [u8],
) -> (String, mpsc::Receiver<std::io::Result<()>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(LIMIT)).unwrap();
        let mut conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let sent = tls.write_all(data).and_then(|()| tls.flush());
        conn.send_close_notify();
        let answer = sent
            .and_then(|()| conn.complete_io(&mut sock).map(drop))
            .and_then(|()| {
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                std::io::copy(&mut tls, &mut std::io::sink()).map(drop)
            });
        let _ = tx.send(answer);
    });
    (addr, rx)
}

/// The server closing first (its close_notify) while stdin is still open: the client ends at
/// once, exit 0, and answers with its own close_notify, as TLS asks of each side, so a strict
/// server does not see the client's stream as cut short.
#[test]
fn the_client_answers_the_servers_close_notify() {
    let pki = Pki::new();
    let ca = pki.ca("closing");
    let (cert, key) = pki.leaf(&ca, "server", Leaf::Server);
    let (addr, answer) = closing_server(cert, key, b"bye\n");
    let port = addr.rsplit(':').next().unwrap();
    let mut child = KillOnDrop(
        std_tool([
            "echo-client",
            "--cafile",
            s(&ca.pem),
            &format!("tls:localhost:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let stdin = child.0.stdin.take();
    let status = wait_timeout(&mut child.0, LIMIT);
    let mut err = String::new();
    let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "{err}");
    let answer = answer.recv_timeout(LIMIT).unwrap();
    assert!(
        answer.is_ok(),
        "no close_notify from the client: {answer:?}"
    );
    drop(stdin);
}

/// Damaged or unusable PEM files are named, with a reason in words: a certificate cut short,
/// one whose contents are not a certificate (the certificate's file named, not the key's),
/// an encrypted key (said, with what to do).
#[test]
fn damaged_pem_files_are_named_in_words() {
    let pki = Pki::new();
    let ca = pki.ca("test");
    let (cert, key) = pki.leaf(&ca, "server", Leaf::Server);
    let pem = std::fs::read_to_string(&cert).unwrap();
    let cut = pki.path("cut.pem");
    std::fs::write(&cut, &pem[..pem.len() / 2]).unwrap();
    let garbled = pki.path("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let encrypted = pki.path("encrypted.key");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    // OpenSSL's older form: headers inside the section.
    let old_form = pki.path("old-form.key");
    std::fs::write(
        &old_form,
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    for (cert, key, named, why) in [
        (&cut, &key, &cut, "no -----END CERTIFICATE----- line"),
        (&cert, &old_form, &old_form, "encrypted"),
        (&garbled, &key, &garbled, "not a valid certificate"),
        (&cert, &encrypted, &encrypted, "encrypted"),
    ] {
        let out = tool([
            "echo-server",
            "--tls",
            "--cert",
            s(cert),
            "--key",
            s(key),
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(s(named)) && err.contains(why), "{err}");
        assert!(!err.contains('['), "bytes as numbers: {err}");
    }
}

/// A proxy on a thread, as anyone on the path can be: it relays the first `cut` bytes from
/// the client to `server`, then sends the server a bare FIN (no close_notify) and swallows
/// the rest up to the client's own end; what the server says after the cut is held back
/// until then, and its end passed on as a FIN. (Holding it back makes the client's run the
/// same every time: all its input gone before the server's close comes.) Its address.
fn cutting_proxy(server: &str, cut: usize) -> String {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = server.to_owned();
    thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut upstream = TcpStream::connect(&server).unwrap();
        for s in [&client, &upstream] {
            s.set_read_timeout(Some(LIMIT)).unwrap();
        }
        let (mut from, mut to) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
        let is_cut = std::sync::Arc::new(AtomicBool::new(false));
        let (ended_tx, ended) = mpsc::channel::<()>();
        let cut_seen = std::sync::Arc::clone(&is_cut);
        let answer = thread::spawn(move || {
            let (mut held, mut chunk) = (Vec::new(), [0u8; 16384]);
            while let Ok(n @ 1..) = from.read(&mut chunk) {
                if cut_seen.load(Ordering::SeqCst) {
                    held.extend_from_slice(&chunk[..n]);
                } else if to.write_all(&chunk[..n]).is_err() {
                    return;
                }
            }
            let _ = ended.recv_timeout(LIMIT);
            let _ = to.write_all(&held);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut (&mut client).take(cut as u64), &mut upstream);
        is_cut.store(true, Ordering::SeqCst);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut client, &mut std::io::sink());
        let _ = ended_tx.send(());
        let _ = answer.join();
    });
    addr
}

/// Only a close_notify ends a TLS client's input: a bare FIN (from a proxy cutting the
/// stream) is a truncation, which the server says, and answers without close_notify, so the
/// client, having lost most of its data, exits 1 instead of 0.
#[test]
fn a_bare_fin_from_the_client_side_is_a_truncation() {
    let (server, addr, fp) = self_signed_server(&[]);
    let proxy = cutting_proxy(&addr, 100_000);
    let data = random_bytes(1_000_000, 181);
    let out = client(
        &["--pin", &format!("sha256:{fp}"), &format!("tls:{proxy}")],
        &data,
    );
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} bytes back: {err}",
        out.stdout.len()
    );
    assert!(out.stdout.len() < data.len(), "{err}");
    assert!(data.starts_with(&out.stdout), "not a prefix of the input");
    assert!(
        server.logs_within(LIMIT, "without close_notify"),
        "client: {err}\nserver: {}",
        server.stderr()
    );
}

/// `n` sockets connected to `addr` that never say a word, once the server has had time to
/// accept them.
fn silent_sockets(addr: &str, n: usize) -> Vec<TcpStream> {
    let sockets = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    thread::sleep(Duration::from_millis(200));
    sockets
}

/// Our pinned client sends one line to `addr`, within `limit`: its output, and how long it
/// took.
fn timed_client(addr: &str, fp: &str, limit: Duration) -> (Output, Duration) {
    let started = std::time::Instant::now();
    let out = output_with_input(
        std_tool([
            "echo-client",
            "--pin",
            &format!("sha256:{fp}"),
            &format!("tls:{addr}"),
        ]),
        b"real\n",
        limit,
    );
    (out, started.elapsed())
}

/// Sockets that connect and say nothing hold no --max-connections slot: with a limit of 2
/// and six of them, a real client is served at once, not after their 10 s handshake
/// deadline (and sockets renewed every 10 s kept it out for ever).
#[test]
fn silent_sockets_cannot_keep_a_tls_client_out() {
    let (server, addr, fp) = self_signed_server(&["--max-connections", "2"]);
    let silent = silent_sockets(&addr, 6);
    let (out, took) = timed_client(&addr, &fp, Duration::from_secs(6));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"real\n");
    assert!(took < Duration::from_secs(3), "served after {took:?}");
    drop((silent, server));
}

/// More silent sockets than handshakes may be in flight (64, under a limit of 128 open
/// files): the oldest silent one makes room for a newcomer once it has had its second, so the
/// real client still gets in within about a second, and the server says why it closed them.
#[test]
fn silent_sockets_beyond_the_handshake_bound_make_room() {
    let (server, addr, fp) = self_signed_server_with_fds(128, &["--max-connections", "2"]);
    let silent = silent_sockets(&addr, 80);
    let (out, took) = timed_client(&addr, &fp, Duration::from_secs(8));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"real\n");
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    assert!(
        server.logs_within(LIMIT, "while other clients waited (closed to make room)"),
        "{}",
        server.stderr()
    );
    drop((silent, server));
}

/// A graceful stop does not wait for connections that never sent a ClientHello: nobody is
/// being served there (before, the stop waited for their handshake deadline).
#[test]
fn a_graceful_stop_does_not_wait_for_silent_sockets() {
    let (server, addr, _) = self_signed_server(&["--shutdown-timeout", "20s"]);
    let silent = silent_sockets(&addr, 4);
    let started = std::time::Instant::now();
    let (status, err) = server.stop(LIMIT);
    let took = started.elapsed();
    assert!(status.success(), "{err}");
    assert!(
        took < Duration::from_secs(3),
        "stopped after {took:?}: {err}"
    );
    assert!(!err.contains("waiting up to"), "{err}");
    assert!(!err.contains("handshake failed"), "{err}");
    drop(silent);
}

/// Our own probe and load modes end their TLS connections with close_notify, so a server
/// (ours logs a stream that just stops as cut short) sees a clean end.
#[test]
fn the_measuring_modes_end_with_close_notify() {
    let (server, addr, fp) = self_signed_server(&[]);
    let (pin, target) = (format!("sha256:{fp}"), format!("tls:{addr}"));
    for args in [
        &["--count", "2", "--interval", "10ms"][..],
        &["--count", "2", "--interval", "10ms", "--new-connection"],
        &["--connections", "2", "--duration", "200ms"],
    ] {
        let mut all = vec!["--pin", &pin, &target];
        all.extend_from_slice(args);
        let out = client(&all, b"");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(err.contains("served 5 connections"), "{err}");
    assert!(!err.contains("cut short"), "{err}");
}

/// The first TLS record our client sends: its ClientHello, caught by a listener that never
/// answers.
fn a_client_hello() -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = KillOnDrop(
        std_tool(["echo-client", "--insecure", &format!("tls:{addr}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let mut hello = vec![0u8; 5];
    sock.read_exact(&mut hello).unwrap();
    let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
    hello.resize(5 + len, 0);
    sock.read_exact(&mut hello[5..]).unwrap();
    hello
}

/// A ClientHello and then nothing holds no room either: with 80 such connections, more than
/// the 64 handshakes in flight (under a limit of 128 open files), a real client is still
/// served within about a second.
#[test]
fn stalled_handshakes_make_room_too() {
    let hello = a_client_hello();
    let (server, addr, fp) = self_signed_server_with_fds(128, &["--max-connections", "2"]);
    let stalled: Vec<TcpStream> = (0..80)
        .map(|_| {
            let mut sock = TcpStream::connect(&addr).unwrap();
            sock.write_all(&hello).unwrap();
            sock
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let (out, took) = timed_client(&addr, &fp, Duration::from_secs(8));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"real\n");
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    assert!(
        server.logs_within(LIMIT, "handshake unfinished after"),
        "{}",
        server.stderr()
    );
    drop((stalled, server));
}

/// Handshakes have room enough that a flood of silent sockets is worked through fast: with
/// room for only 64 (each closed after its 1 s grace), 400 of them kept a real client in the
/// backlog for 5 s (600 for 8 s), and 2000 renewed at once kept it out past its own
/// handshake deadline for as long as they came. With room for 1024, the client is served at
/// once. (400, not more: the tests share one process's open-file limit.)
#[test]
fn a_flood_of_silent_sockets_does_not_keep_a_tls_client_waiting() {
    let (server, addr, fp) = self_signed_server(&["--max-connections", "2"]);
    let silent = silent_sockets(&addr, 400);
    let (out, took) = timed_client(&addr, &fp, Duration::from_secs(20));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"real\n");
    assert!(took < Duration::from_secs(3), "served after {took:?}");
    drop((silent, server));
}

/// `--help` says what --max-connections does over TLS: a client waits with its handshake
/// done, not in the backlog (before, it said only the backlog, which is the plain server's
/// rule).
#[test]
fn help_says_where_a_tls_client_waits_for_a_slot() {
    let out = tool(["echo-server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("further clients wait in the backlog (over TLS, with their handshake done"),
        "{help}"
    );
}

/// A graceful stop gives a handshake under way a second, not the whole shutdown deadline: two
/// connections that sent a ClientHello and then stalled held the stop for their 10 s
/// handshake deadline (and were counted as cut at it), while a real client's echo in
/// progress is still drained.
#[test]
fn a_graceful_stop_does_not_wait_for_stalled_handshakes() {
    let hello = a_client_hello();
    let (server, addr, fp) = self_signed_server(&["--shutdown-timeout", "20s"]);
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut sock = TcpStream::connect(&addr).unwrap();
            sock.write_all(&hello).unwrap();
            sock
        })
        .collect();
    let mut active = std_tool(["echo-client", "--pin", &format!("sha256:{fp}")])
        .arg(format!("tls:{addr}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = active.stdin.take().unwrap();
    input.write_all(b"first\n").unwrap();
    let feeder = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        let _ = input.write_all(b"second\n");
    });
    thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let (status, err) = server.stop(Duration::from_secs(20));
    let took = started.elapsed();
    feeder.join().unwrap();
    let out = crate::util::output_timeout(active, LIMIT);
    assert!(status.success(), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "stopped after {took:?}: {err}"
    );
    assert!(!err.contains("still open"), "{err}");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"first\nsecond\n");
    drop(stalled);
}

/// A stop within the second of a flood of failed handshakes still accounts for every one:
/// the count of lines held back by the once-a-second rule was said by a task the stop ended,
/// so 20 failures showed as one.
#[test]
fn a_stop_says_the_failed_handshakes_held_back() {
    let (server, addr, _) = self_signed_server(&[]);
    for _ in 0..20 {
        let mut sock = TcpStream::connect(&addr).unwrap();
        sock.set_read_timeout(Some(LIMIT)).unwrap();
        sock.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let _ = sock.read(&mut [0u8; 64]);
    }
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    let said: usize = err
        .lines()
        .map(|line| {
            if line.contains(": TLS handshake failed: ") {
                1
            } else if let Some(rest) = line.strip_prefix("TLS handshake failed for ") {
                rest.split(' ').next().unwrap().parse().unwrap()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(said, 20, "{err}");
}

/// The fingerprint exactly as the server prints it (`D1:61:…`, no `sha256:`) pastes into
/// --pin, as do its 64 digits without colons; a wrong one is still refused at the handshake.
#[test]
fn the_fingerprint_as_printed_pastes_into_pin() {
    let (_server, addr, fp) = self_signed_server(&[]);
    let target = format!("tls:{addr}");
    for pin in [fp.clone(), fp.replace(':', "").to_lowercase()] {
        let out = client(&["--pin", &pin, &target], b"pasted\n");
        assert!(out.status.success(), "{pin}: {}", stderr(&out));
        assert_eq!(out.stdout, b"pasted\n");
    }
    let wrong = fp.replacen(&fp[..2], if &fp[..2] == "00" { "01" } else { "00" }, 1);
    let out = client(&["--pin", &wrong, &target], b"x");
    assert_refused(&out, &addr, "not the pinned one");
}

/// With -q the server says nothing but the fingerprint, which a client needs to connect
/// safely; that line pasted into --pin connects.
#[test]
fn quiet_server_still_prints_its_fingerprint() {
    let (server, addr, fp) = self_signed_server(&["-q"]);
    let out = client(&["--pin", &fp, &format!("tls:{addr}")], b"q\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "more than the fingerprint: {err}");
}

/// --cert-out saves the self-signed certificate as PEM: our client's --cafile and openssl
/// s_client -CAfile verify the server with it (name included). A restart replaces the file
/// with its new certificate; a file holding anything else is refused, untouched, by name.
#[test]
fn cert_out_saves_the_certificate_for_cafile_and_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("server.pem");
    let (server, addr, fp) = self_signed_server(&["--cert-out", s(&pem)]);
    assert!(
        server.stderr().contains("certificate saved to"),
        "{}",
        server.stderr()
    );
    let saved = std::fs::read_to_string(&pem).unwrap();
    assert!(saved.starts_with("-----BEGIN CERTIFICATE-----"), "{saved}");
    let out = client(&["--cafile", s(&pem), &format!("tls:{addr}")], b"by file\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"by file\n");
    if peer_available("openssl") {
        let out = output_with_input(
            {
                let mut cmd = other("openssl");
                cmd.args(["s_client", "-connect", &addr, "-CAfile", s(&pem)])
                    .args(["-verify_return_error", "-verify_ip", "127.0.0.1"]);
                cmd
            },
            b"",
            LIMIT,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    }
    drop(server);
    let (_again, _, fp2) = self_signed_server(&["--cert-out", s(&pem)]);
    assert_ne!(fp, fp2);
    assert_ne!(
        std::fs::read_to_string(&pem).unwrap(),
        saved,
        "not replaced"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temporary file left"
    );

    let key = dir.path().join("server.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = tool(["echo-server", "--cert-out", s(&key), "tls:127.0.0.1:0"])
        .timeout(LIMIT)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("server.key") && err.contains("not replaced"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "bound anyway: {:?}", out.stdout);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    for args in [
        &["echo-server", "--cert-out", "c.pem", "127.0.0.1:0"][..],
        &[
            "echo-server",
            "--tls",
            "--cert-out",
            "c.pem",
            "--cert",
            "a",
            "--key",
            "b",
        ],
    ] {
        let out = tool(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

/// The value after `label` on the line of `text` that starts with it.
fn after<'t>(text: &'t str, label: &str) -> &'t str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {text}"))
        .trim()
}

/// `echo-client -v` shows what `openssl s_client` users look for, as `openssl x509` says it
/// for the same certificate: subject, issuer, validity dates, subjectAltName, key type and
/// size, and the protocol and cipher suite.
#[test]
fn verbose_client_shows_the_certificate_as_openssl_does() {
    if !peer_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = other("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-keyout", s(&key), "-out", s(&cert)])
        .args(["-subj", "/C=XX/O=Test Org/CN=example.test"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (_server, addr) = server(&["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"]);
    let out = client(
        &["-v", "--cafile", s(&cert), &format!("tls:{addr}")],
        b"v\n",
    );
    let ours = stderr(&out);
    assert!(out.status.success(), "{ours}");
    let x509 = peer_output(
        "openssl",
        [
            "x509",
            "-in",
            s(&cert),
            "-noout",
            "-subject",
            "-issuer",
            "-dates",
        ]
        .into_iter()
        .chain(["-dateopt", "iso_8601", "-ext", "subjectAltName", "-text"]),
        b"",
        LIMIT,
    );
    let x509 = String::from_utf8_lossy(&x509).replace(" = ", "=");
    assert!(ours.contains("TLSv1.3 TLS13_"), "{ours}");
    assert_eq!(after(&ours, "server certificate"), after(&x509, "subject="));
    assert_eq!(
        after(&ours, "server certificate"),
        "C=XX, O=Test Org, CN=example.test"
    );
    assert_eq!(
        after(&ours, "issuer:"),
        format!("{} (self-signed)", after(&x509, "issuer="))
    );
    let iso = |openssl: &str| openssl.replace('Z', " UTC");
    assert_eq!(after(&ours, "not before:"), iso(after(&x509, "notBefore=")));
    assert_eq!(after(&ours, "not after:"), iso(after(&x509, "notAfter=")));
    let names = x509
        .lines()
        .skip_while(|l| !l.contains("Subject Alternative Name"))
        .nth(1)
        .unwrap_or_default()
        .trim();
    assert_eq!(after(&ours, "names:"), names);
    assert!(x509.contains("Public-Key: (2048 bit)"), "{x509}");
    assert_eq!(after(&ours, "key:"), "RSA 2048 bits");
    let fp = fingerprint_by_openssl(&cert);
    assert_eq!(after(&ours, "sha256:"), fp);

    // The self-signed certificate: ECDSA P-256, as openssl sees it on the wire.
    let (_server, addr, fp) = self_signed_server(&[]);
    let pin = format!("sha256:{fp}");
    let out = client(&["-v", "--pin", &pin, &format!("tls:{addr}")], b"v\n");
    let ours = stderr(&out);
    assert!(out.status.success(), "{ours}");
    assert_eq!(after(&ours, "key:"), "ECDSA P-256");
    assert_eq!(
        after(&ours, "names:"),
        "DNS:localhost, IP Address:127.0.0.1"
    );
    assert!(ours.contains("key exchange "), "{ours}");
}

/// openssl's SHA-256 fingerprint of the PEM certificate at `cert`, `AB:CD:…`.
fn fingerprint_by_openssl(cert: &Path) -> String {
    let out = peer_output(
        "openssl",
        ["x509", "-in", s(cert), "-noout", "-fingerprint", "-sha256"],
        b"",
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out);
    text.trim().rsplit('=').next().unwrap().to_owned()
}
