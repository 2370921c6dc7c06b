//! `retry` as planning: which items go out again, and in which new chunks. Retryable items
//! (or, with codes, retryable and failed items whose last code is one of them) are moved
//! into fresh chunks, grouped by request body (mass_update) or batched again by 100
//! (Update Records, each record with its own values, cut as the plan cuts them: the
//! fewest credits) so that records scattered over many old chunks share calls again. The old items are marked requeued; the store does it in one
//! transaction.
use rusqlite::Connection;

use super::planner::{balanced_chunks, bulk_job_sizes, update_batch_sizes};
use crate::api::limits::{CallKind, MAX_RECORDS_PER_BULK_JOB};
use crate::outcome::ItemState;
use crate::store::chunks::StoredChunk;
use crate::store::{self, StoreError};

/// Which items `retry` sends again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// Every retryable item (locked, not approved, ...).
    Retryable,
    /// Retryable or failed items whose last code is one of these.
    Codes(Vec<String>),
}

impl Requeue {
    /// Whether an item in `state` whose last answer was `code` is sent again.
    pub fn wants(&self, state: ItemState, code: Option<&str>) -> bool {
        match self {
            Requeue::Retryable => state == ItemState::Retryable,
            Requeue::Codes(codes) => {
                matches!(state, ItemState::Retryable | ItemState::Failed)
                    && code.is_some_and(|c| codes.iter().any(|w| w == c))
            }
        }
    }

    /// The indices of a stored chunk's items to send again.
    fn chosen(&self, chunk: &StoredChunk) -> Vec<usize> {
        (0..chunk.members.len())
            .filter(|&i| {
                let state = ItemState::from_byte(chunk.outcomes[i]);
                let code = chunk
                    .details
                    .get(&(i as u32))
                    .map(|(c, _)| c.as_str())
                    .or(chunk.code.as_deref());
                self.wants(state, code)
            })
            .collect()
    }
}

/// Requeues a run's items as `which` says into chunks of at most `chunk_size`; an item that
/// has made `max_total` calls or more ends failed instead. Returns what was re-queued and
/// ended.
pub fn requeue(
    conn: &mut Connection,
    run_id: i64,
    which: &Requeue,
    chunk_size: usize,
    max_total: Option<u32>,
) -> Result<store::chunks::Requeued, StoreError> {
    store::chunks::requeue(
        conn,
        run_id,
        |chunk| which.chosen(chunk),
        |kind, count| chunk_sizes(kind, count, chunk_size),
        max_total,
    )
}

/// The kind and sizes of the new chunks that carry `count` items of `kind`: mass_update
/// chunks of at most `chunk_size`, as even as possible; Update Records batches at the
/// fewest credits (see [`update_batch_sizes`]); Bulk Write items in jobs when a job costs
/// fewer credits than Update Records would, else in Update Records batches (a handful of
/// locked records is not worth a 500-credit job).
fn chunk_sizes(kind: CallKind, count: usize, chunk_size: usize) -> (CallKind, Vec<usize>) {
    match kind {
        CallKind::BulkWrite if bulk_job_sizes(count, MAX_RECORDS_PER_BULK_JOB).0.is_empty() => {
            (CallKind::UpdateRecords, update_batch_sizes(count).collect())
        }
        CallKind::BulkWrite => {
            let all: Vec<()> = vec![(); count];
            let sizes = balanced_chunks(&all, MAX_RECORDS_PER_BULK_JOB);
            (kind, sizes.map(<[()]>::len).collect())
        }
        CallKind::UpdateRecords => (kind, update_batch_sizes(count).collect()),
        CallKind::UpsertRecords => (kind, update_batch_sizes(count).collect()),
        CallKind::DeleteRecords => {
            let all: Vec<()> = vec![(); count];
            let sizes = balanced_chunks(&all, crate::api::limits::MAX_IDS_PER_DELETE);
            (kind, sizes.map(<[()]>::len).collect())
        }
        _ => {
            let all: Vec<()> = vec![(); count];
            (
                kind,
                balanced_chunks(&all, chunk_size).map(<[()]>::len).collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_by_default_codes_when_named() {
        let plain = Requeue::Retryable;
        assert!(plain.wants(ItemState::Retryable, Some("RECORD_LOCKED")));
        assert!(!plain.wants(ItemState::Failed, Some("INVALID_DATA")));
        assert!(!plain.wants(ItemState::Succeeded, None));
        let codes = Requeue::Codes(vec!["INVALID_DATA".into()]);
        assert!(codes.wants(ItemState::Failed, Some("INVALID_DATA")));
        assert!(!codes.wants(ItemState::Retryable, Some("RECORD_LOCKED")));
        assert!(!codes.wants(ItemState::Succeeded, Some("INVALID_DATA")));
        assert!(!codes.wants(ItemState::Pending, Some("INVALID_DATA")));
        assert!(!codes.wants(ItemState::Failed, None));
    }

    #[test]
    fn requeued_chunks_are_the_fewest_and_cut_as_the_plan_cuts_them() {
        assert_eq!(
            chunk_sizes(CallKind::MassUpdate, 1001, 500),
            (CallKind::MassUpdate, vec![334, 334, 333])
        );
        // Update Records: 250 records as 80 + 80 + 90 (25 credits), not 84 + 83 + 83 (27);
        // 150 as 70 + 80 (15), not 75 + 75 (16).
        let update = |sizes: &[usize]| (CallKind::UpdateRecords, sizes.to_vec());
        assert_eq!(
            chunk_sizes(CallKind::UpdateRecords, 250, 500),
            update(&[80, 80, 90])
        );
        assert_eq!(
            chunk_sizes(CallKind::UpdateRecords, 150, 500),
            update(&[70, 80])
        );
        assert_eq!(chunk_sizes(CallKind::UpdateRecords, 0, 500), update(&[]));
        // Bulk Write items go in jobs only when a job costs less than Update Records: 120
        // locked records of a job go back by Update Records (12 credits, not 500).
        assert_eq!(
            chunk_sizes(CallKind::BulkWrite, 120, 500),
            update(&[60, 60])
        );
        assert_eq!(
            chunk_sizes(CallKind::BulkWrite, 5_000, 500).0,
            CallKind::UpdateRecords
        );
        assert_eq!(
            chunk_sizes(CallKind::BulkWrite, 30_000, 500),
            (CallKind::BulkWrite, vec![15_000, 15_000])
        );
    }
}
