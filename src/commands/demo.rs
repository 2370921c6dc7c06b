//! `massup demo`: a complete rehearsal with no credentials and no network. It starts the
//! embedded mock CRM on loopback (some records locked, some not approved, a little latency,
//! a token that expires mid-run), writes a sample CSV built from `samples/leads-sample.csv`,
//! and runs the real commands against it as a user would: `run`, `retry`, `status`,
//! `report`. Each command is printed before it runs.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::app::session::runtime;
use crate::exit::{Exit, UsageError};
use crate::global::GlobalArgs;
use crate::mock::{MockConfig, MockServer};

/// Value sets of the sample rows (their ids are replaced by the mock's).
const SAMPLE: &str = include_str!("../../samples/leads-sample.csv");

const EXAMPLES: &str = "Examples:
  massup demo
      the rehearsal against the embedded mock; ends with report.html, the run in pictures
  massup demo --fast --rows 500 --dir /tmp/rehearsal
      the same story in a few seconds, in a folder of your choice";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Folder for the demo's database, CSV and reports [default: a new massup-demo-TIME folder here]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rows in the generated CSV.
    #[arg(long, default_value_t = 5000)]
    pub rows: usize,
    /// Less latency and a shorter token life: the same story in a few seconds (for tests).
    #[arg(long)]
    pub fast: bool,
    /// Print one JSON object on stdout at the end (docs/JSON.md): each step's own JSON
    /// object and exit code, and what the mock saw.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => PathBuf::from(format!(
            "massup-demo-{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        )),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| UsageError::new(format!("cannot create {}: {e}", dir.display())))?;
    let rt = runtime()?;
    let mock_config = MockConfig {
        // The Bulk Write migration needs more than 5,000 records.
        records: (args.rows + 100).max(BULK_ROWS),
        bulk_delay: Duration::from_millis(if args.fast { 100 } else { 1500 }),
        seed: 42,
        locked_fraction: 0.03,
        unlock_after: 1,
        not_approved_fraction: 0.02,
        approve_after: 1,
        latency_mean: Duration::from_millis(if args.fast { 5 } else { 60 }),
        latency_spread: Duration::from_millis(if args.fast { 4 } else { 40 }),
        // The starting token runs out mid-run: massup refreshes it once for all workers.
        token_lifetime: Some(Duration::from_millis(if args.fast { 400 } else { 1500 })),
        max_tokens_per_10min: Some(10),
        fail_500_rate: 0.01,
        ..MockConfig::default()
    };
    let ids = mock_config.record_ids();
    let emails = mock_config.record_emails();
    let server = rt.block_on(MockServer::start(mock_config))?;
    let url = server.url();
    let csv = dir.join("leads.csv");
    let written = write_sample_csv(&csv, &ids, args.rows)?;
    let db = dir.join("massup.db");
    let say = |text: &str| {
        if !global.quiet && !global.json {
            crate::outln!("{text}");
        }
    };
    // With --json, every step prints its own JSON object; they are collected here.
    let steps = std::cell::RefCell::new(Vec::<serde_json::Value>::new());
    say(&format!(
        "massup demo: a rehearsal against the embedded mock CRM at {url} (loopback only, no credentials needed)"
    ));
    say(&format!(
        "  wrote {} ({written} rows; a few are invalid or name unknown records on purpose)",
        csv.display()
    ));
    let state = tempfile::tempdir()
        .map_err(|e| UsageError::new(format!("cannot make a temporary folder: {e}")))?;
    let exe = std::env::current_exe()?;
    let massup = |args: &[&str]| -> anyhow::Result<i32> {
        let mut shown = vec![
            "massup".to_string(),
            "--db".into(),
            db.display().to_string(),
        ];
        shown.extend(args.iter().map(|a| a.to_string()));
        say(&format!("\n$ {}", shown.join(" ")));
        let mut command = Command::new(&exe);
        command
            .arg("--db")
            .arg(&db)
            .args(args)
            // The mock's self-client; a real run takes these from the environment.
            .env("ZOHO_CLIENT_ID", "mock-client-id")
            .env("ZOHO_CLIENT_SECRET", "mock-client-secret")
            .env("ZOHO_REFRESH_TOKEN", "mock-refresh-token")
            // The mock's client gets a token budget and a token store of its own, which
            // live as long as this demo's mock: rehearsals never count against a real
            // client's budget, nor against each other's (a demo run again in the same
            // folder talks to a new mock, which has minted nothing).
            .env(crate::api::budget::STATE_DIR_ENV, state.path())
            .env_remove("ZOHO_ACCESS_TOKEN")
            .env_remove("MASSUP_DB");
        child_flags(&mut command, global);
        let code = run_step(&mut command, args, global, &steps)?;
        Ok(code)
    };
    let csv_arg = csv.display().to_string();
    let connection = ["--api-domain", url.as_str(), "--accounts-url", url.as_str()];
    // A rate and a concurrency cap as a real org would set them (Zoho's are per edition).
    let rate = if args.fast { "none" } else { "25/s" };
    let run_of = |csv: &str| -> anyhow::Result<i32> {
        let mut args = vec![
            "run",
            "--csv",
            csv,
            "--module",
            "Leads",
            "--new-run",
            "--concurrency",
            "4",
            "--rate",
            rate,
            // A rehearsal against the mock: no question on a terminal.
            "--yes",
        ];
        args.extend(connection);
        massup(&args)
    };
    let first = run_of(&csv_arg)?;
    let mut retry_args = vec!["retry", "--yes"];
    retry_args.extend(connection);
    let second = massup(&retry_args)?;
    let reports = write_reports(&dir, &db, global, &exe, &say, &steps)?;
    // A spreadsheet migration: every record its own email, phone and city. mass_update
    // would need a call per record per field (and cannot write Email at all); the hybrid
    // planner sends it in Update Records batches of 100.
    let migration = dir.join("migration.csv");
    let migrated = write_migration_csv(&migration, &ids, args.rows.min(500))?;
    say(&format!(
        "\n  wrote {} ({migrated} rows, each record its own Email, Phone and City)",
        migration.display()
    ));
    let third = run_of(&migration.display().to_string())?;
    // A sheet from another system: no Zoho ids, only each lead's email address (in
    // whatever case it was typed). `--match-by Email` looks the keys up, 50 a call.
    let by_email = dir.join("by-email.csv");
    let keyed = write_email_csv(
        &by_email,
        &emails[args.rows.min(emails.len())..(args.rows + 100).min(emails.len())],
    )?;
    say(&format!(
        "\n  wrote {} ({keyed} rows keyed by Email, no record ids; one address no lead has)",
        by_email.display()
    ));
    let by_email_arg = by_email.display().to_string();
    let mut keyed_args = vec!["--match-by", "Email"];
    keyed_args.extend(connection);
    let fourth = {
        let mut args = vec![
            "run",
            "--csv",
            by_email_arg.as_str(),
            "--module",
            "Leads",
            "--new-run",
            "--yes",
        ];
        args.extend(keyed_args);
        massup(&args)?
    };
    // A large migration: 6,000 records, each its own City and Phone. Update Records would
    // take 600 credits; one Bulk Write job takes 500 (and a few one-credit calls for its
    // upload, status polls and result). Its locked and not-approved rows come back
    // retryable, and `retry` sends those few by Update Records.
    let bulk = dir.join("bulk-migration.csv");
    let bulked = write_bulk_csv(&bulk, &ids, BULK_ROWS)?;
    say(&format!(
        "\n  wrote {} ({bulked} rows, each record its own City and Phone: more than 5,000, so one Bulk Write job costs less than Update Records)",
        bulk.display()
    ));
    let bulk_arg = bulk.display().to_string();
    let poll = if args.fast { "100" } else { "1000" };
    let fifth = {
        let mut args = vec![
            "run",
            "--csv",
            bulk_arg.as_str(),
            "--module",
            "Leads",
            "--new-run",
            "--no-snapshot",
            "--bulk-poll-ms",
            poll,
            "--yes",
        ];
        args.extend(connection);
        massup(&args)?
    };
    let sixth = {
        let mut args = vec!["retry", "--yes"];
        args.extend(connection);
        massup(&args)?
    };
    let ledger = server.ledger();
    rt.block_on(server.shutdown());
    say(&format!(
        "\nThe mock charged {} API credits for {} mass_update and {} Update Records calls, {} Bulk Write job{}, {} lookup (COQL) and {} Get Records (snapshot) calls and the metadata; it minted {} tokens and never saw more than {} calls at once.",
        crate::render::count(ledger.credits_charged),
        ledger.requests, ledger.update_requests, ledger.bulk.jobs_created,
        if ledger.bulk.jobs_created == 1 { "" } else { "s" },
        ledger.coql_requests, ledger.get_records_requests, ledger.refreshes, ledger.max_concurrency_seen
    ));
    say(&format!("Everything is in {}: {reports}", dir.display()));
    // The demo's failures are on purpose: the run and the retry end with exit 3 (some rows
    // invalid or failed). Anything else means the demo itself went wrong.
    for (what, code) in [
        ("run", first),
        ("retry", second),
        ("migration run", third),
        ("run keyed by Email", fourth),
        ("Bulk Write migration", fifth),
        ("its retry", sixth),
    ] {
        if code != 0 && code != Exit::Failures.code() as i32 {
            return Err(anyhow::anyhow!("the demo's `{what}` exited with {code}"));
        }
    }
    if global.json {
        crate::render::json::print_result(
            "demo",
            Exit::Success,
            serde_json::json!({
                "dir": dir.display().to_string(),
                "db": db.display().to_string(),
                "files": reports,
                "steps": steps.into_inner(),
                "mock": {
                    "credits_charged": ledger.credits_charged,
                    "mass_update_calls": ledger.requests,
                    "update_records_calls": ledger.update_requests,
                    "bulk_write_jobs": ledger.bulk.jobs_created,
                    "tokens_minted": ledger.refreshes,
                    "max_concurrency_seen": ledger.max_concurrency_seen,
                },
            }),
        );
    }
    Ok(Exit::Success)
}

