//! Bytes to lines, and lines to (multiline) events, with the file position
//! after each: the checkpoint a batch ending there may carry.
//!
//! Memory per file is bounded by `max_line_bytes`: a longer line is cut (or
//! dropped) as soon as it passes the limit, before its newline arrives.

use std::time::{Duration, Instant};

use regex::bytes::Regex as BytesRegex;

use crate::config::{Multiline, Overflow};

/// A place in a file a reader can resume from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Bytes consumed.
    pub offset: u64,
    /// CRC-32 of the bytes `[0, offset)`: recognises a copy of the file
    /// (copytruncate) that holds the same bytes up to here.
    pub crc: u32,
    /// The offset is inside an over-long line whose first part was sent:
    /// the rest up to the newline is dropped on resume too.
    pub skip_to_newline: bool,
}

/// One line, or the part of it that is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Position before the line's first byte.
    pub before: Position,
    /// The line without its terminator (`\n` or `\r\n`); `None` when it was
    /// dropped (over-long with the `skip` policy, or the rest of a
    /// truncated one).
    pub text: Option<Vec<u8>>,
    /// Position after what the line consumed.
    pub end: Position,
    /// The line was cut to `max_line_bytes`.
    pub truncated: bool,
}

/// Splits a file's bytes into lines, keeping the running CRC.
#[derive(Debug, Clone)]
pub struct Splitter {
    max: usize,
    overflow: Overflow,
    buf: Vec<u8>,
    /// Position at the start of the line being collected.
    line_start: Position,
    offset: u64,
    hasher: crc32fast::Hasher,
    discarding: bool,
    /// Lines that passed `max_line_bytes`, since creation.
    pub overlong: u64,
}

impl Splitter {
    /// A splitter resuming at `at`.
    pub fn new(max: usize, overflow: Overflow, at: Position) -> Splitter {
        Splitter {
            max,
            overflow,
            buf: Vec::new(),
            line_start: at,
            offset: at.offset,
            // The CRC of [0, offset) continues from the stored value.
            hasher: crc32fast::Hasher::new_with_initial_len(at.crc, at.offset),
            discarding: at.skip_to_newline,
            overlong: 0,
        }
    }

    /// Bytes consumed so far (including a partial line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The position after the last complete line, where a reader that
    /// forgets the partial line resumes.
    pub fn line_start(&self) -> Position {
        self.line_start
    }

    /// Whether a partial line is held.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    fn here(&self, skip_to_newline: bool) -> Position {
        Position {
            offset: self.offset,
            crc: self.hasher.clone().finalize(),
            skip_to_newline,
        }
    }

    /// Consumes `data`, appending every line it completes to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Line>) {
        while !data.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    let segment = &data[..i];
                    self.hasher.update(&data[..=i]);
                    self.offset += i as u64 + 1;
                    let before = self.line_start;
                    let (text, truncated) = if self.discarding {
                        self.discarding = false;
                        (None, false)
                    } else if self.buf.len() + segment.len() > self.max {
                        self.overlong += 1;
                        match self.overflow {
                            Overflow::Truncate => {
                                let room = self.max - self.buf.len();
                                let mut t = std::mem::take(&mut self.buf);
                                t.extend_from_slice(&segment[..room]);
                                (Some(t), true)
                            }
                            Overflow::Skip => (None, false),
                        }
                    } else {
                        let mut t = std::mem::take(&mut self.buf);
                        t.extend_from_slice(segment);
                        if t.last() == Some(&b'\r') {
                            t.pop();
                        }
                        (Some(t), false)
                    };
                    self.buf.clear();
                    let end = self.here(false);
                    self.line_start = end;
                    out.push(Line {
                        before,
                        text,
                        end,
                        truncated,
                    });
                    data = &data[i + 1..];
                }
                None => {
                    self.hasher.update(data);
                    self.offset += data.len() as u64;
                    if !self.discarding && self.buf.len() + data.len() > self.max {
                        self.overlong += 1;
                        self.discarding = true;
                        let before = self.line_start;
                        match self.overflow {
                            Overflow::Truncate => {
                                let room = self.max - self.buf.len();
                                let mut t = std::mem::take(&mut self.buf);
                                t.extend_from_slice(&data[..room]);
                                let end = self.here(true);
                                self.line_start = end;
                                out.push(Line {
                                    before,
                                    text: Some(t),
                                    end,
                                    truncated: true,
                                });
                            }
                            Overflow::Skip => self.buf.clear(),
                        }
                    } else if !self.discarding {
                        self.buf.extend_from_slice(data);
                    }
                    data = &[];
                }
            }
        }
    }

    /// Sends the partial line held, if any: the file will not complete it
    /// (released) or it waited long enough. What follows starts a new line.
    pub fn flush_partial(&mut self) -> Option<Line> {
        if self.buf.is_empty() {
            return None;
        }
        let before = self.line_start;
        let text = std::mem::take(&mut self.buf);
        let end = self.here(false);
        self.line_start = end;
        Some(Line {
            before,
            text: Some(text),
            end,
            truncated: false,
        })
    }
}

