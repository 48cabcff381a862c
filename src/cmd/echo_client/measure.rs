//! `echo-client`'s measuring modes, which send messages of their own instead of reading stdin:
//! probe (`--count`, like ping: one message at a time, a line per reply) and load
//! (`--connections`, like tcpkali: closed-loop connections for `--duration`, optionally at a
//! fixed `--rate`). Both check every echo byte for byte and summarise as text or `--json`.
//!
//! # How a transport plugs in
//! The engines ([`probe`], [`load`]) are generic over [`transport::Dialer`], which opens a
//! connection implementing [`transport::RoundTrip`]: send one message, receive and compare its
//! echo. To add a transport:
//! - a stream one (TLS): write a `Dialer` whose `Conn` is [`transport::Stream`] around the
//!   transport's `AsyncRead + AsyncWrite` type (e.g. `Stream<TlsStream<TcpStream>>`); the
//!   round trip is already written for every stream;
//! - a datagram one (UDP): implement `RoundTrip` on the socket as one datagram out, one in,
//!   compared with [`transport::compare`] (a reply of another length is a difference), and a
//!   `Dialer` that opens (connects) the socket;
//!
//! then add the endpoint's arm to [`run`]'s `match`, which picks the dialer. Nothing else
//! changes: timeouts, statistics, output and exit status are the engines'.

mod json;
mod load;
mod probe;
mod stats;
pub(super) mod transport;

use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};

use crate::cli::EchoClientArgs;
use crate::cli::measure::Mode;
use crate::exit::Exit;
use crate::net::endpoint::Endpoint;
use crate::runtime::{self, Flavor};
use crate::ui::Ui;
use transport::{Dialer, StreamDialer, UdpDialer};

/// What both engines need from the command line.
#[derive(Debug, Clone)]
pub(super) struct Options {
    /// Bytes per message.
    size: usize,
    /// A reply not back this long after its message was sent is lost.
    timeout: Duration,
    /// `--wait` for the first connection.
    wait: Option<Duration>,
    /// `--json` instead of text.
    json: bool,
}

/// Runs probe or load mode.
pub(super) fn run(args: &EchoClientArgs, mode: Mode, ui: &Ui) -> eyre::Result<Exit> {
    // Checked first: the replies are this mode's output.
    crate::sys::stdio::stdout().wrap_err("cannot write to standard output")?;
    let m = &args.measure;
    let options = Options {
        size: m.size,
        timeout: m.timeout,
        wait: args.wait,
        json: m.json,
    };
    let family = super::family(args);
    if let Some(setup) = super::tls::setup(args, ui)? {
        let dialer = super::tls::Dialer {
            setup,
            target: args.target.0.clone(),
            family,
            timeout: args.connect_timeout,
        };
        return measure(dialer, args, mode, options, ui);
    }
    match &args.target.0 {
        target @ (Endpoint::Tcp(_) | Endpoint::Unix(_)) => {
            let dialer = StreamDialer {
                target: target.clone(),
                family,
                timeout: args.connect_timeout,
            };
            measure(dialer, args, mode, options, ui)
        }
        Endpoint::Udp(target) => {
            let dialer = UdpDialer {
                target: target.clone(),
                family,
                timeout: args.connect_timeout,
                size: options.size,
            };
            measure(dialer, args, mode, options, ui)
        }
    }
}

/// Runs `mode` over `dialer`'s transport on the runtime that suits it.
fn measure<D: Dialer>(
    dialer: D,
    args: &EchoClientArgs,
    mode: Mode,
    options: Options,
    ui: &Ui,
) -> eyre::Result<Exit> {
    match mode {
        Mode::Probe { count } => {
            let probe = probe::Probe {
                count,
                interval: args.measure.interval,
                new_connection: args.measure.new_connection,
                options,
            };
            runtime::block_on(Flavor::CurrentThread, probe::run(dialer, probe, ui))?
        }
        Mode::Load { connections } => {
            fits_in_memory(connections.get(), options.size)?;
            let load = load::Load {
                connections: connections.get(),
                duration: args.measure.duration,
                rate: args.measure.rate,
                progress: args.progress,
                options,
            };
            // Connections spread over every core, so the generator is not the limit; but no
            // more workers than connections.
            runtime::block_on(Flavor::AtMost(connections), load::run(dialer, load, ui))?
        }
    }
}

/// Refuses a load whose buffers, a message and its echo per connection, cannot fit in the
/// memory available (or `ulimit -v`): the allocation would abort the process, or the OOM
/// killer would end it or another (1000 connections × 16 MiB want 32 GiB).
fn fits_in_memory(connections: usize, size: usize) -> eyre::Result<()> {
    let need = (connections as u64)
        .saturating_mul(size as u64)
        .saturating_mul(2);
    match memory_available() {
        Some(room) if need > room => eyre::bail!(
            "--connections {connections} with --size {} would hold {} (a message and its \
             echo per connection), more than the {} of memory available",
            crate::ui::bytes(size as u64),
            crate::ui::bytes(need),
            crate::ui::bytes(room)
        ),
        _ => Ok(()),
    }
}

/// The memory this process can still take: the kernel's MemAvailable, or less under
/// `ulimit -v`; `None` when neither is known.
fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let available = meminfo.as_deref().and_then(|m| {
        let kib = m.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
        let kib: u64 = kib.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    });
    let limit = rustix::process::getrlimit(rustix::process::Resource::As).current;
    match (available, limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    }
}

/// A message of `size` pseudo-random bytes (xorshift seeded from the clock): random enough
/// that an echo of the wrong bytes shows, with no crate for it.
fn random_message(size: usize) -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Stamps `n` into the message's first bytes, so a reply to an earlier message differs.
fn stamp(msg: &mut [u8], n: u64) {
    let bytes = n.to_le_bytes();
    let len = msg.len().min(bytes.len());
    msg[..len].copy_from_slice(&bytes[..len]);
}
