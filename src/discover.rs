//! RDS API: a `db_instance` or `db_cluster` identifier -> the endpoint to resolve and its
//! port; for a cluster followed instance by instance (`role = "readers"` or `"all"`), its
//! members with their own endpoints and roles.

use std::future::Future;

use aws_sdk_rds::types::{Filter, VpcSecurityGroupMembership};

use crate::aws::{Boxed, Observe, RegionClients};
use crate::config::{EndpointSource, Members};
use crate::error::AwsError;

/// The address and port RDS gives for a database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbEndpoint {
    pub address: String,
    pub port: Option<u16>,
    /// The database's VPC security groups, named when health checks fail.
    pub security_groups: Vec<String>,
    /// A cluster's instances, when the target follows them one by one (else empty).
    pub members: Vec<Member>,
}

/// One instance of a cluster: its own endpoint resolves to its own address, whatever its
/// role, so the set of addresses follows membership, not DNS rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub instance_id: String,
    pub address: String,
    pub writer: bool,
}

impl DbEndpoint {
    /// The members whose role the target follows.
    pub fn followed(&self, members: Members) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(move |m| members.includes(m.writer))
    }
}

pub trait Discover: Send + Sync + 'static {
    fn endpoint(
        &self,
        source: &EndpointSource,
        members: Members,
    ) -> impl Future<Output = Result<DbEndpoint, AwsError>> + Send;
}

#[derive(Clone, Debug)]
pub struct RdsDiscovery {
    clients: RegionClients,
}

impl RdsDiscovery {
    pub fn new(clients: RegionClients) -> Self {
        Self { clients }
    }

    /// The clients RDS is asked with (the database's region, the target's role).
    pub fn clients(&self) -> &RegionClients {
        &self.clients
    }

    async fn instance(&self, id: &str) -> Result<DbEndpoint, AwsError> {
        let out = self
            .clients
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeDBInstances", id)?;
        let db = out.db_instances().first();
        let endpoint = db
            .and_then(|db| db.endpoint())
            .and_then(|e| Some((e.address()?, e.port())));
        match endpoint {
            Some((address, port)) => Ok(DbEndpoint {
                address: address.to_string(),
                port: port.and_then(|p| u16::try_from(p).ok()),
                security_groups: group_ids(db.map(|d| d.vpc_security_groups())),
                members: Vec::new(),
            }),
            None => Err(no_endpoint("DescribeDBInstances", id)),
        }
    }

    async fn cluster(&self, id: &str, members: Members) -> Result<DbEndpoint, AwsError> {
        let out = self
            .clients
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeDBClusters", id)?;
        let cluster = out.db_clusters().first();
        let Some(address) = cluster.and_then(|c| c.endpoint()) else {
            return Err(no_endpoint("DescribeDBClusters", id));
        };
        let writers: Vec<&str> = cluster
            .map(|c| c.db_cluster_members())
            .unwrap_or_default()
            .iter()
            .filter(|m| m.is_cluster_writer() == Some(true))
            .filter_map(|m| m.db_instance_identifier())
            .collect();
        let members = if members.by_instance() {
            self.members(id, &writers).await?
        } else {
            Vec::new()
        };
        Ok(DbEndpoint {
            address: address.to_string(),
            port: cluster
                .and_then(|c| c.port())
                .and_then(|p| u16::try_from(p).ok()),
            security_groups: group_ids(cluster.map(|c| c.vpc_security_groups())),
            members,
        })
    }

    /// The cluster's instances with their own endpoints (one DescribeDBInstances filtered
    /// by cluster, whatever the cluster's size); `writers` from the cluster's membership,
    /// which DescribeDBInstances does not tell. An instance still being created has no
    /// endpoint yet and joins once it has one.
    async fn members(&self, cluster: &str, writers: &[&str]) -> Result<Vec<Member>, AwsError> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .clients
                .rds
                .describe_db_instances()
                .filters(
                    Filter::builder()
                        .name("db-cluster-id")
                        .values(cluster)
                        .build(),
                )
                .set_marker(marker)
                .send()
                .boxed()
                .await
                .pipe_observe(&self.clients, "DescribeDBInstances", cluster)?;
            out.extend(page.db_instances().iter().filter_map(|db| {
                let id = db.db_instance_identifier()?;
                Some(Member {
                    instance_id: id.to_string(),
                    address: db.endpoint()?.address()?.to_string(),
                    writer: writers.contains(&id),
                })
            }));
            marker = page.marker().map(str::to_string);
            if marker.is_none() {
                out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
                return Ok(out);
            }
        }
    }
}

fn group_ids(groups: Option<&[VpcSecurityGroupMembership]>) -> Vec<String> {
    groups
        .unwrap_or_default()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .map(str::to_string)
        .collect()
}

