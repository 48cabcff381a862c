//! The trust files, `--cafile` (the client's) and `--client-ca` (the server's), and
//! `--cafile`'s verifier. Both files follow one rule, openssl's: webpki checks the peer's
//! certificate against the file's CAs, and one more case is accepted — the peer's own
//! certificate given in the file. `openssl req -x509` (what socat's and most tutorials'
//! servers use, and what people make for a client too) makes a self-signed certificate marked
//! as a CA; webpki refuses a CA certificate in a server's or a client's place ("CA used as end
//! entity") even when it is the trust anchor itself. A certificate in the file byte for byte is
//! trusted as it is, as `openssl s_client -CAfile` and `s_server -Verify -CAfile` do; its dates
//! and purpose are still checked (a server's name too), and the handshake's signatures prove
//! the peer holds its key.
//!
//! Only the file's CA certificates are trust anchors: webpki takes any certificate it is given
//! as one, so a peer's certificate in the file would let whoever holds its key issue
//! certificates that are then accepted (for any name, or as any client), which openssl
//! refuses too.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use rustls::{Error, RootCertStore, SignatureScheme};

use super::reason::Party;
use super::{der_next, der_seq, signed_by_its_key};
use crate::ui::quote::quote;

/// The certificates of a trust file (`--cafile`, `--client-ca`): its CA certificates are
/// trust anchors, and each of its certificates is trusted as itself.
#[derive(Debug, Clone)]
pub struct TrustFile {
    /// Every certificate of the file, as given.
    given: Vec<CertificateDer<'static>>,
    /// The file, quoted, for messages.
    file: String,
}

impl TrustFile {
    /// The certificates `given` in the file at `path` (each one already known to parse).
    pub(super) fn new(given: Vec<CertificateDer<'static>>, path: &Path) -> TrustFile {
        TrustFile {
            given,
            file: quote(path.as_os_str()),
        }
    }

    /// The file's CA certificates as trust anchors; none when it holds no CA certificate.
    pub(super) fn anchors(&self) -> Option<Arc<RootCertStore>> {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(self.given.iter().filter(|c| may_issue(c)).cloned());
        (!roots.is_empty()).then(|| Arc::new(roots))
    }

    /// The subjects of every certificate of the file, as openssl's server names them to a
    /// client choosing its certificate.
    pub(super) fn subjects(&self) -> Vec<DistinguishedName> {
        let anchors = self
            .given
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok());
        anchors
            .map(|a| DistinguishedName::in_sequence(a.subject.as_ref()))
            .collect()
    }

    /// After webpki `refused` the `peer`'s `end_entity`: accepted if it is a certificate of
    /// the file, valid at `now` and (by its extended key usage, if it has one) for the peer's
    /// role; else the reason, webpki's or a clearer one. The caller still checks a server's
    /// name and, through the handshake's signatures, that the peer holds the key.
    pub(super) fn as_is(
        &self,
        refused: Error,
        end_entity: &CertificateDer<'_>,
        now: UnixTime,
        peer: Party,
    ) -> Result<(), Error> {
        if !trust_as_is_covers(&refused) {
            return Err(refused);
        }
        if !self.given.iter().any(|c| c == end_entity) {
            return Err(self.not_in_file(refused, end_entity, peer));
        }
        check_dates(end_entity, now)?;
        if !for_role(end_entity, peer) {
            return Err(CertificateError::InvalidPurpose.into());
        }
        Ok(())
    }

    /// webpki's `refused` for a certificate not in the file, made clearer where it can be: a
    /// CA certificate in a peer's place, or one signed by a certificate of the file that is
    /// not a CA (an attempt to issue with a trusted-as-is certificate's key, or a mistake).
    fn not_in_file(&self, refused: Error, end_entity: &CertificateDer<'_>, peer: Party) -> Error {
        let why = if is_ca_as_end_entity(&refused) {
            Why::CaNotInFile
        } else {
            let by_non_ca = issuer_and_subject(end_entity).and_then(|(issuer, _)| {
                self.given.iter().find(|c| {
                    !may_issue(c) && issuer_and_subject(c).is_some_and(|(_, sub)| sub == issuer)
                })
            });
            match by_non_ca {
                Some(cert) => Why::SignedByNonCa(super::subject(cert).unwrap_or_default()),
                None => return refused,
            }
        };
        let not_in_file = NotInFile {
            file: self.file.clone(),
            peer,
            why,
        };
        CertificateError::Other(OtherError(Arc::new(not_in_file))).into()
    }
}

