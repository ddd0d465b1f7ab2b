//! The `ec2` executor: stops (or hibernates) selected EC2 instances and
//! starts exactly those again on wake-up.
//!
//! - **Shutdown** lists the candidates with filtered, paginated
//!   `DescribeInstances` calls ([`describe`]), re-checks each against the
//!   selector, skips instances managed by an Auto Scaling group or Karpenter
//!   (with a log line), records the awake state of every `running`/`pending`
//!   one under `instance/<id>` and stops them with batched `StopInstances`
//!   calls (one batch with `Hibernate=true` for hibernation-capable
//!   instances when `hibernate: true`). Instances that are already stopped
//!   are not recorded: either their owner stopped them or they are still
//!   asleep from an earlier cycle whose entry holds their awake state.
//! - **Wake-up** starts exactly the instances of the record with batched
//!   `StartInstances` calls. A recorded instance that no longer exists or
//!   was terminated fails its key with a clear message; the others continue.
//! - **Enforce** (drift re-enforcement while hibernated) looks only at the
//!   instances of the record, and stops again those found `running` or
//!   `pending` (hibernating those recorded as hibernated). It never records
//!   anything: the entries keep the awake state the next wake-up restores.
//! - With `awaitCompletion.enabled`, shutdown, enforce and wake-up poll `DescribeInstances` (batched
//!   by id) until every instance is `stopped` / `running`, bounded by
//!   `awaitCompletion.timeout`; running out of time is a failure naming the
//!   instances still not there.

pub mod describe;

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::InstanceStateName;
use hibernator_core::executor::{
    EnforceOutcome, ExecutionContext, ExecutorError, Laggards, ShutdownOutcome, TypedExecutor,
    WakeupOutcome, category, describe_laggards,
};
use hibernator_core::restore::RestoreRecord;
use serde::{Deserialize, Serialize};

use self::describe::{
    InstanceInfo, LIVE_STATES, MUTATE_BATCH, describe_all, selector_queries, states_of,
};
use crate::aws::error::classify;
use crate::aws::wait::{DEFAULT_POLL_INTERVAL, wait_for_all};
use crate::ec2::{Parameters, is_managed_instance};

/// Prefix of the restore keys of this executor: `instance/<id>`.
pub const KEY_PREFIX: &str = "instance/";

/// The restore key of an instance.
pub fn resource_key(instance_id: &str) -> String {
    format!("{KEY_PREFIX}{instance_id}")
}

/// The instance id of a restore key, if it is one of this executor's keys.
pub fn instance_id_of(key: &str) -> Option<&str> {
    key.strip_prefix(KEY_PREFIX).filter(|id| !id.is_empty())
}

/// The awake state recorded for an instance before it is stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwakeState {
    /// The state it was found in (`running` or `pending`).
    pub state: String,
    /// Its instance type, for the record and troubleshooting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Whether it was hibernated (suspend to disk) rather than stopped.
    #[serde(default)]
    pub hibernated: bool,
}

/// The `ec2` executor. Cheap to clone (the SDK client is reference-counted).
#[derive(Clone, Debug)]
pub struct Ec2Executor {
    client: Client,
    poll_interval: Duration,
}

impl Ec2Executor {
    /// An executor using `config` (region, credentials, endpoint), polling
    /// every [`DEFAULT_POLL_INTERVAL`] while waiting.
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    /// An executor using an existing EC2 client.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Sets how often instance states are polled while waiting.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The EC2 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits until every instance of `ids` is in `desired`, polling
    /// `DescribeInstances` (batched by id) at most for `timeout`. Running out
    /// of time fails with a `timeout` error naming the instances still not
    /// there and their current state.
    pub async fn wait_for_state(
        &self,
        ctx: &ExecutionContext,
        ids: &[String],
        desired: InstanceStateName,
        timeout: Duration,
    ) -> Result<(), ExecutorError> {
        let laggards = self.poll_until(ctx, ids, &desired, timeout).await?;
        if laggards.is_empty() {
            return Ok(());
        }
        let mut error = ExecutorError::timeout(
            &format!(
                "waiting for instances to be {} (still not: {})",
                desired.as_str(),
                describe_laggards(&laggards)
            ),
            timeout,
        );
        if let [(id, _)] = laggards.iter().collect::<Vec<_>>().as_slice() {
            error = error.with_resource(resource_key(id));
        }
        Err(error)
    }

    /// Polls until every instance of `ids` is in `desired`; returns the
    /// instances (id → current state) that were not there when `timeout`
    /// ran out, empty on success.
    async fn poll_until(
        &self,
        ctx: &ExecutionContext,
        ids: &[String],
        desired: &InstanceStateName,
        timeout: Duration,
    ) -> Result<Laggards, ExecutorError> {
        if ids.is_empty() {
            return Ok(Laggards::new());
        }
        let what = format!(
            "waiting for {} instances to be {}",
            ids.len(),
            desired.as_str()
        );
        wait_for_all(ctx, &what, timeout, self.poll_interval, || async {
            let states = states_of(&self.client, ids).await?;
            Ok(ids
                .iter()
                .filter_map(|id| match states.get(id) {
                    Some(info) if &info.state == desired => None,
                    Some(info) => Some((id.clone(), info.state.as_str().to_string())),
                    None => Some((id.clone(), "not found".to_string())),
                })
                .collect())
        })
        .await
    }

