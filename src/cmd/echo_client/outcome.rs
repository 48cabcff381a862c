//! How an exchange ended, and the one pure decision of what that means: the exit status or
//! the error to print. The pumps and the idle timer only report facts; [`outcome`] weighs them,
//! so a reset or unsent input fails the run whichever side happened to notice it first.

use std::fmt;
use std::io;
use std::time::Duration;

use color_eyre::eyre;

pub(super) use super::flow::Replies;
use crate::exit::Exit;
use crate::net::sniff::TLS_ANSWER;
use crate::report::{io_reason, stdout_error};

/// Input that never reached the server: read from stdin but not taken by the socket, plus
/// what stdin held ready at that moment (bytes in the pipe or terminal queue, the rest of a
/// regular file). Zero when stdin was idle. Only a regular file's count is the whole rest:
/// more may come down a pipe, so its count is a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsent {
    pub(super) bytes: u64,
    pub(super) exact: bool,
}

impl Unsent {
    /// Nothing left: the whole input was sent.
    pub(super) const NONE: Unsent = Unsent {
        bytes: 0,
        exact: true,
    };

    fn is_none(self) -> bool {
        self.bytes == 0
    }
}

impl fmt::Display for Unsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.exact {
            f.write_str("at least ")?;
        }
        f.write_str(&count(self.bytes))
    }
}

/// `1 byte`, `12288 bytes`: exact, as a count someone may check.
fn count(n: u64) -> String {
    match n {
        1 => "1 byte".into(),
        n => format!("{n} bytes"),
    }
}

/// How the send side (stdin → socket) ended.
#[derive(Debug)]
pub(super) enum Sending {
    /// The end of input was reached and the half-close went out.
    Finished,
    /// Stopped because the exchange ended first, with this much input not sent.
    Stopped(Unsent),
    /// Reading standard input failed.
    Stdin(io::Error),
    /// The socket refused data or the half-close (EPIPE, ECONNRESET, ...).
    Socket(io::Error, Unsent),
}

/// Which way nothing moved when `--idle-timeout` struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// Input is waiting but the server takes none of it.
    NotReading,
    /// All input is sent; no reply comes.
    NoReply,
    /// `--verify` holds as much unechoed input as it may: the server takes input but
    /// echoes nothing back.
    NotEchoing,
    /// Standard input is idle and the server sends nothing.
    Neither,
    /// `--quit-after` ended the wait for the rest of the echo after the end of input.
    Quit,
}

/// `--idle-timeout` struck: nothing moved either way for `limit`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stall {
    pub(super) limit: Duration,
    pub(super) way: Way,
    pub(super) sent: u64,
    pub(super) received: u64,
    /// The limit was `--verify`'s own, with no `--idle-timeout` given.
    pub(super) verify_default: bool,
}

/// Everything known when the exchange is over. `replies` is `None` when the reply side was
/// still running (the exchange ended by a stall or a failed stdin).
#[derive(Debug)]
pub(super) struct Ended {
    pub(super) replies: Option<Replies>,
    pub(super) sending: Sending,
    pub(super) stall: Option<Stall>,
    /// Bytes sent and received in all: what a lost connection that left no input unsent
    /// can still say.
    pub(super) sent: u64,
    pub(super) received: u64,
}

