//! Pathological inputs get a clear answer and bounded work, never an out-of-memory kill or
//! a hang: a 10 MB cell, a million columns, a last line without a newline.
use std::process::{Command, Output};

fn plan(dir: &std::path::Path, csv: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_massup"))
        .current_dir(dir)
        .args([
            "--db", "t.db", "plan", "--csv", csv, "--module", "Leads", "--json",
        ])
        .env_remove("MASSUP_DB")
        .output()
        .expect("run massup")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_ten_megabyte_cell_makes_only_its_row_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,Last_Name\n1,Smith\n2,\"");
    text.push_str(&"x".repeat(10 << 20));
    text.push_str("\"\n3,Jones\n");
    std::fs::write(dir.path().join("big.csv"), text).unwrap();
    let out = plan(dir.path(), "big.csv");
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["valid_rows"], 2);
    assert_eq!(summary["invalid_rows"], 1);
    let message = summary["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("bytes"), "{message}");
    assert_eq!(summary["problems"][0]["line"], 3);
    // The stored row is cut short, not 10 MB.
    let size = std::fs::metadata(dir.path().join("t.db")).unwrap().len()
        + std::fs::metadata(dir.path().join("t.db-wal")).map_or(0, |m| m.len());
    assert!(size < 4 << 20, "database is {size} bytes");
}

#[test]
fn a_million_columns_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = String::from("id");
    for i in 0..1_000_000 {
        header.push_str(&format!(",F{i}"));
    }
    header.push_str("\n1");
    std::fs::write(dir.path().join("wide.csv"), header).unwrap();
    let started = std::time::Instant::now();
    let out = plan(dir.path(), "wide.csv");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1000001 columns") && stderr.contains("line 1"),
        "{stderr}"
    );
    // Not a timing assertion on speed, a guard against a quadratic hang.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_last_line_without_newline_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("n.csv"),
        "id,Last_Name\r\n1,Smith\r\n2,Smith",
    )
    .unwrap();
    let out = plan(dir.path(), "n.csv");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["valid_rows"], 2);
    assert_eq!(summary["example_request"]["ids"][1], "2");
}

/// Regression: `--csv /dev/zero` read (and spooled) until killed.
#[cfg(unix)]
#[test]
fn input_that_never_ends_stops_within_a_bounded_read() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = plan(dir.path(), "/dev/zero");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/dev/zero"), "{stderr}");
    assert!(stderr.contains("line 1 is longer than 64 MiB"), "{stderr}");
    // Bounded work, not a timing assertion: it read about 64 MiB, not gigabytes.
    eprintln!("stopped after {:?}", started.elapsed());
}

/// A regular file whose first line never ends is refused the same way, naming the line.
#[test]
fn a_file_with_an_endless_line_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.csv");
    let mut text = b"id,Last_Name\n1,Smith\n".to_vec();
    text.resize(text.len() + (65 << 20), b'x');
    std::fs::write(&path, text).unwrap();
    let out = plan(dir.path(), "flat.csv");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3 is longer than 64 MiB"), "{stderr}");
}
