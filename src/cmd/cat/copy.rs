//! Moving bytes from an input descriptor to stdout as fast as the kernel allows.
//!
//! The plain path lets the kernel copy: `copy_file_range` file→file, `splice` from a pipe,
//! `sendfile` file→device or socket. A file going into a pipe is read into fresh pages that are
//! then given to the pipe (`vmsplice`, see [`FreshPages`]): splicing the file itself would put
//! references to its page cache into the pipe, and a reader would see changes made to the file
//! after cat returned. Any call the kernel refuses (a /proc file, an
//! `O_APPEND` output, a tty, an old kernel) falls back to `read`/`write` from the descriptor's
//! current offset, which also gives a real read error its proper owner. Small regular files
//! are read into one buffer and written together, so a thousand small files cost a handful of
//! writes. All of this runs on one blocking thread: one hand-off for the whole job, not one per
//! chunk.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::event::PollFlags;
use rustix::fs::{FileType, OFlags, SeekFrom, Stat};
use rustix::io::Errno;

use crate::sys::fdio::{self, wait_ready};

/// Read/write chunk and the size of the coalescing buffer.
pub const CHUNK: usize = 128 * 1024;
/// Regular files up to this size are gathered into the output buffer instead of copied alone.
const SMALL_FILE: u64 = 64 * 1024;
/// Bytes asked of one kernel copy call: large, so few calls, yet small enough for the progress
/// counter to move smoothly (a few milliseconds per call at page-cache speed). Measured with
/// 1 GiB: 8 MiB calls copy as fast as 256 MiB ones, to /dev/null and to a file.
const KERNEL_CHUNK: usize = 8 * 1024 * 1024;
/// What a stdout pipe is enlarged to: halves the number of context switches with the reader.
const PIPE_SIZE: usize = 1024 * 1024;
/// Copies to an ext4 stdout at least this big get their blocks reserved first.
const PREALLOCATE_MIN: u64 = 1024 * 1024;
/// `statfs` magic of ext2/3/4.
const EXT4_SUPER_MAGIC: u64 = 0xEF53;

/// A failure while copying, attributed to its side: an input failure skips that file, an
/// output failure ends the run.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the input failed.
    Input(io::Error),
    /// Writing stdout failed.
    Output(io::Error),
}

/// What kind of file a descriptor is, as far as copying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    Regular,
    /// A pipe or FIFO.
    Pipe,
    /// A character device: a terminal, /dev/null, /dev/zero...
    CharDevice,
    /// A socket.
    Socket,
    /// A directory (reading it fails with EISDIR, as GNU cat reports).
    Directory,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind of a file from its `fstat`.
    pub fn of(stat: &Stat) -> Kind {
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::Regular,
            FileType::Fifo => Kind::Pipe,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::Socket => Kind::Socket,
            FileType::Directory => Kind::Directory,
            _ => Kind::Other,
        }
    }
}

/// How a file's bytes were moved, for `--verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Kernel file-to-file copy.
    CopyFileRange,
    /// Kernel copy from a pipe.
    Splice,
    /// A file read into fresh pages that are then given to a stdout pipe.
    FreshPages,
    /// Kernel copy from a file to a device or socket.
    Sendfile,
    /// Plain reads and writes through our buffer.
    ReadWrite,
    /// Read into the shared output buffer with other small files.
    Gathered,
}

impl Method {
    /// The system call's name, as `--verbose` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Method::CopyFileRange => "copy_file_range",
            Method::Splice => "splice",
            Method::FreshPages => "read into fresh pages + vmsplice",
            Method::Sendfile => "sendfile",
            Method::ReadWrite => "read/write",
            Method::Gathered => "read (gathered with other small files)",
        }
    }
}

/// How one input was copied: the method that moved the bytes, and the kernel method that was
/// tried first and refused, with the kernel's reason.
#[derive(Debug)]
pub struct Report {
    /// The method that moved the (rest of the) bytes.
    pub method: Method,
    /// A zero-copy method refused by the kernel, and why.
    pub fell_back_from: Option<(Method, io::Error)>,
    /// Bytes copied.
    pub bytes: u64,
}

