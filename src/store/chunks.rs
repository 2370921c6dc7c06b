//! Groups and chunks. A group is one request body (a field-value set); a chunk is one
//! call's worth of its items, packed (see [`codec`](super::codec)). A chunk is marked
//! `in_flight` and committed before it is sent, so a crash leaves it for `resume`.
use rusqlite::{params, Connection};

pub use super::calls::CallRecord;
use super::codec::{
    chunk_checksum, decode_details, decode_members, encode_details, encode_members, group_checksum,
    Details,
};
use super::runs::expect_one_changed;
use super::{now, StoreError};
use crate::api::limits::CallKind;
use crate::logging::server_text;
use crate::outcome::{ItemState, Member};

/// Where a chunk stands. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkState {
    /// Waiting to be sent (again).
    Pending,
    /// Claimed by a sender and perhaps sent; committed before the first request leaves.
    InFlight,
    /// Every item has its answer for this run (succeeded, failed, retryable or requeued).
    Done,
}

impl ChunkState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkState::Pending => "pending",
            ChunkState::InFlight => "in_flight",
            ChunkState::Done => "done",
        }
    }

    fn parse(text: &str) -> Option<ChunkState> {
        [ChunkState::Pending, ChunkState::InFlight, ChunkState::Done]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl rusqlite::types::FromSql for ChunkState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        ChunkState::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown chunk state {text:?}").into())
        })
    }
}

/// The kind of call a chunk is sent as: [`CallKind::MassUpdate`] or
/// [`CallKind::UpdateRecords`], stored as its name.
impl rusqlite::types::FromSql for CallKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        CallKind::from_name(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown call kind {text:?}").into())
        })
    }
}

/// The field names of a per-record object, sorted and joined: what a Bulk Write job's
/// rows must share.
pub fn field_names(object: &str) -> String {
    let map: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(object).unwrap_or_default();
    map.into_keys().collect::<Vec<_>>().join(",")
}

/// The per-member payloads column: a JSON array of the members' objects.
fn encode_payloads(payloads: Option<&[String]>) -> Option<String> {
    payloads.map(|p| format!("[{}]", p.join(",")))
}

/// Reads the payloads column back into one object (as JSON text) per member.
fn decode_payloads(json: Option<&str>) -> Option<Vec<String>> {
    let values: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(json?).ok()?;
    Some(values.into_iter().map(|v| v.get().to_string()).collect())
}

/// Inserts a group (one request body); returns its id.
pub fn insert_group(
    conn: &Connection,
    run_id: i64,
    payload_json: &str,
    items: usize,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO groups (run_id, payload_json, items, checksum) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        run_id,
        payload_json,
        items,
        group_checksum(payload_json)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Inserts a pending mass_update chunk of `members` of a group, every item pending.
pub fn insert_chunk(
    conn: &Connection,
    run_id: i64,
    group_id: i64,
    members: &[Member],
) -> Result<(), StoreError> {
    insert_chunk_of(conn, run_id, group_id, members, None)
}

/// Inserts a pending chunk. With `payloads` (one JSON object per member) it is an Update
/// Records call; without, a mass_update call of its group's payload.
pub fn insert_chunk_of(
    conn: &Connection,
    run_id: i64,
    group_id: i64,
    members: &[Member],
    payloads: Option<&[String]>,
) -> Result<(), StoreError> {
    let kind = match payloads {
        Some(_) => CallKind::UpdateRecords,
        None => CallKind::MassUpdate,
    };
    insert_chunk_kind(conn, run_id, group_id, kind, members, payloads)
}

/// Inserts a pending chunk of `kind`: Update Records, Bulk Write and Upsert Records carry
/// one JSON object per member in `payloads`; a Delete Records chunk may carry, per member,
/// the values its run wrote (what an undo compares before deleting); mass_update none.
pub fn insert_chunk_kind(
    conn: &Connection,
    run_id: i64,
    group_id: i64,
    kind: CallKind,
    members: &[Member],
    payloads: Option<&[String]>,
) -> Result<(), StoreError> {
    debug_assert!(!kind.per_record() || payloads.is_some());
    let packed = encode_members(members.iter().copied());
    let payloads = encode_payloads(payloads);
    let checksum = chunk_checksum(&packed, payloads.as_deref());
    conn.prepare_cached(
        "INSERT INTO chunks (run_id, group_id, state, size, members, outcomes, created_at, kind, payloads, checksum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        run_id,
        group_id,
        ChunkState::Pending.as_str(),
        members.len(),
        packed,
        vec![ItemState::Pending as u8; members.len()],
        now(),
        kind.name(),
        payloads,
        checksum
    ])?;
    Ok(())
}

