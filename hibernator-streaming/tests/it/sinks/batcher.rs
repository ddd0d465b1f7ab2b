//! The batching, bounded front of a sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hibernator_streaming::sink::{Batcher, BatcherOptions, LogRecord, LogSink, SinkError};
use tokio::sync::Semaphore;

use crate::sinks::common::{at, record};

#[derive(Default)]
struct Recording {
    batches: Mutex<Vec<Vec<LogRecord>>>,
    flushes: Mutex<usize>,
    /// When set, each write waits for a permit.
    gate: Option<Arc<Semaphore>>,
    fail: bool,
}

impl Recording {
    fn messages(&self) -> Vec<String> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|r| r.message.clone())
            .collect()
    }
}

#[async_trait]
impl LogSink for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        if self.fail {
            return Err(SinkError::Transient {
                sink: "recording",
                message: "down".to_string(),
            });
        }
        self.batches.lock().unwrap().push(records.to_vec());
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        *self.flushes.lock().unwrap() += 1;
        Ok(())
    }
}

fn lines(from: usize, count: usize) -> Vec<LogRecord> {
    (from..from + count)
        .map(|i| record("exec-1", at(2026, 2, 1, 20, 0, 0), &format!("line {i}")))
        .collect()
}

fn expected(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("line {i}")).collect()
}

#[tokio::test]
async fn batches_in_order_and_flushes_the_sink() {
    let inner = Arc::new(Recording::default());
    let batcher = Batcher::new(
        inner.clone(),
        BatcherOptions {
            queue_capacity: 10_000,
            max_batch: 500,
            interval: Duration::from_secs(3600),
        },
    );
    for chunk in 0..12 {
        batcher.write_batch(&lines(chunk * 100, 100)).await.unwrap();
    }
    batcher.flush().await.unwrap();
    assert_eq!(inner.messages(), expected(1200));
    let sizes: Vec<usize> = inner.batches.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![500, 500, 200]);
    assert_eq!(*inner.flushes.lock().unwrap(), 1);
    assert_eq!(batcher.stats().written, 1200);
    assert_eq!(batcher.name(), "recording");
}

#[tokio::test]
async fn writes_on_the_interval_without_flush() {
    let inner = Arc::new(Recording::default());
    let batcher = Batcher::new(
        inner.clone(),
        BatcherOptions {
            queue_capacity: 100,
            max_batch: 500,
            interval: Duration::from_millis(10),
        },
    );
    batcher.write_batch(&lines(0, 3)).await.unwrap();
    for _ in 0..500 {
        if inner.messages().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(inner.messages(), expected(3));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let gate = Arc::new(Semaphore::new(0));
    let inner = Arc::new(Recording {
        gate: Some(gate.clone()),
        ..Recording::default()
    });
    let batcher = Batcher::new(
        inner.clone(),
        BatcherOptions {
            queue_capacity: 10,
            max_batch: 5,
            interval: Duration::from_secs(3600),
        },
    );
    batcher.write_batch(&lines(0, 10)).await.unwrap();
    let error = batcher.write_batch(&lines(10, 4)).await.unwrap_err();
    assert!(matches!(error, SinkError::Transient { .. }), "{error:?}");
    assert_eq!(batcher.stats().dropped, 4);
    gate.add_permits(100);
    batcher.flush().await.unwrap();
    assert_eq!(inner.messages(), expected(10));
    // Capacity is given back once written.
    batcher.write_batch(&lines(10, 10)).await.unwrap();
    batcher.flush().await.unwrap();
    assert_eq!(inner.messages(), expected(20));
    assert_eq!(batcher.stats().written, 20);
}

#[tokio::test]
async fn failures_are_counted_and_reported_by_flush() {
    let inner = Arc::new(Recording {
        fail: true,
        ..Recording::default()
    });
    let batcher = Batcher::new(inner.clone(), BatcherOptions::default());
    batcher.write_batch(&lines(0, 3)).await.unwrap();
    let error = batcher.flush().await.unwrap_err();
    assert!(error.to_string().contains("down"), "{error}");
    let stats = batcher.stats();
    assert_eq!(
        (stats.failed, stats.failed_batches, stats.written),
        (3, 1, 0)
    );
    // The queue still works afterwards.
    batcher.write_batch(&lines(3, 1)).await.unwrap();
    assert!(batcher.flush().await.is_err());
    assert_eq!(batcher.stats().failed, 4);
}

#[tokio::test]
async fn dropping_the_batcher_writes_what_is_queued() {
    let inner = Arc::new(Recording::default());
    let batcher = Batcher::new(
        inner.clone(),
        BatcherOptions {
            queue_capacity: 100,
            max_batch: 50,
            interval: Duration::from_secs(3600),
        },
    );
    batcher.write_batch(&lines(0, 7)).await.unwrap();
    drop(batcher);
    for _ in 0..500 {
        if *inner.flushes.lock().unwrap() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(inner.messages(), expected(7));
    assert_eq!(*inner.flushes.lock().unwrap(), 1);
}
