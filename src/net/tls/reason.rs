//! Why a handshake or a TLS file failed, in sentences: which side's certificate is wrong, how,
//! and what to do about it. rustls and webpki name their errors with Rust identifiers
//! (`CaUsedAsEndEntity`, `InvalidPurposeContext { … }`); none of those reach a user, so every
//! case a user can cause has its sentence here, and the rest fall back to rustls's own words
//! or a generic sentence, never to `Debug` output.

use std::io;

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError, ExtendedKeyPurpose, PeerIncompatible};

use super::cafile::NotInFile;
use super::{Mismatch, NotItsKey, shown};

/// Whose certificate and messages a reason speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The server we connected to (the client's view).
    Server,
    /// The client that connected to us (the server's view).
    Client,
    /// Our own files (`--cert`, `--cafile`, …): no peer involved.
    Own,
}

impl Party {
    /// `the server`, `the client`; our own files have no peer, so `the peer`.
    fn name(self) -> &'static str {
        match self {
            Party::Server => "the server",
            Party::Client => "the client",
            Party::Own => "the peer",
        }
    }

    /// Whose certificate: `the server's certificate`, or for a file (named just before), `it`.
    fn cert(self) -> &'static str {
        match self {
            Party::Server => "the server's certificate",
            Party::Client => "the client's certificate",
            Party::Own => "it",
        }
    }

    /// What that certificate should be for.
    fn role(self) -> &'static str {
        match self {
            Party::Client => "a client",
            Party::Server | Party::Own => "a server",
        }
    }

    /// Where the trusted CAs come from on our side.
    fn trusted(self) -> &'static str {
        match self {
            Party::Client => "a CA in --client-ca",
            Party::Server | Party::Own => "a CA we trust",
        }
    }
}

/// The reason for a failed TLS read, write or handshake with `peer`, in one line: the rustls
/// error inside `err` put in words, or the I/O error's own text.
pub fn reason(err: &io::Error, peer: Party) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls_reason(tls, peer),
        None if err.kind() == io::ErrorKind::UnexpectedEof => {
            "the connection closed during the TLS handshake".to_owned()
        }
        None => crate::report::io_reason(err),
    }
}

/// A rustls error with `peer` in the words users look for.
pub fn tls_reason(err: &rustls::Error, peer: Party) -> String {
    use rustls::Error as E;
    let who = peer.name();
    match err {
        E::InvalidCertificate(cert) => certificate_reason(cert, peer),
        E::AlertReceived(alert) => alert_reason(*alert, peer),
        E::NoCertificatesPresented if peer == Party::Server => {
            "the server presented no certificate".to_owned()
        }
        E::NoCertificatesPresented => "no client certificate was presented: the client must \
             give one issued by a CA in --client-ca (echo-client --cert FILE --key FILE)"
            .to_owned(),
        E::InvalidMessage(why) => message_reason(why, peer),
        E::InappropriateHandshakeMessage {
            got_type: rustls::HandshakeType::ClientHello,
            ..
        } if peer == Party::Server => {
            "our own ClientHello came back: a plain echo server, not TLS?".to_owned()
        }
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            format!("{who} sent a TLS message out of order: is it really a TLS peer?")
        }
        E::PeerIncompatible(why) => incompatible(why, peer),
        E::PeerMisbehaved(why) => misbehaved(why, peer),
        E::DecryptError => {
            format!("a TLS record from {who} failed to decrypt: the data was changed on the way")
        }
        E::PeerSentOversizedRecord => {
            format!("{who} sent a TLS record over 16 KiB: is it really a TLS peer?")
        }
        E::UnsupportedNameType => "the server name is of a kind TLS cannot send".to_owned(),
        E::InconsistentKeys(_) => "the key does not match the certificate".to_owned(),
        E::FailedToGetCurrentTime => "cannot read the system clock".to_owned(),
        E::FailedToGetRandomBytes => "cannot get random numbers from the system".to_owned(),
        E::NoApplicationProtocol => {
            format!("no application protocol (ALPN) in common with {who}")
        }
        E::General(text) => shown(text),
        _ => format!("the TLS session with {who} failed"),
    }
}

