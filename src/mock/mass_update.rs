//! `POST /crm/{version}/{module}/actions/mass_update`: validation in Zoho's order, the apply,
//! and a response body written as bytes, since this endpoint must answer thousands of 500-id
//! calls a second. The same path schedules a job when the body names a custom view (`cvid`)
//! instead of `ids`, and answers the job's status to `GET ...?job_id=`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::call::ApiCall;
use super::jobs::{FieldWrite, Jobs, Refusal, MAX_RECORDS_PER_JOB};
use super::metadata::user_name;
use super::schema::{lookup_id, FieldSpec, ModuleSpec, ValueError};
use super::server::{
    json_bytes, lock, zoho_response, Code, ConnAbort, Endpoint, HeaderProfile, MassUpdatePath,
    Reject, Shared, CODE_COUNT, METADATA_CREDITS,
};
use super::store::{format_time, Attempt, Store};
use super::{MockConfig, MAX_IDS_PER_CALL};

/// The user the mock's records were created and are modified by (the seed's,
/// `metadata::SEED_USER`).
const USER: &str = r#"{"name":"Patricia Boyle","id":"738964000000291009"}"#;

#[derive(Deserialize)]
struct MassUpdateBody<'a> {
    #[serde(default)]
    data: Option<Vec<Map<String, Value>>>,
    #[serde(borrow, default)]
    ids: Option<Vec<RecordId<'a>>>,
    #[serde(default)]
    over_write: Option<bool>,
    /// The custom view of the scheduled mode (a string; a number is taken too).
    #[serde(default)]
    cvid: Option<Value>,
    /// `{"id": ..., "include_child": bool}`: accepted and not used (the mock has no territories).
    #[serde(default)]
    territory: Option<Value>,
}

