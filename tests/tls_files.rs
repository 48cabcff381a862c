//! TLS files, verification and messages (issue 18): endless or huge files are refused by name
//! and a named pipe with no writer is empty, file names are quoted, `--pin` is strict, a
//! `--cafile` holding the server's own (self-signed, CA:TRUE) certificate trusts it and only
//! it (its key issues nothing; a peer without the key is refused), `--client-ca` follows the
//! same rule for a client's own certificate, and every failure reads as a sentence naming
//! whose certificate is wrong, never as a library identifier. Certificates are made here, at
//! test time (rcgen, or openssl as tutorials do); every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

use crate::util::{
    EchoServer, KillOnDrop, assert_no_panic, bin, other, output_timeout, output_with_input,
    peer_available, peer_output, std_tool,
};

/// Bound on every wait: a server coming up, a client finishing.
const LIMIT: Duration = Duration::from_secs(30);

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `cert` and `key` as PEM into `dir` under `name`: (cert file, key file).
fn write_pair(
    dir: &Path,
    name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// Params for localhost and 127.0.0.1 with subject CN `name`.
fn local_params(name: &str) -> CertificateParams {
    let sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

/// A self-signed certificate for localhost marked CA:TRUE, as `openssl req -x509` makes;
/// expired if `expired`.
fn self_signed_ca_leaf(dir: &Path, name: &str, expired: bool) -> (PathBuf, PathBuf) {
    let mut params = local_params(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if expired {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(10);
        params.not_after = now - time::Duration::days(1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    write_pair(dir, name, &cert, &key)
}

/// A CA (its PEM file) and leaves it signs for one `purpose` each.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "files CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    fn leaf(&self, dir: &Path, name: &str, purpose: ExtendedKeyUsagePurpose) -> (PathBuf, PathBuf) {
        let mut params = local_params(name);
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        write_pair(dir, name, &cert, &key)
    }
}

/// `echo-server ARGS` once it listens, and its address without `tls:`.
fn server(args: &[&str]) -> (EchoServer, String) {
    let mut server = EchoServer::launch(std_tool(["echo-server"].iter().chain(args)));
    let line = server.await_line(LIMIT).to_owned();
    let bare = line.strip_prefix("tls:").unwrap_or(&line).to_owned();
    (server, bare)
}

/// `echo-client ARGS` with `data` on stdin.
fn client(args: &[&str], data: &[u8]) -> Output {
    let out = output_with_input(std_tool(["echo-client"].iter().chain(args)), data, LIMIT);
    assert_no_panic(&out.stderr);
    out
}

/// Identifiers a sentence may hold although they look like code.
const NAMES_IN_PROSE: [&str; 5] = [
    "ChaCha20",
    "OpenSSL",
    "serverAuth",
    "clientAuth",
    "subjectAltName",
];

/// `text` reads as words: no CamelCase identifier (`CaUsedAsEndEntity`), no Debug output
/// (`{ … }`, `Some(`, `DnsName("`).
fn assert_words(text: &str) {
    // File names (temporary ones are random letters) are no words of ours.
    let words = text.split_whitespace().filter(|w| !w.contains('/'));
    for token in words.flat_map(|w| w.split(|c: char| !c.is_ascii_alphanumeric())) {
        let camel = token
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
        assert!(
            !camel || NAMES_IN_PROSE.iter().any(|n| token.contains(n)),
            "identifier {token:?} in: {text}"
        );
    }
    for debug in ["{", "}", "Some(", "(\"", "[Client", "[Server"] {
        assert!(!text.contains(debug), "Debug output {debug:?} in: {text}");
    }
}

/// Asserts the client failed (exit 1) in one line of words holding `want`.
fn assert_refused_with(out: &Output, want: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(want), "wanted {want:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert_words(&err);
}

/// The tool under `ulimit -v` (so a build that reads an endless file aborts quickly instead of
/// filling the machine's memory) with `args`; its output. Two malloc arenas at most, so the
/// limit does not depend on how many threads (cores) the runtime starts.
fn under_memory_limit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = other("sh")
        .envs(env.iter().copied())
        .env("MALLOC_ARENA_MAX", "2")
        .args(["-c", "ulimit -v 600000; exec \"$0\" \"$@\""])
        .arg(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_timeout(child, LIMIT)
}

/// /dev/zero (endless) and a 2 MiB file in place of each TLS file, on both ends: exit 1 at
/// start naming the file and the 1 MiB bound, nothing printed on stdout, no abort.
#[test]
fn endless_or_huge_tls_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_ca_leaf(dir.path(), "server", false);
    let huge = dir.path().join("huge.pem");
    let mut text = std::fs::read(&cert).unwrap();
    text.resize(2 << 20, b'\n');
    std::fs::write(&huge, text).unwrap();
    for bad in [Path::new("/dev/zero"), huge.as_path()] {
        let b = s(bad);
        let cases = every_tls_file_option(b, s(&cert), s(&key));
        for args in &cases {
            let out = under_memory_limit(args, &[]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(&format!("{b}: over 1 MiB")), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?}: bound anyway");
        }
    }
    // The system's roots come from SSL_CERT_FILE when it is set: the same bound holds.
    let out = under_memory_limit(
        &["echo-client", "--tls", "127.0.0.1:9"],
        &[("SSL_CERT_FILE", "/dev/zero")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("SSL_CERT_FILE: /dev/zero: over 1 MiB"),
        "{err}"
    );
}

/// Every way a TLS file is named on the command line, each with `file` in that place and the
/// good `cert` and `key` elsewhere: the server's --cert, --key and --client-ca, the client's
/// --cafile, --cert and --key.
fn every_tls_file_option<'a>(file: &'a str, cert: &'a str, key: &'a str) -> Vec<Vec<&'a str>> {
    let server = ["echo-server", "--tls"];
    let client = ["echo-client", "--tls"];
    let insecure = ["echo-client", "--tls", "--insecure"];
    vec![
        [&server[..], &["--cert", file, "--key", key, "127.0.0.1:0"]].concat(),
        [&server[..], &["--cert", cert, "--key", file, "127.0.0.1:0"]].concat(),
        [&server[..], &["--client-ca", file, "127.0.0.1:0"]].concat(),
        [&client[..], &["--cafile", file, "127.0.0.1:9"]].concat(),
        [
            &insecure[..],
            &["--cert", file, "--key", key, "127.0.0.1:9"],
        ]
        .concat(),
        [
            &insecure[..],
            &["--cert", cert, "--key", file, "127.0.0.1:9"],
        ]
        .concat(),
    ]
}

/// A TLS file name holding an escape sequence and a newline is shown quoted and escaped: one
/// line, no raw control character, whichever option named it.
#[test]
fn tls_file_names_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_ca_leaf(dir.path(), "server", false);
    let evil = dir.path().join("x\u{1b}[31m\nFAKE: line");
    let e = s(&evil);
    let cases = every_tls_file_option(e, s(&cert), s(&key));
    for args in &cases {
        let out = std_tool(args).stdin(Stdio::null()).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains('\u{1b}'), "raw ESC: {err:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "forged line: {err:?}");
        assert!(err.contains("No such file or directory"), "{err}");
    }
}

