//! Secrets echoed in other encodings. A hostile server that echoes the client secret,
//! refresh token and access token URL-encoded, JSON-escaped or in base64 got them printed
//! on stderr, in `--json` output, in `fields` output, stored in the database, and into
//! every report and the `--results` files. massup now registers every such form of each
//! secret with the redactor: none of them, in any form, is found in any of those sinks,
//! nor in a panic report.
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use massup::mock::MockConfig;
use std::sync::Arc;

use support::{database_bytes, leads_fields, massup_in, status_csv, Bounded, Dir};

// The secrets, characters that every encoding changes included.
const CLIENT_ID: &str = "1000.HOSTILE/CLIENT+ID";
const CLIENT_SECRET: &str = "cs/Zq+81=hunter2&x";
const REFRESH_TOKEN: &str = "rt.Pq77~swordfish/9";
const ACCESS_TOKEN: &str = "at+Kx93/moonbeam=N";
const SECRETS: [&str; 4] = [CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN];
const DEADLINE: Duration = Duration::from_secs(60);

/// Every form of `secret` the test looks for, computed here (not by massup): as given;
/// URL-encoded in the `+` and the `%20` style, upper- and lower-case hex; JSON-escaped
/// (`\/`); base64 standard and URL-safe, with and without padding; and base64 of it
/// behind a prefix (`id:secret`, as in a Basic header), whose middle is fixed by the
/// secret alone.
fn forms(secret: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let lower = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
            }
        }
        out
    };
    let b64 = &base64::engine::general_purpose::STANDARD;
    let url = &base64::engine::general_purpose::URL_SAFE;
    let nopad = |s: String| s.trim_end_matches('=').to_string();
    vec![
        secret.to_string(),
        lower(&form),
        form,
        lower(&percent),
        percent,
        secret.replace('/', "\\/"),
        b64.encode(secret),
        nopad(b64.encode(secret)),
        url.encode(secret),
        nopad(url.encode(secret)),
        b64.encode(format!("id:{secret}")),
        url.encode(format!("x{secret}!!")),
    ]
}

/// The text a hostile server echoes: every form of each of `secrets`.
fn echo_of(secrets: &[&str]) -> String {
    secrets
        .iter()
        .flat_map(|s| forms(s))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Every form of every secret: what a server that minted the access token can echo.
fn echo() -> String {
    echo_of(&SECRETS)
}

/// The secret's forms a haystack holds (for base64 of a longer blob: its fixed middle).
fn leaks(haystack: &str) -> Vec<String> {
    let mut found = Vec::new();
    for secret in SECRETS {
        for form in forms(secret) {
            // A blob's ends mix in the bytes around the secret: look for its middle.
            let needle = if form.len() > 24 && !form.contains(secret) {
                form[4..form.len() - 4].to_string()
            } else {
                form
            };
            if haystack.contains(&needle) {
                found.push(needle);
            }
        }
    }
    found
}

#[derive(Clone)]
struct Hostile {
    url: String,
}

/// Accounts under `/mint` mint ACCESS_TOKEN (and name this server as the API domain);
/// under `/refuse` they refuse, echoing everything. The API's field metadata carries a
/// field labelled with the echo; mass_update answers every record INVALID_DATA with it.
async fn hostile_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fields: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(leads_fields()).unwrap()).unwrap();
    let app = Router::new()
        .route(
            "/mint/oauth/v2/token",
            post(|State(h): State<Hostile>| async move {
                axum::Json(serde_json::json!({
                    "access_token": ACCESS_TOKEN,
                    "api_domain": h.url,
                    "expires_in": 3600,
                    "token_type": "Bearer",
                    "note": echo(),
                }))
            }),
        )
        .route(
            "/refuse/oauth/v2/token",
            // It minted no token: it can echo only what the request carried.
            post(|| async {
                let sent = echo_of(&[CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN]);
                axum::Json(serde_json::json!({ "error": format!("invalid_client {sent}") }))
            }),
        )
        .route(
            "/crm/v2/settings/fields",
            get(move |Query(_): Query<HashMap<String, String>>| {
                let mut fields = fields.clone();
                fields["fields"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({
                        "api_name": "Echo",
                        "field_label": echo(),
                        "display_label": echo(),
                        "data_type": "text",
                        "json_type": "string",
                        "read_only": true,
                        "mass_update": false,
                        "length": 10,
                        "pick_list_values": [],
                        "custom_field": true
                    }));
                async move { axum::Json(fields) }
            }),
        )
        .route(
            "/crm/v2/Leads/actions/mass_update",
            post(|_: HeaderMap, body: String| async move {
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                let data: Vec<serde_json::Value> = request["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| {
                        serde_json::json!({
                            "code": "INVALID_DATA",
                            "details": { "id": id, "api_name": "Lead_Status" },
                            "message": format!("refused, token was {}", echo()),
                            "status": "error",
                        })
                    })
                    .collect();
                axum::Json(serde_json::json!({ "data": data }))
            }),
        )
        .with_state(Hostile { url: url.clone() });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn creds() -> [(&'static str, &'static str); 3] {
    [
        ("ZOHO_CLIENT_ID", CLIENT_ID),
        ("ZOHO_CLIENT_SECRET", CLIENT_SECRET),
        ("ZOHO_REFRESH_TOKEN", REFRESH_TOKEN),
    ]
}