/// The flags of the demo's own invocation that its steps take too: how quiet, how much
/// log detail, and in what format.
fn child_flags(command: &mut Command, global: &GlobalArgs) {
    if global.quiet {
        command.arg("--quiet");
    }
    for _ in 0..global.verbose {
        command.arg("-v");
    }
    if global.log_format == crate::global::LogFormat::Json {
        command.args(["--log-format", "json"]);
    }
}

/// Runs one step of the demo and returns its exit code. With --json the step prints its
/// own JSON object, which is kept in `steps` (stdout is the demo's one object).
fn run_step(
    command: &mut Command,
    args: &[&str],
    global: &GlobalArgs,
    steps: &std::cell::RefCell<Vec<serde_json::Value>>,
) -> anyhow::Result<i32> {
    if !global.json {
        return Ok(command.status()?.code().unwrap_or(1));
    }
    command.arg("--json");
    let output = command.stderr(std::process::Stdio::inherit()).output()?;
    let code = output.status.code().unwrap_or(1);
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    steps.borrow_mut().push(serde_json::json!({
        "args": args,
        "exit_code": code,
        "result": result,
    }));
    Ok(code)
}

/// Writes `rows` rows cycling over the sample's value sets with the mock's ids, plus a few
/// deliberate problems: two invalid values, two unknown record ids, one exact duplicate.
fn write_sample_csv(path: &Path, ids: &[String], rows: usize) -> anyhow::Result<usize> {
    let mut reader = csv::Reader::from_reader(SAMPLE.as_bytes());
    let header = reader.headers()?.clone();
    let sets: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let mut writer = csv::Writer::from_path(path)?;
    writer.write_record(&header)?;
    let mut written = 0;
    for (i, id) in ids.iter().take(rows.saturating_sub(5)).enumerate() {
        let set = &sets[(i * 7 + i / 13) % sets.len()];
        let mut record: Vec<&str> = set.iter().collect();
        record[0] = id;
        writer.write_record(&record)?;
        written += 1;
    }
    let first = ids
        .first()
        .map(String::as_str)
        .unwrap_or("738964000002131001");
    let problems: [[&str; 6]; 5] = [
        [
            ids.get(1).map_or(first, |s| s),
            "Contacted",
            "Active",
            "a few",
            "",
            "",
        ],
        [
            ids.get(2).map_or(first, |s| s),
            "Contacted",
            "",
            "",
            "2026-02-30",
            "",
        ],
        ["999999999999999001", "Contacted", "Active", "", "", ""],
        ["999999999999999002", "Junk Lead", "", "", "", ""],
        [
            first,
            sets[0].get(1).unwrap_or(""),
            sets[0].get(2).unwrap_or(""),
            sets[0].get(3).unwrap_or(""),
            sets[0].get(4).unwrap_or(""),
            sets[0].get(5).unwrap_or(""),
        ],
    ];
    for problem in problems {
        writer.write_record(problem)?;
        written += 1;
    }
    writer.flush()?;
    Ok(written)
}

