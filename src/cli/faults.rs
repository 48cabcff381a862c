//! `echo-server`'s option groups for testing clients (fault injection: `--delay`,
//! `--bandwidth`, `--close-after`, `--reset-probability`, `--drop-probability`, `--seed`) and
//! for choosing who may connect (`--allow`, `--deny`, `--max-per-ip`, `--rate-limit`), with
//! their value parsers. Every option is off by default; a bad value is a usage error that
//! says which forms are accepted.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Args;

use super::endpoints::usage_error;
use super::values::parse_count;
use crate::net::endpoint::Endpoint;
use crate::ui::quote::quoted;

/// Fault injection, for testing how clients cope with a slow, throttled or failing server.
/// Each fault asked for is said at start; the status line and summary count what was done.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Fault injection (for testing clients; all off by default)")]
pub struct Faults {
    /// Wait this long before echoing what the client sends (TCP, Unix, TLS: once per message
    /// rather than per read: what arrives during the wait, up to 1 MiB, goes back right after
    /// it, in order; UDP: per batch of datagrams received together). DIST is a fixed duration (50ms), a range drawn from uniformly
    /// (10ms..50ms), or weighted choices as fortio's echo takes them (150us:10,2ms:5: 150us
    /// two times in three, 2ms one in three). Timers tick in milliseconds: shorter delays
    /// last about 1ms.
    #[arg(long, value_name = "DIST", value_parser = parse_delay)]
    pub delay: Option<Delay>,

    /// Echo at most this fast, per connection (per socket over UDP): a token bucket holding
    /// 1/20 s of it, so writes are paced rather than bursty; the client is slowed by TCP's
    /// flow control. RATE is a number and a unit: B/s, KB/s, MB/s, GB/s (powers of 1000),
    /// KiB/s, MiB/s, GiB/s (of 1024), or bit/s, kbit/s, Mbit/s, Gbit/s (the "/s" may be left
    /// out): 100KiB/s, 1MB/s, 8Mbit.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub bandwidth: Option<Rate>,

    /// Close each connection cleanly (a FIN; over TLS close_notify first) once this many
    /// bytes were echoed (1000, 64KiB, 1M: the echo stops there, mid-message if need be) or
    /// this long after it opened (over TLS: after the handshake; 2s, 500ms, 1m: 1M is a MiB,
    /// 1m a minute): what a client sees of a server that ends early. What the client still sends is read and discarded for up to
    /// 2s, so the close is not turned into a reset by unread data. TCP, Unix and TLS.
    #[arg(long, value_name = "BYTES|DURATION", value_parser = parse_close_after)]
    pub close_after: Option<CloseAfter>,

    /// Reset this share of connections (0 to 1: 0.3 is three in ten, drawn per connection)
    /// right after their first echo (so a client sees one reply, then the reset): SO_LINGER
    /// 0 over TCP and TLS, an RST with no close_notify. A Unix socket has no reset: its
    /// client sees the end of the stream (or ECONNRESET if it had sent more).
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    pub reset_probability: Option<f64>,

    /// UDP: drop this share of datagrams (0 to 1, drawn per datagram) instead of echoing
    /// them, as a lossy path would.
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    pub drop_probability: Option<f64>,

    /// Seed the fault injection's random choices (delays, resets, drops), so a run can be
    /// repeated: the same seed makes the same choices for the same order of connections and
    /// messages. Default: a fresh random seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Who may connect.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Who may connect (TCP, TLS and UDP clients)")]
pub struct Admission {
    /// Serve only clients in this network (repeatable, as ncat's --allow): CIDR as
    /// 192.168.0.0/16, 10.1.2.3 (a bare address: /32), 2001:db8::/32 or ::1 (/128); bits past
    /// the prefix are ignored, as ncat does (10.1.2.3/8 is 10.0.0.0/8), and names are not
    /// looked up. An IPv4 client of a dual-stack listener (::ffff:a.b.c.d) is matched as IPv4,
    /// and an IPv4-mapped network as the IPv4 one (::ffff:10.0.0.0/104 is 10.0.0.0/8; ::/0
    /// holds no IPv4 client, 0.0.0.0/0 all of them). Others are reset
    /// at once (UDP: their datagrams dropped), counted in the status line and summary, and
    /// logged (at most one line a second). Behind --proxy-protocol the client judged is the
    /// one the header names (so a Unix socket's clients can be judged too); a header naming no
    /// address (v1 UNKNOWN, v2 LOCAL) leaves the proxy's own, and over Unix none: outside
    /// every --allow network.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub allow: Vec<Cidr>,

