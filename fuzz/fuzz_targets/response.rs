//! Any bytes as the body of a 200/207/400/401/429/500 answer: the parser never panics and
//! never keeps more than a bounded message from the server.
#![no_main]
use libfuzzer_sys::fuzz_target;
use massup::api::response::{parse_body, CallAnswer};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 207, 400, 401, 429, 500][selector as usize % 6];
    match parse_body(status, body) {
        CallAnswer::Records(records) => {
            assert!(!records.is_empty());
            for record in records {
                assert!(record.message.len() <= 600);
            }
        }
        CallAnswer::Request { message, .. } => assert!(message.len() <= 600),
        CallAnswer::Unreadable { reason } => assert!(reason.len() <= 600),
    }
});
