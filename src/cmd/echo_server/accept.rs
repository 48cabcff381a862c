//! The stream server's accept loops, shared by plain and TLS connections (after mini-redis's
//! `server::run`): [`serve`] takes already bound listeners and a shutdown future, so tests and
//! benchmarks can run it in-process.
//!
//! What it adds to the textbook accept loop: a permit taken *before* `accept()` for
//! `--max-connections` (clients beyond it wait in the kernel's backlog; over TLS, once the
//! handshake is done, see `tls`); accept errors such as EMFILE logged (rate-limited) and
//! retried forever with back-off instead of exiting or spinning (tokio#3529); on shutdown the
//! listener is dropped at once (the kernel would otherwise keep completing handshakes into
//! it), open connections get a deadline (TaskTracker), then are reset (CancellationToken; an
//! RST, so a client can tell a cut from a finished echo).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admit::Verdict;
use super::log::Event;
use super::stats::{ErrorKind, Stats};
use super::{Config, Summary, admit, fault, life, log, proxy, tls};
use crate::cli::ProxyProtocol;
use crate::net::listen::Listener;
use crate::net::stream::{Accept, Connection, Peer};
use crate::report::io_reason;
use crate::sys::backoff::Backoff;
use crate::sys::notify::Notifier;
use crate::ui::{self, Level, Ui};

/// Accept-error back-off: starts short so a transient error costs little, doubles so a
/// persistent one (EMFILE while every descriptor is in use) costs no CPU, and never gives up.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often the status line is redrawn.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// The service manager hears the status figures every this many redraws (2 s).
const NOTIFY_EVERY: u64 = 8;

/// Serves echo on `listeners` until `shutdown` resolves, then stops accepting at once, lets
/// open connections finish within `config.shutdown_timeout` (or until `again` resolves, for a
/// user who will not wait), closes the rest and returns what was done. Never fails: accept
/// errors are logged and retried, connection errors end only their connection.
pub async fn serve(
    listeners: Vec<Listener>,
    config: Config,
    shutdown: impl Future + Send,
    again: impl Future + Send,
) -> Summary {
    let start = Instant::now();
    let limit = config
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.get().min(Semaphore::MAX_PERMITS))));
    let (tls, room, accept_limit) = rooms(&config, limit);
    let log = config.ui;
    let live = config.watch.live();
    let (stats, status) = status(&log, config.status, config.notifier, live);
    let figures = Arc::clone(&stats);
    let watching = config
        .watch
        .start(Arc::new(move || figures.families()), &log);
    let spawner = Spawner {
        stats: Arc::clone(&stats),
        ui: log.clone(),
        force_close: CancellationToken::new(),
        tracker: TaskTracker::new(),
        idle: config.idle_timeout,
        tls,
        room,
        proxy: config.proxy,
        hex_dump: config.hex_dump,
        faults: config.faults,
        admission: config.admission,
    };
    let mut accepting = accept_all(listeners, accept_limit, &spawner);
    tokio::select! {
        biased;
        _ = shutdown => {}
        // Only if every listener failed to register: nothing can be served.
        () = async { while accepting.join_next().await.is_some() {} } => {}
    }
    // Refuse new connections now, including those the kernel already completed in the backlog:
    // aborting the accept loops drops their listeners.
    accepting.abort_all();
    while accepting.join_next().await.is_some() {}
    let (closed_at_shutdown, cut_short) = drain(&spawner, config.shutdown_timeout, again).await;
    say_held_back(&spawner);
    if let Some(status) = status {
        status.abort();
    }
    drop(watching);
    log.finish_live();
    let snap = stats.snapshot();
    Summary {
        connections: snap.served,
        bytes: snap.bytes,
        closed_at_shutdown,
        cut_short,
        uptime: start.elapsed(),
        injected: stats.injected.tally(),
        refused: stats.refused.tally(),
    }
}

/// The server's figures (kept current while connections are open if a status line, the
/// service manager or a scraper (`live`) reads them), and the task that shows them on the
/// status line (`bar`) and tells them to the service manager, if either is wanted.
fn status(
    log: &Ui,
    bar: bool,
    notifier: Notifier,
    live: bool,
) -> (Arc<Stats>, Option<JoinHandle<()>>) {
    // Only with a status line to draw: a live timer costs every idle worker a clock read and
    // a timer-wheel check each time it parks, that is, on every ping-pong message.
    let bar = if bar {
        log.progress_bar(false, None, log::STATUS_TEMPLATE)
    } else {
        None
    };
    let drawn = bar.is_some() || notifier.is_enabled();
    let stats = Arc::new(Stats::new(drawn || live));
    let task = drawn.then(|| {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let (mut bar_rate, mut notify_rate) = (log::RateMeter::new(), log::RateMeter::new());
            let mut tick = tokio::time::interval(STATUS_EVERY);
            for n in 0u64.. {
                tick.tick().await;
                if let Some(bar) = &bar {
                    bar.set_message(log::status_line(&stats, &mut bar_rate));
                }
                if notifier.is_enabled() && n % NOTIFY_EVERY == 0 {
                    // A manager that is busy or gone costs this update only.
                    let _ = notifier.status(&log::status_line(&stats, &mut notify_rate));
                }
            }
        })
    });
    (stats, task)
}

