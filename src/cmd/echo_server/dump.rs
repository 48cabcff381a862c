//! `-x/--hex-dump` on the server: each connection's traffic as a hex dump on stderr
//! ([`crate::ui::hexdump`] says the format), both ways, naming the client in every chunk so
//! the chunks of connections that interleave read apart.
//!
//! A plain connection under `-x` is echoed by the simple loop here rather than by
//! [`conn::echo`](super::conn::echo), whose small-buffer and burst paths are left as they
//! are: without `-x` no byte and no branch of this is on the way.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::End;
use super::stats::{Count, Stats};
use super::tls::bounded;
use crate::net::stream::{Connection, Peer};
use crate::ui::Ui;
use crate::ui::hexdump::HexDump;

/// The bytes per read: a chunk of the dump.
const BUF: usize = 64 * 1024;

/// One connection's dumps: what came from the client, and what went back.
pub(super) struct Dumps {
    received: HexDump,
    sent: HexDump,
}

impl Dumps {
    /// The dumps of connection `number` from `peer`. A TCP client is named by its address;
    /// a Unix client's credentials may be shared by several connections, so its number goes
    /// with them (`pid 41 uid 0 #3`).
    pub(super) fn new(ui: &Ui, peer: Peer, number: u64) -> Dumps {
        let name = match peer {
            Peer::Tcp(_) => peer.to_string(),
            Peer::Unix { .. } => format!("{peer} #{number}"),
        };
        let (sent, received) = HexDump::both_bounded(ui, &name);
        Dumps { received, sent }
    }

    /// A chunk read from the client.
    pub(super) fn received(&self, chunk: &[u8]) {
        self.received.chunk(chunk);
    }

    /// A chunk of the echo the client's socket took: what a write returned, so a connection
    /// reset mid-echo shows no byte that did not go.
    pub(super) fn sent(&self, chunk: &[u8]) {
        self.sent.chunk(chunk);
    }
}

/// Echoes a plain connection until the client closes its side (then shuts down ours), dumping
/// every chunk both ways. `--idle-timeout` bounds each read and write: a client that takes
/// its echo slowly but steadily keeps the connection, one that stops does not.
pub(super) async fn echo<S: Connection>(
    stream: &mut S,
    idle: Option<Duration>,
    stats: &Stats,
    echoed: &mut u64,
    dumps: Dumps,
) -> io::Result<End> {
    let mut count = Count::new(stats, echoed);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match bounded(idle, stream.read(&mut buf)).await {
            None => return Ok(End::Idle),
            Some(n) => n?,
        };
        if n == 0 {
            stream.shutdown().await?;
            return Ok(End::Closed);
        }
        dumps.received(&buf[..n]);
        let mut sent = 0;
        while sent < n {
            match bounded(idle, stream.write(&buf[sent..n])).await {
                None => return Ok(End::Idle),
                Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Some(Ok(k)) => {
                    dumps.sent(&buf[sent..sent + k]);
                    sent += k;
                    count.add(k);
                }
                Some(Err(err)) => return Err(err),
            }
        }
    }
}
