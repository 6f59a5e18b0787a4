//! Checks made before any change, from what was derived about the database and its
//! network. Pure: errors stop bootstrap with exit 2 and nothing changed; warnings are shown.

use std::collections::BTreeSet;

use super::network::Placement;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// What stands in front of the database, as messages name it.
pub const NLB: &str = "NLB";
pub const GATEWAY: &str = "resource gateway";

/// The checks both paths share; `front` is [`NLB`] or [`GATEWAY`].
pub fn check(p: &Placement, configured_port: u16, explicit_subnets: bool, front: &str) -> Findings {
    let mut f = Findings::default();
    let azs: BTreeSet<&str> = p.subnets.iter().map(|s| s.az.as_str()).collect();
    if azs.len() < 2 {
        f.errors.push(format!(
            "bootstrap.subnet_ids: expected subnets in at least two Availability Zones for the {front}, got {} ({})",
            azs.len(),
            azs.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    for pair in p.subnets.windows(2) {
        if pair[0].az == pair[1].az {
            f.errors.push(format!(
                "bootstrap.subnet_ids: {} and {} are both in {}; the {front} takes one subnet per Availability Zone, give one of them",
                pair[0].id, pair[1].id, pair[0].az
            ));
        }
    }
    for s in &p.subnets {
        if s.vpc_id != p.vpc_id {
            f.errors.push(format!(
                "bootstrap.subnet_ids: subnet {} is in {}, expected the database's VPC {}",
                s.id, s.vpc_id, p.vpc_id
            ));
        }
    }
    if let Some(db_vpc) = &p.database_vpc_id {
        if db_vpc != &p.vpc_id {
            f.errors.push(format!(
                "bootstrap.vpc_id: {} is not the database's VPC ({db_vpc})",
                p.vpc_id
            ));
        }
    }
    if let Some(port) = p.database_port {
        if port != configured_port {
            f.errors.push(format!(
                "bootstrap.port: {configured_port} configured, but the database listens on {port}"
            ));
        }
    }
    let missing: Vec<&str> = p
        .database_azs
        .iter()
        .map(String::as_str)
        .filter(|az| !azs.contains(az))
        .collect();
    if !missing.is_empty() {
        let text = format!(
            "bootstrap.subnet_ids: no {front} subnet in {}, where the database can run (its DB subnet group); after a failover there the {front} could not reach it",
            missing.join(", ")
        );
        if explicit_subnets {
            f.errors.push(text);
        } else {
            f.warnings.push(text);
        }
    }
    if p.publicly_accessible && front == NLB {
        f.warnings.push(
            "the database is publicly accessible: its endpoint resolves to a public IP, which an internal NLB cannot reach privately; consider PubliclyAccessible=false".into(),
        );
    }
    if p.multi_az == Some(false) {
        f.warnings
            .push("the database is not Multi-AZ: there is no standby to fail over to".into());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::network::{placement, subnet, Subnet};

    #[test]
    fn a_good_placement_passes() {
        assert_eq!(check(&placement(), 5432, false, NLB), Findings::default());
    }

    #[test]
    fn each_problem_is_named() {
        let mut p = placement();
        p.subnets.pop();
        assert!(check(&p, 5432, true, NLB)
            .errors
            .iter()
            .any(|e| e.contains("at least two Availability Zones")));

        let mut p = placement();
        p.subnets.push(Subnet {
            vpc_id: "vpc-2".into(),
            ..crate::bootstrap::network::subnet("subnet-x", "us-east-1c")
        });
        assert!(check(&p, 5432, true, NLB)
            .errors
            .iter()
            .any(|e| e.contains("subnet-x is in vpc-2")));

        let mut p = placement();
        p.subnets.insert(1, subnet("subnet-a2", "us-east-1a"));
        assert!(check(&p, 5432, true, NLB)
            .errors
            .iter()
            .any(|e| e.contains("subnet-a and subnet-a2 are both in us-east-1a")));

        let mut p = placement();
        p.database_vpc_id = Some("vpc-9".into());
        assert!(check(&p, 5432, false, NLB)
            .errors
            .iter()
            .any(|e| e.starts_with("bootstrap.vpc_id")));

        let f = check(&placement(), 6432, false, NLB);
        assert!(
            f.errors
                .iter()
                .any(|e| e.contains("database listens on 5432")),
            "{f:?}"
        );

        let mut p = placement();
        p.database_azs.insert("us-east-1c".into());
        assert!(check(&p, 5432, true, NLB)
            .errors
            .iter()
            .any(|e| e.contains("no NLB subnet in us-east-1c")));
        let f = check(&p, 5432, false, NLB);
        assert!(f.errors.is_empty() && f.warnings.iter().any(|w| w.contains("us-east-1c")));

        let mut p = placement();
        p.publicly_accessible = true;
        p.multi_az = Some(false);
        let f = check(&p, 5432, false, NLB);
        assert!(f.errors.is_empty());
        assert_eq!(f.warnings.len(), 2);
    }
}
