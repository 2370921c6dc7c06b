//! `massup discard`: end a run that was never meant to go. It keeps its rows and outcomes
//! (status and report still show them), but no `resume` or `retry` sends it afterwards, and
//! a bare `resume` no longer picks it.
use super::{Latest, Workspace};
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::store::{self, RunState};

const EXAMPLES: &str = "Examples:
  massup discard --run 3
      run 3 will never be sent: resume and retry refuse it, a bare resume skips it
  massup status --all
      every run with its state (superseded, discarded and undone runs say so)";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The run to discard.
    #[arg(long)]
    pub run: i64,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let conn = workspace.open_existing()?;
    let run = workspace.pick_run(&conn, Some(args.run), Latest::Any)?;
    if run.state == RunState::Finished {
        return Err(UsageError::new(format!(
            "run {} is finished: nothing of it is left to send (`massup undo --run {}` takes it back)",
            run.id, run.id
        ))
        .into());
    }
    // Not while another process sends it: the lease is held while the mark is made.
    let _lease = crate::app::send::hold_run(&workspace.db, run.id, "massup discard", false, None)?;
    let note = format!("discarded on {}", store::now());
    let marked = store::runs::mark_ended(&conn, run.id, "discarded", &note, None)?;
    let message = if marked {
        format!(
            "run {} discarded: resume and retry will not send it; its outcomes stay for status and report",
            run.id
        )
    } else {
        format!(
            "run {} had ended already ({}); left as it was",
            run.id,
            run.ended_note.as_deref().unwrap_or("")
        )
    };
    if args.json {
        crate::render::json::print_result(
            "discard",
            Exit::Success,
            serde_json::json!({ "run": run.id, "discarded": marked, "message": message }),
        );
    } else if !global.quiet {
        crate::outln!("{message}");
    }
    Ok(Exit::Success)
}
