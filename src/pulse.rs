//! A target loop's heartbeat, for liveness (`/healthz`, the systemd watchdog).
//!
//! A loop beats when a pass ends, and also while a pass waits in line for a rate budget
//! (the budget beats the pulse of the task that waits, see [`crate::budget`]): a wait
//! behind a thousand start-up reads is a loop alive and in line, not a stall. Times come
//! from tokio's clock, so that tests with paused time see them move.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

tokio::task_local! {
    static CURRENT: Arc<Pulse>;
}

/// The clock the board and liveness use: tokio's (the real one outside tests).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Debug)]
pub struct Pulse {
    origin: Instant,
    /// Milliseconds after `origin` of the last beat.
    last_ms: AtomicU64,
}

impl Pulse {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: now(),
            last_ms: AtomicU64::new(0),
        })
    }

    pub fn beat(&self) {
        let ms = now().saturating_duration_since(self.origin).as_millis();
        self.last_ms
            .fetch_max(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// When the loop last showed life.
    pub fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Runs `task` with this pulse as the one [`beat`] reaches. Not an `async fn`: that
    /// would keep `task` twice in the returned future (once as its argument, once inside
    /// the scope), doubling every target task's memory.
    pub fn carry<F: Future>(self: Arc<Self>, task: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, task)
    }
}

/// Beats the pulse of the running task, if it carries one.
pub fn beat() {
    let _ = CURRENT.try_with(|p| p.beat());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn beats_reach_the_pulse_the_task_carries() {
        let pulse = Pulse::new();
        let start = pulse.last();
        tokio::time::advance(Duration::from_secs(7)).await;
        beat(); // outside any pulse: no effect, no panic
        assert_eq!(pulse.last(), start);
        pulse.clone().carry(async { beat() }).await;
        assert_eq!(pulse.last(), start + Duration::from_secs(7));
    }
}
