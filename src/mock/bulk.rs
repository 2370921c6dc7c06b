//! Bulk Write as Zoho serves it: the org (`GET /crm/{v}/org`, for the `X-CRM-ORG` id), the
//! upload of a zipped CSV (`POST /crm/{v}/upload`, multipart, with `feature: bulk-write`),
//! the job (`POST /crm/bulk/{v}/write`), its status (`GET .../write/{job id}`: IN PROGRESS
//! until `bulk_delay` has passed, then COMPLETED or FAILED) and its result, a zipped CSV of
//! the file's first three mapped columns plus RECORD_ID, STATUS and ERRORS
//! (`GET .../write/{job id}/result`, the `download_url` the status gives).
//!
//! A job applies its rows when it completes (the first poll after the delay), each as an
//! Update Records entry would be: the same checks, locked and not-approved records, unique
//! fields. Prices: 500 credits a job; the upload, each poll and the download one each.
//! Faults: the first `bulk_fail_uploads` uploads answer 500; the first `bulk_fail_jobs`
//! jobs fail with no row applied; every `bulk_unprocessed_every`-th row is left
//! Unprocessed. These calls meet neither the rate nor the concurrency limit.
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::server::{json_bytes, lock, zoho_response, HeaderProfile, Reject, Shared};
use super::store::format_time;

/// The org id the mock answers `GET /crm/{v}/org` with and wants in `X-CRM-ORG`.
pub const ORG_ID: &str = "4150868";
/// Zoho's row limit of a Bulk Write file, and its size limit.
pub const MAX_ROWS: usize = 25_000;
pub const MAX_FILE_BYTES: usize = 25 * 1024 * 1024;
/// Credits a job costs (Zoho's "Bulk Write: 500 credits per job").
pub const JOB_CREDITS: u64 = 500;
/// File and job ids look like Zoho's.
const FIRST_ID: u64 = 111_111_000_000_900_001;

/// What the ledger tells of Bulk Write.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BulkLedger {
    /// Upload requests received (any outcome).
    pub upload_requests: u64,
    /// Uploads kept (a failed upload is not counted).
    pub uploads: u64,
    /// Jobs created.
    pub jobs_created: u64,
    /// Status polls answered.
    pub polls: u64,
    /// Result files downloaded.
    pub results: u64,
    /// Job creations refused because the org had `bulk_max_in_progress` jobs in progress.
    pub refused_creates: u64,
    /// The most jobs in progress at once.
    pub max_in_progress_seen: u64,
    /// Each job: its file, rows, and what its rows came to.
    pub jobs: BTreeMap<String, BulkJobLedger>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BulkJobLedger {
    pub file_id: String,
    pub rows: usize,
    pub status: String,
    pub updated: usize,
    pub skipped: usize,
    pub unprocessed: usize,
}

struct UploadedFile {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

struct Job {
    version: String,
    module: String,
    file_id: String,
    /// (API name, column index).
    mappings: Vec<(String, usize)>,
    ignore_empty: bool,
    created: Instant,
    created_time: String,
    fail: bool,
    /// The result file once the job ended.
    result: Option<Vec<u8>>,
    ledger: BulkJobLedger,
}

/// The mock's Bulk Write state.
#[derive(Default)]
pub(crate) struct BulkStore {
    files: Mutex<HashMap<String, Arc<UploadedFile>>>,
    jobs: Mutex<BTreeMap<String, Job>>,
    next_id: AtomicU64,
    uploads_seen: AtomicU64,
    uploads: AtomicU64,
    jobs_created: AtomicU64,
    polls: AtomicU64,
    results: AtomicU64,
    refused_creates: AtomicU64,
    max_in_progress: AtomicU64,
}

impl BulkStore {
    fn next_id(&self) -> String {
        (FIRST_ID + self.next_id.fetch_add(1, Ordering::Relaxed)).to_string()
    }

