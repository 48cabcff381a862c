//! The command line's value parsers for numbers and durations: a bad value is a usage error
//! (exit 2) that says what is wrong and what is accepted, before any I/O.

use std::num::NonZeroUsize;
use std::time::Duration;

/// The longest duration accepted: far beyond any use, and far enough below what the clock's
/// arithmetic can hold that a deadline computed from it never overflows.
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600); // humantime's year: 365.25 days

/// What every duration message ends with.
const DURATION_FORMS: &str = "e.g. 500ms, 30s, 5m";

/// Parses a duration such as `500ms`, `30s`, `2m` or `1h 30m`: more than zero (a zero timeout
/// or wait would make its option useless), at most 100 years.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}': {} ({DURATION_FORMS})", duration_problem(&e)))?;
    if d.is_zero() {
        return Err(format!(
            "'{s}': a duration must be more than zero ({DURATION_FORMS})"
        ));
    }
    if d > MAX_DURATION {
        return Err(format!("'{s}' is too long: at most 100 years"));
    }
    Ok(d)
}

/// humantime's error in a user's words (its own speak of byte offsets: "expected number at 0").
fn duration_problem(err: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match err {
        E::Empty => "a duration is needed".into(),
        E::NumberOverflow => "too long: at most 100 years".into(),
        E::UnknownUnit { unit, .. } if unit.is_empty() => {
            "a unit is needed after the number".into()
        }
        E::UnknownUnit { unit, .. } => format!("unknown unit '{unit}'"),
        E::InvalidCharacter(_) | E::NumberExpected(_) => {
            "not a duration: a number followed by a unit".into()
        }
    }
}

/// Parses a count that must be at least 1, such as `--max-connections`.
pub fn parse_count(s: &str) -> Result<NonZeroUsize, String> {
    let n = s
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("'{s}': not a whole number (e.g. 100)"))?;
    NonZeroUsize::new(n).ok_or_else(|| format!("'{s}': must be at least 1"))
}

/// Parses a file mode in octal, such as `660` or `0600`, as `chmod` takes it.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim();
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| !digits.is_empty() && *m <= 0o7777)
        .ok_or_else(|| format!("'{s}': not a file mode in octal (e.g. 600, 660, 0666)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1ns"), Ok(Duration::from_nanos(1)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_duration("100y"), Ok(MAX_DURATION));
        assert!(parse_duration("101y").is_err());
        assert!(parse_duration("300000000000y").is_err());
    }

    #[test]
    fn zero_durations_are_rejected_saying_what_is_accepted() {
        for zero in ["0s", "0ms", "0", "0h 0m", " 0s "] {
            let err = parse_duration(zero).unwrap_err();
            assert!(
                err.contains("a duration must be more than zero (e.g. 500ms, 30s, 5m)"),
                "{zero:?}: {err}"
            );
        }
    }

    #[test]
    fn duration_messages_do_not_speak_the_parser() {
        for (input, want) in [
            ("soon", "a number followed by a unit"),
            ("5", "a unit is needed"),
            ("5 parsecs", "unknown unit 'parsecs'"),
            ("", "a duration is needed"),
        ] {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(!err.contains(" at "), "no byte offsets: {err}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("3"), Ok(NonZeroUsize::new(3).unwrap()));
        assert_eq!(parse_count("0"), Err("'0': must be at least 1".into()));
        let err = parse_count("many").unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
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
    }
}
