//! `pglink bootstrap` and `pglink teardown`.

use std::path::PathBuf;

use serde_json::json;
use tracing::error;

use super::{block_on, load, Exit, SCHEMA_VERSION};
use crate::aws::{self, RegionClients};
use crate::bootstrap::journal::Journal;
use crate::bootstrap::resource::stack::ResourceOutcome;
use crate::bootstrap::resource::{self, ResourceClients};
use crate::bootstrap::{
    self, accept, endpoint_service, request, teardown, BootstrapError, Outcome,
};
use crate::config::{BootstrapSettings, Config, ConfigError, LogFormat, StackMode};
use crate::logging;
use crate::metrics::Metrics;
use crate::resolve::DnsResolver;

fn load_bootstrap(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
) -> Result<(Config, BootstrapSettings), Exit> {
    let (_, config) = load(path)?;
    let Some(settings) = config.bootstrap.clone() else {
        return Err(ConfigError::invalid(
            "bootstrap",
            "expected a [bootstrap] section (see config.example.toml)",
        )
        .into());
    };
    logging::init(log_format.unwrap_or(config.log.format), &config.log.level);
    Ok((config, settings))
}

async fn clients(config: &Config) -> Result<(RegionClients, ResourceClients, String), Exit> {
    let sdk = aws::sdk_config(&config.aws, None).await;
    let Some(region) = sdk.region().map(|r| r.to_string()) else {
        return Err(ConfigError::invalid(
            "aws.region",
            "expected a region such as \"us-east-1\" (or AWS_REGION) for bootstrap",
        )
        .into());
    };
    let metrics = Metrics::new();
    Ok((
        RegionClients::new(&sdk, &region, metrics.clone()),
        ResourceClients::new(&sdk, &region, metrics),
        region,
    ))
}

/// What every stack command works on.
struct Stack {
    config: Config,
    settings: BootstrapSettings,
    c: RegionClients,
    /// VPC Lattice and RAM, for resource mode.
    r: ResourceClients,
    region: String,
}

/// Loads `[bootstrap]`, starts logging and the runtime, builds the clients, then runs `body`.
fn stack_command(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
    body: impl AsyncFnOnce(Stack) -> Exit,
) -> Exit {
    let (config, settings) = match load_bootstrap(path, log_format) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    block_on(async {
        match clients(&config).await {
            Ok((c, r, region)) => {
                body(Stack {
                    config,
                    settings,
                    c,
                    r,
                    region,
                })
                .await
            }
            Err(exit) => exit,
        }
    })
}

/// `detailed` (with `dry_run` only): exit 3 when the stack needs changes, 0 when it is in
/// place.
pub fn bootstrap(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
    dry_run: bool,
    json: bool,
    detailed: bool,
) -> Exit {
    if detailed && !dry_run {
        return Exit::BadInput(
            "--detailed-exitcode: only with --dry-run (exit 3: changes pending)".into(),
        );
    }
    stack_command(path, log_format, async |stack| {
        let Stack {
            config,
            settings,
            c,
            r,
            region,
        } = stack;
        let mut journal = Journal::new(dry_run);
        if settings.mode == StackMode::Resource {
            let result = resource::stack::bootstrap(&c, &r, &region, &settings, &mut journal).await;
            return match result {
                Ok(outcome) => {
                    print_resource_outcome(&outcome, &settings, &journal, json);
                    done(detailed, &journal)
                }
                Err(e) => failed(e, &journal),
            };
        }
        let resolver = match DnsResolver::new(&config.dns) {
            Ok(r) => r,
            Err(e) => return Exit::BadInput(format!("dns: {e}")),
        };
        match bootstrap::bootstrap(&c, &region, &settings, &resolver, &mut journal).await {
            Ok(outcome) => {
                print_outcome(&outcome, &settings, &journal, json);
                done(detailed, &journal)
            }
            Err(e) => failed(e, &journal),
        }
    })
}

/// With `--detailed-exitcode`, 3 when changes are pending (a dry run's plan).
fn done(detailed: bool, journal: &Journal) -> Exit {
    if detailed && journal.changes() > 0 {
        Exit::ChangesPending
    } else {
        Exit::Ok
    }
}