/// Calls that may have been sent (and cost a credit) without being logged, over the run:
/// one for every time a chunk was reset after a process died with it in flight, and one
/// for every chunk in flight now. A chunk is in flight on disk, committed, before its call
/// leaves, while its call is logged later, in a batch: a process that stopped between the
/// two (killed, or its writer failed on a full disk) leaves the chunk in flight until the
/// next `resume` resets it, and its call must not count as 0 meanwhile. During a run the
/// chunks being sent count too: their calls may well have reached Zoho already.
pub fn resets(conn: &Connection, run_id: i64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(resets), 0) + COALESCE(SUM(state = ?2), 0) FROM chunks WHERE run_id = ?1",
        params![run_id, ChunkState::InFlight.as_str()],
        |r| r.get(0),
    )?)
}

/// Whether any chunk of the run is not done (pending, or left in flight): whether a
/// resume has anything to send. One indexed probe, not a walk of the chunks.
pub fn has_unfinished(conn: &Connection, run_id: i64) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM chunks WHERE run_id = ?1 AND state <> ?2)",
        params![run_id, ChunkState::Done.as_str()],
        |r| r.get(0),
    )?)
}

/// Ids of a run's pending chunks, in plan order.
pub fn pending_chunk_ids(conn: &Connection, run_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT id FROM chunks WHERE run_id = ?1 AND state = ?2 ORDER BY id")?;
    let ids = stmt
        .query_map(params![run_id, ChunkState::Pending.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Items not yet settled in chunks that are not done: what a dispatch still has to send.
pub fn unsettled_items(conn: &Connection, run_id: i64) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare("SELECT outcomes FROM chunks WHERE run_id = ?1 AND state <> ?2")?;
    let mut rows = stmt.query(params![run_id, ChunkState::Done.as_str()])?;
    let mut total = 0u64;
    while let Some(r) = rows.next()? {
        let outcomes: Vec<u8> = r.get(0)?;
        total += outcomes
            .iter()
            .filter(|&&b| ItemState::from_byte(b) == ItemState::Pending)
            .count() as u64;
    }
    Ok(total)
}

/// What sending a run's unsettled chunks would do, for the question `run` and `retry` ask
/// on a terminal before sending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingWork {
    /// Calls (chunks not done).
    pub calls: u64,
    /// Record updates still pending.
    pub updates: u64,
    /// Field values those updates write (an update of three fields writes three).
    pub field_values: u64,
    /// Distinct records they touch.
    pub records: u64,
    /// What those calls cost in API credits (fault-free; snapshot reads not included).
    pub credits: u64,
    /// Get Records calls (100 ids each) that reading the pending records of chunks not yet
    /// snapshotted takes, chunk by chunk (what a snapshot comparing before each call
    /// reads; a plain snapshot reads a record once, at most this).
    pub read_calls: u64,
    /// Distinct records of chunks not yet snapshotted.
    pub unread_records: u64,
}

pub fn pending_work(conn: &Connection, run_id: i64) -> Result<PendingWork, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT c.members, c.outcomes, c.kind, c.payloads, g.payload_json, c.snapshotted
         FROM chunks c JOIN groups g ON g.id = c.group_id
         WHERE c.run_id = ?1 AND c.state <> ?2",
    )?;
    let mut rows = stmt.query(params![run_id, ChunkState::Done.as_str()])?;
    let mut work = PendingWork::default();
    let mut records = std::collections::HashSet::new();
    let mut unread = std::collections::HashSet::new();
    let fields_of = |json: &str| -> u64 {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
            .map_or(0, |m| m.keys().filter(|k| *k != "id").count() as u64)
    };
    while let Some(r) = rows.next()? {
        let members = decode_members(&r.get::<_, Vec<u8>>(0)?);
        let outcomes: Vec<u8> = r.get(1)?;
        let kind: CallKind = r.get(2)?;
        let payloads = decode_payloads(r.get::<_, Option<String>>(3)?.as_deref());
        let group_fields = fields_of(&r.get::<_, String>(4)?);
        let snapshotted: bool = r.get(5)?;
        let mut pending = 0usize;
        for (i, member) in members.iter().enumerate() {
            if ItemState::from_byte(outcomes.get(i).copied().unwrap_or(0)) != ItemState::Pending {
                continue;
            }
            pending += 1;
            work.updates += 1;
            records.insert(member.record_id);
            if !snapshotted {
                unread.insert(member.record_id);
            }
            work.field_values += match (kind, &payloads) {
                (kind, Some(p)) if kind.per_record() => p.get(i).map_or(0, |o| fields_of(o)),
                _ => group_fields,
            };
        }
        if pending > 0 {
            work.calls += 1;
            work.credits += crate::api::limits::credits(kind, pending);
            if !snapshotted {
                work.read_calls += pending.div_ceil(crate::api::limits::MAX_IDS_PER_READ) as u64;
            }
        }
    }
    work.records = records.len() as u64;
    work.unread_records = unread.len() as u64;
    Ok(work)
}

