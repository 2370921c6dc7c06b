//! `massup plan`: read, validate and group a CSV into a stored run, without calling the API.

use super::flags::PlanFlags;
use super::Workspace;
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::plan::PlanOutcome;
use crate::render;

const EXAMPLES: &str = "Examples:
  massup plan --csv changes.csv --module Leads
      validate and group the file; show the credits and calls it needs (no API call)
  massup plan --csv changes.tsv --module Deals --delimiter '\\t' --strict
      a tab-separated file; refuse it whole if any row is invalid
  massup plan --csv changes.csv --module Leads --fields samples/fields/Leads.json --json
  massup plan --csv contacts.csv --module Leads --match-by Email --dc eu
      a sheet keyed by email address: the keys are looked up (50 a call) and shown
  massup plan --csv kunden.csv --module Leads --decimal-comma --date-format %d.%m.%Y
      a sheet as Excel saves it in Germany (';' is found by itself)
  massup plan --csv team.csv --module Leads --map team-map.toml --ignore-column Notes
      a sheet as a team keeps it: its own headers read as fields, values set on every
      row ([columns] \"Stadt\" = \"City\", [set] Lead_Source = \"Partner\"), Notes left out
  massup plan --csv changes.csv --module Leads --diff
      also read the records' current values: how many would change, with samples";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub connection: super::flags::ConnectionFlags,
    /// After planning, read the records' current values and show per field how many would change and how many hold the value already, with samples (costs Get Records calls, 100 records each; needs credentials).
    #[arg(long, conflicts_with = "offline")]
    pub diff: bool,
    /// Call nothing: no live field metadata even with credentials set (--match-by needs the API).
    #[arg(long)]
    pub offline: bool,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let config = &workspace.config;
    let settings = args.plan.settings(config)?;
    let credentials = if args.offline {
        None
    } else {
        crate::api::auth::Credentials::load(config.secrets_file.as_deref())?
    };
    if args.diff && credentials.is_none() {
        return Err(UsageError::new(
            "--diff reads the records' current values from Zoho, but no credentials are set: set ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID + ZOHO_CLIENT_SECRET + ZOHO_REFRESH_TOKEN",
        )
        .into());
    }
    if settings.match_by.is_some() && credentials.is_none() {
        let why = if args.offline {
            "--offline was given"
        } else {
            "no credentials are set: set ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID + ZOHO_CLIENT_SECRET + ZOHO_REFRESH_TOKEN"
        };
        return Err(
            UsageError::new(format!("--match-by looks each key up in Zoho, but {why}")).into(),
        );
    }
    // With credentials, the plan checks values against the org's own metadata, fetched
    // live unless --fields names a file; without, it checks what it can.
    let connection = match credentials {
        Some(credentials)
            if settings.match_by.is_some() || args.diff || args.plan.fields.is_none() =>
        {
            let send = crate::app::send::SendSettings::resolve(
                &crate::app::send::SendSettings::default(),
                &args.connection.choice(),
                &crate::app::send::Pace::default(),
                config,
                &settings,
            )?;
            let runtime = crate::app::session::runtime()?;
            let stop = tokio_util::sync::CancellationToken::new();
            let session = crate::app::session::Session::new(&send, credentials, stop.clone())?;
            Some((runtime, session, send, stop))
        }
        _ => None,
    };
    let connected =
        connection.as_ref().map(
            |(runtime, session, send, stop)| crate::app::planning::Connected {
                session,
                handle: runtime.handle().clone(),
                dispatch: send.dispatch(),
                stop: stop.clone(),
            },
        );
    let send_json = connection.as_ref().map(|(_, _, send, _)| send.to_json());
    let db = &workspace.db;
    let job = args.plan.job(
        &settings,
        send_json.as_deref(),
        global.quiet || args.json,
        "massup plan",
    );
    // Input errors name the file themselves; others say which file was being planned.
    let outcome = crate::app::planning::plan_file(db, &job, connected.as_ref()).map_err(|e| {
        let names_file = e.chain().any(|c| {
            c.is::<crate::input::InputError>()
                || matches!(
                    c.downcast_ref::<crate::plan::PlanError>(),
                    Some(
                        crate::plan::PlanError::Input(_)
                            | crate::plan::PlanError::Columns { .. }
                            | crate::plan::PlanError::Strict { .. }
                            | crate::plan::PlanError::NotUtf8 { .. }
                    )
                )
        });
        if names_file {
            e
        } else {
            e.context(format!("planning {}", args.plan.csv.display()))
        }
    })?;
    match outcome {
        PlanOutcome::Existing(run) => {
            let differences = crate::app::planning::settings_differences(&settings, &run)?;
            let changed = if differences.is_empty() {
                String::new()
            } else {
                format!(
                    " with other settings than these ({})",
                    differences.join("; ")
                )
            };
            let message = format!(
                "{} was already planned for {} as run {} (state: {}){changed}; nothing new stored.\n  continue it:  massup --db {} resume --run {}\n  or plan again: add --new-run",
                args.plan.csv.display(),
                run.module,
                run.id,
                run.state,
                db.display(),
                run.id
            );
            if args.json {
                crate::render::json::print_result(
                    "plan",
                    Exit::Success,
                    serde_json::json!({"existing_run": run.id, "state": run.state, "message": message}),
                );
            } else {
                crate::outln!("{message}");
            }
            Ok(Exit::Success)
        }
        PlanOutcome::Planned(summary) => {
            crate::app::send::log_planned(&summary);
            let diff = match (&connected, args.diff) {
                (Some(connected), true) => Some(crate::app::planning::diff_run(
                    db,
                    summary.run_id,
                    connected,
                )?),
                _ => None,
            };
            let exit = if summary.totals.invalid_rows > 0 {
                Exit::Failures
            } else {
                Exit::Success
            };
            if args.json {
                let mut document = serde_json::to_value(&summary)?;
                if let Some(diff) = &diff {
                    document["diff"] = serde_json::to_value(diff)?;
                }
                crate::render::json::print_result("plan", exit, document);
            } else {
                crate::out!(
                    "{}",
                    render::plan_summary(&summary, db, Some(args.plan.show_request))
                );
                if let Some(diff) = &diff {
                    crate::out!("{}", render::plan_diff(diff));
                }
            }
            Ok(exit)
        }
    }
}