/// A complete event: one line, or several joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Byte offset of the event's first byte.
    pub start: u64,
    /// The text, lines joined with `\n`.
    pub text: Vec<u8>,
    /// Position after the event.
    pub end: Position,
    /// Cut to `max_line_bytes`.
    pub truncated: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    before: Position,
    event: Event,
    last: Instant,
}

/// Joins continuation lines into events.
#[derive(Debug, Clone)]
pub struct Joiner {
    rule: Option<(bool, BytesRegex)>,
    timeout: Duration,
    max: usize,
    pending: Option<Pending>,
}

impl Joiner {
    /// A joiner by `rule`; without one every line is an event.
    pub fn new(rule: Option<&Multiline>, timeout: Duration, max: usize) -> Joiner {
        // The patterns compiled as text regexes already; as byte regexes
        // they accept the same syntax, so this cannot fail in practice and
        // falls back to no joining if it ever did.
        let rule = rule.and_then(|m| match m {
            Multiline::Start(r) => BytesRegex::new(r.as_str()).ok().map(|b| (true, b)),
            Multiline::Continue(r) => BytesRegex::new(r.as_str()).ok().map(|b| (false, b)),
        });
        Joiner {
            rule,
            timeout,
            max,
            pending: None,
        }
    }

    /// Where a reader must resume so as not to lose the pending event;
    /// `None` when nothing is pending.
    pub fn pending_start(&self) -> Option<Position> {
        self.pending.as_ref().map(|p| p.before)
    }

    /// Takes one line; completed events go to `out`.
    pub fn push(&mut self, line: Line, now: Instant, out: &mut Vec<Event>) {
        let Some(text) = line.text else {
            // A dropped line: part of nothing, but the position moves.
            if let Some(p) = &mut self.pending {
                p.event.end = line.end;
            }
            return;
        };
        let Some((is_start, regex)) = &self.rule else {
            out.push(Event {
                start: line.before.offset,
                text,
                end: line.end,
                truncated: line.truncated,
            });
            return;
        };
        let matched = regex.is_match(&text);
        let joins = if *is_start { !matched } else { matched };
        match &mut self.pending {
            Some(p) if joins => {
                let e = &mut p.event;
                if e.text.len() + 1 + text.len() > self.max {
                    let room = self.max.saturating_sub(e.text.len() + 1);
                    if room > 0 {
                        e.text.push(b'\n');
                        e.text.extend_from_slice(&text[..room.min(text.len())]);
                    }
                    e.truncated = true;
                } else {
                    e.text.push(b'\n');
                    e.text.extend_from_slice(&text);
                }
                e.truncated |= line.truncated;
                e.end = line.end;
                p.last = now;
            }
            _ => {
                if let Some(p) = self.pending.take() {
                    out.push(p.event);
                }
                self.pending = Some(Pending {
                    before: line.before,
                    event: Event {
                        start: line.before.offset,
                        text,
                        end: line.end,
                        truncated: line.truncated,
                    },
                    last: now,
                });
            }
        }
    }

