//! The write kinds of call: `mass_update` (one value set for up to 500 ids) and Update
//! Records (up to 100 records, each its own values). Each owns how its request body is
//! built and how its answer is read; the attempt loop, pacing and writer are the same for
//! every kind.
use std::sync::atomic::Ordering;

use rustc_hash::FxHashMap;

use super::attempt::{Call, Request, Verdict};
use super::context::SendContext;
use super::interpret::{
    interpret, interpret_in_order, interpret_upsert, settle_already_deleted, Interpretation, Step,
};
use super::settings::DispatchSettings;
use super::Endpoint;
use crate::api::limits::{credits, CallKind};
use crate::api::{bodies, Exchange};
use crate::outcome::ItemState;
use crate::store::chunks::{CallRecord, ChunkUpdate, ClaimedChunk};

/// The request body for the items `sent` (indices into the chunk's members), as the
/// chunk's kind writes it.
pub fn body(chunk: &ClaimedChunk, sent: &[usize], settings: &DispatchSettings) -> String {
    let ids: Vec<i64> = sent.iter().map(|&i| chunk.members[i].record_id).collect();
    // Each record's own object of fields, for the per-record kinds.
    let objects = || -> Vec<&str> {
        sent.iter()
            .map(|&i| {
                chunk
                    .payloads
                    .as_ref()
                    .and_then(|p| p.get(i))
                    .map_or("{}", String::as_str)
            })
            .collect()
    };
    match chunk.kind {
        CallKind::UpsertRecords => bodies::upsert_records(
            &objects(),
            &upsert_key(&chunk.payload),
            settings.trigger.as_deref(),
        ),
        // The ids go in the URL.
        CallKind::DeleteRecords => String::new(),
        CallKind::UpdateRecords => {
            bodies::update_records(&ids, &objects(), settings.trigger.as_deref())
        }
        _ => bodies::mass_update(&chunk.payload, settings.over_write, &ids),
    }
}