    /// Refuse clients in this network (repeatable, as ncat's --deny; forms as --allow). Deny
    /// wins over allow: a client in both is refused.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub deny: Vec<Cidr>,

    /// Serve at most N connections at once from one client IP address; further ones from it
    /// are reset at once (not queued), counted and logged.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_per_ip: Option<NonZeroUsize>,

    /// UDP: echo at most N datagrams a second from one source IP address (N/s or N/m, e.g.
    /// 100/s): a token bucket per source holding one second's worth (at least 1), in a table
    /// of at most 4096 sources. Excess datagrams are dropped and counted.
    #[arg(long, value_name = "N/s", value_parser = parse_rate_limit)]
    pub rate_limit: Option<f64>,
}

/// Refuses options that mean nothing for `endpoint`'s transport: stream-only faults and
/// `--max-per-ip` with UDP, `--drop-probability` and `--rate-limit` with a stream, address
/// rules with a Unix socket (whose clients have no address) unless every client is `proxied`:
/// named by a PROXY protocol header (`--proxy-protocol`, not `=optional`).
pub fn check_transport(
    faults: &Faults,
    admission: &Admission,
    endpoint: &Endpoint<std::net::SocketAddr>,
    proxied: bool,
) -> Result<(), clap::Error> {
    let problem = match endpoint {
        Endpoint::Udp(_) => {
            if faults.close_after.is_some() {
                Some("--close-after closes connections, and UDP has none")
            } else if faults.reset_probability.is_some() {
                Some("--reset-probability resets connections, and UDP has none")
            } else if admission.max_per_ip.is_some() {
                Some("--max-per-ip limits connections, and UDP has none (use --rate-limit)")
            } else {
                None
            }
        }
        _ if faults.drop_probability.is_some() => Some(
            "--drop-probability drops UDP datagrams; for a stream use --reset-probability or \
             --close-after",
        ),
        _ if admission.rate_limit.is_some() => Some(
            "--rate-limit limits UDP datagrams; for a stream use --max-per-ip or \
             --max-connections",
        ),
        Endpoint::Unix(_) if proxied => None,
        Endpoint::Unix(_) if !admission.allow.is_empty() || !admission.deny.is_empty() => Some(
            "--allow and --deny match IP addresses, and a Unix socket's clients have none \
             unless a PROXY header names them (--proxy-protocol; else use --mode for who may \
             connect)",
        ),
        Endpoint::Unix(_) if admission.max_per_ip.is_some() => Some(
            "--max-per-ip counts IP addresses, and a Unix socket's clients have none unless a \
             PROXY header names them (--proxy-protocol; else use --max-connections)",
        ),
        _ => None,
    };
    match problem {
        Some(why) => Err(usage_error(
            "echo-server",
            format!("{why}: cannot be used with {endpoint}"),
        )),
        None => Ok(()),
    }
}

/// `--delay`'s distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Delay {
    /// Always this long.
    Fixed(Duration),
    /// Uniformly between the two (inclusive).
    Range(Duration, Duration),
    /// Each duration with its weight (all weights at least 1).
    Weighted(Vec<(Duration, u32)>),
}

impl std::fmt::Display for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Delay::Fixed(t) => f.write_str(&d(t)),
            Delay::Range(a, b) => write!(f, "{}..{} (uniform)", d(a), d(b)),
            Delay::Weighted(choices) => {
                let parts: Vec<String> = choices
                    .iter()
                    .map(|(t, w)| format!("{}:{w}", d(t)))
                    .collect();
                write!(f, "{} (weighted)", parts.join(","))
            }
        }
    }
}

