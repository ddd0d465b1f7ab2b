//! The `rds` executor: stops RDS DB instances and Aurora clusters (optionally
//! after a manual snapshot) and starts exactly what was running again.
//!
//! - Selection: paginated `DescribeDBInstances` / `DescribeDBClusters`,
//!   filtered by `db-instance-id` / `db-cluster-id` when only identifiers are
//!   selected; tags come from the Describe responses (`TagList`), never from
//!   `ListTagsForResource` per resource (RDS has no `tag:` filters).
//! - Aurora: the cluster is stopped, never its member instances; members and
//!   read replicas are skipped with a log line.
//! - Only `available` resources are awake: they are recorded
//!   (`instance/<id>`, `cluster/<id>`) and stopped. Already stopped ones are
//!   not recorded.
//! - `snapshotBeforeStop`: instances get `StopDBInstance`'s
//!   `DBSnapshotIdentifier`; clusters a `CreateDBClusterSnapshot` before
//!   `StopDBCluster`. The name is [`crate::rds::snapshot_identifier`] of the
//!   resource and cycle, so a re-run in the same cycle finds its snapshot.
//! - Wake-up starts what was recorded and, with `awaitCompletion`, waits for
//!   `available` within its timeout; a timed-out wait is a failure naming the
//!   resource. With `connectivityCheck.enabled` (off by default: runners often
//!   have no network path to databases in private subnets), it then checks
//!   that each endpoint accepts a TCP connection within the check's own
//!   timeout; an endpoint that does not is a failure naming the endpoint and
//!   the parameter that turns the check off.
//! - Enforce (drift re-enforcement while hibernated) stops again the
//!   recorded resources found `available` (or `starting`, once available),
//!   such as those RDS started by itself after 7 days; see [`enforce`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_rds::Client;
use hibernator_core::executor::{
    EnforceOutcome, ExecutionContext, ExecutorError, ShutdownOutcome, TypedExecutor, WakeupOutcome,
};
use hibernator_core::restore::RestoreRecord;

use crate::aws::wait::DEFAULT_POLL_INTERVAL;
use crate::rds::Parameters;

pub mod connect;
pub mod enforce;
pub mod inventory;
mod shutdown;
mod wakeup;

pub use connect::{DEFAULT_CONNECT_TIMEOUT, EndpointResolver};
pub use inventory::{parse_resource_key, resource_key};

/// Hibernates RDS DB instances and Aurora clusters of one account and region.
#[derive(Clone)]
pub struct RdsExecutor {
    client: Client,
    poll_interval: Duration,
    connect_timeout: Duration,
    page_size: Option<i32>,
    resolver: Option<EndpointResolver>,
}

impl fmt::Debug for RdsExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RdsExecutor")
            .field("poll_interval", &self.poll_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("page_size", &self.page_size)
            .field("custom_resolver", &self.resolver.is_some())
            .finish_non_exhaustive()
    }
}

impl RdsExecutor {
    /// An executor using the RDS client built from `config` (see
    /// [`crate::aws::connector::sdk_config`]).
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    /// An executor using `client`.
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            page_size: None,
            resolver: None,
        }
    }

    /// How often waits poll RDS (default [`DEFAULT_POLL_INTERVAL`]).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Upper bound of one TCP connection attempt of the wake-up
    /// connectivity check, `connectivityCheck` (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]; attempts repeat until the check's timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `MaxRecords` of Describe calls (default: the service's, 100).
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Resolves endpoints for the wake-up connectivity check; where it
    /// returns `None`, DNS is used.
    pub fn with_endpoint_resolver(mut self, resolver: EndpointResolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The RDS client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl TypedExecutor for RdsExecutor {
    const TYPE: &'static str = crate::rds::TYPE;
    type Params = Parameters;

    async fn shutdown(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
    ) -> Result<ShutdownOutcome, ExecutorError> {
        shutdown::run(self, ctx, params).await
    }

    async fn wakeup(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<WakeupOutcome, ExecutorError> {
        wakeup::run(self, ctx, params, record).await
    }

    const SUPPORTS_ENFORCE: bool = true;

    async fn enforce(
        &self,
        ctx: &ExecutionContext,
        params: &Parameters,
        record: &RestoreRecord,
    ) -> Result<EnforceOutcome, ExecutorError> {
        enforce::run(self, ctx, params, record).await
    }
}