/// `--pin` takes hex digits and colons only: a sign, a space or any other character is a
/// usage error (exit 2) naming it, not a pin that fails later as a mismatch.
#[test]
fn pin_takes_hex_digits_and_colons_only() {
    // from_str_radix reads "+2" as 2: 64 characters that once passed as a fingerprint.
    let signed = format!("sha256:{}", "+2".repeat(32));
    let spaced = format!("sha256:{} {}", "ab".repeat(16), "cd".repeat(15));
    for pin in [signed.as_str(), &spaced, "sha256:+2+Ag"] {
        let out = std_tool(["echo-client", "--tls", "--pin", pin, "127.0.0.1:9"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{pin}: {err}");
        assert!(err.contains("is not a hex digit"), "{pin}: {err}");
    }
    let colons = format!("sha256:{}", vec!["Ab"; 32].join(":"));
    let out = std_tool(["echo-client", "--tls", "--pin", &colons, "127.0.0.1:9"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// The certificate `openssl req -x509 -newkey ec … -nodes` makes (self-signed, CA:TRUE, what
/// socat's and most tutorials' servers use) works with `--cafile` naming that very file, as
/// with `openssl s_client -CAfile`; the name is still checked.
#[test]
fn cafile_trusts_the_servers_own_openssl_certificate() {
    if !peer_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-keyout", s(&key), "-out", s(&cert)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let (_server, addr) = server(&["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"]);
    let target = format!("tls:{addr}");
    let out = client(&["--cafile", s(&cert), &target], b"trusted\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"trusted\n");
    let out = client(
        &[
            "--cafile",
            s(&cert),
            "--servername",
            "example.test",
            &target,
        ],
        b"x",
    );
    assert_refused_with(
        &out,
        "not valid for \"example.test\" (it is for localhost, 127.0.0.1)",
    );
}

/// Trusting the server's own certificate as it is still checks its dates, and trusts only
/// that certificate: another self-signed one in --cafile does not vouch for it.
#[test]
fn a_certificate_trusted_as_is_must_be_current_and_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (old, old_key) = self_signed_ca_leaf(dir.path(), "old", true);
    let (current, current_key) = self_signed_ca_leaf(dir.path(), "current", false);
    let (other_cert, _) = self_signed_ca_leaf(dir.path(), "other", false);
    let (_old_server, addr) = server(&[
        "--tls",
        "--cert",
        s(&old),
        "--key",
        s(&old_key),
        "127.0.0.1:0",
    ]);
    let out = client(&["--cafile", s(&old), &format!("tls:{addr}")], b"x");
    assert_refused_with(&out, "the server's certificate expired on ");
    let (_server, addr) = server(&[
        "--tls",
        "--cert",
        s(&current),
        "--key",
        s(&current_key),
        "127.0.0.1:0",
    ]);
    let target = format!("tls:{addr}");
    let out = client(&["--cafile", s(&other_cert), &target], b"x");
    assert_refused_with(&out, "a CA certificate, not one for a server");
    let out = client(&["--cafile", s(&current), &target], b"same\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"same\n");
}

/// Certificates for the wrong role, on each side, read as sentences naming whose certificate
/// is wrong and what to do, on the client's stderr and in the server's log alike.
#[test]
fn certificate_mistakes_read_as_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (client_only, client_key) =
        ca.leaf(dir.path(), "client", ExtendedKeyUsagePurpose::ClientAuth);
    let (server_only, server_key) =
        ca.leaf(dir.path(), "server", ExtendedKeyUsagePurpose::ServerAuth);

    // A client certificate served by a server.
    let (_wrong, addr) = server(&[
        "--tls",
        "--cert",
        s(&client_only),
        "--key",
        s(&client_key),
        "127.0.0.1:0",
    ]);
    let out = client(&["--cafile", s(&ca.pem), &format!("tls:{addr}")], b"x");
    assert_refused_with(
        &out,
        "the server's certificate is not one for a server (it is for clients only): issue one with extended key usage serverAuth",
    );

    // A server certificate presented by a client, to a server that requires client ones.
    let (mtls, addr) = server(&[
        "-v",
        "--tls",
        "--cert",
        s(&server_only),
        "--key",
        s(&server_key),
        "--client-ca",
        s(&ca.pem),
        "127.0.0.1:0",
    ]);
    let args = [
        "--cafile",
        s(&ca.pem),
        "--cert",
        s(&server_only),
        "--key",
        s(&server_key),
    ];
    let out = client(&[&args[..], &[&format!("tls:{addr}")]].concat(), b"x");
    assert_refused_with(&out, "the server refused our client certificate");
    let said = "TLS handshake failed: the client's certificate is not one for a client (it is for servers only)";
    assert!(mtls.logs_within(LIMIT, said), "{}", mtls.stderr());
    assert_words(&mtls.stderr());

    // A CA certificate served as the server's, its CA not in --cafile.
    let (ca_leaf, ca_leaf_key) = self_signed_ca_leaf(dir.path(), "ca-leaf", false);
    let (_ca_served, addr) = server(&[
        "--tls",
        "--cert",
        s(&ca_leaf),
        "--key",
        s(&ca_leaf_key),
        "127.0.0.1:0",
    ]);
    let out = client(&["--cafile", s(&ca.pem), &format!("tls:{addr}")], b"x");
    assert_refused_with(
        &out,
        "the server's certificate is a CA certificate, not one for a server",
    );
}

/// What openssl clients commonly get wrong reads as words in the server's log: a server name
/// (SNI) that is no host name, and an offer of static-RSA suites only.
#[test]
fn client_mistakes_read_as_sentences_in_the_log() {
    if !peer_available("openssl") {
        return;
    }
    let (server, addr) = server(&["-v", "--tls", "127.0.0.1:0"]);
    let s_client = |extra: &[&str]| {
        let out = other("openssl")
            .args(["s_client", "-connect", &addr])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", stderr(&out));
    };
    s_client(&["-servername", "bad..name"]);
    let said = "TLS handshake failed: the client asked for a server name (SNI) that is not one valid host name";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    s_client(&["-tls1_2", "-cipher", "AES128-SHA"]);
    let said = "TLS handshake failed: no key exchange in common with the client: we need ECDHE";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    assert!(
        server.stderr().contains("static RSA"),
        "{}",
        server.stderr()
    );
    // Our certificate is ECDSA: a TLS 1.2 client taking RSA signatures only has no suite.
    s_client(&["-tls1_2", "-sigalgs", "RSA+SHA256"]);
    let said = "and a signature by our certificate's kind of key (ECDSA, Ed25519 or RSA)";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    assert_words(&server.stderr());
}

/// A key of a type we cannot sign with (Ed448, as openssl makes on request) is named with
/// what to make instead, on both ends; a damaged certificate says so without nested reasons.
#[test]
fn unusable_keys_and_damaged_certificates_say_what_to_do() {
    if !peer_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("e448.pem"), dir.path().join("e448.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ed448",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-keyout", s(&key), "-out", s(&cert)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let garbled = dir.path().join("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases: [(&[&str], String); 3] = [
        (
            &[
                "echo-server",
                "--tls",
                "--cert",
                s(&cert),
                "--key",
                s(&key),
                "127.0.0.1:0",
            ],
            format!("{}: a key type we cannot use; make an ECDSA", s(&key)),
        ),
        (
            &[
                "echo-client",
                "--tls",
                "--insecure",
                "--cert",
                s(&cert),
                "--key",
                s(&key),
                "127.0.0.1:9",
            ],
            format!("{}: a key type we cannot use", s(&key)),
        ),
        (
            &[
                "echo-client",
                "--tls",
                "--cafile",
                s(&garbled),
                "127.0.0.1:9",
            ],
            format!(
                "{}: not a valid certificate: it is damaged (not valid DER)",
                s(&garbled)
            ),
        ),
    ];
    for (args, want) in cases {
        let out = std_tool(args).stdin(Stdio::null()).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&want), "wanted {want:?}: {err}");
        assert_words(&err);
    }
}

/// A named pipe nothing writes to, given as any TLS file, is an empty file (exit 1 naming it)
/// at once, not an open() that waits for ever; a pipe that has a writer (bash's `<(cat
/// FILE)`) is still read to its end.
#[test]
fn a_named_pipe_without_a_writer_is_empty_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_ca_leaf(dir.path(), "server", false);
    let fifo = dir.path().join("fifo");
    let made = other("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let f = s(&fifo);
    let cases: [&[&str]; 4] = [
        &[
            "echo-server",
            "--tls",
            "--cert",
            f,
            "--key",
            s(&key),
            "127.0.0.1:0",
        ],
        &[
            "echo-server",
            "--tls",
            "--cert",
            s(&cert),
            "--key",
            f,
            "127.0.0.1:0",
        ],
        &["echo-server", "--tls", "--client-ca", f, "127.0.0.1:0"],
        &["echo-client", "--tls", "--cafile", f, "127.0.0.1:9"],
    ];
    for args in cases {
        let child = std_tool(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = output_timeout(child, Duration::from_secs(10));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&format!("{f}: empty")), "{args:?}: {err}");
    }
    if !peer_available("bash") {
        return;
    }
    let (_server, addr) = server(&["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"]);
    let child = other("bash")
        .args([
            "-c",
            "exec \"$0\" echo-client --cafile <(sleep 0.2; cat \"$1\") \"$2\"",
        ])
        .arg(bin())
        .args([s(&cert), &format!("tls:{addr}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A server's own certificate in --cafile is trusted as that one certificate only: whoever
/// holds its key cannot issue others with it (for any name) that the client then accepts, as
/// it does not with openssl either. The file's CA still issues as CAs do.
#[test]
fn a_server_certificate_in_cafile_issues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let mut params = local_params("leaf");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf =
        CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &ca.issuer).unwrap();
    let leaf_pem = dir.path().join("leaf.pem");
    std::fs::write(&leaf_pem, leaf.pem()).unwrap();
    // A certificate for the same names, "issued" by the leaf's key: served with the leaf after it.
    let mut params = local_params("minted");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let minted = params.signed_by(&key, &leaf).unwrap();
    let (minted_pem, minted_key) = write_pair(dir.path(), "minted", &minted, &key);
    let chain = format!("{}{}", minted.pem(), leaf.pem());
    std::fs::write(&minted_pem, chain).unwrap();
    let (_server, addr) = server(&[
        "--tls",
        "--cert",
        s(&minted_pem),
        "--key",
        s(&minted_key),
        "127.0.0.1:0",
    ]);
    let target = format!("tls:{addr}");
    let out = client(&["--cafile", s(&leaf_pem), &target], b"x");
    let said = format!(
        "unknown issuer: the server's certificate is signed by CN=leaf in {}, which is not a CA \
         certificate: ",
        s(&leaf_pem)
    );
    assert_refused_with(&out, &said);
    // The CA that signed the leaf vouches for both (a chain through the leaf is refused by
    // webpki as a non-CA issuer; the leaf itself is served here).
    let out = client(&["--cafile", s(&ca.pem), &target], b"x");
    assert_refused_with(&out, "is signed by a certificate that is not a CA");
}

/// A CA certificate served in place of the server's, not being the one in --cafile, is named
/// as such with the file; one in the file is trusted as it is only if its extended key usage
/// (when it has one) allows a server, as openssl checks it too.
#[test]
fn trust_as_is_names_the_file_and_checks_the_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let (served, served_key) = self_signed_ca_leaf(dir.path(), "served", false);
    let (other_cert, _) = self_signed_ca_leaf(dir.path(), "other", false);
    let (_server, addr) = server(&[
        "--tls",
        "--cert",
        s(&served),
        "--key",
        s(&served_key),
        "127.0.0.1:0",
    ]);
    let out = client(&["--cafile", s(&other_cert), &format!("tls:{addr}")], b"x");
    assert_refused_with(&out, &format!("and it is not in {}: ", s(&other_cert)));

    let mut params = local_params("client-only");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert, key) = write_pair(dir.path(), "client-only", &cert, &key);
    let (_server, addr) = server(&["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"]);
    let out = client(&["--cafile", s(&cert), &format!("tls:{addr}")], b"x");
    assert_refused_with(&out, "the server's certificate is not for a server");
}

/// Colons in a pin go between pairs of digits, as fingerprints are shown, or nowhere: one
/// elsewhere (a leading or doubled one, one inside a pair) is a usage error naming the rule.
#[test]
fn pin_colons_go_between_pairs_only() {
    let hex = "ab".repeat(32);
    let pairs = vec!["AB"; 32].join(":");
    for pin in [
        format!("sha256::{hex}"),
        format!("sha256:{pairs}:"),
        format!("sha256:a:b{}", &hex[2..]),
        format!("sha256:{}", hex.replace("ab", "a:b:")),
    ] {
        let out = std_tool(["echo-client", "--tls", "--pin", &pin, "127.0.0.1:9"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{pin}: {err}");
        assert!(
            err.contains("colons go only between pairs of digits"),
            "{pin}: {err}"
        );
    }
}

/// A certificate naming its host only in its CN says it names no host and how to make one
/// that does (not "connect by a name it holds"); a server whose certificate is not valid yet
/// does not read in its log that it expired.
#[test]
fn no_host_name_and_not_yet_valid_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cn_only, cn_key) = write_pair(dir.path(), "cn-only", &cert, &key);
    let (_server, addr) = server(&[
        "--tls",
        "--cert",
        s(&cn_only),
        "--key",
        s(&cn_key),
        "localhost:0",
    ]);
    let out = client(&["--cafile", s(&cn_only), &format!("tls:{addr}")], b"x");
    assert_refused_with(
        &out,
        "it names no host (no subjectAltName; a name only in its CN does not count): make it with subjectAltName=DNS:NAME or IP:ADDRESS, or trust it by --pin",
    );

    let mut params = local_params("future");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(10);
    params.not_after = now + time::Duration::days(20);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (future, future_key) = write_pair(dir.path(), "future", &cert, &key);
    let (logged, addr) = server(&[
        "-v",
        "--tls",
        "--cert",
        s(&future),
        "--key",
        s(&future_key),
        "127.0.0.1:0",
    ]);
    let out = client(&["--cafile", s(&future), &format!("tls:{addr}")], b"x");
    assert_refused_with(&out, "the server's certificate is not valid before ");
    let said = "the client refused our certificate: it has expired or is not valid yet";
    assert!(logged.logs_within(LIMIT, said), "{}", logged.stderr());
}

/// Serves one certificate and key, without checking that they belong together.
#[derive(Debug)]
struct Always(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Always {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(std::sync::Arc::clone(&self.0))
    }
}

/// A TLS server on a thread presenting `cert` while signing with another key, as a server
/// that copied a certificate (not its key) would: its address.
fn impostor_server(cert: &Path, tls12: bool) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let own = KeyPair::generate().unwrap();
    let key = PrivateKeyDer::try_from(own.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signer = provider.key_provider.load_private_key(key).unwrap();
    let resolver = Always(Arc::new(rustls::sign::CertifiedKey::new(chain, signer)));
    let versions: &[&rustls::SupportedProtocolVersion] = match tls12 {
        true => &[&rustls::version::TLS12],
        false => &[&rustls::version::TLS13],
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(LIMIT)).unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let _ = conn.complete_io(&mut sock);
    });
    addr
}

/// A server presenting the very certificate of --cafile (or of a --pin) but not holding its
/// key fails the handshake, on TLS 1.2 and 1.3: trusting a certificate as it is never skips
/// the proof that the server holds its key.
#[test]
fn the_trusted_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed_ca_leaf(dir.path(), "copied", false);
    let der = std::fs::read_to_string(&cert).unwrap();
    let pin = format!("sha256:{}", fingerprint_of(&der));
    for (tls12, trust) in [(false, "--cafile"), (true, "--cafile"), (false, "--pin")] {
        let addr = impostor_server(&cert, tls12);
        let trusted = if trust == "--pin" {
            pin.as_str()
        } else {
            s(&cert)
        };
        let out = client(&[trust, trusted, &format!("tls:{addr}")], b"x");
        assert!(out.stdout.is_empty(), "{}", stderr(&out));
        assert_refused_with(
            &out,
            "the server does not hold the key of the certificate it presents",
        );
    }
}

