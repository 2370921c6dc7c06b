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
        for (i, id) in generate_ids(config.records, config.seed)
            .into_iter()
            .enumerate()
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
                fields: Vec::new(),
                applied: 0,
                gate,
            });
        }
        for (id, state) in &config.extra_records {
            let gate = match state {
                SeedState::Open => Gate::Open,
                SeedState::Locked => Gate::Locked { attempts: 0 },
                SeedState::NotApproved => Gate::NotApproved { attempts: 0 },
            };
            records.push(Record {
                id: id.clone(),
                created_time: format_time(1_609_459_200),
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
            .collect();
        Store { records, index }
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

    /// Writes the values of one call into the record. A multi-select is appended to unless
    /// `over_write` is set, as Zoho documents.
    pub fn apply(&mut self, values: &[(&String, &Value, bool)], over_write: bool) {
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
            fields: Vec::new(),
            applied: 0,
            gate: Gate::Locked { attempts: 0 },
        };
        assert_eq!(r.try_pass(2, 0), Attempt::Locked);
        assert_eq!(r.try_pass(2, 0), Attempt::Locked);
        assert_eq!(r.try_pass(2, 0), Attempt::Applied);
    }
}
