//! The report of a run, streamed row by row in input order: the human CSV (formula cells
//! neutralised), JSON, a massup input file, or the HTML page; written to a temp file beside
//! the target and renamed into place only when complete, so a failed write never leaves half
//! a report behind. `massup report` and `--results` both write through here.
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::UsageError;
use crate::plan::{PlanSettings, PROBLEMS_SHOWN};
use crate::store::RunInfo;
use crate::summary::{self, ReportRow, RowOutcome};

/// The UTF-8 byte order mark: tells a spreadsheet the file is UTF-8.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the file holds, decided from the flags before any work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The human report as CSV: formula-escaped cells.
    Csv,
    /// The report as one JSON array: values as stored.
    Json,
    /// A massup input file: id and field columns, values as stored.
    Input,
    /// One HTML page: summaries, charts and the first rows that did not succeed.
    Html,
}

/// How a CSV report is written: the run's input delimiter, and for a spreadsheet
/// (`--excel`) a UTF-8 byte order mark first, without which Excel reads UTF-8 as the
/// machine's legacy code page (`Köln` shows as `KÃ¶ln`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub bom: bool,
}

impl CsvDialect {
    /// The dialect of `run`'s input: its delimiter (a European sheet's `;` comes back as
    /// `;`), with a byte order mark if `excel`.
    pub fn of_run(run: &RunInfo, excel: bool) -> anyhow::Result<CsvDialect> {
        let settings = PlanSettings::of_run(run)?;
        Ok(CsvDialect {
            // `plan` accepts only ASCII delimiters, so the fallback is never taken.
            delimiter: u8::try_from(settings.delimiter).unwrap_or(b','),
            bom: excel,
        })
    }
}

/// Writes the rows of `run` whose outcome is one of `only` as a CSV report (the columns of
/// `massup report`, in `dialect`) to `path`, atomically. Returns the rows written.
/// For `--results`: the success and error files a send leaves behind.
pub fn write_csv(
    conn: &rusqlite::Connection,
    run: &RunInfo,
    dialect: CsvDialect,
    only: &[RowOutcome],
    path: &Path,
) -> anyhow::Result<u64> {
    let snapshot = conn.unchecked_transaction()?;
    let (file, out) = AtomicFile::create(path)?;
    let (out, written) = write_rows(&snapshot, Layout::Csv, run, dialect, only, out)?;
    file.commit(out)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(written.rows)
}

/// What a report walk wrote.
pub struct Written {
    pub rows: u64,
    /// Rows `--as-input` cannot write back: how many, and the first lines to show.
    pub left_out: u64,
    pub left_out_lines: Vec<String>,
}

/// Streams the run's rows (those `only` names) into `out` in `layout`; hands `out` back.
pub fn write_rows<W: Write>(
    conn: &rusqlite::Connection,
    layout: Layout,
    run: &RunInfo,
    dialect: CsvDialect,
    only: &[RowOutcome],
    out: W,
) -> anyhow::Result<(W, Written)> {
    let befores = if layout == Layout::Input {
        ExtraColumns::default()
    } else {
        ExtraColumns::load(conn, run)?
    };
    let mut writer = ReportWriter::new(layout, run, dialect, out, befores)?;
    let mut written = Written {
        rows: 0,
        left_out: 0,
        left_out_lines: Vec::new(),
    };
    summary::for_each_row(conn, run.id, |row| -> anyhow::Result<()> {
        if !only.is_empty() && !only.contains(&row.outcome) {
            return Ok(());
        }
        if layout == Layout::Input && !stored_as_given(&row) {
            written.left_out += 1;
            if written.left_out_lines.len() < PROBLEMS_SHOWN {
                written.left_out_lines.push(row.line.to_string());
            }
            return Ok(());
        }
        writer.row(&row)?;
        written.rows += 1;
        Ok(())
    })?;
    Ok((writer.finish()?, written))
}

