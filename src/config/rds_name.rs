//! What an RDS endpoint name says about its answers. RDS publishes each endpoint as a name
//! under `rds.amazonaws.com` whose second label tells the kind
//! (<https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Endpoints.html>,
//! <https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-endpoints.html>):
//!
//! ```text
//!  analytics.c9akciq32.us-east-1.rds.amazonaws.com                    instance: one address
//!  orders.cluster-c9akciq32.us-east-1.rds.amazonaws.com               cluster writer: one
//!  orders.cluster-ro-c9akciq32.us-east-1.rds.amazonaws.com            reader: one at random
//!  mine.cluster-custom-c9akciq32.us-east-1.rds.amazonaws.com          custom: one at random
//!  pool.proxy-c9akciq32.us-east-1.rds.amazonaws.com                   proxy: several
//! ```

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Instance,
    ClusterWriter,
    ClusterReader,
    ClusterCustom,
    Proxy,
    /// Not an RDS name: anything may stand behind it.
    Other,
}

impl Kind {
    /// An instance or writer endpoint names one database at a time: its answer changes only
    /// on a failover, never by rotation, however soon one failover follows another.
    pub fn is_single_instance(self) -> bool {
        matches!(self, Self::Instance | Self::ClusterWriter)
    }
}

pub fn classify(host: &str) -> Kind {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let rds = host.ends_with(".rds.amazonaws.com") || host.ends_with(".rds.amazonaws.com.cn");
    let labels: Vec<&str> = host.split('.').collect();
    if !rds || labels.len() < 6 {
        return Kind::Other;
    }
    match labels[1] {
        l if l.starts_with("cluster-ro-") => Kind::ClusterReader,
        l if l.starts_with("cluster-custom-") => Kind::ClusterCustom,
        l if l.starts_with("cluster-") => Kind::ClusterWriter,
        l if l.starts_with("proxy-") => Kind::Proxy,
        _ => Kind::Instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names() {
        let cases = [
            (
                "analytics.c9akciq32.us-east-1.rds.amazonaws.com",
                Kind::Instance,
            ),
            (
                "Orders.cluster-c9akciq32.eu-west-2.rds.amazonaws.com.",
                Kind::ClusterWriter,
            ),
            (
                "orders.cluster-ro-c9akciq32.us-east-1.rds.amazonaws.com",
                Kind::ClusterReader,
            ),
            (
                "mine.cluster-custom-c9akciq32.us-east-1.rds.amazonaws.com",
                Kind::ClusterCustom,
            ),
            (
                "pool.proxy-c9akciq32.us-east-1.rds.amazonaws.com",
                Kind::Proxy,
            ),
            (
                "db.c9akciq32.cn-north-1.rds.amazonaws.com.cn",
                Kind::Instance,
            ),
            ("db.internal.example.com", Kind::Other),
            ("rds.amazonaws.com", Kind::Other),
            ("10.0.1.5", Kind::Other),
        ];
        for (host, kind) in cases {
            assert_eq!(classify(host), kind, "{host}");
        }
        assert!(Kind::ClusterWriter.is_single_instance());
        assert!(!Kind::Proxy.is_single_instance() && !Kind::Other.is_single_instance());
    }
}
