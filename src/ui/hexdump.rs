//! `-x/--hex-dump`: the traffic of a connection as a hex dump on stderr, as `socat -x` and
//! `ncat --hex-dump` show it, in one format that reads like both.
//!
//! Each chunk (what one read returned, or one datagram) is a header naming the direction,
//! the time, the peer and where the chunk lies in that direction's stream (socat's words),
//! then `hexdump -C` lines: the stream offset, 16 bytes in hex, and the bytes as ASCII, any
//! byte that is not printable ASCII shown as `.` (so no received byte reaches the terminal
//! as itself):
//!
//! ```text
//! > 2026-12-06T16:00:00.123456Z 127.0.0.1:7 length=6 from=0 to=5
//! 00000000  68 65 6c 6c 6f 0a                                 |hello.|
//! < 2026-12-06T16:00:00.123789Z 127.0.0.1:7 length=6 from=0 to=5
//! 00000000  68 65 6c 6c 6f 0a                                 |hello.|
//! ```
//!
//! `>` is what this program sent to the peer, `<` what it received from it. Over a stream the
//! offsets go on through the stream, each direction's its own; a datagram's start at 0.
//! A chunk is written
//! in one piece, so chunks of two directions or connections never mix within a block; the
//! peer in each header tells interleaved connections apart.
//!
//! A stderr that takes nothing (a full pipe nobody reads, a terminal stopped with Ctrl-S)
//! stalls a client's copy, as it stalls socat's: the dump is what was asked for, and one
//! connection is all there is. The server's dumps wait for it at most [`PATIENCE`]: past that
//! they skip chunks while stderr still takes nothing, and when it takes again a line says how
//! many were skipped. So one stalled stderr slows every connection for a second, not for ever.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::Ui;

/// How long the server's dump waits for a stderr that takes nothing before it skips chunks.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// Which way a chunk went, seen from this program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent to the peer: `>`.
    Sent,
    /// Received from the peer: `<`.
    Received,
}

impl Direction {
    fn mark(self) -> char {
        match self {
            Direction::Sent => '>',
            Direction::Received => '<',
        }
    }
}

/// One direction of one connection's dump: it counts the bytes that went that way, for the
/// offsets.
#[derive(Debug)]
pub struct HexDump {
    ui: Ui,
    peer: String,
    direction: Direction,
    offset: AtomicU64,
    /// The server's: a stderr that takes nothing is waited for at most [`PATIENCE`].
    bounded: bool,
}

impl HexDump {
    /// The dump of the bytes going `direction` with `peer` (an address as messages name it).
    pub fn new(ui: &Ui, peer: &str, direction: Direction) -> HexDump {
        HexDump {
            ui: ui.clone(),
            peer: super::quote::address(peer).into_owned(),
            direction,
            offset: AtomicU64::new(0),
            bounded: false,
        }
    }

    /// The dumps of both directions with `peer`: (sent, received).
    pub fn both(ui: &Ui, peer: &str) -> (HexDump, HexDump) {
        (
            HexDump::new(ui, peer, Direction::Sent),
            HexDump::new(ui, peer, Direction::Received),
        )
    }

    /// The server's dumps of both directions with client `peer`, which wait for a stderr
    /// that takes nothing at most [`PATIENCE`]: (sent, received).
    pub fn both_bounded(ui: &Ui, peer: &str) -> (HexDump, HexDump) {
        let (mut sent, mut received) = HexDump::both(ui, peer);
        sent.bounded = true;
        received.bounded = true;
        (sent, received)
    }

    /// Dumps `data`, one chunk, now: shown even under `-q`, which the user asked for too.
    pub fn chunk(&self, data: &[u8]) {
        let from = self.offset.fetch_add(data.len() as u64, Ordering::Relaxed);
        let chunk = Chunk {
            direction: self.direction,
            when: SystemTime::now(),
            peer: &self.peer,
            from,
        };
        chunk.show(&self.ui, data, self.bounded);
    }