/// The HTML page of a run and the rows it lists (those that did not succeed, at most
/// [`crate::render::html::FAILED_ROWS_SHOWN`]); `db` names the database in the commands
/// it offers next, as `status` does.
pub fn html_page(
    conn: &rusqlite::Connection,
    run: &RunInfo,
    db: &Path,
) -> anyhow::Result<(String, u64)> {
    use crate::render::html::{self, FailedRow, FieldChanges, HtmlReport, NextSteps};
    let counts = summary::run_counts(conn, run)?;
    let mut fields: Vec<FieldChanges> = run
        .columns
        .iter()
        .map(|c| FieldChanges {
            field: c.clone(),
            ..FieldChanges::default()
        })
        .collect();
    let mut failed = Vec::new();
    let mut failed_total = 0u64;
    summary::for_each_row(conn, run.id, |row| -> anyhow::Result<()> {
        for (field, value) in fields.iter_mut().zip(&row.values) {
            if !value.trim().is_empty() {
                field.add(row.outcome);
            }
        }
        if row.outcome != RowOutcome::Succeeded {
            failed_total += 1;
            if failed.len() < html::FAILED_ROWS_SHOWN {
                failed.push(FailedRow {
                    line: row.line,
                    record_id: row.record_id,
                    record: row.record,
                    outcome: row.outcome,
                    code: row.code.unwrap_or_default(),
                    message: row.message.unwrap_or_default(),
                });
            }
        }
        Ok(())
    })?;
    // Every invocation's calls, on one axis of sending time (seconds since the epoch in,
    // offsets out).
    let secs = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
    };
    let sends: Vec<(String, f64, Option<f64>)> = counts
        .sends
        .iter()
        .filter_map(|send| {
            let start = secs(&send.started_at)?;
            let end = send.ended_at.as_deref().and_then(secs);
            Some((send.command.clone(), start, end))
        })
        .collect();
    let mut calls = Vec::new();
    crate::store::calls::for_each_call(conn, run.id, |call| {
        if let Some(at) = secs(&call.started_at) {
            calls.push((at, call.duration_ms, call.http_status.is_some()));
        }
    })?;
    let (placed, segments) = html::place_calls(&sends, &calls);
    let (timeline, bucket_secs) = html::timeline(&placed);
    let next = NextSteps {
        commands: crate::render::next_steps(run, &counts, db),
        undo: crate::render::undo_step(run, &counts, db),
    };
    let shown = failed.len() as u64;
    let page = html::page(&HtmlReport {
        run,
        counts: &counts,
        fields,
        failed,
        failed_total,
        timeline,
        bucket_secs,
        segments,
        next,
    });
    // Server text in messages passes the redactor like every other output.
    Ok((crate::redact::redact(&page).into_owned(), shown))
}

/// Whether the stored cells are the row exactly as the file gave it. Planning stores a
/// ragged row cut or padded to the header and a non-UTF-8 cell with replacement
/// characters; written back as input such a row could pass as valid with changed values.
/// The store keeps no flag for this, so the planner's messages for those two problems are
/// what tells them apart (tests/report_cli.rs pins both).
fn stored_as_given(row: &ReportRow) -> bool {
    if row.outcome != RowOutcome::Invalid {
        return true;
    }
    let message = row.message.as_deref().unwrap_or_default();
    !(message.starts_with("the row has ") || message.contains("not valid UTF-8"))
}

