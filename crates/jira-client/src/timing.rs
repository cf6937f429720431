//! Where the time of a piece of work went: [`measure`] runs a future and answers, with
//! its output, how long the Jira calls it made waited for the site's [`crate::Pacer`]
//! and for Jira's answers (retries and back-off included), and how many attempts it
//! sent. The accounting is per task (a `tokio` task-local): calls made from tasks the
//! future spawns are not counted. Concurrent calls add up, so the figures can exceed
//! the wall time.
//!
//! The service reports these figures in a `Server-Timing` header, which is how a
//! caller tells the time its request queued behind the site's rate limit from the
//! time Jira took and the time the service itself took.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

tokio::task_local! {
    static CURRENT: Arc<Counters>;
}

#[derive(Debug, Default)]
struct Counters {
    pacer_us: AtomicU64,
    jira_us: AtomicU64,
    attempts: AtomicU64,
}

/// The Jira time of a piece of work (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Time spent waiting for the site's pacer (rate, concurrency cap, pauses after a
    /// 429, per-issue pauses) and in back-off before retries.
    pub pacer: Duration,
    /// Time from sending a request to Jira until its answer was read.
    pub jira: Duration,
    /// Attempts sent to Jira (retries included).
    pub attempts: u64,
}

/// Run `fut`, accounting the Jira calls it makes on its own task.
pub async fn measure<F: Future>(fut: F) -> (F::Output, Timing) {
    let counters = Arc::new(Counters::default());
    let out = CURRENT.scope(counters.clone(), fut).await;
    let us = |a: &AtomicU64| Duration::from_micros(a.load(Ordering::Relaxed));
    let timing = Timing {
        pacer: us(&counters.pacer_us),
        jira: us(&counters.jira_us),
        attempts: counters.attempts.load(Ordering::Relaxed),
    };
    (out, timing)
}

fn add(pick: impl Fn(&Counters) -> &AtomicU64, d: Duration) {
    let _ = CURRENT.try_with(|c| {
        pick(c).fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    });
}

/// Count time spent waiting for the pacer or in back-off.
pub(crate) fn add_pacer(d: Duration) {
    add(|c| &c.pacer_us, d);
}

/// Count one attempt sent to Jira and the time until its answer was read.
pub(crate) fn add_attempt(d: Duration) {
    add(|c| &c.jira_us, d);
    let _ = CURRENT.try_with(|c| c.attempts.fetch_add(1, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_only_inside_the_measured_future() {
        add_pacer(Duration::from_millis(5));
        let ((), t) = measure(async {
            add_pacer(Duration::from_millis(3));
            add_pacer(Duration::from_millis(4));
            add_attempt(Duration::from_millis(30));
            add_attempt(Duration::from_millis(31));
        })
        .await;
        assert_eq!(t.pacer, Duration::from_millis(7));
        assert_eq!(t.jira, Duration::from_millis(61));
        assert_eq!(t.attempts, 2);
        let ((), none) = measure(async {}).await;
        assert_eq!(none, Timing::default());
    }
}
