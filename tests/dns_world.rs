//! The DNS path as pglink meets it in a VPC: every answer comes through a caching resolver
//! (unbound standing in for the Amazon resolver) that holds it for its TTL, in front of a
//! test server that answers afresh, with Aurora-style endpoints that pick an instance at
//! random per query. No timing is asserted tighter than unbound's whole-second clock allows:
//! an answer cached with TTL t is held for at least t - 1 s.

mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use pglink::config::DnsSettings;
use pglink::resolve::{DnsFailure, DnsResolver, Family, Resolve, Resolved};
use support::dns::{Behaviour, TestDns};
use support::unbound::Unbound;

const HOST: &str = "world.c9akciq32.us-east-1.rds.amazonaws.com";
/// Generous: only a broken cache misses it.
const SLACK: Duration = Duration::from_secs(5);

/// pglink's own resolver (no cache of its own) asking `server`.
fn pglink_resolver(server: SocketAddr) -> DnsResolver {
    DnsResolver::new(&DnsSettings {
        nameservers: vec![server],
        timeout: Duration::from_secs(2),
        max_queries_per_second: 200.0,
    })
    .expect("build resolver")
}

/// A plain uncached hickory resolver asking `server`, for whole answers (CNAMEs included).
fn raw_resolver(server: SocketAddr) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
    ns.connections = vec![udp];
    let config = ResolverConfig::from_name_servers(vec![ns]);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = Duration::from_secs(2);
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    builder.build().expect("build raw resolver")
}

async fn resolve(resolver: &DnsResolver, host: &str) -> Resolved {
    resolver
        .resolve(host, Family::V4)
        .await
        .unwrap_or_else(|e| panic!("resolving {host}: {e}"))
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().expect("ip")).collect()
}

fn addresses(ips: &[&str], ttl: u32) -> Behaviour {
    Behaviour::Addresses {
        ips: ips.iter().map(|s| s.parse().expect("ip")).collect(),
        ttl,
    }
}

/// `(owner, ttl, data)` of every answer record, e.g. `("a.test.", 5, "CNAME b.test.")`.
async fn records(resolver: &TokioResolver, name: &str) -> Vec<(String, u32, String)> {
    let lookup = resolver
        .lookup(name, RecordType::A)
        .await
        .unwrap_or_else(|e| panic!("looking up {name}: {e}"));
    lookup
        .answers()
        .iter()
        .map(|r| {
            let data = match &r.data {
                RData::CNAME(c) => format!("CNAME {}", c.0),
                RData::A(a) => format!("A {}", a.0),
                other => format!("{other:?}"),
            };
            (r.name.to_ascii(), r.ttl, data)
        })
        .collect()
}

/// (a) A changed record is seen through the cache only once the old answer's TTL has run
/// out, and until then the test server is not asked again.
#[tokio::test]
async fn a_change_is_seen_through_the_cache_only_after_its_ttl() {
    const TTL: u32 = 3;
    let dns = TestDns::start();
    dns.set(HOST, addresses(&["10.0.0.1"], TTL));
    let unbound = Unbound::start(dns.addr);
    let cached = pglink_resolver(unbound.addr);
    let direct = pglink_resolver(dns.addr);

    let start = Instant::now();
    assert_eq!(resolve(&cached, HOST).await.addresses, ips(&["10.0.0.1"]));
    dns.set(HOST, addresses(&["10.0.0.2"], TTL));
    assert_eq!(resolve(&direct, HOST).await.addresses, ips(&["10.0.0.2"]));

    let deadline = start + Duration::from_secs(TTL.into()) + SLACK;
    loop {
        let answer = resolve(&cached, HOST).await.addresses;
        if answer == ips(&["10.0.0.2"]) {
            break;
        }
        assert_eq!(answer, ips(&["10.0.0.1"]));
        // Served from the cache: only the first query (and the direct one) reached the server.
        assert_eq!(dns.queries_for(HOST), 2, "the cache asked upstream early");
        assert!(Instant::now() < deadline, "the change never came through");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs((TTL - 1).into()),
        "the old answer was held only {waited:?} of its {TTL} s TTL"
    );
}

/// (b) The cache hands out the remaining TTL, counting down; the server always the full TTL.
#[tokio::test]
async fn the_cache_counts_the_ttl_down() {
    const TTL: u32 = 5;
    let dns = TestDns::start();
    dns.set(HOST, addresses(&["10.0.0.1"], TTL));
    let unbound = Unbound::start(dns.addr);
    let cached = pglink_resolver(unbound.addr);
    let direct = pglink_resolver(dns.addr);
    let full = Duration::from_secs(TTL.into());

    let first = resolve(&cached, HOST).await.ttl;
    assert_eq!(first, full, "a fresh answer carries the full TTL");
    let deadline = Instant::now() + full;
    let mut last = first;
    while last == first {
        assert!(Instant::now() < deadline, "the TTL never counted down");
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = resolve(&cached, HOST).await.ttl;
        assert!(
            last <= first,
            "the TTL went up to {last:?} within one caching"
        );
    }
    assert_eq!(resolve(&direct, HOST).await.ttl, full);
}