/// Prefixes `'` to a cell a spreadsheet would run as a formula (OWASP's CSV injection
/// advice), or as a DDE command: a leading `|` (`|cmd!A0`) starts one in some spreadsheet
/// programs. Only the human report is escaped: an input file must keep values exact.
///
/// A leading `=` is always a formula; so is a leading `@` or `|` (no number or phone
/// number is written that way, so when in doubt the cell is neutralised), and a leading tab
/// or carriage return (OWASP: some programs drop it and read what follows). A leading `+`
/// or `-` is left alone when what follows is a plain number (`-12.5`, `-1.250,50`) or, after
/// `+`, a phone number (`+49 30 1234567`, `+1 (555) 010-2030`): such a cell holds no letter,
/// so no function, cell reference or DDE command, and a spreadsheet can do nothing with
/// it but show or add numbers. Anything else after a sign (`+SUM(A1)`, `-cmd|...`) is
/// neutralised.
fn neutralise_formula(cell: &str) -> Cow<'_, str> {
    let neutralise = match cell.as_bytes().first() {
        Some(b'=' | b'@' | b'|' | b'\t' | b'\r') => true,
        Some(b'-') => !is_plain_number(&cell[1..]),
        Some(b'+') => !(is_plain_number(&cell[1..]) || is_phone_number(&cell[1..])),
        _ => false,
    };
    if neutralise {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Digits, with single `.`, `,` or space separators between them (decimals and thousands
/// as any locale writes them): `12.5`, `1,250.50`, `1 250,50`. Nothing else.
fn is_plain_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let separator = |b: u8| matches!(b, b'.' | b',' | b' ');
    !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes.iter().all(|&b| b.is_ascii_digit() || separator(b))
        && !bytes.windows(2).any(|w| separator(w[0]) && separator(w[1]))
}

/// A phone number as written after its `+`: starts with a digit or `(`, ends with a digit,
/// and holds only digits, spaces and `( ) - . /` (`49 30 1234567`, `1 (555) 010-2030`).
fn is_phone_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .first()
        .is_some_and(|&b| b.is_ascii_digit() || b == b'(')
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b' ' | b'(' | b')' | b'-' | b'.' | b'/'))
}

/// The report's own column names, after the input's. One an input column already uses gets
/// a `massup_` prefix, so no header (or JSON object) holds a name twice.
const OWN_COLUMNS: [&str; 7] = [
    "line",
    "outcome",
    "code",
    "message",
    "attempts",
    "last_attempt_at",
    "carried_by",
];

fn own_column_names(run: &RunInfo) -> Vec<String> {
    let taken = |name: &str| name == run.id_column || run.columns.iter().any(|c| c == name);
    OWN_COLUMNS
        .iter()
        .map(|&name| {
            let mut name = name.to_string();
            while taken(&name) {
                name = format!("massup_{name}");
            }
            name
        })
        .collect()
}

/// Writes rows in one of the layouts; `finish` flushes and hands back the buffered file.
enum ReportWriter<W: Write> {
    Csv {
        csv: Box<csv::Writer<W>>,
        /// Input layout: id and field columns only, values exact.
        as_input: bool,
        columns: usize,
        befores: ExtraColumns,
    },
    Json {
        out: W,
        /// Keys in column order, JSON-encoded once.
        keys: Vec<String>,
        columns: usize,
        first: bool,
        befores: ExtraColumns,
    },
}

/// Columns after the report's own: for a run keyed by `--match-by`, `record_id` (the id
/// each key found); for a run with a snapshot, `before:FIELD` (each record's values before
/// the run wrote them, JSON), by record and field.
#[derive(Default)]
struct ExtraColumns {
    record_id: bool,
    /// `--create-missing`: an `action` column after `record_id` (created, updated).
    action: bool,
    fields: Vec<String>,
    values: std::collections::HashMap<(i64, usize), String>,
}

impl ExtraColumns {
    fn load(conn: &rusqlite::Connection, run: &RunInfo) -> anyhow::Result<ExtraColumns> {
        let mut befores = ExtraColumns {
            record_id: run.settings["match_by"].is_string(),
            action: run.settings["create_missing"] == serde_json::Value::Bool(true),
            ..ExtraColumns::default()
        };
        let kept = crate::store::befores::befores(conn, run.id)?;
        if kept.is_empty() {
            return Ok(befores);
        }
        let fields: std::collections::BTreeSet<&str> =
            kept.iter().map(|v| v.field.as_str()).collect();
        // In the order of the run's columns.
        befores.fields = run
            .columns
            .iter()
            .filter(|c| fields.contains(c.as_str()))
            .cloned()
            .collect();
        for value in kept {
            if let Some(at) = befores.fields.iter().position(|f| *f == value.field) {
                befores
                    .values
                    .insert((value.record_id, at), value.value_json);
            }
        }
        Ok(befores)
    }

