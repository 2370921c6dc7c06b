//! What a run's records came to: per-row outcomes (one per input row, in input order) and
//! the counts that `status`, `report` and the end of `run` print. Items are stored packed
//! per chunk, so this is the one place that unpacks them into rows.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::Connection;
use serde::Serialize;

use crate::api::limits::CallKind;
use crate::outcome::ItemState;
use crate::store::chunks::{self, ChunkState, StoredChunk};
use crate::store::rows::{self, RowStatus, StoredRow};
use crate::store::{self, RunInfo, StoreError};

/// The outcome of one input row, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Succeeded,
    Retryable,
    Pending,
    Failed,
    Invalid,
}

impl RowOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Succeeded => "succeeded",
            RowOutcome::Retryable => "retryable",
            RowOutcome::Pending => "pending",
            RowOutcome::Failed => "failed",
            RowOutcome::Invalid => "invalid",
        }
    }

    pub fn parse(text: &str) -> Option<RowOutcome> {
        [
            RowOutcome::Succeeded,
            RowOutcome::Retryable,
            RowOutcome::Pending,
            RowOutcome::Failed,
            RowOutcome::Invalid,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }

    /// How bad an item state is for its row: a row is only as good as its worst item
    /// (a row whose fields went out in several calls succeeded only if all did). Failed
    /// outranks pending because no resume can make that row succeed.
    fn rank(state: ItemState) -> u8 {
        match state {
            ItemState::Succeeded => 1,
            ItemState::Retryable => 2,
            ItemState::Pending => 3,
            ItemState::Failed => 4,
            ItemState::Requeued => 0,
        }
    }

    fn of_item(state: ItemState) -> RowOutcome {
        match state {
            ItemState::Succeeded => RowOutcome::Succeeded,
            ItemState::Retryable => RowOutcome::Retryable,
            ItemState::Failed => RowOutcome::Failed,
            ItemState::Pending | ItemState::Requeued => RowOutcome::Pending,
        }
    }
}

/// The outcome of one row with the answer that decided it.
#[derive(Debug, Clone, Default)]
pub struct RowResult {
    /// Rank of the worst item so far (0: no item seen).
    worst: u8,
    pub outcome: Option<RowOutcome>,
    /// Shared, not copied: a million rows carry a handful of distinct codes and messages.
    pub code: Option<Arc<str>>,
    pub message: Option<Arc<str>>,
    /// Calls that carried the row's most-tried record update (one row x group), its
    /// re-queued earlier tries included: 1 for a row whose updates all succeeded first
    /// time, however many calls its fields took.
    pub attempts: u32,
    /// Calls per record update so far: (group, calls).
    tries: Vec<(i64, u32)>,
    /// The kinds of call that carried its items: bit 1 mass_update, bit 2 Update Records,
    /// bit 4 Bulk Write, bit 8 Upsert Records, bit 16 Delete Records.
    pub kinds: u8,
    pub last_attempt_at: Option<Arc<str>>,
    /// The record the row's items went to (for a `--match-by` row, the id its key found).
    pub record: Option<i64>,
    /// `--create-missing`: what became of a row planned as a new record (None for the
    /// others, and for a new record not answered yet).
    pub action: Option<crate::store::created::Action>,
}

