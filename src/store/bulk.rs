//! Bulk Write jobs as the run keeps them (migration 0009): per chunk, the step it reached
//! and the id that step got. Every write here is committed before the next step's request
//! leaves (the dispatch writer answers only after its commit), so a kill at any moment
//! leaves a row that says exactly what exists at Zoho: nothing (`uploading`), a file
//! (`uploaded`), perhaps a job (`creating`), a job (`created`), or a result read (`read`).
use rusqlite::{params, Connection, OptionalExtension};

use super::{now, StoreError};

/// Where a chunk's current Bulk Write job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A file is being uploaded: its id is not known. A resume uploads again (a file no
    /// job reads applies nothing; Zoho deletes it).
    Uploading,
    /// The file is at Zoho (`file_id`): the job is created from it.
    Uploaded,
    /// The job's creation was sent and its answer not kept (a kill in the milliseconds
    /// between): a resume cannot know whether the job exists, and creates it again from the
    /// same file (the values it writes are the same; the status counts the call).
    Creating,
    /// The job exists (`job_id`): it is polled until it ends, and its result read.
    Created,
    /// The job's result was read into the chunk's outcomes.
    Read,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Uploading => "uploading",
            Phase::Uploaded => "uploaded",
            Phase::Creating => "creating",
            Phase::Created => "created",
            Phase::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Phase> {
        [
            Phase::Uploading,
            Phase::Uploaded,
            Phase::Creating,
            Phase::Created,
            Phase::Read,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// A chunk's Bulk Write job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkJob {
    pub phase: Phase,
    pub file_id: Option<String>,
    pub job_id: Option<String>,
    /// Jobs the chunk has created (or may have: `creating` counts).
    pub jobs: u32,
    /// The job's last status as Zoho gave it.
    pub status: Option<String>,
}

impl BulkJob {
    /// A chunk that has not started.
    pub fn fresh() -> BulkJob {
        BulkJob {
            phase: Phase::Read,
            file_id: None,
            job_id: None,
            jobs: 0,
            status: None,
        }
    }
}

/// The chunk's job, if it ever started one.
pub fn load(conn: &Connection, chunk_id: i64) -> Result<Option<BulkJob>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT phase, file_id, job_id, jobs, status FROM bulk_jobs WHERE chunk_id = ?1",
        )?
        .query_row(params![chunk_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((phase, file_id, job_id, jobs, status)) = row else {
        return Ok(None);
    };
    let phase = Phase::parse(&phase).ok_or_else(|| StoreError::Damaged {
        what: format!("the Bulk Write job of chunk {chunk_id}"),
        problem: format!("unknown phase {phase:?}"),
    })?;
    Ok(Some(BulkJob {
        phase,
        file_id,
        job_id,
        jobs,
        status,
    }))
}

/// Keeps the chunk's job as `job` says.
pub fn save(
    conn: &Connection,
    run_id: i64,
    chunk_id: i64,
    job: &BulkJob,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO bulk_jobs (chunk_id, run_id, phase, file_id, job_id, jobs, status, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(chunk_id) DO UPDATE SET phase = excluded.phase, file_id = excluded.file_id,
           job_id = excluded.job_id, jobs = excluded.jobs, status = excluded.status,
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        chunk_id,
        run_id,
        job.phase.as_str(),
        job.file_id,
        job.job_id,
        job.jobs,
        job.status,
        now()
    ])?;
    Ok(())
}

/// The org id kept with the run, if a Bulk Write job asked for it.
pub fn org_id(conn: &Connection, run_id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT org_id FROM runs WHERE id = ?1")?
        .query_row(params![run_id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

pub fn set_org_id(conn: &Connection, run_id: i64, org_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE runs SET org_id = ?2 WHERE id = ?1")?
        .execute(params![run_id, org_id])?;
    Ok(())
}

/// Jobs the run's chunks have created (or may have), and how many are not read yet.
pub fn counts(conn: &Connection, run_id: i64) -> Result<(u64, u64), StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(jobs), 0), COALESCE(SUM(phase IN ('creating', 'created')), 0)
             FROM bulk_jobs WHERE run_id = ?1",
        )?
        .query_row(params![run_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}
