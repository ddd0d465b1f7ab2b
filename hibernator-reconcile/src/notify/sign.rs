//! The webhook sink's signature: `X-Hibernator-Signature: sha256=<hex>`,
//! the HMAC-SHA256 of `"<timestamp>.<body>"` with the sink's signing key,
//! where `<timestamp>` is the `X-Hibernator-Timestamp` header (Unix
//! seconds). Receivers recompute it and reject old timestamps (replays).

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// Header carrying the Unix timestamp (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Hibernator-Timestamp";
/// Header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Hibernator-Signature";
/// Header carrying the event's dedupe key (receivers may dedupe on it).
pub const DELIVERY_HEADER: &str = "X-Hibernator-Delivery";
/// Header carrying the event type.
pub const EVENT_HEADER: &str = "X-Hibernator-Event";

/// `sha256=<hex>` for `body` sent at `timestamp` (Unix seconds).
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error arm is unreachable but
    // handled without a panic
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
