//! What a pass starts from: the target group (described, owned or adopted, its VPC's
//! CIDRs kept current) and the database endpoint (from RDS, refreshed every `drift_check`).

use super::*;

impl<G: TargetGroups, R: Resolve, D: Discover> Syncer<G, R, D> {
    pub(super) async fn ensure_group(&self, mem: &mut Memory) -> Result<GroupInfo, SyncError> {
        self.refresh_cidrs(mem).await;
        if let Some(g) = &mem.group {
            return Ok(g.clone());
        }
        let arn = &self.target.target_group.arn;
        let group = match mem.prefetched.take() {
            Some(group) => group,
            None => {
                // DescribeTargetGroups and DescribeTags, urgent: the start-up batch missed
                // this group, and nothing (not even a registration) can happen without it.
                for _ in 0..2 {
                    self.budgets.describe.acquire(Priority::Urgent).await;
                }
                self.groups.describe_group(arn).await?
            }
        };
        if group.target_type != "ip" {
            return Err(SyncError::UnsupportedGroup {
                arn: arn.clone(),
                reason: format!(
                    "target type is {:?}; pglink keeps \"ip\" target groups in sync",
                    group.target_type
                ),
            });
        }
        mem.group = Some(group);
        mem.owned = false;
        mem.cidrs_read_at = Some(Instant::now());
        // Settled now when it costs no wait (and always outside the daemon), so that a group
        // that is not pglink's is reported at once; otherwise before the first change.
        if self.tags_at_hand(mem) || mem.first_read.is_none() {
            self.ensure_owned(mem, Priority::Urgent).await?;
        }
        Ok(mem.group.clone().expect("described above"))
    }

    /// Makes sure the group is pglink's before anything depends on it: reads its tags if
    /// no batch has, adopts it when the target allows, and notes the targets kept from an
    /// adoption. A group that is not pglink's is asked again next time (it may be tagged
    /// meanwhile).
    pub(super) async fn ensure_owned(
        &self,
        mem: &mut Memory,
        priority: Priority,
    ) -> Result<(), SyncError> {
        if mem.owned {
            return Ok(());
        }
        let Some(mut group) = mem.group.take() else {
            return Ok(());
        };
        let settled = self.settle_ownership(mem, &mut group, priority).await;
        if settled.is_err() {
            // Asked of AWS next time: the group may be tagged meanwhile.
            group.tags = None;
            mem.tags_stale = true;
        }
        mem.group = Some(group);
        settled
    }

    /// Whether ownership can be settled without an AWS call.
    pub(super) fn tags_at_hand(&self, mem: &Memory) -> bool {
        mem.group.as_ref().is_some_and(|g| {
            g.tags.is_some() || (!mem.tags_stale && self.groups.cached_tags(&g.arn).is_some())
        })
    }

    async fn settle_ownership(
        &self,
        mem: &mut Memory,
        group: &mut GroupInfo,
        priority: Priority,
    ) -> Result<(), SyncError> {
        let cached = || (!mem.tags_stale).then(|| self.groups.cached_tags(&group.arn))?;
        let tags = match group.tags.take().or_else(cached) {
            Some(tags) => tags,
            None => {
                self.budgets.describe.acquire(priority).await;
                self.groups.read_tags(&group.arn).await?
            }
        };
        let managed = ownership::is_managed(&tags);
        group.tags = Some(tags);
        if !managed {
            self.adopt(mem, group).await?;
        }
        let tags = group.tags.as_ref().expect("set above");
        mem.kept = match self.target.adopt {
            Adopt::Replace => BTreeSet::new(),
            Adopt::Off | Adopt::Keep => ownership::kept_targets(tags),
        };
        mem.owned = true;
        Ok(())
    }

    /// Re-reads the VPC's CIDRs every `drift_check`, so a CIDR added to the VPC is followed
    /// without a restart. A failed read keeps the last known ones.
    pub(super) async fn refresh_cidrs(&self, mem: &mut Memory) {
        // Due with the drift check's read of the group, so the steady state has one moment
        // of AWS calls per `drift_check`, not two.
        let stale =
            |at: Option<Instant>| at.is_none_or(|t| t.elapsed() >= self.settings.drift_check);
        let due = stale(mem.cidrs_read_at) && stale(mem.registered.as_ref().map(|(_, at)| *at));
        let Some(group) = mem.group.as_mut().filter(|_| due) else {
            return;
        };
        let Some(vpc_id) = group.vpc_id.clone() else {
            return;
        };
        mem.cidrs_read_at = Some(Instant::now());
        match self
            .groups
            .vpc_cidrs(&vpc_id, self.settings.drift_check)
            .await
        {
            Ok(cidrs) if cidrs != group.vpc_cidrs => {
                info!(target_name = %self.target.name, vpc = %vpc_id, cidrs = %join(&cidrs), "the VPC's CIDRs changed");
                group.vpc_cidrs = cidrs;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(target_name = %self.target.name, vpc = %vpc_id, error = %e, "could not re-read the VPC's CIDRs; keeping the last known")
            }
        }
    }

