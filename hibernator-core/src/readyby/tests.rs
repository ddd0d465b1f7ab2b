//! Ready-by: the lead schedule against a brute-force oracle, rule L1's edge
//! cases, and the lead computation.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use super::*;
use crate::schedule::tests_prop::{Oracle, RANGE_DAYS, case, state};
use crate::types::{
    ConnectorKind, ConnectorRef, Dependency, ExceptionType, ObjectRef, OffHourWindow, Schedule,
    ScheduleException, ScheduleExceptionSpec, Stage, StrategyType, Target, TargetDurations, WakeUp,
};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn weeknights(zone: &str, start: &str, end: &str) -> Schedule {
    Schedule {
        timezone: zone.into(),
        off_hours: vec![OffHourWindow {
            start: start.into(),
            end: end.into(),
            days_of_week: ["MON", "TUE", "WED", "THU", "FRI"]
                .map(String::from)
                .to_vec(),
        }],
        calendars: Vec::new(),
    }
}

fn compiled(schedule: &Schedule, exceptions: &[ScheduleException]) -> CompiledSchedule {
    CompiledSchedule::compile(schedule, exceptions).unwrap()
}

#[test]
fn the_wake_up_starts_the_lead_before_the_window_end() {
    let c = compiled(&weeknights("Europe/Berlin", "20:00", "06:00"), &[]);
    let s = LeadSchedule::new(&c, TimeDelta::minutes(45));
    // Friday 21:00 Berlin: off until Monday 06:00 (05:00Z); the wake-up starts 04:15Z.
    let friday = at("2026-11-27T20:00:00Z");
    assert_eq!(s.state_at(friday), ScheduleState::Hibernated);
    let next = s.next_transition(friday).unwrap();
    assert_eq!(next.at, at("2026-11-30T04:15:00Z"));
    assert_eq!(next.to, ScheduleState::Awake);
    assert_eq!(s.window_end(friday), Some(at("2026-11-30T05:00:00Z")));
    // Between the effective wake-up and the window end: awake, and the next
    // transition is the Monday night hibernation, unchanged.
    let early = at("2026-11-30T04:30:00Z");
    assert_eq!(s.state_at(early), ScheduleState::Awake);
    assert_eq!(c.state_at(early), ScheduleState::Hibernated);
    let next = s.next_transition(early).unwrap();
    assert_eq!(next.at, at("2026-11-30T19:00:00Z"));
    assert_eq!(next.to, ScheduleState::Hibernated);
    // The hibernation start never moves.
    assert_eq!(
        s.state_at(at("2026-11-30T19:00:00Z")),
        ScheduleState::Hibernated
    );
    assert_eq!(s.state_at(at("2026-11-30T18:59:59Z")), ScheduleState::Awake);
}

#[test]
fn a_zero_lead_is_the_schedule() {
    let c = compiled(&weeknights("America/New_York", "19:30", "07:00"), &[]);
    let s = LeadSchedule::new(&c, TimeDelta::zero());
    let from = at("2026-11-02T12:00:00Z");
    let with: Vec<_> = s.transitions(from).take(20).collect();
    let without: Vec<_> = c.transitions(from).take(20).collect();
    assert_eq!(with, without);
}

#[test]
fn an_off_run_no_longer_than_the_lead_is_skipped() {
    // L1: [20:00, 20:30) with a 45-minute lead would wake up before it
    // hibernates; the run vanishes and the plan stays awake that night.
    let mut schedule = weeknights("UTC", "20:00", "20:30");
    schedule.off_hours.push(OffHourWindow {
        start: "00:00".into(),
        end: "24:00".into(),
        days_of_week: vec!["SAT".into(), "SUN".into()],
    });
    let c = compiled(&schedule, &[]);
    let s = LeadSchedule::new(&c, TimeDelta::minutes(45));
    let monday = at("2026-11-23T12:00:00Z");
    assert_eq!(s.state_at(at("2026-11-23T20:10:00Z")), ScheduleState::Awake);
    // The next hibernation is the weekend (Friday's short run is skipped too).
    let next = s.next_transition(monday).unwrap();
    assert_eq!(next.at, at("2026-11-28T00:00:00Z"));
    assert_eq!(next.to, ScheduleState::Hibernated);
    let wake = s.next_transition(next.at).unwrap();
    assert_eq!(wake.at, at("2026-11-29T23:15:00Z"));
    // Exactly as long as the lead: skipped as well (b − lead = a is not after a).
    let c = compiled(&weeknights("UTC", "20:00", "20:45"), &[]);
    let s = LeadSchedule::new(&c, TimeDelta::minutes(45));
    assert_eq!(s.state_at(at("2026-11-23T20:00:00Z")), ScheduleState::Awake);
    assert_eq!(s.next_transition(monday), None, "every run is skipped");
}

