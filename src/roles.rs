//! Credentials for a target's own IAM role: STS AssumeRole, cached and renewed well before
//! they expire, so a role serves every client built on it (one per region) with one call an
//! hour, and a slow or failing STS never stops calls while the old credentials still hold.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use tokio::sync::Mutex;

use crate::config::RoleToAssume;
use crate::error::{error_chain, find_in_chain};

/// Renew this long before expiry: the SDK's own cache asks again only seconds before, and
/// a failed renewal must leave time to retry with the old credentials still valid.
pub const RENEW_AHEAD: Duration = Duration::from_secs(300);
/// Credentials this close to expiry are not handed out: a request signed now may arrive late.
pub const USABLE_MARGIN: Duration = Duration::from_secs(30);
/// After a refusal, STS is not asked again for this long; calls meanwhile get the refusal.
/// Every target on the role shares it, so a denied role costs one STS call per window.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// The session name CloudTrail shows for pglink's calls.
pub const SESSION_NAME: &str = "pglink";

/// A role that could not be assumed; found in an SDK error's chain by `AwsError::from_sdk`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not assume role {role_arn}: {reason}")]
pub struct RoleUnavailable {
    pub role_arn: String,
    pub reason: String,
}

/// What to do with the credentials at hand, given the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use them.
    Fresh,
    /// Renew now; on failure they may still be used.
    RenewDue,
    /// Renew now; they cannot be used.
    Expired,
}

/// Pure: where credentials expiring at `expiry` stand at `now`.
pub fn freshness(expiry: Option<SystemTime>, now: SystemTime) -> Freshness {
    let Some(expiry) = expiry else {
        return Freshness::Fresh;
    };
    match expiry.duration_since(now) {
        Ok(left) if left > RENEW_AHEAD => Freshness::Fresh,
        Ok(left) if left > USABLE_MARGIN => Freshness::RenewDue,
        _ => Freshness::Expired,
    }
}

#[derive(Default)]
struct Held {
    credentials: Option<Credentials>,
    failure: Option<(SystemTime, RoleUnavailable)>,
}

/// A credentials provider for one role. Clone-cheap; clients of every region share it.
#[derive(Clone)]
pub struct RoleCredentials {
    role_arn: Arc<str>,
    sts: Arc<dyn ProvideCredentials>,
    held: Arc<std::sync::Mutex<Held>>,
    /// Held by the one call renewing; the others use the current credentials meanwhile,
    /// or wait for the renewal when those cannot be used.
    renewing: Arc<Mutex<()>>,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("role_arn", &self.role_arn)
            .finish()
    }
}

impl RoleCredentials {
    /// Assumes `role` with the credentials, endpoint and retry settings of `base`, through
    /// STS in `region` (regional endpoints: the call stays in the targets' region).
    pub async fn new(base: &SdkConfig, role: &RoleToAssume, region: &str) -> Self {
        let mut builder = AssumeRoleProvider::builder(role.arn.clone())
            .session_name(SESSION_NAME)
            .region(aws_config::Region::new(region.to_string()))
            .configure(base);
        if let Some(id) = &role.external_id {
            builder = builder.external_id(id.clone());
        }
        Self::from_provider(&role.arn, builder.build().await)
    }

