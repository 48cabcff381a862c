//! The command line's value parsers for numbers and durations (plain seconds too, as sleep,
//! nc and ping take them): a bad value is a usage error (exit 2) that says what is wrong and what is
//! accepted, before any I/O.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::ui::quote::quoted;

/// The longest duration accepted: far beyond any use, and far enough below what the clock's
/// arithmetic can hold that a deadline computed from it never overflows.
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600); // humantime's year: 365.25 days

/// The shortest duration accepted: below it a timeout or wait is as useless as zero (the
/// timers tick in milliseconds).
const MIN_DURATION: Duration = Duration::from_millis(1);

/// What a message about a duration's limits ends with.
const DURATION_FORMS: &str = "e.g. 500ms, 30s, 5m";

/// What a message about a duration's form ends with: plain seconds are shown first.
const SECONDS_FORMS: &str = "e.g. 0.2, 5, 500ms, 30s";

/// Parses a duration: plain seconds as sleep(1), nc -w and ping -i take them (`5`, `0.2`,
/// `.5`), or a number and a unit (`500ms`, `30s`, `2m`, `1h 30m`); at least 1ms (a shorter
/// timeout or wait would make its option useless), at most 100 years. One rule for every
/// DURATION of the command line, so that `--idle-timeout 5` means what `-w 5` does.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let shown = quoted(s);
    let problem = |what: &str| format!("{shown}: {what} ({DURATION_FORMS})");
    if s.trim_start().starts_with('-') {
        return Err(problem("a duration cannot be negative"));
    }
    let d = match plain_seconds(s.trim()) {
        Some(Some(d)) => d,
        Some(None) => return Err(problem(TOO_LONG)),
        None => match humantime::parse_duration(s.trim()) {
            Ok(d) => d,
            // A limit, worded as every other limit is.
            Err(humantime::DurationError::NumberOverflow) => return Err(problem(TOO_LONG)),
            Err(e) => {
                return Err(format!(
                    "{shown}: {} ({SECONDS_FORMS})",
                    duration_problem(&e)
                ));
            }
        },
    };
    if d < MIN_DURATION {
        return Err(problem("a duration must be at least 1ms"));
    }
    if d > MAX_DURATION {
        return Err(problem(TOO_LONG));
    }
    Ok(d)
}

/// `t` as plain seconds (`5`, `0.2`, `.5`, `5.`) to the nanosecond (further digits are
/// dropped): `None` when it is not a plain number, `Some(None)` when it is one too large for
/// a clock.
fn plain_seconds(t: &str) -> Option<Option<Duration>> {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + frac.len() == 0 || !digits(whole) || !digits(frac) {
        return None;
    }
    let secs = if whole.is_empty() {
        Some(0)
    } else {
        whole.parse::<u64>().ok()
    };
    let nanos = (0..9).fold(0u32, |n, i| {
        let digit = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
        n * 10 + u32::from(digit)
    });
    Some(secs.map(|secs| Duration::new(secs, nanos)))
}

/// Parses a local IP address to bind to (`-s`): an IPv4 or IPv6 address, brackets allowed.
pub fn parse_source(s: &str) -> Result<std::net::IpAddr, String> {
    let t = s.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    bare.parse().map_err(|_| {
        format!(
            "{}: not an IP address of this host (e.g. 127.0.0.1, ::1); a source is an \
             address, not a name",
            quoted(s)
        )
    })
}

/// Parses a local port to bind to (`-p`): 1 to 65535.
pub fn parse_source_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) => Err(format!(
            "{}: port 0 is any port, which is what no -p means",
            quoted(s)
        )),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("{}: not a port (1 to 65535)", quoted(s))),
    }
}

/// The one wording of a duration past [`MAX_DURATION`].
const TOO_LONG: &str = "too long: at most 100 years";

/// humantime's error in a user's words (its own speak of byte offsets: "expected number at 0").
fn duration_problem(err: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match err {
        E::Empty => "a duration is needed".into(),
        E::NumberOverflow => TOO_LONG.into(),
        E::UnknownUnit { unit, .. } if unit.is_empty() => {
            "a unit is needed after the number".into()
        }
        E::UnknownUnit { unit, .. } => format!("unknown unit '{unit}'"),
        E::InvalidCharacter(_) | E::NumberExpected(_) => {
            "not a duration: seconds, or a number followed by a unit".into()
        }
    }
}

/// Parses a count that must be at least 1, such as `--max-connections`.
pub fn parse_count(s: &str) -> Result<NonZeroUsize, String> {
    use std::num::IntErrorKind;
    let shown = quoted(s);
    let n = s.trim().parse::<usize>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow => format!("{shown}: too large (at most {})", usize::MAX),
        _ => format!("{shown}: not a whole number (e.g. 100)"),
    })?;
    NonZeroUsize::new(n).ok_or_else(|| format!("{shown}: must be at least 1"))
}