    /// The before value of field `at` for the row's record ("" when none was read).
    fn of(&self, row: &ReportRow, at: usize) -> &str {
        row.record
            .and_then(|record| self.values.get(&(record, at)))
            .map_or("", String::as_str)
    }
}

impl<W: Write> ReportWriter<W> {
    fn new(
        layout: Layout,
        run: &RunInfo,
        dialect: CsvDialect,
        mut out: W,
        befores: ExtraColumns,
    ) -> anyhow::Result<ReportWriter<W>> {
        let own = own_column_names(run);
        let before_names: Vec<String> = befores
            .record_id
            .then(|| "record_id".to_string())
            .into_iter()
            .chain(befores.action.then(|| "action".to_string()))
            .chain(befores.fields.iter().map(|f| format!("before:{f}")))
            .collect();
        let mut header: Vec<&str> = Vec::with_capacity(run.columns.len() + own.len() + 1);
        if layout != Layout::Input {
            header.push(&own[0]);
        }
        header.push(&run.id_column);
        header.extend(run.columns.iter().map(String::as_str));
        if layout != Layout::Input {
            header.extend(own[1..].iter().map(String::as_str));
            header.extend(before_names.iter().map(String::as_str));
        }
        let columns = run.columns.len();
        Ok(match layout {
            Layout::Html => {
                anyhow::bail!("the HTML page is written whole (html_page), not row by row")
            }
            Layout::Json => {
                out.write_all(b"[")?;
                ReportWriter::Json {
                    out,
                    keys: header
                        .iter()
                        .map(|k| serde_json::to_string(k).expect("a string serializes"))
                        .collect(),
                    columns,
                    first: true,
                    befores,
                }
            }
            Layout::Csv | Layout::Input => {
                if dialect.bom {
                    out.write_all(UTF8_BOM)?;
                }
                let mut csv = csv::WriterBuilder::new()
                    .delimiter(dialect.delimiter)
                    .from_writer(out);
                csv.write_record(&header)?;
                ReportWriter::Csv {
                    csv: Box::new(csv),
                    as_input: layout == Layout::Input,
                    columns,
                    befores,
                }
            }
        })
    }

