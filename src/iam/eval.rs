//! Whether a policy document allows one request: the part of IAM's evaluation that the
//! generated policies use (Allow statements; `Action`/`Resource` with `*` and `?`; the
//! string, ARN and `Null` condition operators with their `ForAllValues:`/`ForAnyValue:`
//! forms), so that tests can ask what a policy grants on pglink's resources and on others.
//! An operator it does not know denies: a test then fails instead of passing blindly.
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

use std::collections::BTreeMap;

use serde_json::Value;

/// One API call as IAM sees it: the action, every resource ARN it is authorized on (a
/// create is also authorized on its VPC, a rule on its group), and the request's context
/// keys (`aws:ResourceTag/K`, `aws:RequestTag/K`, `aws:TagKeys`, ...), each with its values.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub action: String,
    pub resources: Vec<String>,
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(action: &str, resource: &str) -> Self {
        Self {
            action: action.to_string(),
            resources: vec![resource.to_string()],
            context: BTreeMap::new(),
        }
    }

    /// Another resource the same call is authorized on.
    pub fn and(mut self, resource: &str) -> Self {
        self.resources.push(resource.to_string());
        self
    }

    pub fn with(mut self, key: &str, values: &[&str]) -> Self {
        self.context.insert(
            key.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }
}

/// The `Sid`s of the statements that allow `request` (empty: denied). Every resource of
/// the call must be allowed by some statement, as IAM requires.
pub fn allowing(policy: &Value, request: &Request) -> Vec<String> {
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut sids = Vec::new();
    for resource in &request.resources {
        let allowed: Vec<String> = statements
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .filter(|s| {
                strings(&s["Action"]).iter().any(|a| {
                    glob(
                        &a.to_ascii_lowercase(),
                        &request.action.to_ascii_lowercase(),
                    )
                })
            })
            .filter(|s| strings(&s["Resource"]).iter().any(|r| glob(r, resource)))
            .filter(|s| conditions_hold(&s["Condition"], &request.context))
            .map(|s| s["Sid"].as_str().unwrap_or_default().to_string())
            .collect();
        if allowed.is_empty() {
            return Vec::new();
        }
        sids.extend(allowed);
    }
    sids.sort();
    sids.dedup();
    sids
}

/// Every action the policy's Allow statements name, sorted, once each.
pub fn actions(policy: &Value) -> Vec<String> {
    let mut all: Vec<String> = match &policy["Statement"] {
        Value::Array(list) => list.iter().collect::<Vec<_>>(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| s["Effect"] == "Allow")
    .flat_map(|s| strings(&s["Action"]))
    .collect();
    all.sort();
    all.dedup();
    all
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

fn conditions_hold(conditions: &Value, context: &BTreeMap<String, Vec<String>>) -> bool {
    let Value::Object(operators) = conditions else {
        return conditions.is_null();
    };
    operators.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().all(|(key, wanted)| {
            // Context keys are case-insensitive in their names.
            let present = context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_slice());
            holds(operator, present, &strings(wanted))
        })
    })
}

fn holds(operator: &str, present: Option<&[String]>, wanted: &[String]) -> bool {
    let (set, base) = match operator.split_once(':') {
        Some((set @ ("ForAllValues" | "ForAnyValue"), base)) => (Some(set), base),
        _ => (None, operator),
    };
    let (base, if_exists) = match base.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (base, false),
    };
    if base == "Null" {
        let absent = present.is_none_or(<[String]>::is_empty);
        return wanted.iter().any(|w| (w == "true") == absent);
    }
    let matches = |value: &str| -> Option<bool> {
        Some(match base {
            "StringEquals" => wanted.iter().any(|w| w == value),
            "StringEqualsIgnoreCase" => wanted.iter().any(|w| w.eq_ignore_ascii_case(value)),
            // ArnEquals and ArnLike both take wildcards in each ARN component.
            "StringLike" | "ArnLike" | "ArnEquals" => wanted.iter().any(|w| glob(w, value)),
            "StringNotEquals" => wanted.iter().all(|w| w != value),
            "StringNotLike" => wanted.iter().all(|w| !glob(w, value)),
            "Bool" => wanted.iter().any(|w| w.eq_ignore_ascii_case(value)),
            _ => return None,
        })
    };
    let Some(values) = present else {
        // A missing key: vacuously true for ForAllValues, ...IfExists and the negated
        // operators (nothing to differ from), false otherwise.
        return set == Some("ForAllValues") || if_exists || base.contains("Not");
    };
    let results: Option<Vec<bool>> = values.iter().map(|v| matches(v)).collect();
    let Some(results) = results else {
        return false; // an operator this evaluator does not know: deny
    };
    match set {
        Some("ForAllValues") => results.iter().all(|r| *r),
        Some(_) => results.iter().any(|r| *r),
        // A single-valued key: exactly one value, and it matches.
        None => results.len() == 1 && results[0],
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(
            "arn:aws:ec2:*:*:security-group/*",
            "arn:aws:ec2:us-east-1:1:security-group/sg-1"
        ));
        assert!(glob("pglink:kept-targets*", "pglink:kept-targets-2"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("targetgroup/pglink-a/*", "targetgroup/pglink-ab/1"));
        assert!(glob("*", ""));
    }

    #[test]
    fn conditions() {
        let doc: Value = serde_json::from_str(
            r#"{"Statement": [{"Sid": "S", "Effect": "Allow", "Action": "elasticloadbalancing:AddTags",
                "Resource": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/a/1",
                "Condition": {"StringEquals": {"aws:RequestTag/pglink:managed-by": "pglink"},
                              "ForAllValues:StringLike": {"aws:TagKeys": ["pglink:managed-by", "pglink:kept-targets*"]}}}]}"#,
        )
        .unwrap();
        let arn = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/a/1";
        let ok = Request::new("elasticloadbalancing:AddTags", arn)
            .with("aws:RequestTag/pglink:managed-by", &["pglink"])
            .with(
                "aws:TagKeys",
                &["pglink:managed-by", "pglink:kept-targets-2"],
            );
        assert_eq!(allowing(&doc, &ok), vec!["S"]);
        let other_key = ok
            .clone()
            .with("aws:TagKeys", &["pglink:managed-by", "owner"]);
        assert!(allowing(&doc, &other_key).is_empty());
        let no_tag = Request::new("elasticloadbalancing:AddTags", arn)
            .with("aws:TagKeys", &["pglink:managed-by"]);
        assert!(allowing(&doc, &no_tag).is_empty());
        let elsewhere = Request {
            resources: vec![arn.replace("/a/", "/b/")],
            ..ok.clone()
        };
        assert!(allowing(&doc, &elsewhere).is_empty());
        // A call on two resources needs both allowed.
        assert!(allowing(&doc, &ok.clone().and(&arn.replace("/a/", "/b/"))).is_empty());
        let unknown: Value = serde_json::from_str(
            r#"{"Statement": {"Sid": "U", "Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"NumericLessThan": {"x": "1"}}}}"#,
        )
        .unwrap();
        assert!(allowing(&unknown, &Request::new("a:b", "c").with("x", &["0"])).is_empty());
    }
}
