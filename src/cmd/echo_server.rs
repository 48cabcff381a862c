//! `echo-server`: an echo server meant to be left running, over TCP or Unix-domain sockets.
//!
//! Shape (after mini-redis's `server::run`): [`serve`] takes already bound listeners and a
//! shutdown future, so tests and benchmarks can run it in-process; [`run`] is the command-line
//! wrapper that binds, prints the address, waits for SIGINT/SIGTERM/SIGHUP and prints the
//! summary.
//!
//! What it adds to the textbook accept loop: a permit taken *before* `accept()` for
//! `--max-connections` (clients beyond it wait in the kernel's backlog; over TLS, once the
//! handshake is done, see `tls`); accept errors such as
//! EMFILE logged (rate-limited) and retried forever with back-off instead of exiting or
//! spinning (tokio#3529); on shutdown the listener is dropped at once (the kernel would
//! otherwise keep completing handshakes into it), open connections get a deadline
//! (TaskTracker), then are reset (CancellationToken; an RST, so a client can tell a cut from
//! a finished echo).

mod conn;
mod inetd;
mod log;
mod stats;
mod tls;
mod udp;

use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use color_eyre::eyre::{self, WrapErr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::EchoServerArgs;
use crate::exit::Exit;
use crate::net::activation;
use crate::net::endpoint::{Endpoint, UnixAddr};
use crate::net::listen::{self, Listener};
use crate::net::stream::{Accept, Connection, Peer};
use crate::report::io_reason;
use crate::runtime::{self, Flavor};
use crate::sys::backoff::Backoff;
use crate::sys::notify::Notifier;
use crate::ui::quote;
use crate::ui::{self, Ui};

use stats::Stats;

/// How the server behaves; everything but the address and where messages go comes from the
/// options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Serve at most this many connections at once.
    pub max_connections: Option<NonZeroUsize>,
    /// Close a connection after this long without any byte moving.
    pub idle_timeout: Option<Duration>,
    /// After the shutdown future resolves, how long open connections may go on.
    pub shutdown_timeout: Duration,
    /// Where messages go.
    pub ui: Ui,
    /// Draw the live status line (when `ui` allows one: stderr a terminal, not `-q`).
    pub status: bool,
    /// The service manager to tell the status figures (a no-op outside systemd).
    pub notifier: Notifier,
    /// Serve TLS with this config (`--tls`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The service manager's notifier, or a silent one (with a warning) when `NOTIFY_SOCKET` is
/// unusable: a broken notification must not stop the echo service.
fn notifier(ui: &Ui) -> Notifier {
    Notifier::from_env().unwrap_or_else(|err| {
        ui.warn(&format!(
            "not notifying the service manager: {}",
            io_reason(&err)
        ));
        Notifier::default()
    })
}

#[cfg(test)]
impl Config {
    /// No limits, a 5 s drain, no messages: a server for unit tests.
    pub fn quiet() -> Self {
        Config {
            max_connections: None,
            idle_timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            ui: Ui::silent(),
            status: false,
            notifier: Notifier::default(),
            tls: None,
        }
    }
}

/// What a server did over its life, returned by [`serve`] when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub connections: u64,
    /// Bytes echoed back, over all connections.
    pub bytes: u64,
    /// Connections still open at the shutdown deadline (or at a second stop request), reset
    /// by the server.
    pub closed_at_shutdown: u64,
    /// Whether a second stop request cut the wait for open connections short.
    pub cut_short: bool,
    /// From the start of [`serve`] until it returned.
    pub uptime: Duration,
}

