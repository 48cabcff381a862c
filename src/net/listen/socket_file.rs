//! A Unix socket file made so that neither a racing server nor a path that changes under us
//! can make the server serve a file nobody reaches or remove a file that is not the one it
//! checked.
//!
//! - The socket is bound and listening under a unique temporary name in the same directory,
//!   then moved to its name with a rename that replaces nothing: the name only ever shows a
//!   socket that answers, so a second server probing it never takes a starting one for stale.
//! - Everything happens relative to the directory opened first (the probe connects through
//!   `/proc/self/fd/N/`, a bind is checked to have landed there): a parent symlink re-pointed
//!   meanwhile cannot send a probe or a removal to another directory.
//! - A stale socket (one that refuses connections) is replaced by exchanging ours with it in
//!   one rename and then looking at what came out: if it is not the file probed (a server
//!   took the path in between), it goes back at once. Nothing is removed by name alone.
//! - The file's mode is the one it was made with: the umask is set around bind, the rename
//!   keeps it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use socket2::{Domain, Socket, Type};

use crate::net::endpoint::UNIX_PATH_MAX;
use crate::ui::{Ui, quote};

/// How many times the path may change under us (a file appearing or going between two looks)
/// before binding gives up: each round is a handful of system calls, so only a path rewritten
/// in a loop by someone else gets this far.
const ROUNDS: usize = 16;

/// How much of the socket's name its temporary names keep (`.e.sock.4242.0` beside
/// `e.sock`): 32 bytes, so a temporary name bound through `/proc/self/fd` always fits.
const TEMP_NAME_KEEPS: usize = 32;

/// A file's identity: device and inode.
type Id = (u64, u64);

/// The directory a socket file lives in, opened once.
#[derive(Debug)]
struct Dir {
    fd: OwnedFd,
    /// The directory as typed: where the socket is bound, and how a file in it is named when
    /// /proc cannot.
    path: PathBuf,
    /// Whether `/proc/self/fd/N/` reaches this very directory.
    proc: bool,
}

impl Dir {
    /// Opens the directory of `path`; returns it and the file's name in it.
    fn open(path: &Path) -> io::Result<(Dir, OsString)> {
        // Path::file_name would take `x` from `x/` or `x/.`: a socket made at `x` that the
        // address as typed (a directory's) does not reach.
        let bytes = path.as_os_str().as_bytes();
        let last = bytes.rsplit(|b| *b == b'/').next().unwrap_or_default();
        let name = match path.file_name() {
            Some(name) if name.as_bytes() == last => name,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the path names a directory, not a socket file",
                ));
            }
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(parent, flags, Mode::empty())?;
        let own = rustix::fs::fstat(&fd).map(|s| id(&s))?;
        let proc = rustix::fs::stat(proc_path(&fd, OsStr::new(""))).is_ok_and(|s| id(&s) == own);
        let dir = Dir {
            fd,
            path: parent.to_owned(),
            proc,
        };
        Ok((dir, name.to_owned()))
    }

    /// A path connect resolves to `name` in this very directory: through `/proc/self/fd`
    /// (short, and immune to the parent path changing), or else the directory as typed.
    fn pinned_path_of(&self, name: &OsStr) -> PathBuf {
        let via_proc = proc_path(&self.fd, name);
        if self.proc && via_proc.as_os_str().len() <= UNIX_PATH_MAX {
            via_proc
        } else {
            self.path.join(name)
        }
    }

    /// A temporary name beside `real`, the path to bind it at, and whether that path is
    /// pinned to this directory (through `/proc/self/fd`). Unless `pin` is asked, the
    /// directory as typed when that fits in a socket address, since the kernel keeps the path
    /// bound for `ss` and `lsof` to show; `/proc/self/fd` otherwise; without /proc, a name
    /// with less of `real` in it, so a path that fits still works where it can.
    fn bind_target(&self, real: &OsStr, pin: bool) -> io::Result<(OsString, PathBuf, bool)> {
        let n = next_number();
        let temp = temp_name(real, TEMP_NAME_KEEPS, n);
        let typed = self.path.join(&temp);
        if !pin && typed.as_os_str().len() <= UNIX_PATH_MAX {
            return Ok((temp, typed, false));
        }
        let via_proc = proc_path(&self.fd, &temp);
        if self.proc && via_proc.as_os_str().len() <= UNIX_PATH_MAX {
            return Ok((temp, via_proc, true));
        }
        if typed.as_os_str().len() <= UNIX_PATH_MAX {
            return Ok((temp, typed, false));
        }
        let excess = typed.as_os_str().len() - UNIX_PATH_MAX;
        let kept = real.len().min(TEMP_NAME_KEEPS);
        let Some(keep) = kept.checked_sub(excess) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the path is too long to make the socket under a temporary name beside \
                     it without /proc (shorten the directory by {} bytes, or mount /proc)",
                    excess - kept
                ),
            ));
        };
        let temp = temp_name(real, keep, n);
        let typed = self.path.join(&temp);
        Ok((temp, typed, false))
    }

    /// What `name` in this directory is now (a symlink is itself, not its target).
    fn stat(&self, name: &OsStr) -> Result<rustix::fs::Stat, Errno> {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
    }

    fn id(&self, name: &OsStr) -> Result<Id, Errno> {
        self.stat(name).map(|s| id(&s))
    }

    fn rename(&self, from: &OsStr, to: &OsStr, flags: RenameFlags) -> Result<(), Errno> {
        rustix::fs::renameat_with(&self.fd, from, &self.fd, to, flags)
    }

    /// Moves `from` to `to` unless `to` exists (EEXIST then). Filesystems without
    /// RENAME_NOREPLACE get link() and unlink(), which replace nothing either.
    fn place(&self, from: &OsStr, to: &OsStr) -> Result<(), Errno> {
        match self.rename(from, to, RenameFlags::NOREPLACE) {
            Err(Errno::INVAL | Errno::NOSYS) => {
                rustix::fs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())?;
                let _ = self.unlink(from);
                Ok(())
            }
            other => other,
        }
    }

    fn unlink(&self, name: &OsStr) -> Result<(), Errno> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
    }
}