    pub(crate) fn ledger(&self) -> BulkLedger {
        BulkLedger {
            upload_requests: self.uploads_seen.load(Ordering::Relaxed),
            uploads: self.uploads.load(Ordering::Relaxed),
            jobs_created: self.jobs_created.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            results: self.results.load(Ordering::Relaxed),
            refused_creates: self.refused_creates.load(Ordering::Relaxed),
            max_in_progress_seen: self.max_in_progress.load(Ordering::Relaxed),
            jobs: lock(&self.jobs)
                .iter()
                .map(|(id, job)| (id.clone(), job.ledger.clone()))
                .collect(),
        }
    }
}

/// A call that passed the token and credit checks: the answer's headers.
struct Admitted {
    expiry: Option<tokio::time::Instant>,
    credits: Option<u64>,
}

impl Admitted {
    fn json(&self, status: StatusCode, body: &Value) -> Response {
        zoho_response(
            status,
            json_bytes(body).into(),
            HeaderProfile::Api,
            Some(self.expiry),
            self.credits,
        )
    }
}

#[allow(clippy::result_large_err)] // the error is the finished answer, on a cold path
fn admit(
    shared: &Shared,
    method: &Method,
    wanted: Method,
    headers: &HeaderMap,
    cost: u64,
) -> Result<Admitted, Response> {
    if *method != wanted {
        return Err(shared.refuse(Reject::InvalidRequestMethod, headers));
    }
    let expiry = shared
        .authenticate(headers)
        .map_err(|reject| shared.refuse(reject, headers))?;
    let credits = shared
        .charge(cost)
        .map_err(|reject| shared.refuse(reject, headers))?;
    Ok(Admitted { expiry, credits })
}

fn error(code: &str, details: Value, message: &str) -> Value {
    json!({"code": code, "details": details, "message": message, "status": "error"})
}

/// `GET /crm/{version}/org`.
pub(crate) async fn org(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let call = match admit(&shared, &method, Method::GET, &headers, 1) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    call.json(
        StatusCode::OK,
        &json!({"org": [{
            "id": ORG_ID,
            "company_name": "massup mock org",
            "primary_email": "admin@example.com",
            "time_zone": "GMT",
            "currency": "US Dollar - USD",
            "zgid": ORG_ID,
        }]}),
    )
}

/// `POST /crm/{version}/upload`: a multipart form whose `file` is a zip of one CSV.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bulk = &shared.bulk;
    let seen = bulk.uploads_seen.fetch_add(1, Ordering::Relaxed);
    let call = match admit(&shared, &method, Method::POST, &headers, 1) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    if seen < u64::from(shared.config.bulk_fail_uploads) {
        return shared.refuse(Reject::InternalError, &headers);
    }
    // A client gone meanwhile drops this future: the file is never kept.
    tokio::time::sleep(shared.config.bulk_upload_latency).await;
    let header_is = |name: &str, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(want))
    };
    if !header_is("feature", "bulk-write") {
        return call.json(
            StatusCode::BAD_REQUEST,
            &error(
                "INVALID_DATA",
                json!({"header": "feature"}),
                "the feature header must be bulk-write",
            ),
        );
    }
    if !header_is("x-crm-org", ORG_ID) {
        return call.json(
            StatusCode::BAD_REQUEST,
            &error(
                "INVALID_ORG",
                json!({"header": "X-CRM-ORG"}),
                "the X-CRM-ORG header does not name this org",
            ),
        );
    }
    let zip = match multipart_file(&headers, body).await {
        Ok(zip) => zip,
        Err(message) => {
            return call.json(
                StatusCode::BAD_REQUEST,
                &error("INVALID_DATA", json!({"param": "file"}), &message),
            )
        }
    };
    let file = match unzip_csv(&zip) {
        Ok(file) => file,
        Err((code, message)) => {
            return call.json(
                StatusCode::BAD_REQUEST,
                &error(code, json!({"param": "file"}), &message),
            )
        }
    };
    let file_id = bulk.next_id();
    lock(&bulk.files).insert(file_id.clone(), Arc::new(file));
    bulk.uploads.fetch_add(1, Ordering::Relaxed);
    call.json(
        StatusCode::OK,
        &json!({
            "status": "success",
            "code": "FILE_UPLOAD_SUCCESS",
            "message": "file uploaded.",
            "details": {
                "file_id": file_id,
                "created_time": format_time(chrono::Utc::now().timestamp()),
            },
        }),
    )
}

