//! Raw configuration -> typed settings, with every error naming its key.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::raw::{RawAdopt, RawBootstrap, RawConfig, RawDatabase, RawTarget};
use super::values;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct Config {
    pub aws: AwsSettings,
    pub dns: DnsSettings,
    pub sync: SyncSettings,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub targets: Vec<Target>,
    pub bootstrap: Option<BootstrapSettings>,
}

#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    /// ELBv2 Describe calls per second, for each (account, region) of the target groups.
    pub max_describe_per_second: f64,
}

#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Empty: the system's resolver configuration.
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    /// DNS queries per second, for the whole daemon.
    pub max_queries_per_second: f64,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub interval: Duration,
    pub drift_check: Duration,
    /// TTL windows an address must be missing from DNS before it is deregistered.
    pub confirmations: u32,
    pub max_backoff: Duration,
    /// How long a rotating name's address must be missing before it is deregistered.
    pub rotation_hold: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// A target failing for longer than this makes `/readyz` fail.
    pub not_ready_after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// Where a target's hostname comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    Hostname(String),
    DbInstance(String),
    DbCluster(String),
    /// An Aurora custom endpoint: its members, from DescribeDBClusterEndpoints.
    DbClusterEndpoint(String),
    /// An RDS Proxy, or one of its endpoints by name.
    DbProxy {
        name: String,
        endpoint: Option<String>,
    },
}

impl EndpointSource {
    /// Whether RDS is asked for the name to resolve (else it is the configured hostname).
    pub fn from_rds(&self) -> bool {
        !matches!(self, Self::Hostname(_))
    }
}

impl fmt::Display for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hostname(h) => write!(f, "{h}"),
            Self::DbInstance(id) => write!(f, "db_instance {id}"),
            Self::DbCluster(id) => write!(f, "db_cluster {id}"),
            Self::DbClusterEndpoint(id) => write!(f, "db_cluster_endpoint {id}"),
            Self::DbProxy {
                name,
                endpoint: None,
            } => write!(f, "db_proxy {name}"),
            Self::DbProxy {
                name,
                endpoint: Some(e),
            } => write!(f, "db_proxy {name} endpoint {e}"),
        }
    }
}

/// Which of a cluster's instances a `db_cluster` target keeps in the group (`role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Members {
    /// The writer, through the cluster endpoint (one name, followed by DNS).
    #[default]
    Writer,
    /// Every reader instance, each through its own endpoint.
    Readers,
    /// Every instance, writer and readers.
    All,
}

impl Members {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Writer => "writer",
            Self::Readers => "readers",
            Self::All => "all",
        }
    }

    /// Whether the target follows instances one by one (from RDS membership) rather than
    /// the cluster's writer endpoint.
    pub fn by_instance(self) -> bool {
        self != Self::Writer
    }

    /// Whether an instance in this role belongs to the set.
    pub fn includes(self, is_writer: bool) -> bool {
        match self {
            Self::Writer => is_writer,
            Self::Readers => !is_writer,
            Self::All => true,
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "writer" => Ok(Self::Writer),
            "readers" => Ok(Self::Readers),
            "all" => Ok(Self::All),
            other => Err(format!(
                "expected \"writer\", \"readers\" or \"all\" (the cluster's instances to keep in the group), got {other:?}"
            )),
        }
    }
}

/// A target group ARN, split into the parts pglink needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetGroupArn {
    pub arn: String,
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

