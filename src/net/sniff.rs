//! Telling a TLS server's answer from an echo: a client that forgot `--tls` gets a TLS alert
//! back for its plain text, which would otherwise pass for (wrong) echoed data.

/// What the user is told when a plain-text client's reply is a TLS record.
pub const TLS_ANSWER: &str = "the server answered in TLS: add --tls";

/// Whether `reply` starts with a TLS record header: content type change_cipher_spec, alert,
/// handshake or application_data, protocol version 3.0–3.4 (SSL 3.0 to TLS 1.3's legacy
/// field), and a length no record may exceed (2^14 plus expansion). An alert is what a TLS
/// server answers to plain text; the other types are what one sends unprompted.
pub fn looks_like_tls_record(reply: &[u8]) -> bool {
    let [kind, major, minor, len_hi, len_lo, ..] = *reply else {
        return false;
    };
    let len = u16::from_be_bytes([len_hi, len_lo]);
    (20..=23).contains(&kind) && major == 3 && minor <= 4 && len > 0 && len <= MAX_RECORD
}

/// The longest record payload: 2^14 plus the most any cipher may add.
const MAX_RECORD: u16 = (1 << 14) + 2048;

/// Whether `partial`, shorter than a record header, may still become one: a TLS answer split
/// by a relay arrives in pieces, and its first byte alone says nothing yet.
pub fn may_start_tls_record(partial: &[u8]) -> bool {
    let fits: [fn(u8) -> bool; 4] = [
        |kind| (20..=23).contains(&kind),
        |major| major == 3,
        |minor| minor <= 4,
        |len_hi| u16::from(len_hi) << 8 <= MAX_RECORD,
    ];
    partial.len() < fits.len() + 1 && partial.iter().zip(fits).all(|(&b, fits)| fits(b))
}

#[cfg(test)]
mod tests {
    use super::looks_like_tls_record;

    #[test]
    fn a_tls_alert_is_recognised_and_text_is_not() {
        // What rustls sends to a client that spoke plain text: a fatal decode_error alert.
        assert!(looks_like_tls_record(&[0x15, 3, 3, 0, 2, 2, 50]));
        assert!(looks_like_tls_record(&[0x16, 3, 1, 0, 0x80]));
        assert!(!looks_like_tls_record(b"hello\n"));
        assert!(!looks_like_tls_record(&[0x15, 3, 3, 0]));
        assert!(!looks_like_tls_record(&[0x15, 3, 3, 0, 0]));
        assert!(!looks_like_tls_record(&[0x18, 3, 3, 0, 2]));
        assert!(!looks_like_tls_record(&[0x15, 3, 3, 0xff, 0xff]));
    }

    #[test]
    fn a_header_in_pieces_may_still_be_one() {
        use super::may_start_tls_record;
        for partial in [&[0x15][..], &[0x15, 3], &[0x16, 3, 1], &[0x17, 3, 3, 0x48]] {
            assert!(may_start_tls_record(partial), "{partial:?}");
        }
        for partial in [&b"x"[..], &[0x15, 2], &[0x16, 3, 5], &[0x17, 3, 3, 0x49]] {
            assert!(!may_start_tls_record(partial), "{partial:?}");
        }
        // Whole headers are looks_like_tls_record's to judge.
        assert!(!may_start_tls_record(&[0x15, 3, 3, 0, 2]));
    }
}
