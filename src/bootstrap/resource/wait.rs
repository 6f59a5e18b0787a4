//! Lattice's creates and deletes are asynchronous: poll until the status settles.

use std::future::Future;
use std::time::Duration;

use crate::error::AwsError;

/// How often to look, and for how long: a resource gateway has taken minutes (the NLB's
/// 15-minute limit, which bootstrap already uses, covers it).
pub const EVERY: Duration = Duration::from_secs(10);
pub const LIMIT: Duration = Duration::from_secs(15 * 60);

/// What one look found.
pub enum Look<T> {
    Done(T),
    Pending(String),
    Failed(String),
}

/// Calls `look` every [`EVERY`] until it is done or failed, or [`LIMIT`] passes.
pub async fn until<T, F, Fut>(op: &'static str, what: &str, mut look: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T>, AwsError>>,
{
    let started = tokio::time::Instant::now();
    loop {
        match look().await? {
            Look::Done(v) => return Ok(v),
            Look::Failed(why) => {
                return Err(AwsError::Rejected {
                    op,
                    code: "Failed".into(),
                    message: format!("{what}: {why}"),
                })
            }
            Look::Pending(status) if started.elapsed() >= LIMIT => {
                return Err(AwsError::Transient {
                    op,
                    detail: format!(
                        "{what} still {status} after {}; run bootstrap again to go on waiting",
                        humantime::format_duration(LIMIT)
                    ),
                })
            }
            Look::Pending(_) => tokio::time::sleep(EVERY).await,
        }
    }
}
