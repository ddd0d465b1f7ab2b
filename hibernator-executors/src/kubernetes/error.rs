//! Classifying `kube` client errors into [`ExecutorError`]s by HTTP status
//! and error type, never by parsing messages.

use hibernator_core::executor::{ExecutorError, category};

/// Turns a kube error of `action` (e.g. `patch scale of apps/Deployment/ns/web`)
/// into a classified executor error: 429 throttled, 5xx/timeouts/connection
/// failures unavailable (transient), 409/410 conflict (transient), 401/403
/// auth, 404 not found, 400/422 and everything else permanent.
pub fn classify(error: &kube::Error, action: &str) -> ExecutorError {
    match error {
        kube::Error::Api(status) => classify_status(
            status.code,
            &format!("{action} failed: {} ({})", status.message, status.reason),
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            if is_timeout(error) {
                ExecutorError::transient(
                    category::TIMEOUT,
                    format!("{action}: the request timed out"),
                )
            } else {
                ExecutorError::transient(
                    category::UNAVAILABLE,
                    format!("{action}: cannot reach the Kubernetes API: {error}"),
                )
            }
        }
        kube::Error::Auth(_) => {
            ExecutorError::permanent(category::AUTH, format!("{action}: {error}"))
        }
        _ => ExecutorError::permanent(category::INTERNAL, format!("{action}: {error}")),
    }
}

/// Classifies an API status code.
pub fn classify_status(code: u16, message: &str) -> ExecutorError {
    match code {
        429 => ExecutorError::transient(category::THROTTLED, message),
        409 | 410 => ExecutorError::transient(category::CONFLICT, message),
        401 | 403 => ExecutorError::permanent(category::AUTH, message),
        404 => ExecutorError::permanent(category::NOT_FOUND, message),
        500..=599 => ExecutorError::transient(category::UNAVAILABLE, message),
        _ => ExecutorError::permanent(category::INTERNAL, message),
    }
}

/// Whether an API error is a 404.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether an I/O timeout is anywhere in the error's source chain.
fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::executor::ErrorClass;
    use kube::core::Status;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Status::failure("m", "Reason").with_code(code).boxed())
    }

    #[test]
    fn statuses_map_to_classes() {
        let c = |code| classify(&api(code), "patch x");
        assert_eq!(c(429).category, category::THROTTLED);
        assert_eq!(c(429).class, ErrorClass::Transient);
        for code in [500, 502, 503, 504] {
            assert_eq!(c(code).class, ErrorClass::Transient, "{code}");
            assert_eq!(c(code).category, category::UNAVAILABLE, "{code}");
        }
        assert_eq!(c(409).category, category::CONFLICT);
        assert_eq!(c(409).class, ErrorClass::Transient);
        assert_eq!(c(403).category, category::AUTH);
        assert_eq!(c(403).class, ErrorClass::Permanent);
        assert_eq!(c(404).category, category::NOT_FOUND);
        assert_eq!(c(404).class, ErrorClass::Permanent);
        assert_eq!(c(422).class, ErrorClass::Permanent);
        assert_eq!(c(400).class, ErrorClass::Permanent);
        assert!(c(404).message.starts_with("patch x failed"));
        assert!(is_not_found(&api(404)));
        assert!(!is_not_found(&api(403)));
    }

    #[test]
    fn timeouts_and_connection_failures_are_transient() {
        let timeout = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "slow",
        )));
        let e = classify(&timeout, "list");
        assert_eq!(e.category, category::TIMEOUT);
        assert_eq!(e.class, ErrorClass::Transient);
        let refused = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        let e = classify(&refused, "list");
        assert_eq!(e.category, category::UNAVAILABLE);
        assert_eq!(e.class, ErrorClass::Transient);
    }
}
