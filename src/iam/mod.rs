//! `pglink iam-policy`: the least-privilege IAM policy for one configuration, written from
//! the config (exact ARNs, the partition, account and region they name), not kept by hand.
//!
//! The policy is a plain value ([`Policy`]) built by pure functions, so that tests can
//! evaluate it ([`eval`]) against pglink's own resources and against foreign ones.

pub mod bootstrap;
pub mod daemon;
pub mod drill;
pub mod eval;
pub mod resource;

use std::collections::BTreeMap;

use serde::Serialize;

/// An identity-based policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: &'static str,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    /// operator -> key -> values (`StringEquals` -> `aws:ResourceTag/pglink:managed-by`).
    pub conditions: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
}

impl Statement {
    pub fn new(sid: &'static str, actions: &[&'static str], resources: Vec<String>) -> Self {
        Self {
            sid,
            actions: actions.to_vec(),
            resources,
            conditions: BTreeMap::new(),
        }
    }

    /// Adds `key` under `operator`, with `values` (several values: any of them matches).
    pub fn when(mut self, operator: &'static str, key: &str, values: &[&str]) -> Self {
        self.conditions.entry(operator).or_default().insert(
            key.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }
}

/// A string or a list, as IAM writes one value or several.
#[derive(Serialize)]
#[serde(untagged)]
enum OneOrMany<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

fn one_or_many<'a, S: AsRef<str>>(values: &'a [S]) -> OneOrMany<'a> {
    match values {
        [one] => OneOrMany::One(one.as_ref()),
        many => OneOrMany::Many(many.iter().map(AsRef::as_ref).collect()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatementJson<'a> {
    sid: &'a str,
    effect: &'a str,
    action: OneOrMany<'a>,
    resource: OneOrMany<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    condition: BTreeMap<&'a str, BTreeMap<&'a str, OneOrMany<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyJson<'a> {
    version: &'a str,
    statement: Vec<StatementJson<'a>>,
}

impl Policy {
    /// The document as AWS takes it, pretty-printed, with a final newline.
    pub fn to_json(&self) -> String {
        let statement = self
            .statements
            .iter()
            .map(|s| StatementJson {
                sid: s.sid,
                effect: "Allow",
                action: one_or_many(&s.actions),
                resource: one_or_many(&s.resources),
                condition: s
                    .conditions
                    .iter()
                    .map(|(op, keys)| {
                        let keys = keys
                            .iter()
                            .map(|(k, v)| (k.as_str(), one_or_many(v)))
                            .collect();
                        (*op, keys)
                    })
                    .collect(),
            })
            .collect();
        let doc = PolicyJson {
            version: "2012-10-17",
            statement,
        };
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// ARNs of one partition, account and region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Scope {
    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }
}
