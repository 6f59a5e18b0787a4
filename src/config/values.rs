//! Parsers for single configuration values. Each returns what was expected on failure, and
//! the caller adds the key.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub fn duration(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|_| {
        format!("expected a duration such as \"500ms\", \"1s\" or \"5m\", got {text:?}")
    })?;
    if d < min || d > max {
        return Err(format!(
            "expected a duration between {} and {}, got {text:?}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

pub fn integer_in<T: TryFrom<i64>>(value: i64, min: i64, max: i64) -> Result<T, String> {
    if value < min || value > max {
        return Err(format!(
            "expected a whole number from {min} to {max}, got {value}"
        ));
    }
    T::try_from(value).map_err(|_| format!("expected a whole number from {min} to {max}"))
}

/// A rate per second within bounds.
pub fn rate(value: f64, min: f64, max: f64) -> Result<f64, String> {
    if !value.is_finite() || value < min || value > max {
        return Err(format!(
            "expected a rate per second from {min} to {max}, got {value}"
        ));
    }
    Ok(value)
}

/// `ip:port`, `[v6]:port`, or a bare IP (port 53).
pub fn nameserver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("expected \"ip\" or \"ip:port\" (e.g. \"169.254.169.253:53\"), got {text:?}")
        })
}

pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .map_err(|_| format!("expected \"ip:port\" (e.g. \"127.0.0.1:9187\"), got {text:?}"))
}

/// A DNS hostname (RFC 1123 labels) or an IP literal.
pub fn hostname(text: &str) -> Result<String, String> {
    let name = text.trim_end_matches('.');
    if name.parse::<IpAddr>().is_ok() {
        return Ok(name.to_string());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "expected a DNS hostname such as \"mydb.abc123.us-east-1.rds.amazonaws.com\", got {text:?}"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// RDS identifiers: 1-63 letters, digits or hyphens, starting with a letter.
pub fn rds_identifier(text: &str) -> Result<String, String> {
    let ok = text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.ends_with('-')
        && !text.contains("--");
    if !ok {
        return Err(format!(
            "expected an RDS identifier (letters, digits, hyphens; starts with a letter), got {text:?}"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// Names used in logs, metrics and AWS tags: short, and safe in all three.
pub fn name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 32
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(format!(
            "expected 1-32 letters, digits, '-' or '_' starting with a letter or digit, got {text:?}"
        ));
    }
    Ok(text.to_string())
}

/// A bootstrap name: it becomes part of ELBv2 resource names (`pglink-NAME`, at most 32
/// characters of letters, digits and hyphens).
pub fn stack_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 25
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if !ok {
        return Err(format!(
            "expected 1-25 letters, digits or hyphens (it names AWS resources pglink-NAME), got {text:?}"
        ));
    }
    Ok(text.to_string())
}

/// `aws` prefixed IDs such as `vpc-0abc`, `subnet-0abc`, `sg-0abc`, `i-0abc`.
pub fn aws_id(text: &str, prefix: &str) -> Result<String, String> {
    let rest = text.strip_prefix(prefix).and_then(|r| r.strip_prefix('-'));
    match rest {
        Some(r) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(text.into()),
        _ => Err(format!(
            "expected an ID like \"{prefix}-0123456789abcdef0\", got {text:?}"
        )),
    }
}

/// An AWS API endpoint override: `https://HOST[:PORT][/...]`, or `http://` to a loopback
/// host only (an emulator on this machine). Over clear text, every request's signature and
/// a role's session token cross the network readable; `allow_clear_text` is the explicit
/// opt-out for an emulator on another host.
pub fn endpoint_url(url: &str, allow_clear_text: bool) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(h, _)| h),
        None => host.split(':').next().unwrap_or_default(),
    };
    if !matches!(scheme, "http" | "https") || host.is_empty() {
        return Err(format!("expected an http:// or https:// URL, got {url:?}"));
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if scheme == "http" && !loopback && !allow_clear_text {
        return Err(format!(
            "expected https:// or a loopback host, got {url:?}: over http:// signed requests and session tokens cross the network in clear text (set aws.allow_clear_text_endpoint = true for an emulator on another host)"
        ));
    }
    Ok(url.to_string())
}

/// `arn:PARTITION:iam::ACCOUNT:root|role/..|user/..`: one account, role or user. Never a
/// wildcard: `*` would let every AWS account create an endpoint to the database (and
/// `accept` accept it), and a `*` inside an ARN names no principal AWS could check.
/// A bare account ID is refused with its `root` ARN as the fix: the API takes ARNs only.
/// https://docs.aws.amazon.com/vpc/latest/privatelink/configure-endpoint-service.html#add-remove-permissions
pub fn principal_arn(text: &str) -> Result<String, String> {
    let example = "\"arn:aws:iam::346425330055:role/MTPL_Admin\"";
    if text.contains(['*', '?']) {
        return Err(format!(
            "expected one IAM principal ARN such as {example}, got {text:?}: a wildcard would open the database to principals nobody named"
        ));
    }
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected an IAM principal ARN, got the account ID {text:?}: write \"arn:aws:iam::{text}:root\" for the whole account"
        ));
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (*resource == "root"
                    || resource.strip_prefix("role/").is_some_and(|n| !n.is_empty())
                    || resource.strip_prefix("user/").is_some_and(|n| !n.is_empty())) =>
        {
            Ok(text.into())
        }
        _ => Err(format!(
            "expected an IAM principal ARN (an account's root, a role or a user) such as {example}, got {text:?}"
        )),
    }
}

