//! How peek shows a record: keys and values in the Confluent wire format
//! (magic byte 0, a 4-byte big-endian schema id, an Avro datum) are
//! decoded with the writer's schema from the registry and shown as JSON;
//! other UTF-8 is shown as it is, anything else as escaped bytes.
//!
//! Text is for people: one block per record, control characters escaped so
//! a record cannot drive the terminal. JSON is for scripts: one object per
//! line.

use std::collections::HashMap;
use std::io::Write;

use arrow_avro::reader::ReaderBuilder;
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use rdkafka::message::{Header, Headers, Message, OwnedMessage, Timestamp};
use serde_json::{Value, json};

use crate::registry::SchemaRegistry;

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A block per record, for reading.
    #[default]
    Text,
    /// A JSON object per line, for scripts.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err("expected `text` or `json`".to_owned()),
        }
    }
}

/// A key or a value as peek understood it.
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    /// Absent (a null key, a tombstone).
    Null,
    /// An Avro datum, decoded with schema `schema_id`.
    Avro { schema_id: u32, json: Value },
    /// UTF-8 text holding a JSON object or array.
    Json { text: String, parsed: Value },
    /// Other UTF-8 text.
    Text(String),
    /// Anything else; `note` says why framed Avro was not decoded.
    Binary {
        bytes: Vec<u8>,
        note: Option<String>,
    },
}

/// The name of the record the writer's schema is wrapped in: arrow-avro
/// decodes records only, and a record of one field is encoded exactly as
/// that field, so any schema (a bare `"string"` key too) decodes this way.
const WRAPPER: &str = "tributary_peek_datum";

/// Decodes Confluent-framed Avro with schemas fetched once per id.
struct AvroDecoder {
    registry: Option<SchemaRegistry>,
    /// The wrapped writer schema of each id seen, or why there is none.
    schemas: HashMap<u32, Result<AvroSchema, String>>,
}

impl AvroDecoder {
    /// `None` if `bytes` are not Confluent-framed; the schema id and the
    /// datum as JSON, or why it could not be decoded.
    fn decode(&mut self, bytes: &[u8]) -> Option<(u32, Result<Value, String>)> {
        let (&[0, a, b, c, d], _) = bytes.split_first_chunk::<5>()? else {
            return None;
        };
        let id = u32::from_be_bytes([a, b, c, d]);
        let Some(registry) = &self.registry else {
            return Some((
                id,
                Err("no [schema_registry] in the configuration to decode it".to_owned()),
            ));
        };
        let schema = self
            .schemas
            .entry(id)
            .or_insert_with(|| wrapped_schema(registry, id));
        Some((id, schema.clone().and_then(|s| decode_datum(id, s, bytes))))
    }
}

/// The writer's schema `id` from the registry, wrapped in a one-field
/// record (see [`WRAPPER`]).
fn wrapped_schema(registry: &SchemaRegistry, id: u32) -> Result<AvroSchema, String> {
    let text = registry.schema(id).map_err(|e| e.to_string())?;
    let writer: Value = serde_json::from_str(&text)
        .map_err(|e| format!("schema {id} from the registry is not JSON: {e}"))?;
    let wrapped = json!({
        "type": "record",
        "name": WRAPPER,
        "fields": [{ "name": "datum", "type": writer }],
    });
    Ok(AvroSchema::new(wrapped.to_string()))
}

/// One framed datum as JSON.
fn decode_datum(id: u32, schema: AvroSchema, bytes: &[u8]) -> Result<Value, String> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    store
        .set(Fingerprint::Id(id), schema)
        .map_err(|e| e.to_string())?;
    let mut decoder = ReaderBuilder::new()
        .with_writer_schema_store(store)
        .with_batch_size(1)
        .build_decoder()
        .map_err(|e| format!("schema {id}: {e}"))?;
    let consumed = decoder.decode(bytes).map_err(|e| e.to_string())?;
    let batch = decoder
        .flush()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the datum is cut short".to_owned())?;
    if consumed < bytes.len() {
        return Err(format!(
            "{} byte(s) after the datum",
            bytes.len() - consumed
        ));
    }
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let mut row: Value = serde_json::from_slice(&writer.into_inner()).map_err(|e| e.to_string())?;
    Ok(row["datum"].take())
}

