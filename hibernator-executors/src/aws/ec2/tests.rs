use std::collections::BTreeMap;

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{
    Filter, HibernationOptions, Instance, InstanceState, InstanceStateName, InstanceType,
    Reservation, Tag,
};
use hibernator_core::executor::ExecutionContext;
use hibernator_core::types::Operation;
use serde_json::json;

use super::describe::{
    ID_FILTER_BATCH, InstanceInfo, InstanceSet, LIVE_STATES, id_queries, selector_queries,
    tag_filters,
};
use super::*;
use crate::ec2::{ASG_TAG, KARPENTER_TAG, Selector};

fn params(v: serde_json::Value) -> Parameters {
    serde_json::from_value(v).unwrap()
}

fn names_and_values(filters: &[Filter]) -> Vec<(String, Vec<String>)> {
    filters
        .iter()
        .map(|f| (f.name().unwrap().to_string(), f.values().to_vec()))
        .collect()
}

fn pair(name: &str, values: &[&str]) -> (String, Vec<String>) {
    (
        name.to_string(),
        values.iter().map(|v| v.to_string()).collect(),
    )
}

fn instance(id: &str, state: InstanceStateName, tags: &[(&str, &str)]) -> Instance {
    Instance::builder()
        .instance_id(id)
        .state(InstanceState::builder().name(state).build())
        .instance_type(InstanceType::T3Micro)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

fn page(instances: Vec<Instance>) -> DescribeInstancesOutput {
    DescribeInstancesOutput::builder()
        .reservations(
            Reservation::builder()
                .set_instances(Some(instances))
                .build(),
        )
        .build()
}

fn info(id: &str, state: InstanceStateName, tags: &[(&str, &str)]) -> InstanceInfo {
    InstanceInfo::from_sdk(&instance(id, state, tags)).unwrap()
}

fn ctx() -> ExecutionContext {
    ExecutionContext::builder("p", "t", "c1", Operation::Shutdown).build()
}

#[test]
fn exact_tags_become_tag_filters() {
    let p = params(json!({"selector": {"tags": {"env": "dev", "team": "web"}}}));
    assert_eq!(
        names_and_values(&tag_filters(&p.selector)),
        [pair("tag:env", &["dev"]), pair("tag:team", &["web"])]
    );
}

#[test]
fn tag_selector_pushes_in_and_exists_but_not_negations() {
    let p = params(json!({"selector": {"tagSelector": {
    "matchTags": {"env": "dev"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["web", "api"]},
        {"key": "owner", "operator": "Exists"},
        {"key": "cost", "operator": "Exists"},
        {"key": "env", "operator": "In", "values": ["dev", "qa"]},
        {"key": "team", "operator": "NotIn", "values": ["core"]},
        {"key": "keep", "operator": "DoesNotExist"}
    ]}}}));
    assert_eq!(
        names_and_values(&tag_filters(&p.selector)),
        [
            pair("tag-key", &["owner"]),
            pair("tag:env", &["dev"]),
            pair("tag:tier", &["web", "api"]),
        ]
    );
    // Exists on a key that already has a value filter adds nothing.
    let p = params(json!({"selector": {"tagSelector": {
        "matchTags": {"env": "dev"},
        "matchExpressions": [{"key": "env", "operator": "Exists"}]}}}));
    assert_eq!(
        names_and_values(&tag_filters(&p.selector)),
        [pair("tag:env", &["dev"])]
    );
}

#[test]
fn tag_queries_are_one_call_with_the_state_filter() {
    let p = params(json!({"selector": {"tags": {"env": "dev"}}}));
    let queries = selector_queries(&p.selector, &LIVE_STATES);
    assert_eq!(queries.len(), 1);
    let filters = names_and_values(&queries[0]);
    assert_eq!(filters[0], pair("tag:env", &["dev"]));
    assert_eq!(
        filters[1],
        pair(
            "instance-state-name",
            &["pending", "running", "shutting-down", "stopping", "stopped"]
        )
    );
}

