//! `logs PLAN [TARGET]`: the runner Jobs of the current (or last) cycle →
//! their pods → `pods/log`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{ListParams, LogParams};
use serde_json::{Value, json};

use super::{
    Connection, LABEL_CYCLE, LABEL_JOB_NAME, LABEL_OPERATION, LABEL_PLAN, LABEL_TARGET, Output,
    PluginError, line, write_json,
};

/// Arguments of `logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the HibernatePlan.
    pub plan: String,
    /// Only this target's runner.
    pub target: Option<String>,
    /// Output format (`json`: one object per pod with its log).
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The cycle to show: the plan's current cycle, else the newest Job's.
fn pick_cycle(current: Option<String>, jobs: &[Job]) -> Option<String> {
    current.or_else(|| {
        jobs.iter()
            .max_by_key(|j| j.creation_timestamp().map(|t| t.0))
            .and_then(|j| j.labels().get(LABEL_CYCLE).cloned())
    })
}

pub(super) async fn run(
    conn: &Connection,
    args: &Args,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let plan = conn.plan(&args.plan).await?;
    let qualified = conn.qualified(&args.plan);
    let mut selector = format!(
        "{LABEL_PLAN}={}",
        hibernator_core::wellknown::plan_label(&args.plan)
    );
    if let Some(target) = &args.target {
        selector.push_str(&format!(",{LABEL_TARGET}={target}"));
    }
    let jobs = conn
        .api::<Job>()
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| PluginError::api(format!("list runner Jobs of plan {qualified}"), e))?
        .items;
    let current = plan
        .status
        .as_ref()
        .and_then(|s| s.current_cycle_id.clone());
    let cycle = pick_cycle(current, &jobs);
    let mut jobs: Vec<Job> = jobs
        .into_iter()
        .filter(|j| cycle.is_some() && j.labels().get(LABEL_CYCLE) == cycle.as_ref())
        .collect();
    if jobs.is_empty() {
        let whom = args
            .target
            .as_ref()
            .map(|t| format!(" for target {t}"))
            .unwrap_or_default();
        let which = cycle
            .map(|c| format!("cycle {c}"))
            .unwrap_or_else(|| "any cycle".to_string());
        return Err(PluginError::NoRunners {
            plan: qualified,
            message: format!("no runner Jobs{whom} in {which}"),
        });
    }
    jobs.sort_by_key(|j| (j.creation_timestamp().map(|t| t.0), j.name_any()));
    let pods_api = conn.api::<Pod>();
    let mut entries: Vec<Value> = Vec::new();
    for job in &jobs {
        let job_name = job.name_any();
        let mut pods = pods_api
            .list(&ListParams::default().labels(&format!("{LABEL_JOB_NAME}={job_name}")))
            .await
            .map_err(|e| {
                PluginError::api(format!("list pods of Job {}", conn.qualified(&job_name)), e)
            })?
            .items;
        pods.sort_by_key(|p| (p.creation_timestamp().map(|t| t.0), p.name_any()));
        let labels = job.labels();
        for pod in pods {
            let pod_name = pod.name_any();
            let log = pods_api
                .logs(&pod_name, &LogParams::default())
                .await
                .map_err(|e| {
                    PluginError::api(format!("read logs of pod {}", conn.qualified(&pod_name)), e)
                })?;
            entries.push(json!({
                "job": job_name,
                "pod": pod_name,
                "target": labels.get(LABEL_TARGET),
                "operation": labels.get(LABEL_OPERATION),
                "cycleId": labels.get(LABEL_CYCLE),
                "log": log,
            }));
        }
    }
    match args.output {
        Output::Json => write_json(out, &Value::Array(entries)),
        Output::Table => {
            if entries.is_empty() {
                return line(out, "runner Jobs exist but have no pods (yet)");
            }
            for e in &entries {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                line(
                    out,
                    format!(
                        "==> target {} ({}) job {} pod {} <==",
                        text("target"),
                        text("operation"),
                        text("job"),
                        text("pod")
                    ),
                )?;
                let log = text("log");
                out.write_all(log.as_bytes())
                    .map_err(|e| PluginError::Output(e.to_string()))?;
                if !log.is_empty() && !log.ends_with('\n') {
                    line(out, "")?;
                }
            }
            Ok(())
        }
    }
}
