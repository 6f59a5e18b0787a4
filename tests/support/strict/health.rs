//! Rule 3: target health as AWS reports it. moto calls every target `healthy` at once
//! and forgets a deregistered one at once; AWS shows a target `initial` while it
//! registers ("It can take a few minutes for the registration process to complete and
//! health checks to start"), then `healthy` or `unhealthy`, `draining` for the group's
//! deregistration delay after it is removed, and `unused` while no load balancer sends it
//! traffic. State, reason codes and their meaning:
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-register-targets.html

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::super::proxy::xml_escape;
use super::facts::{Group, Seen};
use super::{HealthModel, Target};

/// (group ARN, target ID, port): AWS compares targets by ID and port.
type Key = (String, String, i32);

/// A target registered or deregistered through the proxy; `zone` as the request gave it.
struct Mark {
    at: Instant,
    zone: Option<String>,
}

#[derive(Default)]
struct Book {
    /// Targets registered through the proxy. Any other is treated as registered long
    /// ago: past `initial`.
    registered: HashMap<Key, Mark>,
    /// Deregistered targets, with when their draining ends.
    draining: HashMap<Key, Mark>,
    /// Addresses where "nothing listens": their health checks fail.
    unhealthy: HashSet<IpAddr>,
}

pub struct Health {
    model: Option<HealthModel>,
    book: Mutex<Book>,
}

/// What DescribeTargetHealth shows for one target.
#[derive(Clone, Copy)]
enum Shown {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    NoLoadBalancer,
    ZoneNotEnabled,
    NotRegistered,
}

impl Shown {
    /// State, and reason code with description, in AWS's words.
    fn parts(self) -> (&'static str, Option<(&'static str, &'static str)>) {
        let (state, reason, description) = match self {
            Shown::Healthy => return ("healthy", None),
            Shown::Initial => (
                "initial",
                "Elb.RegistrationInProgress",
                "Target registration is in progress",
            ),
            Shown::Unhealthy => (
                "unhealthy",
                "Target.FailedHealthChecks",
                "Health checks failed",
            ),
            Shown::Draining => (
                "draining",
                "Target.DeregistrationInProgress",
                "Target deregistration is in progress",
            ),
            Shown::NoLoadBalancer => (
                "unused",
                "Target.NotInUse",
                "Target group is not configured to receive traffic from the load balancer",
            ),
            Shown::ZoneNotEnabled => (
                "unused",
                "Target.NotInUse",
                "Target is in an Availability Zone that is not enabled for the load balancer",
            ),
            Shown::NotRegistered => (
                "unused",
                "Target.NotRegistered",
                "Target is not registered to the target group",
            ),
        };
        (state, Some((reason, description)))
    }
}

