//! Reading plan files: multi-document YAML holding one `HibernatePlan` and
//! optionally `ScheduleException`s, `HolidayCalendar`s (with the `v1`
//! ConfigMaps of their iCalendar documents) and connector objects.

use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::calendar::{CalendarDays, Documents};
use crate::diag::Diagnostic;
use crate::schedule::{CompiledSchedule, ScheduleError};
use crate::types::{
    API_GROUP, API_VERSION, CloudProvider, HibernateNotification, HibernatePlan, HolidayCalendar,
    K8SCluster, ScheduleException,
};
use k8s_openapi::api::core::v1::ConfigMap;

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
    /// Holiday calendars defined in the file.
    pub calendars: Vec<HolidayCalendar>,
    /// ConfigMaps (`v1`) defined in the file: iCalendar documents of the calendars.
    pub config_maps: Vec<ConfigMap>,
    /// Notifications defined in the file (their templates are checked by
    /// `hibernator-reconcile`'s `notify::validate`, which knows the template
    /// language; this crate checks nothing of them).
    pub notifications: Vec<HibernateNotification>,
    /// How many `v1` Secrets the file holds (e.g. a notification's sink
    /// URLs). They are skipped unread: no command prints a Secret.
    pub secrets: usize,
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
        let mut calendars = Vec::new();
        let mut config_maps = Vec::new();
        let mut notifications = Vec::new();
        let mut secrets = 0;
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
            if api_version == "v1" && kind == "ConfigMap" {
                config_maps.push(typed::<ConfigMap>(document, &kind, value)?);
                continue;
            }
            if api_version == "v1" && kind == "Secret" {
                secrets += 1;
                continue;
            }
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
                "HolidayCalendar" => {
                    calendars.push(typed::<HolidayCalendar>(document, &kind, value)?)
                }
                "HibernateNotification" => {
                    notifications.push(typed::<HibernateNotification>(document, &kind, value)?)
                }
                other => {
                    return Err(InputError::Unsupported {
                        document,
                        message: format!(
                            "kind: {other:?} is not one of HibernatePlan, ScheduleException, HolidayCalendar, CloudProvider, K8SCluster, HibernateNotification (or a v1 ConfigMap or Secret)"
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
            calendars,
            config_maps,
            notifications,
            secrets,
            warnings,
        })
    }

    /// The plan's calendars (`spec.schedule.calendars`), resolved from the
    /// `HolidayCalendar`s and ConfigMaps of the file, one per entry in order. A
    /// calendar matches by name (and namespace when both give one).
    pub fn calendar_days(
        &self,
        today: chrono::NaiveDate,
    ) -> Vec<Result<CalendarDays, ScheduleError>> {
        let plan_ns = self.plan.metadata.namespace.as_deref();
        self.plan
            .spec
            .schedule
            .calendars
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let ns = r.namespace.as_deref().or(plan_ns);
                let found = self.calendars.iter().find(|c| {
                    c.metadata.name.as_deref() == Some(r.name.as_str())
                        && (ns.is_none()
                            || c.metadata.namespace.is_none()
                            || c.metadata.namespace.as_deref() == ns)
                });
                let Some(calendar) = found else {
                    return Err(ScheduleError::new(
                        format!("spec.schedule.calendars[{i}]"),
                        format!(
                            "HolidayCalendar {:?} is not in the file: add its document (and the ConfigMaps of its ical sources) to see its days",
                            r.name
                        ),
                    ));
                };
                let mut calendar = calendar.clone();
                if calendar.metadata.namespace.is_none() {
                    calendar.metadata.namespace = Some(ns.unwrap_or("default").to_string());
                }
                crate::calendar::resolve(&calendar, self, today).map_err(|e| {
                    ScheduleError::new(
                        format!("spec.schedule.calendars[{i}]"),
                        format!("HolidayCalendar {:?}: {e}", r.name),
                    )
                })
            })
            .collect()
    }

    /// Compiles the plan's schedule with its exceptions and the calendars the
    /// file resolves; calendars that do not resolve are left out and returned as
    /// problems (naming `spec.schedule.calendars[i]`), like the controller does.
    pub fn compile_schedule(
        &self,
        today: chrono::NaiveDate,
    ) -> Result<(CompiledSchedule, Vec<ScheduleError>), ScheduleError> {
        let resolved = self.calendar_days(today);
        let (schedule, days, problems) =
            crate::calendar::usable(&self.plan.spec.schedule, resolved);
        let compiled =
            CompiledSchedule::compile_with_calendars(&schedule, &self.exceptions, &days)?;
        Ok((compiled, problems))
    }

    /// Reads and parses a file.
    pub fn from_path(path: &std::path::Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::PlanCount(format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text)
    }
}

impl Documents for PlanDocuments {
    fn document(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>, String> {
        Ok(self
            .config_maps
            .iter()
            .find(|c| {
                c.metadata.name.as_deref() == Some(name)
                    && c.metadata
                        .namespace
                        .as_deref()
                        .is_none_or(|ns| ns == namespace)
            })
            .and_then(|c| c.data.as_ref()?.get(key).cloned()))
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
