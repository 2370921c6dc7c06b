//! `massup report`: one row per input row with its outcome, in input order. Rows are
//! streamed from the store to a temp file beside `--out` and renamed into place only when
//! complete, so a failed write never leaves half a report behind.
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Latest, Workspace};
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::plan::{PlanSettings, PROBLEMS_SHOWN};
use crate::render::report::{html_page, write_rows, AtomicFile, CsvDialect, Layout, Written};
use crate::store::RunInfo;
use crate::summary::RowOutcome;

const AFTER_HELP: &str = "\
Columns: line (where the row starts in the input file), the id column under its input name, \
the field columns as given, then outcome (succeeded | failed | retryable | invalid | pending), \
code, message, attempts (the calls that carried the row's most-tried record update, re-sends by \
retry included: 1 for a row whose fields all succeeded first time), last_attempt_at and carried_by (mass_update, update_records, bulk (a Bulk Write job), or \
several joined by +, e.g. mass_update+update_records: the kinds of call that carried the row's fields). A report column whose name an input column \
already uses is written as massup_<name>. --only is exact: --only failed lists the rows Zoho \
refused, not the invalid ones massup never sent; name both (failed,invalid) for every row to fix.

CSV reports use the run's input delimiter. A cell a spreadsheet would run as a formula gets \
a leading ' so that it shows as text: one starting with =, @, |, tab or carriage return, and \
one starting with + or - unless a plain number (-12.5) or, after +, a phone number \
(+49 30 1234567, +1 (555) 010-2030) follows. --format json writes one JSON array, one object per line, \
with the same keys and the values unescaped (line and attempts are numbers; a missing code, \
message or time is null).

--format html writes one self-contained page (no external script, style, font or image; \
charts are inline SVG): the run's numbers as `status` gives them, rows by outcome, record \
updates by code, calls and latency over time, changes per field, and a filterable table of \
the first 1,000 rows that did not succeed with their codes and messages (the rest counted), \
so a page for a 1M-row run stays small.

--as-input writes a file massup takes back as input: only the id column (first) and the \
field columns, in the run's delimiter, values exactly as given (not formula-escaped). Combine it \
with --only to re-send part of a run after fixing it, e.g.
  massup report --only failed,invalid --as-input --out fix.csv
  massup run --csv fix.csv --module Leads
Send it with the same --id-column, --delimiter and --null-marker as the original run (the \
command prints them). Invalid rows whose cells were not stored as given (a row with the \
wrong number of cells, a cell that is not UTF-8) are left out of such a file with a warning: \
written back they could pass as valid rows with changed values; fix them in the original file.";

const EXAMPLES: &str = "Examples:
  massup report --out report.csv
      every row of the latest run with its outcome, code and message
  massup report --only failed,invalid --as-input --out fix.csv
      the rows to fix, as a file massup run takes back
  massup report --format html --out run.html
      one page with charts, for people
  massup report --run 7 --out - | grep RECORD_LOCKED
      to stdout";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES, after_long_help = format!("{AFTER_HELP}\n\n{EXAMPLES}"))]
pub struct Args {
    /// Run to report [default: the latest]
    #[arg(long)]
    pub run: Option<i64>,
    /// File to write (`-` for stdout); replaced whole if it exists, and left untouched if writing fails.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only rows with exactly these outcomes: succeeded, failed, retryable, invalid, pending (comma-separated or repeated, e.g. failed,invalid) [default: every row]
    #[arg(long, value_name = "OUTCOME", value_delimiter = ',', value_parser = parse_outcome)]
    pub only: Vec<RowOutcome>,
    /// Output format: csv, json (an array of objects, one per line) or html (one page with charts) [default: csv]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write a massup input CSV: the id and field columns only, values exactly as given, not formula-escaped (see --help).
    #[arg(long)]
    pub as_input: bool,
    /// Write the CSV for a spreadsheet: a UTF-8 byte order mark first (so Excel reads Köln as Köln), in the input's delimiter (a European sheet's `;` stays `;`).
    #[arg(long)]
    pub excel: bool,
    /// Print one JSON object on stdout about what was written (docs/JSON.md); not with --out -.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    /// One self-contained page with charts (see --help).
    Html,
}

fn parse_outcome(text: &str) -> Result<RowOutcome, String> {
    RowOutcome::parse(text.trim()).ok_or_else(|| {
        format!("{text:?} is not an outcome; use succeeded, failed, retryable, invalid or pending")
    })
}

