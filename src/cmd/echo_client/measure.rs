//! `echo-client`'s measuring modes, which send messages of their own instead of reading stdin:
//! probe (`--count`, like ping: one message every `--interval` whatever the replies do, a line
//! per reply, `--deadline`,
//! `--summary-only`, the summary so far on SIGQUIT) and load
//! (`--connections`, like tcpkali: closed-loop connections for `--duration`, optionally at a
//! fixed `--rate`). Both check every echo byte for byte and summarise as text or `--json`.
//!
//! # How a transport plugs in
//! The engines ([`probe`], [`load`]) are generic over [`transport::Dialer`], which opens a
//! connection implementing [`transport::RoundTrip`]: send one message, receive and compare its
//! echo; and [`transport::Pipeline`], which hands probe mode the socket to keep several
//! messages in flight on (a byte stream, or a datagram socket). To add a transport:
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
mod series;
pub(super) mod transport;

use std::future::Future;
use std::time::{Duration, SystemTime};

use color_eyre::eyre::{self, WrapErr};

use crate::cli::EchoClientArgs;
use crate::cli::measure::Mode;
use crate::cli::report::StartAt;
use crate::exit::Exit;
use crate::net::endpoint::Endpoint;
use crate::runtime::{self, Flavor};
use crate::ui::Ui;
use transport::{Dialer, Oversized, StreamDialer, UdpDialer};

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
    /// Who ran what, when: the JSON summary's `run`.
    run: std::sync::Arc<json::Run>,
}

/// Runs probe or load mode.
pub(super) fn run(args: &EchoClientArgs, mode: Mode, ui: &Ui) -> eyre::Result<Exit> {
    match dispatch(args, mode, ui) {
        // Known only once the server's name is resolved, but still the command line's fault.
        Err(err) if err.downcast_ref::<Oversized>().is_some() => {
            let usage = crate::cli::endpoints::usage_error("echo-client", err.to_string());
            // As clap's own errors are printed: a failed write to stderr has nowhere to go.
            let _ = usage.print();
            Ok(Exit::Usage)
        }
        other => other,
    }
}