impl Health {
    pub fn new(model: Option<HealthModel>) -> Health {
        Health {
            model,
            book: Mutex::default(),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mark_unhealthy(&self, ip: IpAddr, unhealthy: bool) {
        let mut book = self.book();
        if unhealthy {
            book.unhealthy.insert(ip);
        } else {
            book.unhealthy.remove(&ip);
        }
    }

    /// RegisterTargets succeeded. Targets in `held` were in the group already, and AWS
    /// ignores a repeat registration, so their clock does not restart.
    pub fn registered(
        &self,
        arn: &str,
        port: i32,
        targets: &[Target],
        held: &HashSet<(String, i32)>,
    ) {
        let now = Instant::now();
        let mut book = self.book();
        for t in targets {
            let port = t.port.unwrap_or(port);
            if held.contains(&(t.id.clone(), port)) {
                continue;
            }
            let key = (arn.to_string(), t.id.clone(), port);
            book.draining.remove(&key);
            let zone = t.zone.clone();
            book.registered.insert(key, Mark { at: now, zone });
        }
    }

    /// DeregisterTargets succeeded (moto refuses targets not in the group): they drain
    /// for `delay`, which moto does not show, so [`Health::describe`] adds them back.
    pub fn deregistered(&self, arn: &str, port: i32, targets: &[Target], delay: Duration) {
        let until = Instant::now() + delay;
        let mut book = self.book();
        for t in targets {
            let key = (arn.to_string(), t.id.clone(), t.port.unwrap_or(port));
            let zone = book.registered.remove(&key).and_then(|m| m.zone);
            book.draining.insert(key, Mark { at: until, zone });
        }
    }

    /// The DescribeTargetHealth answer for `seen` (moto's view) in a group whose load
    /// balancers are enabled in `zones`; `filtered` when the request named its targets.
    pub fn describe(
        &self,
        arn: &str,
        group: &Group,
        zones: &[String],
        seen: Vec<Seen>,
        filtered: bool,
    ) -> String {
        let now = Instant::now();
        let mut book = self.book();
        book.draining.retain(|_, d| d.at > now);
        let mut members = String::new();
        let mut listed = HashSet::new();
        for s in seen {
            let key = (arn.to_string(), s.id, s.port);
            let shown = match (s.registered, book.draining.contains_key(&key)) {
                (true, _) => self.shown(&book, &key, group, zones, now),
                (false, true) => Shown::Draining,
                (false, false) => Shown::NotRegistered,
            };
            members.push_str(&member(&book, &key, group, shown));
            listed.insert(key);
        }
        if !filtered {
            let mine = book
                .draining
                .keys()
                .filter(|k| k.0 == arn && !listed.contains(*k));
            for key in mine {
                members.push_str(&member(&book, key, group, Shown::Draining));
            }
        }
        response(&members)
    }

    /// The state of a target moto holds in the group.
    fn shown(
        &self,
        book: &Book,
        key: &Key,
        group: &Group,
        zones: &[String],
        now: Instant,
    ) -> Shown {
        if zones.is_empty() {
            return Shown::NoLoadBalancer;
        }
        let zone = zone_of(book, key, group);
        if zone != "all" && !zones.contains(&zone) {
            return Shown::ZoneNotEnabled;
        }
        let registration = self.model.map_or(Duration::ZERO, |m| m.registration);
        if let Some(mark) = book.registered.get(key) {
            if now < mark.at + registration {
                return Shown::Initial;
            }
        }
        let ip = key.1.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| book.unhealthy.contains(&ip)) {
            return Shown::Unhealthy;
        }
        Shown::Healthy
    }
}

/// The zone a request gave, else the zone of the VPC subnet holding the IP, else `all`
/// (an address outside every subnet can only have been registered with `all`).
fn zone_of(book: &Book, key: &Key, group: &Group) -> String {
    let given =
        (book.registered.get(key).or_else(|| book.draining.get(key))).and_then(|m| m.zone.clone());
    let ip = key.1.parse::<IpAddr>().ok();
    let subnet = ip.and_then(|ip| group.zone_of(ip)).map(str::to_string);
    given.or(subnet).unwrap_or_else(|| "all".to_string())
}

/// One `TargetHealthDescriptions` member.
fn member(book: &Book, key: &Key, group: &Group, shown: Shown) -> String {
    let (_, id, port) = key;
    let health_check_port = match group.health_check_port.as_deref() {
        None | Some("traffic-port") => port.to_string(),
        Some(p) => p.to_string(),
    };
    let (state, why) = shown.parts();
    let why = why.map_or(String::new(), |(reason, description)| {
        format!("<Reason>{reason}</Reason><Description>{description}</Description>")
    });
    format!(
        "<member><Target><Id>{}</Id><Port>{port}</Port><AvailabilityZone>{}</AvailabilityZone>\
         </Target><HealthCheckPort>{}</HealthCheckPort>\
         <TargetHealth><State>{state}</State>{why}</TargetHealth></member>",
        xml_escape(id),
        xml_escape(&zone_of(book, key, group)),
        xml_escape(&health_check_port),
    )
}

/// The whole Query-protocol answer around `members`.
fn response(members: &str) -> String {
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    let id = REQUESTS.fetch_add(1, Ordering::Relaxed);
    format!(
        "<DescribeTargetHealthResponse \
         xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
         <DescribeTargetHealthResult><TargetHealthDescriptions>{members}\
         </TargetHealthDescriptions></DescribeTargetHealthResult>\
         <ResponseMetadata><RequestId>strict-{id:012}</RequestId></ResponseMetadata>\
         </DescribeTargetHealthResponse>"
    )
}
