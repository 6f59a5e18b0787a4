//! A scriptable DNS server on 127.0.0.1 (UDP) for tests.
//!
//! It runs on its own std thread so it answers whatever runtime the caller
//! uses (multi-thread, current-thread, or paused time). Records can be changed
//! while a test runs, which is how failover is simulated. It answers every query afresh;
//! [`Unbound`](super::unbound::Unbound) in front of it caches as the VPC resolver does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::IndexedRandom;

/// Longest CNAME chain followed before answering SERVFAIL (loop guard).
const MAX_CHAIN: usize = 8;

/// How a name answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// A and/or AAAA records with this TTL (seconds). A query for A returns
    /// only the v4 ones, AAAA only v6; a type with none gives NOERROR/NODATA.
    Addresses { ips: Vec<IpAddr>, ttl: u32 },
    /// CNAME to another name on this server. The answer carries the CNAME and
    /// the target's records, as a recursive resolver would (up to 8 deep).
    /// The final rcode is the target's (e.g. NXDOMAIN for an unknown target);
    /// a `Drop` target means no answer at all.
    Cname { target: String, ttl: u32 },
    /// CNAME to one of `targets`, picked at random per query, as an Aurora reader or
    /// custom endpoint answers; then followed like `Cname`. The instances' own names
    /// are set on this server like any other.
    RoundRobin { targets: Vec<String>, ttl: u32 },
    /// NXDOMAIN with an SOA in the authority section (negative TTL 1).
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// NOERROR with no answers (NODATA), SOA in the authority section.
    Empty,
    /// Never answer: the client times out.
    Drop,
}

#[derive(Default)]
struct Zone {
    names: HashMap<String, Behaviour>,
    counts: HashMap<String, u64>,
}

struct Shared {
    zone: Mutex<Zone>,
    total: AtomicU64,
    stop: AtomicBool,
}

/// Sets the running server's records; see [`TestDns::records`].
#[derive(Clone)]
pub struct Records(Arc<Shared>);

impl Records {
    pub fn set(&self, name: &str, behaviour: Behaviour) {
        let mut zone = self.0.zone.lock().unwrap_or_else(|e| e.into_inner());
        zone.names.insert(key(name), behaviour);
    }
}

