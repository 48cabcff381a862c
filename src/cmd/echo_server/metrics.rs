//! `--metrics ADDR`: the server's figures in Prometheus's text exposition format (0.0.4) over
//! HTTP/1.1, on a listener and tasks of their own, so a scraper never slows the echo.
//!
//! The figures are read from the atomics the echo already keeps ([`Stats::families`],
//! [`UdpStats::families`]): a scrape adds no work to a connection. The page is a few lines of
//! text and the protocol one request a connection (`Connection: close`), so both are written
//! here rather than pulled in with a client library and an HTTP stack. What a public port
//! needs is bounded: a request head of at most [`MAX_HEAD`] bytes read within [`IO_LIMIT`],
//! the answer written within it too, and at most [`SCRAPERS`] connections held at once. A
//! new one is never left waiting behind them: it takes the place of the oldest, which a real
//! scraper (done in a millisecond) never is, so slow or silent connections (slowloris) cannot
//! keep a scrape out.
//!
//! [`Stats::families`]: super::stats::Stats::families
//! [`UdpStats::families`]: super::stats::UdpStats::families

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{self, WrapErr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

use super::log::{self, Event, Throttle};
use super::stats::Family;
use crate::net::endpoint::Endpoint;
use crate::net::listen::{self, Listener, SocketFile, Stack};
use crate::net::stream::Accept;
use crate::report::io_reason;
use crate::sys::backoff::Backoff;
use crate::ui::{self, Level, Ui};

/// The longest request head read; a longer one gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// How long a scraper has to send its request, and to take the answer.
const IO_LIMIT: Duration = Duration::from_secs(5);
/// Connections held at once; a new one beyond them closes the oldest.
const SCRAPERS: usize = 8;
/// After the answer, how long what the scraper still sends is read and discarded, so that
/// unread data (the rest of an oversized head, a pipelined request) does not turn the close
/// into a reset that may cut the answer short.
const LINGER: Duration = Duration::from_secs(1);
/// The content type of the text format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the figures come from, read at each scrape.
pub(super) type Source = Arc<dyn Fn() -> Vec<Family> + Send + Sync>;

/// The metrics listener, bound before the server says its address.
pub(super) struct Bound {
    listener: Listener,
    /// Removes a socket file when the server stops.
    file: Option<SocketFile>,
    /// When the server started, for `process_start_time_seconds`.
    started: SystemTime,
}

/// Binds `addr` for the metrics page and says where it is; an error names the address.
pub(super) fn bind(addr: &Endpoint<SocketAddr>, ui: &Ui) -> eyre::Result<Bound> {
    let started = SystemTime::now();
    let bound = listen::bind(addr, Stack::Dual, None, ui)
        .wrap_err_with(|| format!("cannot serve metrics on {}", quote_addr(addr)))?;
    let url = match addr {
        Endpoint::Tcp(_) => format!("http://{}/metrics", bound.endpoint),
        _ => format!("{} (GET /metrics)", ui::quote::address(&bound.endpoint)),
    };
    Event::new(
        Level::Info,
        "metrics_listening",
        format!("metrics on {url}"),
    )
    .field("address", bound.endpoint.as_str())
    .say(ui);
    Ok(Bound {
        listener: bound.listener,
        file: bound.file,
        started,
    })
}

fn quote_addr(addr: &Endpoint<SocketAddr>) -> String {
    ui::quote::address(&addr.to_string()).into_owned()
}

/// Serves the page on its own task until the returned handle is aborted (at the server's
/// stop, which also removes a socket file).
pub(super) fn spawn(bound: Bound, source: Source, ui: Ui) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Bound {
            listener,
            file,
            started,
        } = bound;
        let page = Page { source, started };
        let failed = match listener {
            Listener::Tcp(l) => match tokio::net::TcpListener::from_std(l) {
                Ok(l) => return accept_loop(l, page, ui, file).await,
                Err(err) => err,
            },
            Listener::Unix(l) => match tokio::net::UnixListener::from_std(l) {
                Ok(l) => return accept_loop(l, page, ui, file).await,
                Err(err) => err,
            },
            Listener::Udp(_) => std::io::ErrorKind::Unsupported.into(),
        };
        ui.warn(&format!("cannot serve metrics: {}", io_reason(&failed)));
    })
}