/// The exit status of an exchange with `server`, or the error to print. Success only when
/// nothing was lost: every reply is on stdout and no input read or waiting was left unsent.
pub(super) fn outcome(ended: Ended, server: &str) -> eyre::Result<Exit> {
    let Ended {
        replies,
        sending,
        stall,
        sent,
        received,
    } = ended;
    let moved = (sent, received);
    // Our own side first: a closed stdout is the reader's choice, a failed one our failure.
    let replies = match replies {
        Some(Replies::Stdout(err)) => {
            return Err(stdout_error(err, "cannot write to standard output"));
        }
        other => other,
    };
    match (replies, sending, stall) {
        // Whatever else went wrong follows from speaking plain text to a TLS server.
        (Some(Replies::Tls), _, _) => Err(eyre::eyre!(TLS_ANSWER).wrap_err(server.to_owned())),
        (_, Sending::Stdin(err), _) => {
            Err(eyre::Report::new(err).wrap_err("cannot read standard input"))
        }
        (_, _, Some(stall)) => Err(stalled(stall, server)),
        (Some(Replies::Lost(err)), sending, None) => {
            let finished = matches!(sending, Sending::Finished);
            Err(lost(server, &err, unsent(&sending), finished, moved))
        }
        // The send side took the reset and the reply side then saw only an end of stream.
        (_, Sending::Socket(err, left), None) if is_reset(&err) => {
            Err(lost(server, &err, left, false, moved))
        }
        // The half-close found the connection gone: the server closed (and its kernel reset)
        // it before taking what was sent. "Transport endpoint is not connected" says less.
        (_, Sending::Socket(err, left), None) if err.raw_os_error() == Some(libc::ENOTCONN) => {
            let left = if left.is_none() {
                String::new()
            } else {
                format!(", with {left} of input not sent")
            };
            Err(eyre::eyre!(
                "{server} closed the connection before taking all input{left}"
            ))
        }
        (_, Sending::Socket(err, left), None) => {
            let left = if left.is_none() {
                String::new()
            } else {
                format!(" ({server} closed the connection with {left} of input not sent)")
            };
            Err(eyre::eyre!("{}{left}", io_reason(&err))
                .wrap_err(format!("cannot send to {server}")))
        }
        (_, Sending::Stopped(left), None) if !left.is_none() => Err(eyre::eyre!(
            "{server} closed the connection with {left} of input not sent"
        )),
        (_, Sending::Finished | Sending::Stopped(_), None) => Ok(Exit::Success),
    }
}

fn unsent(sending: &Sending) -> Unsent {
    match sending {
        Sending::Stopped(left) | Sending::Socket(_, left) => *left,
        Sending::Finished | Sending::Stdin(_) => Unsent::NONE,
    }
}

fn is_reset(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::ConnectionReset
}

/// The connection broke (a reset, a timeout): always with what it cost. Input left unsent is
/// counted (exactly for a file, at least for a pipe). When none was, what was sent may still
/// have been thrown away unread, so the totals say how much went and came back; "all" input
/// only when that is known: the end of input was reached, or stdin is a file read to its end.
fn lost(
    server: &str,
    err: &io::Error,
    left: Unsent,
    finished: bool,
    (sent, received): (u64, u64),
) -> eyre::Report {
    let totals = format!("{} sent, {} received", count(sent), count(received));
    let cost = if !left.is_none() {
        format!("{left} of input not sent")
    } else if finished || left.exact {
        format!("all input sent: {totals}")
    } else {
        totals
    };
    eyre::eyre!("{} ({cost})", io_reason(err)).wrap_err(format!("connection to {server} lost"))
}