/// A database that exists but has no endpoint yet (still creating): retried later.
fn no_endpoint(op: &'static str, id: &str) -> AwsError {
    AwsError::Transient {
        op,
        detail: format!("{id} has no endpoint yet"),
    }
}

/// An Aurora custom endpoint's members, as AWS defines them: the static members when it has
/// any, else every instance but the excluded ones; a `READER` endpoint never the writer.
/// https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Endpoints.Custom.html
pub fn custom_members(
    all: Vec<Member>,
    static_members: &[String],
    excluded: &[String],
    reader_only: bool,
) -> Vec<Member> {
    all.into_iter()
        .filter(|m| match static_members.is_empty() {
            false => static_members.contains(&m.instance_id),
            true => !excluded.contains(&m.instance_id),
        })
        .filter(|m| !(reader_only && m.writer))
        .collect()
}

/// The port an RDS Proxy listens on: its engine family's default.
/// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-connecting.html
fn proxy_port(engine_family: Option<&str>) -> Option<u16> {
    match engine_family?.to_ascii_uppercase().as_str() {
        "POSTGRESQL" => Some(5432),
        "MYSQL" => Some(3306),
        "SQLSERVER" => Some(1433),
        _ => None,
    }
}

impl RdsDiscovery {
    async fn cluster_endpoint(&self, id: &str) -> Result<DbEndpoint, AwsError> {
        let op = "DescribeDBClusterEndpoints";
        let out = self
            .clients
            .rds
            .describe_db_cluster_endpoints()
            .db_cluster_endpoint_identifier(id)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, op, id)?;
        let Some((e, cluster)) = out
            .db_cluster_endpoints()
            .first()
            .and_then(|e| Some((e, e.db_cluster_identifier()?)))
        else {
            return Err(not_found(op, "cluster endpoint", id));
        };
        let mut endpoint = self.cluster(cluster, Members::All).await?;
        let reader_only = e
            .custom_endpoint_type()
            .is_some_and(|t| t.eq_ignore_ascii_case("READER"));
        endpoint.members = custom_members(
            endpoint.members,
            e.static_members(),
            e.excluded_members(),
            reader_only,
        );
        Ok(endpoint)
    }

    /// The proxy's own endpoint, or one of its endpoints by name; every address it answers
    /// goes into the group.
    async fn proxy(&self, name: &str, endpoint: Option<&str>) -> Result<DbEndpoint, AwsError> {
        let out = self
            .clients
            .rds
            .describe_db_proxies()
            .db_proxy_name(name)
            .send()
            .boxed()
            .await
            .pipe_observe(&self.clients, "DescribeDBProxies", name)?;
        let Some(proxy) = out.db_proxies().first() else {
            return Err(not_found("DescribeDBProxies", "proxy", name));
        };
        let port = proxy_port(proxy.engine_family());
        let owned = |a: Option<&str>, g: &[String]| (a.map(str::to_string), g.to_vec());
        let (address, groups) = match endpoint {
            None => owned(proxy.endpoint(), proxy.vpc_security_group_ids()),
            Some(e) => {
                let op = "DescribeDBProxyEndpoints";
                let out = self
                    .clients
                    .rds
                    .describe_db_proxy_endpoints()
                    .db_proxy_name(name)
                    .db_proxy_endpoint_name(e)
                    .send()
                    .boxed()
                    .await
                    .pipe_observe(&self.clients, op, e)?;
                let Some(found) = out.db_proxy_endpoints().first() else {
                    return Err(not_found(op, "proxy endpoint", e));
                };
                owned(found.endpoint(), found.vpc_security_group_ids())
            }
        };
        match address {
            Some(address) => Ok(DbEndpoint {
                address,
                port,
                security_groups: groups,
                members: Vec::new(),
            }),
            None => Err(no_endpoint("DescribeDBProxies", name)),
        }
    }
}

fn not_found(op: &'static str, what: &str, id: &str) -> AwsError {
    AwsError::NotFound {
        op,
        what: format!("{what} {id}"),
        code: "NotFound".into(),
        message: format!("RDS lists no {what} named {id}"),
    }
}

impl Discover for RdsDiscovery {
    async fn endpoint(
        &self,
        source: &EndpointSource,
        members: Members,
    ) -> Result<DbEndpoint, AwsError> {
        match source {
            EndpointSource::Hostname(h) => Ok(DbEndpoint {
                address: h.clone(),
                ..DbEndpoint::default()
            }),
            EndpointSource::DbInstance(id) => self.instance(id).await,
            EndpointSource::DbCluster(id) => self.cluster(id, members).await,
            EndpointSource::DbClusterEndpoint(id) => self.cluster_endpoint(id).await,
            EndpointSource::DbProxy { name, endpoint } => {
                self.proxy(name, endpoint.as_deref()).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
