//! Benchmark: `dispatch::dispatch` end to end against the embedded mock, in one process.
//! For each case a CSV of the mock's record ids (3 fields, a few value sets) is planned into
//! a template database through the library; every timed run copies the template to a fresh
//! file and times `dispatch` alone: claiming, the workers, HTTP to the mock, and the writer's
//! SQLite commits. Each run is then checked: every item succeeded, no chunk is left, and the
//! calls made (the report, the `calls` table and the mock's ledger) equal the plan's
//! theoretical minimum (`RunInfo.min_calls`). Figures are medians of `MASSUP_BENCH_REPEAT`
//! runs (default 3).
//!
//! - (a) no latency, concurrency 4 / 10 / 16: calls/s and record outcomes/s
//!   (target: at least 1,000 calls/s of 500 ids).
//! - (b) 100 ms latency, concurrency 10, no rate limit: wall / (calls / 10 x 100 ms)
//!   (target: at most 1.05).
//! - (c) 100 ms latency, rate 20/s, concurrency 10: wall / (calls / 20 per s)
//!   (target: at most 1.05).
//! - (d) the snapshot's cost: 100,000 records (`MASSUP_BENCH_SNAPSHOT_RECORDS`), no
//!   latency, concurrency 10, sent without and with `--snapshot`: the Get Records calls it
//!   adds and the wall time (no target; the figure for the README).
//!
//!     cargo bench --bench dispatch
//!
//! Sizes and cases, for a quick run or a profile:
//!
//!     MASSUP_BENCH_RECORDS=20000 MASSUP_BENCH_LATENCY_CALLS=60 MASSUP_BENCH_REPEAT=1 \
//!         cargo bench --bench dispatch
//!     MASSUP_BENCH_CASES=a MASSUP_BENCH_CONCURRENCY=10 cargo bench --bench dispatch
//!
//! - `MASSUP_BENCH_RECORDS`: records in (a) (default 200,000; rounded up to whole 500-id
//!   calls per group).
//! - `MASSUP_BENCH_LATENCY_CALLS`: calls in (b) and (c) (default 210: 21 rounds of 10).
//! - `MASSUP_BENCH_CONCURRENCY`: the concurrencies of (a) (default 4,10,16).
//! - `MASSUP_BENCH_CASES`: which of a, b, c, d to run (default a,b,c,d).
//!
//! The mock shares the runtime (and the machine's cores) with massup, so (a) is a lower bound
//! for massup alone. "CPU s" is what the whole process (massup and mock) used during the
//! timed dispatch, and "calls/CPUs" the calls per CPU-second: a figure that still means
//! something when other work on the machine takes cores away during the run.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use massup::api::auth::{Credentials, Secret, TokenSource};
use massup::dispatch::{self, DispatchSettings, Endpoint, Progress, Rate};
use massup::mock::{MockConfig, MockServer, MAX_IDS_PER_CALL};
use massup::outcome::ItemState;
use massup::plan::{self, PlanOutcome, PlanRequest, PlanSettings};
use massup::store;
use tokio_util::sync::CancellationToken;

