//! Reading plan files: multi-document YAML holding one `HibernatePlan` and
//! optionally `ScheduleException`s and connector objects.

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::diag::Diagnostic;
use crate::types::{
    API_GROUP, API_VERSION, CloudProvider, HibernatePlan, K8SCluster, ScheduleException,
};

/// Errors reading a plan file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InputError {
    /// A document is not valid YAML.
    #[error("document {document}: invalid YAML: {message}")]
    Yaml {
        /// 1-based document index.
        document: usize,
        /// Parser message (with line and column).
        message: String,
    },
    /// A document does not match its kind's schema.
    #[error("document {document} ({kind} {name}): {field}: {message}")]
    Schema {
        /// 1-based document index.
        document: usize,
        /// The document's `kind`.
        kind: String,
        /// The document's `metadata.name`.
        name: String,
        /// Path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A document has a kind or apiVersion this file format does not accept.
    #[error("document {document}: {message}")]
    Unsupported {
        /// 1-based document index.
        document: usize,
        /// What is wrong.
        message: String,
    },
    /// The file holds no `HibernatePlan`, or more than one.
    #[error("{0}")]
    PlanCount(String),
}

impl InputError {
    /// The error as a field diagnostic (for `validate --output json`).
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            InputError::Schema {
                document,
                kind,
                field,
                message,
                ..
            } => Diagnostic::new(
                field.clone(),
                format!("document {document} ({kind}): {message}"),
            ),
            other => Diagnostic::new("", other.to_string()),
        }
    }
}

/// The objects of a plan file.
#[derive(Clone, Debug)]
pub struct PlanDocuments {
    /// The plan.
    pub plan: HibernatePlan,
    /// Exceptions whose `planRef` names the plan.
    pub exceptions: Vec<ScheduleException>,
    /// Cloud providers defined in the file.
    pub cloud_providers: Vec<CloudProvider>,
    /// Kubernetes cluster connectors defined in the file.
    pub clusters: Vec<K8SCluster>,
    /// Notes about the file that are not errors (e.g. an exception for another plan).
    pub warnings: Vec<Diagnostic>,
}

impl PlanDocuments {
    /// Parses multi-document YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, InputError> {
        let mut plans = Vec::new();
        let mut exceptions = Vec::new();
        let mut cloud_providers = Vec::new();
        let mut clusters = Vec::new();
        for (index, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let document = index + 1;
            let value: serde_json::Value =
                serde::Deserialize::deserialize(doc).map_err(|e| InputError::Yaml {
                    document,
                    message: e.to_string(),
                })?;
            if value.is_null() {
                continue; // empty document, e.g. a trailing `---`
            }
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_string();
            let api_version = value
                .get("apiVersion")
                .and_then(|k| k.as_str())
                .unwrap_or_default();
            let expected = format!("{API_GROUP}/{API_VERSION}");
            if api_version != expected {
                return Err(InputError::Unsupported {
                    document,
                    message: format!(
                        "apiVersion: expected {expected:?}, found {api_version:?} (kind {kind:?})"
                    ),
                });
            }
            match kind.as_str() {
                "HibernatePlan" => plans.push(typed::<HibernatePlan>(document, &kind, value)?),
                "ScheduleException" => {
                    exceptions.push(typed::<ScheduleException>(document, &kind, value)?)
                }
                "CloudProvider" => {
                    cloud_providers.push(typed::<CloudProvider>(document, &kind, value)?)
                }
                "K8SCluster" => clusters.push(typed::<K8SCluster>(document, &kind, value)?),
                other => {
                    return Err(InputError::Unsupported {
                        document,
                        message: format!(
                            "kind: {other:?} is not one of HibernatePlan, ScheduleException, CloudProvider, K8SCluster"
                        ),
                    });
                }
            }
        }
        let plan = match plans.len() {
            1 => plans.remove(0),
            0 => {
                return Err(InputError::PlanCount(
                    "the file holds no HibernatePlan document".into(),
                ));
            }
            n => {
                return Err(InputError::PlanCount(format!(
                    "the file holds {n} HibernatePlan documents; give one plan per file"
                )));
            }
        };
        let plan_name = plan.metadata.name.clone().unwrap_or_default();
        let plan_ns = plan.metadata.namespace.clone();
        let mut warnings = Vec::new();
        exceptions.retain(|e: &ScheduleException| {
            let same_ns = e.spec.plan_ref.namespace.is_none()
                || e.spec.plan_ref.namespace == plan_ns
                || e.spec.plan_ref.namespace == e.metadata.namespace;
            let keep = e.spec.plan_ref.name == plan_name && same_ns;
            if !keep {
                warnings.push(Diagnostic::new(
                    "spec.planRef.name",
                    format!(
                        "ScheduleException {:?} refers to plan {:?}, not {:?}; ignored",
                        e.metadata.name.as_deref().unwrap_or_default(),
                        e.spec.plan_ref.name,
                        plan_name
                    ),
                ));
            }
            keep
        });
        Ok(Self {
            plan,
            exceptions,
            cloud_providers,
            clusters,
            warnings,
        })
    }

    /// Reads and parses a file.
    pub fn from_path(path: &std::path::Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::PlanCount(format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text)
    }
}

