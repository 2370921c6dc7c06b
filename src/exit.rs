//! Exit codes, decided in one place: for an error (`exit_for_error`) and for a send that
//! ended (`exit_for_send`). They are part of massup's interface (nightly jobs alert on
//! them) and documented in the README.
use std::process::ExitCode;

use crate::dispatch::StopReason;
use crate::summary::{RowOutcome, RunCounts};

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

/// How a send ended, for the exit code and the line that says what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendEnd {
    /// A fatal answer: a person must fix something (credentials, permission), then resume.
    Fatal { code: String, message: String },
    /// Stopped with work left (a signal, a budget, no token): resume continues.
    Stopped(StopReason),
    /// Every call was made but some kept failing within this invocation's attempts.
    CallsKeptFailing,
    /// Every chunk is done.
    Finished,
    /// The person at the terminal said no when asked; nothing was sent.
    Declined,
}

impl SendEnd {
    /// The name of how a send ended, in JSON and the store.
    pub fn state_name(&self) -> &'static str {
        match self {
            SendEnd::Finished => "finished",
            SendEnd::Fatal { .. } => "fatal",
            SendEnd::Stopped(_) => "stopped",
            SendEnd::CallsKeptFailing => "calls_kept_failing",
            SendEnd::Declined => "declined",
        }
    }

    /// From the dispatch's stop reason and whether chunks are left unfinished.
    pub fn of(stop: Option<&StopReason>, unfinished: bool) -> SendEnd {
        match stop {
            Some(StopReason::Fatal { code, message }) => SendEnd::Fatal {
                code: code.clone(),
                message: message.clone(),
            },
            Some(reason) => SendEnd::Stopped(reason.clone()),
            None if unfinished => SendEnd::CallsKeptFailing,
            None => SendEnd::Finished,
        }
    }
}

/// The exit code of a send: 1 for a fatal stop, 4 for work left, else 3 if any row did not
/// succeed, 0 if every row did.
pub fn exit_for_send(end: &SendEnd, counts: &RunCounts) -> Exit {
    match end {
        SendEnd::Fatal { .. } => Exit::Fatal,
        SendEnd::Stopped(_) | SendEnd::CallsKeptFailing | SendEnd::Declined => Exit::Resumable,
        SendEnd::Finished => {
            let bad = counts.rows(RowOutcome::Failed)
                + counts.rows(RowOutcome::Retryable)
                + counts.rows(RowOutcome::Invalid)
                + counts.rows(RowOutcome::Pending);
            if bad > 0 {
                Exit::Failures
            } else {
                Exit::Success
            }
        }
    }
}

pub use crate::error::UsageError;

/// The exit code for an error that ended a command.
pub fn exit_for_error(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::input::InputError>() {
            return Exit::Usage;
        }
        if let Some(plan) = cause.downcast_ref::<crate::plan::PlanError>() {
            return match plan {
                crate::plan::PlanError::Store(_) => Exit::Fatal,
                // No token could be had (the accounts server down) or a budget was
                // reached: nothing was planned, and planning again later goes on.
                crate::plan::PlanError::Lookup(
                    crate::plan::matching::LookupError::TokenUnavailable { .. }
                    | crate::plan::matching::LookupError::Budget { .. },
                ) => Exit::Resumable,
                // Zoho could not answer every lookup (credits, a refused token, the
                // network): nothing is wrong with the input.
                crate::plan::PlanError::Lookup(_) => Exit::Fatal,
                _ => Exit::Usage,
            };
        }
        if cause.is::<crate::lease::RunBusy>() {
            return Exit::Resumable;
        }
        // The accounts server could not be reached: later may work, nothing was sent.
        if let Some(crate::api::auth::AuthError::Unavailable(_)) = cause.downcast_ref() {
            return Exit::Resumable;
        }
        if cause.is::<crate::plan::SettingsError>() {
            return Exit::Usage;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[(RowOutcome, u64)]) -> RunCounts {
        let mut counts = RunCounts::default();
        for (outcome, n) in rows {
            counts.rows.insert(outcome.as_str(), *n);
        }
        counts
    }

    #[test]
    fn a_send_exits_by_how_it_ended_then_by_its_rows() {
        let clean = counts(&[(RowOutcome::Succeeded, 10)]);
        let fatal = StopReason::Fatal {
            code: "NO_PERMISSION".into(),
            message: "no".into(),
        };
        let end = |stop: Option<&StopReason>, unfinished| SendEnd::of(stop, unfinished);
        assert_eq!(exit_for_send(&end(Some(&fatal), true), &clean), Exit::Fatal);
        for stop in [
            StopReason::Interrupted,
            StopReason::MaxCalls { calls: 3 },
            StopReason::Credits { remaining: 2 },
            StopReason::TokenUnavailable {
                message: "down".into(),
            },
        ] {
            assert_eq!(
                exit_for_send(&end(Some(&stop), false), &clean),
                Exit::Resumable
            );
        }
        assert_eq!(exit_for_send(&end(None, true), &clean), Exit::Resumable);
        assert_eq!(exit_for_send(&end(None, false), &clean), Exit::Success);
        for bad in [
            RowOutcome::Failed,
            RowOutcome::Retryable,
            RowOutcome::Invalid,
            RowOutcome::Pending,
        ] {
            let mixed = counts(&[(RowOutcome::Succeeded, 10), (bad, 1)]);
            assert_eq!(
                exit_for_send(&end(None, false), &mixed),
                Exit::Failures,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn usage_errors_exit_2_and_store_errors_exit_1() {
        let usage = anyhow::Error::new(UsageError::new("bad flag"));
        assert_eq!(exit_for_error(&usage), Exit::Usage);
        let settings = anyhow::Error::new(crate::plan::SettingsError("--chunk-size 0".into()));
        assert_eq!(exit_for_error(&settings), Exit::Usage);
        let disk = anyhow::Error::new(crate::store::StoreError::Sql(rusqlite::Error::InvalidQuery));
        assert_eq!(exit_for_error(&disk), Exit::Fatal);
        assert_eq!(
            exit_for_error(&anyhow::anyhow!("a bug")).code(),
            Exit::Fatal.code()
        );
    }
}
