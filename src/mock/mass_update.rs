//! `POST /crm/{version}/{module}/actions/mass_update`: validation in Zoho's order, the apply,
//! and a response body written as bytes, since this endpoint must answer thousands of 500-id
//! calls a second.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::schema::{FieldSpec, ModuleSpec, ValueError};
use super::server::{
    drop_connection, json_bytes, lock, zoho_response, Code, ConnAbort, HeaderProfile, InFlight,
    MassUpdatePath, Reject, Shared, CODE_COUNT,
};
use super::store::{format_time, Attempt, Store};
use super::{MockConfig, MAX_IDS_PER_CALL};

/// The user the mock's records were created and are modified by (the seed's).
const USER: &str = r#"{"name":"Patricia Boyle","id":"738964000000291009"}"#;
/// Spreads request sequence numbers over the seed space so neighbours draw unrelated faults.
const FAULT_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Deserialize)]
struct MassUpdateBody<'a> {
    #[serde(default)]
    data: Option<Vec<Map<String, Value>>>,
    #[serde(borrow, default)]
    ids: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    over_write: Option<bool>,
}

/// What the seeded draw decided for one admitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Internal,
    DropBefore,
    Garbage,
    DropAfter,
}

/// The latency and fault of admitted call number `seq`: a pure function of the seed and `seq`,
/// so a run with the same seed and the same call order sees the same faults.
fn draw(config: &MockConfig, seq: u64) -> (Duration, Fault) {
    let mut rng = StdRng::seed_from_u64(config.seed ^ seq.wrapping_mul(FAULT_SALT));
    let spread = config.latency_spread.min(config.latency_mean);
    let latency = if spread.is_zero() {
        config.latency_mean
    } else {
        let low = config.latency_mean - spread;
        low + spread.mul_f64(2.0 * rng.random::<f64>())
    };
    // One roll against consecutive bands, so the shares add up as configured.
    let roll: f64 = rng.random();
    let bands = [
        (config.fail_500_rate, Fault::Internal),
        (config.drop_before_rate, Fault::DropBefore),
        (config.garbage_rate, Fault::Garbage),
        (config.drop_after_rate, Fault::DropAfter),
    ];
    let mut edge = 0.0;
    let mut fault = Fault::None;
    for (share, band) in bands {
        edge += share;
        if roll < edge {
            fault = band;
            break;
        }
    }
    (latency, fault)
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((_version, module)): MassUpdatePath,
    headers: HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    body: Bytes,
) -> Response {
    let in_flight = InFlight::enter(&shared);
    let reject = |r: Reject| {
        shared.count(r.code(), 1);
        r.response()
    };
    // The method is judged first: the seed's COPY request carries no ids and still gets
    // INVALID_REQUEST_METHOD, from the gateway, before any authentication.
    if method != Method::POST {
        return reject(Reject::InvalidRequestMethod);
    }
    let expiry = match shared.authenticate(&headers) {
        Ok(expiry) => expiry,
        Err(r) => return reject(r),
    };
    let credits = match shared.admit() {
        Ok(credits) => credits,
        Err(r) => return reject(r),
    };
    let seq = shared.admitted.fetch_add(1, Ordering::Relaxed);
    let (latency, fault) = draw(&shared.config, seq);
    // Latency is the server's response time: the answer leaves `latency` after the call
    // arrived, with the mock's own work done inside that time rather than added to it, so
    // that a benchmark's "ideal" (calls / concurrency x latency) measures massup alone.
    let answer_at = tokio::time::Instant::now() + latency;
    match fault {
        Fault::Internal => {
            tokio::time::sleep_until(answer_at).await;
            return reject(Reject::InternalError);
        }
        Fault::DropBefore => {
            tokio::time::sleep_until(answer_at).await;
            shared.count(Code::DroppedBefore, 1);
            return drop_connection(abort, in_flight).await;
        }
        Fault::Garbage => {
            tokio::time::sleep_until(answer_at).await;
            shared.count(Code::Garbage, 1);
            return garbage();
        }
        Fault::None | Fault::DropAfter => {}
    }
    let Some(spec) = shared.modules.get(&module) else {
        tokio::time::sleep_until(answer_at).await;
        return reject(Reject::InvalidModule);
    };
    let limit = shared.config.field_limit(&module);
    let mut counts = [0u64; CODE_COUNT];
    let (status, body) = process(&shared, spec, limit, &body, &mut counts);
    let body = shared.buffers.body(body);
    tokio::time::sleep_until(answer_at).await;
    if fault == Fault::DropAfter {
        shared.count(Code::DroppedAfter, 1);
        return drop_connection(abort, in_flight).await;
    }
    shared.count_all(&counts);
    zoho_response(status, body, HeaderProfile::Api, Some(expiry), credits)
}

