//! Upsert Records (`POST /crm/{version}/{Module}/upsert`), Insert Records (`POST
//! /crm/{version}/{Module}`) and Delete Records (`DELETE /crm/{version}/{Module}?ids=...`),
//! over the same store, limits, prices and faults as Update Records: a created record is a
//! record of the store like any other (Get Records, COQL and Update Records see it), and a
//! deleted one is gone from all of them.
//!
//! Upsert: each record of `data` is looked for by the `duplicate_check_fields` in order (left
//! out: the module's system duplicate-check field, Email for Leads and Contacts,
//! Account_Name for Accounts, Deal_Name for Deals, then the fields the mock's config makes
//! unique). The first field whose value one record holds decides: that record is updated as
//! Update Records would (`"action": "update"`, `"duplicate_field": FIELD`); a value several
//! records hold is DUPLICATE_DATA and nothing is written; no holder on any field inserts
//! (`"action": "insert"`, `"duplicate_field": null`). An insert needs the module's
//! mandatory fields (MANDATORY_NOT_FOUND naming the first missing one). Zoho writes `action`
//! and `duplicate_field` beside `code` in each entry, not inside `details` (its upsert page's
//! example answer). Where the pages are silent the choice is the mock's
//! (docs/ZOHO_API_NOTES.md).

use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::call::ApiCall;
use super::mass_update::normalise;
use super::metadata::system_mandatory;
use super::records::{entry, top_level, user, Refusal, Target, Update};
use super::server::{json_bytes, lock, Code, ConnAbort, Endpoint, Reject, Shared, CODE_COUNT};
use super::store::{format_time, Store};

/// The most ids one Delete Records call may name (Zoho's delete-records page: 100).
pub const MAX_DELETE_IDS: usize = 100;

/// Which write a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Upsert,
    Insert,
}

/// The module's system duplicate-check field, which Upsert checks when the body names none
/// (ZOHO_API.md, Upsert Records).
fn default_check_field(module: &str) -> Option<&'static str> {
    match module {
        "Leads" | "Contacts" => Some("Email"),
        "Accounts" => Some("Account_Name"),
        "Deals" => Some("Deal_Name"),
        _ => None,
    }
}

pub(crate) async fn upsert(
    shared: &Shared,
    target: Target<'_>,
    headers: &HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    raw: &[u8],
) -> Response {
    write(shared, target, headers, abort, raw, Mode::Upsert).await
}

pub(crate) async fn insert(
    shared: &Shared,
    target: Target<'_>,
    headers: &HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    raw: &[u8],
) -> Response {
    write(shared, target, headers, abort, raw, Mode::Insert).await
}

