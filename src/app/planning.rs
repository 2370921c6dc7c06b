//! What `plan` and `run` need from Zoho before planning: the module's field metadata (with
//! the real cause named when it cannot be had: a refused token, a module that does not
//! exist) and, for `--match-by`, the record ids of the sheet's keys.
use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::session::Session;
use crate::api::limits::CallKind;
use crate::api::limits::{max_rows_per_query, MAX_IN_VALUES};
use crate::api::{self, MetadataError};
use crate::dispatch::attempt::Caller;
use crate::dispatch::lookup::look_up;
use crate::dispatch::read::current_values;
use crate::dispatch::{DispatchSettings, Endpoint, Progress};
use crate::exit::UsageError;
use crate::fields::{ColumnMatch, ModuleFields};
use crate::input::CsvOptions;
use crate::plan::diff::PlanDiff;
use crate::plan::matching::{collect_keys, LookupError, MatchField, Matches};
use crate::plan::{
    self, PlanError, PlanInput, PlanOutcome, PlanRequest, PlanSettings, SettingsError,
};
use crate::store::codec::member_writes;

/// `GET settings/fields` for `module`, parsed, and its text (stored with the run). An
/// unknown module is a usage error that names the nearest module of the org.
pub async fn live_metadata(
    session: &Session,
    module: &str,
) -> anyhow::Result<(ModuleFields, String)> {
    let version = &session.api_version;
    // A refused token (expired, or a stored one revoked) is replaced as the attempt loop
    // replaces it, at most as often as the token source allows fresh tokens in vain.
    let mut refusals = 0;
    let (token, domain, fetched) = loop {
        let (token, generation) = session
            .tokens
            .token()
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot get an access token"))?;
        let domain = session.api_domain().await?;
        let fetched = api::fetch_fields(&session.http, &domain, version, module, &token).await;
        if matches!(fetched, Err(MetadataError::Refused { .. }))
            && refusals <= crate::api::auth::MAX_FRESH_TOKENS_REJECTED
            && session
                .tokens
                .rejected(generation)
                .await
                .map_err(|e| anyhow::Error::new(e).context("cannot get an access token"))?
        {
            refusals += 1;
            continue;
        }
        break (token, domain, fetched);
    };
    let text = match fetched {
        Ok(text) => text,
        Err(e @ MetadataError::UnknownModule { .. }) => {
            let names = api::fetch_module_names(&session.http, &domain, version, &token)
                .await
                .unwrap_or_default();
            let hint = match crate::suggest::nearest(module, names.iter().map(String::as_str)) {
                Some(name) => format!("; did you mean {name}?"),
                None if names.is_empty() => String::new(),
                None => format!(" (its modules include {})", shortened(&names)),
            };
            return Err(UsageError::new(format!("{e}{hint}")).into());
        }
        Err(e) => return Err(anyhow::Error::msg(e.to_string())),
    };
    // The server's answer, not the user's input: a fatal error (exit 1).
    let fields = ModuleFields::from_zoho_json(text.as_bytes()).map_err(|e| {
        anyhow::anyhow!("the field metadata Zoho sent for {module} cannot be read: {e}")
    })?;
    Ok((fields, text))
}

fn shortened(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
    if names.len() > shown.len() {
        shown.push("...");
    }
    shown.join(", ")
}

/// The field `--match-by` names, checked against the metadata: it must exist and be a
/// field Zoho can search by.
pub fn match_field(
    settings: &PlanSettings,
    fields: &ModuleFields,
) -> Result<Option<MatchField>, UsageError> {
    let Some(name) = &settings.match_by else {
        return Ok(None);
    };
    let module = &settings.module;
    let unknown = |hint: Option<String>| {
        let hint = hint.map_or_else(String::new, |n| format!("; did you mean {n}?"));
        UsageError::new(format!(
            "--match-by {name}: {module} has no field {name}{hint} (`massup fields {module}` lists them)"
        ))
    };
    // A label or another case is what a person types; the API name is what is sent.
    let meta = match fields.match_column(name) {
        ColumnMatch::ApiName(meta) | ColumnMatch::Loose(meta) => meta,
        ColumnMatch::Unknown(hint) => return Err(unknown(hint)),
        ColumnMatch::Ambiguous(names) => {
            return Err(UsageError::new(format!(
                "--match-by {name}: more than one field of {module} answers to that name ({}); use the API name",
                names.join(", ")
            )))
        }
    };
    MatchField::new(module, meta)
        .map(Some)
        .map_err(UsageError::new)
}

