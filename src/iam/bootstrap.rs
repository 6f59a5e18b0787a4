//! The policy for `bootstrap`, `teardown` and `accept`: create only what carries pglink's
//! tags for this stack, change and delete only that, and touch the database's own security
//! group only to add or remove the one rule.
//!
//! Load balancer and target group ARNs hold their names (`pglink-NAME`), so those are
//! scoped by ARN; security groups and the endpoint service by their `pglink:name` tag.
//! Every resource type and condition key below is from the Service Authorization Reference:
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html

use super::{Policy, Scope, Statement};
use crate::bootstrap::{load_balancer, target_group};
use crate::config::{BootstrapSettings, Config, DatabaseKind, StackMode};
use crate::ownership::{MANAGED_BY_KEY, MANAGED_BY_VALUE, NAME_KEY};

/// What placing a stack reads in either mode (`bootstrap::network`, `security_group`): the
/// database, its network and security groups.
pub(super) const NETWORK_READS: &[&str] = &[
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeDBSubnetGroups",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
];

/// Endpoint-service mode's other reads: no resource-level permissions for most, and
/// descriptions only.
const READS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeVpcEndpointServiceConfigurations",
    "ec2:DescribeVpcEndpointServicePermissions",
    "ec2:DescribeVpcEndpointConnections",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetHealth",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLoadBalancerTargetGroups",
];

