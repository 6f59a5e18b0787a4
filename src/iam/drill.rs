//! The drill's policy (`pglink drill`): the daemon's, for the targets a drill can fail over
//! (it syncs them itself, unless `--watch`), plus the failover call on exactly those
//! databases and RDS's events. It is for whoever runs the drill, with the credentials that
//! make the target's calls (the daemon's own, or the target's `role_arn`).
//!
//! From the Service Authorization Reference: RebootDBInstance takes the `db` resource,
//! FailoverDBCluster the `cluster` resource, DescribeEvents no resource (`*`: it reads event
//! text, never data). No condition key limits RebootDBInstance to ForceFailover, so the
//! statement allows a plain reboot of those instances too.
//! https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html

use std::collections::BTreeSet;

use super::daemon::{self, scope_of, served, Credentials};
use super::{Policy, Statement};
use crate::config::Config;
use crate::drill::Failover;

/// The policy for `who`'s drills, or why there is none.
pub fn policy(config: &Config, who: &Credentials) -> Result<Policy, String> {
    let mut drillable = config.clone();
    drillable.targets.retain(|t| Failover::of(t).is_some());
    if drillable.targets.is_empty() {
        return Err(
            "no target that drill can fail over: expected one with db_instance, or db_cluster followed by its writer"
                .into(),
        );
    }
    let targets = served(&drillable, who);
    let mut policy = daemon::policy(&drillable, who)?;
    if targets.is_empty() {
        // Every drillable target is another role's: the caller only assumes those roles,
        // whose own policies (--role-arn) carry the failover.
        return Ok(policy);
    }
    let arns = |kind: &str, want: fn(&Failover) -> Option<&str>| -> Vec<String> {
        targets
            .iter()
            .filter_map(|t| {
                let failover = Failover::of(t)?;
                let id = want(&failover)?.to_string();
                Some(scope_of(t, &t.database_region).arn("rds", &format!("{kind}:{id}")))
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let instances = arns("db", |f| match f {
        Failover::Instance(id) => Some(id),
        Failover::Cluster(_) => None,
    });
    let clusters = arns("cluster", |f| match f {
        Failover::Cluster(id) => Some(id),
        Failover::Instance(_) => None,
    });
    if !instances.is_empty() {
        policy.statements.push(Statement::new(
            "FailOverTheseInstancesByRebooting",
            &["rds:RebootDBInstance"],
            instances,
        ));
    }
    if !clusters.is_empty() {
        policy.statements.push(Statement::new(
            "FailOverTheseClusters",
            &["rds:FailoverDBCluster"],
            clusters,
        ));
    }
    policy.statements.push(Statement::new(
        "ReadFailoverEvents",
        &["rds:DescribeEvents"],
        vec!["*".into()],
    ));
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::iam::eval::{allowing, Request};

    const ACCOUNT: &str = "111111111111";
    const OTHER: &str = "222222222222";

    fn config() -> Config {
        let tg = |account: &str, name: &str| {
            format!("arn:aws:elasticloadbalancing:us-east-1:{account}:targetgroup/{name}/0123456789abcdef")
        };
        let text = format!(
            r#"
[[targets]]
name = "orders"
db_instance = "orders"
target_group = "{}"

[[targets]]
name = "ledger"
db_cluster = "ledger"
target_group = "{}"

[[targets]]
name = "ledger-readers"
db_cluster = "reports"
role = "readers"
target_group = "{}"

[[targets]]
name = "billing"
db_instance = "billing"
target_group = "{}"
role_arn = "arn:aws:iam::{OTHER}:role/pglink-target"
"#,
            tg(ACCOUNT, "pglink-orders"),
            tg(ACCOUNT, "pglink-ledger"),
            tg(ACCOUNT, "pglink-reports"),
            tg(OTHER, "pglink-billing"),
        );
        crate::config::parse(&text, "test").expect("valid config").1
    }

    fn doc(who: &Credentials) -> Value {
        serde_json::from_str(&policy(&config(), who).expect("a policy").to_json()).unwrap()
    }

    fn rds(account: &str, resource: &str) -> String {
        format!("arn:aws:rds:us-east-1:{account}:{resource}")
    }

    #[test]
    fn only_the_drillable_databases_may_be_failed_over() {
        let d = doc(&Credentials::Daemon);
        let allowed =
            |action: &str, arn: &str| !allowing(&d, &Request::new(action, arn)).is_empty();
        assert!(allowed("rds:RebootDBInstance", &rds(ACCOUNT, "db:orders")));
        assert!(allowed(
            "rds:FailoverDBCluster",
            &rds(ACCOUNT, "cluster:ledger")
        ));
        assert!(allowed("rds:DescribeEvents", "*"));
        // A readers target has no one database to fail over; another account's target is
        // its role's; foreign databases and crossed kinds are not allowed.
        assert!(!allowed(
            "rds:FailoverDBCluster",
            &rds(ACCOUNT, "cluster:reports")
        ));
        assert!(!allowed("rds:RebootDBInstance", &rds(OTHER, "db:billing")));
        assert!(!allowed(
            "rds:RebootDBInstance",
            &rds(ACCOUNT, "db:payroll")
        ));
        assert!(!allowed("rds:RebootDBInstance", &rds(ACCOUNT, "db:ledger")));
        assert!(!allowed(
            "rds:FailoverDBCluster",
            &rds(ACCOUNT, "cluster:orders")
        ));
        // It syncs what it fails over, with the daemon's rules: the readers target's
        // instance listing is not part of it.
        assert!(allowed(
            "rds:DescribeDBInstances",
            &rds(ACCOUNT, "db:orders")
        ));
        assert!(!allowed("rds:DescribeDBInstances", &rds(ACCOUNT, "db:*")));
        let role = Credentials::Role(format!("arn:aws:iam::{OTHER}:role/pglink-target"));
        let r = doc(&role);
        assert!(!allowing(
            &r,
            &Request::new("rds:RebootDBInstance", &rds(OTHER, "db:billing"))
        )
        .is_empty());
        assert!(allowing(
            &r,
            &Request::new("rds:FailoverDBCluster", &rds(ACCOUNT, "cluster:ledger"))
        )
        .is_empty());
    }

    #[test]
    fn nothing_to_drill_is_said_plainly() {
        let mut c = config();
        c.targets.retain(|t| t.name == "ledger-readers");
        let err = policy(&c, &Credentials::Daemon).unwrap_err();
        assert!(
            err.starts_with("no target that drill can fail over"),
            "{err}"
        );
        // Only another role's target: the caller assumes the role, and nothing more.
        let mut c = config();
        c.targets.retain(|t| t.name == "billing");
        let text = policy(&c, &Credentials::Daemon).unwrap().to_json();
        assert!(
            text.contains("sts:AssumeRole") && !text.contains("rds:"),
            "{text}"
        );
        let err = policy(
            &c,
            &Credentials::Role("arn:aws:iam::111111111111:role/x".into()),
        )
        .unwrap_err();
        assert!(err.starts_with("no target has role_arn"), "{err}");
    }
}
