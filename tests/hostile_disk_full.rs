//! Counts after a full disk. The calls that may have reached Zoho are never shown as 0:
//! a chunk is in flight on disk before its call leaves, while its call is logged later in
//! a batch, so a send whose writer failed on a full disk left calls that reached the
//! server unlogged. `status` once showed 0 calls and `calls_unlogged_at_most 0` while the
//! server had received 2 calls (938 records); the chunks left in flight are now counted.
//!
//! Needs a small tmpfs, which needs root; without it the test says so and passes.
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use massup::mock::{MockConfig, MockServer};
use support::{checkpoint, leads_fields, massup_in, status_csv, Dir, Tmpfs};

const DEADLINE: Duration = Duration::from_secs(120);

/// Regression: after a disk-full stop, the calls the server received exceeded what
/// `status` showed as made or possibly made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_may_have_reached_zoho_are_counted_after_a_full_disk() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let config = MockConfig {
        records: 20_000,
        ..MockConfig::default()
    };
    let ids = config.record_ids();
    let mock = MockServer::start(config).await.unwrap();
    let dir = Arc::new(Dir::at(&fs.0));
    let csv = dir.write("in.csv", status_csv(&ids));
    let db = dir.db();
    let fields = leads_fields();
    massup_in(
        &dir,
        &[
            "plan",
            "--csv",
            csv.to_str().unwrap(),
            "--module",
            "Leads",
            "--fields",
            fields.to_str().unwrap(),
            "--api",
            "mass",
        ],
        &[],
        DEADLINE,
    )
    .await
    .expect_code(0);
    checkpoint(&db);
    // Fill the disk but for 256 KiB: the run starts, then its outcomes no longer fit.
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; (fs.free_bytes() - (256 << 10)) as usize]).unwrap();
    let url = mock.url();
    let token = [("ZOHO_ACCESS_TOKEN", "mock-token")];
    let ran = massup_in(&dir, &["resume", "--api-domain", &url], &token, DEADLINE).await;
    ran.expect_code(1);
    let received = mock.ledger().requests;
    assert!(
        received > 0,
        "the disk filled before any call\n{}",
        ran.report()
    );
    std::fs::remove_file(&filler).unwrap();
    let status = massup_in(&dir, &["status", "--json"], &[], DEADLINE).await;
    let json = status.expect_ok().json();
    let logged = json["counts"]["calls"].as_u64().unwrap();
    let unlogged = json["counts"]["calls_unlogged_at_most"].as_u64().unwrap();
    assert!(
        logged + unlogged >= received,
        "status shows {logged} calls and up to {unlogged} unlogged; the server received {received}\n{}",
        ran.report()
    );
    // And resume finishes the run, every record written.
    let resumed = massup_in(&dir, &["resume"], &token, DEADLINE).await;
    resumed.expect_code(0);
    assert_eq!(
        mock.ledger().applied.values().filter(|&&n| n >= 1).count(),
        ids.len()
    );
}
