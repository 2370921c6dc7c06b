//! `export`: every record of a module (or those a COQL condition matches), its id and the
//! fields asked for, streamed to CSV a page at a time in the form `run` reads back. Every page
//! is one call through the attempt loop, priced as Zoho prices it. With an output file the
//! progress is kept beside it ([`ExportState`], `FILE.export-state`) once each page is on
//! disk, so an export killed at any moment goes on from where its file was last whole.
//!
//! How the records are paged (decided once, kept in the state):
//! - `--where`: COQL, `LIMIT offset, n` (200 rows a call up to v3, 2,000 from v4).
//! - otherwise, from v2.1: Get Records listing, `page=N` up to 2,000 records, then the
//!   `page_token` Zoho gives in `info.next_page_token` (the only way past 2,000).
//! - otherwise (v2: no page tokens): COQL over every record (`where id is not null`).
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::api::limits::{
    has_page_tokens, max_rows_per_query, CallKind, MAX_DISCRETE_PAGING, MAX_RECORDS_PER_PAGE,
};
use crate::api::PageAt;
use crate::dispatch::attempt::{attempt, Caller, Failure};
use crate::dispatch::read::{Page, RowsCall};
use crate::exit::UsageError;
use crate::fields::cell_text;

/// What to export: the module, the fields' API names (checked, in the user's order), and an
/// optional COQL condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSpec {
    pub module: String,
    pub fields: Vec<String>,
    #[serde(rename = "where")]
    pub condition: Option<String>,
}

impl ExportSpec {
    /// The CSV header: `id`, then one column per field, as `run` reads it.
    pub fn header(&self) -> Vec<&str> {
        std::iter::once("id")
            .chain(self.fields.iter().map(String::as_str))
            .collect()
    }

    /// Where the first page is, for an API version.
    pub fn first_page(&self, api_version: &str) -> Cursor {
        if self.condition.is_none() && has_page_tokens(api_version) {
            Cursor::List(PageAt::Number(1))
        } else {
            Cursor::Coql { offset: 0 }
        }
    }

    /// The COQL query of the rows from `offset`, `limit` of them. COQL wants a where clause:
    /// without a condition, every record (`id is not null`). Zoho orders rows by id when the
    /// query names no order, which keeps pages apart.
    fn query(&self, offset: usize, limit: usize) -> String {
        let condition = self.condition.as_deref().unwrap_or("id is not null");
        format!(
            "select {} from {} where ({condition}) limit {offset}, {limit}",
            self.fields.join(", "),
            self.module
        )
    }
}

/// The next page to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cursor {
    /// A Get Records listing page, by number or token.
    List(PageAt),
    /// The COQL rows from this offset.
    Coql { offset: usize },
    /// Every record is written.
    Done,
}

/// An export's progress, kept beside its output file after each page: what it exports, the
/// next page, and how long the file was then (what `--resume` cuts it back to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportState {
    #[serde(flatten)]
    pub spec: ExportSpec,
    pub api_version: String,
    pub next: Cursor,
    /// Records written to the file so far.
    pub rows: u64,
    /// The file's length in bytes when the state was written (header and whole rows).
    pub bytes: u64,
    /// Calls and credits every invocation of this export has spent (metadata included).
    pub calls: u64,
    pub credits: u64,
}

/// The largest export state file read: an honest one is a few hundred bytes (a page
/// token, a module, the fields and a condition).
const MAX_STATE_BYTES: u64 = 1 << 20;

/// The state file of an export to `out`: `out` with `.export-state` added.
pub fn state_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".export-state");
    PathBuf::from(name)
}

/// Where the rows go: stdout, or a file whose progress is kept beside it.
pub struct Sink {
    csv: csv::Writer<Box<dyn Write + Send>>,
    /// The output file (a second handle on it, to measure and sync it) and its state file.
    file: Option<(File, PathBuf)>,
}

impl Sink {
    /// Rows to stdout: nothing to resume.
    pub fn stdout(spec: &ExportSpec) -> anyhow::Result<Sink> {
        let mut sink = Sink {
            csv: csv::Writer::from_writer(Box::new(std::io::stdout())),
            file: None,
        };
        sink.csv.write_record(spec.header())?;
        Ok(sink)
    }

    /// A new export to `out` (created or emptied), its state written before the first call,
    /// so that even a kill before the first page leaves it resumable. Refused when an
    /// unfinished export of `out` exists: starting again would throw its pages away.
    pub fn create(out: &Path, state: &mut ExportState) -> anyhow::Result<Sink> {
        let state_file = state_path(out);
        if state_file.exists() {
            return Err(UsageError::new(format!(
                "{} holds an unfinished export ({} exists): add --resume to continue it, or delete {} to start again",
                out.display(),
                state_file.display(),
                state_file.display()
            ))
            .into());
        }
        let file = File::create(out)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
        let mut sink = Sink::over(file, state_file)?;
        sink.csv.write_record(state.spec.header())?;
        sink.page_written(state)?;
        Ok(sink)
    }

