//! Shared rate budgets: a token bucket that every target's task draws from, so the whole
//! daemon stays under a global rate whatever the number of targets. When targets want
//! more than the budget, their passes stretch evenly instead of bursting.
//!
//! Calls come in four classes, each with a guaranteed share of the rate while others
//! wait (weighted fair queuing: the class with the least service per weight goes next):
//! - `Urgent` (a change is due, e.g. the read before a removal): half of the rate, and an
//!   urgent-only reserve on top for bursts of failovers;
//! - `Background` (start-up describes and first reads): a quarter, first come first served,
//!   so every target gets its turn;
//! - `Retry` (the read after a failed change): an eighth, so a group that keeps failing
//!   cannot starve first reads and drift checks;
//! - `Routine` (drift checks, health polling): an eighth, taken only when a token is free
//!   and the class is due: optional work never holds up its caller.
//!
//! A class with nobody waiting gives its share to the others. AWS's own bucket for ELBv2
//! Describe calls holds 40 tokens and refills at 10/s per account and region
//! (<https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html>);
//! the reserve keeps pglink's largest burst well inside it, leaving the rest to the
//! account's other users.
//!
//! Waiting is visible to liveness: a waiter wakes at least every [`PULSE_EVERY`] and beats
//! its task's pulse while the budget is still handing out tokens, so a target loop queued
//! behind a thousand reads is alive, and one behind a stuck budget is not.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::pulse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Urgent,
    Retry,
    Background,
    Routine,
}

impl Priority {
    const ALL: [Priority; 4] = [
        Priority::Urgent,
        Priority::Retry,
        Priority::Background,
        Priority::Routine,
    ];

    /// Relative share of the rate while every class wants tokens.
    fn weight(self) -> f64 {
        match self {
            Priority::Urgent => 4.0,
            Priority::Background => 2.0,
            Priority::Retry | Priority::Routine => 1.0,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Urgent-only tokens beyond the steady bucket: 15 is well inside AWS's 40-token Describe
/// bucket together with the steady burst.
pub const URGENT_RESERVE: f64 = 15.0;
/// The reserve refills in a minute: bursts of failovers, not a second steady rate.
const RESERVE_REFILL: Duration = Duration::from_secs(60);
/// A waiter wakes at least this often, to show its task is alive.
pub const PULSE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct State {
    tokens: f64,
    reserve: f64,
    last: Instant,
    /// When a token was last handed out: a waiter beats its pulse only while the budget
    /// moves.
    last_grant: Instant,
    /// Waiters by class, in arrival order; only the first of a class may take a token.
    queues: [BTreeSet<u64>; 4],
    next_ticket: u64,
    /// Tokens handed to places in line whose holders have not taken them yet.
    granted: BTreeSet<u64>,
    /// Service per weight received by each class (weighted fair queuing's virtual time).
    served: [f64; 4],
    /// Routine work never waits in line; it counts as wanting tokens for a short while
    /// after it last asked.
    routine_asked: Option<Instant>,
}

#[derive(Debug)]
pub struct Budget {
    rate: f64,
    capacity: f64,
    reserve_capacity: f64,
    state: Mutex<State>,
}

/// A place in line, given up when the wait ends or its future is dropped (shutdown).
/// Leaving a line already left (the token was taken) changes nothing.
struct Place<'a> {
    budget: &'a Budget,
    class: Priority,
    ticket: u64,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.budget.leave(self.class, self.ticket);
    }
}

/// A place in line held across passes: a target waits for its first read this way while
/// its passes go on (a changed answer is registered meanwhile). Dropping it gives the
/// place up.
#[derive(Debug)]
pub struct Ticket {
    budget: Arc<Budget>,
    class: Priority,
    ticket: u64,
    granted: bool,
}

impl Ticket {
    /// Takes the token if this ticket's turn has come; true once it holds it.
    pub fn try_take(&mut self) -> bool {
        if !self.granted {
            self.granted = self.budget.try_take(self.class, self.ticket).is_ok();
        }
        self.granted
    }

