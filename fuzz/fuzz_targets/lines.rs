//! The line splitter and the multiline joiner on arbitrary bytes fed in
//! arbitrary pieces: no panic, lines never exceed `max_line_bytes`,
//! positions only move forward and end where the input ends, and every
//! byte is accounted for by exactly one line or the partial tail.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use tributary_logfile::config::{Multiline, Overflow};
use tributary_logfile::lines::{Joiner, Position, Splitter};

const MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let overflow = if mode & 1 == 0 {
        Overflow::Truncate
    } else {
        Overflow::Skip
    };
    let mut splitter = Splitter::new(MAX, overflow, Position::default());
    let mut lines = Vec::new();
    // Piece sizes come from the input itself, so cuts fall everywhere.
    let mut rest = body;
    let mut step = usize::from(mode >> 1).max(1);
    while !rest.is_empty() {
        let n = step.min(rest.len());
        splitter.feed(&rest[..n], &mut lines);
        rest = &rest[n..];
        step = step % 13 + 1;
    }
    let mut last = 0;
    for line in &lines {
        assert_eq!(line.before.offset, last, "lines are contiguous");
        assert!(
            line.end.offset > line.before.offset,
            "a line consumes bytes"
        );
        if let Some(text) = &line.text {
            assert!(text.len() <= MAX, "line of {} bytes over {MAX}", text.len());
        }
        last = line.end.offset;
    }
    assert_eq!(splitter.offset(), body.len() as u64, "every byte consumed");
    let tail = splitter.flush_partial();
    if let Some(tail) = &tail {
        assert_eq!(tail.before.offset, last);
    }

    let rule = match mode % 3 {
        0 => None,
        1 => Some(Multiline::Start(Regex::new(r"^\S").unwrap())),
        _ => Some(Multiline::Continue(Regex::new(r"^\s").unwrap())),
    };
    let mut joiner = Joiner::new(rule.as_ref(), Duration::from_millis(5), MAX * 4);
    let mut events = Vec::new();
    let now = Instant::now();
    for line in lines.into_iter().chain(tail) {
        joiner.push(line, now, &mut events);
    }
    joiner.flush_due(now + Duration::from_secs(1), &mut events);
    joiner.flush(&mut events);
    assert!(
        joiner.pending_start().is_none(),
        "flushed joiner holds nothing"
    );
});
