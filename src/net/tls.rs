//! TLS for both ends, on rustls with the ring provider, named explicitly everywhere a config
//! is built so no second provider (aws-lc-rs) can ever be linked or picked at run time.
//!
//! What is here: loading PEM certificates and keys (at most [`MAX_FILE`] each; each error
//! names its file, quoted, and a key that does not match its certificate is refused before
//! anything is bound); the server's self-signed certificate and `--cert-out`'s file
//! ([`cert_out`]); SHA-256 fingerprints as `AB:CD:…` and the `--pin` verifier; the
//! `--insecure` verifier; `--cafile`'s verifier ([`cafile`]) and `--client-ca`'s
//! ([`client_key`]); the two config builders; a certificate's details in words ([`details`]);
//! and the one-line reasons a failed handshake is reported with ([`reason`]).

use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use color_eyre::eyre::{self, WrapErr};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::ui::quote::{quote, quoted};

mod cafile;
pub mod cert_out;
mod client_key;
mod details;
mod reason;

pub use cafile::TrustFile;
use details::rsa_bits;
pub use details::{Details, details, subject};

use reason::certificate_reason;
pub use reason::{Party, reason, tls_reason};

/// The one crypto provider: ring, with AES-128-GCM first. ring's default puts AES-256-GCM
/// with SHA-384 first, whose hashing has no hardware help here: measured with perf during a
/// handshake loop, SHA-512 blocks took 9% of the server's time. AES-128-GCM is TLS 1.3's
/// mandatory suite, as safe for this use, and faster for bulk data too.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::CipherSuite as S;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            S::TLS13_AES_128_GCM_SHA256
                | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// A certificate chain (end entity first) and its private key.
pub struct Identity {
    /// The chain, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The end entity's key.
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key's bytes.
        write!(f, "Identity({} certificates)", self.chain.len())
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The most a certificate, key or CA file may hold. A real chain or CA bundle is a few
/// KiB (the system's whole bundle is about 200 KiB); reading at most this much means a
/// device such as /dev/zero or a huge file by mistake is refused instead of filling memory.
pub const MAX_FILE: u64 = 1 << 20;

/// Reads `path` whole, refusing a file over [`MAX_FILE`] (or endless) with its name.
fn read_bounded(path: &Path) -> eyre::Result<Vec<u8>> {
    let (text, pipe) = read_limited(path).map_err(|err| {
        eyre::eyre!(
            "{}: {}",
            quote(path.as_os_str()),
            crate::report::io_reason(&err)
        )
    })?;
    if text.len() as u64 > MAX_FILE {
        eyre::bail!("{}", too_large(path));
    }
    if text.is_empty() {
        eyre::bail!("{}", no_certificate(path, true, pipe));
    }
    Ok(text)
}

/// At most [`MAX_FILE`] + 1 bytes of `path`, and whether it is a named pipe.
fn read_limited(path: &Path) -> io::Result<(Vec<u8>, bool)> {
    let file = open(path)?;
    let pipe = file.metadata().is_ok_and(|m| m.file_type().is_fifo());
    let mut text = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut text)?;
    Ok((text, pipe))
}

/// `path` holds no certificate: it is `empty` (a named pipe if `pipe`), or holds other things.
fn no_certificate(path: &Path, empty: bool, pipe: bool) -> String {
    let why = match (empty, pipe) {
        (true, true) => "empty: nothing writes to this named pipe",
        (true, false) => "the file is empty",
        (false, _) => "no PEM certificate found",
    };
    format!("{}: {why}", quote(path.as_os_str()))
}

/// Opens `path` for reading without waiting for a writer: a named pipe that nothing has open
/// for writing would block a plain open() for ever; opened non-blocking it reads as empty.
/// Blocking reads are restored at once, so a pipe that has a writer (`--cert <(cat c.pem)`)
/// is read to its end.
fn open(path: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    fcntl_setfl(&file, fcntl_getfl(&file)? - OFlags::NONBLOCK)?;
    Ok(file)
}

/// `path` is over the bound, in words.
fn too_large(path: &Path) -> String {
    format!(
        "{}: over 1 MiB, too large for a PEM certificate or key file (wrong file?)",
        quote(path.as_os_str())
    )
}