/// An accept loop per listener, each on its own task.
fn accept_all(
    listeners: Vec<Listener>,
    limit: Option<Arc<Semaphore>>,
    spawner: &Spawner,
) -> JoinSet<()> {
    let mut accepting = JoinSet::new();
    for listener in listeners {
        let (limit, spawner) = (limit.clone(), spawner.clone());
        // A listener goes to the runtime here: registering it needs one.
        match listener {
            Listener::Tcp(l) => match tokio::net::TcpListener::from_std(l) {
                Ok(l) => accepting.spawn(accept_loop(l, limit, spawner)),
                Err(err) => accepting.spawn(registration_failed(err, spawner)),
            },
            Listener::Unix(l) => match tokio::net::UnixListener::from_std(l) {
                Ok(l) => accepting.spawn(accept_loop(l, limit, spawner)),
                Err(err) => accepting.spawn(registration_failed(err, spawner)),
            },
            // `run` hands UDP sockets to `udp::run`, never here.
            Listener::Udp(_) => accepting.spawn(registration_failed(
                io::ErrorKind::Unsupported.into(),
                spawner,
            )),
        };
    }
    accepting
}

/// After the accept loops stopped: waits for the open connections up to `timeout` (or until
/// `again`), then closes the rest. How many were closed, and whether `again` cut the wait.
async fn drain(spawner: &Spawner, timeout: Duration, again: impl Future) -> (u64, bool) {
    let (stats, log) = (&spawner.stats, &spawner.ui);
    // Connections that never sent a ClientHello (or a whole PROXY protocol header) are
    // closed, not waited for.
    let silent = spawner.tls.as_ref().map_or(0, tls::Server::stop_silent)
        + spawner.room.as_ref().map_or(0, proxy::Room::stop_silent);
    let silent = silent as u64;
    spawner.tracker.close();
    let open = stats.active.load(Ordering::Relaxed).saturating_sub(silent);
    if open > 0 {
        let line = format!(
            "stopping: waiting up to {} for {open} open connection{} (a second Ctrl-C or SIGTERM closes {} now)",
            ui::duration(timeout),
            if open == 1 { "" } else { "s" },
            if open == 1 { "it" } else { "them" }
        );
        Event::new(Level::Info, "stopping", line)
            .field("open", open)
            .field("timeout_s", timeout.as_secs_f64())
            .say(log);
    }
    let mut cut_short = false;
    let drained = tokio::select! {
        biased;
        done = tokio::time::timeout(timeout, spawner.tracker.wait()) => done.is_ok(),
        _ = again => {
            cut_short = true;
            false
        }
    };
    if drained {
        return (0, false);
    }
    stats.closing.store(true, Ordering::Relaxed);
    spawner.force_close.cancel();
    spawner.tracker.wait().await;
    (stats.cut.load(Ordering::Relaxed), cut_short)
}

/// What every accept loop needs to start a connection's task.
#[derive(Clone)]
struct Spawner {
    stats: Arc<Stats>,
    ui: Ui,
    force_close: CancellationToken,
    tracker: TaskTracker,
    idle: Option<Duration>,
    tls: Option<tls::Server>,
    /// Plain behind a proxy: the room for headers.
    room: Option<proxy::Room>,
    proxy: Option<ProxyProtocol>,
    /// `-x`.
    hex_dump: bool,
    faults: Option<Arc<fault::Plan>>,
    admission: Option<Arc<admit::Gate>>,
}

impl Spawner {
    /// Room for what a connection just accepted must send before it is served (its TLS
    /// handshake, or plain its PROXY protocol header), if anything: waits while there is none.
    async fn admit(&self) -> Option<life::Ticket> {
        match (&self.tls, &self.room) {
            (Some(tls), _) => Some(life::Ticket::Tls(tls.admit().await)),
            (None, Some(room)) => Some(life::Ticket::Header(room.admit().await)),
            (None, None) => None,
        }
    }

