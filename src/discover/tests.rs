//! Custom endpoints and proxies are not in the emulator: the SDK calls run against the
//! SDK's own mock layer, with answers shaped as the RDS API reference documents them.

use super::*;
use aws_sdk_rds::operation::describe_db_cluster_endpoints::DescribeDbClusterEndpointsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_proxies::DescribeDbProxiesOutput;
use aws_sdk_rds::operation::describe_db_proxy_endpoints::DescribeDbProxyEndpointsOutput;
use aws_sdk_rds::types::{
    DbCluster, DbClusterEndpoint, DbClusterMember, DbInstance, DbProxy, DbProxyEndpoint, Endpoint,
};
use aws_sdk_rds::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

fn member(id: &str, writer: bool) -> Member {
    Member {
        instance_id: id.into(),
        address: format!("{id}.x.rds.test"),
        writer,
    }
}

fn ids(members: &[Member]) -> Vec<&str> {
    members.iter().map(|m| m.instance_id.as_str()).collect()
}

#[test]
fn custom_endpoint_members_as_aws_defines_them() {
    let all = || vec![member("w", true), member("r1", false), member("r2", false)];
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Static members win; excluded ones count only without them.
    let m = custom_members(all(), &list(&["w", "r2"]), &list(&["r2"]), false);
    assert_eq!(ids(&m), ["w", "r2"]);
    let m = custom_members(all(), &[], &list(&["r2"]), false);
    assert_eq!(ids(&m), ["w", "r1"]);
    // A READER endpoint never includes the writer.
    let m = custom_members(all(), &list(&["w", "r2"]), &[], true);
    assert_eq!(ids(&m), ["r2"]);
    let m = custom_members(all(), &[], &[], true);
    assert_eq!(ids(&m), ["r1", "r2"]);
}

/// RegionClients whose RDS client answers by `rules`; the other clients are never called.
fn discovery(rules: &[&Rule]) -> RdsDiscovery {
    let rds: Client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let mut clients = RegionClients::new(&sdk, "us-east-1", crate::metrics::Metrics::new());
    clients.rds = rds;
    RdsDiscovery::new(clients)
}

fn cluster_rules() -> (Rule, Rule) {
    let clusters = mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("ledger"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("ledger")
                        .endpoint("ledger.cluster-x.us-east-1.rds.amazonaws.com")
                        .port(5432)
                        .db_cluster_members(
                            DbClusterMember::builder()
                                .db_instance_identifier("w")
                                .is_cluster_writer(true)
                                .build(),
                        )
                        .db_cluster_members(
                            DbClusterMember::builder()
                                .db_instance_identifier("r1")
                                .is_cluster_writer(false)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let instances = mock!(Client::describe_db_instances)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.name() == Some("db-cluster-id") && f.values() == ["ledger"])
        })
        .then_output(|| {
            let db = |id: &str| {
                DbInstance::builder()
                    .db_instance_identifier(id)
                    .endpoint(
                        Endpoint::builder()
                            .address(format!("{id}.x.us-east-1.rds.amazonaws.com"))
                            .port(5432)
                            .build(),
                    )
                    .build()
            };
            DescribeDbInstancesOutput::builder()
                .db_instances(db("w"))
                .db_instances(db("r1"))
                .build()
        });
    (clusters, instances)
}

#[tokio::test]
async fn a_reader_custom_endpoint_is_its_readers_with_the_writer_endpoint_watched() {
    let endpoints = mock!(Client::describe_db_cluster_endpoints)
        .match_requests(|r| r.db_cluster_endpoint_identifier() == Some("ledger-analytics"))
        .then_output(|| {
            DescribeDbClusterEndpointsOutput::builder()
                .db_cluster_endpoints(
                    DbClusterEndpoint::builder()
                        .db_cluster_endpoint_identifier("ledger-analytics")
                        .db_cluster_identifier("ledger")
                        .endpoint_type("CUSTOM")
                        .custom_endpoint_type("READER")
                        .build(),
                )
                .build()
        });
    let (clusters, instances) = cluster_rules();
    let d = discovery(&[&endpoints, &clusters, &instances]);
    let source = EndpointSource::DbClusterEndpoint("ledger-analytics".into());
    let e = d.endpoint(&source, Members::All).await.unwrap();
    assert_eq!(e.address, "ledger.cluster-x.us-east-1.rds.amazonaws.com");
    assert_eq!(e.port, Some(5432));
    assert_eq!(ids(&e.members), ["r1"]);
    assert_eq!(e.members[0].address, "r1.x.us-east-1.rds.amazonaws.com");
}

#[tokio::test]
async fn an_unknown_custom_endpoint_is_not_found() {
    let endpoints = mock!(Client::describe_db_cluster_endpoints)
        .then_output(|| DescribeDbClusterEndpointsOutput::builder().build());
    let d = discovery(&[&endpoints]);
    let source = EndpointSource::DbClusterEndpoint("nope".into());
    let err = d.endpoint(&source, Members::All).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn a_proxy_and_its_named_endpoint() {
    let proxies = mock!(Client::describe_db_proxies)
        .match_requests(|r| r.db_proxy_name() == Some("ledger-proxy"))
        .then_output(|| {
            DescribeDbProxiesOutput::builder()
                .db_proxies(
                    DbProxy::builder()
                        .db_proxy_name("ledger-proxy")
                        .engine_family("POSTGRESQL")
                        .endpoint("ledger-proxy.proxy-x.us-east-1.rds.amazonaws.com")
                        .vpc_security_group_ids("sg-0proxy")
                        .build(),
                )
                .build()
        });
    let endpoints = mock!(Client::describe_db_proxy_endpoints)
        .match_requests(|r| {
            r.db_proxy_name() == Some("ledger-proxy") && r.db_proxy_endpoint_name() == Some("ro")
        })
        .then_output(|| {
            DescribeDbProxyEndpointsOutput::builder()
                .db_proxy_endpoints(
                    DbProxyEndpoint::builder()
                        .db_proxy_endpoint_name("ro")
                        .endpoint("ro.endpoint.proxy-x.us-east-1.rds.amazonaws.com")
                        .vpc_security_group_ids("sg-0ro")
                        .build(),
                )
                .build()
        });
    let d = discovery(&[&proxies, &endpoints]);
    let own = EndpointSource::DbProxy {
        name: "ledger-proxy".into(),
        endpoint: None,
    };
    let e = d.endpoint(&own, Members::Writer).await.unwrap();
    assert_eq!(
        e.address,
        "ledger-proxy.proxy-x.us-east-1.rds.amazonaws.com"
    );
    assert_eq!(e.port, Some(5432));
    assert_eq!(e.security_groups, ["sg-0proxy"]);
    let named = EndpointSource::DbProxy {
        name: "ledger-proxy".into(),
        endpoint: Some("ro".into()),
    };
    let e = d.endpoint(&named, Members::Writer).await.unwrap();
    assert_eq!(e.address, "ro.endpoint.proxy-x.us-east-1.rds.amazonaws.com");
    assert_eq!(e.security_groups, ["sg-0ro"]);
    assert!(e.members.is_empty());
}
