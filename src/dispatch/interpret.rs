//! What one exchange means: a pure function from the HTTP answer (or its absence) to the
//! new states of a chunk's items and the worker's next step. Items are matched to answers
//! by `details.id`, never by position.
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::api::response::{parse_body, CallAnswer};
use crate::api::Exchange;
use crate::outcome::{classify_code, next_state, AnswerClass, ItemState};
use crate::store::chunks::ClaimedChunk;
use crate::store::created::{Action, CreatedRecord};

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
    /// The org's daily API credits are spent: stop, resumable; the call is not the
    /// chunk's fault and uses up no attempt.
    CreditsExhausted { code: String, message: String },
}

impl Step {
    /// The code the step names for the call as a whole (SUCCESS once settled).
    pub fn code(&self) -> &str {
        match self {
            Step::Again { code, .. }
            | Step::Token { code, .. }
            | Step::Fatal { code, .. }
            | Step::CreditsExhausted { code, .. } => code,
            Step::Settled => crate::codes::SUCCESS,
        }
    }
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
        Exchange::Redirected { status, location } => {
            let code = crate::codes::REDIRECTED.to_string();
            return Interpretation {
                step: Step::Fatal {
                    code: code.clone(),
                    message: format!(
                        "the API answered HTTP {status} redirecting to {location}; massup follows no redirect (it would send the records there): check --api-domain / --dc"
                    ),
                },
                http_status: Some(*status),
                call_code: code,
            };
        }
        Exchange::NoAnswer { reason } => {
            return Interpretation {
                step: Step::Again {
                    code: crate::codes::NO_ANSWER.into(),
                    message: reason.clone(),
                    retry_after: None,
                },
                http_status: None,
                call_code: crate::codes::NO_ANSWER.into(),
            }
        }
        Exchange::Answered {
            status,
            body,
            retry_after,
            ..
        } => (*status, body, *retry_after),
    };
    if credits_exhausted(exchange) {
        let (code, message) = match parse_body(status, body) {
            CallAnswer::Request { code, message } => (code, message),
            _ => (
                "TOO_MANY_REQUESTS".to_string(),
                "the daily API credits are spent".to_string(),
            ),
        };
        return Interpretation {
            step: Step::CreditsExhausted {
                code: code.clone(),
                message,
            },
            http_status: Some(status),
            call_code: code,
        };
    }
    let answer = parse_body(status, body);
    let transient_status = status == 429 || status >= 500;
    match answer {
        CallAnswer::Unreadable { reason } => Interpretation {
            step: Step::Again {
                code: crate::codes::UNREADABLE_ANSWER.into(),
                message: reason,
                retry_after,
            },
            http_status: Some(status),
            call_code: crate::codes::UNREADABLE_ANSWER.into(),
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
                    code: crate::codes::UNREADABLE_ANSWER.into(),
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
            let code = if all_success {
                crate::codes::SUCCESS
            } else {
                crate::codes::MIXED
            };
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

/// Reads an Update Records answer by position: Zoho lists one entry per record in request
/// order, and an entry's `details.id` can name another record (DUPLICATE_DATA names the
/// record that already holds the value). None when the answer is not one entry per record
/// sent (a request-level error, a transient status, a short list): the caller reads it as
/// any other answer, by id.
pub fn interpret_in_order(
    exchange: &Exchange,
    chunk: &mut ClaimedChunk,
    sent: &[usize],
) -> Option<Interpretation> {
    let Exchange::Answered { status, body, .. } = exchange else {
        return None;
    };
    if *status == 429 || *status >= 500 || credits_exhausted(exchange) {
        return None;
    }
    let entries = crate::api::response::parse_entries(body)?;
    if entries.len() != sent.len() || sent.is_empty() {
        return None;
    }
    let mut all_success = true;
    for (entry, &i) in entries.iter().zip(sent) {
        let class = classify_code(&entry.code);
        // A code that stops everything (a refused token, a permission) is the call's, not
        // the record's: read the answer as a whole.
        if matches!(class, AnswerClass::TokenExpired | AnswerClass::Fatal) {
            return None;
        }
        if class != AnswerClass::Success {
            all_success = false;
        }
        let before = ItemState::from_byte(chunk.outcomes[i]);
        let after = next_state(before, class);
        if after == ItemState::Succeeded {
            chunk.details.remove(&(i as u32));
        } else {
            chunk.details.insert(
                i as u32,
                (entry.code.to_string(), entry.message.to_string()),
            );
        }
        chunk.outcomes[i] = after as u8;
    }
    Some(Interpretation {
        step: Step::Settled,
        http_status: Some(*status),
        call_code: if all_success {
            crate::codes::SUCCESS
        } else {
            crate::codes::MIXED
        }
        .to_string(),
    })
}

/// Reads an Upsert Records answer (`--create-missing`) by position, as Update Records':
/// one entry per record in request order. A SUCCESS entry gives the record's id
/// (`details.id`) and Zoho's `action` (beside `code`, or inside `details` in some
/// versions; an entry without one is an insert). For a row planned as new (a placeholder id
/// below zero) it returns what the run must keep: the id, and whether the run created the
/// record. An `update` answer for such a row is a creation too when `repeated` (the call
/// was made before without a usable answer: that call created the record, and Upsert on
/// the key found it instead of creating a second one); otherwise someone else created it
/// between plan and send, and it was updated. A SUCCESS without an id leaves its record
/// pending: sending it again is safe, since Upsert on the key never creates twice.
/// None when the answer is not one entry per record sent: the caller reads it as any other
/// answer.
pub fn interpret_upsert(
    exchange: &Exchange,
    chunk: &mut ClaimedChunk,
    sent: &[usize],
    repeated: bool,
) -> Option<(Interpretation, Vec<CreatedRecord>)> {
    let Exchange::Answered { status, body, .. } = exchange else {
        return None;
    };
    if *status == 429 || *status >= 500 || credits_exhausted(exchange) {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let entries = answer.get("data")?.as_array()?;
    if entries.len() != sent.len() || sent.is_empty() {
        return None;
    }
    let text = |entry: &serde_json::Value, key: &str| -> Option<String> {
        entry.get(key).and_then(|v| v.as_str()).map(str::to_string)
    };
    let mut codes = Vec::with_capacity(entries.len());
    for entry in entries {
        let code = text(entry, "code")?;
        if matches!(
            classify_code(&code),
            AnswerClass::TokenExpired | AnswerClass::Fatal
        ) {
            return None;
        }
        codes.push(code);
    }
    let mut created = Vec::new();
    let mut all_success = true;
    let mut unanswered = false;
    for ((entry, code), &i) in entries.iter().zip(codes).zip(sent) {
        let class = classify_code(&code);
        let message = text(entry, "message").unwrap_or_default();
        if class == AnswerClass::Success {
            let details = entry.get("details");
            let id = details
                .and_then(|d| d.as_object())
                .and_then(crate::api::response::row_record_id);
            let Some(id) = id else {
                all_success = false;
                unanswered = true;
                chunk.details.insert(
                    i as u32,
                    (
                        crate::codes::NO_ANSWER_FOR_RECORD.into(),
                        "SUCCESS without the record's id; sending it again".into(),
                    ),
                );
                continue;
            };
            let action = text(entry, "action")
                .or_else(|| details.and_then(|d| text(d, "action")))
                .unwrap_or_else(|| "insert".into());
            let member = chunk.members[i];
            if member.record_id < 0 {
                let action = if action == "insert" || repeated {
                    Action::Created
                } else {
                    Action::Updated
                };
                created.push(CreatedRecord {
                    row_no: member.row_no,
                    record_id: id,
                    action,
                });
            }
            chunk.details.remove(&(i as u32));
            let before = ItemState::from_byte(chunk.outcomes[i]);
            chunk.outcomes[i] = next_state(before, class) as u8;
            continue;
        }
        all_success = false;
        let before = ItemState::from_byte(chunk.outcomes[i]);
        let after = next_state(before, class);
        chunk.outcomes[i] = after as u8;
        chunk.details.insert(i as u32, (code, message));
    }
    let step = if unanswered {
        Step::Again {
            code: crate::codes::NO_ANSWER_FOR_RECORD.into(),
            message: "a SUCCESS entry without the record's id".into(),
            retry_after: None,
        }
    } else {
        Step::Settled
    };
    Some((
        Interpretation {
            step,
            http_status: Some(*status),
            call_code: if all_success {
                crate::codes::SUCCESS
            } else {
                crate::codes::MIXED
            }
            .to_string(),
        },
        created,
    ))
}

/// Delete Records answers INVALID_DATA for an id that names no record. For an undo's
/// deletion that is the wanted state (the record is gone: deleted by an earlier call whose
/// answer was lost, or by someone else), so such items of `sent` succeed, saying so.
pub fn settle_already_deleted(chunk: &mut ClaimedChunk, sent: &[usize]) {
    for &i in sent {
        let gone = ItemState::from_byte(chunk.outcomes[i]) == ItemState::Failed
            && chunk
                .details
                .get(&(i as u32))
                .is_some_and(|(code, message)| code == "INVALID_DATA" && message.contains("id"));
        if gone {
            chunk.outcomes[i] = ItemState::Succeeded as u8;
            chunk.details.insert(
                i as u32,
                (
                    crate::codes::ALREADY_DELETED.into(),
                    "no such record: deleted already".into(),
                ),
            );
        }
    }
}

/// Whether an answer says the org's daily credits are spent: a 429 that reports no credits
/// left (`X-API-CREDITS-REMAINING: 0`), or whose message is Zoho's "Number of API requests
/// for the 24 hour period is exceeded" (the status-code table; see docs/ZOHO_API_NOTES.md).
/// A plain 429 is too many calls at once or per minute, which passes with a backoff.
fn credits_exhausted(exchange: &Exchange) -> bool {
    match exchange {
        Exchange::Answered {
            status,
            body,
            credits_remaining,
            ..
        // A call that succeeded with the last credit is read as usual (its records were
        // updated); `note_credits` stops the run after it.
        } => *status == 429 && crate::api::response::credits_exhausted(*status, body, *credits_remaining),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Member;

    fn chunk(ids: &[i64]) -> (ClaimedChunk, FxHashMap<i64, usize>) {
        let members: Vec<Member> = ids
            .iter()
            .enumerate()
            .map(|(i, &record_id)| Member {
                row_no: i as u32,
                record_id,
            })
            .collect();
        let index = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let chunk = ClaimedChunk {
            bulk: None,
            id: 1,
            kind: crate::api::limits::CallKind::MassUpdate,
            payloads: None,
            payload: "{}".into(),
            outcomes: vec![ItemState::Pending as u8; ids.len()],
            members,
            details: Default::default(),
            snapshotted: false,
            tried_before: false,
        };
        (chunk, index)
    }

    fn answered(status: u16, body: &str) -> Exchange {
        Exchange::Answered {
            status,
            body: bytes::Bytes::from(body.to_string()),
            credits_remaining: None,
            retry_after: None,
        }
    }

    fn record(id: i64, code: &str) -> String {
        format!(
            r#"{{"code":"{code}","details":{{"id":"{id}"}},"message":"m {code}","status":"x"}}"#
        )
    }

    fn states(chunk: &ClaimedChunk) -> Vec<ItemState> {
        chunk
            .outcomes
            .iter()
            .map(|&b| ItemState::from_byte(b))
            .collect()
    }

    #[test]
    fn per_record_answers_are_matched_by_id_not_position() {
        let (mut c, index) = chunk(&[11, 22, 33]);
        // Answered out of order, one record missing.
        let body = format!(
            r#"{{"data":[{},{}]}}"#,
            record(33, "RECORD_LOCKED"),
            record(11, "SUCCESS")
        );
        let got = interpret(&answered(207, &body), &mut c, &index, true);
        assert_eq!(got.step, Step::Settled);
        assert_eq!(got.http_status, Some(207));
        assert_eq!(got.call_code, "MIXED");
        assert_eq!(
            states(&c),
            vec![
                ItemState::Succeeded,
                ItemState::Pending,
                ItemState::Retryable
            ]
        );
        assert_eq!(c.details[&2].0, "RECORD_LOCKED");
        assert!(!c.details.contains_key(&0));
    }

    #[test]
    fn all_success_is_success_and_settled() {
        let (mut c, index) = chunk(&[5, 6]);
        let body = format!(
            r#"{{"data":[{},{}]}}"#,
            record(5, "SUCCESS"),
            record(6, "SUCCESS")
        );
        let got = interpret(&answered(200, &body), &mut c, &index, false);
        assert_eq!(
            (got.step, got.call_code.as_str()),
            (Step::Settled, "SUCCESS")
        );
        assert_eq!(states(&c), vec![ItemState::Succeeded; 2]);
    }

    #[test]
    fn transient_answers_and_silence_retry_without_touching_items() {
        for exchange in [
            answered(
                429,
                r#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"slow","status":"error"}"#,
            ),
            answered(
                500,
                r#"{"code":"INTERNAL_ERROR","details":{},"message":"oops","status":"error"}"#,
            ),
            answered(200, "<html>not json"),
            Exchange::NoAnswer {
                reason: "timed out".into(),
            },
        ] {
            let (mut c, index) = chunk(&[1, 2]);
            let got = interpret(&exchange, &mut c, &index, true);
            assert!(matches!(got.step, Step::Again { .. }), "{got:?}");
            assert_eq!(states(&c), vec![ItemState::Pending; 2]);
        }
        // A per-record transient code under a 5xx keeps the record pending, with its reason.
        let (mut c, index) = chunk(&[1]);
        let body = format!(r#"{{"data":[{}]}}"#, record(1, "INTERNAL_ERROR"));
        let got = interpret(&answered(500, &body), &mut c, &index, true);
        assert!(matches!(got.step, Step::Again { ref code, .. } if code == "INTERNAL_ERROR"));
        assert_eq!(c.details[&0].0, "INTERNAL_ERROR");
    }

    #[test]
    fn authentication_failure_refreshes_only_when_a_token_can_be_minted() {
        let body =
            r#"{"code":"AUTHENTICATION_FAILURE","details":{},"message":"bad","status":"error"}"#;
        let (mut c, index) = chunk(&[1]);
        let got = interpret(&answered(401, body), &mut c, &index, true);
        assert!(matches!(got.step, Step::Token { .. }), "{got:?}");
        let got = interpret(&answered(401, body), &mut c, &index, false);
        assert!(matches!(got.step, Step::Fatal { .. }), "{got:?}");
        let expired =
            r#"{"code":"INVALID_TOKEN","details":{},"message":"expired","status":"error"}"#;
        let got = interpret(&answered(401, expired), &mut c, &index, false);
        assert!(matches!(got.step, Step::Token { .. }), "{got:?}");
        assert_eq!(states(&c), vec![ItemState::Pending]);
    }

    #[test]
    fn a_request_level_refusal_settles_every_item_with_its_code() {
        let (mut c, index) = chunk(&[1, 2]);
        let body = r#"{"data":[{"code":"INVALID_DATA","details":{},"message":"No field found","status":"error"}]}"#;
        let got = interpret(&answered(200, body), &mut c, &index, true);
        assert_eq!(got.step, Step::Settled);
        assert_eq!(got.call_code, "INVALID_DATA");
        assert_eq!(states(&c), vec![ItemState::Failed; 2]);
        assert_eq!(c.details[&1].1, "No field found");
        let (mut c, index) = chunk(&[1]);
        let fatal = r#"{"code":"NO_PERMISSION","details":{},"message":"no","status":"error"}"#;
        let got = interpret(&answered(403, fatal), &mut c, &index, true);
        assert!(matches!(got.step, Step::Fatal { .. }));
        assert_eq!(states(&c), vec![ItemState::Pending]);
    }

    #[test]
    fn spent_daily_credits_stop_instead_of_retrying() {
        let body = r#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"Number of API requests for the 24 hour period is exceeded","status":"error"}"#;
        let (mut c, index) = chunk(&[1]);
        let got = interpret(&answered(429, body), &mut c, &index, true);
        assert!(matches!(got.step, Step::CreditsExhausted { .. }), "{got:?}");
        let header_only = Exchange::Answered {
            status: 429,
            body: bytes::Bytes::from_static(br#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"slow down","status":"error"}"#),
            credits_remaining: Some(0),
            retry_after: None,
        };
        let got = interpret(&header_only, &mut c, &index, true);
        assert!(matches!(got.step, Step::CreditsExhausted { .. }), "{got:?}");
        // An ordinary 429 (too many at once) is backed off, not a stop.
        let busy =
            r#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"slow down","status":"error"}"#;
        let got = interpret(&answered(429, busy), &mut c, &index, true);
        assert!(matches!(got.step, Step::Again { .. }), "{got:?}");
        assert_eq!(states(&c), vec![ItemState::Pending]);
    }

    #[test]
    fn a_redirect_is_fatal_and_names_its_target() {
        let (mut c, index) = chunk(&[1]);
        let redirect = Exchange::Redirected {
            status: 307,
            location: "http://localhost:9/elsewhere".into(),
        };
        let got = interpret(&redirect, &mut c, &index, true);
        match got.step {
            Step::Fatal { code, message } => {
                assert_eq!(code, "REDIRECTED");
                assert!(
                    message.contains("http://localhost:9/elsewhere"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(states(&c), vec![ItemState::Pending]);
    }

    fn upsert_chunk(ids: &[i64]) -> ClaimedChunk {
        let (mut c, _) = chunk(ids);
        c.kind = crate::api::limits::CallKind::UpsertRecords;
        c
    }

    #[test]
    fn upsert_answers_give_each_new_record_its_id_and_action() {
        let mut c = upsert_chunk(&[-1, -2, -3, -4]);
        let body = r#"{"data":[
            {"code":"SUCCESS","action":"insert","duplicate_field":null,"details":{"id":"901"},"message":"record added","status":"success"},
            {"code":"SUCCESS","action":"update","duplicate_field":"Email","details":{"id":"902"},"message":"record updated","status":"success"},
            {"code":"DUPLICATE_DATA","details":{"api_name":"Email","id":"5"},"message":"duplicate data","status":"error"},
            {"code":"MANDATORY_NOT_FOUND","details":{"api_name":"Last_Name"},"message":"required field not found","status":"error"}
        ]}"#;
        let (read, created) =
            interpret_upsert(&answered(207, body), &mut c, &[0, 1, 2, 3], false).unwrap();
        assert_eq!(
            (read.step, read.call_code.as_str()),
            (Step::Settled, "MIXED")
        );
        assert_eq!(
            states(&c),
            vec![
                ItemState::Succeeded,
                ItemState::Succeeded,
                ItemState::Failed,
                ItemState::Failed
            ]
        );
        assert_eq!(c.details[&3].0, "MANDATORY_NOT_FOUND");
        let got: Vec<(i64, Action)> = created.iter().map(|c| (c.record_id, c.action)).collect();
        // Found by its key on a first call: someone else created it.
        assert_eq!(got, vec![(901, Action::Created), (902, Action::Updated)]);
        // The same answer to a repeated call (the first answer was lost): the record the
        // key found is the one that call created.
        let mut c = upsert_chunk(&[-1, -2, -3, -4]);
        let (_, created) =
            interpret_upsert(&answered(207, body), &mut c, &[0, 1, 2, 3], true).unwrap();
        assert!(created.iter().all(|c| c.action == Action::Created));
    }

    #[test]
    fn upsert_answers_that_do_not_line_up_are_read_another_way() {
        let mut c = upsert_chunk(&[-1, -2]);
        let one = r#"{"data":[{"code":"SUCCESS","action":"insert","details":{"id":"9"},"message":"m","status":"success"}]}"#;
        assert!(interpret_upsert(&answered(200, one), &mut c, &[0, 1], false).is_none());
        assert!(interpret_upsert(&answered(500, one), &mut c, &[0], false).is_none());
        let token =
            r#"{"data":[{"code":"INVALID_TOKEN","details":{},"message":"m","status":"error"}]}"#;
        assert!(interpret_upsert(&answered(401, token), &mut c, &[0], false).is_none());
        // A SUCCESS without an id: the record stays pending and the call goes again.
        let no_id =
            r#"{"data":[{"code":"SUCCESS","details":{},"message":"m","status":"success"}]}"#;
        let (read, created) = interpret_upsert(&answered(200, no_id), &mut c, &[0], false).unwrap();
        assert!(matches!(read.step, Step::Again { .. }));
        assert!(created.is_empty());
        assert_eq!(states(&c)[0], ItemState::Pending);
    }

    #[test]
    fn a_delete_of_a_record_gone_already_succeeds() {
        let (mut c, index) = chunk(&[11, 12]);
        let body = format!(
            r#"{{"data":[{},{}]}}"#,
            record(11, "SUCCESS"),
            r#"{"code":"INVALID_DATA","details":{"id":"12"},"message":"the id given seems to be invalid","status":"error"}"#
        );
        interpret(&answered(207, &body), &mut c, &index, true);
        settle_already_deleted(&mut c, &[0, 1]);
        assert_eq!(states(&c), vec![ItemState::Succeeded; 2]);
        assert_eq!(c.details[&1].0, "ALREADY_DELETED");
    }
}
