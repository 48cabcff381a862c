//! The probes in flight: a ring of send times, so memory stays bounded however slow the server
//! is (at most [`capacity`] probes), and a table of the probe numbers answered, as ping keeps
//! one (`rcvd_tbl`), to tell a duplicate from a late reply after the ring has moved on.

use std::time::Duration;

use tokio::time::Instant;

/// Probes in flight at most, whatever `--timeout` and `--interval`: as many as ping's table of
/// replies tells apart.
const MAX_IN_FLIGHT: u64 = 1 << 16;
/// Probe numbers whose answer is remembered (modulo this): ping's `MAX_DUP_CHK`.
const REMEMBERED: u64 = 1 << 16;
/// Bytes of messages a run keeps in flight at most: a stream's queue of messages not yet
/// written, or `--new-connection`'s message per connection.
const BUFFERED: u64 = 16 << 20;

/// How many probes may be in flight: those sent within twice `timeout` (a reply may come that
/// late and still be timed), within [`MAX_IN_FLIGHT`] and [`BUFFERED`] bytes (at least 2).
pub(super) fn capacity(timeout: Duration, interval: Duration, size: usize) -> usize {
    let per_timeout = timeout.as_nanos() / interval.as_nanos().max(1);
    let spans = u64::try_from(per_timeout)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(2);
    let memory = (BUFFERED / size.max(1) as u64).max(2);
    spans.min(MAX_IN_FLIGHT).min(memory) as usize
}

/// Where a probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Sent, its reply awaited within `--timeout`.
    Awaiting,
    /// Declared lost when its timeout passed; a reply may still come late.
    Lost,
    /// Lost with its connection: no reply can come.
    Gone,
    /// Answered.
    Answered,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    sent: Instant,
    state: State,
}

/// What a reply to a probe turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// The first reply, within the timeout: its round trip.
    Reply(Duration),
    /// The first reply to a probe declared lost: its round trip, unless the ring has moved on.
    Late(Option<Duration>),
    /// Another reply to a probe already answered.
    Duplicate,
    /// No probe of that number was sent, or too long ago to know.
    Unknown,
}

/// The probes sent, numbered from 1.
pub(super) struct Flight {
    slots: Vec<Option<Slot>>,
    /// The next probe's number.
    next: u64,
    /// No probe before it awaits its reply: where the next timeout is looked for.
    oldest: u64,
    /// A bit per probe number (modulo [`REMEMBERED`]), set once answered.
    answered: Vec<u64>,
    timeout: Duration,
}

impl Flight {
    /// Room for `capacity` probes in flight, each lost `timeout` after it was sent.
    pub(super) fn new(capacity: usize, timeout: Duration) -> Flight {
        Flight {
            slots: vec![None; capacity.max(1)],
            next: 1,
            oldest: 1,
            answered: vec![0; (REMEMBERED / 64) as usize],
            timeout,
        }
    }

    /// The number the next probe gets.
    pub(super) fn next(&self) -> u64 {
        self.next
    }

    fn slot(&self, seq: u64) -> Option<&Slot> {
        let slot = self.slots[(seq % self.slots.len() as u64) as usize].as_ref();
        slot.filter(|s| s.seq == seq)
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let len = self.slots.len() as u64;
        let slot = self.slots[(seq % len) as usize].as_mut();
        slot.filter(|s| s.seq == seq)
    }

    /// The probe whose place in the ring the next one would take, with its state, while it is
    /// not answered: the next probe waits for one awaited; a stream gives up on one lost.
    pub(super) fn in_the_way(&self) -> Option<(u64, State)> {
        let len = self.slots.len() as u64;
        let seq = self.next.checked_sub(len)?;
        let slot = self.slot(seq)?;
        (slot.state != State::Answered).then_some((seq, slot.state))
    }

    /// Records the next probe, sent at `now`; returns its number.
    pub(super) fn send(&mut self, now: Instant) -> u64 {
        let seq = self.next;
        let len = self.slots.len() as u64;
        self.slots[(seq % len) as usize] = Some(Slot {
            seq,
            sent: now,
            state: State::Awaiting,
        });
        self.remember(seq, false);
        self.next += 1;
        seq
    }

    fn remember(&mut self, seq: u64, answered: bool) {
        let bit = seq % REMEMBERED;
        let word = &mut self.answered[(bit / 64) as usize];
        if answered {
            *word |= 1 << (bit % 64);
        } else {
            *word &= !(1 << (bit % 64));
        }
    }

