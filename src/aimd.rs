//! Adaptive pace: how many calls may be in flight, found by listening to Zoho's 429s.
//!
//! Zoho caps concurrent calls per org and app by edition (5 to 25), and heavy APIs at 10,
//! and answers 429 above the cap, with no Retry-After. The edition is not known to
//! massup, and other apps of the same org share the cap, so a fixed `--concurrency` is
//! either too timid or produces a storm of 429s that burns attempts (and credits). AIMD,
//! as TCP does for congestion: halve the limit on a 429 (multiplicative decrease), add one
//! back after a round of successes (additive increase). It settles just under the real
//! cap and follows it when other apps come and go; it works with or without `--rate`.
//!
//! [`Aimd`] is the pure controller (time is passed in, so it is tested without sleeping);
//! [`AdaptiveLimit`] applies it to a `tokio::sync::Semaphore` that the worker pool takes
//! its permits from.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How fast the limit moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AimdSettings {
    /// 429s within this time of the last cut count as the same event: the calls that were
    /// already in flight when the first 429 came are answered 429 too, and halving once
    /// per answer would collapse the limit to 1 in one burst.
    pub cut_window: Duration,
    /// The least time between two changes of the limit before a raise: recovery is slow
    /// on purpose, a 429 costs more than a call not made.
    pub raise_interval: Duration,
}

impl Default for AimdSettings {
    fn default() -> AimdSettings {
        AimdSettings {
            cut_window: Duration::from_secs(1),
            raise_interval: Duration::from_secs(2),
        }
    }
}

/// The controller: a limit between 1 and `max`.
#[derive(Debug, Clone)]
pub struct Aimd {
    max: usize,
    limit: usize,
    settings: AimdSettings,
    last_cut: Option<Instant>,
    last_change: Option<Instant>,
    /// Successes since the last change.
    successes: usize,
}

impl Aimd {
    /// Starts at `max` (at least 1): the user's `--concurrency` is the ceiling and the
    /// first guess.
    pub fn new(max: usize) -> Aimd {
        Aimd::with_settings(max, AimdSettings::default())
    }

    pub fn with_settings(max: usize, settings: AimdSettings) -> Aimd {
        let max = max.max(1);
        Aimd {
            max,
            limit: max,
            settings,
            last_cut: None,
            last_change: None,
            successes: 0,
        }
    }

    /// The current limit: how many calls may be in flight.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A call was answered 429 at `now`: halve the limit (not below 1), unless a cut
    /// happened within `cut_window`. Returns whether the limit changed.
    pub fn on_throttled(&mut self, now: Instant) -> bool {
        self.on_throttled_call(now, None)
    }

    /// A call sent at `sent` was answered 429 at `now`. A call sent before the last cut
    /// was in flight at the old limit: its 429 says nothing new, as in TCP, where losses
    /// within one round trip of a cut count once. That lets the limit settle in a few round
    /// trips whatever their length, instead of one cut per `cut_window`.
    pub fn on_throttled_call(&mut self, now: Instant, sent: Option<Instant>) -> bool {
        self.successes = 0;
        let same_event = match (self.last_cut, sent) {
            (Some(cut), Some(sent)) => sent < cut,
            (Some(cut), None) => now.saturating_duration_since(cut) < self.settings.cut_window,
            (None, _) => false,
        };
        if same_event {
            return false;
        }
        self.last_cut = Some(now);
        self.last_change = Some(now);
        let halved = (self.limit / 2).max(1);
        let changed = halved != self.limit;
        self.limit = halved;
        changed
    }

    /// A call was answered (not 429) at `now`: after a round of successes (as many as the
    /// limit) and at least `raise_interval` since the last change, add one, up to `max`.
    /// Returns whether the limit changed.
    pub fn on_success(&mut self, now: Instant) -> bool {
        if self.limit >= self.max {
            return false;
        }
        self.successes += 1;
        if self.successes < self.limit {
            return false;
        }
        if self
            .last_change
            .is_some_and(|at| now.saturating_duration_since(at) < self.settings.raise_interval)
        {
            return false;
        }
        self.limit += 1;
        self.successes = 0;
        self.last_change = Some(now);
        true
    }
}

/// A semaphore whose number of permits follows an [`Aimd`]. Workers take a permit per
/// call with [`AdaptiveLimit::acquire`] and report the answer with
/// [`AdaptiveLimit::throttled`] or [`AdaptiveLimit::succeeded`]. When the limit falls,
/// free permits are withdrawn at once and permits in use are withdrawn as they come
/// back; when it rises, one is added.
#[derive(Debug)]
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    aimd: Aimd,
    /// Permits in use that are to be withdrawn when they come back.
    owed: usize,
}

/// One call's place. Dropping it gives the place back (or withdraws it, when the limit
/// fell while it was in use).
#[derive(Debug)]
pub struct AdaptivePermit {
    permit: Option<OwnedSemaphorePermit>,
    limit: Arc<AdaptiveLimit>,
}

impl Drop for AdaptivePermit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut state = self.limit.lock();
        if state.owed > 0 {
            state.owed -= 1;
            permit.forget();
        }
    }
}

