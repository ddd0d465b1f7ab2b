//! The TestCluster harness, including its real-cluster path (pointed at an
//! in-process server through a kubeconfig file).

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use kube::core::ApiResource;
use serde_json::json;

use hibernator_testkit::kube::{ApiServer, TestCluster, crds};

#[tokio::test]
async fn kubeconfig_path_uses_apply_and_waits_for_established() {
    let server = ApiServer::start().await.unwrap();
    let path = std::env::temp_dir().join(format!("hibernator-testkit-{}.yaml", std::process::id()));
    std::fs::write(&path, server.kubeconfig_yaml()).unwrap();
    let tc = TestCluster::with_kubeconfig(path.to_str().unwrap(), "kcfg")
        .await
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(tc.is_real() && tc.api_server().is_none());
    assert!(tc.namespace().starts_with("kcfg-") && tc.namespace().len() == "kcfg-".len() + 5);

    tc.ensure_crd(&crds::karpenter_nodeclaim()).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim"),
        "nodeclaims",
    );
    let name = tc.unique_name("claim");
    let api: Api<DynamicObject> = Api::all_with(tc.client(), &ar);
    let claim: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": name}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &claim).await.unwrap();
    tc.track_cluster_scoped(&ar, &name);
    let ns = tc.namespace().to_string();
    tc.cleanup().await.unwrap();

    // Seen from the server: the namespace and the tracked object are gone.
    let admin = server.client();
    assert!(
        Api::<Namespace>::all(admin.clone())
            .get_opt(&ns)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<DynamicObject>::all_with(admin, &ar)
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn secrets_fold_string_data() {
    let tc = TestCluster::start("secrets").await.unwrap();
    let api: Api<Secret> = Api::default_namespaced(tc.client());
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "kubeconfig"},
        "stringData": {"kubeconfig": "apiVersion: v1\n"}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    assert!(created.string_data.is_none());
    let data = created.data.unwrap();
    assert_eq!(data["kubeconfig"].0, b"apiVersion: v1\n".to_vec());
    tc.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_panicking_clusters_delete_their_namespaces() {
    // The real-cluster path against an in-process server: the server keeps
    // answering on the runtime's workers while a `Drop` blocks.
    let server = ApiServer::start().await.unwrap();
    let path = std::env::temp_dir().join(format!(
        "hibernator-testkit-drop-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, server.kubeconfig_yaml()).unwrap();
    let path = path.to_str().unwrap().to_string();
    let namespaces: Api<Namespace> = Api::all(server.client());

    let tc = TestCluster::with_kubeconfig(&path, "dropped")
        .await
        .unwrap();
    let dropped = tc.namespace().to_string();
    assert!(namespaces.get_opt(&dropped).await.unwrap().is_some());
    drop(tc);
    assert!(namespaces.get_opt(&dropped).await.unwrap().is_none());

    let (tx, rx) = tokio::sync::oneshot::channel();
    let failing = {
        let path = path.clone();
        tokio::spawn(async move {
            let tc = TestCluster::with_kubeconfig(&path, "panicked")
                .await
                .unwrap();
            let _ = tx.send(tc.namespace().to_string());
            panic!("a failed assertion in {}", tc.namespace());
        })
    };
    assert!(failing.await.unwrap_err().is_panic());
    let panicked = rx.await.unwrap();
    assert!(namespaces.get_opt(&panicked).await.unwrap().is_none());

    // After a successful cleanup, drop does nothing more.
    let tc = TestCluster::with_kubeconfig(&path, "cleaned")
        .await
        .unwrap();
    tc.cleanup().await.unwrap();
    std::fs::remove_file(&path).unwrap();
}
