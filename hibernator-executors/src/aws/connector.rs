//! AWS connector: an `aws_config::SdkConfig` built from a `CloudProvider`.
//!
//! - Region: `spec.aws.region`.
//! - Base credentials: the default chain (IRSA / web identity, environment,
//!   profile, SSO, container and instance metadata) for `auth.serviceAccount`,
//!   or the static keys read from the Secret named by `auth.static.secretRef`
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`; session tokens are not used).
//! - `assumeRoleArn`: STS AssumeRole on top of the base credentials, with a
//!   session name that identifies the plan and target, so CloudTrail says who
//!   stopped what.
//! - Standard environment such as `AWS_ENDPOINT_URL` is honoured (tests point
//!   it at moto).
//!
//! Credentials never appear in errors or logs: `aws_credential_types::Credentials`
//! redacts its secret in `Debug`, and our errors carry only ARNs and names.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use hibernator_core::types::AwsProvider;
use thiserror::Error;

/// Errors building an AWS configuration.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The CloudProvider has no `spec.aws`.
    #[error("CloudProvider {name}: spec.aws is required for AWS targets")]
    MissingAws {
        /// CloudProvider name.
        name: String,
    },
    /// Static credentials were requested but not supplied.
    #[error(
        "CloudProvider {name}: auth.static needs the Secret's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which were not provided"
    )]
    MissingStaticKeys {
        /// CloudProvider name.
        name: String,
    },
}

/// Static keys read from a Secret. `Debug` never prints the secret key.
#[derive(Clone)]
pub struct StaticKeys {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

pub use crate::session::SessionIdentity;

/// Builds the SDK configuration for a CloudProvider.
///
/// `name` is the CloudProvider's name (for error messages); `static_keys`
/// must be given when `auth.static` is used (the caller reads the Secret).
pub async fn sdk_config(
    name: &str,
    provider: Option<&AwsProvider>,
    static_keys: Option<StaticKeys>,
    identity: &SessionIdentity,
) -> Result<SdkConfig, ConnectorError> {
    sdk_config_from(
        aws_config::defaults(BehaviorVersion::latest()),
        name,
        provider,
        static_keys,
        identity,
    )
    .await
}

/// Like [`sdk_config`], starting from `loader` instead of the defaults
/// (tests and embedders set an endpoint or a credentials provider there;
/// the CloudProvider's region, static keys and role are applied on top).
pub async fn sdk_config_from(
    loader: aws_config::ConfigLoader,
    name: &str,
    provider: Option<&AwsProvider>,
    static_keys: Option<StaticKeys>,
    identity: &SessionIdentity,
) -> Result<SdkConfig, ConnectorError> {
    let aws = provider.ok_or_else(|| ConnectorError::MissingAws {
        name: name.to_string(),
    })?;
    let region = Region::new(aws.region.clone());
    let mut loader = loader.region(region.clone());
    if aws.auth.static_keys.is_some() {
        let keys = static_keys.ok_or_else(|| ConnectorError::MissingStaticKeys {
            name: name.to_string(),
        })?;
        loader = loader.credentials_provider(Credentials::new(
            keys.access_key_id,
            keys.secret_access_key,
            None,
            None,
            "hibernator-static-secret",
        ));
    }
    let base = loader.load().await;
    let Some(role_arn) = aws.assume_role_arn.as_deref() else {
        return Ok(base);
    };
    let assumed = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(identity.session_name())
        .region(region)
        .configure(&base)
        .build()
        .await;
    Ok(base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(assumed))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_keys_never_print_the_secret() {
        let keys = StaticKeys {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "very-secret-value".into(),
        };
        let printed = format!("{keys:?}");
        assert!(!printed.contains("very-secret-value"));
        assert!(printed.contains("AKIAEXAMPLE"));
    }
}
