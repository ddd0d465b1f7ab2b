//! Who is acting on a target: named in STS session names (CloudTrail says
//! which plan and target stopped what) by the AWS and EKS connectors.

/// Who is acting, for the STS session name.
#[derive(Clone, Debug, Default)]
pub struct SessionIdentity {
    /// Plan name.
    pub plan: String,
    /// Target name.
    pub target: String,
}

impl SessionIdentity {
    /// `hibernator-<plan>-<target>`, restricted to the characters and length
    /// STS accepts for a role session name (`[\w+=,.@-]`, 2–64).
    pub fn session_name(&self) -> String {
        let raw = format!("hibernator-{}-{}", self.plan, self.target);
        let mut name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(64);
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_sts_safe() {
        let id = SessionIdentity {
            plan: "dev plan".into(),
            target: "db/1".into(),
        };
        assert_eq!(id.session_name(), "hibernator-dev-plan-db-1");
        let long = SessionIdentity {
            plan: "p".repeat(80),
            target: "t".into(),
        };
        assert_eq!(long.session_name().len(), 64);
    }
}
