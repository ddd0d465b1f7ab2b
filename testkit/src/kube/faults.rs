//! Fault hooks: fail the next N matching requests, added latency, and
//! request counters per verb and resource.

use std::collections::HashMap;
use std::time::Duration;

/// One pending injected failure.
#[derive(Debug, Clone)]
struct Fault {
    verb: String,
    resource: String,
    remaining: u32,
    status: u16,
}

/// Faults, latency and counters.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pending: Vec<Fault>,
    latency: Duration,
    counts: HashMap<(String, String), u64>,
}

impl Faults {
    /// Queues `count` failures with `status` for `verb` on `resource`.
    pub fn fail_next(&mut self, verb: &str, resource: &str, count: u32, status: u16) {
        if count == 0 {
            return;
        }
        self.pending.push(Fault {
            verb: verb.to_string(),
            resource: resource.to_string(),
            remaining: count,
            status,
        });
    }

    /// Sets the latency added to every request.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// The latency added to every request.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Counts a request and returns the status to fail it with, if a fault matches.
    pub fn on_request(&mut self, verb: &str, resource: &str) -> Option<u16> {
        *self
            .counts
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += 1;
        let idx = self
            .pending
            .iter()
            .position(|f| f.verb == verb && f.resource == resource)?;
        let fault = &mut self.pending[idx];
        let status = fault.status;
        fault.remaining -= 1;
        if fault.remaining == 0 {
            self.pending.remove(idx);
        }
        Some(status)
    }

    /// Requests seen for `verb` on `resource` since the last reset.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.counts
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter: `(verb, resource)` → requests since the last reset.
    pub fn counts(&self) -> std::collections::BTreeMap<(String, String), u64> {
        self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Zeroes every counter.
    pub fn reset_counts(&mut self) {
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order_and_counted() {
        let mut f = Faults::default();
        f.fail_next("get", "pods", 2, 503);
        assert_eq!(f.on_request("get", "pods"), Some(503));
        assert_eq!(f.on_request("list", "pods"), None);
        assert_eq!(f.on_request("get", "pods"), Some(503));
        assert_eq!(f.on_request("get", "pods"), None);
        assert_eq!(f.count("get", "pods"), 3);
        f.reset_counts();
        assert_eq!(f.count("get", "pods"), 0);
    }
}