/// Puts chunks left in flight by a crash or kill back to pending, counting the reset (its
/// calls may have been sent without being logged). Returns how many.
pub fn reset_in_flight(conn: &Connection, run_id: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE chunks SET state = ?2, resets = resets + 1 WHERE run_id = ?1 AND state = ?3",
        params![
            run_id,
            ChunkState::Pending.as_str(),
            ChunkState::InFlight.as_str()
        ],
    )?)
}

/// A chunk handed to a sender, with its group's request payload.
#[derive(Debug, Clone)]
pub struct ClaimedChunk {
    pub id: i64,
    pub kind: CallKind,
    /// The group's value set (mass_update); `{}` for Update Records.
    pub payload: String,
    /// Update Records: one object of fields per member.
    pub payloads: Option<Vec<String>>,
    pub members: Vec<Member>,
    pub outcomes: Vec<u8>,
    pub details: Details,
    /// Its records' values before any call are stored (see `befores`).
    pub snapshotted: bool,
    /// Bulk Write: the job it started, if any (see `store::bulk`).
    pub bulk: Option<crate::store::bulk::BulkJob>,
    /// A call of it was made (or may have been: a reset after a kill) before this claim:
    /// an Upsert that finds the record its key names may have created it then.
    pub tried_before: bool,
}

/// Marks the chunks that are still pending in flight and loads them; chunks no longer
/// pending are skipped. The caller commits before anything is sent.
///
/// What each chunk sends (members, per-record payloads, its group's value set) is checked
/// against the checksums written with it (migration 0008; chunks planned before carry
/// none and are not checked) before anything is marked: a chunk that does not match
/// fails the whole claim with [`StoreError::ChunkDamaged`], naming it, and every chunk of
/// the claim stays pending.
pub fn claim(
    conn: &Connection,
    run_id: i64,
    chunk_ids: &[i64],
) -> Result<Vec<ClaimedChunk>, StoreError> {
    use rusqlite::OptionalExtension;
    let mut load = conn.prepare_cached(
        "SELECT c.members, c.outcomes, c.details_json, g.payload_json, c.kind, c.payloads,
                c.snapshotted, c.checksum, g.checksum, c.attempts + c.resets + c.prior_attempts > 0
         FROM chunks c JOIN groups g ON g.id = c.group_id
         WHERE c.id = ?1 AND c.run_id = ?2 AND c.state = ?3",
    )?;
    let mut claimed = Vec::with_capacity(chunk_ids.len());
    for &id in chunk_ids {
        let Some(row) = load
            .query_row(params![id, run_id, ChunkState::Pending.as_str()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, CallKind>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<Vec<u8>>>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                    r.get::<_, bool>(9)?,
                ))
            })
            .optional()?
        else {
            continue; // not pending any more
        };
        let (
            members,
            outcomes,
            details_json,
            payload,
            kind,
            payloads,
            snapshotted,
            sum,
            group_sum,
            tried_before,
        ) = row;
        let damaged = if sum.is_some_and(|s| s != chunk_checksum(&members, payloads.as_deref())) {
            Some(if kind.per_record() {
                "its record ids or their values"
            } else {
                "its record ids"
            })
        } else if group_sum.is_some_and(|s| s != group_checksum(&payload)) {
            Some("the values its group writes")
        } else if outcomes.len() * 12 != members.len() {
            Some("its record ids or their outcomes")
        } else {
            None
        };
        if let Some(part) = damaged {
            return Err(StoreError::ChunkDamaged {
                run_id,
                chunk_id: id,
                part,
            });
        }
        let bulk = match kind {
            CallKind::BulkWrite => crate::store::bulk::load(conn, id)?,
            _ => None,
        };
        claimed.push(ClaimedChunk {
            bulk,
            id,
            kind,
            payload,
            payloads: decode_payloads(payloads.as_deref()),
            members: decode_members(&members),
            outcomes,
            details: decode_details(details_json.as_deref()),
            snapshotted,
            tried_before,
        });
    }
    let mut mark = conn.prepare_cached(
        "UPDATE chunks SET state = ?3 WHERE id = ?1 AND run_id = ?2 AND state = ?4",
    )?;
    for chunk in &claimed {
        let marked = mark.execute(params![
            chunk.id,
            run_id,
            ChunkState::InFlight.as_str(),
            ChunkState::Pending.as_str()
        ])?;
        expect_one_changed(marked)?;
    }
    Ok(claimed)
}

