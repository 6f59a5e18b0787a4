//! `pglink accept`: accept pending endpoint connections whose owner account belongs to an
//! allowed principal; list the others, never accept them.
//!
//! The decision is pure (`may_accept`); the SDK calls take a plain EC2 client so that they
//! are tested against the SDK's own mock layer (the emulator does not implement them).

use aws_sdk_ec2::types::Filter;
use serde::Serialize;

use crate::error::AwsError;

pub use crate::config::principal_account as account_of;

/// A connection may be accepted only when its owner's account is named by an allowed
/// principal. Nothing stands for every account: a `*` (refused by the config, but possibly
/// on the service by hand) names no account, so it accepts nothing.
pub fn may_accept(owner: &str, allowed_principals: &[String]) -> bool {
    allowed_principals
        .iter()
        .any(|p| account_of(p) == Some(owner))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub endpoint_id: String,
    pub owner: String,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct AcceptReport {
    pub accepted: Vec<Connection>,
    /// Pending, from an account that is not allowed: left for a human to judge.
    pub foreign: Vec<Connection>,
    /// Accept was requested and AWS refused: (connection, reason).
    pub failed: Vec<(Connection, String)>,
}

pub async fn pending(
    ec2: &aws_sdk_ec2::Client,
    service_id: &str,
) -> Result<Vec<Connection>, AwsError> {
    let all = connections(ec2, service_id).await?;
    Ok(all
        .into_iter()
        .filter(|(_, state)| is(state, "pendingAcceptance"))
        .map(|(c, _)| c)
        .collect())
}

/// Connections a consumer is using or waiting on: AWS refuses to delete an endpoint service
/// while any is `available` or `pendingAcceptance`; they must be rejected first.
/// https://docs.aws.amazon.com/vpc/latest/privatelink/delete-endpoint-service.html
pub async fn live(
    ec2: &aws_sdk_ec2::Client,
    service_id: &str,
) -> Result<Vec<(Connection, String)>, AwsError> {
    let all = connections(ec2, service_id).await?;
    Ok(all
        .into_iter()
        .filter(|(_, state)| {
            ["available", "pendingAcceptance", "pending"]
                .iter()
                .any(|s| is(state, s))
        })
        .collect())
}

/// AWS sends an endpoint's state as `pendingAcceptance`, `available`, ... (the API
/// reference's spelling), while the SDK's enum knows `PendingAcceptance`, `Available`: the
/// state is compared by name, ignoring case, so that both match.
/// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcEndpointConnections.html
fn is(state: &str, name: &str) -> bool {
    state.eq_ignore_ascii_case(name)
}

/// Every connection to the service, with its state.
async fn connections(
    ec2: &aws_sdk_ec2::Client,
    service_id: &str,
) -> Result<Vec<(Connection, String)>, AwsError> {
    let mut token = None;
    let mut out = Vec::new();
    loop {
        let page = ec2
            .describe_vpc_endpoint_connections()
            .filters(
                Filter::builder()
                    .name("service-id")
                    .values(service_id)
                    .build(),
            )
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeVpcEndpointConnections", service_id, e))?;
        out.extend(
            page.vpc_endpoint_connections()
                .iter()
                .filter(|c| c.service_id().is_none_or(|id| id == service_id))
                .filter_map(|c| {
                    Some((
                        Connection {
                            endpoint_id: c.vpc_endpoint_id()?.to_string(),
                            owner: c.vpc_endpoint_owner()?.to_string(),
                        },
                        c.vpc_endpoint_state()?.as_str().to_string(),
                    ))
                }),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Rejects the connections (the consumers' endpoints stop working); any AWS refuses is an
/// error naming it.
pub async fn reject(
    ec2: &aws_sdk_ec2::Client,
    service_id: &str,
    endpoint_ids: &[String],
) -> Result<(), AwsError> {
    let out = ec2
        .reject_vpc_endpoint_connections()
        .service_id(service_id)
        .set_vpc_endpoint_ids(Some(endpoint_ids.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("RejectVpcEndpointConnections", service_id, e))?;
    match out.unsuccessful().first() {
        Some(u) => Err(AwsError::Rejected {
            op: "RejectVpcEndpointConnections",
            code: u
                .error()
                .and_then(|e| e.code())
                .unwrap_or("Unknown")
                .to_string(),
            message: format!(
                "{}: {}",
                u.resource_id().unwrap_or("?"),
                u.error().and_then(|e| e.message()).unwrap_or("refused")
            ),
        }),
        None => Ok(()),
    }
}

pub async fn accept(
    ec2: &aws_sdk_ec2::Client,
    service_id: &str,
    allowed_principals: &[String],
) -> Result<AcceptReport, AwsError> {
    let (allowed, foreign): (Vec<_>, Vec<_>) = pending(ec2, service_id)
        .await?
        .into_iter()
        .partition(|c| may_accept(&c.owner, allowed_principals));
    let mut report = AcceptReport {
        foreign,
        ..AcceptReport::default()
    };
    if allowed.is_empty() {
        return Ok(report);
    }
    let out = ec2
        .accept_vpc_endpoint_connections()
        .service_id(service_id)
        .set_vpc_endpoint_ids(Some(
            allowed.iter().map(|c| c.endpoint_id.clone()).collect(),
        ))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("AcceptVpcEndpointConnections", service_id, e))?;
    for connection in allowed {
        let refusal = out
            .unsuccessful()
            .iter()
            .find(|u| u.resource_id() == Some(connection.endpoint_id.as_str()));
        match refusal {
            Some(u) => {
                let reason = u
                    .error()
                    .and_then(|e| e.message())
                    .unwrap_or("refused")
                    .to_string();
                report.failed.push((connection, reason));
            }
            None => report.accepted.push(connection),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::operation::accept_vpc_endpoint_connections::AcceptVpcEndpointConnectionsOutput;
    use aws_sdk_ec2::operation::describe_vpc_endpoint_connections::DescribeVpcEndpointConnectionsOutput;
    use aws_sdk_ec2::types::{
        State, UnsuccessfulItem, UnsuccessfulItemError, VpcEndpointConnection,
    };
    use aws_sdk_ec2::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const DBT: &str = "arn:aws:iam::346425330055:role/MTPL_Admin";

    #[test]
    fn decisions() {
        let allowed = vec![DBT.to_string()];
        assert!(may_accept("346425330055", &allowed));
        assert!(!may_accept("999999999999", &allowed));
        assert!(!may_accept("999999999999", &["*".to_string()]));
        assert!(!may_accept("*", &["*".to_string()]));
        assert!(!may_accept("346425330055", &[]));
        assert_eq!(
            account_of("arn:aws:iam::346425330055:root"),
            Some("346425330055")
        );
        assert_eq!(account_of("346425330055"), None);
    }

    fn connection(id: &str, owner: &str, state: State) -> VpcEndpointConnection {
        VpcEndpointConnection::builder()
            .service_id("vpce-svc-1")
            .vpc_endpoint_id(id)
            .vpc_endpoint_owner(owner)
            .vpc_endpoint_state(state)
            .build()
    }

    fn describe() -> aws_smithy_mocks::Rule {
        mock!(Client::describe_vpc_endpoint_connections)
            .match_requests(|r| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some("service-id") && f.values() == ["vpce-svc-1"])
            })
            .then_output(|| {
                DescribeVpcEndpointConnectionsOutput::builder()
                    // As AWS spells it on the wire ("pendingAcceptance"), which the SDK's
                    // enum does not know ("PendingAcceptance").
                    .vpc_endpoint_connections(connection(
                        "vpce-dbt",
                        "346425330055",
                        State::from("pendingAcceptance"),
                    ))
                    .vpc_endpoint_connections(connection(
                        "vpce-stranger",
                        "999999999999",
                        State::PendingAcceptance,
                    ))
                    .vpc_endpoint_connections(connection(
                        "vpce-old",
                        "346425330055",
                        State::Available,
                    ))
                    .build()
            })
    }

    #[tokio::test]
    async fn accepts_only_allowed_owners() {
        let describe = describe();
        let accept_rule = mock!(Client::accept_vpc_endpoint_connections)
            .match_requests(|r| {
                r.service_id() == Some("vpce-svc-1") && r.vpc_endpoint_ids() == ["vpce-dbt"]
            })
            .then_output(|| AcceptVpcEndpointConnectionsOutput::builder().build());
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe, &accept_rule]);
        let report = accept(&ec2, "vpce-svc-1", &[DBT.to_string()])
            .await
            .unwrap();
        assert_eq!(
            accept_rule.num_calls(),
            1,
            "accept must be called with exactly the allowed endpoint"
        );
        assert_eq!(
            report.accepted,
            vec![Connection {
                endpoint_id: "vpce-dbt".into(),
                owner: "346425330055".into()
            }]
        );
        assert_eq!(
            report.foreign,
            vec![Connection {
                endpoint_id: "vpce-stranger".into(),
                owner: "999999999999".into()
            }]
        );
        assert!(report.failed.is_empty());
    }

    #[tokio::test]
    async fn nothing_allowed_means_no_accept_call() {
        let describe = describe();
        let accept_rule = mock!(Client::accept_vpc_endpoint_connections)
            .then_output(|| AcceptVpcEndpointConnectionsOutput::builder().build());
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe, &accept_rule]);
        let report = accept(
            &ec2,
            "vpce-svc-1",
            &["arn:aws:iam::111111111111:root".to_string()],
        )
        .await
        .unwrap();
        assert_eq!(accept_rule.num_calls(), 0);
        assert_eq!(report.foreign.len(), 2);
    }

    #[tokio::test]
    async fn refusals_are_reported() {
        let describe = describe();
        let accept_rule = mock!(Client::accept_vpc_endpoint_connections).then_output(|| {
            let error = UnsuccessfulItemError::builder()
                .code("InvalidState")
                .message("endpoint was deleted")
                .build();
            AcceptVpcEndpointConnectionsOutput::builder()
                .unsuccessful(
                    UnsuccessfulItem::builder()
                        .resource_id("vpce-dbt")
                        .error(error)
                        .build(),
                )
                .build()
        });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe, &accept_rule]);
        let report = accept(&ec2, "vpce-svc-1", &[DBT.to_string()])
            .await
            .unwrap();
        assert!(report.accepted.is_empty());
        assert_eq!(report.failed[0].1, "endpoint was deleted");
    }

    #[tokio::test]
    async fn service_errors_are_classified() {
        let describe = mock!(Client::describe_vpc_endpoint_connections).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors><RequestID>x</RequestID></Response>",
                ),
            )
        });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe]);
        let err = accept(&ec2, "vpce-svc-1", &[DBT.to_string()])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "access_denied", "{err}");
    }
}
