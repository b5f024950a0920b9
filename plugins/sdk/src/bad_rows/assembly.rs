//! The chunk being assembled: good rows or a run of dead letters, handed
//! out in input order.

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use super::on_error::OnError;
use crate::dead_letter::{DeadLetter, dead_letter_batch};

/// Good rows being gathered, in whatever form a plugin builds them (an
/// Arrow builder, a list of parsed lines).
pub trait GoodRows {
    /// What the gathered rows are handed out as.
    type Out;
    /// What building them can fail with.
    type Error;

    /// Rows gathered.
    fn len(&self) -> usize;

    /// Whether no row is gathered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands the rows out, leaving none.
    fn finish(&mut self) -> Result<Self::Out, Self::Error>;
}

/// One run of rows as an [`Assembly`] hands it out.
#[derive(Debug)]
pub enum Run<T> {
    /// Good rows.
    Rows(T),
    /// Bad rows, for the dead-letter topic.
    Dead(Vec<DeadLetter>),
}

impl Run<RecordBatch> {
    /// The batch to send: the rows, or the bad rows as one
    /// [`dead_letter_batch`].
    pub fn into_records(self) -> Result<RecordBatch, ArrowError> {
        match self {
            Run::Rows(records) => Ok(records),
            Run::Dead(letters) => dead_letter_batch(&letters),
        }
    }
}

/// The chunk being assembled: good rows or a run of dead letters, never
/// both.
///
/// A plugin reads rows in order and, before adding one, checks whether it
/// ends the run being gathered: a good row ends a run of dead letters
/// ([`Assembly::has_dead`]), a bad row one of good rows
/// ([`Assembly::bad_row_waits`]). If it does, it hands the run out with
/// [`Assembly::take`] first (or stops the chunk there and reads the row
/// again for the next one).
#[derive(Debug)]
pub struct Assembly<R> {
    rows: R,
    dead: Vec<DeadLetter>,
}

impl<R: GoodRows> Assembly<R> {
    /// An empty chunk whose good rows go into `rows`.
    pub fn new(rows: R) -> Self {
        Assembly {
            rows,
            dead: Vec::new(),
        }
    }

    /// The good rows gathered.
    pub fn rows(&self) -> &R {
        &self.rows
    }

    /// The good rows, to add one to. Check [`Assembly::has_dead`] first.
    pub fn rows_mut(&mut self) -> &mut R {
        &mut self.rows
    }

    /// Rows gathered, good or dead.
    pub fn len(&self) -> usize {
        self.rows.len() + self.dead.len()
    }

    /// Whether nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether good rows are gathered: a dead letter must wait until they
    /// are handed out.
    pub fn has_rows(&self) -> bool {
        !self.rows.is_empty()
    }

    /// Whether dead letters are gathered: a good row must wait until they
    /// are handed out.
    pub fn has_dead(&self) -> bool {
        !self.dead.is_empty()
    }

    /// Whether a bad row read now must wait until the good rows gathered
    /// are handed out: its dead letter (or, under `fail`, its error) comes
    /// after them. A row to skip leaves nothing behind, so it never waits.
    pub fn bad_row_waits(&self, on_error: OnError) -> bool {
        on_error != OnError::Skip && self.has_rows()
    }

    /// Adds a dead letter to the run. Check [`Assembly::has_rows`] first.
    pub fn push_dead(&mut self, letter: DeadLetter) {
        debug_assert!(!self.has_rows(), "a dead letter joined good rows");
        self.dead.push(letter);
    }