/// What every `--delay` message ends with.
const DELAY_FORMS: &str = "a duration (50ms), a range (10ms..50ms) or weighted choices \
                           (150us:10,2ms:5)";

/// The longest delay: longer is no longer a slow server but a dead one (use no echo at all).
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Parses `--delay`: `50ms`, `10ms..50ms` or `150us:10,2ms:5`.
pub fn parse_delay(s: &str) -> Result<Delay, String> {
    let t = s.trim();
    let problem = |what: String| format!("{}: {what} (accepted: {DELAY_FORMS})", quoted(s));
    if t.contains(':') || t.contains(',') {
        let mut choices = Vec::new();
        for part in t.split(',') {
            let (time, weight) = part
                .split_once(':')
                .ok_or_else(|| problem(format!("{} has no :WEIGHT", quoted(part.trim()))))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| *w > 0)
                .ok_or_else(|| {
                    problem(format!(
                        "{}: a weight is a whole number from 1",
                        quoted(weight)
                    ))
                })?;
            choices.push((delay_time(time).map_err(problem)?, weight));
        }
        let total: u64 = choices.iter().map(|(_, w)| u64::from(*w)).sum();
        if total > u64::from(u32::MAX) {
            return Err(problem("the weights add up to too much".into()));
        }
        return Ok(Delay::Weighted(choices));
    }
    if let Some((low, high)) = t.split_once("..") {
        let (low, high) = (
            delay_time(low).map_err(problem)?,
            delay_time(high).map_err(problem)?,
        );
        if low > high {
            return Err(problem("the range's low end is above its high end".into()));
        }
        return Ok(Delay::Range(low, high));
    }
    // A single duration's own message already names the value.
    delay_time(t)
        .map(Delay::Fixed)
        .map_err(|what| format!("{what} (accepted: {DELAY_FORMS})"))
}

/// One duration of a `--delay`: 0 to an hour, any unit humantime knows (us, ms, s, m).
fn delay_time(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.parse::<f64>().is_ok() {
        // Every other DURATION takes plain seconds; a delay does not, as tc netem reads a bare
        // number as microseconds: say so rather than guess.
        return Err(format!(
            "{} has no unit: write {t}s, {t}ms or {t}us (a bare number is not taken for a delay)",
            quoted(t)
        ));
    }
    let d = humantime::parse_duration(t)
        .map_err(|_| format!("{} is not a duration such as 150us, 50ms or 2s", quoted(t)))?;
    if d > MAX_DELAY {
        return Err(format!("{} is too long (at most 1h)", quoted(t)));
    }
    Ok(d)
}

/// A rate in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub f64);

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s", crate::ui::bytes(self.0 as u64))
    }
}

/// What every `--bandwidth` message ends with.
const RATE_FORMS: &str = "e.g. 100KiB/s, 1MB/s, 8Mbit/s; units B, KB, MB, GB, KiB, MiB, GiB, \
                          bit, kbit, Mbit, Gbit, each with or without /s";

/// Parses `--bandwidth`: a positive number and a unit of bytes or bits, per second.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let t = s.trim();
    let problem = |what: &str| format!("{}: {what} ({RATE_FORMS})", quoted(s));
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let unit = unit.strip_suffix("/s").unwrap_or(unit);
    let n: f64 = number
        .parse()
        .map_err(|_| problem("not a rate: a number and a unit"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" => return Err(problem("a unit is needed after the number")),
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "bit" => 1.0 / 8.0,
        "kbit" => 1e3 / 8.0,
        "mbit" => 1e6 / 8.0,
        "gbit" => 1e9 / 8.0,
        _ => return Err(problem(&format!("unknown unit {}", quoted(unit)))),
    };
    let rate = n * scale;
    if !(1.0..=1e12).contains(&rate) {
        return Err(problem("a rate is from 1 B/s to 1 TB/s"));
    }
    Ok(Rate(rate))
}

