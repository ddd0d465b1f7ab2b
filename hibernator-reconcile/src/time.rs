//! Conversions between chrono and the Kubernetes time types, and the
//! controller's injectable clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A Kubernetes `Time` as a chrono instant (out-of-range values clamp to the epoch).
pub fn from_k8s(time: &Time) -> DateTime<Utc> {
    let ts = time.0;
    DateTime::from_timestamp(
        ts.as_second(),
        u32::try_from(ts.subsec_nanosecond()).unwrap_or(0),
    )
    .unwrap_or_default()
}

/// A chrono instant as a Kubernetes `Time` (second precision, as the API stores it).
pub fn to_k8s(time: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(time.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Where the controller reads the current time from: the system clock in
/// production, a settable clock in tests (no sleeping until schedule boundaries).
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `Utc::now()`.
    #[default]
    System,
    /// A manually driven clock.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A manual clock starting at `at`.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self::Manual(Arc::new(Mutex::new(at)))
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Manual(at) => match at.lock() {
                Ok(guard) => *guard,
                Err(poisoned) => *poisoned.into_inner(),
            },
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set(&self, to: DateTime<Utc>) {
        if let Self::Manual(at) = self {
            match at.lock() {
                Ok(mut guard) => *guard = to,
                Err(poisoned) => *poisoned.into_inner() = to,
            }
        }
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        matches!(self, Self::System)
    }
}
