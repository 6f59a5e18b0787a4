//! Ownership by tag: every tag key pglink writes or trusts is listed here, and nothing else
//! decides whether a resource is pglink's to change.

use std::collections::BTreeMap;

pub const MANAGED_BY_KEY: &str = "pglink:managed-by";
pub const MANAGED_BY_VALUE: &str = "pglink";
pub const NAME_KEY: &str = "pglink:name";

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
}