    /// Tags an untagged group as pglink's when the target allows it. With `adopt = true` the
    /// targets it holds now are recorded in the same call, so that pglink never removes
    /// them, across restarts too; `adopt = "replace"` manages them like its own.
    pub(super) async fn adopt(
        &self,
        mem: &mut Memory,
        group: &mut GroupInfo,
    ) -> Result<(), SyncError> {
        let arn = group.arn.clone();
        if !self.target.adopt.is_on() {
            return Err(SyncError::NotOwned {
                arn,
                key: ownership::MANAGED_BY_KEY,
                value: ownership::MANAGED_BY_VALUE,
            });
        }
        let mut tags = ownership::ownership_tags(&self.target.name);
        let mut kept = BTreeSet::new();
        if self.target.adopt == Adopt::Keep {
            // Once per adoption; the targets it finds must be recorded before anything else.
            self.budgets.describe.acquire(Priority::Urgent).await;
            let present = self.groups.read_targets(&arn).await?;
            kept = present
                .iter()
                .filter(|t| !t.state.is_draining())
                .map(|t| t.key)
                .collect();
            let recorded = ownership::kept_tags(&kept).ok_or_else(|| SyncError::UnsupportedGroup {
                arn: arn.clone(),
                reason: format!("it holds {} targets, more than pglink can record as kept in tags; adopt it with adopt = \"replace\" or remove targets by hand first", kept.len()),
            })?;
            tags.extend(recorded);
            mem.registered = Some((present, Instant::now()));
        }
        let kept_list = join(&kept);
        if self.dry_run {
            info!(target_name = %self.target.name, %arn, kept = %kept_list, "dry run: would adopt the target group (tag it as pglink's)");
        } else {
            self.groups.add_tags(&arn, &tags).await?;
            info!(target_name = %self.target.name, %arn, kept = %kept_list, "adopted the target group: tagged it as pglink's; kept targets are left alone");
        }
        group.tags.get_or_insert_default().extend(tags);
        Ok(())
    }

    /// The database's endpoint, from RDS for `db_instance`/`db_cluster`, asked again every
    /// `drift_check` so that a changed endpoint or port is followed without a restart. A
    /// failed refresh keeps the last known endpoint: DNS goes on being followed.
    pub(super) async fn ensure_endpoint(&self, mem: &mut Memory) -> Result<DbEndpoint, SyncError> {
        let from_rds = self.target.source.from_rds();
        if let Some((e, at)) = &mem.endpoint {
            let since = at.elapsed();
            let due = since >= self.settings.drift_check
                || (mem.membership_stale && since >= answer::MEMBERSHIP_RETRY);
            // A refresh is optional: it takes an RDS token only when one is free, and the
            // pass goes on from the known endpoint otherwise (tried again next pass), so a
            // large fleet's refreshes never hold up its DNS answers.
            if !(from_rds && due && self.budgets.rds.try_acquire()) {
                return Ok(e.clone());
            }
        }
        let found = self
            .discover
            .endpoint(&self.target.source, self.target.members)
            .await;
        if found.is_ok() {
            mem.membership_stale = false;
        }
        let endpoint = match found {
            Ok(e) => e,
            Err(err) => {
                let Some((known, at)) = mem.endpoint.as_mut() else {
                    return Err(err.into());
                };
                warn!(target_name = %self.target.name, source = %self.target.source, error = %err,
                    "could not refresh the database endpoint from RDS; keeping the last known");
                *at = Instant::now();
                return Ok(known.clone());
            }
        };
        self.note_endpoint(mem.endpoint.as_ref().map(|(e, _)| e), &endpoint);
        mem.endpoint = Some((endpoint.clone(), Instant::now()));
        Ok(endpoint)
    }

    pub(super) fn note_endpoint(&self, known: Option<&DbEndpoint>, found: &DbEndpoint) {
        let name = &self.target.name;
        if found.port.is_some() && self.target.port.is_some() && found.port != self.target.port {
            warn!(target_name = %name, configured = self.target.port, rds = found.port,
                "configured port differs from the database's port; using the configured one");
        }
        match known {
            None if self.target.source.from_rds() => {
                info!(target_name = %name, source = %self.target.source, hostname = %found.address, "discovered the database endpoint")
            }
            Some(old) if old.address != found.address || old.port != found.port => {
                info!(target_name = %name, source = %self.target.source, hostname = %found.address,
                    port = found.port, was = %old.address, "the database endpoint changed in RDS")
            }
            _ => {}
        }
        let followed = |e: &DbEndpoint| -> Vec<String> {
            e.followed(self.target.members)
                .map(|m| m.instance_id.clone())
                .collect()
        };
        let now = followed(found);
        if self.target.members.by_instance() && known.is_none_or(|k| followed(k) != now) {
            info!(target_name = %name, source = %self.target.source, role = self.target.members.as_str(),
                instances = %join(&now), "following the cluster's instances");
        }
    }
}
