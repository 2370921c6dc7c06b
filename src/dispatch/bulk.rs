//! Bulk Write, the third kind of write: a chunk of up to 25,000 records, each with its own
//! values, sent as a zipped CSV that Zoho applies server-side for 500 credits a job. One
//! chunk goes through four steps, each a call through the attempt loop:
//!
//! ```text
//!  (org id, once per run) -> upload the zip -> create the job -> poll it -> read its result
//!        runs.org_id          file_id            job_id           status     outcomes
//! ```
//!
//! Each step's id is committed (`store::bulk`, through the writer, answered after its
//! commit) before the next step's request leaves, so a resume after a kill continues where
//! the chunk was: it polls the job it created, or creates the job from the file it
//! uploaded, and never uploads or creates again for rows a job holds. The one window left
//! is a kill between the creation's answer and its commit (milliseconds): the chunk is then
//! `creating`, and a resume creates the job again from the same file.
//!
//! The result file gives each row its status: updated rows succeed; rows Zoho skipped fail
//! with its code, retryable for RECORD_LOCKED, NOT_APPROVED and BLOCKED_RECORD (`retry`
//! sends them, by Update Records when there are few); rows it did not process end
//! retryable (UNPROCESSED). A job Zoho reports failed with no row applied is created again
//! (at most [`MAX_JOBS_PER_CHUNK`] jobs a chunk).
use std::io::{Cursor, Read, Write};

use rustc_hash::FxHashMap;
use serde_json::{json, Map, Value};

use super::attempt::{attempt, Call, Failure, Request, Verdict};
use super::context::{ChunkEnd, SendContext};
use super::interpret::Step;
use super::read::refused;
use super::writer::WriterMsg;
use super::StopReason;
use crate::api::limits::{credits, CallKind};
use crate::api::{Exchange, Upload};
use crate::outcome::{classify_code, next_state, AnswerClass, ItemState};
use crate::store::bulk::{BulkJob, Phase};
use crate::store::chunks::{CallRecord, ChunkUpdate, ClaimedChunk};

/// Jobs one chunk may create in all: a job that fails with no row applied is created
/// again, twice at most; then its rows end retryable (`retry` sends them).
pub const MAX_JOBS_PER_CHUNK: u32 = 3;

/// The most a result file may hold once unzipped (a 25,000-row CSV of the first three
/// columns and the status is a few MB): a hostile or broken server's zip bomb stops here.
const MAX_RESULT_BYTES: u64 = 256 * 1024 * 1024;

/// The scopes a Bulk Write needs besides the record scopes, named when Zoho refuses one.
const BULK_SCOPES: &str = "Bulk Write needs the OAuth scopes ZohoCRM.bulk.ALL (or ZohoCRM.bulk.CREATE) and ZohoFiles.files.ALL besides ZohoCRM.modules.ALL: add them to the client's refresh token, or send with --api update";

/// A Bulk Write job's status as a poll reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Zoho's `status`: ADDED, IN PROGRESS, COMPLETED, FAILED.
    pub status: String,
    /// `result.download_url`, once there is a result.
    pub download_url: Option<String>,
}

impl JobStatus {
    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "COMPLETED" | "FAILED")
    }
}

/// One row of a job's result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    /// The record id the row named (our `id` column, else Zoho's RECORD_ID).
    pub id: Option<i64>,
    /// STATUS, lower-cased: added, updated, skipped, unprocessed.
    pub status: String,
    /// ERRORS as Zoho wrote it: `CODE-column` (several joined by `:`).
    pub errors: String,
}

/// One step's call: its request, and what a 2xx answer's body is read into. Every attempt
/// is logged with the chunk.
struct StepCall<'a, T> {
    ctx: &'a SendContext,
    chunk_id: i64,
    request: Request,
    read_ok: fn(&[u8]) -> Result<T, String>,
}

impl<'a, T> StepCall<'a, T> {
    fn new(
        ctx: &'a SendContext,
        chunk_id: i64,
        kind: CallKind,
        method: reqwest::Method,
        url: String,
        read_ok: fn(&[u8]) -> Result<T, String>,
    ) -> StepCall<'a, T> {
        StepCall {
            ctx,
            chunk_id,
            request: Request {
                kind,
                method,
                url,
                body: String::new(),
                upload: None,
                records: 0,
                credits: credits(kind, 0),
            },
            read_ok,
        }
    }
}