/// The `file` part of a multipart/form-data body.
async fn multipart_file(headers: &HeaderMap, body: Bytes) -> Result<Bytes, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| format!("the body is not multipart/form-data: {e}"))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| format!("the multipart body: {e}"))?
    {
        if field.name() == Some("file") {
            return field
                .bytes()
                .await
                .map_err(|e| format!("the multipart body: {e}"));
        }
    }
    Err("the form has no `file` part".into())
}

/// The one CSV of a zip: Zoho refuses a zip of several CSVs (for modules without
/// subforms) and a file over 25 MB.
fn unzip_csv(zip: &[u8]) -> Result<UploadedFile, (&'static str, String)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip))
        .map_err(|e| ("INVALID_FILE", format!("the file is not a zip: {e}")))?;
    if archive.len() != 1 {
        return Err((
            "INVALID_FILE",
            format!("the zip must hold one CSV file, not {}", archive.len()),
        ));
    }
    let entry = archive
        .by_index(0)
        .map_err(|e| ("INVALID_FILE", format!("the zip: {e}")))?;
    if !entry.name().to_ascii_lowercase().ends_with(".csv") {
        return Err(("INVALID_FILE", "the zip must hold a CSV file".into()));
    }
    let mut text = Vec::new();
    entry
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| ("INVALID_FILE", format!("the zip: {e}")))?;
    if text.len() > MAX_FILE_BYTES {
        return Err((
            "FILE_SIZE_EXCEEDED",
            "the CSV file is larger than 25 MB".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ("INVALID_FILE", format!("the CSV: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ("INVALID_FILE", format!("the CSV: {e}")))?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(UploadedFile { header, rows })
}

/// `POST /crm/bulk/{version}/write`: creates an update job over an uploaded file.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |code: &str, details: Value, message: &str| {
        (code.to_string(), details, message.to_string())
    };
    // Checked before the charge: a refused request costs nothing here (the mock's choice).
    let parsed = (|| {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| bad("INVALID_DATA", json!({}), "the body is not JSON"))?;
        let operation = body.get("operation").and_then(Value::as_str).unwrap_or("");
        if operation != "update" {
            return Err(bad(
                "INVALID_DATA",
                json!({"api_name": "operation"}),
                "the mock serves update jobs only",
            ));
        }
        let resource = body.pointer("/resource/0").ok_or_else(|| {
            bad(
                "MANDATORY_NOT_FOUND",
                json!({"api_name": "resource"}),
                "required field not found",
            )
        })?;
        let module = match resource.get("module") {
            Some(Value::String(m)) => m.clone(),
            Some(Value::Object(m)) => m
                .get("api_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        if !shared.modules.contains_key(&module) {
            return Err(bad(
                "INVALID_MODULE",
                json!({"api_name": "module"}),
                "the module name given seems to be invalid",
            ));
        }
        let file_id = resource
            .get("file_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let file = lock(&shared.bulk.files)
            .get(&file_id)
            .cloned()
            .ok_or_else(|| {
                bad(
                    "INVALID_DATA",
                    json!({"api_name": "file_id"}),
                    "the file_id given seems to be invalid",
                )
            })?;
        if file.rows.len() > MAX_ROWS {
            return Err(bad(
                "LIMIT_EXCEEDED",
                json!({"maximum_length": MAX_ROWS}),
                "the file holds more rows than a job takes",
            ));
        }
        if resource.get("find_by").and_then(Value::as_str) != Some("id") {
            return Err(bad(
                "INVALID_DATA",
                json!({"api_name": "find_by"}),
                "the mock finds records by id only",
            ));
        }
        let mut mappings = Vec::new();
        for mapping in resource
            .get("field_mappings")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = mapping
                .get("api_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let index = mapping
                .get("index")
                .and_then(Value::as_u64)
                .map(|i| i as usize);
            match index {
                Some(index) if index < file.header.len() && !name.is_empty() => {
                    mappings.push((name.to_string(), index))
                }
                _ => {
                    return Err(bad(
                        "INVALID_DATA",
                        json!({"api_name": "field_mappings"}),
                        "a field mapping names no column of the file",
                    ))
                }
            }
        }
        if !mappings.iter().any(|(n, _)| n == "id") {
            return Err(bad(
                "MANDATORY_NOT_FOUND",
                json!({"api_name": "id"}),
                "find_by id needs the id column mapped",
            ));
        }
        let ignore_empty = body
            .get("ignore_empty")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok((module, file_id, file, mappings, ignore_empty))
    })();
    // The org's jobs in progress, checked (and the job added) under one lock; a refused
    // creation is charged nothing, as any 429.
    let bulk = &shared.bulk;
    let mut jobs = lock(&bulk.jobs);
    let in_progress = jobs.values().filter(|j| j.result.is_none()).count();
    if parsed.is_ok()
        && shared
            .config
            .bulk_max_in_progress
            .is_some_and(|max| in_progress >= max)
    {
        if let Err(answer) = shared.authenticate(&headers) {
            return shared.refuse(answer, &headers);
        }
        bulk.refused_creates.fetch_add(1, Ordering::Relaxed);
        return shared.refuse(
            Reject::TooManyRequests("the org has as many bulk write jobs in progress as it may"),
            &headers,
        );
    }
    let call = match admit(&shared, &method, Method::POST, &headers, JOB_CREDITS) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    let (module, file_id, file, mappings, ignore_empty) = match parsed {
        Ok(parsed) => parsed,
        Err((code, details, message)) => {
            return call.json(StatusCode::BAD_REQUEST, &error(&code, details, &message))
        }
    };
    bulk.max_in_progress
        .fetch_max(in_progress as u64 + 1, Ordering::Relaxed);
    let created = bulk.jobs_created.fetch_add(1, Ordering::Relaxed);
    let id = bulk.next_id();
    let created_time = format_time(chrono::Utc::now().timestamp());
    jobs.insert(
        id.clone(),
        Job {
            version,
            module,
            file_id: file_id.clone(),
            mappings,
            ignore_empty,
            created: Instant::now(),
            created_time: created_time.clone(),
            fail: created < u64::from(shared.config.bulk_fail_jobs),
            result: None,
            ledger: BulkJobLedger {
                file_id,
                rows: file.rows.len(),
                status: "ADDED".into(),
                ..BulkJobLedger::default()
            },
        },
    );
    call.json(
        StatusCode::CREATED,
        &json!({
            "status": "success",
            "code": "ADDED_SUCCESSFULLY",
            "message": "Added successfully.",
            "details": {
                "id": id,
                "created_by": {"id": "2883756000000113001", "name": "Patricia Boyle"},
            },
        }),
    )
}

/// `GET /crm/bulk/{version}/write/{job id}`.
pub(crate) async fn status(
    State(shared): State<Arc<Shared>>,
    Path((version, job_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let call = match admit(&shared, &method, Method::GET, &headers, 1) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    shared.bulk.polls.fetch_add(1, Ordering::Relaxed);
    let mut jobs = lock(&shared.bulk.jobs);
    let Some(job) = jobs.get_mut(&job_id) else {
        return call.json(
            StatusCode::BAD_REQUEST,
            &error(
                "RESOURCE_NOT_FOUND",
                json!({"job_id": job_id}),
                "the bulk write job given seems to be invalid",
            ),
        );
    };
    if job.result.is_none() && job.created.elapsed() >= shared.config.bulk_delay {
        let file = lock(&shared.bulk.files).get(&job.file_id).cloned();
        if let Some(file) = file {
            finish(&shared, job, &file);
        }
    }
    let status = if job.result.is_some() {
        job.ledger.status.clone()
    } else {
        "IN PROGRESS".to_string()
    };
    let l = &job.ledger;
    let mut answer = json!({
        "status": status,
        "character_encoding": "UTF-8",
        "resource": [{
            "status": status,
            "type": "data",
            "module": {"api_name": job.module},
            "field_mappings": job.mappings.iter().map(|(n, i)| json!({"api_name": n, "index": i})).collect::<Vec<_>>(),
            "file": {
                "status": status,
                "name": format!("{}.csv", job.file_id),
                "added_count": 0,
                "skipped_count": l.skipped,
                "updated_count": l.updated,
                "total_count": l.rows,
            },
        }],
        "id": job_id,
        "callback": null,
        "created_by": {"id": "2883756000000113001", "name": "Patricia Boyle"},
        "operation": "update",
        "created_time": job.created_time,
    });
    if job.result.is_some() {
        answer["result"] = json!({
            "download_url": format!("{}/crm/bulk/{version}/write/{job_id}/result", shared.api_domain()),
        });
    }
    call.json(StatusCode::OK, &answer)
}

/// `GET /crm/bulk/{version}/write/{job id}/result`: the zipped result CSV.
pub(crate) async fn result(
    State(shared): State<Arc<Shared>>,
    Path((_version, job_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let call = match admit(&shared, &method, Method::GET, &headers, 1) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    let zip = lock(&shared.bulk.jobs)
        .get(&job_id)
        .and_then(|job| job.result.clone());
    let Some(zip) = zip else {
        return call.json(
            StatusCode::BAD_REQUEST,
            &error(
                "RESOURCE_NOT_FOUND",
                json!({"job_id": job_id}),
                "the job has no result yet",
            ),
        );
    };
    shared.bulk.results.fetch_add(1, Ordering::Relaxed);
    let mut response = Response::new(Body::from(zip));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    response
}

/// A CSV cell as the field's value: numbers and booleans by the field's type, a
/// multi-select's values split at `;`, an empty cell null.
fn value_of(shared: &Shared, module: &str, field: &str, text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    let data_type = shared
        .modules
        .get(module)
        .and_then(|m| m.fields.get(field))
        .map_or("text", |f| f.data_type.as_str());
    match data_type {
        "boolean" => match text.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.into()),
        },
        "integer" | "bigint" | "long" => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.into())),
        "double" | "currency" | "percent" | "decimal" => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.into())),
        "multiselectpicklist" => Value::Array(
            text.split(';')
                .map(|t| Value::String(t.trim().to_string()))
                .collect(),
        ),
        _ => Value::String(text.into()),
    }
}

/// Ends a job: applies its rows (none when it fails) and writes its result.
fn finish(shared: &Shared, job: &mut Job, file: &UploadedFile) {
    let modified = format_time(chrono::Utc::now().timestamp());
    let every = shared.config.bulk_unprocessed_every;
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = job
        .mappings
        .iter()
        .take(3)
        .map(|(_, i)| file.header[*i].clone())
        .collect();
    header.extend(["RECORD_ID", "STATUS", "ERRORS"].map(str::to_string));
    let _ = out.write_record(&header);
    let mut store = lock(&shared.store);
    for (n, row) in file.rows.iter().enumerate() {
        let cell = |i: usize| row.get(i).map_or("", String::as_str);
        let id = job
            .mappings
            .iter()
            .find(|(name, _)| name == "id")
            .map_or("", |(_, i)| cell(*i));
        let (record_id, status, errors) = if job.fail || (every > 0 && n % every == 0) {
            job.ledger.unprocessed += 1;
            (String::new(), "Unprocessed", String::new())
        } else {
            let mut values = Map::new();
            values.insert("id".into(), Value::String(id.to_string()));
            for (name, i) in &job.mappings {
                if name == "id" || (job.ignore_empty && cell(*i).is_empty()) {
                    continue;
                }
                values.insert(name.clone(), value_of(shared, &job.module, name, cell(*i)));
            }
            match super::records::bulk_update(
                shared,
                &mut store,
                &job.version,
                &job.module,
                &values,
                &modified,
            ) {
                Ok(()) => {
                    job.ledger.updated += 1;
                    (id.to_string(), "Updated", String::new())
                }
                Err((code, field)) => {
                    job.ledger.skipped += 1;
                    (String::new(), "Skipped", format!("{code}-{field}"))
                }
            }
        };
        let mut line: Vec<String> = job
            .mappings
            .iter()
            .take(3)
            .map(|(_, i)| cell(*i).to_string())
            .collect();
        line.extend([record_id, status.to_string(), errors]);
        let _ = out.write_record(&line);
    }
    drop(store);
    job.ledger.status = if job.fail { "FAILED" } else { "COMPLETED" }.into();
    let csv = out.into_inner().unwrap_or_default();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let written = zip
        .start_file(format!("{}-bulkwrite.csv", job.module), options)
        .and_then(|()| zip.write_all(&csv).map_err(Into::into))
        .and_then(|()| zip.finish());
    job.result = Some(written.map(|c| c.into_inner()).unwrap_or_default());
}
