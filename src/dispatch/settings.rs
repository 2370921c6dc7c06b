//! How a run is sent: concurrency, rate, attempts, timeouts, budgets. Validated once when
//! flags are resolved (see `commands::send`), stored with the run for `resume`.
use std::time::Duration;

/// A rate: `count` calls per `per`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `10/s`, `600/min`, `5000/h`, or a bare number meaning per second.
    fn from_str(text: &str) -> Result<Rate, String> {
        let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{text:?}: the count must be a whole number above 0"))?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use s, min or h)"
                ))
            }
        };
        Ok(Rate { count, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "min",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// `--rate`: a rate, or `none` for no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateChoice {
    Unlimited,
    Limit(Rate),
}

impl std::str::FromStr for RateChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<RateChoice, String> {
        if text.eq_ignore_ascii_case("none") {
            Ok(RateChoice::Unlimited)
        } else {
            text.parse().map(RateChoice::Limit)
        }
    }
}

/// How a run is sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct DispatchSettings {
    pub concurrency: usize,
    pub rate: Option<Rate>,
    /// HTTP attempts per chunk within one run before it is left pending.
    pub max_attempts: u32,
    pub timeout: Duration,
    /// Stop (resumable) after this many HTTP calls.
    pub max_calls: Option<u64>,
    /// Stop (resumable) once Zoho reports fewer credits left than this.
    pub min_credits: Option<u64>,
    /// Stop (resumable) before the run's credits would pass this (retries count).
    #[serde(default)]
    pub max_credits: Option<u64>,
    /// First backoff step; each retry doubles it up to `backoff_max`, with full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub over_write: bool,
    /// What Update Records runs (None: Zoho's default; empty: nothing). From the plan.
    #[serde(default)]
    pub trigger: Option<Vec<String>>,
    /// Read each chunk's records' values before its first call and keep them (undo). From
    /// the plan.
    #[serde(default)]
    pub snapshot: bool,
    /// Leave out of the call every record that already holds the values (read by the
    /// snapshot): no write, no workflow. From the plan.
    #[serde(default)]
    pub skip_unchanged: bool,
    /// A Bulk Write job's first status poll comes this long after its creation; each later
    /// one half as long again after the last, up to `bulk_poll_max`.
    #[serde(default = "default_bulk_poll")]
    pub bulk_poll: Duration,
    #[serde(default = "default_bulk_poll_max")]
    pub bulk_poll_max: Duration,
    /// How long one invocation waits for a Bulk Write job before it stops, resumable (the
    /// job goes on at Zoho; `resume` polls it again).
    #[serde(default = "default_bulk_wait")]
    pub bulk_wait: Duration,
    /// Bulk Write jobs of this run in progress at once (from upload to result): Zoho
    /// limits the jobs an org has in progress; a job beyond it waits its turn.
    #[serde(default = "default_bulk_jobs")]
    pub bulk_jobs: usize,
}

fn default_bulk_jobs() -> usize {
    3
}

fn default_bulk_poll() -> Duration {
    Duration::from_secs(2)
}

fn default_bulk_poll_max() -> Duration {
    Duration::from_secs(30)
}

fn default_bulk_wait() -> Duration {
    Duration::from_secs(2 * 3600)
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            concurrency: 10,
            rate: None,
            max_attempts: 5,
            timeout: Duration::from_secs(60),
            max_calls: None,
            min_credits: None,
            max_credits: None,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            over_write: false,
            trigger: None,
            snapshot: false,
            skip_unchanged: false,
            bulk_poll: default_bulk_poll(),
            bulk_poll_max: default_bulk_poll_max(),
            bulk_wait: default_bulk_wait(),
            bulk_jobs: default_bulk_jobs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "10/s".parse::<Rate>().unwrap(),
            Rate {
                count: 10,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(
            "600/min".parse::<Rate>().unwrap().per,
            Duration::from_secs(60)
        );
        assert_eq!("5".parse::<Rate>().unwrap().count, 5);
        assert!("0/s".parse::<Rate>().is_err());
        assert!("10/day".parse::<Rate>().is_err());
        assert_eq!("600/min".parse::<Rate>().unwrap().to_string(), "600/min");
    }
}
