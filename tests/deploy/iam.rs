//! IAM: every AWS SDK call in the sources is allowed by the matching policy, and the
//! daemon's policy grants nothing it does not call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{files_under, json, root};

/// AWS SDK calls the daemon's adapters make at least; a scanner that finds fewer is broken.
const MIN_DAEMON_CALLS: usize = 8;

/// Client fields on `RegionClients` (and the like) and the IAM service prefix of each.
const CLIENT_FIELDS: &[(&str, &str)] = &[
    ("elb", "elasticloadbalancing"),
    ("ec2", "ec2"),
    ("rds", "rds"),
    ("autoscaling", "autoscaling"),
    ("iam", "iam"),
    ("lattice", "vpc-lattice"),
    ("ram", "ram"),
];

/// Methods on an SDK client that are not API operations.
const NOT_OPERATIONS: &[&str] = &["clone", "config", "to_owned", "as_ref"];

/// Words whose IAM spelling is not just a capitalised snake_case word.
const WORD_SPELLINGS: &[(&str, &str)] = &[("db", "DB"), ("vpc", "Vpc")];

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every client (`.field` on a struct such as `RegionClients`, or a bare variable such as
/// `ec2: &aws_sdk_ec2::Client`) followed, possibly across whitespace and newlines, by
/// `.snake_case_method(`: returns (IAM service prefix, SDK method name), in source order.
/// Paths (`aws_sdk_ec2::...`, `crate::ec2`) are not clients.
fn sdk_calls(source: &str) -> Vec<(&'static str, String)> {
    let bytes = source.as_bytes();
    let ident_at = |start: usize| {
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        end
    };
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut calls = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // Only at the start of an identifier.
        if !is_ident(bytes[i]) || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let end = ident_at(i);
        let word = &source[i..end];
        let before = source[..i].trim_end().as_bytes().last().copied();
        let client = CLIENT_FIELDS.iter().find(|(f, _)| *f == word);
        if let (Some(&(_, service)), false) = (client, before == Some(b':')) {
            let dot = skip_space(end);
            if dot < bytes.len() && bytes[dot] == b'.' {
                let method_start = skip_space(dot + 1);
                let method_end = ident_at(method_start);
                let method = &source[method_start..method_end];
                let snake = method.starts_with(|c: char| c.is_ascii_lowercase())
                    && method
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                let paren = skip_space(method_end);
                if snake
                    && paren < bytes.len()
                    && bytes[paren] == b'('
                    && !NOT_OPERATIONS.contains(&method)
                {
                    calls.push((service, method.to_string()));
                }
            }
        }
        i = end;
    }
    calls
}

