//! What real API servers do beyond storing what they are sent: defaulting,
//! `kube-root-ca.crt` and the `default` ServiceAccount in every namespace,
//! one store for both Event groups, zero values left out of responses.
//! Every test here also holds on a real cluster (background work is polled
//! for, never assumed to be synchronous). Garbage collection is in `gc`.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::WatchParams;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent};
use serde_json::{Value, json};

use hibernator_testkit::kube::TestCluster;

use crate::common::{deployment, eventually};

fn pod_template(app: &str, restart: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": image}]}
    })
}

#[tokio::test]
async fn built_in_kinds_are_defaulted() {
    let tc = TestCluster::start("defaults").await.unwrap();
    let client = tc.client();

    let cronjobs: Api<CronJob> = Api::default_namespaced(client.clone());
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "report"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
            "template": pod_template("report", "Never", "busybox:1.37")}}}
    }))
    .unwrap();
    let created = cronjobs.create(&PostParams::default(), &cj).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
    assert_eq!(spec.successful_jobs_history_limit, Some(3));
    assert_eq!(spec.failed_jobs_history_limit, Some(1));
    let pod = spec.job_template.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(pod.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let c = &pod.containers[0];
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    // Removing a defaulted field puts the default back; the spec did not
    // change, so neither does the generation.
    let patched = cronjobs
        .patch(
            "report",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": null}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().suspend, Some(false));
    assert_eq!(patched.metadata.generation, Some(1));

    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": pod_template("web", "Always", "nginx")}
    }))
    .unwrap();
    let spec = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let rolling = serde_json::to_value(strategy.rolling_update).unwrap();
    assert_eq!(rolling, json!({"maxSurge": "25%", "maxUnavailable": "25%"}));
    let c = &spec.template.spec.unwrap().containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"), "untagged");

    let statefulsets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": pod_template("db", "Always", "postgres:17")}
    }))
    .unwrap();
    let spec = statefulsets
        .create(&PostParams::default(), &sts)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("OrderedReady"));
    let update = spec.update_strategy.unwrap();
    assert_eq!(update.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(update.rolling_update.unwrap().partition, Some(0));
    let retention = spec.persistent_volume_claim_retention_policy.unwrap();
    assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));

    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "once"},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox:1.37"}]}}}
    }))
    .unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let uid = job.metadata.uid.clone().unwrap();
    let spec = job.spec.unwrap();
    assert_eq!(
        (spec.completions, spec.parallelism, spec.backoff_limit),
        (Some(1), Some(1), Some(6))
    );
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    assert_eq!(spec.suspend, Some(true), "set values are kept");
    let selector = spec.selector.unwrap().match_labels.unwrap();
    assert_eq!(selector["batch.kubernetes.io/controller-uid"], uid);
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(labels["batch.kubernetes.io/job-name"], "once");
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);

    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    let secret = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));

    let ns = Api::<Namespace>::all(client.clone())
        .get(tc.namespace())
        .await
        .unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        tc.namespace()
    );
    assert_eq!(ns.spec.unwrap().finalizers, Some(vec!["kubernetes".into()]));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn every_namespace_has_a_root_ca_and_a_default_service_account() {
    let tc = TestCluster::start("rootca").await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let get = |cms: &Api<ConfigMap>| {
        let cms = cms.clone();
        async move { cms.get_opt("kube-root-ca.crt").await.unwrap() }
    };
    let cm = eventually("kube-root-ca.crt", || get(&cms)).await;
    let ca = cm.data.clone().unwrap()["ca.crt"].clone();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let sas: Api<ServiceAccount> = Api::default_namespaced(tc.client());
    eventually("the default ServiceAccount", || {
        let sas = sas.clone();
        async move { sas.get_opt("default").await.unwrap() }
    })
    .await;

    // Deleted, it comes back; changed, its data is put back.
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    let back = eventually("kube-root-ca.crt recreated", || {
        let (get, old) = (get(&cms), cm.metadata.uid.clone());
        async move { get.await.filter(|c| c.metadata.uid != old) }
    })
    .await;
    assert_eq!(back.data.unwrap()["ca.crt"], ca);
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "tampered"}})),
    )
    .await
    .unwrap();
    eventually("kube-root-ca.crt repaired", || {
        let (get, ca) = (get(&cms), ca.clone());
        async move {
            get.await
                .filter(|c| c.data.as_ref().unwrap()["ca.crt"] == ca)
        }
    })
    .await;

    if let Some(server) = tc.api_server() {
        // The namespaces a server starts with have them too.
        for ns in ["default", "kube-system"] {
            let cms: Api<ConfigMap> = Api::namespaced(server.client(), ns);
            assert!(cms.get_opt("kube-root-ca.crt").await.unwrap().is_some());
            let sas: Api<ServiceAccount> = Api::namespaced(server.client(), ns);
            assert!(sas.get_opt("default").await.unwrap().is_some());
        }
    }
    tc.cleanup().await.unwrap();
}

