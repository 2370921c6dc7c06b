//! The question `run` and `retry` ask before sending, on a pseudo-terminal: it says what
//! will be sent where, only `y` sends, and it is never asked without a terminal on stdin,
//! with `--yes` or with `--json` (cron is never blocked).

mod support;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use massup::mock::MockConfig;
use support::*;

/// A pseudo-terminal: (the side a person types into, the side the program reads).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the integers it is given.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here alone.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

/// `massup <args>` with stdin on a pseudo-terminal where `typed` was typed.
async fn on_terminal(ws: &Workspace, args: &[String], typed: &str) -> Ran {
    let (mut keyboard, terminal) = pty();
    keyboard.write_all(typed.as_bytes()).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = ws.command(&args, &Creds::mock_token());
    command.stdin(Stdio::from(terminal));
    // A guard, not a timing assertion: a question nobody answers would wait for ever.
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("massup {args:?} waited for an answer"))
        .expect("run massup");
    drop(keyboard);
    Ran {
        command: format!(
            "massup {} (stdin a terminal, typed {typed:?})",
            args.join(" ")
        ),
        output,
    }
}

const QUESTION: &str = "About to update 60 field values on 30 Leads records at 127.0.0.1:";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_asks_on_a_terminal_and_sends_only_on_yes() {
    let config = MockConfig {
        records: 30,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 30, false).await;
    let args = ws.run_args(&csv, &[]);

    let ran = on_terminal(&ws, &args, "n\n").await;
    ran.expect_code(4);
    ran.expect_stderr(&[
        QUESTION,
        " in 7 calls costing 7 API credits (run 1). Send? [y/N]",
        "Nothing sent",
    ]);
    assert_eq!(server.ledger().requests, 0, "{}", ran.report());

    // Asked again (the run is still unsent), and sent on yes.
    let ran = on_terminal(&ws, &args, "y\n").await;
    ran.expect_code(0);
    ran.expect_stderr(&[QUESTION]);
    assert_eq!(server.ledger().requests, 7, "{}", ran.report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yes_json_and_no_terminal_never_ask() {
    let config = MockConfig {
        records: 30,
        ..MockConfig::default()
    };
    for extra in [&["--yes"][..], &["--json"], &[]] {
        let (server, ws, _, csv) = scene(&config, 30, false).await;
        let args = ws.run_args(&csv, extra);
        let ran = if extra.is_empty() {
            // stdin not a terminal (as under cron): the support's commands read /dev/null.
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ws.massup(&args, &Creds::mock_token()).await
        } else {
            // Nothing typed: a question would wait (the guard above ends the test).
            on_terminal(&ws, &args, "").await
        };
        ran.expect_code(0);
        assert!(!ran.stderr().contains("Send? [y/N]"), "{}", ran.report());
        assert_eq!(server.ledger().requests, 7, "{}", ran.report());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_a_terminal_does_not_stop_to_ask() {
    let server = start(MockConfig::default()).await;
    let ws = Workspace::new(&server);
    let args: Vec<String> = ["demo", "--fast", "--rows", "200", "--dir", "d"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ran = on_terminal(&ws, &args, "").await;
    ran.expect_code(0);
    assert!(!ran.stderr().contains("Send? [y/N]"), "{}", ran.report());
}
