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

/// A GNU-style line counter kept as ASCII digits, incremented in place: cheaper than
/// formatting an integer for every line, and printed as `%6d\t` like GNU cat.
#[derive(Debug, Clone)]
struct LineNumber {
    /// Right-aligned digits followed by a tab; `start` is where printing begins.
    buf: [u8; 21],
    /// First byte to print (never more than 6 digits from the end unless the number grows).
    start: usize,
    /// First significant digit.
    first_digit: usize,
}

impl LineNumber {
    const TAB: usize = 20;

    fn new() -> Self {
        let mut buf = [b' '; 21];
        buf[Self::TAB - 1] = b'0';
        buf[Self::TAB] = b'\t';
        LineNumber {
            buf,
            start: Self::TAB - 6,
            first_digit: Self::TAB - 1,
        }
    }

    /// Advances to the next number and returns its text (`     7\t`).
    fn next(&mut self) -> &[u8] {
        let mut i = Self::TAB - 1;
        loop {
            if self.buf[i] < b'9' {
                self.buf[i] = self.buf[i].max(b'0') + 1;
                break;
            }
            self.buf[i] = b'0';
            if i == 0 {
                // 20 digits of lines cannot happen in practice; GNU prints '>' here too.
                self.buf[0] = b'>';
                break;
            }
            i -= 1;
            if i < self.first_digit {
                self.buf[i] = b'1';
                self.first_digit = i;
                break;
            }
        }
        self.start = self.start.min(self.first_digit);
        &self.buf[self.start..]
    }
}

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
    /// What each byte becomes under `-v` (and `-T`), precomputed: up to 4 bytes.
    table: Box<[([u8; 4], u8); 256]>,
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
        let numbers = self.format.number || self.format.number_nonblank;
        let number_empty = !self.format.number_nonblank;
        // Under -v a CR is always ^M; without it, -E marks only the CR of a CR LF.
        let mark_cr = self.format.show_ends && !self.format.show_nonprinting;
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(if input[0] == b'\n' { b"^M" } else { b"\r" });
        }
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'\n' {
                self.newlines += 1;
                if self.newlines > 0 {
                    // An empty line.
                    if self.newlines >= 2 {
                        self.newlines = 2;
                        if self.format.squeeze_blank {
                            i += 1;
                            continue;
                        }
                    }
                    if numbers && number_empty {
                        out.extend_from_slice(self.line.next());
                    }
                }
                if self.format.show_ends {
                    out.push(b'$');
                }
                out.push(b'\n');
                i += 1;
                continue;
            }
            if self.newlines >= 0 && numbers {
                out.extend_from_slice(self.line.next());
            }
            let end = memchr(b'\n', &input[i..]).map_or(input.len(), |p| i + p);
            let line = &input[i..end];
            match line.split_last() {
                Some((b'\r', rest)) if mark_cr => {
                    self.segment(rest, out);
                    if end < input.len() {
                        out.extend_from_slice(b"^M");
                    } else {
                        self.pending_cr = true;
                    }
                }
                _ => self.segment(line, out),
            }
            self.newlines = -1;
            i = end;
        }
    }

    /// Ends the output: a CR still held back had no LF after it, so it is itself.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }

    /// Renders bytes of one line (no newline among them).
    fn segment(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.format.show_nonprinting {
            out.reserve(bytes.len() * 4);
            for &b in bytes {
                let (text, len) = &self.table[b as usize];
                out.extend_from_slice(&text[..*len as usize]);
            }
        } else if self.format.show_tabs {
            let mut rest = bytes;
            while let Some(p) = memchr(b'\t', rest) {
                out.extend_from_slice(&rest[..p]);
                out.extend_from_slice(b"^I");
                rest = &rest[p + 1..];
            }
            out.extend_from_slice(rest);
        } else {
            out.extend_from_slice(bytes);
        }
    }
}

/// GNU cat's rendering of one byte under `-v` (tabs stay tabs unless `-T`).
fn rendered(b: u8, format: Format) -> ([u8; 4], u8) {
    let one = |x: u8| ([x, 0, 0, 0], 1);
    let two = |x: u8, y: u8| ([x, y, 0, 0], 2);
    if b == b'\t' {
        return if format.show_tabs {
            two(b'^', b'I')
        } else {
            one(b)
        };
    }
    if !format.show_nonprinting {
        return one(b);
    }
    match b {
        b'\n' => one(b),
        0..=31 => two(b'^', b + 64),
        32..=126 => one(b),
        127 => two(b'^', b'?'),
        128..=159 => ([b'M', b'-', b'^', b - 128 + 64], 4),
        160..=254 => ([b'M', b'-', b - 128, 0], 3),
        255 => ([b'M', b'-', b'^', b'?'], 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, chunks: &[&[u8]]) -> String {
        let mut r = Renderer::new(format);
        let mut out = Vec::new();
        for c in chunks {
            r.render(c, &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn numbers_continue_across_chunks_and_unterminated_lines() {
        let f = Format {
            number: true,
            ..Format::default()
        };
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
    }

    #[test]
    fn cr_lf_under_show_ends_across_chunks() {
        let f = Format {
            show_ends: true,
            ..Format::default()
        };
        assert_eq!(render(f, &[b"a\r\rb\r\n\r\n"]), "a\r\rb^M$\n^M$\n");
        assert_eq!(render(f, &[b"abc\r", b"\ndef\r"]), "abc^M$\ndef");
        assert_eq!(render(f, &[b"abc\r", b"x\n"]), "abc\rx$\n");
        let mut r = Renderer::new(f);
        let mut out = Vec::new();
        r.render(b"abc\r", &mut out);
        r.finish(&mut out);
        assert_eq!(out, b"abc\r");
    }

    #[test]
    fn line_numbers_grow_past_six_digits() {
        let mut n = LineNumber::new();
        for _ in 0..999_999 {
            n.next();
        }
        assert_eq!(n.next(), b"1000000\t");
        assert_eq!(n.next(), b"1000001\t");
    }
}
