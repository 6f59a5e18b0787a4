//! Resource clients answering from aws-smithy-mocks rules: the emulator has neither VPC
//! Lattice resource gateways and configurations nor RAM shares of them
//! (`docs/resource-endpoints-design.md`, section 2), so the responses are shaped as the
//! API references document them.

use aws_smithy_mocks::{mock_client, Rule, RuleMode};

use super::ResourceClients;
use crate::metrics::Metrics;

pub const ACCOUNT: &str = "111122223333";
pub const OTHER_ACCOUNT: &str = "444455556666";
pub const STACK: &str = "analytics";

pub fn clients(lattice: &[&Rule], ram: &[&Rule]) -> ResourceClients {
    let caller =
        aws_smithy_mocks::mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
                .account(ACCOUNT)
                .build()
        });
    ResourceClients {
        lattice: mock_client!(aws_sdk_vpclattice, RuleMode::MatchAny, lattice),
        ram: mock_client!(aws_sdk_ram, RuleMode::MatchAny, ram),
        sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[&caller]),
        metrics: Metrics::new(),
    }
}

/// A Lattice ARN in `account`.
pub fn arn(account: &str, kind: &str, id: &str) -> String {
    format!("arn:aws:vpc-lattice:us-east-1:{account}:{kind}/{id}")
}

/// `ListTagsForResource` answering `tags` for any resource.
pub fn tags_rule(tags: &[(&str, &str)]) -> Rule {
    let tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    aws_smithy_mocks::mock!(aws_sdk_vpclattice::Client::list_tags_for_resource).then_output(
        move || {
            aws_sdk_vpclattice::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
                .set_tags(Some(tags.iter().cloned().collect()))
                .build()
        },
    )
}

/// This stack's ownership tags.
pub fn ours() -> Rule {
    tags_rule(&[("pglink:managed-by", "pglink"), ("pglink:name", STACK)])
}
