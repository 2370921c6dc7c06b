//! Helpers shared by the plan tests: a fresh temp folder per test, running the real binary
//! with a report of the command, stdout and stderr on failure, and typed reads of the
//! SQLite store so assertions talk about rows, groups and chunks instead of SQL.
// Each test crate (`plan_cli`, `plan_props`) uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::{params, Connection};

/// A fresh temp folder holding the CSVs and the database of one test.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("create a temp folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("massup.db")
    }

    /// Writes `bytes` to `name` in the folder and returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write a test file");
        path
    }

    /// Runs `massup --db <folder>/massup.db <args>` inside the folder, isolated from any
    /// config file or `MASSUP_DB` of the machine running the tests.
    pub fn massup(&self, args: &[&str]) -> Ran {
        let mut command = Command::new(env!("CARGO_BIN_EXE_massup"));
        command
            .current_dir(self.dir.path())
            .env_remove("MASSUP_DB")
            .env_remove("MASSUP_LOG")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .arg("--db")
            .arg(self.db())
            .args(args);
        let shown = format!(
            "massup --db {} {}",
            self.db().display(),
            args.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let output = command.output().expect("run the massup binary");
        Ran {
            command: shown,
            output,
        }
    }

    /// `massup plan --csv <name> --module <module> <extra>`.
    /// `massup plan`, as mass_update groups it (`--api mass`) unless `extra` says otherwise:
    /// these tests look at grouping, which --api auto would skip for small files.
    pub fn plan(&self, csv: &str, module: &str, extra: &[&str]) -> Ran {
        let mut args = vec!["plan", "--csv", csv, "--module", module];
        if !extra.contains(&"--api") {
            args.extend(["--api", "mass"]);
        }
        args.extend_from_slice(extra);
        self.massup(&args)
    }

    pub fn open_db(&self) -> Connection {
        Connection::open(self.db()).expect("open the test database")
    }

    /// Whether the database holds any run (a file-level error must leave none).
    pub fn run_count(&self) -> i64 {
        if !self.db().exists() {
            return 0;
        }
        self.open_db()
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
            .expect("count runs")
    }
}

/// One finished run of the binary.
pub struct Ran {
    pub command: String,
    pub output: Output,
}

impl Ran {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The command, exit code, stdout and stderr, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "command: {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Ran {
        assert_eq!(self.code(), code, "unexpected exit code\n{}", self.report());
        self
    }

    #[track_caller]
    pub fn expect_stderr(&self, needles: &[&str]) -> &Ran {
        self.expect_in(Stream::Err, needles)
    }

    /// Asserts that stdout (`Stream::Out`) or stderr holds every one of `needles`.
    #[track_caller]
    pub fn expect_in(&self, stream: Stream, needles: &[&str]) -> &Ran {
        let text = match stream {
            Stream::Out => self.stdout(),
            Stream::Err => self.stderr(),
        };
        for needle in needles {
            assert!(
                text.contains(needle),
                "{stream:?} lacks {needle:?}\n{}",
                self.report()
            );
        }
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.report()))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Out,
    Err,
}

/// A row of the `rows` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub row_no: i64,
    pub line: i64,
    pub record_id: String,
    pub values: Vec<String>,
    pub status: String,
    pub message: Option<String>,
    pub merged_into: Option<i64>,
}

/// A row of the `groups` table with its payload parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGroup {
    pub id: i64,
    pub payload: serde_json::Map<String, serde_json::Value>,
    pub items: i64,
}

/// A row of the `chunks` table with its members unpacked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: i64,
    pub group_id: i64,
    pub state: String,
    pub size: i64,
    /// (row_no, record_id) per item.
    pub members: Vec<(u32, i64)>,
    pub outcomes: Vec<u8>,
}

/// The newest run's id.
pub fn last_run(conn: &Connection) -> i64 {
    conn.query_row("SELECT MAX(id) FROM runs", [], |r| r.get(0))
        .expect("a run is stored")
}

pub fn rows(conn: &Connection, run: i64) -> Vec<StoredRow> {
    let mut stmt = conn
        .prepare(
            "SELECT row_no, line, record_id, values_json, status, message, merged_into
             FROM rows WHERE run_id = ?1 ORDER BY row_no",
        )
        .unwrap();
    stmt.query_map(params![run], |r| {
        let values: String = r.get(3)?;
        Ok(StoredRow {
            row_no: r.get(0)?,
            line: r.get(1)?,
            record_id: r.get(2)?,
            values: serde_json::from_str(&values).expect("values_json is a JSON array"),
            status: r.get(4)?,
            message: r.get(5)?,
            merged_into: r.get(6)?,
        })
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

pub fn groups(conn: &Connection, run: i64) -> Vec<StoredGroup> {
    let mut stmt = conn
        .prepare("SELECT id, payload_json, items FROM groups WHERE run_id = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map(params![run], |r| {
        let payload: String = r.get(1)?;
        Ok(StoredGroup {
            id: r.get(0)?,
            payload: serde_json::from_str(&payload).expect("payload_json is a JSON object"),
            items: r.get(2)?,
        })
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

pub fn chunks(conn: &Connection, run: i64) -> Vec<StoredChunk> {
    let mut stmt = conn
        .prepare(
            "SELECT id, group_id, state, size, members, outcomes
             FROM chunks WHERE run_id = ?1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map(params![run], |r| {
        let members: Vec<u8> = r.get(4)?;
        Ok(StoredChunk {
            id: r.get(0)?,
            group_id: r.get(1)?,
            state: r.get(2)?,
            size: r.get(3)?,
            members: unpack_members(&members),
            outcomes: r.get(5)?,
        })
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// `members` as the migration documents it: size x (row_no u32 LE, record_id i64 LE).
/// Decoded here rather than with `massup::outcome` so the stored format itself is checked.
pub fn unpack_members(bytes: &[u8]) -> Vec<(u32, i64)> {
    assert_eq!(
        bytes.len() % 12,
        0,
        "members is a whole number of 12-byte items"
    );
    bytes
        .chunks_exact(12)
        .map(|b| {
            (
                u32::from_le_bytes(b[0..4].try_into().unwrap()),
                i64::from_le_bytes(b[4..12].try_into().unwrap()),
            )
        })
        .collect()
}

/// One column of the `runs` table for `run`, e.g. `run_value::<i64>(&conn, 1, "input_rows")`.
pub fn run_value<T: rusqlite::types::FromSql>(conn: &Connection, run: i64, column: &str) -> T {
    conn.query_row(
        &format!("SELECT {column} FROM runs WHERE id = ?1"),
        params![run],
        |r| r.get(0),
    )
    .unwrap()
}

/// Per row_no, the union of the payloads of the groups whose chunks hold that row.
pub fn payload_by_row(
    conn: &Connection,
    run: i64,
) -> std::collections::BTreeMap<u32, serde_json::Map<String, serde_json::Value>> {
    let groups: std::collections::HashMap<i64, StoredGroup> =
        groups(conn, run).into_iter().map(|g| (g.id, g)).collect();
    let mut by_row: std::collections::BTreeMap<u32, serde_json::Map<String, serde_json::Value>> =
        Default::default();
    for chunk in chunks(conn, run) {
        let payload = &groups[&chunk.group_id].payload;
        for &(row_no, _) in &chunk.members {
            let union = by_row.entry(row_no).or_default();
            for (field, value) in payload {
                let before = union.insert(field.clone(), value.clone());
                assert!(
                    before.is_none(),
                    "row {row_no} gets field {field} from two groups"
                );
            }
        }
    }
    by_row
}
