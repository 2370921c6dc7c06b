//! Flags several commands share (connection, pace, `--results`), turned into the typed
//! values of [`crate::app`] at the command's edge.
use crate::app::send::{Connection, Pace};
use crate::dispatch::RateChoice;
use crate::store::RunInfo;

/// `--results DIR`: the files a send leaves behind.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResultsFlag {
    /// When the send ends, write run-ID-success.csv (rows that succeeded) and
    /// run-ID-errors.csv (every other row, with its code and message) into this folder, one
    /// line per input row with its input line number, like Data Loader's files.
    #[arg(long, value_name = "DIR")]
    pub results: Option<std::path::PathBuf>,
}

impl ResultsFlag {
    /// Writes the files if asked for (see [`crate::app::send::write_results`]).
    pub fn write(&self, db: &std::path::Path, run: &RunInfo) -> serde_json::Value {
        crate::app::send::write_results(self.results.as_deref(), db, run)
    }
}

/// Where to send calls.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectionFlags {
    /// API base URL, e.g. https://www.zohoapis.eu [default: the token answer's api_domain, else the data centre's]
    #[arg(long, value_name = "URL")]
    pub api_domain: Option<String>,
    /// Data centre: us, eu, in, au, jp, cn, ca, sa [default: us]
    #[arg(long, value_name = "DC")]
    pub dc: Option<String>,
    /// Accounts server for token refresh [default: the data centre's]
    #[arg(long, value_name = "URL")]
    pub accounts_url: Option<String>,
    /// CRM API version in the URL path.
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,
}

/// How fast and how hard to send.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DispatchFlags {
    /// Calls per second/minute/hour shared by all workers, e.g. 10/s or 600/min; `none` for no limit [default: none]
    #[arg(long, value_name = "RATE", value_parser = str::parse::<RateChoice>)]
    pub rate: Option<RateChoice>,
    /// Calls in flight at once (Zoho allows 5 to 25 per org by edition) [default: 10]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Seconds before a call without an answer is given up (and retried) [default: 60]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// HTTP attempts per chunk in one invocation before it is left pending [default: 5]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Stop cleanly (resumable) after this many calls.
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,
    /// Stop cleanly (resumable) before the org's API credits left (as Zoho reports them)
    /// would fall below this, counting the next call's price and the calls in flight.
    #[arg(long, value_name = "N")]
    pub min_credits: Option<u64>,
    /// A budget for the run in API credits (every call counted: writes, retries, snapshot
    /// reads, lookups): refuse a plan estimated above it, and stop cleanly (resumable)
    /// before a call would cross it. `resume --max-credits` with a higher budget goes on.
    #[arg(long, value_name = "N")]
    pub max_credits: Option<u64>,
    /// If another process is sending this run, wait for it to end instead of exiting (4).
    #[arg(long)]
    pub wait: bool,
    /// First backoff step in milliseconds (doubles per retry, full jitter) [default: 500]
    #[arg(long, value_name = "MS", hide = true)]
    pub backoff_ms: Option<u64>,
}

impl ConnectionFlags {
    pub fn choice(&self) -> Connection {
        Connection {
            api_domain: self.api_domain.clone(),
            dc: self.dc.clone(),
            accounts_url: self.accounts_url.clone(),
            api_version: self.api_version.clone(),
        }
    }
}

impl DispatchFlags {
    pub fn choice(&self) -> Pace {
        Pace {
            rate: self.rate,
            concurrency: self.concurrency,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            max_calls: self.max_calls,
            min_credits: self.min_credits,
            max_credits: self.max_credits,
            wait: self.wait,
            backoff_ms: self.backoff_ms,
        }
    }
}
