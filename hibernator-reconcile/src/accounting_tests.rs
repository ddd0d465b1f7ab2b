use chrono::{DateTime, TimeDelta, Utc};
use hibernator_core::restore::{RestoreEntry, RestoreRecord};
use hibernator_core::schedule::CompiledSchedule;
use hibernator_core::types::{
    ExecutionState, ExecutionStatus, HibernatePlanStatus, OffHourWindow, Operation, PlanAccounting,
    Schedule, Target,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn schedule(tz: &str, windows: &[(&str, &str, &[&str])]) -> CompiledSchedule {
    CompiledSchedule::compile(
        &Schedule {
            timezone: tz.to_string(),
            off_hours: windows
                .iter()
                .map(|(start, end, days)| OffHourWindow {
                    start: (*start).to_string(),
                    end: (*end).to_string(),
                    days_of_week: days.iter().map(|d| (*d).to_string()).collect(),
                })
                .collect(),
            calendars: Vec::new(),
        },
        &[],
    )
    .unwrap()
}

/// Off 20:00–06:00 on weekdays, all weekend (Europe/Berlin).
fn berlin() -> CompiledSchedule {
    schedule(
        "Europe/Berlin",
        &[
            ("20:00", "06:00", &["MON", "TUE", "WED", "THU", "FRI"]),
            ("00:00", "24:00", &["SAT", "SUN"]),
        ],
    )
}

fn targets(names: &[&str]) -> Vec<Target> {
    names
        .iter()
        .map(|n| Target {
            name: (*n).to_string(),
            kind: "ec2".to_string(),
            ..Target::default()
        })
        .collect()
}

fn execution(
    target: &str,
    state: ExecutionState,
    started: &str,
    finished: Option<&str>,
) -> ExecutionStatus {
    ExecutionStatus {
        target: target.to_string(),
        executor: "ec2".to_string(),
        state,
        attempts: 1,
        started_at: Some(at(started)),
        finished_at: finished.map(at),
        ..ExecutionStatus::default()
    }
}

fn restore_with(target: &str, classes: &[(&str, u32)]) -> RestoreView {
    let mut view = RestoreView::default();
    let mut counts = ResourceCounts::default();
    for (class, n) in classes {
        counts.total += n;
        counts.classes.insert((*class).to_string(), *n);
    }
    view.resources.insert(target.to_string(), counts);
    view
}

/// A status carrying a ledger of `op` with `executions` and `accounting`.
fn status(
    op: Operation,
    executions: Vec<ExecutionStatus>,
    acc: Option<PlanAccounting>,
) -> HibernatePlanStatus {
    HibernatePlanStatus {
        current_cycle_id: Some("c1".into()),
        current_operation: Some(op),
        executions,
        accounting: acc.map(Arc::new),
        ..HibernatePlanStatus::default()
    }
}

/// Runs `account` as decide would: previous status, new status, now.
fn step(
    previous: &HibernatePlanStatus,
    mut next: HibernatePlanStatus,
    spec: &[Target],
    restore: &RestoreView,
    schedule: &CompiledSchedule,
    now: &str,
) -> HibernatePlanStatus {
    next.accounting.clone_from(&previous.accounting);
    account(&mut next, previous, spec, restore, schedule, at(now));
    next
}

#[test]
fn months_are_cut_in_the_plan_time_zone() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    // 2026-10-31 22:00Z is 23:00 Berlin (CET), 2026-10-31T23:00Z is Nov 1st 00:00
    let parts = split_by_month(at("2026-10-31T22:00:00Z"), at("2026-11-01T01:00:00Z"), tz);
    assert_eq!(
        parts,
        vec![("2026-10".to_string(), 3600), ("2026-11".to_string(), 7200)]
    );
    assert_eq!(month_of(at("2026-10-31T23:30:00Z"), tz), "2026-11");
    assert_eq!(month_of(at("2026-10-31T23:30:00Z"), Tz::UTC), "2026-10");
    // a year boundary and an empty interval
    let parts = split_by_month(
        at("2026-12-31T00:00:00Z"),
        at("2027-01-01T12:00:00Z"),
        Tz::UTC,
    );
    assert_eq!(
        parts,
        vec![
            ("2026-12".to_string(), 86_400),
            ("2027-01".to_string(), 43_200)
        ]
    );
    assert!(split_by_month(at("2026-12-31T00:00:00Z"), at("2026-12-31T00:00:00Z"), tz).is_empty());
}