#[test]
fn a_suspend_exception_ends_the_run_and_the_lead_counts_back_from_it() {
    // A suspend from Wednesday 02:00 (maintenance) ends the Tuesday night
    // run at 02:00, so the wake-up starts 01:15, not 05:15.
    let schedule = weeknights("UTC", "20:00", "06:00");
    let suspend = ScheduleException::new(
        "maintenance",
        ScheduleExceptionSpec {
            plan_ref: ObjectRef {
                name: "p".into(),
                namespace: None,
            },
            valid_from: at("2026-11-25T00:00:00Z"),
            valid_until: at("2026-11-26T00:00:00Z"),
            kind: ExceptionType::Suspend,
            lead_time: None,
            windows: vec![OffHourWindow {
                start: "02:00".into(),
                end: "08:00".into(),
                days_of_week: vec!["WED".into()],
            }],
        },
    );
    let c = compiled(&schedule, &[suspend]);
    let s = LeadSchedule::new(&c, TimeDelta::minutes(45));
    let next = s.next_transition(at("2026-11-24T23:00:00Z")).unwrap();
    assert_eq!(next.at, at("2026-11-25T01:15:00Z"));
    assert_eq!(next.to, ScheduleState::Awake);
}

#[test]
fn the_lead_is_absolute_time_across_a_dst_change() {
    // Berlin springs forward on Sunday 2026-03-29 at 02:00 (01:00Z). A run
    // ending Sunday 03:30 CEST (01:30Z) wakes up 45 minutes earlier in
    // absolute time: 00:45Z, which is 01:45 CET on the wall clock.
    let c = compiled(
        &Schedule {
            timezone: "Europe/Berlin".into(),
            off_hours: vec![OffHourWindow {
                start: "22:00".into(),
                end: "03:30".into(),
                days_of_week: vec!["SAT".into(), "SUN".into()],
            }],
            calendars: Vec::new(),
        },
        &[],
    );
    let s = LeadSchedule::new(&c, TimeDelta::minutes(45));
    let saturday_night = at("2026-03-28T23:00:00Z");
    assert_eq!(
        s.window_end(saturday_night),
        Some(at("2026-03-29T01:30:00Z"))
    );
    let wake = s.next_transition(saturday_night).unwrap();
    assert_eq!(wake.at, at("2026-03-29T00:45:00Z"));
    assert_eq!(wake.to, ScheduleState::Awake);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// L1 against the brute-force oracle of R1–R5: off at t with a lead iff
    /// the schedule is off at every minute of [t, t + lead].
    #[test]
    fn the_lead_schedule_matches_the_oracle(
        case in case(),
        lead in 0i64..240,
        offsets in prop::collection::vec(0i64..(RANGE_DAYS * 1440), 6),
    ) {
        let compiled = case.compile();
        let oracle = Oracle { case: &case, tz: case.zone.parse().unwrap() };
        let s = LeadSchedule::new(&compiled, TimeDelta::minutes(lead));
        for off in offsets {
            let t = case.anchor + TimeDelta::minutes(off);
            let expected = (0..=lead).all(|m| oracle.f(t + TimeDelta::minutes(m)));
            prop_assert_eq!(s.state_at(t), state(expected), "at {} with lead {}m", t, lead);
        }
    }

    /// Transitions of the lead schedule are exactly where its state flips.
    #[test]
    fn lead_transitions_are_exactly_where_the_state_flips(
        case in case(),
        lead in 1i64..600,
        start in 0i64..(RANGE_DAYS * 1440),
        probes in prop::collection::vec(1u32..1000, 3),
    ) {
        let compiled = case.compile();
        let s = LeadSchedule::new(&compiled, TimeDelta::minutes(lead));
        let from = case.anchor + TimeDelta::minutes(start) + TimeDelta::seconds(17);
        let mut previous_at = from;
        let mut previous_state = s.state_at(from);
        for transition in s.transitions(from).take(10) {
            prop_assert!(transition.at > previous_at);
            prop_assert_ne!(transition.to, previous_state);
            prop_assert_eq!(s.state_at(transition.at), transition.to);
            prop_assert_eq!(s.state_at(transition.at - TimeDelta::nanoseconds(1)), previous_state);
            let gap = transition.at - previous_at;
            for p in &probes {
                let t = previous_at + gap * (*p as i32) / 1000;
                if t > previous_at && t < transition.at {
                    prop_assert_eq!(s.state_at(t), previous_state);
                }
            }
            // Only wake-ups move: every hibernation is one of the schedule's.
            if transition.to == ScheduleState::Hibernated {
                prop_assert_eq!(compiled.state_at(transition.at), ScheduleState::Hibernated);
                prop_assert_eq!(compiled.state_at(transition.at - TimeDelta::nanoseconds(1)), ScheduleState::Awake);
            }
            previous_at = transition.at;
            previous_state = transition.to;
        }
    }
}

