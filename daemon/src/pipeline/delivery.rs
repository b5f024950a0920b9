//! Delivery accounting per batch.
//!
//! Every record of a batch carries an `Arc` of the batch's [`BatchAck`] as
//! its librdkafka delivery opaque. The delivery callback counts down; the
//! last report of the batch runs the completion once. Compared with a future
//! per record this costs one atomic decrement per record and one wake-up
//! per batch, which is what lets the daemon keep up with `kcat`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::error::KafkaError;

/// What happens when every record of a batch has a delivery report:
/// `None` when all were delivered, else the first error.
pub type Completion = Box<dyn Fn(Option<KafkaError>) + Send + Sync>;

/// Counts the outstanding delivery reports of one batch.
pub struct BatchAck {
    /// Records without a report, plus one held by the sender until every
    /// record is handed to the producer, so an early report cannot complete
    /// a batch that is still being sent.
    remaining: AtomicUsize,
    error: Mutex<Option<KafkaError>>,
    on_complete: Completion,
}

impl std::fmt::Debug for BatchAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchAck")
            .field("remaining", &self.remaining.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl BatchAck {
    /// A batch of `records` records.
    pub fn new(records: usize, on_complete: Completion) -> Self {
        BatchAck {
            remaining: AtomicUsize::new(records + 1),
            error: Mutex::new(None),
            on_complete,
        }
    }

    /// One record's delivery report. Called on librdkafka's thread.
    pub fn record_done(&self, result: Result<(), &KafkaError>) {
        if let Err(e) = result {
            let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.clone());
        }
        self.release();
    }

    /// Every record was handed to the producer; releases the sender's hold.
    /// A batch that is abandoned half-sent never calls this, so it never
    /// completes and its checkpoint is never committed.
    pub fn sent_all(&self) {
        self.release();
    }

    fn release(&self) {
        // AcqRel: the thread that takes the count to zero must see every
        // error recorded by the others.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let error = self.error.lock().unwrap_or_else(|p| p.into_inner()).take();
            (self.on_complete)(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    fn counting() -> (Arc<AtomicU32>, Arc<Mutex<Option<String>>>, Completion) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(None));
        let (c, s) = (calls.clone(), seen.clone());
        let completion: Completion = Box::new(move |e| {
            c.fetch_add(1, Ordering::SeqCst);
            *s.lock().unwrap() = e.map(|e| e.to_string());
        });
        (calls, seen, completion)
    }

    #[test]
    fn batch_completes_once_after_all_reports_and_the_sender() {
        let (calls, seen, completion) = counting();
        let ack = BatchAck::new(3, completion);
        ack.record_done(Ok(()));
        ack.record_done(Ok(()));
        ack.record_done(Ok(()));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "sender still holds the batch"
        );
        ack.sent_all();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(*seen.lock().unwrap(), None);
    }

    #[test]
    fn one_failed_record_fails_the_batch() {
        let (calls, seen, completion) = counting();
        let ack = BatchAck::new(2, completion);
        ack.sent_all();
        ack.record_done(Err(&KafkaError::Canceled));
        ack.record_done(Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(seen.lock().unwrap().is_some());
    }

    #[test]
    fn abandoned_batch_never_completes() {
        let (calls, _, completion) = counting();
        let ack = BatchAck::new(2, completion);
        ack.record_done(Ok(()));
        ack.record_done(Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn empty_batch_completes_when_sent() {
        let (calls, _, completion) = counting();
        BatchAck::new(0, completion).sent_all();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn reports_from_many_threads_complete_exactly_once() {
        let (calls, _, completion) = counting();
        let ack = Arc::new(BatchAck::new(8000, completion));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let ack = ack.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        ack.record_done(Ok(()));
                    }
                })
            })
            .collect();
        ack.sent_all();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