/// Rows of the demo's Bulk Write migration: more than the 5,000 a job needs to cost less
/// than Update Records.
const BULK_ROWS: usize = 6_000;

/// A large migration sheet for the first `rows` records: a City and a Phone of its own each.
fn write_bulk_csv(path: &Path, ids: &[String], rows: usize) -> anyhow::Result<usize> {
    let mut out = String::from("id,City,Phone\n");
    for (i, id) in ids.iter().take(rows).enumerate() {
        out.push_str(&format!("{id},Bergen {i},+47 5{i:07}\n"));
    }
    std::fs::write(path, out)?;
    Ok(rows.min(ids.len()))
}

/// A migration sheet for the first `rows` records: unique Email, Phone and City each.
fn write_migration_csv(path: &Path, ids: &[String], rows: usize) -> anyhow::Result<usize> {
    let mut out = String::from("id,Email,Phone,City\n");
    for (i, id) in ids.iter().take(rows).enumerate() {
        out.push_str(&format!(
            "{id},lead{i}@migrated.example,+47 {i:08},City {i}\n"
        ));
    }
    std::fs::write(path, out)?;
    Ok(rows.min(ids.len()))
}

/// A sheet keyed by the leads' email addresses (every other one in capitals, as people type
/// them), with a new status and city each, and one address no lead has.
fn write_email_csv(path: &Path, emails: &[String]) -> anyhow::Result<usize> {
    let mut out = String::from("Email,Lead_Status,City\n");
    let statuses = ["Contacted", "Pre-Qualified", "Attempted to Contact"];
    for (i, email) in emails.iter().enumerate() {
        let key = if i % 2 == 0 {
            email.to_uppercase()
        } else {
            email.clone()
        };
        out.push_str(&format!("{key},{},Oslo\n", statuses[i % statuses.len()]));
    }
    out.push_str("someone.else@example.org,Contacted,Oslo\n");
    std::fs::write(path, out)?;
    Ok(emails.len() + 1)
}

