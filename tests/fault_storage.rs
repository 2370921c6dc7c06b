//! Storage faults: a full disk and a read-only database mid-run end with a clear message
//! and exit 1, and once the disk is fixed `resume` finishes the job with the ledger in
//! agreement. These need a small tmpfs, which needs root; without it they say so and pass.
#![cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use massup::mock::{MockConfig, MockServer};
use massup::summary::{for_each_row, RowOutcome};

struct Tmpfs(PathBuf);

fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed statvfs to fill.
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("massup-tmpfs")
            .tempdir()
            .ok()?
            .keep();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            Some(Tmpfs(dir))
        } else {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            None
        }
    }

    fn remount(&self, mode: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn massup(db: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_massup"))
        .arg("--db")
        .arg(db)
        .args(args)
        .args(["--api-domain", url, "--accounts-url", url])
        .env("ZOHO_ACCESS_TOKEN", "mock-token")
        .env_remove("MASSUP_DB")
        .output()
        .unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Plans `rows` rows into a database on `fs`, with the WAL checkpointed and truncated so
/// that the next write has to grow a file.
fn setup(fs: &Tmpfs, ids: &[String]) -> PathBuf {
    let csv = fs.0.join("in.csv");
    let mut text = String::from("id,Lead_Status,Rating\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!(
            "{id},{},Active\n",
            ["Contacted", "Junk Lead"][i % 2]
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let db = fs.0.join("t.db");
    let out = Command::new(env!("CARGO_BIN_EXE_massup"))
        .arg("--db")
        .arg(&db)
        .args(["plan", "--csv"])
        .arg(&csv)
        .args(["--module", "Leads", "--fields", "samples/fields/Leads.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    db
}

fn assert_all_succeeded(db: &Path, mock: &MockServer, rows: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ledger = mock.ledger();
    let mut n = 0;
    for_each_row(&conn, 1, |row| -> Result<(), massup::store::StoreError> {
        assert_eq!(row.outcome, RowOutcome::Succeeded, "line {}", row.line);
        let held = &ledger.records[&row.record_id];
        assert_eq!(held["Lead_Status"], row.values[0]);
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, rows);
}

#[test]
fn a_full_disk_stops_the_run_clearly_and_resume_finishes_it() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = MockConfig {
        records: 20_000,
        ..MockConfig::default()
    };
    let ids = config.record_ids();
    let mock = rt.block_on(MockServer::start(config)).unwrap();
    let db = setup(&fs, &ids);
    // Fill the disk but for 256 KiB: the run starts, then its outcomes no longer fit.
    let free = free_bytes(&fs.0);
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![0u8; (free - (256 << 10)) as usize]).unwrap();
    let out = massup(&db, &mock.url(), &["resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        mock.ledger().requests > 0,
        "the disk filled before the run started: {}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("full"), "{}", show(&out));
    assert!(stderr.contains("massup resume"), "{}", show(&out));
    std::fs::remove_file(&filler).unwrap();
    let out = massup(&db, &mock.url(), &["resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_all_succeeded(&db, &mock, ids.len());
}

#[test]
fn a_read_only_database_stops_the_run_clearly_and_resume_finishes_it() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = MockConfig {
        records: 1_000,
        ..MockConfig::default()
    };
    let ids = config.record_ids();
    let mock = rt.block_on(MockServer::start(config)).unwrap();
    let db = setup(&fs, &ids);
    fs.remount("ro");
    let out = massup(&db, &mock.url(), &["resume"]);
    fs.remount("rw");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be written"), "{}", show(&out));
    assert!(stderr.contains("massup resume"), "{}", show(&out));
    assert_eq!(
        mock.ledger().requests,
        0,
        "nothing may be sent that cannot be recorded"
    );
    let out = massup(&db, &mock.url(), &["resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_all_succeeded(&db, &mock, ids.len());
}