/// What is wrong with the `peer`'s certificate (or a certificate file's), and what to do.
pub(super) fn certificate_reason(err: &CertificateError, peer: Party) -> String {
    use CertificateError as C;
    let cert = peer.cert();
    match err {
        C::NotValidForNameContext {
            expected,
            presented,
        } => match names(presented) {
            Some(held) => format!(
                "{cert} is not valid for \"{}\" ({held}): connect by a name it holds, or give \
                 --servername",
                shown(&expected.to_str()),
            ),
            // A name only in the subject's CN does not count (RFC 6125): browsers ignore it too.
            None => format!(
                "{cert} is not valid for \"{}\": it names no host (no subjectAltName; a name \
                 only in its CN does not count): make it with subjectAltName=DNS:NAME or \
                 IP:ADDRESS, or trust it by --pin",
                shown(&expected.to_str()),
            ),
        },
        C::NotValidForName => {
            format!("{cert} is not valid for the name asked for: give --servername")
        }
        C::UnknownIssuer => match peer {
            Party::Server => format!(
                "unknown issuer: {cert} is not signed by a CA we trust (or the server leaves \
                 out its intermediate certificates); give its CA (or the certificate itself) \
                 with --cafile, or its fingerprint with --pin"
            ),
            _ => format!("unknown issuer: {cert} is not signed by {}", peer.trusted()),
        },
        C::BadEncoding => format!("{cert} is damaged (not valid DER)"),
        C::Expired => format!("{cert} expired: it must be renewed (or is the clock wrong?)"),
        C::ExpiredContext { not_after, .. } => format!(
            "{cert} expired on {}: it must be renewed (or is the clock wrong?)",
            date(*not_after)
        ),
        C::NotValidYet => format!("{cert} is not valid yet: is the clock right?"),
        C::NotValidYetContext { not_before, .. } => format!(
            "{cert} is not valid before {}: is the clock right?",
            date(*not_before)
        ),
        C::Revoked => format!("{cert} has been revoked by its CA"),
        C::BadSignature => format!("{cert} has a bad signature (damaged, or not by its issuer)"),
        C::InvalidPurpose => format!("{cert} is not for {}", peer.role()),
        C::InvalidPurposeContext { presented, .. } => purpose(presented, peer),
        C::Other(other) => {
            if let Some(mismatch) = other.0.downcast_ref::<Mismatch>() {
                return mismatch.to_string();
            }
            if let Some(not_in_file) = other.0.downcast_ref::<NotInFile>() {
                return not_in_file.to_string();
            }
            if let Some(not_its_key) = other.0.downcast_ref::<NotItsKey>() {
                return key_reason(not_its_key, peer);
            }
            match other.0.downcast_ref::<webpki::Error>() {
                Some(pki) => webpki_reason(pki, peer),
                None => format!("{cert} was refused"),
            }
        }
        _ => unusual_certificate(err, cert),
    }
}

/// A `peer` whose handshake signature does not verify with its certificate's key.
fn key_reason(why: &NotItsKey, peer: Party) -> String {
    let (who, cert) = (peer.name(), peer.cert());
    match why {
        NotItsKey::Held => format!(
            "{who} does not hold the key of the certificate it presents (its handshake \
             signature does not match): an impostor, or {who}'s --key is not its --cert's"
        ),
        NotItsKey::RsaBits(bits) => format!(
            "{cert} has an RSA key of {bits} bits, which we do not accept (2048 to 8192 \
             bits): {who} needs a new key and certificate"
        ),
    }
}