/// The running server; stopped (thread joined) on drop.
pub struct TestDns {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Names are compared lowercased and without the trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl TestDns {
    /// Binds a random UDP port on 127.0.0.1 and starts answering.
    pub fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS socket");
        let addr = socket.local_addr().expect("DNS local addr");
        let shared = Arc::new(Shared {
            zone: Mutex::new(Zone::default()),
            total: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let thread = Some(spawn(socket, shared.clone()));
        TestDns {
            addr,
            shared,
            thread,
        }
    }

    /// Stops serving and closes the port: queries are then refused by the host, as when
    /// the nameserver is down. Records and counts are kept for [`TestDns::up`].
    pub fn down(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking recv at once rather than waiting for its timeout.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(&[], self.addr);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Serves again on the same address after [`TestDns::down`].
    pub fn up(&mut self) {
        assert!(self.thread.is_none(), "the DNS server is already up");
        let socket = UdpSocket::bind(self.addr).expect("re-bind the DNS port");
        self.shared.stop.store(false, Ordering::SeqCst);
        self.thread = Some(spawn(socket, self.shared.clone()));
    }

    /// Sets how `name` answers (case-insensitive, trailing dot optional).
    pub fn set(&self, name: &str, behaviour: Behaviour) {
        self.zone().names.insert(key(name), behaviour);
    }

    /// A handle that sets records from elsewhere (another thread, a proxy hook) while
    /// the server runs.
    pub fn records(&self) -> Records {
        Records(self.shared.clone())
    }

    /// Forgets `name`; it then answers NXDOMAIN.
    pub fn remove(&self, name: &str) {
        self.zone().names.remove(&key(name));
    }

    /// Total queries received (all names), for rate figures.
    pub fn queries(&self) -> u64 {
        self.shared.total.load(Ordering::SeqCst)
    }

    /// Queries whose question was `name` (any type; CNAME targets followed
    /// on the server's side are not counted).
    pub fn queries_for(&self, name: &str) -> u64 {
        self.zone().counts.get(&key(name)).copied().unwrap_or(0)
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, Zone> {
        self.shared.zone.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.down();
    }
}

fn spawn(socket: UdpSocket, shared: Arc<Shared>) -> JoinHandle<()> {
    // The timeout lets the loop notice `stop` even if the wake-up datagram is lost.
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set DNS read timeout");
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::Builder::new()
        .name(format!("test-dns-{port}"))
        .spawn(move || serve(&socket, &shared))
        .expect("spawn DNS thread")
}

fn serve(socket: &UdpSocket, shared: &Shared) {
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue, // timeout or transient error: re-check `stop`
        };
        let Ok(request) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        shared.total.fetch_add(1, Ordering::SeqCst);
        let reply = {
            let mut zone = shared.zone.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(q) = request.queries.first() {
                *zone.counts.entry(key(&q.name().to_ascii())).or_default() += 1;
            }
            respond(&request, &zone.names)
        };
        if let Some(bytes) = reply.and_then(|m| m.to_vec().ok()) {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

/// Builds the reply to `request`, or `None` to stay silent.
fn respond(request: &Message, names: &HashMap<String, Behaviour>) -> Option<Message> {
    let meta = &request.metadata;
    let mut resp = Message::response(meta.id, meta.op_code);
    resp.metadata.authoritative = true;
    resp.metadata.recursion_desired = meta.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_queries(request.queries.clone());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        resp.set_edns(edns);
    }
    if meta.message_type != MessageType::Query || meta.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return Some(resp);
    }
    let [query] = request.queries.as_slice() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return Some(resp);
    };
    answer(query, names, &mut resp).then_some(resp)
}

/// Fills in answers for `query`, following CNAMEs. Returns false for `Drop`.
fn answer(query: &Query, names: &HashMap<String, Behaviour>, resp: &mut Message) -> bool {
    let qtype = query.query_type();
    // The first owner name is echoed exactly as asked (case included).
    let mut owner = query.name().clone();
    for _ in 0..=MAX_CHAIN {
        let behaviour = names.get(&key(&owner.to_ascii()));
        if let Some((target, ttl)) = behaviour.and_then(alias) {
            let target = fqdn(target);
            let rdata = RData::CNAME(CNAME(target.clone()));
            resp.add_answer(Record::from_rdata(owner.clone(), ttl, rdata));
            if qtype == RecordType::CNAME {
                return true;
            }
            owner = target;
            continue;
        }
        let rcode = match behaviour {
            None | Some(Behaviour::NxDomain) => ResponseCode::NXDomain,
            Some(Behaviour::ServFail) => ResponseCode::ServFail,
            Some(Behaviour::Refused) => ResponseCode::Refused,
            Some(Behaviour::Empty) => ResponseCode::NoError,
            Some(Behaviour::Drop) => return false,
            Some(Behaviour::Addresses { ips, ttl }) => {
                resp.add_answers(address_records(&owner, ips, *ttl, qtype));
                ResponseCode::NoError
            }
            // Only a `RoundRobin` with no targets gets here: nothing to point at.
            Some(Behaviour::Cname { .. } | Behaviour::RoundRobin { .. }) => ResponseCode::ServFail,
        };
        resp.metadata.response_code = rcode;
        if resp.answers.is_empty()
            && matches!(rcode, ResponseCode::NXDomain | ResponseCode::NoError)
        {
            resp.add_authority(soa_for(&owner));
        }
        return true;
    }
    resp.metadata.response_code = ResponseCode::ServFail;
    true
}

/// The name `behaviour` is an alias for in this answer, with the CNAME's TTL.
fn alias(behaviour: &Behaviour) -> Option<(&str, u32)> {
    match behaviour {
        Behaviour::Cname { target, ttl } => Some((target, *ttl)),
        Behaviour::RoundRobin { targets, ttl } => {
            targets.choose(&mut rand::rng()).map(|t| (t.as_str(), *ttl))
        }
        _ => None,
    }
}

fn address_records(owner: &Name, ips: &[IpAddr], ttl: u32, qtype: RecordType) -> Vec<Record> {
    ips.iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|rdata| Record::from_rdata(owner.clone(), ttl, rdata))
        .collect()
}

/// Parses a configured name as fully qualified.
fn fqdn(name: &str) -> Name {
    let with_dot = format!("{}.", name.trim_end_matches('.'));
    Name::from_ascii(&with_dot).unwrap_or_else(|e| panic!("bad DNS name {name:?}: {e}"))
}

/// SOA for negative answers: owned by the parent of `name`, negative TTL 1 s
/// so resolvers that honour it do not hide later changes.
fn soa_for(name: &Name) -> Record {
    let zone = if name.num_labels() > 1 {
        name.base_name()
    } else {
        Name::root()
    };
    let soa = SOA::new(fqdn("ns.test"), fqdn("hostmaster.test"), 1, 60, 60, 600, 1);
    Record::from_rdata(zone, 1, RData::SOA(soa))
}
