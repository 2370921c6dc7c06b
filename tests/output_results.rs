//! `--results DIR` on run, retry and resume: when a send ends, a success file and an error
//! file, one line per input row with its input line number, that together hold every row.

mod support;

use massup::mock::MockConfig;
use support::*;

fn read(path: &std::path::Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "line");
    reader.records().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_split_every_input_line_into_success_and_errors() {
    let config = MockConfig {
        records: 100,
        locked_fraction: 0.2,
        unlock_after: 2,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 100, false).await;
    // One invalid row at the end (line 102).
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("12x,Contacted,Berlin\n");
    std::fs::write(&csv, text).unwrap();
    let dir = ws.path().join("results");
    let dir_arg = dir.display().to_string();
    let creds = Creds::mock_token();

    let ran = ws
        .run(&csv, &["--results", &dir_arg, "--json"], &creds)
        .await;
    ran.expect_code(3);
    let json = ran.json();
    assert_eq!(
        json["results"]["success"]["rows"],
        json["counts"]["rows"]["succeeded"]
    );
    let success = read(&dir.join("run-1-success.csv"));
    let errors = read(&dir.join("run-1-errors.csv"));
    assert_eq!(success.len() + errors.len(), 101, "{}", ran.report());
    let mut lines: Vec<u64> = success
        .iter()
        .chain(&errors)
        .map(|r| r[0].parse().unwrap())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        (2..=102).collect::<Vec<u64>>(),
        "one line per input row"
    );
    assert!(success.iter().all(|r| r.iter().any(|c| c == "succeeded")));
    assert!(errors
        .iter()
        .any(|r| r.iter().any(|c| c == "RECORD_LOCKED")));
    assert!(errors
        .iter()
        .any(|r| r[0] == *"102" && r.iter().any(|c| c == "invalid")));

    // retry writes them again, replacing the files: only the invalid row is left.
    ws.again("retry", &["--results", &dir_arg], &creds)
        .await
        .expect_code(3);
    assert_eq!(read(&dir.join("run-1-success.csv")).len(), 100);
    assert_eq!(read(&dir.join("run-1-errors.csv")).len(), 1);
}
