//! Update Records (`PUT /crm/{version}/{Module}`, and `.../{Module}/{id}` for one record) and
//! Get Records (`GET /crm/{version}/{Module}?ids=...&fields=...`, and `.../{Module}/{id}`;
//! without ids a listing by `page` to 2,000 records, then by `page_token`), over the same
//! store, gates, limits and faults as mass_update. Every write lands in the records' memory,
//! so Get Records and COQL read back what mass_update and Update Records wrote. Where Zoho's
//! pages are silent the choice is the mock's (docs/ZOHO_API_NOTES.md).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::call::{version_number, Admission, ApiCall};
use super::mass_update::{judge, normalise};
use super::metadata::SEED_USER;
use super::schema::{lookup_id, FieldSpec, ModuleSpec, ValueError};
use super::server::{json_bytes, lock, Code, ConnAbort, Endpoint, Reject, Shared, CODE_COUNT};
use super::store::{format_time, Attempt, Store};
use super::{MAX_GET_FIELDS, MAX_GET_IDS, MAX_UPDATE_RECORDS};

/// What `trigger` may name (Zoho's Update Records body: `approval`, `workflow`, `blueprint`;
/// newer versions add `pathfinder` and `orchestration`).
const TRIGGERS: [&str; 5] = [
    "workflow",
    "approval",
    "blueprint",
    "pathfinder",
    "orchestration",
];

/// Records a write call (Insert, Update, Upsert Records) carries per credit it costs.
pub const RECORDS_PER_CREDIT: usize = 10;

/// Credits an Insert, Update or Upsert Records call carrying `records` records costs: one per
/// 10 records or part of 10, at least one (Zoho's API limits page, v2 to v8, "credit
/// deduction" table: a 100-record call costs 10). At most 10, the most the same page says such
/// a call is charged, so a body over the 100-record limit costs 10 (and is refused after).
pub fn credits(records: usize) -> u64 {
    records
        .min(MAX_UPDATE_RECORDS)
        .div_ceil(RECORDS_PER_CREDIT)
        .max(1) as u64
}

/// `/crm/{version}/{module}`: GET reads records, any other method is an update.
pub(crate) async fn collection(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((version, module)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    body: Bytes,
) -> Response {
    let target = Target {
        version: &version,
        module: &module,
        id: None,
    };
    if method == Method::GET {
        get_records(&shared, target, query.as_deref(), &headers, abort).await
    } else if method == Method::POST {
        super::upsert::insert(&shared, target, &headers, abort, &body).await
    } else if method == Method::DELETE {
        super::upsert::delete(&shared, target, query.as_deref(), &headers, abort).await
    } else {
        update_records(&shared, &method, target, &headers, abort, &body).await
    }
}

/// `/crm/{version}/{module}/{id}`: one record, read or updated.
pub(crate) async fn single(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((version, module, id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    body: Bytes,
) -> Response {
    if id == "upsert" && method == Method::POST {
        let target = Target {
            version: &version,
            module: &module,
            id: None,
        };
        return super::upsert::upsert(&shared, target, &headers, abort, &body).await;
    }
    let target = Target {
        version: &version,
        module: &module,
        id: Some(&id),
    };
    if method == Method::GET {
        get_records(&shared, target, query.as_deref(), &headers, abort).await
    } else {
        update_records(&shared, &method, target, &headers, abort, &body).await
    }
}

/// What the path names.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub version: &'a str,
    pub module: &'a str,
    /// The record of `.../{Module}/{id}`.
    pub id: Option<&'a str>,
}

/// A top-level `{code, details, message, status}` error.
/// A write's `data` array (Update, Upsert and Insert Records alike), or the answer refusing
/// it: missing or empty (MANDATORY_NOT_FOUND), or more than 100 records (Zoho's own example
/// answer, crm-oas v8 updateRecord, response-400-limitexceedederror).
pub(crate) fn data_entries<'b>(
    body: &'b Map<String, Value>,
    counts: &mut [u64; CODE_COUNT],
) -> Result<&'b Vec<Value>, (StatusCode, Value)> {
    let data = match body.get("data") {
        Some(Value::Array(data)) if !data.is_empty() => data,
        _ => {
            counts[Code::MandatoryNotFound as usize] += 1;
            let body = top_level(
                Code::MandatoryNotFound,
                json!({"api_name": "data"}),
                "required field not found",
            );
            return Err((StatusCode::BAD_REQUEST, body));
        }
    };
    if data.len() > MAX_UPDATE_RECORDS {
        counts[Code::LimitExceeded as usize] += 1;
        let body = json!({"data": [{
            "code": "LIMIT_EXCEEDED",
            "details": {"maximum_length": MAX_UPDATE_RECORDS, "api_name": "data"},
            "message": "count of records in your request exceeds the limit",
            "status": "error",
        }]});
        return Err((StatusCode::BAD_REQUEST, body));
    }
    Ok(data)
}

