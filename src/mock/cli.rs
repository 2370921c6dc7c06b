//! `massup mock-server`: flags turned into a validated [`MockConfig`], then the server runs
//! until the shutdown future the caller passes in completes.

use anyhow::{bail, Context};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::{default_field_limits, MockConfig, MockServer, Redirect, SUB_CONCURRENCY};

#[derive(clap::Args, Debug, Clone)]
pub struct MockServerArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the first line of output names it).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Number of generated records.
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    /// Seed for record ids, locked/not-approved records, tokens and faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The access token accepted from the start.
    #[arg(long, default_value = "mock-token")]
    pub token: String,
    #[arg(long, default_value = "mock-client-id")]
    pub client_id: String,
    #[arg(long, default_value = "mock-client-secret")]
    pub client_secret: String,
    #[arg(long, default_value = "mock-refresh-token")]
    pub refresh_token: String,
    /// Access token lifetime in seconds (default: tokens never expire).
    #[arg(long)]
    pub token_lifetime_secs: Option<f64>,
    /// Tokens the refresh endpoint mints per 10 minutes (Zoho: 10; default: unlimited).
    #[arg(long)]
    pub max_tokens_per_10min: Option<u32>,
    /// Share of records that start locked (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub locked: f64,
    /// A locked record opens after this many refused attempts (0 = never).
    #[arg(long, default_value_t = 0)]
    pub unlock_after: u32,
    /// Share of records that start not approved (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub not_approved: f64,
    /// A not-approved record is approved after this many refused attempts (0 = never).
    #[arg(long, default_value_t = 0)]
    pub approve_after: u32,
    /// Record calls (mass_update, Update/Get Records, COQL) per second before 429.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Record calls in flight at once before 429.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Update Records calls of more than 10 records in flight at once before 429, whatever
    /// --concurrency (Zoho: 10 on every edition; 0 = no such limit).
    #[arg(long, default_value_t = SUB_CONCURRENCY, value_name = "N")]
    pub sub_concurrency: usize,
    /// API credits, each call charged Zoho's price: Update Records 1 per 10 records (at least
    /// 1), COQL from v4 by LIMIT (2 above 200, 3 above 1000), any other call 1 (mass_update,
    /// Get Records, metadata, job polls). A call costing more than is left gets 429.
    #[arg(long)]
    pub daily_credits: Option<u64>,
    /// Mean injected latency per call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Latency varies uniformly by up to this much either side of the mean.
    #[arg(long, default_value_t = 0)]
    pub latency_spread_ms: u64,
    /// Share of calls answered 500 INTERNAL_ERROR (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub fail_500: f64,
    /// Share of calls dropped with no response before applying (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub drop_before: f64,
    /// Share of calls applied, then dropped with no response (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub drop_after: f64,
    /// Share of calls answered 200 with a body that is not JSON (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub garbage: f64,
    /// Fields per call for a module, as MODULE=N (repeatable).
    #[arg(long = "field-limit", value_name = "MODULE=N")]
    pub field_limit: Vec<String>,
    /// Also create the seed collection's NOT_APPROVED and RECORD_LOCKED records.
    #[arg(long)]
    pub seed_fixtures: bool,
    /// Records a scheduled (cvid) mass update job applies per step.
    #[arg(long, default_value_t = 100)]
    pub job_batch_size: usize,
    /// Milliseconds between a scheduled job's steps.
    #[arg(long, default_value_t = 10)]
    pub job_batch_interval_ms: u64,
    /// Answer `POST /oauth/v2/token` with a redirect to this URL (Location, verbatim).
    #[arg(long, value_name = "URL")]
    pub token_redirect: Option<String>,
    /// Status of the token endpoint's redirect (301, 302, 303, 307 or 308).
    #[arg(long, default_value_t = 307, value_name = "CODE")]
    pub token_redirect_status: u16,
    /// Answer every request to the record paths (mass_update, Update/Get Records, COQL) with a
    /// redirect to this URL.
    #[arg(long, value_name = "URL")]
    pub api_redirect: Option<String>,
    /// Status of the API's redirect (301, 302, 303, 307 or 308).
    #[arg(long, default_value_t = 307, value_name = "CODE")]
    pub api_redirect_status: u16,
    /// Error answers repeat the credentials the client sent (client secret, refresh token,
    /// Authorization header), as a hostile or buggy server would.
    #[arg(long)]
    pub echo_secrets: bool,
    /// Pairs of generated records that share one email address (for key look-ups that must
    /// notice an ambiguous email); at most (records - 2) / 2 pairs are made.
    #[arg(long, default_value_t = 0, value_name = "PAIRS")]
    pub duplicate_emails: usize,
    /// Share of generated records whose email is stored in mixed case (0..1), so look-ups must
    /// compare emails case-insensitively.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub mixed_case_emails: f64,
    /// A field whose values must be unique, as MODULE.FIELD (repeatable, e.g. Leads.Email):
    /// Update Records answers DUPLICATE_DATA for a value another record holds.
    #[arg(long = "unique-field", value_name = "MODULE.FIELD")]
    pub unique_field: Vec<String>,
    /// Milliseconds a Bulk Write job stays IN PROGRESS before it applies its rows.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub bulk_delay_ms: u64,
    /// The first N Bulk Write uploads answer 500 (nothing kept).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub bulk_fail_uploads: u32,
    /// The first N Bulk Write jobs end FAILED with no row applied.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub bulk_fail_jobs: u32,
    /// Every N-th row of a Bulk Write job's file is left Unprocessed (0: none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub bulk_unprocessed_every: usize,
    /// Print a sheet of the first N records this mock serves (with these --records, --seed
    /// and email flags) to stdout and exit, without serving: `id,Email,Lead_Status,City`,
    /// ready to edit and send with `massup run --csv` (or by Email with `--match-by Email`).
    #[arg(long, value_name = "N")]
    pub print_sheet: Option<usize>,
}

