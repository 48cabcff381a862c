//! File names as GNU tools show them in messages (`quotef`: gnulib's shell-escape quoting, with
//! `:` quoted too): a plain name stays bare, anything a shell or a terminal would take
//! specially is quoted, and control bytes or invalid UTF-8 become `$'\n'`-style escapes. The
//! result is printable text that a shell reads back as the very name, so a crafted name can
//! neither forge a line of output nor send escape sequences to the terminal.
//!
//! Printable means what the `C.UTF-8` locale calls printable, approximated as "valid UTF-8 and
//! not a Unicode control character"; GNU in a UTF-8 locale shows the same names.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// One piece of a name: a character shown as itself, or a byte that must be escaped.
#[derive(Clone, Copy)]
enum Unit {
    Char(char),
    Byte(u8),
}

/// `name` quoted for a message, as GNU `cat`, `ls`, `cp`... print it in their errors.
pub fn quote(name: &OsStr) -> String {
    let bytes = name.as_bytes();
    let units = units(bytes);
    let first_only = |i: usize| i == 0;
    let alone = bytes.len() == 1;
    if !units.is_empty()
        && units
            .iter()
            .enumerate()
            .all(|(i, &u)| is_bare(u, first_only(i), alone))
    {
        return units.iter().map(|u| unit_char(*u)).collect();
    }
    let has_single_quote = units.iter().any(|u| matches!(u, Unit::Char('\'')));
    if has_single_quote
        && units
            .iter()
            .enumerate()
            .all(|(i, &u)| fits_double_quotes(u, first_only(i), alone))
    {
        // An apostrophe reads better in double quotes than as '\'' (GNU does the same).
        let inner: String = units.iter().map(|u| unit_char(*u)).collect();
        return format!("\"{inner}\"");
    }
    shell_escape(&units)
}

/// An address for a message: as it is, unless it holds a control character (a socket path may
/// hold any byte), then in [`quote`]'s escaped form, so it can forge no line.
pub fn address(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(char::is_control) {
        quote(OsStr::new(value)).into()
    } else {
        value.into()
    }
}

/// A typed value (an address, a duration) for a usage message: always in quotes, as the
/// messages have always shown values (`'5 parsecs'`), and in [`quote`]'s escaped form when it
/// holds what a terminal would act on, so a crafted value can forge no line and send no
/// escape sequence.
pub fn quoted(value: &str) -> String {
    let shown = quote(OsStr::new(value));
    if shown.starts_with(['\'', '"']) {
        shown
    } else {
        format!("'{shown}'")
    }
}

/// Splits `bytes` into printable characters and bytes to escape (control characters, and each
/// byte of an invalid UTF-8 sequence).
fn units(bytes: &[u8]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                units.extend(c.encode_utf8(&mut buf).bytes().map(Unit::Byte));
            } else {
                units.push(Unit::Char(c));
            }
        }
        units.extend(chunk.invalid().iter().copied().map(Unit::Byte));
    }
    units
}

fn unit_char(unit: Unit) -> char {
    match unit {
        Unit::Char(c) => c,
        // Only called on names without escapes.
        Unit::Byte(b) => char::from(b),
    }
}

/// Characters no shell treats specially anywhere in a word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "%+,-./_]@".contains(c) || !c.is_ascii()
}

/// Whether a unit can be shown without any quoting. `#` and `~` are special only at the start
/// of a word, `{` and `}` only alone; `:` is quoted so that `name: reason` cannot be faked.
fn is_bare(unit: Unit, first: bool, alone: bool) -> bool {
    match unit {
        Unit::Byte(_) => false,
        Unit::Char(c) => {
            is_plain(c) || (matches!(c, '#' | '~') && !first) || (matches!(c, '{' | '}') && !alone)
        }
    }
}

/// Whether a unit means the same inside double quotes, for shells and C alike: no `$`, `` ` ``,
/// `\`, `"`, `!` and no escapes.
fn fits_double_quotes(unit: Unit, first: bool, alone: bool) -> bool {
    match unit {
        Unit::Byte(_) => false,
        Unit::Char(c) => {
            is_plain(c)
                || matches!(c, ' ' | '\'' | ':')
                || (matches!(c, '#' | '~') && first)
                || (matches!(c, '{' | '}') && alone)
        }
    }
}

/// The always-quoted form: `'...'` around printable runs, `$'...'` around escapes, `'\''` for
/// a single quote.
fn shell_escape(units: &[Unit]) -> String {
    let mut out = String::from("'");
    // Inside `$'...'` (opened by an escape) rather than plain `'...'`.
    let mut in_dollar = false;
    for &unit in units {
        match unit {
            Unit::Byte(b) => {
                if !in_dollar {
                    out.push_str("'$'");
                    in_dollar = true;
                }
                out.push_str(&escape(b));
            }
            Unit::Char('\'') => {
                // Ends whichever quoting is open, adds a quoted quote, reopens plain quoting.
                out.push_str("'\\''");
                in_dollar = false;
            }
            Unit::Char(c) => {
                if in_dollar {
                    out.push_str("''");
                    in_dollar = false;
                }
                out.push(c);
            }
        }
    }
    out.push('\'');
    out
}

