//! One stream connection's life, plain or TLS, as the accept loops and inetd mode live it:
//! the `-v` lines at its open and close, its place in the figures, the echo of its transport
//! ([`conn::echo`] or [`tls::echo`], or [`fault::echo`] when faults are injected), and its cut (an RST) when the shutdown deadline passes
//! first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::either::Either;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::log::Event;
use super::stats::{ErrorKind, Stats};
use super::{admit, conn, dump, fault, proxy, tls};
use crate::cli::ProxyProtocol;
use crate::net::stream::{Connection, Peer};
use crate::report::io_reason;
use crate::ui::{self, Level, Ui};

/// A connection's room before it serves anyone, apart from `--max-connections`: every TLS
/// connection has one, and so does every plain one behind a proxy (`--proxy-protocol`).
pub(super) enum Ticket {
    /// For its TLS handshake (and its PROXY protocol header first, if one is expected).
    Tls(tls::Ticket),
    /// For its PROXY protocol header, plain.
    Header(proxy::Ticket),
}

/// What a connection's task needs besides its stream.
pub(super) struct Conn<'a> {
    /// Who is at the other end, as `-v` names them.
    pub(super) peer: Peer,
    /// `--idle-timeout`.
    pub(super) idle: Option<Duration>,
    /// The server's figures.
    pub(super) stats: &'a Stats,
    /// Where its lines go.
    pub(super) log: &'a Ui,
    /// Cancelled at the shutdown deadline.
    pub(super) force_close: &'a CancellationToken,
    /// `--proxy-protocol`: the header comes first, and names the client.
    pub(super) proxy: Option<ProxyProtocol>,
    /// The faults to inject (`None`: the usual echo, untouched).
    pub(super) faults: Option<&'a fault::Plan>,
    /// Who may connect: checked here, once the header has named the client, when there is a
    /// PROXY protocol header to read (at accept otherwise).
    pub(super) admission: Option<&'a Arc<admit::Gate>>,
    /// `-x`: dump the traffic, naming the connection with this number where the peer alone
    /// does not tell it apart (two Unix clients of one process). Never with faults (a usage
    /// error).
    pub(super) dump_as: Option<u64>,
}

/// One connection's life: bookkeeping around its echo, and closing it if the shutdown
/// deadline passes first. The accept loop has already counted it as active and served; this
/// takes it out of `active` at the end. Returns the reason when it ended on an I/O error.
pub(super) async fn connection<C: Connection>(
    mut stream: C,
    conn: &Conn<'_>,
    permit: Option<OwnedSemaphorePermit>,
    ticket: Option<Ticket>,
) -> Option<String> {
    let start = Instant::now();
    stream.prepare();
    let (mut peer, stats, log) = (conn.peer, conn.stats, conn.log);
    // Behind a proxy, the open line waits for the header that names the client.
    if log.verbose > 0 && conn.proxy.is_none() {
        Event::new(Level::Detail, "accepted", format!("{peer}: open"))
            .peer(peer)
            .say(log);
    }
    let mut echoed = 0;
    let mut failed = None;
    let mut event = "closed";
    let ended = {
        // The usual echo inline; anything else (TLS, a PROXY header, faults, a dump) boxed, so
        // that its state does not grow every plain connection's task (by about 1 KiB).
        let work = match ticket {
            None if conn.proxy.is_none() && conn.faults.is_none() && conn.dump_as.is_none() => {
                Either::Left(conn::echo(&mut stream, conn.idle, stats, &mut echoed))
            }
            ticket => {
                let echo = echo(ticket, &mut stream, conn, &mut peer, &mut echoed);
                Either::Right(Box::pin(echo))
            }
        };
        let echo = std::pin::pin!(work);
        let cancelled = std::pin::pin!(conn.force_close.cancelled());
        let until = UntilCancelled {
            work: echo,
            cancelled,
            closing: &stats.closing,
            registered: false,
        };
        until.await
    };
    let outcome = match ended {
        Some(Ok(conn::End::Closed)) => "closed".to_string(),
        Some(Ok(conn::End::Idle)) => "idle timeout".to_string(),
        Some(Ok(conn::End::ClosedEarly)) => "closed early (--close-after)".to_string(),
        Some(Ok(conn::End::Reset)) => {
            stream.cut_on_close();
            "reset (--reset-probability)".to_string()
        }
        Some(Err(e)) => {
            match tls::handshake_failed(&e) {
                true => event = "tls_handshake_failed",
                false => stats.error(ErrorKind::of(&e)),
            }
            failed.insert(io_reason(&e)).clone()
        }
        None => {
            stats.cut.fetch_add(1, Ordering::Relaxed);
            // The client must be able to tell a cut from an echo that ended.
            stream.cut_on_close();
            "closed at shutdown".to_string()
        }
    };
    drop(stream);
    stats.active.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
    if log.verbose > 0 {
        say_closed(log, event, peer, &outcome, start.elapsed(), echoed);
    }
    failed
}

