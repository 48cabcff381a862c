//! A histogram from a results file, read within bounds: the file is anyone's, and an encoded
//! histogram's header says how much memory its decoder takes. Checked here before the
//! HdrHistogram crate decodes it: the deflated payload may expand only so far (a zip bomb),
//! the counts' length it claims must be there (the crate allocates it first: 2 GB for a
//! 1 KB line), and the counts must add up within a u64 (the crate's total wraps). Each
//! histogram is then kept at 3 significant digits, sized to its own values, however wide a
//! range its header declared.

use std::io::Read as _;

use base64::Engine as _;
use color_eyre::eyre;

use crate::latency::Latencies;

/// The V2 cookies (with the crate's word size), as HdrHistogram writes them.
const V2: u32 = 0x1c84_9313;
const V2_COMPRESSED: u32 = 0x1c84_9314;
/// The V2 header: cookie, payload length, normalizing offset, digits, lowest, highest, ratio.
const HEADER: usize = 40;
/// How far a histogram may expand when inflated: its counts at 5 significant digits up to
/// 2^63 are some 6 million, a few bytes each; a real run's take a few kilobytes.
const MAX_INFLATED: u64 = 64 << 20;

/// The histogram `text` encodes (base64 of V2, compressed or not), or why it is none.
pub(super) fn decode(text: &str) -> eyre::Result<Latencies> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| eyre::eyre!("not an encoded histogram: not base64"))?;
    let inflated;
    let v2 = match cookie(&bytes) {
        Some(V2_COMPRESSED) => {
            inflated = inflate(&bytes)?;
            inflated.as_slice()
        }
        Some(V2) => &bytes[..],
        // Not ours to judge: the crate names what is wrong.
        _ => return Latencies::decode(text),
    };
    check(v2)?;
    let decoded = Latencies::decode(text)?;
    // At our resolution, sized to its values: a header may declare 5 digits up to 2^63.
    let mut ours = Latencies::new();
    ours.add(&decoded)?;
    Ok(ours)
}

/// The big-endian u32 at the start of `bytes`.
fn cookie(bytes: &[u8]) -> Option<u32> {
    let head: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(head))
}

/// The V2 histogram deflated in a compressed one, as far as [`MAX_INFLATED`].
fn inflate(bytes: &[u8]) -> eyre::Result<Vec<u8>> {
    let deflated = bytes.get(8..).unwrap_or_default();
    let mut v2 = Vec::new();
    flate2::read::ZlibDecoder::new(deflated)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut v2)
        .map_err(|err| eyre::eyre!("not an encoded histogram: cannot inflate it: {err}"))?;
    if v2.len() as u64 > MAX_INFLATED {
        eyre::bail!(
            "not an encoded histogram: it inflates past {} MiB (no run's histogram is that \
             large)",
            MAX_INFLATED >> 20
        );
    }
    Ok(v2)
}

/// Checks an uncompressed V2 histogram's claimed payload against what it holds, and its
/// counts' total.
fn check(v2: &[u8]) -> eyre::Result<()> {
    let (Some(claimed), Some(payload)) = (v2.get(4..8), v2.get(HEADER..)) else {
        // Too short for a header: the crate says so.
        return Ok(());
    };
    let claimed = u32::from_be_bytes([claimed[0], claimed[1], claimed[2], claimed[3]]) as usize;
    let Some(counts) = payload.get(..claimed) else {
        eyre::bail!(
            "not an encoded histogram: its header claims {claimed} bytes of counts, it holds \
             {}",
            payload.len()
        );
    };
    if total(counts).is_none() {
        eyre::bail!("not an encoded histogram: its counts add up past 2^64");
    }
    Ok(())
}

/// The sum of the counts of a V2 payload (zig-zag LEB128 varints, 9 bytes at most, a negative
/// one a run of empty buckets), `None` if it overflows or a number is out of range.
fn total(mut payload: &[u8]) -> Option<u64> {
    let mut sum = 0u64;
    while !payload.is_empty() {
        let mut zz = 0u64;
        let mut used = 0;
        for (i, &b) in payload.iter().take(9).enumerate() {
            used = i + 1;
            if i == 8 {
                zz |= u64::from(b) << 56;
                break;
            }
            zz |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        payload = &payload[used..];
        let n = (zz >> 1) as i64 ^ -((zz & 1) as i64);
        // i64::MIN has no negation: the crate would overflow on it.
        if n == i64::MIN {
            return None;
        }
        if n > 0 {
            sum = sum.checked_add(n as u64)?;
        }
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn zz(n: i64) -> u64 {
        ((n << 1) ^ (n >> 63)) as u64
    }

    #[test]
    fn totals_of_payloads() {
        let mut p = varint(zz(7));
        p.extend(varint(zz(-3)));
        p.extend(varint(zz(5)));
        assert_eq!(total(&p), Some(12));
        let big = varint(zz(i64::MAX));
        assert_eq!(total(&big.repeat(2)), Some(2 * i64::MAX as u64));
        assert_eq!(total(&big.repeat(3)), None);
        // The 9th byte takes all its 8 bits.
        assert_eq!(total(&[0xff; 9]), None, "i64::MIN");
        assert_eq!(total(&[]), Some(0));
    }

    /// Too short for its header, or its counts: an error, never a panic.
    #[test]
    fn short_input_is_an_error() {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        for len in [0, 3, 4, 8, 20, 39, 40] {
            let mut v2 = V2.to_be_bytes().to_vec();
            v2.resize(len.max(4), 0);
            assert!(decode(&b64(&v2)).is_err(), "{len}");
        }
        let mut v2 = V2.to_be_bytes().to_vec();
        v2.resize(HEADER, 0);
        v2[7] = 9;
        let err = decode(&b64(&v2)).err().unwrap().to_string();
        assert!(
            err.contains("claims 9 bytes of counts, it holds 0"),
            "{err}"
        );
    }

    #[test]
    fn a_run_of_ours_round_trips() {
        let mut l = Latencies::new();
        for us in [1, 50, 1000, 123_456] {
            l.record_ns(us * 1000);
        }
        let back = decode(&l.encode()).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back.max_us(), l.max_us());
    }
}
