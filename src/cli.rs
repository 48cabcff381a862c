//! The whole command line, in one place: every clap type, every option's help text.
//! `///` comments here are what `--help`, the man pages and the completions show.

use std::ffi::OsString;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::exit::Exit;
use values::{parse_count, parse_duration, parse_mode, parse_source, parse_source_port};

pub mod endpoints;
pub mod faults;
pub mod measure;
pub mod report;
pub mod server;
pub mod tls;
pub mod values;

const EXAMPLES: &str = "\
Examples:
  asyncio-tool cat README.md            print a file, like GNU cat
  asyncio-tool cat -n *.rs | less       number lines across files
  coproc asyncio-tool echo-server 127.0.0.1:0
  read -r addr <&\"${COPROC[0]}\"         (bash) a server on a free port;
                                        read waits for its address
  printf 'hi\\n' | asyncio-tool echo-client \"$addr\"
                                        send a line, print the echo
  kill \"$COPROC_PID\"                    stop the server
  asyncio-tool completions bash > asyncio-tool.bash

Long options may be shortened to any unambiguous prefix (--squeeze).
A DURATION (--idle-timeout, --wait, ...) is plain seconds, as sleep
and nc -w take them (5, 0.2), or a number and a unit (500ms, 30s, 5m,
1h 30m); at least 1ms.

Exit status: 0 success, 1 runtime failure, 2 usage error,
130 interrupted (Ctrl-C).

Environment:
  NO_COLOR                  no colour, as --color never
  ASYNCIO_TOOL_BACKTRACE=1  an error is shown as the full report (each
                            cause on its own line, where it was raised;
                            a backtrace too with RUST_BACKTRACE=1)
                            instead of one line; RUST_BACKTRACE alone
                            does not change the one-line errors";

/// Async file and socket utility: a GNU-exact cat, and an echo server and client over TCP, UDP,
/// Unix sockets and TLS.
///
/// Data goes to stdout and nothing else does: messages, progress and errors go to stderr,
/// so every subcommand can sit in a pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "asyncio-tool",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    disable_help_subcommand = true,
    infer_long_args = true,
    after_long_help = EXAMPLES,
    // clap's errors would otherwise show a usage built from the options given
    // (`asyncio-tool --color <WHEN> <COMMAND>`), which reads as if they were required.
    override_usage = "asyncio-tool [OPTIONS] <COMMAND>"
)]
pub struct Cli {
    /// Options every subcommand accepts, before or after its name.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// More messages on stderr (repeatable: -vv).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour messages on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// The choice as the `Ui` takes it: `Some` when colour is forced on or
    /// off, `None` when it depends on stderr and `NO_COLOR`.
    pub fn forced(self) -> Option<bool> {
        match self {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        }
    }
}

/// Options shared by every subcommand.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// When to use colour on stderr.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub color: ColorChoice,

    /// No messages on stderr but errors and what is needed to go on (echo-server --tls's
    /// fingerprint); no progress or status lines. In echo-client's probe mode also no line per
    /// reply, as ping -q (--summary-only).
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Concatenate files to standard output, exactly as GNU cat does.
    // GNU cat accepts an option given twice (`-A -A`), so repeats must not be errors.
    // The usage line is GNU's: clap's own would list every flag, and clap_mangen renders a
    // short-only flag as `[-e ]` and FILE without its `...`.
    #[command(
        after_long_help = CAT_EXAMPLES,
        args_override_self = true,
        override_usage = "asyncio-tool cat [OPTION]... [FILE]..."
    )]
    Cat(CatArgs),
    /// Run an echo server (TCP, Unix socket, UDP or TLS): every byte received is sent back.
    // A fixed usage line, for the reason the top level has one.
    #[command(
        after_long_help = SERVER_EXAMPLES,
        override_usage = "asyncio-tool echo-server [OPTIONS] [ADDR] [PORT]"
    )]
    EchoServer(EchoServerArgs),
    /// Send standard input to an echo server (TCP, Unix socket, UDP or TLS) and print what comes
    /// back; or verify, probe or load it.
    // nc takes a flag twice (`-N -N`, `-4 -4`), so repeats must not be errors. The usage line
    // is fixed: clap_mangen renders the short-only -N as `[-N ]`, and clap's errors would show
    // a usage built from the flags given (`echo-client --ipv4 [ADDR] [PORT]`).
    #[command(
        after_long_help = CLIENT_EXAMPLES,
        args_override_self = true,
        override_usage = "asyncio-tool echo-client [OPTIONS] [ADDR] [PORT]"
    )]
    EchoClient(EchoClientArgs),
    /// Print a shell completion script to standard output.
    // A fixed usage line, for the reason the top level has one.
    #[command(
        after_long_help = COMPLETIONS_EXAMPLES,
        override_usage = "asyncio-tool completions [OPTIONS] <SHELL>"
    )]
    Completions(CompletionsArgs),
    /// Put the --json results (or --hdr-log files) of many probe or load runs together: counts
    /// and rates summed, latency percentiles from the merged histogram, a row per run.
    // A fixed usage line, for the reason the top level has one.
    #[command(override_usage = "asyncio-tool report [OPTIONS] [FILE]...")]
    Report(report::ReportArgs),
}

const CAT_EXAMPLES: &str = "\
Examples:
  asyncio-tool cat f - g      f's contents, then stdin, then g's
  asyncio-tool cat            copy standard input to standard output
  asyncio-tool cat -A notes   show tabs, line ends and control bytes

A file that cannot be read is reported on stderr and skipped; the
others are still printed and the exit status is 1.";

/// `cat`'s options: GNU cat's, letter for letter.
#[derive(Debug, Args, Clone, Default)]
pub struct CatArgs {
    /// Equivalent to -vET.
    #[arg(short = 'A', long = "show-all")]
    pub show_all: bool,

    /// Number nonempty output lines, overrides -n.
    #[arg(short = 'b', long = "number-nonblank")]
    pub number_nonblank: bool,

    /// Equivalent to -vE.
    #[arg(short = 'e')]
    pub e: bool,

    /// Display $ at end of each line.
    #[arg(short = 'E', long = "show-ends")]
    pub show_ends: bool,

    /// Number all output lines.
    #[arg(short = 'n', long = "number")]
    pub number: bool,

    /// Suppress repeated empty output lines.
    #[arg(short = 's', long = "squeeze-blank")]
    pub squeeze_blank: bool,

    /// Equivalent to -vT.
    #[arg(short = 't')]
    pub t: bool,

    /// Display TAB characters as ^I.
    #[arg(short = 'T', long = "show-tabs")]
    pub show_tabs: bool,

    /// (ignored: output is never held back)
    #[arg(short = 'u')]
    pub unbuffered: bool,

    /// Use ^ and M- notation, except for LFD and TAB.
    #[arg(short = 'v', long = "show-nonprinting")]
    pub show_nonprinting: bool,

