//! What happens to one item (one input row x one group): its states, how an API answer
//! moves it between them, and what an item is (packing it is the store's `codec`). The state
//! changes are small pure functions so that they can be tested on their own.
use serde::Serialize;

/// The state of one item, stored as one byte per item in `chunks.outcomes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ItemState {
    /// Not sent yet, or sent without a usable answer (left for the next attempt or resume).
    Pending = 0,
    /// The API answered SUCCESS for this record.
    Succeeded = 1,
    /// The record is in a state that passes (locked, not approved, ...): `massup retry`.
    Retryable = 2,
    /// The API refused this record for good (bad value, unknown id, ...).
    Failed = 3,
    /// Moved into a newer chunk by `massup retry`; that chunk holds its outcome now.
    Requeued = 4,
}

impl ItemState {
    pub fn from_byte(byte: u8) -> ItemState {
        match byte {
            1 => ItemState::Succeeded,
            2 => ItemState::Retryable,
            3 => ItemState::Failed,
            4 => ItemState::Requeued,
            _ => ItemState::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Succeeded => "succeeded",
            ItemState::Retryable => "retryable",
            ItemState::Failed => "failed",
            ItemState::Requeued => "requeued",
        }
    }
}

/// How an answer (for one record, or for a whole call) is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerClass {
    /// The record was updated.
    Success,
    /// The record cannot be updated now but can later (RECORD_LOCKED, NOT_APPROVED, ...).
    Retryable,
    /// The record (or the request) was refused and resending will not help.
    Failed,
    /// Nothing is known to have happened: 429, 5xx, timeouts, drops, unreadable bodies.
    /// The call is repeated with backoff.
    Transient,
    /// The token was refused: refresh it once for all workers and repeat the call.
    TokenExpired,
    /// Nothing more can succeed until a person fixes something (credentials, scope,
    /// permission, module): dispatching stops and the rest stays pending.
    Fatal,
}

/// Classifies a Zoho code, per-record or request-level.
pub fn classify_code(code: &str) -> AnswerClass {
    match code {
        crate::codes::SUCCESS => AnswerClass::Success,
        "RECORD_LOCKED"
        | "NOT_APPROVED"
        | "CANNOT_PROCESS"
        | "RECORD_IN_BLUEPRINT"
        | "BLOCKED_RECORD"
        | crate::codes::UNPROCESSED
        | crate::codes::BULK_JOB_FAILED => AnswerClass::Retryable,
        "TOO_MANY_REQUESTS" | "INTERNAL_ERROR" | "INTERNAL_SERVER_ERROR" => AnswerClass::Transient,
        "INVALID_TOKEN" => AnswerClass::TokenExpired,
        "AUTHENTICATION_FAILURE"
        | "OAUTH_SCOPE_MISMATCH"
        | "NO_PERMISSION"
        | "INVALID_MODULE"
        | "INVALID_URL_PATTERN"
        | "FEATURE_NOT_SUPPORTED"
        | "FEATURE_NOT_ENABLED" => AnswerClass::Fatal,
        // INVALID_DATA, MANDATORY_NOT_FOUND, LIMIT_EXCEEDED, CONVERTED_RECORD, DUPLICATE_DATA,
        // and any code massup does not know: refused, with the code and message kept.
        _ => AnswerClass::Failed,
    }
}

/// The state an item moves to when an answer of `class` arrives for it. Pure: the caller
/// stores the result. A settled item never moves back (a late duplicate answer for a
/// record that already succeeded cannot make it fail), except that `retry` re-queues.
pub fn next_state(current: ItemState, class: AnswerClass) -> ItemState {
    if current != ItemState::Pending {
        return current;
    }
    match class {
        AnswerClass::Success => ItemState::Succeeded,
        AnswerClass::Retryable => ItemState::Retryable,
        AnswerClass::Failed => ItemState::Failed,
        AnswerClass::Transient | AnswerClass::TokenExpired | AnswerClass::Fatal => {
            ItemState::Pending
        }
    }
}

/// One item of a chunk: the input row it came from and the record it updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub row_no: u32,
    pub record_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify_as_documented() {
        assert_eq!(classify_code("SUCCESS"), AnswerClass::Success);
        for code in [
            "RECORD_LOCKED",
            "NOT_APPROVED",
            "CANNOT_PROCESS",
            "RECORD_IN_BLUEPRINT",
        ] {
            assert_eq!(classify_code(code), AnswerClass::Retryable, "{code}");
        }
        for code in [
            "INVALID_DATA",
            "MANDATORY_NOT_FOUND",
            "LIMIT_EXCEEDED",
            "WHATEVER_NEW",
        ] {
            assert_eq!(classify_code(code), AnswerClass::Failed, "{code}");
        }
        assert_eq!(classify_code("TOO_MANY_REQUESTS"), AnswerClass::Transient);
        assert_eq!(classify_code("INTERNAL_ERROR"), AnswerClass::Transient);
        assert_eq!(classify_code("INVALID_TOKEN"), AnswerClass::TokenExpired);
        for code in [
            "AUTHENTICATION_FAILURE",
            "OAUTH_SCOPE_MISMATCH",
            "NO_PERMISSION",
            "INVALID_MODULE",
        ] {
            assert_eq!(classify_code(code), AnswerClass::Fatal, "{code}");
        }
    }

    #[test]
    fn settled_items_never_move() {
        use AnswerClass as A;
        use ItemState as S;
        let classes = [
            A::Success,
            A::Retryable,
            A::Failed,
            A::Transient,
            A::TokenExpired,
            A::Fatal,
        ];
        for class in classes {
            for state in [S::Succeeded, S::Retryable, S::Failed, S::Requeued] {
                assert_eq!(next_state(state, class), state);
            }
        }
        assert_eq!(next_state(S::Pending, A::Success), S::Succeeded);
        assert_eq!(next_state(S::Pending, A::Retryable), S::Retryable);
        assert_eq!(next_state(S::Pending, A::Failed), S::Failed);
        for class in [A::Transient, A::TokenExpired, A::Fatal] {
            assert_eq!(next_state(S::Pending, class), S::Pending);
        }
    }

    #[test]
    fn state_bytes_round_trip() {
        for b in 0..=4u8 {
            assert_eq!(ItemState::from_byte(b) as u8, b);
        }
    }
}
