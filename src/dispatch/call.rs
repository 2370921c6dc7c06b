//! Kinds of call. A kind owns how its request body is built and how its answer is read;
//! the feeder, workers, pacing and writer are the same for every kind: `mass_update` (one
//! value set for up to 500 ids) and Update Records (up to 100 records, each its own
//! values).
use rustc_hash::FxHashMap;

use super::interpret::{interpret, interpret_in_order, Interpretation};
use super::settings::DispatchSettings;
use super::Endpoint;
use crate::api::{bodies, Exchange};
use crate::store::chunks::{ChunkKind, ClaimedChunk};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `POST .../{module}/actions/mass_update`: `data` holds the one value set, `ids` the
    /// records (as strings of digits, as the seed collection sends them).
    MassUpdate,
    /// `PUT .../{module}`: `data` holds one object per record, its `id` and its own values;
    /// the answer has one entry per record, in request order.
    UpdateRecords,
}

impl CallKind {
    pub fn of(kind: ChunkKind) -> CallKind {
        match kind {
            ChunkKind::MassUpdate => CallKind::MassUpdate,
            ChunkKind::UpdateRecords => CallKind::UpdateRecords,
        }
    }

    /// The kind's name in logs, reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            CallKind::MassUpdate => "mass_update",
            CallKind::UpdateRecords => "update_records",
        }
    }

    /// The request body for the items `sent` (indices into the chunk's members).
    pub fn body(self, chunk: &ClaimedChunk, sent: &[usize], settings: &DispatchSettings) -> String {
        let ids: Vec<i64> = sent.iter().map(|&i| chunk.members[i].record_id).collect();
        match self {
            CallKind::MassUpdate => bodies::mass_update(&chunk.payload, settings.over_write, &ids),
            CallKind::UpdateRecords => {
                let objects: Vec<&str> = sent
                    .iter()
                    .map(|&i| {
                        chunk
                            .payloads
                            .as_ref()
                            .and_then(|p| p.get(i))
                            .map_or("{}", String::as_str)
                    })
                    .collect();
                bodies::update_records(&ids, &objects, settings.trigger.as_deref())
            }
        }
    }

    /// The URL and method of this kind of call.
    pub fn target(self, endpoint: &Endpoint) -> (reqwest::Method, &str) {
        match self {
            CallKind::MassUpdate => (reqwest::Method::POST, endpoint.mass_update_url.as_str()),
            CallKind::UpdateRecords => (reqwest::Method::PUT, endpoint.records_url()),
        }
    }

    /// What an exchange means for the chunk's items (updated in place) and for the worker.
    /// `sent` are the items the call carried, in request order; `index` maps a record id
    /// to its item; `can_refresh` says whether a refused token can be replaced.
    pub fn interpret(
        self,
        exchange: &Exchange,
        chunk: &mut ClaimedChunk,
        sent: &[usize],
        index: &FxHashMap<i64, usize>,
        can_refresh: bool,
    ) -> Interpretation {
        if self == CallKind::UpdateRecords {
            if let Some(read) = interpret_in_order(exchange, chunk, sent) {
                return read;
            }
        }
        interpret(exchange, chunk, index, can_refresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Member;

    #[test]
    fn request_bodies_are_zoho_shaped() {
        let members = |ids: &[i64]| {
            ids.iter()
                .map(|&record_id| Member {
                    row_no: 0,
                    record_id,
                })
                .collect::<Vec<_>>()
        };
        let chunk = ClaimedChunk {
            id: 1,
            kind: ChunkKind::MassUpdate,
            payload: r#"{"Lead_Status":"Contacted"}"#.into(),
            payloads: None,
            members: members(&[1, 22]),
            outcomes: vec![0; 2],
            details: Default::default(),
            snapshotted: false,
        };
        let settings = DispatchSettings {
            over_write: true,
            ..DispatchSettings::default()
        };
        let body = CallKind::MassUpdate.body(&chunk, &[0, 1], &settings);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"Lead_Status": "Contacted"}], "over_write": true, "ids": ["1", "22"]})
        );
        let chunk = ClaimedChunk {
            kind: ChunkKind::UpdateRecords,
            payload: "{}".into(),
            payloads: Some(vec![
                r#"{"Email":"a@x.io"}"#.into(),
                r#"{"City":"Rome"}"#.into(),
            ]),
            ..chunk
        };
        let settings = DispatchSettings {
            trigger: Some(vec![]),
            ..DispatchSettings::default()
        };
        // Only the items sent, in the order sent.
        let body = CallKind::UpdateRecords.body(&chunk, &[1], &settings);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"id": "22", "City": "Rome"}], "trigger": []})
        );
    }
}
