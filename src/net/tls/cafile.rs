//! `--cafile`'s verifier: webpki against the file's CAs, and one more case openssl accepts —
//! the server's own certificate given in the file. `openssl req -x509` (what socat's and most
//! tutorials' servers use) makes a self-signed certificate marked as a CA; webpki refuses a CA
//! certificate as a server's ("CA used as end entity") even when it is the trust anchor
//! itself. A certificate in the file byte for byte is trusted as it is, as `openssl s_client
//! -CAfile` does; its name and dates are still checked, and the handshake's signatures prove
//! the server holds its key.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore};
use rustls::{Error, SignatureScheme};

use super::{der_next, der_seq};

/// Trusts what webpki trusts with the file's CAs, and the certificates of the file as they are.
#[derive(Debug)]
pub(super) struct CaFile {
    webpki: Arc<WebPkiServerVerifier>,
    /// Every certificate of the file, as given.
    given: Vec<CertificateDer<'static>>,
}

impl CaFile {
    /// The verifier for the certificates `given` in `--cafile`, `roots` being the same.
    pub(super) fn new(
        given: Vec<CertificateDer<'static>>,
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<CaFile, rustls::client::VerifierBuilderError> {
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(CaFile { webpki, given })
    }
}

/// webpki refused the certificate only for what a trusted-as-is certificate may be: not
/// issued by a CA of the file, or a CA certificate in a server's place.
fn trust_as_is_covers(err: &Error) -> bool {
    match err {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => true,
        Error::InvalidCertificate(CertificateError::Other(OtherError(other))) => matches!(
            other.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
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
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(err) => err,
        };
        if !trust_as_is_covers(&refused) || !self.given.iter().any(|c| c == end_entity) {
            return Err(refused);
        }
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        check_dates(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
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
fn validity(der: &[u8]) -> Option<(u64, u64)> {
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
    fn validity_of_a_made_certificate() {
        let made = super::super::self_signed(&[], &[]).unwrap();
        let (from, to) = validity(&made.identity.chain[0]).unwrap();
        let now = UnixTime::now().as_secs();
        assert!(from < now && now < to, "{from} {now} {to}");
        assert!(check_dates(&made.identity.chain[0], UnixTime::now()).is_ok());
    }
}