    /// Hands out what was gathered, leaving the chunk empty; `None` when
    /// nothing was.
    pub fn take(&mut self) -> Result<Option<Run<R::Out>>, R::Error> {
        if self.has_dead() {
            return Ok(Some(Run::Dead(std::mem::take(&mut self.dead))));
        }
        if self.has_rows() {
            return Ok(Some(Run::Rows(self.rows.finish()?)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::bad_rows::policy::tests::row;
    use crate::bad_rows::{Place, Policy, Verdict};
    use crate::source::Error;

    /// Good rows as their numbers.
    #[derive(Debug, Default)]
    struct Numbers(Vec<u32>);

    impl GoodRows for Numbers {
        type Out = Vec<u32>;
        type Error = Infallible;
        fn len(&self) -> usize {
            self.0.len()
        }
        fn finish(&mut self) -> Result<Vec<u32>, Infallible> {
            Ok(std::mem::take(&mut self.0))
        }
    }

    /// A run as text: `3,4` for good rows, `dead 5,6` for dead letters.
    fn shown(run: Run<Vec<u32>>) -> String {
        let join = |v: Vec<String>| v.join(",");
        match run {
            Run::Rows(rows) => join(rows.iter().map(u32::to_string).collect()),
            Run::Dead(letters) => format!(
                "dead {}",
                join(letters.iter().map(|l| l.line.to_string()).collect())
            ),
        }
    }

    /// Reads `input` (row numbers; odd ones are bad) the way a plugin that
    /// keeps reading does: each run goes out before the other kind starts.
    fn runs(on_error: OnError, input: &[u32]) -> (Vec<String>, Option<Error>) {
        let mut policy = Policy::new(on_error, "/in/a.csv");
        let mut assembly = Assembly::new(Numbers::default());
        let mut out = Vec::new();
        let mut failure = None;
        for &n in input {
            let good = n % 2 == 0;
            let ends_run = if good {
                assembly.has_dead()
            } else {
                assembly.bad_row_waits(on_error)
            };
            if ends_run {
                let Ok(Some(run)) = assembly.take() else {
                    panic!("a run ended but nothing was gathered");
                };
                out.push(shown(run));
            }
            if good {
                assembly.rows_mut().0.push(n);
                continue;
            }
            match policy.judge(row("parse_error", Place::Line(u64::from(n)))) {
                Ok(Verdict::Skip) => {}
                Ok(Verdict::Dead(letter)) => assembly.push_dead(letter),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let Ok(last) = assembly.take();
        out.extend(last.map(shown));
        (out, failure)
    }

    #[test]
    fn runs_go_out_in_input_order_and_never_mix_good_and_bad_rows() {
        let input = [2, 4, 5, 7, 6, 9, 8, 10];
        let (out, failure) = runs(OnError::DeadLetter, &input);
        assert_eq!(out, ["2,4", "dead 5,7", "6", "dead 9", "8,10"]);
        assert!(failure.is_none());
        // Skipped rows leave no trace and end no run.
        let (out, _) = runs(OnError::Skip, &input);
        assert_eq!(out, ["2,4,6,8,10"]);
        // Under fail the good rows before the bad one go out, then the error.
        let (out, failure) = runs(OnError::Fail, &input);
        assert_eq!(out, ["2,4"]);
        assert!(failure.unwrap().message().contains("line 5"));
        let (out, _) = runs(OnError::DeadLetter, &[1, 3, 2]);
        assert_eq!(out, ["dead 1,3", "2"]);
    }

    #[test]
    fn an_assembly_holds_one_kind_of_row_and_is_empty_once_taken() {
        let mut assembly = Assembly::new(Numbers::default());
        assert!(assembly.is_empty() && !assembly.bad_row_waits(OnError::Fail));
        assembly.rows_mut().0.extend([2, 4]);
        assert_eq!(assembly.len(), 2);
        assert!(assembly.bad_row_waits(OnError::Fail));
        assert!(assembly.bad_row_waits(OnError::DeadLetter));
        assert!(!assembly.bad_row_waits(OnError::Skip));
        assert!(!assembly.has_dead());
        let Ok(Some(Run::Rows(rows))) = assembly.take() else {
            panic!("no rows");
        };
        assert_eq!(rows, [2, 4]);
        assert!(assembly.is_empty());
        let Ok(None) = assembly.take() else {
            panic!("rows handed out twice");
        };
    }

    #[test]
    fn a_dead_run_becomes_one_dead_letter_batch() {
        let mut policy = Policy::new(OnError::DeadLetter, "/in/a.csv");
        let letters = [3, 4]
            .map(|n| match policy.judge(row("ragged_row", Place::Line(n))) {
                Ok(Verdict::Dead(letter)) => letter,
                other => panic!("{other:?}"),
            })
            .to_vec();
        let batch = Run::Dead(letters).into_records().unwrap();
        assert!(crate::dead_letter::is_dead_letter(batch.schema().as_ref()));
        assert_eq!(batch.num_rows(), 2);
        let rows = RecordBatch::new_empty(batch.schema());
        assert_eq!(Run::Rows(rows).into_records().unwrap().num_rows(), 0);
    }
}
