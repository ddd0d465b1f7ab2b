//! Field-path diagnostics shared by validation, the CLI and the admission webhook.

use serde::{Deserialize, Serialize};

/// One problem (or warning) found in user input, naming the field it is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Field path in the object, e.g. `spec.targets[2].connectorRef.name`.
    pub field: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Errors and warnings collected while checking an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Problems that make the object invalid.
    pub errors: Vec<Diagnostic>,
    /// Problems worth telling the user that do not make the object invalid.
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error about `field`.
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(field, message));
    }

    /// Records a warning about `field`.
    pub fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic::new(field, message));
    }

    /// Appends every error and warning of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }

    /// True when there are no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}
