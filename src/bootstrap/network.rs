//! Where the stack goes: from the database kind (and explicit overrides) to the VPC, the NLB
//! subnets, the database's security groups, port and AZs, and the initial target.

use std::collections::BTreeSet;
use std::net::IpAddr;

use aws_sdk_ec2::types::Filter;
use ipnet::IpNet;

use crate::aws::{Observe, RegionClients};
use crate::config::{BootstrapSettings, DatabaseKind};
use crate::error::AwsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub az: String,
    pub vpc_id: String,
    /// The AZ's ID (`use1-az1`): AZ names differ between accounts, IDs do not.
    pub az_id: Option<String>,
    /// The account that owns the subnet: another one's is a shared subnet.
    pub owner_id: Option<String>,
}

impl Subnet {
    fn from_ec2(s: &aws_sdk_ec2::types::Subnet) -> Self {
        Self {
            id: s.subnet_id().unwrap_or_default().to_string(),
            az: s.availability_zone().unwrap_or_default().to_string(),
            vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            az_id: s.availability_zone_id().map(str::to_string),
            owner_id: s.owner_id().map(str::to_string),
        }
    }
}

/// What the first registration puts in the target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitialTarget {
    /// An RDS endpoint, resolved through DNS at bootstrap time.
    Hostname(String),
    Ip(IpAddr),
    /// An EC2 instance, registered by ID (instance target group).
    Instance(String),
    /// An Auto Scaling group: the group is attached and registers its own instances.
    AutoScalingGroup(String),
}