impl TargetGroupArn {
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = || {
            format!("expected a target group ARN like \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/NAME/0123456789abcdef\", got {text:?}")
        };
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let ["arn", partition, "elasticloadbalancing", region, account, resource] =
            parts.as_slice()
        else {
            return Err(expected());
        };
        let mut res = resource.split('/');
        let (Some("targetgroup"), Some(name), Some(id), None) =
            (res.next(), res.next(), res.next(), res.next())
        else {
            return Err(expected());
        };
        // Names: 1-32 letters, digits and hyphens, no hyphen at either end
        // (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html).
        // Checked strictly because the ARN goes into generated IAM policies, where `*` and
        // `?` would be wildcards.
        let name_ok = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        let ok = partition.starts_with("aws")
            && partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
            && values::region(region).is_ok()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && name_ok
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(expected());
        }
        Ok(Self {
            arn: text.to_string(),
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub source: EndpointSource,
    /// For `db_cluster`: the writer (default), the readers, or every instance.
    pub members: Members,
    pub target_group: TargetGroupArn,
    /// Given in the file; otherwise 5432 for a hostname, or the database's own port from RDS.
    pub port: Option<u16>,
    /// Whether an untagged target group is taken over, and what happens to its targets.
    pub adopt: Adopt,
    /// The role this target's AWS calls are made as; `None`: the daemon's own credentials.
    pub role: Option<RoleToAssume>,
    /// Where RDS is asked for `db_instance` / `db_cluster`: `region`, else the group's.
    pub database_region: String,
}

/// An IAM role in the target group's account, assumed through STS for one target's calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleToAssume {
    pub arn: String,
    pub account: String,
    pub external_id: Option<String>,
}

/// Taking over a target group that pglink did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// Refuse an untagged group.
    Off,
    /// Tag it as pglink's; the targets it held then are left alone, across restarts.
    Keep,
    /// Tag it as pglink's and manage every target in it (old ones are removed).
    Replace,
}

impl Adopt {
    pub fn is_on(self) -> bool {
        self != Self::Off
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerEnvironment {
    Us,
    Emea,
    Au,
}

impl fmt::Display for ConsumerEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Us => "US",
            Self::Emea => "EMEA",
            Self::Au => "AU",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    DbInstance(String),
    DbCluster(String),
    Ip(IpAddr),
    Ec2Instance(String),
    AutoscalingGroup(String),
    /// A hostname (resource mode only: an NLB cannot target a name).
    Host(String),
}

/// Which PrivateLink path bootstrap builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackMode {
    /// An internal NLB behind a VPC endpoint service (what dbt Cloud, Fivetran, Snowflake
    /// and most consumers take).
    EndpointService,
    /// A VPC Lattice resource gateway and resource configuration shared through AWS RAM
    /// (resource endpoints: same region, no NLB, no address to follow).
    Resource,
}

#[derive(Debug, Clone)]
pub struct BootstrapSettings {
    pub name: String,
    pub database: DatabaseKind,
    pub port: u16,
    pub vpc_id: Option<String>,
    pub subnet_ids: Option<Vec<String>>,
    pub database_security_group_id: Option<String>,
    pub acceptance_required: bool,
    pub allowed_principals: Vec<String>,
    pub consumer_environment: ConsumerEnvironment,
    pub mode: StackMode,
    /// Resource mode: the gateway's IPv4 addresses per interface (1-62, fixed at creation).
    pub ipv4_addresses_per_eni: i32,
    /// Resource mode: where the consumer's endpoint is (it must be this region).
    pub consumer_region: Option<String>,
}

impl BootstrapSettings {
    /// The accounts a resource share goes to: each principal's account (RAM shares with
    /// accounts; a role's whole account gets the configuration).
    pub fn share_accounts(&self) -> Vec<String> {
        let mut accounts: Vec<String> = self
            .allowed_principals
            .iter()
            .filter_map(|p| {
                if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                    Some(p.clone())
                } else {
                    values::principal_account(p).map(str::to_string)
                }
            })
            .collect();
        accounts.sort();
        accounts.dedup();
        accounts
    }
}

fn at<T>(key: impl Into<String>, r: Result<T, String>) -> Result<T, ConfigError> {
    r.map_err(|expected| ConfigError::invalid(key, expected))
}