/// Picks the dialer for the endpoint and runs `mode` over it.
fn dispatch(args: &EchoClientArgs, mode: Mode, ui: &Ui) -> eyre::Result<Exit> {
    // Checked first: the replies are this mode's output.
    crate::sys::stdio::stdout().wrap_err("cannot write to standard output")?;
    let m = &args.measure;
    let options = Options {
        size: m.size,
        timeout: m.timeout,
        wait: args.wait,
        // --json-lines ends with the summary --json prints.
        json: m.json || m.series.json_lines,
        run: std::sync::Arc::new(run_info(args, mode)),
    };
    let family = super::family(args);
    if let Some(setup) = super::tls::setup(args, ui)? {
        let dialer = super::tls::Dialer {
            setup,
            target: args.target.0.clone(),
            family,
            timeout: args.connect_timeout,
        };
        return measure(TlsNamed(dialer), args, mode, options, ui);
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
    fits_in_memory(mode, options.size, D::CONNECTION_MEMORY)?;
    match mode {
        Mode::Probe { count } => {
            let probe = probe::Probe {
                count,
                interval: args.measure.interval,
                // In probe mode -w and -q are ping's: the deadline, and the summary only.
                deadline: args.measure.deadline.or(args.w),
                summary_only: args.measure.summary_only || ui.quiet,
                new_connection: args.measure.new_connection,
                target: crate::ui::quote::address(&args.target.0.to_string()).into_owned(),
                series: series_settings(args),
                options,
            };
            let run = std::sync::Arc::clone(&probe.options.run);
            let probing = probe::run(dialer, probe, ui);
            runtime::block_on(Flavor::CurrentThread, at_start(args, &run, ui, probing))?
        }
        Mode::Load { connections } => {
            let load = load::Load {
                connections: connections.get(),
                duration: args.measure.duration,
                rate: args.measure.rate,
                progress: args.progress,
                series: series_settings(args),
                connect_rate: args.fleet.connect_rate,
                options,
            };
            let run = std::sync::Arc::clone(&load.options.run);
            let loading = load::run(dialer, load, ui);
            // Connections spread over every core, so the generator is not the limit; but no
            // more workers than connections.
            runtime::block_on(
                Flavor::AtMost(connections),
                at_start(args, &run, ui, loading),
            )?
        }
    }
}

/// What the command line asks of either mode's interval series.
fn series_settings(args: &EchoClientArgs) -> series::Settings {
    let m = &args.measure;
    series::Settings {
        every: m.series.report_every,
        json_lines: m.series.json_lines,
        warmup: m.series.warmup.unwrap_or_default(),
        hdr_log: m.series.hdr_log.clone(),
        percentiles: m.percentiles(),
    }
}

/// The run's metadata: a fresh id, this host, the labels, and every option in effect.
fn run_info(args: &EchoClientArgs, mode: Mode) -> json::Run {
    let labels = args
        .fleet
        .labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect();
    json::Run::new(labels, options_in_effect(args, mode))
}

/// Every option that shapes the run, as plain JSON values (durations in seconds), so a
/// result says how it was made without its command line.
fn options_in_effect(args: &EchoClientArgs, mode: Mode) -> serde_json::Value {
    use serde_json::json;
    let m = &args.measure;
    let secs = |d: Duration| d.as_secs_f64();
    let tls = args.tls.enabled.then(|| {
        let trust = match &args.tls.trust {
            crate::net::tls::Trust::System => "system",
            crate::net::tls::Trust::CaFile(_) => "cafile",
            crate::net::tls::Trust::Pin(_) => "pin",
            crate::net::tls::Trust::Insecure => "insecure",
        };
        json!({
            "trust": trust,
            "servername": args.tls.servername.as_ref().map(|n| n.to_str().into_owned()),
            "client_cert": args.tls.identity.is_some(),
        })
    });
    let transport = match (&args.target.0, args.tls.enabled) {
        (_, true) => "tls",
        (Endpoint::Tcp(_), false) => "tcp",
        (Endpoint::Unix(_), false) => "unix",
        (Endpoint::Udp(_), false) => "udp",
    };
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => "ipv4",
        (_, true) => "ipv6",
        _ => "any",
    };
    let mut options = json!({
        "target": args.target.0.to_string(),
        "transport": transport,
        "family": family,
        "tls": tls,
        "size": m.size,
        "timeout_s": secs(m.timeout),
        "connect_timeout_s": secs(args.connect_timeout),
        "wait_s": args.wait.map(secs),
        "start_at": args.fleet.start_at.as_ref().map(|s| crate::cli::report::rfc3339(s.at)),
    });
    let specific = match mode {
        Mode::Probe { count } => json!({
            "mode": "probe",
            "count": count,
            "interval_s": secs(m.interval),
            "deadline_s": m.deadline.or(args.w).map(secs),
            "new_connection": m.new_connection,
        }),
        Mode::Load { connections } => json!({
            "mode": "load",
            "connections": connections.get(),
            "duration_s": secs(m.duration),
            "rate": m.rate,
            "connect_rate": args.fleet.connect_rate,
        }),
    };
    for part in [specific, series_options(&m.series)] {
        if let (Some(all), serde_json::Value::Object(more)) = (options.as_object_mut(), part) {
            all.extend(more);
        }
    }
    options
}

/// The interval series' and histogram files' options, as [`options_in_effect`] gives them.
fn series_options(series: &crate::cli::measure::SeriesArgs) -> serde_json::Value {
    let path =
        |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    serde_json::json!({
        "report_every_s": series.report_every.map(|d| d.as_secs_f64()),
        "json_lines": series.json_lines,
        "warmup_s": series.warmup.map(|d| d.as_secs_f64()),
        "hdr_log": path(&series.hdr_log),
        "percentiles": path(&series.percentiles),
    })
}

/// Runs `engine` once `--start-at` has come (at once without it), marking the run started.
/// Ctrl-C during the wait ends the run there (exit 130): nothing was measured.
async fn at_start(
    args: &EchoClientArgs,
    run: &json::Run,
    ui: &Ui,
    engine: impl Future<Output = eyre::Result<Exit>>,
) -> eyre::Result<Exit> {
    if let Some(start) = &args.fleet.start_at {
        let interrupt = runtime::interrupt_signal()?;
        tokio::select! {
            () = interrupt => return Ok(Exit::Interrupted),
            () = wait_until(start, ui) => {}
        }
    }
    run.mark_started();
    engine.await
}

