//! What bootstrap prints for people: the filled-in support request the consumer asks for,
//! and the `[[targets]]` snippet that keeps the new target group in sync.

use crate::config::{BootstrapSettings, DatabaseKind};

/// dbt Cloud's request template for a Postgres Interface-type PrivateLink.
pub fn support_request(service_name: &str, region: &str, s: &BootstrapSettings) -> String {
    format!(
        "Subject: New Multi-Tenant PrivateLink Request\n\
         - Type: Postgres Interface-type\n\
         - VPC Endpoint Service Name: {service_name}\n\
         - Postgres server AWS Region (e.g., us-east-1, eu-west-2): {region}\n\
         - dbt Cloud multi-tenant environment (US, EMEA, AU): {}\n",
        s.consumer_environment
    )
}

/// The `[[targets]]` entry for `pglink run`, or None for kinds that need no sync.
pub fn targets_snippet(s: &BootstrapSettings, target_group_arn: &str) -> Option<String> {
    let source = match &s.database {
        DatabaseKind::DbInstance(id) => format!("db_instance = \"{id}\""),
        DatabaseKind::DbCluster(id) => format!("db_cluster = \"{id}\""),
        // A fixed IP never moves; instance targets follow the instance by themselves.
        _ => return None,
    };
    Some(format!(
        "[[targets]]\nname = \"{}\"\n{source}\ntarget_group = \"{target_group_arn}\"\nport = {}\n",
        s.name, s.port
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsumerEnvironment;

    fn settings(database: DatabaseKind) -> BootstrapSettings {
        BootstrapSettings {
            name: "analytics".into(),
            database,
            port: 5432,
            vpc_id: None,
            subnet_ids: None,
            database_security_group_id: None,
            acceptance_required: true,
            allowed_principals: vec![],
            consumer_environment: ConsumerEnvironment::Emea,
            mode: crate::config::StackMode::EndpointService,
            ipv4_addresses_per_eni: 16,
            consumer_region: None,
        }
    }

    #[test]
    fn the_request_is_filled_in() {
        let text = support_request(
            "com.amazonaws.vpce.eu-west-2.vpce-svc-0abc",
            "eu-west-2",
            &settings(DatabaseKind::DbInstance("a".into())),
        );
        assert!(text.starts_with("Subject: New Multi-Tenant PrivateLink Request\n"));
        assert!(text.contains("- Type: Postgres Interface-type\n"));
        assert!(text
            .contains("- VPC Endpoint Service Name: com.amazonaws.vpce.eu-west-2.vpce-svc-0abc\n"));
        assert!(text.contains("(e.g., us-east-1, eu-west-2): eu-west-2\n"));
        assert!(text.contains("(US, EMEA, AU): EMEA\n"));
    }

    #[test]
    fn snippets_only_for_moving_databases() {
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pglink-analytics/0123456789abcdef";
        let snippet =
            targets_snippet(&settings(DatabaseKind::DbInstance("analytics".into())), arn).unwrap();
        let parsed: toml::Value = toml::from_str(&snippet).unwrap();
        assert_eq!(
            parsed["targets"][0]["db_instance"].as_str(),
            Some("analytics")
        );
        assert!(targets_snippet(
            &settings(DatabaseKind::Ip("10.1.2.3".parse().unwrap())),
            arn
        )
        .is_none());
    }
}
