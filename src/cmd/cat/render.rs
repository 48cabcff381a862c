//! GNU cat's formatting options (`-n -b -s -v -E -T` and their combinations) as a streaming
//! renderer. The state it keeps between calls — and between files — is exactly the state GNU
//! cat keeps, so numbering and squeezing continue across chunks and files as they do there.

use memchr::memchr;

/// Which formatting options are on, after folding `-A`, `-e` and `-t` into their parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `-n`: number output lines.
    pub number: bool,
    /// `-b`: number only nonempty lines (overrides `-n`).
    pub number_nonblank: bool,
    /// `-s`: never more than one empty output line in a row.
    pub squeeze_blank: bool,
    /// `-v`: `^X` and `M-` notation for control and high bytes, except newline and tab.
    pub show_nonprinting: bool,
    /// `-E`: `$` at the end of each line.
    pub show_ends: bool,
    /// `-T`: tabs as `^I`.
    pub show_tabs: bool,
}

impl Format {
    /// True when any option changes the bytes, so the plain (zero-copy) path cannot be used.
    pub fn is_plain(&self) -> bool {
        *self == Format::default()
    }
}

/// GNU cat's line counter: the text `%6d\t` kept as ASCII and incremented in place (as GNU
/// does), cheaper than formatting an integer for every line.
#[derive(Debug, Clone)]
struct LineNumber {
    /// The text to print, left-aligned: `     7\t`, then unused bytes. Always copied whole,
    /// since one fixed-size copy is cheaper than a variable-length one.
    text: [u8; 32],
    /// How much of `text` to print.
    len: usize,
}

impl LineNumber {
    /// GNU's counter holds 18 digits; past that it shows `>` in front, as here.
    const MAX_LEN: usize = 18 + 1;

    fn new() -> Self {
        let mut text = [0; 32];
        text[..7].copy_from_slice(b"     0\t");
        LineNumber { text, len: 7 }
    }

    /// Advances to the next number.
    #[inline]
    fn advance(&mut self) {
        let last = &mut self.text[self.len - 2];
        if matches!(*last, b'0'..=b'8') {
            *last += 1;
        } else {
            self.carry();
        }
    }

    /// [`LineNumber::advance`] when the last digit is 9.
    #[cold]
    fn carry(&mut self) {
        let mut i = self.len - 2;
        loop {
            match self.text[i] {
                // GNU's full counter keeps counting below its '>'.
                b'9' | b'>' => self.text[i] = b'0',
                b' ' => {
                    self.text[i] = b'1';
                    return;
                }
                digit => {
                    self.text[i] = digit + 1;
                    return;
                }
            }
            if i == 0 {
                return self.widen();
            }
            i -= 1;
        }
    }

    /// All digits were 9 and are now 0, with no space left in front: one more digit.
    fn widen(&mut self) {
        if self.len == Self::MAX_LEN {
            self.text[0] = b'>';
            return;
        }
        self.text.copy_within(..self.len, 1);
        self.text[0] = b'1';
        self.len += 1;
    }

    /// Appends the current number to `out`.
    fn push(&self, out: &mut Vec<u8>) {
        push_prefix(out, &self.text, self.len);
    }
}

/// What one byte becomes under `-v`: up to 4 bytes, padded to a word so a copy is one load
/// and one store.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
struct Shown {
    text: [u8; 4],
    len: u32,
}

/// A long line is expanded in pieces of this size, so the room reserved for the worst case
/// (4 bytes out per byte in) stays small.
const EXPAND_PIECE: usize = 16 * 1024;

/// The formatting state machine: feed it input chunks, it appends GNU cat's output.
#[derive(Debug, Clone)]
pub struct Renderer {
    format: Format,
    /// GNU's `newlines`: -1 inside a line; 0 at the start of a line that follows a nonempty
    /// one; 1 after one empty line; 2 after two or more.
    newlines: i32,
    line: LineNumber,
    /// A CR held back at the end of a chunk under `-E`: GNU shows CR LF as `^M$`, even when
    /// the two arrive in different reads or files, and a lone CR as itself.
    pending_cr: bool,
    /// What each byte becomes under `-v` (and `-T`), precomputed.
    table: Box<[Shown; 256]>,
}

