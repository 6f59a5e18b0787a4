//! Emulator fixtures built through the real SDK clients, the pglink process under test,
//! and a watcher that records a target group's contents over time.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::types::{ResourceType, Tag as Ec2Tag, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, Tag, TargetTypeEnum};

pub const REGION: &str = "us-east-1";
/// The emulator's account for the static test credentials.
pub const ACCOUNT: &str = "123456789012";

/// Static credentials and no instance-metadata probing: nothing leaves loopback.
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

pub async fn sdk(endpoint: &str) -> SdkConfig {
    let creds = aws_sdk_ec2::config::Credentials::new("test", "test", None, None, "static");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await
}

pub struct Clients {
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub rds: aws_sdk_rds::Client,
}

impl Clients {
    pub async fn new(endpoint: &str) -> Clients {
        Clients::from_sdk(&sdk(endpoint).await)
    }

    /// Clients acting in `account`: the emulator serves whoever assumed a role there as
    /// that account (its multi-account model), so fixtures can build another account's
    /// resources. Asked of the emulator directly, never through a test's trust rules.
    pub async fn in_account(endpoint: &str, account: &str) -> Clients {
        let base = sdk(endpoint).await;
        let out = aws_sdk_sts::Client::new(&base)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/fixture"))
            .role_session_name("fixture")
            .send()
            .await
            .expect("AssumeRole for a fixture account");
        let c = out.credentials().expect("assumed credentials");
        let creds = aws_sdk_ec2::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "fixture",
        );
        let sdk = base.into_builder().credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(creds),
        );
        Clients::from_sdk(&sdk.build())
    }

    fn from_sdk(sdk: &SdkConfig) -> Clients {
        Clients {
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            rds: aws_sdk_rds::Client::new(sdk),
        }
    }
}

pub struct Network {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
}

/// A VPC with `cidr` (a /16) and two subnets in different AZs.
pub async fn network(ec2: &aws_sdk_ec2::Client, cidr: &str) -> Network {
    let vpc = ec2
        .create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .expect("CreateVpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let prefix: Vec<&str> = cidr.split('.').take(2).collect();
    let mut subnet_ids = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let block = format!("{}.{}.{}.0/24", prefix[0], prefix[1], i + 1);
        let out = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(block)
            .availability_zone(*az)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Subnet)
                    .tags(
                        Ec2Tag::builder()
                            .key("Name")
                            .value(format!("db-{az}"))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("CreateSubnet");
        subnet_ids.push(
            out.subnet()
                .and_then(|s| s.subnet_id())
                .expect("subnet id")
                .to_string(),
        );
    }
    Network { vpc_id, subnet_ids }
}

/// A TCP/5432 IP target group; `owned` adds pglink's ownership tags.
pub async fn target_group(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    vpc_id: &str,
    name: &str,
    owned: bool,
) -> String {
    let mut req = elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Tcp)
        .port(5432)
        .vpc_id(vpc_id)
        .target_type(TargetTypeEnum::Ip);
    if owned {
        req = req
            .tags(
                Tag::builder()
                    .key("pglink:managed-by")
                    .value("pglink")
                    .build(),
            )
            .tags(Tag::builder().key("pglink:name").value(name).build());
    }
    let out = req.send().await.expect("CreateTargetGroup");
    out.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string()
}

/// Where RDS instances go: a database security group, and the "analytics" DB subnet group
/// over the network's subnets. Returns the security group's id.
pub async fn db_placement(c: &Clients, net: &Network) -> String {
    let sg = c
        .ec2
        .create_security_group()
        .group_name("analytics-db")
        .description("database")
        .vpc_id(&net.vpc_id)
        .send()
        .await
        .expect("CreateSecurityGroup");
    c.rds
        .create_db_subnet_group()
        .db_subnet_group_name("analytics")
        .db_subnet_group_description("analytics")
        .set_subnet_ids(Some(net.subnet_ids.clone()))
        .send()
        .await
        .expect("CreateDBSubnetGroup");
    sg.group_id().expect("security group id").to_string()
}

/// A Postgres instance in the "analytics" subnet group; returns its endpoint address.
pub async fn rds_instance(c: &Clients, id: &str, sg: &str, multi_az: bool, public: bool) -> String {
    let db = c
        .rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("pglink")
        .master_user_password("not-a-secret-1")
        .db_subnet_group_name("analytics")
        .vpc_security_group_ids(sg)
        .multi_az(multi_az)
        .publicly_accessible(public)
        .send()
        .await
        .expect("CreateDBInstance");
    db.db_instance()
        .and_then(|d| d.endpoint())
        .and_then(|e| e.address())
        .expect("endpoint address")
        .to_string()
}

/// The group's targets as "ip:port".
pub async fn registered(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
) -> BTreeSet<String> {
    read_registered(elb, arn)
        .await
        .unwrap_or_else(|e| panic!("DescribeTargetHealth: {e}"))
}

async fn read_registered(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
) -> Result<BTreeSet<String>, String> {
    let out = elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "{:?}",
                aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(e)
            )
        })?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target())
        .map(|t| format!("{}:{}", t.id().unwrap_or_default(), t.port().unwrap_or(0)))
        .collect())
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// One `[[targets]]` entry.
pub struct TargetEntry {
    pub name: String,
    /// `endpoint = "..."`, `db_instance = "..."` or `db_cluster = "..."`.
    pub source: String,
    pub arn: String,
    pub extra: String,
}

