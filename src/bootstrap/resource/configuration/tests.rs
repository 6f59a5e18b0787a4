use aws_sdk_vpclattice::operation::create_resource_configuration::CreateResourceConfigurationOutput;
use aws_sdk_vpclattice::operation::get_resource_configuration::GetResourceConfigurationOutput;
use aws_sdk_vpclattice::operation::list_resource_configurations::ListResourceConfigurationsOutput;
use aws_sdk_vpclattice::operation::update_resource_configuration::UpdateResourceConfigurationOutput;
use aws_sdk_vpclattice::Client;
use aws_smithy_mocks::{mock, Rule};

use super::*;
use crate::bootstrap::resource::mocks::{self, arn, ACCOUNT, STACK};

const NAME: &str = "pglink-analytics";
const ID: &str = "rcfg-0123456789abcdef0";
const RGW: &str = "rgw-0123456789abcdef0";
const DB_ARN: &str = "arn:aws:rds:us-east-1:111122223333:db:analytics";

fn gateway() -> Gateway {
    Gateway {
        id: RGW.into(),
        arn: arn(ACCOUNT, "resourcegateway", RGW),
        fixed_drift: Vec::new(),
    }
}

fn spec(definition: Definition) -> ConfigurationSpec {
    ConfigurationSpec {
        name: NAME.into(),
        definition,
        port: 5432,
    }
}

fn listing(items: Vec<ResourceConfigurationSummary>) -> Rule {
    mock!(Client::list_resource_configurations).then_output(move || {
        ListResourceConfigurationsOutput::builder()
            .set_items(Some(items.clone()))
            .build()
    })
}

fn summary(amazon_managed: bool) -> ResourceConfigurationSummary {
    ResourceConfigurationSummary::builder()
        .name(NAME)
        .id(ID)
        .arn(arn(ACCOUNT, "resourceconfiguration", ID))
        .resource_gateway_id(RGW)
        .amazon_managed(amazon_managed)
        .status(ResourceConfigurationStatus::Active)
        .build()
}

/// GetResourceConfiguration: the details, with each status in turn, the last for ever.
fn details(
    kind: ResourceConfigurationType,
    definition: Definition,
    ports: &[&str],
    statuses: &[ResourceConfigurationStatus],
) -> Rule {
    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    let mut seq = mock!(Client::get_resource_configuration)
        .match_requests(|r| r.resource_configuration_identifier() == Some(ID))
        .sequence();
    for status in statuses {
        let (kind, definition, ports, status) = (
            kind.clone(),
            definition.clone(),
            ports.clone(),
            status.clone(),
        );
        seq = seq.output(move || {
            GetResourceConfigurationOutput::builder()
                .id(ID)
                .name(NAME)
                .r#type(kind.clone())
                .resource_gateway_id(RGW)
                .resource_configuration_definition(definition.sdk())
                .set_port_ranges(Some(ports.clone()))
                .status(status.clone())
                .failure_reason("the gateway's subnets have no free addresses")
                .build()
        });
    }
    seq.repeatedly().build()
}

fn create_rule(
    check: fn(&aws_sdk_vpclattice::operation::create_resource_configuration::CreateResourceConfigurationInput) -> bool,
) -> Rule {
    mock!(Client::create_resource_configuration)
        .match_requests(move |r| {
            let tags = r.tags().cloned().unwrap_or_default();
            r.name() == Some(NAME)
                && r.resource_gateway_identifier() == Some(RGW)
                && r.allow_association_to_shareable_service_network() == Some(false)
                && tags.get("pglink:name").map(String::as_str) == Some(STACK)
                && check(r)
        })
        .then_output(|| {
            CreateResourceConfigurationOutput::builder()
                .id(ID)
                .arn(arn(ACCOUNT, "resourceconfiguration", ID))
                .status(ResourceConfigurationStatus::CreateInProgress)
                .build()
        })
}

fn update_rule() -> Rule {
    mock!(Client::update_resource_configuration)
        .match_requests(|r| {
            r.resource_configuration_identifier() == Some(ID) && r.port_ranges() == ["6432"]
        })
        .then_output(|| UpdateResourceConfigurationOutput::builder().id(ID).build())
}