/// How a plan reaches Zoho, when it does.
pub struct Connected<'a> {
    pub session: &'a Session,
    /// The runtime to block on: planning is synchronous.
    pub handle: tokio::runtime::Handle,
    /// Lookups go at the run's pace, with its attempts and backoff.
    pub dispatch: DispatchSettings,
    pub stop: CancellationToken,
}

impl Connected<'_> {
    /// What the plan's calls go through: the run's pace and budgets. A stop the calls
    /// call for (credits spent, a fatal answer) ends this caller's work only.
    pub fn caller(&self, endpoint: Endpoint) -> Caller {
        Caller::new(
            self.dispatch.clone(),
            endpoint,
            self.stop.child_token(),
            std::sync::Arc::new(Progress::default()),
            0,
        )
    }
}

/// A file to plan, as `plan` and `run` describe it.
pub struct PlanJob<'a> {
    pub csv: &'a Path,
    pub settings: &'a PlanSettings,
    pub fields_file: Option<&'a Path>,
    /// Field metadata kept with an earlier run (an undo plans with its run's), when no
    /// file is given.
    pub stored_fields: Option<&'a str>,
    pub strict: bool,
    pub new_run: bool,
    pub send_json: Option<&'a str>,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// The command, for the plan lock's holder.
    pub command: &'a str,
    /// An undo run's expectations (see `PlanRequest::expectations`).
    pub expectations: Option<&'a [crate::store::befores::FieldValue]>,
    /// Look every `--match-by` key up again (no reuse of a recent lookup).
    pub fresh_lookups: bool,
}

/// How long a lookup's answers are reused by a later plan of the same module and field:
/// long enough for the plan, `--diff`, plan again with another flag, run sequence of one
/// sitting, short enough that records created or re-keyed since are seen.
const LOOKUP_REUSE: chrono::Duration = chrono::Duration::hours(1);

