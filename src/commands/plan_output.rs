//! `pglink plan`: per target, what DNS says, what the group holds, and what a sync would
//! change. Read-only: it runs one dry-run pass per target. Exits 1 when a target could not be
//! read (the error is in the output).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use tokio::task::JoinSet;

use super::{build_syncers, sync_command, Exit, RealSyncer};
use crate::config::LogFormat;
use crate::metrics::Metrics;
use crate::plan::{self, Registered, TargetKey, TargetState};
use crate::sync::Memory;
use crate::target_state::Problem;
use crate::target_view::TargetView;

#[derive(Debug, Serialize)]
struct TargetPlan {
    name: String,
    target_group: String,
    account: String,
    /// The role the calls are made as; `None`: the daemon's own credentials.
    role: Option<String>,
    hostname: Option<String>,
    port: Option<u16>,
    resolved: Vec<String>,
    ttl_seconds: Option<u64>,
    registered: Vec<TargetView>,
    register: Vec<TargetView>,
    /// Removed once missing from DNS for `removal_delay_seconds`.
    deregister: Vec<TargetView>,
    removal_delay_seconds: Option<f64>,
    /// Left alone: in the group when it was adopted.
    kept: Vec<TargetView>,
    /// Registered targets that cannot serve, with the cause and the fix.
    problems: Vec<String>,
    in_sync: bool,
    error: Option<String>,
}

/// `detailed`: exit 3 when every target was read and some have changes pending.
pub fn plan(
    path: Option<PathBuf>,
    log_format: Option<LogFormat>,
    json: bool,
    detailed: bool,
) -> Exit {
    sync_command(path, log_format, async |config| {
        let syncers = match build_syncers(&config, true, &Metrics::new()).await {
            Ok(s) => s,
            Err(exit) => return exit,
        };
        let mut tasks = JoinSet::new();
        for (i, s) in syncers.into_iter().enumerate() {
            tasks.spawn(async move { (i, view(s).await) });
        }
        let mut views = Vec::new();
        let mut lost = false;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(v) => views.push(v),
                Err(e) => {
                    tracing::error!(error = %e, "a target's plan ended abnormally");
                    lost = true;
                }
            }
        }
        views.sort_by_key(|(i, _)| *i);
        let views: Vec<TargetPlan> = views.into_iter().map(|(_, v)| v).collect();
        let confirmations = config.sync.confirmations;
        if json {
            let doc = serde_json::json!({ "schema_version": super::SCHEMA_VERSION, "confirmations": confirmations, "targets": views });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else {
            print!("{}", render(&views));
        }
        // Exit 0 means every target was read: a script can trust it.
        if lost || views.iter().any(|v| v.error.is_some()) {
            Exit::Failed
        } else if detailed && views.iter().any(|v| !v.in_sync) {
            Exit::ChangesPending
        } else {
            Exit::Ok
        }
    })
}

async fn view(syncer: RealSyncer) -> TargetPlan {
    let mut v = TargetPlan {
        name: syncer.target.name.clone(),
        target_group: syncer.target.target_group.arn.clone(),
        account: syncer.target.target_group.account.clone(),
        role: syncer.target.role.as_ref().map(|r| r.arn.clone()),
        hostname: None,
        port: None,
        resolved: vec![],
        ttl_seconds: None,
        registered: vec![],
        register: vec![],
        deregister: vec![],
        removal_delay_seconds: None,
        kept: vec![],
        problems: vec![],
        in_sync: false,
        error: None,
    };
    let mut mem = syncer.memory();
    match syncer.pass(&mut mem).await {
        Ok(r) => {
            let kept = mem.kept();
            let managed: Vec<Registered> = r
                .registered
                .iter()
                .filter(|t| !kept.contains(&t.key))
                .copied()
                .collect();
            let d = plan::diff(
                &plan::desired_targets(&r.resolved.addresses, r.port),
                &managed,
            );
            let in_group = |key: &TargetKey| match r.registered.iter().find(|t| t.key == *key) {
                Some(t) => TargetView::registered(t),
                None => TargetView::planned(key),
            };
            v.kept = kept.iter().map(in_group).collect();
            v.removal_delay_seconds =
                Some(syncer.policy(r.resolved.ttl).removal_delay.as_secs_f64());
            v.problems = problems(&syncer, &mem, &r.registered).await;
            v.hostname = Some(r.hostname);
            v.port = Some(r.port);
            v.resolved = r
                .resolved
                .addresses
                .iter()
                .map(ToString::to_string)
                .collect();
            v.ttl_seconds = Some(r.resolved.ttl.as_secs());
            v.registered = r.registered.iter().map(TargetView::registered).collect();
            v.register = d.missing.iter().map(TargetView::planned).collect();
            v.deregister = d.stale.iter().map(in_group).collect();
            v.in_sync = d.missing.is_empty() && d.stale.is_empty();
        }
        Err(e) => v.error = Some(e.to_string()),
    }
    v
}

/// Unused and unhealthy targets, each with its cause and fix.
async fn problems(syncer: &RealSyncer, mem: &Memory, registered: &[Registered]) -> Vec<String> {
    let Some(group) = mem.group() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in registered {
        let problem = match t.state {
            TargetState::Unused => Problem::Unused,
            TargetState::Unhealthy => Problem::Unhealthy,
            _ => continue,
        };
        let advice = syncer.advice(mem, group, t.key, problem).await;
        out.push(format!("{} {}: {advice}", t.key, t.state.as_str()));
    }
    out
}

/// Items joined by commas, or `-` for none.
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    crate::logging::join_with(items, ", ")
}

fn render(views: &[TargetPlan]) -> String {
    let mut out = String::new();
    for v in views {
        let _ = writeln!(out, "{}  ({})", v.name, v.target_group);
        let _ = writeln!(
            out,
            "  account:     {} as {}",
            v.account,
            v.role.as_deref().unwrap_or("the daemon's own credentials")
        );
        if let Some(e) = &v.error {
            let _ = writeln!(out, "  error:       {e}");
            let _ = writeln!(out, "  changes:     none (nothing is planned without a usable answer and a readable group)\n");
            continue;
        }
        let registered: Vec<String> = v
            .registered
            .iter()
            .map(|r| format!("{r} {}", r.state.as_deref().unwrap_or("-")))
            .collect();
        let _ = writeln!(
            out,
            "  hostname:    {}",
            v.hostname.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "  resolved:    {} (ttl {}s)",
            list(&v.resolved),
            v.ttl_seconds.unwrap_or(0)
        );
        let _ = writeln!(out, "  registered:  {}", list(&registered));
        let _ = writeln!(out, "  register:    {}", list(&v.register));
        let _ = writeln!(
            out,
            "  deregister:  {}{}",
            list(&v.deregister),
            if v.deregister.is_empty() {
                String::new()
            } else {
                format!(
                    " (once missing from DNS for {:.0}s and every new target is in)",
                    v.removal_delay_seconds.unwrap_or(0.0)
                )
            }
        );
        if !v.kept.is_empty() {
            let _ = writeln!(
                out,
                "  kept:        {} (in the group when adopted; never removed)",
                list(&v.kept)
            );
        }
        for p in &v.problems {
            let _ = writeln!(out, "  problem:     {p}");
        }
        let _ = writeln!(
            out,
            "  status:      {}\n",
            if v.in_sync {
                "in sync"
            } else {
                "changes pending"
            }
        );
    }
    out
}