#[test]
fn id_lists_are_chunked_within_the_filter_value_limit() {
    let ids: Vec<String> = (0..500).map(|i| format!("i-{i:08x}")).collect();
    let queries = id_queries(&ids, &LIVE_STATES);
    assert_eq!(queries.len(), 500_usize.div_ceil(ID_FILTER_BATCH));
    let mut seen = Vec::new();
    for q in &queries {
        let total_values: usize = q.iter().map(|f| f.values().len()).sum();
        assert!(total_values <= 200, "{total_values} filter values");
        assert_eq!(q[0].name(), Some("instance-id"));
        seen.extend(q[0].values().iter().cloned());
    }
    assert_eq!(seen, ids);
    // Without states: only the id filter (terminated instances included).
    let queries = id_queries(&ids[..3], &[]);
    assert_eq!(
        names_and_values(&queries[0]),
        [pair(
            "instance-id",
            &["i-00000000", "i-00000001", "i-00000002"]
        )]
    );
    let p = params(json!({"selector": {"instanceIds": ["i-12345678"]}}));
    assert_eq!(selector_queries(&p.selector, &LIVE_STATES).len(), 1);
    assert!(tag_filters(&p.selector).is_empty());
    assert!(tag_filters(&Selector::default()).is_empty());
}

#[test]
fn pages_are_merged_without_duplicates() {
    let mut set = InstanceSet::default();
    set.add_page(&page(vec![
        instance("i-00000001", InstanceStateName::Running, &[("env", "dev")]),
        instance("i-00000002", InstanceStateName::Stopped, &[]),
    ]));
    set.add_page(&page(vec![
        instance("i-00000002", InstanceStateName::Stopped, &[]),
        instance("i-00000003", InstanceStateName::Pending, &[]),
        Instance::builder().build(),
    ]));
    set.add_page(&DescribeInstancesOutput::builder().build());
    let ids: Vec<_> = set.into_vec().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["i-00000001", "i-00000002", "i-00000003"]);
}

#[test]
fn instance_info_reads_the_sdk_shape() {
    let mut raw = instance("i-00000001", InstanceStateName::Pending, &[("env", "dev")]);
    raw.hibernation_options = Some(HibernationOptions::builder().configured(true).build());
    let i = InstanceInfo::from_sdk(&raw).unwrap();
    assert_eq!(i.state, InstanceStateName::Pending);
    assert!(i.is_awake());
    assert!(i.hibernation_configured);
    assert_eq!(i.instance_type.as_deref(), Some("t3.micro"));
    assert_eq!(
        i.tags,
        BTreeMap::from([("env".to_string(), "dev".to_string())])
    );
    assert!(!info("i-00000002", InstanceStateName::Stopping, &[]).is_awake());
}

#[test]
fn keys_round_trip() {
    assert_eq!(resource_key("i-0abc"), "instance/i-0abc");
    assert_eq!(instance_id_of("instance/i-0abc"), Some("i-0abc"));
    assert_eq!(instance_id_of("instance/"), None);
    assert_eq!(instance_id_of("db/x"), None);
}

#[test]
fn plan_records_awake_selected_unmanaged_instances() {
    let p = params(json!({"selector": {"tagSelector": {
        "matchTags": {"env": "dev"},
        "matchExpressions": [{"key": "keep", "operator": "DoesNotExist"}]}},
        "hibernate": true}));
    let mut capable = info("i-00000001", InstanceStateName::Running, &[("env", "dev")]);
    capable.hibernation_configured = true;
    let candidates = vec![
        capable,
        info("i-00000002", InstanceStateName::Pending, &[("env", "dev")]),
        info("i-00000003", InstanceStateName::Stopped, &[("env", "dev")]),
        info(
            "i-00000004",
            InstanceStateName::Running,
            &[("env", "dev"), ("keep", "1")],
        ),
        info(
            "i-00000005",
            InstanceStateName::Running,
            &[("env", "dev"), (ASG_TAG, "g")],
        ),
        info(
            "i-00000006",
            InstanceStateName::Running,
            &[("env", "dev"), (KARPENTER_TAG, "np")],
        ),
        info("i-00000007", InstanceStateName::Running, &[("env", "prod")]),
    ];
    let plan = plan_shutdown(&ctx(), &p, candidates).unwrap();
    assert_eq!(plan.hibernate, ["i-00000001"]);
    assert_eq!(plan.stop, ["i-00000002"]);
    assert_eq!(
        plan.outcome.resources,
        [
            "instance/i-00000001",
            "instance/i-00000002",
            "instance/i-00000003"
        ]
    );
    assert_eq!(
        plan.outcome.observations,
        BTreeMap::from([
            (
                "instance/i-00000001".to_string(),
                json!({"state": "running", "instanceType": "t3.micro", "hibernated": true})
            ),
            (
                "instance/i-00000002".to_string(),
                json!({"state": "pending", "instanceType": "t3.micro", "hibernated": false})
            ),
        ])
    );
}
