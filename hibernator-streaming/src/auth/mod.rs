//! Authentication of runner requests: the presented token is reviewed
//! ([`TokenReviewer`], cached until the token expires) and then **bound to
//! the execution**: its ServiceAccount and namespace must be those of the
//! runner Job of the claimed execution id, and a Pod-bound token must come
//! from a Pod of that Job.

mod directory;
mod review;

use std::sync::Arc;
use std::time::Duration;

pub use directory::{
    DirectoryError, ExecutionDirectory, ExecutionInfo, KubeExecutionDirectory, LABEL_EXECUTION_ID,
    LABEL_JOB_NAME, LABEL_PLAN, LABEL_TARGET, execution_from_job, pod_belongs_to,
    valid_execution_id,
};
pub use review::{
    EXTRA_POD_NAME, EXTRA_POD_UID, KubeTokenReviewer, ReviewCache, ReviewError, ReviewedToken,
    TokenReviewer, UnverifiedClaims, token_key, unverified_claims,
};

use crate::config::AUDIENCE;
use crate::metrics::{AuthFailureReason, StreamingMetrics};

/// Why a request was not authorized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The caller is refused; counted in `hibernator_streaming_auth_failures_total`.
    #[error("unauthorized ({}): {message}", reason.as_str())]
    Denied {
        /// Bounded reason.
        reason: AuthFailureReason,
        /// Explanation for the caller (never contains the token).
        message: String,
    },
    /// Authentication could not be decided (API server unreachable).
    #[error("authentication unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
    },
}

impl AuthError {
    /// The reason of a refusal, `None` for [`AuthError::Unavailable`].
    pub fn reason(&self) -> Option<AuthFailureReason> {
        match self {
            Self::Denied { reason, .. } => Some(*reason),
            Self::Unavailable { .. } => None,
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Username from the review.
    pub username: String,
}

/// A caller authorized for one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    /// The execution (its runner Job).
    pub execution: ExecutionInfo,
    /// Who called.
    pub caller: Caller,
}

/// Checks tokens and binds them to executions; shared by gRPC and webhook.
pub struct Authenticator {
    reviewer: Arc<dyn TokenReviewer>,
    directory: Arc<dyn ExecutionDirectory>,
    cache: ReviewCache,
    metrics: StreamingMetrics,
    audiences: Vec<String>,
}

impl Authenticator {
    /// An authenticator requiring audience `hibernator-control-plane`, with a
    /// cache of 10 000 reviews (each at most 10 min; 60 s for tokens without
    /// `exp`).
    pub fn new(
        reviewer: Arc<dyn TokenReviewer>,
        directory: Arc<dyn ExecutionDirectory>,
        metrics: StreamingMetrics,
    ) -> Self {
        Self {
            reviewer,
            directory,
            cache: ReviewCache::new(10_000, Duration::from_secs(600), Duration::from_secs(60)),
            metrics,
            audiences: vec![AUDIENCE.to_string()],
        }
    }

    /// The directory executions are resolved in (their runner Job).
    pub fn directory(&self) -> &Arc<dyn ExecutionDirectory> {
        &self.directory
    }

    /// The metrics failures are counted in.
    pub fn metrics(&self) -> &StreamingMetrics {
        &self.metrics
    }

    /// Number of cached token reviews.
    pub fn cached_reviews(&self) -> usize {
        self.cache.len()
    }

