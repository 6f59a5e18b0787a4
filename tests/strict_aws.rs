//! The proxy's strict AWS layer (`tests/support/strict.rs`), one rule at a time, through
//! the real SDK clients: each rule answers as AWS documents when on, and leaves moto's
//! own behaviour alone when off. Every test has its own moto and proxy.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancerSchemeEnum as Scheme, LoadBalancerTypeEnum as LbType, SubnetMapping,
};
use support::fixture;
use support::proxy::Fault;
use support::strict::kit::{
    deregister, elb_once, health, nlb, register, rejected, set_deregistration_delay,
    state_of as state, Setup,
};
use support::strict::{ip_verdict, Bucket, HealthModel, Strict};

const REFUSED: &str = "InvalidConfigurationRequest";

fn is(state: &str, reason: Option<&str>) -> (String, Option<String>) {
    (state.to_string(), reason.map(str::to_string))
}

fn only(code: &str) -> Option<String> {
    Some(code.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subnets_in_one_zone_are_refused_in_create_and_set_subnets() {
    let strict = Strict {
        one_subnet_per_az: true,
        ..Strict::off()
    };
    let s = Setup::new(strict, false).await;
    let elb = &s.via.elb;
    let create = |name: &str| {
        let req = elb
            .create_load_balancer()
            .name(name)
            .r#type(LbType::Network);
        req.scheme(Scheme::Internal)
    };
    let mapping = |id: &str| SubnetMapping::builder().subnet_id(id).build();
    let want = "You can specify only one subnet per Availability Zone.";

    let plain = create("plain").subnets(&s.a).subnets(&s.a2).send().await;
    assert_eq!(rejected(plain), (REFUSED.into(), want.into()));
    let mapped = create("mapped").subnet_mappings(mapping(&s.a));
    let mapped = mapped.subnet_mappings(mapping(&s.a2)).send().await;
    assert_eq!(rejected(mapped).0, REFUSED);

    let ok = create("ok").subnets(&s.a).subnets(&s.b).send().await;
    let ok = ok.expect("one subnet per zone");
    let lb = ok.load_balancers()[0].load_balancer_arn().expect("arn");
    let set = elb.set_subnets().load_balancer_arn(lb).subnets(&s.a);
    assert_eq!(rejected(set.subnets(&s.a2).send().await).1, want);
    let set = elb.set_subnets().load_balancer_arn(lb);
    let set = set
        .subnet_mappings(mapping(&s.b))
        .subnet_mappings(mapping(&s.a2));
    let set = set.subnet_mappings(mapping(&s.a)).send().await;
    assert_eq!(rejected(set).0, REFUSED);

    let made = s.direct.elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(
        made.load_balancers().len(),
        1,
        "a refused call reached moto"
    );
    let created = s.strict_answers("CreateLoadBalancer");
    assert_eq!(created, [only(REFUSED), only(REFUSED), None]);
    assert_eq!(
        s.strict_answers("SetSubnets"),
        [only(REFUSED), only(REFUSED)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subnets_in_one_zone_pass_to_moto_when_the_rule_is_off() {
    let strict = Strict {
        one_subnet_per_az: false,
        ..Strict::aws()
    };
    let s = Setup::new(strict, false).await;
    let lb = s.via.elb.create_load_balancer().name("lenient");
    let lb = lb.r#type(LbType::Network).subnets(&s.a).subnets(&s.a2);
    let lb = lb.send().await.expect("moto takes two subnets in one zone");
    let zones = lb.load_balancers()[0].availability_zones().iter();
    let zones: Vec<_> = zones.map(|z| z.zone_name().unwrap_or_default()).collect();
    assert_eq!(zones, ["us-east-1a", "us-east-1a"]);
    assert_eq!(s.strict_answers("CreateLoadBalancer"), [None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_targets_must_be_private_and_outside_the_vpc_need_zone_all() {
    let strict = Strict {
        register_rules: true,
        ..Strict::off()
    };
    let s = Setup::new(strict, true).await;
    let arn = fixture::target_group(&s.direct.elb, &s.vpc, "strict-ip", false).await;
    let (elb, all) = (&s.via.elb, Some("all"));

    let (code, message) = register(elb, &arn, &[("8.8.8.8", all)]).await.unwrap_err();
    assert_eq!(code, "InvalidTarget");
    let why = message.contains("'8.8.8.8'") && message.contains("publicly routable");
    assert!(why, "{message}");
    for outside in ["192.168.7.7", "10.200.0.1"] {
        let (code, message) = register(elb, &arn, &[(outside, None)]).await.unwrap_err();
        assert_eq!(code, "ValidationError");
        let why = format!("the IP address '{outside}' is outside the VPC");
        assert!(message.contains(&why), "{message}");
    }
    // One bad target refuses the whole call: AWS checks them all before registering.
    let mixed = register(elb, &arn, &[("10.0.1.11", None), ("8.8.4.4", None)]).await;
    assert_eq!(mixed.unwrap_err().0, "InvalidTarget");

    let fine = [
        ("10.0.1.10", None),
        ("10.0.9.9", None),
        ("192.168.7.7", all),
        ("100.64.1.1", all),
        ("172.16.0.5", all),
    ];
    register(elb, &arn, &fine).await.expect("all private");
    let held = fixture::registered(&s.direct.elb, &arn).await;
    let want = fine.map(|(ip, _)| format!("{ip}:5432"));
    assert_eq!(held, want.into_iter().collect());
    let answers = s.strict_answers("RegisterTargets");
    let (bad, az) = (only("InvalidTarget"), only("ValidationError"));
    assert_eq!(answers, [bad.clone(), az.clone(), az, bad, None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_takes_any_ip_target_when_the_rule_is_off() {
    let strict = Strict {
        register_rules: false,
        ..Strict::aws()
    };
    let s = Setup::new(strict, false).await;
    let arn = fixture::target_group(&s.direct.elb, &s.vpc, "lenient-ip", false).await;
    let anything = [("8.8.8.8", None), ("192.168.7.7", None)];
    register(&s.via.elb, &arn, &anything)
        .await
        .expect("moto is kind");
    let held = fixture::registered(&s.direct.elb, &arn).await;
    assert_eq!(held, fixture::set(&["192.168.7.7:5432", "8.8.8.8:5432"]));
}

#[test]
fn the_address_rule_knows_the_private_ranges_and_ipv6() {
    let vpc = ["10.0.0.0/16", "2600:1f18:aa::/56"].map(|c| c.parse::<ipnet::IpNet>().unwrap());
    let code = |ip: &str, zone: Option<&str>| {
        let ip: IpAddr = ip.parse().unwrap();
        ip_verdict(ip, &vpc, zone).err().map(|r| r.code)
    };
    for (ip, zone, want) in [
        ("10.0.200.1", None, None),
        ("2600:1f18:aa::5", None, None),
        ("fd00::1", Some("all"), None),
        ("fd00::1", None, Some("ValidationError")),
        ("2001:db8::1", Some("all"), Some("InvalidTarget")),
        ("172.31.255.255", Some("all"), None),
        ("172.32.0.1", Some("all"), Some("InvalidTarget")),
        ("100.127.255.255", Some("all"), None),
        ("100.128.0.1", Some("all"), Some("InvalidTarget")),
        ("192.168.0.1", Some("us-east-1a"), Some("ValidationError")),
        ("10.0.5.5", Some("all"), Some("ValidationError")),
        ("2600:1f18:aa::5", Some("all"), Some("ValidationError")),
    ] {
        assert_eq!(code(ip, zone), want, "{ip} {zone:?}");
    }
}

/// 10.0.1.5 is registered straight to moto, the rest through the proxy, into a group
/// whose NLB is enabled in us-east-1a only, with a 2 s deregistration delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_aws_state_machine() {
    let registration = Duration::from_secs(3);
    let strict = Strict {
        health: Some(HealthModel { registration }),
        ..Strict::off()
    };
    let s = Setup::new(strict, true).await;
    let direct = &s.direct.elb;
    let arn = fixture::target_group(direct, &s.vpc, "in-use", false).await;
    let idle = fixture::target_group(direct, &s.vpc, "idle", false).await;
    nlb(direct, "db", &[&s.a], &arn).await;
    let delay = Duration::from_secs(2);
    set_deregistration_delay(direct, &arn, delay).await;
    register(direct, &arn, &[("10.0.1.5", None)]).await.unwrap();

    let registered = check_initial(&s, &arn, &idle, registration).await;
    tokio::time::sleep_until((registered + registration).into()).await;
    check_settled(&s, &arn).await;
    check_draining(&s, &arn, delay).await;
    let answers = s.strict_answers("DescribeTargetHealth");
    assert!(
        answers.iter().all(|a| a.as_deref() == Some("health")),
        "{answers:?}"
    );
}

/// Registers through the proxy and checks what shows at once; returns when the
/// registration was done.
async fn check_initial(s: &Setup, arn: &str, idle: &str, registration: Duration) -> Instant {
    let elb = &s.via.elb;
    let before = Instant::now(); // the proxy starts the clock after this
    let targets = [
        ("10.0.1.10", None),
        ("10.0.2.10", None),
        ("192.168.5.5", Some("all")),
    ];
    register(elb, arn, &targets).await.unwrap();
    let registered = Instant::now(); // and before this
    register(elb, idle, &[("10.0.1.20", None)]).await.unwrap();
    let now = health(elb, arn, &[]).await;
    assert!(before.elapsed() < registration, "too slow to see `initial`");
    let initial = is("initial", Some("Elb.RegistrationInProgress"));
    let not_in_use = is("unused", Some("Target.NotInUse"));
    assert_eq!(
        state(&now, "10.0.1.5"),
        is("healthy", None),
        "registered long ago"
    );
    assert_eq!(state(&now, "10.0.1.10"), initial);
    assert_eq!(
        state(&now, "192.168.5.5"),
        initial,
        "`all`: every enabled zone"
    );
    assert_eq!(state(&now, "10.0.2.10"), not_in_use, "zone not enabled");
    let first = &now["10.0.1.10:5432"];
    let placed = (first.zone.as_deref(), first.check_port.as_deref());
    assert_eq!(placed, (Some("us-east-1a"), Some("5432")));
    assert_eq!(now["192.168.5.5:5432"].zone.as_deref(), Some("all"));
    let idle_now = health(elb, idle, &[]).await;
    assert_eq!(
        state(&idle_now, "10.0.1.20"),
        not_in_use,
        "no load balancer"
    );
    registered
}

/// After the registration time: healthy, unless marked as not listening.
async fn check_settled(s: &Setup, arn: &str) {
    let (elb, healthy) = (&s.via.elb, is("healthy", None));
    let now = health(elb, arn, &[]).await;
    for ip in ["10.0.1.5", "10.0.1.10", "192.168.5.5"] {
        assert_eq!(state(&now, ip), healthy, "{ip} after registration");
    }
    let not_in_use = is("unused", Some("Target.NotInUse"));
    assert_eq!(state(&now, "10.0.2.10"), not_in_use);
    register(elb, arn, &[("10.0.1.10", None)]).await.unwrap();
    let again = health(elb, arn, &[]).await;
    assert_eq!(state(&again, "10.0.1.10"), healthy, "a repeat is ignored");

    let ip: IpAddr = "10.0.1.10".parse().unwrap();
    s.proxy.set_unhealthy(ip);
    let failing = is("unhealthy", Some("Target.FailedHealthChecks"));
    assert_eq!(state(&health(elb, arn, &[]).await, "10.0.1.10"), failing);
    s.proxy.set_healthy(ip);
    assert_eq!(state(&health(elb, arn, &[]).await, "10.0.1.10"), healthy);
}

/// Deregisters 10.0.1.10: moto drops it at once, the proxy shows it `draining` for the
/// group's `delay`, then it is gone.
async fn check_draining(s: &Setup, arn: &str, delay: Duration) {
    let elb = &s.via.elb;
    deregister(elb, arn, "10.0.1.10").await;
    let deregistered = Instant::now();
    let draining = is("draining", Some("Target.DeregistrationInProgress"));
    let now = health(elb, arn, &[]).await;
    assert_eq!(state(&now, "10.0.1.10"), draining);
    assert_eq!(now["10.0.1.10:5432"].zone.as_deref(), Some("us-east-1a"));
    let named = health(elb, arn, &["10.0.1.10"]).await;
    assert_eq!(state(&named, "10.0.1.10"), draining, "asked for by name");
    let moto = fixture::registered(&s.direct.elb, arn).await;
    assert!(
        !moto.contains("10.0.1.10:5432"),
        "moto still holds it: {moto:?}"
    );

    while health(elb, arn, &[]).await.contains_key("10.0.1.10:5432") {
        assert!(deregistered.elapsed() < delay * 3, "still draining");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = deregistered.elapsed();
    assert!(
        drained >= delay - Duration::from_millis(100),
        "gone after {drained:?}"
    );
    let named = health(elb, arn, &["10.0.1.10"]).await;
    let not_registered = is("unused", Some("Target.NotRegistered"));
    assert_eq!(state(&named, "10.0.1.10"), not_registered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_health_passes_through_when_the_model_is_off() {
    let strict = Strict {
        health: None,
        ..Strict::aws()
    };
    let s = Setup::new(strict, false).await;
    let arn = fixture::target_group(&s.direct.elb, &s.vpc, "plain", false).await;
    let elb = &s.via.elb;
    register(elb, &arn, &[("10.0.1.10", None)]).await.unwrap();
    let now = health(elb, &arn, &[]).await;
    let healthy = is("healthy", None);
    assert_eq!(
        state(&now, "10.0.1.10"),
        healthy,
        "moto: at once, with no NLB"
    );
    let check_port = now["10.0.1.10:5432"].check_port.as_deref();
    assert_eq!(check_port, Some("traffic-port"), "moto does not resolve it");
    deregister(elb, &arn, "10.0.1.10").await;
    assert!(health(elb, &arn, &[]).await.is_empty(), "moto: no draining");
    assert_eq!(s.strict_answers("DescribeTargetHealth"), [None, None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_calls_share_a_bucket_that_refills() {
    let bucket = Bucket {
        burst: 5.0,
        per_second: 2.0,
    };
    let strict = Strict {
        describe_bucket: Some(bucket),
        ..Strict::off()
    };
    let s = Setup::new(strict, false).await;
    let elb = elb_once(&s.proxy.endpoint).await;
    for i in 0..5 {
        let out = elb.describe_target_groups().send().await;
        out.unwrap_or_else(|e| panic!("call {i}: {e:?}"));
    }
    let err = elb
        .describe_load_balancers()
        .send()
        .await
        .expect_err("empty");
    let status = err.raw_response().map(|r| r.status().as_u16());
    let answer = rejected::<(), _, _>(Err(err));
    let throttled = ("Throttling".to_string(), "Rate exceeded".to_string());
    assert_eq!((answer, status), (throttled, Some(400)));
    assert_eq!(s.proxy.throttled(), 1);

    // Not ELBv2 Describe calls: EC2's, and ELBv2 calls that change things.
    s.via
        .ec2
        .describe_vpcs()
        .send()
        .await
        .expect("EC2 has its own limits");
    fixture::target_group(&elb, &s.vpc, "made-while-empty", false).await;
    assert_eq!(s.proxy.throttled(), 1);

    // 2/s: after 0.7 s at least one token is back, and fewer than three.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut refilled = 0;
    while elb.describe_target_groups().send().await.is_ok() {
        refilled += 1;
        assert!(refilled < 10, "never throttled again");
    }
    assert!((1..=2).contains(&refilled), "{refilled} tokens came back");
    assert_eq!(s.proxy.throttled(), 2);
    let answers = s.strict_answers("DescribeTargetGroups");
    assert_eq!(answers.iter().filter(|a| a.is_some()).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_bucket_allows_a_burst_of_forty() {
    let s = Setup::new(Strict::aws(), false).await;
    let elb = elb_once(&s.proxy.endpoint).await;
    let started = Instant::now();
    let mut passed = 0;
    while elb.describe_target_groups().send().await.is_ok() {
        passed += 1;
        assert!(passed < 100, "never throttled");
    }
    // 40 at once, plus 10/s refilled while the calls took their time.
    let refilled = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    let took = started.elapsed();
    assert!(
        (40..=40 + refilled).contains(&passed),
        "{passed} in {took:?}"
    );
    assert_eq!(s.proxy.throttled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_come_before_strict_rules() {
    let bucket = Bucket {
        burst: 1.0,
        per_second: 0.01,
    };
    let strict = Strict {
        describe_bucket: Some(bucket),
        ..Strict::off()
    };
    let s = Setup::new(strict, false).await;
    let elb = elb_once(&s.proxy.endpoint).await;
    let unavailable = Fault::Status {
        status: 503,
        code: "ServiceUnavailable".into(),
    };
    s.proxy.inject("DescribeTargetGroups", unavailable, Some(1));
    let faulted = elb.describe_target_groups().send().await;
    assert_eq!(rejected(faulted).0, "ServiceUnavailable");
    assert_eq!(s.proxy.throttled(), 0, "a faulted call took no token");
    elb.describe_target_groups()
        .send()
        .await
        .expect("the one token");
    let empty = elb.describe_target_groups().send().await;
    assert_eq!(rejected(empty).0, "Throttling");
    let recorded = s.proxy.requests();
    let seen: Vec<_> = recorded
        .iter()
        .map(|r| (r.faulted, r.strict.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [(true, None), (false, None), (false, Some("Throttling"))]
    );
}
