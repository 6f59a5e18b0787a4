//! The endpoint-connection calls moto does not implement, answered from what moto does know
//! (the consumer endpoints created against a service, `DescribeVpcEndpoints`), as AWS
//! answers them (design.md section 5):
//! - `DescribeVpcEndpointConnections`: one connection per consumer endpoint,
//!   `pendingAcceptance` while the service requires acceptance and it is not accepted,
//!   `available` once accepted, `rejected` once rejected here;
//! - `AcceptVpcEndpointConnections`: accepts pending ones; any other is an unsuccessful item
//!   (`InvalidState`), as AWS answers;
//!   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AcceptVpcEndpointConnections.html
//! - `RejectVpcEndpointConnections`: marks them rejected;
//! - `DeleteVpcEndpointServiceConfigurations` of a service with a connection still
//!   `available` or `pendingAcceptance`: refused, item by item, as AWS does.
//!   https://docs.aws.amazon.com/vpc/latest/privatelink/delete-endpoint-service.html

use std::collections::HashSet;
use std::sync::Mutex;

use super::call::Call;
use super::facts::Facts;

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

#[derive(Default)]
pub struct Endpoints {
    accepted: Mutex<HashSet<String>>,
    rejected: Mutex<HashSet<String>>,
}

impl Endpoints {
    /// The answer to an EC2 call moto cannot answer, or `None` to forward it.
    pub async fn answer(&self, call: &Call, facts: &Facts) -> Option<String> {
        match call.action.as_deref()? {
            "DescribeVpcEndpointConnections" => {
                let service = call.filter("service-id")?;
                let items: String = self
                    .connections(&service, facts)
                    .await
                    .iter()
                    .map(|(id, owner, state)| {
                        format!(
                            "<item><serviceId>{service}</serviceId><vpcEndpointId>{id}</vpcEndpointId><vpcEndpointOwner>{owner}</vpcEndpointOwner><vpcEndpointState>{state}</vpcEndpointState></item>"
                        )
                    })
                    .collect();
                Some(format!(
                    "<DescribeVpcEndpointConnectionsResponse xmlns=\"{NS}\"><requestId>strict</requestId><vpcEndpointConnectionSet>{items}</vpcEndpointConnectionSet></DescribeVpcEndpointConnectionsResponse>"
                ))
            }
            "AcceptVpcEndpointConnections" => {
                let service = call.get("ServiceId")?.to_string();
                let connections = self.connections(&service, facts).await;
                let mut refused = String::new();
                for id in call.numbered("VpcEndpointId") {
                    let pending = connections
                        .iter()
                        .any(|(e, _, state)| *e == id && state == "pendingAcceptance");
                    if pending {
                        lock(&self.accepted).insert(id);
                    } else {
                        refused.push_str(&format!(
                            "<item><error><code>InvalidState</code><message>Endpoint {id} is not pending acceptance</message></error><resourceId>{id}</resourceId></item>"
                        ));
                    }
                }
                Some(format!(
                    "<AcceptVpcEndpointConnectionsResponse xmlns=\"{NS}\"><requestId>strict</requestId><unsuccessful>{refused}</unsuccessful></AcceptVpcEndpointConnectionsResponse>"
                ))
            }
            "RejectVpcEndpointConnections" => {
                lock(&self.rejected).extend(call.numbered("VpcEndpointId"));
                Some(format!(
                    "<RejectVpcEndpointConnectionsResponse xmlns=\"{NS}\"><requestId>strict</requestId><unsuccessful/></RejectVpcEndpointConnectionsResponse>"
                ))
            }
            "DeleteVpcEndpointServiceConfigurations" => {
                let mut refused = String::new();
                for service in call.numbered("ServiceId") {
                    let live = self
                        .connections(&service, facts)
                        .await
                        .iter()
                        .any(|(_, _, state)| state == "available" || state == "pendingAcceptance");
                    if live {
                        refused.push_str(&format!(
                            "<item><error><code>ExistingVpcEndpointConnections</code><message>Service {service} has existing active VPC Endpoint connections</message></error><resourceId>{service}</resourceId></item>"
                        ));
                    }
                }
                (!refused.is_empty()).then(|| {
                    format!(
                        "<DeleteVpcEndpointServiceConfigurationsResponse xmlns=\"{NS}\"><requestId>strict</requestId><unsuccessful>{refused}</unsuccessful></DeleteVpcEndpointServiceConfigurationsResponse>"
                    )
                })
            }
            _ => None,
        }
    }

    /// (endpoint id, owner, state) of every consumer endpoint of the service.
    async fn connections(&self, service_id: &str, facts: &Facts) -> Vec<(String, String, String)> {
        let rejected = lock(&self.rejected).clone();
        let accepted = lock(&self.accepted).clone();
        facts
            .consumer_endpoints(service_id)
            .await
            .into_iter()
            .map(|(id, owner, state)| {
                let state = if rejected.contains(&id) {
                    "rejected".to_string()
                } else if accepted.contains(&id) {
                    "available".to_string()
                } else {
                    state
                };
                (id, owner, state)
            })
            .collect()
    }
}

fn lock(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}