    /// Show a progress bar on stderr even when it would be hidden.
    #[arg(long)]
    pub progress: bool,

    /// More messages on stderr, e.g. which copy method each file used (no short form here:
    /// -v is --show-nonprinting).
    #[arg(long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Files to print, in order; with none, or when FILE is -, read standard input.
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub files: Vec<OsString>,
}

const SERVER_EXAMPLES: &str = "\
Examples:
  asyncio-tool echo-server                  listen on 127.0.0.1:8080
  coproc asyncio-tool echo-server 127.0.0.1:0
  read -r addr <&\"${COPROC[0]}\"             (bash) free port; read waits
                                            until it listens, as the
                                            address is the one stdout line
  asyncio-tool echo-server :8080            every address, IPv4 and IPv6
                                            (as '[::]:8080'; -6: IPv6 only)
  asyncio-tool echo-server 0.0.0.0 8080     HOST PORT, as the client takes it
  asyncio-tool echo-server -l -p 8080       nc's spelling of '8080' (-l, -k: no-ops)
  asyncio-tool echo-server -x 7007          the traffic as a hex dump on stderr
  asyncio-tool echo-server -v '[::1]:7007'  IPv6, log each connection
  asyncio-tool echo-server '[fe80::1%eth0]:7'
                                            link-local, with its interface
  asyncio-tool echo-server --mode 660 unix:/run/echo.sock
                                            a Unix socket file, group-writable
  asyncio-tool echo-server unix:@echo       a Linux abstract name (no file)
  asyncio-tool echo-server tls:0.0.0.0:8443 TLS with a self-signed certificate;
                                            its sha256 fingerprint goes to stderr
  asyncio-tool echo-server --tls --cert s.pem --key s.key --client-ca ca.pem 8443
                                            TLS requiring client certificates
  asyncio-tool echo-server udp:0.0.0.0:7007 UDP echo (RFC 862); -u 0.0.0.0:7007
                                            is the same
  asyncio-tool echo-server -u :echo         UDP on every address, port 7 (echo
                                            in /etc/services)
  asyncio-tool echo-server --delay 10ms..50ms --reset-probability 0.1 :7007
                                            a slow, flaky server, to test clients
  asyncio-tool echo-server --allow 10.0.0.0/8 --max-per-ip 4 :7007
                                            only the 10/8 network, 4 at a time each
  systemd-socket-activate --inetd -a -l 7007 asyncio-tool echo-server
                                            inetd mode: a process per connection
  echo stream tcp nowait nobody /usr/bin/asyncio-tool asyncio-tool echo-server
                                            the same, as a line of inetd.conf
  asyncio-tool echo-server :7007 --metrics :9464
                                            Prometheus metrics at
                                            http://HOST:9464/metrics
  asyncio-tool echo-server -v --log-format json :7007 2>&1 | jq .
                                            one JSON object per event
  kill -USR1 PID                            print the figures once (the server
                                            goes on)

On every address the address line is [::]:PORT (0.0.0.0:PORT under
-4), and a client given it connects to this host, as the kernel takes
an unspecified address. tcp://, udp://, tls:// and unix:///PATH are
read as tcp:, udp:, tls: and unix:PATH.

Stops cleanly on Ctrl-C, SIGTERM or SIGHUP (SIGHUP stays ignored under
nohup): new connections are refused at once, open ones get
--shutdown-timeout to finish (a second signal ends them at once), then
a summary goes to stderr. Connections cut this way are reset, so a
client sees ECONNRESET rather than a clean end. SIGUSR1 prints the
figures --metrics serves (open, served, bytes, errors) once on stderr,
even under -q, as socat 1.8's --statistics does; the server goes on.

Under systemd socket activation (LISTEN_PID and LISTEN_FDS set for it)
it serves the listening TCP or Unix stream sockets (or the UDP sockets)
it was handed instead of ADDR, printing each one's address; with NOTIFY_SOCKET it sends
READY=1, STATUS= and STOPPING=1 (Type=notify).