pub(crate) fn top_level(code: Code, details: Value, message: &str) -> Value {
    json!({"code": code.as_str(), "details": details, "message": message, "status": "error"})
}

/// One entry of a `data` array answer, counted.
pub(crate) fn entry(
    code: Code,
    details: Value,
    message: &str,
    counts: &mut [u64; CODE_COUNT],
) -> Value {
    counts[code as usize] += 1;
    let status = if code == Code::Success {
        "success"
    } else {
        "error"
    };
    json!({"code": code.as_str(), "details": details, "message": message, "status": status})
}

/// The user the mock's records are created and modified by, as Zoho's details name a user.
pub(crate) fn user() -> Value {
    json!({"name": SEED_USER.0, "id": SEED_USER.1})
}

// ---------------------------------------------------------------------------------------
// Update Records

async fn update_records(
    shared: &Shared,
    method: &Method,
    target: Target<'_>,
    headers: &HeaderMap,
    abort: Option<Extension<ConnAbort>>,
    raw: &[u8],
) -> Response {
    let mut call = ApiCall::enter(shared, Endpoint::UpdateRecords, headers, abort);
    if let Some(redirect) = call.redirect() {
        return redirect;
    }
    if method != Method::PUT {
        return call.reject(Reject::InvalidRequestMethod);
    }
    // Parsed before admission, so the call can be priced by the records it carries; its errors
    // are answered after. A body the mock cannot read, or one without a `data` array, costs
    // one credit.
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
    let mut counts = [0u64; CODE_COUNT];
    let echo = shared.echo(headers);
    let update = Update {
        shared,
        spec,
        target,
        echo: echo.as_deref(),
    };
    let (status, body) = update.process(body.as_ref(), &mut counts);
    call.answer(&admission, status, json_bytes(&body).into(), &counts)
        .await
}

/// One row of a Bulk Write update job, applied as an Update Records entry would be (the
/// same checks, gates and uniqueness): Ok, or the code and the field Zoho's result file
/// names (`CODE-field`).
pub(crate) fn bulk_update(
    shared: &Shared,
    store: &mut Store,
    version: &str,
    module: &str,
    values: &Map<String, Value>,
    modified: &str,
) -> Result<(), (String, String)> {
    let Some(spec) = shared.modules.get(module) else {
        return Err((Code::InvalidModule.as_str().to_string(), "module".into()));
    };
    let update = Update {
        shared,
        spec,
        target: Target {
            version,
            module,
            id: None,
        },
        echo: None,
    };
    let record = Value::Object(values.clone());
    update
        .one(store, &record, modified)
        .map(|_| ())
        .map_err(|Refusal(code, details, _)| {
            let field = details
                .get("api_name")
                .and_then(Value::as_str)
                .unwrap_or("id")
                .to_string();
            (code.as_str().to_string(), field)
        })
}

pub(crate) struct Update<'a> {
    pub shared: &'a Shared,
    pub spec: &'a ModuleSpec,
    pub target: Target<'a>,
    pub echo: Option<&'a str>,
}

