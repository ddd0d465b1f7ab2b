//! Target names of a plan: one contiguous buffer (no allocation per name)
//! and a hash index of positions into it.

use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::types::Target;

/// The names of `spec.targets`, in order, stored back to back.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    /// Every name, concatenated.
    text: String,
    /// End offset (in `text`) of each name; name `i` starts where `i - 1` ends.
    ends: Vec<usize>,
}

impl Names {
    /// Copies the names of `targets`.
    pub(crate) fn from_targets(targets: &[Target]) -> Self {
        let total = targets.iter().map(|t| t.name.len()).sum();
        let mut text = String::with_capacity(total);
        let mut ends = Vec::with_capacity(targets.len());
        for target in targets {
            text.push_str(&target.name);
            ends.push(text.len());
        }
        Self { text, ends }
    }

    /// Number of names.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no names.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The name at `index` (`None` when out of range).
    pub(crate) fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(previous) => *self.ends.get(previous)?,
            None => 0,
        };
        self.text.get(start..end)
    }
}

impl std::ops::Index<usize> for Names {
    type Output = str;

    /// The name at `index`.
    ///
    /// # Panics
    /// When `index` is out of range.
    fn index(&self, index: usize) -> &str {
        match self.get(index) {
            Some(name) => name,
            None => panic!(
                "target index {index} out of range (the plan has {} targets)",
                self.len()
            ),
        }
    }
}

/// One entry of a [`NameIndex`]: where a name sits in the [`Names`] buffer
/// and its position in `spec.targets` (no second lookup in `Names::ends`).
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: u32,
    end: u32,
    position: u32,
}

impl Slot {
    /// The bytes of this slot's name.
    fn bytes<'a>(&self, names: &'a Names) -> &'a [u8] {
        names
            .text
            .as_bytes()
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// Name → position of its first occurrence, stored as ranges into a
/// [`Names`] buffer (12 bytes per entry; keys are compared in the buffer).
///
/// Positions and offsets are 32-bit: names past 4 GiB of text or past
/// 2³² targets are not indexed (far beyond what a Kubernetes object holds).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameIndex {
    table: HashTable<Slot>,
    hasher: foldhash::fast::FixedState,
}

impl NameIndex {
    /// Indexes every name of `names`; a repeated name maps to its first position.
    pub(crate) fn build(names: &Names) -> Self {
        let hasher = foldhash::fast::FixedState::default();
        let mut table = HashTable::with_capacity(names.len());
        let hash_of = |slot: &Slot| hasher.hash_one(slot.bytes(names));
        let mut start = 0usize;
        for (i, &end) in names.ends.iter().enumerate() {
            let (Ok(position), Ok(start32), Ok(end32)) =
                (u32::try_from(i), u32::try_from(start), u32::try_from(end))
            else {
                break;
            };
            let slot = Slot {
                start: start32,
                end: end32,
                position,
            };
            let name = slot.bytes(names);
            let hash = hasher.hash_one(name);
            let same = |other: &Slot| other.bytes(names) == name;
            if let Entry::Vacant(vacant) = table.entry(hash, same, hash_of) {
                vacant.insert(slot);
            }
            start = end;
        }
        Self { table, hasher }
    }

    /// Position of the first name equal to `name` in `names` (the [`Names`]
    /// this index was built from).
    pub(crate) fn get(&self, names: &Names, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |slot| slot.bytes(names) == name)
            .map(|slot| slot.position as usize)
    }
}