fn target(name: &str, kind: &str) -> Target {
    Target {
        name: name.into(),
        kind: kind.into(),
        connector_ref: Some(ConnectorRef::new(ConnectorKind::CloudProvider, "aws")),
        ..Target::default()
    }
}

fn plan_spec(
    kind: StrategyType,
    targets: Vec<Target>,
    max_lead: Option<&str>,
) -> HibernatePlanSpec {
    let mut spec = HibernatePlanSpec {
        schedule: weeknights("UTC", "20:00", "06:00"),
        execution: Default::default(),
        behavior: Default::default(),
        suspend: false,
        on_delete: Default::default(),
        wake_up: Some(WakeUp {
            ready_by: true,
            max_lead: max_lead.map(String::from),
        }),
        targets,
    };
    spec.execution.strategy.kind = kind;
    spec
}

fn learned(samples: &[(&str, &[u64])]) -> WakeUpStatus {
    WakeUpStatus {
        durations: samples
            .iter()
            .map(|(target, seconds)| TargetDurations {
                target: (*target).into(),
                seconds: seconds.to_vec(),
            })
            .collect(),
        ..WakeUpStatus::default()
    }
}

const MIN: u64 = 60;

#[test]
fn the_lead_follows_the_wake_up_strategy() {
    let targets = || {
        vec![
            target("db", "rds"),
            target("nodes", "eks"),
            target("apps", "ec2"),
        ]
    };
    let status = learned(&[
        ("db", &[10 * MIN]),
        ("nodes", &[6 * MIN]),
        ("apps", &[2 * MIN]),
    ]);
    let lead = |spec: &HibernatePlanSpec| wake_lead(spec, Some(&status)).lead.as_secs() / MIN;
    assert_eq!(
        lead(&plan_spec(StrategyType::Sequential, targets(), None)),
        18
    );
    assert_eq!(
        lead(&plan_spec(StrategyType::Parallel, targets(), None)),
        10
    );
    // DAG: shutdown apps -> nodes -> db; wake-up reverses it: db, then nodes, then apps.
    let mut dag = plan_spec(StrategyType::Dag, targets(), None);
    dag.execution.strategy.dependencies = vec![
        Dependency {
            from: "apps".into(),
            to: "nodes".into(),
        },
        Dependency {
            from: "nodes".into(),
            to: "db".into(),
        },
    ];
    assert_eq!(lead(&dag), 18);
    dag.execution.strategy.dependencies.pop();
    assert_eq!(
        lead(&dag),
        10,
        "db runs alongside the nodes -> apps chain (8m)"
    );
    // Staged: wake-up runs [apps, nodes] (parallel) after [db].
    let mut staged = plan_spec(StrategyType::Staged, targets(), None);
    staged.execution.strategy.stages = vec![
        Stage {
            name: "apps".into(),
            parallel: true,
            max_concurrency: None,
            targets: vec!["apps".into(), "nodes".into()],
        },
        Stage {
            name: "data".into(),
            parallel: false,
            max_concurrency: None,
            targets: vec!["db".into()],
        },
    ];
    assert_eq!(lead(&staged), 16);
    // Parallel with maxConcurrency 1 is sequential.
    let mut one = plan_spec(StrategyType::Parallel, targets(), None);
    one.execution.strategy.max_concurrency = Some(1);
    assert_eq!(lead(&one), 18);
}