#[test]
fn month_keys_parse_strictly() {
    assert_eq!(parse_month("2026-11"), Some((2026, 11)));
    for bad in [
        "2026-13", "2026-1", "26-11", "2026/11", "", "2026-00", "abcd-ef",
    ] {
        assert_eq!(parse_month(bad), None, "{bad}");
    }
}

#[test]
fn scheduled_seconds_of_a_week_are_exact() {
    let s = berlin();
    // Mon 2026-11-02 00:00 Berlin (= 2026-11-01T23:00Z) for one week: the
    // weekday nights (5 × 10 h, the first Monday 00:00–06:00 included via
    // the weekend block) and the weekend
    let from = at("2026-11-01T23:00:00Z");
    let to = from + TimeDelta::days(7);
    let total: u64 = scheduled_by_month(&s, from, to)
        .iter()
        .map(|(_, v)| v)
        .sum();
    // Mon 00-06 (6h) + Mon..Thu 20-06 (4 × 10h) + Fri 20:00 → Mon 00:00 (52h)
    assert_eq!(total, (6 + 40 + 52) * 3600);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Scheduled seconds agree with a minute-by-minute oracle (windows on
    /// whole minutes, so minute sampling is exact), across a DST change and
    /// a month boundary.
    #[test]
    fn scheduled_seconds_match_a_sampling_oracle(
        start in 0u16..1440,
        len in 1u16..1439,
        days in 1u8..128,
        offset_hours in 0i64..(24 * 10),
        span_hours in 1i64..(24 * 5),
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York"]),
    ) {
        let end = (start + len) % 1440;
        prop_assume!(end != start);
        let fmt = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let names = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
        let chosen: Vec<&str> = (0..7).filter(|i| days & (1 << i) != 0).map(|i| names[i]).collect();
        let s = schedule(zone, &[(&fmt(start), &fmt(end), &chosen)]);
        // around the end of October (DST ends, months change)
        let from = at("2026-10-24T00:00:00Z") + TimeDelta::hours(offset_hours);
        let to = from + TimeDelta::hours(span_hours);
        let tz: Tz = zone.parse().unwrap();
        let mut oracle: BTreeMap<String, u64> = BTreeMap::new();
        let mut t = from;
        while t < to {
            if s.state_at(t) == ScheduleState::Hibernated {
                *oracle.entry(month_of(t, tz)).or_insert(0) += 60;
            }
            t += TimeDelta::minutes(1);
        }
        let exact: BTreeMap<String, u64> = scheduled_by_month(&s, from, to).into_iter().collect();
        prop_assert_eq!(exact, oracle);
    }
}

#[test]
fn a_target_is_hibernated_from_shutdown_finish_to_wakeup_start() {
    let s = berlin();
    let spec = targets(&["web"]);
    let restore = restore_with("web", &[("ec2.m5.large", 2), (UNCLASSIFIED, 1)]);
    // a shutdown cycle starts (first accounting: accounted from here)
    let p0 = HibernatePlanStatus::default();
    let s1 = step(
        &p0,
        status(
            Operation::Shutdown,
            vec![execution(
                "web",
                ExecutionState::Running,
                "2026-11-02T19:00:00Z",
                None,
            )],
            None,
        ),
        &spec,
        &restore,
        &s,
        "2026-11-02T19:00:00Z",
    );
    let acc = s1.accounting.clone().unwrap();
    assert_eq!(acc.accounted_until, Some(at("2026-11-02T19:00:00Z")));
    assert!(acc.hibernated.is_empty());
    assert_eq!(acc.timezone.as_deref(), Some("Europe/Berlin"));
    // its Job finished at 19:05, observed at 19:07
    let s2 = step(
        &s1,
        status(
            Operation::Shutdown,
            vec![execution(
                "web",
                ExecutionState::Completed,
                "2026-11-02T19:00:00Z",
                Some("2026-11-02T19:05:00Z"),
            )],
            None,
        ),
        &spec,
        &restore,
        &s,
        "2026-11-02T19:07:00Z",
    );
    let acc = s2.accounting.clone().unwrap();
    assert_eq!(acc.hibernated.len(), 1);
    assert_eq!(acc.hibernated[0].since, at("2026-11-02T19:05:00Z"));
    assert_eq!(acc.hibernated[0].resources, 3);
    let month = &acc.months[0];
    assert_eq!(month.month, "2026-11");
    assert_eq!(month.targets[0].hibernated_seconds, 120);
    assert_eq!(month.hibernated_seconds, 120);
    // 19:05–19:07Z is 20:05–20:07 Berlin: off-hours, covered
    assert_eq!(month.covered_seconds, 120);
    assert_eq!(month.scheduled_seconds, 7 * 60);
    assert_eq!(month.targets[0].resource_seconds["ec2.m5.large"], 240);
    assert_eq!(month.targets[0].resource_seconds[UNCLASSIFIED], 120);
    // the wake-up starts the next morning at 05:00Z (06:00 Berlin)
    let s3 = step(
        &s2,
        status(
            Operation::Wakeup,
            vec![execution(
                "web",
                ExecutionState::Running,
                "2026-11-03T05:00:00Z",
                None,
            )],
            None,
        ),
        &spec,
        &restore,
        &s,
        "2026-11-03T05:00:00Z",
    );
    let acc = s3.accounting.clone().unwrap();
    assert!(acc.hibernated.is_empty());
    let month = &acc.months[0];
    let night = (at("2026-11-03T05:00:00Z") - at("2026-11-02T19:05:00Z")).num_seconds() as u64;
    assert_eq!(month.targets[0].hibernated_seconds, night);
    assert_eq!(month.hibernated_seconds, night);
    assert_eq!(month.covered_seconds, night);
    assert_eq!(month.scheduled_seconds, 10 * 3600 - 5 * 60 + 5 * 60);
    assert_eq!(coverage(month), Some(night as f64 / (10.0 * 3600.0)));
    // the wake-up finishing later changes nothing more for the target
    let s4 = step(
        &s3,
        status(
            Operation::Wakeup,
            vec![execution(
                "web",
                ExecutionState::Completed,
                "2026-11-03T05:00:00Z",
                Some("2026-11-03T05:03:00Z"),
            )],
            None,
        ),
        &spec,
        &restore,
        &s,
        "2026-11-03T05:03:00Z",
    );
    let acc = s4.accounting.unwrap();
    assert_eq!(acc.months[0].targets[0].hibernated_seconds, night);
    assert_eq!(acc.accounted_until, Some(at("2026-11-03T05:03:00Z")));
}

#[test]
fn nothing_changes_on_a_reconcile_that_writes_nothing_else() {
    let s = berlin();
    let spec = targets(&["web"]);
    let restore = RestoreView::default();
    let previous = status(
        Operation::Shutdown,
        vec![execution(
            "web",
            ExecutionState::Completed,
            "2026-11-02T19:00:00Z",
            Some("2026-11-02T19:05:00Z"),
        )],
        Some(PlanAccounting {
            accounted_until: Some(at("2026-11-02T19:07:00Z")),
            ..PlanAccounting::default()
        }),
    );
    let next = step(
        &previous,
        previous.clone(),
        &spec,
        &restore,
        &s,
        "2026-11-02T23:00:00Z",
    );
    assert_eq!(next, previous, "an unchanged status must stay unchanged");
    // ... except when the month rolled over (once a month)
    let next = step(
        &previous,
        previous.clone(),
        &spec,
        &restore,
        &s,
        "2026-12-01T10:00:00Z",
    );
    let acc = next.accounting.unwrap();
    assert_eq!(acc.accounted_until, Some(at("2026-12-01T10:00:00Z")));
    assert_eq!(acc.months[0].month, "2026-12");
    assert_eq!(acc.months[1].month, "2026-11");
}

#[test]
fn controller_downtime_loses_nothing_and_months_split_exactly() {
    let s = schedule(
        "UTC",
        &[(
            "00:00",
            "24:00",
            &["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"],
        )],
    );
    let spec = targets(&["a", "b"]);
    let restore = RestoreView::default();
    let acc = PlanAccounting {
        accounted_until: Some(at("2026-10-30T00:00:00Z")),
        hibernated: vec![
            HibernatedTarget {
                target: "a".into(),
                type_: "ec2".into(),
                since: at("2026-10-29T00:00:00Z"),
                resources: 1,
                classes: BTreeMap::new(),
            },
            HibernatedTarget {
                target: "b".into(),
                type_: "ec2".into(),
                since: at("2026-10-29T12:00:00Z"),
                resources: 1,
                classes: BTreeMap::new(),
            },
        ],
        ..PlanAccounting::default()
    };
    let previous = HibernatePlanStatus {
        accounting: Some(Arc::new(acc)),
        ..HibernatePlanStatus::default()
    };
    // the next write comes three days later (e.g. the controller was down)
    let mut next = previous.clone();
    next.next_transition = Some(at("2026-11-09T00:00:00Z"));
    let next = step(&previous, next, &spec, &restore, &s, "2026-11-02T00:00:00Z");
    let acc = next.accounting.unwrap();
    let oct = acc.months.iter().find(|m| m.month == "2026-10").unwrap();
    let nov = acc.months.iter().find(|m| m.month == "2026-11").unwrap();
    assert_eq!(oct.scheduled_seconds, 2 * 86_400);
    assert_eq!(nov.scheduled_seconds, 86_400);
    assert_eq!(oct.hibernated_seconds, 2 * 86_400);
    assert_eq!(nov.covered_seconds, 86_400);
    assert_eq!(oct.targets.len(), 2);
    assert_eq!(acc.hibernated.len(), 2, "still hibernated");
}

#[test]
fn the_plan_counts_only_while_every_target_is_hibernated() {
    let s = schedule(
        "UTC",
        &[(
            "00:00",
            "24:00",
            &["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"],
        )],
    );
    let spec = targets(&["a", "b"]);
    let restore = RestoreView::default();
    let p0 = status(
        Operation::Shutdown,
        vec![],
        Some(PlanAccounting {
            accounted_until: Some(at("2026-11-02T00:00:00Z")),
            ..PlanAccounting::default()
        }),
    );
    // a finished at 00:10, b failed: only a is hibernated
    let s1 = step(
        &p0,
        status(
            Operation::Shutdown,
            vec![
                execution(
                    "a",
                    ExecutionState::Completed,
                    "2026-11-02T00:00:00Z",
                    Some("2026-11-02T00:10:00Z"),
                ),
                execution(
                    "b",
                    ExecutionState::Failed,
                    "2026-11-02T00:00:00Z",
                    Some("2026-11-02T00:10:00Z"),
                ),
            ],
            None,
        ),
        &spec,
        &restore,
        &s,
        "2026-11-02T01:00:00Z",
    );
    let acc = s1.accounting.clone().unwrap();
    assert_eq!(acc.months[0].targets.len(), 1);
    assert_eq!(acc.months[0].targets[0].hibernated_seconds, 50 * 60);
    assert_eq!(acc.months[0].hibernated_seconds, 0);
    assert_eq!(acc.months[0].covered_seconds, 0);
    assert_eq!(acc.months[0].scheduled_seconds, 3600);
    // a retry of b finishes at 01:30 (observed at 02:00): the plan counts from 01:30
    let s2 = step(
        &s1,
        status(
            Operation::Shutdown,
            vec![
                execution(
                    "a",
                    ExecutionState::Completed,
                    "2026-11-02T00:00:00Z",
                    Some("2026-11-02T00:10:00Z"),
                ),
                execution(
                    "b",
                    ExecutionState::Completed,
                    "2026-11-02T01:20:00Z",
                    Some("2026-11-02T01:30:00Z"),
                ),
            ],
            None,
        ),
        &spec,
        &restore,
        &s,
        "2026-11-02T02:00:00Z",
    );
    let acc = s2.accounting.unwrap();
    assert_eq!(acc.months[0].hibernated_seconds, 30 * 60);
    assert_eq!(acc.months[0].covered_seconds, 30 * 60);
    assert_eq!(acc.months[0].targets[0].hibernated_seconds, 110 * 60);
    assert_eq!(acc.months[0].targets[1].hibernated_seconds, 30 * 60);
    // live: two more hours (no write)
    let live = live(&acc, &spec, Some(&s), at("2026-11-02T04:00:00Z"));
    assert_eq!(live.months[0].hibernated_seconds, 150 * 60);
    assert_eq!(live.months[0].scheduled_seconds, 4 * 3600);
    assert_eq!(live.months[0].targets[1].hibernated_seconds, 150 * 60);
    assert_eq!(accrued_between(Some(&*acc), &live)["a"], 2 * 3600);
    assert_eq!(accrued_between(None, &live)["b"], 150 * 60);
}

#[test]
fn the_first_accounting_starts_now_and_not_at_an_old_shutdown() {
    let s = berlin();
    let spec = targets(&["web"]);
    let previous = status(
        Operation::Shutdown,
        vec![execution(
            "web",
            ExecutionState::Completed,
            "2026-11-02T19:00:00Z",
            Some("2026-11-02T19:05:00Z"),
        )],
        None,
    );
    let mut next = previous.clone();
    next.next_transition = Some(at("2026-11-04T05:00:00Z"));
    let next = step(
        &previous,
        next,
        &spec,
        &RestoreView::default(),
        &s,
        "2026-11-03T01:00:00Z",
    );
    let acc = next.accounting.unwrap();
    assert_eq!(acc.hibernated[0].since, at("2026-11-03T01:00:00Z"));
    assert_eq!(acc.months[0].targets.len(), 0);
    let live = live(&acc, &spec, Some(&s), at("2026-11-03T02:00:00Z"));
    assert_eq!(live.months[0].targets[0].hibernated_seconds, 3600);
}

#[test]
fn targets_removed_from_the_spec_stop_counting() {
    let s = berlin();
    let acc = PlanAccounting {
        accounted_until: Some(at("2026-11-02T20:00:00Z")),
        hibernated: vec![HibernatedTarget {
            target: "gone".into(),
            type_: "rds".into(),
            since: at("2026-11-02T19:00:00Z"),
            resources: 1,
            classes: BTreeMap::new(),
        }],
        ..PlanAccounting::default()
    };
    let previous = HibernatePlanStatus {
        accounting: Some(Arc::new(acc)),
        ..HibernatePlanStatus::default()
    };
    let mut next = previous.clone();
    next.observed_generation = Some(2);
    let next = step(
        &previous,
        next,
        &targets(&["web"]),
        &RestoreView::default(),
        &s,
        "2026-11-02T21:00:00Z",
    );
    let acc = next.accounting.unwrap();
    assert!(acc.hibernated.is_empty());
    assert_eq!(acc.months[0].targets[0].hibernated_seconds, 3600);
}

#[test]
fn re_enforcements_add_to_the_month_of_now() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let mut acc = PlanAccounting::default();
    record_re_enforcements(&mut acc, tz, at("2026-11-30T23:30:00Z"), 2);
    record_re_enforcements(&mut acc, tz, at("2026-11-29T10:00:00Z"), 1);
    record_re_enforcements(&mut acc, tz, at("2026-11-29T10:00:00Z"), 0);
    assert_eq!(acc.months.len(), 2);
    assert_eq!(acc.months[0].month, "2026-12");
    assert_eq!(acc.months[0].re_enforcements, 2);
    assert_eq!(acc.months[1].re_enforcements, 1);
}

