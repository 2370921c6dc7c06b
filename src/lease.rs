//! One sender per run, enforced across processes. Two `massup run` of the same file on
//! the same database, or a `resume` started while another process is sending, would
//! otherwise both send the same chunks: records updated twice, calls and credits spent
//! twice, and two writers racing on the outcomes.
//!
//! A lease is an exclusive OS file lock (`flock` on Unix, `LockFileEx` on Windows) on a
//! small file next to the database. The kernel releases it when the holder's file is
//! closed, which includes the holder being killed with SIGKILL or crashing, so a dead
//! holder's lease is free at once: there is no timeout to wait out and no stale lock to
//! clear by hand. The holder writes who it is into the file (pid, host, start time,
//! command) so a second invocation can name it.
//!
//! Two kinds of lease:
//! - [`run_lock_path`]: held by whoever sends a run (`run`, `resume`, `retry`).
//! - [`plan_lock_path`]: one per database, held while checking for an existing run of a
//!   file and inserting a new one, so that planning the same file twice at once creates
//!   one run.
//!
//! **Needs a local disk.** On NFS and other network filesystems, locks may not be
//! enforced between machines and may outlive a crashed client; keep the database (and so
//! its lock files) on a local disk.
//!
//! A lock file is deleted when its lease is released (so they do not pile up beside the
//! database, one per run), while it is still locked. Deleting a lock file that another
//! process has open and is about to lock could let two processes lock two different files
//! of the same name; so whoever locks a file then checks that the path still names that
//! very file (device and inode), and if not (it was deleted, or replaced by a new one)
//! lets go and starts again. On a platform where an open file cannot be deleted
//! (Windows), the file is left in place, emptied.
use std::fs::{File, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// How often [`acquire_waiting`] tries again.
pub const POLL: Duration = Duration::from_millis(200);

/// `massup.db` -> `massup.db.run-7.lock`: the lease of one run's sender.
pub fn run_lock_path(db: &Path, run_id: i64) -> PathBuf {
    sibling(db, &format!("run-{run_id}.lock"), true)
}

/// `massup.db` -> `massup.db.plan.lock`: held while a run is looked up and inserted.
pub fn plan_lock_path(db: &Path) -> PathBuf {
    sibling(db, "plan.lock", false)
}

/// `massup.db` -> `massup.db.migrate.lock`: held while the schema is brought up to date,
/// so that two processes opening a new database at once do not both create its tables.
pub fn migrate_lock_path(db: &Path) -> PathBuf {
    sibling(db, "migrate.lock", false)
}

/// The lock file beside the database file itself, whatever path reached it: a symlink, a
/// symlinked folder or another relative path resolve to the real file (so two senders
/// through two paths take one lease). With `by_identity` the file's device and inode name
/// the lock too (so do two hard links): only for locks of a database that exists (a run's),
/// since the plan and schema locks are taken before it is created and must name the same
/// file before and after.
fn sibling(db: &Path, suffix: &str, by_identity: bool) -> PathBuf {
    let real = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let mut name = real
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "massup.db".into());
    #[cfg(unix)]
    if let Some(meta) = std::fs::metadata(&real).ok().filter(|_| by_identity) {
        use std::os::unix::fs::MetadataExt;
        name.push(format!(".{:x}-{:x}", meta.dev(), meta.ino()));
    }
    name.push(".");
    name.push(suffix);
    real.with_file_name(name)
}

/// Who holds a lease, as written into its lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// UTC, RFC 3339 to the second.
    pub started_at: String,
    /// What the holder is doing, e.g. `massup resume`.
    pub command: String,
}

impl Holder {
    /// This process, doing `command`.
    pub fn current(command: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: command.to_string(),
        }
    }
}

impl std::fmt::Display for Holder {
    /// `pid 4242 on host x (massup resume, since 2026-11-29T19:02:11Z)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} ({}, since {})",
            self.pid, self.host, self.command, self.started_at
        )
    }
}

/// A held lease. Dropping it releases the lock (as does the process ending in any way).
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
    holder: Holder,
}

