//! Object storage sink on the local filesystem backend.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use hibernator_streaming::sink::object::object_key;
use hibernator_streaming::sink::{LogSink, ObjectSinkOptions, ObjectStoreSink, SinkError};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::sinks::common::{at, record};

fn options(batch_lines: usize) -> ObjectSinkOptions {
    ObjectSinkOptions {
        prefix: "hibernation/".to_string(),
        // The background retention sweep uses the real clock: keep test
        // objects (dated 2026-02) out of its reach.
        retention_days: None,
        batch_lines,
        flush_interval: Duration::from_secs(3600),
        ..ObjectSinkOptions::default()
    }
}

fn local(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap())
}

fn read(dir: &tempfile::TempDir, relative: &str) -> Option<String> {
    std::fs::read_to_string(dir.path().join(relative)).ok()
}

const KEY: &str = "hibernation/2026-02-01/prod-offhours-ec2-exec-1.log";

#[tokio::test]
async fn lines_are_buffered_until_flush_and_keyed_by_first_line_date() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::new(local(&dir), options(100));
    let mut started = record("exec-1", at(2026, 2, 1, 20, 5, 0), "Execution started");
    started
        .fields
        .insert("phase".to_string(), "Shutdown".to_string());
    sink.write_batch(&[
        started,
        record(
            "exec-1",
            at(2026, 2, 1, 20, 5, 10),
            "Querying EC2 instances",
        ),
    ])
    .await
    .unwrap();
    assert_eq!(read(&dir, KEY), None, "written before the batch was full");
    sink.flush().await.unwrap();
    assert_eq!(
        read(&dir, KEY).unwrap(),
        "2026-02-01T20:05:00Z [INFO] Execution started phase=Shutdown\n\
         2026-02-01T20:05:10Z [INFO] Querying EC2 instances\n"
    );
    // A line after midnight stays in the execution's object.
    sink.write_batch(&[record(
        "exec-1",
        at(2026, 2, 2, 0, 0, 1),
        "Execution completed",
    )])
    .await
    .unwrap();
    sink.flush().await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        read(&dir, KEY).unwrap(),
        "2026-02-01T20:05:00Z [INFO] Execution started phase=Shutdown\n\
         2026-02-01T20:05:10Z [INFO] Querying EC2 instances\n\
         2026-02-02T00:00:01Z [INFO] Execution completed\n"
    );
    assert!(!dir.path().join("hibernation/2026-02-02").exists());
}

#[tokio::test]
async fn a_full_batch_is_written_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::new(local(&dir), options(3));
    let lines: Vec<_> = (0..4)
        .map(|i| record("exec-1", at(2026, 2, 1, 20, 0, i), &format!("line {i}")))
        .collect();
    sink.write_batch(&lines[..2]).await.unwrap();
    assert_eq!(read(&dir, KEY), None);
    sink.write_batch(&lines[2..]).await.unwrap();
    let content = read(&dir, KEY).unwrap();
    assert_eq!(content.lines().count(), 4);
    assert!(content.ends_with("[INFO] line 3\n"), "{content}");
}

#[tokio::test]
async fn executions_get_their_own_objects_and_messages_stay_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::new(local(&dir), options(100));
    let mut other = record("exec-2", at(2026, 2, 3, 8, 0, 0), "first\nsecond");
    other.plan = "stg-offhours".to_string();
    other.target = "rds".to_string();
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "a"), other])
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(read(&dir, KEY).unwrap(), "2026-02-01T20:00:00Z [INFO] a\n");
    assert_eq!(
        read(&dir, "hibernation/2026-02-03/stg-offhours-rds-exec-2.log").unwrap(),
        "2026-02-03T08:00:00Z [INFO] first\\nsecond\n"
    );
}

#[tokio::test]
async fn a_new_sink_appends_to_an_existing_object() {
    let dir = tempfile::tempdir().unwrap();
    let first = ObjectStoreSink::new(local(&dir), options(100));
    first
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "before restart")])
        .await
        .unwrap();
    first.flush().await.unwrap();
    drop(first);
    let second = ObjectStoreSink::new(local(&dir), options(100));
    second
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 1, 0), "after restart")])
        .await
        .unwrap();
    second.flush().await.unwrap();
    assert_eq!(
        read(&dir, KEY).unwrap(),
        "2026-02-01T20:00:00Z [INFO] before restart\n2026-02-01T20:01:00Z [INFO] after restart\n"
    );
}

#[tokio::test]
async fn periodic_flush_writes_without_an_explicit_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(100);
    opts.flush_interval = Duration::from_millis(20);
    let sink = ObjectStoreSink::new(local(&dir), opts);
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "tick")])
        .await
        .unwrap();
    let mut content = None;
    for _ in 0..500 {
        content = read(&dir, KEY);
        if content.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(content.unwrap(), "2026-02-01T20:00:00Z [INFO] tick\n");
}