pub fn validate(raw: &RawConfig) -> Result<Config, ConfigError> {
    let config = Config {
        aws: aws(raw)?,
        dns: dns(raw)?,
        sync: sync(raw)?,
        server: ServerSettings {
            listen: at("server.listen", values::listen_addr(&raw.server.listen))?,
            not_ready_after: at(
                "server.not_ready_after",
                values::duration(
                    &raw.server.not_ready_after,
                    Duration::from_secs(1),
                    Duration::from_secs(86400),
                ),
            )?,
        },
        log: log(raw)?,
        targets: targets(&raw.targets)?,
        bootstrap: raw.bootstrap.as_ref().map(bootstrap).transpose()?,
    };
    Ok(config)
}

fn non_empty(key: &str, value: &Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => {
            Err(ConfigError::invalid(key, "expected a non-empty string"))
        }
        other => Ok(other.clone()),
    }
}

fn aws(raw: &RawConfig) -> Result<AwsSettings, ConfigError> {
    let endpoint_url = non_empty("aws.endpoint_url", &raw.aws.endpoint_url)?
        .map(|url| {
            at(
                "aws.endpoint_url",
                values::endpoint_url(&url, raw.aws.allow_clear_text_endpoint),
            )
        })
        .transpose()?;
    let region = non_empty("aws.region", &raw.aws.region)?;
    if let Some(r) = &region {
        let ok = r
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && r.contains('-');
        if !ok {
            return Err(ConfigError::invalid(
                "aws.region",
                format!("expected a region such as \"us-east-1\", got {r:?}"),
            ));
        }
    }
    Ok(AwsSettings {
        region,
        endpoint_url,
        profile: non_empty("aws.profile", &raw.aws.profile)?,
        max_describe_per_second: at(
            "aws.max_describe_per_second",
            values::rate(raw.aws.max_describe_per_second, 0.1, 100.0),
        )?,
    })
}

fn dns(raw: &RawConfig) -> Result<DnsSettings, ConfigError> {
    let nameservers = raw
        .dns
        .nameservers
        .iter()
        .enumerate()
        .map(|(i, ns)| at(format!("dns.nameservers[{i}]"), values::nameserver(ns)))
        .collect::<Result<_, _>>()?;
    let timeout = at(
        "dns.timeout",
        values::duration(
            &raw.dns.timeout,
            Duration::from_millis(10),
            Duration::from_secs(30),
        ),
    )?;
    let max_queries_per_second = at(
        "dns.max_queries_per_second",
        values::rate(raw.dns.max_queries_per_second, 1.0, 1000.0),
    )?;
    Ok(DnsSettings {
        nameservers,
        timeout,
        max_queries_per_second,
    })
}

fn sync(raw: &RawConfig) -> Result<SyncSettings, ConfigError> {
    let s = &raw.sync;
    let interval = at(
        "sync.interval",
        values::duration(
            &s.interval,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        ),
    )?;
    let drift_check = at(
        "sync.drift_check",
        values::duration(
            &s.drift_check,
            Duration::from_secs(1),
            Duration::from_secs(86400),
        ),
    )?;
    if drift_check < interval {
        return Err(ConfigError::invalid(
            "sync.drift_check",
            format!(
                "expected a duration no shorter than sync.interval ({})",
                s.interval
            ),
        ));
    }
    let max_backoff = at(
        "sync.max_backoff",
        values::duration(
            &s.max_backoff,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
    )?;
    let rotation_hold = at(
        "sync.rotation_hold",
        values::duration(
            &s.rotation_hold,
            Duration::from_secs(60),
            Duration::from_secs(86400),
        ),
    )?;
    Ok(SyncSettings {
        interval,
        drift_check,
        rotation_hold,
        confirmations: at(
            "sync.confirmations",
            values::integer_in(s.confirmations, 1, 100),
        )?,
        max_backoff,
    })
}

fn log(raw: &RawConfig) -> Result<LogSettings, ConfigError> {
    let format = match raw.log.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError::invalid(
                "log.format",
                format!("expected \"text\" or \"json\", got {other:?}"),
            ))
        }
    };
    if !is_log_filter(&raw.log.level) {
        return Err(ConfigError::invalid(
            "log.level",
            format!(
                "expected a level (trace, debug, info, warn, error, off) or filters such as \
                 \"info,pglink=debug\", got {:?}",
                raw.log.level
            ),
        ));
    }
    Ok(LogSettings {
        level: raw.log.level.clone(),
        format,
    })
}