async fn write(
    shared: &Shared,
    target: Target<'_>,
    headers: &HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    raw: &[u8],
    mode: Mode,
) -> Response {
    let endpoint = match mode {
        Mode::Upsert => Endpoint::Upsert,
        Mode::Insert => Endpoint::Insert,
    };
    let mut call = ApiCall::enter(shared, endpoint, headers, abort);
    if let Some(redirect) = call.redirect() {
        return redirect;
    }
    // Priced by the records it carries, as Update Records (1 credit per 10).
    let body = match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(body)) => Some(body),
        _ => None,
    };
    let records = body
        .as_ref()
        .and_then(|b| b.get("data"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let admission = match call.admit_write(records).await {
        Ok(admission) => admission,
        Err(answer) => return answer,
    };
    let Some(spec) = shared.modules.get(target.module) else {
        return call.reject_at(&admission, Reject::InvalidModule).await;
    };
    let echo = shared.echo(headers);
    let update = Update {
        shared,
        spec,
        target,
        echo: echo.as_deref(),
    };
    let mut counts = [0u64; CODE_COUNT];
    let (status, body) = process(&update, body.as_ref(), mode, &mut counts);
    call.answer(&admission, status, json_bytes(&body).into(), &counts)
        .await
}

fn process(
    update: &Update<'_>,
    body: Option<&Map<String, Value>>,
    mode: Mode,
    counts: &mut [u64; CODE_COUNT],
) -> (StatusCode, Value) {
    let bad_request =
        |code: Code, details: Value, message: &str, counts: &mut [u64; CODE_COUNT]| {
            counts[code as usize] += 1;
            (StatusCode::BAD_REQUEST, top_level(code, details, message))
        };
    let Some(body) = body else {
        return bad_request(
            Code::InvalidData,
            json!({}),
            "the given body is not a valid JSON for this request",
            counts,
        );
    };
    let data = match super::records::data_entries(body, counts) {
        Ok(data) => data,
        Err(answer) => return answer,
    };
    let module = update.target.module;
    let checks: Vec<String> = match (mode, body.get("duplicate_check_fields")) {
        (Mode::Insert, _) => Vec::new(),
        (Mode::Upsert, None | Some(Value::Null)) => {
            let mut fields: Vec<String> = default_check_field(module)
                .into_iter()
                .map(str::to_string)
                .collect();
            for name in update.spec.field_order.iter() {
                if update.shared.config.is_unique(module, name) && !fields.contains(name) {
                    fields.push(name.clone());
                }
            }
            fields
        }
        (Mode::Upsert, Some(Value::Array(names))) => {
            let names: Option<Vec<String>> = names
                .iter()
                .map(|n| {
                    n.as_str()
                        .filter(|n| update.spec.fields.contains_key(*n))
                        .map(str::to_string)
                })
                .collect();
            match names {
                Some(names) if !names.is_empty() => names,
                _ => {
                    return bad_request(
                        Code::InvalidData,
                        json!({"api_name": "duplicate_check_fields"}),
                        "invalid data",
                        counts,
                    )
                }
            }
        }
        (Mode::Upsert, Some(_)) => {
            return bad_request(
                Code::InvalidData,
                json!({"api_name": "duplicate_check_fields", "expected_data_type": "jsonarray"}),
                "invalid data",
                counts,
            )
        }
    };
    let now = format_time(chrono::Utc::now().timestamp());
    let mut store = lock(&update.shared.store);
    let mut succeeded = 0usize;
    let mut entries = Vec::with_capacity(data.len());
    for record in data {
        match one(update, &mut store, record, &checks, &now) {
            Ok((details, message, action, duplicate_field)) => {
                succeeded += 1;
                let mut answer = entry(Code::Success, details, message, counts);
                if mode == Mode::Upsert {
                    answer["action"] = json!(action);
                    answer["duplicate_field"] = json!(duplicate_field);
                }
                entries.push(answer);
            }
            Err(Refusal(code, details, message)) => {
                entries.push(entry(code, details, message, counts))
            }
        }
    }
    drop(store);
    let status = if succeeded == entries.len() {
        // Zoho answers 201 Created when every record was inserted; the mock answers 200 for
        // a call that updated some (as Update Records) and 201 when all were inserted.
        if entries
            .iter()
            .all(|e| e.get("action").is_none_or(|a| a == "insert"))
        {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    } else if succeeded == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::MULTI_STATUS
    };
    (status, json!({ "data": entries }))
}

/// The success of one record: details, message, action and the field that found it.
type Written = (Value, &'static str, &'static str, Option<String>);

fn one(
    update: &Update<'_>,
    store: &mut Store,
    record: &Value,
    checks: &[String],
    now: &str,
) -> Result<Written, Refusal> {
    let Some(values) = record.as_object() else {
        return Err(Refusal(
            Code::InvalidData,
            json!({"expected_data_type": "jsonobject"}),
            "invalid data",
        ));
    };
    let module = update.target.module;
    for field in checks {
        let Some(value) = values.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        let fold_case = update
            .spec
            .fields
            .get(field)
            .is_some_and(|f| matches!(f.data_type.as_str(), "email" | "text"));
        let holders = store.holders(field, value, fold_case, usize::MAX);
        match holders.as_slice() {
            [] => continue,
            [found] => {
                // That record is updated as Update Records would update it.
                let id = store.records[*found].id.clone();
                let mut with_id = Map::with_capacity(values.len() + 1);
                with_id.insert("id".into(), Value::String(id));
                for (name, value) in values {
                    if name != "id" {
                        with_id.insert(name.clone(), value.clone());
                    }
                }
                let details = update.one(store, &Value::Object(with_id), now)?;
                return Ok((details, "record updated", "update", Some(field.clone())));
            }
            several => {
                let first = &store.records[several[0]].id;
                return Err(Refusal(
                    Code::DuplicateData,
                    json!({
                        "api_name": field,
                        "id": first,
                        "duplicate_record": {"id": first, "module": {"api_name": module}},
                        "more_records": true,
                    }),
                    "duplicate data",
                ));
            }
        }
    }
    // No record holds any check field's value: a new record.
    let mut writes: Vec<(String, Value)> = Vec::with_capacity(values.len());
    let mut given: HashMap<&str, &Value> = HashMap::new();
    for (name, value) in values {
        if name == "id" || name == "$append_values" {
            continue;
        }
        let field = update.field(store, name, value, "")?;
        given.insert(name.as_str(), value);
        writes.push((name.clone(), normalise(field, value)));
    }
    for name in &update.spec.field_order {
        if !system_mandatory(module, name) {
            continue;
        }
        let present = given.get(name.as_str()).is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        });
        if !present {
            return Err(Refusal(
                Code::MandatoryNotFound,
                json!({"api_name": name}),
                "required field not found",
            ));
        }
    }
    for (name, value) in &writes {
        if value.is_null() || !update.shared.config.is_unique(module, name) {
            continue;
        }
        let fold_case = update.spec.fields[name].data_type == "email";
        if let Some(other) = store.holders(name, value, fold_case, usize::MAX).first() {
            let other = &store.records[*other].id;
            return Err(Refusal(
                Code::DuplicateData,
                json!({
                    "api_name": name,
                    "id": other,
                    "duplicate_record": {"id": other, "module": {"api_name": module}},
                    "more_records": false,
                }),
                "duplicate data",
            ));
        }
    }
    let at = store.create(writes, now);
    let details = json!({
        "Modified_Time": now,
        "Modified_By": user(),
        "Created_Time": now,
        "id": store.records[at].id,
        "Created_By": user(),
    });
    Ok((details, "record added", "insert", None))
}

