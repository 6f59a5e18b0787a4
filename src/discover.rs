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
        }
    }
}
