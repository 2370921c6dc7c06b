//! The life of one record API call (mass_update, Update Records, Get Records, COQL) from
//! arrival to answer, shared by every record endpoint so each meets the same limits and the
//! same faults, drawn the same way: counted and in flight from arrival, then token, rate,
//! concurrency, the sub-concurrency limit of large writes and credits, then the seeded fault of
//! the n-th admitted call, and the answer `latency` after arrival (or no answer at all).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

use super::records;
use super::server::{
    drop_connection, zoho_response, Code, ConnAbort, Counters, Endpoint, HeaderProfile, InFlight,
    Reject, Shared, CODE_COUNT,
};
use super::{MockConfig, LARGE_WRITE};

/// Spreads request sequence numbers over the seed space so neighbours draw unrelated faults.
const FAULT_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// The API version in a request path (`v2`, `v2.1`, `v8`) as a number, for the limits that
/// changed between versions. A version the mock cannot read is taken as the newest it knows.
pub(crate) fn version_number(version: &str) -> f64 {
    version
        .strip_prefix(['v', 'V'])
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|n| n.is_finite())
        .unwrap_or(8.0)
}

/// What the seeded draw decided for one admitted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Internal,
    DropBefore,
    Garbage,
    DropAfter,
}

/// The latency and fault of admitted call number `seq`: a pure function of the seed and `seq`,
/// so a run with the same seed and the same call order sees the same faults.
pub(crate) fn draw(config: &MockConfig, seq: u64) -> (Duration, Fault) {
    let mut rng = StdRng::seed_from_u64(config.seed ^ seq.wrapping_mul(FAULT_SALT));
    let spread = config.latency_spread.min(config.latency_mean);
    let latency = if spread.is_zero() {
        config.latency_mean
    } else {
        let low = config.latency_mean - spread;
        low + spread.mul_f64(2.0 * rng.random::<f64>())
    };
    // One roll against consecutive bands, so the shares add up as configured.
    let roll: f64 = rng.random();
    let bands = [
        (config.fail_500_rate, Fault::Internal),
        (config.drop_before_rate, Fault::DropBefore),
        (config.garbage_rate, Fault::Garbage),
        (config.drop_after_rate, Fault::DropAfter),
    ];
    let mut edge = 0.0;
    let mut fault = Fault::None;
    for (share, band) in bands {
        edge += share;
        if roll < edge {
            fault = band;
            break;
        }
    }
    (latency, fault)
}

/// A 200 whose body is not JSON: what a misbehaving proxy in front of the API can send.
pub(crate) fn garbage() -> Response {
    let mut response = zoho_response(
        StatusCode::OK,
        Bytes::from_static(b"<html><head><title>Zoho CRM</title></head><body>Please wait..."),
        HeaderProfile::Api,
        None,
        None,
    );
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html;charset=utf-8"),
    );
    response
}

/// One call to a record endpoint. Counted in its endpoint's ledger counters and in flight
/// (for the concurrency limit) from [`ApiCall::enter`] until it is dropped.
pub(crate) struct ApiCall<'a> {
    pub shared: &'a Shared,
    counters: &'a Counters,
    headers: &'a HeaderMap,
    in_flight: Option<InFlight<'a>>,
    abort: Option<Extension<ConnAbort>>,
}

/// What admission decided for a call that passed it: the token's expiry and the credits header
/// for the answer, when the answer leaves, and the fault still to come (a drop after applying).
pub(crate) struct Admission {
    pub expiry: Option<Instant>,
    pub credits: Option<u64>,
    answer_at: Instant,
    fault: Fault,
}

