//! What becomes of each bad row of one input: counted, logged while few,
//! skipped, made a dead letter, or under `fail` the input's error.

use super::on_error::OnError;
use crate::dead_letter::DeadLetter;
use crate::source::Error;

/// Bad rows of one input logged one by one; later ones are only counted.
pub const LOGGED_BAD_ROWS: u64 = 100;

/// Where a bad row is in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The 1-based line the row starts on.
    Line(u64),
    /// The byte offset the row starts at, for inputs whose lines are not
    /// counted (a file followed from its end, rotated, copied).
    Byte(u64),
}

/// One row that could not be read, as the plugin describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// A short class from a small fixed set (`ragged_row`, `parse_error`,
    /// `invalid_utf8`, `invalid_json`, …): it becomes a metric label, so it
    /// never contains data.
    pub class: &'static str,
    /// What was wrong and what was expected, naming the column if there is
    /// one.
    pub message: String,
    /// Where the row is.
    pub place: Place,
    /// The row as read, without its line terminator.
    pub raw: Vec<u8>,
}

/// What the plugin does with a bad row it just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Leave it out; it was counted (and maybe logged).
    Skip,
    /// Put it in the current run of dead letters
    /// ([`Assembly::push_dead`](super::Assembly::push_dead)).
    Dead(DeadLetter),
}

/// The `on_error` policy applied to the bad rows of one input (a file).
#[derive(Debug)]
pub struct Policy {
    on_error: OnError,
    /// The input, for messages and dead letters.
    file: String,
    /// How many bad rows are logged one by one.
    logged: u64,
    /// Bad rows so far.
    bad: u64,
    /// Log lines not yet taken.
    logs: Vec<String>,
}

impl Policy {
    /// The policy for the bad rows of `file`; the first
    /// [`LOGGED_BAD_ROWS`] are logged.
    pub fn new(on_error: OnError, file: impl Into<String>) -> Policy {
        Policy {
            on_error,
            file: file.into(),
            logged: LOGGED_BAD_ROWS,
            bad: 0,
            logs: Vec::new(),
        }
    }

    /// Logs the first `first` bad rows instead; 0 logs none (nor the line
    /// saying the rest are counted), for a plugin that reports them its
    /// own way.
    pub fn logging(mut self, first: u64) -> Policy {
        self.logged = first;
        self
    }

    /// What is done with bad rows.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// Bad rows met so far.
    pub fn bad(&self) -> u64 {
        self.bad
    }

    /// The log lines kept since the last call, to write as warnings.
    pub fn take_logs(&mut self) -> Vec<String> {
        std::mem::take(&mut self.logs)
    }

    /// Counts `row`, keeps its log line if it is among the first, and says
    /// what to do with it; under `fail` it is the error the input stops
    /// with.
    pub fn judge(&mut self, row: BadRow) -> Result<Verdict, Error> {
        self.bad += 1;
        if self.on_error == OnError::Fail {
            return Err(Error::invalid_data(self.failure(&row)));
        }
        if self.bad <= self.logged {
            let action = match self.on_error {
                OnError::Skip => "skipped",
                _ => "sent to the dead-letter topic",
            };
            self.logs
                .push(format!("Bad row {action}: {}.", self.describe(&row)));
            if self.bad == self.logged {
                self.logs.push(format!(
                    "Further bad rows of {} are counted, not logged.",
                    self.file
                ));
            }
        }
        Ok(match self.on_error {
            OnError::DeadLetter => Verdict::Dead(self.letter(row)),
            _ => Verdict::Skip,
        })
    }

    /// The row, its input, place and class, for a log line.
    fn describe(&self, row: &BadRow) -> String {
        let file = &self.file;
        let (message, class) = (&row.message, row.class);
        match row.place {
            Place::Line(n) => format!("{file} line {n}: {message} ({class})"),
            Place::Byte(b) => format!("{file} byte {b}: {message} ({class})"),
        }
    }

    /// The message of the error a bad row is under `fail`.
    fn failure(&self, row: &BadRow) -> String {
        match row.place {
            Place::Line(_) => format!("bad row at {}", self.describe(row)),
            Place::Byte(b) => format!(
                "{}: the line at byte {b}: {} (on_error = \"fail\")",
                self.file, row.message
            ),
        }
    }

