//! Damage inside the database, found before it is sent. SQLite's checks look at a page's
//! structure, not at what a blob holds: a byte flipped inside a chunk's members passed
//! every check and mass_update carried corrupted ids. Each chunk now carries a checksum
//! of what it sends, verified when it is claimed; and `resume`, `retry` and `undo` check
//! the tables they read before their first read (a damaged snapshot was found only after
//! 12 Get Records calls).
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use massup::mock::{MockConfig, MockServer};
use support::{checkpoint, leads_fields, massup_in, status_csv, Dir};

const DEADLINE: Duration = Duration::from_secs(60);
const TOKEN: [(&str, &str); 1] = [("ZOHO_ACCESS_TOKEN", "mock-token")];

/// A mock of `records` records, a folder, and `id,Lead_Status` for the first `n`: one
/// field, so every record is in exactly one chunk.
async fn scene(records: usize, n: usize) -> (MockServer, Arc<Dir>, String) {
    let config = MockConfig {
        records,
        ..MockConfig::default()
    };
    let ids: Vec<String> = config.record_ids()[..n].to_vec();
    let mock = MockServer::start(config).await.unwrap();
    let dir = Arc::new(Dir::new());
    let csv = dir.write("in.csv", status_csv(&ids));
    (mock, dir, csv.to_str().unwrap().to_string())
}

async fn plan(dir: &Arc<Dir>, csv: &str, extra: &[&str]) {
    let fields = leads_fields();
    let mut args = vec![
        "plan",
        "--csv",
        csv,
        "--module",
        "Leads",
        "--fields",
        fields.to_str().unwrap(),
        "--api",
        "mass",
    ];
    args.extend_from_slice(extra);
    massup_in(dir, &args, &[], DEADLINE).await.expect_code(0);
}

/// The record ids a chunk's packed members hold (`row_no u32, record_id i64`, LE).
fn member_ids(blob: &[u8]) -> Vec<i64> {
    blob.chunks_exact(12)
        .map(|m| i64::from_le_bytes(m[4..12].try_into().unwrap()))
        .collect()
}

