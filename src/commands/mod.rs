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
        let resource_stack = config
            .bootstrap
            .as_ref()
            .filter(|b| b.mode == config::StackMode::Resource);
        let reason = match resource_stack {
            Some(b) => format!(
                "none given, and [bootstrap] {:?} is in resource mode, where AWS follows the database itself: it needs no daemon (run, sync, plan and drill keep NLB target groups)",
                b.name
            ),
            None => "expected at least one [[targets]] entry".to_string(),
        };
        return Err(ConfigError::invalid("targets", reason).into());
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
    let mut budgets = budgets_per_target(config).into_iter();
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
        let budgets = budgets.next().expect("a budget for every target");
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

/// Each target's rate budgets, in the configuration's order: one DNS budget for the daemon;
/// ELBv2 Describe calls per account and the group's region, RDS calls per account and the
/// database's region (AWS's API buckets are per account and region, and a target's
/// database may be in another region than its group).
fn budgets_per_target(config: &Config) -> Vec<Arc<Budgets>> {
    let dns = Budgets::dns(config.dns.max_queries_per_second);
    let mut describe: HashMap<(&str, &str), Arc<Budget>> = HashMap::new();
    let mut rds: HashMap<(&str, &str), Arc<Budget>> = HashMap::new();
    let mut shared: HashMap<[(&str, &str); 2], Arc<Budgets>> = HashMap::new();
    config
        .targets
        .iter()
        .map(|t| {
            let account = t.target_group.account.as_str();
            let on_group = (account, t.target_group.region.as_str());
            let on_database = (account, t.database_region.as_str());
            shared
                .entry([on_group, on_database])
                .or_insert_with(|| {
                    Arc::new(Budgets {
                        dns: dns.clone(),
                        describe: describe
                            .entry(on_group)
                            .or_insert_with(|| {
                                Budgets::describe(config.aws.max_describe_per_second)
                            })
                            .clone(),
                        rds: rds.entry(on_database).or_insert_with(Budgets::rds).clone(),
                    })
                })
                .clone()
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_budgets_follow_the_groups_region_and_rds_budgets_the_databases() {
        let tg = |region: &str, account: &str, name: &str| {
            format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/0123456789abcdef")
        };
        let text = format!(
            r#"
[[targets]]
name = "a"
db_instance = "a"
target_group = "{}"

[[targets]]
name = "b"
db_instance = "b"
region = "eu-west-1"
target_group = "{}"

[[targets]]
name = "c"
db_instance = "c"
region = "eu-west-1"
target_group = "{}"

[[targets]]
name = "d"
db_instance = "d"
target_group = "{}"
"#,
            tg("us-east-1", "111111111111", "a"),
            tg("us-east-1", "111111111111", "b"),
            tg("eu-west-1", "111111111111", "c"),
            tg("us-east-1", "222222222222", "d"),
        );
        let config = config::parse(&text, "test").expect("valid config").1;
        let b = budgets_per_target(&config);
        let same = |x: &Arc<Budget>, y: &Arc<Budget>| Arc::ptr_eq(x, y);
        // a and b: one group region, databases in two regions.
        assert!(same(&b[0].describe, &b[1].describe));
        assert!(!same(&b[0].rds, &b[1].rds));
        // b and c: databases in one region, groups in two.
        assert!(same(&b[1].rds, &b[2].rds));
        assert!(!same(&b[1].describe, &b[2].describe));
        // Another account has its own of each; DNS is the daemon's one budget.
        assert!(!same(&b[0].describe, &b[3].describe) && !same(&b[0].rds, &b[3].rds));
        assert!(b.iter().all(|x| same(&x.dns, &b[0].dns)));
    }
}