/// The certificate errors few people ever meet.
fn unusual_certificate(err: &CertificateError, cert: &str) -> String {
    use CertificateError as C;
    match err {
        C::UnhandledCriticalExtension => {
            format!("{cert} has a critical extension we do not know")
        }
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "{cert} is signed with an algorithm we do not support (ECDSA, Ed25519 or RSA \
             with SHA-256 or better are)"
        ),
        C::UnknownRevocationStatus | C::ExpiredRevocationList => {
            format!("the revocation status of {cert} is unknown")
        }
        C::ExpiredRevocationListContext { .. } => {
            format!("the revocation list for {cert} has expired")
        }
        C::InvalidOcspResponse => format!("the OCSP response for {cert} is invalid"),
        _ => format!("{cert} was refused"),
    }
}

/// The names a certificate holds, for a name mismatch: at most a few, made safe to print; none
/// if it holds no DNS name or IP address.
fn names(presented: &[String]) -> Option<String> {
    const SHOWN: usize = 4;
    let held: Vec<&str> = presented.iter().filter_map(|n| presented_name(n)).collect();
    if held.is_empty() {
        return None;
    }
    let mut list: Vec<String> = held.iter().take(SHOWN).map(|n| shown(n)).collect();
    if held.len() > SHOWN {
        list.push(format!("{} more", held.len() - SHOWN));
    }
    Some(format!("it is for {}", list.join(", ")))
}

/// The name inside webpki's form of a presented name (`DnsName("a.test")`,
/// `IpAddress(127.0.0.1)`); none for the kinds a server name is never checked against.
fn presented_name(name: &str) -> Option<&str> {
    name.strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
}

/// A certificate whose extended key usage does not allow its role.
fn purpose(presented: &[ExtendedKeyPurpose], peer: Party) -> String {
    let (cert, role) = (peer.cert(), peer.role());
    let allowed: Vec<&str> = presented
        .iter()
        .map(|p| match p {
            ExtendedKeyPurpose::ClientAuth => "clients",
            ExtendedKeyPurpose::ServerAuth => "servers",
            ExtendedKeyPurpose::Other(_) => "other uses",
        })
        .collect();
    let want = match peer {
        Party::Client => "clientAuth",
        _ => "serverAuth",
    };
    let only = if allowed.is_empty() {
        String::new()
    } else {
        format!(" (it is for {} only)", allowed.join(" and "))
    };
    format!("{cert} is not one for {role}{only}: issue one with extended key usage {want}")
}

/// The webpki errors rustls passes on as they are.
fn webpki_reason(err: &webpki::Error, peer: Party) -> String {
    use webpki::Error as W;
    let cert = peer.cert();
    match err {
        W::CaUsedAsEndEntity => match peer {
            Party::Server => format!(
                "{cert} is a CA certificate, not one for a server: if it is the server's own \
                 self-signed certificate, give that very file with --cafile (or its \
                 fingerprint with --pin); else give the server a certificate issued by that CA"
            ),
            _ => format!(
                "{cert} is a CA certificate, not one for {}: issue one signed by that CA",
                peer.role()
            ),
        },
        W::EndEntityUsedAsCa => format!(
            "{cert} is signed by a certificate that is not a CA: the chain is wrong (is an \
             end-entity certificate where its CA should be?)"
        ),
        W::CertDistrusted => format!("{cert} is from a CA that is no longer trusted"),
        W::EmptyEkuExtension => format!("{cert} allows no use at all (empty extended key usage)"),
        W::NameConstraintViolation => {
            format!("{cert} names a host its CA may not issue for (name constraints)")
        }
        W::PathLenConstraintViolated => {
            format!("{cert} has a longer chain of CAs than its root allows")
        }
        W::MaximumPathDepthExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumSignatureChecksExceeded
        | W::MaximumNameConstraintComparisonsExceeded => {
            format!("{cert} has a chain too long or too tangled to verify")
        }
        W::UnsupportedCriticalExtension => {
            format!("{cert} has a critical extension we do not know")
        }
        W::UnsupportedCertVersion => format!("{cert} is not an X.509 version 3 certificate"),
        W::UnsupportedNameType => "the server name is of a kind certificates cannot hold".into(),
        W::BadDer
        | W::BadDerTime
        | W::ExtensionValueInvalid
        | W::MalformedExtensions
        | W::MalformedDnsIdentifier
        | W::MalformedNameConstraint
        | W::InvalidSerialNumber
        | W::InvalidNetworkMaskConstraint
        | W::SignatureAlgorithmMismatch
        | W::TrailingData(_) => format!("{cert} is malformed"),
        _ => format!("{cert} was refused"),
    }
}