impl Renderer {
    /// A renderer at the start of the first line.
    pub fn new(format: Format) -> Self {
        Renderer {
            format,
            newlines: 0,
            line: LineNumber::new(),
            pending_cr: false,
            table: Box::new(std::array::from_fn(|b| rendered(b as u8, format))),
        }
    }

    /// Renders `input` (any chunk: it need not end on a line boundary) onto `out`.
    pub fn render(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let format = self.format;
        let lines_matter = format.number || format.number_nonblank || format.squeeze_blank;
        if !lines_matter && (format.show_nonprinting || !format.show_ends) {
            // Nothing depends on where lines begin (-v shows every CR as ^M, and the table
            // shows a newline as -E wants it; -T alone cares for tabs only): one pass over
            // the whole chunk.
            if format.show_nonprinting {
                expand::<false, true>(&self.table, input, out);
            } else {
                expand::<false, false>(&self.table, input, out);
            }
            return;
        }
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(if input[0] == b'\n' { b"^M" } else { b"\r" });
        }
        let numbers = self.format.number || self.format.number_nonblank;
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'\n' {
                self.newline(out);
                i += 1;
                continue;
            }
            // Text of a line: numbered unless it continues one begun in an earlier chunk.
            if numbers && self.newlines >= 0 {
                self.line.advance();
                self.line.push(out);
            }
            self.newlines = -1;
            i = self.line_text(input, i, out);
        }
    }

    /// Ends the output: a CR still held back had no LF after it, so it is itself.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }

    /// A newline that is not right after text rendered by [`Renderer::line_text`]: it ends a
    /// line begun in an earlier chunk, or it is an empty line.
    fn newline(&mut self, out: &mut Vec<u8>) {
        self.newlines += 1;
        if self.newlines > 0 {
            if self.newlines >= 2 {
                self.newlines = 2;
                if self.format.squeeze_blank {
                    return;
                }
            }
            // -b numbers only nonempty lines, even with -n.
            if self.format.number && !self.format.number_nonblank {
                self.line.advance();
                self.line.push(out);
            }
        }
        out.extend_from_slice(if self.format.show_ends { b"$\n" } else { b"\n" });
    }

    /// Renders the text of a line from `input[start]` up to the next newline, and that
    /// newline if the chunk has it; returns where the next line starts.
    fn line_text(&mut self, input: &[u8], start: usize, out: &mut Vec<u8>) -> usize {
        let format = self.format;
        let plain = !(format.show_nonprinting || format.show_tabs || format.show_ends);
        let special = if format.show_nonprinting {
            Special::Nonprinting
        } else if format.show_tabs {
            Special::Tabs
        } else {
            Special::None
        };
        let end = if let Some(end) = copy_short_line(input, start, special, plain, out) {
            end
        } else if format.show_nonprinting {
            start + expand::<true, true>(&self.table, &input[start..], out)
        } else if format.show_tabs {
            start + expand::<true, false>(&self.table, &input[start..], out)
        } else {
            copy_text(input, start, plain, out)
        };
        if format.show_ends && !format.show_nonprinting && end > start && input[end - 1] == b'\r' {
            // -E alone marks the CR of a CR LF; the CR was rendered as itself.
            out.pop();
            if end < input.len() {
                out.extend_from_slice(b"^M");
            } else {
                // Whether a LF follows is for the next chunk to say.
                self.pending_cr = true;
            }
        }
        if end == input.len() {
            return end;
        }
        self.newlines = 0;
        if !plain {
            out.extend_from_slice(if format.show_ends { b"$\n" } else { b"\n" });
        }
        end + 1
    }
}

/// The bytes the table changes, for [`copy_short_line`].
#[derive(Debug, Clone, Copy)]
enum Special {
    None,
    /// `-T` alone: tabs.
    Tabs,
    /// `-v`: all but printable ASCII.
    Nonprinting,
}