/// Loads `--cert` and `--key`: every certificate of the cert file (the chain) and the key,
/// checked to belong to the first certificate.
pub fn load_identity(cert: &Path, key: &Path) -> eyre::Result<Identity> {
    let chain = load_certs(cert)?;
    let key_text = read_bounded(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_text).map_err(|err| match err {
        pem::Error::NoItemsFound | pem::Error::Base64Decode(_) if encrypted(&key_text) => {
            eyre::eyre!(
                "{}: the key is encrypted; give it decrypted (openssl pkey -in KEY -out PLAIN)",
                quote(key.as_os_str())
            )
        }
        pem::Error::NoItemsFound if holds(&key_text, b"-----BEGIN CERTIFICATE-----") => {
            eyre::eyre!(
                "{}: it holds a certificate, not a private key (the certificate file in the \
                 key's place?)",
                quote(key.as_os_str())
            )
        }
        err => pem_error(err, key, "key"),
    })?;
    CertifiedKey::from_der(chain.clone(), key_der.clone_key(), &provider()).map_err(
        |err| match err {
            rustls::Error::InconsistentKeys(_) => eyre::eyre!(
                "{}: the key does not match the certificate in {}{}",
                quote(key.as_os_str()),
                quote(cert.as_os_str()),
                match chain.len() {
                    1 => "",
                    _ => " (its first one: the chain must follow the certificate of this key)",
                }
            ),
            // The end entity is parsed here first: its errors are the certificate file's.
            rustls::Error::InvalidCertificate(why) => eyre::eyre!(
                "{}: not a valid certificate: {}",
                quote(cert.as_os_str()),
                certificate_reason(&why, Party::Own)
            ),
            // ring's loader says only that it could not parse the key: a type it lacks.
            rustls::Error::General(_) => eyre::eyre!(
                "{}: a key type we cannot use; make an ECDSA P-256 or P-384, Ed25519, or RSA \
                 (2048 bits or more) key",
                quote(key.as_os_str())
            ),
            other => eyre::eyre!(
                "{}: {}",
                quote(key.as_os_str()),
                tls_reason(&other, Party::Own)
            ),
        },
    )?;
    Ok(Identity {
        chain,
        key: key_der,
    })
}

/// Every certificate in a PEM file; at least one.
pub fn load_certs(path: &Path) -> eyre::Result<Vec<CertificateDer<'static>>> {
    let text = read_bounded(path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(err, path, "certificate"))?;
    if certs.is_empty() && holds(&text, b"PRIVATE KEY-----") {
        eyre::bail!(
            "{}: it holds a private key, not a certificate (the key file in the certificate's \
             place?)",
            quote(path.as_os_str())
        );
    }
    if certs.is_empty() {
        return Err(pem_error(pem::Error::NoItemsFound, path, "certificate"));
    }
    Ok(certs)
}

/// A trust file (`--client-ca`, `--cafile`): every certificate in it must parse, CA or not,
/// so a damaged one is named at start.
pub fn load_trust(path: &Path) -> eyre::Result<TrustFile> {
    let certs = load_certs(path)?;
    let mut parsed = RootCertStore::empty();
    for cert in &certs {
        parsed.add(cert.clone()).map_err(|err| {
            eyre::eyre!(
                "{}: not a valid certificate: {}",
                quote(path.as_os_str()),
                tls_reason(&err, Party::Own)
            )
        })?;
    }
    Ok(TrustFile::new(certs, path))
}

/// The key file's text holds an encrypted key (PKCS#8 or OpenSSL's older form), which
/// rustls cannot read.
fn encrypted(text: &[u8]) -> bool {
    holds(text, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || holds(text, b"Proc-Type: 4,ENCRYPTED")
}

/// `text` holds `mark` somewhere.
fn holds(text: &[u8], mark: &[u8]) -> bool {
    memchr::memmem::find(text, mark).is_some()
}

fn pem_error(err: pem::Error, path: &Path, what: &str) -> eyre::Report {
    let why = match err {
        pem::Error::Io(io) => crate::report::io_reason(&io),
        pem::Error::NoItemsFound => format!("no PEM {what} found"),
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "no -----END {}----- line (the file is cut short?)",
            shown(&String::from_utf8_lossy(&end_marker))
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "a bad -----BEGIN line: {}",
            shown(&String::from_utf8_lossy(&line))
        ),
        pem::Error::Base64Decode(_) => format!("the {what} is not valid base64 (damaged?)"),
        _ => format!("not a valid PEM {what} file"),
    };
    eyre::eyre!("{}: {why}", quote(path.as_os_str()))
}

