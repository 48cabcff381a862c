//! The TLS options of `echo-server` and `echo-client`. Each set is a clap argument group of
//! its own, read together with ADDR: a `tls:` prefix there stands for `--tls`, and a TLS
//! option given without either is a usage error (exit 2), as is a pair that contradicts
//! itself (`--pin` with `--insecure`) or half of a pair (`--cert` without `--key`).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgMatches, Args, Command, FromArgMatches, ValueHint};

use super::endpoints::usage_error;
use rustls::pki_types::ServerName;

use crate::net::tls::{Trust, parse_pin, parse_server_name};

/// `echo-server`'s TLS words as typed.
#[derive(Debug, Args)]
struct ServerWords {
    /// Serve TLS (1.2 or 1.3) instead of plain bytes (`tls:` before ADDR says the same).
    /// Without --cert, a fresh self-signed certificate (ECDSA P-256, for localhost, the bound
    /// IP and the host name in ADDR) is made at start and its SHA-256 fingerprint printed on
    /// stderr, even with -q (a client needs it to connect safely): paste it after a client's
    /// --pin as it is.
    #[arg(long, conflicts_with = "udp")]
    tls: bool,

    /// Save the self-signed certificate to FILE (PEM), for clients that trust by file:
    /// echo-client --cafile FILE, openssl s_client -CAfile FILE, curl --cacert FILE. A file
    /// from an earlier run is replaced (atomically: readers see the old certificate or the new
    /// one); a file that holds anything but certificates is not, and the server does not
    /// start. /dev/stderr or a named pipe is written to as it is.
    #[arg(long, value_name = "FILE", conflicts_with = "cert", value_hint = ValueHint::FilePath)]
    cert_out: Option<PathBuf>,

    /// The certificate to serve (PEM; the chain follows it in the same file). Needs --key.
    /// Each TLS file is read at most 1 MiB: a larger (or endless) one is refused at start.
    #[arg(long, value_name = "FILE", requires = "key", value_hint = ValueHint::FilePath)]
    cert: Option<PathBuf>,

    /// The private key of --cert (PEM, unencrypted).
    #[arg(long, value_name = "FILE", requires = "cert", value_hint = ValueHint::FilePath)]
    key: Option<PathBuf>,

    /// Require a client certificate issued by a CA in this PEM file (mutual TLS, at most 1
    /// MiB); clients without one, or with another, fail the handshake. A certificate in it
    /// that is exactly the client's (a self-signed one, as openssl req -x509 makes) is trusted
    /// as it is, and only as itself; its dates and purpose are still checked.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    client_ca: Option<PathBuf>,
}

/// How `echo-server` speaks TLS, if it does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTls {
    /// `--tls` or a `tls:` ADDR.
    pub enabled: bool,
    /// `--cert` and `--key`; without them the certificate is self-signed.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// `--client-ca`.
    pub client_ca: Option<PathBuf>,
    /// The host name typed in ADDR (not an IP), for the self-signed certificate.
    pub names: Vec<String>,
    /// `--cert-out`: where to save the self-signed certificate.
    pub cert_out: Option<PathBuf>,
}

