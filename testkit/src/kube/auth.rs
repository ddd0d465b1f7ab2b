//! Service account tokens: TokenRequest issues HMAC-signed opaque tokens,
//! TokenReview validates them (signature, expiry, audience, the service
//! account and the bound pod still existing).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::error::ApiError;
use super::objects::State;

/// The audience tokens get when a request names none.
pub(crate) const DEFAULT_AUDIENCE: &str = "https://kubernetes.default.svc";
const PREFIX: &str = "testkit";

/// What a token asserts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: String,
    pub audiences: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub pod_name: Option<String>,
    pub pod_uid: Option<String>,
}

/// Signs and verifies tokens with a per-server random key.
pub(crate) struct TokenAuthority {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenAuthority { key: <redacted> }")
    }
}

impl TokenAuthority {
    pub fn new() -> Self {
        Self {
            key: rand::rng().random(),
        }
    }

    fn mac(&self, payload: &str) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(payload.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// `testkit.<claims>.<signature>`, base64url without padding.
    pub fn mint(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload));
        format!("{PREFIX}.{payload}.{sig}")
    }

    /// The claims of a well-signed token (expiry is checked by the caller).
    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("token is malformed");
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| "token is malformed")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| "invalid key")?;
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| "invalid token signature")?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| "token is malformed")?;
        serde_json::from_slice(&bytes).map_err(|_| "token is malformed")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn uid_of(state: &State, plural: &str, ns: &str, name: &str) -> Option<String> {
    let def = state.registry.find_any("", plural)?;
    let obj = state.store.get(def, ns, name)?;
    Some(
        obj.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

impl State {
    /// Builds claims for a service account (its uid is recorded when it exists).
    pub fn claims(
        &self,
        ns: &str,
        sa: &str,
        audiences: Vec<String>,
        expiration_secs: i64,
        pod: Option<(String, String)>,
    ) -> Claims {
        let issued_at = now();
        Claims {
            namespace: ns.to_string(),
            service_account: sa.to_string(),
            service_account_uid: uid_of(self, "serviceaccounts", ns, sa).unwrap_or_default(),
            audiences: if audiences.is_empty() {
                vec![DEFAULT_AUDIENCE.to_string()]
            } else {
                audiences
            },
            issued_at,
            expires_at: issued_at + expiration_secs,
            pod_name: pod.as_ref().map(|p| p.0.clone()),
            pod_uid: pod.map(|p| p.1),
        }
    }

    /// `POST .../serviceaccounts/{sa}/token`.
    pub fn token_request(
        &self,
        auth: &TokenAuthority,
        ns: &str,
        sa: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        if uid_of(self, "serviceaccounts", ns, sa).is_none() {
            return Err(ApiError::not_found("", "serviceaccounts", sa));
        }
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let expiration = spec
            .get("expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        if expiration < 600 {
            return Err(ApiError::invalid(format!(
                "TokenRequest.authentication.k8s.io \"{sa}\" is invalid: spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration less than 10 minutes"
            )));
        }
        let pod = match spec.get("boundObjectRef") {
            Some(r) if !r.is_null() => {
                let kind = r.get("kind").and_then(Value::as_str).unwrap_or_default();
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                if kind != "Pod" {
                    return Err(ApiError::invalid(format!(
                        "spec.boundObjectRef.kind: Unsupported value: {kind:?}: supported values: \"Pod\""
                    )));
                }
                let uid = uid_of(self, "pods", ns, name)
                    .ok_or_else(|| ApiError::not_found("", "pods", name))?;
                if let Some(want) = r.get("uid").and_then(Value::as_str)
                    && !want.is_empty()
                    && want != uid
                {
                    return Err(ApiError::conflict("", "pods", name));
                }
                Some((name.to_string(), uid))
            }
            _ => None,
        };
        let claims = self.claims(ns, sa, audiences, expiration, pod);
        let token = auth.mint(&claims);
        let mut spec_out = json!({"audiences": claims.audiences, "expirationSeconds": expiration});
        if let (Some(name), Some(uid)) = (&claims.pod_name, &claims.pod_uid) {
            spec_out["boundObjectRef"] =
                json!({"kind": "Pod", "apiVersion": "v1", "name": name, "uid": uid});
        }
        Ok(json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": sa, "namespace": ns, "creationTimestamp": rfc3339(claims.issued_at)},
            "spec": spec_out,
            "status": {"token": token, "expirationTimestamp": rfc3339(claims.expires_at)},
        }))
    }

    /// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
    pub fn token_review(&self, auth: &TokenAuthority, body: &Value) -> Value {
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let token = spec
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let wanted: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| vec![DEFAULT_AUDIENCE.to_string()]);
        let status = match self.review(auth, token, &wanted) {
            Ok((claims, audiences)) => {
                let mut user = json!({
                    "username": format!("system:serviceaccount:{}:{}", claims.namespace, claims.service_account),
                    "uid": claims.service_account_uid,
                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", claims.namespace), "system:authenticated"],
                });
                if let (Some(name), Some(uid)) = (&claims.pod_name, &claims.pod_uid) {
                    user["extra"] = json!({
                        "authentication.kubernetes.io/pod-name": [name],
                        "authentication.kubernetes.io/pod-uid": [uid],
                    });
                }
                json!({"authenticated": true, "user": user, "audiences": audiences})
            }
            Err(message) => json!({"authenticated": false, "user": {}, "error": message}),
        };
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": status,
        })
    }

    fn review(
        &self,
        auth: &TokenAuthority,
        token: &str,
        wanted: &[String],
    ) -> Result<(Claims, Vec<String>), String> {
        let claims = auth.verify(token).map_err(str::to_string)?;
        if claims.expires_at <= now() {
            return Err("token has expired".into());
        }
        let audiences: Vec<String> = claims
            .audiences
            .iter()
            .filter(|a| wanted.contains(a))
            .cloned()
            .collect();
        if audiences.is_empty() {
            return Err("token audiences do not match the requested audiences".into());
        }
        match uid_of(
            self,
            "serviceaccounts",
            &claims.namespace,
            &claims.service_account,
        ) {
            Some(uid)
                if claims.service_account_uid.is_empty() || uid == claims.service_account_uid => {}
            _ => {
                return Err(format!(
                    "service account {}/{} has been deleted",
                    claims.namespace, claims.service_account
                ));
            }
        }
        if let Some(pod) = &claims.pod_name {
            match uid_of(self, "pods", &claims.namespace, pod) {
                Some(uid)
                    if claims
                        .pod_uid
                        .as_deref()
                        .is_none_or(|want| want.is_empty() || want == uid) => {}
                _ => {
                    return Err(format!(
                        "pod {}/{pod} bound to the token no longer exists",
                        claims.namespace
                    ));
                }
            }
        }
        Ok((claims, audiences))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_key() {
        let a = TokenAuthority::new();
        let b = TokenAuthority::new();
        let claims = Claims {
            namespace: "ns".into(),
            service_account: "sa".into(),
            service_account_uid: String::new(),
            audiences: vec!["x".into()],
            issued_at: 1,
            expires_at: 2,
            pod_name: None,
            pod_uid: None,
        };
        let token = a.mint(&claims);
        assert_eq!(a.verify(&token).unwrap(), claims);
        assert!(b.verify(&token).is_err());
        let mut tampered = token.clone();
        tampered.insert(10, 'A');
        assert!(a.verify(&tampered).is_err());
    }
}