inetd mode: started for one connection, on standard input (inetd
'stream nowait', xinetd, systemd-socket-activate --inetd -a) or on fd 3
(systemd Accept=yes, systemd-socket-activate -a), it echoes it until the
client closes its side (--idle-timeout applies), closes it and exits: 1
if the connection ended on an error, else 0. Nothing but the echo goes
to the client: stdout is not written to, and a stderr that is the
connection itself (inetd, xinetd) gets no messages; a stderr of its own
(the journal) does. Over TLS it needs --cert and --key. A listening or
UDP socket on stdin (inetd 'wait', systemd-socket-activate --inetd
without -a) is served as a handed-over socket is, until a stop signal.
Automatic when no ADDR is given and stdin is such a socket (a Unix
connection only if accepted from a listener: a socket pair is a
program's stdio); --inetd also takes a socket pair (socat EXEC:).

Over UDP each datagram (up to 65507 bytes, 65527 over IPv6) goes back
unchanged to its sender, from the address it was sent to (also on a
wildcard address). So that the server cannot be made a reflector or one
end of an endless packet loop, it drops, and counts by reason, datagrams from a
port below 1024 or port 0 (services such as chargen, not clients), from
a broadcast (a directed one too) or multicast address, sent to one, or
from its own port. It also takes apart a loop with another echo
service on any port, one datagram at a time: once a source has sent 64
copies of copies in a row (each the reply sent to it the same number of
replies before, at most 16384, itself a copy, none more than 1s after
the one before), one of them is dropped, and one more after every 64 that
follow. A loop of K datagrams so ends after about 66 x K echoes (a
loop of thousands of distinct datagrams may now and then leave a
remainder of a hundred or so looping). No
client is slowed, and none loses anything by sending data again once (a
file twice, the probe and load modes at any --size). A client loses one
datagram in 65 where what it sends repeats, at a fixed spacing, what it
sent twice before, 64 times or more in a row: the output of yes, a run of
more than 66 blank lines, a file sent three times or more (our client
then exits 1). It is no rate limit: a flood of new datagrams from one
source is all echoed (unless --rate-limit says otherwise).
-v logs a dropped datagram's source, at most once a second per reason;
the summary at stop gives the counts. --max-connections,
--idle-timeout, --shutdown-timeout, --max-per-ip, --close-after and
--reset-probability are about connections, which UDP has none of: with
UDP they are usage errors.

A DURATION is plain seconds (5, 0.2) or a number and a unit (500ms,
30s, 5m, 1h); at least 1ms.";

/// `echo-server`'s options.
#[derive(Debug, Args, Clone)]
pub struct EchoServerArgs {
    /// Where to listen: ADDR, or a socket path with -U.
    #[command(flatten)]
    pub listen: endpoints::Listen,

    /// TLS: --tls, --cert, --key, --client-ca.
    #[command(flatten)]
    pub tls: tls::ServerTls,

    /// Watching it: --metrics, --log-format.
    #[command(flatten)]
    pub observe: server::Observe,

    /// The socket file's permissions for unix:PATH, in octal (e.g. 660); set as the socket is
    /// made, so it is never wider. Default: from the umask.
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    pub mode: Option<u32>,

    /// Serve at most N connections at once; further clients wait in the backlog (over TLS,
    /// with their handshake done: a connection still in its handshake holds no slot).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_connections: Option<NonZeroUsize>,

    /// Close a connection once no byte has moved either way for this long (e.g. 30, 30s, 5m); a
    /// client still reading what the server sends is not idle.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub idle_timeout: Option<Duration>,

    /// On Ctrl-C, SIGTERM or SIGHUP, give open connections this long to finish, then reset
    /// them; a second signal resets them at once.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub shutdown_timeout: Duration,

    /// Never show the live status line on stderr.
    #[arg(long)]
    pub no_status: bool,

    /// Expect a PROXY protocol header (v1 or v2, as HAProxy's send-proxy and send-proxy-v2
    /// write it) at the start of each connection, over TLS before the ClientHello: the client
    /// it names is the one -v and the logs show. A connection without a valid header is refused
    /// and logged; with =optional it is served as is (a direct health check). A v2 LOCAL header
    /// (the proxy's own check) or a v1 UNKNOWN one keeps the connection's own peer. A header
    /// must be whole within 10s (or --idle-timeout, if shorter); until it is, a connection
    /// holds no --max-connections slot, and a stop does not wait for it. Use it only where
    /// trusted proxies alone can connect, as the specification asks: anyone else can name any
    /// client in a header of their own. =optional guesses whether a header comes, which the
    /// specification forbids for that reason: keep it to a port that only the proxy and the
    /// health checks reach.
    #[arg(long, value_name = "MODE", value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "required")]
    pub proxy_protocol: Option<ProxyProtocol>,

    /// Serve the socket on standard input as inetd hands it over: one connection, then exit
    /// (nowait; xinetd, systemd-socket-activate --inetd -a, socat EXEC:), or a listening or UDP
    /// socket (wait). Without it this happens anyway when no ADDR is given and stdin is such a
    /// socket (a Unix connection only if accepted from a listener); --inetd also takes one end
    /// of a socket pair, and is an error when stdin is none of these.
    #[arg(long, conflicts_with_all = ["addr", "port", "listen_port", "udp", "unix"])]
    pub inetd: bool,

    /// Accepted for nc and ncat (nc -l, ncat --listen) and does nothing: echo-server always
    /// listens.
    #[arg(short = 'l', long = "listen")]
    pub listen_flag: bool,

    /// Accepted for nc and ncat (nc -k, ncat --keep-open) and does nothing: echo-server
    /// always serves connection after connection.
    #[arg(short = 'k', long = "keep-open")]
    pub keep_open: bool,

    /// Accepted for nc and ncat (nc -n, ncat --nodns: `-lvnp 8080`) and does nothing: ADDR is
    /// an IP address or localhost, which is looked up in /etc/hosts, never in DNS.
    #[arg(short = 'n', long = "nodns")]
    pub nodns: bool,

    /// Show the traffic on stderr as a hex dump, as socat -x and ncat --hex-dump do: each
    /// chunk (one read, or one datagram) with a header, '<' received or '>' sent back, the
    /// time (UTC), the client (as -v names it; a Unix client with its connection's number, as
    /// #N), and socat's length=N from=X to=Y (its place in that direction's stream; a
    /// datagram's from 0); then hexdump -C lines: offset, 16 bytes in hex, the bytes as ASCII
    /// ('.' for any other byte); under --log-format json one object per chunk instead (event
    /// hex_dump, the bytes in hex as data). Every transport; shown under -q too. In inetd mode
    /// it goes to stderr only when stderr is not the connection. A stderr that takes nothing
    /// for 1s (a full pipe) makes the dump skip chunks until it takes again, then say how many:
    /// the echo never waits on it longer. Not with the fault injection options (--delay,
    /// --bandwidth, --close-after, --reset-probability, --drop-probability).
    #[arg(short = 'x', long = "hex-dump", conflicts_with_all = [
        "delay", "bandwidth", "close_after", "reset_probability", "drop_probability",
    ])]
    pub hex_dump: bool,

    /// Log each connection's open and close on stderr (repeatable).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Fault injection: --delay, --bandwidth, --close-after, --reset-probability, ...
    #[command(flatten)]
    pub faults: faults::Faults,

    /// Who may connect: --allow, --deny, --max-per-ip, --rate-limit.
    #[command(flatten)]
    pub admission: faults::Admission,
}

/// How `echo-server --proxy-protocol` takes a connection without a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyProtocol {
    /// Every connection must start with a header (the default of a bare --proxy-protocol).
    Required,
    /// A connection that does not start with one (or says nothing by the deadline) is served
    /// as is.
    Optional,
}

/// The header `echo-client --send-proxy` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendProxy {
    /// Text: `PROXY TCP4 SRC DST SPORT DPORT`, as HAProxy's send-proxy.
    V1,
    /// Binary, as HAProxy's send-proxy-v2.
    V2,
}

