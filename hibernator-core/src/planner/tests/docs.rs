//! Keeps `docs/strategies.md` honest: every YAML example is built for both
//! operations and its stated waves (or rejection) are checked.

use crate::input::PlanDocuments;
use crate::planner::{ExecutionPlan, check_execution};
use crate::types::Operation;

/// `(yaml, annotation)` for every fenced yaml block and the HTML comment after it.
fn examples(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```yaml\n") {
        let body = &rest[start + 8..];
        let end = body.find("\n```").unwrap();
        let yaml = body[..end].to_string();
        let after = body[end + 4..].trim_start();
        let annotation = after
            .strip_prefix("<!--")
            .and_then(|a| a.split_once("-->"))
            .map(|(inner, _)| inner.trim().to_string())
            .unwrap_or_else(|| panic!("yaml block without annotation:\n{yaml}"));
        out.push((yaml, annotation));
        rest = &body[end + 4..];
    }
    out
}

#[test]
fn strategies_doc_examples_produce_the_stated_waves() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/strategies.md");
    let text = std::fs::read_to_string(path).unwrap();
    let examples = examples(&text);
    assert!(examples.len() >= 5, "expected an example per strategy");
    let (mut waves_checked, mut rejections_checked) = (0, 0);
    for (yaml, annotation) in examples {
        let docs = PlanDocuments::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let spec = &docs.plan.spec;
        if let Some(expected) = annotation.strip_prefix("rejects:") {
            let errors: Vec<String> = check_execution(spec)
                .errors
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(errors, vec![expected.trim().to_string()], "{yaml}");
            assert!(ExecutionPlan::build(spec, Operation::Shutdown).is_err());
            rejections_checked += 1;
            continue;
        }
        let rest = annotation
            .strip_prefix("waves shutdown:")
            .unwrap_or_else(|| panic!("bad annotation {annotation:?}"));
        let (down, up) = rest.split_once("wakeup:").unwrap();
        for (operation, expected) in [(Operation::Shutdown, down), (Operation::Wakeup, up)] {
            let expected: Vec<Vec<String>> = yaml_serde::from_str(expected.trim()).unwrap();
            let plan =
                ExecutionPlan::build(spec, operation).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            assert_eq!(plan.waves(), expected, "{operation} waves of\n{yaml}");
        }
        waves_checked += 1;
    }
    assert!(waves_checked >= 4 && rejections_checked >= 1);
}