/// The self-signed certificate a server makes at start when given no `--cert`.
pub struct SelfSigned {
    /// Its chain (the one certificate) and key.
    pub identity: Identity,
    /// Its SHA-256 fingerprint, `AB:CD:…`.
    pub fingerprint: String,
    /// The certificate as PEM, for `--cert-out`.
    pub pem: String,
}

/// How long the self-signed certificate is valid: the whole run of any server, and clocks a
/// bit behind ours still see it as valid.
const SELF_SIGNED_VALID: time::Duration = time::Duration::days(3650);
const SELF_SIGNED_BACKDATE: time::Duration = time::Duration::hours(1);

/// A fresh ECDSA P-256 certificate for `localhost`, the `ips` the server is bound to and the
/// host `names` typed in ADDR.
pub fn self_signed(names: &[String], ips: &[IpAddr]) -> eyre::Result<SelfSigned> {
    let mut sans = vec!["localhost".to_owned()];
    for name in names
        .iter()
        .cloned()
        .chain(ips.iter().map(|ip| ip.to_string()))
    {
        if !sans.contains(&name) {
            sans.push(name);
        }
    }
    let make = || -> Result<SelfSigned, rcgen::Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(sans.clone())?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - SELF_SIGNED_BACKDATE;
        params.not_after = now + SELF_SIGNED_VALID;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "asyncio-tool echo-server");
        let cert = params.self_signed(&key)?;
        let der = cert.der().clone();
        Ok(SelfSigned {
            fingerprint: fingerprint(&der),
            pem: cert.pem(),
            identity: Identity {
                chain: vec![der],
                key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            },
        })
    };
    make().wrap_err("cannot make a self-signed certificate")
}

/// The SHA-256 digest of a DER certificate.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A certificate's SHA-256 fingerprint as `AB:CD:…`, the form openssl and browsers show.
pub fn fingerprint(der: &[u8]) -> String {
    hex_colons(&sha256(der))
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `--pin`: 64 hex digits, with or without colons between pairs, either case, as the
/// fingerprint is printed (`D1:61:…`, pasted as it is) or after `sha256:`. Anything else is a
/// usage error here, not a mismatch at the handshake: another digest (`sha1:`, or a bare one
/// of another length) says that only SHA-256 can be pinned, and how.
pub fn parse_pin(s: &str) -> Result<[u8; 32], String> {
    if s.eq_ignore_ascii_case("sha256") {
        // `--pin sha256 D1:61:…`, the words of the server's line copied with a space.
        return Err(format!(
            "{}: the fingerprint goes right after it (sha256:D1:61:…), or alone (D1:61:…)",
            quoted(s)
        ));
    }
    let hex = match s.split_once(':') {
        Some((alg, rest)) if alg.eq_ignore_ascii_case("sha256") => rest,
        // A first part that is no pair of hex digits names a digest: only SHA-256 is pinned.
        Some((alg, _)) if is_digest_name(alg) => return Err(not_sha256(s, alg)),
        _ => s,
    };
    let bad = |what: &str| {
        format!(
            "{}: {what}; a SHA-256 fingerprint is 64 hex digits (colons between pairs allowed, \
             sha256: before them optional)",
            quoted(s)
        )
    };
    if let Some(c) = hex.chars().find(|&c| c != ':' && !c.is_ascii_hexdigit()) {
        return Err(bad(&format!(
            "{} is not a hex digit",
            quoted(&c.to_string())
        )));
    }
    let digits = hex_digits(hex);
    if digits.len() != 64 {
        return Err(bad(&digest_length(digits.len())));
    }
    // Colons as fingerprints are shown (AB:CD:…) or none: one elsewhere is a copying slip.
    if hex.contains(':') && !hex.split(':').all(|pair| pair.len() == 2) {
        return Err(bad("colons go only between pairs of digits (AB:CD:…)"));
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| bad("not hex"))?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| bad("not hex"))?;
    }
    Ok(out)
}

/// `hex` without its colons.
fn hex_digits(hex: &str) -> Vec<u8> {
    hex.bytes().filter(|&b| b != b':').collect()
}