const CLIENT_EXAMPLES: &str = "\
Examples:
  printf 'ping\\n' | asyncio-tool echo-client 127.0.0.1:8080
  printf 'ping\\n' | asyncio-tool echo-client 127.0.0.1 8080   (nc's form)
  tar c dir | asyncio-tool echo-client host:7 | tar t
  asyncio-tool echo-client --wait 10s localhost:8080 < request
  asyncio-tool echo-client -z -w 2 host 7      port check (nc -z): exit 0 or 1
  printf 'hi\\n' | asyncio-tool echo-client -C --quit-after 1 host 7
                               CRLF line ends (nc -C); nc's -q 1 (-q is --quiet)
  printf 'hi\\n' | asyncio-tool echo-client -x host 7 2> dump.txt
                               the traffic as a hex dump (ncat --hex-dump dump.txt)
  printf 'ping\\n' | asyncio-tool echo-client -U /run/echo.sock   (nc -U's form)
  asyncio-tool echo-client     interactive in a terminal (Ctrl-D ends)
  echo hi | asyncio-tool echo-client --pin sha256:AB:CD:... tls:127.0.0.1:8443
                               TLS to a self-signed server, pinned
  echo hi | asyncio-tool echo-client --cafile ca.pem --cert me.pem --key me.key \\
      tls:echo.example:8443    mutual TLS
  printf 'ping\\n' | asyncio-tool echo-client udp:127.0.0.1:7007
  asyncio-tool echo-client -u 127.0.0.1 7007 < big.log > echoed.log
  asyncio-tool echo-client --verify host:7 < disk.img > /dev/null
                               check every byte comes back as sent
  asyncio-tool echo-client --count 5 --interval 200ms host:7
                               probe like ping: a line per reply, summary
  asyncio-tool echo-client --connections 50 --duration 10s host:7
                               load: closed-loop, msgs/s and percentiles
  asyncio-tool echo-client --connections 4 --rate 1000 --json host:7
                               a fixed rate, the report as JSON
  asyncio-tool echo-client --connections 100 --connect-rate 50 \\
      --start-at 2026-12-06T17:00:00Z --label gen=1 --json host:7 > gen1.json
                               one of many generators, started together;
                               then: asyncio-tool report gen*.json

At the end of standard input the client half-closes the connection
and keeps printing replies until the server closes it. Exit status 1
whenever something was lost: a reset, input the server closed on
before it was sent, a server that closed after echoing fewer bytes
than it was sent (more back is fine: a server that is no echo), a
stall past --idle-timeout, a failed stdout.

Over UDP each line of input (with its newline) is one datagram; a
longer line is cut into datagrams of the largest size. A bounded number
are in flight, so the client never overruns the server by itself. At
the end of input it waits for the outstanding replies, at most
--idle-timeout (default 1s) after the last one, then exits 0 if every
datagram came back, or 1 saying how many got no reply. A server that
answers no datagram for --idle-timeout while input waits (nor since
datagrams were last given up on) ends the run there, exit 1, the rest
of the input not sent. Replies are
matched to datagrams by their bytes, in any order: one that matches
none (a duplicate, an altered one) is printed but makes it exit 1. No
server at the address (ICMP port unreachable) is \"Connection
refused\", exit 1.

Probe (--count) and load (--connections) send random messages of
--size bytes instead of reading stdin, check each echo byte for byte,
and print their lines and summary on stdout (messages on stderr).
Exit status 0 when every message came back intact; 1 on any loss,
mismatch or failed connection, or when a plain client's reply is TLS
(add --tls). Ctrl-C ends either mode with its summary and the same
rule (the message it cut short is not held against the run); only
before the first connection does it exit 130. Over UDP a second reply
to a message is a duplicate (DUP!), counted apart and no failure, as
ping counts it. A load goes on over a new connection after a timeout,
reset or close, and counts it.

A DURATION is plain seconds (5, 0.2) or a number and a unit (500ms,
30s, 5m, 1h); at least 1ms.";

/// `echo-client`'s options.
#[derive(Debug, Args, Clone)]
pub struct EchoClientArgs {
    /// The server: `ADDR`, or `HOST PORT` as two words.
    #[command(flatten)]
    pub target: endpoints::Target,

    /// TLS: --tls, --cafile, --pin, --insecure, --servername, --cert, --key.
    #[command(flatten)]
    pub tls: tls::ClientTls,

    /// Connect over IPv4 only: a name is resolved to its IPv4 addresses (as nc -4).
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Connect over IPv6 only: a name is resolved to its IPv6 addresses (as nc -6).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Accepted for nc compatibility and does nothing: the client always shuts down its
    /// sending side at the end of input (what nc -N asks for).
    #[arg(short = 'N')]
    pub shutdown_on_eof: bool,

    /// No name lookups (nc -n, ncat --nodns): the host must be an IP address; a name is a
    /// usage error.
    #[arg(short = 'n', long = "nodns")]
    pub nodns: bool,

    /// Give up a connection attempt after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub connect_timeout: Duration,

    /// Keep retrying the connection (with back-off) for up to this long, for a server that is
    /// still starting.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub wait: Option<Duration>,

    /// Give up (exit 1) once no byte has moved either way for this long while the server is
    /// the one awaited: it takes none of the input, or sends no reply after the end of input,
    /// or sends nothing while standard input is idle. A slow reader of our stdout does not
    /// count. The error says which way stalled. Over UDP: how long to wait for outstanding
    /// replies after the last one came back (default 1s), and for a server that answers
    /// nothing before giving up on it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub idle_timeout: Option<Duration>,

    /// nc's -w: a connect attempt, and then the exchange once idle, give up after SECS (as
    /// --connect-timeout and --idle-timeout, which win when given). SECS is plain seconds
    /// (5, 0.5) or a duration (500ms). In probe mode (--count) it is ping's -w instead: a
    /// deadline for the whole run. Not with --connections.
    #[arg(short = 'w', value_name = "SECS", value_parser = parse_duration, conflicts_with = "connections")]
    pub w: Option<Duration>,

    /// nc's -q: at the end of standard input, wait at most SECS for the rest of the echo and
    /// quit (-q alone is --quiet here). Exit 0 only if every byte sent came back.
    #[arg(long, value_name = "SECS", value_parser = parse_duration, conflicts_with_all = ["count", "connections"])]
    pub quit_after: Option<Duration>,

    /// Bind to this local IP address before connecting or sending (nc -s, ncat --source).
    #[arg(short = 's', long = "source", value_name = "ADDR", value_parser = parse_source, conflicts_with_all = ["count", "connections"])]
    pub source: Option<IpAddr>,

    /// Connect or send from this local port (nc -p, ncat --source-port).
    #[arg(short = 'p', long = "source-port", value_name = "PORT", value_parser = parse_source_port, conflicts_with_all = ["count", "connections"])]
    pub source_port: Option<u16>,

    /// Send every line end as CRLF (nc -C, ncat --crlf), as SMTP, HTTP and other text
    /// protocols want: a \n not after a \r goes out as \r\n (the echo then has them too).
    #[arg(short = 'C', long = "crlf", conflicts_with_all = ["count", "connections"])]
    pub crlf: bool,

    /// Port check (nc -z): connect (over TLS, shake hands), close at once and exit 0, saying
    /// on stderr how long it took; exit 1 when the connection fails. Reads no stdin.
    #[arg(short = 'z', long = "zero-io", conflicts_with_all = ["count", "connections", "verify"])]
    pub zero_io: bool,

    /// Show the traffic on stderr as a hex dump, as socat -x and ncat --hex-dump do; stdout
    /// still gets the echo, unchanged. Each chunk (one read, or one datagram) has a header:
    /// '>' sent or '<' received, the time (UTC), the server, and socat's length=N from=X to=Y
    /// (its place in that direction's stream); then hexdump -C lines: offset, 16 bytes in hex,
    /// the bytes as ASCII ('.' for any other byte). Shown under -q too; hides the progress
    /// line (unless --progress). A full stderr stalls the copy, as socat's. ncat's -x FILE:
    /// write -x 2>FILE. Not with --count or --connections.
    #[arg(short = 'x', long = "hex-dump", conflicts_with_all = ["count", "connections", "zero_io"])]
    pub hex_dump: bool,

    /// Show the progress line on stderr even when it would be hidden.
    #[arg(long)]
    pub progress: bool,

    /// Start each connection with a PROXY protocol header naming its real source and
    /// destination addresses, as HAProxy in front of a server would (over TLS, before the
    /// ClientHello; from a Unix socket, which has no address, UNKNOWN or UNSPEC): to test a
    /// server behind a proxy without one. In every mode: copy, -z, --count, --connections.
    #[arg(long, value_name = "VERSION", value_enum)]
    pub send_proxy: Option<SendProxy>,

    /// More messages on stderr (repeatable).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// --verify, and the probe and load modes.
    #[command(flatten)]
    pub measure: measure::Measure,

    /// --label, --start-at, --connect-rate: one load from many machines.
    #[command(flatten)]
    pub fleet: report::Fleet,
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  asyncio-tool completions bash \\
    > ~/.local/share/bash-completion/completions/asyncio-tool
  asyncio-tool completions zsh > ~/.zfunc/_asyncio-tool
  asyncio-tool completions fish \\
    > ~/.config/fish/completions/asyncio-tool.fish";

/// `completions`' options.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,

    /// More messages on stderr (repeatable).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
}

impl EchoClientArgs {
    /// nc's `-w SECS` outside probe mode: the connect timeout and the idle timeout, each
    /// unless given on its own. `matches` are echo-client's, to tell a default from a value
    /// typed.
    fn apply_nc_timeout(&mut self, matches: &clap::ArgMatches) {
        let Some(secs) = self.w else { return };
        if self.measure.mode().is_some() {
            return;
        }
        if matches.value_source("connect_timeout") != Some(clap::parser::ValueSource::CommandLine) {
            self.connect_timeout = secs;
        }
        self.idle_timeout = self.idle_timeout.or(Some(secs));
    }
}

impl Cli {
    /// Parses the process's arguments.
    ///
    /// A `cat` command line made only of GNU cat's own flags and file names is read without
    /// building the clap model: that model costs more than the whole copy of a small file,
    /// and `cat` is started in loops by scripts. Anything else goes to clap, which therefore
    /// still decides every error and every other option; a test checks that both readings
    /// agree.
    ///
    /// When there is nothing to run, what clap had to say (help or version on stdout, a usage
    /// error on stderr) has been printed and the `Err` holds the exit status: 0, 2 for a usage
    /// error, 1 when that text could not be written (`--help > /dev/full`).
    pub fn parse_args() -> Result<Cli, Exit> {
        let args: Vec<OsString> = std::env::args_os().collect();
        if let Some(cli) = Cli::parse_plain_cat(&args) {
            return Ok(cli);
        }
        let color = color_in_args(&args);
        Cli::parse_from_args(&args, color).map_err(|err| print_clap_outcome(&err, color))
    }

    /// Parses `args` with clap, colouring its messages as `color` says and rewording the
    /// errors clap words poorly.
    fn parse_from_args(args: &[OsString], color: ColorChoice) -> Result<Cli, clap::Error> {
        let mut cmd = command().color(match color {
            ColorChoice::Auto => clap::ColorChoice::Auto,
            ColorChoice::Always => clap::ColorChoice::Always,
            ColorChoice::Never => clap::ColorChoice::Never,
        });
        let matches = match cmd.try_get_matches_from_mut(args) {
            Ok(matches) => matches,
            Err(err) => {
                let err = explain_habit(explain_ambiguous(err, &mut cmd, args), &cmd, args);
                let err = explain_missing_mode(err, &mut cmd, args);
                return Err(defuse(err, args));
            }
        };
        let mut cli =
            Cli::from_arg_matches(&matches).map_err(|err| defuse(err.format(&mut cmd), args))?;
        if let (Command::EchoClient(client), Some(("echo-client", sub))) =
            (&mut cli.command, matches.subcommand())
        {
            client.apply_nc_timeout(sub);
        }
        if let Command::EchoServer(server) = &cli.command {
            let proxied = server.proxy_protocol == Some(ProxyProtocol::Required);
            let (faults, admission) = (&server.faults, &server.admission);
            faults::check_transport(faults, admission, &server.listen.endpoint, proxied)?;
        }
        Ok(cli)
    }

    /// The fast reading of `asyncio-tool cat [GNU flags] [FILE]...`, or `None` for anything
    /// it does not cover.
    pub fn parse_plain_cat(args: &[OsString]) -> Option<Cli> {
        if args.get(1).map(|a| a.as_encoded_bytes()) != Some(b"cat") {
            return None;
        }
        let mut cat = CatArgs::default();
        let mut only_files = false;
        for arg in &args[2..] {
            let bytes = arg.as_encoded_bytes();
            if only_files || bytes == b"-" || !bytes.starts_with(b"-") {
                cat.files.push(arg.clone());
                continue;
            }
            match bytes {
                b"--" => only_files = true,
                b"--show-all" => cat.show_all = true,
                b"--number-nonblank" => cat.number_nonblank = true,
                b"--show-ends" => cat.show_ends = true,
                b"--number" => cat.number = true,
                b"--squeeze-blank" => cat.squeeze_blank = true,
                b"--show-tabs" => cat.show_tabs = true,
                b"--show-nonprinting" => cat.show_nonprinting = true,
                _ if bytes.starts_with(b"--") => return None,
                _ => {
                    for flag in &bytes[1..] {
                        match flag {
                            b'A' => cat.show_all = true,
                            b'b' => cat.number_nonblank = true,
                            b'e' => cat.e = true,
                            b'E' => cat.show_ends = true,
                            b'n' => cat.number = true,
                            b's' => cat.squeeze_blank = true,
                            b't' => cat.t = true,
                            b'T' => cat.show_tabs = true,
                            b'u' => cat.unbuffered = true,
                            b'v' => cat.show_nonprinting = true,
                            _ => return None,
                        }
                    }
                }
            }
        }
        Some(Cli {
            global: GlobalArgs {
                color: ColorChoice::Auto,
                quiet: false,
            },
            verbose: 0,
            command: Command::Cat(cat),
        })
    }

    /// How many times `--verbose` was given, before or after the subcommand.
    pub fn verbosity(&self) -> u8 {
        let inner = match &self.command {
            Command::Cat(a) => a.verbose,
            Command::EchoServer(a) => a.verbose,
            Command::EchoClient(a) => a.verbose,
            Command::Completions(a) => a.verbose,
            Command::Report(a) => a.verbose,
        };
        self.verbose.saturating_add(inner)
    }
}

/// The clap command, for the docs generator and tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The `--color` given on the command line, read before clap runs: clap decides the colour of
/// its own messages (usage errors) before our option is parsed. The last one wins, as in
/// clap; a value clap would reject counts as `auto`. Prefixes down to `--col` are the
/// unambiguous abbreviations clap accepts too.
fn color_in_args(args: &[OsString]) -> ColorChoice {
    let mut choice = ColorChoice::Auto;
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    while let Some(word) = words.next() {
        let Some(word) = word else { continue };
        if word == "--" {
            break;
        }
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        if name.len() < "--col".len() || !"--color".starts_with(name) {
            continue;
        }
        let value = match inline {
            Some(value) => Some(value),
            None => words.next().flatten(),
        };
        choice = value
            .and_then(|v| ColorChoice::from_str(v, false).ok())
            .unwrap_or(ColorChoice::Auto);
    }
    choice
}

/// The subcommand named in `args`, if any.
fn subcommand_in(cmd: &clap::Command, args: &[OsString]) -> Option<String> {
    args.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| cmd.find_subcommand(a).is_some())
        .map(str::to_owned)
}

/// What people coming from nc, ncat and ping type, per subcommand, and what it is here.
const HABITS: &[(&str, &[&str], &str)] = &[
    (
        "echo-server",
        &["-w", "--wait"],
        "nc's -w SECS times out idle connections: here --idle-timeout 5 (seconds)",
    ),
    (
        "echo-server",
        &["-c", "--count"],
        "ping's -c N counts probes: the probe is 'echo-client --count N ADDR' (ncat's -c runs \
         a command; echo-server runs none)",
    ),
    (
        "echo-server",
        &["-i", "--interval"],
        "ping's -i spaces probes: the probe is 'echo-client --count N --interval 0.2s ADDR'",
    ),
    (
        "echo-server",
        &["-s", "--source"],
        "nc -l -s ADDR listens on ADDR: write it as ADDR ('echo-server 10.0.0.1 8080')",
    ),
    (
        "echo-server",
        &[
            "-z",
            "-C",
            "-N",
            "--source-port",
            "--zero-io",
            "--quit-after",
            "--crlf",
        ],
        "this is an option of the client: asyncio-tool echo-client --help",
    ),
    (
        "echo-client",
        &["-l", "--listen"],
        "to listen, run the server: asyncio-tool echo-server [ADDR] (nc -l 8080 is \
         'echo-server 8080')",
    ),
    (
        "echo-client",
        &["-k", "--keep-open"],
        "nc -k keeps a listener open: asyncio-tool echo-server always does",
    ),
    (
        "echo-client",
        &["-c"],
        "ping's -c N is --count N here (probe mode)",
    ),
    (
        "echo-client",
        &["-i"],
        "ping's -i is --interval here, with --count (e.g. --interval 0.2s)",
    ),
    (
        "echo-client",
        &["-W"],
        "ping's -W is --timeout here, with --count (e.g. --timeout 2s)",
    ),
    (
        "",
        &["-e", "-c", "--exec", "--sh-exec", "--lua-exec"],
        "nc -e and ncat --exec run a command on the connection; asyncio-tool runs none: pipe \
         one into echo-client, or use socat",
    ),
    (
        "",
        &["--ssl"],
        "ncat's --ssl is --tls here (or tls: before ADDR)",
    ),
    (
        "",
        &["--ssl-cert"],
        "ncat's --ssl-cert FILE is --cert FILE here",
    ),
    (
        "",
        &["--ssl-key"],
        "ncat's --ssl-key FILE is --key FILE here",
    ),
    (
        "echo-client",
        &["--ssl-verify"],
        "ncat's --ssl-verify is what --tls does by default here (--insecure turns it off)",
    ),
    (
        "echo-client",
        &["--ssl-trustfile"],
        "ncat's --ssl-trustfile FILE is --cafile FILE here",
    ),
    (
        "echo-client",
        &["--ssl-servername"],
        "ncat's --ssl-servername NAME is --servername NAME here",
    ),
    (
        "echo-client",
        &["--connect"],
        "openssl s_client -connect HOST:PORT is 'echo-client --tls HOST:PORT' here",
    ),
];

/// openssl's one-dash long options, which clap reads as bundles of short ones (`-connect` as
/// `-c onnect`), and what each is here.
const OPENSSL_WORDS: &[(&str, &str)] = &[
    (
        "-connect",
        "openssl s_client -connect HOST:PORT is 'echo-client --tls HOST:PORT' here",
    ),
    ("-CAfile", "openssl's -CAfile FILE is --cafile FILE here"),
    (
        "-servername",
        "openssl's -servername NAME is --servername NAME here",
    ),
    ("-cert", "openssl's -cert FILE is --cert FILE here"),
    ("-key", "openssl's -key FILE is --key FILE here"),
];

/// clap's tip for an unknown argument is "to pass '-l' as a value, use '-- -l'", which means
/// nothing for an address: for `cat` (where `-- -l` is a file) it stays, elsewhere it becomes
/// what the nc, ncat or ping spelling typed is here, or goes. An extra word after `-q N`
/// (nc's quit delay, --quiet here) says that too, and one after ncat's `-x FILE`.
fn explain_habit(mut err: clap::Error, cmd: &clap::Command, args: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let sub = subcommand_in(cmd, args).unwrap_or_default();
    let openssl = OPENSSL_WORDS
        .iter()
        .find(|(word, _)| sub != "cat" && args.iter().any(|a| a == *word));
    if let Some((_, tip)) = openssl {
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![(*tip).into()]),
        );
        return err;
    }
    if err.kind() == ErrorKind::TooManyValues && sub != "cat" && hex_dump_file(args) {
        // `--hex-dump=FILE`.
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![HEX_DUMP_FILE_TIP.into()]),
        );
        return err;
    }
    if err.kind() != ErrorKind::UnknownArgument || sub == "cat" {
        return err;
    }
    let given = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(given)) => given.split('=').next().unwrap_or(given).to_owned(),
        _ => return err,
    };
    let seconds = |v: &OsString| {
        v.to_str()
            .is_some_and(|v| values::parse_duration(v).is_ok())
    };
    // `-q 1 host 7`, or `-q1` (which clap reads as -q -1).
    let quiet_secs = args.windows(2).any(|w| w[0] == "-q" && seconds(&w[1]))
        || args.iter().any(|a| {
            a.to_str()
                .and_then(|a| a.strip_prefix("-q"))
                .is_some_and(|v| values::parse_duration(v).is_ok())
        });
    let tip = habit(&sub, &given)
        .map(str::to_owned)
        .or_else(|| {
            (quiet_secs && sub == "echo-client")
                .then(|| "-q is --quiet here; nc's -q SECS is --quit-after SECS".to_owned())
        })
        .or_else(|| hex_dump_file(args).then(|| HEX_DUMP_FILE_TIP.to_owned()));
    match tip {
        Some(tip) => {
            // clap's "a similar argument exists" would point elsewhere (--ssl-verify is no
            // --verify).
            err.remove(ContextKind::SuggestedArg);
            err.insert(
                ContextKind::Suggested,
                ContextValue::StyledStrs(vec![tip.into()]),
            );
        }
        None => {
            err.remove(ContextKind::Suggested);
        }
    }
    err
}

