//! RDS API: a `db_instance` or `db_cluster` identifier -> the endpoint to resolve and its port.

use std::future::Future;

use aws_sdk_rds::types::VpcSecurityGroupMembership;

use crate::aws::{Boxed, Observe, RegionClients};
use crate::config::EndpointSource;
use crate::error::AwsError;

/// The address and port RDS gives for a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbEndpoint {
    pub address: String,
    pub port: Option<u16>,
    /// The database's VPC security groups, named when health checks fail.
    pub security_groups: Vec<String>,
}

pub trait Discover: Send + Sync + 'static {
    fn endpoint(
        &self,
        source: &EndpointSource,
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
            }),
            None => Err(no_endpoint("DescribeDBInstances", id)),
        }
    }

    async fn cluster(&self, id: &str) -> Result<DbEndpoint, AwsError> {
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
        match cluster.and_then(|c| c.endpoint()) {
            Some(address) => Ok(DbEndpoint {
                address: address.to_string(),
                port: cluster
                    .and_then(|c| c.port())
                    .and_then(|p| u16::try_from(p).ok()),
                security_groups: group_ids(cluster.map(|c| c.vpc_security_groups())),
            }),
            None => Err(no_endpoint("DescribeDBClusters", id)),
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
    async fn endpoint(&self, source: &EndpointSource) -> Result<DbEndpoint, AwsError> {
        match source {
            EndpointSource::Hostname(h) => Ok(DbEndpoint {
                address: h.clone(),
                port: None,
                security_groups: Vec::new(),
            }),
            EndpointSource::DbInstance(id) => self.instance(id).await,
            EndpointSource::DbCluster(id) => self.cluster(id).await,
        }
    }
}
