//! [`Batcher`]: puts a bounded queue and a background writer in front of a
//! sink, so that the streaming server never waits for a slow destination.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{LogRecord, LogSink, SinkError};

/// Settings of a [`Batcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatcherOptions {
    /// Records queued at most; more are dropped (and counted).
    pub queue_capacity: usize,
    /// Records handed to the sink per `write_batch`.
    pub max_batch: usize,
    /// Queued records are written at least this often.
    pub interval: Duration,
}

impl Default for BatcherOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 20_000,
            max_batch: 500,
            interval: Duration::from_secs(1),
        }
    }
}

/// Counters of a [`Batcher`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatcherStats {
    /// Records the sink accepted.
    pub written: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Records in batches the sink failed to write.
    pub failed: u64,
    /// Batches the sink failed to write.
    pub failed_batches: u64,
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    failed_batches: AtomicU64,
}

enum Command {
    Records(Vec<LogRecord>),
    Flush(oneshot::Sender<Result<(), SinkError>>),
}

struct Worker {
    tx: mpsc::UnboundedSender<Command>,
}

/// A bounded, batching front of one sink. `write_batch` only queues (or
/// drops and counts when the queue is full); a background task writes
/// batches of `max_batch` records, or whatever is queued every `interval`.
/// Failed batches are counted and logged, never retried here (the sinks
/// retry internally) and never panic. `flush` writes everything queued and
/// then flushes the sink. The task starts with the first call and ends when
/// the batcher is dropped, after writing what is queued.
pub struct Batcher {
    sink: Arc<dyn LogSink>,
    options: BatcherOptions,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    worker: OnceLock<Worker>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("sink", &self.sink.name())
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Batcher {
    /// Wraps `sink`.
    pub fn new(sink: Arc<dyn LogSink>, options: BatcherOptions) -> Self {
        let options = BatcherOptions {
            queue_capacity: options.queue_capacity.clamp(1, Semaphore::MAX_PERMITS),
            max_batch: options.max_batch.max(1),
            interval: options.interval.max(Duration::from_millis(1)),
        };
        Self {
            sink,
            permits: Arc::new(Semaphore::new(options.queue_capacity)),
            options,
            counters: Arc::new(Counters::default()),
            worker: OnceLock::new(),
        }
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &Arc<dyn LogSink> {
        &self.sink
    }

    /// Current counters.
    pub fn stats(&self) -> BatcherStats {
        BatcherStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            failed_batches: self.counters.failed_batches.load(Ordering::Relaxed),
        }
    }

    fn worker(&self) -> &Worker {
        self.worker.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(
                Arc::clone(&self.sink),
                self.options.clone(),
                Arc::clone(&self.permits),
                Arc::clone(&self.counters),
                rx,
            ));
            Worker { tx }
        })
    }
}

async fn write_chunk(
    sink: &dyn LogSink,
    permits: &Semaphore,
    counters: &Counters,
    chunk: Vec<LogRecord>,
) -> Result<(), SinkError> {
    let count = chunk.len();
    let result = sink.write_batch(&chunk).await;
    permits.add_permits(count);
    match &result {
        Ok(()) => {
            counters.written.fetch_add(count as u64, Ordering::Relaxed);
        }
        Err(error) => {
            counters.failed.fetch_add(count as u64, Ordering::Relaxed);
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sink = sink.name(), records = count, %error, "log sink batch failed");
        }
    }
    result
}

async fn drain(
    sink: &dyn LogSink,
    options: &BatcherOptions,
    permits: &Semaphore,
    counters: &Counters,
    buffer: &mut Vec<LogRecord>,
) -> Result<(), SinkError> {
    let mut last = Ok(());
    while !buffer.is_empty() {
        let rest = buffer.split_off(buffer.len().min(options.max_batch));
        let chunk = std::mem::replace(buffer, rest);
        if let Err(error) = write_chunk(sink, permits, counters, chunk).await {
            last = Err(error);
        }
    }
    last
}

async fn run(
    sink: Arc<dyn LogSink>,
    options: BatcherOptions,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut buffer: Vec<LogRecord> = Vec::new();
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Failures since the last flush, reported to the next flush caller.
    let mut failed_since_flush: Option<SinkError> = None;
    loop {
        tokio::select! {
            command = rx.recv() => match command {
                Some(Command::Records(records)) => {
                    buffer.extend(records);
                    while buffer.len() >= options.max_batch {
                        let rest = buffer.split_off(options.max_batch);
                        let chunk = std::mem::replace(&mut buffer, rest);
                        if let Err(error) = write_chunk(sink.as_ref(), &permits, &counters, chunk).await {
                            failed_since_flush = Some(error);
                        }
                    }
                }
                Some(Command::Flush(reply)) => {
                    let drained = drain(sink.as_ref(), &options, &permits, &counters, &mut buffer).await;
                    let flushed = sink.flush().await;
                    let earlier = failed_since_flush.take();
                    let _ = reply.send(drained.and(flushed).and(earlier.map_or(Ok(()), Err)));
                }
                None => {
                    let _ = drain(sink.as_ref(), &options, &permits, &counters, &mut buffer).await;
                    if let Err(error) = sink.flush().await {
                        tracing::warn!(sink = sink.name(), %error, "final flush of log sink failed");
                    }
                    return;
                }
            },
            _ = tick.tick() => {
                if let Err(error) = drain(sink.as_ref(), &options, &permits, &counters, &mut buffer).await {
                    failed_since_flush = Some(error);
                }
            }
        }
    }
}

fn stopped(sink: &'static str) -> SinkError {
    SinkError::Transient {
        sink,
        message: "the batcher's writer task has stopped".to_string(),
    }
}

#[async_trait]
impl LogSink for Batcher {
    fn name(&self) -> &'static str {
        self.sink.name()
    }

    /// Queues the records; when the queue is full the whole batch is dropped,
    /// counted in [`BatcherStats::dropped`] and reported as a transient error.
    async fn write_batch(&self, records: &[LogRecord]) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        let Ok(permit) = self.permits.try_acquire_many(count) else {
            self.counters
                .dropped
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            return Err(SinkError::Transient {
                sink: self.sink.name(),
                message: format!(
                    "queue full ({} records): {} records dropped",
                    self.options.queue_capacity,
                    records.len()
                ),
            });
        };
        permit.forget();
        self.worker()
            .tx
            .send(Command::Records(records.to_vec()))
            .map_err(|_| stopped(self.sink.name()))
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let (reply, answer) = oneshot::channel();
        self.worker()
            .tx
            .send(Command::Flush(reply))
            .map_err(|_| stopped(self.sink.name()))?;
        answer.await.map_err(|_| stopped(self.sink.name()))?
    }
}
