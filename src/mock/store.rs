//! The mock's records: a Vec indexed by numeric id, so a 500-id call costs 500 hash look-ups
//! under one short lock and nothing more.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::{MockConfig, SeedState};

/// The two ids of the seed collection's success example: always the first ids of the store so
/// the recorded request replays as it was captured.
pub const SEED_SUCCESS_IDS: [&str; 2] = ["738964000002131001", "738964000002130131"];
/// Their creation times in the seed, so replayed details match it byte for byte.
const SEED_CREATED: [&str; 2] = ["2021-05-07T06:23:10+00:00", "2021-05-07T06:38:15+00:00"];
/// Salt so the id sequence and the state draws are independent streams of one seed.
const ID_SALT: u64 = 0x1d50_f1d5;
const STATE_SALT: u64 = 0x57a7e;
const EMAIL_SALT: u64 = 0xe3a1_1ca5e;

/// Whether a record accepts updates now, and if not how many refusals it has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { attempts: u32 },
    NotApproved { attempts: u32 },
}

#[derive(Debug)]
pub struct Record {
    pub id: String,
    pub created_time: String,
    /// When an update was last applied (None: never, so the creation time stands).
    pub modified_time: Option<String>,
    /// The email the record was generated with, its `Email` until an update writes one.
    pub email: String,
    /// Field values in first-written order. A short Vec, not a map: records hold a handful of
    /// fields, and a linear scan beats hashing the name on every one of 500 applies per call.
    pub fields: Vec<(String, Value)>,
    pub applied: u64,
    pub gate: Gate,
}

/// All records of the mock. The mock has one record space for every module: ids are unique
/// across modules in Zoho too, and the tests care about ids, not module membership.
#[derive(Debug)]
pub struct Store {
    pub records: Vec<Record>,
    /// Numeric id -> position. FxHash, not SipHash: the look-up runs 500 times per call and
    /// was the mock's hottest spot, and loopback-only ids are not hostile keys.
    index: rustc_hash::FxHashMap<u64, usize>,
    /// Ids Insert or Upsert Records created, in order (for the ledger).
    pub created: Vec<String>,
    /// Ids Delete Records deleted, in order (for the ledger).
    pub deleted: Vec<String>,
    /// The next id a created record takes: above every generated one.
    next_id: u64,
}

/// The emails of the generated records, in store order: `lead{index:05}.s{seed}@example.com`,
/// with `config.duplicate_emails` pairs sharing an address (record `records - 1 - k` takes
/// the address of record `2 + k`) and a `config.mixed_case_emails` share of them written in
/// mixed case (`Lead00042.s1@EXAMPLE.COM`), drawn from the seed.
pub fn generate_emails(config: &MockConfig) -> Vec<String> {
    let count = config.records;
    let mut emails: Vec<String> = (0..count)
        .map(|i| format!("lead{i:05}.s{}@example.com", config.seed))
        .collect();
    // The seed's two records keep their own addresses; each pair needs two other records.
    let pairs = config.duplicate_emails.min(count.saturating_sub(2) / 2);
    for k in 0..pairs {
        emails[count - 1 - k] = emails[2 + k].clone();
    }
    let mut rng = StdRng::seed_from_u64(config.seed ^ EMAIL_SALT);
    for email in &mut emails {
        let roll: f64 = rng.random();
        if roll < config.mixed_case_emails {
            *email = mixed_case(email);
        }
    }
    emails
}

/// `lead00042.s1@example.com` -> `Lead00042.s1@EXAMPLE.COM`: the same address to a
/// case-insensitive comparison, a different string to an exact one.
fn mixed_case(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let mut chars = local.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    format!("{first}{}@{}", chars.as_str(), domain.to_uppercase())
}

/// The deterministic ids of the generated records (without `extra_records`).
pub fn generate_ids(count: usize, seed: u64) -> Vec<String> {
    let mut ids: Vec<String> = SEED_SUCCESS_IDS
        .iter()
        .take(count)
        .map(|s| s.to_string())
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ ID_SALT);
    // Start above both seed ids so generated ids never collide with them; gaps make the ids
    // look like a real org's sparse sequence.
    let mut next: u64 = 738_964_000_002_140_000;
    while ids.len() < count {
        next += rng.random_range(1..=997);
        ids.push(next.to_string());
    }
    ids
}

