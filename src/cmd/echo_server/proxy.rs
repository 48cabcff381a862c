//! `--proxy-protocol`: the PROXY protocol header a proxy (HAProxy's send-proxy or
//! send-proxy-v2) sends at the start of a connection, read before the echo (and before the
//! TLS handshake), so that the client it names is the one the logs show.
//!
//! The header is read without reading past it: the bytes after it, in the same segment, are
//! the client's and must be echoed (over TLS they are the ClientHello). So the first bytes
//! are peeked to tell v1 from v2 from neither; a v2 header is then read to its announced
//! length, and a v1 one peeked for its line end and read to it. While the first bytes cannot
//! yet be told apart (fewer than a signature's, all matching it), the next wait is for bytes
//! beyond them: peeking leaves them ready, and waiting for readiness alone would spin (looking
//! again after a pause cost a hundred wake-ups a second for each socket that sent `\r\n` and
//! stopped). Except with `=optional`, where they may be the client's own, and the socket must
//! stay ready for the echo: there they are looked at again after a short pause, for at most
//! [`OPTIONAL_UNDECIDED`]. The whole header is bounded by the TLS handshake's deadline.
//!
//! Until its header is whole, a plain connection holds a place in the headers' [`Room`], not
//! a `--max-connections` slot (over TLS, the handshake's room holds the header too): stalled
//! headers make room for new connections, and a stop closes them at once.

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::log::{self, Event};
use super::{gate, tls};
use crate::cli::ProxyProtocol;
use crate::net::proxy::{self, Header, Start, V1_MAX, V2_FIXED, Version};
use crate::net::stream::{Connection, Peer};
use crate::ui::{self, Level, Ui};

/// Refused connections.
static REFUSED: log::Throttled =
    log::Throttled::new("refused", "refused without a PROXY protocol header");

/// With `=optional`, the pause before looking again at first bytes that cannot be told apart
/// yet.
const UNDECIDED_PAUSE: Duration = Duration::from_millis(10);

/// With `=optional`, how long first bytes that start like a signature may stay undecided before
/// they are taken for the client's own: a proxy sends its header at once (the specification
/// asks it to), while a person may well type an empty line (`\r\n`) and wait for the echo.
const OPTIONAL_UNDECIDED: Duration = Duration::from_millis(250);

/// How many first bytes are looked at: a signature's, and enough to show in a refusal.
const FIRST: usize = 32;

/// What a connection's room waits for, as its reasons name it.
pub(super) const AWAITED: &str = "PROXY protocol header";

/// Room for plain connections whose header is not whole yet, apart from `--max-connections`
/// (a [`gate`], as TLS handshakes have theirs). With the permit taken before accept, a few
/// sockets that connect and never finish their header would hold every permit until the
/// header deadline, and again as soon as they reconnect: no real client would get one.
#[derive(Clone)]
pub(super) struct Room {
    mode: ProxyProtocol,
    gate: Arc<gate::Gate>,
    serving: Option<Arc<Semaphore>>,
}

impl Room {
    /// Room for headers in `mode`, where `serving` holds the `max_connections` permits.
    pub(super) fn new(
        mode: ProxyProtocol,
        serving: Option<Arc<Semaphore>>,
        max_connections: Option<NonZeroUsize>,
    ) -> Room {
        // As many as TLS handshakes get, for the same reasons.
        let bound = max_connections.map_or(usize::MAX, tls::handshake_room);
        Room {
            mode,
            gate: Arc::new(gate::Gate::new(bound, gate::GRACE)),
            serving,
        }
    }

    /// Room for the header of a connection just accepted (waits while there is none).
    pub(super) async fn admit(&self) -> Ticket {
        Ticket {
            mode: self.mode,
            slot: self.gate.admit().await,
            serving: self.serving.clone(),
        }
    }

    /// At a stop: closes the connections whose header is not whole (nobody is served there,
    /// so they are not waited for) and says how many.
    pub(super) fn stop_silent(&self) -> usize {
        self.gate.stop()
    }
}

/// A plain connection admitted to send its header.
pub(super) struct Ticket {
    mode: ProxyProtocol,
    slot: gate::Slot,
    serving: Option<Arc<Semaphore>>,
}

