//! Typed executor parameters and the catalog validation checks them against.
//!
//! Each executor declares its parameters as a serde type that also implements
//! [`ValidateParameters`] for the checks serde cannot express.
//! [`TypedParameters`] turns such a type into a [`ParameterCheck`]: wrong types
//! and missing fields become errors naming the field, unknown fields become
//! warnings (so a newer plan still applies to an older operator), and the
//! type's own checks run last. The admission webhook, `hibernator validate`
//! and the executors at run time all use the same types.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::types::ConnectorKind;

/// Semantic checks of a parameter type beyond its serde shape.
pub trait ValidateParameters {
    /// Adds errors and warnings about `self`; `field` is the path of the
    /// parameters object, e.g. `spec.targets[0].parameters`.
    fn validate(&self, field: &str, diagnostics: &mut Diagnostics) {
        let _ = (field, diagnostics);
    }
}

/// Checks the parameters of one executor type.
pub trait ParameterCheck: Send + Sync {
    /// The executor type these parameters belong to (`ec2`, `rds`, …).
    fn executor_type(&self) -> &str;
    /// Checks `parameters` (absent parameters are checked as `{}`).
    fn check(&self, parameters: Option<&serde_json::Value>, field: &str) -> Diagnostics;
    /// JSON schema of the parameters, for documentation.
    fn schema(&self) -> schemars::Schema;
}

/// A [`ParameterCheck`] backed by a serde + schemars type.
pub struct TypedParameters<P> {
    executor_type: String,
    _params: PhantomData<fn() -> P>,
}

impl<P> TypedParameters<P> {
    /// Checks for `executor_type` using the parameter type `P`.
    pub fn new(executor_type: impl Into<String>) -> Self {
        Self {
            executor_type: executor_type.into(),
            _params: PhantomData,
        }
    }
}

impl<P> ParameterCheck for TypedParameters<P>
where
    P: DeserializeOwned + JsonSchema + ValidateParameters,
{
    fn executor_type(&self) -> &str {
        &self.executor_type
    }

    fn check(&self, parameters: Option<&serde_json::Value>, field: &str) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        match parse_parameters_reporting::<P>(parameters, field, &mut diagnostics) {
            Ok(params) => params.validate(field, &mut diagnostics),
            Err(error) => diagnostics.errors.push(error),
        }
        diagnostics
    }

    fn schema(&self) -> schemars::Schema {
        schemars::schema_for!(P)
    }
}

/// Deserializes executor parameters, naming the failing field on error.
/// Unknown fields are ignored here; use a [`ParameterCheck`] to report them.
pub fn parse_parameters<P: DeserializeOwned>(
    parameters: Option<&serde_json::Value>,
    field: &str,
) -> Result<P, Diagnostic> {
    let mut ignored = Diagnostics::new();
    parse_parameters_reporting(parameters, field, &mut ignored)
}

fn parse_parameters_reporting<P: DeserializeOwned>(
    parameters: Option<&serde_json::Value>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Result<P, Diagnostic> {
    let empty = serde_json::Value::Object(Default::default());
    let value = parameters.unwrap_or(&empty);
    let mut unknown: Vec<String> = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let result = {
        let ignoring = serde_ignored::Deserializer::new(value, &mut record);
        serde_path_to_error::deserialize::<_, P>(ignoring)
    };
    for path in unknown {
        diagnostics.warn(
            join(field, &path),
            "unknown field; it is ignored (check the spelling against docs/executors.md)",
        );
    }
    result.map_err(|e| {
        let path = e.path().to_string();
        Diagnostic::new(join(field, &path), e.into_inner().to_string())
    })
}

/// Joins a field prefix and a serde path (`.` means the value itself).
fn join(prefix: &str, path: &str) -> String {
    match path {
        "" | "." => prefix.to_string(),
        p if p.starts_with('[') => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    }
}

/// Which connector an executor type works with. Validation checks each
/// target's `connectorRef` against it, so a plan whose connector cannot work
/// is rejected at admission instead of failing in the runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorUse {
    /// Not declared: any connector, or none, is accepted.
    Any,
    /// The executor needs no connector; a `connectorRef` is ignored (and
    /// validation warns about it).
    None,
    /// The executor needs a connector of this kind.
    Kind(ConnectorKind),
}

impl std::fmt::Display for ConnectorUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any connector"),
            Self::None => f.write_str("no connector"),
            Self::Kind(kind) => write!(f, "a connector of kind {kind}"),
        }
    }
}

#[derive(Clone)]
struct Entry {
    check: Arc<dyn ParameterCheck>,
    connector: ConnectorUse,
}