/// What a server is watched with: the metrics page, and SIGUSR1's statistics line.
#[derive(Default)]
pub(super) struct Watch {
    /// `--metrics`, bound.
    metrics: Option<Bound>,
    /// SIGUSR1, registered before the address line so a signal sent once it is read is heard.
    statistics: Option<Signal>,
}

impl Watch {
    /// `--metrics` bound (when given) and SIGUSR1 registered; inside the runtime.
    pub(super) fn new(metrics: Option<&Endpoint<SocketAddr>>, ui: &Ui) -> eyre::Result<Self> {
        let statistics =
            signal(SignalKind::user_defined1()).wrap_err("cannot install the SIGUSR1 handler")?;
        Ok(Watch {
            metrics: metrics.map(|addr| bind(addr, ui)).transpose()?,
            statistics: Some(statistics),
        })
    }

    /// Whether the figures must be current while connections are open (a scrape reads them).
    pub(super) fn live(&self) -> bool {
        self.metrics.is_some()
    }

    /// Starts serving the page and answering SIGUSR1 with `source`'s figures; the tasks stop
    /// when the returned [`Watching`] is dropped.
    pub(super) fn start(self, source: Source, ui: &Ui) -> Watching {
        let mut tasks = Vec::new();
        if let Some(bound) = self.metrics {
            tasks.push(spawn(bound, Arc::clone(&source), ui.clone()));
        }
        if let Some(mut usr1) = self.statistics {
            let (ui, start) = (ui.clone(), Instant::now());
            tasks.push(tokio::spawn(async move {
                while usr1.recv().await.is_some() {
                    log::statistics(&ui, &source(), start.elapsed());
                }
            }));
        }
        Watching(tasks)
    }
}

/// The watching tasks, stopped when dropped (which also removes a metrics socket file).
pub(super) struct Watching(Vec<JoinHandle<()>>);

