//! The drill's world: a Multi-AZ instance and a Single-AZ one with their targets in a
//! strict world whose proxy writes RDS's failover events and repoints the Multi-AZ
//! database's name when the failover call succeeds (moto does neither). Shared by
//! `tests/drill.rs` and `examples/drill_bench.rs`.

use std::process::Output;
use std::time::Duration;

use super::dns::Behaviour;
use super::fixture::{self, TargetEntry};
use super::world::World;

/// RDS's own failover time in this world.
pub const FAILOVER: Duration = Duration::from_secs(3);

/// A strict world with two databases and their targets, ready for `pglink drill`.
pub struct Drill {
    pub w: World,
    pub config: String,
    pub address: String,
    bin: String,
}

/// A Multi-AZ instance "analytics" answering 10.0.1.10 and a Single-AZ one "solo", each
/// with a target; "analytics" is in sync. A failover repoints analytics to 10.0.2.20.
pub async fn drill_world(bin: &str) -> Drill {
    let w = World::strict().await;
    let net = fixture::Network {
        vpc_id: w.vpc_id.clone(),
        subnet_ids: w.subnet_ids.clone(),
    };
    let sg = fixture::db_placement(&w.clients, &net).await;
    let address = fixture::rds_instance(&w.clients, "analytics", &sg, true, false).await;
    let solo = fixture::rds_instance(&w.clients, "solo", &sg, false, false).await;
    w.point(&address, "10.0.1.10");
    w.point(&solo, "10.0.1.11");
    let entry = |name: &str, arn: String| TargetEntry {
        name: name.into(),
        source: format!("db_instance = \"{name}\""),
        arn,
        extra: String::new(),
    };
    let targets = [
        entry("analytics", w.group("pglink-analytics", true).await),
        entry("solo", w.group("pglink-solo", true).await),
    ];
    let path = w.dir.path().join("drill.toml");
    std::fs::write(&path, w.config(&targets)).unwrap();
    let config = path.to_str().unwrap().to_string();
    let synced = fixture::pglink(bin, &["sync", "-c", &config])
        .output()
        .unwrap();
    assert_eq!(synced.status.code(), Some(0), "{}", text(&synced));
    let (records, host, ttl) = (w.dns.records(), address.clone(), w.ttl);
    w.proxy().on_failover(FAILOVER, move |id| {
        assert_eq!(id, "analytics");
        let ips = vec!["10.0.2.20".parse().unwrap()];
        records.set(&host, Behaviour::Addresses { ips, ttl });
    });
    Drill {
        w,
        config,
        address,
        bin: bin.to_string(),
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drill {
    /// `pglink drill -c CONFIG ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// `pglink drill -c CONFIG ARGS...` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec!["drill", "-c", &self.config];
        all.extend(args);
        fixture::pglink(&self.bin, &all)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}
