//! Keeping credentials out of status, Events, logs and metrics: a webhook
//! URL is shown as its host at most, and any text about a delivery is
//! scrubbed of the sink's secret values before it is stored or logged.

/// `https://hooks.slack.com/services/T/B/X` → `hooks.slack.com`; anything
/// that is not a URL → `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // drop userinfo (`user:pass@host`) and the port
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if host.is_empty() {
        "<redacted>".to_string()
    } else {
        host.to_string()
    }
}

/// `text` with every occurrence of each non-empty secret replaced by
/// `<redacted>` (also their URL-path pieces longer than 8 characters, which
/// an HTTP library may print on their own).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    let mut pieces: Vec<&str> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        pieces.push(secret);
        if let Some((_, rest)) = secret.split_once("://") {
            pieces.extend(
                rest.split(['/', '?', '&', '=', '#'])
                    .skip(1)
                    .filter(|p| p.len() > 8),
            );
        }
    }
    // longest first, so a piece never leaves half of a longer secret
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for piece in pieces {
        out = out.replace(piece, "<redacted>");
    }
    out
}