#[test]
fn the_lead_uses_a_high_percentile_of_recent_wake_ups() {
    let spec = plan_spec(
        StrategyType::Sequential,
        vec![target("db", "rds")],
        Some("2h"),
    );
    // Nine quick wake-ups and one slow one: p90 of 10 samples is the 9th smallest.
    let mut samples = vec![5 * MIN; 9];
    samples.push(40 * MIN);
    let lead = wake_lead(&spec, Some(&learned(&[("db", &samples)])));
    assert_eq!(lead.lead, Duration::from_secs(5 * MIN));
    assert_eq!(lead.source, LeadSource::History);
    // Two slow ones out of ten: the percentile sees them.
    samples[0] = 30 * MIN;
    let lead = wake_lead(&spec, Some(&learned(&[("db", &samples)])));
    assert_eq!(lead.lead, Duration::from_secs(30 * MIN));
    // Samples beyond MAX_WAKE_SAMPLES are ignored (bounded history).
    let mut many = vec![MIN; MAX_WAKE_SAMPLES];
    many.extend([50 * MIN; 5]);
    let lead = wake_lead(&spec, Some(&learned(&[("db", &many)])));
    assert_eq!(lead.lead, Duration::from_secs(MIN));
}

#[test]
fn targets_without_history_use_the_executor_default_and_max_lead_caps() {
    let spec = plan_spec(
        StrategyType::Sequential,
        vec![target("db", "rds"), target("web", "ec2")],
        Some("45m"),
    );
    let lead = wake_lead(&spec, Some(&learned(&[("web", &[3 * MIN])])));
    assert_eq!(lead.source, LeadSource::Defaults);
    assert_eq!(
        lead.lead,
        default_wakeup_duration("rds") + Duration::from_secs(3 * MIN)
    );
    assert_eq!(lead.targets[0].samples, 0);
    let lead = wake_lead(
        &spec,
        Some(&learned(&[("db", &[50 * MIN]), ("web", &[3 * MIN])])),
    );
    assert_eq!(lead.source, LeadSource::MaxLead);
    assert_eq!(lead.lead, Duration::from_secs(45 * MIN));
    assert_eq!(lead.expected, Duration::from_secs(53 * MIN));
    // Without maxLead the cap is the documented default (1h).
    let spec = plan_spec(StrategyType::Sequential, vec![target("db", "rds")], None);
    let lead = wake_lead(&spec, Some(&learned(&[("db", &[3 * 3600])])));
    assert_eq!(lead.lead, crate::types::DEFAULT_MAX_LEAD);
}

#[test]
fn without_ready_by_there_is_no_lead() {
    let mut spec = plan_spec(StrategyType::Sequential, vec![target("db", "rds")], None);
    spec.wake_up = None;
    assert_eq!(wake_lead(&spec, None), WakeLead::none());
    spec.wake_up = Some(WakeUp {
        ready_by: false,
        max_lead: Some("30m".into()),
    });
    assert_eq!(wake_lead(&spec, None).lead, Duration::ZERO);
}

#[test]
fn percentile_is_nearest_rank() {
    assert_eq!(percentile(&[], 0.9), None);
    assert_eq!(percentile(&[7], 0.9), Some(7));
    assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), Some(9));
    assert_eq!(percentile(&[10, 1, 5], 0.9), Some(10));
    assert_eq!(percentile(&[10, 1, 5], 0.5), Some(5));
}

#[test]
fn max_lead_is_checked_naming_the_field() {
    let check = |ready_by: bool, max: &str| {
        let mut spec = plan_spec(
            StrategyType::Sequential,
            vec![target("db", "rds")],
            Some(max),
        );
        if let Some(w) = spec.wake_up.as_mut() {
            w.ready_by = ready_by;
        }
        let mut d = Diagnostics::new();
        check_wake_up(&spec, &mut d);
        d
    };
    let d = check(true, "soon");
    assert_eq!(d.errors[0].field, "spec.wakeUp.maxLead");
    assert!(
        d.errors[0].message.contains("soon"),
        "{}",
        d.errors[0].message
    );
    assert!(check(true, "0s").errors[0].message.contains("positive"));
    assert!(check(true, "25h").errors[0].message.contains("24h"));
    assert!(check(true, "45m").is_valid());
    let d = check(false, "45m");
    assert!(d.is_valid());
    assert!(d.warnings[0].message.contains("readyBy"));
}
