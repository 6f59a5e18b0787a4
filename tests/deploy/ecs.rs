//! The ECS task definition: Fargate, read-only root, the binary as its own health check.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{check_pglink_env_name, json};

#[test]
fn task_definition_is_fargate_read_only_and_health_checked() {
    let td = json("deploy/ecs/task-definition.json");
    assert_eq!(td["networkMode"], "awsvpc");
    let compat: Vec<&str> = td["requiresCompatibilities"]
        .as_array()
        .expect("requiresCompatibilities is an array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        compat.contains(&"FARGATE"),
        "requiresCompatibilities: {compat:?}"
    );
    for (key, want) in [("cpu", "256"), ("memory", "512")] {
        let got = match &td[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(got, want, "task {key}");
    }
    for key in ["taskRoleArn", "executionRoleArn"] {
        let arn = td[key].as_str().unwrap_or_default();
        assert!(arn.starts_with("arn:aws:iam::"), "{key}: {arn:?}");
    }

    let containers = td["containerDefinitions"]
        .as_array()
        .expect("containerDefinitions");
    let c = containers
        .iter()
        .find(|c| c["name"] == "pglink")
        .expect("a container named pglink");
    assert_eq!(c["essential"], true);
    assert_eq!(c["readonlyRootFilesystem"], true);
    assert_eq!(c["user"], "65532", "distroless nonroot uid");
    let stop = c["stopTimeout"].as_u64().expect("stopTimeout is a number");
    assert!(
        (10..=120).contains(&stop),
        "stopTimeout {stop}: the daemon needs ~5 s to stop; Fargate allows up to 120"
    );

    let check = &c["healthCheck"];
    let command: Vec<&str> = check["command"]
        .as_array()
        .expect("healthCheck.command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        command,
        ["CMD", "/usr/local/bin/pglink", "healthcheck"],
        "the image has no shell and no curl: the binary probes itself"
    );
    for key in ["interval", "timeout", "retries", "startPeriod"] {
        assert!(check[key].is_u64(), "healthCheck.{key} missing");
    }

    let logs = &c["logConfiguration"];
    assert_eq!(logs["logDriver"], "awslogs");
    for key in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
        assert!(
            logs["options"][key].is_string(),
            "logConfiguration.options.{key} missing"
        );
    }

    let env: BTreeMap<&str, &str> = c["environment"]
        .as_array()
        .expect("environment")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("environment name"),
                e["value"].as_str().expect("environment value"),
            )
        })
        .collect();
    for name in env.keys() {
        assert!(
            name.starts_with("PGLINK_") || name.starts_with("AWS_"),
            "environment variable {name}: only PGLINK_* and AWS_* belong here"
        );
        if name.starts_with("PGLINK_") {
            check_pglink_env_name(name, "task definition");
        }
    }
    assert_eq!(env.get("PGLINK_LOG__FORMAT"), Some(&"json"));
    assert!(
        env.contains_key("PGLINK_CONFIG"),
        "PGLINK_CONFIG names the file"
    );
    assert!(env.contains_key("PGLINK_AWS__REGION"));
    let listen = env
        .get("PGLINK_SERVER__LISTEN")
        .expect("PGLINK_SERVER__LISTEN: the default 127.0.0.1 is unreachable from outside");
    let port: u64 = listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("listen has a port");
    assert!(listen.starts_with("0.0.0.0:"), "listen {listen}");
    let ports: Vec<u64> = c["portMappings"]
        .as_array()
        .expect("portMappings")
        .iter()
        .filter_map(|m| m["containerPort"].as_u64())
        .collect();
    assert!(ports.contains(&port), "portMappings {ports:?} lacks {port}");
    assert_eq!(
        port, 9187,
        "pglink healthcheck probes 127.0.0.1:9187 by default"
    );
}
