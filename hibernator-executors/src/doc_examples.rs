//! Checks that the built-in set's catalog is complete and that every example in
//! `docs/executors.md` passes validation without errors or warnings.

use hibernator_core::types::Target;

use crate::ExecutorSet;

fn catalog() -> hibernator_core::params::ParameterCatalog {
    ExecutorSet::new().catalog()
}

/// The user documentation of the executors: in the repository, outside this
/// package, so it is read when the test runs (not embedded: a packaged
/// crate holds only its own files).
fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/executors.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The contents of every fenced ```yaml block of `text`.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        match current.as_mut() {
            None if trimmed == "```yaml" => current = Some(String::new()),
            None => {}
            Some(_) if trimmed == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(
        current.is_none(),
        "unterminated yaml block in docs/executors.md"
    );
    blocks
}

#[test]
fn catalog_lists_the_five_executors() {
    let catalog = catalog();
    assert_eq!(
        catalog.types().collect::<Vec<_>>(),
        ["ec2", "eks", "karpenter", "rds", "workloadscaler"]
    );
    for t in ["ec2", "eks", "karpenter", "rds", "workloadscaler"] {
        let schema = serde_json::to_value(catalog.get(t).unwrap().schema()).unwrap();
        assert!(
            schema["properties"]["awaitCompletion"].is_object(),
            "{t}: {schema}"
        );
    }
}

#[test]
fn catalog_rejects_empty_parameters() {
    let catalog = catalog();
    for t in ["ec2", "eks", "karpenter", "rds", "workloadscaler"] {
        let d = catalog
            .get(t)
            .unwrap()
            .check(None, "spec.targets[0].parameters");
        assert!(!d.errors.is_empty(), "{t} accepted empty parameters");
    }
}

#[test]
fn every_doc_example_validates() {
    let blocks = yaml_blocks(&doc());
    let catalog = catalog();
    let mut seen: Vec<String> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let target: Target = yaml_serde::from_str(block)
            .unwrap_or_else(|e| panic!("yaml block {i} is not a target: {e}\n{block}"));
        let check = catalog
            .get(&target.kind)
            .unwrap_or_else(|| panic!("yaml block {i}: unknown type {}", target.kind));
        let d = check.check(target.parameters.as_ref(), "spec.targets[0].parameters");
        assert!(
            d.errors.is_empty(),
            "block {i} ({}): {:?}",
            target.kind,
            d.errors
        );
        assert!(
            d.warnings.is_empty(),
            "block {i} ({}): {:?}",
            target.kind,
            d.warnings
        );
        seen.push(target.kind);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["ec2", "eks", "karpenter", "rds", "workloadscaler"]);
}

#[test]
fn yaml_block_extraction() {
    let text = "a\n```yaml\nx: 1\n```\n```\nnot: yaml\n```\n```yaml\ny: 2\n```\n";
    assert_eq!(yaml_blocks(text), ["x: 1\n", "y: 2\n"]);
}