/// Appends the text of the line that begins at `input[start]`, and its newline too when
/// `with_newline`, if the line ends within the 64 bytes ahead (most lines of text do) and has
/// no `special` byte; returns where that newline is. The line is found by masks and copied as
/// 64 bytes: cheaper than a memchr call and a variable-length copy, and with no branch that
/// random line lengths mispredict (the word-by-word search of [`expand`] has one). Measured
/// against a 32-byte window: lines of 0-79 bytes -vn 0.90 → 0.68× GNU's time, lines of 0-31
/// bytes -n 0.46 → 0.50×; 32 bytes then 64 did neither well (one more such branch).
fn copy_short_line(
    input: &[u8],
    start: usize,
    special: Special,
    with_newline: bool,
    out: &mut Vec<u8>,
) -> Option<usize> {
    let window = input[start..].first_chunk::<64>()?;
    let newlines = byte_mask(window, b'\n');
    if newlines == 0 {
        return None;
    }
    let k = newlines.trailing_zeros() as usize;
    let special = match special {
        Special::None => 0,
        Special::Tabs => byte_mask(window, b'\t'),
        Special::Nonprinting => nonprinting_mask(window),
    };
    if special & ((1 << k) - 1) != 0 {
        return None;
    }
    push_prefix(out, window, k + usize::from(with_newline));
    Some(start + k)
}

/// Appends the text of the line that begins at `input[start]`, and its newline too when
/// `with_newline`; returns where that newline is (the end of the chunk when it has none).
fn copy_text(input: &[u8], start: usize, with_newline: bool, out: &mut Vec<u8>) -> usize {
    match memchr(b'\n', &input[start..]) {
        Some(p) => {
            out.extend_from_slice(&input[start..start + p + usize::from(with_newline)]);
            start + p
        }
        None => {
            out.extend_from_slice(&input[start..]);
            input.len()
        }
    }
}

/// A bit per byte `b` in `window` (bit k for byte k; N is 16, 32, 48 or 64), found without a
/// branch per byte: random line lengths would mispredict one. Measured on `-n` of short
/// lines: a memchr call per line 83 ms, the portable loop below 82 ms, SSE2 70 ms.
#[cfg(target_arch = "x86_64")]
fn byte_mask<const N: usize>(window: &[u8; N], b: u8) -> u64 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    const { assert!(N % 16 == 0 && N <= 64) };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always available;
    // the unaligned 16-byte loads read bytes 16i..16i+16 for 16i + 16 <= N, inside the array.
    unsafe {
        let b = _mm_set1_epi8(b as i8);
        let mut mask = 0;
        for i in 0..N / 16 {
            let x = _mm_loadu_si128(window.as_ptr().add(16 * i).cast());
            mask |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(x, b)) as u16) << (16 * i);
        }
        mask
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn byte_mask<const N: usize>(window: &[u8; N], b: u8) -> u64 {
    byte_mask_portable(window, b)
}

/// [`byte_mask`] in plain Rust, for other targets (and as the tests' reference).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn byte_mask_portable<const N: usize>(window: &[u8; N], b: u8) -> u64 {
    let mut mask = 0;
    for (k, &x) in window.iter().enumerate() {
        mask |= u64::from(x == b) << k;
    }
    mask
}