/// Statuses and cities the printed sheet cycles through (all valid for the mock's Leads).
const SHEET_STATUSES: [&str; 3] = ["Contacted", "Not Contacted", "Pre-Qualified"];
const SHEET_CITIES: [&str; 4] = ["Berlin", "Lyon", "Porto", "Köln"];

/// `--print-sheet N`: the first `n` records of `config` as a CSV to change them, each row
/// a record's id and email with a new status and city.
pub fn sample_sheet(config: &MockConfig, n: usize) -> anyhow::Result<String> {
    if n > config.records {
        bail!(
            "--print-sheet {n}: the mock serves {} records (--records); ask for at most that many",
            config.records
        );
    }
    let ids = config.record_ids();
    let emails = config.record_emails();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["id", "Email", "Lead_Status", "City"])?;
    for (i, (id, email)) in ids.iter().zip(&emails).take(n).enumerate() {
        out.write_record([
            id.as_str(),
            email.as_str(),
            SHEET_STATUSES[i % SHEET_STATUSES.len()],
            SHEET_CITIES[i % SHEET_CITIES.len()],
        ])?;
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

/// A redirect flag pair turned into a [`Redirect`], checking the status.
fn redirect(
    flag: &str,
    location: &Option<String>,
    status: u16,
) -> anyhow::Result<Option<Redirect>> {
    let Some(location) = location else {
        return Ok(None);
    };
    if ![301, 302, 303, 307, 308].contains(&status) {
        bail!("{flag}-status must be 301, 302, 303, 307 or 308, got {status}");
    }
    if location.trim().is_empty() || location.contains(['\r', '\n']) {
        bail!("{flag} must be a URL on one line, got {location:?}");
    }
    Ok(Some(Redirect {
        status,
        location: location.clone(),
    }))
}

impl MockServerArgs {
    pub fn to_config(&self) -> anyhow::Result<MockConfig> {
        let shares = [
            ("--locked", self.locked),
            ("--not-approved", self.not_approved),
            ("--fail-500", self.fail_500),
            ("--drop-before", self.drop_before),
            ("--drop-after", self.drop_after),
            ("--garbage", self.garbage),
            ("--mixed-case-emails", self.mixed_case_emails),
        ];
        for (flag, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                bail!("{flag} must be between 0 and 1, got {share}");
            }
        }
        let faults = self.fail_500 + self.drop_before + self.drop_after + self.garbage;
        if faults > 1.0 {
            bail!("--fail-500, --drop-before, --drop-after and --garbage add up to {faults}, more than 1");
        }
        let token_lifetime = match self.token_lifetime_secs {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
            Some(secs) => bail!("--token-lifetime-secs must be a positive number, got {secs}"),
        };
        if self.concurrency == Some(0) || self.rate == Some(0) {
            bail!("--rate and --concurrency must be at least 1 (leave them out for no limit)");
        }
        let mut field_limits = default_field_limits();
        for spec in &self.field_limit {
            let (module, n) = spec
                .split_once('=')
                .with_context(|| format!("--field-limit {spec:?}: expected MODULE=N"))?;
            let n: usize = n
                .trim()
                .parse()
                .with_context(|| format!("--field-limit {spec:?}: N must be a whole number"))?;
            if n == 0 {
                bail!("--field-limit {spec:?}: N must be at least 1");
            }
            field_limits.insert(module.trim().to_string(), n);
        }
        if self.job_batch_size == 0 {
            bail!("--job-batch-size must be at least 1");
        }
        let mut unique_fields = Vec::new();
        for spec in &self.unique_field {
            let Some((module, field)) = spec
                .split_once('.')
                .map(|(m, f)| (m.trim(), f.trim()))
                .filter(|(m, f)| !m.is_empty() && !f.is_empty())
            else {
                bail!("--unique-field {spec:?}: expected MODULE.FIELD, e.g. Leads.Email");
            };
            unique_fields.push((module.to_string(), field.to_string()));
        }
        let config = MockConfig {
            records: self.records,
            seed: self.seed,
            token: self.token.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
            token_lifetime,
            max_tokens_per_10min: self.max_tokens_per_10min,
            locked_fraction: self.locked,
            unlock_after: self.unlock_after,
            not_approved_fraction: self.not_approved,
            approve_after: self.approve_after,
            rate_per_sec: self.rate,
            max_concurrency: self.concurrency,
            sub_concurrency: (self.sub_concurrency > 0).then_some(self.sub_concurrency),
            daily_credits: self.daily_credits,
            latency_mean: Duration::from_millis(self.latency_ms),
            latency_spread: Duration::from_millis(self.latency_spread_ms),
            fail_500_rate: self.fail_500,
            drop_before_rate: self.drop_before,
            drop_after_rate: self.drop_after,
            garbage_rate: self.garbage,
            field_limits,
            extra_records: Vec::new(),
            job_batch_size: self.job_batch_size,
            job_batch_interval: Duration::from_millis(self.job_batch_interval_ms),
            token_redirect: redirect(
                "--token-redirect",
                &self.token_redirect,
                self.token_redirect_status,
            )?,
            api_redirect: redirect(
                "--api-redirect",
                &self.api_redirect,
                self.api_redirect_status,
            )?,
            echo_secrets: self.echo_secrets,
            duplicate_emails: self.duplicate_emails,
            mixed_case_emails: self.mixed_case_emails,
            unique_fields,
            bulk_delay: Duration::from_millis(self.bulk_delay_ms),
            bulk_fail_uploads: self.bulk_fail_uploads,
            bulk_upload_latency: Duration::ZERO,
            bulk_fail_jobs: self.bulk_fail_jobs,
            bulk_unprocessed_every: self.bulk_unprocessed_every,
            bulk_max_in_progress: None,
        };
        Ok(if self.seed_fixtures {
            config.with_seed_fixture_records()
        } else {
            config
        })
    }
}