fn stalled(stall: Stall, server: &str) -> eyre::Report {
    let limit = crate::ui::duration(stall.limit);
    if stall.verify_default {
        // Only echoes were awaited: all input sent, or the window full.
        let missing = stall.sent.saturating_sub(stall.received);
        return eyre::eyre!(
            "no echo from {server} for {limit}: {} of {} sent never came back (--verify \
             waits {limit} for an echo; --idle-timeout sets another limit)",
            count(missing),
            count(stall.sent)
        );
    }
    let counts = format!(
        "{} sent, {} received",
        count(stall.sent),
        count(stall.received)
    );
    match stall.way {
        Way::NotReading => eyre::eyre!(
            "no progress for {limit}: {server} is not reading ({counts}; --idle-timeout)"
        ),
        Way::NotEchoing => eyre::eyre!(
            "no progress for {limit}: {server} echoes nothing back, and --verify holds at most \
             {} unechoed ({counts}; --idle-timeout)",
            crate::ui::bytes(super::flow::WINDOW as u64)
        ),
        Way::NoReply => eyre::eyre!(
            "no reply from {server} for {limit} after the end of input (--idle-timeout)"
        ),
        Way::Quit => eyre::eyre!(
            "quit {limit} after the end of input (--quit-after) with {} of {} not echoed by \
             {server}",
            count(stall.sent.saturating_sub(stall.received)),
            count(stall.sent)
        ),
        Way::Neither => eyre::eyre!(
            "nothing sent or received for {limit}: standard input is idle and {server} sends \
             nothing ({counts}; --idle-timeout)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{is_stdout_closed, one_line};

    const SERVER: &str = "127.0.0.1:7";
    /// Bytes sent in every made-up exchange.
    const SENT: u64 = 1_000_000;

    fn exactly(bytes: u64) -> Unsent {
        Unsent { bytes, exact: true }
    }

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    fn decide(replies: Option<Replies>, sending: Sending) -> Result<Exit, String> {
        let ended = Ended {
            replies,
            sending,
            stall: None,
            sent: SENT,
            received: 0,
        };
        outcome(ended, SERVER).map_err(|err| one_line(&err))
    }

    #[test]
    fn a_clean_exchange_succeeds() {
        assert_eq!(
            decide(Some(Replies::Closed), Sending::Finished),
            Ok(Exit::Success)
        );
    }

    /// Item 3: the send side took ECONNRESET, the reply side saw only an end of stream.
    #[test]
    fn a_reset_taken_by_the_send_side_fails() {
        let got = decide(
            Some(Replies::Closed),
            Sending::Socket(os(libc::ECONNRESET), exactly(4096)),
        );
        assert_eq!(
            got,
            Err(format!(
                "connection to {SERVER} lost: Connection reset by peer (4096 bytes of input not sent)"
            ))
        );
    }

    #[test]
    fn a_reset_taken_by_the_reply_side_fails() {
        let got = decide(
            Some(Replies::Lost(os(libc::ECONNRESET))),
            Sending::Stopped(exactly(4096)),
        );
        assert_eq!(
            got,
            Err(format!(
                "connection to {SERVER} lost: Connection reset by peer (4096 bytes of input not sent)"
            ))
        );
        let got = decide(Some(Replies::Lost(os(libc::ECONNRESET))), Sending::Finished);
        assert!(got.is_err());
    }

    /// Issue 18 item 24: a reset always says what it cost. With no input left unsent (all of
    /// a file handed to the socket, or the end of input reached), what was sent may still be
    /// lost unread: the totals are given, "all" only when that is known.
    #[test]
    fn a_reset_with_nothing_left_unsent_gives_the_totals() {
        let reset = || Some(Replies::Lost(os(libc::ECONNRESET)));
        let all = format!(
            "connection to {SERVER} lost: Connection reset by peer (all input sent: 1000000 \
             bytes sent, 0 bytes received)"
        );
        assert_eq!(
            decide(reset(), Sending::Stopped(exactly(0))),
            Err(all.clone())
        );
        assert_eq!(decide(reset(), Sending::Finished), Err(all));
        let idle_pipe = Unsent {
            bytes: 0,
            exact: false,
        };
        assert_eq!(
            decide(reset(), Sending::Stopped(idle_pipe)),
            Err(format!(
                "connection to {SERVER} lost: Connection reset by peer (1000000 bytes sent, 0 \
                 bytes received)"
            ))
        );
        let pipe = Unsent {
            bytes: 10,
            exact: false,
        };
        assert_eq!(
            decide(
                Some(Replies::Closed),
                Sending::Socket(os(libc::ECONNRESET), pipe)
            ),
            Err(format!(
                "connection to {SERVER} lost: Connection reset by peer (at least 10 bytes of \
                 input not sent)"
            ))
        );
    }

    /// Item 4: the server closed while input was still waiting.
    #[test]
    fn a_server_closing_with_input_unsent_fails_and_says_how_much() {
        let got = decide(Some(Replies::Closed), Sending::Stopped(exactly(12_288)));
        assert_eq!(
            got,
            Err(format!(
                "{SERVER} closed the connection with 12288 bytes of input not sent"
            ))
        );
        let got = decide(
            Some(Replies::Closed),
            Sending::Socket(os(libc::EPIPE), exactly(1)),
        );
        assert_eq!(
            got,
            Err(format!(
                "cannot send to {SERVER}: Broken pipe ({SERVER} closed the connection with 1 \
                 byte of input not sent)"
            ))
        );
    }

    /// Even with all input taken by the socket, a failed half-close may have lost some.
    #[test]
    fn a_failed_half_close_fails() {
        assert_eq!(
            decide(
                Some(Replies::Closed),
                Sending::Socket(os(libc::ENOTCONN), Unsent::NONE)
            ),
            Err(format!(
                "{SERVER} closed the connection before taking all input"
            ))
        );
    }

    #[test]
    fn a_pipe_count_is_a_lower_bound() {
        let left = Unsent {
            bytes: 65_536,
            exact: false,
        };
        assert_eq!(
            decide(Some(Replies::Closed), Sending::Stopped(left)),
            Err(format!(
                "{SERVER} closed the connection with at least 65536 bytes of input not sent"
            ))
        );
    }

    #[test]
    fn a_server_closing_while_stdin_is_idle_succeeds() {
        assert_eq!(
            decide(Some(Replies::Closed), Sending::Stopped(exactly(0))),
            Ok(Exit::Success)
        );
    }

    #[test]
    fn stdout_comes_first_a_closed_one_quietly() {
        let closed = outcome(
            Ended {
                replies: Some(Replies::Stdout(os(libc::EPIPE))),
                sending: Sending::Stopped(exactly(5)),
                stall: None,
                sent: SENT,
                received: 0,
            },
            SERVER,
        );
        assert!(closed.is_err_and(|err| is_stdout_closed(&err)));
        let full = decide(Some(Replies::Stdout(os(libc::ENOSPC))), Sending::Finished);
        assert_eq!(
            full,
            Err("cannot write to standard output: No space left on device".into())
        );
    }

    /// Issue 18 item 8: a TLS answer to plain text is one line, whatever the send side saw.
    #[test]
    fn a_tls_answer_says_add_tls() {
        for sending in [
            Sending::Finished,
            Sending::Socket(os(libc::ECONNRESET), exactly(7)),
        ] {
            assert_eq!(
                decide(Some(Replies::Tls), sending),
                Err(format!("{SERVER}: the server answered in TLS: add --tls"))
            );
        }
    }

    #[test]
    fn a_failed_stdin_fails() {
        assert_eq!(
            decide(None, Sending::Stdin(os(libc::EIO))),
            Err("cannot read standard input: Input/output error".into())
        );
    }

    /// Item 10: each kind of stall names the side that stopped.
    #[test]
    fn a_stall_says_which_way_nothing_moved() {
        let stall = |way| Ended {
            replies: None,
            sending: Sending::Stopped(exactly(100)),
            stall: Some(Stall {
                limit: Duration::from_secs(2),
                way,
                sent: 2_000_000,
                received: 0,
                verify_default: false,
            }),
            sent: 2_000_000,
            received: 0,
        };
        let message = |way| one_line(&outcome(stall(way), SERVER).unwrap_err());
        assert_eq!(
            message(Way::NotReading),
            format!(
                "no progress for 2s: {SERVER} is not reading (2000000 bytes sent, 0 bytes \
                 received; --idle-timeout)"
            )
        );
        assert_eq!(
            message(Way::NoReply),
            format!("no reply from {SERVER} for 2s after the end of input (--idle-timeout)")
        );
        assert!(message(Way::Neither).starts_with("nothing sent or received for 2s"));
        assert!(message(Way::NotEchoing).contains("echoes nothing back, and --verify holds"));
    }

    /// Issue 18 item 20: --verify's own bound says how many bytes never came back.
    #[test]
    fn verify_gives_up_naming_the_bytes_that_never_came_back() {
        for way in [Way::NoReply, Way::NotEchoing] {
            let ended = Ended {
                replies: None,
                sending: Sending::Finished,
                stall: Some(Stall {
                    limit: Duration::from_secs(10),
                    way,
                    sent: 3_000_000,
                    received: 2_400_000,
                    verify_default: true,
                }),
                sent: 3_000_000,
                received: 2_400_000,
            };
            assert_eq!(
                one_line(&outcome(ended, SERVER).unwrap_err()),
                format!(
                    "no echo from {SERVER} for 10s: 600000 bytes of 3000000 bytes sent never \
                     came back (--verify waits 10s for an echo; --idle-timeout sets another \
                     limit)"
                )
            );
        }
    }
}
