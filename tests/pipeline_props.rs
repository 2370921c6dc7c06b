//! Property: for any input and any fault schedule, the whole path plan -> dispatch ->
//! outcome (with resume and retry until done) ends every input row in exactly one final
//! state, never exceeds the call limits, and every record recorded as succeeded holds the
//! requested values in the mock's ledger.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use massup::api::auth::{Credentials, Secret, TokenSource};
use massup::dispatch::{self, DispatchSettings, Endpoint, Progress};
use massup::fields::{coerce, CoerceOptions, ModuleFields};
use massup::mock::{MockConfig, MockServer};
use massup::plan::{plan, PlanOutcome, PlanRequest, PlanSettings};
use massup::summary::{for_each_row, RowOutcome};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

const FIELDS: &str = include_str!("../samples/fields/Leads.json");
const COLUMNS: [&str; 3] = ["Lead_Status", "No_of_Employees", "Rating"];
const VALUES: [&[&str]; 3] = [
    &["Contacted", "Junk Lead", "", "#N/A"],
    &["10", "20", ""],
    &["Active", "Acquired", ""],
];

#[derive(Debug, Clone)]
struct Case {
    rows: usize,
    seed: u64,
    duplicate_share: f64,
    fail_500: f64,
    drop_before: f64,
    drop_after: f64,
    garbage: f64,
    locked: f64,
    concurrency: usize,
    mock_concurrency: Option<usize>,
    chunk_size: usize,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (
            1usize..300,
            any::<u64>(),
            0.0..0.3f64,
            1usize..6,
            prop::option::of(1usize..4),
        ),
        (
            0.0..0.25f64,
            0.0..0.15f64,
            0.0..0.15f64,
            0.0..0.15f64,
            0.0..0.2f64,
        ),
        prop::sample::select(vec![1usize, 7, 50, 500]),
    )
        .prop_map(
            |(
                (rows, seed, duplicate_share, concurrency, mock_concurrency),
                (fail_500, drop_before, drop_after, garbage, locked),
                chunk_size,
            )| Case {
                rows,
                seed,
                duplicate_share,
                fail_500,
                drop_before,
                drop_after,
                garbage,
                locked,
                concurrency,
                mock_concurrency,
                chunk_size,
            },
        )
}

fn write_csv(path: &std::path::Path, ids: &[String], case: &Case) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(case.seed);
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer
        .write_record(["id"].iter().chain(COLUMNS.iter()))
        .unwrap();
    let mut written: Vec<Vec<String>> = Vec::new();
    for id in ids.iter().take(case.rows) {
        let row: Vec<String> = if !written.is_empty() && rng.random_bool(case.duplicate_share) {
            // A duplicate id: sometimes identical (merged), sometimes different (may conflict).
            let mut again = written[rng.random_range(0..written.len())].clone();
            if rng.random_bool(0.5) {
                let column = rng.random_range(0..COLUMNS.len());
                again[column + 1] =
                    VALUES[column][rng.random_range(0..VALUES[column].len())].to_string();
            }
            again
        } else {
            let mut row = vec![id.clone()];
            for values in VALUES {
                row.push(values[rng.random_range(0..values.len())].to_string());
            }
            row
        };
        writer.write_record(&row).unwrap();
        written.push(row);
    }
    writer.flush().unwrap();
}

