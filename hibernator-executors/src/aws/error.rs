//! Classifying AWS SDK errors into [`ExecutorError`]s, by typed error codes
//! and HTTP status, never by parsing messages.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use hibernator_core::executor::{ExecutorError, category};

/// Error codes AWS services use for throttling.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes of transient server-side failures.
const SERVER: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServerException",
    "RequestTimeout",
    "RequestTimeoutException",
    "Unavailable",
];

/// Error codes of authentication and authorization failures.
const AUTH: &[&str] = &[
    "UnauthorizedOperation",
    "AuthFailure",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "OptInRequired",
];

/// Error codes saying the resource is in a state that does not allow the
/// call right now (another operation is running on it).
const STATE_CONFLICT: &[&str] = &[
    "IncorrectInstanceState",
    "IncorrectState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidDBSnapshotState",
    "ResourceInUseException",
];

/// Turns an SDK error of `action` (e.g. `ec2:StopInstances`) into a
/// classified executor error.
pub fn classify<E>(error: &SdkError<E, HttpResponse>, action: &str) -> ExecutorError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::ConstructionFailure(_) => ExecutorError::permanent(
            category::INTERNAL,
            format!(
                "{action}: cannot build the request: {}",
                DisplayErrorContext(error)
            ),
        ),
        SdkError::TimeoutError(_) => ExecutorError::transient(
            category::TIMEOUT,
            format!("{action}: the request timed out"),
        ),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ExecutorError::transient(
            category::UNAVAILABLE,
            format!("{action}: cannot reach AWS: {}", DisplayErrorContext(error)),
        ),
        SdkError::ServiceError(service) => {
            let code = error.code().unwrap_or("Unknown");
            let message = error.message().unwrap_or("no message");
            let status = Some(service.raw().status().as_u16());
            classify_code(code, status, &format!("{action} failed: {code}: {message}"))
        }
        _ => ExecutorError::transient(
            category::INTERNAL,
            format!("{action}: {}", DisplayErrorContext(error)),
        ),
    }
}

/// Classifies a service error code (and HTTP status when known).
pub fn classify_code(code: &str, status: Option<u16>, message: &str) -> ExecutorError {
    if THROTTLING.contains(&code) || status == Some(429) {
        ExecutorError::transient(category::THROTTLED, message)
    } else if SERVER.contains(&code) || status.is_some_and(|s| s >= 500) {
        ExecutorError::transient(category::UNAVAILABLE, message)
    } else if AUTH.contains(&code) || matches!(status, Some(401 | 403)) {
        ExecutorError::permanent(category::AUTH, message)
    } else if code.ends_with("NotFound")
        || code.ends_with("NotFoundFault")
        || code == "ResourceNotFoundException"
    {
        ExecutorError::permanent(category::NOT_FOUND, message)
    } else if STATE_CONFLICT.contains(&code) {
        ExecutorError::transient(category::CONFLICT, message)
    } else {
        ExecutorError::permanent(category::INTERNAL, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::executor::ErrorClass;

    #[test]
    fn codes_map_to_classes() {
        let c = |code, status| classify_code(code, status, "m");
        assert_eq!(
            c("RequestLimitExceeded", Some(503)).category,
            category::THROTTLED
        );
        assert_eq!(c("Throttling", Some(400)).class, ErrorClass::Transient);
        assert_eq!(c("Whatever", Some(429)).category, category::THROTTLED);
        assert_eq!(
            c("InternalError", Some(500)).category,
            category::UNAVAILABLE
        );
        assert_eq!(c("Odd", Some(502)).class, ErrorClass::Transient);
        assert_eq!(
            c("UnauthorizedOperation", Some(403)).category,
            category::AUTH
        );
        assert_eq!(
            c("UnauthorizedOperation", Some(403)).class,
            ErrorClass::Permanent
        );
        assert_eq!(
            c("InvalidInstanceID.NotFound", Some(400)).category,
            category::NOT_FOUND
        );
        assert_eq!(
            c("DBInstanceNotFoundFault", Some(404)).category,
            category::NOT_FOUND
        );
        assert_eq!(
            c("ResourceNotFoundException", Some(404)).class,
            ErrorClass::Permanent
        );
        assert_eq!(
            c("InvalidDBInstanceState", Some(400)).class,
            ErrorClass::Transient
        );
        assert_eq!(c("ValidationError", Some(400)).class, ErrorClass::Permanent);
    }
}
