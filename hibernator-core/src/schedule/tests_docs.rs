//! Keeps `docs/schedules.md` honest: every YAML example parses and compiles, and
//! every `<!-- expect: ... -->` comment before a block holds.

use chrono::{DateTime, Utc};

use super::{CompiledSchedule, ScheduleState};
use crate::input::PlanDocuments;

struct Expect {
    at: DateTime<Utc>,
    state: ScheduleState,
    next: Option<DateTime<Utc>>,
}

fn parse_expect(line: &str) -> Expect {
    let body = line
        .trim()
        .trim_start_matches("<!-- expect:")
        .trim_end_matches("-->");
    let mut at = None;
    let mut state = None;
    let mut next = None;
    for part in body.split_whitespace() {
        let (key, value) = part
            .split_once('=')
            .unwrap_or_else(|| panic!("bad expect part {part:?}"));
        match key {
            "at" => {
                at = Some(
                    DateTime::parse_from_rfc3339(value)
                        .unwrap()
                        .with_timezone(&Utc),
                )
            }
            "state" => {
                state =
                    Some(serde_json::from_value(serde_json::Value::String(value.into())).unwrap())
            }
            "next" => {
                next = (value != "none").then(|| {
                    DateTime::parse_from_rfc3339(value)
                        .unwrap()
                        .with_timezone(&Utc)
                })
            }
            other => panic!("unknown expect key {other:?}"),
        }
    }
    Expect {
        at: at.expect("expect needs at="),
        state: state.expect("expect needs state="),
        next,
    }
}

/// Every ```yaml block of the page with the expectations written right before it.
fn blocks(text: &str) -> Vec<(String, Vec<Expect>)> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(block) = current.as_mut() {
            if line.trim_start().starts_with("```") {
                out.push((std::mem::take(block), std::mem::take(&mut pending)));
                current = None;
            } else {
                block.push_str(line);
                block.push('\n');
            }
        } else if line.trim_start().starts_with("<!-- expect:") {
            pending.push(parse_expect(line));
        } else if line.trim_start() == "```yaml" {
            current = Some(String::new());
        }
    }
    assert!(current.is_none(), "unterminated ```yaml block");
    assert!(
        pending.is_empty(),
        "expect comment without a following ```yaml block"
    );
    out
}

#[test]
fn every_docs_example_compiles_and_behaves_as_documented() {
    check_page("schedules.md", 6);
}

#[test]
fn every_calendar_example_behaves_as_documented() {
    check_page("calendars.md", 3);
}

/// Checks the ```yaml blocks of `docs/<page>` (at least `min` expectations).
/// Calendars are resolved from the block's own documents, as of a fixed day.
fn check_page(page: &str, min: usize) {
    let path = format!("{}/../docs/{page}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let blocks = blocks(&text);
    assert!(
        blocks.len() >= min,
        "expected the examples of docs/{page}, found {}",
        blocks.len()
    );
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let mut checked = 0;
    for (i, (yaml, expects)) in blocks.iter().enumerate() {
        let Ok(docs) = PlanDocuments::from_yaml(yaml) else {
            // a block without a plan (e.g. a HolidayCalendar alone) must still parse as YAML
            assert!(
                yaml_serde::Deserializer::from_str(yaml).count() > 0,
                "docs/{page} block {i} is not YAML"
            );
            assert!(
                expects.is_empty(),
                "docs/{page} block {i}: expectations need a plan"
            );
            continue;
        };
        let (compiled, problems): (CompiledSchedule, _) = docs
            .compile_schedule(today)
            .unwrap_or_else(|e| panic!("docs/{page} block {i}: {e}"));
        assert!(problems.is_empty(), "docs/{page} block {i}: {problems:?}");
        for expect in expects {
            assert_eq!(
                compiled.state_at(expect.at),
                expect.state,
                "block {i} at {}",
                expect.at
            );
            let next = compiled.next_transition(expect.at).map(|t| t.at);
            assert_eq!(
                next, expect.next,
                "block {i}: next transition after {}",
                expect.at
            );
            checked += 1;
        }
    }
    assert!(checked >= min, "only {checked} expectations in docs/{page}");
}
