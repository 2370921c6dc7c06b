//! Zoho's token budget, shared by every massup process that uses the same OAuth client.
//!
//! Zoho mints at most [`MAX_REFRESHES`] access tokens per refresh token in
//! [`REFRESH_WINDOW`]; going over it gets the refresh token refused for a while. The limit
//! belongs to the client, not to a database or a process: a `run` and a `resume` a minute
//! later, or three runs on three databases at once, draw on the same ten. So the times of
//! the tokens minted are kept in one small file per client, in the user's state folder:
//!
//! - `$MASSUP_STATE_DIR` if set, else the platform's state folder for massup
//!   (`$XDG_STATE_HOME/massup`, usually `~/.local/state/massup`, on Linux), else its
//!   cache folder (`~/Library/Caches/massup` on macOS, `%LOCALAPPDATA%\massup\cache` on
//!   Windows);
//! - named `token-budget-<first 16 hex digits of SHA-256 of the client id>.txt`, so the
//!   client id itself is not written anywhere;
//! - holding one unix time in milliseconds per line: times only, nothing secret. Deleting
//!   it forgets the count (Zoho does not).
//!
//! Every read-check-write happens under an exclusive OS lock on that file, so two
//! processes cannot both take the tenth place. A place is *reserved* before the request
//! goes out and *released* if the request minted nothing (no answer, a 5xx, a redirect),
//! so an outage does not look like ten refreshes.
//!
//! The file is opened as a plain file only (`plain_file::open_for_update`: no symlink
//! followed, no FIFO or device waited on, nothing larger than [`MAX_FILE_BYTES`] read).
//! One that is something else is reported once and replaced by a fresh file; a lock held
//! for longer than [`MAX_LOCK_WAIT`] is not waited for: the count goes on in memory.
use std::fs::{File, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::plain_file;

/// Zoho mints at most 10 access tokens per refresh token in 10 minutes.
pub const MAX_REFRESHES: usize = 10;
pub const REFRESH_WINDOW: Duration = Duration::from_secs(600);

/// Overrides the folder of the budget files (tests, or a shared folder for a team's
/// cron jobs on one machine).
pub const STATE_DIR_ENV: &str = "MASSUP_STATE_DIR";

/// The largest budget file massup reads. An honest one holds the header and at most a
/// few dozen times (those older than ten minutes are dropped on every write): under 1 KB.
pub const MAX_FILE_BYTES: u64 = 64 << 10;

/// The longest massup waits for another process's lock on the budget file. A holder keeps
/// it for a read and a write of a few hundred bytes; one that holds it for seconds is
/// stuck (stopped in a debugger, `kill -STOP`), and a run must not hang on it.
pub const MAX_LOCK_WAIT: Duration = Duration::from_secs(2);

const HEADER: &str = "# massup: when access tokens were minted for one OAuth client (unix ms, one a line); Zoho allows 10 in 10 minutes\n";

/// The folder the budget files live in: `$MASSUP_STATE_DIR`, else the platform state
/// folder, else the cache folder; `None` when the platform has no home folder at all.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let dirs = directories::ProjectDirs::from("", "", "massup")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.cache_dir())
            .to_path_buf(),
    )
}

/// The budget file of the client `client_id` in `dir`.
pub fn budget_file(dir: &Path, client_id: &str) -> PathBuf {
    let digest = Sha256::digest(client_id.as_bytes());
    let key = hex::encode(&digest[..8]);
    dir.join(format!("token-budget-{key}.txt"))
}

/// The budget is spent: `minted` tokens in the last ten minutes, and the next may be
/// minted after `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetFull {
    pub minted: usize,
    pub wait: Duration,
}

impl std::fmt::Display for BudgetFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Zoho allows {MAX_REFRESHES} access tokens per 10 minutes; {} were minted in the last 10 minutes; the next is possible in {}",
            self.minted,
            human(self.wait)
        )
    }
}

/// `7m12s`, `45s`, `1s` (rounded up: "possible in 0s" would be a lie).
pub fn human(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s:02}s"),
    }
}

/// One place taken in the budget, to give back with [`RefreshBudget::release`] if the
/// request minted no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    at_ms: u64,
}

/// The refresh times of one client: in its shared file, or (tests, or when the file
/// cannot be used) in this process only.
#[derive(Debug)]
pub struct RefreshBudget {
    file: Option<PathBuf>,
    /// Used when there is no file, and after the file failed once.
    memory: Vec<u64>,
}

