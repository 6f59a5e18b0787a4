//! AWS SDK configuration and clients per (role, region).

use std::collections::HashMap;
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::config::{AwsSettings, RoleToAssume};
use crate::error::AwsError;
use crate::metrics::Metrics;
use crate::roles::RoleCredentials;

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
    pub fn new(sdk: &SdkConfig, region: &str, metrics: Metrics) -> Self {
        let region = Region::new(region.to_string());
        let timer = CallTimer(metrics.clone());
        let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(timer.clone())
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(timer.clone())
            .build();
        let autoscaling = aws_sdk_autoscaling::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(timer.clone())
            .build();
        let rds = aws_sdk_rds::config::Builder::from(sdk)
            .region(region)
            .interceptor(timer)
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

/// Times every operation of a client, SDK retries included, into
/// `pglink_aws_api_call_duration_seconds`: one place for every call site.
#[derive(Clone, Debug)]
pub struct CallTimer(Metrics);

impl CallTimer {
    /// The timer to add as an interceptor to a client of another service.
    pub fn new(metrics: Metrics) -> Self {
        Self(metrics)
    }
}

/// When the operation started, kept in the call's own config bag.
#[derive(Clone, Debug)]
struct CallStart(std::time::Instant);

impl Storable for CallStart {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallTimer {
    fn name(&self) -> &'static str {
        "pglink::CallTimer"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(CallStart(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(start), Some(op)) = (cfg.load::<CallStart>(), cfg.load::<Metadata>()) {
            self.0
                .aws_call_took(op.name(), start.0.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// Who a set of clients calls AWS as, and where: the daemon's own credentials or a
/// target's role, in one region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub role: Option<RoleToAssume>,
    pub region: String,
}

impl ClientKey {
    pub fn new(role: Option<&RoleToAssume>, region: &str) -> Self {
        Self {
            role: role.cloned(),
            region: region.to_string(),
        }
    }
}

/// One set of clients per (role, region) the configured targets need. A role's clients in
/// every region share one [`RoleCredentials`], so it is assumed once, not once per region.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    by_key: HashMap<ClientKey, RegionClients>,
}

impl Clients {
    /// `sts_regions` names, for each role, the region whose STS endpoint assumes it (its
    /// target groups' region: STS regional endpoints keep the call there).
    pub async fn new(
        sdk: &SdkConfig,
        keys: impl IntoIterator<Item = ClientKey>,
        sts_regions: &HashMap<RoleToAssume, String>,
        metrics: &Metrics,
    ) -> Self {
        let mut by_key = HashMap::new();
        let mut roles: HashMap<RoleToAssume, SdkConfig> = HashMap::new();
        for key in keys {
            let clients = match &key.role {
                None => RegionClients::new(sdk, &key.region, metrics.clone()),
                Some(role) => {
                    if !roles.contains_key(role) {
                        let sts_region = sts_regions.get(role).unwrap_or(&key.region);
                        let creds = RoleCredentials::new(sdk, role, sts_region).await;
                        roles.insert(role.clone(), role_sdk_config(sdk, creds));
                    }
                    RegionClients::new(&roles[role], &key.region, metrics.clone())
                }
            };
            by_key.insert(key, clients);
        }
        Self { by_key }
    }

    pub fn get(&self, key: &ClientKey) -> Option<&RegionClients> {
        self.by_key.get(key)
    }
}

/// `base` signing with the role's credentials. The SDK's identity cache is off: the
/// provider is the cache, and it renews minutes ahead, which the SDK's cache (asking again
/// seconds before expiry) would never let it do.
fn role_sdk_config(base: &SdkConfig, creds: RoleCredentials) -> SdkConfig {
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .identity_cache(IdentityCache::no_cache())
        .build()
}

/// Classifies a call's result and counts it (and its error kind) by operation.
fn observe_into<T, E>(
    metrics: &Metrics,
    op: &'static str,
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let result = result.map_err(|e| AwsError::from_sdk(op, what, e));
    metrics.aws_call(op, result.as_ref().err().map(AwsError::kind));
    result
}

/// A set of clients whose calls are counted in these metrics.
pub trait Observer {
    fn metrics(&self) -> &Metrics;
}

impl Observer for RegionClients {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// `call.send().await.pipe_observe(&clients, "Operation", "resource")`: classify and count.
pub trait Observe<T> {
    fn pipe_observe<O: Observer>(
        self,
        clients: &O,
        op: &'static str,
        what: &str,
    ) -> Result<T, AwsError>;
}

impl<T, E> Observe<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn pipe_observe<O: Observer>(
        self,
        clients: &O,
        op: &'static str,
        what: &str,
    ) -> Result<T, AwsError> {
        observe_into(clients.metrics(), op, what, self)
    }
}

/// `call.send().boxed().await`: an SDK call's future is kilobytes, and kept inline it would
/// sit in every target's task for the daemon's whole life (a task's future is sized for its
/// largest state). Boxed, it takes memory only while the call is in flight.
pub trait Boxed: std::future::Future + Sized {
    fn boxed(self) -> std::pin::Pin<Box<Self>> {
        Box::pin(self)
    }
}

impl<F: std::future::Future> Boxed for F {}