/// A record id as sent: a JSON string, or a JSON number as Zoho's SDKs send it (the Java SDK
/// declares `List<Long> ids`). Borrowed from the body when it is a string without escapes, so
/// a 500-id call allocates nothing for its ids.
struct RecordId<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for RecordId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RecordId<'a>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RecordId<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a record id (a string or an integer)")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<RecordId<'de>, E> {
                Ok(RecordId(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<RecordId<'de>, E> {
                Ok(RecordId(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<RecordId<'de>, E> {
                Ok(RecordId(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RecordId<'de>, E> {
                Ok(RecordId(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RecordId<'de>, E> {
                Ok(RecordId(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(Visitor)
    }
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((_version, module)): MassUpdatePath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    body: Bytes,
) -> Response {
    let mut call = ApiCall::enter(&shared, Endpoint::MassUpdate, &headers, abort);
    if let Some(redirect) = call.redirect() {
        return redirect;
    }
    if method == Method::GET {
        return job_status(&call, &module, query.as_deref());
    }
    // The method is judged first: the seed's COPY request carries no ids and still gets
    // INVALID_REQUEST_METHOD, from the gateway, before any authentication.
    if method != Method::POST {
        return call.reject(Reject::InvalidRequestMethod);
    }
    // One credit whatever the number of ids (not in Zoho's credit table, so its default).
    let admission = match call.admit(1).await {
        Ok(admission) => admission,
        Err(answer) => return answer,
    };
    let Some(spec) = shared.modules.get(&module) else {
        return call.reject_at(&admission, Reject::InvalidModule).await;
    };
    let limit = shared.config.field_limit(&module);
    let mut counts = [0u64; CODE_COUNT];
    let echo = shared.echo(&headers);
    let work = Call {
        shared: &shared,
        spec,
        field_limit: limit,
        echo: echo.as_deref(),
    };
    let (status, body) = work.process(&body, &mut counts);
    let body = shared.buffers.body(body);
    call.answer(&admission, status, body, &counts).await
}

/// `GET .../{module}/actions/mass_update?job_id=J`: a scheduled job's progress, in Zoho's
/// shape `{"data":[{"Status", "Total_Count", "Updated_Count", "Not_Updated_Count",
/// "Failed_Count"}]}`. A poll costs one credit (Zoho's credit table does not list it: "all
/// other APIs"), meets neither the rate nor the concurrency limit, and draws no fault.
fn job_status(call: &ApiCall<'_>, module: &str, query: Option<&str>) -> Response {
    let shared = call.shared;
    let expiry = match call.authenticate() {
        Ok(expiry) => expiry,
        Err(answer) => return answer,
    };
    let credits = match shared.charge(METADATA_CREDITS) {
        Ok(credits) => credits,
        Err(reject) => return call.reject(reject),
    };
    if !shared.modules.contains_key(module) {
        return call.reject(Reject::InvalidModule);
    }
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let (status, body) = match params.get("job_id") {
        None => (
            StatusCode::BAD_REQUEST,
            json!({
                "code": "REQUIRED_PARAM_MISSING",
                "details": {"param": "job_id"},
                "message": "One of the expected parameter is missing",
                "status": "error",
            }),
        ),
        Some(job_id) => match shared.jobs.status(job_id) {
            Some(job) if job.module == module => (StatusCode::OK, json!({"data": [job.to_zoho()]})),
            _ => (
                StatusCode::BAD_REQUEST,
                json!({
                    "code": "INVALID_DATA",
                    "details": {"param_name": "job_id"},
                    "message": "the id given seems to be invalid",
                    "status": "error",
                }),
            ),
        },
    };
    zoho_response(
        status,
        json_bytes(&body).into(),
        HeaderProfile::Api,
        Some(expiry),
        credits,
    )
}

/// A one-entry `{"data":[...]}` answer for an error about the whole call. The seed answers
/// these with HTTP 200, and so does the mock.
fn call_error(
    code: Code,
    details: Value,
    message: &str,
    counts: &mut [u64; CODE_COUNT],
) -> (StatusCode, Vec<u8>) {
    counts[code as usize] += 1;
    let body = json!({"data": [{
        "code": code.as_str(),
        "details": details,
        "message": message,
        "status": "error",
    }]});
    (StatusCode::OK, json_bytes(&body))
}

/// One admitted call to a known module.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    spec: &'a ModuleSpec,
    field_limit: usize,
    /// What to repeat of the request in a 400 answer (echo mode).
    echo: Option<&'a str>,
}

/// Judges one value against its field: its type, then, for an owner lookup, whether the user
/// exists (Zoho refuses an owner that is not a user of the org).
pub(crate) fn judge(field: &FieldSpec, value: &Value) -> Result<(), ValueError> {
    field.check(value)?;
    if field.data_type == "ownerlookup" && !value.is_null() {
        let id = lookup_id(value).ok_or(ValueError::Type)?;
        user_name(&id).ok_or(ValueError::UnknownLookup)?;
    }
    Ok(())
}

/// The value as the record keeps it: a lookup given by a numeric id is stored with the id as a
/// string (and an owner with the user's name), as Zoho answers it on a read.
pub(crate) fn normalise(field: &FieldSpec, value: &Value) -> Value {
    match (field.data_type.as_str(), lookup_id(value)) {
        ("ownerlookup", Some(id)) => json!({"name": user_name(&id), "id": id}),
        ("lookup", Some(id)) => json!({"id": id}),
        _ => value.clone(),
    }
}

impl Call<'_> {
    /// Validates the body, applies it (or schedules it) and writes the answer. Call-level
    /// checks come in the order Zoho's documentation lists them: fields first, then ids.
    fn process(&self, raw: &[u8], counts: &mut [u64; CODE_COUNT]) -> (StatusCode, Vec<u8>) {
        let body = match serde_json::from_slice::<MassUpdateBody>(raw) {
            Ok(body) => body,
            Err(_) => {
                // Zoho's exact words for a body that is not the expected JSON are not in the
                // seed or the docs; this mirrors its INVALID_DATA style.
                counts[Code::InvalidData as usize] += 1;
                let message = "the given body is not a valid JSON for this request";
                let body = json!({
                    "code": "INVALID_DATA",
                    "details": {},
                    "message": match self.echo {
                        Some(echo) => format!("{message} ({echo})"),
                        None => message.to_string(),
                    },
                    "status": "error",
                });
                return (StatusCode::BAD_REQUEST, json_bytes(&body));
            }
        };
        let data = body.data.as_deref().unwrap_or(&[]);
        if data.len() > 1 {
            // Zoho documents exactly one object; silently using the first would hide a client
            // bug.
            return call_error(
                Code::InvalidData,
                json!({"expected_count": 1}),
                "only one data object is allowed in a mass update",
                counts,
            );
        }
        let values = match data.first() {
            Some(values) if !values.is_empty() => values,
            _ => return call_error(Code::InvalidData, json!({}), "No field found", counts),
        };
        if values.len() > self.field_limit {
            return call_error(
                Code::LimitExceeded,
                json!({"limit": self.field_limit}),
                "Max field limit exceeded",
                counts,
            );
        }
        let mut fields: Vec<(&String, &Value, &FieldSpec)> = Vec::with_capacity(values.len());
        for (name, value) in values {
            match self.spec.fields.get(name) {
                Some(field) if field.updatable() => fields.push((name, value, field)),
                _ => {
                    return call_error(
                        Code::InvalidData,
                        json!({"api_name": name}),
                        "This field cannot be updated in the Mass Update",
                        counts,
                    )
                }
            }
        }
        // The values are the same for every id, so they are judged once.
        let bad_value = fields
            .iter()
            .find_map(|(_, value, field)| judge(field, value).err().map(|e| (*field, e)));
        let writes: Vec<FieldWrite> = fields
            .iter()
            .map(|(name, value, field)| {
                (
                    (*name).clone(),
                    normalise(field, value),
                    field.is_multiselect(),
                )
            })
            .collect();
        let over_write = body.over_write.unwrap_or(false);
        let ids = body.ids.as_deref().filter(|ids| !ids.is_empty());
        let cvid = body.cvid.as_ref().filter(|cvid| !cvid.is_null());
        match (ids, cvid) {
            // Zoho documents the two modes as exclusive; its words for a body with both are
            // not documented, so the mock names the parameter it will not take.
            (Some(_), Some(_)) => call_error(
                Code::InvalidData,
                json!({"param_name": "cvid"}),
                "ids and cvid cannot be given together",
                counts,
            ),
            (None, Some(cvid)) => self.schedule(
                cvid,
                body.territory.as_ref(),
                bad_value,
                writes,
                over_write,
                counts,
            ),
            (None, None) => call_error(
                Code::MandatoryNotFound,
                json!({}),
                "required field not found",
                counts,
            ),
            (Some(ids), None) => self.update_ids(ids, bad_value, &writes, over_write, counts),
        }
    }

    /// The `ids` mode: every id is updated now and answered in its own entry.
    fn update_ids(
        &self,
        ids: &[RecordId<'_>],
        bad_value: Option<(&FieldSpec, ValueError)>,
        writes: &[FieldWrite],
        over_write: bool,
        counts: &mut [u64; CODE_COUNT],
    ) -> (StatusCode, Vec<u8>) {
        if ids.len() > MAX_IDS_PER_CALL {
            // The docs' LIMIT_EXCEEDED for mass update says "Record count exceeded" (for the
            // 50,000 of the cvid mode); the same words with the 500 of the ids mode are used
            // here.
            return call_error(
                Code::LimitExceeded,
                json!({"limit": MAX_IDS_PER_CALL}),
                "Record count exceeded",
                counts,
            );
        }
        let apply: Vec<(&String, &Value, bool)> =
            writes.iter().map(|(n, v, m)| (n, v, *m)).collect();
        let modified = format_time(chrono::Utc::now().timestamp());
        let shared = self.shared;
        let mut out = shared.buffers.take(16 + ids.len() * 320);
        out.extend_from_slice(b"{\"data\":[");
        let (mut succeeded, mut deferred, mut failed) = (0usize, 0usize, 0usize);
        let config = &shared.config;
        let mut store = lock(&shared.store);
        for (i, RecordId(id)) in ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let Some(index) = store.find(id) else {
                failed += 1;
                counts[Code::InvalidData as usize] += 1;
                write_invalid_id(&mut out, id);
                continue;
            };
            // A bad value fails every known id with the per-record INVALID_DATA Zoho gives.
            if let Some((field, error)) = bad_value {
                failed += 1;
                counts[Code::InvalidData as usize] += 1;
                write_bad_value(&mut out, field, error, id);
                continue;
            }
            match attempt(&mut store, index, &apply, over_write, &modified, config) {
                Attempt::Applied => {
                    succeeded += 1;
                    counts[Code::Success as usize] += 1;
                    write_success(&mut out, &modified, &store.records[index].created_time, id);
                }
                Attempt::Locked => {
                    deferred += 1;
                    counts[Code::RecordLocked as usize] += 1;
                    write_locked(&mut out, id);
                }
                Attempt::NotApproved => {
                    deferred += 1;
                    counts[Code::NotApproved as usize] += 1;
                    write_not_approved(&mut out, id);
                }
            }
        }
        drop(store);
        out.extend_from_slice(b"]}");
        (status_for(succeeded, deferred, failed), out)
    }

    /// The scheduled mode: the update is applied in the background over the records of the
    /// custom view `cvid`, and the answer carries the job id to poll.
    fn schedule(
        &self,
        cvid: &Value,
        territory: Option<&Value>,
        bad_value: Option<(&FieldSpec, ValueError)>,
        writes: Vec<FieldWrite>,
        over_write: bool,
        counts: &mut [u64; CODE_COUNT],
    ) -> (StatusCode, Vec<u8>) {
        let cvid = match cvid {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => n.as_u64().map(|n| n.to_string()),
            _ => None,
        };
        let Some(view) = cvid.as_deref().and_then(|id| self.spec.view(id)) else {
            return call_error(
                Code::InvalidData,
                json!({"param_name": "cvid"}),
                "the id given seems to be invalid",
                counts,
            );
        };
        if territory.is_some_and(|t| !t.is_null() && lookup_id(t).is_none()) {
            return call_error(
                Code::InvalidData,
                json!({"param_name": "territory"}),
                "invalid data",
                counts,
            );
        }
        // With no record to name, a bad value is an error about the whole call.
        if let Some((field, error)) = bad_value {
            let mut details = json!({"api_name": field.api_name});
            match error {
                ValueError::Type => details["expected_data_type"] = json!(field.data_type),
                ValueError::TooLong => details["maximum_length"] = json!(field.length),
                ValueError::UnknownLookup => {}
            }
            return call_error(Code::InvalidData, details, "invalid data", counts);
        }
        let top_level = |code: Code, message: &str, counts: &mut [u64; CODE_COUNT]| {
            counts[code as usize] += 1;
            let body = json!({"code": code.as_str(), "details": {}, "message": message, "status": "error"});
            (StatusCode::BAD_REQUEST, json_bytes(&body))
        };
        match Jobs::schedule(self.shared, view, writes, over_write) {
            Ok(job_id) => {
                counts[Code::Success as usize] += 1;
                let body = json!({"data": [{
                    "code": "SUCCESS",
                    "details": {"job_id": job_id},
                    "message": "mass update scheduled successfully",
                    "status": "success",
                }]});
                (StatusCode::OK, json_bytes(&body))
            }
            Err(Refusal::Empty) => {
                top_level(Code::NoRecordsFound, "no record found to update", counts)
            }
            Err(Refusal::AlreadyScheduled) => top_level(
                Code::AlreadyScheduled,
                "Already a Mass Action scheduler is running for the given cvid",
                counts,
            ),
            Err(Refusal::TooMany) => call_error(
                Code::LimitExceeded,
                json!({"limit": MAX_RECORDS_PER_JOB}),
                "Record count exceeded",
                counts,
            ),
        }
    }
}

fn attempt(
    store: &mut Store,
    index: usize,
    apply: &[(&String, &Value, bool)],
    over_write: bool,
    modified: &str,
    config: &MockConfig,
) -> Attempt {
    let record = &mut store.records[index];
    let outcome = record.try_pass(config.unlock_after, config.approve_after);
    if outcome == Attempt::Applied {
        record.apply(apply, over_write, modified);
    }
    outcome
}

/// 200 when every record succeeded, 207 when outcomes are mixed, 400 when every record failed
/// for good. Records only locked or not yet approved are states that pass, and the seed
/// answers a call where every record is in such a state with 200, so that case stays 200.
fn status_for(succeeded: usize, deferred: usize, failed: usize) -> StatusCode {
    match (succeeded > 0, deferred > 0, failed > 0) {
        (true, false, false) | (false, true, false) | (false, false, false) => StatusCode::OK,
        (false, false, true) => StatusCode::BAD_REQUEST,
        _ => StatusCode::MULTI_STATUS,
    }
}

/// Writes `s` as a JSON string, copying it raw when it needs no escapes (always, for the
/// digit ids a well-behaved client sends).
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn write_success(out: &mut Vec<u8>, modified: &str, created: &str, id: &str) {
    out.extend_from_slice(b"{\"code\":\"SUCCESS\",\"details\":{\"Modified_Time\":\"");
    out.extend_from_slice(modified.as_bytes());
    out.extend_from_slice(b"\",\"Modified_By\":");
    out.extend_from_slice(USER.as_bytes());
    out.extend_from_slice(b",\"Created_Time\":\"");
    out.extend_from_slice(created.as_bytes());
    // `id` named a record, so it is digits only and needs no escaping.
    out.extend_from_slice(b"\",\"id\":\"");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\",\"Created_By\":");
    out.extend_from_slice(USER.as_bytes());
    out.extend_from_slice(b"},\"message\":\"record updated\",\"status\":\"success\"}");
}

fn write_invalid_id(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(b"{\"code\":\"INVALID_DATA\",\"details\":{\"id\":");
    write_str(out, id);
    out.extend_from_slice(
        b"},\"message\":\"the id given seems to be invalid\",\"status\":\"error\"}",
    );
}

fn write_bad_value(out: &mut Vec<u8>, field: &FieldSpec, error: ValueError, id: &str) {
    out.extend_from_slice(b"{\"code\":\"INVALID_DATA\",\"details\":{\"api_name\":");
    write_str(out, &field.api_name);
    out.extend_from_slice(b",\"id\":");
    write_str(out, id);
    match error {
        ValueError::Type => {
            out.extend_from_slice(b",\"expected_data_type\":");
            write_str(out, &field.data_type);
        }
        ValueError::TooLong => {
            out.extend_from_slice(b",\"maximum_length\":");
            out.extend_from_slice(field.length.to_string().as_bytes());
        }
        // Well-formed, but nobody by that id: Zoho's details for this case are not
        // documented, so only the field and the record are named.
        ValueError::UnknownLookup => {}
    }
    out.extend_from_slice(b"},\"message\":\"invalid data\",\"status\":\"error\"}");
}

fn write_locked(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(
        b"{\"code\":\"RECORD_LOCKED\",\"details\":{\"action\":\"zia_vision_processing\",\"id\":",
    );
    write_str(out, id);
    // The seed's RECORD_LOCKED answer carries the NOT_APPROVED wording; it is copied as is.
    out.extend_from_slice(
        b"},\"message\":\"cannot update record that is not approved yet\",\"status\":\"error\"}",
    );
}

fn write_not_approved(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(b"{\"code\":\"NOT_APPROVED\",\"details\":{\"id\":");
    write_str(out, id);
    out.extend_from_slice(
        b"},\"message\":\"cannot update record that is not approved yet\",\"status\":\"error\"}",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_outcomes() {
        assert_eq!(status_for(2, 0, 0), StatusCode::OK);
        assert_eq!(status_for(1, 0, 1).as_u16(), 207);
        assert_eq!(status_for(1, 1, 0).as_u16(), 207);
        assert_eq!(status_for(0, 0, 2), StatusCode::BAD_REQUEST);
        assert_eq!(status_for(0, 1, 0), StatusCode::OK);
        assert_eq!(status_for(0, 1, 1).as_u16(), 207);
    }

    #[test]
    fn written_entries_are_json() {
        let mut out = b"[".to_vec();
        write_success(&mut out, "2021-05-12T07:26:48+00:00", "x", "1");
        out.push(b',');
        write_invalid_id(&mut out, "a\"b");
        out.push(b']');
        let parsed: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(parsed[1]["details"]["id"], "a\"b");
        assert_eq!(
            parsed[0]["details"]["Modified_By"]["name"],
            "Patricia Boyle"
        );
    }
}