impl InitialTarget {
    /// Instances and Auto Scaling groups use an instance target group, the rest IP.
    pub fn by_instance(&self) -> bool {
        matches!(self, Self::Instance(_) | Self::AutoScalingGroup(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub vpc_id: String,
    pub vpc_cidrs: Vec<IpNet>,
    /// The NLB's subnets: one per Availability Zone.
    pub subnets: Vec<Subnet>,
    /// Subnets of the DB subnet group left out because their AZ already has one.
    pub skipped_subnets: Vec<Subnet>,
    /// The database's own VPC, when AWS knows it (not for on-premises).
    pub database_vpc_id: Option<String>,
    /// The RDS instance's or cluster's ARN.
    pub database_arn: Option<String>,
    /// Security groups that get the NLB ingress rule (AWS-hosted databases only).
    pub database_security_groups: Vec<String>,
    pub database_port: Option<u16>,
    /// Every AZ the database can run in (its DB subnet group).
    pub database_azs: BTreeSet<String>,
    pub publicly_accessible: bool,
    pub multi_az: Option<bool>,
    pub initial_target: InitialTarget,
}

/// What the database's description gave, before overrides.
#[derive(Debug, Default)]
struct Database {
    /// The RDS instance's or cluster's ARN.
    arn: Option<String>,
    vpc_id: Option<String>,
    subnet_ids: Vec<String>,
    security_groups: Vec<String>,
    port: Option<u16>,
    publicly_accessible: bool,
    multi_az: Option<bool>,
    endpoint: Option<String>,
}

/// A configuration that cannot be placed: reported as bad input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Aws(#[from] AwsError),
}

pub async fn derive(c: &RegionClients, s: &BootstrapSettings) -> Result<Placement, PlacementError> {
    let db = match &s.database {
        DatabaseKind::DbInstance(id) => instance(c, id).await?,
        DatabaseKind::DbCluster(id) => cluster(c, id).await?,
        DatabaseKind::Ip(_) | DatabaseKind::Host(_) => Database::default(),
        DatabaseKind::Ec2Instance(id) => ec2_instance(c, id).await?,
        DatabaseKind::AutoscalingGroup(name) => autoscaling_group(c, name).await?,
    };
    let vpc_id = s.vpc_id.clone().or(db.vpc_id.clone()).ok_or_else(|| {
        PlacementError::Input(
            "bootstrap.vpc_id: required when the database is given by ip or host".into(),
        )
    })?;
    let db_subnets = describe_subnets(c, &db.subnet_ids).await?;
    let subnets = match &s.subnet_ids {
        Some(ids) => describe_subnets(c, ids).await?,
        // A single instance lives in one subnet: the NLB also needs the VPC's other AZs.
        None if matches!(s.database, DatabaseKind::Ec2Instance(_)) => one_subnet_per_az(c, &vpc_id, &db_subnets).await?,
        None if !db_subnets.is_empty() => db_subnets.clone(),
        None => {
            return Err(PlacementError::Input(
                "bootstrap.subnet_ids: required when the database is given by ip or host (at least two subnets in different AZs)".into(),
            ))
        }
    };
    // Explicit subnets are checked as given (preflight refuses two in one AZ); derived ones
    // are narrowed to one per AZ here.
    let (subnets, skipped_subnets) = match &s.subnet_ids {
        Some(_) => (subnets, Vec::new()),
        None => one_per_az(subnets),
    };
    let security_groups = match (&s.database_security_group_id, &s.database) {
        (Some(sg), _) => vec![sg.clone()],
        (None, DatabaseKind::Ip(_) | DatabaseKind::Host(_)) => Vec::new(),
        (None, _) => db.security_groups.clone(),
    };
    let initial_target = match (&s.database, &db.endpoint) {
        (DatabaseKind::Ip(ip), _) => InitialTarget::Ip(*ip),
        (DatabaseKind::Ec2Instance(id), _) => InitialTarget::Instance(id.clone()),
        (DatabaseKind::AutoscalingGroup(name), _) => InitialTarget::AutoScalingGroup(name.clone()),
        (DatabaseKind::Host(host), _) => InitialTarget::Hostname(host.clone()),
        (_, Some(host)) => InitialTarget::Hostname(host.clone()),
        _ => {
            return Err(AwsError::Transient {
                op: "DescribeDBInstances",
                detail: "the database has no endpoint yet".into(),
            }
            .into())
        }
    };
    Ok(Placement {
        vpc_cidrs: vpc_cidrs(c, &vpc_id).await?,
        vpc_id,
        subnets,
        skipped_subnets,
        database_vpc_id: db.vpc_id,
        database_arn: db.arn,
        database_security_groups: security_groups,
        database_port: db.port,
        database_azs: db_subnets.into_iter().map(|s| s.az).collect(),
        publicly_accessible: db.publicly_accessible,
        multi_az: db.multi_az,
        initial_target,
    })
}

async fn instance(c: &RegionClients, id: &str) -> Result<Database, PlacementError> {
    let out = c
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .pipe_observe(c, "DescribeDBInstances", id)
        .map_err(|e| not_found_is_input(e, "bootstrap.database.db_instance", id))?;
    let Some(db) = out.db_instances().first() else {
        return Err(PlacementError::Input(format!(
            "bootstrap.database.db_instance: no RDS instance {id:?}"
        )));
    };
    let group = db.db_subnet_group();
    Ok(Database {
        arn: db.db_instance_arn().map(str::to_string),
        vpc_id: group.and_then(|g| g.vpc_id()).map(str::to_string),
        subnet_ids: group
            .map(|g| {
                g.subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_string)
            .collect(),
        port: db
            .endpoint()
            .and_then(|e| e.port())
            .and_then(|p| u16::try_from(p).ok()),
        publicly_accessible: db.publicly_accessible().unwrap_or(false),
        multi_az: db.multi_az(),
        endpoint: db.endpoint().and_then(|e| e.address()).map(str::to_string),
    })
}

async fn cluster(c: &RegionClients, id: &str) -> Result<Database, PlacementError> {
    let out = c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .pipe_observe(c, "DescribeDBClusters", id)
        .map_err(|e| not_found_is_input(e, "bootstrap.database.db_cluster", id))?;
    let Some(cluster) = out.db_clusters().first() else {
        return Err(PlacementError::Input(format!(
            "bootstrap.database.db_cluster: no RDS cluster {id:?}"
        )));
    };
    let mut db = Database {
        security_groups: cluster
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_string)
            .collect(),
        port: cluster.port().and_then(|p| u16::try_from(p).ok()),
        publicly_accessible: cluster.publicly_accessible().unwrap_or(false),
        multi_az: cluster.multi_az(),
        endpoint: cluster.endpoint().map(str::to_string),
        arn: cluster.db_cluster_arn().map(str::to_string),
        ..Database::default()
    };
    if let Some(name) = cluster.db_subnet_group() {
        let groups = c
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(name)
            .send()
            .await
            .pipe_observe(c, "DescribeDBSubnetGroups", name)?;
        if let Some(g) = groups.db_subnet_groups().first() {
            db.vpc_id = g.vpc_id().map(str::to_string);
            db.subnet_ids = g
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_identifier())
                .map(str::to_string)
                .collect();
        }
    }
    Ok(db)
}

async fn ec2_instance(c: &RegionClients, id: &str) -> Result<Database, PlacementError> {
    let out = c
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .pipe_observe(c, "DescribeInstances", id)
        .map_err(|e| not_found_is_input(e, "bootstrap.database.ec2_instance", id))?;
    let instance = out.reservations().iter().flat_map(|r| r.instances()).next();
    let Some(i) = instance else {
        return Err(PlacementError::Input(format!(
            "bootstrap.database.ec2_instance: no instance {id:?} in this region"
        )));
    };
    Ok(Database {
        vpc_id: i.vpc_id().map(str::to_string),
        subnet_ids: i.subnet_id().map(str::to_string).into_iter().collect(),
        security_groups: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .map(str::to_string)
            .collect(),
        ..Database::default()
    })
}

async fn autoscaling_group(c: &RegionClients, name: &str) -> Result<Database, PlacementError> {
    let out = c
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .pipe_observe(c, "DescribeAutoScalingGroups", name)?;
    let Some(group) = out.auto_scaling_groups().first() else {
        return Err(PlacementError::Input(format!(
            "bootstrap.database.autoscaling_group: no Auto Scaling group {name:?} in this region"
        )));
    };
    let subnet_ids: Vec<String> = group
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let subnets = describe_subnets(c, &subnet_ids).await?;
    // The instances' groups get the NLB rule, as for a single instance.
    let instance_ids: Vec<String> = group
        .instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .map(str::to_string)
        .collect();
    let mut security_groups = BTreeSet::new();
    if !instance_ids.is_empty() {
        let out = c
            .ec2
            .describe_instances()
            .set_instance_ids(Some(instance_ids))
            .send()
            .await
            .pipe_observe(c, "DescribeInstances", name)?;
        let instances = out.reservations().iter().flat_map(|r| r.instances());
        security_groups.extend(
            instances
                .flat_map(|i| i.security_groups())
                .filter_map(|g| g.group_id())
                .map(str::to_string),
        );
    }
    Ok(Database {
        vpc_id: subnets.first().map(|s| s.vpc_id.clone()),
        subnet_ids,
        security_groups: security_groups.into_iter().collect(),
        ..Database::default()
    })
}

/// The instance's subnet, plus the first subnet (by ID) of every other AZ in the VPC.
async fn one_subnet_per_az(
    c: &RegionClients,
    vpc_id: &str,
    own: &[Subnet],
) -> Result<Vec<Subnet>, PlacementError> {
    let out = c
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .pipe_observe(c, "DescribeSubnets", vpc_id)?;
    let mut chosen: Vec<Subnet> = one_per_az(own.to_vec()).0;
    let mut all: Vec<Subnet> = out.subnets().iter().map(Subnet::from_ec2).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    for s in all {
        if !chosen.iter().any(|c| c.az == s.az) {
            chosen.push(s);
        }
    }
    chosen.sort_by(|a, b| a.az.cmp(&b.az));
    Ok(chosen)
}

/// An NLB takes one subnet per Availability Zone: "You can specify only one subnet per
/// Availability Zone"
/// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html>),
/// and a DB subnet group often has several in one AZ. Keeps the lowest subnet ID of each AZ,
/// so every run picks the same one, and returns the rest.
pub fn one_per_az(mut subnets: Vec<Subnet>) -> (Vec<Subnet>, Vec<Subnet>) {
    subnets.sort_by(|a, b| a.az.cmp(&b.az).then(a.id.cmp(&b.id)));
    let (mut chosen, mut skipped): (Vec<Subnet>, Vec<Subnet>) = (Vec::new(), Vec::new());
    for s in subnets {
        if chosen.last().is_some_and(|c| c.az == s.az) {
            skipped.push(s);
        } else {
            chosen.push(s);
        }
    }
    (chosen, skipped)
}

fn not_found_is_input(e: AwsError, key: &str, id: &str) -> PlacementError {
    if e.is_not_found() {
        PlacementError::Input(format!("{key}: no such database {id:?} in this region"))
    } else {
        e.into()
    }
}

async fn describe_subnets(
    c: &RegionClients,
    ids: &[String],
) -> Result<Vec<Subnet>, PlacementError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = c
        .ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids.to_vec()))
        .send()
        .await
        .pipe_observe(c, "DescribeSubnets", &ids.join(","))
        .map_err(|e| match e.is_not_found() {
            true => PlacementError::Input(format!("bootstrap.subnet_ids: {}", e)),
            false => e.into(),
        })?;
    let mut subnets: Vec<Subnet> = out.subnets().iter().map(Subnet::from_ec2).collect();
    subnets.sort_by(|a, b| a.az.cmp(&b.az).then(a.id.cmp(&b.id)));
    Ok(subnets)
}