/// The handshake signature over `message`, checked with `cert`'s key (TLS 1.3's rules if
/// `tls13`), its failure put as what it means.
pub(super) fn handshake_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let algs = &provider.signature_verification_algorithms;
    let checked = match tls13 {
        true => rustls::crypto::verify_tls13_signature(message, cert, dss, algs),
        false => rustls::crypto::verify_tls12_signature(message, cert, dss, algs),
    };
    signed_by_its_key(cert, checked)
}

/// Trusts what webpki trusts with the file's CAs, and the certificates of the file as they are.
#[derive(Debug)]
pub(super) struct CaFile {
    /// None when the file holds no CA certificate: then only its certificates as they are.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    trust: TrustFile,
    provider: Arc<CryptoProvider>,
}

impl CaFile {
    /// The verifier for the certificates of the `--cafile` `trust`.
    pub(super) fn new(
        trust: TrustFile,
        provider: Arc<CryptoProvider>,
    ) -> Result<CaFile, rustls::client::VerifierBuilderError> {
        let webpki = match trust.anchors() {
            None => None,
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()?,
            ),
        };
        Ok(CaFile {
            webpki,
            trust,
            provider,
        })
    }
}

/// Why a `peer`'s certificate (a server's or a client's), not itself in its trust file (the
/// file named), is refused.
#[derive(Debug)]
pub(super) struct NotInFile {
    file: String,
    peer: Party,
    why: Why,
}

#[derive(Debug)]
enum Why {
    /// It is a CA certificate, which webpki takes only as an anchor.
    CaNotInFile,
    /// It is signed by a certificate of the file (its subject given) that is not a CA.
    SignedByNonCa(String),
}

impl fmt::Display for NotInFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        let (cert, role, option) = match self.peer {
            Party::Client => ("the client's certificate", "a client", "--client-ca"),
            Party::Server | Party::Own => ("the server's certificate", "a server", "--cafile"),
        };
        match (&self.why, self.peer) {
            (Why::SignedByNonCa(issuer), _) => {
                let issuer = match issuer.is_empty() {
                    true => "a certificate",
                    false => issuer,
                };
                write!(
                    f,
                    "unknown issuer: {cert} is signed by {issuer} in {file}, which is not a CA \
                     certificate: one there that is not a CA's is trusted as itself only, never \
                     as an issuer; give {option} {cert} itself or the CA that issued it"
                )
            }
            (Why::CaNotInFile, Party::Client) => write!(
                f,
                "{cert} is a CA certificate, not one for {role}, and it is not in {file}: if \
                 the client uses its own self-signed certificate, add that very certificate \
                 to {option}; else give the client one issued by a CA there"
            ),
            (Why::CaNotInFile, Party::Server | Party::Own) => write!(
                f,
                "{cert} is a CA certificate, not one for {role}, and it is not in {file}: if \
                 the server uses its own self-signed certificate, give that very certificate \
                 with {option} (or its fingerprint with --pin)"
            ),
        }
    }
}

impl std::error::Error for NotInFile {}

/// webpki refused the certificate only for what a trusted-as-is certificate may be: not
/// issued by a CA of the file, or a CA certificate in a server's or client's place.
fn trust_as_is_covers(err: &Error) -> bool {
    matches!(
        err,
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
    ) || is_ca_as_end_entity(err)
}

