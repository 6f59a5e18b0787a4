//! Ownership by tag: every tag key pglink writes or trusts is listed here, and nothing else
//! decides whether a resource is pglink's to change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::plan::TargetKey;

pub const MANAGED_BY_KEY: &str = "pglink:managed-by";
pub const MANAGED_BY_VALUE: &str = "pglink";
pub const NAME_KEY: &str = "pglink:name";

/// On a group adopted with `adopt = true`, the targets it held at adoption: pglink leaves
/// them alone. Spread over `pglink:kept-targets`, `pglink:kept-targets-2`, ... because an
/// ELB tag value holds at most 256 characters.
pub const KEPT_TARGETS_KEY: &str = "pglink:kept-targets";
/// ELB tag values: at most 256 characters of letters, digits, spaces and `_.:/=+-@`
/// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_Tag.html>).
const TAG_VALUE_MAX: usize = 256;
/// At most this many tags for kept targets (a resource takes 50 tags in all).
const KEPT_TAGS_MAX: usize = 20;

/// The tags that record `kept`, as `ip@port` words; `None` when they do not fit.
pub fn kept_tags(kept: &BTreeSet<TargetKey>) -> Option<Vec<(String, String)>> {
    let mut values: Vec<String> = Vec::new();
    for key in kept {
        let word = format!("{}@{}", key.ip, key.port);
        match values.last_mut() {
            Some(v) if v.len() + 1 + word.len() <= TAG_VALUE_MAX => {
                v.push(' ');
                v.push_str(&word);
            }
            _ => values.push(word),
        }
    }
    if values.len() > KEPT_TAGS_MAX {
        return None;
    }
    Some(
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (kept_key(i), v))
            .collect(),
    )
}

fn kept_key(i: usize) -> String {
    match i {
        0 => KEPT_TARGETS_KEY.to_string(),
        n => format!("{KEPT_TARGETS_KEY}-{}", n + 1),
    }
}

/// The kept targets a group's tags record; words that do not parse are ignored.
pub fn kept_targets(tags: &BTreeMap<String, String>) -> BTreeSet<TargetKey> {
    (0..KEPT_TAGS_MAX)
        .map_while(|i| tags.get(&kept_key(i)))
        .flat_map(|v| v.split_whitespace())
        .filter_map(|word| {
            let (ip, port) = word.rsplit_once('@')?;
            Some(TargetKey::new(
                ip.parse::<IpAddr>().ok()?,
                port.parse().ok()?,
            ))
        })
        .collect()
}

/// The tags that mark a resource as created (or adopted) by pglink under `name`.
pub fn ownership_tags(name: &str) -> Vec<(String, String)> {
    vec![
        (MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string()),
        (NAME_KEY.to_string(), name.to_string()),
    ]
}

/// A resource is pglink's when it carries the managed-by tag.
pub fn is_managed(tags: &BTreeMap<String, String>) -> bool {
    tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

/// The `pglink:name` a managed resource was created under, if any.
pub fn owner_name(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.get(NAME_KEY).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_needs_the_exact_tag() {
        let mut tags: BTreeMap<String, String> = ownership_tags("analytics").into_iter().collect();
        assert!(is_managed(&tags));
        assert_eq!(owner_name(&tags), Some("analytics"));
        tags.insert(MANAGED_BY_KEY.into(), "terraform".into());
        assert!(!is_managed(&tags));
        assert!(!is_managed(&BTreeMap::new()));
    }

    #[test]
    fn kept_targets_round_trip_through_tags_of_legal_size() {
        let kept: BTreeSet<TargetKey> = (0..40u8)
            .map(|i| TargetKey::new(IpAddr::from([10, 0, 1, i]), 5432))
            .chain([TargetKey::new("fd00::1".parse().unwrap(), 6432)])
            .collect();
        let tags = kept_tags(&kept).unwrap();
        assert!(tags.len() > 1, "40 addresses need more than one tag");
        assert_eq!(tags[1].0, "pglink:kept-targets-2");
        let legal = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
        for (_, v) in &tags {
            assert!(v.len() <= TAG_VALUE_MAX && v.chars().all(legal), "{v}");
        }
        let map: BTreeMap<String, String> = tags.into_iter().collect();
        assert_eq!(kept_targets(&map), kept);
        let too_many: BTreeSet<TargetKey> = (0..2000u16)
            .map(|i| TargetKey::new(IpAddr::from([10, 0, (i / 256) as u8, i as u8]), 5432))
            .collect();
        assert_eq!(kept_tags(&too_many), None);
    }
}