/// When `--close-after` closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAfter {
    /// Once this many bytes were echoed.
    Bytes(u64),
    /// This long after the connection opened.
    Time(Duration),
}

impl std::fmt::Display for CloseAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseAfter::Bytes(n) => write!(f, "{n} bytes echoed"),
            CloseAfter::Time(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

/// Parses `--close-after`: bytes (`1000`, `64KiB`, `1MiB`, `4K`) or a duration (`2s`, `500ms`).
pub fn parse_close_after(s: &str) -> Result<CloseAfter, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale: Option<u64> = match unit.trim() {
        "" | "B" => Some(1),
        "K" | "k" | "KiB" => Some(1 << 10),
        "KB" => Some(1000),
        "M" | "MiB" => Some(1 << 20),
        "MB" => Some(1_000_000),
        "G" | "GiB" => Some(1 << 30),
        "GB" => Some(1_000_000_000),
        _ => None,
    };
    let forms = "bytes as 1000, 64KiB, 1MiB, or a duration as 500ms, 2s";
    if let (Some(scale), false) = (scale, digits.is_empty()) {
        let n = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| format!("{}: too large", quoted(s)))?;
        if n == 0 {
            return Err(format!("{}: at least 1 byte ({forms})", quoted(s)));
        }
        return Ok(CloseAfter::Bytes(n));
    }
    super::values::parse_duration(t)
        .map(CloseAfter::Time)
        .map_err(|_| format!("{}: not a size or a duration ({forms})", quoted(s)))
}

/// Parses a probability: a number from 0 to 1 (`0.3`, `1`, `.05`).
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.trim().parse().map_err(|_| {
        format!(
            "{}: not a probability: a number from 0 to 1 (e.g. 0.3, 1)",
            quoted(s)
        )
    })?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!(
            "{}: a probability is from 0 to 1 (0.3: three in ten)",
            quoted(s)
        ));
    }
    Ok(p)
}