/// What an exchange of a Bulk Write step means (pure): the 2xx body read as `read_ok`
/// says, or the step to take instead. A refused scope names the scopes Bulk Write needs.
pub fn interpret_step<T>(
    exchange: &Exchange,
    can_refresh: bool,
    read_ok: fn(&[u8]) -> Result<T, String>,
) -> Result<T, Step> {
    match exchange {
        Exchange::Redirected { status, location } => Err(Step::Fatal {
            code: crate::codes::REDIRECTED.into(),
            message: format!(
                "the API answered HTTP {status} redirecting to {location}; massup follows no redirect: check --api-domain / --content-domain / --dc"
            ),
        }),
        Exchange::NoAnswer { reason } => Err(Step::Again {
            code: crate::codes::NO_ANSWER.into(),
            message: reason.clone(),
            retry_after: None,
        }),
        Exchange::Answered {
            status,
            body,
            retry_after,
            ..
        } if (200..300).contains(status) => read_ok(body).map_err(|reason| Step::Again {
            code: crate::codes::UNREADABLE_ANSWER.into(),
            message: format!("HTTP {status}: {reason}"),
            retry_after: *retry_after,
        }),
        Exchange::Answered {
            status,
            body,
            retry_after,
            credits_remaining,
        } => Err(
            match refused(*status, body, *retry_after, *credits_remaining, can_refresh) {
                Step::Fatal { code, message }
                    if matches!(code.as_str(), "OAUTH_SCOPE_MISMATCH" | "NO_PERMISSION") =>
                {
                    Step::Fatal {
                        message: format!("{message}. {BULK_SCOPES}"),
                        code,
                    }
                }
                other => other,
            },
        ),
    }
}

impl<T> Call for StepCall<'_, T> {
    type Output = T;

    fn request(&self) -> Request {
        self.request.clone()
    }

    fn read(&mut self, exchange: &Exchange, can_refresh: bool) -> Verdict<T> {
        let http_status = match exchange {
            Exchange::Answered { status, .. } | Exchange::Redirected { status, .. } => {
                Some(*status)
            }
            Exchange::NoAnswer { .. } => None,
        };
        let outcome = interpret_step(exchange, can_refresh, self.read_ok);
        let call_code = match &outcome {
            Ok(_) => crate::codes::SUCCESS.into(),
            Err(step) => step.code().to_string(),
        };
        Verdict {
            outcome,
            http_status,
            call_code,
        }
    }

    fn chunk(&self) -> Option<i64> {
        Some(self.chunk_id)
    }

    async fn attempted(&mut self, call: CallRecord, _retry: Option<(String, String)>) {
        self.ctx.log_call(self.chunk_id, call).await;
    }
}

fn json_of(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))
}

/// An id Zoho writes as a string or a number.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `GET /crm/{v}/org`: `{"org": [{"id": ...}]}`.
pub fn read_org_id(body: &[u8]) -> Result<String, String> {
    let value = json_of(body)?;
    id_text(value.pointer("/org/0/id")).ok_or_else(|| "no org id in the answer".into())
}

/// The upload's answer: `{"code": "FILE_UPLOAD_SUCCESS", "details": {"file_id": ...}}`.
pub fn read_file_id(body: &[u8]) -> Result<String, String> {
    let value = json_of(body)?;
    id_text(value.pointer("/details/file_id")).ok_or_else(|| "no file_id in the answer".into())
}

/// The job's creation: `{"code": "ADDED_SUCCESSFULLY", "details": {"id": ...}}`.
pub fn read_job_id(body: &[u8]) -> Result<String, String> {
    let value = json_of(body)?;
    id_text(value.pointer("/details/id")).ok_or_else(|| "no job id in the answer".into())
}