/// A bit per byte of `window` that is not printable ASCII (space to `~`), as [`byte_mask`].
#[cfg(target_arch = "x86_64")]
fn nonprinting_mask<const N: usize>(window: &[u8; N]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    const { assert!(N % 16 == 0 && N <= 64) };
    // SAFETY: as in `byte_mask`.
    unsafe {
        let space = _mm_set1_epi8(0x20);
        let del = _mm_set1_epi8(0x7f);
        let mut mask = 0;
        for i in 0..N / 16 {
            let x = _mm_loadu_si128(window.as_ptr().add(16 * i).cast());
            // A signed compare: bytes from 0x80 up are negative, so below space too.
            let m = _mm_or_si128(_mm_cmplt_epi8(x, space), _mm_cmpeq_epi8(x, del));
            mask |= u64::from(_mm_movemask_epi8(m) as u16) << (16 * i);
        }
        mask
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn nonprinting_mask<const N: usize>(window: &[u8; N]) -> u64 {
    nonprinting_mask_portable(window)
}

/// [`nonprinting_mask`] in plain Rust, for other targets (and as the tests' reference).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn nonprinting_mask_portable<const N: usize>(window: &[u8; N]) -> u64 {
    let mut mask = 0;
    for (k, x) in window.iter().enumerate() {
        mask |= u64::from(!(b' '..=b'~').contains(x)) << k;
    }
    mask
}

/// Appends the first `len` bytes of `bytes` by copying all of them into the spare capacity.
fn push_prefix<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N], len: usize) {
    assert!(len <= N);
    out.reserve(N);
    let old_len = out.len();
    // SAFETY: `reserve` made room for N bytes after the length; the copy writes N bytes
    // there (an unaligned store of an array), and the length grows by `len` <= N of them,
    // all initialised by the copy.
    unsafe {
        out.as_mut_ptr()
            .add(old_len)
            .cast::<[u8; N]>()
            .write_unaligned(*bytes);
        out.set_len(old_len + len);
    }
}

/// Appends `text` with each byte as `table` shows it; with `TO_NEWLINE`, only up to the first
/// newline (not included). Returns how many bytes of `text` it rendered.
fn expand<const TO_NEWLINE: bool, const NONPRINTING: bool>(
    table: &[Shown; 256],
    text: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    let mut done = 0;
    for piece in text.chunks(EXPAND_PIECE) {
        let n = expand_piece::<TO_NEWLINE, NONPRINTING>(table, piece, out);
        done += n;
        if n < piece.len() {
            break;
        }
    }
    done
}

/// [`expand`] on at most [`EXPAND_PIECE`] bytes. Every byte is stored as a whole 4-byte word
/// and the cursor advances by its real length, so the loop has no branch per byte that random
/// binary data would mispredict; words of 8 bytes that all stay as they are (see
/// [`verbatim`]) are copied as they are.
fn expand_piece<const TO_NEWLINE: bool, const NONPRINTING: bool>(
    table: &[Shown; 256],
    piece: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    out.reserve(piece.len() * 4);
    let old_len = out.len();
    let mut at = 0;
    let mut i = 0;
    // SAFETY: `reserve` made room for 4 bytes per input byte after the length. The cursor
    // `at` never passes 4 × `i` (bytes consumed): a byte advances it by at most 4, and a word
    // of 8 bytes by 8 after a store of 8. So every store, of 4 bytes for one input byte or 8
    // for 8, ends within the room reserved. Stores are unaligned; the new length counts only
    // the bytes stored (`at`).
    unsafe {
        let base = out.as_mut_ptr().add(old_len);
        // Stores byte `b` as shown at `at`; gives the cursor after it.
        let store = |at: usize, b: u8| {
            let shown = table[b as usize];
            base.add(at).cast::<[u8; 4]>().write_unaligned(shown.text);
            at + shown.len as usize
        };
        while let Some(word) = piece[i..].first_chunk::<8>() {
            if verbatim::<TO_NEWLINE, NONPRINTING>(u64::from_le_bytes(*word)) {
                base.add(at).cast::<[u8; 8]>().write_unaligned(*word);
                at += 8;
                i += 8;
                continue;
            }
            if TO_NEWLINE {
                if let Some(k) = first_newline(u64::from_le_bytes(*word)) {
                    for &b in &word[..k] {
                        at = store(at, b);
                    }
                    out.set_len(old_len + at);
                    return i + k;
                }
            }
            for &b in word {
                at = store(at, b);
            }
            i += 8;
        }
        for &b in &piece[i..] {
            if TO_NEWLINE && b == b'\n' {
                out.set_len(old_len + at);
                return i;
            }
            at = store(at, b);
            i += 1;
        }
        out.set_len(old_len + at);
    }
    piece.len()
}

