//! `--namespace-selector` (`controller.shard.namespaceSelector`): a
//! controller reconciles the plans of the namespaces whose labels match,
//! and only those. A namespace that gets the label joins at once (by
//! watch); one that loses it is left alone from then on.

use std::time::Duration;

use hibernator_core::types::{HibernatePlan, PlanPhase};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::support::*;

const LABEL: &str = "hibernator-test.dev/shard";

fn reconciles(harness: &Harness) -> u64 {
    let text = harness.ctx.metrics.encode().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("hibernator_reconcile_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Waits until the controller has reconciled more than `after` times.
async fn reconciled_since(harness: &Harness, after: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reconciles(harness) <= after {
        assert!(tokio::time::Instant::now() < deadline, "no reconcile");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn label_namespace(client: &kube::Client, ns: &str, value: Option<&str>) {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {LABEL: value}}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_selector_admits_exactly_the_selected_namespaces() {
    let cluster = cluster("ctl-shard").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    plans
        .create(&PostParams::default(), &plan("p", 1, "{type: Parallel}"))
        .await
        .unwrap();
    let morning = "2026-11-24T07:00:00Z".parse().unwrap();
    let mut harness = Harness::with(&cluster, morning, |config| {
        config.shard.namespace_selector = Some(format!("{LABEL}=yes"));
    });

    // The namespace is not selected: the plan is seen, and left alone.
    reconciled_since(&harness, 0).await;
    let untouched = plans.get("p").await.unwrap();
    assert!(untouched.status.is_none(), "{:#?}", untouched.status);
    assert!(
        untouched.metadata.finalizers.unwrap_or_default().is_empty(),
        "no finalizer on a plan outside the selection"
    );

    // Labelled: the namespace joins by watch, without any plan change.
    label_namespace(&client, &ns, Some("yes")).await;
    let active = wait_phase(&plans, "p", PlanPhase::Active, Duration::from_secs(30)).await;
    let generation = active.metadata.generation;
    assert_eq!(
        active.status.as_ref().and_then(|s| s.observed_generation),
        generation
    );

    // Unlabelled: a spec change is no longer this controller's business.
    // the namespace's leaving reaches the controller (its plans reconcile);
    // counted before the change, so a reconcile that comes at once counts
    let before = reconciles(&harness);
    label_namespace(&client, &ns, None).await;
    reconciled_since(&harness, before).await;
    let before = reconciles(&harness);
    plans
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"behavior": {"retries": 1}}})),
        )
        .await
        .unwrap();
    reconciled_since(&harness, before).await;
    let after = plans.get("p").await.unwrap();
    assert_ne!(after.metadata.generation, generation, "the spec changed");
    assert_eq!(
        after.status.as_ref().and_then(|s| s.observed_generation),
        generation,
        "not reconciled outside the selection"
    );
    harness.stop().await;
}