/// `alg` (before a pin's first colon) is a digest's name such as `sha1`, not two hex digits.
fn is_digest_name(alg: &str) -> bool {
    !alg.is_empty()
        && alg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !alg.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `n` hex digits, and the digest that many would be, when it is a known one.
fn digest_length(n: usize) -> String {
    let of = match n {
        32 => " (an MD5 digest's length)",
        40 => " (a SHA-1 fingerprint's length: only SHA-256 can be pinned)",
        96 => " (a SHA-384 digest's length)",
        128 => " (a SHA-512 digest's length)",
        _ => "",
    };
    format!("{n} hex digits{of}")
}

/// Why a pin of another digest is refused, saying what to write instead.
fn not_sha256(s: &str, alg: &str) -> String {
    format!(
        "{}: only SHA-256 fingerprints can be pinned, not {alg}: give the server's SHA-256 one \
         (as echo-server prints it, or openssl x509 -noout -fingerprint -sha256 -in CERT)",
        quoted(s)
    )
}

/// Parses `--servername`: a DNS name or an IP address (an IPv6 one with or without its
/// brackets), as the certificate must name it.
pub fn parse_server_name(s: &str) -> Result<ServerName<'static>, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|inner| inner.parse::<std::net::Ipv6Addr>().is_ok())
        .unwrap_or(s);
    ServerName::try_from(bare.to_owned())
        .map_err(|_| format!("{}: not a DNS name or an IP address", quoted(s)))
}

/// A server config serving `identity`; with `client_ca`, client certificates are required and
/// verified against it (mutual TLS: its CAs, or a client's own certificate in it). TLS 1.2 and
/// 1.3.
pub fn server_config(
    identity: Identity,
    client_ca: Option<TrustFile>,
) -> eyre::Result<Arc<ServerConfig>> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .wrap_err("cannot set up TLS")?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(trust) => {
            let verifier = client_key::ClientCa::new(trust, provider)
                .wrap_err("cannot set up client certificate verification")?;
            builder.with_client_cert_verifier(Arc::new(verifier))
        }
    };
    let mut config = builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(|err| eyre::eyre!("cannot set up TLS: {}", tls_reason(&err, Party::Own)))?;
    // Our order of suites, not the client's: most clients put AES-256 first.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// Whom the client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's roots.
    System,
    /// The CAs of this file (`--cafile`).
    CaFile(std::path::PathBuf),
    /// Exactly the certificate with this SHA-256 digest (`--pin`).
    Pin([u8; 32]),
    /// Anyone (`--insecure`).
    Insecure,
}

/// A client config trusting `trust`, presenting `identity` if given.
pub fn client_config(trust: &Trust, identity: Option<Identity>) -> eyre::Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .wrap_err("cannot set up TLS")?;
    let builder = match trust {
        Trust::System => builder.with_root_certificates(system_roots()?),
        Trust::CaFile(path) => {
            let verifier = cafile::CaFile::new(load_trust(path)?, Arc::clone(&provider))
                .wrap_err("cannot set up server certificate verification")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
        Trust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin: Some(*pin),
                provider,
            })),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin: None,
                provider,
            })),
    };
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|err| eyre::eyre!("cannot set up TLS: {}", tls_reason(&err, Party::Own)))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The system's trust roots; certificates it cannot parse are skipped, as browsers do.
fn system_roots() -> eyre::Result<RootCertStore> {
    let (certs, errors) = match std::env::var_os("SSL_CERT_FILE") {
        Some(file) => env_roots(Path::new(&file))?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            (
                found.certs,
                found.errors.iter().map(native_reason).collect(),
            )
        }
    };
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        let why = errors.first().map(|e| format!(": {e}")).unwrap_or_default();
        eyre::bail!("no system trust roots found{why}; give --cafile, --pin or --insecure");
    }
    Ok(roots)
}

/// The roots of SSL_CERT_FILE and SSL_CERT_DIR, as rustls-native-certs takes them when
/// SSL_CERT_FILE is set, and the reasons for what could not be read. The file is read here as
/// our own TLS files are (rustls-native-certs reads it whole, and a named pipe nothing writes
/// to would block it for ever); only a file over the bound is an error at once: SSL_CERT_DIR
/// may still hold roots.
fn env_roots(file: &Path) -> eyre::Result<(Vec<CertificateDer<'static>>, Vec<String>)> {
    let (mut certs, mut errors) = (Vec::new(), Vec::new());
    match read_limited(file) {
        Ok((text, _)) if text.len() as u64 > MAX_FILE => {
            eyre::bail!("SSL_CERT_FILE: {}", too_large(file))
        }
        Ok((text, pipe)) => {
            certs.extend(CertificateDer::pem_slice_iter(&text).filter_map(Result::ok));
            if certs.is_empty() {
                let why = no_certificate(file, text.is_empty(), pipe);
                errors.push(format!("SSL_CERT_FILE: {why}"));
            }
        }
        Err(err) => errors.push(format!(
            "SSL_CERT_FILE: {}: {}",
            quote(file.as_os_str()),
            crate::report::io_reason(&err)
        )),
    }
    let dirs = std::env::var_os("SSL_CERT_DIR").unwrap_or_default();
    for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
        let found = rustls_native_certs::load_certs_from_paths(None, Some(&dir));
        certs.extend(found.certs);
        errors.extend(found.errors.iter().map(native_reason));
    }
    // The bundle file often sits in the directory too.
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    Ok((certs, errors))
}