/// The state of an in-flight chunk after one attempt (or after a decision not to send it).
#[derive(Debug)]
pub struct ChunkUpdate {
    pub chunk_id: i64,
    pub outcomes: Vec<u8>,
    pub details: Details,
    /// The answer for the call as a whole; None keeps the stored one.
    pub code: Option<String>,
    pub message: Option<String>,
    /// None: still in flight (another attempt follows); Some: the state it leaves in.
    pub leaves_as: Option<ChunkState>,
    /// The HTTP attempt, when one was made.
    pub call: Option<CallRecord>,
}

/// Stores an update of a chunk this process holds in flight, and its call if any. Fails
/// if the chunk is not in flight (someone else reset or finished it).
pub fn record_attempt(
    conn: &Connection,
    run_id: i64,
    update: &ChunkUpdate,
) -> Result<(), StoreError> {
    // Answers are server text: whatever secret one echoes is masked, and every control
    // character escaped, before it is stored (reports and status read it from here).
    let message = update.message.as_deref().map(server_text);
    let code = update.code.as_deref().map(server_text);
    let details = redacted(&update.details);
    let attempts = i64::from(update.call.is_some());
    let last_attempt_at = update.call.as_ref().map(|c| c.started_at.clone());
    let changed = conn
        .prepare_cached(
            "UPDATE chunks SET outcomes = ?2, details_json = ?3, code = COALESCE(?4, code),
                 message = COALESCE(?5, message), attempts = attempts + ?6,
                 last_attempt_at = COALESCE(?7, last_attempt_at), state = COALESCE(?8, state)
             WHERE id = ?1 AND state = ?9",
        )?
        .execute(params![
            update.chunk_id,
            update.outcomes,
            encode_details(details.as_ref().unwrap_or(&update.details)),
            code,
            message,
            attempts,
            last_attempt_at,
            update.leaves_as.map(ChunkState::as_str),
            ChunkState::InFlight.as_str(),
        ])?;
    expect_one_changed(changed)?;
    if let Some(call) = &update.call {
        super::calls::insert(conn, run_id, update.chunk_id, call)?;
    }
    Ok(())
}

/// The details with every code and message made safe ([`server_text`]), or None when
/// none needed it (the usual case: no copy).
fn redacted(details: &Details) -> Option<Details> {
    let unsafe_text = |t: &str| matches!(server_text(t), std::borrow::Cow::Owned(_));
    if !details
        .values()
        .any(|(c, m)| unsafe_text(c) || unsafe_text(m))
    {
        return None;
    }
    Some(
        details
            .iter()
            .map(|(&i, (c, m))| {
                (
                    i,
                    (server_text(c).into_owned(), server_text(m).into_owned()),
                )
            })
            .collect(),
    )
}

/// A chunk as stored, for the readers that walk a whole run (summary, requeue).
pub struct StoredChunk {
    pub id: i64,
    pub group_id: i64,
    pub kind: CallKind,
    /// Update Records: the members' objects, as stored (a JSON array); read them with
    /// [`StoredChunk::payloads`]. Kept as text because only `retry` needs them, and `status`
    /// walks every chunk.
    pub payloads_json: Option<String>,
    pub state: ChunkState,
    pub members: Vec<Member>,
    pub outcomes: Vec<u8>,
    pub details: Details,
    pub code: Option<String>,
    pub message: Option<String>,
    pub attempts: u32,
    pub last_attempt_at: Option<String>,
    /// Calls its items made in the chunks they were re-queued from (the most of any).
    pub prior_attempts: u32,
}

