use std::sync::Mutex;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use hibernator_core::types::{GenericCluster, K8SClusterSpec, ObjectRef};
use k8s_openapi::api::core::v1::Namespace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::super::eks_token::TokenSource;
use super::*;

fn expect_err<T>(result: Result<T, ConnectorError>) -> ConnectorError {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn cluster(spec: K8SClusterSpec) -> K8SCluster {
    let mut cluster = K8SCluster::new("target", spec);
    cluster.metadata.namespace = Some("hibernator".into());
    cluster
}

fn eks() -> EksClusterRef {
    EksClusterRef {
        name: "dev".into(),
        region: "eu-west-1".into(),
    }
}

fn secret_ref() -> SecretRef {
    SecretRef {
        name: "kc".into(),
        namespace: None,
    }
}

#[test]
fn access_is_exactly_one_of_eks_or_k8s() {
    let both = cluster(K8SClusterSpec {
        provider_ref: None,
        eks: Some(eks()),
        k8s: Some(GenericCluster {
            kubeconfig_ref: None,
            in_cluster: Some(true),
        }),
    });
    let err = cluster_access(&both).unwrap_err();
    assert!(matches!(err, ConnectorError::BothEksAndK8s { .. }));
    assert!(err.to_string().contains("spec.eks and spec.k8s"), "{err}");
    let neither = cluster(K8SClusterSpec {
        provider_ref: None,
        eks: None,
        k8s: None,
    });
    assert!(matches!(
        cluster_access(&neither),
        Err(ConnectorError::NoAccess { .. })
    ));
    let no_provider = cluster(K8SClusterSpec {
        provider_ref: None,
        eks: Some(eks()),
        k8s: None,
    });
    let err = cluster_access(&no_provider).unwrap_err();
    assert!(err.to_string().contains("spec.providerRef"), "{err}");
    let ambiguous = cluster(K8SClusterSpec {
        provider_ref: None,
        eks: None,
        k8s: Some(GenericCluster {
            kubeconfig_ref: Some(secret_ref()),
            in_cluster: Some(true),
        }),
    });
    let err = cluster_access(&ambiguous).unwrap_err();
    assert!(
        err.to_string().contains("kubeconfigRef or inCluster"),
        "{err}"
    );
    let empty_k8s = cluster(K8SClusterSpec {
        provider_ref: None,
        eks: None,
        k8s: Some(GenericCluster::default()),
    });
    assert!(matches!(
        cluster_access(&empty_k8s),
        Err(ConnectorError::K8sAccess { .. })
    ));

    let eks_ok = cluster(K8SClusterSpec {
        provider_ref: Some(
            ObjectRef {
                name: "aws".into(),
                namespace: Some("infra".into()),
            }
            .into(),
        ),
        eks: Some(eks()),
        k8s: None,
    });
    assert_eq!(
        cluster_access(&eks_ok).unwrap(),
        ClusterAccess::Eks {
            eks: &eks(),
            provider: "aws",
            provider_namespace: Some("infra"),
        }
    );
    let kubeconfig = cluster(K8SClusterSpec {
        provider_ref: None,
        eks: None,
        k8s: Some(GenericCluster {
            kubeconfig_ref: Some(secret_ref()),
            in_cluster: Some(false),
        }),
    });
    assert_eq!(
        cluster_access(&kubeconfig).unwrap(),
        ClusterAccess::Kubeconfig(&secret_ref())
    );
}

fn kubeconfig(user: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: c
  context:
    cluster: k
    user: u
users:
- name: u
  user:
{user}
"#
    )
}

#[tokio::test]
async fn kubeconfig_with_a_token_builds_a_client() {
    let yaml = kubeconfig("    token: very-secret-token");
    assert!(client_from_kubeconfig("target", &yaml).await.is_ok());
}

#[tokio::test]
async fn kubeconfig_errors_never_quote_the_content() {
    let err = expect_err(client_from_kubeconfig("target", "users: [very-secret-token").await);
    let text = err.to_string();
    assert!(text.contains("spec.k8s.kubeconfigRef"), "{text}");
    assert!(!text.contains("very-secret-token"), "{text}");
    assert!(!format!("{err:?}").contains("very-secret-token"));
}

#[tokio::test]
async fn kubeconfig_exec_plugins_are_rejected() {
    let yaml = kubeconfig(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [eks, get-token]",
    );
    let err = expect_err(client_from_kubeconfig("target", &yaml).await);
    assert!(err.to_string().contains("exec"), "{err}");
}

fn tokens() -> Arc<TokenSource> {
    Arc::new(TokenSource::new(
        "dev",
        "eu-west-1",
        SharedCredentialsProvider::new(Credentials::new("AKIA", "secret", None, None, "t")),
    ))
}

fn endpoint(ca: &[u8]) -> EksEndpoint {
    EksEndpoint {
        endpoint: "https://abc.gr7.eu-west-1.eks.amazonaws.com".into(),
        certificate_authority: STANDARD.encode(ca),
    }
}

#[tokio::test]
async fn eks_client_trusts_a_generated_ca() {
    let ca = rcgen::generate_simple_self_signed(vec!["kubernetes".to_string()]).unwrap();
    let pem = ca.cert.pem();
    assert!(eks_client_from_endpoint("target", "dev", &endpoint(pem.as_bytes()), tokens()).is_ok());
}

#[tokio::test]
async fn eks_ca_that_is_not_a_certificate_is_a_clear_error() {
    // What moto returns: random base64.
    let err = expect_err(eks_client_from_endpoint(
        "target",
        "dev",
        &endpoint(b"random bytes"),
        tokens(),
    ));
    assert!(
        matches!(err, ConnectorError::EksCertificate { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("certificateAuthority.data"),
        "{err}"
    );
    let not_base64 = EksEndpoint {
        endpoint: "https://x".into(),
        certificate_authority: "%%%".into(),
    };
    assert!(matches!(
        eks_client_from_endpoint("target", "dev", &not_base64, tokens()),
        Err(ConnectorError::EksCertificate { .. })
    ));
}

/// Serves `count` requests with a Namespace, recording each `Authorization`.
async fn recording_server(count: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        for _ in 0..count {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let auth = head
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                        .map(|(_, v)| v.trim().to_string())
                })
                .unwrap_or_default();
            record.lock().unwrap().push(auth);
            let body = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}

#[tokio::test]
async fn every_request_carries_the_cached_bearer_token() {
    let (url, seen) = recording_server(2).await;
    let client = client_with_tokens("target", Config::new(url.parse().unwrap()), tokens()).unwrap();
    let api: Api<Namespace> = Api::all(client);
    api.get("x").await.unwrap();
    api.get("x").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with("Bearer k8s-aws-v1."), "{seen:?}");
    assert_eq!(seen[0], seen[1], "the token is reused while fresh");
}
