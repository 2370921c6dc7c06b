//! Benchmark: `massup plan` end to end (release binary, fresh database) on generated CSVs
//! of id plus 3 fields with a few hundred distinct value sets. Reports rows per second
//! and peak RSS for each size, then the time and peak RSS of `massup status --json` on the
//! planned run; the median of `MASSUP_BENCH_REPEAT` runs (default 3). Then what each
//! sheet's plan costs: its credits and calls, and both single-kind alternatives.
//!
//!     cargo bench --bench plan                 # 100k, 1M and 3M rows
//!     MASSUP_BENCH_ROWS=1000000 cargo bench --bench plan
//!     MASSUP_BENCH_VALUES=unique MASSUP_BENCH_ROWS=1000000 cargo bench --bench plan
//!                                              # a migration sheet: every value unique
//!     MASSUP_BENCH_VALUES=groups50 cargo bench --bench plan
//!                                              # one field whose values 50 records share
mod support;

use std::io::Write;
use std::path::Path;

use support::{measure, median};

/// A migration sheet: every row its own city, phone and title (`MASSUP_BENCH_VALUES=unique`).
fn generate_unique(path: &Path, rows: usize) {
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "id,City,Phone,Title").unwrap();
    for i in 0..rows {
        let id = 738_964_000_000_000_000u64 + i as u64 * 7;
        writeln!(out, "{id},City {i},+47 {i:09},Title {i}").unwrap();
    }
    out.flush().unwrap();
}

/// A City shared by groups of 50 records (`MASSUP_BENCH_VALUES=groups50`): the sheet
/// where calls and credits disagree (mass_update: rows / 50 calls and credits; Update
/// Records: half the calls for five times the credits).
fn generate_groups50(path: &Path, rows: usize) {
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "id,City").unwrap();
    for i in 0..rows {
        let id = 738_964_000_000_000_000u64 + i as u64 * 7;
        writeln!(out, "{id},City {}", i / 50).unwrap();
    }
    out.flush().unwrap();
}

fn generate(path: &Path, rows: usize) {
    match std::env::var("MASSUP_BENCH_VALUES").as_deref() {
        Ok("unique") => return generate_unique(path, rows),
        Ok("groups50") => return generate_groups50(path, rows),
        _ => {}
    }
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "id,Lead_Status,No_of_Employees,Rating").unwrap();
    let statuses = [
        "Not Contacted",
        "Attempted to Contact",
        "Contact in Future",
        "Contacted",
        "Junk Lead",
        "Lost Lead",
        "Pre-Qualified",
        "Not Qualified",
    ];
    let ratings = [
        "Acquired",
        "Active",
        "Market Failed",
        "Project Cancelled",
        "Shut Down",
    ];
    // A small LCG keeps the file identical run to run without a dependency.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for i in 0..rows {
        let id = 738_964_000_000_000_000u64 + i as u64 * 7;
        let set = next() % 400; // a few hundred distinct value sets
        writeln!(
            out,
            "{id},{},{},{}",
            statuses[set % statuses.len()],
            (set / 8) * 10,
            ratings[(set / 80) % ratings.len()]
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// What a plan costs, from its `--json` object: "credits / calls" for the plan chosen and
/// for each single-kind alternative ("-" where the binary does not say, or the kind
/// cannot carry the sheet).
fn costs(plan: &serde_json::Value) -> [String; 3] {
    let pair = |credits: &str, calls: &str| match (plan[credits].as_u64(), plan[calls].as_u64()) {
        (Some(credits), Some(calls)) => format!("{credits} / {calls}"),
        (None, Some(calls)) => format!("- / {calls}"),
        _ => "-".to_string(),
    };
    [
        pair("credits", "calls"),
        pair("all_mass_update_credits", "all_mass_update_calls"),
        pair("all_update_records_credits", "all_update_records_calls"),
    ]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("MASSUP_BENCH_ROWS")
        .map(|s| {
            s.split(',')
                .map(|n| n.trim().parse().expect("row count"))
                .collect()
        })
        .unwrap_or_else(|_| vec![100_000, 1_000_000, 3_000_000]);
    let repeat: usize = std::env::var("MASSUP_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    // MASSUP_BENCH_EXE compares another build (say, the one before a change) on the same
    // sheets.
    let exe = std::env::var("MASSUP_BENCH_EXE")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_massup").to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    println!("massup plan benchmark ({repeat} runs each, median)");
    println!(
        "{:>10} {:>10} {:>14} {:>12} {:>10} {:>14}",
        "rows", "seconds", "rows/s", "peak RSS MB", "status s", "status RSS MB"
    );
    let mut plans = Vec::new();
    for rows in sizes {
        let csv = dir.path().join(format!("leads-{rows}.csv"));
        generate(&csv, rows);
        let mut times = Vec::new();
        let mut rss = Vec::new();
        let mut status_times = Vec::new();
        let mut status_rss = Vec::new();
        let summary = dir.path().join(format!("plan-{rows}.json"));
        for i in 0..repeat {
            let db = dir.path().join(format!("bench-{rows}-{i}.db"));
            let (secs, peak) = measure(
                std::process::Command::new(&exe)
                    .arg("--db")
                    .arg(&db)
                    .arg("--quiet")
                    .arg("plan")
                    .arg("--csv")
                    .arg(&csv)
                    .args(["--module", "Leads", "--type", "No_of_Employees=integer"])
                    .arg("--json"),
                Some(&summary),
            );
            times.push(secs);
            rss.push(peak as f64);
            // `status` of the planned run: it reads the chunks, not the rows.
            let (status_secs, status_peak) = measure(
                std::process::Command::new(&exe)
                    .arg("--db")
                    .arg(&db)
                    .args(["status", "--json"]),
                None,
            );
            status_times.push(status_secs);
            status_rss.push(status_peak as f64);
            let _ = std::fs::remove_file(&db);
        }
        let secs = median(times);
        println!(
            "{:>10} {:>10.3} {:>14.0} {:>12.1} {:>10.3} {:>14.1}",
            rows,
            secs,
            rows as f64 / secs,
            median(rss) / 1e6,
            median(status_times),
            median(status_rss) / 1e6
        );
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).expect("plan --json output"))
                .expect("plan --json is JSON");
        plans.push((rows, costs(&plan)));
    }
    println!("credits / calls of each plan");
    println!(
        "{:>10} {:>20} {:>22} {:>22}",
        "rows", "plan", "all mass_update", "all Update Records"
    );
    for (rows, [chosen, mass, update]) in plans {
        println!("{rows:>10} {chosen:>20} {mass:>22} {update:>22}");
    }
}
