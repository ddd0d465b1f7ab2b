//! Finding instances: server-side filters, id chunking and the paginated
//! `DescribeInstances` calls of the `ec2` executor.
//!
//! Selection is pushed to EC2 as far as its filters allow (`tag:Key` for
//! exact tags, `matchTags` and `In`; `tag-key` for `Exists`;
//! `instance-state-name` to skip terminated instances); `NotIn` and
//! `DoesNotExist` have no EC2 filter and are applied client-side, where the
//! full selector is re-checked anyway for correctness.
//!
//! Instance ids are queried with the `instance-id` *filter* rather than the
//! `InstanceIds` request field: the field fails the whole call with
//! `InvalidInstanceID.NotFound` when a single id no longer exists and cannot
//! be combined with `MaxResults`, while the filter simply omits unknown ids
//! and paginates like every other query.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use hibernator_core::executor::ExecutorError;

use crate::aws::error::classify;
use crate::ec2::Selector;
use crate::selector::Operator;

/// Page size requested from `DescribeInstances` (the API maximum).
pub const DESCRIBE_PAGE_SIZE: i32 = 1000;
/// Most instance ids per `StopInstances` / `StartInstances` call.
pub const MUTATE_BATCH: usize = 1000;
/// Most instance ids per `instance-id` filter. EC2 accepts at most 200
/// filter values per call; the rest is left for the `instance-state-name`
/// filter (5 values).
pub const ID_FILTER_BATCH: usize = 195;

/// Every state except `terminated`: instances a shutdown may look at.
pub const LIVE_STATES: [InstanceStateName; 5] = [
    InstanceStateName::Pending,
    InstanceStateName::Running,
    InstanceStateName::ShuttingDown,
    InstanceStateName::Stopping,
    InstanceStateName::Stopped,
];

/// What the executor needs to know about one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Instance id.
    pub id: String,
    /// Current state (`InstanceStateName::Unknown` when EC2 did not say).
    pub state: InstanceStateName,
    /// Instance type, e.g. `t3.micro`.
    pub instance_type: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Whether the instance was launched with hibernation enabled.
    pub hibernation_configured: bool,
}

impl InstanceInfo {
    /// Extracts the fields of an SDK instance; `None` without an id.
    pub fn from_sdk(instance: &Instance) -> Option<Self> {
        let id = instance.instance_id()?.to_string();
        let state = instance
            .state()
            .and_then(|s| s.name())
            .cloned()
            .unwrap_or_else(|| InstanceStateName::from("unknown"));
        let tags = instance
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect();
        Some(Self {
            id,
            state,
            instance_type: instance.instance_type().map(|t| t.as_str().to_string()),
            tags,
            hibernation_configured: instance
                .hibernation_options()
                .and_then(|h| h.configured())
                .unwrap_or(false),
        })
    }

    /// Whether the instance is awake (`running`, or `pending` on its way there).
    pub fn is_awake(&self) -> bool {
        matches!(
            self.state,
            InstanceStateName::Running | InstanceStateName::Pending
        )
    }
}

fn filter(name: impl Into<String>, values: Vec<String>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values))
        .build()
}

/// The `instance-state-name` filter for `states`.
pub fn state_filter(states: &[InstanceStateName]) -> Filter {
    filter(
        "instance-state-name",
        states.iter().map(|s| s.as_str().to_string()).collect(),
    )
}

/// The `instance-id` filter for `ids`.
pub fn id_filter(ids: &[String]) -> Filter {
    filter("instance-id", ids.to_vec())
}

