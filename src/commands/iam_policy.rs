//! `pglink iam-policy`: print the least-privilege policy for this configuration.

use std::path::PathBuf;

use super::{load, Exit};
use crate::config::ConfigError;
use crate::iam::daemon::{self, Credentials};
use crate::iam::{bootstrap, drill, Policy};

/// Prints the bootstrap role's policy for the `[bootstrap]` stack, in `account` if given.
pub fn bootstrap_policy(path: Option<PathBuf>, account: Option<String>) -> Exit {
    let config = match load(path) {
        Ok((_, config)) => config,
        Err(exit) => return exit,
    };
    if let Some(account) = &account {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Exit::BadInput(format!(
                "--account: expected a 12-digit AWS account ID, got {account:?}"
            ));
        }
    }
    match bootstrap::policy(&config, account.as_deref()) {
        Ok(policy) => print_policy(&policy),
        Err((key, reason)) => ConfigError::invalid(key, reason).into(),
    }
}

fn print_policy(policy: &Policy) -> Exit {
    print!("{}", policy.to_json());
    Exit::Ok
}

/// Prints the policy for the daemon's own credentials, or with `role_arn` for the role that
/// the targets naming it assume (attached to that role, in its account); with `for_drill`,
/// the drill's (the daemon's for the targets it can fail over, plus the failover).
pub fn iam_policy(path: Option<PathBuf>, role_arn: Option<String>, for_drill: bool) -> Exit {
    let config = match load(path) {
        Ok((_, config)) => config,
        Err(exit) => return exit,
    };
    let who = role_arn.map_or(Credentials::Daemon, Credentials::Role);
    let policy = match for_drill {
        true => drill::policy(&config, &who),
        false => daemon::policy(&config, &who),
    };
    match policy {
        Ok(policy) => print_policy(&policy),
        Err(reason) => {
            let key = match who {
                Credentials::Daemon => "targets",
                Credentials::Role(_) => "--role-arn",
            };
            ConfigError::invalid(key, reason).into()
        }
    }
}