/// Runs `status`, then writes the full report and the failed rows as a file massup can
/// read again.
fn write_reports(
    dir: &Path,
    db: &Path,
    global: &GlobalArgs,
    exe: &Path,
    say: &dyn Fn(&str),
    results: &std::cell::RefCell<Vec<serde_json::Value>>,
) -> anyhow::Result<String> {
    let report = dir.join("report.csv");
    let failed = dir.join("failed.csv");
    let html = dir.join("report.html");
    let report_arg = report.display().to_string();
    let failed_arg = failed.display().to_string();
    let html_arg = html.display().to_string();
    let steps: [&[&str]; 4] = [
        &["status"],
        &["report", "--out", &report_arg],
        &["report", "--format", "html", "--out", &html_arg],
        &[
            "report",
            "--only",
            "failed,invalid",
            "--as-input",
            "--out",
            &failed_arg,
        ],
    ];
    for args in steps {
        say(&format!(
            "\n$ massup --db {} {}",
            db.display(),
            args.join(" ")
        ));
        let mut command = Command::new(exe);
        command.arg("--db").arg(db).args(args);
        child_flags(&mut command, global);
        let code = run_step(&mut command, args, global, results)?;
        if code != 0 {
            return Err(anyhow::anyhow!(
                "the demo's `{}` exited with {code}",
                args[0]
            ));
        }
    }
    say(&format!(
        "\n  open {} in a browser: the run in pictures",
        html.display()
    ));
    Ok("massup.db (the run), leads.csv (the input), report.csv (every row's outcome), report.html (the run in pictures), failed.csv (the rows to fix, as massup input)".into())
}