/// Runs the mock until `shutdown` completes. The first line on stdout is exactly
/// `listening on http://127.0.0.1:PORT`, flushed, so a parent process can read the port.
pub async fn run_cli(
    args: MockServerArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = MockServer::start_on(config, addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    {
        // Scoped so the (non-Send) stdout lock is gone before the await below.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.url())?;
        stdout.flush()?;
    }
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: MockServerArgs,
    }

    fn parse(argv: &[&str]) -> anyhow::Result<MockConfig> {
        let mut full = vec!["mock"];
        full.extend_from_slice(argv);
        Wrapper::try_parse_from(full)?.args.to_config()
    }

    #[test]
    fn flags_become_a_config() {
        let config = parse(&[
            "--field-limit",
            "Leads=2",
            "--field-limit",
            "Custom=4",
            "--token-lifetime-secs",
            "1.5",
            "--drop-after",
            "0.1",
            "--seed-fixtures",
            "--token-redirect",
            "http://localhost:9/oauth/v2/token",
            "--api-redirect",
            "http://127.0.0.1:9/x",
            "--api-redirect-status",
            "308",
            "--echo-secrets",
            "--job-batch-size",
            "7",
            "--duplicate-emails",
            "3",
            "--mixed-case-emails",
            "0.25",
            "--unique-field",
            "Leads.Email",
            "--unique-field",
            "Contacts.Secondary_Email",
        ])
        .expect("valid flags");
        assert_eq!(config.duplicate_emails, 3);
        assert_eq!(config.mixed_case_emails, 0.25);
        assert!(config.is_unique("Leads", "Email"));
        assert!(config.is_unique("Contacts", "Secondary_Email"));
        assert!(!config.is_unique("Contacts", "Email"));
        assert_eq!(
            config.token_redirect,
            Some(Redirect::temporary("http://localhost:9/oauth/v2/token"))
        );
        assert_eq!(
            config.api_redirect,
            Some(Redirect::permanent("http://127.0.0.1:9/x"))
        );
        assert!(config.echo_secrets);
        assert_eq!(config.job_batch_size, 7);
        assert_eq!(config.field_limit("Leads"), 2);
        assert_eq!(config.field_limit("Custom"), 4);
        assert_eq!(config.field_limit("Deals"), 3);
        assert_eq!(config.token_lifetime, Some(Duration::from_millis(1500)));
        assert_eq!(config.drop_after_rate, 0.1);
        assert_eq!(config.extra_records.len(), 2);
        assert_eq!(config.sub_concurrency, Some(10));
        let config = parse(&["--sub-concurrency", "3"]).expect("valid flags");
        assert_eq!(config.sub_concurrency, Some(3));
        let config = parse(&["--sub-concurrency", "0"]).expect("valid flags");
        assert_eq!(config.sub_concurrency, None);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--field-limit", "Leads"]).is_err());
        assert!(parse(&["--garbage", "1.5"]).is_err());
        assert!(parse(&["--fail-500", "0.6", "--garbage", "0.6"]).is_err());
        assert!(parse(&["--token-lifetime-secs", "-1"]).is_err());
        assert!(parse(&["--api-redirect", "http://x", "--api-redirect-status", "200"]).is_err());
        assert!(parse(&["--job-batch-size", "0"]).is_err());
        assert!(parse(&["--mixed-case-emails", "2"]).is_err());
        assert!(parse(&["--unique-field", "Email"]).is_err());
        assert!(parse(&["--unique-field", "Leads."]).is_err());
        // A status without a URL redirects nothing.
        assert_eq!(
            parse(&["--token-redirect-status", "308"])
                .expect("valid")
                .token_redirect,
            None
        );
    }
}
