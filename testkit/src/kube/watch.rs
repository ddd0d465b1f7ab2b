//! Watch streams: initial events, resume from a resourceVersion, bookmarks,
//! `410 Expired` for versions older than the retained event window.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::error::ApiError;
use super::list::ListQuery;
use super::objects::State;
use super::registry::ResourceDef;
use super::server::{Shared, lock, partial};
use super::store::{EventType, StoredEvent};

/// Parameters of one watch request.
#[derive(Debug)]
pub(crate) struct WatchRequest {
    pub def: ResourceDef,
    pub version: String,
    pub namespace: Option<String>,
    pub query: ListQuery,
    /// `resourceVersion`; `None` for unset or `"0"` (start with the current state).
    pub resource_version: Option<u64>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    /// Send `PartialObjectMetadata` objects.
    pub metadata_only: bool,
}

impl WatchRequest {
    /// The event this watcher sees, if any. With selectors, an object that
    /// starts matching is ADDED and one that stops matching is DELETED, as
    /// on a real API server.
    fn translate(&self, ev: &StoredEvent) -> Option<Bytes> {
        let (group, plural) = self.def.storage_key();
        if ev.group != group
            || ev.plural != plural
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != ev.namespace)
        {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.previous.as_ref().map_or(now, |p| self.matches(p));
        let etype = match (ev.etype, before, now) {
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (_, _, false) => return None,
            (etype, _, true) => etype,
        };
        Some(self.line(etype.as_str(), &ev.object))
    }

    /// Whether a stored object passes the selectors, as this watch's
    /// resource shows it.
    fn matches(&self, obj: &Value) -> bool {
        self.query.matches(&State::view(&self.def, obj))
    }

    fn line(&self, etype: &str, obj: &Value) -> Bytes {
        let object = if self.metadata_only {
            partial(obj)
        } else {
            State::output(&self.def, &self.version, obj.clone())
        };
        let mut s = json!({"type": etype, "object": object}).to_string();
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.def.kind,
            "apiVersion": self.def.api_version(&self.version),
            "metadata": metadata,
        });
        let mut s = json!({"type": "BOOKMARK", "object": object}).to_string();
        s.push('\n');
        Bytes::from(s)
    }
}

fn error_line(err: &ApiError) -> Bytes {
    let mut s = json!({"type": "ERROR", "object": err.to_status()}).to_string();
    s.push('\n');
    Bytes::from(s)
}

type Body = ReceiverStream<Result<Bytes, Infallible>>;

/// Starts a watch and returns its newline-delimited JSON body.
pub(crate) fn start(shared: &Arc<Shared>, req: WatchRequest) -> Body {
    let (tx, rx) = mpsc::channel(256);
    let interval = shared.bookmark_interval();
    let mut closer = shared.watch_closer();
    let setup = {
        let state = lock(&shared.state);
        let store = &state.store;
        match req.resource_version {
            Some(rv) if rv < store.compacted_rv() => Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                store.compacted_rv()
            ))),
            _ => {
                let current = store.current_rv();
                let initial: Vec<Bytes> =
                    if req.resource_version.is_none() || req.send_initial_events {
                        store
                            .list(&req.def, req.namespace.as_deref())
                            .filter(|(_, o)| req.matches(o))
                            .map(|(_, o)| req.line(EventType::Added.as_str(), o))
                            .collect()
                    } else {
                        Vec::new()
                    };
                let from = if req.send_initial_events || req.resource_version.is_none() {
                    current
                } else {
                    req.resource_version.unwrap_or(current)
                };
                let (backlog, receiver) = store.subscribe_from(&req.def, from);
                Ok((initial, backlog, receiver, current))
            }
        }
    };
    tokio::spawn(async move {
        let (initial, backlog, mut receiver, mut seen) = match setup {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Ok(error_line(&e))).await;
                return;
            }
        };
        let mut lines: Vec<Bytes> = initial;
        if req.send_initial_events && req.bookmarks {
            lines.push(req.bookmark(seen, true));
        }
        lines.extend(backlog.iter().filter_map(|e| req.translate(e)));
        for line in lines {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            let line = tokio::select! {
                got = receiver.recv() => match got {
                    Ok(ev) => {
                        seen = seen.max(ev.rv);
                        match req.translate(&ev) {
                            Some(line) => line,
                            None => continue,
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Ok(error_line(&ApiError::expired("the watch fell behind the event window; relist")))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if req.bookmarks => req.bookmark(seen, false),
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => return,
                _ = closer.changed() => return,
                () = tx.closed() => return,
            };
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}