/// Regression: echoed secrets in encoded forms reached stderr, `--json`, `fields`, the
/// database with its WAL, the reports (CSV, JSON, HTML) and the `--results` files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_every_encoded_form_reach_no_sink() {
    let url = hostile_server().await;
    let mint = format!("{url}/mint");
    let refuse = format!("{url}/refuse");
    let dir = Arc::new(Dir::new());
    let ids: Vec<String> = MockConfig::default().record_ids()[..10].to_vec();
    let csv = dir.write("in.csv", status_csv(&ids));
    let csv = csv.to_str().unwrap();
    let results = dir.path().join("results");
    let results = results.to_str().unwrap();
    let run = |accounts: &str| -> Vec<String> {
        [
            "run",
            "--csv",
            csv,
            "--module",
            "Leads",
            "--api-domain",
            &url,
            "--accounts-url",
            accounts,
            "--api",
            "mass",
            "--no-snapshot",
            "--new-run",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut outputs: Vec<Bounded> = Vec::new();
    let go = async |args: Vec<String>, extra: &[&str]| {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let ran = massup_in(&dir, &args, &creds(), DEADLINE).await;
        assert!(!ran.timed_out, "{}", ran.report());
        ran
    };

    // The token endpoint refuses, echoing: stderr (human and JSON log lines), --json.
    let refused = go(run(&refuse), &["-vv"]).await;
    refused.expect_code(1);
    outputs.push(refused);
    let refused = go(run(&refuse), &["-vv", "--log-format", "json", "--json"]).await;
    refused.expect_code(1);
    outputs.push(refused);
    // `fields`, as a table and as JSON: the metadata's labels echo.
    let fields = [
        "fields",
        "Leads",
        "--api-domain",
        &url,
        "--accounts-url",
        &mint,
    ];
    let shown = go(strings(&fields), &[]).await;
    shown.expect_code(0);
    assert!(shown.stdout().contains("***"), "{}", shown.report());
    outputs.push(shown);
    outputs.push(go(strings(&fields), &["--json"]).await.expect_ok());
    // A run whose every record is refused with the echo: stored, logged, reported.
    let sent = go(
        run(&mint),
        &[
            "-vv",
            "--log-format",
            "json",
            "--json",
            "--results",
            results,
        ],
    )
    .await;
    sent.expect_code(3);
    outputs.push(sent);
    outputs.push(go(strings(&["status", "--json"]), &[]).await.expect_ok());
    outputs.push(go(strings(&["status"]), &[]).await.expect_ok());
    let mut files = Vec::new();
    for format in ["csv", "json", "html"] {
        let out = dir.path().join(format!("report.{format}"));
        let args = ["report", "--format", format, "--out", out.to_str().unwrap()];
        outputs.push(go(strings(&args), &[]).await.expect_ok());
        files.push(out);
    }
    for entry in std::fs::read_dir(results).unwrap() {
        files.push(entry.unwrap().path());
    }
    assert_eq!(
        files.len(),
        5,
        "three reports and two result files: {files:?}"
    );

    let mut everything = String::new();
    for out in &outputs {
        everything.push_str(&out.stdout());
        everything.push_str(&out.stderr());
    }
    for file in &files {
        everything.push_str(&std::fs::read_to_string(file).unwrap());
    }
    // The database, every page of it, the WAL too.
    everything.push_str(&String::from_utf8_lossy(&database_bytes(&dir.db())));
    let found = leaks(&everything);
    assert!(
        found.is_empty(),
        "leaked: {found:?}\n{}",
        outputs
            .iter()
            .map(Bounded::report)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The refusals and records were there to be masked.
    assert!(everything.contains("invalid_client ***"));
    assert!(everything.contains("refused, token was ***"));
}

const PANIC_CHILD_ENV: &str = "HOSTILE_REDACTION_PANIC_CHILD";

/// Run normally, does nothing; run as the child of the test below, panics with every form
/// of the secrets in its message.
#[test]
fn child_panics_with_encoded_secrets() {
    if std::env::var_os(PANIC_CHILD_ENV).is_none() {
        return;
    }
    for secret in SECRETS {
        massup::redact::register(secret);
    }
    massup::redact::install_panic_hook();
    panic!("boom: {}", echo());
}

/// A panic report is redacted for every form too.
#[test]
fn panic_reports_show_no_form_of_a_secret() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_panics_with_encoded_secrets",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANIC_CHILD_ENV, "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("boom: ***"), "{stderr}");
    let found = leaks(&stderr);
    assert!(found.is_empty(), "leaked {found:?}: {stderr}");
}