/// A poll's answer: `status`, and `result.download_url` once there is a result.
pub fn read_job_status(body: &[u8]) -> Result<JobStatus, String> {
    let value = json_of(body)?;
    // Zoho answers the job itself; some versions wrap it in `data`.
    let job = value.pointer("/data/0").unwrap_or(&value);
    let status = job
        .get("status")
        .and_then(Value::as_str)
        .ok_or("no status in the answer")?
        .trim()
        .to_ascii_uppercase();
    let download_url = job
        .pointer("/result/download_url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    Ok(JobStatus {
        status,
        download_url,
    })
}

/// A result file: a zip holding one CSV with (among others) the columns `id` (ours, the
/// first mapped), RECORD_ID, STATUS and ERRORS.
pub fn read_result(body: &[u8]) -> Result<Vec<ResultRow>, String> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(body)).map_err(|e| format!("not a zip: {e}"))?;
    let index = (0..archive.len())
        .find(|&i| {
            archive
                .by_index(i)
                .is_ok_and(|f| f.name().to_ascii_lowercase().ends_with(".csv"))
        })
        .ok_or("the zip holds no CSV")?;
    let file = archive
        .by_index(index)
        .map_err(|e| format!("cannot open the CSV in the zip: {e}"))?;
    let mut text = Vec::new();
    file.take(MAX_RESULT_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot unzip the CSV: {e}"))?;
    if text.len() as u64 > MAX_RESULT_BYTES {
        return Err(format!(
            "the result CSV is larger than {MAX_RESULT_BYTES} bytes unzipped"
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| format!("the result CSV has no header: {e}"))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(name)
        })
    };
    let status_at = column("STATUS").ok_or("the result CSV has no STATUS column")?;
    let errors_at = column("ERRORS");
    let record_at = column("RECORD_ID");
    let id_at = column("id");
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("the result CSV: {e}"))?;
        let id_in = |at: Option<usize>| {
            at.and_then(|a| record.get(a))
                .and_then(|t| crate::plan::parse_record_id(t.as_bytes()).ok())
        };
        rows.push(ResultRow {
            id: id_in(id_at).or_else(|| id_in(record_at)),
            status: record
                .get(status_at)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
            errors: errors_at
                .and_then(|a| record.get(a))
                .unwrap_or_default()
                .trim()
                .to_string(),
        });
    }
    Ok(rows)
}

/// A CSV cell for a value as Update Records would send it: text as is, numbers and
/// booleans as JSON writes them, a multi-select's values joined by `;`, null empty (the
/// job is created with `ignore_empty: false`, so an empty cell clears the field, as null
/// does in Update Records).
fn cell(value: &Value) -> Result<String, String> {
    Ok(match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or("a list of non-text values")
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(";"),
        Value::Object(_) => return Err("an object value (a lookup)".into()),
    })
}

