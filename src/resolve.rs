//! DNS source: hostname -> the set of addresses it currently names, with the answer's TTL.
//!
//! Every call asks the nameserver: the resolver keeps no cache, so a changed record is seen
//! on the next pass (an upstream resolver may still cache up to the record's TTL, which is
//! why detection is bounded by TTL + interval). Failures are classified, never turned into
//! an empty answer, because the planner must not act on them.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::aws::Boxed;
use crate::config::DnsSettings;

/// Which address records to ask for: a target group holds either IPv4 or IPv6 targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// A successful, non-empty answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub addresses: BTreeSet<IpAddr>,
    /// The smallest TTL along the CNAME chain.
    pub ttl: Duration,
}

/// Why a resolution gave nothing to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsFailure {
    #[error("timed out")]
    Timeout,
    #[error("SERVFAIL")]
    ServFail,
    #[error("NXDOMAIN (name does not exist)")]
    NxDomain,
    #[error("no address records (empty answer)")]
    Empty,
    #[error("REFUSED")]
    Refused,
    #[error("no nameserver reachable")]
    Unreachable,
    #[error("{0}")]
    Other(String),
}

impl DnsFailure {
    /// Every [`DnsFailure::kind`], for metrics that must exist before the first failure.
    pub const KINDS: [&'static str; 7] = [
        "timeout",
        "servfail",
        "nxdomain",
        "empty",
        "refused",
        "unreachable",
        "error",
    ];

    /// Label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ServFail => "servfail",
            Self::NxDomain => "nxdomain",
            Self::Empty => "empty",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
            Self::Other(_) => "error",
        }
    }
}

pub trait Resolve: Send + Sync + 'static {
    fn resolve(
        &self,
        host: &str,
        family: Family,
    ) -> impl Future<Output = Result<Resolved, DnsFailure>> + Send;
}

/// hickory-resolver over UDP (TCP on truncation), uncached.
pub struct DnsResolver {
    inner: TokioResolver,
    nameservers: Vec<SocketAddr>,
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsResolver")
            .field("nameservers", &self.nameservers)
            .finish()
    }
}

impl DnsResolver {
    pub fn new(settings: &DnsSettings) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if settings.nameservers.is_empty() {
            TokioResolver::builder_tokio()
                .map_err(|e| format!("reading the system's resolver configuration: {e}"))?
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|a| name_server(*a))
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let opts = builder.options_mut();
        opts.timeout = settings.timeout;
        // `attempts` counts retries. One try per pass: the next pass is the retry, and a
        // silent server must not stall the pass for several timeouts.
        opts.attempts = 0;
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let inner = builder
            .build()
            .map_err(|e| format!("building the DNS resolver: {e}"))?;
        Ok(Self {
            inner,
            nameservers: settings.nameservers.clone(),
        })
    }
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    ns.connections = vec![udp, tcp];
    ns
}

impl Resolve for DnsResolver {
    async fn resolve(&self, host: &str, family: Family) -> Result<Resolved, DnsFailure> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Resolved {
                addresses: BTreeSet::from([ip]),
                ttl: Duration::MAX,
            });
        }
        // A trailing dot makes the name absolute: one query, no search-domain expansion.
        let fqdn = if host.ends_with('.') {
            host.to_string()
        } else {
            format!("{host}.")
        };
        let record_type = match family {
            Family::V4 => RecordType::A,
            Family::V6 => RecordType::AAAA,
        };
        let lookup = self
            .inner
            .lookup(fqdn.as_str(), record_type)
            .boxed()
            .await
            .map_err(|e| classify(&e))?;
        let mut addresses = BTreeSet::new();
        let mut ttl = u32::MAX;
        for record in lookup.answers() {
            ttl = ttl.min(record.ttl);
            match &record.data {
                RData::A(a) if family == Family::V4 => {
                    addresses.insert(IpAddr::V4(a.0));
                }
                RData::AAAA(a) if family == Family::V6 => {
                    addresses.insert(IpAddr::V6(a.0));
                }
                _ => {}
            }
        }
        if addresses.is_empty() {
            return Err(DnsFailure::Empty);
        }
        Ok(Resolved {
            addresses,
            ttl: Duration::from_secs(ttl.into()),
        })
    }
}

/// Maps hickory's errors onto the failures the sync loop distinguishes.
pub fn classify(err: &NetError) -> DnsFailure {
    match err {
        NetError::Timeout => DnsFailure::Timeout,
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => DnsFailure::NxDomain,
            ResponseCode::NoError => DnsFailure::Empty,
            ResponseCode::ServFail => DnsFailure::ServFail,
            ResponseCode::Refused => DnsFailure::Refused,
            other => DnsFailure::Other(format!("response code {other}")),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => match *code {
            ResponseCode::ServFail => DnsFailure::ServFail,
            ResponseCode::Refused => DnsFailure::Refused,
            ResponseCode::NXDomain => DnsFailure::NxDomain,
            other => DnsFailure::Other(format!("response code {other}")),
        },
        NetError::NoConnections | NetError::Io(_) => DnsFailure::Unreachable,
        other => DnsFailure::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;

    fn no_records(code: ResponseCode) -> NetError {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            Query::default(),
            code,
        )))
    }

    #[test]
    fn error_mapping() {
        assert_eq!(classify(&NetError::Timeout), DnsFailure::Timeout);
        assert_eq!(
            classify(&no_records(ResponseCode::NXDomain)),
            DnsFailure::NxDomain
        );
        assert_eq!(
            classify(&no_records(ResponseCode::NoError)),
            DnsFailure::Empty
        );
        assert_eq!(
            classify(&NetError::Dns(DnsError::ResponseCode(
                ResponseCode::ServFail
            ))),
            DnsFailure::ServFail
        );
        assert_eq!(
            classify(&NetError::Dns(DnsError::ResponseCode(
                ResponseCode::Refused
            ))),
            DnsFailure::Refused
        );
        assert_eq!(classify(&NetError::NoConnections), DnsFailure::Unreachable);
        assert!(matches!(
            classify(&NetError::Msg("x".into())),
            DnsFailure::Other(_)
        ));
    }

    #[test]
    fn failure_labels_are_distinct() {
        let all = [
            DnsFailure::Timeout,
            DnsFailure::ServFail,
            DnsFailure::NxDomain,
            DnsFailure::Empty,
            DnsFailure::Refused,
            DnsFailure::Unreachable,
            DnsFailure::Other(String::new()),
        ];
        let labels: BTreeSet<_> = all.iter().map(DnsFailure::kind).collect();
        assert_eq!(labels.len(), all.len());
        assert_eq!(labels, DnsFailure::KINDS.into_iter().collect());
    }
}
