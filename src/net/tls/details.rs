//! What a certificate says, in the words `openssl x509 -text` and `s_client` use: subject and
//! issuer (`C=…, O=…, CN=…`), validity dates, subjectAltName (`DNS:…, IP Address:…`) and key
//! (`ECDSA P-256`, `RSA 2048 bits`). Read with the same small DER walk as the trust checks
//! ([`der_next`]), so no second certificate parser is linked; every text the peer chose is
//! made safe for a terminal ([`shown`]). A field that cannot be read is left out, never a
//! panic.

use std::net::IpAddr;

use super::cafile::{extensions, validity};
use super::{der_next, der_seq, shown};

/// A certificate's details for `echo-client -v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// `C=…, O=…, CN=…`, in the certificate's order, as openssl shows it.
    pub subject: String,
    /// The issuer, in the same form.
    pub issuer: String,
    /// The issuer is the subject: a self-signed certificate (or a root).
    pub self_issued: bool,
    /// notBefore and notAfter as `YYYY-MM-DD HH:MM:SS UTC`.
    pub validity: Option<(String, String)>,
    /// The subjectAltName entries, `DNS:localhost`, `IP Address:127.0.0.1`, … (none without
    /// the extension).
    pub names: Vec<String>,
    /// `ECDSA P-256`, `RSA 2048 bits`, `Ed25519`, or the algorithm's OID.
    pub key: Option<String>,
}

/// The details of the DER certificate `der`; `None` if it is no certificate.
pub fn details(der: &[u8]) -> Option<Details> {
    let fields = tbs_fields(der)?;
    let (issuer, subject) = (*fields.get(2)?, *fields.get(4)?);
    let validity = validity(der).map(|(from, to)| (date(from), date(to)));
    Some(Details {
        subject: name(subject).unwrap_or_else(|| "(unreadable)".to_owned()),
        issuer: name(issuer).unwrap_or_else(|| "(unreadable)".to_owned()),
        self_issued: issuer == subject,
        validity,
        names: alt_names(der).unwrap_or_default(),
        key: fields.get(5).copied().and_then(key),
    })
}

/// A certificate's subject as `C=…, O=…, CN=…`, from its DER.
pub fn subject(der: &[u8]) -> Option<String> {
    name(tbs_fields(der)?.get(4)?)
}

/// The size in bits of a certificate's RSA key; none for another kind of key.
pub(super) fn rsa_bits(der: &[u8]) -> Option<usize> {
    let spki = *tbs_fields(der)?.get(5)?;
    match public_key(spki)? {
        (RSA, _, key) => modulus_bits(key),
        _ => None,
    }
}

/// The fields of a certificate's TBSCertificate after its version, each with its tag and
/// length: serial, signature algorithm, issuer, validity, subject, public key, then the
/// optional ones.
fn tbs_fields(der: &[u8]) -> Option<Vec<&[u8]>> {
    let cert = der_seq(der)?.0;
    let mut tbs = der_seq(cert)?.0;
    if tbs.first() == Some(&0xa0) {
        tbs = der_next(tbs)?.1;
    }
    let mut fields = Vec::new();
    while !tbs.is_empty() {
        let rest = der_next(tbs)?.1;
        fields.push(&tbs[..tbs.len() - rest.len()]);
        tbs = rest;
    }
    (fields.len() >= 6).then_some(fields)
}

/// A Name (SEQUENCE of SETs of attributes) as openssl prints it: `C=US, O=Org, CN=name`, the
/// attributes of one SET joined by ` + `.
fn name(der: &[u8]) -> Option<String> {
    let (mut rdns, _) = der_seq(der)?;
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (mut set, rest) = der_seq(rdns)?;
        rdns = rest;
        let mut same = Vec::new();
        while !set.is_empty() {
            let (attr, more) = der_seq(set)?;
            set = more;
            let (oid, value) = der_next(attr)?;
            same.push(format!("{}={}", attribute(oid), text(value)?));
        }
        parts.push(same.join(" + "));
    }
    Some(parts.join(", "))
}

/// An attribute type's short name, as openssl's; the dotted OID for one it does not name.
fn attribute(oid: &[u8]) -> String {
    let known = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "street",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        _ => return dotted(oid),
    };
    known.to_owned()
}

