//! The server's check of client certificates (`--client-ca`), by the rule of `--cafile`
//! ([`super::cafile`]): webpki against the file's CA certificates only, and a client
//! certificate in the file trusted as it is (dates and clientAuth still checked). A failed
//! handshake signature is put as what it means — the client does not hold its certificate's
//! key, or holds an RSA key too short to verify — rather than as a damaged certificate.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use super::cafile::{TrustFile, handshake_signature};
use super::reason::Party;

/// Requires a client certificate: one webpki accepts with the file's CAs, or one of the
/// file's certificates as it is.
#[derive(Debug)]
pub(super) struct ClientCa {
    /// None when the file holds no CA certificate: then only its certificates as they are.
    webpki: Option<Arc<dyn ClientCertVerifier>>,
    trust: TrustFile,
    /// Every certificate's subject, sent to the client to choose its certificate by (none if
    /// they are too many: see [`MAX_HINTS`]).
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCa {
    /// The verifier for the certificates of the `--client-ca` `trust`.
    pub(super) fn new(
        trust: TrustFile,
        provider: Arc<CryptoProvider>,
    ) -> Result<ClientCa, rustls::server::VerifierBuilderError> {
        let webpki = match trust.anchors() {
            None => None,
            Some(roots) => Some(
                WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()?,
            ),
        };
        Ok(ClientCa {
            webpki,
            hints: hints(trust.subjects()),
            trust,
            provider,
        })
    }
}

/// The most bytes of names the server's certificate request carries. Their list has a 16-bit
/// length, and the whole message must stay under the 64 KiB that clients (rustls among them)
/// take: a --client-ca with more names (hundreds of certificates) made a request no client
/// could read, and tripped rustls's own length check.
const MAX_HINTS: usize = 32 * 1024;

/// `subjects` as the names to send, or none when they would not fit in [`MAX_HINTS`]: with no
/// names a client may present any certificate (RFC 5246 7.4.4, RFC 8446 4.2.4), which is then
/// verified all the same. Some would mislead a client whose certificate's issuer is left out.
fn hints(subjects: Vec<DistinguishedName>) -> Vec<DistinguishedName> {
    let size: usize = subjects.iter().map(|name| name.as_ref().len() + 2).sum();
    match size <= MAX_HINTS {
        true => subjects,
        false => Vec::new(),
    }
}

impl ClientCertVerifier for ClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = match &self.webpki {
            Some(webpki) => webpki.verify_client_cert(end_entity, intermediates, now),
            None => Err(CertificateError::UnknownIssuer.into()),
        };
        let refused = match verified {
            Ok(verified) => return Ok(verified),
            Err(err) => err,
        };
        self.trust.as_is(refused, end_entity, now, Party::Client)?;
        Ok(ClientCertVerified::assertion())
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