/// Bad input exits 2 with nothing changed; AWS's refusal exits 1 saying what exists.
fn failed(e: BootstrapError, journal: &Journal) -> Exit {
    match e {
        BootstrapError::Input(message) => Exit::BadInput(message),
        e => {
            error!(error = %e, "bootstrap stopped; what exists is tagged and the next run completes it");
            eprint!("{}", journal.render_failure());
            Exit::Failed
        }
    }
}

fn print_resource_outcome(
    o: &ResourceOutcome,
    s: &BootstrapSettings,
    journal: &Journal,
    as_json: bool,
) {
    let consumer = resource::stack::consumer_info(o);
    let follows = follows_itself(s);
    if as_json {
        let doc = json!({ "schema_version": SCHEMA_VERSION, "mode": "resource", "stack": o, "plan": plan_json(journal), "consumer_request": consumer, "daemon_needed": !follows });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    println!(
        "pglink bootstrap {} in {} (resource mode){}\n{}",
        o.name,
        o.region,
        dry_run_note(o.dry_run),
        journal.render()
    );
    for w in &o.warnings {
        println!("warning: {w}");
    }
    match consumer {
        Some(text) => println!("\n{text}"),
        None => println!(
            "\nThe share ARN and the configuration ID are known once bootstrap runs without --dry-run."
        ),
    }
    if follows {
        println!("No [[targets]] snippet: the resource configuration follows the database itself through failovers; pglink run is not needed for it.");
    }
}

/// The plan in `--output json`: one record per journal line.
fn plan_json(journal: &Journal) -> Vec<serde_json::Value> {
    journal
        .entries
        .iter()
        .map(|e| json!({ "action": e.mark.as_str(), "resource": e.resource, "detail": e.detail }))
        .collect()
}

fn dry_run_note(dry_run: bool) -> &'static str {
    if dry_run {
        " (dry run: nothing changed)"
    } else {
        ""
    }
}

/// An ARN or hostname configuration follows the database itself; an address is fixed.
fn follows_itself(s: &BootstrapSettings) -> bool {
    !matches!(s.database, crate::config::DatabaseKind::Ip(_))
}