/// Deserializes one document into its typed form, naming the failing field.
fn typed<T: DeserializeOwned>(
    document: usize,
    kind: &str,
    value: serde_json::Value,
) -> Result<T, InputError> {
    let name = value
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("<unnamed>")
        .to_string();
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        InputError::Schema {
            document,
            kind: kind.to_string(),
            name,
            field: if field == "." { String::new() } else { field },
            message: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
apiVersion: hibernator.dev/v1alpha1
kind: HibernatePlan
metadata: {name: dev, namespace: team}
spec:
  schedule:
    timezone: Europe/Berlin
    offHours: [{start: "20:00", end: "06:00", daysOfWeek: [MON]}]
  targets:
    - name: db
      type: rds
      connectorRef: {kind: CloudProvider, name: aws}
      parameters: {selector: {instanceIds: [db-1]}}
"#;

    #[test]
    fn reads_plan_exceptions_and_connectors() {
        let text = format!(
            "{PLAN}---\napiVersion: hibernator.dev/v1alpha1\nkind: ScheduleException\nmetadata: {{name: x}}\nspec: {{planRef: {{name: dev}}, validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-01-02T00:00:00Z', type: suspend, windows: []}}\n---\napiVersion: hibernator.dev/v1alpha1\nkind: ScheduleException\nmetadata: {{name: y}}\nspec: {{planRef: {{name: other}}, validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-01-02T00:00:00Z', type: extend, windows: []}}\n---\n"
        );
        let docs = PlanDocuments::from_yaml(&text).unwrap();
        assert_eq!(docs.plan.spec.targets.len(), 1);
        assert_eq!(docs.exceptions.len(), 1);
        assert_eq!(docs.warnings.len(), 1);
        assert!(docs.warnings[0].message.contains("other"));
    }

    #[test]
    fn schema_errors_name_the_field() {
        let bad = PLAN.replace("kind: CloudProvider", "kind: [CloudProvider]");
        let err = PlanDocuments::from_yaml(&bad).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("spec.targets[0].connectorRef.kind"), "{text}");
        assert!(text.contains("HibernatePlan dev"), "{text}");
    }

    #[test]
    fn rejects_missing_plan_and_unknown_kinds() {
        assert!(matches!(
            PlanDocuments::from_yaml("---\n"),
            Err(InputError::PlanCount(_))
        ));
        let other = "apiVersion: hibernator.dev/v1alpha1\nkind: Pizza\nmetadata: {name: x}\n";
        assert!(
            PlanDocuments::from_yaml(other)
                .unwrap_err()
                .to_string()
                .contains("Pizza")
        );
        let wrong_version = PLAN.replace("v1alpha1", "v9");
        assert!(
            PlanDocuments::from_yaml(&wrong_version)
                .unwrap_err()
                .to_string()
                .contains("apiVersion")
        );
    }
}