async fn vpc_cidrs(c: &RegionClients, vpc_id: &str) -> Result<Vec<IpNet>, PlacementError> {
    let out = c
        .ec2
        .describe_vpcs()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .send()
        .await
        .pipe_observe(c, "DescribeVpcs", vpc_id)?;
    let Some(vpc) = out.vpcs().first() else {
        return Err(PlacementError::Input(format!(
            "bootstrap.vpc_id: no VPC {vpc_id:?} in this region"
        )));
    };
    let cidrs = crate::targets::cidrs_of(vpc);
    Ok(cidrs)
}

/// A subnet of "vpc-1", for tests here and in preflight.
#[cfg(test)]
pub(crate) fn subnet(id: &str, az: &str) -> Subnet {
    Subnet {
        id: id.into(),
        az: az.into(),
        vpc_id: "vpc-1".into(),
        az_id: None,
        owner_id: None,
    }
}

/// A good placement in "vpc-1" across two AZs, for tests here and in preflight.
#[cfg(test)]
pub(crate) fn placement() -> Placement {
    Placement {
        vpc_id: "vpc-1".into(),
        vpc_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
        subnets: vec![
            subnet("subnet-a", "us-east-1a"),
            subnet("subnet-b", "us-east-1b"),
        ],
        skipped_subnets: Vec::new(),
        database_vpc_id: Some("vpc-1".into()),
        database_arn: Some("arn:aws:rds:us-east-1:111122223333:db:analytics".into()),
        database_security_groups: vec!["sg-db".into()],
        database_port: Some(5432),
        database_azs: ["us-east-1a".to_string(), "us-east-1b".to_string()].into(),
        publicly_accessible: false,
        multi_az: Some(true),
        initial_target: InitialTarget::Hostname("db.example".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_subnet_per_az_lowest_id_first_whatever_the_order() {
        let group = vec![
            subnet("subnet-0c", "us-east-1a"),
            subnet("subnet-0b", "us-east-1b"),
            subnet("subnet-0a", "us-east-1a"),
            subnet("subnet-0d", "us-east-1c"),
            subnet("subnet-0e", "us-east-1b"),
        ];
        let (chosen, skipped) = one_per_az(group.clone());
        let ids = |v: &[Subnet]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&chosen), ["subnet-0a", "subnet-0b", "subnet-0d"]);
        assert_eq!(ids(&skipped), ["subnet-0c", "subnet-0e"]);
        let mut reversed = group;
        reversed.reverse();
        assert_eq!(one_per_az(reversed).0, chosen);
    }
}