/// What the nc, ncat or ping spelling `given` means for subcommand `sub`, from [`HABITS`].
fn habit(sub: &str, given: &str) -> Option<&'static str> {
    HABITS
        .iter()
        .find(|(on, words, _)| (on.is_empty() || *on == sub) && words.contains(&given))
        .map(|(_, _, tip)| *tip)
}

/// What ncat's `-x FILE` / `--hex-dump FILE` is here.
const HEX_DUMP_FILE_TIP: &str =
    "-x/--hex-dump takes no FILE here: the dump goes to stderr (ncat's -x FILE is -x 2>FILE)";

/// Whether `args` give `-x` or `--hex-dump` a file, as ncat takes it: `--hex-dump=FILE`, or
/// a word after the flag that is not an option.
fn hex_dump_file(args: &[OsString]) -> bool {
    let is_flag = |a: &OsString| a == "-x" || a == "--hex-dump";
    args.iter()
        .any(|a| a.to_str().is_some_and(|a| a.starts_with("--hex-dump=")))
        || args
            .windows(2)
            .any(|w| is_flag(&w[0]) && !w[1].to_string_lossy().starts_with('-'))
}

/// clap reports an ambiguous abbreviation (`cat --show`) as an unknown argument; say instead
/// that it is ambiguous and list the candidates, as GNU's getopt does.
fn explain_ambiguous(err: clap::Error, cmd: &mut clap::Command, args: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return err;
    }
    let Some(ContextValue::String(given)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let Some(prefix) = given
        .strip_prefix("--")
        .map(|g| g.split('=').next().unwrap_or(g))
    else {
        return err;
    };
    // A habit's spelling (openssl's --connect) is explained as one, not as an abbreviation.
    let sub = subcommand_in(cmd, args).unwrap_or_default();
    if habit(&sub, &format!("--{prefix}")).is_some() {
        return err;
    }
    cmd.build();
    let sub_name = subcommand_in(cmd, args);
    let target = match sub_name.and_then(|name| cmd.find_subcommand_mut(name)) {
        Some(sub) => sub,
        None => cmd,
    };
    let mut candidates: Vec<String> = target
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !prefix.is_empty() && long.starts_with(prefix))
        .map(|long| format!("'--{long}'"))
        .collect();
    if candidates.len() < 2 {
        return err;
    }
    candidates.sort();
    let msg = format!(
        "option '--{prefix}' is ambiguous; possibilities: {}",
        candidates.join(" ")
    );
    clap::Error::raw(ErrorKind::UnknownArgument, msg).format(target)
}

