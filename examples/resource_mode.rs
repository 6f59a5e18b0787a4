//! Resource mode on the local emulator: `[bootstrap] mode = "resource"` builds a VPC Lattice
//! resource gateway, a resource configuration naming the RDS instance by ARN, and a RAM share
//! with the consumer's account, then re-runs (nothing to do), reports the consumers
//! (`accept`) and tears it all down. EC2 and RDS are the emulator's; VPC Lattice and RAM are
//! the test suite's model of their APIs (`tests/support/lattice.rs`: the emulator has
//! neither), so this shows what pglink asks and prints, not AWS's timings.
//!
//!     cargo run --example resource_mode

#[path = "../tests/support/mod.rs"]
mod support;

use pglink::aws::RegionClients;
use pglink::bootstrap::journal::Journal;
use pglink::bootstrap::resource::{accept, stack, teardown};
use pglink::metrics::Metrics;
use support::fixture::{self, Clients};
use support::lattice::Fake;
use support::moto::Moto;

const CONFIG: &str = r#"[bootstrap]
name = "analytics"
mode = "resource"
database = { db_instance = "analytics" }
allowed_principals = ["072088201116"]   # ClickHouse ClickPipes
consumer_region = "us-east-1"
"#;

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    let moto = Moto::start();
    let aws = Clients::new(&moto.endpoint).await;
    let net = fixture::network(&aws.ec2, "10.0.0.0/16").await;
    let db_sg = fixture::db_placement(&aws, &net).await;
    fixture::rds_instance(&aws, "analytics", &db_sg, true, false).await;
    let c = RegionClients::new(
        &fixture::sdk(&moto.endpoint).await,
        "us-east-1",
        Metrics::new(),
    );
    let fake = Fake::default();
    let r = fake.clients();
    let settings = pglink::config::parse(CONFIG, "pglink.toml")
        .expect("valid")
        .1
        .bootstrap
        .expect("[bootstrap]");
    println!("pglink.toml:\n{CONFIG}");

    for (title, dry_run) in [
        ("bootstrap --dry-run", true),
        ("bootstrap", false),
        ("bootstrap (again)", false),
    ] {
        let mut journal = Journal::new(dry_run);
        let out = stack::bootstrap(&c, &r, "us-east-1", &settings, &mut journal)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", journal.render_failure()));
        println!(
            "$ pglink {title}\npglink bootstrap analytics in us-east-1 (resource mode){}\n{}",
            if dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            },
            journal.render()
        );
        match stack::consumer_info(&out) {
            Some(text) => println!("{text}"),
            None => println!("The share ARN and the configuration ID are known once bootstrap runs without --dry-run.\n"),
        }
    }

    fake.consumer_endpoint("pglink-analytics", "072088201116");
    let report = accept::report(&r, "analytics").await.expect("report");
    println!(
        "$ pglink accept   (after the consumer created its endpoint)\n{}",
        accept::render(&report)
    );

    let mut journal = Journal::new(false);
    let refused = teardown::teardown(&c, &r, "analytics", &mut journal, false).await;
    println!(
        "$ pglink teardown --yes\nerror: {}\n",
        refused.expect_err("live consumers")
    );
    let mut journal = Journal::new(false);
    teardown::teardown(&c, &r, "analytics", &mut journal, true)
        .await
        .expect("teardown");
    println!(
        "$ pglink teardown --yes --reject-connections\npglink teardown analytics in us-east-1: deleted\n{}",
        journal.render()
    );
}
