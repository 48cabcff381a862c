//! The `sd_notify(3)` protocol: a service started with `Type=notify` finds a Unix datagram
//! socket in `NOTIFY_SOCKET` (a path, or `@name` for the Linux abstract namespace) and sends
//! it one datagram per state change, `KEY=value` lines: `READY=1` once serving, `STATUS=…` for
//! `systemctl status`, `STOPPING=1` when shutting down. Without `NOTIFY_SOCKET` every call is a
//! no-op, so the server can call them unconditionally.
//!
//! Hand-written over std's `UnixDatagram` rather than the sd-notify crate (0.5.0): that crate
//! connects to `@name` as a file path, so an abstract `NOTIFY_SOCKET` (older systemd, some
//! containers and other service managers) fails; it also re-reads the environment on every
//! call, which tests could only drive by mutating the environment (`unsafe` in edition 2024).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where state changes go: the service manager's notify socket, or nowhere.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notifier {
    /// `None`: not started by a manager that listens (no `NOTIFY_SOCKET`).
    target: Option<SocketAddr>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for; a no-op one when it is unset or empty. An error
    /// when it is set but neither an absolute path nor an `@name` (the caller may warn and use
    /// `Notifier::default()`).
    pub(crate) fn from_env() -> io::Result<Self> {
        Self::new(std::env::var_os("NOTIFY_SOCKET").as_deref())
    }

    /// The notifier for a `NOTIFY_SOCKET` value.
    pub(crate) fn new(value: Option<&OsStr>) -> io::Result<Self> {
        let target = match value.map(OsStr::as_bytes) {
            None | Some([]) => None,
            Some([b'@', name @ ..]) => Some(SocketAddr::from_abstract_name(name)),
            Some(path @ [b'/', ..]) => Some(SocketAddr::from_pathname(OsStr::from_bytes(path))),
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "NOTIFY_SOCKET={} is neither an absolute path nor an @abstract name",
                        value.unwrap_or_default().to_string_lossy()
                    ),
                ));
            }
        };
        let target = target.transpose().map_err(|e| {
            let value = value.unwrap_or_default().to_string_lossy();
            io::Error::new(e.kind(), format!("NOTIFY_SOCKET={value}: {e}"))
        })?;
        Ok(Notifier { target })
    }

    /// Whether state changes go anywhere.
    pub(crate) fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: start-up is finished, the sockets are served.
    pub(crate) fn ready(&self) -> io::Result<()> {
        self.send("READY=1")
    }

    /// `STATUS=…`, the one line `systemctl status` shows. Line breaks become spaces: each line
    /// of a datagram is a separate assignment, so a newline would let the text set other keys.
    pub(crate) fn status(&self, text: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", text.replace(['\n', '\r'], " ")))
    }

    /// `STOPPING=1`: shutting down; the manager stops counting it as running.
    pub(crate) fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// One datagram from a fresh unbound socket. Non-blocking: a manager too busy to drain its
    /// queue costs us a `WouldBlock` error, never a stalled runtime worker. The kernel attaches
    /// our credentials itself when the manager asks for them (SO_PASSCRED).
    fn send(&self, message: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        let sent = socket
            .send_to_addr(message.as_bytes(), target)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot notify {}: {e}", shown(target)))
            })?;
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("cannot notify {}: short datagram", shown(target)),
            ));
        }
        Ok(())
    }
}

/// The socket as `NOTIFY_SOCKET` names it.
fn shown(addr: &SocketAddr) -> String {
    match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
        (None, None) => "the notify socket".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn notifier(value: &str) -> Notifier {
        Notifier::new(Some(OsStr::new(value))).unwrap()
    }

    #[test]
    fn sends_each_state_to_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        let notifier = notifier(path.to_str().unwrap());
        assert!(notifier.is_enabled());
        notifier.ready().unwrap();
        assert_eq!(receive(&manager), "READY=1");
        notifier.status("3 connections, 1.2 MB/s").unwrap();
        assert_eq!(receive(&manager), "STATUS=3 connections, 1.2 MB/s");
        notifier.stopping().unwrap();
        assert_eq!(receive(&manager), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_name() {
        let name = format!("asyncio-tool-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        notifier(&format!("@{name}")).ready().unwrap();
        assert_eq!(receive(&manager), "READY=1");
    }

    #[test]
    fn status_text_cannot_add_assignments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        notifier(path.to_str().unwrap())
            .status("a\nMAINPID=1\r\nb")
            .unwrap();
        assert_eq!(receive(&manager), "STATUS=a MAINPID=1  b");
    }

    #[test]
    fn unset_or_empty_is_a_silent_no_op() {
        for notifier in [
            Notifier::new(None).unwrap(),
            notifier(""),
            Notifier::default(),
        ] {
            assert!(!notifier.is_enabled());
            notifier.ready().unwrap();
            notifier.status("x").unwrap();
            notifier.stopping().unwrap();
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        let msg = Notifier::new(Some(OsStr::new("run/notify")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "NOTIFY_SOCKET=run/notify is neither an absolute path nor an @abstract name"
        );
        let long = format!("/{}", "x".repeat(200));
        let msg = Notifier::new(Some(OsStr::new(&long)))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with(&format!("NOTIFY_SOCKET={long}: ")), "{msg}");
    }

    #[test]
    fn a_missing_manager_is_an_error_to_ignore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone");
        let err = notifier(path.to_str().unwrap()).ready().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let shown = format!("cannot notify {}: ", path.display());
        assert!(err.to_string().starts_with(&shown), "{err}");
    }
}