/// Delete Records: `DELETE /crm/{version}/{Module}?ids=a,b,...`, one entry per id in request
/// order: SUCCESS "record deleted", or INVALID_DATA for an id that names no record (one
/// deleted already included). One credit a call (the credit table's "all other APIs").
pub(crate) async fn delete(
    shared: &Shared,
    target: Target<'_>,
    query: Option<&str>,
    headers: &HeaderMap,
    abort: Option<Extension<ConnAbort>>,
) -> Response {
    let mut call = ApiCall::enter(shared, Endpoint::Delete, headers, abort);
    if let Some(redirect) = call.redirect() {
        return redirect;
    }
    let admission = match call.admit(1).await {
        Ok(admission) => admission,
        Err(answer) => return answer,
    };
    if !shared.modules.contains_key(target.module) {
        return call.reject_at(&admission, Reject::InvalidModule).await;
    }
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let ids: Vec<&str> = params
        .get("ids")
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut counts = [0u64; CODE_COUNT];
    let (status, body) = if ids.is_empty() {
        counts[Code::RequiredParamMissing as usize] += 1;
        (
            StatusCode::BAD_REQUEST,
            top_level(
                Code::RequiredParamMissing,
                json!({"param_name": "ids"}),
                "One of the expected parameter is missing",
            ),
        )
    } else if ids.len() > MAX_DELETE_IDS {
        counts[Code::LimitExceeded as usize] += 1;
        (
            StatusCode::BAD_REQUEST,
            top_level(
                Code::LimitExceeded,
                json!({"limit": MAX_DELETE_IDS, "param_name": "ids"}),
                "limit exceeded",
            ),
        )
    } else {
        let mut store = lock(&shared.store);
        let mut deleted = 0usize;
        let entries: Vec<Value> = ids
            .iter()
            .map(|id| {
                if store.delete(id) {
                    deleted += 1;
                    entry(
                        Code::Success,
                        json!({ "id": id }),
                        "record deleted",
                        &mut counts,
                    )
                } else {
                    entry(
                        Code::InvalidData,
                        json!({ "id": id }),
                        "the id given seems to be invalid",
                        &mut counts,
                    )
                }
            })
            .collect();
        let status = if deleted == entries.len() {
            StatusCode::OK
        } else if deleted == 0 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::MULTI_STATUS
        };
        (status, json!({ "data": entries }))
    };
    call.answer(&admission, status, Bytes::from(json_bytes(&body)), &counts)
        .await
}