/// A 200 whose body is not JSON: what a misbehaving proxy in front of the API can send.
fn garbage() -> Response {
    let mut response = zoho_response(
        StatusCode::OK,
        Bytes::from_static(b"<html><head><title>Zoho CRM</title></head><body>Please wait..."),
        HeaderProfile::Api,
        None,
        None,
    );
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html;charset=utf-8"),
    );
    response
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

/// Validates the body, applies it and writes the answer. Call-level checks come in the order
/// Zoho's documentation lists them: fields first, then ids.
fn process(
    shared: &Shared,
    spec: &ModuleSpec,
    field_limit: usize,
    raw: &[u8],
    counts: &mut [u64; CODE_COUNT],
) -> (StatusCode, Vec<u8>) {
    let Ok(body) = serde_json::from_slice::<MassUpdateBody>(raw) else {
        // Zoho's exact words for a body that is not the expected JSON are not in the seed or
        // the docs; this mirrors its INVALID_DATA style.
        counts[Code::InvalidData as usize] += 1;
        let body = json!({
            "code": "INVALID_DATA",
            "details": {},
            "message": "the given body is not a valid JSON for this request",
            "status": "error",
        });
        return (StatusCode::BAD_REQUEST, json_bytes(&body));
    };
    let data = body.data.as_deref().unwrap_or(&[]);
    if data.len() > 1 {
        // Zoho documents exactly one object; silently using the first would hide a client bug.
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
    if values.len() > field_limit {
        return call_error(
            Code::LimitExceeded,
            json!({"limit": field_limit}),
            "Max field limit exceeded",
            counts,
        );
    }
    let mut fields: Vec<(&String, &Value, &FieldSpec)> = Vec::with_capacity(values.len());
    for (name, value) in values {
        match spec.fields.get(name) {
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
    let ids = match body.ids.as_deref() {
        Some(ids) if !ids.is_empty() => ids,
        _ => {
            return call_error(
                Code::MandatoryNotFound,
                json!({}),
                "required field not found",
                counts,
            )
        }
    };
    if ids.len() > MAX_IDS_PER_CALL {
        // The docs' LIMIT_EXCEEDED for mass update says "Record count exceeded" (for the
        // 50,000 of the cvid mode); the same words with the 500 of the ids mode are used here.
        return call_error(
            Code::LimitExceeded,
            json!({"limit": MAX_IDS_PER_CALL}),
            "Record count exceeded",
            counts,
        );
    }
    // The values are the same for every id, so they are judged once; a bad one fails every
    // known id with the per-record INVALID_DATA Zoho gives.
    let bad_value = fields
        .iter()
        .find_map(|(_, value, field)| field.check(value).err().map(|e| (*field, e)));
    let apply: Vec<(&String, &Value, bool)> = fields
        .iter()
        .map(|(name, value, field)| (*name, *value, field.is_multiselect()))
        .collect();
    let over_write = body.over_write.unwrap_or(false);
    let modified = format_time(chrono::Utc::now().timestamp());

    let mut out = shared.buffers.take(16 + ids.len() * 320);
    out.extend_from_slice(b"{\"data\":[");
    let (mut succeeded, mut deferred, mut failed) = (0usize, 0usize, 0usize);
    let config = &shared.config;
    let mut store = lock(&shared.store);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let Some(index) = store.find(id) else {
            failed += 1;
            counts[Code::InvalidData as usize] += 1;
            write_invalid_id(&mut out, id);
            continue;
        };
        if let Some((field, error)) = bad_value {
            failed += 1;
            counts[Code::InvalidData as usize] += 1;
            write_bad_value(&mut out, field, error, id);
            continue;
        }
        match attempt(&mut store, index, &apply, over_write, config) {
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

fn attempt(
    store: &mut Store,
    index: usize,
    apply: &[(&String, &Value, bool)],
    over_write: bool,
    config: &MockConfig,
) -> Attempt {
    let record = &mut store.records[index];
    let outcome = record.try_pass(config.unlock_after, config.approve_after);
    if outcome == Attempt::Applied {
        record.apply(apply, over_write);
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
    fn the_fault_draw_is_a_function_of_seed_and_sequence() {
        let config = MockConfig {
            fail_500_rate: 0.25,
            drop_before_rate: 0.25,
            garbage_rate: 0.25,
            latency_mean: Duration::from_millis(10),
            latency_spread: Duration::from_millis(5),
            ..MockConfig::default()
        };
        let a: Vec<_> = (0..200).map(|s| draw(&config, s)).collect();
        let b: Vec<_> = (0..200).map(|s| draw(&config, s)).collect();
        assert_eq!(a, b);
        for (latency, _) in &a {
            assert!(*latency >= Duration::from_millis(5) && *latency <= Duration::from_millis(15));
        }
        for fault in [
            Fault::Internal,
            Fault::DropBefore,
            Fault::Garbage,
            Fault::None,
        ] {
            assert!(a.iter().any(|(_, f)| *f == fault), "{fault:?} never drawn");
        }
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
