//! The background work of a real control plane that the tests can see:
//! the garbage collector ([`super::gc`]) and the namespace publishers
//! ([`super::namespaces`]). One task per server runs them right after every
//! write (the router wakes it) and once per [`PERIOD`]; it ends when the
//! server is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::server::{Shared, lock};

/// How often the controllers run without a wake-up.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// One pass of every controller.
pub(crate) fn run_once(shared: &Shared) {
    let mut state = lock(&shared.state);
    state.collect_garbage();
    state.publish_namespaces();
}

/// Starts the controller task (once per server; needs a tokio runtime).
pub(crate) fn spawn(shared: &Arc<Shared>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let wake: Arc<Notify> = Arc::clone(&shared.controllers_wake);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(PERIOD) => {}
            }
            let Some(shared) = weak.upgrade() else {
                return;
            };
            run_once(&shared);
        }
    });
}