    /// An export to `out` that stopped: the state kept beside it, the file cut back to the
    /// length the state recorded (a page half-written when it stopped is written again).
    /// Refused when the state is of another export than `spec`.
    pub fn resume(out: &Path, spec: &ExportSpec) -> anyhow::Result<(Sink, ExportState)> {
        let state_file = state_path(out);
        // A plain file of an honest size only: a FIFO or a device in its place is refused,
        // not waited on or read without end.
        let text = match crate::plain_file::read_to_string(&state_file, MAX_STATE_BYTES) {
            Ok(text) => text,
            Err(crate::plain_file::PlainFileError::Io { source: e, .. })
                if e.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(UsageError::new(format!(
                    "--resume: no unfinished export of {} ({} does not exist: the export finished, or never started); leave out --resume to export again",
                    out.display(),
                    state_file.display()
                ))
                .into())
            }
            Err(e) => anyhow::bail!("cannot read {}: {e}", state_file.display()),
        };
        let state: ExportState = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} cannot be read ({e}); delete it and {} to export again",
                state_file.display(),
                out.display()
            )
        })?;
        if &state.spec != spec {
            let shown = |s: &ExportSpec| {
                format!(
                    "--module {} --fields {}{}",
                    s.module,
                    s.fields.join(","),
                    s.condition
                        .as_ref()
                        .map_or_else(String::new, |w| format!(" --where {w:?}"))
                )
            };
            return Err(UsageError::new(format!(
                "--resume: {} is an export of {}, not of {}; resume it with its own flags, or leave out --resume (after deleting {}) to start this one",
                out.display(),
                shown(&state.spec),
                shown(spec),
                state_file.display()
            ))
            .into());
        }
        let mut file = OpenOptions::new()
            .write(true)
            .open(out)
            .map_err(|e| anyhow::anyhow!("--resume: cannot open {}: {e}", out.display()))?;
        let length = file.metadata()?.len();
        if length < state.bytes {
            return Err(UsageError::new(format!(
                "--resume: {} is {length} bytes, shorter than the {} its export had written: it was changed since; delete it and {} to export again",
                out.display(),
                state.bytes,
                state_file.display()
            ))
            .into());
        }
        file.set_len(state.bytes)?;
        file.seek(SeekFrom::End(0))?;
        Ok((Sink::over(file, state_file)?, state))
    }

    fn over(file: File, state_file: PathBuf) -> anyhow::Result<Sink> {
        let measure = file.try_clone()?;
        Ok(Sink {
            csv: csv::Writer::from_writer(Box::new(file)),
            file: Some((measure, state_file)),
        })
    }

    fn row(
        &mut self,
        spec: &ExportSpec,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        let null = serde_json::Value::Null;
        let id = cell_text(row.get("id").unwrap_or(&null));
        self.csv.write_field(id.as_ref())?;
        for field in &spec.fields {
            self.csv
                .write_field(cell_text(row.get(field).unwrap_or(&null)).as_ref())?;
        }
        self.csv.write_record(None::<&[u8]>)?;
        Ok(())
    }

    /// A page is written: on disk first, then the state that says so (replaced whole, so a
    /// kill leaves the old state or the new one, never half of one).
    fn page_written(&mut self, state: &mut ExportState) -> anyhow::Result<()> {
        self.csv.flush()?;
        let Some((file, state_file)) = &self.file else {
            return Ok(());
        };
        file.sync_data()?;
        state.bytes = file.metadata()?.len();
        let temporary = state_file.with_extension("export-state.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(state)?)?;
        std::fs::rename(&temporary, state_file)?;
        Ok(())
    }

    /// The export cannot go on as it is (Zoho refused its query): the state file goes, so
    /// that the corrected command starts afresh instead of being told to resume.
    pub fn abandon(self) -> anyhow::Result<()> {
        if let Some((_, state_file)) = &self.file {
            std::fs::remove_file(state_file)?;
        }
        Ok(())
    }

    /// Every record is written: the state file goes (nothing is left to resume).
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.csv.flush()?;
        if let Some((file, state_file)) = &self.file {
            file.sync_data()?;
            std::fs::remove_file(state_file)?;
        }
        Ok(())
    }
}

/// How an export ended without writing every record: the failure, with what was written.
#[derive(Debug)]
pub struct Stopped(pub Failure);

