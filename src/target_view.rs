//! The one JSON shape of a target in every `--output json` document (plan, bootstrap):
//! `{"ip": "10.0.1.10", "port": 5432, "state": "healthy"}`. An instance target carries
//! `instance_id` in place of `ip`; `state` is null for a target not in the group (one a
//! change would register, or a dry run's first target).

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::plan::{Registered, TargetKey};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub port: u16,
    pub state: Option<String>,
}

impl TargetView {
    /// A target by its ELBv2 ID: an address, or an instance ID.
    pub fn of(id: &str, port: u16, state: Option<&str>) -> Self {
        let (ip, instance_id) = match id.parse::<IpAddr>() {
            Ok(ip) => (Some(ip.to_string()), None),
            Err(_) => (None, Some(id.to_string())),
        };
        Self {
            ip,
            instance_id,
            port,
            state: state.map(str::to_string),
        }
    }

    /// A target the group holds, in its state.
    pub fn registered(r: &Registered) -> Self {
        Self::of(&r.key.ip.to_string(), r.key.port, Some(r.state.as_str()))
    }

    /// A target not in the group (yet).
    pub fn planned(key: &TargetKey) -> Self {
        Self::of(&key.ip.to_string(), key.port, None)
    }
}

/// `10.0.1.10:5432`, `[fd00::1]:5432` or `i-0abc:5432`, for text output.
impl fmt::Display for TargetView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.ip, &self.instance_id) {
            (Some(ip), _) if ip.contains(':') => write!(f, "[{ip}]:{}", self.port),
            (Some(ip), _) => write!(f, "{ip}:{}", self.port),
            (None, id) => write!(f, "{}:{}", id.as_deref().unwrap_or_default(), self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TargetState;

    #[test]
    fn one_shape_for_addresses_and_instances() {
        let key = TargetKey::new("10.0.1.10".parse().unwrap(), 5432);
        let r = Registered {
            key,
            state: TargetState::Healthy,
        };
        assert_eq!(
            serde_json::to_value(TargetView::registered(&r)).unwrap(),
            serde_json::json!({"ip": "10.0.1.10", "port": 5432, "state": "healthy"})
        );
        assert_eq!(
            serde_json::to_value(TargetView::planned(&key)).unwrap(),
            serde_json::json!({"ip": "10.0.1.10", "port": 5432, "state": null})
        );
        let instance = TargetView::of("i-0abc", 5432, Some("initial"));
        assert_eq!(
            serde_json::to_value(&instance).unwrap(),
            serde_json::json!({"instance_id": "i-0abc", "port": 5432, "state": "initial"})
        );
        assert_eq!(instance.to_string(), "i-0abc:5432");
        assert_eq!(
            TargetView::of("fd00::1", 5432, None).to_string(),
            "[fd00::1]:5432"
        );
    }
}