fn print_outcome(o: &Outcome, s: &BootstrapSettings, journal: &Journal, as_json: bool) {
    let request = o
        .endpoint_service_name
        .as_deref()
        .map(|n| request::support_request(n, &o.region, s));
    let snippet = o
        .target_group_arn
        .as_deref()
        .and_then(|arn| request::targets_snippet(s, arn));
    if as_json {
        let doc = json!({ "schema_version": SCHEMA_VERSION, "stack": o, "plan": plan_json(journal), "support_request": request, "targets_snippet": snippet });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    println!(
        "pglink bootstrap {} in {}{}\n{}",
        o.name,
        o.region,
        dry_run_note(o.dry_run),
        journal.render()
    );
    if !o.skipped_subnet_ids.is_empty() {
        println!(
            "note: an NLB takes one subnet per Availability Zone; not used from the DB subnet group: {}",
            o.skipped_subnet_ids.join(", ")
        );
    }
    for w in &o.warnings {
        println!("warning: {w}");
    }
    match (&o.endpoint_service_name, request) {
        (Some(name), Some(request)) => {
            println!("\nVPC endpoint service name: {name}\n");
            println!("Send this to the consumer's support (dbt Cloud):\n\n{request}");
        }
        _ => {
            println!("\nThe endpoint service name is known once bootstrap runs without --dry-run.")
        }
    }
    if let Some(snippet) = snippet {
        println!("Keep the target group pointed at the database after failovers (pglink run):\n\n{snippet}");
    }
}

pub fn teardown_cmd(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
    yes: bool,
    reject_connections: bool,
    json: bool,
) -> Exit {
    stack_command(path, log_format, async |stack| {
        let Stack {
            settings,
            c,
            r,
            region,
            ..
        } = stack;
        let mut journal = Journal::new(!yes);
        let result = match settings.mode {
            StackMode::Resource => {
                resource::teardown::teardown(
                    &c,
                    &r,
                    &settings.name,
                    &mut journal,
                    reject_connections,
                )
                .await
            }
            StackMode::EndpointService => {
                teardown::teardown(&c, &settings, &mut journal, reject_connections).await
            }
        };
        if json {
            let resources: Vec<_> = journal
                .entries
                .iter()
                .map(|e| json!({ "resource": e.resource, "detail": e.detail, "deleted": e.confirmed }))
                .collect();
            let doc = json!({
                "schema_version": SCHEMA_VERSION,
                "name": settings.name,
                "region": region,
                "dry_run": !yes,
                "resources": resources,
                "error": result.as_ref().err().map(ToString::to_string),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else {
            let verb = if yes {
                "deleted"
            } else {
                "would delete (run again with --yes)"
            };
            match &result {
                Ok(()) if journal.entries.is_empty() => println!(
                    "pglink teardown {} in {region}: nothing to delete (no resource carries pglink's tags for this name)",
                    settings.name
                ),
                Ok(()) => println!(
                    "pglink teardown {} in {region}: {verb}\n{}",
                    settings.name,
                    journal.render()
                ),
                Err(_) => println!(
                    "pglink teardown {} in {region}: stopped\n{}",
                    settings.name,
                    journal.render_failure()
                ),
            }
        }
        match result {
            Ok(()) => Exit::Ok,
            Err(e) => {
                error!(error = %e, "teardown stopped; run it again to continue");
                Exit::Failed
            }
        }
    })
}

pub fn accept_cmd(path: Option<PathBuf>, log_format: Option<LogFormat>, json: bool) -> Exit {
    stack_command(path, log_format, async |stack| {
        let Stack { settings, c, r, .. } = stack;
        if settings.mode == StackMode::Resource {
            return resource_accept(&r, &settings.name, json).await;
        }
        let service = match endpoint_service::find(&c, &settings.name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                error!(name = %settings.name, "no endpoint service carries pglink's tags for this name: run pglink bootstrap first");
                return Exit::Failed;
            }
            Err(e) => {
                error!(error = %e, "could not look up the endpoint service");
                return Exit::Failed;
            }
        };
        let id = service.service_id().unwrap_or_default();
        match accept::accept(&c.ec2, id, &settings.allowed_principals).await {
            Ok(report) => {
                if json {
                    print_accept_json(id, &report);
                } else {
                    print_accept_text(id, &report);
                }
                if report.failed.is_empty() {
                    Exit::Ok
                } else {
                    Exit::Failed
                }
            }
            Err(e) => {
                error!(error = %e, "accept failed");
                Exit::Failed
            }
        }
    })
}

/// Resource mode: the owner has nothing to accept; it reports the share's accounts and the
/// consumers' endpoints (exit 1 when no share exists yet).
async fn resource_accept(r: &ResourceClients, stack: &str, json: bool) -> Exit {
    let report = match resource::accept::report(r, stack).await {
        Ok(report) => report,
        Err(e) => {
            error!(error = %e, "could not read the resource share");
            return Exit::Failed;
        }
    };
    if json {
        let doc = json!({ "schema_version": SCHEMA_VERSION, "mode": "resource", "report": report });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", resource::accept::render(&report));
    }
    if report.resource_share_arn.is_none() {
        error!(name = %stack, "no resource share carries pglink's tags for this name: run pglink bootstrap first");
        return Exit::Failed;
    }
    Exit::Ok
}

fn print_accept_text(service_id: &str, report: &accept::AcceptReport) {
    for conn in &report.accepted {
        println!("accepted  {} (account {})", conn.endpoint_id, conn.owner);
    }
    for conn in &report.foreign {
        println!(
            "left pending  {} (account {} is not an allowed principal's)",
            conn.endpoint_id, conn.owner
        );
    }
    for (conn, reason) in &report.failed {
        println!(
            "failed  {} (account {}): {reason}",
            conn.endpoint_id, conn.owner
        );
    }
    if report.accepted.is_empty() && report.foreign.is_empty() && report.failed.is_empty() {
        println!("no pending connections to {service_id}");
    }
}

fn print_accept_json(service_id: &str, report: &accept::AcceptReport) {
    let failed: Vec<_> = report
        .failed
        .iter()
        .map(|(c, reason)| json!({ "endpoint_id": c.endpoint_id, "owner": c.owner, "reason": reason }))
        .collect();
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "endpoint_service_id": service_id,
        "accepted": report.accepted,
        "left_pending": report.foreign,
        "failed": failed,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
