//! The configuration as the user wrote it: TOML file, then `PGLINK_*` variables on top.
//!
//! Every section denies unknown keys, so a typo is an error instead of a silently ignored
//! setting. Values stay close to their written form (durations are strings); `validate`
//! turns them into typed settings and names the key when one is wrong.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub aws: RawAws,
    #[serde(default)]
    pub dns: RawDns,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<RawBootstrap>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub allow_clear_text_endpoint: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default = "defaults::max_describe_per_second")]
    pub max_describe_per_second: f64,
}

impl Default for RawAws {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            allow_clear_text_endpoint: false,
            profile: None,
            max_describe_per_second: defaults::max_describe_per_second(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default = "defaults::dns_timeout")]
    pub timeout: String,
    #[serde(default = "defaults::max_queries_per_second")]
    pub max_queries_per_second: f64,
}

impl Default for RawDns {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: defaults::dns_timeout(),
            max_queries_per_second: defaults::max_queries_per_second(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    #[serde(default = "defaults::interval")]
    pub interval: String,
    #[serde(default = "defaults::drift_check")]
    pub drift_check: String,
    #[serde(default = "defaults::confirmations")]
    pub confirmations: i64,
    #[serde(default = "defaults::max_backoff")]
    pub max_backoff: String,
    #[serde(default = "defaults::rotation_hold")]
    pub rotation_hold: String,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            interval: defaults::interval(),
            drift_check: defaults::drift_check(),
            confirmations: defaults::confirmations(),
            max_backoff: defaults::max_backoff(),
            rotation_hold: defaults::rotation_hold(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default = "defaults::listen")]
    pub listen: String,
    #[serde(default = "defaults::not_ready_after")]
    pub not_ready_after: String,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: defaults::listen(),
            not_ready_after: defaults::not_ready_after(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    #[serde(default = "defaults::log_level")]
    pub level: String,
    #[serde(default = "defaults::log_format")]
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: defaults::log_level(),
            format: defaults::log_format(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_cluster: Option<String>,
    /// With `db_cluster`: which instances, `writer` (default), `readers` or `all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// An Aurora custom endpoint: its member instances, each by its own endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_cluster_endpoint: Option<String>,
    /// An RDS Proxy by name: every address of its endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_proxy: Option<String>,
    /// With `db_proxy`: one of its endpoints by name (default: its own endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_endpoint: Option<String>,
    #[serde(default)]
    pub target_group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default)]
    pub adopt: RawAdopt,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `adopt = true | false | "keep" | "replace"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RawAdopt {
    Flag(bool),
    Mode(String),
}

impl Default for RawAdopt {
    fn default() -> Self {
        Self::Flag(false)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBootstrap {
    #[serde(default)]
    pub name: String,
    pub database: Option<RawDatabase>,
    #[serde(default = "defaults::port")]
    pub port: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_security_group_id: Option<String>,
    #[serde(default = "defaults::acceptance_required")]
    pub acceptance_required: bool,
    #[serde(default)]
    pub allowed_principals: Vec<String>,
    #[serde(default = "defaults::consumer_environment")]
    pub consumer_environment: String,
    /// "endpoint-service" (an NLB and a VPC endpoint service) or "resource" (a VPC Lattice
    /// resource gateway and configuration shared through AWS RAM).
    #[serde(default = "defaults::mode")]
    pub mode: String,
    #[serde(default = "defaults::ipv4_addresses_per_eni")]
    pub ipv4_addresses_per_eni: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_region: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Defaults in one place: the values `check-config` prints when a key is left out.
pub mod defaults {
    pub fn dns_timeout() -> String {
        "1s".into()
    }
    pub fn max_queries_per_second() -> f64 {
        200.0
    }
    pub fn max_describe_per_second() -> f64 {
        2.0
    }
    pub fn interval() -> String {
        "1s".into()
    }
    pub fn drift_check() -> String {
        "60s".into()
    }
    pub fn confirmations() -> i64 {
        2
    }
    pub fn max_backoff() -> String {
        "30s".into()
    }
    pub fn rotation_hold() -> String {
        "15m".into()
    }
    pub fn listen() -> String {
        "127.0.0.1:9187".into()
    }
    pub fn not_ready_after() -> String {
        "60s".into()
    }
    pub fn log_level() -> String {
        "info".into()
    }
    pub fn log_format() -> String {
        "text".into()
    }
    pub fn port() -> i64 {
        5432
    }
    pub fn acceptance_required() -> bool {
        true
    }
    pub fn consumer_environment() -> String {
        "US".into()
    }
    pub fn mode() -> String {
        "endpoint-service".into()
    }
    /// AWS's default for a resource gateway.
    pub fn ipv4_addresses_per_eni() -> i64 {
        16
    }
}
