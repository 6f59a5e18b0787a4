//! Applying a plan: register first, then deregister, and count what was done.

use super::*;

impl<G: TargetGroups, R: Resolve, D: Discover> Syncer<G, R, D> {
    /// Registers first, then deregisters: make before break. Any failure stops the pass.
    pub(super) async fn apply(
        &self,
        mem: &mut Memory,
        group: &GroupInfo,
        report: &PassReport,
    ) -> Result<(), SyncError> {
        let plan = &report.plan;
        if self.dry_run {
            self.log_changes("would register", &report.hostname, &plan.register);
            self.log_changes("would deregister", &report.hostname, &plan.deregister);
            return Ok(());
        }
        // Until both calls succeed the group's state is unknown: read it again next pass.
        let cached = mem.registered.take();
        if !plan.register.is_empty() {
            self.log_changes("registering", &report.hostname, &plan.register);
            self.groups
                .register(&group.arn, &specs(&plan.register, &group.vpc_cidrs))
                .await?;
            let since_change = mem
                .change_seen_at
                .map(|t| t.elapsed())
                .unwrap_or(Duration::ZERO);
            info!(target_name = %self.target.name, count = plan.register.len(),
                detection_to_registered_ms = since_change.as_millis() as u64, "registered targets");
            self.count_registration(mem, report, since_change);
        }
        if !plan.deregister.is_empty() {
            self.log_changes("deregistering", &report.hostname, &plan.deregister);
            self.groups
                .deregister(&group.arn, &specs(&plan.deregister, &group.vpc_cidrs))
                .await?;
            // Since the change that replaced them was first seen (unset for a drift repair).
            let since_change = mem.change_seen_at.map(|t| t.elapsed());
            if let Some(waited) = since_change {
                let histogram = self
                    .metrics
                    .detection_to_removal
                    .get_or_create(&Metrics::target(&self.target.name));
                histogram.observe(waited.as_secs_f64());
            }
            info!(target_name = %self.target.name, count = plan.deregister.len(),
                detection_to_removed_ms = since_change.map(|d| d.as_millis() as u64), "deregistered targets");
            let labels = Metrics::action(&self.target.name, "deregister");
            self.metrics
                .changes
                .get_or_create(&labels)
                .inc_by(plan.deregister.len() as u64);
        }
        // Both calls succeeded: the copy is known without reading it again. Before the first
        // read, what was registered joins what the group is taken to hold.
        if cached.is_some() && !plan.register.is_empty() {
            mem.vouched_at = Some(Instant::now());
        }
        if cached.is_none() {
            mem.assumed.extend(plan.register.iter().copied());
        }
        mem.registered = cached.map(|(targets, read_at)| (applied(targets, plan), read_at));
        Ok(())
    }

    pub(super) fn count_registration(
        &self,
        mem: &mut Memory,
        report: &PassReport,
        since_change: Duration,
    ) {
        let name = &self.target.name;
        let registered = report.plan.register.len() as u64;
        let labels = Metrics::action(name, "register");
        self.metrics
            .changes
            .get_or_create(&labels)
            .inc_by(registered);
        let target = Metrics::target(name);
        let histogram = self
            .metrics
            .detection_to_registration
            .get_or_create(&target);
        histogram.observe(since_change.as_secs_f64());
        // An address of the answer the group last matched is drift repaired (the group lost
        // it); another one registered while the group held a serving target is a failover.
        let settled = |k: &TargetKey| {
            mem.settled_answer
                .as_ref()
                .is_some_and(|a| a.contains(&k.ip))
        };
        // An address joining while the last matched answer is still whole (a reader or a
        // proxy address added) is neither.
        let replaced = mem
            .settled_answer
            .as_ref()
            .is_none_or(|a| !a.is_subset(&report.resolved.addresses));
        if report.plan.register.iter().any(settled) {
            self.metrics.drift_repairs.get_or_create(&target).inc();
        } else if replaced && report.registered.iter().any(|r| !r.state.is_draining()) {
            self.metrics.failovers.get_or_create(&target).inc();
        }
        let now = Instant::now();
        mem.awaiting_health
            .extend(report.plan.register.iter().map(|k| (*k, now)));
    }

    pub(super) fn log_changes(&self, action: &str, hostname: &str, keys: &[TargetKey]) {
        for k in keys {
            info!(target_name = %self.target.name, hostname, ip = %k.ip, port = k.port, action, "target change");
        }
    }
}

/// The group's targets after `plan` was applied successfully: new ones start `initial`.
pub(super) fn applied(mut targets: Vec<Registered>, plan: &Plan) -> Vec<Registered> {
    targets.retain(|t| !plan.deregister.contains(&t.key));
    for key in &plan.register {
        match targets.iter_mut().find(|t| t.key == *key) {
            Some(t) => t.state = TargetState::Initial,
            None => targets.push(Registered {
                key: *key,
                state: TargetState::Initial,
            }),
        }
    }
    targets.sort_by_key(|t| t.key);
    targets
}
