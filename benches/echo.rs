//! `cargo bench --bench echo`: asyncio-tool's echo server and echo client against their peers
//! (socat, OpenBSD nc, a textbook tokio server), run alternately on loopback in one run.
//! `cargo bench --bench echo -- server` or `-- client` runs one half.

#![allow(clippy::unwrap_used)]

#[path = "echo/client.rs"]
mod client;
#[path = "echo/server.rs"]
mod server;
#[path = "echo/textbook.rs"]
mod textbook;

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
    let only = args.first().map(String::as_str);
    if only.is_none() || only == Some("server") {
        server::run();
    }
    if only.is_none() || only == Some("client") {
        client::run();
    }
}