impl<'a> ApiCall<'a> {
    pub(crate) fn enter(
        shared: &'a Shared,
        endpoint: Endpoint,
        headers: &'a HeaderMap,
        abort: Option<Extension<ConnAbort>>,
    ) -> ApiCall<'a> {
        ApiCall {
            shared,
            counters: shared.counters(endpoint),
            headers,
            in_flight: Some(InFlight::enter(shared, endpoint)),
            abort,
        }
    }

    pub(crate) fn count(&self, code: Code, n: u64) {
        self.counters.count(code, n);
    }

    /// A request-level refusal, counted.
    pub(crate) fn reject(&self, reject: Reject) -> Response {
        self.count(reject.code(), 1);
        self.shared.refuse(reject, self.headers)
    }

    /// The configured API redirect, answered before anything else (a redirecting front
    /// answers before the API sees the call).
    pub(crate) fn redirect(&self) -> Option<Response> {
        let redirect = self.shared.config.api_redirect.as_ref()?;
        Some(self.shared.redirect(redirect))
    }

    /// The token check alone (for the calls that draw no fault and cost no credit).
    // The error is the finished answer to send, once per refused call; boxing it would only
    // add an allocation for the lint's sake (as `server::metadata_call`).
    #[allow(clippy::result_large_err)]
    pub(crate) fn authenticate(&self) -> Result<Option<Instant>, Response> {
        self.shared
            .authenticate(self.headers)
            .map_err(|r| self.reject(r))
    }

    /// Token, rate, concurrency and credits (`cost` of them), then the seeded draw of the
    /// n-th admitted call. A fault that leaves the call unapplied (500, drop before, garbage)
    /// is answered here, after the call's latency; the others go on to be processed.
    pub(crate) async fn admit(&mut self, cost: u64) -> Result<Admission, Response> {
        self.admit_as(cost, false).await
    }

    /// [`ApiCall::admit`] for a write call (Insert, Update, Upsert Records) carrying `records`
    /// records: priced by them, and, above [`LARGE_WRITE`] records, under the sub-concurrency
    /// limit (after the overall concurrency limit, before the credits).
    pub(crate) async fn admit_write(&mut self, records: usize) -> Result<Admission, Response> {
        self.admit_as(records::credits(records), records > LARGE_WRITE)
            .await
    }

    async fn admit_as(&mut self, cost: u64, large_write: bool) -> Result<Admission, Response> {
        let expiry = self.authenticate()?;
        self.shared.pass_limits().map_err(|r| self.reject(r))?;
        if large_write {
            if let Some(in_flight) = self.in_flight.as_mut() {
                if let Err(reject) = in_flight.enter_large_write() {
                    return Err(self.reject(reject));
                }
            }
        }
        // A call refused here gives its sub-concurrency place back as it ends, at once.
        let credits = self.shared.charge(cost).map_err(|r| self.reject(r))?;
        let seq = self.shared.admitted.fetch_add(1, Ordering::Relaxed);
        let (latency, fault) = draw(&self.shared.config, seq);
        // Latency is the server's response time: the answer leaves `latency` after the call
        // arrived, with the mock's own work done inside that time rather than added to it, so
        // that a benchmark's "ideal" (calls / concurrency x latency) measures the client alone.
        let answer_at = Instant::now() + latency;
        match fault {
            Fault::Internal => {
                tokio::time::sleep_until(answer_at).await;
                Err(self.reject(Reject::InternalError))
            }
            Fault::DropBefore => {
                tokio::time::sleep_until(answer_at).await;
                self.count(Code::DroppedBefore, 1);
                Err(self.drop_connection().await)
            }
            Fault::Garbage => {
                tokio::time::sleep_until(answer_at).await;
                self.count(Code::Garbage, 1);
                Err(garbage())
            }
            Fault::None | Fault::DropAfter => Ok(Admission {
                expiry,
                credits,
                answer_at,
                fault,
            }),
        }
    }

    /// A request-level refusal of an admitted call, sent at its answer time.
    pub(crate) async fn reject_at(&self, admission: &Admission, reject: Reject) -> Response {
        tokio::time::sleep_until(admission.answer_at).await;
        self.reject(reject)
    }

    /// The answer of an admitted call, sent at its answer time with `counts` added to the
    /// ledger; or, when the call drew a drop after applying, no answer and no codes counted
    /// (DROPPED_AFTER instead), since no response carried them.
    pub(crate) async fn answer(
        mut self,
        admission: &Admission,
        status: StatusCode,
        body: Bytes,
        counts: &[u64; CODE_COUNT],
    ) -> Response {
        tokio::time::sleep_until(admission.answer_at).await;
        if admission.fault == Fault::DropAfter {
            self.count(Code::DroppedAfter, 1);
            return self.drop_connection().await;
        }
        self.counters.count_all(counts);
        zoho_response(
            status,
            body,
            HeaderProfile::Api,
            Some(admission.expiry),
            admission.credits,
        )
    }

    async fn drop_connection(&mut self) -> Response {
        drop_connection(self.abort.take(), self.in_flight.take()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_numbers() {
        assert_eq!(version_number("v2"), 2.0);
        assert_eq!(version_number("v2.1"), 2.1);
        assert_eq!(version_number("v8"), 8.0);
        assert_eq!(version_number("latest"), 8.0);
    }

    #[test]
    fn the_fault_draw_is_a_function_of_seed_and_sequence() {
        let config = MockConfig {
            fail_500_rate: 0.25,
            drop_before_rate: 0.25,
            garbage_rate: 0.25,
            latency_mean: Duration::from_millis(10),
            latency_spread: Duration::from_millis(5),
            ..MockConfig::default()
        };
        let a: Vec<_> = (0..200).map(|s| draw(&config, s)).collect();
        let b: Vec<_> = (0..200).map(|s| draw(&config, s)).collect();
        assert_eq!(a, b);
        for (latency, _) in &a {
            assert!(*latency >= Duration::from_millis(5) && *latency <= Duration::from_millis(15));
        }
        for fault in [
            Fault::Internal,
            Fault::DropBefore,
            Fault::Garbage,
            Fault::None,
        ] {
            assert!(a.iter().any(|(_, f)| *f == fault), "{fault:?} never drawn");
        }
    }
}
