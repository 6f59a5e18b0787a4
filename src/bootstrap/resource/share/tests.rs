use aws_sdk_ram::operation::associate_resource_share::AssociateResourceShareOutput;
use aws_sdk_ram::operation::create_resource_share::CreateResourceShareOutput;
use aws_sdk_ram::operation::disassociate_resource_share::DisassociateResourceShareOutput;
use aws_sdk_ram::operation::get_resource_share_associations::GetResourceShareAssociationsOutput;
use aws_sdk_ram::operation::get_resource_shares::GetResourceSharesOutput;
use aws_sdk_ram::operation::update_resource_share::UpdateResourceShareOutput;
use aws_sdk_ram::types::{ResourceShareAssociation, Tag};
use aws_sdk_ram::Client;
use aws_smithy_mocks::{mock, Rule};

use super::*;
use crate::bootstrap::resource::mocks::{self, arn, ACCOUNT, STACK};

const NAME: &str = "pglink-analytics";
const DBT: &str = "346425330055";
const CLICKHOUSE: &str = "072088201116";
const SHARE_ARN: &str =
    "arn:aws:ram:us-east-1:111122223333:resource-share/0f1e2d3c-aaaa-bbbb-cccc-0123456789ab";

fn configuration() -> Configuration {
    Configuration {
        id: "rcfg-0123456789abcdef0".into(),
        arn: arn(ACCOUNT, "resourceconfiguration", "rcfg-0123456789abcdef0"),
    }
}

fn spec(principals: &[&str]) -> ShareSpec {
    ShareSpec {
        name: NAME.into(),
        principals: principals.iter().map(|p| p.to_string()).collect(),
    }
}

fn share(status: ResourceShareStatus, tagged: bool, external: bool) -> ResourceShare {
    let mut b = ResourceShare::builder()
        .resource_share_arn(SHARE_ARN)
        .name(NAME)
        .owning_account_id(ACCOUNT)
        .allow_external_principals(external)
        .status(status);
    if tagged {
        b = b
            .tags(
                Tag::builder()
                    .key("pglink:managed-by")
                    .value("pglink")
                    .build(),
            )
            .tags(Tag::builder().key("pglink:name").value(STACK).build());
    }
    b.build()
}

fn shares(list: Vec<ResourceShare>) -> Rule {
    mock!(Client::get_resource_shares)
        .match_requests(|r| {
            r.resource_owner() == Some(&ResourceOwner::SelfValue) && r.name() == Some(NAME)
        })
        .then_output(move || {
            GetResourceSharesOutput::builder()
                .set_resource_shares(Some(list.clone()))
                .build()
        })
}

fn associated(kind: ResourceShareAssociationType, entities: &[(&str, &str)]) -> Rule {
    let list: Vec<ResourceShareAssociation> = entities
        .iter()
        .map(|(entity, status)| {
            ResourceShareAssociation::builder()
                .resource_share_arn(SHARE_ARN)
                .associated_entity(*entity)
                .association_type(kind.clone())
                .status(ResourceShareAssociationStatus::from(*status))
                .external(true)
                .build()
        })
        .collect();
    mock!(Client::get_resource_share_associations)
        .match_requests(move |r| {
            r.association_type() == Some(&kind) && r.resource_share_arns() == [SHARE_ARN]
        })
        .then_output(move || {
            GetResourceShareAssociationsOutput::builder()
                .set_resource_share_associations(Some(list.clone()))
                .build()
        })
}

fn create_rule() -> Rule {
    mock!(Client::create_resource_share)
        .match_requests(|r| {
            let tags: Vec<(Option<&str>, Option<&str>)> =
                r.tags().iter().map(|t| (t.key(), t.value())).collect();
            r.name() == Some(NAME)
                && r.resource_arns() == [configuration().arn]
                && r.principals() == [CLICKHOUSE]
                && r.allow_external_principals() == Some(true)
                && r.client_token().is_some_and(|t| t.starts_with("pglink-"))
                && tags.contains(&(Some("pglink:managed-by"), Some("pglink")))
                && tags.contains(&(Some("pglink:name"), Some(STACK)))
        })
        .then_output(|| {
            CreateResourceShareOutput::builder()
                .resource_share(share(ResourceShareStatus::Active, true, true))
                .build()
        })
}

fn changes() -> (Rule, Rule, Rule) {
    (
        mock!(Client::associate_resource_share)
            .then_output(|| AssociateResourceShareOutput::builder().build()),
        mock!(Client::disassociate_resource_share)
            .then_output(|| DisassociateResourceShareOutput::builder().build()),
        mock!(Client::update_resource_share)
            .then_output(|| UpdateResourceShareOutput::builder().build()),
    )
}

#[tokio::test]
async fn a_missing_share_is_created_with_the_configuration_and_the_accounts() {
    // A deleted share of the same name is history, not ours.
    let (list, create) = (
        shares(vec![share(ResourceShareStatus::Deleted, true, true)]),
        create_rule(),
    );
    let c = mocks::clients(&[], &[&list, &create]);
    let mut journal = Journal::new(false);
    let made = ensure(
        &c,
        &mut journal,
        STACK,
        &spec(&[CLICKHOUSE]),
        Some(&configuration()),
    )
    .await
    .unwrap();
    assert_eq!(made.map(|s| s.arn), Some(SHARE_ARN.to_string()));
    assert_eq!(create.num_calls(), 1);
    assert!(journal.entries[0].confirmed);
    assert!(
        journal.entries[0].detail.starts_with("with 072088201116"),
        "{:?}",
        journal.entries
    );
}

