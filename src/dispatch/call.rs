//! Kinds of call. A kind owns how its request body is built and how its answer is read;
//! the feeder, workers, pacing and writer are the same for every kind. Today there is one,
//! `mass_update` (one value set for up to 500 ids); Update Records is the next.
use rustc_hash::FxHashMap;

use super::interpret::{interpret, Interpretation};
use crate::api::{bodies, Exchange};
use crate::store::chunks::ClaimedChunk;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `POST .../{module}/actions/mass_update`: `data` holds the one value set, `ids` the
    /// records (as strings of digits, as the seed collection sends them).
    MassUpdate,
}

impl CallKind {
    /// The request body for `payload` (the group's value set, a JSON object) and `ids`.
    pub fn body(self, payload: &str, over_write: bool, ids: &[i64]) -> String {
        match self {
            CallKind::MassUpdate => bodies::mass_update(payload, over_write, ids),
        }
    }

    /// What an exchange means for the chunk's items (updated in place) and for the worker.
    /// `index` maps a record id to its item; `can_refresh` says whether a refused token can
    /// be replaced.
    pub fn interpret(
        self,
        exchange: &Exchange,
        chunk: &mut ClaimedChunk,
        index: &FxHashMap<i64, usize>,
        can_refresh: bool,
    ) -> Interpretation {
        match self {
            CallKind::MassUpdate => interpret(exchange, chunk, index, can_refresh),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_zoho_shaped() {
        let body = CallKind::MassUpdate.body(r#"{"Lead_Status":"Contacted"}"#, true, &[1, 22]);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"Lead_Status": "Contacted"}], "over_write": true, "ids": ["1", "22"]})
        );
    }
}
