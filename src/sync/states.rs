//! What the reads show of the group's targets: registration-to-healthy, state gauges, and
//! problems (unused, long unhealthy) reported with the cause and the fix.

use super::*;

impl<G: TargetGroups, R: Resolve, D: Discover> Syncer<G, R, D> {
    /// Gauges of the group's targets by state and of the problems that hold.
    pub(super) fn record_states(&self, watch: &StateWatch, targets: &[Registered], now: Instant) {
        let name = &self.target.name;
        for state in TargetState::ALL {
            let count = targets.iter().filter(|t| t.state == state).count();
            let labels = StateLabels {
                target: name.clone(),
                state: state.as_str().into(),
            };
            self.metrics
                .target_states
                .get_or_create(&labels)
                .set(count as i64);
        }
        let problems = watch.current(targets, now.into_std());
        for problem in Problem::ALL {
            let count = problems.iter().filter(|(_, p)| *p == problem).count();
            let labels = ProblemLabels {
                target: name.clone(),
                problem: problem.as_str().into(),
            };
            self.metrics
                .target_problems
                .get_or_create(&labels)
                .set(count as i64);
        }
    }

    /// Says once, with the cause and the fix, that a registered target cannot serve.
    pub(super) async fn report_problem(
        &self,
        mem: &Memory,
        group: &GroupInfo,
        key: TargetKey,
        problem: Problem,
    ) {
        if problem == Problem::Unused {
            // Two ELBv2 Describe calls, once per target that turns unused: in the small
            // retry class, so they neither jump failovers nor wait behind start-up reads.
            self.budgets.describe.acquire(Priority::Retry).await;
            self.budgets.describe.acquire(Priority::Retry).await;
        }
        let advice = self.advice(mem, group, key, problem).await;
        warn!(target_name = %self.target.name, ip = %key.ip, port = key.port, state = %problem, %advice,
            "a registered target cannot serve");
    }

    /// The cause and the fix for a target that cannot serve; for `unused`, its AZ is
    /// looked up against the NLB's.
    pub async fn advice(
        &self,
        mem: &Memory,
        group: &GroupInfo,
        key: TargetKey,
        problem: Problem,
    ) -> String {
        match problem {
            Problem::Unused => match self.groups.placement_of(group, key.ip).await {
                Ok(p) => unused_advice(&p),
                Err(e) => format!(
                    "{}; (could not look up its AZ: {e})",
                    unused_advice(&Default::default())
                ),
            },
            Problem::Unhealthy => unhealthy_advice(key.port, &mem.security_groups()),
        }
    }

    pub(super) fn record_sizes(&self, resolved: usize, registered: usize) {
        let name = Metrics::target(&self.target.name);
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics
            .resolved_addresses
            .get_or_create(&name)
            .set(gauge(resolved));
        self.metrics
            .registered_targets
            .get_or_create(&name)
            .set(gauge(registered));
    }

    /// Records registration-to-healthy for targets pglink registered, once a read shows them
    /// healthy; forgets those that left the group.
    pub(super) fn note_health(&self, mem: &mut Memory, targets: &[Registered], now: Instant) {
        let name = Metrics::target(&self.target.name);
        mem.awaiting_health
            .retain(|key, since| match targets.iter().find(|t| t.key == *key) {
                Some(t) if t.state.is_healthy() => {
                    let waited = now.duration_since(*since);
                    let histogram = self.metrics.registration_to_healthy.get_or_create(&name);
                    histogram.observe(waited.as_secs_f64());
                    info!(target_name = %self.target.name, ip = %key.ip, port = key.port,
                    registration_to_healthy_ms = waited.as_millis() as u64, "target healthy");
                    false
                }
                // Health checks that never pass (a security group blocking them, say)
                // must not keep the group polled forever.
                Some(_) if now.duration_since(*since) >= HEALTH_WAIT_LIMIT => {
                    warn!(target_name = %self.target.name, ip = %key.ip, port = key.port,
                        waited_s = now.duration_since(*since).as_secs(),
                        "target still not healthy: check the NLB's health checks can reach the database");
                    false
                }
                Some(_) => true,
                None => false,
            });
    }
}
