
use builtin;
use str;

set edit:completion:arg-completer[asyncio-tool] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'asyncio-tool'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'asyncio-tool'= {
            cand --color 'When to use colour on stderr'
            cand -q 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand --quiet 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand -v 'More messages on stderr (repeatable: -vv)'
            cand --verbose 'More messages on stderr (repeatable: -vv)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand cat 'Concatenate files to standard output, exactly as GNU cat does'
            cand echo-server 'Run an echo server (TCP, Unix socket or UDP): every byte received is sent back'
            cand echo-client 'Send standard input to an echo server (TCP, Unix socket or UDP) and print what comes back; or verify, probe or load it'
            cand completions 'Print a shell completion script to standard output'
        }
        &'asyncio-tool;cat'= {
            cand --color 'When to use colour on stderr'
            cand -A 'Equivalent to -vET'
            cand --show-all 'Equivalent to -vET'
            cand -b 'Number nonempty output lines, overrides -n'
            cand --number-nonblank 'Number nonempty output lines, overrides -n'
            cand -e 'Equivalent to -vE'
            cand -E 'Display $ at end of each line'
            cand --show-ends 'Display $ at end of each line'
            cand -n 'Number all output lines'
            cand --number 'Number all output lines'
            cand -s 'Suppress repeated empty output lines'
            cand --squeeze-blank 'Suppress repeated empty output lines'
            cand -t 'Equivalent to -vT'
            cand -T 'Display TAB characters as ^I'
            cand --show-tabs 'Display TAB characters as ^I'
            cand -u '(ignored: output is never held back)'
            cand -v 'Use ^ and M- notation, except for LFD and TAB'
            cand --show-nonprinting 'Use ^ and M- notation, except for LFD and TAB'
            cand --progress 'Show a progress bar on stderr even when it would be hidden'
            cand --verbose 'More messages on stderr, e.g. which copy method each file used (no short form here: -v is --show-nonprinting)'
            cand -q 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand --quiet 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'asyncio-tool;echo-server'= {
            cand --cert-out 'Save the self-signed certificate to FILE (PEM), for clients that trust by file: echo-client --cafile FILE, openssl s_client -CAfile FILE, curl --cacert FILE. A file from an earlier run is replaced (atomically: readers see the old certificate or the new one); a file that holds anything but certificates is not, and the server does not start. /dev/stderr or a named pipe is written to as it is'
            cand --cert 'The certificate to serve (PEM; the chain follows it in the same file). Needs --key. Each TLS file is read at most 1 MiB: a larger (or endless) one is refused at start'
            cand --key 'The private key of --cert (PEM, unencrypted)'
            cand --client-ca 'Require a client certificate issued by a CA in this PEM file (mutual TLS, at most 1 MiB); clients without one, or with another, fail the handshake. A certificate in it that is exactly the client''s (a self-signed one, as openssl req -x509 makes) is trusted as it is, and only as itself; its dates and purpose are still checked'
            cand --mode 'The socket file''s permissions for unix:PATH, in octal (e.g. 660); set as the socket is made, so it is never wider. Default: from the umask'
            cand --max-connections 'Serve at most N connections at once; further clients wait in the backlog (over TLS, with their handshake done: a connection still in its handshake holds no slot)'
            cand --idle-timeout 'Close a connection once no byte has moved either way for this long (e.g. 30s, 5m); a client still reading what the server sends is not idle'
            cand --shutdown-timeout 'On Ctrl-C, SIGTERM or SIGHUP, give open connections this long to finish, then reset them; a second signal resets them at once'
            cand --color 'When to use colour on stderr'
            cand -U 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)'
            cand --unix 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)'
            cand -u 'Serve UDP echo on ADDR (as udp:ADDR): each datagram goes back to its sender'
            cand --udp 'Serve UDP echo on ADDR (as udp:ADDR): each datagram goes back to its sender'
            cand -4 'Listen on IPv4 only: :PORT means 0.0.0.0, and an IPv6 ADDR is refused'
            cand --ipv4 'Listen on IPv4 only: :PORT means 0.0.0.0, and an IPv6 ADDR is refused'
            cand -6 'Listen on IPv6 only (IPV6_V6ONLY, as ncat -6): [::] and :PORT take no IPv4 client, PORT and localhost mean [::1], and an IPv4 ADDR is refused'
            cand --ipv6 'Listen on IPv6 only (IPV6_V6ONLY, as ncat -6): [::] and :PORT take no IPv4 client, PORT and localhost mean [::1], and an IPv4 ADDR is refused'
            cand --tls 'Serve TLS (1.2 or 1.3) instead of plain bytes (`tls:` before ADDR says the same). Without --cert, a fresh self-signed certificate (ECDSA P-256, for localhost, the bound IP and the host name in ADDR) is made at start and its SHA-256 fingerprint printed on stderr, even with -q (a client needs it to connect safely): paste it after a client''s --pin as it is'
            cand --no-status 'Never show the live status line on stderr'
            cand --inetd 'Serve the socket on standard input as inetd hands it over: one connection, then exit (nowait; xinetd, systemd-socket-activate --inetd -a, socat EXEC:), or a listening or UDP socket (wait). Without it this happens anyway when no ADDR is given and stdin is such a socket (a Unix connection only if accepted from a listener); --inetd also takes one end of a socket pair, and is an error when stdin is none of these'
            cand -v 'Log each connection''s open and close on stderr (repeatable)'
            cand --verbose 'Log each connection''s open and close on stderr (repeatable)'
            cand -q 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand --quiet 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'asyncio-tool;echo-client'= {
            cand --cafile 'Trust the CAs in this PEM file (at most 1 MiB) instead of the system''s. A certificate in it that is exactly the server''s (a self-signed one, as openssl req -x509 makes) is trusted as it is, and only as itself; its name and dates are still checked'
            cand --pin 'Accept exactly the server certificate with this SHA-256 fingerprint: 64 hex digits, with or without colons between pairs, sha256: before them optional. echo-server --tls prints it for its self-signed certificate (paste it as printed), and openssl x509 -noout -fingerprint -sha256 -in CERT for any; name and dates are then not checked'
            cand --servername 'The name to ask for (SNI) and to check the certificate against; default: the host in ADDR (localhost for a Unix socket)'
            cand --cert 'Present this client certificate (PEM, at most 1 MiB; chain after it). Needs --key'
            cand --key 'The private key of --cert (PEM)'
            cand --connect-timeout 'Give up a connection attempt after this long'
            cand --wait 'Keep retrying the connection (with back-off) for up to this long, for a server that is still starting'
            cand --idle-timeout 'Give up (exit 1) once no byte has moved either way for this long while the server is the one awaited: it takes none of the input, or sends no reply after the end of input, or sends nothing while standard input is idle. A slow reader of our stdout does not count. The error says which way stalled. Over UDP: how long to wait for outstanding replies after the last one came back (default 1s), and for a server that answers nothing before giving up on it'
            cand -c 'Probe mode, like ping -c: send N messages (0: until Ctrl-C or --deadline), one every --interval, each checked byte for byte; a header line, a line per reply and a summary with the % packet loss on stdout. Reads no stdin. Ctrl-\ (SIGQUIT) prints the summary so far on stderr and the probe goes on, as ping''s does'
            cand --count 'Probe mode, like ping -c: send N messages (0: until Ctrl-C or --deadline), one every --interval, each checked byte for byte; a header line, a line per reply and a summary with the % packet loss on stdout. Reads no stdin. Ctrl-\ (SIGQUIT) prints the summary so far on stderr and the probe goes on, as ping''s does'
            cand --size 'Bytes per message in probe and load mode (K, KiB, M, MiB suffixes accepted), at most 16MiB; over UDP at most what one datagram holds (65507 bytes, 65527 over IPv6)'
            cand -i 'Time between probes (probe mode), as ping -i: seconds (0.2) or a DURATION'
            cand --interval 'Time between probes (probe mode), as ping -i: seconds (0.2) or a DURATION'
            cand -W 'A reply not back this long after its message was sent is lost (probe and load), as ping -W: seconds (0.2) or a DURATION'
            cand --timeout 'A reply not back this long after its message was sent is lost (probe and load), as ping -W: seconds (0.2) or a DURATION'
            cand --deadline 'End the probe this long after it started (the first connection included), whatever --count, as ping -w: seconds (10) or a DURATION. The status is as at the count''s end (a probe then awaiting its echo counts as sent and lost, not held against the run)'
            cand --connections 'Load mode: C closed-loop connections, each sending a message and waiting for its whole echo before the next, for --duration. Reads no stdin'
            cand --duration 'How long load mode runs'
            cand --rate 'Load mode at a fixed total rate of R messages a second, latency measured from each message''s intended send time (no coordinated omission)'
            cand --color 'When to use colour on stderr'
            cand -U 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)'
            cand --unix 'ADDR is a Unix socket path, as nc -U takes it (@NAME: a Linux abstract name)'
            cand -u 'Send UDP datagrams to ADDR (as udp:ADDR), as nc -u does: one per line of input'
            cand --udp 'Send UDP datagrams to ADDR (as udp:ADDR), as nc -u does: one per line of input'
            cand --tls 'Speak TLS (1.2 or 1.3) to the server (`tls:` before ADDR says the same). Its certificate and name are verified against the system''s trust roots unless --cafile, --pin or --insecure says otherwise'
            cand --insecure 'Do not verify the server at all (said on stderr): anyone in the middle can read and change the data'
            cand -4 'Connect over IPv4 only: a name is resolved to its IPv4 addresses (as nc -4)'
            cand --ipv4 'Connect over IPv4 only: a name is resolved to its IPv4 addresses (as nc -4)'
            cand -6 'Connect over IPv6 only: a name is resolved to its IPv6 addresses (as nc -6)'
            cand --ipv6 'Connect over IPv6 only: a name is resolved to its IPv6 addresses (as nc -6)'
            cand -N 'Accepted for nc compatibility and does nothing: the client always shuts down its sending side at the end of input (what nc -N asks for)'
            cand --progress 'Show the progress line on stderr even when it would be hidden'
            cand -v 'More messages on stderr (repeatable)'
            cand --verbose 'More messages on stderr (repeatable)'
            cand --verify 'Check that every byte echoed equals the byte sent at that offset (stdin mode). Replies are still printed (if stdout closes, the check goes on); a difference or a short reply exits 1, naming the byte. Without --idle-timeout, it gives up (exit 1) after 10s without an echo once only echoes are awaited: all input sent, or 512 KiB unechoed. (Over UDP every reply is matched to its datagram byte for byte with or without it.)'
            cand --summary-only 'Print only the probe''s header line and its summary, no line per reply or loss, as ping -q'
            cand --new-connection 'Open a connection per probe and report its connect time separately, as echoping does'
            cand --json 'Print the probe or load summary as one JSON object on stdout'
            cand -q 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand --quiet 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'asyncio-tool;completions'= {
            cand --color 'When to use colour on stderr'
            cand -v 'More messages on stderr (repeatable)'
            cand --verbose 'More messages on stderr (repeatable)'
            cand -q 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand --quiet 'No messages on stderr but errors and what is needed to go on (echo-server --tls''s fingerprint); no progress or status lines'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
