//! Delivery accounting per batch.
//!
//! Every record of a batch carries a pointer to the batch's [`BatchAck`] as
//! its librdkafka delivery opaque (a plain `usize`: no reference count is
//! touched per record, so the sending thread and the delivery thread do not
//! fight over a cache line). The delivery callback counts down; the report
//! that takes the count to zero runs the completion once and frees the
//! batch. This costs one atomic decrement per record and one wake-up per
//! batch, which is what lets the daemon keep up with `kcat`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rdkafka::error::KafkaError;

/// What happens when every record of a batch has a delivery report:
/// `None` when all were delivered, else the first error.
pub type Completion = Box<dyn Fn(Option<KafkaError>) + Send + Sync>;

/// The shared state of one batch in flight.
pub struct BatchAck {
    /// Records without a report, plus one held by the sender until every
    /// record is handed to the producer, so an early report cannot complete
    /// a batch that is still being sent.
    remaining: AtomicUsize,
    /// Set when the sender gave up half-way: the batch then frees itself
    /// after its last report without completing.
    abandoned: AtomicBool,
    error: Mutex<Option<KafkaError>>,
    on_complete: Completion,
}

impl BatchAck {
    /// A batch of `records` records.
    pub fn new(records: usize, on_complete: Completion) -> Self {
        BatchAck {
            remaining: AtomicUsize::new(records + 1),
            abandoned: AtomicBool::new(false),
            error: Mutex::new(None),
            on_complete,
        }
    }
}

/// The sender's handle on a batch in flight. The batch lives on the heap
/// until the count reaches zero; the handle's [`opaque`](Self::opaque) is
/// what each record carries.
#[derive(Debug)]
pub struct BatchHandle(usize);

impl BatchHandle {
    /// Puts `ack` in flight.
    pub fn new(ack: BatchAck) -> Self {
        BatchHandle(Box::into_raw(Box::new(ack)) as usize)
    }

    /// The delivery opaque for each record of this batch.
    pub fn opaque(&self) -> usize {
        self.0
    }

    /// Every record was handed to the producer; releases the sender's hold.
    pub fn sent_all(self) {
        // SAFETY: the handle owns the sender's count, so the batch is alive.
        unsafe { release(self.0, 1) };
    }

    /// The sender gives up on the batch with `unsent` of its records never
    /// accepted by the producer. The batch never completes (its checkpoint
    /// is never committed); it frees itself after the reports of the
    /// records that were accepted.
    pub fn abandon(self, unsent: usize) {
        // SAFETY: the handle owns the sender's count, so the batch is alive.
        let ack = unsafe { &*(self.0 as *const BatchAck) };
        ack.abandoned.store(true, Ordering::Release);
        // SAFETY: as above; the unsent records will never report.
        unsafe { release(self.0, unsent + 1) };
    }
}

/// One record's delivery report. Called on librdkafka's delivery thread.
///
/// # Safety
/// `opaque` must come from [`BatchHandle::opaque`] of a batch this record
/// belongs to, and each record may report only once (librdkafka calls the
/// delivery callback exactly once per produced message).
pub unsafe fn record_done(opaque: usize, result: Result<(), &KafkaError>) {
    if let Err(e) = result {
        // SAFETY: this record's count is still held, so the batch is alive.
        let ack = unsafe { &*(opaque as *const BatchAck) };
        let mut slot = ack.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| e.clone());
    }
    // SAFETY: as above.
    unsafe { release(opaque, 1) };
}

/// Drops `n` counts; whoever drops the last one completes and frees the batch.
///
/// # Safety
/// The caller must own `n` counts of the live batch at `opaque`.
unsafe fn release(opaque: usize, n: usize) {
    let ptr = opaque as *mut BatchAck;
    // SAFETY: the caller's counts keep the batch alive until the decrement.
    // AcqRel: the thread that takes the count to zero must see every error
    // and the abandoned flag written by the others.
    let before = unsafe { &*ptr }.remaining.fetch_sub(n, Ordering::AcqRel);
    if before == n {
        // SAFETY: the count reached zero: no other holder remains, and the
        // pointer came from `Box::into_raw` in `BatchHandle::new`.
        let ack = unsafe { Box::from_raw(ptr) };
        if !ack.abandoned.load(Ordering::Acquire) {
            let error = ack.error.lock().unwrap_or_else(|p| p.into_inner()).take();
            (ack.on_complete)(error);
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
        let batch = BatchHandle::new(BatchAck::new(3, completion));
        let opaque = batch.opaque();
        for _ in 0..3 {
            // SAFETY: three records of a live batch, each reporting once.
            unsafe { record_done(opaque, Ok(())) };
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "sender still holds the batch"
        );
        batch.sent_all();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(*seen.lock().unwrap(), None);
    }

    #[test]
    fn one_failed_record_fails_the_batch() {
        let (calls, seen, completion) = counting();
        let batch = BatchHandle::new(BatchAck::new(2, completion));
        let opaque = batch.opaque();
        batch.sent_all();
        // SAFETY: two records of a live batch, each reporting once.
        unsafe {
            record_done(opaque, Err(&KafkaError::Canceled));
            record_done(opaque, Ok(()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(seen.lock().unwrap().is_some());
    }

    #[test]
    fn abandoned_batch_never_completes_and_is_freed_after_its_reports() {
        let (calls, _, completion) = counting();
        let batch = BatchHandle::new(BatchAck::new(5, completion));
        let opaque = batch.opaque();
        batch.abandon(3);
        // SAFETY: the two records that were sent report once each; the
        // last one frees the batch (Miri or a sanitizer would flag a leak
        // or a use after free here).
        unsafe {
            record_done(opaque, Ok(()));
            record_done(opaque, Ok(()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn empty_batch_completes_when_sent() {
        let (calls, _, completion) = counting();
        BatchHandle::new(BatchAck::new(0, completion)).sent_all();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn reports_from_many_threads_complete_exactly_once() {
        let (calls, _, completion) = counting();
        let batch = BatchHandle::new(BatchAck::new(8000, completion));
        let opaque = batch.opaque();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        // SAFETY: 8 × 1000 distinct records of a live batch.
                        unsafe { record_done(opaque, Ok(())) };
                    }
                })
            })
            .collect();
        batch.sent_all();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
