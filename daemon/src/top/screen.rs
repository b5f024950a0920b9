//! What `top` shows: rates from the difference of two samples, and the
//! lines of one frame. Pure functions of the samples and the clock, so the
//! unit tests below check the arithmetic and the layout without a daemon
//! or a terminal.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::api::{KafkaSample, Sample, SourceSample};

/// Bold, reverse video: the column headings.
const HEADING: &str = "\x1b[1;7m";
/// White on red: the banner of an unreachable daemon.
const ALERT: &str = "\x1b[1;37;41m";
/// Red: a source that failed or waits to restart.
const FAILING: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// A source's line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The sample it shows.
    pub source: SourceSample,
    /// Records acknowledged per second since the previous sample; `None`
    /// on the first sample, or when the counter went back (the daemon or
    /// the source was replaced).
    pub records_per_sec: Option<f64>,
    /// Value bytes acknowledged per second, likewise.
    pub bytes_per_sec: Option<f64>,
}

/// Why the daemon did not answer, and since when.
#[derive(Debug, Clone)]
struct Outage {
    since: Instant,
    error: String,
}

/// The state of the view between frames.
#[derive(Debug)]
pub struct Screen {
    url: String,
    interval: Duration,
    /// The latest answer; rates need it when the next one arrives.
    last: Option<Sample>,
    rows: Vec<Row>,
    /// When the rows were read: during an outage they are the last known.
    answered_at: Option<Instant>,
    outage: Option<Outage>,
}

impl Screen {
    /// A view of the daemon at `url`, polled every `interval`, before the
    /// first answer.
    pub fn new(url: &str, interval: Duration) -> Screen {
        Screen {
            url: url.to_owned(),
            interval,
            last: None,
            rows: Vec::new(),
            answered_at: None,
            outage: None,
        }
    }

    /// Takes in the result of a poll at `now`.
    pub fn update(&mut self, result: Result<Sample, String>, now: Instant) {
        match result {
            Ok(sample) => {
                self.rows = rows(self.last.as_ref(), &sample);
                self.answered_at = Some(sample.at);
                self.last = Some(sample);
                self.outage = None;
            }
            Err(error) => {
                let since = self.outage.as_ref().map_or(now, |o| o.since);
                self.outage = Some(Outage { since, error });
                // Counters may restart with the daemon: the first answer
                // after an outage shows no rate rather than a wrong one.
                // Nor does the table while the daemon is away: the last
                // known rate is not the current one.
                self.last = None;
                for row in &mut self.rows {
                    row.records_per_sec = None;
                    row.bytes_per_sec = None;
                }
            }
        }
    }

    /// The error of the current outage, if the daemon does not answer.
    pub fn outage(&self) -> Option<&str> {
        self.outage.as_ref().map(|o| o.error.as_str())
    }

    /// The frame at `now`: at most `height` lines, each cut to `width`
    /// characters (a wrapped line would scroll the terminal). `styled`
    /// adds ANSI colours.
    pub fn render(&self, now: Instant, width: usize, height: usize, styled: bool) -> Vec<String> {
        let mut lines: Vec<(String, Option<&str>)> = Vec::new();
        let sources = match self.rows.len() {
            1 => "1 source".to_owned(),
            n => format!("{n} sources"),
        };
        lines.push((
            format!(
                "tributary top - {} - every {} - {sources}{}",
                self.url,
                age(self.interval.as_secs_f64()),
                if styled { " - q quits" } else { "" }
            ),
            None,
        ));
        if let Some(outage) = &self.outage {
            let down_for = now.saturating_duration_since(outage.since).as_secs();
            lines.push((
                format!(
                    "daemon at {} not reachable: {} (since {down_for}s)",
                    self.url, outage.error
                ),
                Some(ALERT),
            ));
            if let Some(at) = self.answered_at {
                lines.push((
                    format!(
                        "the table below is the last answer, {} old",
                        age(now.saturating_duration_since(at).as_secs_f64())
                    ),
                    None,
                ));
            }
        } else if self.last.is_none() {
            lines.push((format!("connecting to {} ...", self.url), None));
        }
        lines.push((String::new(), None));
        let table = table(&self.rows);
        for (i, (line, failing)) in table.into_iter().enumerate() {
            let style = match (i, failing) {
                (0, _) => Some(HEADING),
                (_, true) => Some(FAILING),
                _ => None,
            };
            lines.push((line, style));
        }
        if self.outage.is_none()
            && let Some(sample) = &self.last
        {
            lines.push((String::new(), None));
            for line in kafka_lines(sample.kafka.as_ref()) {
                lines.push((line, None));
            }
        }
        let errors: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| {
                let e = r.source.last_error.as_deref()?;
                Some(format!("  {}: {}", r.source.name, e.replace('\n', " ")))
            })
            .collect();
        if !errors.is_empty() {
            lines.push((String::new(), None));
            lines.push(("Last errors:".to_owned(), None));
            lines.extend(errors.into_iter().map(|e| (e, None)));
        }
        lines
            .into_iter()
            .take(height)
            .map(|(text, style)| {
                let text = clip(&text, width);
                match style {
                    Some(style) if styled => format!("{style}{text}{RESET}"),
                    _ => text,
                }
            })
            .collect()
    }
}