impl StoredChunk {
    /// Calls an item of this chunk has made in all, across retries (an upper bound: the
    /// most of any item re-queued into it, plus this chunk's).
    pub fn attempts_total(&self) -> u32 {
        self.prior_attempts + self.attempts
    }
    /// Update Records: one object per member (None for a mass_update chunk).
    pub fn payloads(&self) -> Option<Vec<String>> {
        decode_payloads(self.payloads_json.as_deref())
    }
}

/// Calls `each` with every chunk of a run, in plan order.
/// Every group's value set of a run, by group id (`{}` for the per-record group).
pub fn group_payloads(
    conn: &Connection,
    run_id: i64,
) -> Result<std::collections::HashMap<i64, String>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, payload_json FROM groups WHERE run_id = ?1")?;
    let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn for_each_chunk<E: From<StoreError>>(
    conn: &Connection,
    run_id: i64,
    mut each: impl FnMut(StoredChunk) -> Result<(), E>,
) -> Result<(), E> {
    let sql = |e: rusqlite::Error| E::from(StoreError::Sql(e));
    let mut stmt = conn
        .prepare(
            "SELECT id, group_id, state, members, outcomes, details_json, code, message, attempts,
                    last_attempt_at, kind, payloads, prior_attempts
             FROM chunks WHERE run_id = ?1 ORDER BY id",
        )
        .map_err(sql)?;
    let mut query = stmt.query(params![run_id]).map_err(sql)?;
    while let Some(r) = query.next().map_err(sql)? {
        let chunk = (|| -> rusqlite::Result<StoredChunk> {
            Ok(StoredChunk {
                id: r.get(0)?,
                group_id: r.get(1)?,
                state: r.get(2)?,
                members: decode_members(&r.get::<_, Vec<u8>>(3)?),
                outcomes: r.get(4)?,
                details: decode_details(r.get::<_, Option<String>>(5)?.as_deref()),
                code: r.get(6)?,
                message: r.get(7)?,
                attempts: r.get(8)?,
                last_attempt_at: r.get(9)?,
                kind: r.get(10)?,
                payloads_json: r.get(11)?,
                prior_attempts: r.get(12)?,
            })
        })()
        .map_err(sql)?;
        each(chunk)?;
    }
    Ok(())
}

