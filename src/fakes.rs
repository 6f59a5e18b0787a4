//! In-memory fakes behind the adapter traits, for unit tests of sync and the scheduler
//! (cf. external-dns `provider/inmemory`). They record every call so tests can assert on
//! what was sent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::{EndpointSource, Members, SyncSettings};
use crate::discover::{DbEndpoint, Discover};
use crate::error::AwsError;
use crate::ownership;
use crate::plan::{Registered, TargetKey, TargetState};
use crate::resolve::{DnsFailure, Family, Resolve, Resolved};
use crate::target_state::Placement;
use crate::targets::{GroupInfo, TargetGroups, TargetSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Describe,
    Read,
    Register(Vec<TargetSpec>),
    Deregister(Vec<TargetSpec>),
    AddTags,
    Tags,
    VpcCidrs,
    Placement,
}

impl Call {
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Call::Register(_) | Call::Deregister(_) | Call::AddTags
        )
    }
}

#[derive(Debug)]
pub struct FakeGroups {
    pub info: Mutex<GroupInfo>,
    pub targets: Mutex<BTreeMap<TargetKey, TargetState>>,
    pub calls: Mutex<Vec<Call>>,
    /// Errors returned by the next register calls, in order.
    pub register_errors: Mutex<VecDeque<AwsError>>,
    pub read_errors: Mutex<VecDeque<AwsError>>,
    /// Every state of the group after a mutation, to check invariants over time.
    pub history: Mutex<Vec<BTreeSet<TargetKey>>>,
    /// What `placement_of` answers for an unused target.
    pub placement: Mutex<Placement>,
}

pub fn owned_group(arn: &str) -> GroupInfo {
    GroupInfo {
        arn: arn.to_string(),
        target_type: "ip".into(),
        port: Some(5432),
        vpc_id: Some("vpc-1".into()),
        vpc_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
        ipv6: false,
        tags: Some(ownership::ownership_tags("t").into_iter().collect()),
    }
}

impl FakeGroups {
    pub fn new(info: GroupInfo) -> Self {
        Self {
            info: Mutex::new(info),
            targets: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
            register_errors: Mutex::new(VecDeque::new()),
            read_errors: Mutex::new(VecDeque::new()),
            history: Mutex::new(Vec::new()),
            placement: Mutex::new(Placement::default()),
        }
    }

    pub fn keys(&self) -> BTreeSet<TargetKey> {
        self.targets.lock().unwrap().keys().copied().collect()
    }

    pub fn set_state(&self, key: TargetKey, state: TargetState) {
        self.targets.lock().unwrap().insert(key, state);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    pub fn clear_history(&self) {
        self.history.lock().unwrap().clear();
    }

    fn record(&self) {
        let keys = self.keys();
        self.history.lock().unwrap().push(keys);
    }
}

impl TargetGroups for FakeGroups {
    fn cached_tags(&self, _arn: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    async fn read_tags(&self, _arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        self.calls.lock().unwrap().push(Call::Tags);
        Ok(self.info.lock().unwrap().tags.clone().unwrap_or_default())
    }

    async fn describe_group(&self, _arn: &str) -> Result<GroupInfo, AwsError> {
        self.calls.lock().unwrap().push(Call::Describe);
        Ok(self.info.lock().unwrap().clone())
    }

    async fn read_targets(&self, _arn: &str) -> Result<Vec<Registered>, AwsError> {
        self.calls.lock().unwrap().push(Call::Read);
        if let Some(e) = self.read_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        let mut targets = self.targets.lock().unwrap();
        let seen = targets
            .iter()
            .map(|(key, state)| Registered {
                key: *key,
                state: *state,
            })
            .collect();
        // Health checks pass by the next read, as they would on an NLB some seconds later.
        for state in targets.values_mut() {
            if *state == TargetState::Initial {
                *state = TargetState::Healthy;
            }
        }
        Ok(seen)
    }

    async fn register(&self, _arn: &str, specs: &[TargetSpec]) -> Result<(), AwsError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Register(specs.to_vec()));
        if let Some(e) = self.register_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        for s in specs {
            self.targets
                .lock()
                .unwrap()
                .insert(s.key, TargetState::Initial);
        }
        self.record();
        Ok(())
    }

