//! The testkit Job simulator drives runner-like Jobs to Complete/Failed.

use std::time::Duration;

use futures::FutureExt;
use hibernator_testkit::jobsim::{JobOutcome, JobSimulator};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::json;

use super::cluster;

fn job(name: &str, mode: &str, deadline: Option<i64>) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": {"hibernator.dev/execution-id": format!("exec-{name}")}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "template": {
                "metadata": {"labels": {"hibernator.dev/plan": "p"}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "hibernator-runner",
                    "containers": [{
                        "name": "runner", "image": "hibernator:test", "args": ["runner"],
                        "env": [
                            {"name": "MODE", "value": mode},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                        "volumeMounts": [{"name": "stream-token", "mountPath": "/var/run/secrets/stream"}],
                    }],
                    "volumes": [{"name": "stream-token", "projected": {"sources": [
                        {"serviceAccountToken": {"audience": "hibernator-control-plane", "expirationSeconds": 600, "path": "token"}},
                    ]}}],
                },
            },
        },
    }))
    .unwrap()
}

fn condition(job: &Job, kind: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| c.reason.clone().unwrap_or_default())
}

#[tokio::test]
async fn jobs_run_to_complete_failed_and_deadline_exceeded() {
    let cluster = cluster("jobsim").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("hibernator-runner".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let review_client = client.clone();
    let sim = JobSimulator::start(client.clone(), &ns, move |run| {
        let client = review_client.clone();
        async move {
            // The token is a real projected token: reviewable, with the
            // Job's audience, bound to the simulated Pod.
            let token = std::fs::read_to_string(&run.token_path).unwrap();
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token),
                    audiences: Some(vec!["hibernator-control-plane".into()]),
                },
                ..Default::default()
            };
            let reviewed = Api::<TokenReview>::all(client)
                .create(&PostParams::default(), &review)
                .await
                .unwrap();
            let status = reviewed.status.unwrap();
            assert_eq!(status.authenticated, Some(true), "{status:?}");
            let extra = status.user.unwrap().extra.unwrap_or_default();
            let bound_pod = extra
                .get("authentication.kubernetes.io/pod-name")
                .cloned()
                .unwrap_or_default();
            assert_eq!(bound_pod, vec![run.env["POD_NAME"].clone()]);
            assert_eq!(run.args, vec!["runner".to_string()]);
            match run.env["MODE"].as_str() {
                "ok" => JobOutcome {
                    exit_code: 0,
                    message: r#"{"success":true}"#.into(),
                },
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    JobOutcome {
                        exit_code: 0,
                        message: String::new(),
                    }
                }
                _ => JobOutcome {
                    exit_code: 1,
                    message: r#"{"success":false}"#.into(),
                },
            }
        }
        .boxed()
    });
    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    for (name, mode, deadline) in [
        ("ok", "ok", None),
        ("bad", "bad", None),
        ("slow", "slow", Some(1)),
    ] {
        jobs.create(&PostParams::default(), &job(name, mode, deadline))
            .await
            .unwrap();
    }
    // A Job without the execution-id label is not ours.
    let mut foreign = job("foreign", "ok", None);
    foreign.metadata.labels = None;
    jobs.create(&PostParams::default(), &foreign).await.unwrap();

    assert_eq!(sim.wait_finished(3, Duration::from_secs(30)).await, 3);
    let ok = jobs.get("ok").await.unwrap();
    assert_eq!(
        condition(&ok, "Complete").as_deref(),
        Some("CompletionsReached")
    );
    assert!(condition(&ok, "SuccessCriteriaMet").is_some());
    let status = ok.status.unwrap();
    assert_eq!(status.succeeded, Some(1));
    assert!(status.start_time.is_some() && status.completion_time.is_some());

    let bad = jobs.get("bad").await.unwrap();
    assert_eq!(
        condition(&bad, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert!(condition(&bad, "FailureTarget").is_some());
    assert_eq!(bad.status.unwrap().failed, Some(1));

    let slow = jobs.get("slow").await.unwrap();
    assert_eq!(
        condition(&slow, "Failed").as_deref(),
        Some("DeadlineExceeded")
    );

    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    for (name, code, message) in [
        ("ok", 0, Some(r#"{"success":true}"#)),
        ("bad", 1, Some(r#"{"success":false}"#)),
    ] {
        let list = pods
            .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
            .await
            .unwrap();
        assert_eq!(list.items.len(), 1, "one pod per job");
        let pod = &list.items[0];
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["job-name"], name);
        assert_eq!(
            pod.metadata.owner_references.as_ref().unwrap()[0].name,
            name
        );
        let terminated = pod
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(terminated.exit_code, code);
        assert_eq!(terminated.message.as_deref(), message);
    }
    assert_eq!(sim.started().iter().filter(|n| *n == "foreign").count(), 0);
    let mut started = sim.started();
    started.sort();
    assert_eq!(started, ["bad", "ok", "slow"], "each job ran exactly once");
}

#[tokio::test]
async fn paused_simulator_holds_jobs_and_deleted_jobs_stop() {
    let cluster = cluster("jobsim-pause").await;
    let client = cluster.client();
    let ns = cluster.namespace().to_string();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("hibernator-runner".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let sim = JobSimulator::start(client.clone(), &ns, |run| {
        async move {
            if run.env["MODE"] == "slow" {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            JobOutcome {
                exit_code: 0,
                message: String::new(),
            }
        }
        .boxed()
    });
    let jobs = Api::<Job>::namespaced(client.clone(), &ns);
    sim.pause();
    jobs.create(&PostParams::default(), &job("held", "ok", None))
        .await
        .unwrap();
    jobs.create(&PostParams::default(), &job("doomed", "slow", None))
        .await
        .unwrap();
    // While paused nothing finishes.
    assert_eq!(sim.wait_finished(1, Duration::from_millis(500)).await, 0);
    assert!(condition(&jobs.get("held").await.unwrap(), "Complete").is_none());
    sim.resume();
    assert!(sim.wait_finished(1, Duration::from_secs(30)).await >= 1);
    assert!(condition(&jobs.get("held").await.unwrap(), "Complete").is_some());
    // Deleting the running Job stops its run.
    for _ in 0..100 {
        if sim.started().iter().any(|n| n == "doomed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    jobs.delete("doomed", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(sim.wait_finished(2, Duration::from_secs(30)).await, 2);
    let doomed = sim
        .finished()
        .into_iter()
        .find(|j| j.job_name == "doomed")
        .unwrap();
    assert_eq!(doomed.result, "Deleted");
}