    /// Waits for this ticket's turn and takes its token. Cancel-safe: dropping the future
    /// keeps the place in line.
    pub async fn wait(&mut self) {
        while !self.granted {
            match self.budget.try_take(self.class, self.ticket) {
                Ok(()) => self.granted = true,
                Err(wait) => self.budget.sleep(wait).await,
            }
        }
    }

    /// Whether this ticket holds its token (its call may go out).
    pub fn is_granted(&self) -> bool {
        self.granted
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.budget.leave(self.class, self.ticket);
    }
}

impl Budget {
    /// `rate` tokens per second, at most `burst` saved up (at least one), and no reserve.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self::with_reserve(rate, burst, 0.0)
    }

    /// As [`Budget::new`], with `reserve` extra tokens that only urgent calls may take.
    pub fn with_reserve(rate: f64, burst: f64, reserve: f64) -> Self {
        let capacity = burst.max(1.0);
        let now = Instant::now();
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            capacity,
            reserve_capacity: reserve.max(0.0),
            state: Mutex::new(State {
                tokens: capacity,
                reserve: reserve.max(0.0),
                last: now,
                last_grant: now,
                queues: Default::default(),
                next_ticket: 0,
                granted: BTreeSet::new(),
                served: [0.0; 4],
                routine_asked: None,
            }),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refill(&self, s: &mut State) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        // Tokens that came while someone was waiting belong to the waiters, even if nobody
        // was awake to hand them out then: they are not lost to the bucket's cap.
        let waiting: usize = s.queues.iter().map(BTreeSet::len).sum();
        let cap = self.capacity + waiting as f64;
        s.tokens = (s.tokens + elapsed * self.rate).min(cap);
        let reserve_rate = self.reserve_capacity / RESERVE_REFILL.as_secs_f64();
        s.reserve = (s.reserve + elapsed * reserve_rate).min(self.reserve_capacity);
        s.last = now;
    }

    /// Joins the line of `class`.
    fn join(&self, class: Priority) -> u64 {
        let mut s = self.lock();
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        if !active(&s, class) {
            catch_up(&mut s, class);
        }
        s.queues[class.index()].insert(ticket);
        ticket
    }

    fn leave(&self, class: Priority, ticket: u64) {
        let mut s = self.lock();
        s.queues[class.index()].remove(&ticket);
        s.granted.remove(&ticket);
    }

    /// Hands out the tokens there are to the heads of the lines, in fair order, whether or
    /// not they are awake: a holder busy elsewhere (a target in a pass) finds its token
    /// when it next looks, and the line behind it moves meanwhile. One token is held back
    /// for routine work while it is the class due.
    fn dispatch(&self, s: &mut State) {
        self.refill(s);
        loop {
            let best = Priority::ALL
                .into_iter()
                .filter(|c| !s.queues[c.index()].is_empty())
                .min_by(|a, b| {
                    s.served[a.index()]
                        .total_cmp(&s.served[b.index()])
                        .then(a.cmp(b))
                });
            let Some(class) = best else { break };
            let routine_due = active(s, Priority::Routine)
                && s.served[Priority::Routine.index()] < s.served[class.index()];
            let held = if routine_due { 1.0 } else { 0.0 };
            let from_reserve = if s.tokens >= 1.0 + held {
                false
            } else if !s.queues[Priority::Urgent.index()].is_empty() && s.reserve >= 1.0 {
                true
            } else {
                break;
            };
            let class = if from_reserve {
                Priority::Urgent
            } else {
                class
            };
            let Some(ticket) = s.queues[class.index()].pop_first() else {
                break;
            };
            s.granted.insert(ticket);
            self.grant(s, class, from_reserve);
        }
        s.tokens = s.tokens.min(self.capacity);
    }

    fn grant(&self, s: &mut State, class: Priority, from_reserve: bool) {
        if from_reserve {
            s.reserve -= 1.0;
        } else {
            s.tokens -= 1.0;
            s.served[class.index()] += 1.0 / class.weight();
        }
        s.last_grant = Instant::now();
    }

