//! A run lease held by another process is refused with the holder's name, and a holder
//! killed with SIGKILL leaves the lease free at once (the kernel drops its lock).
//!
//! The other process is this test binary itself, started with `LEASE_CHILD_LOCK` set: the
//! `child_holds_a_lease` test then takes the lease, says so on stdout and sleeps until it
//! is killed. Run normally, that test does nothing.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use massup::lease::{run_lock_path, try_acquire, LeaseError};

const CHILD_ENV: &str = "LEASE_CHILD_LOCK";

#[test]
fn child_holds_a_lease() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let _lease = try_acquire(Path::new(&path), "massup resume").expect("the child locks");
    println!("LEASE-HELD");
    std::thread::sleep(Duration::from_secs(60));
}

#[cfg(unix)]
#[test]
fn a_holder_killed_with_sigkill_releases_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_lock_path(&dir.path().join("massup.db"), 7);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_a_lease",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines.any(|line| line.is_ok_and(|l| l.contains("LEASE-HELD")));
    assert!(held, "the child never said it holds the lease");

    let err = try_acquire(&path, "massup run").unwrap_err();
    let LeaseError::Held {
        holder: Some(holder),
        ..
    } = &err
    else {
        panic!("expected the child named as holder, got {err:?}");
    };
    assert_eq!(holder.pid, child.id());
    assert_eq!(holder.command, "massup resume");

    // Child::kill sends SIGKILL on Unix: no destructor runs in the child.
    child.kill().unwrap();
    child.wait().unwrap();
    let lease = try_acquire(&path, "massup run").expect("a dead holder's lease is free");
    assert_eq!(lease.holder().pid, std::process::id());
}
