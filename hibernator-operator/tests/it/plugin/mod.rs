//! End-to-end tests of the kubectl plugin against the testkit API server (or
//! the real cluster named by `HIBERNATOR_TEST_KUBECONFIG`): every command runs
//! through `plugin::run_capture`, the same code path as the binary, with a
//! kubeconfig written for the test server.

// Test helpers outside #[test] functions panic on setup failures by design.
#![allow(clippy::unwrap_used)]

mod binary;
mod control;
mod read;
mod report;

use hibernator_core::types::HibernatePlan;
use hibernator_operator::plugin::{self, PluginError};
use hibernator_testkit::kube::{KUBECONFIG_ENV, TestCluster};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

/// A test namespace plus a kubeconfig file for it.
pub struct Env {
    /// The test namespace's cluster.
    pub tc: TestCluster,
    /// Path of a kubeconfig for it.
    pub kubeconfig: String,
    _dir: tempfile::TempDir,
}

impl Env {
    /// A fresh namespace and kubeconfig.
    pub async fn start(prefix: &str) -> Env {
        let tc = TestCluster::start(prefix).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = match tc.api_server() {
            Some(server) => {
                let path = dir.path().join("kubeconfig");
                std::fs::write(&path, server.kubeconfig_yaml()).unwrap();
                path.display().to_string()
            }
            None => std::env::var(KUBECONFIG_ENV).unwrap(),
        };
        Env {
            tc,
            kubeconfig,
            _dir: dir,
        }
    }

    /// The test namespace.
    pub fn ns(&self) -> &str {
        self.tc.namespace()
    }

    /// Runs `kubectl hibernator ARGS --kubeconfig … -n <test namespace>`.
    pub async fn try_run(&self, args: &[&str]) -> Result<String, PluginError> {
        let mut full = vec!["kubectl-hibernator"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--kubeconfig", &self.kubeconfig, "-n", self.ns()]);
        let (code, out) = plugin::run_capture(full).await?;
        assert_eq!(code, std::process::ExitCode::SUCCESS);
        Ok(out)
    }

    /// Like [`Env::try_run`], panicking on errors.
    pub async fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Runs a command and parses its JSON output.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The plans API of the test namespace.
    pub fn plans(&self) -> Api<HibernatePlan> {
        Api::namespaced(self.tc.client(), self.ns())
    }

    /// Reads a plan.
    pub async fn plan(&self, name: &str) -> HibernatePlan {
        self.plans().get(name).await.unwrap()
    }

    /// Creates the demo plan (DAG of four AWS targets) under `name`, with
    /// an unrelated annotation and label that must survive every command.
    pub async fn create_plan(&self, name: &str) -> HibernatePlan {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/plans/demo.yaml"
        ))
        .unwrap();
        let docs = hibernator_core::input::PlanDocuments::from_yaml(&text).unwrap();
        let mut plan = docs.plan;
        plan.metadata = kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.ns().to_string()),
            annotations: Some([("team.example/owner".to_string(), "platform".to_string())].into()),
            labels: Some([("env".to_string(), "dev".to_string())].into()),
            ..Default::default()
        };
        self.plans()
            .create(&PostParams::default(), &plan)
            .await
            .unwrap()
    }

    /// Sets the plan's status as the controller would.
    pub async fn set_status(&self, name: &str, status: serde_json::Value) {
        self.plans()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": status })),
            )
            .await
            .unwrap();
    }
}
