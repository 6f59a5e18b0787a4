//! Liveness and readiness, decided from the status board alone (pure, unit-tested).
//!
//! - live (`/healthz`): every target loop has shown life recently: it finished a pass, or
//!   it is waiting in line for a rate budget that is still moving (the budget beats the
//!   loop's pulse, see [`crate::pulse`]). Apart from such waits, which have no bound (a
//!   thousand start-up reads at 2/s take minutes), a pass is bounded by the DNS timeout and
//!   the AWS operation timeouts, and the wait between passes by `max_backoff`; so a loop
//!   silent for longer than `stall_after` is stuck and the supervisor should restart the
//!   process. Liveness never depends on how many targets are still waiting for a read.
//! - ready (`/readyz`): every target has synced successfully (its group read) at least once
//!   since start, and none has been failing for longer than `not_ready_after`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::scheduler::TargetStatus;

/// Time a healthy loop may go without a sign of life.
pub fn stall_after(interval: Duration, max_backoff: Duration) -> Duration {
    // 60 s covers a pass's own worst case outside budget waits: DNS timeout plus a few
    // 15 s AWS operations.
    interval.max(max_backoff) + Duration::from_secs(60)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    /// One line per target, for the response body.
    pub detail: String,
}

pub fn liveness(
    targets: &[String],
    board: &BTreeMap<String, TargetStatus>,
    started: Instant,
    now: Instant,
    stall_after: Duration,
) -> Verdict {
    let mut ok = true;
    let mut detail = String::new();
    for name in targets {
        let status = board.get(name);
        let beat = status.and_then(|s| s.pulse.as_ref()).map(|p| p.last());
        let last = status
            .and_then(|s| s.last_pass)
            .into_iter()
            .chain(beat)
            .chain([started])
            .max()
            .unwrap_or(started);
        let silent = now.saturating_duration_since(last);
        let line = if silent > stall_after {
            ok = false;
            format!(
                "{name}: stalled, no pass finished for {}s\n",
                silent.as_secs()
            )
        } else {
            format!("{name}: ticking\n")
        };
        detail.push_str(&line);
    }
    Verdict { ok, detail }
}

pub fn readiness(
    targets: &[String],
    board: &BTreeMap<String, TargetStatus>,
    now: Instant,
    not_ready_after: Duration,
) -> Verdict {
    let mut ok = true;
    let mut detail = String::new();
    for name in targets {
        let status = board.get(name);
        let line = match status {
            None => format!("{name}: not synced yet\n"),
            Some(s) if s.successes == 0 => match &s.last_error {
                Some(e) => format!("{name}: not synced yet: {e}\n"),
                None if s.protected => format!(
                    "{name}: not synced yet: protected (a changed answer is registered at once), waiting for its turn to read the target group\n"
                ),
                None => format!("{name}: not synced yet: first pass running\n"),
            },
            Some(s) => match s.failing_since {
                Some(since) if now.saturating_duration_since(since) > not_ready_after => format!(
                    "{name}: failing for {}s: {}\n",
                    now.saturating_duration_since(since).as_secs(),
                    s.last_error.as_deref().unwrap_or("unknown error")
                ),
                Some(_) => {
                    detail.push_str(&format!(
                        "{name}: ok (recent failure: {})\n",
                        s.last_error.as_deref().unwrap_or("")
                    ));
                    continue;
                }
                None => {
                    detail.push_str(&format!("{name}: ok\n"));
                    continue;
                }
            },
        };
        ok = false;
        detail.push_str(&line);
    }
    Verdict { ok, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    fn synced(at: Instant) -> TargetStatus {
        TargetStatus {
            last_pass: Some(at),
            successes: 1,
            passes: 1,
            ..Default::default()
        }
    }

    #[test]
    fn ready_only_after_every_target_synced_once() {
        let t0 = Instant::now();
        let mut board = BTreeMap::new();
        board.insert("a".to_string(), synced(t0));
        let v = readiness(&names(), &board, t0, 60 * S);
        assert!(!v.ok && v.detail.contains("b: not synced yet"), "{v:?}");
        board.insert("b".to_string(), synced(t0));
        assert!(readiness(&names(), &board, t0, 60 * S).ok);
    }

    #[test]
    fn a_short_failure_keeps_ready_a_long_one_does_not() {
        let t0 = Instant::now();
        let mut board = BTreeMap::new();
        board.insert("a".to_string(), synced(t0));
        let mut failing = synced(t0);
        failing.failing_since = Some(t0);
        failing.last_error = Some("DNS h: SERVFAIL".into());
        board.insert("b".to_string(), failing);
        assert!(readiness(&names(), &board, t0 + 30 * S, 60 * S).ok);
        let v = readiness(&names(), &board, t0 + 61 * S, 60 * S);
        assert!(
            !v.ok && v.detail.contains("failing for 61s: DNS h: SERVFAIL"),
            "{v:?}"
        );
    }

    #[test]
    fn live_while_every_loop_ticks() {
        let t0 = Instant::now();
        let mut board = BTreeMap::new();
        board.insert("a".to_string(), synced(t0 + 100 * S));
        board.insert("b".to_string(), synced(t0));
        let stall = stall_after(S, 30 * S);
        assert_eq!(stall, 90 * S);
        assert!(liveness(&names(), &board, t0, t0 + 90 * S, stall).ok);
        let v = liveness(&names(), &board, t0, t0 + 101 * S, stall);
        assert!(!v.ok && v.detail.contains("b: stalled"), "{v:?}");
        // A target with no pass yet counts from the start.
        assert!(liveness(&names(), &BTreeMap::new(), t0, t0 + 10 * S, stall).ok);
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_waiting_in_line_is_live() {
        let t0 = crate::pulse::now();
        let pulse = crate::pulse::Pulse::new();
        let mut board = BTreeMap::new();
        for name in names() {
            board.insert(
                name,
                TargetStatus {
                    pulse: Some(pulse.clone()),
                    ..Default::default()
                },
            );
        }
        let stall = 90 * S;
        // No pass has finished in 10 minutes, but the pulse beats: alive.
        tokio::time::advance(600 * S).await;
        pulse.beat();
        assert!(liveness(&names(), &board, t0, crate::pulse::now(), stall).ok);
        // The beats stop: stalled once silent for longer than `stall`.
        tokio::time::advance(91 * S).await;
        let v = liveness(&names(), &board, t0, crate::pulse::now(), stall);
        assert!(!v.ok && v.detail.contains("stalled"), "{v:?}");
    }

    #[test]
    fn a_protected_target_waiting_for_its_read_is_not_ready_and_says_why() {
        let t0 = Instant::now();
        let mut board = BTreeMap::new();
        board.insert("a".to_string(), synced(t0));
        board.insert(
            "b".to_string(),
            TargetStatus {
                protected: true,
                passes: 3,
                ..Default::default()
            },
        );
        let v = readiness(&names(), &board, t0, 60 * S);
        assert!(
            !v.ok && v.detail.contains("b: not synced yet: protected"),
            "{v:?}"
        );
    }
}