/// A directory string at the start of `der`, safe to print; another type as `#` and its hex,
/// as openssl shows one.
fn text(der: &[u8]) -> Option<String> {
    let (body, _) = der_next(der)?;
    let plain = match der.first()? {
        // UTF8String, NumericString, PrintableString, T61String, IA5String, VisibleString.
        0x0c | 0x12 | 0x13 | 0x14 | 0x16 | 0x1a => String::from_utf8_lossy(body).into_owned(),
        // BMPString: UTF-16, big-endian.
        0x1e => char::decode_utf16(
            body.chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        _ => format!("#{}", hex(body)),
    };
    Some(shown(&plain))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// An OID's contents as `1.2.840.10045.2.1`.
fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut arc: u64 = 0;
    for &b in oid {
        arc = (arc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (arc / 40).min(2);
                arcs.extend([first, arc - first * 40]);
            } else {
                arcs.push(arc);
            }
            arc = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM:SS UTC`.
fn date(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok());
    match at {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => format!("{secs} s after 1970"),
    }
}

/// subjectAltName (2.5.29.17), as DER OID contents.
const ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// The subjectAltName entries, as `openssl x509 -text` writes them.
fn alt_names(der: &[u8]) -> Option<Vec<String>> {
    let (_, exts) = extensions(der)?;
    let Some((_, value)) = exts.iter().find(|(oid, _)| *oid == ALT_NAME) else {
        return Some(Vec::new());
    };
    let (mut list, _) = der_seq(value)?;
    let mut names = Vec::new();
    while !list.is_empty() {
        let tag = *list.first()?;
        let (body, rest) = der_next(list)?;
        list = rest;
        let lossy = || shown(&String::from_utf8_lossy(body));
        names.push(match tag {
            0x81 => format!("email:{}", lossy()),
            0x82 => format!("DNS:{}", lossy()),
            0x86 => format!("URI:{}", lossy()),
            0x87 => match body.len() {
                4 => format!(
                    "IP Address:{}",
                    IpAddr::from(<[u8; 4]>::try_from(body).ok()?)
                ),
                16 => format!(
                    "IP Address:{}",
                    IpAddr::from(<[u8; 16]>::try_from(body).ok()?)
                ),
                _ => format!("IP Address:#{}", hex(body)),
            },
            0xa4 => format!("DirName:{}", name(body).unwrap_or_default()),
            _ => "othername:<unsupported>".to_owned(),
        });
    }
    Some(names)
}

/// rsaEncryption, id-ecPublicKey, RSASSA-PSS, Ed25519 and Ed448, as DER OID contents.
const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const ED448: &[u8] = &[0x2b, 0x65, 0x71];

/// A SubjectPublicKeyInfo's algorithm OID, its parameters (DER, maybe empty) and the key
/// (the BIT STRING's bytes after its unused-bit count).
fn public_key(spki: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (info, _) = der_seq(spki)?;
    let (algorithm, key) = der_seq(info)?;
    let (oid, params) = der_next(algorithm)?;
    Some((oid, params, der_next(key)?.0.get(1..)?))
}

/// The key's kind and size in words.
fn key(spki: &[u8]) -> Option<String> {
    let (oid, params, key) = public_key(spki)?;
    Some(match oid {
        RSA | RSA_PSS => {
            let kind = if oid == RSA { "RSA" } else { "RSA-PSS" };
            match modulus_bits(key) {
                Some(bits) => format!("{kind} {bits} bits"),
                None => kind.to_owned(),
            }
        }
        EC => {
            let curve = der_next(params).map(|(curve, _)| curve);
            match curve {
                Some([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]) => "ECDSA P-256".to_owned(),
                Some([0x2b, 0x81, 0x04, 0x00, 0x22]) => "ECDSA P-384".to_owned(),
                Some([0x2b, 0x81, 0x04, 0x00, 0x23]) => "ECDSA P-521".to_owned(),
                Some(other) => format!("ECDSA, curve {}", dotted(other)),
                None => "ECDSA".to_owned(),
            }
        }
        ED25519 => "Ed25519".to_owned(),
        ED448 => "Ed448".to_owned(),
        other => format!("algorithm {}", dotted(other)),
    })
}

/// The bits of an RSA key's modulus, from the key's SEQUENCE { modulus, exponent }.
fn modulus_bits(key: &[u8]) -> Option<usize> {
    let modulus = der_next(der_seq(key)?.0)?.0;
    let digits = match modulus.iter().position(|&b| b != 0) {
        Some(at) => &modulus[at..],
        None => return Some(0),
    };
    Some(digits.len() * 8 - digits[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_signed_certificate_in_words() {
        let made =
            super::super::self_signed(&["example.test".into()], &["::1".parse().unwrap()]).unwrap();
        let got = details(&made.identity.chain[0]).unwrap();
        assert_eq!(got.subject, "CN=asyncio-tool echo-server");
        assert_eq!(got.issuer, got.subject);
        assert!(got.self_issued);
        assert_eq!(
            got.names,
            ["DNS:localhost", "DNS:example.test", "IP Address:::1"]
        );
        assert_eq!(got.key.as_deref(), Some("ECDSA P-256"));
        let (from, to) = got.validity.unwrap();
        assert!(from.ends_with(" UTC") && from < to, "{from} {to}");
        assert_eq!(details(b"\x30\x03\x02\x01\x00"), None);
    }

    #[test]
    fn names_and_oids_as_openssl_writes_them() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        // Empty first: rcgen's default name holds a CN, which would keep its place.
        params.distinguished_name = rcgen::DistinguishedName::new();
        let dn = &mut params.distinguished_name;
        dn.push(rcgen::DnType::CountryName, "XX");
        dn.push(rcgen::DnType::OrganizationName, "Org \u{1b}[31m");
        dn.push(rcgen::DnType::CommonName, "name");
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(
            subject(&der).as_deref(),
            Some("C=XX, O=Org \\u{1b}[31m, CN=name")
        );
        assert_eq!(dotted(EC), "1.2.840.10045.2.1");
        assert_eq!(dotted(&[0x55, 0x1d, 0x11]), "2.5.29.17");
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
    }
}