impl Ticket {
    /// The header, as [`receive`] reads it, unless the room closes the connection first; then
    /// its `--max-connections` permit, waited for with the room held, so that the connections
    /// waiting for one stay bounded.
    pub(super) async fn receive<C: Connection>(
        mut self,
        stream: &mut C,
        peer: Peer,
        limit: Duration,
        log: &Ui,
    ) -> io::Result<(Peer, Option<OwnedSemaphorePermit>)> {
        let client = tokio::select! {
            biased;
            received = receive(stream, peer, self.mode, limit, log) => received?,
            () = self.slot.closed() => {
                return Err(given_way(peer, self.slot.why_closed_awaiting(AWAITED), log));
            }
        };
        if !self.slot.done() {
            // Closed for room just as the header came: the room is already someone else's.
            return Err(given_way(peer, self.slot.why_closed_awaiting(AWAITED), log));
        }
        // The semaphore is never closed.
        let permit = match &self.serving {
            Some(serving) => Arc::clone(serving).acquire_owned().await.ok(),
            None => None,
        };
        Ok((client, permit))
    }
}

/// A connection closed by its room before its header was whole: the error, with the line
/// said without `-v` when `say` (making room is worth one; a stop is not).
pub(super) fn given_way(peer: Peer, (why, say): (String, bool), log: &Ui) -> io::Error {
    if say && log.verbose == 0 {
        let line = format!("{peer}: refused: {why}");
        let event = Event::new(Level::Info, "refused", line).peer(peer);
        log::said_throttled(&REFUSED, log, event.reason(&why));
    }
    io::Error::other(format!("refused: {why}"))
}

/// Reads the header at the start of `stream` within `limit`: the client it names, or `peer`
/// when it names none (v1 UNKNOWN, v2 LOCAL) or when `mode` is optional and the connection
/// does not start with a header. Says the connection's open line under `-v`. A connection
/// refused (no header, a bad one, none whole in time) is an error, and said without `-v` too,
/// at most about once a second.
pub(super) async fn receive<C: Connection>(
    stream: &mut C,
    peer: Peer,
    mode: ProxyProtocol,
    limit: Duration,
    log: &Ui,
) -> io::Result<Peer> {
    let optional = mode == ProxyProtocol::Optional;
    let reason = match read(stream, optional, limit).await {
        Ok(header) => return Ok(opened(peer, header, log)),
        Err(Refusal::Io(err)) => return Err(err),
        Err(Refusal::Bad(reason)) => reason,
    };
    // Said even without -v (which says it in the connection's last line): a proxy whose
    // header is missing or wrong is what someone is debugging.
    if log.verbose == 0 {
        let line = format!("{peer}: refused: {reason}");
        let event = Event::new(Level::Info, "refused", line).peer(peer);
        log::said_throttled(&REFUSED, log, event.reason(&reason));
    }
    Err(io::Error::other(format!("refused: {reason}")))
}

/// At a stop: the refusals held back, which the task due to say them would not live to say.
pub(super) fn say_held_back(log: &Ui) {
    REFUSED.say_held(log);
}

/// The client the header names (or `peer`), with the open line under `-v`.
fn opened(peer: Peer, header: Option<Header>, log: &Ui) -> Peer {
    let (client, how) = match header {
        Some(Header {
            version,
            addresses: Some((source, _)),
        }) => (Peer::Tcp(source), format!("PROXY {version} from {peer}")),
        Some(Header { version, .. }) => (peer, format!("PROXY {version} naming no client")),
        None => (peer, "no PROXY protocol header".to_owned()),
    };
    if log.verbose > 0 {
        Event::new(Level::Detail, "accepted", format!("{client}: open ({how})"))
            .peer(client)
            .field("proxy", how)
            .say(log);
    }
    client
}

/// Why a header was not read.
enum Refusal {
    /// The socket failed.
    Io(io::Error),
    /// What the client sent is not a whole valid header: the reason.
    Bad(String),
}

impl From<io::Error> for Refusal {
    fn from(err: io::Error) -> Self {
        Refusal::Io(err)
    }
}

/// The header, whole within `limit`, or `None` when `optional` and the connection does not
/// start with one (or says nothing within `limit`).
async fn read<C: Connection>(
    stream: &mut C,
    optional: bool,
    limit: Duration,
) -> Result<Option<Header>, Refusal> {
    let deadline = tokio::time::Instant::now() + limit;
    let late = || {
        let limit = ui::duration(limit);
        Refusal::Bad(format!("no whole PROXY protocol header within {limit}"))
    };
    let sniffed = match tokio::time::timeout_at(deadline, sniff(stream, optional)).await {
        Ok(sniffed) => sniffed?,
        // Silent all along, nothing taken off the socket: with =optional, a direct client
        // that has not spoken yet (a person at nc, who would else be cut off).
        Err(_) if optional => return Ok(None),
        Err(_) => return Err(late()),
    };
    let version = match sniffed {
        Ok(version) => version,
        Err(_) if optional => return Ok(None),
        Err(first) if first.is_empty() => {
            return Err(Refusal::Bad(
                "closed before sending a PROXY protocol header".to_owned(),
            ));
        }
        Err(first) => {
            return Err(Refusal::Bad(format!(
                "no PROXY protocol header: the connection starts with {}",
                proxy::shown(&first)
            )));
        }
    };
    let bytes = async {
        match version {
            Version::V1 => read_v1(stream).await,
            Version::V2 => read_v2(stream).await,
        }
    };
    let bytes = tokio::time::timeout_at(deadline, bytes)
        .await
        .map_err(|_| late())??;
    proxy::parse(&bytes).map(Some).map_err(Refusal::Bad)
}