impl RowResult {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        group: i64,
        state: ItemState,
        code: Option<&Arc<str>>,
        message: Option<&Arc<str>>,
        attempts: u32,
        at: Option<&Arc<str>>,
    ) {
        let tried = match self.tries.iter_mut().find(|(g, _)| *g == group) {
            Some((_, calls)) => {
                *calls += attempts;
                *calls
            }
            None => {
                self.tries.push((group, attempts));
                attempts
            }
        };
        self.attempts = self.attempts.max(tried);
        if let Some(at) = at {
            if self.last_attempt_at.as_deref().is_none_or(|l| l < &**at) {
                self.last_attempt_at = Some(at.clone());
            }
        }
        if state == ItemState::Requeued {
            return;
        }
        let rank = RowOutcome::rank(state);
        if rank > self.worst {
            self.worst = rank;
            self.outcome = Some(RowOutcome::of_item(state));
            self.code = code.cloned();
            self.message = message.cloned();
        }
    }

    fn merge(&mut self, other: &RowResult) {
        self.attempts = self.attempts.max(other.attempts);
        if self.action.is_none() {
            self.action = other.action;
            if other.action.is_some() {
                self.record = other.record;
            }
        }
        self.kinds |= other.kinds;
        if other.last_attempt_at > self.last_attempt_at {
            self.last_attempt_at.clone_from(&other.last_attempt_at);
        }
        if other.worst > self.worst {
            self.worst = other.worst;
            self.outcome = other.outcome;
            self.code.clone_from(&other.code);
            self.message.clone_from(&other.message);
        }
    }
}

/// A code and a message, shared between the rows they apply to.
type Answer = (Option<Arc<str>>, Option<Arc<str>>);

/// Per-row results of a run, indexed by row_no. Rows without items (invalid) are left
/// at default and resolved by `row_outcome`.
pub fn row_results(
    conn: &Connection,
    run_id: i64,
    rows: usize,
) -> Result<Vec<RowResult>, StoreError> {
    let mut results = vec![RowResult::default(); rows];
    let success: (Arc<str>, Arc<str>) = (
        Arc::from(crate::codes::SUCCESS),
        Arc::from(crate::codes::SUCCESS_MESSAGE),
    );
    let not_sent: Arc<str> = Arc::from("not sent yet");
    let mut interned: HashMap<String, Arc<str>> = HashMap::new();
    let mut intern = |text: Option<String>| -> Option<Arc<str>> {
        let text = text?;
        Some(
            interned
                .entry(text)
                .or_insert_with_key(|k| Arc::from(k.as_str()))
                .clone(),
        )
    };
    // `--create-missing`: the ids Zoho gave new records, by their row.
    let created: HashMap<u32, (i64, crate::store::created::Action)> =
        crate::store::created::of_run(conn, run_id)?
            .into_iter()
            .map(|c| (c.row_no, (c.record_id, c.action)))
            .collect();
    chunks::for_each_chunk(
        conn,
        run_id,
        |chunk: StoredChunk| -> Result<(), StoreError> {
            let details: HashMap<u32, Answer> = chunk
                .details
                .into_iter()
                .map(|(i, (code, message))| (i, (intern(Some(code)), intern(Some(message)))))
                .collect();
            let chunk_code = intern(chunk.code);
            let chunk_message = intern(chunk.message);
            let at = intern(chunk.last_attempt_at);
            for (i, member) in chunk.members.iter().enumerate() {
                let Some(result) = results.get_mut(member.row_no as usize) else {
                    continue;
                };
                let state = ItemState::from_byte(chunk.outcomes.get(i).copied().unwrap_or(0));
                let (code, message) = match (state, details.get(&(i as u32))) {
                    // A success keeps a detail only when nothing was sent (UNCHANGED).
                    (ItemState::Succeeded, None) => (Some(&success.0), Some(&success.1)),
                    (_, Some((code, message))) => (code.as_ref(), message.as_ref()),
                    (ItemState::Pending, None) if chunk.attempts == 0 => (None, Some(&not_sent)),
                    (_, None) => (chunk_code.as_ref(), chunk_message.as_ref()),
                };
                result.record = Some(member.record_id);
                if member.record_id < 0 {
                    // A new record: its id once Zoho gave one, none before.
                    let made = created.get(&member.row_no);
                    result.record = made.map(|(id, _)| *id);
                    result.action = made.map(|(_, action)| *action);
                }
                result.add(
                    chunk.group_id,
                    state,
                    code,
                    message,
                    chunk.attempts,
                    at.as_ref(),
                );
                result.kinds |= match chunk.kind {
                    CallKind::UpdateRecords => 2,
                    CallKind::BulkWrite => 4,
                    CallKind::UpsertRecords => 8,
                    CallKind::DeleteRecords => 16,
                    _ => 1,
                };
            }
            Ok(())
        },
    )?;
    Ok(results)
}

