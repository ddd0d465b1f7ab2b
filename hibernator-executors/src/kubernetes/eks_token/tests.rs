use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_credential_types::provider::future;

use super::*;

const CLUSTER: &str = "dev-cluster";
const REGION: &str = "eu-central-1";

fn creds(session: Option<&str>) -> Credentials {
    Credentials::new(
        "AKIAEKSTOKENTEST",
        "secret-key-never-printed",
        session.map(str::to_string),
        None,
        "test",
    )
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Decodes a token back to (host, query parameters).
fn decode(token: &str) -> (String, BTreeMap<String, String>) {
    let encoded = token.strip_prefix(TOKEN_PREFIX).expect("token prefix");
    assert!(!encoded.contains('='), "no padding");
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
    let rest = url.strip_prefix("https://").expect("https URL");
    let (host, query) = rest.split_once("/?").expect("path / and a query");
    let params = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (host.to_string(), params)
}

#[test]
fn token_is_a_presigned_get_caller_identity_url() {
    let token = generate_token(CLUSTER, REGION, &creds(None), at(0)).unwrap();
    assert!(token.value().starts_with("k8s-aws-v1."));
    let (host, q) = decode(token.value());
    assert_eq!(host, "sts.eu-central-1.amazonaws.com");
    assert_eq!(q["Action"], "GetCallerIdentity");
    assert_eq!(q["Version"], "2011-06-15");
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    let date = &q["X-Amz-Date"];
    assert_eq!(date.len(), 16, "{date}");
    assert!(date.ends_with('Z'));
    assert_eq!(
        q["X-Amz-Credential"],
        format!(
            "AKIAEKSTOKENTEST/{}/eu-central-1/sts/aws4_request",
            &date[..8]
        )
    );
    assert_eq!(q["X-Amz-Expires"], "60");
    let signed: Vec<&str> = q["X-Amz-SignedHeaders"].split(';').collect();
    assert!(signed.contains(&"x-k8s-aws-id"), "{signed:?}");
    assert!(signed.contains(&"host"), "{signed:?}");
    assert_eq!(q["X-Amz-Signature"].len(), 64);
    assert!(!q.contains_key("X-Amz-Security-Token"));
    assert!(!token.value().contains("secret-key-never-printed"));
    assert!(!format!("{token:?}").contains(token.value()));
}

#[test]
fn signature_depends_on_the_cluster_and_time() {
    let a = generate_token(CLUSTER, REGION, &creds(None), at(0)).unwrap();
    let b = generate_token("other", REGION, &creds(None), at(0)).unwrap();
    let c = generate_token(CLUSTER, REGION, &creds(None), at(1)).unwrap();
    let sig = |t: &EksToken| decode(t.value()).1["X-Amz-Signature"].clone();
    assert_ne!(sig(&a), sig(&b));
    assert_ne!(sig(&a), sig(&c));
    let again = generate_token(CLUSTER, REGION, &creds(None), at(0)).unwrap();
    assert_eq!(a, again, "deterministic for the same inputs");
}

#[test]
fn session_token_is_included() {
    let token = generate_token(CLUSTER, "us-west-2", &creds(Some("session-abc")), at(0)).unwrap();
    let (host, q) = decode(token.value());
    assert_eq!(host, "sts.us-west-2.amazonaws.com");
    assert_eq!(q["X-Amz-Security-Token"], "session-abc");
}

#[test]
fn refresh_time_is_before_expiry_and_follows_credentials() {
    let token = generate_token(CLUSTER, REGION, &creds(None), at(0)).unwrap();
    assert_eq!(token.refresh_at(), at(0) + REFRESH_AFTER);
    assert!(REFRESH_AFTER < TOKEN_VALIDITY);
    assert!(!token.needs_refresh(at(13 * 60)));
    assert!(token.needs_refresh(at(14 * 60)));
    assert!(token.needs_refresh(at(0) - Duration::from_secs(1)));
    let expiring = Credentials::new("AKIA", "s", None, Some(at(300)), "test");
    let short = generate_token(CLUSTER, REGION, &expiring, at(0)).unwrap();
    assert_eq!(short.refresh_at(), at(300));
}

#[derive(Debug)]
struct FakeClock(Mutex<SystemTime>);

impl FakeClock {
    fn set(&self, t: SystemTime) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

#[derive(Debug, Default)]
struct CountingProvider(AtomicUsize);

impl ProvideCredentials for CountingProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(creds(None)))
    }
}

#[tokio::test]
async fn source_reuses_the_token_until_refresh_time() {
    let clock = Arc::new(FakeClock(Mutex::new(at(0))));
    let provider = Arc::new(CountingProvider::default());
    let source = TokenSource::new(
        CLUSTER,
        REGION,
        SharedCredentialsProvider::new(SharedProvider(provider.clone())),
    )
    .with_clock(clock.clone());
    let first = source.token().await.unwrap();
    assert_eq!(first.signed_at(), at(0));
    clock.set(at(13 * 60 + 59));
    let reused = source.token().await.unwrap();
    assert_eq!(reused, first);
    assert_eq!(provider.0.load(Ordering::SeqCst), 1);
    clock.set(at(14 * 60));
    let refreshed = source.token().await.unwrap();
    assert_ne!(refreshed.value(), first.value());
    assert_eq!(refreshed.signed_at(), at(14 * 60));
    assert_eq!(provider.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn source_without_credentials_names_the_cluster() {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let err = TokenSource::from_sdk_config(CLUSTER, REGION, &config).unwrap_err();
    assert!(err.to_string().contains(CLUSTER), "{err}");
}

#[derive(Debug)]
struct SharedProvider(Arc<CountingProvider>);

impl ProvideCredentials for SharedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}