/// Moves items into fresh chunks in one transaction: `select` picks, per chunk that is not
/// in flight, the items to move (their index); those are marked requeued, and the moved
/// items of each group and kind are cut into new chunks of the sizes `sizes` gives (for
/// a kind and a count). Update Records items keep their own values. An item that has made
/// `max_total` calls or more across retries is not moved: it ends failed, saying so.
/// Returns what was re-queued and ended.
pub fn requeue(
    conn: &mut Connection,
    run_id: i64,
    mut select: impl FnMut(&StoredChunk) -> Vec<usize>,
    sizes: impl Fn(CallKind, usize) -> (CallKind, Vec<usize>),
    max_total: Option<u32>,
) -> Result<Requeued, StoreError> {
    let tx = conn.transaction()?;
    // Members, their payloads, and the most calls any of them has made.
    type Moved = (Vec<Member>, Vec<String>, u32);
    // Bulk Write items are kept apart by the fields they change (a job's CSV has the same
    // columns for every row); the others by group and kind alone.
    let mut by_group: std::collections::BTreeMap<(i64, CallKind, String), Moved> =
        Default::default();
    let mut changed: Vec<(i64, Vec<u8>, Option<Details>)> = Vec::new();
    let mut ended = 0u64;
    for_each_chunk(
        &tx,
        run_id,
        |chunk: StoredChunk| -> Result<(), StoreError> {
            if chunk.state == ChunkState::InFlight {
                return Ok(());
            }
            let chosen = select(&chunk);
            if chosen.is_empty() {
                return Ok(());
            }
            let mut outcomes = chunk.outcomes.clone();
            let total = chunk.attempts_total();
            if let Some(max) = max_total.filter(|&max| total >= max) {
                // Still locked (or not approved) after every attempt allowed: the record
                // ends failed, so the run reaches a final state.
                let mut details = chunk.details.clone();
                for i in chosen {
                    let code = details
                        .get(&(i as u32))
                        .map(|(c, _)| c.clone())
                        .or_else(|| chunk.code.clone())
                        .unwrap_or_default();
                    outcomes[i] = ItemState::Failed as u8;
                    details.insert(
                        i as u32,
                        (
                            code.clone(),
                            format!("still {code} after {total} attempts; not retried again (--max-attempts-total {max})"),
                        ),
                    );
                    ended += 1;
                }
                changed.push((chunk.id, outcomes, Some(details)));
                return Ok(());
            }
            let payloads = chunk.payloads();
            for i in chosen {
                let payload = payloads
                    .as_ref()
                    .map(|p| p.get(i).cloned().unwrap_or_else(|| "{}".into()));
                let signature = match (&payload, chunk.kind) {
                    (Some(object), CallKind::BulkWrite) => field_names(object),
                    _ => String::new(),
                };
                let moved = by_group
                    .entry((chunk.group_id, chunk.kind, signature))
                    .or_default();
                moved.2 = moved.2.max(total);
                outcomes[i] = ItemState::Requeued as u8;
                moved.0.push(chunk.members[i]);
                if let Some(payload) = payload {
                    moved.1.push(payload);
                }
            }
            changed.push((chunk.id, outcomes, None));
            Ok(())
        },
    )?;
    {
        let mut update = tx.prepare(
            "UPDATE chunks SET outcomes = ?2, details_json = COALESCE(?4, details_json)
             WHERE id = ?1 AND state <> ?3",
        )?;
        for (id, outcomes, details) in changed {
            let details = details.as_ref().and_then(encode_details);
            let n = update.execute(params![
                id,
                outcomes,
                ChunkState::InFlight.as_str(),
                details
            ])?;
            expect_one_changed(n)?;
        }
    }
    let (mut items, mut chunks) = (0u64, 0u64);
    for ((group_id, kind, _), (members, payloads, prior)) in by_group {
        let mut start = 0;
        let (kind, cut) = sizes(kind, members.len());
        for size in cut {
            let part = start..start + size;
            let values = (!payloads.is_empty()).then(|| &payloads[part.clone()]);
            insert_chunk_kind(&tx, run_id, group_id, kind, &members[part], values)?;
            // Every re-queued item was sent before, so its values before any call were read
            // (if the run takes snapshots) in the chunk it came from: never read them again.
            tx.execute(
                "UPDATE chunks SET snapshotted = 1, prior_attempts = ?2 WHERE id = ?1",
                params![tx.last_insert_rowid(), prior],
            )?;
            start += size;
            items += size as u64;
            chunks += 1;
        }
    }
    tx.commit()?;
    Ok(Requeued {
        items,
        chunks,
        ended,
    })
}

/// What `retry` re-queued: record updates and the calls they were regrouped into, and the
/// record updates it ended as failed (out of attempts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requeued {
    pub items: u64,
    pub chunks: u64,
    pub ended: u64,
}

/// A chunk's members, its group's payload, and its members' own payloads (Update Records).
pub type FirstChunk = (Vec<Member>, String, Option<Vec<String>>, CallKind);

