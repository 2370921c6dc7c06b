//! Any bytes as the answer to every kind of call massup makes, through the reader of that
//! kind: a write (mass_update and Update Records, read by id and by position), a read
//! (Get Records and COQL rows), and field metadata. No reader panics; every item keeps
//! its place (the outcomes stay one per member); and every message a reader keeps from
//! the server is bounded and holds no control character that could reach a terminal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use massup::api::limits::CallKind;
use massup::api::Exchange;
use massup::dispatch::interpret::{interpret, interpret_in_order, Step};
use massup::dispatch::read::{interpret_query, QueryAnswer};
use massup::logging::is_unsafe_control;
use massup::outcome::Member;
use massup::store::chunks::ClaimedChunk;

/// The record ids of the chunk the answer is read for: the ids the seeds name, and a few.
const IDS: [i64; 6] = [
    475243000003269880,
    738964000002131001,
    738964000002130131,
    1306462000000496025,
    1,
    2,
];

fn safe(text: &str) {
    assert!(
        text.len() <= 1200,
        "kept {} bytes of server text",
        text.len()
    );
    assert!(
        !text.chars().any(is_unsafe_control),
        "a control character kept: {text:?}"
    );
}

fn check_step(step: &Step) {
    match step {
        Step::Settled => {}
        Step::Again { code, message, .. }
        | Step::Token { code, message }
        | Step::Fatal { code, message }
        | Step::CreditsExhausted { code, message } => {
            safe(code);
            safe(message);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, body)) = data.split_first() else {
        return;
    };
    let status = [
        200u16, 201, 202, 204, 207, 400, 401, 403, 404, 429, 500, 503,
    ][knobs as usize % 12];
    let credits_remaining = match knobs >> 4 & 3 {
        0 => None,
        1 => Some(0),
        _ => Some(u64::from(knobs)),
    };
    let can_refresh = knobs & 0x40 != 0;
    let exchange = Exchange::Answered {
        status,
        body: bytes::Bytes::copy_from_slice(body),
        credits_remaining,
        retry_after: None,
    };
    let members: Vec<Member> = IDS
        .iter()
        .enumerate()
        .map(|(i, &record_id)| Member {
            row_no: i as u32,
            record_id,
        })
        .collect();
    let index = IDS.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    for kind in [CallKind::MassUpdate, CallKind::UpdateRecords] {
        let mut chunk = ClaimedChunk {
            id: 1,
            kind,
            payload: "{}".into(),
            payloads: (kind == CallKind::UpdateRecords).then(|| vec!["{}".to_string(); IDS.len()]),
            members: members.clone(),
            outcomes: vec![0; IDS.len()],
            details: Default::default(),
            snapshotted: false,
            bulk: None,
            tried_before: false,
        };
        // Writes: by id (mass_update, and Update Records when the answer is not one entry
        // per record), and by position (Update Records).
        let read = interpret(&exchange, &mut chunk, &index, can_refresh);
        check_step(&read.step);
        safe(&read.call_code);
        if kind == CallKind::UpdateRecords {
            let sent: Vec<usize> = (0..IDS.len()).collect();
            if let Some(read) = interpret_in_order(&exchange, &mut chunk, &sent) {
                check_step(&read.step);
            }
        }
        assert_eq!(chunk.outcomes.len(), IDS.len());
        for (i, (code, message)) in &chunk.details {
            assert!((*i as usize) < IDS.len());
            safe(code);
            safe(message);
        }
    }
    // Reads: Get Records and COQL answer rows (values kept as Zoho gave them, so only the
    // step's text is checked).
    match interpret_query(&exchange, can_refresh) {
        QueryAnswer::Rows(page) => assert!(page.rows.len() <= body.len()),
        QueryAnswer::Step(step) => check_step(&step),
    }
    // Field metadata.
    let _ = massup::fields::ModuleFields::from_zoho_json(body);
});