    /// The dump of `data`, the next chunk this way, stamped now, as text.
    #[cfg(test)]
    fn text(&self, data: &[u8]) -> String {
        let from = self.offset.fetch_add(data.len() as u64, Ordering::Relaxed);
        let chunk = Chunk {
            direction: self.direction,
            when: SystemTime::now(),
            peer: &self.peer,
            from,
        };
        chunk.format(data)
    }
}

/// Dumps one datagram that went `direction` with `peer`, now: a chunk of its own, its offsets
/// counted from 0, as a datagram stands alone.
pub fn datagram(ui: &Ui, peer: &str, direction: Direction, data: &[u8]) {
    show_datagram(ui, peer, direction, data, false);
}

/// [`datagram`] for the server: a stderr that takes nothing is waited for at most
/// [`PATIENCE`].
pub fn server_datagram(ui: &Ui, peer: &str, direction: Direction, data: &[u8]) {
    show_datagram(ui, peer, direction, data, true);
}

fn show_datagram(ui: &Ui, peer: &str, direction: Direction, data: &[u8], bounded: bool) {
    let chunk = Chunk {
        direction,
        when: SystemTime::now(),
        peer: &super::quote::address(peer),
        from: 0,
    };
    chunk.show(ui, data, bounded);
}

/// What a chunk's header says, besides its length.
struct Chunk<'a> {
    direction: Direction,
    when: SystemTime,
    peer: &'a str,
    /// The offset of its first byte in its direction's stream.
    from: u64,
}

impl Chunk<'_> {
    /// Writes the chunk of `data` to stderr: as text, or under `--log-format json` as one
    /// JSON object (event `hex_dump`) whose `data` is the bytes in hex, so the stream stays
    /// one object a line.
    /// `bounded`: a stderr that takes nothing is waited for at most [`PATIENCE`].
    fn show(&self, ui: &Ui, data: &[u8], bounded: bool) {
        let text = match ui.json {
            true => self.json(data),
            false => self.format(data),
        };
        match bounded {
            true => emit_bounded(ui, &text, data.len()),
            false => ui.emit(&text),
        }
    }

    /// The chunk of `data` as one JSON line.
    fn json(&self, data: &[u8]) -> String {
        let mut hex = String::with_capacity(2 * data.len());
        for &b in data {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        let direction = match self.direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
        };
        let header = self.header(data.len());
        let fields = [
            ("direction", direction.into()),
            ("peer", self.peer.into()),
            ("length", data.len().into()),
            ("from", self.from.into()),
            ("data", hex.into()),
        ];
        super::json_line("info", "hex_dump", &header, &fields)
    }

    /// The header line, without its newline.
    fn header(&self, len: usize) -> String {
        let mut out = format!(
            "{} {} {} length={len} from={}",
            self.direction.mark(),
            humantime::format_rfc3339_micros(self.when),
            self.peer,
            self.from
        );
        if let Some(last) = (len as u64).checked_sub(1) {
            out.push_str(&format!(" to={}", self.from + last));
        }
        out
    }

    /// The header and the hex lines of `data`, each line ending in a newline.
    fn format(&self, data: &[u8]) -> String {
        let mut out = String::with_capacity(80 + data.len().div_ceil(16) * 80);
        out.push_str(&self.header(data.len()));
        out.push('\n');
        for (i, row) in data.chunks(16).enumerate() {
            hex_line(&mut out, self.from + 16 * i as u64, row);
        }
        out
    }
}

/// What the server's dumps skipped while stderr took nothing, to be said when it takes again.
#[derive(Default)]
struct Skipped {
    chunks: u64,
    bytes: u64,
    /// A chunk was cut off mid-line: the note starts a line of its own.
    cut: bool,
}

static SKIPPED: Mutex<Skipped> = Mutex::new(Skipped {
    chunks: 0,
    bytes: 0,
    cut: false,
});

