//! Answers without end: a server that streams a body forever, to a record call and to the
//! token endpoint. massup reads at most 16 MiB of an answer to a record call (64 KiB of a
//! token answer), chunk by chunk, so its memory stays flat; the call fails as a retryable
//! transport error naming the cap, and the run stops resumably.
//!
//! Each run of the binary has an address-space limit (set before it starts) and a
//! deadline; its peak RSS is the kernel's figure for that child (wait4).
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use massup::mock::{MockConfig, MockServer};
use support::{leads_fields, off_runtime, status_csv, Dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most a child may reach: the bound.
const RSS_LIMIT: u64 = 200 << 20;

/// A server answering every request `200 OK` with a chunked body that never ends (JSON's
/// whitespace, 64 KiB a chunk), until the client goes away. Counts the bytes it got out.
async fn endless_server() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                // The request: headers, then as many body bytes as Content-Length says.
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                let header_end = loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..header_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < header_end + length {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let piece = vec![b' '; 64 << 10];
                let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(&piece);
                chunk.extend_from_slice(b"\r\n");
                while socket.write_all(&chunk).await.is_ok() {
                    counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (url, sent)
}

/// Regression: a server streaming an endless body drove one process from 1 GB to 9.8 GB
/// in 23 s at concurrency 1. Now each attempt stops at 16 MiB, both attempts fail as
/// NO_ANSWER naming the cap, and the run stops resumably (exit 4) with its peak RSS far
/// below 200 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_to_a_record_call_stops_at_the_cap_with_flat_memory() {
    let (url, sent) = endless_server().await;
    let dir = Dir::new();
    let ids: Vec<String> = MockConfig::default().record_ids()[..20].to_vec();
    let csv = dir.write("in.csv", status_csv(&ids));
    let fields = leads_fields();
    let args = [
        "run",
        "--csv",
        csv.to_str().unwrap(),
        "--module",
        "Leads",
        "--fields",
        fields.to_str().unwrap(),
        "--api-domain",
        &url,
        "--api",
        "mass",
        "--no-snapshot",
        "--concurrency",
        "1",
        "--max-attempts",
        "2",
        "--backoff-ms",
        "5",
    ];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let ran = off_runtime(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = dir.massup(
            &args,
            &[("ZOHO_ACCESS_TOKEN", "endless-test-token")],
            Duration::from_secs(60),
        );
        (dir, ran)
    })
    .await;
    let (dir, ran) = ran;
    assert!(!ran.timed_out, "{}", ran.report());
    ran.expect_code(4);
    let stderr = ran.stderr();
    assert!(stderr.contains("resume --run 1"), "{}", ran.report());
    assert!(
        ran.max_rss < RSS_LIMIT,
        "peak RSS {} MB\n{}",
        ran.max_rss >> 20,
        ran.report()
    );
    // Both attempts read up to the cap, not beyond it by more than what was in flight.
    let streamed = sent.load(Ordering::Relaxed);
    assert!(streamed >= 2 * (16 << 20), "{streamed} bytes streamed");
    // The chunk is pending again, its last answer naming the cap.
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let (state, code, message): (String, String, String) = conn
        .query_row(
            "SELECT state, code, message FROM chunks ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), code.as_str()), ("pending", "NO_ANSWER"));
    assert!(message.contains("larger than 16 MiB"), "{message}");
}

/// The token endpoint streams without end: the refresh stops at 64 KiB, the command fails
/// at once (no token to be had) with flat memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_token_answer_stops_at_its_small_cap() {
    let (accounts, _) = endless_server().await;
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let api = mock.url();
    let ran = off_runtime(move || {
        let dir = Dir::new();
        dir.massup(
            &[
                "fields",
                "Leads",
                "--api-domain",
                &api,
                "--accounts-url",
                &accounts,
            ],
            &[
                ("ZOHO_CLIENT_ID", "endless-client-id"),
                ("ZOHO_CLIENT_SECRET", "endless-client-secret"),
                ("ZOHO_REFRESH_TOKEN", "endless-refresh-token"),
            ],
            Duration::from_secs(60),
        )
    })
    .await;
    assert!(!ran.timed_out, "{}", ran.report());
    assert!(
        ran.code.is_some_and(|c| c != 0),
        "no token, no fields\n{}",
        ran.report()
    );
    assert!(ran.stderr().contains("64 KiB"), "{}", ran.report());
    assert!(ran.max_rss < RSS_LIMIT, "{}", ran.report());
    assert!(ran.elapsed < Duration::from_secs(20), "{}", ran.report());
}
