//! The one retry back-off: pauses that start short, so a transient failure costs little, and
//! double up to a ceiling, so a persistent one (a server not up yet, EMFILE on accept) costs
//! no CPU.

use std::time::Duration;

/// Doubling pauses between `min` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The pause to take now; the one after it is twice as long (at most `max`).
    pub fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    /// The pause [`Backoff::pause`] will return next, without taking it.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Back to the shortest pause, after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_ceiling_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(5), ms(30));
        let taken: Vec<_> = (0..5).map(|_| b.pause()).collect();
        assert_eq!(taken, [ms(5), ms(10), ms(20), ms(30), ms(30)]);
        b.reset();
        assert_eq!(b.peek(), ms(5));
    }
}