    /// Stops `ids` in batches of [`MUTATE_BATCH`], hibernating them when `hibernate`.
    async fn stop(&self, ids: &[String], hibernate: bool) -> Result<(), ExecutorError> {
        for chunk in ids.chunks(MUTATE_BATCH) {
            let mut call = self
                .client
                .stop_instances()
                .set_instance_ids(Some(chunk.to_vec()));
            if hibernate {
                call = call.hibernate(true);
            }
            call.send()
                .await
                .map_err(|e| classify(&e, "ec2:StopInstances"))?;
        }
        Ok(())
    }
}

fn to_json(state: &AwakeState) -> Result<serde_json::Value, ExecutorError> {
    serde_json::to_value(state).map_err(|e| {
        ExecutorError::permanent(
            category::INTERNAL,
            format!("cannot serialize an instance state: {e}"),
        )
    })
}

/// What a shutdown found, before it changes anything.
#[derive(Debug, Default)]
struct ShutdownPlan {
    outcome: ShutdownOutcome,
    hibernate: Vec<String>,
    stop: Vec<String>,
}

fn plan_shutdown(
    ctx: &ExecutionContext,
    params: &Parameters,
    candidates: Vec<InstanceInfo>,
) -> Result<ShutdownPlan, ExecutorError> {
    let mut plan = ShutdownPlan::default();
    if let Some(ids) = &params.selector.instance_ids {
        for id in ids {
            if !candidates.iter().any(|c| &c.id == id) {
                ctx.warn(&format!(
                    "instance {id} is listed in instanceIds but does not exist or is terminated; skipped"
                ));
            }
        }
    }
    for instance in candidates {
        if !params.selector.matches(&instance.id, &instance.tags) {
            continue;
        }
        if let Some(reason) = is_managed_instance(&instance.tags) {
            ctx.info(&format!("instance {} excluded: {reason}", instance.id));
            continue;
        }
        let key = resource_key(&instance.id);
        plan.outcome.resources.push(key.clone());
        if !instance.is_awake() {
            let earlier = ctx.prior_record().and_then(|r| r.entry(&key)).is_some();
            ctx.debug(&format!(
                "instance {} is {}{}; left alone and not recorded",
                instance.id,
                instance.state.as_str(),
                if earlier {
                    ", still hibernated from an earlier cycle"
                } else {
                    ""
                }
            ));
            continue;
        }
        let hibernate = params.hibernate && instance.hibernation_configured;
        if params.hibernate && !instance.hibernation_configured {
            ctx.info(&format!(
                "instance {} was not launched with hibernation enabled; stopping it instead",
                instance.id
            ));
        }
        let state = to_json(&AwakeState {
            state: instance.state.as_str().to_string(),
            instance_type: instance.instance_type.clone(),
            hibernated: hibernate,
        })?;
        plan.outcome.observations.insert(key, state);
        if hibernate {
            plan.hibernate.push(instance.id);
        } else {
            plan.stop.push(instance.id);
        }
    }
    Ok(plan)
}