/// Runs the subcommand: bind, print the address on stdout, serve until SIGINT, SIGTERM or
/// SIGHUP, print the summary on stderr. Exit 0 after a signal; a bind failure is an error
/// (exit 1).
pub fn run(args: &EchoServerArgs, ui: &Ui) -> eyre::Result<Exit> {
    // Multi-thread, measured: in one-round runs of `cargo bench --bench echo -- server` on
    // this 2-core machine, a current-thread build reached 0.48x the textbook server's msgs/s
    // at 64 B x 50 and 2.9x its bulk MB/s; the multi-thread build 1.65x and 5.9x. (The machine
    // was shared and noisy, so the figures are rough, but they point the same way.)
    // Before the runtime opens descriptors of its own: the handed-over sockets start at fd 3.
    let inherited = match inetd::given(args)? {
        Some(inetd::Given::Connection(one)) => return inetd::run(one, args, ui),
        Some(inetd::Given::Socket(socket)) => Some(vec![socket]),
        None => activation::inherited_listeners()?,
    };
    // Before anything is bound: a bad --cert or --key names its file and binds nothing.
    let tls_files = tls::prepare(&args.tls)?;
    let udp_handed = inherited
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| matches!(s.listener, Listener::Udp(_))));
    if udp_handed || inherited.is_none() && matches!(args.listen.endpoint, Endpoint::Udp(_)) {
        return udp::run(inherited, args, ui);
    }
    let notifier = notifier(ui);
    runtime::block_on(Flavor::MultiThread, async {
        // Signals first, so a SIGTERM sent right after the address line is not lost.
        let (signal, again) = runtime::shutdown_signals()?;
        let bound = match inherited {
            Some(sockets) => handed_over(sockets, args, ui)?,
            None => {
                let endpoint = &args.listen.endpoint;
                let socket_file = matches!(endpoint, Endpoint::Unix(UnixAddr::Path(_)));
                if args.mode.is_some() && !socket_file {
                    ui.warn(&format!(
                        "--mode applies to a socket file (unix:PATH); ignored for {endpoint}"
                    ));
                }
                let bound = listen::bind(endpoint, args.listen.stack, args.mode, ui)
                    .wrap_err_with(|| format!("cannot listen on {endpoint}"))?;
                vec![bound]
            }
        };
        // Before the address line: a script that has read it finds the fingerprint said.
        let tls_config = match tls_files {
            Some(files) => {
                let bound_listeners = bound.iter().map(|b| &b.listener);
                Some(tls::config(files, &args.tls, bound_listeners, ui)?)
            }
            None => None,
        };
        let mut listeners = Vec::new();
        let mut files = Vec::new();
        for bound in bound {
            let scheme = if args.tls.enabled { "tls:" } else { "" };
            announce(&format!("{scheme}{}", bound.endpoint), ui)?;
            // A socket path may hold any byte: quoted (when it needs it) for the terminal. With
            // its scheme, as on stdout: on a terminal this may be the one address line shown.
            let shown = quote::address(&bound.endpoint);
            ui.info(&format!("listening on {scheme}{shown}"));
            listeners.push(bound.listener);
            files.push(bound.file);
        }
        if let Err(err) = notifier.ready() {
            ui.detail(&io_reason(&err));
        }

        let config = Config {
            max_connections: args.max_connections,
            idle_timeout: args.idle_timeout,
            shutdown_timeout: args.shutdown_timeout,
            ui: ui.clone(),
            status: !args.no_status,
            notifier: notifier.clone(),
            tls: tls_config,
        };
        let stopping = async {
            signal.await;
            if let Err(err) = notifier.stopping() {
                ui.detail(&io_reason(&err));
            }
        };
        let summary = serve(listeners, config, stopping, again).await;
        // Socket files go with the server, if they are still the ones made here.
        drop(files);
        ui.info(&summary_line(&summary));
        Ok(Exit::Success)
    })?
}

/// The sockets systemd handed over, with the addresses a client would type. Socket files
/// are the service manager's: none is replaced or removed here, and `--mode` has no say.
fn handed_over(
    sockets: Vec<activation::InheritedSocket>,
    args: &EchoServerArgs,
    ui: &Ui,
) -> eyre::Result<Vec<listen::Bound>> {
    if args.mode.is_some() {
        ui.warn("--mode is ignored: the service manager made the socket files (SocketMode=)");
    }
    if args.listen.typed {
        ui.warn(&format!(
            "serving the {} socket(s) systemd handed over; ADDR {} is ignored",
            sockets.len(),
            quote::address(&args.listen.endpoint.to_string())
        ));
    }
    sockets
        .into_iter()
        .map(|socket| {
            let endpoint = socket
                .listener
                .address()
                .wrap_err_with(|| format!("socket activation: fd {}", socket.fd))?;
            let named = socket.name.map(|n| format!(" ({n})")).unwrap_or_default();
            ui.detail(&format!("fd {}{named}: {endpoint}", socket.fd));
            Ok(listen::Bound {
                listener: socket.listener,
                endpoint,
                file: None,
            })
        })
        .collect()
}

