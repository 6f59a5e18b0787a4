//! The consumer's path, tried once a second from the moment DNS changes until it answers:
//! a TCP connect (`drill --probe`) or a `SELECT 1` (`drill --dsn`). Each runs in its own task
//! so that a slow attempt (a TLS handshake through an NLB that still routes to the old
//! target) never holds up the drill's other observations.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::drill::Step;
use crate::sql_probe::Dsn;

/// The pause between attempts.
const EVERY: Duration = Duration::from_secs(1);
/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What to try through the consumer's path.
#[derive(Debug, Clone)]
pub enum Check {
    /// A TCP connect to `HOST:PORT`.
    Connect(String),
    /// `SELECT 1` with a libpq connection string.
    Query(Arc<Dsn>),
}

impl Check {
    pub fn step(&self) -> Step {
        match self {
            Self::Connect(_) => Step::ProbeConnected,
            Self::Query(_) => Step::QueryAnswered,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Connect(addr) => addr.clone(),
            Self::Query(dsn) => format!("SELECT 1 as {dsn}"),
        }
    }

    async fn attempt(&self) -> Result<(), String> {
        match self {
            Self::Connect(addr) => {
                match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "no connection within {}",
                        humantime::format_duration(CONNECT_TIMEOUT)
                    )),
                }
            }
            Self::Query(dsn) => dsn.select_one().await,
        }
    }
}

#[derive(Debug, Default)]
struct Outcome {
    /// When the first attempt that succeeded started, after `since`, what it was and how
    /// long it took.
    answered: Option<(Duration, String)>,
    last_error: Option<String>,
}

/// A check tried in the background until it succeeds; stopped when dropped.
pub struct Probe {
    check: Check,
    outcome: Arc<Mutex<Outcome>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Starts trying `check`, timing success from `since`.
    pub fn start(check: Check, since: Instant) -> Self {
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let (shared, tried) = (outcome.clone(), check.clone());
        let task = tokio::spawn(async move {
            loop {
                let at = since.elapsed();
                let began = Instant::now();
                let result = tried.attempt().await;
                let took = began.elapsed().as_millis();
                let done = {
                    let mut o = shared.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(()) => {
                            o.answered = Some((at, format!("{} in {took} ms", tried.describe())))
                        }
                        Err(e) => o.last_error = Some(e),
                    }
                    o.answered.is_some()
                };
                if done {
                    return;
                }
                tokio::time::sleep(EVERY).await;
            }
        });
        Self {
            check,
            outcome,
            task,
        }
    }

    pub fn step(&self) -> Step {
        self.check.step()
    }

    /// When the check first succeeded, and what it was.
    pub fn answered(&self) -> Option<(Duration, String)> {
        self.lock().answered.clone()
    }

    /// The latest failure's own words.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connect_is_timed_from_its_start_and_a_refusal_kept_in_its_own_words() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        let since = Instant::now();
        let probe = Probe::start(Check::Connect(open.clone()), since);
        // A port nobody listens on: bound then closed.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let refused = Probe::start(Check::Connect(closed), since);
        for _ in 0..100 {
            if probe.answered().is_some() && refused.last_error().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (at, detail) = probe.answered().expect("connected");
        assert!(at <= since.elapsed());
        assert!(detail.starts_with(&format!("{open} in ")), "{detail}");
        assert_eq!(probe.step(), Step::ProbeConnected);
        assert!(refused.answered().is_none());
        let error = refused.last_error().expect("refused");
        assert!(error.contains("refused"), "{error}");
    }
}