fn names<T: kube::Resource>(items: &[T]) -> Vec<String> {
    let mut names: Vec<String> = items.iter().filter_map(|o| o.meta().name.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn events_are_one_store_for_both_groups() {
    let tc = TestCluster::start("evstore").await.unwrap();
    let ns = tc.namespace().to_string();
    let core: Api<Event> = Api::default_namespaced(tc.client());
    let v1: Api<EventV1> = Api::default_namespaced(tc.client());
    let subject =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "subject", "namespace": ns});
    let core_event = |name: &str| -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": name}, "involvedObject": subject,
            "reason": "Hibernated", "message": "asleep", "type": "Normal", "count": 2,
            "source": {"component": "hibernator"},
            "firstTimestamp": "2026-11-22T03:00:00Z", "lastTimestamp": "2026-11-22T03:05:00Z"
        }))
        .unwrap()
    };
    let v1_event = |name: &str| -> EventV1 {
        serde_json::from_value(json!({
            "metadata": {"name": name}, "regarding": subject,
            "eventTime": "2026-11-22T04:00:00.000000Z",
            "reportingController": "hibernator.dev/controller", "reportingInstance": "hibernator-0",
            "action": "WakeUp", "reason": "WokeUp", "type": "Warning", "note": "awake"
        }))
        .unwrap()
    };

    // core/v1 in, events.k8s.io/v1 out.
    core.create(&PostParams::default(), &core_event("c1"))
        .await
        .unwrap();
    let seen = v1.get("c1").await.unwrap();
    assert_eq!(seen.regarding.unwrap().name.as_deref(), Some("subject"));
    assert_eq!(seen.note.as_deref(), Some("asleep"));
    assert_eq!(seen.deprecated_count, Some(2));
    let source = seen.deprecated_source.unwrap();
    assert_eq!(source.component.as_deref(), Some("hibernator"));
    assert!(seen.deprecated_first_timestamp.is_some() && seen.deprecated_last_timestamp.is_some());
    assert_eq!(
        (seen.reason.as_deref(), seen.type_.as_deref()),
        (Some("Hibernated"), Some("Normal"))
    );

    // events.k8s.io/v1 in, core/v1 out.
    v1.create(&PostParams::default(), &v1_event("n1"))
        .await
        .unwrap();
    let seen = core.get("n1").await.unwrap();
    assert_eq!(seen.involved_object.name.as_deref(), Some("subject"));
    assert_eq!(seen.message.as_deref(), Some("awake"));
    assert_eq!(
        seen.reporting_component.as_deref(),
        Some("hibernator.dev/controller")
    );
    assert_eq!(seen.reporting_instance.as_deref(), Some("hibernator-0"));
    assert_eq!(seen.action.as_deref(), Some("WakeUp"));
    assert!(seen.event_time.is_some());

    // Field selectors of each group.
    let sel = |s: &str| ListParams::default().fields(s);
    assert_eq!(
        names(&core.list(&sel("reason=WokeUp")).await.unwrap().items),
        ["n1"]
    );
    assert_eq!(
        names(&core.list(&sel("source=hibernator")).await.unwrap().items),
        ["c1"]
    );
    assert_eq!(
        names(&v1.list(&sel("type=Warning")).await.unwrap().items),
        ["n1"]
    );
    assert_eq!(
        names(&v1.list(&sel("regarding.name=subject")).await.unwrap().items),
        ["c1", "n1"]
    );

    // Fields a real server does not select on are a 400.
    for (err, field) in [
        (v1.list(&sel("note=awake")).await.unwrap_err(), "note"),
        (
            core.list(&sel("regarding.name=subject")).await.unwrap_err(),
            "regarding.name",
        ),
    ] {
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message.contains(field)),
            "{err}"
        );
    }
    assert_eq!(
        names(&v1.list(&sel("source=hibernator")).await.unwrap().items),
        ["c1"]
    );

    // A write through one group changes what the other reads.
    v1.patch(
        "n1",
        &PatchParams::default(),
        &Patch::Merge(json!({"note": "awake again"})),
    )
    .await
    .unwrap();
    assert_eq!(
        core.get("n1").await.unwrap().message.as_deref(),
        Some("awake again")
    );

    // Watches of each group see Events created through the other.
    let rv = core
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams::default()
        .fields("regarding.name=subject")
        .disable_bookmarks();
    let mut v1_watch = v1.watch(&wp, &rv).await.unwrap().boxed();
    let wp = WatchParams::default()
        .fields("involvedObject.name=subject")
        .disable_bookmarks();
    let mut core_watch = core.watch(&wp, &rv).await.unwrap().boxed();
    core.create(&PostParams::default(), &core_event("c2"))
        .await
        .unwrap();
    v1.create(&PostParams::default(), &v1_event("n2"))
        .await
        .unwrap();
    let mut seen_v1 = Vec::new();
    while seen_v1.len() < 2 {
        let next = tokio::time::timeout(crate::common::BACKGROUND, v1_watch.next()).await;
        match next.unwrap().unwrap().unwrap() {
            WatchEvent::Added(e) => seen_v1.push((e.metadata.name.unwrap(), e.note)),
            WatchEvent::Bookmark(_) | WatchEvent::Modified(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen_v1,
        [
            ("c2".to_string(), Some("asleep".to_string())),
            ("n2".to_string(), Some("awake".to_string()))
        ]
    );
    let mut seen_core = Vec::new();
    while seen_core.len() < 2 {
        let next = tokio::time::timeout(crate::common::BACKGROUND, core_watch.next()).await;
        match next.unwrap().unwrap().unwrap() {
            WatchEvent::Added(e) => seen_core.push((e.metadata.name.unwrap(), e.message)),
            WatchEvent::Bookmark(_) | WatchEvent::Modified(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen_core,
        [
            ("c2".to_string(), Some("asleep".to_string())),
            ("n2".to_string(), Some("awake".to_string()))
        ]
    );
    tc.cleanup().await.unwrap();
}

/// `GET path` as raw JSON, to see which fields the server sent.
async fn raw(client: &kube::Client, path: &str) -> Value {
    let req = axum::http::Request::get(path)
        .body(Vec::new())
        .expect("valid request");
    client.request::<Value>(req).await.expect("GET as JSON")
}

#[tokio::test]
async fn zero_values_of_omitempty_fields_are_left_out() {
    let tc = TestCluster::start("omit").await.unwrap();
    let (client, ns) = (tc.client(), tc.namespace().to_string());
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("zero", 0))
        .await
        .unwrap();
    api.patch_status(
        "zero",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"replicas": 0, "readyReplicas": 0}})),
    )
    .await
    .unwrap();
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/zero");
    let d = raw(&client, &path).await;
    // `spec.replicas` is a pointer: its 0 is sent. Status counts are not.
    assert_eq!(d["spec"]["replicas"], json!(0));
    let status = d["status"].as_object().unwrap();
    assert!(
        !status.contains_key("replicas") && !status.contains_key("readyReplicas"),
        "{status:?}"
    );
    let scale = raw(&client, &format!("{path}/scale")).await;
    let spec = scale["spec"].as_object().unwrap();
    assert!(!spec.contains_key("replicas"), "{scale}");
    // `status.replicas` of a Scale has no omitempty: it is always sent.
    assert_eq!(scale["status"]["replicas"], json!(0));

    let events: Api<Event> = Api::default_namespaced(client.clone());
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": "zero"}, "count": 0, "reason": "Tested", "type": "Normal",
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "zero", "namespace": ns}
    }))
    .unwrap();
    events.create(&PostParams::default(), &ev).await.unwrap();
    let ev = raw(&client, &format!("/api/v1/namespaces/{ns}/events/zero")).await;
    assert!(ev.get("count").is_none(), "{ev}");
    assert_eq!(ev["reason"], "Tested");
    tc.cleanup().await.unwrap();
}
