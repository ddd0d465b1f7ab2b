//! The dispatcher's ready queue: a two-level bitset over dispatch ranks.
//!
//! Pushing is one bit set, popping the smallest rank is two `trailing_zeros`
//! after skipping empty summary words (one summary word covers 4096 ranks),
//! so a full dispatch of `n` targets costs O(n + waves · n / 4096) bit
//! operations instead of O(n log n) heap moves, and the whole queue of a
//! 100k-target plan is 12.5 KiB.

/// A set of ranks (`0..capacity`) with pop-minimum.
#[derive(Clone, Debug, Default)]
pub(crate) struct RankQueue {
    /// Bit `r % 64` of word `r / 64` is set when rank `r` is queued.
    words: Vec<u64>,
    /// Bit `w % 64` of summary word `w / 64` is set when `words[w] != 0`.
    summary: Vec<u64>,
    /// Every summary word before this one is zero.
    first: usize,
}

impl RankQueue {
    /// An empty queue for ranks `0..capacity`.
    pub(crate) fn new(capacity: usize) -> Self {
        let words = vec![0; capacity.div_ceil(64)];
        let summary = vec![0; words.len().div_ceil(64)];
        let first = summary.len();
        Self {
            words,
            summary,
            first,
        }
    }

    /// Queues `rank` (ignored when out of range; queuing twice keeps one entry).
    pub(crate) fn push(&mut self, rank: u32) {
        let rank = rank as usize;
        let (w, s) = (rank / 64, rank / 4096);
        if let (Some(word), Some(summary)) = (self.words.get_mut(w), self.summary.get_mut(s)) {
            *word |= 1 << (rank % 64);
            *summary |= 1 << (w % 64);
            self.first = self.first.min(s);
        }
    }

    /// Removes and returns the smallest queued rank.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        while let Some(summary) = self.summary.get_mut(self.first) {
            if *summary == 0 {
                self.first += 1;
                continue;
            }
            let w = self.first * 64 + summary.trailing_zeros() as usize;
            let word = self.words.get_mut(w)?;
            let bit = word.trailing_zeros() as usize;
            *word &= *word - 1;
            if *word == 0 {
                *summary &= !(1 << (w % 64));
            }
            return u32::try_from(w * 64 + bit).ok();
        }
        None
    }

    /// Empties the queue.
    pub(crate) fn clear(&mut self) {
        self.words.fill(0);
        self.summary.fill(0);
        self.first = self.summary.len();
    }
}

#[cfg(test)]
mod tests {
    use super::RankQueue;

    #[test]
    fn pops_in_ascending_order_across_words_and_summary_words() {
        let ranks = [9000u32, 3, 64, 4095, 4096, 0, 63, 8191, 65];
        let mut queue = RankQueue::new(10_000);
        for &r in &ranks {
            queue.push(r);
        }
        queue.push(64);
        let mut expected = ranks.to_vec();
        expected.sort_unstable();
        let popped: Vec<u32> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(popped, expected);
    }

    #[test]
    fn pushes_below_the_last_pop_are_found_and_clear_empties() {
        let mut queue = RankQueue::new(5000);
        queue.push(4500);
        queue.push(10);
        assert_eq!(queue.pop(), Some(10));
        queue.push(2);
        assert_eq!(queue.pop(), Some(2));
        assert_eq!(queue.pop(), Some(4500));
        assert_eq!(queue.pop(), None);
        queue.push(7);
        queue.push(5001);
        queue.clear();
        assert_eq!(queue.pop(), None);
    }
}
