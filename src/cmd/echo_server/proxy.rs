//! `--proxy-protocol`: the PROXY protocol header a proxy (HAProxy's send-proxy or
//! send-proxy-v2) sends at the start of a connection, read before the echo (and before the
//! TLS handshake), so that the client it names is the one the logs show.
//!
//! The header is read without reading past it: the bytes after it, in the same segment, are
//! the client's and must be echoed (over TLS they are the ClientHello). So the first bytes
//! are peeked to tell v1 from v2 from neither; a v2 header is then read to its announced
//! length, and a v1 one peeked for its line end and read to it. Only while the first bytes
//! cannot yet be told apart (fewer than a signature's, all matching it) is the socket looked
//! at again after a short pause: peeking leaves them ready, so waiting for readiness would
//! spin. The whole header is bounded by the TLS handshake's deadline.

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::log::{self, Event};
use crate::cli::ProxyProtocol;
use crate::net::proxy::{self, Header, Start, V1_MAX, V2_FIXED, Version};
use crate::net::stream::{Connection, Peer};
use crate::ui::{self, Level, Ui};

/// Refused connections.
static REFUSED: log::Throttled =
    log::Throttled::new("refused", "refused without a PROXY protocol header");

/// The pause before looking again at first bytes that cannot be told apart yet.
const UNDECIDED_PAUSE: Duration = Duration::from_millis(10);

/// With `=optional`, how long first bytes that start like a signature may stay undecided before
/// they are taken for the client's own: a proxy sends its header at once (the specification
/// asks it to), while a person may well type an empty line (`\r\n`) and wait for the echo.
const OPTIONAL_UNDECIDED: Duration = Duration::from_millis(250);

/// How many first bytes are looked at: a signature's, and enough to show in a refusal.
const FIRST: usize = 32;

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
    let reason = match tokio::time::timeout(limit, read(stream, optional)).await {
        Ok(Ok(header)) => return Ok(opened(peer, header, log)),
        Ok(Err(Refusal::Io(err))) => return Err(err),
        Ok(Err(Refusal::Bad(reason))) => reason,
        Err(_) => format!(
            "no whole PROXY protocol header within {}",
            ui::duration(limit)
        ),
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

/// The header, or `None` when `optional` and the connection does not start with one.
async fn read<C: Connection>(stream: &mut C, optional: bool) -> Result<Option<Header>, Refusal> {
    let version = match sniff(stream, optional).await? {
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
    let bytes = match version {
        Version::V1 => read_v1(stream).await?,
        Version::V2 => read_v2(stream).await?,
    };
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
    loop {
        stream.readable().await?;
        let n = match stream.try_peek(&mut first) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        match proxy::start(&first[..n]) {
            Start::Header(version) => return Ok(Ok(version)),
            Start::Other => return Ok(Err(first[..n].to_vec())),
            Start::Undecided if n == 0 => return Ok(Err(Vec::new())),
            Start::Undecided if optional && start.elapsed() >= OPTIONAL_UNDECIDED => {
                return Ok(Err(first[..n].to_vec()));
            }
            Start::Undecided => tokio::time::sleep(UNDECIDED_PAUSE).await,
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
        let n = match stream.try_peek(&mut buf[..room]) {
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

/// A v2 header: its fixed part, then the length that says.
async fn read_v2<C: Connection>(stream: &mut C) -> Result<Vec<u8>, Refusal> {
    let mut fixed = [0u8; V2_FIXED];
    read_part(stream, &mut fixed, Version::V2).await?;
    let mut header = vec![0u8; proxy::v2_len(&fixed)];
    header[..V2_FIXED].copy_from_slice(&fixed);
    read_part(stream, &mut header[V2_FIXED..], Version::V2).await?;
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
        format!(" after {}", proxy::shown(got))
    };
    Refusal::Bad(format!(
        "closed in the middle of a PROXY {version} header{got}"
    ))
}