    /// Takes the token handed to this place in line, if any; otherwise says how long to
    /// wait.
    fn try_take(&self, class: Priority, ticket: u64) -> Result<(), Duration> {
        let mut s = self.lock();
        self.dispatch(&mut s);
        if s.granted.remove(&ticket) {
            return Ok(());
        }
        // Sleep until about this waiter's turn, so a thousand waiters do not all wake for
        // every token: the head of a line wakes for the next token (someone must be awake
        // to hand it out before the bucket overflows), the others after their class's
        // share of the tokens for those ahead of them.
        let ahead = s.queues[class.index()].range(..ticket).count() as f64;
        if ahead == 0.0 {
            let next = (1.0 - s.tokens).max(0.0) / self.rate;
            return Err(Duration::from_secs_f64(next).max(Duration::from_millis(1)));
        }
        let weights: f64 = Priority::ALL
            .iter()
            .filter(|c| **c == class || active(&s, **c))
            .map(|c| c.weight())
            .sum();
        let share = self.rate * class.weight() / weights;
        let wait = (ahead + 1.0 - s.tokens.max(0.0)).max(0.0) / share;
        Err(Duration::from_secs_f64(wait).max(Duration::from_millis(1)))
    }

    /// Takes a token only if one is free now and the routine class is due: for optional
    /// work (drift checks, health polling) that must never hold up the caller.
    pub fn try_acquire(&self) -> bool {
        let mut s = self.lock();
        if !active(&s, Priority::Routine) {
            catch_up(&mut s, Priority::Routine);
        }
        s.routine_asked = Some(Instant::now());
        self.dispatch(&mut s);
        if s.tokens >= 1.0 {
            self.grant(&mut s, Priority::Routine, false);
            return true;
        }
        false
    }