/// Standard output, described once, with the buffer that gathers small writes.
pub struct Sink {
    fd: BorrowedFd<'static>,
    kind: Kind,
    stat: Stat,
    /// Whether stdout is a file on a file system where reserving blocks before a big copy
    /// makes the copy faster.
    preallocate: bool,
    pending: Vec<u8>,
    /// For files into a pipe; made at the first use. `None` inside once it proved unusable.
    fresh: Option<Option<FreshPages>>,
}

impl Sink {
    /// Describes stdout. A stdout pipe is enlarged (best effort: a pipe-size limit is not an
    /// error).
    pub fn stdout() -> io::Result<Sink> {
        let fd = crate::sys::stdio::stdout()?;
        let stat = rustix::fs::fstat(fd)?;
        let kind = Kind::of(&stat);
        let append = rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(OFlags::APPEND));
        // Only ever enlarged: a pipe someone made bigger stays so.
        if kind == Kind::Pipe
            && rustix::pipe::fcntl_getpipe_size(fd).is_ok_and(|size| size < PIPE_SIZE)
        {
            let _ = rustix::pipe::fcntl_setpipe_size(fd, PIPE_SIZE);
        }
        let preallocate = kind == Kind::Regular
            && !append
            && rustix::fs::fstatfs(fd)
                .is_ok_and(|fs| u64::try_from(fs.f_type) == Ok(EXT4_SUPER_MAGIC));
        Ok(Sink {
            fd,
            kind,
            stat,
            preallocate,
            pending: Vec::with_capacity(CHUNK),
            fresh: None,
        })
    }

    /// GNU cat's "input file is output file" rule: stdout is a regular file, the input is that
    /// very file, and the input's read position is before its end. Whatever stdout's own
    /// position or mode (`>>`, `1<>`), copying could then meet what this run writes and never
    /// end, or overwrite bytes before they are read; GNU refuses the file, and so do we.
    ///
    /// Output still gathered here is written first when the input is stdout's file: GNU has
    /// written it by now, and it may be what makes the file non-empty (`cat a f > f`).
    pub fn is_same_file(
        &mut self,
        input: BorrowedFd<'_>,
        in_stat: &Stat,
    ) -> Result<bool, CopyError> {
        if self.kind != Kind::Regular
            || in_stat.st_dev != self.stat.st_dev
            || in_stat.st_ino != self.stat.st_ino
        {
            return Ok(false);
        }
        self.flush()?;
        let size = rustix::fs::fstat(input).map_or(in_stat.st_size, |st| st.st_size);
        // The same inode as a regular stdout is a regular file, so it can seek; should it
        // fail anyway, refusing is the side that cannot destroy data.
        Ok(rustix::fs::seek(input, SeekFrom::Current(0)).map_or(true, |pos| (pos as i64) < size))
    }

    /// The output buffer, for a renderer to append to directly; call [`Sink::flush_if_full`]
    /// after.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// Writes the buffer out if it has reached a chunk.
    pub fn flush_if_full(&mut self) -> Result<(), CopyError> {
        if self.pending.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out everything gathered so far.
    pub fn flush(&mut self) -> Result<(), CopyError> {
        let result = fdio::write_all(self.fd, &self.pending);
        self.pending.clear();
        if self.pending.capacity() > 4 * CHUNK {
            // A long line under -v can balloon the buffer; keep memory constant.
            self.pending.shrink_to(CHUNK);
        }
        result.map_err(CopyError::Output)
    }

    /// Copies `input` (already open, with its `fstat`) to stdout unchanged, by the fastest
    /// method the kernel accepts. `progress` counts bytes as they go.
    pub fn copy_plain(
        &mut self,
        input: BorrowedFd<'_>,
        in_stat: &Stat,
        buf: &mut [u8],
        progress: &AtomicU64,
    ) -> Result<Report, CopyError> {
        let in_kind = Kind::of(in_stat);
        let size = in_stat.st_size as u64;
        if in_kind == Kind::Regular && size > 0 && size <= SMALL_FILE {
            return self.gather(input, size, progress);
        }
        if in_kind == Kind::Regular {
            // Read ahead more aggressively, as GNU cat does; advice only, so errors are moot.
            let _ = rustix::fs::fadvise(input, 0, None, rustix::fs::Advice::Sequential);
        }
        self.flush()?;
        let preferred = match (in_kind, self.kind) {
            (Kind::Pipe, _) => Some(Method::Splice),
            (Kind::Regular, Kind::Pipe) => Some(Method::FreshPages),
            (Kind::Regular, Kind::Regular) => Some(Method::CopyFileRange),
            (Kind::Regular, Kind::CharDevice | Kind::Socket) => Some(Method::Sendfile),
            _ => None,
        };
        if preferred == Some(Method::CopyFileRange) {
            self.preallocate_for(input, size);
        }
        let mut bytes = 0;
        let mut fell_back_from = None;
        if let Some(method) = preferred {
            let outcome = if method == Method::FreshPages {
                self.fresh_pages_copy(input, &mut bytes, progress)?
            } else {
                self.kernel_copy(method, input, &mut bytes, progress)?
            };
            match outcome {
                None => {
                    return Ok(Report {
                        method,
                        fell_back_from: None,
                        bytes,
                    });
                }
                Some(refusal) => fell_back_from = Some((method, refusal)),
            }
        }
        bytes += self.read_write(input, buf, progress)?;
        Ok(Report {
            method: Method::ReadWrite,
            fell_back_from,
            bytes,
        })
    }

    /// Reserves the blocks a big copy is about to fill, without changing the output's size.
    /// Measured on ext4 (`cargo bench --bench cat -- c`): delayed allocation otherwise
    /// reserves space page by page inside the copy, and a 1 GiB copy takes about a quarter
    /// longer. Best effort: a refusal (no space for all of it, quota, an old kernel) just
    /// leaves the copy to meet the real error, if any, where GNU cat would.
    fn preallocate_for(&self, input: BorrowedFd<'_>, size: u64) {
        // Smaller copies are not worth the two seeks.
        if !self.preallocate || size < PREALLOCATE_MIN {
            return;
        }
        let (Ok(in_pos), Ok(out_pos)) = (
            rustix::fs::seek(input, SeekFrom::Current(0)),
            rustix::fs::seek(self.fd, SeekFrom::Current(0)),
        ) else {
            return;
        };
        let len = size.saturating_sub(in_pos);
        if len >= PREALLOCATE_MIN {
            let _ =
                rustix::fs::fallocate(self.fd, rustix::fs::FallocateFlags::KEEP_SIZE, out_pos, len);
        }
    }

    /// Runs one kernel copy method to the end of the input. Returns `None` when done, or the
    /// kernel's refusal when the caller must fall back to read/write (from the offset reached).
    fn kernel_copy(
        &self,
        method: Method,
        input: BorrowedFd<'_>,
        bytes: &mut u64,
        progress: &AtomicU64,
    ) -> Result<Option<io::Error>, CopyError> {
        loop {
            let result = match method {
                Method::CopyFileRange => {
                    rustix::fs::copy_file_range(input, None, self.fd, None, KERNEL_CHUNK)
                }
                Method::Splice => rustix::pipe::splice(
                    input,
                    None,
                    self.fd,
                    None,
                    PIPE_SIZE,
                    rustix::pipe::SpliceFlags::MOVE,
                ),
                _ => rustix::fs::sendfile(self.fd, input, None, KERNEL_CHUNK),
            };
            match result {
                // A first 0 may be a /proc or /sys file the kernel cannot copy (old kernels
                // say 0 instead of failing): only a read can tell that from an empty file.
                Ok(0) if *bytes == 0 => return Ok(Some(io::Error::other("no bytes moved"))),
                Ok(0) => return Ok(None),
                Ok(n) => {
                    *bytes += n as u64;
                    progress.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    // A non-blocking stdout (or input pipe): wait, then go on.
                    wait_ready(self.fd, PollFlags::OUT).map_err(CopyError::Output)?;
                    wait_ready(input, PollFlags::IN).map_err(CopyError::Input)?;
                }
                Err(e @ (Errno::PIPE | Errno::NOSPC | Errno::DQUOT | Errno::FBIG)) => {
                    return Err(CopyError::Output(e.into()));
                }
                // Anything else: the kernel will not do it this way. Read/write will either
                // work or meet the real error and report it on the right side.
                Err(e) => return Ok(Some(e.into())),
            }
        }
    }

    /// Copies a file into the stdout pipe through [`FreshPages`]. Returns `None` when done, or
    /// why fresh pages cannot be had (the caller goes on with read/write from the offset
    /// reached).
    fn fresh_pages_copy(
        &mut self,
        input: BorrowedFd<'_>,
        bytes: &mut u64,
        progress: &AtomicU64,
    ) -> Result<Option<io::Error>, CopyError> {
        let first_use = self.fresh.is_none();
        let pages = match self.fresh.get_or_insert_with(|| FreshPages::new().ok()) {
            Some(pages) => pages,
            None => return Ok(Some(io::Error::other("no huge pages for fresh memory"))),
        };
        let mut check_huge = first_use;
        loop {
            let n = read(input, pages.slot())?;
            if n == 0 {
                return Ok(None);
            }
            if std::mem::take(&mut check_huge) && !FreshPages::is_huge() {
                // Zeroing and mapping each 4 KiB page on its own is slower than read/write.
                fdio::write_all(self.fd, &pages.slot()[..n]).map_err(CopyError::Output)?;
                self.fresh = Some(None);
                *bytes += n as u64;
                progress.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(Some(io::Error::other("no transparent huge pages")));
            }
            give_to_pipe(self.fd, &pages.slot()[..n]).map_err(CopyError::Output)?;
            if let Err(e) = pages.renew() {
                // The pipe may still hold these pages: they must never be written again.
                self.fresh = Some(None);
                return Ok(Some(e));
            }
            *bytes += n as u64;
            progress.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Copies with read and write through `buf`, from the input's current offset.
    pub fn read_write(
        &mut self,
        input: BorrowedFd<'_>,
        buf: &mut [u8],
        progress: &AtomicU64,
    ) -> Result<u64, CopyError> {
        let mut bytes = 0;
        loop {
            let n = read(input, buf)?;
            if n == 0 {
                return Ok(bytes);
            }
            fdio::write_all(self.fd, &buf[..n]).map_err(CopyError::Output)?;
            bytes += n as u64;
            progress.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Reads a small regular file into the output buffer.
    fn gather(
        &mut self,
        input: BorrowedFd<'_>,
        size: u64,
        progress: &AtomicU64,
    ) -> Result<Report, CopyError> {
        let want = size as usize + 1;
        if self.pending.capacity() - self.pending.len() < want {
            self.flush()?;
        }
        let mut bytes = 0u64;
        loop {
            let start = self.pending.len();
            self.pending.resize(start + want.max(4096), 0);
            let result = fdio::read(input, &mut self.pending[start..]);
            let n = *result.as_ref().unwrap_or(&0);
            self.pending.truncate(start + n);
            let n = result.map_err(CopyError::Input)?;
            bytes += n as u64;
            progress.fetch_add(n as u64, Ordering::Relaxed);
            // A read shorter than asked that returned exactly the size fstat gave is the end of
            // the file: saves the extra read GNU cat does per file. Anything else (a /sys file
            // shorter than its stat size, a file growing) is read on until 0.
            if n == 0 || (bytes == size && n < want.max(4096)) {
                break;
            }
            if self.pending.len() >= CHUNK {
                self.flush()?;
            }
        }
        self.flush_if_full()?;
        Ok(Report {
            method: Method::Gathered,
            fell_back_from: None,
            bytes,
        })
    }
}

/// Reads once into `buf` (its full length), retrying on EINTR and waiting on EAGAIN.
pub fn read(input: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, CopyError> {
    fdio::read(input, buf).map_err(CopyError::Input)
}

/// What [`FreshPages`] reads into at a time: one transparent huge page.
const SLOT: usize = 2 * 1024 * 1024;

/// Anonymous memory that file bytes are read into and then given to a stdout pipe by
/// `vmsplice`. The pipe then holds pages nobody else can write, so what cat wrote stays as it
/// was read even when the file changes later, as with GNU cat's copies; and with one copy
/// instead of GNU's two. After each hand-over the slot's pages are dropped (`MADV_DONTNEED`):
/// the pipe keeps its references, and the next read faults in new zeroed pages instead of
/// writing over ones a reader may not have seen yet.
///
/// Measured on 1 GiB into a pipe (`cargo bench --bench cat -- b` conditions): 0.43-0.45x GNU's
/// time with a 2 MiB huge page per slot, 1.6x with 4 KiB pages (each zeroed and mapped on its
/// own), hence [`FreshPages::is_huge`]; splicing the file was 0.25x, read/write 0.8x.
pub struct FreshPages {
    map: *mut libc::c_void,
    slot: *mut u8,
}

// SAFETY: the mapping is owned by this value alone and only reached through `&mut self`.
unsafe impl Send for FreshPages {}

impl FreshPages {
    /// Maps room for one huge-page-aligned slot and asks for huge pages there.
    fn new() -> io::Result<FreshPages> {
        // SAFETY: a new private anonymous mapping; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * SLOT,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let offset = (map as *mut u8).align_offset(SLOT);
        // SAFETY: offset < SLOT, so the slot lies inside the 2 * SLOT mapping.
        let slot = unsafe { (map as *mut u8).add(offset) };
        let pages = FreshPages { map, slot };
        // SAFETY: advice about memory this value owns.
        if unsafe { libc::madvise(slot.cast(), SLOT, libc::MADV_HUGEPAGE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(pages)
    }

    fn slot(&mut self) -> &mut [u8] {
        // SAFETY: SLOT bytes inside our mapping, borrowed mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.slot, SLOT) }
    }

    /// Forgets the slot's pages: the next write to it gets new zeroed pages.
    fn renew(&mut self) -> io::Result<()> {
        // SAFETY: drops pages of our own mapping; nothing borrows the slot here.
        if unsafe { libc::madvise(self.slot.cast(), SLOT, libc::MADV_DONTNEED) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether this process has a transparent huge page (the slot, just written): none when
    /// they are off (`never`) or none could be had (memory too fragmented).
    fn is_huge() -> bool {
        std::fs::read_to_string("/proc/self/smaps_rollup").is_ok_and(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("AnonHugePages:"))
                .any(|v| v.trim().trim_end_matches("kB").trim() != "0")
        })
    }
}

impl Drop for FreshPages {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`; pages a pipe still holds stay alive.
        unsafe { libc::munmap(self.map, 2 * SLOT) };
    }
}

/// Gives `bytes` (fresh pages, never written again) to the stdout pipe.
fn give_to_pipe(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: one iovec over memory we own for the call; without SPLICE_F_GIFT the kernel
        // only reads it (taking references to the pages).
        let n = unsafe { libc::vmsplice(fd.as_raw_fd(), &iov, 1, 0) };
        match n {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n if n > 0 => bytes = &bytes[n as usize..],
            _ => {
                let err = io::Error::last_os_error();
                match Errno::from_io_error(&err) {
                    Some(Errno::INTR) => {}
                    Some(Errno::AGAIN) => wait_ready(fd, PollFlags::OUT)?,
                    _ => return Err(err),
                }
            }
        }
    }
    Ok(())
}
