//! `plan --diff`: a dry run against the org's current values. For every planned write it
//! tells whether the record would change or holds the value already, per field, with a
//! few samples of before -> after. Pure: the command reads the values.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::fields::same_value;

/// Samples of before -> after kept per field.
pub const SAMPLES: usize = 3;

/// One field's count of changes.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FieldDiff {
    pub field: String,
    /// Records whose value would change.
    pub changes: u64,
    /// Records that hold the value already (`--skip-unchanged` leaves them out).
    pub unchanged: u64,
    pub samples: Vec<DiffSample>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DiffSample {
    pub record_id: String,
    pub before: Value,
    pub after: Value,
}

/// What the planned writes would do.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PlanDiff {
    pub fields: Vec<FieldDiff>,
    /// Records the plan writes that Zoho did not return (deleted, or another module's).
    pub missing_records: u64,
    /// Get Records calls the comparison took.
    pub calls: u64,
    #[serde(skip)]
    by_field: BTreeMap<String, FieldDiff>,
}

impl PlanDiff {
    /// One planned write: `record` would get `after` in `field`; `before` is what it holds
    /// (None: the record was not returned).
    pub fn add(&mut self, record: i64, field: &str, before: Option<&Value>, after: &Value) {
        let Some(before) = before else {
            self.missing_records += 1;
            return;
        };
        let diff = self
            .by_field
            .entry(field.to_string())
            .or_insert_with(|| FieldDiff {
                field: field.to_string(),
                ..FieldDiff::default()
            });
        if same_value(before, after) {
            diff.unchanged += 1;
        } else {
            diff.changes += 1;
            if diff.samples.len() < SAMPLES {
                diff.samples.push(DiffSample {
                    record_id: record.to_string(),
                    before: before.clone(),
                    after: after.clone(),
                });
            }
        }
    }

    /// The counts, one entry per field in name order.
    pub fn finish(mut self, calls: u64) -> PlanDiff {
        self.fields = std::mem::take(&mut self.by_field).into_values().collect();
        self.calls = calls;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_are_counted_as_changes_or_values_held_already() {
        let mut diff = PlanDiff::default();
        diff.add(1, "City", Some(&json!("Berlin")), &json!("Oslo"));
        diff.add(2, "City", Some(&json!("Oslo")), &json!("Oslo"));
        diff.add(3, "City", Some(&Value::Null), &json!("Oslo"));
        diff.add(4, "City", None, &json!("Oslo"));
        let diff = diff.finish(1);
        assert_eq!(diff.fields.len(), 1);
        let city = &diff.fields[0];
        assert_eq!((city.changes, city.unchanged), (2, 1));
        assert_eq!(city.samples[0].before, json!("Berlin"));
        assert_eq!(diff.missing_records, 1);
    }
}