    /// Authenticates the `Authorization` header value (`Bearer <token>`)
    /// without binding it to an execution (used by progress queries).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let result = self.review(authorization).await.map(|r| Caller {
            username: r.username,
        });
        self.count(result)
    }

    /// Checks only that a well-formed bearer token is present (counted like
    /// every refusal); lets the webhook refuse before parsing a body.
    pub fn require_bearer(&self, authorization: Option<&str>) -> Result<(), AuthError> {
        self.count(bearer_token(authorization).map(|_| ()))
    }

    /// Authenticates the header and binds it to `execution_id`.
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        execution_id: &str,
    ) -> Result<Authorized, AuthError> {
        let result = self.authorize_uncounted(authorization, execution_id).await;
        self.count(result)
    }

    fn count<T>(&self, result: Result<T, AuthError>) -> Result<T, AuthError> {
        if let Err(AuthError::Denied { reason, message }) = &result {
            self.metrics.auth_failure(*reason);
            tracing::debug!(reason = reason.as_str(), %message, "streaming request refused");
        }
        result
    }

    async fn authorize_uncounted(
        &self,
        authorization: Option<&str>,
        execution_id: &str,
    ) -> Result<Authorized, AuthError> {
        if !valid_execution_id(execution_id) {
            return Err(denied(
                AuthFailureReason::malformed,
                "executionId must be 1-63 characters [A-Za-z0-9._-]",
            ));
        }
        let review = self.review(authorization).await?;
        let execution = self
            .directory
            .execution(execution_id)
            .await
            .map_err(|e| AuthError::Unavailable {
                message: e.to_string(),
            })?
            .ok_or_else(|| {
                denied(
                    AuthFailureReason::unknown_execution,
                    format!("no runner Job for execution {execution_id}"),
                )
            })?;
        let Some((ns, sa)) = review.service_account() else {
            return Err(denied(
                AuthFailureReason::wrong_identity,
                "the token does not belong to a ServiceAccount",
            ));
        };
        if ns != execution.namespace || sa != execution.service_account {
            return Err(denied(
                AuthFailureReason::wrong_identity,
                format!("ServiceAccount {ns}/{sa} is not the runner of execution {execution_id}"),
            ));
        }
        if let Some((pod, uid)) = review.pod() {
            let ok = self
                .directory
                .pod_in_job(&execution, pod, uid)
                .await
                .map_err(|e| AuthError::Unavailable {
                    message: e.to_string(),
                })?;
            if !ok {
                return Err(denied(
                    AuthFailureReason::wrong_pod,
                    format!("pod {ns}/{pod} is not a pod of execution {execution_id}"),
                ));
            }
        }
        Ok(Authorized {
            execution,
            caller: Caller {
                username: review.username,
            },
        })
    }

    async fn review(&self, authorization: Option<&str>) -> Result<ReviewedToken, AuthError> {
        let token = bearer_token(authorization)?;
        let claims = unverified_claims(token);
        if let Some(exp) = claims.as_ref().and_then(|c| c.exp)
            && exp <= chrono::Utc::now().timestamp()
        {
            return Err(denied(AuthFailureReason::expired, "the token has expired"));
        }
        if let Some(c) = &claims
            && !c.aud.is_empty()
            && !c.aud.iter().any(|a| self.audiences.contains(a))
        {
            return Err(denied(
                AuthFailureReason::audience,
                format!("the token is not issued for audience {AUDIENCE}"),
            ));
        }
        if let Some(hit) = self.cache.get(token) {
            return Ok(hit);
        }
        let review = self
            .reviewer
            .review(token, &self.audiences)
            .await
            .map_err(|e| AuthError::Unavailable {
                message: e.to_string(),
            })?;
        if !review.authenticated {
            return Err(unauthenticated(review.error.as_deref()));
        }
        if !review.audiences.is_empty()
            && !review.audiences.iter().any(|a| self.audiences.contains(a))
        {
            return Err(denied(
                AuthFailureReason::audience,
                format!("the token is not valid for audience {AUDIENCE}"),
            ));
        }
        self.cache
            .insert(token, review.clone(), claims.and_then(|c| c.exp));
        Ok(review)
    }
}

/// Refusal of a token TokenReview did not authenticate. The API server
/// gives the cause only as text; for JWTs the claims were already checked,
/// so this only refines the metric reason of non-JWT or odd tokens.
fn unauthenticated(error: Option<&str>) -> AuthError {
    let lower = error.unwrap_or_default().to_ascii_lowercase();
    if lower.contains("expired") {
        denied(AuthFailureReason::expired, "the token has expired")
    } else if lower.contains("audience") {
        denied(
            AuthFailureReason::audience,
            format!("the token is not valid for audience {AUDIENCE}"),
        )
    } else {
        denied(
            AuthFailureReason::invalid,
            "the token was not authenticated",
        )
    }
}

fn denied(reason: AuthFailureReason, message: impl Into<String>) -> AuthError {
    AuthError::Denied {
        reason,
        message: message.into(),
    }
}

/// Extracts the token of a `Bearer <token>` header value.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            denied(
                AuthFailureReason::missing,
                "missing Authorization: Bearer token",
            )
        })?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        denied(
            AuthFailureReason::malformed,
            "Authorization must be `Bearer <token>`",
        )
    })?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(denied(
            AuthFailureReason::malformed,
            "Authorization must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_errors_refine_the_reason() {
        let reason = |e: Option<&str>| unauthenticated(e).reason();
        assert_eq!(
            reason(Some("token has expired")),
            Some(AuthFailureReason::expired)
        );
        assert_eq!(
            reason(Some(
                r#"token audiences ["x"] is invalid for the target audiences"#
            )),
            Some(AuthFailureReason::audience)
        );
        assert_eq!(
            reason(Some("invalid bearer token")),
            Some(AuthFailureReason::invalid)
        );
        assert_eq!(reason(None), Some(AuthFailureReason::invalid));
    }

    #[test]
    fn bearer_header_is_parsed_strictly() {
        assert_eq!(bearer_token(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(Some("bearer  abc ")).unwrap(), "abc");
        for (header, reason) in [
            (None, AuthFailureReason::missing),
            (Some(""), AuthFailureReason::missing),
            (Some("abc"), AuthFailureReason::malformed),
            (Some("Basic abc"), AuthFailureReason::malformed),
            (Some("Bearer a b"), AuthFailureReason::malformed),
        ] {
            assert_eq!(
                bearer_token(header).unwrap_err().reason(),
                Some(reason),
                "{header:?}"
            );
        }
    }
}
