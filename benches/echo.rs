//! `cargo bench --bench echo`: asyncio-tool's echo server and echo client against their peers
//! (socat, OpenBSD nc, a textbook tokio server), run alternately on loopback in one run.
//! `cargo bench --bench echo -- server`, `-- client`, `-- unix`, `-- udp`, `-- measure` or
//! `-- tls` runs one part: the TCP server rows, the TCP client rows, the Unix-socket rows of
//! both (with our TCP bulk figure from the same run to compare with), the UDP rows of both,
//! echo-client's load and probe modes against this bench's own load generator, or the TLS
//! rows. `ECHO_BENCH_BIN=PATH` benches another build of asyncio-tool with the same bench.

#![allow(clippy::unwrap_used)]

#[path = "echo/client.rs"]
mod client;
#[path = "echo/measure.rs"]
mod measure;
#[path = "echo/server.rs"]
mod server;
#[path = "echo/textbook.rs"]
mod textbook;
#[path = "echo/tls.rs"]
mod tls;
#[path = "echo/udp.rs"]
mod udp;
#[path = "echo/unix.rs"]
mod unix;

/// The asyncio-tool binary under test: `ECHO_BENCH_BIN` if set (to run this same bench against
/// another build, e.g. before and after a change), else the one cargo built with the bench.
pub fn ours() -> &'static str {
    static OURS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OURS.get_or_init(|| {
        std::env::var("ECHO_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_asyncio-tool").to_owned())
    })
}

fn main() {
    // cargo passes --bench to harness = false targets; it carries no meaning here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--textbook-server") {
        textbook::main(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("--textbook-udp-server") {
        udp::textbook_main(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("--reference-udp-server") {
        udp::reference_main(&args[1..]);
        return;
    }
    let only = args.first().map(String::as_str);
    if let Some(part) =
        only.filter(|p| !["server", "client", "unix", "udp", "measure", "tls"].contains(p))
    {
        eprintln!("unknown part {part:?}: expected server, client, unix, udp, measure or tls");
        std::process::exit(2);
    }
    if only.is_none() || only == Some("server") {
        server::run();
    }
    if only.is_none() || only == Some("client") {
        client::run();
    }
    if only.is_none() || only == Some("unix") {
        unix::run();
    }
    if only.is_none() || only == Some("udp") {
        udp::run();
    }
    if only.is_none() || only == Some("measure") {
        measure::run();
    }
    if only.is_none() || only == Some("tls") {
        tls::run();
    }
}