/// Sleeps until `start`'s wall-clock time, saying so on stderr. The clock is read again after
/// each sleep of at most a few seconds, so a clock stepped (NTP) during a long wait is
/// followed.
async fn wait_until(start: &StartAt, ui: &Ui) {
    let left = |now: SystemTime| start.at.duration_since(now).unwrap_or_default();
    let first = left(SystemTime::now());
    if !first.is_zero() {
        ui.info(&format!(
            "waiting until {} ({} from now) to start (--start-at)",
            crate::cli::report::rfc3339(start.at),
            crate::ui::duration(first)
        ));
    }
    loop {
        let rest = left(SystemTime::now());
        if rest.is_zero() {
            return;
        }
        tokio::time::sleep(rest.min(Duration::from_secs(5))).await;
    }
}

/// The TLS dialer, naming the server `tls:ADDR` as the other transports name theirs
/// (`udp:`, `unix:`), in the lines and in the JSON `server`.
struct TlsNamed(super::tls::Dialer);

impl Dialer for TlsNamed {
    type Conn = <super::tls::Dialer as Dialer>::Conn;

    /// A TLS session's own buffers besides (about 15 KiB once open, more in the handshake:
    /// 800 TLS connections under `ulimit -v` 92000 KiB aborted with 64 KiB allowed each).
    const CONNECTION_MEMORY: u64 = 192 << 10;

    async fn dial(&self, wait: Option<Duration>) -> eyre::Result<(Self::Conn, String)> {
        let (conn, server) = self.0.dial(wait).await?;
        Ok((conn, format!("tls:{server}")))
    }
}

/// Memory a run needs beside its buffers: the runtime's tasks and timers, the histograms, a
/// thread to resolve a name, the standard streams. Without it a limit just past the buffers
/// let the check pass and the first reply's histogram aborted (`ulimit -v` 49750 KiB with a
/// 16 MiB probe: exit 134).
const RUN_HEADROOM: u64 = 8 << 20;
/// The stack of each of load mode's worker threads (tokio's default): the check runs before
/// they exist, and one that cannot be mapped makes tokio panic.
const WORKER_STACK: u64 = 2 << 20;

/// Refuses a run whose buffers, a message and its echo per connection, cannot fit in the
/// memory available (or what `ulimit -v` leaves beside what the process already maps) with
/// room to run them: the allocation would fail, or the OOM killer would end this process or
/// another (1000 connections × 16 MiB want 32 GiB). `per_connection`: what each connection
/// takes beside its buffers ([`Dialer::CONNECTION_MEMORY`]).
fn fits_in_memory(mode: Mode, size: usize, per_connection: u64) -> eyre::Result<()> {
    let (connections, workers) = match mode {
        Mode::Probe { .. } => (1, 0),
        Mode::Load { connections } => {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            (connections.get(), cores.min(connections.get()))
        }
    };
    let need = (connections as u64)
        .saturating_mul(size as u64)
        .saturating_mul(2);
    // Load mode also holds the message it copies into each connection's while it copies.
    let held = match mode {
        Mode::Probe { .. } => need,
        Mode::Load { .. } => need.saturating_add(size as u64),
    };
    one_heap_under_a_limit();
    let running = (connections as u64)
        .saturating_mul(per_connection)
        .saturating_add((workers as u64).saturating_mul(WORKER_STACK))
        .saturating_add(RUN_HEADROOM);
    let Some(room) = memory_available().filter(|&room| held.saturating_add(running) > room) else {
        return Ok(());
    };
    let (size, need, running, room) = (
        crate::ui::bytes(size as u64),
        crate::ui::bytes(held),
        crate::ui::bytes(running),
        crate::ui::bytes(room),
    );
    match mode {
        Mode::Probe { .. } => eyre::bail!(
            "--size {size} would hold {need} (a message and its echo), and running the probe \
             takes {running} more: more than the {room} of memory available"
        ),
        Mode::Load { .. } => eyre::bail!(
            "--connections {connections} with --size {size} would hold {need} (a message and \
             its echo per connection), and running them takes {running} more: more than the \
             {room} of memory available"
        ),
    }
}