/// clap says only "required arguments were not provided: <--count <N>|--connections <C>>" for a
/// measuring option typed without its mode (`--timeout 1`, as if it were nc's): name the
/// option typed, the mode it belongs to and what to add, and for `--timeout` the copy's own
/// timeouts, which a user of nc or socat was more likely looking for.
fn explain_missing_mode(
    err: clap::Error,
    cmd: &mut clap::Command,
    args: &[OsString],
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::MissingRequiredArgument
        || subcommand_in(cmd, args).as_deref() != Some("echo-client")
    {
        return err;
    }
    let missing = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::Strings(missing)) => missing.join(" "),
        _ => return err,
    };
    let modes = match (
        missing.contains("--count"),
        missing.contains("--connections"),
    ) {
        (true, true) => {
            "the probe (--count <N>) and load (--connections <C>) modes: add one of them"
        }
        (true, false) => "probe mode: add --count <N>",
        (false, true) => "load mode: add --connections <C>",
        (false, false) => return err,
    };
    cmd.build();
    let Some(client) = cmd.find_subcommand_mut("echo-client") else {
        return err;
    };
    let Some((given, id)) = measuring_option_in(client, args) else {
        return err;
    };
    let mut msg = format!("'{given}' is an option of {modes}, or leave '{given}' out");
    if id == "timeout" {
        msg.push_str(
            " (it is a reply's timeout there; the copy's are -w SECS as nc's, \
             --connect-timeout and --idle-timeout)",
        );
    }
    clap::Error::raw(ErrorKind::MissingRequiredArgument, msg).format(client)
}