/// Plans `job` into `db` under the plan lock. A file planned before is recognised before
/// anything is fetched; then field metadata (the file, else Zoho's), then `--match-by`
/// lookups, then the plan, stored whole or not at all.
pub fn plan_file(
    db: &Path,
    job: &PlanJob<'_>,
    connected: Option<&Connected<'_>>,
) -> anyhow::Result<PlanOutcome> {
    super::send::holding_plan_lock(db, job.command, || -> anyhow::Result<PlanOutcome> {
        let settings = job.settings;
        settings.check()?;
        let mut conn = crate::store::open(db)?;
        let input = PlanInput::open(job.csv)?;
        input.check_encoding(settings)?;
        if !job.new_run {
            if let Some(run) = input.planned_before(&conn, settings)? {
                return Ok(PlanOutcome::Existing(run));
            }
        }
        let mut metadata_calls = 0;
        let fields = match (job.fields_file, job.stored_fields, connected) {
            (Some(path), _, _) => Some(read_fields_file(path)?),
            (None, Some(text), _) => Some((
                ModuleFields::from_zoho_json(text.as_bytes()).map_err(|e| {
                    anyhow::anyhow!("the run's stored field metadata cannot be read: {e}")
                })?,
                text.to_string(),
            )),
            (None, None, Some(c)) => {
                metadata_calls = 1;
                Some(
                    c.handle
                        .block_on(live_metadata(c.session, &settings.module))?,
                )
            }
            (None, None, None) => None,
        };
        let field = match &fields {
            Some((fields, _)) => match_field(settings, fields)?,
            None => None,
        };
        // `--match-by email` or a label names the field Email: the run stores its API name,
        // and the key column defaults to it.
        let canonical;
        let settings = match &field {
            Some(field) if settings.match_by.as_deref() != Some(field.api_name()) => {
                let mut named = settings.clone();
                if Some(&named.id_column) == named.match_by.as_ref() {
                    named.id_column = field.api_name().to_string();
                }
                named.match_by = Some(field.api_name().to_string());
                canonical = named;
                &canonical
            }
            _ => settings,
        };
        let resolver = match (field, connected) {
            (Some(field), Some(connected)) => Some(move |path: &Path, options: &CsvOptions| {
                // With --create-missing a key that found no record is asked again: the run
                // that looked it up may have created it.
                let reuse = (!job.fresh_lookups).then_some((db, settings.create_missing));
                look_up_keys(
                    path,
                    job.csv,
                    options,
                    field.clone(),
                    connected,
                    job.quiet,
                    reuse,
                )
            }),
            (Some(_), None) => {
                return Err(UsageError::new(
                    "--match-by looks each key up in Zoho, which needs a connection",
                )
                .into())
            }
            (None, _) => None,
        };
        let request = PlanRequest {
            csv_path: job.csv,
            settings,
            fields: fields.as_ref().map(|(f, text)| (f, text.as_str())),
            strict: job.strict,
            new_run: job.new_run,
            send_json: job.send_json,
            resolve_keys: resolver.as_ref().map(|r| r as &plan::KeyResolver<'_>),
            expectations: job.expectations,
        };
        let outcome = plan::plan_input(&mut conn, &input, &request)?;
        if let PlanOutcome::Planned(summary) = &outcome {
            // Metadata is one call and one credit (Zoho's API limits page).
            crate::store::runs::set_metadata_calls(&conn, summary.run_id, metadata_calls)?;
            // The same file planned again (--new-run): an older plan of it that was never
            // finished is superseded, so a bare resume cannot send it in this one's place.
            for older in crate::store::runs::older_unfinished_of_same_file(&conn, summary.run_id)? {
                let note = format!(
                    "superseded by run {} (the same file planned again) on {}",
                    summary.run_id,
                    crate::store::now()
                );
                crate::store::runs::mark_ended(
                    &conn,
                    older,
                    "superseded",
                    &note,
                    Some(summary.run_id),
                )?;
            }
        }
        Ok(outcome)
    })?
}

/// Collects the distinct keys of the file at `path` (named `shown` in messages) and looks
/// them up.
fn look_up_keys(
    path: &Path,
    shown: &Path,
    options: &CsvOptions,
    field: MatchField,
    connected: &Connected<'_>,
    quiet: bool,
    reuse_from: Option<(&Path, bool)>,
) -> Result<Matches, PlanError> {
    let session = connected.session;
    let keys = collect_keys(path, shown, options, &field)?;
    let mut matches = Matches::new(field.clone(), keys);
    if let Some((db, found_only)) = reuse_from {
        let since = (chrono::Utc::now() - LOOKUP_REUSE)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let conn = crate::store::open(db)?;
        let found = crate::store::lookups::recent(&conn, field.module(), field.api_name(), &since)?;
        if found_only {
            matches.reuse_found(found);
        } else {
            matches.reuse(found);
        }
    }
    let keys = matches.unresolved();
    if keys.is_empty() {
        return Ok(matches);
    }
    let max_rows = max_rows_per_query(&session.api_version);
    let queries = keys.len().div_ceil(MAX_IN_VALUES);
    if !quiet {
        tracing::info!(
            keys = keys.len(),
            field = field.api_name(),
            module = field.module(),
            queries,
            "looking up the keys of --match-by ({MAX_IN_VALUES} a query)"
        );
    }
    let unreachable = |problem: crate::api::auth::AuthError| {
        let field = field.api_name().to_string();
        PlanError::Lookup(match problem {
            crate::api::auth::AuthError::Unavailable(message) => {
                LookupError::TokenUnavailable { field, message }
            }
            other => LookupError::Failed {
                field,
                code: "AUTHENTICATION_FAILURE".into(),
                message: format!("cannot get an access token: {other}"),
            },
        })
    };
    connected.handle.block_on(async {
        // A first token: its answer may name the API domain.
        session.tokens.token().await.map_err(unreachable)?;
        let endpoint = session
            .endpoint(field.module())
            .await
            .map_err(|e| PlanError::Settings(SettingsError(e.to_string())))?;
        let caller = connected.caller(endpoint);
        look_up(&caller, &mut matches, max_rows).await?;
        Ok::<(), PlanError>(())
    })?;
    Ok(matches)
}

/// `plan --diff`: reads the current values of every record the stored run writes (Get
/// Records, 100 a call) and counts, per field, the writes that would change a record and
/// those it holds already.
pub fn diff_run(db: &Path, run_id: i64, connected: &Connected<'_>) -> anyhow::Result<PlanDiff> {
    let conn = crate::store::open(db)?;
    let run = crate::store::runs::run(&conn, run_id)?
        .ok_or_else(|| anyhow::anyhow!("run {run_id} vanished after planning"))?;
    let groups = crate::store::chunks::group_payloads(&conn, run_id)?;
    // Per chunk: its records and what each is to get.
    let mut work: Vec<Vec<(i64, serde_json::Map<String, serde_json::Value>)>> = Vec::new();
    crate::store::chunks::for_each_chunk(&conn, run_id, |chunk| -> anyhow::Result<()> {
        let payloads = chunk.payloads();
        let shared = groups.get(&chunk.group_id).map_or("{}", String::as_str);
        let writes = member_writes(shared, payloads.as_deref(), 0..chunk.members.len());
        work.push(
            writes
                .into_iter()
                .zip(&chunk.members)
                .map(|((_, write), m)| (m.record_id, write))
                .collect(),
        );
        Ok(())
    })?;
    drop(conn);
    let session = connected.session;
    connected.handle.block_on(async {
        session
            .tokens
            .token()
            .await
            .map_err(|e| anyhow::anyhow!("cannot get an access token: {e}"))?;
        let endpoint = session.endpoint(&run.module).await?;
        let caller = connected.caller(endpoint);
        let mut diff = PlanDiff::default();
        for chunk in &work {
            let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
            let fields: Vec<String> = chunk
                .iter()
                .flat_map(|(_, w)| w.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let current = current_values(&caller, &ids, &fields, None)
                .await
                .map_err(|e| anyhow::anyhow!("reading the records' current values: {e}"))?;
            for (id, write) in chunk {
                let record = current.get(id);
                for (field, after) in write {
                    let before = record.map(|r| r.get(field).unwrap_or(&serde_json::Value::Null));
                    diff.add(*id, field, before, after);
                }
            }
        }
        Ok(diff.finish(caller.spent.calls(CallKind::GetRecords)))
    })
}

/// Reads a field-metadata file; returns it parsed and as text (stored with the run).
pub fn read_fields_file(path: &Path) -> anyhow::Result<(ModuleFields, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read --fields {}: {e}", path.display())))?;
    let fields = ModuleFields::from_zoho_json(text.as_bytes())
        .map_err(|e| UsageError::new(format!("--fields {}: {e}", path.display())))?;
    Ok((fields, text))
}

/// The settings a stored plan of the same file differs in from `asked`, each as
/// `trigger: planned null, now []`: what would be sent differently. What the header decided
/// (delimiter, id column) and a snapshot left to the cost are compared as decided.
pub fn settings_differences(
    asked: &PlanSettings,
    run: &crate::store::RunInfo,
) -> anyhow::Result<Vec<String>> {
    let mut asked_json = serde_json::to_value(asked)?;
    for (decided, key) in [
        (asked.from_header.delimiter, "delimiter"),
        (asked.from_header.id_column, "id_column"),
        // Left out, the plan decides from its cost.
        (asked.snapshot.is_none(), "snapshot"),
    ] {
        if decided {
            asked_json[key] = run.settings[key].clone();
        }
    }
    let empty = serde_json::Map::new();
    let asked_map = asked_json.as_object().unwrap_or(&empty);
    let stored_map = run.settings.as_object().unwrap_or(&empty);
    // Settings left out of the JSON when they hold their default (`--decimal-comma`,
    // `--encoding`, ...) are also left out of a fresh `PlanSettings::new`: absent from a
    // stored run, they held the default, and a value asked now differs from it. Only a
    // setting always stored that a run lacks was written by an older massup.
    let always_stored = serde_json::to_value(PlanSettings::new(&asked.module))?;
    let mut keys: Vec<&String> = asked_map.keys().chain(stored_map.keys()).collect();
    keys.sort();
    keys.dedup();
    let null = serde_json::Value::Null;
    let differences = keys
        .into_iter()
        .filter_map(|key| {
            let (before, now) = (
                stored_map.get(key).unwrap_or(&null),
                asked_map.get(key).unwrap_or(&null),
            );
            // A key an older massup did not store is not known to differ.
            let unknown = stored_map.get(key).is_none() && always_stored.get(key).is_some();
            (before != now && !unknown).then(|| format!("{key}: planned {before}, now {now}"))
        })
        .collect();
    Ok(differences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(settings: &PlanSettings) -> crate::store::RunInfo {
        let settings_json = serde_json::to_string(settings).unwrap();
        crate::store::RunInfo {
            settings: serde_json::from_str(&settings_json).unwrap(),
            settings_json,
            ..crate::store::RunInfo::planned(1, "Leads")
        }
    }

    #[test]
    fn a_setting_stored_only_when_not_default_differs_from_a_run_without_it() {
        let plain = PlanSettings::new("Leads");
        let mut asked = plain.clone();
        asked.decimal_comma = true;
        let differences = settings_differences(&asked, &stored(&plain)).unwrap();
        assert_eq!(differences, ["decimal_comma: planned null, now true"]);
        // And the other way round.
        let differences = settings_differences(&plain, &stored(&asked)).unwrap();
        assert_eq!(differences, ["decimal_comma: planned true, now null"]);
        assert!(settings_differences(&plain, &stored(&plain))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_setting_an_older_massup_did_not_store_is_not_known_to_differ() {
        let mut older = stored(&PlanSettings::new("Leads"));
        older.settings.as_object_mut().unwrap().remove("trigger");
        let mut asked = PlanSettings::new("Leads");
        asked.trigger = Some(Vec::new());
        assert!(settings_differences(&asked, &older).unwrap().is_empty());
    }
}