async fn check(case: Case) -> Result<(), TestCaseError> {
    let mock = MockServer::start(MockConfig {
        records: case.rows + 5,
        seed: case.seed,
        fail_500_rate: case.fail_500,
        drop_before_rate: case.drop_before,
        drop_after_rate: case.drop_after,
        garbage_rate: case.garbage,
        locked_fraction: case.locked,
        unlock_after: 1,
        max_concurrency: case.mock_concurrency,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let ids = mock.config().record_ids();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    write_csv(&csv, &ids, &case);
    let db = dir.path().join("t.db");
    let fields = ModuleFields::from_zoho_json(FIELDS.as_bytes()).unwrap();
    let mut settings = PlanSettings::new("Leads");
    settings.chunk_size = case.chunk_size;
    let summary = {
        let mut conn = massup::store::open(&db).unwrap();
        let request = PlanRequest {
            csv_path: &csv,
            settings: &settings,
            fields: Some((&fields, FIELDS)),
            strict: false,
            new_run: false,
            send_json: None,
            resolve_keys: None,
            expectations: None,
        };
        match plan(&mut conn, &request).unwrap() {
            PlanOutcome::Planned(summary) => summary,
            PlanOutcome::Existing(_) => unreachable!("fresh database"),
        }
    };
    let run_id = summary.run_id;
    let http = massup::api::http_client(Duration::from_secs(2), case.concurrency);
    let stop = CancellationToken::new();
    let tokens = Arc::new(TokenSource::new(
        Credentials::AccessToken(Secret::new("mock-token")),
        mock.url(),
        http.clone(),
        stop.clone(),
    ));
    let settings = DispatchSettings {
        concurrency: case.concurrency,
        max_attempts: 3,
        timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        ..DispatchSettings::default()
    };
    // Resume and retry until every item is settled, as a user (or cron) would.
    for _round in 0..40 {
        let conn = massup::store::open(&db).unwrap();
        massup::store::chunks::reset_in_flight(&conn, run_id).unwrap();
        drop(conn);
        let endpoint = Endpoint {
            urls: massup::api::Endpoints::new(&mock.url(), "v2"),
            module: "Leads".into(),
            http: http.clone(),
            tokens: tokens.clone(),
        };
        let report = dispatch::dispatch(
            &db,
            run_id,
            settings.clone(),
            endpoint,
            stop.clone(),
            Arc::new(Progress::default()),
            0,
        )
        .await
        .unwrap();
        prop_assert!(report.stop.is_none(), "unexpected stop: {:?}", report.stop);
        let mut conn = massup::store::open(&db).unwrap();
        let pending: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM chunks WHERE run_id = ?1 AND state <> 'done'",
                [run_id],
                |r| r.get(0),
            )
            .unwrap();
        if pending == 0 {
            let requeued = massup::plan::requeue::requeue(
                &mut conn,
                run_id,
                &massup::plan::requeue::Requeue::Retryable,
                case.chunk_size,
                None,
            )
            .unwrap()
            .items;
            if requeued == 0 {
                break;
            }
        }
    }
    let ledger = mock.ledger();
    let conn = massup::store::open(&db).unwrap();
    let mut seen = 0u64;
    let mut expected: BTreeMap<String, HashMap<&str, serde_json::Value>> = BTreeMap::new();
    let options = CoerceOptions::default();
    let mut outcomes = Vec::new();
    for_each_row(
        &conn,
        run_id,
        |row| -> Result<(), massup::store::StoreError> {
            outcomes.push(row);
            Ok(())
        },
    )
    .unwrap();
    for row in &outcomes {
        prop_assert_eq!(row.row_no as u64, seen, "rows out of order or missing");
        seen += 1;
        prop_assert!(
            matches!(row.outcome, RowOutcome::Succeeded | RowOutcome::Invalid),
            "row {} (line {}) ended {:?} {:?} {:?}",
            row.row_no,
            row.line,
            row.outcome,
            row.code,
            row.message
        );
        if row.outcome == RowOutcome::Succeeded {
            let wanted = expected.entry(row.record_id.clone()).or_default();
            for (column, cell) in COLUMNS.iter().zip(&row.values) {
                if cell.is_empty() {
                    continue;
                }
                let value = if cell == "#N/A" {
                    serde_json::Value::Null
                } else {
                    coerce(fields.get(column).unwrap(), cell, &options).unwrap()
                };
                wanted.insert(column, value);
            }
        }
    }
    prop_assert_eq!(seen, summary.totals.input_rows);
    for (id, wanted) in &expected {
        let held = ledger
            .records
            .get(id)
            .expect("a succeeded record exists in the mock");
        for (column, value) in wanted {
            prop_assert_eq!(
                held.get(*column),
                Some(value),
                "record {} field {}",
                id,
                column
            );
        }
    }
    prop_assert!(
        !ledger.by_code.contains_key("LIMIT_EXCEEDED"),
        "{:?}",
        ledger.by_code
    );
    prop_assert!(
        ledger.max_concurrency_seen <= case.concurrency as u64,
        "{} calls at once with --concurrency {}",
        ledger.max_concurrency_seen,
        case.concurrency
    );
    mock.shutdown().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn every_row_ends_once_and_successes_match_the_ledger(case in cases()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(check(case))?;
    }
}