/// What `bytes` hold, Avro decoded where framed and possible.
fn classify(bytes: Option<&[u8]>, avro: &mut AvroDecoder) -> Shown {
    let Some(bytes) = bytes else {
        return Shown::Null;
    };
    if let Some((schema_id, decoded)) = avro.decode(bytes) {
        return match decoded {
            Ok(json) => Shown::Avro { schema_id, json },
            Err(why) => Shown::Binary {
                bytes: bytes.to_vec(),
                note: Some(format!("Avro schema {schema_id} not decoded: {why}")),
            },
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed) if parsed.is_object() || parsed.is_array() => Shown::Json {
                text: text.to_owned(),
                parsed,
            },
            _ => Shown::Text(text.to_owned()),
        },
        Err(_) => Shown::Binary {
            bytes: bytes.to_vec(),
            note: None,
        },
    }
}

impl Shown {
    /// The text form: one line, control characters escaped.
    fn text(&self) -> String {
        match self {
            Shown::Null => "(null)".to_owned(),
            Shown::Avro { schema_id, json } => format!("(Avro schema {schema_id}) {json}"),
            Shown::Json { text, .. } | Shown::Text(text) => escape_controls(text),
            Shown::Binary { bytes, note } => {
                let what = match note {
                    Some(note) => format!("{} bytes; {note}", bytes.len()),
                    None => format!("{} bytes", bytes.len()),
                };
                format!("(binary, {what}) {}", bytes.escape_ascii())
            }
        }
    }

    /// Adds `<name>`, `<name>_format` and, where they apply,
    /// `<name>_schema_id` and `<name>_error` to `object`. Binary is base64.
    fn add_to(&self, name: &str, object: &mut serde_json::Map<String, Value>) {
        let (value, format) = match self {
            Shown::Null => (Value::Null, Value::Null),
            Shown::Avro { schema_id, json } => {
                object.insert(format!("{name}_schema_id"), json!(schema_id));
                (json.clone(), json!("avro"))
            }
            Shown::Json { parsed, .. } => (parsed.clone(), json!("json")),
            Shown::Text(text) => (json!(text), json!("text")),
            Shown::Binary { bytes, note } => {
                if let Some(note) = note {
                    object.insert(format!("{name}_error"), json!(note));
                }
                (json!(crate::base64::encode(bytes)), json!("base64"))
            }
        };
        object.insert(name.to_owned(), value);
        object.insert(format!("{name}_format"), format);
    }
}

/// `text` with control characters (newlines, escape sequences) escaped.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `millis` since the epoch as RFC 3339 in UTC, to the millisecond.
fn rfc3339_millis(millis: i64) -> String {
    let (days, in_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = tributary_plugin_sdk::calendar::civil_from_days(days);
    let seconds = in_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        in_day % 1000
    )
}

/// Writes records to the output in the chosen format.
pub(super) struct Printer<'w> {
    format: Format,
    avro: AvroDecoder,
    out: &'w mut dyn Write,
    printed: usize,
}

