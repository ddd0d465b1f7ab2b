//! Token verification: the [`TokenReviewer`] trait, its Kubernetes
//! implementation (TokenReview API) and a bounded cache of reviews keyed by a
//! hash of the token.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use sha2::{Digest, Sha256};

/// `extra` key naming the Pod a bound token was issued for.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// `extra` key carrying the UID of that Pod.
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";

/// The API server's answer about a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReviewedToken {
    /// Whether the token is valid for at least one requested audience.
    pub authenticated: bool,
    /// Username (`system:serviceaccount:<namespace>:<name>` for SA tokens).
    pub username: String,
    /// Audiences the token is valid for (among the requested ones).
    pub audiences: Vec<String>,
    /// Extra attributes (pod name/uid of bound tokens).
    pub extra: BTreeMap<String, Vec<String>>,
    /// Why the token was not authenticated, as the API server put it.
    pub error: Option<String>,
}

impl ReviewedToken {
    /// `(namespace, name)` when the user is a ServiceAccount.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.username.strip_prefix("system:serviceaccount:")?;
        let (ns, name) = rest.split_once(':')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
    }

    /// `(pod name, pod uid)` when the token is bound to a Pod.
    pub fn pod(&self) -> Option<(&str, &str)> {
        let name = self.extra.get(EXTRA_POD_NAME)?.first()?;
        let uid = self.extra.get(EXTRA_POD_UID)?.first()?;
        Some((name.as_str(), uid.as_str()))
    }
}

/// The token could not be reviewed (the review itself failed).
#[derive(Debug, thiserror::Error)]
#[error("TokenReview failed: {message}")]
pub struct ReviewError {
    /// What failed (never contains the token).
    pub message: String,
}

/// Verifies bearer tokens.
#[async_trait]
pub trait TokenReviewer: Send + Sync {
    /// Reviews `token` for `audiences`.
    async fn review(&self, token: &str, audiences: &[String])
    -> Result<ReviewedToken, ReviewError>;
}

/// [`TokenReviewer`] backed by the Kubernetes TokenReview API.
#[derive(Clone)]
pub struct KubeTokenReviewer {
    client: kube::Client,
}

impl KubeTokenReviewer {
    /// Reviews tokens with `client` (needs `create` on `tokenreviews`).
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl TokenReviewer for KubeTokenReviewer {
    async fn review(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<ReviewedToken, ReviewError> {
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(audiences.to_vec()),
            },
            ..TokenReview::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| ReviewError {
                message: e.to_string(),
            })?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        Ok(ReviewedToken {
            authenticated: status.authenticated.unwrap_or(false),
            username: user.username.unwrap_or_default(),
            audiences: status.audiences.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
            error: status.error.filter(|e| !e.is_empty()),
        })
    }
}

/// Claims read (unverified) from a JWT payload, used only to refuse early
/// and to bound cache lifetimes — never to accept a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnverifiedClaims {
    /// `exp` (seconds since the epoch).
    pub exp: Option<i64>,
    /// `aud` (string or list).
    pub aud: Vec<String>,
}

/// Decodes the payload of a JWT-shaped token; `None` when the token is not
/// three dot-separated base64url segments with a JSON object payload.
pub fn unverified_claims(token: &str) -> Option<UnverifiedClaims> {
    let mut parts = token.split('.');
    let (_, payload, _, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next());
    if rest.is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let obj = value.as_object()?;
    let exp = obj.get("exp").and_then(serde_json::Value::as_i64);
    let aud = match obj.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Some(UnverifiedClaims { exp, aud })
}

/// Hex SHA-256 of a token: the only form in which a token is kept.
pub fn token_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bounded cache of successful reviews, each valid until the token expires
/// (at most `max_ttl`; `fallback_ttl` when the token carries no `exp`).
#[derive(Debug)]
pub struct ReviewCache {
    entries: Mutex<HashMap<String, (ReviewedToken, Instant)>>,
    capacity: usize,
    max_ttl: Duration,
    fallback_ttl: Duration,
}

impl ReviewCache {
    /// A cache of at most `capacity` reviews.
    pub fn new(capacity: usize, max_ttl: Duration, fallback_ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            max_ttl,
            fallback_ttl,
        }
    }

    /// The cached review of `token`, if still valid.
    pub fn get(&self, token: &str) -> Option<ReviewedToken> {
        let key = token_key(token);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&key) {
            Some((review, until)) if *until > Instant::now() => Some(review.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Caches `review` of `token` until `exp` (seconds since the epoch).
    pub fn insert(&self, token: &str, review: ReviewedToken, exp: Option<i64>) {
        let ttl = match exp {
            Some(exp) => {
                let left = exp.saturating_sub(chrono::Utc::now().timestamp());
                match u64::try_from(left) {
                    Ok(secs) if secs > 0 => Duration::from_secs(secs).min(self.max_ttl),
                    _ => return,
                }
            }
            None => self.fallback_ttl,
        };
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| *until > now);
        }
        if entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(token_key(token), (review, now + ttl));
    }

    /// Number of cached reviews.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: serde_json::Value) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            enc.encode(b"{\"alg\":\"RS256\"}"),
            enc.encode(payload.to_string())
        )
    }

    #[test]
    fn claims_decode_exp_and_audiences() {
        let c = unverified_claims(&jwt(serde_json::json!({"exp": 42, "aud": ["a", "b"]}))).unwrap();
        assert_eq!(c.exp, Some(42));
        assert_eq!(c.aud, vec!["a", "b"]);
        let c = unverified_claims(&jwt(serde_json::json!({"aud": "x"}))).unwrap();
        assert_eq!((c.exp, c.aud), (None, vec!["x".to_string()]));
        assert!(unverified_claims("not-a-jwt").is_none());
        assert!(unverified_claims("a.b.c.d").is_none());
        assert!(unverified_claims("a.%%%.c").is_none());
    }

    #[test]
    fn service_account_and_pod_are_parsed() {
        let mut r = ReviewedToken {
            username: "system:serviceaccount:team-a:hibernator-runner".into(),
            ..ReviewedToken::default()
        };
        assert_eq!(r.service_account(), Some(("team-a", "hibernator-runner")));
        assert_eq!(r.pod(), None);
        r.extra.insert(EXTRA_POD_NAME.into(), vec!["p".into()]);
        r.extra.insert(EXTRA_POD_UID.into(), vec!["u".into()]);
        assert_eq!(r.pod(), Some(("p", "u")));
        r.username = "alice".into();
        assert_eq!(r.service_account(), None);
    }

    #[test]
    fn cache_is_bounded_keyed_by_hash_and_respects_expiry() {
        let cache = ReviewCache::new(2, Duration::from_secs(600), Duration::from_secs(60));
        let later = chrono::Utc::now().timestamp() + 300;
        cache.insert("t1", ReviewedToken::default(), Some(later));
        cache.insert("t2", ReviewedToken::default(), None);
        cache.insert("t3", ReviewedToken::default(), Some(later));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("t3").is_some());
        // an already expired token is never cached
        cache.insert("t4", ReviewedToken::default(), Some(1));
        assert!(cache.get("t4").is_none());
        let keys = cache
            .entries
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        assert!(keys.iter().all(|k| k.len() == 64 && !k.contains("t3")));
    }
}