/// Three instances and a reader endpoint over them, as Aurora publishes them.
fn aurora_reader(dns: &TestDns, reader: &str, reader_ttl: u32) -> Vec<String> {
    let instances: Vec<String> = (1..=3)
        .map(|n| format!("reader-{n}.c9akciq32.us-east-1.rds.amazonaws.com"))
        .collect();
    for (n, instance) in instances.iter().enumerate() {
        dns.set(instance, addresses(&[&format!("10.0.1.{}", n + 1)], 5));
    }
    dns.set(
        reader,
        Behaviour::RoundRobin {
            targets: instances.clone(),
            ttl: reader_ttl,
        },
    );
    instances
}

/// (c) Asked directly, a reader endpoint names a different instance from query to query;
/// through the cache, the first pick is held for the endpoint's TTL, then picked again.
#[tokio::test]
async fn a_reader_endpoint_picks_per_query_and_the_cache_holds_the_pick() {
    const TTL: u32 = 3;
    let reader = "world.cluster-ro-c9akciq32.us-east-1.rds.amazonaws.com";
    let dns = TestDns::start();
    aurora_reader(&dns, reader, TTL);
    let unbound = Unbound::start(dns.addr);
    let cached = pglink_resolver(unbound.addr);
    let direct = pglink_resolver(dns.addr);

    // Always one instance per answer; all three turn up (chance of missing one: ~1e-5).
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let answer = resolve(&direct, reader).await.addresses;
        assert_eq!(answer.len(), 1, "{answer:?}");
        seen.extend(answer);
    }
    assert_eq!(seen, ips(&["10.0.1.1", "10.0.1.2", "10.0.1.3"]));

    let start = Instant::now();
    let asked = dns.queries_for(reader);
    let pick = resolve(&cached, reader).await.addresses;
    assert_eq!(pick.len(), 1, "{pick:?}");
    let held = Duration::from_secs((TTL - 1).into());
    while start.elapsed() < held {
        let answer = resolve(&cached, reader).await.addresses;
        // Checked after the query: an answer that came back this early was cached.
        if start.elapsed() < held {
            assert_eq!(answer, pick, "the cache changed its pick within the TTL");
            assert_eq!(dns.queries_for(reader), asked + 1, "the cache asked again");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Once the TTL has run out the cache asks again, and the server picks afresh.
    let deadline = start + Duration::from_secs(TTL.into()) + SLACK;
    while dns.queries_for(reader) == asked + 1 {
        assert!(Instant::now() < deadline, "the cache never asked again");
        assert_eq!(resolve(&cached, reader).await.addresses.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (d) CNAME chains come through whole, with the smallest TTL along them as pglink's;
/// NXDOMAIN comes through, and is cached only for the SOA's negative TTL (1 s).
#[tokio::test]
async fn cname_chains_and_nxdomain_pass_through() {
    let instance = "world-b.c9akciq32.us-east-1.rds.amazonaws.com";
    let alias = "world.instances.test";
    let dns = TestDns::start();
    dns.set(
        HOST,
        Behaviour::Cname {
            target: alias.into(),
            ttl: 30,
        },
    );
    dns.set(
        alias,
        Behaviour::Cname {
            target: instance.into(),
            ttl: 20,
        },
    );
    dns.set(instance, addresses(&["10.0.0.7"], 10));
    let unbound = Unbound::start(dns.addr);
    let raw = raw_resolver(unbound.addr);

    // unbound cuts the chain after the first CNAME and asks for each link itself, so a
    // link may have been cached a second before the answer was put together.
    let chain = records(&raw, HOST).await;
    let expected = [
        (format!("{HOST}."), 30, format!("CNAME {alias}.")),
        (format!("{alias}."), 20, format!("CNAME {instance}.")),
        (format!("{instance}."), 10, "A 10.0.0.7".to_string()),
    ];
    assert_eq!(chain.len(), expected.len(), "{chain:?}");
    for (got, want) in chain.iter().zip(&expected) {
        assert_eq!((&got.0, &got.2), (&want.0, &want.2), "{chain:?}");
        assert!(got.1 + 1 >= want.1 && got.1 <= want.1, "{chain:?}");
    }
    assert_eq!(dns.queries_for(alias), 1, "each link asked for once");
    let resolved = resolve(&pglink_resolver(unbound.addr), HOST).await;
    assert_eq!(resolved.addresses, ips(&["10.0.0.7"]));
    assert!(resolved.ttl <= Duration::from_secs(10), "{resolved:?}");

    let cached = pglink_resolver(unbound.addr);
    let missing = "gone.c9akciq32.us-east-1.rds.amazonaws.com";
    let failure = cached.resolve(missing, Family::V4).await;
    assert_eq!(failure, Err(DnsFailure::NxDomain));
    // A CNAME to a name that does not exist: NXDOMAIN too.
    let dangling = "dangling.instances.test";
    dns.set(
        dangling,
        Behaviour::Cname {
            target: missing.into(),
            ttl: 5,
        },
    );
    let failure = cached.resolve(dangling, Family::V4).await;
    assert_eq!(failure, Err(DnsFailure::NxDomain));

    // The name appears: the negative answer is not held past its 1 s.
    dns.set(missing, addresses(&["10.0.0.8"], 5));
    let deadline = Instant::now() + Duration::from_secs(1) + SLACK;
    loop {
        match cached.resolve(missing, Family::V4).await {
            Ok(found) => {
                assert_eq!(found.addresses, ips(&["10.0.0.8"]));
                break;
            }
            Err(DnsFailure::NxDomain) => {}
            Err(other) => panic!("unexpected failure {other}"),
        }
        assert!(Instant::now() < deadline, "NXDOMAIN held too long");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
