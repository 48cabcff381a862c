//! The stream server (TCP and Unix-domain sockets, plain or under TLS): its listeners bound
//! from ADDR or handed over by systemd, announced, then served by [`accept::serve`] until a
//! stop signal.

use std::sync::Arc;

use color_eyre::eyre::{self, WrapErr};

use super::log::Event;
use super::{Config, Summary, accept, admit, fault, metrics, start, tls};
use crate::cli::{EchoServerArgs, ProxyProtocol};
use crate::net::activation;
use crate::net::endpoint::{Endpoint, UnixAddr};
use crate::net::listen::{self, Listener, SocketFile};
use crate::runtime::{self, Flavor};
use crate::ui::{Level, Ui, quote};

/// Binds ADDR (or takes the `inherited` sockets), prints each address on stdout, serves until
/// SIGINT, SIGTERM or SIGHUP and returns what was served. `tls`: the TLS files loaded before
/// binding, if `--tls`.
pub(super) fn run(
    inherited: Option<Vec<activation::InheritedSocket>>,
    tls: Option<tls::Prepared>,
    args: &EchoServerArgs,
    ui: &Ui,
) -> eyre::Result<Summary> {
    // Multi-thread, measured: in one-round runs of `cargo bench --bench echo -- server` on
    // this 2-core machine, a current-thread build reached 0.48x the textbook server's msgs/s
    // at 64 B x 50 and 2.9x its bulk MB/s; the multi-thread build 1.65x and 5.9x. (The machine
    // was shared and noisy, so the figures are rough, but they point the same way.)
    let notifier = start::notifier(ui);
    runtime::block_on(Flavor::MultiThread, async {
        // Signals first, so a SIGTERM sent right after the address line is not lost.
        let (signal, again) = runtime::shutdown_signals()?;
        let bound = match inherited {
            Some(sockets) => handed_over(sockets, args, ui)?,
            None => vec![bind(args, ui)?],
        };
        // Before the address line: a script that has read it finds the fingerprint said.
        let tls_config = match tls {
            Some(files) => {
                let bound_listeners = bound.iter().map(|b| &b.listener);
                Some(tls::config(files, &args.tls, bound_listeners, ui)?)
            }
            None => None,
        };
        // Bound before the address line too: a script that read it may scrape at once.
        let watch = metrics::Watch::new(args.observe.metrics.as_ref(), ui)?;
        let (listeners, files) = announce(bound, args, ui)?;
        let admission = admission(args, &listeners)?;
        let faults = fault::Plan::new(&args.faults).map(Arc::new);
        if let Some(plan) = &faults {
            plan.announce(ui);
        }
        start::ready(&notifier, ui);
        let config = Config {
            max_connections: args.max_connections,
            idle_timeout: args.idle_timeout,
            shutdown_timeout: args.shutdown_timeout,
            ui: ui.clone(),
            status: !args.no_status,
            notifier: notifier.clone(),
            tls: tls_config,
            proxy: args.proxy_protocol,
            hex_dump: args.hex_dump,
            watch,
            faults,
            admission,
        };
        let stopping = async {
            signal.await;
            start::stopping(&notifier, ui);
        };
        let summary = accept::serve(listeners, config, stopping, again).await;
        // Socket files go with the server, if they are still the ones made here.
        drop(files);
        Ok(summary)
    })?
}

/// Who may connect. Address rules are an error on a Unix socket handed over by systemd, as
/// they are for unix:ADDR on the command line: its clients have no address, and a rule that
/// lets everyone in must not look as if it held; unless a PROXY header names every client.
fn admission(
    args: &EchoServerArgs,
    listeners: &[Listener],
) -> eyre::Result<Option<Arc<admit::Gate>>> {
    let admission = admit::Gate::new(&args.admission);
    let proxied = args.proxy_protocol == Some(ProxyProtocol::Required);
    if admission.is_some() && !proxied && listeners.iter().any(|l| matches!(l, Listener::Unix(_))) {
        eyre::bail!(
            "--allow, --deny and --max-per-ip match IP addresses, and a Unix socket's clients \
             have none unless a PROXY header names them (--proxy-protocol; else use the socket \
             file's permissions, --mode or SocketMode=)"
        );
    }
    Ok(admission)
}

/// Binds ADDR, with `--mode` for a socket file.
fn bind(args: &EchoServerArgs, ui: &Ui) -> eyre::Result<listen::Bound> {
    let endpoint = &args.listen.endpoint;
    let socket_file = matches!(endpoint, Endpoint::Unix(UnixAddr::Path(_)));
    if args.mode.is_some() && !socket_file {
        ui.warn(&format!(
            "--mode applies to a socket file (unix:PATH); ignored for {endpoint}"
        ));
    }
    listen::bind(endpoint, args.listen.stack, args.mode, ui)
        .wrap_err_with(|| format!("cannot listen on {endpoint}"))
}

/// Says each bound address (stdout for scripts, stderr for people) and splits the listeners
/// from the socket files, which must live as long as the server.
fn announce(
    bound: Vec<listen::Bound>,
    args: &EchoServerArgs,
    ui: &Ui,
) -> eyre::Result<(Vec<Listener>, Vec<Option<SocketFile>>)> {
    let mut listeners = Vec::new();
    let mut files = Vec::new();
    for bound in bound {
        let scheme = if args.tls.enabled { "tls:" } else { "" };
        start::announce(&format!("{scheme}{}", bound.endpoint), ui)?;
        // A socket path may hold any byte: quoted (when it needs it) for the terminal. With
        // its scheme, as on stdout: on a terminal this may be the one address line shown.
        let shown = quote::address(&bound.endpoint);
        Event::new(
            Level::Info,
            "listening",
            format!("listening on {scheme}{shown}"),
        )
        .field("address", format!("{scheme}{}", bound.endpoint))
        .say(ui);
        listeners.push(bound.listener);
        files.push(bound.file);
    }
    Ok((listeners, files))
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
