//! `echo-server --cert-out FILE`: the self-signed certificate saved as PEM, for clients that
//! trust by file (`openssl s_client -CAfile`, `curl --cacert`, `echo-client --cafile`).
//!
//! The certificate is new at every start, so the file of the last run is stale by design and
//! is replaced: refusing would fail every restart. Only a file that holds certificates and
//! nothing else (or nothing) is replaced, so a key or any other file named by mistake is
//! never lost. The replacement is atomic (a temporary file beside it, renamed over it), so a
//! client reading the file meanwhile sees the old certificate or the new one, never half of
//! one; a symbolic link is followed, as a shell's `>` does. Something that is no regular file
//! (a named pipe, a terminal) or one of our descriptors (`/dev/stderr`, whose file may be the
//! server's log) is written in place, appended to. The file is opened before anything is
//! bound, so a bad name is an error at start, as a bad `--cert` is.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use color_eyre::eyre;

use crate::ui::quote::quote;

/// Where the certificate goes, opened at start.
#[derive(Debug)]
pub struct CertOut {
    /// The path as given, for messages.
    given: PathBuf,
    file: File,
    /// For a regular file: the temporary file written, and the file it replaces.
    rename: Option<(PathBuf, PathBuf)>,
}

impl CertOut {
    /// Opens `path` for the certificate: a temporary file beside it (or `path` itself when it
    /// is no regular file). Refuses a directory, and an existing file that holds anything but
    /// certificates, naming it.
    pub fn open(path: &Path) -> eyre::Result<CertOut> {
        let failed = |err: io::Error| {
            eyre::eyre!(
                "--cert-out {}: {}",
                quote(path.as_os_str()),
                crate::report::io_reason(&err)
            )
        };
        if names_a_descriptor(path) {
            // Resolved, /dev/stderr is the file stderr goes to: replacing that would take
            // the server's own log away from it.
            let file = in_place(path).map_err(failed)?;
            return Ok(CertOut {
                given: path.to_owned(),
                file,
                rename: None,
            });
        }
        let target = resolved(path).map_err(failed)?;
        match std::fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => eyre::bail!(
                "--cert-out {}: is a directory; give a file name in it (e.g. cert.pem)",
                quote(path.as_os_str())
            ),
            Ok(meta) if !meta.is_file() => {
                let file = in_place(&target).map_err(failed)?;
                return Ok(CertOut {
                    given: path.to_owned(),
                    file,
                    rename: None,
                });
            }
            Ok(_) => replaceable(path, &target)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(failed(err)),
        }
        let temp = temp_beside(&target).ok_or_else(|| {
            eyre::eyre!("--cert-out {}: not a file name", quote(path.as_os_str()))
        })?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .map_err(|err| match err.kind() {
                // The file itself may be writable: say it is the directory that is not.
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    eyre::eyre!(
                        "--cert-out {}: cannot create a file in its directory (the file is \
                         replaced by a new one): {}",
                        quote(path.as_os_str()),
                        crate::report::io_reason(&err)
                    )
                }
                _ => failed(err),
            })?;
        Ok(CertOut {
            given: path.to_owned(),
            file,
            rename: Some((temp, target)),
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.given
    }

    /// Writes `pem` and puts the file in place.
    pub fn write(mut self, pem: &str) -> eyre::Result<()> {
        let given = quote(self.given.as_os_str());
        let failed = |err: io::Error| {
            eyre::eyre!(
                "--cert-out {given}: cannot write the certificate: {}",
                crate::report::io_reason(&err)
            )
        };
        self.file.write_all(pem.as_bytes()).map_err(failed)?;
        if let Some((temp, target)) = self.rename.take() {
            // Not synced: the file is made again at every start, so a crash costs nothing.
            let renamed = std::fs::rename(&temp, &target);
            if renamed.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            renamed.map_err(failed)?;
        }
        Ok(())
    }
}

