//! The daemon's policy (`run`, `sync`, `plan`): read what it must, change targets only in
//! the target groups the configuration names, and only while they carry pglink's tag.
//!
//! Resource-level support and condition keys per action, from the Service Authorization
//! Reference:
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html

use std::collections::BTreeSet;

use super::{Policy, Scope, Statement};
use crate::config::{Config, EndpointSource, Target};
use crate::ownership::{KEPT_TARGETS_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, NAME_KEY};

/// Whose policy: the daemon's own credentials, or a role that targets assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Daemon,
    Role(String),
}

/// Read calls without resource-level permissions in IAM: they take `"Resource": "*"` and
/// show only descriptions and tags, never data.
const READS: &[&str] = &[
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeLoadBalancers",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
];

/// The targets whose calls are made with `who`'s credentials.
pub(super) fn served<'a>(config: &'a Config, who: &Credentials) -> Vec<&'a Target> {
    config
        .targets
        .iter()
        .filter(|t| match (who, &t.role) {
            (Credentials::Daemon, None) => true,
            (Credentials::Role(arn), Some(role)) => role.arn == *arn,
            _ => false,
        })
        .collect()
}

pub(super) fn scope_of(t: &Target, region: &str) -> Scope {
    Scope {
        partition: t.target_group.partition.clone(),
        region: region.to_string(),
        account: t.target_group.account.clone(),
    }
}