/// One input row as stored, with its outcome.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub row_no: u32,
    pub line: u64,
    pub record_id: String,
    pub values: Vec<String>,
    pub outcome: RowOutcome,
    pub code: Option<String>,
    pub message: Option<String>,
    pub attempts: u32,
    pub last_attempt_at: Option<String>,
    /// Which kinds of call carried the row's fields (None for a row never planned).
    pub carried_by: Option<&'static str>,
    /// The record its items went to (None for a row never planned).
    pub record: Option<i64>,
    /// `--create-missing`: `created` for a row whose record the run created, `updated`
    /// for a row that updated a record (None for a row not sent, or a run without it).
    pub action: Option<&'static str>,
}

/// Calls `each` with every input row of the run in input order, with its outcome. The
/// first error from `each` ends the walk and is returned as it is (`report` stops on a
/// failed write).
pub fn for_each_row<E: From<StoreError>>(
    conn: &Connection,
    run_id: i64,
    mut each: impl FnMut(ReportRow) -> Result<(), E>,
) -> Result<(), E> {
    let run = store::runs::run(conn, run_id)?
        .ok_or(StoreError::Sql(rusqlite::Error::QueryReturnedNoRows))?;
    let results = row_results(conn, run_id, run.input_rows as usize)?;
    rows::for_each_row(conn, run_id, |row: StoredRow| {
        let mut result = results
            .get(row.row_no as usize)
            .cloned()
            .unwrap_or_default();
        if let Some(target) = row.merged_into.and_then(|t| results.get(t as usize)) {
            result.merge(target);
        }
        let (outcome, code, message) = if row.status == RowStatus::Invalid {
            (
                RowOutcome::Invalid,
                Some("INVALID_ROW".to_string()),
                row.message,
            )
        } else {
            match result.outcome {
                Some(outcome) => (
                    outcome,
                    result.code.as_deref().map(str::to_string),
                    result.message.as_deref().map(str::to_string),
                ),
                // A merged row whose fields all ride with an earlier row that has no item
                // yet cannot happen; be safe and call it pending.
                None => (RowOutcome::Pending, None, row.message),
            }
        };
        each(ReportRow {
            row_no: row.row_no,
            line: row.line,
            record_id: row.record_id,
            values: row.values,
            outcome,
            code,
            message,
            attempts: result.attempts,
            last_attempt_at: result.last_attempt_at.as_deref().map(str::to_string),
            carried_by: carried_by(result.kinds),
            action: match result.action {
                Some(action) => Some(action.as_str()),
                None if result.kinds != 0 && outcome == RowOutcome::Succeeded => Some("updated"),
                None => None,
            },
            record: result.record,
        })
    })
}

/// The report's `carried_by` for a kinds bitmask: the kinds joined by `+`.
fn carried_by(kinds: u8) -> Option<&'static str> {
    // Every combination, joined once: the names are what reports keep for each row.
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    const KINDS: [&str; 5] = [
        "mass_update",
        "update_records",
        "bulk",
        "upsert_records",
        "delete_records",
    ];
    let names = NAMES.get_or_init(|| {
        (0..1u32 << KINDS.len())
            .map(|bits| {
                let named: Vec<&str> = (0..KINDS.len())
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| KINDS[i])
                    .collect();
                named.join("+")
            })
            .collect()
    });
    names
        .get(kinds as usize)
        .filter(|n| !n.is_empty())
        .map(String::as_str)
}