impl Lease {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Emptied while still locked, so no reader names a holder that has gone; deleted
        // while still locked (see the module's notes on why that is safe); then unlocked
        // explicitly (closing would do it too).
        let _ = self.file.set_len(0);
        if cfg!(unix) && same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// Whether `path` still names the open `file` (the same device and inode): false when it
/// was deleted or replaced by another file since `file` was opened.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// How often [`try_acquire`] starts again when the file it locked was deleted or replaced
/// under it (each time another holder let go at that instant): more would mean a storm
/// of holders, which one try does not need to win.
const MAX_REOPENS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another process holds it. `holder` is `None` when it has not written its name yet
    /// (the instant after locking) or the file could not be read.
    #[error("{} is held by {}", path.display(), holder.as_ref().map_or_else(|| "another process".to_string(), |h| h.to_string()))]
    Held {
        holder: Option<Holder>,
        path: PathBuf,
    },
    #[error("lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// [`acquire_waiting`] was stopped before the lease came free.
    #[error("stopped while waiting for {}", path.display())]
    Stopped { path: PathBuf },
}

/// A run that another process is sending. The command that wanted it exits 4 (work left,
/// nothing wrong): a nightly job that overlaps a manual `resume` is not a failure.
#[derive(Debug, thiserror::Error)]
#[error("run {run_id} is being sent by {holder}; nothing was sent twice. Try again when it ends, or pass --wait to queue behind it")]
pub struct RunBusy {
    pub run_id: i64,
    pub holder: String,
}