/// The policy for `who`, or why there is none (no target uses those credentials).
pub fn policy(config: &Config, who: &Credentials) -> Result<Policy, String> {
    let targets = served(config, who);
    let roles: BTreeSet<&str> = config
        .targets
        .iter()
        .filter_map(|t| t.role.as_ref().map(|r| r.arn.as_str()))
        .collect();
    if targets.is_empty() && (*who != Credentials::Daemon || roles.is_empty()) {
        return Err(match who {
            Credentials::Daemon => "no target in the configuration".into(),
            Credentials::Role(arn) => format!("no target has role_arn = {arn:?}"),
        });
    }
    let mut statements = Vec::new();
    if !targets.is_empty() {
        statements.push(Statement::new(
            "ReadTargetGroupsAndNetworks",
            READS,
            vec!["*".into()],
        ));
    }
    let databases = |want: fn(&EndpointSource) -> Option<&str>, kind: &str| {
        targets
            .iter()
            .filter_map(|t| {
                let id = want(&t.source)?;
                Some(scope_of(t, &t.database_region).arn("rds", &format!("{kind}:{id}")))
            })
            .collect::<BTreeSet<_>>()
    };
    let instances = databases(
        |s| match s {
            EndpointSource::DbInstance(id) => Some(id),
            _ => None,
        },
        "db",
    );
    if !instances.is_empty() {
        statements.push(Statement::new(
            "ReadTheseDatabaseInstances",
            &["rds:DescribeDBInstances"],
            instances.into_iter().collect(),
        ));
    }
    let clusters = databases(
        |s| match s {
            EndpointSource::DbCluster(id) => Some(id),
            _ => None,
        },
        "cluster",
    );
    if !clusters.is_empty() {
        statements.push(Statement::new(
            "ReadTheseDatabaseClusters",
            &["rds:DescribeDBClusters"],
            clusters.into_iter().collect(),
        ));
    }
    // A custom endpoint is read by name, then its cluster, which the config does not name;
    // a proxy's ARN holds its resource ID, not its name. Read-only, in the database's
    // account and region. https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
    let rds_reads = |want: fn(&EndpointSource) -> Option<Vec<String>>| {
        targets
            .iter()
            .flat_map(|t| {
                let scope = scope_of(t, &t.database_region);
                want(&t.source)
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |r| scope.arn("rds", &r))
            })
            .collect::<BTreeSet<_>>()
    };
    let custom = rds_reads(|s| match s {
        EndpointSource::DbClusterEndpoint(id) => {
            Some(vec![format!("cluster-endpoint:{id}"), "cluster:*".into()])
        }
        _ => None,
    });
    if !custom.is_empty() {
        statements.push(Statement::new(
            "ReadTheseCustomEndpointsAndTheirClusters",
            &["rds:DescribeDBClusterEndpoints", "rds:DescribeDBClusters"],
            custom.into_iter().collect(),
        ));
    }
    let proxies = rds_reads(|s| match s {
        EndpointSource::DbProxy { endpoint, .. } => Some(match endpoint {
            None => vec!["db-proxy:*".into()],
            Some(_) => vec!["db-proxy:*".into(), "db-proxy-endpoint:*".into()],
        }),
        _ => None,
    });
    if !proxies.is_empty() {
        let mut actions = vec!["rds:DescribeDBProxies"];
        if targets.iter().any(|t| {
            matches!(
                &t.source,
                EndpointSource::DbProxy {
                    endpoint: Some(_),
                    ..
                }
            )
        }) {
            actions.push("rds:DescribeDBProxyEndpoints");
        }
        statements.push(Statement::new(
            "ReadProxies",
            &actions,
            proxies.into_iter().collect(),
        ));
    }
    // A cluster followed instance by instance lists its instances with DescribeDBInstances
    // filtered by cluster: with no instance named, IAM authorizes it on every instance
    // (`db:*`) of the account and region. Read-only, and no identifier narrows it.
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
    let member_reads: BTreeSet<String> = targets
        .iter()
        .filter(|t| t.members.by_instance())
        .map(|t| scope_of(t, &t.database_region).arn("rds", "db:*"))
        .collect();
    if !member_reads.is_empty() {
        statements.push(Statement::new(
            "ListTheInstancesOfClustersFollowedByInstance",
            &["rds:DescribeDBInstances"],
            member_reads.into_iter().collect(),
        ));
    }
    let groups: BTreeSet<String> = targets.iter().map(|t| t.target_group.arn.clone()).collect();
    if !groups.is_empty() {
        statements.push(
            Statement::new(
                "ChangeTargetsOnlyInTheseTargetGroupsWhileTaggedPglink",
                &[
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                groups.into_iter().collect(),
            )
            .when(
                "StringEquals",
                &format!("aws:ResourceTag/{MANAGED_BY_KEY}"),
                &[MANAGED_BY_VALUE],
            ),
        );
    }
    let adopted: BTreeSet<String> = targets
        .iter()
        .filter(|t| t.adopt.is_on())
        .map(|t| t.target_group.arn.clone())
        .collect();
    if !adopted.is_empty() {
        let kept = format!("{KEPT_TARGETS_KEY}*");
        statements.push(
            Statement::new(
                "AdoptTheseTargetGroupsByAddingOnlyPglinkTags",
                &["elasticloadbalancing:AddTags"],
                adopted.into_iter().collect(),
            )
            .when(
                "StringEquals",
                &format!("aws:RequestTag/{MANAGED_BY_KEY}"),
                &[MANAGED_BY_VALUE],
            )
            .when(
                "ForAllValues:StringLike",
                "aws:TagKeys",
                &[MANAGED_BY_KEY, NAME_KEY, &kept],
            ),
        );
    }
    if *who == Credentials::Daemon && !roles.is_empty() {
        statements.push(Statement::new(
            "AssumeTheTargetRoles",
            &["sts:AssumeRole"],
            roles.into_iter().map(str::to_string).collect(),
        ));
    }
    Ok(Policy { statements })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::iam::eval::{allowing, Request};

    const ACCOUNT: &str = "111111111111";
    const OTHER: &str = "222222222222";

    fn tg(account: &str, name: &str) -> String {
        format!(
            "arn:aws:elasticloadbalancing:us-east-1:{account}:targetgroup/{name}/0123456789abcdef"
        )
    }

    fn config(text: &str) -> Config {
        crate::config::parse(text, "test").expect("valid config").1
    }

    fn doc(config: &Config, who: &Credentials) -> Value {
        serde_json::from_str(&policy(config, who).expect("a policy").to_json()).unwrap()
    }

    fn every_shape() -> Config {
        config(&format!(
            r#"
[[targets]]
name = "by-name"
endpoint = "db.c9akciq32.us-east-1.rds.amazonaws.com"
target_group = "{}"

[[targets]]
name = "instance"
db_instance = "orders"
target_group = "{}"

[[targets]]
name = "cluster"
db_cluster = "ledger"
target_group = "{}"
adopt = true

[[targets]]
name = "elsewhere"
db_instance = "billing"
region = "eu-west-1"
target_group = "{}"
role_arn = "arn:aws:iam::{OTHER}:role/pglink-target"
"#,
            tg(ACCOUNT, "pglink-by-name"),
            tg(ACCOUNT, "pglink-instance"),
            tg(ACCOUNT, "legacy"),
            tg(OTHER, "pglink-elsewhere"),
        ))
    }

    fn tagged(action: &str, arn: &str) -> Request {
        Request::new(action, arn).with("aws:ResourceTag/pglink:managed-by", &["pglink"])
    }

    #[test]
    fn the_daemon_may_change_targets_only_in_its_own_tagged_groups() {
        let c = every_shape();
        let d = doc(&c, &Credentials::Daemon);
        for action in ["RegisterTargets", "DeregisterTargets"] {
            let action = format!("elasticloadbalancing:{action}");
            for name in ["pglink-by-name", "pglink-instance", "legacy"] {
                let own = tg(ACCOUNT, name);
                assert!(
                    !allowing(&d, &tagged(&action, &own)).is_empty(),
                    "{action} {own}"
                );
                // Untagged (tag removed, or never adopted): no.
                assert!(allowing(&d, &Request::new(&action, &own)).is_empty());
            }
            // A foreign group, even one someone tagged as pglink's: no.
            for foreign in [tg(ACCOUNT, "production-web"), tg(OTHER, "pglink-elsewhere")] {
                assert!(
                    allowing(&d, &tagged(&action, &foreign)).is_empty(),
                    "{foreign}"
                );
            }
        }
        for read in READS {
            assert!(!allowing(&d, &Request::new(read, "*")).is_empty(), "{read}");
        }
    }

    #[test]
    fn only_an_adopting_target_may_tag_and_only_with_pglink_keys() {
        let c = every_shape();
        let d = doc(&c, &Credentials::Daemon);
        let add = |arn: &str, keys: &[&str]| {
            Request::new("elasticloadbalancing:AddTags", arn)
                .with("aws:RequestTag/pglink:managed-by", &["pglink"])
                .with("aws:TagKeys", keys)
        };
        let adopting = tg(ACCOUNT, "legacy");
        let keys = ["pglink:managed-by", "pglink:name", "pglink:kept-targets-2"];
        assert!(!allowing(&d, &add(&adopting, &keys)).is_empty());
        assert!(allowing(&d, &add(&adopting, &["pglink:managed-by", "team"])).is_empty());
        assert!(allowing(&d, &add(&tg(ACCOUNT, "pglink-instance"), &keys)).is_empty());
        assert!(allowing(&d, &add(&tg(ACCOUNT, "production-web"), &keys)).is_empty());
        let hostname_only = config(&format!(
            "[[targets]]\nname = \"a\"\nendpoint = \"a.example.com\"\ntarget_group = \"{}\"\n",
            tg(ACCOUNT, "pglink-a")
        ));
        let text = policy(&hostname_only, &Credentials::Daemon)
            .unwrap()
            .to_json();
        for absent in ["AddTags", "rds:", "sts:"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn databases_are_read_by_their_own_arn_in_their_region() {
        let c = every_shape();
        let d = doc(&c, &Credentials::Daemon);
        let db = |region: &str, account: &str, kind: &str, id: &str| {
            format!("arn:aws:rds:{region}:{account}:{kind}:{id}")
        };
        let instances = "rds:DescribeDBInstances";
        assert!(!allowing(
            &d,
            &Request::new(instances, &db("us-east-1", ACCOUNT, "db", "orders"))
        )
        .is_empty());
        assert!(allowing(
            &d,
            &Request::new(instances, &db("us-east-1", ACCOUNT, "db", "payroll"))
        )
        .is_empty());
        let clusters = "rds:DescribeDBClusters";
        assert!(!allowing(
            &d,
            &Request::new(clusters, &db("us-east-1", ACCOUNT, "cluster", "ledger"))
        )
        .is_empty());
        // The role's target is read with the role's credentials, in its own region.
        let role = Credentials::Role(format!("arn:aws:iam::{OTHER}:role/pglink-target"));
        let r = doc(&c, &role);
        assert!(!allowing(
            &r,
            &Request::new(instances, &db("eu-west-1", OTHER, "db", "billing"))
        )
        .is_empty());
        assert!(allowing(
            &d,
            &Request::new(instances, &db("eu-west-1", OTHER, "db", "billing"))
        )
        .is_empty());
    }

    #[test]
    fn a_cluster_followed_by_instance_may_list_instances_and_only_then() {
        let readers = config(&format!(
            "[[targets]]\nname = \"r\"\ndb_cluster = \"ledger\"\nrole = \"readers\"\ntarget_group = \"{}\"\n",
            tg(ACCOUNT, "pglink-r")
        ));
        let d = doc(&readers, &Credentials::Daemon);
        let listing = |region: &str| {
            Request::new(
                "rds:DescribeDBInstances",
                &format!("arn:aws:rds:{region}:{ACCOUNT}:db:*"),
            )
        };
        assert!(!allowing(&d, &listing("us-east-1")).is_empty());
        assert!(allowing(&d, &listing("eu-west-1")).is_empty());
        let cluster = format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster:ledger");
        assert!(!allowing(&d, &Request::new("rds:DescribeDBClusters", &cluster)).is_empty());
        // The writer, followed through the cluster endpoint, lists no instances.
        let writer = doc(&every_shape(), &Credentials::Daemon);
        assert!(allowing(&writer, &listing("us-east-1")).is_empty());
    }

    #[test]
    fn roles_are_assumed_by_name_and_each_role_gets_only_its_targets() {
        let c = every_shape();
        let role_arn = format!("arn:aws:iam::{OTHER}:role/pglink-target");
        let d = doc(&c, &Credentials::Daemon);
        assert_eq!(
            allowing(&d, &Request::new("sts:AssumeRole", &role_arn)),
            vec!["AssumeTheTargetRoles"]
        );
        let other_role = format!("arn:aws:iam::{OTHER}:role/admin");
        assert!(allowing(&d, &Request::new("sts:AssumeRole", &other_role)).is_empty());
        let r = doc(&c, &Credentials::Role(role_arn));
        let own = tg(OTHER, "pglink-elsewhere");
        assert!(!allowing(&r, &tagged("elasticloadbalancing:RegisterTargets", &own)).is_empty());
        assert!(allowing(
            &r,
            &tagged(
                "elasticloadbalancing:RegisterTargets",
                &tg(ACCOUNT, "pglink-a")
            )
        )
        .is_empty());
        assert!(allowing(&r, &Request::new("sts:AssumeRole", &other_role)).is_empty());
        assert!(policy(&c, &Credentials::Role(other_role))
            .unwrap_err()
            .contains("role_arn"));
    }

    #[test]
    fn nothing_is_allowed_on_foreign_load_balancers_or_security_groups() {
        let d = doc(&every_shape(), &Credentials::Daemon);
        let lb = format!("arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/production/0123456789abcdef");
        let sg = format!("arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-0123456789abcdef0");
        for action in [
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateTags",
            "ec2:DeleteSecurityGroup",
        ] {
            for resource in [&lb, &sg] {
                let request =
                    tagged(action, resource).with("aws:RequestTag/pglink:managed-by", &["pglink"]);
                assert!(allowing(&d, &request).is_empty(), "{action} on {resource}");
            }
        }
    }

    #[test]
    fn arns_follow_the_partition_of_the_target_group() {
        let gov = config(&format!(
            "[[targets]]\nname = \"g\"\ndb_instance = \"orders\"\ntarget_group = \"{}\"\n",
            tg(ACCOUNT, "pglink-g")
                .replace("arn:aws:", "arn:aws-us-gov:")
                .replace("us-east-1", "us-gov-west-1")
        ));
        let text = policy(&gov, &Credentials::Daemon).unwrap().to_json();
        assert!(
            text.contains("arn:aws-us-gov:rds:us-gov-west-1:111111111111:db:orders"),
            "{text}"
        );
        assert!(!text.contains("arn:aws:"), "{text}");
    }
}

#[cfg(test)]
mod foreign {
    use serde_json::Value;

    use super::*;
    use crate::iam::eval::{actions, allowing, Request};

    /// For each config shape, no action of the daemon's policy except the `Resource: *` reads
    /// is allowed on a target group, load balancer, security group, database or role that
    /// the config does not name, even one tagged as pglink's.
    #[test]
    fn no_action_is_allowed_on_anything_the_config_does_not_name() {
        let group = "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/pglink-a/0123456789abcdef";
        let foreign = [
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/production-web/0123456789abcdef",
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/net/production/0123456789abcdef",
            "arn:aws:ec2:us-east-1:111111111111:security-group/sg-0fedcba9876543210",
            "arn:aws:rds:us-east-1:111111111111:db:payroll",
            "arn:aws:rds:us-east-1:111111111111:cluster:payroll",
            "arn:aws:iam::111111111111:role/admin",
        ];
        for shape in [
            "endpoint = \"a.example.com\"\n",
            "db_instance = \"orders\"\n",
            "db_cluster = \"ledger\"\n",
            "endpoint = \"a.example.com\"\nadopt = true\n",
            "endpoint = \"a.example.com\"\nadopt = \"replace\"\n",
        ] {
            let text = format!("[[targets]]\nname = \"a\"\n{shape}target_group = \"{group}\"\n");
            let config = crate::config::parse(&text, "test").unwrap().1;
            let doc: Value =
                serde_json::from_str(&policy(&config, &Credentials::Daemon).unwrap().to_json())
                    .unwrap();
            let changing: Vec<String> = actions(&doc)
                .into_iter()
                .filter(|a| !READS.contains(&a.as_str()))
                .collect();
            assert!(!changing.is_empty(), "{shape}");
            for action in &changing {
                for resource in foreign {
                    let request = Request::new(action, resource)
                        .with("aws:ResourceTag/pglink:managed-by", &["pglink"])
                        .with("aws:RequestTag/pglink:managed-by", &["pglink"])
                        .with("aws:TagKeys", &["pglink:managed-by"]);
                    let allowed = allowing(&doc, &request);
                    assert!(
                        allowed.is_empty(),
                        "{shape}: {action} on {resource} allowed by {allowed:?}"
                    );
                }
            }
        }
    }
}