/// What the file holds, decided from the flags before any work starts.
fn layout_of(args: &Args) -> Result<Layout, UsageError> {
    match (args.as_input, args.format) {
        (true, Some(Format::Json | Format::Html)) => Err(UsageError::new(
            "--as-input writes a CSV massup can read back; it cannot be combined with --format json or html",
        )),
        (_, Some(Format::Json | Format::Html)) if args.excel => Err(UsageError::new(
            "--excel writes a CSV for a spreadsheet; it cannot be combined with --format json or html",
        )),
        (true, _) => Ok(Layout::Input),
        (false, Some(Format::Json)) => Ok(Layout::Json),
        (false, Some(Format::Html)) => Ok(Layout::Html),
        (false, _) => Ok(Layout::Csv),
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let layout = layout_of(&args)?;
    let to_stdout = args.out.as_os_str() == "-";
    if to_stdout && args.json {
        return Err(UsageError::new(
            "--out - writes the report itself on stdout; drop --json, or name a file",
        )
        .into());
    }
    let workspace = Workspace::new(global, &args.db)?;
    let conn = workspace.open_existing()?;
    let run = workspace.pick_run(&conn, args.run, Latest::Any)?;
    let db = &workspace.db;
    if !to_stdout {
        refuse_to_overwrite(&args.out, db, &run)?;
    }
    let settings = PlanSettings::of_run(&run)?;
    let dialect = CsvDialect::of_run(&run, args.excel)?;

    // One read transaction: the outcomes and the rows come from the same snapshot even if
    // a run is writing to the database meanwhile.
    let snapshot = conn.unchecked_transaction()?;
    let written = if layout == Layout::Html {
        let html = html_page(&snapshot, &run, db)?;
        let rows = html.1;
        if to_stdout {
            let mut out = std::io::stdout().lock();
            match out.write_all(html.0.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Success),
                Err(e) => return Err(e.into()),
            }
        } else {
            let (file, mut out) = AtomicFile::create(&args.out)?;
            out.write_all(html.0.as_bytes())?;
            file.commit(out)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
        }
        Written {
            rows,
            left_out: 0,
            left_out_lines: Vec::new(),
        }
    } else if to_stdout {
        let stdout = BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
        match write_rows(&snapshot, layout, &run, dialect, &args.only, stdout).and_then(
            |(mut out, written)| {
                out.flush()?;
                Ok(written)
            },
        ) {
            Ok(written) => written,
            // `massup report --out - | head`: the reader is done; so are we.
            Err(e) if is_broken_pipe(&e) => return Ok(Exit::Success),
            Err(e) => return Err(e),
        }
    } else {
        let (file, out) = AtomicFile::create(&args.out)?;
        let (out, written) = write_rows(&snapshot, layout, &run, dialect, &args.only, out)?;
        file.commit(out)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        written
    };
    drop(snapshot);

    let only = if args.only.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = args.only.iter().map(|o| o.as_str()).collect();
        format!("; only {}", names.join(","))
    };
    let shown = if to_stdout {
        "stdout".to_string()
    } else {
        args.out.display().to_string()
    };
    // A report of rows that did not succeed names the command that makes them a sheet to
    // fix and send again.
    let as_input = (matches!(layout, Layout::Csv | Layout::Json)
        && written.rows > 0
        && !args.only.is_empty()
        && !args.only.contains(&RowOutcome::Succeeded))
    .then(|| as_input_command(db, run.id, &args.only, args.excel, &args.out, to_stdout));
    let wrote = if layout == Layout::Html {
        format!(
            "Wrote the HTML report of run {} ({} input rows; {} row(s) that did not succeed listed) to {shown}",
            run.id, run.input_rows, written.rows,
        )
    } else {
        let mut wrote = format!(
            "Wrote {} row(s) of run {} ({} input rows{only}) to {shown}",
            written.rows, run.id, run.input_rows,
        );
        if let Some(command) = &as_input {
            wrote.push_str(&format!(
                "; a sheet of them to fix and send again: {command}"
            ));
        }
        wrote
    };
    // Stdout is the report's (--out -) or the JSON's: the line goes to stderr then.
    if to_stdout || args.json {
        if !global.quiet {
            crate::logging::notice(
                crate::logging::Level::Info,
                "report_written",
                &wrote,
                serde_json::json!({ "run": run.id, "rows": written.rows }),
            );
        }
    } else {
        crate::outln!("{wrote}");
    }
    if written.left_out > 0 {
        crate::logging::notice(
            crate::logging::Level::Warn,
            "rows_left_out",
            &format!(
                "warning: left out {} invalid row(s) whose cells were not stored as given (wrong number of cells or not UTF-8), at line(s) {}{}; fix them in {}",
                written.left_out,
                written.left_out_lines.join(", "),
                if written.left_out > PROBLEMS_SHOWN as u64 { ", ..." } else { "" },
                run.csv_path
            ),
            serde_json::json!({ "run": run.id, "left_out": written.left_out }),
        );
    }
    let resend = (layout == Layout::Input && written.rows > 0).then(|| {
        format!(
            "massup --db {} run --csv {}{}",
            db.display(),
            args.out.display(),
            replan_flags(&settings)
        )
    });
    if args.json {
        let format = match layout {
            Layout::Csv => "csv",
            Layout::Json => "json",
            Layout::Input => "input",
            Layout::Html => "html",
        };
        crate::render::json::print_result(
            "report",
            Exit::Success,
            serde_json::json!({
                "run_id": run.id,
                "out": args.out.display().to_string(),
                "format": format,
                "only": args.only.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
                "rows_written": written.rows,
                "input_rows": run.input_rows,
                "left_out": written.left_out,
                "next": resend.clone().or(as_input),
            }),
        );
    } else if let Some(resend) = resend.filter(|_| !to_stdout) {
        crate::outln!("Send it with: {resend} (or `plan` with the same flags to check it first)");
    }
    Ok(Exit::Success)
}

