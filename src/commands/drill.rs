//! `pglink drill`: fail the database over on purpose and measure the end to end on the
//! user's own stack. Without `--yes` it only says what it would do and shows the current
//! state. With `--yes` it forces the failover (RebootDBInstance with ForceFailover for a
//! Multi-AZ instance, FailoverDBCluster for a cluster), then watches, each as seconds after
//! the call: RDS's events, the DNS change, the registration, the NLB's health, the old
//! target's removal and, through the consumer's path, the first TCP connect (`--probe`) and
//! the first `SELECT 1` (`--dsn`).
//! It syncs the target itself with the daemon's rules, or with `--watch` only watches a
//! group that a running daemon keeps.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tracing::{info, warn};

use super::{build_syncers, sync_command, Exit, RealSyncer, SCHEMA_VERSION};
use crate::aws::{Boxed, Observe, RegionClients};
use crate::config::{Config, LogFormat};
use crate::discover::Discover;
use crate::drill::{Failover, Step, Timeline};
use crate::error::AwsError;
use crate::metrics::Metrics;
use crate::plan::TargetKey;
use crate::probe::{Check, Probe};
use crate::resolve::{Family, Resolve};
use crate::sql_probe::Dsn;
use crate::target_view::TargetView;
use crate::targets::TargetGroups;

/// How often the drill looks: DNS, the group, the probe.
const TICK: Duration = Duration::from_secs(1);
/// How often RDS's events are asked for (they are best effort and come late).
const EVENTS_EVERY: u32 = 5;

#[derive(Debug, Clone)]
pub struct DrillArgs {
    pub target: String,
    pub yes: bool,
    pub timeout: Duration,
    pub probe: Option<String>,
    /// A libpq connection string for `SELECT 1` through the consumer's path.
    pub dsn: Option<String>,
    pub watch: bool,
    pub json: bool,
}

pub fn drill(
    path: Option<std::path::PathBuf>,
    log_format: Option<LogFormat>,
    args: DrillArgs,
) -> Exit {
    sync_command(path, log_format, async |config| run(config, args).await)
}

async fn run(mut config: Config, args: DrillArgs) -> Exit {
    let checks = match checks(&args) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    config.targets.retain(|t| t.name == args.target);
    let Some(target) = config.targets.first() else {
        return Exit::BadInput(format!(
            "--target: no target named {:?}; expected one of: {}",
            args.target,
            names.join(", ")
        ));
    };
    let Some(failover) = Failover::of(target) else {
        return Exit::BadInput(format!(
            "--target {}: expected a target with db_instance, or db_cluster followed by its writer, which drill can fail over; this one follows {}",
            target.name, target.source
        ));
    };
    let syncer = match build_syncers(&config, false, &Metrics::new()).await {
        Ok(mut s) => s.remove(0),
        Err(exit) => return exit,
    };
    let rds = syncer.discover.clients().clone();
    if let Err(exit) = can_fail_over(&rds, &failover, &target.name).await {
        return exit;
    }
    let before = match Before::read(&syncer).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: drill: could not read the current state: {e}");
            return Exit::Failed;
        }
    };
    if !args.yes {
        print_plan(&args, &failover, &before);
        return Exit::Ok;
    }
    if let Err(e) = start(&rds, &failover).await {
        eprintln!("error: drill: {}: {e}", failover.call());
        return Exit::Failed;
    }
    let started_at = SystemTime::now();
    info!(call = %failover.call(), "failover started");
    let timeline = watch(
        &syncer, &rds, &failover, &before, &args, &checks, started_at,
    )
    .await;
    report(&args, &failover, &before, &timeline)
}

