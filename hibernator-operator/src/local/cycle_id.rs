//! Which cycle id a `hibernator run` uses.

use chrono::{DateTime, Utc};
use hibernator_core::restore::{RestoreStore, StoreError};

/// Longest cycle id accepted (a Kubernetes label value).
pub const MAX_CYCLE_ID_LEN: usize = 63;

/// Where the cycle id came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleIdSource {
    /// `--cycle-id`.
    Given,
    /// The state file holds a hibernation not yet woken up: same cycle.
    Resumed,
    /// A fresh id from the current time.
    New,
}

/// The chosen cycle id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleIdChoice {
    /// The id.
    pub id: String,
    /// Why this id.
    pub source: CycleIdSource,
}

/// A cycle id from a UTC time: `c20261122t004410z` (lowercase, label-safe).
pub fn new_cycle_id(now: DateTime<Utc>) -> String {
    now.format("c%Y%m%dt%H%M%Sz").to_string()
}

/// Checks a user-given cycle id: 1–63 lowercase letters, digits, `-` or
/// `.`, starting and ending with a letter or digit (a valid label value).
pub fn check_cycle_id(id: &str) -> Result<(), String> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if id.is_empty() || id.len() > MAX_CYCLE_ID_LEN {
        return Err(format!(
            "cycle id {id:?} must be 1 to {MAX_CYCLE_ID_LEN} characters long"
        ));
    }
    if !id.chars().all(valid_char) || !alnum(id.chars().next()) || !alnum(id.chars().last()) {
        return Err(format!(
            "cycle id {id:?} may hold only lowercase letters, digits, '-' and '.', and must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Chooses the cycle id of a run:
///
/// 1. `explicit` when given (checked with [`check_cycle_id`]);
/// 2. else, when records in `store` still hold entries (a hibernation not yet
///    woken up), their `lastCycleId` (the most recently updated one): a
///    re-run of a failed shutdown, and the wake-up that follows it, belong to
///    the same cycle;
/// 3. else [`new_cycle_id`] of `now`.
pub async fn choose_cycle_id(
    explicit: Option<&str>,
    store: &dyn RestoreStore,
    now: DateTime<Utc>,
) -> Result<CycleIdChoice, CycleIdError> {
    if let Some(id) = explicit {
        check_cycle_id(id).map_err(CycleIdError::Invalid)?;
        return Ok(CycleIdChoice {
            id: id.to_string(),
            source: CycleIdSource::Given,
        });
    }
    let records = store.load_all().await?;
    let resumed = records
        .iter()
        .map(|r| &r.value)
        .filter(|r| !r.entries.is_empty())
        .filter_map(|r| r.last_cycle_id.as_ref().map(|id| (r.updated_at, id)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    Ok(match resumed {
        Some((_, id)) => CycleIdChoice {
            id: id.clone(),
            source: CycleIdSource::Resumed,
        },
        None => CycleIdChoice {
            id: new_cycle_id(now),
            source: CycleIdSource::New,
        },
    })
}

/// Errors choosing a cycle id.
#[derive(Debug, thiserror::Error)]
pub enum CycleIdError {
    /// `--cycle-id` is not a valid id.
    #[error("{0}")]
    Invalid(String),
    /// The state file cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}
