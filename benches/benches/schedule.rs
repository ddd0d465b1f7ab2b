//! Schedule engine benchmarks: `next_transition` and `state_at` on a plan with
//! 10 windows and 50 exceptions (replace, extend and suspend with and without
//! `leadTime`) whose validity ranges surround the query times.
//!
//! With 3 holiday calendars of 50 days each (two off, one awake) added to the
//! same plan: the goal is to stay within 2× of the plan without them.
//!
//! Target: `next_transition` ≤ 20 µs per call.

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use hibernator_core::calendar::CalendarDays;
use hibernator_core::schedule::CompiledSchedule;
use hibernator_core::types::{
    CalendarEffect, ExceptionType, ObjectRef, OffHourWindow, Schedule, ScheduleException,
    ScheduleExceptionSpec,
};

const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

fn window(start_min: u32, end_min: u32, first_day: usize, count: usize) -> OffHourWindow {
    let fmt = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    OffHourWindow {
        start: fmt(start_min % 1440),
        end: if end_min == 1440 {
            "24:00".into()
        } else {
            fmt(end_min % 1440)
        },
        days_of_week: (0..count)
            .map(|i| DAYS[(first_day + i) % 7].to_string())
            .collect(),
    }
}

fn base_windows() -> Vec<OffHourWindow> {
    let mut windows = vec![window(20 * 60, 6 * 60, 0, 5), window(0, 1440, 5, 2)];
    for i in 0..8u32 {
        let start = (9 * 60 + i * 97) % 1440;
        windows.push(window(
            start,
            (start + 45 + i * 20) % 1440,
            i as usize,
            2 + (i as usize % 4),
        ));
    }
    windows
}

fn exceptions(anchor: DateTime<Utc>) -> Vec<ScheduleException> {
    (0..50u32)
        .map(|i| {
            let kind = match i % 3 {
                0 => ExceptionType::Extend,
                1 => ExceptionType::Suspend,
                _ => ExceptionType::Replace,
            };
            let from = anchor + Duration::hours(i64::from(i) * 7 - 170);
            let until = from + Duration::hours(24 + i64::from(i % 7) * 30);
            let start = (i * 131) % 1440;
            ScheduleException::new(
                &format!("exception-{i}"),
                ScheduleExceptionSpec {
                    plan_ref: ObjectRef {
                        name: "bench".into(),
                        namespace: None,
                    },
                    valid_from: from,
                    valid_until: until,
                    kind,
                    lead_time: (kind == ExceptionType::Suspend && i % 2 == 1)
                        .then(|| "1h".to_string()),
                    windows: vec![window(
                        start,
                        (start + 90) % 1440,
                        i as usize % 7,
                        1 + i as usize % 3,
                    )],
                },
            )
        })
        .collect()
}

/// Three calendars of 50 days each around `anchor`: runs of one to four days
/// every week or so, the third one `awake`.
fn calendars(anchor: DateTime<Utc>) -> Vec<CalendarDays> {
    let first = anchor.date_naive() - Duration::days(120);
    (0..3i64)
        .map(|c| {
            let mut days = std::collections::BTreeMap::new();
            let mut day = first + Duration::days(c * 3);
            while days.len() < 50 {
                for extra in 0..(1 + (days.len() as i64 + c) % 4) {
                    days.insert(
                        day + Duration::days(extra),
                        format!("holiday {}", days.len()),
                    );
                }
                day += Duration::days(5 + c * 2);
            }
            CalendarDays {
                id: format!("bench/calendar-{c}"),
                effect: if c == 2 {
                    CalendarEffect::Awake
                } else {
                    CalendarEffect::Hibernate
                },
                days: std::sync::Arc::new(days),
                coverage: None,
            }
        })
        .collect()
}

fn bench_schedule(c: &mut Criterion) {
    let anchor: DateTime<Utc> = "2026-03-26T09:00:00Z".parse().expect("anchor");
    let schedule = Schedule {
        timezone: "Europe/Berlin".into(),
        off_hours: base_windows(),
        calendars: Vec::new(),
    };
    let compiled = CompiledSchedule::compile(&schedule, &exceptions(anchor)).expect("compiles");
    // Query instants spread over two weeks around the exceptions, across a DST change.
    let queries: Vec<DateTime<Utc>> = (0..64)
        .map(|i| anchor + Duration::minutes(i * 317 - 3000))
        .collect();

    let mut group = c.benchmark_group("schedule");
    group.bench_function("next_transition/10w+50x", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(compiled.next_transition(black_box(queries[i])))
        })
    });
    group.bench_function("state_at/10w+50x", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(compiled.state_at(black_box(queries[i])))
        })
    });
    let calendar_days = calendars(anchor);
    let with_calendars = CompiledSchedule::compile_with_calendars(
        &Schedule {
            calendars: (0..3)
                .map(|i| ObjectRef {
                    name: format!("calendar-{i}"),
                    namespace: None,
                })
                .collect(),
            ..schedule.clone()
        },
        &exceptions(anchor),
        &calendar_days,
    )
    .expect("compiles");
    group.bench_function("next_transition/10w+50x+3cal", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(with_calendars.next_transition(black_box(queries[i])))
        })
    });
    group.bench_function("state_at/10w+50x+3cal", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(with_calendars.state_at(black_box(queries[i])))
        })
    });
    let plain = CompiledSchedule::compile(&schedule, &[]).expect("compiles");
    group.bench_function("next_transition/10w", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(plain.next_transition(black_box(queries[i])))
        })
    });
    group.bench_function("compile/10w+50x", |b| {
        let exceptions = exceptions(anchor);
        b.iter(|| {
            black_box(CompiledSchedule::compile(
                black_box(&schedule),
                black_box(&exceptions),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_schedule);
criterion_main!(benches);
