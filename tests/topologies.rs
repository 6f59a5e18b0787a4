//! Every RDS topology from RDS itself, end to end against moto (through the strict proxy)
//! and DNS behind a caching resolver: a cluster followed instance by instance, where RDS's
//! membership (DescribeDBClusters' IsClusterWriter, each instance's own endpoint) decides
//! which addresses belong in the group, and a failover (FailoverDBCluster) swaps them.

mod support;

use std::time::Duration;

use support::fixture::{set, TargetEntry};
use support::world::World;

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const LIMIT: Duration = Duration::from_secs(60);

/// An Aurora cluster "orders" with the instances `ids` (the first one created is the
/// writer); each instance's own endpoint answers its address, the cluster endpoint the
/// writer's. Returns the cluster endpoint and each instance's endpoint.
async fn aurora(w: &World, ids: &[(&str, &str)]) -> (String, Vec<String>) {
    let rds = &w.clients.rds;
    let cluster = rds
        .create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .master_username("pglink")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .expect("CreateDBCluster");
    let writer_endpoint = cluster
        .db_cluster()
        .unwrap()
        .endpoint()
        .unwrap()
        .to_string();
    let mut endpoints = Vec::new();
    for (id, ip) in ids {
        let db = rds
            .create_db_instance()
            .db_instance_identifier(*id)
            .db_cluster_identifier("orders")
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .send()
            .await
            .expect("CreateDBInstance in the cluster");
        let host = db
            .db_instance()
            .and_then(|d| d.endpoint())
            .and_then(|e| e.address())
            .expect("instance endpoint")
            .to_string();
        w.point(&host, ip);
        endpoints.push(host);
    }
    w.point(&writer_endpoint, ids[0].1);
    (writer_endpoint, endpoints)
}

async fn writer_of(w: &World) -> String {
    let out = w
        .clients
        .rds
        .describe_db_clusters()
        .db_cluster_identifier("orders")
        .send()
        .await
        .unwrap();
    out.db_clusters()[0]
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_follow_membership_through_a_cluster_failover() {
    let w = World::strict().await;
    let arn = w.group("pglink-readers", true).await;
    let (writer_endpoint, _) = aurora(
        &w,
        &[("w", "10.0.1.10"), ("r1", "10.0.1.21"), ("r2", "10.0.2.22")],
    )
    .await;
    assert_eq!(writer_of(&w).await, "w");
    let entry = TargetEntry {
        name: "readers".into(),
        source: "db_cluster = \"orders\"".into(),
        arn: arn.clone(),
        extra: "role = \"readers\"\nport = 5432".into(),
    };
    let daemon = w.daemon(BIN, &[entry]);
    let watch = w.watch(&arn);
    watch
        .wait_for(&set(&["10.0.1.21:5432", "10.0.2.22:5432"]), LIMIT)
        .await;

    // RDS promotes r1; its writer endpoint then answers r1's address.
    w.clients
        .rds
        .failover_db_cluster()
        .db_cluster_identifier("orders")
        .target_db_instance_identifier("r1")
        .send()
        .await
        .expect("FailoverDBCluster");
    assert_eq!(writer_of(&w).await, "r1");
    w.point(&writer_endpoint, "10.0.1.21");
    // The old writer joins as a reader, the new writer leaves; never empty.
    watch
        .wait_for(&set(&["10.0.1.10:5432", "10.0.2.22:5432"]), LIMIT)
        .await;
    assert!(watch.never_emptied());
    let logs = daemon.logs();
    assert!(
        logs.contains("the cluster's writer changed in DNS"),
        "the failover was seen in DNS, not at a drift check:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_and_a_new_reader_within_a_drift_check() {
    let w = World::strict().await;
    let arn = w.group("pglink-all", true).await;
    aurora(&w, &[("w", "10.0.1.10"), ("r1", "10.0.2.21")]).await;
    let entry = TargetEntry {
        name: "all".into(),
        source: "db_cluster = \"orders\"".into(),
        arn: arn.clone(),
        extra: "role = \"all\"\nport = 5432".into(),
    };
    let _daemon = w.daemon(BIN, &[entry]);
    let watch = w.watch(&arn);
    watch
        .wait_for(&set(&["10.0.1.10:5432", "10.0.2.21:5432"]), LIMIT)
        .await;
    let db = w
        .clients
        .rds
        .create_db_instance()
        .db_instance_identifier("r2")
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("CreateDBInstance");
    let host = db
        .db_instance()
        .unwrap()
        .endpoint()
        .unwrap()
        .address()
        .unwrap();
    w.point(host, "10.0.1.33");
    // The config's drift_check is 10 s.
    watch
        .wait_for(
            &set(&["10.0.1.10:5432", "10.0.2.21:5432", "10.0.1.33:5432"]),
            LIMIT,
        )
        .await;
}

/// An RDS Proxy answers one address per subnet: every one is kept in the group, and one
/// replaced (the proxy moved a network interface) is registered before the old one goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_keeps_every_address_it_answers() {
    let w = World::strict().await;
    let arn = w.group("pglink-proxy", true).await;
    let proxy = w
        .clients
        .rds
        .create_db_proxy()
        .db_proxy_name("ledger-proxy")
        .engine_family(aws_sdk_rds::types::EngineFamily::Postgresql)
        .role_arn("arn:aws:iam::123456789012:role/proxy")
        .auth(
            aws_sdk_rds::types::UserAuthConfig::builder()
                .secret_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:db")
                .build(),
        )
        .set_vpc_subnet_ids(Some(w.subnet_ids.clone()))
        .send()
        .await
        .expect("CreateDBProxy");
    let host = proxy.db_proxy().unwrap().endpoint().unwrap().to_string();
    let answer = |ips: &[&str]| {
        w.dns.set(
            &host,
            support::dns::Behaviour::Addresses {
                ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
                ttl: 1,
            },
        )
    };
    answer(&["10.0.1.50", "10.0.2.50"]);
    let entry = TargetEntry {
        name: "proxy".into(),
        source: "db_proxy = \"ledger-proxy\"".into(),
        arn: arn.clone(),
        extra: String::new(),
    };
    let _daemon = w.daemon(BIN, &[entry]);
    let watch = w.watch(&arn);
    watch
        .wait_for(&set(&["10.0.1.50:5432", "10.0.2.50:5432"]), LIMIT)
        .await;
    answer(&["10.0.1.50", "10.0.2.51"]);
    watch
        .wait_for(&set(&["10.0.1.50:5432", "10.0.2.51:5432"]), LIMIT)
        .await;
    assert!(watch.never_emptied());
}
