//! The README's demo: a small AWS estate in an emulator (moto), hibernated
//! and woken up through exactly the code path of `hibernator run`, with a
//! before/after table and a check that everything came back as it was.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use hibernator_core::cycle::{CycleControl, CycleSummary, ExecutorProvider};
use hibernator_core::executor::{Executor, ExecutorError, typed};
use hibernator_core::input::PlanDocuments;
use hibernator_core::restore::FileRestoreStore;
use hibernator_core::types::{Operation, Target};
use hibernator_executors::ExecutorSet;
use hibernator_executors::aws::rds::RdsExecutor;

use hibernator_operator::local::display::DisplayMode;
use hibernator_operator::local::provider::FileProvider;
use hibernator_operator::local::{RunOptions, SummaryFormat, execute};

use crate::estate;

/// Checks that `endpoint` is an emulator on this machine: the demo creates
/// resources, so it never talks to a real AWS account.
pub fn check_loopback(endpoint: &str) -> anyhow::Result<()> {
    let url = url_host(endpoint);
    let loopback = matches!(url.as_str(), "localhost" | "[::1]" | "::1")
        || url
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        anyhow::bail!(
            "the demo creates resources, so it only runs against an emulator on this machine; {endpoint:?} is not a loopback address"
        )
    }
}

fn url_host(endpoint: &str) -> String {
    let rest = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default();
    }
    authority.split(':').next().unwrap_or(authority).to_string()
}

/// The SDK configuration of the demo's own calls (estate creation and the
/// state table): the emulator, the plan's region, the environment's keys.
pub async fn emulator_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .load()
        .await
}

/// `hibernator run`'s provider, except that RDS endpoints (which do not
/// resolve for an emulator) are mapped to a local listener, so a target with
/// `connectivityCheck.enabled` (off in the shipped plan, as by default) runs
/// the wake-up's "accepts TCP connections" check for real.
struct DemoProvider {
    inner: FileProvider,
    database_port: SocketAddr,
}

#[async_trait]
impl ExecutorProvider for DemoProvider {
    async fn executor_for(&self, target: &Target) -> Result<Arc<dyn Executor>, ExecutorError> {
        if target.kind != hibernator_executors::rds::TYPE {
            return self.inner.executor_for(target).await;
        }
        let config = self
            .inner
            .sdk_config_for(target)
            .await
            .map_err(ExecutorError::from)?;
        let local = self.database_port;
        Ok(typed(RdsExecutor::new(&config).with_endpoint_resolver(
            Arc::new(move |_host: &str, _port: u16| Some(local)),
        )))
    }
}

/// The result of a demo run.
pub struct DemoReport {
    /// Resource → state before, after shutdown, after wake-up.
    pub states: Vec<(String, [String; 3])>,
    /// The two cycles.
    pub summaries: [CycleSummary; 2],
    /// Wall time of each cycle.
    pub durations: [Duration; 2],
}

impl DemoReport {
    /// True when both cycles succeeded and every resource is back as it was.
    pub fn restored_exactly(&self) -> bool {
        self.summaries.iter().all(|s| s.success)
            && self
                .states
                .iter()
                .all(|(_, [before, _, after])| before == after)
    }
}

/// Creates the estate in the emulator at `endpoint`, then runs shutdown and
/// wake-up of `docs`' plan with `hibernator run`'s code path, writing its
/// live output to `out`.
pub async fn run_against_emulator(
    docs: &PlanDocuments,
    endpoint: &str,
    state_dir: &std::path::Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<DemoReport> {
    check_loopback(endpoint)?;
    let region = docs
        .cloud_providers
        .first()
        .and_then(|p| p.spec.aws.as_ref())
        .map(|aws| aws.region.clone())
        .unwrap_or_else(|| "eu-central-1".to_string());
    let config = emulator_config(endpoint, &region).await;
    estate::create(&config)
        .await
        .context("creating the demo estate")?;
    let before = estate::snapshot(&config).await?;

    // A stand-in for the databases' port: accepts connections while the demo runs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let database_port = listener.local_addr()?;
    let accept = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let provider = DemoProvider {
        inner: FileProvider::from_documents(docs, Arc::new(ExecutorSet::new())),
        database_port,
    };
    let store = Arc::new(FileRestoreStore::new(state_dir.join("demo.state.json")));
    let mut snapshots = Vec::new();
    let mut summaries = Vec::new();
    let mut durations = Vec::new();
    for operation in [Operation::Shutdown, Operation::Wakeup] {
        writeln!(
            out,
            "\n== hibernator run examples/plans/demo.yaml --operation {operation}"
        )?;
        let options = RunOptions {
            cycle_id: None,
            format: SummaryFormat::Table,
            display: DisplayMode::Lines,
            state_path: Some(state_dir.join("demo.state.json")),
            cycle: None,
        };
        let started = Instant::now();
        let summary = execute(
            docs,
            operation,
            &provider,
            store.clone(),
            options,
            CycleControl::new(),
            &mut *out,
        )
        .await?;
        durations.push(started.elapsed());
        summaries.push(summary);
        snapshots.push(estate::snapshot(&config).await?);
    }
    accept.abort();
    let states = table_rows(&before, &snapshots);
    let (Ok(summaries), Ok(durations)) = (summaries.try_into(), durations.try_into()) else {
        anyhow::bail!("the demo runs exactly two cycles");
    };
    Ok(DemoReport {
        states,
        summaries,
        durations,
    })
}

fn table_rows(
    before: &BTreeMap<String, String>,
    after: &[BTreeMap<String, String>],
) -> Vec<(String, [String; 3])> {
    let get = |map: &BTreeMap<String, String>, key: &str| {
        map.get(key)
            .cloned()
            .unwrap_or_else(|| "(gone)".to_string())
    };
    before
        .keys()
        .map(|key| {
            (
                key.clone(),
                [
                    get(before, key),
                    after.first().map(|m| get(m, key)).unwrap_or_default(),
                    after.get(1).map(|m| get(m, key)).unwrap_or_default(),
                ],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://localhost:1",
            "http://[::1]:80/",
            "127.0.0.2:9",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://ec2.eu-central-1.amazonaws.com",
            "http://10.0.0.1:5000",
            "",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }
}