/// The SHA-256 fingerprint of the first certificate in PEM `text`, as hex.
fn fingerprint_of(text: &str) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(text.as_bytes()).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SSL_CERT_FILE naming a named pipe nothing writes to is read as empty and named, not an
/// open() that waits for ever; one that has a writer (bash's `<(cat CA)`) gives its roots
/// (it was once read twice, the second time finding the pipe drained).
#[test]
fn ssl_cert_file_may_be_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(other("mkfifo").arg(&fifo).status().unwrap().success());
    let child = std_tool(["echo-client", "--tls", "127.0.0.1:9"])
        .env("SSL_CERT_FILE", &fifo)
        .env("SSL_CERT_DIR", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, Duration::from_secs(10));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want = format!(
        "no system trust roots found: SSL_CERT_FILE: {}: empty",
        s(&fifo)
    );
    assert!(err.contains(&want), "{err}");
    if !peer_available("bash") {
        return;
    }
    let ca = Ca::new(dir.path());
    let (cert, key) = ca.leaf(dir.path(), "server", ExtendedKeyUsagePurpose::ServerAuth);
    let (_server, addr) = server(&["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"]);
    let script = "SSL_CERT_FILE=<(cat \"$1\") exec \"$0\" echo-client \"$2\"";
    let child = other("bash")
        .args(["-c", script])
        .arg(bin())
        .args([s(&ca.pem), &format!("tls:{addr}")])
        .env("SSL_CERT_DIR", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A server whose RSA key is under 2048 bits (openssl serves one at security level 0) is
/// refused for its key's size, said so, not as a server without its key nor as a damaged
/// certificate: its handshake signature fails only because we do not verify such keys.
#[test]
fn a_short_rsa_key_is_named_for_its_size() {
    if !peer_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("rsa.pem"), dir.path().join("rsa.key"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:1024", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-keyout", s(&key), "-out", s(&cert)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = KillOnDrop(
        other("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args(["-cert", s(&cert), "-key", s(&key)])
            .args(["-cipher", "DEFAULT@SECLEVEL=0", "-www"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < LIMIT, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = client(
        &["--cafile", s(&cert), &format!("tls:localhost:{port}")],
        b"",
    );
    assert_refused_with(&out, "the server's certificate has an RSA key of 1024 bits");
}

/// The certificate and key files swapped, or a chain whose first certificate is not the key's,
/// say so instead of "no PEM certificate found" or a bare mismatch.
#[test]
fn swapped_files_and_a_chain_out_of_order_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (cert, key) = ca.leaf(dir.path(), "server", ExtendedKeyUsagePurpose::ServerAuth);
    let reversed = dir.path().join("reversed.pem");
    let text = std::fs::read_to_string(&ca.pem).unwrap() + &std::fs::read_to_string(&cert).unwrap();
    std::fs::write(&reversed, text).unwrap();
    let serve = |cert: &Path, key: &Path| {
        let args = [
            "echo-server",
            "--tls",
            "--cert",
            s(cert),
            "--key",
            s(key),
            "127.0.0.1:0",
        ];
        let out = std_tool(args).stdin(Stdio::null()).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        err
    };
    let err = serve(&key, &cert);
    assert!(
        err.contains(&format!(
            "{}: it holds a private key, not a certificate",
            s(&key)
        )),
        "{err}"
    );
    let err = serve(&cert, &cert);
    assert!(
        err.contains(&format!(
            "{}: it holds a certificate, not a private key",
            s(&cert)
        )),
        "{err}"
    );
    let err = serve(&reversed, &key);
    assert!(
        err.contains("the chain must follow the certificate of this key"),
        "{err}"
    );
}

/// Serves one client certificate and key, without checking that they belong together.
#[derive(Debug)]
struct AlwaysClient(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for AlwaysClient {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(std::sync::Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A rustls client presenting `client_cert` but signing with a key of its own, to the server
/// at `addr` whose certificate `server_ca` issued; it writes a byte and reads, bounded.
fn present_without_its_key(client_cert: &Path, server_ca: &Path, addr: &str) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let own = KeyPair::generate().unwrap();
    let signer = provider
        .key_provider
        .load_private_key(PrivateKeyDer::try_from(own.serialize_der()).unwrap())
        .unwrap();
    let chain = CertificateDer::pem_file_iter(client_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(server_ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(AlwaysClient(Arc::new(
            rustls::sign::CertifiedKey::new(chain, signer),
        ))));
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let _ = tls.write_all(b"x").and_then(|()| tls.flush());
    let _ = tls.read(&mut [0; 16]);
}

/// A client presenting a client certificate issued by the server's --client-ca but signing
/// with another key is refused, and the server's log says the client does not hold that
/// certificate's key (not that the certificate is damaged).
#[test]
fn a_client_without_its_certificates_key_is_named_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (cert, key) = ca.leaf(dir.path(), "server", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, _) = ca.leaf(dir.path(), "client", ExtendedKeyUsagePurpose::ClientAuth);
    let (server, addr) = server(&[
        "-v",
        "--tls",
        "--cert",
        s(&cert),
        "--key",
        s(&key),
        "--client-ca",
        s(&ca.pem),
        "127.0.0.1:0",
    ]);
    present_without_its_key(&client_cert, &ca.pem, &addr);
    let said =
        "TLS handshake failed: the client does not hold the key of the certificate it presents";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    assert_words(&server.stderr());
}

/// The bound is exactly 1 MiB: a certificate file of 1,048,576 bytes (a certificate and
/// blank lines) is served, one byte more is refused naming the file.
#[test]
fn the_bound_is_exactly_one_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_ca_leaf(dir.path(), "server", false);
    let mut text = std::fs::read(&cert).unwrap();
    text.resize(1 << 20, b'\n');
    std::fs::write(&cert, &text).unwrap();
    let (_server, addr) = server(&["--tls", "--cert", s(&cert), "--key", s(&key), "127.0.0.1:0"]);
    let out = client(&["--cafile", s(&cert), &format!("tls:{addr}")], b"full\n");
    assert!(out.status.success(), "{}", stderr(&out));
    text.push(b'\n');
    std::fs::write(&cert, &text).unwrap();
    let args = [
        "echo-server",
        "--tls",
        "--cert",
        s(&cert),
        "--key",
        s(&key),
        "127.0.0.1:0",
    ];
    let child = std_tool(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, LIMIT);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}: over 1 MiB", s(&cert))), "{err}");
}

/// Runs `openssl ARGS` (making certificates, in `dir`) and asserts it succeeded.
fn openssl(dir: &Path, args: &[&str]) {
    let made = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl {args:?}: {}", stderr(&made));
}

/// `openssl req -x509 -newkey ec … -nodes` with `extra` (`-addext …`): a self-signed
/// certificate (CA:TRUE unless `extra` says otherwise) for CN `name`, as `name.pem` and
/// `name.key` in `dir`, valid for `days`.
fn openssl_self_signed(dir: &Path, name: &str, days: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subj = format!("/CN={name}");
    let req = [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        days,
        "-subj",
        &subj,
        "-keyout",
        &key,
        "-out",
        &cert,
    ];
    openssl(dir, &[&req[..], extra].concat());
    (dir.join(cert), dir.join(key))
}

/// A mutual-TLS server (self-signed certificate, `-v`) requiring client certificates by
/// `client_ca`; its address without `tls:`, and `--pin` with its fingerprint for our client.
fn mtls_server(client_ca: &Path) -> (EchoServer, String, String) {
    let (server, addr) = server(&["-v", "--tls", "--client-ca", s(client_ca), "127.0.0.1:0"]);
    // The fingerprint's line comes before this one; stderr is read apart from stdout.
    assert!(
        server.logs_within(LIMIT, "listening on"),
        "{}",
        server.stderr()
    );
    let log = server.stderr();
    let fingerprint = log
        .split_once("sha256 ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint in: {log}"));
    let pin = format!("sha256:{fingerprint}");
    (server, addr, pin)
}

/// Our client presenting `cert` and `key` to the server at `addr` pinned by `pin`, with `data`.
fn client_with(cert: &Path, key: &Path, (addr, pin): (&str, &str), data: &[u8]) -> Output {
    let target = format!("tls:{addr}");
    client(
        &["--pin", pin, "--cert", s(cert), "--key", s(key), &target],
        data,
    )
}

/// `openssl s_client VERSION` presenting `cert` and `key`: it connects and, its input empty,
/// leaves.
fn s_client_with(cert: &Path, key: &Path, addr: &str, version: &str) -> Output {
    let mut cmd = other("openssl");
    cmd.args(["s_client", version, "-connect", addr]);
    cmd.args(["-cert", s(cert), "-key", s(key)]);
    output_with_input(cmd, b"", LIMIT)
}

/// The certificate people make with `openssl req -x509` (self-signed, CA:TRUE) works as a
/// client's when that very certificate is in --client-ca, as with `openssl s_server -Verify
/// -CAfile`: for our client, socat and openssl s_client alike. An expired one is refused for
/// its date, and another self-signed one is named as not being in the file.
#[test]
fn client_ca_trusts_a_clients_own_openssl_certificate() {
    if !peer_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (me, me_key) = openssl_self_signed(dir.path(), "me", "2", &[]);
    let (server, addr, pin) = mtls_server(&me);
    let out = client_with(&me, &me_key, (&addr, &pin), b"mutual\n");
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.stderr()
    );
    assert_eq!(out.stdout, b"mutual\n");
    assert!(server.logs_within(LIMIT, "client certificate CN=me"));
    if peer_available("socat") {
        let target = format!("OPENSSL:{addr},verify=0,cert={},key={}", s(&me), s(&me_key));
        let back = peer_output("socat", ["-t", "20", "-", &target], b"socat\n", LIMIT);
        assert_eq!(back, b"socat\n", "{}", server.stderr());
    }
    for version in ["-tls1_3", "-tls1_2"] {
        let out = s_client_with(&me, &me_key, &addr, version);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let served = || server.stderr().matches("client certificate CN=me").count();
    let want = 3 + usize::from(peer_available("socat"));
    assert!(
        crate::util::eventually(LIMIT, || served() >= want),
        "{}",
        server.stderr()
    );
    assert!(
        !server.stderr().contains("handshake failed"),
        "{}",
        server.stderr()
    );

    // Expired: openssl's -days 0 would not be; rcgen back-dates one.
    let (old, old_key) = self_signed_ca_leaf(dir.path(), "old", true);
    let (old_server, addr, pin) = mtls_server(&old);
    let out = client_with(&old, &old_key, (&addr, &pin), b"x");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = "TLS handshake failed: the client's certificate expired on ";
    assert!(
        old_server.logs_within(LIMIT, said),
        "{}",
        old_server.stderr()
    );

    // Another self-signed one than the file's.
    let (other_cert, other_key) = openssl_self_signed(dir.path(), "other", "2", &[]);
    let out = client_with(&other_cert, &other_key, (&addr, &pin), b"x");
    assert_refused_with(&out, "the server refused our client certificate");
    let said = format!(
        "TLS handshake failed: the client's certificate is a CA certificate, not one for a \
         client, and it is not in {}: ",
        s(&old)
    );
    assert!(
        old_server.logs_within(LIMIT, &said),
        "{}",
        old_server.stderr()
    );
    assert_words(&old_server.stderr());
}

/// A client certificate in --client-ca that is not a CA's (as `openssl req -x509` makes one
/// with CA:FALSE) is trusted as itself only: a certificate its key signs, made here with
/// `openssl x509 -req -CA`, is refused in a sentence (openssl's verification calls it an
/// "invalid CA certificate"), while the certificate itself is accepted.
#[test]
fn a_client_certificate_in_client_ca_issues_nothing() {
    if !peer_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let leaf_ext = [
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,digitalSignature",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ];
    let (leaf, leaf_key) = openssl_self_signed(dir.path(), "leaf", "2", &leaf_ext);
    let (server, addr, pin) = mtls_server(&leaf);
    let out = client_with(&leaf, &leaf_key, (&addr, &pin), b"as itself\n");
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.stderr()
    );
    assert_eq!(out.stdout, b"as itself\n");

    // The leaf's key "issues" a client certificate, presented with the leaf after it.
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=minted",
            "-keyout",
            "minted.key",
            "-out",
            "minted.csr",
        ],
    );
    std::fs::write(dir.path().join("ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "minted.csr",
            "-CA",
            "leaf.pem",
            "-CAkey",
            "leaf.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "minted.pem",
        ],
    );
    let minted = dir.path().join("minted.pem");
    let chain =
        std::fs::read_to_string(&minted).unwrap() + &std::fs::read_to_string(&leaf).unwrap();
    std::fs::write(&minted, chain).unwrap();
    let out = client_with(&minted, &dir.path().join("minted.key"), (&addr, &pin), b"x");
    assert_refused_with(&out, "the server refused our client certificate");
    let said = format!(
        "TLS handshake failed: unknown issuer: the client's certificate is signed by CN=leaf in \
         {}, which is not a CA certificate: ",
        s(&leaf)
    );
    assert!(server.logs_within(LIMIT, &said), "{}", server.stderr());
    assert!(
        !server.stderr().contains("CN=minted"),
        "{}",
        server.stderr()
    );
    assert_words(&server.stderr());
}

/// Beside certificates trusted as themselves, a CA in --client-ca still vouches for the client
/// certificates it issues, and only for those: one from another CA is refused.
#[test]
fn client_ca_issued_certificates_still_work_beside_own_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (issued, issued_key) = ca.leaf(dir.path(), "issued", ExtendedKeyUsagePurpose::ClientAuth);
    let (own, own_key) = self_signed_ca_leaf(dir.path(), "own", false);
    let both = dir.path().join("both.pem");
    let text = std::fs::read_to_string(&ca.pem).unwrap() + &std::fs::read_to_string(&own).unwrap();
    std::fs::write(&both, text).unwrap();
    let (server, addr, pin) = mtls_server(&both);
    for (cert, key) in [(&issued, &issued_key), (&own, &own_key)] {
        let out = client_with(cert, key, (&addr, &pin), b"trusted\n");
        assert!(
            out.status.success(),
            "{}\n{}",
            stderr(&out),
            server.stderr()
        );
        assert_eq!(out.stdout, b"trusted\n");
    }
    // From a CA of another name: one of the same name reads as a forged signature.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "stranger CA");
    let stranger = Ca {
        issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        pem: dir.path().join("unused.pem"),
    };
    let (wrong, wrong_key) =
        stranger.leaf(dir.path(), "wrong", ExtendedKeyUsagePurpose::ClientAuth);
    let out = client_with(&wrong, &wrong_key, (&addr, &pin), b"x");
    assert_refused_with(&out, "the server refused our client certificate");
    let said = "TLS handshake failed: unknown issuer: the client's certificate is not signed by a CA in --client-ca";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    assert_words(&server.stderr());
}

/// A client's own certificate in --client-ca proves nothing without its key: a client that
/// presents it but signs with another key is refused as not holding it.
#[test]
fn a_clients_own_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (cert, key) = ca.leaf(dir.path(), "server", ExtendedKeyUsagePurpose::ServerAuth);
    let (me, _) = self_signed_ca_leaf(dir.path(), "me", false);
    let (server, addr) = server(&[
        "-v",
        "--tls",
        "--cert",
        s(&cert),
        "--key",
        s(&key),
        "--client-ca",
        s(&me),
        "127.0.0.1:0",
    ]);
    present_without_its_key(&me, &ca.pem, &addr);
    let said =
        "TLS handshake failed: the client does not hold the key of the certificate it presents";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    assert!(!server.stderr().contains("client certificate CN=me"));
    assert_words(&server.stderr());
}

