//! One reconcile pass for one target: resolve -> read -> plan -> apply -> record.
//!
//! A pass never applies from partial data: if the group could not be described, or DNS
//! gave no usable answer, it returns before any mutating call. Additions go ahead on the
//! last read, or before the first one: the daemon takes its first answer as what the group
//! holds, so a change in the answer is registered at once while the start-up reads of a
//! large fleet still trickle in (registering is additive and idempotent). A removal needs a
//! fresh read, or pglink's own successful registration of the new answer just before (the
//! copy is then known to hold it). In the steady state (same answer, group matching it) a
//! pass makes no AWS call at all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tracing::{info, warn};

use crate::budget::{Budget, Priority, Ticket, URGENT_RESERVE};
use crate::config::rds_name;
use crate::config::{Adopt, EndpointSource, SyncSettings, Target};
use crate::discover::{DbEndpoint, Discover};
use crate::error::AwsError;
use crate::logging::join;
use crate::metrics::{Metrics, ProblemLabels, StateLabels};
use crate::ownership;
use crate::plan::{self, History, Observation, Plan, Policy, Registered, TargetKey, TargetState};
use crate::resolve::{DnsFailure, Family, Resolve, Resolved};
use crate::target_state::{unhealthy_advice, unused_advice, Problem, StateWatch};
use crate::targets::{registrable, specs, GroupInfo, TargetGroups};

pub const DEFAULT_PORT: u16 = 5432;
/// While a newly registered target is not yet healthy, the group is re-read this often so
/// that registration-to-healthy is measured; NLB health checks run every 5 s at best.
pub const HEALTH_POLL: Duration = Duration::from_secs(5);
/// How long to keep polling for a registered target to turn healthy.
pub const HEALTH_WAIT_LIMIT: Duration = Duration::from_secs(600);
/// The longest one answer's TTL counts for in the removal delay: a name with an hour-long
/// TTL must not keep a stale target for hours.
pub const MAX_TTL_WINDOW: Duration = Duration::from_secs(60);
/// How long pglink's own successful RegisterTargets vouches for its copy of the group: a
/// removal due within this long after it needs no read. It covers the removal delay (two
/// TTL windows, at most two minutes) and no more: drift by others is found by drift checks.
pub const VOUCH_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error("DNS {host}: {failure}")]
    Dns { host: String, failure: DnsFailure },
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("target group {arn} is not managed by pglink (no tag {key}={value}); set adopt = true on this target to let pglink tag and manage it (the targets it holds now are kept), or adopt = \"replace\" to manage them too")]
    NotOwned {
        arn: String,
        key: &'static str,
        value: &'static str,
    },
    #[error("target group {arn}: {reason}")]
    UnsupportedGroup { arn: String, reason: String },
    #[error("{source_name}: RDS lists no instance to follow ({which}); nothing changed")]
    NoMembers { source_name: String, which: String },
    #[error("DNS {host} answered {ip}, a public address that an NLB cannot target; nothing changed. The name was resolved outside the database's VPC (a publicly accessible database answers its public IP there): resolve through the VPC's resolver (run pglink in the VPC, or set [dns] nameservers to it)")]
    PublicAddress { host: String, ip: IpAddr },
}

impl SyncError {
    /// DNS failures are retried at the normal interval; the rest back off.
    pub fn is_dns(&self) -> bool {
        matches!(self, Self::Dns { .. })
    }

    /// The kinds of its own, beside those of DNS and AWS failures.
    const OWN_KINDS: [&'static str; 4] = [
        "not_owned",
        "unsupported_group",
        "public_address",
        "no_members",
    ];

    /// Every [`SyncError::kind`], for metrics that must exist before the first failure.
    pub fn kinds() -> impl Iterator<Item = &'static str> {
        DnsFailure::KINDS
            .into_iter()
            .chain(AwsError::KINDS)
            .chain(Self::OWN_KINDS)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dns { failure, .. } => failure.kind(),
            Self::Aws(e) => e.kind(),
            Self::NotOwned { .. } => "not_owned",
            Self::UnsupportedGroup { .. } => "unsupported_group",
            Self::PublicAddress { .. } => "public_address",
            Self::NoMembers { .. } => "no_members",
        }
    }
}

