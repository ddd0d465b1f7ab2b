//! Listing RDS DB instances and clusters: paginated Describe calls with
//! identifier filters, tags taken from the Describe responses (`TagList`),
//! never from one `ListTagsForResource` call per resource.

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance, Filter, Tag};
use hibernator_core::executor::ExecutorError;

use crate::aws::error::classify;
use crate::rds::ResourceKind;

/// At most this many identifiers go into one `Filters` value list (RDS
/// accepts up to 100 values per filter).
const FILTER_CHUNK: usize = 100;

/// One DB instance or cluster as seen by a Describe call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbResource {
    /// Instance or cluster.
    pub kind: ResourceKind,
    /// `DBInstanceIdentifier` or `DBClusterIdentifier`.
    pub id: String,
    /// `DBInstanceStatus` or cluster `Status` (empty when not reported).
    pub status: String,
    /// Database engine, e.g. `postgres` or `aurora-mysql`.
    pub engine: Option<String>,
    /// `DBInstanceClass` (instances) or `DBClusterInstanceClass` (Multi-AZ
    /// DB clusters; Aurora clusters report none), e.g. `db.r6g.large`.
    pub class: Option<String>,
    /// Tags from the Describe response.
    pub tags: BTreeMap<String, String>,
    /// Endpoint host and port, when the resource has one.
    pub endpoint: Option<(String, u16)>,
    /// Instances: the cluster this instance is a member of.
    pub member_of: Option<String>,
    /// The source this resource replicates from, for read replicas
    /// (instance or cluster replica).
    pub replica_of: Option<String>,
}

impl DbResource {
    /// The restore-ledger key: `instance/<id>` or `cluster/<id>`.
    pub fn key(&self) -> String {
        resource_key(self.kind, &self.id)
    }

    fn from_instance(db: &DbInstance) -> Option<Self> {
        let id = db.db_instance_identifier()?.to_string();
        let endpoint = db.endpoint().and_then(|e| {
            let port = u16::try_from(e.port()?).ok()?;
            Some((e.address()?.to_string(), port))
        });
        Some(Self {
            kind: ResourceKind::Instance,
            id,
            status: db.db_instance_status().unwrap_or_default().to_string(),
            engine: db.engine().map(str::to_string),
            class: db.db_instance_class().map(str::to_string),
            tags: tag_map(db.tag_list()),
            endpoint,
            member_of: db.db_cluster_identifier().map(str::to_string),
            replica_of: db
                .read_replica_source_db_instance_identifier()
                .or(db.read_replica_source_db_cluster_identifier())
                .map(str::to_string),
        })
    }

    fn from_cluster(c: &DbCluster) -> Option<Self> {
        let id = c.db_cluster_identifier()?.to_string();
        let endpoint = c.endpoint().and_then(|host| {
            let port = u16::try_from(c.port()?).ok()?;
            Some((host.to_string(), port))
        });
        Some(Self {
            kind: ResourceKind::Cluster,
            id,
            status: c.status().unwrap_or_default().to_string(),
            engine: c.engine().map(str::to_string),
            class: c.db_cluster_instance_class().map(str::to_string),
            tags: tag_map(c.tag_list()),
            endpoint,
            member_of: None,
            replica_of: c.replication_source_identifier().map(str::to_string),
        })
    }
}

/// The restore-ledger key of a resource: `instance/<id>` or `cluster/<id>`.
pub fn resource_key(kind: ResourceKind, id: &str) -> String {
    match kind {
        ResourceKind::Instance => format!("instance/{id}"),
        ResourceKind::Cluster => format!("cluster/{id}"),
    }
}

/// The kind and identifier of a restore-ledger key written by
/// [`resource_key`]; `None` for any other key.
pub fn parse_resource_key(key: &str) -> Option<(ResourceKind, &str)> {
    let (kind, id) = key.split_once('/')?;
    let kind = match kind {
        "instance" => ResourceKind::Instance,
        "cluster" => ResourceKind::Cluster,
        _ => return None,
    };
    (!id.is_empty()).then_some((kind, id))
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Which identifiers to describe: every resource, or only these ids.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every resource of the kind in the account and region.
    All,
    /// Only these identifiers (an empty list describes nothing).
    Ids(&'a [String]),
}

impl<'a> Scope<'a> {
    /// The filter chunks to describe: one `None` (no filter) for `All`, one
    /// chunk of at most [`FILTER_CHUNK`] ids each for `Ids`.
    fn chunks(self) -> Vec<Option<&'a [String]>> {
        match self {
            Scope::All => vec![None],
            Scope::Ids(ids) => ids.chunks(FILTER_CHUNK).map(Some).collect(),
        }
    }
}

fn id_filter(name: &str, ids: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(ids.to_vec()))
        .build()
}

/// Describes DB instances, paginated; `page_size` sets `MaxRecords`.
pub async fn describe_instances(
    client: &Client,
    scope: Scope<'_>,
    page_size: Option<i32>,
) -> Result<Vec<DbResource>, ExecutorError> {
    let mut found = Vec::new();
    for chunk in scope.chunks() {
        let mut request = client.describe_db_instances().set_max_records(page_size);
        if let Some(ids) = chunk {
            request = request.filters(id_filter("db-instance-id", ids));
        }
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(&e, "rds:DescribeDBInstances"))?;
            found.extend(
                page.db_instances()
                    .iter()
                    .filter_map(DbResource::from_instance),
            );
        }
    }
    Ok(found)
}

