//! The resource-endpoint path (`[bootstrap] mode = "resource"`, issue #16): a VPC Lattice
//! resource gateway in the database's VPC, a resource configuration naming the database, and
//! an AWS RAM share with the consumer's accounts. No NLB and no target group: for an RDS
//! database the ARN-type configuration follows the database itself.
//! https://docs.aws.amazon.com/vpc/latest/privatelink/resource-configuration.html
//!
//! Each module finds its resource by name in this account, refuses one without this stack's
//! tags, creates what is missing (waiting until AWS reports it ACTIVE) and repairs what may
//! change in place, recording every step in the bootstrap [`Journal`](super::journal::Journal).
//! The design notes, with their sources, are in `docs/resource-endpoints-design.md`.

pub mod accept;
pub mod configuration;
pub mod gateway;
pub mod preflight;
pub mod share;
pub mod stack;
pub mod tags;
pub mod teardown;
pub mod wait;

use aws_config::{Region, SdkConfig};

use crate::aws::{Boxed, CallTimer, Observe, Observer};
use crate::error::AwsError;
use crate::metrics::Metrics;

/// The VPC Lattice and RAM clients of one region, built only for resource-mode stacks.
#[derive(Debug, Clone)]
pub struct ResourceClients {
    pub lattice: aws_sdk_vpclattice::Client,
    pub ram: aws_sdk_ram::Client,
    /// For the caller's account (GetCallerIdentity needs no permission).
    pub sts: aws_sdk_sts::Client,
    pub metrics: Metrics,
}

impl ResourceClients {
    pub fn new(sdk: &SdkConfig, region: &str, metrics: Metrics) -> Self {
        let region = Region::new(region.to_string());
        let lattice = aws_sdk_vpclattice::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(CallTimer::new(metrics.clone()))
            .build();
        let ram = aws_sdk_ram::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(CallTimer::new(metrics.clone()))
            .build();
        let sts = aws_sdk_sts::config::Builder::from(sdk)
            .region(region)
            .interceptor(CallTimer::new(metrics.clone()))
            .build();
        Self {
            lattice: aws_sdk_vpclattice::Client::from_conf(lattice),
            ram: aws_sdk_ram::Client::from_conf(ram),
            sts: aws_sdk_sts::Client::from_conf(sts),
            metrics,
        }
    }

    /// The account the stack is built in: the caller's.
    pub async fn account(&self) -> Result<String, AwsError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .boxed()
            .await
            .pipe_observe(self, "GetCallerIdentity", "caller")?;
        Ok(out.account().unwrap_or_default().to_string())
    }
}

impl Observer for ResourceClients {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The account field of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

pub use crate::config::lattice_name_problem;

#[cfg(test)]
pub(crate) mod mocks;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattice_names_follow_the_services_rule() {
        assert_eq!(lattice_name_problem("pglink-analytics"), None);
        for bad in [
            "pg",
            "pglink-Analytics",
            "pglink--a",
            "pglink-a-",
            "rgw-x",
            "pglink_a",
        ] {
            assert!(lattice_name_problem(bad).is_some(), "{bad}");
        }
        assert!(lattice_name_problem(&"a".repeat(41)).is_some());
    }

    #[test]
    fn the_account_is_the_fifth_field() {
        let arn =
            "arn:aws:vpc-lattice:us-east-1:111122223333:resourcegateway/rgw-0123456789abcdef0";
        assert_eq!(arn_account(arn), Some("111122223333"));
        assert_eq!(arn_account("rgw-0123"), None);
    }
}