/// Why one record of an Update Records call was refused: the entry's code, details and
/// message.
pub(crate) struct Refusal(pub Code, pub Value, pub &'static str);

impl Update<'_> {
    /// Answers a call whose body is `body` (None: not a JSON object).
    fn process(
        &self,
        body: Option<&Map<String, Value>>,
        counts: &mut [u64; CODE_COUNT],
    ) -> (StatusCode, Value) {
        let bad_request =
            |code: Code, details: Value, message: &str, counts: &mut [u64; CODE_COUNT]| {
                counts[code as usize] += 1;
                (StatusCode::BAD_REQUEST, top_level(code, details, message))
            };
        let body = match body {
            Some(body) => body,
            // Zoho's words for a body that is not JSON are not documented; mass_update's are
            // used (with the Authorization header in echo mode).
            None => {
                let message = "the given body is not a valid JSON for this request";
                let message = match self.echo {
                    Some(echo) => format!("{message} ({echo})"),
                    None => message.to_string(),
                };
                return bad_request(Code::InvalidData, json!({}), &message, counts);
            }
        };
        let trigger = match body.get("trigger") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let names: Option<Vec<String>> = items
                    .iter()
                    .map(|t| {
                        t.as_str()
                            .filter(|t| TRIGGERS.contains(t))
                            .map(str::to_string)
                    })
                    .collect();
                match names {
                    Some(names) => Some(names),
                    None => {
                        return bad_request(
                            Code::InvalidData,
                            json!({"api_name": "trigger", "supported_values": TRIGGERS}),
                            "invalid data",
                            counts,
                        )
                    }
                }
            }
            Some(_) => {
                return bad_request(
                    Code::InvalidData,
                    json!({"api_name": "trigger", "expected_data_type": "jsonarray"}),
                    "invalid data",
                    counts,
                )
            }
        };
        self.shared.record_trigger(trigger);
        let data = match data_entries(body, counts) {
            Ok(data) => data,
            Err(answer) => return answer,
        };
        let modified = format_time(chrono::Utc::now().timestamp());
        let mut store = lock(&self.shared.store);
        let mut succeeded = 0usize;
        let mut entries = Vec::with_capacity(data.len());
        for record in data {
            match self.one(&mut store, record, &modified) {
                Ok(details) => {
                    succeeded += 1;
                    entries.push(entry(Code::Success, details, "record updated", counts));
                }
                Err(Refusal(code, details, message)) => {
                    entries.push(entry(code, details, message, counts))
                }
            }
        }
        drop(store);
        // Zoho's Update Records answers 200 when every record was updated, 207 for mixed
        // outcomes and 400 when none was; locked and not-approved records are among its 400
        // examples (crm-oas v8 updateRecords), unlike mass_update's 200 in the seed.
        let status = if succeeded == entries.len() {
            StatusCode::OK
        } else if succeeded == 0 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::MULTI_STATUS
        };
        (status, json!({ "data": entries }))
    }

    /// Validates one record's entry and applies it, returning the success details.
    pub(crate) fn one(
        &self,
        store: &mut Store,
        record: &Value,
        modified: &str,
    ) -> Result<Value, Refusal> {
        let Some(values) = record.as_object() else {
            return Err(Refusal(
                Code::InvalidData,
                json!({"expected_data_type": "jsonobject"}),
                "invalid data",
            ));
        };
        let id = self.record_id(values)?;
        let Some(index) = store.find(&id) else {
            return Err(Refusal(
                Code::InvalidData,
                json!({ "id": id }),
                "the id given seems to be invalid",
            ));
        };
        let append = self.append_values(values, &id)?;
        let mut writes: Vec<(&String, Value, bool)> = Vec::with_capacity(values.len());
        for (name, value) in values {
            if name == "id" || name == "$append_values" {
                continue;
            }
            let field = self.field(store, name, value, &id)?;
            writes.push((
                name,
                normalise(field, value),
                append.contains(name.as_str()),
            ));
        }
        for (name, value, _) in &writes {
            if value.is_null() || !self.shared.config.is_unique(self.target.module, name) {
                continue;
            }
            let fold_case = self.spec.fields[*name].data_type == "email";
            let holders = store.holders(name, value, fold_case, index);
            if let Some(other) = holders.first() {
                let other = &store.records[*other].id;
                // As Zoho's DUPLICATE_DATA example: details.id names the record that already
                // holds the value, not the record being updated.
                return Err(Refusal(
                    Code::DuplicateData,
                    json!({
                        "api_name": name,
                        "id": other,
                        "duplicate_record": {"id": other, "module": {"api_name": self.target.module}},
                        "more_records": holders.len() > 1,
                    }),
                    "duplicate data",
                ));
            }
        }
        let config = &self.shared.config;
        let record = &mut store.records[index];
        match record.try_pass(config.unlock_after, config.approve_after) {
            Attempt::Locked => {
                return Err(Refusal(
                    Code::RecordLocked,
                    json!({"api_name": "id", "action": "record_locking", "id": id}),
                    "Sorry, you cannot perform this operation as the record is locked.",
                ))
            }
            Attempt::NotApproved => {
                return Err(Refusal(
                    Code::NotApproved,
                    json!({ "id": id }),
                    "Cannot update record that is not approved yet",
                ))
            }
            Attempt::Applied => {}
        }
        // A multi-select is replaced unless `$append_values` names it: `apply` appends only
        // when the flag is set and `over_write` is not.
        let apply: Vec<(&String, &Value, bool)> =
            writes.iter().map(|(n, v, a)| (*n, v, *a)).collect();
        record.apply(&apply, false, modified);
        Ok(json!({
            "Modified_Time": modified,
            "Modified_By": user(),
            "Created_Time": record.created_time,
            "id": id,
            "Created_By": user(),
        }))
    }

    /// The record's id: the path's, else the entry's `id` (a string of digits or a number).
    fn record_id(&self, values: &Map<String, Value>) -> Result<String, Refusal> {
        if let Some(id) = self.target.id {
            return Ok(id.to_string());
        }
        match values.get("id") {
            None | Some(Value::Null) => Err(Refusal(
                Code::MandatoryNotFound,
                json!({"api_name": "id"}),
                "required field not found",
            )),
            Some(Value::String(id)) => Ok(id.clone()),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
            Some(_) => Err(Refusal(
                Code::InvalidData,
                json!({"api_name": "id", "expected_data_type": "bigint"}),
                "invalid data",
            )),
        }
    }

    /// The multi-select fields `$append_values` asks to append to (`{"Field": true}`), from
    /// v3 on; earlier versions leave the key unread and replace (see docs/ZOHO_API_NOTES.md).
    fn append_values<'v>(
        &self,
        values: &'v Map<String, Value>,
        id: &str,
    ) -> Result<HashSet<&'v str>, Refusal> {
        let mut append = HashSet::new();
        if version_number(self.target.version) < 3.0 {
            return Ok(append);
        }
        let refuse = || {
            Refusal(
                Code::InvalidData,
                json!({"api_name": "$append_values", "id": id}),
                "invalid data",
            )
        };
        match values.get("$append_values") {
            None | Some(Value::Null) => {}
            Some(Value::Object(flags)) => {
                for (name, flag) in flags {
                    let multiselect = self
                        .spec
                        .fields
                        .get(name)
                        .is_some_and(FieldSpec::is_multiselect);
                    match flag {
                        Value::Bool(flag) if multiselect => {
                            if *flag {
                                append.insert(name.as_str());
                            }
                        }
                        _ => return Err(refuse()),
                    }
                }
            }
            Some(_) => return Err(refuse()),
        }
        Ok(append)
    }

    /// The field a key names, if Update Records may write `value` to it: any field of the
    /// module that is not read-only (unlike mass_update, email, multi-line and lookup fields
    /// too), with a value of its type; a lookup must name an existing record.
    pub(crate) fn field<'s>(
        &'s self,
        store: &Store,
        name: &str,
        value: &Value,
        id: &str,
    ) -> Result<&'s FieldSpec, Refusal> {
        let Some(field) = self.spec.fields.get(name) else {
            // The message of Zoho's own 207 example for a field it does not know.
            return Err(Refusal(
                Code::InvalidData,
                json!({"api_name": name, "id": id}),
                "the field api name given seems to be invalid",
            ));
        };
        if field.read_only {
            return Err(Refusal(
                Code::InvalidData,
                json!({"api_name": name, "id": id}),
                "invalid data",
            ));
        }
        let mut error = judge(field, value).err();
        if error.is_none() && field.data_type == "lookup" && !value.is_null() {
            let known = lookup_id(value).is_some_and(|target| store.find(&target).is_some());
            if !known {
                error = Some(ValueError::UnknownLookup);
            }
        }
        match error {
            None => Ok(field),
            Some(error) => {
                let mut details = json!({"api_name": name, "id": id});
                match error {
                    ValueError::Type => details["expected_data_type"] = json!(field.data_type),
                    ValueError::TooLong => details["maximum_length"] = json!(field.length),
                    ValueError::UnknownLookup => {}
                }
                Err(Refusal(Code::InvalidData, details, "invalid data"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Get Records

async fn get_records(
    shared: &Shared,
    target: Target<'_>,
    query: Option<&str>,
    headers: &HeaderMap,
    abort: Option<Extension<ConnAbort>>,
) -> Response {
    let mut call = ApiCall::enter(shared, Endpoint::GetRecords, headers, abort);
    if let Some(redirect) = call.redirect() {
        return redirect;
    }
    // One credit a call (Kaizen #60), whatever the number of ids.
    let admission = match call.admit(1).await {
        Ok(admission) => admission,
        Err(answer) => return answer,
    };
    let Some(spec) = shared.modules.get(target.module) else {
        return call.reject_at(&admission, Reject::InvalidModule).await;
    };
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let mut counts = [0u64; CODE_COUNT];
    let (status, body) = match read(shared, spec, target, &params) {
        Ok(Some(body)) => {
            counts[Code::Success as usize] += 1;
            (StatusCode::OK, body)
        }
        Ok(None) => {
            counts[Code::NoContent as usize] += 1;
            (StatusCode::NO_CONTENT, Value::Null)
        }
        Err((code, body)) => {
            counts[code as usize] += 1;
            (StatusCode::BAD_REQUEST, body)
        }
    };
    respond(call, &admission, status, &body, &counts).await
}

/// The answer of an admitted read: a 204 carries no body and no content type.
pub(crate) async fn respond(
    call: ApiCall<'_>,
    admission: &Admission,
    status: StatusCode,
    body: &Value,
    counts: &[u64; CODE_COUNT],
) -> Response {
    let bytes = if status == StatusCode::NO_CONTENT {
        Bytes::new()
    } else {
        json_bytes(body).into()
    };
    let mut response = call.answer(admission, status, bytes, counts).await;
    if response.status() == StatusCode::NO_CONTENT {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
}

/// A refused read: the code to count and the top-level answer.
type ReadError = (Code, Value);

fn limit_exceeded(param: &str, limit: usize) -> ReadError {
    // The shape of Zoho's own example for too many `fields` (crm-oas v8 getRecords,
    // response-400-limitexceeded).
    (
        Code::LimitExceeded,
        top_level(
            Code::LimitExceeded,
            json!({"limit": limit, "param_name": param}),
            "limit exceeded",
        ),
    )
}

fn invalid_param(param: &str, message: &str) -> ReadError {
    (
        Code::InvalidData,
        top_level(Code::InvalidData, json!({ "param_name": param }), message),
    )
}

/// The fields a read answers: `fields=` as given (at most 50, every one a field of the module
/// or `id`), or without it every field of the module.
fn read_fields(
    spec: &ModuleSpec,
    params: &HashMap<String, String>,
) -> Result<Vec<String>, ReadError> {
    let Some(list) = params.get("fields") else {
        return Ok(spec.field_order.clone());
    };
    let names: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() > MAX_GET_FIELDS {
        return Err(limit_exceeded("fields", MAX_GET_FIELDS));
    }
    if names.is_empty() {
        return Err(invalid_param("fields", "invalid data"));
    }
    for name in &names {
        if name != "id" && !spec.fields.contains_key(name) {
            return Err((
                Code::InvalidData,
                top_level(
                    Code::InvalidData,
                    json!({"param_name": "fields", "api_name": name}),
                    "invalid data",
                ),
            ));
        }
    }
    Ok(names)
}

/// A record as a read answers it: `id`, then each asked field's current value (null when no
/// update wrote it and the record was not created with it).
fn row(store: &Store, index: usize, fields: &[String]) -> Value {
    let record = &store.records[index];
    let mut row = Map::with_capacity(fields.len() + 1);
    row.insert("id".into(), Value::String(record.id.clone()));
    for name in fields {
        if name != "id" {
            row.insert(name.clone(), record.value(name));
        }
    }
    Value::Object(row)
}

/// Records a listing reaches by `page` alone; past it only `page_token` goes on (Zoho's Get
/// Records page, v8: "you can fetch only 2000 records with the page parameter").
pub const MAX_DISCRETE_PAGING: usize = 2_000;

/// The first version whose listing answers `info.next_page_token` (ZOHO_API.md: v2.1).
const FIRST_TOKEN_VERSION: f64 = 2.1;

/// The mock's page token: where the next page starts, opaque to a client as Zoho's is. It
/// carries the offset so that the mock keeps no state between calls.
fn page_token(offset: usize) -> String {
    format!("mock-pt-{offset:x}")
}

fn page_token_offset(token: &str) -> Option<usize> {
    usize::from_str_radix(token.strip_prefix("mock-pt-")?, 16).ok()
}

/// A listing (`GET .../{Module}?fields=...&page=N&per_page=M`, or `&page_token=T`): the
/// records in ascending id order (a stable order, as Zoho's default sort is stable), at most
/// 200 a page, `info.more_records` and the page's `count`; from v2.1 a `next_page_token`
/// while more records follow, the only way past [`MAX_DISCRETE_PAGING`] records.
fn listing(
    store: &Store,
    version: &str,
    fields: &[String],
    params: &HashMap<String, String>,
) -> Result<(Vec<Value>, Value), ReadError> {
    let number = |name: &str, default: usize| match params.get(name) {
        None => Ok(default),
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| invalid_param(name, "invalid data")),
    };
    let per_page = number("per_page", 200)?;
    if !(1..=200).contains(&per_page) {
        return Err(invalid_param("per_page", "invalid data"));
    }
    let tokens = version_number(version) >= FIRST_TOKEN_VERSION;
    let (start, page) = match params.get("page_token") {
        Some(token) if tokens => match page_token_offset(token) {
            Some(offset) => (offset, None),
            None => return Err(invalid_param("page_token", "invalid data")),
        },
        _ => {
            let page = number("page", 1)?;
            if page == 0 {
                return Err(invalid_param("page", "invalid data"));
            }
            let start = (page - 1).saturating_mul(per_page);
            if start.saturating_add(per_page) > MAX_DISCRETE_PAGING {
                // Zoho's answer past 2,000 records without a token (Get Records, v8).
                return Err((
                    Code::DiscretePaginationLimitExceeded,
                    top_level(
                        Code::DiscretePaginationLimitExceeded,
                        json!({"limit": MAX_DISCRETE_PAGING}),
                        "you cannot fetch more than 2000 records without page_token; use page_token to fetch more",
                    ),
                ));
            }
            (start, Some(page))
        }
    };
    let mut order: Vec<usize> = (0..store.records.len()).collect();
    order.sort_by_key(|&i| store.records[i].id.parse::<u64>().unwrap_or(u64::MAX));
    let total = order.len();
    let rows: Vec<Value> = order[start.min(total)..]
        .iter()
        .take(per_page)
        .map(|&index| row(store, index, fields))
        .collect();
    let next = start.saturating_add(rows.len());
    let more = next < total;
    let mut info = json!({"per_page": per_page, "count": rows.len(), "more_records": more});
    if let Some(page) = page {
        info["page"] = json!(page);
    }
    if tokens {
        info["next_page_token"] = if more {
            json!(page_token(next))
        } else {
            Value::Null
        };
    }
    Ok((rows, info))
}

/// The body of a read, `None` for 204 No Content.
fn read(
    shared: &Shared,
    spec: &ModuleSpec,
    target: Target<'_>,
    params: &HashMap<String, String>,
) -> Result<Option<Value>, ReadError> {
    let ids: Option<Vec<&str>> = match target.id {
        Some(id) => Some(vec![id]),
        None => params.get("ids").map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .collect()
        }),
    };
    if let Some(ids) = &ids {
        if ids.len() > MAX_GET_IDS {
            return Err(limit_exceeded("ids", MAX_GET_IDS));
        }
        if ids.is_empty() || !ids.iter().all(|id| id.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid_param("ids", "the id given seems to be invalid"));
        }
    }
    let fields = read_fields(spec, params)?;
    let store = lock(&shared.store);
    let (rows, info) = match ids {
        Some(ids) => {
            // Request order, each record once; ids that name no record are left out.
            let mut seen = HashSet::new();
            let rows: Vec<Value> = ids
                .iter()
                .filter(|id| seen.insert(**id))
                .filter_map(|id| store.find(id))
                .map(|index| row(&store, index, &fields))
                .collect();
            let info =
                json!({"per_page": 200, "count": rows.len(), "page": 1, "more_records": false});
            (rows, info)
        }
        None => listing(&store, target.version, &fields, params)?,
    };
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({"data": rows, "info": info})))
}