/// An IP network: an address and how many leading bits of it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network's address (bits past the prefix cleared).
    pub net: IpAddr,
    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network; an IPv4-mapped IPv6 address is matched as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask32(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

fn mask32(bits: u32, prefix: u8) -> u32 {
    bits & !u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

fn mask128(bits: u128, prefix: u8) -> u128 {
    bits & !u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

/// Parses `--allow`/`--deny`: `10.0.0.0/8`, `10.1.2.3` (/32), `2001:db8::/32`, `::1` (/128).
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let t = s.trim();
    let forms = "e.g. 192.168.0.0/16, 10.1.2.3, 2001:db8::/32, ::1";
    let (addr, prefix) = t.split_once('/').unwrap_or((t, ""));
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = bare.parse().map_err(|_| {
        format!(
            "{}: not an IP address or network ({forms}; names are not looked up)",
            quoted(s)
        )
    })?;
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 one it maps, as its clients
    // are matched as IPv4: its prefix counts the 96 bits before the IPv4 address too.
    let mapped = ip.is_ipv6() && ip.to_canonical().is_ipv4();
    let ip = ip.to_canonical();
    let (min, max) = match (mapped, ip.is_ipv4()) {
        (true, _) => (96, 128),
        (false, true) => (0, 32),
        (false, false) => (0, 128),
    };
    let written = if prefix.is_empty() {
        max
    } else {
        prefix
            .parse::<u8>()
            .ok()
            .filter(|p| (min..=max).contains(p) && prefix.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                format!(
                    "{}: the prefix length is from {min} to {max} ({forms})",
                    quoted(s)
                )
            })?
    };
    let prefix = written - min;
    let net = match ip {
        IpAddr::V4(v4) => IpAddr::V4(mask32(u32::from(v4), prefix).into()),
        IpAddr::V6(v6) => IpAddr::V6(mask128(u128::from(v6), prefix).into()),
    };
    Ok(Cidr { net, prefix })
}

/// Parses `--rate-limit`: `N/s`, `N/m` (a minute) or plain `N` (a second), N > 0.
pub fn parse_rate_limit(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, per) = match t.split_once('/') {
        Some((n, "s" | "sec")) => (n, 1.0),
        Some((n, "m" | "min")) => (n, 60.0),
        Some(_) => (t, f64::NAN),
        None => (t, 1.0),
    };
    let n: f64 = number.trim().parse().unwrap_or(f64::NAN);
    let rate = n / per;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "{}: not a rate: a number of datagrams per second or minute (e.g. 100/s, 600/m)",
            quoted(s)
        ));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        let ms = Duration::from_millis;
        assert_eq!(parse_delay("50ms"), Ok(Delay::Fixed(ms(50))));
        assert_eq!(parse_delay("10ms..50ms"), Ok(Delay::Range(ms(10), ms(50))));
        assert_eq!(
            parse_delay("150us:10,2ms:5"),
            Ok(Delay::Weighted(vec![
                (Duration::from_micros(150), 10),
                (ms(2), 5)
            ]))
        );
        for bad in ["", "soon", "50ms..10ms", "1ms:0", "1ms:x", "1ms,2ms", "2h"] {
            let err = parse_delay(bad).unwrap_err();
            assert!(err.contains("(accepted: a duration (50ms)"), "{bad}: {err}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100KiB/s"), Ok(Rate(102_400.0)));
        assert_eq!(parse_rate("1MB/s"), Ok(Rate(1e6)));
        assert_eq!(parse_rate("8Mbit"), Ok(Rate(1e6)));
        assert_eq!(parse_rate("200 KiB/s"), Ok(Rate(204_800.0)));
        for bad in ["100", "fast", "1 furlong/s", "0B/s"] {
            assert!(
                parse_rate(bad).unwrap_err().contains("e.g. 100KiB/s"),
                "{bad}"
            );
        }
    }

    #[test]
    fn close_after() {
        assert_eq!(parse_close_after("1000"), Ok(CloseAfter::Bytes(1000)));
        assert_eq!(parse_close_after("64KiB"), Ok(CloseAfter::Bytes(65536)));
        assert_eq!(
            parse_close_after("2s"),
            Ok(CloseAfter::Time(Duration::from_secs(2)))
        );
        assert_eq!(
            parse_close_after("1m"),
            Ok(CloseAfter::Time(Duration::from_secs(60)))
        );
        assert!(parse_close_after("0").is_err());
        assert!(parse_close_after("later").is_err());
    }

    #[test]
    fn probabilities() {
        assert_eq!(parse_probability("0.3"), Ok(0.3));
        assert_eq!(parse_probability("1"), Ok(1.0));
        assert!(parse_probability("1.5").is_err());
        assert!(parse_probability("-0.1").is_err());
        assert!(parse_probability("NaN").is_err());
    }

    #[test]
    fn cidrs() {
        let c = parse_cidr("10.1.2.3/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one = parse_cidr("127.0.0.2").unwrap();
        assert!(one.contains("127.0.0.2".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        let all = parse_cidr("0.0.0.0/0").unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6 = parse_cidr("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(parse_cidr("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0/+8").is_err());
        assert!(parse_cidr("localhost").is_err());
        // IPv4-mapped: the IPv4 network it maps, its prefix counted from 96 bits.
        assert_eq!(
            parse_cidr("::ffff:10.1.2.3/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_cidr("::ffff:10.1.2.3").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            parse_cidr("::ffff:0:0/96").unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert!(
            parse_cidr("::ffff:10.0.0.0/64")
                .unwrap_err()
                .contains("from 96 to 128")
        );
    }

    #[test]
    fn rate_limits() {
        assert_eq!(parse_rate_limit("10/s"), Ok(10.0));
        assert_eq!(parse_rate_limit("60/m"), Ok(1.0));
        assert_eq!(parse_rate_limit("5"), Ok(5.0));
        assert!(parse_rate_limit("0/s").is_err());
        assert!(parse_rate_limit("10/h").is_err());
    }
}