impl FromArgMatches for ServerTls {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = ServerWords::from_arg_matches(matches)?;
        let addr = typed_addr(matches);
        let enabled = words.tls || tls_prefixed(addr);
        if enabled && over_udp(addr) {
            return Err(no_dtls("echo-server"));
        }
        let given = [
            (words.cert.is_some(), "--cert"),
            (words.client_ca.is_some(), "--client-ca"),
            (words.cert_out.is_some(), "--cert-out"),
        ];
        if let (false, Some((_, flag))) = (enabled, given.iter().find(|(on, _)| *on)) {
            return Err(needs_tls("echo-server", flag));
        }
        Ok(ServerTls {
            enabled,
            identity: words.cert.zip(words.key),
            client_ca: words.client_ca,
            names: host_name(addr).into_iter().collect(),
            cert_out: words.cert_out,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ServerTls::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServerTls {
    fn augment_args(cmd: Command) -> Command {
        ServerWords::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        ServerWords::augment_args_for_update(cmd)
    }
}

/// `echo-client`'s TLS words as typed.
#[derive(Debug, Args)]
struct ClientWords {
    /// Speak TLS (1.2 or 1.3) to the server (`tls:` before ADDR says the same). Its
    /// certificate and name are verified against the system's trust roots unless --cafile,
    /// --pin or --insecure says otherwise.
    #[arg(long, conflicts_with = "udp")]
    tls: bool,

    /// Trust the CAs in this PEM file (at most 1 MiB) instead of the system's. A certificate
    /// in it that is exactly the server's (a self-signed one, as openssl req -x509 makes) is
    /// trusted as it is, and only as itself; its name and dates are still checked.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    cafile: Option<PathBuf>,

    /// Accept exactly the server certificate with this SHA-256 fingerprint: 64 hex digits,
    /// with or without colons between pairs, sha256: before them optional. echo-server --tls
    /// prints it for its self-signed certificate (paste it as printed), and openssl x509
    /// -noout -fingerprint -sha256 -in CERT for any; name and dates are then not checked.
    #[arg(long, value_name = "[sha256:]HEX", value_parser = parse_pin, conflicts_with = "cafile")]
    pin: Option<[u8; 32]>,

    /// Do not verify the server at all (said on stderr): anyone in the middle can read and
    /// change the data.
    #[arg(long, conflicts_with_all = ["cafile", "pin"])]
    insecure: bool,

    /// The name to ask for (SNI) and to check the certificate against; default: the host in
    /// ADDR (localhost for a Unix socket).
    #[arg(long, value_name = "NAME", value_parser = parse_server_name)]
    servername: Option<ServerName<'static>>,

    /// Present this client certificate (PEM, at most 1 MiB; chain after it). Needs --key.
    #[arg(long, value_name = "FILE", requires = "key", value_hint = ValueHint::FilePath)]
    cert: Option<PathBuf>,

    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert", value_hint = ValueHint::FilePath)]
    key: Option<PathBuf>,
}

/// How `echo-client` speaks TLS, if it does.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// `--tls` or a `tls:` ADDR.
    pub enabled: bool,
    /// Whom to trust.
    pub trust: Trust,
    /// `--servername`.
    pub servername: Option<ServerName<'static>>,
    /// `--cert` and `--key`.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl FromArgMatches for ClientTls {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let words = ClientWords::from_arg_matches(matches)?;
        let addr = typed_addr(matches);
        let enabled = words.tls || tls_prefixed(addr);
        if enabled && over_udp(addr) {
            return Err(no_dtls("echo-client"));
        }
        let given = [
            (words.cafile.is_some(), "--cafile"),
            (words.pin.is_some(), "--pin"),
            (words.insecure, "--insecure"),
            (words.servername.is_some(), "--servername"),
            (words.cert.is_some(), "--cert"),
        ];
        if let (false, Some((_, flag))) = (enabled, given.iter().find(|(on, _)| *on)) {
            return Err(needs_tls("echo-client", flag));
        }
        let trust = match (words.cafile, words.pin, words.insecure) {
            (_, _, true) => Trust::Insecure,
            (_, Some(pin), _) => Trust::Pin(pin),
            (Some(file), ..) => Trust::CaFile(file),
            _ => Trust::System,
        };
        Ok(ClientTls {
            enabled,
            trust,
            servername: words.servername,
            identity: words.cert.zip(words.key),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ClientTls::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ClientTls {
    fn augment_args(cmd: Command) -> Command {
        ClientWords::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        ClientWords::augment_args_for_update(cmd)
    }
}

/// ADDR as typed (the endpoint words sit beside these in the same subcommand).
fn typed_addr(matches: &ArgMatches) -> &str {
    matches
        .try_get_one::<String>("addr")
        .ok()
        .flatten()
        .map_or("", String::as_str)
}

/// ADDR starts with `tls:`, in any case.
fn tls_prefixed(addr: &str) -> bool {
    addr.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("tls:"))
}

/// ADDR (after any `tls:`) is a UDP address.
fn over_udp(addr: &str) -> bool {
    let rest = if tls_prefixed(addr) { &addr[4..] } else { addr };
    rest.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("udp:"))
}

fn no_dtls(subcommand: &str) -> clap::Error {
    usage_error(
        subcommand,
        "TLS runs over TCP or a Unix socket, not UDP (DTLS is not supported)".to_owned(),
    )
}

fn needs_tls(subcommand: &str, flag: &str) -> clap::Error {
    usage_error(
        subcommand,
        format!("{flag} applies to TLS only: add --tls or write ADDR as tls:ADDR"),
    )
}

/// The host name in a TCP ADDR (`tls:example.test:8443` → `example.test`); none for an IP, a
/// bare port or a Unix socket.
fn host_name(addr: &str) -> Option<String> {
    let rest = if tls_prefixed(addr) { &addr[4..] } else { addr };
    let rest = match rest.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tcp:") => &rest[4..],
        _ => rest,
    };
    if rest
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("unix:"))
    {
        return None;
    }
    let (host, _) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ip = host.split('%').next().unwrap_or(host);
    (!host.is_empty() && host_ip.parse::<IpAddr>().is_err()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_for_the_self_signed_certificate() {
        assert_eq!(
            host_name("tls:Example.test:8443").as_deref(),
            Some("example.test")
        );
        assert_eq!(host_name("tls:127.0.0.1:0"), None);
        assert_eq!(host_name("[::1]:7"), None);
        assert_eq!(host_name("8443"), None);
        assert_eq!(host_name("tls:unix:/tmp/a:b"), None);
        assert!(tls_prefixed("TLS:x:1"));
    }
}