/// Whether `error` is a write to a reader that went away.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::BrokenPipe))
    })
}

/// The `report --as-input` command that writes the rows `only` names as a sheet massup
/// takes back: beside `out` (`failed-3.csv` -> `failed-3-input.csv`), or in the current
/// folder for a report written to stdout.
fn as_input_command(
    db: &Path,
    run: i64,
    only: &[RowOutcome],
    excel: bool,
    out: &Path,
    to_stdout: bool,
) -> String {
    let names: Vec<&str> = only.iter().map(|o| o.as_str()).collect();
    let sheet = match out.file_stem().filter(|_| !to_stdout) {
        Some(stem) => out.with_file_name(format!("{}-input.csv", stem.to_string_lossy())),
        None => PathBuf::from(format!("{}-{run}-input.csv", names.join("-"))),
    };
    format!(
        "massup --db {} report --run {run} --only {} --as-input{} --out {}",
        db.display(),
        names.join(","),
        if excel { " --excel" } else { "" },
        sheet.display()
    )
}

/// A report must never replace the database or the run's own input file.
fn refuse_to_overwrite(out: &Path, db: &Path, run: &RunInfo) -> Result<(), UsageError> {
    if out.is_dir() {
        return Err(UsageError::new(format!(
            "--out {} is a folder; name a file",
            out.display()
        )));
    }
    let Ok(out_real) = out.canonicalize() else {
        return Ok(()); // does not exist yet: nothing to protect
    };
    for (what, path) in [
        ("the database", db),
        ("the run's input file", Path::new(&run.csv_path)),
    ] {
        if path.canonicalize().is_ok_and(|p| p == out_real) {
            return Err(UsageError::new(format!(
                "--out {} is {what}; write the report to another file",
                out.display()
            )));
        }
    }
    Ok(())
}

/// The flags to plan an `--as-input` file the way the run was planned (those that differ
/// from the defaults).
fn replan_flags(settings: &PlanSettings) -> String {
    let defaults = PlanSettings::new(&settings.module);
    let mut flags = format!(" --module {}", settings.module);
    if settings.id_column != defaults.id_column {
        flags.push_str(&format!(" --id-column {:?}", settings.id_column));
    }
    if settings.delimiter != defaults.delimiter {
        let shown = match settings.delimiter {
            '\t' => "'\\t'".to_string(),
            c => format!("'{c}'"),
        };
        flags.push_str(&format!(" --delimiter {shown}"));
    }
    if settings.null_marker != defaults.null_marker {
        flags.push_str(&format!(" --null-marker {:?}", settings.null_marker));
    }
    // A sheet keyed by Email (or another field) is looked up again: a record may have
    // changed its key since.
    if let Some(field) = &settings.match_by {
        flags.push_str(&format!(" --match-by {field}"));
    }
    if let Some(timezone) = &settings.timezone {
        flags.push_str(&format!(" --timezone {timezone:?}"));
    }
    // Cells are written back as given, so they are read back the same way.
    if settings.decimal_comma {
        flags.push_str(" --decimal-comma");
    }
    // An empty boolean cell was an unticked box: read back the same way.
    if settings.bool_x {
        flags.push_str(" --bool-x");
    }
    if let Some(format) = &settings.date_format {
        flags.push_str(&format!(" --date-format {format:?}"));
    }
    if let Some(format) = &settings.datetime_format {
        flags.push_str(&format!(" --datetime-format {format:?}"));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rows_report_names_the_as_input_command_beside_it() {
        let only = [RowOutcome::Failed, RowOutcome::Invalid];
        let db = Path::new("m.db");
        assert_eq!(
            as_input_command(db, 3, &only, false, Path::new("out/failed-3.csv"), false),
            "massup --db m.db report --run 3 --only failed,invalid --as-input --out out/failed-3-input.csv"
        );
        assert_eq!(
            as_input_command(db, 3, &only[..1], true, Path::new("-"), true),
            "massup --db m.db report --run 3 --only failed --as-input --excel --out failed-3-input.csv"
        );
    }

    #[test]
    fn an_as_input_file_is_planned_again_with_the_locale_flags_of_its_run() {
        let mut settings = PlanSettings::new("Leads");
        assert_eq!(replan_flags(&settings), " --module Leads");
        settings.decimal_comma = true;
        settings.date_format = Some("%d.%m.%Y".into());
        settings.datetime_format = Some("%d.%m.%Y %H:%M".into());
        assert_eq!(
            replan_flags(&settings),
            " --module Leads --decimal-comma --date-format \"%d.%m.%Y\" --datetime-format \"%d.%m.%Y %H:%M\""
        );
    }
}