impl RefreshBudget {
    /// A budget kept in this process only: for tests, and for a platform without a state
    /// folder. Processes do not see each other's refreshes.
    pub fn in_memory() -> RefreshBudget {
        RefreshBudget {
            file: None,
            memory: Vec::new(),
        }
    }

    /// A budget kept in `path`, shared with every process that uses the same file. The
    /// folder is created on first use.
    pub fn in_file(path: PathBuf) -> RefreshBudget {
        RefreshBudget {
            file: Some(path),
            memory: Vec::new(),
        }
    }

    /// The shared file, if the budget has one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Takes a place for a refresh at `now_ms` (unix ms), or says when one frees up.
    pub fn reserve(&mut self, now_ms: u64) -> Result<Reservation, BudgetFull> {
        self.with_times(|times| admit(times, now_ms).map(|()| Reservation { at_ms: now_ms }))
    }

    /// Gives back a place whose request minted no token.
    pub fn release(&mut self, reservation: Reservation) {
        self.with_times(|times| {
            if let Some(i) = times.iter().position(|&t| t == reservation.at_ms) {
                times.remove(i);
            }
        })
    }

    /// Runs `change` on the current times, under the file's lock when there is a file.
    /// A file that cannot be used is reported once and the budget continues in memory:
    /// a broken state folder must not stop a run, and Zoho still enforces its limit.
    fn with_times<R>(&mut self, mut change: impl FnMut(&mut Vec<u64>) -> R) -> R {
        if let Some(path) = &self.file {
            match update_file(path, &mut change) {
                Ok(result) => return result,
                Err(e) => {
                    tracing::warn!(
                        "cannot use the token budget file {}: {e}; counting refreshes in this process only",
                        path.display()
                    );
                    self.file = None;
                }
            }
        }
        change(&mut self.memory)
    }
}

/// Zoho's rule, pure: forgets times that left the window (or lie absurdly in the future),
/// then admits `now_ms` if fewer than [`MAX_REFRESHES`] remain.
pub fn admit(times: &mut Vec<u64>, now_ms: u64) -> Result<(), BudgetFull> {
    let window = REFRESH_WINDOW.as_millis() as u64;
    times.retain(|&t| t + window > now_ms && t <= now_ms + window);
    times.sort_unstable();
    if times.len() >= MAX_REFRESHES {
        let oldest = times[times.len() - MAX_REFRESHES];
        return Err(BudgetFull {
            minted: times.len(),
            wait: Duration::from_millis((oldest + window).saturating_sub(now_ms)),
        });
    }
    times.push(now_ms);
    Ok(())
}

fn update_file<R>(path: &Path, change: &mut impl FnMut(&mut Vec<u64>) -> R) -> std::io::Result<R> {
    if let Some(dir) = path.parent() {
        plain_file::create_private_dir(dir)?;
    }
    let mut file = open_plain(path)?;
    // Held for a read and a write of a few hundred bytes; released when `file` drops.
    lock_within(&file, MAX_LOCK_WAIT)?;
    let bytes = plain_file::read_capped(path, file.try_clone()?, MAX_FILE_BYTES)
        .map_err(std::io::Error::other)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut times = parse(&text);
    let before = times.clone();
    let result = change(&mut times);
    if times != before || !text.starts_with(HEADER) {
        let mut out = String::from(HEADER);
        for t in &times {
            out.push_str(&t.to_string());
            out.push('\n');
        }
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(out.as_bytes())?;
    }
    Ok(result)
}