#[test]
fn months_are_bounded_newest_first() {
    let tz = Tz::UTC;
    let mut acc = PlanAccounting::default();
    for m in 1..=20u32 {
        let t: DateTime<Utc> = at(&format!(
            "{}-{:02}-15T00:00:00Z",
            2025 + (m - 1) / 12,
            (m - 1) % 12 + 1
        ));
        record_re_enforcements(&mut acc, tz, t, 1);
    }
    assert_eq!(acc.months.len(), MAX_ACCOUNTING_MONTHS);
    assert_eq!(acc.months[0].month, "2026-08");
    assert_eq!(acc.months[11].month, "2025-09");
}

#[test]
fn resources_are_counted_by_class_from_the_restore_record() {
    let mut record = RestoreRecord::new("web", "ec2");
    for (key, state) in [
        (
            "instance/i-1",
            json!({"state": "running", "instanceType": "m5.large"}),
        ),
        (
            "instance/i-2",
            json!({"state": "running", "instanceType": "m5.large"}),
        ),
        ("instance/i-3", json!({"state": "running"})),
    ] {
        record.entries.insert(
            key.to_string(),
            RestoreEntry {
                state,
                cycle_id: "c1".into(),
                observed_at: at("2026-11-02T19:00:00Z"),
            },
        );
    }
    let counts = resource_counts(&record);
    assert_eq!(counts.total, 3);
    assert_eq!(counts.classes["ec2.m5.large"], 2);
    assert_eq!(counts.classes[UNCLASSIFIED], 1);
    let mut rds = RestoreRecord::new("db", "rds");
    rds.entries.insert(
        "instance/db-1".into(),
        RestoreEntry {
            state: json!({"status": "available", "dbInstanceClass": "db.r6g.large"}),
            cycle_id: "c1".into(),
            observed_at: at("2026-11-02T19:00:00Z"),
        },
    );
    assert_eq!(resource_counts(&rds).classes["rds.db.r6g.large"], 1);
}