#[async_trait]
impl TypedExecutor for Ec2Executor {
    const TYPE: &'static str = crate::ec2::TYPE;
    type Params = Parameters;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let candidates = describe_all(
            &self.client,
            selector_queries(&params.selector, &LIVE_STATES),
        )
        .await?;
        let plan = plan_shutdown(ctx, params, candidates)?;
        ctx.progress(
            20,
            &format!(
                "{} instances selected, {} awake",
                plan.outcome.resources.len(),
                plan.outcome.observations.len()
            ),
        );
        // Record before changing anything: a failure below keeps the entries.
        for (key, state) in &plan.outcome.observations {
            ctx.record_awake_state(key.clone(), state.clone());
        }
        ctx.check_cancelled()?;
        if !plan.hibernate.is_empty() {
            self.stop(&plan.hibernate, true).await?;
            ctx.info(&format!("hibernating {} instances", plan.hibernate.len()));
        }
        if !plan.stop.is_empty() {
            self.stop(&plan.stop, false).await?;
            ctx.info(&format!("stopping {} instances", plan.stop.len()));
        }
        ctx.progress(60, "stop requested");
        if params.await_completion.enabled {
            let ids: Vec<String> = plan.hibernate.iter().chain(&plan.stop).cloned().collect();
            self.wait_for_state(
                ctx,
                &ids,
                InstanceStateName::Stopped,
                params.await_completion.timeout(),
            )
            .await?;
        }
        ctx.progress(100, "instances stopped");
        Ok(plan.outcome)
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let mut outcome = WakeupOutcome::default();
        let mut ids = Vec::new();
        for key in record.entries.keys() {
            match instance_id_of(key) {
                Some(id) => ids.push(id.to_string()),
                None => {
                    outcome.failed.insert(
                        key.clone(),
                        format!("{key:?} is not an ec2 restore key (instance/<id>)"),
                    );
                }
            }
        }
        let states = states_of(&self.client, &ids).await?;
        let mut to_start = Vec::new();
        let mut awake = Vec::new();
        for id in ids {
            let key = resource_key(&id);
            let Some(info) = states.get(&id) else {
                outcome.failed.insert(
                    key,
                    format!("instance {id} no longer exists; it cannot be started (remove its restore entry if it was deleted on purpose)"),
                );
                continue;
            };
            match info.state {
                InstanceStateName::Stopped => to_start.push(id),
                InstanceStateName::Running | InstanceStateName::Pending => awake.push(id),
                InstanceStateName::Stopping => {
                    outcome.failed.insert(
                        key,
                        format!("instance {id} is still stopping; it can be started once it is stopped (retried)"),
                    );
                }
                InstanceStateName::ShuttingDown | InstanceStateName::Terminated => {
                    outcome.failed.insert(
                        key,
                        format!("instance {id} was terminated; it cannot be started (remove its restore entry)"),
                    );
                }
                _ => {
                    outcome.failed.insert(
                        key,
                        format!(
                            "instance {id} is in unexpected state {:?}",
                            info.state.as_str()
                        ),
                    );
                }
            }
        }
        ctx.progress(20, &format!("starting {} instances", to_start.len()));
        let mut started = Vec::new();
        for chunk in to_start.chunks(MUTATE_BATCH) {
            ctx.check_cancelled()?;
            match self
                .client
                .start_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await
            {
                Ok(_) => started.extend_from_slice(chunk),
                Err(e) => {
                    let error = classify(&e, "ec2:StartInstances");
                    if error.is_transient() {
                        return Err(error);
                    }
                    for id in chunk {
                        outcome.failed.insert(resource_key(id), error.to_string());
                    }
                }
            }
        }
        if !started.is_empty() {
            ctx.info(&format!("started {} instances", started.len()));
        }
        let mut woken: Vec<String> = awake.into_iter().chain(started).collect();
        if params.await_completion.enabled {
            let timeout = params.await_completion.timeout();
            let laggards = self
                .poll_until(ctx, &woken, &InstanceStateName::Running, timeout)
                .await?;
            for (id, state) in &laggards {
                outcome.failed.insert(
                    resource_key(id),
                    format!(
                        "instance {id} did not become running within {} (state: {state})",
                        hibernator_core::duration::format_duration(timeout)
                    ),
                );
            }
            woken.retain(|id| !laggards.contains_key(id));
        }
        outcome.restored = woken.iter().map(|id| resource_key(id)).collect();
        ctx.progress(100, "instances started");
        Ok(outcome)
    }

    const SUPPORTS_ENFORCE: bool = true;

    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        ctx.check_cancelled()?;
        let mut outcome = EnforceOutcome::default();
        let mut ids = Vec::new();
        for key in record.entries.keys() {
            match instance_id_of(key) {
                Some(id) => ids.push(id.to_string()),
                None => ctx.warn(&format!(
                    "{key:?} is not an ec2 restore key (instance/<id>); not checked"
                )),
            }
        }
        let states = states_of(&self.client, &ids).await?;
        let (mut hibernate, mut stop) = (Vec::new(), Vec::new());
        for id in ids {
            let key = resource_key(&id);
            let Some(info) = states.get(&id) else {
                ctx.warn(&format!(
                    "instance {id} of the restore record no longer exists; not checked"
                ));
                continue;
            };
            outcome.checked.push(key.clone());
            if !info.is_awake() {
                continue;
            }
            let recorded_hibernated = record
                .entry(&key)
                .and_then(|e| serde_json::from_value::<AwakeState>(e.state.clone()).ok())
                .is_some_and(|s| s.hibernated);
            ctx.warn(&format!(
                "instance {id} is {} while the plan is hibernated; stopping it again",
                info.state.as_str()
            ));
            if recorded_hibernated && info.hibernation_configured {
                hibernate.push(id);
            } else {
                stop.push(id);
            }
            outcome.rehibernated.push(key);
        }
        ctx.check_cancelled()?;
        self.stop(&hibernate, true).await?;
        self.stop(&stop, false).await?;
        if params.await_completion.enabled {
            let ids: Vec<String> = hibernate.into_iter().chain(stop).collect();
            self.wait_for_state(
                ctx,
                &ids,
                InstanceStateName::Stopped,
                params.await_completion.timeout(),
            )
            .await?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