    /// Wraps any provider as the source of this role's credentials (tests use fakes).
    pub fn from_provider(role_arn: &str, sts: impl ProvideCredentials + 'static) -> Self {
        Self {
            role_arn: role_arn.into(),
            sts: Arc::new(sts),
            held: Arc::default(),
            renewing: Arc::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The held credentials and where they stand.
    fn at_hand(&self, now: SystemTime) -> (Option<Credentials>, Option<Freshness>) {
        let held = self.held().credentials.clone();
        let state = held.as_ref().map(|c| freshness(c.expiry(), now));
        (held, state)
    }

    /// The credentials to sign with: the held ones while fresh, else renewed. One renewal
    /// at a time, so many targets on one role never stampede STS, and none waits for it
    /// while the held credentials are still valid.
    pub async fn current(&self, now: SystemTime) -> Result<Credentials, RoleUnavailable> {
        let (held, state) = self.at_hand(now);
        if state == Some(Freshness::Fresh) {
            return Ok(held.expect("a state implies credentials"));
        }
        let usable = held.filter(|_| state == Some(Freshness::RenewDue));
        let _renewing = match (self.renewing.try_lock(), &usable) {
            (Ok(guard), _) => guard,
            (Err(_), Some(c)) => return Ok(c.clone()),
            (Err(_), None) => self.renewing.lock().await,
        };
        // Another call may have renewed between the look above and the lock.
        let (held, state) = self.at_hand(now);
        if state == Some(Freshness::Fresh) {
            return Ok(held.expect("a state implies credentials"));
        }
        let recent_failure =
            self.held().failure.clone().filter(|(at, _)| {
                now.duration_since(*at).unwrap_or_default() < RETRY_AFTER_FAILURE
            });
        if let Some((_, failure)) = recent_failure {
            return usable.ok_or(failure);
        }
        match self.sts.provide_credentials().await {
            Ok(c) => {
                let mut held = self.held();
                held.credentials = Some(c.clone());
                held.failure = None;
                tracing::debug!(role = %self.role_arn, expiry = c.expiry().map(|t| humantime::format_rfc3339_seconds(t).to_string()), "assumed role");
                Ok(c)
            }
            Err(e) => {
                let failure = RoleUnavailable {
                    role_arn: self.role_arn.to_string(),
                    reason: sts_reason(&e),
                };
                self.held().failure = Some((now, failure.clone()));
                match usable {
                    Some(c) => {
                        tracing::warn!(error = %failure, "renewing role credentials failed; the current ones are still valid");
                        Ok(c)
                    }
                    None => Err(failure),
                }
            }
        }
    }
}

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.current(SystemTime::now())
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

/// STS's own code and message where there is one (`AccessDenied: User ... is not
/// authorized to perform: sts:AssumeRole on resource ...`), else the error chain.
fn sts_reason(e: &CredentialsError) -> String {
    use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    type StsError =
        SdkError<AssumeRoleError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>;
    match find_in_chain::<StsError>(e) {
        Some(SdkError::ServiceError(se)) => {
            let code = se.err().code().unwrap_or("Unknown");
            format!("{code}: {}", se.err().message().unwrap_or(""))
        }
        _ => error_chain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn credentials_are_renewed_ahead_and_refused_near_expiry() {
        let expiry = Some(at(3600));
        assert_eq!(freshness(expiry, at(0)), Freshness::Fresh);
        assert_eq!(freshness(expiry, at(3600 - 301)), Freshness::Fresh);
        assert_eq!(freshness(expiry, at(3600 - 299)), Freshness::RenewDue);
        assert_eq!(freshness(expiry, at(3600 - 31)), Freshness::RenewDue);
        assert_eq!(freshness(expiry, at(3600 - 29)), Freshness::Expired);
        assert_eq!(freshness(expiry, at(4000)), Freshness::Expired);
        assert_eq!(freshness(None, at(0)), Freshness::Fresh);
    }

    /// STS as a script: each call takes the next answer; an hour-long session from `at(n)`.
    /// The test keeps `calls` to count them.
    #[derive(Debug)]
    struct Script {
        calls: Arc<AtomicUsize>,
        answers: Vec<Option<u64>>,
    }

    impl ProvideCredentials for Script {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let i = self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = self.answers.get(i).copied().flatten();
            future::ProvideCredentials::ready(match answer {
                Some(issued) => Ok(Credentials::new(
                    format!("ASIA{i}"),
                    "secret",
                    Some("token".into()),
                    Some(at(issued) + HOUR),
                    "script",
                )),
                None => Err(CredentialsError::not_loaded("AccessDenied")),
            })
        }
    }

    /// The role on a scripted STS, and STS's call count.
    fn role(answers: Vec<Option<u64>>) -> (RoleCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let script = Script {
            calls: calls.clone(),
            answers,
        };
        let role = RoleCredentials::from_provider("arn:aws:iam::123456789012:role/r", script);
        (role, calls)
    }

    #[tokio::test]
    async fn one_sts_call_serves_until_renewal_is_due() {
        let (role, sts) = role(vec![Some(0), Some(3400)]);
        let first = role.current(at(0)).await.unwrap();
        assert_eq!(role.current(at(3000)).await.unwrap(), first);
        assert_eq!(sts.load(Ordering::SeqCst), 1);
        let renewed = role.current(at(3400)).await.unwrap();
        assert_ne!(renewed, first, "renewed 200 s before expiry");
        assert_eq!(sts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_valid_credentials_and_waits_before_asking_again() {
        let (role, sts) = role(vec![Some(0), None, Some(3500)]);
        let first = role.current(at(0)).await.unwrap();
        // Renewal due, STS refuses: the held credentials still serve.
        assert_eq!(role.current(at(3400)).await.unwrap(), first);
        assert_eq!(role.current(at(3405)).await.unwrap(), first);
        assert_eq!(sts.load(Ordering::SeqCst), 2, "no call within the wait");
        let renewed = role.current(at(3411)).await.unwrap();
        assert_ne!(renewed, first);
        assert_eq!(sts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_role_names_itself_and_is_not_asked_in_a_loop() {
        let (role, sts) = role(vec![None, None, Some(20)]);
        let e = role.current(at(0)).await.unwrap_err();
        assert_eq!(e.role_arn, "arn:aws:iam::123456789012:role/r");
        assert!(e.to_string().contains("could not assume role"), "{e}");
        assert!(e.to_string().contains("AccessDenied"), "{e}");
        assert!(role.current(at(5)).await.is_err());
        assert_eq!(sts.load(Ordering::SeqCst), 1);
        assert!(role.current(at(10)).await.is_err());
        assert!(
            role.current(at(20)).await.is_ok(),
            "allowed once the trust is fixed"
        );
        assert_eq!(sts.load(Ordering::SeqCst), 3);
    }

    /// STS that answers only when the test says so, counting calls.
    #[derive(Debug)]
    struct Gated(Arc<tokio::sync::Notify>, Arc<AtomicUsize>);

    impl ProvideCredentials for Gated {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(async move {
                self.1.fetch_add(1, Ordering::SeqCst);
                self.0.notified().await;
                let expiry = Some(at(3000) + HOUR);
                Ok(Credentials::new("ASIANEW", "s", None, expiry, "gated"))
            })
        }
    }

    #[tokio::test]
    async fn nobody_waits_for_a_renewal_while_the_credentials_hold() {
        let gate = Arc::new(tokio::sync::Notify::new());
        let role = RoleCredentials::from_provider(
            "arn:aws:iam::123456789012:role/r",
            Gated(gate.clone(), Arc::default()),
        );
        let old = Credentials::new("ASIAOLD", "s", None, Some(at(0) + HOUR), "held");
        role.held().credentials = Some(old.clone());
        let renewing = tokio::spawn({
            let role = role.clone();
            async move { role.current(at(3400)).await }
        });
        tokio::task::yield_now().await;
        // The renewal is in flight (STS has not answered): another call is not held up.
        let meanwhile = tokio::time::timeout(Duration::from_secs(5), role.current(at(3401)));
        assert_eq!(meanwhile.await.expect("not held up").unwrap(), old);
        gate.notify_one();
        let renewed = renewing.await.unwrap().unwrap();
        assert_eq!(renewed.access_key_id(), "ASIANEW");
        assert_eq!(role.current(at(3402)).await.unwrap(), renewed);
    }

    #[tokio::test]
    async fn callers_with_nothing_usable_share_one_sts_call() {
        let (gate, calls) = (Arc::new(tokio::sync::Notify::new()), Arc::default());
        let role = RoleCredentials::from_provider(
            "arn:aws:iam::123456789012:role/r",
            Gated(gate.clone(), Arc::clone(&calls)),
        );
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let role = role.clone();
                tokio::spawn(async move { role.current(at(0)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        gate.notify_one();
        for c in callers {
            assert_eq!(c.await.unwrap().unwrap().access_key_id(), "ASIANEW");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