/// Why the system's roots could not be read, its file named as every other name is.
fn native_reason(err: &rustls_native_certs::Error) -> String {
    use rustls_native_certs::ErrorKind as K;
    match &err.kind {
        K::Io { inner, path } => format!(
            "{}: {}",
            quote(path.as_os_str()),
            crate::report::io_reason(inner)
        ),
        K::Pem(_) => "a trust store file is not valid PEM".to_owned(),
        _ => err.to_string(),
    }
}

/// `--pin` (exactly the certificate with this digest) and `--insecure` (`pin: None`: any
/// certificate). The handshake's signatures are still checked either way, so the peer holds
/// the key of the certificate it shows.
#[derive(Debug)]
struct Pinned {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

/// A pin that did not match, as the verifier reports it.
#[derive(Debug)]
struct Mismatch(String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's certificate is not the pinned one (fingerprint mismatch: got sha256 \
             {}): if the server has a new certificate, check it and pin its fingerprint",
            self.0
        )
    }
}

impl std::error::Error for Mismatch {}

/// A peer's handshake signature does not verify with its certificate's key; put in words
/// for that peer by [`reason`].
#[derive(Debug)]
enum NotItsKey {
    /// The signature is wrong: the peer does not hold that key.
    Held,
    /// The key is RSA of this many bits, which ring does not verify (2048 to 8192 only).
    RsaBits(usize),
}

impl fmt::Display for NotItsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotItsKey::Held => f.write_str("the peer does not hold its certificate's key"),
            NotItsKey::RsaBits(bits) => write!(f, "the peer's RSA key has {bits} bits"),
        }
    }
}

impl std::error::Error for NotItsKey {}

