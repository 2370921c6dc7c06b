//! The progress display while a run sends: a bar on a terminal, a log line every few
//! seconds otherwise (cron), nothing with --quiet.
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::Progress;

/// Runs `work` to its end, calling `tick` every 200 ms on a terminal (a bar to move) and
/// every 5 s otherwise (a log line for cron), the first time one period after the start.
async fn ticking<T>(
    terminal: bool,
    work: impl std::future::Future<Output = T>,
    mut tick: impl FnMut(),
) -> T {
    let period = if terminal {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    tokio::pin!(work);
    let mut interval = tokio::time::interval(period);
    interval.tick().await;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = interval.tick() => tick(),
        }
    }
}

/// Shows progress while `work` runs: a bar on a terminal, a log line every few seconds
/// otherwise (cron), nothing with --quiet.
pub async fn with_progress<T>(
    progress: Arc<Progress>,
    quiet: bool,
    work: impl std::future::Future<Output = T>,
) -> T {
    let total = progress.items_total.load(Ordering::Relaxed);
    if quiet {
        return work.await;
    }
    // With --log-format json every stderr line is a JSON object: log lines, never a bar.
    let terminal = std::io::stderr().is_terminal()
        && crate::logging::format() == crate::global::LogFormat::Human;
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {human_pos}/{human_len} record updates  ETA {eta}  {msg}",
            )
            .expect("static template"),
        );
        bar
    });
    let started = std::time::Instant::now();
    // Record updates: one record's values in one call (a row whose three fields go in
    // three calls is three); the rate is rounded, as people read it.
    let describe = |p: &Progress| {
        let settled = p.items_settled.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let per_sec = if secs > 0.0 {
            super::rate(settled as f64 / secs)
        } else {
            "-".into()
        };
        format!(
            "{per_sec}  calls {}  ok {}  retryable {}  failed {}",
            super::count(p.calls.load(Ordering::Relaxed)),
            super::count(p.succeeded.load(Ordering::Relaxed)),
            super::count(p.retryable.load(Ordering::Relaxed)),
            super::count(p.failed.load(Ordering::Relaxed))
        )
    };
    let result = ticking(terminal, work, || {
        let settled = progress.items_settled.load(Ordering::Relaxed);
        match &bar {
            Some(bar) => {
                bar.set_position(settled);
                bar.set_message(describe(&progress));
            }
            None => tracing::info!(
                settled,
                total,
                "{}/{} record updates settled; {}",
                super::count(settled),
                super::count(total),
                describe(&progress)
            ),
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

/// Shows an export's progress while `work` runs: records written so far (Zoho does not say
/// how many a listing holds, so there is no ETA), a counter on a terminal, a log line every
/// few seconds otherwise, nothing when `quiet` (--quiet, or the rows going to the terminal).
pub async fn with_export_progress<T>(
    written: Arc<std::sync::atomic::AtomicU64>,
    quiet: bool,
    work: impl std::future::Future<Output = T>,
) -> T {
    if quiet {
        return work.await;
    }
    let terminal = std::io::stderr().is_terminal()
        && crate::logging::format() == crate::global::LogFormat::Human;
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {human_pos} records exported  {per_sec}  {elapsed}",
            )
            .expect("static template"),
        );
        bar
    });
    let result = ticking(terminal, work, || {
        let done = written.load(Ordering::Relaxed);
        match &bar {
            Some(bar) => bar.set_position(done),
            None => tracing::info!(done, "{} records exported", super::count(done)),
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}