/// A filter the logger accepts, where every bare word is a level. The filter syntax reads a
/// bare word as a target name (`verbose` = everything from a module named `verbose`), which
/// would silence every line pglink writes, errors included.
/// A level or `tracing` filter directives whose bare words are all levels: a bare word that
/// is not a level ("verbose") would be read as a target name and silence every line.
pub fn is_log_filter(text: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bare_words_are_levels = text.split(',').map(str::trim).all(|directive| {
        directive.contains(['=', '[']) || LEVELS.contains(&directive.to_ascii_lowercase().as_str())
    });
    bare_words_are_levels && tracing_subscriber::EnvFilter::try_new(text).is_ok()
}

fn targets(raw: &[RawTarget]) -> Result<Vec<Target>, ConfigError> {
    let mut names = HashSet::new();
    let mut groups = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let target = target(i, t)?;
        if !names.insert(target.name.clone()) {
            return Err(ConfigError::invalid(
                format!("targets[{i}].name"),
                format!("expected a unique name, {:?} is used twice", target.name),
            ));
        }
        // Two targets on one group would each remove the other's addresses.
        if !groups.insert(target.target_group.arn.clone()) {
            return Err(ConfigError::invalid(
                format!("targets[{i}].target_group"),
                "expected each target group in one target only, this one is used twice",
            ));
        }
        out.push(target);
    }
    Ok(out)
}

fn target(i: usize, t: &RawTarget) -> Result<Target, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let name = at(key("name"), values::name(&t.name))?;
    let source = source(t, &key)?;
    if t.proxy_endpoint.is_some() && t.db_proxy.is_none() {
        return Err(ConfigError::invalid(
            key("proxy_endpoint"),
            "expected only with db_proxy (one of the proxy's endpoints, by name)",
        ));
    }
    let members = match (&t.role, &source) {
        // A custom endpoint is followed by its members, each by its own endpoint.
        (None, EndpointSource::DbClusterEndpoint(_)) => Members::All,
        (None, _) => Members::Writer,
        (Some(r), EndpointSource::DbCluster(_)) => at(key("role"), Members::parse(r))?,
        (Some(_), _) => {
            return Err(ConfigError::invalid(
                key("role"),
                "expected only with db_cluster (which of the cluster's instances to follow: \
                 \"writer\", \"readers\" or \"all\")",
            ))
        }
    };
    let port = t
        .port
        .map(|p| at(key("port"), values::integer_in::<u16>(p, 1, 65535)))
        .transpose()?;
    let target_group = at(key("target_group"), TargetGroupArn::parse(&t.target_group))?;
    let role = role(t, &target_group).map_err(|(k, e)| ConfigError::invalid(key(k), e))?;
    let database_region = match &t.region {
        None => target_group.region.clone(),
        Some(_) if !source.from_rds() => {
            return Err(ConfigError::invalid(
                key("region"),
                "expected only where RDS is asked for the endpoint (db_instance, db_cluster, \
                 db_cluster_endpoint, db_proxy); an endpoint is resolved by DNS and the group's \
                 region is in its ARN",
            ))
        }
        Some(r) => {
            let region = at(key("region"), values::region(r))?;
            let partition = values::partition_of(&region);
            if partition != target_group.partition {
                return Err(ConfigError::invalid(
                    key("region"),
                    format!(
                        "expected a region of the target group's partition {}, got {r:?} \
                         (partition {partition}): a group cannot target across partitions",
                        target_group.partition
                    ),
                ));
            }
            region
        }
    };
    Ok(Target {
        name,
        source,
        members,
        target_group,
        port,
        adopt: at(key("adopt"), adopt(&t.adopt))?,
        role,
        database_region,
    })
}

