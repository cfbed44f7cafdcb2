//! Test file systems: [`MemFs`], in memory, which can crash; [`FailingFs`], which fails the
//! calls a test picks.
//!
//! # Ground rules
//!
//! - [`MemFs`] keeps two views of every directory: the *live* names (what reads see) and the
//!   *durable* names (what survives a crash: the live names as of the last `sync_dir` of that
//!   directory). Every file keeps its live bytes and its durable bytes (as of its last sync).
//!   [`MemFs::crashed`] returns a new file system holding only the durable view, which is the
//!   strictest crash POSIX allows: unsynced data and unsynced renames, creations and removals
//!   are all lost. Directories themselves are durable at once.
//! - A [`MemFs`] ignores `preallocate`, like a file system without `fallocate`, unless made by
//!   [`MemFs::preallocating`]: then it grows the file with zeros, as the real call does.
//! - One mutex guards the whole state; no call blocks while holding it.
//! - [`FailingFs`] wraps any file system and counts every call by [`Op`]. A test can make the
//!   n-th next call of an op fail ([`FailingFs::fail_nth`]), make every write fail with
//!   `StorageFull` after writing half its bytes, and every preallocation with it too
//!   ([`FailingFs::set_disk_full`]), "kill the process" after n more mutating calls
//!   ([`FailingFs::die_after`]: every later create, write, sync, truncate, preallocate, rename
//!   and remove fails and writes nothing), or hold every file sync until
//!   a gate drops ([`FailingFs::hold_syncs`]).

// The fuzz entry points and the `test-util` feature use only part of the fakes.
#![cfg_attr(not(test), allow(dead_code, unreachable_pub))]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};

use super::fs::{shared_fs, FileLock, FileSystem, WalFile};
use super::sync::{self, Arc, AtomicU64, Mutex, Ordering};

// ===== impl MemFs =====

/// An in-memory file system that can crash, for a lessor's log in tests
/// ([`LessorBuilder::file_system`](crate::LessorBuilder::file_system)). Clones share the same
/// files; [`crashed`](Self::crashed) returns what would survive a power loss.
///
/// # Examples
///
/// ```
/// use lessor::test_util::MemFs;
/// use lessor::{LeaseId, Lessor};
/// use std::time::Duration;
///
/// let fs = MemFs::new();
/// let open = |fs: &MemFs| Lessor::builder().data_dir("/data").file_system(fs.clone()).build();
/// let lessor = open(&fs)?;
/// lessor.grant(LeaseId::new(1), Duration::from_secs(60))?;
/// let after = fs.crashed(); // the power goes out here
/// drop(lessor);
/// assert!(open(&after)?.lookup(LeaseId::new(1)).is_some());
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    state: Arc<Mutex<MemState>>,
}

/// Calls counted by a [`MemFs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemCounts {
    /// File appends.
    pub(crate) writes: u64,
    /// File syncs.
    pub(crate) syncs: u64,
    /// Directory syncs.
    pub(crate) dir_syncs: u64,
}

#[derive(Debug, Default)]
struct MemState {
    /// `preallocate` grows files (see [`MemFs::preallocating`]).
    preallocates: bool,
    next_inode: u64,
    inodes: BTreeMap<u64, Inode>,
    live: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    counts: MemCounts,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Durable,
}

/// What of a file survives a crash.
#[derive(Debug)]
enum Durable {
    /// The first n live bytes (nothing before them changed since the last sync).
    Prefix(usize),
    /// These bytes (the live ones were cut below the synced length, or written over inside
    /// it, since).
    Copy(Vec<u8>),
}

impl Default for Durable {
    fn default() -> Self {
        Durable::Prefix(0)
    }
}

impl Inode {
    fn durable_bytes(&self) -> Vec<u8> {
        match &self.durable {
            Durable::Prefix(n) => self.data[..*n].to_vec(),
            Durable::Copy(v) => v.clone(),
        }
    }

