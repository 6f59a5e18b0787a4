//! `[bootstrap] mode = "resource"`: the stack builder end to end, with EC2 and RDS on the
//! emulator (the VPC, the DB subnet group, the database and its security group, the
//! gateway's own group and the rule pglink adds) and VPC Lattice and RAM on a stateful
//! model of their APIs (`support::lattice`: the emulator has neither).

mod support;

use aws_sdk_ec2::types::Filter;
use pglink::aws::RegionClients;
use pglink::bootstrap::journal::{Journal, Mark};
use pglink::bootstrap::resource::stack::{self, ResourceOutcome};
use pglink::bootstrap::resource::teardown::teardown;
use pglink::bootstrap::BootstrapError;
use pglink::config::BootstrapSettings;
use pglink::metrics::Metrics;
use support::fixture::{self, Clients};
use support::lattice::Fake;
use support::moto::Moto;

const CLICKHOUSE: &str = "072088201116";

struct World {
    _moto: Moto,
    aws: Clients,
    c: RegionClients,
    db_sg: String,
    subnets: Vec<String>,
    fake: Fake,
}

async fn world() -> World {
    let moto = Moto::start();
    let aws = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&aws.ec2, "10.0.0.0/16").await;
    let db_sg = fixture::db_placement(&aws, &net).await;
    fixture::rds_instance(&aws, "analytics", &db_sg, true, false).await;
    let sdk = fixture::sdk(&moto.endpoint).await;
    World {
        c: RegionClients::new(&sdk, "us-east-1", Metrics::new()),
        _moto: moto,
        aws,
        db_sg,
        subnets: net.subnet_ids,
        fake: Fake::default(),
    }
}

fn settings(extra: &str) -> BootstrapSettings {
    let text = format!(
        "[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = {{ db_instance = \"analytics\" }}\nallowed_principals = [\"{CLICKHOUSE}\"]\n{extra}"
    );
    pglink::config::parse(&text, "test")
        .expect("valid")
        .1
        .bootstrap
        .unwrap()
}

impl World {
    async fn bootstrap(&self, dry_run: bool) -> (Result<ResourceOutcome, BootstrapError>, Journal) {
        let mut journal = Journal::new(dry_run);
        let r = self.fake.clients();
        let out = stack::bootstrap(&self.c, &r, "us-east-1", &settings(""), &mut journal).await;
        (out, journal)
    }

    /// The gateway's group in the emulator, if it exists.
    async fn gateway_group(&self) -> Option<String> {
        let out = self
            .aws
            .ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values("pglink-analytics-rgw")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.security_groups()
            .first()
            .and_then(|g| g.group_id())
            .map(str::to_string)
    }

    /// The database group's inbound sources: (source group, from port, to port).
    async fn db_sources(&self) -> Vec<(String, i32, i32)> {
        let out = self
            .aws
            .ec2
            .describe_security_groups()
            .group_ids(&self.db_sg)
            .send()
            .await
            .unwrap();
        out.security_groups()[0]
            .ip_permissions()
            .iter()
            .flat_map(|p| {
                p.user_id_group_pairs().iter().map(|g| {
                    (
                        g.group_id().unwrap_or_default().to_string(),
                        p.from_port().unwrap_or(-1),
                        p.to_port().unwrap_or(-1),
                    )
                })
            })
            .collect()
    }

