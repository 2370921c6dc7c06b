//! Any bytes as a CSV through the reader, coercion (several field types) and grouping:
//! planning never panics, every input row is stored exactly once, and every chunk holds at
//! most the chunk size of distinct records and the field limit of fields.
#![no_main]
use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use massup::store::codec::decode_members;
use massup::plan::{plan, PlanOutcome, PlanRequest, PlanSettings};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, csv)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("massup-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.csv");
    std::fs::write(&path, csv).unwrap();
    let mut settings = PlanSettings::new("Leads");
    settings.max_fields_per_call = 1 + (knobs & 3) as usize;
    settings.chunk_size = [1, 2, 3, 500][(knobs >> 2 & 3) as usize];
    for (field, kind) in [("A", "integer"), ("B", "date"), ("C", "boolean"), ("D", "datetime"), ("E", "multiselect"), ("F", "currency")] {
        settings.types.insert(field.into(), kind.parse().unwrap());
    }
    if knobs & 0x10 != 0 {
        settings.timezone = Some("Europe/Berlin".into());
    }
    let mut conn = massup::store::open_in_memory().unwrap();
    let request = PlanRequest { csv_path: &path, settings: &settings, fields: None, strict: false, new_run: true, send_json: None, resolve_keys: None, expectations: None };
    let Ok(PlanOutcome::Planned(summary)) = plan(&mut conn, &request) else {
        return; // a file-level input error is a fine answer
    };
    let stored: u64 = conn.query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, summary.totals.input_rows);
    let distinct: u64 = conn.query_row("SELECT COUNT(DISTINCT row_no) FROM rows", [], |r| r.get(0)).unwrap();
    assert_eq!(distinct, summary.totals.input_rows);
    let mut stmt = conn.prepare("SELECT c.members, g.payload_json FROM chunks c JOIN groups g ON g.id = c.group_id").unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut calls = 0u64;
    while let Some(row) = rows.next().unwrap() {
        let members = decode_members(&row.get::<_, Vec<u8>>(0).unwrap());
        let payload: serde_json::Value = serde_json::from_str(&row.get::<_, String>(1).unwrap()).unwrap();
        assert!(!members.is_empty() && members.len() <= settings.chunk_size);
        let ids: HashSet<i64> = members.iter().map(|m| m.record_id).collect();
        assert_eq!(ids.len(), members.len(), "a record twice in one call");
        let fields = payload.as_object().unwrap().len();
        assert!(fields >= 1 && fields <= settings.max_fields_per_call);
        calls += 1;
    }
    assert_eq!(calls, summary.totals.calls);
});