/// The first chunk of a run: the example request a plan shows.
pub fn first_chunk(conn: &Connection, run_id: i64) -> Result<Option<FirstChunk>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT c.members, g.payload_json, c.payloads, c.kind FROM chunks c
             JOIN groups g ON g.id = c.group_id
             WHERE c.run_id = ?1 ORDER BY c.id LIMIT 1",
            params![run_id],
            |r| {
                Ok((
                    decode_members(&r.get::<_, Vec<u8>>(0)?),
                    r.get::<_, String>(1)?,
                    decode_payloads(r.get::<_, Option<String>>(2)?.as_deref()),
                    r.get::<_, CallKind>(3)?,
                ))
            },
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::runs::{insert_run, NewRun};

    fn members(ids: &[i64]) -> Vec<Member> {
        ids.iter()
            .enumerate()
            .map(|(i, &record_id)| Member {
                row_no: i as u32,
                record_id,
            })
            .collect()
    }

    /// A run with a mass_update chunk (1) and an Update Records chunk (2).
    fn planned() -> (Connection, i64) {
        let conn = crate::store::open_in_memory().unwrap();
        let run = insert_run(
            &conn,
            &NewRun {
                module: "Leads",
                csv_path: "x.csv",
                csv_sha256: "0",
                id_column: "id",
                columns_json: "[]",
                settings_json: "{}",
                fields_json: None,
                send_json: None,
            },
        )
        .unwrap();
        let group = insert_group(&conn, run, r#"{"Lead_Status":"Contacted"}"#, 2).unwrap();
        insert_chunk(&conn, run, group, &members(&[11, 12])).unwrap();
        let per_record = insert_group(&conn, run, "{}", 1).unwrap();
        let payloads = [r#"{"City":"Oslo"}"#.to_string()];
        insert_chunk_of(&conn, run, per_record, &members(&[13]), Some(&payloads)).unwrap();
        (conn, run)
    }

    fn state(conn: &Connection, chunk: i64) -> String {
        conn.query_row("SELECT state FROM chunks WHERE id = ?1", [chunk], |r| {
            r.get(0)
        })
        .unwrap()
    }

    #[test]
    fn intact_chunks_are_claimed_with_what_they_send() {
        let (conn, run) = planned();
        let claimed = claim(&conn, run, &[1, 2]).unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].members[1].record_id, 12);
        assert_eq!(
            claimed[1].payloads.as_ref().unwrap()[0],
            r#"{"City":"Oslo"}"#
        );
        assert_eq!(state(&conn, 1), "in_flight");
        // Claimed already: skipped.
        assert!(claim(&conn, run, &[1]).unwrap().is_empty());
    }

    #[test]
    fn damage_to_what_a_chunk_sends_is_found_before_anything_is_claimed() {
        let flip_a_record_id = |conn: &Connection| {
            let mut blob: Vec<u8> = conn
                .query_row("SELECT members FROM chunks WHERE id = 1", [], |r| r.get(0))
                .unwrap();
            blob[4] ^= 1;
            conn.execute("UPDATE chunks SET members = ?1 WHERE id = 1", [blob])
                .unwrap();
        };
        let change_a_value = |conn: &Connection| {
            conn.execute(
                "UPDATE chunks SET payloads = '[{\"City\":\"Osla\"}]' WHERE id = 2",
                [],
            )
            .unwrap();
        };
        let change_the_group = |conn: &Connection| {
            conn.execute(
                "UPDATE groups SET payload_json = '{\"Lead_Status\":\"Contactes\"}' WHERE id = 1",
                [],
            )
            .unwrap();
        };
        type Damage<'a> = &'a dyn Fn(&Connection);
        let cases: [(Damage, i64); 3] = [
            (&flip_a_record_id, 1),
            (&change_a_value, 2),
            (&change_the_group, 1),
        ];
        for (damage, chunk) in cases {
            let (conn, run) = planned();
            damage(&conn);
            match claim(&conn, run, &[2, 1]) {
                Err(StoreError::ChunkDamaged { chunk_id, .. }) => assert_eq!(chunk_id, chunk),
                other => panic!("chunk {chunk}: {:?}", other.map(|c| c.len())),
            }
            // Nothing of the claim was marked: both chunks are still pending.
            assert_eq!(
                (state(&conn, 1), state(&conn, 2)),
                ("pending".into(), "pending".into())
            );
        }
    }

    #[test]
    fn chunks_without_a_checksum_are_claimed_unchecked() {
        let (conn, run) = planned();
        conn.execute_batch(
            "UPDATE chunks SET checksum = NULL, payloads = '[{\"City\":\"Bergen\"}]' WHERE id = 2;
             UPDATE groups SET checksum = NULL",
        )
        .unwrap();
        let claimed = claim(&conn, run, &[1, 2]).unwrap();
        assert_eq!(claimed.len(), 2);
    }

    #[test]
    fn chunks_in_flight_count_as_calls_perhaps_unlogged() {
        let (conn, run) = planned();
        assert_eq!(resets(&conn, run).unwrap(), 0);
        claim(&conn, run, &[1, 2]).unwrap();
        assert_eq!(resets(&conn, run).unwrap(), 2);
        // Reset by the next send: counted as resets instead, not twice.
        assert_eq!(reset_in_flight(&conn, run).unwrap(), 2);
        assert_eq!(resets(&conn, run).unwrap(), 2);
    }
}
