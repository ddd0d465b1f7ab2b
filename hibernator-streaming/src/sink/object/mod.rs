//! Persistence of execution logs to object storage (S3 or a local directory)
//! through the `object_store` crate.
//!
//! Keys are `<prefix>/<YYYY-MM-DD>/<plan>-<target>-<execution-id>.log`, the
//! date being the UTC date the execution's runner Job started (the date of
//! the first line this sink received for the execution when the Job's start
//! is unknown). The controller computes the same key for the plan's
//! `status.executions[].logsRef` ([`PersistenceConfig::logs_ref`](crate::sink::PersistenceConfig::logs_ref)). One line per record: `<RFC 3339 time> [<LEVEL>] <message>` then
//! the record's fields as ` key=value`.
//!
//! Object stores cannot append, so the sink **rewrites** an execution's
//! object when it writes a batch: it reads back the bytes it has already
//! confirmed, appends the pending lines and puts the whole object. Pending
//! lines are dropped from memory only after the put succeeded, and a retried
//! write starts again from the confirmed bytes, so a put that failed (or
//! whose answer was lost) neither loses nor duplicates lines.
//!
//! Puts are conditional where the store supports it (S3 `If-Match` /
//! `If-None-Match`, the in-memory store): when another writer (a second
//! controller replica receiving lines of the same execution) changed the
//! object in between, the sink re-reads it and appends to what is there;
//! pending lines the object already holds right after the confirmed bytes
//! (its own put whose answer was lost, or the same lines delivered to both
//! replicas) are not written twice. Stores without conditional updates (the local
//! filesystem) fall back to plain overwrites and assume a single writer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion,
};
use tokio::task::JoinHandle;

mod backend;
pub use backend::store_from_config;

use super::{LogRecord, LogSink, SinkError};

/// Settings of an [`ObjectStoreSink`].
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSinkOptions {
    /// Key prefix (`hibernation/`); empty for the store's root.
    pub prefix: String,
    /// Days to keep objects; `None` keeps them forever.
    pub retention_days: Option<u32>,
    /// Pending lines of one execution that trigger a write.
    pub batch_lines: usize,
    /// Interval of the background flush.
    pub flush_interval: Duration,
    /// Interval of the background retention sweep.
    pub retention_interval: Duration,
    /// Bytes of pending lines kept per execution while the store fails;
    /// further lines are dropped and counted.
    pub max_pending_bytes: usize,
    /// Executions with nothing pending and no line for this long are
    /// forgotten (their object stays).
    pub idle_evict: Duration,
}

impl Default for ObjectSinkOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            retention_days: None,
            batch_lines: 500,
            flush_interval: Duration::from_secs(10),
            retention_interval: Duration::from_secs(3600),
            max_pending_bytes: 16 * 1024 * 1024,
            idle_evict: Duration::from_secs(3600),
        }
    }
}

/// What this sink last saw of an execution's object.
#[derive(Clone)]
struct Confirmed {
    /// Bytes of the object known to be written.
    len: u64,
    /// Version of the object after that write; `None` when it did not exist.
    version: Option<UpdateVersion>,
}

struct ExecutionLog {
    key: Path,
    /// `None` until the object was read or written.
    confirmed: Option<Confirmed>,
    pending: Vec<u8>,
    pending_lines: usize,
    last_activity: Instant,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    options: ObjectSinkOptions,
    prefix: Path,
    executions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<ExecutionLog>>>>,
    dropped: AtomicU64,
    /// Cleared when the store turns out not to support conditional puts.
    conditional: AtomicBool,
}

/// Length of the longest run of whole lines at the start of `pending` that
/// `written` also starts with.
fn landed_prefix(written: &[u8], pending: &[u8]) -> usize {
    let common = written
        .iter()
        .zip(pending)
        .take_while(|(a, b)| a == b)
        .count();
    pending[..common]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |newline| newline + 1)
}

/// Conflicting writers retried in one `write_out` before giving up.
const MAX_CONFLICTS: usize = 5;

fn version_of(result: &PutResult) -> UpdateVersion {
    UpdateVersion {
        e_tag: result.e_tag.clone(),
        version: result.version.clone(),
    }
}

/// Writes execution logs to an object store in batches.
pub struct ObjectStoreSink {
    inner: Arc<Inner>,
    maintenance: OnceLock<JoinHandle<()>>,
}

impl std::fmt::Debug for ObjectStoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreSink")
            .field("store", &self.inner.store.to_string())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Drop for ObjectStoreSink {
    fn drop(&mut self) {
        if let Some(task) = self.maintenance.get() {
            task.abort();
        }
    }
}

fn store_error(error: &object_store::Error) -> SinkError {
    SinkError::Transient {
        sink: "object-store",
        message: error.to_string(),
    }
}

/// The object key of an execution's log.
pub fn object_key(prefix: &str, date: NaiveDate, record: &LogRecord) -> Path {
    execution_key(
        prefix,
        date,
        &record.plan,
        &record.target,
        &record.execution_id,
    )
}