/// The first option in `args` that only the measuring modes take (of `client`, echo-client),
/// as typed (`--timeout`, `-W`), and its id.
fn measuring_option_in(client: &clap::Command, args: &[OsString]) -> Option<(String, String)> {
    let mut measuring = clap::Command::new("measuring");
    measuring = measure::MeasureArgs::augment_args(measuring);
    measuring = report::FleetArgs::augment_args(measuring);
    let ids: Vec<&str> = measuring
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| !matches!(*id, "count" | "connections" | "json"))
        .collect();
    args.iter().filter_map(|a| a.to_str()).find_map(|word| {
        let name = word.split('=').next().unwrap_or(word);
        let arg = client.get_arguments().find(|arg| {
            let long = name
                .strip_prefix("--")
                .is_some_and(|l| arg.get_long() == Some(l));
            let short = !name.starts_with("--")
                && name.strip_prefix('-').and_then(|s| s.chars().next()) == arg.get_short();
            long || short
        })?;
        let id = arg.get_id().as_str();
        ids.contains(&id).then(|| {
            let shown = match name.starts_with("--") {
                true => name.to_owned(),
                false => name.chars().take(2).collect(),
            };
            (shown, id.to_owned())
        })
    })
}

/// clap's errors repeat what was typed (`unexpected argument '--x…'`) as it was typed: a control
/// character there would reach the terminal raw, so a crafted argument could forge a line
/// (`asyncio-tool: …`) or send an escape sequence. Each typed word holding one is shown
/// instead in its shell-quoted form, which clap's own quotes complete (`'a'$'\n''b'`); clap's
/// colours stay.
fn defuse(mut err: clap::Error, args: &[OsString]) -> clap::Error {
    use clap::error::ContextValue;
    let has_control = |s: &str| s.chars().any(char::is_control);
    let typed: Vec<(String, String)> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| has_control(a))
        .map(|a| {
            let shown = defused(&a);
            (a, shown)
        })
        .collect();
    if typed.is_empty() {
        return err;
    }
    let replace_typed = |text: String| {
        typed
            .iter()
            .fold(text, |text, (raw, shown)| text.replace(raw, shown))
    };
    let plain = |s: &String| {
        if has_control(s) {
            defused(s)
        } else {
            s.clone()
        }
    };
    let updates: Vec<_> = err
        .context()
        .filter_map(|(kind, value)| {
            let value = match value {
                ContextValue::String(s) => ContextValue::String(plain(s)),
                ContextValue::Strings(v) => ContextValue::Strings(v.iter().map(plain).collect()),
                ContextValue::StyledStr(s) => {
                    ContextValue::StyledStr(replace_typed(s.ansi().to_string()).into())
                }
                ContextValue::StyledStrs(v) => ContextValue::StyledStrs(
                    v.iter()
                        .map(|s| replace_typed(s.ansi().to_string()).into())
                        .collect(),
                ),
                _ => return None,
            };
            Some((kind, value))
        })
        .collect();
    for (kind, value) in updates {
        err.insert(kind, value);
    }
    err
}

