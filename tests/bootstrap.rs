//! `pglink bootstrap` / `teardown` against moto server, through the strict proxy (AWS's
//! rules that moto does not enforce, such as one NLB subnet per AZ) that also records and
//! counts mutating calls, with the database's endpoint served by a DNS server on loopback.

mod support;

use std::net::IpAddr;
use std::process::Output;

use aws_sdk_ec2::types::Filter;
use support::dns::{Behaviour, TestDns};
use support::fixture::{self, Clients};
use support::moto::Moto;
use support::proxy::{Fault, Proxy};
use support::strict::Strict;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const DBT: &str = "arn:aws:iam::346425330055:role/MTPL_Admin";

struct Db {
    _moto: Moto,
    proxy: Proxy,
    dns: TestDns,
    c: Clients,
    vpc_id: String,
    subnets: Vec<String>,
    db_sg: String,
    dir: tempfile::TempDir,
}

async fn database() -> Db {
    database_in(&[]).await
}

/// As [`database`], with more subnets (CIDR, AZ) in the DB subnet group.
async fn database_in(extra_subnets: &[(&str, &str)]) -> Db {
    let moto = Moto::start();
    let proxy = Proxy::start_blocking_strict(&moto.endpoint, Strict::aws());
    let c = Clients::new(&moto.endpoint).await;
    let mut net = fixture::network(&c.ec2, "10.0.0.0/16").await;
    for (cidr, az) in extra_subnets {
        let subnet = c.ec2.create_subnet().vpc_id(&net.vpc_id).cidr_block(*cidr);
        let out = subnet
            .availability_zone(*az)
            .send()
            .await
            .expect("CreateSubnet");
        let id = out.subnet().and_then(|s| s.subnet_id()).expect("subnet id");
        net.subnet_ids.push(id.to_string());
    }
    let db_sg = fixture::db_placement(&c, &net).await;
    let address = fixture::rds_instance(&c, "analytics", &db_sg, true, false).await;
    let dns = TestDns::start();
    let ip: IpAddr = "10.0.1.50".parse().unwrap();
    dns.set(
        &address,
        Behaviour::Addresses {
            ips: vec![ip],
            ttl: 5,
        },
    );
    Db {
        _moto: moto,
        proxy,
        dns,
        c,
        vpc_id: net.vpc_id,
        subnets: net.subnet_ids,
        db_sg,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Db {
    fn config(&self, bootstrap: &str) -> String {
        let text = format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"500ms\"\n\n[bootstrap]\nname = \"analytics\"\nport = 5432\nallowed_principals = [\"{DBT}\"]\nconsumer_environment = \"US\"\n{bootstrap}\n",
            self.proxy.endpoint, self.dns.addr
        );
        fixture::write_config(self.dir.path(), &text)
            .to_str()
            .unwrap()
            .to_string()
    }

    fn run(&self, config: &str, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["-c", config]);
        fixture::pglink(BIN, &all).output().unwrap()
    }

    fn mutating_calls(&self) -> Vec<String> {
        const VERBS: &[&str] = &[
            "Create",
            "Modify",
            "Register",
            "Deregister",
            "Add",
            "Remove",
            "Authorize",
            "Revoke",
            "Delete",
            "Set",
            "Attach",
            "Detach",
            "Accept",
        ];
        self.proxy
            .requests()
            .into_iter()
            .filter_map(|r| r.action)
            .filter(|a| VERBS.iter().any(|v| a.starts_with(v)))
            .collect()
    }

    async fn target_groups(&self) -> Vec<aws_sdk_elasticloadbalancingv2::types::TargetGroup> {
        self.c
            .elb
            .describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .to_vec()
    }

    async fn endpoint_services(&self) -> Vec<aws_sdk_ec2::types::ServiceConfiguration> {
        self.c
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .send()
            .await
            .unwrap()
            .service_configurations()
            .to_vec()
    }

    /// A consumer's interface endpoint on the stack's endpoint service; returns its ID.
    async fn consumer_endpoint(&self) -> String {
        let service_name = self.endpoint_services().await[0]
            .service_name()
            .unwrap()
            .to_string();
        self.c
            .ec2
            .create_vpc_endpoint()
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Interface)
            .vpc_id(&self.vpc_id)
            .service_name(&service_name)
            .subnet_ids(&self.subnets[0])
            .send()
            .await
            .unwrap()
            .vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .unwrap()
            .to_string()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const INSTANCE: &str = "database = { db_instance = \"analytics\" }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_build_then_a_second_run_changes_nothing() {
    let db = database().await;
    let config = db.config(INSTANCE);

    let out = db.run(&config, &["bootstrap", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let detailed = db.run(&config, &["bootstrap", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(
        detailed.status.code(),
        Some(3),
        "changes pending: {}",
        text(&detailed)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "+ security group pglink-analytics-nlb",
        "+ target group pglink-analytics",
        "+ internal NLB pglink-analytics",
        "+ TCP listener :5432",
        "+ VPC endpoint service",
        "+ first target: 10.0.1.50:5432",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    assert_eq!(
        db.mutating_calls(),
        Vec::<String>::new(),
        "dry run changed something"
    );

    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("VPC endpoint service name: com.amazonaws.vpce.us-east-1.vpce-svc-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Subject: New Multi-Tenant PrivateLink Request"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- Type: Postgres Interface-type"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- Postgres server AWS Region (e.g., us-east-1, eu-west-2): us-east-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- dbt Cloud multi-tenant environment (US, EMEA, AU): US"),
        "{stdout}"
    );
    assert!(stdout.contains("db_instance = \"analytics\""), "{stdout}");

    // What was built.
    let groups = db.target_groups().await;
    assert_eq!(groups.len(), 1);
    let tg = &groups[0];
    let tg_arn = tg.target_group_arn().unwrap().to_string();
    assert_eq!(tg.port(), Some(5432));
    assert_eq!(tg.health_check_interval_seconds(), Some(5));
    assert_eq!(tg.healthy_threshold_count(), Some(2));
    let attrs =
        db.c.elb
            .describe_target_group_attributes()
            .target_group_arn(&tg_arn)
            .send()
            .await
            .unwrap();
    let attr = |k: &str| {
        attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some(k))
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    assert_eq!(
        attr("deregistration_delay.connection_termination.enabled").as_deref(),
        Some("true")
    );
    assert_eq!(
        fixture::registered(&db.c.elb, &tg_arn).await,
        fixture::set(&["10.0.1.50:5432"])
    );
    let lbs = db.c.elb.describe_load_balancers().send().await.unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internal"));
    assert_eq!(lb.availability_zones().len(), 2);
    let lb_arn = lb.load_balancer_arn().unwrap();
    let lb_attrs =
        db.c.elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .unwrap();
    assert!(
        lb_attrs
            .attributes()
            .iter()
            .any(|a| a.key() == Some("load_balancing.cross_zone.enabled")
                && a.value() == Some("true"))
    );
    let listeners =
        db.c.elb
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    assert_eq!(
        listeners.listeners()[0].default_actions()[0].target_group_arn(),
        Some(tg_arn.as_str())
    );
    let services = db.endpoint_services().await;
    assert_eq!(services.len(), 1);
    let service = &services[0];
    assert_eq!(service.acceptance_required(), Some(true));
    let perms =
        db.c.ec2
            .describe_vpc_endpoint_service_permissions()
            .service_id(service.service_id().unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(perms.allowed_principals()[0].principal(), Some(DBT));
    let rules =
        db.c.ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(&db.db_sg).build())
            .send()
            .await
            .unwrap();
    let ingress: Vec<_> = rules
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .collect();
    assert_eq!(ingress.len(), 1, "{ingress:?}");
    assert_eq!(ingress[0].from_port(), Some(5432));
    assert!(
        ingress[0]
            .referenced_group_info()
            .and_then(|g| g.group_id())
            .is_some(),
        "source must be the NLB's group"
    );
    assert!(ingress[0].cidr_ipv4().is_none(), "never a CIDR source");

    // Idempotent: the second run makes no mutating call at all.
    db.proxy.clear_requests();
    let detailed = db.run(&config, &["bootstrap", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(
        detailed.status.code(),
        Some(0),
        "in place: {}",
        text(&detailed)
    );
    let out = db.run(&config, &["bootstrap", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(db.mutating_calls(), Vec::<String>::new());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stack"]["changes"], 0);
    assert_eq!(doc["stack"]["target_group_arn"], tg_arn.as_str());
    assert_eq!(doc["schema_version"], 2);
    // The database's address in the group, in the one target shape: {ip, port, state}.
    let targets = doc["stack"]["registered_targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{targets:?}");
    let keys: Vec<&String> = targets[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ip", "port", "state"], "{targets:?}");
    assert!(targets[0]["ip"]
        .as_str()
        .unwrap()
        .parse::<std::net::IpAddr>()
        .is_ok());
    assert_eq!(targets[0]["port"], 5432);
    assert!(targets[0]["state"].is_string(), "{targets:?}");
    assert!(doc["stack"]["endpoint_service_name"]
        .as_str()
        .unwrap()
        .starts_with("com.amazonaws.vpce."));
    assert!(doc["support_request"]
        .as_str()
        .unwrap()
        .contains("Postgres Interface-type"));
}

/// A DB subnet group with two subnets in one AZ (common): AWS takes one subnet per AZ for
/// an NLB, so bootstrap uses one per AZ, names the other, and a second run changes
/// nothing. Explicit subnet_ids with two in one AZ are refused before any change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subnets_in_one_az_give_the_nlb_one_subnet_per_az() {
    let db = database_in(&[("10.0.3.0/24", "us-east-1a")]).await;
    let config = db.config(INSTANCE);
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (a, a2) = (&db.subnets[0], &db.subnets[2]);
    let skipped = if a < a2 { a2 } else { a };
    assert!(
        stdout.contains(&format!("not used from the DB subnet group: {skipped}")),
        "{stdout}"
    );
    let lbs = db.c.elb.describe_load_balancers().send().await.unwrap();
    let zones: Vec<&str> = lbs.load_balancers()[0]
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name())
        .collect();
    assert_eq!(zones.len(), 2, "{zones:?}");
    assert!(zones.contains(&"us-east-1a") && zones.contains(&"us-east-1b"));

    let before = db.mutating_calls().len();
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        db.mutating_calls().len(),
        before,
        "the second run changed something"
    );

    let both_a = format!(
        "{INSTANCE}\nsubnet_ids = [\"{a}\", \"{a2}\", \"{}\"]",
        db.subnets[1]
    );
    let out = db.run(&db.config(&both_a), &["bootstrap", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("bootstrap.subnet_ids") && err.contains("both in us-east-1a"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired() {
    let db = database().await;
    let config = db.config(INSTANCE);
    assert_eq!(db.run(&config, &["bootstrap"]).status.code(), Some(0));

    let lb =
        db.c.elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()[0]
            .clone();
    let lb_arn = lb.load_balancer_arn().unwrap();
    let listener =
        db.c.elb
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .unwrap()
            .listeners()[0]
            .listener_arn()
            .unwrap()
            .to_string();
    db.c.elb
        .delete_listener()
        .listener_arn(&listener)
        .send()
        .await
        .unwrap();
    let service = db.endpoint_services().await[0].clone();
    let id = service.service_id().unwrap();
    db.c.ec2
        .modify_vpc_endpoint_service_permissions()
        .service_id(id)
        .remove_allowed_principals(DBT)
        .add_allowed_principals("arn:aws:iam::111111111111:root")
        .send()
        .await
        .unwrap();
    db.c.ec2
        .modify_vpc_endpoint_service_configuration()
        .service_id(id)
        .acceptance_required(false)
        .send()
        .await
        .unwrap();
    // The database rule widened by hand to every port above 5432: same source, same tags.
    let db_rule = || async {
        db.c.ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(&db.db_sg).build())
            .send()
            .await
            .unwrap()
            .security_group_rules()
            .iter()
            .filter(|r| r.is_egress() == Some(false))
            .cloned()
            .collect::<Vec<_>>()
    };
    let before = db_rule().await;
    assert_eq!(before.len(), 1, "{before:?}");
    let nlb_sg = before[0]
        .referenced_group_info()
        .and_then(|g| g.group_id())
        .unwrap()
        .to_string();
    db.c.ec2
        .modify_security_group_rules()
        .group_id(&db.db_sg)
        .security_group_rules(
            aws_sdk_ec2::types::SecurityGroupRuleUpdate::builder()
                .security_group_rule_id(before[0].security_group_rule_id().unwrap())
                .security_group_rule(
                    aws_sdk_ec2::types::SecurityGroupRuleRequest::builder()
                        .ip_protocol("tcp")
                        .from_port(5432)
                        .to_port(65535)
                        .referenced_group_id(&nlb_sg)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("+ TCP listener :5432"), "{stdout}");
    assert!(stdout.contains("~ allowed principals"), "{stdout}");
    assert!(
        stdout.contains("it allows TCP 5432-65535"),
        "the widened rule is named: {stdout}"
    );
    let after = db_rule().await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (
            after[0].ip_protocol(),
            after[0].from_port(),
            after[0].to_port()
        ),
        (Some("tcp"), Some(5432), Some(5432))
    );
    assert_eq!(
        after[0].referenced_group_info().and_then(|g| g.group_id()),
        Some(nlb_sg.as_str())
    );
    assert!(
        stdout.contains("~ VPC endpoint service: acceptance required: true"),
        "{stdout}"
    );
    assert_eq!(
        db.c.elb
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .unwrap()
            .listeners()
            .len(),
        1
    );
    let perms =
        db.c.ec2
            .describe_vpc_endpoint_service_permissions()
            .service_id(id)
            .send()
            .await
            .unwrap();
    let principals: Vec<_> = perms
        .allowed_principals()
        .iter()
        .filter_map(|p| p.principal())
        .collect();
    assert_eq!(principals, vec![DBT]);
    let service =
        db.c.ec2
            .describe_vpc_endpoint_service_configurations()
            .service_ids(id)
            .send()
            .await
            .unwrap();
    assert_eq!(
        service.service_configurations()[0].acceptance_required(),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_halfway_is_completed_by_the_next_run() {
    let db = database().await;
    let config = db.config(INSTANCE);
    db.proxy.inject(
        "CreateVpcEndpointServiceConfiguration",
        Fault::Status {
            status: 500,
            code: "InternalFailure".into(),
        },
        None,
    );
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("CreateVpcEndpointServiceConfiguration"),
        "{}",
        text(&out)
    );
    // What AWS confirmed is listed as changed; the create it refused is not.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (done, attempted) = stderr
        .split_once("attempted, not confirmed by AWS")
        .unwrap_or_else(|| panic!("no unconfirmed section: {stderr}"));
    let done = done
        .rsplit("changed before the failure:")
        .next()
        .unwrap_or_default();
    assert!(done.contains("  + internal NLB"), "{stderr}");
    assert!(!done.contains("VPC endpoint service"), "{stderr}");
    assert!(attempted.contains("  + VPC endpoint service"), "{stderr}");
    db.proxy.clear_faults();
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(db.target_groups().await.len(), 1);
    assert_eq!(
        db.c.elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
            .len(),
        1
    );
    assert_eq!(db.endpoint_services().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_removes_only_what_bootstrap_tagged() {
    let db = database().await;
    let config = db.config(INSTANCE);
    assert_eq!(db.run(&config, &["bootstrap"]).status.code(), Some(0));
    // Look-alikes: same kind of resources, no pglink tags.
    let lookalike_tg =
        fixture::target_group(&db.c.elb, &db.vpc_id, "pglink-lookalike", false).await;
    let lookalike_sg =
        db.c.ec2
            .create_security_group()
            .group_name("pglink-analytics-nlb-copy")
            .description("x")
            .vpc_id(&db.vpc_id)
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();

    let before = db.mutating_calls().len();
    let out = db.run(&config, &["teardown"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains("- VPC endpoint service")
            && listed.contains("- target group pglink-analytics"),
        "{listed}"
    );
    assert_eq!(
        db.mutating_calls().len(),
        before,
        "teardown without --yes changed something"
    );
    let out = db.run(&config, &["teardown", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["dry_run"], true);
    assert!(doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resource"] == "target group pglink-analytics" && r["deleted"] == false));

    let out = db.run(&config, &["teardown", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let again = db.run(&config, &["teardown"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to delete"),
        "{}",
        text(&again)
    );
    let groups: Vec<String> = db
        .target_groups()
        .await
        .iter()
        .filter_map(|g| g.target_group_arn())
        .map(str::to_string)
        .collect();
    assert_eq!(groups, vec![lookalike_tg]);
    assert!(db
        .c
        .elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .is_empty());
    assert!(db.endpoint_services().await.is_empty());
    let sgs =
        db.c.ec2
            .describe_security_groups()
            .filters(Filter::builder().name("vpc-id").values(&db.vpc_id).build())
            .send()
            .await
            .unwrap();
    let ids: Vec<&str> = sgs
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert!(
        ids.contains(&lookalike_sg.as_str()) && ids.contains(&db.db_sg.as_str()),
        "{ids:?}"
    );
    assert!(!sgs
        .security_groups()
        .iter()
        .any(|g| g.group_name() == Some("pglink-analytics-nlb")));
    let rules =
        db.c.ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(&db.db_sg).build())
            .send()
            .await
            .unwrap();
    assert!(
        rules
            .security_group_rules()
            .iter()
            .all(|r| r.is_egress() == Some(true)),
        "the pglink rule stayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_errors_exit_2_before_any_change() {
    let db = database().await;
    let cases = [
        (
            format!("{INSTANCE}\nsubnet_ids = [\"{}\"]", db.subnets[0]),
            "bootstrap.subnet_ids",
        ),
        (
            INSTANCE.replace("analytics", "missing"),
            "bootstrap.database.db_instance",
        ),
        (
            format!("{INSTANCE}\nvpc_id = \"vpc-0123456789abcdef0\""),
            "bootstrap.vpc_id",
        ),
        (
            "database = { ip = \"10.20.0.15\" }".to_string(),
            "bootstrap.vpc_id",
        ),
    ];
    for (bootstrap, key) in cases {
        let config = db.config(&bootstrap);
        let out = db.run(&config, &["bootstrap"]);
        assert_eq!(out.status.code(), Some(2), "{bootstrap}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(key),
            "{bootstrap}: expected {key} in {stderr}"
        );
    }
    // The database listens on 5432 (moto's default); the config says 6432.
    let config_path = db.dir.path().join("port.toml");
    let text_cfg = std::fs::read_to_string(db.config(INSTANCE))
        .unwrap()
        .replace("port = 5432", "port = 6432");
    std::fs::write(&config_path, text_cfg).unwrap();
    let out = db.run(config_path.to_str().unwrap(), &["bootstrap"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bootstrap.port"));
    assert_eq!(db.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_premises_ip_gets_availability_zone_all_and_no_security_group_rule() {
    let db = database().await;
    let config = db.config(&format!(
        "database = {{ ip = \"192.168.10.5\" }}\nvpc_id = \"{}\"\nsubnet_ids = [\"{}\", \"{}\"]",
        db.vpc_id, db.subnets[0], db.subnets[1]
    ));
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let register = db
        .proxy
        .requests()
        .into_iter()
        .find(|r| r.action.as_deref() == Some("RegisterTargets"))
        .unwrap();
    assert!(
        register
            .body
            .contains("Targets.member.1.AvailabilityZone=all"),
        "{}",
        register.body
    );
    assert!(register.body.contains("192.168.10.5"), "{}", register.body);
    assert_eq!(db.proxy.count("AuthorizeSecurityGroupIngress"), 0);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("[[targets]]"),
        "a fixed IP needs no sync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_cluster_is_placed_from_its_subnet_group() {
    let db = database().await;
    let cluster =
        db.c.rds
            .create_db_cluster()
            .db_cluster_identifier("orders")
            .engine("aurora-postgresql")
            .master_username("pglink")
            .master_user_password("not-a-secret-1")
            .db_subnet_group_name("analytics")
            .vpc_security_group_ids(&db.db_sg)
            .send()
            .await
            .unwrap();
    let writer = cluster
        .db_cluster()
        .unwrap()
        .endpoint()
        .unwrap()
        .to_string();
    db.dns.set(
        &writer,
        Behaviour::Addresses {
            ips: vec!["10.0.2.60".parse().unwrap()],
            ttl: 5,
        },
    );
    let config = db.config("database = { db_cluster = \"orders\" }");
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tg = db.target_groups().await[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    assert_eq!(
        fixture::registered(&db.c.elb, &tg).await,
        fixture::set(&["10.0.2.60:5432"])
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("db_cluster = \"orders\""));
}

/// An instance in the first subnet, in the database's security group.
async fn instance(db: &Db) -> String {
    let out =
        db.c.ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .subnet_id(&db.subnets[0])
            .security_group_ids(&db.db_sg)
            .send()
            .await
            .unwrap();
    out.instances()[0].instance_id().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_instance_gets_an_instance_target_group_in_every_az() {
    let db = database().await;
    let id = instance(&db).await;
    let config = db.config(&format!("database = {{ ec2_instance = \"{id}\" }}"));
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tg = &db.target_groups().await[0];
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("instance"));
    let tg_arn = tg.target_group_arn().unwrap();
    assert_eq!(
        fixture::registered(&db.c.elb, tg_arn).await,
        fixture::set(&[&format!("{id}:5432")])
    );
    let lb =
        db.c.elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()[0]
            .clone();
    assert_eq!(
        lb.availability_zones().len(),
        2,
        "the NLB spans the VPC's AZs, not only the instance's"
    );
    assert_eq!(db.proxy.count("AuthorizeSecurityGroupIngress"), 1);
    db.proxy.clear_requests();
    assert_eq!(db.run(&config, &["bootstrap"]).status.code(), Some(0));
    assert_eq!(db.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaling_group_is_attached_and_detached_on_teardown() {
    let db = database().await;
    db.c.ec2
        .create_launch_template()
        .launch_template_name("pg")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .security_group_ids(&db.db_sg)
                .build(),
        )
        .send()
        .await
        .unwrap();
    db.c.autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("pg-asg")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("pg")
                .build(),
        )
        .min_size(1)
        .max_size(1)
        .vpc_zone_identifier(db.subnets.join(","))
        .send()
        .await
        .unwrap();
    let config = db.config("database = { autoscaling_group = \"pg-asg\" }");
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("+ Auto Scaling group pg-asg: attach to the target group"));
    let tg_arn = db.target_groups().await[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let attached =
        db.c.autoscaling
            .describe_load_balancer_target_groups()
            .auto_scaling_group_name("pg-asg")
            .send()
            .await
            .unwrap();
    assert_eq!(
        attached.load_balancer_target_groups()[0].load_balancer_target_group_arn(),
        Some(tg_arn.as_str())
    );
    assert_eq!(
        fixture::registered(&db.c.elb, &tg_arn).await.len(),
        1,
        "the group's instance is registered"
    );
    db.proxy.clear_requests();
    assert_eq!(db.run(&config, &["bootstrap"]).status.code(), Some(0));
    assert_eq!(db.mutating_calls(), Vec::<String>::new());

    let out = db.run(&config, &["teardown", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let attached =
        db.c.autoscaling
            .describe_load_balancer_target_groups()
            .auto_scaling_group_name("pg-asg")
            .send()
            .await
            .unwrap();
    assert!(attached.load_balancer_target_groups().is_empty());
    assert!(db.target_groups().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_network_settings_override_the_derived_ones() {
    let db = database().await;
    let other_sg =
        db.c.ec2
            .create_security_group()
            .group_name("pgbouncer")
            .description("x")
            .vpc_id(&db.vpc_id)
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
    let config = db.config(&format!(
        "{INSTANCE}\nvpc_id = \"{}\"\nsubnet_ids = [\"{}\", \"{}\"]\ndatabase_security_group_id = \"{other_sg}\"",
        db.vpc_id, db.subnets[1], db.subnets[0]
    ));
    let out = db.run(&config, &["bootstrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rules_on = |sg: String| {
        let ec2 = db.c.ec2.clone();
        async move {
            let out = ec2
                .describe_security_group_rules()
                .filters(Filter::builder().name("group-id").values(sg).build())
                .send()
                .await
                .unwrap();
            out.security_group_rules()
                .iter()
                .filter(|r| r.is_egress() == Some(false))
                .count()
        }
    };
    assert_eq!(
        rules_on(other_sg.clone()).await,
        1,
        "the rule goes to the configured group"
    );
    assert_eq!(
        rules_on(db.db_sg.clone()).await,
        0,
        "and not to the derived one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_single_az_database_is_built_with_warnings() {
    let db = database().await;
    let address = fixture::rds_instance(&db.c, "public", &db.db_sg, false, true).await;
    db.dns.set(
        &address,
        Behaviour::Addresses {
            ips: vec!["10.0.2.70".parse().unwrap()],
            ttl: 5,
        },
    );
    let out = db.run(
        &db.config("database = { db_instance = \"public\" }"),
        &["bootstrap", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning: the database is publicly accessible"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: the database is not Multi-AZ"),
        "{stdout}"
    );
}

/// A consumer still connected: teardown lists the connection and, without
/// `--reject-connections`, stops before deleting anything (AWS would refuse to delete the
/// service mid-way otherwise); with it, the connection is rejected and everything goes.
/// https://docs.aws.amazon.com/vpc/latest/privatelink/delete-endpoint-service.html
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_with_a_live_consumer_needs_reject_connections() {
    let db = database().await;
    let config = db.config(INSTANCE);
    assert_eq!(db.run(&config, &["bootstrap"]).status.code(), Some(0));
    let endpoint = db.consumer_endpoint().await;

    let out = db.run(&config, &["teardown"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(&format!("- endpoint connection {endpoint}"))
            && listed.contains("needs --reject-connections"),
        "{listed}"
    );

    db.proxy.clear_requests();
    let out = db.run(&config, &["teardown", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&endpoint) && text(&out).contains("--reject-connections"),
        "{}",
        text(&out)
    );
    assert_eq!(
        db.mutating_calls(),
        Vec::<String>::new(),
        "nothing is deleted while a consumer is connected"
    );

    let out = db.run(&config, &["teardown", "--yes", "--reject-connections"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(db.endpoint_services().await.is_empty());
    assert!(db.target_groups().await.is_empty());
}

/// `accept` takes the pending connections of the allowed principals' accounts and leaves
/// the others pending, in text and in `--output json`; a second run finds nothing pending.
/// (moto makes every endpoint available at once: the strict proxy holds it in
/// `pendingAcceptance` while the service requires acceptance, as AWS does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_takes_only_the_allowed_accounts_pending_connections() {
    let db = database().await;
    let config = db.config(INSTANCE);
    assert_eq!(db.run(&config, &["bootstrap"]).status.code(), Some(0));
    let endpoint = db.consumer_endpoint().await;

    // The consumer's account is not an allowed principal's: left pending.
    let out = db.run(&config, &["accept", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["accepted"], serde_json::json!([]));
    assert_eq!(
        doc["left_pending"],
        serde_json::json!([{"endpoint_id": endpoint, "owner": fixture::ACCOUNT}])
    );

    // Now it is.
    let text_now = std::fs::read_to_string(&config).unwrap();
    let allowed = text_now.replace(
        &format!("allowed_principals = [\"{DBT}\"]"),
        &format!(
            "allowed_principals = [\"{DBT}\", \"arn:aws:iam::{}:root\"]",
            fixture::ACCOUNT
        ),
    );
    assert_ne!(allowed, text_now);
    std::fs::write(&config, allowed).unwrap();
    let out = db.run(&config, &["accept"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "accepted  {endpoint} (account {})",
            fixture::ACCOUNT
        )),
        "{}",
        text(&out)
    );
    let out = db.run(&config, &["accept"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no pending connections"),
        "{}",
        text(&out)
    );
}
