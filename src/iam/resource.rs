//! The bootstrap policy in resource mode (`bootstrap`, `teardown`, `accept` with
//! `[bootstrap] mode = "resource"`): the gateway's security group and the database rule as
//! in endpoint-service mode, VPC Lattice's gateway and configuration and RAM's share only
//! with this stack's tags, and nothing of the NLB stack's.
//!
//! Lattice and RAM ARNs hold IDs, not names, so everything is scoped by the `pglink:name`
//! tag. Resource types and condition keys from the Service Authorization Reference, and the
//! other services' permissions a gateway needs from the VPC Lattice guide:
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonvpclattice.html
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsresourceaccessmanagerram.html
//! https://docs.aws.amazon.com/vpc-lattice/latest/ug/additional-api-permissions.html

use super::bootstrap::{ingress, NETWORK_READS};
use super::{Policy, Scope, Statement};
use crate::config::BootstrapSettings;
use crate::ownership::{MANAGED_BY_KEY, MANAGED_BY_VALUE, NAME_KEY};

/// Reads beside the network's (`NETWORK_READS`): descriptions and lists only, none with
/// resource-level permissions.
const READS: &[&str] = &[
    "ec2:DescribeNetworkInterfaces",
    "vpc-lattice:ListResourceGateways",
    "vpc-lattice:ListResourceConfigurations",
    "vpc-lattice:ListTagsForResource",
    // The consumers of a configuration (teardown, accept).
    "vpc-lattice:ListResourceEndpointAssociations",
    "vpc-lattice:ListServiceNetworkResourceAssociations",
    "ram:GetResourceShares",
    "ram:GetResourceShareAssociations",
];