/// The fields a per-record object changes, in its order: a job's columns after `id`.
pub fn job_fields(object: &str) -> Vec<String> {
    serde_json::from_str::<Map<String, Value>>(object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// The zipped CSV of the chunk's items `sent`: `id`, then one column per field (every row
/// changes the same fields: the planner groups them so), and the fields in column order.
pub fn job_file(chunk: &ClaimedChunk, sent: &[usize]) -> Result<(Vec<String>, Vec<u8>), String> {
    let payloads = chunk.payloads.as_ref().ok_or("the chunk has no values")?;
    let mut fields: Option<Vec<String>> = None;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for &i in sent {
        let object: Map<String, Value> =
            serde_json::from_str(payloads.get(i).map_or("{}", String::as_str)).map_err(|e| {
                format!(
                    "record {}: its values are not an object: {e}",
                    chunk.members[i].record_id
                )
            })?;
        let names = fields.get_or_insert_with(|| {
            let names: Vec<String> = object.keys().cloned().collect();
            let mut header = vec!["id".to_string()];
            header.extend(names.iter().cloned());
            let _ = csv.write_record(&header);
            names
        });
        if object.len() != names.len() || names.iter().any(|n| !object.contains_key(n)) {
            return Err(format!(
                "record {} changes other fields than the job's first record; a job's rows must change the same fields",
                chunk.members[i].record_id
            ));
        }
        let mut row = vec![chunk.members[i].record_id.to_string()];
        for name in names.iter() {
            row.push(cell(&object[name]).map_err(|e| {
                format!(
                    "record {} field {name}: {e} cannot go in a Bulk Write CSV",
                    chunk.members[i].record_id
                )
            })?);
        }
        csv.write_record(&row)
            .map_err(|e| format!("cannot write the job's CSV: {e}"))?;
    }
    let csv = csv
        .into_inner()
        .map_err(|e| format!("cannot write the job's CSV: {e}"))?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(format!("massup-chunk-{}.csv", chunk.id), options)
        .and_then(|()| zip.write_all(&csv).map_err(Into::into))
        .map_err(|e| format!("cannot zip the job's CSV: {e}"))?;
    let zip = zip
        .finish()
        .map_err(|e| format!("cannot zip the job's CSV: {e}"))?
        .into_inner();
    Ok((fields.unwrap_or_default(), zip))
}

/// The create-job body: an update of the module's records found by id, the CSV's columns
/// mapped by index, empty cells clearing (as null does in Update Records).
pub fn create_body(module: &str, file_id: &str, fields: &[String]) -> String {
    let mut mappings = vec![json!({"api_name": "id", "index": 0})];
    for (i, name) in fields.iter().enumerate() {
        mappings.push(json!({"api_name": name, "index": i + 1}));
    }
    json!({
        "operation": "update",
        "ignore_empty": false,
        "character_encoding": "UTF-8",
        "resource": [{
            "type": "data",
            "module": {"api_name": module},
            "file_id": file_id,
            "find_by": "id",
            "field_mappings": mappings,
        }],
    })
    .to_string()
}

/// Applies a result to the chunk's pending items (by record id): what was updated
/// succeeds, what was skipped fails with Zoho's code (retryable for locked and
/// not-approved records), what was not processed ends retryable. Returns the rows applied.
pub fn apply_result(chunk: &mut ClaimedChunk, rows: &[ResultRow]) -> usize {
    let index: FxHashMap<i64, usize> = chunk
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| ItemState::from_byte(chunk.outcomes[*i]) == ItemState::Pending)
        .map(|(i, m)| (m.record_id, i))
        .collect();
    let mut applied = 0;
    for row in rows {
        let Some(&i) = row.id.and_then(|id| index.get(&id)) else {
            continue;
        };
        let (class, code, message) = match row.status.as_str() {
            "updated" | "added" => {
                applied += 1;
                (
                    AnswerClass::Success,
                    crate::codes::SUCCESS.to_string(),
                    String::new(),
                )
            }
            "unprocessed" => (
                AnswerClass::Retryable,
                crate::codes::UNPROCESSED.to_string(),
                "the Bulk Write job did not process this row".to_string(),
            ),
            other => {
                let first = row.errors.split(':').next().unwrap_or_default();
                let code = first.split('-').next().unwrap_or_default().trim();
                let code = if code.is_empty() {
                    "SKIPPED".to_string()
                } else {
                    code.to_string()
                };
                let class = match classify_code(&code) {
                    AnswerClass::Success | AnswerClass::Transient | AnswerClass::TokenExpired => {
                        AnswerClass::Failed
                    }
                    class => class,
                };
                let message = if row.errors.is_empty() {
                    format!("the Bulk Write job {other} the row")
                } else {
                    format!("the Bulk Write job {other} the row: {}", row.errors)
                };
                (class, code, message)
            }
        };
        let before = ItemState::from_byte(chunk.outcomes[i]);
        let after = next_state(before, class);
        chunk.outcomes[i] = after as u8;
        if after == ItemState::Succeeded {
            chunk.details.remove(&(i as u32));
        } else {
            chunk.details.insert(i as u32, (code, message));
        }
    }
    applied
}

fn pending_items(chunk: &ClaimedChunk) -> Vec<usize> {
    (0..chunk.members.len())
        .filter(|&i| ItemState::from_byte(chunk.outcomes[i]) == ItemState::Pending)
        .collect()
}

/// Ends every pending item retryable with `code` (`retry` sends them again).
fn end_pending(chunk: &mut ClaimedChunk, code: &str, message: &str) {
    for i in pending_items(chunk) {
        chunk.outcomes[i] = ItemState::Retryable as u8;
        chunk
            .details
            .insert(i as u32, (code.into(), message.into()));
    }
}

/// Keeps the job's phase (and the org id), committed before this returns.
async fn save(
    ctx: &SendContext,
    chunk_id: i64,
    job: &BulkJob,
    org_id: Option<String>,
) -> Result<(), ChunkEnd> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let msg = WriterMsg::Bulk {
        chunk_id,
        job: job.clone(),
        org_id,
        reply,
    };
    let stored = match ctx.writer.send(msg).await {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    match stored {
        Some(Ok(())) => Ok(()),
        other => {
            if let Some(Err(e)) = other {
                tracing::error!("cannot keep chunk {chunk_id}'s Bulk Write job: {e}");
            }
            ctx.writer_failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            ctx.caller.stop.cancel();
            Err(ChunkEnd::pending())
        }
    }
}

/// The org id uploads name: kept with the run, else asked for once.
async fn org_id(ctx: &SendContext, chunk_id: i64, job: &BulkJob) -> Result<String, ChunkEnd> {
    let mut org = ctx.org_id.lock().await;
    if let Some(id) = org.as_ref() {
        return Ok(id.clone());
    }
    let mut call = StepCall::new(
        ctx,
        chunk_id,
        CallKind::Metadata,
        reqwest::Method::GET,
        ctx.caller.endpoint.urls.org(),
        read_org_id,
    );
    let id = attempt(&ctx.caller, &mut call)
        .await
        .map_err(ChunkEnd::from)?;
    save(ctx, chunk_id, job, Some(id.clone())).await?;
    *org = Some(id.clone());
    Ok(id)
}

/// Polls the job until it ends, with a growing wait between polls (no hot loop): the
/// first after `bulk_poll`, each next half as long again, up to `bulk_poll_max`. Gives up
/// after `bulk_wait` (the job goes on at Zoho; the chunk stays for `resume`).
async fn wait_for(ctx: &SendContext, chunk_id: i64, job_id: &str) -> Result<JobStatus, ChunkEnd> {
    let settings = &ctx.caller.settings;
    let started = tokio::time::Instant::now();
    let mut delay = settings.bulk_poll;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.caller.stop.cancelled() => return Err(ChunkEnd::pending()),
        }
        let mut call = StepCall::new(
            ctx,
            chunk_id,
            CallKind::BulkStatus,
            reqwest::Method::GET,
            ctx.caller.endpoint.urls.bulk_write_job(job_id),
            read_job_status,
        );
        let status = attempt(&ctx.caller, &mut call)
            .await
            .map_err(ChunkEnd::from)?;
        tracing::debug!(chunk = chunk_id, job = job_id, status = %status.status, "bulk write job");
        if status.ended() {
            return Ok(status);
        }
        if started.elapsed() >= settings.bulk_wait {
            return Err(ChunkEnd::pending().answered(
                crate::codes::BULK_JOB_RUNNING.into(),
                format!(
                    "Bulk Write job {job_id} was still {} after {} s (--bulk-wait); it goes on at Zoho, and `massup resume` polls it again",
                    status.status,
                    started.elapsed().as_secs()
                ),
            ));
        }
        delay = (delay * 3 / 2).min(settings.bulk_poll_max.max(settings.bulk_poll));
    }
}

