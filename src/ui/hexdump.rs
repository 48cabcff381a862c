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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::Ui;

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
}

impl HexDump {
    /// The dump of the bytes going `direction` with `peer` (an address as messages name it).
    pub fn new(ui: &Ui, peer: &str, direction: Direction) -> HexDump {
        HexDump {
            ui: ui.clone(),
            peer: super::quote::address(peer).into_owned(),
            direction,
            offset: AtomicU64::new(0),
        }
    }

    /// The dumps of both directions with `peer`: (sent, received).
    pub fn both(ui: &Ui, peer: &str) -> (HexDump, HexDump) {
        (
            HexDump::new(ui, peer, Direction::Sent),
            HexDump::new(ui, peer, Direction::Received),
        )
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
        chunk.show(&self.ui, data);
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
    let chunk = Chunk {
        direction,
        when: SystemTime::now(),
        peer: &super::quote::address(peer),
        from: 0,
    };
    chunk.show(ui, data);
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
    fn show(&self, ui: &Ui, data: &[u8]) {
        match ui.json {
            true => ui.emit(&self.json(data)),
            false => ui.emit(&self.format(data)),
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