impl ServerCertVerifier for CaFile {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(CertificateError::UnknownIssuer.into()),
        };
        let refused = match verified {
            Ok(verified) => return Ok(verified),
            Err(err) => err,
        };
        self.trust.as_is(refused, end_entity, now, Party::Server)?;
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        handshake_signature(&self.provider, message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        handshake_signature(&self.provider, message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// webpki's refusal is of a CA certificate in a peer's place.
fn is_ca_as_end_entity(err: &Error) -> bool {
    match err {
        Error::InvalidCertificate(CertificateError::Other(OtherError(other))) => matches!(
            other.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// basicConstraints, keyUsage and extKeyUsage (2.5.29.19, .15, .37), as DER OID contents.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-kp-serverAuth and id-kp-clientAuth (1.3.6.1.5.5.7.3.1, .2) and anyExtendedKeyUsage
/// (2.5.29.37.0).
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
const ANY_PURPOSE: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// The certificate may issue others, as openssl decides it: basicConstraints says CA, or,
/// without that extension, it is an X.509 v1 certificate or its key usage allows signing
/// certificates. A certificate we cannot read issues nothing.
fn may_issue(der: &[u8]) -> bool {
    let Some((v1, exts)) = extensions(der) else {
        return false;
    };
    let find = |oid: &[u8]| exts.iter().find(|(o, _)| *o == oid).map(|(_, v)| *v);
    let cert_sign = find(KEY_USAGE).map(|ku| {
        // A BIT STRING: its unused-bit count, then keyCertSign is bit 5 of the first byte.
        ku.first() == Some(&0x03)
            && der_next(ku).is_some_and(|(bits, _)| bits.get(1).is_some_and(|b| b & 0x04 != 0))
    });
    if cert_sign == Some(false) {
        return false;
    }
    match find(BASIC_CONSTRAINTS) {
        // SEQUENCE { cA BOOLEAN DEFAULT FALSE, … }
        Some(bc) => der_seq(bc).is_some_and(|(fields, _)| {
            fields.first() == Some(&0x01)
                && der_next(fields).is_some_and(|(flag, _)| flag.iter().any(|&b| b != 0))
        }),
        None => v1 || cert_sign == Some(true),
    }
}

/// The certificate's extended key usage, if it has one, allows the `peer`'s role.
fn for_role(der: &[u8], peer: Party) -> bool {
    let role = match peer {
        Party::Client => CLIENT_AUTH,
        Party::Server | Party::Own => SERVER_AUTH,
    };
    let Some((_, exts)) = extensions(der) else {
        return false;
    };
    let Some((_, eku)) = exts.iter().find(|(o, _)| *o == EXT_KEY_USAGE) else {
        return true;
    };
    let Some((mut oids, _)) = der_seq(eku) else {
        return false;
    };
    while let Some((oid, rest)) = der_next(oids) {
        if oid == role || oid == ANY_PURPOSE {
            return true;
        }
        oids = rest;
    }
    false
}

/// A certificate extension: its OID and its value, as DER contents.
pub(super) type Extension<'a> = (&'a [u8], &'a [u8]);

/// Whether a certificate is X.509 v1 (no version field), and its extensions, from its DER.
pub(super) fn extensions(der: &[u8]) -> Option<(bool, Vec<Extension<'_>>)> {
    let cert = der_seq(der)?.0;
    let mut tbs = der_seq(cert)?.0;
    let v1 = tbs.first() != Some(&0xa0);
    if !v1 {
        tbs = der_next(tbs)?.1;
    }
    // serial, signature algorithm, issuer, validity, subject, public key.
    for _ in 0..6 {
        tbs = der_next(tbs)?.1;
    }
    let mut found = Vec::new();
    while let Some(&tag) = tbs.first() {
        let (body, rest) = der_next(tbs)?;
        tbs = rest;
        if tag != 0xa3 {
            continue;
        }
        let mut list = der_seq(body)?.0;
        while !list.is_empty() {
            let (ext, rest) = der_seq(list)?;
            list = rest;
            let (oid, mut fields) = der_next(ext)?;
            if fields.first() == Some(&0x01) {
                // critical BOOLEAN
                fields = der_next(fields)?.1;
            }
            found.push((oid, der_next(fields)?.0));
        }
    }
    Some((v1, found))
}

/// A certificate's issuer and subject names (DER, compared byte for byte as webpki does).
fn issuer_and_subject(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let cert = der_seq(der)?.0;
    let mut tbs = der_seq(cert)?.0;
    // [0] version, if present; then serial, signature algorithm, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = der_next(tbs)?.1;
    }
    for _ in 0..2 {
        tbs = der_next(tbs)?.1;
    }
    let (issuer, rest) = der_next(tbs)?;
    let (subject, _) = der_next(der_next(rest)?.1)?;
    Some((issuer, subject))
}

/// The certificate is valid at `now`, by its own notBefore and notAfter.
fn check_dates(der: &[u8], now: UnixTime) -> Result<(), Error> {
    let (not_before, not_after) =
        validity(der).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let at = |secs: u64| UnixTime::since_unix_epoch(Duration::from_secs(secs));
    if now.as_secs() < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: at(not_before),
        }
        .into());
    }
    if now.as_secs() > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: at(not_after),
        }
        .into());
    }
    Ok(())
}

