//! Exit codes, decided in one place. They are part of massup's interface (nightly jobs
//! alert on them) and documented in the README.
use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every record succeeded (or the command had nothing to report).
    Success,
    /// 1: a fatal error: authentication, permissions, the database, a bug.
    Fatal,
    /// 2: a usage or input error: bad flags, a bad CSV, a column that cannot be updated.
    Usage,
    /// 3: the run finished but some records failed or were invalid.
    Failures,
    /// 4: interrupted or stopped with work left; `massup resume` continues it.
    Resumable,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Fatal => 1,
            Exit::Usage => 2,
            Exit::Failures => 3,
            Exit::Resumable => 4,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// An error that is the user's to fix (exit code 2); its message says how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}

/// The exit code for an error that ended a command.
pub fn exit_for_error(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::input::InputError>() {
            return Exit::Usage;
        }
        if let Some(plan) = cause.downcast_ref::<crate::plan::PlanError>() {
            return match plan {
                crate::plan::PlanError::Store(_) => Exit::Fatal,
                _ => Exit::Usage,
            };
        }
        if let Some(crate::store::StoreError::TooNew { .. }) = cause.downcast_ref() {
            return Exit::Usage;
        }
    }
    Exit::Fatal
}

/// Advice for errors whose fix is outside massup: a full disk, a read-only database.
pub fn hint_for_error(error: &anyhow::Error) -> Option<&'static str> {
    for cause in error.chain() {
        let code = cause
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            .or_else(|| match cause.downcast_ref::<crate::store::StoreError>() {
                Some(crate::store::StoreError::Sql(e)) => e.sqlite_error_code(),
                _ => None,
            });
        match code {
            Some(rusqlite::ErrorCode::DiskFull) => {
                return Some("the disk holding the database is full: free space (or move the database with --db), then `massup resume`; every outcome committed so far is kept")
            }
            Some(rusqlite::ErrorCode::SystemIoFailure) => {
                return Some("the database's disk failed a read or write (often: it is full): check it, free space, then `massup resume`; every outcome committed so far is kept")
            }
            Some(rusqlite::ErrorCode::ReadOnly) | Some(rusqlite::ErrorCode::CannotOpen) => {
                return Some("the database cannot be written: check the file's and folder's permissions (or pass --db), then `massup resume`")
            }
            _ => {}
        }
    }
    None
}
