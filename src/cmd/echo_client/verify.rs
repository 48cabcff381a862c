//! `--verify`: every byte echoed is compared with the byte sent at that offset.
//!
//! The send pump puts each chunk into a [`Window`] before writing it to the socket, so the
//! reply pump always finds there the bytes a reply can be compared with; it takes them out as
//! they come back. The window is bounded ([`WINDOW`]): when the server is that far behind,
//! sending waits, so memory stays constant whatever the size of the stream. Data has to pass
//! through user space for this, so neither pump splices under `--verify`.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

use color_eyre::eyre;

use super::flow::WINDOW;

/// The bytes sent but not yet echoed, and what the comparison found so far.
#[derive(Default)]
pub(super) struct Window {
    state: Mutex<State>,
    room: Condvar,
}

#[derive(Default)]
struct State {
    pending: VecDeque<u8>,
    /// Bytes compared (echoed) so far.
    checked: u64,
    /// The 0-based offset of the first byte that differed, or that came back unsent.
    first_diff: Option<u64>,
    /// The send side stops: waiting for room ends.
    closed: bool,
    /// The send side waits for room: it holds input only an echo can let go.
    full: bool,
}

impl Window {
    /// Holds `data` for comparison before it is sent; waits while the window is full. False
    /// when the window was closed (the send pump is being stopped).
    pub(super) fn push(&self, data: &[u8]) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.closed
            && !state.pending.is_empty()
            && state.pending.len() + data.len() > WINDOW
        {
            state.full = true;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.full = false;
        if state.closed {
            return false;
        }
        // A slice's iterator: VecDeque copies it in whole pieces.
        state.pending.extend(data);
        true
    }

    /// Compares a reply with what was sent at its offset and lets the send side go on.
    pub(super) fn check(&self, reply: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let held = state.pending.len().min(reply.len());
        if state.first_diff.is_none() {
            let at = first_difference(state.pending.as_slices(), &reply[..held])
                // Bytes beyond what was sent were never sent: inserted by the server.
                .or((reply.len() > held).then_some(held));
            state.first_diff = at.map(|i| state.checked + i as u64);
        }
        state.pending.drain(..held);
        state.checked += reply.len() as u64;
        drop(state);
        self.room.notify_all();
    }

    /// Whether the send side waits for room: nothing more goes out until an echo comes back.
    pub(super) fn full(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .full
    }

    /// Ends every wait for room: the send pump is stopping.
    pub(super) fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.room.notify_all();
    }

    /// The verdict once the exchange ended cleanly: `sent` bytes went out in all.
    pub(super) fn verdict(&self, sent: u64) -> eyre::Result<()> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        verdict(state.first_diff, state.checked, sent)
    }
}

/// Where `reply` first differs from the bytes held (the two halves of the ring), which are at
/// least as many. Whole pieces are compared at memcmp speed; bytes only within a piece that
/// differs.
fn first_difference((a, b): (&[u8], &[u8]), reply: &[u8]) -> Option<usize> {
    let (head, tail) = reply.split_at(a.len().min(reply.len()));
    let differs = |held: &[u8], got: &[u8]| {
        let held = &held[..got.len()];
        (held != got).then(|| held.iter().zip(got).position(|(x, y)| x != y))?
    };
    differs(a, head).or_else(|| differs(b, tail).map(|i| head.len() + i))
}

/// The error for a reply that differs (byte N counted from 1, as cmp does) or falls short.
fn verdict(first_diff: Option<u64>, received: u64, sent: u64) -> eyre::Result<()> {
    if let Some(at) = first_diff {
        eyre::bail!("reply differs from what was sent at byte {}", at + 1);
    }
    if received < sent {
        eyre::bail!("server closed after {received} of {sent} bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_echo_in_any_pieces_passes() {
        let w = Window::default();
        assert!(w.push(b"hello "));
        assert!(w.push(b"world"));
        w.check(b"hel");
        w.check(b"lo wo");
        w.check(b"rld");
        assert!(w.verdict(11).is_ok());
    }

    #[test]
    fn differences_name_the_byte() {
        let w = Window::default();
        w.push(b"abcdef");
        w.check(b"abcXef");
        let err = w.verdict(6).unwrap_err().to_string();
        assert_eq!(err, "reply differs from what was sent at byte 4");
        let w = Window::default();
        w.push(b"ab");
        w.check(b"abc");
        let err = w.verdict(2).unwrap_err().to_string();
        assert_eq!(err, "reply differs from what was sent at byte 3");
        let w = Window::default();
        w.push(b"abcdef");
        w.check(b"abc");
        let err = w.verdict(6).unwrap_err().to_string();
        assert_eq!(err, "server closed after 3 of 6 bytes");
    }

    #[test]
    fn a_difference_is_found_across_the_rings_two_halves() {
        let held: (&[u8], &[u8]) = (b"abc", b"def");
        assert_eq!(first_difference(held, b"abcdef"), None);
        assert_eq!(first_difference(held, b"abcdXf"), Some(4));
        assert_eq!(first_difference(held, b"aXc"), Some(1));
        assert_eq!(first_difference(held, b"ab"), None);
        assert_eq!(first_difference(held, b"abcX"), Some(3));
    }

    #[test]
    fn a_full_window_waits_until_closed() {
        let w = std::sync::Arc::new(Window::default());
        assert!(w.push(&vec![0; WINDOW]));
        let w2 = std::sync::Arc::clone(&w);
        let t = std::thread::spawn(move || w2.push(b"x"));
        let waited = std::time::Instant::now();
        while !w.full() && waited.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::yield_now();
        }
        assert!(w.full(), "the push waits for room");
        w.close();
        assert!(!t.join().unwrap());
    }
}
