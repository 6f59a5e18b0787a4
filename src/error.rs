//! Typed AWS errors: one classification for every SDK call, so that one policy decides
//! what is retried, what is reported and which metric label it gets.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::roles::RoleUnavailable;

/// An AWS API call that failed, classified.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    #[error("{op}: throttled by AWS ({code})")]
    Throttled { op: &'static str, code: String },
    #[error("{op}: {what} not found ({code}: {message})")]
    NotFound {
        op: &'static str,
        what: String,
        code: String,
        message: String,
    },
    #[error("{op}: access denied ({code}: {message}); `pglink iam-policy` prints the policy this configuration needs")]
    AccessDenied {
        op: &'static str,
        code: String,
        message: String,
    },
    /// Timeouts, connection failures, 5xx: worth retrying as is.
    #[error("{op}: {detail}")]
    Transient { op: &'static str, detail: String },
    /// No credentials to sign with: none found, a misconfigured or expired profile, or a
    /// target's role that could not be assumed (with STS's reason); the detail says the fix.
    #[error("{op}: {detail}")]
    Credentials { op: &'static str, detail: String },
    /// The request was understood and refused (validation, limits, conflicts).
    #[error("{op}: rejected ({code}: {message})")]
    Rejected {
        op: &'static str,
        code: String,
        message: String,
    },
}

impl AwsError {
    /// Every [`AwsError::kind`], for metrics that must exist before the first error.
    pub const KINDS: [&'static str; 6] = [
        "throttled",
        "not_found",
        "access_denied",
        "transient",
        "credentials",
        "rejected",
    ];

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::NotFound { .. } => "not_found",
            Self::AccessDenied { .. } => "access_denied",
            Self::Transient { .. } => "transient",
            Self::Credentials { .. } => "credentials",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Classifies any SDK error. `what` names the resource for not-found errors.
    pub fn from_sdk<E>(op: &'static str, what: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
        // The SDK reports a credentials failure as a request that could not be sent.
        if let Some(role) = find_in_chain::<RoleUnavailable>(&err) {
            return Self::Credentials {
                op,
                detail: role.to_string(),
            };
        }
        if let Some(cred) = find_in_chain::<CredentialsError>(&err) {
            return Self::Credentials {
                op,
                detail: credentials_advice(cred),
            };
        }
        match err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let message = e.message().unwrap_or("").to_string();
                classify_service(op, what, status, code, message)
            }
            SdkError::TimeoutError(_) => Self::Transient {
                op,
                detail: "timed out".into(),
            },
            SdkError::DispatchFailure(d) => Self::Transient {
                op,
                detail: format!("could not reach AWS: {}", dispatch_detail(&d)),
            },
            SdkError::ResponseError(_) => Self::Transient {
                op,
                detail: format!("unreadable response (HTTP {status})"),
            },
            other => Self::Rejected {
                op,
                code: "Client".into(),
                message: error_chain(&other),
            },
        }
    }
}

fn classify_service(
    op: &'static str,
    what: &str,
    status: u16,
    code: String,
    message: String,
) -> AwsError {
    const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
    ];
    if THROTTLING.contains(&code.as_str()) || status == 429 {
        return AwsError::Throttled { op, code };
    }
    if REJECTED_CREDENTIALS.contains(&code.as_str()) {
        return AwsError::Credentials {
            op,
            detail: format!("AWS refused the credentials ({code}: {message}): they are expired or not valid; renew them (`aws sso login` for an SSO profile, new keys otherwise)"),
        };
    }
    // VPC Lattice says ResourceNotFoundException (HTTP 404), RAM UnknownResourceException.
    if code.ends_with("NotFound")
        || code.ends_with("NotFoundFault")
        || code.ends_with("NotFoundException")
        || code == "UnknownResourceException"
        || code.contains(".NotFound")
    {
        return AwsError::NotFound {
            op,
            what: what.to_string(),
            code,
            message,
        };
    }
    if code.contains("AccessDenied") || code == "UnauthorizedOperation" || status == 403 {
        return AwsError::AccessDenied { op, code, message };
    }
    if status >= 500 || code == "InternalFailure" || code == "ServiceUnavailable" {
        return AwsError::Transient {
            op,
            detail: format!("AWS error {code} (HTTP {status}): {message}"),
        };
    }
    AwsError::Rejected { op, code, message }
}

/// Error codes with which AWS refuses the caller's credentials themselves (expired session,
/// unknown key, bad signature), as opposed to a permission the policy lacks.
const REJECTED_CREDENTIALS: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "InvalidAccessKeyId",
];