/// A handshake signature's check by `cert`'s key, its failure put as what it means: rustls
/// reports it as a bad certificate signature, which reads as a damaged certificate.
fn signed_by_its_key(
    cert: &CertificateDer<'_>,
    checked: Result<HandshakeSignatureValid, rustls::Error>,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    checked.map_err(|err| match err {
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            let why = match rsa_bits(cert) {
                Some(bits) if !(2048..=8192).contains(&bits) => NotItsKey::RsaBits(bits),
                _ => NotItsKey::Held,
            };
            CertificateError::Other(OtherError(Arc::new(why))).into()
        }
        other => other,
    })
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let got = sha256(end_entity);
        if got == pin {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(Mismatch(hex_colons(&got)))),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        signed_by_its_key(
            cert,
            rustls::crypto::verify_tls12_signature(message, cert, dss, algs),
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        signed_by_its_key(
            cert,
            rustls::crypto::verify_tls13_signature(message, cert, dss, algs),
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A connection's protocol version and cipher suite, e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384`.
pub fn session(state: &rustls::CommonState) -> String {
    let version = match state.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "TLS".to_owned(),
    };
    match state.negotiated_cipher_suite() {
        Some(suite) => format!("{version} {:?}", suite.suite()),
        None => version,
    }
}

/// `text` safe to print on a terminal: its control and bidirectional-override characters
/// escaped (`\u{1b}`), as a subject is whatever the peer put there.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The contents of the DER element at the start of `der`, and what follows it.
fn der_next(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *der.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = der
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((der.get(head..end)?, der.get(end..)?))
}

/// [`der_next`] for a SEQUENCE (or SET) only.
fn der_seq(der: &[u8]) -> Option<(&[u8], &[u8])> {
    matches!(der.first(), Some(0x30 | 0x31))
        .then(|| der_next(der))
        .flatten()
}

/// A socket read in large gulps for rustls, which asks for about 4 KiB per read: a bulk
/// stream would otherwise cost a system call (and often a readiness wake-up) per 4 KiB.
/// The gulp buffer exists only while a burst flows: it is taken when a direct read fills
/// rustls's request (more is likely waiting) and given back once drained after a read that
/// did not fill it, so an idle connection holds none.
pub struct Gulp<S> {
    io: S,
    /// Empty outside a burst; `GULP` bytes during one, of which `at..end` are unread.
    buf: Vec<u8>,
    at: usize,
    end: usize,
}

/// The size of one gulp: four full TLS records.
const GULP: usize = 64 * 1024;

impl<S> Gulp<S> {
    /// Wraps a connected socket.
    pub fn new(io: S) -> Self {
        Gulp {
            io,
            buf: Vec::new(),
            at: 0,
            end: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gulp<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at == this.end {
            if this.buf.is_empty() {
                // Not in a burst: read straight into rustls's buffer.
                let want = out.remaining();
                let before = out.filled().len();
                ready!(Pin::new(&mut this.io).poll_read(cx, out))?;
                if out.filled().len() - before == want {
                    this.buf = vec![0; GULP];
                }
                return Poll::Ready(Ok(()));
            }
            let mut gulp = ReadBuf::new(&mut this.buf);
            match Pin::new(&mut this.io).poll_read(cx, &mut gulp) {
                Poll::Ready(done) => done?,
                Poll::Pending => {
                    // Nothing more after a full gulp: no burst after all, no buffer held.
                    this.buf = Vec::new();
                    return Poll::Pending;
                }
            }
            (this.at, this.end) = (0, gulp.filled().len());
        }
        let take = (this.end - this.at).min(out.remaining());
        out.put_slice(&this.buf[this.at..this.at + take]);
        this.at += take;
        if this.at == this.end && this.end < this.buf.len() {
            // That gulp drained the socket: the burst is over, the buffer goes.
            this.buf = Vec::new();
            (this.at, this.end) = (0, 0);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gulp<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_either_form() {
        let hex = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_pin(&format!("sha256:{hex}")), Ok([0xab; 32]));
        assert_eq!(parse_pin(&format!("SHA256:{colons}")), Ok([0xab; 32]));
        // As printed, pasted: no sha256: before it.
        assert_eq!(parse_pin(&hex), Ok([0xab; 32]));
        assert_eq!(parse_pin(&colons.to_uppercase()), Ok([0xab; 32]));
        let sha1 = parse_pin(&vec!["ab"; 20].join(":")).unwrap_err();
        assert!(sha1.contains("40 hex digits (a SHA-1"), "{sha1}");
        for other in ["sha1:ab", "SHA512:ab", "md5:ab", "sha-1:ab"] {
            let err = parse_pin(other).unwrap_err();
            assert!(
                err.contains("only SHA-256 fingerprints can be pinned"),
                "{err}"
            );
        }
        assert!(
            parse_pin("hello")
                .unwrap_err()
                .contains("is not a hex digit")
        );
        assert!(
            parse_pin("SHA256")
                .unwrap_err()
                .contains("goes right after it")
        );
        assert!(parse_pin("sha256:abcd").is_err());
        assert!(parse_pin(&format!("sha256:{}", "zz".repeat(32))).is_err());
        for odd in [
            format!("sha256::{hex}"),
            format!("sha256:{hex}:"),
            format!("sha256:{colons}:"),
            format!("sha256:A:B{}", &hex[2..]),
            format!("sha256:{}::AB", &colons[..colons.len() - 3]),
        ] {
            let err = parse_pin(&odd).unwrap_err();
            assert!(err.contains("colons go only between pairs"), "{odd}: {err}");
        }
    }

    #[test]
    fn self_signed_names_and_subject() {
        let made = self_signed(&["example.test".into()], &["127.0.0.1".parse().unwrap()]).unwrap();
        let der = &made.identity.chain[0];
        assert_eq!(made.fingerprint, fingerprint(der));
        assert_eq!(made.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(subject(der).as_deref(), Some("CN=asyncio-tool echo-server"));
        assert_eq!(
            parse_pin(&format!("sha256:{}", made.fingerprint)),
            Ok(sha256(der))
        );
        // The key matches: a server config takes it.
        assert!(server_config(made.identity, None).is_ok());
    }

    #[test]
    fn alerts_read_as_words() {
        use reason::alert_words;
        use rustls::AlertDescription;
        assert_eq!(
            alert_words(AlertDescription::CertificateRequired),
            "certificate required"
        );
        assert_eq!(alert_words(AlertDescription::UnknownCA), "unknown ca");
        assert_eq!(alert_words(AlertDescription::Unknown(200)), "alert 200");
    }
}