fn proc_path(fd: &OwnedFd, name: &OsStr) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}/", fd.as_raw_fd()));
    path.push(name);
    path
}

fn id(stat: &rustix::fs::Stat) -> Id {
    (stat.st_dev, stat.st_ino)
}

/// A number no other temporary name of this process has had.
fn next_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A name no other file in the directory has: hidden, unique per process and call, and
/// saying whose it is (`.e.sock.4242.0` beside `e.sock`, as `ss -xl` shows the listener).
/// At most `keep` bytes of `name`; `n` from [`next_number`].
fn temp_name(name: &OsStr, keep: usize, n: u64) -> OsString {
    let mut temp = OsString::from(".");
    let bytes = name.as_bytes();
    temp.push(OsStr::from_bytes(&bytes[..bytes.len().min(keep)]));
    temp.push(format!(".{}.{n}", std::process::id()));
    temp
}

/// The socket file a server made, removed when this is dropped if the path still names that
/// same file (a newer server may have replaced it).
#[derive(Debug)]
pub struct SocketFile {
    dir: Dir,
    name: OsString,
    id: Id,
}

impl Drop for SocketFile {
    /// Moves the file aside, then looks at what was moved: ours is removed, anything else (a
    /// server that replaced ours between the look and the move) goes back at once.
    fn drop(&mut self) {
        if self.dir.id(&self.name) != Ok(self.id) {
            return;
        }
        let Some(aside) = self.move_aside() else {
            return;
        };
        if self.dir.id(&aside) == Ok(self.id) {
            let _ = self.dir.unlink(&aside);
        } else {
            let _ = self.dir.place(&aside, &self.name);
        }
    }
}

impl SocketFile {
    /// Moves the file to a new name beside it, replacing nothing; the name, or `None` if it
    /// could not be moved. Without RENAME_NOREPLACE the file is removed after a last look
    /// instead (a window of two system calls), and `None` returned.
    fn move_aside(&self) -> Option<OsString> {
        for _ in 0..ROUNDS {
            let aside = temp_name(&self.name, TEMP_NAME_KEEPS, next_number());
            match self.dir.rename(&self.name, &aside, RenameFlags::NOREPLACE) {
                Ok(()) => return Some(aside),
                Err(Errno::EXIST) => {}
                Err(Errno::INVAL | Errno::NOSYS) => {
                    if self.dir.id(&self.name) == Ok(self.id) {
                        let _ = self.dir.unlink(&self.name);
                    }
                    return None;
                }
                Err(_) => return None,
            }
        }
        None
    }
}

/// Our socket's temporary name, removed unless it was moved to the real one ([`Self::moved`]).
struct TempName<'a> {
    dir: &'a Dir,
    name: OsString,
    id: Id,
    armed: bool,
}