/// Creates the job. An org at its limit of jobs in progress refuses a creation with 429
/// (nothing created, nothing charged): the call waits, as a poll would, for one to end,
/// up to `--bulk-wait`, instead of using up its attempts in a second.
async fn create_when_room(
    ctx: &SendContext,
    call: &mut StepCall<'_, String>,
) -> Result<String, ChunkEnd> {
    let settings = &ctx.caller.settings;
    let started = tokio::time::Instant::now();
    let mut delay = settings.bulk_poll;
    loop {
        match attempt(&ctx.caller, call).await {
            Ok(job_id) => return Ok(job_id),
            Err(Failure::AttemptsUsed { code, message })
                if code == "TOO_MANY_REQUESTS" && started.elapsed() < settings.bulk_wait =>
            {
                tracing::info!(%message, "Zoho refused a Bulk Write job for now; waiting for room");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = ctx.caller.stop.cancelled() => return Err(ChunkEnd::pending()),
                }
                delay = (delay * 3 / 2).min(settings.bulk_poll_max.max(settings.bulk_poll));
            }
            Err(failure) => return Err(ChunkEnd::from(failure)),
        }
    }
}

/// Sends a Bulk Write chunk from wherever it stands (see the module doc) until its items
/// have outcomes, or the run stops.
pub async fn send_job(ctx: &SendContext, chunk: &mut ClaimedChunk) -> ChunkEnd {
    // One of the run's `--bulk-jobs` permits, held from upload to result.
    let _permit = tokio::select! {
        permit = ctx.bulk_jobs.acquire() => permit.expect("the semaphore is never closed"),
        _ = ctx.caller.stop.cancelled() => return ChunkEnd::pending(),
    };
    match drive(ctx, chunk).await {
        Ok(end) | Err(end) => end,
    }
}