    /// Writes `buf` at `pos`, over the bytes there and past the end.
    fn write_at(&mut self, pos: usize, buf: &[u8]) {
        if let Durable::Prefix(n) = self.durable {
            if pos < n {
                self.durable = Durable::Copy(self.data[..n].to_vec());
            }
        }
        let end = pos + buf.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[pos..end].copy_from_slice(buf);
    }

    fn truncate(&mut self, len: usize) {
        if let Durable::Prefix(n) = self.durable {
            if len < n {
                self.durable = Durable::Copy(self.data[..n].to_vec());
            }
        }
        self.data.resize(len, 0);
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file (memfs)", path.display()),
    )
}

impl MemState {
    fn inode(&mut self, path: &Path) -> io::Result<u64> {
        self.live.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn new_inode(&mut self) -> u64 {
        let id = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(id, Inode::default());
        id
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.dirs.contains(p) => Ok(()),
            _ => Err(not_found(path)),
        }
    }
}

impl MemFs {
    /// An empty file system.
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder()
    ///     .data_dir("/data")
    ///     .file_system(lessor::test_util::MemFs::new())
    ///     .build()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A file system whose files take `preallocate` as the real one does: the file grows to
    /// the size asked for, in zeros (durable after a sync), and appends write over them.
    pub(crate) fn preallocating() -> Self {
        let fs = Self::default();
        fs.with(|s| s.preallocates = true);
        fs
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemState) -> R) -> R {
        f(&mut sync::lock(&self.state))
    }

    /// A new file system holding only what had been made durable here: every file's synced
    /// bytes, under the names that a directory sync had recorded. This one is left as it is
    /// (a log still writing to it changes nothing in the copy).
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::test_util::MemFs;
    /// use lessor::{FsyncPolicy, LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let fs = MemFs::new();
    /// let open = |fs: &MemFs| {
    ///     let b = Lessor::builder().data_dir("/data").fsync(FsyncPolicy::Never);
    ///     b.file_system(fs.clone()).build()
    /// };
    /// let lessor = open(&fs)?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(60))?; // written, never synced
    /// let after = fs.crashed();
    /// drop(lessor); // a clean stop syncs, but only `fs` sees it
    /// assert!(open(&after)?.lookup(LeaseId::new(1)).is_none());
    /// assert!(open(&fs)?.lookup(LeaseId::new(1)).is_some());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn crashed(&self) -> MemFs {
        self.with(|s| {
            let mut out = MemState {
                preallocates: s.preallocates,
                dirs: s.dirs.clone(),
                ..MemState::default()
            };
            let mut copied = BTreeMap::new();
            for (path, ino) in &s.durable {
                let id = *copied.entry(*ino).or_insert_with(|| {
                    let id = out.new_inode();
                    let bytes = s.inodes[ino].durable_bytes();
                    let node = out.inodes.get_mut(&id).expect("just made");
                    node.durable = Durable::Prefix(bytes.len());
                    node.data = bytes;
                    id
                });
                out.live.insert(path.clone(), id);
                out.durable.insert(path.clone(), id);
            }
            MemFs {
                state: Arc::new(Mutex::new(out)),
            }
        })
    }

    /// The live bytes of `path`, if it exists.
    pub(crate) fn file(&self, path: &Path) -> Option<Vec<u8>> {
        self.with(|s| {
            let ino = s.live.get(path)?;
            Some(s.inodes[ino].data.clone())
        })
    }

    /// Replaces the bytes of `path` (creating it), durably: a test's way to damage a file.
    pub(crate) fn set_file(&self, path: &Path, bytes: &[u8]) {
        self.with(|s| {
            let ino = match s.live.get(path) {
                Some(ino) => *ino,
                None => s.new_inode(),
            };
            s.live.insert(path.to_path_buf(), ino);
            s.durable.insert(path.to_path_buf(), ino);
            let node = s.inodes.get_mut(&ino).expect("live inode");
            node.data = bytes.to_vec();
            node.durable = Durable::Prefix(bytes.len());
        });
    }

    /// Removes `path` at once, durably.
    pub(crate) fn delete_file(&self, path: &Path) {
        self.with(|s| {
            s.live.remove(path);
            s.durable.remove(path);
        });
    }

    /// The calls counted so far.
    pub(crate) fn counts(&self) -> MemCounts {
        self.with(|s| s.counts)
    }
}