/// How a read gets its Describe budget token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Wait in line with this priority.
    Wait(Priority),
    /// Already taken (optional reads take one only when it is free).
    Granted,
}

/// The daemon-wide rate budgets every target draws from.
#[derive(Debug)]
pub struct Budgets {
    /// DNS queries, far below the VPC resolver's ~1024 packets/s per network interface.
    pub dns: Arc<Budget>,
    /// ELBv2 Describe calls: the account's bucket (~10/s refill) is shared with everything
    /// else in that account and region, so each (account, region) has a budget of its own.
    pub describe: Arc<Budget>,
    /// RDS Describe calls of the periodic endpoint and membership refreshes (RDS's API
    /// limits are shared with everything else in the account); a first discovery does not
    /// wait for it.
    pub rds: Arc<Budget>,
}

impl Budgets {
    pub fn new(dns_per_second: f64, describe_per_second: f64) -> Self {
        Self {
            dns: Self::dns(dns_per_second),
            describe: Self::describe(describe_per_second),
            rds: Self::rds(),
        }
    }

    /// The daemon's one DNS budget, shared by every account's [`Budgets`].
    pub fn dns(per_second: f64) -> Arc<Budget> {
        Arc::new(Budget::new(per_second, per_second))
    }

    /// One account and region's ELBv2 Describe budget, with its urgent reserve.
    pub fn describe(per_second: f64) -> Arc<Budget> {
        Arc::new(Budget::with_reserve(
            per_second,
            DESCRIBE_BURST,
            URGENT_RESERVE,
        ))
    }

    /// One account and region's RDS budget.
    pub fn rds() -> Arc<Budget> {
        Arc::new(Budget::new(RDS_PER_SECOND, RDS_BURST))
    }

    /// No practical limit: for tests and one-shot commands.
    pub fn unlimited() -> Self {
        Self {
            rds: Arc::new(Budget::new(1e9, 1e9)),
            ..Self::new(1e9, 1e9)
        }
    }
}

/// ELBv2 Describe calls that may go out back to back before pacing starts.
const DESCRIBE_BURST: f64 = 5.0;
/// RDS Describe calls per second for one account and region, and the burst: a refresh is
/// one or two calls, due every `drift_check` and after a failover.
const RDS_PER_SECOND: f64 = 2.0;
const RDS_BURST: f64 = 10.0;

/// What one target remembers between passes.
#[derive(Debug, Default)]
pub struct Memory {
    /// The daemon's place in line for this target's first read of the group; while it
    /// waits, passes go on from `assumed`. `None` outside the daemon: the first pass waits.
    first_read: Option<Ticket>,
    /// Before the first read: what the group is taken to hold, the first answer and what
    /// pglink registered since.
    assumed: BTreeSet<TargetKey>,
    /// When pglink's own RegisterTargets last succeeded on a copy it had read.
    vouched_at: Option<Instant>,
    /// The group is known to be pglink's (tagged, or adopted), and `kept` is settled.
    owned: bool,
    /// The last ownership check failed: the start-up batch's tags are out of date.
    tags_stale: bool,
    /// Described before the first pass (batched at start-up), not yet checked.
    prefetched: Option<GroupInfo>,
    group: Option<GroupInfo>,
    /// When the group's VPC CIDRs were last read (they decide `AvailabilityZone=all`).
    cidrs_read_at: Option<Instant>,
    /// The database endpoint (with a cluster's members), and when RDS was last asked.
    endpoint: Option<(DbEndpoint, Instant)>,
    /// DNS contradicts the cluster membership RDS gave: read it again soon.
    membership_stale: bool,
    /// The cluster (writer) endpoint's last answer, for a target following instances.
    writer_answer: Option<BTreeSet<IpAddr>>,
    history: History,
    /// Targets that were in the group when it was adopted: never pglink's to remove.
    kept: BTreeSet<TargetKey>,
    /// The longest TTL seen in this name's answers: how long a caching resolver may hold one.
    ttl_window: Duration,
    last_answer: Option<BTreeSet<IpAddr>>,
    registered: Option<(Vec<Registered>, Instant)>,
    /// The pass that first saw the change now being registered: a new address in DNS, or
    /// the group missing one.
    change_seen_at: Option<Instant>,
    /// The last answer the group matched: registering one of its addresses again repairs
    /// drift; registering another one follows a failover.
    settled_answer: Option<BTreeSet<IpAddr>>,
    /// What the reads showed of target states (unused, unhealthy for long).
    states: StateWatch,
    /// Registered by pglink and not yet reported healthy, with the registration time.
    awaiting_health: BTreeMap<TargetKey, Instant>,
}

