//! The probes' messages: a body of random bytes drawn once per run (the run's tag: a reply
//! from another run differs), with the probe's number stamped in its first bytes
//! ([`super::super::stamp`]), so a datagram reply names the probe it answers and every byte of
//! it is still checked.

use color_eyre::eyre;

use super::super::transport::{Echo, compare};
use super::super::{random_message, stamp};
use super::flight::Flight;

/// How far back a 1-byte reply is looked for: its stamp repeats every 255 or 257 probes.
const ONE_BYTE_BACK: u64 = 512;

/// The message of any probe of this run.
pub(super) struct Messages {
    msg: Vec<u8>,
}

impl Messages {
    /// Messages of `size` bytes.
    pub(super) fn new(size: usize) -> eyre::Result<Messages> {
        Ok(Messages {
            msg: random_message(size, 1)?,
        })
    }

    /// Probe `seq`'s message.
    pub(super) fn of(&mut self, seq: u64) -> &[u8] {
        stamp(&mut self.msg, seq);
        &self.msg
    }

    /// The probe sent before `next` whose stamp `reply` carries, the latest if several do
    /// (stamps under 8 bytes wrap).
    fn named(&mut self, reply: &[u8], next: u64) -> Option<u64> {
        let width = self.msg.len().min(8);
        let head = reply.get(..width)?;
        let last = next.checked_sub(1).filter(|&l| l > 0)?;
        if width == 1 {
            let first = last.saturating_sub(ONE_BYTE_BACK).max(1);
            return (first..=last).rev().find(|&seq| self.of(seq)[0] == head[0]);
        }
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(head);
        let stamped = u64::from_le_bytes(le);
        if width == 8 {
            return (1..=last).contains(&stamped).then_some(stamped);
        }
        let mask = (1u64 << (8 * width)) - 1;
        last.checked_sub(last.wrapping_sub(stamped) & mask)
            .filter(|&seq| seq > 0)
    }

    /// The probe a datagram `reply` answers, and how it compares with that probe's message: the
    /// one its stamp names if it is that message byte for byte or that probe awaits its reply;
    /// else (a stamp changed on the way, or another run's reply) the oldest probe awaiting
    /// one. `None` when it answers none: no probe awaits one.
    pub(super) fn identify(&mut self, reply: &[u8], flight: &mut Flight) -> Option<(u64, Echo)> {
        if let Some(seq) = self.named(reply, flight.next()) {
            let echo = compare(self.of(seq), reply);
            if echo == Echo::Intact || flight.is_awaiting(seq) {
                return Some((seq, echo));
            }
        }
        let seq = flight.oldest_awaiting()?;
        Some((seq, compare(self.of(seq), reply)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    fn flight(sent: u64) -> Flight {
        let mut f = Flight::new(1 << 10, Duration::from_secs(1));
        for _ in 0..sent {
            f.send(Instant::now());
        }
        f
    }

    /// At every width a stamp names the latest probe sent with it, and a reply with a byte
    /// changed past the stamp is that probe's mismatch while it awaits its reply.
    #[test]
    fn a_reply_names_its_probe_at_every_size() {
        for size in [1, 2, 3, 7, 8, 9, 64] {
            let mut m = Messages::new(size).unwrap();
            let mut f = flight(300);
            for seq in [1, 2, 255, 299, 300] {
                let reply = m.of(seq).to_vec();
                let (got, echo) = m.identify(&reply, &mut f).unwrap();
                assert_eq!(echo, Echo::Intact, "size {size}, seq {seq}");
                // A 1-byte stamp repeats: the latest probe with that byte is taken.
                if size == 1 {
                    assert!(got >= seq && m.of(got) == reply, "seq {seq}: {got}");
                } else {
                    assert_eq!(got, seq, "size {size}");
                }
            }
            if size > 8 {
                let mut reply = m.of(120).to_vec();
                reply[size - 1] ^= 1;
                assert_eq!(
                    m.identify(&reply, &mut f),
                    Some((120, Echo::Differs(size - 1)))
                );
                f.settle(120, Instant::now());
                assert_eq!(
                    m.identify(&reply, &mut f),
                    Some((1, Echo::Differs(0))),
                    "answered: the oldest awaiting takes it"
                );
            }
        }
    }

    /// Another run's reply (another body) is a mismatch: of the probe its stamp names while
    /// that one awaits its reply, else of the oldest awaiting one, and answers nothing once
    /// none does.
    #[test]
    fn another_runs_reply_is_a_mismatch() {
        let mut ours = Messages::new(64).unwrap();
        // Their tag differs from ours in one byte only, the hardest case.
        let mut theirs = Messages {
            msg: ours.msg.clone(),
        };
        theirs.msg[20] ^= 0xff;
        let mut f = flight(3);
        let reply = theirs.of(2).to_vec();
        assert_eq!(ours.identify(&reply, &mut f), Some((2, Echo::Differs(20))));
        f.settle(2, Instant::now());
        assert_eq!(ours.identify(&reply, &mut f), Some((1, Echo::Differs(0))));
        for seq in [1, 3] {
            f.settle(seq, Instant::now());
        }
        assert_eq!(ours.identify(&reply, &mut f), None);
    }
}