/// The size bound documented in docs/savings-report.md: 50 targets with two
/// classes each, hibernated in each of 12 months.
#[test]
fn status_size_bound_of_fifty_targets_over_twelve_months() {
    let spec: Vec<Target> = (0..50)
        .map(|i| Target {
            name: format!("target-{i:02}-long-name"),
            kind: "ec2".into(),
            ..Target::default()
        })
        .collect();
    let mut acc = PlanAccounting {
        accounted_until: Some(at("2025-12-01T00:00:00Z")),
        hibernated: spec
            .iter()
            .map(|t| HibernatedTarget {
                target: t.name.clone(),
                type_: "ec2".into(),
                since: at("2025-12-01T00:00:00Z"),
                resources: 40,
                classes: [
                    ("ec2.m5.large".to_string(), 20),
                    ("ec2.r6g.2xlarge".to_string(), 20),
                ]
                .into(),
            })
            .collect(),
        ..PlanAccounting::default()
    };
    let s = schedule(
        "Europe/Berlin",
        &[("20:00", "06:00", &["MON", "TUE", "WED", "THU", "FRI"])],
    );
    acc = live(&acc, &spec, Some(&s), at("2026-12-15T00:00:00Z"));
    for m in &mut acc.months {
        m.re_enforcements = 123;
    }
    assert_eq!(acc.months.len(), MAX_ACCOUNTING_MONTHS);
    let bytes = serde_json::to_string(&acc).unwrap().len();
    eprintln!("status.accounting of 50 targets x 12 months: {bytes} bytes");
    assert!(bytes < 200_000, "{bytes} bytes");
}