/// The object key of the log of `execution_id` (target `target` of plan
/// `plan`) started on `date`: `<prefix>/<YYYY-MM-DD>/<plan>-<target>-<execution-id>.log`.
pub fn execution_key(
    prefix: &str,
    date: NaiveDate,
    plan: &str,
    target: &str,
    execution_id: &str,
) -> Path {
    let file = format!("{plan}-{target}-{execution_id}.log");
    Path::from(prefix)
        .join(date.format("%Y-%m-%d").to_string().as_str())
        .join(file.as_str())
}

/// One persisted line (with its trailing newline).
pub fn format_line(record: &LogRecord) -> String {
    let mut line = format!(
        "{} [{}] {}",
        record
            .timestamp
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        record.level,
        escape(&record.message)
    );
    for (key, value) in &record.fields {
        line.push(' ');
        line.push_str(&escape(key));
        line.push('=');
        line.push_str(&escape(value));
    }
    line.push('\n');
    line
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

impl ObjectStoreSink {
    /// A sink over `store`.
    pub fn new(store: Arc<dyn ObjectStore>, options: ObjectSinkOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                prefix: Path::from(options.prefix.as_str()),
                options,
                executions: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
                conditional: AtomicBool::new(true),
            }),
            maintenance: OnceLock::new(),
        }
    }

    /// Lines dropped because the store kept failing and the per-execution
    /// buffer was full.
    pub fn dropped_lines(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Starts the background task that flushes every `flush_interval` and
    /// applies retention every `retention_interval` (both first after one
    /// interval). Idempotent; called by
    /// the first `write_batch`; the task ends when the sink is dropped.
    /// Must be called inside a Tokio runtime.
    pub fn start_maintenance(&self) {
        self.maintenance.get_or_init(|| {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                let period = inner.options.flush_interval;
                let mut flush = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                let every = inner.options.retention_interval;
                let mut retention = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = flush.tick() => {
                            if let Err(error) = inner.flush_all().await {
                                tracing::warn!(%error, "periodic flush of persisted logs failed");
                            }
                        }
                        _ = retention.tick() => {
                            match inner.apply_retention(Utc::now()).await {
                                Ok(0) => {}
                                Ok(deleted) => tracing::info!(deleted, "expired execution logs deleted"),
                                Err(error) => tracing::warn!(%error, "log retention failed"),
                            }
                        }
                    }
                }
            })
        });
    }

    /// Deletes objects under the prefix whose date directory is more than
    /// `retention_days` days before `now`'s UTC date (an object dated exactly
    /// `retention_days` ago is kept). Returns how many were deleted; does
    /// nothing without a retention.
    pub async fn apply_retention(&self, now: DateTime<Utc>) -> Result<usize, SinkError> {
        self.inner.apply_retention(now).await
    }
}