/// Regression: 64 flipped bytes inside a chunks page passed `status` and the checks
/// before sending, and mass_update carried the corrupted ids. A flipped byte in chunk 2's
/// members is now found when the chunk is claimed: the mock never sees a call with its
/// records, the send stops (exit 1) naming the chunk, and the chunk is left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_chunk_is_found_before_its_call() {
    let (mock, dir, csv) = scene(100, 40).await;
    plan(&dir, &csv, &["--chunk-size", "10"]).await;
    checkpoint(&dir.db());
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let blob: Vec<u8> = conn
        .query_row("SELECT members FROM chunks WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    let ids = member_ids(&blob);
    // Flip the lowest bit of the third member's record id, on disk.
    let mut file = std::fs::read(dir.db()).unwrap();
    let at = file
        .windows(blob.len())
        .position(|w| w == blob.as_slice())
        .expect("the blob is in the main file");
    assert!(
        file[at + 1..]
            .windows(blob.len())
            .all(|w| w != blob.as_slice()),
        "the blob is on disk once"
    );
    file[at + 2 * 12 + 4] ^= 0x01;
    std::fs::write(dir.db(), file).unwrap();
    let flipped = ids[2] ^ 0x01;

    let url = mock.url();
    let ran = massup_in(
        &dir,
        &["resume", "--api-domain", &url, "--concurrency", "1"],
        &TOKEN,
        DEADLINE,
    )
    .await;
    assert!(!ran.timed_out, "{}", ran.report());
    ran.expect_code(1);
    let stderr = ran.stderr();
    for needle in ["DAMAGED_CHUNK", "chunk 2 of run 1", "massup report"] {
        assert!(stderr.contains(needle), "{needle}\n{}", ran.report());
    }
    let ledger = mock.ledger();
    for id in ids.iter().chain([&flipped]) {
        assert_eq!(
            ledger.applied.get(&id.to_string()).copied().unwrap_or(0),
            0,
            "record {id} of the damaged chunk was sent\n{}",
            ran.report()
        );
    }
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let (state, calls): (String, i64) = conn
        .query_row(
            "SELECT state, (SELECT COUNT(*) FROM calls WHERE chunk_id = 2) FROM chunks WHERE id = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), calls), ("pending", 0));
    // `status` and `report` still read the run.
    massup_in(&dir, &["status"], &[], DEADLINE)
        .await
        .expect_code(0);
}

/// Damages the b-tree page header of `table`'s root page on disk (the WAL checkpointed
/// first): SQLite's quick_check finds it, a read of the table fails on it.
fn damage_root_page(db: &std::path::Path, table: &str) {
    checkpoint(db);
    let conn = rusqlite::Connection::open(db).unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(db).unwrap();
    let at = ((root - 1) * page) as usize;
    for b in &mut bytes[at + 1..at + 8] {
        *b = 0xFF;
    }
    std::fs::write(db, bytes).unwrap();
}

/// Regression: a damaged `befores` table (the snapshot) was found only after 12 Get
/// Records calls had gone out. `resume`, `retry` and `undo` now check the tables they read first,
/// and refuse naming `report`: not one more call reaches the mock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_found_before_any_read() {
    let (mock, dir, csv) = scene(100, 40).await;
    let fields = leads_fields();
    let url = mock.url();
    // Two of four chunks sent, with their snapshots (read just before each call).
    let ran = massup_in(
        &dir,
        &[
            "run",
            "--csv",
            &csv,
            "--module",
            "Leads",
            "--fields",
            fields.to_str().unwrap(),
            "--api-domain",
            &url,
            "--api",
            "mass",
            "--snapshot",
            "--skip-unchanged",
            "--chunk-size",
            "10",
            "--concurrency",
            "1",
            "--max-calls",
            "2",
        ],
        &TOKEN,
        DEADLINE,
    )
    .await;
    ran.expect_code(4);
    let before = mock.ledger();
    assert!(before.get_records_requests > 0, "{}", ran.report());
    damage_root_page(&dir.db(), "befores");

    let resumed = massup_in(&dir, &["resume", "--api-domain", &url], &TOKEN, DEADLINE).await;
    let retried = massup_in(&dir, &["retry", "--api-domain", &url], &TOKEN, DEADLINE).await;
    let undone = massup_in(
        &dir,
        &["undo", "--run", "1", "--api-domain", &url, "--yes"],
        &TOKEN,
        DEADLINE,
    )
    .await;
    let after = mock.ledger();
    for ran in [&resumed, &retried, &undone] {
        ran.expect_code(1);
        let stderr = ran.stderr();
        for needle in ["is damaged", "massup report", "nothing was sent"] {
            assert!(stderr.contains(needle), "{needle}\n{}", ran.report());
        }
    }
    assert_eq!(
        (after.get_records_requests, after.requests),
        (before.get_records_requests, before.requests),
        "calls went out before the damage was found\n{}\n{}\n{}",
        resumed.report(),
        retried.report(),
        undone.report()
    );
}

/// Chunks planned by an older massup carry no checksum (migration 0008 adds the column
/// empty): they are sent unchecked, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_from_an_older_database_still_send() {
    let (mock, dir, csv) = scene(100, 40).await;
    plan(&dir, &csv, &["--chunk-size", "10"]).await;
    {
        // The database as massup before version 8 left it: without what versions 8 and
        // later add.
        let conn = rusqlite::Connection::open(dir.db()).unwrap();
        conn.execute_batch(
            "ALTER TABLE chunks DROP COLUMN checksum;
             ALTER TABLE groups DROP COLUMN checksum;
             DROP TABLE bulk_jobs;
             ALTER TABLE runs DROP COLUMN org_id;
             PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let url = mock.url();
    let ran = massup_in(&dir, &["resume", "--api-domain", &url], &TOKEN, DEADLINE).await;
    ran.expect_code(0);
    let ledger = mock.ledger();
    assert_eq!(ledger.applied.values().filter(|&&n| n == 1).count(), 40);
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let unchecked: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM chunks WHERE checksum IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unchecked, 4);
}
