//! The runner's termination message: what the controller reads from the
//! Job's Pod (`status.containerStatuses[].state.terminated.message`).

use serde::{Deserialize, Serialize};

/// Largest termination message Kubernetes keeps (bytes).
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Result of one runner execution, written as compact JSON to the
/// termination log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminationMessage {
    /// Whether the operation succeeded.
    pub success: bool,
    /// Concise description (the error on failure).
    pub message: String,
    /// Shutdown: resources touched; wake-up: resources restored; enforce:
    /// resources checked.
    pub resources: u32,
    /// Executor calls made (1 + retries).
    pub attempts: u32,
    /// Enforce: resources found awake and put back to sleep (absent for
    /// shutdown and wake-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehibernated: Option<u32>,
}

impl TerminationMessage {
    /// Compact JSON of at most [`TERMINATION_MESSAGE_LIMIT`] bytes: the
    /// message is cut (at a character boundary, ending in `…`) until the
    /// whole document fits, so the result is always valid JSON.
    pub fn to_json(&self) -> String {
        let full = self.encode(&self.message);
        if full.len() <= TERMINATION_MESSAGE_LIMIT {
            return full;
        }
        // No more than the limit of raw message bytes can fit; find the
        // longest prefix (at a character boundary) whose escaped document fits.
        let fits = |keep: usize| {
            let cut = floor_char_boundary(&self.message, keep);
            self.encode(&format!("{}…", &self.message[..cut])).len() <= TERMINATION_MESSAGE_LIMIT
        };
        let (mut lo, mut hi) = (0, self.message.len().min(TERMINATION_MESSAGE_LIMIT));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let cut = floor_char_boundary(&self.message, lo);
        self.encode(&format!("{}…", &self.message[..cut]))
    }

    /// Parses a termination message written by [`to_json`](Self::to_json);
    /// `None` when it is not one (e.g. a crash message).
    pub fn parse(text: &str) -> Option<TerminationMessage> {
        serde_json::from_str(text.trim()).ok()
    }

    fn encode(&self, message: &str) -> String {
        let mut doc = serde_json::json!({
            "success": self.success,
            "message": message,
            "resources": self.resources,
            "attempts": self.attempts,
        });
        if let (Some(n), Some(map)) = (self.rehibernated, doc.as_object_mut()) {
            map.insert("rehibernated".to_string(), n.into());
        }
        doc.to_string()
    }
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_compact_json() {
        let m = TerminationMessage {
            success: true,
            message: "shutdown done".into(),
            resources: 3,
            attempts: 1,
            rehibernated: None,
        };
        let json = m.to_json();
        assert!(!json.contains('\n'));
        assert_eq!(TerminationMessage::parse(&json), Some(m));
        assert_eq!(TerminationMessage::parse("panicked at main.rs"), None);
    }

    #[test]
    fn long_messages_are_cut_to_valid_json() {
        for filler in ["x", "é", "\"", "\u{1}", "日本"] {
            let m = TerminationMessage {
                success: false,
                message: filler.repeat(5000),
                resources: 0,
                attempts: 4,
                rehibernated: Some(2),
            };
            let json = m.to_json();
            assert!(
                json.len() <= TERMINATION_MESSAGE_LIMIT,
                "{filler}: {}",
                json.len()
            );
            let parsed = TerminationMessage::parse(&json).expect("valid JSON");
            assert!(parsed.message.ends_with('…'));
            // As much as fits is kept (one more escaped character would not).
            assert!(
                json.len() + 8 > TERMINATION_MESSAGE_LIMIT,
                "{filler:?}: kept too little ({})",
                json.len()
            );
            assert_eq!(parsed.attempts, 4);
        }
    }
}