impl TargetEntry {
    pub fn endpoint(name: &str, host: &str, arn: &str) -> TargetEntry {
        TargetEntry {
            name: name.into(),
            source: format!("endpoint = \"{host}\""),
            arn: arn.into(),
            extra: String::new(),
        }
    }
}

/// A complete config file text for the emulator and the test DNS server.
pub fn config_text(
    aws_endpoint: &str,
    dns: SocketAddr,
    interval: &str,
    targets: &[TargetEntry],
) -> String {
    let mut text = format!(
        "[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{aws_endpoint}\"\n\n\
         [dns]\nnameservers = [\"{dns}\"]\ntimeout = \"300ms\"\n\n\
         [sync]\ninterval = \"{interval}\"\ndrift_check = \"10s\"\nconfirmations = 2\nmax_backoff = \"2s\"\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = \"info,pglink=debug\"\n"
    );
    for t in targets {
        text.push_str(&format!(
            "\n[[targets]]\nname = \"{}\"\n{}\ntarget_group = \"{}\"\n{}\n",
            t.name, t.source, t.arn, t.extra
        ));
    }
    text
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pglink.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `pglink` with the test environment: static credentials, no metadata service.
pub fn pglink(bin: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .envs(AWS_ENV.iter().copied())
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .env_remove("PGLINK_CONFIG");
    cmd
}

/// The daemon as a child process, logging to a file; killed on drop.
pub struct Daemon {
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(bin: &str, config: &Path, extra_args: &[&str]) -> Daemon {
        Self::start_with_env(bin, config, extra_args, &[])
    }

    pub fn start_with_env(
        bin: &str,
        config: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let log = config.with_extension("log");
        let file = std::fs::File::create(&log).expect("daemon log file");
        let mut args = vec!["run", "-c", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        let child = pglink(bin, &args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn pglink run");
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// SIGTERM, then waits up to `limit` for the exit.
    pub fn terminate(&mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        self.signal("TERM");
        self.wait(limit)
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> (Option<ExitStatus>, Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (None, started.elapsed())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A group's contents at one moment.
pub type Snapshot = (Instant, BTreeSet<String>);

/// Records a group's contents every `every`, so tests can check what held at all times.
/// A failed read (the group deleted, the emulator restarting) records no snapshot; the
/// latest error is kept for the message of a wait that times out.
pub struct Watcher {
    pub snapshots: Arc<Mutex<Vec<Snapshot>>>,
    last_error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub fn start(
        elb: aws_sdk_elasticloadbalancingv2::Client,
        arn: String,
        every: Duration,
    ) -> Watcher {
        let snapshots = Arc::new(Mutex::new(Vec::new()));
        let last_error = Arc::new(Mutex::new(None));
        let (sink, errors) = (snapshots.clone(), last_error.clone());
        let task = tokio::spawn(async move {
            loop {
                match read_registered(&elb, &arn).await {
                    Ok(now) => sink.lock().unwrap().push((Instant::now(), now)),
                    Err(e) => *errors.lock().unwrap() = Some(e),
                }
                tokio::time::sleep(every).await;
            }
        });
        Watcher {
            snapshots,
            last_error,
            task,
        }
    }

    pub fn latest(&self) -> BTreeSet<String> {
        self.snapshots
            .lock()
            .unwrap()
            .last()
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    /// Waits until the group equals `want`; returns when it was first seen so.
    pub async fn wait_for(&self, want: &BTreeSet<String>, limit: Duration) -> Instant {
        self.first_seen(Instant::now(), |s| s == want, limit).await
    }

    /// Waits for the first snapshot since `since` whose contents satisfy `pred`.
    pub async fn first_seen(
        &self,
        since: Instant,
        pred: impl Fn(&BTreeSet<String>) -> bool,
        limit: Duration,
    ) -> Instant {
        loop {
            let hit = self
                .snapshots
                .lock()
                .unwrap()
                .iter()
                .find(|(t, s)| *t >= since && pred(s))
                .map(|(t, _)| *t);
            if let Some(at) = hit {
                return at;
            }
            assert!(
                since.elapsed() < limit,
                "no matching snapshot; last seen {:?}; last failed read: {:?}",
                self.latest(),
                self.last_error.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every snapshot taken after the group first held something was non-empty.
    pub fn never_emptied(&self) -> bool {
        let snaps = self.snapshots.lock().unwrap();
        let first = snaps.iter().position(|(_, s)| !s.is_empty());
        first.is_none_or(|i| snaps[i..].iter().all(|(_, s)| !s.is_empty()))
    }

    /// Every distinct state in order, consecutive duplicates folded.
    pub fn transitions(&self) -> Vec<BTreeSet<String>> {
        let mut out: Vec<BTreeSet<String>> = Vec::new();
        for (_, s) in self.snapshots.lock().unwrap().iter() {
            if out.last() != Some(s) {
                out.push(s.clone());
            }
        }
        out
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A plain HTTP GET on loopback: (status, body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F: FnMut() -> bool>(limit: Duration, what: &str, mut check: F) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