impl Memory {
    /// Whether the group's targets have been read (the copy is known, not assumed).
    pub fn has_read(&self) -> bool {
        self.registered.is_some()
    }

    /// Waits until this target's turn for its first read comes (and takes the token), or
    /// forever if it has none waiting: for the daemon's wait between passes.
    pub async fn first_read_turn(&mut self) {
        match self.first_read.as_mut() {
            Some(ticket) if !ticket.is_granted() => ticket.wait().await,
            _ => std::future::pending().await,
        }
    }

    /// Targets left alone because they were in the group when it was adopted.
    pub fn kept(&self) -> &BTreeSet<TargetKey> {
        &self.kept
    }

    pub fn group(&self) -> Option<&GroupInfo> {
        self.group.as_ref()
    }

    /// The database's security groups, when RDS named them.
    pub fn security_groups(&self) -> Vec<String> {
        self.endpoint
            .as_ref()
            .map(|(e, _)| e.security_groups.clone())
            .unwrap_or_default()
    }
}

/// The record of one pass, for logs, `plan` and the one-shot `sync`.
#[derive(Debug, Clone)]
pub struct PassReport {
    pub hostname: String,
    pub port: u16,
    pub resolved: Resolved,
    pub registered: Vec<Registered>,
    pub plan: Plan,
    /// True when this pass read the group from AWS.
    pub read_group: bool,
    /// True once the group's targets have been read: until then the plan rests on the
    /// first answer, taken as what the group holds.
    pub group_known: bool,
    pub applied: bool,
}

/// Everything a pass needs, shared by all passes of one target.
pub struct Syncer<G, R, D> {
    pub target: Target,
    pub groups: Arc<G>,
    pub resolver: Arc<R>,
    pub discover: Arc<D>,
    pub settings: SyncSettings,
    pub dry_run: bool,
    pub metrics: Metrics,
    pub budgets: Arc<Budgets>,
    /// The group as described at start-up, if the batched describe found it.
    pub prefetched: Option<GroupInfo>,
}

impl<G: TargetGroups, R: Resolve, D: Discover> Syncer<G, R, D> {
    /// A fresh memory for this target's passes: the first pass waits for its read.
    pub fn memory(&self) -> Memory {
        Memory {
            prefetched: self.prefetched.clone(),
            ..Memory::default()
        }
    }

    /// The daemon's memory: the first read waits in line across passes, which go on from
    /// the first answer meanwhile, so the target is protected from its first pass.
    pub fn daemon_memory(&self) -> Memory {
        Memory {
            first_read: Some(self.budgets.describe.ticket(Priority::Background)),
            ..self.memory()
        }
    }