/// Counts for `status` and the end of a run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunCounts {
    pub rows: BTreeMap<&'static str, u64>,
    pub items: BTreeMap<&'static str, u64>,
    pub items_by_code: BTreeMap<String, u64>,
    /// `items_by_code` split by the state its items ended in, so that a picture can colour
    /// a code by outcome (RECORD_LOCKED retryable, or failed once its attempts ran out).
    #[serde(skip)]
    pub items_by_state_and_code: BTreeMap<(&'static str, String), u64>,
    pub chunks: BTreeMap<ChunkState, u64>,
    /// Calls logged (every HTTP attempt whose answer, or its absence, was recorded).
    pub calls: u64,
    /// Calls that may have been sent by processes that died before logging them (at most
    /// one per chunk left in flight): the credits the log cannot show.
    pub calls_unlogged_at_most: u64,
    pub min_calls: u64,
    /// Calls beyond one per chunk attempted: retries of transient failures and of `retry`.
    pub retries: u64,
    pub first_call_at: Option<String>,
    pub last_call_at: Option<String>,
    /// The invocations that sent the run, oldest first (time per invocation).
    pub sends: Vec<store::sends::Send>,
    /// Values the run's snapshot keeps (record x field): 0 means it cannot be undone.
    pub snapshot_values: u64,
    /// The command that takes the run back, when it can be undone.
    pub undo_command: Option<String>,
    /// API credits the run has spent (Zoho's unit of cost), every kind of call counted:
    /// writes and their retries, snapshot reads, lookups and metadata while planning.
    pub credits: u64,
    /// Calls and credits by kind of call (`mass_update`, `update_records`,
    /// `get_records`, `coql`, `metadata`, `upsert_records`, `delete_records`).
    pub spend: BTreeMap<&'static str, Spend>,
    /// `--create-missing`: records the run created (counted apart from the rows that
    /// updated a record; None for a run without the flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
}

/// Calls of one kind and what they cost.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct Spend {
    pub calls: u64,
    pub credits: u64,
}

impl RunCounts {
    pub fn rows(&self, outcome: RowOutcome) -> u64 {
        self.rows.get(outcome.as_str()).copied().unwrap_or(0)
    }

    pub fn items(&self, state: ItemState) -> u64 {
        self.items.get(state.as_str()).copied().unwrap_or(0)
    }

    /// Work that `resume` would still do.
    pub fn unfinished_chunks(&self) -> u64 {
        self.chunks.get(&ChunkState::Pending).copied().unwrap_or(0)
            + self.chunks.get(&ChunkState::InFlight).copied().unwrap_or(0)
    }
}

