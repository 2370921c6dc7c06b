//! Small files massup keeps or is configured by (the token budget in the state folder,
//! massup.toml, the secrets file, the run locks), opened as plain files only.
//!
//! Such a file can be replaced by something that is not a file: a symlink to `/dev/zero`
//! (a read that never ends and fills memory), a FIFO (a read that waits for ever), a
//! symlink to another user's file (a write that clobbers it). So every open here
//! - never blocks: `O_NONBLOCK`, which makes opening a FIFO return at once (it has no
//!   effect on a regular file);
//! - checks what was opened (`fstat` on the open file, so nothing can be swapped in
//!   between): anything but a regular file is refused, naming what it is;
//! - refuses a file larger than the caller's cap, and reads at most that much;
//! - for files massup writes ([`open_for_update`]), does not follow a symlink at all
//!   (`O_NOFOLLOW`): massup never makes one there, and following it would write wherever
//!   it points.
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

/// Why a file was not used.
#[derive(Debug, thiserror::Error)]
pub enum PlainFileError {
    /// Not a regular file: `what` says what it is ("a FIFO", "a symbolic link", ...).
    #[error("{path} is {what}, not a plain file")]
    NotPlain { path: String, what: &'static str },
    /// Larger than it could honestly be.
    #[error("{path} holds {len} bytes, more than the {cap} such a file can hold")]
    TooLarge { path: String, len: u64, cap: u64 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl PlainFileError {
    /// A file that is there but is not what massup keeps (not a plain file, or too
    /// large), as opposed to one that cannot be opened at all.
    pub fn is_bad_file(&self) -> bool {
        !matches!(self, PlainFileError::Io { .. })
    }
}

/// What kind of thing `meta` describes, for a message.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a folder";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn io_error(path: &Path, source: std::io::Error) -> PlainFileError {
    PlainFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Checks the opened `file` is a regular file of at most `cap` bytes.
fn check(path: &Path, file: &File, cap: u64) -> Result<(), PlainFileError> {
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(PlainFileError::NotPlain {
            path: path.display().to_string(),
            what: kind(&meta),
        });
    }
    if meta.len() > cap {
        return Err(PlainFileError::TooLarge {
            path: path.display().to_string(),
            len: meta.len(),
            cap,
        });
    }
    Ok(())
}

#[cfg(unix)]
fn never_block(options: &mut OpenOptions, follow: bool) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    options.custom_flags(flags);
}

#[cfg(not(unix))]
fn never_block(_: &mut OpenOptions, _: bool) {}

/// The open failed because the path is a symlink and `O_NOFOLLOW` was asked for.
fn refused_symlink(path: &Path, error: &std::io::Error) -> Option<PlainFileError> {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ELOOP) {
        return Some(PlainFileError::NotPlain {
            path: path.display().to_string(),
            what: "a symbolic link",
        });
    }
    let _ = (path, error);
    None
}

/// Reads all of `path` (at most `cap` bytes), following a symlink only to a regular file.
/// For files a person keeps (massup.toml, the secrets file), which may well be symlinks
/// into a dotfiles folder.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, PlainFileError> {
    let mut options = OpenOptions::new();
    options.read(true);
    never_block(&mut options, true);
    let file = options.open(path).map_err(|e| io_error(path, e))?;
    check(path, &file, cap)?;
    read_capped(path, file, cap)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, cap: u64) -> Result<String, PlainFileError> {
    let bytes = read(path, cap)?;
    String::from_utf8(bytes).map_err(|_| {
        io_error(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8"),
        )
    })
}

/// Reads the rest of `file`, failing if it turns out longer than `cap` (it may have grown
/// since it was checked).
pub fn read_capped(path: &Path, file: File, cap: u64) -> Result<Vec<u8>, PlainFileError> {
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(PlainFileError::TooLarge {
            path: path.display().to_string(),
            len: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// Opens (creating it if missing) a file massup keeps and rewrites, for reading and
/// writing: never through a symlink, never blocking, only a regular file of at most `cap`
/// bytes.
pub fn open_for_update(path: &Path, cap: u64) -> Result<File, PlainFileError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    never_block(&mut options, false);
    let file = options
        .open(path)
        .map_err(|e| refused_symlink(path, &e).unwrap_or_else(|| io_error(path, e)))?;
    check(path, &file, cap)?;
    Ok(file)
}

/// Creates `dir` and its missing parents, private to the user (mode 0700 on Unix) when
/// massup creates them: the state folder holds the stored access token. A folder that
/// exists is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn devices_fifos_symlinks_and_large_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'1'; 100]).unwrap();
        let fine = dir.path().join("fine");
        std::fs::write(&fine, "ok").unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&fine, &linked).unwrap();

        let started = std::time::Instant::now();
        let what = |e: PlainFileError| match e {
            PlainFileError::NotPlain { what, .. } => what,
            PlainFileError::TooLarge { .. } => "too large",
            PlainFileError::Io { .. } => "io",
        };
        assert_eq!(what(read(&zero, 64).unwrap_err()), "a character device");
        assert_eq!(what(read(&fifo, 64).unwrap_err()), "a FIFO");
        assert_eq!(what(read(&big, 64).unwrap_err()), "too large");
        assert_eq!(what(read(dir.path(), 64).unwrap_err()), "a folder");
        assert_eq!(read(&linked, 64).unwrap(), b"ok");
        assert_eq!(
            what(open_for_update(&zero, 64).unwrap_err()),
            "a symbolic link"
        );
        assert_eq!(
            what(open_for_update(&linked, 64).unwrap_err()),
            "a symbolic link"
        );
        assert_eq!(what(open_for_update(&fifo, 64).unwrap_err()), "a FIFO");
        assert!(open_for_update(&fine, 64).is_ok());
        assert!(open_for_update(&dir.path().join("new"), 64).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