    pub async fn pass(&self, mem: &mut Memory) -> Result<PassReport, SyncError> {
        let group = self.ensure_group(mem).await?;
        let endpoint = self.ensure_endpoint(mem).await?;
        let port = self.port(&endpoint, &group);
        let resolved = self.resolve(mem, &endpoint, &group).await?;
        let now = Instant::now();
        if mem.change_seen_at.is_none() && answers_new(mem, &resolved) {
            // Detection is this answer, even if this pass fails before registering it.
            mem.change_seen_at = Some(now);
        }
        let mut read_group = false;
        if let Some(turn) = self.routine_read(mem, now) {
            self.read(mem, &group, turn, now).await?;
            read_group = true;
        }
        // A group that is not pglink's keeps failing every pass once it could be checked
        // (read, or its tags at hand; the tag batches go ahead of first reads), so that
        // /readyz says so; before that the first change settles it.
        if !mem.owned && (mem.has_read() || self.tags_at_hand(mem)) {
            self.ensure_owned(mem, Priority::Retry).await?;
        }
        let observation = Observation::Addresses(resolved.addresses.clone());
        if !mem.has_read() && mem.assumed.is_empty() {
            // Not read yet: the first answer stands for what the group holds.
            mem.assumed = resolved
                .addresses
                .iter()
                .map(|ip| TargetKey::new(*ip, port))
                .collect();
        }
        let (mut plan, mut history) = self.decide(mem, &observation, port, now);
        if plan.has_changes() && !mem.owned {
            // A change needs the group's tags: whether it is pglink's, and what it keeps.
            self.ensure_owned(mem, Priority::Urgent).await?;
            (plan, history) = self.decide(mem, &observation, port, now);
        }
        if !plan.deregister.is_empty() && !read_group && !self.vouched(mem, now) {
            // Never remove a target on the strength of an old copy: read, then decide
            // again from the same counts. A plan that only registers goes ahead on the copy:
            // registering is additive and ELBv2 ignores a target already there, so a stale
            // copy costs nothing, while waiting for a Describe token would delay the new
            // address whenever many targets fail over at once. (Drift the copy hides, such
            // as a target removed by hand, is found at the next `drift_check`.)
            self.read(mem, &group, Turn::Wait(Priority::Urgent), now)
                .await?;
            read_group = true;
            (plan, history) = self.decide(mem, &observation, port, now);
        }
        mem.history = history;
        mem.last_answer = Some(resolved.addresses.clone());
        self.track_change(mem, &plan, &resolved, now);
        let registered = mem
            .registered
            .as_ref()
            .map(|(r, _)| r.clone())
            .unwrap_or_default();
        let mut report = PassReport {
            hostname: endpoint.address,
            port,
            resolved,
            registered,
            plan,
            read_group,
            group_known: mem.has_read(),
            applied: false,
        };
        if report.plan.has_changes() {
            self.apply(mem, &group, &report).await.inspect_err(|e| {
                if let SyncError::Aws(e) = e {
                    forget_group_if_gone(mem, e);
                }
            })?;
            report.applied = !self.dry_run;
            if let Some((copy, _)) = &mem.registered {
                self.record_states(&mem.states, copy, now);
            }
        }
        // After the change: the gauge shows what the group holds now.
        let held = mem.registered.as_ref().map_or(0, |(r, _)| r.len());
        self.record_sizes(report.resolved.addresses.len(), held);
        Ok(report)
    }

    fn decide(
        &self,
        mem: &Memory,
        observation: &Observation,
        port: u16,
        now: Instant,
    ) -> (Plan, History) {
        let named = |t: &Registered| match observation {
            Observation::Addresses(a) => a.contains(&t.key.ip),
            Observation::Unusable => false,
        };
        // A kept target counts only while DNS names it, so it is never planned for removal.
        let registered: Vec<Registered> = match &mem.registered {
            Some((read, _)) => read
                .iter()
                .filter(|t| !mem.kept.contains(&t.key) || named(t))
                .copied()
                .collect(),
            None => mem
                .assumed
                .iter()
                .map(|key| Registered {
                    key: *key,
                    state: TargetState::Unknown,
                })
                .collect(),
        };
        let policy = self.policy(mem.ttl_window);
        plan::decide(
            observation,
            port,
            &registered,
            &mem.history,
            policy,
            now.into_std(),
        )
    }

    /// Whether this target's name could rotate: not an RDS instance or writer endpoint,
    /// whether named in the config or found through RDS.
    fn may_rotate(&self) -> bool {
        let single = match &self.target.source {
            // A custom endpoint is followed by its members' own names.
            EndpointSource::DbInstance(_)
            | EndpointSource::DbCluster(_)
            | EndpointSource::DbClusterEndpoint(_) => true,
            // A proxy answers all its addresses; whether they rotate, its answers tell.
            EndpointSource::DbProxy { .. } => false,
            EndpointSource::Hostname(h) => rds_name::classify(h).is_single_instance(),
        };
        !single
    }