/// A --client-ca of many certificates (700 here, 0.6 MiB) still serves: the names the server
/// sends for clients to choose by would not fit in a handshake message, so it sends none and
/// verifies what comes all the same (openssl sends them all, and no client reads the message).
#[test]
fn a_client_ca_of_many_certificates_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (me, me_key) = self_signed_ca_leaf(dir.path(), "me", false);
    let key = KeyPair::generate().unwrap();
    let mut many = String::new();
    for n in 0..700 {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let name = format!("client {n} of a directory whose names are long, as real ones are");
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(
            DnType::OrganizationName,
            "Example Organisation of Many Clients",
        );
        many += &params.self_signed(&key).unwrap().pem();
    }
    many += &std::fs::read_to_string(&me).unwrap();
    let file = dir.path().join("many.pem");
    std::fs::write(&file, many).unwrap();
    let (server, addr, pin) = mtls_server(&file);
    let out = client_with(&me, &me_key, (&addr, &pin), b"among many\n");
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.stderr()
    );
    assert_eq!(out.stdout, b"among many\n");
    let (other_cert, other_key) = self_signed_ca_leaf(dir.path(), "other", false);
    let out = client_with(&other_cert, &other_key, (&addr, &pin), b"x");
    assert_refused_with(&out, "the server refused our client certificate");
    assert_no_panic(server.stderr().as_bytes());
}

/// A client's own certificate trusted as it is must still be one for a client: one whose
/// extended key usage allows servers only is refused for its purpose, in words.
#[test]
fn a_clients_own_certificate_must_be_for_clients() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = local_params("server-only");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert, key) = write_pair(dir.path(), "server-only", &cert, &key);
    let (server, addr, pin) = mtls_server(&cert);
    let out = client_with(&cert, &key, (&addr, &pin), b"x");
    assert_refused_with(&out, "the server refused our client certificate");
    let said = "TLS handshake failed: the client's certificate is not for a client";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    assert_words(&server.stderr());
}
