//! The commands behind the CLI. Each loads the configuration, builds the real adapters and
//! returns an [`Exit`]; `main` turns that into the process exit code.

mod bootstrap;
mod check;
mod healthcheck;
mod once;
mod plan_output;
mod run;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::{self, Clients};
use crate::config::{self, Config, ConfigError, LogFormat, RawConfig};
use crate::discover::RdsDiscovery;
use crate::logging;
use crate::metrics::Metrics;
use crate::resolve::DnsResolver;
use crate::sync::{Budgets, Syncer};
use crate::targets::{ElbTargetGroups, TagCache};

pub use bootstrap::{accept_cmd as accept, bootstrap, teardown_cmd as teardown};
pub use check::check_config;
pub use healthcheck::healthcheck;
pub use once::sync_once;
pub use plan_output::plan;
pub use run::{daemon, run};

/// How a command ended: 0, 1 (something failed), 2 (bad input, with its one-line message).
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failed,
    BadInput(String),
}

impl From<ConfigError> for Exit {
    fn from(e: ConfigError) -> Self {
        Exit::BadInput(e.to_string())
    }
}

pub type RealSyncer = Syncer<ElbTargetGroups, DnsResolver, RdsDiscovery>;

pub(crate) fn load(path: Option<PathBuf>) -> Result<(RawConfig, Config), Exit> {
    let path = path.ok_or(ConfigError::NoFile)?;
    Ok(config::load(&path)?)
}

/// Loads the configuration, requires at least one target, and starts logging.
pub(crate) fn load_for_sync(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
) -> Result<Config, Exit> {
    let (_, config) = load(path)?;
    if config.targets.is_empty() {
        return Err(
            ConfigError::invalid("targets", "expected at least one [[targets]] entry").into(),
        );
    }
    logging::init(log_format.unwrap_or(config.log.format), &config.log.level);
    Ok(config)
}

/// Loads the configuration for `run`, `sync` or `plan` (see [`load_for_sync`]), then runs
/// `body` with it on a fresh runtime.
pub(crate) fn sync_command(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
    body: impl AsyncFnOnce(Config) -> Exit,
) -> Exit {
    match load_for_sync(path, log_format) {
        Ok(config) => block_on(body(config)),
        Err(exit) => exit,
    }
}

/// Runs a command's async body on a fresh runtime.
pub(crate) fn block_on<F: std::future::Future<Output = Exit>>(body: F) -> Exit {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(body),
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            Exit::Failed
        }
    }
}

/// One syncer per target, with clients for the region of its target group.
pub(crate) async fn build_syncers(
    config: &Config,
    dry_run: bool,
    metrics: &Metrics,
) -> Result<Vec<RealSyncer>, Exit> {
    let regions: BTreeSet<&str> = config
        .targets
        .iter()
        .map(|t| t.target_group.region.as_str())
        .collect();
    let sdk = aws::sdk_config(&config.aws, regions.first().copied()).await;
    let clients = Clients::new(&sdk, regions.iter().copied(), metrics);
    let resolver =
        Arc::new(DnsResolver::new(&config.dns).map_err(|e| Exit::BadInput(format!("dns: {e}")))?);
    let budgets = Arc::new(Budgets::new(
        config.dns.max_queries_per_second,
        config.aws.max_describe_per_second,
    ));
    // One adapter per region, shared: its caches (VPC CIDRs, tags) serve every target.
    let tag_cache = TagCache::default();
    let groups: HashMap<&str, Arc<ElbTargetGroups>> = regions
        .iter()
        .filter_map(|r| {
            let c = clients.region(r)?.clone();
            Some((*r, Arc::new(ElbTargetGroups::sharing(c, tag_cache.clone()))))
        })
        .collect();
    let mut syncers = Vec::with_capacity(config.targets.len());
    for target in &config.targets {
        let region = target.target_group.region.as_str();
        let clients = clients
            .region(region)
            .expect("a client exists for every configured region");
        syncers.push(Syncer {
            target: target.clone(),
            groups: groups[region].clone(),
            resolver: resolver.clone(),
            discover: Arc::new(RdsDiscovery::new(clients.clone())),
            settings: config.sync.clone(),
            dry_run,
            metrics: metrics.clone(),
            budgets: budgets.clone(),
            prefetched: None,
        });
    }
    prefetch(&clients, &budgets, &mut syncers, &tag_cache).await;
    Ok(syncers)
}

/// Describes every target group in batches before the first passes, and starts reading
/// their tags in the background.
async fn prefetch(
    clients: &Clients,
    budgets: &Budgets,
    syncers: &mut [RealSyncer],
    tag_cache: &TagCache,
) {
    let mut by_region: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in syncers.iter() {
        by_region
            .entry(s.target.target_group.region.clone())
            .or_default()
            .push(s.target.target_group.arn.clone());
    }
    let deadline = tokio::time::Instant::now() + crate::prefetch::STARTUP_LIMIT;
    for (region, arns) in by_region {
        let Some(c) = clients.region(&region) else {
            continue;
        };
        let mut found = crate::prefetch::describe_all(c, &arns, &budgets.describe, deadline).await;
        let described: Vec<String> = arns
            .iter()
            .filter(|a| found.contains_key(*a))
            .cloned()
            .collect();
        for s in syncers
            .iter_mut()
            .filter(|s| s.target.target_group.region == region)
        {
            s.prefetched = found.remove(&s.target.target_group.arn);
        }
        crate::prefetch::read_tags_in_background(
            c.clone(),
            described,
            &budgets.describe,
            tag_cache.clone(),
        );
    }
}
