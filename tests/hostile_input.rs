//! Hostile input cells: a NUL byte inside a data cell was accepted and sent; a cell
//! starting with `|` reached CSV reports as it was (a DDE command in some spreadsheet
//! programs). A NUL now makes its row invalid, naming line and column, while the other
//! rows are planned; CSV reports neutralise `|` as they do `= + - @`.
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{leads_fields, massup_in, Dir};

const DEADLINE: Duration = Duration::from_secs(30);

async fn plan(dir: &Arc<Dir>, csv: &str) -> support::Bounded {
    let fields = leads_fields();
    massup_in(
        dir,
        &[
            "plan",
            "--csv",
            csv,
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
}

/// Regression: `Smith\0` in Last_Name was planned and sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_makes_its_row_invalid_naming_line_and_column() {
    let dir = Arc::new(Dir::new());
    let csv = dir.write(
        "in.csv",
        b"id,Last_Name,Lead_Status\n\
          738964000002131001,Smith,Contacted\n\
          738964000002140875,Sm\0ith,Contacted\n\
          738964000002141151,Jones,Junk Lead\n",
    );
    let planned = plan(&dir, csv.to_str().unwrap()).await;
    planned.expect_code(3);
    assert!(
        planned
            .stdout()
            .contains("in.csv:3: column Last_Name: holds a NUL byte"),
        "{}",
        planned.report()
    );
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let rows: Vec<(i64, String, Option<String>)> = conn
        .prepare("SELECT line, status, message FROM rows ORDER BY row_no")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[0].1.as_str(), rows[2].1.as_str()), ("valid", "valid"));
    let (line, status, message) = &rows[1];
    assert_eq!((*line, status.as_str()), (3, "invalid"));
    let message = message.as_deref().unwrap();
    assert!(
        message.contains("column Last_Name") && message.contains("NUL byte (byte 3 of the cell)"),
        "{message}"
    );
    // Nothing of the row is in a chunk: it cannot be sent.
    let chunked: i64 = conn
        .query_row("SELECT SUM(size) FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(chunked, 4, "two valid rows x two fields");
}

/// Regression: a cell starting with `|` was written to the CSV report as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_reports_neutralise_a_leading_pipe() {
    let dir = Arc::new(Dir::new());
    let csv = dir.write(
        "in.csv",
        "id,Last_Name\n738964000002131001,|cmd!A0\n738964000002140875,=1+1\n",
    );
    planned_ok(&plan(&dir, csv.to_str().unwrap()).await);
    let report = dir.path().join("report.csv");
    massup_in(
        &dir,
        &["report", "--out", report.to_str().unwrap()],
        &[],
        DEADLINE,
    )
    .await
    .expect_code(0);
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains(",'|cmd!A0,"), "{text}");
    assert!(text.contains(",'=1+1,"), "{text}");
    assert!(!text.contains(",|cmd"), "{text}");
}

fn planned_ok(ran: &support::Bounded) {
    ran.expect_code(0);
}