/// The version of the header the connection starts with, or its first bytes (none if it
/// closed first) when it starts with something else (when `optional`, also when they stay
/// undecided for [`OPTIONAL_UNDECIDED`]). Takes nothing off the socket.
async fn sniff<C: Connection>(
    stream: &mut C,
    optional: bool,
) -> io::Result<Result<Version, Vec<u8>>> {
    let mut first = [0u8; FIRST];
    let start = tokio::time::Instant::now();
    let mut seen = 0;
    loop {
        stream.readable().await?;
        let n = match stream.try_peek(&mut first, seen) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        match proxy::start(&first[..n]) {
            Start::Header(version) => return Ok(Ok(version)),
            Start::Other => return Ok(Err(first[..n].to_vec())),
            Start::Undecided if n == 0 => return Ok(Err(Vec::new())),
            // The bytes may be the client's, to be echoed: the socket must stay readable for
            // the echo, so it is looked at again after a pause, for a bounded while.
            Start::Undecided if optional && start.elapsed() >= OPTIONAL_UNDECIDED => {
                return Ok(Err(first[..n].to_vec()));
            }
            Start::Undecided if optional => tokio::time::sleep(UNDECIDED_PAUSE).await,
            // Nothing new, and nothing more will come: the peer closed after these.
            Start::Undecided if n == seen => return Ok(Err(first[..n].to_vec())),
            // Only a header or a refusal can follow: wait for bytes beyond these.
            Start::Undecided => seen = n,
        }
    }
}

/// A v1 header: its line, read up to and with its `\n` and not a byte further.
async fn read_v1<C: Connection>(stream: &mut C) -> Result<Vec<u8>, Refusal> {
    let mut line = Vec::with_capacity(V1_MAX);
    let mut buf = [0u8; V1_MAX];
    loop {
        stream.readable().await?;
        let room = V1_MAX - line.len();
        let n = match stream.try_peek(&mut buf[..room], 0) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        };
        if n == 0 {
            return Err(cut_in_the_middle(Version::V1, &line));
        }
        // All of it is the header's when no line end is in it: taking it all lets the next
        // wait be for new bytes, not for these again.
        let take = memchr::memchr(b'\n', &buf[..n]).map_or(n, |end| end + 1);
        stream.read_exact(&mut buf[..take]).await?;
        line.extend_from_slice(&buf[..take]);
        if line.last() == Some(&b'\n') {
            return Ok(line);
        }
        if line.len() == V1_MAX {
            return Err(Refusal::Bad(format!(
                "invalid PROXY v1 header: no line end in its first {V1_MAX} bytes ({})",
                proxy::shown(&line)
            )));
        }
    }
}

/// A v2 header: its fixed part, then the length that says. The buffer grows with the bytes
/// that come, not to the length announced: 16 bytes announcing 64 KiB would each hold that
/// much until the deadline.
async fn read_v2<C: Connection>(stream: &mut C) -> Result<Vec<u8>, Refusal> {
    let mut fixed = [0u8; V2_FIXED];
    read_part(stream, &mut fixed, Version::V2).await?;
    let len = proxy::v2_len(&fixed);
    let mut header = fixed.to_vec();
    let rest = u64::try_from(len - V2_FIXED).unwrap_or(u64::MAX);
    (&mut *stream).take(rest).read_to_end(&mut header).await?;
    if header.len() < len {
        return Err(cut_in_the_middle(Version::V2, &[]));
    }
    Ok(header)
}

/// Fills `buf` from the stream; an end of stream first is a header cut in the middle.
async fn read_part<C: Connection>(
    stream: &mut C,
    buf: &mut [u8],
    version: Version,
) -> Result<(), Refusal> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
            Err(cut_in_the_middle(version, &[]))
        }
        Err(err) => Err(err.into()),
    }
}

fn cut_in_the_middle(version: Version, got: &[u8]) -> Refusal {
    let got = if got.is_empty() {
        String::new()
    } else {
        // Not "after": the close line goes on with "after" the connection's age.
        format!(" ({} so far)", proxy::shown(got))
    };
    Refusal::Bad(format!(
        "closed in the middle of a PROXY {version} header{got}"
    ))
}