/// Each source of `current` with its rates since `previous`.
pub fn rows(previous: Option<&Sample>, current: &Sample) -> Vec<Row> {
    let before: HashMap<&str, &SourceSample> = previous
        .map(|p| p.sources.iter().map(|s| (s.name.as_str(), s)).collect())
        .unwrap_or_default();
    let seconds = previous.map_or(0.0, |p| {
        current.at.saturating_duration_since(p.at).as_secs_f64()
    });
    let rate = |now: u64, then: Option<u64>| -> Option<f64> {
        let then = then?;
        (seconds > 0.0 && now >= then).then(|| (now - then) as f64 / seconds)
    };
    current
        .sources
        .iter()
        .map(|s| {
            let old = before.get(s.name.as_str());
            Row {
                records_per_sec: rate(s.records_produced, old.map(|o| o.records_produced)),
                bytes_per_sec: rate(s.bytes_produced, old.map(|o| o.bytes_produced)),
                source: s.clone(),
            }
        })
        .collect()
}

/// The headings and one line per row, columns aligned; each line with
/// whether its source is failing.
fn table(rows: &[Row]) -> Vec<(String, bool)> {
    const HEADINGS: [&str; 10] = [
        "SOURCE",
        "TYPE",
        "STATE",
        "REC/S",
        "BYTES/S",
        "LAG",
        "IN FLIGHT",
        "COMMIT AGE",
        "ERRORS",
        "RESTARTS",
    ];
    /// Columns after the first three hold numbers and are right-aligned.
    const TEXT_COLUMNS: usize = 3;
    /// Names longer than this are cut, so one long name cannot push every
    /// number off the screen.
    const MAX_TEXT: usize = 32;
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let s = &r.source;
            let errors = match (s.records_failed, s.records_dead_lettered) {
                (None, None) => "-".to_owned(),
                (failed, dead) => (failed.unwrap_or(0) + dead.unwrap_or(0)).to_string(),
            };
            [
                clip(&s.name, MAX_TEXT),
                clip(&s.plugin, MAX_TEXT),
                s.state.clone(),
                r.records_per_sec.map_or_else(|| "-".to_owned(), count),
                r.bytes_per_sec.map_or_else(|| "-".to_owned(), bytes),
                lag(s.lag, s.lag_unit.as_deref()),
                s.records_in_flight.max(0).to_string(),
                s.last_commit_age_seconds
                    .map_or_else(|| "-".to_owned(), age),
                errors,
                s.restarts.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADINGS.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if i < TEXT_COLUMNS {
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(&format!("{cell:>w$}"));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![(line(&HEADINGS), false)];
    for (row, r) in cells.iter().zip(rows) {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        let failing = matches!(r.source.state.as_str(), "failed" | "backoff");
        lines.push((line(&refs), failing));
    }
    lines
}

/// The footer: the producer's queue and each broker's round trip.
fn kafka_lines(kafka: Option<&KafkaSample>) -> Vec<String> {
    let Some(kafka) = kafka else {
        return vec!["Kafka client: not reported by this daemon (no /api/v1/kafka)".to_owned()];
    };
    let Some(stats_age) = kafka.statistics_age_seconds else {
        return vec![
            "Kafka client: no statistics yet (they arrive every statistics.interval.ms)".to_owned(),
        ];
    };
    let mut lines = vec![format!(
        "Kafka client: queue {} messages, {}; statistics {} old",
        kafka.queue_messages,
        bytes(kafka.queue_bytes as f64),
        age(stats_age)
    )];
    if kafka.brokers.is_empty() {
        lines.push("  no broker known yet".to_owned());
    }
    for b in &kafka.brokers {
        let rtt = b
            .rtt_seconds
            .map_or_else(|| "-".to_owned(), |s| format!("{:.1} ms", s * 1e3));
        lines.push(format!(
            "  broker {:<4} {:<8} rtt {rtt:>9}  {}",
            b.id, b.state, b.name
        ));
    }
    lines
}

/// `text` cut to `width` characters, the last replaced by `…` when cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

/// A count or rate with a metric prefix: `7`, `2.5`, `980`, `12.3k`, `4.1M`.
pub fn count(n: f64) -> String {
    if n == 0.0 {
        return "0".to_owned();
    }
    match n.abs() {
        a if a < 10.0 => format!("{n:.1}"),
        a if a < 1e3 => format!("{n:.0}"),
        a if a < 1e6 => format!("{:.1}k", n / 1e3),
        a if a < 1e9 => format!("{:.1}M", n / 1e6),
        _ => format!("{:.1}G", n / 1e9),
    }
}

/// A size in binary units: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024.0 {
        return format!("{n:.0} B");
    }
    let mut value = n / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A lag in its unit: `1.2k rows`, `3.0 MiB`; `-` when unknown.
pub fn lag(lag: Option<i64>, unit: Option<&str>) -> String {
    match (lag, unit) {
        (None, _) => "-".to_owned(),
        (Some(n), Some("bytes")) => bytes(n as f64),
        (Some(n), Some(unit)) => format!("{} {unit}", count(n as f64)),
        (Some(n), None) => n.to_string(),
    }
}

/// A duration in seconds, short: `0.4s`, `12s`, `3m05s`, `2h01m`.
pub fn age(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 10.0 {
        let text = format!("{s:.1}s");
        // `1.0s` reads as noise in the header: `every 1s`.
        return text.replace(".0s", "s");
    }
    let whole = s.round() as u64;
    match whole {
        0..60 => format!("{whole}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::api::BrokerSample;

    fn source(name: &str, records: u64, bytes: u64) -> SourceSample {
        SourceSample {
            name: name.to_owned(),
            plugin: "datagen".to_owned(),
            state: "running".to_owned(),
            records_produced: records,
            bytes_produced: bytes,
            ..SourceSample::default()
        }
    }

    fn sample(at: Instant, sources: Vec<SourceSample>) -> Sample {
        Sample {
            at,
            sources,
            kafka: None,
        }
    }

    #[test]
    fn rates_are_counter_differences_over_the_time_between_samples() {
        let t0 = Instant::now();
        let first = sample(t0, vec![source("a", 100, 1_000), source("b", 50, 0)]);
        let second = sample(
            t0 + Duration::from_millis(500),
            vec![
                source("a", 600, 6_000),
                // Went back: the source was replaced; no rate, not a huge one.
                source("b", 10, 0),
                // New: nothing to compare with.
                source("c", 5, 5),
            ],
        );
        assert!(
            rows(None, &first)
                .iter()
                .all(|r| r.records_per_sec.is_none())
        );
        let rows = rows(Some(&first), &second);
        assert_eq!(rows[0].records_per_sec, Some(1000.0));
        assert_eq!(rows[0].bytes_per_sec, Some(10_000.0));
        assert_eq!(rows[1].records_per_sec, None);
        assert_eq!(rows[2].records_per_sec, None);
    }

    #[test]
    fn numbers_are_short_and_carry_their_unit() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(2.5), "2.5");
        assert_eq!(count(980.0), "980");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(4_100_000.0), "4.1M");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
        assert_eq!(lag(None, Some("rows")), "-");
        assert_eq!(lag(Some(1200), Some("rows")), "1.2k rows");
        assert_eq!(lag(Some(2048), Some("bytes")), "2.0 KiB");
        assert_eq!(lag(Some(7), None), "7");
        assert_eq!(age(0.42), "0.4s");
        assert_eq!(age(1.0), "1s");
        assert_eq!(age(12.4), "12s");
        assert_eq!(age(185.0), "3m05s");
        assert_eq!(age(7260.0), "2h01m");
    }

    #[test]
    fn a_frame_has_a_row_per_source_and_the_kafka_footer() {
        let t0 = Instant::now();
        let mut screen = Screen::new("http://127.0.0.1:9464", Duration::from_secs(1));
        let mut first = sample(t0, vec![source("orders", 0, 0)]);
        first.sources[0].lag = Some(1500);
        first.sources[0].lag_unit = Some("rows".to_owned());
        let mut second = first.clone();
        second.at = t0 + Duration::from_secs(2);
        second.sources[0].records_produced = 400;
        second.sources[0].records_failed = Some(2);
        second.sources[0].records_dead_lettered = Some(1);
        second.kafka = Some(KafkaSample {
            statistics_age_seconds: Some(1.0),
            queue_messages: 12,
            queue_bytes: 2048,
            brokers: vec![BrokerSample {
                id: 1,
                name: "localhost:9092/1".to_owned(),
                state: "UP".to_owned(),
                rtt_seconds: Some(0.0004),
            }],
        });
        screen.update(Ok(first), t0);
        screen.update(Ok(second), t0 + Duration::from_secs(2));
        let frame = screen.render(t0, 200, 50, false);
        let text = frame.join("\n");
        let heading = frame.iter().position(|l| l.starts_with("SOURCE")).unwrap();
        let row: Vec<&str> = frame[heading + 1].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "orders", "datagen", "running", "200", "0", "B", "1.5k", "rows", "0", "-", "3", "0"
            ],
            "{text}"
        );
        assert!(text.contains("queue 12 messages, 2.0 KiB"), "{text}");
        assert!(
            text.contains("broker 1    UP       rtt    0.4 ms"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "plain text has no escapes: {text}");
    }

    #[test]
    fn an_outage_shows_a_banner_with_its_age_and_drops_the_rates() {
        let t0 = Instant::now();
        let mut screen = Screen::new("http://127.0.0.1:9", Duration::from_secs(1));
        screen.update(Ok(sample(t0, vec![source("a", 1, 1)])), t0);
        screen.update(
            Err("Connection refused".to_owned()),
            t0 + Duration::from_secs(1),
        );
        screen.update(
            Err("Connection refused".to_owned()),
            t0 + Duration::from_secs(2),
        );
        let frame = screen.render(t0 + Duration::from_secs(4), 200, 50, true);
        assert!(
            frame[1].contains(
                "daemon at http://127.0.0.1:9 not reachable: Connection refused (since 3s)"
            ),
            "{frame:?}"
        );
        assert!(frame[1].starts_with(ALERT), "{frame:?}");
        // The last known table stays, without rates, which restart only
        // with the second answer after the outage.
        assert!(frame[2].contains("last answer, 4s old"), "{frame:?}");
        let heading = frame.iter().position(|l| l.contains("SOURCE")).unwrap();
        let row: Vec<&str> = frame[heading + 1].split_whitespace().collect();
        assert_eq!(row[..5], ["a", "datagen", "running", "-", "-"], "{frame:?}");
        screen.update(
            Ok(sample(t0 + Duration::from_secs(5), vec![source("a", 9, 9)])),
            t0,
        );
        assert_eq!(screen.outage(), None);
        assert_eq!(screen.rows[0].records_per_sec, None);
    }

    #[test]
    fn lines_never_exceed_the_terminal() {
        let t0 = Instant::now();
        let mut screen = Screen::new("http://127.0.0.1:9464", Duration::from_secs(1));
        let sources = (0..30)
            .map(|i| {
                source(
                    &format!("a-very-long-source-name-{i}-{}", "x".repeat(40)),
                    1,
                    1,
                )
            })
            .collect();
        screen.update(Ok(sample(t0, sources)), t0);
        let frame = screen.render(t0, 40, 10, false);
        assert_eq!(frame.len(), 10);
        assert!(frame.iter().all(|l| l.chars().count() <= 40), "{frame:#?}");
    }
}
