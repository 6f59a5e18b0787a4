//! Resource mode's checks before any change, on top of those both paths share
//! (`bootstrap::preflight`). Pure: errors stop bootstrap with exit 2 and nothing changed.

use super::configuration::Definition;
use crate::bootstrap::network::Placement;
use crate::bootstrap::preflight::{self, Findings, GATEWAY};
use crate::config::BootstrapSettings;

/// Consumers that take only an NLB-backed endpoint service, for the cross-region message.
const ENDPOINT_SERVICE_ONLY: &str = "dbt Cloud, Fivetran, Databricks serverless, Snowflake and Airbyte Cloud take only mode = \"endpoint-service\"";

pub fn check(
    p: &Placement,
    s: &BootstrapSettings,
    region: &str,
    account: &str,
    definition: &Definition,
    port: u16,
) -> Findings {
    let mut f = preflight::check(p, port, s.subnet_ids.is_some(), GATEWAY);
    // Only endpoint services connect across Regions: a resource endpoint must be in the
    // configuration's Region. No AWS page says it of resource endpoints in so many words;
    // ClickHouse's ClickPipes guide does ("Cross-region isn't supported"), and AWS lists
    // cross-Region PrivateLink for endpoint services only
    // (https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-share-your-services.html).
    // See docs/resource-endpoints-design.md, section 3.
    if let Some(consumer) = s.consumer_region.as_deref().filter(|c| *c != region) {
        f.errors.push(format!(
            "bootstrap.consumer_region: {consumer}, but the resource configuration is in {region}, and a resource endpoint reaches it only from the same Region; expected mode = \"endpoint-service\" for a consumer in another Region"
        ));
        f.warnings.push(ENDPOINT_SERVICE_ONLY.into());
    }
    // "You can't create a resource configuration for a publicly accessible cluster."
    // https://docs.aws.amazon.com/vpc-lattice/latest/ug/resource-configuration.html
    if p.publicly_accessible {
        f.errors.push(
            "bootstrap.database: the database is publicly accessible, and a resource configuration cannot name a publicly accessible RDS database; expected PubliclyAccessible=false, or mode = \"endpoint-service\"".into(),
        );
    }
    // "You can't create a resource gateway in a shared subnet."
    // https://docs.aws.amazon.com/vpc/latest/privatelink/resource-gateway.html
    for subnet in &p.subnets {
        if let Some(owner) = subnet.owner_id.as_deref().filter(|o| *o != account) {
            f.errors.push(format!(
                "bootstrap.subnet_ids: {} is shared from account {owner}, and a resource gateway cannot be in a shared subnet; expected subnets that account {account} owns",
                subnet.id
            ));
        }
    }
    // An IP resource: "For IPv4 and IPv6, only IP addresses in the VPC are supported."
    // https://docs.aws.amazon.com/vpc-lattice/latest/APIReference/API_CreateResourceConfiguration.html
    if let Definition::Ip(ip) = definition {
        if !p.vpc_cidrs.iter().any(|net| net.contains(ip)) {
            f.errors.push(format!(
                "bootstrap.database.ip: {ip} is outside {} ({}), and a resource configuration takes only addresses in its VPC; expected mode = \"endpoint-service\" for an on-premises database",
                p.vpc_id,
                p.vpc_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::network::{placement, subnet};
    use crate::config::StackMode;

    const ACCOUNT: &str = "111122223333";

    fn settings(consumer_region: Option<&str>) -> BootstrapSettings {
        let text = format!(
            "[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = {{ db_instance = \"analytics\" }}\nallowed_principals = [\"072088201116\"]\n{}",
            consumer_region.map_or(String::new(), |r| format!("consumer_region = \"{r}\"\n"))
        );
        let config = crate::config::parse(&text, "test").expect("valid").1;
        let s = config.bootstrap.expect("bootstrap");
        assert_eq!(s.mode, StackMode::Resource);
        s
    }

    fn arn() -> Definition {
        Definition::Arn("arn:aws:rds:us-east-1:111122223333:db:analytics".into())
    }

    #[test]
    fn a_good_placement_passes() {
        let f = check(
            &placement(),
            &settings(Some("us-east-1")),
            "us-east-1",
            ACCOUNT,
            &arn(),
            5432,
        );
        assert_eq!(f, Findings::default());
    }

    #[test]
    fn a_consumer_in_another_region_is_refused() {
        let f = check(
            &placement(),
            &settings(Some("eu-west-1")),
            "us-east-1",
            ACCOUNT,
            &arn(),
            5432,
        );
        assert_eq!(f.errors.len(), 1, "{f:?}");
        assert!(
            f.errors[0].starts_with("bootstrap.consumer_region: eu-west-1"),
            "{f:?}"
        );
        assert!(f.warnings[0].contains("dbt Cloud"), "{f:?}");
    }

    #[test]
    fn a_shared_subnet_is_refused() {
        let mut p = placement();
        p.subnets[1] = crate::bootstrap::network::Subnet {
            owner_id: Some("999988887777".into()),
            ..subnet("subnet-b", "us-east-1b")
        };
        p.subnets[0].owner_id = Some(ACCOUNT.into());
        let f = check(&p, &settings(None), "us-east-1", ACCOUNT, &arn(), 5432);
        assert_eq!(
            f.errors,
            ["bootstrap.subnet_ids: subnet-b is shared from account 999988887777, and a resource gateway cannot be in a shared subnet; expected subnets that account 111122223333 owns"]
        );
    }

    #[test]
    fn an_address_outside_the_vpc_is_refused() {
        let inside = Definition::Ip("10.0.3.4".parse().unwrap());
        let outside = Definition::Ip("192.168.10.5".parse().unwrap());
        let s = settings(None);
        assert!(check(&placement(), &s, "us-east-1", ACCOUNT, &inside, 5432)
            .errors
            .is_empty());
        let f = check(&placement(), &s, "us-east-1", ACCOUNT, &outside, 5432);
        assert!(
            f.errors[0]
                .starts_with("bootstrap.database.ip: 192.168.10.5 is outside vpc-1 (10.0.0.0/16)"),
            "{f:?}"
        );
    }

    #[test]
    fn a_publicly_accessible_database_is_refused() {
        let mut p = placement();
        p.publicly_accessible = true;
        let f = check(&p, &settings(None), "us-east-1", ACCOUNT, &arn(), 5432);
        assert!(f.errors[0].contains("publicly accessible"), "{f:?}");
    }

    #[test]
    fn the_shared_checks_speak_of_the_gateway() {
        let mut p = placement();
        p.subnets.truncate(1);
        let f = check(&p, &settings(None), "us-east-1", ACCOUNT, &arn(), 5432);
        assert!(f.errors[0].contains("for the resource gateway"), "{f:?}");
    }
}