impl From<MemFs> for Arc<dyn FileSystem> {
    fn from(fs: MemFs) -> Self {
        shared_fs(fs)
    }
}

impl FileSystem for MemFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.with(|s| {
            for d in dir.ancestors() {
                s.dirs.insert(d.to_path_buf());
            }
        });
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.with(|s| {
            if !s.dirs.contains(dir) {
                return Err(not_found(dir));
            }
            Ok(s.live
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .collect())
        })
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let ino = self.with(|s| {
            s.check_parent(path)?;
            let ino = match s.live.get(path) {
                Some(ino) => *ino,
                None => s.new_inode(),
            };
            s.inodes.get_mut(&ino).expect("live inode").truncate(0);
            s.live.insert(path.to_path_buf(), ino);
            Ok::<_, io::Error>(ino)
        })?;
        Ok(Box::new(MemFile {
            fs: self.clone(),
            ino,
            pos: 0,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let (ino, pos) = self.with(|s| {
            let ino = s.inode(path)?;
            Ok::<_, io::Error>((ino, s.inodes.get(&ino).map_or(0, |n| n.data.len())))
        })?;
        Ok(Box::new(MemFile {
            fs: self.clone(),
            ino,
            pos,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.file(path).ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.with(|s| {
            s.check_parent(to)?;
            let ino = s.live.remove(from).ok_or_else(|| not_found(from))?;
            s.live.insert(to.to_path_buf(), ino);
            Ok(())
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.with(|s| s.live.remove(path).map(drop).ok_or_else(|| not_found(path)))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.with(|s| {
            if !s.dirs.contains(dir) {
                return Err(not_found(dir));
            }
            s.counts.dir_syncs += 1;
            s.durable.retain(|p, _| p.parent() != Some(dir));
            let live: Vec<_> = s
                .live
                .iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, i)| (p.clone(), *i))
                .collect();
            s.durable.extend(live);
            Ok(())
        })
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.with(|s| {
            s.check_parent(path)?;
            if !s.live.contains_key(path) {
                let ino = s.new_inode();
                s.live.insert(path.to_path_buf(), ino);
            }
            if !s.locks.insert(path.to_path_buf()) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "lock held (memfs)",
                ));
            }
            Ok(())
        })?;
        Ok(Box::new(MemLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}

/// An open [`MemFs`] file: like a file descriptor, it follows its inode through renames.
#[derive(Debug)]
struct MemFile {
    fs: MemFs,
    ino: u64,
    /// Where the next append goes.
    pos: usize,
}

impl WalFile for MemFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.fs.with(|s| {
            s.counts.writes += 1;
            if let Some(node) = s.inodes.get_mut(&self.ino) {
                node.write_at(self.pos, buf);
            }
        });
        self.pos += buf.len();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.fs.with(|s| {
            s.counts.syncs += 1;
            if let Some(node) = s.inodes.get_mut(&self.ino) {
                node.durable = Durable::Prefix(node.data.len());
            }
        });
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.fs.with(|s| {
            if let Some(node) = s.inodes.get_mut(&self.ino) {
                node.truncate(len);
            }
        });
        self.pos = len;
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.fs.with(|s| {
            let node = s.inodes.get_mut(&self.ino);
            match node {
                Some(node) if s.preallocates && node.data.len() < len => {
                    node.data.resize(len, 0);
                    true
                }
                _ => false,
            }
        }))
    }
}

/// A held [`MemFs`] lock.
#[derive(Debug)]
struct MemLock {
    fs: MemFs,
    path: PathBuf,
}

impl FileLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.fs.with(|s| s.locks.remove(&self.path));
    }
}