    /// Removal waits `confirmations` answers, each counted as one TTL window (a caching
    /// resolver serves the same answer for the whole window) and at least one `interval`.
    pub fn policy(&self, ttl_window: Duration) -> Policy {
        let window = ttl_window.min(MAX_TTL_WINDOW).max(self.settings.interval);
        Policy {
            removal_delay: window.saturating_mul(self.settings.confirmations),
            rotation_hold: self.settings.rotation_hold,
            detect_rotation: self.may_rotate(),
        }
    }

    async fn read(
        &self,
        mem: &mut Memory,
        group: &GroupInfo,
        turn: Turn,
        now: Instant,
    ) -> Result<(), SyncError> {
        if let Turn::Wait(priority) = turn {
            self.budgets.describe.acquire(priority).await;
        }
        let targets = self
            .groups
            .read_targets(&group.arn)
            .await
            .inspect_err(|e| forget_group_if_gone(mem, e))?;
        self.note_health(mem, &targets, now);
        mem.assumed.clear();
        mem.first_read = None;
        let found = mem.states.observe(&targets, now.into_std());
        self.record_states(&mem.states, &targets, now);
        for (key, problem) in found {
            self.report_problem(mem, group, key, problem).await;
        }
        mem.registered = Some((targets, now));
        Ok(())
    }

    /// Whether pglink's own RegisterTargets, on a copy it had read, vouches for the copy:
    /// the new addresses are in (AWS said so), so removing the old ones cannot empty the
    /// group, and a read before the removal would only delay it.
    fn vouched(&self, mem: &Memory, now: Instant) -> bool {
        mem.has_read()
            && mem
                .vouched_at
                .is_some_and(|at| now.duration_since(at) <= VOUCH_WINDOW)
    }

    /// Reads that do not depend on the answer. The daemon's first read waits in line across
    /// passes (see [`Memory::first_read_turn`]); elsewhere the first one waits here. The
    /// read after a failed change waits as a retry. Drift checks and health polling are
    /// optional: they take a token only if one is free, so they never delay this pass's DNS
    /// answer. The read before a removal is made in `pass`.
    fn routine_read(&self, mem: &mut Memory, now: Instant) -> Option<Turn> {
        let Some((_, read_at)) = &mem.registered else {
            if let Some(ticket) = mem.first_read.as_mut() {
                if !ticket.try_take() {
                    return None;
                }
                mem.first_read = None;
                return Some(Turn::Granted);
            }
            let first = mem.last_answer.is_none();
            return Some(Turn::Wait(if first {
                Priority::Background
            } else {
                Priority::Retry
            }));
        };
        let since_read = now.duration_since(*read_at);
        let due = since_read >= self.settings.drift_check
            || (!mem.awaiting_health.is_empty() && since_read >= HEALTH_POLL);
        (due && self.budgets.describe.try_acquire()).then_some(Turn::Granted)
    }

    fn port(&self, endpoint: &DbEndpoint, group: &GroupInfo) -> u16 {
        self.target
            .port
            .or(endpoint.port)
            .or(group.port)
            .unwrap_or(DEFAULT_PORT)
    }

    /// Keeps when the current change was detected (a register planned without a new
    /// answer, such as a target removed by hand, is detected here), and the answer the group
    /// last matched.
    fn track_change(&self, mem: &mut Memory, plan: &Plan, resolved: &Resolved, now: Instant) {
        if plan.register.is_empty() {
            if plan.is_converged() {
                mem.change_seen_at = None;
                mem.settled_answer = Some(resolved.addresses.clone());
            }
        } else if mem.change_seen_at.is_none() {
            mem.change_seen_at = Some(now);
        }
    }
}

/// Whether the answer names an address the previous usable answer did not (or is the first).
fn answers_new(mem: &Memory, resolved: &Resolved) -> bool {
    mem.last_answer
        .as_ref()
        .is_none_or(|last| !resolved.addresses.is_subset(last))
}

/// A group deleted under us is described afresh next pass, so the error says what is wrong.
fn forget_group_if_gone(mem: &mut Memory, err: &AwsError) {
    if err.is_not_found() {
        mem.group = None;
        mem.registered = None;
    }
}

mod answer;
mod apply;
#[cfg(test)]
mod members_tests;
mod sources;
mod states;
#[cfg(test)]
mod tests;