/// The policy for `settings`' stack in `config`'s region; `account` narrows every ARN to
/// one account (`None`: any, which grants nothing more: no identity policy reaches another
/// account's ELBv2 or EC2 resources without a resource policy, and these have none).
pub fn policy(config: &Config, account: Option<&str>) -> Result<Policy, (String, String)> {
    let settings = config.bootstrap.as_ref().ok_or_else(|| {
        (
            "bootstrap".to_string(),
            "expected a [bootstrap] section: the policy is for the stack it describes".to_string(),
        )
    })?;
    let region = config.aws.region.clone().ok_or_else(|| {
        (
            "aws.region".to_string(),
            "expected the stack's region: the policy's ARNs name it".to_string(),
        )
    })?;
    let scope = Scope {
        partition: crate::config::partition_of(&region).to_string(),
        region,
        account: account.unwrap_or("*").to_string(),
    };
    if settings.mode == StackMode::Resource {
        return super::resource::policy(settings, &scope);
    }
    let name = settings.name.as_str();
    let managed = format!("aws:ResourceTag/{MANAGED_BY_KEY}");
    let named = format!("aws:ResourceTag/{NAME_KEY}");
    let requested = format!("aws:RequestTag/{MANAGED_BY_KEY}");
    let requested_name = format!("aws:RequestTag/{NAME_KEY}");
    let ec2 = |resource: &str| scope.arn("ec2", resource);
    let elb = |resource: &str| scope.arn("elasticloadbalancing", resource);
    let target_group = elb(&format!("targetgroup/{}/*", target_group::group_name(name)));
    let load_balancer = elb(&format!(
        "loadbalancer/net/{}/*",
        load_balancer::nlb_name(name)
    ));
    let listeners = elb(&format!(
        "listener/net/{}/*/*",
        load_balancer::nlb_name(name)
    ));

    let mut statements = vec![
        Statement::new(
            "ReadDatabasesAndTheirNetwork",
            &[NETWORK_READS, READS].concat(),
            vec!["*".into()],
        ),
        // CreateSecurityGroup is authorized on the new group (tagged as this stack's) and on
        // its VPC (no tag condition: the VPC is not pglink's, and the reference lists the
        // request tags for the group only).
        Statement::new(
            "CreateTheNlbSecurityGroupOnlyWithThisStacksTags",
            &["ec2:CreateSecurityGroup"],
            vec![ec2("security-group/*")],
        )
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE])
        .when("StringEquals", &requested_name, &[name]),
        Statement::new(
            "CreateTheNlbSecurityGroupInTheVpc",
            &["ec2:CreateSecurityGroup"],
            vec![ec2(&format!(
                "vpc/{}",
                settings.vpc_id.as_deref().unwrap_or("*")
            ))],
        ),
        Statement::new(
            "DeleteOnlyThisStacksSecurityGroup",
            &["ec2:DeleteSecurityGroup"],
            vec![ec2("security-group/*")],
        )
        .when("StringEquals", &managed, &[MANAGED_BY_VALUE])
        .when("StringEquals", &named, &[name]),
    ];
    let rule = ingress(settings, &scope, &requested)?;
    let (mut tagged, mut creates) = (
        vec![ec2("security-group/*"), ec2("vpc-endpoint-service/*")],
        vec![
            "CreateSecurityGroup",
            "CreateVpcEndpointServiceConfiguration",
        ],
    );
    if !rule.is_empty() {
        tagged.push(ec2("security-group-rule/*"));
        creates.push("AuthorizeSecurityGroupIngress");
    }
    statements.extend(rule);
    statements.extend([
        Statement::new(
            "TagEc2ResourcesOnlyAsTheyAreCreated",
            &["ec2:CreateTags"],
            tagged,
        )
        .when("StringEquals", "ec2:CreateAction", &creates)
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE]),
        Statement::new(
            "CreateTheEndpointServiceOnlyWithThisStacksTags",
            &["ec2:CreateVpcEndpointServiceConfiguration"],
            vec![ec2("vpc-endpoint-service/*")],
        )
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE])
        .when("StringEquals", &requested_name, &[name]),
        Statement::new(
            "ManageOnlyThisStacksEndpointService",
            &[
                "ec2:ModifyVpcEndpointServiceConfiguration",
                "ec2:DeleteVpcEndpointServiceConfigurations",
                "ec2:ModifyVpcEndpointServicePermissions",
                "ec2:AcceptVpcEndpointConnections",
                "ec2:RejectVpcEndpointConnections",
            ],
            vec![ec2("vpc-endpoint-service/*")],
        )
        .when("StringEquals", &managed, &[MANAGED_BY_VALUE])
        .when("StringEquals", &named, &[name]),
        Statement::new(
            "CreateThisStacksTargetGroupOnlyWithPglinkTags",
            &["elasticloadbalancing:CreateTargetGroup"],
            vec![target_group.clone()],
        )
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE]),
        Statement::new(
            "CreateThisStacksNlbOnlyInternalAndWithPglinkTags",
            &["elasticloadbalancing:CreateLoadBalancer"],
            vec![load_balancer.clone()],
        )
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE])
        .when("StringEquals", "elasticloadbalancing:Scheme", &["internal"]),
        // CreateListener is authorized on the load balancer, not on the new listener.
        Statement::new(
            "CreateListenersOnlyOnThisStacksNlb",
            &["elasticloadbalancing:CreateListener"],
            vec![load_balancer.clone()],
        )
        .when("StringEquals", &managed, &[MANAGED_BY_VALUE])
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE]),
        Statement::new(
            "TagLoadBalancerResourcesOnlyAsTheyAreCreated",
            &["elasticloadbalancing:AddTags"],
            vec![
                target_group.clone(),
                load_balancer.clone(),
                listeners.clone(),
            ],
        )
        .when(
            "StringEquals",
            "elasticloadbalancing:CreateAction",
            &["CreateTargetGroup", "CreateLoadBalancer", "CreateListener"],
        )
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE]),
        Statement::new(
            "ChangeAndDeleteOnlyThisStacksTargetGroup",
            &[
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeleteTargetGroup",
            ],
            vec![target_group.clone()],
        )
        .when("StringEquals", &managed, &[MANAGED_BY_VALUE]),
        Statement::new(
            "ChangeAndDeleteOnlyThisStacksNlb",
            &[
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
            ],
            vec![load_balancer],
        )
        .when("StringEquals", &managed, &[MANAGED_BY_VALUE]),
        Statement::new(
            "ChangeOnlyThisStacksListeners",
            &["elasticloadbalancing:ModifyListener"],
            vec![listeners],
        )
        .when("StringEquals", &managed, &[MANAGED_BY_VALUE]),
    ]);
    if let DatabaseKind::AutoscalingGroup(group) = &settings.database {
        // The key is multivalued: ForAllValues alone would also pass a request without it.
        statements.push(
            Statement::new(
                "AttachOnlyThisStacksTargetGroupToTheDatabaseGroup",
                &[
                    "autoscaling:AttachLoadBalancerTargetGroups",
                    "autoscaling:DetachLoadBalancerTargetGroups",
                ],
                vec![scope.arn(
                    "autoscaling",
                    &format!("autoScalingGroup:*:autoScalingGroupName/{group}"),
                )],
            )
            .when(
                "ForAllValues:ArnLike",
                "autoscaling:TargetGroupARNs",
                &[&target_group],
            )
            .when("Null", "autoscaling:TargetGroupARNs", &["false"]),
        );
    }
    // CreateLoadBalancer creates Elastic Load Balancing's service-linked role in an account
    // that has none yet, with the caller's permission.
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-service-linked-roles.html
    statements.push(
        Statement::new(
            "CreateTheLoadBalancingServiceLinkedRoleForTheFirstNlb",
            &["iam:CreateServiceLinkedRole"],
            vec![format!(
                "arn:{}:iam::{}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
                scope.partition, scope.account
            )],
        )
        .when(
            "StringEquals",
            "iam:AWSServiceName",
            &["elasticloadbalancing.amazonaws.com"],
        ),
    );
    Ok(Policy { statements })
}

