//! What DNS says the target's addresses are: one name (an endpoint, an instance, a
//! cluster's writer endpoint), or, for a cluster followed instance by instance, the union of
//! its members' own endpoints (each resolves to its one instance, so the set follows RDS
//! membership and never a reader endpoint's random pick).
//!
//! Membership is read from RDS every `drift_check`, and again as soon as DNS shows that
//! RDS's roles are out of date: the cluster (writer) endpoint answers another address than
//! before (a failover), or the address of an instance the membership calls a reader.

use super::*;
use crate::discover::Member;

/// How soon membership is read again while DNS says it is out of date (RDS reports the
/// new roles a little after the failover's DNS change).
pub const MEMBERSHIP_RETRY: Duration = Duration::from_secs(5);

impl<G: TargetGroups, R: Resolve, D: Discover> Syncer<G, R, D> {
    pub(super) async fn resolve(
        &self,
        mem: &mut Memory,
        endpoint: &DbEndpoint,
        group: &GroupInfo,
    ) -> Result<Resolved, SyncError> {
        if !self.target.members.by_instance() {
            return self.resolve_name(mem, &endpoint.address, group).await;
        }
        let followed: Vec<&Member> = endpoint.followed(self.target.members).collect();
        if followed.is_empty() {
            let which = match &self.target.source {
                EndpointSource::DbClusterEndpoint(_) => "no member has an endpoint".to_string(),
                _ => format!(
                    "none with role = \"{}\" has an endpoint",
                    self.target.members.as_str()
                ),
            };
            return Err(SyncError::NoMembers {
                source_name: self.target.source.to_string(),
                which,
            });
        }
        let mut addresses = BTreeSet::new();
        let mut ttl = Duration::MAX;
        for member in &followed {
            let r = self.resolve_name(mem, &member.address, group).await?;
            addresses.extend(r.addresses);
            ttl = ttl.min(r.ttl);
        }
        // The writer endpoint is only a hint that roles moved: if it does not answer, the
        // members' own answers still stand.
        let family = if group.ipv6 { Family::V6 } else { Family::V4 };
        self.budgets.dns.acquire(Priority::Background).await;
        if let Ok(writer) = self.resolver.resolve(&endpoint.address, family).await {
            self.check_roles(mem, &followed, &addresses, &writer.addresses);
        }
        Ok(Resolved { addresses, ttl })
    }

    /// Marks membership out of date when DNS contradicts it: the writer endpoint moved, or
    /// it names an instance RDS called a reader (or, with every instance followed, not the
    /// one it called the writer).
    fn check_roles(
        &self,
        mem: &mut Memory,
        followed: &[&Member],
        addresses: &BTreeSet<IpAddr>,
        writer: &BTreeSet<IpAddr>,
    ) {
        let moved = mem.writer_answer.as_ref().is_some_and(|w| w != writer);
        // Following the writer, its address must be among ours; following only readers
        // (role = "readers", a READER custom endpoint), it must not be.
        let has_writer = followed.iter().any(|m| m.writer);
        let contradicts = has_writer == writer.is_disjoint(addresses);
        if moved || contradicts {
            if !mem.membership_stale {
                info!(target_name = %self.target.name, writer = %join(writer),
                    "the cluster's writer changed in DNS: reading its membership from RDS again");
            }
            mem.membership_stale = true;
        }
        mem.writer_answer = Some(writer.clone());
    }

    /// Resolves one name: the target's endpoint, or one member instance's.
    async fn resolve_name(
        &self,
        mem: &mut Memory,
        host: &str,
        group: &GroupInfo,
    ) -> Result<Resolved, SyncError> {
        let family = if group.ipv6 { Family::V6 } else { Family::V4 };
        self.budgets.dns.acquire(Priority::Background).await;
        let asked = std::time::Instant::now();
        let answer = self.resolver.resolve(host, family).await;
        (self.metrics.dns_query_duration).observe(asked.elapsed().as_secs_f64());
        let label = answer.as_ref().map_or_else(DnsFailure::kind, |_| "ok");
        let labels = Metrics::result(&self.target.name, label);
        self.metrics.dns_answers.get_or_create(&labels).inc();
        if let Ok(resolved) = &answer {
            mem.ttl_window = mem.ttl_window.max(resolved.ttl);
            refuse_public(host, resolved, group)?;
        }
        answer.map_err(|failure| {
            let discovered = self.target.source != EndpointSource::Hostname(host.to_string());
            if failure == DnsFailure::NxDomain && discovered {
                // The RDS endpoint may have changed (renamed or recreated instance, or a
                // member that left the cluster).
                mem.endpoint = None;
            }
            SyncError::Dns {
                host: host.to_string(),
                failure,
            }
        })
    }
}

/// AWS never registers a publicly routable address; one in the answer means the name was
/// resolved outside the VPC (a publicly accessible database seen from outside), and
/// registering the rest of such an answer would follow the wrong view of DNS.
fn refuse_public(host: &str, resolved: &Resolved, group: &GroupInfo) -> Result<(), SyncError> {
    match resolved
        .addresses
        .iter()
        .find(|ip| !registrable(**ip, &group.vpc_cidrs))
    {
        Some(ip) => Err(SyncError::PublicAddress {
            host: host.to_string(),
            ip: *ip,
        }),
        None => Ok(()),
    }
}