    fn row(&mut self, row: &ReportRow) -> anyhow::Result<()> {
        let value = |i: usize| row.values.get(i).map_or("", String::as_str);
        match self {
            ReportWriter::Csv {
                csv,
                as_input: true,
                columns,
                ..
            } => {
                csv.write_field(&row.record_id)?;
                for i in 0..*columns {
                    csv.write_field(value(i))?;
                }
                csv.write_record(None::<&[u8]>)?;
            }
            ReportWriter::Csv {
                csv,
                as_input: false,
                columns,
                befores,
            } => {
                let text = neutralise_formula;
                csv.write_field(row.line.to_string())?;
                csv.write_field(text(&row.record_id).as_bytes())?;
                for i in 0..*columns {
                    csv.write_field(text(value(i)).as_bytes())?;
                }
                csv.write_field(row.outcome.as_str())?;
                csv.write_field(text(row.code.as_deref().unwrap_or_default()).as_bytes())?;
                csv.write_field(text(row.message.as_deref().unwrap_or_default()).as_bytes())?;
                csv.write_field(row.attempts.to_string())?;
                csv.write_field(row.last_attempt_at.as_deref().unwrap_or_default())?;
                csv.write_field(row.carried_by.unwrap_or_default())?;
                if befores.record_id {
                    csv.write_field(row.record.map(|id| id.to_string()).unwrap_or_default())?;
                }
                if befores.action {
                    csv.write_field(row.action.unwrap_or_default())?;
                }
                for at in 0..befores.fields.len() {
                    csv.write_field(text(before_cell(befores.of(row, at))).as_bytes())?;
                }
                csv.write_record(None::<&[u8]>)?;
            }
            ReportWriter::Json {
                out,
                keys,
                columns,
                first,
                befores,
            } => {
                out.write_all(if *first { b"\n{" } else { b",\n{" })?;
                *first = false;
                let mut keys = keys.iter().map(String::as_str);
                let mut key = || keys.next().expect("one key per value");
                json_pair(out, key(), &row.line, false)?;
                json_pair(out, key(), &row.record_id, true)?;
                for i in 0..*columns {
                    json_pair(out, key(), value(i), true)?;
                }
                json_pair(out, key(), row.outcome.as_str(), true)?;
                json_pair(out, key(), &row.code, true)?;
                json_pair(out, key(), &row.message, true)?;
                json_pair(out, key(), &row.attempts, true)?;
                json_pair(out, key(), &row.last_attempt_at, true)?;
                json_pair(out, key(), &row.carried_by, true)?;
                if befores.record_id {
                    json_pair(out, key(), &row.record.map(|id| id.to_string()), true)?;
                }
                if befores.action {
                    json_pair(out, key(), &row.action, true)?;
                }
                for at in 0..befores.fields.len() {
                    // The value as Zoho answered it, or null when none was read.
                    let before: serde_json::Value = serde_json::from_str(befores.of(row, at))
                        .unwrap_or(serde_json::Value::Null);
                    json_pair(out, key(), &before, true)?;
                }
                out.write_all(b"}")?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<W> {
        match self {
            ReportWriter::Csv { csv, .. } => csv
                .into_inner()
                .map_err(|e| anyhow::Error::new(e.into_error())),
            ReportWriter::Json { mut out, first, .. } => {
                out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
                Ok(out)
            }
        }
    }
}

/// A before value (JSON) as a CSV cell: an empty value (null, an empty string) is an empty
/// cell, as a spreadsheet shows an empty field, not the text `null`.
fn before_cell(value_json: &str) -> &str {
    match value_json.trim() {
        "null" | "\"\"" => "",
        _ => value_json,
    }
}

/// Writes `"key":value` (after a comma unless it is the object's first).
fn json_pair<T: serde::Serialize + ?Sized>(
    out: &mut impl Write,
    key: &str,
    value: &T,
    comma: bool,
) -> io::Result<()> {
    if comma {
        out.write_all(b",")?;
    }
    out.write_all(key.as_bytes())?;
    out.write_all(b":")?;
    serde_json::to_writer(out, value).map_err(io::Error::from)
}

/// A file written beside its destination and renamed onto it only when complete. Dropped
/// before `commit`, it removes itself: a failed report leaves neither half a file nor an
/// old report replaced.
pub struct AtomicFile {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temp file; returns it with a buffered writer to it.
    pub fn create(dest: &Path) -> anyhow::Result<(AtomicFile, BufWriter<File>)> {
        let name = dest
            .file_name()
            .ok_or_else(|| UsageError::new(format!("--out {} names no file", dest.display())))?;
        // The same folder, so the rename is atomic (one file system).
        let folder = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !folder.is_dir() {
            return Err(UsageError::new(format!(
                "--out {}: folder {} does not exist",
                dest.display(),
                folder.display()
            ))
            .into());
        }
        let mut attempt = 0u32;
        loop {
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{}-{attempt}.tmp", std::process::id()));
            let temp = folder.join(temp_name);
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    let guard = AtomicFile {
                        temp,
                        dest: dest.to_path_buf(),
                        committed: false,
                    };
                    return Ok((guard, BufWriter::with_capacity(256 * 1024, file)));
                }
                // Left by an earlier process that had this pid and was killed.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temp file in {}", folder.display())
                    })
                }
            }
        }
    }

    /// Flushes `out` to disk and moves the temp file onto the destination.
    pub fn commit(mut self, out: BufWriter<File>) -> io::Result<()> {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_a_leading_quote_and_numbers_and_phone_numbers_do_not() {
        // (cell, neutralised?)
        let cases = [
            ("=SUM(A1)", true),
            ("=1", true),
            ("+SUM(A1)", true),
            ("+A1", true),
            ("-cmd|' /C calc'!A0", true),
            ("-x", true),
            ("@foo", true),
            ("@5", true),
            ("|x", true),
            ("|cmd!A0", true),
            ("\tx", true),
            ("\rx", true),
            ("+", true),
            ("-", true),
            ("--5", true),
            ("-5-", true),
            ("-1e5", true),
            ("-12..5", true),
            ("+49 30 1234567 ext", true),
            ("+1 (555) HELLO", true),
            ("-(555) 010", true),
            ("+49 30 1234567", false),
            ("+1 (555) 010-2030", false),
            ("+44 20 7946 0958", false),
            ("+49/30/1234567", false),
            ("+33.1.23.45.67.89", false),
            ("+(49) 30 1234567", false),
            ("-12.5", false),
            ("-5", false),
            ("+1", false),
            ("-1,250.50", false),
            ("-1.250,50", false),
            ("-1 250,50", false),
            ("", false),
            ("Smith", false),
            ("5", false),
            ("a=b", false),
            (" =x", false),
            ("'quoted", false),
            ("ünïcode", false),
            ("Köln", false),
        ];
        for (cell, neutralised) in cases {
            let expected = if neutralised {
                format!("'{cell}")
            } else {
                cell.to_string()
            };
            assert_eq!(neutralise_formula(cell), expected, "{cell:?}");
        }
    }

    #[test]
    fn empty_before_values_are_empty_cells() {
        assert_eq!(before_cell("null"), "");
        assert_eq!(before_cell("\"\""), "");
        assert_eq!(before_cell(""), "");
        assert_eq!(before_cell("\"Köln\""), "\"Köln\"");
        assert_eq!(before_cell("0"), "0");
        assert_eq!(before_cell("[]"), "[]");
    }

    fn run_with(id_column: &str, columns: &[&str]) -> RunInfo {
        RunInfo {
            id_column: id_column.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            ..RunInfo::planned(1, "Leads")
        }
    }

    #[test]
    fn own_columns_step_aside_for_input_columns_of_the_same_name() {
        assert_eq!(
            own_column_names(&run_with("id", &["Last_Name"])),
            OWN_COLUMNS
        );
        let names = own_column_names(&run_with("line", &["code", "massup_code", "Rating"]));
        assert_eq!(
            names,
            [
                "massup_line",
                "outcome",
                "massup_massup_code",
                "message",
                "attempts",
                "last_attempt_at",
                "carried_by"
            ]
        );
    }

    fn invalid(message: &str) -> ReportRow {
        ReportRow {
            row_no: 0,
            line: 2,
            record_id: "1".into(),
            values: vec![],
            outcome: RowOutcome::Invalid,
            code: Some("INVALID_ROW".into()),
            message: Some(message.into()),
            attempts: 0,
            last_attempt_at: None,
            carried_by: None,
            action: None,
            record: None,
        }
    }

    #[test]
    fn rows_not_stored_as_given_are_the_ragged_and_non_utf8_ones() {
        assert!(!stored_as_given(&invalid(
            "the row has 2 cells but the header has 3"
        )));
        assert!(!stored_as_given(&invalid(
            "column Last_Name: not valid UTF-8 (byte 2 of the cell); save the file as UTF-8"
        )));
        assert!(stored_as_given(&invalid(
            "record id \"abc\" is not a Zoho record id (digits only)"
        )));
        let mut pending = invalid("the row has 2 cells but the header has 3");
        pending.outcome = RowOutcome::Pending;
        assert!(stored_as_given(&pending));
    }
}