/// An alert `peer` sent us: what it refused and what to do.
fn alert_reason(alert: AlertDescription, peer: Party) -> String {
    use AlertDescription as A;
    let who = peer.name();
    let ours = match peer {
        Party::Server => "our client certificate",
        _ => "our certificate",
    };
    let words = alert_words(alert);
    let fix = match (alert, peer) {
        (A::CertificateRequired | A::NoCertificate, Party::Server) => {
            return format!(
                "the server refused the handshake ({words}): it requires a client \
                 certificate; give --cert and --key"
            );
        }
        (A::UnknownCA, Party::Server) => {
            format!("{ours}: it does not trust the CA that issued --cert")
        }
        (A::BadCertificate | A::CertificateUnknown, Party::Server) => format!(
            "{ours}: not from a CA it trusts, or not one for a client; the server's log says \
             which"
        ),
        (A::UnknownCA, _) => format!(
            "{ours}: it does not know its issuer; give the client our CA, or our fingerprint \
             (echo-client --cafile or --pin)"
        ),
        (A::BadCertificate | A::CertificateUnknown, _) => format!(
            "{ours}: not trusted, or not for the name it asked for; the client's own message \
             says which"
        ),
        // rustls sends this alert for a certificate not valid yet as well.
        (A::CertificateExpired, _) => {
            format!("{ours}: it has expired or is not valid yet (or a clock is wrong)")
        }
        (A::UnsupportedCertificate, Party::Server) => {
            format!("{ours}: is --cert one for a client (extended key usage clientAuth)?")
        }
        (A::UnsupportedCertificate, _) => {
            format!("{ours}: is --cert one for a server (extended key usage serverAuth)?")
        }
        (A::CertificateRevoked, _) => format!("{ours}: its CA has revoked it"),
        (A::AccessDenied, _) => format!("{ours}: it is not allowed in"),
        (A::UnrecognisedName, _) => {
            "the name asked for, which it does not serve: give --servername".to_owned()
        }
        (A::ProtocolVersion, _) => "our TLS version: it does not speak TLS 1.2 or 1.3".into(),
        (A::HandshakeFailure | A::InsufficientSecurity, _) => {
            "the handshake: no cipher suite, key exchange or signature scheme in common?".into()
        }
        (A::InternalError, _) => "the handshake after an error of its own".to_owned(),
        _ => "the handshake".to_owned(),
    };
    format!("{who} refused {fix} ({words})")
}

/// A malformed message from `peer`.
fn message_reason(why: &rustls::InvalidMessage, peer: Party) -> String {
    use rustls::InvalidMessage as M;
    let who = peer.name();
    match why {
        M::InvalidContentType => "not TLS (plain text such as HTTP?)".to_owned(),
        M::HandshakePayloadTooLarge => {
            "a handshake message over 64 KiB (a certificate chain that large?)".to_owned()
        }
        M::CertificatePayloadTooLarge => format!("{} chain is too large", peer.cert()),
        M::UnknownProtocolVersion => {
            format!("{who} speaks an unknown TLS version: is it really a TLS peer?")
        }
        _ => format!("{who} sent a malformed TLS message: is it really a TLS peer?"),
    }
}

