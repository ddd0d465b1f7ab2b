//! In-process EKS bearer tokens, the same tokens `aws eks get-token` and
//! `aws-iam-authenticator` produce, without an exec plugin.
//!
//! A token is `k8s-aws-v1.` followed by the unpadded base64url encoding of a
//! presigned STS `GetCallerIdentity` URL
//! (`https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15`)
//! whose SigV4 signature lives in the query string (`X-Amz-Expires=60`) and
//! covers the header `x-k8s-aws-id: <cluster name>`. EKS accepts a token for
//! about 15 minutes after its `X-Amz-Date`; [`TokenSource`] caches one and
//! makes a new one after [`REFRESH_AFTER`] (14 minutes), or earlier when the
//! signing credentials expire first.
//!
//! Tokens are bearer credentials: [`EksToken`]'s `Debug` redacts the value and
//! no error of this module contains it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use thiserror::Error;

/// Prefix of every EKS token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header naming the cluster the token is for.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` of the presigned URL (what `aws eks get-token` uses).
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// How long EKS accepts a token after its signing time.
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(15 * 60);
/// Age at which [`TokenSource`] replaces a cached token (one minute of slack).
pub const REFRESH_AFTER: Duration = Duration::from_secs(14 * 60);

/// Errors making an EKS token. They name the cluster, never a credential.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The AWS configuration has no credentials provider.
    #[error("EKS token for cluster {cluster}: the AWS configuration has no credentials provider")]
    NoCredentialsProvider {
        /// EKS cluster name.
        cluster: String,
    },
    /// The credentials provider failed.
    #[error("EKS token for cluster {cluster}: cannot load AWS credentials: {reason}")]
    Credentials {
        /// EKS cluster name.
        cluster: String,
        /// What the provider reported.
        reason: String,
    },
    /// SigV4 presigning failed.
    #[error("EKS token for cluster {cluster}: cannot presign sts:GetCallerIdentity: {reason}")]
    Signing {
        /// EKS cluster name.
        cluster: String,
        /// What the signer reported.
        reason: String,
    },
}

/// A bearer token and the instant it should be replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct EksToken {
    value: String,
    signed_at: SystemTime,
    refresh_at: SystemTime,
}

impl EksToken {
    /// The token (`k8s-aws-v1.…`), for an `Authorization: Bearer` header.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// When the presigned URL was signed.
    pub fn signed_at(&self) -> SystemTime {
        self.signed_at
    }

    /// When a [`TokenSource`] replaces it: [`REFRESH_AFTER`] after signing,
    /// or the credentials' expiry if that comes first.
    pub fn refresh_at(&self) -> SystemTime {
        self.refresh_at
    }

    /// Whether the token should be replaced at `now` (also when the clock
    /// went back before its signing time).
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        now >= self.refresh_at || now < self.signed_at
    }
}

impl fmt::Debug for EksToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksToken")
            .field("value", &"** redacted **")
            .field("signed_at", &self.signed_at)
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// The presigned STS `GetCallerIdentity` URL for `cluster` in `region`,
/// signed with `credentials` at `time`.
pub fn presigned_url(
    cluster: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, TokenError> {
    let signing_error = |reason: String| TokenError::Signing {
        cluster: cluster.to_string(),
        reason,
    };
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once((CLUSTER_ID_HEADER, cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| signing_error(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(e.to_string()))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .body(())
        .map_err(|e| signing_error(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// The token for a presigned URL: `k8s-aws-v1.` + base64url (no padding).
pub fn token_from_url(url: &str) -> String {
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url))
}

/// Makes a token for `cluster` in `region` signed with `credentials` at `time`.
pub fn generate_token(
    cluster: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<EksToken, TokenError> {
    let url = presigned_url(cluster, region, credentials, time)?;
    let mut refresh_at = time + REFRESH_AFTER;
    if let Some(expiry) = credentials.expiry() {
        refresh_at = refresh_at.min(expiry);
    }
    Ok(EksToken {
        value: token_from_url(&url),
        signed_at: time,
        refresh_at,
    })
}

/// A source of the current time (injectable for tests).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Makes and caches the EKS token of one cluster; shared by every request of
/// a client (see [`super::auth::BearerAuthLayer`]).
pub struct TokenSource {
    cluster: String,
    region: String,
    credentials: SharedCredentialsProvider,
    clock: Arc<dyn Clock>,
    cached: tokio::sync::Mutex<Option<EksToken>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("cluster", &self.cluster)
            .field("region", &self.region)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for `cluster` in `region`, signing with `credentials`, on the
    /// system clock.
    pub fn new(
        cluster: impl Into<String>,
        region: impl Into<String>,
        credentials: SharedCredentialsProvider,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            region: region.into(),
            credentials,
            clock: Arc::new(SystemClock),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A source for the credentials of an SDK configuration.
    pub fn from_sdk_config(
        cluster: impl Into<String>,
        region: impl Into<String>,
        config: &aws_config::SdkConfig,
    ) -> Result<Self, TokenError> {
        let cluster = cluster.into();
        let credentials =
            config
                .credentials_provider()
                .ok_or_else(|| TokenError::NoCredentialsProvider {
                    cluster: cluster.clone(),
                })?;
        Ok(Self::new(cluster, region, credentials))
    }

    /// Uses `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The EKS cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The current token: the cached one until it needs a refresh, then a
    /// new one signed with freshly loaded credentials.
    pub async fn token(&self) -> Result<EksToken, TokenError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some(token) = cached.as_ref()
            && !token.needs_refresh(now)
        {
            return Ok(token.clone());
        }
        let credentials =
            self.credentials
                .provide_credentials()
                .await
                .map_err(|e| TokenError::Credentials {
                    cluster: self.cluster.clone(),
                    reason: aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
                })?;
        let token = generate_token(&self.cluster, &self.region, &credentials, now)?;
        tracing::debug!(cluster = %self.cluster, "made a new EKS token");
        *cached = Some(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests;