/// Pages through the records from `state.next` to the end, writing each page to `sink`
/// and keeping the state after it. `written` counts records for the progress display.
/// Calls and credits are added to the state as they are spent.
pub async fn export_pages(
    caller: &Caller,
    sink: &mut Sink,
    state: &mut ExportState,
    written: &AtomicU64,
) -> anyhow::Result<Result<(), Stopped>> {
    let spec = state.spec.clone();
    let version = caller.endpoint.urls.version().to_string();
    let coql_rows = max_rows_per_query(&version);
    written.store(state.rows, Ordering::Relaxed);
    loop {
        let (before_calls, before_credits) = spent(caller);
        let answer = match &state.next {
            Cursor::Done => return Ok(Ok(())),
            Cursor::List(at) => {
                let mut call = RowsCall::list(caller, &spec.fields, MAX_RECORDS_PER_PAGE, at);
                attempt(caller, &mut call).await
            }
            Cursor::Coql { offset } => {
                let mut call = RowsCall::coql(caller, spec.query(*offset, coql_rows), coql_rows);
                attempt(caller, &mut call).await
            }
        };
        let (calls, credits) = spent(caller);
        state.calls += calls - before_calls;
        state.credits += credits - before_credits;
        let page = match answer {
            Ok(page) => page,
            Err(failure) => return Ok(Err(Stopped(failure))),
        };
        for row in &page.rows {
            sink.row(&spec, row)?;
        }
        state.rows += page.rows.len() as u64;
        state.next = next_cursor(&state.next, &page, &version)?;
        sink.page_written(state)?;
        written.store(state.rows, Ordering::Relaxed);
    }
}

/// Calls and credits of the export's kinds spent by `caller` so far.
fn spent(caller: &Caller) -> (u64, u64) {
    let kinds = [CallKind::GetRecords, CallKind::Coql];
    (
        kinds.iter().map(|k| caller.spent.calls(*k)).sum(),
        kinds.iter().map(|k| caller.spent.credits(*k)).sum(),
    )
}

/// Where the page after `page` (asked for at `at`) is (pure).
pub fn next_cursor(at: &Cursor, page: &Page, api_version: &str) -> anyhow::Result<Cursor> {
    if !page.more || page.rows.is_empty() {
        return Ok(Cursor::Done);
    }
    let token = || {
        page.next_page_token
            .clone()
            .map(|t| Cursor::List(PageAt::Token(t)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "Zoho says more records follow but gave no next_page_token (API {api_version}); past {MAX_DISCRETE_PAGING} records a listing needs one: try --api-version v8, or --where to export by COQL"
                )
            })
    };
    Ok(match at {
        Cursor::List(PageAt::Number(n)) if (n + 1) * MAX_RECORDS_PER_PAGE > MAX_DISCRETE_PAGING => {
            token()?
        }
        Cursor::List(PageAt::Number(n)) => Cursor::List(PageAt::Number(n + 1)),
        Cursor::List(PageAt::Token(_)) => token()?,
        Cursor::Coql { offset } => Cursor::Coql {
            offset: offset + page.rows.len(),
        },
        Cursor::Done => Cursor::Done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: usize, more: bool, token: Option<&str>) -> Page {
        Page {
            rows: vec![serde_json::Map::new(); rows],
            more,
            next_page_token: token.map(str::to_string),
        }
    }

    #[test]
    fn pages_go_by_number_to_2000_records_then_by_token() {
        let at = |n| Cursor::List(PageAt::Number(n));
        let t = Some("T");
        assert_eq!(
            next_cursor(&at(1), &page(200, true, t), "v8").unwrap(),
            at(2)
        );
        assert_eq!(
            next_cursor(&at(9), &page(200, true, t), "v8").unwrap(),
            at(10)
        );
        assert_eq!(
            next_cursor(&at(10), &page(200, true, t), "v8").unwrap(),
            Cursor::List(PageAt::Token("T".into()))
        );
        assert!(next_cursor(&at(10), &page(200, true, None), "v8").is_err());
        assert_eq!(
            next_cursor(&at(3), &page(17, false, None), "v8").unwrap(),
            Cursor::Done
        );
        assert_eq!(
            next_cursor(&Cursor::Coql { offset: 400 }, &page(200, true, None), "v2").unwrap(),
            Cursor::Coql { offset: 600 }
        );
    }

    #[test]
    fn the_version_decides_listing_or_coql() {
        let spec = ExportSpec {
            module: "Leads".into(),
            fields: vec!["Email".into(), "City".into()],
            condition: None,
        };
        assert_eq!(spec.first_page("v8"), Cursor::List(PageAt::Number(1)));
        assert_eq!(spec.first_page("v2"), Cursor::Coql { offset: 0 });
        assert_eq!(
            spec.query(400, 200),
            "select Email, City from Leads where (id is not null) limit 400, 200"
        );
        let filtered = ExportSpec {
            condition: Some("City = 'Lyon'".into()),
            ..spec
        };
        assert_eq!(filtered.first_page("v8"), Cursor::Coql { offset: 0 });
    }
}