/// Parses a file mode in octal, such as `660` or `0600`, as `chmod` takes it.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim();
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|_| !digits.is_empty())
        .ok_or_else(|| {
            format!(
                "{}: not a file mode in octal (e.g. 600, 660, 0666)",
                quoted(s)
            )
        })?;
    if mode > 0o777 {
        return Err(format!(
            "{}: at most 777 (setuid, setgid and sticky mean nothing on a socket)",
            quoted(s)
        ));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("100y"), Ok(MAX_DURATION));
        assert!(parse_duration("101y").is_err());
        assert!(parse_duration("300000000000y").is_err());
    }

    #[test]
    fn durations_under_a_millisecond_are_rejected_saying_what_is_accepted() {
        for short in ["0s", "0ms", "0", "0h 0m", " 0s ", "1ns", "1us", "999us"] {
            let err = parse_duration(short).unwrap_err();
            assert!(
                err.contains("a duration must be at least 1ms (e.g. 500ms, 30s, 5m)"),
                "{short:?}: {err}"
            );
        }
        assert_eq!(
            parse_duration("1ns"),
            Err("'1ns': a duration must be at least 1ms (e.g. 500ms, 30s, 5m)".into())
        );
        assert_eq!(parse_duration("1000us"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn too_long_and_negative_durations_have_one_wording() {
        let want = "too long: at most 100 years (e.g. 500ms, 30s, 5m)";
        assert_eq!(parse_duration("101y"), Err(format!("'101y': {want}")));
        let overflow = "300000000000000000000y";
        assert_eq!(
            parse_duration(overflow),
            Err(format!("'{overflow}': {want}"))
        );
        assert_eq!(
            parse_duration("-1s"),
            Err("'-1s': a duration cannot be negative (e.g. 500ms, 30s, 5m)".into())
        );
    }

    #[test]
    fn duration_messages_do_not_speak_the_parser() {
        for (input, want) in [
            ("soon", "seconds, or a number followed by a unit"),
            ("5 parsecs", "unknown unit 'parsecs'"),
            ("", "a duration is needed"),
        ] {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(!err.contains(" at "), "no byte offsets: {err}");
        }
    }

    /// A bare number is seconds wherever a DURATION goes, as sleep(1), nc -w and ping -i
    /// take it: `--idle-timeout 5` is `-w 5`.
    #[test]
    fn plain_seconds_or_durations() {
        assert_eq!(parse_duration("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration(" .5 "), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2."), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.0015"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        for short in ["0", "0.0", "0.0009", "0.0000000001"] {
            assert_eq!(
                parse_duration(short),
                Err(format!(
                    "'{short}': a duration must be at least 1ms (e.g. 500ms, 30s, 5m)"
                ))
            );
        }
        for long in [
            "3155760001",
            "99999999999999999999",
            "99999999999999999999.5",
        ] {
            let err = parse_duration(long).unwrap_err();
            assert!(err.contains("too long: at most 100 years"), "{long}: {err}");
        }
        assert_eq!(
            parse_duration("-0.2"),
            Err("'-0.2': a duration cannot be negative (e.g. 500ms, 30s, 5m)".into())
        );
        assert_eq!(
            parse_duration("soon"),
            Err(
                "'soon': not a duration: seconds, or a number followed by a unit \
                 (e.g. 0.2, 5, 500ms, 30s)"
                    .into()
            )
        );
        for bad in [".", "1.2.3", "0,2", "1e3", ""] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.ends_with("(e.g. 0.2, 5, 500ms, 30s)"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sources() {
        assert_eq!(parse_source("127.0.0.1"), Ok([127, 0, 0, 1].into()));
        assert_eq!(
            parse_source("[::1]"),
            Ok(std::net::Ipv6Addr::LOCALHOST.into())
        );
        assert!(parse_source("localhost").is_err());
        assert_eq!(parse_source_port("5000"), Ok(5000));
        assert!(parse_source_port("0").is_err());
        assert!(parse_source_port("70000").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("3"), Ok(NonZeroUsize::new(3).unwrap()));
        assert_eq!(parse_count("0"), Err("'0': must be at least 1".into()));
        let err = parse_count("many").unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
        let err = parse_count("99999999999999999999").unwrap_err();
        assert!(
            err.contains("too large (at most 18446744073709551615)"),
            "{err}"
        );
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert!(parse_mode("9").is_err());
        assert!(parse_mode("rw").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("7777").unwrap_err().contains("at most 777"));
        assert!(parse_mode("1777").is_err());
    }
}
