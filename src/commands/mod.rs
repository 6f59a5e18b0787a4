//! The commands behind the CLI. Each loads the configuration, builds the real adapters and
//! returns an [`Exit`]; `main` turns that into the process exit code.

mod bootstrap;
mod check;
mod drill;
mod healthcheck;
mod iam_policy;
mod once;
mod plan_output;
mod run;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::{self, ClientKey, Clients};
use crate::budget::Budget;
use crate::config::{self, Config, ConfigError, LogFormat, RawConfig, Target};
use crate::discover::RdsDiscovery;
use crate::logging;
use crate::metrics::Metrics;
use crate::resolve::DnsResolver;
use crate::sync::{Budgets, Syncer};
use crate::targets::{ElbTargetGroups, TagCache};

pub use bootstrap::{accept_cmd as accept, bootstrap, teardown_cmd as teardown};
pub use check::check_config;
pub use drill::{drill, DrillArgs};
pub use healthcheck::healthcheck;
pub use iam_policy::{bootstrap_policy, iam_policy};
pub use once::sync_once;
pub use plan_output::plan;
pub use run::{daemon, run};

/// How a command ended: 0, 1 (something failed), 2 (bad input, with its one-line message),
/// 3 (with `--detailed-exitcode`: read fine, changes pending, as Terraform's plan).
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failed,
    BadInput(String),
    ChangesPending,
}

impl From<ConfigError> for Exit {
    fn from(e: ConfigError) -> Self {
        Exit::BadInput(e.to_string())
    }
}

/// The version of every `--output json` document's shape; it changes when a field changes
/// meaning or goes away (new fields do not change it). 2: a target is `{ip, port, state}`
/// everywhere (plan's register/deregister/kept and bootstrap's registered_targets were
/// "ip:port" strings).
pub const SCHEMA_VERSION: u32 = 2;

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
    let ignored = config::ignored_environment();
    if !ignored.is_empty() {
        tracing::debug!(
            variables = %ignored.join(","),
            "ignored PGLINK_* environment variables that are not config keys (config is PGLINK_SECTION__KEY)"
        );
    }
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

/// One syncer per target, with clients for its role in its target group's region (and its
/// database's region for RDS lookups), and the Describe budget of the group's account and
/// region.
pub(crate) async fn build_syncers(
    config: &Config,
    dry_run: bool,
    metrics: &Metrics,
) -> Result<Vec<RealSyncer>, Exit> {
    let database_key = |t: &Target| ClientKey::new(t.role.as_ref(), &t.database_region);
    let keys: BTreeSet<ClientKey> = config
        .targets
        .iter()
        .flat_map(|t| [group_key(t), database_key(t)])
        .collect();
    let mut sts_regions = HashMap::new();
    for t in &config.targets {
        if let Some(role) = &t.role {
            let region = t.target_group.region.clone();
            sts_regions.entry(role.clone()).or_insert(region);
        }
    }
    let first_region = config
        .targets
        .first()
        .map(|t| t.target_group.region.as_str());
    let sdk = aws::sdk_config(&config.aws, first_region).await;
    let clients = Clients::new(&sdk, keys.iter().cloned(), &sts_regions, metrics).await;
    let resolver =
        Arc::new(DnsResolver::new(&config.dns).map_err(|e| Exit::BadInput(format!("dns: {e}")))?);
    let dns_budget = Budgets::dns(config.dns.max_queries_per_second);
    // AWS's Describe bucket is per account and region.
    let mut budgets: HashMap<(&str, &str), Arc<Budgets>> = HashMap::new();
    // One adapter per (role, region), shared: its caches (VPC CIDRs, tags) serve every target.
    let tag_cache = TagCache::default();
    let mut groups: HashMap<ClientKey, Arc<ElbTargetGroups>> = HashMap::new();
    let mut syncers = Vec::with_capacity(config.targets.len());
    for target in &config.targets {
        let key = group_key(target);
        let on_group = clients
            .get(&key)
            .expect("clients exist for every target's key");
        let on_database = clients
            .get(&database_key(target))
            .expect("clients exist for every target's key");
        let tg = &target.target_group;
        let budgets = budgets
            .entry((tg.account.as_str(), tg.region.as_str()))
            .or_insert_with(|| {
                Arc::new(Budgets::sharing_dns(
                    dns_budget.clone(),
                    config.aws.max_describe_per_second,
                ))
            })
            .clone();
        let groups = groups
            .entry(key)
            .or_insert_with(|| {
                Arc::new(ElbTargetGroups::sharing(
                    on_group.clone(),
                    tag_cache.clone(),
                ))
            })
            .clone();
        metrics.target_info(
            &target.name,
            &tg.account,
            &tg.region,
            target.role.as_ref().map_or("", |r| r.arn.as_str()),
        );
        syncers.push(Syncer {
            target: target.clone(),
            groups,
            resolver: resolver.clone(),
            discover: Arc::new(RdsDiscovery::new(on_database.clone())),
            settings: config.sync.clone(),
            dry_run,
            metrics: metrics.clone(),
            budgets,
            prefetched: None,
        });
    }
    prefetch(&clients, &mut syncers, &tag_cache).await;
    Ok(syncers)
}

/// The clients a target's group is read and changed with: its role in its group's region.
fn group_key(t: &Target) -> ClientKey {
    ClientKey::new(t.role.as_ref(), &t.target_group.region)
}

/// Describes every target group in batches before the first passes (per role and region,
/// under that account's budget), and starts reading their tags in the background.
async fn prefetch(clients: &Clients, syncers: &mut [RealSyncer], tag_cache: &TagCache) {
    let key_of = |s: &RealSyncer| group_key(&s.target);
    let mut by_key: BTreeMap<ClientKey, (Vec<String>, Arc<Budget>)> = BTreeMap::new();
    for s in syncers.iter() {
        by_key
            .entry(key_of(s))
            .or_insert_with(|| (Vec::new(), s.budgets.describe.clone()))
            .0
            .push(s.target.target_group.arn.clone());
    }
    let deadline = tokio::time::Instant::now() + crate::prefetch::STARTUP_LIMIT;
    for (key, (arns, budget)) in by_key {
        let Some(c) = clients.get(&key) else {
            continue;
        };
        let mut found = crate::prefetch::describe_all(c, &arns, &budget, deadline).await;
        let described: Vec<String> = arns
            .iter()
            .filter(|a| found.contains_key(*a))
            .cloned()
            .collect();
        for s in syncers.iter_mut().filter(|s| key_of(s) == key) {
            s.prefetched = found.remove(&s.target.target_group.arn);
        }
        crate::prefetch::read_tags_in_background(c.clone(), described, &budget, tag_cache.clone());
    }
}
