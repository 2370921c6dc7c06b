//! What the benchmarks that run the massup binary share: timing a child with its peak RSS,
//! and the median of repeated runs.
use std::path::Path;
use std::time::Instant;

/// Runs the command and returns (wall seconds, peak RSS in bytes) via wait4's rusage.
/// Its stdout goes to `stdout` (nothing when None).
pub fn measure(cmd: &mut std::process::Command, stdout: Option<&Path>) -> (f64, u64) {
    let out = match stdout {
        Some(path) => std::process::Stdio::from(std::fs::File::create(path).expect("stdout file")),
        None => std::process::Stdio::null(),
    };
    let start = Instant::now();
    let child = cmd.stdout(out).spawn().expect("spawn massup");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers; the Child is not waited on
    // afterwards (it is forgotten) so the pid is reaped exactly once.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed().as_secs_f64();
    std::mem::forget(child);
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "massup failed: status {status}"
    );
    (elapsed, usage.ru_maxrss as u64 * 1024)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
