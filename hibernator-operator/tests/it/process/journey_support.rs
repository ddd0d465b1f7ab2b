//! Fixtures of the journey test: the chart rendered by real Helm (the chart
//! venv, `scripts/render-chart.py`), the controller Pod exactly as the
//! rendered Deployment describes it, the journey's own text, and fake log
//! intakes standing in for Datadog and Splunk.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;

use super::support::{Child, IMAGE, World};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The journey, a verbatim copy of the seed users follow.
pub fn journey_text() -> String {
    std::fs::read_to_string(repo_root().join("charts/hibernator/ci/journeys/runner-streaming.md"))
        .expect("the journey")
}

/// The fenced block of the journey whose first line is `first_line`.
pub fn journey_block(first_line: &str) -> String {
    let text = journey_text();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block.join("\n")),
                None => current = Some(Vec::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push(line);
        }
    }
    blocks
        .into_iter()
        .find(|b| b.lines().next().map(str::trim) == Some(first_line))
        .unwrap_or_else(|| panic!("no block starting with {first_line:?} in the journey"))
}

/// The Python of the chart venv (`HIBERNATOR_CHART_PYTHON`, else
/// `target/chart-venv/bin/python`, which scripts/setup.sh creates).
fn chart_python() -> PathBuf {
    match std::env::var("HIBERNATOR_CHART_PYTHON") {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_root().join("target/chart-venv/bin/python"),
    }
}

/// The chart rendered as release `hibernator` in `namespace` from the
/// journey's values blocks (as scripts/chart_check/journey.py reads them),
/// then `layer` on top.
pub fn render_chart(namespace: &str, layer: &Value) -> Vec<Value> {
    let python = chart_python();
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup.sh (it creates the chart venv with \
         scripts/requirements-chart.txt), or point HIBERNATOR_CHART_PYTHON at a Python with them",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("layer.yaml");
    std::fs::write(&values, layer.to_string()).unwrap();
    let output = std::process::Command::new(&python)
        .arg(repo_root().join("scripts/render-chart.py"))
        .args([
            "--journey",
            "--release",
            "hibernator",
            "--namespace",
            namespace,
            "-f",
        ])
        .arg(&values)
        .output()
        .expect("run scripts/render-chart.py");
    assert!(
        output.status.success(),
        "rendering the chart failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("rendered objects as JSON")
}

/// The rendered object of `kind` named `name`.
pub fn rendered<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the chart rendered no {kind}/{name}"))
}

/// Port number → target port name of a rendered Service.
pub fn service_ports(objects: &[Value], name: &str) -> BTreeMap<u64, String> {
    rendered(objects, "Service", name)["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["targetPort"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Creates the rendered ConfigMaps and Secrets (as `helm install` would).
pub async fn create_config(world: &World, objects: &[Value]) {
    let client = world.cluster.client();
    let ns = world.ns();
    for object in objects {
        let mut object = object.clone();
        object["metadata"]["namespace"] = Value::String(ns.clone());
        match object["kind"].as_str() {
            Some("ConfigMap") => {
                let cm: ConfigMap = serde_json::from_value(object).unwrap();
                Api::<ConfigMap>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &cm)
                    .await
                    .unwrap();
            }
            Some("Secret") => {
                let secret: Secret = serde_json::from_value(object).unwrap();
                Api::<Secret>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &secret)
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
}

/// The value of a rendered container's `env` entry as the kubelet resolves
/// it: `value`, a `fieldRef` to the Pod, or a `secretKeyRef` to a rendered
/// Secret.
fn env_value(entry: &Value, objects: &[Value], pod: &str, ns: &str) -> Option<String> {
    if let Some(value) = entry["value"].as_str() {
        return Some(value.to_string());
    }
    let from = &entry["valueFrom"];
    if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
        return match path {
            "metadata.name" => Some(pod.to_string()),
            "metadata.namespace" => Some(ns.to_string()),
            _ => None,
        };
    }
    let reference = &from["secretKeyRef"];
    let secret: Secret =
        serde_json::from_value(rendered(objects, "Secret", reference["name"].as_str()?).clone())
            .ok()?;
    let bytes = secret.data?.remove(reference["key"].as_str()?)?;
    String::from_utf8(bytes.0).ok()
}

/// Starts the rendered Deployment's `controller` container as a Pod (the
/// admission container next to it is the admission tests' business).
pub async fn start_controller(world: &World, objects: &[Value]) -> Child {
    let ns = world.ns();
    let template = &rendered(objects, "Deployment", "hibernator-controller")["spec"]["template"];
    let mut spec: PodSpec = serde_json::from_value(template["spec"].clone()).unwrap();
    let container: Container = spec
        .containers
        .iter()
        .find(|c| c.name == "controller")
        .cloned()
        .expect("a controller container");
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    let env_entries: Vec<Value> = template["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "controller"))
        .and_then(|c| c["env"].as_array().cloned())
        .unwrap_or_default();
    spec.containers = vec![container];
    let pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some("hibernator-controller-".into()),
            labels: serde_json::from_value(template["metadata"]["labels"].clone()).unwrap(),
            ..Default::default()
        },
        spec: Some(spec.clone()),
        status: None,
    };
    let pod = Api::<Pod>::namespaced(world.cluster.client(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let name = pod.metadata.name.clone().unwrap();
    let env: BTreeMap<String, String> = env_entries
        .iter()
        .filter_map(|e| {
            let value = env_value(e, objects, &name, &ns)?;
            Some((e["name"].as_str()?.to_string(), value))
        })
        .collect();
    let process = world
        .kubelet
        .start(&hibernator_testkit::kubelet::PodRef {
            namespace: ns,
            name: name.clone(),
            uid: pod.metadata.uid.clone().unwrap(),
            spec,
            env,
        })
        .await
        .unwrap_or_else(|e| panic!("start the controller pod {name}: {e}"));
    Child { name, process }
}

/// One request a fake intake received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

/// A fake log intake (Datadog's or Splunk's HTTP API): answers 200 with
/// `{"text":"Success","code":0}` and records every request.
pub struct Intake {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Intake {
    pub async fn start() -> Intake {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(Received {
                        path: uri.path().to_string(),
                        headers,
                        body,
                    });
                    axum::Json(serde_json::json!({"text": "Success", "code": 0}))
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Intake { addr, received }
    }

    /// The requests whose body contains `needle`, waiting up to 30 s for
    /// the first (forwarders batch for about a second).
    pub async fn containing(&self, needle: &str) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let found: Vec<Received> = self
                .received
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.body.contains(needle))
                .cloned()
                .collect();
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
