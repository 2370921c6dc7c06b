//! Load benchmark of the mock's mass_update endpoint: N keep-alive clients in the same
//! process send 500-id calls for a few seconds; prints requests/s and ids/s, median of 3 runs.
//!
//! `cargo bench --bench mock_load` (env: MOCK_LOAD_CLIENTS, default 8; MOCK_LOAD_SECS,
//! default 3). The clients share the machine's cores with the server, so the figure is a
//! lower bound for the server alone. Each run also prints the CPU the process used (from
//! /proc/self/stat on Linux): requests per CPU-second tells the server's cost even when
//! something else on the machine takes cores away during the run.

use massup::mock::{MockConfig, MockServer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IDS_PER_CALL: usize = 500;
const RUNS: usize = 3;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Ready-made bodies: each a different value over a different window of ids, so the server
/// does real work on every call, but the clients spend no time building JSON.
fn bodies(ids: &[String]) -> Vec<Vec<u8>> {
    ids.chunks(IDS_PER_CALL)
        .filter(|c| c.len() == IDS_PER_CALL)
        .enumerate()
        .map(|(i, chunk)| {
            let body = serde_json::json!({
                "data": [{"No_of_Employees": i}],
                "over_write": true,
                "ids": chunk,
            });
            serde_json::to_vec(&body).expect("a json! value serialises")
        })
        .collect()
}

/// CPU seconds (user + system) this process has used, if the platform tells.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the ")" that closes the command name; utime and stime are the 12th and
    // 13th of those, in clock ticks (USER_HZ, 100 on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

struct RunResult {
    requests_per_sec: f64,
    failed: u64,
    cores_used: Option<f64>,
}

async fn run_once(url: &str, bodies: &Arc<Vec<Vec<u8>>>, clients: usize, secs: f64) -> RunResult {
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let endpoint = format!("{url}/crm/v8/Leads/actions/mass_update");
    let mut tasks = Vec::new();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    for c in 0..clients {
        let (done, ok, failed) = (done.clone(), ok.clone(), failed.clone());
        let (endpoint, bodies) = (endpoint.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            // One client (one keep-alive connection) per task, like separate workers.
            massup::api::install_crypto_provider();
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client builds");
            let mut i = c;
            while !done.load(Ordering::Relaxed) {
                let body = bodies[i % bodies.len()].clone();
                i += clients;
                let result = client
                    .post(&endpoint)
                    .header("Authorization", "Zoho-oauthtoken mock-token")
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    },
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cores_used = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| (after - before) / elapsed);
    RunResult {
        requests_per_sec: ok.load(Ordering::Relaxed) as f64 / elapsed,
        failed: failed.load(Ordering::Relaxed),
        cores_used,
    }
}

fn main() {
    let clients: usize = env_or("MOCK_LOAD_CLIENTS", 8);
    let secs: f64 = env_or("MOCK_LOAD_SECS", 3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime builds");
    runtime.block_on(async {
        let config = MockConfig {
            records: 20 * IDS_PER_CALL,
            ..MockConfig::default()
        };
        let bodies = Arc::new(bodies(&config.record_ids()));
        let server = MockServer::start(config).await.expect("mock starts");
        let url = server.url();
        // Warm-up: connections open, allocator settles.
        run_once(&url, &bodies, clients, 0.5).await;
        let mut rates = Vec::new();
        for run in 1..=RUNS {
            let result = run_once(&url, &bodies, clients, secs).await;
            let rate = result.requests_per_sec;
            let cpu = match result.cores_used {
                Some(cores) => format!(
                    ", {cores:.2} cores busy, {:.0} requests per CPU-second",
                    rate / cores.max(0.01)
                ),
                None => String::new(),
            };
            println!(
                "run {run}: {rate:.0} requests/s, {:.0} ids/s, {} failed{cpu}",
                rate * IDS_PER_CALL as f64,
                result.failed
            );
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[RUNS / 2];
        println!(
            "mock_load: {clients} clients, {IDS_PER_CALL} ids per call, median of {RUNS} runs of {secs}s: {median:.0} requests/s, {:.0} ids/s",
            median * IDS_PER_CALL as f64
        );
        let ledger = server.ledger();
        println!(
            "ledger: {} requests, {} SUCCESS entries",
            ledger.requests,
            ledger.by_code.get("SUCCESS").copied().unwrap_or(0)
        );
        server.shutdown().await;
    });
}