impl<'w> Printer<'w> {
    /// A printer decoding Avro with `registry`, if there is one.
    pub(super) fn new(
        format: Format,
        registry: Option<SchemaRegistry>,
        out: &'w mut dyn Write,
    ) -> Printer<'w> {
        Printer {
            format,
            avro: AvroDecoder {
                registry,
                schemas: HashMap::new(),
            },
            out,
            printed: 0,
        }
    }

    /// Prints `record` and flushes (`--next` shows records as they come);
    /// `Ok(false)` when the reader has closed the pipe.
    pub(super) fn print(&mut self, record: &OwnedMessage) -> std::io::Result<bool> {
        let key = classify(record.key(), &mut self.avro);
        let value = classify(record.payload(), &mut self.avro);
        let headers: Vec<(String, Option<Vec<u8>>)> = record
            .headers()
            .map(|h| {
                h.iter()
                    .map(|Header { key, value }| (key.to_owned(), value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let text = match self.format {
            Format::Text => self.text_block(record, &key, &headers, &value),
            Format::Json => json_line(record, &key, &headers, &value),
        };
        self.printed += 1;
        match self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
        {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn text_block(
        &self,
        record: &OwnedMessage,
        key: &Shown,
        headers: &[(String, Option<Vec<u8>>)],
        value: &Shown,
    ) -> String {
        let time = match record.timestamp() {
            Timestamp::NotAvailable => "no timestamp".to_owned(),
            Timestamp::CreateTime(ms) => rfc3339_millis(ms),
            Timestamp::LogAppendTime(ms) => format!("{} (log append time)", rfc3339_millis(ms)),
        };
        let headers = if headers.is_empty() {
            "(none)".to_owned()
        } else {
            headers
                .iter()
                .map(|(name, value)| match value {
                    None => format!("{}=(null)", escape_controls(name)),
                    Some(v) => match std::str::from_utf8(v) {
                        Ok(text) => format!("{}={}", escape_controls(name), escape_controls(text)),
                        Err(_) => format!("{}={}", escape_controls(name), v.escape_ascii()),
                    },
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{}partition {}  offset {}  {time}\n  key      {}\n  headers  {headers}\n  value    {}\n",
            if self.printed > 0 { "\n" } else { "" },
            record.partition(),
            record.offset(),
            key.text(),
            value.text(),
        )
    }
}

/// One record as a JSON object on one line.
fn json_line(
    record: &OwnedMessage,
    key: &Shown,
    headers: &[(String, Option<Vec<u8>>)],
    value: &Shown,
) -> String {
    let mut object = serde_json::Map::new();
    object.insert("topic".into(), json!(record.topic()));
    object.insert("partition".into(), json!(record.partition()));
    object.insert("offset".into(), json!(record.offset()));
    let (timestamp, kind) = match record.timestamp() {
        Timestamp::NotAvailable => (Value::Null, Value::Null),
        Timestamp::CreateTime(ms) => (json!(ms), json!("create_time")),
        Timestamp::LogAppendTime(ms) => (json!(ms), json!("log_append_time")),
    };
    object.insert("timestamp".into(), timestamp);
    object.insert("timestamp_type".into(), kind);
    key.add_to("key", &mut object);
    let headers: Vec<Value> = headers
        .iter()
        .map(|(name, value)| match value {
            None => json!({ "name": name, "value": null }),
            Some(v) => match std::str::from_utf8(v) {
                Ok(text) => json!({ "name": name, "value": text }),
                Err(_) => json!({ "name": name, "value_base64": crate::base64::encode(v) }),
            },
        })
        .collect();
    object.insert("headers".into(), Value::Array(headers));
    value.add_to("value", &mut object);
    format!("{}\n", Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_registry() -> AvroDecoder {
        AvroDecoder {
            registry: None,
            schemas: HashMap::new(),
        }
    }

    #[test]
    fn json_objects_text_and_bytes_are_told_apart() {
        let mut avro = no_registry();
        assert_eq!(classify(None, &mut avro), Shown::Null);
        assert!(matches!(
            classify(Some(br#"{"seq": 1}"#), &mut avro),
            Shown::Json { parsed, .. } if parsed["seq"] == 1
        ));
        // A number-like key stays text: only objects and arrays are JSON.
        assert_eq!(
            classify(Some(b"42"), &mut avro),
            Shown::Text("42".to_owned())
        );
        assert!(matches!(
            classify(Some(b"\xff\xfe"), &mut avro),
            Shown::Binary { note: None, .. }
        ));
    }

    #[test]
    fn framed_avro_without_a_registry_says_what_is_missing() {
        let shown = classify(Some(&[0, 0, 0, 0, 7, 2, b'a']), &mut no_registry());
        let text = shown.text();
        assert!(text.contains("Avro schema 7 not decoded"), "{text}");
        assert!(text.contains("[schema_registry]"), "{text}");
    }

    #[test]
    fn avro_records_and_bare_primitives_decode_by_their_writer_schema() {
        let record = AvroSchema::new(
            json!({"type": "record", "name": "Order", "namespace": "shop", "fields": [
                {"name": "seq", "type": "long"},
                {"name": "status", "type": ["null", "string"]},
                {"name": "items", "type": {"type": "array", "items": "int"}}
            ]})
            .to_string(),
        );
        let wrapped = |schema: &AvroSchema| {
            let writer: Value = serde_json::from_str(&schema.json_string).unwrap();
            AvroSchema::new(
                json!({"type": "record", "name": WRAPPER,
                       "fields": [{"name": "datum", "type": writer}]})
                .to_string(),
            )
        };
        // seq = 3 (zigzag 6), status = union branch 1 "paid", items [1, 2].
        let mut datum = vec![0, 0, 0, 0, 9, 6, 2, 8];
        datum.extend_from_slice(b"paid");
        datum.extend_from_slice(&[4, 2, 4, 0]);
        let json = decode_datum(9, wrapped(&record), &datum).unwrap();
        assert_eq!(json, json!({"seq": 3, "status": "paid", "items": [1, 2]}));

        let string = AvroSchema::new("\"string\"".to_owned());
        let key = [0, 0, 0, 0, 4, 6, b'c', b'-', b'7'];
        assert_eq!(
            decode_datum(4, wrapped(&string), &key).unwrap(),
            json!("c-7")
        );

        let mut longer = key.to_vec();
        longer.push(0);
        let err = decode_datum(4, wrapped(&string), &longer).unwrap_err();
        assert!(err.contains("1 byte(s) after the datum"), "{err}");
        assert!(decode_datum(4, wrapped(&string), &key[..7]).is_err());
    }

    #[test]
    fn text_cannot_drive_the_terminal() {
        assert_eq!(escape_controls("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
    }

    #[test]
    fn timestamps_read_as_utc_to_the_millisecond() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_717_236_000_123),
            "2024-06-01T10:00:00.123Z"
        );
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_json_line_carries_every_part_of_the_record() {
        let record = OwnedMessage::new(
            Some(br#"{"seq":5}"#.to_vec()),
            Some(b"c-1".to_vec()),
            "orders".to_owned(),
            Timestamp::CreateTime(1000),
            2,
            17,
            Some(
                rdkafka::message::OwnedHeaders::new()
                    .insert(Header {
                        key: "status",
                        value: Some("paid"),
                    })
                    .insert(Header {
                        key: "raw",
                        value: Some(&[0xffu8][..]),
                    }),
            ),
        );
        let mut avro = no_registry();
        let key = classify(record.key(), &mut avro);
        let value = classify(record.payload(), &mut avro);
        let headers = vec![
            ("status".to_owned(), Some(b"paid".to_vec())),
            ("raw".to_owned(), Some(vec![0xff])),
        ];
        let line: Value =
            serde_json::from_str(&json_line(&record, &key, &headers, &value)).unwrap();
        assert_eq!(line["topic"], "orders");
        assert_eq!(line["partition"], 2);
        assert_eq!(line["offset"], 17);
        assert_eq!(line["timestamp"], 1000);
        assert_eq!(line["key"], "c-1");
        assert_eq!(line["key_format"], "text");
        assert_eq!(line["value"]["seq"], 5);
        assert_eq!(line["value_format"], "json");
        assert_eq!(
            line["headers"][0],
            json!({"name": "status", "value": "paid"})
        );
        assert_eq!(
            line["headers"][1],
            json!({"name": "raw", "value_base64": "/w=="})
        );
    }
}
