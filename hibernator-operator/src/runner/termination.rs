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
    /// Shutdown: resources touched; wake-up: resources restored.
    pub resources: u32,
    /// Executor calls made (1 + retries).
    pub attempts: u32,
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
        // Every message byte adds at least one byte to the document, so
        // cutting the overflow from the message converges quickly.
        let mut keep = self.message.len();
        loop {
            keep = floor_char_boundary(&self.message, keep);
            let doc = self.encode(&format!("{}…", &self.message[..keep]));
            if doc.len() <= TERMINATION_MESSAGE_LIMIT || keep == 0 {
                return doc;
            }
            keep -= (doc.len() - TERMINATION_MESSAGE_LIMIT).min(keep);
        }
    }

    /// Parses a termination message written by [`to_json`](Self::to_json);
    /// `None` when it is not one (e.g. a crash message).
    pub fn parse(text: &str) -> Option<TerminationMessage> {
        serde_json::from_str(text.trim()).ok()
    }

    fn encode(&self, message: &str) -> String {
        serde_json::json!({
            "success": self.success,
            "message": message,
            "resources": self.resources,
            "attempts": self.attempts,
        })
        .to_string()
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
            };
            let json = m.to_json();
            assert!(
                json.len() <= TERMINATION_MESSAGE_LIMIT,
                "{filler}: {}",
                json.len()
            );
            let parsed = TerminationMessage::parse(&json).expect("valid JSON");
            assert!(parsed.message.ends_with('…'));
            assert!(parsed.message.len() > 1000, "{filler}: kept too little");
            assert_eq!(parsed.attempts, 4);
        }
    }
}
