//! RDS failovers as the world around pglink sees them, which moto does not model: when a
//! failover call succeeds (RebootDBInstance with ForceFailover, FailoverDBCluster), RDS
//! writes failover events (moto writes none) and, a little later, repoints the database's
//! DNS name: the test's hook does that. `DescribeEvents` answers from these events.
//! https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::call::Call;

const NS: &str = "http://rds.amazonaws.com/doc/2014-10-31/";

/// Called with the database's identifier once its failover call succeeded.
pub type Hook = Arc<dyn Fn(&str) + Send + Sync>;

struct Event {
    source: String,
    source_type: &'static str,
    message: String,
    at: SystemTime,
}

type Events = Arc<Mutex<Vec<Event>>>;

#[derive(Default)]
pub struct Failovers {
    events: Events,
    hook: Mutex<Option<(Hook, Duration)>>,
}

impl Failovers {
    /// From now on a failover runs `hook` after `delay` (RDS's own failover time).
    pub fn on_failover(&self, delay: Duration, hook: Hook) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some((hook, delay));
    }

    /// After moto accepted a call: a failover starts.
    pub fn after(&self, call: &Call) {
        let (source, source_type, started, completed) = match call.action.as_deref() {
            Some("RebootDBInstance") if call.get("ForceFailover") == Some("true") => (
                call.get("DBInstanceIdentifier"),
                "db-instance",
                "A Multi-AZ failover has started.",
                "A Multi-AZ failover has completed.",
            ),
            Some("FailoverDBCluster") => (
                call.get("DBClusterIdentifier"),
                "db-cluster",
                "Started cross AZ failover to DB instance",
                "Completed failover to DB instance",
            ),
            _ => return,
        };
        let Some(source) = source.map(str::to_string) else {
            return;
        };
        record(&self.events, &source, source_type, started);
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some((hook, delay)) = hook else {
            return;
        };
        let events = self.events.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            hook(&source);
            record(&events, &source, source_type, completed);
        });
    }

    /// `DescribeEvents`, for the identifier, type and time window asked (RDS's default
    /// window is the past hour).
    /// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeEvents.html
    pub fn answer(&self, call: &Call) -> Option<String> {
        if call.action.as_deref() != Some("DescribeEvents") {
            return None;
        }
        let source = call.get("SourceIdentifier");
        let source_type = call.get("SourceType");
        let since = match call.get("StartTime") {
            Some(t) => humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
                .unwrap_or_else(|e| panic!("StartTime {t:?} is not ISO 8601: {e}")),
            None => SystemTime::now() - Duration::from_secs(3600),
        };
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let items: String = events
            .iter()
            .filter(|e| source.is_none_or(|s| s == e.source))
            .filter(|e| source_type.is_none_or(|t| t == e.source_type))
            .filter(|e| e.at >= since)
            .map(|e| {
                format!(
                    "<Event><SourceIdentifier>{}</SourceIdentifier><SourceType>{}</SourceType><Message>{}</Message><EventCategories><EventCategory>failover</EventCategory></EventCategories><Date>{}</Date></Event>",
                    e.source,
                    e.source_type,
                    e.message,
                    humantime::format_rfc3339_millis(e.at)
                )
            })
            .collect();
        Some(format!(
            "<DescribeEventsResponse xmlns=\"{NS}\"><DescribeEventsResult><Events>{items}</Events></DescribeEventsResult><ResponseMetadata><RequestId>strict</RequestId></ResponseMetadata></DescribeEventsResponse>"
        ))
    }
}

fn record(events: &Events, source: &str, source_type: &'static str, message: &str) {
    events
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Event {
            source: source.to_string(),
            source_type,
            message: message.to_string(),
            at: SystemTime::now(),
        });
}
