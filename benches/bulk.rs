//! Benchmark: a migration sheet of unique values planned into Bulk Write jobs, the jobs'
//! files written, and the whole run sent to the embedded mock (release binary, fresh
//! database each time). Reports the median of `MASSUP_BENCH_REPEAT` runs (default 3):
//!
//! - `plan`: wall time, rows per second and peak RSS of `massup plan` (child process,
//!   wait4's rusage), and the jobs and credits it planned;
//! - `job files`: the zipped CSVs of every planned job, written from the stored chunks
//!   one at a time (what a send does before each upload), in a child process: seconds,
//!   peak RSS, MB of zip;
//! - `send`: `massup resume` of the plan against `massup mock-server` (another child), which
//!   applies every row: wall time, peak RSS of massup, and what the mock charged.
//!
//! ```text
//! cargo bench --bench bulk                        # 1M rows
//! MASSUP_BENCH_ROWS=200000 cargo bench --bench bulk
//! MASSUP_BENCH_SEND=0 cargo bench --bench bulk    # plan and job files only
//! ```
mod support;

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use support::{measure, median};

use massup::api::limits::CallKind;

/// The sheet: the mock's first `rows` record ids (from `massup mock-server --print-sheet`,
/// streamed, so that this process stays small: a child's peak RSS as wait4 reports it
/// starts from this process's, which it shares until its exec), each with its own values.
fn sheet(exe: &str, path: &Path, rows: usize) {
    let mut child = std::process::Command::new(exe)
        .args(["mock-server", "--records", &rows.to_string()])
        .args(["--print-sheet", &rows.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("massup mock-server --print-sheet");
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "id,City,Phone,Title").unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for (i, line) in lines.skip(1).enumerate() {
        let line = line.unwrap();
        let id = line.split(',').next().unwrap();
        writeln!(out, "{id},City {i},+47 {i:09},Title {i}").unwrap();
    }
    out.flush().unwrap();
    assert!(child.wait().unwrap().success());
}

/// Writes the zipped CSV of every Bulk Write chunk of run 1 in `db`: (seconds, zip bytes,
/// jobs).
fn job_files(db: &Path) -> (f64, u64, usize) {
    let conn = rusqlite::Connection::open(db).expect("open the plan");
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM chunks WHERE run_id = 1 AND kind = ?1 ORDER BY id")
        .unwrap()
        .query_map([CallKind::BulkWrite.name()], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let start = Instant::now();
    let mut bytes = 0u64;
    // One chunk at a time, as a sender holds them.
    for id in &ids {
        let tx = conn.unchecked_transaction().unwrap();
        let chunks = massup::store::chunks::claim(&tx, 1, &[*id]).expect("load the chunk");
        drop(tx); // rolled back: the plan stays pending
        for chunk in chunks {
            let all: Vec<usize> = (0..chunk.members.len()).collect();
            let (_, zip) = massup::dispatch::bulk::job_file(&chunk, &all).expect("job file");
            bytes += zip.len() as u64;
        }
    }
    (start.elapsed().as_secs_f64(), bytes, ids.len())
}

fn main() {
    // The job files are written in a child of this bench (itself, re-run with this
    // variable), so that their peak RSS is theirs alone.
    if let Ok(db) = std::env::var("MASSUP_BENCH_JOB_FILES_DB") {
        let (secs, bytes, jobs) = job_files(Path::new(&db));
        println!("{secs} {bytes} {jobs}");
        return;
    }
    let rows: usize = std::env::var("MASSUP_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let repeat: usize = std::env::var("MASSUP_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let send = std::env::var("MASSUP_BENCH_SEND").as_deref() != Ok("0");
    let exe = std::env::var("MASSUP_BENCH_EXE")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_massup").to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("migration.csv");
    sheet(&exe, &csv, rows);
    println!("massup Bulk Write benchmark: {rows} rows of unique City, Phone, Title ({repeat} runs, median)");
    let (mut plan_s, mut plan_rss, mut file_s, mut send_s, mut send_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut file_rss = Vec::new();
    let (mut zip_bytes, mut jobs, mut credits, mut charged) = (0, 0, 0, 0);
    for i in 0..repeat {
        let db = dir.path().join(format!("bench-{i}.db"));
        let summary = dir.path().join("plan.json");
        let (secs, peak) = measure(
            std::process::Command::new(&exe)
                .arg("--db")
                .arg(&db)
                .args(["--quiet", "plan", "--csv"])
                .arg(&csv)
                .args(["--module", "Leads", "--no-snapshot", "--json"]),
            Some(&summary),
        );
        plan_s.push(secs);
        plan_rss.push(peak as f64);
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        credits = plan["credits"].as_u64().unwrap_or(0);
        let out = dir.path().join("job-files.txt");
        let (_, peak) = measure(
            std::process::Command::new(std::env::current_exe().unwrap())
                .env("MASSUP_BENCH_JOB_FILES_DB", &db),
            Some(&out),
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let mut fields = text.split_whitespace();
        file_s.push(fields.next().unwrap().parse().unwrap());
        zip_bytes = fields.next().unwrap().parse().unwrap();
        jobs = fields.next().unwrap().parse().unwrap();
        file_rss.push(peak as f64);
        if send {
            let mut mock = std::process::Command::new(&exe)
                .args([
                    "mock-server",
                    "--records",
                    &rows.to_string(),
                    "--bulk-delay-ms",
                    "200",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start the mock");
            let mut line = String::new();
            std::io::BufReader::new(mock.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let url = line.trim().trim_start_matches("listening on ").to_string();
            let (secs, peak) = measure(
                std::process::Command::new(&exe)
                    .arg("--db")
                    .arg(&db)
                    .args([
                        "--quiet",
                        "resume",
                        "--api-domain",
                        &url,
                        "--bulk-poll-ms",
                        "200",
                    ])
                    .env("ZOHO_ACCESS_TOKEN", "mock-token")
                    .env("MASSUP_TOKEN_STORE", "off"),
                None,
            );
            send_s.push(secs);
            send_rss.push(peak as f64);
            // The ledger of 1M records is large: only its `credits_charged` is read, by grep,
            // without growing this process.
            let charged_text = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "curl -s --noproxy '*' {url}/__mock/ledger | grep -o '\"credits_charged\":[0-9]*'"
                ))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            charged = charged_text
                .trim()
                .rsplit(':')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let _ = mock.kill();
            let _ = mock.wait();
        }
        let _ = std::fs::remove_file(&db);
    }
    let plan_secs = median(plan_s);
    println!(
        "  plan       {plan_secs:>8.3} s  {:>9.0} rows/s  peak RSS {:>6.1} MB  -> {jobs} jobs, {credits} credits",
        rows as f64 / plan_secs,
        median(plan_rss) / 1e6
    );
    println!(
        "  job files  {:>8.3} s  {:>9.0} rows/s  peak RSS {:>6.1} MB  ({:.1} MB of zip)",
        median(file_s.clone()),
        rows as f64 / median(file_s),
        median(file_rss) / 1e6,
        zip_bytes as f64 / 1e6,
    );
    if send {
        println!(
            "  send       {:>8.3} s  {:>9.0} rows/s  peak RSS {:>6.1} MB  (the mock charged {charged} credits)",
            median(send_s.clone()),
            rows as f64 / median(send_s),
            median(send_rss) / 1e6
        );
    }
}