/// The executor types a binary knows, with their parameter checks and the
/// connector each works with. Built from the binary's executor set
/// (`hibernator_executors::ExecutorSet::catalog`), so validation knows
/// exactly the types the runner can run.
#[derive(Clone, Default)]
pub struct ParameterCatalog {
    entries: BTreeMap<String, Entry>,
    enforceable: std::collections::BTreeSet<String>,
}

impl ParameterCatalog {
    /// An empty catalog (every executor type is unknown).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the check for its executor type, accepting any
    /// connector ([`ConnectorUse::Any`]).
    pub fn register(&mut self, check: Arc<dyn ParameterCheck>) {
        self.register_with_connector(check, ConnectorUse::Any);
    }

    /// Adds (or replaces) the check for its executor type and the connector
    /// targets of that type must name.
    pub fn register_with_connector(
        &mut self,
        check: Arc<dyn ParameterCheck>,
        connector: ConnectorUse,
    ) {
        self.entries.insert(
            check.executor_type().to_string(),
            Entry { check, connector },
        );
    }

    /// Builder form of [`register`](Self::register).
    pub fn with(mut self, check: Arc<dyn ParameterCheck>) -> Self {
        self.register(check);
        self
    }

    /// Builder form of [`register_with_connector`](Self::register_with_connector).
    pub fn with_connector(
        mut self,
        check: Arc<dyn ParameterCheck>,
        connector: ConnectorUse,
    ) -> Self {
        self.register_with_connector(check, connector);
        self
    }

    /// The check for an executor type.
    pub fn get(&self, executor_type: &str) -> Option<&Arc<dyn ParameterCheck>> {
        self.entries.get(executor_type).map(|e| &e.check)
    }

    /// The connector an executor type works with (`None`: unknown type).
    pub fn connector(&self, executor_type: &str) -> Option<&ConnectorUse> {
        self.entries.get(executor_type).map(|e| &e.connector)
    }

    /// Records whether executors of `executor_type` support enforcement
    /// (`Executor::supports_enforce`); the controller schedules enforcement
    /// checks only for those.
    pub fn set_supports_enforce(&mut self, executor_type: &str, supported: bool) {
        if supported {
            self.enforceable.insert(executor_type.to_string());
        } else {
            self.enforceable.remove(executor_type);
        }
    }

    /// Whether executors of `executor_type` support enforcement.
    pub fn supports_enforce(&self, executor_type: &str) -> bool {
        self.enforceable.contains(executor_type)
    }

    /// The known executor types, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Number of known executor types.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no executor type is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for ParameterCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Demo {
        cluster_name: String,
        #[serde(default)]
        #[allow(dead_code)] // only its type matters to these tests
        node_groups: Vec<String>,
    }

    impl ValidateParameters for Demo {
        fn validate(&self, field: &str, d: &mut Diagnostics) {
            if self.cluster_name.is_empty() {
                d.error(format!("{field}.clusterName"), "must not be empty");
            }
        }
    }

    fn check(v: serde_json::Value) -> Diagnostics {
        TypedParameters::<Demo>::new("demo").check(Some(&v), "spec.targets[0].parameters")
    }

    #[test]
    fn type_errors_name_the_field() {
        let d = check(serde_json::json!({"clusterName": "c", "nodeGroups": [1]}));
        assert_eq!(
            d.errors[0].field,
            "spec.targets[0].parameters.nodeGroups[0]"
        );
    }

    #[test]
    fn missing_fields_are_errors_and_unknown_fields_warnings() {
        let d = check(serde_json::json!({"nodegroups": []}));
        assert!(d.errors[0].message.contains("clusterName"), "{d:?}");
        assert_eq!(d.warnings[0].field, "spec.targets[0].parameters.nodegroups");
    }

    #[test]
    fn semantic_checks_run_after_parsing() {
        let d = check(serde_json::json!({"clusterName": ""}));
        assert_eq!(d.errors[0].field, "spec.targets[0].parameters.clusterName");
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn catalog_lists_types() {
        let catalog = ParameterCatalog::new().with(Arc::new(TypedParameters::<Demo>::new("demo")));
        assert_eq!(catalog.types().collect::<Vec<_>>(), ["demo"]);
        assert!(catalog.get("demo").is_some());
        assert!(catalog.get("ec2").is_none());
        assert_eq!(catalog.connector("demo"), Some(&ConnectorUse::Any));
        let catalog = catalog.with_connector(
            Arc::new(TypedParameters::<Demo>::new("demo")),
            ConnectorUse::Kind(ConnectorKind::K8sCluster),
        );
        assert_eq!(catalog.len(), 1);
        assert_eq!(
            catalog
                .connector("demo")
                .map(ToString::to_string)
                .as_deref(),
            Some("a connector of kind K8SCluster")
        );
    }
}