/// The checks through the consumer's path that the flags ask for, validated before
/// anything is called.
fn checks(args: &DrillArgs) -> Result<Vec<Check>, Exit> {
    let mut checks = Vec::new();
    if let Some(probe) = &args.probe {
        let port = probe.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
        if !matches!(port, Some(Ok(p)) if p > 0) {
            return Err(Exit::BadInput(format!(
                "--probe: expected HOST:PORT, such as the consumer's endpoint or the NLB on 5432, got {probe:?}"
            )));
        }
        checks.push(Check::Connect(probe.clone()));
    }
    if let Some(dsn) = &args.dsn {
        let dsn = Dsn::parse(dsn, |var| std::env::var(var).ok())
            .map_err(|e| Exit::BadInput(format!("--dsn: {e}")))?;
        checks.push(Check::Query(Arc::new(dsn)));
    }
    Ok(checks)
}

/// Refuses a database that has nothing to fail over to.
async fn can_fail_over(rds: &RegionClients, failover: &Failover, name: &str) -> Result<(), Exit> {
    let refused = |why: String| Exit::BadInput(format!("--target {name}: {why}"));
    let read = |e: AwsError| {
        eprintln!("error: drill: {e}");
        Exit::Failed
    };
    match failover {
        Failover::Instance(id) => {
            let out = rds
                .rds
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .boxed()
                .await
                .pipe_observe(rds, "DescribeDBInstances", id)
                .map_err(read)?;
            let multi_az = out.db_instances().first().and_then(|d| d.multi_az());
            if multi_az != Some(true) {
                return Err(refused(format!(
                    "db_instance {id} is Single-AZ: it has no standby to fail over to (make it Multi-AZ first)"
                )));
            }
        }
        Failover::Cluster(id) => {
            let out = rds
                .rds
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .boxed()
                .await
                .pipe_observe(rds, "DescribeDBClusters", id)
                .map_err(read)?;
            let members = out
                .db_clusters()
                .first()
                .map_or(0, |c| c.db_cluster_members().len());
            if members < 2 {
                return Err(refused(format!(
                    "db_cluster {id} has {members} instance(s): a failover needs another one to promote"
                )));
            }
        }
    }
    Ok(())
}

/// The state before the failover: the name, its answer, and the group's targets.
struct Before {
    hostname: String,
    family: Family,
    addresses: BTreeSet<IpAddr>,
    port: u16,
    group: Vec<TargetView>,
}

impl Before {
    async fn read(syncer: &RealSyncer) -> Result<Self, String> {
        let target = &syncer.target;
        let endpoint = syncer
            .discover
            .endpoint(&target.source, target.members)
            .await
            .map_err(|e| e.to_string())?;
        let described = syncer
            .groups
            .describe_group(&target.target_group.arn)
            .await
            .map_err(|e| e.to_string())?;
        let family = if described.ipv6 {
            Family::V6
        } else {
            Family::V4
        };
        let resolved = syncer
            .resolver
            .resolve(&endpoint.address, family)
            .await
            .map_err(|e| format!("DNS {}: {e}", endpoint.address))?;
        let group = syncer
            .groups
            .read_targets(&target.target_group.arn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            family,
            port: target
                .port
                .or(endpoint.port)
                .unwrap_or(crate::sync::DEFAULT_PORT),
            hostname: endpoint.address,
            addresses: resolved.addresses,
            group: group.iter().map(TargetView::registered).collect(),
        })
    }
}