/// Exactly one of `endpoint`, `db_instance`, `db_cluster`, `db_cluster_endpoint` or
/// `db_proxy`.
fn source(t: &RawTarget, key: &dyn Fn(&str) -> String) -> Result<EndpointSource, ConfigError> {
    let rds = |k: &str, id: &String| at(key(k), values::rds_identifier(id));
    let given = [
        t.endpoint.is_some(),
        t.db_instance.is_some(),
        t.db_cluster.is_some(),
        t.db_cluster_endpoint.is_some(),
        t.db_proxy.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ConfigError::invalid(
            key("endpoint"),
            "expected exactly one of endpoint, db_instance, db_cluster, db_cluster_endpoint or db_proxy",
        ));
    }
    if let Some(h) = &t.endpoint {
        let host = at(key("endpoint"), values::hostname(h))?;
        at(key("endpoint"), single_instance_endpoint(&host))?;
        return Ok(EndpointSource::Hostname(host));
    }
    if let Some(id) = &t.db_instance {
        return Ok(EndpointSource::DbInstance(rds("db_instance", id)?));
    }
    if let Some(id) = &t.db_cluster {
        return Ok(EndpointSource::DbCluster(rds("db_cluster", id)?));
    }
    if let Some(id) = &t.db_cluster_endpoint {
        return Ok(EndpointSource::DbClusterEndpoint(rds(
            "db_cluster_endpoint",
            id,
        )?));
    }
    let name = rds(
        "db_proxy",
        t.db_proxy.as_ref().expect("one source is given"),
    )?;
    let endpoint = t
        .proxy_endpoint
        .as_ref()
        .map(|e| rds("proxy_endpoint", e))
        .transpose()?;
    Ok(EndpointSource::DbProxy { name, endpoint })
}

/// `role_arn` and `external_id`. ELBv2 has no resource-based policies, so only a principal
/// of the group's own account can change it: the role must live in that account.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-services-that-work-with-iam.html
fn role(
    t: &RawTarget,
    group: &TargetGroupArn,
) -> Result<Option<RoleToAssume>, (&'static str, String)> {
    let external_id = t
        .external_id
        .as_deref()
        .map(values::external_id)
        .transpose()
        .map_err(|e| ("external_id", e))?;
    let Some(arn) = &t.role_arn else {
        return match external_id {
            Some(_) => Err((
                "external_id",
                "expected only with role_arn (it is sent when assuming that role)".into(),
            )),
            None => Ok(None),
        };
    };
    let (partition, account) = values::role_arn(arn).map_err(|e| ("role_arn", e))?;
    if partition != group.partition || account != group.account {
        return Err((
            "role_arn",
            format!(
                "expected a role in the target group's account {} (partition {}): only that \
                 account's principals can change the group, got {arn:?}",
                group.account, group.partition
            ),
        ));
    }
    Ok(Some(RoleToAssume {
        arn: arn.clone(),
        account,
        external_id,
    }))
}

fn adopt(raw: &RawAdopt) -> Result<Adopt, String> {
    match raw {
        RawAdopt::Flag(false) => Ok(Adopt::Off),
        RawAdopt::Flag(true) => Ok(Adopt::Keep),
        RawAdopt::Mode(m) if m == "keep" => Ok(Adopt::Keep),
        RawAdopt::Mode(m) if m == "replace" => Ok(Adopt::Replace),
        RawAdopt::Mode(m) => Err(format!(
            "expected true, false, \"keep\" or \"replace\", got {m:?}"
        )),
    }
}

