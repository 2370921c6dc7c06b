//! Scheduled mass updates: a `mass_update` call with `cvid` (a custom view) instead of `ids`
//! is answered at once with a `job_id`, and the update is applied in the background over the
//! view's records, a batch at a time, so a client can poll
//! `GET .../{Module}/actions/mass_update?job_id=...` and watch it go from SCHEDULED through
//! RUNNING to COMPLETED, as Zoho's scheduled mode does.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

use super::metadata::{CustomView, ViewRecords};
use super::server::{lock, Shared};
use super::store::{format_time, Attempt};

/// Zoho's scheduled mode takes views of up to 50,000 records.
pub const MAX_RECORDS_PER_JOB: usize = 50_000;
/// Job ids look like Zoho's: 19 digits in the org's id space.
const FIRST_JOB_ID: u64 = 738_964_000_000_560_001;

/// A job's phase, named as Zoho's `Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobPhase {
    Scheduled,
    Running,
    Completed,
}

/// What a job has done so far: the body of the job status answer, and the ledger's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub module: String,
    pub cvid: String,
    pub status: JobPhase,
    pub total_count: u64,
    /// Records the update was applied to.
    pub updated_count: u64,
    /// Records skipped because they were locked or not approved.
    pub not_updated_count: u64,
    /// Records the update failed on (none in the mock: values are judged before scheduling).
    pub failed_count: u64,
}

impl JobStatus {
    /// The job status answer's `data[0]`, with Zoho's capitalised keys.
    pub fn to_zoho(&self) -> Value {
        json!({
            "Status": self.status,
            "Total_Count": self.total_count,
            "Updated_Count": self.updated_count,
            "Not_Updated_Count": self.not_updated_count,
            "Failed_Count": self.failed_count,
        })
    }
}

/// One field write of a job: name, value (normalised), multi-select flag.
pub type FieldWrite = (String, Value, bool);

#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    statuses: Mutex<BTreeMap<String, JobStatus>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Why a job was not scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The view holds no records.
    Empty,
    /// A job over the same view has not finished yet.
    AlreadyScheduled,
    /// The view holds more records than a job may take.
    TooMany,
}

impl Jobs {
    pub fn status(&self, job_id: &str) -> Option<JobStatus> {
        lock(&self.statuses).get(job_id).cloned()
    }

    pub fn all(&self) -> BTreeMap<String, JobStatus> {
        lock(&self.statuses).clone()
    }

    /// Stops every running job (at server shutdown).
    pub fn abort_all(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    /// Registers a job over `view` and starts applying `writes` in the background. Returns
    /// the job id.
    pub fn schedule(
        shared: &Arc<Shared>,
        view: &CustomView,
        writes: Vec<FieldWrite>,
        over_write: bool,
    ) -> Result<String, Refusal> {
        let generated = shared.config.records;
        let indices: Vec<usize> = match view.records {
            ViewRecords::All => (0..generated).collect(),
            ViewRecords::First(n) => (0..n.min(generated)).collect(),
            ViewRecords::Empty => Vec::new(),
        };
        if indices.is_empty() {
            return Err(Refusal::Empty);
        }
        if indices.len() > MAX_RECORDS_PER_JOB {
            return Err(Refusal::TooMany);
        }
        let jobs = &shared.jobs;
        let job_id = {
            let mut statuses = lock(&jobs.statuses);
            let busy = statuses.values().any(|s| {
                s.module == view.module && s.cvid == view.id && s.status != JobPhase::Completed
            });
            if busy {
                return Err(Refusal::AlreadyScheduled);
            }
            let job_id = (FIRST_JOB_ID + jobs.next.fetch_add(1, Ordering::Relaxed)).to_string();
            statuses.insert(
                job_id.clone(),
                JobStatus {
                    module: view.module.to_string(),
                    cvid: view.id.clone(),
                    status: JobPhase::Scheduled,
                    total_count: indices.len() as u64,
                    updated_count: 0,
                    not_updated_count: 0,
                    failed_count: 0,
                },
            );
            job_id
        };
        let task = tokio::spawn(run(
            shared.clone(),
            job_id.clone(),
            indices,
            writes,
            over_write,
        ));
        let mut tasks = lock(&jobs.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
        Ok(job_id)
    }
}

/// Applies a job a batch at a time, one batch interval apart, updating its status as it goes.
async fn run(
    shared: Arc<Shared>,
    job_id: String,
    indices: Vec<usize>,
    writes: Vec<FieldWrite>,
    over_write: bool,
) {
    let config = &shared.config;
    let batch = config.job_batch_size.max(1);
    let refs: Vec<(&String, &Value, bool)> = writes.iter().map(|(n, v, m)| (n, v, *m)).collect();
    for chunk in indices.chunks(batch) {
        tokio::time::sleep(config.job_batch_interval).await;
        let (mut updated, mut skipped) = (0u64, 0u64);
        let modified = format_time(chrono::Utc::now().timestamp());
        {
            let mut store = lock(&shared.store);
            for &index in chunk {
                let record = &mut store.records[index];
                match record.try_pass(config.unlock_after, config.approve_after) {
                    Attempt::Applied => {
                        record.apply(&refs, over_write, &modified);
                        updated += 1;
                    }
                    Attempt::Locked | Attempt::NotApproved => skipped += 1,
                }
            }
        }
        let mut statuses = lock(&shared.jobs.statuses);
        if let Some(status) = statuses.get_mut(&job_id) {
            status.status = JobPhase::Running;
            status.updated_count += updated;
            status.not_updated_count += skipped;
        }
    }
    if let Some(status) = lock(&shared.jobs.statuses).get_mut(&job_id) {
        status.status = JobPhase::Completed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_uses_zoho_keys_and_values() {
        let status = JobStatus {
            module: "Leads".into(),
            cvid: "1".into(),
            status: JobPhase::Completed,
            total_count: 3,
            updated_count: 2,
            not_updated_count: 1,
            failed_count: 0,
        };
        assert_eq!(
            status.to_zoho(),
            json!({"Status": "COMPLETED", "Total_Count": 3, "Updated_Count": 2,
                   "Not_Updated_Count": 1, "Failed_Count": 0})
        );
    }
}