/// True when the 8 bytes of `word` are all their own rendering: printable ASCII under `-v`
/// (`NONPRINTING`); otherwise (`-T`) anything but a tab, or a newline where the expansion
/// stops at one.
#[inline(always)]
fn verbatim<const TO_NEWLINE: bool, const NONPRINTING: bool>(word: u64) -> bool {
    if NONPRINTING {
        all_printable(word)
    } else {
        byte_marks(word, b'\t') == 0 && !(TO_NEWLINE && byte_marks(word, b'\n') != 0)
    }
}

/// Where the first newline is among the 8 bytes of `word` (little-endian), if any.
fn first_newline(word: u64) -> Option<usize> {
    let marks = byte_marks(word, b'\n');
    (marks != 0).then(|| marks.trailing_zeros() as usize / 8)
}

/// The high bit of each byte of `word` equal to `b`, by the SWAR test for a zero byte: exact
/// for the lowest such byte (a higher one may be marked wrongly), so nonzero exactly when
/// some byte is `b`.
fn byte_marks(word: u64, b: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & (ONES * 0x80)
}

/// True when all 8 bytes of `word` are printable ASCII (space to `~`), which `-v` leaves as
/// they are. The SWAR tests for "some byte < n" are exact when only the answer for the whole
/// word is needed.
fn all_printable(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let del = word ^ (ONES * 0x7f);
    let is_del = del.wrapping_sub(ONES) & !del;
    (below_space | is_del | word) & HIGH == 0
}

