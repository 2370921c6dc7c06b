//! Helpers for the `run_*` tests: the embedded mock in the test's runtime, the real massup
//! binary run against it (reporting the command, stdout and stderr on failure), CSVs of
//! records the mock holds, and the cross-check of every item's stored outcome against the
//! mock's ledger.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use massup::mock::{Ledger, MockConfig, MockServer};

// One way to run the binary and report its output, shared with the plan tests.
#[path = "../common/mod.rs"]
mod common;
pub use common::Ran;
#[allow(unused_imports)] // only some test crates look at one stream
pub use common::Stream;
use massup::outcome::ItemState;
use massup::store::codec::decode_members;
use massup::summary::RowOutcome;
use rusqlite::{params, Connection};
use serde_json::{Map, Value};

/// Flags every dispatch test passes: no metadata fetch, quick backoff and timeouts.
pub const FAST: &[&str] = &["--backoff-ms", "5", "--timeout", "2"];

/// How the binary authenticates.
#[derive(Clone, Debug)]
pub enum Creds {
    /// No credentials in the environment.
    None,
    /// Only `ZOHO_ACCESS_TOKEN`.
    Token(String),
    /// Refresh credentials, optionally with a starting access token.
    Refresh {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        access_token: Option<String>,
    },
}

impl Creds {
    /// The mock's default access token.
    pub fn mock_token() -> Creds {
        Creds::Token("mock-token".into())
    }

    /// The mock's default refresh credentials, no starting token.
    pub fn mock_refresh() -> Creds {
        Creds::Refresh {
            client_id: "mock-client-id".into(),
            client_secret: "mock-client-secret".into(),
            refresh_token: "mock-refresh-token".into(),
            access_token: None,
        }
    }

    /// The same refresh credentials with another starting access token.
    pub fn with_access_token(mut self, token: Option<&str>) -> Creds {
        if let Creds::Refresh { access_token, .. } = &mut self {
            *access_token = token.map(str::to_string);
        }
        self
    }

    /// The same refresh credentials with another client secret.
    pub fn with_client_secret(mut self, secret: &str) -> Creds {
        if let Creds::Refresh { client_secret, .. } = &mut self {
            *client_secret = secret.to_string();
        }
        self
    }

    /// The refresh credentials a mock config accepts.
    pub fn refresh_of(config: &MockConfig) -> Creds {
        Creds::Refresh {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            refresh_token: config.refresh_token.clone(),
            access_token: None,
        }
    }
}

/// A fresh temp folder with the CSV and database of one test, and the mock's URL.
pub struct Workspace {
    dir: tempfile::TempDir,
    pub url: String,
    /// Where `run` sends token refreshes: the mock unless a test says otherwise.
    pub accounts_url: String,
}

impl Workspace {
    pub fn new(server: &MockServer) -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("create a temp folder"),
            url: server.url(),
            accounts_url: server.url(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("massup.db")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// The command for `massup --db <db> <args>` with `creds` in the environment, isolated
    /// from the machine's config and credentials.
    pub fn command(&self, args: &[&str], creds: &Creds) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_massup"));
        command
            .current_dir(self.dir.path())
            .env_remove("MASSUP_DB")
            .env_remove("MASSUP_LOG")
            .env_remove("ZOHO_ACCESS_TOKEN")
            .env_remove("ZOHO_CLIENT_ID")
            .env_remove("ZOHO_CLIENT_SECRET")
            .env_remove("ZOHO_REFRESH_TOKEN")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .arg("--db")
            .arg(self.db())
            .args(args);
        match creds {
            Creds::None => {}
            Creds::Token(token) => {
                command.env("ZOHO_ACCESS_TOKEN", token);
            }
            Creds::Refresh {
                client_id,
                client_secret,
                refresh_token,
                access_token,
            } => {
                command
                    .env("ZOHO_CLIENT_ID", client_id)
                    .env("ZOHO_CLIENT_SECRET", client_secret)
                    .env("ZOHO_REFRESH_TOKEN", refresh_token);
                if let Some(token) = access_token {
                    command.env("ZOHO_ACCESS_TOKEN", token);
                }
            }
        }
        command
    }