/// Through `decide`: a night of a one-target plan, accrued at the status
/// writes only.
#[test]
fn decide_accounts_a_night_and_writes_nothing_in_between() {
    use crate::model::{DecideInput, JobObservation, JobPhase};
    use hibernator_core::executor::{Jitter, RetryPolicy};
    use hibernator_core::input::PlanDocuments;

    let yaml = "apiVersion: hibernator.dev/v1alpha1\nkind: HibernatePlan\nmetadata: {name: dev, namespace: ns, uid: u1, generation: 1}\nspec:\n  schedule: {timezone: UTC, offHours: [{start: \"20:00\", end: \"06:00\", daysOfWeek: [MON, TUE, WED, THU, FRI]}]}\n  execution:\n    strategy: {type: Parallel}\n  targets:\n    - {name: web, type: ec2, connectorRef: {kind: CloudProvider, name: aws}, parameters: {selector: {tags: {app: web}}}}\n";
    let mut plan = PlanDocuments::from_yaml(yaml).unwrap().plan;
    let catalog = hibernator_executors::ExecutorSet::new().catalog();
    let backoff = RetryPolicy {
        max_retries: 0,
        base_delay: std::time::Duration::from_secs(10),
        max_delay: std::time::Duration::from_secs(60),
        jitter: Jitter::None,
    };
    let mut restore = RestoreView {
        config_map: "hibernator-restore-dev".into(),
        ..RestoreView::default()
    };
    let mut jobs: Vec<JobObservation> = Vec::new();
    let run = |plan: &mut hibernator_core::types::HibernatePlan,
               jobs: &[JobObservation],
               restore: &RestoreView,
               now: &str| {
        let d = crate::decide(&DecideInput {
            plan,
            exceptions: &[],
            calendars: &[],
            jobs,
            enforce_jobs: &[],
            restore,
            now: at(now),
            catalog: &catalog,
            backoff: &backoff,
        });
        let wrote = plan.status.as_ref() != Some(&d.status);
        plan.status = Some(d.status.clone());
        (d, wrote)
    };
    // Monday morning (Active), then the evening boundary starts a shutdown
    run(&mut plan, &jobs, &restore, "2026-11-23T07:00:00Z");
    let (start, _) = run(&mut plan, &jobs, &restore, "2026-11-23T20:00:00Z");
    let request = &start.create[0];
    jobs.push(JobObservation {
        name: request.name("dev"),
        target: "web".into(),
        operation: Operation::Shutdown,
        cycle_id: request.cycle_id.clone(),
        attempt: 1,
        phase: JobPhase::Succeeded,
        message: None,
        retryable: true,
        started_at: Some(at("2026-11-23T20:00:00Z")),
        finished_at: Some(at("2026-11-23T20:05:00Z")),
    });
    restore.targets.insert("web".into());
    restore.resources.insert(
        "web".into(),
        ResourceCounts {
            total: 2,
            classes: [("ec2.m5.large".to_string(), 2)].into(),
        },
    );
    let (_, wrote) = run(&mut plan, &jobs, &restore, "2026-11-23T20:06:00Z");
    assert!(wrote);
    let acc = plan.status.as_ref().unwrap().accounting.clone().unwrap();
    assert_eq!(acc.hibernated[0].since, at("2026-11-23T20:05:00Z"));
    assert_eq!(acc.months[0].targets[0].hibernated_seconds, 60);
    // a quiet reconcile at midnight writes nothing
    let (_, wrote) = run(&mut plan, &jobs, &restore, "2026-11-24T00:00:00Z");
    assert!(!wrote, "accounting must not cause a status write");
    // the morning boundary starts the wake-up: the night is accrued
    let (_, wrote) = run(&mut plan, &jobs, &restore, "2026-11-24T06:00:00Z");
    assert!(wrote);
    let acc = plan.status.as_ref().unwrap().accounting.clone().unwrap();
    assert!(acc.hibernated.is_empty());
    let night = 10 * 3600 - 5 * 60;
    let month = &acc.months[0];
    assert_eq!(month.targets[0].hibernated_seconds, night);
    assert_eq!(month.targets[0].resource_seconds["ec2.m5.large"], 2 * night);
    assert_eq!(month.hibernated_seconds, night);
    assert_eq!(month.covered_seconds, night);
    // accounting began at the 20:00 status write
    assert_eq!(month.scheduled_seconds, 10 * 3600);
    assert_eq!(coverage(month), Some(night as f64 / 36_000.0));
}
