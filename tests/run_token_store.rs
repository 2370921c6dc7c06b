//! The token store over real HTTP: a cron loop that sends fifteen files one by one mints
//! one access token, not fifteen (Zoho mints at most ten per ten minutes); the stored
//! token is a private file that never shows in any output; a token the API refuses is
//! dropped and replaced; `massup logout` and `MASSUP_TOKEN_STORE=off` do what they say.

mod support;

use std::path::{Path, PathBuf};

use massup::mock::MockConfig;
use support::*;

fn config() -> MockConfig {
    MockConfig {
        records: 200,
        seed: 231,
        // As Zoho: the eleventh token in ten minutes would be refused.
        max_tokens_per_10min: Some(10),
        ..MockConfig::default()
    }
}

/// The token files in the workspace's state folder (tests set HOME to the workspace).
fn token_files(ws: &Workspace) -> Vec<PathBuf> {
    let dir = ws.path().join(".local/state/massup");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("token-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
}

fn stored_token(path: &Path) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["access_token"].as_str().unwrap().to_string()
}

/// `file_N.csv`: records 10N..10N+10 get City `City N`.
fn sheet(ws: &Workspace, config: &MockConfig, n: usize) -> PathBuf {
    let ids = config.record_ids();
    let mut text = String::from("id,City\n");
    for id in &ids[10 * n..10 * n + 10] {
        text.push_str(&format!("{id},City {n}\n"));
    }
    ws.write(&format!("file_{n}.csv"), &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_runs_in_a_row_mint_one_token_that_stays_private() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let creds = Creds::refresh_of(&config);
    let mut outputs = Vec::new();
    for n in 0..15 {
        let csv = sheet(&ws, &config, n);
        let ran = ws.run(&csv, &["--yes"], &creds).await;
        ran.expect_code(0);
        outputs.push(ran);
    }
    let ledger = server.ledger();
    assert_eq!(ledger.refreshes, 1, "one token for fifteen processes");
    let ids = config.record_ids();
    for n in 0..15 {
        for id in &ids[10 * n..10 * n + 10] {
            assert_eq!(ledger.records[id]["City"], format!("City {n}"), "{id}");
        }
    }

    let files = token_files(&ws);
    assert_eq!(files.len(), 1, "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(files[0].parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o077, 0, "the state folder is private");
    }
    let token = stored_token(&files[0]);
    assert!(token.starts_with("1000."), "a token the mock minted");
    for ran in &outputs {
        let stdout = String::from_utf8_lossy(&ran.output.stdout);
        let stderr = String::from_utf8_lossy(&ran.output.stderr);
        assert!(
            !stdout.contains(&token) && !stderr.contains(&token),
            "{}",
            ran.report()
        );
    }
    // Nor the client's secrets, nor the token, in the database (and its WAL).
    for entry in std::fs::read_dir(ws.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&token), "{}", path.display());
            assert!(!text.contains(&config.client_secret), "{}", path.display());
        }
    }
    // status --json and the report do not hold it either.
    let status = ws
        .massup(&["status", "--all", "--json"], &Creds::None)
        .await;
    assert!(!String::from_utf8_lossy(&status.output.stdout).contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stored_token_is_replaced_and_logout_forgets_it() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let creds = Creds::refresh_of(&config);
    ws.run(&sheet(&ws, &config, 0), &["--yes"], &creds)
        .await
        .expect_code(0);
    assert_eq!(server.ledger().refreshes, 1);
    let file = token_files(&ws).pop().expect("a stored token");
    let first = stored_token(&file);

    // Revoked behind massup's back: the stored token is refused by the API.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(&first, "1000.revoked.token")).unwrap();
    let ran = ws.run(&sheet(&ws, &config, 1), &["--yes"], &creds).await;
    ran.expect_code(0);
    assert!(
        !ran.stderr().contains("1000.revoked.token"),
        "{}",
        ran.report()
    );
    let ledger = server.ledger();
    assert_eq!(ledger.refreshes, 2, "the refused token was replaced once");
    assert!(ledger.by_code.get("INVALID_TOKEN").copied().unwrap_or(0) >= 1);
    let second = stored_token(&file);
    assert!(second != first && second != "1000.revoked.token");

    // logout deletes it; the next run mints again.
    let out = ws.massup(&["logout", "--json"], &Creds::None).await;
    out.expect_code(0);
    let json: serde_json::Value = serde_json::from_slice(&out.output.stdout).unwrap();
    assert_eq!(json["removed"], 1, "{json}");
    assert!(token_files(&ws).is_empty());
    ws.run(&sheet(&ws, &config, 2), &["--yes"], &creds)
        .await
        .expect_code(0);
    assert_eq!(server.ledger().refreshes, 3);

    // Another client secret (rotated) for the same client never takes the stored token.
    let rotated = Creds::refresh_of(&config).with_client_secret("another-secret");
    ws.run(&sheet(&ws, &config, 3), &["--yes"], &rotated)
        .await
        .expect_code(1);
    assert_eq!(
        server.ledger().refreshes,
        3,
        "the mock refused the wrong secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_off_each_process_mints_and_keeps_nothing() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let creds = Creds::refresh_of(&config);
    for n in 0..2 {
        let csv = sheet(&ws, &config, n);
        let args = ws.run_args(&csv, &["--yes"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = ws
            .command(&args, &creds)
            .env("MASSUP_TOKEN_STORE", "off")
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    assert_eq!(server.ledger().refreshes, 2);
    assert!(token_files(&ws).is_empty());
}