    /// Runs `massup --db <db> <args>` to its end.
    pub async fn massup(&self, args: &[&str], creds: &Creds) -> Ran {
        let output = self
            .command(args, creds)
            .output()
            .await
            .expect("run the massup binary");
        Ran {
            command: format!("massup {}", args.join(" ")),
            output,
        }
    }

    /// `massup plan --csv <csv> --module Leads --fields Leads.json`, plus `extra`.
    pub async fn plan(&self, csv: &Path, extra: &[&str], creds: &Creds) -> Ran {
        let fields = fields_file();
        let mut args = vec![
            "plan",
            "--csv",
            csv.to_str().expect("utf-8 path"),
            "--module",
            "Leads",
            "--fields",
            fields.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        self.massup(&args, creds).await
    }

    /// `massup run --csv <csv> --module Leads --fields Leads.json` to the mock, plus `extra`.
    pub async fn run(&self, csv: &Path, extra: &[&str], creds: &Creds) -> Ran {
        let args = self.run_args(csv, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.massup(&args, creds).await
    }

    pub fn run_args(&self, csv: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--csv",
            csv.to_str().expect("utf-8 path"),
            "--module",
            "Leads",
            "--fields",
            fields_file().to_str().expect("utf-8 path"),
            "--api-domain",
            &self.url,
            "--accounts-url",
            &self.accounts_url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(fast_unless_in(extra).into_iter().map(str::to_string));
        // The dispatch tests exercise mass_update calls; --api auto would send the small
        // files of most scenes by Update Records (tests/run_hybrid.rs covers that).
        if !extra.contains(&"--api") {
            args.extend(["--api".to_string(), "mass".to_string()]);
        }
        // Likewise their call and credit counts are of the writes: a snapshot (on by default
        // when it costs at most as many calls, as it does with their small chunks) is
        // tested in tests/run_undo.rs.
        if !["--snapshot", "--no-snapshot", "--skip-unchanged"]
            .iter()
            .any(|flag| extra.contains(flag))
        {
            args.push("--no-snapshot".to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `massup resume` or `massup retry` (no connection flags: the stored ones are used).
    pub async fn again(&self, command: &str, extra: &[&str], creds: &Creds) -> Ran {
        let mut args = vec![command];
        args.extend(fast_unless_in(extra));
        args.extend_from_slice(extra);
        self.massup(&args, creds).await
    }

    pub fn open_db(&self) -> Connection {
        Connection::open(self.db()).expect("open the test database")
    }
}

/// The `FAST` flags (pairs of flag and value) that `extra` does not set itself.
fn fast_unless_in(extra: &[&str]) -> Vec<&'static str> {
    FAST.chunks(2)
        .filter(|pair| !extra.contains(&pair[0]))
        .flatten()
        .copied()
        .collect()
}

/// The shipped Leads metadata.
pub fn fields_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/fields/Leads.json")
}

pub async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("the mock starts")
}

/// The usual setting of a run test: a mock serving `config`, a workspace pointed at it, and
/// `changes.csv` changing the first `n` records.
pub async fn scene(
    config: &MockConfig,
    n: usize,
    with_integer: bool,
) -> (MockServer, Workspace, Changes, PathBuf) {
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = changes(config, n, with_integer);
    let csv = ws.write("changes.csv", &changes.text);
    (server, ws, changes, csv)
}

/// A CSV of changes to the first `n` records of `config`, and what each record should hold
/// after it is sent.
pub struct Changes {
    pub text: String,
    /// record id -> field -> value as Zoho stores it (coerced).
    pub expected: BTreeMap<String, Map<String, Value>>,
}

const STATUSES: [&str; 4] = ["Contacted", "Not Contacted", "Junk Lead", "Pre-Qualified"];
const CITIES: [&str; 3] = ["Berlin", "Lyon", "Porto"];

/// Rows `id,Lead_Status,City` (and `No_of_Employees` with `with_integer`) over the first `n`
/// records: a few distinct values per field so rows share calls.
pub fn changes(config: &MockConfig, n: usize, with_integer: bool) -> Changes {
    let ids = config.record_ids();
    assert!(n <= ids.len(), "the mock holds {} records", ids.len());
    let mut text = String::from("id,Lead_Status,City");
    if with_integer {
        text.push_str(",No_of_Employees");
    }
    text.push('\n');
    let mut expected = BTreeMap::new();
    for (i, id) in ids.iter().take(n).enumerate() {
        let status = STATUSES[i % STATUSES.len()];
        let city = CITIES[(i / 2) % CITIES.len()];
        let mut values = Map::new();
        values.insert("Lead_Status".into(), Value::from(status));
        values.insert("City".into(), Value::from(city));
        text.push_str(&format!("{id},{status},{city}"));
        if with_integer {
            let employees = 10 + (i % 2) as i64 * 490;
            text.push_str(&format!(",{employees}"));
            values.insert("No_of_Employees".into(), Value::from(employees));
        }
        text.push('\n');
        expected.insert(id.clone(), values);
    }
    Changes { text, expected }
}

/// One item (row x group) as stored.
#[derive(Debug, Clone)]
pub struct Item {
    pub chunk_id: i64,
    pub chunk_state: String,
    pub group_id: i64,
    pub row_no: u32,
    pub record_id: String,
    pub state: ItemState,
}

/// Every item of a run, requeued copies included, decoded from the packed columns.
pub fn items(conn: &Connection, run: i64) -> Vec<Item> {
    let mut stmt = conn
        .prepare(
            "SELECT id, state, group_id, members, outcomes FROM chunks WHERE run_id = ?1 ORDER BY id",
        )
        .unwrap();
    let mut out = Vec::new();
    let mut rows = stmt.query(params![run]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let chunk_id: i64 = r.get(0).unwrap();
        let chunk_state: String = r.get(1).unwrap();
        let group_id: i64 = r.get(2).unwrap();
        let members = decode_members(&r.get::<_, Vec<u8>>(3).unwrap());
        let outcomes: Vec<u8> = r.get(4).unwrap();
        assert_eq!(
            members.len(),
            outcomes.len(),
            "chunk {chunk_id}: one byte per item"
        );
        for (member, byte) in members.iter().zip(outcomes) {
            out.push(Item {
                chunk_id,
                chunk_state: chunk_state.clone(),
                group_id,
                row_no: member.row_no,
                record_id: member.record_id.to_string(),
                state: ItemState::from_byte(byte),
            });
        }
    }
    out
}

pub fn payloads(conn: &Connection, run: i64) -> HashMap<i64, Map<String, Value>> {
    let mut stmt = conn
        .prepare("SELECT id, payload_json FROM groups WHERE run_id = ?1")
        .unwrap();
    stmt.query_map(params![run], |r| {
        let payload: String = r.get(1)?;
        Ok((
            r.get(0)?,
            serde_json::from_str(&payload).expect("payload_json is an object"),
        ))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

pub fn last_run(conn: &Connection) -> i64 {
    conn.query_row("SELECT MAX(id) FROM runs", [], |r| r.get(0))
        .expect("a run is stored")
}

/// Per input row, the outcome massup reports (through the library's own summary).
pub fn row_outcomes(conn: &Connection, run: i64) -> Vec<(String, RowOutcome)> {
    let mut out = Vec::new();
    massup::summary::for_each_row(conn, run, |row| -> Result<(), massup::store::StoreError> {
        out.push((row.record_id, row.outcome));
        Ok(())
    })
    .unwrap();
    out
}

/// HTTP calls massup logged for a run.
pub fn calls(conn: &Connection, run: i64) -> u64 {
    conn.query_row(
        "SELECT COUNT(*) FROM calls WHERE run_id = ?1",
        params![run],
        |r| r.get(0),
    )
    .unwrap()
}

pub fn min_calls(conn: &Connection, run: i64) -> u64 {
    conn.query_row(
        "SELECT min_calls FROM runs WHERE id = ?1",
        params![run],
        |r| r.get(0),
    )
    .unwrap()
}

/// What the cross-check found, for further assertions.
pub struct Checked {
    /// Final (not requeued) items by state.
    pub by_state: BTreeMap<&'static str, u64>,
    /// Items (row x group) per record id.
    pub items_per_record: HashMap<String, u64>,
    pub final_items: Vec<Item>,
}

impl Checked {
    pub fn count(&self, state: ItemState) -> u64 {
        self.by_state.get(state.as_str()).copied().unwrap_or(0)
    }
}

/// The invariants every test checks against the ledger:
/// - every (row, group) has exactly one final (not requeued) item;
/// - no item is recorded succeeded unless the ledger shows its record applied with the
///   requested values;
/// - a row's reported outcome agrees with its items.
#[track_caller]
pub fn cross_check(conn: &Connection, run: i64, ledger: &Ledger) -> Checked {
    let all = items(conn, run);
    let payloads = payloads(conn, run);
    let mut finals: HashMap<(u32, i64), u32> = HashMap::new();
    let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut items_per_record: HashMap<String, u64> = HashMap::new();
    let mut final_items = Vec::new();
    let mut worst_by_row: HashMap<u32, ItemState> = HashMap::new();
    for item in &all {
        if item.state == ItemState::Requeued {
            continue;
        }
        *finals.entry((item.row_no, item.group_id)).or_default() += 1;
        *by_state.entry(item.state.as_str()).or_default() += 1;
        *items_per_record.entry(item.record_id.clone()).or_default() += 1;
        let worst = worst_by_row.entry(item.row_no).or_insert(item.state);
        if rank(item.state) > rank(*worst) {
            *worst = item.state;
        }
        if item.state == ItemState::Succeeded {
            let held = ledger
                .records
                .get(&item.record_id)
                .unwrap_or_else(|| panic!("record {} unknown to the mock", item.record_id));
            for (field, value) in &payloads[&item.group_id] {
                assert_eq!(
                    held.get(field),
                    Some(value),
                    "record {} is recorded succeeded for {field}={value} but the mock holds {:?}",
                    item.record_id,
                    held.get(field)
                );
            }
            assert!(
                ledger.applied[&item.record_id] >= 1,
                "record {} succeeded without an apply",
                item.record_id
            );
        }
        final_items.push(item.clone());
    }
    for ((row, group), n) in &finals {
        assert_eq!(*n, 1, "row {row} group {group} has {n} final items");
    }
    // Every (row, group) ever planned still has its final item.
    for item in &all {
        assert!(
            finals.contains_key(&(item.row_no, item.group_id)),
            "row {} group {} lost its final item",
            item.row_no,
            item.group_id
        );
    }
    for (row_no, (_, outcome)) in row_outcomes(conn, run).iter().enumerate() {
        let Some(worst) = worst_by_row.get(&(row_no as u32)) else {
            continue;
        };
        let expected = match worst {
            ItemState::Succeeded => RowOutcome::Succeeded,
            ItemState::Retryable => RowOutcome::Retryable,
            ItemState::Failed => RowOutcome::Failed,
            ItemState::Pending | ItemState::Requeued => RowOutcome::Pending,
        };
        assert_eq!(*outcome, expected, "row {row_no}: reported outcome");
    }
    Checked {
        by_state,
        items_per_record,
        final_items,
    }
}

fn rank(state: ItemState) -> u8 {
    match state {
        ItemState::Succeeded | ItemState::Requeued => 0,
        ItemState::Retryable => 1,
        ItemState::Pending => 2,
        ItemState::Failed => 3,
    }
}

/// Every row succeeded and every record holds exactly its row's values.
#[track_caller]
pub fn assert_all_applied(conn: &Connection, run: i64, ledger: &Ledger, changes: &Changes) {
    let checked = cross_check(conn, run, ledger);
    for (record, outcome) in row_outcomes(conn, run) {
        assert_eq!(outcome, RowOutcome::Succeeded, "record {record}");
    }
    assert_eq!(
        checked.count(ItemState::Succeeded) as usize,
        checked.final_items.len()
    );
    for (id, values) in &changes.expected {
        assert_eq!(
            &ledger.records[id], values,
            "record {id}: values in the mock"
        );
    }
}

/// Starts `massup args` and SIGKILLs it once `ready` says so (asked every 3 ms), failing
/// when it ends first or `within` passes without it.
pub async fn kill_when(
    ws: &Workspace,
    server: &MockServer,
    args: &[&str],
    what: &str,
    within: std::time::Duration,
    ready: impl Fn(&Ledger, &Workspace) -> bool,
) {
    let mut child = ws
        .command(args, &Creds::mock_token())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start massup");
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("massup {args:?} ended ({status}) before {what}");
        }
        if ready(&server.ledger(), ws) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never {what}");
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed {what}"
    );
}

/// Sum of applied counts over all records.
pub fn total_applied(ledger: &Ledger) -> u64 {
    ledger.applied.values().sum()
}