impl TempName<'_> {
    /// The file is under its real name now: nothing to remove.
    fn moved(mut self) {
        self.armed = false;
    }
}

impl Drop for TempName<'_> {
    fn drop(&mut self) {
        if self.armed && self.dir.id(&self.name) == Ok(self.id) {
            let _ = self.dir.unlink(&self.name);
        }
    }
}

/// Binds and listens on the socket file `path`, made with `mode`. A stale socket there is
/// replaced (said to `ui` under `--verbose`); a live one, or anything that is not a socket,
/// never is.
pub(super) fn bind(
    path: &Path,
    mode: Option<u32>,
    ui: &Ui,
) -> io::Result<(UnixListener, SocketFile)> {
    let (dir, name) = Dir::open(path)?;
    let (listener, temp) = listen_beside(&dir, &name, mode)?;
    let id = temp.id;
    let mut replaced = false;
    let mut rounds = 0;
    loop {
        rounds += 1;
        if rounds > ROUNDS {
            return Err(io::Error::other(
                "the path kept changing while the server started (left alone)",
            ));
        }
        match dir.place(&temp.name, &name) {
            Ok(()) => break,
            Err(Errno::EXIST) => {}
            Err(err) => return Err(err.into()),
        }
        // Gone meanwhile (None): the name is tried again.
        let Some(stale) = in_the_way(&dir, &name)? else {
            continue;
        };
        match replace(&dir, &temp.name, &name, stale)? {
            Replaced::Done => {
                replaced = true;
                break;
            }
            Replaced::Removed => replaced = true,
            Replaced::Not => {}
        }
    }
    temp.moved();
    if replaced {
        ui.detail(&format!(
            "removed the stale socket {} (nothing listened on it)",
            quote::quote(path.as_os_str())
        ));
    }
    Ok((listener, SocketFile { dir, name, id }))
}

/// Listens under a temporary name beside `name`. One someone else took (they are
/// predictable) costs another name, not the start; when all are taken, the error says so
/// rather than "Address already in use" about a path that may well be free.
fn listen_beside<'a>(
    dir: &'a Dir,
    name: &OsStr,
    mode: Option<u32>,
) -> io::Result<(UnixListener, TempName<'a>)> {
    let mut pin = false;
    for _ in 0..ROUNDS {
        match listen_under_temp_name(dir, name, mode, pin) {
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => {}
            // The typed path led elsewhere, or made a file that is not plainly ours (a
            // root-squashed NFS owns it to nobody): bound through /proc, it lands here.
            Ok(None) if dir.proc && !pin => pin = true,
            Ok(None) => {
                return Err(io::Error::other(
                    "the directory changed while the server started (left alone)",
                ));
            }
            Ok(Some(bound)) => return Ok(bound),
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "other files hold the {ROUNDS} temporary names tried beside it ({} and on; \
             left alone)",
            quote::quote(temp_name(name, TEMP_NAME_KEEPS, 0).as_os_str())
        ),
    ))
}

/// Binds and listens under a temporary name in `dir`, the umask set so the file is made with
/// `mode` (a chmod after bind would leave a moment where it is wider); `pin` binds through
/// `/proc/self/fd`. `None` when the file cannot be told to be the one bound here.
fn listen_under_temp_name<'a>(
    dir: &'a Dir,
    real: &OsStr,
    mode: Option<u32>,
    pin: bool,
) -> io::Result<Option<(UnixListener, TempName<'a>)>> {
    let (name, path, pinned) = dir.bind_target(real, pin)?;
    let listener = match mode {
        None => UnixListener::bind(&path),
        Some(mode) => {
            let mask = Mode::from_bits_truncate(!mode & 0o777);
            // The umask is the process's: nothing else here creates files while the server
            // starts, so no other file is made with this one.
            let old = rustix::process::umask(mask);
            let bound = UnixListener::bind(&path);
            rustix::process::umask(old);
            bound
        }
    }?;
    // Bound through the directory's path, it must have led into that directory, and what is
    // there must be a socket of ours: a parent symlink re-pointed during bind and a file
    // another user planted at the (predictable) name would pass a look by name alone.
    let ours = |s: &rustix::fs::Stat| {
        FileType::from_raw_mode(s.st_mode) == FileType::Socket
            && (pinned || s.st_uid == rustix::process::geteuid().as_raw())
    };
    let Some(id) = dir.stat(&name).ok().filter(ours).map(|s| id(&s)) else {
        // Where the typed path led now is where ours was made; through /proc, ours is gone
        // (or is what is there: its owner's, left alone).
        if !pinned {
            let _ = std::fs::remove_file(&path);
        }
        return Ok(None);
    };
    let temp = TempName {
        dir,
        name,
        id,
        armed: true,
    };
    Ok(Some((listener, temp)))
}