/// A certificate's notBefore and notAfter, in seconds since 1970, from its DER.
pub(super) fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let cert = der_seq(der)?.0;
    let mut tbs = der_seq(cert)?.0;
    // [0] version, if present; then serial, signature algorithm, issuer, validity.
    if tbs.first() == Some(&0xa0) {
        tbs = der_next(tbs)?.1;
    }
    for _ in 0..3 {
        tbs = der_next(tbs)?.1;
    }
    let validity = der_seq(tbs)?.0;
    let not_before = asn1_time(validity)?;
    let not_after = asn1_time(der_next(validity)?.1)?;
    Some((not_before, not_after))
}

/// The UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) at the start of
/// `der`, in seconds since 1970.
fn asn1_time(der: &[u8]) -> Option<u64> {
    let (body, _) = der_next(der)?;
    let text = std::str::from_utf8(body).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (der.first()?, text.len()) {
        (0x17, 12) => {
            // RFC 5280: two-digit years 50–99 are 19xx, 00–49 are 20xx.
            let yy: i32 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let num = |at: usize| rest[at..at + 2].parse::<u8>().ok();
    let month = time::Month::try_from(num(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, num(2)?).ok()?;
    let clock = time::Time::from_hms(num(4)?, num(6)?, num(8)?).ok()?;
    let secs = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp();
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_times_read_as_seconds() {
        // UTCTime 700101000000Z and GeneralizedTime 20380119031408Z.
        let utc = [&[0x17, 13][..], b"700101000000Z"].concat();
        assert_eq!(asn1_time(&utc), Some(0));
        let general = [&[0x18, 15][..], b"20380119031408Z"].concat();
        assert_eq!(asn1_time(&general), Some(i32::MAX as u64 + 1));
        let local = [&[0x17, 12][..], b"700101000000"].concat();
        assert_eq!(asn1_time(&local), None);
    }

    #[test]
    fn only_ca_certificates_issue() {
        let made = |ca: rcgen::IsCa, usages: Vec<rcgen::KeyUsagePurpose>| {
            let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).unwrap();
            params.is_ca = ca;
            params.key_usages = usages;
            let key = rcgen::KeyPair::generate().unwrap();
            params.self_signed(&key).unwrap().der().to_vec()
        };
        let unconstrained = || rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        assert!(may_issue(&made(unconstrained(), vec![])));
        let signs = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        assert!(may_issue(&made(unconstrained(), signs.clone())));
        assert!(may_issue(&made(rcgen::IsCa::NoCa, signs)));
        let no_signing = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        assert!(!may_issue(&made(unconstrained(), no_signing)));
        assert!(!may_issue(&made(rcgen::IsCa::NoCa, vec![])));
        assert!(!may_issue(&made(rcgen::IsCa::ExplicitNoCa, vec![])));
        assert!(!may_issue(b"\x30\x03\x02\x01\x00"));
        let own = super::super::self_signed(&[], &[]).unwrap();
        assert!(!may_issue(&own.identity.chain[0]));
        assert!(for_role(&own.identity.chain[0], Party::Server));
    }

    #[test]
    fn a_leaf_names_its_issuer_as_the_issuer_names_itself() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "issuer");
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["a.test".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let (ca_issuer, ca_subject) = issuer_and_subject(issuer.der()).unwrap();
        assert_eq!(ca_issuer, ca_subject);
        let (leaf_issuer, leaf_subject) = issuer_and_subject(leaf.der()).unwrap();
        assert_eq!(leaf_issuer, ca_subject);
        assert_ne!(leaf_subject, ca_subject);
        assert_eq!(issuer_and_subject(b"\x30\x03\x02\x01\x00"), None);
    }

    #[test]
    fn validity_of_a_made_certificate() {
        let made = super::super::self_signed(&[], &[]).unwrap();
        let (from, to) = validity(&made.identity.chain[0]).unwrap();
        let now = UnixTime::now().as_secs();
        assert!(from < now && now < to, "{from} {now} {to}");
        assert!(check_dates(&made.identity.chain[0], UnixTime::now()).is_ok());
    }
}
