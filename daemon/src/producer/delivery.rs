//! Delivery accounting per batch.
//!
//! Every record of a batch carries a pointer to the batch's [`BatchAck`] as
//! its librdkafka delivery opaque (a plain `usize`: no reference count is
//! touched per record, so the sending thread and the delivery thread do not
//! fight over a cache line). The delivery callback counts down; the report
//! that takes the count to zero runs the completion once and frees the
//! batch. This costs one atomic decrement per record and one wake-up per
//! batch, which is what lets the daemon keep up with `kcat`.

use std::mem::ManuallyDrop;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rdkafka::error::KafkaError;

/// How a batch ended; its completion sees exactly one.
#[derive(Debug)]
pub enum Outcome {
    /// Every record was delivered.
    Delivered,
    /// At least one record failed; the first error.
    Failed(KafkaError),
    /// The sender gave up before handing every record to the producer (or
    /// dropped its handle): the batch's checkpoint must never be committed.
    Abandoned,
}

/// What runs once per batch with its [`Outcome`]: on librdkafka's delivery
/// thread when the last report arrives, or on the sender's thread when it
/// abandons the batch.
pub type Completion = Box<dyn Fn(Outcome) + Send + Sync>;

/// The shared state of one batch in flight.
pub struct BatchAck {
    /// Records without a report, plus one held by the sender until every
    /// record is handed to the producer, so an early report cannot complete
    /// a batch that is still being sent.
    remaining: AtomicUsize,
    /// Set when the sender gave up half-way: the completion has then run
    /// with [`Outcome::Abandoned`], and the batch frees itself after its
    /// last report without completing again.
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
///
/// The sender ends it with [`sent_all`](Self::sent_all) or
/// [`abandon`](Self::abandon). A handle dropped without either (an early
/// return, a panic while sending) abandons the batch, so its source learns
/// that the batch will never complete instead of waiting for it forever.
#[derive(Debug)]
#[must_use = "a batch handle must be ended with `sent_all` or `abandon`; dropping it abandons the batch"]
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
        let handle = ManuallyDrop::new(self);
        // SAFETY: the handle owns the sender's count, so the batch is alive.
        unsafe { release(handle.0, 1) };
    }

    /// The sender gives up on the batch with `unsent` of its records never
    /// accepted by the producer. The completion runs now with
    /// [`Outcome::Abandoned`] (the checkpoint is never committed); the batch
    /// frees itself after the reports of the records that were accepted.
    pub fn abandon(self, unsent: usize) {
        let handle = ManuallyDrop::new(self);
        handle.give_up();
        // SAFETY: the handle owns the sender's count, so the batch is alive;
        // the unsent records will never report.
        unsafe { release(handle.0, unsent + 1) };
    }

    /// Marks the batch abandoned and runs its completion once.
    fn give_up(&self) {
        // SAFETY: the handle owns the sender's count, so the batch is alive;
        // no report can take the count to zero while that count is held.
        let ack = unsafe { &*(self.0 as *const BatchAck) };
        if !ack.abandoned.swap(true, Ordering::AcqRel) {
            (ack.on_complete)(Outcome::Abandoned);
        }
    }
}

impl Drop for BatchHandle {
    /// Abandons the batch. How many of its records reached the producer is
    /// not known here, so only the sender's own count is released: the
    /// completion has run, nothing waits for the batch, and its allocation
    /// stays (a bounded leak on a path that is a bug of the sender).
    fn drop(&mut self) {
        tracing::error!(
            "A batch handle was dropped without being sent or abandoned; the batch is abandoned."
        );
        self.give_up();
        // SAFETY: the handle owns the sender's count, so the batch is alive.
        unsafe { release(self.0, 1) };
    }
}

/// The opaque of a record outside any batch: the offset records of an
/// exactly-once transaction, whose fate the transaction's commit reports.
pub const NO_BATCH: usize = 0;

/// One record's delivery report. Called on librdkafka's delivery thread.
///
/// # Safety
/// `opaque` must be [`NO_BATCH`] or come from [`BatchHandle::opaque`] of a
/// batch this record belongs to, and each record may report only once
/// (librdkafka calls the delivery callback exactly once per produced
/// message).
pub unsafe fn record_done(opaque: usize, result: Result<(), &KafkaError>) {
    if opaque == NO_BATCH {
        return;
    }
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
            (ack.on_complete)(error.map_or(Outcome::Delivered, Outcome::Failed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    /// Calls of the completion, and the last outcome it saw.
    fn counting() -> (Arc<AtomicU32>, Arc<Mutex<Option<String>>>, Completion) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(Mutex::new(None));
        let (c, s) = (calls.clone(), seen.clone());
        let completion: Completion = Box::new(move |outcome| {
            c.fetch_add(1, Ordering::SeqCst);
            *s.lock().unwrap() = Some(format!("{outcome:?}"));
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
        assert_eq!(seen.lock().unwrap().as_deref(), Some("Delivered"));
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
        assert!(
            seen.lock()
                .unwrap()
                .as_deref()
                .is_some_and(|s| s.starts_with("Failed")),
            "{seen:?}"
        );
    }

    #[test]
    fn abandoned_batch_reports_abandoned_once_and_is_freed_after_its_reports() {
        let (calls, seen, completion) = counting();
        let batch = BatchHandle::new(BatchAck::new(5, completion));
        let opaque = batch.opaque();
        batch.abandon(3);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(seen.lock().unwrap().as_deref(), Some("Abandoned"));
        // SAFETY: the two records that were sent report once each; the
        // last one frees the batch (Miri or a sanitizer would flag a leak
        // or a use after free here).
        unsafe {
            record_done(opaque, Ok(()));
            record_done(opaque, Ok(()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "completed again");
    }

    #[test]
    fn a_dropped_handle_abandons_its_batch() {
        let (calls, seen, completion) = counting();
        let batch = BatchHandle::new(BatchAck::new(2, completion));
        let opaque = batch.opaque();
        // SAFETY: both records were handed over and report once each.
        unsafe { record_done(opaque, Ok(())) };
        drop(batch);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(seen.lock().unwrap().as_deref(), Some("Abandoned"));
        // SAFETY: as above; this last report frees the batch.
        unsafe { record_done(opaque, Ok(())) };
        assert_eq!(calls.load(Ordering::SeqCst), 1, "completed again");
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