    /// Sends the pending event if it has waited long enough.
    pub fn flush_due(&mut self, now: Instant, out: &mut Vec<Event>) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| now.duration_since(p.last) >= self.timeout)
        {
            self.flush(out);
        }
    }

    /// Sends the pending event now.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        if let Some(p) = self.pending.take() {
            out.push(p.event);
        }
    }

    /// When the pending event becomes due, if any.
    pub fn due_at(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.last + self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, overflow: Overflow, chunks: &[&[u8]]) -> (Vec<Line>, Splitter) {
        let mut s = Splitter::new(max, overflow, Position::default());
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out);
        }
        (out, s)
    }

    fn texts(lines: &[Line]) -> Vec<Option<String>> {
        lines
            .iter()
            .map(|l| {
                l.text
                    .as_ref()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
            })
            .collect()
    }

    #[test]
    fn lines_split_across_chunks_are_joined_and_crlf_is_stripped() {
        let (lines, s) = split(100, Overflow::Truncate, &[b"ab", b"c\nde\r", b"\nf"]);
        assert_eq!(texts(&lines), [Some("abc".into()), Some("de".into())]);
        assert_eq!(lines[0].end.offset, 4);
        assert_eq!(lines[1].before.offset, 4);
        assert_eq!(lines[1].end.offset, 8);
        assert!(s.has_partial());
        assert_eq!(s.line_start().offset, 8);
        assert_eq!(s.offset(), 9);
    }

    #[test]
    fn positions_carry_the_crc_of_the_prefix() {
        let (lines, _) = split(100, Overflow::Truncate, &[b"one\ntwo\n"]);
        assert_eq!(lines[0].end.crc, crc32fast::hash(b"one\n"));
        assert_eq!(lines[1].end.crc, crc32fast::hash(b"one\ntwo\n"));
        // Resuming continues the same CRC.
        let mut s = Splitter::new(100, Overflow::Truncate, lines[0].end);
        let mut out = Vec::new();
        s.feed(b"two\n", &mut out);
        assert_eq!(out[0].end, lines[1].end);
    }

    #[test]
    fn overlong_lines_are_truncated_once_and_reading_goes_on() {
        let long = vec![b'x'; 50];
        let (lines, s) = split(16, Overflow::Truncate, &[&long, &long, b"\nok\n"]);
        assert_eq!(
            texts(&lines),
            [Some("x".repeat(16)), None, Some("ok".into())]
        );
        assert!(lines[0].truncated);
        assert!(lines[0].end.skip_to_newline, "resume must drop the rest");
        assert_eq!(s.overlong, 1);
        // Memory stays bounded while the line grows.
        assert!(s.buf.capacity() <= 64);
    }

    #[test]
    fn overlong_lines_are_skipped_by_policy() {
        let (lines, s) = split(4, Overflow::Skip, &[b"abcdefgh\nok\nabcdef", b"gh\n"]);
        assert_eq!(texts(&lines), [None, Some("ok".into()), None]);
        assert_eq!(s.overlong, 2);
        assert_eq!(lines[2].end.offset, 21);
    }

    #[test]
    fn a_resume_inside_a_truncated_line_drops_its_rest() {
        let at = Position {
            offset: 10,
            crc: 0,
            skip_to_newline: true,
        };
        let mut s = Splitter::new(100, Overflow::Truncate, at);
        let mut out = Vec::new();
        s.feed(b"rest\nnext\n", &mut out);
        assert_eq!(texts(&out), [None, Some("next".into())]);
    }

    #[test]
    fn a_flushed_partial_line_is_not_sent_again() {
        let (mut lines, mut s) = split(100, Overflow::Truncate, &[b"a\npart"]);
        lines.push(s.flush_partial().unwrap());
        assert!(s.flush_partial().is_none());
        s.feed(b"ial\n", &mut lines);
        assert_eq!(
            texts(&lines),
            [Some("a".into()), Some("part".into()), Some("ial".into())]
        );
        assert_eq!(lines[1].end.offset, 6);
    }

    #[test]
    fn any_chunking_gives_the_same_lines_and_positions() {
        let mut data = Vec::new();
        let mut state = 7u32;
        for _ in 0..3000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.push(match (state >> 16) % 9 {
                0 => b'\n',
                1 => b'\r',
                2 => 0xff,
                _ => b'a' + ((state >> 20) % 26) as u8,
            });
        }
        for overflow in [Overflow::Truncate, Overflow::Skip] {
            let (whole, _) = split(8, overflow, &[&data]);
            for seed in 1..40u32 {
                let mut chunks = Vec::new();
                let mut rest = &data[..];
                let mut st = seed;
                while !rest.is_empty() {
                    st = st.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let n = (((st >> 16) % 23) as usize).min(rest.len()).max(1);
                    chunks.push(&rest[..n]);
                    rest = &rest[n..];
                }
                let (pieces, s) = split(8, overflow, &chunks);
                // A line cut while incomplete is cut at the same length;
                // the dropped rest then ends in a marker line of its own.
                let texts_whole: Vec<_> = whole.iter().map(|l| l.text.clone()).collect();
                let texts_pieces: Vec<_> = pieces.iter().map(|l| l.text.clone()).collect();
                assert_eq!(
                    texts_whole.iter().flatten().collect::<Vec<_>>(),
                    texts_pieces.iter().flatten().collect::<Vec<_>>(),
                    "seed {seed}"
                );
                assert!(s.buf.len() <= 8);
                let last = pieces.last().unwrap().end;
                assert_eq!(last.crc, crc32fast::hash(&data[..last.offset as usize]));
            }
        }
    }

    #[test]
    fn multiline_start_pattern_joins_stack_traces() {
        let rule = Multiline::Start(regex::Regex::new(r"^\d").unwrap());
        let mut j = Joiner::new(Some(&rule), Duration::from_secs(1), 1000);
        let (lines, _) = split(
            100,
            Overflow::Truncate,
            &[b"1 boom\n  at a\n  at b\n2 ok\n3 next\n"],
        );
        let now = Instant::now();
        let mut events = Vec::new();
        for l in lines {
            j.push(l, now, &mut events);
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].text, b"1 boom\n  at a\n  at b");
        assert_eq!(events[0].end.offset, 21);
        assert_eq!(events[1].text, b"2 ok");
        // "3 next" is pending: a checkpoint must stay before it.
        assert_eq!(j.pending_start().unwrap().offset, 26);
        j.flush_due(now + Duration::from_millis(999), &mut events);
        assert_eq!(events.len(), 2);
        j.flush_due(now + Duration::from_secs(1), &mut events);
        assert_eq!(events[2].text, b"3 next");
        assert!(j.pending_start().is_none());
    }

    #[test]
    fn multiline_continue_pattern_and_size_limit() {
        let rule = Multiline::Continue(regex::Regex::new(r"^\s").unwrap());
        let mut j = Joiner::new(Some(&rule), Duration::from_secs(1), 12);
        let (lines, _) = split(100, Overflow::Truncate, &[b"head\n more\n much more\nx\n"]);
        let now = Instant::now();
        let mut events = Vec::new();
        for l in lines {
            j.push(l, now, &mut events);
        }
        j.flush(&mut events);
        assert_eq!(events[0].text, b"head\n more\n ");
        assert!(events[0].truncated);
        assert_eq!(events[1].text, b"x");
    }
}
