//! The Kubernetes connector: kubeconfig Secrets and static AWS keys read
//! from the (testkit or real) management cluster, and the EKS path on moto.

#![allow(clippy::unwrap_used)] // test helpers fail loudly

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_eks::types::VpcConfigRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hibernator_core::types::{
    AwsAuth, AwsProvider, CloudProvider, CloudProviderSpec, CloudProviderType, EksClusterRef,
    GenericCluster, K8SCluster, K8SClusterSpec, ObjectRef, SecretRef, ServiceAccountAuth,
    StaticAuth,
};
use hibernator_executors::aws::connector::SessionIdentity;
use hibernator_executors::kubernetes::connector::{
    ClusterConnector, ConnectorError, EksEndpoint, describe_eks_endpoint, eks_client_from_endpoint,
};
use hibernator_executors::kubernetes::eks_token::TokenSource;
use hibernator_testkit::kube::TestCluster;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use kube::{Client, CustomResourceExt};
use std::sync::Arc;

use crate::support::{REGION, moto, sdk_config};

fn expect_err<T>(result: Result<T, ConnectorError>) -> ConnectorError {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn identity() -> SessionIdentity {
    SessionIdentity {
        plan: "dev".into(),
        target: "apps".into(),
    }
}

async fn secret(client: &Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    let object = Secret {
        metadata: kube::core::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

fn kubeconfig_cluster(ns: &str, secret: &str) -> K8SCluster {
    let mut cluster = K8SCluster::new(
        "target",
        K8SClusterSpec {
            provider_ref: None,
            eks: None,
            k8s: Some(GenericCluster {
                kubeconfig_ref: Some(SecretRef {
                    name: secret.into(),
                    namespace: None,
                }),
                in_cluster: None,
            }),
        },
    );
    cluster.metadata.namespace = Some(ns.into());
    cluster
}

fn test_kubeconfig(tc: &TestCluster) -> String {
    match tc.api_server() {
        Some(server) => server.kubeconfig_yaml(),
        None => std::fs::read_to_string(
            std::env::var(hibernator_testkit::kube::KUBECONFIG_ENV).unwrap(),
        )
        .unwrap(),
    }
}

#[tokio::test]
async fn kubeconfig_secret_gives_a_working_client() {
    let tc = TestCluster::start("conn-kc").await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    secret(
        &client,
        &ns,
        "target-kubeconfig",
        &[("kubeconfig", &test_kubeconfig(&tc))],
    )
    .await;
    let connector = ClusterConnector::new(client.clone());
    let target = connector
        .client_for(&kubeconfig_cluster(&ns, "target-kubeconfig"), &identity())
        .await
        .unwrap();
    let seen = Api::<Namespace>::all(target).get(&ns).await.unwrap();
    assert_eq!(seen.metadata.name.as_deref(), Some(ns.as_str()));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn missing_secrets_and_keys_name_the_field_not_the_content() {
    let tc = TestCluster::start("conn-miss").await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    let connector = ClusterConnector::new(client.clone());
    let err = expect_err(
        connector
            .client_for(&kubeconfig_cluster(&ns, "absent"), &identity())
            .await,
    );
    assert!(matches!(err, ConnectorError::Read { .. }), "{err}");
    assert!(err.to_string().contains("spec.k8s.kubeconfigRef"), "{err}");
    assert!(
        err.to_string().contains(&format!("Secret {ns}/absent")),
        "{err}"
    );

    secret(
        &client,
        &ns,
        "wrong-key",
        &[("config", "token: super-secret-token")],
    )
    .await;
    let err = expect_err(
        connector
            .client_for(&kubeconfig_cluster(&ns, "wrong-key"), &identity())
            .await,
    );
    assert!(
        matches!(err, ConnectorError::MissingSecretKey { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"kubeconfig\""), "{err}");

    secret(
        &client,
        &ns,
        "garbage",
        &[("kubeconfig", "clusters: [super-secret-token")],
    )
    .await;
    let err = expect_err(
        connector
            .client_for(&kubeconfig_cluster(&ns, "garbage"), &identity())
            .await,
    );
    assert!(!err.to_string().contains("super-secret-token"), "{err}");
    assert!(!format!("{err:?}").contains("super-secret-token"));
    tc.cleanup().await.unwrap();
}

fn cloud_provider(ns: &str, auth: AwsAuth) -> CloudProvider {
    let mut provider = CloudProvider::new(
        "aws",
        CloudProviderSpec {
            kind: CloudProviderType::Aws,
            aws: Some(AwsProvider {
                account_id: "123456789012".into(),
                region: REGION.into(),
                assume_role_arn: None,
                auth,
            }),
        },
    );
    provider.metadata.namespace = Some(ns.into());
    provider
}

#[tokio::test]
async fn static_keys_are_read_from_the_secret() {
    let tc = TestCluster::start("conn-aws").await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    secret(
        &client,
        &ns,
        "aws-keys",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAFROMSECRET"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t\n"),
        ],
    )
    .await;
    let auth = |name: &str| AwsAuth {
        service_account: None,
        static_keys: Some(StaticAuth {
            secret_ref: SecretRef {
                name: name.into(),
                namespace: None,
            },
        }),
    };
    let config = hibernator_executors::kubernetes::connector::resolve_aws_config(
        &client,
        &cloud_provider(&ns, auth("aws-keys")),
        &ns,
        &identity(),
    )
    .await
    .unwrap();
    let creds = config
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "AKIAFROMSECRET");
    assert_eq!(creds.secret_access_key(), "s3cr3t");
    assert_eq!(config.region().map(|r| r.as_ref()), Some(REGION));

    secret(&client, &ns, "half", &[("AWS_ACCESS_KEY_ID", "AKIA")]).await;
    let err = hibernator_executors::kubernetes::connector::resolve_aws_config(
        &client,
        &cloud_provider(&ns, auth("half")),
        &ns,
        &identity(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(
        err.to_string().contains("spec.aws.auth.static.secretRef"),
        "{err}"
    );
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn eks_clusters_are_described_on_moto() {
    let server = moto().await;
    let config = sdk_config(server.endpoint()).await;
    aws_sdk_eks::Client::new(&config)
        .create_cluster()
        .name("dev")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(VpcConfigRequest::builder().subnet_ids("subnet-1").build())
        .send()
        .await
        .unwrap();
    let tc = TestCluster::start("conn-eks").await.unwrap();
    tc.ensure_crd(&CloudProvider::crd()).await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    let provider = cloud_provider(
        &ns,
        AwsAuth {
            service_account: Some(ServiceAccountAuth {}),
            static_keys: None,
        },
    );
    Api::<CloudProvider>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();
    let eks = EksClusterRef {
        name: "dev".into(),
        region: REGION.into(),
    };
    let mut target = K8SCluster::new(
        "target",
        K8SClusterSpec {
            provider_ref: Some(
                ObjectRef {
                    name: "aws".into(),
                    namespace: None,
                }
                .into(),
            ),
            eks: Some(eks.clone()),
            k8s: None,
        },
    );
    target.metadata.namespace = Some(ns.clone());
    let endpoint = server.endpoint().to_string();
    let connector = ClusterConnector::new(client.clone()).with_aws_loader(move || {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
    });
    // The whole path runs; moto's CA data is not a certificate.
    let err = expect_err(connector.client_for(&target, &identity()).await);
    assert!(
        matches!(err, ConnectorError::EksCertificate { .. }),
        "{err}"
    );

    let described = describe_eks_endpoint("target", &eks, &config)
        .await
        .unwrap();
    assert!(described.endpoint.starts_with("https://"), "{described:?}");
    let missing = EksClusterRef {
        name: "nope".into(),
        region: REGION.into(),
    };
    let err = describe_eks_endpoint("target", &missing, &config)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::EksDescribe { .. }), "{err}");

    // With a real certificate the client builds.
    let ca = rcgen::generate_simple_self_signed(vec!["kubernetes".to_string()]).unwrap();
    let with_ca = EksEndpoint {
        endpoint: described.endpoint,
        certificate_authority: STANDARD.encode(ca.cert.pem()),
    };
    let tokens = Arc::new(TokenSource::from_sdk_config("dev", REGION, &config).unwrap());
    assert!(eks_client_from_endpoint("target", "dev", &with_ca, tokens).is_ok());
    tc.cleanup().await.unwrap();
}
