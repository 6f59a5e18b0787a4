//! A request as the strict rules read it: the Query-protocol action and form, and
//! whether it is meant for ELBv2.

use std::collections::{BTreeMap, HashSet};

use hyper::header::{HeaderMap, AUTHORIZATION};

/// One request as the rules see it: the action and its decoded form.
pub struct Call {
    pub action: Option<String>,
    form: Vec<(String, String)>,
    /// ELBv2 (API version 2015-12-01), not EC2 or Classic ELB.
    pub(super) elbv2: bool,
    /// Targets moto held before a RegisterTargets, so a repeat does not restart them.
    pub(super) held_before: Option<HashSet<(String, i32)>>,
}

/// One `Targets.member.N` of a request.
#[derive(Clone, Debug)]
pub struct Target {
    pub id: String,
    pub port: Option<i32>,
    pub zone: Option<String>,
}

impl Call {
    /// Reads the Query-protocol form body (else the query string) and the SigV4 scope.
    pub fn parse(body: &str, query: Option<&str>, headers: &HeaderMap) -> Call {
        let mut form = form_pairs(body);
        if !form.iter().any(|(k, _)| k == "Action") {
            form = form_pairs(query.unwrap_or(""));
        }
        let scope = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("/elasticloadbalancing/aws4_request"));
        let mut call = Call {
            action: None,
            form,
            elbv2: false,
            held_before: None,
        };
        call.action = call.get("Action").map(str::to_string);
        // Classic ELB signs with the same service name but says Version=2012-06-01.
        call.elbv2 = match call.get("Version") {
            Some(v) => v == "2015-12-01",
            None => scope,
        };
        call
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        let mut hits = self.form.iter().filter(|(k, _)| k == key);
        hits.next().map(|(_, v)| v.as_str())
    }

    /// Members of a list, `List.member.N[.Field]`, in N order; a member's fields by
    /// name, `""` for a scalar member.
    fn members(&self, list: &str) -> Vec<BTreeMap<String, String>> {
        let prefix = format!("{list}.member.");
        let mut by_n: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in &self.form {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
            if let Ok(n) = n.parse() {
                let member = by_n.entry(n).or_default();
                member.insert(field.to_string(), v.clone());
            }
        }
        by_n.into_values().collect()
    }

    /// An EC2 Query list, `Name.N`, in N order.
    pub(super) fn numbered(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.");
        let mut by_n: BTreeMap<u32, String> = BTreeMap::new();
        for (k, v) in &self.form {
            if let Some(n) = k.strip_prefix(&prefix).and_then(|n| n.parse().ok()) {
                by_n.insert(n, v.clone());
            }
        }
        by_n.into_values().collect()
    }

    /// The first value of the EC2 filter `name` (`Filter.N.Name` / `Filter.N.Value.1`).
    pub(super) fn filter(&self, name: &str) -> Option<String> {
        let (key, _) = self
            .form
            .iter()
            .find(|(k, v)| k.starts_with("Filter.") && k.ends_with(".Name") && v == name)?;
        let n = key.strip_suffix(".Name")?;
        self.get(&format!("{n}.Value.1")).map(str::to_string)
    }

    pub(super) fn targets(&self) -> Vec<Target> {
        let members = self.members("Targets").into_iter();
        let target = |mut m: BTreeMap<String, String>| {
            Some(Target {
                id: m.remove("Id")?,
                port: m.get("Port").and_then(|p| p.parse().ok()),
                zone: m.remove("AvailabilityZone"),
            })
        };
        members.filter_map(target).collect()
    }

    pub(super) fn subnet_ids(&self) -> Vec<String> {
        let plain = self.members("Subnets").into_iter();
        let mapped = self.members("SubnetMappings").into_iter();
        plain
            .filter_map(|mut m| m.remove(""))
            .chain(mapped.filter_map(|mut m| m.remove("SubnetId")))
            .collect()
    }
}

/// Every `key=value` of a form or query string, percent-decoded, in order.
fn form_pairs(form: &str) -> Vec<(String, String)> {
    form.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