/// Takes the lease at `path`, waiting for its holder when `wait` is set (polling, and
/// telling `on_wait` who it waits for), until `stopped` says to give up. Blocking: for
/// the commands' set-up, before or beside their runtime.
pub fn acquire_blocking(
    path: &Path,
    command: &str,
    wait: bool,
    stopped: &dyn Fn() -> bool,
    on_wait: &mut dyn FnMut(Option<&Holder>),
) -> Result<Lease, LeaseError> {
    let mut told = false;
    loop {
        match try_acquire(path, command) {
            Err(LeaseError::Held { holder, path }) => {
                if !wait {
                    return Err(LeaseError::Held { holder, path });
                }
                if !told {
                    on_wait(holder.as_ref());
                    told = true;
                }
            }
            other => return other,
        }
        if stopped() {
            return Err(LeaseError::Stopped {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Takes the lease at `path` now, or says who holds it. The file is created if needed
/// (its folder must exist: it is the database's).
pub fn try_acquire(path: &Path, command: &str) -> Result<Lease, LeaseError> {
    let io = |source| LeaseError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reopens = 0;
    let mut file = loop {
        // Never through a symlink or into a FIFO or device: the holder's line is written
        // into it (src/plain_file.rs).
        let file = crate::plain_file::open_for_update(path, 64 << 10)
            .map_err(|e| io(std::io::Error::other(e)))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LeaseError::Held {
                    holder: read_holder(path),
                    path: path.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // The holder before us deleted the file as it let go: this lock is on a file no
        // one else will open. Start again on the file the path names now.
        if same_file(&file, path) {
            break file;
        }
        reopens += 1;
        if reopens >= MAX_REOPENS {
            return Err(LeaseError::Held {
                holder: read_holder(path),
                path: path.to_path_buf(),
            });
        }
    };
    let holder = Holder::current(command);
    // Written whole and synced before anyone is told of it; a reader that comes between
    // the truncation and the write finds an empty or partial file and names no holder.
    let mut text = serde_json::to_string(&holder).expect("a holder serializes");
    text.push('\n');
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    Ok(Lease {
        file,
        path: path.to_path_buf(),
        holder,
    })
}

/// Takes the lease at `path`, waiting for the holder to finish: tries every [`POLL`],
/// calls `on_wait` with the holder each time a (new) holder is seen, and gives up with
/// [`LeaseError::Stopped`] when `stop` is cancelled.
pub async fn acquire_waiting(
    path: &Path,
    command: &str,
    stop: CancellationToken,
    mut on_wait: impl FnMut(&Holder),
) -> Result<Lease, LeaseError> {
    let mut reported: Option<Holder> = None;
    loop {
        match try_acquire(path, command) {
            Ok(lease) => return Ok(lease),
            Err(LeaseError::Held {
                holder: Some(holder),
                ..
            }) => {
                if reported.as_ref() != Some(&holder) {
                    on_wait(&holder);
                    reported = Some(holder);
                }
            }
            Err(LeaseError::Held { holder: None, .. }) => {}
            Err(other) => return Err(other),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.cancelled() => {
                return Err(LeaseError::Stopped { path: path.to_path_buf() })
            }
        }
    }
}

/// The holder named in the lock file at `path`, read leniently: an empty, partial or
/// foreign file names nobody.
pub fn read_holder(path: &Path) -> Option<Holder> {
    // A holder line is a few hundred bytes; a lock file that is a FIFO or a device names
    // nobody rather than hanging the reader.
    let text = crate::plain_file::read_to_string(path, 64 << 10).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Whether the sender named in the lock file at `path` is gone: `Some(true)` when the
/// file names no holder (a lease is emptied when released) or names a process of this
/// host that is not alive (killed: the OS freed its lock, the file still names it),
/// `Some(false)` when that process is alive, `None` when it is of another host (a
/// database on a shared disk: this host cannot tell).
pub fn holder_gone(path: &Path) -> Option<bool> {
    let Some(holder) = read_holder(path) else {
        return Some(true);
    };
    if holder.host != host_name() {
        return None;
    }
    Some(!process_alive(holder.pid))
}

/// Whether a process `pid` exists on this host (`kill(pid, 0)`; EPERM means it exists
/// under another user). Elsewhere than Unix: assumed alive.
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 sends nothing; it only checks the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buffer = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
        if rc == 0 {
            let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
            if end > 0 {
                return String::from_utf8_lossy(&buffer[..end]).into_owned();
            }
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_lease_deletes_its_file_and_never_two_hold_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db.run-3.lock");
        let lease = try_acquire(&path, "massup run").unwrap();
        assert!(path.exists());
        drop(lease);
        assert!(!path.exists(), "a free lease leaves no file behind");

        // Four threads take and release the lease as fast as they can: the deletions
        // must never let two of them hold it at once.
        let holders = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (path, holders, taken) = (path.clone(), holders.clone(), taken.clone());
                std::thread::spawn(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    for _ in 0..300 {
                        if let Ok(lease) = try_acquire(&path, "massup run") {
                            assert_eq!(holders.fetch_add(1, SeqCst), 0, "two holders");
                            taken.fetch_add(1, SeqCst);
                            std::thread::yield_now();
                            holders.fetch_sub(1, SeqCst);
                            drop(lease);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(taken.load(std::sync::atomic::Ordering::SeqCst) > 0);
        assert!(!path.exists());
    }

    #[test]
    fn lock_files_sit_next_to_the_database() {
        assert_eq!(
            run_lock_path(Path::new("/data/massup.db"), 7),
            PathBuf::from("/data/massup.db.run-7.lock")
        );
        assert_eq!(
            plan_lock_path(Path::new("massup.db")),
            PathBuf::from("massup.db.plan.lock")
        );
    }

    #[test]
    fn a_second_try_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = run_lock_path(&dir.path().join("m.db"), 7);
        let lease = try_acquire(&path, "massup resume").unwrap();
        assert_eq!(lease.holder().pid, std::process::id());
        // flock locks belong to an open file: a second open conflicts even in-process.
        let err = try_acquire(&path, "massup run").unwrap_err();
        let LeaseError::Held {
            holder: Some(holder),
            ..
        } = &err
        else {
            panic!("expected Held with a holder, got {err:?}");
        };
        assert_eq!(holder, lease.holder());
        let text = err.to_string();
        assert!(
            text.contains(&format!("is held by pid {} on host ", std::process::id()))
                && text.contains("(massup resume, since "),
            "{text}"
        );
        drop(lease);
        assert_eq!(read_holder(&path), None, "a released lease names nobody");
        let again = try_acquire(&path, "massup run").unwrap();
        assert_eq!(again.holder().command, "massup run");
    }

    #[test]
    fn holder_files_are_read_leniently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        for text in ["", "{\"pid\":", "not json", "{}"] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_holder(&path), None, "{text:?}");
        }
        assert_eq!(read_holder(&dir.path().join("missing")), None);
    }

    #[tokio::test]
    async fn waiting_gets_the_lease_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = plan_lock_path(&dir.path().join("m.db"));
        let lease = try_acquire(&path, "massup plan").unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(450)).await;
            drop(lease);
        });
        let mut seen = Vec::new();
        let got = acquire_waiting(&path, "massup run", CancellationToken::new(), |h| {
            seen.push(h.command.clone())
        })
        .await
        .unwrap();
        release.await.unwrap();
        assert_eq!(
            seen,
            vec!["massup plan".to_string()],
            "told once, not per poll"
        );
        assert_eq!(got.holder().command, "massup run");
    }

    #[tokio::test]
    async fn waiting_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db.run-1.lock");
        let _held = try_acquire(&path, "massup run").unwrap();
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            stopper.cancel();
        });
        let err = acquire_waiting(&path, "massup resume", stop, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, LeaseError::Stopped { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_folder_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = try_acquire(&dir.path().join("no/such/x.lock"), "massup run").unwrap_err();
        assert!(matches!(err, LeaseError::Io { .. }), "{err:?}");
    }
}