#[tokio::test(start_paused = true)]
async fn an_rds_database_is_named_by_arn_without_ports() {
    let list = listing(vec![]);
    let create = create_rule(|r| {
        r.r#type() == Some(&ResourceConfigurationType::Arn)
            && r.port_ranges().is_empty()
            && r.protocol().is_none()
            && r.resource_configuration_definition()
                .and_then(|d| d.as_arn_resource().ok())
                .and_then(|a| a.arn())
                == Some(DB_ARN)
    });
    let get = details(
        ResourceConfigurationType::Arn,
        Definition::Arn(DB_ARN.into()),
        &[],
        &[
            ResourceConfigurationStatus::CreateInProgress,
            ResourceConfigurationStatus::Active,
        ],
    );
    let c = mocks::clients(&[&list, &create, &get], &[]);
    let mut journal = Journal::new(false);
    let cfg = ensure(
        &c,
        &mut journal,
        STACK,
        ACCOUNT,
        &spec(Definition::Arn(DB_ARN.into())),
        Some(&gateway()),
    )
    .await
    .unwrap()
    .expect("created");
    assert_eq!(cfg.id, ID);
    assert_eq!((create.num_calls(), get.num_calls()), (1, 2));
    assert_eq!(journal.entries[0].detail, format!("ARN {DB_ARN}"));
    assert!(journal.entries[0].confirmed);
}