impl Store {
    pub fn new(config: &MockConfig) -> Store {
        let mut rng = StdRng::seed_from_u64(config.seed ^ STATE_SALT);
        let mut records = Vec::with_capacity(config.records + config.extra_records.len());
        let emails = generate_emails(config);
        for ((i, id), email) in generate_ids(config.records, config.seed)
            .into_iter()
            .enumerate()
            .zip(emails)
        {
            // Draw both numbers for every record so one fraction does not shift the other's
            // choice of records.
            let locked_roll: f64 = rng.random();
            let approval_roll: f64 = rng.random();
            let created_offset: i64 = rng.random_range(0..86_400 * 120);
            let gate = if locked_roll < config.locked_fraction {
                Gate::Locked { attempts: 0 }
            } else if approval_roll < config.not_approved_fraction {
                Gate::NotApproved { attempts: 0 }
            } else {
                Gate::Open
            };
            let created_time = match SEED_CREATED.get(i) {
                Some(t) => t.to_string(),
                None => format_time(1_609_459_200 + created_offset),
            };
            records.push(Record {
                id,
                created_time,
                modified_time: None,
                email,
                fields: Vec::new(),
                applied: 0,
                gate,
            });
        }
        for (i, (id, state)) in config.extra_records.iter().enumerate() {
            let gate = match state {
                SeedState::Open => Gate::Open,
                SeedState::Locked => Gate::Locked { attempts: 0 },
                SeedState::NotApproved => Gate::NotApproved { attempts: 0 },
            };
            records.push(Record {
                id: id.clone(),
                created_time: format_time(1_609_459_200),
                modified_time: None,
                email: format!("extra{i:03}.s{}@example.com", config.seed),
                fields: Vec::new(),
                applied: 0,
                gate,
            });
        }
        // Ids that are not numbers could never be asked for: the look-up parses first. A
        // duplicate extra id resolves to its last copy.
        let index = records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.id.parse::<u64>().ok().map(|n| (n, i)))
            .collect::<rustc_hash::FxHashMap<u64, usize>>();
        // Created records take ids from a range of their own, above every generated and
        // extra id (ids stay unique, and sort after the generated ones in a listing).
        let next_id = index
            .keys()
            .copied()
            .max()
            .unwrap_or(738_964_000_002_140_000)
            .max(738_964_000_900_000_000)
            + 1;
        Store {
            records,
            index,
            created: Vec::new(),
            deleted: Vec::new(),
            next_id,
        }
    }

    /// Creates a record holding `fields` at time `now`; returns its position.
    pub fn create(&mut self, fields: Vec<(String, Value)>, now: &str) -> usize {
        let id = self.next_id;
        self.next_id += 7;
        let email = fields
            .iter()
            .find(|(n, _)| n == "Email")
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_string();
        self.records.push(Record {
            id: id.to_string(),
            created_time: now.to_string(),
            modified_time: None,
            email,
            fields,
            // Its creation is its one write so far.
            applied: 1,
            gate: Gate::Open,
        });
        let at = self.records.len() - 1;
        self.index.insert(id, at);
        self.created.push(id.to_string());
        at
    }

    /// Deletes the record `id` names; false when none does.
    pub fn delete(&mut self, id: &str) -> bool {
        let Some(at) = self.find(id) else {
            return false;
        };
        let gone = self.records.swap_remove(at);
        if let Ok(n) = gone.id.parse::<u64>() {
            self.index.remove(&n);
        }
        // The record that took its place keeps its index right.
        if let Some(moved) = self.records.get(at) {
            if let Ok(n) = moved.id.parse::<u64>() {
                self.index.insert(n, at);
            }
        }
        self.deleted.push(gone.id);
        true
    }

    /// The positions of the records other than `except` whose `field` currently holds `value`
    /// (strings compared case-insensitively when `fold_case`), in store order.
    pub fn holders(
        &self,
        field: &str,
        value: &Value,
        fold_case: bool,
        except: usize,
    ) -> Vec<usize> {
        self.records
            .iter()
            .enumerate()
            .filter(|(i, r)| *i != except && same_value(&r.value(field), value, fold_case))
            .map(|(i, _)| i)
            .collect()
    }

    /// The position of a record, if the id names one.
    pub fn find(&self, id: &str) -> Option<usize> {
        // A leading '+' or zero would parse to a real id but is not the same id string.
        if id.starts_with(['+', '0']) {
            return None;
        }
        let n: u64 = id.parse().ok()?;
        self.index.get(&n).copied()
    }
}

/// What happened to one id when the store was asked to take an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Applied,
    Locked,
    NotApproved,
}

impl Record {
    /// Counts one attempt against a closed gate and opens it once it has refused
    /// `unlock_after` / `approve_after` times (0 keeps it closed for good).
    pub fn try_pass(&mut self, unlock_after: u32, approve_after: u32) -> Attempt {
        match &mut self.gate {
            Gate::Open => Attempt::Applied,
            Gate::Locked { attempts } => {
                *attempts += 1;
                if unlock_after > 0 && *attempts >= unlock_after {
                    self.gate = Gate::Open;
                }
                Attempt::Locked
            }
            Gate::NotApproved { attempts } => {
                *attempts += 1;
                if approve_after > 0 && *attempts >= approve_after {
                    self.gate = Gate::Open;
                }
                Attempt::NotApproved
            }
        }
    }

