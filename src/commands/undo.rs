//! `massup undo --run N`: a new run that writes back, for every record whose update in run
//! N succeeded, the value it held before (read by N's snapshot; empty before means clear
//! it). It is planned like any run (grouped, both kinds of call), from a CSV written next
//! to the database, and sent, resumed, retried and reported like any run. Before each call
//! it reads the records again: one that no longer holds what run N wrote was changed by
//! someone since and is left alone (CONFLICT) unless `--force`; one that holds its old
//! value already is not written again (UNCHANGED). An undo run takes a snapshot itself, so
//! it can be undone too.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use super::flags::{ConnectionFlags, DispatchFlags};
use super::{Latest, Workspace};
use crate::app::planning::{plan_file, PlanJob};
use crate::app::send::StoredRun;
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::outcome::ItemState;
use crate::plan::{PlanOutcome, PlanSettings};
use crate::store::befores::FieldValue;
use crate::store::codec::member_writes;
use crate::store::{self, RunInfo};

const EXAMPLES: &str = "Examples:
  massup undo --run 7
      write back what run 7 overwrote; records changed since are left alone (CONFLICT)
  massup undo --run 7 --force --yes
      overwrite those too, without asking
  massup resume
      finish an undo that was interrupted, as any run";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The run to take back [default: the latest run]
    #[arg(long)]
    pub run: Option<i64>,
    /// Write the old values back even where a record changed since the run wrote it.
    #[arg(long)]
    pub force: bool,
    #[command(flatten, next_help_heading = "Connection options")]
    pub connection: ConnectionFlags,
    #[command(flatten, next_help_heading = "Dispatch options")]
    pub dispatch: DispatchFlags,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long, help_heading = "Output options")]
    pub json: bool,
    /// Send without asking. The question is only asked when stdin is a terminal (never
    /// under cron or in a pipe) and not with --json.
    #[arg(long, short = 'y', help_heading = "Output options")]
    pub yes: bool,
    #[command(flatten)]
    pub db: DbArg,
}

/// What an undo writes: per record, each field's old value; and what the run wrote.
struct Takeback {
    fields: Vec<String>,
    /// record id -> field -> value before (JSON).
    before: BTreeMap<i64, BTreeMap<String, Value>>,
    expectations: Vec<FieldValue>,
    /// Values written whose old value was never read (a run without a snapshot, or a
    /// record Zoho did not return).
    unknown: u64,
    /// `--create-missing`: the records the run created, deleted by the undo unless changed
    /// since (their expected values are in `expectations` too).
    deletions: Vec<store::created::Deletion>,
}

