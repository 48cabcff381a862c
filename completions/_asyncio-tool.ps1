
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'asyncio-tool' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'asyncio-tool'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'asyncio-tool' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stderr')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable: -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable: -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Concatenate files to standard output, exactly as GNU cat does')
            [CompletionResult]::new('echo-server', 'echo-server', [CompletionResultType]::ParameterValue, 'Run an echo server (TCP, Unix socket or UDP): every byte received is sent back')
            [CompletionResult]::new('echo-client', 'echo-client', [CompletionResultType]::ParameterValue, 'Send standard input to an echo server (TCP, Unix socket or UDP) and print what comes back; or verify, probe or load it')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to standard output')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Put the --json results (or --hdr-log files) of many probe or load runs together: counts and rates summed, latency percentiles from the merged histogram, a row per run')
            break
        }
        'asyncio-tool;cat' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stderr')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Equivalent to -vET')
            [CompletionResult]::new('--show-all', '--show-all', [CompletionResultType]::ParameterName, 'Equivalent to -vET')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Number nonempty output lines, overrides -n')
            [CompletionResult]::new('--number-nonblank', '--number-nonblank', [CompletionResultType]::ParameterName, 'Number nonempty output lines, overrides -n')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Equivalent to -vE')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Display $ at end of each line')
            [CompletionResult]::new('--show-ends', '--show-ends', [CompletionResultType]::ParameterName, 'Display $ at end of each line')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Number all output lines')
            [CompletionResult]::new('--number', '--number', [CompletionResultType]::ParameterName, 'Number all output lines')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Suppress repeated empty output lines')
            [CompletionResult]::new('--squeeze-blank', '--squeeze-blank', [CompletionResultType]::ParameterName, 'Suppress repeated empty output lines')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Equivalent to -vT')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Display TAB characters as ^I')
            [CompletionResult]::new('--show-tabs', '--show-tabs', [CompletionResultType]::ParameterName, 'Display TAB characters as ^I')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, '(ignored: output is never held back)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Use ^ and M- notation, except for LFD and TAB')
            [CompletionResult]::new('--show-nonprinting', '--show-nonprinting', [CompletionResultType]::ParameterName, 'Use ^ and M- notation, except for LFD and TAB')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar on stderr even when it would be hidden')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More messages on stderr, e.g. which copy method each file used (no short form here: -v is --show-nonprinting)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'asyncio-tool;echo-server' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'The port, as nc -l -p takes it: `-p 8080` is `8080` (the loopback; :8080 for every address), `-p 8080 HOST` is `HOST 8080`')
            [CompletionResult]::new('--cert-out', '--cert-out', [CompletionResultType]::ParameterName, 'Save the self-signed certificate to FILE (PEM), for clients that trust by file: echo-client --cafile FILE, openssl s_client -CAfile FILE, curl --cacert FILE. A file from an earlier run is replaced (atomically: readers see the old certificate or the new one); a file that holds anything but certificates is not, and the server does not start. /dev/stderr or a named pipe is written to as it is')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'The certificate to serve (PEM; the chain follows it in the same file). Needs --key. Each TLS file is read at most 1 MiB: a larger (or endless) one is refused at start')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The private key of --cert (PEM, unencrypted)')
            [CompletionResult]::new('--client-ca', '--client-ca', [CompletionResultType]::ParameterName, 'Require a client certificate issued by a CA in this PEM file (mutual TLS, at most 1 MiB); clients without one, or with another, fail the handshake. A certificate in it that is exactly the client''s (a self-signed one, as openssl req -x509 makes) is trusted as it is, and only as itself; its dates and purpose are still checked')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'The socket file''s permissions for unix:PATH, in octal (e.g. 660); set as the socket is made, so it is never wider. Default: from the umask')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Serve at most N connections at once; further clients wait in the backlog (over TLS, with their handshake done: a connection still in its handshake holds no slot)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a connection once no byte has moved either way for this long (e.g. 30s, 5m); a client still reading what the server sends is not idle')
            [CompletionResult]::new('--shutdown-timeout', '--shutdown-timeout', [CompletionResultType]::ParameterName, 'On Ctrl-C, SIGTERM or SIGHUP, give open connections this long to finish, then reset them; a second signal resets them at once')
            [CompletionResult]::new('--proxy-protocol', '--proxy-protocol', [CompletionResultType]::ParameterName, 'Expect a PROXY protocol header (v1 or v2, as HAProxy''s send-proxy and send-proxy-v2 write it) at the start of each connection, over TLS before the ClientHello: the client it names is the one -v and the logs show. A connection without a valid header is refused and logged; with =optional it is served as is (a direct health check), and a v2 LOCAL header (the proxy''s own check) keeps the real peer. A header must be whole within 10s (or --idle-timeout, if shorter)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stderr')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Serve UDP echo on ADDR (as udp:ADDR): each datagram goes back to its sender')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'Serve UDP echo on ADDR (as udp:ADDR): each datagram goes back to its sender')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Listen on IPv4 only: :PORT means 0.0.0.0, and an IPv6 ADDR is refused')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Listen on IPv4 only: :PORT means 0.0.0.0, and an IPv6 ADDR is refused')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Listen on IPv6 only (IPV6_V6ONLY, as ncat -6): [::] and :PORT take no IPv4 client, PORT and localhost mean [::1], and an IPv4 ADDR is refused')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Listen on IPv6 only (IPV6_V6ONLY, as ncat -6): [::] and :PORT take no IPv4 client, PORT and localhost mean [::1], and an IPv4 ADDR is refused')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Serve TLS (1.2 or 1.3) instead of plain bytes (`tls:` before ADDR says the same). Without --cert, a fresh self-signed certificate (ECDSA P-256, for localhost, the bound IP and the host name in ADDR) is made at start and its SHA-256 fingerprint printed on stderr, even with -q (a client needs it to connect safely): paste it after a client''s --pin as it is')
            [CompletionResult]::new('--no-status', '--no-status', [CompletionResultType]::ParameterName, 'Never show the live status line on stderr')
            [CompletionResult]::new('--inetd', '--inetd', [CompletionResultType]::ParameterName, 'Serve the socket on standard input as inetd hands it over: one connection, then exit (nowait; xinetd, systemd-socket-activate --inetd -a, socat EXEC:), or a listening or UDP socket (wait). Without it this happens anyway when no ADDR is given and stdin is such a socket (a Unix connection only if accepted from a listener); --inetd also takes one end of a socket pair, and is an error when stdin is none of these')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Accepted for nc and ncat (nc -l, ncat --listen) and does nothing: echo-server always listens')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Accepted for nc and ncat (nc -l, ncat --listen) and does nothing: echo-server always listens')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Accepted for nc and ncat (nc -k, ncat --keep-open) and does nothing: echo-server always serves connection after connection')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'Accepted for nc and ncat (nc -k, ncat --keep-open) and does nothing: echo-server always serves connection after connection')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Accepted for nc and ncat (nc -n, ncat --nodns: `-lvnp 8080`) and does nothing: ADDR is an IP address or localhost, which is looked up in /etc/hosts, never in DNS')
            [CompletionResult]::new('--nodns', '--nodns', [CompletionResultType]::ParameterName, 'Accepted for nc and ncat (nc -n, ncat --nodns: `-lvnp 8080`) and does nothing: ADDR is an IP address or localhost, which is looked up in /etc/hosts, never in DNS')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Show the traffic on stderr as a hex dump, as socat -x and ncat --hex-dump do: each chunk (one read, or one datagram) with a header, ''<'' received or ''>'' sent back, the time (UTC), the client (as -v names it; a Unix client with its connection''s number, as #N), and socat''s length=N from=X to=Y (its place in that direction''s stream; a datagram''s from 0); then hexdump -C lines: offset, 16 bytes in hex, the bytes as ASCII (''.'' for any other byte). Every transport; shown under -q too. In inetd mode it goes to stderr only when stderr is not the connection')
            [CompletionResult]::new('--hex-dump', '--hex-dump', [CompletionResultType]::ParameterName, 'Show the traffic on stderr as a hex dump, as socat -x and ncat --hex-dump do: each chunk (one read, or one datagram) with a header, ''<'' received or ''>'' sent back, the time (UTC), the client (as -v names it; a Unix client with its connection''s number, as #N), and socat''s length=N from=X to=Y (its place in that direction''s stream; a datagram''s from 0); then hexdump -C lines: offset, 16 bytes in hex, the bytes as ASCII (''.'' for any other byte). Every transport; shown under -q too. In inetd mode it goes to stderr only when stderr is not the connection')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log each connection''s open and close on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log each connection''s open and close on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'asyncio-tool;echo-client' {
            [CompletionResult]::new('--cafile', '--cafile', [CompletionResultType]::ParameterName, 'Trust the CAs in this PEM file (at most 1 MiB) instead of the system''s. A certificate in it that is exactly the server''s (a self-signed one, as openssl req -x509 makes) is trusted as it is, and only as itself; its name and dates are still checked')
            [CompletionResult]::new('--pin', '--pin', [CompletionResultType]::ParameterName, 'Accept exactly the server certificate with this SHA-256 fingerprint: 64 hex digits, with or without colons between pairs, sha256: before them optional. echo-server --tls prints it for its self-signed certificate (paste it as printed), and openssl x509 -noout -fingerprint -sha256 -in CERT for any; name and dates are then not checked')
            [CompletionResult]::new('--servername', '--servername', [CompletionResultType]::ParameterName, 'The name to ask for (SNI) and to check the certificate against; default: the host in ADDR (localhost for a Unix socket)')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Present this client certificate (PEM, at most 1 MiB; chain after it). Needs --key')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The private key of --cert (PEM)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up a connection attempt after this long')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Keep retrying the connection (with back-off) for up to this long, for a server that is still starting')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Give up (exit 1) once no byte has moved either way for this long while the server is the one awaited: it takes none of the input, or sends no reply after the end of input, or sends nothing while standard input is idle. A slow reader of our stdout does not count. The error says which way stalled. Over UDP: how long to wait for outstanding replies after the last one came back (default 1s), and for a server that answers nothing before giving up on it')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'nc''s -w: a connect attempt, and then the exchange once idle, give up after SECS (as --connect-timeout and --idle-timeout, which win when given). SECS is plain seconds (5, 0.5) or a duration (500ms). In probe mode (--count) it is ping''s -w instead: a deadline for the whole run. Not with --connections')
            [CompletionResult]::new('--quit-after', '--quit-after', [CompletionResultType]::ParameterName, 'nc''s -q: at the end of standard input, wait at most SECS for the rest of the echo and quit (-q alone is --quiet here). Exit 0 only if every byte sent came back')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Bind to this local IP address before connecting or sending (nc -s, ncat --source)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Bind to this local IP address before connecting or sending (nc -s, ncat --source)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Connect or send from this local port (nc -p, ncat --source-port)')
            [CompletionResult]::new('--source-port', '--source-port', [CompletionResultType]::ParameterName, 'Connect or send from this local port (nc -p, ncat --source-port)')
            [CompletionResult]::new('--send-proxy', '--send-proxy', [CompletionResultType]::ParameterName, 'Start each connection with a PROXY protocol header naming its real source and destination addresses, as HAProxy in front of a server would (over TLS, before the ClientHello; from a Unix socket, which has no address, UNKNOWN or UNSPEC): to test a server behind a proxy without one. In every mode: copy, -z, --count, --connections')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Probe mode, like ping -c: send N messages (0: until Ctrl-C or --deadline), one every --interval whether or not the earlier replies came (all N are sent however slow the server is), each checked byte for byte; a header line, a line per reply as it comes (`(late)` after its --timeout, `(DUP!)` for a second one over UDP), a line per loss and a summary with the % packet loss on stdout. After the last send it waits for the replies still due, up to --timeout. Reads no stdin. Ctrl-\ (SIGQUIT) prints the summary so far on stderr and the probe goes on, as ping''s does')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Probe mode, like ping -c: send N messages (0: until Ctrl-C or --deadline), one every --interval whether or not the earlier replies came (all N are sent however slow the server is), each checked byte for byte; a header line, a line per reply as it comes (`(late)` after its --timeout, `(DUP!)` for a second one over UDP), a line per loss and a summary with the % packet loss on stdout. After the last send it waits for the replies still due, up to --timeout. Reads no stdin. Ctrl-\ (SIGQUIT) prints the summary so far on stderr and the probe goes on, as ping''s does')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Bytes per message in probe and load mode (K, KiB, M, MiB suffixes accepted), at most 16MiB; over UDP at most what one datagram holds (65507 bytes, 65527 over IPv6)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Time between probes (probe mode), as ping -i: seconds (0.2) or a DURATION. A probe goes out on time even while earlier ones await their replies (over one connection, matched in order on a stream and by the probe number in the message over UDP), so a stalled server shows as a backlog of slow replies, not as one slow sample. At most 65536 probes (and 16MiB of messages) are in flight: past that the next one waits')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between probes (probe mode), as ping -i: seconds (0.2) or a DURATION. A probe goes out on time even while earlier ones await their replies (over one connection, matched in order on a stream and by the probe number in the message over UDP), so a stalled server shows as a backlog of slow replies, not as one slow sample. At most 65536 probes (and 16MiB of messages) are in flight: past that the next one waits')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'A reply not back this long after its message was sent is lost (probe and load), as ping -W: seconds (0.2) or a DURATION. In probe mode the loss gets its line then, and a reply that still comes (within twice the timeout over a stream, whose connection is then given up) is shown `(late)` and counted received, not lost, as ping counts it')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'A reply not back this long after its message was sent is lost (probe and load), as ping -W: seconds (0.2) or a DURATION. In probe mode the loss gets its line then, and a reply that still comes (within twice the timeout over a stream, whose connection is then given up) is shown `(late)` and counted received, not lost, as ping counts it')
            [CompletionResult]::new('--deadline', '--deadline', [CompletionResultType]::ParameterName, 'End the probe this long after it started (the first connection included), whatever --count, as ping -w: seconds (10) or a DURATION. The status is as at the count''s end (a probe then awaiting its echo counts as sent and lost, not held against the run)')
            [CompletionResult]::new('--connections', '--connections', [CompletionResultType]::ParameterName, 'Load mode: C closed-loop connections, each sending a message and waiting for its whole echo before the next, for --duration. Reads no stdin')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long load mode runs')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Load mode at a fixed total rate of R messages a second, latency measured from each message''s intended send time (no coordinated omission)')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'Tag the run with KEY=VALUE (repeatable), as `run.labels` in the --json summary: which machine, test or build it was, e.g. --label host=gen1 --label test=baseline. `asyncio-tool report` keeps runs with different labels apart, or merges them by the keys it is told (--group-by) or all (--merge). KEY is letters, digits, ''_'', ''.'' and ''-'', starting with a letter or ''_''; VALUE any text without control characters')
            [CompletionResult]::new('--start-at', '--start-at', [CompletionResultType]::ParameterName, 'Wait until TIME, then start (probe and load), so generators started apart (GNU parallel --sshlogin, Ansible, a Kubernetes Indexed Job) begin together. TIME is RFC 3339 (2026-12-06T17:00:00Z, 2026-12-06T18:00:00.5+01:00) or a Unix time in seconds, with a fraction if wanted (1796576400, 1796576400.25, @1796576400 as date -d takes it). The wait is said on stderr (unless -q); Ctrl-C during it exits 130. More than 1s in the past, or more than 7 days ahead, is a usage error. Connections are opened once TIME has come')
            [CompletionResult]::new('--connect-rate', '--connect-rate', [CompletionResultType]::ParameterName, 'Open load mode''s connections at N a second instead of all at once (tcpkali''s --connect-rate; its default is 100/s, ours is all at once, as before this option), so 10,000 connections do not hit the server''s accept queue in one burst. The load starts once all are open; their connect times are reported (connect p50/p90/p99/max, JSON connect_ms)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stderr')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Send UDP datagrams to ADDR (as udp:ADDR), as nc -u does: one per line of input')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'Send UDP datagrams to ADDR (as udp:ADDR), as nc -u does: one per line of input')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS (1.2 or 1.3) to the server (`tls:` before ADDR says the same). Its certificate and name are verified against the system''s trust roots unless --cafile, --pin or --insecure says otherwise')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the server at all (said on stderr): anyone in the middle can read and change the data')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Connect over IPv4 only: a name is resolved to its IPv4 addresses (as nc -4)')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Connect over IPv4 only: a name is resolved to its IPv4 addresses (as nc -4)')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Connect over IPv6 only: a name is resolved to its IPv6 addresses (as nc -6)')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Connect over IPv6 only: a name is resolved to its IPv6 addresses (as nc -6)')
            [CompletionResult]::new('-N', '-N ', [CompletionResultType]::ParameterName, 'Accepted for nc compatibility and does nothing: the client always shuts down its sending side at the end of input (what nc -N asks for)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'No name lookups (nc -n, ncat --nodns): the host must be an IP address; a name is a usage error')
            [CompletionResult]::new('--nodns', '--nodns', [CompletionResultType]::ParameterName, 'No name lookups (nc -n, ncat --nodns): the host must be an IP address; a name is a usage error')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Send every line end as CRLF (nc -C, ncat --crlf), as SMTP, HTTP and other text protocols want: a \n not after a \r goes out as \r\n (the echo then has them too)')
            [CompletionResult]::new('--crlf', '--crlf', [CompletionResultType]::ParameterName, 'Send every line end as CRLF (nc -C, ncat --crlf), as SMTP, HTTP and other text protocols want: a \n not after a \r goes out as \r\n (the echo then has them too)')
            [CompletionResult]::new('-z', '-z', [CompletionResultType]::ParameterName, 'Port check (nc -z): connect (over TLS, shake hands), close at once and exit 0, saying on stderr how long it took; exit 1 when the connection fails. Reads no stdin')
            [CompletionResult]::new('--zero-io', '--zero-io', [CompletionResultType]::ParameterName, 'Port check (nc -z): connect (over TLS, shake hands), close at once and exit 0, saying on stderr how long it took; exit 1 when the connection fails. Reads no stdin')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Show the traffic on stderr as a hex dump, as socat -x and ncat --hex-dump do; stdout still gets the echo, unchanged. Each chunk (one read, or one datagram) has a header: ''>'' sent or ''<'' received, the time (UTC), the server, and socat''s length=N from=X to=Y (its place in that direction''s stream); then hexdump -C lines: offset, 16 bytes in hex, the bytes as ASCII (''.'' for any other byte). Shown under -q too; hides the progress line. ncat''s -x FILE: write -x 2>FILE. Not with --count or --connections')
            [CompletionResult]::new('--hex-dump', '--hex-dump', [CompletionResultType]::ParameterName, 'Show the traffic on stderr as a hex dump, as socat -x and ncat --hex-dump do; stdout still gets the echo, unchanged. Each chunk (one read, or one datagram) has a header: ''>'' sent or ''<'' received, the time (UTC), the server, and socat''s length=N from=X to=Y (its place in that direction''s stream); then hexdump -C lines: offset, 16 bytes in hex, the bytes as ASCII (''.'' for any other byte). Shown under -q too; hides the progress line. ncat''s -x FILE: write -x 2>FILE. Not with --count or --connections')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show the progress line on stderr even when it would be hidden')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable)')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Check that every byte echoed equals the byte sent at that offset (stdin mode). Replies are still printed (if stdout closes, the check goes on); a difference or a short reply exits 1, naming the byte. Without --idle-timeout, it gives up (exit 1) after 10s without an echo once only echoes are awaited: all input sent, or 512 KiB unechoed. (Over UDP every reply is matched to its datagram byte for byte with or without it.)')
            [CompletionResult]::new('--summary-only', '--summary-only', [CompletionResultType]::ParameterName, 'Print only the probe''s header line and its summary, no line per reply or loss, as ping -q')
            [CompletionResult]::new('--new-connection', '--new-connection', [CompletionResultType]::ParameterName, 'Open a connection per probe and report its connect time separately, as echoping does')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the probe or load summary as one JSON object on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'asyncio-tool;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'asyncio-tool;report' {
            [CompletionResult]::new('--hdr-log', '--hdr-log', [CompletionResultType]::ParameterName, 'An HdrHistogram interval log (#[StartTime: ...], a legend, then start,length,max,HISTFAAA... lines, values in microseconds), as echo-client --hdr-log writes: its intervals summed make one run, which has latencies and a count of replies but no losses. Repeatable')
            [CompletionResult]::new('--group-by', '--group-by', [CompletionResultType]::ParameterName, 'Group runs by the value of this label only (repeatable): runs that differ only in other labels (host=...) are merged. A run without KEY is grouped under KEY unset')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout instead of a table: "type":"report", "ok" (no run was not ok), "groups": [{"labels" (what its runs share), "mode", "runs": [a row per run: source (FILE, FILE:LINE when a file holds several runs), labels, mode, ok, sent, received, lost, mismatched, duration_s, started, msgs_per_s, mb_per_s, rtt_us], "total": {runs, ok, sent, received, lost, mismatched (summed), msgs_per_s, mb_per_s (the sums of the runs'' own rates), span_s (first start to last end), msgs_per_s_over_span (received over span_s), overlapping (every run overlapped every other), rtt_us, histogram (the merged one, as the runs'' JSON carries it)}}]. rtt_us is {count, min, mean, p50, p90, p99, p99_9, p99_99, max} in microseconds, read from the histogram by HdrHistogram''s rules. A figure a run did not report (an --hdr-log run''s losses) is null')
            [CompletionResult]::new('--merge', '--merge', [CompletionResultType]::ParameterName, 'Put every run in one total, whatever its labels')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More messages on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines. In echo-client''s probe mode also no line per reply, as ping -q (--summary-only)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