/// `describe_db_instances` -> `DescribeDBInstances`.
fn action_name(method: &str) -> String {
    method
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|word| {
            if let Some((_, spelled)) = WORD_SPELLINGS.iter().find(|(w, _)| *w == word) {
                return (*spelled).to_string();
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `service:Action` for every SDK call in the given files, with the files it appears in.
fn required_actions(files: &[PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let mut actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let rel = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        for (service, method) in sdk_calls(&source) {
            actions
                .entry(format!("{service}:{}", action_name(&method)))
                .or_default()
                .insert(rel.clone());
        }
        for (provider, action) in CREDENTIAL_PROVIDERS {
            if source.contains(provider) {
                actions
                    .entry(action.to_string())
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    actions
}

/// Calls the SDK makes for a credentials provider the code builds, not through a client.
const CREDENTIAL_PROVIDERS: &[(&str, &str)] = &[("AssumeRoleProvider", "sts:AssumeRole")];

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn statements(policy: &Value) -> Vec<Value> {
    match &policy["Statement"] {
        Value::Array(s) => s.clone(),
        Value::Object(_) => vec![policy["Statement"].clone()],
        _ => Vec::new(),
    }
}

/// Actions (lower-cased: IAM action names are case-insensitive) some Allow statement names.
fn allowed_actions(policy: &Value) -> BTreeSet<String> {
    statements(policy)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Action"]))
        .map(|a| a.to_lowercase())
        .collect()
}

/// Every file with an AWS call the daemon makes: the adapters, the start-up batches, the
/// ELBv2 tag reader they share with bootstrap, and the targets' roles (STS).
const DAEMON_SOURCES: [&str; 5] = [
    "src/targets.rs",
    "src/discover.rs",
    "src/prefetch.rs",
    "src/bootstrap/tags.rs",
    "src/roles.rs",
];

fn daemon_sources() -> Vec<PathBuf> {
    DAEMON_SOURCES.iter().map(|p| root().join(p)).collect()
}

#[test]
fn scanner_finds_calls_across_lines_and_ignores_the_rest() {
    let source = r#"
        let out = self
            .clients
            .elb
            .describe_target_health()
            .send();
        clients.ec2.create_security_group().group_name("x");
        c.rds . describe_db_subnet_groups ();
        c.autoscaling
            .attach_load_balancer_target_groups()
            .send();
        let host = "db.abc.us-east-1.rds.amazonaws.com";
        let client = self.clients.elb.clone();
        let field = self.elb_client.describe_tags();
        let x = settings.rds;
        let page = ec2
            .describe_vpc_endpoint_connections()
            .send();
        pending(ec2, service_id);
        let out = aws_sdk_ec2::Client::describe_vpcs(&client);
        let y = crate::rds.describe_db_clusters();
    "#;
    let calls: Vec<String> = sdk_calls(source)
        .into_iter()
        .map(|(service, method)| format!("{service}:{}", action_name(&method)))
        .collect();
    assert_eq!(
        calls,
        [
            "elasticloadbalancing:DescribeTargetHealth",
            "ec2:CreateSecurityGroup",
            "rds:DescribeDBSubnetGroups",
            "autoscaling:AttachLoadBalancerTargetGroups",
            "ec2:DescribeVpcEndpointConnections",
        ]
    );
}

#[test]
fn method_names_become_iam_action_names() {
    for (method, action) in [
        ("describe_target_health", "DescribeTargetHealth"),
        ("describe_db_instances", "DescribeDBInstances"),
        ("describe_db_clusters", "DescribeDBClusters"),
        ("describe_db_subnet_groups", "DescribeDBSubnetGroups"),
        ("describe_vpcs", "DescribeVpcs"),
        (
            "create_vpc_endpoint_service_configuration",
            "CreateVpcEndpointServiceConfiguration",
        ),
        ("add_tags", "AddTags"),
        ("create_service_linked_role", "CreateServiceLinkedRole"),
    ] {
        assert_eq!(action_name(method), action, "{method}");
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_pglink");
const EXAMPLE: &str = "deploy/iam/example.toml";
const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/pglink-target";

/// `pglink iam-policy --role daemon [--role-arn ARN] -c CONFIG`, which must exit 0.
fn generated(config: &Path, role_arn: Option<&str>) -> String {
    match role_arn {
        Some(arn) => iam_policy(config, &["--role", "daemon", "--role-arn", arn]),
        None => iam_policy(config, &["--role", "daemon"]),
    }
}

/// `pglink iam-policy ARGS -c CONFIG`, which must exit 0: the policy it prints.
fn iam_policy(config: &Path, extra: &[&str]) -> String {
    let mut args = vec!["iam-policy", "-c", config.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = Command::new(BIN)
        .args(&args)
        .env_remove("PGLINK_CONFIG")
        .output()
        .expect("run pglink");
    assert_eq!(
        out.status.code(),
        Some(0),
        "pglink {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 policy")
}

#[test]
fn the_example_policies_are_what_iam_policy_prints() {
    let config = root().join(EXAMPLE);
    for (file, args) in [
        ("deploy/iam/daemon-policy.json", vec!["--role", "daemon"]),
        (
            "deploy/iam/target-role-policy.json",
            vec!["--role", "daemon", "--role-arn", TARGET_ROLE],
        ),
        (
            "deploy/iam/bootstrap-policy.json",
            vec!["--role", "bootstrap", "--account", "111111111111"],
        ),
        ("deploy/iam/drill-policy.json", vec!["--role", "drill"]),
    ] {
        check_example(&config, file, &args);
    }
    check_example(
        &root().join(RESOURCE_EXAMPLE),
        "deploy/iam/bootstrap-resource-policy.json",
        &["--role", "bootstrap", "--account", "111111111111"],
    );
}

const RESOURCE_EXAMPLE: &str = "deploy/iam/resource-example.toml";

fn check_example(config: &Path, file: &str, args: &[&str]) {
    let on_disk = std::fs::read_to_string(root().join(file)).expect(file);
    assert_eq!(
        iam_policy(config, args),
        on_disk,
        "{file} is out of date: regenerate it with the command in {}",
        config.display()
    );
}

/// Daemon calls needed only by some configurations, and the target line that needs each.
const INSTANCE: &str = "db_instance = \"orders\"\n";
const CLUSTER: &str = "db_cluster = \"ledger\"\n";
const READERS: &str = "db_cluster = \"ledger\"\nrole = \"readers\"\n";
const CUSTOM: &str = "db_cluster_endpoint = \"ledger-analytics\"\n";
const PROXY: &str = "db_proxy = \"ledger-proxy\"\n";
const PROXY_ENDPOINT: &str = "db_proxy = \"ledger-proxy\"\nproxy_endpoint = \"ro\"\n";
const ADOPT: &str = "adopt = true\n";
const ROLE: &str = "role_arn = \"arn:aws:iam::222222222222:role/pglink-target\"\n";

/// Actions only some config shapes need, with those shapes.
const SHAPE_CALLS: &[(&str, &[&str])] = &[
    ("rds:DescribeDBInstances", &[INSTANCE, READERS, CUSTOM]),
    ("rds:DescribeDBClusters", &[CLUSTER, READERS, CUSTOM]),
    ("rds:DescribeDBClusterEndpoints", &[CUSTOM]),
    ("rds:DescribeDBProxies", &[PROXY, PROXY_ENDPOINT]),
    ("rds:DescribeDBProxyEndpoints", &[PROXY_ENDPOINT]),
    ("elasticloadbalancing:AddTags", &[ADOPT]),
    ("sts:AssumeRole", &[ROLE]),
];

/// Each configuration shape gets exactly the actions its calls need: every call the daemon
/// makes for it, and no action for a shape it does not have.
#[test]
fn generated_daemon_policies_allow_exactly_the_calls_of_each_config_shape() {
    let required = required_actions(&daemon_sources());
    let calls: usize = daemon_sources()
        .iter()
        .map(|p| sdk_calls(&std::fs::read_to_string(p).unwrap()).len())
        .sum();
    assert!(
        calls >= MIN_DAEMON_CALLS,
        "found only {calls} AWS SDK calls in {DAEMON_SOURCES:?} \
         (expected at least {MIN_DAEMON_CALLS}): the call scanner is broken. Found: {:?}",
        required.keys().collect::<Vec<_>>()
    );
    for (action, _) in SHAPE_CALLS {
        assert!(
            required.contains_key(*action),
            "{action} is no longer called: update SHAPE_CALLS"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let hostname = "endpoint = \"db.c9akciq32.us-east-1.rds.amazonaws.com\"\n";
    let mut lines = vec![hostname];
    for (_, shapes) in SHAPE_CALLS {
        for line in *shapes {
            if !lines.contains(line) {
                lines.push(line);
            }
        }
    }
    for line in lines {
        let shape = line.trim();
        let source = if line.starts_with("db_") || line == hostname {
            ""
        } else {
            hostname
        };
        let text = format!(
            "[[targets]]\nname = \"t\"\n{source}{line}target_group = \"arn:aws:elasticloadbalancing:us-east-1:222222222222:targetgroup/pglink-t/0123456789abcdef\"\n"
        );
        let path = dir.path().join("shape.toml");
        std::fs::write(&path, &text).unwrap();
        let mut allowed = allowed_actions(&serde_json::from_str(&generated(&path, None)).unwrap());
        if line.starts_with("role_arn") {
            let role = serde_json::from_str(&generated(&path, Some(TARGET_ROLE))).unwrap();
            allowed.extend(allowed_actions(&role));
        }
        let wanted: BTreeSet<String> = required
            .keys()
            .filter(|a| {
                SHAPE_CALLS
                    .iter()
                    .all(|(only, shapes)| only != *a || shapes.contains(&line))
            })
            .map(|a| a.to_lowercase())
            .collect();
        assert_eq!(allowed, wanted, "config shape {shape}:\n{text}");
    }
}

/// Bootstrap calls that only some database kinds make.
const KIND_CALLS: &[(&str, &str)] = &[
    (
        "autoscaling:AttachLoadBalancerTargetGroups",
        "autoscaling_group",
    ),
    (
        "autoscaling:DetachLoadBalancerTargetGroups",
        "autoscaling_group",
    ),
    // Every kind with the database's group given; an on-premises `ip` has none.
    (
        "ec2:AuthorizeSecurityGroupIngress",
        "not ip without a group",
    ),
    ("ec2:RevokeSecurityGroupIngress", "not ip without a group"),
];

#[test]
fn generated_bootstrap_policies_allow_every_call_bootstrap_makes() {
    let resource_mode = root().join("src/bootstrap/resource");
    let files: Vec<PathBuf> = files_under(&root().join("src/bootstrap"), ".rs")
        .into_iter()
        .filter(|f| !f.starts_with(&resource_mode))
        .collect();
    let required = required_actions(&files);
    assert!(
        required.len() >= 30,
        "found only {} bootstrap actions: the call scanner is broken",
        required.len()
    );
    let dir = tempfile::tempdir().unwrap();
    for (kind, database) in [
        ("db_instance", "{ db_instance = \"orders\" }"),
        ("db_cluster", "{ db_cluster = \"ledger\" }"),
        ("ec2_instance", "{ ec2_instance = \"i-0123456789abcdef0\" }"),
        ("autoscaling_group", "{ autoscaling_group = \"pg-asg\" }"),
        ("ip", "{ ip = \"10.1.2.3\" }"),
        ("ip without a group", "{ ip = \"10.1.2.3\" }"),
    ] {
        let group = if kind == "ip without a group" {
            ""
        } else {
            "database_security_group_id = \"sg-0123456789abcdef0\"\n"
        };
        let text = format!(
            "[aws]\nregion = \"eu-west-1\"\n\n[bootstrap]\nname = \"orders\"\ndatabase = {database}\n{group}allowed_principals = [\"arn:aws:iam::346425330055:root\"]\n"
        );
        let path = dir.path().join("bootstrap.toml");
        std::fs::write(&path, &text).unwrap();
        let policy: Value =
            serde_json::from_str(&iam_policy(&path, &["--role", "bootstrap"])).unwrap();
        let allowed = allowed_actions(&policy);
        let needed = |action: &str| match KIND_CALLS.iter().find(|(a, _)| *a == action) {
            Some((_, "not ip without a group")) => kind != "ip without a group",
            Some((_, only)) => *only == kind,
            None => true,
        };
        let missing: Vec<&String> = required
            .keys()
            .filter(|a| needed(a) && !allowed.contains(&a.to_lowercase()))
            .collect();
        assert!(
            missing.is_empty(),
            "database kind {kind}: not allowed: {missing:?}"
        );
        let extra: Vec<&(&str, &str)> = KIND_CALLS
            .iter()
            .filter(|(a, _)| !needed(a) && allowed.contains(&a.to_lowercase()))
            .collect();
        assert!(extra.is_empty(), "database kind {kind}: allows {extra:?}");
    }
}

/// The drill's policy allows every call `pglink drill` makes (it fails over, reads RDS's
/// events and, syncing the target itself, makes the daemon's calls for it).
#[test]
fn the_drill_policy_allows_every_call_the_drill_makes() {
    let drill = required_actions(&[root().join("src/commands/drill.rs")]);
    for action in [
        "rds:RebootDBInstance",
        "rds:FailoverDBCluster",
        "rds:DescribeEvents",
    ] {
        assert!(
            drill.contains_key(action),
            "the call scanner missed {action}: {drill:?}"
        );
    }
    let policy: Value =
        serde_json::from_str(&iam_policy(&root().join(EXAMPLE), &["--role", "drill"])).unwrap();
    let allowed = allowed_actions(&policy);
    let missing: Vec<&String> = drill
        .keys()
        .filter(|a| !allowed.contains(&a.to_lowercase()))
        .collect();
    assert!(missing.is_empty(), "the drill policy lacks {missing:?}");
    for sync in [
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
    ] {
        assert!(allowed.contains(&sync.to_lowercase()), "{sync}");
    }
}

/// Files with the calls resource mode makes: its own modules and the network and security
/// group code it shares with endpoint-service mode.
fn resource_mode_sources() -> Vec<PathBuf> {
    let mut files = files_under(&root().join("src/bootstrap/resource"), ".rs");
    files.retain(|f| !f.ends_with("tests.rs") && !f.ends_with("mocks.rs"));
    files.extend(
        [
            "src/bootstrap/network.rs",
            "src/bootstrap/security_group.rs",
        ]
        .iter()
        .map(|f| root().join(f)),
    );
    files
}

/// Calls of the shared network code for database kinds resource mode refuses
/// (`ec2_instance`, `autoscaling_group`).
const NOT_IN_RESOURCE_MODE: &[&str] = &[
    "ec2:DescribeInstances",
    "autoscaling:DescribeAutoScalingGroups",
];

/// In resource mode the bootstrap policy allows every call resource mode makes, for every
/// database kind it takes, and no ELBv2 call.
#[test]
fn resource_mode_policies_allow_every_call_resource_mode_makes() {
    let required = required_actions(&resource_mode_sources());
    for action in [
        "vpc-lattice:CreateResourceGateway",
        "vpc-lattice:CreateResourceConfiguration",
        "ram:CreateResourceShare",
        "vpc-lattice:DeleteResourceEndpointAssociation",
    ] {
        assert!(
            required.contains_key(action),
            "the call scanner missed {action}: {:?}",
            required.keys().collect::<Vec<_>>()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for (kind, database) in [
        ("db_instance", "{ db_instance = \"orders\" }"),
        ("db_cluster", "{ db_cluster = \"ledger\" }"),
        ("ip", "{ ip = \"10.1.2.3\" }"),
        ("host", "{ host = \"db.example.com\" }"),
    ] {
        let text = format!(
            "[aws]\nregion = \"eu-west-1\"\n\n[bootstrap]\nname = \"orders\"\nmode = \"resource\"\ndatabase = {database}\nvpc_id = \"vpc-0123456789abcdef0\"\ndatabase_security_group_id = \"sg-0123456789abcdef0\"\nallowed_principals = [\"072088201116\"]\n"
        );
        let path = dir.path().join("resource.toml");
        std::fs::write(&path, &text).unwrap();
        let policy: Value =
            serde_json::from_str(&iam_policy(&path, &["--role", "bootstrap"])).unwrap();
        let allowed = allowed_actions(&policy);
        let missing: Vec<&String> = required
            .keys()
            .filter(|a| !NOT_IN_RESOURCE_MODE.contains(&a.as_str()))
            .filter(|a| !allowed.contains(&a.to_lowercase()))
            .collect();
        assert!(missing.is_empty(), "{kind}: not allowed: {missing:?}");
        for action in NOT_IN_RESOURCE_MODE {
            assert!(
                !allowed.contains(&action.to_lowercase()),
                "{kind}: {action}"
            );
        }
        assert!(
            !allowed
                .iter()
                .any(|a| a.starts_with("elasticloadbalancing:")),
            "{kind}: {allowed:?}"
        );
    }
}

#[test]
fn policies_grant_no_wildcard_actions_and_name_every_statement() {
    let files = files_under(&root().join("deploy/iam"), ".json");
    assert!(files.len() >= 2, "IAM policies under deploy/iam: {files:?}");
    for path in files {
        let name = path.display().to_string();
        let policy: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(policy["Version"], "2012-10-17", "{name}: Version");
        let mut sids = BTreeSet::new();
        let all = statements(&policy);
        assert!(!all.is_empty(), "{name}: no statements");
        for s in all {
            let sid = s["Sid"].as_str().unwrap_or_default().to_string();
            assert!(!sid.is_empty(), "{name}: a statement has no Sid: {s}");
            assert!(sids.insert(sid.clone()), "{name}: duplicate Sid {sid}");
            if s["Effect"] == "Allow" {
                assert!(
                    s.get("NotAction").is_none(),
                    "{name} {sid}: Allow with NotAction grants everything else"
                );
            }
            let actions = strings(&s["Action"]);
            assert!(!actions.is_empty(), "{name} {sid}: no Action");
            for action in actions {
                assert!(
                    !action.contains('*'),
                    "{name} {sid}: wildcard action {action:?}; list the actions"
                );
                assert!(
                    action
                        .split_once(':')
                        .is_some_and(|(svc, op)| !svc.is_empty()
                            && op.starts_with(|c: char| c.is_ascii_uppercase())),
                    "{name} {sid}: {action:?} is not service:Action"
                );
            }
        }
    }
}

/// parliament, a linter of IAM policies (Duo Labs), installed on first use like moto.
const PARLIAMENT_REQ: &str = "parliament==1.6.4";

/// parliament's findings above LOW that deploy/README.md ("parliament") explains: its
/// bundled action data predates keys and resource types the Service Authorization Reference
/// documents, and it judges each statement alone. (issue, text in the finding)
const PARLIAMENT_STALE: &[(&str, &str)] = &[
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "elasticloadbalancing:Scheme for action elasticloadbalancing:CreateLoadBalancer",
    ),
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "elasticloadbalancing:CreateAction for action elasticloadbalancing:AddTags",
    ),
    // ModifyListener on `listener/net/...`: parliament knows only listener/app.
    ("RESOURCE_MISMATCH", "elasticloadbalancing:ModifyListener"),
    // Statements for the second resource of a call (the VPC of CreateSecurityGroup, the new
    // rule of AuthorizeSecurityGroupIngress): parliament judges statements one by one.
    (
        "RESOURCE_MISMATCH",
        "\"action\":\"ec2:CreateSecurityGroup\"",
    ),
    (
        "RESOURCE_MISMATCH",
        "\"action\":\"ec2:AuthorizeSecurityGroupIngress\"",
    ),
    // The resource gateway's interfaces: the subnet and group (with ec2:Vpc) and the new
    // interface (which has no ec2:Vpc key) are separate statements.
    (
        "RESOURCE_MISMATCH",
        "\"action\":\"ec2:CreateNetworkInterface\"",
    ),
    // parliament reads the action's keys only; the reference lists this key on the
    // ResourceEndpointAssociation resource type the action works on.
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonvpclattice.html
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "vpc-lattice:ResourceConfigurationArn for action vpc-lattice:DeleteResourceEndpointAssociation",
    ),
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "vpc-lattice:ResourceConfigurationArn for action vpc-lattice:DeleteServiceNetworkResourceAssociation",
    ),
];

/// The generated example policies pass parliament with no finding above LOW, except the
/// stale-data ones above.
#[test]
fn parliament_finds_nothing_above_low_in_the_generated_policies() {
    let venv = super::venv::ensure(&root().join("target/parliament-venv"), PARLIAMENT_REQ);
    for file in [
        "deploy/iam/daemon-policy.json",
        "deploy/iam/target-role-policy.json",
        "deploy/iam/bootstrap-policy.json",
        "deploy/iam/drill-policy.json",
        "deploy/iam/bootstrap-resource-policy.json",
    ] {
        let out = Command::new(venv.join("bin/parliament"))
            .arg("--files")
            .arg(root().join(file))
            .args(["--minimum_severity", "MEDIUM", "--json"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run parliament");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let unexplained: Vec<&str> = stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .filter(|line| {
                let finding: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("parliament output is not JSON ({e}): {line}"));
                let text = finding.to_string();
                !PARLIAMENT_STALE
                    .iter()
                    .any(|(issue, detail)| finding["issue"] == *issue && text.contains(detail))
            })
            .collect();
        assert!(
            unexplained.is_empty() && out.stderr.is_empty(),
            "parliament on {file}:\n{}\n{}",
            unexplained.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The trust policy a target account's role needs: only the daemon's role, only with the
/// external ID (the confused-deputy guard).
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html
#[test]
fn the_target_role_trusts_one_role_and_requires_the_external_id() {
    let policy = json("deploy/iam/target-role-trust-policy.json");
    for s in statements(&policy) {
        assert_eq!(strings(&s["Action"]), ["sts:AssumeRole"], "{s}");
        let principals = strings(&s["Principal"]["AWS"]);
        assert!(
            !principals.is_empty() && principals.iter().all(|p| p.contains(":role/")),
            "trust a role, not an account or everyone: {s}"
        );
        assert!(
            s["Condition"]["StringEquals"]["sts:ExternalId"].is_string(),
            "no sts:ExternalId condition: {s}"
        );
    }
}

/// Every AWS operation the daemon's sources call has its error counters from start
/// (`pglink::metrics::DAEMON_OPERATIONS`), so an alert's `increase()` sees the first error;
/// STS's AssumeRole is made by the credentials provider, whose failures surface as the
/// `credentials` kind of the call that needed them.
#[test]
fn every_daemon_operation_has_its_error_counters_from_start() {
    let listed: BTreeSet<&str> = pglink::metrics::DAEMON_OPERATIONS.into_iter().collect();
    let called: BTreeSet<String> = required_actions(&daemon_sources())
        .into_keys()
        .filter(|a| !a.starts_with("sts:"))
        .map(|a| a.split_once(':').map(|(_, op)| op.to_string()).unwrap_or(a))
        .collect();
    let called: BTreeSet<&str> = called.iter().map(String::as_str).collect();
    assert_eq!(called, listed, "update DAEMON_OPERATIONS in src/metrics.rs");
}