/// An IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`, split into its
/// partition and account. Name characters and lengths from
/// https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html
pub fn role_arn(text: &str) -> Result<(String, String), String> {
    let expected = || {
        format!("expected an IAM role ARN such as \"arn:aws:iam::123456789012:role/pglink-sync\", got {text:?}")
    };
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let ["arn", partition, "iam", "", account, resource] = parts.as_slice() else {
        return Err(expected());
    };
    let Some(path_and_name) = resource.strip_prefix("role/") else {
        return Err(expected());
    };
    let role_name = path_and_name.rsplit('/').next().unwrap_or("");
    let name_ok = (1..=64).contains(&role_name.len())
        && role_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    // IAM allows `*` and `?` in a path, but the ARN goes into the daemon's generated policy
    // (sts:AssumeRole), where they are wildcards: refused.
    let path_ok = path_and_name.len() <= 512 + 64
        && path_and_name
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'*' && b != b'?');
    let ok = partition.starts_with("aws")
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name_ok
        && path_ok;
    if !ok {
        return Err(expected());
    }
    Ok((partition.to_string(), account.to_string()))
}

/// An STS external ID: 2-1224 characters of letters, digits and `+=,.@:/-_`
/// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
pub fn external_id(text: &str) -> Result<String, String> {
    let ok = (2..=1224).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b));
    if !ok {
        return Err(format!(
            "expected 2-1224 letters, digits or +=,.@:/-_ (the ID the role's trust policy requires), got {text:?}"
        ));
    }
    Ok(text.to_string())
}

/// The partition a region belongs to, from its prefix.
/// https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html
pub fn partition_of(region: &str) -> &'static str {
    const PREFIXES: &[(&str, &str)] = &[
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("eu-isoe-", "aws-iso-e"),
        ("eusc-", "aws-eusc"),
        ("us-iso-", "aws-iso"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

/// An AWS region code such as `us-east-1`, `eu-central-2` or `us-gov-west-1`.
pub fn region(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if !ok {
        return Err(format!(
            "expected a region such as \"us-east-1\", got {text:?}"
        ));
    }
    Ok(text.to_string())
}

pub fn ip(text: &str) -> Result<IpAddr, String> {
    text.parse::<IpAddr>()
        .map_err(|_| format!("expected an IP address such as \"10.20.0.15\", got {text:?}"))
}

/// The account of an IAM principal ARN (`arn:aws:iam::ACCOUNT:...`).
pub fn principal_account(principal: &str) -> Option<&str> {
    let mut parts = principal.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(_), Some("iam"), Some(""), Some(account)) if account.len() == 12 => {
            Some(account)
        }
        _ => None,
    }
}