/// RDS reader and custom endpoints answer one instance at random per query (see
/// [`super::rds_name`]): followed as one name, the group would only ever hold the instance
/// last drawn.
fn single_instance_endpoint(host: &str) -> Result<(), String> {
    let (kind, instead) = match super::rds_name::classify(host) {
        super::rds_name::Kind::ClusterReader => (
            "reader endpoint",
            "db_cluster = \"ID\" with role = \"readers\" keeps every reader in the group",
        ),
        super::rds_name::Kind::ClusterCustom => (
            "custom endpoint",
            "db_cluster_endpoint = \"ID\" keeps every member in the group",
        ),
        _ => return Ok(()),
    };
    Err(format!(
        "{host:?} is an RDS cluster's {kind}, which answers one instance at random per query; \
         {instead}"
    ))
}

fn bootstrap(b: &RawBootstrap) -> Result<BootstrapSettings, ConfigError> {
    let subnet_ids = b
        .subnet_ids
        .as_ref()
        .map(|ids| {
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    at(
                        format!("bootstrap.subnet_ids[{i}]"),
                        values::aws_id(id, "subnet"),
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let mode = match b.mode.as_str() {
        "endpoint-service" => StackMode::EndpointService,
        "resource" => StackMode::Resource,
        other => {
            return Err(ConfigError::invalid(
                "bootstrap.mode",
                format!("expected \"endpoint-service\" (an NLB and a VPC endpoint service) or \"resource\" (a resource gateway and configuration shared through AWS RAM), got {other:?}"),
            ))
        }
    };
    let allowed_principals = b
        .allowed_principals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let key = format!("bootstrap.allowed_principals[{i}]");
            // RAM shares with accounts: an account ID is as good as its root ARN there.
            let account_id = p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit());
            match (mode, account_id) {
                (StackMode::Resource, true) => Ok(p.clone()),
                _ => at(key, values::principal_arn(p)),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let database = database(b.database.as_ref())?;
    match (mode, &database) {
        (StackMode::EndpointService, DatabaseKind::Host(_)) => {
            return Err(ConfigError::invalid(
                "bootstrap.database.host",
                "an NLB cannot target a hostname: expected mode = \"resource\", or the database's address as { ip = \"...\" }",
            ))
        }
        (StackMode::Resource, DatabaseKind::Ec2Instance(_)) => {
            return Err(ConfigError::invalid(
                "bootstrap.database.ec2_instance",
                "a resource configuration names an address, a hostname or an RDS database: expected the instance's private address as { ip = \"...\" } in resource mode",
            ))
        }
        (StackMode::Resource, DatabaseKind::AutoscalingGroup(_)) => {
            return Err(ConfigError::invalid(
                "bootstrap.database.autoscaling_group",
                "a resource configuration names one database, not a group of instances: expected mode = \"endpoint-service\" for an Auto Scaling group",
            ))
        }
        _ => {}
    }
    if mode == StackMode::Resource {
        if let Some(problem) = values::lattice_name_problem(&format!("pglink-{}", b.name)) {
            return Err(ConfigError::invalid(
                "bootstrap.name",
                format!("resource mode names its gateway and configuration pglink-NAME, which VPC Lattice refuses here ({problem}); expected lowercase letters, digits and single '-', at most 33 characters"),
            ));
        }
        if b.allowed_principals.is_empty() {
            return Err(ConfigError::invalid(
                "bootstrap.allowed_principals",
                "expected the consumer's account (an account ID or a principal ARN): the resource share goes to it",
            ));
        }
    }
    let consumer_region = b
        .consumer_region
        .as_deref()
        .map(|r| at("bootstrap.consumer_region", values::region(r)))
        .transpose()?;
    let consumer_environment = match b.consumer_environment.to_ascii_uppercase().as_str() {
        "US" => ConsumerEnvironment::Us,
        "EMEA" => ConsumerEnvironment::Emea,
        "AU" => ConsumerEnvironment::Au,
        _ => {
            return Err(ConfigError::invalid(
                "bootstrap.consumer_environment",
                format!(
                    "expected \"US\", \"EMEA\" or \"AU\", got {:?}",
                    b.consumer_environment
                ),
            ))
        }
    };
    Ok(BootstrapSettings {
        name: at("bootstrap.name", values::stack_name(&b.name))?,
        database,
        port: at("bootstrap.port", values::integer_in(b.port, 1, 65535))?,
        vpc_id: b
            .vpc_id
            .as_deref()
            .map(|v| at("bootstrap.vpc_id", values::aws_id(v, "vpc")))
            .transpose()?,
        subnet_ids,
        database_security_group_id: b
            .database_security_group_id
            .as_deref()
            .map(|v| {
                at(
                    "bootstrap.database_security_group_id",
                    values::aws_id(v, "sg"),
                )
            })
            .transpose()?,
        acceptance_required: b.acceptance_required,
        allowed_principals,
        consumer_environment,
        mode,
        ipv4_addresses_per_eni: at(
            "bootstrap.ipv4_addresses_per_eni",
            values::integer_in(b.ipv4_addresses_per_eni, 1, 62),
        )?,
        consumer_region,
    })
}

fn database(db: Option<&RawDatabase>) -> Result<DatabaseKind, ConfigError> {
    const KEY: &str = "bootstrap.database";
    const EXPECTED: &str = "expected exactly one of { db_instance = \"id\" }, { db_cluster = \"id\" }, { ip = \"10.20.0.15\" }, { ec2_instance = \"i-...\" }, { autoscaling_group = \"name\" } or, in resource mode, { host = \"db.example.com\" }";
    let db = db.ok_or_else(|| ConfigError::invalid(KEY, EXPECTED))?;
    let given = [
        &db.db_instance,
        &db.db_cluster,
        &db.ip,
        &db.ec2_instance,
        &db.autoscaling_group,
        &db.host,
    ]
    .iter()
    .filter(|v| v.is_some())
    .count();
    if given != 1 {
        return Err(ConfigError::invalid(KEY, EXPECTED));
    }
    let sub = |k: &str| format!("{KEY}.{k}");
    Ok(if let Some(id) = &db.db_instance {
        DatabaseKind::DbInstance(at(sub("db_instance"), values::rds_identifier(id))?)
    } else if let Some(id) = &db.db_cluster {
        DatabaseKind::DbCluster(at(sub("db_cluster"), values::rds_identifier(id))?)
    } else if let Some(ip) = &db.ip {
        DatabaseKind::Ip(at(sub("ip"), values::ip(ip))?)
    } else if let Some(id) = &db.ec2_instance {
        DatabaseKind::Ec2Instance(at(sub("ec2_instance"), values::aws_id(id, "i"))?)
    } else if let Some(host) = &db.host {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Err(ConfigError::invalid(
                sub("host"),
                format!("{host} is an address: expected {{ ip = \"{host}\" }}"),
            ));
        }
        DatabaseKind::Host(at(sub("host"), values::hostname(host))?)
    } else {
        let asg = db.autoscaling_group.clone().unwrap_or_default();
        if asg.trim().is_empty() || asg.len() > 255 {
            return Err(ConfigError::invalid(
                sub("autoscaling_group"),
                "expected an Auto Scaling group name of 1-255 characters",
            ));
        }
        if asg.contains(['*', '?']) {
            // The name goes into the generated bootstrap policy's ARN, where these are
            // wildcards that IAM cannot escape: the policy would reach other groups.
            return Err(ConfigError::invalid(
                sub("autoscaling_group"),
                format!("expected a group name without `*` or `?` (IAM reads them as wildcards), got {asg:?}"),
            ));
        }
        DatabaseKind::AutoscalingGroup(asg)
    })
}
