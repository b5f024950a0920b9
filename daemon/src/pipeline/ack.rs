//! The ordered acknowledgement tracker.
//!
//! Kafka acknowledges records out of order (different partitions, retries),
//! but a source checkpoint means "everything before this point is safe".
//! So a batch's checkpoint may only be committed once that batch *and every
//! earlier batch of the same source partition* is acknowledged. This type
//! keeps, per source partition, the batches in the order they were sent and
//! releases checkpoints only over the contiguous acknowledged prefix.

use std::collections::{HashMap, VecDeque};

use tributary_plugin_sdk::Checkpoint;

/// Identifies a registered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(u64);

#[derive(Debug)]
struct Pending {
    id: BatchId,
    /// `None` for a part sent ahead of a batch (its oversized records'
    /// dead letters): it holds the batch's checkpoint back until it is
    /// acknowledged too, and releases none of its own.
    checkpoint: Option<Vec<u8>>,
    acked: bool,
}

/// Tracks in-flight batches per source partition.
#[derive(Debug, Default)]
pub struct AckTracker {
    next_id: u64,
    partitions: HashMap<Vec<u8>, VecDeque<Pending>>,
    partition_of: HashMap<BatchId, Vec<u8>>,
}

impl AckTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a batch that was handed to the producer. Batches of one
    /// partition must be registered in source order.
    pub fn register(&mut self, partition: &[u8], checkpoint: Vec<u8>) -> BatchId {
        self.register_inner(partition, Some(checkpoint))
    }

    /// Registers records sent just before a batch of the same partition as
    /// part of it: the batch's checkpoint is released only once these are
    /// acknowledged as well.
    pub fn register_part(&mut self, partition: &[u8]) -> BatchId {
        self.register_inner(partition, None)
    }

    fn register_inner(&mut self, partition: &[u8], checkpoint: Option<Vec<u8>>) -> BatchId {
        let id = BatchId(self.next_id);
        self.next_id += 1;
        self.partitions
            .entry(partition.to_vec())
            .or_default()
            .push_back(Pending {
                id,
                checkpoint,
                acked: false,
            });
        self.partition_of.insert(id, partition.to_vec());
        id
    }

    /// Marks a batch fully acknowledged. Returns the partition's new
    /// committable checkpoint when the contiguous prefix grew.
    pub fn ack(&mut self, id: BatchId) -> Option<Checkpoint> {
        let partition = self.partition_of.remove(&id)?;
        let queue = self.partitions.get_mut(&partition)?;
        if let Some(p) = queue.iter_mut().find(|p| p.id == id) {
            p.acked = true;
        }
        let mut released = None;
        while queue.front().is_some_and(|p| p.acked) {
            if let Some(c) = queue.pop_front().and_then(|p| p.checkpoint) {
                released = Some(c);
            }
        }
        if queue.is_empty() {
            self.partitions.remove(&partition);
        }
        released.map(|c| Checkpoint::new(partition, c))
    }

    /// Batches registered and not yet released.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_waits_for_every_earlier_batch_of_its_partition() {
        let mut t = AckTracker::new();
        let a = t.register(b"p", b"1".to_vec());
        let b = t.register(b"p", b"2".to_vec());
        let c = t.register(b"p", b"3".to_vec());
        assert_eq!(t.ack(c), None, "a later batch alone releases nothing");
        assert_eq!(t.ack(b), None);
        assert_eq!(t.ack(a), Some(Checkpoint::new(b"p", b"3")));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_advance_independently() {
        let mut t = AckTracker::new();
        let a1 = t.register(b"a", b"a1".to_vec());
        let b1 = t.register(b"b", b"b1".to_vec());
        let a2 = t.register(b"a", b"a2".to_vec());
        assert_eq!(t.ack(b1), Some(Checkpoint::new(b"b", b"b1")));
        assert_eq!(t.ack(a2), None);
        assert_eq!(t.ack(a1), Some(Checkpoint::new(b"a", b"a2")));
    }

    #[test]
    fn unacknowledged_batch_blocks_its_partition_forever() {
        let mut t = AckTracker::new();
        let _lost = t.register(b"p", b"1".to_vec());
        let mut released = Vec::new();
        for i in 2..100u32 {
            let id = t.register(b"p", i.to_le_bytes().to_vec());
            released.extend(t.ack(id));
        }
        assert!(released.is_empty(), "passed an unacknowledged batch");
        assert_eq!(t.in_flight(), 99);
    }

    #[test]
    fn a_part_sent_ahead_holds_its_batch_checkpoint_until_it_is_acknowledged() {
        let mut t = AckTracker::new();
        let a = t.register(b"p", b"1".to_vec());
        assert_eq!(t.ack(a), Some(Checkpoint::new(b"p", b"1")));
        let part = t.register_part(b"p");
        let batch = t.register(b"p", b"2".to_vec());
        assert_eq!(
            t.ack(batch),
            None,
            "its dead letters are not acknowledged yet"
        );
        assert_eq!(t.ack(part), Some(Checkpoint::new(b"p", b"2")));
        let part = t.register_part(b"p");
        assert_eq!(t.ack(part), None, "a part alone releases no checkpoint");
    }

    #[test]
    fn acking_twice_or_unknown_ids_changes_nothing() {
        let mut t = AckTracker::new();
        let a = t.register(b"p", b"1".to_vec());
        let b = t.register(b"p", b"2".to_vec());
        assert!(t.ack(a).is_some());
        assert_eq!(t.ack(a), None);
        assert_eq!(t.ack(BatchId(999)), None);
        assert!(t.ack(b).is_some());
    }

    /// Every permutation of acknowledgements of a few interleaved batches
    /// releases exactly the checkpoints of the contiguous prefix.
    #[test]
    fn released_checkpoint_is_always_the_contiguous_prefix() {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            for p in permutations(n - 1) {
                for i in 0..=p.len() {
                    let mut q = p.clone();
                    q.insert(i, n - 1);
                    out.push(q);
                }
            }
            out
        }
        let parts: [&[u8]; 6] = [b"a", b"b", b"a", b"a", b"b", b"a"];
        for order in permutations(parts.len()) {
            let mut t = AckTracker::new();
            let ids: Vec<BatchId> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| t.register(p, vec![i as u8]))
                .collect();
            let mut acked = [false; 6];
            let mut state = std::collections::BTreeMap::new();
            for &i in &order {
                acked[i] = true;
                if let Some(c) = t.ack(ids[i]) {
                    state.insert(c.partition, c.checkpoint);
                }
                for part in [&b"a"[..], b"b"] {
                    let mut expect = None;
                    for (j, p) in parts.iter().enumerate() {
                        if *p == part {
                            if acked[j] {
                                expect = Some(vec![j as u8]);
                            } else {
                                break;
                            }
                        }
                    }
                    assert_eq!(state.get(part), expect.as_ref(), "order {order:?}");
                }
            }
        }
    }
}