/// What went wrong with the daemon's own credentials, and what fixes it, on one line.
fn credentials_advice(err: &CredentialsError) -> String {
    let cause = error_chain(err);
    match err {
        CredentialsError::CredentialsNotLoaded(_) => "no AWS credentials found: set AWS_PROFILE (or [aws] profile) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws sso login` for an SSO profile, or run where an instance profile or task role provides them".to_string(),
        CredentialsError::InvalidConfiguration(_) => format!(
            "AWS credentials are misconfigured: {cause}: check AWS_PROFILE / [aws] profile and ~/.aws/config"
        ),
        CredentialsError::ProviderTimedOut(_) => {
            "timed out loading AWS credentials (is the credential source, such as instance metadata, reachable?)".to_string()
        }
        _ => {
            let lower = cause.to_ascii_lowercase();
            let hint = if lower.contains("sso") || lower.contains("token") && lower.contains("expired") {
                ": run `aws sso login` (the SSO session may have expired)"
            } else {
                ""
            };
            format!("could not load AWS credentials: {cause}{hint}")
        }
    }
}

fn dispatch_detail(d: &aws_smithy_runtime_api::client::result::DispatchFailure) -> String {
    let chain = d
        .as_connector_error()
        .map(|e| error_chain(e))
        .unwrap_or_default();
    dispatch_cause(&chain, d.is_timeout(), d.is_io())
}

/// Why a request never reached AWS, with what to check. A name that does not resolve is
/// most often a region that does not exist (its endpoint has no DNS name) or a host
/// without DNS.
fn dispatch_cause(chain: &str, timeout: bool, io: bool) -> String {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
    {
        return "the AWS endpoint's name does not resolve: check [aws] region (or AWS_REGION), \
                a target group ARN's region, and this host's DNS"
            .into();
    }
    if timeout {
        "connection timed out (check the network path or proxy to AWS)".into()
    } else if io {
        "connection failed (check the network path or proxy to AWS)".into()
    } else {
        "request could not be sent".into()
    }
}

/// The first error of type `T` in `err`'s source chain.
pub(crate) fn find_in_chain<'e, T: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut source = Some(err);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<T>() {
            return Some(found);
        }
        source = s.source();
    }
    None
}

/// The error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, code: &str) -> AwsError {
        classify_service("Op", "thing", status, code.into(), "m".into())
    }

    #[test]
    fn classification() {
        assert_eq!(classify(400, "Throttling").kind(), "throttled");
        assert_eq!(classify(400, "ThrottlingException").kind(), "throttled");
        assert_eq!(classify(400, "TargetGroupNotFound").kind(), "not_found");
        assert_eq!(classify(404, "DBInstanceNotFound").kind(), "not_found");
        assert_eq!(classify(400, "InvalidVpcID.NotFound").kind(), "not_found");
        assert_eq!(
            classify(404, "ResourceNotFoundException").kind(),
            "not_found"
        );
        assert_eq!(
            classify(400, "UnknownResourceException").kind(),
            "not_found"
        );
        assert_eq!(classify(403, "AccessDenied").kind(), "access_denied");
        assert_eq!(classify(503, "ServiceUnavailable").kind(), "transient");
        assert_eq!(classify(500, "InternalFailure").kind(), "transient");
        assert_eq!(classify(400, "ValidationError").kind(), "rejected");
        assert!(classify(400, "Throttling").is_transient());
        assert!(!classify(400, "ValidationError").is_transient());
        assert_eq!(classify(400, "ExpiredToken").kind(), "credentials");
        assert_eq!(classify(401, "AuthFailure").kind(), "credentials");
        assert_eq!(classify(403, "InvalidClientTokenId").kind(), "credentials");
        assert!(classify(403, "AccessDenied")
            .to_string()
            .contains("pglink iam-policy"));
    }

    #[test]
    fn an_endpoint_name_that_does_not_resolve_points_to_the_region() {
        let chain = "dispatch failure: io error: client error (Connect): dns error: failed to lookup address information: Name or service not known";
        let detail = dispatch_cause(chain, false, true);
        assert!(detail.contains("check [aws] region"), "{detail}");
        assert_eq!(
            dispatch_cause("io error: Connection refused (os error 111)", false, true),
            "connection failed (check the network path or proxy to AWS)"
        );
    }

    #[test]
    fn every_kind_is_listed() {
        for e in [
            classify(400, "Throttling"),
            classify(400, "TargetGroupNotFound"),
            classify(403, "AccessDenied"),
            classify(503, "ServiceUnavailable"),
            classify(400, "ExpiredToken"),
            classify(400, "ValidationError"),
        ] {
            assert!(AwsError::KINDS.contains(&e.kind()), "{}", e.kind());
        }
        let kinds: std::collections::BTreeSet<_> = AwsError::KINDS.into_iter().collect();
        assert_eq!(kinds.len(), AwsError::KINDS.len());
    }
}
