//! The SQLite store, and the only module that speaks SQL. One function opens it (WAL,
//! synchronous=NORMAL, one busy timeout, embedded migrations); the rest of massup calls the
//! named functions of its parts:
//!
//! - [`runs`]: a run's row, its typed [`RunState`], its stored settings.
//! - [`rows`]: every input row as planned, written in bulk and read back in input order.
//! - [`chunks`]: groups (request bodies) and chunks (one call's items, packed), with the
//!   codec for the packed columns; claim, attempt, requeue and in-flight reset.
//! - [`calls`]: the log of every HTTP attempt.
//! - [`sends`]: the invocations that sent a run, for time per invocation.
//! - [`lookups`]: the keys a `--match-by` plan resolved, with their record ids.
//! - [`befores`]: each record's values before a run wrote them (undo), and an undo run's
//!   expectations.
pub mod befores;
pub mod bulk;
pub mod calls;
pub mod chunks;
pub mod codec;
pub mod created;
pub mod lookups;
pub mod rows;
pub mod runs;
pub mod sends;

use std::path::Path;

use rusqlite::Connection;

pub use runs::{RunInfo, RunState};
use rusqlite_migration::{Migrations, M};

/// Embedded, numbered migrations. A released file is never edited: add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_chunk_resets.sql"),
    include_str!("../../migrations/0003_update_records.sql"),
    include_str!("../../migrations/0004_match_by.sql"),
    include_str!("../../migrations/0005_snapshots.sql"),
    include_str!("../../migrations/0006_sends.sql"),
    include_str!("../../migrations/0007_credits.sql"),
    include_str!("../../migrations/0008_checksums.sql"),
    include_str!("../../migrations/0009_bulk_write.sql"),
    include_str!("../../migrations/0010_created.sql"),
];

/// How long a statement waits for a lock held by another massup process before failing.
/// Long enough for a `status` during a run; short enough that a stuck lock is reported.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder for database {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} was written by a newer massup (schema version {found}, this massup knows {known}); upgrade massup or use another --db"
    )]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: String,
        source: rusqlite_migration::Error,
    },
    #[error("database {path} is damaged ({detail}); nothing was sent. `massup report` gets the outcomes recorded so far out of it; then restore it from a backup, or plan the file again into a new --db")]
    Corrupt { path: String, detail: String },
    #[error("cannot take the schema lock of database {path}: {message}")]
    SchemaLock { path: String, message: String },
    /// The dispatch's database writer stopped (its own error was logged when it failed):
    /// outcomes after that point were not stored, and `resume` sends those chunks again.
    #[error("the database writer for {path} stopped before the send ended; `massup resume` continues the run")]
    WriterFailed { path: String },
    /// What a chunk sends does not match the checksum written with it: the file is damaged
    /// there. Found when the chunk is claimed, before its call; the send stops.
    #[error("chunk {chunk_id} of run {run_id} does not match the checksum written with it when it was planned ({part} changed): the database file is damaged there. It was not sent, and the send stops before any other call; `massup report` still gets the outcomes out. Restore the database from a backup and `massup resume`, or plan the file again into a new --db")]
    ChunkDamaged {
        run_id: i64,
        chunk_id: i64,
        part: &'static str,
    },
    /// A stored value that cannot be read back: damage, found before it is used.
    #[error("the database holds a damaged value: {what} ({problem}); nothing was sent. `massup report` still gets the outcomes out")]
    Damaged { what: String, problem: String },
    /// The database file was deleted, or another file put at its path, while a send wrote
    /// to it: whatever this process writes from here on would be lost, and a new plan at that
    /// path would send every record again.
    #[error("the database {path} was deleted or replaced while this process was sending; it stopped writing to it. Nothing after that was recorded: if the old file is gone, records sent since the last commit may have been applied without being recorded")]
    Replaced { path: String },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// A file's identity (device and inode) on systems that have them: what tells the database
