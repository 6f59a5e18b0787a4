//! AWS SDK configuration and per-region clients.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::config::AwsSettings;
use crate::error::AwsError;
use crate::metrics::Metrics;

/// Loads the SDK's configuration: the usual credential chain, with the region, profile and
/// endpoint override from `[aws]`. `fallback_region` is used when `[aws] region` is unset,
/// so that a region is never looked up from instance metadata when the config implies one.
pub async fn sdk_config(settings: &AwsSettings, fallback_region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        // The SDK retries throttling and 5xx with jittered backoff; pglink's own loop adds a
        // slower backoff on top, so keep this short.
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(region) = settings.region.as_deref().or(fallback_region) {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Clients for one region, and the metrics every call is counted in.
#[derive(Clone, Debug)]
pub struct RegionClients {
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub metrics: Metrics,
}

impl RegionClients {
    /// Classifies a call's result and counts it (and its error kind) by operation.
    pub fn observe<T, E>(
        &self,
        op: &'static str,
        what: &str,
        result: Result<T, SdkError<E, HttpResponse>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let result = result.map_err(|e| AwsError::from_sdk(op, what, e));
        self.metrics
            .aws_call(op, result.as_ref().err().map(AwsError::kind));
        result
    }

    pub fn new(sdk: &SdkConfig, region: &str, metrics: Metrics) -> Self {
        let region = Region::new(region.to_string());
        let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .region(region.clone())
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
            .region(region.clone())
            .build();
        let autoscaling = aws_sdk_autoscaling::config::Builder::from(sdk)
            .region(region.clone())
            .build();
        let rds = aws_sdk_rds::config::Builder::from(sdk)
            .region(region)
            .build();
        Self {
            autoscaling: aws_sdk_autoscaling::Client::from_conf(autoscaling),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            rds: aws_sdk_rds::Client::from_conf(rds),
            metrics,
        }
    }
}

/// One set of clients per region named by the configured target groups.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    by_region: HashMap<String, RegionClients>,
}

impl Clients {
    pub fn new<'a>(
        sdk: &SdkConfig,
        regions: impl IntoIterator<Item = &'a str>,
        metrics: &Metrics,
    ) -> Self {
        let by_region = regions
            .into_iter()
            .map(|r| (r.to_string(), RegionClients::new(sdk, r, metrics.clone())))
            .collect();
        Self { by_region }
    }

    pub fn region(&self, region: &str) -> Option<&RegionClients> {
        self.by_region.get(region)
    }
}

/// `call.send().await.pipe_observe(&clients, "Operation", "resource")`: classify and count.
pub trait Observe<T> {
    fn pipe_observe(
        self,
        clients: &RegionClients,
        op: &'static str,
        what: &str,
    ) -> Result<T, AwsError>;
}

impl<T, E> Observe<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn pipe_observe(
        self,
        clients: &RegionClients,
        op: &'static str,
        what: &str,
    ) -> Result<T, AwsError> {
        clients.observe(op, what, self)
    }
}
