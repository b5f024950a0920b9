//! Reading a daemon's HTTP API: one [`Sample`] per poll, from
//! `GET /api/v1/sources` and `GET /api/v1/kafka`.
//!
//! Every field the daemon may lack (an older daemon, a source that has not
//! started) has a default, so `top` shows what there is instead of
//! refusing the whole answer.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Target;

/// One source as `GET /api/v1/sources` describes it: the fields `top` shows.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SourceSample {
    /// The source's name.
    pub name: String,
    /// Its source type.
    #[serde(default)]
    pub plugin: String,
    /// `running`, `paused`, `backoff`, …
    #[serde(default)]
    pub state: String,
    /// Records Kafka acknowledged (a counter).
    #[serde(default)]
    pub records_produced: u64,
    /// Value bytes Kafka acknowledged (a counter).
    #[serde(default)]
    pub bytes_produced: u64,
    /// Records sent and not yet acknowledged.
    #[serde(default)]
    pub records_in_flight: i64,
    /// How far behind its input the source is, when its plugin knows.
    #[serde(default)]
    pub lag: Option<i64>,
    /// What `lag` counts: `rows` or `bytes`.
    #[serde(default)]
    pub lag_unit: Option<String>,
    /// Seconds since the last offset commit.
    #[serde(default)]
    pub last_commit_age_seconds: Option<f64>,
    /// Records that failed (and are retried).
    #[serde(default)]
    pub records_failed: Option<u64>,
    /// Records written to the dead-letter topic.
    #[serde(default)]
    pub records_dead_lettered: Option<u64>,
    /// Restarts after failures.
    #[serde(default)]
    pub restarts: u64,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One broker as `GET /api/v1/kafka` describes it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BrokerSample {
    /// The node id.
    pub id: i32,
    /// `host:port/id`.
    #[serde(default)]
    pub name: String,
    /// librdkafka's connection state (`UP`, `DOWN`, …).
    #[serde(default)]
    pub state: String,
    /// Average round-trip time over the last statistics window.
    #[serde(default)]
    pub rtt_seconds: Option<f64>,
}

/// The Kafka client as `GET /api/v1/kafka` describes it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KafkaSample {
    /// Age of the statistics; `None` before librdkafka's first.
    #[serde(default)]
    pub statistics_age_seconds: Option<f64>,
    /// Records in the producer's queue.
    #[serde(default)]
    pub queue_messages: u64,
    /// Bytes in the producer's queue.
    #[serde(default)]
    pub queue_bytes: u64,
    /// The brokers.
    #[serde(default)]
    pub brokers: Vec<BrokerSample>,
}

/// What one poll read.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the answer arrived: rates divide by the time between two.
    pub at: Instant,
    /// Every source, in the daemon's (name) order.
    pub sources: Vec<SourceSample>,
    /// The Kafka client; `None` when the daemon has no such endpoint.
    pub kafka: Option<KafkaSample>,
}

#[derive(Deserialize)]
struct SourcesReply {
    sources: Vec<SourceSample>,
}

/// Longest answer read; a daemon with thousands of sources stays far below.
const MAX_REPLY_BYTES: u64 = 16 << 20;

/// A blocking client of one daemon's API.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Client {
    /// A client of `target` whose requests give up after `timeout`, so a
    /// daemon that accepts connections but never answers shows up as
    /// unreachable instead of freezing the view.
    pub fn new(target: &Target, timeout: Duration) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            agent,
            base: target.url.clone(),
            authorization: target.token.as_ref().map(|t| format!("Bearer {t}")),
        }
    }

    /// Reads the sources and the Kafka client. The error is a sentence for
    /// the operator (connection refused, timed out, HTTP status).
    pub fn sample(&self) -> Result<Sample, String> {
        let (status, body) = self.get("/api/v1/sources")?;
        if status != 200 {
            return Err(format!(
                "GET /api/v1/sources: HTTP {status}: {}",
                first_line(&body)
            ));
        }
        let reply: SourcesReply = serde_json::from_str(&body)
            .map_err(|e| format!("GET /api/v1/sources: not the source API's answer: {e}"))?;
        let at = Instant::now();
        let kafka = match self.get("/api/v1/kafka")? {
            (200, body) => serde_json::from_str(&body).ok(),
            _ => None,
        };
        Ok(Sample {
            at,
            sources: reply.sources,
            kafka,
        })
    }

    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_without_the_newer_fields_still_parses() {
        let reply: SourcesReply = serde_json::from_str(
            r#"{"sources": [{"name": "orders", "plugin": "datagen", "state": "running",
                "records_produced": 5, "lag": null, "future_field": 1}]}"#,
        )
        .unwrap();
        let source = &reply.sources[0];
        assert_eq!(source.records_produced, 5);
        assert_eq!(source.records_failed, None);
        assert_eq!(source.lag_unit, None);
    }
}
