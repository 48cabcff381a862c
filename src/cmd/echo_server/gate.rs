//! Room for connections that serve no one yet (a TLS handshake, a PROXY protocol header read
//! before a plain echo), apart from `--max-connections`.
//!
//! A connection that has not finished its handshake serves no one, so it must not hold one
//! of the `--max-connections` slots that a finished handshake needs: six sockets that connect
//! and say nothing would otherwise keep a real client waiting for the handshake deadline,
//! and renewed every few seconds, for ever. So the permit is taken only once the handshake is
//! done, and handshakes have a bound of their own: past it, the oldest unfinished handshake
//! is closed to make room, once it has had [`GRACE`] (an honest client sends its
//! ClientHello right after connecting and finishes one or two round trips later). Whether
//! it sent a ClientHello does not matter there: one sent and then nothing more would hold the
//! room as well. A finished handshake waiting for its permit is never closed for room: that
//! is a real client, and the server is full. A PROXY protocol header is a handshake here too
//! (a proxy sends it at once): one that is not whole yet is a silent connection.
//!
//! The silent connections (no whole ClientHello yet) are the ones a graceful stop does not
//! wait for: nobody is being served there. A handshake under way at a stop has [`GRACE`] to
//! finish, not the whole shutdown deadline: one that sent its ClientHello and then stalled
//! would otherwise hold every stop for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ui;

/// How long a handshake keeps its room against a newer connection.
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// The handshakes in flight, and which of them are unfinished or still silent.
pub(super) struct Gate {
    /// Handshakes at once: from the accept until the connection has its `--max-connections`
    /// permit (or ends).
    bound: usize,
    /// How long an unfinished handshake keeps its room against a newer one.
    grace: Duration,
    state: Mutex<State>,
    /// A slot came free.
    freed: Notify,
}

struct State {
    /// Slots taken.
    held: usize,
    /// The unfinished handshakes, oldest first.
    pending: VecDeque<Pending>,
    next_id: u64,
    /// The server stopped: silent connections were closed, and the rest are being served.
    stopped: bool,
}

/// An unfinished handshake, as the gate sees it.
struct Pending {
    id: u64,
    since: Instant,
    close: CancellationToken,
    /// Its ClientHello came.
    heard: bool,
}

/// One connection's room for its handshake, given back when dropped. Until [`Slot::done`],
/// the gate may close the connection (to make room; at a stop, at once until [`Slot::heard`],
/// else after the grace): [`Slot::closed`] says when. The slot holds its room while it is
/// done or still among the gate's pending handshakes; else the gate took the room back.
pub(super) struct Slot {
    gate: Arc<Gate>,
    id: u64,
    since: Instant,
    /// Cancelled only under the gate's lock: when the gate takes this slot back itself, or
    /// at a stop (a slot heard from keeps its room for the grace). One token per slot, so a
    /// handshake polls no lock that every other handshake polls too.
    close: CancellationToken,
    heard: bool,
    done: bool,
}

impl Gate {
    /// A gate for `bound` handshakes at once (`usize::MAX`: no bound, only the tracking of
    /// silent connections for a stop), where an unfinished handshake has `grace`.
    pub(super) fn new(bound: usize, grace: Duration) -> Gate {
        Gate {
            bound: bound.max(1),
            grace,
            state: Mutex::new(State {
                held: 0,
                pending: VecDeque::new(),
                next_id: 0,
                stopped: false,
            }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Room for one more handshake: at once if there is some; else as soon as a handshake
    /// ends, or the oldest unfinished one has had its grace (it is then closed).
    pub(super) async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            // Made before looking, so a slot freed in between is not missed.
            let freed = self.freed.notified();
            let wake = {
                let mut state = self.lock();
                if state.held < self.bound {
                    return self.take(&mut state);
                }
                let now = Instant::now();
                match state.pending.front() {
                    Some(oldest) if now.duration_since(oldest.since) >= self.grace => {
                        if let Some(victim) = state.pending.pop_front() {
                            victim.close.cancel();
                            state.held -= 1;
                        }
                        return self.take(&mut state);
                    }
                    Some(oldest) => Some(oldest.since + self.grace),
                    None => None,
                }
            };
            match wake {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), freed).await;
                }
                None => freed.await,
            }
        }
    }

    fn take(self: &Arc<Self>, state: &mut State) -> Slot {
        let (id, since, close) = (state.next_id, Instant::now(), CancellationToken::new());
        state.next_id += 1;
        state.held += 1;
        state.pending.push_back(Pending {
            id,
            since,
            close: close.clone(),
            heard: false,
        });
        Slot {
            gate: Arc::clone(self),
            id,
            since,
            close,
            heard: false,
            done: false,
        }
    }

    /// At a stop: closes every connection that has not sent its ClientHello, and says how
    /// many. Those that have are left to finish, within the grace (see [`Slot::closed`]).
    pub(super) fn stop(&self) -> usize {
        let mut state = self.lock();
        state.stopped = true;
        let before = state.pending.len();
        state.pending.retain(|p| {
            p.close.cancel();
            p.heard
        });
        let closed = before - state.pending.len();
        state.held -= closed;
        closed
    }
}

