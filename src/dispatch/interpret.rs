//! What one exchange means: a pure function from the HTTP answer (or its absence) to the
//! new states of a chunk's items and the worker's next step. Items are matched to answers
//! by `details.id`, never by position.
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::api::response::{parse_body, CallAnswer};
use crate::api::Exchange;
use crate::outcome::{classify_code, next_state, AnswerClass, ItemState};
use crate::store::chunks::ClaimedChunk;

/// What the worker does after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every item that was answered has its final state for this run.
    Settled,
    /// Try again after a backoff (what went wrong, and the server's Retry-After).
    Again {
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The token was refused: refresh (single flight) and repeat at once.
    Token { code: String, message: String },
    /// Stop everything: nothing more can succeed until a person fixes something.
    Fatal { code: String, message: String },
}

/// An attempt's meaning: the next step, the HTTP status (None without an answer), and the
/// code logged for the call as a whole (SUCCESS, MIXED, or the request-level code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpretation {
    pub step: Step,
    pub http_status: Option<u16>,
    pub call_code: String,
}

/// Turns one exchange into item states (updating `chunk`) and the worker's next step.
pub fn interpret(
    exchange: &Exchange,
    chunk: &mut ClaimedChunk,
    index: &FxHashMap<i64, usize>,
    can_refresh: bool,
) -> Interpretation {
    let (status, body, retry_after) = match exchange {
        Exchange::NoAnswer { reason } => {
            return Interpretation {
                step: Step::Again {
                    code: "NO_ANSWER".into(),
                    message: reason.clone(),
                    retry_after: None,
                },
                http_status: None,
                call_code: "NO_ANSWER".into(),
            }
        }
        Exchange::Answered {
            status,
            body,
            retry_after,
            ..
        } => (*status, body, *retry_after),
    };
    let answer = parse_body(status, body);
    let transient_status = status == 429 || status >= 500;
    match answer {
        CallAnswer::Unreadable { reason } => Interpretation {
            step: Step::Again {
                code: "UNREADABLE_ANSWER".into(),
                message: reason,
                retry_after,
            },
            http_status: Some(status),
            call_code: "UNREADABLE_ANSWER".into(),
        },
        CallAnswer::Request { code, message } => {
            let class = if transient_status {
                AnswerClass::Transient
            } else if code == "AUTHENTICATION_FAILURE" && can_refresh {
                // Zoho answers this for a revoked token as well: a fresh token may help once.
                AnswerClass::TokenExpired
            } else {
                classify_code(&code)
            };
            let step = match class {
                AnswerClass::Transient => Step::Again {
                    code: code.clone(),
                    message,
                    retry_after,
                },
                // A request-level SUCCESS names no record: nothing can be marked done.
                AnswerClass::Success => Step::Again {
                    code: "UNREADABLE_ANSWER".into(),
                    message: "SUCCESS without record ids".into(),
                    retry_after,
                },
                AnswerClass::TokenExpired => Step::Token {
                    code: code.clone(),
                    message,
                },
                AnswerClass::Fatal => Step::Fatal {
                    code: code.clone(),
                    message,
                },
                AnswerClass::Failed | AnswerClass::Retryable => {
                    for i in 0..chunk.outcomes.len() {
                        let before = ItemState::from_byte(chunk.outcomes[i]);
                        let after = next_state(before, class);
                        if after != before {
                            chunk.outcomes[i] = after as u8;
                            chunk
                                .details
                                .insert(i as u32, (code.clone(), message.clone()));
                        }
                    }
                    Step::Settled
                }
            };
            Interpretation {
                step,
                http_status: Some(status),
                call_code: code,
            }
        }
        CallAnswer::Records(records) => {
            let mut all_success = true;
            let mut unsettled = None;
            for answer in &records {
                let Some(&i) = index.get(&answer.id) else {
                    tracing::debug!(id = answer.id, "an answer for a record not in the call");
                    continue;
                };
                let class = classify_code(&answer.code);
                let before = ItemState::from_byte(chunk.outcomes[i]);
                let after = next_state(before, class);
                if class != AnswerClass::Success {
                    all_success = false;
                }
                if after != before {
                    chunk.outcomes[i] = after as u8;
                    if after == ItemState::Succeeded {
                        chunk.details.remove(&(i as u32));
                    } else {
                        chunk.details.insert(
                            i as u32,
                            (answer.code.to_string(), answer.message.to_string()),
                        );
                    }
                } else if before == ItemState::Pending {
                    // Per-record transient codes: keep the reason for the record.
                    unsettled = Some((answer.code.to_string(), answer.message.to_string()));
                    chunk.details.insert(
                        i as u32,
                        (answer.code.to_string(), answer.message.to_string()),
                    );
                }
            }
            let code = if all_success { "SUCCESS" } else { "MIXED" };
            let step = match unsettled {
                Some((code, message)) if transient_status => Step::Again {
                    code,
                    message,
                    retry_after,
                },
                _ => Step::Settled,
            };
            Interpretation {
                step,
                http_status: Some(status),
                call_code: code.to_string(),
            }
        }
    }
}