/// The bound address as a line on stdout, written at once so `read` in a script returns now.
/// Scripts find the server by that line: a stdout that cannot take it (closed, full, or its
/// reader gone, `| true`) is an error before anything is served, not a server nobody can find.
/// Unlike a data writer's, a broken pipe here is not a normal end. On the terminal stderr is
/// on, the line is left out: the "listening on" line says it there.
fn announce(endpoint: &str, ui: &Ui) -> eyre::Result<()> {
    if stdout_is_stderr_terminal(ui) {
        return Ok(());
    }
    let line = format!("{endpoint}\n");
    crate::sys::stdio::stdout()
        .and_then(|fd| crate::sys::fdio::write_all(fd, line.as_bytes()))
        .map_err(|err| {
            let gone = err.kind() == io::ErrorKind::BrokenPipe;
            let what = if gone {
                "cannot write the address to standard output (nothing reads it)"
            } else {
                "cannot write the address to standard output"
            };
            eyre::Report::new(err).wrap_err(what)
        })
}

/// Whether stdout is the terminal stderr is, with the "listening on" line to be shown there:
/// the address line on stdout would then show the address a second time to the person
/// reading, while no script can be reading it (scripts read a pipe or a file). The address is
/// then said once, on stderr; under `-q`, or when stdout goes anywhere else, it goes on stdout.
fn stdout_is_stderr_terminal(ui: &Ui) -> bool {
    let (out, err) = (rustix::stdio::stdout(), rustix::stdio::stderr());
    let device = |fd: std::os::fd::BorrowedFd<'static>| {
        rustix::fs::fstat(fd)
            .ok()
            .filter(|_| rustix::termios::isatty(fd))
            .map(|stat| stat.st_rdev)
    };
    !ui.quiet && ui.stderr_tty && device(out).is_some() && device(out) == device(err)
}

fn summary_line(s: &Summary) -> String {
    let connections = match s.connections {
        1 => "1 connection".to_string(),
        n => format!("{n} connections"),
    };
    let mut line = format!(
        "served {connections}, echoed {} in {}",
        ui::bytes(s.bytes),
        ui::duration(s.uptime),
    );
    if s.closed_at_shutdown > 0 {
        line.push_str(&format!(
            "; closed {} still open at {}",
            s.closed_at_shutdown,
            if s.cut_short {
                "the second stop signal"
            } else {
                "the shutdown deadline"
            }
        ));
    }
    line
}

/// Accept-error back-off: starts short so a transient error costs little, doubles so a
/// persistent one (EMFILE while every descriptor is in use) costs no CPU, and never gives up.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often the status line is redrawn.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// The service manager hears the status figures every this many redraws (2 s).
const NOTIFY_EVERY: u64 = 8;