/// The rule on the database's security group: on that group by ARN when the config names
/// it (an `ip` database in the VPC, such as Postgres on EC2, may name one too, and
/// bootstrap then adds the rule), else on groups in the stack's VPC; an `ip` database
/// without one has no rule.
pub(super) fn ingress(
    settings: &BootstrapSettings,
    scope: &Scope,
    requested: &str,
) -> Result<Vec<Statement>, (String, String)> {
    let no_group = settings.database_security_group_id.is_none();
    if matches!(
        settings.database,
        DatabaseKind::Ip(_) | DatabaseKind::Host(_)
    ) && no_group
    {
        return Ok(Vec::new());
    }
    let groups = scope.arn("ec2", "security-group/*");
    let (resource, vpc) = match (&settings.database_security_group_id, &settings.vpc_id) {
        (Some(sg), _) => (scope.arn("ec2", &format!("security-group/{sg}")), None),
        (None, Some(vpc)) => (groups, Some(scope.arn("ec2", &format!("vpc/{vpc}")))),
        (None, None) => {
            return Err((
                "bootstrap.database_security_group_id".into(),
                "expected the database's security group (or bootstrap.vpc_id): the policy allows the ingress rule only there; `pglink bootstrap --dry-run` shows both".into(),
            ))
        }
    };
    // AuthorizeSecurityGroupIngress is authorized on the group and, as the rule is tagged at
    // creation, on the new rule; the reference lists the request tags for the rule only.
    let in_vpc = |s: Statement| match &vpc {
        Some(vpc) => s.when("ArnEquals", "ec2:Vpc", &[vpc]),
        None => s,
    };
    Ok(vec![
        in_vpc(Statement::new(
            "OpenTheDatabasePortOnlyOnTheDatabaseGroup",
            &["ec2:AuthorizeSecurityGroupIngress"],
            vec![resource.clone()],
        )),
        Statement::new(
            "TagTheDatabaseRuleAsItIsCreated",
            &["ec2:AuthorizeSecurityGroupIngress"],
            vec![scope.arn("ec2", "security-group-rule/*")],
        )
        .when("StringEquals", requested, &[MANAGED_BY_VALUE]),
        in_vpc(Statement::new(
            "CloseTheDatabasePortOnlyOnTheDatabaseGroup",
            &["ec2:RevokeSecurityGroupIngress"],
            vec![resource],
        )),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::iam::eval::{allowing, Request};

    const REGION: &str = "us-east-1";
    const SG: &str = "sg-0123456789abcdef0";
    const VPC: &str = "vpc-0123456789abcdef0";

    fn config(database: &str, network: &str) -> Config {
        let text = format!(
            "[aws]\nregion = \"{REGION}\"\n\n[bootstrap]\nname = \"analytics\"\ndatabase = {database}\n{network}allowed_principals = [\"arn:aws:iam::346425330055:root\"]\n"
        );
        crate::config::parse(&text, "test").expect("valid config").1
    }

    fn doc(config: &Config) -> Value {
        serde_json::from_str(
            &policy(config, Some("111111111111"))
                .expect("a policy")
                .to_json(),
        )
        .unwrap()
    }

    fn arn(service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{REGION}:111111111111:{resource}")
    }

    /// A request on a resource carrying pglink's tags for `name`.
    fn on(action: &str, resource: &str, name: &str) -> Request {
        Request::new(action, resource)
            .with("aws:ResourceTag/pglink:managed-by", &["pglink"])
            .with("aws:ResourceTag/pglink:name", &[name])
            .with("aws:RequestTag/pglink:managed-by", &["pglink"])
            .with("aws:RequestTag/pglink:name", &[name])
    }

    fn allowed(d: &Value, r: &Request) -> bool {
        !allowing(d, r).is_empty()
    }

    #[test]
    fn load_balancer_resources_only_by_this_stacks_names() {
        let d = doc(&config(
            "{ db_instance = \"orders\" }",
            &format!("database_security_group_id = \"{SG}\"\n"),
        ));
        let own_tg = arn(
            "elasticloadbalancing",
            "targetgroup/pglink-analytics/0123456789abcdef",
        );
        let own_lb = arn(
            "elasticloadbalancing",
            "loadbalancer/net/pglink-analytics/0123456789abcdef",
        );
        let own_listener = arn(
            "elasticloadbalancing",
            "listener/net/pglink-analytics/0123456789abcdef/0123456789abcdef",
        );
        let foreign_tg = arn(
            "elasticloadbalancing",
            "targetgroup/production-web/0123456789abcdef",
        );
        let foreign_lb = arn(
            "elasticloadbalancing",
            "loadbalancer/net/production/0123456789abcdef",
        );
        let lookalike_lb = arn(
            "elasticloadbalancing",
            "loadbalancer/net/pglink-analytics2/0123456789abcdef",
        );
        for (action, own) in [
            ("ModifyTargetGroup", &own_tg),
            ("RegisterTargets", &own_tg),
            ("DeleteTargetGroup", &own_tg),
            ("SetSecurityGroups", &own_lb),
            ("DeleteLoadBalancer", &own_lb),
            ("CreateListener", &own_lb),
            ("ModifyListener", &own_listener),
        ] {
            let action = format!("elasticloadbalancing:{action}");
            assert!(
                allowed(&d, &on(&action, own, "analytics")),
                "{action} on {own}"
            );
            // Even tagged as pglink's, a group or NLB of another name is out of reach.
            for foreign in [&foreign_tg, &foreign_lb, &lookalike_lb] {
                assert!(
                    !allowed(&d, &on(&action, foreign, "analytics")),
                    "{action} on {foreign}"
                );
            }
        }
        let create_lb = |scheme: &str| {
            on(
                "elasticloadbalancing:CreateLoadBalancer",
                &own_lb,
                "analytics",
            )
            .with("elasticloadbalancing:Scheme", &[scheme])
        };
        assert!(allowed(&d, &create_lb("internal")));
        assert!(!allowed(&d, &create_lb("internet-facing")));
        let untagged_listener = Request::new("elasticloadbalancing:CreateListener", &own_lb)
            .with("aws:RequestTag/pglink:managed-by", &["pglink"]);
        assert!(
            !allowed(&d, &untagged_listener),
            "CreateListener needs the NLB's own tag"
        );
    }

    #[test]
    fn security_groups_and_the_endpoint_service_only_by_this_stacks_tags() {
        let d = doc(&config(
            "{ db_instance = \"orders\" }",
            &format!("database_security_group_id = \"{SG}\"\n"),
        ));
        let other_sg = arn("ec2", "security-group/sg-0fedcba9876543210");
        let service = arn("ec2", "vpc-endpoint-service/vpce-svc-0123456789abcdef0");
        assert!(allowed(
            &d,
            &on("ec2:DeleteSecurityGroup", &other_sg, "analytics")
        ));
        assert!(!allowed(
            &d,
            &on("ec2:DeleteSecurityGroup", &other_sg, "billing")
        ));
        assert!(!allowed(
            &d,
            &Request::new("ec2:DeleteSecurityGroup", &other_sg)
        ));
        for action in [
            "ModifyVpcEndpointServicePermissions",
            "DeleteVpcEndpointServiceConfigurations",
            "AcceptVpcEndpointConnections",
        ] {
            let action = format!("ec2:{action}");
            assert!(allowed(&d, &on(&action, &service, "analytics")));
            assert!(!allowed(&d, &on(&action, &service, "billing")), "{action}");
            assert!(!allowed(&d, &Request::new(&action, &service)), "{action}");
        }
        // The database rule: only on the database's group.
        let db_sg = arn("ec2", &format!("security-group/{SG}"));
        // The call is authorized on the group and on the new rule, tagged as pglink's.
        let new_rule = arn("ec2", "security-group-rule/sgr-0123456789abcdef0");
        let authorize = |group: &str| {
            Request::new("ec2:AuthorizeSecurityGroupIngress", group)
                .and(&new_rule)
                .with("aws:RequestTag/pglink:managed-by", &["pglink"])
        };
        assert!(allowed(&d, &authorize(&db_sg)));
        assert!(!allowed(
            &d,
            &Request::new("ec2:AuthorizeSecurityGroupIngress", &db_sg).and(&new_rule)
        ));
        // The NLB's group: created only tagged as this stack's, in the VPC.
        let create = |name: &str| {
            Request::new(
                "ec2:CreateSecurityGroup",
                &arn("ec2", "security-group/sg-0new"),
            )
            .and(&arn("ec2", "vpc/vpc-0123"))
            .with("aws:RequestTag/pglink:managed-by", &["pglink"])
            .with("aws:RequestTag/pglink:name", &[name])
        };
        assert!(allowed(&d, &create("analytics")));
        assert!(!allowed(&d, &create("billing")));
        assert!(allowed(
            &d,
            &Request::new("ec2:RevokeSecurityGroupIngress", &db_sg)
        ));
        for action in [
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
        ] {
            assert!(
                !allowed(&d, &on(action, &other_sg, "analytics")),
                "{action}"
            );
        }
    }

    #[test]
    fn without_the_database_group_the_rule_is_scoped_to_the_vpc_or_refused() {
        let d = doc(&config(
            "{ db_instance = \"orders\" }",
            &format!("vpc_id = \"{VPC}\"\n"),
        ));
        let sg = arn("ec2", "security-group/sg-0fedcba9876543210");
        let in_vpc = |action: &str, vpc: &str| {
            Request::new(action, &sg)
                .with("ec2:Vpc", &[&arn("ec2", &format!("vpc/{vpc}"))])
                .with("aws:RequestTag/pglink:managed-by", &["pglink"])
        };
        for action in [
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
        ] {
            assert!(allowed(&d, &in_vpc(action, VPC)), "{action}");
            assert!(
                !allowed(&d, &in_vpc(action, "vpc-0aaaaaaaaaaaaaaaa")),
                "{action}"
            );
        }
        let (key, _) = policy(&config("{ db_instance = \"orders\" }", ""), None).unwrap_err();
        assert_eq!(key, "bootstrap.database_security_group_id");
        let on_premises = policy(&config("{ ip = \"10.1.2.3\" }", ""), None)
            .unwrap()
            .to_json();
        assert!(
            !on_premises.contains("SecurityGroupIngress"),
            "{on_premises}"
        );
        // An address in the VPC with its group named: bootstrap adds the rule there.
        let d = doc(&config(
            "{ ip = \"10.1.2.3\" }",
            &format!("database_security_group_id = \"{SG}\"\n"),
        ));
        let named = arn("ec2", &format!("security-group/{SG}"));
        for action in [
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
        ] {
            assert!(allowed(&d, &Request::new(action, &named)), "{action}");
            assert!(!allowed(&d, &Request::new(action, &sg)), "{action}");
        }
    }

    #[test]
    fn an_autoscaling_database_gets_only_this_stacks_target_group() {
        let d = doc(&config(
            "{ autoscaling_group = \"pg-asg\" }",
            &format!("database_security_group_id = \"{SG}\"\n"),
        ));
        let asg = arn(
            "autoscaling",
            "autoScalingGroup:0123-4567:autoScalingGroupName/pg-asg",
        );
        let own_tg = arn(
            "elasticloadbalancing",
            "targetgroup/pglink-analytics/0123456789abcdef",
        );
        let foreign_tg = arn(
            "elasticloadbalancing",
            "targetgroup/production-web/0123456789abcdef",
        );
        let attach = |groups: &[&str]| {
            Request::new("autoscaling:AttachLoadBalancerTargetGroups", &asg)
                .with("autoscaling:TargetGroupARNs", groups)
        };
        assert!(allowed(&d, &attach(&[&own_tg])));
        assert!(!allowed(&d, &attach(&[&own_tg, &foreign_tg])));
        assert!(!allowed(
            &d,
            &Request::new("autoscaling:AttachLoadBalancerTargetGroups", &asg)
        ));
        let other_asg = asg.replace("pg-asg", "web-asg");
        assert!(!allowed(
            &d,
            &Request::new("autoscaling:DetachLoadBalancerTargetGroups", &other_asg)
                .with("autoscaling:TargetGroupARNs", &[&own_tg])
        ));
    }

    #[test]
    fn arns_follow_the_region_partition_and_need_a_region() {
        let mut c = config("{ ip = \"10.1.2.3\" }", "");
        c.aws.region = Some("cn-north-1".into());
        let text = policy(&c, None).unwrap().to_json();
        assert!(
            text.contains(
                "arn:aws-cn:elasticloadbalancing:cn-north-1:*:targetgroup/pglink-analytics/*"
            ),
            "{text}"
        );
        assert!(!text.contains("arn:aws:"), "{text}");
        c.aws.region = None;
        assert_eq!(policy(&c, None).unwrap_err().0, "aws.region");
    }
}

#[cfg(test)]
mod foreign {
    use serde_json::Value;

    use super::*;
    use crate::iam::eval::{actions, allowing, Request};

    const FOREIGN_VPC: &str = "arn:aws:ec2:us-east-1:111111111111:vpc/vpc-0bbbbbbbbbbbbbbbb";

    /// Worst case for a resource that is not this stack's: it carries pglink's tags (of
    /// another stack), the request carries this stack's, the load balancer would be
    /// internal, the VPC is another one, and the Auto Scaling request names a foreign group.
    fn worst_case(action: &str, resource: &str) -> Request {
        Request::new(action, resource)
            .with("aws:ResourceTag/pglink:managed-by", &["pglink"])
            .with("aws:ResourceTag/pglink:name", &["billing"])
            .with("aws:RequestTag/pglink:managed-by", &["pglink"])
            .with("aws:RequestTag/pglink:name", &["analytics"])
            .with("aws:TagKeys", &["pglink:managed-by", "pglink:name"])
            .with("elasticloadbalancing:Scheme", &["internal"])
            .with("ec2:Vpc", &["arn:aws:ec2:us-east-1:111111111111:vpc/vpc-0bbbbbbbbbbbbbbbb"])
            .with("autoscaling:TargetGroupARNs", &["arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/production-web/0123456789abcdef"])
    }

    /// For every database kind and network setting, no action of the bootstrap policy except
    /// the `Resource: *` reads is allowed on a target group, load balancer, listener,
    /// security group, endpoint service or Auto Scaling group that is not this stack's.
    #[test]
    fn no_action_is_allowed_on_anything_that_is_not_this_stacks() {
        let foreign = [
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/production-web/0123456789abcdef",
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/net/production/0123456789abcdef",
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:listener/net/production/0123456789abcdef/0123456789abcdef",
            "arn:aws:ec2:us-east-1:111111111111:security-group/sg-0fedcba9876543210",
            "arn:aws:ec2:us-east-1:111111111111:vpc-endpoint-service/vpce-svc-0fedcba9876543210",
            "arn:aws:autoscaling:us-east-1:111111111111:autoScalingGroup:0123:autoScalingGroupName/web-asg",
            "arn:aws:ec2:us-east-1:111111111111:vpc/vpc-0bbbbbbbbbbbbbbbb",
        ];
        let kinds = [
            "{ db_instance = \"orders\" }",
            "{ db_cluster = \"ledger\" }",
            "{ ec2_instance = \"i-0123456789abcdef0\" }",
            "{ autoscaling_group = \"pg-asg\" }",
            "{ ip = \"10.1.2.3\" }",
        ];
        let networks = [
            "database_security_group_id = \"sg-0123456789abcdef0\"\nvpc_id = \"vpc-0aaaaaaaaaaaaaaaa\"\n",
            "vpc_id = \"vpc-0aaaaaaaaaaaaaaaa\"\n",
        ];
        for kind in kinds {
            for network in networks {
                let text = format!(
                    "[aws]\nregion = \"us-east-1\"\n\n[bootstrap]\nname = \"analytics\"\ndatabase = {kind}\n{network}allowed_principals = [\"arn:aws:iam::346425330055:root\"]\n"
                );
                let config = crate::config::parse(&text, "test").unwrap().1;
                let doc: Value =
                    serde_json::from_str(&policy(&config, Some("111111111111")).unwrap().to_json())
                        .unwrap();
                // These act on a new resource (its ID is AWS's), and EC2 tags are written
                // only by creates (ec2:CreateAction): none reaches an existing resource.
                // CreateSecurityGroup does, its VPC: asked below with a foreign VPC.
                let new_only = [
                    "ec2:CreateVpcEndpointServiceConfiguration",
                    "ec2:CreateTags",
                ];
                for action in actions(&doc).iter().filter(|a| {
                    let read = NETWORK_READS.contains(&a.as_str()) || READS.contains(&a.as_str());
                    !read && !new_only.contains(&a.as_str())
                }) {
                    for resource in foreign {
                        let mut request = worst_case(action, resource);
                        if action == "ec2:CreateSecurityGroup" {
                            request = request.and(FOREIGN_VPC);
                        }
                        let allowed = allowing(&doc, &request);
                        assert!(
                            allowed.is_empty(),
                            "{kind} / {network}: {action} on {resource} allowed by {allowed:?}"
                        );
                    }
                }
            }
        }
    }
}