/// GNU cat's rendering of one byte under `-v` (tabs stay tabs unless `-T`).
fn rendered(b: u8, format: Format) -> Shown {
    let shown = |text: &[u8]| {
        let mut padded = [0; 4];
        padded[..text.len()].copy_from_slice(text);
        Shown {
            text: padded,
            len: text.len() as u32,
        }
    };
    if b == b'\t' {
        return if format.show_tabs {
            shown(b"^I")
        } else {
            shown(b"\t")
        };
    }
    if !format.show_nonprinting {
        return shown(&[b]);
    }
    match b {
        // Only the pass of `Renderer::render` that needs no line structure looks this up.
        b'\n' if format.show_ends => shown(b"$\n"),
        b'\n' => shown(&[b]),
        0..=31 => shown(&[b'^', b + 64]),
        32..=126 => shown(&[b]),
        127 => shown(b"^?"),
        128..=159 => shown(&[b'M', b'-', b'^', b - 128 + 64]),
        160..=254 => shown(&[b'M', b'-', b - 128]),
        255 => shown(b"M-^?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn render_chunks(format: Format, chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = Renderer::new(format);
        let mut out = Vec::new();
        for c in chunks {
            r.render(c, &mut out);
        }
        r.finish(&mut out);
        out
    }

    fn render(format: Format, chunks: &[&[u8]]) -> String {
        String::from_utf8_lossy(&render_chunks(format, chunks)).into_owned()
    }

    /// GNU cat's loop, byte by byte, on the whole input at once: the model the chunked,
    /// table-driven renderer must match whatever the chunk boundaries.
    fn reference(f: Format, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut newlines = 0i32;
        let mut line = 0u64;
        let mut number = |out: &mut Vec<u8>| {
            line += 1;
            out.extend_from_slice(format!("{line:6}\t").as_bytes());
        };
        for (i, &b) in input.iter().enumerate() {
            if b == b'\n' {
                newlines += 1;
                if newlines > 0 {
                    if newlines >= 2 {
                        newlines = 2;
                        if f.squeeze_blank {
                            continue;
                        }
                    }
                    if f.number && !f.number_nonblank {
                        number(&mut out);
                    }
                }
                out.extend_from_slice(if f.show_ends { b"$\n" } else { b"\n" });
                continue;
            }
            if newlines >= 0 && (f.number || f.number_nonblank) {
                number(&mut out);
            }
            newlines = -1;
            let cr_lf = b == b'\r' && input.get(i + 1) == Some(&b'\n');
            match b {
                b'\t' if f.show_tabs => out.extend_from_slice(b"^I"),
                b'\t' => out.push(b),
                b'\r' if cr_lf && f.show_ends && !f.show_nonprinting => {
                    out.extend_from_slice(b"^M")
                }
                _ if f.show_nonprinting => {
                    let mut c = b;
                    if c >= 128 {
                        out.extend_from_slice(b"M-");
                        c -= 128;
                    }
                    match c {
                        0..32 => out.extend_from_slice(&[b'^', c + 64]),
                        127 => out.extend_from_slice(b"^?"),
                        _ => out.push(c),
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }

    fn format_of(bits: u8) -> Format {
        Format {
            number: bits & 1 != 0,
            number_nonblank: bits & 2 != 0,
            squeeze_blank: bits & 4 != 0,
            show_nonprinting: bits & 8 != 0,
            show_ends: bits & 16 != 0,
            show_tabs: bits & 32 != 0,
        }
    }

    /// Input split at the given points (taken modulo its length, in order).
    fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for p in points {
            chunks.push(&input[at..p]);
            at = p;
        }
        chunks.push(&input[at..]);
        chunks
    }

    /// Bytes that hit every rule: runs of newlines, CR LF, tabs, printable runs (the 8-byte
    /// fast path), controls, DEL, high bytes.
    fn interesting() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => Just(b"\n".to_vec()),
            2 => Just(b"\r\n".to_vec()),
            2 => Just(b"\t".to_vec()),
            2 => Just(b"\r".to_vec()),
            4 => prop::collection::vec(b' '..=b'~', 0..40),
            2 => prop::collection::vec(any::<u8>(), 0..20),
            1 => Just(vec![0x7f, 0x80, 0x9f, 0xa0, 0xfe, 0xff]),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_chunking_matches_gnus_loop(
            input in interesting(),
            bits in 0u8..64,
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let f = format_of(bits);
            let chunks = split(&input, &cuts);
            prop_assert_eq!(render_chunks(f, &chunks), reference(f, &input), "{:?}", f);
        }
    }

    /// Lone and repeated empty lines in every format: proptest once found `-nb` numbering a
    /// lone "\n" (input [10], options 27).
    #[test]
    fn empty_lines_in_every_format() {
        for input in [&b"\n"[..], b"\n\n", b"\n\n\nx\n\n"] {
            for bits in 0..64 {
                let f = format_of(bits);
                assert_eq!(render_chunks(f, &[input]), reference(f, input), "{f:?}");
            }
        }
    }

    #[test]
    fn every_byte_in_every_format() {
        let all: Vec<u8> = (0..=255).collect();
        for bits in 0..64 {
            let f = format_of(bits);
            assert_eq!(render_chunks(f, &[&all]), reference(f, &all), "{f:?}");
        }
    }

    #[test]
    fn high_bytes_and_del_under_v() {
        let f = Format {
            show_nonprinting: true,
            ..Format::default()
        };
        assert_eq!(
            render(f, &[b"\x7f\x80\x89\x9f", b"\xa0\xc1\xfe\xff"]),
            "^?M-^@M-^IM-^_M- M-AM-~M-^?"
        );
        // Printable words go through the 8-byte path; a DEL or high byte inside one does not.
        assert_eq!(render(f, &[b"abcdefgh12345678"]), "abcdefgh12345678");
        assert_eq!(
            render(f, &[b"abcdefg\x7f1234567\xe1"]),
            "abcdefg^?1234567M-a"
        );
        assert_eq!(render(f, &[b"abc\tdefg"]), "abc\tdefg");
        // A newline inside a word ends the line; numbering needs to see it.
        let numbered = Format { number: true, ..f };
        assert_eq!(
            render(numbered, &[b"abc\ndefghijk\n\x01"]),
            "     1\tabc\n     2\tdefghijk\n     3\t^A"
        );
    }

    #[test]
    fn long_binary_lines_span_several_expansion_pieces() {
        let mut data = Vec::new();
        let mut x = 1u32;
        for _ in 0..3 * EXPAND_PIECE + 5 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.push((x >> 16) as u8 | 0x80);
        }
        data.extend_from_slice(b"tail\n");
        let chunks = split(&data, &[EXPAND_PIECE + 3, 2 * EXPAND_PIECE]);
        // -v alone, -A (one pass over the chunk) and -nA (line by line).
        for bits in [8, 8 | 16 | 32, 1 | 8 | 16 | 32] {
            let f = format_of(bits);
            assert_eq!(render_chunks(f, &chunks), reference(f, &data), "{f:?}");
        }
    }

    #[test]
    fn chunk_ending_mid_line_continues_it_unnumbered() {
        let f = format_of(1);
        assert_eq!(
            render(f, &[b"ab", b"c\nd", b"", b"e\n"]),
            "     1\tabc\n     2\tde\n"
        );
        // Short lines near the end of a chunk, where the 32-byte window does not fit.
        assert_eq!(
            render(f, &[b"x\ny\n", b"z"]),
            "     1\tx\n     2\ty\n     3\tz"
        );
    }

    #[test]
    fn lines_of_every_length_around_the_64_byte_window() {
        let mut input = Vec::new();
        for len in 0..100 {
            input.extend((0..len).map(|i| if i % 13 == 5 { b'\t' } else { b'a' + i % 26 }));
            input.extend_from_slice(if len % 3 == 0 { b"\r\n" } else { b"\n" });
        }
        // -n, -nE, -nT, -ET, -vn: line by line, short lines through the window.
        for bits in [1, 1 | 16, 1 | 32, 16 | 32, 1 | 8] {
            let f = format_of(bits);
            assert_eq!(render_chunks(f, &[&input]), reference(f, &input), "{f:?}");
            let chunks = split(&input, &[700, 1000, 1010, 3000, 3050]);
            assert_eq!(render_chunks(f, &chunks), reference(f, &input), "{f:?}");
        }
    }

    #[test]
    fn numbers_continue_across_chunks_and_unterminated_lines() {
        let f = format_of(1);
        assert_eq!(
            render(f, &[b"a", b"b\n\nc"]),
            "     1\tab\n     2\t\n     3\tc"
        );
    }

    #[test]
    fn nonblank_numbering_and_squeeze() {
        let f = Format {
            number_nonblank: true,
            squeeze_blank: true,
            ..Format::default()
        };
        assert_eq!(
            render(f, &[b"\n\n\nx\n\n\n", b"\ny\n"]),
            "\n     1\tx\n\n     2\ty\n"
        );
        // -b wins over -n for empty lines.
        let both = Format { number: true, ..f };
        assert_eq!(
            render(both, &[b"a\n\n", b"\nb\n"]),
            "     1\ta\n\n     2\tb\n"
        );
    }

    #[test]
    fn squeeze_across_chunks() {
        let f = format_of(4 | 16);
        assert_eq!(
            render(f, &[b"a\n", b"\n", b"\n", b"\nb\n\n"]),
            "a$\n$\nb$\n$\n"
        );
    }

    #[test]
    fn nonprinting_and_tabs_and_ends() {
        let f = Format {
            show_nonprinting: true,
            show_ends: true,
            show_tabs: true,
            ..Format::default()
        };
        assert_eq!(
            render(f, &[b"a\tb\x01\x7f\x80\xa0\xff\n"]),
            "a^Ib^A^?M-^@M- M-^?$\n"
        );
        // Under -v a CR is ^M whether or not LF follows, across chunks too.
        assert_eq!(render(f, &[b"a\r", b"\nb\r", b"c"]), "a^M$\nb^Mc");
    }

    #[test]
    fn cr_lf_under_show_ends_across_chunks() {
        let f = Format {
            show_ends: true,
            ..Format::default()
        };
        assert_eq!(render(f, &[b"a\r\rb\r\n\r\n"]), "a\r\rb^M$\n^M$\n");
        assert_eq!(render(f, &[b"abc\r", b"\ndef\r"]), "abc^M$\ndef\r");
        assert_eq!(render(f, &[b"abc\r", b"x\n"]), "abc\rx$\n");
        assert_eq!(render(f, &[b"abc\r", b"", b"\n"]), "abc^M$\n");
        let tabs = Format {
            show_tabs: true,
            ..f
        };
        assert_eq!(render(tabs, &[b"\t\r", b"\n\t\r"]), "^I^M$\n^I\r");
    }

    #[test]
    fn line_numbers_grow_past_six_digits() {
        let mut n = LineNumber::new();
        for _ in 0..1_000_000 {
            n.advance();
        }
        assert_eq!(&n.text[..n.len], b"1000000\t");
        n.advance();
        assert_eq!(&n.text[..n.len], b"1000001\t");
    }

    #[test]
    fn line_numbers_stop_growing_at_gnus_18_digits() {
        let mut n = LineNumber::new();
        n.text[..19].copy_from_slice(b"999999999999999999\t");
        n.len = 19;
        n.advance();
        assert_eq!(&n.text[..n.len], b">00000000000000000\t");
        n.advance();
        assert_eq!(&n.text[..n.len], b">00000000000000001\t");
        n.text[..19].copy_from_slice(b">99999999999999999\t");
        n.advance();
        assert_eq!(&n.text[..n.len], b">00000000000000000\t");
    }

    #[test]
    fn nonprinting_mask_marks_all_but_printable_ascii() {
        for base in (0..=255u8).step_by(32) {
            let window: [u8; 32] = std::array::from_fn(|k| base.wrapping_add(k as u8));
            let mut want = 0;
            for (k, &b) in window.iter().enumerate() {
                let printable = (b' '..=b'~').contains(&b);
                want |= u64::from(!printable) << k;
                // What is not marked, -v leaves as it is.
                let shown = rendered(b, format_of(8 | 16 | 32));
                assert!(!printable || shown.text[..shown.len as usize] == [b]);
            }
            assert_eq!(nonprinting_mask(&window), want, "from {base:#x}");
            assert_eq!(nonprinting_mask_portable(&window), want, "from {base:#x}");
        }
    }

    #[test]
    fn byte_mask_marks_every_match() {
        let mut window = [b'a'; 32];
        assert_eq!(byte_mask(&window, b'\n'), 0);
        for (k, b) in [0usize, 7, 8, 15, 16, 31]
            .into_iter()
            .zip([b'\n', 0x8a, b'\n', 0, 10, 10])
        {
            window[k] = b;
        }
        let want = 1 | 1 << 8 | 1 << 16 | 1 << 31;
        assert_eq!(byte_mask(&window, b'\n'), want);
        assert_eq!(byte_mask_portable(&window, b'\n'), want);
        assert_eq!(byte_mask(&window, 0x8a), 1 << 7);
        assert_eq!(byte_mask_portable(&window, 0x8a), 1 << 7);
    }

    #[test]
    fn first_newline_finds_the_first() {
        for pos in 0..8 {
            for after in pos..8 {
                let mut word = [b'\x0b', 0, 0xff, b'\t', 0x8a, b'x', 9, 11];
                word[pos] = b'\n';
                word[after] = b'\n';
                assert_eq!(first_newline(u64::from_le_bytes(word)), Some(pos));
            }
        }
        assert_eq!(
            first_newline(u64::from_le_bytes(*b"\x0b\x09\x8a\0abcd")),
            None
        );
    }

    #[test]
    fn all_printable_is_exact() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut word = *b"abcdefgh";
                word[pos] = b;
                let want = word.iter().all(|c| (b' '..=b'~').contains(c));
                assert_eq!(
                    all_printable(u64::from_le_bytes(word)),
                    want,
                    "{b:#x} at {pos}"
                );
            }
        }
    }
}
