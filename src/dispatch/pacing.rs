//! Pacing: the rate limiter (governor's GCRA, on a clock that follows tokio's, so that
//! tests with paused time are exact and a limiter wait is a tokio sleep that a stop can
//! cancel) and the backoff between attempts of one chunk.
use std::time::Duration;

use backon::BackoffBuilder;
use governor::{Quota, RateLimiter};
use rand::Rng;

use super::settings::{DispatchSettings, Rate};

#[derive(Clone, Debug, Default)]
pub struct TokioClock;

impl governor::clock::Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

impl governor::clock::ReasonablyRealtime for TokioClock {}

pub type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    TokioClock,
    governor::middleware::NoOpMiddleware<std::time::Instant>,
>;

/// A limiter for `rate`. The burst is one call: calls are spread evenly instead of
/// bursting at the start of each period, which is what a server-side per-second window
/// tolerates best.
pub fn limiter(rate: Rate) -> Limiter {
    let period = rate.per / rate.count;
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a non-zero period")
        .allow_burst(std::num::NonZeroU32::MIN);
    RateLimiter::direct_with_clock(quota, TokioClock)
}

/// Waits for the limiter's next slot.
pub async fn until_ready(limiter: &Limiter) {
    use governor::clock::Clock;
    while let Err(not_until) = limiter.check() {
        tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
    }
}

/// The backoff before attempt `attempt + 1` (attempt counts from 1): an exponential step
/// from backon's builder, then full jitter (uniform between zero and the step) so that
/// workers hit by the same 429 storm do not come back in step. A Retry-After from the
/// server, if any, is the floor.
pub fn backoff_delay(
    settings: &DispatchSettings,
    attempt: u32,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    // backon gives the capped exponential schedule; it only adds jitter on top of the step
    // ("equal jitter"), so full jitter is applied here.
    let step = backon::ExponentialBuilder::default()
        .with_min_delay(settings.backoff_base)
        .with_max_delay(settings.backoff_max)
        .with_factor(2.0)
        .with_max_times(attempt as usize)
        .build()
        .take(attempt as usize)
        .last()
        .unwrap_or(settings.backoff_base);
    let jittered = step.mul_f64(rng.random::<f64>());
    match retry_after {
        Some(floor) => jittered.max(floor),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let settings = DispatchSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            ..DispatchSettings::default()
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for attempt in 1..=10u32 {
            let cap =
                (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(Duration::from_secs(2));
            let mut seen_low = false;
            for _ in 0..200 {
                let d = backoff_delay(&settings, attempt, None, &mut rng);
                assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
                seen_low |= d < cap / 4;
            }
            assert!(seen_low, "full jitter reaches near zero");
        }
        let floor = Duration::from_secs(5);
        assert!(backoff_delay(&settings, 1, Some(floor), &mut rng) >= floor);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls_evenly_in_paused_time() {
        let limiter = limiter("20/s".parse().unwrap());
        let start = tokio::time::Instant::now();
        for _ in 0..41 {
            until_ready(&limiter).await;
        }
        // 41 calls at 20/s: the first is free, the other 40 take exactly two seconds.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