async fn drive(ctx: &SendContext, chunk: &mut ClaimedChunk) -> Result<ChunkEnd, ChunkEnd> {
    let mut job = chunk.bulk.clone().unwrap_or_else(BulkJob::fresh);
    let urls = &ctx.caller.endpoint.urls;
    let module = &ctx.caller.endpoint.module;
    loop {
        if ctx.caller.stop.is_cancelled() {
            return Ok(ChunkEnd::pending());
        }
        match job.phase {
            Phase::Read | Phase::Uploading => {
                let sent = pending_items(chunk);
                if sent.is_empty() {
                    return Ok(ChunkEnd::done());
                }
                if job.jobs >= MAX_JOBS_PER_CHUNK {
                    let message = format!(
                        "{} Bulk Write jobs failed with no row applied; `massup retry` sends these rows again",
                        job.jobs
                    );
                    end_pending(chunk, crate::codes::BULK_JOB_FAILED, &message);
                    return Ok(ChunkEnd::done());
                }
                let org_id = org_id(ctx, chunk.id, &job).await?;
                let (_, zip) = job_file(chunk, &sent).map_err(|message| {
                    ChunkEnd::pending()
                        .stopping(Some(StopReason::Fatal {
                            code: crate::codes::BULK_FILE.into(),
                            message: message.clone(),
                        }))
                        .answered(crate::codes::BULK_FILE.into(), message)
                })?;
                job.phase = Phase::Uploading;
                job.file_id = None;
                job.job_id = None;
                job.status = None;
                save(ctx, chunk.id, &job, None).await?;
                let mut call = StepCall::new(
                    ctx,
                    chunk.id,
                    CallKind::BulkUpload,
                    reqwest::Method::POST,
                    urls.upload(),
                    read_file_id,
                );
                call.request.records = sent.len();
                call.request.upload = Some(Upload {
                    org_id,
                    file_name: format!("massup-chunk-{}.zip", chunk.id),
                    zip: zip.into(),
                });
                let file_id = attempt(&ctx.caller, &mut call)
                    .await
                    .map_err(ChunkEnd::from)?;
                job.phase = Phase::Uploaded;
                job.file_id = Some(file_id);
                save(ctx, chunk.id, &job, None).await?;
            }
            Phase::Uploaded | Phase::Creating => {
                // The job maps the columns of the file uploaded: its pending items' fields
                // (every row of a job changes the same ones).
                let sent = pending_items(chunk);
                let fields = sent
                    .first()
                    .and_then(|&i| chunk.payloads.as_ref()?.get(i))
                    .map(|object| job_fields(object))
                    .unwrap_or_default();
                if job.phase == Phase::Uploaded {
                    job.jobs += 1;
                }
                job.phase = Phase::Creating;
                save(ctx, chunk.id, &job, None).await?;
                let file_id = job.file_id.clone().unwrap_or_default();
                let mut call = StepCall::new(
                    ctx,
                    chunk.id,
                    CallKind::BulkWrite,
                    reqwest::Method::POST,
                    urls.bulk_write(),
                    read_job_id,
                );
                call.request.body = create_body(module, &file_id, &fields);
                call.request.records = sent.len();
                let job_id = create_when_room(ctx, &mut call).await?;
                job.phase = Phase::Created;
                job.job_id = Some(job_id);
                save(ctx, chunk.id, &job, None).await?;
            }
            Phase::Created => {
                let job_id = job.job_id.clone().unwrap_or_default();
                let status = wait_for(ctx, chunk.id, &job_id).await?;
                let rows = match &status.download_url {
                    Some(url) => {
                        let url = urls.result_url(url).map_err(|message| {
                            ChunkEnd::pending()
                                .stopping(Some(StopReason::Fatal {
                                    code: crate::codes::REDIRECTED.into(),
                                    message: message.clone(),
                                }))
                                .answered(crate::codes::REDIRECTED.into(), message)
                        })?;
                        let mut call = StepCall::new(
                            ctx,
                            chunk.id,
                            CallKind::BulkResult,
                            reqwest::Method::GET,
                            url,
                            read_result,
                        );
                        attempt(&ctx.caller, &mut call)
                            .await
                            .map_err(ChunkEnd::from)?
                    }
                    None => Vec::new(),
                };
                // A failed job with no row applied is created again as a whole: its rows
                // stay pending (its result, all unprocessed, is not applied).
                let applied = rows
                    .iter()
                    .filter(|r| matches!(r.status.as_str(), "updated" | "added"))
                    .count();
                let failed_whole = status.status == "FAILED" && applied == 0;
                if !failed_whole {
                    apply_result(chunk, &rows);
                    // What the result did not settle was not processed: `retry` plans it.
                    end_pending(
                        chunk,
                        crate::codes::UNPROCESSED,
                        "the Bulk Write job's result did not settle this row",
                    );
                }
                // The outcomes go to the writer before the phase: a kill between them
                // leaves the job `created`, and a resume reads the same result again.
                ctx.store(ChunkUpdate {
                    chunk_id: chunk.id,
                    outcomes: chunk.outcomes.clone(),
                    details: chunk.details.clone(),
                    code: Some(status.status.clone()),
                    message: Some(format!("Bulk Write job {job_id}: {}", status.status)),
                    leaves_as: None,
                    call: None,
                })
                .await;
                job.phase = Phase::Read;
                job.status = Some(status.status.clone());
                save(ctx, chunk.id, &job, None).await?;
                if failed_whole {
                    tracing::warn!(
                        chunk = chunk.id,
                        job = %job_id,
                        "the Bulk Write job failed with no row applied; creating it again"
                    );
                    continue;
                }
                return Ok(ChunkEnd::done());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Member;

    fn chunk(payloads: &[&str]) -> ClaimedChunk {
        ClaimedChunk {
            id: 7,
            kind: CallKind::BulkWrite,
            payload: "{}".into(),
            payloads: Some(payloads.iter().map(|p| p.to_string()).collect()),
            members: (0..payloads.len())
                .map(|i| Member {
                    row_no: i as u32,
                    record_id: 1000 + i as i64,
                })
                .collect(),
            outcomes: vec![0; payloads.len()],
            details: Default::default(),
            snapshotted: false,
            bulk: None,
            tried_before: false,
        }
    }

    fn unzip(zip: &[u8]) -> String {
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 1, "one CSV a zip");
        let mut text = String::new();
        archive
            .by_index(0)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn the_job_file_is_one_csv_of_id_and_the_fields_encoded_as_update_records_sends_them() {
        let c = chunk(&[
            r#"{"City":"Köln","Score":3,"Opt":true,"Tags":["a","b"]}"#,
            r#"{"City":"say \"hi\", then","Score":1.5,"Opt":false,"Tags":null}"#,
        ]);
        let (fields, zip) = job_file(&c, &[0, 1]).unwrap();
        assert_eq!(fields, ["City", "Score", "Opt", "Tags"]);
        assert_eq!(
            unzip(&zip),
            "id,City,Score,Opt,Tags\n1000,Köln,3,true,a;b\n1001,\"say \"\"hi\"\", then\",1.5,false,\n"
        );
        let body: Value = serde_json::from_str(&create_body("Leads", "F1", &fields)).unwrap();
        assert_eq!(body["operation"], "update");
        assert_eq!(body["ignore_empty"], false);
        assert_eq!(body["resource"][0]["find_by"], "id");
        assert_eq!(body["resource"][0]["file_id"], "F1");
        assert_eq!(body["resource"][0]["field_mappings"][4]["api_name"], "Tags");
        assert_eq!(body["resource"][0]["field_mappings"][4]["index"], 4);
    }

    #[test]
    fn rows_that_change_other_fields_or_hold_a_lookup_are_refused() {
        let c = chunk(&[r#"{"City":"A"}"#, r#"{"Phone":"1"}"#]);
        assert!(job_file(&c, &[0, 1]).unwrap_err().contains("other fields"));
        let c = chunk(&[r#"{"Owner":{"id":"5"}}"#]);
        assert!(job_file(&c, &[0]).unwrap_err().contains("lookup"));
    }

    fn result_zip(csv: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("Leads-result.csv", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(csv.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_result_settles_each_row_by_its_status_and_code() {
        let mut c = chunk(&["{}", "{}", "{}", "{}", "{}", "{}"]);
        let rows = read_result(&result_zip(
            "id,City,RECORD_ID,STATUS,ERRORS\n\
             1000,A,1000,Updated,\n\
             1001,B,,Skipped,RECORD_LOCKED-id\n\
             1002,C,,Skipped,INVALID_DATA-City:MANDATORY_NOT_FOUND-Last_Name\n\
             1003,D,,Unprocessed,\n\
             1004,E,,skipped,NOT_APPROVED-id\n\
             9999,Z,,Updated,\n",
        ))
        .unwrap();
        assert_eq!(apply_result(&mut c, &rows), 1);
        let state = |i: usize| ItemState::from_byte(c.outcomes[i]);
        assert_eq!(state(0), ItemState::Succeeded);
        assert_eq!(state(1), ItemState::Retryable);
        assert_eq!(c.details[&1].0, "RECORD_LOCKED");
        assert_eq!(state(2), ItemState::Failed);
        assert_eq!(c.details[&2].0, "INVALID_DATA");
        assert!(c.details[&2].1.contains("MANDATORY_NOT_FOUND-Last_Name"));
        assert_eq!(state(3), ItemState::Retryable);
        assert_eq!(c.details[&3].0, crate::codes::UNPROCESSED);
        assert_eq!(state(4), ItemState::Retryable);
        // Not in the result: still pending (the worker ends it UNPROCESSED).
        assert_eq!(state(5), ItemState::Pending);
    }

    #[test]
    fn answers_are_read_as_zoho_writes_them() {
        assert_eq!(
            read_org_id(br#"{"org":[{"id":"4150868","company_name":"Zylker"}]}"#).unwrap(),
            "4150868"
        );
        assert_eq!(
            read_file_id(br#"{"status":"success","code":"FILE_UPLOAD_SUCCESS","message":"file uploaded.","details":{"file_id":"111","created_time":"2026-01-01T00:00:00+00:00"}}"#).unwrap(),
            "111"
        );
        assert_eq!(
            read_job_id(br#"{"status":"success","code":"ADDED_SUCCESSFULLY","details":{"id":"5550001","created_by":{"id":"1"}}}"#).unwrap(),
            "5550001"
        );
        let status = read_job_status(
            br#"{"status":"COMPLETED","id":"5","result":{"download_url":"/crm/bulk/v8/write/5/result"}}"#,
        )
        .unwrap();
        assert!(status.ended());
        assert_eq!(
            status.download_url.as_deref(),
            Some("/crm/bulk/v8/write/5/result")
        );
        assert!(!read_job_status(br#"{"status":"IN PROGRESS"}"#)
            .unwrap()
            .ended());
        assert!(read_result(b"not a zip").is_err());
        assert!(read_result(&result_zip("id,City\n1,A\n")).is_err());
    }

    #[test]
    fn a_refused_scope_names_the_scopes_bulk_write_needs() {
        let exchange = Exchange::Answered {
            status: 401,
            body: bytes::Bytes::from_static(
                br#"{"code":"OAUTH_SCOPE_MISMATCH","details":{},"message":"invalid oauth scope to access this URL","status":"error"}"#,
            ),
            credits_remaining: None,
            retry_after: None,
        };
        match interpret_step(&exchange, true, read_file_id) {
            Err(Step::Fatal { code, message }) => {
                assert_eq!(code, "OAUTH_SCOPE_MISMATCH");
                assert!(message.contains("ZohoFiles.files.ALL"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
