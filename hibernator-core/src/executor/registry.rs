//! [`ExecutorRegistry`]: the executors a binary knows, by type.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::Executor;
use crate::params::ParameterCatalog;

/// Executors keyed by their type.
#[derive(Clone, Default)]
pub struct ExecutorRegistry {
    executors: BTreeMap<String, Arc<dyn Executor>>,
}

impl ExecutorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an executor under its type; returns the one it replaced, if any.
    pub fn register(&mut self, executor: Arc<dyn Executor>) -> Option<Arc<dyn Executor>> {
        self.executors
            .insert(executor.executor_type().to_string(), executor)
    }

    /// Builder form of [`register`](Self::register).
    pub fn with(mut self, executor: Arc<dyn Executor>) -> Self {
        self.register(executor);
        self
    }

    /// The executor for a target type.
    pub fn get(&self, executor_type: &str) -> Option<Arc<dyn Executor>> {
        self.executors.get(executor_type).cloned()
    }

    /// The registered types, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.executors.keys().map(String::as_str)
    }

    /// Number of registered executors.
    pub fn len(&self) -> usize {
        self.executors.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.executors.is_empty()
    }

    /// The parameter checks of every registered executor, for validation.
    pub fn parameter_catalog(&self) -> ParameterCatalog {
        let mut catalog = ParameterCatalog::new();
        for executor in self.executors.values() {
            catalog.register(executor.parameter_check());
        }
        catalog
    }
}

impl fmt::Debug for ExecutorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types()).finish()
    }
}