/// A peer we cannot talk to, in words.
fn incompatible(why: &PeerIncompatible, peer: Party) -> String {
    use PeerIncompatible as P;
    let who = peer.name();
    match why {
        // A client without these extensions speaks TLS 1.1 or older.
        P::SignatureAlgorithmsExtensionRequired
        | P::SupportedVersionsExtensionRequired
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled => {
            format!("{who} offers only TLS 1.1 or older (1.2 or 1.3 needed)")
        }
        P::ServerDoesNotSupportTls12Or13 | P::ServerTlsVersionIsDisabledByOurConfig => {
            "the server offers only TLS 1.1 or older (1.2 or 1.3 needed)".to_owned()
        }
        // A TLS 1.2 suite is for one kind of key: a client that takes only RSA signatures
        // has no suite for an ECDSA certificate, and says nothing else.
        P::NoCipherSuitesInCommon if peer == Party::Client => format!(
            "no cipher suite in common with {who}: we need AES-GCM or ChaCha20-Poly1305 \
             (with ECDHE under TLS 1.2) and a signature by our certificate's kind of key \
             (ECDSA, Ed25519 or RSA); static RSA and CBC suites are not offered"
        ),
        P::NoCipherSuitesInCommon => format!(
            "no cipher suite in common with {who}: we need AES-GCM or ChaCha20-Poly1305 \
             (with ECDHE under TLS 1.2); static RSA and CBC suites are not offered"
        ),
        P::NoKxGroupsInCommon | P::NamedGroupsExtensionRequired | P::KeyShareExtensionRequired => {
            format!(
                "no key exchange in common with {who}: we need ECDHE with X25519, P-256 or \
                 P-384 (a peer offering only static RSA or finite-field DH cannot connect)"
            )
        }
        P::NoSignatureSchemesInCommon | P::NoCertificateRequestSignatureSchemesInCommon => {
            format!("no signature scheme in common with {who} (for its certificate's key type)")
        }
        P::ExtendedMasterSecretExtensionRequired => {
            format!("{who} lacks the extended master secret TLS 1.2 needs here")
        }
        _ => format!("{who} asks for TLS features we do not support"),
    }
}

/// A peer that broke the protocol, in words.
fn misbehaved(why: &rustls::PeerMisbehaved, peer: Party) -> String {
    use rustls::PeerMisbehaved as M;
    let who = peer.name();
    match why {
        M::ServerNameMustContainOneHostName => {
            "the client asked for a server name (SNI) that is not one valid host name".to_owned()
        }
        M::AttemptedDowngradeToTls12WhenTls13IsSupported => format!(
            "{who} downgraded to TLS 1.2 although both sides speak 1.3: someone in the \
             middle may be tampering"
        ),
        M::IllegalMiddleboxChangeCipherSpec => {
            format!("{who} sent a stray message: a middlebox in the path?")
        }
        _ => format!("{who} broke the TLS protocol: is it really a TLS peer?"),
    }
}

/// `BadCertificate` → `bad certificate`; an alert with no name → `alert 200`.
pub(super) fn alert_words(alert: AlertDescription) -> String {
    if let AlertDescription::Unknown(code) = alert {
        return format!("alert {code}");
    }
    let name = format!("{alert:?}");
    let mut words = String::new();
    let mut after_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && after_lower {
            words.push(' ');
        }
        after_lower = c.is_ascii_lowercase();
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// A certificate date as `2026-12-06 13:25 UTC`.
fn date(at: UnixTime) -> String {
    let secs = i64::try_from(at.as_secs()).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "a date out of range".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_their_wrapping() {
        let got = names(&[
            "DnsName(\"a.test\")".into(),
            "IpAddress(127.0.0.1)".into(),
            "DirectoryName".into(),
        ]);
        assert_eq!(got.as_deref(), Some("it is for a.test, 127.0.0.1"));
        assert_eq!(names(&["DirectoryName".into()]), None);
    }
}