// ===== impl FailingFs =====

/// A kind of file-system call, as counted and failed by [`FailingFs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Op {
    /// `create_dir_all`.
    CreateDir,
    /// `list`.
    List,
    /// `create`.
    Create,
    /// `open_append`.
    OpenAppend,
    /// `read`.
    Read,
    /// `rename`.
    Rename,
    /// `remove`.
    Remove,
    /// `sync_dir`.
    SyncDir,
    /// `lock`.
    Lock,
    /// A file's `append`.
    Write,
    /// A file's `sync`.
    Sync,
    /// A file's `truncate`.
    Truncate,
    /// A file's `preallocate`.
    Preallocate,
}

impl Op {
    /// Calls that change the disk (the ones a dead process no longer makes).
    fn mutates(self) -> bool {
        matches!(
            self,
            Op::Create
                | Op::Rename
                | Op::Remove
                | Op::SyncDir
                | Op::Write
                | Op::Sync
                | Op::Truncate
                | Op::Preallocate
        )
    }
}

/// A file system that fails the calls a test asks it to. Clones share the same controls.
#[derive(Debug, Clone)]
pub(crate) struct FailingFs {
    inner: Arc<dyn FileSystem>,
    ctl: Arc<Control>,
}

#[derive(Debug, Default)]
struct Control {
    state: Mutex<FailState>,
    syncs_waiting: AtomicU64,
}

#[derive(Debug, Default)]
struct FailState {
    calls: BTreeMap<Op, u64>,
    /// (op, the call number that fails).
    planned: Vec<(Op, u64)>,
    disk_full: bool,
    /// Mutating calls left before the "process" dies.
    lives: Option<u64>,
    gate: Option<Receiver<()>>,
}

/// How a call failed, which decides whether a write still puts half its bytes down.
enum Failure {
    /// An injected error: a write puts down half its bytes first.
    Injected(io::Error),
    /// The process is dead: nothing is written.
    Dead(io::Error),
}

/// Holds every file sync of a [`FailingFs`] until dropped.
#[derive(Debug)]
pub(crate) struct SyncGate {
    _open: Sender<()>,
}

impl FailingFs {
    /// Wraps `inner`; nothing fails until asked.
    pub(crate) fn new(inner: impl FileSystem) -> Self {
        FailingFs {
            inner: shared_fs(inner),
            ctl: Arc::new(Control::default()),
        }
    }

    /// The `n`-th next call of `op` (1 = the very next) fails with an I/O error. A failing
    /// write puts down half its bytes first (a short write).
    pub(crate) fn fail_nth(&self, op: Op, n: u64) {
        let mut s = sync::lock(&self.ctl.state);
        let at = s.calls.get(&op).copied().unwrap_or(0) + n.max(1);
        s.planned.push((op, at));
    }

    /// While on, every write puts down half its bytes and fails with `StorageFull`, and so
    /// does every preallocation (putting down nothing).
    pub(crate) fn set_disk_full(&self, on: bool) {
        sync::lock(&self.ctl.state).disk_full = on;
    }

    /// After `n` more mutating calls, every mutating call fails without touching the disk,
    /// as if the process had died there.
    pub(crate) fn die_after(&self, n: u64) {
        sync::lock(&self.ctl.state).lives = Some(n);
    }

    /// How many calls of `op` were made (failed ones included).
    pub(crate) fn calls(&self, op: Op) -> u64 {
        sync::lock(&self.ctl.state)
            .calls
            .get(&op)
            .copied()
            .unwrap_or(0)
    }