    fn was_answered(&self, seq: u64) -> bool {
        let bit = seq % REMEMBERED;
        self.answered[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    /// The oldest probe awaiting its reply.
    pub(super) fn oldest_awaiting(&mut self) -> Option<u64> {
        while self.oldest < self.next {
            let seq = self.oldest;
            if self.slot(seq).is_some_and(|s| s.state == State::Awaiting) {
                return Some(seq);
            }
            self.oldest += 1;
        }
        None
    }

    /// When the oldest probe awaiting its reply is lost, if one is.
    pub(super) fn due(&mut self) -> Option<Instant> {
        let seq = self.oldest_awaiting()?;
        self.slot(seq).map(|s| s.sent + self.timeout)
    }

    /// Declares lost the oldest probe awaiting its reply if its timeout has passed at `now`;
    /// returns its number.
    pub(super) fn expire(&mut self, now: Instant) -> Option<u64> {
        let seq = self.oldest_awaiting()?;
        if self.due().is_some_and(|due| due <= now) && self.lose(seq) {
            return Some(seq);
        }
        None
    }

    /// Declares probe `seq` lost; whether it was awaiting its reply.
    pub(super) fn lose(&mut self, seq: u64) -> bool {
        match self.slot_mut(seq) {
            Some(slot) if slot.state == State::Awaiting => {
                slot.state = State::Lost;
                true
            }
            _ => false,
        }
    }

    /// Probe `seq`'s connection is gone: no reply to it can come. Whether it awaited one.
    pub(super) fn forget(&mut self, seq: u64) -> bool {
        match self.slot_mut(seq) {
            Some(slot) if matches!(slot.state, State::Awaiting | State::Lost) => {
                let awaited = slot.state == State::Awaiting;
                slot.state = State::Gone;
                awaited
            }
            _ => false,
        }
    }

    /// Whether a probe declared lost may still be answered (late).
    pub(super) fn may_come_late(&self) -> bool {
        self.slots.iter().flatten().any(|s| s.state == State::Lost)
    }

    /// Whether probe `seq` awaits its reply.
    pub(super) fn is_awaiting(&self, seq: u64) -> bool {
        self.slot(seq).is_some_and(|s| s.state == State::Awaiting)
    }

    /// Records a reply to probe `seq` come at `now`.
    pub(super) fn settle(&mut self, seq: u64, now: Instant) -> Settled {
        if seq == 0 || seq >= self.next {
            return Settled::Unknown;
        }
        let (next, answered) = (self.next, self.was_answered(seq));
        let settled = match self.slot_mut(seq) {
            Some(slot) => {
                let rtt = now.saturating_duration_since(slot.sent);
                let settled = match slot.state {
                    State::Awaiting => Settled::Reply(rtt),
                    State::Lost | State::Gone => Settled::Late(Some(rtt)),
                    State::Answered => Settled::Duplicate,
                };
                slot.state = State::Answered;
                settled
            }
            // Out of the ring, so not awaited: lost once, unless answered.
            None if next - seq > REMEMBERED => return Settled::Unknown,
            None if answered => Settled::Duplicate,
            None => Settled::Late(None),
        };
        self.remember(seq, true);
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn capacity_covers_twice_the_timeout_within_bounds() {
        assert_eq!(capacity(2000 * MS, 10 * MS, 64), 402);
        assert_eq!(capacity(2000 * MS, 1000 * MS, 64), 6);
        assert_eq!(capacity(Duration::from_secs(1 << 40), MS, 64), 1 << 16);
        assert_eq!(capacity(2000 * MS, MS, 16 << 20), 2);
        assert_eq!(capacity(2000 * MS, MS, 1 << 20), 16);
    }

    #[test]
    fn replies_late_replies_and_duplicates() {
        let t0 = Instant::now();
        let mut f = Flight::new(4, 100 * MS);
        assert_eq!(f.send(t0), 1);
        assert_eq!(f.send(t0 + 10 * MS), 2);
        assert_eq!(f.due(), Some(t0 + 100 * MS));
        assert_eq!(f.expire(t0 + 99 * MS), None);
        assert_eq!(f.settle(2, t0 + 40 * MS), Settled::Reply(30 * MS));
        assert_eq!(f.settle(2, t0 + 41 * MS), Settled::Duplicate);
        assert_eq!(f.expire(t0 + 100 * MS), Some(1));
        assert_eq!(f.due(), None, "nothing awaited");
        assert_eq!(f.settle(1, t0 + 150 * MS), Settled::Late(Some(150 * MS)));
        assert_eq!(f.settle(1, t0 + 151 * MS), Settled::Duplicate);
        assert_eq!(f.settle(3, t0), Settled::Unknown, "not sent");
        assert_eq!(f.settle(0, t0), Settled::Unknown);
    }

    /// The ring's slots are taken over in turn; a probe awaited is in the way of the one
    /// that would take its place; once out of the ring, a reply is late or a duplicate as
    /// the table of answers says.
    #[test]
    fn the_ring_moves_on() {
        let t0 = Instant::now();
        let mut f = Flight::new(2, 100 * MS);
        f.send(t0);
        f.send(t0);
        assert_eq!(f.in_the_way(), Some((1, State::Awaiting)));
        assert!(f.lose(1));
        assert!(!f.lose(1), "lost once");
        assert_eq!(f.in_the_way(), Some((1, State::Lost)));
        assert_eq!(f.settle(2, t0), Settled::Reply(Duration::ZERO));
        f.send(t0);
        assert_eq!(f.in_the_way(), None, "2 answered");
        f.send(t0);
        assert_eq!(f.oldest_awaiting(), Some(3));
        assert_eq!(f.settle(1, t0), Settled::Late(None));
        assert_eq!(f.settle(1, t0), Settled::Duplicate);
        assert_eq!(f.settle(2, t0), Settled::Duplicate);
        assert!(f.is_awaiting(4) && !f.is_awaiting(2));
        assert!(!f.may_come_late());
        assert_eq!(f.expire(t0 + 100 * MS), Some(3));
        assert!(f.may_come_late());
        assert!(!f.forget(3), "lost already");
        assert!(f.forget(4), "awaited");
        assert!(!f.may_come_late() && f.due().is_none());
    }
}
