//! Sends the lookup queries of a `--match-by` plan: one COQL query per batch of at most 50
//! keys (and a further page only when a batch matches more rows than one answer holds),
//! through the attempt loop like every call. Nothing is stored here: the plan stores what
//! was found, or nothing if a lookup cannot finish.
use std::sync::Mutex;

use futures::StreamExt;

use super::attempt::{attempt, Caller, Failure};
use super::read::RowsCall;
use super::StopReason;
use crate::api::limits::{CallKind, MAX_IN_VALUES};
use crate::plan::matching::{LookupError, Matches};

/// Looks every key of `matches` up and fills in what Zoho found, with `caller`'s pace and
/// budgets. The calls and credits spent are in `caller.spent` (and `matches.calls`).
pub async fn look_up(
    caller: &Caller,
    matches: &mut Matches,
    max_rows: usize,
) -> Result<(), LookupError> {
    let keys = matches.unresolved();
    let field = matches.field().clone();
    let name = field.api_name().to_string();
    let found = Mutex::new(&mut *matches);
    let batches = keys.chunks(MAX_IN_VALUES).map(|batch| {
        let (field, found) = (&field, &found);
        async move {
            let mut offset = 0;
            loop {
                let mut call =
                    RowsCall::coql(caller, field.query(batch, max_rows, offset), max_rows);
                let super::read::Page { rows, more, .. } = attempt(caller, &mut call).await?;
                offset += rows.len();
                let mut found = found.lock().expect("lookup table lock");
                for row in &rows {
                    found.absorb(row).map_err(|message| Failure::Stop {
                        reason: StopReason::Fatal {
                            code: crate::codes::UNREADABLE_ANSWER.into(),
                            message: message.clone(),
                        },
                        code: crate::codes::UNREADABLE_ANSWER.into(),
                        message,
                    })?;
                }
                if !more || rows.is_empty() {
                    return Ok::<(), Failure>(());
                }
            }
        }
    });
    let mut results =
        futures::stream::iter(batches).buffer_unordered(caller.settings.concurrency.max(1));
    let mut failure = None;
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            // The first failure ends the lookup: the queries still in flight are dropped
            // (a query changes nothing), and nothing is planned.
            failure = Some(e);
            break;
        }
    }
    drop(results);
    let calls = caller.spent.calls(CallKind::Coql);
    matches.calls = calls;
    matches.credits = caller.spent.credits(CallKind::Coql);
    let Some(failure) = failure else {
        // Credits that ran out with the last answer stop only what would come next.
        return Ok(());
    };
    // A stop another query called for (credits spent, the token) says more than the
    // `Stopped` this query saw.
    let failure = match (failure, caller.stop_reason()) {
        (Failure::Stopped, Some(reason)) => Failure::Stop {
            code: String::new(),
            message: reason.to_string(),
            reason,
        },
        (failure, _) => failure,
    };
    Err(match failure {
        Failure::Stopped => LookupError::Stopped,
        Failure::Stop {
            reason: StopReason::CreditsExhausted,
            message,
            ..
        } => LookupError::CreditsExhausted {
            field: name,
            message,
            calls,
        },
        Failure::Stop {
            reason: StopReason::TokenUnavailable { message },
            ..
        } => LookupError::TokenUnavailable {
            field: name,
            message,
        },
        Failure::Stop {
            reason: reason @ (StopReason::MaxCredits { .. } | StopReason::MaxCalls { .. }),
            ..
        } => LookupError::Budget {
            field: name,
            message: reason.to_string(),
        },
        Failure::Stop { code, message, .. } | Failure::AttemptsUsed { code, message } => {
            LookupError::Failed {
                field: name,
                code,
                message,
            }
        }
    })
}