impl AdaptiveLimit {
    pub fn new(aimd: Aimd) -> Arc<AdaptiveLimit> {
        Arc::new(AdaptiveLimit {
            semaphore: Arc::new(Semaphore::new(aimd.limit())),
            state: Mutex::new(LimitState { aimd, owed: 0 }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a place. Cancel-safe: dropping the future takes none.
    pub async fn acquire(self: &Arc<Self>) -> AdaptivePermit {
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        AdaptivePermit {
            permit: Some(permit),
            limit: self.clone(),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().aimd.limit()
    }

    /// Reports a 429 to a call sent at `sent`; returns the limit after it.
    pub fn throttled(&self, sent: Instant) -> usize {
        let now = tokio::time::Instant::now().into_std();
        let mut state = self.lock();
        let before = state.aimd.limit();
        state.aimd.on_throttled_call(now, Some(sent));
        let after = state.aimd.limit();
        if after < before {
            let cut = before - after;
            let withdrawn = self.semaphore.forget_permits(cut);
            state.owed += cut - withdrawn;
        }
        after
    }

    /// Reports an answer that was not a 429; returns the limit after it.
    pub fn succeeded(&self) -> usize {
        let now = tokio::time::Instant::now().into_std();
        let mut state = self.lock();
        if state.aimd.on_success(now) {
            if state.owed > 0 {
                state.owed -= 1;
            } else {
                self.semaphore.add_permits(1);
            }
        }
        state.aimd.limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn a_429_halves_the_limit_but_never_below_one() {
        let t = Instant::now();
        let mut aimd = Aimd::new(10);
        assert!(aimd.on_throttled(t));
        assert_eq!(aimd.limit(), 5);
        assert!(aimd.on_throttled(at(t, 1000)));
        assert_eq!(aimd.limit(), 2);
        assert!(aimd.on_throttled(at(t, 2000)));
        assert_eq!(aimd.limit(), 1);
        assert!(!aimd.on_throttled(at(t, 3000)));
        assert_eq!(aimd.limit(), 1);
    }

    #[test]
    fn a_burst_of_429s_counts_once() {
        let t = Instant::now();
        let mut aimd = Aimd::new(16);
        aimd.on_throttled(t);
        for ms in [0, 10, 500, 999] {
            assert!(!aimd.on_throttled(at(t, ms)));
        }
        assert_eq!(aimd.limit(), 8);
        aimd.on_throttled(at(t, 1000));
        assert_eq!(aimd.limit(), 4);
    }

    #[test]
    fn recovery_is_one_step_per_round_of_successes_and_interval() {
        let t = Instant::now();
        let mut aimd = Aimd::new(8);
        aimd.on_throttled(t); // 4
                              // A round (4 successes) too soon after the cut: no raise yet.
        for i in 0..4 {
            assert!(!aimd.on_success(at(t, 100 + i)));
        }
        // The interval has passed: the next success raises.
        assert!(aimd.on_success(at(t, 2000)));
        assert_eq!(aimd.limit(), 5);
        // The next raise needs 5 more successes and 2 more seconds.
        for i in 0..4 {
            assert!(!aimd.on_success(at(t, 5000 + i)));
        }
        assert!(aimd.on_success(at(t, 5010)));
        assert_eq!(aimd.limit(), 6);
    }

    #[test]
    fn never_above_max_and_a_429_resets_the_round() {
        let t = Instant::now();
        let mut aimd = Aimd::new(2);
        for i in 0..10 {
            assert!(!aimd.on_success(at(t, i * 10_000)));
        }
        assert_eq!(aimd.limit(), 2);
        aimd.on_throttled(t); // 1
        assert!(aimd.on_success(at(t, 3000)));
        assert_eq!(aimd.limit(), 2);
        assert_eq!(Aimd::new(0).limit(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_semaphore_follows_the_limit() {
        let limit = AdaptiveLimit::new(Aimd::new(4));
        let held: Vec<_> = futures::future::join_all((0..4).map(|_| limit.acquire())).await;
        assert_eq!(limit.semaphore.available_permits(), 0);
        // All four in use when the 429 comes: two are withdrawn as they come back.
        let sent = tokio::time::Instant::now().into_std();
        assert_eq!(limit.throttled(sent), 2);
        drop(held);
        assert_eq!(limit.semaphore.available_permits(), 2);
        // Only two at once now.
        let a = limit.acquire().await;
        let _b = limit.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(50), limit.acquire()).await;
        assert!(third.is_err(), "a third call waits");
        drop(a);
        // Recovery: a round of successes after the interval adds a permit.
        tokio::time::advance(Duration::from_secs(3)).await;
        limit.succeeded();
        assert_eq!(limit.succeeded(), 3);
        assert_eq!(limit.semaphore.available_permits(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn free_permits_are_withdrawn_at_once() {
        let limit = AdaptiveLimit::new(Aimd::new(8));
        let sent = tokio::time::Instant::now().into_std();
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(limit.throttled(sent), 4);
        assert_eq!(limit.semaphore.available_permits(), 4);
        // Another call sent before that cut was answered 429 too: the same event.
        assert_eq!(limit.throttled(sent), 4);
        // A call sent after the cut, throttled again: the limit halves again at once.
        let later = tokio::time::Instant::now().into_std();
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(limit.throttled(later), 2);
        assert_eq!(limit.semaphore.available_permits(), 2);
        assert_eq!(limit.limit(), 2);
    }
}
