//! The textbook tokio echo server, kept as the baseline: the shape of tokio's own echo example
//! and countless tutorials. A 1 KiB buffer, a task per connection, `accept().await?` (so the
//! first EMFILE ends it), no TCP_NODELAY, no shutdown handling. Do not improve it: it is the
//! yardstick.
//!
//! Run as `echo --textbook-server ADDR`; prints its bound address on stdout, like ours.

use std::io::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves on the address in `args` (default 127.0.0.1:0) until killed.
pub fn main(args: &[String]) {
    let addr = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if let Err(e) = serve(addr) {
        eprintln!("textbook server: {e}");
        std::process::exit(1);
    }
}

// What `#[tokio::main]` expands to: a multi-thread runtime with all drivers.
#[tokio::main]
async fn serve(addr: String) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(&addr).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);

    loop {
        let (mut socket, _) = listener.accept().await?;

        tokio::spawn(async move {
            let mut buf = vec![0; 1024];

            loop {
                let n = match socket.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(_) => return,
                };

                if socket.write_all(&buf[0..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}