fn print_plan(args: &DrillArgs, failover: &Failover, before: &Before) {
    let answer = crate::logging::join_with(&before.addresses, ", ");
    if args.json {
        let doc = json!({
            "schema_version": SCHEMA_VERSION,
            "target": args.target,
            "dry_run": true,
            "would_call": failover.call(),
            "hostname": before.hostname,
            "addresses": before.addresses,
            "registered": before.group,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    println!(
        "drill {} (dry run: nothing changed)\n  would call:  {}\n  DNS now:     {} -> {answer}\n  group now:   {}\n  then watch, up to {}: RDS's events, the DNS change, the new address registered and healthy, the old one removed{}\nRun again with --yes to fail the database over (RDS: 60-120 s for a Multi-AZ instance, under 35 s for a Multi-AZ DB cluster).",
        args.target,
        failover.call(),
        before.hostname,
        crate::logging::join_with(&before.group, ", "),
        humantime::format_duration(args.timeout),
        match (&args.probe, &args.dsn) {
            (Some(_), Some(_)) => ", the probe's connect and SELECT 1",
            (Some(_), None) => ", the probe's connect",
            (None, Some(_)) => ", SELECT 1",
            (None, None) => "",
        },
    );
}

async fn start(rds: &RegionClients, failover: &Failover) -> Result<(), AwsError> {
    match failover {
        Failover::Instance(id) => rds
            .rds
            .reboot_db_instance()
            .db_instance_identifier(id)
            .force_failover(true)
            .send()
            .boxed()
            .await
            .pipe_observe(rds, "RebootDBInstance", id)
            .map(drop),
        Failover::Cluster(id) => rds
            .rds
            .failover_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .boxed()
            .await
            .pipe_observe(rds, "FailoverDBCluster", id)
            .map(drop),
    }
}

/// Looks every tick until every step is seen or the timeout passes.
async fn watch(
    syncer: &RealSyncer,
    rds: &RegionClients,
    failover: &Failover,
    before: &Before,
    args: &DrillArgs,
    checks: &[Check],
    started_at: SystemTime,
) -> Timeline {
    let started = Instant::now();
    let steps: Vec<Step> = checks.iter().map(Check::step).collect();
    let mut timeline = Timeline::new(&steps);
    // Started once DNS changes: the consumer's path before that proves nothing.
    let mut probes: Vec<Probe> = Vec::new();
    let mut memory = syncer.memory();
    let mut new: BTreeSet<IpAddr> = BTreeSet::new();
    let mut tick = 0u32;
    while !timeline.failed().is_empty() && started.elapsed() < args.timeout {
        if !args.watch {
            if let Err(e) = syncer.pass(&mut memory).await {
                warn!(error = %e, "sync pass failed; watching on");
            }
        }
        let at = started.elapsed();
        if tick.is_multiple_of(EVENTS_EVERY) {
            events(rds, failover, started_at, at, &mut timeline).await;
        }
        tick += 1;
        if let Ok(r) = syncer
            .resolver
            .resolve(&before.hostname, before.family)
            .await
        {
            if r.addresses != before.addresses && !timeline.has(Step::DnsChanged) {
                new = r.addresses.clone();
                let detail = format!(
                    "{} -> {}",
                    crate::logging::join_with(&before.addresses, ", "),
                    crate::logging::join_with(&new, ", ")
                );
                timeline.see(Step::DnsChanged, at, detail);
            }
        }
        if timeline.has(Step::DnsChanged) {
            look_at_group(syncer, before, &new, at, &mut timeline).await;
            if probes.is_empty() {
                probes = checks
                    .iter()
                    .map(|c| Probe::start(c.clone(), started))
                    .collect();
            }
        }
        for probe in &probes {
            if let Some((at, detail)) = probe.answered() {
                timeline.see(probe.step(), at, detail);
            }
        }
        if timeline.failed().is_empty() {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    for probe in &probes {
        if let Some(error) = probe.last_error() {
            timeline.last_error(probe.step(), error);
        }
    }
    timeline
}

/// Registered, healthy and old-removed, from one read of the group.
async fn look_at_group(
    syncer: &RealSyncer,
    before: &Before,
    new: &BTreeSet<IpAddr>,
    at: Duration,
    timeline: &mut Timeline,
) {
    let arn = &syncer.target.target_group.arn;
    let Ok(targets) = syncer.groups.read_targets(arn).await else {
        return;
    };
    let keys = |ips: &BTreeSet<IpAddr>| -> Vec<TargetKey> {
        ips.iter()
            .map(|ip| TargetKey::new(*ip, before.port))
            .collect()
    };
    let state_of = |k: &TargetKey| targets.iter().find(|t| t.key == *k).map(|t| t.state);
    let wanted = keys(new);
    let listed = crate::logging::join_with(&wanted, ", ");
    if wanted
        .iter()
        .all(|k| state_of(k).is_some_and(|s| !s.is_draining()))
    {
        timeline.see(Step::Registered, at, listed.clone());
    }
    if wanted
        .iter()
        .all(|k| state_of(k).is_some_and(|s| s.is_healthy()))
    {
        timeline.see(Step::Healthy, at, listed);
    }
    let old: Vec<TargetKey> = keys(&before.addresses)
        .into_iter()
        .filter(|k| !wanted.contains(k))
        .collect();
    if old
        .iter()
        .all(|k| state_of(k).is_none_or(|s| s.is_draining()))
    {
        timeline.see(Step::OldRemoved, at, crate::logging::join_with(&old, ", "));
    }
}

/// RDS's failover events since the call: the first of category `failover`, and the one
/// that says it completed. RDS events are best effort and may arrive minutes late.
/// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html
async fn events(
    rds: &RegionClients,
    failover: &Failover,
    started_at: SystemTime,
    at: Duration,
    timeline: &mut Timeline,
) {
    let (id, source_type) = match failover {
        Failover::Instance(id) => (id, aws_sdk_rds::types::SourceType::DbInstance),
        Failover::Cluster(id) => (id, aws_sdk_rds::types::SourceType::DbCluster),
    };
    let since = started_at - Duration::from_secs(5);
    let out = rds
        .rds
        .describe_events()
        .source_identifier(id)
        .source_type(source_type)
        .start_time(aws_smithy_types::DateTime::from(since))
        .send()
        .boxed()
        .await
        .pipe_observe(rds, "DescribeEvents", id);
    let Ok(out) = out else {
        return;
    };
    for event in out.events() {
        let failover = event
            .event_categories()
            .iter()
            .any(|c| c.eq_ignore_ascii_case("failover"));
        let recent = event
            .date()
            .and_then(|d| SystemTime::try_from(*d).ok())
            .is_none_or(|d| d >= since);
        if !(failover && recent) {
            continue;
        }
        // Timed by the event's own date (polled every few seconds, it may be late).
        let at = event
            .date()
            .and_then(|d| SystemTime::try_from(*d).ok())
            .and_then(|d| d.duration_since(started_at).ok())
            .unwrap_or(at);
        let message = event.message().unwrap_or_default();
        timeline.see(Step::RdsFailoverStarted, at, message);
        if message.to_ascii_lowercase().contains("complete") {
            timeline.see(Step::RdsFailoverCompleted, at, message);
        }
    }
}

fn report(args: &DrillArgs, failover: &Failover, before: &Before, timeline: &Timeline) -> Exit {
    let missing = timeline.failed();
    if args.json {
        let doc = json!({
            "schema_version": SCHEMA_VERSION,
            "target": args.target,
            "dry_run": false,
            "called": failover.call(),
            "hostname": before.hostname,
            "old_addresses": before.addresses,
            "steps": timeline.records(),
            "completed": missing.is_empty(),
            "timeout_seconds": args.timeout.as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "drill {}: {} ({}), seconds after the call\n\n{}",
            args.target,
            failover.call(),
            before.hostname,
            timeline.table()
        );
    }
    if missing.is_empty() {
        return Exit::Ok;
    }
    let names: Vec<String> = missing
        .iter()
        .map(|s| match timeline.why_not(*s) {
            Some(why) => format!("{} (last error: {why})", s.describe()),
            None => s.describe().to_string(),
        })
        .collect();
    eprintln!(
        "error: drill: not seen within {}: {}",
        humantime::format_duration(args.timeout),
        names.join(", ")
    );
    Exit::Failed
}