/// Fields per record: Leads takes one field per call, so each record is 3 items.
const FIELDS: usize = 3;
const LATENCY: Duration = Duration::from_millis(100);
const TARGET_CALLS_PER_SEC: f64 = 1_000.0;
const TARGET_RATIO: f64 = 1.05;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Writes `id,Lead_Status,No_of_Employees,Rating` with record `i` in value set
/// `i % value_sets`: every field value belongs to one set, so the plan has
/// `FIELDS x value_sets` groups of equal size.
fn write_csv(path: &Path, ids: &[String], value_sets: usize) {
    const STATUSES: [&str; 4] = [
        "Contacted",
        "Attempted to Contact",
        "Pre-Qualified",
        "Not Qualified",
    ];
    const RATINGS: [&str; 4] = ["Acquired", "Active", "Market Failed", "Shut Down"];
    assert!(value_sets <= STATUSES.len());
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "id,Lead_Status,No_of_Employees,Rating").unwrap();
    for (i, id) in ids.iter().enumerate() {
        let set = i % value_sets;
        writeln!(
            out,
            "{id},{},{},{}",
            STATUSES[set],
            (set + 1) * 10,
            RATINGS[set]
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// A planned run, stored in a template database that each timed run copies.
struct Planned {
    template: PathBuf,
    run_id: i64,
    min_calls: u64,
    items: u64,
}

fn plan_template(dir: &Path, name: &str, ids: &[String], value_sets: usize) -> Planned {
    let csv = dir.join(format!("{name}.csv"));
    write_csv(&csv, ids, value_sets);
    let template = dir.join(format!("{name}.db"));
    let mut conn = store::open(&template).expect("open the template db");
    let mut settings = PlanSettings::new("Leads");
    settings
        .types
        .insert("No_of_Employees".into(), massup::fields::FieldType::Integer);
    let outcome = plan::plan(
        &mut conn,
        &PlanRequest {
            csv_path: &csv,
            settings: &settings,
            fields: None,
            strict: true,
            new_run: true,
            send_json: None,
            resolve_keys: None,
            expectations: None,
        },
    )
    .expect("the CSV plans");
    let PlanOutcome::Planned(summary) = outcome else {
        panic!("a new run was asked for");
    };
    assert_eq!(
        summary.totals.valid_rows,
        ids.len() as u64,
        "every row is valid"
    );
    let run = store::runs::run(&conn, summary.run_id)
        .expect("read the run")
        .expect("the run exists");
    assert_eq!(
        run.min_calls as u64, summary.totals.calls,
        "the plan is minimal"
    );
    // Fold the WAL into the main file so that copying the file copies the whole run.
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .expect("checkpoint");
    drop(conn);
    Planned {
        template,
        run_id: summary.run_id,
        min_calls: run.min_calls as u64,
        items: (ids.len() * FIELDS) as u64,
    }
}

/// One timed dispatch, checked.
struct Measured {
    secs: f64,
    /// CPU seconds (user + system) the whole process used meanwhile, mock included.
    cpu_secs: f64,
    calls: u64,
    /// Get Records calls (the snapshot's reads).
    reads: u64,
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

async fn dispatch_once(
    server: &MockServer,
    planned: &Planned,
    db: &Path,
    settings: DispatchSettings,
) -> Measured {
    std::fs::copy(&planned.template, db).expect("copy the template db");
    // Built as `massup run` builds it (commands/dispatching.rs), pointed at the mock.
    let stop = CancellationToken::new();
    let http = massup::api::http_client(settings.timeout, settings.concurrency);
    let tokens = Arc::new(TokenSource::new(
        Credentials::AccessToken(Secret::new("mock-token")),
        server.url(),
        http.clone(),
        stop.clone(),
    ));
    let endpoint = Endpoint {
        urls: massup::api::Endpoints::new(&server.url(), "v2"),
        module: "Leads".into(),
        http,
        tokens,
    };
    let progress = Arc::new(Progress::default());
    progress.items_total.store(planned.items, Ordering::Relaxed);
    let before = server.ledger();
    let snapshot = settings.snapshot;

    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let report = dispatch::dispatch(db, planned.run_id, settings, endpoint, stop, progress, 0)
        .await
        .expect("dispatch runs");
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = cpu_seconds() - cpu_before;

    let after = server.ledger();
    assert!(report.stop.is_none(), "stopped early: {:?}", report.stop);
    let requests = after.requests - before.requests;
    let successes = after.by_code.get("SUCCESS").copied().unwrap_or(0)
        - before.by_code.get("SUCCESS").copied().unwrap_or(0);
    let applied: u64 = after.applied.values().sum::<u64>() - before.applied.values().sum::<u64>();
    assert_eq!(
        report.calls, planned.min_calls,
        "calls made vs plan minimum"
    );
    assert_eq!(requests, planned.min_calls, "mock requests vs plan minimum");
    assert_eq!(
        successes, planned.items,
        "SUCCESS entries the mock answered"
    );
    assert_eq!(applied, planned.items, "updates the mock applied");
    check_store(db, planned);
    if snapshot {
        let conn = store::open(db).expect("reopen the db");
        let kept = store::befores::count(&conn, planned.run_id).expect("count the snapshot");
        assert_eq!(kept, planned.items, "one value kept per record and field");
    }
    Measured {
        secs,
        cpu_secs,
        calls: report.calls,
        reads: after.get_records_requests - before.get_records_requests,
    }
}

/// Every chunk done, every item succeeded, one `calls` row per call.
fn check_store(db: &Path, planned: &Planned) {
    let conn = store::open(db).expect("reopen the db");
    let run = planned.run_id;
    let unfinished: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM chunks WHERE run_id = ?1 AND state <> 'done'",
            [run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0, "chunks not done");
    let mut stmt = conn
        .prepare("SELECT outcomes FROM chunks WHERE run_id = ?1")
        .unwrap();
    let mut rows = stmt.query([run]).unwrap();
    let (mut items, mut succeeded) = (0u64, 0u64);
    while let Some(row) = rows.next().unwrap() {
        let outcomes: Vec<u8> = row.get(0).unwrap();
        items += outcomes.len() as u64;
        succeeded += outcomes
            .iter()
            .filter(|&&b| ItemState::from_byte(b) == ItemState::Succeeded)
            .count() as u64;
    }
    assert_eq!(items, planned.items, "items in the store");
    assert_eq!(succeeded, planned.items, "items succeeded");
    let calls: i64 = conn
        .query_row("SELECT COUNT(*) FROM calls WHERE run_id = ?1", [run], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(calls as u64, planned.min_calls, "rows in the calls table");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The wall time a perfect dispatcher would take for (calls, concurrency, rate).
type IdealSecs = fn(u64, usize, Option<Rate>) -> f64;

/// One line of the table.
struct Case {
    /// a, b or c: names the case's database files.
    key: &'static str,
    name: &'static str,
    concurrency: usize,
    rate: Option<Rate>,
    /// The wall time a perfect dispatcher would take, if the case has one.
    ideal: Option<IdealSecs>,
    /// Take the snapshot (case d).
    snapshot: bool,
}

fn header() {
    println!(
        "{:<21} {:>4} {:>5} {:>5} {:>5} {:>7} {:>8} {:>10} {:>6} {:>10} {:>7} {:>6}  target",
        "case",
        "conc",
        "calls",
        "min",
        "ids/c",
        "secs",
        "calls/s",
        "outcomes/s",
        "CPU s",
        "calls/CPUs",
        "ideal s",
        "ratio"
    );
}

async fn run_case(server: &MockServer, planned: &Planned, dir: &Path, case: &Case, repeat: usize) {
    let mut times = Vec::with_capacity(repeat);
    let mut cpu = Vec::with_capacity(repeat);
    let mut calls = 0;
    let mut reads = 0;
    for i in 0..repeat {
        let db = dir.join(format!("run-{}-{}-{i}.db", case.key, case.concurrency));
        let settings = DispatchSettings {
            concurrency: case.concurrency,
            rate: case.rate,
            snapshot: case.snapshot,
            ..DispatchSettings::default()
        };
        let measured = dispatch_once(server, planned, &db, settings).await;
        times.push(measured.secs);
        cpu.push(measured.cpu_secs);
        calls = measured.calls;
        reads = measured.reads;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    let secs = median(times);
    let cpu_secs = median(cpu);
    let calls_per_sec = calls as f64 / secs;
    let (ideal, ratio, target) = match case.ideal {
        Some(ideal) => {
            let ideal = ideal(calls, case.concurrency, case.rate);
            let ratio = secs / ideal;
            let verdict = if ratio <= TARGET_RATIO {
                "met"
            } else {
                "MISSED"
            };
            (
                format!("{ideal:.3}"),
                format!("{ratio:.3}"),
                format!("ratio <= {TARGET_RATIO}: {verdict}"),
            )
        }
        None if case.key == "d" => (
            "-".into(),
            "-".into(),
            format!(
                "{reads} Get Records calls for {} records",
                planned.items / FIELDS as u64
            ),
        ),
        None => {
            let verdict = if calls_per_sec >= TARGET_CALLS_PER_SEC {
                "met"
            } else {
                "MISSED"
            };
            (
                "-".into(),
                "-".into(),
                format!("calls/s >= {TARGET_CALLS_PER_SEC}: {verdict}"),
            )
        }
    };
    println!(
        "{:<21} {:>4} {:>5} {:>5} {:>5.0} {:>7.3} {:>8.0} {:>10.0} {:>6.2} {:>10.0} {:>7} {:>6}  {target}",
        case.name,
        case.concurrency,
        calls,
        planned.min_calls,
        planned.items as f64 / calls as f64,
        secs,
        calls_per_sec,
        planned.items as f64 / secs,
        cpu_secs,
        calls as f64 / cpu_secs.max(1e-3),
        ideal,
        ratio,
    );
}

fn main() {
    let repeat: usize = env_or("MASSUP_BENCH_REPEAT", 3).max(1);
    let cases = env_list("MASSUP_BENCH_CASES", "a,b,c,d");
    let concurrencies: Vec<usize> = env_list("MASSUP_BENCH_CONCURRENCY", "4,10,16")
        .iter()
        .map(|s| s.parse().expect("a concurrency"))
        .collect();
    // (a): 4 value sets -> 12 groups; whole 500-id calls in each.
    let throughput_sets = 4;
    let per_round = throughput_sets * MAX_IDS_PER_CALL;
    let records: usize =
        env_or("MASSUP_BENCH_RECORDS", 200_000usize).div_ceil(per_round) * per_round;
    // (b), (c): 2 value sets -> 6 groups of whole 500-id calls.
    let latency_sets = 2;
    let latency_calls: usize = env_or("MASSUP_BENCH_LATENCY_CALLS", 210);
    let latency_groups = latency_sets * FIELDS;
    let latency_records = latency_calls.div_ceil(latency_groups) * latency_sets * MAX_IDS_PER_CALL;

    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime builds");
    runtime.block_on(async {
        println!("massup dispatch benchmark (median of {repeat} runs; mock in-process)");
        header();
        if cases.iter().any(|c| c == "a") {
            let config = MockConfig {
                records,
                ..MockConfig::default()
            };
            let planned = plan_template(
                dir.path(),
                "throughput",
                &config.record_ids(),
                throughput_sets,
            );
            let server = MockServer::start(config).await.expect("mock starts");
            for &concurrency in &concurrencies {
                let case = Case {
                    key: "a",
                    name: "(a) no latency",
                    concurrency,
                    rate: None,
                    ideal: None,
                    snapshot: false,
                };
                run_case(&server, &planned, dir.path(), &case, repeat).await;
            }
            server.shutdown().await;
        }
        if cases.iter().any(|c| c == "d") {
            let records: usize = env_or("MASSUP_BENCH_SNAPSHOT_RECORDS", 100_000usize)
                .div_ceil(per_round)
                * per_round;
            let config = MockConfig {
                records,
                ..MockConfig::default()
            };
            let planned = plan_template(
                dir.path(),
                "snapshot",
                &config.record_ids(),
                throughput_sets,
            );
            let server = MockServer::start(config).await.expect("mock starts");
            for (name, snapshot) in [("(d) no snapshot", false), ("(d) snapshot", true)] {
                let case = Case {
                    key: "d",
                    name,
                    concurrency: 10,
                    rate: None,
                    ideal: None,
                    snapshot,
                };
                run_case(&server, &planned, dir.path(), &case, repeat).await;
            }
            server.shutdown().await;
        }
        let latency_cases: Vec<Case> = cases
            .iter()
            .filter_map(|c| match c.as_str() {
                "b" => Some(Case {
                    key: "b",
                    name: "(b) 100ms, no rate",
                    concurrency: 10,
                    rate: None,
                    ideal: Some(|calls, concurrency, _| {
                        calls as f64 / concurrency as f64 * LATENCY.as_secs_f64()
                    }),
                    snapshot: false,
                }),
                "c" => Some(Case {
                    key: "c",
                    name: "(c) 100ms, rate 20/s",
                    concurrency: 10,
                    rate: Some(Rate {
                        count: 20,
                        per: Duration::from_secs(1),
                    }),
                    ideal: Some(|calls, _, rate| {
                        let rate = rate.expect("case (c) has a rate");
                        calls as f64 / (f64::from(rate.count) / rate.per.as_secs_f64())
                    }),
                    snapshot: false,
                }),
                _ => None,
            })
            .collect();
        if !latency_cases.is_empty() {
            let config = MockConfig {
                records: latency_records,
                latency_mean: LATENCY,
                latency_spread: Duration::ZERO,
                ..MockConfig::default()
            };
            let planned = plan_template(dir.path(), "latency", &config.record_ids(), latency_sets);
            let server = MockServer::start(config).await.expect("mock starts");
            for case in &latency_cases {
                run_case(&server, &planned, dir.path(), case, repeat).await;
            }
            server.shutdown().await;
        }
    });
}
