//! Drift re-enforcement through the controller: while a plan is hibernated,
//! an enforce Job per target starts one interval after the shutdown (by the
//! manual clock, no sleeps) and its result is folded into status, Events and
//! metrics; the restore data stays as the shutdown wrote it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use hibernator_core::restore::{RestoreRecord, RestoreStore, update_record};
use hibernator_core::types::{EnforceResult, HibernatePlan, PlanPhase};
use hibernator_core::wellknown::{LABEL_OPERATION, LABEL_PLAN};
use hibernator_kube::ConfigMapRestoreStore;
use hibernator_reconcile::termination::TerminationMessage;
use hibernator_testkit::jobsim::{JobOutcome, JobRun, JobSimulator};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::support::*;

fn night() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T21:00:00Z".parse().unwrap()
}

/// Operations the runner saw, as `(operation, target, cycle id)`.
pub(crate) type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// Shutdown records `{"replicas": 3}`; wake-up clears it; enforce finds two
/// resources awake and reports them re-hibernated without touching the record.
pub(crate) fn runner(
    client: kube::Client,
    seen: Seen,
) -> impl Fn(JobRun) -> BoxFuture<'static, JobOutcome> + Send + Sync + 'static {
    move |run: JobRun| {
        let client = client.clone();
        let seen = seen.clone();
        Box::pin(async move {
            let get = |k: &str| run.env.get(k).cloned().unwrap_or_default();
            let (plan, target, op, cycle) = (
                get("HIBERNATOR_PLAN"),
                get("HIBERNATOR_TARGET"),
                get("HIBERNATOR_OPERATION"),
                get("HIBERNATOR_CYCLE_ID"),
            );
            seen.lock()
                .unwrap()
                .push((op.clone(), target.clone(), cycle.clone()));
            let store = ConfigMapRestoreStore::new(client, &run.namespace, &plan);
            let mut message = TerminationMessage {
                success: true,
                message: format!("{op} {target} done"),
                resources: 1,
                attempts: 1,
                rehibernated: None,
            };
            match op.as_str() {
                "shutdown" => {
                    update_record(&store, &target, "ec2", |record: &mut RestoreRecord| {
                        record.merge_shutdown(
                            &cycle,
                            [(
                                format!("instance/{target}"),
                                serde_json::json!({"replicas": 3}),
                            )],
                        );
                    })
                    .await
                    .unwrap();
                }
                "wakeup" => {
                    update_record(&store, &target, "ec2", |record: &mut RestoreRecord| {
                        let keys: Vec<String> = record.entries.keys().cloned().collect();
                        record.mark_restored(keys.iter().map(String::as_str));
                    })
                    .await
                    .unwrap();
                }
                "enforce" => {
                    let record = store.load(&target).await.unwrap().unwrap().value;
                    message.resources = u32::try_from(record.entries.len()).unwrap();
                    message.rehibernated = Some(2);
                }
                other => panic!("unexpected operation {other}"),
            }
            JobOutcome {
                exit_code: 0,
                message: message.to_json(),
            }
        })
    }
}

async fn wait_for(
    api: &Api<HibernatePlan>,
    name: &str,
    what: &str,
    done: impl Fn(&HibernatePlan) -> bool,
) -> HibernatePlan {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let plan = api.get(name).await.unwrap();
        if done(&plan) {
            return plan;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plan {name}: {what} did not happen: {:#?}",
            plan.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hibernated_plan_is_re_enforced_after_the_interval_and_counts_what_woke_up() {
    let cluster = cluster("ctl-enforce").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let seen = Seen::default();
    let _sim = JobSimulator::start(client.clone(), &ns, runner(client.clone(), seen.clone()));
    let plans: Api<HibernatePlan> = Api::namespaced(client.clone(), &ns);
    let mut drift = plan("drift", 2, "{type: Parallel}");
    drift.spec.behavior.enforce = Some(hibernator_core::types::Enforce {
        enabled: Some(true),
        interval: Some("30m".into()),
    });
    plans.create(&PostParams::default(), &drift).await.unwrap();
    let harness = Harness::new(&cluster, night());

    let hibernated = wait_phase(
        &plans,
        "drift",
        PlanPhase::Hibernated,
        Duration::from_secs(60),
    )
    .await;
    let enforcement = hibernated.status.unwrap().enforcement.unwrap();
    assert_eq!(
        enforcement.next_check_at,
        Some(night() + chrono::Duration::minutes(30)),
        "the first check one interval after the shutdown finished"
    );
    assert_eq!(enforcement.woke_up_count, 0);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let enforce_jobs = || async {
        jobs.list(
            &ListParams::default().labels(&format!("{LABEL_PLAN}=drift,{LABEL_OPERATION}=enforce")),
        )
        .await
        .unwrap()
        .items
    };
    assert!(
        enforce_jobs().await.is_empty(),
        "no check before the interval"
    );

    harness.set_time(night() + chrono::Duration::minutes(31));
    let plan = wait_for(&plans, "drift", "the check's results folded in", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.enforcement.as_ref())
            .is_some_and(|e| e.last_result.is_some() && e.pending_targets.is_empty())
    })
    .await;
    let status = plan.status.unwrap();
    assert_eq!(status.phase, PlanPhase::Hibernated);
    let enforcement = status.enforcement.unwrap();
    assert_eq!(enforcement.woke_up_count, 4, "two resources per target");
    assert_eq!(enforcement.last_result, Some(EnforceResult::ReHibernated));
    assert_eq!(
        enforcement.next_check_at,
        Some(night() + chrono::Duration::minutes(61))
    );
    let names: Vec<String> = enforce_jobs()
        .await
        .into_iter()
        .map(|j| j.metadata.name.unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let runs = seen.lock().unwrap().clone();
    let cycle = status.current_cycle_id.unwrap();
    let enforced: Vec<_> = runs.iter().filter(|(op, _, _)| op == "enforce").collect();
    assert_eq!(enforced.len(), 2);
    assert!(enforced.iter().all(|(_, _, c)| *c == cycle), "{runs:?}");
    // The restore data is as the shutdown wrote it.
    let entries = restore_entries(&client, &ns, "drift").await;
    assert_eq!(entries.values().sum::<usize>(), 2, "{entries:?}");
    // A Warning Event and the metrics.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let reenforced = wait_until_event(&events, "ReEnforced").await;
    assert_eq!(reenforced.type_.as_deref(), Some("Warning"));
    let text = harness.ctx.metrics.encode().unwrap();
    let key = format!("hibernator_reenforcements_total{{plan=\"{ns}/drift\",executor=\"ec2\"}} 4");
    assert!(text.contains(&key), "missing {key} in\n{text}");
}

async fn wait_until_event(events: &Api<Event>, reason: &str) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        if let Some(e) = list
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason))
        {
            return e;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {reason} Event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