    /// Holds every file sync until the returned gate drops.
    pub(crate) fn hold_syncs(&self) -> SyncGate {
        let (open, gate) = crossbeam_channel::bounded(0);
        sync::lock(&self.ctl.state).gate = Some(gate);
        SyncGate { _open: open }
    }

    /// File syncs now waiting at the gate.
    pub(crate) fn syncs_waiting(&self) -> u64 {
        self.ctl.syncs_waiting.load(Ordering::SeqCst)
    }

    fn check(&self, op: Op) -> Result<(), Failure> {
        check(&self.ctl, op)
    }

    fn plain(&self, op: Op) -> io::Result<()> {
        self.check(op).map_err(|f| match f {
            Failure::Injected(e) | Failure::Dead(e) => e,
        })
    }
}

fn check(ctl: &Control, op: Op) -> Result<(), Failure> {
    let mut s = sync::lock(&ctl.state);
    let n = {
        let c = s.calls.entry(op).or_insert(0);
        *c += 1;
        *c
    };
    if op.mutates() {
        match s.lives {
            Some(0) => {
                return Err(Failure::Dead(io::Error::other(format!(
                    "injected: the process died before this {op:?}"
                ))))
            }
            Some(ref mut left) => *left -= 1,
            None => {}
        }
    }
    if let Some(i) = s.planned.iter().position(|p| *p == (op, n)) {
        s.planned.swap_remove(i);
        return Err(Failure::Injected(io::Error::other(format!(
            "injected: {op:?} #{n} failed"
        ))));
    }
    if matches!(op, Op::Write | Op::Preallocate) && s.disk_full {
        return Err(Failure::Injected(io::Error::new(
            io::ErrorKind::StorageFull,
            "injected: no space left on device",
        )));
    }
    Ok(())
}

impl FileSystem for FailingFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.plain(Op::CreateDir)?;
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.plain(Op::List)?;
        self.inner.list(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        self.plain(Op::Create)?;
        let inner = self.inner.create(path)?;
        Ok(Box::new(FailingFile {
            inner,
            ctl: Arc::clone(&self.ctl),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        self.plain(Op::OpenAppend)?;
        let inner = self.inner.open_append(path)?;
        Ok(Box::new(FailingFile {
            inner,
            ctl: Arc::clone(&self.ctl),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.plain(Op::Read)?;
        self.inner.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.plain(Op::Rename)?;
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.plain(Op::Remove)?;
        self.inner.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.plain(Op::SyncDir)?;
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.plain(Op::Lock)?;
        self.inner.lock(path)
    }
}

/// A file of a [`FailingFs`].
#[derive(Debug)]
struct FailingFile {
    inner: Box<dyn WalFile>,
    ctl: Arc<Control>,
}

impl WalFile for FailingFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        match check(&self.ctl, Op::Write) {
            Ok(()) => self.inner.append(buf),
            Err(Failure::Injected(e)) => {
                let _ = self.inner.append(&buf[..buf.len() / 2]);
                Err(e)
            }
            Err(Failure::Dead(e)) => Err(e),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        let gate = sync::lock(&self.ctl.state).gate.clone();
        if let Some(gate) = gate {
            self.ctl.syncs_waiting.fetch_add(1, Ordering::SeqCst);
            // Returns when the gate's sender drops.
            let _ = gate.recv();
            self.ctl.syncs_waiting.fetch_sub(1, Ordering::SeqCst);
        }
        match check(&self.ctl, Op::Sync) {
            Ok(()) => self.inner.sync(),
            Err(Failure::Injected(e) | Failure::Dead(e)) => Err(e),
        }
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        match check(&self.ctl, Op::Truncate) {
            Ok(()) => self.inner.truncate(len),
            Err(Failure::Injected(e) | Failure::Dead(e)) => Err(e),
        }
    }

    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        match check(&self.ctl, Op::Preallocate) {
            Ok(()) => self.inner.preallocate(len),
            Err(Failure::Injected(e) | Failure::Dead(e)) => Err(e),
        }
    }
}
