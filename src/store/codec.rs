//! The packed columns of a chunk: its members (row and record of each item), one state byte
//! per item, and the per-item answers that differ from the chunk's. Items are packed rather
//! than stored one SQL row each because per-item rows capped planning at ~90k rows/s.
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::outcome::Member;

/// Bytes of SHA-256 kept as a checksum: 128 bits find any damage a disk does with
/// certainty for every purpose here (this guards against damage, not against someone who
/// can write the file, who could rewrite the checksum too).
const CHECKSUM_BYTES: usize = 16;

/// The checksum of what a chunk sends (migration 0008): its packed members and, for
/// Update Records, its members' payloads, each length-prefixed so that no two different
/// pairs hash alike. SHA-256 because it is in the tree already (the CSV's hash) and
/// hardware-accelerated where the CPU has it: a 1M-row plan hashes ~40 MB.
pub fn chunk_checksum(members: &[u8], payloads: Option<&str>) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update((members.len() as u64).to_le_bytes());
    hash.update(members);
    match payloads {
        Some(text) => {
            hash.update([1u8]);
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
        None => hash.update([0u8]),
    }
    hash.finalize()[..CHECKSUM_BYTES].to_vec()
}

/// The checksum of a group's value set, the payload every mass_update call of it sends.
pub fn group_checksum(payload_json: &str) -> Vec<u8> {
    let digest = Sha256::digest(payload_json.as_bytes());
    digest[..CHECKSUM_BYTES].to_vec()
}

const MEMBER_BYTES: usize = 12;

/// Packs members as `row_no u32 LE, record_id i64 LE` each.
pub fn encode_members(members: impl IntoIterator<Item = Member>) -> Vec<u8> {
    let members = members.into_iter();
    let mut out = Vec::with_capacity(members.size_hint().0 * MEMBER_BYTES);
    for m in members {
        out.extend_from_slice(&m.row_no.to_le_bytes());
        out.extend_from_slice(&m.record_id.to_le_bytes());
    }
    out
}

/// Unpacks `encode_members`; a truncated tail (impossible unless the file was edited) is
/// ignored rather than trusted.
pub fn decode_members(bytes: &[u8]) -> Vec<Member> {
    bytes
        .chunks_exact(MEMBER_BYTES)
        .map(|b| Member {
            row_no: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            record_id: i64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
        })
        .collect()
}

/// Per-item answers that differ from the chunk's own: item index -> (code, message).
pub type Details = BTreeMap<u32, (String, String)>;

/// `details_json` as stored: NULL when there are none.
pub fn encode_details(details: &Details) -> Option<String> {
    (!details.is_empty()).then(|| serde_json::to_string(details).expect("details serialize"))
}

/// Reads `details_json`; a missing or unreadable value means no per-item answers.
pub fn decode_details(json: Option<&str>) -> Details {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// What the members `at` of a chunk write: each its own object of fields (an Update Records
/// chunk's `payloads`) or all the group's value set (`shared`, a mass_update chunk's
/// payload), parsed; `{}` where the stored text is not an object.
pub fn member_writes(
    shared: &str,
    payloads: Option<&[String]>,
    at: impl IntoIterator<Item = usize>,
) -> Vec<(usize, serde_json::Map<String, serde_json::Value>)> {
    let object = |text: &str| match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    match payloads {
        Some(objects) => at
            .into_iter()
            .map(|i| (i, object(objects.get(i).map_or("{}", String::as_str))))
            .collect(),
        None => {
            let shared = object(shared);
            at.into_iter().map(|i| (i, shared.clone())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip() {
        let members = vec![
            Member {
                row_no: 0,
                record_id: 738964000002131001,
            },
            Member {
                row_no: u32::MAX,
                record_id: i64::MAX,
            },
        ];
        assert_eq!(decode_members(&encode_members(members.clone())), members);
    }

    #[test]
    fn details_round_trip_and_empty_is_null() {
        let mut details = Details::new();
        assert_eq!(encode_details(&details), None);
        details.insert(3, ("RECORD_LOCKED".into(), "locked".into()));
        let json = encode_details(&details).unwrap();
        assert_eq!(decode_details(Some(&json)), details);
        assert!(decode_details(Some("not json")).is_empty());
        assert!(decode_details(None).is_empty());
    }
}