impl Slot {
    /// Resolves when the gate has closed this connection (or, at a stop, once a connection
    /// heard from has had the grace): it must end now, with [`Slot::why_closed`] as its reason.
    pub(super) async fn closed(&self) {
        self.close.cancelled().await;
        // Still pending once cancelled: the stop left it its room for the grace.
        let graced = find(&self.gate.lock().pending, self.id).is_some();
        if graced {
            tokio::time::sleep(self.gate.grace).await;
        }
    }

    /// The ClientHello came: a stop no longer closes the connection. False if the gate
    /// closed it just before.
    pub(super) fn heard(&mut self) -> bool {
        let mut state = self.gate.lock();
        let Some(at) = find(&state.pending, self.id) else {
            return false;
        };
        state.pending[at].heard = true;
        self.heard = true;
        true
    }

    /// The handshake is done: nothing closes the connection for room any more. False if the
    /// gate closed it just before.
    pub(super) fn done(&mut self) -> bool {
        let mut state = self.gate.lock();
        let Some(at) = find(&state.pending, self.id) else {
            return false;
        };
        state.pending.remove(at);
        self.done = true;
        true
    }

    /// Why the gate closed this connection, and whether that is worth a line without `-v`
    /// (making room is; a stop is not, the server is going away).
    pub(super) fn why_closed(&self) -> (String, bool) {
        self.why_closed_awaiting("ClientHello")
    }

    /// [`Slot::why_closed`], naming what did not come before [`Slot::heard`] (`awaited`: a
    /// ClientHello, a PROXY protocol header).
    pub(super) fn why_closed_awaiting(&self, awaited: &str) -> (String, bool) {
        if self.gate.lock().stopped {
            let why = if self.heard {
                format!(
                    "handshake unfinished {} after the server stopped",
                    ui::duration(self.gate.grace)
                )
            } else {
                format!("no {awaited} before the server stopped")
            };
            return (why, false);
        }
        let age = ui::duration(self.since.elapsed());
        let what = if self.heard {
            format!("handshake unfinished after {age}")
        } else {
            format!("no {awaited} in {age}")
        };
        (
            format!("{what} while other clients waited (closed to make room)"),
            true,
        )
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if !self.done {
            let Some(at) = find(&state.pending, self.id) else {
                // The gate already took the room back.
                return;
            };
            state.pending.remove(at);
        }
        state.held -= 1;
        drop(state);
        self.gate.freed.notify_one();
    }
}

/// Where connection `id` is in `pending`. Searched from the newest end: an honest client
/// finishes soon after its accept.
fn find(pending: &VecDeque<Pending>, id: u64) -> Option<usize> {
    pending.iter().rposition(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_is_taken_and_given_back() {
        let gate = Arc::new(Gate::new(2, GRACE));
        let mut a = gate.admit().await;
        let b = gate.admit().await;
        assert!(a.heard());
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.admit().await.id }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "admitted past the bound");
        drop(a);
        assert_eq!(waiting.await.unwrap(), 2);
        drop(b);
        assert_eq!(gate.lock().held, 0);
    }

    #[tokio::test]
    async fn the_oldest_unfinished_handshake_makes_room_after_its_grace() {
        let grace = Duration::from_millis(50);
        let gate = Arc::new(Gate::new(3, grace));
        let mut finished = gate.admit().await;
        assert!(finished.heard() && finished.done());
        let silent = gate.admit().await;
        let mut stalled = gate.admit().await;
        assert!(stalled.heard());
        let newcomer = gate.admit().await;
        assert!(silent.since.elapsed() >= grace, "closed too early");
        assert!(silent.close.is_cancelled(), "the oldest was not closed");
        assert!(!stalled.close.is_cancelled(), "more closed than needed");
        let (why, said) = silent.why_closed();
        assert!(said && why.starts_with("no ClientHello in"), "{why}");
        drop(silent);
        assert_eq!(gate.lock().held, 3, "counted twice");
        // A ClientHello and then nothing holds no room either.
        let _next = gate.admit().await;
        assert!(
            stalled.close.is_cancelled(),
            "a stalled handshake kept its room"
        );
        assert!(!stalled.done(), "a closed handshake went on");
        let (why, _) = stalled.why_closed();
        assert!(why.starts_with("handshake unfinished after"), "{why}");
        assert!(
            !finished.close.is_cancelled(),
            "a finished handshake was closed"
        );
        drop((finished, newcomer, stalled));
        assert_eq!(gate.lock().held, 1);
    }

    #[tokio::test]
    async fn a_stop_closes_only_the_silent() {
        let gate = Arc::new(Gate::new(usize::MAX, GRACE));
        let mut talker = gate.admit().await;
        assert!(talker.heard());
        let silent = [gate.admit().await, gate.admit().await];
        assert_eq!(gate.stop(), 2);
        assert!(silent.iter().all(|s| s.close.is_cancelled()));
        assert!(!silent[0].why_closed().1, "a stop is not worth a line");
        drop(silent);
        assert_eq!(gate.lock().held, 1);
        // The one heard from has the grace to finish in.
        let graced = tokio::time::timeout(GRACE / 2, talker.closed()).await;
        assert!(graced.is_err(), "closed at once");
        assert!(talker.done());
        drop(talker);
        assert_eq!(gate.lock().held, 0);
    }
}
