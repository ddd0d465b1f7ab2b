//! This controller's share of the estate: several controller releases can
//! split the plans of one cluster by plan labels (`--plan-selector`) or by
//! namespace labels (`--namespace-selector`), each with its own Lease.
//!
//! Plans outside the share are never read, changed or reported on: the plan
//! watch asks the API server only for plans matching `--plan-selector`, and
//! a namespace watch (labels `--namespace-selector`) decides which
//! namespaces' plans this controller reconciles. A plan whose labels or
//! namespace labels change moves to the release it now matches, which goes
//! on from the plan's status and runner Jobs as after a restart.

use hibernator_core::types::HibernatePlan;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, Client};

/// The selectors of this controller's share; both empty: every plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shard {
    /// Label selector on HibernatePlans (`--plan-selector`), in the API's
    /// `labelSelector` syntax, e.g. `team=payments` or `tier in (dev,qa)`.
    pub plan_selector: Option<String>,
    /// Label selector on Namespaces (`--namespace-selector`): only plans in
    /// matching namespaces.
    pub namespace_selector: Option<String>,
}

/// A selector the API server refused, or could not be asked about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// The API server rejected the selector's syntax.
    #[error("{flag} {selector:?} is not a label selector: {message}")]
    Invalid {
        /// The flag that carried it.
        flag: &'static str,
        /// The selector as given.
        selector: String,
        /// The API server's message.
        message: String,
    },
    /// The check itself failed (connection, permissions).
    #[error("cannot check {flag} {selector:?} with the API server: {source}")]
    Api {
        /// The flag that carried it.
        flag: &'static str,
        /// The selector as given.
        selector: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl Shard {
    /// `true` when neither selector is set: this controller reconciles
    /// every plan it can see.
    pub fn is_everything(&self) -> bool {
        self.plan_selector.is_none() && self.namespace_selector.is_none()
    }

    /// Asks the API server, with one list of at most one object each,
    /// whether the selectors are valid, so that a typo stops the
    /// controller at start-up naming the flag instead of failing every
    /// watch. Also checks that the controller may list what it watches.
    pub async fn check(&self, client: &Client, namespace: Option<&str>) -> Result<(), ShardError> {
        if let Some(selector) = &self.plan_selector {
            let plans: Api<HibernatePlan> = match namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let probe = plans
                .list_metadata(&ListParams::default().labels(selector).limit(1))
                .await;
            refused("--plan-selector", selector, probe.map(drop))?;
        }
        if let Some(selector) = &self.namespace_selector {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            let probe = namespaces
                .list_metadata(&ListParams::default().labels(selector).limit(1))
                .await;
            refused("--namespace-selector", selector, probe.map(drop))?;
        }
        Ok(())
    }
}

fn refused(
    flag: &'static str,
    selector: &str,
    probe: Result<(), kube::Error>,
) -> Result<(), ShardError> {
    match probe {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 400 => Err(ShardError::Invalid {
            flag,
            selector: selector.to_string(),
            message: status.message.clone(),
        }),
        Err(source) => Err(ShardError::Api {
            flag,
            selector: selector.to_string(),
            source,
        }),
    }
}