fn takeback(conn: &rusqlite::Connection, run: &RunInfo) -> anyhow::Result<Takeback> {
    let befores: BTreeMap<(i64, String), Value> = store::befores::befores(conn, run.id)?
        .into_iter()
        .map(|v| {
            let value = serde_json::from_str(&v.value_json).unwrap_or(Value::Null);
            ((v.record_id, v.field), value)
        })
        .collect();
    let groups = store::chunks::group_payloads(conn, run.id)?;
    let mut take = Takeback {
        fields: Vec::new(),
        before: BTreeMap::new(),
        expectations: Vec::new(),
        unknown: 0,
        deletions: Vec::new(),
    };
    // The records the run created, by the row that carried each.
    let created: std::collections::HashMap<u32, i64> = store::created::of_run(conn, run.id)?
        .into_iter()
        .filter(|c| c.action == store::created::Action::Created)
        .map(|c| (c.row_no, c.record_id))
        .collect();
    let mut fields = BTreeSet::new();
    store::chunks::for_each_chunk(conn, run.id, |chunk| -> anyhow::Result<()> {
        let payloads = chunk.payloads();
        if chunk.kind == crate::api::limits::CallKind::UpsertRecords {
            // A created record is deleted, not written back: what the run wrote into it
            // is what it must still hold to be deleted without --force.
            let payloads = payloads.unwrap_or_default();
            for (i, member) in chunk.members.iter().enumerate() {
                let Some(&record_id) = created.get(&member.row_no) else {
                    continue;
                };
                let wrote = payloads.get(i).cloned().unwrap_or_else(|| "{}".into());
                if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(&wrote) {
                    for (field, value) in fields {
                        take.expectations.push(FieldValue {
                            record_id,
                            field,
                            value_json: value.to_string(),
                        });
                    }
                }
                take.deletions
                    .push(store::created::Deletion { record_id, wrote });
            }
            return Ok(());
        }
        let shared = groups.get(&chunk.group_id).map_or("{}", String::as_str);
        // What succeeded was written; a record left out because it held the values already
        // (UNCHANGED) was not.
        let written = (0..chunk.members.len()).filter(|&i| {
            ItemState::from_byte(chunk.outcomes[i]) == ItemState::Succeeded
                && chunk
                    .details
                    .get(&(i as u32))
                    .is_none_or(|(code, _)| code != crate::codes::UNCHANGED)
        });
        for (i, wrote) in member_writes(shared, payloads.as_deref(), written) {
            let member = &chunk.members[i];
            for (field, value) in wrote {
                let Some(before) = befores.get(&(member.record_id, field.clone())) else {
                    take.unknown += 1;
                    continue;
                };
                fields.insert(field.clone());
                take.before
                    .entry(member.record_id)
                    .or_default()
                    .insert(field.clone(), before.clone());
                take.expectations.push(FieldValue {
                    record_id: member.record_id,
                    field,
                    value_json: value.to_string(),
                });
            }
        }
        Ok(())
    })?;
    take.fields = fields.into_iter().collect();
    Ok(take)
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let conn = workspace.open_existing()?;
    store::check_before_sending(&conn, &workspace.db)?;
    let undone = workspace.pick_run(&conn, args.run, Latest::Any)?;
    // The undone run's lease is held for the whole undo: no undo while the run sends, no
    // send of the run while its undo sends, and two undos of one run at once make one (the
    // second exits 4 naming the first).
    let _undone_lease = crate::app::send::hold_run(
        &workspace.db,
        undone.id,
        "massup undo",
        args.dispatch.wait,
        None,
    )?;
    if let Some(undo_run) = undo_in_progress(&conn, &undone)? {
        return Err(UsageError::new(format!(
            "run {} is being undone by run {undo_run}, which has not finished: continue it with `massup --db {} resume --run {undo_run}`",
            undone.id,
            workspace.db.display()
        ))
        .into());
    }
    let plan = PlanSettings::of_run(&undone)?;
    let created = store::created::count(&conn, undone.id)?;
    if store::befores::count(&conn, undone.id)? == 0 && created == 0 {
        let why = if plan.snapshot == Some(true) {
            "no record's values were read yet (nothing was sent)"
        } else {
            "it took no snapshot (plan it with --snapshot to make a run undoable)"
        };
        return Err(UsageError::new(format!("run {} cannot be undone: {why}", undone.id)).into());
    }
    let take = takeback(&conn, &undone)?;
    if take.before.is_empty() && take.deletions.is_empty() {
        return Err(UsageError::new(format!(
            "run {} changed no record (no update succeeded): there is nothing to undo",
            undone.id
        ))
        .into());
    }
    // The sheet of old values, kept beside the database: the undo run's input.
    let dir = workspace
        .db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let csv_path = dir.join(format!("undo-of-run-{}-{stamp}.csv", undone.id));
    let mut writer = csv::Writer::from_path(&csv_path)?;
    let mut header = vec!["id".to_string()];
    header.extend(take.fields.iter().cloned());
    if take.fields.is_empty() {
        // Only deletions (a run that created records and updated none): the sheet of old
        // values has no row, but a CSV needs a field column; the fields the run wrote into
        // the records it created name it.
        let wrote: BTreeSet<String> = take
            .deletions
            .iter()
            .filter_map(|d| serde_json::from_str::<serde_json::Map<String, Value>>(&d.wrote).ok())
            .flat_map(|values| values.keys().cloned().collect::<Vec<_>>())
            .collect();
        header.extend(wrote.into_iter().take(1));
    }
    writer.write_record(&header)?;
    for (record, values) in &take.before {
        let mut row = vec![record.to_string()];
        for field in &take.fields {
            // A cell holds the old value as JSON (`null` clears the field); a field this
            // record did not have written stays empty, which leaves it unchanged.
            row.push(values.get(field).map_or_else(String::new, Value::to_string));
        }
        writer.write_record(&row)?;
    }
    writer.flush()?;
    drop(writer);
    let mut settings = PlanSettings::new(&undone.module);
    settings.max_fields_per_call = plan.max_fields_per_call;
    settings.trigger = plan.trigger.clone();
    // Old values are written as Zoho answered them, and a multi-select is replaced, not
    // appended to.
    settings.types = take
        .fields
        .iter()
        .map(|f| (f.clone(), crate::fields::FieldType::Json))
        .collect();
    settings.over_write = true;
    settings.null_marker = "#massup-undo-never-a-value#".into();
    settings.snapshot = Some(true);
    // A record that holds its old value already (restored by an earlier undo, or by a
    // person) is not written again, --force or not.
    settings.skip_unchanged = true;
    settings.undo_of = Some(undone.id);
    let send_json = store::runs::send_settings_json(&conn, undone.id)?;
    drop(conn);
    let job = PlanJob {
        csv: &csv_path,
        settings: &settings,
        fields_file: None,
        // The field metadata run N was planned with.
        stored_fields: undone.fields_json.as_deref(),
        strict: false,
        new_run: true,
        send_json: send_json.as_deref(),
        quiet: global.quiet,
        command: "massup undo",
        expectations: (!args.force).then_some(take.expectations.as_slice()),
        fresh_lookups: false,
    };
    let planned = plan_file(&workspace.db, &job, None)?;
    let PlanOutcome::Planned(summary) = planned else {
        unreachable!("an undo is always planned as a new run");
    };
    // The records the run created: Delete Records calls of the same undo run.
    store::created::add_deletions(&mut workspace.open()?, summary.run_id, &take.deletions)?;
    // A bare resume never picks the undone run again (it would redo what is undone).
    store::runs::mark_undone(
        &workspace.open()?,
        undone.id,
        summary.run_id,
        &format!("undone by run {} on {}", summary.run_id, store::now()),
    )?;
    if !global.quiet && !global.json {
        crate::outln!(
            "Undoing run {} as run {}: {} record(s), {} field value(s) to write back, {} created record(s) to delete{}{}",
            undone.id,
            summary.run_id,
            take.before.len(),
            take.expectations.len(),
            take.deletions.len(),
            if args.force {
                "; --force: records changed since are overwritten too"
            } else {
                "; records changed since are left alone (CONFLICT)"
            },
            if take.unknown > 0 {
                format!(
                    "; {} value(s) written without a snapshot stay as they are",
                    take.unknown
                )
            } else {
                String::new()
            }
        );
        crate::out!(
            "{}",
            crate::render::plan_summary(&summary, &workspace.db, None)
        );
    }
    let conn = workspace.open()?;
    let run = store::runs::run(&conn, summary.run_id)?
        .ok_or_else(|| anyhow::anyhow!("run {} vanished after planning", summary.run_id))?;
    let stored = StoredRun::load(
        &conn,
        run,
        &args.connection.choice(),
        &args.dispatch.choice(),
        &workspace,
        "massup undo",
    )?;
    drop(conn);
    let outcome = stored.send(&workspace.db, global, None)?;
    if global.json {
        let (error, mut body) = outcome.to_json(&workspace.db);
        body["undone_run"] = serde_json::json!(undone.id);
        body["plan"] = serde_json::to_value(&summary)?;
        let value = crate::render::json::envelope("undo", outcome.exit, error, body);
        crate::render::json::print(&value);
    }
    Ok(outcome.exit)
}

/// The undo run of `undone` that has not finished, if any (its note names it).
fn undo_in_progress(
    conn: &rusqlite::Connection,
    undone: &crate::store::RunInfo,
) -> anyhow::Result<Option<i64>> {
    if undone.ended_as.as_deref() != Some("undone") {
        return Ok(None);
    }
    let Some(by) = store::runs::undone_by(conn, undone.id)? else {
        return Ok(None);
    };
    let undo = store::runs::run(conn, by)?;
    Ok(undo
        .filter(|u| u.state != crate::store::RunState::Finished && u.ended_as.is_none())
        .map(|u| u.id))
}