    /// The field's current value as a read answers it: what an update wrote, else what the
    /// record was created with (`id`, `Email`, `Created_Time`, `Modified_Time`), else null.
    pub fn value(&self, field: &str) -> Value {
        if let Some((_, value)) = self.fields.iter().find(|(n, _)| n == field) {
            return value.clone();
        }
        match field {
            "id" => Value::String(self.id.clone()),
            "Email" => Value::String(self.email.clone()),
            "Created_Time" => Value::String(self.created_time.clone()),
            "Modified_Time" => Value::String(
                self.modified_time
                    .clone()
                    .unwrap_or_else(|| self.created_time.clone()),
            ),
            _ => Value::Null,
        }
    }

    /// Writes the values of one call into the record at time `modified`. A multi-select is
    /// appended to unless `over_write` is set, as Zoho documents for mass update.
    pub fn apply(&mut self, values: &[(&String, &Value, bool)], over_write: bool, modified: &str) {
        for (name, value, multiselect) in values {
            let Some(slot) = self.fields.iter_mut().find(|(n, _)| n == *name) else {
                self.fields.push(((*name).clone(), (*value).clone()));
                continue;
            };
            match (&mut slot.1, value) {
                (Value::Array(current), Value::Array(new)) if *multiselect && !over_write => {
                    for item in new {
                        if !current.contains(item) {
                            current.push(item.clone());
                        }
                    }
                }
                (current, _) => *current = (*value).clone(),
            }
        }
        self.applied += 1;
        self.modified_time = Some(modified.to_string());
    }
}

/// Whether a stored value equals a given one: strings case-insensitively when `fold_case`,
/// lookups by their ids, anything else exactly. Null equals nothing.
pub fn same_value(stored: &Value, given: &Value, fold_case: bool) -> bool {
    match (stored, given) {
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::String(a), Value::String(b)) if fold_case => {
            a == b || a.to_lowercase() == b.to_lowercase()
        }
        (Value::Object(a), Value::Object(b)) => match (a.get("id"), b.get("id")) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => stored == given,
    }
}

/// Zoho's timestamp shape, always in UTC: "2021-05-12T07:26:48+00:00".
pub fn format_time(unix_secs: i64) -> String {
    match chrono::DateTime::from_timestamp(unix_secs, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        None => "1970-01-01T00:00:00+00:00".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_start_with_the_seed_ids() {
        let a = generate_ids(50, 7);
        assert_eq!(a, generate_ids(50, 7));
        assert_ne!(a, generate_ids(50, 8));
        assert_eq!(&a[..2], &SEED_SUCCESS_IDS);
        let unique: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(unique.len(), 50);
        assert!(a.iter().all(|id| (18..=19).contains(&id.len())));
    }

    #[test]
    fn a_locked_record_opens_after_k_refusals() {
        let mut r = Record {
            id: "1".into(),
            created_time: String::new(),
            modified_time: None,
            email: String::new(),
            fields: Vec::new(),
            applied: 0,
            gate: Gate::Locked { attempts: 0 },
        };
        assert_eq!(r.try_pass(2, 0), Attempt::Locked);
        assert_eq!(r.try_pass(2, 0), Attempt::Locked);
        assert_eq!(r.try_pass(2, 0), Attempt::Applied);
    }

    #[test]
    fn emails_are_deterministic_with_pairs_and_mixed_case() {
        let config = MockConfig {
            records: 10,
            duplicate_emails: 2,
            mixed_case_emails: 0.5,
            ..MockConfig::default()
        };
        let emails = generate_emails(&config);
        assert_eq!(emails, generate_emails(&config));
        assert!(emails[9].eq_ignore_ascii_case(&emails[2]));
        assert!(emails[8].eq_ignore_ascii_case(&emails[3]));
        let lower: std::collections::HashSet<String> =
            emails.iter().map(|e| e.to_ascii_lowercase()).collect();
        assert_eq!(lower.len(), 8);
        assert!(emails
            .iter()
            .any(|e| e.chars().any(|c| c.is_ascii_uppercase())));
        assert!(emails
            .iter()
            .any(|e| !e.chars().any(|c| c.is_ascii_uppercase())));
        assert_eq!(
            mixed_case("lead00042.s1@example.com"),
            "Lead00042.s1@EXAMPLE.COM"
        );
        // Asking for more pairs than the records allow takes what fits.
        let tiny = MockConfig {
            records: 5,
            duplicate_emails: 9,
            ..MockConfig::default()
        };
        let emails = generate_emails(&tiny);
        assert_eq!(emails[4], emails[2]);
        assert_ne!(emails[3], emails[2]);
    }
}