    /// The dead letter of a bad row: the line when it is known, else the
    /// byte offset in front of the message.
    fn letter(&self, row: BadRow) -> DeadLetter {
        let (message, line) = match row.place {
            Place::Line(n) => (row.message, n),
            Place::Byte(b) => (format!("byte {b}: {}", row.message), 0),
        };
        DeadLetter {
            raw: row.raw,
            error_class: row.class.to_owned(),
            message,
            file: self.file.clone(),
            line,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ErrorCategory;

    /// A bad row at `place` with a message naming a column.
    pub(in super::super) fn row(class: &'static str, place: Place) -> BadRow {
        BadRow {
            class,
            message: "column 2 (`price`): `abc` is not a valid float64".into(),
            place,
            raw: b"1,abc".to_vec(),
        }
    }

    #[test]
    fn the_first_bad_rows_of_an_input_are_logged_then_one_line_says_the_rest_are_counted() {
        let mut policy = Policy::new(OnError::Skip, "/in/a.csv").logging(2);
        for line in 1..=5 {
            assert_eq!(
                policy.judge(row("parse_error", Place::Line(line))),
                Ok(Verdict::Skip)
            );
        }
        assert_eq!(policy.bad(), 5);
        assert_eq!(
            policy.take_logs(),
            [
                "Bad row skipped: /in/a.csv line 1: column 2 (`price`): `abc` is not a valid \
                 float64 (parse_error).",
                "Bad row skipped: /in/a.csv line 2: column 2 (`price`): `abc` is not a valid \
                 float64 (parse_error).",
                "Further bad rows of /in/a.csv are counted, not logged.",
            ]
        );
        assert!(policy.take_logs().is_empty());

        let mut quiet = Policy::new(OnError::DeadLetter, "/in/a.log").logging(0);
        quiet.judge(row("invalid_json", Place::Byte(7))).unwrap();
        assert_eq!(quiet.bad(), 1);
        assert!(quiet.take_logs().is_empty());
        let mut default = Policy::new(OnError::Skip, "/in/b.csv");
        for line in 1..=LOGGED_BAD_ROWS + 10 {
            default.judge(row("ragged_row", Place::Line(line))).unwrap();
        }
        assert_eq!(default.take_logs().len() as u64, LOGGED_BAD_ROWS + 1);
    }

    #[test]
    fn under_fail_a_bad_row_is_a_permanent_invalid_data_error_naming_file_and_place() {
        let mut policy = Policy::new(OnError::Fail, "/in/a.csv");
        let e = policy
            .judge(row("parse_error", Place::Line(3)))
            .unwrap_err();
        assert_eq!(e.category(), ErrorCategory::InvalidData);
        assert!(e.category().is_permanent());
        assert_eq!(
            e.message(),
            "bad row at /in/a.csv line 3: column 2 (`price`): `abc` is not a valid float64 \
             (parse_error)"
        );
        assert!(policy.take_logs().is_empty());

        let mut policy = Policy::new(OnError::Fail, "/var/log/a.log").logging(0);
        let mut bad = row("invalid_json", Place::Byte(11));
        bad.message = "expected a JSON object".into();
        let e = policy.judge(bad).unwrap_err();
        assert_eq!(e.category(), ErrorCategory::InvalidData);
        assert_eq!(
            e.message(),
            "/var/log/a.log: the line at byte 11: expected a JSON object (on_error = \"fail\")"
        );
    }

    #[test]
    fn under_dead_letter_a_bad_row_becomes_a_dead_letter_with_its_raw_bytes_and_place() {
        let mut policy = Policy::new(OnError::DeadLetter, "/in/a.csv");
        let Ok(Verdict::Dead(letter)) = policy.judge(row("parse_error", Place::Line(4))) else {
            panic!("not a dead letter");
        };
        assert_eq!(
            letter,
            DeadLetter {
                raw: b"1,abc".to_vec(),
                error_class: "parse_error".into(),
                message: "column 2 (`price`): `abc` is not a valid float64".into(),
                file: "/in/a.csv".into(),
                line: 4,
            }
        );
        assert_eq!(
            policy.take_logs(),
            [
                "Bad row sent to the dead-letter topic: /in/a.csv line 4: column 2 (`price`): \
                 `abc` is not a valid float64 (parse_error)."
            ]
        );
        // Without a line number the byte offset goes in the message.
        let Ok(Verdict::Dead(letter)) = policy.judge(row("invalid_json", Place::Byte(20))) else {
            panic!("not a dead letter");
        };
        assert_eq!(letter.line, 0);
        assert!(
            letter.message.starts_with("byte 20: column 2"),
            "{letter:?}"
        );
    }
}