/// Describes DB clusters, paginated; `page_size` sets `MaxRecords`.
pub async fn describe_clusters(
    client: &Client,
    scope: Scope<'_>,
    page_size: Option<i32>,
) -> Result<Vec<DbResource>, ExecutorError> {
    let mut found = Vec::new();
    for chunk in scope.chunks() {
        let mut request = client.describe_db_clusters().set_max_records(page_size);
        if let Some(ids) = chunk {
            request = request.filters(id_filter("db-cluster-id", ids));
        }
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(&e, "rds:DescribeDBClusters"))?;
            found.extend(
                page.db_clusters()
                    .iter()
                    .filter_map(DbResource::from_cluster),
            );
        }
    }
    Ok(found)
}

/// Describes the resources of `kind` in `scope`.
pub async fn describe(
    client: &Client,
    kind: ResourceKind,
    scope: Scope<'_>,
    page_size: Option<i32>,
) -> Result<Vec<DbResource>, ExecutorError> {
    match kind {
        ResourceKind::Instance => describe_instances(client, scope, page_size).await,
        ResourceKind::Cluster => describe_clusters(client, scope, page_size).await,
    }
}

/// What a resource's status means for hibernation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// `available`: awake, can be stopped.
    Awake,
    /// `stopped` or `stopping`: asleep (or going to sleep).
    Asleep,
    /// `starting`: waking up by itself (e.g. the 7-day automatic restart).
    Starting,
    /// A state RDS cannot stop or start from (deleting, failed,
    /// storage-full, incompatible-*, inaccessible-encryption-credentials…).
    Unusable,
    /// Any other state: an operation (backup, modification, maintenance…)
    /// is running; try again later.
    Busy,
}

/// Classifies an RDS instance or cluster status.
pub fn status_class(status: &str) -> StatusClass {
    match status {
        "available" => StatusClass::Awake,
        "stopped" | "stopping" => StatusClass::Asleep,
        "starting" | "started" => StatusClass::Starting,
        "deleting"
        | "deleted"
        | "failed"
        | "storage-full"
        | "restore-error"
        | "insufficient-capacity"
        | "cloning-failed"
        | "migration-failed" => StatusClass::Unusable,
        s if s.starts_with("incompatible-") || s.starts_with("inaccessible-encryption") => {
            StatusClass::Unusable
        }
        _ => StatusClass::Busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::Endpoint;

    #[test]
    fn keys_round_trip() {
        for kind in [ResourceKind::Instance, ResourceKind::Cluster] {
            let key = resource_key(kind, "orders-db");
            assert_eq!(parse_resource_key(&key), Some((kind, "orders-db")));
        }
        assert_eq!(resource_key(ResourceKind::Cluster, "a"), "cluster/a");
        for bad in ["node/a", "instance/", "instance", ""] {
            assert_eq!(parse_resource_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(status_class("available"), StatusClass::Awake);
        assert_eq!(status_class("stopped"), StatusClass::Asleep);
        assert_eq!(status_class("stopping"), StatusClass::Asleep);
        assert_eq!(status_class("starting"), StatusClass::Starting);
        assert_eq!(status_class("storage-full"), StatusClass::Unusable);
        assert_eq!(
            status_class("incompatible-parameters"),
            StatusClass::Unusable
        );
        assert_eq!(
            status_class("inaccessible-encryption-credentials-recoverable"),
            StatusClass::Unusable
        );
        assert_eq!(status_class("backing-up"), StatusClass::Busy);
        assert_eq!(
            status_class("configuring-enhanced-monitoring"),
            StatusClass::Busy
        );
    }

    #[test]
    fn scope_chunks_ids_per_filter_limit() {
        let ids: Vec<String> = (0..250).map(|i| format!("db-{i}")).collect();
        let chunks = Scope::Ids(&ids).chunks();
        let sizes: Vec<usize> = chunks
            .iter()
            .map(|c| c.map_or(0, <[String]>::len))
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(Scope::Ids(&[]).chunks().is_empty());
        assert_eq!(Scope::All.chunks(), vec![None]);
    }

    #[test]
    fn instances_and_clusters_are_read_from_describe_shapes() {
        let db = DbInstance::builder()
            .db_instance_identifier("replica-1")
            .db_instance_status("available")
            .engine("postgres")
            .endpoint(Endpoint::builder().address("r.example").port(5432).build())
            .read_replica_source_db_instance_identifier("primary")
            .tag_list(Tag::builder().key("env").value("dev").build())
            .build();
        let r = DbResource::from_instance(&db).unwrap();
        assert_eq!(r.key(), "instance/replica-1");
        assert_eq!(r.endpoint, Some(("r.example".into(), 5432)));
        assert_eq!(r.replica_of.as_deref(), Some("primary"));
        assert_eq!(r.tags.get("env").map(String::as_str), Some("dev"));
        let c = DbCluster::builder()
            .db_cluster_identifier("aurora-1")
            .status("stopped")
            .endpoint("c.example")
            .port(3306)
            .build();
        let r = DbResource::from_cluster(&c).unwrap();
        assert_eq!(
            (r.kind, r.status.as_str()),
            (ResourceKind::Cluster, "stopped")
        );
        assert_eq!(r.endpoint, Some(("c.example".into(), 3306)));
        assert!(DbResource::from_instance(&DbInstance::builder().build()).is_none());
    }
}