/// `text` shell-quoted as [`quote`](crate::ui::quote::quote) does it, without the outer pair
/// of single quotes: the message around it supplies those.
fn defused(text: &str) -> String {
    let shown = crate::ui::quote::quote(std::ffi::OsStr::new(text));
    match shown.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => inner.to_owned(),
        None => shown,
    }
}

/// Prints what clap had to say and decides the exit status. A reader of stdout that went away
/// (`--help | head -1`) is not an error; any other failed write (`--help > /dev/full`) is
/// reported, as GNU tools do, and the status is 1.
fn print_clap_outcome(err: &clap::Error, color: ColorChoice) -> Exit {
    use std::io::Write;
    let exit = if err.exit_code() == 0 {
        Exit::Success
    } else {
        Exit::Usage
    };
    let written = err
        .print()
        .and_then(|()| std::io::stdout().flush())
        .and_then(|()| match (err.use_stderr(), crate::sys::stdio::stdout()) {
            // Help and version go to stdout; a closed stdout (`>&-`) lost them.
            (false, Err(closed)) => Err(closed),
            _ => Ok(()),
        });
    match written {
        Ok(()) => exit,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit,
        Err(e) => {
            let global = GlobalArgs {
                color,
                quiet: false,
            };
            let ui = crate::ui::Ui::new(global.color.forced(), global.quiet, 0);
            ui.warn(&format!("write error: {}", crate::report::io_reason(&e)));
            Exit::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn verbose_before_or_after_subcommand() {
        let cli = Cli::try_parse_from(["asyncio-tool", "-v", "echo-server", "-vv"]).unwrap();
        assert_eq!(cli.verbosity(), 3);
        let cli = Cli::try_parse_from(["asyncio-tool", "cat", "-v", "--verbose"]).unwrap();
        match &cli.command {
            Command::Cat(a) => assert!(a.show_nonprinting),
            other => panic!("parsed as {other:?}"),
        }
        assert_eq!(cli.verbosity(), 1);
    }

    /// Where the fast `cat` reading answers, it must answer exactly what clap answers.
    #[test]
    fn plain_cat_reading_agrees_with_clap() {
        use proptest::prelude::*;
        let words = prop::sample::select(vec![
            "-",
            "--",
            "-n",
            "-bE",
            "-vET",
            "-Ab",
            "-u",
            "-e",
            "-t",
            "-s",
            "-T",
            "-x",
            "-nq",
            "--number",
            "--show-all",
            "--number-nonblank",
            "--show-ends",
            "--squeeze-blank",
            "--show-tabs",
            "--show-nonprinting",
            "--num",
            "--number=1",
            "--color",
            "never",
            "-q",
            "--progress",
            "--verbose",
            "-h",
            "--help",
            "-V",
            "f",
            "a b",
            "-1",
            "--x",
        ]);
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&prop::collection::vec(words, 0..6), |words| {
                let mut args = vec![OsString::from("asyncio-tool"), OsString::from("cat")];
                args.extend(words.iter().map(OsString::from));
                if let Some(fast) = Cli::parse_plain_cat(&args) {
                    let slow = Cli::try_parse_from(&args);
                    prop_assert!(slow.is_ok(), "clap rejects {args:?}");
                    prop_assert_eq!(format!("{fast:?}"), format!("{:?}", slow.unwrap()));
                }
                Ok(())
            })
            .unwrap();
        let simple = ["asyncio-tool", "cat", "-nA", "--", "-n", "-", "file"];
        let simple: Vec<OsString> = simple.iter().map(OsString::from).collect();
        assert!(Cli::parse_plain_cat(&simple).is_some());
    }

    fn words(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn color_is_read_before_clap_runs() {
        for (line, want) in [
            ("asyncio-tool cat f", ColorChoice::Auto),
            ("asyncio-tool --color never cat", ColorChoice::Never),
            ("asyncio-tool cat --color=always -n", ColorChoice::Always),
            (
                "asyncio-tool --col never cat --colo=always",
                ColorChoice::Always,
            ),
            ("asyncio-tool --color sometimes cat", ColorChoice::Auto),
            ("asyncio-tool cat -- --color never", ColorChoice::Auto),
            ("asyncio-tool --co never cat", ColorChoice::Auto),
        ] {
            assert_eq!(color_in_args(&words(line)), want, "{line}");
        }
    }

    #[test]
    fn prefixes_and_ambiguity() {
        let cli = Cli::parse_from_args(
            &words("asyncio-tool cat --squeeze --show-n"),
            ColorChoice::Never,
        )
        .unwrap();
        match &cli.command {
            Command::Cat(a) => assert!(a.squeeze_blank && a.show_nonprinting),
            other => panic!("parsed as {other:?}"),
        }
        let err = Cli::parse_from_args(&words("asyncio-tool cat --show"), ColorChoice::Never)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "option '--show' is ambiguous; possibilities: '--show-all' '--show-ends' \
                 '--show-nonprinting' '--show-tabs'"
            ),
            "{err}"
        );
        let err = Cli::parse_from_args(&words("asyncio-tool cat --frob"), ColorChoice::Never)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected argument '--frob'"), "{err}");
    }

    #[test]
    fn nc_w_is_both_timeouts_unless_each_is_given() {
        let timeouts = |line: &str| {
            let cli = Cli::parse_from_args(&words(line), ColorChoice::Never).unwrap();
            match cli.command {
                Command::EchoClient(a) => (a.connect_timeout, a.idle_timeout),
                other => panic!("parsed as {other:?}"),
            }
        };
        let half = Duration::from_millis(500);
        assert_eq!(
            timeouts("asyncio-tool echo-client -w 0.5 7"),
            (half, Some(half))
        );
        assert_eq!(
            timeouts("asyncio-tool echo-client -w 0.5 --connect-timeout 3s --idle-timeout 1m 7"),
            (Duration::from_secs(3), Some(Duration::from_secs(60)))
        );
        // In probe mode -w is ping's deadline, for the probe to read: no timeout changes.
        assert_eq!(
            timeouts("asyncio-tool echo-client -w 5 --count 3 7"),
            (Duration::from_secs(10), None)
        );
    }

    #[test]
    fn global_options_after_subcommand() {
        let cli = Cli::try_parse_from(["asyncio-tool", "cat", "-q", "--color", "never"]).unwrap();
        assert!(cli.global.quiet);
        assert_eq!(cli.global.color, ColorChoice::Never);
    }
}
