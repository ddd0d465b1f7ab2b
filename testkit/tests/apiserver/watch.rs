//! Watches: raw streams, resume, bookmarks, 410, and kube's watcher.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

use hibernator_testkit::kube::{ApiServer, TestCluster};

/// Generous bound for an event the test expects (never asserted as a time).
const WAIT: Duration = Duration::from_secs(20);

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .expect("valid ConfigMap")
}

async fn next<S: Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("no event within the wait bound")
        .expect("stream ended")
}

fn name_of(ev: &WatchEvent<ConfigMap>) -> (String, String) {
    match ev {
        WatchEvent::Added(o) => ("ADDED".into(), o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(o) => (
            "MODIFIED".into(),
            o.metadata.name.clone().unwrap_or_default(),
        ),
        WatchEvent::Deleted(o) => (
            "DELETED".into(),
            o.metadata.name.clone().unwrap_or_default(),
        ),
        WatchEvent::Bookmark(_) => ("BOOKMARK".into(), String::new()),
        WatchEvent::Error(e) => ("ERROR".into(), e.code.to_string()),
    }
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_with_selectors() {
    let tc = TestCluster::start("watch").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let a = api
        .create(&PostParams::default(), &cm("a", json!({"w": "yes"})))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({"w": "yes"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("c", json!({"w": "no"})))
        .await
        .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();

    let wp = WatchParams::default().labels("w=yes").disable_bookmarks();
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(name_of(&next(&mut stream).await.unwrap()));
    }
    let expect = |t: &str, n: &str| (t.to_string(), n.to_string());
    assert_eq!(
        seen,
        vec![
            expect("MODIFIED", "a"),
            expect("ADDED", "b"),
            expect("DELETED", "b")
        ]
    );
    // Live events follow the replayed ones.
    api.create(&PostParams::default(), &cm("d", json!({"w": "yes"})))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next(&mut stream).await.unwrap()),
        expect("ADDED", "d")
    );
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn bookmarks_carry_the_latest_resource_version() {
    let server = ApiServer::start().await.unwrap();
    server.set_bookmark_interval(Duration::from_millis(20));
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    let rv = api
        .list_metadata(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    // A write to another resource moves the global version; the bookmark follows it.
    let secrets: Api<Secret> = Api::default_namespaced(server.client());
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    let written = secrets.create(&PostParams::default(), &s).await.unwrap();
    let target: u64 = written.metadata.resource_version.unwrap().parse().unwrap();
    loop {
        match next(&mut stream).await.unwrap() {
            WatchEvent::Bookmark(b) => {
                let at: u64 = b.metadata.resource_version.parse().unwrap();
                if at >= target {
                    break;
                }
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[tokio::test]
async fn too_old_resource_versions_get_410_and_the_watcher_relists() {
    let server = ApiServer::start().await.unwrap();
    // No bookmark may move the watcher past the compaction point.
    server.set_bookmark_interval(Duration::from_secs(3600));
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    // `default` also holds `kube-root-ca.crt`: this test's objects are labelled.
    let first = api
        .create(&PostParams::default(), &cm("one", json!({"w": "410"})))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("two", json!({"w": "410"})))
        .await
        .unwrap();
    server.compact_watch_history();
    let mut raw = api
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    match next(&mut raw).await.unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 error event, got {other:?}"),
    }

    let mut events = watcher(api.clone(), watcher::Config::default().labels("w=410")).boxed();
    let mut inits = 0;
    while inits < 1 {
        if let watcher::Event::InitDone = next(&mut events).await.unwrap() {
            inits += 1;
        }
    }
    // Other writes move the version past the watcher's, history is
    // compacted, and the connection drops: the re-watch gets 410.
    let secrets: Api<Secret> = Api::default_namespaced(server.client());
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    server.compact_watch_history();
    server.close_watches();
    let mut saw_410 = false;
    let mut relisted = Vec::new();
    loop {
        match next(&mut events).await {
            Err(watcher::Error::WatchError(e)) if e.code == 410 => saw_410 = true,
            Err(e) => panic!("unexpected watcher error {e}"),
            Ok(watcher::Event::InitApply(o)) => relisted.push(o.metadata.name.unwrap()),
            Ok(watcher::Event::InitDone) => break,
            Ok(_) => {}
        }
    }
    assert!(saw_410, "the re-watch should have been told 410");
    relisted.sort();
    assert_eq!(relisted, vec!["one".to_string(), "two".to_string()]);
    assert!(server.request_count("list", "configmaps") >= 2);
}

#[tokio::test]
async fn watcher_sees_changes_with_list_watch_and_streaming_lists() {
    let tc = TestCluster::start("watcher").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    api.create(&PostParams::default(), &cm("pre", json!({})))
        .await
        .unwrap();
    let configs = [
        watcher::Config::default().page_size(1),
        watcher::Config::default().streaming_lists(),
    ];
    for (i, config) in configs.into_iter().enumerate() {
        if tc.is_real() && i == 1 {
            // Streaming lists need a recent cluster with WatchList enabled.
            continue;
        }
        let mut events = watcher(api.clone(), config).boxed();
        let mut initial = Vec::new();
        loop {
            match next(&mut events).await.unwrap() {
                watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
        assert!(initial.contains(&"pre".to_string()), "{initial:?}");
        let name = format!("live-{i}");
        api.create(&PostParams::default(), &cm(&name, json!({})))
            .await
            .unwrap();
        api.delete(&name, &DeleteParams::default()).await.unwrap();
        let mut applied = false;
        loop {
            match next(&mut events).await.unwrap() {
                watcher::Event::Apply(o) if o.metadata.name.as_deref() == Some(name.as_str()) => {
                    applied = true
                }
                watcher::Event::Delete(o) if o.metadata.name.as_deref() == Some(name.as_str()) => {
                    break;
                }
                _ => {}
            }
        }
        assert!(applied);
    }
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave() {
    let tc = TestCluster::start("watchsel").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    let created = api
        .create(&PostParams::default(), &cm("m", json!({"sel": "in"})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let wp = WatchParams::default().labels("sel=in").disable_bookmarks();
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    let relabel = |v: &'static str| {
        let api = api.clone();
        async move {
            api.patch(
                "m",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"sel": v}}})),
            )
            .await
            .unwrap();
        }
    };
    relabel("out").await;
    relabel("out").await;
    relabel("in").await;
    let expect = |t: &str| (t.to_string(), "m".to_string());
    assert_eq!(
        name_of(&next(&mut stream).await.unwrap()),
        expect("DELETED")
    );
    assert_eq!(name_of(&next(&mut stream).await.unwrap()), expect("ADDED"));
    tc.cleanup().await.unwrap();
}

#[tokio::test]
async fn metadata_only_gets_lists_and_watches() {
    let tc = TestCluster::start("meta").await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(tc.client());
    api.create(&PostParams::default(), &cm("m1", json!({"a": "b"})))
        .await
        .unwrap();
    let meta = api.get_metadata("m1").await.unwrap();
    assert_eq!(meta.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(meta.metadata.labels.unwrap()["a"], "b");
    // The namespace also holds `kube-root-ca.crt`: select this test's objects.
    let listed = api
        .list_metadata(&kube::api::ListParams::default().labels("a=b"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].metadata.name.as_deref(), Some("m1"));
    assert_eq!(listed.types.kind, "PartialObjectMetadataList");

    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::default_namespaced(tc.client());
    let mut events = watcher(meta_api, watcher::Config::default().labels("a=b")).boxed();
    loop {
        if let watcher::Event::InitDone = next(&mut events).await.unwrap() {
            break;
        }
    }
    api.create(&PostParams::default(), &cm("m2", json!({"a": "b"})))
        .await
        .unwrap();
    loop {
        if let watcher::Event::Apply(o) = next(&mut events).await.unwrap() {
            assert_eq!(o.metadata.name.as_deref(), Some("m2"));
            assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata");
            break;
        }
    }
    tc.cleanup().await.unwrap();
}
