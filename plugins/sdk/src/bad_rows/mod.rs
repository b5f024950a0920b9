//! Rows a source cannot read, handled the same way by every plugin.
//!
//! * [`OnError`]: the `on_error = "fail" | "skip" | "dead_letter"` option,
//!   declared with one call ([`OnError::option`]) and read back with
//!   [`OnError::from_options`].
//! * [`Policy`]: what becomes of each [`BadRow`] of one input. It counts
//!   them, keeps a log line for the first [`LOGGED_BAD_ROWS`] and then one
//!   saying the rest are only counted, and returns a [`Verdict`] (skip, or
//!   a [`DeadLetter`](crate::dead_letter::DeadLetter)); under `fail` the
//!   bad row is an
//!   [`ErrorCategory::InvalidData`](crate::ErrorCategory::InvalidData)
//!   error naming the input and the row's place.
//! * [`Assembly`]: good rows and bad rows never share a batch. A chunk being
//!   assembled holds good rows or a run of dead letters, and the plugin
//!   hands each run out before it starts the other kind, so a dead-letter
//!   batch sits between the good batches around it, in input order, and
//!   each batch's checkpoint lies after its own rows.
//! * [`Throttle`]: a warning repeated for every chunk (rows skipped, lines
//!   too long) is logged at most once per interval per kind, and the
//!   warnings held back are counted.

mod assembly;
mod on_error;
mod policy;
mod throttle;

pub use assembly::{Assembly, GoodRows, Run};
pub use on_error::OnError;
pub use policy::{BadRow, LOGGED_BAD_ROWS, Place, Policy, Verdict};
pub use throttle::Throttle;