impl Inner {
    fn execution(&self, record: &LogRecord) -> Arc<tokio::sync::Mutex<ExecutionLog>> {
        let mut executions = self
            .executions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            executions
                .entry(record.execution_id.clone())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(ExecutionLog {
                        key: object_key(
                            &self.options.prefix,
                            record.started.unwrap_or(record.timestamp).date_naive(),
                            record,
                        ),
                        confirmed: None,
                        pending: Vec::new(),
                        pending_lines: 0,
                        last_activity: Instant::now(),
                    }))
                }),
        )
    }

    /// The whole current object and its version (empty and `None` when absent).
    async fn read_current(
        &self,
        key: &Path,
    ) -> Result<(Vec<u8>, Option<UpdateVersion>), SinkError> {
        match self.store.get(key).await {
            Ok(result) => {
                let version = UpdateVersion {
                    e_tag: result.meta.e_tag.clone(),
                    version: result.meta.version.clone(),
                };
                let bytes = result.bytes().await.map_err(|e| store_error(&e))?;
                Ok((bytes.to_vec(), Some(version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok((Vec::new(), None)),
            Err(error) => Err(store_error(&error)),
        }
    }

    /// The confirmed bytes of the object and their version.
    async fn read_confirmed(
        &self,
        key: &Path,
        confirmed: &Confirmed,
    ) -> Result<(Vec<u8>, Option<UpdateVersion>), SinkError> {
        if confirmed.len == 0 {
            return Ok((Vec::new(), confirmed.version.clone()));
        }
        match self.store.get_range(key, 0..confirmed.len).await {
            Ok(bytes) => Ok((bytes.to_vec(), confirmed.version.clone())),
            // Deleted behind our back (retention, an operator): start over.
            Err(object_store::Error::NotFound { .. }) => Ok((Vec::new(), None)),
            Err(error) => Err(store_error(&error)),
        }
    }

    async fn write_out(&self, log: &mut ExecutionLog) -> Result<(), SinkError> {
        if log.pending.is_empty() {
            return Ok(());
        }
        for _ in 0..=MAX_CONFLICTS {
            let (mut body, version) = match &log.confirmed {
                Some(confirmed) => self.read_confirmed(&log.key, confirmed).await?,
                None => self.read_current(&log.key).await?,
            };
            let base = body.len();
            body.extend_from_slice(&log.pending);
            let size = body.len() as u64;
            let conditional = self.conditional.load(Ordering::Relaxed);
            let mode = match (&version, conditional) {
                (_, false) => PutMode::Overwrite,
                (None, true) => PutMode::Create,
                (Some(version), true) if version.e_tag.is_some() => {
                    PutMode::Update(version.clone())
                }
                (Some(_), true) => PutMode::Overwrite,
            };
            let result = self
                .store
                .put_opts(&log.key, PutPayload::from(body), PutOptions::from(mode))
                .await;
            match result {
                Ok(result) => {
                    log.confirmed = Some(Confirmed {
                        len: size,
                        version: Some(version_of(&result)),
                    });
                    log.pending.clear();
                    log.pending_lines = 0;
                    return Ok(());
                }
                Err(object_store::Error::NotImplemented { .. }) if conditional => {
                    tracing::debug!(store = %self.store, "object store has no conditional puts; overwriting");
                    self.conditional.store(false, Ordering::Relaxed);
                }
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    // Someone else wrote the object (or our own put whose
                    // answer was lost landed): continue from what is there,
                    // skipping the pending lines it already starts with.
                    let (current, version) = self.read_current(&log.key).await?;
                    let landed = current
                        .get(base..)
                        .map_or(0, |rest| landed_prefix(rest, &log.pending));
                    if landed > 0 {
                        let lines = log.pending[..landed]
                            .iter()
                            .filter(|b| **b == b'\n')
                            .count();
                        log.pending.drain(..landed);
                        log.pending_lines = log.pending_lines.saturating_sub(lines);
                    }
                    log.confirmed = Some(Confirmed {
                        len: current.len() as u64,
                        version,
                    });
                    if log.pending.is_empty() {
                        return Ok(());
                    }
                }
                Err(error) => return Err(store_error(&error)),
            }
        }
        Err(SinkError::Transient {
            sink: "object-store",
            message: format!(
                "{} kept changing under concurrent writers; will retry",
                log.key
            ),
        })
    }

    async fn flush_all(&self) -> Result<(), SinkError> {
        let executions: Vec<(String, Arc<tokio::sync::Mutex<ExecutionLog>>)> = self
            .executions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(id, log)| (id.clone(), Arc::clone(log)))
            .collect();
        let mut first_error = None;
        let mut idle = Vec::new();
        for (id, log) in executions {
            let mut log = log.lock().await;
            if let Err(error) = self.write_out(&mut log).await {
                first_error.get_or_insert(error);
            } else if log.last_activity.elapsed() >= self.options.idle_evict {
                idle.push(id);
            }
        }
        if !idle.is_empty() {
            let mut executions = self
                .executions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in idle {
                let evictable = executions.get(&id).is_some_and(|log| {
                    log.try_lock().is_ok_and(|l| {
                        l.pending.is_empty() && l.last_activity.elapsed() >= self.options.idle_evict
                    })
                });
                if evictable {
                    executions.remove(&id);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn apply_retention(&self, now: DateTime<Utc>) -> Result<usize, SinkError> {
        let Some(days) = self.options.retention_days else {
            return Ok(0);
        };
        let Some(cutoff) = now
            .date_naive()
            .checked_sub_days(Days::new(u64::from(days)))
        else {
            return Ok(0);
        };
        let prefix = (!self.options.prefix.trim_matches('/').is_empty()).then_some(&self.prefix);
        let objects: Vec<_> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| store_error(&e))?;
        let mut deleted = 0;
        for meta in objects {
            let date = meta
                .location
                .prefix_match(&self.prefix)
                .and_then(|mut parts| parts.next())
                .and_then(|part| NaiveDate::parse_from_str(part.as_ref(), "%Y-%m-%d").ok());
            if date.is_some_and(|date| date < cutoff) {
                match self.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(error) => return Err(store_error(&error)),
                }
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl LogSink for ObjectStoreSink {
    fn name(&self) -> &'static str {
        "object-store"
    }

    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.start_maintenance();
        }
        let mut order: Vec<&str> = Vec::new();
        let mut by_execution: HashMap<&str, Vec<&LogRecord>> = HashMap::new();
        for record in records {
            by_execution
                .entry(record.execution_id.as_str())
                .or_insert_with(|| {
                    order.push(record.execution_id.as_str());
                    Vec::new()
                })
                .push(record);
        }
        let mut first_error = None;
        for id in order {
            let Some(lines) = by_execution.get(id) else {
                continue;
            };
            let Some(first) = lines.first() else {
                continue;
            };
            let log = self.inner.execution(first);
            let mut log = log.lock().await;
            log.last_activity = Instant::now();
            for record in lines {
                let line = format_line(record);
                if log.pending.len() + line.len() > self.inner.options.max_pending_bytes {
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                log.pending.extend_from_slice(line.as_bytes());
                log.pending_lines += 1;
            }
            if log.pending_lines >= self.inner.options.batch_lines
                && let Err(error) = self.inner.write_out(&mut log).await
            {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.inner.flush_all().await
    }
}
