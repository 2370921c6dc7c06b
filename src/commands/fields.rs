//! `massup fields MODULE`: the module's fields as massup will treat them (API name, label,
//! type, whether mass_update and Update Records can write them, picklist values), from the
//! org's live metadata or from a saved `--fields FILE`. The first stop when a sheet's
//! headers have to be turned into API names.
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::flags::ConnectionFlags;
use super::Workspace;
use crate::app::send::SendSettings;
use crate::app::session::{require_credentials, runtime, Session};
use crate::exit::Exit;
use crate::fields::{FieldMeta, ModuleFields};
use crate::global::{DbArg, GlobalArgs};
use crate::plan::PlanSettings;

const EXAMPLES: &str = "Examples:
  massup fields Leads --dc eu
      the org's Leads fields: API name, label, type, which calls can write them
  massup fields Deals --fields samples/fields/Deals.json --json
      from a saved settings/fields answer, as JSON";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Module API name: Leads, Contacts, Accounts, Deals, ... [or `module` in massup.toml]
    pub module: Option<String>,
    /// Read the metadata from this file (Zoho's settings/fields answer) instead of the API.
    #[arg(long, value_name = "FILE")]
    pub fields: Option<PathBuf>,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    /// Print the fields as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

/// One field as `fields --json` prints it.
#[derive(Debug, Serialize)]
struct FieldRow<'a> {
    api_name: &'a str,
    label: Option<&'a str>,
    data_type: &'a str,
    /// A mass_update call can write it.
    mass_update: bool,
    /// An Update Records call can write it (it is not read-only).
    updatable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_length: Option<usize>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    picklist_values: &'a [String],
}

impl<'a> FieldRow<'a> {
    fn of(meta: &'a FieldMeta) -> FieldRow<'a> {
        FieldRow {
            api_name: &meta.api_name,
            label: meta.label.as_deref(),
            data_type: meta.data_type.name(),
            mass_update: !meta.read_only
                && meta.mass_update
                && meta.data_type.mass_updatable_by_type(),
            updatable: !meta.read_only,
            max_length: meta.length,
            picklist_values: &meta.pick_list_values,
        }
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let config = &workspace.config;
    let module = args
        .module
        .clone()
        .or_else(|| config.module.clone())
        .ok_or_else(|| {
            crate::exit::UsageError::new(
                "no module: name one, e.g. `massup fields Leads` (or set `module` in massup.toml)",
            )
        })?;
    let (fields, source) = match &args.fields {
        Some(path) => (crate::app::planning::read_fields_file(path)?.0, "file"),
        None => {
            let credentials = require_credentials(config)?;
            let send = SendSettings::resolve(
                &SendSettings::default(),
                &args.connection.choice(),
                &crate::app::send::Pace::default(),
                config,
                &PlanSettings::new(&module),
            )?;
            let runtime = runtime()?;
            let session = Session::new(
                &send,
                credentials,
                tokio_util::sync::CancellationToken::new(),
            )?;
            let (fields, _) =
                runtime.block_on(crate::app::planning::live_metadata(&session, &module))?;
            (fields, "api")
        }
    };
    if args.json {
        let rows: Vec<FieldRow<'_>> = fields.iter().map(FieldRow::of).collect();
        let document = serde_json::json!({"module": module, "source": source, "fields": rows});
        crate::render::json::print_result("fields", Exit::Success, document);
    } else {
        crate::out!("{}", table(&module, &fields));
    }
    Ok(Exit::Success)
}

/// The fields as an aligned table, one per line, writable ones first as Zoho lists them.
fn table(module: &str, fields: &ModuleFields) -> String {
    let rows: Vec<FieldRow<'_>> = fields.iter().map(FieldRow::of).collect();
    let width = |f: &dyn Fn(&FieldRow<'_>) -> usize, min: usize| {
        rows.iter().map(f).max().unwrap_or(0).max(min)
    };
    let name_w = width(&|r| r.api_name.chars().count(), 8);
    let label_w = width(&|r| r.label.map_or(1, |l| l.chars().count()), 5).min(32);
    let type_w = width(&|r| r.data_type.len(), 4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:name_w$}  {:label_w$}  {:type_w$}  {:11}  {:7}  PICKLIST VALUES",
        "API NAME", "LABEL", "TYPE", "MASS_UPDATE", "UPDATE"
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    for row in &rows {
        let label: String = row.label.unwrap_or("-").chars().take(label_w).collect();
        let mut values = row
            .picklist_values
            .iter()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ");
        if row.picklist_values.len() > 6 {
            let _ = write!(values, " | ... ({} in all)", row.picklist_values.len());
        }
        let update = if row.updatable { "yes" } else { "read-only" };
        let _ = writeln!(
            out,
            "{:name_w$}  {:label_w$}  {:type_w$}  {:11}  {:7}  {}",
            row.api_name,
            label,
            row.data_type,
            yes(row.mass_update),
            update,
            values
        );
    }
    let mass = rows.iter().filter(|r| r.mass_update).count();
    let writable = rows.iter().filter(|r| r.updatable).count();
    let _ = writeln!(
        out,
        "{} fields of {module}: {mass} can be mass-updated, {writable} written by Update Records (CSV headers may use the API name or the label)",
        rows.len()
    );
    out
}