/// Opens the budget file as a plain file; one that is not (a symlink, a FIFO, a device, a
/// file too large to be honest) is reported and replaced by a fresh, empty one: it holds
/// no count worth keeping, and waiting on it or reading it whole could hang the run.
fn open_plain(path: &Path) -> std::io::Result<File> {
    match plain_file::open_for_update(path, MAX_FILE_BYTES) {
        Ok(file) => Ok(file),
        Err(bad) if bad.is_bad_file() => {
            std::fs::remove_file(path)?;
            tracing::warn!(
                "{bad}: the token budget file was replaced by a fresh one (the tokens minted in the last 10 minutes are counted again from now; Zoho's own limit still holds)"
            );
            plain_file::open_for_update(path, MAX_FILE_BYTES).map_err(std::io::Error::other)
        }
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Takes the file's exclusive lock, waiting at most `wait` for another holder.
fn lock_within(file: &File, wait: Duration) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(e),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() >= deadline => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "another process has held its lock for over {}s",
                        wait.as_secs()
                    ),
                ));
            }
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Lenient: comments and lines that are not a number are skipped.
fn parse(text: &str) -> Vec<u64> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Now, in unix milliseconds: the clock every process on the machine shares.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn ten_in_ten_minutes_then_wait_for_the_oldest() {
        let mut times = Vec::new();
        let start = 1_000_000_000u64;
        for i in 0..10 {
            admit(&mut times, start + i * MIN).unwrap();
        }
        let full = admit(&mut times, start + 9 * MIN + 1000).unwrap_err();
        assert_eq!(full.minted, 10);
        assert_eq!(full.wait, Duration::from_millis(MIN - 1000));
        // The oldest leaves the window exactly ten minutes after it was minted.
        admit(&mut times, start + 10 * MIN).unwrap();
        assert_eq!(times.len(), 10);
    }

    #[test]
    fn times_from_the_far_future_are_forgotten() {
        let mut times = vec![u64::MAX / 2; 10];
        admit(&mut times, 5 * MIN).unwrap();
        assert_eq!(times, vec![5 * MIN]);
    }

    #[test]
    fn the_message_says_what_it_waits_for() {
        let full = BudgetFull {
            minted: 10,
            wait: Duration::from_millis(7 * MIN + 11_200),
        };
        assert_eq!(
            full.to_string(),
            "Zoho allows 10 access tokens per 10 minutes; 10 were minted in the last 10 minutes; the next is possible in 7m12s"
        );
        assert_eq!(human(Duration::from_millis(400)), "1s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn the_file_is_shared_and_holds_only_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = budget_file(dir.path(), "1000.SOMECLIENTID");
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with("token-budget-") && name.len() == "token-budget-.txt".len() + 16);
        assert!(!name.contains("SOMECLIENTID"));
        let now = now_ms();
        let mut first = RefreshBudget::in_file(path.clone());
        let mut second = RefreshBudget::in_file(path.clone());
        for i in 0..5 {
            first.reserve(now + i).unwrap();
            second.reserve(now + 100 + i).unwrap();
        }
        let full = first.reserve(now + 200).unwrap_err();
        assert_eq!(full.minted, 10);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# massup"), "{text}");
        assert_eq!(parse(&text).len(), 10);
    }

    #[test]
    fn a_released_place_is_free_again() {
        let mut budget = RefreshBudget::in_memory();
        let now = 10 * MIN;
        let mut last = None;
        for i in 0..10 {
            last = Some(budget.reserve(now + i).unwrap());
        }
        assert!(budget.reserve(now + 20).is_err());
        budget.release(last.unwrap());
        assert!(budget.reserve(now + 21).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_that_is_not_plain_is_replaced_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.txt");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let fifo = dir.path().join("fifo.txt");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let huge = dir.path().join("huge.txt");
        std::fs::write(&huge, "1\n".repeat(MAX_FILE_BYTES as usize)).unwrap();
        for path in [zero, fifo, huge] {
            let started = std::time::Instant::now();
            let mut budget = RefreshBudget::in_file(path.clone());
            budget.reserve(now_ms()).unwrap();
            assert!(started.elapsed() < Duration::from_secs(1), "{path:?}");
            assert_eq!(budget.path(), Some(path.as_path()), "kept using the file");
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert!(meta.is_file(), "{path:?} replaced by a plain file");
            assert_eq!(parse(&std::fs::read_to_string(&path).unwrap()).len(), 1);
        }
    }

    #[test]
    fn a_lock_held_too_long_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.txt");
        let holder = plain_file::open_for_update(&path, MAX_FILE_BYTES).unwrap();
        holder.lock().unwrap();
        let started = std::time::Instant::now();
        let mut budget = RefreshBudget::in_file(path.clone());
        budget.reserve(now_ms()).unwrap();
        let took = started.elapsed();
        assert!(took >= MAX_LOCK_WAIT && took < MAX_LOCK_WAIT + Duration::from_secs(1));
        assert!(budget.path().is_none(), "counting in memory");
    }

    #[test]
    fn an_unusable_file_falls_back_to_memory() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should be: opening it for writing fails.
        let path = dir.path().join("budget");
        std::fs::create_dir(&path).unwrap();
        let mut budget = RefreshBudget::in_file(path);
        budget.reserve(now_ms()).unwrap();
        assert!(budget.path().is_none());
    }
}