/// The key field of an Upsert Records chunk: its group's payload holds what every call of
/// it shares, `{"duplicate_check_fields": ["Email"]}`.
fn upsert_key(group_payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(group_payload)
        .ok()
        .and_then(|v| v["duplicate_check_fields"][0].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The URL and method of a chunk's kind of call (`ids`: the records of a Delete Records
/// call, which go in its URL).
pub fn target_of(kind: CallKind, endpoint: &Endpoint, ids: &[i64]) -> (reqwest::Method, String) {
    match kind {
        CallKind::UpsertRecords => (
            reqwest::Method::POST,
            endpoint.urls.upsert(&endpoint.module),
        ),
        CallKind::DeleteRecords => (
            reqwest::Method::DELETE,
            endpoint.urls.delete_records(&endpoint.module, ids),
        ),
        _ => target(kind, endpoint),
    }
}

/// The URL and method of a chunk's kind of call.
pub fn target(kind: CallKind, endpoint: &Endpoint) -> (reqwest::Method, String) {
    match kind {
        CallKind::UpdateRecords => (
            reqwest::Method::PUT,
            endpoint.urls.records(&endpoint.module),
        ),
        _ => (
            reqwest::Method::POST,
            endpoint.urls.mass_update(&endpoint.module),
        ),
    }
}

/// What an exchange means for the chunk's items (updated in place) and for the worker.
/// `sent` are the items the call carried, in request order; `index` maps a record id to
/// its item; `can_refresh` says whether a refused token can be replaced.
pub fn read_answer(
    exchange: &Exchange,
    chunk: &mut ClaimedChunk,
    sent: &[usize],
    index: &FxHashMap<i64, usize>,
    can_refresh: bool,
) -> Interpretation {
    if chunk.kind == CallKind::UpdateRecords {
        if let Some(read) = interpret_in_order(exchange, chunk, sent) {
            return read;
        }
    }
    interpret(exchange, chunk, index, can_refresh)
}

/// One chunk's write call (mass_update or Update Records) as the attempt loop drives it:
/// each attempt carries the items still unanswered.
pub struct WriteCall<'a> {
    pub ctx: &'a SendContext,
    pub chunk: &'a mut ClaimedChunk,
    index: FxHashMap<i64, usize>,
    /// The items the last request carried.
    sent: Vec<usize>,
    /// A call of this chunk was made before without a usable answer (in an earlier
    /// invocation, or an attempt of this one): an Upsert that then finds the record its key
    /// names finds the one that call created.
    repeated: bool,
    /// New records the answers gave ids to, not yet handed to the writer.
    created: Vec<crate::store::created::CreatedRecord>,
    /// The attempt that ended the call, stored with the chunk's end.
    pub last_call: Option<CallRecord>,
}

impl<'a> WriteCall<'a> {
    pub fn new(ctx: &'a SendContext, chunk: &'a mut ClaimedChunk) -> WriteCall<'a> {
        let index = chunk
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.record_id, i))
            .collect();
        WriteCall {
            ctx,
            repeated: chunk.tried_before,
            chunk,
            index,
            sent: Vec::new(),
            created: Vec::new(),
            last_call: None,
        }
    }

    /// The items still waiting for an answer.
    pub fn pending(&self) -> Vec<usize> {
        (0..self.chunk.members.len())
            .filter(|&i| ItemState::from_byte(self.chunk.outcomes[i]) == ItemState::Pending)
            .collect()
    }

    fn count_settled(&self) {
        let progress = &self.ctx.caller.progress;
        for &i in &self.sent {
            let counter = match ItemState::from_byte(self.chunk.outcomes[i]) {
                ItemState::Succeeded => &progress.succeeded,
                ItemState::Failed => &progress.failed,
                ItemState::Retryable => &progress.retryable,
                _ => continue,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            progress.items_settled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Call for WriteCall<'_> {
    type Output = String;

    fn request(&self) -> Request {
        let sent = self.pending();
        let kind = self.chunk.kind;
        let ids: Vec<i64> = sent
            .iter()
            .map(|&i| self.chunk.members[i].record_id)
            .collect();
        let (method, url) = target_of(kind, &self.ctx.caller.endpoint, &ids);
        Request {
            kind,
            method,
            url,
            body: body(self.chunk, &sent, &self.ctx.caller.settings),
            records: sent.len(),
            credits: credits(kind, sent.len()),
            upload: None,
        }
    }

    /// Done with the code for the call as a whole once every item has its answer.
    fn read(&mut self, exchange: &Exchange, can_refresh: bool) -> Verdict<String> {
        self.sent = self.pending();
        let read = match self.chunk.kind {
            CallKind::UpsertRecords => {
                match interpret_upsert(exchange, self.chunk, &self.sent, self.repeated) {
                    Some((read, created)) => {
                        self.created.extend(created);
                        read
                    }
                    None => interpret(exchange, self.chunk, &self.index, can_refresh),
                }
            }
            CallKind::DeleteRecords => {
                let read = interpret(exchange, self.chunk, &self.index, can_refresh);
                settle_already_deleted(self.chunk, &self.sent);
                read
            }
            _ => read_answer(exchange, self.chunk, &self.sent, &self.index, can_refresh),
        };
        if matches!(read.step, Step::Again { .. }) {
            // Whatever this attempt did is unknown: the next one repeats it.
            self.repeated = true;
        }
        let Interpretation {
            step,
            http_status,
            call_code,
        } = read;
        let outcome = match step {
            Step::Settled => {
                self.count_settled();
                if self.pending().is_empty() {
                    Ok(call_code.clone())
                } else {
                    // Some records were not in the answer: send those again.
                    Err(Step::Again {
                        code: crate::codes::NO_ANSWER_FOR_RECORD.into(),
                        message: "the answer did not name every record; sending the rest again"
                            .into(),
                        retry_after: None,
                    })
                }
            }
            other => Err(other),
        };
        Verdict {
            outcome,
            http_status,
            call_code,
        }
    }

    fn codes(&self, call_code: &str) -> String {
        codes_counted(self.chunk, &self.sent, call_code)
    }

    fn chunk(&self) -> Option<i64> {
        Some(self.chunk.id)
    }

    async fn attempted(&mut self, call: CallRecord, retry: Option<(String, String)>) {
        if !self.created.is_empty() {
            // Before the chunk's answer, through the same writer: committed with it or
            // before it, never after.
            let records = std::mem::take(&mut self.created);
            self.ctx.store_created(records).await;
        }
        match retry {
            Some(answer) => {
                let update = ChunkUpdate {
                    chunk_id: self.chunk.id,
                    outcomes: self.chunk.outcomes.clone(),
                    details: self.chunk.details.clone(),
                    code: Some(answer.0),
                    message: Some(answer.1),
                    leaves_as: None,
                    call: Some(call),
                };
                self.ctx.store(update).await;
            }
            None => self.last_call = Some(call),
        }
    }
}

/// The codes an answer gave the items it carried, counted: `SUCCESS=480,RECORD_LOCKED=20`
/// (a call-level code, such as a 500's, counts once for the call).
fn codes_counted(chunk: &ClaimedChunk, sent: &[usize], call_code: &str) -> String {
    let mut counted: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for &i in sent {
        let code = match ItemState::from_byte(chunk.outcomes[i]) {
            ItemState::Succeeded => crate::codes::SUCCESS,
            ItemState::Pending => continue,
            _ => chunk
                .details
                .get(&(i as u32))
                .map_or(call_code, |(code, _)| code.as_str()),
        };
        *counted.entry(code).or_default() += 1;
    }
    if counted.is_empty() {
        return format!("{call_code}=1");
    }
    let parts: Vec<String> = counted.iter().map(|(c, n)| format!("{c}={n}")).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Member;

    #[test]
    fn request_bodies_are_zoho_shaped() {
        let members = |ids: &[i64]| {
            ids.iter()
                .map(|&record_id| Member {
                    row_no: 0,
                    record_id,
                })
                .collect::<Vec<_>>()
        };
        let chunk = ClaimedChunk {
            bulk: None,
            id: 1,
            kind: CallKind::MassUpdate,
            payload: r#"{"Lead_Status":"Contacted"}"#.into(),
            payloads: None,
            members: members(&[1, 22]),
            outcomes: vec![0; 2],
            details: Default::default(),
            snapshotted: false,
            tried_before: false,
        };
        let settings = DispatchSettings {
            over_write: true,
            ..DispatchSettings::default()
        };
        let body = super::body(&chunk, &[0, 1], &settings);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"Lead_Status": "Contacted"}], "over_write": true, "ids": ["1", "22"]})
        );
        let chunk = ClaimedChunk {
            bulk: None,
            kind: CallKind::UpdateRecords,
            payload: "{}".into(),
            payloads: Some(vec![
                r#"{"Email":"a@x.io"}"#.into(),
                r#"{"City":"Rome"}"#.into(),
            ]),
            ..chunk
        };
        let settings = DispatchSettings {
            trigger: Some(vec![]),
            ..DispatchSettings::default()
        };
        // Only the items sent, in the order sent.
        let body = super::body(&chunk, &[1], &settings);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"id": "22", "City": "Rome"}], "trigger": []})
        );
    }
}