/// Serves echo on `listener` until `shutdown` resolves, then stops accepting at once, lets open
/// connections finish within `config.shutdown_timeout` (or until `again` resolves, for a user
/// who will not wait), closes the rest and returns what was done. Never fails: accept errors
/// are logged and retried, connection errors end only their connection.
pub async fn serve(
    listeners: Vec<Listener>,
    config: Config,
    shutdown: impl Future + Send,
    again: impl Future + Send,
) -> Summary {
    let start = Instant::now();
    let tracker = TaskTracker::new();
    let force_close = CancellationToken::new();
    let limit = config
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.get().min(Semaphore::MAX_PERMITS))));
    let log = config.ui;

    // Only with a status line to draw: a live timer costs every idle worker a clock read and
    // a timer-wheel check each time it parks, that is, on every ping-pong message.
    let bar = if config.status {
        log.progress_bar(false, None, log::STATUS_TEMPLATE)
    } else {
        None
    };
    let notifier = config.notifier;
    let live = bar.is_some() || notifier.is_enabled();
    let stats = Arc::new(Stats::new(live));
    let status = live.then(|| {
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

    let tls = config
        .tls
        .map(|tls| tls::Server::new(tls, limit.clone(), config.max_connections));
    // Over TLS the permit is taken once the handshake is done (see `tls`), not before accept.
    let accept_limit = if tls.is_some() { None } else { limit };
    let spawner = Spawner {
        stats: Arc::clone(&stats),
        ui: log.clone(),
        force_close: force_close.clone(),
        tracker: tracker.clone(),
        idle: config.idle_timeout,
        tls,
    };
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        let (limit, spawner) = (accept_limit.clone(), spawner.clone());
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

    // Connections that never sent a ClientHello are closed, not waited for.
    let silent = spawner.tls.as_ref().map_or(0, tls::Server::stop_silent) as u64;
    tracker.close();
    let open = stats.active.load(Ordering::Relaxed).saturating_sub(silent);
    if open > 0 {
        log.info(&format!(
            "stopping: waiting up to {} for {open} open connection{} (a second Ctrl-C or SIGTERM closes {} now)",
            ui::duration(config.shutdown_timeout),
            if open == 1 { "" } else { "s" },
            if open == 1 { "it" } else { "them" }
        ));
    }
    let mut closed_at_shutdown = 0;
    let mut cut_short = false;
    let drained = tokio::select! {
        biased;
        done = tokio::time::timeout(config.shutdown_timeout, tracker.wait()) => done.is_ok(),
        _ = again => {
            cut_short = true;
            false
        }
    };
    if !drained {
        stats.closing.store(true, Ordering::Relaxed);
        force_close.cancel();
        tracker.wait().await;
        closed_at_shutdown = stats.cut.load(Ordering::Relaxed);
    }
    if spawner.tls.is_some() {
        tls::say_held_back(&log);
    }
    if let Some(status) = status {
        status.abort();
    }
    log.finish_live();
    let snap = stats.snapshot();
    Summary {
        connections: snap.served,
        bytes: snap.bytes,
        closed_at_shutdown,
        cut_short,
        uptime: start.elapsed(),
    }
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
}

impl Spawner {
    /// Counts the connection as active and served, and runs it on its own task: with its
    /// permit (plain, with a limit), or admitted to its TLS handshake (`ticket`).
    fn spawn<C: Connection>(
        &self,
        stream: C,
        peer: Peer,
        permit: Option<OwnedSemaphorePermit>,
        ticket: Option<tls::Ticket>,
    ) {
        let stats = Arc::clone(&self.stats);
        let ui = self.ui.clone();
        // A child token each: polling a token on every wake-up takes its lock, and one token
        // shared by every connection would make that lock contended.
        let force_close = self.force_close.child_token();
        let idle = self.idle;
        stats.active.fetch_add(1, Ordering::Relaxed);
        stats.served.fetch_add(1, Ordering::Relaxed);
        self.tracker.spawn(async move {
            connection(
                stream,
                peer,
                permit,
                idle,
                &stats,
                &ui,
                &force_close,
                ticket,
            )
            .await;
        });
    }
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
                let ticket = match &spawner.tls {
                    Some(tls) => Some(tls.admit().await),
                    None => None,
                };
                spawner.spawn(stream, peer, permit, ticket);
            }
            Err(err) => {
                // Sleeping is what keeps EMFILE from spinning: the pending connection stays in
                // the backlog, so retrying at once would fail at once, forever.
                if let Some(line) = throttle.admit(format!(
                    "cannot accept a connection: {}; retrying in {}",
                    io_reason(&err),
                    ui::duration(backoff.peek())
                )) {
                    spawner.ui.warn(&line);
                }
                drop(permit);
                tokio::time::sleep(backoff.pause()).await;
            }
        }
    }
}

