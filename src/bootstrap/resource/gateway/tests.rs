use aws_sdk_vpclattice::operation::create_resource_gateway::CreateResourceGatewayOutput;
use aws_sdk_vpclattice::operation::get_resource_gateway::GetResourceGatewayOutput;
use aws_sdk_vpclattice::operation::list_resource_gateways::ListResourceGatewaysOutput;
use aws_sdk_vpclattice::operation::update_resource_gateway::UpdateResourceGatewayOutput;
use aws_sdk_vpclattice::Client;
use aws_smithy_mocks::{mock, Rule};

use super::*;
use crate::bootstrap::resource::mocks::{self, arn, ACCOUNT, OTHER_ACCOUNT, STACK};

const NAME: &str = "pglink-analytics";
const ID: &str = "rgw-0123456789abcdef0";
const VPC: &str = "vpc-0123456789abcdef0";
const SG: &str = "sg-0aaaaaaaaaaaaaaaa";

fn spec() -> GatewaySpec {
    GatewaySpec {
        name: NAME.into(),
        vpc_id: VPC.into(),
        subnet_ids: vec!["subnet-1".into(), "subnet-2".into()],
        security_group_id: Some(SG.into()),
        ipv4_addresses_per_eni: 16,
    }
}

fn summary(account: &str, sg: &str) -> ResourceGatewaySummary {
    ResourceGatewaySummary::builder()
        .name(NAME)
        .id(ID)
        .arn(arn(account, "resourcegateway", ID))
        .status(ResourceGatewayStatus::Active)
        .vpc_identifier(VPC)
        .subnet_ids("subnet-1")
        .subnet_ids("subnet-2")
        .security_group_ids(sg)
        .ip_address_type(ResourceGatewayIpAddressType::Ipv4)
        .ipv4_addresses_per_eni(16)
        .build()
}

fn listing(items: Vec<ResourceGatewaySummary>) -> Rule {
    mock!(Client::list_resource_gateways).then_output(move || {
        ListResourceGatewaysOutput::builder()
            .set_items(Some(items.clone()))
            .build()
    })
}

/// GetResourceGateway answering each status in turn, then the last one for ever.
fn statuses(list: &[ResourceGatewayStatus]) -> Rule {
    let mut seq = mock!(Client::get_resource_gateway)
        .match_requests(|r| r.resource_gateway_identifier() == Some(ID))
        .sequence();
    for s in list {
        let s = s.clone();
        seq = seq.output(move || {
            GetResourceGatewayOutput::builder()
                .id(ID)
                .status(s.clone())
                .build()
        });
    }
    seq.repeatedly().build()
}

fn create_rule() -> Rule {
    mock!(Client::create_resource_gateway)
        .match_requests(|r| {
            let tags = r.tags().cloned().unwrap_or_default();
            r.name() == Some(NAME)
                && r.vpc_identifier() == Some(VPC)
                && r.subnet_ids() == ["subnet-1".to_string(), "subnet-2".to_string()]
                && r.security_group_ids() == [SG.to_string()]
                && r.ip_address_type() == Some(&ResourceGatewayIpAddressType::Ipv4)
                && r.ipv4_addresses_per_eni() == Some(16)
                && tags.get("pglink:managed-by").map(String::as_str) == Some("pglink")
                && tags.get("pglink:name").map(String::as_str) == Some(STACK)
        })
        .then_output(|| {
            CreateResourceGatewayOutput::builder()
                .id(ID)
                .arn(arn(ACCOUNT, "resourcegateway", ID))
                .status(ResourceGatewayStatus::CreateInProgress)
                .build()
        })
}

fn update_rule() -> Rule {
    mock!(Client::update_resource_gateway)
        .match_requests(|r| {
            r.resource_gateway_identifier() == Some(ID)
                && r.security_group_ids() == [SG.to_string()]
        })
        .then_output(|| UpdateResourceGatewayOutput::builder().id(ID).build())
}