impl Drop for CertOut {
    fn drop(&mut self) {
        // Not written (the server failed to start): no temporary file is left behind.
        if let Some((temp, _)) = &self.rename {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// `path` is one of the process's own descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
/// `/proc/…`), written where it points, as it is.
fn names_a_descriptor(path: &Path) -> bool {
    path == Path::new("/dev/stdout")
        || path == Path::new("/dev/stderr")
        || path.starts_with("/dev/fd")
        || path.starts_with("/proc")
}

/// `path` with its symbolic links followed, as a shell's `>` follows them: to the file a
/// dangling link names, which is then made.
fn resolved(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_owned();
    // As many links as the kernel follows (ELOOP past that).
    for _ in 0..40 {
        match std::fs::canonicalize(&path) {
            Ok(real) => return Ok(real),
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            Err(_) => {}
        }
        match std::fs::read_link(&path) {
            Ok(next) => path = path.parent().unwrap_or(Path::new("")).join(next),
            // Not a link (or its directory is missing, said when the file is made).
            Err(_) => return Ok(path),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// Opens something that is no regular file (a pipe, a terminal, a descriptor) for writing,
/// appending (a log file behind /dev/stderr keeps what it holds), without waiting for a
/// reader: a named pipe nobody reads is an error (ENXIO), not a hang.
fn in_place(path: &Path) -> io::Result<File> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let file = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ENXIO) => io::Error::other("nothing reads this named pipe"),
            _ => err,
        })?;
    fcntl_setfl(&file, fcntl_getfl(&file)? - OFlags::NONBLOCK)?;
    Ok(file)
}

/// The existing regular file `target` (given as `path`) may be replaced: it is empty or holds
/// only PEM certificates, as a previous run left it.
fn replaceable(path: &Path, target: &Path) -> eyre::Result<()> {
    let (text, _) = super::read_limited(target).map_err(|err| {
        eyre::eyre!(
            "--cert-out {}: {}",
            quote(path.as_os_str()),
            crate::report::io_reason(&err)
        )
    })?;
    if text.len() as u64 <= super::MAX_FILE && only_certificates(&text) {
        return Ok(());
    }
    eyre::bail!(
        "--cert-out {}: the file exists and holds something other than certificates; not \
         replaced (remove it, or give another name)",
        quote(path.as_os_str())
    )
}

/// `text` is empty or PEM certificates only (blank lines and text between them allowed, as
/// openssl writes it; no key or other PEM section).
fn only_certificates(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    if text.trim().is_empty() {
        return true;
    }
    let mut sections = text
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("-----BEGIN "))
        .peekable();
    sections.peek().is_some() && sections.all(|label| label == "CERTIFICATE-----")
}

/// A temporary name in `target`'s directory: `.NAME.PID.tmp`.
fn temp_beside(target: &Path) -> Option<PathBuf> {
    let name = target.file_name()?;
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}.tmp", std::process::id()));
    Some(target.with_file_name(temp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificate_files_are_replaced() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(only_certificates(b""));
        assert!(only_certificates(b"\n"));
        assert!(only_certificates(cert.as_bytes()));
        assert!(only_certificates(
            format!("subject=x\n{cert}\n{cert}").as_bytes()
        ));
        let key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
        assert!(!only_certificates(format!("{cert}{key}").as_bytes()));
        assert!(!only_certificates(key.as_bytes()));
        assert!(!only_certificates(b"export PATH=/bin\n"));
        assert!(!only_certificates(b"\xff\xfe"));
    }

    #[test]
    fn saved_atomically_and_never_over_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        for _ in 0..2 {
            CertOut::open(&path).unwrap().write(pem).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
        }
        // Opened, not written (a failed start): nothing left behind.
        drop(CertOut::open(&path).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let err = CertOut::open(&key).unwrap_err().to_string();
        assert!(
            err.contains("key.pem") && err.contains("not replaced"),
            "{err}"
        );
        let err = CertOut::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        // A dangling link is followed, as a shell's > follows it.
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink("made.pem", &link).unwrap();
        CertOut::open(&link).unwrap().write(pem).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.pem")).unwrap(),
            pem
        );
        assert!(names_a_descriptor(Path::new("/dev/stderr")));
        assert!(!names_a_descriptor(Path::new("/dev/shm/c.pem")));
        let err = CertOut::open(&dir.path().join("no/such.pem")).unwrap_err();
        assert!(
            err.to_string().contains("No such file or directory"),
            "{err}"
        );
    }
}