pub fn policy(settings: &BootstrapSettings, scope: &Scope) -> Result<Policy, (String, String)> {
    let name = settings.name.as_str();
    let managed = format!("aws:ResourceTag/{MANAGED_BY_KEY}");
    let named = format!("aws:ResourceTag/{NAME_KEY}");
    let requested = format!("aws:RequestTag/{MANAGED_BY_KEY}");
    let requested_name = format!("aws:RequestTag/{NAME_KEY}");
    let ec2 = |resource: &str| scope.arn("ec2", resource);
    let lattice = |resource: &str| scope.arn("vpc-lattice", resource);
    let vpc = ec2(&format!(
        "vpc/{}",
        settings.vpc_id.as_deref().unwrap_or("*")
    ));
    let gateways = lattice("resourcegateway/*");
    let configurations = lattice("resourceconfiguration/*");
    let ours = |s: Statement| {
        s.when("StringEquals", &managed, &[MANAGED_BY_VALUE])
            .when("StringEquals", &named, &[name])
    };
    let created_ours = |s: Statement| {
        s.when("StringEquals", &requested, &[MANAGED_BY_VALUE])
            .when("StringEquals", &requested_name, &[name])
    };

    let mut statements = vec![
        Statement::new(
            "ReadDatabasesNetworksGatewaysAndShares",
            &[NETWORK_READS, READS].concat(),
            vec!["*".into()],
        ),
        created_ours(Statement::new(
            "CreateTheGatewaySecurityGroupOnlyWithThisStacksTags",
            &["ec2:CreateSecurityGroup"],
            vec![ec2("security-group/*")],
        )),
        Statement::new(
            "CreateTheGatewaySecurityGroupInTheVpc",
            &["ec2:CreateSecurityGroup"],
            vec![vpc.clone()],
        ),
        ours(Statement::new(
            "DeleteOnlyThisStacksSecurityGroup",
            &["ec2:DeleteSecurityGroup"],
            vec![ec2("security-group/*")],
        )),
    ];
    let rule = ingress(settings, scope, &requested)?;
    let (mut tagged, mut creates) = (vec![ec2("security-group/*")], vec!["CreateSecurityGroup"]);
    if !rule.is_empty() {
        tagged.push(ec2("security-group-rule/*"));
        creates.push("AuthorizeSecurityGroupIngress");
    }
    statements.extend(rule);
    let in_vpc = |s: Statement| match &settings.vpc_id {
        Some(_) => s.when("ArnEquals", "ec2:Vpc", &[&vpc]),
        None => s,
    };
    let mut create_gateway = created_ours(Statement::new(
        "CreateTheResourceGatewayOnlyWithThisStacksTags",
        &["vpc-lattice:CreateResourceGateway"],
        vec![gateways.clone()],
    ));
    if let Some(id) = &settings.vpc_id {
        create_gateway = create_gateway.when("StringEquals", "vpc-lattice:VpcId", &[id]);
    }
    statements.extend([
        Statement::new(
            "TagEc2ResourcesOnlyAsTheyAreCreated",
            &["ec2:CreateTags"],
            tagged,
        )
        .when("StringEquals", "ec2:CreateAction", &creates)
        .when("StringEquals", &requested, &[MANAGED_BY_VALUE]),
        create_gateway,
        // CreateResourceGateway makes the gateway's network interfaces with the caller's
        // permissions, in the stack's VPC.
        in_vpc(Statement::new(
            "LetTheGatewayPlaceItsInterfacesInTheVpc",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:ModifyNetworkInterfaceAttribute",
            ],
            vec![ec2("subnet/*"), ec2("security-group/*")],
        )),
        Statement::new(
            "LetTheGatewayCreateItsInterfaces",
            &["ec2:CreateNetworkInterface"],
            vec![ec2("network-interface/*")],
        ),
        in_vpc(Statement::new(
            "LetTheGatewayManageItsInterfacesInTheVpc",
            &[
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:AssignIpv6Addresses",
                // UpdateResourceGateway (the security-group repair) changes the interfaces.
                "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:UnassignPrivateIpAddresses",
            ],
            vec![ec2("network-interface/*")],
        )),
        created_ours(Statement::new(
            "CreateTheResourceConfigurationOnlyWithThisStacksTags",
            &["vpc-lattice:CreateResourceConfiguration"],
            vec![configurations.clone()],
        )),
        // CreateResourceConfiguration is authorized on the gateway too.
        ours(Statement::new(
            "CreateTheConfigurationOnlyOnThisStacksGateway",
            &["vpc-lattice:CreateResourceConfiguration"],
            vec![gateways.clone()],
        )),
        // Creating with tags is authorized as TagResource too. VPC Lattice has no key that
        // tells tagging at creation from tagging an existing resource (EC2's CreateAction),
        // so this also lets the role put pglink's tags, and only those, on another gateway
        // or configuration: keep the role to pglink (deploy/README.md).
        created_ours(Statement::new(
            "TagLatticeResourcesOnlyWithThisStacksTags",
            &["vpc-lattice:TagResource"],
            vec![gateways.clone(), configurations.clone()],
        ))
        .when(
            "ForAllValues:StringEquals",
            "aws:TagKeys",
            &[MANAGED_BY_KEY, NAME_KEY],
        ),
        ours(Statement::new(
            "ManageOnlyThisStacksGateway",
            &[
                "vpc-lattice:GetResourceGateway",
                "vpc-lattice:UpdateResourceGateway",
                "vpc-lattice:DeleteResourceGateway",
            ],
            vec![gateways],
        )),
        // RAM writes the configuration's resource policy when it is shared, on the owner's
        // behalf.
        ours(Statement::new(
            "ManageOnlyThisStacksConfiguration",
            &[
                "vpc-lattice:GetResourceConfiguration",
                "vpc-lattice:UpdateResourceConfiguration",
                "vpc-lattice:DeleteResourceConfiguration",
                "vpc-lattice:PutResourcePolicy",
            ],
            vec![configurations.clone()],
        )),
        // Teardown with --reject-connections removes consumers' endpoints from this
        // account's configurations (the association is in the consumer's account).
        Statement::new(
            "RemoveConsumersOnlyFromThisAccountsConfigurations",
            &[
                "vpc-lattice:DeleteResourceEndpointAssociation",
                "vpc-lattice:DeleteServiceNetworkResourceAssociation",
            ],
            vec![
                format!(
                    "arn:{}:vpc-lattice:{}:*:resourceendpointassociation/*",
                    scope.partition, scope.region
                ),
                format!(
                    "arn:{}:vpc-lattice:{}:*:servicenetworkresourceassociation/*",
                    scope.partition, scope.region
                ),
            ],
        )
        .when(
            "ArnLike",
            "vpc-lattice:ResourceConfigurationArn",
            &[&configurations],
        ),
        created_ours(Statement::new(
            "ShareOnlyResourceConfigurationsAndOnlyWithThisStacksTags",
            &["ram:CreateResourceShare"],
            vec!["*".into()],
        ))
        .when(
            "StringEquals",
            "ram:RequestedResourceType",
            &["vpc-lattice:ResourceConfiguration"],
        ),
        created_ours(Statement::new(
            "TagTheShareOnlyWithThisStacksTags",
            &["ram:TagResource"],
            vec![scope.arn("ram", "resource-share/*")],
        ))
        .when(
            "ForAllValues:StringEquals",
            "aws:TagKeys",
            &[MANAGED_BY_KEY, NAME_KEY],
        ),
        ours(Statement::new(
            "ManageOnlyThisStacksShare",
            &[
                "ram:AssociateResourceShare",
                "ram:DisassociateResourceShare",
                "ram:UpdateResourceShare",
                "ram:DeleteResourceShare",
            ],
            vec![scope.arn("ram", "resource-share/*")],
        )),
        // The first gateway in an account creates VPC Lattice's service-linked role.
        // https://docs.aws.amazon.com/vpc-lattice/latest/ug/using-service-linked-roles.html
        Statement::new(
            "CreateTheLatticeServiceLinkedRoleForTheFirstGateway",
            &["iam:CreateServiceLinkedRole"],
            vec![format!(
                "arn:{}:iam::{}:role/aws-service-role/vpc-lattice.amazonaws.com/AWSServiceRoleForVpcLattice",
                scope.partition, scope.account
            )],
        )
        .when(
            "StringEquals",
            "iam:AWSServiceName",
            &["vpc-lattice.amazonaws.com"],
        ),
    ]);
    Ok(Policy { statements })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::iam::eval::{allowing, Request};

    const ACCOUNT: &str = "111111111111";

    fn doc(extra: &str) -> Value {
        let text = format!(
            "[aws]\nregion = \"us-east-1\"\n\n[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = {{ db_instance = \"analytics\" }}\nvpc_id = \"vpc-0123456789abcdef0\"\nallowed_principals = [\"072088201116\"]\n{extra}"
        );
        let config = crate::config::parse(&text, "test").expect("valid").1;
        let policy = crate::iam::bootstrap::policy(&config, Some(ACCOUNT)).expect("a policy");
        serde_json::from_str(&policy.to_json()).unwrap()
    }

    fn lattice(resource: &str) -> String {
        format!("arn:aws:vpc-lattice:us-east-1:{ACCOUNT}:{resource}")
    }

    fn tagged(action: &str, resource: &str, key: &str, name: &str) -> Request {
        Request::new(action, resource)
            .with(&format!("{key}/pglink:managed-by"), &["pglink"])
            .with(&format!("{key}/pglink:name"), &[name])
    }

    fn allowed(d: &Value, r: &Request) -> bool {
        !allowing(d, r).is_empty()
    }

    #[test]
    fn lattice_resources_are_created_and_changed_only_with_this_stacks_tags() {
        let d = doc("");
        let gw = lattice("resourcegateway/rgw-0123456789abcdef0");
        let cfg = lattice("resourceconfiguration/rcfg-0123456789abcdef0");
        let create = tagged(
            "vpc-lattice:CreateResourceGateway",
            &gw,
            "aws:RequestTag",
            "analytics",
        )
        .with("vpc-lattice:VpcId", &["vpc-0123456789abcdef0"]);
        assert!(allowed(&d, &create));
        let elsewhere = tagged(
            "vpc-lattice:CreateResourceGateway",
            &gw,
            "aws:RequestTag",
            "analytics",
        )
        .with("vpc-lattice:VpcId", &["vpc-0fffffffffffffff0"]);
        assert!(!allowed(&d, &elsewhere), "only in the stack's VPC");
        assert!(!allowed(
            &d,
            &tagged(
                "vpc-lattice:CreateResourceGateway",
                &gw,
                "aws:RequestTag",
                "payments"
            )
        ));
        for action in ["DeleteResourceGateway", "UpdateResourceGateway"] {
            let action = format!("vpc-lattice:{action}");
            assert!(allowed(
                &d,
                &tagged(&action, &gw, "aws:ResourceTag", "analytics")
            ));
            assert!(!allowed(
                &d,
                &tagged(&action, &gw, "aws:ResourceTag", "payments")
            ));
            assert!(!allowed(&d, &Request::new(&action, &gw)), "untagged");
        }
        // A configuration goes only on this stack's gateway, with this stack's tags.
        let create_cfg = "vpc-lattice:CreateResourceConfiguration";
        assert!(allowed(
            &d,
            &tagged(create_cfg, &cfg, "aws:RequestTag", "analytics")
        ));
        assert!(allowed(
            &d,
            &tagged(create_cfg, &gw, "aws:ResourceTag", "analytics")
        ));
        assert!(!allowed(
            &d,
            &tagged(create_cfg, &gw, "aws:ResourceTag", "payments")
        ));
        assert!(allowed(
            &d,
            &tagged(
                "vpc-lattice:DeleteResourceConfiguration",
                &cfg,
                "aws:ResourceTag",
                "analytics"
            )
        ));
        assert!(!allowed(
            &d,
            &tagged(
                "vpc-lattice:DeleteResourceConfiguration",
                &cfg,
                "aws:ResourceTag",
                "payments"
            )
        ));
    }

    #[test]
    fn only_configurations_are_shared_and_only_this_stacks_share_is_changed() {
        let d = doc("");
        let share = format!("arn:aws:ram:us-east-1:{ACCOUNT}:resource-share/0f1e2d3c");
        let create = tagged(
            "ram:CreateResourceShare",
            "*",
            "aws:RequestTag",
            "analytics",
        );
        assert!(allowed(
            &d,
            &create.clone().with(
                "ram:RequestedResourceType",
                &["vpc-lattice:ResourceConfiguration"]
            )
        ));
        assert!(!allowed(
            &d,
            &create.with("ram:RequestedResourceType", &["ec2:Subnet"])
        ));
        assert!(allowed(
            &d,
            &tagged(
                "ram:DeleteResourceShare",
                &share,
                "aws:ResourceTag",
                "analytics"
            )
        ));
        assert!(!allowed(
            &d,
            &tagged(
                "ram:AssociateResourceShare",
                &share,
                "aws:ResourceTag",
                "payments"
            )
        ));
        // Consumers' endpoints: only on this account's configurations.
        let assoc = "arn:aws:vpc-lattice:us-east-1:072088201116:resourceendpointassociation/rea-1";
        let ours = Request::new("vpc-lattice:DeleteResourceEndpointAssociation", assoc).with(
            "vpc-lattice:ResourceConfigurationArn",
            &[&lattice("resourceconfiguration/rcfg-1")],
        );
        assert!(allowed(&d, &ours));
        let theirs = Request::new("vpc-lattice:DeleteResourceEndpointAssociation", assoc).with(
            "vpc-lattice:ResourceConfigurationArn",
            &["arn:aws:vpc-lattice:us-east-1:999999999999:resourceconfiguration/rcfg-1"],
        );
        assert!(!allowed(&d, &theirs));
    }

    #[test]
    fn nothing_of_the_nlb_stack_is_granted() {
        let text = serde_json::to_string(&doc("")).unwrap();
        for absent in [
            "elasticloadbalancing:",
            "CreateVpcEndpointServiceConfiguration",
            "AWSServiceRoleForElasticLoadBalancing",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        assert!(text.contains("AWSServiceRoleForVpcLattice"));
    }
}