#[tokio::test(start_paused = true)]
async fn a_missing_gateway_is_created_and_waited_for_until_active() {
    let (list, create, update) = (listing(vec![]), create_rule(), update_rule());
    let get = statuses(&[
        ResourceGatewayStatus::CreateInProgress,
        ResourceGatewayStatus::CreateInProgress,
        ResourceGatewayStatus::Active,
    ]);
    let c = mocks::clients(&[&list, &create, &update, &get], &[]);
    let mut journal = Journal::new(false);
    let gw = ensure(&c, &mut journal, STACK, ACCOUNT, &spec())
        .await
        .unwrap()
        .expect("created");
    assert_eq!(gw.id, ID);
    assert_eq!(
        (create.num_calls(), get.num_calls(), update.num_calls()),
        (1, 3, 0)
    );
    let entry = &journal.entries[0];
    assert_eq!((entry.mark, entry.confirmed), (Mark::Create, true));
    assert!(
        entry
            .detail
            .contains("subnet-1, subnet-2; IPv4, 16 addresses"),
        "{entry:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_or_a_missing_group_creates_nothing() {
    let (list, create) = (listing(vec![]), create_rule());
    let c = mocks::clients(&[&list, &create], &[]);
    let mut journal = Journal::new(true);
    assert_eq!(
        ensure(&c, &mut journal, STACK, ACCOUNT, &spec())
            .await
            .unwrap(),
        None
    );
    let mut journal = Journal::new(false);
    let no_group = GatewaySpec {
        security_group_id: None,
        ..spec()
    };
    assert_eq!(
        ensure(&c, &mut journal, STACK, ACCOUNT, &no_group)
            .await
            .unwrap(),
        None
    );
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_up_to_date_gateway_is_left_alone() {
    let (list, tags, create, update) = (
        listing(vec![summary(ACCOUNT, SG)]),
        mocks::ours(),
        create_rule(),
        update_rule(),
    );
    let c = mocks::clients(&[&list, &tags, &create, &update], &[]);
    let mut journal = Journal::new(false);
    let gw = ensure(&c, &mut journal, STACK, ACCOUNT, &spec())
        .await
        .unwrap();
    assert_eq!(gw.map(|g| g.id), Some(ID.to_string()));
    assert_eq!((create.num_calls(), update.num_calls()), (0, 0));
    assert_eq!(journal.changes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_drifted_security_group_is_set_back_and_waited_for() {
    let (list, tags, update) = (
        listing(vec![summary(ACCOUNT, "sg-0bbbbbbbbbbbbbbbb")]),
        mocks::ours(),
        update_rule(),
    );
    let get = statuses(&[
        ResourceGatewayStatus::UpdateInProgress,
        ResourceGatewayStatus::Active,
    ]);
    let c = mocks::clients(&[&list, &tags, &update, &get], &[]);
    let mut journal = Journal::new(false);
    ensure(&c, &mut journal, STACK, ACCOUNT, &spec())
        .await
        .unwrap();
    assert_eq!((update.num_calls(), get.num_calls()), (1, 2));
    assert_eq!(journal.entries[0].mark, Mark::Update);
    assert!(journal.entries[0].confirmed);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_of_that_name_without_our_tags_is_refused() {
    let (list, tags, create) = (
        listing(vec![summary(ACCOUNT, SG)]),
        mocks::tags_rule(&[("team", "data")]),
        create_rule(),
    );
    let c = mocks::clients(&[&list, &tags, &create], &[]);
    let err = ensure(&c, &mut Journal::new(false), STACK, ACCOUNT, &spec())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NotOwned"), "{err}");
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_shared_from_another_account_is_not_ours() {
    let (list, tags, create) = (
        listing(vec![summary(OTHER_ACCOUNT, SG)]),
        mocks::ours(),
        create_rule(),
    );
    let get = statuses(&[ResourceGatewayStatus::Active]);
    let c = mocks::clients(&[&list, &tags, &create, &get], &[]);
    ensure(&c, &mut Journal::new(false), STACK, ACCOUNT, &spec())
        .await
        .unwrap();
    assert_eq!((tags.num_calls(), create.num_calls()), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_create_is_an_error_and_not_confirmed() {
    let (list, create) = (listing(vec![]), create_rule());
    let get = statuses(&[
        ResourceGatewayStatus::CreateInProgress,
        ResourceGatewayStatus::CreateFailed,
    ]);
    let c = mocks::clients(&[&list, &create, &get], &[]);
    let mut journal = Journal::new(false);
    let err = ensure(&c, &mut journal, STACK, ACCOUNT, &spec())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("AWS reports CREATE_FAILED"),
        "{err}"
    );
    assert!(!journal.entries[0].confirmed);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_never_settles_times_out_naming_its_status() {
    let (list, create) = (listing(vec![]), create_rule());
    let get = statuses(&[ResourceGatewayStatus::CreateInProgress]);
    let c = mocks::clients(&[&list, &create, &get], &[]);
    let err = ensure(&c, &mut Journal::new(false), STACK, ACCOUNT, &spec())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("still CREATE_IN_PROGRESS after 15m") && text.contains("run bootstrap again"),
        "{text}"
    );
    // One look every 10 s for 15 minutes.
    assert_eq!(get.num_calls(), 91);
}

#[test]
fn what_cannot_change_in_place_is_reported_not_changed() {
    let found = summary(ACCOUNT, SG);
    assert_eq!(drift(&found, &spec()), Drift::default());
    let moved = GatewaySpec {
        subnet_ids: vec!["subnet-1".into(), "subnet-3".into()],
        ipv4_addresses_per_eni: 32,
        ..spec()
    };
    let d = drift(&found, &moved);
    assert_eq!(d.security_groups, None);
    // (ensure() puts these in the output's warnings; see stack.rs.)
    assert_eq!(
        d.fixed,
        [
            "subnets subnet-1, subnet-2 instead of subnet-1, subnet-3",
            "16 IPv4 addresses per interface instead of 32"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn delete_waits_until_the_gateway_is_gone() {
    use aws_sdk_vpclattice::operation::delete_resource_gateway::DeleteResourceGatewayOutput;
    use aws_sdk_vpclattice::operation::get_resource_gateway::GetResourceGatewayError;
    use aws_sdk_vpclattice::types::error::ResourceNotFoundException;
    let delete_rule = mock!(Client::delete_resource_gateway)
        .match_requests(|r| r.resource_gateway_identifier() == Some(ID))
        .then_output(|| {
            DeleteResourceGatewayOutput::builder()
                .status(ResourceGatewayStatus::DeleteInProgress)
                .build()
        });
    // As AWS answers a gateway that no longer exists: HTTP 404, ResourceNotFoundException.
    let get = mock!(Client::get_resource_gateway)
        .sequence()
        .output(|| {
            GetResourceGatewayOutput::builder()
                .id(ID)
                .status(ResourceGatewayStatus::DeleteInProgress)
                .build()
        })
        .error(|| {
            GetResourceGatewayError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("not found")
                    .resource_id(ID)
                    .resource_type("RESOURCE_GATEWAY")
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
        })
        .build();
    let c = mocks::clients(&[&delete_rule, &get], &[]);
    delete(&c, ID, "resource gateway pglink-analytics")
        .await
        .unwrap();
    assert_eq!((delete_rule.num_calls(), get.num_calls()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_gateway_found_half_created_is_waited_for_and_a_failed_one_refused() {
    let creating = ResourceGatewaySummary::builder()
        .status(ResourceGatewayStatus::CreateInProgress)
        .set_name(Some(NAME.into()))
        .set_id(Some(ID.into()))
        .set_arn(summary(ACCOUNT, SG).arn().map(str::to_string))
        .vpc_identifier(VPC)
        .subnet_ids("subnet-1")
        .subnet_ids("subnet-2")
        .security_group_ids(SG)
        .ipv4_addresses_per_eni(16)
        .build();
    let (list, tags, update) = (
        listing(vec![creating.clone()]),
        mocks::ours(),
        update_rule(),
    );
    let get = statuses(&[
        ResourceGatewayStatus::CreateInProgress,
        ResourceGatewayStatus::Active,
    ]);
    let c = mocks::clients(&[&list, &tags, &update, &get], &[]);
    let gw = ensure(&c, &mut Journal::new(false), STACK, ACCOUNT, &spec())
        .await
        .unwrap();
    assert!(gw.is_some());
    assert_eq!(get.num_calls(), 2, "waited until ACTIVE");

    let failed = ResourceGatewaySummary::builder()
        .status(ResourceGatewayStatus::CreateFailed)
        .set_name(creating.name().map(str::to_string))
        .set_id(creating.id().map(str::to_string))
        .set_arn(creating.arn().map(str::to_string))
        .build();
    let list = listing(vec![failed]);
    let c = mocks::clients(&[&list, &tags], &[]);
    let err = ensure(&c, &mut Journal::new(false), STACK, ACCOUNT, &spec())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is CREATE_FAILED: run pglink teardown, then bootstrap again"),
        "{err}"
    );
}
