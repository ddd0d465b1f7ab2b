//! The AWS connector against moto's STS: static keys from a Secret and an
//! assumed role whose session name identifies the plan and target.

use aws_config::BehaviorVersion;
use hibernator_core::types::{AwsAuth, AwsProvider, SecretRef, ServiceAccountAuth, StaticAuth};
use hibernator_executors::aws::connector::{
    ConnectorError, SessionIdentity, StaticKeys, sdk_config_from,
};

use crate::support::moto;

fn provider(assume_role_arn: Option<&str>, static_keys: bool) -> AwsProvider {
    AwsProvider {
        account_id: "123456789012".into(),
        region: "eu-west-1".into(),
        assume_role_arn: assume_role_arn.map(str::to_string),
        auth: if static_keys {
            AwsAuth {
                service_account: None,
                static_keys: Some(StaticAuth {
                    secret_ref: SecretRef {
                        name: "aws-keys".into(),
                        namespace: None,
                    },
                }),
            }
        } else {
            AwsAuth {
                service_account: Some(ServiceAccountAuth {}),
                static_keys: None,
            }
        },
    }
}

fn keys() -> StaticKeys {
    StaticKeys {
        access_key_id: "AKIAHIBERNATORTEST".into(),
        secret_access_key: "super-secret-value".into(),
    }
}

fn identity() -> SessionIdentity {
    SessionIdentity {
        plan: "dev".into(),
        target: "orders-db".into(),
    }
}

#[tokio::test]
async fn static_keys_with_an_assumed_role_act_as_that_role() {
    let server = moto().await;
    let role = "arn:aws:iam::123456789012:role/hibernator-runner";
    let loader = aws_config::defaults(BehaviorVersion::latest()).endpoint_url(server.endpoint());
    let config = sdk_config_from(
        loader,
        "aws",
        Some(&provider(Some(role), true)),
        Some(keys()),
        &identity(),
    )
    .await
    .unwrap();
    assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
    let who = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let arn = who.arn().unwrap();
    assert!(
        arn.contains("assumed-role/hibernator-runner/hibernator-dev-orders-db"),
        "{arn}"
    );
}

#[tokio::test]
async fn static_keys_without_a_role_are_used_as_they_are() {
    let server = moto().await;
    let loader = aws_config::defaults(BehaviorVersion::latest()).endpoint_url(server.endpoint());
    let config = sdk_config_from(
        loader,
        "aws",
        Some(&provider(None, true)),
        Some(keys()),
        &identity(),
    )
    .await
    .unwrap();
    let who = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    // moto answers for the key's (default) account; no role was assumed.
    assert!(
        !who.arn().unwrap().contains("assumed-role"),
        "{:?}",
        who.arn()
    );
}

#[tokio::test]
async fn missing_pieces_are_clear_errors_without_secrets() {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    let err = sdk_config_from(
        loader,
        "aws",
        Some(&provider(None, true)),
        None,
        &identity(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectorError::MissingStaticKeys { .. }));
    assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"));
    let loader = aws_config::defaults(BehaviorVersion::latest());
    let err = sdk_config_from(loader, "aws", None, Some(keys()), &identity())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.aws"));
    assert!(!format!("{err:?}").contains("super-secret-value"));
}