    /// Counts the connection as active and served, and runs it on its own task: with its
    /// permit (plain, with a limit), or admitted to its handshake or header (`ticket`), and
    /// its place under `--max-per-ip` (`pass`).
    fn spawn<C: Connection>(
        &self,
        stream: C,
        peer: Peer,
        permit: Option<OwnedSemaphorePermit>,
        ticket: Option<life::Ticket>,
        place: Place,
    ) {
        let stats = Arc::clone(&self.stats);
        let ui = self.ui.clone();
        // A child token each: polling a token on every wake-up takes its lock, and one token
        // shared by every connection would make that lock contended.
        let force_close = self.force_close.child_token();
        let (idle, proxy) = (self.idle, self.proxy);
        let faults = self.faults.clone();
        let admission = self.admission.clone();
        stats.active.fetch_add(1, Ordering::Relaxed);
        let number = stats.served.fetch_add(1, Ordering::Relaxed) + 1;
        let dump_as = self.hex_dump.then_some(number);
        self.tracker.spawn(async move {
            let pass = match place {
                Place::Taken(pass) => pass,
                Place::Awaited(gate) => match gate.check(peer, &stats.refused, &ui).await {
                    Some(pass) => Some(pass),
                    None => {
                        // Refused after all: no connection served.
                        stream.cut_on_close();
                        stats.active.fetch_sub(1, Ordering::Relaxed);
                        stats.served.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                },
            };
            let conn = life::Conn {
                peer,
                idle,
                stats: &stats,
                log: &ui,
                force_close: &force_close,
                proxy,
                dump_as,
                faults: faults.as_deref(),
                admission: admission.as_ref(),
            };
            life::connection(stream, &conn, permit, ticket).await;
            drop(pass);
        });
    }
}

/// Where connections wait before they take a `--max-connections` permit: TLS handshakes in
/// the TLS server's room, plain PROXY headers in a room of their own; and the limit the accept
/// loops take a permit from before accept (none when either room takes it later).
fn rooms(
    config: &Config,
    limit: Option<Arc<Semaphore>>,
) -> (
    Option<tls::Server>,
    Option<proxy::Room>,
    Option<Arc<Semaphore>>,
) {
    let tls = config.tls.clone().map(|tls| {
        tls::Server::new(tls, limit.clone(), config.max_connections)
            .with_faults(config.faults.clone())
    });
    let room = match (&tls, config.proxy) {
        (None, Some(mode)) => Some(proxy::Room::new(
            mode,
            limit.clone(),
            config.max_connections,
        )),
        _ => None,
    };
    let accept_limit = if tls.is_some() || room.is_some() {
        None
    } else {
        limit
    };
    (tls, room, accept_limit)
}

/// At a stop: the rate-limited lines still held back, which the tasks due to say them would
/// not live to say.
fn say_held_back(spawner: &Spawner) {
    let log = &spawner.ui;
    if spawner.tls.is_some() {
        tls::say_held_back(log);
    }
    if spawner.proxy.is_some() {
        proxy::say_held_back(log);
    }
    if spawner.admission.is_some() {
        admit::say_held_back(log);
    }
}

/// A connection's place under `--max-per-ip`.
enum Place {
    /// Taken at accept, or none needed.
    Taken(Option<admit::Pass>),
    /// Over the limit at accept: waited for, briefly, in the connection's own task.
    Awaited(Arc<admit::Gate>),
}

/// A listener the runtime could not take: said once, and that listener serves nothing.
async fn registration_failed(err: io::Error, spawner: Spawner) {
    spawner
        .ui
        .warn(&format!("cannot serve a listener: {}", io_reason(&err)));
}

/// Accepts forever, handing each connection (with its permit, if there is a limit, or its
/// room for a TLS handshake) to the spawner. Only returns if the semaphore is closed, which
/// never happens.
async fn accept_loop<L: Accept>(listener: L, limit: Option<Arc<Semaphore>>, spawner: Spawner) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    let mut throttle = log::Throttle::default();
    loop {
        // The permit comes first: while the server is full, connections wait in the backlog
        // instead of being accepted and left unserved.
        let permit = match &limit {
            Some(sem) => match Arc::clone(sem).acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
            None => None,
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff.reset();
                // Refused: closed here, at once, with a reset, so the client cannot take it
                // for an echo of nothing; its permit is given back.
                // Behind a proxy the client is known only from its header: checked then.
                // Behind a proxy the client is known only from its header: checked then.
                let place = match (&spawner.admission, spawner.proxy) {
                    (None, _) | (Some(_), Some(_)) => Place::Taken(None),
                    (Some(gate), None) => {
                        let (refused, ui) = (&spawner.stats.refused, &spawner.ui);
                        match gate.check_now(peer, refused, ui) {
                            Verdict::Pass(pass) => Place::Taken(Some(pass)),
                            Verdict::Wait => Place::Awaited(Arc::clone(gate)),
                            Verdict::Refused => {
                                stream.cut_on_close();
                                continue;
                            }
                        }
                    }
                };
                let ticket = spawner.admit().await;
                spawner.spawn(stream, peer, permit, ticket, place);
            }
            Err(err) => {
                spawner.stats.error(ErrorKind::Accept);
                // Sleeping is what keeps EMFILE from spinning: the pending connection stays in
                // the backlog, so retrying at once would fail at once, forever.
                let reason = io_reason(&err);
                let line = format!(
                    "cannot accept a connection: {reason}; retrying in {}",
                    ui::duration(backoff.peek())
                );
                if let Some(line) = throttle.admit(line) {
                    let event = Event::new(Level::Warn, "accept_failed", line);
                    event.reason(reason).say(&spawner.ui);
                }
                drop(permit);
                tokio::time::sleep(backoff.pause()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serve_echoes_and_stops() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            vec![Listener::Tcp(listener)],
            Config::quiet(),
            stopped,
            std::future::pending::<()>(),
        ));
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"hello");
        stop.send(()).unwrap();
        let summary = server.await.unwrap();
        assert_eq!((summary.connections, summary.bytes), (1, 5));
    }
}
