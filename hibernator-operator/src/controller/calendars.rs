//! The plan's holiday calendars: read from the watch caches (or the API), resolved
//! into days once per change and kept in a small cache.
//!
//! A calendar is resolved again only when the calendar, one of its iCalendar
//! ConfigMaps (label `hibernator.dev/calendar`) or the year changes; each
//! reconcile of a plan with calendars costs a map lookup, no request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use hibernator_core::calendar::{CalendarDays, Documents, resolve};
use hibernator_core::schedule::ScheduleError;
use hibernator_core::types::{HibernatePlan, HolidayCalendar};
use hibernator_core::wellknown::LABEL_CALENDAR;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::reflector::{ObjectRef, Store};

use super::error::Error;

/// One resolution: the calendar's days or why not, with what it was made from.
type Resolution = Result<CalendarDays, ScheduleError>;

/// Resolved calendars by `namespace/name`, valid for a fingerprint.
#[derive(Default)]
pub struct CalendarCache {
    entries: Mutex<BTreeMap<String, (String, Arc<Resolution>)>>,
}

impl std::fmt::Debug for CalendarCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarCache").finish_non_exhaustive()
    }
}

/// iCalendar documents fetched for one calendar: `name` → ConfigMap.
struct Fetched<'a> {
    config_maps: &'a BTreeMap<String, Option<Arc<ConfigMap>>>,
    from_store: bool,
}

impl Documents for Fetched<'_> {
    fn document(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>, String> {
        match self.config_maps.get(name).cloned().flatten() {
            Some(cm) => Ok(cm.data.as_ref().and_then(|d| d.get(key)).cloned()),
            None if self.from_store => Err(format!(
                "ConfigMap {namespace}/{name} not found among the ConfigMaps labelled {LABEL_CALENDAR} \
                 (the controller watches only those): create it, or label it with \
                 `kubectl label configmap -n {namespace} {name} {LABEL_CALENDAR}=true`"
            )),
            None => Ok(None),
        }
    }
}

fn fingerprint(
    calendar: &HolidayCalendar,
    config_maps: &BTreeMap<String, Option<Arc<ConfigMap>>>,
    today: NaiveDate,
) -> String {
    use chrono::Datelike;
    let mut out = format!(
        "{}@{}|{}",
        calendar.metadata.uid.as_deref().unwrap_or(""),
        calendar.metadata.resource_version.as_deref().unwrap_or(""),
        today.year()
    );
    for (name, cm) in config_maps {
        let version = cm
            .as_ref()
            .and_then(|c| c.metadata.resource_version.as_deref())
            .unwrap_or("-");
        out.push_str(&format!("|{name}@{version}"));
    }
    out
}

/// Reads and resolves the calendars of `plan`, one per `spec.schedule.calendars`
/// entry: from `stores` (calendars and labelled ConfigMaps) when given, else
/// with GETs.
pub async fn read_calendars(
    client: &kube::Client,
    plan: &HibernatePlan,
    stores: Option<(&Store<HolidayCalendar>, &Store<ConfigMap>)>,
    cache: &CalendarCache,
    today: NaiveDate,
) -> Result<Vec<Resolution>, Error> {
    let plan_namespace = plan.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (i, r) in plan.spec.schedule.calendars.iter().enumerate() {
        let namespace = r
            .namespace
            .clone()
            .unwrap_or_else(|| plan_namespace.clone());
        let field = format!("spec.schedule.calendars[{i}]");
        let calendar = match stores {
            Some((calendars, _)) => calendars.get(&ObjectRef::new(&r.name).within(&namespace)),
            None => Api::<HolidayCalendar>::namespaced(client.clone(), &namespace)
                .get_opt(&r.name)
                .await
                .map_err(|e| {
                    Error::kube("get HolidayCalendar", format!("{namespace}/{}", r.name), e)
                })?
                .map(Arc::new),
        };
        let Some(calendar) = calendar else {
            out.push(Err(ScheduleError::new(
                field,
                format!("HolidayCalendar {namespace}/{} does not exist", r.name),
            )));
            continue;
        };
        let mut config_maps = BTreeMap::new();
        for source in &calendar.spec.ical {
            let name = source.config_map_ref.name.clone();
            if config_maps.contains_key(&name) {
                continue;
            }
            let cm = match stores {
                Some((_, documents)) => documents.get(&ObjectRef::new(&name).within(&namespace)),
                None => Api::<ConfigMap>::namespaced(client.clone(), &namespace)
                    .get_opt(&name)
                    .await
                    .map_err(|e| Error::kube("get ConfigMap", format!("{namespace}/{name}"), e))?
                    .map(Arc::new),
            };
            config_maps.insert(name, cm);
        }
        let key = format!("{namespace}/{}", r.name);
        let print = fingerprint(&calendar, &config_maps, today);
        let cached = cache.entries.lock().ok().and_then(|entries| {
            entries
                .get(&key)
                .filter(|(p, _)| *p == print)
                .map(|(_, r)| r.clone())
        });
        let resolution = match cached {
            Some(r) => r,
            None => {
                let documents = Fetched {
                    config_maps: &config_maps,
                    from_store: stores.is_some(),
                };
                let resolved = Arc::new(resolve(&calendar, &documents, today));
                if let Ok(mut entries) = cache.entries.lock() {
                    entries.insert(key, (print, resolved.clone()));
                }
                resolved
            }
        };
        out.push(match &*resolution {
            Ok(days) => Ok(days.clone()),
            Err(e) => Err(ScheduleError::new(
                field,
                format!("HolidayCalendar {namespace}/{}: {e}", r.name),
            )),
        });
    }
    Ok(out)
}

/// Whether `plan` lists calendar `namespace/name`.
pub fn lists_calendar(plan: &HibernatePlan, namespace: &str, name: &str) -> bool {
    let plan_namespace = plan.metadata.namespace.as_deref().unwrap_or_default();
    plan.spec
        .schedule
        .calendars
        .iter()
        .any(|r| r.name == name && r.namespace.as_deref().unwrap_or(plan_namespace) == namespace)
}

/// Whether `calendar` reads ConfigMap `name` (same namespace).
pub fn reads_config_map(calendar: &HolidayCalendar, namespace: &str, name: &str) -> bool {
    calendar.metadata.namespace.as_deref() == Some(namespace)
        && calendar
            .spec
            .ical
            .iter()
            .any(|s| s.config_map_ref.name == name)
}