/// Writes `text`, a chunk of `len` bytes, to stderr (above the live line), waiting at most
/// [`PATIENCE`] for room; while stderr takes nothing after that, chunks are skipped at once
/// and counted, and the first one that goes again follows a line saying how many were not
/// shown. A stderr that fails is given up silently, as [`Ui::emit`] gives it up.
fn emit_bounded(ui: &Ui, text: &str, len: usize) {
    let live = ui
        .live
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let write = || {
        let stderr = io::stderr();
        // Held throughout: another thread's line never lands inside this chunk.
        let held = stderr.lock();
        let mut skipped = SKIPPED.lock().unwrap_or_else(PoisonError::into_inner);
        if skipped.chunks > 0 {
            let note = skipped_note(&skipped, ui.json);
            if write_within(&held, note.as_bytes(), Duration::ZERO).is_err() {
                skipped.chunks += 1;
                skipped.bytes += len as u64;
                return;
            }
            *skipped = Skipped::default();
        }
        if let Err(written) = write_within(&held, text.as_bytes(), PATIENCE) {
            skipped.chunks += 1;
            skipped.bytes += len as u64;
            skipped.cut = written > 0;
        }
    };
    match live {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The line saying how many chunks the server's dumps skipped, if any since it was last
/// said: [`Ui::emit`] writes it before its own line, so that a stall followed by no more
/// chunks is still told, by whatever is written next (the summary at stop, at the latest).
pub(super) fn take_skipped_note(json: bool) -> Option<String> {
    let mut skipped = SKIPPED.lock().unwrap_or_else(PoisonError::into_inner);
    if skipped.chunks == 0 {
        return None;
    }
    let note = skipped_note(&skipped, json);
    *skipped = Skipped::default();
    Some(note)
}

/// The line that says what [`Skipped`] holds: under `--log-format json` an object (event
/// `hex_dump_skipped`, with `chunks` and `bytes`).
fn skipped_note(skipped: &Skipped, json: bool) -> String {
    let (chunks, bytes) = (skipped.chunks, skipped.bytes);
    let text = format!(
        "-x: {chunks} chunk{} of the dump ({bytes} bytes) not shown: stderr took nothing for {}s",
        if chunks == 1 { "" } else { "s" },
        PATIENCE.as_secs()
    );
    let line = match json {
        true => {
            let fields = [("chunks", chunks.into()), ("bytes", bytes.into())];
            super::json_line("warn", "hex_dump_skipped", &text, &fields)
        }
        false => format!("asyncio-tool: {text}\n"),
    };
    match skipped.cut {
        true => format!("\n{line}"),
        false => line,
    }
}

/// Writes `bytes` to stderr, waiting at most `patience` in all for room, in pieces a pipe
/// takes whole once it has room for any (PIPE_BUF), so that no write blocks. `Err` with what
/// was written when the patience ran out; a stderr that fails counts as written (nothing can
/// be done about it).
fn write_within(fd: &impl AsFd, bytes: &[u8], patience: Duration) -> Result<(), usize> {
    const PIPE_BUF: usize = 4096;
    let deadline = Instant::now() + patience;
    let mut done = 0;
    while done < bytes.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Timespec::try_from(left).unwrap_or_default();
        let mut fds = [PollFd::new(fd, PollFlags::OUT)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Err(done),
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(_) => return Ok(()),
        }
        if fds[0]
            .revents()
            .intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL)
        {
            return Ok(());
        }
        let end = (done + PIPE_BUF).min(bytes.len());
        match rustix::io::write(fd, &bytes[done..end]) {
            Ok(n) => done += n,
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// The hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// One `hexdump -C` line: the offset, up to 16 bytes in hex in two groups of 8, the ASCII.
fn hex_line(out: &mut String, offset: u64, row: &[u8]) {
    out.push_str(&format!("{offset:08x} "));
    for i in 0..16 {
        if i == 8 {
            out.push(' ');
        }
        match row.get(i) {
            Some(&b) => {
                out.push(' ');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            None => out.push_str("   "),
        }
    }
    out.push_str("  |");
    out.extend(row.iter().map(|&b| match b {
        0x20..=0x7e => char::from(b),
        _ => '.',
    }));
    out.push_str("|\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dump(direction: Direction, from: u64, data: &[u8]) -> String {
        let chunk = Chunk {
            direction,
            when: SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_572_800_123_456),
            peer: "127.0.0.1:7",
            from,
        };
        chunk.format(data)
    }

    #[test]
    fn lines_are_those_of_hexdump_c() {
        // What `printf 'hello world, this is a line\x01\xff\n' | hexdump -C` prints.
        let text = dump(Direction::Sent, 0, b"hello world, this is a line\x01\xff\n");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            [
                "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 2c 20 74 68 69  |hello world, thi|",
                "00000010  73 20 69 73 20 61 20 6c  69 6e 65 01 ff 0a        |s is a line...|",
            ]
        );
        let short = dump(Direction::Sent, 0, b"hello\n");
        assert_eq!(
            short.lines().nth(1),
            Some("00000000  68 65 6c 6c 6f 0a                                 |hello.|")
        );
    }

    #[test]
    fn header_names_direction_time_peer_and_place() {
        let text = dump(Direction::Received, 6, b"abc");
        assert_eq!(
            text.lines().next(),
            Some("< 2026-12-06T16:00:00.123456Z 127.0.0.1:7 length=3 from=6 to=8")
        );
        // Offsets go on from where the chunk starts in the stream.
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("00000006  61 62 63 ")
        );
        assert!(dump(Direction::Sent, 0, b"").starts_with("> "));
        assert!(dump(Direction::Sent, 9, b"").ends_with(" length=0 from=9\n"));
        assert_eq!(dump(Direction::Sent, 9, b"").lines().count(), 1);
    }

    #[test]
    fn nothing_unprintable_reaches_the_terminal() {
        let all: Vec<u8> = (0..=255).collect();
        let text = dump(Direction::Received, 0, &all);
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
        assert!(text.is_ascii());
        assert!(text.contains("|................|"), "{text}");
        assert!(text.contains("| !\"#$%&'()*+,-./|"), "{text}");
        assert!(text.contains("|pqrstuvwxyz{|}~.|"), "{text}");
        // 256 bytes: 16 full lines and the header.
        assert_eq!(text.lines().count(), 17);
    }

    #[test]
    fn under_json_logs_a_chunk_is_one_object() {
        let chunk = Chunk {
            direction: Direction::Received,
            when: SystemTime::UNIX_EPOCH,
            peer: "127.0.0.1:7",
            from: 3,
        };
        let line = chunk.json(b"a\n\xff");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "hex_dump");
        assert_eq!(v["direction"], "received");
        assert_eq!(v["peer"], "127.0.0.1:7");
        assert_eq!(
            (v["length"].as_u64(), v["from"].as_u64()),
            (Some(3), Some(3))
        );
        assert_eq!(v["data"], "610aff");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .ends_with(" length=3 from=3 to=5")
        );
    }

    #[test]
    fn the_note_of_skipped_chunks_stands_on_a_line_of_its_own() {
        let mut skipped = Skipped {
            chunks: 1,
            bytes: 5,
            cut: false,
        };
        assert_eq!(
            skipped_note(&skipped, false),
            "asyncio-tool: -x: 1 chunk of the dump (5 bytes) not shown: stderr took nothing \
             for 1s\n"
        );
        skipped.chunks = 3;
        skipped.cut = true;
        let note = skipped_note(&skipped, false);
        assert!(note.starts_with("\nasyncio-tool: -x: 3 chunks "), "{note}");
        skipped.cut = false;
        let v: serde_json::Value = serde_json::from_str(&skipped_note(&skipped, true)).unwrap();
        assert_eq!(v["event"], "hex_dump_skipped");
        assert_eq!(
            (v["chunks"].as_u64(), v["bytes"].as_u64()),
            (Some(3), Some(5))
        );
    }

    #[test]
    fn offsets_past_four_gib_widen() {
        let text = dump(Direction::Sent, 0x1_0000_0000, b"x");
        assert!(text.lines().nth(1).unwrap().starts_with("100000000  78"));
    }

    #[test]
    fn a_dump_counts_its_direction_s_bytes() {
        let ui = Ui::silent();
        let (sent, received) = HexDump::both(&ui, "peer\x1b[2J");
        assert!(!sent.peer.contains('\x1b'), "{}", sent.peer);
        let _ = sent.text(b"abc");
        let second = sent.text(b"de");
        assert!(
            second.contains(" length=2 from=3 to=4\n00000003  64 65 "),
            "{second}"
        );
        assert!(received.text(b"f").contains(" from=0 to=0\n"));
    }
}