/// One connection's life: bookkeeping around [`conn::echo`], and closing it if the shutdown
/// deadline passes first. The accept loop has already counted it as active and served; this
/// takes it out of `active` at the end. Returns the reason when it ended on an I/O error.
// One more than clippy's limit: the TLS ticket joined the plain connection's arguments.
#[allow(clippy::too_many_arguments)]
async fn connection<C: Connection>(
    mut stream: C,
    peer: Peer,
    permit: Option<OwnedSemaphorePermit>,
    idle: Option<Duration>,
    stats: &Stats,
    log: &Ui,
    force_close: &CancellationToken,
    ticket: Option<tls::Ticket>,
) -> Option<String> {
    let start = Instant::now();
    stream.prepare();
    if log.verbose > 0 {
        log.detail(&format!("{peer}: open"));
    }
    let mut echoed = 0;
    let mut cut = false;
    let mut failed = None;
    let outcome = {
        let echo = std::pin::pin!(tls::echo_either(
            ticket,
            &mut stream,
            peer,
            idle,
            stats,
            &mut echoed,
            log
        ));
        let cancelled = std::pin::pin!(force_close.cancelled());
        let until = UntilCancelled {
            work: echo,
            cancelled,
            closing: &stats.closing,
            registered: false,
        };
        match until.await {
            Some(Ok(conn::End::Closed)) => "closed".to_string(),
            Some(Ok(conn::End::Idle)) => "idle timeout".to_string(),
            Some(Err(e)) => failed.insert(io_reason(&e)).clone(),
            None => {
                stats.cut.fetch_add(1, Ordering::Relaxed);
                cut = true;
                "closed at shutdown".to_string()
            }
        }
    };
    if cut {
        // The client must be able to tell a cut from an echo that ended.
        stream.cut_on_close();
    }
    drop(stream);
    stats.active.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
    if log.verbose > 0 {
        log.detail(&format!(
            "{peer}: {outcome} after {}, {} echoed",
            ui::duration(start.elapsed()),
            ui::bytes(echoed),
        ));
    }
    failed
}

/// Runs a connection until it ends or the token is cancelled (`None`).
///
/// `select!` on `token.cancelled()` would poll the token on every wake-up of the connection,
/// taking two locks per echoed message. Here the token's wake-up is registered once (the waker
/// stays valid: it is this same task's), and later wake-ups look at `closing`, one relaxed
/// load, which the server sets before it cancels the token.
struct UntilCancelled<'a, 'p, F> {
    work: std::pin::Pin<&'p mut F>,
    cancelled: std::pin::Pin<&'p mut tokio_util::sync::WaitForCancellationFuture<'a>>,
    closing: &'a AtomicBool,
    registered: bool,
}

impl<F: Future> Future for UntilCancelled<'_, '_, F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        if let Poll::Ready(out) = self.work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if !self.registered || self.closing.load(Ordering::Relaxed) {
            self.registered = true;
            if self.cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_wording() {
        let s = Summary {
            connections: 1,
            bytes: 1536,
            closed_at_shutdown: 0,
            cut_short: false,
            uptime: Duration::from_millis(2500),
        };
        assert_eq!(
            summary_line(&s),
            "served 1 connection, echoed 1.50 KiB in 2s 500ms"
        );
        let s = Summary {
            connections: 3,
            closed_at_shutdown: 2,
            ..s
        };
        assert!(summary_line(&s).ends_with("; closed 2 still open at the shutdown deadline"));
        let s = Summary {
            cut_short: true,
            ..s
        };
        assert!(summary_line(&s).ends_with("; closed 2 still open at the second stop signal"));
    }

    #[test]
    fn throttle_holds_back_and_counts() {
        let mut t = log::Throttle::default();
        assert_eq!(t.admit("a".into()).as_deref(), Some("a"));
        assert_eq!(t.admit("b".into()), None);
        assert_eq!(t.admit("c".into()), None);
    }

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