#[tokio::test(start_paused = true)]
async fn an_address_is_a_single_configuration_on_the_port_over_tcp() {
    let list = listing(vec![]);
    let create = create_rule(|r| {
        r.r#type() == Some(&ResourceConfigurationType::Single)
            && r.port_ranges() == ["5432"]
            && r.protocol() == Some(&ProtocolType::Tcp)
            && r.resource_configuration_definition()
                .and_then(|d| d.as_ip_resource().ok())
                .and_then(|i| i.ip_address())
                == Some("10.0.1.10")
    });
    let ip = Definition::Ip("10.0.1.10".parse().unwrap());
    let get = details(
        ResourceConfigurationType::Single,
        ip.clone(),
        &["5432"],
        &[ResourceConfigurationStatus::Active],
    );
    let c = mocks::clients(&[&list, &create, &get], &[]);
    ensure(
        &c,
        &mut Journal::new(false),
        STACK,
        ACCOUNT,
        &spec(ip),
        Some(&gateway()),
    )
    .await
    .unwrap();
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_up_to_date_configuration_is_left_alone_and_aws_children_are_not_ours() {
    // AWS's own child of the same name (amazon_managed) comes first and is skipped.
    let list = listing(vec![summary(true), summary(false)]);
    let tags = mocks::ours();
    let get = details(
        ResourceConfigurationType::Arn,
        Definition::Arn(DB_ARN.into()),
        &[],
        &[ResourceConfigurationStatus::Active],
    );
    let (create, update) = (create_rule(|_| true), update_rule());
    let c = mocks::clients(&[&list, &tags, &get, &create, &update], &[]);
    let mut journal = Journal::new(false);
    let cfg = ensure(
        &c,
        &mut journal,
        STACK,
        ACCOUNT,
        &spec(Definition::Arn(DB_ARN.into())),
        Some(&gateway()),
    )
    .await
    .unwrap();
    assert_eq!(cfg.map(|c| c.id), Some(ID.to_string()));
    assert_eq!((create.num_calls(), update.num_calls()), (0, 0));
    assert_eq!(journal.changes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_port_change_is_updated_in_place_and_an_arn_change_refused() {
    let list = listing(vec![summary(false)]);
    let tags = mocks::ours();
    let host = Definition::Dns("db.example.com".into());
    let get = details(
        ResourceConfigurationType::Single,
        host.clone(),
        &["5432"],
        &[ResourceConfigurationStatus::Active],
    );
    let update = update_rule();
    let c = mocks::clients(&[&list, &tags, &get, &update], &[]);
    let moved = ConfigurationSpec {
        port: 6432,
        ..spec(host)
    };
    let mut journal = Journal::new(false);
    ensure(&c, &mut journal, STACK, ACCOUNT, &moved, Some(&gateway()))
        .await
        .unwrap();
    assert_eq!(update.num_calls(), 1);
    assert_eq!(journal.entries[0].detail, "ports 6432");

    let get = details(
        ResourceConfigurationType::Arn,
        Definition::Arn("arn:aws:rds:us-east-1:111122223333:db:old".into()),
        &[],
        &[ResourceConfigurationStatus::Active],
    );
    let update = update_rule();
    let c = mocks::clients(&[&list, &tags, &get, &update], &[]);
    let err = ensure(
        &c,
        &mut Journal::new(false),
        STACK,
        ACCOUNT,
        &spec(Definition::Arn(DB_ARN.into())),
        Some(&gateway()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("names arn:aws:rds:us-east-1:111122223333:db:old")
            && err.contains("pglink teardown"),
        "{err}"
    );
    assert_eq!(update.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_create_says_why_in_awss_words() {
    let list = listing(vec![]);
    let create = create_rule(|_| true);
    let get = details(
        ResourceConfigurationType::Arn,
        Definition::Arn(DB_ARN.into()),
        &[],
        &[ResourceConfigurationStatus::CreateFailed],
    );
    let c = mocks::clients(&[&list, &create, &get], &[]);
    let mut journal = Journal::new(false);
    let err = ensure(
        &c,
        &mut journal,
        STACK,
        ACCOUNT,
        &spec(Definition::Arn(DB_ARN.into())),
        Some(&gateway()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("CREATE_FAILED: the gateway's subnets have no free addresses"),
        "{err}"
    );
    assert!(!journal.entries[0].confirmed);
}

#[tokio::test(start_paused = true)]
async fn without_a_gateway_or_in_a_dry_run_nothing_is_created() {
    let (list, create) = (listing(vec![]), create_rule(|_| true));
    let c = mocks::clients(&[&list, &create], &[]);
    let arn_spec = spec(Definition::Arn(DB_ARN.into()));
    let mut journal = Journal::new(false);
    assert_eq!(
        ensure(&c, &mut journal, STACK, ACCOUNT, &arn_spec, None)
            .await
            .unwrap(),
        None
    );
    let mut journal = Journal::new(true);
    let found = ensure(
        &c,
        &mut journal,
        STACK,
        ACCOUNT,
        &arn_spec,
        Some(&gateway()),
    )
    .await
    .unwrap();
    assert_eq!(found, None);
    assert_eq!(create.num_calls(), 0);
}

#[test]
fn another_gateway_or_type_means_recreating() {
    let other = Gateway {
        id: "rgw-1111111111111111a".into(),
        arn: String::new(),
        fixed_drift: Vec::new(),
    };
    let arn_def = Definition::Arn(DB_ARN.into());
    let verdict = needs(
        Some(&ResourceConfigurationType::Arn),
        Some(&arn_def.sdk()),
        &[],
        Some(RGW),
        &spec(arn_def.clone()),
        Some(&other),
    );
    assert_eq!(
        verdict,
        Needs::Recreate(format!(
            "it uses gateway {RGW} instead of rgw-1111111111111111a"
        ))
    );
    let ip = Definition::Ip("10.0.1.10".parse().unwrap());
    let verdict = needs(
        Some(&ResourceConfigurationType::Arn),
        Some(&arn_def.sdk()),
        &[],
        Some(RGW),
        &spec(ip.clone()),
        Some(&gateway()),
    );
    assert_eq!(
        verdict,
        Needs::Recreate("it is of type ARN instead of SINGLE".into())
    );
    let verdict = needs(
        Some(&ResourceConfigurationType::Single),
        Some(&Definition::Ip("10.0.1.11".parse().unwrap()).sdk()),
        &["5432".to_string()],
        Some(RGW),
        &spec(ip),
        Some(&gateway()),
    );
    assert_eq!(
        verdict,
        Needs::Update(vec!["IP 10.0.1.10, TCP 5432".into()])
    );
}