/// Fails the next `fail_puts` puts; with `write_anyway` the put reaches the
/// store but its answer is "lost" (an error is returned).
#[derive(Debug)]
struct FlakyStore {
    inner: Arc<dyn ObjectStore>,
    fail_puts: AtomicUsize,
    write_anyway: bool,
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: "injected failure".into(),
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let fail = self
            .fail_puts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !fail {
            return self.inner.put_opts(location, payload, opts).await;
        }
        if self.write_anyway {
            self.inner.put_opts(location, payload, opts).await?;
        }
        Err(injected())
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

async fn flaky_round(inner: Arc<dyn ObjectStore>, write_anyway: bool) -> String {
    let store = Arc::new(FlakyStore {
        inner: inner.clone(),
        fail_puts: AtomicUsize::new(0),
        write_anyway,
    });
    let sink = ObjectStoreSink::new(store.clone(), options(100));
    for (second, message) in [(0, "one"), (1, "two")] {
        sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, second), message)])
            .await
            .unwrap();
        sink.flush().await.unwrap();
    }
    store.fail_puts.store(2, Ordering::SeqCst);
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 2), "three")])
        .await
        .unwrap();
    let error = sink.flush().await.unwrap_err();
    assert!(
        matches!(
            error,
            SinkError::Transient {
                sink: "object-store",
                ..
            }
        ),
        "{error:?}"
    );
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 3), "four")])
        .await
        .unwrap();
    // The second injected failure may hit the put or (conditional stores,
    // write_anyway) turn into a conflict the sink resolves by itself.
    let _ = sink.flush().await;
    sink.flush().await.unwrap();
    assert_eq!(store.fail_puts.load(Ordering::SeqCst), 0);
    let bytes = inner
        .get(&Path::from(KEY))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

const FOUR_LINES: &str = "2026-02-01T20:00:00Z [INFO] one\n\
                          2026-02-01T20:00:01Z [INFO] two\n\
                          2026-02-01T20:00:02Z [INFO] three\n\
                          2026-02-01T20:00:03Z [INFO] four\n";

#[tokio::test]
async fn a_failed_put_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(flaky_round(local(&dir), false).await, FOUR_LINES);
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    assert_eq!(flaky_round(memory, false).await, FOUR_LINES);
}

#[tokio::test]
async fn a_put_whose_answer_was_lost_duplicates_nothing() {
    // Filesystem: unconditional overwrites from the confirmed bytes.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(flaky_round(local(&dir), true).await, FOUR_LINES);
    // In-memory: conditional puts detect that the lines already landed.
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    assert_eq!(flaky_round(memory, true).await, FOUR_LINES);
}

#[tokio::test]
async fn two_replicas_writing_one_execution_lose_nothing() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = ObjectStoreSink::new(memory.clone(), options(100));
    let b = ObjectStoreSink::new(memory.clone(), options(100));
    for i in 0..6u32 {
        let sink = if i % 2 == 0 { &a } else { &b };
        sink.write_batch(&[record(
            "exec-1",
            at(2026, 2, 1, 20, 0, i),
            &format!("line {i}"),
        )])
        .await
        .unwrap();
        sink.flush().await.unwrap();
    }
    // The same line delivered to both replicas (a runner retrying against
    // another replica) is written once.
    let retried = record("exec-1", at(2026, 2, 1, 20, 0, 9), "retried");
    a.write_batch(std::slice::from_ref(&retried)).await.unwrap();
    b.write_batch(&[retried]).await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    let bytes = memory
        .get(&Path::from(KEY))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let content = String::from_utf8(bytes.to_vec()).unwrap();
    let messages: Vec<&str> = content
        .lines()
        .map(|l| l.split("[INFO] ").nth(1).unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![
            "line 0", "line 1", "line 2", "line 3", "line 4", "line 5", "retried"
        ]
    );
}