    async fn deregister(&self, _arn: &str, specs: &[TargetSpec]) -> Result<(), AwsError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Deregister(specs.to_vec()));
        for s in specs {
            self.targets.lock().unwrap().remove(&s.key);
        }
        self.record();
        Ok(())
    }

    async fn add_tags(&self, _arn: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(Call::AddTags);
        self.info
            .lock()
            .unwrap()
            .tags
            .get_or_insert_default()
            .extend(tags.iter().cloned());
        Ok(())
    }

    async fn placement_of(&self, _group: &GroupInfo, _ip: IpAddr) -> Result<Placement, AwsError> {
        self.calls.lock().unwrap().push(Call::Placement);
        Ok(self.placement.lock().unwrap().clone())
    }

    async fn vpc_cidrs(&self, _vpc_id: &str, _max_age: Duration) -> Result<Vec<IpNet>, AwsError> {
        self.calls.lock().unwrap().push(Call::VpcCidrs);
        Ok(self.info.lock().unwrap().vpc_cidrs.clone())
    }
}

/// Answers with whatever the test last set (for one name, or for every other); counts
/// queries.
#[derive(Debug)]
pub struct FakeResolver {
    pub answer: Mutex<Result<BTreeSet<IpAddr>, DnsFailure>>,
    pub by_host: Mutex<BTreeMap<String, BTreeSet<IpAddr>>>,
    pub queries: Mutex<u64>,
    pub delay: Mutex<Duration>,
}

impl FakeResolver {
    pub fn new(ips: &[&str]) -> Self {
        let r = Self {
            answer: Mutex::new(Err(DnsFailure::NxDomain)),
            by_host: Mutex::default(),
            queries: Mutex::new(0),
            delay: Mutex::new(Duration::ZERO),
        };
        r.set(ips);
        r
    }

    pub fn set(&self, ips: &[&str]) {
        *self.answer.lock().unwrap() = Ok(ips.iter().map(|s| s.parse().unwrap()).collect());
    }

    pub fn fail(&self, failure: DnsFailure) {
        *self.answer.lock().unwrap() = Err(failure);
    }

    /// `host` answers `ips` from now on, whatever the answer for other names.
    pub fn set_host(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|s| s.parse().unwrap()).collect();
        self.by_host.lock().unwrap().insert(host.to_string(), ips);
    }
}

impl Resolve for FakeResolver {
    async fn resolve(&self, host: &str, _family: Family) -> Result<Resolved, DnsFailure> {
        *self.queries.lock().unwrap() += 1;
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let named = self.by_host.lock().unwrap().get(host).cloned();
        let answer = match named {
            Some(ips) => ips,
            None => self.answer.lock().unwrap().clone()?,
        };
        if answer.is_empty() {
            return Err(DnsFailure::Empty);
        }
        Ok(Resolved {
            addresses: answer,
            ttl: Duration::from_secs(5),
        })
    }
}

/// Hostnames map to themselves; RDS identifiers to `<id>.rds.test` on port 5432, unless a
/// test set another answer (or an error) for every call; counts calls.
#[derive(Debug, Default)]
pub struct FakeDiscover {
    pub answer: Mutex<Option<Result<DbEndpoint, AwsError>>>,
    pub calls: Mutex<u32>,
}

impl Discover for FakeDiscover {
    async fn endpoint(
        &self,
        source: &EndpointSource,
        _members: Members,
    ) -> Result<DbEndpoint, AwsError> {
        *self.calls.lock().unwrap() += 1;
        if let Some(answer) = self.answer.lock().unwrap().clone() {
            return answer;
        }
        Ok(match source {
            EndpointSource::Hostname(h) => DbEndpoint {
                address: h.clone(),
                ..DbEndpoint::default()
            },
            EndpointSource::DbInstance(id)
            | EndpointSource::DbCluster(id)
            | EndpointSource::DbClusterEndpoint(id)
            | EndpointSource::DbProxy { name: id, .. } => DbEndpoint {
                address: format!("{id}.rds.test"),
                port: Some(5432),
                security_groups: vec!["sg-0db".into()],
                members: Vec::new(),
            },
        })
    }
}

/// The config's default sync settings: interval 1 s, drift check 60 s, 2 confirmations,
/// backoff up to 30 s, rotation hold 15 min.
pub fn sync_settings() -> SyncSettings {
    SyncSettings {
        interval: Duration::from_secs(1),
        drift_check: Duration::from_secs(60),
        confirmations: 2,
        max_backoff: Duration::from_secs(30),
        rotation_hold: Duration::from_secs(900),
    }
}
