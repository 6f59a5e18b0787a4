use super::*;

#[test]
fn exposition_names_carry_the_prefix() {
    let m = Metrics::new();
    m.syncs.get_or_create(&Metrics::result("a", "ok")).inc();
    m.target_info("a", "123456789012", "us-east-1", "");
    m.aws_call("RegisterTargets", Some("throttled"));
    m.aws_call_took("RegisterTargets", 0.2);
    m.dns_query_duration.observe(0.003);
    m.detection_to_registration
        .get_or_create(&Metrics::target("a"))
        .observe(0.4);
    let text = m.encode();
    for name in [
        "pglink_syncs_total{target=\"a\",result=\"ok\"} 1",
        "pglink_aws_api_calls_total{operation=\"RegisterTargets\"} 1",
        "pglink_aws_api_errors_total{operation=\"RegisterTargets\",kind=\"throttled\"} 1",
        "pglink_aws_api_call_duration_seconds_count{operation=\"RegisterTargets\"} 1",
        "pglink_dns_query_duration_seconds_count 1",
        "pglink_detection_to_registration_seconds_count{target=\"a\"} 1",
        "pglink_build_info{version=",
        concat!("revision=\"", env!("PGLINK_REVISION"), "\"} 1"),
        "pglink_target_info{target=\"a\",account=\"123456789012\",region=\"us-east-1\",role=\"\"} 1",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[test]
fn every_series_an_alert_needs_exists_at_zero_from_start() {
    let m = Metrics::new();
    m.seed_target("a");
    let text = m.encode();
    let mut expected = vec![
        "pglink_syncs_total{target=\"a\",result=\"ok\"} 0".to_string(),
        "pglink_syncs_total{target=\"a\",result=\"access_denied\"} 0".into(),
        "pglink_syncs_total{target=\"a\",result=\"nxdomain\"} 0".into(),
        "pglink_syncs_total{target=\"a\",result=\"not_owned\"} 0".into(),
        "pglink_dns_answers_total{target=\"a\",result=\"timeout\"} 0".into(),
        "pglink_target_changes_total{target=\"a\",action=\"register\"} 0".into(),
        "pglink_failovers_total{target=\"a\"} 0".into(),
        "pglink_drift_repairs_total{target=\"a\"} 0".into(),
        "pglink_last_successful_sync_timestamp_seconds{target=\"a\"} 0".into(),
        "pglink_target_synced{target=\"a\"} 0".into(),
        "pglink_registered_targets{target=\"a\"} 0".into(),
        "pglink_target_problems{target=\"a\",problem=\"unused\"} 0".into(),
        "pglink_detection_to_registration_seconds_count{target=\"a\"} 0".into(),
        "pglink_registration_to_healthy_seconds_count{target=\"a\"} 0".into(),
    ];
    for state in TargetState::ALL {
        expected.push(format!(
            "pglink_target_states{{target=\"a\",state=\"{}\"}} 0",
            state.as_str()
        ));
    }
    for op in DAEMON_OPERATIONS {
        expected.push(format!(
            "pglink_aws_api_errors_total{{operation=\"{op}\",kind=\"access_denied\"}} 0"
        ));
    }
    for line in expected {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
}