    async fn db_arn(&self) -> String {
        let out = self
            .aws
            .rds
            .describe_db_instances()
            .db_instance_identifier("analytics")
            .send()
            .await
            .unwrap();
        out.db_instances()[0].db_instance_arn().unwrap().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_builds_the_stack_and_a_rerun_changes_nothing() {
    let w = world().await;
    let (out, journal) = w.bootstrap(false).await;
    let out = out.unwrap_or_else(|e| panic!("{e}\n{}", journal.render_failure()));
    let sg = w.gateway_group().await.expect("the gateway's group");
    assert_eq!(w.db_sources().await, [(sg.clone(), 5432, 5432)]);
    let db_arn = w.db_arn().await;
    {
        let s = w.fake.state();
        assert_eq!(s.gateways.len(), 1);
        let g = &s.gateways[0];
        assert_eq!(
            (g.name.as_str(), &g.groups),
            ("pglink-analytics", &vec![sg.clone()])
        );
        assert_eq!(
            g.subnets.len(),
            2,
            "one subnet per AZ of the DB subnet group"
        );
        assert!(g.subnets.iter().all(|s| w.subnets.contains(s)));
        assert_eq!(
            g.tags.get("pglink:name").map(String::as_str),
            Some("analytics")
        );
        let cfg = &s.configurations[0];
        let arn = cfg
            .definition
            .as_arn_resource()
            .ok()
            .and_then(|a| a.arn())
            .map(str::to_string);
        assert_eq!(cfg.gateway, g.id);
        assert!(cfg.ports.is_empty(), "an ARN configuration takes no ports");
        let share = &s.shares[0];
        assert_eq!(
            share.principals,
            [(CLICKHOUSE.to_string(), "ASSOCIATING".to_string())]
        );
        assert_eq!(
            share.resources[0].0,
            out.resource_configuration_arn.clone().unwrap()
        );
        assert_eq!(arn, Some(db_arn));
    }
    assert_eq!(out.shared_with[0].entity, CLICKHOUSE);
    let text = stack::consumer_info(&out).expect("the consumer's request");
    assert!(
        text.contains("Resource configuration ID:   rcfg-"),
        "{text}"
    );
    assert!(
        text.contains(
            "Resource share ARN:          arn:aws:ram:us-east-1:123456789012:resource-share/"
        ),
        "{text}"
    );
    let marks: Vec<Mark> = journal.entries.iter().map(|e| e.mark).collect();
    assert!(
        marks.iter().all(|m| *m == Mark::Create),
        "{}",
        journal.render()
    );

    let calls = w.fake.state().calls.len();
    let (again, journal) = w.bootstrap(false).await;
    let again = again.unwrap();
    assert_eq!(journal.changes(), 0, "{}", journal.render());
    assert_eq!(
        w.fake.state().calls.len(),
        calls,
        "a re-run calls nothing that changes"
    );
    assert_eq!(again.resource_share_arn, out.resource_share_arn);
    assert_eq!(w.db_sources().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_plans_everything_and_changes_nothing() {
    let w = world().await;
    let (out, journal) = w.bootstrap(true).await;
    let out = out.unwrap();
    let planned: Vec<&str> = journal
        .entries
        .iter()
        .map(|e| e.resource.as_str())
        .collect();
    assert_eq!(
        planned,
        [
            "security group pglink-analytics-rgw",
            &format!("ingress rule on {}", w.db_sg),
            "resource gateway pglink-analytics",
            "resource configuration pglink-analytics",
            "resource share pglink-analytics",
        ]
    );
    assert!(w.fake.state().calls.is_empty());
    assert_eq!(w.gateway_group().await, None);
    assert_eq!(stack::consumer_info(&out), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_built_stack_is_completed_by_the_next_run() {
    let w = world().await;
    w.fake.state().fail_next = Some("CreateResourceConfiguration");
    let (out, journal) = w.bootstrap(false).await;
    let err = out.unwrap_err().to_string();
    assert!(err.contains("ServiceQuotaExceededException"), "{err}");
    let failure = journal.render_failure();
    assert!(
        failure.contains("+ resource gateway pglink-analytics")
            && failure.contains("attempted, not confirmed by AWS")
            && failure.contains("resource configuration"),
        "{failure}"
    );
    let (out, journal) = w.bootstrap(false).await;
    out.unwrap();
    let s = w.fake.state();
    assert_eq!(
        s.count("CreateResourceGateway"),
        1,
        "the gateway is found, not made again"
    );
    assert_eq!(s.configurations.len(), 1);
    assert_eq!(s.shares.len(), 1);
    let gateway = journal
        .entries
        .iter()
        .find(|e| e.resource == "resource gateway pglink-analytics");
    assert_eq!(gateway.map(|e| e.mark), Some(Mark::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_stops_at_live_consumers_and_deletes_only_what_it_owns() {
    let w = world().await;
    w.bootstrap(false).await.0.unwrap();
    w.fake.foreign_gateway("payments-gateway");
    w.fake.consumer_endpoint("pglink-analytics", CLICKHOUSE);
    let network = "arn:aws:vpc-lattice:us-east-1:072088201116:servicenetwork/sn-0123456789abcdef0";
    w.fake.consumer_network("pglink-analytics", network);
    let r = w.fake.clients();

    let mut journal = Journal::new(false);
    let err = teardown(&w.c, &r, "analytics", &mut journal, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 consumer association(s): vpce-")
            && err.contains(&format!("service network {network}"))
            && err.contains(&format!("from account {CLICKHOUSE}"))
            && err.contains("--reject-connections"),
        "{err}"
    );
    assert!(!w.fake.state().calls.iter().any(|c| c.starts_with("Delete")));

    let mut journal = Journal::new(false);
    teardown(&w.c, &r, "analytics", &mut journal, true)
        .await
        .unwrap();
    {
        let s = w.fake.state();
        let deletes: Vec<&str> = s
            .calls
            .iter()
            .filter(|c| c.starts_with("Delete"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            deletes,
            [
                "DeleteResourceShare",
                "DeleteResourceEndpointAssociation",
                "DeleteServiceNetworkResourceAssociation",
                "DeleteResourceConfiguration",
                "DeleteResourceGateway"
            ]
        );
        assert!(s.configurations.is_empty());
        let left: Vec<&str> = s.gateways.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(left, ["payments-gateway"], "another stack's gateway stays");
    }
    assert_eq!(w.gateway_group().await, None);
    assert!(w.db_sources().await.is_empty());
    assert!(journal
        .entries
        .iter()
        .all(|e| e.mark == Mark::Delete && e.confirmed));

    let mut journal = Journal::new(false);
    teardown(&w.c, &r, "analytics", &mut journal, false)
        .await
        .unwrap();
    assert!(
        journal.entries.is_empty(),
        "nothing left: {}",
        journal.render()
    );
}

/// Switching a stack's mode in place would move the database's rule and cut the other
/// path's consumers off: both ways are refused before any change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_mode_under_one_name_is_refused() {
    let w = world().await;
    let vpc = w
        .aws
        .ec2
        .describe_security_groups()
        .group_ids(&w.db_sg)
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let group = |name: &str| {
        w.aws
            .ec2
            .create_security_group()
            .group_name(name)
            .description("pglink")
            .vpc_id(&vpc)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                    .tags(tag("pglink:managed-by", "pglink"))
                    .tags(tag("pglink:name", "analytics"))
                    .build(),
            )
            .send()
    };
    group("pglink-analytics-nlb").await.unwrap();
    let (out, journal) = w.bootstrap(false).await;
    let err = out.unwrap_err().to_string();
    assert!(
        err.starts_with("bootstrap.mode: an endpoint-service stack named analytics exists (security group pglink-analytics-nlb"),
        "{err}"
    );
    assert!(journal.entries.is_empty() && w.fake.state().calls.is_empty());

    let w = world().await;
    w.bootstrap(false).await.0.unwrap();
    let text = "[bootstrap]\nname = \"analytics\"\ndatabase = { db_instance = \"analytics\" }\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n";
    let config = pglink::config::parse(text, "test").unwrap().1;
    let resolver = pglink::resolve::DnsResolver::new(&config.dns).unwrap();
    let mut journal = Journal::new(false);
    let nlb = pglink::bootstrap::bootstrap(
        &w.c,
        "us-east-1",
        config.bootstrap.as_ref().unwrap(),
        &resolver,
        &mut journal,
    )
    .await;
    let err = nlb.unwrap_err().to_string();
    assert!(
        err.starts_with("bootstrap.mode: a resource-mode stack named analytics exists (security group pglink-analytics-rgw"),
        "{err}"
    );
    assert!(journal.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_are_waited_for_until_active() {
    let w = world().await;
    w.fake.state().settle_reads = 1;
    let started = std::time::Instant::now();
    let (out, journal) = w.bootstrap(false).await;
    out.unwrap_or_else(|e| panic!("{e}\n{}", journal.render_failure()));
    // The configuration is created on an ACTIVE gateway only (the model refuses otherwise),
    // so reaching the share means both waits worked.
    assert_eq!(w.fake.state().shares.len(), 1);
    assert!(started.elapsed() >= std::time::Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_reports_the_shares_accounts_and_the_consumers_endpoints() {
    use pglink::bootstrap::resource::accept;
    let w = world().await;
    let r = w.fake.clients();
    let empty = accept::report(&r, "analytics").await.unwrap();
    assert_eq!(empty.resource_share_arn, None);
    assert!(accept::render(&empty).contains("no resource share carries pglink's tags"));
    w.bootstrap(false).await.0.unwrap();
    w.fake.consumer_endpoint("pglink-analytics", CLICKHOUSE);
    let report = accept::report(&r, "analytics").await.unwrap();
    assert!(report.resource_share_arn.is_some());
    assert_eq!(report.endpoints.len(), 1);
    assert_eq!(report.endpoints[0].owner, CLICKHOUSE);
    let text = accept::render(&report);
    assert!(
        text.contains(&format!("shared with {CLICKHOUSE}: ASSOCIATING (outside your organization: waits until the account accepts the invitation in AWS RAM)")),
        "{text}"
    );
    assert!(text.contains(&format!("(account {CLICKHOUSE})")), "{text}");
}

/// What cannot change in place is reported in the output's warnings, not only logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_that_cannot_be_repaired_is_in_the_warnings() {
    let w = world().await;
    w.bootstrap(false).await.0.unwrap();
    w.fake.state().gateways[0].per_eni = 32;
    let (out, journal) = w.bootstrap(false).await;
    let out = out.unwrap();
    assert_eq!(journal.changes(), 0);
    assert!(
        out.warnings.iter().any(|w| w.contains(
            "resource gateway pglink-analytics is 32 IPv4 addresses per interface instead of 16, which cannot change in place"
        )),
        "{:?}",
        out.warnings
    );
    let mut journal = Journal::new(true);
    let role = settings("").allowed_principals.clone();
    assert_eq!(role, [CLICKHOUSE]);
    let with_role = {
        let text = "[bootstrap]\nname = \"analytics\"\nmode = \"resource\"\ndatabase = { db_instance = \"analytics\" }\nallowed_principals = [\"arn:aws:iam::346425330055:role/MTPL_Admin\"]\n";
        pglink::config::parse(text, "test")
            .unwrap()
            .1
            .bootstrap
            .unwrap()
    };
    let out = stack::bootstrap(
        &w.c,
        &w.fake.clients(),
        "us-east-1",
        &with_role,
        &mut journal,
    )
    .await
    .unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("the whole account 346425330055 gets the configuration")),
        "{:?}",
        out.warnings
    );
}
