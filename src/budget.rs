//! Shared rate budgets: a token bucket that every target's task draws from, so the whole
//! daemon stays under a global rate whatever the number of targets. When targets want
//! more than the budget, their passes stretch evenly instead of bursting.
//!
//! Two priorities: urgent calls (a DNS answer changed, a change is due) are served before
//! background ones (start-up reads, drift checks, health polling), so a failover is never
//! queued behind a thousand routine reads. Background calls are served in arrival order,
//! so every target gets its turn.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Urgent,
    Background,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    urgent_waiting: usize,
    /// Background waiters by arrival; only the first may take a token.
    queue: BTreeSet<u64>,
    next_ticket: u64,
}

#[derive(Debug)]
pub struct Budget {
    rate: f64,
    capacity: f64,
    state: Mutex<State>,
}

/// A place in line, given up when the wait ends or its future is dropped (shutdown).
enum Place<'a> {
    Urgent(&'a Budget),
    Background(&'a Budget, u64),
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        match self {
            Place::Urgent(b) => b.lock().urgent_waiting -= 1,
            Place::Background(b, ticket) => {
                b.lock().queue.remove(ticket);
            }
        }
    }
}

impl Budget {
    /// `rate` tokens per second, at most `burst` saved up (at least one).
    pub fn new(rate: f64, burst: f64) -> Self {
        let capacity = burst.max(1.0);
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            capacity,
            state: Mutex::new(State {
                tokens: capacity,
                last: Instant::now(),
                urgent_waiting: 0,
                queue: BTreeSet::new(),
                next_ticket: 0,
            }),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token if one is free for this place in line; otherwise says how long to wait.
    fn try_take(&self, place: &Place<'_>) -> Result<(), Duration> {
        let mut s = self.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate).min(self.capacity);
        s.last = now;
        let blocked = match place {
            Place::Urgent(_) => false,
            Place::Background(_, ticket) => s.urgent_waiting > 0 || s.queue.first() != Some(ticket),
        };
        if s.tokens >= 1.0 && !blocked {
            s.tokens -= 1.0;
            return Ok(());
        }
        // A background waiter sleeps until about its turn, so a thousand waiters do not all
        // wake for every token (tickets only leave the middle of the line on shutdown).
        let ahead = match place {
            Place::Urgent(_) => 0,
            Place::Background(_, ticket) => s.queue.first().map_or(0, |first| ticket - first),
        };
        let missing = (ahead as f64 + 1.0 - s.tokens).max(0.0);
        let wait = Duration::from_secs_f64(missing / self.rate).max(Duration::from_millis(1));
        Err(wait)
    }

    /// Takes a token only if one is free now and nobody is waiting: for optional work
    /// (drift checks, health polling) that must never hold up the caller.
    pub fn try_acquire(&self) -> bool {
        let mut s = self.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * self.rate).min(self.capacity);
        s.last = now;
        if s.tokens >= 1.0 && s.urgent_waiting == 0 && s.queue.is_empty() {
            s.tokens -= 1.0;
            return true;
        }
        false
    }

    /// Waits for a token.
    pub async fn acquire(&self, priority: Priority) {
        let place = {
            let mut s = self.lock();
            match priority {
                Priority::Urgent => {
                    s.urgent_waiting += 1;
                    Place::Urgent(self)
                }
                Priority::Background => {
                    let ticket = s.next_ticket;
                    s.next_ticket += 1;
                    s.queue.insert(ticket);
                    Place::Background(self, ticket)
                }
            }
        };
        while let Err(wait) = self.try_take(&place) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn paces_to_the_rate_after_the_burst() {
        let b = Budget::new(10.0, 5.0);
        let start = Instant::now();
        for _ in 0..25 {
            b.acquire(Priority::Background).await;
        }
        // 5 from the burst, then 20 at 10/s.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1990) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_tasks_share_one_rate() {
        let b = Arc::new(Budget::new(20.0, 1.0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    b.acquire(Priority::Background).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 100 tokens at 20/s with a burst of 1: about 5 s, whatever the task count.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(4900) && took <= Duration::from_millis(5200),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_sleep_until_about_their_turn() {
        let b = Arc::new(Budget::new(10.0, 1.0));
        b.acquire(Priority::Background).await;
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (b, polls) = (b.clone(), polls.clone());
            tasks.push(tokio::spawn(async move {
                let place = {
                    let mut s = b.lock();
                    let ticket = s.next_ticket;
                    s.next_ticket += 1;
                    s.queue.insert(ticket);
                    Place::Background(&b, ticket)
                };
                while let Err(wait) = b.try_take(&place) {
                    polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // About one sleep per waiter, not one per waiter per token (100 x 100).
        let polls = polls.load(std::sync::atomic::Ordering::Relaxed);
        assert!(polls < 400, "{polls} wake-ups for 100 waiters");
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_calls_go_first() {
        let b = Arc::new(Budget::new(2.0, 1.0));
        b.acquire(Priority::Background).await; // empty the bucket
        let mut background = Vec::new();
        for _ in 0..20 {
            let b = b.clone();
            background.push(tokio::spawn(async move {
                b.acquire(Priority::Background).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let start = Instant::now();
        b.acquire(Priority::Urgent).await;
        let waited = start.elapsed();
        assert!(
            waited <= Duration::from_millis(600),
            "urgent waited {waited:?} behind background calls"
        );
        for t in background {
            t.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn optional_work_never_waits_and_yields_to_waiters() {
        let b = Arc::new(Budget::new(1.0, 1.0));
        assert!(b.try_acquire());
        assert!(!b.try_acquire(), "the bucket is empty");
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(Priority::Background).await })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        waiter.await.unwrap();
        assert!(!b.try_acquire(), "the waiter took the refilled token");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(b.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_urgent_wait_does_not_block_background_forever() {
        let b = Arc::new(Budget::new(1.0, 1.0));
        b.acquire(Priority::Background).await;
        let urgent = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(Priority::Urgent).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        urgent.abort();
        let _ = urgent.await;
        let start = Instant::now();
        b.acquire(Priority::Background).await;
        assert!(start.elapsed() <= Duration::from_millis(1100));
    }
}