/// Under `ulimit -v`, makes every thread allocate from the one main heap: glibc gives each
/// thread that allocates a heap of its own, reserving 64 MiB of address space that the limit
/// counts and no check can foresee (800 connections under `ulimit -v 153000` passed the check,
/// then aborted in an allocation, whatever the headroom). Without a limit nothing changes.
fn one_heap_under_a_limit() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if rustix::process::getrlimit(rustix::process::Resource::As)
        .current
        .is_some()
    {
        // SAFETY: mallopt only sets a parameter of the allocator, here before any thread of
        // the runtime exists; a value it refuses leaves the allocator as it was.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// The memory this process can still take: the kernel's MemAvailable, or less under
/// `ulimit -v`, less what the process already maps (its threads' stacks and heaps count
/// against that limit); `None` when neither is known.
fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let available = meminfo
        .as_deref()
        .and_then(|m| kib_field(m, "MemAvailable:"));
    let limit = rustix::process::getrlimit(rustix::process::Resource::As)
        .current
        .map(|limit| {
            let status = std::fs::read_to_string("/proc/self/status").ok();
            let mapped = status.as_deref().and_then(|s| kib_field(s, "VmSize:"));
            limit.saturating_sub(mapped.unwrap_or(0))
        });
    match (available, limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    }
}

/// A `Name:   123 kB` line of a /proc file, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let kib = text.lines().find_map(|l| l.strip_prefix(name))?;
    let kib: u64 = kib.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Reserves room for exactly `size` bytes in `buf`, a buffer of one of `connections`, or says why
/// not: an allocation that failed would abort the process (exit 134), and under `ulimit -v`
/// the check above cannot see every mapping to come (each worker thread's heap).
fn reserve(buf: &mut Vec<u8>, size: usize, connections: usize) -> eyre::Result<()> {
    buf.try_reserve_exact(size).map_err(|_| {
        let total = (size as u64)
            .saturating_mul(connections as u64)
            .saturating_mul(2);
        eyre::eyre!(
            "cannot allocate {} for {connections} {} × {} (a message and its echo each): \
             not enough memory{}",
            crate::ui::bytes(total),
            if connections == 1 {
                "connection"
            } else {
                "connections"
            },
            crate::ui::bytes(size as u64),
            limit_note()
        )
    })
}

/// ` (ulimit -v allows 683.59 MiB)` when a limit is set, else nothing.
fn limit_note() -> String {
    match rustix::process::getrlimit(rustix::process::Resource::As).current {
        Some(limit) => format!(" (ulimit -v allows {})", crate::ui::bytes(limit)),
        None => String::new(),
    }
}

/// A zeroed buffer of `size` bytes for one of `connections`, allocated fallibly ([`reserve`]).
fn zeroed(size: usize, connections: usize) -> eyre::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reserve(&mut buf, size, connections)?;
    buf.resize(size, 0);
    Ok(buf)
}

/// A copy of `msg` for one of `connections`, allocated fallibly ([`reserve`]).
fn copy(msg: &[u8], connections: usize) -> eyre::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reserve(&mut buf, msg.len(), connections)?;
    buf.extend_from_slice(msg);
    Ok(buf)
}

/// A message of `size` pseudo-random bytes (xorshift seeded from the clock): random enough
/// that an echo of the wrong bytes shows, with no crate for it. Allocated fallibly.
fn random_message(size: usize, connections: usize) -> eyre::Result<Vec<u8>> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) | 1;
    let mut msg = Vec::new();
    reserve(&mut msg, size, connections)?;
    msg.extend((0..size).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    Ok(msg)
}

/// Stamps `n` into the message's first bytes, so a reply to an earlier message differs.
///
/// A 1-byte message is `n`'s low byte with its lowest bit flipped every other 256 messages:
/// a plain counter would send each byte again exactly 256 messages later, for ever, which is
/// what a packet loop looks like to a UDP echo server's loop guard (ours drops some of such a
/// source's datagrams); this way the same byte comes back 255 and 257 messages later by turns,
/// and no two messages in a row are copies at the same distance. Wider stamps repeat only
/// every 65,536 messages or more, farther apart than any loop a guard looks for.
fn stamp(msg: &mut [u8], n: u64) {
    if let [only] = msg {
        *only = (n ^ ((n >> 8) & 1)) as u8;
        return;
    }
    let bytes = n.to_le_bytes();
    let len = msg.len().min(bytes.len());
    msg[..len].copy_from_slice(&bytes[..len]);
}