#[tokio::test]
async fn an_exact_share_is_left_alone() {
    let list = shares(vec![share(ResourceShareStatus::Active, true, true)]);
    let accounts = associated(
        ResourceShareAssociationType::Principal,
        &[(CLICKHOUSE, "ASSOCIATED"), (DBT, "DISASSOCIATED")],
    );
    let cfg_arn = configuration().arn;
    let resources = associated(
        ResourceShareAssociationType::Resource,
        &[(&cfg_arn, "ASSOCIATED")],
    );
    let (associate, disassociate, update) = changes();
    let create = create_rule();
    let c = mocks::clients(
        &[],
        &[
            &list,
            &accounts,
            &resources,
            &associate,
            &disassociate,
            &update,
            &create,
        ],
    );
    let mut journal = Journal::new(false);
    ensure(
        &c,
        &mut journal,
        STACK,
        &spec(&[CLICKHOUSE]),
        Some(&configuration()),
    )
    .await
    .unwrap();
    let calls = [&associate, &disassociate, &update, &create].map(|r| r.num_calls());
    assert_eq!(calls, [0, 0, 0, 0]);
    assert_eq!(journal.changes(), 0);
}

#[tokio::test]
async fn accounts_and_the_configuration_are_made_exact() {
    let list = shares(vec![share(ResourceShareStatus::Active, true, false)]);
    // An account still being associated counts; one on its way out does not.
    let accounts = associated(
        ResourceShareAssociationType::Principal,
        &[(DBT, "ASSOCIATED"), (CLICKHOUSE, "ASSOCIATING")],
    );
    let resources = associated(
        ResourceShareAssociationType::Resource,
        &[("arn:aws:vpc-lattice:us-east-1:111122223333:resourceconfiguration/rcfg-0ld0000000000000", "ASSOCIATED")],
    );
    let cfg_arn = configuration().arn;
    let associate = mock!(Client::associate_resource_share)
        .match_requests(move |r| {
            r.principals().is_empty() && r.resource_arns() == [cfg_arn.clone()]
        })
        .then_output(|| AssociateResourceShareOutput::builder().build());
    let disassociate = mock!(Client::disassociate_resource_share)
        .match_requests(|r| {
            r.principals() == [DBT]
                && r.resource_arns()
                    == ["arn:aws:vpc-lattice:us-east-1:111122223333:resourceconfiguration/rcfg-0ld0000000000000"]
        })
        .then_output(|| DisassociateResourceShareOutput::builder().build());
    let update = mock!(Client::update_resource_share)
        .match_requests(|r| r.allow_external_principals() == Some(true))
        .then_output(|| UpdateResourceShareOutput::builder().build());
    let c = mocks::clients(
        &[],
        &[
            &list,
            &accounts,
            &resources,
            &associate,
            &disassociate,
            &update,
        ],
    );
    let mut journal = Journal::new(false);
    ensure(
        &c,
        &mut journal,
        STACK,
        &spec(&[CLICKHOUSE]),
        Some(&configuration()),
    )
    .await
    .unwrap();
    assert_eq!(
        [&associate, &disassociate, &update].map(|r| r.num_calls()),
        [1, 1, 1]
    );
    let detail = &journal.entries[0].detail;
    assert!(
        detail.contains("- accounts 346425330055") && detail.contains("allow accounts outside"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_share_of_that_name_without_our_tags_is_refused() {
    let (list, create) = (
        shares(vec![share(ResourceShareStatus::Active, false, true)]),
        create_rule(),
    );
    let c = mocks::clients(&[], &[&list, &create]);
    let err = ensure(
        &c,
        &mut Journal::new(false),
        STACK,
        &spec(&[CLICKHOUSE]),
        Some(&configuration()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("NotOwned"), "{err}");
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test]
async fn two_live_shares_of_the_name_are_refused_not_guessed_between() {
    let mut other = share(ResourceShareStatus::Active, true, true);
    other = ResourceShare::builder()
        .resource_share_arn(format!("{SHARE_ARN}-2"))
        .name(NAME)
        .status(ResourceShareStatus::Active)
        .set_tags(Some(other.tags().to_vec()))
        .build();
    let (list, create) = (
        shares(vec![share(ResourceShareStatus::Active, true, true), other]),
        create_rule(),
    );
    let c = mocks::clients(&[], &[&list, &create]);
    let err = ensure(
        &c,
        &mut Journal::new(false),
        STACK,
        &spec(&[CLICKHOUSE]),
        Some(&configuration()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("2 resource shares are named pglink-analytics"),
        "{err}"
    );
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let list = shares(vec![share(ResourceShareStatus::Active, true, true)]);
    let accounts = associated(
        ResourceShareAssociationType::Principal,
        &[(DBT, "ASSOCIATED")],
    );
    let resources = associated(ResourceShareAssociationType::Resource, &[]);
    let (associate, disassociate, update) = changes();
    let c = mocks::clients(
        &[],
        &[
            &list,
            &accounts,
            &resources,
            &associate,
            &disassociate,
            &update,
        ],
    );
    let mut journal = Journal::new(true);
    ensure(
        &c,
        &mut journal,
        STACK,
        &spec(&[CLICKHOUSE]),
        Some(&configuration()),
    )
    .await
    .unwrap();
    assert_eq!(journal.entries[0].mark, Mark::Update);
    assert_eq!(
        [&associate, &disassociate, &update].map(|r| r.num_calls()),
        [0, 0, 0]
    );
}
