//! The writer: the only owner of the database connection during a dispatch. Claims are
//! committed before they are answered, so nothing is sent before it is `in_flight` on disk;
//! attempts are committed in batches.
use tokio::sync::{mpsc, oneshot};

use crate::store::chunks::{self, ChunkUpdate, ClaimedChunk};
use crate::store::StoreError;

/// What the feeder and the workers ask of the writer.
pub enum WriterMsg {
    /// Mark these chunks in flight (those still pending) and hand them over.
    Claim {
        chunk_ids: Vec<i64>,
        reply: oneshot::Sender<Result<Vec<ClaimedChunk>, StoreError>>,
    },
    /// Store what an attempt did to a chunk.
    Attempt(Box<ChunkUpdate>),
    /// Log a call that changed no item (a snapshot's read), with its chunk.
    Call {
        chunk_id: i64,
        call: crate::store::chunks::CallRecord,
    },
    /// Keep where a chunk's Bulk Write job stands (and the run's org id); answered once
    /// committed, so no step is taken before the id of the step before is on disk.
    Bulk {
        chunk_id: i64,
        job: crate::store::bulk::BulkJob,
        org_id: Option<String>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Keep the ids Zoho gave the records an Upsert call created (`--create-missing`).
    Created(Vec<crate::store::created::CreatedRecord>),
    /// Store a chunk's snapshot; answered once committed, so no call leaves before the
    /// values it overwrites are on disk.
    Snapshot {
        chunk_id: i64,
        values: Vec<crate::store::befores::FieldValue>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Messages a writer transaction takes before it commits: large enough to make commits
/// rare at 1,000 calls/s, small enough that a crash loses little (and loses nothing that
/// `resume` cannot redo).
pub const WRITER_BATCH: usize = 512;

/// Serves messages until every sender is gone. Before each batch it checks that the
/// database file at `db` is still the one it opened (`identity`): a file deleted or
/// replaced mid-run stops the writer, and so the send, instead of recording outcomes where
/// nobody will read them while a new plan at that path sends everything again.
pub fn run_writer(
    conn: &mut rusqlite::Connection,
    run_id: i64,
    mut receiver: mpsc::Receiver<WriterMsg>,
    db: &std::path::Path,
    identity: Option<(u64, u64)>,
) -> Result<(), StoreError> {
    while let Some(first) = receiver.blocking_recv() {
        if identity.is_some() && crate::store::file_identity(db) != identity {
            return Err(StoreError::Replaced {
                path: db.display().to_string(),
            });
        }
        let tx = conn.transaction()?;
        let mut replies = Vec::new();
        let mut snapshots = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match msg {
                WriterMsg::Claim { chunk_ids, reply } => {
                    let claimed = chunks::claim(&tx, run_id, &chunk_ids);
                    replies.push((reply, claimed));
                }
                WriterMsg::Attempt(update) => chunks::record_attempt(&tx, run_id, &update)?,
                WriterMsg::Created(records) => {
                    crate::store::created::insert(&tx, run_id, &records)?
                }
                WriterMsg::Call { chunk_id, call } => {
                    crate::store::calls::insert(&tx, run_id, chunk_id, &call)?
                }
                WriterMsg::Bulk {
                    chunk_id,
                    job,
                    org_id,
                    reply,
                } => {
                    let mut saved = crate::store::bulk::save(&tx, run_id, chunk_id, &job);
                    if let (Ok(()), Some(org_id)) = (&saved, org_id) {
                        saved = crate::store::bulk::set_org_id(&tx, run_id, &org_id);
                    }
                    snapshots.push((reply, saved));
                }
                WriterMsg::Snapshot {
                    chunk_id,
                    values,
                    reply,
                } => {
                    let stored =
                        crate::store::befores::store_snapshot(&tx, run_id, chunk_id, &values);
                    snapshots.push((reply, stored));
                }
            }
            if taken < WRITER_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        tx.commit()?;
        // Claims are answered only once committed: nothing is sent before it is in_flight
        // on disk.
        for (reply, claimed) in replies {
            let _ = reply.send(claimed);
        }
        for (reply, stored) in snapshots {
            let _ = reply.send(stored);
        }
    }
    Ok(())
}
