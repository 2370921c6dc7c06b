//! The error that is the user's to fix. A leaf module, so that every stage can raise it
//! without depending on `exit`, which decides what each error means for the exit code.

/// An error that is the user's to fix (exit code 2); its message says how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}