/// Names of Lattice resources: 3-40 characters of `a-z`, `0-9` and `-`, neither starting
/// nor ending with `-`, no `--`, not starting with `rgw-` or `rcfg-` (the service's own
/// prefixes). From the VPC Lattice API model (CreateResourceGateway, CreateResourceConfiguration).
pub fn lattice_name_problem(name: &str) -> Option<String> {
    let len = name.len();
    if !(3..=40).contains(&len) {
        return Some(format!("{len} characters; expected 3 to 40"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "{c:?} is not allowed; expected lowercase letters, digits and '-'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Some("'-' at either end or twice in a row is not allowed".into());
    }
    if name.starts_with("rgw-") || name.starts_with("rcfg-") {
        return Some("names starting with rgw- or rcfg- are AWS's".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_are_bounded() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(3600));
        assert_eq!(duration("500ms", min, max), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m", min, max), Ok(Duration::from_secs(120)));
        assert!(duration("fast", min, max).unwrap_err().contains("\"fast\""));
        assert!(duration("1ms", min, max).unwrap_err().contains("between"));
        assert!(duration("2h", min, max).is_err());
    }

    #[test]
    fn nameservers_take_any_port() {
        assert_eq!(
            nameserver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(nameserver("10.0.0.2"), Ok("10.0.0.2:53".parse().unwrap()));
        assert_eq!(nameserver("[::1]:53"), Ok("[::1]:53".parse().unwrap()));
        assert!(nameserver("dns.google").is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            hostname("Analytics.abc.us-east-1.rds.amazonaws.com."),
            Ok("analytics.abc.us-east-1.rds.amazonaws.com".into())
        );
        assert_eq!(hostname("10.1.2.3"), Ok("10.1.2.3".into()));
        for bad in ["", "a..b", "-a.b", "a_b.c", "a b", &"x".repeat(64)] {
            assert!(hostname(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn identifiers_and_principals() {
        assert!(rds_identifier("analytics-1").is_ok());
        assert!(rds_identifier("1db").is_err());
        assert!(rds_identifier("a--b").is_err());
        assert!(aws_id("vpc-0abc", "vpc").is_ok());
        assert!(aws_id("vpc-", "vpc").is_err());
        assert!(aws_id("subnet-xyz", "subnet").is_err());
        assert!(principal_arn("arn:aws:iam::346425330055:role/MTPL_Admin").is_ok());
        assert!(principal_arn("arn:aws:iam::346425330055:root").is_ok());
        assert!(principal_arn("arn:aws:iam::3464:root").is_err());
        assert!(principal_arn("346425330055").is_err());
        for ok in [
            "http://127.0.0.1:5000",
            "http://127.1.2.3",
            "http://[::1]:5000/",
            "http://localhost:4566",
            "https://elasticloadbalancing.us-east-1.amazonaws.com",
            "https://10.0.0.5:8443",
        ] {
            assert_eq!(endpoint_url(ok, false).as_deref(), Ok(ok));
        }
        for clear in [
            "http://10.0.0.5:5000",
            "http://moto.internal",
            "http://user@example.com/",
        ] {
            assert!(endpoint_url(clear, false)
                .unwrap_err()
                .contains("clear text"));
            assert!(endpoint_url(clear, true).is_ok());
        }
        for bad in [
            "ftp://x",
            "127.0.0.1:5000",
            "http://",
            "https:///path",
            "http://[::1",
        ] {
            assert!(endpoint_url(bad, true).is_err(), "{bad}");
        }
        for wildcard in [
            "*",
            "arn:aws:iam::*:root",
            "arn:aws:iam::346425330055:role/*",
        ] {
            let e = principal_arn(wildcard).unwrap_err();
            assert!(e.contains("wildcard"), "{e}");
        }
        assert!(principal_arn("arn:aws:iam::346425330055:group/admins").is_err());
        assert!(principal_arn("arn:aws:iam::346425330055:role/").is_err());
        assert!(principal_arn("arn:aws-us-gov:iam::346425330055:root").is_ok());
        assert!(name("analytics_1").is_ok());
        assert!(name("").is_err());
        assert!(name("has space").is_err());
    }

    #[test]
    fn roles_external_ids_and_regions() {
        assert_eq!(
            role_arn("arn:aws:iam::111122223333:role/pglink-sync"),
            Ok(("aws".into(), "111122223333".into()))
        );
        assert_eq!(
            role_arn("arn:aws-us-gov:iam::111122223333:role/ops/pglink@eu"),
            Ok(("aws-us-gov".into(), "111122223333".into()))
        );
        for bad in [
            "arn:aws:iam::111122223333:user/pglink",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::1111:role/x",
            "arn:aws:sts::111122223333:role/x",
            "arn:aws:iam::111122223333:role/has space",
            &format!("arn:aws:iam::111122223333:role/{}", "r".repeat(65)),
        ] {
            assert!(role_arn(bad).is_err(), "{bad:?} accepted");
        }
        assert!(external_id("tenant-42:prod/db").is_ok());
        assert!(external_id("x").is_err());
        assert!(external_id("has space").is_err());
        assert!(external_id(&"x".repeat(1225)).is_err());
        assert!(region("us-east-1").is_ok());
        assert!(region("us-gov-west-1").is_ok());
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("eusc-de-east-1"), "aws-eusc");
        assert_eq!(partition_of("eu-west-1"), "aws");
        for bad in ["useast1", "us-east", "US-EAST-1", "us--1", "us-east-1a"] {
            assert!(region(bad).is_err(), "{bad:?} accepted");
        }
    }
}
