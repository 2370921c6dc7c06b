//! massup's own codes: the ones it writes beside Zoho's in the database, reports and JSON,
//! for outcomes Zoho did not answer itself. One place, so a report reader and the code
//! that writes a code cannot drift apart.

/// Zoho's code for a record written; massup uses it for the call as a whole too.
pub const SUCCESS: &str = "SUCCESS";
/// The message stored with [`SUCCESS`].
pub const SUCCESS_MESSAGE: &str = "record updated";
/// A call whose records got different codes.
pub const MIXED: &str = "MIXED";
/// `--skip-unchanged` (and every undo): the record held the values already; nothing sent.
pub const UNCHANGED: &str = "UNCHANGED";
/// An undo found the record changed since the undone run wrote it; left alone.
pub const CONFLICT: &str = "CONFLICT";
/// An undo's Delete Records found no such record: deleted already (by an earlier call whose
/// answer was lost, or by someone else), which is what the undo wanted.
pub const ALREADY_DELETED: &str = "ALREADY_DELETED";
/// No HTTP answer: a timeout, a dropped connection, a body cut off.
pub const NO_ANSWER: &str = "NO_ANSWER";
/// An answer that is not what Zoho sends.
pub const UNREADABLE_ANSWER: &str = "UNREADABLE_ANSWER";
/// An answer that named some of the call's records but not all.
pub const NO_ANSWER_FOR_RECORD: &str = "NO_ANSWER_FOR_RECORD";
/// No access token could be had (the accounts server unreachable).
pub const TOKEN_UNAVAILABLE: &str = "TOKEN_UNAVAILABLE";
/// A redirect, never followed.
pub const REDIRECTED: &str = "REDIRECTED";
/// The snapshot's values could not be stored, so nothing was sent.
pub const SNAPSHOT_NOT_STORED: &str = "SNAPSHOT_NOT_STORED";
/// What a chunk would send does not match the checksum written with it (a damaged
/// database file): the send stops before its call.
pub const DAMAGED_CHUNK: &str = "DAMAGED_CHUNK";
/// A Bulk Write job's result did not settle the row (Zoho's `Unprocessed`, or the row
/// missing from the result): retryable, `retry` sends it again.
pub const UNPROCESSED: &str = "UNPROCESSED";
/// A Bulk Write chunk's jobs failed with no row applied as often as allowed.
pub const BULK_JOB_FAILED: &str = "BULK_JOB_FAILED";
/// A Bulk Write job still running when `--bulk-wait` ran out; `resume` polls it again.
pub const BULK_JOB_RUNNING: &str = "BULK_JOB_RUNNING";
/// A Bulk Write chunk's file could not be made from its stored values.
pub const BULK_FILE: &str = "BULK_FILE";