pub fn run_counts(conn: &Connection, run: &RunInfo) -> Result<RunCounts, StoreError> {
    let mut counts = RunCounts {
        min_calls: run.min_calls as u64,
        snapshot_values: store::befores::count(conn, run.id)?,
        ..RunCounts::default()
    };
    if run.settings["create_missing"] == serde_json::Value::Bool(true) {
        counts.created = Some(crate::store::created::count(conn, run.id)?);
    }
    if counts.snapshot_values > 0 || counts.created.is_some_and(|n| n > 0) {
        counts.undo_command = Some(format!("massup undo --run {}", run.id));
    }
    for outcome in [
        RowOutcome::Succeeded,
        RowOutcome::Retryable,
        RowOutcome::Pending,
        RowOutcome::Failed,
        RowOutcome::Invalid,
    ] {
        counts.rows.insert(outcome.as_str(), 0);
    }
    // Row outcomes from the chunks alone, one byte a row (a row is as good as its worst
    // item): status and the end of a run read the chunks, not the million rows. Rows
    // without an item are the invalid ones.
    let mut worst = vec![0u8; run.input_rows.max(0) as usize];
    for state in [
        ItemState::Pending,
        ItemState::Succeeded,
        ItemState::Retryable,
        ItemState::Failed,
    ] {
        counts.items.insert(state.as_str(), 0);
    }
    chunks::for_each_chunk(
        conn,
        run.id,
        |chunk: StoredChunk| -> Result<(), StoreError> {
            *counts.chunks.entry(chunk.state).or_default() += 1;
            for (member, &byte) in chunk.members.iter().zip(&chunk.outcomes) {
                if let Some(w) = worst.get_mut(member.row_no as usize) {
                    *w = (*w).max(RowOutcome::rank(ItemState::from_byte(byte)));
                }
            }
            for (i, &byte) in chunk.outcomes.iter().enumerate() {
                let state = ItemState::from_byte(byte);
                if state == ItemState::Requeued {
                    continue;
                }
                *counts.items.entry(state.as_str()).or_default() += 1;
                let code = match (state, chunk.details.get(&(i as u32))) {
                    // A success keeps a detail only when nothing was sent (UNCHANGED).
                    (ItemState::Succeeded, Some((code, _))) => Some(code.as_str()),
                    (ItemState::Succeeded, None) => Some(crate::codes::SUCCESS),
                    (_, Some((code, _))) => Some(code.as_str()),
                    (_, None) => chunk.code.as_deref(),
                };
                if let Some(code) = code {
                    *counts.items_by_code.entry(code.to_string()).or_default() += 1;
                    *counts
                        .items_by_state_and_code
                        .entry((state.as_str(), code.to_string()))
                        .or_default() += 1;
                }
            }
            Ok(())
        },
    )?;
    // A merged row's changes ride with an earlier row: it is as good as both.
    if run.merged_rows > 0 {
        for (row, target) in rows::merged_rows(conn, run.id)? {
            let target = worst.get(target as usize).copied().unwrap_or(0);
            if let Some(w) = worst.get_mut(row as usize) {
                *w = (*w).max(target);
            }
        }
    }
    for w in worst {
        let outcome = match w {
            0 => RowOutcome::Invalid,
            1 => RowOutcome::Succeeded,
            2 => RowOutcome::Retryable,
            3 => RowOutcome::Pending,
            _ => RowOutcome::Failed,
        };
        *counts.rows.entry(outcome.as_str()).or_default() += 1;
    }
    let calls = store::calls::stats(conn, run.id)?;
    (counts.credits, counts.spend) = spend(conn, run.id, &calls)?;
    counts.calls = calls.calls;
    counts.calls_unlogged_at_most = chunks::resets(conn, run.id)?;
    counts.retries = calls.calls - calls.chunks_called;
    counts.first_call_at = calls.first_call_at;
    counts.last_call_at = calls.last_call_at;
    counts.sends = store::sends::sends(conn, run.id)?;
    Ok(counts)
}

/// The credits a run has spent and what on, by kind of call: the calls log, and the
/// lookups and metadata its plan made.
fn spend(
    conn: &Connection,
    run_id: i64,
    calls: &store::calls::CallStats,
) -> Result<(u64, BTreeMap<&'static str, Spend>), StoreError> {
    let plan = store::runs::plan_spend(conn, run_id)?;
    let mut total = 0;
    let mut by_kind: BTreeMap<&'static str, Spend> = BTreeMap::new();
    let mut add = |kind: CallKind, calls: u64, credits: u64| {
        if calls > 0 {
            let entry = by_kind.entry(kind.name()).or_default();
            entry.calls += calls;
            entry.credits += credits;
            total += credits;
        }
    };
    add(CallKind::Coql, plan.lookup_calls, plan.lookup_credits);
    add(
        CallKind::Metadata,
        plan.metadata_calls,
        plan.metadata_calls * crate::api::limits::credits(CallKind::Metadata, 0),
    );
    for (kind, calls, credits) in &calls.by_kind {
        if let Some(kind) = CallKind::from_name(kind) {
            add(kind, *calls, *credits);
        }
    }
    Ok((total, by_kind))
}

/// The credits a run has spent, every kind of call counted (without walking its chunks).
pub fn credits_spent(conn: &Connection, run_id: i64) -> Result<u64, StoreError> {
    let calls = store::calls::stats(conn, run_id)?;
    Ok(spend(conn, run_id, &calls)?.0)
}

/// The calls a `resume --run N` would send: the unfinished ones, none for a run that ended
/// otherwise (superseded, discarded, undone).
pub fn resume_would_send(run: &RunInfo, counts: &RunCounts) -> u64 {
    if run.ended_as.is_some() {
        0
    } else {
        counts.unfinished_chunks()
    }
}