/// Server-side tag filters narrowing the tag-based selectors. The result may
/// select more than the selector (never less); callers re-check every
/// instance with [`crate::ec2::Parameters::selects`]. Empty for `instanceIds`.
///
/// Each filter name appears once (EC2 ANDs different filters and ORs the
/// values of one): a second requirement on the same key, a second `Exists`,
/// and `NotIn`/`DoesNotExist` are left to the client-side check.
pub fn tag_filters(selector: &Selector) -> Vec<Filter> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(tags) = &selector.tags {
        for (key, value) in tags {
            by_name
                .entry(format!("tag:{key}"))
                .or_insert_with(|| vec![value.clone()]);
        }
    } else if let Some(ts) = &selector.tag_selector {
        for (key, value) in &ts.match_tags {
            by_name
                .entry(format!("tag:{key}"))
                .or_insert_with(|| vec![value.clone()]);
        }
        for req in &ts.match_expressions {
            match req.operator {
                Operator::In => {
                    by_name
                        .entry(format!("tag:{}", req.key))
                        .or_insert_with(|| req.values.clone());
                }
                Operator::Exists => {
                    if !by_name.contains_key(&format!("tag:{}", req.key)) {
                        by_name
                            .entry("tag-key".to_string())
                            .or_insert_with(|| vec![req.key.clone()]);
                    }
                }
                Operator::NotIn | Operator::DoesNotExist => {}
            }
        }
    }
    by_name
        .into_iter()
        .map(|(name, values)| filter(name, values))
        .collect()
}

/// The filter sets of the `DescribeInstances` queries that find the
/// candidates of `selector` among instances in `states`: one query for tag
/// selectors, one per [`ID_FILTER_BATCH`] ids for `instanceIds`.
pub fn selector_queries(selector: &Selector, states: &[InstanceStateName]) -> Vec<Vec<Filter>> {
    match &selector.instance_ids {
        Some(ids) => id_queries(ids, states),
        None => {
            let mut filters = tag_filters(selector);
            filters.push(state_filter(states));
            vec![filters]
        }
    }
}

/// One filter set per [`ID_FILTER_BATCH`] ids, each with the state filter
/// unless `states` is empty (then every state, terminated included).
pub fn id_queries(ids: &[String], states: &[InstanceStateName]) -> Vec<Vec<Filter>> {
    ids.chunks(ID_FILTER_BATCH)
        .map(|chunk| {
            let mut filters = vec![id_filter(chunk)];
            if !states.is_empty() {
                filters.push(state_filter(states));
            }
            filters
        })
        .collect()
}

/// Instances gathered from `DescribeInstances` pages, each instance once in
/// first-seen order (a paginated listing may repeat an instance that
/// changed while it was being listed, and id queries may overlap).
#[derive(Debug, Default)]
pub struct InstanceSet {
    seen: BTreeSet<String>,
    instances: Vec<InstanceInfo>,
}

impl InstanceSet {
    /// Adds every instance of every reservation of one page.
    pub fn add_page(&mut self, page: &DescribeInstancesOutput) {
        for reservation in page.reservations() {
            for info in reservation
                .instances()
                .iter()
                .filter_map(InstanceInfo::from_sdk)
            {
                if self.seen.insert(info.id.clone()) {
                    self.instances.push(info);
                }
            }
        }
    }

    /// The instances gathered so far.
    pub fn into_vec(self) -> Vec<InstanceInfo> {
        self.instances
    }
}

/// Runs one paginated `DescribeInstances` query (pages of
/// [`DESCRIBE_PAGE_SIZE`]) and adds every instance it lists to `set`.
/// Returns the number of pages read.
pub async fn describe_into(
    client: &Client,
    filters: Vec<Filter>,
    set: &mut InstanceSet,
) -> Result<usize, ExecutorError> {
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(DESCRIBE_PAGE_SIZE)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify(&e, "ec2:DescribeInstances"))?;
        set.add_page(&page);
        count += 1;
    }
    Ok(count)
}

/// Runs every query of `queries` and returns their instances, each once.
pub async fn describe_all(
    client: &Client,
    queries: Vec<Vec<Filter>>,
) -> Result<Vec<InstanceInfo>, ExecutorError> {
    let mut set = InstanceSet::default();
    for filters in queries {
        describe_into(client, filters, &mut set).await?;
    }
    Ok(set.into_vec())
}

/// The current state of each of `ids` that still exists (terminated
/// instances included while EC2 still lists them).
pub async fn states_of(
    client: &Client,
    ids: &[String],
) -> Result<BTreeMap<String, InstanceInfo>, ExecutorError> {
    Ok(describe_all(client, id_queries(ids, &[]))
        .await?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect())
}