    /// Sleeps up to `wait`, waking at least every [`PULSE_EVERY`] to beat the task's pulse
    /// while the budget is moving.
    async fn sleep(&self, wait: Duration) {
        tokio::time::sleep(wait.min(PULSE_EVERY)).await;
        let last_grant = self.lock().last_grant;
        // A budget that has handed out nothing for a long while (several tokens' worth) is
        // stuck, and so is every task waiting on it.
        let stuck_after = PULSE_EVERY.max(Duration::from_secs_f64(5.0 / self.rate));
        if last_grant.elapsed() <= stuck_after {
            pulse::beat();
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self, class: Priority) {
        let place = Place {
            budget: self,
            class,
            ticket: self.join(class),
        };
        while let Err(wait) = self.try_take(place.class, place.ticket) {
            self.sleep(wait).await;
        }
    }

    /// A place in `class`'s line that outlives the caller's future.
    pub fn ticket(self: &Arc<Self>, class: Priority) -> Ticket {
        Ticket {
            budget: self.clone(),
            class,
            ticket: self.join(class),
            granted: false,
        }
    }
}

/// How long routine work counts as wanting tokens after it last asked: about one pass.
const ROUTINE_ACTIVE: Duration = Duration::from_secs(2);

/// Whether `class` wants tokens now.
fn active(s: &State, class: Priority) -> bool {
    match class {
        Priority::Routine => s
            .routine_asked
            .is_some_and(|at| at.elapsed() <= ROUTINE_ACTIVE),
        _ => !s.queues[class.index()].is_empty(),
    }
}

/// A class that starts wanting tokens after a pause does not get the pause back as credit:
/// its service catches up with the least-served class that is waiting.
fn catch_up(s: &mut State, class: Priority) {
    let floor = Priority::ALL
        .iter()
        .filter(|c| **c != class && active(s, **c))
        .map(|c| s.served[c.index()])
        .fold(f64::INFINITY, f64::min);
    if floor.is_finite() && s.served[class.index()] < floor {
        s.served[class.index()] = floor;
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
                let ticket = b.join(Priority::Background);
                while let Err(wait) = b.try_take(Priority::Background, ticket) {
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

    /// `tasks` tasks that take tokens of `class` in a loop, counting each in `counter`.
    fn spawn_waiters(
        b: &Arc<Budget>,
        class: Priority,
        tasks: usize,
        counter: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..tasks)
            .map(|_| {
                let (b, counter) = (b.clone(), counter.clone());
                tokio::spawn(async move {
                    loop {
                        b.acquire(class).await;
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect()
    }

    fn count(c: &Arc<std::sync::atomic::AtomicUsize>) -> usize {
        c.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_cannot_starve_first_reads() {
        let b = Arc::new(Budget::new(2.0, 1.0));
        let (retries, firsts) = (Arc::default(), Arc::default());
        let mut tasks = spawn_waiters(&b, Priority::Retry, 50, &retries);
        tasks.extend(spawn_waiters(&b, Priority::Background, 50, &firsts));
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (r, f) = (count(&retries), count(&firsts));
        for t in tasks {
            t.abort();
        }
        // 120 tokens, shared 2:1 between first reads and retries.
        assert!((75..=85).contains(&f), "first reads got {f}, retries {r}");
        assert!((36..=44).contains(&r), "retries got {r}, first reads {f}");
    }

    #[tokio::test(start_paused = true)]
    async fn drift_checks_keep_a_share_behind_a_long_queue() {
        let b = Arc::new(Budget::new(2.0, 1.0));
        let firsts = Arc::default();
        let tasks = spawn_waiters(&b, Priority::Background, 200, &firsts);
        let mut routine = 0;
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            routine += usize::from(b.try_acquire());
        }
        for t in tasks {
            t.abort();
        }
        // 120 tokens in 60 s: a third to routine work (weights 2:1), not none.
        assert!(
            (36..=44).contains(&routine),
            "routine got {routine}, first reads {}",
            count(&firsts)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_calls_burst_into_the_reserve_but_not_beyond() {
        let b = Arc::new(Budget::with_reserve(2.0, 5.0, URGENT_RESERVE));
        let urgent = Arc::default();
        let firsts = Arc::default();
        let mut tasks = spawn_waiters(&b, Priority::Background, 100, &firsts);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let before = count(&urgent);
        tasks.extend(spawn_waiters(&b, Priority::Urgent, 30, &urgent));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let first_second = count(&urgent) - before;
        tokio::time::sleep(Duration::from_secs(9)).await;
        let ten_seconds = count(&urgent) - before;
        for t in tasks {
            t.abort();
        }
        // The reserve (15) plus the urgent share of 2/s: a burst well inside AWS's
        // 40-token bucket, then the steady share.
        assert!(
            (15..=17).contains(&first_second),
            "{first_second} urgent calls in the first second"
        );
        assert!(
            ten_seconds <= 15 + 20,
            "{ten_seconds} urgent calls in 10 s: the reserve refilled too fast"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_keeps_its_place_across_dropped_waits() {
        let b = Arc::new(Budget::new(1.0, 1.0));
        b.acquire(Priority::Background).await;
        let mut ticket = b.ticket(Priority::Background);
        let behind = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(Priority::Background).await })
        };
        // Waits cut short by a pass deadline, as a target loop does.
        for _ in 0..3 {
            tokio::select! {
                () = ticket.wait() => {}
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
        assert!(!behind.is_finished(), "the later waiter went first");
        ticket.wait().await;
        assert!(ticket.is_granted() && ticket.try_take());
        behind.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_in_line_beats_the_pulse_while_the_line_moves() {
        let b = Arc::new(Budget::new(1.0, 1.0));
        let others = Arc::default();
        let tasks = spawn_waiters(&b, Priority::Background, 100, &others);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let pulse = crate::pulse::Pulse::new();
        let waiter = {
            let (b, pulse) = (b.clone(), pulse.clone());
            tokio::spawn(pulse.carry(async move { b.acquire(Priority::Background).await }))
        };
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let silent = crate::pulse::now().saturating_duration_since(pulse.last());
            assert!(
                silent <= PULSE_EVERY,
                "no beat for {silent:?} while in line"
            );
        }
        assert!(!waiter.is_finished(), "100 ahead at 1/s: still in line");
        waiter.abort();
        for t in tasks {
            t.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_busy_elsewhere_does_not_hold_up_the_line() {
        let b = Arc::new(Budget::new(1.0, 1.0));
        b.acquire(Priority::Background).await;
        // First in line, but its holder is in the middle of something else (a pass).
        let mut busy = b.ticket(Priority::Background);
        let behind = {
            let b = b.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    b.acquire(Priority::Background).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(6500)).await;
        assert!(
            behind.is_finished(),
            "the line stopped behind an idle holder"
        );
        assert!(busy.try_take(), "the token handed to it waits for it");
    }
}