/// a send opened from another file later put at the same path.
pub fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let shown = path.display().to_string();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
            path: shown.clone(),
            source,
        })?;
    }
    let migrate_lock = || {
        crate::lease::acquire_blocking(
            &crate::lease::migrate_lock_path(path),
            "massup (schema)",
            true,
            &|| false,
            &mut |_| {},
        )
        .map_err(|e| StoreError::SchemaLock {
            path: shown.clone(),
            message: e.to_string(),
        })
    };
    // A new database is set up (page size, WAL, tables) by one process at a time: two
    // runs started at once on a new --db would otherwise race on switching to WAL (which
    // does not wait on the busy timeout) and on creating the tables. The others wait, then
    // find it set up. An existing, current database takes no lock.
    let mut setting_up = match std::fs::metadata(path) {
        Ok(meta) if meta.len() > 0 => None,
        _ => Some(migrate_lock()?),
    };
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: shown.clone(),
        source,
    })?;
    configure(&conn).map_err(|source| StoreError::Open {
        path: shown.clone(),
        source,
    })?;
    let found: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len();
    if found > known {
        return Err(StoreError::TooNew {
            path: shown,
            found,
            known,
        });
    }
    if found < known {
        // An older schema: one process at a time migrates it (`to_latest` reads the
        // version again once the lock is held).
        if setting_up.is_none() {
            setting_up = Some(migrate_lock()?);
        }
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: shown,
                source,
            })?;
    }
    drop(setting_up);
    Ok(conn)
}

/// A fresh in-memory database with the schema, for tests and fuzzing.
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    migrations()
        .to_latest(&mut conn)
        .map_err(|source| StoreError::Migrate {
            path: ":memory:".into(),
            source,
        })?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // 16 KiB pages: bulk appends of rows and packed chunks touch a quarter as many pages
    // as with the default 4 KiB (planning measured ~20% faster). Only takes effect when the
    // database is created.
    conn.pragma_update(None, "page_size", 16_384)?;
    // WAL lets `status` read while a run writes; NORMAL is durable across process crashes
    // (only an OS crash can lose the last transactions, which resume then redoes).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // 16 MB of page cache: larger measured no faster for planning and costs peak memory.
    conn.pragma_update(None, "cache_size", -16_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Opens the database for a dispatch's writer thread. Closing the last connection would
/// checkpoint the whole WAL inside the run's time; later commits (or the next command)
/// checkpoint it instead.
pub fn open_for_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = open(path)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}

/// The tables `resume`, `retry`, `undo` and a send read or write before and while they
/// call Zoho: the run, its groups and chunks (what is sent), the call log, the sends, the
/// snapshot (`befores`, read by undo and written before each call), an undo's
/// expectations and the lookups. The rows table, the bulk of a large run, is read only by
/// reports, after the calls.
const TABLES_A_SEND_READS: [&str; 8] = [
    "runs",
    "groups",
    "chunks",
    "calls",
    "sends",
    "befores",
    "expectations",
    "lookups",
];

/// Checks the tables a send reads and writes ([`TABLES_A_SEND_READS`]) with SQLite's
/// `quick_check` before anything is read or sent, so that a damaged database is found
/// before calls whose outcomes it could not record, or that it would send wrong (a
/// damaged snapshot was found only after 12 Get Records calls). `resume`, `retry` and
/// `undo` call it first thing, and every send (`run` too) before its first call; a
/// database is checked once per process, so a command that checked it first does not pay
/// again when it sends. Its cost is about one read of those tables (README, "Hostile
/// servers and damaged files": 35-125 ms for a planned 1M-row run, its pages cached).
pub fn check_before_sending(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    static CHECKED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked.contains(&key) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    for table in TABLES_A_SEND_READS {
        let result: rusqlite::Result<Vec<String>> = conn
            .prepare(&format!("PRAGMA quick_check({table})"))
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
        let problem = match result {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => continue,
            Ok(lines) => lines.join("; "),
            Err(e) => e.to_string(),
        };
        return Err(StoreError::Corrupt {
            path: path.display().to_string(),
            detail: problem,
        });
    }
    tracing::debug!(
        tables = TABLES_A_SEND_READS.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "database checked (quick_check)"
    );
    checked.push(key);
    Ok(())
}

/// The current time as stored everywhere: RFC 3339 in UTC, milliseconds precision.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_and_migrates_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/massup.db");
        let conn = open(&path).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        // Opening again is a no-op migration.
        open(&path).unwrap();
    }

    #[test]
    fn refuses_a_database_from_a_newer_massup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("massup.db");
        drop(open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("newer massup"));
    }
}