impl Drop for Watching {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The figures and what the page adds to them.
#[derive(Clone)]
struct Page {
    source: Source,
    started: SystemTime,
}

/// Accepts scrapers for ever, each on a task of its own; past [`SCRAPERS`] at once the oldest
/// is closed to make room. Accept errors are said (at most one line a second) and retried
/// after a pause, as the echo's own accept loop does.
async fn accept_loop<L: Accept>(listener: L, page: Page, ui: Ui, _file: Option<SocketFile>) {
    let mut backoff = Backoff::new(Duration::from_millis(5), Duration::from_secs(1));
    let mut throttle = Throttle::default();
    let mut scrapes = JoinSet::new();
    // The scrapes still running, oldest first, each by the number its task returns.
    let mut running: VecDeque<(u64, AbortHandle)> = VecDeque::new();
    for number in 0u64.. {
        let accepted = loop {
            tokio::select! {
                accepted = listener.accept() => break accepted,
                Some(done) = scrapes.join_next() => {
                    // An aborted one was taken out when it was aborted.
                    if let Ok(done) = done {
                        running.retain(|(n, _)| *n != done);
                    }
                }
            }
        };
        match accepted {
            Ok((stream, _)) => {
                backoff.reset();
                if running.len() >= SCRAPERS {
                    if let Some((_, oldest)) = running.pop_front() {
                        oldest.abort();
                    }
                }
                let page = page.clone();
                let task = scrapes.spawn(async move {
                    scrape(stream, &page).await;
                    number
                });
                running.push_back((number, task));
            }
            Err(err) => {
                let line = format!("metrics: cannot accept a connection: {}", io_reason(&err));
                if let Some(line) = throttle.admit(line) {
                    ui.warn(&line);
                }
                tokio::time::sleep(backoff.pause()).await;
            }
        }
    }
}

/// One request, one answer, then the connection is closed (once the scraper closes too, or
/// after [`LINGER`]). A scraper that is too slow, or gone, costs only its own connection.
async fn scrape<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, page: &Page) {
    let head = match tokio::time::timeout(IO_LIMIT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(_)) | Err(_) => return,
    };
    let answer = answer(head.as_deref(), page);
    let write = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    };
    if let Ok(Ok(())) = tokio::time::timeout(IO_LIMIT, write).await {
        let mut sink = [0u8; 4096];
        let drain = async { while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

/// The request head up to its blank line, or `None` when it is longer than [`MAX_HEAD`].
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// The whole HTTP answer to a request head (`None`: too long).
fn answer(head: Option<&[u8]>, page: &Page) -> Vec<u8> {
    let Some(head) = head else {
        return response(
            "431 Request Header Fields Too Large",
            "",
            b"request head too large\n",
            true,
        );
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.trim_end().split(' ');
    let (method, target, version) = (words.next(), words.next(), words.next());
    let well_formed = words.next().is_none()
        && version.is_some_and(|v| v.starts_with("HTTP/1."))
        && target.is_some_and(|t| t.starts_with('/'));
    let (Some(method), Some(target), true) = (method, target, well_formed) else {
        return response("400 Bad Request", "", b"bad request\n", true);
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return response(
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            b"GET or HEAD only\n",
            true,
        );
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if path != "/metrics" {
        return response(
            "404 Not Found",
            "",
            b"not found: the metrics are at /metrics\n",
            !head_only,
        );
    }
    let body = exposition(&(page.source)(), page.started);
    response("200 OK", "", body.as_bytes(), !head_only)
}

/// A response with `Connection: close`; `with_body` false leaves the body out (HEAD: the
/// same head, Content-Length included).
fn response(status: &str, extra: &str, body: &[u8], with_body: bool) -> Vec<u8> {
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    out
}

/// The text exposition (version 0.0.4): each family's `# HELP` and `# TYPE` lines, then its
/// samples, all named `echo_server_...`, and `process_start_time_seconds`.
fn exposition(families: &[Family], started: SystemTime) -> String {
    let mut out = String::new();
    for family in families {
        let name = format!("echo_server_{}", family.name);
        let kind = if family.gauge { "gauge" } else { "counter" };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (value, n) in &family.samples {
            match family.label {
                Some(label) => {
                    let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape_label(value));
                }
                None => {
                    let _ = writeln!(out, "{name} {n}");
                }
            }
        }
    }
    let since = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    out.push_str("# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n");
    out.push_str("# TYPE process_start_time_seconds gauge\n");
    let _ = writeln!(out, "process_start_time_seconds {:.3}", since.as_secs_f64());
    out
}

/// A `# HELP` text as the format wants it: backslash and line feed escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn escape_label(s: &str) -> String {
    escape_help(s).replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page {
        let source: Source = Arc::new(|| super::super::stats::Stats::new(false).families());
        Page {
            source,
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_500),
        }
    }

    fn status(out: &[u8]) -> String {
        let text = String::from_utf8_lossy(out);
        text.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn routes() {
        let p = page();
        let get = answer(Some(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), &p);
        assert_eq!(status(&get), "HTTP/1.1 200 OK");
        let text = String::from_utf8_lossy(&get);
        assert!(
            text.contains("Content-Type: text/plain; version=0.0.4"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE echo_server_connections_total counter"),
            "{text}"
        );
        assert!(
            text.contains("echo_server_errors_total{kind=\"reset\"} 0"),
            "{text}"
        );
        assert!(text.contains("process_start_time_seconds 1.500"), "{text}");
        let head = answer(Some(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), &p);
        let head_text = String::from_utf8_lossy(&head);
        assert!(head_text.ends_with("\r\n\r\n"), "{head_text}");
        assert!(!head_text.contains("Content-Length: 0\r\n"), "{head_text}");
        assert_eq!(
            status(&answer(Some(b"GET / HTTP/1.1\r\n\r\n"), &p)),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(&answer(Some(b"POST /metrics HTTP/1.1\r\n\r\n"), &p)),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            status(&answer(Some(b"hello\r\n\r\n"), &p)),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            status(&answer(None, &p)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }
}
