//! The file-system seam: everything the log does to a disk goes through [`FileSystem`].
//!
//! [`StdFs`] is the real one. Tests use `fake::MemFs` (an in-memory file system that can
//! "crash", keeping only what was synced) and `fake::FailingFs` (which fails chosen calls).
//!
//! The calls are few and coarse, and each one is a place a failure can be injected: create,
//! open for append, append (write), sync a file, truncate, preallocate, read a whole file,
//! rename, remove, list a directory, sync a directory, and lock a file.
//!
//! A [`WalFile`] writes at its own *write position*, not at the file's size: a segment is
//! preallocated (its size set ahead, in zeros) so that an append within it changes no file
//! metadata, and its `fdatasync` has no size change to journal. The reader takes a run of
//! zeros to the end of a segment as its unused space (`reader.rs`).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::Duration;

use super::sync::Arc;

/// The operations the log needs from a file system.
pub(crate) trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its parents if they are missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the files in `dir` (not sorted; names that are not UTF-8 are skipped).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Creates `path` empty (truncating it if it exists) and opens it for appending at
    /// offset 0. The new name is durable only after [`FileSystem::sync_dir`].
    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>>;

    /// Opens the existing `path` for appending and truncating; the write position is its
    /// size.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>>;

    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Renames `from` to `to`, replacing `to`. Durable only after [`FileSystem::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes `path`. Durable only after [`FileSystem::sync_dir`].
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Makes the creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Takes an exclusive lock on `path` (created if missing), held until the returned guard
    /// drops. A lock already held, by this process or another, is an error of kind
    /// [`io::ErrorKind::WouldBlock`]; the call never waits.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// A file open for appending at its write position.
pub(crate) trait WalFile: Send + fmt::Debug {
    /// Writes all of `buf` at the write position and moves the position past it. On error,
    /// part of it may have been written and the position stays where it was.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;

    /// Makes the file's content and size durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;

    /// Cuts the file to `len` bytes and moves the write position there. Durable after a sync.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Grows the file to `len` bytes of zeros with its blocks allocated (`fallocate`), so that
    /// appends up to `len` change no metadata; the write position stays. Returns whether the
    /// file grew (not when it was already that long, or the platform has no such call). An
    /// error (a file system without `fallocate`, a full disk) leaves a file that still works:
    /// appends then grow it as they go. Durable after a sync.
    fn preallocate(&mut self, len: u64) -> io::Result<bool>;
}

/// A held lock; dropping it releases the lock.
pub(crate) trait FileLock: Send + Sync + fmt::Debug {}

/// `fs` behind a shared trait object (loom's `Arc` cannot unsize, so it is built from std's).
pub(crate) fn shared_fs(fs: impl FileSystem) -> Arc<dyn FileSystem> {
    #[cfg(not(lessor_loom))]
    {
        Arc::new(fs)
    }
    #[cfg(lessor_loom)]
    {
        let std: std::sync::Arc<dyn FileSystem> = std::sync::Arc::new(fs);
        Arc::from_std(std)
    }
}

// ===== impl StdFs =====

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdFs;

impl FileSystem for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile { file, pos: 0 }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        // Not O_APPEND: writes land at the write position, inside the preallocated zeros.
        let file = OpenOptions::new().write(true).open(path)?;
        let pos = file.metadata()?.len();
        Ok(Box::new(StdFile { file, pos }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    #[cfg(unix)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[cfg(not(unix))]
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        // Directories cannot be opened (or synced) as files here; renames are durable with
        // the file system's own metadata journaling.
        Ok(())
    }

    #[cfg(unix)]
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        use rustix::fs::{flock, FlockOperation};
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // flock locks belong to the open file description, so a second open of the same file
        // in this process conflicts too (unlike fcntl locks). The same sharing means that a
        // child forked by any thread of this process holds the lock of a log that was open at
        // the fork until the child execs (the descriptor is close-on-exec) or exits: a reopen
        // right after a close can find it still held for that moment. So a held lock is tried
        // again for a little while before it counts as another owner's.
        let mut waited = Duration::ZERO;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Box::new(StdLock { _file: file })),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK && waited < LOCK_PATIENCE => {
                    // A real wait on another process, not a test waiting for time to pass.
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(LOCK_RETRY);
                    waited += LOCK_RETRY;
                }
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }

    #[cfg(not(unix))]
    fn lock(&self, _path: &Path) -> io::Result<Box<dyn FileLock>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the log's lock file needs flock, which this platform lacks",
        ))
    }
}

/// How long a lock file held by someone else is tried again before the log counts as locked:
/// long enough for a forked child to exec on a loaded machine.
#[cfg(unix)]
const LOCK_PATIENCE: Duration = Duration::from_millis(500);

/// The pause between two tries of a held lock file.
#[cfg(unix)]
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// A std file open for writing, with its write position.
#[derive(Debug)]
struct StdFile {
    file: File,
    /// Where the next append goes.
    pos: u64,
}

impl WalFile for StdFile {
    #[cfg(unix)]
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(buf, self.pos)?;
        self.pos += u64::try_from(buf.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    #[cfg(not(unix))]
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        self.file.seek(SeekFrom::Start(self.pos))?;
        self.file.write_all(buf)?;
        self.pos += u64::try_from(buf.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.pos = len;
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        use rustix::fs::{fallocate, FallocateFlags};
        if self.file.metadata()?.len() >= len {
            return Ok(false);
        }
        // Mode 0: allocate and set the size (unwritten extents read as zeros).
        fallocate(&self.file, FallocateFlags::empty(), 0, len).map_err(io::Error::from)?;
        Ok(true)
    }

    #[cfg(not(target_os = "linux"))]
    fn preallocate(&mut self, _len: u64) -> io::Result<bool> {
        // Left to appends: setting the size without allocating would save no metadata.
        Ok(false)
    }
}

/// A held flock; closing the file releases it.
#[derive(Debug)]
struct StdLock {
    _file: File,
}

impl FileLock for StdLock {}