/// A byte as `$'...'` writes it: the C letter where there is one, else three octal digits.
fn escape(b: u8) -> String {
    match b {
        0x07 => r"\a".into(),
        0x08 => r"\b".into(),
        0x0c => r"\f".into(),
        b'\n' => r"\n".into(),
        b'\r' => r"\r".into(),
        b'\t' => r"\t".into(),
        0x0b => r"\v".into(),
        _ => format!("\\{b:03o}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::ffi::OsStrExt;

    fn q(bytes: &[u8]) -> String {
        quote(OsStr::from_bytes(bytes))
    }

    #[test]
    fn plain_names_stay_bare() {
        for name in [
            "a",
            "dir/f.txt",
            "a,b",
            "a%b+c@d",
            "é",
            "x~",
            "x#",
            "{a",
            "a}",
            "-",
        ] {
            assert_eq!(q(name.as_bytes()), name);
        }
    }

    #[test]
    fn shell_specials_are_single_quoted() {
        assert_eq!(q(b"a b"), "'a b'");
        assert_eq!(q(b"a:b"), "'a:b'");
        assert_eq!(q(b"a*b"), "'a*b'");
        assert_eq!(q(b"a?b"), "'a?b'");
        assert_eq!(q(b"a\\b"), "'a\\b'");
        assert_eq!(q(b"~x"), "'~x'");
        assert_eq!(q(b"{"), "'{'");
        assert_eq!(q(b""), "''");
    }

    #[test]
    fn apostrophes_prefer_double_quotes() {
        assert_eq!(q(b"it's"), "\"it's\"");
        assert_eq!(q(b"a'b c"), "\"a'b c\"");
        assert_eq!(q(b"it's:x"), "\"it's:x\"");
        assert_eq!(q(b"it's{x"), "'it'\\''s{x'");
    }

    #[test]
    fn control_bytes_and_invalid_utf8_are_escaped() {
        assert_eq!(q(b"a\nb"), "'a'$'\\n''b'");
        assert_eq!(q(b"\xff"), "''$'\\377'");
        assert_eq!(q(b"\x1b[31mred"), "''$'\\033''[31mred'");
        assert_eq!(q(b"a\x01'b"), "'a'$'\\001'\\''b'");
        assert_eq!(q(b"a\xe2\x82"), "'a'$'\\342\\202'");
        assert_eq!(q("\u{85}".as_bytes()), "''$'\\302\\205'");
    }

    #[test]
    fn typed_values_are_always_in_quotes_and_escaped_when_needed() {
        assert_eq!(quoted("5s"), "'5s'");
        assert_eq!(quoted("host:7"), "'host:7'");
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted("it's"), "\"it's\"");
        assert_eq!(quoted("evil\nx:80"), "'evil'$'\\n''x:80'");
        assert_eq!(quoted("\u{1b}]0;t\u{7}"), "''$'\\033'']0;t'$'\\a'");
    }

    /// Undoes the quoting the way a POSIX shell with `$'...'` reads a word.
    fn unquote(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    for c in chars.by_ref().take_while(|&c| c != '\'') {
                        out.extend_from_slice(c.to_string().as_bytes());
                    }
                }
                '"' => {
                    for c in chars.by_ref().take_while(|&c| c != '"') {
                        out.extend_from_slice(c.to_string().as_bytes());
                    }
                }
                '\\' => out.extend_from_slice(chars.next().unwrap().to_string().as_bytes()),
                '$' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        match c {
                            '\'' => break,
                            '\\' => {
                                let e = chars.next().unwrap();
                                let byte = match e {
                                    'a' => 7,
                                    'b' => 8,
                                    'f' => 12,
                                    'n' => b'\n',
                                    'r' => b'\r',
                                    't' => b'\t',
                                    'v' => 11,
                                    d => {
                                        let digits: String =
                                            [d, chars.next().unwrap(), chars.next().unwrap()]
                                                .iter()
                                                .collect();
                                        u8::from_str_radix(&digits, 8).unwrap()
                                    }
                                };
                                out.push(byte);
                            }
                            c => out.extend_from_slice(c.to_string().as_bytes()),
                        }
                    }
                }
                c => out.extend_from_slice(c.to_string().as_bytes()),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn output_is_printable_and_reads_back_as_the_name(
            name in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\''), Just(b' '), Just(b'\n'), Just(0x1b)],
                0..24,
            )
        ) {
            let shown = q(&name);
            prop_assert!(
                !shown.chars().any(char::is_control),
                "control character in {:?}", shown
            );
            prop_assert_eq!(unquote(&shown), name);
        }
    }
}