/// What is at `name`, which a rename found taken: `Ok(None)` if it went meanwhile,
/// `Ok(Some(id))` for a stale socket (one that refuses connections), otherwise why it must be
/// left alone.
fn in_the_way(dir: &Dir, name: &OsStr) -> io::Result<Option<Id>> {
    let before = match dir.stat(name) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if FileType::from_raw_mode(before.st_mode) != FileType::Socket {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is there (left alone)",
        ));
    }
    let verdict = probe(&dir.pinned_path_of(name));
    // The verdict is about the file looked at only if the name still holds it.
    match dir.id(name) {
        Ok(now) if now == id(&before) => {}
        Ok(_) | Err(Errno::NOENT) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    match verdict {
        Err(Errno::CONNREFUSED) => Ok(Some(id(&before))),
        // A full accept queue (EAGAIN) is a live server too, just a busy one.
        Ok(()) | Err(Errno::AGAIN) => Err(in_use("a server answers there")),
        Err(Errno::PROTOTYPE) => Err(in_use(
            "a datagram or seqpacket socket is there, in use by another kind of server",
        )),
        Err(Errno::NOENT) => Ok(None),
        Err(err @ (Errno::ACCESS | Errno::PERM)) => Err(io::Error::new(
            io::Error::from(err).kind(),
            format!(
                "a socket is there that this user may not connect to, so whether a server \
                 answers cannot be told (left alone): {}",
                crate::report::io_reason(&err.into())
            ),
        )),
        Err(err) => Err(err.into()),
    }
}

fn in_use(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("Address already in use ({why})"),
    )
}

/// Connects to the socket at `path` without waiting: a blocking connect to a live server
/// whose accept queue is full would wait for room, and hold up the start (and Ctrl-C) with it.
fn probe(path: &Path) -> Result<(), Errno> {
    let errno = |err: io::Error| Errno::from_io_error(&err).unwrap_or(Errno::IO);
    let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None).map_err(errno)?;
    let addr = socket2::SockAddr::unix(path).map_err(errno)?;
    socket.connect(&addr).map_err(errno)
}

/// What [`replace`] did.
enum Replaced {
    /// Ours is at the name, the stale socket gone.
    Done,
    /// The stale socket is gone; ours is still to be moved in.
    Removed,
    /// Nothing: the name holds something else now, to be looked at again.
    Not,
}

/// Puts our socket (at `temp`) where the stale socket `stale` is (at `name`). One exchange
/// swaps the two; if what came out is not the file probed (another server replaced it
/// since), it is swapped back at once. Without RENAME_EXCHANGE (some filesystems) the stale
/// file is removed after a last look, a window of two system calls.
fn replace(dir: &Dir, temp: &OsStr, name: &OsStr, stale: Id) -> io::Result<Replaced> {
    let may_not = |err: Errno| match err {
        Errno::ACCESS | Errno::PERM => io::Error::new(
            io::Error::from(err).kind(),
            format!(
                "a stale socket is there (nothing listens on it), and this user may not \
                 remove it: {}",
                crate::report::io_reason(&err.into())
            ),
        ),
        err => err.into(),
    };
    match dir.rename(temp, name, RenameFlags::EXCHANGE) {
        Ok(()) if dir.id(temp) == Ok(stale) => {
            let _ = dir.unlink(temp);
            Ok(Replaced::Done)
        }
        Ok(()) => {
            dir.rename(temp, name, RenameFlags::EXCHANGE)?;
            Ok(Replaced::Not)
        }
        Err(Errno::NOENT) => Ok(Replaced::Not),
        // Another server may have removed it first: then the name is tried again.
        Err(Errno::INVAL | Errno::NOSYS) if dir.id(name) == Ok(stale) => match dir.unlink(name) {
            Ok(()) => Ok(Replaced::Removed),
            Err(Errno::NOENT) => Ok(Replaced::Not),
            Err(err) => Err(may_not(err)),
        },
        Err(Errno::INVAL | Errno::NOSYS) => Ok(Replaced::Not),
        Err(err) => Err(may_not(err)),
    }
}
