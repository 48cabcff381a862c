//! The server's counters, shared by the accept loop, the connections and the status line.
//!
//! Echoed bytes are the busy one, counted on every write. Without a status line, a
//! connection adds its bytes to the shared total in batches, so a ping-pong message does not
//! touch a cache line every worker thread writes to. With a status line, batches would leave
//! an interactive connection at `0 B echoed` until it closes; so then each open connection
//! keeps its count in a cache line of its own, which the status line adds up when it draws:
//! current counts, still nothing written that workers share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Echoed bytes go to the shared total in batches of this much (and at the end) when no
/// status line reads the per-connection counts.
const PUBLISH_EVERY: u64 = 64 * 1024;

/// Counters shared by the accept loop, the connections and the status line.
#[derive(Debug, Default)]
pub struct Stats {
    /// Set just before the shutdown deadline's cancellation, for `UntilCancelled`.
    pub closing: AtomicBool,
    /// Accepted and not yet closed, counted from the accept (not from the task's first poll),
    /// so the count at shutdown includes connections still waiting for their first turn.
    pub active: AtomicU64,
    /// Connections accepted.
    pub served: AtomicU64,
    /// Connections the server closed at the shutdown deadline or second signal.
    pub cut: AtomicU64,
    /// Faults injected (`--delay`, `--reset-probability`, ...).
    pub injected: super::fault::Injected,
    /// Clients refused (`--allow`, `--deny`, `--max-per-ip`).
    pub refused: super::admit::Refused,
    /// Echoed bytes: all of them once every connection has closed; while the status line is
    /// drawn, those of closed connections only.
    bytes: AtomicU64,
    /// While a status line is drawn: the open connections' own counters.
    open: Option<Mutex<Vec<Weak<Counter>>>>,
}

/// A consistent-enough copy of [`Stats`] for display.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Open connections.
    pub active: u64,
    /// Connections accepted.
    pub served: u64,
    /// Bytes echoed so far.
    pub bytes: u64,
}

impl Stats {
    /// Counters for a server; `live` when a status line will read them while connections
    /// are open.
    pub fn new(live: bool) -> Self {
        Stats {
            open: live.then(Mutex::default),
            ..Stats::default()
        }
    }

    /// The counts now, including the bytes of open connections when a status line is drawn.
    pub fn snapshot(&self) -> Snapshot {
        let bytes = match &self.open {
            // Under the lock, so a connection closing meanwhile is counted once: either in
            // its own counter or in `bytes` (see `Count::drop`).
            Some(open) => {
                let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
                let mut bytes = self.bytes.load(Ordering::Relaxed);
                open.retain(|counter| match counter.upgrade() {
                    Some(counter) => {
                        bytes += counter.0.load(Ordering::Relaxed);
                        true
                    }
                    None => false,
                });
                bytes
            }
            None => self.bytes.load(Ordering::Relaxed),
        };
        Snapshot {
            active: self.active.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            bytes,
        }
    }
}

/// One open connection's echoed bytes, alone in its cache line (128 bytes: some CPUs fetch
/// lines in pairs), so connections on different workers never contend for it.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Counter(AtomicU64);

/// Counts a connection's echoed bytes where [`Stats`] says (batches, or the connection's own
/// counter), and settles them into the total when dropped, so a connection cut at shutdown
/// is counted too.
pub struct Count<'a> {
    stats: &'a Stats,
    echoed: u64,
    /// How much of `echoed` is already in `stats.bytes`.
    published: u64,
    /// This connection's counter, when the status line reads them.
    own: Option<Arc<Counter>>,
    /// Where the connection's total goes when it ends.
    out: &'a mut u64,
}

impl<'a> Count<'a> {
    /// Starts counting a new connection's bytes; the total is stored in `out` at the end.
    pub fn new(stats: &'a Stats, out: &'a mut u64) -> Self {
        let own = stats.open.as_ref().map(|open| {
            let counter = Arc::new(Counter::default());
            open.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::downgrade(&counter));
            counter
        });
        Count {
            stats,
            echoed: 0,
            published: 0,
            own,
            out,
        }
    }

    /// Counts `n` more bytes echoed.
    pub fn add(&mut self, n: usize) {
        self.echoed += n as u64;
        match &self.own {
            // Only this connection writes it: a plain store, no read-modify-write.
            Some(own) => own.0.store(self.echoed, Ordering::Relaxed),
            None if self.echoed - self.published >= PUBLISH_EVERY => self.publish(),
            None => {}
        }
    }

    fn publish(&mut self) {
        self.stats
            .bytes
            .fetch_add(self.echoed - self.published, Ordering::Relaxed);
        self.published = self.echoed;
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        match (self.own.take(), &self.stats.open) {
            (Some(own), Some(open)) => {
                // Moved from the connection's counter to the total under the status line's
                // lock, so it never sees the bytes in both or in neither.
                let _open = open.lock().unwrap_or_else(PoisonError::into_inner);
                self.publish();
                drop(own);
            }
            _ => self.publish(),
        }
        *self.out = self.echoed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_bytes_show_at_once_with_a_status_line() {
        let stats = Stats::new(true);
        let (mut a_out, mut b_out) = (0, 0);
        let mut a = Count::new(&stats, &mut a_out);
        let mut b = Count::new(&stats, &mut b_out);
        a.add(5);
        b.add(64);
        assert_eq!(stats.snapshot().bytes, 69);
        drop(a);
        assert_eq!(stats.snapshot().bytes, 69);
        b.add(1);
        drop(b);
        assert_eq!(stats.snapshot().bytes, 70);
        assert_eq!((a_out, b_out), (5, 65));
    }

    #[test]
    fn without_a_status_line_bytes_go_in_batches_and_at_the_end() {
        let stats = Stats::new(false);
        let mut out = 0;
        let mut c = Count::new(&stats, &mut out);
        c.add(5);
        assert_eq!(stats.snapshot().bytes, 0);
        c.add(PUBLISH_EVERY as usize);
        assert_eq!(stats.snapshot().bytes, PUBLISH_EVERY + 5);
        c.add(1);
        drop(c);
        assert_eq!(stats.snapshot().bytes, PUBLISH_EVERY + 6);
        assert_eq!(out, PUBLISH_EVERY + 6);
    }
}
