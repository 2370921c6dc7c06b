//! State and config files that are not plain files: the token budget file replaced by a
//! symlink to `/dev/zero` (memory grew to 23 GB until the kernel killed the process) or by
//! a FIFO (the process blocked for ever), and a FIFO given as the config file. Each now
//! costs under a second: the budget file is warned about once and replaced by a plain
//! one, the config file refused naming what it is.
//!
//! Each run of the binary has an address-space limit and a deadline (it is killed after
//! it), so a regression fails the test instead of hanging it or the machine.
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use massup::api::budget::budget_file;
use massup::mock::{MockConfig, MockServer};
use support::{off_runtime, Bounded, Dir};

const DEADLINE: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
}

/// `massup fields Leads` with the mock's refresh credentials: one token minted, so the
/// budget file is read and written once.
async fn fields(dir: Dir, config: &MockConfig, url: &str, extra: &[&str]) -> (Dir, Bounded) {
    let mut args: Vec<String> = [
        "fields",
        "Leads",
        "--api-domain",
        url,
        "--accounts-url",
        url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let env = [
        ("ZOHO_CLIENT_ID".to_string(), config.client_id.clone()),
        (
            "ZOHO_CLIENT_SECRET".to_string(),
            config.client_secret.clone(),
        ),
        (
            "ZOHO_REFRESH_TOKEN".to_string(),
            config.refresh_token.clone(),
        ),
    ];
    off_runtime(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let ran = dir.massup(&args, &env, DEADLINE);
        (dir, ran)
    })
    .await
}

/// Regression: the budget file as a symlink to /dev/zero was read until the kernel
/// killed the process; as a FIFO it blocked for ever. Either now costs under a second more
/// than a plain file, is warned about once, and is replaced by a plain file holding the
/// token just minted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_file_that_is_a_device_or_a_fifo_costs_under_a_second() {
    let config = MockConfig::default();
    let mock = MockServer::start(config.clone()).await.unwrap();
    let url = mock.url();
    // The same command with a plain budget file: what it costs on this machine.
    let (_, baseline) = fields(Dir::new(), &config, &url, &[]).await;
    baseline.expect_code(0);
    for hostile in ["symlink to /dev/zero", "FIFO"] {
        let dir = Dir::new();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let budget = budget_file(&state, &config.client_id);
        match hostile {
            "FIFO" => mkfifo(&budget),
            _ => std::os::unix::fs::symlink("/dev/zero", &budget).unwrap(),
        }
        let (_dir, ran) = fields(dir, &config, &url, &[]).await;
        assert!(!ran.timed_out, "{hostile}: hung\n{}", ran.report());
        ran.expect_code(0);
        assert!(
            ran.elapsed < baseline.elapsed + Duration::from_secs(1),
            "{hostile}: {:?} against {:?} with a plain file\n{}",
            ran.elapsed,
            baseline.elapsed,
            ran.report()
        );
        let stderr = ran.stderr();
        assert_eq!(
            stderr.matches("the token budget file was replaced").count(),
            1,
            "{hostile}: warned once\n{}",
            ran.report()
        );
        let meta = std::fs::symlink_metadata(&budget).unwrap();
        assert!(meta.is_file(), "{hostile}: replaced by a plain file");
        let text = std::fs::read_to_string(&budget).unwrap();
        let times = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(times, 1, "{hostile}: the token minted is counted\n{text}");
        // Nothing of /dev/zero's was written through the link.
        assert!(ran.max_rss < 200 << 20, "{}", ran.report());
    }
}

/// A FIFO given as the config file blocked the command for ever; it is refused at once,
/// naming what it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_that_is_a_fifo_is_refused_at_once() {
    let dir = Dir::new();
    let fifo = dir.path().join("massup.toml");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap().to_string();
    let ran = off_runtime(move || dir.massup(&["--config", &fifo, "status"], &[], DEADLINE)).await;
    assert!(!ran.timed_out, "{}", ran.report());
    ran.expect_code(2);
    assert!(
        ran.stderr().contains("is a FIFO, not a plain file"),
        "{}",
        ran.report()
    );
    assert!(ran.elapsed < Duration::from_secs(1), "{}", ran.report());
}