#[tokio::test]
async fn lines_beyond_the_pending_limit_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FlakyStore {
        inner: local(&dir),
        fail_puts: AtomicUsize::new(usize::MAX),
        write_anyway: false,
    });
    let mut opts = options(1_000_000);
    opts.max_pending_bytes = 200;
    let sink = ObjectStoreSink::new(store, opts);
    let lines: Vec<_> = (0..10)
        .map(|i| record("exec-1", at(2026, 2, 1, 20, 0, i), &format!("line {i}")))
        .collect();
    sink.write_batch(&lines).await.unwrap();
    // Each line is 35 bytes: 5 fit into 200 bytes.
    assert_eq!(sink.dropped_lines(), 5);
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str) {
    store
        .put(&Path::from(key), PutPayload::from_static(b"x\n"))
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_deletes_objects_older_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(&dir);
    for key in [
        "hibernation/2025-11-01/a-b-old.log",
        "hibernation/2025-11-02/a-b-edge.log",
        "hibernation/2025-11-03/a-b-recent.log",
        "hibernation/2026-01-30/a-b-new.log",
        "hibernation/not-a-date/keep.log",
        "other/2020-01-01/not-ours.log",
    ] {
        put(&store, key).await;
    }
    let mut ninety = options(100);
    ninety.retention_days = Some(90);
    let sink = ObjectStoreSink::new(store.clone(), ninety);
    // 90 days before 2026-01-31 is 2025-11-02: older objects go.
    let deleted = sink
        .apply_retention(at(2026, 1, 31, 12, 0, 0))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(read(&dir, "hibernation/2025-11-01/a-b-old.log").is_none());
    for kept in [
        "hibernation/2025-11-02/a-b-edge.log",
        "hibernation/2025-11-03/a-b-recent.log",
        "hibernation/2026-01-30/a-b-new.log",
        "hibernation/not-a-date/keep.log",
        "other/2020-01-01/not-ours.log",
    ] {
        assert!(read(&dir, kept).is_some(), "{kept} was deleted");
    }
    let deleted = sink.apply_retention(at(2026, 5, 1, 0, 0, 0)).await.unwrap();
    assert_eq!(deleted, 3);
    assert!(read(&dir, "other/2020-01-01/not-ours.log").is_some());

    let forever = options(100);
    put(&store, "hibernation/2000-01-01/a-b-ancient.log").await;
    let sink = ObjectStoreSink::new(store, forever);
    assert_eq!(
        sink.apply_retention(at(2026, 5, 1, 0, 0, 0)).await.unwrap(),
        0
    );
    assert!(read(&dir, "hibernation/2000-01-01/a-b-ancient.log").is_some());
}

#[test]
fn keys_follow_the_documented_layout() {
    let line = record("exec-9", at(2026, 2, 1, 20, 0, 0), "x");
    let date = line.timestamp.date_naive();
    assert_eq!(
        object_key("hibernation/", date, &line).as_ref(),
        "hibernation/2026-02-01/prod-offhours-ec2-exec-9.log"
    );
    assert_eq!(
        object_key("", date, &line).as_ref(),
        "2026-02-01/prod-offhours-ec2-exec-9.log"
    );
    assert_eq!(
        object_key("a/b", date, &line).as_ref(),
        "a/b/2026-02-01/prod-offhours-ec2-exec-9.log"
    );
}

#[tokio::test]
async fn the_object_is_where_logs_ref_says_dated_by_the_jobs_start() {
    use hibernator_streaming::sink::{
        BackendKind, FilesystemConfig, PersistenceConfig, build_sinks_with_env,
    };
    let dir = tempfile::tempdir().unwrap();
    let config = PersistenceConfig {
        enabled: true,
        backend: BackendKind::Filesystem,
        filesystem: Some(FilesystemConfig {
            path: dir.path().display().to_string(),
            prefix: "hibernation/".into(),
            retention: None,
        }),
        ..PersistenceConfig::default()
    };
    // The Job started before midnight, its first line came after.
    let job_started = at(2026, 2, 1, 23, 59, 58);
    let mut line = record("exec-1", at(2026, 2, 2, 0, 0, 3), "Execution started");
    line.started = Some(job_started);
    let sinks = build_sinks_with_env(
        &hibernator_streaming::sink::SinksConfig {
            persistence: Some(config.clone()),
            ..Default::default()
        },
        &|_| None,
    )
    .unwrap();
    for sink in &sinks {
        sink.write_batch(std::slice::from_ref(&line)).await.unwrap();
        sink.flush().await.unwrap();
    }
    let logs_ref = config
        .logs_ref(&line.plan, &line.target, "exec-1", job_started)
        .unwrap();
    assert_eq!(
        logs_ref,
        format!("{}/{KEY}", dir.path().display()),
        "dated by the Job's start, not by the line"
    );
    assert_eq!(
        std::fs::read_to_string(&logs_ref).unwrap(),
        "2026-02-02T00:00:03Z [INFO] Execution started\n"
    );
    let s3 = PersistenceConfig {
        enabled: true,
        s3: Some(hibernator_streaming::sink::S3Config {
            bucket: "hibernator-execution-logs".into(),
            prefix: "hibernation/".into(),
            ..Default::default()
        }),
        ..PersistenceConfig::default()
    };
    assert_eq!(
        s3.logs_ref("prod-offhours", "ec2", "exec-1", job_started)
            .as_deref(),
        Some(format!("s3://hibernator-execution-logs/{KEY}").as_str())
    );
}