/// The `-v` line at a connection's end (`event`: `closed`, or `tls_handshake_failed`).
fn say_closed(
    log: &Ui,
    event: &'static str,
    peer: Peer,
    outcome: &str,
    lasted: Duration,
    echoed: u64,
) {
    let line = format!(
        "{peer}: {outcome} after {}, {} echoed",
        ui::duration(lasted),
        ui::bytes(echoed),
    );
    // Every byte echoed was read once and written once.
    Event::new(Level::Detail, event, line)
        .peer(peer)
        .bytes(echoed, echoed)
        .duration(lasted)
        .reason(outcome)
        .say(log);
}

/// The echo of the connection's transport: over TLS when a TLS `ticket` is given, plain
/// otherwise (with its faults, if any); first, with `--proxy-protocol`, the header, whose
/// client becomes `peer` and is the one admitted or refused.
async fn echo<C: Connection>(
    ticket: Option<Ticket>,
    stream: &mut C,
    conn: &Conn<'_>,
    peer: &mut Peer,
    echoed: &mut u64,
) -> std::io::Result<conn::End> {
    let (idle, stats, log) = (conn.idle, conn.stats, conn.log);
    // The --max-connections slot a plain header's room hands over is held for the echo.
    let (tls, _slot) = match ticket {
        None => (None, None),
        // Boxed: the wait for a header or a handshake, inline, would grow every connection's
        // task (by about 700 bytes), with or without them.
        Some(ticket) => Box::pin(header(ticket, stream, conn, peer)).await?,
    };
    let _pass = match (conn.proxy, conn.admission) {
        (Some(_), Some(gate)) => match gate.check(*peer, &stats.refused, log).await {
            Some(pass) => Some(pass),
            None => {
                stream.cut_on_close();
                return Err(std::io::Error::other(
                    "refused (--allow, --deny, --max-per-ip)",
                ));
            }
        },
        _ => None,
    };
    let peer = *peer;
    // Each arm builds what it needs: a value held in the match's scrutinee would be held in
    // every connection's task across the echo, with or without its option.
    match tls {
        // Boxed: a TLS session's state is large, and inline it would grow every plain
        // connection's task too. Over TLS the faults come with the ticket, to be injected
        // after the handshake.
        Some(ticket) => {
            let dumps = conn.dump_as.map(|n| dump::Dumps::new(log, peer, n));
            let tls = tls::echo(ticket, stream, peer, idle, (stats, echoed), log, dumps);
            Box::pin(tls).await
        }
        None => match (conn.faults, conn.dump_as) {
            (None, None) => conn::echo(stream, idle, stats, echoed).await,
            // Boxed, as TLS is: only a server injecting faults pays for their state.
            (Some(plan), _) => Box::pin(fault::echo(stream, plan, idle, stats, echoed)).await,
            (None, Some(n)) => {
                let dumps = dump::Dumps::new(log, peer, n);
                Box::pin(dump::echo(stream, idle, stats, echoed, dumps)).await
            }
        },
    }
}

/// With `--proxy-protocol`, reads the header and makes the client it names `peer`; returns
/// the TLS ticket still to be used, and the slot a plain header's room hands over.
async fn header<C: Connection>(
    ticket: Ticket,
    stream: &mut C,
    conn: &Conn<'_>,
    peer: &mut Peer,
) -> std::io::Result<(Option<tls::Ticket>, Option<OwnedSemaphorePermit>)> {
    let (idle, log) = (conn.idle, conn.log);
    // The header reads are boxed, as the TLS echo is: inline, their buffers and timer would
    // grow every connection's task, with or without the option.
    match ticket {
        Ticket::Header(ticket) => {
            let limit = tls::handshake_limit(idle);
            let (client, permit) = Box::pin(ticket.receive(stream, *peer, limit, log)).await?;
            *peer = client;
            Ok((None, permit))
        }
        Ticket::Tls(ticket) => {
            if let Some(mode) = conn.proxy {
                let limit = tls::handshake_limit(idle);
                let received = Box::pin(proxy::receive(stream, *peer, mode, limit, log));
                // Over TLS the header is part of the wait for the ClientHello, which the gate
                // may end to make room, or at a stop.
                *peer = tokio::select! {
                    biased;
                    received = received => received?,
                    why = ticket.closed() => return Err(proxy::given_way(*peer, why, log)),
                };
            }
            Ok((Some(ticket), None))
        }
    }
}

/// Runs a connection until it ends or the token is cancelled (`None`).
///
/// `select!` on `token.cancelled()` would poll the token on every wake-up of the connection,
/// taking two locks per echoed message. Here the token's wake-up is registered once (the waker
/// stays valid: it is this same task's), and later wake-ups look at `closing`, one relaxed
/// load, which the server sets before it cancels the token.
struct UntilCancelled<'a, 'p, F> {
    work: Pin<&'p mut F>,
    cancelled: Pin<&'p mut WaitForCancellationFuture<'a>>,
    closing: &'a AtomicBool,
    registered: bool,
}

impl<F: Future> Future for UntilCancelled<'_, '_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if !self.registered || self.closing.load(Ordering::Relaxed) {
            self.registered = true;
            if self.cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}
